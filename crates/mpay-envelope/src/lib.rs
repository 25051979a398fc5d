//! The sealed-message envelope every mpay message travels in (DESIGN §1).
//!
//! Sender: build a [`Header`] (version, suite, kind, sender, receiver,
//! transaction id, nonce, time); sign `ENVELOPE tag ‖ header ‖ payload`; seal
//! `payload ‖ signature` to the receiver's X25519 key with HPKE base mode, the
//! header as associated data. Because the receiver's id is inside the signed
//! bytes, a receiver cannot re-seal a message to a third party and pass it off
//! as addressed to them (the surreptitious-forwarding hole of plain
//! sign-then-encrypt).
//!
//! Receiver: [`open`] checks the header (version, suite, receiver,
//! freshness) and opens the seal, giving an [`Unverified`] message; only
//! [`Unverified::verify`], given the sender's certificate, a [`TrustStore`]
//! and a [`ReplayGuard`], yields a [`Verified`] one. Nothing else constructs
//! a `Verified`, so code that holds one holds proof the checks passed.
//!
//! A broadcast kind (the high bit of [`MessageKind`] set, e.g. LOOKUP) goes to
//! [`PartyId::BROADCAST`] signed but not sealed: there is no single receiver
//! to seal to, and it carries nothing secret. Byte layouts: `docs/wire-format.md`.

mod replay;

pub use replay::{REPLAY_ENTRIES_MAX, ReplayGuard};

use mpay_identity::{
    Certificate, CertificateError, CryptoError, PartyId, PublicKeys, SIGNATURE_LEN, SecretKeys,
    Signature, Suite, Timestamp, TrustStore, tags,
};
use mpay_wire::{Decode, DecodeError, Encode, Reader, Writer};
use rand_core::CryptoRng;
use thiserror::Error;

/// The envelope format version this code speaks.
pub const ENVELOPE_VERSION: u8 = 1;
/// Encoded header length.
pub const HEADER_LEN: usize = 68;
/// Largest frame accepted or produced: fits one UDP datagram.
pub const FRAME_LEN_MAX: usize = 60_000;
/// Largest payload: what is left of a frame after header, key, lengths,
/// signature and tag.
pub const PAYLOAD_LEN_MAX: usize = FRAME_LEN_MAX - HEADER_LEN - 32 - 4 - 4 - SIGNATURE_LEN - 16;
/// A message sent longer ago than this is refused as stale.
pub const MESSAGE_AGE_MAX_MS: u64 = 5 * 60 * 1000;
/// A message dated further ahead than this is refused: clocks disagree too much.
pub const CLOCK_SKEW_MAX_MS: u64 = 2 * 60 * 1000;

/// A message kind: which payload layout follows. Kinds with the high bit set
/// are broadcast kinds.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct MessageKind(pub u16);

impl MessageKind {
    pub const BROADCAST_BIT: u16 = 0x8000;

    pub fn is_broadcast(self) -> bool {
        self.0 & Self::BROADCAST_BIT != 0
    }
}

/// The envelope header, sent in the clear, signed, and bound to the seal as
/// associated data.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Header {
    pub version: u8,
    pub suite: Suite,
    pub kind: MessageKind,
    pub sender: PartyId,
    pub receiver: PartyId,
    pub tx_id: [u8; 16],
    /// Random per message: with sender and transaction, what the replay guard
    /// remembers.
    pub nonce: u64,
    pub sent_at: Timestamp,
}

impl Header {
    fn encode_to(&self, w: &mut Writer) {
        w.u8(self.version)
            .u8(self.suite.tag())
            .u16(self.kind.0)
            .put(&self.sender)
            .put(&self.receiver)
            .raw(&self.tx_id)
            .u64(self.nonce)
            .put(&self.sent_at);
    }

    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut w = Writer::with_capacity(HEADER_LEN);
        self.encode_to(&mut w);
        let mut out = [0u8; HEADER_LEN];
        out.copy_from_slice(w.as_bytes());
        out
    }

    /// Decodes a header without judging it (version and suite are checked by
    /// [`open`], which can then say which one was wrong).
    fn decode_raw(r: &mut Reader<'_>) -> Result<(u8, u8, Header), DecodeError> {
        let version = r.u8("version")?;
        let suite_tag = r.u8("suite")?;
        let header = Header {
            version,
            suite: Suite::from_tag(suite_tag).unwrap_or(Suite::Ed25519X25519),
            kind: MessageKind(r.u16("kind")?),
            sender: r.get()?,
            receiver: r.get()?,
            tx_id: r.array("tx id")?,
            nonce: r.u64("nonce")?,
            sent_at: r.get()?,
        };
        Ok((version, suite_tag, header))
    }
}

/// Why a frame was refused. Every variant but [`EnvelopeError::Local`] is
/// the sender's (or the network's) fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EnvelopeError {
    #[error("malformed frame: {0}")]
    Malformed(#[from] DecodeError),
    #[error("frame of {len} bytes exceeds the limit of {FRAME_LEN_MAX}")]
    TooLarge { len: usize },
    #[error("unsupported envelope version {0}")]
    UnsupportedVersion(u8),
    #[error("unsupported or refused suite {0:#04x}")]
    UnsupportedSuite(u8),
    #[error("message is addressed to {addressed_to}, not to this party")]
    WrongReceiver { addressed_to: PartyId },
    #[error(
        "broadcast kind {0:#06x} must go to everyone, unsealed; non-broadcast kinds must be sealed to one party"
    )]
    BroadcastMismatch(u16),
    #[error("message sent at {sent_at} is older than the freshness window")]
    Stale { sent_at: Timestamp },
    #[error("message dated {sent_at} is too far in the future")]
    FromFuture { sent_at: Timestamp },
    #[error("seal does not open: tampered with, or sealed to another key")]
    SealBroken,
    #[error("certificate is for {certificate_of}, message claims to be from {sender}")]
    SenderMismatch {
        sender: PartyId,
        certificate_of: PartyId,
    },
    #[error("sender's certificate refused: {0}")]
    Certificate(#[from] CertificateError),
    #[error("signature does not verify")]
    BadSignature,
    #[error("message already received (replay)")]
    Replay,
    #[error("local error: {0}")]
    Local(&'static str),
}

impl EnvelopeError {
    /// True when the fault is the peer's or the network's, not this party's.
    pub fn is_peer_fault(&self) -> bool {
        !matches!(self, EnvelopeError::Local(_))
    }
}

fn hpke_info() -> Vec<u8> {
    let mut info = tags::HPKE_INFO.to_vec();
    info.push(ENVELOPE_VERSION);
    info
}

fn check_payload_len(payload: &[u8]) -> Result<u32, EnvelopeError> {
    if payload.len() > PAYLOAD_LEN_MAX {
        return Err(EnvelopeError::Local("payload exceeds PAYLOAD_LEN_MAX"));
    }
    u32::try_from(payload.len()).map_err(|_| EnvelopeError::Local("payload length"))
}

/// Signs and seals `payload` from `sender_keys` to `receiver_keys`.
pub fn seal(
    sender_keys: &SecretKeys,
    header: &Header,
    payload: &[u8],
    receiver_keys: &PublicKeys,
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>, EnvelopeError> {
    if header.kind.is_broadcast() || header.receiver == PartyId::BROADCAST {
        return Err(EnvelopeError::Local(
            "seal: broadcast kinds are signed, not sealed",
        ));
    }
    if header.suite != sender_keys.suite() || receiver_keys.suite != header.suite {
        return Err(EnvelopeError::Local(
            "seal: suite of keys and header differ",
        ));
    }
    let payload_len = check_payload_len(payload)?;
    let header_bytes = header.to_bytes();
    let signature = sender_keys.sign(tags::ENVELOPE, &[&header_bytes, payload]);
    let mut plaintext = Writer::with_capacity(4 + payload.len() + SIGNATURE_LEN);
    plaintext.u32(payload_len).raw(payload).put(&signature);
    let (encapsulated, ciphertext) = receiver_keys
        .seal(&hpke_info(), &header_bytes, plaintext.as_bytes(), rng)
        .map_err(|_| EnvelopeError::Local("seal: receiver's public key is invalid"))?;
    let mut frame = Writer::with_capacity(HEADER_LEN + 36 + ciphertext.len());
    frame
        .raw(&header_bytes)
        .raw(&encapsulated)
        .bytes32(&ciphertext);
    Ok(frame.into_bytes())
}

/// Signs `payload` for a broadcast kind; the frame is not sealed.
pub fn sign_broadcast(
    sender_keys: &SecretKeys,
    header: &Header,
    payload: &[u8],
) -> Result<Vec<u8>, EnvelopeError> {
    if !header.kind.is_broadcast() || header.receiver != PartyId::BROADCAST {
        return Err(EnvelopeError::Local(
            "sign_broadcast: only broadcast kinds to the broadcast id",
        ));
    }
    if header.suite != sender_keys.suite() {
        return Err(EnvelopeError::Local(
            "sign_broadcast: suite of keys and header differ",
        ));
    }
    let payload_len = check_payload_len(payload)?;
    let header_bytes = header.to_bytes();
    let signature = sender_keys.sign(tags::ENVELOPE, &[&header_bytes, payload]);
    let mut frame = Writer::with_capacity(HEADER_LEN + 4 + payload.len() + SIGNATURE_LEN);
    frame
        .raw(&header_bytes)
        .u32(payload_len)
        .raw(payload)
        .put(&signature);
    Ok(frame.into_bytes())
}

/// Reads just the header of a frame, with no checks: for a driver that needs
/// to route a frame before opening it.
pub fn peek_header(frame: &[u8]) -> Result<Header, EnvelopeError> {
    let mut r = Reader::new(frame);
    let (version, suite_tag, header) = Header::decode_raw(&mut r)?;
    if version != ENVELOPE_VERSION {
        return Err(EnvelopeError::UnsupportedVersion(version));
    }
    if Suite::from_tag(suite_tag).is_none() {
        return Err(EnvelopeError::UnsupportedSuite(suite_tag));
    }
    Ok(header)
}

/// A frame whose seal is open but whose signature, sender and freshness in
/// the replay guard are not yet checked.
#[derive(Debug, Clone)]
pub struct Unverified {
    header: Header,
    header_bytes: [u8; HEADER_LEN],
    payload: Vec<u8>,
    signature: Signature,
}

/// A message whose every check passed. Only [`Unverified::verify`] makes one.
#[derive(Debug, Clone)]
pub struct Verified {
    header: Header,
    payload: Vec<u8>,
    signature: Signature,
}

impl Verified {
    pub fn header(&self) -> &Header {
        &self.header
    }
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
    pub fn into_payload(self) -> Vec<u8> {
        self.payload
    }
    /// The sender's signature over `ENVELOPE tag ‖ header ‖ payload`: with
    /// the header and payload, third-party evidence of what the sender said
    /// to this receiver.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }
}

/// Opens a frame addressed to `me` (or a broadcast): checks size, version,
/// suite, receiver and freshness, then opens the seal.
pub fn open(
    frame: &[u8],
    me: &SecretKeys,
    my_id: PartyId,
    trust: &TrustStore,
    now: Timestamp,
) -> Result<Unverified, EnvelopeError> {
    if frame.len() > FRAME_LEN_MAX {
        return Err(EnvelopeError::TooLarge { len: frame.len() });
    }
    let mut r = Reader::new(frame);
    let (version, suite_tag, header) = Header::decode_raw(&mut r)?;
    if version != ENVELOPE_VERSION {
        return Err(EnvelopeError::UnsupportedVersion(version));
    }
    match Suite::from_tag(suite_tag) {
        Some(suite) if trust.accepts(suite) && suite == me.suite() => {}
        _ => return Err(EnvelopeError::UnsupportedSuite(suite_tag)),
    }
    let broadcast = header.receiver == PartyId::BROADCAST;
    if broadcast != header.kind.is_broadcast() {
        return Err(EnvelopeError::BroadcastMismatch(header.kind.0));
    }
    if !broadcast && header.receiver != my_id {
        return Err(EnvelopeError::WrongReceiver {
            addressed_to: header.receiver,
        });
    }
    if header.sent_at.saturating_add_ms(MESSAGE_AGE_MAX_MS) < now {
        return Err(EnvelopeError::Stale {
            sent_at: header.sent_at,
        });
    }
    if header.sent_at > now.saturating_add_ms(CLOCK_SKEW_MAX_MS) {
        return Err(EnvelopeError::FromFuture {
            sent_at: header.sent_at,
        });
    }
    let header_bytes = header.to_bytes();
    let plaintext;
    let mut body = if broadcast {
        r
    } else {
        let encapsulated: [u8; 32] = r.array("encapsulated key")?;
        let ciphertext = r.bytes32("ciphertext", FRAME_LEN_MAX)?;
        r.finish()?;
        plaintext = me
            .open(&hpke_info(), &header_bytes, &encapsulated, ciphertext)
            .map_err(|e| match e {
                CryptoError::SealBroken => EnvelopeError::SealBroken,
                _ => EnvelopeError::SealBroken,
            })?;
        Reader::new(&plaintext)
    };
    let payload = body.bytes32("payload", PAYLOAD_LEN_MAX)?.to_vec();
    let signature = body.get()?;
    body.finish()?;
    Ok(Unverified {
        header,
        header_bytes,
        payload,
        signature,
    })
}

impl Unverified {
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The payload before verification: only to find the sender's certificate
    /// when the message carries it (LOOKUP, LOOKUP-REPLY). Never act on it.
    pub fn unverified_payload(&self) -> &[u8] {
        &self.payload
    }

    /// Checks that `sender_cert` is the sender's, trusted, valid and not
    /// revoked; that the signature holds; and that the message was not seen
    /// before. Records it in `replay` only when everything else passed.
    pub fn verify(
        self,
        sender_cert: &Certificate,
        trust: &TrustStore,
        replay: &mut ReplayGuard,
        now: Timestamp,
    ) -> Result<Verified, EnvelopeError> {
        if sender_cert.subject() != self.header.sender {
            return Err(EnvelopeError::SenderMismatch {
                sender: self.header.sender,
                certificate_of: sender_cert.subject(),
            });
        }
        trust.check(sender_cert, now)?;
        if sender_cert.keys().suite != self.header.suite {
            return Err(EnvelopeError::UnsupportedSuite(self.header.suite.tag()));
        }
        sender_cert
            .keys()
            .verify(
                tags::ENVELOPE,
                &[&self.header_bytes, &self.payload],
                &self.signature,
            )
            .map_err(|_| EnvelopeError::BadSignature)?;
        replay.check_and_record(&self.header, now)?;
        Ok(Verified {
            header: self.header,
            payload: self.payload,
            signature: self.signature,
        })
    }
}

/// Checks a signature someone else received (evidence kept in a log):
/// `sender_keys` signed `header ‖ payload`.
pub fn verify_detached(
    sender_keys: &PublicKeys,
    header: &Header,
    payload: &[u8],
    signature: &Signature,
) -> Result<(), EnvelopeError> {
    sender_keys
        .verify(tags::ENVELOPE, &[&header.to_bytes(), payload], signature)
        .map_err(|_| EnvelopeError::BadSignature)
}

impl Encode for Header {
    fn encode(&self, w: &mut Writer) {
        self.encode_to(w);
    }
}

impl Decode for Header {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (version, suite_tag, header) = Header::decode_raw(r)?;
        if version != ENVELOPE_VERSION {
            return Err(DecodeError::UnknownTag {
                what: "envelope version",
                tag: version,
            });
        }
        if Suite::from_tag(suite_tag).is_none() {
            return Err(DecodeError::UnknownTag {
                what: "suite",
                tag: suite_tag,
            });
        }
        Ok(header)
    }
}
