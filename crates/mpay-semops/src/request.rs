//! PR: the customer's payment request to its CPP (DESIGN §3.2 step 2), and
//! the helpers that seal and open SEMOPS payloads in the envelope.

use mpay_envelope::{
    ENVELOPE_VERSION, Header, MessageKind, ReplayGuard, Unverified, open as envelope_open,
    seal as envelope_seal,
};
use mpay_identity::{Certificate, PartyId, PublicKeys, Role, SecretKeys, Timestamp, TrustStore};
use mpay_wire::{Decode, DecodeError, Encode, Reader, Writer};
use rand_core::CryptoRng;

use crate::pin::Pin;
use crate::shipping::SealedShipping;
use crate::trans::SignedTrans;
use crate::{SemopsError, kind};

/// Longest customer reference at a CPP, bytes.
pub const CUSTOMER_REF_LEN_MAX: usize = 64;

/// The customer's account name at its CPP: 1 to [`CUSTOMER_REF_LEN_MAX`]
/// bytes of UTF-8. Known to the customer and the CPP only.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct CustomerRef(String);

impl CustomerRef {
    /// Checks the length (1 to [`CUSTOMER_REF_LEN_MAX`] bytes) and that it
    /// has no control characters (a NUL cannot even be stored in
    /// PostgreSQL text).
    pub fn new(text: &str) -> Result<Self, DecodeError> {
        if text.is_empty() {
            return Err(DecodeError::Invalid {
                what: "customer reference",
                reason: "empty",
            });
        }
        if text.chars().any(char::is_control) {
            return Err(DecodeError::Invalid {
                what: "customer reference",
                reason: "has control characters",
            });
        }
        if text.len() > CUSTOMER_REF_LEN_MAX {
            return Err(DecodeError::TooLong {
                what: "customer reference",
                len: text.len(),
                max: CUSTOMER_REF_LEN_MAX,
            });
        }
        Ok(CustomerRef(text.to_owned()))
    }

    /// The reference as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Encode for CustomerRef {
    fn encode(&self, w: &mut Writer) {
        w.text(&self.0);
    }
}

impl Decode for CustomerRef {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        CustomerRef::new(&r.text("customer reference", CUSTOMER_REF_LEN_MAX)?)
    }
}

/// The customer's payment request: the merchant's TRANS, who pays, through
/// which CPP, authorised with the PIN. Travels only sealed to that CPP
/// ([`seal_pr`]); the PIN never prints.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PaymentRequest {
    /// The merchant's signed TRANS, from its URI or QR code.
    pub trans: SignedTrans,
    /// Who pays: the customer's account at the CPP.
    pub customer: CustomerRef,
    /// The CPP chosen by the customer; the PR is sealed to it.
    pub cpp: PartyId,
    /// As typed; the CPP checks it against its [`crate::PinHash`].
    pub pin: Pin,
    /// Chosen by the customer device; a repeat with this key returns the
    /// stored result, a changed body under it is refused. Also the
    /// envelope's transaction id.
    pub idempotency_key: [u8; 16],
    /// Shipping details the customer chose to share, sealed to the TRANS's
    /// merchant ([`crate::seal_shipping`]); the CPP cannot read them and
    /// passes them on in the PN. `None` unless the customer shares them.
    pub shipping: Option<SealedShipping>,
}

impl Encode for PaymentRequest {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.trans)
            .put(&self.customer)
            .put(&self.cpp)
            .put(&self.pin)
            .raw(&self.idempotency_key)
            .option(&self.shipping);
    }
}

impl Decode for PaymentRequest {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(PaymentRequest {
            trans: r.get()?,
            customer: r.get()?,
            cpp: r.get()?,
            pin: r.get()?,
            idempotency_key: r.array("idempotency key")?,
            shipping: r.option("shipping details")?,
        })
    }
}

/// Signs `payload` as `sender` and seals it to `receiver` in an envelope of
/// `kind`, with transaction id `tx_id` and a nonce from `rng`.
#[allow(clippy::too_many_arguments)]
pub fn seal_payload(
    kind: MessageKind,
    payload: &impl Encode,
    sender_keys: &SecretKeys,
    sender: PartyId,
    receiver: PartyId,
    receiver_keys: &PublicKeys,
    tx_id: [u8; 16],
    now: Timestamp,
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>, SemopsError> {
    let header = Header {
        version: ENVELOPE_VERSION,
        suite: sender_keys.suite(),
        kind,
        sender,
        receiver,
        tx_id,
        nonce: rng.next_u64(),
        sent_at: now,
    };
    Ok(envelope_seal(
        sender_keys,
        &header,
        &payload.to_wire(),
        receiver_keys,
        rng,
    )?)
}

/// Opens a frame of `kind` sealed to `me`, verifies it against
/// `sender_cert` (which must have `sender_role`) and decodes the payload.
/// Find `sender_cert` from [`mpay_envelope::peek_header`].
#[allow(clippy::too_many_arguments)]
pub fn open_payload<T: Decode>(
    kind: MessageKind,
    frame: &[u8],
    me: &SecretKeys,
    my_id: PartyId,
    sender_cert: &Certificate,
    sender_role: Role,
    trust: &TrustStore,
    replay: &mut ReplayGuard,
    now: Timestamp,
) -> Result<(Header, T), SemopsError> {
    let unverified: Unverified = envelope_open(frame, me, my_id, trust, now)?;
    if unverified.header().kind != kind {
        return Err(SemopsError::wrong_kind(kind, unverified.header().kind));
    }
    if sender_cert.body.role != sender_role {
        return Err(SemopsError::WrongRole {
            what: "envelope sender",
            expected: sender_role,
            got: sender_cert.body.role,
        });
    }
    let verified = unverified.verify(sender_cert, trust, replay, now)?;
    let header = *verified.header();
    let payload = T::from_wire(verified.payload())?;
    Ok((header, payload))
}

/// The customer device seals `pr` to the CPP it names (kind
/// [`kind::PAYMENT_REQUEST`], transaction id = the idempotency key).
pub fn seal_pr(
    pr: &PaymentRequest,
    customer_keys: &SecretKeys,
    customer_device: PartyId,
    cpp_keys: &PublicKeys,
    now: Timestamp,
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>, SemopsError> {
    seal_payload(
        kind::PAYMENT_REQUEST,
        pr,
        customer_keys,
        customer_device,
        pr.cpp,
        cpp_keys,
        pr.idempotency_key,
        now,
        rng,
    )
}

/// The CPP opens a PR: the envelope checks (receiver, freshness, seal,
/// signature of the customer device's certificate, replay), then that the PR
/// names this CPP. The TRANS inside is still to be verified against the
/// merchant's certificate, and the PIN against the customer's [`crate::PinHash`].
pub fn open_pr(
    frame: &[u8],
    cpp_keys: &SecretKeys,
    cpp_id: PartyId,
    customer_cert: &Certificate,
    trust: &TrustStore,
    replay: &mut ReplayGuard,
    now: Timestamp,
) -> Result<(Header, PaymentRequest), SemopsError> {
    let (header, pr): (Header, PaymentRequest) = open_payload(
        kind::PAYMENT_REQUEST,
        frame,
        cpp_keys,
        cpp_id,
        customer_cert,
        Role::Customer,
        trust,
        replay,
        now,
    )?;
    if pr.cpp != cpp_id {
        return Err(SemopsError::WrongCpp {
            named: pr.cpp,
            reached: cpp_id,
        });
    }
    Ok((header, pr))
}
