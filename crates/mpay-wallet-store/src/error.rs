//! The store's errors. None of them carries the PIN or a key: the SQL that
//! hands a key to SQLCipher never reaches an error value (see
//! [`StoreError::KeyRejected`]).

use std::io;
use std::path::PathBuf;

use mpay_offline::durable::ChainOrderError;

use crate::kdf::KdfParams;

/// Everything that can go wrong in the wallet store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `create` or `backup_to` found a wallet (or part of one) already there.
    #[error("a wallet already exists at {}", path.display())]
    AlreadyExists { path: PathBuf },
    /// The wallet database or its key file is missing.
    #[error("wallet file not found at {}", path.display())]
    NotFound { path: PathBuf },
    /// The PIN does not decrypt the wallet. SQLCipher cannot tell a wrong key
    /// from a file damaged beyond its first page, so this may also mean that.
    #[error("wrong PIN")]
    WrongPin,
    /// The new PIN is empty.
    #[error("the PIN must not be empty")]
    EmptyPin,
    /// The key file next to the database cannot be read as one.
    #[error("wallet key file at {} is damaged: {problem}", path.display())]
    CorruptSidecar {
        path: PathBuf,
        problem: SidecarProblem,
    },
    /// Argon2id parameters outside the limits this store accepts.
    #[error("key-derivation parameters {params:?} are outside the accepted limits")]
    KdfParamsOutOfRange { params: KdfParams },
    /// A batch appends to the hash chain out of order: a bug in the caller.
    /// Nothing of the batch was applied.
    #[error("batch rejected, nothing written: {0}")]
    ChainOrder(#[from] ChainOrderError),
    /// The database was written by a newer version of this app.
    #[error("wallet database has schema version {found}; this app knows up to {supported}")]
    SchemaTooNew { found: i64, supported: i64 },
    /// The database holds a value this store never writes (damage or a bug).
    #[error("wallet database holds an invalid {what}")]
    InvalidRecord { what: &'static str },
    /// SQLCipher refused a key or rekey statement. Only the SQLite result code
    /// is kept, never the statement.
    #[error("the database refused the key (SQLite code {code})")]
    KeyRejected { code: i32 },
    /// SQLite did not take a setting this store depends on.
    #[error("the database refused PRAGMA {pragma} = {wanted} (answered {answer})")]
    PragmaRefused {
        pragma: &'static str,
        wanted: &'static str,
        answer: String,
    },
    /// The operating system's random number generator failed.
    #[error("no randomness available for a new salt: {0}")]
    Randomness(getrandom::Error),
    /// Argon2 refused to run (should not happen with checked parameters).
    #[error("key derivation failed: {0}")]
    Kdf(argon2::Error),
    /// A file-system operation failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// SQLite failed (disk full, I/O error, corruption, …).
    #[error("wallet database error: {0}")]
    Database(#[from] rusqlite::Error),
}

/// Why a key file (`<db path>.kdf`) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SidecarProblem {
    #[error("it is {found} bytes long, expected {expected}")]
    WrongLength { found: usize, expected: usize },
    #[error("it does not start with the wallet key file marker")]
    BadMagic,
    #[error("it has format version {0}, which this app does not know")]
    UnsupportedVersion(u8),
    #[error("its checksum does not match its contents")]
    BadChecksum,
    #[error("its key-derivation parameters {0:?} are outside the accepted limits")]
    ParamsOutOfRange(KdfParams),
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }
}
