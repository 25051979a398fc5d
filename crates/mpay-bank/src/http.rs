//! The bank over HTTP (axum), and a client for it (reqwest).
//!
//! | method and path | who | body → answer |
//! |---|---|---|
//! | `POST /v1/accounts` | operator | `{id, holder, floor?}` → account |
//! | `GET /v1/accounts/{id}` | caller allowed on the account | → account |
//! | `GET /v1/accounts/{id}/notifications?after=&limit=` | caller allowed on the account | → `{notifications}` |
//! | `POST /v1/deposits` | operator | `{account, amount, reference?}` → transfer receipt |
//! | `POST /v1/transfers` | caller allowed on `from` | `{from, to, amount, reference?}` → transfer receipt |
//! | `POST /v1/holds` | caller allowed on the account | `{account, amount, expires_at, reference?}` → hold |
//! | `GET /v1/holds/{id}` | its placer, or a caller allowed on its account | → hold |
//! | `POST /v1/holds/{id}/post` | its placer (or operator) | `{to, bank?}` → hold |
//! | `POST /v1/holds/{id}/void` | its placer (or operator) | `{}` → hold |
//! | `POST /v1/interbank-transfers` | caller allowed on `from` | `{from, bank, to, amount, reference?}` → interbank receipt |
//! | `POST /v1/interbank` | a peer bank (sealed frame) | INTERBANK_TRANSFER frame → INTERBANK_ACK frame |
//! | `POST /v1/mandates` | the account's holder or the operator | `{account, processor, operations, cap}` → mandate |
//! | `POST /v1/mandates/revoke` | the account's holder or the operator | `{account, processor}` → `{revoked}` |
//! | `GET /v1/bank` | anyone | → `{bank, certificate, currency}` |
//! | `GET /health`, `GET /metrics`, `GET /openapi.json` | anyone | liveness; Prometheus text; OpenAPI 3.1 |
//!
//! Callers authenticate with `Authorization: Bearer <token>` (tokens in
//! [`crate::BankConfig::tokens`]). Every `POST` but `/v1/interbank` needs an
//! `Idempotency-Key` header: the same key with the same body answers what
//! the first request answered; with another body it is refused
//! (`idempotency_key_reused`). Amounts are text like `"12.50 EUR"`, times ms
//! since the epoch, bank ids and message ids hex. Errors are
//! `{"error": code, "message": text}`: 4xx when the caller is at fault, 500
//! (`internal`, logged, details withheld) when the bank is.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
pub use mpay_http::ApiError;
use mpay_http::{Body, Json, Path, Problem, Query};
use mpay_identity::{PartyId, Timestamp, hex_string};
use mpay_money::Amount;
use mpay_sql::IdempotencyError;
use mpay_wire::Encode;
use serde::{Deserialize, Serialize};

use crate::bank::{Bank, BankError};
use crate::config::Caller;
use crate::ledger::{
    AccountId, AccountView, Deposit, Destination, Funds, HoldId, HoldState, HoldView, InterbankId,
    InterbankReceipt, InterbankTransfer, Notification, NotificationKind, OpenAccount, PlaceHold,
    PostHold, PostingId, Transfer, TransferReceipt, VoidHold,
};
use crate::mandate::Mandate;

/// Largest request body the bank reads (an interbank frame is far smaller).
pub const REQUEST_BODY_LEN_MAX: usize = 64 * 1024;
/// Header that carries a request's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Default time limit of one client request.
pub const CLIENT_TIMEOUT_MS_DEFAULT: u64 = 30_000;

/// The wall clock, for the bank's handlers and loops only.
pub use mpay_clock::wall_clock;

/// The bank's HTTP routes.
pub fn router(bank: Arc<Bank>) -> Router {
    let app = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/v1/bank", get(bank_info))
        .route("/v1/books", get(books))
        .route("/v1/accounts", post(open_account))
        .route("/v1/accounts/{id}", get(account))
        .route("/v1/accounts/{id}/notifications", get(notifications))
        .route("/v1/deposits", post(deposit))
        .route("/v1/transfers", post(transfer))
        .route("/v1/holds", post(place_hold))
        .route("/v1/holds/{id}", get(hold))
        .route("/v1/holds/{id}/post", post(post_hold))
        .route("/v1/holds/{id}/void", post(void_hold))
        .route("/v1/interbank-transfers", post(interbank_transfer))
        .route("/v1/mandates", post(grant_mandate))
        .route("/v1/mandates/revoke", post(revoke_mandate))
        .route("/v1/interbank", post(interbank))
        .with_state(bank);
    mpay_http::harden(app, REQUEST_BODY_LEN_MAX)
}

/// Why a request was refused: by the HTTP edge (a body, path or query that
/// could not be read) or by the bank.
enum HttpError {
    Request(Problem),
    Bank(BankError),
}

impl From<BankError> for HttpError {
    fn from(e: BankError) -> Self {
        HttpError::Bank(e)
    }
}

impl From<Problem> for HttpError {
    fn from(p: Problem) -> Self {
        HttpError::Request(p)
    }
}

fn bad_request(message: impl Into<String>) -> HttpError {
    HttpError::Bank(BankError::Invalid(message.into()))
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let error = match self {
            HttpError::Request(problem) => return problem.into_response(),
            HttpError::Bank(error) => error,
        };
        if error.is_busy() {
            tracing::warn!(%error, "request answered busy");
            return mpay_http::busy_response();
        }
        let (status, code) = match &error {
            BankError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            BankError::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden"),
            BankError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid"),
            BankError::UnknownAccount(_) => (StatusCode::NOT_FOUND, "unknown_account"),
            BankError::UnknownHold(_) => (StatusCode::NOT_FOUND, "unknown_hold"),
            BankError::UnknownPeer(_) => (StatusCode::NOT_FOUND, "unknown_bank"),
            BankError::AccountExists(_) => (StatusCode::CONFLICT, "account_exists"),
            BankError::InsufficientFunds { .. } => {
                (StatusCode::PAYMENT_REQUIRED, "insufficient_funds")
            }
            BankError::HoldNotPending { .. } => (StatusCode::CONFLICT, "hold_not_pending"),
            BankError::BalanceLimit { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "balance_limit"),
            BankError::HoldExpired { .. } => (StatusCode::CONFLICT, "hold_expired"),
            BankError::Idempotency(IdempotencyError::KeyReusedWithDifferentRequest { .. }) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
            }
            BankError::Idempotency(e) if e.is_client_fault() => {
                (StatusCode::BAD_REQUEST, "invalid_idempotency_key")
            }
            BankError::Envelope(_) | BankError::Decode(_) | BankError::PeerMessage(_) => {
                (StatusCode::BAD_REQUEST, "interbank_refused")
            }
            BankError::Db(_)
            | BankError::Migrate(_)
            | BankError::Idempotency(_)
            | BankError::Outbox(_)
            | BankError::Config(_)
            | BankError::Identity(_)
            | BankError::Books(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(%error, "bank failure");
            "the bank could not complete the request; it is logged".to_owned()
        } else {
            if error.is_peer_fault() {
                tracing::warn!(%error, "interbank frame refused");
            }
            error.to_string()
        };
        mpay_http::ErrorResponse::into_response_with(ApiError::new(code, message), status)
    }
}

fn caller<'a>(bank: &'a Bank, headers: &HeaderMap) -> Result<&'a Caller, HttpError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(HttpError::Bank(BankError::Unauthenticated))?;
    bank.caller(token)
        .ok_or(HttpError::Bank(BankError::Unauthenticated))
}

fn idempotency_key(headers: &HeaderMap) -> Result<&str, HttpError> {
    headers
        .get(IDEMPOTENCY_KEY)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| bad_request("an Idempotency-Key header is required"))
}

/// The body, read after the caller is known (so an unauthenticated request
/// is refused as such, whatever its body).
fn body<T>(json: Result<Json<T>, Problem>) -> Result<T, HttpError> {
    Ok(json.map(|Json(value)| value)?)
}

fn account_id(text: &str) -> Result<AccountId, HttpError> {
    Ok(AccountId::parse(text).map_err(BankError::from)?)
}

fn amount(text: &str) -> Result<Amount, HttpError> {
    Amount::parse(text).map_err(|e| bad_request(e.to_string()))
}

fn bank_id(text: &str) -> Result<PartyId, HttpError> {
    PartyId::from_hex(text).ok_or_else(|| bad_request("bank: not 32 hex digits"))
}

fn hold_id(text: &str) -> Result<HoldId, HttpError> {
    text.parse::<i64>()
        .map(HoldId)
        .map_err(|_| bad_request("hold ids are integers"))
}

async fn health() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn metrics(State(bank): State<Arc<Bank>>) -> Result<Response, HttpError> {
    let m = &bank.metrics;
    let outbox_pending = mpay_sql::outbox::pending_count(bank.db())
        .await
        .map_err(BankError::from)?;
    let holds_pending = bank.pending_holds().await?;
    let counters = [
        ("operations_total", &m.operations),
        ("refusals_total", &m.refusals),
        ("holds_placed_total", &m.holds_placed),
        ("holds_posted_total", &m.holds_posted),
        ("holds_voided_total", &m.holds_voided),
        ("holds_expired_total", &m.holds_expired),
        ("interbank_delivered_total", &m.interbank_delivered),
        (
            "interbank_delivery_failures_total",
            &m.interbank_delivery_failures,
        ),
        ("interbank_received_total", &m.interbank_received),
        ("interbank_returned_total", &m.interbank_returned),
        ("interbank_refused_total", &m.interbank_refused),
    ];
    let mut text = String::new();
    for (name, counter) in counters {
        text.push_str(&format!(
            "# TYPE mpay_bank_{name} counter\nmpay_bank_{name} {}\n",
            counter.load(Relaxed)
        ));
    }
    text.push_str(&format!(
        "# TYPE mpay_bank_outbox_pending gauge\nmpay_bank_outbox_pending {outbox_pending}\n\
         # TYPE mpay_bank_holds_pending gauge\nmpay_bank_holds_pending {holds_pending}\n"
    ));
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

async fn openapi() -> impl IntoResponse {
    Json(openapi_document())
}

/// What `GET /v1/bank` answers.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct BankInfo {
    /// The bank's id (hex).
    pub bank: String,
    /// Its certificate (hex of the wire encoding): what peers configure.
    pub certificate: String,
    /// Its currency.
    pub currency: String,
}

async fn bank_info(State(bank): State<Arc<Bank>>) -> Json<BankInfo> {
    Json(BankInfo {
        bank: bank.id().to_hex(),
        certificate: hex_string(&bank.certificate().to_wire()),
        currency: bank.currency().to_string(),
    })
}

/// What `GET /v1/books` answers (operator): the books' check and every
/// balance, for reconciliation across banks.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct BooksJson {
    /// The bank's id (hex).
    pub bank: String,
    /// Its currency.
    pub currency: String,
    /// Whether [`Bank::check_books`] passed.
    pub balanced: bool,
    /// What it found wrong; absent when the books balance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Every account's balance, `"12.50 EUR"`.
    pub balances: BTreeMap<String, String>,
    /// Holds still pending.
    pub holds_pending: i64,
    /// Interbank messages not yet acknowledged by their peer.
    pub outbox_pending: i64,
}

async fn books(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
) -> Result<Json<BooksJson>, HttpError> {
    let who = caller(&bank, &headers)?;
    if !who.is_operator() {
        return Err(HttpError::Bank(BankError::Forbidden {
            caller: who.name().to_owned(),
            action: "read the books".to_owned(),
        }));
    }
    let problem = match bank.check_books().await {
        Ok(()) => None,
        Err(BankError::Books(problem)) => Some(problem),
        Err(other) => return Err(other.into()),
    };
    let balances = bank
        .balances()
        .await?
        .into_iter()
        .map(|(account, balance)| (account.to_string(), balance.to_string()))
        .collect();
    let outbox_pending = mpay_sql::outbox::pending_count(bank.db())
        .await
        .map_err(BankError::from)?;
    Ok(Json(BooksJson {
        bank: bank.id().to_hex(),
        currency: bank.currency().to_string(),
        balanced: problem.is_none(),
        problem,
        balances,
        holds_pending: bank.pending_holds().await?,
        outbox_pending,
    }))
}

/// `POST /v1/accounts`.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct OpenAccountBody {
    /// The account id, e.g. `cust:alice`.
    pub id: String,
    /// The holder's name.
    pub holder: String,
    /// The floor (zero or negative), e.g. `"-100.00 EUR"`; zero if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<String>,
}

/// An account.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct AccountJson {
    /// Its id.
    pub id: String,
    /// The holder's name.
    pub holder: String,
    /// Its balance.
    pub balance: String,
    /// The sum of its pending holds.
    pub held: String,
    /// `balance - held`.
    pub available: String,
    /// Its floor; absent for the bank's own accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<String>,
}

impl AccountJson {
    fn from_view(view: &AccountView) -> Result<AccountJson, BankError> {
        Ok(AccountJson {
            id: view.id.to_string(),
            holder: view.holder.clone(),
            balance: view.funds.balance.to_string(),
            held: view.funds.held.to_string(),
            available: view.funds.available()?.to_string(),
            floor: view.funds.floor.map(|f| f.to_string()),
        })
    }

    /// The account as a value.
    pub fn to_view(&self) -> Result<AccountView, String> {
        Ok(AccountView {
            id: parse_account(&self.id)?,
            holder: self.holder.clone(),
            funds: Funds {
                balance: parse_amount(&self.balance)?,
                held: parse_amount(&self.held)?,
                floor: self.floor.as_deref().map(parse_amount).transpose()?,
            },
        })
    }
}

fn parse_account(text: &str) -> Result<AccountId, String> {
    AccountId::parse(text).map_err(|e| e.to_string())
}

fn parse_amount(text: &str) -> Result<Amount, String> {
    Amount::parse(text).map_err(|e| e.to_string())
}

async fn open_account(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    json: Result<Json<OpenAccountBody>, Problem>,
) -> Result<Json<AccountJson>, HttpError> {
    let caller = caller(&bank, &headers)?;
    let key = idempotency_key(&headers)?;
    let request = body(json)?;
    let request = OpenAccount {
        account: account_id(&request.id)?,
        holder: request.holder,
        floor: match &request.floor {
            Some(floor) => amount(floor)?,
            None => Amount::zero(bank.currency()),
        },
    };
    let view = bank
        .open_account(caller, key, &request, wall_clock())
        .await?;
    Ok(Json(AccountJson::from_view(&view)?))
}

async fn account(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<AccountJson>, HttpError> {
    let caller = caller(&bank, &headers)?;
    let view = bank.account(caller, &account_id(&id)?).await?;
    Ok(Json(AccountJson::from_view(&view)?))
}

/// `?after=<id>&limit=<n>` of the notifications route.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct NotificationsQuery {
    /// Only notifications with a larger id (0: from the start).
    #[serde(default)]
    pub after: i64,
    /// At most this many (capped at `NOTIFICATIONS_PAGE_MAX`).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// One notification.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct NotificationJson {
    /// Increasing; the next page starts after the last one seen.
    pub id: i64,
    /// The account.
    pub account: String,
    /// `credited`, `debited`, `hold_placed`, `hold_posted`, `hold_voided`, `hold_expired`.
    pub kind: String,
    /// How much.
    pub amount: String,
    /// The balance afterwards.
    pub balance_after: String,
    /// `balance - held` afterwards.
    pub available_after: String,
    /// The movement's reference.
    pub reference: String,
    /// When (ms since the epoch).
    pub at: u64,
}

impl NotificationJson {
    fn from_value(n: &Notification) -> NotificationJson {
        NotificationJson {
            id: n.id,
            account: n.account.to_string(),
            kind: n.kind.as_str().to_owned(),
            amount: n.amount.to_string(),
            balance_after: n.balance_after.to_string(),
            available_after: n.available_after.to_string(),
            reference: n.reference.clone(),
            at: n.at.as_millis(),
        }
    }

    /// The notification as a value.
    pub fn to_value(&self) -> Result<Notification, String> {
        Ok(Notification {
            id: self.id,
            account: parse_account(&self.account)?,
            kind: NotificationKind::from_name(&self.kind)
                .ok_or_else(|| format!("notification kind `{}`", self.kind))?,
            amount: parse_amount(&self.amount)?,
            balance_after: parse_amount(&self.balance_after)?,
            available_after: parse_amount(&self.available_after)?,
            reference: self.reference.clone(),
            at: Timestamp(self.at),
        })
    }
}

/// A page of notifications.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct NotificationsJson {
    /// Oldest first.
    pub notifications: Vec<NotificationJson>,
}

async fn notifications(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<NotificationsQuery>, Problem>,
) -> Result<Json<NotificationsJson>, HttpError> {
    let caller = caller(&bank, &headers)?;
    let Query(query) = query?;
    let page = bank
        .notifications(
            caller,
            &account_id(&id)?,
            query.after,
            query.limit.unwrap_or(crate::bank::NOTIFICATIONS_PAGE_MAX),
        )
        .await?;
    Ok(Json(NotificationsJson {
        notifications: page.iter().map(NotificationJson::from_value).collect(),
    }))
}

/// `POST /v1/deposits`.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct DepositBody {
    /// The account credited.
    pub account: String,
    /// How much, e.g. `"100.00 EUR"`.
    pub amount: String,
    /// The operator's reference.
    #[serde(default)]
    pub reference: String,
}

/// What a deposit or a transfer did.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TransferReceiptJson {
    /// The journal row.
    pub posting: i64,
    /// The account debited.
    pub from: String,
    /// The account credited.
    pub to: String,
    /// How much.
    pub amount: String,
    /// The debited account's balance afterwards.
    pub from_balance_after: String,
    /// When.
    pub at: u64,
}

impl TransferReceiptJson {
    fn from_value(r: &TransferReceipt) -> TransferReceiptJson {
        TransferReceiptJson {
            posting: r.posting.0,
            from: r.from.to_string(),
            to: r.to.to_string(),
            amount: r.amount.to_string(),
            from_balance_after: r.from_balance_after.to_string(),
            at: r.at.as_millis(),
        }
    }

    /// The receipt as a value.
    pub fn to_value(&self) -> Result<TransferReceipt, String> {
        Ok(TransferReceipt {
            posting: PostingId(self.posting),
            from: parse_account(&self.from)?,
            to: parse_account(&self.to)?,
            amount: parse_amount(&self.amount)?,
            from_balance_after: parse_amount(&self.from_balance_after)?,
            at: Timestamp(self.at),
        })
    }
}

async fn deposit(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    json: Result<Json<DepositBody>, Problem>,
) -> Result<Json<TransferReceiptJson>, HttpError> {
    let caller = caller(&bank, &headers)?;
    let key = idempotency_key(&headers)?;
    let request = body(json)?;
    let request = Deposit {
        account: account_id(&request.account)?,
        amount: amount(&request.amount)?,
        reference: request.reference,
    };
    let receipt = bank.deposit(caller, key, &request, wall_clock()).await?;
    Ok(Json(TransferReceiptJson::from_value(&receipt)))
}

/// `POST /v1/transfers`.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct TransferBody {
    /// The account debited.
    pub from: String,
    /// The account credited (in this bank).
    pub to: String,
    /// How much.
    pub amount: String,
    /// The payer's reference.
    #[serde(default)]
    pub reference: String,
}

async fn transfer(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    json: Result<Json<TransferBody>, Problem>,
) -> Result<Json<TransferReceiptJson>, HttpError> {
    let caller = caller(&bank, &headers)?;
    let key = idempotency_key(&headers)?;
    let request = body(json)?;
    let request = Transfer {
        from: account_id(&request.from)?,
        to: account_id(&request.to)?,
        amount: amount(&request.amount)?,
        reference: request.reference,
    };
    let receipt = bank.transfer(caller, key, &request, wall_clock()).await?;
    Ok(Json(TransferReceiptJson::from_value(&receipt)))
}

/// `POST /v1/holds`.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct HoldBody {
    /// The account whose funds are held.
    pub account: String,
    /// How much.
    pub amount: String,
    /// When the hold expires (ms since the epoch).
    pub expires_at: u64,
    /// The caller's reference (e.g. the payment's).
    #[serde(default)]
    pub reference: String,
}

/// Where a posted hold's money goes: an account here, or at `bank`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct DestinationJson {
    /// The account credited.
    pub to: String,
    /// The peer bank (hex id); absent for an account in this bank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank: Option<String>,
}

impl DestinationJson {
    fn from_value(d: &Destination) -> DestinationJson {
        match d {
            Destination::Account(account) => DestinationJson {
                to: account.to_string(),
                bank: None,
            },
            Destination::Interbank { bank, account } => DestinationJson {
                to: account.to_string(),
                bank: Some(bank.to_hex()),
            },
        }
    }

    fn to_value(&self) -> Result<Destination, String> {
        let account = parse_account(&self.to)?;
        Ok(match &self.bank {
            None => Destination::Account(account),
            Some(bank) => Destination::Interbank {
                bank: PartyId::from_hex(bank).ok_or("bank: not 32 hex digits")?,
                account,
            },
        })
    }
}

/// A hold.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct HoldJson {
    /// Its id.
    pub id: i64,
    /// The account whose funds it holds.
    pub account: String,
    /// How much.
    pub amount: String,
    /// The reference given when it was placed.
    pub reference: String,
    /// The caller that placed it.
    pub placed_by: String,
    /// When it expires.
    pub expires_at: u64,
    /// `pending`, `posted`, `voided` or `expired`.
    pub state: String,
    /// When it was placed.
    pub created_at: u64,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<u64>,
    /// The posting that paid it (posted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub posting: Option<i64>,
    /// Where it was paid (posted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<DestinationJson>,
    /// The interbank message that carries it (posted to another bank).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl HoldJson {
    fn from_value(h: &HoldView) -> HoldJson {
        HoldJson {
            id: h.id.0,
            account: h.account.to_string(),
            amount: h.amount.to_string(),
            reference: h.reference.clone(),
            placed_by: h.placed_by.clone(),
            expires_at: h.expires_at.as_millis(),
            state: h.state.as_str().to_owned(),
            created_at: h.created_at.as_millis(),
            resolved_at: h.resolved_at.map(|t| t.as_millis()),
            posting: h.posting.map(|p| p.0),
            destination: h.destination.as_ref().map(DestinationJson::from_value),
            message: h.message.map(|m| m.to_hex()),
        }
    }

    /// The hold as a value.
    pub fn to_value(&self) -> Result<HoldView, String> {
        Ok(HoldView {
            id: HoldId(self.id),
            account: parse_account(&self.account)?,
            amount: parse_amount(&self.amount)?,
            reference: self.reference.clone(),
            placed_by: self.placed_by.clone(),
            expires_at: Timestamp(self.expires_at),
            state: HoldState::from_name(&self.state)
                .ok_or_else(|| format!("hold state `{}`", self.state))?,
            created_at: Timestamp(self.created_at),
            resolved_at: self.resolved_at.map(Timestamp),
            posting: self.posting.map(PostingId),
            destination: self
                .destination
                .as_ref()
                .map(DestinationJson::to_value)
                .transpose()?,
            message: self
                .message
                .as_deref()
                .map(|m| InterbankId::from_hex(m).ok_or("message: not 32 hex digits"))
                .transpose()?,
        })
    }
}

async fn place_hold(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    json: Result<Json<HoldBody>, Problem>,
) -> Result<Json<HoldJson>, HttpError> {
    let caller = caller(&bank, &headers)?;
    let key = idempotency_key(&headers)?;
    let request = body(json)?;
    let request = PlaceHold {
        account: account_id(&request.account)?,
        amount: amount(&request.amount)?,
        expires_at: Timestamp(request.expires_at),
        reference: request.reference,
    };
    let view = bank.place_hold(caller, key, &request, wall_clock()).await?;
    Ok(Json(HoldJson::from_value(&view)))
}

async fn hold(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<HoldJson>, HttpError> {
    let caller = caller(&bank, &headers)?;
    let view = bank.hold(caller, hold_id(&id)?).await?;
    Ok(Json(HoldJson::from_value(&view)))
}

async fn post_hold(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    json: Result<Json<DestinationJson>, Problem>,
) -> Result<Json<HoldJson>, HttpError> {
    let caller = caller(&bank, &headers)?;
    let key = idempotency_key(&headers)?;
    let destination = body(json)?.to_value().map_err(bad_request)?;
    let request = PostHold {
        hold: hold_id(&id)?,
        destination,
    };
    let view = bank.post_hold(caller, key, &request, wall_clock()).await?;
    Ok(Json(HoldJson::from_value(&view)))
}

async fn void_hold(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<HoldJson>, HttpError> {
    let caller = caller(&bank, &headers)?;
    let key = idempotency_key(&headers)?;
    let request = VoidHold {
        hold: hold_id(&id)?,
    };
    let view = bank.void_hold(caller, key, &request, wall_clock()).await?;
    Ok(Json(HoldJson::from_value(&view)))
}

/// `POST /v1/mandates`: what `processor` may do on `account` (see
/// [`crate::mandate`]).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct MandateJson {
    /// The account.
    pub account: String,
    /// The processor's caller name at this bank (`cpp1`, `mpp2`).
    pub processor: String,
    /// `hold`, `debit`, `read`.
    pub operations: Vec<String>,
    /// The most one hold or one debit may be, e.g. `"500.00 EUR"`.
    pub cap: String,
    /// Whether it was revoked (answers only).
    #[serde(default)]
    pub revoked: bool,
}

impl MandateJson {
    /// From a value.
    pub fn from_value(m: &Mandate) -> MandateJson {
        MandateJson {
            account: m.account.to_string(),
            processor: m.processor.clone(),
            operations: m.operations.iter().map(|o| o.as_str().to_owned()).collect(),
            cap: m.cap.to_string(),
            revoked: m.revoked,
        }
    }

    fn to_value(&self) -> Result<Mandate, HttpError> {
        Ok(Mandate {
            account: account_id(&self.account)?,
            processor: self.processor.clone(),
            operations: crate::mandate::parse_operations(&self.operations)?,
            cap: amount(&self.cap)?,
            revoked: false,
        })
    }
}

/// `POST /v1/mandates/revoke`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct RevokeMandateJson {
    /// The account.
    pub account: String,
    /// The processor.
    pub processor: String,
}

/// What a revocation did.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct RevokedJson {
    /// False if no mandate was in force.
    pub revoked: bool,
}

async fn grant_mandate(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    json: Result<Json<MandateJson>, Problem>,
) -> Result<Json<MandateJson>, HttpError> {
    let caller = caller(&bank, &headers)?;
    let grant = body(json)?.to_value()?;
    let granted = bank.grant_mandate(caller, &grant, wall_clock()).await?;
    Ok(Json(MandateJson::from_value(&granted)))
}

async fn revoke_mandate(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    json: Result<Json<RevokeMandateJson>, Problem>,
) -> Result<Json<RevokedJson>, HttpError> {
    let caller = caller(&bank, &headers)?;
    let request = body(json)?;
    let revoked = bank
        .revoke_mandate(
            caller,
            &account_id(&request.account)?,
            &request.processor,
            wall_clock(),
        )
        .await?;
    Ok(Json(RevokedJson { revoked }))
}

/// `POST /v1/interbank-transfers`.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct InterbankTransferBody {
    /// The account debited here.
    pub from: String,
    /// The peer bank (hex id).
    pub bank: String,
    /// The account credited there.
    pub to: String,
    /// How much.
    pub amount: String,
    /// The payer's reference.
    #[serde(default)]
    pub reference: String,
}

/// What an interbank transfer did here.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct InterbankReceiptJson {
    /// The message that carries it (hex).
    pub message: String,
    /// The posting here.
    pub posting: i64,
    /// The account debited.
    pub from: String,
    /// The peer bank (hex).
    pub bank: String,
    /// The account at the peer.
    pub to: String,
    /// How much.
    pub amount: String,
    /// The debited account's balance afterwards.
    pub from_balance_after: String,
    /// When.
    pub at: u64,
}

impl InterbankReceiptJson {
    fn from_value(r: &InterbankReceipt) -> InterbankReceiptJson {
        InterbankReceiptJson {
            message: r.message.to_hex(),
            posting: r.posting.0,
            from: r.from.to_string(),
            bank: r.bank.to_hex(),
            to: r.to.to_string(),
            amount: r.amount.to_string(),
            from_balance_after: r.from_balance_after.to_string(),
            at: r.at.as_millis(),
        }
    }

    /// The receipt as a value.
    pub fn to_value(&self) -> Result<InterbankReceipt, String> {
        Ok(InterbankReceipt {
            message: InterbankId::from_hex(&self.message).ok_or("message: not 32 hex digits")?,
            posting: PostingId(self.posting),
            from: parse_account(&self.from)?,
            bank: PartyId::from_hex(&self.bank).ok_or("bank: not 32 hex digits")?,
            to: parse_account(&self.to)?,
            amount: parse_amount(&self.amount)?,
            from_balance_after: parse_amount(&self.from_balance_after)?,
            at: Timestamp(self.at),
        })
    }
}

async fn interbank_transfer(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    json: Result<Json<InterbankTransferBody>, Problem>,
) -> Result<Json<InterbankReceiptJson>, HttpError> {
    let caller = caller(&bank, &headers)?;
    let key = idempotency_key(&headers)?;
    let request = body(json)?;
    let request = InterbankTransfer {
        from: account_id(&request.from)?,
        bank: bank_id(&request.bank)?,
        to: account_id(&request.to)?,
        amount: amount(&request.amount)?,
        reference: request.reference,
    };
    let receipt = bank
        .interbank_transfer(caller, key, &request, wall_clock())
        .await?;
    Ok(Json(InterbankReceiptJson::from_value(&receipt)))
}

async fn interbank(
    State(bank): State<Arc<Bank>>,
    Body(frame): Body,
) -> Result<Response, HttpError> {
    let ack = bank.receive_interbank(&frame, wall_clock()).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], ack).into_response())
}

/// Why a call to a bank failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No answer (connection refused, timeout): try again with the same
    /// idempotency key.
    #[error("cannot reach the bank at {url}: {source}")]
    Unreachable {
        /// The bank's base URL.
        url: String,
        /// What reqwest said.
        #[source]
        source: reqwest::Error,
    },
    /// The bank answered with an error.
    #[error("the bank refused ({status}): {}", .error.message)]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The bank's error.
        error: ApiError,
    },
    /// The answer does not parse.
    #[error("the bank answered with something unexpected: {0}")]
    BadAnswer(String),
    /// Not sent: the token would have crossed a plaintext connection (the
    /// caller's configuration is at fault).
    #[error(transparent)]
    Transport(#[from] mpay_tls::TlsError),
}

impl ClientError {
    /// The bank's error code (`insufficient_funds`, …), if it refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Refused { error, .. } => Some(&error.error),
            _ => None,
        }
    }

    /// True when repeating the request (with the same idempotency key) may
    /// succeed: no answer, or the bank's own failure.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Unreachable { .. } => true,
            ClientError::Refused { status, .. } => *status >= 500,
            ClientError::BadAnswer(_) | ClientError::Transport(_) => false,
        }
    }
}

/// A client of a bank's HTTP API, for other services (CPP, MPP, money
/// office) and for peer banks' delivery loops.
#[derive(Clone, Debug)]
pub struct BankClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    plaintext: mpay_tls::Plaintext,
}

impl BankClient {
    /// A client of the bank at `base` (like `https://127.0.0.1:7801`), with
    /// its own connection pool, [`CLIENT_TIMEOUT_MS_DEFAULT`] and the
    /// process's root of trust ([`mpay_tls::default_client`]); an error when
    /// that root cannot be read.
    pub fn new(base: &str) -> Result<BankClient, mpay_tls::TlsError> {
        let http = mpay_tls::default_client(Duration::from_millis(CLIENT_TIMEOUT_MS_DEFAULT))?;
        Ok(BankClient::with_http(base, http))
    }

    /// A client sharing `http` (its pool, timeout and root of trust). It
    /// sends its token over `http://` only as the environment allows
    /// ([`mpay_tls::Plaintext::from_env`]; see [`BankClient::with_plaintext`]).
    pub fn with_http(base: &str, http: reqwest::Client) -> BankClient {
        BankClient {
            base: base.trim_end_matches('/').to_owned(),
            token: None,
            http,
            plaintext: mpay_tls::Plaintext::from_env(),
        }
    }

    /// The same client, sending its token over plaintext as `plaintext`
    /// (or the environment) allows.
    pub fn with_plaintext(mut self, plaintext: mpay_tls::Plaintext) -> BankClient {
        self.plaintext = plaintext.or_env();
        self
    }

    /// The same client authenticating with `token`.
    pub fn with_token(mut self, token: &str) -> BankClient {
        self.token = Some(token.to_owned());
        self
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let request = request.build().map_err(|source| ClientError::Unreachable {
            url: self.base.clone(),
            source,
        })?;
        mpay_tls::check_request(&request, self.plaintext)?;
        let response =
            self.http
                .execute(request)
                .await
                .map_err(|source| ClientError::Unreachable {
                    url: self.base.clone(),
                    source,
                })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        let error = serde_json::from_str::<ApiError>(&text).unwrap_or(ApiError {
            error: "http".to_owned(),
            message: format!("{status}: {text}"),
        });
        Err(ClientError::Refused {
            status: status.as_u16(),
            error,
        })
    }

    async fn json<T: for<'de> Deserialize<'de>>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        self.send(self.authorized(request))
            .await?
            .json::<T>()
            .await
            .map_err(|e| ClientError::BadAnswer(e.to_string()))
    }

    async fn post<B: Serialize, T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        idempotency_key: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.json(
            self.http
                .post(self.url(path))
                .header(IDEMPOTENCY_KEY, idempotency_key)
                .json(body),
        )
        .await
    }

    /// `GET /health`.
    pub async fn health(&self) -> Result<(), ClientError> {
        self.send(self.http.get(self.url("/health")))
            .await
            .map(|_| ())
    }

    /// `GET /v1/bank`.
    pub async fn bank_info(&self) -> Result<BankInfo, ClientError> {
        self.json(self.http.get(self.url("/v1/bank"))).await
    }

    /// `POST /v1/mandates` (the account's holder or the operator).
    pub async fn grant_mandate(&self, mandate: &Mandate) -> Result<(), ClientError> {
        let _: MandateJson = self
            .json(
                self.http
                    .post(self.url("/v1/mandates"))
                    .json(&MandateJson::from_value(mandate)),
            )
            .await?;
        Ok(())
    }

    /// `POST /v1/mandates/revoke` (the account's holder or the operator);
    /// false if no mandate was in force.
    pub async fn revoke_mandate(
        &self,
        account: &AccountId,
        processor: &str,
    ) -> Result<bool, ClientError> {
        let answer: RevokedJson = self
            .json(
                self.http
                    .post(self.url("/v1/mandates/revoke"))
                    .json(&RevokeMandateJson {
                        account: account.to_string(),
                        processor: processor.to_owned(),
                    }),
            )
            .await?;
        Ok(answer.revoked)
    }

    /// `GET /v1/books` (operator).
    pub async fn books(&self) -> Result<BooksJson, ClientError> {
        self.json(self.http.get(self.url("/v1/books"))).await
    }

    /// `POST /v1/accounts` (operator).
    pub async fn open_account(
        &self,
        idempotency_key: &str,
        request: &OpenAccount,
    ) -> Result<AccountView, ClientError> {
        let answer: AccountJson = self
            .post(
                "/v1/accounts",
                idempotency_key,
                &OpenAccountBody {
                    id: request.account.to_string(),
                    holder: request.holder.clone(),
                    floor: Some(request.floor.to_string()),
                },
            )
            .await?;
        answer.to_view().map_err(ClientError::BadAnswer)
    }

    /// Opens `account` for `holder` with a floor of zero, then pays
    /// `deposit` into it (operator), both under keys of the account
    /// (`open:<account>`, `first-deposit:<account>`): running it again
    /// finishes an interrupted run and changes nothing more. The account as
    /// opened, and the deposit's receipt if one was asked.
    pub async fn open_with_deposit(
        &self,
        account: &AccountId,
        holder: &str,
        deposit: Amount,
        reference: &str,
    ) -> Result<(AccountView, Option<TransferReceipt>), ClientError> {
        let view = self
            .open_account(
                &format!("open:{account}"),
                &OpenAccount {
                    account: account.clone(),
                    holder: holder.to_owned(),
                    floor: Amount::zero(deposit.currency()),
                },
            )
            .await?;
        if deposit.is_zero() {
            return Ok((view, None));
        }
        let receipt = self
            .deposit(
                &format!("first-deposit:{account}"),
                &Deposit {
                    account: account.clone(),
                    amount: deposit,
                    reference: reference.to_owned(),
                },
            )
            .await?;
        Ok((view, Some(receipt)))
    }

    /// `POST /v1/deposits` (operator).
    pub async fn deposit(
        &self,
        idempotency_key: &str,
        request: &Deposit,
    ) -> Result<TransferReceipt, ClientError> {
        let answer: TransferReceiptJson = self
            .post(
                "/v1/deposits",
                idempotency_key,
                &DepositBody {
                    account: request.account.to_string(),
                    amount: request.amount.to_string(),
                    reference: request.reference.clone(),
                },
            )
            .await?;
        answer.to_value().map_err(ClientError::BadAnswer)
    }

    /// `POST /v1/transfers`.
    pub async fn transfer(
        &self,
        idempotency_key: &str,
        request: &Transfer,
    ) -> Result<TransferReceipt, ClientError> {
        let answer: TransferReceiptJson = self
            .post(
                "/v1/transfers",
                idempotency_key,
                &TransferBody {
                    from: request.from.to_string(),
                    to: request.to.to_string(),
                    amount: request.amount.to_string(),
                    reference: request.reference.clone(),
                },
            )
            .await?;
        answer.to_value().map_err(ClientError::BadAnswer)
    }

    /// `POST /v1/holds`.
    pub async fn place_hold(
        &self,
        idempotency_key: &str,
        request: &PlaceHold,
    ) -> Result<HoldView, ClientError> {
        let answer: HoldJson = self
            .post(
                "/v1/holds",
                idempotency_key,
                &HoldBody {
                    account: request.account.to_string(),
                    amount: request.amount.to_string(),
                    expires_at: request.expires_at.as_millis(),
                    reference: request.reference.clone(),
                },
            )
            .await?;
        answer.to_value().map_err(ClientError::BadAnswer)
    }

    /// `POST /v1/holds/{id}/post`.
    pub async fn post_hold(
        &self,
        idempotency_key: &str,
        request: &PostHold,
    ) -> Result<HoldView, ClientError> {
        let answer: HoldJson = self
            .post(
                &format!("/v1/holds/{}/post", request.hold.0),
                idempotency_key,
                &DestinationJson::from_value(&request.destination),
            )
            .await?;
        answer.to_value().map_err(ClientError::BadAnswer)
    }

    /// `POST /v1/holds/{id}/void`.
    pub async fn void_hold(
        &self,
        idempotency_key: &str,
        request: &VoidHold,
    ) -> Result<HoldView, ClientError> {
        let answer: HoldJson = self
            .post(
                &format!("/v1/holds/{}/void", request.hold.0),
                idempotency_key,
                &serde_json::json!({}),
            )
            .await?;
        answer.to_value().map_err(ClientError::BadAnswer)
    }

    /// `POST /v1/interbank-transfers`.
    pub async fn interbank_transfer(
        &self,
        idempotency_key: &str,
        request: &InterbankTransfer,
    ) -> Result<InterbankReceipt, ClientError> {
        let answer: InterbankReceiptJson = self
            .post(
                "/v1/interbank-transfers",
                idempotency_key,
                &InterbankTransferBody {
                    from: request.from.to_string(),
                    bank: request.bank.to_hex(),
                    to: request.to.to_string(),
                    amount: request.amount.to_string(),
                    reference: request.reference.clone(),
                },
            )
            .await?;
        answer.to_value().map_err(ClientError::BadAnswer)
    }

    /// `GET /v1/accounts/{id}`.
    pub async fn account(&self, account: &AccountId) -> Result<AccountView, ClientError> {
        let answer: AccountJson = self
            .json(self.http.get(self.url(&format!("/v1/accounts/{account}"))))
            .await?;
        answer.to_view().map_err(ClientError::BadAnswer)
    }

    /// `GET /v1/holds/{id}`.
    pub async fn hold(&self, hold: HoldId) -> Result<HoldView, ClientError> {
        let answer: HoldJson = self
            .json(self.http.get(self.url(&format!("/v1/holds/{}", hold.0))))
            .await?;
        answer.to_value().map_err(ClientError::BadAnswer)
    }

    /// `GET /v1/accounts/{id}/notifications?after=&limit=`.
    pub async fn notifications(
        &self,
        account: &AccountId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Notification>, ClientError> {
        let answer: NotificationsJson = self
            .json(self.http.get(self.url(&format!(
                "/v1/accounts/{account}/notifications?after={after}&limit={limit}"
            ))))
            .await?;
        answer
            .notifications
            .iter()
            .map(NotificationJson::to_value)
            .collect::<Result<_, _>>()
            .map_err(ClientError::BadAnswer)
    }

    /// `POST /v1/interbank`: a sealed frame in, the sealed answer out.
    pub async fn post_interbank(&self, frame: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        let response = self
            .send(
                self.http
                    .post(self.url("/v1/interbank"))
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .body(frame),
            )
            .await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::BadAnswer(e.to_string()))?;
        Ok(bytes.to_vec())
    }
}

/// The OpenAPI 3.1 description of the routes above, finished by the shared
/// edge (the error shape on every 4xx and 5xx, the `Amount` schema).
pub fn openapi_document() -> serde_json::Value {
    mpay_http::openapi::finish_json(
        bank_document(),
        &[mpay_http::openapi::Bearer {
            name: "bearer",
            holder: "the bank's operator token, an account holder's token, or a processor's token (mandates scope what it may do)",
        }],
    )
}

fn bank_document() -> serde_json::Value {
    use serde_json::json;
    let error = json!({ "$ref": "#/components/responses/Error" });
    let key = json!({ "$ref": "#/components/parameters/IdempotencyKey" });
    let path_id =
        json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } });
    let json_body = |schema: &str| json!({ "required": true, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } });
    let answer = |schema: &str| json!({ "description": "OK", "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } });
    let amount = json!({ "$ref": "#/components/schemas/Amount" });
    let text = json!({ "type": "string" });
    let ms =
        json!({ "type": "integer", "format": "int64", "description": "ms since the Unix epoch" });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "mpay bank",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A double-entry ledger with holds, notifications and interbank transfers (SEMOPS). Every POST but /v1/interbank needs an Idempotency-Key header: the same key and body answer as the first time; another body is refused with 422 idempotency_key_reused."
        },
        "security": [{ "bearer": [] }],
        "paths": {
            "/health": { "get": { "security": [], "summary": "Liveness", "responses": { "200": { "description": "OK", "content": { "application/json": { "schema": { "type": "object", "required": ["status"], "properties": { "status": text } } } } } } } },
            "/metrics": { "get": { "security": [], "summary": "Prometheus metrics", "responses": { "200": { "description": "Prometheus text", "content": { "text/plain": { "schema": text } } } } } },
            "/openapi.json": { "get": { "security": [], "summary": "This document", "responses": { "200": { "description": "OK", "content": { "application/json": { "schema": { "type": "object" } } } } } } },
            "/v1/bank": { "get": { "security": [], "summary": "The bank's id, certificate and currency", "responses": { "200": answer("BankInfo") } } },
            "/v1/books": { "get": { "summary": "Check the books and list every balance (operator)", "responses": { "200": answer("Books"), "4XX": error } } },
            "/v1/accounts": { "post": { "summary": "Open a holder account (operator)", "parameters": [key], "requestBody": json_body("OpenAccount"), "responses": { "200": answer("Account"), "4XX": error } } },
            "/v1/accounts/{id}": { "get": { "summary": "An account", "parameters": [path_id], "responses": { "200": answer("Account"), "4XX": error } } },
            "/v1/accounts/{id}/notifications": { "get": {
                "summary": "The account's notifications, oldest first",
                "parameters": [path_id,
                    { "name": "after", "in": "query", "schema": { "type": "integer", "format": "int64", "default": 0 } },
                    { "name": "limit", "in": "query", "schema": { "type": "integer", "maximum": 500 } }],
                "responses": { "200": answer("Notifications"), "4XX": error } } },
            "/v1/deposits": { "post": { "summary": "external → account (operator)", "parameters": [key], "requestBody": json_body("Deposit"), "responses": { "200": answer("TransferReceipt"), "4XX": error } } },
            "/v1/transfers": { "post": { "summary": "Account → account in this bank", "parameters": [key], "requestBody": json_body("Transfer"), "responses": { "200": answer("TransferReceipt"), "4XX": error } } },
            "/v1/holds": { "post": { "summary": "Place a hold (402 insufficient_funds when it does not fit)", "parameters": [key], "requestBody": json_body("PlaceHold"), "responses": { "200": answer("Hold"), "4XX": error } } },
            "/v1/holds/{id}": { "get": { "summary": "A hold", "parameters": [path_id], "responses": { "200": answer("Hold"), "4XX": error } } },
            "/v1/holds/{id}/post": { "post": { "summary": "Post a pending hold to an account here or at a peer bank (placer or operator)", "parameters": [path_id, key], "requestBody": json_body("Destination"), "responses": { "200": answer("Hold"), "4XX": error } } },
            "/v1/holds/{id}/void": { "post": { "summary": "Void a pending hold (placer or operator)", "parameters": [path_id, key], "responses": { "200": answer("Hold"), "4XX": error } } },
            "/v1/interbank-transfers": { "post": { "summary": "Account here → account at a peer bank", "parameters": [key], "requestBody": json_body("InterbankTransfer"), "responses": { "200": answer("InterbankReceipt"), "4XX": error } } },
            "/v1/mandates": { "post": { "summary": "Grant or replace a processor's mandate on an account (the account's holder or the operator; no Idempotency-Key needed: granting again is the same)", "requestBody": json_body("Mandate"), "responses": { "200": answer("Mandate"), "4XX": error } } },
            "/v1/mandates/revoke": { "post": { "summary": "Revoke a processor's mandate (the account's holder or the operator)", "requestBody": json_body("RevokeMandate"), "responses": { "200": answer("Revoked"), "4XX": error } } },
            "/v1/interbank": { "post": {
                "security": [],
                "summary": "A peer bank's sealed INTERBANK_TRANSFER frame (mpay envelope, kind 0x0301); answers the sealed INTERBANK_ACK (0x0302)",
                "requestBody": { "required": true, "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } },
                "responses": { "200": { "description": "Sealed acknowledgement", "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } }, "4XX": error } } }
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "parameters": { "IdempotencyKey": { "name": "Idempotency-Key", "in": "header", "required": true, "schema": { "type": "string", "maxLength": 255 } } },
            "responses": { "Error": { "description": "Refused", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } } },
            "schemas": {
                "Error": { "type": "object", "required": ["error", "message"], "properties": { "error": text, "message": text } },
                "BankInfo": { "type": "object", "properties": { "bank": text, "certificate": text, "currency": text } },
                "Books": { "type": "object", "required": ["bank", "currency", "balanced", "balances", "holds_pending", "outbox_pending"], "properties": { "bank": text, "currency": text, "balanced": { "type": "boolean" }, "problem": { "type": "string", "description": "what is wrong; absent when the books balance" }, "balances": { "type": "object", "additionalProperties": text }, "holds_pending": { "type": "integer" }, "outbox_pending": { "type": "integer" } } },
                "OpenAccount": { "type": "object", "required": ["id", "holder"], "properties": { "id": { "type": "string", "example": "cust:alice" }, "holder": text, "floor": amount } },
                "Account": { "type": "object", "required": ["id", "holder", "balance", "held", "available"], "properties": { "id": text, "holder": text, "balance": amount, "held": amount, "available": amount, "floor": { "type": "string", "example": "-100.00 EUR", "description": "absent for the bank's own accounts" } } },
                "Deposit": { "type": "object", "required": ["account", "amount"], "properties": { "account": text, "amount": amount, "reference": text } },
                "Transfer": { "type": "object", "required": ["from", "to", "amount"], "properties": { "from": text, "to": text, "amount": amount, "reference": text } },
                "TransferReceipt": { "type": "object", "properties": { "posting": { "type": "integer" }, "from": text, "to": text, "amount": amount, "from_balance_after": amount, "at": ms } },
                "PlaceHold": { "type": "object", "required": ["account", "amount", "expires_at"], "properties": { "account": text, "amount": amount, "expires_at": ms, "reference": text } },
                "Destination": { "type": "object", "required": ["to"], "properties": { "to": text, "bank": { "type": "string", "description": "peer bank id (hex); absent for this bank" } } },
                "Hold": { "type": "object", "required": ["id", "account", "amount", "reference", "placed_by", "expires_at", "state", "created_at"], "description": "resolved_at, posting, destination and message are absent until they apply", "properties": {
                    "id": { "type": "integer" }, "account": text, "amount": amount, "reference": text, "placed_by": text,
                    "expires_at": ms, "state": { "type": "string", "enum": ["pending", "posted", "voided", "expired"] },
                    "created_at": ms, "resolved_at": ms, "posting": { "type": "integer" },
                    "destination": { "$ref": "#/components/schemas/Destination" }, "message": text } },
                "InterbankTransfer": { "type": "object", "required": ["from", "bank", "to", "amount"], "properties": { "from": text, "bank": text, "to": text, "amount": amount, "reference": text } },
                "InterbankReceipt": { "type": "object", "properties": { "message": text, "posting": { "type": "integer" }, "from": text, "bank": text, "to": text, "amount": amount, "from_balance_after": amount, "at": ms } },
                "Notification": { "type": "object", "properties": {
                    "id": { "type": "integer" }, "account": text,
                    "kind": { "type": "string", "enum": ["credited", "debited", "hold_placed", "hold_posted", "hold_voided", "hold_expired"] },
                    "amount": amount, "balance_after": amount, "available_after": amount, "reference": text, "at": ms } },
                "Notifications": { "type": "object", "properties": { "notifications": { "type": "array", "items": { "$ref": "#/components/schemas/Notification" } } } },
                "Mandate": { "type": "object", "required": ["account", "processor", "operations", "cap"], "properties": {
                    "account": text, "processor": text,
                    "operations": { "type": "array", "items": { "type": "string", "enum": ["hold", "debit", "read"] } },
                    "cap": amount, "revoked": { "type": "boolean" } } },
                "RevokeMandate": { "type": "object", "required": ["account", "processor"], "properties": { "account": text, "processor": text } },
                "Revoked": { "type": "object", "properties": { "revoked": { "type": "boolean" } } }
            }
        }
    })
}

#[cfg(test)]
mod busy_tests {
    use super::*;

    #[test]
    fn a_request_that_only_lost_a_race_is_answered_busy_with_retry_after() {
        let response = HttpError::Bank(crate::BankError::Idempotency(
            IdempotencyError::ConcurrentDuplicate,
        ))
        .into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
            Some("1")
        );
        let pool = mpay_sql::DbError::Sqlx(mpay_sql::sqlx::Error::PoolTimedOut);
        assert_eq!(
            HttpError::from(crate::BankError::Db(pool))
                .into_response()
                .status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let broken = HttpError::Bank(crate::BankError::Books("a bug".into())).into_response();
        assert_eq!(broken.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
