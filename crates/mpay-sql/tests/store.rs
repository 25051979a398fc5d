//! Every store test runs on SQLite and on PostgreSQL
//! (`mpay_sql::testing::for_each_backend`).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mpay_sql::idempotency::{self, IdempotencyError};
use mpay_sql::outbox::{self, MessageId, NewMessage, OutboxError, Retry};
use mpay_sql::sqlx::{self, Row};
use mpay_sql::testing::for_each_backend;
use mpay_sql::{
    Backend, Db, DbError, DbOptions, MIGRATIONS, MigrateError, Migrations, Retryable,
    TX_ATTEMPTS_MAX,
};

async fn migrated(db: &Db) {
    db.migrate(&[MIGRATIONS]).await.unwrap();
}

async fn count(db: &Db, sql: &'static str) -> i64 {
    sqlx::query(sql)
        .fetch_one(db.pool())
        .await
        .unwrap()
        .try_get::<i64, _>(0)
        .unwrap()
}

// ---------------------------------------------------------------- types

/// The claim lease the outbox tests use (a 5 s send timeout's).
const LEASE: i64 = 7_000;

const TYPES: Migrations = Migrations::new(
    "types_test",
    &[(
        "0001_values",
        "CREATE TABLE vals (
            id {serial_pk},
            amount BIGINT,
            at BIGINT NOT NULL,
            bytes {blob},
            label TEXT
        )",
    )],
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn types_round_trip_exactly() {
    for_each_backend(|db| async move {
        db.migrate(&[TYPES]).await.unwrap();
        let amounts = [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX];
        let blob_64k: Vec<u8> = (0..=u8::MAX).cycle().take(64 * 1024).collect();
        let blobs: [Vec<u8>; 4] = [Vec::new(), vec![0], vec![0, 0xff, 0, 0x80], blob_64k];
        let texts = [
            "",
            "plain ascii",
            "Grüße aus Zürich, Ελληνικά, русский",
            "日本語のテキスト",
            "💶 🏦 emoji and e\u{301} combining",
            "quotes ' \" and back\\slash, tab\tnewline\n",
        ];
        let mut ids = Vec::new();
        let mut expected = Vec::new();
        for (i, amount) in amounts.iter().enumerate() {
            let bytes = &blobs[i % blobs.len()];
            let label = texts[i % texts.len()];
            let at_ms = 1_700_000_000_000 + i64::try_from(i).unwrap();
            let row = sqlx::query(
                "INSERT INTO vals (amount, at, bytes, label) VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(*amount)
            .bind(at_ms)
            .bind(bytes.as_slice())
            .bind(label)
            .fetch_one(db.pool())
            .await
            .unwrap();
            ids.push(row.try_get::<i64, _>("id").unwrap());
            expected.push((
                Some(*amount),
                at_ms,
                Some(bytes.clone()),
                Some(label.to_owned()),
            ));
        }
        // Every text and blob once more, and a row of NULLs.
        for (i, text) in texts.iter().enumerate() {
            let bytes = &blobs[i % blobs.len()];
            let row = sqlx::query(
                "INSERT INTO vals (amount, at, bytes, label) VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(None::<i64>)
            .bind(0_i64)
            .bind(bytes.clone())
            .bind(text.to_string())
            .fetch_one(db.pool())
            .await
            .unwrap();
            ids.push(row.try_get("id").unwrap());
            expected.push((None, 0, Some(bytes.clone()), Some(text.to_string())));
        }
        let row = sqlx::query(
            "INSERT INTO vals (amount, at, bytes, label) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(None::<i64>)
        .bind(-1_i64)
        .bind(None::<Vec<u8>>)
        .bind(None::<String>)
        .fetch_one(db.pool())
        .await
        .unwrap();
        ids.push(row.try_get("id").unwrap());
        expected.push((None, -1, None, None));

        // {serial_pk} hands out increasing ids.
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

        for (id, want) in ids.iter().zip(&expected) {
            let row = sqlx::query("SELECT amount, at, bytes, label FROM vals WHERE id = $1")
                .bind(*id)
                .fetch_one(db.pool())
                .await
                .unwrap();
            let got: (Option<i64>, i64, Option<Vec<u8>>, Option<String>) = (
                row.try_get("amount").unwrap(),
                row.try_get("at").unwrap(),
                row.try_get("bytes").unwrap(),
                row.try_get("label").unwrap(),
            );
            assert_eq!(&got, want, "row {id}");
        }

        // Extremes compare and sum exactly in SQL too; one `$n` used twice.
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM vals WHERE amount >= $1 AND amount <= $1 OR amount = $2",
        )
        .bind(i64::MAX)
        .bind(i64::MIN)
        .fetch_one(db.pool())
        .await
        .unwrap();
        assert_eq!(row.try_get::<i64, _>("n").unwrap(), 2);
        // SUM(BIGINT) is NUMERIC on PostgreSQL: the portable form casts back,
        // and an overflow is an error on both, never a wrapped or rounded sum.
        let sum = "SELECT CAST(SUM(amount) AS BIGINT) AS s FROM vals WHERE amount IN ($1, $2)";
        let row = sqlx::query(sum)
            .bind(i64::MAX)
            .bind(i64::MIN)
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(row.try_get::<i64, _>("s").unwrap(), -1);
        let overflow = sqlx::query(sum)
            .bind(i64::MAX)
            .bind(1_i64)
            .fetch_one(db.pool())
            .await;
        assert!(overflow.is_err(), "overflowing SUM must fail");
        let row =
            sqlx::query("SELECT CAST(SUM(amount) AS BIGINT) AS s FROM vals WHERE amount = $1")
                .bind(12345_i64)
                .fetch_one(db.pool())
                .await
                .unwrap();
        assert_eq!(
            row.try_get::<Option<i64>, _>("s").unwrap(),
            None,
            "SUM of no rows is NULL"
        );
    })
    .await;
}

// ----------------------------------------------------------- migrations

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_and_are_recorded() {
    for_each_backend(|db| async move {
        let applied = db.migrate(&[MIGRATIONS]).await.unwrap();
        let names: Vec<_> = applied
            .iter()
            .map(|m| (m.component, m.version, m.name))
            .collect();
        assert_eq!(
            names,
            [
                ("mpay_sql", 1, "0001_idempotency"),
                ("mpay_sql", 2, "0002_outbox"),
                ("mpay_sql", 3, "0003_idempotency_refusal"),
                ("mpay_sql", 4, "0004_attempts")
            ]
        );
        assert!(db.migrate(&[MIGRATIONS]).await.unwrap().is_empty());
        // A second set applies after the first, on its own version sequence.
        let applied = db.migrate(&[MIGRATIONS, TYPES]).await.unwrap();
        assert_eq!(applied.len(), 1);
        assert_eq!(applied[0].component, "types_test");

        let rows = sqlx::query(
            "SELECT component, version, name, checksum, applied_at FROM schema_migrations
             ORDER BY component, version",
        )
        .fetch_all(db.pool())
        .await
        .unwrap();
        let parsed = MIGRATIONS.parse().unwrap();
        assert_eq!(rows.len(), parsed.len() + 1, "ours and the test's one");
        for (row, migration) in rows.iter().zip(&parsed) {
            assert_eq!(row.try_get::<String, _>("name").unwrap(), migration.name);
            assert_eq!(
                row.try_get::<String, _>("checksum").unwrap(),
                migration.checksum
            );
            assert!(row.try_get::<i64, _>("applied_at").unwrap() > 0);
        }
        // The tables exist and are empty.
        assert_eq!(count(&db, "SELECT COUNT(*) FROM idempotency").await, 0);
        assert_eq!(count(&db, "SELECT COUNT(*) FROM outbox").await, 0);
    })
    .await;
}

const V1: Migrations = Migrations::new("svc", &[("0001_a", "CREATE TABLE a (x BIGINT)")]);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_refuse_a_changed_applied_migration() {
    for_each_backend(|db| async move {
        db.migrate(&[V1]).await.unwrap();
        const EDITED: Migrations = Migrations::new(
            "svc",
            &[
                ("0001_a", "CREATE TABLE a (x BIGINT, y BIGINT)"),
                ("0002_b", "CREATE TABLE b (x BIGINT)"),
            ],
        );
        let err = db.migrate(&[EDITED]).await.unwrap_err();
        assert!(
            matches!(err, MigrateError::ChecksumMismatch { name: "0001_a", .. }),
            "{err}"
        );
        // Nothing of the refused run was applied.
        let tables = sqlx::query("SELECT COUNT(*) FROM schema_migrations WHERE component = 'svc'")
            .fetch_one(db.pool())
            .await
            .unwrap()
            .try_get::<i64, _>(0)
            .unwrap();
        assert_eq!(tables, 1);
        assert!(
            sqlx::query("SELECT x FROM b")
                .fetch_all(db.pool())
                .await
                .is_err()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_refuse_a_newer_database_and_a_gap() {
    for_each_backend(|db| async move {
        const V13: Migrations = Migrations::new(
            "svc",
            &[
                ("0001_a", "CREATE TABLE a (x BIGINT)"),
                ("0003_c", "CREATE TABLE c (x BIGINT)"),
            ],
        );
        db.migrate(&[V13]).await.unwrap();
        let err = db.migrate(&[V1]).await.unwrap_err();
        assert!(
            matches!(
                err,
                MigrateError::DatabaseNewer {
                    component: "svc",
                    version: 3,
                    known_max: 1
                }
            ),
            "{err}"
        );
        const V123: Migrations = Migrations::new(
            "svc",
            &[
                ("0001_a", "CREATE TABLE a (x BIGINT)"),
                ("0002_b", "CREATE TABLE b (x BIGINT)"),
                ("0003_c", "CREATE TABLE c (x BIGINT)"),
            ],
        );
        let err = db.migrate(&[V123]).await.unwrap_err();
        assert!(
            matches!(
                err,
                MigrateError::OutOfOrder {
                    name: "0002_b",
                    applied_max: 3,
                    ..
                }
            ),
            "{err}"
        );
        const V34: Migrations = Migrations::new(
            "svc",
            &[
                ("0003_c", "CREATE TABLE c (x BIGINT)"),
                ("0004_d", "CREATE TABLE d (x BIGINT)"),
            ],
        );
        let err = db.migrate(&[V34]).await.unwrap_err();
        assert!(
            matches!(err, MigrateError::UnknownApplied { version: 1, .. }),
            "{err}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_migration_applies_nothing() {
    for_each_backend(|db| async move {
        const BROKEN: Migrations = Migrations::new(
            "svc",
            &[
                ("0001_a", "CREATE TABLE a (x BIGINT)"),
                (
                    "0002_b",
                    "CREATE TABLE b (x BIGINT); CREATE TABLE nonsense nonsense",
                ),
            ],
        );
        let err = db.migrate(&[MIGRATIONS, BROKEN]).await.unwrap_err();
        assert!(
            matches!(err, MigrateError::Failed { name: "0002_b", .. }),
            "{err}"
        );
        // One transaction: not even this crate's tables or `a` exist.
        for sql in [
            "SELECT x FROM a",
            "SELECT x FROM b",
            "SELECT key FROM idempotency",
        ] {
            let query = sqlx::query(sqlx::AssertSqlSafe(sql));
            assert!(query.fetch_all(db.pool()).await.is_err(), "{sql}");
        }
        // Even `schema_migrations` was rolled back with the rest.
        let recorded = sqlx::query("SELECT COUNT(*) FROM schema_migrations")
            .fetch_one(db.pool())
            .await;
        assert!(recorded.is_err(), "schema_migrations must not exist");
        db.migrate(&[MIGRATIONS, V1]).await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrators_apply_each_migration_once() {
    for_each_backend(|db| async move {
        let a = tokio::spawn({
            let db = db.clone();
            async move { db.migrate(&[MIGRATIONS, TYPES]).await.unwrap().len() }
        });
        let b = tokio::spawn({
            let db = db.clone();
            async move { db.migrate(&[MIGRATIONS, TYPES]).await.unwrap().len() }
        });
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        let all = MIGRATIONS.parse().unwrap().len() + 1;
        assert_eq!(a + b, all, "{a} + {b}");
        assert_eq!(
            count(&db, "SELECT COUNT(*) FROM schema_migrations").await,
            i64::try_from(all).unwrap()
        );
    })
    .await;
}

// --------------------------------------------------------- transactions

const COUNTER: Migrations = Migrations::new(
    "counter_test",
    &[(
        "0001_counter",
        "CREATE TABLE counter (id BIGINT PRIMARY KEY, value BIGINT NOT NULL);
         INSERT INTO counter (id, value) VALUES (1, 0);",
    )],
);

async fn counter_value(db: &Db) -> i64 {
    count(db, "SELECT value FROM counter WHERE id = 1").await
}

async fn add_to_counter(tx: &mut mpay_sql::Tx<'_>, delta: i64) -> Result<(), sqlx::Error> {
    let value: i64 = sqlx::query("SELECT value FROM counter WHERE id = 1")
        .fetch_one(&mut **tx)
        .await?
        .try_get("value")?;
    sqlx::query("UPDATE counter SET value = $1 WHERE id = 1")
        .bind(value + delta)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
enum TestError {
    #[error("refused by the test")]
    Refused { retryable: bool },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for TestError {
    fn from(error: sqlx::Error) -> Self {
        TestError::Db(error.into())
    }
}

impl Retryable for TestError {
    fn is_retryable(&self) -> bool {
        match self {
            TestError::Refused { retryable } => *retryable,
            TestError::Db(error) => error.is_retryable(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_rolls_back_on_error_and_on_drop() {
    for_each_backend(|db| async move {
        db.migrate(&[COUNTER]).await.unwrap();
        let result: Result<(), TestError> = db
            .with_retry(|tx| {
                Box::pin(async move {
                    add_to_counter(tx, 5).await?;
                    Err(TestError::Refused { retryable: false })
                })
            })
            .await;
        assert!(matches!(result, Err(TestError::Refused { .. })));
        assert_eq!(counter_value(&db).await, 0);

        let mut tx = db.begin().await.unwrap();
        add_to_counter(&mut tx, 7).await.unwrap();
        drop(tx);
        assert_eq!(counter_value(&db).await, 0);

        let mut tx = db.begin().await.unwrap();
        add_to_counter(&mut tx, 7).await.unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(counter_value(&db).await, 0);

        db.with_retry(|tx| Box::pin(async move { Ok::<_, DbError>(add_to_counter(tx, 3).await?) }))
            .await
            .unwrap();
        assert_eq!(counter_value(&db).await, 3);

        // A read transaction sees the commit and cannot write.
        let mut tx = db.begin_read().await.unwrap();
        let value: i64 = sqlx::query("SELECT value FROM counter WHERE id = 1")
            .fetch_one(&mut *tx)
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert_eq!(value, 3);
        if db.backend() == Backend::Postgres {
            assert!(add_to_counter(&mut tx, 1).await.is_err());
        }
        tx.rollback().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_retry_retries_only_retryable_errors_a_bounded_number_of_times() {
    for_each_backend(|db| async move {
        db.migrate(&[COUNTER]).await.unwrap();
        // Fails retryably three times, then succeeds: four attempts, one effect.
        let attempts = &AtomicU32::new(0);
        db.with_retry(move |tx| {
            Box::pin(async move {
                add_to_counter(tx, 1).await?;
                if attempts.fetch_add(1, Ordering::SeqCst) < 3 {
                    return Err(TestError::Refused { retryable: true });
                }
                Ok(())
            })
        })
        .await
        .unwrap();
        assert_eq!(attempts.load(Ordering::SeqCst), 4);
        assert_eq!(counter_value(&db).await, 1);

        // Always retryable: gives up after TX_ATTEMPTS_MAX attempts.
        let attempts = &AtomicU32::new(0);
        let result: Result<(), TestError> = db
            .with_retry(move |tx| {
                Box::pin(async move {
                    add_to_counter(tx, 1).await?;
                    attempts.fetch_add(1, Ordering::SeqCst);
                    Err(TestError::Refused { retryable: true })
                })
            })
            .await;
        assert!(matches!(
            result,
            Err(TestError::Refused { retryable: true })
        ));
        assert_eq!(attempts.load(Ordering::SeqCst), TX_ATTEMPTS_MAX);
        assert_eq!(counter_value(&db).await, 1);

        // Not retryable: one attempt.
        let attempts = &AtomicU32::new(0);
        let result: Result<(), TestError> = db
            .with_retry(move |_tx| {
                Box::pin(async move {
                    attempts.fetch_add(1, Ordering::SeqCst);
                    Err(TestError::Refused { retryable: false })
                })
            })
            .await;
        assert!(result.is_err());
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_read_modify_write_never_loses_an_update() {
    // Each task's losses are bounded by the others' commits (first updater
    // wins), here 6 < TX_ATTEMPTS_MAX, so no task can run out of attempts.
    const TASKS: i64 = 3;
    const INCREMENTS: i64 = 3;
    for_each_backend(|db| async move {
        db.migrate(&[COUNTER]).await.unwrap();
        let attempts = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..TASKS {
            let db = db.clone();
            let attempts = attempts.clone();
            tasks.push(tokio::spawn(async move {
                let attempts = &attempts;
                for _ in 0..INCREMENTS {
                    db.with_retry(move |tx| {
                        Box::pin(async move {
                            attempts.fetch_add(1, Ordering::SeqCst);
                            let value: i64 = sqlx::query("SELECT value FROM counter WHERE id = 1")
                                .fetch_one(&mut **tx)
                                .await?
                                .try_get("value")?;
                            // Give the other tasks time to read the same value.
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            sqlx::query("UPDATE counter SET value = $1 WHERE id = 1")
                                .bind(value + 1)
                                .execute(&mut **tx)
                                .await?;
                            Ok::<_, DbError>(())
                        })
                    })
                    .await
                    .unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(counter_value(&db).await, TASKS * INCREMENTS);
        eprintln!(
            "{}: {} attempts for {} increments",
            db.backend(),
            attempts.load(Ordering::SeqCst),
            TASKS * INCREMENTS
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_serialization_failures_are_retryable() {
    for_each_backend(|db| async move {
        if db.backend() != Backend::Postgres {
            return; // SQLite's writers never interleave; see sqlite_busy_is_retryable.
        }
        db.migrate(&[COUNTER]).await.unwrap();
        let mut first = db.begin().await.unwrap();
        let mut second = db.begin().await.unwrap();
        let read = "SELECT value FROM counter WHERE id = 1";
        sqlx::query(read).fetch_one(&mut *first).await.unwrap();
        sqlx::query(read).fetch_one(&mut *second).await.unwrap();
        add_to_counter(&mut first, 1).await.unwrap();
        first.commit().await.unwrap();
        let err = add_to_counter(&mut second, 1).await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert!(DbError::from(err).is_retryable());
        drop(second);
        assert_eq!(counter_value(&db).await, 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_busy_is_retryable() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("busy.db").display());
    let options = DbOptions {
        sqlite_busy_timeout_ms: Some(50),
        ..DbOptions::default()
    };
    let db = Db::connect_with(&url, &options).await.unwrap();
    db.migrate(&[COUNTER]).await.unwrap();
    let mut holder = db.begin().await.unwrap();
    add_to_counter(&mut holder, 1).await.unwrap();
    let err = db.begin().await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    // with_retry waits it out once the holder commits.
    let waiter = tokio::spawn({
        let db = db.clone();
        async move {
            db.with_retry(|tx| {
                Box::pin(async move { Ok::<_, DbError>(add_to_counter(tx, 10).await?) })
            })
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(80)).await;
    holder.commit().await.unwrap();
    waiter.await.unwrap().unwrap();
    assert_eq!(counter_value(&db).await, 11);
    db.close().await;
}

// --------------------------------------------------------- idempotency

const SCOPE: &str = "payments";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_repeat_returns_the_stored_response_and_a_changed_body_is_refused() {
    for_each_backend(|db| async move {
        migrated(&db).await;
        let hash = [7u8; 32];
        let mut tx = db.begin().await.unwrap();
        let claimed = idempotency::begin(&mut tx, SCOPE, "k1", &hash, 1_000)
            .await
            .unwrap();
        assert_eq!(claimed, None);
        idempotency::finish(&mut tx, SCOPE, "k1", b"response one")
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let mut tx = db.begin().await.unwrap();
        let stored = idempotency::begin(&mut tx, SCOPE, "k1", &hash, 9_999)
            .await
            .unwrap();
        let stored = stored.expect("the repeat finds the stored response");
        assert_eq!(stored.response, b"response one");
        assert_eq!(stored.created_at_ms, 1_000);

        let err = idempotency::begin(&mut tx, SCOPE, "k1", &[8u8; 32], 9_999)
            .await
            .unwrap_err();
        assert!(
            matches!(err, IdempotencyError::KeyReusedWithDifferentRequest { .. }),
            "{err}"
        );
        assert!(err.is_client_fault());
        assert!(!err.is_retryable());
        // The same key in another scope is another request; an empty response is kept as empty.
        assert_eq!(
            idempotency::begin(&mut tx, "refunds", "k1", &[8u8; 32], 9_999)
                .await
                .unwrap(),
            None
        );
        idempotency::finish(&mut tx, "refunds", "k1", b"")
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let mut tx = db.begin().await.unwrap();
        let stored = idempotency::begin(&mut tx, "refunds", "k1", &[8u8; 32], 0)
            .await
            .unwrap();
        assert_eq!(stored.map(|s| s.response), Some(Vec::new()));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keeps_a_refusal_as_the_keys_answer() {
    for_each_backend(|db| async move {
        migrated(&db).await;
        let hash = [3u8; 32];
        let mut tx = db.begin().await.unwrap();
        assert_eq!(
            idempotency::begin(&mut tx, SCOPE, "r1", &hash, 10)
                .await
                .unwrap(),
            None
        );
        idempotency::finish_refused(&mut tx, SCOPE, "r1", "insufficient_funds 5 9")
            .await
            .unwrap();
        // Once answered, the key cannot be answered again.
        assert!(matches!(
            idempotency::finish(&mut tx, SCOPE, "r1", b"late").await,
            Err(IdempotencyError::NotBegun { .. })
        ));
        tx.commit().await.unwrap();
        let mut tx = db.begin().await.unwrap();
        let stored = idempotency::begin(&mut tx, SCOPE, "r1", &hash, 20)
            .await
            .unwrap()
            .expect("the refusal is the key's answer");
        assert_eq!(stored.refusal.as_deref(), Some("insufficient_funds 5 9"));
        assert!(stored.response.is_empty());
        assert_eq!(stored.created_at_ms, 10);
        // A stored response carries no refusal.
        assert_eq!(
            idempotency::begin(&mut tx, SCOPE, "r2", &hash, 30)
                .await
                .unwrap(),
            None
        );
        idempotency::finish(&mut tx, SCOPE, "r2", b"ok")
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let mut tx = db.begin().await.unwrap();
        let stored = idempotency::begin(&mut tx, SCOPE, "r2", &hash, 40)
            .await
            .unwrap()
            .expect("stored");
        assert_eq!((stored.response, stored.refusal), (b"ok".to_vec(), None));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_rollback_forgets_the_key_and_misuse_is_refused() {
    for_each_backend(|db| async move {
        migrated(&db).await;
        let hash = [1u8; 32];
        let mut tx = db.begin().await.unwrap();
        assert_eq!(
            idempotency::begin(&mut tx, SCOPE, "k", &hash, 5)
                .await
                .unwrap(),
            None
        );
        idempotency::finish(&mut tx, SCOPE, "k", b"lost")
            .await
            .unwrap();
        tx.rollback().await.unwrap();

        // Rolled back: the key is free and nothing is stored.
        let mut tx = db.begin().await.unwrap();
        assert_eq!(
            idempotency::begin(&mut tx, SCOPE, "k", &hash, 6)
                .await
                .unwrap(),
            None
        );
        // Finishing twice, or a key never begun, is the caller's bug.
        idempotency::finish(&mut tx, SCOPE, "k", b"ok")
            .await
            .unwrap();
        let err = idempotency::finish(&mut tx, SCOPE, "k", b"again")
            .await
            .unwrap_err();
        assert!(matches!(err, IdempotencyError::NotBegun { .. }), "{err}");
        let err = idempotency::finish(&mut tx, SCOPE, "other", b"x")
            .await
            .unwrap_err();
        assert!(matches!(err, IdempotencyError::NotBegun { .. }), "{err}");
        // Begun and committed without finish: reported, not silently redone.
        assert_eq!(
            idempotency::begin(&mut tx, SCOPE, "half", &hash, 6)
                .await
                .unwrap(),
            None
        );
        tx.commit().await.unwrap();
        let mut tx = db.begin().await.unwrap();
        let err = idempotency::begin(&mut tx, SCOPE, "half", &hash, 7)
            .await
            .unwrap_err();
        assert!(matches!(err, IdempotencyError::Unfinished { .. }), "{err}");
        // Limits.
        let long_key = "k".repeat(idempotency::KEY_LEN_MAX + 1);
        let err = idempotency::begin(&mut tx, SCOPE, &long_key, &hash, 7)
            .await
            .unwrap_err();
        assert!(matches!(err, IdempotencyError::InvalidKey { .. }), "{err}");
        let err = idempotency::begin(&mut tx, SCOPE, "k2", &[0; 65], 7)
            .await
            .unwrap_err();
        assert!(matches!(err, IdempotencyError::InvalidKey { .. }), "{err}");
        drop(tx);

        // Pruning frees old keys.
        assert_eq!(idempotency::prune(&db, 6).await.unwrap(), 0);
        assert_eq!(idempotency::prune(&db, 7).await.unwrap(), 2);
        let mut tx = db.begin().await.unwrap();
        assert_eq!(
            idempotency::begin(&mut tx, SCOPE, "k", &[2u8; 32], 8)
                .await
                .unwrap(),
            None
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_concurrent_duplicates_do_the_work_once() {
    for_each_backend(|db| async move {
        migrated(&db).await;
        db.migrate(&[MIGRATIONS, COUNTER]).await.unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let attempts = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for task in 0..2u8 {
            let db = db.clone();
            let barrier = barrier.clone();
            let attempts = attempts.clone();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let attempts = &attempts;
                db.with_retry(move |tx| {
                    Box::pin(async move {
                        attempts.fetch_add(1, Ordering::SeqCst);
                        let hash = [9u8; 32];
                        if let Some(stored) =
                            idempotency::begin(tx, SCOPE, "dup", &hash, 100).await?
                        {
                            return Ok::<_, IdempotencyError>(stored.response);
                        }
                        add_to_counter(tx, 1).await?;
                        // Hold the claim while the duplicate arrives.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        let response = vec![task];
                        idempotency::finish(tx, SCOPE, "dup", &response).await?;
                        Ok(response)
                    })
                })
                .await
                .unwrap()
            }));
        }
        let mut responses = Vec::new();
        for task in tasks {
            responses.push(task.await.unwrap());
        }
        assert_eq!(
            responses[0], responses[1],
            "both callers get the first result"
        );
        assert_eq!(counter_value(&db).await, 1, "the work was done once");
        eprintln!(
            "{}: {} attempts for two duplicate requests",
            db.backend(),
            attempts.load(Ordering::SeqCst)
        );
    })
    .await;
}

// --------------------------------------------------------------- outbox

fn message<'a>(destination: &'a str, key: &'a str, payload: &'a [u8]) -> NewMessage<'a> {
    NewMessage {
        destination,
        kind: "credit",
        payload,
        idempotency_key: key,
    }
}

async fn enqueue_committed(db: &Db, msg: NewMessage<'_>, now_ms: i64) -> MessageId {
    let mut tx = db.begin().await.unwrap();
    let id = outbox::enqueue(&mut tx, &msg, now_ms).await.unwrap();
    tx.commit().await.unwrap();
    id
}

/// When message `id` was marked delivered, if it was.
async fn delivered_at(db: &Db, id: MessageId) -> Option<i64> {
    sqlx::query("SELECT delivered_at FROM outbox WHERE id = $1")
        .bind(id.0)
        .fetch_one(db.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_sends_committed_messages_until_delivered() {
    for_each_backend(|db| async move {
        migrated(&db).await;
        let t0 = 1_000_000;
        // Rolled back with its transaction: never sent.
        let mut tx = db.begin().await.unwrap();
        outbox::enqueue(&mut tx, &message("bank", "lost", b"x"), t0)
            .await
            .unwrap();
        tx.rollback().await.unwrap();

        let payload: Vec<u8> = (0..=u8::MAX).collect();
        let id = enqueue_committed(&db, message("bank", "m1", &payload), t0).await;
        assert!(
            outbox::due(&db, t0 - 1, 10, LEASE)
                .await
                .unwrap()
                .is_empty()
        );
        let due = outbox::due(&db, t0, 10, LEASE).await.unwrap();
        assert_eq!(
            due,
            [outbox::OutboxMessage {
                id,
                destination: "bank".into(),
                kind: "credit".into(),
                payload: payload.clone(),
                idempotency_key: "m1".into(),
                attempts: 0,
                created_at_ms: t0,
            }]
        );
        // Claimed: not handed out again until the lease runs out.
        assert!(outbox::due(&db, t0, 10, LEASE).await.unwrap().is_empty());
        let lease_end = t0 + LEASE;
        assert!(
            outbox::due(&db, lease_end - 1, 10, LEASE)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            outbox::due(&db, lease_end, 10, LEASE).await.unwrap().len(),
            1
        );

        assert_eq!(outbox::pending_count(&db).await.unwrap(), 1);
        outbox::mark_delivered(&db, id, lease_end + 5)
            .await
            .unwrap();
        outbox::mark_delivered(&db, id, lease_end + 9)
            .await
            .unwrap(); // idempotent
        assert_eq!(outbox::pending_count(&db).await.unwrap(), 0);
        assert!(
            outbox::due(&db, i64::MAX, 10, LEASE)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            outbox::mark_failed(&db, id, lease_end + 10).await.unwrap(),
            Retry::AlreadyDelivered
        );
        assert_eq!(delivered_at(&db, id).await, Some(lease_end + 5));

        let unknown = MessageId(id.0 + 1000);
        assert!(matches!(
            outbox::mark_delivered(&db, unknown, 0).await,
            Err(OutboxError::NotFound(_))
        ));
        assert!(matches!(
            outbox::mark_failed(&db, unknown, 0).await,
            Err(OutboxError::NotFound(_))
        ));
        assert_eq!(
            outbox::prune_delivered(&db, lease_end + 5).await.unwrap(),
            0
        );
        assert_eq!(
            outbox::prune_delivered(&db, lease_end + 6).await.unwrap(),
            1
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_s_deliveries_are_marked_together_once() {
    for_each_backend(|db| async move {
        migrated(&db).await;
        let t0 = 2_000_000;
        let mut ids = Vec::new();
        for key in ["a", "b", "c", "d"] {
            ids.push(enqueue_committed(&db, message("dc", key, b"x"), t0).await);
        }
        assert_eq!(outbox::due(&db, t0, 10, LEASE).await.unwrap().len(), 4);
        outbox::mark_delivered(&db, ids[0], t0 + 1).await.unwrap();
        // a already delivered keeps its time; b and c are marked; an id
        // pruned since is passed over; d stays pending.
        let pruned = MessageId(ids[3].0 + 1000);
        assert_eq!(
            outbox::mark_delivered_all(&db, &[ids[0], ids[1], ids[2], pruned], t0 + 7)
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            outbox::mark_delivered_all(&db, &[], t0 + 8).await.unwrap(),
            0
        );
        assert_eq!(
            outbox::mark_delivered_all(&db, &ids[1..3], t0 + 9)
                .await
                .unwrap(),
            0,
            "idempotent"
        );
        let mut times = Vec::new();
        for id in &ids {
            times.push(delivered_at(&db, *id).await);
        }
        assert_eq!(times, [Some(t0 + 1), Some(t0 + 7), Some(t0 + 7), None]);
        assert_eq!(outbox::pending_count(&db).await.unwrap(), 1);
        let again = outbox::due(&db, t0 + LEASE, 10, LEASE).await.unwrap();
        assert_eq!(again.iter().map(|m| m.id).collect::<Vec<_>>(), [ids[3]]);
        // More ids than one statement takes.
        let many: Vec<MessageId> = (0..outbox::MARK_IDS_MAX as i64 + 3)
            .map(|i| MessageId(ids[3].0 + 10_000 + i))
            .chain([ids[3]])
            .collect();
        assert_eq!(
            outbox::mark_delivered_all(&db, &many, t0 + 20)
                .await
                .unwrap(),
            1
        );
        assert_eq!(outbox::pending_count(&db).await.unwrap(), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_failures_back_off_exponentially_up_to_the_cap() {
    for_each_backend(|db| async move {
        migrated(&db).await;
        let mut now = 5_000;
        let id = enqueue_committed(&db, message("mpp", "m", b"p"), now).await;
        let mut reached_cap = false;
        for failures in 1..=12u32 {
            let claimed = outbox::due(&db, now, 10, LEASE).await.unwrap();
            assert_eq!(claimed.len(), 1, "failure {failures}");
            assert_eq!(claimed[0].attempts, failures - 1);
            let retry = outbox::mark_failed(&db, id, now).await.unwrap();
            let wait = outbox::backoff_ms(failures);
            assert_eq!(
                retry,
                Retry::Scheduled {
                    attempts: failures,
                    next_attempt_at_ms: now + wait
                }
            );
            assert!(wait <= outbox::RETRY_INTERVAL_MAX_MS);
            reached_cap |= wait == outbox::RETRY_INTERVAL_MAX_MS;
            // Not due a millisecond early, due exactly on time.
            assert!(
                outbox::due(&db, now + wait - 1, 10, LEASE)
                    .await
                    .unwrap()
                    .is_empty()
            );
            now += wait;
        }
        assert!(reached_cap);
        assert_eq!(outbox::backoff_ms(1), outbox::RETRY_FIRST_MS);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_keys_are_unique_per_destination_and_due_honours_limit_and_order() {
    for_each_backend(|db| async move {
        migrated(&db).await;
        let a = enqueue_committed(&db, message("bank", "k", b"1"), 30).await;
        let b = enqueue_committed(&db, message("dc", "k", b"2"), 10).await;
        let mut tx = db.begin().await.unwrap();
        let err = outbox::enqueue(&mut tx, &message("bank", "k", b"3"), 40)
            .await
            .unwrap_err();
        assert!(matches!(err, OutboxError::DuplicateKey { .. }), "{err}");
        drop(tx);
        let mut tx = db.begin().await.unwrap();
        let big = vec![0u8; outbox::PAYLOAD_LEN_MAX + 1];
        let err = outbox::enqueue(&mut tx, &message("bank", "big", &big), 40)
            .await
            .unwrap_err();
        assert!(matches!(err, OutboxError::InvalidMessage { .. }), "{err}");
        drop(tx);
        let c = enqueue_committed(&db, message("bank", "k2", b"4"), 20).await;

        assert!(outbox::due(&db, 100, 0, LEASE).await.unwrap().is_empty());
        // The two due earliest (b at 10, c at 20), returned in id order.
        let first: Vec<_> = outbox::due(&db, 100, 2, LEASE)
            .await
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect();
        let mut want = vec![b, c];
        want.sort();
        assert_eq!(first, want);
        let rest: Vec<_> = outbox::due(&db, 100, 2, LEASE)
            .await
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(rest, [a]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_concurrent_claimers_never_share_a_message() {
    const MESSAGES: usize = 24;
    for_each_backend(|db| async move {
        migrated(&db).await;
        let mut tx = db.begin().await.unwrap();
        for i in 0..MESSAGES {
            let key = format!("m{i}");
            outbox::enqueue(&mut tx, &message("bank", &key, b"p"), 1)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        let claimed = Arc::new(Mutex::new(Vec::new()));
        let mut workers = Vec::new();
        for _ in 0..3 {
            let db = db.clone();
            let claimed = claimed.clone();
            workers.push(tokio::spawn(async move {
                loop {
                    let batch = outbox::due(&db, 2, 4, LEASE).await.unwrap();
                    if batch.is_empty() {
                        break;
                    }
                    claimed
                        .lock()
                        .unwrap()
                        .extend(batch.into_iter().map(|m| m.id));
                }
            }));
        }
        for worker in workers {
            worker.await.unwrap();
        }
        let claimed = claimed.lock().unwrap().clone();
        let distinct: BTreeSet<_> = claimed.iter().copied().collect();
        assert_eq!(claimed.len(), MESSAGES, "each message claimed exactly once");
        assert_eq!(distinct.len(), MESSAGES);
    })
    .await;
}

// ----------------------------------------------------- connect, harness

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_connections_are_durable_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    assert!(!path.exists());
    let db = Db::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert!(path.exists(), "created when missing");
    assert_eq!(db.backend(), Backend::Sqlite);
    // Every pooled connection, not just one: hold several at once.
    let mut conns = Vec::new();
    for _ in 0..3 {
        conns.push(db.pool().acquire().await.unwrap());
    }
    for conn in &mut conns {
        let pragma = async |conn: &mut sqlx::pool::PoolConnection<sqlx::Any>, sql: &'static str| {
            let row = sqlx::query(sql).fetch_one(&mut **conn).await.unwrap();
            match row.try_get::<String, _>(0) {
                Ok(text) => text,
                Err(_) => row.try_get::<i64, _>(0).unwrap().to_string(),
            }
        };
        assert_eq!(pragma(conn, "PRAGMA journal_mode").await, "wal");
        assert_eq!(pragma(conn, "PRAGMA synchronous").await, "2"); // FULL
        assert_eq!(pragma(conn, "PRAGMA foreign_keys").await, "1");
        assert_eq!(
            pragma(conn, "PRAGMA busy_timeout").await,
            mpay_sql::SQLITE_BUSY_TIMEOUT_MS.to_string()
        );
    }
    drop(conns);
    // Which SQLite this build links: SQLCipher when the wallet store is in
    // the same build (features unify on the one libsqlite3-sys), else plain.
    let version: String = sqlx::query("SELECT sqlite_version()")
        .fetch_one(db.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    let cipher = sqlx::query("PRAGMA cipher_version")
        .fetch_optional(db.pool())
        .await
        .unwrap()
        .and_then(|row| row.try_get::<String, _>(0).ok());
    eprintln!("SQLite {version}, SQLCipher {cipher:?}");
    db.close().await;

    for url in [
        "sqlite::memory:",
        "sqlite://?mode=memory",
        "mysql://root:hunter2@host/db",
    ] {
        let err = Db::connect(url).await.unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_keys_are_enforced_on_both() {
    for_each_backend(|db| async move {
        const FK: Migrations = Migrations::new(
            "fk_test",
            &[(
                "0001_fk",
                "CREATE TABLE parent (id BIGINT PRIMARY KEY);
                 CREATE TABLE child (id BIGINT PRIMARY KEY, parent BIGINT NOT NULL REFERENCES parent (id));",
            )],
        );
        db.migrate(&[FK]).await.unwrap();
        let err = sqlx::query("INSERT INTO child (id, parent) VALUES ($1, $2)")
            .bind(1_i64)
            .bind(99_i64)
            .execute(db.pool())
            .await
            .unwrap_err();
        assert!(matches!(&err, sqlx::Error::Database(e) if e.is_foreign_key_violation()), "{err}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn for_each_backend_runs_on_each_backend_with_a_fresh_database() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    for_each_backend({
        let seen = seen.clone();
        move |db| {
            let seen = seen.clone();
            async move {
                // Fresh: no migrations table yet.
                let fresh = sqlx::query("SELECT COUNT(*) FROM schema_migrations")
                    .fetch_one(db.pool())
                    .await
                    .is_err();
                assert!(fresh);
                seen.lock().unwrap().push(db.backend());
            }
        }
    })
    .await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.first(), Some(&Backend::Sqlite));
    if std::env::var_os("CI").is_some() {
        assert_eq!(seen, [Backend::Sqlite, Backend::Postgres]);
    } else {
        assert!(
            seen.len() == 1 || seen == [Backend::Sqlite, Backend::Postgres],
            "{seen:?}"
        );
    }
}

// ------------------------------------------------------------- attempts

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_move_forward_only_past_the_refused_one() {
    use mpay_sql::attempts;
    for_each_backend(|db| async move {
        migrated(&db).await;
        let base = "refund-ab-cd";
        assert_eq!(attempts::current(&db, base).await.unwrap(), 0);
        attempts::advance(&db, base, 0).await.unwrap();
        assert_eq!(attempts::current(&db, base).await.unwrap(), 1);
        // A second driver that saw the same refusal changes nothing.
        attempts::advance(&db, base, 0).await.unwrap();
        assert_eq!(attempts::current(&db, base).await.unwrap(), 1);
        // Nor does one that saw an older refusal late.
        attempts::advance(&db, base, 1).await.unwrap();
        attempts::advance(&db, base, 0).await.unwrap();
        assert_eq!(attempts::current(&db, base).await.unwrap(), 2);
        // Other bases are their own.
        assert_eq!(attempts::current(&db, "refund-ab-ce").await.unwrap(), 0);
        // Racing drivers that saw the same refusal move it once.
        let racers = (0..4).map(|_| {
            let db = db.clone();
            tokio::spawn(async move { attempts::advance(&db, "payout-7", 0).await })
        });
        for racer in racers.collect::<Vec<_>>() {
            racer.await.unwrap().unwrap();
        }
        assert_eq!(attempts::current(&db, "payout-7").await.unwrap(), 1);
    })
    .await;
}
