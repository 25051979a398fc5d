//! The envelope: `peek_header` and `open` of arbitrary frames, and any
//! change to a valid sealed frame, which must be refused.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mpay_envelope::{ENVELOPE_VERSION, Header, MessageKind, ReplayGuard, open, peek_header, seal};
use mpay_identity::{Certificate, Limits, PartyId, SecretKeys, Suite, Timestamp, TrustStore};
use mpay_money::{Amount, Currency};
use mpay_sim::fixture::Office;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

const NOW: Timestamp = Timestamp(1_767_225_600_000);

struct Fixture {
    receiver: (PartyId, SecretKeys),
    sender: Certificate,
    trust: TrustStore,
    frame: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let office = Office::new(Suite::Ed25519X25519, NOW, &mut rng);
        let limits = Limits {
            offline_balance_max: Amount::new(1_000_000, Currency::EUR),
            payment_max: Amount::new(50_000, Currency::EUR),
            days_between_syncs_max: 30,
            payments_between_syncs_max: 1_000,
        };
        let a = office
            .issue_wallet(PartyId::from_u64(1), limits, &mut rng)
            .expect("wallet");
        let b = office
            .issue_wallet(PartyId::from_u64(2), limits, &mut rng)
            .expect("wallet");
        let header = Header {
            version: ENVELOPE_VERSION,
            suite: Suite::Ed25519X25519,
            kind: MessageKind(0x0106),
            sender: a.id,
            receiver: b.id,
            tx_id: [7; 16],
            nonce: 42,
            sent_at: NOW,
        };
        let frame =
            seal(&a.keys, &header, b"payload", b.certificate.keys(), &mut rng).expect("seal");
        let mut trust = TrustStore::new();
        trust.add_issuer(office.certificate.clone());
        Fixture {
            receiver: (b.id, b.keys),
            sender: a.certificate,
            trust,
            frame,
        }
    })
}

fn accepted(f: &Fixture, frame: &[u8]) -> bool {
    let (id, keys) = &f.receiver;
    match open(frame, keys, *id, &f.trust, NOW) {
        Ok(unverified) => unverified
            .verify(&f.sender, &f.trust, &mut ReplayGuard::new(), NOW)
            .is_ok(),
        Err(_) => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some((selector, rest)) = mpay_fuzz::select(data) else {
        return;
    };
    if selector % 2 == 0 {
        // Any bytes as a frame: a header or an error, never a panic.
        if let Ok(header) = peek_header(rest) {
            assert_eq!(header.version, ENVELOPE_VERSION);
        }
        assert!(!accepted(f, rest) || rest == f.frame.as_slice());
    } else {
        // XOR the fuzz bytes into the valid frame at an offset; optionally
        // cut it short. Anything but the original is refused.
        let mut frame = f.frame.clone();
        let (head, mask) = rest.split_at(rest.len().min(3));
        let offset = usize::from(head.first().copied().unwrap_or(0)) << 8
            | usize::from(head.get(1).copied().unwrap_or(0));
        for (i, m) in mask.iter().enumerate() {
            if let Some(b) = frame.get_mut((offset + i) % f.frame.len()) {
                *b ^= m;
            }
        }
        if let Some(cut) = head.get(2).filter(|c| **c & 0x80 != 0) {
            frame.truncate(frame.len().saturating_sub(usize::from(cut & 0x7f)));
        }
        assert_eq!(
            accepted(f, &frame),
            frame == f.frame,
            "a changed frame was accepted"
        );
    }
});
