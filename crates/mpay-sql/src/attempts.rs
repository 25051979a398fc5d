//! Numbered attempts of a request that waits for money.
//!
//! A bank keeps a refusal as its key's answer (DESIGN §3.2), so a copy of
//! a refused request can never succeed later. A caller that waits for money
//! (a refund leg, a micropayment return, a net settlement, a payout) asks
//! under the key of its current attempt and moves to the next attempt
//! ([`advance`]) only once a refusal came back. At most one attempt
//! succeeds: every earlier one was answered with a refusal the bank keeps.
//! (The key of an attempt is the caller's to make, e.g.
//! `mpay_processor::saga::attempt_key`.)
//!
//! ```no_run
//! # async fn f(db: &mpay_sql::Db) -> Result<(), mpay_sql::DbError> {
//! use mpay_sql::attempts;
//! let attempt = attempts::current(db, "refund-ab-cd").await?;
//! // … the bank refused this attempt's key for want of funds:
//! attempts::advance(db, "refund-ab-cd", attempt).await?;
//! # Ok(())
//! # }
//! ```

use sqlx::Row;

use crate::Db;
use crate::db::DbError;

/// The attempt `base` is on (0 before any refusal).
pub async fn current(db: &Db, base: &str) -> Result<u32, DbError> {
    let row = sqlx::query("SELECT attempt FROM attempts WHERE base = $1")
        .bind(base)
        .fetch_optional(db.pool())
        .await?;
    let Some(row) = row else {
        return Ok(0);
    };
    let attempt: i64 = row.try_get("attempt")?;
    u32::try_from(attempt).map_err(|_| {
        DbError::Sqlx(sqlx::Error::Decode(
            format!("attempt {attempt} of `{base}` is out of range").into(),
        ))
    })
}

/// Moves `base` past `refused`, the attempt the bank refused. Idempotent,
/// and a no-op when another driver moved it already: a later attempt is
/// never taken back.
pub async fn advance(db: &Db, base: &str, refused: u32) -> Result<(), DbError> {
    let next = i64::from(refused) + 1;
    db.with_retry(move |tx| {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO attempts (base, attempt) VALUES ($1, 0) ON CONFLICT (base) DO NOTHING",
            )
            .bind(base)
            .execute(&mut **tx)
            .await?;
            sqlx::query("UPDATE attempts SET attempt = $2 WHERE base = $1 AND attempt < $2")
                .bind(base)
                .bind(next)
                .execute(&mut **tx)
                .await?;
            Ok::<_, DbError>(())
        })
    })
    .await
}
