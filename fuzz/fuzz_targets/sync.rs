//! Sync with the money office: request, response, attestation, resolution.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mpay_fuzz::{roundtrip, select};
use mpay_offline::sync::{Resolution, SyncAttestation, SyncRequest, SyncResponse, Uncertain};

fuzz_target!(|data: &[u8]| {
    let Some((selector, rest)) = select(data) else {
        return;
    };
    match selector % 5 {
        0 => drop(roundtrip::<SyncRequest>(rest)),
        1 => drop(roundtrip::<SyncResponse>(rest)),
        2 => drop(roundtrip::<SyncAttestation>(rest)),
        3 => drop(roundtrip::<Resolution>(rest)),
        _ => drop(roundtrip::<Uncertain>(rest)),
    }
});
