//! The merchant payment processor (DESIGN §3.2 steps 5–7).
//!
//! # Routes
//!
//! | method and path | who | body → answer |
//! |---|---|---|
//! | `POST /v1/merchants` | operator | [`EnrolMerchant`] → `{id, certificate, token}` |
//! | `GET /v1/merchants/{id}` | anyone (CPPs) | → `{id, certificate}` |
//! | `GET /v1/notices?wait_ms=` | merchant | → `[Notice]` awaiting its decision (long-poll) |
//! | `POST /v1/decisions` | merchant | `{signed: hex SignedMerchantDecision}` → [`MerchantPaymentView`] |
//! | `POST /v1/standing-approval` | merchant | `{signed: hex SignedStandingApproval}` → [`StandingApprovalView`] |
//! | `GET /v1/standing-approval` | merchant | → [`StandingApprovalView`] (404 when none) |
//! | `DELETE /v1/standing-approval` | merchant | → `{withdrawn}` |
//! | `POST /v1/refunds` | merchant | `{signed: hex SignedRefundRequest}` → [`RefundView`] |
//! | `GET /v1/payments/{id}?wait_ms=` | its merchant | → [`MerchantPaymentView`] (long-poll until final) |
//! | `GET /v1/admin/payments?after=&limit=` | operator | → `[MppPaymentRecord]` |
//! | `POST /v1/inbox` | the region's DC | sealed PAYMENT_NOTICE / CONFIRMATION → [`InboxAnswer`] |
//! | `GET /v1/identity`, `/health`, `/metrics`, `/openapi.json` | anyone | |
//!
//! # A payment's states at the MPP ([`MerchantState`])
//!
//! The core decides them (`mpay_processor::merchant::step`: a decision only
//! while awaiting one and before the hop deadline, the CPP's confirmation
//! once, refunded only once completed); this driver loads the payment,
//! stores the step and queues its effects in one transaction.
//!
//! The merchant sees the CPP's pseudonym of the customer, never who it is.
//! A refund (`funding` → `relayed` → `refunded`, or `failed`) first moves
//! the money from the merchant's account to the CPP's (at the CPP's home
//! bank; idempotency key `mpp-refund-<payment>-<key>`), then relays the
//! merchant's signed request to the CPP, which pays the customer.
//!
//! A merchant's standing approval of micropayments (module `standing`)
//! lets the MPP approve a micropayment in the transaction that records its
//! PN, without asking the merchant.
//!
//! Micropayments (`[micro] mode = "one" | "two"`, module `micro`): the CPPs
//! pay for them by net settlement with a signed statement to this inbox
//! (kind [`crate::micro::MICRO_SETTLEMENT`], from any CPP), and the MPP
//! pays its merchants by payouts. `GET /v1/admin/micro` (operator) shows
//! those books.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use mpay_bank::AccountId;
use mpay_http::{Body, Json, Path, Problem, Query};
use mpay_identity::{Certificate, CertificateBody, PartyId, PublicKeys, Role, Timestamp};
use mpay_money::Amount;
use mpay_processor::merchant;
use mpay_processor::refund::{self, State as RefundState};
use mpay_processor::saga;
use mpay_semops::{
    Authority, ConfirmationOutcome, Decision, DecisionRelay, RefundRelay, RoutedNotice,
    SemopsError, Signed, SignedConfirmation, SignedMerchantDecision, SignedPaymentNotice,
    SignedRefundRequest, kind,
};
use mpay_sql::sqlx::{self, Row, any::AnyRow};
use mpay_sql::{Db, Migrations, idempotency};
use mpay_wire::{Decode, Encode};
use tokio::net::TcpListener;

use crate::api::{
    MERCHANT, NetError, OPERATOR, REQUEST_BODY_LEN_MAX, bearer, from_hex_wire, hex, id16, ms, ts,
    wall_clock,
};
use crate::client::{
    DECISIONS_BATCH_MAX, DecisionBatch, DecisionResult, EnrolMerchant, Enrolled, Identity,
    InboxAnswer, MerchantPaymentView, MppPaymentRecord, Notice, Page, RefundView, SignedBody, Wait,
};
use crate::config::{MicroMode, MicroSettings, ServiceConfig};
use crate::directory::ServiceRole;
use crate::money::{BankAnswer, INSUFFICIENT_FUNDS};
use crate::node::{Inbound, Node, Running, ServeError, spawn_loop};

mod micro;
mod standing;

/// The MPP's tables.
pub const MIGRATIONS: Migrations = Migrations::new(
    "mpp",
    &[
        ("0001_mpp", include_str!("../migrations/0001_mpp.sql")),
        (
            "0002_mpp_micro",
            include_str!("../migrations/0002_mpp_micro.sql"),
        ),
        (
            "0003_mpp_standing",
            include_str!("../migrations/0003_mpp_standing.sql"),
        ),
    ],
);

/// Most notices one `GET /v1/notices` returns.
pub const NOTICES_MAX: i64 = 100;
/// Most entries of one operator listing page.
pub const PAGE_MAX: u32 = 1_000;
/// Most refunds one recovery sweep takes on.
pub const SWEEP_BATCH_MAX: i64 = 256;

/// A payment's state at the MPP (the core's).
pub use mpay_processor::merchant::State as MerchantState;

struct Merchant {
    id: PartyId,
    bank: String,
    account: String,
    certificate: Certificate,
}

fn merchant_from_row(row: &AnyRow) -> Result<Merchant, NetError> {
    let id: Vec<u8> = row.try_get("id")?;
    let cert: Vec<u8> = row.try_get("certificate")?;
    Ok(Merchant {
        id: PartyId(id.try_into().map_err(|_| corrupt("merchant id"))?),
        bank: row.try_get("bank")?,
        account: row.try_get("account")?,
        certificate: Certificate::from_wire(&cert).map_err(|_| corrupt("certificate"))?,
    })
}

fn corrupt(what: &str) -> NetError {
    NetError::Internal(format!("stored MPP data: {what}"))
}

struct PaymentRow {
    seq: i64,
    id: [u8; 16],
    merchant: PartyId,
    cpp: String,
    notice: SignedPaymentNotice,
    amount: Amount,
    reference: String,
    pseudonym: Vec<u8>,
    hop_deadline: Timestamp,
    state: MerchantState,
    confirmation: Option<Vec<u8>>,
    refunded: Amount,
    created_at: Timestamp,
    updated_at: Timestamp,
    /// Approved under the merchant's standing approval.
    standing: bool,
}

impl PaymentRow {
    fn from_row(row: &AnyRow, currency: mpay_money::Currency) -> Result<PaymentRow, NetError> {
        let id: Vec<u8> = row.try_get("id")?;
        let merchant: Vec<u8> = row.try_get("merchant")?;
        let notice: Vec<u8> = row.try_get("notice")?;
        let state: String = row.try_get("state")?;
        Ok(PaymentRow {
            seq: row.try_get("seq")?,
            id: id.try_into().map_err(|_| corrupt("id"))?,
            merchant: PartyId(merchant.try_into().map_err(|_| corrupt("merchant"))?),
            cpp: row.try_get("cpp")?,
            notice: SignedPaymentNotice::from_wire(&notice).map_err(|_| corrupt("notice"))?,
            amount: Amount::new(row.try_get("amount")?, currency),
            reference: row.try_get("reference")?,
            pseudonym: row.try_get("pseudonym")?,
            hop_deadline: ts(row.try_get("hop_deadline")?),
            state: MerchantState::parse(&state).ok_or_else(|| corrupt("state"))?,
            confirmation: row.try_get("confirmation")?,
            refunded: Amount::new(row.try_get("refunded")?, currency),
            created_at: ts(row.try_get("created_at")?),
            updated_at: ts(row.try_get("updated_at")?),
            standing: row.try_get::<i64, _>("standing")? != 0,
        })
    }

    fn notice(&self) -> Notice {
        Notice {
            payment_id: hex(&self.id),
            amount: self.amount.to_string(),
            merchant_reference: self.reference.clone(),
            trans_nonce: hex(&self.notice.unverified_body().trans.unverified_body().nonce),
            customer_pseudonym: hex(&self.pseudonym),
            deadline: self.hop_deadline.as_millis(),
            shipping: self.shipping(),
        }
    }

    /// Hex of the sealed shipping details inside the CPP's PN, if any: the
    /// MPP passes them to the merchant unread.
    fn shipping(&self) -> Option<String> {
        let sealed = self.notice.unverified_body().shipping.as_ref()?;
        Some(hex(&sealed.to_wire()))
    }
}

fn refund_view(row: &AnyRow, currency: mpay_money::Currency) -> Result<RefundView, NetError> {
    let id: Vec<u8> = row.try_get("payment_id")?;
    let key: Vec<u8> = row.try_get("refund_key")?;
    let confirmation: Option<Vec<u8>> = row.try_get("confirmation")?;
    Ok(RefundView {
        payment_id: hex(&id),
        refund_key: hex(&key),
        amount: Amount::new(row.try_get("amount")?, currency).to_string(),
        state: row.try_get("state")?,
        transfer_reference: row.try_get("transfer_reference")?,
        confirmation: confirmation.as_deref().map(hex),
    })
}

/// The MPP service.
pub struct Mpp {
    node: Arc<Node>,
    /// Micropayment payouts; `None` when `[micro] mode = "none"`.
    micro: Option<MicroSettings>,
    /// Merchants' decisions taken, and the requests that brought them
    /// (`/metrics`: how well merchants' decisions batch).
    decisions: std::sync::atomic::AtomicU64,
    decision_requests: std::sync::atomic::AtomicU64,
}

/// Runs an MPP until the process is killed.
pub async fn serve(config: ServiceConfig, listener: TcpListener) -> Result<(), ServeError> {
    let db = Db::connect(&config.db).await?;
    start(config, db, listener).await?.wait().await
}

/// Starts an MPP on an open database.
pub async fn start(
    config: ServiceConfig,
    db: Db,
    listener: TcpListener,
) -> Result<Running, ServeError> {
    let node = Arc::new(Node::open(config, db, ServiceRole::Mpp, MIGRATIONS).await?);
    let settings = node.config.micro.settings()?;
    let micro = (settings.mode != MicroMode::None).then_some(settings);
    let mpp = Arc::new(Mpp {
        node: Arc::clone(&node),
        micro,
        decisions: Default::default(),
        decision_requests: Default::default(),
    });
    let recovery = Arc::clone(&mpp);
    let mut tasks = vec![
        node.spawn_delivery(),
        spawn_loop(
            "mpp recovery",
            Duration::from_millis(node.config.timing.recovery_interval_ms),
            move || {
                let mpp = Arc::clone(&recovery);
                async move { mpp.recover().await }
            },
        ),
    ];
    if micro.is_some() {
        let payouts = Arc::clone(&mpp);
        let pause = match node.config.micro.mode {
            // Mode one pays out as statements arrive; this only retries.
            MicroMode::One => node.config.timing.recovery_interval_ms,
            _ => node.config.micro.settle_interval_ms,
        };
        tasks.push(spawn_loop(
            "mpp micro payouts",
            Duration::from_millis(pause),
            move || {
                let mpp = Arc::clone(&payouts);
                async move { mpp.pay_out(wall_clock()).await }
            },
        ));
    }
    let tls = mpp.node.tls.clone();
    Running::start(listener, tls, router(mpp), tasks)
}

/// The MPP's routes.
pub fn router(mpp: Arc<Mpp>) -> Router {
    let app = Router::new()
        .route("/health", get(crate::api::health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/v1/identity", get(identity))
        .route("/v1/merchants", post(enrol))
        .route("/v1/merchants/{id}", get(merchant_certificate))
        .route("/v1/notices", get(notices))
        .route("/v1/decisions", post(decide))
        .route("/v1/decisions/batch", post(decide_batch))
        .route(
            "/v1/standing-approval",
            post(standing::set)
                .get(standing::show)
                .delete(standing::withdraw),
        )
        .route("/v1/refunds", post(refund))
        .route("/v1/payments/{id}", get(payment))
        .route("/v1/admin/payments", get(admin_payments))
        .route("/v1/admin/micro", get(admin_micro))
        .route("/v1/admin/work", get(admin_work))
        .route("/v1/inbox", post(inbox))
        .with_state(mpp);
    mpay_http::harden(app, REQUEST_BODY_LEN_MAX)
}

impl Mpp {
    fn currency(&self) -> mpay_money::Currency {
        self.node.directory.currency
    }

    fn token_hash(&self, token: &str) -> [u8; 32] {
        self.node
            .keyed_hash("mpp merchant token", &[token.as_bytes()])
    }

    async fn merchant_by_token(&self, headers: &HeaderMap) -> Result<Merchant, NetError> {
        let token = bearer(headers).ok_or(NetError::Unauthenticated)?;
        let row = sqlx::query("SELECT * FROM mpp_merchants WHERE token_hash = $1")
            .bind(&self.token_hash(token)[..])
            .fetch_optional(self.node.db.pool())
            .await?
            .ok_or(NetError::Unauthenticated)?;
        merchant_from_row(&row)
    }

    /// The signed relay of the merchant's word on a payment, with where the
    /// merchant is paid.
    fn relay(&self, merchant: &Merchant, authority: Authority) -> Result<Vec<u8>, NetError> {
        let node = &self.node;
        Ok(Signed::sign(
            DecisionRelay {
                authority,
                mpp: node.me.id,
                payout_bank: node
                    .directory
                    .bank(&merchant.bank)
                    .ok_or_else(|| corrupt("merchant bank"))?
                    .id,
                payout_account: merchant.account.clone(),
            },
            &node.keys,
        )
        .map_err(|e| NetError::Internal(e.to_string()))?
        .to_wire())
    }

    async fn merchant_by_id(&self, id: PartyId) -> Result<Option<Merchant>, NetError> {
        let row = sqlx::query("SELECT * FROM mpp_merchants WHERE id = $1")
            .bind(&id.0[..])
            .fetch_optional(self.node.db.pool())
            .await?;
        row.as_ref().map(merchant_from_row).transpose()
    }

    async fn load(&self, id: &[u8; 16]) -> Result<Option<PaymentRow>, NetError> {
        let row = sqlx::query("SELECT * FROM mpp_payments WHERE id = $1")
            .bind(&id[..])
            .fetch_optional(self.node.db.pool())
            .await?;
        row.map(|r| PaymentRow::from_row(&r, self.currency()))
            .transpose()
    }

    async fn view(&self, id: &[u8; 16]) -> Result<(MerchantPaymentView, bool), NetError> {
        let row = self
            .load(id)
            .await?
            .ok_or(NetError::NotFound { what: "payment" })?;
        let refunds = sqlx::query(
            "SELECT * FROM mpp_refunds WHERE payment_id = $1 ORDER BY created_at, refund_key",
        )
        .bind(&id[..])
        .fetch_all(self.node.db.pool())
        .await?;
        let refunds = refunds
            .iter()
            .map(|r| refund_view(r, self.currency()))
            .collect::<Result<Vec<_>, _>>()?;
        let refunds_done = refunds
            .iter()
            .all(|r| !RefundState::parse(&r.state).is_some_and(RefundState::is_in_flight));
        let done = matches!(
            row.state,
            MerchantState::Completed
                | MerchantState::Rejected
                | MerchantState::Expired
                | MerchantState::Refunded
        ) && row.confirmation.is_some()
            && refunds_done;
        Ok((
            MerchantPaymentView {
                payment_id: hex(&row.id),
                state: row.state.as_str().to_owned(),
                amount: row.amount.to_string(),
                merchant_reference: row.reference.clone(),
                customer_pseudonym: hex(&row.pseudonym),
                trans_nonce: hex(&row.notice.unverified_body().trans.unverified_body().nonce),
                shipping: row.shipping(),
                deadline: row.hop_deadline.as_millis(),
                standing: row.standing,
                refunded: row.refunded.to_string(),
                confirmation: row.confirmation.as_deref().map(hex),
                refunds,
            },
            done,
        ))
    }

    async fn on_inbox(
        self: &Arc<Self>,
        inbound: Inbound,
        now: Timestamp,
    ) -> Result<String, NetError> {
        let k = inbound.header.kind;
        if k == crate::micro::MICRO_SETTLEMENT {
            // Any region's CPP pays this MPP directly.
            self.node
                .check_sender(&inbound.sender, &[ServiceRole::Cpp], false)?;
            return self
                .on_statement(&inbound.sender, &inbound.payload, now)
                .await;
        }
        self.node
            .check_sender(&inbound.sender, &[ServiceRole::Dc], true)?;
        if k == kind::PAYMENT_NOTICE {
            self.on_notice(&inbound.payload, now).await
        } else if k == kind::CONFIRMATION {
            self.on_confirmation(&inbound.payload, now).await
        } else {
            Err(NetError::Refused(format!(
                "an MPP does not take kind {:#06x}",
                k.0
            )))
        }
    }

    async fn on_notice(&self, payload: &[u8], now: Timestamp) -> Result<String, NetError> {
        let node = &self.node;
        let routed =
            RoutedNotice::from_wire(payload).map_err(|e| NetError::Refused(e.to_string()))?;
        let pn = routed.notice.unverified_body().clone();
        let cpp = node
            .directory
            .service_by_id(pn.cpp)
            .filter(|s| s.role == ServiceRole::Cpp)
            .ok_or_else(|| NetError::Refused("PN of an unknown CPP".into()))?
            .clone();
        let mut late = match routed.notice.verify(&cpp.certificate, now) {
            Ok(_) => false,
            Err(SemopsError::Expired { .. }) => true,
            Err(e) => return Err(NetError::Refused(format!("PN: {e}"))),
        };
        let trans = pn.trans.unverified_body();
        if trans.mpp != node.me.id {
            return Err(NetError::Refused("the TRANS names another MPP".into()));
        }
        let merchant = self
            .merchant_by_id(trans.merchant)
            .await?
            .ok_or_else(|| NetError::Refused("the TRANS names no merchant of this MPP".into()))?;
        match pn.trans.verify(&merchant.certificate, now) {
            Ok(_) => {}
            Err(SemopsError::Expired { .. }) => late = true,
            Err(e) => return Err(NetError::Refused(format!("TRANS: {e}"))),
        }
        if now >= routed.deadline {
            late = true;
        }
        let noticed = merchant::Payment::noticed(late);
        let id = pn.payment_id;
        let notice = routed.notice.to_wire();
        let (notice, cpp_name) = (&notice, &cpp.name);
        let (merchant_id, amount, reference, pseudonym) = (
            merchant.id,
            trans.amount,
            trans.merchant_reference.as_str(),
            &pn.customer_pseudonym[..],
        );
        let micro = pn.class == mpay_semops::AmountClass::Micro;
        let dc = node.my_dc()?.name.clone();
        let (dc, merchant_ref) = (&dc, &merchant);
        let outcome = node
            .db
            .with_retry(move |tx| {
                Box::pin(async move {
                    let existing = sqlx::query("SELECT state FROM mpp_payments WHERE id = $1")
                        .bind(&id[..])
                        .fetch_optional(&mut **tx)
                        .await?;
                    if existing.is_some() {
                        return Ok("duplicate");
                    }
                    // A micropayment in time may be approved at once under
                    // the merchant's standing approval.
                    let standing = if micro && !late {
                        Mpp::apply_standing(tx, merchant_id, id, amount, now).await?
                    } else {
                        None
                    };
                    let state = match &standing {
                        Some(_) => {
                            let input = merchant::Input::Decided {
                                approve: true,
                                deadline_ms: routed.deadline.as_millis(),
                            };
                            merchant::step(noticed, input, now.as_millis())
                                .map_err(|illegal| NetError::Internal(illegal.to_string()))?
                                .payment
                                .state
                        }
                        None => noticed.state,
                    };
                    sqlx::query(
                        "INSERT INTO mpp_payments (id, merchant, cpp, notice, amount, reference,
                            pseudonym, hop_deadline, state, refunded, created_at, updated_at, micro,
                            standing)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $10, $11, $12)",
                    )
                    .bind(&id[..])
                    .bind(&merchant_id.0[..])
                    .bind(cpp_name.as_str())
                    .bind(&notice[..])
                    .bind(amount.minor_units())
                    .bind(reference)
                    .bind(pseudonym)
                    .bind(ms(routed.deadline))
                    .bind(state.as_str())
                    .bind(ms(now))
                    .bind(i64::from(micro))
                    .bind(i64::from(standing.is_some()))
                    .execute(&mut **tx)
                    .await?;
                    let Some(authority) = standing else {
                        return Ok(if late { "late" } else { "applied" });
                    };
                    let relay = self.relay(merchant_ref, authority)?;
                    Node::enqueue(
                        tx,
                        dc,
                        kind::DECISION_RELAY,
                        id,
                        &relay,
                        &format!("decision-{}", hex(&id)),
                        now,
                    )
                    .await?;
                    Ok::<_, NetError>("approved")
                })
            })
            .await?;
        if outcome == "approved" {
            node.kick.notify_one();
            return Ok("applied".to_owned());
        }
        node.waiters.wake(merchant.id.0);
        Ok(outcome.to_owned())
    }

    async fn on_confirmation(&self, payload: &[u8], now: Timestamp) -> Result<String, NetError> {
        let node = &self.node;
        let confirmation =
            SignedConfirmation::from_wire(payload).map_err(|e| NetError::Refused(e.to_string()))?;
        let id = confirmation.unverified_body().payment_id;
        let row = self
            .load(&id)
            .await?
            .ok_or_else(|| NetError::Refused("confirmation of an unknown payment".into()))?;
        let cpp = node
            .directory
            .service(&row.cpp)
            .ok_or_else(|| corrupt("CPP no longer in the directory"))?;
        let body = confirmation
            .verify(&cpp.certificate, now)
            .map_err(|e| NetError::Refused(format!("confirmation: {e}")))?
            .clone();
        let outcome = match body.outcome {
            ConfirmationOutcome::Transferred | ConfirmationOutcome::DelayedTransfer => {
                Some(merchant::Outcome::Transferred)
            }
            ConfirmationOutcome::Rejected { .. } => Some(merchant::Outcome::Rejected),
            ConfirmationOutcome::Expired => Some(merchant::Outcome::Expired),
            ConfirmationOutcome::Refunded => None,
        };
        // The payment's own outcome goes through the core; a refund's
        // confirmation goes to its saga below. The update keeps the guard
        // `confirmation IS NULL` against a confirmation applied meanwhile.
        let current = merchant::Payment {
            state: row.state,
            confirmed: row.confirmation.is_some(),
        };
        let next = match outcome
            .map(|o| merchant::step(current, merchant::Input::Confirmed(o), now.as_millis()))
        {
            None => None,
            Some(Ok(step)) => Some(step.payment.state),
            Some(Err(merchant::Illegal::AlreadyConfirmed)) => return Ok("duplicate".to_owned()),
            Some(Err(illegal)) => return Err(NetError::Internal(illegal.to_string())),
        };
        let amount = body.amount.minor_units();
        let outcome = node
            .db
            .with_retry(move |tx| {
                Box::pin(async move {
                    match next {
                        Some(state) => {
                            let updated = sqlx::query(
                                "UPDATE mpp_payments SET state = $2, confirmation = $3,
                                    updated_at = $4 WHERE id = $1 AND confirmation IS NULL",
                            )
                            .bind(&id[..])
                            .bind(state.as_str())
                            .bind(payload)
                            .bind(ms(now))
                            .execute(&mut **tx)
                            .await?;
                            Ok::<_, NetError>(if updated.rows_affected() == 1 {
                                "applied"
                            } else {
                                "duplicate"
                            })
                        }
                        None => {
                            let same = sqlx::query(
                                "SELECT refund_key FROM mpp_refunds
                                 WHERE payment_id = $1 AND confirmation = $2",
                            )
                            .bind(&id[..])
                            .bind(payload)
                            .fetch_optional(&mut **tx)
                            .await?;
                            if same.is_some() {
                                return Ok("duplicate");
                            }
                            // The oldest relayed refund of this amount.
                            let refund = sqlx::query(
                                "SELECT refund_key FROM mpp_refunds
                                 WHERE payment_id = $1 AND state = $3 AND amount = $2
                                 ORDER BY created_at, refund_key LIMIT 1",
                            )
                            .bind(&id[..])
                            .bind(amount)
                            .bind(RefundState::Relayed.as_str())
                            .fetch_optional(&mut **tx)
                            .await?
                            .ok_or_else(|| {
                                NetError::Refused("refund confirmation without a refund".into())
                            })?;
                            let key: Vec<u8> = refund.try_get("refund_key")?;
                            let (state, effects) =
                                refund::step(RefundState::Relayed, refund::Input::Confirmed)
                                    .map_err(|illegal| NetError::Internal(illegal.to_string()))?;
                            sqlx::query(
                                "UPDATE mpp_refunds SET state = $5, confirmation = $3,
                                    updated_at = $4 WHERE payment_id = $1 AND refund_key = $2",
                            )
                            .bind(&id[..])
                            .bind(&key[..])
                            .bind(payload)
                            .bind(ms(now))
                            .bind(state.as_str())
                            .execute(&mut **tx)
                            .await?;
                            if effects.contains(&refund::Effect::MaybeRefundedInFull) {
                                sqlx::query(
                                    "UPDATE mpp_payments SET state = $3, updated_at = $2
                                     WHERE id = $1 AND state = $4 AND refunded = amount
                                       AND NOT EXISTS (SELECT 1 FROM mpp_refunds
                                           WHERE payment_id = $1 AND state IN ($5, $6, $7))",
                                )
                                .bind(&id[..])
                                .bind(ms(now))
                                .bind(MerchantState::Refunded.as_str())
                                .bind(MerchantState::Completed.as_str())
                                .bind(RefundState::Funding.as_str())
                                .bind(RefundState::Relayed.as_str())
                                .bind(RefundState::Refunding.as_str())
                                .execute(&mut **tx)
                                .await?;
                            }
                            Ok("applied")
                        }
                    }
                })
            })
            .await?;
        node.waiters.wake(id);
        Ok(outcome.to_owned())
    }

    async fn recover(self: &Arc<Self>) -> Result<(), NetError> {
        let rows =
            sqlx::query("SELECT payment_id, refund_key FROM mpp_refunds WHERE state = $2 LIMIT $1")
                .bind(SWEEP_BATCH_MAX)
                .bind(RefundState::Funding.as_str())
                .fetch_all(self.node.db.pool())
                .await?;
        for row in rows {
            let id: Vec<u8> = row.try_get("payment_id")?;
            let key: Vec<u8> = row.try_get("refund_key")?;
            if let (Ok(id), Ok(key)) = (<[u8; 16]>::try_from(id), <[u8; 16]>::try_from(key)) {
                let mpp = Arc::clone(self);
                tokio::spawn(async move { mpp.drive_refund(id, key).await });
            }
        }
        Ok(())
    }

    async fn drive_refund(&self, id: [u8; 16], key: [u8; 16]) {
        let mut step = id.to_vec();
        step.extend_from_slice(&key);
        if !self.node.begin_step(&step) {
            return;
        }
        if let Err(error) = self.refund_step(id, key).await {
            tracing::debug!(payment = hex(&id), %error, "refund step not done; will resume");
        }
        self.node.end_step(&step);
    }

    /// Moves the refund from the merchant's account to the CPP's, then
    /// relays the merchant's request toward the CPP.
    async fn refund_step(&self, id: [u8; 16], key: [u8; 16]) -> Result<(), NetError> {
        let node = &self.node;
        let refund = sqlx::query(
            "SELECT amount, state, request FROM mpp_refunds
             WHERE payment_id = $1 AND refund_key = $2",
        )
        .bind(&id[..])
        .bind(&key[..])
        .fetch_optional(node.db.pool())
        .await?
        .ok_or(NetError::NotFound { what: "refund" })?;
        let state: String = refund.try_get("state")?;
        if RefundState::parse(&state) != Some(RefundState::Funding) {
            return Ok(());
        }
        let amount = Amount::new(refund.try_get("amount")?, self.currency());
        let request: Vec<u8> = refund.try_get("request")?;
        let request = SignedRefundRequest::from_wire(&request).map_err(|_| corrupt("request"))?;
        let row = self
            .load(&id)
            .await?
            .ok_or(NetError::NotFound { what: "payment" })?;
        let merchant = self
            .merchant_by_id(row.merchant)
            .await?
            .ok_or_else(|| corrupt("merchant"))?;
        let cpp = node
            .directory
            .service(&row.cpp)
            .ok_or_else(|| corrupt("CPP no longer in the directory"))?;
        let (cpp_bank, cpp_account) = cpp.home.clone().ok_or_else(|| corrupt("CPP home"))?;
        let base = saga::refund_key(refund::Leg::Mpp, &hex(&id), &hex(&key));
        let reference = format!("refund of payment {}", hex(&id));
        let answer = node
            .move_money_when_funded(
                &base,
                (&merchant.bank, &merchant.account),
                (&cpp_bank, &cpp_account),
                amount,
                reference,
            )
            .await?;
        let now = wall_clock();
        let dc = node.my_dc()?.name.clone();
        let (input, reference, relay) = match answer {
            BankAnswer::Done(reference) => {
                let relay = Signed::sign(
                    RefundRelay {
                        refund: request,
                        mpp: node.me.id,
                        transfer_reference: reference.clone(),
                    },
                    &node.keys,
                )
                .map_err(|e| NetError::Internal(e.to_string()))?
                .to_wire();
                (refund::Input::Moved, Some(reference), Some(relay))
            }
            BankAnswer::Retry(reason) => return Err(NetError::Unavailable(reason)),
            BankAnswer::Refused(code) => {
                let answer = if code == INSUFFICIENT_FUNDS {
                    saga::TransferAnswer::InsufficientFunds
                } else {
                    saga::TransferAnswer::Refused
                };
                // The payment may still be on its way to the merchant's
                // account between banks: the refund waits (`funding`) until
                // it is covered.
                let input = saga::after_refund_transfer(answer).ok_or_else(|| {
                    NetError::Unavailable("merchant's account does not cover it yet".into())
                })?;
                tracing::warn!(payment = hex(&id), %code, "refund transfer refused");
                (input, Some(code), None)
            }
        };
        let (state, effects) = refund::step(RefundState::Funding, input)
            .map_err(|illegal| NetError::Internal(illegal.to_string()))?;
        let (dc, reference, relay, effects) = (&dc, &reference, &relay, &effects);
        node.db
            .with_retry(move |tx| {
                Box::pin(async move {
                    let updated = sqlx::query(
                        "UPDATE mpp_refunds SET state = $3, transfer_reference = $4,
                            reason = $5, updated_at = $6
                         WHERE payment_id = $1 AND refund_key = $2 AND state = $7",
                    )
                    .bind(&id[..])
                    .bind(&key[..])
                    .bind(state.as_str())
                    .bind(relay.as_ref().and(reference.as_deref()))
                    .bind(relay.is_none().then_some(reference.as_deref()).flatten())
                    .bind(ms(now))
                    .bind(RefundState::Funding.as_str())
                    .execute(&mut **tx)
                    .await?;
                    if updated.rows_affected() != 1 {
                        return Ok(());
                    }
                    if let (true, Some(relay)) =
                        (effects.contains(&refund::Effect::SendRelay), relay)
                    {
                        Node::enqueue(
                            tx,
                            dc,
                            kind::REFUND_RELAY,
                            id,
                            relay,
                            &format!("refund-{}-{}", hex(&id), hex(&key)),
                            now,
                        )
                        .await?;
                    }
                    if effects.contains(&refund::Effect::Release) {
                        sqlx::query(
                            "UPDATE mpp_payments SET refunded = refunded - $2, updated_at = $3
                             WHERE id = $1",
                        )
                        .bind(&id[..])
                        .bind(amount.minor_units())
                        .bind(ms(now))
                        .execute(&mut **tx)
                        .await?;
                    }
                    Ok::<_, NetError>(())
                })
            })
            .await?;
        node.kick.notify_one();
        node.waiters.wake(id);
        Ok(())
    }
}

#[utoipa::path(get, path = "/v1/admin/micro", tag = "operator", security(("operator" = [])),
    responses((status = 200, description = "the micropayment books", body = crate::client::MppMicroSummary)))]
async fn admin_micro(
    State(mpp): State<Arc<Mpp>>,
    headers: HeaderMap,
) -> Result<Json<crate::client::MppMicroSummary>, NetError> {
    mpp.node.check_operator(&headers)?;
    Ok(Json(mpp.micro_summary().await?))
}

#[utoipa::path(post, path = "/v1/inbox", tag = "inbox",
    request_body(content = inline(mpay_http::openapi::Frame), content_type = "application/octet-stream",
        description = "an envelope sealed to this MPP by the region's DC (PAYMENT_NOTICE, CONFIRMATION)"),
    responses((status = 200, description = "taken (or already taken), with the signed ack", body = InboxAnswer)))]
async fn inbox(
    State(mpp): State<Arc<Mpp>>,
    Body(frame): Body,
) -> Result<Json<InboxAnswer>, NetError> {
    let now = wall_clock();
    let answer = mpp
        .node
        .receive(&frame, now, |inbound| {
            let mpp = Arc::clone(&mpp);
            async move { mpp.on_inbox(inbound, now).await }
        })
        .await?;
    Ok(Json(answer))
}

#[utoipa::path(post, path = "/v1/merchants", tag = "merchants", security(("operator" = [])),
    request_body = EnrolMerchant,
    responses((status = 200, description = "enrolled: the merchant's id, certificate and token", body = Enrolled)))]
async fn enrol(
    State(mpp): State<Arc<Mpp>>,
    headers: HeaderMap,
    body: Result<Json<EnrolMerchant>, Problem>,
) -> Result<Json<Enrolled>, NetError> {
    let node = &mpp.node;
    node.check_operator(&headers)?;
    let Json(request) = body?;
    crate::api::checked_name(
        "merchant name",
        &request.name,
        crate::directory::NAME_LEN_MAX,
    )?;
    if node.directory.bank(&request.bank).is_none() {
        return Err(NetError::Invalid(format!(
            "unknown bank `{}`",
            request.bank
        )));
    }
    AccountId::parse(&request.account).map_err(|e| NetError::Invalid(format!("account: {e}")))?;
    if request.account.len() > mpay_semops::RELAY_TEXT_LEN_MAX {
        return Err(NetError::Invalid("account name too long".into()));
    }
    let keys: PublicKeys = from_hex_wire("keys", &request.keys)?;
    let now = wall_clock();
    let id = node.with_rng(PartyId::random);
    let certificate = Certificate::issue(
        CertificateBody {
            subject: id,
            role: Role::Merchant,
            keys,
            limits: None,
            issued_at: now.saturating_sub_ms(crate::cpp::CERTIFICATE_BACKDATE_MS),
            expires_at: now.saturating_add_ms(node.config.timing.certificate_validity_ms),
            issuer: node.me.id,
        },
        &node.keys,
    );
    let token = format!("m-{}{}", hex(&node.random16()), hex(&node.random16()));
    let token_hash = mpp.token_hash(&token);
    let cert_wire = certificate.to_wire();
    let (request, cert_wire, token_hash) = (&request, &cert_wire, &token_hash);
    node.db
        .with_retry(move |tx| {
            Box::pin(async move {
                let exists = sqlx::query("SELECT id FROM mpp_merchants WHERE name = $1")
                    .bind(&request.name)
                    .fetch_optional(&mut **tx)
                    .await?;
                if exists.is_some() {
                    return Err(NetError::conflict(
                        "merchant_exists",
                        "a merchant of this name is enrolled",
                    ));
                }
                sqlx::query(
                    "INSERT INTO mpp_merchants (id, name, bank, account, certificate, token_hash,
                        created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&id.0[..])
                .bind(&request.name)
                .bind(&request.bank)
                .bind(&request.account)
                .bind(&cert_wire[..])
                .bind(&token_hash[..])
                .bind(ms(now))
                .execute(&mut **tx)
                .await?;
                Ok(())
            })
        })
        .await?;
    Ok(Json(Enrolled {
        id: id.to_hex(),
        certificate: hex(&certificate.to_wire()),
        token: Some(token),
    }))
}

#[utoipa::path(get, path = "/v1/merchants/{id}", tag = "merchants",
    params(("id" = String, Path, description = "the merchant's party id, 32 hex digits", pattern = "^[0-9a-f]{32}$")),
    responses((status = 200, description = "the merchant's id and certificate", body = Enrolled)))]
async fn merchant_certificate(
    State(mpp): State<Arc<Mpp>>,
    Path(id): Path<String>,
) -> Result<Json<Enrolled>, NetError> {
    let id = PartyId(id16(&id)?);
    let merchant = mpp
        .merchant_by_id(id)
        .await?
        .ok_or(NetError::NotFound { what: "merchant" })?;
    Ok(Json(Enrolled {
        id: id.to_hex(),
        certificate: hex(&merchant.certificate.to_wire()),
        token: None,
    }))
}

#[utoipa::path(get, path = "/v1/notices", tag = "merchants", security(("merchant" = [])),
    params(Wait),
    responses((status = 200, description = "the PNs awaiting this merchant's decision", body = Vec<Notice>)))]
async fn notices(
    State(mpp): State<Arc<Mpp>>,
    headers: HeaderMap,
    Query(wait): Query<Wait>,
) -> Result<Json<Vec<Notice>>, NetError> {
    let merchant = mpp.merchant_by_token(&headers).await?;
    let wait_ms = wait.wait_ms.min(mpp.node.config.timing.long_poll_max_ms);
    let mpp2 = Arc::clone(&mpp);
    let merchant_id = merchant.id;
    let list = mpp
        .node
        .waiters
        .wait(merchant_id.0, Duration::from_millis(wait_ms), move || {
            let mpp = Arc::clone(&mpp2);
            async move {
                let rows = sqlx::query(
                    "SELECT * FROM mpp_payments
                     WHERE merchant = $1 AND state = 'awaiting_decision' AND hop_deadline > $2
                     ORDER BY seq LIMIT $3",
                )
                .bind(&merchant_id.0[..])
                .bind(ms(wall_clock()))
                .bind(NOTICES_MAX)
                .fetch_all(mpp.node.db.pool())
                .await?;
                let list = rows
                    .iter()
                    .map(|r| PaymentRow::from_row(r, mpp.currency()).map(|p| p.notice()))
                    .collect::<Result<Vec<_>, _>>()?;
                let done = !list.is_empty();
                Ok((list, done))
            }
        })
        .await?;
    Ok(Json(list))
}

/// A merchant's decision, checked and ready to apply.
struct Deciding {
    id: [u8; 16],
    approve: bool,
    /// The signed decision as stored.
    wire: Vec<u8>,
    /// What a repeat must equal ([`MerchantDecision::idempotent_content`]).
    content: Vec<u8>,
    /// The relay to the CPP, sealed for the MPP's DC.
    relay: Vec<u8>,
}

impl Mpp {
    /// Checks `decision` of `merchant` (its signature and validity, its
    /// payment the merchant's) and makes what applying it writes.
    async fn prepare_decision(
        &self,
        merchant: &Merchant,
        decision: SignedMerchantDecision,
        now: Timestamp,
    ) -> Result<Deciding, NetError> {
        let verified = decision
            .verify(&merchant.certificate, now)
            .map_err(|e| NetError::Refused(format!("decision: {e}")))?
            .clone();
        let id = verified.payment_id;
        let row = self
            .load(&id)
            .await?
            .ok_or(NetError::NotFound { what: "payment" })?;
        if row.merchant != merchant.id {
            return Err(NetError::NotFound { what: "payment" });
        }
        Ok(Deciding {
            id,
            approve: matches!(verified.decision, Decision::Approve),
            wire: decision.to_wire(),
            content: verified.idempotent_content(),
            relay: self.relay(merchant, Authority::Decision(decision))?,
        })
    }
}

impl Mpp {
    /// Counts one request that took `taken` decisions.
    fn count_decisions(&self, taken: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        self.decision_requests.fetch_add(1, Relaxed);
        self.decisions
            .fetch_add(u64::try_from(taken).unwrap_or(u64::MAX), Relaxed);
    }
}

/// Applies a decision in `tx`: the payment's state, the decision stored and
/// its relay queued to `dc`. A repeat of the decision taken is taken again;
/// another decision is refused. Its state after.
async fn apply_decision(
    tx: &mut mpay_sql::Tx<'_>,
    d: &Deciding,
    dc: &str,
    now: Timestamp,
) -> Result<MerchantState, NetError> {
    let id = d.id;
    let row = sqlx::query(
        "SELECT state, decision, confirmation, hop_deadline FROM mpp_payments WHERE id = $1",
    )
    .bind(&id[..])
    .fetch_one(&mut **tx)
    .await?;
    let state: String = row.try_get("state")?;
    let state = MerchantState::parse(&state).ok_or_else(|| corrupt("state"))?;
    let stored: Option<Vec<u8>> = row.try_get("decision")?;
    if let Some(stored) = stored {
        // A repeat (signed afresh by a retry) of the decision taken is
        // answered as the first time; another one is refused.
        let stored = SignedMerchantDecision::from_wire(&stored).map_err(|_| corrupt("decision"))?;
        if stored.unverified_body().idempotent_content() == d.content {
            return Ok(state);
        }
        return Err(NetError::conflict(
            "already_decided",
            "the payment was decided",
        ));
    }
    let current = merchant::Payment {
        state,
        confirmed: row.try_get::<Option<Vec<u8>>, _>("confirmation")?.is_some(),
    };
    let hop_deadline: i64 = row.try_get("hop_deadline")?;
    let input = merchant::Input::Decided {
        approve: d.approve,
        deadline_ms: u64::try_from(hop_deadline).unwrap_or(0),
    };
    let step =
        merchant::step(current, input, now.as_millis()).map_err(|illegal| match illegal {
            merchant::Illegal::DeadlinePassed => {
                NetError::conflict("deadline_passed", illegal.to_string())
            }
            merchant::Illegal::NotAwaitingDecision(_) => {
                NetError::conflict("not_awaiting_decision", illegal.to_string())
            }
            _ => NetError::Internal(illegal.to_string()),
        })?;
    sqlx::query("UPDATE mpp_payments SET state = $2, decision = $3, updated_at = $4 WHERE id = $1")
        .bind(&id[..])
        .bind(step.payment.state.as_str())
        .bind(&d.wire[..])
        .bind(ms(now))
        .execute(&mut **tx)
        .await?;
    if step.effects.contains(&merchant::Effect::RelayDecision) {
        Node::enqueue(
            tx,
            dc,
            kind::DECISION_RELAY,
            id,
            &d.relay,
            &format!("decision-{}", hex(&id)),
            now,
        )
        .await?;
    }
    Ok(step.payment.state)
}

#[utoipa::path(post, path = "/v1/decisions", tag = "merchants", security(("merchant" = [])),
    request_body(content = SignedBody, description = "hex of a SignedMerchantDecision"),
    responses((status = 200, description = "the payment after the decision", body = MerchantPaymentView)))]
async fn decide(
    State(mpp): State<Arc<Mpp>>,
    headers: HeaderMap,
    body: Result<Json<SignedBody>, Problem>,
) -> Result<Json<MerchantPaymentView>, NetError> {
    let node = &mpp.node;
    let merchant = mpp.merchant_by_token(&headers).await?;
    let Json(body) = body?;
    let decision: SignedMerchantDecision = from_hex_wire("decision", &body.signed)?;
    let now = wall_clock();
    let deciding = mpp.prepare_decision(&merchant, decision, now).await?;
    let dc = node.my_dc()?.name.clone();
    let (dc, deciding) = (&dc, &deciding);
    node.db
        .with_retry(move |tx| Box::pin(apply_decision(tx, deciding, dc, now)))
        .await?;
    node.kick.notify_one();
    node.waiters.wake(deciding.id);
    mpp.count_decisions(1);
    Ok(Json(mpp.view(&deciding.id).await?.0))
}

#[utoipa::path(post, path = "/v1/decisions/batch", tag = "merchants", security(("merchant" = [])),
    request_body(content = DecisionBatch, description = "hex of each SignedMerchantDecision, at most 256"),
    responses((status = 200, description = "what became of each decision, in order", body = Vec<DecisionResult>)))]
async fn decide_batch(
    State(mpp): State<Arc<Mpp>>,
    headers: HeaderMap,
    body: Result<Json<DecisionBatch>, Problem>,
) -> Result<Json<Vec<DecisionResult>>, NetError> {
    let node = &mpp.node;
    let merchant = mpp.merchant_by_token(&headers).await?;
    let Json(body) = body?;
    if body.decisions.len() > DECISIONS_BATCH_MAX {
        return Err(NetError::Invalid(format!(
            "at most {DECISIONS_BATCH_MAX} decisions a batch"
        )));
    }
    let now = wall_clock();
    let mut results = Vec::with_capacity(body.decisions.len());
    let mut prepared = Vec::new();
    for (i, text) in body.decisions.iter().enumerate() {
        let decided = match from_hex_wire::<SignedMerchantDecision>("decision", text) {
            Ok(decision) => mpp.prepare_decision(&merchant, decision, now).await,
            Err(error) => Err(error),
        };
        match decided {
            Ok(deciding) => {
                results.push(DecisionResult {
                    payment_id: Some(hex(&deciding.id)),
                    state: None,
                    error: None,
                });
                prepared.push((i, deciding));
            }
            Err(error) => results.push(DecisionResult {
                payment_id: None,
                state: None,
                error: Some(error.api_error()),
            }),
        }
    }
    let dc = node.my_dc()?.name.clone();
    let (dc, prepared_ref) = (&dc, &prepared);
    // One transaction for the whole batch. A refused decision writes
    // nothing before it is refused, so the others go on; a database error
    // rolls everything back and the batch is tried again.
    let applied = node
        .db
        .with_retry(move |tx| {
            Box::pin(async move {
                let mut applied = Vec::with_capacity(prepared_ref.len());
                for (i, deciding) in prepared_ref {
                    match apply_decision(tx, deciding, dc, now).await {
                        Err(error @ (NetError::Db(_) | NetError::Outbox(_))) => return Err(error),
                        other => applied.push((*i, other)),
                    }
                }
                Ok::<_, NetError>(applied)
            })
        })
        .await?;
    node.kick.notify_one();
    for (i, outcome) in applied {
        match outcome {
            Ok(state) => results[i].state = Some(state.as_str().to_owned()),
            Err(error) => results[i].error = Some(error.api_error()),
        }
    }
    for (_, deciding) in &prepared {
        node.waiters.wake(deciding.id);
    }
    mpp.count_decisions(results.iter().filter(|r| r.state.is_some()).count());
    Ok(Json(results))
}

/// The idempotency scope of merchants' refund requests; the key is
/// `<payment id>-<refund key>` in hex.
const REFUND_SCOPE: &str = "mpp refund";

/// The first answer to a refund request, stored under its key in the
/// transaction that made it: every repeat gets it again, a refusal
/// included, so a request refused while the payment was pending cannot be
/// sent again after it completed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum RefundAnswer {
    Accepted,
    NotCompleted,
    MicroNotRefundable,
    ExceedsPayment,
}

impl RefundAnswer {
    const ACCEPTED: &'static [u8] = b"accepted";

    fn to_stored(self) -> &'static [u8] {
        match self {
            RefundAnswer::Accepted => Self::ACCEPTED,
            RefundAnswer::NotCompleted => b"not_completed",
            RefundAnswer::MicroNotRefundable => b"micropayment_not_refundable",
            RefundAnswer::ExceedsPayment => b"refund_exceeds_payment",
        }
    }

    fn from_stored(stored: &[u8]) -> Result<RefundAnswer, NetError> {
        [
            RefundAnswer::Accepted,
            RefundAnswer::NotCompleted,
            RefundAnswer::MicroNotRefundable,
            RefundAnswer::ExceedsPayment,
        ]
        .into_iter()
        .find(|a| a.to_stored() == stored)
        .ok_or_else(|| corrupt("refund answer"))
    }

    fn into_result(self) -> Result<(), NetError> {
        match self {
            RefundAnswer::Accepted => Ok(()),
            RefundAnswer::NotCompleted => Err(NetError::conflict(
                "not_completed",
                "only a completed payment (T confirmation received) can be refunded; \
                 this refund's key is used up, a later refund needs a new key",
            )),
            RefundAnswer::MicroNotRefundable => Err(NetError::conflict(
                "micropayment_not_refundable",
                "a micropayment cannot be refunded through the network",
            )),
            RefundAnswer::ExceedsPayment => Err(NetError::conflict(
                "refund_exceeds_payment",
                "refunds would exceed the payment",
            )),
        }
    }
}

#[utoipa::path(post, path = "/v1/refunds", tag = "merchants", security(("merchant" = [])),
    request_body(content = SignedBody, description = "hex of a SignedRefundRequest"),
    responses((status = 200, description = "the refund as recorded", body = RefundView)))]
async fn refund(
    State(mpp): State<Arc<Mpp>>,
    headers: HeaderMap,
    body: Result<Json<SignedBody>, Problem>,
) -> Result<Json<RefundView>, NetError> {
    let node = &mpp.node;
    let merchant = mpp.merchant_by_token(&headers).await?;
    let Json(body) = body?;
    let request: SignedRefundRequest = from_hex_wire("refund", &body.signed)?;
    let now = wall_clock();
    let verified = request
        .verify(&merchant.certificate, now)
        .map_err(|e| NetError::Refused(format!("refund: {e}")))?
        .clone();
    if verified.amount.currency() != mpp.currency() {
        return Err(NetError::Invalid("refund in another currency".into()));
    }
    let (id, key) = (verified.payment_id, verified.idempotency_key);
    let row = mpp
        .load(&id)
        .await?
        .ok_or(NetError::NotFound { what: "payment" })?;
    if row.merchant != merchant.id {
        return Err(NetError::NotFound { what: "payment" });
    }
    let wire = request.to_wire();
    let wire = &wire;
    let amount = verified.amount.minor_units();
    let content = &verified.idempotent_content();
    let request_hash = node.keyed_hash("mpp refund", &[content]);
    let (idem_key, request_hash) = (&format!("{}-{}", hex(&id), hex(&key)), &request_hash[..]);
    let answer = node
        .db
        .with_retry(move |tx| {
            Box::pin(async move {
                // The key is used up by its first answer, a refusal included.
                if let Some(stored) =
                    idempotency::begin(tx, REFUND_SCOPE, idem_key, request_hash, ms(now)).await?
                {
                    return RefundAnswer::from_stored(&stored.response);
                }
                let existing = sqlx::query(
                    "SELECT request FROM mpp_refunds WHERE payment_id = $1 AND refund_key = $2",
                )
                .bind(&id[..])
                .bind(&key[..])
                .fetch_optional(&mut **tx)
                .await?;
                if let Some(existing) = existing {
                    // Recorded before answers were stored under the key.
                    let stored: Vec<u8> = existing.try_get("request")?;
                    let stored = SignedRefundRequest::from_wire(&stored)
                        .map_err(|_| corrupt("refund request"))?;
                    if stored.unverified_body().idempotent_content() != *content {
                        return Err(NetError::IdempotencyConflict);
                    }
                    idempotency::finish(tx, REFUND_SCOPE, idem_key, RefundAnswer::ACCEPTED).await?;
                    return Ok(RefundAnswer::Accepted);
                }
                // One conditional update bounds the total refunded by what
                // was paid, whatever runs beside it.
                let updated = sqlx::query(
                    "UPDATE mpp_payments SET refunded = refunded + $2, updated_at = $3
                     WHERE id = $1 AND state = $4 AND micro = 0 AND refunded + $2 <= amount",
                )
                .bind(&id[..])
                .bind(amount)
                .bind(ms(now))
                .bind(MerchantState::Completed.as_str())
                .execute(&mut **tx)
                .await?;
                let answer = if updated.rows_affected() == 1 {
                    sqlx::query(
                        "INSERT INTO mpp_refunds (payment_id, refund_key, amount, state, request,
                            created_at, updated_at) VALUES ($1, $2, $3, $6, $4, $5, $5)",
                    )
                    .bind(&id[..])
                    .bind(&key[..])
                    .bind(amount)
                    .bind(&wire[..])
                    .bind(ms(now))
                    .bind(RefundState::start(refund::Leg::Mpp, true).as_str())
                    .execute(&mut **tx)
                    .await?;
                    RefundAnswer::Accepted
                } else {
                    let row = sqlx::query("SELECT state, micro FROM mpp_payments WHERE id = $1")
                        .bind(&id[..])
                        .fetch_one(&mut **tx)
                        .await?;
                    let state: String = row.try_get("state")?;
                    if row.try_get::<i64, _>("micro")? == 1 {
                        RefundAnswer::MicroNotRefundable
                    } else if state != MerchantState::Completed.as_str() {
                        RefundAnswer::NotCompleted
                    } else {
                        RefundAnswer::ExceedsPayment
                    }
                };
                idempotency::finish(tx, REFUND_SCOPE, idem_key, answer.to_stored()).await?;
                Ok::<_, NetError>(answer)
            })
        })
        .await?;
    answer.into_result()?;
    mpp.drive_refund(id, key).await;
    let row = sqlx::query("SELECT * FROM mpp_refunds WHERE payment_id = $1 AND refund_key = $2")
        .bind(&id[..])
        .bind(&key[..])
        .fetch_one(node.db.pool())
        .await?;
    Ok(Json(refund_view(&row, mpp.currency())?))
}

#[utoipa::path(get, path = "/v1/payments/{id}", tag = "merchants", security(("merchant" = [])),
    params(("id" = String, Path, description = "the payment id, 32 hex digits", pattern = "^[0-9a-f]{32}$"), Wait),
    responses((status = 200, description = "the payment; with wait_ms, once final or after the wait", body = MerchantPaymentView)))]
async fn payment(
    State(mpp): State<Arc<Mpp>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(wait): Query<Wait>,
) -> Result<Json<MerchantPaymentView>, NetError> {
    let merchant = mpp.merchant_by_token(&headers).await?;
    let id = id16(&id)?;
    let row = mpp
        .load(&id)
        .await?
        .ok_or(NetError::NotFound { what: "payment" })?;
    if row.merchant != merchant.id {
        return Err(NetError::NotFound { what: "payment" });
    }
    let wait_ms = wait.wait_ms.min(mpp.node.config.timing.long_poll_max_ms);
    let mpp2 = Arc::clone(&mpp);
    let view = mpp
        .node
        .waiters
        .wait(id, Duration::from_millis(wait_ms), move || {
            let mpp = Arc::clone(&mpp2);
            async move { mpp.view(&id).await }
        })
        .await?;
    Ok(Json(view))
}

#[utoipa::path(get, path = "/v1/admin/payments", tag = "operator", security(("operator" = [])),
    params(Page),
    responses((status = 200, description = "payments by seq", body = Vec<MppPaymentRecord>)))]
async fn admin_payments(
    State(mpp): State<Arc<Mpp>>,
    headers: HeaderMap,
    Query(page): Query<Page>,
) -> Result<Json<Vec<MppPaymentRecord>>, NetError> {
    mpp.node.check_operator(&headers)?;
    let limit = i64::from(page.limit.unwrap_or(PAGE_MAX).min(PAGE_MAX));
    let rows = sqlx::query("SELECT * FROM mpp_payments WHERE seq > $1 ORDER BY seq LIMIT $2")
        .bind(page.after)
        .bind(limit)
        .fetch_all(mpp.node.db.pool())
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let p = PaymentRow::from_row(r, mpp.currency())?;
        out.push(MppPaymentRecord {
            seq: p.seq,
            payment_id: hex(&p.id),
            merchant: p.merchant.to_hex(),
            cpp: p.cpp.clone(),
            amount: p.amount.to_string(),
            state: p.state.as_str().to_owned(),
            refunded: p.refunded.to_string(),
            created_at: p.created_at.as_millis(),
            updated_at: p.updated_at.as_millis(),
            micro: r.try_get::<i64, _>("micro")? == 1,
            funded: r.try_get::<i64, _>("funded")? == 1,
            payout: r.try_get("payout")?,
        });
    }
    Ok(Json(out))
}

#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Prometheus metrics", content_type = "text/plain", body = inline(mpay_http::openapi::MetricsText))))]
async fn metrics(State(mpp): State<Arc<Mpp>>) -> Result<impl IntoResponse, NetError> {
    let by_state = mpp.node.count_by("mpp_payments", "state").await?;
    let mut text = mpp.node.metrics_text("mpay_mpp", &by_state).await?;
    let refunds = mpp.node.count_by("mpp_refunds", "state").await?;
    text.push_str("# TYPE mpay_mpp_refunds gauge\n");
    for (state, n) in refunds {
        text.push_str(&format!("mpay_mpp_refunds{{state=\"{state}\"}} {n}\n"));
    }
    {
        use std::sync::atomic::Ordering::Relaxed;
        text.push_str(&format!(
            "# TYPE mpay_mpp_decisions_total counter\nmpay_mpp_decisions_total {}\n\
             # TYPE mpay_mpp_decision_requests_total counter\nmpay_mpp_decision_requests_total {}\n",
            mpp.decisions.load(Relaxed),
            mpp.decision_requests.load(Relaxed)
        ));
    }
    if mpp.micro.is_some() {
        text.push_str("# TYPE mpay_mpp_micro_payouts gauge\n");
        for (state, n) in mpp.node.count_by("mpp_micro_payouts", "state").await? {
            text.push_str(&format!(
                "mpay_mpp_micro_payouts{{state=\"{state}\"}} {n}\n"
            ));
        }
    }
    Ok(crate::node::prometheus(text))
}

#[utoipa::path(get, path = "/v1/admin/work", tag = "operator", security(("operator" = [])),
    responses((status = 200, description = "what the MPP still has moving", body = crate::client::Work)))]
async fn admin_work(
    State(mpp): State<Arc<Mpp>>,
    headers: HeaderMap,
) -> Result<Json<crate::client::Work>, NetError> {
    mpp.node.check_operator(&headers)?;
    let transfers: &[&str] = if mpp.micro.is_some() {
        &["mpp_micro_payouts"]
    } else {
        &[]
    };
    Ok(Json(mpp.node.work(Some("mpp_refunds"), transfers).await?))
}

#[utoipa::path(get, path = "/v1/identity", tag = "service",
    responses((status = 200, description = "the MPP's id and certificate", body = Identity)))]
async fn identity(State(mpp): State<Arc<Mpp>>) -> Json<Identity> {
    Json(mpp.node.identity())
}

/// The MPP's API, derived from its handlers and their types.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "mpay MPP",
        description = "The merchant payment processor of the SEMOPS network: merchant enrolment and certificates, PNs awaiting decisions (long-poll), signed decisions and refunds, payment views with the CPP's confirmations."
    ),
    paths(
        crate::api::health,
        metrics,
        openapi,
        identity,
        enrol,
        merchant_certificate,
        notices,
        decide,
        decide_batch,
        standing::set,
        standing::show,
        standing::withdraw,
        refund,
        payment,
        admin_payments,
        admin_micro,
        admin_work,
        inbox
    )
)]
struct MppApi;

/// The MPP's `/openapi.json`.
pub fn openapi_document() -> serde_json::Value {
    crate::api::openapi_document(
        <MppApi as utoipa::OpenApi>::openapi(),
        &[OPERATOR, MERCHANT],
    )
}

#[utoipa::path(get, path = "/openapi.json", tag = "service",
    responses((status = 200, description = "this document", content_type = "application/json", body = inline(mpay_http::openapi::Document))))]
async fn openapi() -> impl IntoResponse {
    Json(openapi_document())
}
