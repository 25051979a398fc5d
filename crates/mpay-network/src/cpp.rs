//! The customer payment processor (DESIGN §3.2 steps 2–3, 6–7).
//!
//! # Routes
//!
//! | method and path | who | body → answer |
//! |---|---|---|
//! | `POST /v1/customers` | operator | [`EnrolCustomer`] → `{id, certificate}` |
//! | `POST /v1/customers/{name}/unlock` | operator | `{}` → `{}` |
//! | `POST /v1/customers/{name}/pin` | operator | [`SetPin`](crate::client::SetPin) → `{pin_set}` |
//! | `GET /v1/admin/pins` | operator | → [`PinReport`](crate::client::PinReport) |
//! | `POST /v1/payments` | customer device | PR frame (`seal_pr`) → [`PaymentStatus`] |
//! | `GET /v1/payments/{id}?wait_ms=` | anyone holding the id | → [`PaymentStatus`] (long-poll until final) |
//! | `GET /v1/admin/payments?after=&limit=` | operator | → `[PaymentRecord]` |
//! | `POST /v1/inbox` | the region's DC | sealed DECISION_RELAY / REFUND_RELAY → [`InboxAnswer`] |
//! | `GET /v1/identity`, `/health`, `/metrics`, `/openapi.json` | anyone | |
//!
//! # A payment's states
//!
//! ```text
//! received ──hold placed──▶ pending ──approval──▶ approving ──hold posted──▶ completed ──refunds──▶ refunded
//!    │                         ├──rejection──▶ rejecting ──hold voided──▶ rejected
//!    │                         └──deadline───▶ expiring ──hold voided──▶ expired
//!    └──hold refused (insufficient funds, …)──▶ declined
//! ```
//!
//! Every step that calls a bank is a saga step: the state that names it
//! (`received`, `approving`, `rejecting`, `expiring`, refund `refunding`) is
//! committed before the call, the call carries an idempotency key derived
//! from the payment (`hold-<id>`, `post-<id>`, `void-<id>`,
//! `refund-<id>-<key>`), and the recovery sweep resumes any step left half
//! done, so a crash at any point ends with the hold posted or voided
//! exactly once. The transition after the call, the signed confirmation and
//! the outbox message toward the MPP are one transaction.
//!
//! Micropayments (`[micro] mode = "one" | "two"`): [`Cpp::classify`] sends a
//! payment at or below the micro limit down the pending-total path of
//! `micro` (no hold; DT confirmation on approval; one bank transfer per
//! pending total at θ or after W; net settlement toward the MPPs).
//! Operator routes: `GET /v1/admin/micro` (the micropayment books, for
//! `mpay reconcile`) and `POST /v1/admin/micro/recluster` (k-means θ/W per
//! customer, for `mpay cpp recluster`; never on the payment path).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use mpay_bank::{AccountId, Destination, HoldId, HoldState, PlaceHold, PostHold, VoidHold};
use mpay_http::{Body, Json, Path, Problem, Query};
use mpay_identity::{Certificate, CertificateBody, PartyId, PublicKeys, Role, Timestamp};
use mpay_money::Amount;
use mpay_processor::payment as core;
use mpay_processor::refund;
use mpay_processor::saga;
use mpay_semops::{
    AmountClass, Authority, Confirmation, ConfirmationOutcome, CustomerRef, Decision,
    DecisionRelay, PaymentNotice, Pin, PinCheck, PinGuard, PinKeys, REQUEST_CLOCK_SKEW_MAX_MS,
    RejectReason, RoutedNotice, SealedShipping, SemopsError, Signed, SignedDecisionRelay,
    SignedRefundRelay, SignedTrans, StoredPin, kind, open_pr,
};
use mpay_sql::sqlx::{self, Row, any::AnyRow};
use mpay_sql::{Db, Migrations, idempotency};
use mpay_wire::{Decode, Encode};
use tokio::net::TcpListener;

use crate::api::{
    NetError, OPERATOR, REQUEST_BODY_LEN_MAX, from_hex_wire, hex, id16, ms, ts, wall_clock,
};
use crate::client::{
    EnrolCustomer, Enrolled, Identity, InboxAnswer, MppClient, Page, PaymentRecord, PaymentStatus,
    Wait,
};
use crate::config::{MicroMode, MicroSettings, ServiceConfig};
use crate::directory::ServiceRole;
use crate::money::{BankAnswer, INSUFFICIENT_FUNDS, sort_answer};
use crate::node::{Inbound, Node, Running, ServeError, spawn_loop};

mod micro;

pub use micro::RECLUSTER_CUSTOMERS_MIN;

/// The CPP's tables (mpay-micro's `micro_*` tables beside them).
pub const MIGRATIONS: Migrations = Migrations::new(
    "cpp",
    &[
        ("0001_cpp", include_str!("../migrations/0001_cpp.sql")),
        (
            "0002_cpp_micro",
            include_str!("../migrations/0002_cpp_micro.sql"),
        ),
        (
            "0003_cpp_shipping",
            include_str!("../migrations/0003_cpp_shipping.sql"),
        ),
    ],
);

/// Most payments one expiry or recovery sweep takes on.
pub const SWEEP_BATCH_MAX: i64 = 256;
/// Most entries of one operator listing page.
pub const PAGE_MAX: u32 = 1_000;
/// How far back the validity of an issued certificate starts (clocks differ).
pub const CERTIFICATE_BACKDATE_MS: u64 = 60_000;

/// A payment's state at the CPP: its life cycle is the pure core's
/// ([`mpay_processor::payment`]); this module stores it and carries out the
/// effects.
pub use mpay_processor::payment::State as PaymentState;

/// A refund's state at the CPP: the CPP's leg of the refund saga
/// ([`mpay_processor::refund`]).
pub use mpay_processor::refund::State as RefundState;

struct PaymentRow {
    seq: i64,
    id: [u8; 16],
    customer: String,
    request_hash: Vec<u8>,
    trans: SignedTrans,
    merchant_cert: Certificate,
    mpp: String,
    amount: Amount,
    state: PaymentState,
    bank: String,
    account: String,
    hold_id: Option<i64>,
    notice_sent: bool,
    hold_expires_at: Timestamp,
    deadline: Timestamp,
    decision: Option<Vec<u8>>,
    confirmation: Option<Vec<u8>>,
    reason: Option<String>,
    refunded: Amount,
    created_at: Timestamp,
    updated_at: Timestamp,
    class: String,
    micro_batch: Option<i64>,
    micro_returned: Amount,
    /// The customer's sealed shipping details, for the merchant (unread).
    shipping: Option<SealedShipping>,
}

/// Whether the merchant's word in a verified decision relay approves the
/// payment of `row`, after checking the merchant's signature on it. The MPP
/// checked a decision's time when the merchant sent it and its outbox may
/// deliver the relay later, so the time rule is not checked again (applying
/// a decision is idempotent). A standing approval must be the payment's
/// merchant's for this relay's MPP, the payment a micropayment within its
/// amount per payment, and the approval in force at some instant between the
/// payment's recording here and now (the MPP applied it in between; its
/// clock may run ahead by the allowed skew).
fn merchant_approves(
    relay: &DecisionRelay,
    row: &PaymentRow,
    now: Timestamp,
) -> Result<bool, NetError> {
    let refused = |e: SemopsError| NetError::Refused(e.to_string());
    let merchant = row.trans.unverified_body().merchant;
    match &relay.authority {
        Authority::Decision(decision) => {
            let decision = decision
                .verify_relayed(&row.merchant_cert, now)
                .map_err(refused)?;
            if decision.merchant != merchant {
                return Err(NetError::Refused("decision by another merchant".into()));
            }
            Ok(matches!(decision.decision, Decision::Approve))
        }
        Authority::Standing { approval, .. } => {
            let approval = approval
                .verify_relayed(&row.merchant_cert, now)
                .map_err(refused)?;
            if approval.merchant != merchant || approval.mpp != relay.mpp {
                return Err(NetError::Refused(
                    "a standing approval of another merchant or MPP".into(),
                ));
            }
            if !row.is_micro() {
                return Err(NetError::Refused(
                    "a standing approval covers micropayments only".into(),
                ));
            }
            approval
                .covers_during(
                    row.amount,
                    row.created_at,
                    now.saturating_add_ms(REQUEST_CLOCK_SKEW_MAX_MS),
                )
                .map_err(|e| NetError::Refused(format!("standing approval: {e}")))?;
            Ok(true)
        }
    }
}

/// The core's transition of `payment` given `input` at `now`; an illegal
/// one is refused (never stored), in every build.
fn advance(
    payment: core::Payment,
    input: core::Input,
    now: Timestamp,
) -> Result<core::Step, NetError> {
    core::step(payment, input, now.as_millis()).map_err(|illegal| {
        tracing::error!(%illegal, "illegal payment transition refused");
        NetError::Internal(illegal.to_string())
    })
}

/// Feeds `Admitted` to the core for payment `id`, and queues its PN to the
/// home DC `dc` in `tx` when the core says so (`routed`: the PN's routed
/// envelope, `None` when the merchant's MPP has no route). The caller stores
/// the step's payment in the same transaction.
async fn admit_in(
    tx: &mut mpay_sql::Tx<'_>,
    payment: core::Payment,
    id: [u8; 16],
    routed: Option<&[u8]>,
    dc: &str,
    now: Timestamp,
) -> Result<core::Step, NetError> {
    let step = advance(payment, saga::after_place(true, routed.is_some()), now)?;
    if let (true, Some(routed)) = (step.effects.contains(&core::Effect::SendNotice), routed) {
        Node::enqueue(
            tx,
            dc,
            kind::PAYMENT_NOTICE,
            id,
            routed,
            &format!("pn-{}", hex(&id)),
            now,
        )
        .await?;
    }
    Ok(step)
}

fn corrupt(what: &str) -> NetError {
    NetError::Internal(format!("stored payment: {what}"))
}

impl PaymentRow {
    fn from_row(row: &AnyRow, currency: mpay_money::Currency) -> Result<PaymentRow, NetError> {
        let id: Vec<u8> = row.try_get("id")?;
        let trans: Vec<u8> = row.try_get("trans")?;
        let cert: Vec<u8> = row.try_get("merchant_certificate")?;
        let state: String = row.try_get("state")?;
        let shipping: Option<Vec<u8>> = row.try_get("shipping")?;
        Ok(PaymentRow {
            shipping: shipping
                .map(|s| SealedShipping::from_wire(&s))
                .transpose()
                .map_err(|_| corrupt("shipping"))?,
            seq: row.try_get("seq")?,
            id: id.try_into().map_err(|_| corrupt("id"))?,
            customer: row.try_get("customer")?,
            request_hash: row.try_get("request_hash")?,
            trans: SignedTrans::from_wire(&trans).map_err(|_| corrupt("trans"))?,
            merchant_cert: Certificate::from_wire(&cert).map_err(|_| corrupt("certificate"))?,
            mpp: row.try_get("mpp")?,
            amount: Amount::new(row.try_get("amount")?, currency),
            state: PaymentState::parse(&state).ok_or_else(|| corrupt("state"))?,
            bank: row.try_get("bank")?,
            account: row.try_get("account")?,
            hold_id: row.try_get("hold_id")?,
            notice_sent: row.try_get::<i64, _>("notice_sent")? == 1,
            hold_expires_at: ts(row.try_get("hold_expires_at")?),
            deadline: ts(row.try_get("deadline")?),
            decision: row.try_get("decision")?,
            confirmation: row.try_get("confirmation")?,
            reason: row.try_get("reason")?,
            refunded: Amount::new(row.try_get("refunded")?, currency),
            created_at: ts(row.try_get("created_at")?),
            updated_at: ts(row.try_get("updated_at")?),
            class: row.try_get("class")?,
            micro_batch: row.try_get("micro_batch")?,
            micro_returned: Amount::new(row.try_get("micro_returned")?, currency),
        })
    }

    /// The payment as the core sees it.
    fn core(&self) -> core::Payment {
        core::Payment {
            state: self.state,
            deadline_ms: self.deadline.as_millis(),
            notice_sent: self.notice_sent,
        }
    }

    fn is_micro(&self) -> bool {
        self.class == "micro"
    }

    fn status(&self) -> PaymentStatus {
        PaymentStatus {
            payment_id: hex(&self.id),
            state: self.state.as_str().to_owned(),
            is_final: self.state.is_final(),
            amount: self.amount.to_string(),
            merchant_reference: self.trans.unverified_body().merchant_reference.clone(),
            deadline: self.deadline.as_millis(),
            refunded: self.refunded.to_string(),
            reason: self.reason.clone(),
            confirmation: self.confirmation.as_deref().map(hex),
        }
    }

    fn record(&self) -> PaymentRecord {
        PaymentRecord {
            seq: self.seq,
            payment_id: hex(&self.id),
            customer: self.customer.clone(),
            mpp: self.mpp.clone(),
            amount: self.amount.to_string(),
            state: self.state.as_str().to_owned(),
            bank: self.bank.clone(),
            account: self.account.clone(),
            hold_id: self.hold_id,
            refunded: self.refunded.to_string(),
            reason: self.reason.clone(),
            deadline: self.deadline.as_millis(),
            created_at: self.created_at.as_millis(),
            updated_at: self.updated_at.as_millis(),
            class: self.class.clone(),
            micro_batch: self.micro_batch,
            micro_returned: self.micro_returned.to_string(),
        }
    }
}

/// What ending a micropayment's saga step records beside the state.
enum MicroEnd {
    /// Nothing.
    None,
    /// Approved: the CPP owes the MPP `amount` (net settlement).
    Owed { mpp: String, amount: i64 },
    /// Rejected after a settled batch collected it: `amount` paid back.
    Returned(i64),
}

struct CustomerRow {
    name: String,
    certificate: Certificate,
    pin: StoredPin,
}

/// A hold's state as the saga core names it.
fn hold_end(state: HoldState) -> saga::HoldEnd {
    match state {
        HoldState::Pending => saga::HoldEnd::Pending,
        HoldState::Posted => saga::HoldEnd::Posted,
        HoldState::Voided => saga::HoldEnd::Voided,
        HoldState::Expired => saga::HoldEnd::Expired,
    }
}

/// The CPP service.
pub struct Cpp {
    node: Arc<Node>,
    merchant_certs: Mutex<HashMap<PartyId, Certificate>>,
    /// Micropayment aggregation; `None` when `[micro] mode = "none"`.
    micro: Option<MicroSettings>,
    /// The PIN verification keys (DESIGN §3.2), read from their own file.
    pin_keys: PinKeys,
}

/// Runs a CPP until the process is killed: opens `config.db`, serves on
/// `listener`, runs the delivery, expiry and recovery loops.
pub async fn serve(config: ServiceConfig, listener: TcpListener) -> Result<(), ServeError> {
    let db = Db::connect(&config.db).await?;
    start(config, db, listener).await?.wait().await
}

/// Starts a CPP on an open database; returns the running handle.
pub async fn start(
    config: ServiceConfig,
    db: Db,
    listener: TcpListener,
) -> Result<Running, ServeError> {
    db.migrate(&[mpay_sql::MIGRATIONS, mpay_micro::store::MIGRATIONS])
        .await?;
    let pin_keys = config.load_pin_keys()?;
    if config.pin_cost.is_some() {
        tracing::warn!(
            "`pin_cost` is no longer read: PINs are checked by keyed verification values \
             (`pin_keys`); remove it from the configuration"
        );
    }
    let node = Arc::new(Node::open(config, db, ServiceRole::Cpp, MIGRATIONS).await?);
    let settings = node.config.micro.settings()?;
    let micro = (settings.mode != MicroMode::None).then_some(settings);
    if micro.is_some_and(|m| m.limits.currency() != node.directory.currency) {
        return Err(crate::ConfigError::Invalid(
            "micro amounts are not in the network's currency".into(),
        )
        .into());
    }
    let cpp = Arc::new(Cpp {
        node: Arc::clone(&node),
        merchant_certs: Mutex::new(HashMap::new()),
        micro,
        pin_keys,
    });
    let timing = node.config.timing.clone();
    let mut tasks = vec![node.spawn_delivery()];
    if micro.is_some() {
        let sweep = Arc::clone(&cpp);
        tasks.push(spawn_loop(
            "cpp micro sweep",
            Duration::from_millis(node.config.micro.sweep_interval_ms),
            move || {
                let cpp = Arc::clone(&sweep);
                async move { cpp.sweep_micro(wall_clock()).await }
            },
        ));
        let settle = Arc::clone(&cpp);
        tasks.push(spawn_loop(
            "cpp micro net settlement",
            Duration::from_millis(node.config.micro.settle_interval_ms),
            move || {
                let cpp = Arc::clone(&settle);
                async move { cpp.settle_runs(wall_clock()).await }
            },
        ));
    }
    let expiry = Arc::clone(&cpp);
    tasks.push(spawn_loop(
        "cpp expiry",
        Duration::from_millis(timing.expiry_interval_ms),
        move || {
            let cpp = Arc::clone(&expiry);
            async move { cpp.expire_due(wall_clock()).await }
        },
    ));
    let recovery = Arc::clone(&cpp);
    tasks.push(spawn_loop(
        "cpp recovery",
        Duration::from_millis(timing.recovery_interval_ms),
        move || {
            let cpp = Arc::clone(&recovery);
            async move { cpp.recover().await }
        },
    ));
    let tls = cpp.node.tls.clone();
    Running::start(listener, tls, router(cpp), tasks)
}

/// The CPP's routes.
pub fn router(cpp: Arc<Cpp>) -> Router {
    let app = Router::new()
        .route("/health", get(crate::api::health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/v1/identity", get(identity))
        .route("/v1/customers", post(enrol))
        .route("/v1/customers/{name}/unlock", post(unlock))
        .route("/v1/customers/{name}/pin", post(set_pin))
        .route("/v1/admin/pins", get(admin_pins))
        .route("/v1/payments", post(submit))
        .route("/v1/payments/{id}", get(status))
        .route("/v1/admin/payments", get(admin_payments))
        .route("/v1/admin/micro", get(admin_micro))
        .route("/v1/admin/work", get(admin_work))
        .route("/v1/admin/micro/recluster", post(admin_recluster))
        .route("/v1/inbox", post(inbox))
        .with_state(cpp);
    mpay_http::harden(app, REQUEST_BODY_LEN_MAX)
}

fn spawn_drive(cpp: &Arc<Cpp>, id: [u8; 16]) {
    let cpp = Arc::clone(cpp);
    tokio::spawn(async move { cpp.drive(id).await });
}

/// The idempotency scope of PRs; the key is the payment id (a keyed hash
/// of the customer and the PR's key).
const PR_SCOPE: &str = "cpp pr";

/// The first answer to a PR, stored under its key in the transaction that
/// made it: a repeat gets it again, a refusal for the PIN included (so a
/// repeated PR is not counted as another wrong PIN).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Outcome {
    /// The payment was recorded; its row answers from now on.
    Recorded,
    /// Wrong PIN, with the tries that were left.
    Wrong(u32),
    /// The account was locked.
    Locked,
}

impl Outcome {
    fn to_stored(self) -> Vec<u8> {
        match self {
            Outcome::Recorded => b"recorded".to_vec(),
            Outcome::Wrong(left) => format!("wrong_pin:{left}").into_bytes(),
            Outcome::Locked => b"account_locked".to_vec(),
        }
    }

    fn from_stored(stored: &[u8]) -> Result<Outcome, NetError> {
        let bad = || corrupt("PR answer");
        match stored {
            b"recorded" => Ok(Outcome::Recorded),
            b"account_locked" => Ok(Outcome::Locked),
            other => {
                let text = std::str::from_utf8(other).map_err(|_| bad())?;
                let left = text.strip_prefix("wrong_pin:").ok_or_else(bad)?;
                Ok(Outcome::Wrong(left.parse().map_err(|_| bad())?))
            }
        }
    }
}

fn spawn_refund(cpp: &Arc<Cpp>, id: [u8; 16], key: [u8; 16]) {
    let cpp = Arc::clone(cpp);
    tokio::spawn(async move { cpp.drive_refund(id, key).await });
}

impl Cpp {
    fn currency(&self) -> mpay_money::Currency {
        self.node.directory.currency
    }

    /// Macro or micro by amount (DESIGN §3.3): micro when aggregation is on
    /// and `amount` is at most the micro limit. A micropayment may still be
    /// taken as macro when it is recorded (credit limit, batch in flight).
    pub fn classify(&self, amount: Amount) -> AmountClass {
        match self.micro {
            Some(m)
                if amount.currency() == m.limits.currency()
                    && amount.minor_units() <= m.limits.micro_max().minor_units() =>
            {
                AmountClass::Micro
            }
            _ => AmountClass::Macro,
        }
    }

    async fn load(&self, id: &[u8; 16]) -> Result<Option<PaymentRow>, NetError> {
        let row = sqlx::query("SELECT * FROM cpp_payments WHERE id = $1")
            .bind(&id[..])
            .fetch_optional(self.node.db.pool())
            .await?;
        row.map(|r| PaymentRow::from_row(&r, self.currency()))
            .transpose()
    }

    async fn load_in(
        &self,
        tx: &mut mpay_sql::Tx<'_>,
        id: &[u8; 16],
    ) -> Result<PaymentRow, NetError> {
        let row = sqlx::query("SELECT * FROM cpp_payments WHERE id = $1")
            .bind(&id[..])
            .fetch_optional(&mut **tx)
            .await?
            .ok_or(NetError::NotFound { what: "payment" })?;
        PaymentRow::from_row(&row, self.currency())
    }

    fn sign_confirmation(
        &self,
        id: [u8; 16],
        outcome: ConfirmationOutcome,
        amount: Amount,
        now: Timestamp,
    ) -> Result<Vec<u8>, NetError> {
        Signed::sign(
            Confirmation {
                payment_id: id,
                cpp: self.node.me.id,
                outcome,
                amount,
                at: now,
            },
            &self.node.keys,
        )
        .map(|c| c.to_wire())
        .map_err(|e| NetError::Internal(e.to_string()))
    }

    /// The merchant's certificate, from the cache or its MPP; checked: a
    /// Merchant certificate issued by that MPP, trusted, valid at `now`.
    async fn merchant_certificate(
        &self,
        mpp: &crate::directory::ResolvedService,
        merchant: PartyId,
        now: Timestamp,
    ) -> Result<Certificate, NetError> {
        let cached = self
            .merchant_certs
            .lock()
            .ok()
            .and_then(|c| c.get(&merchant).cloned());
        let cert = match cached {
            Some(cert) => cert,
            None => MppClient::with_http(&mpp.url, self.node.http.clone())
                .merchant_certificate(merchant)
                .await
                .map_err(|e| match e.code() {
                    Some(_) => NetError::Refused(format!("merchant unknown at its MPP: {e}")),
                    None => NetError::Unavailable(format!("merchant's MPP: {e}")),
                })?,
        };
        if cert.subject() != merchant || cert.body.issuer != mpp.id {
            return Err(NetError::Refused(
                "merchant certificate is not the TRANS's merchant's, issued by its MPP".into(),
            ));
        }
        self.node
            .trust
            .check_role(&cert, Role::Merchant, now)
            .map_err(|e| NetError::Refused(format!("merchant certificate: {e}")))?;
        if let Ok(mut cache) = self.merchant_certs.lock() {
            cache.insert(merchant, cert.clone());
        }
        Ok(cert)
    }

    /// An operator's unlock of customer `name`: the wrong-PIN count starts
    /// again, and `new_pin` (a [`StoredPin`]'s wire form), if given,
    /// replaces the stored PIN in the same transaction.
    async fn unlock_customer(&self, name: &str, new_pin: Option<&[u8]>) -> Result<(), NetError> {
        self.node
            .db
            .with_retry(move |tx| {
                Box::pin(async move {
                    let row = sqlx::query("SELECT pin_guard FROM cpp_customers WHERE name = $1")
                        .bind(name)
                        .fetch_optional(&mut **tx)
                        .await?
                        .ok_or(NetError::NotFound { what: "customer" })?;
                    let guard: Vec<u8> = row.try_get("pin_guard")?;
                    let mut guard = PinGuard::from_wire(&guard).map_err(|_| corrupt("guard"))?;
                    guard.unlock();
                    sqlx::query("UPDATE cpp_customers SET pin_guard = $2 WHERE name = $1")
                        .bind(name)
                        .bind(guard.to_wire())
                        .execute(&mut **tx)
                        .await?;
                    if let Some(stored) = new_pin {
                        sqlx::query("UPDATE cpp_customers SET pin_hash = $2 WHERE name = $1")
                            .bind(name)
                            .bind(stored)
                            .execute(&mut **tx)
                            .await?;
                    }
                    Ok::<_, NetError>(())
                })
            })
            .await
    }

    /// Checks `pin` against what is stored for `customer`: a PVV in
    /// microseconds on this thread; an Argon2id hash of a customer enrolled
    /// before PVVs off the async threads.
    async fn check_pin(&self, customer: &CustomerRow, pin: &Pin) -> Result<PinCheck, NetError> {
        if !customer.pin.is_slow() {
            return Ok(customer.pin.check(&self.pin_keys, &customer.name, pin));
        }
        let (stored, keys) = (customer.pin.clone(), self.pin_keys.clone());
        let (name, pin) = (customer.name.clone(), pin.clone());
        tokio::task::spawn_blocking(move || stored.check(&keys, &name, &pin))
            .await
            .map_err(|e| NetError::Internal(format!("PIN check: {e}")))
    }

    async fn customer_by_device(&self, device: PartyId) -> Result<CustomerRow, NetError> {
        let row = sqlx::query("SELECT * FROM cpp_customers WHERE device = $1")
            .bind(&device.0[..])
            .fetch_optional(self.node.db.pool())
            .await?
            .ok_or_else(|| NetError::Refused("unknown customer device".into()))?;
        let cert: Vec<u8> = row.try_get("certificate")?;
        let pin: Vec<u8> = row.try_get("pin_hash")?;
        Ok(CustomerRow {
            name: row.try_get("name")?,
            certificate: Certificate::from_wire(&cert).map_err(|_| corrupt("customer"))?,
            pin: StoredPin::from_wire(&pin).map_err(|_| corrupt("stored PIN"))?,
        })
    }

    /// Opens a PR and records its payment (`received`); returns the payment
    /// id. A repeat of the same PR returns the same id; a wrong PIN, a
    /// locked account or a changed PR under the same key is an error.
    async fn accept_pr(&self, frame: &[u8], now: Timestamp) -> Result<[u8; 16], NetError> {
        let node = &self.node;
        let header =
            mpay_envelope::peek_header(frame).map_err(|e| NetError::Refused(e.to_string()))?;
        let customer = self.customer_by_device(header.sender).await?;
        if customer.certificate.body.issuer != node.me.id {
            return Err(NetError::Refused(
                "device certificate not issued here".into(),
            ));
        }
        let (_, pr) = node
            .with_replay(|guard| {
                open_pr(
                    frame,
                    &node.keys,
                    node.me.id,
                    &customer.certificate,
                    &node.trust,
                    guard,
                    now,
                )
            })
            .map_err(|e| match e {
                SemopsError::Envelope(mpay_envelope::EnvelopeError::Replay) => NetError::Replay,
                other => NetError::Refused(other.to_string()),
            })?;
        if pr.customer.as_str() != customer.name {
            return Err(NetError::Forbidden(
                "the PR names another customer than the device's".into(),
            ));
        }
        let trans = pr.trans.unverified_body().clone();
        let mpp = node
            .directory
            .service_by_id(trans.mpp)
            .filter(|s| s.role == ServiceRole::Mpp)
            .ok_or_else(|| NetError::Refused("the TRANS names an unknown MPP".into()))?
            .clone();
        if trans.amount.currency() != self.currency() {
            return Err(NetError::Refused("the TRANS is in another currency".into()));
        }
        let merchant_cert = self.merchant_certificate(&mpp, trans.merchant, now).await?;
        pr.trans
            .verify(&merchant_cert, now)
            .map_err(|e| NetError::Refused(format!("TRANS: {e}")))?;
        let timing = &node.config.timing;
        if trans.expires_at <= now.saturating_add_ms(timing.hop_budget_ms.saturating_mul(4)) {
            return Err(NetError::Refused(
                "the TRANS expires before the merchant could decide".into(),
            ));
        }
        let request_hash = node.keyed_hash("cpp pr", &[&pr.to_wire()]);
        let id_hash = node.keyed_hash(
            "cpp payment id",
            &[customer.name.as_bytes(), &pr.idempotency_key],
        );
        let mut id = [0u8; 16];
        id.copy_from_slice(&id_hash[..16]);
        if let Some(existing) = self.load(&id).await? {
            return if existing.request_hash == request_hash {
                Ok(id)
            } else {
                Err(NetError::IdempotencyConflict)
            };
        }
        let (pin_ok, renew) = match self.check_pin(&customer, &pr.pin).await? {
            PinCheck::Right { renew } => (true, renew.map(|pvv| StoredPin::Pvv(pvv).to_wire())),
            PinCheck::Wrong => (false, None),
            PinCheck::UnknownKey => {
                return Err(NetError::conflict(
                    "pin_reset_required",
                    "this customer's PIN can no longer be checked (its key was retired); \
                     an operator must set a new one",
                ));
            }
        };
        let renew = renew.as_deref();
        let deadline = trans
            .expires_at
            .min(now.saturating_add_ms(timing.decision_timeout_ms));
        let hold_expires_at = deadline.saturating_add_ms(timing.hold_grace_ms);
        let pr_key = &hex(&id);
        let name = customer.name.as_str();
        let (request_hash, trans_wire, cert_wire) = (
            &request_hash[..],
            pr.trans.to_wire(),
            merchant_cert.to_wire(),
        );
        let (trans_wire, cert_wire) = (&trans_wire, &cert_wire);
        let shipping_wire = pr.shipping.as_ref().map(|s| s.to_wire());
        let shipping_wire = shipping_wire.as_deref();
        let idem = &pr.idempotency_key[..];
        let mpp_name = mpp.name.as_str();
        let amount = trans.amount.minor_units();
        let class = match self.classify(trans.amount) {
            AmountClass::Macro => "macro",
            AmountClass::Micro => "micro",
        };
        let micro_ctx = if class == "micro" {
            let routed = RoutedNotice {
                deadline,
                notice: self.sign_notice(
                    id,
                    &pr.trans,
                    &customer.name,
                    deadline,
                    AmountClass::Micro,
                    pr.shipping.clone(),
                )?,
            }
            .forward(now, timing.hop_budget_ms)
            .map(|r| r.to_wire());
            Some(micro::MicroCtx {
                device: customer.certificate.subject(),
                routed,
                dc: node.my_dc()?.name.clone(),
                blocked: self.sign_confirmation(
                    id,
                    ConfirmationOutcome::Rejected {
                        reason: RejectReason::AggregateTransferFailed,
                    },
                    trans.amount,
                    now,
                )?,
                received: core::Payment {
                    state: PaymentState::Received,
                    deadline_ms: deadline.as_millis(),
                    notice_sent: false,
                },
            })
        } else {
            None
        };
        let micro_ctx = micro_ctx.as_ref();
        let total = trans.amount;
        let outcome = node
            .db
            .with_retry(move |tx| {
                Box::pin(async move {
                    let row = sqlx::query(
                        "SELECT pin_guard, bank, account FROM cpp_customers WHERE name = $1",
                    )
                    .bind(name)
                    .fetch_one(&mut **tx)
                    .await?;
                    let guard: Vec<u8> = row.try_get("pin_guard")?;
                    let bank: String = row.try_get("bank")?;
                    let account: String = row.try_get("account")?;
                    let mut guard = PinGuard::from_wire(&guard).map_err(|_| corrupt("guard"))?;
                    let existing =
                        sqlx::query("SELECT request_hash FROM cpp_payments WHERE id = $1")
                            .bind(&id[..])
                            .fetch_optional(&mut **tx)
                            .await?;
                    if let Some(existing) = existing {
                        let hash: Vec<u8> = existing.try_get("request_hash")?;
                        return if hash == request_hash {
                            Ok(Outcome::Recorded)
                        } else {
                            Err(NetError::IdempotencyConflict)
                        };
                    }
                    // The key is used up by its first answer, a wrong PIN
                    // included: a repeat is not counted again.
                    if let Some(stored) =
                        idempotency::begin(tx, PR_SCOPE, pr_key, request_hash, ms(now)).await?
                    {
                        return Outcome::from_stored(&stored.response);
                    }
                    let before = guard;
                    let checked = guard.check(pin_ok);
                    // A right PIN with no failures before changes nothing:
                    // the customer's row is not written (no write-write
                    // conflicts between one customer's payments).
                    if guard != before {
                        sqlx::query("UPDATE cpp_customers SET pin_guard = $2 WHERE name = $1")
                            .bind(name)
                            .bind(guard.to_wire())
                            .execute(&mut **tx)
                            .await?;
                    }
                    if let (Ok(()), Some(renew)) = (&checked, renew) {
                        sqlx::query("UPDATE cpp_customers SET pin_hash = $2 WHERE name = $1")
                            .bind(name)
                            .bind(renew)
                            .execute(&mut **tx)
                            .await?;
                    }
                    let refused = match checked {
                        Err(mpay_semops::PinError::Locked) => Some(Outcome::Locked),
                        Err(mpay_semops::PinError::Wrong { left }) => Some(Outcome::Wrong(left)),
                        Err(_) => Some(Outcome::Wrong(0)),
                        Ok(()) => None,
                    };
                    if let Some(outcome) = refused {
                        idempotency::finish(tx, PR_SCOPE, pr_key, &outcome.to_stored()).await?;
                        return Ok(outcome);
                    }
                    idempotency::finish(tx, PR_SCOPE, pr_key, &Outcome::Recorded.to_stored())
                        .await?;
                    let seq: i64 = sqlx::query(
                        "INSERT INTO cpp_payments (id, customer, idempotency_key, request_hash,
                            trans, merchant_certificate, mpp, amount, class, state, bank, account,
                            hold_expires_at, deadline, refunded, created_at, updated_at, shipping)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'received', $10, $11, $12,
                            $13, 0, $14, $14, $15) RETURNING seq",
                    )
                    .bind(&id[..])
                    .bind(name)
                    .bind(idem)
                    .bind(request_hash)
                    .bind(&trans_wire[..])
                    .bind(&cert_wire[..])
                    .bind(mpp_name)
                    .bind(amount)
                    .bind(class)
                    .bind(bank)
                    .bind(account)
                    .bind(ms(hold_expires_at))
                    .bind(ms(deadline))
                    .bind(ms(now))
                    .bind(shipping_wire)
                    .fetch_one(&mut **tx)
                    .await?
                    .try_get("seq")?;
                    if let Some(ctx) = micro_ctx {
                        self.record_micro(tx, ctx, id, seq, total, now).await?;
                    }
                    Ok(Outcome::Recorded)
                })
            })
            .await?;
        if micro_ctx.is_some() {
            // A deferred micropayment's PN went into the outbox with it.
            node.kick.notify_one();
        }
        match outcome {
            Outcome::Recorded => Ok(id),
            Outcome::Wrong(left) => Err(NetError::WrongPin { left }),
            Outcome::Locked => Err(NetError::Locked),
        }
    }

    /// Drives the payment's saga step, if it is in one (at most one driver
    /// per payment in this process).
    async fn drive(self: &Arc<Self>, id: [u8; 16]) {
        if !self.node.begin_step(&id) {
            return;
        }
        // A step leads to at most two more (received → expiring → expired).
        for _ in 0..3 {
            match self.step(id).await {
                Ok(true) => continue,
                Ok(false) => break,
                Err(NetError::Unavailable(reason)) => {
                    tracing::debug!(payment = hex(&id), %reason, "bank unavailable; will resume");
                    break;
                }
                Err(error) => {
                    tracing::warn!(payment = hex(&id), %error, "saga step failed; will resume");
                    break;
                }
            }
        }
        self.node.end_step(&id);
    }

    /// One saga step; `Ok(true)` if the state moved on to another step.
    async fn step(self: &Arc<Self>, id: [u8; 16]) -> Result<bool, NetError> {
        let Some(row) = self.load(&id).await? else {
            return Ok(false);
        };
        match (saga::HoldCall::due(row.state), row.is_micro()) {
            (Some(saga::HoldCall::Place), true) => self.micro_trigger(row).await,
            (Some(saga::HoldCall::Place), false) => self.place_hold(row).await,
            (Some(saga::HoldCall::Post), true) => self.micro_approve(row).await,
            (Some(saga::HoldCall::Post), false) => self.post_hold(row).await,
            (Some(saga::HoldCall::Void), true) => self.micro_take_back(row).await,
            (Some(saga::HoldCall::Void), false) => self.void_hold(row).await,
            (None, _) => Ok(false),
        }
    }

    async fn place_hold(self: &Arc<Self>, row: PaymentRow) -> Result<bool, NetError> {
        let node = &self.node;
        let bank = node.bank(&row.bank)?;
        let account = AccountId::parse(&row.account).map_err(|_| corrupt("account"))?;
        let request = PlaceHold {
            account,
            amount: row.amount,
            expires_at: row.hold_expires_at,
            reference: format!("payment {}", hex(&row.id)),
        };
        let answer = sort_answer(
            bank.place_hold(&saga::HoldCall::Place.key(&hex(&row.id)), &request)
                .await,
        );
        let now = wall_clock();
        let id = row.id;
        match answer {
            BankAnswer::Retry(reason) => Err(NetError::Unavailable(reason)),
            BankAnswer::Done(hold) => {
                let routed = self.notice(&row, AmountClass::Macro, now)?;
                let dc = node.my_dc()?.name.clone();
                let (dc, hold_id) = (&dc, hold.id.0);
                let routed = routed.as_ref().map(|r| r.to_wire());
                let routed = &routed;
                let moved = node
                    .db
                    .with_retry(move |tx| {
                        Box::pin(async move {
                            let current = self.load_in(tx, &id).await?;
                            if current.state != PaymentState::Received {
                                return Ok(false);
                            }
                            let step = admit_in(tx, current.core(), id, routed.as_deref(), dc, now)
                                .await?;
                            sqlx::query(
                                "UPDATE cpp_payments SET state = $2, hold_id = $3, notice_sent = $4,
                                    updated_at = $5 WHERE id = $1",
                            )
                            .bind(&id[..])
                            .bind(step.payment.state.as_str())
                            .bind(hold_id)
                            .bind(i64::from(step.payment.notice_sent))
                            .bind(ms(now))
                            .execute(&mut **tx)
                            .await?;
                            Ok::<_, NetError>(step.effects.contains(&core::Effect::Drive))
                        })
                    })
                    .await?;
                node.kick.notify_one();
                node.waiters.wake(id);
                Ok(moved)
            }
            BankAnswer::Refused(code) => {
                let reason = match code.as_str() {
                    "insufficient_funds" => RejectReason::InsufficientFunds,
                    "unknown_account" => RejectReason::UnknownCustomer,
                    _ => RejectReason::OverLimit,
                };
                let declined = advance(row.core(), saga::after_place(false, false), now)?
                    .payment
                    .state;
                let confirmation = self.sign_confirmation(
                    id,
                    ConfirmationOutcome::Rejected { reason },
                    row.amount,
                    now,
                )?;
                let (code, confirmation) = (&code, &confirmation);
                node.db
                    .with_retry(move |tx| {
                        Box::pin(async move {
                            sqlx::query(
                                "UPDATE cpp_payments SET state = $5, reason = $2,
                                    confirmation = $3, updated_at = $4
                                 WHERE id = $1 AND state = $6",
                            )
                            .bind(&id[..])
                            .bind(code.as_str())
                            .bind(&confirmation[..])
                            .bind(ms(now))
                            .bind(declined.as_str())
                            .bind(PaymentState::Received.as_str())
                            .execute(&mut **tx)
                            .await?;
                            Ok::<_, NetError>(())
                        })
                    })
                    .await?;
                node.waiters.wake(id);
                Ok(false)
            }
        }
    }

    /// The PN for `row` and its first hop's deadline; `None` when no time
    /// is left to route it.
    fn notice(
        &self,
        row: &PaymentRow,
        class: AmountClass,
        now: Timestamp,
    ) -> Result<Option<RoutedNotice>, NetError> {
        if now >= row.deadline {
            return Ok(None);
        }
        let notice = self.sign_notice(
            row.id,
            &row.trans,
            &row.customer,
            row.deadline,
            class,
            row.shipping.clone(),
        )?;
        Ok(RoutedNotice {
            deadline: row.deadline,
            notice,
        }
        .forward(now, self.node.config.timing.hop_budget_ms))
    }

    fn sign_notice(
        &self,
        id: [u8; 16],
        trans: &SignedTrans,
        customer: &str,
        deadline: Timestamp,
        class: AmountClass,
        shipping: Option<SealedShipping>,
    ) -> Result<Signed<PaymentNotice>, NetError> {
        let node = &self.node;
        let pseudonym_key = node.keyed_hash("cpp pseudonym key", &[]);
        let merchant = trans.unverified_body().merchant;
        Signed::sign(
            PaymentNotice {
                payment_id: id,
                trans: trans.clone(),
                customer_pseudonym: mpay_semops::pseudonym(&pseudonym_key, customer, merchant),
                cpp: node.me.id,
                class,
                deadline,
                shipping,
            },
            &node.keys,
        )
        .map_err(|e| NetError::Internal(e.to_string()))
    }

    async fn post_hold(self: &Arc<Self>, row: PaymentRow) -> Result<bool, NetError> {
        let node = &self.node;
        let relay_bytes = row
            .decision
            .as_deref()
            .ok_or_else(|| corrupt("no decision"))?;
        let relay = SignedDecisionRelay::from_wire(relay_bytes).map_err(|_| corrupt("decision"))?;
        let relay = relay.unverified_body();
        let hold = HoldId(row.hold_id.ok_or_else(|| corrupt("no hold"))?);
        let customer_bank = node
            .directory
            .bank(&row.bank)
            .ok_or_else(|| corrupt("customer bank"))?;
        let account =
            AccountId::parse(&relay.payout_account).map_err(|_| corrupt("payout account"))?;
        let destination = if relay.payout_bank == customer_bank.id {
            Destination::Account(account)
        } else {
            Destination::Interbank {
                bank: relay.payout_bank,
                account,
            }
        };
        let bank = node.bank(&row.bank)?;
        let answer = sort_answer(
            bank.post_hold(
                &saga::HoldCall::Post.key(&hex(&row.id)),
                &PostHold { hold, destination },
            )
            .await,
        );
        let ended = match answer {
            BankAnswer::Done(_) => HoldState::Posted,
            BankAnswer::Retry(reason) => return Err(NetError::Unavailable(reason)),
            BankAnswer::Refused(code) => {
                let view = bank
                    .hold(hold)
                    .await
                    .map_err(|e| NetError::Unavailable(format!("hold after `{code}`: {e}")))?;
                view.state
            }
        };
        match saga::after_post(hold_end(ended)) {
            saga::Next::Apply(input @ core::Input::Posted) => {
                self.finish(&row, input, ConfirmationOutcome::Transferred, None)
                    .await
            }
            saga::Next::Apply(input) => {
                tracing::error!(
                    payment = hex(&row.id),
                    "approved payment's hold ended unposted; payment expires"
                );
                self.finish(
                    &row,
                    input,
                    ConfirmationOutcome::Expired,
                    Some("hold_ended"),
                )
                .await
            }
            saga::Next::Retry => Err(NetError::Unavailable("hold still pending".into())),
            saga::Next::Broken(what) => Err(NetError::Internal(what.into())),
        }
    }

    async fn void_hold(self: &Arc<Self>, row: PaymentRow) -> Result<bool, NetError> {
        let node = &self.node;
        let bank = node.bank(&row.bank)?;
        let hold = HoldId(row.hold_id.ok_or_else(|| corrupt("no hold"))?);
        let answer = sort_answer(
            bank.void_hold(&saga::HoldCall::Void.key(&hex(&row.id)), &VoidHold { hold })
                .await,
        );
        let ended = match answer {
            BankAnswer::Done(_) => HoldState::Voided,
            BankAnswer::Retry(reason) => return Err(NetError::Unavailable(reason)),
            BankAnswer::Refused(code) => {
                bank.hold(hold)
                    .await
                    .map_err(|e| NetError::Unavailable(format!("hold after `{code}`: {e}")))?
                    .state
            }
        };
        let input = match saga::after_void(hold_end(ended)) {
            saga::Next::Apply(input) => input,
            saga::Next::Retry => return Err(NetError::Unavailable("hold still pending".into())),
            saga::Next::Broken(what) => {
                return Err(NetError::Internal(format!("{what}: invariant broken")));
            }
        };
        let outcome = match row.state {
            PaymentState::Rejecting => ConfirmationOutcome::Rejected {
                reason: RejectReason::MerchantRejected,
            },
            _ => ConfirmationOutcome::Expired,
        };
        self.finish(&row, input, outcome, None).await
    }

    /// Ends a saga step: moves `row` by `input` (the core says where), signs
    /// the confirmation, and (if a PN went out) sends it toward the MPP, all
    /// in one transaction.
    async fn finish(
        &self,
        row: &PaymentRow,
        input: core::Input,
        outcome: ConfirmationOutcome,
        reason: Option<&str>,
    ) -> Result<bool, NetError> {
        self.finish_micro(row, input, outcome, reason, MicroEnd::None)
            .await
    }

    /// [`Cpp::finish`], recording `micro` in the same transaction.
    async fn finish_micro(
        &self,
        row: &PaymentRow,
        input: core::Input,
        outcome: ConfirmationOutcome,
        reason: Option<&str>,
        micro: MicroEnd,
    ) -> Result<bool, NetError> {
        let node = &self.node;
        let micro = &micro;
        let now = wall_clock();
        let step = advance(row.core(), input, now)?;
        let next = step.payment.state;
        let forward = step.effects.contains(&core::Effect::ForwardConfirmation);
        let confirmation = self.sign_confirmation(row.id, outcome, row.amount, now)?;
        let dc = node.my_dc()?.name.clone();
        let (id, from) = (row.id, row.state);
        let (confirmation, dc) = (&confirmation, &dc);
        let reason = reason.or(match next {
            PaymentState::Rejected => Some("merchant_rejected"),
            _ => None,
        });
        node.db
            .with_retry(move |tx| {
                Box::pin(async move {
                    let updated = sqlx::query(
                        "UPDATE cpp_payments SET state = $3, confirmation = $4, reason = $5,
                            updated_at = $6 WHERE id = $1 AND state = $2",
                    )
                    .bind(&id[..])
                    .bind(from.as_str())
                    .bind(next.as_str())
                    .bind(&confirmation[..])
                    .bind(reason)
                    .bind(ms(now))
                    .execute(&mut **tx)
                    .await?;
                    if updated.rows_affected() == 1 {
                        match micro {
                            MicroEnd::None => {}
                            MicroEnd::Owed { mpp, amount } => {
                                sqlx::query(
                                    "INSERT INTO cpp_micro_owed (payment_id, mpp, amount, approved_at)
                                     VALUES ($1, $2, $3, $4)",
                                )
                                .bind(&id[..])
                                .bind(mpp.as_str())
                                .bind(*amount)
                                .bind(ms(now))
                                .execute(&mut **tx)
                                .await?;
                            }
                            MicroEnd::Returned(amount) => {
                                sqlx::query(
                                    "UPDATE cpp_payments SET micro_returned = $2 WHERE id = $1",
                                )
                                .bind(&id[..])
                                .bind(*amount)
                                .execute(&mut **tx)
                                .await?;
                            }
                        }
                    }
                    if updated.rows_affected() == 1 && forward {
                        Node::enqueue(
                            tx,
                            dc,
                            kind::CONFIRMATION,
                            id,
                            confirmation,
                            &format!("conf-{}", hex(&id)),
                            now,
                        )
                        .await?;
                    }
                    Ok::<_, NetError>(())
                })
            })
            .await?;
        node.kick.notify_one();
        node.waiters.wake(id);
        Ok(false)
    }

    /// Moves pending payments past their deadline to `expiring` and drives
    /// them (the hold is voided): the core's `DeadlinePassed`, applied to a
    /// batch in one statement.
    pub(crate) async fn expire_due(self: &Arc<Self>, now: Timestamp) -> Result<(), NetError> {
        let rows = sqlx::query(
            "UPDATE cpp_payments SET state = $3, updated_at = $1
             WHERE id IN (SELECT id FROM cpp_payments WHERE state = $4 AND deadline < $1
                          LIMIT $2)
             RETURNING id",
        )
        .bind(ms(now))
        .bind(SWEEP_BATCH_MAX)
        .bind(PaymentState::Expiring.as_str())
        .bind(PaymentState::Pending.as_str())
        .fetch_all(self.node.db.pool())
        .await?;
        for row in rows {
            let id: Vec<u8> = row.try_get("id")?;
            if let Ok(id) = <[u8; 16]>::try_from(id) {
                self.node.waiters.wake(id);
                spawn_drive(self, id);
            }
        }
        Ok(())
    }

    /// Resumes every saga step left half done (bank unreachable, crash).
    pub(crate) async fn recover(self: &Arc<Self>) -> Result<(), NetError> {
        let steps: Vec<String> = PaymentState::ALL
            .into_iter()
            .filter(|s| s.is_saga_step())
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        // Safe: the names are the core's constants.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id FROM cpp_payments WHERE state IN ({}) LIMIT $1",
            steps.join(", ")
        )))
        .bind(SWEEP_BATCH_MAX)
        .fetch_all(self.node.db.pool())
        .await?;
        for row in rows {
            let id: Vec<u8> = row.try_get("id")?;
            if let Ok(id) = <[u8; 16]>::try_from(id) {
                spawn_drive(self, id);
            }
        }
        let refunds =
            sqlx::query("SELECT payment_id, refund_key FROM cpp_refunds WHERE state = $2 LIMIT $1")
                .bind(SWEEP_BATCH_MAX)
                .bind(RefundState::Refunding.as_str())
                .fetch_all(self.node.db.pool())
                .await?;
        for row in refunds {
            let id: Vec<u8> = row.try_get("payment_id")?;
            let key: Vec<u8> = row.try_get("refund_key")?;
            if let (Ok(id), Ok(key)) = (<[u8; 16]>::try_from(id), <[u8; 16]>::try_from(key)) {
                spawn_refund(self, id, key);
            }
        }
        Ok(())
    }

    async fn on_inbox(
        self: &Arc<Self>,
        inbound: Inbound,
        now: Timestamp,
    ) -> Result<String, NetError> {
        self.node
            .check_sender(&inbound.sender, &[ServiceRole::Dc], true)?;
        match inbound.header.kind {
            k if k == kind::DECISION_RELAY => self.on_decision(&inbound.payload, now).await,
            k if k == kind::REFUND_RELAY => self.on_refund(&inbound.payload, now).await,
            other => Err(NetError::Refused(format!(
                "a CPP does not take kind {:#06x}",
                other.0
            ))),
        }
    }

    fn mpp_of(&self, row: &PaymentRow) -> Result<crate::directory::ResolvedService, NetError> {
        self.node
            .directory
            .service(&row.mpp)
            .cloned()
            .ok_or_else(|| corrupt("MPP no longer in the directory"))
    }

    async fn on_decision(
        self: &Arc<Self>,
        payload: &[u8],
        now: Timestamp,
    ) -> Result<String, NetError> {
        let refused = |e: SemopsError| NetError::Refused(e.to_string());
        let relay = SignedDecisionRelay::from_wire(payload).map_err(|e| refused(e.into()))?;
        let id = relay.unverified_body().authority.payment_id();
        let row = self
            .load(&id)
            .await?
            .ok_or_else(|| NetError::Refused("decision for an unknown payment".into()))?;
        let mpp = self.mpp_of(&row)?;
        let body = relay.verify(&mpp.certificate, now).map_err(refused)?;
        let approve = merchant_approves(body, &row, now)?;
        if self.node.directory.bank_by_id(body.payout_bank).is_none()
            || AccountId::parse(&body.payout_account).is_err()
        {
            return Err(NetError::Refused("payout account unknown".into()));
        }
        let input = core::Input::Decided { approve };
        let outcome = self
            .node
            .db
            .with_retry(move |tx| {
                Box::pin(async move {
                    let current = self.load_in(tx, &id).await?;
                    if current.decision.as_deref() == Some(payload) {
                        return Ok("duplicate");
                    }
                    let step = advance(current.core(), input, now)?;
                    if step.moved_from(current.state) {
                        sqlx::query(
                            "UPDATE cpp_payments SET state = $2, decision = $3, updated_at = $4
                             WHERE id = $1",
                        )
                        .bind(&id[..])
                        .bind(step.payment.state.as_str())
                        .bind(payload)
                        .bind(ms(now))
                        .execute(&mut **tx)
                        .await?;
                        return Ok("applied");
                    }
                    sqlx::query(
                        "INSERT INTO cpp_late_decisions (payment_id, relay, state_then, received_at)
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(&id[..])
                    .bind(payload)
                    .bind(current.state.as_str())
                    .bind(ms(now))
                    .execute(&mut **tx)
                    .await?;
                    Ok::<_, NetError>("late")
                })
            })
            .await?;
        if outcome == "applied" {
            self.node.waiters.wake(id);
            spawn_drive(self, id);
        } else if outcome == "late" {
            tracing::warn!(payment = hex(&id), "late decision recorded, not applied");
        }
        Ok(outcome.to_owned())
    }

    async fn on_refund(
        self: &Arc<Self>,
        payload: &[u8],
        now: Timestamp,
    ) -> Result<String, NetError> {
        let refused = |e: SemopsError| NetError::Refused(e.to_string());
        let relay = SignedRefundRelay::from_wire(payload).map_err(|e| refused(e.into()))?;
        let id = relay.unverified_body().refund.unverified_body().payment_id;
        let row = self
            .load(&id)
            .await?
            .ok_or_else(|| NetError::Refused("refund for an unknown payment".into()))?;
        let mpp = self.mpp_of(&row)?;
        let body = relay.verify(&mpp.certificate, now).map_err(refused)?;
        // The MPP checked the request's time when the merchant sent it (and
        // has moved the money since); applying it is idempotent by key.
        let request = body
            .refund
            .verify_relayed(&row.merchant_cert, now)
            .map_err(refused)?
            .clone();
        if request.merchant != row.trans.unverified_body().merchant {
            return Err(NetError::Refused("refund by another merchant".into()));
        }
        if request.amount.currency() != self.currency() {
            return Err(NetError::Refused("refund in another currency".into()));
        }
        let key = request.idempotency_key;
        let amount = request.amount.minor_units();
        let outcome = self
            .node
            .db
            .with_retry(move |tx| {
                Box::pin(async move {
                    let existing = sqlx::query(
                        "SELECT state FROM cpp_refunds WHERE payment_id = $1 AND refund_key = $2",
                    )
                    .bind(&id[..])
                    .bind(&key[..])
                    .fetch_optional(&mut **tx)
                    .await?;
                    if existing.is_some() {
                        return Ok("duplicate");
                    }
                    // One conditional update bounds the total refunded by
                    // what was paid, whatever runs beside it.
                    let updated = sqlx::query(
                        "UPDATE cpp_payments SET refunded = refunded + $2, updated_at = $3
                         WHERE id = $1 AND state = $4 AND refunded + $2 <= amount",
                    )
                    .bind(&id[..])
                    .bind(amount)
                    .bind(ms(now))
                    .bind(PaymentState::Completed.as_str())
                    .execute(&mut **tx)
                    .await?;
                    let applicable = updated.rows_affected() == 1;
                    let state = RefundState::start(refund::Leg::Cpp, applicable);
                    let reason = (!applicable)
                        .then_some("payment not completed or refund exceeds it");
                    sqlx::query(
                        "INSERT INTO cpp_refunds (payment_id, refund_key, amount, state, relay,
                            reason, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                    )
                    .bind(&id[..])
                    .bind(&key[..])
                    .bind(amount)
                    .bind(state.as_str())
                    .bind(payload)
                    .bind(reason)
                    .bind(ms(now))
                    .execute(&mut **tx)
                    .await?;
                    Ok::<_, NetError>(if applicable { "applied" } else { "refused" })
                })
            })
            .await?;
        match outcome {
            "applied" => spawn_refund(self, id, key),
            "refused" => tracing::error!(
                payment = hex(&id),
                "refund refused after the MPP funded it: the operator must return it"
            ),
            _ => {}
        }
        Ok(outcome.to_owned())
    }

    /// Pays a recorded refund from the CPP's account to the customer's.
    async fn drive_refund(self: &Arc<Self>, id: [u8; 16], key: [u8; 16]) {
        let mut step_key = id.to_vec();
        step_key.extend_from_slice(&key);
        if !self.node.begin_step(&step_key) {
            return;
        }
        if let Err(error) = self.refund_step(id, key).await {
            tracing::debug!(payment = hex(&id), %error, "refund step not done; will resume");
        }
        self.node.end_step(&step_key);
    }

    async fn refund_step(&self, id: [u8; 16], key: [u8; 16]) -> Result<(), NetError> {
        let node = &self.node;
        let refund = sqlx::query(
            "SELECT amount, state FROM cpp_refunds WHERE payment_id = $1 AND refund_key = $2",
        )
        .bind(&id[..])
        .bind(&key[..])
        .fetch_optional(node.db.pool())
        .await?
        .ok_or(NetError::NotFound { what: "refund" })?;
        let state: String = refund.try_get("state")?;
        if RefundState::parse(&state) != Some(RefundState::Refunding) {
            return Ok(());
        }
        let amount = Amount::new(refund.try_get("amount")?, self.currency());
        let row = self
            .load(&id)
            .await?
            .ok_or(NetError::NotFound { what: "payment" })?;
        let (home_bank, home_account) = node
            .me
            .home
            .clone()
            .ok_or_else(|| NetError::Internal("CPP without a home account".into()))?;
        let base = saga::refund_key(refund::Leg::Cpp, &hex(&id), &hex(&key));
        let reference = format!("refund of payment {}", hex(&id));
        let answer = node
            .move_money_when_funded(
                &base,
                (&home_bank, &home_account),
                (&row.bank, &row.account),
                amount,
                reference,
            )
            .await?;
        let now = wall_clock();
        let answer = match answer {
            BankAnswer::Retry(reason) => return Err(NetError::Unavailable(reason)),
            BankAnswer::Refused(code) if code == INSUFFICIENT_FUNDS => {
                saga::TransferAnswer::InsufficientFunds
            }
            BankAnswer::Refused(code) => {
                tracing::error!(payment = hex(&id), %code, "refund transfer refused");
                saga::TransferAnswer::Refused
            }
            BankAnswer::Done(_) => saga::TransferAnswer::Done,
        };
        // The MPP's transfer to our account may still be on its way between
        // banks: try again later.
        let input = saga::after_refund_transfer(answer)
            .ok_or_else(|| NetError::Unavailable("refund not yet funded".into()))?;
        let (state, effects) = refund::step(RefundState::Refunding, input)
            .map_err(|illegal| NetError::Internal(illegal.to_string()))?;
        let confirmation = if effects.contains(&refund::Effect::Confirm) {
            Some(self.sign_confirmation(id, ConfirmationOutcome::Refunded, amount, now)?)
        } else {
            None
        };
        let release = effects.contains(&refund::Effect::Release);
        let dc = node.my_dc()?.name.clone();
        let (dc, confirmation, effects) = (&dc, &confirmation, &effects);
        node.db
            .with_retry(move |tx| {
                Box::pin(async move {
                    let updated = sqlx::query(
                        "UPDATE cpp_refunds SET state = $3, confirmation = $4, updated_at = $5
                         WHERE payment_id = $1 AND refund_key = $2 AND state = $6",
                    )
                    .bind(&id[..])
                    .bind(&key[..])
                    .bind(state.as_str())
                    .bind(confirmation.as_deref())
                    .bind(ms(now))
                    .bind(RefundState::Refunding.as_str())
                    .execute(&mut **tx)
                    .await?;
                    if updated.rows_affected() != 1 {
                        return Ok(());
                    }
                    if release {
                        sqlx::query(
                            "UPDATE cpp_payments SET refunded = refunded - $2, updated_at = $3
                             WHERE id = $1",
                        )
                        .bind(&id[..])
                        .bind(amount.minor_units())
                        .bind(ms(now))
                        .execute(&mut **tx)
                        .await?;
                    }
                    if effects.contains(&refund::Effect::MaybeRefundedInFull) {
                        // The payment core's `RefundedInFull`, when the
                        // refunds reach the amount.
                        sqlx::query(
                            "UPDATE cpp_payments SET state = $3, updated_at = $2
                             WHERE id = $1 AND state = $4 AND refunded = amount",
                        )
                        .bind(&id[..])
                        .bind(ms(now))
                        .bind(PaymentState::Refunded.as_str())
                        .bind(PaymentState::Completed.as_str())
                        .execute(&mut **tx)
                        .await?;
                    }
                    if let Some(confirmation) = confirmation {
                        Node::enqueue(
                            tx,
                            dc,
                            kind::CONFIRMATION,
                            id,
                            confirmation,
                            &format!("conf-{}-refund-{}", hex(&id), hex(&key)),
                            now,
                        )
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

#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Prometheus metrics", content_type = "text/plain", body = inline(mpay_http::openapi::MetricsText))))]
async fn metrics(State(cpp): State<Arc<Cpp>>) -> Result<impl IntoResponse, NetError> {
    let by_state = cpp.node.count_by("cpp_payments", "state").await?;
    let mut text = cpp.node.metrics_text("mpay_cpp", &by_state).await?;
    let refunds = cpp.node.count_by("cpp_refunds", "state").await?;
    text.push_str("# TYPE mpay_cpp_refunds gauge\n");
    for (state, n) in refunds {
        text.push_str(&format!("mpay_cpp_refunds{{state=\"{state}\"}} {n}\n"));
    }
    if cpp.micro.is_some() {
        for (table, name) in [
            ("micro_batches", "mpay_cpp_micro_batches"),
            ("cpp_micro_runs", "mpay_cpp_micro_runs"),
        ] {
            text.push_str(&format!("# TYPE {name} gauge\n"));
            for (state, n) in cpp.node.count_by(table, "state").await? {
                text.push_str(&format!("{name}{{state=\"{state}\"}} {n}\n"));
            }
        }
    }
    Ok(crate::node::prometheus(text))
}

/// The CPP's API, derived from its handlers and their types.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "mpay CPP",
        description = "The customer payment processor of the SEMOPS network: customer enrolment, payment requests (sealed PR frames), status long-polls, and the sealed inbox for decisions and refunds routed by the DC."
    ),
    paths(
        crate::api::health,
        metrics,
        openapi,
        identity,
        enrol,
        unlock,
        set_pin,
        admin_pins,
        submit,
        status,
        admin_payments,
        admin_micro,
        admin_work,
        admin_recluster,
        inbox
    )
)]
struct CppApi;

/// The CPP's `/openapi.json`.
pub fn openapi_document() -> serde_json::Value {
    crate::api::openapi_document(<CppApi as utoipa::OpenApi>::openapi(), &[OPERATOR])
}

#[utoipa::path(get, path = "/openapi.json", tag = "service",
    responses((status = 200, description = "this document", content_type = "application/json", body = inline(mpay_http::openapi::Document))))]
async fn openapi() -> impl IntoResponse {
    Json(openapi_document())
}

#[utoipa::path(get, path = "/v1/identity", tag = "service",
    responses((status = 200, description = "the CPP's id and certificate", body = Identity)))]
async fn identity(State(cpp): State<Arc<Cpp>>) -> Json<Identity> {
    Json(cpp.node.identity())
}

#[utoipa::path(post, path = "/v1/customers", tag = "customers", security(("operator" = [])),
    request_body = EnrolCustomer,
    responses((status = 200, description = "enrolled: the customer's id and device certificate", body = Enrolled)))]
async fn enrol(
    State(cpp): State<Arc<Cpp>>,
    headers: HeaderMap,
    body: Result<Json<EnrolCustomer>, Problem>,
) -> Result<Json<Enrolled>, NetError> {
    let node = &cpp.node;
    node.check_operator(&headers)?;
    let Json(request) = body?;
    let name =
        CustomerRef::new(&request.name).map_err(|e| NetError::Invalid(format!("name: {e}")))?;
    if node.directory.bank(&request.bank).is_none() {
        return Err(NetError::Invalid(format!(
            "unknown bank `{}`",
            request.bank
        )));
    }
    AccountId::parse(&request.account).map_err(|e| NetError::Invalid(format!("account: {e}")))?;
    let pin = Pin::new(&request.pin).map_err(|e| NetError::Invalid(e.to_string()))?;
    let keys: PublicKeys = from_hex_wire("device_keys", &request.device_keys)?;
    let now = wall_clock();
    let device = node.with_rng(PartyId::random);
    let certificate = Certificate::issue(
        CertificateBody {
            subject: device,
            role: Role::Customer,
            keys,
            limits: None,
            issued_at: now.saturating_sub_ms(CERTIFICATE_BACKDATE_MS),
            expires_at: now.saturating_add_ms(node.config.timing.certificate_validity_ms),
            issuer: node.me.id,
        },
        &node.keys,
    );
    let pin_hash = StoredPin::Pvv(cpp.pin_keys.current().pvv(name.as_str(), &pin));
    let guard = PinGuard::new(node.config.pin_failures_max());
    let (cert_wire, hash_wire, guard_wire) =
        (certificate.to_wire(), pin_hash.to_wire(), guard.to_wire());
    let (name, request, cert_wire, hash_wire, guard_wire) =
        (&name, &request, &cert_wire, &hash_wire, &guard_wire);
    node.db
        .with_retry(move |tx| {
            Box::pin(async move {
                let exists = sqlx::query("SELECT name FROM cpp_customers WHERE name = $1")
                    .bind(name.as_str())
                    .fetch_optional(&mut **tx)
                    .await?;
                if exists.is_some() {
                    return Err(NetError::conflict(
                        "customer_exists",
                        "a customer of this name is enrolled",
                    ));
                }
                sqlx::query(
                    "INSERT INTO cpp_customers (name, device, bank, account, certificate, pin_hash,
                        pin_guard, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(name.as_str())
                .bind(&device.0[..])
                .bind(&request.bank)
                .bind(&request.account)
                .bind(&cert_wire[..])
                .bind(&hash_wire[..])
                .bind(&guard_wire[..])
                .bind(ms(now))
                .execute(&mut **tx)
                .await?;
                Ok(())
            })
        })
        .await?;
    Ok(Json(Enrolled {
        id: device.to_hex(),
        certificate: hex(&certificate.to_wire()),
        token: None,
    }))
}

#[utoipa::path(post, path = "/v1/customers/{name}/unlock", tag = "customers", security(("operator" = [])),
    params(("name" = String, Path, description = "the customer's reference, 1–64 bytes", min_length = 1, max_length = 64)),
    responses((status = 200, description = "unlocked", body = mpay_http::openapi::Empty)))]
async fn unlock(
    State(cpp): State<Arc<Cpp>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, NetError> {
    cpp.node.check_operator(&headers)?;
    let name = CustomerRef::new(&name).map_err(|e| NetError::Invalid(format!("name: {e}")))?;
    cpp.unlock_customer(name.as_str(), None).await?;
    Ok(Json(serde_json::json!({ "unlocked": name.as_str() })))
}

#[utoipa::path(post, path = "/v1/customers/{name}/pin", tag = "customers", security(("operator" = [])),
    params(("name" = String, Path, description = "the customer's reference, 1–64 bytes", min_length = 1, max_length = 64)),
    request_body = crate::client::SetPin,
    responses((status = 200, description = "the new PIN is set and the wrong-PIN count starts again", body = mpay_http::openapi::Empty)))]
async fn set_pin(
    State(cpp): State<Arc<Cpp>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Result<Json<crate::client::SetPin>, Problem>,
) -> Result<Json<serde_json::Value>, NetError> {
    cpp.node.check_operator(&headers)?;
    let name = CustomerRef::new(&name).map_err(|e| NetError::Invalid(format!("name: {e}")))?;
    let Json(request) = body?;
    let pin = Pin::new(&request.pin).map_err(|e| NetError::Invalid(e.to_string()))?;
    let name = name.as_str();
    let stored = StoredPin::Pvv(cpp.pin_keys.current().pvv(name, &pin)).to_wire();
    cpp.unlock_customer(name, Some(&stored)).await?;
    Ok(Json(serde_json::json!({ "pin_set": name })))
}

#[utoipa::path(get, path = "/v1/admin/pins", tag = "operator", security(("operator" = [])),
    responses((status = 200, description = "how the customers' PINs are stored", body = crate::client::PinReport)))]
async fn admin_pins(
    State(cpp): State<Arc<Cpp>>,
    headers: HeaderMap,
) -> Result<Json<crate::client::PinReport>, NetError> {
    cpp.node.check_operator(&headers)?;
    let rows = sqlx::query("SELECT pin_hash FROM cpp_customers")
        .fetch_all(cpp.node.db.pool())
        .await?;
    let mut report = crate::client::PinReport::default();
    let current = cpp.pin_keys.current().id();
    for row in rows {
        let wire: Vec<u8> = row.try_get("pin_hash")?;
        let count = match StoredPin::from_wire(&wire).map_err(|_| corrupt("stored PIN"))? {
            StoredPin::Argon2(_) => &mut report.argon2,
            StoredPin::Pvv(pvv) if pvv.key() == current => &mut report.current_key,
            StoredPin::Pvv(pvv) if cpp.pin_keys.get(pvv.key()).is_some() => &mut report.older_keys,
            StoredPin::Pvv(_) => &mut report.unverifiable,
        };
        *count += 1;
        report.customers += 1;
    }
    Ok(Json(report))
}

#[utoipa::path(post, path = "/v1/payments", tag = "payments",
    request_body(content = inline(mpay_http::openapi::Frame), content_type = "application/octet-stream",
        description = "a PR frame sealed to this CPP (mpay_semops::seal_pr)"),
    responses((status = 200, description = "the payment as recorded; 401 wrong_pin, 423 account_locked, 402 insufficient_funds, 409 idempotency_conflict or pin_reset_required otherwise", body = PaymentStatus)))]
async fn submit(
    State(cpp): State<Arc<Cpp>>,
    Body(frame): Body,
) -> Result<Json<PaymentStatus>, NetError> {
    let id = cpp.accept_pr(&frame, wall_clock()).await?;
    cpp.drive(id).await;
    let row = cpp
        .load(&id)
        .await?
        .ok_or(NetError::NotFound { what: "payment" })?;
    if row.state == PaymentState::Declined && row.reason.as_deref() == Some("insufficient_funds") {
        return Err(NetError::InsufficientFunds);
    }
    Ok(Json(row.status()))
}

#[utoipa::path(get, path = "/v1/payments/{id}", tag = "payments",
    params(("id" = String, Path, description = "the payment id, 32 hex digits", pattern = "^[0-9a-f]{32}$"), Wait),
    responses((status = 200, description = "the payment; with wait_ms, once final or after the wait", body = PaymentStatus)))]
async fn status(
    State(cpp): State<Arc<Cpp>>,
    Path(id): Path<String>,
    Query(wait): Query<Wait>,
) -> Result<Json<PaymentStatus>, NetError> {
    let id = id16(&id)?;
    let wait_ms = wait.wait_ms.min(cpp.node.config.timing.long_poll_max_ms);
    let cpp2 = Arc::clone(&cpp);
    let status = cpp
        .node
        .waiters
        .wait(id, Duration::from_millis(wait_ms), move || {
            let cpp = Arc::clone(&cpp2);
            async move {
                let row = cpp
                    .load(&id)
                    .await?
                    .ok_or(NetError::NotFound { what: "payment" })?;
                let done = row.state.is_final();
                Ok((row.status(), done))
            }
        })
        .await?;
    Ok(Json(status))
}

#[utoipa::path(get, path = "/v1/admin/payments", tag = "operator", security(("operator" = [])),
    params(Page),
    responses((status = 200, description = "payments by seq", body = Vec<PaymentRecord>)))]
async fn admin_payments(
    State(cpp): State<Arc<Cpp>>,
    headers: HeaderMap,
    Query(page): Query<Page>,
) -> Result<Json<Vec<PaymentRecord>>, NetError> {
    cpp.node.check_operator(&headers)?;
    let limit = i64::from(page.limit.unwrap_or(PAGE_MAX).min(PAGE_MAX));
    let rows = sqlx::query("SELECT * FROM cpp_payments WHERE seq > $1 ORDER BY seq LIMIT $2")
        .bind(page.after)
        .bind(limit)
        .fetch_all(cpp.node.db.pool())
        .await?;
    let records = rows
        .iter()
        .map(|r| PaymentRow::from_row(r, cpp.currency()).map(|p| p.record()))
        .collect::<Result<_, _>>()?;
    Ok(Json(records))
}

#[utoipa::path(get, path = "/v1/admin/work", tag = "operator", security(("operator" = [])),
    responses((status = 200, description = "what the CPP still has moving", body = crate::client::Work)))]
async fn admin_work(
    State(cpp): State<Arc<Cpp>>,
    headers: HeaderMap,
) -> Result<Json<crate::client::Work>, NetError> {
    cpp.node.check_operator(&headers)?;
    let transfers: &[&str] = if cpp.micro.is_some() {
        &["micro_batches", "cpp_micro_runs"]
    } else {
        &[]
    };
    Ok(Json(cpp.node.work(Some("cpp_refunds"), transfers).await?))
}

#[utoipa::path(get, path = "/v1/admin/micro", tag = "operator", security(("operator" = [])),
    responses((status = 200, description = "the micropayment books", body = crate::client::CppMicroSummary)))]
async fn admin_micro(
    State(cpp): State<Arc<Cpp>>,
    headers: HeaderMap,
) -> Result<Json<crate::client::CppMicroSummary>, NetError> {
    cpp.node.check_operator(&headers)?;
    Ok(Json(cpp.micro_summary().await?))
}

#[utoipa::path(post, path = "/v1/admin/micro/recluster", tag = "operator", security(("operator" = [])),
    responses((status = 200, description = "θ and W fitted per cluster and stored per customer", body = crate::client::ReclusterReport)))]
async fn admin_recluster(
    State(cpp): State<Arc<Cpp>>,
    headers: HeaderMap,
) -> Result<Json<crate::client::ReclusterReport>, NetError> {
    cpp.node.check_operator(&headers)?;
    Ok(Json(cpp.recluster(wall_clock()).await?))
}

#[utoipa::path(post, path = "/v1/inbox", tag = "inbox",
    request_body(content = inline(mpay_http::openapi::Frame), content_type = "application/octet-stream",
        description = "an envelope sealed to this CPP by the region's DC (DECISION_RELAY 0x0406, REFUND_RELAY 0x0407)"),
    responses((status = 200, description = "taken (or already taken), with the signed ack", body = InboxAnswer)))]
async fn inbox(
    State(cpp): State<Arc<Cpp>>,
    Body(frame): Body,
) -> Result<Json<InboxAnswer>, NetError> {
    let now = wall_clock();
    let answer = cpp
        .node
        .receive(&frame, now, |inbound| {
            let cpp = Arc::clone(&cpp);
            async move { cpp.on_inbox(inbound, now).await }
        })
        .await?;
    Ok(Json(answer))
}
