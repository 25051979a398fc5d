use mpay_envelope::*;
use mpay_identity::*;
use mpay_wire::Encode;
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

struct Party {
    id: PartyId,
    keys: SecretKeys,
    cert: Certificate,
}

struct World {
    office_keys: SecretKeys,
    office: Certificate,
    trust: TrustStore,
    alice: Party,
    bob: Party,
    carol: Party,
    rng: ChaCha20Rng,
}

const NOW: Timestamp = Timestamp(1_000_000);
const KIND: MessageKind = MessageKind(0x0103);
const LOOKUP: MessageKind = MessageKind(0x8101);

fn world() -> World {
    let mut rng = ChaCha20Rng::seed_from_u64(42);
    let office_keys = SecretKeys::generate(Suite::Ed25519X25519, &mut rng);
    let office_id = PartyId::from_u64(1);
    let office = Certificate::issue(
        CertificateBody {
            subject: office_id,
            role: Role::MoneyOffice,
            keys: office_keys.public(),
            limits: None,
            issued_at: Timestamp(0),
            expires_at: Timestamp(10_000_000),
            issuer: office_id,
        },
        &office_keys,
    );
    let mut party = |n: u64, expires: u64| {
        let keys = SecretKeys::generate(Suite::Ed25519X25519, &mut rng);
        let id = PartyId::from_u64(n);
        let cert = Certificate::issue(
            CertificateBody {
                subject: id,
                role: Role::Wallet,
                keys: keys.public(),
                limits: None,
                issued_at: Timestamp(0),
                expires_at: Timestamp(expires),
                issuer: office_id,
            },
            &office_keys,
        );
        Party { id, keys, cert }
    };
    let alice = party(10, 10_000_000);
    let bob = party(11, 10_000_000);
    let carol = party(12, 1_000_001);
    let mut trust = TrustStore::new();
    trust.add_issuer(office.clone());
    World {
        office_keys,
        office,
        trust,
        alice,
        bob,
        carol,
        rng,
    }
}

fn header(from: &Party, to: PartyId, kind: MessageKind, nonce: u64) -> Header {
    Header {
        version: ENVELOPE_VERSION,
        suite: Suite::Ed25519X25519,
        kind,
        sender: from.id,
        receiver: to,
        tx_id: [7; 16],
        nonce,
        sent_at: NOW,
    }
}

fn seal_to_bob(w: &mut World, payload: &[u8], nonce: u64) -> Vec<u8> {
    let h = header(&w.alice, w.bob.id, KIND, nonce);
    seal(
        &w.alice.keys,
        &h,
        payload,
        &w.bob.cert.body.keys,
        &mut w.rng,
    )
    .unwrap()
}

fn bob_opens(w: &World, frame: &[u8], replay: &mut ReplayGuard) -> Result<Verified, EnvelopeError> {
    let unverified = open(frame, &w.bob.keys, w.bob.id, &w.trust, NOW)?;
    unverified.verify(&w.alice.cert, &w.trust, replay, NOW)
}

#[test]
fn round_trip() {
    let mut w = world();
    let frame = seal_to_bob(&mut w, b"pay 5 EUR", 1);
    let mut replay = ReplayGuard::new();
    let msg = bob_opens(&w, &frame, &mut replay).unwrap();
    assert_eq!(msg.payload(), b"pay 5 EUR");
    assert_eq!(msg.header().sender, w.alice.id);
    assert_eq!(msg.header().receiver, w.bob.id);
    verify_detached(
        &w.alice.cert.body.keys,
        msg.header(),
        msg.payload(),
        msg.signature(),
    )
    .unwrap();
}

#[test]
fn every_flipped_bit_is_refused() {
    let mut w = world();
    let frame = seal_to_bob(&mut w, b"twelve bytes", 1);
    for bit in 0..frame.len() * 8 {
        let mut bad = frame.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let mut replay = ReplayGuard::new();
        let err = bob_opens(&w, &bad, &mut replay).expect_err("tampered frame accepted");
        assert!(err.is_peer_fault(), "bit {bit}: {err:?}");
    }
}

#[test]
fn flipped_bits_give_the_error_of_the_field_they_hit() {
    let mut w = world();
    let frame = seal_to_bob(&mut w, b"x", 1);
    let flip = |byte: usize| {
        let mut bad = frame.clone();
        bad[byte] ^= 0x40;
        bad
    };
    let mut replay = ReplayGuard::new();
    assert_eq!(
        bob_opens(&w, &flip(0), &mut replay).unwrap_err(),
        EnvelopeError::UnsupportedVersion(ENVELOPE_VERSION ^ 0x40)
    );
    assert!(matches!(
        bob_opens(&w, &flip(1), &mut replay),
        Err(EnvelopeError::UnsupportedSuite(_))
    ));
    let mut broadcast_bit = frame.clone();
    broadcast_bit[2] ^= 0x80;
    assert!(matches!(
        bob_opens(&w, &broadcast_bit, &mut replay),
        Err(EnvelopeError::BroadcastMismatch(_))
    ));
    // Any other change to the kind breaks the seal.
    assert_eq!(
        bob_opens(&w, &flip(2), &mut replay).unwrap_err(),
        EnvelopeError::SealBroken
    );
    // Sender id: the seal opens (nothing about the sender is checked before),
    // then the AEAD refuses the changed associated data.
    assert_eq!(
        bob_opens(&w, &flip(5), &mut replay).unwrap_err(),
        EnvelopeError::SealBroken
    );
    assert!(matches!(
        bob_opens(&w, &flip(21), &mut replay),
        Err(EnvelopeError::WrongReceiver { .. })
    ));
    assert_eq!(
        bob_opens(&w, &flip(40), &mut replay).unwrap_err(),
        EnvelopeError::SealBroken
    );
    assert_eq!(
        bob_opens(&w, &flip(80), &mut replay).unwrap_err(),
        EnvelopeError::SealBroken
    );
    let last = frame.len() - 1;
    assert_eq!(
        bob_opens(&w, &flip(last), &mut replay).unwrap_err(),
        EnvelopeError::SealBroken
    );
}

#[test]
fn wrong_receiver_is_refused_even_if_resealed() {
    let mut w = world();
    // Alice seals to Bob; Carol cannot open it.
    let frame = seal_to_bob(&mut w, b"for bob", 1);
    let err = open(&frame, &w.carol.keys, w.carol.id, &w.trust, NOW).unwrap_err();
    assert_eq!(
        err,
        EnvelopeError::WrongReceiver {
            addressed_to: w.bob.id
        }
    );

    // Bob opens it and re-seals the same signed bytes to Carol, claiming the
    // header still says "to Bob": Carol refuses it as not hers. If Bob changes
    // the receiver to Carol, Alice's signature no longer verifies.
    let mut replay = ReplayGuard::new();
    let msg = bob_opens(&w, &frame, &mut replay).unwrap();
    let mut forwarded_header = *msg.header();
    forwarded_header.receiver = w.carol.id;
    let forged = {
        // Re-seal by hand with Alice's original signature.
        let header_bytes = forwarded_header.to_bytes();
        let mut plain = mpay_wire::Writer::new();
        plain
            .u32(msg.payload().len() as u32)
            .raw(msg.payload())
            .put(msg.signature());
        let (enc, ct) = w
            .carol
            .cert
            .body
            .keys
            .seal(
                b"mpay/v1/hpke\x01",
                &header_bytes,
                plain.as_bytes(),
                &mut w.rng,
            )
            .unwrap();
        let mut f = mpay_wire::Writer::new();
        f.raw(&header_bytes).raw(&enc).bytes32(&ct);
        f.into_bytes()
    };
    let unverified = open(&forged, &w.carol.keys, w.carol.id, &w.trust, NOW).unwrap();
    let err = unverified
        .verify(&w.alice.cert, &w.trust, &mut ReplayGuard::new(), NOW)
        .unwrap_err();
    assert_eq!(err, EnvelopeError::BadSignature);
}

#[test]
fn replay_is_refused_but_a_new_nonce_is_not() {
    let mut w = world();
    let frame = seal_to_bob(&mut w, b"once", 1);
    let mut replay = ReplayGuard::new();
    bob_opens(&w, &frame, &mut replay).unwrap();
    assert_eq!(
        bob_opens(&w, &frame, &mut replay).unwrap_err(),
        EnvelopeError::Replay
    );
    let again = seal_to_bob(&mut w, b"once", 2);
    bob_opens(&w, &again, &mut replay).unwrap();
}

#[test]
fn replay_guard_at_capacity_refuses_what_it_forgot() {
    let mut w = world();
    let mut replay = ReplayGuard::with_capacity(2);
    let frames: Vec<_> = (0..3).map(|n| seal_to_bob(&mut w, b"m", n)).collect();
    for f in &frames {
        bob_opens(&w, f, &mut replay).unwrap();
    }
    assert_eq!(replay.len(), 2);
    // The forgotten first frame is at the floor: still refused.
    assert_eq!(
        bob_opens(&w, &frames[0], &mut replay).unwrap_err(),
        EnvelopeError::Replay
    );
}

#[test]
fn expired_and_revoked_senders_are_refused() {
    let mut w = world();
    let h = header(&w.carol, w.bob.id, KIND, 1);
    let frame = seal(&w.carol.keys, &h, b"hi", &w.bob.cert.body.keys, &mut w.rng).unwrap();
    let later = Timestamp(1_000_001);
    let err = open(&frame, &w.bob.keys, w.bob.id, &w.trust, later)
        .unwrap()
        .verify(&w.carol.cert, &w.trust, &mut ReplayGuard::new(), later)
        .unwrap_err();
    assert!(matches!(
        err,
        EnvelopeError::Certificate(CertificateError::Expired { .. })
    ));

    let list = RevocationList::issue(
        w.office.subject(),
        1,
        NOW,
        vec![RevocationEntry {
            subject: w.alice.id,
            reason: RevocationReason::DoubleSpend,
            revoked_at: NOW,
        }],
        &w.office_keys,
    );
    w.trust.install_revocation_list(list).unwrap();
    let frame = seal_to_bob(&mut w, b"hi", 2);
    let err = bob_opens(&w, &frame, &mut ReplayGuard::new()).unwrap_err();
    assert!(matches!(
        err,
        EnvelopeError::Certificate(CertificateError::Revoked { .. })
    ));
}

#[test]
fn wrong_certificate_or_key_is_refused() {
    let mut w = world();
    let frame = seal_to_bob(&mut w, b"hi", 1);
    let unverified = open(&frame, &w.bob.keys, w.bob.id, &w.trust, NOW).unwrap();
    assert!(matches!(
        unverified
            .clone()
            .verify(&w.carol.cert, &w.trust, &mut ReplayGuard::new(), NOW),
        Err(EnvelopeError::SenderMismatch { .. })
    ));
    // A certificate for Alice's id with Carol's keys, properly issued: the
    // signature does not verify.
    let mut body = w.alice.cert.body.clone();
    body.keys = w.carol.cert.body.keys;
    let impostor = Certificate::issue(body, &w.office_keys);
    assert_eq!(
        unverified
            .verify(&impostor, &w.trust, &mut ReplayGuard::new(), NOW)
            .unwrap_err(),
        EnvelopeError::BadSignature
    );
}

#[test]
fn stale_and_future_messages_are_refused() {
    let mut w = world();
    let frame = seal_to_bob(&mut w, b"hi", 1);
    let late = NOW.saturating_add_ms(MESSAGE_AGE_MAX_MS + 1);
    assert!(matches!(
        open(&frame, &w.bob.keys, w.bob.id, &w.trust, late),
        Err(EnvelopeError::Stale { .. })
    ));
    let early = NOW.saturating_sub_ms(CLOCK_SKEW_MAX_MS + 1);
    assert!(matches!(
        open(&frame, &w.bob.keys, w.bob.id, &w.trust, early),
        Err(EnvelopeError::FromFuture { .. })
    ));
}

#[test]
fn broadcast_is_signed_not_sealed() {
    let w = world();
    let h = header(&w.alice, PartyId::BROADCAST, LOOKUP, 1);
    let frame = sign_broadcast(&w.alice.keys, &h, b"who buys?").unwrap();
    for reader in [&w.bob, &w.carol] {
        let msg = open(&frame, &reader.keys, reader.id, &w.trust, NOW)
            .unwrap()
            .verify(&w.alice.cert, &w.trust, &mut ReplayGuard::new(), NOW)
            .unwrap();
        assert_eq!(msg.payload(), b"who buys?");
    }
    let mut bad = frame.clone();
    let n = bad.len();
    bad[n - 70] ^= 1;
    let err = open(&bad, &w.bob.keys, w.bob.id, &w.trust, NOW)
        .unwrap()
        .verify(&w.alice.cert, &w.trust, &mut ReplayGuard::new(), NOW)
        .unwrap_err();
    assert_eq!(err, EnvelopeError::BadSignature);
    // A non-broadcast kind cannot be sent unsealed, nor a broadcast kind sealed.
    let h2 = header(&w.alice, PartyId::BROADCAST, KIND, 2);
    assert!(sign_broadcast(&w.alice.keys, &h2, b"x").is_err());
}

#[test]
fn unknown_version_is_refused() {
    let mut w = world();
    let mut h = header(&w.alice, w.bob.id, KIND, 1);
    h.version = 2;
    let frame = seal(&w.alice.keys, &h, b"v2", &w.bob.cert.body.keys, &mut w.rng).unwrap();
    assert_eq!(
        open(&frame, &w.bob.keys, w.bob.id, &w.trust, NOW).unwrap_err(),
        EnvelopeError::UnsupportedVersion(2)
    );
}

#[test]
fn oversized_frames_are_refused_before_parsing() {
    let w = world();
    let frame = vec![0u8; FRAME_LEN_MAX + 1];
    assert_eq!(
        open(&frame, &w.bob.keys, w.bob.id, &w.trust, NOW).unwrap_err(),
        EnvelopeError::TooLarge {
            len: FRAME_LEN_MAX + 1
        }
    );
}

#[test]
fn header_layout_is_68_bytes_as_documented() {
    let w = world();
    let h = header(&w.alice, w.bob.id, KIND, 0x0102_0304_0506_0708);
    let bytes = h.to_bytes();
    assert_eq!(bytes.len(), HEADER_LEN);
    assert_eq!(bytes[0], 1);
    assert_eq!(bytes[1], 1);
    assert_eq!(&bytes[2..4], &[0x01, 0x03]);
    assert_eq!(&bytes[4..20], &w.alice.id.0);
    assert_eq!(&bytes[20..36], &w.bob.id.0);
    assert_eq!(&bytes[36..52], &[7; 16]);
    assert_eq!(&bytes[52..60], &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(&bytes[60..68], &NOW.0.to_be_bytes());
    assert_eq!(h.to_wire(), bytes.to_vec());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let w = world();
        let _ = peek_header(&bytes);
        if let Ok(u) = open(&bytes, &w.bob.keys, w.bob.id, &w.trust, NOW) {
            let _ = u.verify(&w.alice.cert, &w.trust, &mut ReplayGuard::new(), NOW);
        }
    }

    #[test]
    fn valid_header_with_arbitrary_tail_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..200), receiver_is_bob in any::<bool>()) {
        let w = world();
        let to = if receiver_is_bob { w.bob.id } else { PartyId::BROADCAST };
        let kind = if receiver_is_bob { KIND } else { LOOKUP };
        let mut frame = header(&w.alice, to, kind, 9).to_bytes().to_vec();
        frame.extend_from_slice(&tail);
        prop_assert!(open(&frame, &w.bob.keys, w.bob.id, &w.trust, NOW).is_err() || !receiver_is_bob);
    }
}
