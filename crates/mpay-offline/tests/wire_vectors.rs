//! Pins the byte layouts of `docs/wire-format.md` to the code, so that the
//! document cannot drift from the encoders without a test failing. Offsets
//! and lengths below are the ones the document states; the last tests also
//! check the document's tables and test vectors against the constants and
//! the encoders.

use mpay_envelope::{
    self as envelope, CLOCK_SKEW_MAX_MS, ENVELOPE_VERSION, EnvelopeError, FRAME_LEN_MAX,
    HEADER_LEN, Header, MESSAGE_AGE_MAX_MS, MessageKind, PAYLOAD_LEN_MAX, REPLAY_ENTRIES_MAX,
    ReplayGuard,
};
use mpay_identity::{
    Certificate, CertificateBody, CertificateError, Limits, PartyId, RevocationEntry,
    RevocationList, RevocationReason, Role, SEALED_OVERHEAD, SIGNATURE_LEN, SecretKeys, Signature,
    Suite, Timestamp, TrustStore, hex_string, tags,
};
use mpay_money::{Amount, Currency};
use mpay_offline::TxId;
use mpay_offline::chain::{ChainEntry, ChargeVoucher, EntryKind, GENESIS_PREV_HASH, verify_chain};
use mpay_offline::messages::{
    Abort, AbortReason, Agreed, CommitRequest, Lookup, LookupReply, Message, Status, kind,
};
use mpay_offline::records::{AbortEvidence, TxRecord};
use mpay_wire::{BYTES_LEN_MAX, Decode, DecodeError, Encode, LIST_LEN_MAX, TEXT_LEN_MAX};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const DOC: &str = include_str!("../../../docs/wire-format.md");

/// 2026-01-01T00:00:00Z.
const T0: Timestamp = Timestamp(1_767_225_600_000);
const DAY_MS: u64 = 24 * 60 * 60 * 1000;
const TX: TxId = TxId([0x22; 16]);
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
const RECEIVE_ENTRY_LEN: usize = 223;
const VOID_ENTRY_LEN: usize = 175;
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

/// Alice's chain (genesis, charge, pay, void) and Bob's (genesis, receive).
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

fn chains(w: &World) -> Chains {
    let a = &w.alice;
    let genesis = ChainEntry::sign(
        &a.keys,
        a.id,
        0,
        GENESIS_PREV_HASH,
        EntryKind::Genesis {
            certificate: a.cert.clone(),
        },
        eur(0),
        T0,
    );
    let charge = ChainEntry::sign(
        &a.keys,
        a.id,
        1,
        genesis.hash(),
        EntryKind::Charge {
            voucher: voucher(w),
        },
        eur(20_000),
        Timestamp(T0.0 + 2_000),
    );
    let pay = pay_entry(w, &charge);
    let void = ChainEntry::sign(
        &a.keys,
        a.id,
        3,
        pay.hash(),
        EntryKind::Void {
            tx: TX,
            paid_seq: 2,
            amount: eur(1_250),
        },
        eur(20_000),
        Timestamp(T0.0 + 4_000),
    );
    let b = &w.bob;
    let bob_genesis = ChainEntry::sign(
        &b.keys,
        b.id,
        0,
        GENESIS_PREV_HASH,
        EntryKind::Genesis {
            certificate: b.cert.clone(),
        },
        eur(0),
        T0,
    );
    let receive = ChainEntry::sign(
        &b.keys,
        b.id,
        1,
        bob_genesis.hash(),
        EntryKind::Receive {
            tx: TX,
            buyer: a.id,
            amount: eur(1_250),
            buyer_seq: pay.seq,
            buyer_entry_hash: pay.hash(),
        },
        eur(1_250),
        Timestamp(T0.0 + 3_500),
    );
    Chains {
        alice: vec![genesis, charge, pay, void],
        bob: vec![bob_genesis, receive],
    }
}

fn pay_entry(w: &World, charge: &ChainEntry) -> ChainEntry {
    ChainEntry::sign(
        &w.alice.keys,
        w.alice.id,
        2,
        charge.hash(),
        EntryKind::Pay {
            tx: TX,
            seller: w.bob.id,
            amount: eur(1_250),
            claim_deadline: Timestamp(T0.0 + 7 * DAY_MS),
        },
        eur(18_750),
        Timestamp(T0.0 + 3_000),
    )
}

/// One message of every kind, with fixed inputs.
fn messages(w: &World) -> Vec<Message> {
    let pay = chains(w).alice[2].clone();
    vec![
        Message::Lookup(Lookup {
            seller_certificate: w.bob.cert.clone(),
        }),
        Message::LookupReply(LookupReply {
            buyer_certificate: w.alice.cert.clone(),
        }),
        Message::CommitRequest(CommitRequest {
            amount: eur(1_250),
            description: "2 coffees".into(),
            seller_certificate: w.bob.cert.clone(),
        }),
        Message::Agreed(Agreed { authorization: pay }),
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
    assert_eq!(tags::HPKE_INFO, b"mpay/v1/hpke");
    let lens = [
        (tags::CERTIFICATE, 20),
        (tags::REVOCATION_LIST, 24),
        (tags::ENVELOPE, 17),
        (tags::CHAIN_ENTRY, 20),
        (tags::CHARGE_VOUCHER, 23),
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
    ];
    assert_eq!(AbortReason::ALL.len(), aborts.len());
    for (reason, tag) in aborts {
        assert_eq!(reason.to_wire(), [tag]);
    }
    for bad in [0u8, 10, 0xff] {
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

    let receive = check_entry_frame(&c.bob[1], bk, 3, 83, RECEIVE_ENTRY_LEN);
    assert_eq!(&receive[57..73], &TX.0);
    assert_eq!(&receive[73..89], &w.alice.id.0);
    assert_eq!(&receive[89..100], &eur(1_250).to_wire()[..]);
    assert_eq!(be_u64(&receive, 100), 2);
    assert_eq!(&receive[108..140], &c.alice[2].hash());

    let void = check_entry_frame(&c.alice[3], ak, 4, 35, VOID_ENTRY_LEN);
    assert_eq!(&void[57..73], &TX.0);
    assert_eq!(be_u64(&void, 73), 2);
    assert_eq!(&void[81..92], &eur(1_250).to_wire()[..]);

    // The chains are valid: links, sequence numbers and balances.
    verify_chain(&w.alice.keys.public(), None, &c.alice).unwrap();
    verify_chain(&w.bob.keys.public(), None, &c.bob).unwrap();
    assert_eq!(c.alice[1].prev_hash, c.alice[0].hash());

    let mut unknown = pay.clone();
    unknown[ENTRY_KIND_OFFSET] = 5;
    assert_eq!(
        ChainEntry::from_wire(&unknown),
        Err(DecodeError::UnknownTag {
            what: "entry kind",
            tag: 5
        })
    );
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
    let expected: [(MessageKind, u16, usize); 9] = [
        (kind::LOOKUP, 0x8101, CERT_LEN_LIMITS),
        (kind::LOOKUP_REPLY, 0x0102, CERT_LEN_LIMITS),
        (
            kind::COMMIT_REQUEST,
            0x0103,
            AMOUNT_LEN + 2 + "2 coffees".len() + CERT_LEN_LIMITS,
        ),
        (kind::AGREED, 0x0104, PAY_ENTRY_LEN),
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
    assert_eq!(messages[0].payload(), w.bob.cert.to_wire());
    assert_eq!(messages[1].payload(), w.alice.cert.to_wire());
    assert_eq!(messages[3].payload(), chains(&w).alice[2].to_wire());
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
    for k in [0x0000, 0x0100, 0x010a, 0x0201, 0x8102, 0x81ff, 0xffff] {
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
    };
    let bytes = prepared.to_wire();
    assert_eq!(bytes.len(), 44);
    assert_eq!(bytes[0], 1);
    assert_eq!(&bytes[1..17], &w.bob.id.0);
    assert_eq!(&bytes[17..28], &eur(1_250).to_wire()[..]);
    assert_eq!(be_u64(&bytes, 28), 2);
    assert_eq!(be_u64(&bytes, 36), T0.0 + 7 * DAY_MS);

    let abort_header = header(w.bob.id, w.alice.id, kind::ABORT, 3);
    let signature = w
        .bob
        .keys
        .sign(tags::ENVELOPE, &[&abort_header.to_bytes(), &[1]]);
    let aborted = TxRecord::BuyerAborted {
        seller: w.bob.id,
        pay_seq: 2,
        void_seq: 3,
        evidence: AbortEvidence {
            header: abort_header,
            payload: vec![1],
            signature,
        },
    };
    let bytes = aborted.to_wire();
    assert_eq!(bytes.len(), 33 + 68 + 2 + 1 + 64);
    assert_eq!(bytes[0], 2);
    assert_eq!(&bytes[1..17], &w.bob.id.0);
    assert_eq!(be_u64(&bytes, 17), 2);
    assert_eq!(be_u64(&bytes, 25), 3);
    assert_eq!(&bytes[33..101], &abort_header.to_bytes());
    assert_eq!(be_u16(&bytes, 101), 1);
    assert_eq!(bytes[103], 1);
    assert_eq!(&bytes[104..168], &signature.0);
    // The evidence is the seller's envelope signature, checkable by anyone.
    envelope::verify_detached(&w.bob.keys.public(), &abort_header, &[1], &signature).unwrap();
    // The evidence payload is at most 64 bytes.
    let mut big = bytes[..101].to_vec();
    big.extend_from_slice(&65u16.to_be_bytes());
    big.resize(big.len() + 65 + 64, 0);
    assert!(matches!(
        TxRecord::from_wire(&big),
        Err(DecodeError::TooLong {
            what: "abort payload",
            ..
        })
    ));

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

    for record in [prepared, aborted, committed] {
        assert_eq!(TxRecord::from_wire(&record.to_wire()), Ok(record));
    }
    for tag in [0u8, 4] {
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
    let limits: [(&str, usize); 13] = [
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
    ];
    for (name, k) in kinds {
        let row = format!("| `{:#06x}` | {name} |", k.0);
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
    let vectors = [
        ("amount", eur(1_250).to_wire()),
        ("ed25519 seed", secret[1..33].to_vec()),
        ("signing key", w.alice.keys.public().signing.to_vec()),
        ("sealing key", w.alice.keys.public().sealing.to_vec()),
        ("header", abort_header.to_bytes().to_vec()),
        ("envelope signature", abort_signature.0.to_vec()),
        ("pay entry", pay.to_wire()),
        ("pay entry hash", pay.hash().to_vec()),
    ];
    for (name, bytes) in vectors {
        let hex = hex_string(&bytes);
        assert!(
            doc.contains(&hex),
            "docs/wire-format.md lacks the {name} vector {hex}"
        );
    }
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
    }
}
