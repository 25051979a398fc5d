//! A merchant's **standing approval** of micropayments (issue: micropayments
//! at a fraction of a macro payment's cost): signed once by the merchant and
//! kept by its MPP, it lets the MPP approve a micropayment the moment its PN
//! arrives, without a round trip to the merchant, as long as the payment is
//! at most `per_payment_max` and the approvals of the current period add up
//! to at most `period_max`.
//!
//! The MPP relays it in place of a per-payment decision
//! ([`crate::Authority::Standing`]); the CPP checks the merchant's signature,
//! that the approval covers the payment's amount, that the payment is a
//! micropayment, and that the approval had started and not ended when the
//! CPP recorded the payment. The period budget is the MPP's to keep (it
//! alone sees every approval); the merchant withdraws an approval at its
//! MPP, which stops using it at once.
//!
//! Wire: merchant id ‖ mpp id ‖ amount per_payment_max ‖ amount period_max ‖
//! u64 period_ms ‖ ts signed_at ‖ ts expires_at.

use mpay_identity::{PartyId, Role, Timestamp};
use mpay_money::Amount;
use mpay_wire::{Decode, DecodeError, Encode, Reader, Writer};

use crate::signed::{Signable, Signed};
use crate::trans::check_positive;
use crate::validity::Validity;
use crate::{SemopsError, tags};

/// Shortest period a budget may be counted over: one minute.
pub const STANDING_PERIOD_MS_MIN: u64 = 60 * 1000;
/// Longest period: 31 days.
pub const STANDING_PERIOD_MS_MAX: u64 = 31 * 24 * 3600 * 1000;
/// Longest a standing approval may stand (`expires_at - signed_at`): one
/// year. A merchant renews it; a stolen one cannot stand for ever.
pub const STANDING_LIFETIME_MAX_MS: u64 = 366 * 24 * 3600 * 1000;

/// A merchant's signed, standing approval of its micropayments at one MPP.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StandingApproval {
    /// The approving merchant; signs it.
    pub merchant: PartyId,
    /// The MPP that may use it (the merchant's own).
    pub mpp: PartyId,
    /// Largest micropayment it approves.
    pub per_payment_max: Amount,
    /// Most it approves in one period, all payments together.
    pub period_max: Amount,
    /// The period's length: periods are the multiples of it since the epoch.
    pub period_ms: u64,
    /// When the merchant signed it; it approves nothing earlier.
    pub signed_at: Timestamp,
    /// It approves nothing at or after this instant.
    pub expires_at: Timestamp,
}

/// A standing approval signed by its merchant.
pub type SignedStandingApproval = Signed<StandingApproval>;

/// Why a standing approval does not approve a payment; the MPP then shows
/// the payment to the merchant, as without one.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum NotCovered {
    /// Before `signed_at`, or at or after `expires_at`.
    #[error("the standing approval is not in force")]
    NotInForce,
    /// Another currency than the approval's.
    #[error("the payment's currency is not the standing approval's")]
    Currency,
    /// Above `per_payment_max`.
    #[error("the payment is above the standing approval's amount per payment")]
    AbovePerPayment,
    /// The period's approvals plus this one would pass `period_max`.
    #[error("the standing approval's budget for this period is spent")]
    PeriodSpent,
}

/// What approving a payment under a standing approval uses up.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Use {
    /// The period it counts in (`now / period_ms`).
    pub period: u64,
    /// The period's approvals with this one, in minor units.
    pub used_after: i64,
}

impl StandingApproval {
    /// Whether the approval is in force at some instant from `from` to
    /// `to` (both included).
    pub fn in_force_during(&self, from: Timestamp, to: Timestamp) -> bool {
        self.signed_at <= to && from < self.expires_at && from <= to
    }

    /// The period `at` falls in.
    pub fn period_of(&self, at: Timestamp) -> u64 {
        at.as_millis() / self.period_ms
    }

    /// Whether the approval covers a payment of `amount` as a single
    /// payment at `at`: in force, same currency, at most the amount per
    /// payment. (The period's budget is the MPP's to keep: only it sees
    /// every approval.)
    pub fn covers(&self, amount: Amount, at: Timestamp) -> Result<(), NotCovered> {
        self.covers_during(amount, at, at)
    }

    /// [`StandingApproval::covers`] with the approval in force at some
    /// instant from `from` to `to`: the CPP's check, which knows when it
    /// recorded the payment and when the approval reached it, not when the
    /// MPP applied it.
    pub fn covers_during(
        &self,
        amount: Amount,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<(), NotCovered> {
        if !self.in_force_during(from, to) {
            return Err(NotCovered::NotInForce);
        }
        if amount.currency() != self.per_payment_max.currency() {
            return Err(NotCovered::Currency);
        }
        if !amount.is_positive() || amount.minor_units() > self.per_payment_max.minor_units() {
            return Err(NotCovered::AbovePerPayment);
        }
        Ok(())
    }

    /// The MPP's check: [`StandingApproval::covers`], and the period's
    /// approvals so far (`used_in_period`, minor units, of the period of
    /// `now`) plus `amount` within `period_max`. Returns what approving
    /// uses up.
    pub fn admits(
        &self,
        amount: Amount,
        used_in_period: i64,
        now: Timestamp,
    ) -> Result<Use, NotCovered> {
        self.covers(amount, now)?;
        let used_after = used_in_period
            .checked_add(amount.minor_units())
            .filter(|used| *used <= self.period_max.minor_units())
            .ok_or(NotCovered::PeriodSpent)?;
        Ok(Use {
            period: self.period_of(now),
            used_after,
        })
    }
}

impl Signable for StandingApproval {
    const TAG: &'static [u8] = tags::STANDING_APPROVAL;
    const SIGNER_ROLE: Role = Role::Merchant;
    const WHAT: &'static str = "standing approval";

    fn signer(&self) -> PartyId {
        self.merchant
    }

    fn validate(&self) -> Result<(), DecodeError> {
        check_positive(
            "standing approval amount per payment",
            &self.per_payment_max,
        )?;
        check_positive("standing approval amount per period", &self.period_max)?;
        let invalid = |reason| DecodeError::Invalid {
            what: "standing approval",
            reason,
        };
        if self.per_payment_max.currency() != self.period_max.currency() {
            return Err(invalid("two currencies"));
        }
        if self.per_payment_max.minor_units() > self.period_max.minor_units() {
            return Err(invalid("more per payment than per period"));
        }
        if !(STANDING_PERIOD_MS_MIN..=STANDING_PERIOD_MS_MAX).contains(&self.period_ms) {
            return Err(invalid("period outside one minute to 31 days"));
        }
        if self.expires_at <= self.signed_at {
            return Err(invalid("expires before it was signed"));
        }
        if self.expires_at.millis_since(self.signed_at) > STANDING_LIFETIME_MAX_MS {
            return Err(invalid("longer than the lifetime limit"));
        }
        Ok(())
    }

    fn check_at(&self, now: Timestamp) -> Result<(), SemopsError> {
        self.check_time(now)
    }
}

impl StandingApproval {
    /// The receiving MPP's rule at `now`: not ended, and not signed more
    /// than [`crate::REQUEST_CLOCK_SKEW_MAX_MS`] in its future.
    fn check_time(&self, now: Timestamp) -> Result<(), SemopsError> {
        Validity {
            signed_at: self.signed_at,
            expires_at: self.expires_at,
        }
        .check(<Self as Signable>::WHAT, now)
    }
}

impl Encode for StandingApproval {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.merchant)
            .put(&self.mpp)
            .put(&self.per_payment_max)
            .put(&self.period_max)
            .u64(self.period_ms)
            .put(&self.signed_at)
            .put(&self.expires_at);
    }
}

impl Decode for StandingApproval {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let approval = StandingApproval {
            merchant: r.get()?,
            mpp: r.get()?,
            per_payment_max: r.get()?,
            period_max: r.get()?,
            period_ms: r.u64("period")?,
            signed_at: r.get()?,
            expires_at: r.get()?,
        };
        approval.validate()?;
        Ok(approval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpay_money::Currency;

    fn eur(minor: i64) -> Amount {
        Amount::new(minor, Currency::EUR)
    }

    fn approval() -> StandingApproval {
        StandingApproval {
            merchant: PartyId([1; 16]),
            mpp: PartyId([2; 16]),
            per_payment_max: eur(10),
            period_max: eur(25),
            period_ms: 3_600_000,
            signed_at: Timestamp(1_000),
            expires_at: Timestamp(1_000 + 24 * 3_600_000),
        }
    }

    #[test]
    fn admits_within_the_payment_and_period_limits_only() {
        let a = approval();
        let now = Timestamp(3_600_000 + 5);
        assert_eq!(
            a.admits(eur(10), 15, now),
            Ok(Use {
                period: 1,
                used_after: 25
            })
        );
        assert_eq!(a.admits(eur(11), 0, now), Err(NotCovered::AbovePerPayment));
        assert_eq!(a.admits(eur(0), 0, now), Err(NotCovered::AbovePerPayment));
        assert_eq!(a.admits(eur(10), 16, now), Err(NotCovered::PeriodSpent));
        assert_eq!(
            a.admits(eur(1), i64::MAX, now),
            Err(NotCovered::PeriodSpent)
        );
        assert_eq!(
            a.admits(Amount::new(5, Currency::USD), 0, now),
            Err(NotCovered::Currency)
        );
        assert_eq!(
            a.admits(eur(5), 0, Timestamp(999)),
            Err(NotCovered::NotInForce)
        );
        assert_eq!(
            a.admits(eur(5), 0, a.expires_at),
            Err(NotCovered::NotInForce)
        );
        assert!(a.covers(eur(10), a.signed_at).is_ok());
        // The CPP's window: in force at some instant of it.
        let (before, after) = (Timestamp(0), a.expires_at.saturating_add_ms(5));
        assert!(a.covers_during(eur(10), before, after).is_ok());
        assert_eq!(
            a.covers_during(eur(10), before, Timestamp(999)),
            Err(NotCovered::NotInForce)
        );
        assert_eq!(
            a.covers_during(eur(10), a.expires_at, after),
            Err(NotCovered::NotInForce)
        );
    }

    #[test]
    fn round_trips_and_refuses_bad_fields_on_decode() {
        let a = approval();
        assert_eq!(StandingApproval::from_wire(&a.to_wire()), Ok(a.clone()));
        let bad = [
            StandingApproval {
                per_payment_max: eur(26),
                ..a.clone()
            },
            StandingApproval {
                period_max: eur(0),
                ..a.clone()
            },
            StandingApproval {
                period_max: Amount::new(25, Currency::USD),
                ..a.clone()
            },
            StandingApproval {
                period_ms: STANDING_PERIOD_MS_MIN - 1,
                ..a.clone()
            },
            StandingApproval {
                period_ms: STANDING_PERIOD_MS_MAX + 1,
                ..a.clone()
            },
            StandingApproval {
                expires_at: a.signed_at,
                ..a.clone()
            },
            StandingApproval {
                expires_at: a.signed_at.saturating_add_ms(STANDING_LIFETIME_MAX_MS + 1),
                ..a.clone()
            },
        ];
        for b in bad {
            assert!(
                StandingApproval::from_wire(&b.to_wire()).is_err(),
                "{b:?} decoded"
            );
        }
    }
}
