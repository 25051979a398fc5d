//! The phone's encrypted, durable wallet store: it keeps the records of
//! [`mpay_offline::durable`] in a SQLCipher database keyed from the owner's
//! PIN.
//!
//! # Files
//!
//! For a wallet at `<db>`:
//!
//! - `<db>`: the SQLite database, every page encrypted by SQLCipher (AES-256,
//!   HMAC per page) with a 32-byte raw key, so SQLCipher's own PBKDF2 is not
//!   used. WAL journal mode, so `<db>-wal` and `<db>-shm` appear while it is
//!   open; both are part of the database and are encrypted the same way.
//! - `<db>.kdf`: the key file ("sidecar"), plain and [`kdf::SIDECAR_LEN`]
//!   bytes: a magic, a version byte, the Argon2id parameters, a random 16-byte
//!   salt and a checksum. Key = Argon2id(PIN, salt, parameters). Without it
//!   the database cannot be opened, even with the PIN.
//! - `<db>.kdf.new`: exists only while [`WalletStore::change_pin`] runs (or
//!   after a crash in it); [`WalletStore::open`] finishes or discards it.
//!
//! # Durability
//!
//! [`WalletStore::apply`] writes a whole [`WriteBatch`] in one IMMEDIATE
//! transaction, committed with `synchronous=FULL`: when it returns `Ok`, the
//! batch is on stable storage (one fsync of the WAL); when it returns an
//! error, nothing of the batch is. Key files are replaced by writing a
//! temporary file, fsync, rename, fsync of the directory.

mod error;
mod fsio;
pub mod kdf;
mod schema;

use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Once;

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior, params};
use zeroize::Zeroizing;

pub use error::{SidecarProblem, StoreError};
pub use kdf::KdfParams;
pub use mpay_offline::durable::{ChainOrderError, Snapshot, Write, WriteBatch};
use mpay_offline::durable::{DurableStore, StoreFailure, check_chain_order};

use kdf::{KEY_LEN, SIDECAR_LEN, Sidecar, raw_key_literal};

/// Suffix of the key file next to the database.
pub const SIDECAR_SUFFIX: &str = ".kdf";
/// Suffix of the key file being installed by [`WalletStore::change_pin`].
const PENDING_SIDECAR_SUFFIX: &str = ".kdf.new";
/// Suffix of a backup being written by [`WalletStore::backup_to`].
const PARTIAL_BACKUP_SUFFIX: &str = ".partial";
/// Name of the backup database while it is attached.
const BACKUP_SCHEMA: &str = "backup";

/// An open wallet: one SQLCipher connection and the key it was opened with.
pub struct WalletStore {
    conn: Connection,
    db_path: PathBuf,
    sidecar: Sidecar,
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for WalletStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalletStore")
            .field("db_path", &self.db_path)
            .field("kdf_params", &self.sidecar.params)
            .finish_non_exhaustive()
    }
}

/// The key file's path for the database at `db_path`: `<db_path>.kdf`.
pub fn sidecar_path(db_path: &Path) -> PathBuf {
    fsio::with_suffix(db_path, SIDECAR_SUFFIX)
}

impl WalletStore {
    /// Creates a new, empty wallet at `path` keyed from `pin`.
    ///
    /// Fails with [`StoreError::AlreadyExists`] if the database, its WAL or
    /// its key file is already there. The key file is durable before the
    /// database is written.
    pub fn create(path: &Path, pin: &str, params: KdfParams) -> Result<WalletStore, StoreError> {
        if pin.is_empty() {
            return Err(StoreError::EmptyPin);
        }
        let sidecar = Sidecar::generate(params)?;
        let sidecar_path = sidecar_path(path);
        let pending_path = fsio::with_suffix(path, PENDING_SIDECAR_SUFFIX);
        let wal_path = fsio::with_suffix(path, "-wal");
        for existing in [path, &sidecar_path, &pending_path, &wal_path] {
            if fsio::exists(existing)? {
                return Err(StoreError::AlreadyExists {
                    path: existing.to_path_buf(),
                });
            }
        }
        let key = sidecar.derive_key(pin)?;
        // Claim the database path; SQLite opens an empty file as an empty
        // database.
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => StoreError::AlreadyExists {
                    path: path.to_path_buf(),
                },
                _ => StoreError::io(path, e),
            })?;
        let created = fsio::write_atomic(&sidecar_path, &sidecar.encode())
            .and_then(|()| open_keyed(path, &key))
            .and_then(|mut conn| {
                schema::migrate(&mut conn)?;
                Ok(conn)
            });
        match created {
            Ok(conn) => Ok(WalletStore {
                conn,
                db_path: path.to_path_buf(),
                sidecar,
                key,
            }),
            Err(e) => {
                // Best effort: leave nothing half-made behind. The paths were
                // checked empty above and the database path was claimed.
                for made in [
                    path.to_path_buf(),
                    wal_path,
                    fsio::with_suffix(path, "-shm"),
                    sidecar_path,
                ] {
                    let _ = std::fs::remove_file(made);
                }
                Err(e)
            }
        }
    }

    /// Opens the wallet at `path` with `pin`.
    ///
    /// [`StoreError::NotFound`] if the database or its key file is missing,
    /// [`StoreError::WrongPin`] if the derived key does not decrypt it,
    /// [`StoreError::CorruptSidecar`] if the key file is damaged. Finishes or
    /// discards a PIN change that a crash interrupted.
    pub fn open(path: &Path, pin: &str) -> Result<WalletStore, StoreError> {
        if !fsio::exists(path)? {
            return Err(StoreError::NotFound {
                path: path.to_path_buf(),
            });
        }
        let sidecar_path = sidecar_path(path);
        let pending_path = fsio::with_suffix(path, PENDING_SIDECAR_SUFFIX);
        let sidecar = read_sidecar(&sidecar_path)?;
        let key = sidecar.derive_key(pin)?;
        let (mut conn, sidecar, key) = match open_keyed(path, &key) {
            Ok(conn) => {
                // A PIN change that never reached its rekey: forget it.
                fsio::remove_durable(&pending_path)?;
                (conn, sidecar, key)
            }
            Err(StoreError::WrongPin) if fsio::exists(&pending_path)? => {
                // A PIN change whose rekey committed before the new key
                // file was moved into place: finish it.
                let pending = read_sidecar(&pending_path)?;
                let pending_key = pending.derive_key(pin)?;
                let conn = open_keyed(path, &pending_key)?;
                fsio::rename_durable(&pending_path, &sidecar_path)?;
                (conn, pending, pending_key)
            }
            Err(e) => return Err(e),
        };
        schema::migrate(&mut conn)?;
        Ok(WalletStore {
            conn,
            db_path: path.to_path_buf(),
            sidecar,
            key,
        })
    }

    /// Everything the store holds, read in one transaction.
    pub fn load(&self) -> Result<Snapshot, StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        let mut snapshot = Snapshot::default();
        {
            let mut stmt = tx.prepare_cached("SELECT key, value FROM meta")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                snapshot.meta.insert(row.get(0)?, row.get(1)?);
            }
        }
        {
            let mut stmt = tx.prepare_cached("SELECT seq, entry FROM chain")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let seq = seq_from_sql(&row.get::<_, Vec<u8>>(0)?)?;
                snapshot.chain.insert(seq, row.get(1)?);
            }
        }
        for (sql, map, what) in [
            (
                "SELECT tx_id, record FROM txs",
                &mut snapshot.txs,
                "transaction id",
            ),
            (
                "SELECT party_id, certificate FROM peers",
                &mut snapshot.peers,
                "party id",
            ),
        ] {
            let mut stmt = tx.prepare_cached(sql)?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let id = id_from_sql(&row.get::<_, Vec<u8>>(0)?, what)?;
                map.insert(id, row.get(1)?);
            }
        }
        tx.finish()?;
        Ok(snapshot)
    }

    /// Applies `batch` atomically and durably, with the rules of
    /// [`Snapshot::apply`]: a chain append out of order rejects the whole
    /// batch ([`StoreError::ChainOrder`]) and nothing of it is written.
    ///
    /// One SQLite transaction, so one durable commit (one WAL fsync) per
    /// batch; an empty batch writes nothing.
    pub fn apply(&mut self, batch: &WriteBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let last = last_seq(&tx)?;
        check_chain_order(last, batch)?;
        for write in &batch.writes {
            match write {
                Write::PutMeta { key, value } => {
                    tx.prepare_cached(
                        "INSERT INTO meta (key, value) VALUES (?1, ?2)
                         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    )?
                    .execute(params![key, value])?;
                }
                Write::DeleteMeta { key } => {
                    tx.prepare_cached("DELETE FROM meta WHERE key = ?1")?
                        .execute([key])?;
                }
                Write::AppendChain { seq, entry } => {
                    // Plain INSERT: the order check above makes every
                    // append new, and a duplicate must fail loudly.
                    tx.prepare_cached("INSERT INTO chain (seq, entry) VALUES (?1, ?2)")?
                        .execute(params![seq.to_be_bytes(), entry])?;
                }
                Write::PutTx { tx_id, record } => {
                    tx.prepare_cached(
                        "INSERT INTO txs (tx_id, record) VALUES (?1, ?2)
                         ON CONFLICT (tx_id) DO UPDATE SET record = excluded.record",
                    )?
                    .execute(params![tx_id, record])?;
                }
                Write::DeleteTx { tx_id } => {
                    tx.prepare_cached("DELETE FROM txs WHERE tx_id = ?1")?
                        .execute([tx_id])?;
                }
                Write::PutPeer {
                    party_id,
                    certificate,
                } => {
                    tx.prepare_cached(
                        "INSERT INTO peers (party_id, certificate) VALUES (?1, ?2)
                         ON CONFLICT (party_id) DO UPDATE SET certificate = excluded.certificate",
                    )?
                    .execute(params![party_id, certificate])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Chain entries with a sequence number after `after_seq` (all of them
    /// for `None`), in order: what a sync has not uploaded yet.
    pub fn chain_since(&self, after_seq: Option<u64>) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, entry FROM chain WHERE seq > ?1 ORDER BY seq")?;
        // Every stored seq is 8 bytes, and any BLOB compares greater than
        // the empty one.
        let after: Vec<u8> = after_seq.map_or_else(Vec::new, |s| s.to_be_bytes().to_vec());
        let mut rows = stmt.query([after])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let seq = seq_from_sql(&row.get::<_, Vec<u8>>(0)?)?;
            out.push((seq, row.get(1)?));
        }
        Ok(out)
    }

    /// Re-encrypts the database under a key from `new_pin` with a new salt
    /// and `params`, then installs the new key file.
    ///
    /// Crash-safe: the new key file is first written durably as
    /// `<db>.kdf.new`; SQLCipher's rekey commits atomically; then the new key
    /// file replaces the old one. [`WalletStore::open`] completes or discards
    /// a change interrupted between those steps, so exactly one of the old
    /// and the new PIN opens the wallet at any time.
    pub fn change_pin(&mut self, new_pin: &str, params: KdfParams) -> Result<(), StoreError> {
        if new_pin.is_empty() {
            return Err(StoreError::EmptyPin);
        }
        let sidecar = Sidecar::generate(params)?;
        let key = sidecar.derive_key(new_pin)?;
        let sidecar_path = sidecar_path(&self.db_path);
        let pending_path = fsio::with_suffix(&self.db_path, PENDING_SIDECAR_SUFFIX);
        fsio::write_atomic(&pending_path, &sidecar.encode())?;

        // Rekeying in place is not safe in WAL mode: empty the WAL and leave
        // WAL mode for the rekey, then come back.
        let prepared =
            checkpoint_truncate(&self.conn).and_then(|()| set_journal_mode(&self.conn, "delete"));
        if let Err(e) = prepared {
            let _ = fsio::remove_durable(&pending_path);
            let _ = set_journal_mode(&self.conn, "wal");
            return Err(e);
        }
        // If the rekey fails, whether it committed is not known here: the
        // pending key file stays and the next `open` settles it.
        let rekeyed = run_key_pragma(&self.conn, "rekey", &key);
        if rekeyed.is_ok() {
            // From here on the database is under the new key, whatever else
            // fails (a failed rename is also settled by the next `open`).
            self.sidecar = sidecar;
            self.key = key;
        }
        let installed = rekeyed.and_then(|()| fsio::rename_durable(&pending_path, &sidecar_path));
        let back_to_wal = set_journal_mode(&self.conn, "wal");
        installed.and(back_to_wal)
    }

    /// Writes a consistent copy of the wallet to `dest` (with its key file
    /// `<dest>.kdf`), encrypted with the same key, so `open(dest, same PIN)`
    /// works. Fails with [`StoreError::AlreadyExists`] if `dest` or its key
    /// file exists. The copy is written as `<dest>.partial` (a leftover one
    /// from a crashed backup is replaced) and renamed into place once it and
    /// its key file are durable.
    pub fn backup_to(&self, dest: &Path) -> Result<(), StoreError> {
        let dest_sidecar = sidecar_path(dest);
        for existing in [dest, &dest_sidecar] {
            if fsio::exists(existing)? {
                return Err(StoreError::AlreadyExists {
                    path: existing.to_path_buf(),
                });
            }
        }
        let partial = fsio::with_suffix(dest, PARTIAL_BACKUP_SUFFIX);
        for stale in [
            partial.clone(),
            fsio::with_suffix(&partial, "-journal"),
            fsio::with_suffix(&partial, "-wal"),
        ] {
            fsio::remove_durable(&stale)?;
        }
        let result = self
            .export_to(&partial)
            .and_then(|()| fsio::sync_file(&partial))
            .and_then(|()| fsio::write_atomic(&dest_sidecar, &self.sidecar.encode()))
            .and_then(|()| fsio::rename_durable(&partial, dest));
        if result.is_err() {
            let _ = std::fs::remove_file(&partial);
            let _ = std::fs::remove_file(&dest_sidecar);
        }
        result
    }

    /// The settings the store runs with, read back from SQLite.
    pub fn diagnostics(&self) -> Result<Diagnostics, StoreError> {
        let text = |name: &str| -> Result<String, StoreError> {
            Ok(self.conn.pragma_query_value(None, name, |row| row.get(0))?)
        };
        let number = |name: &str| -> Result<i64, StoreError> {
            Ok(self.conn.pragma_query_value(None, name, |row| row.get(0))?)
        };
        Ok(Diagnostics {
            journal_mode: text("journal_mode")?,
            synchronous: number("synchronous")?,
            foreign_keys: number("foreign_keys")? != 0,
            schema_version: number("user_version")?,
            cipher_version: text("cipher_version")?,
            kdf_params: self.sidecar.params,
        })
    }

    /// `sqlcipher_export` of the main database into a new file keyed with
    /// the same raw key, in one read transaction.
    fn export_to(&self, file: &Path) -> Result<(), StoreError> {
        let file_str = file.to_str().ok_or_else(|| {
            StoreError::io(
                file,
                io::Error::new(io::ErrorKind::InvalidInput, "backup path is not UTF-8"),
            )
        })?;
        // The connection was opened without SQLITE_OPEN_CREATE, and ATTACH
        // inherits that: make the (empty) file first.
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(file)
            .map_err(|e| StoreError::io(file, e))?;
        let literal = raw_key_literal(&self.key);
        // Both bound as parameters, so neither the key nor the path is part
        // of the SQL text that an error could carry.
        self.conn.execute(
            "ATTACH DATABASE ?1 AS backup KEY ?2",
            params![file_str, literal.as_str()],
        )?;
        let exported = (|| {
            self.conn
                .pragma_update(Some(BACKUP_SCHEMA), "journal_mode", "DELETE")?;
            let tx = self.conn.unchecked_transaction()?;
            tx.query_row("SELECT sqlcipher_export(?1)", [BACKUP_SCHEMA], |_| Ok(()))?;
            let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
            tx.pragma_update(Some(BACKUP_SCHEMA), "user_version", version)?;
            tx.commit()
        })();
        let detached = self.conn.execute_batch("DETACH DATABASE backup");
        exported?;
        detached?;
        Ok(())
    }
}

/// What [`WalletStore::diagnostics`] reports.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Diagnostics {
    /// `PRAGMA journal_mode`: `wal`.
    pub journal_mode: String,
    /// `PRAGMA synchronous`: 2 (FULL).
    pub synchronous: i64,
    /// `PRAGMA foreign_keys`.
    pub foreign_keys: bool,
    /// `PRAGMA user_version`: how many schema migrations are applied.
    pub schema_version: i64,
    /// `PRAGMA cipher_version`: the SQLCipher build.
    pub cipher_version: String,
    /// The Argon2id parameters of the current key.
    pub kdf_params: KdfParams,
}

/// Opens the database at `path` (which must exist), hands SQLCipher the raw
/// key, checks that it decrypts, and sets WAL, `synchronous=FULL` and
/// foreign keys.
fn open_keyed(path: &Path, key: &[u8; KEY_LEN]) -> Result<Connection, StoreError> {
    init_sqlcipher_once();
    // No SQLITE_OPEN_CREATE (the caller made the file) and no URI parsing.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    run_key_pragma(&conn, "key", key)?;
    // Pin SQLCipher 4's page format so a later library default cannot
    // silently make the wallet unreadable.
    conn.execute_batch("PRAGMA cipher_compatibility = 4")?;
    // The first read is where a wrong key shows.
    match conn.query_row("SELECT count(*) FROM sqlite_schema", [], |row| {
        row.get::<_, i64>(0)
    }) {
        Ok(_) => {}
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::NotADatabase => {
            return Err(StoreError::WrongPin);
        }
        Err(e) => return Err(e.into()),
    }
    set_journal_mode(&conn, "wal")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// Initialises SQLite/SQLCipher once, before any wallet connection opens.
///
/// SQLCipher 4.10 sets SQLite's "initialised" flag before its own extra
/// initialisation has registered `sqlcipher_export`, so a connection opened
/// by a second thread during the first open can lack that function. Opening
/// one connection under a `Once` finishes the initialisation before any
/// other open here.
///
/// It also turns SQLCipher's own logging off (a process-wide setting): it
/// would print "hmac check failed" to stderr for every wrong PIN, which this
/// store already reports as [`StoreError::WrongPin`].
fn init_sqlcipher_once() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // Failure here only loses the log setting; a real open reports errors.
        if let Ok(conn) = Connection::open_in_memory() {
            let _ = conn.execute_batch("PRAGMA cipher_log_level = NONE");
        }
    });
}

/// `PRAGMA key` / `PRAGMA rekey` with a raw key. The statement holds the key,
/// so an error keeps only SQLite's result code.
fn run_key_pragma(conn: &Connection, pragma: &str, key: &[u8; KEY_LEN]) -> Result<(), StoreError> {
    let literal = raw_key_literal(key);
    let mut sql = Zeroizing::new(String::with_capacity(
        "PRAGMA  = \"\"".len() + pragma.len() + literal.len(),
    ));
    sql.push_str("PRAGMA ");
    sql.push_str(pragma);
    sql.push_str(" = \"");
    sql.push_str(&literal);
    sql.push('"');
    conn.execute_batch(&sql)
        .map_err(|e| StoreError::KeyRejected {
            code: e.sqlite_error().map_or(-1, |f| f.extended_code),
        })
}

/// Sets the journal mode and checks that SQLite really switched.
fn set_journal_mode(conn: &Connection, mode: &'static str) -> Result<(), StoreError> {
    let answer: String =
        conn.pragma_update_and_check(None, "journal_mode", mode, |row| row.get(0))?;
    if answer.eq_ignore_ascii_case(mode) {
        Ok(())
    } else {
        Err(StoreError::PragmaRefused {
            pragma: "journal_mode",
            wanted: mode,
            answer,
        })
    }
}

/// Copies the whole WAL into the database file and empties it.
fn checkpoint_truncate(conn: &Connection) -> Result<(), StoreError> {
    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))?;
    if busy == 0 {
        Ok(())
    } else {
        Err(StoreError::PragmaRefused {
            pragma: "wal_checkpoint",
            wanted: "TRUNCATE",
            answer: "busy".to_owned(),
        })
    }
}

/// Reads and decodes a key file (at most one byte more than a valid one).
fn read_sidecar(path: &Path) -> Result<Sidecar, StoreError> {
    let bytes = fsio::read_prefix(path, SIDECAR_LEN + 1)?;
    Sidecar::decode(&bytes).map_err(|problem| StoreError::CorruptSidecar {
        path: path.to_path_buf(),
        problem,
    })
}

/// The chain's last sequence number.
fn last_seq(conn: &Connection) -> Result<Option<u64>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT seq FROM chain ORDER BY seq DESC LIMIT 1")?;
    let mut rows = stmt.query([])?;
    match rows.next()? {
        Some(row) => Ok(Some(seq_from_sql(&row.get::<_, Vec<u8>>(0)?)?)),
        None => Ok(None),
    }
}

/// The chain-order rule of [`Snapshot::apply`]: each append is one more than
/// the previous one, the first append to an empty chain may be anything.
fn seq_from_sql(bytes: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = bytes.try_into().map_err(|_| StoreError::InvalidRecord {
        what: "chain sequence number",
    })?;
    Ok(u64::from_be_bytes(bytes))
}

fn id_from_sql(bytes: &[u8], what: &'static str) -> Result<[u8; 16], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::InvalidRecord { what })
}

impl DurableStore for WalletStore {
    fn apply_batch(&mut self, batch: &WriteBatch) -> Result<(), StoreFailure> {
        self.apply(batch).map_err(Into::into)
    }

    fn load_snapshot(&self) -> Result<Snapshot, StoreFailure> {
        self.load().map_err(Into::into)
    }
}
