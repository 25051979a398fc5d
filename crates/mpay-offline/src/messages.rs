//! The wallet-to-wallet messages (payloads inside the envelope). The
//! envelope header already names sender, receiver and transaction, so the
//! payloads carry only what the header does not. Layouts: docs/wire-format.md.

use mpay_envelope::MessageKind;
use mpay_identity::{Certificate, RevocationList};
use mpay_money::Amount;
use mpay_wire::{Decode, DecodeError, Encode, Reader, TEXT_LEN_MAX, Writer, wire_enum};

use crate::chain::ChainEntry;
use crate::sync::SyncAttestation;

pub mod kind {
    use super::MessageKind;
    /// Seller → everyone in one hop: who is in buyer mode?
    pub const LOOKUP: MessageKind = MessageKind(0x8101);
    /// Buyer → seller: I am, and here is my certificate.
    pub const LOOKUP_REPLY: MessageKind = MessageKind(0x0102);
    /// Seller → buyer: phase 1, pay this amount for this.
    pub const COMMIT_REQUEST: MessageKind = MessageKind(0x0103);
    /// Buyer → seller: prepared; here is my signed payment authorization.
    pub const AGREED: MessageKind = MessageKind(0x0104);
    /// Either way: this transaction is aborted (with a reason).
    pub const ABORT: MessageKind = MessageKind(0x0105);
    /// Seller → buyer: phase 2, the transaction is committed.
    pub const COMMIT: MessageKind = MessageKind(0x0106);
    /// Buyer → seller: COMMIT applied (the acknowledgement).
    pub const COMMITTED: MessageKind = MessageKind(0x0107);
    /// Uncertain buyer → seller: what became of this transaction?
    pub const STATUS: MessageKind = MessageKind(0x0108);
    /// Buyer → seller: ABORT applied (the acknowledgement).
    pub const ABORTED: MessageKind = MessageKind(0x0109);
}

wire_enum! {
    /// Why a transaction was aborted.
    pub enum AbortReason: "abort reason" {
        /// The seller decided to abort (no answer in time, or told so).
        SellerDecided = 1,
        /// No record of the transaction: presumed abort.
        UnknownTransaction = 2,
        /// The buyer is not in buyer mode, or the cost is over what its owner agreed.
        NotAgreed = 3,
        /// The buyer cannot cover the amount.
        InsufficientFunds = 4,
        /// The amount is over a limit in a certificate.
        OverLimit = 5,
        /// The currency is not the wallet's.
        WrongCurrency = 6,
        /// The payment authorization did not match the request.
        BadAuthorization = 7,
        /// Too many transactions in flight at once.
        Busy = 8,
        /// The amount is zero or negative.
        InvalidAmount = 9,
        /// The buyer's last sync with its money office is too old, or it made
        /// too many payments since.
        SyncTooOld = 10,
        /// The buyer did not answer the COMMIT-REQUEST in time (or the
        /// seller's owner cancelled the sale before it committed).
        NoAnswer = 11,
    }
}

/// The seller's one-hop broadcast. It spreads the seller's newest
/// revocation list, so revocations travel phone to phone.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Lookup {
    pub seller_certificate: Certificate,
    pub revocation_list: Option<RevocationList>,
}

/// A buyer in buyer mode answers with its certificate, its last sync
/// attestation (the seller refuses a stale one) and its revocation list.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LookupReply {
    pub buyer_certificate: Certificate,
    pub attestation: SyncAttestation,
    pub revocation_list: Option<RevocationList>,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CommitRequest {
    pub amount: Amount,
    pub description: String,
    pub seller_certificate: Certificate,
}

/// The buyer's agreement: its signed Pay entry and, if its owner chose to
/// share them, shipping details for the seller. The frame is sealed to the
/// seller, and the shipping details never enter the chain, so neither the
/// money office nor anyone else in radio range reads them.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Agreed {
    pub authorization: ChainEntry,
    pub shipping: Option<Shipping>,
}

/// Longest shipping details a buyer may share with a seller, bytes.
pub const SHIPPING_LEN_MAX: usize = 2_048;

/// Shipping details a buyer's owner chose to share with one seller: 1 to
/// [`SHIPPING_LEN_MAX`] bytes of UTF-8. `Debug` shows the length only.
#[derive(Clone, PartialEq, Eq)]
pub struct Shipping(String);

impl Shipping {
    /// Checks the length (1 to [`SHIPPING_LEN_MAX`] bytes).
    pub fn new(text: &str) -> Result<Self, DecodeError> {
        if text.trim().is_empty() {
            return Err(DecodeError::Invalid {
                what: "shipping details",
                reason: "empty",
            });
        }
        if text.len() > SHIPPING_LEN_MAX {
            return Err(DecodeError::TooLong {
                what: "shipping details",
                len: text.len(),
                max: SHIPPING_LEN_MAX,
            });
        }
        Ok(Shipping(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Shipping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Shipping({} bytes)", self.0.len())
    }
}

impl Encode for Shipping {
    fn encode(&self, w: &mut Writer) {
        w.text(&self.0);
    }
}

impl Decode for Shipping {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Shipping::new(&r.text("shipping details", SHIPPING_LEN_MAX)?)
    }
}

/// An uncertain buyer's question. It carries the buyer's certificate so a
/// seller that restarted and forgot the buyer can still answer.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Status {
    pub buyer_certificate: Certificate,
}

impl Encode for Status {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.buyer_certificate);
    }
}

impl Decode for Status {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Status {
            buyer_certificate: r.get()?,
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Abort {
    pub reason: AbortReason,
}

impl Encode for Lookup {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.seller_certificate)
            .option(&self.revocation_list);
    }
}

impl Decode for Lookup {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Lookup {
            seller_certificate: r.get()?,
            revocation_list: r.option("revocation list")?,
        })
    }
}

impl Encode for LookupReply {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.buyer_certificate)
            .put(&self.attestation)
            .option(&self.revocation_list);
    }
}

impl Decode for LookupReply {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(LookupReply {
            buyer_certificate: r.get()?,
            attestation: r.get()?,
            revocation_list: r.option("revocation list")?,
        })
    }
}

impl Encode for CommitRequest {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.amount)
            .text(&self.description)
            .put(&self.seller_certificate);
    }
}

impl Decode for CommitRequest {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(CommitRequest {
            amount: r.get()?,
            description: r.text("description", TEXT_LEN_MAX)?,
            seller_certificate: r.get()?,
        })
    }
}

impl Encode for Agreed {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.authorization).option(&self.shipping);
    }
}

impl Decode for Agreed {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Agreed {
            authorization: r.get()?,
            shipping: r.option("shipping details")?,
        })
    }
}

impl Encode for Abort {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.reason);
    }
}

impl Decode for Abort {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Abort { reason: r.get()? })
    }
}

/// A decoded wallet message of any kind.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Message {
    Lookup(Lookup),
    LookupReply(LookupReply),
    CommitRequest(CommitRequest),
    Agreed(Agreed),
    Abort(Abort),
    Commit,
    Committed,
    Status(Status),
    Aborted,
}

impl Message {
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Lookup(_) => kind::LOOKUP,
            Message::LookupReply(_) => kind::LOOKUP_REPLY,
            Message::CommitRequest(_) => kind::COMMIT_REQUEST,
            Message::Agreed(_) => kind::AGREED,
            Message::Abort(_) => kind::ABORT,
            Message::Commit => kind::COMMIT,
            Message::Committed => kind::COMMITTED,
            Message::Status(_) => kind::STATUS,
            Message::Aborted => kind::ABORTED,
        }
    }

    pub fn payload(&self) -> Vec<u8> {
        match self {
            Message::Lookup(m) => m.to_wire(),
            Message::LookupReply(m) => m.to_wire(),
            Message::CommitRequest(m) => m.to_wire(),
            Message::Agreed(m) => m.to_wire(),
            Message::Abort(m) => m.to_wire(),
            Message::Status(m) => m.to_wire(),
            Message::Commit | Message::Committed | Message::Aborted => Vec::new(),
        }
    }

    /// Decodes the payload of a message of `kind`. Total: any bytes give a
    /// message or an error.
    pub fn decode(kind: MessageKind, payload: &[u8]) -> Result<Message, DecodeError> {
        let empty = |m: Message| {
            Reader::new(payload).finish()?;
            Ok(m)
        };
        match kind {
            kind::LOOKUP => Ok(Message::Lookup(Lookup::from_wire(payload)?)),
            kind::LOOKUP_REPLY => Ok(Message::LookupReply(LookupReply::from_wire(payload)?)),
            kind::COMMIT_REQUEST => Ok(Message::CommitRequest(CommitRequest::from_wire(payload)?)),
            kind::AGREED => Ok(Message::Agreed(Agreed::from_wire(payload)?)),
            kind::ABORT => Ok(Message::Abort(Abort::from_wire(payload)?)),
            kind::COMMIT => empty(Message::Commit),
            kind::COMMITTED => empty(Message::Committed),
            kind::STATUS => Ok(Message::Status(Status::from_wire(payload)?)),
            kind::ABORTED => empty(Message::Aborted),
            other => Err(DecodeError::Invalid {
                what: "message kind",
                reason: if other.0 & 0x7f00 == 0x0100 {
                    "unknown wallet message kind"
                } else {
                    "not a wallet message kind"
                },
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipping_details_are_bounded_and_never_printed() {
        assert!(Shipping::new("").is_err());
        assert!(Shipping::new("  ").is_err());
        let longest = "x".repeat(SHIPPING_LEN_MAX);
        assert!(Shipping::new(&longest).is_ok());
        assert!(matches!(
            Shipping::new(&format!("{longest}x")),
            Err(DecodeError::TooLong { .. })
        ));
        // A peer's frame with details one byte too long is refused whole.
        let mut w = Writer::default();
        w.text(&format!("{longest}x"));
        assert!(Shipping::from_wire(&w.into_bytes()).is_err());
        let shipping = Shipping::new("7 Hidden Road").expect("short");
        assert_eq!(format!("{shipping:?}"), "Shipping(13 bytes)");
        assert_eq!(Shipping::from_wire(&shipping.to_wire()), Ok(shipping));
    }
}
