//! Idempotency keys (DESIGN §3.2): every request carries a key; a repeat
//! returns the stored result; a changed body under the same key is an error.
//!
//! Both calls run inside the caller's transaction, so the stored response is
//! committed together with the work, or not at all:
//!
//! ```no_run
//! # async fn f(db: &mpay_sql::Db, key: &str, body_hash: &[u8], now_ms: i64)
//! #     -> Result<Vec<u8>, mpay_sql::idempotency::IdempotencyError> {
//! use mpay_sql::idempotency;
//! db.with_retry(move |tx| Box::pin(async move {
//!     if let Some(stored) = idempotency::begin(tx, "payments", key, body_hash, now_ms).await? {
//!         return Ok(stored.response); // a repeat: answer as the first time
//!     }
//!     let response = b"...do the work on `tx`, build the answer...".to_vec();
//!     idempotency::finish(tx, "payments", key, &response).await?;
//!     Ok(response)
//! }))
//! .await
//! # }
//! ```
//!
//! Concurrent duplicates: on SQLite the second request waits for the first's
//! write lock and then finds the stored response. On PostgreSQL its insert
//! waits for the first transaction and then fails with a serialization
//! failure or [`IdempotencyError::ConcurrentDuplicate`]; both are
//! [retryable](crate::Retryable), so under [`Db::with_retry`](crate::Db::with_retry)
//! the repeat finds the stored response. The work is never done twice.

use sqlx::Row;

use crate::Db;
use crate::db::{DbError, Retryable, Tx, is_unique_violation};

/// Longest scope (the service's name for a kind of request).
pub const SCOPE_LEN_MAX: usize = 64;
/// Longest idempotency key a client may send.
pub const KEY_LEN_MAX: usize = 255;
/// Longest request hash (64 bytes fits SHA-512 and BLAKE3-512).
pub const REQUEST_HASH_LEN_MAX: usize = 64;
/// Largest stored response.
pub const RESPONSE_LEN_MAX: usize = 1 << 20;

/// The response stored under a key by an earlier, committed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// The bytes `finish` stored (empty for a refusal).
    pub response: Vec<u8>,
    /// What [`finish_refused`] stored: the request was refused for good.
    pub refusal: Option<String>,
    /// When the first request began (ms since the epoch, as passed in).
    pub created_at_ms: i64,
}

/// Errors of the idempotency helper.
#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    /// The client reused a key for a different request body (client's fault).
    #[error("idempotency key `{key}` in scope `{scope}` was used before for a different request")]
    KeyReusedWithDifferentRequest {
        /// The scope.
        scope: String,
        /// The key.
        key: String,
    },
    /// The key, scope or hash breaks a named limit (client's fault when the
    /// key came from the client).
    #[error("invalid idempotency key: {reason}")]
    InvalidKey {
        /// Which limit.
        reason: String,
    },
    /// A request with the same key is being processed by a concurrent
    /// transaction that has since committed; retry (the retry sees its result).
    #[error("a concurrent request with the same idempotency key got there first; retry")]
    ConcurrentDuplicate,
    /// A committed row has no response: `begin` was committed without
    /// `finish` (the calling service's bug).
    #[error("idempotency key `{key}` in scope `{scope}` was begun but never finished")]
    Unfinished {
        /// The scope.
        scope: String,
        /// The key.
        key: String,
    },
    /// `finish` without `begin` in this transaction, or called twice (the
    /// calling service's bug).
    #[error("idempotency key `{key}` in scope `{scope}` was finished without being begun")]
    NotBegun {
        /// The scope.
        scope: String,
        /// The key.
        key: String,
    },
    /// The response exceeds [`RESPONSE_LEN_MAX`] (the calling service's bug).
    #[error("response of {len} bytes exceeds the limit of {RESPONSE_LEN_MAX}")]
    ResponseTooLarge {
        /// Its length.
        len: usize,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for IdempotencyError {
    fn from(error: sqlx::Error) -> Self {
        IdempotencyError::Db(DbError::Sqlx(error))
    }
}

impl IdempotencyError {
    /// True when the client caused it (reused key, malformed key): answer
    /// with a 4xx, do not retry.
    pub fn is_client_fault(&self) -> bool {
        matches!(
            self,
            IdempotencyError::KeyReusedWithDifferentRequest { .. }
                | IdempotencyError::InvalidKey { .. }
        )
    }
}

impl Retryable for IdempotencyError {
    fn is_retryable(&self) -> bool {
        match self {
            IdempotencyError::ConcurrentDuplicate => true,
            IdempotencyError::Db(error) => error.is_retryable(),
            _ => false,
        }
    }
}

fn check_limits(scope: &str, key: &str) -> Result<(), IdempotencyError> {
    let invalid = |reason: String| Err(IdempotencyError::InvalidKey { reason });
    if scope.is_empty() || scope.len() > SCOPE_LEN_MAX {
        return invalid(format!("scope must be 1..={SCOPE_LEN_MAX} bytes"));
    }
    if key.is_empty() || key.len() > KEY_LEN_MAX {
        return invalid(format!("key must be 1..={KEY_LEN_MAX} bytes"));
    }
    if key.contains('\0') || scope.contains('\0') {
        return invalid("key and scope must not contain NUL".to_owned());
    }
    Ok(())
}

/// Claims `(scope, key)` for this transaction, or returns the response of
/// the committed request that claimed it before. `request_hash` is the
/// caller's hash of the request body (canonical encoding), at most
/// [`REQUEST_HASH_LEN_MAX`] bytes; the same key with another hash is
/// [`IdempotencyError::KeyReusedWithDifferentRequest`]. `now_ms` is recorded
/// as the key's creation time.
///
/// `Ok(None)`: do the work in `tx`, then call [`finish`] before committing.
pub async fn begin(
    tx: &mut Tx<'_>,
    scope: &str,
    key: &str,
    request_hash: &[u8],
    now_ms: i64,
) -> Result<Option<StoredResponse>, IdempotencyError> {
    check_limits(scope, key)?;
    if request_hash.is_empty() || request_hash.len() > REQUEST_HASH_LEN_MAX {
        return Err(IdempotencyError::InvalidKey {
            reason: format!("request hash must be 1..={REQUEST_HASH_LEN_MAX} bytes"),
        });
    }
    let existing = sqlx::query(
        "SELECT request_hash, response, refusal, created_at FROM idempotency
         WHERE scope = $1 AND key = $2",
    )
    .bind(scope)
    .bind(key)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(row) = existing {
        let stored_hash: Vec<u8> = row.try_get("request_hash")?;
        if stored_hash != request_hash {
            return Err(IdempotencyError::KeyReusedWithDifferentRequest {
                scope: scope.to_owned(),
                key: key.to_owned(),
            });
        }
        let response: Option<Vec<u8>> = row.try_get("response")?;
        let refusal: Option<String> = row.try_get("refusal")?;
        let created_at_ms: i64 = row.try_get("created_at")?;
        return match response {
            Some(response) => Ok(Some(StoredResponse {
                response,
                refusal,
                created_at_ms,
            })),
            None => Err(IdempotencyError::Unfinished {
                scope: scope.to_owned(),
                key: key.to_owned(),
            }),
        };
    }
    let inserted = sqlx::query(
        "INSERT INTO idempotency (scope, key, request_hash, response, created_at)
         VALUES ($1, $2, $3, NULL, $4)",
    )
    .bind(scope)
    .bind(key)
    .bind(request_hash)
    .bind(now_ms)
    .execute(&mut **tx)
    .await;
    match inserted {
        Ok(_) => Ok(None),
        Err(error) if is_unique_violation(&error) => Err(IdempotencyError::ConcurrentDuplicate),
        Err(error) => Err(error.into()),
    }
}

/// Stores `response` under the key that [`begin`] claimed in this
/// transaction. Commit afterwards; a rollback forgets both.
pub async fn finish(
    tx: &mut Tx<'_>,
    scope: &str,
    key: &str,
    response: &[u8],
) -> Result<(), IdempotencyError> {
    store_answer(tx, scope, key, response, None).await
}

/// Stores the answer of the key [`begin`] claimed in this transaction.
async fn store_answer(
    tx: &mut Tx<'_>,
    scope: &str,
    key: &str,
    response: &[u8],
    refusal: Option<&str>,
) -> Result<(), IdempotencyError> {
    let len = response.len().max(refusal.map_or(0, str::len));
    if len > RESPONSE_LEN_MAX {
        return Err(IdempotencyError::ResponseTooLarge { len });
    }
    let updated = sqlx::query(
        "UPDATE idempotency SET response = $3, refusal = $4
         WHERE scope = $1 AND key = $2 AND response IS NULL",
    )
    .bind(scope)
    .bind(key)
    .bind(response)
    .bind(refusal)
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Err(IdempotencyError::NotBegun {
            scope: scope.to_owned(),
            key: key.to_owned(),
        });
    }
    Ok(())
}

/// Stores `refusal` as the answer of the key [`begin`] claimed in this
/// transaction: the request was refused for good, and a repeat must get the
/// same refusal even if the work would now succeed (its caller already
/// acted on the refusal). Commit afterwards.
pub async fn finish_refused(
    tx: &mut Tx<'_>,
    scope: &str,
    key: &str,
    refusal: &str,
) -> Result<(), IdempotencyError> {
    store_answer(tx, scope, key, b"", Some(refusal)).await
}

/// Deletes keys created before `created_before_ms`; returns how many. A
/// client that repeats a request after that is treated as new, so keep keys
/// longer than any client retries.
pub async fn prune(db: &Db, created_before_ms: i64) -> Result<u64, DbError> {
    let deleted = sqlx::query("DELETE FROM idempotency WHERE created_at < $1")
        .bind(created_before_ms)
        .execute(db.pool())
        .await?;
    Ok(deleted.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_checked_at_their_edges() {
        let scope = "s".repeat(SCOPE_LEN_MAX);
        let key = "k".repeat(KEY_LEN_MAX);
        assert!(check_limits(&scope, &key).is_ok());
        assert!(check_limits(&format!("{scope}s"), "k").is_err());
        assert!(check_limits("s", &format!("{key}k")).is_err());
        assert!(check_limits("", "k").is_err());
        assert!(check_limits("s", "").is_err());
        assert!(check_limits("s", "a\0b").is_err());
        let err = check_limits("s", "").unwrap_err();
        assert!(err.is_client_fault());
        assert!(!err.is_retryable());
        assert!(IdempotencyError::ConcurrentDuplicate.is_retryable());
    }
}
