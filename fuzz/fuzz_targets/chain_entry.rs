//! Chain entries and what they carry (charge vouchers, abort evidence).
#![no_main]
use libfuzzer_sys::fuzz_target;
use mpay_fuzz::{roundtrip, select};
use mpay_offline::chain::{AbortEvidence, ChainEntry, ChargeVoucher, EntryKind, VoidProof};

fuzz_target!(|data: &[u8]| {
    let Some((selector, rest)) = select(data) else {
        return;
    };
    match selector % 5 {
        0 => {
            if let Some(entry) = roundtrip::<ChainEntry>(rest) {
                // The hash of a decoded entry is computable and stable.
                assert_eq!(entry.hash(), entry.clone().hash());
            }
        }
        1 => drop(roundtrip::<EntryKind>(rest)),
        2 => drop(roundtrip::<ChargeVoucher>(rest)),
        3 => drop(roundtrip::<AbortEvidence>(rest)),
        _ => drop(roundtrip::<VoidProof>(rest)),
    }
});
