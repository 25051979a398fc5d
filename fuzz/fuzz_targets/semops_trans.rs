//! The merchant's TRANS (signed) and its body.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mpay_fuzz::{roundtrip, select};
use mpay_semops::{SignedTrans, Trans};

fuzz_target!(|data: &[u8]| {
    let Some((selector, rest)) = select(data) else {
        return;
    };
    if selector % 2 == 0 {
        if let Some(signed) = roundtrip::<SignedTrans>(rest) {
            // Its URI reads back to the same TRANS.
            assert_eq!(SignedTrans::from_uri(&signed.to_uri()).ok(), Some(signed));
        }
    } else {
        roundtrip::<Trans>(rest);
    }
});
