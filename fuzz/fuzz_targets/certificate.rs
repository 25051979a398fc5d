//! Certificates, their bodies and limits, public keys, signatures.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mpay_fuzz::{roundtrip, select};
use mpay_identity::{
    Certificate, CertificateBody, Limits, PublicKeys, Signature, Timestamp, TrustStore,
};

fuzz_target!(|data: &[u8]| {
    let Some((selector, rest)) = select(data) else {
        return;
    };
    match selector % 5 {
        0 => {
            if let Some(cert) = roundtrip::<Certificate>(rest) {
                // No trust anchors: any decoded certificate is refused, never
                // a panic.
                assert!(
                    TrustStore::new()
                        .check(&cert, Timestamp(1_767_225_600_000))
                        .is_err()
                );
            }
        }
        1 => drop(roundtrip::<CertificateBody>(rest)),
        2 => drop(roundtrip::<Limits>(rest)),
        3 => drop(roundtrip::<PublicKeys>(rest)),
        _ => drop(roundtrip::<Signature>(rest)),
    }
});
