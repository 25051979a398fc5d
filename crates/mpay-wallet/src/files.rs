//! The wallet's directory: its plain settings file, its lock, and the OS
//! randomness every start needs. Durable writes go through
//! [`mpay_fs::write_atomic`].

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::WalletError;

/// Name of the encrypted store inside the wallet directory.
pub const STORE_FILE: &str = "wallet.db";
/// Name of the plain settings file inside the wallet directory.
pub const SETTINGS_FILE: &str = "wallet.json";
/// Meta key under which the owner's office token is kept, encrypted, in the
/// store. The engine ignores meta keys it does not know.
pub const OFFICE_TOKEN_META: &str = "office_token";
/// Name of the lock file: one process at a time drives a wallet's engine.
pub const LOCK_FILE: &str = "wallet.lock";
/// Version of [`Settings`] written by this library.
const SETTINGS_VERSION: u32 = 1;

/// Non-secret settings, in `wallet.json`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub version: u32,
    /// The money office's base URL.
    pub office: String,
    /// The owner's name at the office.
    pub owner: String,
    /// The wallet's id (hex), once enrolled.
    pub wallet: Option<String>,
    /// The wallet's currency, once enrolled.
    pub currency: Option<String>,
}

impl Settings {
    pub fn new(office: &str, owner: &str) -> Settings {
        Settings {
            version: SETTINGS_VERSION,
            office: office.trim_end_matches('/').to_owned(),
            owner: owner.to_owned(),
            wallet: None,
            currency: None,
        }
    }
}

/// The files of one wallet.
#[derive(Clone, Debug)]
pub struct WalletDir {
    pub dir: PathBuf,
}

impl WalletDir {
    pub fn new(dir: &Path) -> WalletDir {
        WalletDir {
            dir: dir.to_path_buf(),
        }
    }

    pub fn store_path(&self) -> PathBuf {
        self.dir.join(STORE_FILE)
    }

    pub fn settings_path(&self) -> PathBuf {
        self.dir.join(SETTINGS_FILE)
    }

    /// The store's files that exist: the database, its key file, WAL and
    /// shared-memory files.
    pub fn store_files(&self) -> Vec<PathBuf> {
        let db = self.store_path();
        let mut files = vec![db.clone(), mpay_wallet_store::sidecar_path(&db)];
        for suffix in ["-wal", "-shm"] {
            let mut name = db.clone().into_os_string();
            name.push(suffix);
            files.push(PathBuf::from(name));
        }
        files.into_iter().filter(|p| p.exists()).collect()
    }

    /// Takes the wallet's exclusive lock, held until the guard drops (or
    /// the process dies). Two engines on one store would each sign the next
    /// chain entry; the store refuses the second, but the process holding
    /// it would then stop.
    pub fn lock(&self) -> Result<WalletLock, WalletError> {
        let path = self.dir.join(LOCK_FILE);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| WalletError::other(format!("cannot open {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(WalletLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) => Err(WalletError::other(format!(
                "the wallet in {} is in use by another mpay process (a buy, sell or resume \
                 still running?)",
                self.dir.display()
            ))),
            Err(fs::TryLockError::Error(e)) => Err(WalletError::other(format!(
                "cannot lock {}: {e}",
                path.display()
            ))),
        }
    }

    pub fn has_wallet(&self) -> bool {
        self.store_path().exists() || mpay_wallet_store::sidecar_path(&self.store_path()).exists()
    }

    pub fn read_settings(&self) -> Result<Settings, WalletError> {
        let path = self.settings_path();
        let text = fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                WalletError::other(format!(
                    "no wallet at {} (create one with `mpay wallet init`, or pass --dir)",
                    self.dir.display()
                ))
            } else {
                WalletError::other(format!("cannot read {}: {e}", path.display()))
            }
        })?;
        serde_json::from_str(&text)
            .map_err(|e| WalletError::other(format!("{} is damaged: {e}", path.display())))
    }

    pub fn write_settings(&self, settings: &Settings) -> Result<(), WalletError> {
        let text = serde_json::to_string_pretty(settings)
            .map_err(|e| WalletError::other(format!("settings: {e}")))?;
        write_durably(&self.settings_path(), text.as_bytes())
    }
}

/// The held lock of a wallet directory.
#[derive(Debug)]
pub struct WalletLock {
    _file: fs::File,
}

/// Writes `bytes` to `path` with [`mpay_fs::write_atomic`] (tmp 0600 +
/// fsync + rename + fsync(dir)).
pub fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), WalletError> {
    mpay_fs::write_atomic(path, bytes)
        .map_err(|e| WalletError::other(format!("cannot write {}: {e}", path.display())))
}

/// fsyncs a directory so a rename or a new file in it is durable.
pub fn sync_dir(dir: &Path) -> Result<(), WalletError> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    mpay_fs::sync_dir(dir)
        .map_err(|e| WalletError::other(format!("cannot sync {}: {e}", dir.display())))
}

/// 32 bytes of OS randomness: the engine's RNG seed at every start, key
/// generation, idempotency keys.
pub fn os_random32() -> Result<[u8; 32], WalletError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| WalletError::other(format!("no OS randomness: {e}")))?;
    Ok(seed)
}
