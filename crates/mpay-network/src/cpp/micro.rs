//! Micropayments at the CPP (DESIGN §3.3, paper 002 §III), on
//! `mpay_micro::store`.
//!
//! # One micropayment
//!
//! A payment at or below the micro limit, with the CPP's credit allowing it
//! (Σ pending totals + amount ≤ `micro.credit_limit`), is recorded and
//! added to the customer's pending total in **one transaction**
//! ([`Cpp::record_micro`], inside `accept_pr`'s):
//!
//! - **deferred** (the total stays below θ): no funds check, no hold; the PN
//!   (class `Micro`) goes into the outbox in the same transaction and the
//!   payment is `pending`. When the merchant approves, the payment is
//!   `completed` with a signed **DT confirmation**, and the CPP owes the
//!   merchant's MPP its amount (`cpp_micro_owed`).
//! - **reaching θ**: the batch of the whole pending total is `started` in
//!   the same transaction and the payment stays `received`; its saga step
//!   ([`Cpp::drive_batch`]) asks the customer's bank for ONE transfer of the
//!   total to `cpp:<cpp>` (idempotency key = the batch id), then ends the
//!   batch and moves the payment in one transaction: settled → PN sent,
//!   `pending` (approval → **T confirmation**); refused → `declined`,
//!   rejected with `AggregateTransferFailed`, and the customer blocked (the
//!   mpay-micro rule).
//! - refused by the rule: a customer whose batch is in flight, or over the
//!   credit limit, pays this one as a macro payment (a hold); a blocked
//!   customer is declined (`micro_blocked`).
//!
//! A micropayment the merchant rejects or that expires undecided is taken
//! back out of the pending total ([`mpay_micro::store::take_back`]); if a
//! batch in flight holds it, the step waits for the batch to end; if a
//! settled batch collected it, the CPP pays it back to the customer
//! (`micro-return-<payment>`, recorded as `micro_returned`).
//!
//! # Loops
//!
//! - the **window sweep** (`micro.sweep_interval_ms`) starts a batch for
//!   every pending total older than W and retries every batch left
//!   `started` (a crash, a bank that did not answer): the bank sees the
//!   same key again and moves money once;
//! - **net settlement** (`micro.settle_interval_ms`): per MPP, one run of
//!   the approved micropayments not yet paid for, one transfer `cpp:<cpp>`
//!   → `mpp:<mpp>` (key `micro-net-<run>`), then a signed
//!   [`SettlementStatement`] to the MPP from the outbox.

use std::sync::Arc;

use mpay_identity::{PartyId, Timestamp};
use mpay_micro::cluster::{self, ClusterConfig, CustomerFeatures};
use mpay_micro::pending::AddOutcome;
use mpay_micro::policy::{BatchId, MicroLimits, Refusal};
use mpay_micro::store::{self, Ended, StoreError, TakeBack};
use mpay_money::Amount;
use mpay_processor::payment as core;
use mpay_semops::{AmountClass, ConfirmationOutcome, RejectReason};
use mpay_sql::Tx;
use mpay_sql::sqlx::{self, Row};
use mpay_wire::Encode;

use super::{Cpp, MicroEnd, PaymentRow, PaymentState, SWEEP_BATCH_MAX, admit_in, advance, corrupt};
use crate::api::{NetError, hex, ms, wall_clock};
use crate::client::{
    CppMicroSummary, MicroCustomerRecord, MicroMppRecord, ReclusterCluster, ReclusterReport,
};
use crate::micro::{MICRO_SETTLEMENT, STATEMENT_PAYMENTS_MAX, SettledPayment, SettlementStatement};
use crate::money::BankAnswer;
use crate::node::Node;

/// Fewest customers with micropayments a recluster needs (two clusters of
/// four).
pub const RECLUSTER_CUSTOMERS_MIN: usize = 8;
/// Shortest observation period a customer's payment rate is taken over.
const RATE_PERIOD_MS_MIN: u64 = 3_600_000;

pub(super) fn store_error(e: StoreError) -> NetError {
    match e {
        StoreError::Db(db) => NetError::Db(db),
        other if other.is_client_fault() => NetError::Invalid(other.to_string()),
        other => NetError::Internal(other.to_string()),
    }
}

/// What `accept_pr` prepared for a micropayment before its transaction.
pub(super) struct MicroCtx {
    /// The customer's device id (the pending structure's customer).
    pub device: PartyId,
    /// The PN (class `Micro`) as sent to the DC, if time is left to route it.
    pub routed: Option<Vec<u8>>,
    /// The region's DC.
    pub dc: String,
    /// The signed rejection for a blocked customer.
    pub blocked: Vec<u8>,
    /// The payment as just recorded (state `received`), as the core sees it.
    pub received: core::Payment,
}

fn batch_key(batch: BatchId) -> Vec<u8> {
    batch.to_string().into_bytes()
}

/// A run's 16-byte envelope transaction id.
fn run_tx_id(run: i64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(b"micronet");
    id[8..].copy_from_slice(&run.to_be_bytes());
    id
}

impl Cpp {
    /// The customer's limits: its cluster's from the last recluster, else
    /// the model's default cluster, else the configuration's.
    pub(super) async fn limits_in(
        &self,
        tx: &mut Tx<'_>,
        device: &PartyId,
    ) -> Result<MicroLimits, NetError> {
        let settings = self
            .micro
            .ok_or_else(|| NetError::Internal("micropayments are off".into()))?;
        let own = sqlx::query("SELECT theta, window_ms FROM cpp_micro_limits WHERE customer = $1")
            .bind(&device.0[..])
            .fetch_optional(&mut **tx)
            .await?;
        let row = match own {
            Some(row) => Some(row),
            None => {
                sqlx::query(
                    "SELECT default_theta AS theta, default_window_ms AS window_ms
                 FROM cpp_micro_model WHERE id = 1",
                )
                .fetch_optional(&mut **tx)
                .await?
            }
        };
        let Some(row) = row else {
            return Ok(settings.limits);
        };
        let theta = Amount::new(row.try_get("theta")?, self.currency());
        let window: i64 = row.try_get("window_ms")?;
        let window = u64::try_from(window).map_err(|_| corrupt("micro window"))?;
        MicroLimits::new(settings.limits.micro_max(), theta, window)
            .map_err(|e| NetError::Internal(format!("stored micro limits: {e}")))
    }

    /// Σ pending totals: the CPP's credit in use.
    async fn credit_used_in(&self, tx: &mut Tx<'_>) -> Result<i64, NetError> {
        let used: Option<i64> =
            sqlx::query("SELECT CAST(SUM(total) AS BIGINT) AS used FROM micro_customers")
                .fetch_one(&mut **tx)
                .await?
                .try_get("used")?;
        Ok(used.unwrap_or(0))
    }

    /// Adds the just-inserted payment `seq` (class `micro`, state
    /// `received`) to the pending total, in `accept_pr`'s transaction (module
    /// docs).
    pub(super) async fn record_micro(
        &self,
        tx: &mut Tx<'_>,
        ctx: &MicroCtx,
        id: [u8; 16],
        seq: i64,
        amount: Amount,
        now: Timestamp,
    ) -> Result<(), NetError> {
        let settings = self
            .micro
            .ok_or_else(|| NetError::Internal("micropayments are off".into()))?;
        let as_macro = async |tx: &mut Tx<'_>| {
            sqlx::query("UPDATE cpp_payments SET class = 'macro' WHERE id = $1")
                .bind(&id[..])
                .execute(&mut **tx)
                .await
                .map(|_| ())
        };
        let used = self.credit_used_in(tx).await?;
        if mpay_micro::intermediary::check_credit(
            self.node.me.id,
            used,
            amount.minor_units(),
            settings.credit_limit.minor_units(),
        )
        .is_err()
        {
            tracing::info!(
                payment = hex(&id),
                used,
                "micro credit limit reached: a macro payment"
            );
            as_macro(tx).await?;
            return Ok(());
        }
        let limits = self.limits_in(tx, &ctx.device).await?;
        let payment = u64::try_from(seq).map_err(|_| corrupt("seq"))?;
        let outcome = store::add(tx, &ctx.device, payment, amount, &limits, now)
            .await
            .map_err(store_error)?;
        match outcome {
            AddOutcome::Deferred { .. } => {
                let step =
                    admit_in(tx, ctx.received, id, ctx.routed.as_deref(), &ctx.dc, now).await?;
                sqlx::query("UPDATE cpp_payments SET state = $2, notice_sent = $3 WHERE id = $1")
                    .bind(&id[..])
                    .bind(step.payment.state.as_str())
                    .bind(i64::from(step.payment.notice_sent))
                    .execute(&mut **tx)
                    .await?;
            }
            AddOutcome::SettleNeeded(batch) => {
                let batch_id = i64::try_from(batch.id.0).map_err(|_| corrupt("batch"))?;
                sqlx::query("UPDATE cpp_payments SET micro_batch = $2 WHERE id = $1")
                    .bind(&id[..])
                    .bind(batch_id)
                    .execute(&mut **tx)
                    .await?;
            }
            AddOutcome::Refused(Refusal::Blocked) => {
                let declined = advance(ctx.received, core::Input::Refused, now)?;
                sqlx::query(
                    "UPDATE cpp_payments SET state = $3, reason = 'micro_blocked',
                        confirmation = $2 WHERE id = $1",
                )
                .bind(&id[..])
                .bind(&ctx.blocked[..])
                .bind(declined.payment.state.as_str())
                .execute(&mut **tx)
                .await?;
            }
            AddOutcome::Refused(Refusal::SettlementInFlight) | AddOutcome::Macro => {
                as_macro(tx).await?;
            }
        }
        Ok(())
    }

    /// The saga step of a micropayment that reached θ: its batch.
    pub(super) async fn micro_trigger(self: &Arc<Self>, row: PaymentRow) -> Result<bool, NetError> {
        let batch = row
            .micro_batch
            .ok_or_else(|| corrupt("a received micropayment without its batch"))?;
        let batch = BatchId(u64::try_from(batch).map_err(|_| corrupt("batch"))?);
        self.drive_batch(batch).await
    }

    fn home(&self) -> Result<(String, String), NetError> {
        self.node
            .me
            .home
            .clone()
            .ok_or_else(|| NetError::Internal("CPP without a home account".into()))
    }

    /// Transfers a started batch and ends it (with its trigger payment, if
    /// any); `Ok(true)` if the trigger moved on to another saga step.
    /// Idempotent: a batch that ended already changes nothing.
    pub(super) async fn drive_batch(self: &Arc<Self>, batch_id: BatchId) -> Result<bool, NetError> {
        let key = batch_key(batch_id);
        if !self.node.begin_step(&key) {
            return Ok(false);
        }
        let result = self.batch_step(batch_id).await;
        self.node.end_step(&key);
        result
    }

    async fn batch_step(self: &Arc<Self>, batch_id: BatchId) -> Result<bool, NetError> {
        let node = &self.node;
        let currency = self.currency();
        let mut tx = node.db.begin().await?;
        let (batch, state) = store::batch(&mut tx, batch_id, currency)
            .await
            .map_err(store_error)?;
        let limits = self.limits_in(&mut tx, &batch.customer).await?;
        let customer = sqlx::query("SELECT bank, account FROM cpp_customers WHERE device = $1")
            .bind(&batch.customer.0[..])
            .fetch_one(&mut *tx)
            .await?;
        let trigger = match batch.trigger {
            Some(t) => {
                let seq = i64::try_from(t.payment).map_err(|_| corrupt("trigger"))?;
                let row = sqlx::query("SELECT * FROM cpp_payments WHERE seq = $1")
                    .bind(seq)
                    .fetch_one(&mut *tx)
                    .await?;
                Some(PaymentRow::from_row(&row, currency)?)
            }
            None => None,
        };
        drop(tx);
        if state != "started" {
            return Ok(false);
        }
        let bank: String = customer.try_get("bank")?;
        let account: String = customer.try_get("account")?;
        let (home_bank, home_account) = self.home()?;
        // One key: the batch fails on a refusal, which the bank keeps.
        let answer = node
            .move_money(
                &batch_id.to_string(),
                (&bank, &account),
                (&home_bank, &home_account),
                batch.total,
                format!("micropayments {batch_id}"),
            )
            .await?;
        let now = wall_clock();
        let settled = match answer {
            BankAnswer::Retry(reason) => return Err(NetError::Unavailable(reason)),
            BankAnswer::Done(_) => true,
            BankAnswer::Refused(code) => {
                tracing::warn!(batch = %batch_id, %code, "aggregated transfer refused");
                false
            }
        };
        // What the trigger payment becomes, signed before the transaction.
        let routed = match &trigger {
            Some(row) if settled => self
                .notice(row, AmountClass::Micro, now)?
                .map(|r| r.to_wire()),
            _ => None,
        };
        let rejection = match &trigger {
            Some(row) if !settled => Some(self.sign_confirmation(
                row.id,
                ConfirmationOutcome::Rejected {
                    reason: RejectReason::AggregateTransferFailed,
                },
                row.amount,
                now,
            )?),
            _ => None,
        };
        let dc = node.my_dc()?.name.clone();
        let (dc, routed, rejection, trigger, limits) =
            (&dc, &routed, &rejection, &trigger, &limits);
        let moved = node
            .db
            .with_retry(move |tx| {
                Box::pin(async move {
                    let ended = if settled {
                        store::settled(tx, batch_id, currency, now).await
                    } else {
                        store::failed(tx, batch_id, limits, now).await
                    }
                    .map_err(store_error)?;
                    let (Ended::Now(_), Some(row)) = (ended, trigger) else {
                        return Ok(false);
                    };
                    let id = row.id;
                    if !settled {
                        let declined = advance(row.core(), core::Input::Refused, now)?;
                        sqlx::query(
                            "UPDATE cpp_payments SET state = $5, reason = $2,
                                confirmation = $3, updated_at = $4
                             WHERE id = $1 AND state = $6",
                        )
                        .bind(&id[..])
                        .bind("aggregate_transfer_failed")
                        .bind(rejection.as_deref())
                        .bind(ms(now))
                        .bind(declined.payment.state.as_str())
                        .bind(PaymentState::Received.as_str())
                        .execute(&mut **tx)
                        .await?;
                        return Ok(false);
                    }
                    let step = admit_in(tx, row.core(), id, routed.as_deref(), dc, now).await?;
                    sqlx::query(
                        "UPDATE cpp_payments SET state = $2, notice_sent = $3, updated_at = $4
                         WHERE id = $1 AND state = $5",
                    )
                    .bind(&id[..])
                    .bind(step.payment.state.as_str())
                    .bind(i64::from(step.payment.notice_sent))
                    .bind(ms(now))
                    .bind(PaymentState::Received.as_str())
                    .execute(&mut **tx)
                    .await?;
                    Ok::<_, NetError>(step.effects.contains(&core::Effect::Drive))
                })
            })
            .await?;
        node.kick.notify_one();
        if let Some(row) = trigger {
            node.waiters.wake(row.id);
        }
        Ok(moved)
    }

    /// The merchant approved a micropayment: DT confirmation (T if its
    /// batch was transferred before the PN went out); the CPP now owes the
    /// MPP its amount.
    pub(super) async fn micro_approve(&self, row: PaymentRow) -> Result<bool, NetError> {
        let outcome = if row.micro_batch.is_some() {
            ConfirmationOutcome::Transferred
        } else {
            ConfirmationOutcome::DelayedTransfer
        };
        let owed = MicroEnd::Owed {
            mpp: row.mpp.clone(),
            amount: row.amount.minor_units(),
        };
        self.finish_micro(&row, core::Input::Posted, outcome, None, owed)
            .await
    }

    /// A rejected or expired micropayment: out of the pending total, or
    /// paid back if it was collected (module docs).
    pub(super) async fn micro_take_back(&self, row: PaymentRow) -> Result<bool, NetError> {
        let node = &self.node;
        let now = wall_clock();
        let device = sqlx::query("SELECT device FROM cpp_customers WHERE name = $1")
            .bind(&row.customer)
            .fetch_one(node.db.pool())
            .await?;
        let device: Vec<u8> = device.try_get("device")?;
        let device = PartyId(device.try_into().map_err(|_| corrupt("device"))?);
        let payment = u64::try_from(row.seq).map_err(|_| corrupt("seq"))?;
        let device = &device;
        let found = node
            .db
            .with_retry(move |tx| {
                Box::pin(async move {
                    let limits = self.limits_in(tx, device).await?;
                    store::take_back(tx, device, payment, &limits, now)
                        .await
                        .map_err(store_error)
                })
            })
            .await?;
        let mut end = MicroEnd::None;
        match found {
            TakeBack::Removed { .. } | TakeBack::Gone => {}
            TakeBack::InFlight(batch) => {
                return Err(NetError::Unavailable(format!(
                    "micropayment in {batch}, in flight"
                )));
            }
            TakeBack::Collected => {
                let (home_bank, home_account) = self.home()?;
                let answer = node
                    .move_money_when_funded(
                        &format!("micro-return-{}", hex(&row.id)),
                        (&home_bank, &home_account),
                        (&row.bank, &row.account),
                        row.amount,
                        format!("return of micropayment {}", hex(&row.id)),
                    )
                    .await?;
                match answer {
                    BankAnswer::Done(_) => end = MicroEnd::Returned(row.amount.minor_units()),
                    BankAnswer::Retry(reason) => return Err(NetError::Unavailable(reason)),
                    BankAnswer::Refused(code) => {
                        return Err(NetError::Unavailable(format!(
                            "return of a collected micropayment refused ({code}); will retry"
                        )));
                    }
                }
            }
        }
        let outcome = match row.state {
            PaymentState::Rejecting => ConfirmationOutcome::Rejected {
                reason: RejectReason::MerchantRejected,
            },
            _ => ConfirmationOutcome::Expired,
        };
        self.finish_micro(&row, core::Input::Released, outcome, None, end)
            .await
    }

    /// The window sweep and the retry of unfinished batches (module docs).
    pub(super) async fn sweep_micro(self: &Arc<Self>, now: Timestamp) -> Result<(), NetError> {
        let currency = self.currency();
        let max = u32::try_from(SWEEP_BATCH_MAX).unwrap_or(u32::MAX);
        let started = self
            .node
            .db
            .with_retry(move |tx| {
                Box::pin(async move {
                    let mut batches = Vec::new();
                    for customer in store::due_for_window(tx, now, max)
                        .await
                        .map_err(store_error)?
                    {
                        if let Some(batch) = store::start_settlement(tx, &customer, currency, now)
                            .await
                            .map_err(store_error)?
                        {
                            batches.push(batch.id);
                        }
                    }
                    Ok::<_, NetError>(batches)
                })
            })
            .await?;
        if !started.is_empty() {
            tracing::info!(batches = started.len(), "window sweep started settlements");
        }
        let mut tx = self.node.db.begin().await?;
        let unfinished = store::unfinished(&mut tx, currency)
            .await
            .map_err(store_error)?;
        drop(tx);
        for batch in unfinished.into_iter().take(SWEEP_BATCH_MAX as usize) {
            let cpp = Arc::clone(self);
            tokio::spawn(async move {
                if let Err(error) = cpp.drive_batch(batch.id).await {
                    tracing::debug!(batch = %batch.id, %error, "settlement batch not done; will resume");
                }
            });
        }
        Ok(())
    }

    /// One net settlement run per MPP that is owed (module docs), and the
    /// retry of runs left `started`.
    pub(super) async fn settle_runs(self: &Arc<Self>, now: Timestamp) -> Result<(), NetError> {
        let node = &self.node;
        let mpps: Vec<String> =
            sqlx::query("SELECT DISTINCT mpp FROM cpp_micro_owed WHERE run IS NULL")
                .fetch_all(node.db.pool())
                .await?
                .iter()
                .map(|r| r.try_get("mpp"))
                .collect::<Result<_, _>>()?;
        for mpp in &mpps {
            node.db
                .with_retry(move |tx| {
                    Box::pin(async move {
                        let rows = sqlx::query(
                            "SELECT payment_id, amount FROM cpp_micro_owed
                             WHERE mpp = $1 AND run IS NULL
                             ORDER BY approved_at, payment_id LIMIT $2",
                        )
                        .bind(mpp.as_str())
                        .bind(STATEMENT_PAYMENTS_MAX as i64)
                        .fetch_all(&mut **tx)
                        .await?;
                        if rows.is_empty() {
                            return Ok(());
                        }
                        let amounts = rows
                            .iter()
                            .map(|r| r.try_get::<i64, _>("amount"))
                            .collect::<Result<Vec<_>, _>>()?;
                        // One run is one bank transfer: at most AMOUNT_MINOR_MAX.
                        let (count, total) = crate::micro::one_transfer(amounts);
                        if count == 0 {
                            return Err(corrupt("an owed micropayment beyond AMOUNT_MINOR_MAX"));
                        }
                        let rows = &rows[..count];
                        let run: i64 = sqlx::query(
                            "INSERT INTO cpp_micro_runs (mpp, total, count, state, started_at)
                             VALUES ($1, $2, $3, 'started', $4) RETURNING id",
                        )
                        .bind(mpp.as_str())
                        .bind(total)
                        .bind(rows.len() as i64)
                        .bind(ms(now))
                        .fetch_one(&mut **tx)
                        .await?
                        .try_get("id")?;
                        for r in rows {
                            let id: Vec<u8> = r.try_get("payment_id")?;
                            sqlx::query("UPDATE cpp_micro_owed SET run = $2 WHERE payment_id = $1")
                                .bind(&id[..])
                                .bind(run)
                                .execute(&mut **tx)
                                .await?;
                        }
                        Ok::<_, NetError>(())
                    })
                })
                .await?;
        }
        let runs: Vec<i64> =
            sqlx::query("SELECT id FROM cpp_micro_runs WHERE state = 'started' ORDER BY id")
                .fetch_all(node.db.pool())
                .await?
                .iter()
                .map(|r| r.try_get("id"))
                .collect::<Result<_, _>>()?;
        for run in runs {
            if let Err(error) = self.drive_run(run).await {
                tracing::debug!(run, %error, "net settlement run not done; will resume");
            }
        }
        Ok(())
    }

    async fn drive_run(&self, run: i64) -> Result<(), NetError> {
        let node = &self.node;
        let key = format!("micro-net-{run}");
        if !node.begin_step(key.as_bytes()) {
            return Ok(());
        }
        let result = self.run_step(run, &key).await;
        node.end_step(key.as_bytes());
        result
    }

    async fn run_step(&self, run: i64, key: &str) -> Result<(), NetError> {
        let node = &self.node;
        let currency = self.currency();
        let row = sqlx::query("SELECT mpp, total, state FROM cpp_micro_runs WHERE id = $1")
            .bind(run)
            .fetch_one(node.db.pool())
            .await?;
        let state: String = row.try_get("state")?;
        if state != "started" {
            return Ok(());
        }
        let mpp_name: String = row.try_get("mpp")?;
        let total = Amount::new(row.try_get("total")?, currency);
        let mpp = node
            .directory
            .service(&mpp_name)
            .cloned()
            .ok_or_else(|| corrupt("MPP no longer in the directory"))?;
        let (mpp_bank, mpp_account) = mpp
            .home
            .clone()
            .ok_or_else(|| corrupt("MPP without a home account"))?;
        let payments = sqlx::query(
            "SELECT payment_id, amount FROM cpp_micro_owed WHERE run = $1 ORDER BY payment_id",
        )
        .bind(run)
        .fetch_all(node.db.pool())
        .await?
        .iter()
        .map(|r| {
            let id: Vec<u8> = r.try_get("payment_id")?;
            Ok(SettledPayment {
                payment_id: id.try_into().map_err(|_| corrupt("payment id"))?,
                amount: Amount::new(r.try_get("amount")?, currency),
            })
        })
        .collect::<Result<Vec<_>, NetError>>()?;
        let statement = SettlementStatement {
            run: u64::try_from(run).map_err(|_| corrupt("run"))?,
            cpp: node.me.id,
            mpp: mpp.id,
            total,
            payments,
        };
        if !statement.adds_up() {
            return Err(NetError::Internal(format!("run {run} does not add up")));
        }
        let (home_bank, home_account) = self.home()?;
        let answer = node
            .move_money_when_funded(
                key,
                (&home_bank, &home_account),
                (&mpp_bank, &mpp_account),
                total,
                format!("net settlement {run} of {}", node.me.name),
            )
            .await?;
        match answer {
            BankAnswer::Done(_) => {}
            BankAnswer::Retry(reason) => return Err(NetError::Unavailable(reason)),
            BankAnswer::Refused(code) => {
                // Our own account lacks the money (customers not yet
                // collected): the run waits for the next sweep.
                return Err(NetError::Unavailable(format!(
                    "net settlement refused: {code}"
                )));
            }
        }
        let now = wall_clock();
        let payload = statement.to_wire();
        let (payload, mpp_name) = (&payload, &mpp_name);
        node.db
            .with_retry(move |tx| {
                Box::pin(async move {
                    let updated = sqlx::query(
                        "UPDATE cpp_micro_runs SET state = 'paid', paid_at = $2
                         WHERE id = $1 AND state = 'started'",
                    )
                    .bind(run)
                    .bind(ms(now))
                    .execute(&mut **tx)
                    .await?;
                    if updated.rows_affected() == 1 {
                        Node::enqueue(
                            tx,
                            mpp_name,
                            MICRO_SETTLEMENT,
                            run_tx_id(run),
                            payload,
                            key,
                            now,
                        )
                        .await?;
                    }
                    Ok::<_, NetError>(())
                })
            })
            .await?;
        node.kick.notify_one();
        Ok(())
    }

    /// The operator's summary of every micropayment book (for `mpay
    /// reconcile`).
    pub(super) async fn micro_summary(&self) -> Result<CppMicroSummary, NetError> {
        let node = &self.node;
        let currency = self.currency();
        let pool = node.db.pool();
        let money = |m: Option<i64>| Amount::new(m.unwrap_or(0), currency).to_string();
        let mut customers = Vec::new();
        for r in sqlx::query(
            "SELECT c.name, c.device, m.total, m.count, m.state, m.failed_transfers,
                (SELECT CAST(SUM(b.total) AS BIGINT) FROM micro_batches b
                 WHERE b.customer = m.customer AND b.state = 'settled') AS collected,
                (SELECT CAST(SUM(p.micro_returned) AS BIGINT) FROM cpp_payments p
                 WHERE p.customer = c.name AND p.class = 'micro') AS returned,
                (SELECT CAST(SUM(p.amount) AS BIGINT) FROM cpp_payments p WHERE p.customer = c.name
                 AND p.class = 'micro' AND p.state IN ('completed', 'refunded')) AS confirmed,
                (SELECT CAST(SUM(b.total) AS BIGINT) FROM micro_batches b
                 WHERE b.customer = m.customer AND b.state = 'failed') AS failed_total
             FROM micro_customers m JOIN cpp_customers c ON c.device = m.customer
             ORDER BY c.name",
        )
        .fetch_all(pool)
        .await?
        {
            let device: Vec<u8> = r.try_get("device")?;
            let device = PartyId(device.try_into().map_err(|_| corrupt("device"))?);
            let mut tx = node.db.begin().await?;
            let limits = self.limits_in(&mut tx, &device).await?;
            drop(tx);
            customers.push(MicroCustomerRecord {
                name: r.try_get("name")?,
                pending: money(Some(r.try_get("total")?)),
                count: r.try_get("count")?,
                state: r.try_get("state")?,
                failed_transfers: r.try_get("failed_transfers")?,
                collected: money(r.try_get("collected")?),
                returned: money(r.try_get("returned")?),
                confirmed: money(r.try_get("confirmed")?),
                theta: limits.theta().to_string(),
                window_ms: limits.window_ms(),
            });
        }
        let mut mpps = Vec::new();
        for r in sqlx::query(
            "SELECT o.mpp,
                CAST(SUM(CASE WHEN r.state = 'paid' THEN o.amount ELSE 0 END) AS BIGINT) AS paid,
                CAST(SUM(CASE WHEN r.state = 'paid' THEN 0 ELSE o.amount END) AS BIGINT) AS unpaid,
                (SELECT CAST(SUM(p.amount) AS BIGINT) FROM cpp_payments p WHERE p.mpp = o.mpp
                 AND p.class = 'micro' AND p.state IN ('completed', 'refunded')) AS confirmed,
                (SELECT COUNT(*) FROM cpp_micro_runs x WHERE x.mpp = o.mpp AND x.state = 'paid') AS runs
             FROM cpp_micro_owed o LEFT JOIN cpp_micro_runs r ON r.id = o.run
             GROUP BY o.mpp ORDER BY o.mpp",
        )
        .fetch_all(pool)
        .await?
        {
            mpps.push(MicroMppRecord {
                mpp: r.try_get("mpp")?,
                paid: money(r.try_get("paid")?),
                unpaid: money(r.try_get("unpaid")?),
                confirmed: money(r.try_get("confirmed")?),
                runs_paid: r.try_get("runs")?,
            });
        }
        let count = async |sql: &'static str| -> Result<i64, NetError> {
            Ok(sqlx::query(sql).fetch_one(pool).await?.try_get("n")?)
        };
        let batches_started =
            count("SELECT COUNT(*) AS n FROM micro_batches WHERE state = 'started'").await?;
        let runs_started =
            count("SELECT COUNT(*) AS n FROM cpp_micro_runs WHERE state = 'started'").await?;
        let mut tx = node.db.begin().await?;
        let credit_used = self.credit_used_in(&mut tx).await?;
        let log_problem = store::check_log(&mut tx, currency)
            .await
            .err()
            .map(|e| e.to_string());
        drop(tx);
        Ok(CppMicroSummary {
            mode: format!("{:?}", self.node.config.micro.mode).to_lowercase(),
            credit_used: money(Some(credit_used)),
            credit_limit: self.micro.map(|m| m.credit_limit.to_string()),
            batches_started,
            runs_started,
            log_problem,
            customers,
            mpps,
        })
    }

    /// Fits k-means over the customers' micropayment behaviour and stores
    /// each customer's θ and W (module docs of `mpay_micro::cluster`).
    pub(super) async fn recluster(&self, now: Timestamp) -> Result<ReclusterReport, NetError> {
        let node = &self.node;
        let settings = self
            .micro
            .ok_or_else(|| NetError::Invalid("micropayments are off at this CPP".into()))?;
        let rows = sqlx::query(
            "SELECT l.customer, COUNT(*) AS n, CAST(SUM(l.amount) AS BIGINT) AS amount, MIN(l.at) AS first,
                m.failed_transfers, m.state
             FROM micro_log l JOIN micro_customers m ON m.customer = l.customer
             WHERE l.kind IN ('deferred', 'trigger')
             GROUP BY l.customer, m.failed_transfers, m.state ORDER BY l.customer",
        )
        .fetch_all(node.db.pool())
        .await?;
        let mut customers = Vec::with_capacity(rows.len());
        let mut training = Vec::with_capacity(rows.len());
        let mut first_overall = now.as_millis();
        for r in &rows {
            let id: Vec<u8> = r.try_get("customer")?;
            let id = PartyId(id.try_into().map_err(|_| corrupt("customer"))?);
            let n: i64 = r.try_get("n")?;
            let amount: i64 = r.try_get("amount")?;
            let first: i64 = r.try_get("first")?;
            let first = u64::try_from(first).map_err(|_| corrupt("time"))?;
            first_overall = first_overall.min(first);
            let period_ms = now
                .as_millis()
                .saturating_sub(first)
                .max(RATE_PERIOD_MS_MIN);
            let failed: i64 = r.try_get("failed_transfers")?;
            let state: String = r.try_get("state")?;
            // Statistics, not money: floats are the features' unit.
            #[allow(clippy::cast_precision_loss)]
            let features = CustomerFeatures {
                payments_per_day: n as f64 * cluster::DAY_MS as f64 / period_ms as f64,
                mean_amount_minor: amount as f64 / n.max(1) as f64,
                failed_transfers: u64::try_from(failed).unwrap_or(0),
            };
            customers.push((id, features));
            training.push((features, state == "blocked"));
        }
        if training.len() < RECLUSTER_CUSTOMERS_MIN {
            return Err(NetError::conflict(
                "too_few_customers",
                format!(
                    "{} customers have micropayments; a recluster needs at least {RECLUSTER_CUSTOMERS_MIN}",
                    training.len()
                ),
            ));
        }
        let mut config = ClusterConfig::default_for(
            self.currency(),
            settings.limits.micro_max(),
            settings.transfer_fee,
        );
        config.k_max = (training.len() / 4).clamp(2, cluster::K_MAX);
        config.horizon_ms = now
            .as_millis()
            .saturating_sub(first_overall)
            .max(RATE_PERIOD_MS_MIN);
        let model = tokio::task::spawn_blocking(move || cluster::fit(&training, &config))
            .await
            .map_err(|e| NetError::Internal(format!("recluster: {e}")))?
            .map_err(|e| NetError::Invalid(format!("recluster: {e}")))?;
        let assigned: Vec<(PartyId, usize)> = customers
            .iter()
            .map(|(id, f)| (*id, model.assign(f)))
            .collect();
        let clusters: Vec<(i64, i64)> = model
            .clusters()
            .iter()
            .map(|c| {
                (
                    c.limits.theta().minor_units(),
                    i64::try_from(c.limits.window_ms()).unwrap_or(i64::MAX),
                )
            })
            .collect();
        let default_cluster = model.default_cluster();
        let (assigned, clusters) = (&assigned, &clusters);
        node.db
            .with_retry(move |tx| {
                Box::pin(async move {
                    sqlx::query("DELETE FROM cpp_micro_limits")
                        .execute(&mut **tx)
                        .await?;
                    for (id, c) in assigned {
                        sqlx::query(
                            "INSERT INTO cpp_micro_limits (customer, cluster, theta, window_ms, fitted_at)
                             VALUES ($1, $2, $3, $4, $5)",
                        )
                        .bind(&id.0[..])
                        .bind(*c as i64)
                        .bind(clusters[*c].0)
                        .bind(clusters[*c].1)
                        .bind(ms(now))
                        .execute(&mut **tx)
                        .await?;
                    }
                    sqlx::query(
                        "INSERT INTO cpp_micro_model (id, clusters, customers, default_cluster,
                            default_theta, default_window_ms, fitted_at)
                         VALUES (1, $1, $2, $3, $4, $5, $6)
                         ON CONFLICT (id) DO UPDATE SET clusters = excluded.clusters,
                            customers = excluded.customers, default_cluster = excluded.default_cluster,
                            default_theta = excluded.default_theta,
                            default_window_ms = excluded.default_window_ms,
                            fitted_at = excluded.fitted_at",
                    )
                    .bind(clusters.len() as i64)
                    .bind(assigned.len() as i64)
                    .bind(default_cluster as i64)
                    .bind(clusters[default_cluster].0)
                    .bind(clusters[default_cluster].1)
                    .bind(ms(now))
                    .execute(&mut **tx)
                    .await?;
                    Ok::<_, NetError>(())
                })
            })
            .await?;
        Ok(ReclusterReport {
            customers: assigned.len(),
            default_cluster,
            fitted_at: now.as_millis(),
            clusters: model
                .clusters()
                .iter()
                .enumerate()
                .map(|(i, c)| ReclusterCluster {
                    cluster: i,
                    customers: assigned.iter().filter(|(_, a)| *a == i).count(),
                    defaults: c.defaults,
                    default_rate: c.default_rate,
                    theta: c.limits.theta().to_string(),
                    window_ms: c.limits.window_ms(),
                })
                .collect(),
        })
    }
}
