//! What comes back: the merchant's signed decision, the CPP's signed
//! confirmation (T, DT, or the payment's other ends), and the merchant's
//! signed refund request (DESIGN §3.2 steps 5–7, paper 002 §III).

use mpay_identity::{PartyId, Role, Timestamp};
use mpay_money::Amount;
use mpay_wire::{Decode, DecodeError, Encode, Reader, Writer, wire_enum};

use crate::notice::PaymentId;
use crate::signed::{Signable, Signed};
use crate::trans::check_positive;
use crate::validity::Validity;
use crate::{SemopsError, tags};

/// Longest free-text reason of a merchant's rejection, bytes.
pub const REASON_LEN_MAX: usize = 256;

/// The merchant's answer to a PN.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Decision {
    /// Go ahead: the CPP posts the hold (macro) or confirms DT (micro).
    Approve,
    /// Refuse, with a reason for the customer (at most [`REASON_LEN_MAX`] bytes).
    Reject { reason: String },
}

/// A merchant's approval or rejection of a payment.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MerchantDecision {
    /// The PN's payment id.
    pub payment_id: PaymentId,
    /// The deciding merchant, the TRANS's merchant.
    pub merchant: PartyId,
    /// Approve or reject.
    pub decision: Decision,
    /// When the merchant decided and until when the MPP may take the
    /// decision; the MPP refuses it outside that window.
    pub validity: Validity,
}

/// A decision signed by its merchant.
pub type SignedMerchantDecision = Signed<MerchantDecision>;

impl MerchantDecision {
    /// What a repeat of this decision must match: every field but the
    /// validity (a retry is signed afresh, at a new time).
    pub fn idempotent_content(&self) -> Vec<u8> {
        MerchantDecision {
            validity: Validity {
                signed_at: Timestamp(0),
                expires_at: Timestamp(1),
            },
            ..self.clone()
        }
        .to_wire()
    }
}

impl Signable for MerchantDecision {
    const TAG: &'static [u8] = tags::MERCHANT_DECISION;
    const SIGNER_ROLE: Role = Role::Merchant;
    const WHAT: &'static str = "merchant decision";

    fn signer(&self) -> PartyId {
        self.merchant
    }

    fn validate(&self) -> Result<(), DecodeError> {
        self.validity.validate()?;
        match &self.decision {
            Decision::Reject { reason } if reason.len() > REASON_LEN_MAX => {
                Err(DecodeError::TooLong {
                    what: "rejection reason",
                    len: reason.len(),
                    max: REASON_LEN_MAX,
                })
            }
            _ => Ok(()),
        }
    }

    fn check_at(&self, now: Timestamp) -> Result<(), SemopsError> {
        self.validity.check(Self::WHAT, now)
    }
}

impl Encode for MerchantDecision {
    fn encode(&self, w: &mut Writer) {
        w.raw(&self.payment_id).put(&self.merchant);
        match &self.decision {
            Decision::Approve => w.u8(1),
            Decision::Reject { reason } => w.u8(2).text(reason),
        };
        w.put(&self.validity);
    }
}

impl Decode for MerchantDecision {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let payment_id = r.array("payment id")?;
        let merchant = r.get()?;
        let decision = match r.u8("decision")? {
            1 => Decision::Approve,
            2 => Decision::Reject {
                reason: r.text("rejection reason", REASON_LEN_MAX)?,
            },
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "decision",
                    tag,
                });
            }
        };
        let decision = MerchantDecision {
            payment_id,
            merchant,
            decision,
            validity: r.get()?,
        };
        decision.validate()?;
        Ok(decision)
    }
}

wire_enum! {
    /// Why a payment was rejected, as the confirmation tells customer and
    /// merchant. Deliberately coarse: no balances, no PIN details beyond
    /// "wrong" or "locked".
    pub enum RejectReason: "reject reason" {
        /// The merchant rejected it.
        MerchantRejected = 1,
        /// Not enough funds for the hold (macro) or the aggregate transfer (micro).
        InsufficientFunds = 2,
        /// The PIN was wrong.
        WrongPin = 3,
        /// The customer's account is locked after too many wrong PINs.
        PinLocked = 4,
        /// The TRANS did not verify or names an unknown merchant or MPP.
        InvalidTrans = 5,
        /// The bank transfer of the pending micropayment total failed.
        AggregateTransferFailed = 6,
        /// A limit (credit, amount, rate) refused it.
        OverLimit = 7,
        /// The customer is unknown at this CPP.
        UnknownCustomer = 8,
    }
}

/// How a payment ended, as the CPP confirms it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ConfirmationOutcome {
    /// T confirmation: the transfer was made (macro payment posted).
    Transferred,
    /// DT confirmation: a micropayment, accepted now, transferred later in
    /// the customer's aggregate.
    DelayedTransfer,
    /// Refused, with why.
    Rejected { reason: RejectReason },
    /// No decision before the deadline: the hold was voided.
    Expired,
    /// The merchant refunded `amount` of the payment.
    Refunded,
}

impl ConfirmationOutcome {
    fn tag(self) -> u8 {
        match self {
            ConfirmationOutcome::Transferred => 1,
            ConfirmationOutcome::DelayedTransfer => 2,
            ConfirmationOutcome::Rejected { .. } => 3,
            ConfirmationOutcome::Expired => 4,
            ConfirmationOutcome::Refunded => 5,
        }
    }
}

impl Encode for ConfirmationOutcome {
    fn encode(&self, w: &mut Writer) {
        w.u8(self.tag());
        if let ConfirmationOutcome::Rejected { reason } = self {
            w.put(reason);
        }
    }
}

impl Decode for ConfirmationOutcome {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8("confirmation outcome")? {
            1 => ConfirmationOutcome::Transferred,
            2 => ConfirmationOutcome::DelayedTransfer,
            3 => ConfirmationOutcome::Rejected { reason: r.get()? },
            4 => ConfirmationOutcome::Expired,
            5 => ConfirmationOutcome::Refunded,
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "confirmation outcome",
                    tag,
                });
            }
        })
    }
}

/// The CPP's statement of how a payment ended.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Confirmation {
    /// The payment confirmed.
    pub payment_id: PaymentId,
    /// The CPP that signs the confirmation.
    pub cpp: PartyId,
    /// How the payment ended.
    pub outcome: ConfirmationOutcome,
    /// The payment's amount (for `Refunded`, the amount refunded); positive.
    pub amount: Amount,
    /// When the CPP decided.
    pub at: Timestamp,
}

/// A confirmation signed by its CPP.
pub type SignedConfirmation = Signed<Confirmation>;

impl Signable for Confirmation {
    const TAG: &'static [u8] = tags::CONFIRMATION;
    const SIGNER_ROLE: Role = Role::Cpp;
    const WHAT: &'static str = "confirmation";

    fn signer(&self) -> PartyId {
        self.cpp
    }

    fn validate(&self) -> Result<(), DecodeError> {
        check_positive("confirmation amount", &self.amount)
    }
}

impl Encode for Confirmation {
    fn encode(&self, w: &mut Writer) {
        w.raw(&self.payment_id)
            .put(&self.cpp)
            .put(&self.outcome)
            .put(&self.amount)
            .put(&self.at);
    }
}

impl Decode for Confirmation {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let confirmation = Confirmation {
            payment_id: r.array("payment id")?,
            cpp: r.get()?,
            outcome: r.get()?,
            amount: r.get()?,
            at: r.get()?,
        };
        confirmation.validate()?;
        Ok(confirmation)
    }
}

/// The merchant's request to give back (part of) a completed payment. It
/// runs the payment's path in reverse: merchant → MPP → DC → CPP.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RefundRequest {
    /// The completed payment to refund.
    pub payment_id: PaymentId,
    /// The merchant that was paid, and signs the request.
    pub merchant: PartyId,
    /// Positive, at most the payment's amount ([`RefundRequest::check_against`]).
    pub amount: Amount,
    /// Chosen by the merchant; a repeat with the same key is the same refund
    /// (and gets the first answer, a refusal included).
    pub idempotency_key: [u8; 16],
    /// When the merchant signed the request and until when the MPP may take
    /// it; the MPP refuses it outside that window.
    pub validity: Validity,
}

/// A refund request signed by its merchant.
pub type SignedRefundRequest = Signed<RefundRequest>;

/// Longest merchant's reference of a refund ([`RefundRequest::derive_key`]), bytes.
pub const REFUND_REFERENCE_LEN_MAX: usize = 128;

impl RefundRequest {
    /// The idempotency key of one logical refund, derived from what the
    /// merchant says about it: the same (merchant, payment, amount,
    /// reference) gives the same key, so a retry is the same refund and
    /// cannot refund twice; a second refund of the same amount needs another
    /// `reference` (a return slip number). References longer than
    /// [`REFUND_REFERENCE_LEN_MAX`] are refused.
    pub fn derive_key(
        merchant: PartyId,
        payment_id: &PaymentId,
        amount: Amount,
        reference: &str,
    ) -> Result<[u8; 16], SemopsError> {
        if reference.len() > REFUND_REFERENCE_LEN_MAX {
            return Err(SemopsError::InvalidField(DecodeError::TooLong {
                what: "refund reference",
                len: reference.len(),
                max: REFUND_REFERENCE_LEN_MAX,
            }));
        }
        let mut w = Writer::new();
        w.put(&merchant)
            .raw(payment_id)
            .put(&amount)
            .text(reference);
        let mut hasher = blake3::Hasher::new();
        hasher.update(tags::REFUND_KEY);
        hasher.update(&w.into_bytes());
        let mut key = [0u8; 16];
        key.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
        Ok(key)
    }

    /// What a repeat under the same idempotency key must match: every field
    /// but the validity (a retry is signed afresh, at a new time).
    pub fn idempotent_content(&self) -> Vec<u8> {
        RefundRequest {
            validity: Validity {
                signed_at: Timestamp(0),
                expires_at: Timestamp(1),
            },
            ..self.clone()
        }
        .to_wire()
    }

    /// Checks the refund against what was paid (and, by the caller, not yet
    /// refunded): same currency, not more.
    pub fn check_against(&self, paid: Amount) -> Result<(), SemopsError> {
        let too_large = SemopsError::RefundTooLarge {
            requested: self.amount,
            paid,
        };
        match self.amount.checked_cmp(&paid) {
            Ok(std::cmp::Ordering::Greater) | Err(_) => Err(too_large),
            Ok(_) => Ok(()),
        }
    }
}

impl Signable for RefundRequest {
    const TAG: &'static [u8] = tags::REFUND_REQUEST;
    const SIGNER_ROLE: Role = Role::Merchant;
    const WHAT: &'static str = "refund request";

    fn signer(&self) -> PartyId {
        self.merchant
    }

    fn validate(&self) -> Result<(), DecodeError> {
        check_positive("refund amount", &self.amount)?;
        self.validity.validate()
    }

    fn check_at(&self, now: Timestamp) -> Result<(), SemopsError> {
        self.validity.check(Self::WHAT, now)
    }
}

impl Encode for RefundRequest {
    fn encode(&self, w: &mut Writer) {
        w.raw(&self.payment_id)
            .put(&self.merchant)
            .put(&self.amount)
            .raw(&self.idempotency_key)
            .put(&self.validity);
    }
}

impl Decode for RefundRequest {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let request = RefundRequest {
            payment_id: r.array("payment id")?,
            merchant: r.get()?,
            amount: r.get()?,
            idempotency_key: r.array("idempotency key")?,
            validity: r.get()?,
        };
        request.validate()?;
        Ok(request)
    }
}
