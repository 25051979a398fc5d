//! Signed revocation lists and their entries.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mpay_fuzz::{roundtrip, select};
use mpay_identity::{RevocationEntry, RevocationList, TrustStore};

fuzz_target!(|data: &[u8]| {
    let Some((selector, rest)) = select(data) else {
        return;
    };
    if selector % 2 == 0 {
        if let Some(list) = roundtrip::<RevocationList>(rest) {
            // No issuer is trusted: installing it must fail cleanly.
            assert!(TrustStore::new().install_revocation_list(list).is_err());
        }
    } else {
        roundtrip::<RevocationEntry>(rest);
    }
});
