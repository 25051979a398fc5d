//! The pending structure on mpay-sql (SQLite and PostgreSQL): an
//! append-only log (`micro_log`) beside an index (`micro_customers`: total,
//! count, oldest time, state per customer), the open items
//! (`micro_items`) and the settlement batches (`micro_batches`).
//!
//! # How the CPP uses it
//!
//! 1. In the transaction that records its payment, the CPP calls [`add`]
//!    with that transaction: the micro entry commits or vanishes with the
//!    payment row. [`AddOutcome::Deferred`]: send the DT confirmation after
//!    the commit. [`AddOutcome::SettleNeeded`]: the batch is recorded as
//!    `started` in the same transaction, so once it commits the batch is
//!    durable before any money moves.
//! 2. After the commit, the CPP asks its bank for the transfer, with the
//!    batch id ([`BatchId`]'s `Display`) as the idempotency key.
//! 3. Then, in a new transaction, [`settled`] (T confirmation) or [`failed`]
//!    (the trigger is rejected, the customer blocked).
//! 4. After a crash, [`unfinished`] lists the batches started and not
//!    ended: the CPP repeats step 2 for each (the bank returns the stored
//!    result for a key it has seen) and then step 3. A crash anywhere thus
//!    neither loses a micropayment (it is in the log and the items from the
//!    commit of step 1) nor counts one twice (a batch ends once; the bank
//!    moves money once per key; a payment number enters the log once).
//! 5. A periodic sweep: [`due_for_window`] then [`start_settlement`] per
//!    customer (commit), then steps 2-3.
//! 6. A micropayment the merchant rejected (or that expired undecided):
//!    [`take_back`] removes it from the pending total (log kind `rejected`
//!    without a batch), or says it is in the batch in flight (ask again
//!    after it ends) or already collected (the CPP pays it back).
//!
//! [`load`] rebuilds the in-memory [`Aggregator`] from the tables;
//! [`check_log`] replays the log and checks the index against it.

use std::collections::BTreeMap;

use mpay_identity::{PartyId, Timestamp};
use mpay_money::{Amount, Currency, MoneyError};
use mpay_sql::sqlx::{self, Row, any::AnyRow};
use mpay_sql::{DbError, Migrations, Retryable, Tx, is_unique_violation};

use crate::pending::{AddOutcome, Aggregator, AggregatorError, Batch, CustomerId, Item};
use crate::policy::{self, BatchId, Decision, MicroLimits, Pending, Standing};

/// The tables (component `micro`), after `mpay_sql::MIGRATIONS`.
pub const MIGRATIONS: Migrations = Migrations::new(
    "micro",
    &[("0001_micro", include_str!("../migrations/0001_micro.sql"))],
);

/// Errors of the durable pending structure, and whose fault they are.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database (ours; may be retryable).
    #[error("database: {0}")]
    Db(#[from] DbError),
    /// The rule refused the payment or the CPP's input.
    #[error(transparent)]
    Aggregator(#[from] AggregatorError),
    /// This payment number was aggregated before (the caller's fault).
    #[error("payment {0} was already aggregated")]
    DuplicatePayment(u64),
    /// No such batch (the caller's fault).
    #[error("no settlement batch {0}")]
    UnknownBatch(BatchId),
    /// No micropayment of that number and customer was aggregated (the
    /// caller's fault).
    #[error("no micropayment {0} of this customer")]
    UnknownPayment(u64),
    /// The batch ended already the other way (the caller's fault: a
    /// transfer cannot both succeed and fail).
    #[error("settlement batch {batch} already ended as {state}")]
    BatchEnded {
        /// The batch.
        batch: BatchId,
        /// How it ended.
        state: String,
    },
    /// A stored row does not make sense (ours: corruption or a bug).
    #[error("stored micropayment state is inconsistent: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Db(e.into())
    }
}

impl From<MoneyError> for StoreError {
    fn from(e: MoneyError) -> Self {
        StoreError::Aggregator(e.into())
    }
}

impl Retryable for StoreError {
    fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Db(e) if e.is_retryable())
    }
}

impl StoreError {
    /// True if the caller asked for something wrong (not our failure).
    pub fn is_client_fault(&self) -> bool {
        matches!(
            self,
            StoreError::DuplicatePayment(_)
                | StoreError::UnknownBatch(_)
                | StoreError::UnknownPayment(_)
                | StoreError::BatchEnded { .. }
                | StoreError::Aggregator(AggregatorError::Policy(policy::PolicyError::NotPositive))
        )
    }
}

fn to_i64(n: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Corrupt(format!("{what} {n} does not fit a BIGINT")))
}

fn to_u64(n: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative {what} {n}")))
}

fn party(bytes: Vec<u8>) -> Result<PartyId, StoreError> {
    let id: [u8; 16] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("a customer id is not 16 bytes".into()))?;
    Ok(PartyId(id))
}

/// One customer's index row.
struct Row_ {
    pending: Pending,
    due: Option<Timestamp>,
}

fn ts(ms: Option<i64>, what: &str) -> Result<Option<Timestamp>, StoreError> {
    ms.map(|ms| to_u64(ms, what).map(Timestamp)).transpose()
}

fn index_row(row: &AnyRow, currency: Currency) -> Result<Row_, StoreError> {
    let stored_currency: String = row.try_get("currency")?;
    if stored_currency != currency.code() {
        return Err(StoreError::Aggregator(AggregatorError::Currency {
            expected: currency,
            got: stored_currency.parse().map_err(StoreError::from)?,
        }));
    }
    let state: String = row.try_get("state")?;
    let standing = match state.as_str() {
        "open" => Standing::Open,
        "settling" => Standing::Settling {
            batch: BatchId(to_u64(row.try_get("batch")?, "batch")?),
        },
        "blocked" => Standing::Blocked {
            since: Timestamp(to_u64(row.try_get("blocked_since")?, "blocked_since")?),
        },
        other => return Err(StoreError::Corrupt(format!("customer state {other:?}"))),
    };
    Ok(Row_ {
        pending: Pending {
            total: Amount::new(row.try_get("total")?, currency),
            count: to_u64(row.try_get("count")?, "count")?,
            oldest: ts(row.try_get("oldest_at")?, "oldest_at")?,
            standing,
            failed_transfers: to_u64(row.try_get("failed_transfers")?, "failed_transfers")?,
        },
        due: ts(row.try_get("due_at")?, "due_at")?,
    })
}

async fn read_customer(
    tx: &mut Tx<'_>,
    customer: &CustomerId,
    currency: Currency,
) -> Result<Option<Row_>, StoreError> {
    let row = sqlx::query("SELECT * FROM micro_customers WHERE customer = $1")
        .bind(&customer.0[..])
        .fetch_optional(&mut **tx)
        .await?;
    row.map(|row| index_row(&row, currency)).transpose()
}

async fn write_customer(
    tx: &mut Tx<'_>,
    customer: &CustomerId,
    row: &Row_,
) -> Result<(), StoreError> {
    let (state, batch, blocked_since) = match row.pending.standing {
        Standing::Open => ("open", None, None),
        Standing::Settling { batch } => ("settling", Some(to_i64(batch.0, "batch")?), None),
        Standing::Blocked { since } => ("blocked", None, Some(to_i64(since.0, "time")?)),
    };
    let oldest = row
        .pending
        .oldest
        .map(|t| to_i64(t.0, "time"))
        .transpose()?;
    let due = row.due.map(|t| to_i64(t.0, "time")).transpose()?;
    sqlx::query(
        "INSERT INTO micro_customers
           (customer, currency, total, count, oldest_at, due_at, state, batch, blocked_since, failed_transfers)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (customer) DO UPDATE SET
           total = excluded.total, count = excluded.count, oldest_at = excluded.oldest_at,
           due_at = excluded.due_at, state = excluded.state, batch = excluded.batch,
           blocked_since = excluded.blocked_since, failed_transfers = excluded.failed_transfers",
    )
    .bind(&customer.0[..])
    .bind(row.pending.total.currency().code())
    .bind(row.pending.total.minor_units())
    .bind(to_i64(row.pending.count, "count")?)
    .bind(oldest)
    .bind(due)
    .bind(state)
    .bind(batch)
    .bind(blocked_since)
    .bind(to_i64(row.pending.failed_transfers, "failed_transfers")?)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn log(
    tx: &mut Tx<'_>,
    customer: &CustomerId,
    kind: &str,
    payment: Option<u64>,
    amount: Amount,
    batch: Option<BatchId>,
    now: Timestamp,
) -> Result<i64, StoreError> {
    let payment_i64 = payment.map(|p| to_i64(p, "payment")).transpose()?;
    let batch = batch.map(|b| to_i64(b.0, "batch")).transpose()?;
    let row = sqlx::query(
        "INSERT INTO micro_log (customer, kind, payment, amount, batch, at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
    )
    .bind(&customer.0[..])
    .bind(kind)
    .bind(payment_i64)
    .bind(amount.minor_units())
    .bind(batch)
    .bind(to_i64(now.0, "time")?)
    .fetch_one(&mut **tx)
    .await
    .map_err(|e| match payment {
        Some(p) if is_unique_violation(&e) => StoreError::DuplicatePayment(p),
        _ => e.into(),
    })?;
    Ok(row.try_get("seq")?)
}

async fn insert_batch(
    tx: &mut Tx<'_>,
    customer: &CustomerId,
    pending: &Pending,
    trigger: Option<Item>,
    now: Timestamp,
) -> Result<Batch, StoreError> {
    let row = sqlx::query(
        "INSERT INTO micro_batches
           (customer, total, count, trigger_payment, trigger_amount, trigger_at, state, started_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'started', $7) RETURNING id",
    )
    .bind(&customer.0[..])
    .bind(pending.total.minor_units())
    .bind(to_i64(pending.count, "count")?)
    .bind(trigger.map(|t| to_i64(t.payment, "payment")).transpose()?)
    .bind(trigger.map(|t| t.amount.minor_units()))
    .bind(trigger.map(|t| to_i64(t.at.0, "time")).transpose()?)
    .bind(to_i64(now.0, "time")?)
    .fetch_one(&mut **tx)
    .await?;
    let batch = Batch {
        id: BatchId(to_u64(row.try_get("id")?, "batch")?),
        customer: *customer,
        total: pending.total,
        count: pending.count,
        trigger,
    };
    log(
        tx,
        customer,
        "started",
        None,
        batch.total,
        Some(batch.id),
        now,
    )
    .await?;
    Ok(batch)
}

/// One micropayment (or macro payment) of `customer`, number `payment`,
/// inside the caller's transaction (module docs, step 1).
pub async fn add(
    tx: &mut Tx<'_>,
    customer: &CustomerId,
    payment: u64,
    amount: Amount,
    limits: &MicroLimits,
    now: Timestamp,
) -> Result<AddOutcome, StoreError> {
    let currency = limits.currency();
    let mut row = read_customer(tx, customer, currency)
        .await?
        .unwrap_or(Row_ {
            pending: Pending::empty(currency),
            due: None,
        });
    let decision = policy::decide(&row.pending, limits, amount, now)
        .map_err(|e| StoreError::Aggregator(e.into()))?;
    let item = Item {
        payment,
        amount,
        at: now,
    };
    let (kind, total) = match decision {
        Decision::Macro => return Ok(AddOutcome::Macro),
        Decision::Refuse(refusal) => return Ok(AddOutcome::Refused(refusal)),
        Decision::Defer { total } => ("deferred", total),
        Decision::Settle { total } => ("trigger", total),
    };
    let seq = log(tx, customer, kind, Some(payment), amount, None, now).await?;
    row.pending.total = total;
    row.pending.count += 1;
    row.pending.oldest.get_or_insert(now);
    // The items table references the customer row: write it first.
    let outcome = if kind == "deferred" {
        if row.due.is_none() {
            row.due = policy::window_due_at(&row.pending, limits);
        }
        write_customer(tx, customer, &row).await?;
        AddOutcome::Deferred { total }
    } else {
        row.due = None;
        write_customer(tx, customer, &row).await?;
        let batch = insert_batch(tx, customer, &row.pending, Some(item), now).await?;
        row.pending.standing = Standing::Settling { batch: batch.id };
        write_customer(tx, customer, &row).await?;
        AddOutcome::SettleNeeded(batch)
    };
    sqlx::query(
        "INSERT INTO micro_items (payment, customer, amount, at, seq) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(to_i64(payment, "payment")?)
    .bind(&customer.0[..])
    .bind(amount.minor_units())
    .bind(to_i64(now.0, "time")?)
    .bind(seq)
    .execute(&mut **tx)
    .await?;
    Ok(outcome)
}

/// Customers the window sweep must settle at `now`, oldest due first, at
/// most `max`.
pub async fn due_for_window(
    tx: &mut Tx<'_>,
    now: Timestamp,
    max: u32,
) -> Result<Vec<CustomerId>, StoreError> {
    let rows = sqlx::query(
        "SELECT customer FROM micro_customers WHERE due_at IS NOT NULL AND due_at <= $1
         ORDER BY due_at, customer LIMIT $2",
    )
    .bind(to_i64(now.0, "time")?)
    .bind(i64::from(max))
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter()
        .map(|row| party(row.try_get("customer")?))
        .collect()
}

/// Starts a settlement batch of `customer`'s whole pending total (window
/// sweep or retry of a blocked customer). `None`: nothing pending, or a
/// batch already in flight.
pub async fn start_settlement(
    tx: &mut Tx<'_>,
    customer: &CustomerId,
    currency: Currency,
    now: Timestamp,
) -> Result<Option<Batch>, StoreError> {
    let Some(mut row) = read_customer(tx, customer, currency).await? else {
        return Ok(None);
    };
    if row.pending.count == 0 || matches!(row.pending.standing, Standing::Settling { .. }) {
        return Ok(None);
    }
    let batch = insert_batch(tx, customer, &row.pending, None, now).await?;
    row.pending.standing = Standing::Settling { batch: batch.id };
    row.due = None;
    write_customer(tx, customer, &row).await?;
    Ok(Some(batch))
}

fn batch_row(row: &AnyRow, currency: Currency) -> Result<(Batch, String), StoreError> {
    let trigger_payment: Option<i64> = row.try_get("trigger_payment")?;
    let trigger = match trigger_payment {
        None => None,
        Some(payment) => {
            let amount: Option<i64> = row.try_get("trigger_amount")?;
            let at: Option<i64> = row.try_get("trigger_at")?;
            let (Some(amount), Some(at)) = (amount, at) else {
                return Err(StoreError::Corrupt(
                    "a trigger without amount or time".into(),
                ));
            };
            Some(Item {
                payment: to_u64(payment, "payment")?,
                amount: Amount::new(amount, currency),
                at: Timestamp(to_u64(at, "time")?),
            })
        }
    };
    Ok((
        Batch {
            id: BatchId(to_u64(row.try_get("id")?, "batch")?),
            customer: party(row.try_get("customer")?)?,
            total: Amount::new(row.try_get("total")?, currency),
            count: to_u64(row.try_get("count")?, "count")?,
            trigger,
        },
        row.try_get("state")?,
    ))
}

async fn read_batch(
    tx: &mut Tx<'_>,
    batch: BatchId,
    currency: Currency,
) -> Result<(Batch, String), StoreError> {
    let row = sqlx::query("SELECT * FROM micro_batches WHERE id = $1")
        .bind(to_i64(batch.0, "batch")?)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::UnknownBatch(batch))?;
    batch_row(&row, currency)
}

/// One batch and its state (`started`, `settled`, `failed`).
pub async fn batch(
    tx: &mut Tx<'_>,
    batch: BatchId,
    currency: Currency,
) -> Result<(Batch, String), StoreError> {
    read_batch(tx, batch, currency).await
}

/// How [`settled`] / [`failed`] found the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It ended now.
    Now(Batch),
    /// It had ended this way before (a repeat after a crash): nothing changed.
    Before(Batch),
}

async fn end_batch(
    tx: &mut Tx<'_>,
    batch: BatchId,
    currency: Currency,
    state: &str,
    now: Timestamp,
) -> Result<Result<(Batch, Row_), Ended>, StoreError> {
    let (found, stored_state) = read_batch(tx, batch, currency).await?;
    if stored_state == state {
        return Ok(Err(Ended::Before(found)));
    }
    if stored_state != "started" {
        return Err(StoreError::BatchEnded {
            batch,
            state: stored_state,
        });
    }
    let row = read_customer(tx, &found.customer, currency)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("batch {batch} without its customer")))?;
    if row.pending.standing != (Standing::Settling { batch }) || row.pending.total != found.total {
        return Err(StoreError::Corrupt(format!(
            "batch {batch} does not match its customer's pending total"
        )));
    }
    sqlx::query("UPDATE micro_batches SET state = $2, finished_at = $3 WHERE id = $1")
        .bind(to_i64(batch.0, "batch")?)
        .bind(state)
        .bind(to_i64(now.0, "time")?)
        .execute(&mut **tx)
        .await?;
    log(
        tx,
        &found.customer,
        state,
        None,
        found.total,
        Some(batch),
        now,
    )
    .await?;
    Ok(Ok((found, row)))
}

/// The bank transfer of `batch` succeeded (step 3). Repeating it is harmless.
pub async fn settled(
    tx: &mut Tx<'_>,
    batch: BatchId,
    currency: Currency,
    now: Timestamp,
) -> Result<Ended, StoreError> {
    let (found, mut row) = match end_batch(tx, batch, currency, "settled", now).await? {
        Ok(pair) => pair,
        Err(before) => return Ok(before),
    };
    sqlx::query("DELETE FROM micro_items WHERE customer = $1")
        .bind(&found.customer.0[..])
        .execute(&mut **tx)
        .await?;
    row.pending = Pending {
        failed_transfers: row.pending.failed_transfers,
        ..Pending::empty(currency)
    };
    row.due = None;
    write_customer(tx, &found.customer, &row).await?;
    Ok(Ended::Now(found))
}

/// The bank transfer of `batch` failed (step 3): the trigger is rejected,
/// the rest stays pending, the customer is blocked and retried W after
/// `now`. Repeating it is harmless.
pub async fn failed(
    tx: &mut Tx<'_>,
    batch: BatchId,
    limits: &MicroLimits,
    now: Timestamp,
) -> Result<Ended, StoreError> {
    let currency = limits.currency();
    let (found, mut row) = match end_batch(tx, batch, currency, "failed", now).await? {
        Ok(pair) => pair,
        Err(before) => return Ok(before),
    };
    if let Some(trigger) = found.trigger {
        sqlx::query("DELETE FROM micro_items WHERE payment = $1")
            .bind(to_i64(trigger.payment, "payment")?)
            .execute(&mut **tx)
            .await?;
        log(
            tx,
            &found.customer,
            "rejected",
            Some(trigger.payment),
            trigger.amount,
            Some(batch),
            now,
        )
        .await?;
        row.pending.total = row.pending.total.checked_sub(trigger.amount)?;
        row.pending.count = row
            .pending
            .count
            .checked_sub(1)
            .ok_or_else(|| StoreError::Corrupt("a trigger without an item".into()))?;
    }
    row.pending.failed_transfers += 1;
    if row.pending.count == 0 {
        row.pending.oldest = None;
        row.pending.standing = Standing::Open;
        row.due = None;
    } else {
        if found.trigger.is_some() {
            // The oldest remaining item (the trigger was the newest).
            let oldest: Option<i64> =
                sqlx::query("SELECT MIN(at) AS oldest FROM micro_items WHERE customer = $1")
                    .bind(&found.customer.0[..])
                    .fetch_one(&mut **tx)
                    .await?
                    .try_get("oldest")?;
            row.pending.oldest = ts(oldest, "oldest_at")?;
        }
        row.pending.standing = Standing::Blocked { since: now };
        row.due = policy::window_due_at(&row.pending, limits);
    }
    write_customer(tx, &found.customer, &row).await?;
    Ok(Ended::Now(found))
}

/// What [`take_back`] found for a micropayment the merchant rejected (or
/// that expired undecided).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakeBack {
    /// It was open and is now out of the pending total (logged `rejected`
    /// without a batch), which is now `total`.
    Removed {
        /// The customer's pending total after the removal.
        total: Amount,
    },
    /// It is part of the settlement batch in flight: the transfer's amount
    /// is fixed at the bank, so ask again once the batch has ended.
    InFlight(BatchId),
    /// A settled batch collected it already: the customer paid it, so the
    /// CPP owes the customer its amount back (the caller's transfer).
    Collected,
    /// It left the pending total before (taken back earlier, or the trigger
    /// of a failed transfer): nothing to do.
    Gone,
}

/// Takes micropayment `payment` of `customer` back out of the pending total
/// after the merchant rejected it or it expired (module docs: the DT
/// confirmation is never sent for it). Idempotent: a repeat answers
/// [`TakeBack::Gone`] (or [`TakeBack::Collected`] again, which the caller
/// makes idempotent by its transfer's key). A blocked customer left with
/// nothing pending is open again; the window's due time follows the oldest
/// remaining item.
pub async fn take_back(
    tx: &mut Tx<'_>,
    customer: &CustomerId,
    payment: u64,
    limits: &MicroLimits,
    now: Timestamp,
) -> Result<TakeBack, StoreError> {
    let currency = limits.currency();
    let payment_i64 = to_i64(payment, "payment")?;
    let item = sqlx::query("SELECT customer, amount FROM micro_items WHERE payment = $1")
        .bind(payment_i64)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(item) = item else {
        let logged = sqlx::query(
            "SELECT kind FROM micro_log WHERE payment = $1 AND customer = $2 ORDER BY seq",
        )
        .bind(payment_i64)
        .bind(&customer.0[..])
        .fetch_all(&mut **tx)
        .await?;
        let kinds: Vec<String> = logged
            .iter()
            .map(|r| r.try_get("kind"))
            .collect::<Result<_, _>>()?;
        return if kinds.is_empty() {
            Err(StoreError::UnknownPayment(payment))
        } else if kinds.iter().any(|k| k == "rejected") {
            Ok(TakeBack::Gone)
        } else {
            Ok(TakeBack::Collected)
        };
    };
    if party(item.try_get("customer")?)? != *customer {
        return Err(StoreError::UnknownPayment(payment));
    }
    let amount = Amount::new(item.try_get("amount")?, currency);
    let mut row = read_customer(tx, customer, currency)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("an item of {customer} without its row")))?;
    if let Standing::Settling { batch } = row.pending.standing {
        return Ok(TakeBack::InFlight(batch));
    }
    sqlx::query("DELETE FROM micro_items WHERE payment = $1")
        .bind(payment_i64)
        .execute(&mut **tx)
        .await?;
    log(tx, customer, "rejected", Some(payment), amount, None, now).await?;
    row.pending.total = row.pending.total.checked_sub(amount)?;
    row.pending.count = row
        .pending
        .count
        .checked_sub(1)
        .ok_or_else(|| StoreError::Corrupt("an item beyond the count".into()))?;
    if row.pending.count == 0 {
        row.pending.oldest = None;
        // Nothing owed: a blocked customer is open again (policy docs).
        row.pending.standing = Standing::Open;
        row.due = None;
    } else {
        let oldest: Option<i64> =
            sqlx::query("SELECT MIN(at) AS oldest FROM micro_items WHERE customer = $1")
                .bind(&customer.0[..])
                .fetch_one(&mut **tx)
                .await?
                .try_get("oldest")?;
        row.pending.oldest = ts(oldest, "oldest_at")?;
        row.due = policy::window_due_at(&row.pending, limits);
    }
    write_customer(tx, customer, &row).await?;
    Ok(TakeBack::Removed {
        total: row.pending.total,
    })
}

/// Batches started and not ended: after a crash the CPP repeats their
/// (idempotent) bank transfers and ends them (step 4).
pub async fn unfinished(tx: &mut Tx<'_>, currency: Currency) -> Result<Vec<Batch>, StoreError> {
    let rows = sqlx::query("SELECT * FROM micro_batches WHERE state = 'started' ORDER BY id")
        .fetch_all(&mut **tx)
        .await?;
    rows.iter()
        .map(|row| batch_row(row, currency).map(|(batch, _)| batch))
        .collect()
}

/// One customer's stored state: the index row and its open items.
pub async fn customer(
    tx: &mut Tx<'_>,
    customer: &CustomerId,
    currency: Currency,
) -> Result<Option<(Pending, Vec<Item>)>, StoreError> {
    let Some(row) = read_customer(tx, customer, currency).await? else {
        return Ok(None);
    };
    let rows =
        sqlx::query("SELECT payment, amount, at FROM micro_items WHERE customer = $1 ORDER BY seq")
            .bind(&customer.0[..])
            .fetch_all(&mut **tx)
            .await?;
    let items = rows
        .iter()
        .map(|r| item_row(r, currency))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some((row.pending, items)))
}

fn item_row(row: &AnyRow, currency: Currency) -> Result<Item, StoreError> {
    Ok(Item {
        payment: to_u64(row.try_get("payment")?, "payment")?,
        amount: Amount::new(row.try_get("amount")?, currency),
        at: Timestamp(to_u64(row.try_get("at")?, "time")?),
    })
}

/// Rebuilds the in-memory [`Aggregator`] from the tables (after a restart)
/// and checks it.
pub async fn load(tx: &mut Tx<'_>, currency: Currency) -> Result<Aggregator, StoreError> {
    let mut items: BTreeMap<PartyId, Vec<Item>> = BTreeMap::new();
    for row in sqlx::query("SELECT customer, payment, amount, at FROM micro_items ORDER BY seq")
        .fetch_all(&mut **tx)
        .await?
    {
        items
            .entry(party(row.try_get("customer")?)?)
            .or_default()
            .push(item_row(&row, currency)?);
    }
    let mut in_flight: BTreeMap<BatchId, Batch> = unfinished(tx, currency)
        .await?
        .into_iter()
        .map(|b| (b.id, b))
        .collect();
    let last: Option<i64> = sqlx::query("SELECT MAX(id) AS last FROM micro_batches")
        .fetch_one(&mut **tx)
        .await?
        .try_get("last")?;
    let mut aggregator = Aggregator::new(currency, 0);
    aggregator.set_last_batch(last.map_or(Ok(0), |l| to_u64(l, "batch"))?);
    for row in sqlx::query("SELECT * FROM micro_customers")
        .fetch_all(&mut **tx)
        .await?
    {
        let customer = party(row.try_get("customer")?)?;
        let index = index_row(&row, currency)?;
        let batch = match index.pending.standing {
            Standing::Settling { batch } => Some(in_flight.remove(&batch).ok_or_else(|| {
                StoreError::Corrupt(format!("customer settling without batch {batch} started"))
            })?),
            _ => None,
        };
        aggregator.restore(
            customer,
            index.pending,
            items.remove(&customer).unwrap_or_default(),
            batch,
            index.due,
        )?;
    }
    if !items.is_empty() || !in_flight.is_empty() {
        return Err(StoreError::Corrupt(
            "items or batches without a customer row".into(),
        ));
    }
    aggregator.check()?;
    Ok(aggregator)
}

/// Replays the append-only log and checks that every customer's index row
/// (total, count, failed transfers) and open items are what the log says.
/// Returns the number of customers checked.
pub async fn check_log(tx: &mut Tx<'_>, currency: Currency) -> Result<usize, StoreError> {
    #[derive(Default)]
    struct Replay {
        total: i64,
        count: i64,
        failed: i64,
    }
    let mut replay: BTreeMap<PartyId, Replay> = BTreeMap::new();
    let mut batch_counts: BTreeMap<i64, i64> = BTreeMap::new();
    for row in sqlx::query("SELECT customer, kind, amount, batch FROM micro_log ORDER BY seq")
        .fetch_all(&mut **tx)
        .await?
    {
        let customer = party(row.try_get("customer")?)?;
        let kind: String = row.try_get("kind")?;
        let amount: i64 = row.try_get("amount")?;
        let batch: Option<i64> = row.try_get("batch")?;
        let r = replay.entry(customer).or_default();
        let overflow = || StoreError::Corrupt("log sums overflow".into());
        match kind.as_str() {
            "deferred" | "trigger" => {
                r.total = r.total.checked_add(amount).ok_or_else(overflow)?;
                r.count += 1;
            }
            "rejected" => {
                r.total = r.total.checked_sub(amount).ok_or_else(overflow)?;
                r.count -= 1;
            }
            "started" => {
                if r.total != amount {
                    return Err(StoreError::Corrupt(format!(
                        "a batch of {customer} started for {amount}, pending was {}",
                        r.total
                    )));
                }
                batch_counts.insert(batch.unwrap_or(-1), r.count);
            }
            "settled" => {
                if r.total != amount {
                    return Err(StoreError::Corrupt(format!(
                        "a batch of {customer} settled {amount}, pending was {}",
                        r.total
                    )));
                }
                r.total = 0;
                r.count = 0;
            }
            "failed" => r.failed += 1,
            other => return Err(StoreError::Corrupt(format!("log kind {other:?}"))),
        }
    }
    let checked = replay.len();
    for (customer, r) in replay {
        let (pending, items) = self::customer(tx, &customer, currency)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("{customer} in the log, not the index")))?;
        let sum = Amount::checked_sum(currency, items.iter().map(|i| &i.amount))?;
        if pending.total.minor_units() != r.total
            || to_i64(pending.count, "count")? != r.count
            || to_i64(pending.failed_transfers, "failed")? != r.failed
            || sum != pending.total
            || items.len() as u64 != pending.count
        {
            return Err(StoreError::Corrupt(format!(
                "index of {customer} ({} in {} items, {} failed) is not the log's ({} in {}, {} failed)",
                pending.total, pending.count, pending.failed_transfers, r.total, r.count, r.failed
            )));
        }
    }
    Ok(checked)
}
