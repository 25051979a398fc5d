//! The transactional outbox (DESIGN §3.2): every message between services is
//! written by [`enqueue`] in the same transaction as the state change it
//! reports, and a delivery loop in the service sends it until the
//! destination acknowledges it. A crash between "decide" and "send" loses
//! nothing; delivery is at least once, and receivers deduplicate by the
//! message's idempotency key.
//!
//! The delivery loop (HTTP is the service's job, not this crate's):
//!
//! ```no_run
//! # async fn send(_: &mpay_sql::outbox::OutboxMessage) -> bool { true }
//! # async fn f(db: &mpay_sql::Db, now_ms: i64) -> Result<(), mpay_sql::outbox::OutboxError> {
//! use mpay_sql::outbox;
//! let lease_ms = outbox::claim_lease_ms(5_000); // one send's timeout
//! for message in outbox::due(db, now_ms, 100, lease_ms).await? {
//!     if send(&message).await {
//!         outbox::mark_delivered(db, message.id, now_ms).await?;
//!     } else {
//!         outbox::mark_failed(db, message.id, now_ms).await?;
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! [`due`] *claims* what it returns: it moves each message's next attempt
//! the caller's lease ahead, so several instances of a service can run the
//! loop on one database without sending a message twice at once. A worker
//! that dies mid-send leaves the message to be claimed again when the lease
//! runs out, so the lease is what one send can take (the sender's HTTP
//! timeout and a margin, [`claim_lease_ms`]), not more: a process that
//! restarts after a crash finds its claims due again within seconds. A
//! lease that runs out while the send is still going costs at most a second
//! copy of the message, which every receiver takes as a repeat. Retries never stop (a message is delivered "until
//! acknowledged"); `attempts` is there for alerts.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{Db, DbError, Retryable, Tx, is_unique_violation};

/// Wait after the first failed attempt.
pub const RETRY_FIRST_MS: i64 = 1_000;
/// Cap on the wait between two attempts (the doubling stops here). Short,
/// because what waits in an outbox is usually a step of a payment with a
/// deadline of minutes, and a peer that restarts is back within seconds:
/// waiting minutes after a few failures would expire payments for nothing.
pub const RETRY_INTERVAL_MAX_MS: i64 = 10 * 1_000;
/// What a claim's lease adds to the sender's timeout for one send: the
/// bookkeeping after the answer.
pub const CLAIM_MARGIN_MS: i64 = 2_000;
/// Most messages one [`due`] call returns.
pub const DUE_BATCH_MAX: u32 = 1_000;
/// Largest payload.
pub const PAYLOAD_LEN_MAX: usize = 1 << 20;
/// Longest destination, kind and idempotency key.
pub const NAME_LEN_MAX: usize = 255;

/// A message's id: assigned by the database, increasing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub i64);

/// A message to enqueue.
#[derive(Debug, Clone, Copy)]
pub struct NewMessage<'a> {
    /// Where it goes (a party id or service name the delivery loop resolves).
    pub destination: &'a str,
    /// What it is (the message kind, for the receiver's routing).
    pub kind: &'a str,
    /// The bytes to send (e.g. a sealed envelope).
    pub payload: &'a [u8],
    /// The key the receiver deduplicates by; unique per destination.
    pub idempotency_key: &'a str,
}

/// A message claimed for delivery by [`due`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Its id (for [`mark_delivered`] / [`mark_failed`]).
    pub id: MessageId,
    /// Where it goes.
    pub destination: String,
    /// What it is.
    pub kind: String,
    /// The bytes to send.
    pub payload: Vec<u8>,
    /// The receiver's deduplication key.
    pub idempotency_key: String,
    /// Failed attempts so far.
    pub attempts: u32,
    /// When it was enqueued (ms).
    pub created_at_ms: i64,
}

/// What [`mark_failed`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// The message will be due again at `next_attempt_at_ms`.
    Scheduled {
        /// Failed attempts, this one included.
        attempts: u32,
        /// When it is due again (ms).
        next_attempt_at_ms: i64,
    },
    /// Another worker delivered it meanwhile; nothing changed.
    AlreadyDelivered,
}

/// Errors of the outbox.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The message breaks a named limit (the calling service's bug).
    #[error("invalid outbox message: {reason}")]
    InvalidMessage {
        /// Which limit.
        reason: String,
    },
    /// A message with this idempotency key for this destination exists.
    #[error(
        "outbox already holds a message to `{destination}` with idempotency key `{idempotency_key}`"
    )]
    DuplicateKey {
        /// The destination.
        destination: String,
        /// The key.
        idempotency_key: String,
    },
    /// No message has this id (pruned, or never existed).
    #[error("no outbox message {0:?}")]
    NotFound(MessageId),
    /// A stored value is out of range (the database was edited by hand).
    #[error("outbox message {id:?}: column `{column}` is out of range")]
    Corrupt {
        /// The message.
        id: MessageId,
        /// The column.
        column: &'static str,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for OutboxError {
    fn from(error: sqlx::Error) -> Self {
        OutboxError::Db(DbError::Sqlx(error))
    }
}

impl Retryable for OutboxError {
    fn is_retryable(&self) -> bool {
        matches!(self, OutboxError::Db(error) if error.is_retryable())
    }
}

/// The wait after the `failures`-th failed attempt: [`RETRY_FIRST_MS`]
/// doubled per further failure, capped at [`RETRY_INTERVAL_MAX_MS`]. No
/// jitter: the outbox's retries are per message and already spread out by
/// their enqueue times.
pub fn backoff_ms(failures: u32) -> i64 {
    let doublings = failures.saturating_sub(1).min(32);
    RETRY_FIRST_MS
        .saturating_mul(1i64 << doublings)
        .min(RETRY_INTERVAL_MAX_MS)
}

fn check_name(what: &str, value: &str) -> Result<(), OutboxError> {
    if value.is_empty() || value.len() > NAME_LEN_MAX || value.contains('\0') {
        return Err(OutboxError::InvalidMessage {
            reason: format!("{what} must be 1..={NAME_LEN_MAX} bytes without NUL"),
        });
    }
    Ok(())
}

/// Writes `message` in the caller's transaction, due at once (`now_ms`).
/// It is sent only if the transaction commits.
pub async fn enqueue(
    tx: &mut Tx<'_>,
    message: &NewMessage<'_>,
    now_ms: i64,
) -> Result<MessageId, OutboxError> {
    check_name("destination", message.destination)?;
    check_name("kind", message.kind)?;
    check_name("idempotency key", message.idempotency_key)?;
    if message.payload.len() > PAYLOAD_LEN_MAX {
        return Err(OutboxError::InvalidMessage {
            reason: format!(
                "payload of {} bytes exceeds {PAYLOAD_LEN_MAX}",
                message.payload.len()
            ),
        });
    }
    let inserted = sqlx::query(
        "INSERT INTO outbox (destination, kind, payload, idempotency_key, attempts,
                             next_attempt_at, created_at, delivered_at)
         VALUES ($1, $2, $3, $4, 0, $5, $5, NULL)
         RETURNING id",
    )
    .bind(message.destination)
    .bind(message.kind)
    .bind(message.payload)
    .bind(message.idempotency_key)
    .bind(now_ms)
    .fetch_one(&mut **tx)
    .await;
    match inserted {
        Ok(row) => Ok(MessageId(row.try_get("id")?)),
        Err(error) if is_unique_violation(&error) => Err(OutboxError::DuplicateKey {
            destination: message.destination.to_owned(),
            idempotency_key: message.idempotency_key.to_owned(),
        }),
        Err(error) => Err(error.into()),
    }
}

/// The lease for a claim whose send gives up after `send_timeout_ms`.
pub fn claim_lease_ms(send_timeout_ms: u64) -> i64 {
    i64::try_from(send_timeout_ms)
        .unwrap_or(i64::MAX)
        .saturating_add(CLAIM_MARGIN_MS)
}

/// Claims up to `limit` (at most [`DUE_BATCH_MAX`]) undelivered messages due
/// at `now_ms`, oldest first, for `lease_ms` (see [`claim_lease_ms`] and the
/// module docs).
pub async fn due(
    db: &Db,
    now_ms: i64,
    limit: u32,
    lease_ms: i64,
) -> Result<Vec<OutboxMessage>, OutboxError> {
    let limit = i64::from(limit.min(DUE_BATCH_MAX));
    if limit == 0 {
        return Ok(Vec::new());
    }
    let lease_until_ms = now_ms.saturating_add(lease_ms.max(0));
    db.with_retry(move |tx| {
        Box::pin(async move {
            let rows = sqlx::query(
                "UPDATE outbox SET next_attempt_at = $2
             WHERE id IN (SELECT id FROM outbox
                          WHERE delivered_at IS NULL AND next_attempt_at <= $1
                          ORDER BY next_attempt_at, id
                          LIMIT $3)
             RETURNING id, destination, kind, payload, idempotency_key, attempts, created_at",
            )
            .bind(now_ms)
            .bind(lease_until_ms)
            .bind(limit)
            .fetch_all(&mut **tx)
            .await?;
            let mut messages = rows
                .iter()
                .map(message_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            // RETURNING has no order; the subquery's order was due time then id,
            // and ids follow enqueue order.
            messages.sort_by_key(|m| m.id);
            Ok(messages)
        })
    })
    .await
}

fn message_from_row(row: &AnyRow) -> Result<OutboxMessage, OutboxError> {
    let id = MessageId(row.try_get("id")?);
    let attempts: i64 = row.try_get("attempts")?;
    Ok(OutboxMessage {
        id,
        destination: row.try_get("destination")?,
        kind: row.try_get("kind")?,
        payload: row.try_get("payload")?,
        idempotency_key: row.try_get("idempotency_key")?,
        attempts: u32::try_from(attempts).map_err(|_| OutboxError::Corrupt {
            id,
            column: "attempts",
        })?,
        created_at_ms: row.try_get("created_at")?,
    })
}

/// Records that the destination acknowledged message `id`; it is never due
/// again. Idempotent: marking a delivered message again keeps the first time.
pub async fn mark_delivered(db: &Db, id: MessageId, now_ms: i64) -> Result<(), OutboxError> {
    let updated =
        sqlx::query("UPDATE outbox SET delivered_at = $2 WHERE id = $1 AND delivered_at IS NULL")
            .bind(id.0)
            .bind(now_ms)
            .execute(db.pool())
            .await?;
    if updated.rows_affected() == 1 {
        return Ok(());
    }
    let exists = sqlx::query("SELECT id FROM outbox WHERE id = $1")
        .bind(id.0)
        .fetch_optional(db.pool())
        .await?;
    match exists {
        Some(_) => Ok(()),
        None => Err(OutboxError::NotFound(id)),
    }
}

/// Most ids [`mark_delivered_all`] puts in one statement.
pub const MARK_IDS_MAX: usize = 512;

/// [`mark_delivered`] for every message of `ids` in one transaction (one
/// statement per [`MARK_IDS_MAX`] ids): what a delivery run that sent many
/// messages records, for one commit rather than one each. Returns how many
/// were newly marked; an id already delivered keeps its first time, and an
/// unknown id (pruned since) is passed over.
pub async fn mark_delivered_all(
    db: &Db,
    ids: &[MessageId],
    now_ms: i64,
) -> Result<u64, OutboxError> {
    if ids.is_empty() {
        return Ok(0);
    }
    db.with_retry(move |tx| {
        Box::pin(async move {
            let mut marked = 0;
            for chunk in ids.chunks(MARK_IDS_MAX) {
                let placeholders = (0..chunk.len())
                    .map(|i| format!("${}", i + 2))
                    .collect::<Vec<_>>()
                    .join(", ");
                // Only numbered placeholders are formatted into the text.
                let sql = format!(
                    "UPDATE outbox SET delivered_at = $1
                     WHERE delivered_at IS NULL AND id IN ({placeholders})"
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now_ms);
                for id in chunk {
                    query = query.bind(id.0);
                }
                marked += query.execute(&mut **tx).await?.rows_affected();
            }
            Ok::<_, OutboxError>(marked)
        })
    })
    .await
}

/// Records a failed attempt at message `id` at `now_ms`: one more attempt,
/// due again after [`backoff_ms`]`(attempts)`.
pub async fn mark_failed(db: &Db, id: MessageId, now_ms: i64) -> Result<Retry, OutboxError> {
    db.with_retry(move |tx| {
        Box::pin(async move {
            let row = sqlx::query("SELECT attempts, delivered_at FROM outbox WHERE id = $1")
                .bind(id.0)
                .fetch_optional(&mut **tx)
                .await?
                .ok_or(OutboxError::NotFound(id))?;
            let delivered_at: Option<i64> = row.try_get("delivered_at")?;
            if delivered_at.is_some() {
                return Ok(Retry::AlreadyDelivered);
            }
            let attempts: i64 = row.try_get("attempts")?;
            let attempts = u32::try_from(attempts)
                .ok()
                .and_then(|a| a.checked_add(1))
                .ok_or(OutboxError::Corrupt {
                    id,
                    column: "attempts",
                })?;
            let next_attempt_at_ms = now_ms.saturating_add(backoff_ms(attempts));
            sqlx::query("UPDATE outbox SET attempts = $2, next_attempt_at = $3 WHERE id = $1")
                .bind(id.0)
                .bind(i64::from(attempts))
                .bind(next_attempt_at_ms)
                .execute(&mut **tx)
                .await?;
            Ok(Retry::Scheduled {
                attempts,
                next_attempt_at_ms,
            })
        })
    })
    .await
}

/// Number of messages not yet delivered (for a metrics gauge).
pub async fn pending_count(db: &Db) -> Result<i64, OutboxError> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE delivered_at IS NULL")
        .fetch_one(db.pool())
        .await?;
    Ok(row.try_get("n")?)
}

/// Deletes messages delivered before `delivered_before_ms`; returns how many.
pub async fn prune_delivered(db: &Db, delivered_before_ms: i64) -> Result<u64, OutboxError> {
    let deleted =
        sqlx::query("DELETE FROM outbox WHERE delivered_at IS NOT NULL AND delivered_at < $1")
            .bind(delivered_before_ms)
            .execute(db.pool())
            .await?;
    Ok(deleted.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_first_and_stops_at_max() {
        assert_eq!(backoff_ms(0), RETRY_FIRST_MS);
        assert_eq!(backoff_ms(1), RETRY_FIRST_MS);
        assert_eq!(backoff_ms(2), 2 * RETRY_FIRST_MS);
        assert_eq!(backoff_ms(3), 4 * RETRY_FIRST_MS);
        // The first doubling that would pass the cap is capped ...
        let mut failures = 1;
        while backoff_ms(failures) < RETRY_INTERVAL_MAX_MS {
            assert_eq!(
                backoff_ms(failures + 1),
                (2 * backoff_ms(failures)).min(RETRY_INTERVAL_MAX_MS)
            );
            failures += 1;
        }
        assert_eq!(backoff_ms(failures), RETRY_INTERVAL_MAX_MS);
        // ... and so is everything after, up to the largest count.
        for f in [failures + 1, 40, 64, 1_000, u32::MAX] {
            assert_eq!(backoff_ms(f), RETRY_INTERVAL_MAX_MS, "{f}");
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("kind", &"k".repeat(NAME_LEN_MAX)).is_ok());
        assert!(check_name("kind", &"k".repeat(NAME_LEN_MAX + 1)).is_err());
        assert!(check_name("kind", "").is_err());
        assert!(check_name("kind", "a\0").is_err());
    }
}
