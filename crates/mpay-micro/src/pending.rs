//! The pending structure in memory: every customer's open micropayments and
//! their sum in O(1), a time-ordered index for the window sweep, and the
//! settlement batches in flight. The durable twin is [`crate::store`];
//! [`crate::store::MicroStore::load`] rebuilds this from the database.
//!
//! Per customer: a [`Pending`] (running sum, count, oldest time, standing)
//! beside a `Vec` of its open items (cleared, not freed, at settlement, so a
//! steady customer allocates nothing). The window index is a `BTreeSet` of
//! (due time, customer), touched only when a customer's first item arrives
//! or its batch ends, not on every add.

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use mpay_identity::{PartyId, Timestamp};
use mpay_money::{Amount, Currency, MoneyError};

use crate::policy::{
    self, BatchId, Decision, MicroLimits, Pending, PolicyError, Refusal, Standing,
};

/// A customer, as the CPP knows it.
pub type CustomerId = PartyId;

/// One open micropayment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    /// The CPP's number for the payment.
    pub payment: u64,
    /// Its amount.
    pub amount: Amount,
    /// When it arrived.
    pub at: Timestamp,
}

/// One settlement transfer: the whole pending total of one customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    /// Its id: the idempotency key of the bank transfer.
    pub id: BatchId,
    /// Whose pending total.
    pub customer: CustomerId,
    /// The amount of the transfer.
    pub total: Amount,
    /// How many micropayments it covers.
    pub count: u64,
    /// The micropayment that reached θ, if one did (absent for a window
    /// sweep or a retry). It is rejected if the transfer fails.
    pub trigger: Option<Item>,
}

/// What [`Aggregator::add`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    /// Above the micro limit: not aggregated.
    Macro,
    /// Deferred: DT confirmation; `total` is the new pending total.
    Deferred {
        /// The pending total after this payment.
        total: Amount,
    },
    /// The CPP must now transfer `batch.total` (idempotency key `batch.id`)
    /// and report [`Aggregator::settled`] or [`Aggregator::failed`].
    SettleNeeded(Batch),
    /// Refused; nothing changed.
    Refused(Refusal),
}

/// What [`Aggregator::take_back`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// It was open and is now out of the pending total, which is now
    /// `total`.
    Removed {
        /// The customer's pending total after the removal.
        total: Amount,
    },
    /// It is part of the settlement batch in flight: ask again once the
    /// batch has ended.
    InFlight(BatchId),
    /// It is not open: collected by a settled batch, taken back before, or
    /// the trigger of a failed transfer (the caller's records tell which).
    NotOpen,
}

/// Errors of the pending structure. All are the CPP's own (a wrong batch id
/// or a corrupt restore), except what [`PolicyError`] says of a payment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AggregatorError {
    /// The rule refused the input.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// No batch with this id is in flight.
    #[error("no settlement batch {0} in flight")]
    UnknownBatch(BatchId),
    /// The currency is not the aggregator's.
    #[error("currency {got} is not the aggregator's {expected}")]
    Currency {
        /// The aggregator's.
        expected: Currency,
        /// What came.
        got: Currency,
    },
    /// Restored state does not add up.
    #[error("inconsistent pending state for {customer}: {reason}")]
    Inconsistent {
        /// Whose.
        customer: CustomerId,
        /// What is wrong.
        reason: &'static str,
    },
}

impl From<MoneyError> for AggregatorError {
    fn from(e: MoneyError) -> Self {
        AggregatorError::Policy(PolicyError::Money(e))
    }
}

#[derive(Debug)]
struct Record {
    pending: Pending,
    items: Vec<Item>,
    /// The due time under which it sits in the window index, if any.
    due: Option<Timestamp>,
}

/// A small multiplicative hasher for 16-byte customer ids (ids are random or
/// sequential numbers, not chosen by an adversary who could aim collisions
/// at one bucket: the CPP assigns them).
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // A multiply only carries bits upwards; the hash table indexes by
        // the low bits, so fold the high half down (SplitMix64's finaliser).
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0.rotate_left(5) ^ n as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type IdMap<V> = HashMap<CustomerId, V, BuildHasherDefault<IdHasher>>;

/// The in-memory pending structure of one CPP (module docs).
#[derive(Debug)]
pub struct Aggregator {
    currency: Currency,
    customers: IdMap<Record>,
    window_index: BTreeSet<(Timestamp, CustomerId)>,
    in_flight: HashMap<BatchId, Batch>,
    next_batch: u64,
    /// Sum of DT-confirmed micropayments not yet settled, minor units.
    exposure_minor: i64,
}

impl Aggregator {
    /// An empty structure for one currency; batch ids start after `last_batch`.
    pub fn new(currency: Currency, last_batch: u64) -> Aggregator {
        Aggregator {
            currency,
            customers: IdMap::default(),
            window_index: BTreeSet::new(),
            in_flight: HashMap::new(),
            next_batch: last_batch,
            exposure_minor: 0,
        }
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// One micropayment (or macro payment) of `customer`, judged by `limits`.
    pub fn add(
        &mut self,
        customer: CustomerId,
        payment: u64,
        amount: Amount,
        limits: &MicroLimits,
        now: Timestamp,
    ) -> Result<AddOutcome, AggregatorError> {
        self.check_currency(amount.currency())?;
        self.check_currency(limits.currency())?;
        let currency = self.currency;
        let record = self.customers.entry(customer).or_insert_with(|| Record {
            pending: Pending::empty(currency),
            items: Vec::new(),
            due: None,
        });
        let decision = policy::decide(&record.pending, limits, amount, now)?;
        let item = Item {
            payment,
            amount,
            at: now,
        };
        match decision {
            Decision::Macro => Ok(AddOutcome::Macro),
            Decision::Refuse(refusal) => Ok(AddOutcome::Refused(refusal)),
            Decision::Defer { total } => {
                record.pending.total = total;
                record.pending.count += 1;
                record.items.push(item);
                if record.pending.oldest.is_none() {
                    record.pending.oldest = Some(now);
                }
                self.exposure_minor = self
                    .exposure_minor
                    .checked_add(amount.minor_units())
                    .ok_or(MoneyError::Overflow)?;
                if record.due.is_none() {
                    let due = policy::window_due_at(&record.pending, limits);
                    record.due = due;
                    if let Some(due) = due {
                        self.window_index.insert((due, customer));
                    }
                }
                Ok(AddOutcome::Deferred { total })
            }
            Decision::Settle { total } => {
                record.pending.total = total;
                record.pending.count += 1;
                record.items.push(item);
                if record.pending.oldest.is_none() {
                    record.pending.oldest = Some(now);
                }
                self.next_batch += 1;
                let batch = Batch {
                    id: BatchId(self.next_batch),
                    customer,
                    total,
                    count: record.pending.count,
                    trigger: Some(item),
                };
                record.pending.standing = Standing::Settling { batch: batch.id };
                if let Some(due) = record.due.take() {
                    self.window_index.remove(&(due, customer));
                }
                self.in_flight.insert(batch.id, batch);
                Ok(AddOutcome::SettleNeeded(batch))
            }
        }
    }

    /// Customers whose pending total the window sweep must settle at `now`,
    /// oldest first, at most `max`.
    pub fn due_for_window(&self, now: Timestamp, max: usize) -> Vec<CustomerId> {
        self.window_index
            .range(..=(now, PartyId([0xff; 16])))
            .take(max)
            .map(|&(_, customer)| customer)
            .collect()
    }

    /// Starts a settlement of `customer`'s whole pending total without a
    /// new payment (window sweep, or a retry of a blocked customer).
    /// `None` if nothing is pending or a batch is in flight already.
    pub fn start_settlement(&mut self, customer: CustomerId) -> Option<Batch> {
        let record = self.customers.get_mut(&customer)?;
        if record.pending.count == 0 || matches!(record.pending.standing, Standing::Settling { .. })
        {
            return None;
        }
        self.next_batch += 1;
        let batch = Batch {
            id: BatchId(self.next_batch),
            customer,
            total: record.pending.total,
            count: record.pending.count,
            trigger: None,
        };
        record.pending.standing = Standing::Settling { batch: batch.id };
        if let Some(due) = record.due.take() {
            self.window_index.remove(&(due, customer));
        }
        self.in_flight.insert(batch.id, batch);
        Some(batch)
    }

    /// The bank transfer of `batch` succeeded: its micropayments are paid,
    /// the customer's pending total is reset (and any block lifted).
    pub fn settled(&mut self, batch: BatchId) -> Result<Batch, AggregatorError> {
        let done = self
            .in_flight
            .remove(&batch)
            .ok_or(AggregatorError::UnknownBatch(batch))?;
        let record = self
            .customers
            .get_mut(&done.customer)
            .ok_or(AggregatorError::UnknownBatch(batch))?;
        assert_eq!(
            record.pending.total, done.total,
            "a batch covers the whole pending total"
        );
        let deferred = done
            .total
            .minor_units()
            .checked_sub(done.trigger.map_or(0, |t| t.amount.minor_units()))
            .ok_or(MoneyError::Overflow)?;
        self.exposure_minor -= deferred;
        record.items.clear();
        let failed_transfers = record.pending.failed_transfers;
        record.pending = Pending {
            failed_transfers,
            ..Pending::empty(self.currency)
        };
        Ok(done)
    }

    /// The bank transfer of `batch` failed: its trigger (if any) is
    /// rejected, the DT-confirmed micropayments stay pending and the
    /// customer is blocked (unless nothing is left pending); the sweep
    /// retries W after `now`.
    pub fn failed(
        &mut self,
        batch: BatchId,
        limits: &MicroLimits,
        now: Timestamp,
    ) -> Result<Batch, AggregatorError> {
        let done = self
            .in_flight
            .remove(&batch)
            .ok_or(AggregatorError::UnknownBatch(batch))?;
        let record = self
            .customers
            .get_mut(&done.customer)
            .ok_or(AggregatorError::UnknownBatch(batch))?;
        if let Some(trigger) = done.trigger {
            let last = record.items.pop();
            assert_eq!(last, Some(trigger), "the trigger is the newest item");
            record.pending.total = record.pending.total.checked_sub(trigger.amount)?;
            record.pending.count -= 1;
        }
        record.pending.failed_transfers += 1;
        if record.pending.count == 0 {
            record.pending.oldest = None;
            record.pending.standing = Standing::Open;
        } else {
            record.pending.standing = Standing::Blocked { since: now };
            let due = policy::window_due_at(&record.pending, limits);
            record.due = due;
            if let Some(due) = due {
                self.window_index.insert((due, done.customer));
            }
        }
        Ok(done)
    }

    /// Takes micropayment `payment` of `customer` back out of the pending
    /// total after the merchant rejected it or it expired undecided: the
    /// in-memory twin of [`crate::store::take_back`]. A customer left with
    /// nothing pending is open again, as there. This structure keeps no
    /// history: for a payment that is not open, [`Taken::NotOpen`] leaves
    /// it to the caller's records whether a settled batch collected it (pay
    /// it back) or it left before (nothing to do).
    pub fn take_back(
        &mut self,
        customer: &CustomerId,
        payment: u64,
        limits: &MicroLimits,
    ) -> Result<Taken, AggregatorError> {
        let Some(record) = self.customers.get_mut(customer) else {
            return Ok(Taken::NotOpen);
        };
        let Some(at) = record.items.iter().position(|i| i.payment == payment) else {
            return Ok(Taken::NotOpen);
        };
        if let Standing::Settling { batch } = record.pending.standing {
            return Ok(Taken::InFlight(batch));
        }
        let item = record.items.remove(at);
        record.pending.total = record.pending.total.checked_sub(item.amount)?;
        record.pending.count -= 1;
        self.exposure_minor -= item.amount.minor_units();
        if let Some(due) = record.due.take() {
            self.window_index.remove(&(due, *customer));
        }
        record.pending.oldest = record.items.first().map(|i| i.at);
        if record.pending.count == 0 {
            // Nothing owed: a blocked customer is open again.
            record.pending.standing = Standing::Open;
        } else {
            record.due = policy::window_due_at(&record.pending, limits);
            if let Some(due) = record.due {
                self.window_index.insert((due, *customer));
            }
        }
        Ok(Taken::Removed {
            total: record.pending.total,
        })
    }

    /// A customer's pending state, if the CPP has seen it.
    pub fn pending(&self, customer: &CustomerId) -> Option<&Pending> {
        self.customers.get(customer).map(|r| &r.pending)
    }

    /// A customer's open micropayments, oldest first.
    pub fn open_items(&self, customer: &CustomerId) -> &[Item] {
        self.customers.get(customer).map_or(&[], |r| &r.items)
    }

    /// Batches in flight.
    pub fn in_flight(&self) -> impl Iterator<Item = &Batch> {
        self.in_flight.values()
    }

    /// The CPP's exposure: DT-confirmed micropayments not yet settled.
    pub fn exposure(&self) -> Amount {
        Amount::new(self.exposure_minor, self.currency)
    }

    /// Number of customers known.
    pub fn customers(&self) -> usize {
        self.customers.len()
    }

    /// Sum of all pending totals (exposure plus triggers in flight).
    pub fn pending_sum(&self) -> Result<Amount, MoneyError> {
        let mut sum = Amount::zero(self.currency);
        for record in self.customers.values() {
            sum = sum.checked_add(record.pending.total)?;
        }
        Ok(sum)
    }

    /// Checks every invariant by walking everything (O(customers + items)):
    /// each total is the sum of its items, counts match, exposure is the sum
    /// of DT-confirmed items, in-flight batches match their customers, the
    /// window index holds exactly the customers that wait.
    pub fn check(&self) -> Result<(), AggregatorError> {
        let mut exposure: i64 = 0;
        let mut indexed = 0usize;
        for (customer, record) in &self.customers {
            let bad = |reason| AggregatorError::Inconsistent {
                customer: *customer,
                reason,
            };
            let sum = Amount::checked_sum(self.currency, record.items.iter().map(|i| &i.amount))?;
            if sum != record.pending.total {
                return Err(bad("total is not the sum of the open items"));
            }
            if record.items.len() as u64 != record.pending.count {
                return Err(bad("count is not the number of open items"));
            }
            if record.pending.oldest != record.items.first().map(|i| i.at) {
                return Err(bad("oldest is not the first item's time"));
            }
            let mut dt = sum.minor_units();
            if let Standing::Settling { batch } = record.pending.standing {
                let Some(in_flight) = self.in_flight.get(&batch) else {
                    return Err(bad("settling without a batch in flight"));
                };
                if in_flight.total != sum || in_flight.customer != *customer {
                    return Err(bad("batch does not cover the pending total"));
                }
                dt -= in_flight.trigger.map_or(0, |t| t.amount.minor_units());
            }
            exposure = exposure.checked_add(dt).ok_or(MoneyError::Overflow)?;
            if let Some(due) = record.due {
                indexed += 1;
                if !self.window_index.contains(&(due, *customer)) {
                    return Err(bad("waiting but not in the window index"));
                }
            }
        }
        if exposure != self.exposure_minor {
            return Err(AggregatorError::Inconsistent {
                customer: PartyId::default(),
                reason: "exposure is not the sum of deferred items",
            });
        }
        if indexed != self.window_index.len() {
            return Err(AggregatorError::Inconsistent {
                customer: PartyId::default(),
                reason: "window index holds customers that do not wait",
            });
        }
        Ok(())
    }

    /// Puts back one customer's state read from the database. `in_flight`:
    /// its batch, when it is settling.
    pub(crate) fn restore(
        &mut self,
        customer: CustomerId,
        pending: Pending,
        items: Vec<Item>,
        in_flight: Option<Batch>,
        due: Option<Timestamp>,
    ) -> Result<(), AggregatorError> {
        self.check_currency(pending.total.currency())?;
        let mut dt = pending.total.minor_units();
        if let Some(batch) = in_flight {
            dt -= batch.trigger.map_or(0, |t| t.amount.minor_units());
            self.next_batch = self.next_batch.max(batch.id.0);
            self.in_flight.insert(batch.id, batch);
        }
        if let Some(due) = due {
            self.window_index.insert((due, customer));
        }
        self.exposure_minor = self
            .exposure_minor
            .checked_add(dt)
            .ok_or(MoneyError::Overflow)?;
        self.customers.insert(
            customer,
            Record {
                pending,
                items,
                due,
            },
        );
        Ok(())
    }

    /// Moves the batch counter forward (after a restore).
    pub(crate) fn set_last_batch(&mut self, last: u64) {
        self.next_batch = self.next_batch.max(last);
    }

    fn check_currency(&self, got: Currency) -> Result<(), AggregatorError> {
        if got == self.currency {
            Ok(())
        } else {
            Err(AggregatorError::Currency {
                expected: self.currency,
                got,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EUR: Currency = Currency::EUR;
    const W: u64 = 3_600_000;

    fn eur(minor: i64) -> Amount {
        Amount::new(minor, EUR)
    }
    fn limits() -> MicroLimits {
        MicroLimits::new(eur(500), eur(1_000), W).unwrap()
    }
    fn c(n: u64) -> CustomerId {
        PartyId::from_u64(n)
    }

    #[test]
    fn defers_then_settles_the_whole_total_at_theta() {
        let mut agg = Aggregator::new(EUR, 0);
        for i in 0..9 {
            let out = agg
                .add(c(1), i, eur(100), &limits(), Timestamp(i * 10))
                .unwrap();
            assert_eq!(
                out,
                AddOutcome::Deferred {
                    total: eur(100 * (i as i64 + 1))
                }
            );
        }
        assert_eq!(agg.exposure(), eur(900));
        assert_eq!(agg.open_items(&c(1)).len(), 9);
        let AddOutcome::SettleNeeded(batch) = agg
            .add(c(1), 9, eur(100), &limits(), Timestamp(95))
            .unwrap()
        else {
            panic!("θ reached")
        };
        assert_eq!((batch.total, batch.count), (eur(1_000), 10));
        // While in flight: the customer waits, exposure still counts the nine.
        assert_eq!(
            agg.add(c(1), 10, eur(1), &limits(), Timestamp(96)).unwrap(),
            AddOutcome::Refused(Refusal::SettlementInFlight)
        );
        assert_eq!(agg.exposure(), eur(900));
        agg.check().unwrap();
        agg.settled(batch.id).unwrap();
        assert_eq!(agg.exposure(), eur(0));
        assert_eq!(agg.pending(&c(1)).unwrap().total, eur(0));
        assert!(agg.open_items(&c(1)).is_empty());
        agg.check().unwrap();
        assert_eq!(
            agg.settled(batch.id),
            Err(AggregatorError::UnknownBatch(batch.id))
        );
    }

    #[test]
    fn a_failed_transfer_rejects_the_trigger_and_blocks_until_settled() {
        let mut agg = Aggregator::new(EUR, 0);
        agg.add(c(1), 1, eur(400), &limits(), Timestamp(0)).unwrap();
        agg.add(c(1), 2, eur(400), &limits(), Timestamp(1)).unwrap();
        let AddOutcome::SettleNeeded(batch) =
            agg.add(c(1), 3, eur(300), &limits(), Timestamp(2)).unwrap()
        else {
            panic!("θ reached")
        };
        agg.failed(batch.id, &limits(), Timestamp(3)).unwrap();
        let p = *agg.pending(&c(1)).unwrap();
        assert_eq!((p.total, p.count, p.failed_transfers), (eur(800), 2, 1));
        assert_eq!(
            p.standing,
            Standing::Blocked {
                since: Timestamp(3)
            }
        );
        assert_eq!(agg.exposure(), eur(800));
        assert_eq!(
            agg.add(c(1), 4, eur(1), &limits(), Timestamp(4)).unwrap(),
            AddOutcome::Refused(Refusal::Blocked)
        );
        agg.check().unwrap();
        // The sweep retries W after the failure, not before.
        assert!(agg.due_for_window(Timestamp(3 + W - 1), 10).is_empty());
        assert_eq!(agg.due_for_window(Timestamp(3 + W), 10), vec![c(1)]);
        let retry = agg.start_settlement(c(1)).unwrap();
        assert_eq!((retry.total, retry.trigger), (eur(800), None));
        agg.settled(retry.id).unwrap();
        assert_eq!(agg.exposure(), eur(0));
        assert_eq!(
            agg.add(c(1), 5, eur(1), &limits(), Timestamp(5 + W))
                .unwrap(),
            AddOutcome::Deferred { total: eur(1) }
        );
        assert_eq!(agg.pending(&c(1)).unwrap().failed_transfers, 1);
        agg.check().unwrap();
    }

    #[test]
    fn a_failed_lone_trigger_leaves_the_customer_open() {
        let mut agg = Aggregator::new(EUR, 0);
        let big = MicroLimits::new(eur(500), eur(200), W).unwrap();
        let AddOutcome::SettleNeeded(batch) =
            agg.add(c(7), 1, eur(300), &big, Timestamp(0)).unwrap()
        else {
            panic!("one payment above θ settles at once")
        };
        agg.failed(batch.id, &big, Timestamp(1)).unwrap();
        let p = agg.pending(&c(7)).unwrap();
        assert_eq!((p.count, p.standing), (0, Standing::Open));
        assert!(agg.due_for_window(Timestamp(u64::MAX), 10).is_empty());
        agg.check().unwrap();
    }

    #[test]
    fn the_window_sweep_finds_waiting_customers_oldest_first() {
        let mut agg = Aggregator::new(EUR, 0);
        agg.add(c(2), 1, eur(5), &limits(), Timestamp(100)).unwrap();
        agg.add(c(1), 2, eur(5), &limits(), Timestamp(200)).unwrap();
        agg.add(c(2), 3, eur(5), &limits(), Timestamp(300)).unwrap();
        assert_eq!(agg.due_for_window(Timestamp(99 + W), 10), vec![]);
        assert_eq!(agg.due_for_window(Timestamp(100 + W), 10), vec![c(2)]);
        assert_eq!(agg.due_for_window(Timestamp(200 + W), 10), vec![c(2), c(1)]);
        assert_eq!(agg.due_for_window(Timestamp(200 + W), 1), vec![c(2)]);
        let b = agg.start_settlement(c(2)).unwrap();
        assert_eq!(b.total, eur(10));
        assert_eq!(agg.start_settlement(c(2)), None);
        assert_eq!(agg.due_for_window(Timestamp(200 + W), 10), vec![c(1)]);
        agg.check().unwrap();
        agg.settled(b.id).unwrap();
        agg.check().unwrap();
    }

    #[test]
    fn a_rejected_micropayment_leaves_the_pending_total_once() {
        let mut agg = Aggregator::new(EUR, 0);
        agg.add(c(1), 1, eur(100), &limits(), Timestamp(10))
            .unwrap();
        agg.add(c(1), 2, eur(200), &limits(), Timestamp(20))
            .unwrap();
        assert_eq!(
            agg.take_back(&c(1), 1, &limits()).unwrap(),
            Taken::Removed { total: eur(200) }
        );
        // The oldest item is now the second: the window runs from it.
        assert_eq!(agg.pending(&c(1)).unwrap().oldest, Some(Timestamp(20)));
        assert!(agg.due_for_window(Timestamp(10 + W), 10).is_empty());
        assert_eq!(agg.due_for_window(Timestamp(20 + W), 10), vec![c(1)]);
        assert_eq!(agg.exposure(), eur(200));
        agg.check().unwrap();
        // A repeat, an unknown payment, an unknown customer: nothing moves.
        assert_eq!(agg.take_back(&c(1), 1, &limits()).unwrap(), Taken::NotOpen);
        assert_eq!(agg.take_back(&c(1), 9, &limits()).unwrap(), Taken::NotOpen);
        assert_eq!(agg.take_back(&c(5), 1, &limits()).unwrap(), Taken::NotOpen);
        assert_eq!(
            agg.take_back(&c(1), 2, &limits()).unwrap(),
            Taken::Removed { total: eur(0) }
        );
        assert!(agg.due_for_window(Timestamp(u64::MAX), 10).is_empty());
        assert_eq!(agg.exposure(), eur(0));
        agg.check().unwrap();
    }

    /// Customer 1: payments 1 and 2 deferred (400 each), payment 3 (300)
    /// reaching θ; its batch in flight.
    fn two_deferred_then_theta() -> (Aggregator, Batch) {
        let mut agg = Aggregator::new(EUR, 0);
        agg.add(c(1), 1, eur(400), &limits(), Timestamp(0)).unwrap();
        agg.add(c(1), 2, eur(400), &limits(), Timestamp(0)).unwrap();
        let AddOutcome::SettleNeeded(batch) =
            agg.add(c(1), 3, eur(300), &limits(), Timestamp(1)).unwrap()
        else {
            panic!("θ reached")
        };
        (agg, batch)
    }

    #[test]
    fn a_micropayment_in_a_batch_in_flight_waits_and_a_collected_one_is_not_open() {
        let (mut agg, batch) = two_deferred_then_theta();
        assert_eq!(
            agg.take_back(&c(1), 1, &limits()).unwrap(),
            Taken::InFlight(batch.id)
        );
        agg.check().unwrap();
        agg.settled(batch.id).unwrap();
        assert_eq!(agg.take_back(&c(1), 1, &limits()).unwrap(), Taken::NotOpen);
        agg.check().unwrap();
    }

    #[test]
    fn taking_back_a_blocked_customers_last_debt_opens_it() {
        let (mut agg, batch) = two_deferred_then_theta();
        agg.failed(batch.id, &limits(), Timestamp(2)).unwrap();
        assert!(matches!(
            agg.pending(&c(1)).unwrap().standing,
            Standing::Blocked { .. }
        ));
        assert_eq!(
            agg.take_back(&c(1), 1, &limits()).unwrap(),
            Taken::Removed { total: eur(400) }
        );
        assert!(matches!(
            agg.pending(&c(1)).unwrap().standing,
            Standing::Blocked { .. }
        ));
        agg.check().unwrap();
        assert_eq!(
            agg.take_back(&c(1), 2, &limits()).unwrap(),
            Taken::Removed { total: eur(0) }
        );
        assert_eq!(agg.pending(&c(1)).unwrap().standing, Standing::Open);
        assert!(agg.due_for_window(Timestamp(u64::MAX), 10).is_empty());
        agg.check().unwrap();
    }
}
