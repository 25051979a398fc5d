//! `mpay wire`: decode, seal, open and verify envelope frames
//! (docs/wire-format.md §4), so that another implementation can test against
//! mpay in both directions.
//!
//! Key files are text: the hex of the 65-byte secret form (suite byte ‖
//! Ed25519 seed ‖ X25519 secret) for a secret key file, the hex of the 65-byte
//! `PublicKeys` or of a certificate for a public one. Whitespace is ignored.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};
use mpay_bank::interbank::{self, InterbankAck, InterbankMessage};
use mpay_envelope::{self as envelope, HEADER_LEN, Header, MessageKind};
use mpay_identity::RevocationList;
use mpay_identity::{
    Certificate, PartyId, PublicKeys, SIGNATURE_LEN, SecretKeys, Signature, Timestamp, TrustStore,
    hex_bytes, hex_string, tags,
};
use mpay_money::Amount;
use mpay_network::micro::{MICRO_SETTLEMENT, SettlementStatement};
use mpay_network::{INBOX_ACK, InboxAck};
use mpay_offline::chain::{ChainEntry, EntryKind, VoidProof};
use mpay_offline::messages::Message;
use mpay_offline::sync::{self, Resolution, SyncAttestation, SyncRequest, SyncResponse};
use mpay_semops::{
    Authority, ConfirmationOutcome, Decision, PaymentRequest, RoutedNotice, SealedShipping,
    Signable, Signed, SignedConfirmation, SignedDecisionRelay, SignedMerchantDecision,
    SignedPaymentNotice, SignedRefundRelay, SignedRefundRequest, SignedStandingApproval,
    SignedTrans, Validity,
};
use mpay_wire::{Decode, DecodeError, Encode, Reader};
use serde_json::{Value, json};

pub const EXIT_CODES_HELP: &str = "Exit codes:
  0  done: the frame decoded, opened or verified
  1  local error: bad arguments, unreadable or malformed key file
  2  the frame is refused: malformed, seal broken, bad signature, stale";

/// The exit code of a refused frame.
const REFUSED: u8 = 2;

#[derive(Subcommand)]
pub enum WireCommand {
    /// Decode a frame's header and body into JSON, every field named (a
    /// sealed frame's payload stays sealed; use `open`). With `--kind`, the
    /// argument is a bare payload of that kind; a `mpay:trans?` URI decodes
    /// as the signed TRANS it carries.
    Decode {
        /// Read the argument as a payload of this kind (e.g. 0x0402), not a
        /// frame.
        #[arg(long)]
        kind: Option<String>,
        /// The frame (or payload, or `mpay:` URI): hex, a file (hex or raw
        /// bytes), or `-`/absent for stdin.
        frame: Option<String>,
    },
    /// Open a sealed frame with the receiver's secret key file, check the
    /// sender's signature, and print the header and the decoded payload.
    Open(OpenArgs),
    /// Check the sender's signature on a broadcast frame (unsealed).
    Verify {
        /// The sender's public keys or certificate (hex file).
        #[arg(long)]
        sender: PathBuf,
        /// Refuse a frame older than the freshness window at this time (ms
        /// since the epoch); default: no freshness check.
        #[arg(long)]
        at: Option<u64>,
        /// The frame: hex, a file (hex or raw bytes), or `-`/absent for stdin.
        frame: Option<String>,
    },
    /// Sign and seal a payload from the sender's secret key file to a
    /// receiver's public keys; prints the frame in hex.
    Seal(SealArgs),
}

#[derive(Args)]
pub struct OpenArgs {
    /// The receiver's secret key file.
    #[arg(long)]
    keys: PathBuf,
    /// The sender's public keys or certificate (hex file).
    #[arg(long)]
    sender: PathBuf,
    /// The receiver's party id (32 hex digits): a frame addressed to another
    /// party is refused. Default: the id the header names.
    #[arg(long)]
    me: Option<String>,
    /// The time to check freshness at, ms since the epoch (default: now).
    #[arg(long)]
    at: Option<u64>,
    /// The frame: hex, a file (hex or raw bytes), or `-`/absent for stdin.
    frame: Option<String>,
}

#[derive(Args)]
pub struct SealArgs {
    /// The sender's secret key file.
    #[arg(long)]
    keys: PathBuf,
    /// The sender's party id (32 hex digits).
    #[arg(long)]
    from: String,
    /// The receiver's public keys or certificate (hex file).
    #[arg(long)]
    to: PathBuf,
    /// The receiver's party id (32 hex digits).
    #[arg(long)]
    receiver: String,
    /// The message kind, e.g. 0x0109.
    #[arg(long)]
    kind: String,
    /// The transaction id (32 hex digits).
    #[arg(long, default_value = "00000000000000000000000000000000")]
    tx: String,
    /// The payload in hex (empty by default).
    #[arg(long, default_value = "")]
    payload: String,
    /// The nonce (default: random).
    #[arg(long)]
    nonce: Option<u64>,
    /// sent_at, ms since the epoch (default: now).
    #[arg(long)]
    at: Option<u64>,
}

pub fn run(command: WireCommand) -> anyhow::Result<ExitCode> {
    match command {
        WireCommand::Decode { kind, frame } => {
            if let Some(uri) = frame.as_deref().filter(|f| f.starts_with("mpay:")) {
                return match SignedTrans::from_uri(uri) {
                    Ok(trans) => print_json(&trans_json(&trans)),
                    Err(e) => refused(&e.to_string()),
                };
            }
            let bytes = read_frame(frame.as_deref())?;
            let decoded = match kind {
                Some(kind) => {
                    let kind = parse_kind(&kind)?;
                    let value = payload_json(kind, &bytes);
                    match value.get("error").and_then(Value::as_str) {
                        Some(error) => Err(error.to_owned()),
                        None => Ok(json!({
                            "kind": format!("0x{:04x}", kind.0),
                            "kind_name": kind_name(kind),
                            "payload": value,
                        })),
                    }
                }
                None => decode(&bytes),
            };
            match decoded {
                Ok(value) => print_json(&value),
                Err(reason) => refused(&reason),
            }
        }
        WireCommand::Open(args) => open(args),
        WireCommand::Verify { sender, at, frame } => {
            let frame = read_frame(frame.as_deref())?;
            let sender = read_public(&sender)?;
            match verify_broadcast(&frame, &sender, at) {
                Ok(value) => print_json(&value),
                Err(reason) => refused(&reason),
            }
        }
        WireCommand::Seal(args) => seal(args),
    }
}

fn print_json(value: &Value) -> anyhow::Result<ExitCode> {
    let text = serde_json::to_string_pretty(value)?;
    // A closed pipe (`| head`) is the reader's choice, not an error.
    let _ = writeln!(std::io::stdout(), "{text}");
    Ok(ExitCode::SUCCESS)
}

fn refused(reason: &str) -> anyhow::Result<ExitCode> {
    eprintln!("refused: {reason}");
    Ok(ExitCode::from(REFUSED))
}

fn now_ms() -> u64 {
    mpay_clock::wall_clock().as_millis()
}

fn parse_hex(text: &str, what: &str) -> anyhow::Result<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    hex_bytes(&compact).ok_or_else(|| anyhow!("{what} is not hex"))
}

/// A frame from a hex argument, a file (hex or raw), or stdin.
fn read_frame(arg: Option<&str>) -> anyhow::Result<Vec<u8>> {
    let raw = match arg {
        None | Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("reading the frame from stdin")?;
            buf
        }
        Some(arg) if Path::new(arg).is_file() => {
            std::fs::read(arg).with_context(|| format!("reading {arg}"))?
        }
        Some(arg) => return parse_hex(arg, "the frame argument"),
    };
    match std::str::from_utf8(&raw).ok().and_then(|text| {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        hex_bytes(&compact)
    }) {
        Some(bytes) => Ok(bytes),
        None => Ok(raw),
    }
}

fn read_hex_file(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_hex(&text, what)
}

fn read_secret(path: &Path) -> anyhow::Result<SecretKeys> {
    let bytes = read_hex_file(path, "the secret key file")?;
    SecretKeys::from_secret_bytes(&bytes)
        .map_err(|e| anyhow!("{}: not a secret key file: {e}", path.display()))
}

/// Public keys from a file holding `PublicKeys` (65 bytes) or a certificate.
fn read_public(path: &Path) -> anyhow::Result<PublicKeys> {
    let bytes = read_hex_file(path, "the public key file")?;
    if let Ok(keys) = PublicKeys::from_wire(&bytes) {
        return Ok(keys);
    }
    Certificate::from_wire(&bytes)
        .map(|cert| *cert.keys())
        .map_err(|e| {
            anyhow!(
                "{}: neither public keys nor a certificate: {e}",
                path.display()
            )
        })
}

fn parse_kind(text: &str) -> anyhow::Result<MessageKind> {
    u16::from_str_radix(text.trim_start_matches("0x"), 16)
        .map(MessageKind)
        .map_err(|_| anyhow!("--kind is not a hex u16 such as 0x0109"))
}

fn party(text: &str, what: &str) -> anyhow::Result<PartyId> {
    PartyId::from_hex(text.trim()).ok_or_else(|| anyhow!("{what} is not 32 hex digits"))
}

fn header_json(h: &Header) -> Value {
    json!({
        "version": h.version,
        "suite": format!("0x{:02x}", h.suite.tag()),
        "kind": format!("0x{:04x}", h.kind.0),
        "kind_name": kind_name(h.kind),
        "broadcast": h.kind.is_broadcast(),
        "sender": h.sender.to_hex(),
        "receiver": h.receiver.to_hex(),
        "tx_id": hex_string(&h.tx_id),
        "nonce": h.nonce,
        "sent_at_ms": h.sent_at.as_millis(),
    })
}

fn kind_name(kind: MessageKind) -> &'static str {
    use mpay_offline::messages::kind as k;
    use mpay_semops::kind as semops;
    match kind {
        k::LOOKUP => "LOOKUP",
        k::LOOKUP_REPLY => "LOOKUP_REPLY",
        k::COMMIT_REQUEST => "COMMIT_REQUEST",
        k::AGREED => "AGREED",
        k::ABORT => "ABORT",
        k::COMMIT => "COMMIT",
        k::COMMITTED => "COMMITTED",
        k::STATUS => "STATUS",
        k::ABORTED => "ABORTED",
        sync::kind::SYNC_REQUEST => "SYNC_REQUEST",
        sync::kind::SYNC_RESPONSE => "SYNC_RESPONSE",
        interbank::kind::INTERBANK_TRANSFER => "INTERBANK_TRANSFER",
        interbank::kind::INTERBANK_ACK => "INTERBANK_ACK",
        semops::PAYMENT_REQUEST => "PAYMENT_REQUEST",
        semops::PAYMENT_NOTICE => "PAYMENT_NOTICE",
        semops::MERCHANT_DECISION => "MERCHANT_DECISION",
        semops::CONFIRMATION => "CONFIRMATION",
        semops::REFUND_REQUEST => "REFUND_REQUEST",
        semops::DECISION_RELAY => "DECISION_RELAY",
        semops::REFUND_RELAY => "REFUND_RELAY",
        MICRO_SETTLEMENT => "MICRO_SETTLEMENT",
        INBOX_ACK => "INBOX_ACK",
        _ => "unknown",
    }
}

/// The payload decoded by kind: every field by name, nested objects too.
fn payload_json(kind: MessageKind, payload: &[u8]) -> Value {
    let decoded = if kind == sync::kind::SYNC_REQUEST {
        SyncRequest::from_wire(payload).map(|m| sync_request_json(&m))
    } else if kind == sync::kind::SYNC_RESPONSE {
        SyncResponse::from_wire(payload).map(|m| sync_response_json(&m))
    } else if kind == interbank::kind::INTERBANK_TRANSFER {
        InterbankMessage::from_wire(payload).map(|m| {
            json!({
                "id": m.id.to_hex(),
                "from_account": m.from_account.as_str(),
                "to_account": m.to_account.as_str(),
                "amount": amount(&m.amount),
                "reference": m.reference,
                "reason": format!("{:?}", m.reason),
                "returns": m.returns.map(|id| id.to_hex()),
            })
        })
    } else if kind == interbank::kind::INTERBANK_ACK {
        InterbankAck::from_wire(payload)
            .map(|m| json!({ "id": m.id.to_hex(), "outcome": m.outcome.as_str() }))
    } else if let Some(decoded) = semops_json(kind, payload) {
        decoded
    } else {
        Message::decode(kind, payload).map(|m| message_json(&m))
    };
    match decoded {
        Ok(fields) => {
            json!({ "len": payload.len(), "hex": hex_string(payload), "decoded": fields })
        }
        Err(e) => {
            json!({ "len": payload.len(), "hex": hex_string(payload), "error": e.to_string() })
        }
    }
}

/// Splits a frame into its named parts without opening anything.
fn decode(frame: &[u8]) -> Result<Value, String> {
    let header = envelope::peek_header(frame).map_err(|e| e.to_string())?;
    let mut r = Reader::new(&frame[HEADER_LEN..]);
    let body = if header.kind.is_broadcast() {
        let payload = r
            .bytes32("payload", envelope::PAYLOAD_LEN_MAX)
            .map_err(|e| e.to_string())?
            .to_vec();
        let signature: [u8; SIGNATURE_LEN] = r.array("signature").map_err(|e| e.to_string())?;
        r.finish().map_err(|e| e.to_string())?;
        json!({
            "sealed": false,
            "payload_len": payload.len(),
            "payload": payload_json(header.kind, &payload),
            "signature": hex_string(&signature),
        })
    } else {
        let enc: [u8; 32] = r.array("encapsulated key").map_err(|e| e.to_string())?;
        let ciphertext = r
            .bytes32("ciphertext", envelope::FRAME_LEN_MAX)
            .map_err(|e| e.to_string())?;
        r.finish().map_err(|e| e.to_string())?;
        json!({
            "sealed": true,
            "enc": hex_string(&enc),
            "ciphertext_len": ciphertext.len(),
            "ciphertext": hex_string(ciphertext),
        })
    };
    Ok(json!({ "frame_len": frame.len(), "header": header_json(&header), "body": body }))
}

fn open(args: OpenArgs) -> anyhow::Result<ExitCode> {
    let frame = read_frame(args.frame.as_deref())?;
    let keys = read_secret(&args.keys)?;
    let sender = read_public(&args.sender)?;
    let me = args.me.as_deref().map(|id| party(id, "--me")).transpose()?;
    let now = Timestamp(args.at.unwrap_or_else(now_ms));
    match open_and_verify(&frame, &keys, me, &sender, now) {
        Ok(value) => print_json(&value),
        Err(reason) => refused(&reason),
    }
}

/// The checks of §4.5 that need no certificate chain: size, version, suite,
/// receiver, freshness, the seal, then the sender's signature.
fn open_and_verify(
    frame: &[u8],
    keys: &SecretKeys,
    me: Option<PartyId>,
    sender: &PublicKeys,
    now: Timestamp,
) -> Result<Value, String> {
    let header = envelope::peek_header(frame).map_err(|e| e.to_string())?;
    if header.kind.is_broadcast() {
        return Err("a broadcast frame is not sealed: use `mpay wire verify`".into());
    }
    let me = me.unwrap_or(header.receiver);
    let opened =
        envelope::open(frame, keys, me, &TrustStore::new(), now).map_err(|e| e.to_string())?;
    // `open` keeps the signature until a certificate chain verifies it; this
    // command has only the sender's keys, so it reads the signature from the
    // plaintext (u32 length ‖ payload ‖ signature) itself.
    let header_bytes = header.to_bytes();
    let mut r = Reader::new(&frame[HEADER_LEN..]);
    let enc: [u8; 32] = r.array("encapsulated key").map_err(|e| e.to_string())?;
    let ciphertext = r
        .bytes32("ciphertext", envelope::FRAME_LEN_MAX)
        .map_err(|e| e.to_string())?;
    let plaintext = keys
        .open(&hpke_info(), &header_bytes, &enc, ciphertext)
        .map_err(|e| e.to_string())?;
    let signature_at = plaintext
        .len()
        .checked_sub(SIGNATURE_LEN)
        .ok_or("plaintext shorter than a signature")?;
    let signature: [u8; SIGNATURE_LEN] = plaintext[signature_at..]
        .try_into()
        .map_err(|_| "plaintext shorter than a signature")?;
    let signature = Signature(signature);
    let payload = opened.unverified_payload();
    envelope::verify_detached(sender, &header, payload, &signature).map_err(|e| e.to_string())?;
    Ok(json!({
        "header": header_json(&header),
        "payload": payload_json(header.kind, payload),
        "signature": hex_string(&signature.0),
        "signature_valid": true,
    }))
}

fn hpke_info() -> Vec<u8> {
    let mut info = tags::HPKE_INFO.to_vec();
    info.push(envelope::ENVELOPE_VERSION);
    info
}

/// A broadcast frame: header ‖ u32 length ‖ payload ‖ signature.
fn verify_broadcast(frame: &[u8], sender: &PublicKeys, at: Option<u64>) -> Result<Value, String> {
    let header = envelope::peek_header(frame).map_err(|e| e.to_string())?;
    if !header.kind.is_broadcast() || header.receiver != PartyId::BROADCAST {
        return Err("not a broadcast frame: use `mpay wire open`".into());
    }
    if let Some(at) = at {
        let now = Timestamp(at);
        if header
            .sent_at
            .saturating_add_ms(envelope::MESSAGE_AGE_MAX_MS)
            < now
        {
            return Err(envelope::EnvelopeError::Stale {
                sent_at: header.sent_at,
            }
            .to_string());
        }
        if header.sent_at > now.saturating_add_ms(envelope::CLOCK_SKEW_MAX_MS) {
            return Err(envelope::EnvelopeError::FromFuture {
                sent_at: header.sent_at,
            }
            .to_string());
        }
    }
    let mut r = Reader::new(&frame[HEADER_LEN..]);
    let payload = r
        .bytes32("payload", envelope::PAYLOAD_LEN_MAX)
        .map_err(|e| e.to_string())?;
    let signature = Signature(r.array("signature").map_err(|e| e.to_string())?);
    r.finish().map_err(|e| e.to_string())?;
    envelope::verify_detached(sender, &header, payload, &signature).map_err(|e| e.to_string())?;
    Ok(json!({
        "header": header_json(&header),
        "payload": payload_json(header.kind, payload),
        "signature": hex_string(&signature.0),
        "signature_valid": true,
    }))
}

fn seal(args: SealArgs) -> anyhow::Result<ExitCode> {
    let keys = read_secret(&args.keys)?;
    let to = read_public(&args.to)?;
    let kind = parse_kind(&args.kind)?;
    let tx: [u8; 16] = parse_hex(&args.tx, "--tx")?
        .try_into()
        .map_err(|_| anyhow!("--tx is not 32 hex digits"))?;
    let payload = parse_hex(&args.payload, "--payload")?;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow!("OS randomness: {e}"))?;
    let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::from_seed(seed);
    let nonce = match args.nonce {
        Some(nonce) => nonce,
        None => rand_core::Rng::next_u64(&mut rng),
    };
    let header = Header {
        version: envelope::ENVELOPE_VERSION,
        suite: keys.suite(),
        kind,
        sender: party(&args.from, "--from")?,
        receiver: party(&args.receiver, "--receiver")?,
        tx_id: tx,
        nonce,
        sent_at: Timestamp(args.at.unwrap_or_else(now_ms)),
    };
    let frame = if header.kind.is_broadcast() {
        envelope::sign_broadcast(&keys, &header, &payload)
    } else {
        envelope::seal(&keys, &header, &payload, &to, &mut rng)
    }
    .map_err(|e| anyhow!("cannot seal: {e}"))?;
    let _ = writeln!(std::io::stdout(), "{}", hex_string(&frame));
    Ok(ExitCode::SUCCESS)
}

// ---- payloads as JSON, every field by name -------------------------------

fn amount(a: &Amount) -> Value {
    Value::String(a.to_string())
}

fn ms(t: Timestamp) -> Value {
    json!(t.as_millis())
}

fn certificate_json(c: &Certificate) -> Value {
    let b = &c.body;
    json!({
        "subject": b.subject.to_hex(),
        "role": format!("{:?}", b.role),
        "keys": {
            "suite": format!("0x{:02x}", b.keys.suite.tag()),
            "signing": hex_string(&b.keys.signing),
            "sealing": hex_string(&b.keys.sealing),
        },
        "limits": b.limits.as_ref().map(|l| json!({
            "offline_balance_max": amount(&l.offline_balance_max),
            "payment_max": amount(&l.payment_max),
            "days_between_syncs_max": l.days_between_syncs_max,
            "payments_between_syncs_max": l.payments_between_syncs_max,
        })),
        "issued_at_ms": ms(b.issued_at),
        "expires_at_ms": ms(b.expires_at),
        "issuer": b.issuer.to_hex(),
        "signature": hex_string(&c.signature.0),
    })
}

fn revocation_list_json(l: &RevocationList) -> Value {
    json!({
        "issuer": l.issuer.to_hex(),
        "version": l.version,
        "issued_at_ms": ms(l.issued_at),
        "entries": l.entries.iter().map(|e| json!({
            "subject": e.subject.to_hex(),
            "reason": format!("{:?}", e.reason),
            "revoked_at_ms": ms(e.revoked_at),
        })).collect::<Vec<_>>(),
        "signature": hex_string(&l.signature.0),
    })
}

fn attestation_json(a: &SyncAttestation) -> Value {
    json!({
        "office": a.office.to_hex(),
        "wallet": a.wallet.to_hex(),
        "seq": a.seq,
        "head_hash": hex_string(&a.head_hash),
        "balance": amount(&a.balance),
        "synced_at_ms": ms(a.synced_at),
        "signature": hex_string(&a.signature.0),
    })
}

fn resolution_json(r: &Resolution) -> Value {
    json!({
        "office": r.office.to_hex(),
        "wallet": r.wallet.to_hex(),
        "tx": hex_string(&r.tx.0),
        "pay_seq": r.pay_seq,
        "outcome": format!("{:?}", r.outcome),
        "resolved_at_ms": ms(r.resolved_at),
        "signature": hex_string(&r.signature.0),
    })
}

fn entry_json(e: &ChainEntry) -> Value {
    let kind = match &e.kind {
        EntryKind::Genesis { certificate } => {
            json!({ "type": "Genesis", "certificate": certificate_json(certificate) })
        }
        EntryKind::Charge { voucher } => json!({ "type": "Charge", "voucher": {
            "office": voucher.office.to_hex(),
            "wallet": voucher.wallet.to_hex(),
            "charge_id": hex_string(&voucher.charge_id),
            "amount": amount(&voucher.amount),
            "issued_at_ms": ms(voucher.issued_at),
            "signature": hex_string(&voucher.signature.0),
        }}),
        EntryKind::Pay {
            tx,
            seller,
            amount: a,
            claim_deadline,
        } => json!({
            "type": "Pay",
            "tx": hex_string(&tx.0),
            "seller": seller.to_hex(),
            "amount": amount(a),
            "claim_deadline_ms": ms(*claim_deadline),
        }),
        EntryKind::Receive {
            tx,
            buyer,
            amount: a,
            authorization,
        } => json!({
            "type": "Receive",
            "tx": hex_string(&tx.0),
            "buyer": buyer.to_hex(),
            "amount": amount(a),
            "authorization": entry_json(authorization),
        }),
        EntryKind::Void {
            tx,
            paid_seq,
            amount: a,
            proof,
        } => json!({
            "type": "Void",
            "tx": hex_string(&tx.0),
            "paid_seq": paid_seq,
            "amount": amount(a),
            "proof": match proof {
                VoidProof::SellerAbort(evidence) => json!({
                    "type": "SellerAbort",
                    "header": header_json(&evidence.header),
                    "payload": hex_string(&evidence.payload),
                    "signature": hex_string(&evidence.signature.0),
                }),
                VoidProof::OfficeRelease(r) => json!({
                    "type": "OfficeRelease",
                    "resolution": resolution_json(r),
                }),
            },
        }),
        EntryKind::Redeem {
            redeem_id,
            amount: a,
        } => json!({
            "type": "Redeem",
            "redeem_id": hex_string(redeem_id),
            "amount": amount(a),
        }),
    };
    json!({
        "wallet": e.wallet.to_hex(),
        "seq": e.seq,
        "prev_hash": hex_string(&e.prev_hash),
        "kind": kind,
        "balance_after": amount(&e.balance_after),
        "created_at_ms": ms(e.created_at),
        "signature": hex_string(&e.signature.0),
        "hash": hex_string(&e.hash()),
    })
}

fn message_json(m: &Message) -> Value {
    match m {
        Message::Lookup(l) => json!({
            "seller_certificate": certificate_json(&l.seller_certificate),
            "revocation_list": l.revocation_list.as_ref().map(revocation_list_json),
        }),
        Message::LookupReply(r) => json!({
            "buyer_certificate": certificate_json(&r.buyer_certificate),
            "attestation": attestation_json(&r.attestation),
            "revocation_list": r.revocation_list.as_ref().map(revocation_list_json),
        }),
        Message::CommitRequest(c) => json!({
            "amount": amount(&c.amount),
            "description": c.description,
            "seller_certificate": certificate_json(&c.seller_certificate),
        }),
        Message::Agreed(a) => json!({ "authorization": entry_json(&a.authorization) }),
        Message::Abort(a) => json!({ "reason": format!("{:?}", a.reason) }),
        Message::Status(s) => {
            json!({ "buyer_certificate": certificate_json(&s.buyer_certificate) })
        }
        Message::Commit | Message::Committed | Message::Aborted => json!({}),
    }
}

fn sync_request_json(r: &SyncRequest) -> Value {
    json!({
        "entries": r.entries.iter().map(entry_json).collect::<Vec<_>>(),
        "uncertain": r.uncertain.iter().map(|u| json!({
            "tx": hex_string(&u.tx.0),
            "pay_seq": u.pay_seq,
        })).collect::<Vec<_>>(),
        "revocation_version": r.revocation_version,
    })
}

fn sync_response_json(r: &SyncResponse) -> Value {
    json!({
        "attestation": attestation_json(&r.attestation),
        "revocation_list": r.revocation_list.as_ref().map(revocation_list_json),
        "resolutions": r.resolutions.iter().map(resolution_json).collect::<Vec<_>>(),
    })
}

// ---- SEMOPS (docs/wire-format.md §15) -------------------------------------

/// A SEMOPS payload by kind; `None` for a kind that is not SEMOPS.
fn semops_json(kind: MessageKind, payload: &[u8]) -> Option<Result<Value, DecodeError>> {
    use mpay_semops::kind as k;
    Some(match kind {
        k::PAYMENT_REQUEST => PaymentRequest::from_wire(payload).map(|pr| {
            json!({
                "trans": trans_json(&pr.trans),
                "customer": pr.customer.as_str(),
                "cpp": pr.cpp.to_hex(),
                // The PIN itself is never printed.
                "pin_len": pr.pin.expose().len(),
                "idempotency_key": hex_string(&pr.idempotency_key),
                "shipping": pr.shipping.as_ref().map(shipping_json),
            })
        }),
        k::PAYMENT_NOTICE => RoutedNotice::from_wire(payload).map(|r| {
            json!({
                "notice": notice_json(&r.notice),
                "hop_deadline_ms": ms(r.deadline),
            })
        }),
        k::MERCHANT_DECISION => {
            SignedMerchantDecision::from_wire(payload).map(|d| decision_json(&d))
        }
        k::CONFIRMATION => SignedConfirmation::from_wire(payload).map(|c| confirmation_json(&c)),
        k::REFUND_REQUEST => SignedRefundRequest::from_wire(payload).map(|r| refund_json(&r)),
        k::DECISION_RELAY => SignedDecisionRelay::from_wire(payload).map(|relay| {
            let b = relay.unverified_body();
            signed_json(
                &relay,
                json!({
                    "authority": authority_json(&b.authority),
                    "mpp": b.mpp.to_hex(),
                    "payout_bank": b.payout_bank.to_hex(),
                    "payout_account": b.payout_account,
                }),
            )
        }),
        k::REFUND_RELAY => SignedRefundRelay::from_wire(payload).map(|relay| {
            let b = relay.unverified_body();
            signed_json(
                &relay,
                json!({
                    "refund": refund_json(&b.refund),
                    "mpp": b.mpp.to_hex(),
                    "transfer_reference": b.transfer_reference,
                }),
            )
        }),
        MICRO_SETTLEMENT => SettlementStatement::from_wire(payload).map(|s| {
            json!({
                "run": s.run,
                "cpp": s.cpp.to_hex(),
                "mpp": s.mpp.to_hex(),
                "total": amount(&s.total),
                "adds_up": s.adds_up(),
                "payments": s.payments.iter().map(|p| json!({
                    "payment_id": hex_string(&p.payment_id),
                    "amount": amount(&p.amount),
                })).collect::<Vec<_>>(),
            })
        }),
        INBOX_ACK => InboxAck::from_wire(payload).map(|a| {
            json!({
                "frame_hash": hex_string(&a.frame_hash),
                "outcome": a.outcome,
            })
        }),
        _ => return None,
    })
}

/// The body's fields, the signer's signature over `tag ‖ body` and the tag.
fn signed_json<T: Signable>(signed: &Signed<T>, mut body: Value) -> Value {
    if let Value::Object(fields) = &mut body {
        fields.insert("signer".into(), json!(signed.signer().to_hex()));
        fields.insert("tag".into(), json!(hex_string(T::TAG)));
        fields.insert("signature".into(), json!(hex_string(&signed.signature().0)));
    }
    body
}

fn validity_json(v: &Validity) -> Value {
    json!({
        "signed_at_ms": ms(v.signed_at),
        "expires_at_ms": ms(v.expires_at),
    })
}

fn trans_json(trans: &SignedTrans) -> Value {
    let t = trans.unverified_body();
    let mut value = signed_json(
        trans,
        json!({
            "merchant": t.merchant.to_hex(),
            "mpp": t.mpp.to_hex(),
            "amount": amount(&t.amount),
            "merchant_reference": t.merchant_reference,
            "expires_at_ms": ms(t.expires_at),
            "description": t.description,
            "nonce": hex_string(&t.nonce),
        }),
    );
    value["uri"] = json!(trans.to_uri());
    value
}

fn notice_json(pn: &SignedPaymentNotice) -> Value {
    let n = pn.unverified_body();
    signed_json(
        pn,
        json!({
            "payment_id": hex_string(&n.payment_id),
            "trans": trans_json(&n.trans),
            "customer_pseudonym": hex_string(&n.customer_pseudonym),
            "cpp": n.cpp.to_hex(),
            "class": format!("{:?}", n.class),
            "deadline_ms": ms(n.deadline),
            "shipping": n.shipping.as_ref().map(shipping_json),
        }),
    )
}

/// Sealed shipping details: only their sealed form; the merchant's key
/// opens them (docs/wire-format.md §15.10).
fn shipping_json(sealed: &SealedShipping) -> Value {
    json!({
        "encapsulated_key": hex_string(&sealed.encapsulated),
        "ciphertext_len": sealed.ciphertext.len(),
        "sealed": hex_string(&sealed.to_wire()),
    })
}

fn decision_json(d: &SignedMerchantDecision) -> Value {
    let b = d.unverified_body();
    let (decision, reason) = match &b.decision {
        Decision::Approve => ("Approve", None),
        Decision::Reject { reason } => ("Reject", Some(reason.as_str())),
    };
    signed_json(
        d,
        json!({
            "payment_id": hex_string(&b.payment_id),
            "merchant": b.merchant.to_hex(),
            "decision": decision,
            "reason": reason,
            "validity": validity_json(&b.validity),
        }),
    )
}

fn authority_json(a: &Authority) -> Value {
    match a {
        Authority::Decision(d) => json!({ "decision": decision_json(d) }),
        Authority::Standing {
            payment_id,
            approval,
        } => json!({
            "payment_id": hex_string(payment_id),
            "standing_approval": standing_json(approval),
        }),
    }
}

fn standing_json(a: &SignedStandingApproval) -> Value {
    let b = a.unverified_body();
    signed_json(
        a,
        json!({
            "merchant": b.merchant.to_hex(),
            "mpp": b.mpp.to_hex(),
            "per_payment_max": b.per_payment_max.to_string(),
            "period_max": b.period_max.to_string(),
            "period_ms": b.period_ms,
            "signed_at_ms": ms(b.signed_at),
            "expires_at_ms": ms(b.expires_at),
        }),
    )
}

fn confirmation_json(c: &SignedConfirmation) -> Value {
    let b = c.unverified_body();
    let (outcome, reject_reason) = match b.outcome {
        ConfirmationOutcome::Rejected { reason } => ("Rejected", Some(format!("{reason:?}"))),
        ConfirmationOutcome::Transferred => ("Transferred", None),
        ConfirmationOutcome::DelayedTransfer => ("DelayedTransfer", None),
        ConfirmationOutcome::Expired => ("Expired", None),
        ConfirmationOutcome::Refunded => ("Refunded", None),
    };
    signed_json(
        c,
        json!({
            "payment_id": hex_string(&b.payment_id),
            "cpp": b.cpp.to_hex(),
            "outcome": outcome,
            "reject_reason": reject_reason,
            "amount": amount(&b.amount),
            "at_ms": ms(b.at),
        }),
    )
}

fn refund_json(r: &SignedRefundRequest) -> Value {
    let b = r.unverified_body();
    signed_json(
        r,
        json!({
            "payment_id": hex_string(&b.payment_id),
            "merchant": b.merchant.to_hex(),
            "amount": amount(&b.amount),
            "idempotency_key": hex_string(&b.idempotency_key),
            "validity": validity_json(&b.validity),
        }),
    )
}
