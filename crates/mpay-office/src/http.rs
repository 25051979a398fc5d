//! The money office over HTTP, and a client for it.
//!
//! | method and path | who | body → answer |
//! |---|---|---|
//! | `POST /v1/owners` | operator (admin token) | `{owner, deposit}` → `{owner, token}` |
//! | `GET /v1/owners/me` | owner | → `{owner, balance}` |
//! | `POST /v1/wallets` | owner | `{keys, requested_at, proof}` → `{wallet, certificate, office_certificate, attestation}` |
//! | `POST /v1/charges` | owner, `Idempotency-Key` header | `{wallet, amount}` → `{voucher}` |
//! | `POST /v1/sync` | the wallet itself (sealed envelope) | frame → frame |
//! | `GET /v1/revocations` | anyone | → signed revocation list (binary), 204 if none |
//! | `GET /v1/frauds` | operator | → fraud proofs |
//! | `GET /v1/office` | anyone | → `{office, certificate, currency}` |
//! | `GET /health`, `GET /metrics`, `GET /openapi.json` | anyone | liveness; Prometheus text; OpenAPI 3.1 |
//!
//! Owners and the operator authenticate with `Authorization: Bearer <token>`.
//! Signed objects travel as lower-case hex of their wire encoding
//! (docs/wire-format.md); amounts as text like `"12.50 EUR"`. Errors are
//! `{"error": code, "message": text}` with a status that says whose fault
//! it is; the office's own failures are logged and shown as `internal`.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
pub use mpay_http::ApiError;
use mpay_http::{Body, Json, Problem};
use mpay_identity::{
    Certificate, PartyId, PublicKeys, Signature, Timestamp, hex_bytes, hex_string,
};
use mpay_money::Amount;
use mpay_offline::chain::ChargeVoucher;
use mpay_offline::sync::SyncAttestation;
use mpay_wire::{Decode, Encode};
use serde::{Deserialize, Serialize};

use crate::office::{Enrolment, Office, OfficeError};

/// Largest request body the office reads (a sync of
/// `SYNC_ENTRIES_MAX` entries fits well inside).
pub const REQUEST_BODY_LEN_MAX: usize = 256 * 1024;

/// The wall clock, for the office's handlers only.
pub use mpay_clock::wall_clock;

struct AppState {
    office: Office,
    admin_token: Option<String>,
}

/// The office's HTTP routes. `admin_token` protects the operator's routes;
/// with `None` they are disabled.
pub fn router(office: Office, admin_token: Option<String>) -> Router {
    let state = Arc::new(AppState {
        office,
        admin_token,
    });
    let app = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/v1/office", get(office_info))
        .route("/v1/owners", post(open_account))
        .route("/v1/owners/me", get(me))
        .route("/v1/wallets", post(enroll))
        .route("/v1/charges", post(charge))
        .route("/v1/sync", post(sync))
        .route("/v1/revocations", get(revocations))
        .route("/v1/frauds", get(frauds))
        .with_state(state);
    mpay_http::harden(app, REQUEST_BODY_LEN_MAX)
}

/// Why a request was refused: by the HTTP edge (a body that could not be
/// read) or by the office.
enum HttpError {
    Request(Problem),
    Office(OfficeError),
}

impl From<OfficeError> for HttpError {
    fn from(e: OfficeError) -> Self {
        HttpError::Office(e)
    }
}

impl From<Problem> for HttpError {
    fn from(p: Problem) -> Self {
        HttpError::Request(p)
    }
}

fn bad_request(message: impl Into<String>) -> HttpError {
    HttpError::Office(OfficeError::Invalid(message.into()))
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let error = match self {
            HttpError::Request(problem) => return problem.into_response(),
            HttpError::Office(error) => error,
        };
        if error.is_busy() {
            tracing::warn!(%error, "request answered busy");
            return mpay_http::busy_response();
        }
        let (status, code) = match &error {
            OfficeError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            OfficeError::UnknownOwner(_) => (StatusCode::NOT_FOUND, "unknown_owner"),
            OfficeError::UnknownWallet(_) => (StatusCode::NOT_FOUND, "unknown_wallet"),
            OfficeError::OwnerExists(_) => (StatusCode::CONFLICT, "owner_exists"),
            OfficeError::Revoked(_) => (StatusCode::FORBIDDEN, "revoked"),
            OfficeError::Invalid(_) | OfficeError::Decode(_) => {
                (StatusCode::BAD_REQUEST, "invalid")
            }
            OfficeError::InsufficientFunds { .. } => {
                (StatusCode::PAYMENT_REQUIRED, "insufficient_funds")
            }
            OfficeError::Idempotency(e) if e.is_client_fault() => {
                (StatusCode::CONFLICT, "idempotency_key_reused")
            }
            OfficeError::SyncRefused(_) => (StatusCode::UNPROCESSABLE_ENTITY, "sync_refused"),
            OfficeError::Fraud { .. } => (StatusCode::CONFLICT, "double_spend"),
            OfficeError::Envelope(_) => (StatusCode::BAD_REQUEST, "envelope_refused"),
            OfficeError::Db(_) | OfficeError::Books(_) | OfficeError::Idempotency(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(%error, "office failure");
            "the office could not complete the request; it is logged".to_owned()
        } else {
            error.to_string()
        };
        mpay_http::ErrorResponse::into_response_with(ApiError::new(code, message), status)
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

async fn owner_of(state: &AppState, headers: &HeaderMap) -> Result<String, HttpError> {
    let token = bearer(headers).ok_or(HttpError::Office(OfficeError::Unauthorized))?;
    Ok(state.office.authenticate(token).await?)
}

fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), HttpError> {
    match (&state.admin_token, bearer(headers)) {
        (Some(expected), Some(given))
            if blake3::hash(expected.as_bytes()) == blake3::hash(given.as_bytes()) =>
        {
            Ok(())
        }
        _ => Err(HttpError::Office(OfficeError::Unauthorized)),
    }
}

fn decode_hex<T: Decode>(text: &str, what: &str) -> Result<T, HttpError> {
    let bytes = hex_bytes(text).ok_or_else(|| bad_request(format!("{what}: not hex")))?;
    T::from_wire(&bytes).map_err(|e| bad_request(format!("{what}: {e}")))
}

/// The office's API, derived from its handlers and their types.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "mpay money office",
        description = "The money office of the offline wallet: owners' accounts, wallet enrolment, charges (vouchers), sealed syncs, the signed revocation list and fraud proofs."
    ),
    paths(
        health,
        metrics,
        openapi,
        office_info,
        open_account,
        me,
        enroll,
        charge,
        sync,
        revocations,
        frauds
    )
)]
struct OfficeApi;

/// The office's `/openapi.json`.
pub fn openapi_document() -> serde_json::Value {
    mpay_http::openapi::finish(
        <OfficeApi as utoipa::OpenApi>::openapi(),
        &[
            mpay_http::openapi::Bearer {
                name: "operator",
                holder: "the office's admin token",
            },
            mpay_http::openapi::Bearer {
                name: "owner",
                holder: "an owner's token from opening the account",
            },
        ],
    )
}

#[utoipa::path(get, path = "/openapi.json", tag = "service",
    responses((status = 200, description = "this document", content_type = "application/json", body = inline(mpay_http::openapi::Document))))]
async fn openapi() -> impl IntoResponse {
    Json(openapi_document())
}

#[utoipa::path(get, path = "/health", tag = "service",
    responses((status = 200, description = "alive", body = mpay_http::openapi::Health)))]
async fn health() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Prometheus metrics", content_type = "text/plain", body = inline(mpay_http::openapi::MetricsText))))]
async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let m = &state.office.metrics;
    let body = format!(
        "# TYPE mpay_office_syncs_total counter\nmpay_office_syncs_total {}\n\
         # TYPE mpay_office_sync_entries_total counter\nmpay_office_sync_entries_total {}\n\
         # TYPE mpay_office_sync_refusals_total counter\nmpay_office_sync_refusals_total {}\n\
         # TYPE mpay_office_frauds_total counter\nmpay_office_frauds_total {}\n\
         # TYPE mpay_office_charges_total counter\nmpay_office_charges_total {}\n\
         # TYPE mpay_office_enrolments_total counter\nmpay_office_enrolments_total {}\n",
        m.syncs.load(Relaxed),
        m.sync_entries.load(Relaxed),
        m.sync_refusals.load(Relaxed),
        m.frauds.load(Relaxed),
        m.charges.load(Relaxed),
        m.enrolments.load(Relaxed),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

#[derive(Serialize, Deserialize, Debug, Clone, utoipa::ToSchema)]
pub struct OfficeInfo {
    pub office: String,
    pub certificate: String,
    /// The one currency of the office's books and wallets (`EUR`).
    pub currency: String,
}

#[utoipa::path(get, path = "/v1/office", tag = "service",
    responses((status = 200, description = "the office's id, certificate and currency", body = OfficeInfo)))]
async fn office_info(State(state): State<Arc<AppState>>) -> Json<OfficeInfo> {
    Json(OfficeInfo {
        office: state.office.id().to_hex(),
        certificate: hex_string(&state.office.certificate().to_wire()),
        currency: state.office.config().currency.to_string(),
    })
}

#[derive(Serialize, Deserialize, Debug, Clone, utoipa::ToSchema)]
pub struct OpenAccountRequest {
    pub owner: String,
    #[schema(value_type = mpay_http::openapi::AmountText)]
    pub deposit: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, utoipa::ToSchema)]
pub struct OpenAccountResponse {
    pub owner: String,
    pub token: String,
}

#[utoipa::path(post, path = "/v1/owners", tag = "owners", security(("operator" = [])),
    request_body = OpenAccountRequest,
    responses((status = 200, description = "the account, with the owner's token", body = OpenAccountResponse)))]
async fn open_account(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    json: Result<Json<OpenAccountRequest>, Problem>,
) -> Result<Json<OpenAccountResponse>, HttpError> {
    require_admin(&state, &headers)?;
    let Json(request) = json?;
    let deposit = Amount::parse(&request.deposit).map_err(|e| bad_request(e.to_string()))?;
    deposit
        .check_bounded()
        .map_err(|e| bad_request(e.to_string()))?;
    let token = state
        .office
        .open_account(&request.owner, deposit, wall_clock())
        .await?;
    Ok(Json(OpenAccountResponse {
        owner: request.owner,
        token,
    }))
}

#[derive(Serialize, Deserialize, Debug, Clone, utoipa::ToSchema)]
pub struct OwnerInfo {
    pub owner: String,
    #[schema(value_type = mpay_http::openapi::AmountText)]
    pub balance: String,
}

#[utoipa::path(get, path = "/v1/owners/me", tag = "owners", security(("owner" = [])),
    responses((status = 200, description = "the owner's balance", body = OwnerInfo)))]
async fn me(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<OwnerInfo>, HttpError> {
    let owner = owner_of(&state, &headers).await?;
    let balance = state.office.owner_balance(&owner).await?;
    Ok(Json(OwnerInfo {
        owner,
        balance: balance.to_string(),
    }))
}

#[derive(Serialize, Deserialize, Debug, Clone, utoipa::ToSchema)]
pub struct EnrollRequest {
    /// Hex of the wallet's `PublicKeys`.
    pub keys: String,
    /// Milliseconds since the epoch, as signed.
    pub requested_at: u64,
    /// Hex of the signature by the new keys over the enrolment request.
    pub proof: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, utoipa::ToSchema)]
pub struct EnrollResponse {
    pub wallet: String,
    pub certificate: String,
    pub office_certificate: String,
    pub attestation: String,
}

#[utoipa::path(post, path = "/v1/wallets", tag = "wallets", security(("owner" = [])),
    request_body = EnrollRequest,
    responses((status = 200, description = "the wallet's certificate and genesis attestation", body = EnrollResponse)))]
async fn enroll(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    json: Result<Json<EnrollRequest>, Problem>,
) -> Result<Json<EnrollResponse>, HttpError> {
    let owner = owner_of(&state, &headers).await?;
    let Json(request) = json?;
    let keys: PublicKeys = decode_hex(&request.keys, "keys")?;
    let proof: Signature = decode_hex(&request.proof, "proof")?;
    let enrolment = state
        .office
        .enroll(
            &owner,
            keys,
            Timestamp(request.requested_at),
            &proof,
            wall_clock(),
        )
        .await?;
    Ok(Json(EnrollResponse {
        wallet: enrolment.certificate.subject().to_hex(),
        certificate: hex_string(&enrolment.certificate.to_wire()),
        office_certificate: hex_string(&enrolment.office_certificate.to_wire()),
        attestation: hex_string(&enrolment.attestation.to_wire()),
    }))
}

#[derive(Serialize, Deserialize, Debug, Clone, utoipa::ToSchema)]
pub struct ChargeRequest {
    pub wallet: String,
    #[schema(value_type = mpay_http::openapi::AmountText)]
    pub amount: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, utoipa::ToSchema)]
pub struct ChargeResponse {
    pub voucher: String,
}

/// Header that carries a request's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

#[utoipa::path(post, path = "/v1/charges", tag = "wallets", security(("owner" = [])),
    params(("Idempotency-Key" = String, Header, description = "the same key with the same request answers the same voucher", min_length = 1, max_length = 128)),
    request_body = ChargeRequest,
    responses((status = 200, description = "a charge voucher for the wallet", body = ChargeResponse)))]
async fn charge(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    json: Result<Json<ChargeRequest>, Problem>,
) -> Result<Json<ChargeResponse>, HttpError> {
    let owner = owner_of(&state, &headers).await?;
    let Json(request) = json?;
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| bad_request("an Idempotency-Key header is required"))?;
    let wallet =
        PartyId::from_hex(&request.wallet).ok_or_else(|| bad_request("wallet: not an id"))?;
    let amount = Amount::parse(&request.amount).map_err(|e| bad_request(e.to_string()))?;
    amount
        .check_bounded()
        .map_err(|e| bad_request(e.to_string()))?;
    let voucher = state
        .office
        .charge(&owner, wallet, amount, key, wall_clock())
        .await?;
    Ok(Json(ChargeResponse {
        voucher: hex_string(&voucher.to_wire()),
    }))
}

#[utoipa::path(post, path = "/v1/sync", tag = "wallets",
    request_body(content = inline(mpay_http::openapi::Frame), content_type = "application/octet-stream",
        description = "a sync request sealed to the office by the wallet"),
    responses((status = 200, description = "the attestation, sealed to the wallet", content_type = "application/octet-stream", body = inline(mpay_http::openapi::Frame))))]
async fn sync(State(state): State<Arc<AppState>>, Body(body): Body) -> Result<Response, HttpError> {
    let frame = state.office.sync(&body, wall_clock()).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], frame).into_response())
}

#[utoipa::path(get, path = "/v1/revocations", tag = "service",
    responses(
        (status = 200, description = "the signed revocation list", content_type = "application/octet-stream", body = inline(mpay_http::openapi::Frame)),
        (status = 204, description = "no list yet")))]
async fn revocations(State(state): State<Arc<AppState>>) -> Result<Response, HttpError> {
    Ok(match state.office.revocation_list().await? {
        Some(list) => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            list.to_wire(),
        )
            .into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

#[derive(Serialize, Deserialize, Debug, Clone, utoipa::ToSchema)]
pub struct FraudView {
    pub wallet: String,
    pub owner: String,
    pub seq: u64,
    pub first_entry: String,
    pub second_entry: String,
    pub detected_at: u64,
    #[schema(value_type = mpay_http::openapi::AmountText)]
    pub charged: String,
}

#[utoipa::path(get, path = "/v1/frauds", tag = "owners", security(("operator" = [])),
    responses((status = 200, description = "the fraud proofs found by syncs", body = Vec<FraudView>)))]
async fn frauds(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Vec<FraudView>>, HttpError> {
    require_admin(&state, &headers)?;
    let frauds = state.office.frauds().await?;
    Ok(Json(
        frauds
            .into_iter()
            .map(|f| FraudView {
                wallet: f.wallet.to_hex(),
                owner: f.owner,
                seq: f.seq,
                first_entry: hex_string(&f.proof.first.to_wire()),
                second_entry: hex_string(&f.proof.second.to_wire()),
                detected_at: f.detected_at.as_millis(),
                charged: f.charged.to_string(),
            })
            .collect(),
    ))
}

/// Why a call to the office failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the money office at {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the office refused ({status}): {}", .error.message)]
    Refused { status: u16, error: ApiError },
    #[error("the office answered with something unexpected: {0}")]
    BadAnswer(String),
    /// Not sent: a token would have crossed a plaintext connection.
    #[error(transparent)]
    Transport(#[from] mpay_tls::TlsError),
}

impl ClientError {
    /// The office's error code (`double_spend`, `unauthorized`, …), if it
    /// refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Refused { error, .. } => Some(&error.error),
            _ => None,
        }
    }
}

/// A client of the office's HTTP API.
#[derive(Clone, Debug)]
pub struct OfficeClient {
    base: String,
    http: reqwest::Client,
    plaintext: mpay_tls::Plaintext,
}

impl OfficeClient {
    /// `base` like `https://127.0.0.1:7700`, trusting the process's root
    /// ([`mpay_tls::default_client`]); tokens go over plaintext only as
    /// [`mpay_tls::Plaintext::from_env`] allows.
    /// An error when that root cannot be read.
    pub fn new(base: &str) -> Result<OfficeClient, mpay_tls::TlsError> {
        Ok(OfficeClient {
            base: base.trim_end_matches('/').to_owned(),
            http: mpay_tls::default_client(std::time::Duration::from_secs(30))?,
            plaintext: mpay_tls::Plaintext::from_env(),
        })
    }

    /// The same client, sending tokens over plaintext to loopback as
    /// `plaintext` (or the environment) allows.
    pub fn with_plaintext(mut self, plaintext: mpay_tls::Plaintext) -> OfficeClient {
        self.plaintext = plaintext.or_env();
        self
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn check(&self, response: reqwest::Response) -> Result<reqwest::Response, ClientError> {
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

    fn unreachable(&self, source: reqwest::Error) -> ClientError {
        ClientError::Unreachable {
            url: self.base.clone(),
            source,
        }
    }

    async fn json<T: for<'de> Deserialize<'de>>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let request = request.build().map_err(|e| self.unreachable(e))?;
        mpay_tls::check_request(&request, self.plaintext)?;
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|e| self.unreachable(e))?;
        let response = self.check(response).await?;
        response
            .json::<T>()
            .await
            .map_err(|e| ClientError::BadAnswer(e.to_string()))
    }

    pub async fn health(&self) -> Result<(), ClientError> {
        let response = self
            .http
            .get(self.url("/health"))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        self.check(response).await.map(|_| ())
    }

    /// The office's id, certificate and currency.
    pub async fn info(&self) -> Result<OfficeInfo, ClientError> {
        self.json(self.http.get(self.url("/v1/office"))).await
    }

    pub async fn open_account(
        &self,
        admin_token: &str,
        owner: &str,
        deposit: Amount,
    ) -> Result<String, ClientError> {
        let response: OpenAccountResponse = self
            .json(
                self.http
                    .post(self.url("/v1/owners"))
                    .bearer_auth(admin_token)
                    .json(&OpenAccountRequest {
                        owner: owner.to_owned(),
                        deposit: deposit.to_string(),
                    }),
            )
            .await?;
        Ok(response.token)
    }

    pub async fn owner_balance(&self, token: &str) -> Result<OwnerInfo, ClientError> {
        self.json(self.http.get(self.url("/v1/owners/me")).bearer_auth(token))
            .await
    }

    pub async fn enroll(
        &self,
        token: &str,
        keys: &PublicKeys,
        requested_at: Timestamp,
        proof: &Signature,
    ) -> Result<Enrolment, ClientError> {
        let response: EnrollResponse = self
            .json(
                self.http
                    .post(self.url("/v1/wallets"))
                    .bearer_auth(token)
                    .json(&EnrollRequest {
                        keys: hex_string(&keys.to_wire()),
                        requested_at: requested_at.as_millis(),
                        proof: hex_string(&proof.0),
                    }),
            )
            .await?;
        let decode =
            |text: &str| hex_bytes(text).ok_or_else(|| ClientError::BadAnswer("not hex".into()));
        let bad = |e: mpay_wire::DecodeError| ClientError::BadAnswer(e.to_string());
        Ok(Enrolment {
            certificate: Certificate::from_wire(&decode(&response.certificate)?).map_err(bad)?,
            office_certificate: Certificate::from_wire(&decode(&response.office_certificate)?)
                .map_err(bad)?,
            attestation: SyncAttestation::from_wire(&decode(&response.attestation)?)
                .map_err(bad)?,
        })
    }

    pub async fn charge(
        &self,
        token: &str,
        wallet: PartyId,
        amount: Amount,
        idempotency_key: &str,
    ) -> Result<ChargeVoucher, ClientError> {
        let response: ChargeResponse = self
            .json(
                self.http
                    .post(self.url("/v1/charges"))
                    .bearer_auth(token)
                    .header(IDEMPOTENCY_KEY, idempotency_key)
                    .json(&ChargeRequest {
                        wallet: wallet.to_hex(),
                        amount: amount.to_string(),
                    }),
            )
            .await?;
        let bytes =
            hex_bytes(&response.voucher).ok_or_else(|| ClientError::BadAnswer("not hex".into()))?;
        ChargeVoucher::from_wire(&bytes).map_err(|e| ClientError::BadAnswer(e.to_string()))
    }

    /// Sends a sealed sync request; returns the sealed response.
    pub async fn sync(&self, frame: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        let response = self
            .http
            .post(self.url("/v1/sync"))
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(frame)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let response = self.check(response).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::BadAnswer(e.to_string()))?;
        Ok(bytes.to_vec())
    }

    pub async fn frauds(&self, admin_token: &str) -> Result<Vec<FraudView>, ClientError> {
        self.json(
            self.http
                .get(self.url("/v1/frauds"))
                .bearer_auth(admin_token),
        )
        .await
    }
}

#[cfg(test)]
mod busy_tests {
    use super::*;

    #[test]
    fn a_request_that_only_lost_a_race_is_answered_busy_with_retry_after() {
        let response = HttpError::Office(crate::OfficeError::Idempotency(
            mpay_sql::IdempotencyError::ConcurrentDuplicate,
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
            HttpError::from(crate::OfficeError::Db(pool))
                .into_response()
                .status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let broken = HttpError::Office(crate::OfficeError::Books("a bug")).into_response();
        assert_eq!(broken.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
