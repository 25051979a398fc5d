//! The CPP's rule for one micropayment (paper 002 §III, DESIGN §3.3), as a
//! pure function of the customer's pending state, the limits in force, the
//! amount and `now`.
//!
//! # The rule
//!
//! - An amount above the micro limit is a **macro** payment: this module does
//!   not touch it (the CPP places a hold at the bank as for any payment).
//! - A micropayment whose addition leaves the pending total **below θ** is
//!   **deferred**: no funds check, the customer and merchant get a **DT
//!   confirmation**, the amount joins the pending total.
//! - A micropayment whose addition makes the pending total **reach θ** (or
//!   that arrives when the pending total has waited **W** or longer) makes
//!   the CPP **settle**: one bank transfer of the whole pending total, this
//!   payment included, from the customer's account to the CPP's. On success
//!   the payment gets a **T confirmation** and the pending total is reset.
//! - If that transfer **fails**, the micropayment that triggered it is
//!   **rejected** (no confirmation of any kind). The micropayments already
//!   DT-confirmed before it stay pending: the CPP has promised them to the
//!   merchants and still claims them from the customer. The customer is
//!   **blocked**: every further micropayment is refused until a settlement of
//!   the pending total succeeds (the window sweep retries it every W). A
//!   blocked customer with nothing pending owes nothing and is unblocked at
//!   once. Every failed transfer is counted ([`Pending::failed_transfers`]);
//!   it is one of the features k-means clusters customers by
//!   ([`crate::cluster`]), so a customer whose transfers fail gets a lower θ
//!   at the next recluster.
//! - While a settlement transfer of the customer is in flight, further
//!   micropayments of that customer are refused as
//!   [`Refusal::SettlementInFlight`] (retry after it ends): one batch per
//!   customer at a time keeps "which items does this transfer cover" exact.
//! - The **window sweep** ([`due_for_window`]): a pending total whose oldest
//!   item has waited W is settled without waiting for θ, as card networks
//!   bound aggregated authorisations.
//!
//! A pending total never rests at or above θ: [`decide`] asserts that a
//! deferred total is below θ, in release builds too.

use mpay_identity::Timestamp;
use mpay_money::{Amount, Currency, MoneyError};

/// The largest micropayment any configuration may allow, in minor units
/// (1,000.00 in a currency of two decimals). The micropayment books sum
/// micropayments over a processor's lifetime (collected, confirmed, owed,
/// paid): with each at most this, those sums stay below `i64::MAX` for more
/// than 9·10^13 micropayments, over a thousand years at 2,000 a second, so
/// `CAST(SUM(..) AS BIGINT)` cannot overflow. Pending totals and credit in
/// use are bounded by θ and the credit limit (each at most
/// [`mpay_money::AMOUNT_MINOR_MAX`]).
pub const MICRO_AMOUNT_MINOR_MAX: i64 = 100_000;
const _: () =
    assert!((MICRO_AMOUNT_MINOR_MAX as i128) * 2_000 * 86_400 * 366 * 1_000 < i64::MAX as i128);

/// The limits one customer's micropayments are judged by (from its k-means
/// cluster, or the default cluster).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MicroLimits {
    micro_max: Amount,
    theta: Amount,
    window_ms: u64,
}

impl MicroLimits {
    /// `micro_max`: the largest micropayment (above it: macro); `theta`: θ,
    /// the pending total that triggers a settlement; `window_ms`: W, the
    /// longest a pending total waits. All three positive, one currency, and
    /// `micro_max` at most [`MICRO_AMOUNT_MINOR_MAX`].
    pub fn new(micro_max: Amount, theta: Amount, window_ms: u64) -> Result<Self, PolicyError> {
        if micro_max.currency() != theta.currency() {
            return Err(PolicyError::Money(MoneyError::CurrencyMismatch {
                left: micro_max.currency(),
                right: theta.currency(),
            }));
        }
        if !micro_max.is_positive()
            || micro_max.minor_units() > MICRO_AMOUNT_MINOR_MAX
            || !theta.is_positive()
            || window_ms == 0
        {
            return Err(PolicyError::InvalidLimits);
        }
        Ok(MicroLimits {
            micro_max,
            theta,
            window_ms,
        })
    }

    /// The largest micropayment.
    pub fn micro_max(&self) -> Amount {
        self.micro_max
    }
    /// θ.
    pub fn theta(&self) -> Amount {
        self.theta
    }
    /// W in milliseconds.
    pub fn window_ms(&self) -> u64 {
        self.window_ms
    }
    /// The currency of all three.
    pub fn currency(&self) -> Currency {
        self.theta.currency()
    }
}

/// Where a customer's pending total stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Accepting micropayments.
    Open,
    /// A settlement transfer (this batch) is in flight.
    Settling {
        /// The batch being transferred.
        batch: BatchId,
    },
    /// The last settlement transfer failed at `since`; micropayments are
    /// refused until a settlement succeeds.
    Blocked {
        /// When the transfer failed.
        since: Timestamp,
    },
}

/// A settlement batch: one bank transfer of one customer's pending total.
/// Its number is the idempotency key of the transfer at the bank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchId(pub u64);

impl std::fmt::Display for BatchId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "micro-batch-{}", self.0)
    }
}

/// One customer's pending state: what [`decide`] needs, found in O(1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    /// Sum of the open micropayments (DT-confirmed, plus a trigger while its
    /// batch is in flight).
    pub total: Amount,
    /// Number of open micropayments.
    pub count: u64,
    /// Arrival of the oldest open micropayment.
    pub oldest: Option<Timestamp>,
    /// Open, settling or blocked.
    pub standing: Standing,
    /// Settlement transfers of this customer that failed, ever.
    pub failed_transfers: u64,
}

impl Pending {
    /// A customer with nothing pending.
    pub fn empty(currency: Currency) -> Pending {
        Pending {
            total: Amount::zero(currency),
            count: 0,
            oldest: None,
            standing: Standing::Open,
            failed_transfers: 0,
        }
    }
}

/// Why a micropayment was refused without any transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The customer's last settlement failed and its pending total is unpaid.
    Blocked,
    /// A settlement transfer of this customer is in flight; try again after it.
    SettlementInFlight,
}

/// What the CPP does with one payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Above the micro limit: a macro payment, not aggregated.
    Macro,
    /// Added to the pending total (now `total`, below θ): DT confirmation.
    Defer {
        /// The pending total after adding it.
        total: Amount,
    },
    /// Settle `total` (the pending total plus this payment) with one bank
    /// transfer; T confirmation on success, rejection on failure.
    Settle {
        /// The amount of the transfer.
        total: Amount,
    },
    /// Refused; nothing changes.
    Refuse(Refusal),
}

/// Errors of the rule. The payment's are the customer's (or merchant's)
/// fault; a currency mismatch between pending state and limits is the CPP's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A payment of zero or less (the request's fault).
    #[error("a micropayment must be positive")]
    NotPositive,
    /// Limits with a non-positive amount, a zero window or a micro limit past
    /// [`MICRO_AMOUNT_MINOR_MAX`] (the CPP's configuration).
    #[error(
        "micro limits must be positive, the micro limit at most {MICRO_AMOUNT_MINOR_MAX} minor units"
    )]
    InvalidLimits,
    /// Currencies do not match, or a sum overflowed.
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// The CPP's rule (module docs). Pure: reads nothing but its arguments.
pub fn decide(
    pending: &Pending,
    limits: &MicroLimits,
    amount: Amount,
    now: Timestamp,
) -> Result<Decision, PolicyError> {
    if !amount.is_positive() {
        return Err(PolicyError::NotPositive);
    }
    if amount.checked_cmp(&limits.micro_max)?.is_gt() {
        return Ok(Decision::Macro);
    }
    match pending.standing {
        Standing::Open => {}
        Standing::Settling { .. } => return Ok(Decision::Refuse(Refusal::SettlementInFlight)),
        Standing::Blocked { .. } => return Ok(Decision::Refuse(Refusal::Blocked)),
    }
    let total = pending.total.checked_add(amount)?;
    let overdue = pending
        .oldest
        .is_some_and(|oldest| now.millis_since(oldest) >= limits.window_ms);
    if total.checked_cmp(&limits.theta)?.is_ge() || overdue {
        return Ok(Decision::Settle { total });
    }
    // The invariant the whole structure rests on: a deferred total is below θ.
    assert!(
        total.minor_units() < limits.theta.minor_units(),
        "pending total {total} would rest at or above θ {}",
        limits.theta
    );
    Ok(Decision::Defer { total })
}

/// When the window sweep must settle this customer's pending total: W after
/// its oldest item (open), or W after the failed transfer (blocked, a
/// retry). `None`: nothing to sweep (empty, or a batch in flight).
pub fn window_due_at(pending: &Pending, limits: &MicroLimits) -> Option<Timestamp> {
    if pending.count == 0 {
        return None;
    }
    match pending.standing {
        Standing::Open => pending
            .oldest
            .map(|oldest| oldest.saturating_add_ms(limits.window_ms)),
        Standing::Blocked { since } => Some(since.saturating_add_ms(limits.window_ms)),
        Standing::Settling { .. } => None,
    }
}

/// True if the window sweep must settle this pending total at `now`.
pub fn due_for_window(pending: &Pending, limits: &MicroLimits, now: Timestamp) -> bool {
    window_due_at(pending, limits).is_some_and(|due| due <= now)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EUR: Currency = Currency::EUR;

    fn eur(minor: i64) -> Amount {
        Amount::new(minor, EUR)
    }

    fn limits() -> MicroLimits {
        MicroLimits::new(eur(1_000), eur(5_000), 86_400_000).unwrap()
    }

    fn pending(total: i64, count: u64, oldest: u64) -> Pending {
        Pending {
            total: eur(total),
            count,
            oldest: (count > 0).then_some(Timestamp(oldest)),
            ..Pending::empty(EUR)
        }
    }

    #[test]
    fn macro_above_the_micro_limit_only() {
        let p = Pending::empty(EUR);
        let now = Timestamp(10);
        assert_eq!(decide(&p, &limits(), eur(1_001), now), Ok(Decision::Macro));
        assert_eq!(
            decide(&p, &limits(), eur(1_000), now),
            Ok(Decision::Defer { total: eur(1_000) })
        );
    }

    #[test]
    fn theta_edge_settles_at_exactly_theta() {
        let now = Timestamp(1_000);
        let p = pending(4_000, 10, 500);
        assert_eq!(
            decide(&p, &limits(), eur(999), now),
            Ok(Decision::Defer { total: eur(4_999) })
        );
        assert_eq!(
            decide(&p, &limits(), eur(1_000), now),
            Ok(Decision::Settle { total: eur(5_000) })
        );
    }

    #[test]
    fn window_edge_settles_an_overdue_total() {
        let p = pending(10, 1, 1_000);
        let w = limits().window_ms();
        assert_eq!(
            decide(&p, &limits(), eur(1), Timestamp(1_000 + w - 1)),
            Ok(Decision::Defer { total: eur(11) })
        );
        assert_eq!(
            decide(&p, &limits(), eur(1), Timestamp(1_000 + w)),
            Ok(Decision::Settle { total: eur(11) })
        );
        assert!(!due_for_window(&p, &limits(), Timestamp(1_000 + w - 1)));
        assert!(due_for_window(&p, &limits(), Timestamp(1_000 + w)));
        assert!(!due_for_window(
            &Pending::empty(EUR),
            &limits(),
            Timestamp(u64::MAX)
        ));
    }

    #[test]
    fn blocked_and_settling_customers_are_refused() {
        let mut p = pending(10, 1, 0);
        p.standing = Standing::Blocked {
            since: Timestamp(5),
        };
        assert_eq!(
            decide(&p, &limits(), eur(1), Timestamp(6)),
            Ok(Decision::Refuse(Refusal::Blocked))
        );
        // A blocked customer is retried W after the failure.
        assert_eq!(
            window_due_at(&p, &limits()),
            Some(Timestamp(5 + limits().window_ms()))
        );
        p.standing = Standing::Settling { batch: BatchId(3) };
        assert_eq!(
            decide(&p, &limits(), eur(1), Timestamp(6)),
            Ok(Decision::Refuse(Refusal::SettlementInFlight))
        );
        assert_eq!(window_due_at(&p, &limits()), None);
        // Macro payments are not the aggregator's business even then.
        assert_eq!(
            decide(&p, &limits(), eur(5_000), Timestamp(6)),
            Ok(Decision::Macro)
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        let p = Pending::empty(EUR);
        assert_eq!(
            decide(&p, &limits(), eur(0), Timestamp(0)),
            Err(PolicyError::NotPositive)
        );
        assert!(matches!(
            decide(&p, &limits(), Amount::new(5, Currency::USD), Timestamp(0)),
            Err(PolicyError::Money(MoneyError::CurrencyMismatch { .. }))
        ));
        assert_eq!(
            MicroLimits::new(eur(1), eur(0), 1),
            Err(PolicyError::InvalidLimits)
        );
        assert_eq!(
            MicroLimits::new(eur(1), eur(1), 0),
            Err(PolicyError::InvalidLimits)
        );
        // The largest micropayment is bounded far below overflow, so the
        // lifetime sums of the micropayment books fit i64.
        assert!(MicroLimits::new(eur(MICRO_AMOUNT_MINOR_MAX), eur(100_000), 1).is_ok());
        assert_eq!(
            MicroLimits::new(eur(MICRO_AMOUNT_MINOR_MAX + 1), eur(100_001), 1),
            Err(PolicyError::InvalidLimits)
        );
        let near_max = pending(i64::MAX - 1, 1, 0);
        let huge = MicroLimits::new(eur(1_000), eur(i64::MAX), 1 << 40).unwrap();
        assert!(matches!(
            decide(&near_max, &huge, eur(5), Timestamp(0)),
            Err(PolicyError::Money(MoneyError::Overflow))
        ));
    }
}
