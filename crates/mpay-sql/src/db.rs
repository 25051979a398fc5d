//! The database handle: one pool over either backend, transactions, and the
//! bounded retry of transactions that lost a race.

use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::error::ErrorKind;
use sqlx::postgres::PgDatabaseError;
use sqlx::sqlite::SqliteError;
use sqlx::{Any, AnyConnection, AnyPool, AssertSqlSafe, Connection, Row};

/// A transaction on either backend. Run statements on it with
/// `sqlx::query("… $1 …").bind(x).execute(&mut **tx)` (or `&mut *tx` when you
/// own the `Tx`); it commits only through [`Db::with_retry`] or an explicit
/// `tx.commit()`, and rolls back when dropped. Store functions take
/// `tx: &mut Tx<'_>` so they work both on [`Db::begin`]'s `Tx<'static>` and
/// inside [`Db::with_retry`].
pub type Tx<'c> = sqlx::Transaction<'c, Any>;

/// The future a [`Db::with_retry`] closure returns: `Box::pin(async move { … })`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How long a SQLite connection waits for another connection's write lock
/// before it gives up with `SQLITE_BUSY` (which [`Db::with_retry`] retries).
pub const SQLITE_BUSY_TIMEOUT_MS: u64 = 5_000;
/// Pool size for SQLite: one writer at a time anyway; the rest serve readers.
pub const SQLITE_POOL_CONNECTIONS_MAX: u32 = 8;
/// Default pool size for PostgreSQL, per service instance.
pub const POSTGRES_POOL_CONNECTIONS_MAX: u32 = 16;
/// How long a caller waits for a free pooled connection.
pub const ACQUIRE_TIMEOUT_MS: u64 = 10_000;

/// How many times [`Db::with_retry`] runs a transaction in all (the first try
/// included) before it returns the last retryable error.
pub const TX_ATTEMPTS_MAX: u32 = 10;
/// Backoff before the second attempt; it doubles per attempt (with jitter).
pub const TX_RETRY_BACKOFF_FIRST_MS: u64 = 2;
/// Cap on the backoff between two attempts.
pub const TX_RETRY_BACKOFF_MAX_MS: u64 = 200;

/// Which database a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Embedded SQLite file (the default for one-machine runs and tests).
    Sqlite,
    /// PostgreSQL server (production).
    Postgres,
}

impl Backend {
    /// The backend a connection URL names: `sqlite:` or `postgres:`/`postgresql:`.
    pub fn from_url(url: &str) -> Result<Backend, DbError> {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        match scheme {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            other => Err(DbError::UnsupportedUrl {
                scheme: other.to_owned(),
            }),
        }
    }

    /// A short lowercase name (`sqlite`, `postgres`).
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Errors of the database layer itself. Never the client's fault: either the
/// configuration (URL) or the database server / file.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL is neither `sqlite:` nor `postgres:`. Only the scheme is shown:
    /// the rest of a URL may hold a password.
    #[error("unsupported database URL scheme `{scheme}` (expected sqlite:// or postgres://)")]
    UnsupportedUrl {
        /// The scheme found.
        scheme: String,
    },
    /// `sqlite::memory:` or `mode=memory`: every pooled connection would see
    /// its own empty database. Use a file (tests use a temporary directory).
    #[error("in-memory SQLite is not supported: each pooled connection would get its own database")]
    InMemorySqlite,
    /// SQLite refused WAL mode (e.g. a file system without shared memory).
    #[error("SQLite did not switch to WAL journal mode (it reports `{mode}`)")]
    NotWal {
        /// The journal mode SQLite reported.
        mode: String,
    },
    /// An error from the driver or the database. Transparent: sqlx's own
    /// text already says where it failed, and every caller frames it.
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
}

/// Errors that a transaction may hit merely because it raced another one and
/// that go away when the whole transaction runs again.
pub trait Retryable {
    /// True for PostgreSQL serialization failures and deadlocks and for
    /// SQLite `BUSY`/`LOCKED`.
    fn is_retryable(&self) -> bool;
}

impl Retryable for sqlx::Error {
    fn is_retryable(&self) -> bool {
        let sqlx::Error::Database(error) = self else {
            return false;
        };
        if let Some(pg) = error.try_downcast_ref::<PgDatabaseError>() {
            // serialization_failure, deadlock_detected
            return matches!(pg.code(), "40001" | "40P01");
        }
        if error.try_downcast_ref::<SqliteError>().is_some() {
            // Extended result codes; the primary code is the low byte.
            // SQLITE_BUSY = 5 (incl. BUSY_SNAPSHOT), SQLITE_LOCKED = 6.
            return error
                .code()
                .and_then(|code| code.parse::<i32>().ok())
                .is_some_and(|code| matches!(code & 0xff, 5 | 6));
        }
        false
    }
}

impl DbError {
    /// True when the database is only busy, not broken: a transaction that
    /// lost a race (still [retryable](Retryable) after every attempt of
    /// [`Db::with_retry`]) or no pooled connection free within
    /// [`ACQUIRE_TIMEOUT_MS`]. The same request later may well succeed, so a
    /// service answers it with "busy, retry", not "internal error".
    pub fn is_busy(&self) -> bool {
        self.is_retryable() || matches!(self, DbError::Sqlx(sqlx::Error::PoolTimedOut))
    }
}

impl Retryable for DbError {
    fn is_retryable(&self) -> bool {
        match self {
            DbError::Sqlx(error) => error.is_retryable(),
            DbError::UnsupportedUrl { .. } | DbError::InMemorySqlite | DbError::NotWal { .. } => {
                false
            }
        }
    }
}

/// True if `error` is a unique or primary-key violation on either backend.
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.kind() == ErrorKind::UniqueViolation)
}

/// Pool settings; `None` takes the backend's default.
#[derive(Debug, Clone, Default)]
pub struct DbOptions {
    /// Pool size ([`SQLITE_POOL_CONNECTIONS_MAX`] / [`POSTGRES_POOL_CONNECTIONS_MAX`]).
    pub max_connections: Option<u32>,
    /// Wait for a pooled connection ([`ACQUIRE_TIMEOUT_MS`]).
    pub acquire_timeout_ms: Option<u64>,
    /// SQLite's busy timeout ([`SQLITE_BUSY_TIMEOUT_MS`]); ignored for PostgreSQL.
    pub sqlite_busy_timeout_ms: Option<u64>,
}

/// A cloneable handle on a pool of connections to one database, SQLite or
/// PostgreSQL. Cloning is cheap and shares the pool.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

impl Db {
    /// Opens `sqlite://path/to/file.db` (created if missing; WAL,
    /// `synchronous=FULL`, foreign keys on, busy timeout) or
    /// `postgres://user@host:port/database`, with the default [`DbOptions`].
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        Db::connect_with(url, &DbOptions::default()).await
    }

    /// [`Db::connect`] with explicit pool settings.
    pub async fn connect_with(url: &str, options: &DbOptions) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let acquire_timeout =
            Duration::from_millis(options.acquire_timeout_ms.unwrap_or(ACQUIRE_TIMEOUT_MS));
        let pool = match backend {
            Backend::Sqlite => {
                let url = sqlite_url(url)?;
                let busy_timeout_ms = options
                    .sqlite_busy_timeout_ms
                    .unwrap_or(SQLITE_BUSY_TIMEOUT_MS);
                let connect_options = AnyConnectOptions::from_str(&url)?;
                // WAL is a property of the file: switch once, before the pool
                // opens several connections that could race for it.
                let mut first = AnyConnection::connect_with(&connect_options).await?;
                let mode: String = sqlx::query("PRAGMA journal_mode = WAL")
                    .fetch_one(&mut first)
                    .await?
                    .try_get(0)?;
                first.close().await?;
                if !mode.eq_ignore_ascii_case("wal") {
                    return Err(DbError::NotWal { mode });
                }
                AnyPoolOptions::new()
                    .max_connections(
                        options
                            .max_connections
                            .unwrap_or(SQLITE_POOL_CONNECTIONS_MAX),
                    )
                    .acquire_timeout(acquire_timeout)
                    .after_connect(move |conn, _meta| {
                        Box::pin(
                            async move { sqlite_connection_setup(conn, busy_timeout_ms).await },
                        )
                    })
                    .connect_with(connect_options)
                    .await?
            }
            Backend::Postgres => {
                let connect_options = AnyConnectOptions::from_str(url)?;
                AnyPoolOptions::new()
                    .max_connections(
                        options
                            .max_connections
                            .unwrap_or(POSTGRES_POOL_CONNECTIONS_MAX),
                    )
                    .acquire_timeout(acquire_timeout)
                    .connect_with(connect_options)
                    .await?
            }
        };
        Ok(Db { pool, backend })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for single statements outside a transaction (each one
    /// commits on its own) and for plain reads.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a read-write transaction that cannot interleave with another
    /// writer's read-modify-write: `BEGIN IMMEDIATE` on SQLite (takes the
    /// write lock now, waiting up to the busy timeout), `SERIALIZABLE` on
    /// PostgreSQL (may fail with a serialization error at any statement or at
    /// commit). Prefer [`Db::with_retry`], which retries those failures.
    pub async fn begin(&self) -> Result<Tx<'static>, DbError> {
        let statement = match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN ISOLATION LEVEL SERIALIZABLE",
        };
        Ok(self.pool.begin_with(statement).await?)
    }

    /// Starts a transaction for consistent reads only: a deferred `BEGIN` on
    /// SQLite (a WAL snapshot at the first read, takes no write lock),
    /// `REPEATABLE READ READ ONLY` on PostgreSQL. Writes in it fail.
    pub async fn begin_read(&self) -> Result<Tx<'static>, DbError> {
        let statement = match self.backend {
            Backend::Sqlite => "BEGIN DEFERRED",
            Backend::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        };
        Ok(self.pool.begin_with(statement).await?)
    }

    /// Runs `work` in a transaction from [`Db::begin`] and commits it. If
    /// `work` or the commit fails with a [retryable](Retryable) error (lost a
    /// serialization race, SQLite busy), the transaction is rolled back and
    /// run again, at most [`TX_ATTEMPTS_MAX`] times in all, with exponential
    /// backoff from [`TX_RETRY_BACKOFF_FIRST_MS`] up to
    /// [`TX_RETRY_BACKOFF_MAX_MS`]. Any other error rolls back and returns.
    ///
    /// `work` may run several times: it must touch nothing but the
    /// transaction (no messages sent, no in-memory state changed) — that is
    /// what the outbox is for. It borrows what it needs (`move` copies the
    /// references in) and returns a boxed future, the same shape as sqlx's
    /// `Connection::transaction`:
    ///
    /// ```no_run
    /// # async fn f(db: &mpay_sql::Db, account: &[u8]) -> Result<i64, mpay_sql::DbError> {
    /// use mpay_sql::sqlx::{self, Row};
    /// db.with_retry(move |tx| Box::pin(async move {
    ///     let row = sqlx::query("SELECT balance FROM accounts WHERE id = $1")
    ///         .bind(account)
    ///         .fetch_one(&mut **tx)
    ///         .await?;
    ///     Ok(row.try_get::<i64, _>("balance")?)
    /// }))
    /// .await
    /// # }
    /// ```
    ///
    /// (A boxed future rather than an `async` closure: the future of an
    /// `AsyncFnMut` taking `&mut Tx` cannot yet be proven `Send`, which
    /// `tokio::spawn` and axum handlers need.)
    pub async fn with_retry<'env, T, E, F>(&self, mut work: F) -> Result<T, E>
    where
        F: for<'c> FnMut(&'c mut Tx<'env>) -> BoxFuture<'c, Result<T, E>>,
        E: From<DbError> + Retryable,
    {
        let mut attempt: u32 = 1;
        loop {
            let outcome = match self.begin().await {
                Err(error) => Err(E::from(error)),
                Ok(tx) => {
                    // Shorten the transaction's lifetime to the caller's
                    // borrows, so `work` may capture references.
                    let mut tx: Tx<'env> = tx;
                    match work(&mut tx).await {
                        Ok(value) => tx
                            .commit()
                            .await
                            .map(|()| value)
                            .map_err(|error| E::from(DbError::from(error))),
                        Err(error) => {
                            // The error that made us roll back is the one to
                            // report; a failed rollback closes the connection.
                            let _ = tx.rollback().await;
                            Err(error)
                        }
                    }
                }
            };
            match outcome {
                Err(error) if error.is_retryable() && attempt < TX_ATTEMPTS_MAX => {
                    tokio::time::sleep(retry_backoff(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Closes every pooled connection (waits for those in use to return).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Per-connection SQLite settings (WAL itself was set on the file at connect).
async fn sqlite_connection_setup(
    conn: &mut AnyConnection,
    busy_timeout_ms: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(AssertSqlSafe(format!(
        "PRAGMA busy_timeout = {busy_timeout_ms}"
    )))
    .execute(&mut *conn)
    .await?;
    sqlx::query("PRAGMA synchronous = FULL")
        .execute(&mut *conn)
        .await?;
    sqlx::query("PRAGMA foreign_keys = ON")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Normalizes a SQLite URL: refuses in-memory databases and adds
/// `mode=rwc` (create if missing) unless the URL names a mode.
fn sqlite_url(url: &str) -> Result<String, DbError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, params) = rest.split_once('?').unwrap_or((rest, ""));
    let has_mode = params.split('&').any(|p| p.starts_with("mode="));
    if path.is_empty() || path == ":memory:" || params.split('&').any(|p| p == "mode=memory") {
        return Err(DbError::InMemorySqlite);
    }
    Ok(match (params.is_empty(), has_mode) {
        (_, true) => url.to_owned(),
        (true, false) => format!("{url}?mode=rwc"),
        (false, false) => format!("{url}&mode=rwc"),
    })
}

/// Backoff before attempt `attempt + 1`: `first · 2^(attempt-1)`, capped,
/// then jittered into its upper half so that two losers of one race do not
/// collide again in lockstep.
fn retry_backoff(attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    let ceiling_ms = TX_RETRY_BACKOFF_FIRST_MS
        .saturating_mul(1u64 << doublings)
        .min(TX_RETRY_BACKOFF_MAX_MS);
    // Jitter from std's per-instance random hash keys; not for secrets.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let half = ceiling_ms / 2;
    let jitter = random % (ceiling_ms - half + 1);
    Duration::from_millis(half + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_driver_error_is_not_framed_twice() {
        // Callers frame a DbError ("database: …"); sqlx's text already says
        // what failed, so the variant adds nothing of its own.
        let text = DbError::from(sqlx::Error::RowNotFound).to_string();
        assert_eq!(text, sqlx::Error::RowNotFound.to_string());
        assert!(!text.starts_with("database"), "{text}");
    }

    #[test]
    fn backend_from_url() {
        assert_eq!(
            Backend::from_url("sqlite://a.db").ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(Backend::from_url("sqlite:a.db").ok(), Some(Backend::Sqlite));
        assert_eq!(
            Backend::from_url("postgres://u@h/d").ok(),
            Some(Backend::Postgres)
        );
        assert_eq!(
            Backend::from_url("postgresql://u@h/d").ok(),
            Some(Backend::Postgres)
        );
        let err = Backend::from_url("mysql://root:secret@h/d").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn sqlite_url_adds_create_mode_and_refuses_memory() {
        assert_eq!(
            sqlite_url("sqlite://a/b.db").unwrap(),
            "sqlite://a/b.db?mode=rwc"
        );
        assert_eq!(
            sqlite_url("sqlite:///tmp/b.db?cache=private").unwrap(),
            "sqlite:///tmp/b.db?cache=private&mode=rwc"
        );
        assert_eq!(
            sqlite_url("sqlite://b.db?mode=ro").unwrap(),
            "sqlite://b.db?mode=ro"
        );
        assert!(matches!(
            sqlite_url("sqlite::memory:"),
            Err(DbError::InMemorySqlite)
        ));
        assert!(matches!(
            sqlite_url("sqlite://:memory:"),
            Err(DbError::InMemorySqlite)
        ));
        assert!(matches!(
            sqlite_url("sqlite://x?mode=memory"),
            Err(DbError::InMemorySqlite)
        ));
    }

    #[test]
    fn retry_backoff_stays_within_its_bounds() {
        for attempt in 1..=TX_ATTEMPTS_MAX + 40 {
            let ms = u64::try_from(retry_backoff(attempt).as_millis()).unwrap();
            assert!(ms <= TX_RETRY_BACKOFF_MAX_MS, "attempt {attempt}: {ms}");
            assert!(
                ms >= TX_RETRY_BACKOFF_FIRST_MS / 2,
                "attempt {attempt}: {ms}"
            );
        }
        // Late attempts sit in the upper half of the cap.
        let late = u64::try_from(retry_backoff(30).as_millis()).unwrap();
        assert!(late >= TX_RETRY_BACKOFF_MAX_MS / 2);
    }
}
