//! What the three services share at their HTTP edge: the error type and
//! how it maps to `{error, message}` JSON, bearer-token checks, the wall
//! clock, hex helpers, and the OpenAPI skeleton.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
pub use mpay_http::ApiError;
use mpay_http::openapi::Bearer;
use mpay_http::{Json, Problem};
use mpay_identity::{Timestamp, hex_bytes, hex_string};
use mpay_sql::{DbError, IdempotencyError, OutboxError, Retryable};

/// Largest request body a service reads.
pub const REQUEST_BODY_LEN_MAX: usize = 64 * 1024;

pub use mpay_http::BUSY_RETRY_AFTER_S;

/// The wall clock, for the services' drivers only.
pub use mpay_clock::wall_clock;

/// A timestamp as a database column.
pub(crate) fn ms(t: Timestamp) -> i64 {
    i64::try_from(t.as_millis()).unwrap_or(i64::MAX)
}

/// A database column as a timestamp.
pub(crate) fn ts(ms: i64) -> Timestamp {
    Timestamp(u64::try_from(ms).unwrap_or(0))
}

/// Why a request or a step failed. [`NetError::status`] tells whose fault:
/// 4xx the caller's (or the peer's), 5xx this service's or a dependency's.
/// Never carries a PIN, a token or a key.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The HTTP edge could not read the request (body, path or query).
    #[error(transparent)]
    Request(#[from] Problem),
    /// No or an unknown bearer token.
    #[error("authentication required")]
    Unauthenticated,
    /// The caller may not do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The request is malformed.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// What was asked for does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What.
        what: &'static str,
    },
    /// The PIN is wrong; `left` tries before the account locks.
    #[error("wrong PIN; {left} tries left before the account locks")]
    WrongPin {
        /// Tries left.
        left: u32,
    },
    /// Too many wrong PINs: an operator must unlock the account.
    #[error("account locked after too many wrong PINs; an operator must unlock it")]
    Locked,
    /// The same idempotency key with another request.
    #[error("idempotency key reused with a different request")]
    IdempotencyConflict,
    /// The customer's bank refused the hold for lack of funds.
    #[error("insufficient funds")]
    InsufficientFunds,
    /// A conflict with the current state, with a stable code.
    #[error("{message}")]
    Conflict {
        /// The code.
        code: &'static str,
        /// For people.
        message: String,
    },
    /// A message from a peer (or a customer device) was refused: bad
    /// envelope, signature, certificate, role or content.
    #[error("refused: {0}")]
    Refused(String),
    /// An exact copy of a frame already received.
    #[error("frame already received (replay)")]
    Replay,
    /// A bank or service this one depends on did not answer; the step is
    /// kept and resumed later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The service is busy (a transaction kept losing races to concurrent
    /// ones, or no database connection came free): nothing was changed, and
    /// the same request may be sent again after `Retry-After`.
    #[error("busy: {0}; retry")]
    Busy(String),
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] DbError),
    /// The outbox failed.
    #[error("outbox: {0}")]
    Outbox(#[from] OutboxError),
    /// This service's own fault.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<mpay_sql::sqlx::Error> for NetError {
    fn from(e: mpay_sql::sqlx::Error) -> Self {
        NetError::Db(DbError::from(e))
    }
}

impl From<IdempotencyError> for NetError {
    fn from(e: IdempotencyError) -> Self {
        match e {
            IdempotencyError::KeyReusedWithDifferentRequest { .. } => NetError::IdempotencyConflict,
            IdempotencyError::Db(db) => NetError::Db(db),
            IdempotencyError::ConcurrentDuplicate => NetError::Busy(e.to_string()),
            other => NetError::Internal(other.to_string()),
        }
    }
}

impl Retryable for NetError {
    fn is_retryable(&self) -> bool {
        match self {
            NetError::Db(e) => e.is_retryable(),
            NetError::Outbox(e) => e.is_retryable(),
            NetError::Busy(_) => true,
            _ => false,
        }
    }
}

impl NetError {
    /// The HTTP status and stable code.
    pub fn status(&self) -> (StatusCode, &'static str) {
        match self {
            NetError::Request(problem) => (problem.status, problem.code),
            NetError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            NetError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            NetError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid"),
            NetError::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
            NetError::WrongPin { .. } => (StatusCode::UNAUTHORIZED, "wrong_pin"),
            NetError::Locked => (StatusCode::LOCKED, "account_locked"),
            NetError::IdempotencyConflict => (StatusCode::CONFLICT, "idempotency_conflict"),
            NetError::InsufficientFunds => (StatusCode::PAYMENT_REQUIRED, "insufficient_funds"),
            NetError::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            NetError::Refused(_) => (StatusCode::BAD_REQUEST, "refused"),
            NetError::Replay => (StatusCode::CONFLICT, "replay"),
            NetError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            _ if self.is_busy() => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            NetError::Busy(_) | NetError::Db(_) | NetError::Outbox(_) | NetError::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        }
    }

    /// True when the request failed only because the service is busy:
    /// answered 503 `busy` with `Retry-After`, and safe to send again.
    pub fn is_busy(&self) -> bool {
        match self {
            NetError::Busy(_) => true,
            NetError::Db(e) | NetError::Outbox(OutboxError::Db(e)) => e.is_busy(),
            _ => false,
        }
    }

    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> NetError {
        NetError::Conflict {
            code,
            message: message.into(),
        }
    }
}

impl NetError {
    /// The error as a client sees it (what its answer's body says); a
    /// server's fault is logged here and told in general terms.
    pub(crate) fn api_error(&self) -> ApiError {
        let (status, code) = self.status();
        let message = if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(error = %self, "request failed");
            "the service could not complete the request; it is logged".to_owned()
        } else {
            self.to_string()
        };
        ApiError::new(code, message)
    }
}

impl IntoResponse for NetError {
    fn into_response(self) -> Response {
        if self.is_busy() {
            tracing::warn!(error = %self, "request answered busy");
            return mpay_http::busy_response();
        }
        let (status, _) = self.status();
        mpay_http::ErrorResponse::into_response_with(self.api_error(), status)
    }
}

/// The bearer token of a request, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// Compares in time that depends only on the lengths.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (blake3::hash(a.as_bytes()), blake3::hash(b.as_bytes()));
    // blake3::Hash equality is constant-time.
    a == b
}

/// A name from a request (a customer's, a merchant's): 1 to `max` bytes,
/// no control characters (PostgreSQL cannot store a NUL in text, so one
/// would fail the query instead of being refused).
pub(crate) fn checked_name<'a>(what: &str, text: &'a str, max: usize) -> Result<&'a str, NetError> {
    if text.is_empty() || text.len() > max || text.chars().any(char::is_control) {
        return Err(NetError::Invalid(format!(
            "{what}: 1 to {max} bytes without control characters"
        )));
    }
    Ok(text)
}

/// 16 bytes from 32 hex digits.
pub(crate) fn id16(text: &str) -> Result<[u8; 16], NetError> {
    hex_bytes(text)
        .and_then(|b| <[u8; 16]>::try_from(b).ok())
        .ok_or_else(|| NetError::Invalid("ids are 32 hex digits".into()))
}

/// Hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    hex_string(bytes)
}

/// Decodes a hex-encoded wire value.
pub(crate) fn from_hex_wire<T: mpay_wire::Decode>(what: &str, text: &str) -> Result<T, NetError> {
    let bytes = hex_bytes(text).ok_or_else(|| NetError::Invalid(format!("{what}: not hex")))?;
    T::from_wire(&bytes).map_err(|e| NetError::Invalid(format!("{what}: {e}")))
}

/// `GET /health`.
#[utoipa::path(get, path = "/health", tag = "service",
    responses((status = 200, description = "alive", body = mpay_http::openapi::Health)))]
pub(crate) async fn health() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

/// The bearer schemes of the three services.
pub(crate) const OPERATOR: Bearer = Bearer {
    name: "operator",
    holder: "the service's operator token (its configuration)",
};
/// A merchant's token, from its enrolment at the MPP.
pub(crate) const MERCHANT: Bearer = Bearer {
    name: "merchant",
    holder: "a merchant's token from its enrolment at the MPP",
};

/// A service's finished `/openapi.json` from its derived `doc`.
pub(crate) fn openapi_document(
    doc: utoipa::openapi::OpenApi,
    schemes: &[Bearer],
) -> serde_json::Value {
    mpay_http::openapi::finish(doc, schemes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_concurrent_duplicate_stays_retryable_and_is_never_a_500() {
        // The idempotency table's unique key lost a race to a concurrent
        // request with the same key: running the transaction again sees that
        // request's answer, so it must stay retryable through `NetError`.
        let error = NetError::from(IdempotencyError::ConcurrentDuplicate);
        assert!(error.is_retryable(), "{error:?} must be retryable");
        assert_eq!(
            error.status(),
            (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            "if retries run out, the caller is told to retry, not that the service broke"
        );
    }

    #[test]
    fn a_database_that_is_only_busy_is_busy_not_internal() {
        // No pooled connection came free in time: load, not a fault.
        let lost_race = NetError::Db(DbError::Sqlx(mpay_sql::sqlx::Error::PoolTimedOut));
        assert_eq!(
            lost_race.status(),
            (StatusCode::SERVICE_UNAVAILABLE, "busy")
        );
        let broken = NetError::Internal("a bug".into());
        assert_eq!(
            broken.status(),
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        );
    }

    #[test]
    fn a_busy_answer_tells_the_caller_when_to_retry() {
        let response = NetError::from(IdempotencyError::ConcurrentDuplicate).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
            Some("1")
        );
    }
}
