//! The interbank messages and the receiving bank's decision, as pure values.
//!
//! Bank A sends an [`InterbankMessage`] (kind [`kind::INTERBANK_TRANSFER`])
//! sealed to bank B; B answers with an [`InterbankAck`] (kind
//! [`kind::INTERBANK_ACK`]) sealed to A. Both payloads are `mpay-wire`
//! encodings, signed by their author and sealed to the other bank in the
//! `mpay-envelope` envelope, whose header carries sender, receiver and time;
//! the envelope's transaction id is the message id.
//!
//! Layouts (big-endian, `text` = `u16` length + UTF-8, `option` = presence
//! byte + value, `Amount` = 3-byte currency code + `i64` minor units):
//!
//! ```text
//! InterbankMessage: u8 version (1) | [16] id | text from_account |
//!                   text to_account | Amount amount (> 0) | text reference |
//!                   u8 reason (1 payment, 2 returned) | option [16] returns
//!                   (present exactly when reason = returned)
//! InterbankAck:     u8 version (1) | [16] id | u8 outcome (1 credited,
//!                   2 returned, 3 suspense)
//! ```

use mpay_money::{Amount, Currency};
use mpay_wire::{Decode, DecodeError, Encode, Reader, Writer, wire_enum};

use crate::ledger::{AccountId, AccountKind, InterbankId, LedgerError, REFERENCE_LEN_MAX};

/// Envelope message kinds of the interbank protocol (range `0x03xx`).
pub mod kind {
    use mpay_envelope::MessageKind;

    /// A transfer from one bank to another (or a return of one).
    pub const INTERBANK_TRANSFER: MessageKind = MessageKind(0x0301);
    /// The receiving bank's acknowledgement of a transfer.
    pub const INTERBANK_ACK: MessageKind = MessageKind(0x0302);
}

/// The payload layout version of both messages.
pub const INTERBANK_VERSION: u8 = 1;

/// The outbox `kind` of an interbank transfer waiting for delivery.
pub const OUTBOX_KIND: &str = "interbank_transfer";

/// Domain of the derivation of a return's message id from the original's.
const RETURN_ID_CONTEXT: &str = "mpay/v1/bank interbank return id";

// `wire_enum!` writes `ALL`, `tag` and `from_tag` without doc comments.
#[allow(missing_docs)]
mod transfer_reason_enum {
    use super::*;

    wire_enum! {
        /// Why money moves between banks.
        pub enum TransferReason: "transfer reason" {
            /// A payment from an account here to an account there.
            Payment = 1,
            /// Money sent back because the receiving bank could not credit it.
            Returned = 2,
        }
    }
}
pub use transfer_reason_enum::TransferReason;

// `wire_enum!` writes `ALL`, `tag` and `from_tag` without doc comments.
#[allow(missing_docs)]
mod ack_outcome_enum {
    use super::*;

    wire_enum! {
        /// What the receiving bank did with a transfer.
        pub enum AckOutcome: "ack outcome" {
            /// Credited to the named account.
            Credited = 1,
            /// Not creditable (no such account, or another currency): a return
            /// transfer is on its way back to the sender.
            Returned = 2,
            /// A returned transfer whose account is gone: kept in `suspense`
            /// (never returned again, so nothing bounces forever).
            Suspense = 3,
        }
    }
}
pub use ack_outcome_enum::AckOutcome;

impl AckOutcome {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            AckOutcome::Credited => "credited",
            AckOutcome::Returned => "returned",
            AckOutcome::Suspense => "suspense",
        }
    }

    /// The outcome named `text`.
    pub fn from_name(text: &str) -> Option<AckOutcome> {
        AckOutcome::ALL.iter().copied().find(|o| o.as_str() == text)
    }
}

/// A transfer between banks, as its sender wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterbankMessage {
    /// Chosen by the sender; the receiver applies each (sender, id) once.
    pub id: InterbankId,
    /// The account debited at the sender.
    pub from_account: AccountId,
    /// The account to credit at the receiver.
    pub to_account: AccountId,
    /// How much (positive, in the sender's currency).
    pub amount: Amount,
    /// The payer's reference.
    pub reference: String,
    /// A payment, or a return of one.
    pub reason: TransferReason,
    /// For a return: the id of the message returned.
    pub returns: Option<InterbankId>,
}

impl InterbankMessage {
    /// The return of this message: the same amount back to the payer's
    /// account, with an id derived from this one (so that deciding twice
    /// gives one return).
    pub fn return_message(&self) -> InterbankMessage {
        let derived = blake3::derive_key(RETURN_ID_CONTEXT, &self.id.0);
        let mut id = [0u8; 16];
        id.copy_from_slice(&derived[..16]);
        InterbankMessage {
            id: InterbankId(id),
            from_account: self.to_account.clone(),
            to_account: self.from_account.clone(),
            amount: self.amount,
            reference: self.reference.clone(),
            reason: TransferReason::Returned,
            returns: Some(self.id),
        }
    }

    /// BLAKE3 of the encoding: a repeat under the same id must match it.
    pub fn hash(&self) -> [u8; 32] {
        *blake3::hash(&self.to_wire()).as_bytes()
    }

    /// What the receiving bank does with this message, given the kind of
    /// the account it names there (`None`: no such account) and its
    /// currency. Only a holder account is ever credited; a payment that
    /// cannot be credited goes back; a return that cannot be credited stays
    /// in suspense. A return in another currency is refused (the sender's
    /// bug: no bank returns what it never received).
    pub fn decide(
        &self,
        target: Option<AccountKind>,
        currency: Currency,
    ) -> Result<AckOutcome, LedgerError> {
        let same_currency = self.amount.currency() == currency;
        if same_currency && target == Some(AccountKind::Holder) {
            return Ok(AckOutcome::Credited);
        }
        match self.reason {
            TransferReason::Payment => Ok(AckOutcome::Returned),
            TransferReason::Returned if same_currency => Ok(AckOutcome::Suspense),
            TransferReason::Returned => Err(LedgerError::Invalid(format!(
                "a returned transfer in {}, which this bank does not keep",
                self.amount.currency()
            ))),
        }
    }
}

impl Encode for InterbankMessage {
    fn encode(&self, w: &mut Writer) {
        w.u8(INTERBANK_VERSION)
            .put(&self.id)
            .put(&self.from_account)
            .put(&self.to_account)
            .put(&self.amount)
            .text(&self.reference)
            .put(&self.reason)
            .option(&self.returns);
    }
}

impl Decode for InterbankMessage {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.u8("interbank version")?;
        if version != INTERBANK_VERSION {
            return Err(DecodeError::UnknownTag {
                what: "interbank version",
                tag: version,
            });
        }
        let message = InterbankMessage {
            id: r.get()?,
            from_account: r.get()?,
            to_account: r.get()?,
            amount: r.get()?,
            reference: r.text("reference", REFERENCE_LEN_MAX)?,
            reason: r.get()?,
            returns: r.option("returns")?,
        };
        if !message.amount.is_positive() {
            return Err(DecodeError::Invalid {
                what: "interbank amount",
                reason: "not positive",
            });
        }
        if message.amount.check_bounded().is_err() {
            return Err(DecodeError::Invalid {
                what: "interbank amount",
                reason: "beyond mpay_money::AMOUNT_MINOR_MAX",
            });
        }
        if (message.reason == TransferReason::Returned) != message.returns.is_some() {
            return Err(DecodeError::Invalid {
                what: "interbank returns",
                reason: "present exactly when the reason is `returned`",
            });
        }
        Ok(message)
    }
}

/// The receiving bank's acknowledgement: it has applied the message (now or
/// before) with this outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterbankAck {
    /// The message acknowledged.
    pub id: InterbankId,
    /// What became of it.
    pub outcome: AckOutcome,
}

impl Encode for InterbankAck {
    fn encode(&self, w: &mut Writer) {
        w.u8(INTERBANK_VERSION).put(&self.id).put(&self.outcome);
    }
}

impl Decode for InterbankAck {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.u8("interbank version")?;
        if version != INTERBANK_VERSION {
            return Err(DecodeError::UnknownTag {
                what: "interbank version",
                tag: version,
            });
        }
        Ok(InterbankAck {
            id: r.get()?,
            outcome: r.get()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpay_identity::PartyId;

    fn message() -> InterbankMessage {
        InterbankMessage {
            id: InterbankId([1; 16]),
            from_account: AccountId::parse("cust:alice").unwrap(),
            to_account: AccountId::parse("shop:bob").unwrap(),
            amount: Amount::new(1_250, Currency::EUR),
            reference: "order 7".into(),
            reason: TransferReason::Payment,
            returns: None,
        }
    }

    #[test]
    fn messages_round_trip_and_decoding_is_total() {
        let m = message();
        let bytes = m.to_wire();
        assert_eq!(InterbankMessage::from_wire(&bytes), Ok(m.clone()));
        for cut in 0..bytes.len() {
            assert!(InterbankMessage::from_wire(&bytes[..cut]).is_err());
        }
        let back = m.return_message();
        assert_eq!(
            InterbankMessage::from_wire(&back.to_wire()),
            Ok(back.clone())
        );
        assert_eq!(back.returns, Some(m.id));
        assert_eq!(back.to_account, m.from_account);
        assert_ne!(back.id, m.id);
        assert_eq!(m.return_message().id, back.id, "return ids are derived");
        let ack = InterbankAck {
            id: m.id,
            outcome: AckOutcome::Returned,
        };
        assert_eq!(InterbankAck::from_wire(&ack.to_wire()), Ok(ack));
    }

    #[test]
    fn malformed_messages_are_refused() {
        let mut zero = message();
        zero.amount = Amount::new(0, Currency::EUR);
        assert!(InterbankMessage::from_wire(&zero.to_wire()).is_err());
        let mut orphan = message();
        orphan.reason = TransferReason::Returned;
        assert!(InterbankMessage::from_wire(&orphan.to_wire()).is_err());
        let mut bytes = message().to_wire();
        bytes[0] = 2;
        assert!(InterbankMessage::from_wire(&bytes).is_err());
    }

    #[test]
    fn only_holder_accounts_are_credited_and_returns_never_bounce() {
        let m = message();
        let eur = Currency::EUR;
        assert_eq!(
            m.decide(Some(AccountKind::Holder), eur),
            Ok(AckOutcome::Credited)
        );
        assert_eq!(m.decide(None, eur), Ok(AckOutcome::Returned));
        assert_eq!(
            m.decide(Some(AccountKind::Settlement(PartyId::from_u64(3))), eur),
            Ok(AckOutcome::Returned)
        );
        assert_eq!(
            m.decide(Some(AccountKind::External), eur),
            Ok(AckOutcome::Returned)
        );
        assert_eq!(
            m.decide(Some(AccountKind::Holder), Currency::USD),
            Ok(AckOutcome::Returned)
        );
        let back = m.return_message();
        assert_eq!(back.decide(None, eur), Ok(AckOutcome::Suspense));
        assert_eq!(
            back.decide(Some(AccountKind::Holder), eur),
            Ok(AckOutcome::Credited)
        );
        assert!(back.decide(None, Currency::USD).is_err());
    }
}
