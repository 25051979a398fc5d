//! PN: the CPP's signed payment notice, routed by DCs to the merchant's MPP
//! (DESIGN §3.2 steps 3–5), the customer's pseudonym, and hop deadlines.

use mpay_identity::{PartyId, Role, Timestamp};
use mpay_wire::{Decode, DecodeError, Encode, Reader, Writer, wire_enum};

use crate::shipping::SealedShipping;
use crate::signed::{Signable, Signed};
use crate::trans::SignedTrans;
use crate::{SemopsError, tags};

/// A payment's id, chosen by the CPP; every later message names it.
pub type PaymentId = [u8; 16];

wire_enum! {
    /// How the CPP handles the payment (DESIGN §3.3): a macro payment holds
    /// funds at the customer's bank; a micropayment joins the customer's
    /// pending total and is confirmed as a delayed transfer (DT).
    pub enum AmountClass: "amount class" {
        Macro = 1,
        Micro = 2,
    }
}

/// The CPP's notice to the merchant's MPP: the merchant's TRANS, paid by a
/// pseudonymous customer through this CPP.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PaymentNotice {
    /// Chosen by the CPP, unique per payment.
    pub payment_id: PaymentId,
    /// The merchant's signed TRANS, as the customer sent it.
    pub trans: SignedTrans,
    /// [`pseudonym`] of the customer for this merchant; never the identity.
    pub customer_pseudonym: [u8; 16],
    /// The CPP that signs the PN and holds the customer's account.
    pub cpp: PartyId,
    /// Macro (hold) or micro (pending total, DT confirmation).
    pub class: AmountClass,
    /// The CPP's deadline for the merchant's decision; past it the CPP voids
    /// the hold and a late decision is only recorded.
    pub deadline: Timestamp,
    /// The PR's sealed shipping details, as the customer sent them: the
    /// merchant's to open ([`crate::open_shipping`]), opaque to the CPP,
    /// the DCs and the MPP. Under the CPP's signature, so no hop can swap
    /// or move them.
    pub shipping: Option<SealedShipping>,
}

/// A PN signed by its CPP.
pub type SignedPaymentNotice = Signed<PaymentNotice>;

impl Signable for PaymentNotice {
    const TAG: &'static [u8] = tags::PAYMENT_NOTICE;
    const SIGNER_ROLE: Role = Role::Cpp;
    const WHAT: &'static str = "PN";

    fn signer(&self) -> PartyId {
        self.cpp
    }

    fn validate(&self) -> Result<(), DecodeError> {
        // The TRANS inside validated itself when made or decoded.
        Ok(())
    }

    fn check_at(&self, now: Timestamp) -> Result<(), SemopsError> {
        if now >= self.deadline {
            return Err(SemopsError::Expired {
                what: Self::WHAT,
                expires_at: self.deadline,
                now,
            });
        }
        Ok(())
    }
}

impl Encode for PaymentNotice {
    fn encode(&self, w: &mut Writer) {
        w.raw(&self.payment_id)
            .put(&self.trans)
            .raw(&self.customer_pseudonym)
            .put(&self.cpp)
            .put(&self.class)
            .put(&self.deadline)
            .option(&self.shipping);
    }
}

impl Decode for PaymentNotice {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(PaymentNotice {
            payment_id: r.array("payment id")?,
            trans: r.get()?,
            customer_pseudonym: r.array("customer pseudonym")?,
            cpp: r.get()?,
            class: r.get()?,
            deadline: r.get()?,
            shipping: r.option("shipping details")?,
        })
    }
}

/// The payload of a [`crate::kind::PAYMENT_NOTICE`] envelope: the CPP's
/// signed PN and the deadline of this hop. The CPP's signed deadline cannot
/// change on the way; each forwarding hop (CPP, DC, DC) keeps a budget for
/// itself and gives the next hop [`hop_deadline`]. The envelope signature of
/// the hop that sent it authenticates `deadline`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RoutedNotice {
    /// The CPP's signed PN, unchanged on every hop.
    pub notice: SignedPaymentNotice,
    /// Never after the PN's own deadline (checked on decode).
    pub deadline: Timestamp,
}

impl RoutedNotice {
    /// The notice for the next hop, `hop_budget_ms` earlier than this one's
    /// deadline; `None` if no time would be left for the next hop.
    pub fn forward(&self, now: Timestamp, hop_budget_ms: u64) -> Option<RoutedNotice> {
        Some(RoutedNotice {
            notice: self.notice.clone(),
            deadline: hop_deadline(self.deadline, now, hop_budget_ms)?,
        })
    }
}

impl Encode for RoutedNotice {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.notice).put(&self.deadline);
    }
}

impl Decode for RoutedNotice {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let routed = RoutedNotice {
            notice: r.get()?,
            deadline: r.get()?,
        };
        if routed.deadline > routed.notice.unverified_body().deadline {
            return Err(DecodeError::Invalid {
                what: "hop deadline",
                reason: "later than the PN's deadline",
            });
        }
        Ok(routed)
    }
}

/// The deadline to give the next hop: `hop_budget_ms` before `deadline`, so
/// this hop has that long to pass a late answer back. Never later than
/// `deadline`; `None` when it would not be after `now` (no time left, do not
/// forward).
pub fn hop_deadline(deadline: Timestamp, now: Timestamp, hop_budget_ms: u64) -> Option<Timestamp> {
    let next = deadline.saturating_sub_ms(hop_budget_ms);
    (next > now).then_some(next)
}

/// The customer's pseudonym for one merchant: a keyed BLAKE3 hash under the
/// CPP's secret of the customer's reference and the merchant's id. Stable
/// per (customer, merchant), unlinkable across merchants without the
/// secret, and not reversible to the customer.
pub fn pseudonym(cpp_secret: &[u8; 32], customer: &str, merchant: PartyId) -> [u8; 16] {
    let mut hasher = blake3::Hasher::new_keyed(cpp_secret);
    hasher.update(tags::PSEUDONYM);
    hasher.update(&merchant.0);
    // Length-prefixed, so no two (customer, merchant) pairs share an input.
    hasher.update(
        &u64::try_from(customer.len())
            .unwrap_or(u64::MAX)
            .to_be_bytes(),
    );
    hasher.update(customer.as_bytes());
    let hash = hasher.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&hash.as_bytes()[..16]);
    out
}
