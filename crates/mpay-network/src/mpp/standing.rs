//! Standing approvals of micropayments at the MPP
//! ([`mpay_semops::StandingApproval`]).
//!
//! A merchant sets one (`POST /v1/standing-approval`, signed by its key), and
//! from then on a micropayment whose PN arrives in time, within the amount
//! per payment and the period's budget, is approved in the transaction that
//! records the PN: state `approved`, the relay (authority: the standing
//! approval applied to the payment) queued to the DC, the period's use
//! raised. The merchant never sees it as a notice; it sees the payment as
//! `approved` and then `completed`, marked `standing`. Anything the approval
//! does not cover waits for the merchant's decision, as without one.
//!
//! One approval per merchant stands: a new one replaces it only if signed
//! after it (and after the last withdrawal), so a captured old approval
//! cannot be set again. `DELETE /v1/standing-approval` withdraws it at once.
//! The period's use is never given back (a payment approved and then
//! expired still counted): the budget bounds what the MPP approves in the
//! merchant's name.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use mpay_http::{Json, Problem};
use mpay_identity::{PartyId, Timestamp};
use mpay_money::Amount;
use mpay_semops::{Authority, SignedStandingApproval, StandingApproval};
use mpay_sql::Tx;
use mpay_sql::sqlx::{self, Row};
use mpay_wire::{Decode, Encode};

use super::{Merchant, Mpp, corrupt};
use crate::api::{NetError, from_hex_wire, ms, wall_clock};
use crate::client::{SignedBody, StandingApprovalView, Withdrawn};

impl Mpp {
    /// The standing approval in force for `merchant` at `now`, if any, with
    /// the use of `now`'s period so far.
    async fn standing_in(
        tx: &mut Tx<'_>,
        merchant: PartyId,
        now: Timestamp,
    ) -> Result<Option<(SignedStandingApproval, i64)>, NetError> {
        let row = sqlx::query("SELECT approval FROM mpp_standing_approvals WHERE merchant = $1")
            .bind(&merchant.0[..])
            .fetch_optional(&mut **tx)
            .await?;
        let Some(bytes) = row
            .map(|r| r.try_get::<Option<Vec<u8>>, _>("approval"))
            .transpose()?
            .flatten()
        else {
            return Ok(None);
        };
        let approval =
            SignedStandingApproval::from_wire(&bytes).map_err(|_| corrupt("standing approval"))?;
        let period = approval.unverified_body().period_of(now);
        let used = period_use(tx, merchant, period).await?;
        Ok(Some((approval, used)))
    }

    /// In the transaction that records a micropayment's PN in time: approves
    /// it under the merchant's standing approval if one covers it, raising
    /// the period's use. Returns the authority to relay, or `None` (the
    /// merchant decides, as without one).
    pub(super) async fn apply_standing(
        tx: &mut Tx<'_>,
        merchant: PartyId,
        payment_id: [u8; 16],
        amount: Amount,
        now: Timestamp,
    ) -> Result<Option<Authority>, NetError> {
        let Some((approval, used)) = Self::standing_in(tx, merchant, now).await? else {
            return Ok(None);
        };
        let taken = match approval.unverified_body().admits(amount, used, now) {
            Ok(taken) => taken,
            Err(not_covered) => {
                tracing::debug!(%not_covered, "micropayment left to the merchant");
                return Ok(None);
            }
        };
        let period = i64::try_from(taken.period).map_err(|_| corrupt("period"))?;
        let updated = sqlx::query(
            "UPDATE mpp_standing_usage SET used = $3 WHERE merchant = $1 AND period = $2",
        )
        .bind(&merchant.0[..])
        .bind(period)
        .bind(taken.used_after)
        .execute(&mut **tx)
        .await?;
        if updated.rows_affected() == 0 {
            // The period's first approval: the earlier periods' use is not
            // needed any more.
            sqlx::query("DELETE FROM mpp_standing_usage WHERE merchant = $1 AND period <> $2")
                .bind(&merchant.0[..])
                .bind(period)
                .execute(&mut **tx)
                .await?;
            sqlx::query(
                "INSERT INTO mpp_standing_usage (merchant, period, used) VALUES ($1, $2, $3)",
            )
            .bind(&merchant.0[..])
            .bind(period)
            .bind(taken.used_after)
            .execute(&mut **tx)
            .await?;
        }
        Ok(Some(Authority::Standing {
            payment_id,
            approval,
        }))
    }

    async fn standing_view(
        &self,
        merchant: &Merchant,
        now: Timestamp,
    ) -> Result<StandingApprovalView, NetError> {
        let merchant_id = merchant.id;
        let found = self
            .node
            .db
            .with_retry(move |tx| Box::pin(Self::standing_in(tx, merchant_id, now)))
            .await?;
        let (approval, used) = found.ok_or(NetError::NotFound {
            what: "standing approval",
        })?;
        Ok(view(approval.unverified_body(), used, now))
    }
}

fn view(a: &StandingApproval, used: i64, now: Timestamp) -> StandingApprovalView {
    StandingApprovalView {
        per_payment_max: a.per_payment_max.to_string(),
        period_max: a.period_max.to_string(),
        period_ms: a.period_ms,
        signed_at: a.signed_at.as_millis(),
        expires_at: a.expires_at.as_millis(),
        in_force: a.in_force_during(now, now),
        used_in_period: Amount::new(used, a.period_max.currency()).to_string(),
    }
}

async fn period_use(tx: &mut Tx<'_>, merchant: PartyId, period: u64) -> Result<i64, NetError> {
    let Ok(period) = i64::try_from(period) else {
        return Ok(0);
    };
    let used: Option<i64> =
        sqlx::query("SELECT used FROM mpp_standing_usage WHERE merchant = $1 AND period = $2")
            .bind(&merchant.0[..])
            .bind(period)
            .fetch_optional(&mut **tx)
            .await?
            .map(|r| r.try_get("used"))
            .transpose()?;
    Ok(used.unwrap_or(0))
}

/// The latest instant a merchant's standing approvals were set or withdrawn
/// at: a new one must be signed after it.
async fn latest(tx: &mut Tx<'_>, merchant: PartyId) -> Result<Option<i64>, NetError> {
    Ok(
        sqlx::query("SELECT latest FROM mpp_standing_approvals WHERE merchant = $1")
            .bind(&merchant.0[..])
            .fetch_optional(&mut **tx)
            .await?
            .map(|r| r.try_get("latest"))
            .transpose()?,
    )
}

#[utoipa::path(post, path = "/v1/standing-approval", tag = "merchants", security(("merchant" = [])),
    request_body(content = SignedBody, description = "hex of a SignedStandingApproval for this MPP, signed after the merchant's last one"),
    responses((status = 200, description = "the standing approval now in force", body = StandingApprovalView)))]
pub(super) async fn set(
    State(mpp): State<Arc<Mpp>>,
    headers: HeaderMap,
    body: Result<Json<SignedBody>, Problem>,
) -> Result<Json<StandingApprovalView>, NetError> {
    let merchant = mpp.merchant_by_token(&headers).await?;
    let Json(body) = body?;
    let signed: SignedStandingApproval = from_hex_wire("standing approval", &body.signed)?;
    let now = wall_clock();
    let approval = signed
        .verify(&merchant.certificate, now)
        .map_err(|e| NetError::Refused(format!("standing approval: {e}")))?
        .clone();
    if approval.mpp != mpp.node.me.id {
        return Err(NetError::Refused(
            "a standing approval for another MPP".into(),
        ));
    }
    if approval.period_max.currency() != mpp.currency() {
        return Err(NetError::Invalid(format!(
            "this MPP pays in {}",
            mpp.currency()
        )));
    }
    let wire = signed.to_wire();
    let (merchant_id, bytes) = (merchant.id, &wire);
    let signed_at = ms(approval.signed_at);
    mpp.node
        .db
        .with_retry(move |tx| {
            Box::pin(async move {
                match latest(tx, merchant_id).await? {
                    Some(last) if signed_at <= last => {
                        return Err(NetError::conflict(
                            "stale_standing_approval",
                            "a standing approval must be signed after the last one set or withdrawn",
                        ));
                    }
                    Some(_) => {
                        sqlx::query(
                            "UPDATE mpp_standing_approvals SET approval = $2, latest = $3
                             WHERE merchant = $1",
                        )
                        .bind(&merchant_id.0[..])
                        .bind(&bytes[..])
                        .bind(signed_at)
                        .execute(&mut **tx)
                        .await?;
                    }
                    None => {
                        sqlx::query(
                            "INSERT INTO mpp_standing_approvals (merchant, approval, latest)
                             VALUES ($1, $2, $3)",
                        )
                        .bind(&merchant_id.0[..])
                        .bind(&bytes[..])
                        .bind(signed_at)
                        .execute(&mut **tx)
                        .await?;
                    }
                }
                Ok::<_, NetError>(())
            })
        })
        .await?;
    tracing::info!(merchant = %merchant.id.to_hex(), "standing approval set");
    Ok(Json(mpp.standing_view(&merchant, now).await?))
}

#[utoipa::path(get, path = "/v1/standing-approval", tag = "merchants", security(("merchant" = [])),
    responses((status = 200, description = "the merchant's standing approval and its use this period", body = StandingApprovalView)))]
pub(super) async fn show(
    State(mpp): State<Arc<Mpp>>,
    headers: HeaderMap,
) -> Result<Json<StandingApprovalView>, NetError> {
    let merchant = mpp.merchant_by_token(&headers).await?;
    Ok(Json(mpp.standing_view(&merchant, wall_clock()).await?))
}

#[utoipa::path(delete, path = "/v1/standing-approval", tag = "merchants", security(("merchant" = [])),
    responses((status = 200, description = "whether a standing approval was withdrawn; micropayments from now on wait for the merchant's decision", body = Withdrawn)))]
pub(super) async fn withdraw(
    State(mpp): State<Arc<Mpp>>,
    headers: HeaderMap,
) -> Result<Json<Withdrawn>, NetError> {
    let merchant = mpp.merchant_by_token(&headers).await?;
    let now = ms(wall_clock());
    let merchant_id = merchant.id;
    let withdrawn = mpp
        .node
        .db
        .with_retry(move |tx| {
            Box::pin(async move {
                let Some(last) = latest(tx, merchant_id).await? else {
                    return Ok(false);
                };
                let done = sqlx::query(
                    "UPDATE mpp_standing_approvals SET approval = NULL, latest = $2
                     WHERE merchant = $1 AND approval IS NOT NULL",
                )
                .bind(&merchant_id.0[..])
                .bind(last.max(now))
                .execute(&mut **tx)
                .await?;
                Ok::<_, NetError>(done.rows_affected() == 1)
            })
        })
        .await?;
    if withdrawn {
        tracing::info!(merchant = %merchant.id.to_hex(), "standing approval withdrawn");
    }
    Ok(Json(Withdrawn { withdrawn }))
}
