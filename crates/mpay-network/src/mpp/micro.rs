//! Micropayments at the MPP (DESIGN §3.3): the CPPs pay the MPP by net
//! settlement ([`SettlementStatement`], straight from a CPP's outbox), and
//! the MPP pays its merchants by **payouts** (one bank transfer `mpp:<mpp>`
//! → the merchant's account per payout, key `micro-payout-<id>`, the
//! `started` payout committed before the call).
//!
//! - `[micro] mode = "one"`: the MPP passes money straight on: a payout
//!   covers only micropayments a CPP's statement has funded, so the MPP
//!   never advances money (its credit in use stays 0).
//! - `mode = "two"`: the MPP aggregates what it owes each merchant and pays
//!   out every `settle_interval_ms`, funded or not, as long as what it has
//!   paid out ahead of the CPPs (credit in use: paid out, not funded) plus
//!   the payout stays within `credit_limit`
//!   ([`mpay_micro::intermediary::check_credit`]); a merchant whose payout
//!   does not fit waits for the CPPs' next settlements.
//!
//! A micropayment counts for a payout once its confirmation (DT or T) made
//! it `completed`. Micropayments cannot be refunded through the network
//! (the merchant may not have been paid yet): the refund route refuses
//! them.

use std::sync::Arc;

use mpay_identity::{PartyId, Timestamp};
use mpay_money::Amount;
use mpay_sql::sqlx::{self, Row};
use mpay_wire::Decode;

use super::{Mpp, SWEEP_BATCH_MAX, corrupt};
use crate::api::{NetError, hex, ms, wall_clock};
use crate::client::{MicroCppRecord, MicroMerchantRecord, MppMicroSummary};
use crate::config::MicroMode;
use crate::directory::ResolvedService;
use crate::micro::SettlementStatement;
use crate::money::BankAnswer;

impl Mpp {
    /// A CPP's settlement statement: records it once and marks the
    /// micropayments it paid for as funded; in mode one, pays them out.
    pub(super) async fn on_statement(
        self: &Arc<Self>,
        sender: &ResolvedService,
        payload: &[u8],
        now: Timestamp,
    ) -> Result<String, NetError> {
        let statement = SettlementStatement::from_wire(payload)
            .map_err(|e| NetError::Refused(format!("settlement statement: {e}")))?;
        if statement.cpp != sender.id || statement.mpp != self.node.me.id {
            return Err(NetError::Refused(
                "a statement of another CPP or for another MPP".into(),
            ));
        }
        if statement.total.currency() != self.currency() || !statement.adds_up() {
            return Err(NetError::Refused("a statement that does not add up".into()));
        }
        let run = i64::try_from(statement.run).map_err(|_| NetError::Refused("run".into()))?;
        let (statement, cpp) = (&statement, &sender.name);
        let outcome = self
            .node
            .db
            .with_retry(move |tx| {
                Box::pin(async move {
                    let seen = sqlx::query(
                        "SELECT run FROM mpp_micro_statements WHERE cpp = $1 AND run = $2",
                    )
                    .bind(cpp.as_str())
                    .bind(run)
                    .fetch_optional(&mut **tx)
                    .await?;
                    if seen.is_some() {
                        return Ok("duplicate");
                    }
                    sqlx::query(
                        "INSERT INTO mpp_micro_statements (cpp, run, total, count, received_at)
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(cpp.as_str())
                    .bind(run)
                    .bind(statement.total.minor_units())
                    .bind(statement.payments.len() as i64)
                    .bind(ms(now))
                    .execute(&mut **tx)
                    .await?;
                    for p in &statement.payments {
                        let marked = sqlx::query(
                            "UPDATE mpp_payments SET funded = 1
                             WHERE id = $1 AND cpp = $2 AND micro = 1 AND amount = $3",
                        )
                        .bind(&p.payment_id[..])
                        .bind(cpp.as_str())
                        .bind(p.amount.minor_units())
                        .execute(&mut **tx)
                        .await?;
                        if marked.rows_affected() != 1 {
                            tracing::error!(
                                payment = hex(&p.payment_id),
                                "a settlement paid for a micropayment this MPP does not hold"
                            );
                        }
                    }
                    Ok::<_, NetError>("applied")
                })
            })
            .await?;
        if outcome == "applied" && self.node.config.micro.mode == MicroMode::One {
            let mpp = Arc::clone(self);
            tokio::spawn(async move {
                if let Err(error) = mpp.pay_out(wall_clock()).await {
                    tracing::debug!(%error, "payouts not done; will resume");
                }
            });
        }
        Ok(outcome.to_owned())
    }

    /// Starts a payout per merchant owed (mode one: funded micropayments
    /// only; mode two: within the credit limit), then drives every payout
    /// still `started`.
    pub(super) async fn pay_out(self: &Arc<Self>, now: Timestamp) -> Result<(), NetError> {
        let Some(settings) = self.micro else {
            return Ok(());
        };
        let node = &self.node;
        let funded_only = settings.mode == MicroMode::One;
        let merchants: Vec<Vec<u8>> = sqlx::query(
            "SELECT DISTINCT merchant FROM mpp_payments
             WHERE micro = 1 AND payout IS NULL AND state IN ('completed', 'refunded')
               AND (funded = 1 OR $1 = 0)",
        )
        .bind(i64::from(funded_only))
        .fetch_all(node.db.pool())
        .await?
        .iter()
        .map(|r| r.try_get("merchant"))
        .collect::<Result<_, _>>()?;
        let me = node.me.id;
        let limit = settings.credit_limit.minor_units();
        for merchant in &merchants {
            node.db
                .with_retry(move |tx| {
                    Box::pin(async move {
                        let rows = sqlx::query(
                            "SELECT id, amount, funded FROM mpp_payments
                             WHERE merchant = $1 AND micro = 1 AND payout IS NULL
                               AND state IN ('completed', 'refunded') AND (funded = 1 OR $2 = 0)
                             ORDER BY seq LIMIT $3",
                        )
                        .bind(&merchant[..])
                        .bind(i64::from(funded_only))
                        .bind(SWEEP_BATCH_MAX)
                        .fetch_all(&mut **tx)
                        .await?;
                        let amounts = rows
                            .iter()
                            .map(|r| r.try_get::<i64, _>("amount"))
                            .collect::<Result<Vec<_>, _>>()?;
                        // One payout is one bank transfer: at most AMOUNT_MINOR_MAX.
                        let (count, total) = crate::micro::one_transfer(amounts);
                        let rows = &rows[..count];
                        let mut unfunded: i64 = 0;
                        for r in rows {
                            if r.try_get::<i64, _>("funded")? == 0 {
                                // A part of `total`: cannot overflow.
                                unfunded += r.try_get::<i64, _>("amount")?;
                            }
                        }
                        if total == 0 {
                            return Ok(());
                        }
                        if unfunded > 0 {
                            let used: Option<i64> = sqlx::query(
                                "SELECT CAST(SUM(amount) AS BIGINT) AS used FROM mpp_payments
                                 WHERE micro = 1 AND payout IS NOT NULL AND funded = 0",
                            )
                            .fetch_one(&mut **tx)
                            .await?
                            .try_get("used")?;
                            if let Err(refusal) = mpay_micro::intermediary::check_credit(
                                me,
                                used.unwrap_or(0),
                                unfunded,
                                limit,
                            ) {
                                tracing::info!(%refusal, "payout waits for the CPPs' settlements");
                                return Ok(());
                            }
                        }
                        let payout: i64 = sqlx::query(
                            "INSERT INTO mpp_micro_payouts (merchant, total, count, state, started_at)
                             VALUES ($1, $2, $3, 'started', $4) RETURNING id",
                        )
                        .bind(&merchant[..])
                        .bind(total)
                        .bind(rows.len() as i64)
                        .bind(ms(now))
                        .fetch_one(&mut **tx)
                        .await?
                        .try_get("id")?;
                        for r in rows {
                            let id: Vec<u8> = r.try_get("id")?;
                            sqlx::query("UPDATE mpp_payments SET payout = $2 WHERE id = $1")
                                .bind(&id[..])
                                .bind(payout)
                                .execute(&mut **tx)
                                .await?;
                        }
                        Ok::<_, NetError>(())
                    })
                })
                .await?;
        }
        let payouts: Vec<i64> =
            sqlx::query("SELECT id FROM mpp_micro_payouts WHERE state = 'started' ORDER BY id")
                .fetch_all(node.db.pool())
                .await?
                .iter()
                .map(|r| r.try_get("id"))
                .collect::<Result<_, _>>()?;
        for payout in payouts {
            let key = format!("micro-payout-{payout}");
            if !node.begin_step(key.as_bytes()) {
                continue;
            }
            let result = self.payout_step(payout, &key).await;
            node.end_step(key.as_bytes());
            if let Err(error) = result {
                tracing::debug!(payout, %error, "payout not done; will resume");
            }
        }
        Ok(())
    }

    async fn payout_step(&self, payout: i64, key: &str) -> Result<(), NetError> {
        let node = &self.node;
        let row = sqlx::query(
            "SELECT p.total, p.state, m.bank, m.account FROM mpp_micro_payouts p
             JOIN mpp_merchants m ON m.id = p.merchant WHERE p.id = $1",
        )
        .bind(payout)
        .fetch_one(node.db.pool())
        .await?;
        let state: String = row.try_get("state")?;
        if state != "started" {
            return Ok(());
        }
        let amount = Amount::new(row.try_get("total")?, self.currency());
        let to_bank: String = row.try_get("bank")?;
        let to: String = row.try_get("account")?;
        let (home_bank, home_account) = node
            .me
            .home
            .clone()
            .ok_or_else(|| NetError::Internal("MPP without a home account".into()))?;
        let answer = node
            .move_money_when_funded(
                key,
                (&home_bank, &home_account),
                (&to_bank, &to),
                amount,
                format!("micropayment payout {payout}"),
            )
            .await?;
        match answer {
            BankAnswer::Done(_) => {}
            // Not yet funded (mode two past its own money), refused, or the
            // bank is away: the payout stays started and is retried.
            BankAnswer::Refused(reason) | BankAnswer::Retry(reason) => {
                return Err(NetError::Unavailable(format!("payout {payout}: {reason}")));
            }
        }
        let now = wall_clock();
        sqlx::query(
            "UPDATE mpp_micro_payouts SET state = 'paid', paid_at = $2
             WHERE id = $1 AND state = 'started'",
        )
        .bind(payout)
        .bind(ms(now))
        .execute(node.db.pool())
        .await?;
        Ok(())
    }

    /// The operator's summary of the micropayment books.
    pub(super) async fn micro_summary(&self) -> Result<MppMicroSummary, NetError> {
        let node = &self.node;
        let pool = node.db.pool();
        let currency = self.currency();
        let money = |m: Option<i64>| Amount::new(m.unwrap_or(0), currency).to_string();
        let mut cpps = Vec::new();
        for r in sqlx::query(
            "SELECT cpp, CAST(SUM(total) AS BIGINT) AS received, COUNT(*) AS n FROM mpp_micro_statements
             GROUP BY cpp ORDER BY cpp",
        )
        .fetch_all(pool)
        .await?
        {
            cpps.push(MicroCppRecord {
                cpp: r.try_get("cpp")?,
                received: money(r.try_get("received")?),
                statements: r.try_get("n")?,
            });
        }
        let mut merchants = Vec::new();
        for r in sqlx::query(
            "SELECT m.id, m.name,
                CAST(SUM(CASE WHEN p.state IN ('completed', 'refunded') THEN p.amount ELSE 0 END) AS BIGINT) AS confirmed,
                CAST(SUM(CASE WHEN o.state = 'paid' THEN p.amount ELSE 0 END) AS BIGINT) AS paid_out,
                CAST(SUM(CASE WHEN o.state = 'started' THEN p.amount ELSE 0 END) AS BIGINT) AS paying,
                CAST(SUM(CASE WHEN p.payout IS NULL AND p.state IN ('completed', 'refunded')
                    THEN p.amount ELSE 0 END) AS BIGINT) AS owed
             FROM mpp_payments p JOIN mpp_merchants m ON m.id = p.merchant
             LEFT JOIN mpp_micro_payouts o ON o.id = p.payout
             WHERE p.micro = 1 GROUP BY m.id, m.name ORDER BY m.name",
        )
        .fetch_all(pool)
        .await?
        {
            let id: Vec<u8> = r.try_get("id")?;
            merchants.push(MicroMerchantRecord {
                merchant: PartyId(id.try_into().map_err(|_| corrupt("merchant"))?).to_hex(),
                name: r.try_get("name")?,
                confirmed: money(r.try_get("confirmed")?),
                paid_out: money(r.try_get("paid_out")?),
                paying: money(r.try_get("paying")?),
                owed: money(r.try_get("owed")?),
            });
        }
        let advanced: Option<i64> = sqlx::query(
            "SELECT CAST(SUM(amount) AS BIGINT) AS used FROM mpp_payments
             WHERE micro = 1 AND payout IS NOT NULL AND funded = 0",
        )
        .fetch_one(pool)
        .await?
        .try_get("used")?;
        let payouts_started: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM mpp_micro_payouts WHERE state = 'started'")
                .fetch_one(pool)
                .await?
                .try_get("n")?;
        Ok(MppMicroSummary {
            mode: format!("{:?}", node.config.micro.mode).to_lowercase(),
            advanced: money(advanced),
            credit_limit: self.micro.map(|m| m.credit_limit.to_string()),
            payouts_started,
            cpps,
            merchants,
        })
    }
}
