//! The one error type of this crate's checks, saying whose fault it is.

use mpay_envelope::{EnvelopeError, MessageKind};
use mpay_identity::{CertificateError, PartyId, Role, Timestamp};
use mpay_money::Amount;
use mpay_wire::DecodeError;
use thiserror::Error;

/// Why a SEMOPS message or object was refused. [`SemopsError::is_peer_fault`]
/// tells the sender's (or the network's) fault from this party's own.
/// Never carries a PIN or a key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SemopsError {
    /// The bytes are not a valid encoding (sender's fault).
    #[error("malformed: {0}")]
    Malformed(#[from] DecodeError),
    /// The signature of `what` does not verify under the signer's key.
    #[error("{what}: signature does not verify")]
    BadSignature { what: &'static str },
    /// The certificate given is not the one of the party the object names as
    /// its signer.
    #[error("{what} is signed by {expected}, certificate given is of {got}")]
    WrongSigner {
        what: &'static str,
        expected: PartyId,
        got: PartyId,
    },
    /// The signer's certificate has the wrong role for `what`.
    #[error("{what} must be signed by a {expected:?}, signer is a {got:?}")]
    WrongRole {
        what: &'static str,
        expected: Role,
        got: Role,
    },
    /// The signer's certificate is refused (expired, revoked, untrusted).
    #[error("signer's certificate refused: {0}")]
    Certificate(#[from] CertificateError),
    /// `what` expired (a TRANS past its expiry, a PN past its deadline).
    #[error("{what} expired at {expires_at} (now {now})")]
    Expired {
        what: &'static str,
        expires_at: Timestamp,
        now: Timestamp,
    },
    /// `what` was signed later than the receiver's clock allows
    /// ([`crate::REQUEST_CLOCK_SKEW_MAX_MS`] ahead).
    #[error("{what} signed at {signed_at}, in the future (now {now})")]
    NotYetValid {
        what: &'static str,
        signed_at: Timestamp,
        now: Timestamp,
    },
    /// A `mpay:` URI that is not one this code reads.
    #[error("not a valid mpay URI: {0}")]
    BadUri(&'static str),
    /// An envelope of another kind than expected.
    #[error("expected message kind {expected:#06x}, got {got:#06x}")]
    WrongKind { expected: u16, got: u16 },
    /// A PR names another CPP than the one it was sealed to.
    #[error("payment request names CPP {named}, but reached {reached}")]
    WrongCpp { named: PartyId, reached: PartyId },
    /// A refund larger than the payment, or in another currency.
    #[error("refund of {requested:?} exceeds the payment of {paid:?}")]
    RefundTooLarge { requested: Amount, paid: Amount },
    /// Shipping details that do not open with these keys for this
    /// payment: sealed to another merchant, moved from a payment of another
    /// TRANS, or tampered with.
    #[error(
        "shipping details do not open: sealed to another party, made for another payment, or tampered with"
    )]
    ShippingSealBroken,
    /// The envelope refused the frame; its own `is_peer_fault` says whose fault.
    #[error("envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    /// This party tried to build or sign an invalid object (local fault).
    #[error("invalid field in an object built here: {0}")]
    InvalidField(DecodeError),
    /// Any other local fault.
    #[error("local error: {0}")]
    Local(&'static str),
}

impl SemopsError {
    /// True when the fault is the peer's (or the network's), not this party's.
    pub fn is_peer_fault(&self) -> bool {
        match self {
            SemopsError::Envelope(e) => e.is_peer_fault(),
            SemopsError::InvalidField(_) | SemopsError::Local(_) => false,
            _ => true,
        }
    }

    pub(crate) fn wrong_kind(expected: MessageKind, got: MessageKind) -> Self {
        SemopsError::WrongKind {
            expected: expected.0,
            got: got.0,
        }
    }
}
