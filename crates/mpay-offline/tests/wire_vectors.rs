//! Pins the byte layouts of `docs/wire-format.md` to the code, so that the
//! document cannot drift from the encoders without a test failing. Offsets
//! and lengths below are the ones the document states; the sync tests also
//! drive wallets through the checks it lists (§4.5, §7.5); the last tests
//! check the document's tables and test vectors against the constants and
//! the encoders.

use mpay_envelope::{
    self as envelope, CLOCK_SKEW_MAX_MS, ENVELOPE_VERSION, EnvelopeError, FRAME_LEN_MAX,
    HEADER_LEN, Header, MESSAGE_AGE_MAX_MS, MessageKind, PAYLOAD_LEN_MAX, REPLAY_ENTRIES_MAX,
    ReplayGuard,
};
use mpay_identity::{
    Certificate, CertificateBody, CertificateError, Limits, MILLIS_PER_DAY, PartyId,
    RevocationEntry, RevocationList, RevocationReason, Role, SEALED_OVERHEAD, SIGNATURE_LEN,
    SecretKeys, Signature, Suite, Timestamp, TrustStore, VERIFIED_CERTIFICATES_MAX, hex_string,
    tags,
};
use mpay_money::{Amount, Currency};
use mpay_offline::chain::{
    ABORT_EVIDENCE_PAYLOAD_LEN_MAX, AbortEvidence, ChainEntry, ChargeVoucher, EntryKind,
    GENESIS_PREV_HASH, VoidProof, verify_chain,
};
use mpay_offline::durable::Snapshot;
use mpay_offline::messages::{
    Abort, AbortReason, Agreed, CommitRequest, Lookup, LookupReply, Message, Shipping, Status, kind,
};
use mpay_offline::records::{TxRecord, meta};
use mpay_offline::sync::{
    self, Outcome, Resolution, SYNC_CATCH_UP_MAX, SYNC_ENTRIES_MAX, SYNC_UNCERTAIN_MAX,
    SyncAttestation, SyncRequest, SyncResponse, Uncertain,
};
use mpay_offline::{BuyIntent, Config, Event, SyncError, TxId, Wallet};
use mpay_wire::{BYTES_LEN_MAX, Decode, DecodeError, Encode, LIST_LEN_MAX, TEXT_LEN_MAX};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const DOC: &str = include_str!("../../../docs/wire-format.md");

/// 2026-01-01T00:00:00Z.
const T0: Timestamp = Timestamp(1_767_225_600_000);
const DAY_MS: u64 = 24 * 60 * 60 * 1000;
const TX: TxId = TxId([0x22; 16]);
/// Alice's second payment, aborted by the seller.
const TX_ABORTED: TxId = TxId([0x33; 16]);
/// Alice's third payment, released by the office after its claim deadline.
const TX_RELEASED: TxId = TxId([0x44; 16]);
/// When the office attests Alice's chain up to her first payment.
const SYNCED_AT: Timestamp = Timestamp(T0.0 + 60 * 60 * 1000);
/// When the office releases Alice's third payment.
const RESOLVED_AT: Timestamp = Timestamp(T0.0 + 8 * DAY_MS);
const HPKE_INFO_V1: &[u8] = b"mpay/v1/hpke\x01";

// Lengths the document states.
const AMOUNT_LEN: usize = 11;
const PUBLIC_KEYS_LEN: usize = 65;
const LIMITS_LEN: usize = 28;
const CERT_BODY_LEN_NO_LIMITS: usize = 116;
const CERT_BODY_LEN_LIMITS: usize = 144;
const CERT_LEN_NO_LIMITS: usize = 180;
const CERT_LEN_LIMITS: usize = 208;
const REVOCATION_ENTRY_LEN: usize = 25;
const REVOCATION_LIST_FIXED: usize = 98;
const CHARGE_VOUCHER_LEN: usize = 131;
const CHARGE_VOUCHER_SIGNED_LEN: usize = 67;
const ENTRY_FIXED_LEN: usize = 140;
const ENTRY_KIND_OFFSET: usize = 56;
const GENESIS_ENTRY_LEN: usize = 348;
const CHARGE_ENTRY_LEN: usize = 271;
const PAY_ENTRY_LEN: usize = 191;
const RECEIVE_ENTRY_LEN: usize = 374;
/// A Void entry whose proof is a seller's ABORT (N = 1).
const VOID_ABORT_ENTRY_LEN: usize = 311;
/// A Void entry whose proof is the office's release.
const VOID_RELEASE_ENTRY_LEN: usize = 305;
const REDEEM_ENTRY_LEN: usize = 167;
const LONGEST_ENTRY_LEN: usize = 374;
const ABORT_EVIDENCE_FIXED_LEN: usize = 134;
const SYNC_ATTESTATION_LEN: usize = 155;
const SYNC_ATTESTATION_SIGNED_LEN: usize = 91;
const RESOLUTION_LEN: usize = 129;
const RESOLUTION_SIGNED_LEN: usize = 65;
const UNCERTAIN_LEN: usize = 24;
const LOOKUP_FIXED_LEN: usize = 209;
const LOOKUP_REPLY_FIXED_LEN: usize = 364;
const SYNC_REQUEST_FIXED_LEN: usize = 20;
const SYNC_RESPONSE_FIXED_LEN: usize = 160;
const SEALED_FRAME_OVERHEAD: usize = 188;
const BROADCAST_FRAME_OVERHEAD: usize = 136;

fn eur(minor: i64) -> Amount {
    Amount::new(minor, Currency::EUR)
}

fn keys(seed: u64) -> SecretKeys {
    SecretKeys::generate(Suite::Ed25519X25519, &mut ChaCha20Rng::seed_from_u64(seed))
}

fn be_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap())
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap())
}

fn be_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(bytes[at..at + 2].try_into().unwrap())
}

fn limits() -> Limits {
    Limits {
        offline_balance_max: eur(50_000),
        payment_max: eur(10_000),
        days_between_syncs_max: 7,
        payments_between_syncs_max: 100,
    }
}

struct Party {
    id: PartyId,
    keys: SecretKeys,
    cert: Certificate,
}

struct World {
    office: Party,
    alice: Party,
    bob: Party,
    trust: TrustStore,
}

fn certify(
    issuer: PartyId,
    issuer_keys: &SecretKeys,
    id: PartyId,
    keys: &SecretKeys,
    role: Role,
    limits: Option<Limits>,
) -> Certificate {
    Certificate::issue(
        CertificateBody {
            subject: id,
            role,
            keys: keys.public(),
            limits,
            issued_at: Timestamp(T0.0 - DAY_MS),
            expires_at: Timestamp(T0.0 + 365 * DAY_MS),
            issuer,
        },
        issuer_keys,
    )
}

fn world() -> World {
    let office_id = PartyId::from_u64(1);
    let office_keys = keys(3);
    let office_cert = certify(
        office_id,
        &office_keys,
        office_id,
        &office_keys,
        Role::MoneyOffice,
        None,
    );
    let wallet = |n: u64, seed: u64| {
        let id = PartyId::from_u64(n);
        let keys = keys(seed);
        let cert = certify(
            office_id,
            &office_keys,
            id,
            &keys,
            Role::Wallet,
            Some(limits()),
        );
        Party { id, keys, cert }
    };
    let alice = wallet(10, 1);
    let bob = wallet(11, 2);
    let mut trust = TrustStore::new();
    trust.add_issuer(office_cert.clone());
    World {
        office: Party {
            id: office_id,
            keys: office_keys,
            cert: office_cert,
        },
        alice,
        bob,
        trust,
    }
}

/// Alice's chain and Bob's (genesis, receive of Alice's first payment).
/// Alice: 0 genesis, 1 charge, 2 pay (`TX`, to Bob), 3 pay (`TX_ABORTED`),
/// 4 void of 3 with Bob's ABORT, 5 pay (`TX_RELEASED`), 6 void of 5 with the
/// office's release, 7 redeem.
struct Chains {
    alice: Vec<ChainEntry>,
    bob: Vec<ChainEntry>,
}

fn voucher(w: &World) -> ChargeVoucher {
    ChargeVoucher::issue(
        w.office.id,
        &w.office.keys,
        w.alice.id,
        [0x11; 16],
        eur(20_000),
        Timestamp(T0.0 + 1_000),
    )
}

fn genesis(p: &Party) -> ChainEntry {
    ChainEntry::sign(
        &p.keys,
        p.id,
        0,
        GENESIS_PREV_HASH,
        EntryKind::Genesis {
            certificate: p.cert.clone(),
        },
        eur(0),
        T0,
    )
}

/// Signs the entry that follows the last one of `chain`.
fn append(chain: &mut Vec<ChainEntry>, p: &Party, kind: EntryKind, balance: i64, at: u64) {
    let prev = chain.last().unwrap();
    let entry = ChainEntry::sign(
        &p.keys,
        p.id,
        prev.seq + 1,
        prev.hash(),
        kind,
        eur(balance),
        Timestamp(at),
    );
    chain.push(entry);
}

fn pay(tx: TxId, seller: PartyId, amount: i64) -> EntryKind {
    EntryKind::Pay {
        tx,
        seller,
        amount: eur(amount),
        claim_deadline: Timestamp(T0.0 + 7 * DAY_MS),
    }
}

/// Bob's signed ABORT of `TX_ABORTED`.
fn abort_evidence(w: &World) -> AbortEvidence {
    let header = Header {
        tx_id: TX_ABORTED.0,
        ..header(w.bob.id, w.alice.id, kind::ABORT, 3)
    };
    let payload = vec![AbortReason::SellerDecided.tag()];
    let signature = w
        .bob
        .keys
        .sign(tags::ENVELOPE, &[&header.to_bytes(), &payload]);
    AbortEvidence {
        header,
        payload,
        signature,
    }
}

/// The office's release of `TX_RELEASED` (Alice's entry 5).
fn release(w: &World) -> Resolution {
    Resolution::issue(
        w.office.id,
        &w.office.keys,
        w.alice.id,
        TX_RELEASED,
        5,
        Outcome::Released,
        RESOLVED_AT,
    )
}

fn chains(w: &World) -> Chains {
    let a = &w.alice;
    let mut alice = vec![genesis(a)];
    let charge = EntryKind::Charge {
        voucher: voucher(w),
    };
    append(&mut alice, a, charge, 20_000, T0.0 + 2_000);
    append(
        &mut alice,
        a,
        pay(TX, w.bob.id, 1_250),
        18_750,
        T0.0 + 3_000,
    );
    append(
        &mut alice,
        a,
        pay(TX_ABORTED, w.bob.id, 500),
        18_250,
        T0.0 + 4_000,
    );
    let void = EntryKind::Void {
        tx: TX_ABORTED,
        paid_seq: 3,
        amount: eur(500),
        proof: VoidProof::SellerAbort(abort_evidence(w)),
    };
    append(&mut alice, a, void, 18_750, T0.0 + 5_000);
    append(
        &mut alice,
        a,
        pay(TX_RELEASED, w.bob.id, 200),
        18_550,
        T0.0 + 6_000,
    );
    let void = EntryKind::Void {
        tx: TX_RELEASED,
        paid_seq: 5,
        amount: eur(200),
        proof: VoidProof::OfficeRelease(release(w)),
    };
    append(&mut alice, a, void, 18_750, RESOLVED_AT.0 + 1_000);
    let redeem = EntryKind::Redeem {
        redeem_id: [0x55; 16],
        amount: eur(5_000),
    };
    append(&mut alice, a, redeem, 13_750, RESOLVED_AT.0 + 2_000);

    let b = &w.bob;
    let mut bob = vec![genesis(b)];
    let receive = EntryKind::Receive {
        tx: TX,
        buyer: a.id,
        amount: eur(1_250),
        authorization: Box::new(alice[2].clone()),
    };
    append(&mut bob, b, receive, 1_250, T0.0 + 3_500);
    Chains { alice, bob }
}

/// The office's attestation of Alice's chain up to her first payment.
fn attestation(w: &World) -> SyncAttestation {
    SyncAttestation::issue(
        w.office.id,
        &w.office.keys,
        w.alice.id,
        2,
        chains(w).alice[2].hash(),
        eur(18_750),
        SYNCED_AT,
    )
}

/// A list of version 7 revoking one retired wallet, neither Alice nor Bob.
fn revocation_list(w: &World) -> RevocationList {
    RevocationList::issue(
        w.office.id,
        7,
        T0,
        vec![RevocationEntry {
            subject: PartyId::from_u64(66),
            reason: RevocationReason::Retired,
            revoked_at: T0,
        }],
        &w.office.keys,
    )
}

/// One message of every kind, with fixed inputs.
fn messages(w: &World) -> Vec<Message> {
    let pay = chains(w).alice[2].clone();
    vec![
        Message::Lookup(Lookup {
            seller_certificate: w.bob.cert.clone(),
            revocation_list: Some(revocation_list(w)),
        }),
        Message::LookupReply(LookupReply {
            buyer_certificate: w.alice.cert.clone(),
            attestation: attestation(w),
            revocation_list: None,
        }),
        Message::CommitRequest(CommitRequest {
            amount: eur(1_250),
            description: "2 coffees".into(),
            seller_certificate: w.bob.cert.clone(),
        }),
        Message::Agreed(Agreed {
            authorization: pay,
            shipping: None,
        }),
        Message::Abort(Abort {
            reason: AbortReason::SellerDecided,
        }),
        Message::Commit,
        Message::Committed,
        Message::Status(Status {
            buyer_certificate: w.alice.cert.clone(),
        }),
        Message::Aborted,
    ]
}

fn header(from: PartyId, to: PartyId, kind: MessageKind, nonce: u64) -> Header {
    Header {
        version: ENVELOPE_VERSION,
        suite: Suite::Ed25519X25519,
        kind,
        sender: from,
        receiver: to,
        tx_id: TX.0,
        nonce,
        sent_at: T0,
    }
}

// ---- primitives and identity types ------------------------------------------

#[test]
fn domain_separation_tags_are_exact_byte_strings() {
    assert_eq!(tags::CERTIFICATE, b"mpay/v1/certificate\0");
    assert_eq!(tags::REVOCATION_LIST, b"mpay/v1/revocation-list\0");
    assert_eq!(tags::ENVELOPE, b"mpay/v1/envelope\0");
    assert_eq!(tags::CHAIN_ENTRY, b"mpay/v1/chain-entry\0");
    assert_eq!(tags::CHARGE_VOUCHER, b"mpay/v1/charge-voucher\0");
    assert_eq!(tags::SYNC_ATTESTATION, b"mpay/v1/sync-attestation\0");
    assert_eq!(tags::RESOLUTION, b"mpay/v1/resolution\0");
    assert_eq!(tags::ENROLMENT, b"mpay/v1/enrolment\0");
    assert_eq!(tags::HPKE_INFO, b"mpay/v1/hpke");
    let lens = [
        (tags::CERTIFICATE, 20),
        (tags::REVOCATION_LIST, 24),
        (tags::ENVELOPE, 17),
        (tags::CHAIN_ENTRY, 20),
        (tags::CHARGE_VOUCHER, 23),
        (tags::SYNC_ATTESTATION, 25),
        (tags::RESOLUTION, 19),
        (tags::ENROLMENT, 18),
        (tags::HPKE_INFO, 12),
    ];
    for (tag, len) in lens {
        assert_eq!(tag.len(), len, "{}", tag.escape_ascii());
    }
}

#[test]
fn primitives_are_fixed_width_big_endian() {
    let amount = eur(1_250).to_wire();
    assert_eq!(amount.len(), AMOUNT_LEN);
    assert_eq!(&amount[..3], b"EUR");
    assert_eq!(&amount[3..], &1_250i64.to_be_bytes());
    assert_eq!(hex_string(&amount), "45555200000000000004e2");
    // Negative minor units are two's complement.
    assert_eq!(&eur(-1).to_wire()[3..], &[0xff; 8]);
    assert_eq!(
        Amount::from_wire(&amount),
        Ok(eur(1_250)),
        "amount round trip"
    );
    // A currency is three ASCII upper-case letters.
    for bad in [&b"eur"[..], b"EU1", b"E R"] {
        let mut bytes = bad.to_vec();
        bytes.extend_from_slice(&[0; 8]);
        assert!(matches!(
            Amount::from_wire(&bytes),
            Err(DecodeError::Invalid { .. })
        ));
    }
    assert_eq!(T0.to_wire(), T0.0.to_be_bytes());
    let id = PartyId::from_u64(10);
    assert_eq!(id.to_wire(), id.0);
    assert_eq!(id.to_wire().len(), 16);
    assert_eq!(PartyId::BROADCAST.0, [0; 16]);
    // Totality: a value must span its input exactly.
    let mut long = amount.clone();
    long.push(0);
    assert_eq!(
        Amount::from_wire(&long),
        Err(DecodeError::TrailingBytes { count: 1 })
    );
    assert!(matches!(
        Amount::from_wire(&amount[..10]),
        Err(DecodeError::UnexpectedEnd { .. })
    ));
}

#[test]
fn one_byte_tags_are_the_documented_numbers() {
    let roles = [
        (Role::Wallet, 1),
        (Role::MoneyOffice, 2),
        (Role::SchemeRoot, 3),
        (Role::Bank, 4),
        (Role::Cpp, 5),
        (Role::Mpp, 6),
        (Role::DataCenter, 7),
        (Role::Merchant, 8),
        (Role::Customer, 9),
    ];
    assert_eq!(Role::ALL.len(), roles.len());
    for (role, tag) in roles {
        assert_eq!(role.to_wire(), [tag]);
    }
    assert_eq!(Suite::ALL.len(), 2);
    assert_eq!(Suite::Ed25519X25519.to_wire(), [0x01]);
    assert_eq!(Suite::SimulationOnly.to_wire(), [0xF0]);
    let reasons = [
        (RevocationReason::DoubleSpend, 1),
        (RevocationReason::KeyCompromised, 2),
        (RevocationReason::Retired, 3),
    ];
    assert_eq!(RevocationReason::ALL.len(), reasons.len());
    for (reason, tag) in reasons {
        assert_eq!(reason.to_wire(), [tag]);
    }
    let aborts = [
        (AbortReason::SellerDecided, 1),
        (AbortReason::UnknownTransaction, 2),
        (AbortReason::NotAgreed, 3),
        (AbortReason::InsufficientFunds, 4),
        (AbortReason::OverLimit, 5),
        (AbortReason::WrongCurrency, 6),
        (AbortReason::BadAuthorization, 7),
        (AbortReason::Busy, 8),
        (AbortReason::InvalidAmount, 9),
        (AbortReason::SyncTooOld, 10),
        (AbortReason::NoAnswer, 11),
    ];
    assert_eq!(AbortReason::ALL.len(), aborts.len());
    for (reason, tag) in aborts {
        assert_eq!(reason.to_wire(), [tag]);
    }
    for bad in [0u8, 12, 0xff] {
        assert_eq!(
            AbortReason::from_wire(&[bad]),
            Err(DecodeError::UnknownTag {
                what: "abort reason",
                tag: bad
            })
        );
    }
    assert!(Role::from_wire(&[0]).is_err());
    assert!(Suite::from_wire(&[2]).is_err());
    let outcomes = [(Outcome::Settled, 1), (Outcome::Released, 2)];
    assert_eq!(Outcome::ALL.len(), outcomes.len());
    for (outcome, tag) in outcomes {
        assert_eq!(outcome.to_wire(), [tag]);
    }
    for bad in [0u8, 3, 0xff] {
        assert_eq!(
            Outcome::from_wire(&[bad]),
            Err(DecodeError::UnknownTag {
                what: "resolution outcome",
                tag: bad
            })
        );
    }
}

#[test]
fn public_and_secret_key_layouts() {
    let alice = keys(1);
    let public = alice.public().to_wire();
    assert_eq!(public.len(), PUBLIC_KEYS_LEN);
    assert_eq!(public[0], 0x01);
    assert_eq!(&public[1..33], &alice.public().signing);
    assert_eq!(&public[33..65], &alice.public().sealing);
    // At rest: suite byte, Ed25519 seed, X25519 secret key.
    let secret = alice.to_secret_bytes();
    assert_eq!(secret.len(), 65);
    assert_eq!(secret[0], 0x01);
    // The Ed25519 seed alone reproduces the signature (RFC 8032).
    let again = SecretKeys::from_secret_bytes(&secret).unwrap();
    assert_eq!(again.public(), alice.public());
}

#[test]
fn limits_layout() {
    let bytes = limits().to_wire();
    assert_eq!(bytes.len(), LIMITS_LEN);
    assert_eq!(&bytes[0..11], &eur(50_000).to_wire()[..]);
    assert_eq!(&bytes[11..22], &eur(10_000).to_wire()[..]);
    assert_eq!(be_u16(&bytes, 22), 7);
    assert_eq!(be_u32(&bytes, 24), 100);
    // Both amounts must be in one currency.
    let mut mixed = bytes.clone();
    mixed[11..14].copy_from_slice(b"USD");
    assert!(matches!(
        Limits::from_wire(&mixed),
        Err(DecodeError::Invalid { what: "limits", .. })
    ));
}

#[test]
fn certificate_layout_with_and_without_limits() {
    let w = world();
    // Alice's certificate carries limits.
    let cert = w.alice.cert.to_wire();
    assert_eq!(cert.len(), CERT_LEN_LIMITS);
    assert_eq!(w.alice.cert.body.to_wire().len(), CERT_BODY_LEN_LIMITS);
    assert_eq!(cert[0], 1, "version");
    assert_eq!(&cert[1..17], &w.alice.id.0);
    assert_eq!(cert[17], Role::Wallet.tag());
    assert_eq!(&cert[18..83], &w.alice.keys.public().to_wire()[..]);
    assert_eq!(cert[83], 1, "limits present");
    assert_eq!(&cert[84..112], &limits().to_wire()[..]);
    assert_eq!(be_u64(&cert, 112), T0.0 - DAY_MS);
    assert_eq!(be_u64(&cert, 120), T0.0 + 365 * DAY_MS);
    assert_eq!(&cert[128..144], &w.office.id.0);
    assert_eq!(&cert[144..208], &w.alice.cert.signature.0);
    // The issuer signs CERTIFICATE tag ‖ body (everything but the signature).
    let signature = Signature(cert[144..].try_into().unwrap());
    w.office
        .keys
        .public()
        .verify(tags::CERTIFICATE, &[&cert[..144]], &signature)
        .unwrap();

    // The office's certificate does not.
    let cert = w.office.cert.to_wire();
    assert_eq!(cert.len(), CERT_LEN_NO_LIMITS);
    assert_eq!(w.office.cert.body.to_wire().len(), CERT_BODY_LEN_NO_LIMITS);
    assert_eq!(cert[17], Role::MoneyOffice.tag());
    assert_eq!(cert[83], 0, "limits absent");
    assert_eq!(be_u64(&cert, 84), T0.0 - DAY_MS);
    assert_eq!(be_u64(&cert, 92), T0.0 + 365 * DAY_MS);
    assert_eq!(&cert[100..116], &w.office.id.0);
    let signature = Signature(cert[116..].try_into().unwrap());
    w.office
        .keys
        .public()
        .verify(tags::CERTIFICATE, &[&cert[..116]], &signature)
        .unwrap();

    assert_eq!(
        Certificate::from_wire(&w.alice.cert.to_wire()),
        Ok(w.alice.cert.clone())
    );
    let mut v2 = w.alice.cert.to_wire();
    v2[0] = 2;
    assert_eq!(
        Certificate::from_wire(&v2),
        Err(DecodeError::UnknownTag {
            what: "certificate version",
            tag: 2
        })
    );
    let mut bad_presence = w.alice.cert.to_wire();
    bad_presence[83] = 2;
    assert!(matches!(
        Certificate::from_wire(&bad_presence),
        Err(DecodeError::UnknownTag { what: "limits", .. })
    ));
}

#[test]
fn revocation_list_layout() {
    let w = world();
    let entry = |id: PartyId, reason| RevocationEntry {
        subject: id,
        reason,
        revoked_at: T0,
    };
    // Issued out of order; issue() sorts by subject.
    let list = RevocationList::issue(
        w.office.id,
        7,
        T0,
        vec![
            entry(w.bob.id, RevocationReason::Retired),
            entry(w.alice.id, RevocationReason::DoubleSpend),
        ],
        &w.office.keys,
    );
    let bytes = list.to_wire();
    assert_eq!(
        bytes.len(),
        REVOCATION_LIST_FIXED + 2 * REVOCATION_ENTRY_LEN
    );
    assert_eq!(&bytes[0..16], &w.office.id.0);
    assert_eq!(be_u64(&bytes, 16), 7);
    assert_eq!(be_u64(&bytes, 24), T0.0);
    assert_eq!(be_u16(&bytes, 32), 2);
    assert_eq!(&bytes[34..50], &w.alice.id.0);
    assert_eq!(bytes[50], RevocationReason::DoubleSpend.tag());
    assert_eq!(be_u64(&bytes, 51), T0.0);
    assert_eq!(&bytes[59..75], &w.bob.id.0);
    assert_eq!(bytes[75], RevocationReason::Retired.tag());
    let end = bytes.len() - SIGNATURE_LEN;
    assert_eq!(end, 84);
    let signature = Signature(bytes[end..].try_into().unwrap());
    w.office
        .keys
        .public()
        .verify(tags::REVOCATION_LIST, &[&bytes[..end]], &signature)
        .unwrap();
    assert_eq!(RevocationList::from_wire(&bytes), Ok(list.clone()));
    // Entries must be strictly ascending by subject.
    let mut swapped = bytes.clone();
    swapped[34..59].copy_from_slice(&bytes[59..84]);
    swapped[59..84].copy_from_slice(&bytes[34..59]);
    assert!(matches!(
        RevocationList::from_wire(&swapped),
        Err(DecodeError::Invalid {
            what: "revocation list",
            ..
        })
    ));
    let mut duplicate = bytes.clone();
    duplicate[59..84].copy_from_slice(&bytes[34..59]);
    assert!(RevocationList::from_wire(&duplicate).is_err());
    // A count over LIST_LEN_MAX is refused before reading the entries.
    let mut huge = bytes[..32].to_vec();
    huge.extend_from_slice(&u16::try_from(LIST_LEN_MAX + 1).unwrap().to_be_bytes());
    assert!(matches!(
        RevocationList::from_wire(&huge),
        Err(DecodeError::TooLong { .. })
    ));
}

// ---- chain ------------------------------------------------------------------

#[test]
fn charge_voucher_layout() {
    let w = world();
    let v = voucher(&w);
    let bytes = v.to_wire();
    assert_eq!(bytes.len(), CHARGE_VOUCHER_LEN);
    assert_eq!(&bytes[0..16], &w.office.id.0);
    assert_eq!(&bytes[16..32], &w.alice.id.0);
    assert_eq!(&bytes[32..48], &[0x11; 16]);
    assert_eq!(&bytes[48..59], &eur(20_000).to_wire()[..]);
    assert_eq!(be_u64(&bytes, 59), T0.0 + 1_000);
    let signature = Signature(bytes[CHARGE_VOUCHER_SIGNED_LEN..].try_into().unwrap());
    w.office
        .keys
        .public()
        .verify(
            tags::CHARGE_VOUCHER,
            &[&bytes[..CHARGE_VOUCHER_SIGNED_LEN]],
            &signature,
        )
        .unwrap();
    assert!(v.verify(&w.office.keys.public()));
    assert_eq!(ChargeVoucher::from_wire(&bytes), Ok(v));
}

/// Checks the fields every entry shares, the signature coverage and the hash.
fn check_entry_frame(
    entry: &ChainEntry,
    keys: &SecretKeys,
    tag: u8,
    body_len: usize,
    len: usize,
) -> Vec<u8> {
    let bytes = entry.to_wire();
    assert_eq!(bytes.len(), len, "entry kind {tag}");
    assert_eq!(len, ENTRY_FIXED_LEN + body_len, "entry kind {tag}");
    assert_eq!(&bytes[0..16], &entry.wallet.0);
    assert_eq!(be_u64(&bytes, 16), entry.seq);
    assert_eq!(&bytes[24..56], &entry.prev_hash);
    assert_eq!(bytes[ENTRY_KIND_OFFSET], tag);
    // The tail: balance_after (11), created_at (8), signature (64).
    let sig_at = len - SIGNATURE_LEN;
    let created_at = sig_at - 8;
    let balance_at = created_at - AMOUNT_LEN;
    assert_eq!(
        &bytes[balance_at..created_at],
        &entry.balance_after.to_wire()[..]
    );
    assert_eq!(be_u64(&bytes, created_at), entry.created_at.0);
    assert_eq!(&bytes[sig_at..], &entry.signature.0);
    // The signature covers CHAIN_ENTRY tag ‖ every byte before it.
    keys.public()
        .verify(tags::CHAIN_ENTRY, &[&bytes[..sig_at]], &entry.signature)
        .unwrap();
    entry.verify(&keys.public()).unwrap();
    // The hash is BLAKE3 of the whole encoding, signature included.
    assert_eq!(entry.hash(), *blake3::hash(&bytes).as_bytes());
    assert_eq!(ChainEntry::from_wire(&bytes).as_ref(), Ok(entry));
    bytes
}

#[test]
fn chain_entry_layout_of_every_kind() {
    let w = world();
    let c = chains(&w);
    let (ak, bk) = (&w.alice.keys, &w.bob.keys);

    let genesis = check_entry_frame(&c.alice[0], ak, 0, CERT_LEN_LIMITS, GENESIS_ENTRY_LEN);
    assert_eq!(&genesis[57..265], &w.alice.cert.to_wire()[..]);
    assert_eq!(&genesis[24..56], &GENESIS_PREV_HASH);
    assert_eq!(be_u64(&genesis, 16), 0);

    let charge = check_entry_frame(&c.alice[1], ak, 1, CHARGE_VOUCHER_LEN, CHARGE_ENTRY_LEN);
    assert_eq!(&charge[57..188], &voucher(&w).to_wire()[..]);

    let pay = check_entry_frame(&c.alice[2], ak, 2, 51, PAY_ENTRY_LEN);
    assert_eq!(&pay[57..73], &TX.0);
    assert_eq!(&pay[73..89], &w.bob.id.0);
    assert_eq!(&pay[89..92], b"EUR");
    assert_eq!(&pay[92..100], &1_250i64.to_be_bytes());
    assert_eq!(be_u64(&pay, 100), T0.0 + 7 * DAY_MS);
    assert_eq!(&pay[108..119], &eur(18_750).to_wire()[..]);
    assert_eq!(be_u64(&pay, 119), T0.0 + 3_000);
    assert_eq!(&pay[127..191], &c.alice[2].signature.0);

    // Receive carries the buyer's whole signed Pay entry.
    let receive = check_entry_frame(&c.bob[1], bk, 3, 234, RECEIVE_ENTRY_LEN);
    assert_eq!(&receive[57..73], &TX.0);
    assert_eq!(&receive[73..89], &w.alice.id.0);
    assert_eq!(&receive[89..100], &eur(1_250).to_wire()[..]);
    assert_eq!(&receive[100..291], &pay[..]);
    assert_eq!(receive[156], 2, "nested kind tag");
    assert_eq!(&receive[291..302], &eur(1_250).to_wire()[..]);
    assert_eq!(be_u64(&receive, 302), T0.0 + 3_500);

    // Void with the seller's ABORT (N = 1) as proof.
    let evidence = abort_evidence(&w);
    let void = check_entry_frame(&c.alice[4], ak, 4, 170 + 1, VOID_ABORT_ENTRY_LEN);
    assert_eq!(&void[57..73], &TX_ABORTED.0);
    assert_eq!(be_u64(&void, 73), 3);
    assert_eq!(&void[81..92], &eur(500).to_wire()[..]);
    assert_eq!(void[92], 1, "proof tag SellerAbort");
    assert_eq!(
        &void[93..93 + ABORT_EVIDENCE_FIXED_LEN + 1],
        &evidence.to_wire()[..]
    );
    assert_eq!(&void[93..161], &evidence.header.to_bytes());
    assert_eq!(be_u16(&void, 161), 1);
    assert_eq!(void[163], AbortReason::SellerDecided.tag());
    assert_eq!(&void[164..228], &evidence.signature.0);
    assert_eq!(&void[228..239], &eur(18_750).to_wire()[..]);
    // The evidence is the seller's envelope signature, checkable by anyone.
    envelope::verify_detached(
        &w.bob.keys.public(),
        &evidence.header,
        &evidence.payload,
        &evidence.signature,
    )
    .unwrap();

    // Void with the office's release as proof.
    let void = check_entry_frame(&c.alice[6], ak, 4, 165, VOID_RELEASE_ENTRY_LEN);
    assert_eq!(&void[57..73], &TX_RELEASED.0);
    assert_eq!(be_u64(&void, 73), 5);
    assert_eq!(&void[81..92], &eur(200).to_wire()[..]);
    assert_eq!(void[92], 2, "proof tag OfficeRelease");
    assert_eq!(&void[93..222], &release(&w).to_wire()[..]);
    assert_eq!(&void[222..233], &eur(18_750).to_wire()[..]);

    let redeem = check_entry_frame(&c.alice[7], ak, 5, 27, REDEEM_ENTRY_LEN);
    assert_eq!(&redeem[57..73], &[0x55; 16]);
    assert_eq!(&redeem[73..84], &eur(5_000).to_wire()[..]);
    assert_eq!(&redeem[84..95], &eur(13_750).to_wire()[..]);
    assert_eq!(be_u64(&redeem, 95), RESOLVED_AT.0 + 2_000);

    // The chains are valid: links, sequence numbers and balances (Redeem
    // takes away, Void gives back).
    verify_chain(&w.alice.keys.public(), None, &c.alice).unwrap();
    verify_chain(&w.bob.keys.public(), None, &c.bob).unwrap();
    assert_eq!(c.alice[1].prev_hash, c.alice[0].hash());

    let mut unknown = pay.clone();
    unknown[ENTRY_KIND_OFFSET] = 6;
    assert_eq!(
        ChainEntry::from_wire(&unknown),
        Err(DecodeError::UnknownTag {
            what: "entry kind",
            tag: 6
        })
    );
    // Only a Pay entry may sit inside a Receive: nesting is one level deep.
    for tag in [0u8, 1, 3, 4, 5, 6] {
        let mut nested = receive.clone();
        nested[156] = tag;
        assert!(
            matches!(
                ChainEntry::from_wire(&nested),
                Err(DecodeError::Invalid {
                    what: "authorization",
                    ..
                })
            ),
            "nested tag {tag}"
        );
    }
    // A Receive inside a Receive is refused at its tag, whatever follows.
    let mut deep = receive[..100].to_vec();
    deep.extend_from_slice(&c.bob[1].to_wire());
    assert!(matches!(
        ChainEntry::from_wire(&deep),
        Err(DecodeError::Invalid {
            what: "authorization",
            ..
        })
    ));
    let mut bad_proof = c.alice[6].to_wire();
    bad_proof[92] = 3;
    assert_eq!(
        ChainEntry::from_wire(&bad_proof),
        Err(DecodeError::UnknownTag {
            what: "void proof",
            tag: 3
        })
    );
    // The evidence payload is at most ABORT_EVIDENCE_PAYLOAD_LEN_MAX bytes.
    assert_eq!(ABORT_EVIDENCE_PAYLOAD_LEN_MAX, 64);
    let long = AbortEvidence {
        payload: vec![0; ABORT_EVIDENCE_PAYLOAD_LEN_MAX],
        ..evidence.clone()
    };
    let long_bytes = long.to_wire();
    assert_eq!(long_bytes.len(), ABORT_EVIDENCE_FIXED_LEN + 64);
    assert_eq!(AbortEvidence::from_wire(&long_bytes), Ok(long));
    let mut big = long_bytes[..68].to_vec();
    big.extend_from_slice(&65u16.to_be_bytes());
    big.resize(big.len() + 65 + 64, 0);
    assert!(matches!(
        AbortEvidence::from_wire(&big),
        Err(DecodeError::TooLong {
            what: "abort payload",
            ..
        })
    ));
    // The longest entry: a Void whose evidence payload is at the maximum.
    let longest = EntryKind::Void {
        tx: TX_ABORTED,
        paid_seq: 3,
        amount: eur(500),
        proof: VoidProof::SellerAbort(AbortEvidence {
            payload: vec![0; ABORT_EVIDENCE_PAYLOAD_LEN_MAX],
            ..evidence
        }),
    };
    let mut chain = c.alice[..4].to_vec();
    append(&mut chain, &w.alice, longest, 18_750, T0.0 + 5_000);
    assert_eq!(chain[4].to_wire().len(), LONGEST_ENTRY_LEN);
    assert_eq!(RECEIVE_ENTRY_LEN, LONGEST_ENTRY_LEN);
}

// ---- envelope ---------------------------------------------------------------

#[test]
fn header_layout() {
    let (alice, bob) = (PartyId::from_u64(10), PartyId::from_u64(11));
    let h = header(alice, bob, kind::COMMIT_REQUEST, 0x0102_0304_0506_0708);
    let bytes = h.to_bytes();
    assert_eq!(bytes.len(), HEADER_LEN);
    assert_eq!(bytes.len(), 68);
    assert_eq!(bytes[0], 1);
    assert_eq!(bytes[1], 0x01);
    assert_eq!(&bytes[2..4], &[0x01, 0x03]);
    assert_eq!(&bytes[4..20], &alice.0);
    assert_eq!(&bytes[20..36], &bob.0);
    assert_eq!(&bytes[36..52], &TX.0);
    assert_eq!(be_u64(&bytes, 52), 0x0102_0304_0506_0708);
    assert_eq!(be_u64(&bytes, 60), T0.0);
    assert_eq!(h.to_wire(), bytes.to_vec());
    assert_eq!(Header::from_wire(&bytes), Ok(h));
}

#[test]
fn sealed_frame_layout() {
    let w = world();
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    for message in messages(&w) {
        if message.kind().is_broadcast() {
            continue;
        }
        let payload = message.payload();
        let h = header(w.alice.id, w.bob.id, message.kind(), 5);
        let frame =
            envelope::seal(&w.alice.keys, &h, &payload, &w.bob.keys.public(), &mut rng).unwrap();
        let p = payload.len();
        assert_eq!(frame.len(), SEALED_FRAME_OVERHEAD + p);
        assert_eq!(&frame[..68], &h.to_bytes());
        let encapsulated: [u8; 32] = frame[68..100].try_into().unwrap();
        let ct_len = usize::try_from(be_u32(&frame, 100)).unwrap();
        assert_eq!(ct_len, 4 + p + SIGNATURE_LEN + 16);
        assert_eq!(frame.len(), 104 + ct_len);
        // HPKE base mode; info "mpay/v1/hpke" ‖ version; aad the header.
        let plaintext = w
            .bob
            .keys
            .open(HPKE_INFO_V1, &frame[..68], &encapsulated, &frame[104..])
            .unwrap();
        assert_eq!(plaintext.len(), ct_len - 16);
        assert_eq!(usize::try_from(be_u32(&plaintext, 0)).unwrap(), p);
        assert_eq!(&plaintext[4..4 + p], &payload[..]);
        let signature = Signature(plaintext[4 + p..].try_into().unwrap());
        // The signature covers ENVELOPE tag ‖ header ‖ payload.
        w.alice
            .keys
            .public()
            .verify(tags::ENVELOPE, &[&frame[..68], &payload], &signature)
            .unwrap();
        // A wrong info string does not open.
        assert!(
            w.bob
                .keys
                .open(b"mpay/v1/hpke", &frame[..68], &encapsulated, &frame[104..])
                .is_err()
        );
        let mut replay = ReplayGuard::new();
        let verified = envelope::open(&frame, &w.bob.keys, w.bob.id, &w.trust, T0)
            .unwrap()
            .verify(&w.alice.cert, &w.trust, &mut replay, T0)
            .unwrap();
        assert_eq!(verified.payload(), &payload[..]);
        assert_eq!(verified.signature(), &signature);
        assert_eq!(
            Message::decode(verified.header().kind, verified.payload()),
            Ok(message)
        );
    }
}

#[test]
fn hand_built_sealed_frame_is_accepted() {
    let w = world();
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let h = header(w.alice.id, w.bob.id, kind::ABORT, 77).to_bytes();
    let payload = [AbortReason::Busy.tag()];
    let signature = w.alice.keys.sign(tags::ENVELOPE, &[&h, &payload]);
    let mut plaintext = Vec::new();
    plaintext.extend_from_slice(&1u32.to_be_bytes());
    plaintext.extend_from_slice(&payload);
    plaintext.extend_from_slice(&signature.0);
    let (enc, ct) = w
        .bob
        .keys
        .public()
        .seal(HPKE_INFO_V1, &h, &plaintext, &mut rng)
        .unwrap();
    assert_eq!(ct.len(), plaintext.len() + SEALED_OVERHEAD - 32);
    let mut frame = h.to_vec();
    frame.extend_from_slice(&enc);
    frame.extend_from_slice(&u32::try_from(ct.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(&ct);
    let mut replay = ReplayGuard::new();
    let verified = envelope::open(&frame, &w.bob.keys, w.bob.id, &w.trust, T0)
        .unwrap()
        .verify(&w.alice.cert, &w.trust, &mut replay, T0)
        .unwrap();
    assert_eq!(
        Message::decode(kind::ABORT, verified.payload()),
        Ok(Message::Abort(Abort {
            reason: AbortReason::Busy
        }))
    );
    // The same frame again is a replay.
    assert_eq!(
        envelope::open(&frame, &w.bob.keys, w.bob.id, &w.trust, T0)
            .unwrap()
            .verify(&w.alice.cert, &w.trust, &mut replay, T0)
            .unwrap_err(),
        EnvelopeError::Replay
    );
    // A signature over anything else (here: without the tag) is refused
    // only at verify, after the seal opened.
    let bad_sig = w.alice.keys.sign(b"", &[&h, &payload]);
    plaintext[5..].copy_from_slice(&bad_sig.0);
    let (enc, ct) = w
        .bob
        .keys
        .public()
        .seal(HPKE_INFO_V1, &h, &plaintext, &mut rng)
        .unwrap();
    let mut frame = h.to_vec();
    frame.extend_from_slice(&enc);
    frame.extend_from_slice(&u32::try_from(ct.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(&ct);
    let unverified = envelope::open(&frame, &w.bob.keys, w.bob.id, &w.trust, T0).unwrap();
    assert_eq!(
        unverified
            .clone()
            .verify(&w.bob.cert, &w.trust, &mut ReplayGuard::new(), T0)
            .unwrap_err(),
        EnvelopeError::SenderMismatch {
            sender: w.alice.id,
            certificate_of: w.bob.id
        }
    );
    assert_eq!(
        unverified
            .verify(&w.alice.cert, &w.trust, &mut ReplayGuard::new(), T0)
            .unwrap_err(),
        EnvelopeError::BadSignature
    );
}

#[test]
fn broadcast_frame_layout() {
    let w = world();
    let message = Message::Lookup(Lookup {
        seller_certificate: w.bob.cert.clone(),
        revocation_list: Some(revocation_list(&w)),
    });
    assert_eq!(message.kind(), kind::LOOKUP);
    assert!(kind::LOOKUP.is_broadcast());
    let payload = message.payload();
    let p = payload.len();
    let h = header(w.bob.id, PartyId::BROADCAST, kind::LOOKUP, 9);
    let frame = envelope::sign_broadcast(&w.bob.keys, &h, &payload).unwrap();
    assert_eq!(frame.len(), BROADCAST_FRAME_OVERHEAD + p);
    assert_eq!(&frame[..68], &h.to_bytes());
    assert_eq!(&frame[2..4], &[0x81, 0x01]);
    assert_eq!(&frame[20..36], &[0; 16]);
    assert_eq!(usize::try_from(be_u32(&frame, 68)).unwrap(), p);
    assert_eq!(&frame[72..72 + p], &payload[..]);
    let signature = Signature(frame[72 + p..].try_into().unwrap());
    w.bob
        .keys
        .public()
        .verify(tags::ENVELOPE, &[&frame[..68], &payload], &signature)
        .unwrap();
    let verified = envelope::open(&frame, &w.alice.keys, w.alice.id, &w.trust, T0)
        .unwrap()
        .verify(&w.bob.cert, &w.trust, &mut ReplayGuard::new(), T0)
        .unwrap();
    assert_eq!(
        Message::decode(kind::LOOKUP, verified.payload()),
        Ok(message)
    );

    let mut trailing = frame.clone();
    trailing.push(0);
    assert_eq!(
        envelope::open(&trailing, &w.alice.keys, w.alice.id, &w.trust, T0).unwrap_err(),
        EnvelopeError::Malformed(DecodeError::TrailingBytes { count: 1 })
    );
    // Broadcast receiver with a kind lacking the high bit.
    let mut no_bit = frame.clone();
    no_bit[2] = 0x01;
    assert_eq!(
        envelope::open(&no_bit, &w.alice.keys, w.alice.id, &w.trust, T0).unwrap_err(),
        EnvelopeError::BroadcastMismatch(0x0101)
    );
    // Senders refuse to mix the two forms.
    assert!(
        envelope::seal(
            &w.bob.keys,
            &h,
            &payload,
            &w.alice.keys.public(),
            &mut ChaCha20Rng::seed_from_u64(1)
        )
        .is_err()
    );
    let directed = header(w.bob.id, w.alice.id, kind::LOOKUP_REPLY, 9);
    assert!(envelope::sign_broadcast(&w.bob.keys, &directed, &payload).is_err());
}

#[test]
fn open_checks_in_the_documented_order() {
    let w = world();
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let h = header(w.alice.id, w.bob.id, kind::COMMIT, 1);
    let frame = envelope::seal(&w.alice.keys, &h, &[], &w.bob.keys.public(), &mut rng).unwrap();
    let open = |frame: &[u8], now: Timestamp| {
        envelope::open(frame, &w.bob.keys, w.bob.id, &w.trust, now).map(|_| ())
    };
    let with = |edits: &[(usize, u8)]| {
        let mut f = frame.clone();
        for &(at, v) in edits {
            f[at] = v;
        }
        f
    };
    assert_eq!(open(&frame, T0), Ok(()));

    // 1. Size, before anything is read.
    let mut big = with(&[(0, 9)]);
    big.resize(FRAME_LEN_MAX + 1, 0);
    assert_eq!(
        open(&big, T0),
        Err(EnvelopeError::TooLarge {
            len: FRAME_LEN_MAX + 1
        })
    );
    // 2. A whole header.
    assert!(matches!(
        open(&frame[..67], T0),
        Err(EnvelopeError::Malformed(DecodeError::UnexpectedEnd { .. }))
    ));
    // 3. Version, before suite.
    assert_eq!(
        open(&with(&[(0, 2), (1, 0x02)]), T0),
        Err(EnvelopeError::UnsupportedVersion(2))
    );
    // 4. Suite (unknown, or not accepted here), before the broadcast rule.
    assert_eq!(
        open(&with(&[(1, 0x02), (2, 0x81)]), T0),
        Err(EnvelopeError::UnsupportedSuite(0x02))
    );
    assert_eq!(
        open(&with(&[(1, 0xF0)]), T0),
        Err(EnvelopeError::UnsupportedSuite(0xF0))
    );
    // 5. Broadcast bit and receiver agree, before the receiver check.
    assert_eq!(
        open(&with(&[(2, 0x81), (21, 0xEE)]), T0),
        Err(EnvelopeError::BroadcastMismatch(0x8106))
    );
    // 6. Receiver, before freshness.
    let stale = Timestamp(T0.0 + MESSAGE_AGE_MAX_MS + 1);
    assert!(matches!(
        open(&with(&[(21, 0xEE)]), stale),
        Err(EnvelopeError::WrongReceiver { .. })
    ));
    // 7. Freshness: at most MESSAGE_AGE_MAX_MS old, CLOCK_SKEW_MAX_MS ahead.
    assert_eq!(open(&frame, Timestamp(T0.0 + MESSAGE_AGE_MAX_MS)), Ok(()));
    assert_eq!(
        open(&frame, stale),
        Err(EnvelopeError::Stale { sent_at: T0 })
    );
    assert_eq!(open(&frame, Timestamp(T0.0 - CLOCK_SKEW_MAX_MS)), Ok(()));
    assert_eq!(
        open(&frame, Timestamp(T0.0 - CLOCK_SKEW_MAX_MS - 1)),
        Err(EnvelopeError::FromFuture { sent_at: T0 })
    );
    // 8. Frame structure after the header, before the seal.
    let mut trailing = frame.clone();
    trailing.push(0);
    assert_eq!(
        open(&trailing, T0),
        Err(EnvelopeError::Malformed(DecodeError::TrailingBytes {
            count: 1
        }))
    );
    assert!(matches!(
        open(&frame[..frame.len() - 1], T0),
        Err(EnvelopeError::Malformed(DecodeError::UnexpectedEnd { .. }))
    ));
    let mut too_long = frame.clone();
    too_long[100..104].copy_from_slice(&u32::try_from(FRAME_LEN_MAX + 1).unwrap().to_be_bytes());
    assert!(matches!(
        open(&too_long, T0),
        Err(EnvelopeError::Malformed(DecodeError::TooLong { .. }))
    ));
    // 9. The seal: any change to the header (aad), key or ciphertext.
    let last = frame.len() - 1;
    for at in [10, 40, 55, 58, 70, 110, last] {
        let mut f = frame.clone();
        f[at] ^= 0x01;
        assert_eq!(open(&f, T0), Err(EnvelopeError::SealBroken), "byte {at}");
    }
}

#[test]
fn verify_refuses_an_untrusted_sender_certificate() {
    let w = world();
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let h = header(w.alice.id, w.bob.id, kind::COMMITTED, 1);
    let frame = envelope::seal(&w.alice.keys, &h, &[], &w.bob.keys.public(), &mut rng).unwrap();
    // A certificate for Alice's id and keys from an issuer Bob does not trust.
    let rogue_id = PartyId::from_u64(66);
    let rogue_keys = keys(66);
    let forged = certify(
        rogue_id,
        &rogue_keys,
        w.alice.id,
        &w.alice.keys,
        Role::Wallet,
        Some(limits()),
    );
    let err = envelope::open(&frame, &w.bob.keys, w.bob.id, &w.trust, T0)
        .unwrap()
        .verify(&forged, &w.trust, &mut ReplayGuard::new(), T0)
        .unwrap_err();
    assert_eq!(
        err,
        EnvelopeError::Certificate(CertificateError::UnknownIssuer {
            subject: w.alice.id,
            issuer: rogue_id
        })
    );
}

// ---- wallet messages ----------------------------------------------------------

#[test]
fn message_kinds_and_payload_layouts() {
    let w = world();
    let list_len = REVOCATION_LIST_FIXED + REVOCATION_ENTRY_LEN;
    let expected: [(MessageKind, u16, usize); 9] = [
        (kind::LOOKUP, 0x8101, LOOKUP_FIXED_LEN + list_len),
        (kind::LOOKUP_REPLY, 0x0102, LOOKUP_REPLY_FIXED_LEN),
        (
            kind::COMMIT_REQUEST,
            0x0103,
            AMOUNT_LEN + 2 + "2 coffees".len() + CERT_LEN_LIMITS,
        ),
        (kind::AGREED, 0x0104, PAY_ENTRY_LEN + 1),
        (kind::ABORT, 0x0105, 1),
        (kind::COMMIT, 0x0106, 0),
        (kind::COMMITTED, 0x0107, 0),
        (kind::STATUS, 0x0108, CERT_LEN_LIMITS),
        (kind::ABORTED, 0x0109, 0),
    ];
    let messages = messages(&w);
    assert_eq!(messages.len(), expected.len());
    for (message, (k, number, len)) in messages.iter().zip(expected) {
        assert_eq!(message.kind(), k);
        assert_eq!(k.0, number);
        assert_eq!(k.is_broadcast(), number & 0x8000 != 0);
        assert_eq!(message.payload().len(), len, "kind {number:#06x}");
    }
    // Only LOOKUP is a broadcast kind.
    assert!(
        messages
            .iter()
            .all(|m| m.kind().is_broadcast() == (m.kind() == kind::LOOKUP))
    );

    let cr = messages[2].payload();
    assert_eq!(&cr[0..11], &eur(1_250).to_wire()[..]);
    assert_eq!(be_u16(&cr, 11), 9);
    assert_eq!(&cr[13..22], b"2 coffees");
    assert_eq!(&cr[22..], &w.bob.cert.to_wire()[..]);
    let lookup = messages[0].payload();
    assert_eq!(&lookup[..208], &w.bob.cert.to_wire()[..]);
    assert_eq!(lookup[208], 1, "list present");
    assert_eq!(&lookup[209..], &revocation_list(&w).to_wire()[..]);
    let reply = messages[1].payload();
    assert_eq!(&reply[..208], &w.alice.cert.to_wire()[..]);
    assert_eq!(&reply[208..363], &attestation(&w).to_wire()[..]);
    assert_eq!(reply[363], 0, "list absent");
    // Without a list LOOKUP is 209 bytes; with one, LOOKUP_REPLY is 364 + list.
    let bare = Message::Lookup(Lookup {
        seller_certificate: w.bob.cert.clone(),
        revocation_list: None,
    });
    assert_eq!(bare.payload().len(), LOOKUP_FIXED_LEN);
    let listed = Message::LookupReply(LookupReply {
        buyer_certificate: w.alice.cert.clone(),
        attestation: attestation(&w),
        revocation_list: Some(revocation_list(&w)),
    });
    assert_eq!(listed.payload().len(), LOOKUP_REPLY_FIXED_LEN + list_len);
    assert_eq!(
        Message::decode(kind::LOOKUP_REPLY, &listed.payload()),
        Ok(listed)
    );
    let mut presence = lookup.clone();
    presence[208] = 2;
    assert!(matches!(
        Message::decode(kind::LOOKUP, &presence),
        Err(DecodeError::UnknownTag { .. })
    ));
    // The longest lists that still fit a payload (the document's n).
    let fits = |fixed: usize, n: usize| {
        fixed + REVOCATION_LIST_FIXED + REVOCATION_ENTRY_LEN * n <= PAYLOAD_LEN_MAX
    };
    assert!(fits(LOOKUP_FIXED_LEN, 2380) && !fits(LOOKUP_FIXED_LEN, 2381));
    assert!(fits(LOOKUP_REPLY_FIXED_LEN, 2374) && !fits(LOOKUP_REPLY_FIXED_LEN, 2375));
    assert!(fits(LOOKUP_FIXED_LEN, 2380) && !fits(LOOKUP_FIXED_LEN, LIST_LEN_MAX));
    // AGREED: the Pay entry, then 0 (no shipping details shared).
    let mut agreed = chains(&w).alice[2].to_wire();
    agreed.push(0);
    assert_eq!(messages[3].payload(), agreed);
    assert_eq!(messages[4].payload(), vec![1]);
    assert_eq!(messages[7].payload(), w.alice.cert.to_wire());

    // The description is at most TEXT_LEN_MAX bytes of UTF-8.
    let mut long = cr[..11].to_vec();
    long.extend_from_slice(&u16::try_from(TEXT_LEN_MAX + 1).unwrap().to_be_bytes());
    long.resize(long.len() + TEXT_LEN_MAX + 1, b'a');
    long.extend_from_slice(&w.bob.cert.to_wire());
    assert!(matches!(
        Message::decode(kind::COMMIT_REQUEST, &long),
        Err(DecodeError::TooLong {
            what: "description",
            ..
        })
    ));
    let mut not_utf8 = cr.clone();
    not_utf8[13] = 0xff;
    assert_eq!(
        Message::decode(kind::COMMIT_REQUEST, &not_utf8),
        Err(DecodeError::InvalidUtf8 {
            what: "description"
        })
    );
}

#[test]
fn every_message_round_trips() {
    let w = world();
    for message in messages(&w) {
        let payload = message.payload();
        assert_eq!(
            Message::decode(message.kind(), &payload),
            Ok(message.clone())
        );
    }
}

#[test]
fn truncated_or_extended_payloads_are_errors() {
    let w = world();
    for message in messages(&w) {
        let k = message.kind();
        let payload = message.payload();
        for cut in 0..payload.len() {
            assert!(
                Message::decode(k, &payload[..cut]).is_err(),
                "kind {:#06x} accepted {cut} of {} bytes",
                k.0,
                payload.len()
            );
        }
        let mut longer = payload.clone();
        longer.push(0);
        assert_eq!(
            Message::decode(k, &longer),
            Err(DecodeError::TrailingBytes { count: 1 }),
            "kind {:#06x}",
            k.0
        );
    }
}

#[test]
fn unknown_kinds_are_errors() {
    for k in [
        0x0000, 0x0100, 0x010a, 0x0201, 0x0202, 0x8102, 0x81ff, 0xffff,
    ] {
        assert!(
            matches!(
                Message::decode(MessageKind(k), &[]),
                Err(DecodeError::Invalid {
                    what: "message kind",
                    ..
                })
            ),
            "kind {k:#06x}"
        );
    }
}

// ---- sync with the money office ---------------------------------------------

#[test]
fn sync_attestation_layout() {
    let w = world();
    let c = chains(&w);
    let a = attestation(&w);
    let bytes = a.to_wire();
    assert_eq!(bytes.len(), SYNC_ATTESTATION_LEN);
    assert_eq!(&bytes[0..16], &w.office.id.0);
    assert_eq!(&bytes[16..32], &w.alice.id.0);
    assert_eq!(be_u64(&bytes, 32), 2);
    assert_eq!(&bytes[40..72], &c.alice[2].hash());
    assert_eq!(&bytes[72..83], &eur(18_750).to_wire()[..]);
    assert_eq!(be_u64(&bytes, 83), SYNCED_AT.0);
    // The office signs SYNC_ATTESTATION tag ‖ bytes 0..91.
    let signature = Signature(bytes[SYNC_ATTESTATION_SIGNED_LEN..].try_into().unwrap());
    w.office
        .keys
        .public()
        .verify(
            tags::SYNC_ATTESTATION,
            &[&bytes[..SYNC_ATTESTATION_SIGNED_LEN]],
            &signature,
        )
        .unwrap();
    assert!(a.verify(&w.office.keys.public()));
    assert!(!a.verify(&w.alice.keys.public()));
    // The same bytes signed under another tag do not verify.
    let other_tag = SyncAttestation {
        signature: w
            .office
            .keys
            .sign(tags::RESOLUTION, &[&bytes[..SYNC_ATTESTATION_SIGNED_LEN]]),
        ..a.clone()
    };
    assert!(!other_tag.verify(&w.office.keys.public()));
    assert_eq!(SyncAttestation::from_wire(&bytes), Ok(a));
}

#[test]
fn resolution_layout() {
    let w = world();
    let r = release(&w);
    let bytes = r.to_wire();
    assert_eq!(bytes.len(), RESOLUTION_LEN);
    assert_eq!(&bytes[0..16], &w.office.id.0);
    assert_eq!(&bytes[16..32], &w.alice.id.0);
    assert_eq!(&bytes[32..48], &TX_RELEASED.0);
    assert_eq!(be_u64(&bytes, 48), 5);
    assert_eq!(bytes[56], Outcome::Released.tag());
    assert_eq!(be_u64(&bytes, 57), RESOLVED_AT.0);
    // The office signs RESOLUTION tag ‖ bytes 0..65.
    let signature = Signature(bytes[RESOLUTION_SIGNED_LEN..].try_into().unwrap());
    w.office
        .keys
        .public()
        .verify(
            tags::RESOLUTION,
            &[&bytes[..RESOLUTION_SIGNED_LEN]],
            &signature,
        )
        .unwrap();
    assert!(r.verify(&w.office.keys.public()));
    let settled = Resolution {
        outcome: Outcome::Settled,
        ..r.clone()
    };
    assert!(!settled.verify(&w.office.keys.public()));
    assert_eq!(Resolution::from_wire(&bytes), Ok(r));
    let mut bad = bytes.clone();
    bad[56] = 3;
    assert_eq!(
        Resolution::from_wire(&bad),
        Err(DecodeError::UnknownTag {
            what: "resolution outcome",
            tag: 3
        })
    );
}

#[test]
fn sync_request_layout() {
    let w = world();
    let c = chains(&w);
    let request = SyncRequest {
        entries: c.alice[3..].to_vec(),
        uncertain: vec![Uncertain {
            tx: TX_RELEASED,
            pay_seq: 5,
        }],
        revocation_version: 7,
        head_seq: 4,
    };
    let bytes = request.to_wire();
    assert_eq!(be_u16(&bytes, 0), 5);
    let mut at = 2;
    for entry in &c.alice[3..] {
        let entry = entry.to_wire();
        assert_eq!(&bytes[at..at + entry.len()], &entry[..]);
        at += entry.len();
    }
    let sum = at - 2;
    assert_eq!(be_u16(&bytes, at), 1);
    assert_eq!(&bytes[at + 2..at + 18], &TX_RELEASED.0);
    assert_eq!(be_u64(&bytes, at + 18), 5);
    assert_eq!(be_u64(&bytes, at + 2 + UNCERTAIN_LEN), 7);
    assert_eq!(be_u64(&bytes, at + 10 + UNCERTAIN_LEN), 4);
    assert_eq!(bytes.len(), SYNC_REQUEST_FIXED_LEN + sum + UNCERTAIN_LEN);
    assert_eq!(SyncRequest::from_wire(&bytes), Ok(request));

    // Counts are checked against their maxima before anything is read.
    let too_many = u16::try_from(SYNC_ENTRIES_MAX + 1).unwrap().to_be_bytes();
    assert!(matches!(
        SyncRequest::from_wire(&too_many),
        Err(DecodeError::TooLong {
            what: "sync entries",
            ..
        })
    ));
    let mut uncertain = vec![0, 0];
    uncertain.extend_from_slice(&u16::try_from(SYNC_UNCERTAIN_MAX + 1).unwrap().to_be_bytes());
    assert!(matches!(
        SyncRequest::from_wire(&uncertain),
        Err(DecodeError::TooLong {
            what: "uncertain payments",
            ..
        })
    ));
    // A Receive entry in a request carries its Pay entry.
    let seller = SyncRequest {
        entries: c.bob[1..].to_vec(),
        uncertain: vec![],
        revocation_version: 0,
        head_seq: 1,
    };
    let bytes = seller.to_wire();
    assert_eq!(bytes.len(), SYNC_REQUEST_FIXED_LEN + RECEIVE_ENTRY_LEN);
    assert_eq!(SyncRequest::from_wire(&bytes), Ok(seller));
    // At the maxima, with the longest entries, a request fits one payload:
    // the document's 49428 bytes.
    let largest = SYNC_REQUEST_FIXED_LEN
        + SYNC_ENTRIES_MAX * LONGEST_ENTRY_LEN
        + SYNC_UNCERTAIN_MAX * UNCERTAIN_LEN;
    assert_eq!(largest, 49_428);
    assert!(largest <= PAYLOAD_LEN_MAX);
}

#[test]
fn sync_response_layout() {
    let w = world();
    let a = attestation(&w);
    let list = revocation_list(&w);
    let list_len = REVOCATION_LIST_FIXED + REVOCATION_ENTRY_LEN;
    let response = SyncResponse {
        attestation: a.clone(),
        revocation_list: Some(list.clone()),
        resolutions: vec![release(&w)],
        entries: vec![],
    };
    let bytes = response.to_wire();
    assert_eq!(
        bytes.len(),
        SYNC_RESPONSE_FIXED_LEN + list_len + RESOLUTION_LEN
    );
    assert_eq!(&bytes[..155], &a.to_wire()[..]);
    assert_eq!(bytes[155], 1);
    assert_eq!(&bytes[156..156 + list_len], &list.to_wire()[..]);
    assert_eq!(be_u16(&bytes, 156 + list_len), 1);
    assert_eq!(
        &bytes[158 + list_len..158 + list_len + RESOLUTION_LEN],
        &release(&w).to_wire()[..]
    );
    assert_eq!(be_u16(&bytes, 158 + list_len + RESOLUTION_LEN), 0);
    assert_eq!(SyncResponse::from_wire(&bytes), Ok(response));

    let bare = SyncResponse {
        attestation: a,
        revocation_list: None,
        resolutions: vec![],
        entries: vec![],
    };
    let bytes = bare.to_wire();
    assert_eq!(bytes.len(), SYNC_RESPONSE_FIXED_LEN);
    assert_eq!(bytes[155], 0);
    assert_eq!(be_u16(&bytes, 156), 0);
    assert_eq!(SyncResponse::from_wire(&bytes), Ok(bare));
    // The longest lists that still fit a payload (the document's k).
    let fits = |k: usize, r: usize| {
        SYNC_RESPONSE_FIXED_LEN
            + REVOCATION_LIST_FIXED
            + REVOCATION_ENTRY_LEN * k
            + RESOLUTION_LEN * r
            <= PAYLOAD_LEN_MAX
    };
    assert!(fits(2382, 0) && !fits(2383, 0));
    // Catch-up entries for a restored wallet follow the resolutions.
    let c = chains(&w);
    let catch_up = SyncResponse {
        attestation: attestation(&w),
        revocation_list: None,
        resolutions: vec![],
        entries: c.alice[1..].to_vec(),
    };
    let caught = catch_up.to_wire();
    assert_eq!(
        usize::from(be_u16(&caught, 158)),
        c.alice.len() - 1,
        "entry count after the resolutions"
    );
    assert_eq!(
        &caught[160..],
        &c.alice[1..]
            .iter()
            .flat_map(|e| e.to_wire())
            .collect::<Vec<u8>>()[..]
    );
    assert_eq!(SyncResponse::from_wire(&caught), Ok(catch_up));
    let mut too_many = caught[..158].to_vec();
    too_many.extend_from_slice(&u16::try_from(SYNC_CATCH_UP_MAX + 1).unwrap().to_be_bytes());
    assert!(matches!(
        SyncResponse::from_wire(&too_many),
        Err(DecodeError::TooLong {
            what: "catch-up entries",
            ..
        })
    ));
    assert!(fits(2051, SYNC_UNCERTAIN_MAX) && !fits(2052, SYNC_UNCERTAIN_MAX));
    let mut huge = bytes[..156].to_vec();
    huge.extend_from_slice(&u16::try_from(LIST_LEN_MAX + 1).unwrap().to_be_bytes());
    assert!(matches!(
        SyncResponse::from_wire(&huge),
        Err(DecodeError::TooLong { .. })
    ));
}

#[test]
fn sync_kinds_are_sealed_and_not_wallet_messages() {
    assert_eq!(sync::kind::SYNC_REQUEST.0, 0x0201);
    assert_eq!(sync::kind::SYNC_RESPONSE.0, 0x0202);
    for k in [sync::kind::SYNC_REQUEST, sync::kind::SYNC_RESPONSE] {
        assert!(!k.is_broadcast());
        assert!(matches!(
            Message::decode(k, &[]),
            Err(DecodeError::Invalid {
                what: "message kind",
                ..
            })
        ));
    }
}

/// A wallet enrolled by the office with `certificate` and an enrollment
/// attestation synced at `synced_at`, and its store.
fn enroll(
    w: &World,
    p: &Party,
    certificate: &Certificate,
    synced_at: Timestamp,
) -> (Wallet, Snapshot) {
    let enrolled = SyncAttestation::issue(
        w.office.id,
        &w.office.keys,
        p.id,
        0,
        GENESIS_PREV_HASH,
        eur(0),
        synced_at,
    );
    let mut store = Snapshot::default();
    store
        .apply(&Wallet::genesis(&p.keys, certificate, &w.office.cert, &enrolled, T0).unwrap())
        .unwrap();
    assert_eq!(store.meta[meta::ATTESTATION], enrolled.to_wire());
    let wallet = Wallet::recover(Config::default(), &store, p.id.0[7].into(), T0).unwrap();
    (wallet, store)
}

/// Makes `wallet`'s writes durable in `store` and returns its frames.
fn flush(wallet: &mut Wallet, store: &mut Snapshot) -> Vec<Vec<u8>> {
    while let Some(write) = wallet.poll_write() {
        store.apply(&write.batch).unwrap();
        wallet.write_completed(write.id);
    }
    std::iter::from_fn(|| wallet.poll_transmit())
        .map(|t| t.frame)
        .collect()
}

fn deliver(from: (&mut Wallet, &mut Snapshot), to: &mut Wallet, now: Timestamp) {
    for frame in flush(from.0, from.1) {
        to.handle_frame(now, &frame).unwrap();
    }
}

fn events(wallet: &mut Wallet) -> Vec<Event> {
    std::iter::from_fn(|| wallet.poll_event()).collect()
}

fn buy_anything(wallet: &mut Wallet) {
    wallet.set_buy_intent(BuyIntent {
        max_amount: eur(10_000),
        seller: None,
        expires_at: Timestamp(T0.0 + 300 * DAY_MS),
    });
}

#[test]
fn seller_refuses_a_stale_attestation_at_lookup_reply() {
    let w = world();
    let (mut bob, mut bob_store) = enroll(&w, &w.bob, &w.bob.cert, T0);
    let (mut alice, mut alice_store) = enroll(&w, &w.alice, &w.alice.cert, T0);
    buy_anything(&mut alice);
    // Fresh: now − synced_at ≤ days_between_syncs_max days, inclusive.
    let max_age = u64::from(limits().days_between_syncs_max) * MILLIS_PER_DAY;
    for (now, expected) in [
        (
            Timestamp(T0.0 + max_age),
            Event::BuyerFound { buyer: w.alice.id },
        ),
        (
            Timestamp(T0.0 + max_age + 1),
            Event::BuyerRefused {
                buyer: w.alice.id,
                reason: AbortReason::SyncTooOld,
            },
        ),
    ] {
        bob.lookup(now);
        deliver((&mut bob, &mut bob_store), &mut alice, now);
        deliver((&mut alice, &mut alice_store), &mut bob, now);
        assert_eq!(events(&mut bob), vec![expected]);
        // Either way the seller sends nothing back: a refused buyer is not told.
        assert!(flush(&mut bob, &mut bob_store).is_empty());
    }
}

/// Alice, enrolled with `payments_between_syncs_max` = `max`, charges once
/// (entry 1) and pays Bob (entry 2). What Bob decides.
fn sale_after_a_charge(max: u32) -> Event {
    let w = world();
    let alice_cert = certify(
        w.office.id,
        &w.office.keys,
        w.alice.id,
        &w.alice.keys,
        Role::Wallet,
        Some(Limits {
            payments_between_syncs_max: max,
            ..limits()
        }),
    );
    let now = Timestamp(T0.0 + 10_000);
    let (mut bob, mut bob_store) = enroll(&w, &w.bob, &w.bob.cert, T0);
    let (mut alice, mut alice_store) = enroll(&w, &w.alice, &alice_cert, T0);
    alice.charge(now, voucher(&w)).unwrap();
    buy_anything(&mut alice);
    bob.lookup(now);
    deliver((&mut bob, &mut bob_store), &mut alice, now);
    deliver((&mut alice, &mut alice_store), &mut bob, now);
    assert_eq!(
        events(&mut bob),
        vec![Event::BuyerFound { buyer: w.alice.id }]
    );
    bob.sell(now, w.alice.id, eur(1_000), "tea").unwrap();
    deliver((&mut bob, &mut bob_store), &mut alice, now);
    deliver((&mut alice, &mut alice_store), &mut bob, now);
    assert_eq!(alice.chain().last().unwrap().seq, 2);
    let mut decided = events(&mut bob);
    assert_eq!(decided.len(), 1, "{decided:?}");
    decided.remove(0)
}

#[test]
fn seller_counts_entries_since_the_attested_one_at_agreed() {
    // Entries 1 (charge) and 2 (pay) follow the attested entry 0.
    assert!(matches!(
        sale_after_a_charge(2),
        Event::SaleCommitted { .. }
    ));
    assert!(matches!(
        sale_after_a_charge(1),
        Event::SaleAborted {
            reason: AbortReason::SyncTooOld,
            ..
        }
    ));
}

fn seal_to(from: &Party, to: &Party, kind: MessageKind, payload: &[u8], nonce: u64) -> Vec<u8> {
    let h = header(from.id, to.id, kind, nonce);
    let mut rng = ChaCha20Rng::seed_from_u64(nonce);
    envelope::seal(&from.keys, &h, payload, &to.keys.public(), &mut rng).unwrap()
}

/// Alice's SYNC_REQUEST as the office opens it: a sealed frame to the office.
fn sync_request_at_office(w: &World, alice: &mut Wallet, now: Timestamp) -> SyncRequest {
    let frame = alice.sync_request(now).unwrap();
    assert_eq!(&frame[2..4], &[0x02, 0x01]);
    let verified = envelope::open(&frame, &w.office.keys, w.office.id, &w.trust, now)
        .unwrap()
        .verify(&w.alice.cert, &w.trust, &mut ReplayGuard::new(), now)
        .unwrap();
    assert_eq!(verified.header().kind, sync::kind::SYNC_REQUEST);
    assert_eq!(verified.header().receiver, w.office.id);
    assert_eq!(
        frame.len(),
        SEALED_FRAME_OVERHEAD + verified.payload().len()
    );
    SyncRequest::from_wire(verified.payload()).unwrap()
}

#[test]
fn wallet_syncs_in_a_sealed_envelope() {
    let w = world();
    let now = Timestamp(T0.0 + 10_000);
    let (mut alice, mut store) = enroll(&w, &w.alice, &w.alice.cert, T0);
    alice.charge(now, voucher(&w)).unwrap();
    flush(&mut alice, &mut store);

    // SYNC_REQUEST: nothing attested yet, so every entry from the Genesis one.
    let request = sync_request_at_office(&w, &mut alice, now);
    assert_eq!(request.entries, alice.chain().to_vec());
    assert_eq!(request.entries[0].seq, 0);
    assert!(request.uncertain.is_empty());
    assert_eq!(request.revocation_version, 0);
    assert_eq!(request.head_seq, 1);

    // SYNC_RESPONSE: the checks of §7.5, in order; a failure changes nothing.
    let head = alice.chain()[1].hash();
    let attest = |wallet: PartyId, seq: u64, hash| {
        SyncAttestation::issue(
            w.office.id,
            &w.office.keys,
            wallet,
            seq,
            hash,
            eur(20_000),
            now,
        )
    };
    let response = |attestation, resolutions| {
        SyncResponse {
            attestation,
            revocation_list: Some(revocation_list(&w)),
            resolutions,
            entries: vec![],
        }
        .to_wire()
    };
    let good = response(attest(w.alice.id, 1, head), vec![]);
    // 5a. Catch-up entries that do not continue alice's chain (her own
    // entry 1 again, after her head 1).
    let not_continuing = SyncResponse {
        attestation: attest(w.alice.id, 2, head),
        revocation_list: None,
        resolutions: vec![],
        entries: vec![alice.chain()[1].clone()],
    }
    .to_wire();
    let for_bob = Resolution {
        wallet: w.bob.id,
        ..release(&w)
    };
    let mut trailing = good.clone();
    trailing.push(0);
    let cases = [
        // 2. Sender and kind.
        (
            seal_to(&w.bob, &w.alice, sync::kind::SYNC_RESPONSE, &good, 10),
            SyncError::NotFromOffice,
        ),
        (
            seal_to(&w.office, &w.alice, sync::kind::SYNC_REQUEST, &good, 11),
            SyncError::NotFromOffice,
        ),
        // 4. Payload.
        (
            seal_to(
                &w.office,
                &w.alice,
                sync::kind::SYNC_RESPONSE,
                &trailing,
                12,
            ),
            SyncError::Malformed(DecodeError::TrailingBytes { count: 1 }),
        ),
        // 5. Attestation for another wallet.
        (
            seal_to(
                &w.office,
                &w.alice,
                sync::kind::SYNC_RESPONSE,
                &response(attest(w.bob.id, 1, head), vec![]),
                13,
            ),
            SyncError::BadAttestation,
        ),
        // 6. A head this chain does not have, before the resolutions.
        (
            seal_to(
                &w.office,
                &w.alice,
                sync::kind::SYNC_RESPONSE,
                &response(attest(w.alice.id, 1, [0xAB; 32]), vec![for_bob.clone()]),
                14,
            ),
            SyncError::ForkedChain,
        ),
        (
            seal_to(
                &w.office,
                &w.alice,
                sync::kind::SYNC_RESPONSE,
                &response(attest(w.alice.id, 2, head), vec![]),
                15,
            ),
            SyncError::ForkedChain,
        ),
        (
            seal_to(
                &w.office,
                &w.alice,
                sync::kind::SYNC_RESPONSE,
                &not_continuing,
                21,
            ),
            SyncError::BadCatchUp,
        ),
        // 8. A resolution for another wallet.
        (
            seal_to(
                &w.office,
                &w.alice,
                sync::kind::SYNC_RESPONSE,
                &response(attest(w.alice.id, 1, head), vec![for_bob]),
                16,
            ),
            SyncError::BadResolution,
        ),
    ];
    let before = alice.attestation().clone();
    for (frame, error) in cases {
        assert_eq!(alice.apply_sync_response(now, &frame), Err(error));
        assert_eq!(alice.attestation(), &before);
        assert!(alice.poll_write().is_none());
    }

    // 6. "Nothing attested" (seq 0, head all zero) names no entry.
    let nothing = SyncResponse {
        attestation: attest(w.alice.id, 0, GENESIS_PREV_HASH),
        revocation_list: None,
        resolutions: vec![],
        entries: vec![],
    };
    let frame = seal_to(
        &w.office,
        &w.alice,
        sync::kind::SYNC_RESPONSE,
        &nothing.to_wire(),
        19,
    );
    assert_eq!(
        alice.apply_sync_response(now, &frame).unwrap().attested_seq,
        0
    );
    assert_eq!(sync_request_at_office(&w, &mut alice, now).entries.len(), 2);

    let frame = seal_to(&w.office, &w.alice, sync::kind::SYNC_RESPONSE, &good, 17);
    let summary = alice.apply_sync_response(now, &frame).unwrap();
    assert_eq!(summary.attested_seq, 1);
    assert_eq!(summary.entries_left, 0);
    assert_eq!(summary.revocation_version, Some(7));
    assert_eq!(alice.attestation(), &attest(w.alice.id, 1, head));
    assert!(
        sync_request_at_office(&w, &mut alice, now)
            .entries
            .is_empty()
    );
    flush(&mut alice, &mut store);
    assert_eq!(
        store.meta[meta::ATTESTATION],
        attest(w.alice.id, 1, head).to_wire()
    );
    assert_eq!(
        store.meta[meta::REVOCATION_LIST],
        revocation_list(&w).to_wire()
    );
    // 3. The same frame again is a replay.
    assert_eq!(
        alice.apply_sync_response(now, &frame),
        Err(SyncError::Envelope(EnvelopeError::Replay))
    );
    // 7. The attested seq never goes back.
    let back = response(attest(w.alice.id, 0, alice.chain()[0].hash()), vec![]);
    let frame = seal_to(&w.office, &w.alice, sync::kind::SYNC_RESPONSE, &back, 18);
    assert_eq!(
        alice.apply_sync_response(now, &frame),
        Err(SyncError::BadAttestation)
    );
}

#[test]
fn a_released_payment_becomes_a_void_entry_with_the_office_proof() {
    let w = world();
    let now = Timestamp(T0.0 + 10_000);
    let (mut bob, mut bob_store) = enroll(&w, &w.bob, &w.bob.cert, T0);
    let (mut alice, mut store) = enroll(&w, &w.alice, &w.alice.cert, T0);
    alice.charge(now, voucher(&w)).unwrap();
    buy_anything(&mut alice);
    bob.lookup(now);
    deliver((&mut bob, &mut bob_store), &mut alice, now);
    deliver((&mut alice, &mut store), &mut bob, now);
    let tx = bob.sell(now, w.alice.id, eur(1_000), "tea").unwrap();
    deliver((&mut bob, &mut bob_store), &mut alice, now);
    // Alice prepared and agreed; her AGREED is lost.
    flush(&mut alice, &mut store);
    let pay = alice.chain()[2].clone();
    let EntryKind::Pay { claim_deadline, .. } = pay.kind else {
        panic!("expected a Pay entry, got {:?}", pay.kind);
    };

    // Uncertain: prepared at or past the claim deadline.
    let early = Timestamp(claim_deadline.0 - 1);
    assert!(
        sync_request_at_office(&w, &mut alice, early)
            .uncertain
            .is_empty()
    );
    let request = sync_request_at_office(&w, &mut alice, claim_deadline);
    assert_eq!(request.uncertain, vec![Uncertain { tx, pay_seq: 2 }]);
    assert_eq!(request.entries, alice.chain().to_vec());

    let later = Timestamp(claim_deadline.0 + 1_000);
    let resolution = Resolution::issue(
        w.office.id,
        &w.office.keys,
        w.alice.id,
        tx,
        2,
        Outcome::Released,
        later,
    );
    let payload = SyncResponse {
        attestation: SyncAttestation::issue(
            w.office.id,
            &w.office.keys,
            w.alice.id,
            2,
            pay.hash(),
            eur(19_000),
            later,
        ),
        revocation_list: None,
        resolutions: vec![resolution.clone()],
        entries: vec![],
    }
    .to_wire();
    let mut office_header = header(w.office.id, w.alice.id, sync::kind::SYNC_RESPONSE, 1);
    office_header.sent_at = later;
    let frame = envelope::seal(
        &w.office.keys,
        &office_header,
        &payload,
        &w.alice.keys.public(),
        &mut ChaCha20Rng::seed_from_u64(1),
    )
    .unwrap();
    let summary = alice.apply_sync_response(later, &frame).unwrap();
    assert_eq!(summary.released, vec![tx]);
    let void = alice.chain().last().unwrap();
    assert_eq!(
        void.kind,
        EntryKind::Void {
            tx,
            paid_seq: 2,
            amount: eur(1_000),
            proof: VoidProof::OfficeRelease(resolution),
        }
    );
    assert_eq!(void.to_wire().len(), VOID_RELEASE_ENTRY_LEN);
    assert_eq!(alice.balance(), eur(20_000));
    flush(&mut alice, &mut store);
    assert!(store.txs.is_empty(), "the BuyerPrepared record is gone");
}

// ---- at rest ------------------------------------------------------------------

#[test]
fn tx_record_layouts() {
    let w = world();
    let c = chains(&w);
    let prepared = TxRecord::BuyerPrepared {
        seller: w.bob.id,
        amount: eur(1_250),
        pay_seq: 2,
        claim_deadline: Timestamp(T0.0 + 7 * DAY_MS),
        shipping: None,
    };
    let bytes = prepared.to_wire();
    assert_eq!(bytes.len(), 44);
    assert_eq!(bytes[0], 1);
    assert_eq!(&bytes[1..17], &w.bob.id.0);
    assert_eq!(&bytes[17..28], &eur(1_250).to_wire()[..]);
    assert_eq!(be_u64(&bytes, 28), 2);
    assert_eq!(be_u64(&bytes, 36), T0.0 + 7 * DAY_MS);
    // With shipping details to share: tag 4, the same fields, then the text
    // (u16 length, UTF-8).
    let sharing = TxRecord::BuyerPrepared {
        seller: w.bob.id,
        amount: eur(1_250),
        pay_seq: 2,
        claim_deadline: Timestamp(T0.0 + 7 * DAY_MS),
        shipping: Some(Shipping::new("1 Main St").expect("short text")),
    };
    let bytes = sharing.to_wire();
    assert_eq!(bytes.len(), 44 + 2 + 9);
    assert_eq!(bytes[0], 4);
    assert_eq!(&bytes[44..46], &[0, 9]);
    assert_eq!(&bytes[46..], b"1 Main St");
    assert_eq!(TxRecord::from_wire(&bytes), Ok(sharing));

    let committed = TxRecord::SellerCommitted {
        buyer: w.alice.id,
        authorization: Box::new(c.alice[2].clone()),
        receive_seq: 1,
    };
    let bytes = committed.to_wire();
    assert_eq!(bytes.len(), 1 + 16 + PAY_ENTRY_LEN + 8);
    assert_eq!(bytes[0], 3);
    assert_eq!(&bytes[1..17], &w.alice.id.0);
    assert_eq!(&bytes[17..208], &c.alice[2].to_wire()[..]);
    assert_eq!(be_u64(&bytes, 208), 1);

    for record in [prepared, committed] {
        assert_eq!(TxRecord::from_wire(&record.to_wire()), Ok(record));
    }
    // Tag 2 (BuyerAborted) is retired; 4 is BuyerPrepared sharing shipping
    // details, so a bare 4 is a truncated record.
    assert!(matches!(
        TxRecord::from_wire(&[4]),
        Err(DecodeError::UnexpectedEnd { .. })
    ));
    for tag in [0u8, 2, 5] {
        assert_eq!(
            TxRecord::from_wire(&[tag]),
            Err(DecodeError::UnknownTag {
                what: "tx record",
                tag
            })
        );
    }
}

// ---- the document itself -------------------------------------------------------

/// The document without whitespace, so wrapped hex blocks read as one string.
fn doc_compact() -> String {
    DOC.chars().filter(|c| !c.is_whitespace()).collect()
}

#[test]
fn doc_tables_match_the_constants() {
    let limits: [(&str, usize); 17] = [
        ("HEADER_LEN", HEADER_LEN),
        ("SIGNATURE_LEN", SIGNATURE_LEN),
        ("SEALED_OVERHEAD", SEALED_OVERHEAD),
        ("TEXT_LEN_MAX", TEXT_LEN_MAX),
        ("BYTES_LEN_MAX", BYTES_LEN_MAX),
        ("LIST_LEN_MAX", LIST_LEN_MAX),
        ("FRAME_LEN_MAX", FRAME_LEN_MAX),
        ("PAYLOAD_LEN_MAX", PAYLOAD_LEN_MAX),
        (
            "MESSAGE_AGE_MAX_MS",
            usize::try_from(MESSAGE_AGE_MAX_MS).unwrap(),
        ),
        (
            "CLOCK_SKEW_MAX_MS",
            usize::try_from(CLOCK_SKEW_MAX_MS).unwrap(),
        ),
        ("REPLAY_ENTRIES_MAX", REPLAY_ENTRIES_MAX),
        ("VERIFIED_CERTIFICATES_MAX", VERIFIED_CERTIFICATES_MAX),
        ("SYNC_ENTRIES_MAX", SYNC_ENTRIES_MAX),
        ("SYNC_UNCERTAIN_MAX", SYNC_UNCERTAIN_MAX),
        (
            "ABORT_EVIDENCE_PAYLOAD_LEN_MAX",
            ABORT_EVIDENCE_PAYLOAD_LEN_MAX,
        ),
        ("ENVELOPE_VERSION", usize::from(ENVELOPE_VERSION)),
        ("CERTIFICATE_VERSION", 1),
    ];
    for (name, value) in limits {
        let row = format!("| `{name}` | {value} |");
        assert!(
            DOC.contains(&row),
            "docs/wire-format.md lacks the row {row}"
        );
    }
    let tags = [
        ("CERTIFICATE", tags::CERTIFICATE),
        ("REVOCATION_LIST", tags::REVOCATION_LIST),
        ("ENVELOPE", tags::ENVELOPE),
        ("CHAIN_ENTRY", tags::CHAIN_ENTRY),
        ("CHARGE_VOUCHER", tags::CHARGE_VOUCHER),
        ("SYNC_ATTESTATION", tags::SYNC_ATTESTATION),
        ("RESOLUTION", tags::RESOLUTION),
        ("ENROLMENT", tags::ENROLMENT),
        ("HPKE_INFO", tags::HPKE_INFO),
    ];
    for (name, tag) in tags {
        let literal = tag.escape_ascii().to_string().replace("\\x00", "\\0");
        let row = format!("| `{name}` | `b\"{literal}\"` | {} |", tag.len());
        assert!(
            DOC.contains(&row),
            "docs/wire-format.md lacks the row {row}"
        );
    }
    let kinds = [
        ("LOOKUP", kind::LOOKUP),
        ("LOOKUP_REPLY", kind::LOOKUP_REPLY),
        ("COMMIT_REQUEST", kind::COMMIT_REQUEST),
        ("AGREED", kind::AGREED),
        ("ABORT", kind::ABORT),
        ("COMMIT", kind::COMMIT),
        ("COMMITTED", kind::COMMITTED),
        ("STATUS", kind::STATUS),
        ("ABORTED", kind::ABORTED),
        ("SYNC_REQUEST", sync::kind::SYNC_REQUEST),
        ("SYNC_RESPONSE", sync::kind::SYNC_RESPONSE),
    ];
    for (name, k) in kinds {
        let row = format!("| `{:#06x}` | {name} |", k.0);
        assert!(
            DOC.contains(&row),
            "docs/wire-format.md lacks the row {row}"
        );
    }
    let keys = [
        meta::SECRET_KEYS,
        meta::CERTIFICATE,
        meta::OFFICE_CERTIFICATE,
        meta::REVOCATION_LIST,
        meta::ATTESTATION,
    ];
    for key in keys {
        let row = format!("| meta | `\"{key}\"` |");
        assert!(
            DOC.contains(&row),
            "docs/wire-format.md lacks the row {row}"
        );
    }
    let reasons = [
        (AbortReason::SellerDecided, "SellerDecided"),
        (AbortReason::UnknownTransaction, "UnknownTransaction"),
        (AbortReason::NotAgreed, "NotAgreed"),
        (AbortReason::InsufficientFunds, "InsufficientFunds"),
        (AbortReason::OverLimit, "OverLimit"),
        (AbortReason::WrongCurrency, "WrongCurrency"),
        (AbortReason::BadAuthorization, "BadAuthorization"),
        (AbortReason::Busy, "Busy"),
        (AbortReason::InvalidAmount, "InvalidAmount"),
        (AbortReason::SyncTooOld, "SyncTooOld"),
        (AbortReason::NoAnswer, "NoAnswer"),
    ];
    assert_eq!(reasons.len(), AbortReason::ALL.len());
    for (reason, name) in reasons {
        let row = format!("| {} | {name} |", reason.tag());
        assert!(
            DOC.contains(&row),
            "docs/wire-format.md lacks the row {row}"
        );
    }
}

#[test]
fn doc_test_vectors_match_the_encoders() {
    let w = world();
    let c = chains(&w);
    let doc = doc_compact();
    let secret = w.alice.keys.to_secret_bytes();
    let abort_header = header(w.alice.id, w.bob.id, kind::ABORT, 0x0102_0304_0506_0708);
    let abort_signature = w
        .alice
        .keys
        .sign(tags::ENVELOPE, &[&abort_header.to_bytes(), &[1]]);
    let pay = &c.alice[2];
    let office_secret = w.office.keys.to_secret_bytes();
    let vectors = [
        ("amount", eur(1_250).to_wire()),
        ("ed25519 seed", secret[1..33].to_vec()),
        ("office ed25519 seed", office_secret[1..33].to_vec()),
        (
            "office signing key",
            w.office.keys.public().signing.to_vec(),
        ),
        ("office id", w.office.id.0.to_vec()),
        ("signing key", w.alice.keys.public().signing.to_vec()),
        ("sealing key", w.alice.keys.public().sealing.to_vec()),
        ("header", abort_header.to_bytes().to_vec()),
        ("envelope signature", abort_signature.0.to_vec()),
        ("pay entry", pay.to_wire()),
        ("pay entry hash", pay.hash().to_vec()),
        ("sync attestation", attestation(&w).to_wire()),
        ("resolution", release(&w).to_wire()),
    ];
    let missing: Vec<String> = vectors
        .iter()
        .map(|(name, bytes)| (name, hex_string(bytes)))
        .filter(|(_, hex)| !doc.contains(hex))
        .map(|(name, hex)| format!("{name}: {hex}"))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/wire-format.md lacks the vectors\n{}",
        missing.join("\n")
    );
}

proptest! {
    #[test]
    fn decode_never_panics(
        k in prop_oneof![Just(0x8101u16), 0x0100u16..0x010b, any::<u16>()],
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let _ = Message::decode(MessageKind(k), &bytes);
        let _ = ChainEntry::from_wire(&bytes);
        let _ = TxRecord::from_wire(&bytes);
        let _ = Certificate::from_wire(&bytes);
        let _ = SyncRequest::from_wire(&bytes);
        let _ = SyncResponse::from_wire(&bytes);
        let _ = SyncAttestation::from_wire(&bytes);
        let _ = Resolution::from_wire(&bytes);
    }
}

// ---- complete vectors: every kind, every key, sealed frames ------------------

/// §12 of the document and `docs/wire-vectors.json` are generated from the
/// fixed inputs above; this test fails when either differs from what the code
/// produces. `MPAY_WRITE_VECTORS=1` rewrites both (then review the diff).
const VECTORS_BEGIN: &str = "<!-- vectors:begin (generated by wire_vectors.rs) -->\n";
const VECTORS_END: &str = "<!-- vectors:end -->";
const VECTORS_JSON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/wire-vectors.json");
const DOC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/wire-format.md");

/// The seed of the RNG that sealed vector frame `n` (its ephemeral key).
fn seal_seed(n: u64) -> u64 {
    1_000 + n
}

/// The first 32 bytes the seal RNG yields: RFC 9180's `ikmE`.
fn ephemeral_ikm(n: u64) -> [u8; 32] {
    use rand_core::Rng as _;
    let mut ikm = [0u8; 32];
    ChaCha20Rng::seed_from_u64(seal_seed(n)).fill_bytes(&mut ikm);
    ikm
}

fn seed64(seed: u64) -> [u8; 64] {
    use rand_core::Rng as _;
    let mut out = [0u8; 64];
    ChaCha20Rng::seed_from_u64(seed).fill_bytes(&mut out);
    out
}

struct Vector {
    name: String,
    what: String,
    fields: Vec<(&'static str, String)>,
}

fn object(name: &str, what: &str, bytes: &[u8]) -> Vector {
    Vector {
        name: name.into(),
        what: what.into(),
        fields: vec![("bytes", hex_string(bytes))],
    }
}

fn party_fields(p: &Party, seed: u64) -> Vec<(&'static str, String)> {
    let secret = p.keys.to_secret_bytes();
    let public = p.keys.public();
    vec![
        ("party_id", hex_string(&p.id.0)),
        ("rng_seed_u64", seed.to_string()),
        ("seed64", hex_string(&seed64(seed))),
        ("ed25519_seed", hex_string(&secret[1..33])),
        ("ed25519_public", hex_string(&public.signing)),
        ("x25519_secret", hex_string(&secret[33..65])),
        ("x25519_public", hex_string(&public.sealing)),
        ("secret_key_file", hex_string(&secret)),
        ("public_keys", hex_string(&public.to_wire())),
        ("certificate", hex_string(&p.cert.to_wire())),
    ]
}

/// One frame: who sends which kind to whom, sealed (or signed, for a
/// broadcast kind) with the seal RNG of `n`.
fn frame_vector(
    n: u64,
    name: &str,
    from: (&str, &Party),
    to: Option<(&str, &Party)>,
    kind: MessageKind,
    payload: &[u8],
) -> Vector {
    let receiver = to.map_or(PartyId::BROADCAST, |(_, p)| p.id);
    let header = Header {
        nonce: n,
        ..header(from.1.id, receiver, kind, n)
    };
    let mut fields = vec![
        ("kind", format!("0x{:04x}", kind.0)),
        ("sender", from.0.to_string()),
        (
            "receiver",
            to.map_or("broadcast", |(name, _)| name).to_string(),
        ),
        ("header", hex_string(&header.to_bytes())),
        ("payload", hex_string(payload)),
    ];
    let signature = from
        .1
        .keys
        .sign(tags::ENVELOPE, &[&header.to_bytes(), payload]);
    fields.push(("signature", hex_string(&signature.0)));
    let frame = match to {
        None => envelope::sign_broadcast(&from.1.keys, &header, payload).unwrap(),
        Some((_, p)) => {
            let mut rng = ChaCha20Rng::seed_from_u64(seal_seed(n));
            let frame =
                envelope::seal(&from.1.keys, &header, payload, &p.keys.public(), &mut rng).unwrap();
            let ikm = ephemeral_ikm(n);
            let (sk_e, pk_e) = <hpke::kem::X25519HkdfSha256 as hpke::Kem>::derive_keypair(&ikm);
            use hpke::Serializable as _;
            assert_eq!(&frame[HEADER_LEN..HEADER_LEN + 32], &pk_e.to_bytes()[..]);
            fields.push(("ikm_e", hex_string(&ikm)));
            fields.push(("sk_e", hex_string(&sk_e.to_bytes())));
            fields.push(("enc", hex_string(&frame[HEADER_LEN..HEADER_LEN + 32])));
            let mut plaintext = (u32::try_from(payload.len()).unwrap())
                .to_be_bytes()
                .to_vec();
            plaintext.extend_from_slice(payload);
            plaintext.extend_from_slice(&signature.0);
            fields.push(("plaintext", hex_string(&plaintext)));
            frame
        }
    };
    fields.push(("frame", hex_string(&frame)));
    Vector {
        name: name.into(),
        what: "frame".into(),
        fields,
    }
}

fn all_vectors() -> Vec<Vector> {
    let w = world();
    let c = chains(&w);
    let mut v = vec![
        Vector {
            name: "office".into(),
            what: "party".into(),
            fields: party_fields(&w.office, 3),
        },
        Vector {
            name: "alice".into(),
            what: "party".into(),
            fields: party_fields(&w.alice, 1),
        },
        Vector {
            name: "bob".into(),
            what: "party".into(),
            fields: party_fields(&w.bob, 2),
        },
        object(
            "revocation list",
            "RevocationList",
            &revocation_list(&w).to_wire(),
        ),
        object("charge voucher", "ChargeVoucher", &voucher(&w).to_wire()),
    ];
    let names = [
        "alice entry 0 genesis",
        "alice entry 1 charge",
        "alice entry 2 pay",
        "alice entry 3 pay",
        "alice entry 4 void (seller abort)",
        "alice entry 5 pay",
        "alice entry 6 void (office release)",
        "alice entry 7 redeem",
    ];
    for (name, entry) in names.iter().zip(&c.alice) {
        let mut o = object(name, "ChainEntry", &entry.to_wire());
        o.fields.push(("hash", hex_string(&entry.hash())));
        v.push(o);
    }
    for (name, entry) in ["bob entry 0 genesis", "bob entry 1 receive"]
        .iter()
        .zip(&c.bob)
    {
        let mut o = object(name, "ChainEntry", &entry.to_wire());
        o.fields.push(("hash", hex_string(&entry.hash())));
        v.push(o);
    }
    v.push(object(
        "sync attestation",
        "SyncAttestation",
        &attestation(&w).to_wire(),
    ));
    v.push(object("resolution", "Resolution", &release(&w).to_wire()));
    let (alice, bob, office) = (("alice", &w.alice), ("bob", &w.bob), ("office", &w.office));
    let mut n = 1;
    for message in messages(&w) {
        let kind = message.kind();
        let (from, to) = match kind {
            kind::LOOKUP => (bob, None),
            kind::COMMIT_REQUEST | kind::ABORT | kind::COMMIT => (bob, Some(alice)),
            _ => (alice, Some(bob)),
        };
        let name = format!("{message:?}");
        let name = name
            .split(['(', ' '])
            .next()
            .unwrap_or_default()
            .to_string();
        v.push(frame_vector(n, &name, from, to, kind, &message.payload()));
        n += 1;
    }
    let request = SyncRequest {
        entries: c.alice[3..].to_vec(),
        uncertain: vec![Uncertain {
            tx: TX_RELEASED,
            pay_seq: 5,
        }],
        revocation_version: 7,
        head_seq: c.alice.last().map_or(0, |e| e.seq),
    };
    v.push(frame_vector(
        n,
        "SyncRequest",
        alice,
        Some(office),
        sync::kind::SYNC_REQUEST,
        &request.to_wire(),
    ));
    let response = SyncResponse {
        attestation: attestation(&w),
        revocation_list: Some(revocation_list(&w)),
        resolutions: vec![release(&w)],
        entries: vec![],
    };
    v.push(frame_vector(
        n + 1,
        "SyncResponse",
        office,
        Some(alice),
        sync::kind::SYNC_RESPONSE,
        &response.to_wire(),
    ));
    v
}

fn wrap_hex(hex: &str) -> String {
    hex.as_bytes()
        .chunks(64)
        .map(|line| format!("    {}\n", String::from_utf8_lossy(line)))
        .collect()
}

fn vectors_markdown(vectors: &[Vector]) -> String {
    let mut out = String::from(VECTORS_BEGIN);
    for v in vectors {
        out.push_str(&format!("\n#### {} ({})\n", v.name, v.what));
        for (key, value) in &v.fields {
            if value.len() <= 32 {
                out.push_str(&format!("\n`{key}`: `{value}`\n"));
            } else {
                out.push_str(&format!("\n`{key}`:\n\n{}", wrap_hex(value)));
            }
        }
    }
    out.push('\n');
    out.push_str(VECTORS_END);
    out
}

fn vectors_json(vectors: &[Vector]) -> String {
    let mut out = String::from("{\n  \"vectors\": [\n");
    for (i, v) in vectors.iter().enumerate() {
        out.push_str(&format!(
            "    {{\n      \"name\": \"{}\",\n      \"type\": \"{}\"",
            v.name, v.what
        ));
        for (key, value) in &v.fields {
            out.push_str(&format!(",\n      \"{key}\": \"{value}\""));
        }
        out.push_str(if i + 1 == vectors.len() {
            "\n    }\n"
        } else {
            "\n    },\n"
        });
    }
    out.push_str("  ]\n}\n");
    out
}

#[test]
fn doc_and_json_carry_every_vector_the_code_produces() {
    let vectors = all_vectors();
    let markdown = vectors_markdown(&vectors);
    let json = vectors_json(&vectors);
    let begin = DOC.find(VECTORS_BEGIN);
    let end = DOC.find(VECTORS_END);
    if std::env::var_os("MPAY_WRITE_VECTORS").is_some() {
        let doc = match (begin, end) {
            (Some(b), Some(e)) => {
                format!("{}{markdown}{}", &DOC[..b], &DOC[e + VECTORS_END.len()..])
            }
            _ => format!("{DOC}\n{markdown}\n"),
        };
        std::fs::write(DOC_PATH, doc).unwrap();
        std::fs::write(VECTORS_JSON, &json).unwrap();
        return;
    }
    let (Some(b), Some(e)) = (begin, end) else {
        panic!("docs/wire-format.md has no generated vectors section");
    };
    assert!(
        DOC[b..e + VECTORS_END.len()] == markdown,
        "docs/wire-format.md §12 differs from the code; rerun with MPAY_WRITE_VECTORS=1 and review"
    );
    let on_disk = std::fs::read_to_string(VECTORS_JSON).unwrap_or_default();
    assert!(
        on_disk == json,
        "docs/wire-vectors.json differs from the code; rerun with MPAY_WRITE_VECTORS=1 and review"
    );
}

#[test]
fn every_vector_frame_opens_and_verifies() {
    let w = world();
    let parties = [("alice", &w.alice), ("bob", &w.bob), ("office", &w.office)];
    for v in all_vectors().iter().filter(|v| v.what == "frame") {
        let field = |k: &str| {
            v.fields
                .iter()
                .find(|(key, _)| *key == k)
                .unwrap()
                .1
                .clone()
        };
        let party = |name: String| parties.iter().find(|(n, _)| *n == name).map(|(_, p)| *p);
        let frame = mpay_identity::hex_bytes(&field("frame")).unwrap();
        let sender = party(field("sender")).unwrap();
        let (me, my_id) = match party(field("receiver")) {
            Some(p) => (&p.keys, p.id),
            None => (&w.alice.keys, w.alice.id),
        };
        let opened = envelope::open(&frame, me, my_id, &w.trust, T0).unwrap();
        let verified = opened
            .verify(&sender.cert, &w.trust, &mut ReplayGuard::new(), T0)
            .unwrap();
        assert_eq!(
            hex_string(verified.payload()),
            field("payload"),
            "{}",
            v.name
        );
    }
}

#[test]
fn doc_timer_table_matches_the_engine_defaults() {
    let c = Config::default();
    let doc = doc_compact();
    let rows = [
        ("retry_interval_min_ms", c.retry_interval_min_ms.to_string()),
        ("retry_interval_max_ms", c.retry_interval_max_ms.to_string()),
        (
            "commit_request_attempts_max",
            c.commit_request_attempts_max.to_string(),
        ),
        ("status_after_ms", c.status_after_ms.to_string()),
        (
            "claim_window_ms",
            format!("{}days", c.claim_window_ms / DAY_MS),
        ),
        (
            "claim_window_min_ms",
            format!("{}day", c.claim_window_min_ms / DAY_MS),
        ),
        (
            "LOOKUPS_PER_WINDOW_MAX`/`LOOKUP_WINDOW_MS",
            format!("{}/{}", c.lookups_per_window_max, c.lookup_window_ms),
        ),
        (
            "MESSAGE_AGE_MAX_MS`/`CLOCK_SKEW_MAX_MS",
            format!("{MESSAGE_AGE_MAX_MS}/{CLOCK_SKEW_MAX_MS}"),
        ),
    ];
    for (name, value) in rows {
        let row = format!("|`{name}`|{value}|");
        assert!(doc.contains(&row), "docs/wire-format.md §5.1 lacks {row}");
    }
}
