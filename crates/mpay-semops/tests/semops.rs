//! The SEMOPS types end to end: round trips, signatures, tampering, expiry,
//! URIs, sealing a PR, shipping details, pseudonyms, PINs, hop deadlines,
//! total decoders.

use mpay_envelope::ReplayGuard;
use mpay_identity::{
    Certificate, CertificateBody, PartyId, Role, SecretKeys, Suite, Timestamp, TrustStore,
};
use mpay_money::{Amount, Currency};
use mpay_semops::*;
use mpay_wire::{Decode, DecodeError, Encode, TEXT_LEN_MAX};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NOW: Timestamp = Timestamp(1_000_000);
const CERT_EXPIRY: Timestamp = Timestamp(100_000_000);

struct Party {
    id: PartyId,
    keys: SecretKeys,
    cert: Certificate,
}

struct World {
    trust: TrustStore,
    merchant: Party,
    other_merchant: Party,
    cpp: Party,
    other_cpp: Party,
    customer: Party,
    rng: ChaCha20Rng,
}

fn world() -> World {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let root_keys = SecretKeys::generate(Suite::Ed25519X25519, &mut rng);
    let root_id = PartyId::from_u64(1);
    let body = |subject, role, keys: &SecretKeys| CertificateBody {
        subject,
        role,
        keys: keys.public(),
        limits: None,
        issued_at: Timestamp(0),
        expires_at: CERT_EXPIRY,
        issuer: root_id,
    };
    let root = Certificate::issue(body(root_id, Role::SchemeRoot, &root_keys), &root_keys);
    let mut party = |n: u64, role: Role| {
        let keys = SecretKeys::generate(Suite::Ed25519X25519, &mut rng);
        let id = PartyId::from_u64(n);
        let cert = Certificate::issue(body(id, role, &keys), &root_keys);
        Party { id, keys, cert }
    };
    let merchant = party(10, Role::Merchant);
    let other_merchant = party(11, Role::Merchant);
    let cpp = party(20, Role::Cpp);
    let other_cpp = party(21, Role::Cpp);
    let customer = party(30, Role::Customer);
    let mut trust = TrustStore::new();
    trust.add_issuer(root);
    World {
        trust,
        merchant,
        other_merchant,
        cpp,
        other_cpp,
        customer,
        rng,
    }
}

fn eur(minor_units: i64) -> Amount {
    Amount::new(minor_units, Currency::new(*b"EUR").unwrap())
}

fn trans(merchant: PartyId) -> Trans {
    Trans {
        merchant,
        mpp: PartyId::from_u64(40),
        amount: eur(1_250),
        merchant_reference: "order-4711".into(),
        expires_at: Timestamp(2_000_000),
        description: "Two coffees, one croissant".into(),
        nonce: [9; 16],
    }
}

fn signed_trans(w: &World) -> SignedTrans {
    SignedTrans::sign(trans(w.merchant.id), &w.merchant.keys).unwrap()
}

fn notice(w: &World) -> PaymentNotice {
    PaymentNotice {
        payment_id: [3; 16],
        trans: signed_trans(w),
        customer_pseudonym: pseudonym(&[5; 32], "alice", w.merchant.id),
        cpp: w.cpp.id,
        class: AmountClass::Macro,
        deadline: Timestamp(1_030_000),
        shipping: None,
    }
}

fn decision(w: &World) -> MerchantDecision {
    MerchantDecision {
        payment_id: [3; 16],
        merchant: w.merchant.id,
        decision: Decision::Reject {
            reason: "out of stock".into(),
        },
        validity: Validity::starting(NOW, REQUEST_LIFETIME_DEFAULT_MS),
    }
}

fn confirmation(w: &World) -> Confirmation {
    Confirmation {
        payment_id: [3; 16],
        cpp: w.cpp.id,
        outcome: ConfirmationOutcome::DelayedTransfer,
        amount: eur(1_250),
        at: NOW,
    }
}

fn refund(w: &World) -> RefundRequest {
    RefundRequest {
        payment_id: [3; 16],
        merchant: w.merchant.id,
        amount: eur(500),
        idempotency_key: [8; 16],
        validity: Validity::starting(NOW, REQUEST_LIFETIME_DEFAULT_MS),
    }
}

fn pr(w: &World) -> PaymentRequest {
    PaymentRequest {
        trans: signed_trans(w),
        customer: CustomerRef::new("alice").unwrap(),
        cpp: w.cpp.id,
        pin: Pin::new("482916").unwrap(),
        idempotency_key: [4; 16],
        shipping: None,
    }
}

fn round_trip<T: Encode + Decode + PartialEq + std::fmt::Debug>(value: &T) {
    let bytes = value.to_wire();
    assert_eq!(&T::from_wire(&bytes).unwrap(), value);
    // Every strict prefix is refused, and so is a trailing byte.
    for len in 0..bytes.len() {
        assert!(
            T::from_wire(&bytes[..len]).is_err(),
            "prefix of {len} bytes"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(T::from_wire(&longer).is_err());
}

/// Flips every bit of every byte of the encoding: each result either does
/// not decode or does not verify.
fn every_flip_fails<T: Signable>(signed: &Signed<T>, cert: &Certificate, now: Timestamp) {
    assert!(signed.verify(cert, now).is_ok());
    let bytes = signed.to_wire();
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut tampered = bytes.clone();
            tampered[i] ^= 1 << bit;
            if let Ok(decoded) = Signed::<T>::from_wire(&tampered) {
                assert!(
                    decoded.verify(cert, now).is_err(),
                    "{}: flip of byte {i} bit {bit} verified",
                    T::WHAT
                );
            }
        }
    }
}

#[test]
fn every_type_round_trips() {
    let w = world();
    round_trip(&trans(w.merchant.id));
    round_trip(&signed_trans(&w));
    round_trip(&pr(&w));
    round_trip(&notice(&w));
    let signed_notice = SignedPaymentNotice::sign(notice(&w), &w.cpp.keys).unwrap();
    round_trip(&signed_notice);
    round_trip(&RoutedNotice {
        deadline: Timestamp(1_020_000),
        notice: signed_notice,
    });
    for d in [
        decision(&w),
        MerchantDecision {
            decision: Decision::Approve,
            ..decision(&w)
        },
    ] {
        round_trip(&SignedMerchantDecision::sign(d, &w.merchant.keys).unwrap());
    }
    for outcome in [
        ConfirmationOutcome::Transferred,
        ConfirmationOutcome::DelayedTransfer,
        ConfirmationOutcome::Rejected {
            reason: RejectReason::PinLocked,
        },
        ConfirmationOutcome::Expired,
        ConfirmationOutcome::Refunded,
    ] {
        let c = Confirmation {
            outcome,
            ..confirmation(&w)
        };
        round_trip(&SignedConfirmation::sign(c, &w.cpp.keys).unwrap());
    }
    round_trip(&SignedRefundRequest::sign(refund(&w), &w.merchant.keys).unwrap());
    round_trip(&CustomerRef::new("bob@cpp").unwrap());
    round_trip(&Pin::new("0000").unwrap());
    round_trip(
        &PinHash::new(
            &Pin::new("1234").unwrap(),
            [1; 16],
            PinParams::FAST_FOR_TESTS,
        )
        .unwrap(),
    );
    let mut guard = PinGuard::new(3);
    let _ = guard.check(false);
    round_trip(&guard);
    for class in AmountClass::ALL {
        round_trip(class);
    }
    for reason in RejectReason::ALL {
        round_trip(reason);
    }
}

#[test]
fn every_signed_object_verifies_and_every_tampered_byte_fails() {
    let w = world();
    every_flip_fails(&signed_trans(&w), &w.merchant.cert, NOW);
    every_flip_fails(
        &SignedPaymentNotice::sign(notice(&w), &w.cpp.keys).unwrap(),
        &w.cpp.cert,
        NOW,
    );
    every_flip_fails(
        &SignedMerchantDecision::sign(decision(&w), &w.merchant.keys).unwrap(),
        &w.merchant.cert,
        NOW,
    );
    every_flip_fails(
        &SignedConfirmation::sign(confirmation(&w), &w.cpp.keys).unwrap(),
        &w.cpp.cert,
        NOW,
    );
    every_flip_fails(
        &SignedRefundRequest::sign(refund(&w), &w.merchant.keys).unwrap(),
        &w.merchant.cert,
        NOW,
    );
}

#[test]
fn each_tampered_trans_field_fails_verification() {
    let w = world();
    let edits: [fn(&mut Trans); 6] = [
        |t| t.mpp = PartyId::from_u64(41),
        |t| t.amount = eur(1_251),
        |t| t.merchant_reference.push('x'),
        |t| t.expires_at = Timestamp(3_000_000),
        |t| t.description = "Three coffees".into(),
        |t| t.nonce[0] ^= 1,
    ];
    for edit in edits {
        let (mut body, signature) = signed_trans(&w).into_parts();
        edit(&mut body);
        let tampered = SignedTrans::from_parts(body, signature).unwrap();
        assert_eq!(
            tampered.verify(&w.merchant.cert, NOW),
            Err(SemopsError::BadSignature { what: "TRANS" })
        );
    }
    // Claiming another merchant: the certificate given is not the signer's.
    let (mut body, signature) = signed_trans(&w).into_parts();
    body.merchant = w.other_merchant.id;
    let tampered = SignedTrans::from_parts(body, signature).unwrap();
    assert_eq!(
        tampered.verify(&w.other_merchant.cert, NOW),
        Err(SemopsError::BadSignature { what: "TRANS" })
    );
    assert!(matches!(
        tampered.verify(&w.merchant.cert, NOW),
        Err(SemopsError::WrongSigner { expected, got, .. })
            if expected == w.other_merchant.id && got == w.merchant.id
    ));
}

#[test]
fn signature_checks_say_whose_fault() {
    let w = world();
    let t = signed_trans(&w);
    assert_eq!(
        t.verify(&w.merchant.cert, NOW).unwrap(),
        t.unverified_body()
    );
    assert!(t.verify_trusted(&w.merchant.cert, &w.trust, NOW).is_ok());
    // A CPP certificate is not a merchant's.
    let by_cpp = SignedTrans::sign(trans(w.cpp.id), &w.cpp.keys).unwrap();
    let err = by_cpp.verify(&w.cpp.cert, NOW).unwrap_err();
    assert!(matches!(
        err,
        SemopsError::WrongRole {
            expected: Role::Merchant,
            got: Role::Cpp,
            ..
        }
    ));
    assert!(err.is_peer_fault());
    // The signer's certificate expired.
    let late = SignedTrans::sign(
        Trans {
            expires_at: Timestamp(CERT_EXPIRY.0 + 10),
            ..trans(w.merchant.id)
        },
        &w.merchant.keys,
    )
    .unwrap();
    assert!(matches!(
        late.verify(&w.merchant.cert, CERT_EXPIRY),
        Err(SemopsError::Certificate(_))
    ));
    // Building an invalid object is a local fault.
    let err = SignedTrans::sign(
        Trans {
            description: "x".repeat(TEXT_LEN_MAX + 1),
            ..trans(w.merchant.id)
        },
        &w.merchant.keys,
    )
    .unwrap_err();
    assert!(matches!(
        err,
        SemopsError::InvalidField(DecodeError::TooLong { .. })
    ));
    assert!(!err.is_peer_fault());
    for bad in [eur(0), eur(-5)] {
        assert!(
            SignedTrans::sign(
                Trans {
                    amount: bad,
                    ..trans(w.merchant.id)
                },
                &w.merchant.keys
            )
            .is_err()
        );
    }
    let long_ref = Trans {
        merchant_reference: "r".repeat(REFERENCE_LEN_MAX + 1),
        ..trans(w.merchant.id)
    };
    assert!(SignedTrans::sign(long_ref, &w.merchant.keys).is_err());
    let edge_ref = Trans {
        merchant_reference: "r".repeat(REFERENCE_LEN_MAX),
        ..trans(w.merchant.id)
    };
    assert!(SignedTrans::sign(edge_ref, &w.merchant.keys).is_ok());
}

#[test]
fn expired_trans_is_refused() {
    let w = world();
    let t = signed_trans(&w);
    let expires_at = t.unverified_body().expires_at;
    assert!(
        t.verify(&w.merchant.cert, expires_at.saturating_sub_ms(1))
            .is_ok()
    );
    for now in [expires_at, expires_at.saturating_add_ms(1)] {
        assert_eq!(
            t.verify(&w.merchant.cert, now),
            Err(SemopsError::Expired {
                what: "TRANS",
                expires_at,
                now
            })
        );
    }
}

#[test]
fn trans_uri_round_trips_and_renders_as_qr() {
    let w = world();
    let t = signed_trans(&w);
    let uri = t.to_uri();
    assert!(uri.starts_with("mpay:trans?v=1&d="));
    assert_eq!(SignedTrans::from_uri(&uri).unwrap(), t);
    // Parameters in the other order are the same URI.
    let data = uri.split("&d=").nth(1).unwrap();
    let swapped = format!("mpay:trans?d={data}&v=1");
    assert_eq!(SignedTrans::from_uri(&swapped).unwrap(), t);
    // The largest TRANS fits both limits.
    let largest = SignedTrans::sign(
        Trans {
            merchant_reference: "r".repeat(REFERENCE_LEN_MAX),
            description: "d".repeat(TEXT_LEN_MAX),
            ..trans(w.merchant.id)
        },
        &w.merchant.keys,
    )
    .unwrap();
    assert!(largest.to_uri().len() <= URI_LEN_MAX);
    assert_eq!(SignedTrans::from_uri(&largest.to_uri()).unwrap(), largest);
    let qr = largest.to_terminal_qr().unwrap();
    assert!(qr.contains('█') || qr.contains('▀') || qr.contains('▄'));
    assert!(t.to_terminal_qr().unwrap().lines().count() > 10);
}

#[test]
fn garbage_uris_are_refused() {
    let w = world();
    let good = signed_trans(&w).to_uri();
    let data = good.split("&d=").nth(1).unwrap().to_owned();
    let cases = [
        String::new(),
        "mpay:".into(),
        "mpay:trans".into(),
        "mpay:trans?".into(),
        "mpay:trans?v=1".into(),
        format!("mpay:trans?d={data}"),
        format!("mpay:trans?v=2&d={data}"),
        format!("mpay:trans?v=1&d={data}&d={data}"),
        format!("mpay:trans?v=1&d={data}&x=1"),
        format!("mpay:trans?v=1&d={data}="),
        format!("mpay:trans?v=1&d={data}A"),
        format!("MPAY:trans?v=1&d={data}"),
        format!("mpay:trans?v=1&d={}", &data[..data.len() - 4]),
        format!("mpay:trans?v=1&d={data}{}", "A".repeat(URI_LEN_MAX)),
        "mpay:trans?v=1&d=%41%41".into(),
        "mpay:trans?v=1&&d=".into(),
    ];
    for uri in cases {
        assert!(SignedTrans::from_uri(&uri).is_err(), "{uri:?}");
    }
}

#[test]
fn pr_sealed_to_a_cpp_opens_only_there() {
    let mut w = world();
    let request = pr(&w);
    let frame = seal_pr(
        &request,
        &w.customer.keys,
        w.customer.id,
        w.cpp.cert.keys(),
        NOW,
        &mut w.rng,
    )
    .unwrap();
    let mut replay = ReplayGuard::new();
    let (header, opened) = open_pr(
        &frame,
        &w.cpp.keys,
        w.cpp.id,
        &w.customer.cert,
        &w.trust,
        &mut replay,
        NOW,
    )
    .unwrap();
    assert_eq!(opened, request);
    assert_eq!(header.kind, kind::PAYMENT_REQUEST);
    assert_eq!(header.tx_id, request.idempotency_key);
    // The same frame again is a replay.
    let again = open_pr(
        &frame,
        &w.cpp.keys,
        w.cpp.id,
        &w.customer.cert,
        &w.trust,
        &mut replay,
        NOW,
    );
    assert!(matches!(again, Err(SemopsError::Envelope(_))));
    // Another CPP cannot open it: not addressed to it, and with its id
    // claimed, its key does not open the seal.
    let mut other_replay = ReplayGuard::new();
    for claimed in [w.other_cpp.id, w.cpp.id] {
        let err = open_pr(
            &frame,
            &w.other_cpp.keys,
            claimed,
            &w.customer.cert,
            &w.trust,
            &mut other_replay,
            NOW,
        )
        .unwrap_err();
        assert!(matches!(err, SemopsError::Envelope(_)), "{err:?}");
        assert!(err.is_peer_fault());
    }
}

#[test]
fn pr_naming_another_cpp_or_from_a_non_customer_is_refused() {
    let mut w = world();
    let request = PaymentRequest {
        cpp: w.other_cpp.id,
        ..pr(&w)
    };
    // Sealed to `cpp` although it names `other_cpp`.
    let frame = mpay_semops::seal_payload(
        kind::PAYMENT_REQUEST,
        &request,
        &w.customer.keys,
        w.customer.id,
        w.cpp.id,
        w.cpp.cert.keys(),
        [4; 16],
        NOW,
        &mut w.rng,
    )
    .unwrap();
    let mut replay = ReplayGuard::new();
    let err = open_pr(
        &frame,
        &w.cpp.keys,
        w.cpp.id,
        &w.customer.cert,
        &w.trust,
        &mut replay,
        NOW,
    )
    .unwrap_err();
    assert_eq!(
        err,
        SemopsError::WrongCpp {
            named: w.other_cpp.id,
            reached: w.cpp.id
        }
    );
    // A merchant's key is not a customer device's.
    let request = pr(&w);
    let frame = seal_pr(
        &request,
        &w.merchant.keys,
        w.merchant.id,
        w.cpp.cert.keys(),
        NOW,
        &mut w.rng,
    )
    .unwrap();
    let err = open_pr(
        &frame,
        &w.cpp.keys,
        w.cpp.id,
        &w.merchant.cert,
        &w.trust,
        &mut replay,
        NOW,
    )
    .unwrap_err();
    assert!(matches!(
        err,
        SemopsError::WrongRole {
            expected: Role::Customer,
            ..
        }
    ));
    // A PR in an envelope of another kind is refused.
    let frame = mpay_semops::seal_payload(
        kind::CONFIRMATION,
        &request,
        &w.customer.keys,
        w.customer.id,
        w.cpp.id,
        w.cpp.cert.keys(),
        [4; 16],
        NOW,
        &mut w.rng,
    )
    .unwrap();
    let err = open_pr(
        &frame,
        &w.cpp.keys,
        w.cpp.id,
        &w.customer.cert,
        &w.trust,
        &mut replay,
        NOW,
    )
    .unwrap_err();
    assert_eq!(
        err,
        SemopsError::WrongKind {
            expected: 0x0401,
            got: 0x0404
        }
    );
}

#[test]
fn pin_never_appears_in_debug_output() {
    let w = world();
    let request = pr(&w);
    let pin_digits = request.pin.expose().to_owned();
    let texts = [
        format!("{request:?}"),
        format!("{request:#?}"),
        format!("{:?}", request.pin),
        format!(
            "{:?}",
            PinHash::new(&request.pin, [2; 16], PinParams::FAST_FOR_TESTS).unwrap()
        ),
        format!("{:?}", Pin::new("12a4").unwrap_err()),
        format!("{}", Pin::new("12a4").unwrap_err()),
    ];
    for text in texts {
        assert!(!text.contains(&pin_digits), "{text}");
    }
    assert!(format!("{request:?}").contains("Pin(<redacted>)"));
}

#[test]
fn pin_format_is_4_to_12_ascii_digits() {
    for ok in ["0000", "1234", "123456789012"] {
        assert!(Pin::new(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "123",
        "1234567890123",
        "12a4",
        "12 34",
        "١٢٣٤",
        "+1234",
        "12345\n",
    ] {
        assert_eq!(Pin::new(bad).unwrap_err(), PinError::BadFormat, "{bad:?}");
    }
}

#[test]
fn pin_hash_verifies_only_the_right_pin() {
    let pin = Pin::new("482916").unwrap();
    let hash = PinHash::new(&pin, [7; 16], PinParams::FAST_FOR_TESTS).unwrap();
    assert!(hash.verify(&pin));
    assert!(!hash.verify(&Pin::new("482917").unwrap()));
    assert!(!hash.verify(&Pin::new("4829160").unwrap()));
    // Another salt, another hash.
    let salted = PinHash::new(&pin, [8; 16], PinParams::FAST_FOR_TESTS).unwrap();
    assert_ne!(salted, hash);
    assert!(salted.verify(&pin));
    let bad_params = PinParams {
        memory_kib: 8,
        ..PinParams::FAST_FOR_TESTS
    };
    assert_eq!(
        PinHash::new(&pin, [7; 16], bad_params),
        Err(PinError::BadParams)
    );
}

#[test]
fn pin_guard_locks_after_five_wrong_pins_and_unlocks() {
    let mut guard = PinGuard::default();
    assert_eq!(guard.failures_max(), PIN_FAILURES_MAX_DEFAULT);
    for left in (1..PIN_FAILURES_MAX_DEFAULT).rev() {
        assert_eq!(guard.check(false), Err(PinError::Wrong { left }));
    }
    assert_eq!(guard.check(false), Err(PinError::Locked));
    assert!(guard.is_locked());
    // Locked: even the right PIN is refused.
    assert_eq!(guard.check(true), Err(PinError::Locked));
    guard.unlock();
    assert!(!guard.is_locked());
    assert_eq!(guard.check(true), Ok(()));
    // A right PIN resets the count.
    assert!(guard.check(false).is_err());
    assert_eq!(guard.check(true), Ok(()));
    assert_eq!(guard.failures(), 0);
    let mut strict = PinGuard::new(1);
    assert_eq!(strict.check(false), Err(PinError::Locked));
}

#[test]
fn pseudonyms_differ_per_merchant_and_are_stable() {
    let secret = [5; 32];
    let m1 = PartyId::from_u64(10);
    let m2 = PartyId::from_u64(11);
    assert_eq!(
        pseudonym(&secret, "alice", m1),
        pseudonym(&secret, "alice", m1)
    );
    assert_ne!(
        pseudonym(&secret, "alice", m1),
        pseudonym(&secret, "alice", m2)
    );
    assert_ne!(
        pseudonym(&secret, "alice", m1),
        pseudonym(&secret, "bob", m1)
    );
    assert_ne!(
        pseudonym(&secret, "alice", m1),
        pseudonym(&[6; 32], "alice", m1)
    );
}

#[test]
fn payment_notice_expires_at_its_deadline() {
    let w = world();
    let pn = SignedPaymentNotice::sign(notice(&w), &w.cpp.keys).unwrap();
    let deadline = pn.unverified_body().deadline;
    assert!(
        pn.verify(&w.cpp.cert, deadline.saturating_sub_ms(1))
            .is_ok()
    );
    assert!(matches!(
        pn.verify(&w.cpp.cert, deadline),
        Err(SemopsError::Expired { what: "PN", .. })
    ));
    // Signed by a merchant's key, a PN fails against the CPP.
    let forged = SignedPaymentNotice::sign(notice(&w), &w.merchant.keys).unwrap();
    assert_eq!(
        forged.verify(&w.cpp.cert, NOW),
        Err(SemopsError::BadSignature { what: "PN" })
    );
}

#[test]
fn hop_deadlines_shrink_and_never_exceed_the_parent() {
    let w = world();
    let pn = SignedPaymentNotice::sign(notice(&w), &w.cpp.keys).unwrap();
    let deadline = pn.unverified_body().deadline;
    let at_cpp = RoutedNotice {
        notice: pn,
        deadline: hop_deadline(deadline, NOW, 2_000).unwrap(),
    };
    let at_dc = at_cpp.forward(NOW, 2_000).unwrap();
    let at_dc2 = at_dc.forward(NOW, 2_000).unwrap();
    assert!(at_cpp.deadline < deadline);
    assert!(at_dc.deadline < at_cpp.deadline);
    assert!(at_dc2.deadline < at_dc.deadline);
    // No time left for the next hop: do not forward.
    assert_eq!(
        hop_deadline(deadline, deadline.saturating_sub_ms(2_000), 2_000),
        None
    );
    assert_eq!(at_dc2.forward(at_dc2.deadline, 1), None);
    // A hop deadline later than the PN's is refused on decode.
    let late = RoutedNotice {
        deadline: deadline.saturating_add_ms(1),
        ..at_cpp
    };
    assert!(matches!(
        RoutedNotice::from_wire(&late.to_wire()),
        Err(DecodeError::Invalid {
            what: "hop deadline",
            ..
        })
    ));
}

#[test]
fn refunds_are_at_most_the_payment_in_its_currency() {
    let w = world();
    let r = refund(&w);
    assert!(r.check_against(eur(500)).is_ok());
    assert!(r.check_against(eur(1_250)).is_ok());
    assert!(matches!(
        r.check_against(eur(499)),
        Err(SemopsError::RefundTooLarge { .. })
    ));
    let usd = Amount::new(1_250, Currency::new(*b"USD").unwrap());
    assert!(r.check_against(usd).is_err());
    assert!(
        SignedRefundRequest::sign(
            RefundRequest {
                amount: eur(0),
                ..refund(&w)
            },
            &w.merchant.keys
        )
        .is_err()
    );
}

#[test]
fn kinds_and_tags_are_distinct() {
    for (i, a) in kind::ALL.iter().enumerate() {
        assert_eq!(a.0 & 0xff00, 0x0400);
        assert!(!a.is_broadcast());
        for b in &kind::ALL[i + 1..] {
            assert_ne!(a, b);
        }
    }
    for (i, a) in tags::ALL.iter().enumerate() {
        assert!(a.starts_with(b"mpay/v1/semops-") && a.ends_with(b"\0"));
        for (j, b) in tags::ALL.iter().enumerate() {
            assert!(i == j || !b.starts_with(a));
        }
    }
    for identity_tag in [
        mpay_identity::tags::ENVELOPE,
        mpay_identity::tags::CERTIFICATE,
    ] {
        assert!(!tags::ALL.contains(&identity_tag));
    }
}

fn decode_all(bytes: &[u8]) {
    let _ = Trans::from_wire(bytes);
    let _ = SignedTrans::from_wire(bytes);
    let _ = PaymentRequest::from_wire(bytes);
    let _ = CustomerRef::from_wire(bytes);
    let _ = Pin::from_wire(bytes);
    let _ = PaymentNotice::from_wire(bytes);
    let _ = SignedPaymentNotice::from_wire(bytes);
    let _ = RoutedNotice::from_wire(bytes);
    let _ = MerchantDecision::from_wire(bytes);
    let _ = SignedMerchantDecision::from_wire(bytes);
    let _ = ConfirmationOutcome::from_wire(bytes);
    let _ = Confirmation::from_wire(bytes);
    let _ = SignedConfirmation::from_wire(bytes);
    let _ = RefundRequest::from_wire(bytes);
    let _ = SignedRefundRequest::from_wire(bytes);
    let _ = PinHash::from_wire(bytes);
    let _ = PinGuard::from_wire(bytes);
    let _ = AmountClass::from_wire(bytes);
    let _ = RejectReason::from_wire(bytes);
    let _ = SealedShipping::from_wire(bytes);
    let _ = ShippingDetails::from_wire(bytes);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        decode_all(&bytes);
    }

    #[test]
    fn decoding_mutated_valid_encodings_never_panics(
        which in 0usize..6,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        let w = world();
        let mut bytes = match which {
            0 => pr(&w).to_wire(),
            1 => SignedPaymentNotice::sign(notice(&w), &w.cpp.keys).unwrap().to_wire(),
            2 => SignedConfirmation::sign(confirmation(&w), &w.cpp.keys).unwrap().to_wire(),
            3 => pr_sharing(&mut world(), "1 Rue Example\n75001 Paris").to_wire(),
            4 => SignedPaymentNotice::sign(
                PaymentNotice {
                    shipping: pr_sharing(&mut world(), "Flat 2").shipping,
                    ..notice(&w)
                },
                &w.cpp.keys,
            )
            .unwrap()
            .to_wire(),
            _ => SignedMerchantDecision::sign(decision(&w), &w.merchant.keys).unwrap().to_wire(),
        };
        for (at, value) in edits {
            let at = at % bytes.len();
            bytes[at] = value;
        }
        bytes.truncate(cut % (bytes.len() + 1));
        decode_all(&bytes);
    }

    #[test]
    fn arbitrary_uris_never_panic(text in "(mpay:trans\\?)?[vd=&A-Za-z0-9_\\-%?]{0,200}") {
        let _ = SignedTrans::from_uri(&text);
    }

    #[test]
    fn arbitrary_strings_never_panic(text in "\\PC{0,300}") {
        let _ = SignedTrans::from_uri(&text);
        let _ = Pin::new(&text);
        let _ = CustomerRef::new(&text);
    }

    #[test]
    fn hop_deadline_never_exceeds_the_parent(deadline in any::<u64>(), now in any::<u64>(), budget in any::<u64>()) {
        if let Some(next) = hop_deadline(Timestamp(deadline), Timestamp(now), budget) {
            prop_assert!(next <= Timestamp(deadline));
            prop_assert!(next > Timestamp(now));
            if budget > 0 {
                prop_assert!(next < Timestamp(deadline));
            }
        }
    }

    #[test]
    fn trans_uri_round_trips(
        reference in "[ -~]{0,64}",
        description in "\\PC{0,200}",
        minor_units in 1i64..=mpay_money::AMOUNT_MINOR_MAX,
        nonce in any::<[u8; 16]>(),
    ) {
        let w = world();
        let t = SignedTrans::sign(
            Trans { merchant_reference: reference, description, amount: eur(minor_units), nonce, ..trans(w.merchant.id) },
            &w.merchant.keys,
        );
        // Descriptions of multi-byte characters may exceed the byte limit.
        if let Ok(t) = t {
            prop_assert_eq!(SignedTrans::from_uri(&t.to_uri()).unwrap(), t);
        }
    }
}

/// A merchant's decision and refund request carry their time inside the
/// signed bytes: refused at their expiry and when signed too far in the
/// receiver's future; a relayed one (checked fresh by the MPP) verifies by
/// signature alone.
#[test]
fn signed_requests_expire_and_cannot_come_from_the_future() {
    let w = world();
    let expires = NOW.saturating_add_ms(REQUEST_LIFETIME_DEFAULT_MS);
    let decision = SignedMerchantDecision::sign(decision(&w), &w.merchant.keys).unwrap();
    let request = SignedRefundRequest::sign(refund(&w), &w.merchant.keys).unwrap();
    let cert = &w.merchant.cert;
    assert!(decision.verify(cert, NOW).is_ok());
    assert!(request.verify(cert, expires.saturating_sub_ms(1)).is_ok());
    for at in [expires, expires.saturating_add_ms(3_600_000)] {
        assert!(matches!(
            decision.verify(cert, at),
            Err(SemopsError::Expired {
                what: "merchant decision",
                ..
            })
        ));
        assert!(matches!(
            request.verify(cert, at),
            Err(SemopsError::Expired {
                what: "refund request",
                ..
            })
        ));
        assert!(decision.verify_relayed(cert, at).is_ok());
        assert!(request.verify_relayed(cert, at).is_ok());
    }
    let early = NOW.saturating_sub_ms(REQUEST_CLOCK_SKEW_MAX_MS + 1);
    assert!(matches!(
        request.verify(cert, early),
        Err(SemopsError::NotYetValid { .. })
    ));
    // The time is signed: moving it breaks the signature.
    let (mut body, signature) = request.clone().into_parts();
    body.validity = Validity::starting(expires, REQUEST_LIFETIME_DEFAULT_MS);
    let moved = SignedRefundRequest::from_parts(body, signature).unwrap();
    assert!(matches!(
        moved.verify(cert, expires),
        Err(SemopsError::BadSignature { .. })
    ));
    // Nobody signs, and nobody decodes, a request valid for longer than the limit.
    let too_long = RefundRequest {
        validity: Validity {
            signed_at: NOW,
            expires_at: NOW.saturating_add_ms(REQUEST_LIFETIME_MAX_MS + 1),
        },
        ..refund(&w)
    };
    assert!(SignedRefundRequest::sign(too_long.clone(), &w.merchant.keys).is_err());
    let mut bytes = request.to_wire();
    let at = bytes.len() - 64 - 8;
    bytes[at..at + 8].copy_from_slice(&too_long.validity.expires_at.as_millis().to_be_bytes());
    assert!(SignedRefundRequest::from_wire(&bytes).is_err());
}

/// One logical refund, one key: a retry derives the same key; another
/// payment, amount, merchant or reference another one.
#[test]
fn refund_keys_are_derived_per_logical_refund() {
    let w = world();
    let key = |merchant, payment: [u8; 16], cents, reference: &str| {
        RefundRequest::derive_key(merchant, &payment, eur(cents), reference).unwrap()
    };
    let first = key(w.merchant.id, [3; 16], 500, "1");
    assert_eq!(first, key(w.merchant.id, [3; 16], 500, "1"), "a retry");
    for other in [
        key(w.merchant.id, [3; 16], 500, "2"),
        key(w.merchant.id, [3; 16], 501, "1"),
        key(w.merchant.id, [4; 16], 500, "1"),
        key(w.other_merchant.id, [3; 16], 500, "1"),
    ] {
        assert_ne!(first, other);
    }
    let longest = "r".repeat(REFUND_REFERENCE_LEN_MAX);
    assert!(RefundRequest::derive_key(w.merchant.id, &[3; 16], eur(500), &longest).is_ok());
    assert!(
        RefundRequest::derive_key(w.merchant.id, &[3; 16], eur(500), &format!("{longest}r"))
            .is_err()
    );
}

/// Every amount a SEMOPS object carries is at most `AMOUNT_MINOR_MAX`: at
/// the bound it signs and decodes; past it (and at `i64::MAX`) it neither
/// signs nor decodes from bytes its author did sign.
#[test]
fn amounts_past_the_bound_neither_sign_nor_decode() {
    let w = world();
    let max = mpay_money::AMOUNT_MINOR_MAX;
    let signed_bytes = |tag: &[u8], body: &dyn Fn(&mut mpay_wire::Writer)| {
        let mut b = mpay_wire::Writer::new();
        body(&mut b);
        let body = b.into_bytes();
        let signature = w.merchant.keys.sign(tag, &[&body]);
        let mut out = mpay_wire::Writer::new();
        out.raw(&body).put(&signature);
        out.into_bytes()
    };
    for minor in [max, max + 1, i64::MAX] {
        let ok = minor <= max;
        let t = Trans {
            amount: eur(minor),
            ..trans(w.merchant.id)
        };
        assert_eq!(SignedTrans::sign(t.clone(), &w.merchant.keys).is_ok(), ok);
        let bytes = signed_bytes(tags::TRANS, &|b| {
            t.encode(b);
        });
        assert_eq!(SignedTrans::from_wire(&bytes).is_ok(), ok, "TRANS {minor}");
        let r = RefundRequest {
            amount: eur(minor),
            ..refund(&w)
        };
        let bytes = signed_bytes(tags::REFUND_REQUEST, &|b| {
            r.encode(b);
        });
        assert_eq!(
            SignedRefundRequest::from_wire(&bytes).is_ok(),
            ok,
            "refund {minor}"
        );
        let c = Confirmation {
            amount: eur(minor),
            ..confirmation(&w)
        };
        assert_eq!(
            Confirmation::from_wire(&c.to_wire()).is_ok(),
            ok,
            "confirmation {minor}"
        );
    }
}

/// The PR of [`pr`] sharing `text` with its merchant.
fn pr_sharing(w: &mut World, text: &str) -> PaymentRequest {
    let request = pr(w);
    let details = ShippingDetails::new(text).unwrap();
    let sealed = seal_shipping(&details, &request.trans, &w.merchant.cert, &mut w.rng).unwrap();
    PaymentRequest {
        shipping: Some(sealed),
        ..request
    }
}

#[test]
fn shipping_details_open_for_their_merchant_only() {
    let mut w = world();
    let text = "Ada Lovelace\n12 St James's Square\nLondon SW1Y 4JH";
    let request = pr_sharing(&mut w, text);
    round_trip(&request);
    let sealed = request.shipping.clone().unwrap();
    round_trip(&sealed);
    let nonce = request.trans.unverified_body().nonce;
    // The merchant of the TRANS reads them exactly.
    let opened = open_shipping(&sealed, &w.merchant.keys, w.merchant.id, &nonce).unwrap();
    assert_eq!(opened.as_str(), text);
    // Not in the clear anywhere in the PR's bytes.
    let wire = request.to_wire();
    assert!(!wire.windows(12).any(|win| win == b"Ada Lovelace"));
    // Every other party's keys fail, whatever id they claim: the CPP, the
    // customer device itself, another merchant.
    for keys in [&w.cpp.keys, &w.customer.keys, &w.other_merchant.keys] {
        for id in [w.merchant.id, w.cpp.id, w.other_merchant.id] {
            assert_eq!(
                open_shipping(&sealed, keys, id, &nonce),
                Err(SemopsError::ShippingSealBroken)
            );
        }
    }
    // Every flipped bit of the sealed form fails to decode or to open.
    let bytes = sealed.to_wire();
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut tampered = bytes.clone();
            tampered[i] ^= 1 << bit;
            if let Ok(decoded) = SealedShipping::from_wire(&tampered) {
                assert!(
                    open_shipping(&decoded, &w.merchant.keys, w.merchant.id, &nonce).is_err(),
                    "flip of byte {i} bit {bit} opened"
                );
            }
        }
    }
}

#[test]
fn shipping_details_moved_to_another_payment_do_not_open() {
    let mut w = world();
    let sealed = pr_sharing(&mut w, "5 Elm Street").shipping.unwrap();
    let nonce = signed_trans(&w).unverified_body().nonce;
    // The same merchant's payment of another TRANS (another nonce).
    let mut other_nonce = nonce;
    other_nonce[0] ^= 1;
    assert_eq!(
        open_shipping(&sealed, &w.merchant.keys, w.merchant.id, &other_nonce),
        Err(SemopsError::ShippingSealBroken)
    );
    // Under the CPP's signature in the PN, a hop cannot swap them for others:
    // every flipped bit of the signed PN fails to decode or to verify.
    let pn = SignedPaymentNotice::sign(
        PaymentNotice {
            shipping: Some(sealed.clone()),
            ..notice(&w)
        },
        &w.cpp.keys,
    )
    .unwrap();
    round_trip(&pn);
    every_flip_fails(&pn, &w.cpp.cert, NOW);
    let other = pr_sharing(&mut w, "6 Elm Street").shipping;
    let (mut body, signature) = pn.clone().into_parts();
    body.shipping = other;
    let swapped = Signed::from_parts(body, signature).unwrap();
    assert!(swapped.verify(&w.cpp.cert, NOW).is_err());
    // Sealing to a certificate that is not the TRANS's merchant's is refused.
    let request = pr(&w);
    let details = ShippingDetails::new("5 Elm Street").unwrap();
    assert!(matches!(
        seal_shipping(&details, &request.trans, &w.other_merchant.cert, &mut w.rng),
        Err(SemopsError::WrongSigner { .. })
    ));
}

#[test]
fn shipping_details_are_bounded_and_plain_text() {
    let mut w = world();
    let longest = "a".repeat(SHIPPING_TEXT_LEN_MAX);
    let request = pr_sharing(&mut w, &longest);
    round_trip(&request);
    let nonce = request.trans.unverified_body().nonce;
    let opened = open_shipping(
        request.shipping.as_ref().unwrap(),
        &w.merchant.keys,
        w.merchant.id,
        &nonce,
    )
    .unwrap();
    assert_eq!(opened.as_str(), longest);
    assert_eq!(
        ShippingDetails::new(&"a".repeat(SHIPPING_TEXT_LEN_MAX + 1)),
        Err(DecodeError::TooLong {
            what: "shipping details",
            len: SHIPPING_TEXT_LEN_MAX + 1,
            max: SHIPPING_TEXT_LEN_MAX,
        })
    );
    for bad in ["", " \n ", "line\u{1b}[2J", "nul\0"] {
        assert!(ShippingDetails::new(bad).is_err(), "{bad:?}");
    }
    // The text never shows in debug output.
    assert!(!format!("{opened:?}").contains("aaaa"));
    // A sealed form longer than the largest details could make is refused
    // by every decoder that reads one, before any HPKE work.
    let sealed = request.shipping.clone().unwrap();
    let mut long = sealed.clone();
    long.ciphertext.push(0);
    assert_eq!(long.ciphertext.len(), SHIPPING_CIPHERTEXT_LEN_MAX + 1);
    assert!(matches!(
        SealedShipping::from_wire(&long.to_wire()),
        Err(DecodeError::TooLong { .. })
    ));
    let oversized = PaymentRequest {
        shipping: Some(long.clone()),
        ..request.clone()
    };
    assert!(PaymentRequest::from_wire(&oversized.to_wire()).is_err());
    let pn = PaymentNotice {
        shipping: Some(long),
        ..notice(&w)
    };
    assert!(PaymentNotice::from_wire(&pn.to_wire()).is_err());
    // An unknown version, a short ciphertext and an unknown presence byte.
    let mut wire = sealed.to_wire();
    wire[0] = 2;
    assert!(SealedShipping::from_wire(&wire).is_err());
    let short = SealedShipping {
        encapsulated: sealed.encapsulated,
        ciphertext: vec![0; 15],
    };
    assert!(SealedShipping::from_wire(&short.to_wire()).is_err());
    let mut wire = pr(&w).to_wire();
    *wire.last_mut().unwrap() = 2;
    assert!(matches!(
        PaymentRequest::from_wire(&wire),
        Err(DecodeError::UnknownTag { .. })
    ));
}
