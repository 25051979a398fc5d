//! Versioned schema. `PRAGMA user_version` holds how many entries of
//! [`MIGRATIONS`] have been applied; new versions only ever append.
//!
//! Sequence numbers are stored as 8-byte big-endian BLOBs: SQLite compares
//! BLOBs with `memcmp`, so their order is the `u64` order over the whole
//! range (an INTEGER column would stop at `i64::MAX`).

use rusqlite::{Connection, TransactionBehavior};

use crate::error::StoreError;

/// The migrations, oldest first. Never edit one that has shipped.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the four tables of `mpay_offline::durable::Snapshot`.
    "CREATE TABLE meta (
        key   TEXT PRIMARY KEY NOT NULL,
        value BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE chain (
        seq   BLOB PRIMARY KEY NOT NULL CHECK (length(seq) = 8),
        entry BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE txs (
        tx_id  BLOB PRIMARY KEY NOT NULL CHECK (length(tx_id) = 16),
        record BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE peers (
        party_id    BLOB PRIMARY KEY NOT NULL CHECK (length(party_id) = 16),
        certificate BLOB NOT NULL
    ) WITHOUT ROWID;",
];

/// The schema version this build writes.
pub(crate) fn current_version() -> i64 {
    // MIGRATIONS is a short constant list.
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// Brings the database up to [`current_version`] in one transaction.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let supported = current_version();
    if found > supported {
        return Err(StoreError::SchemaTooNew { found, supported });
    }
    let Ok(applied) = usize::try_from(found) else {
        return Err(StoreError::InvalidRecord {
            what: "schema version",
        });
    };
    if applied == MIGRATIONS.len() {
        return Ok(()); // the read-only transaction ends without a write
    }
    for sql in &MIGRATIONS[applied..] {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", supported)?;
    tx.commit()?;
    Ok(())
}
