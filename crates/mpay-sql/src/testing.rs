//! Test support: run one store test on both backends (feature `testing`;
//! enable it in `[dev-dependencies]` only).
//!
//! ```no_run
//! #[tokio::test]
//! async fn balances_add_up() {
//!     mpay_sql::testing::for_each_backend(|db| async move {
//!         db.migrate(&[mpay_sql::MIGRATIONS]).await.unwrap();
//!         // ... the test, against `db` ...
//!     })
//!     .await;
//! }
//! ```
//!
//! SQLite: a fresh file in a new temporary directory. PostgreSQL: a fresh
//! database `mpay_test_<unique>` created on the server named by
//! [`POSTGRES_URL_ENV`] (default [`POSTGRES_URL_DEFAULT`]) and dropped
//! afterwards (best effort). If that server cannot be reached, the test fails
//! when the environment has `CI` set, and otherwise prints
//! `SKIPPED POSTGRES: <reason>` to stderr and runs on SQLite only.

use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::{AnyConnection, AssertSqlSafe, Connection};

use crate::db::{Backend, Db, DbError};

/// Environment variable naming the PostgreSQL server for tests (a URL whose
/// user may create databases).
pub const POSTGRES_URL_ENV: &str = "MPAY_TEST_POSTGRES_URL";
/// The server tests use when [`POSTGRES_URL_ENV`] is unset.
pub const POSTGRES_URL_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/test";
/// How long a test waits for the PostgreSQL server before calling it unreachable.
pub const POSTGRES_CONNECT_TIMEOUT_MS: u64 = 5_000;

/// A database made for one test; [`TestDb::cleanup`] removes it.
#[derive(Debug)]
pub struct TestDb {
    db: Db,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Sqlite(tempfile::TempDir),
    Postgres { admin_url: String, database: String },
}

impl TestDb {
    /// The handle (clone it freely).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Closes the pool and deletes the database (best effort: a failure to
    /// drop a PostgreSQL database is printed, not raised).
    pub async fn cleanup(self) {
        self.db.close().await;
        match self.cleanup {
            Cleanup::Sqlite(dir) => drop(dir),
            Cleanup::Postgres {
                admin_url,
                database,
            } => {
                let dropped = async {
                    let mut admin = admin_connect(&admin_url).await?;
                    sqlx::query(AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
                    )))
                    .execute(&mut admin)
                    .await?;
                    admin.close().await
                }
                .await;
                if let Err(error) = dropped {
                    eprintln!("could not drop test database {database}: {error}");
                }
            }
        }
    }
}

/// A fresh, empty SQLite database in a new temporary directory.
pub async fn sqlite() -> Result<TestDb, DbError> {
    let dir = tempfile::tempdir().map_err(|e| DbError::Sqlx(sqlx::Error::Io(e)))?;
    let path = dir.path().join("test.db");
    let db = Db::connect(&format!("sqlite://{}", path.display())).await?;
    Ok(TestDb {
        db,
        cleanup: Cleanup::Sqlite(dir),
    })
}

/// A fresh, empty PostgreSQL database on the test server. `Err` says why the
/// server could not be used.
pub async fn postgres() -> Result<TestDb, String> {
    let admin_url =
        std::env::var(POSTGRES_URL_ENV).unwrap_or_else(|_| POSTGRES_URL_DEFAULT.to_owned());
    let database = unique_database_name();
    let mut admin = admin_connect(&admin_url)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", redact(&admin_url)))?;
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .execute(&mut admin)
        .await
        .map_err(|e| format!("cannot create database {database}: {e}"))?;
    let _ = admin.close().await;
    let url = with_database(&admin_url, &database);
    let db = Db::connect(&url)
        .await
        .map_err(|e| format!("cannot connect to new database {database}: {e}"))?;
    Ok(TestDb {
        db,
        cleanup: Cleanup::Postgres {
            admin_url,
            database,
        },
    })
}

/// Runs `test` on a fresh SQLite database, then on a fresh PostgreSQL
/// database (see the module docs for when PostgreSQL is skipped). A panic in
/// `test` fails the test after the database is cleaned up, and the message
/// names the backend.
pub async fn for_each_backend<F, Fut>(test: F)
where
    F: Fn(Db) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let sqlite = match sqlite().await {
        Ok(db) => db,
        Err(error) => panic!("cannot open a SQLite test database: {error}"),
    };
    run(sqlite, &test).await;
    match postgres().await {
        Ok(db) => run(db, &test).await,
        Err(reason) if std::env::var_os("CI").is_some() => panic!(
            "POSTGRES UNAVAILABLE (CI is set, so this fails instead of skipping): {reason}. \
             Start PostgreSQL or point {POSTGRES_URL_ENV} at a server."
        ),
        Err(reason) => {
            // Straight to the process's stderr: the test harness captures
            // `eprintln!`, and a skip must be seen even when the test passes.
            let _ = writeln!(std::io::stderr(), "SKIPPED POSTGRES: {reason}");
        }
    }
}

async fn run<F, Fut>(test_db: TestDb, test: &F)
where
    F: Fn(Db) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let backend = test_db.db().backend();
    let outcome = tokio::spawn(test(test_db.db().clone())).await;
    test_db.cleanup().await;
    if let Err(error) = outcome {
        eprintln!("store test failed on {backend}");
        match error.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(error) => panic!("store test on {backend} did not finish: {error}"),
        }
    }
}

async fn admin_connect(url: &str) -> Result<AnyConnection, sqlx::Error> {
    sqlx::any::install_default_drivers();
    if Backend::from_url(url).ok() != Some(Backend::Postgres) {
        return Err(sqlx::Error::Configuration(
            format!("{POSTGRES_URL_ENV} must be a postgres:// URL").into(),
        ));
    }
    match tokio::time::timeout(
        Duration::from_millis(POSTGRES_CONNECT_TIMEOUT_MS),
        AnyConnection::connect(url),
    )
    .await
    {
        Ok(connected) => connected,
        Err(_) => Err(sqlx::Error::PoolTimedOut),
    }
}

fn unique_database_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    #[allow(clippy::disallowed_methods)] // a name, not a decision
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "mpay_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// `postgres://u@h:5432/test?x=y` with database `d` → `postgres://u@h:5432/d?x=y`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{host_part}/{database}?{query}"),
        None => format!("{host_part}/{database}"),
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[authority_start..];
    match (rest.find('@'), rest.find(':')) {
        (Some(at), Some(colon)) if colon < at => {
            format!(
                "{}{}:***{}",
                &url[..authority_start],
                &rest[..colon],
                &rest[at..]
            )
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_is_replaced_in_the_url() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "d"),
            "postgres://postgres@127.0.0.1:5432/d"
        );
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=disable", "d"),
            "postgres://u:p@h/d?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "d"), "postgres://h:1/d");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h:5432/db"), "postgres://u@h:5432/db");
    }

    #[test]
    fn names_are_unique_identifiers() {
        let a = unique_database_name();
        let b = unique_database_name();
        assert_ne!(a, b);
        assert!(a.len() < 63);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        );
    }
}
