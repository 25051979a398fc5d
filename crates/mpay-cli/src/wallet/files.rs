//! The wallet's directory, its plain settings file, the PIN and the OS
//! randomness every start needs.

use std::fs;
use std::io::{BufRead, IsTerminal, Write as _};
use std::path::{Path, PathBuf};

use mpay_money::{Amount, Currency};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::exit::Failure;
use super::{Common, Kdf};

/// Name of the encrypted store inside the wallet directory.
pub const STORE_FILE: &str = "wallet.db";
/// Name of the plain settings file inside the wallet directory.
pub const SETTINGS_FILE: &str = "wallet.json";
/// Meta key under which the owner's office token is kept, encrypted, in the
/// store. The engine ignores meta keys it does not know.
pub const OFFICE_TOKEN_META: &str = "office_token";
/// Name of the lock file: one process at a time drives a wallet's engine.
pub const LOCK_FILE: &str = "wallet.lock";
/// Version of [`Settings`] written by this program.
const SETTINGS_VERSION: u32 = 1;
/// Longest PIN accepted, bytes (a PIN file is read no further).
pub const PIN_LEN_MAX: usize = 256;

/// Non-secret settings, in `wallet.json`.
#[derive(Serialize, Deserialize, Clone, Debug)]
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
    pub fn lock(&self) -> Result<WalletLock, Failure> {
        let path = self.dir.join(LOCK_FILE);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Failure::other(format!("cannot open {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(WalletLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) => Err(Failure::other(format!(
                "the wallet in {} is in use by another mpay process (a buy, sell or resume \
                 still running?)",
                self.dir.display()
            ))),
            Err(fs::TryLockError::Error(e)) => Err(Failure::other(format!(
                "cannot lock {}: {e}",
                path.display()
            ))),
        }
    }

    pub fn has_wallet(&self) -> bool {
        self.store_path().exists() || mpay_wallet_store::sidecar_path(&self.store_path()).exists()
    }

    pub fn read_settings(&self) -> Result<Settings, Failure> {
        let path = self.settings_path();
        let text = fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Failure::other(format!(
                    "no wallet at {} (create one with `mpay wallet init`, or pass --dir)",
                    self.dir.display()
                ))
            } else {
                Failure::other(format!("cannot read {}: {e}", path.display()))
            }
        })?;
        serde_json::from_str(&text)
            .map_err(|e| Failure::other(format!("{} is damaged: {e}", path.display())))
    }

    pub fn write_settings(&self, settings: &Settings) -> Result<(), Failure> {
        let text = serde_json::to_string_pretty(settings)
            .map_err(|e| Failure::other(format!("settings: {e}")))?;
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
pub fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    mpay_fs::write_atomic(path, bytes)
        .map_err(|e| Failure::other(format!("cannot write {}: {e}", path.display())))
}

/// fsyncs a directory so a rename or a new file in it is durable.
pub fn sync_dir(dir: &Path) -> Result<(), Failure> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Failure::other(format!("cannot sync {}: {e}", dir.display())))
}

/// 32 bytes of OS randomness: the engine's RNG seed at every start, key
/// generation, idempotency keys.
pub fn os_random32() -> Result<[u8; 32], Failure> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| Failure::other(format!("no OS randomness: {e}")))?;
    Ok(seed)
}

/// The KDF parameters for a `--kdf` choice.
pub fn kdf_params(kdf: Kdf) -> mpay_wallet_store::KdfParams {
    match kdf {
        Kdf::Default => mpay_wallet_store::KdfParams::default(),
        Kdf::Fast => mpay_wallet_store::KdfParams::FAST_FOR_TESTS,
    }
}

/// Where a PIN comes from.
pub struct PinSource<'a> {
    pub file: Option<&'a Path>,
    pub env: &'static str,
    pub prompt: &'static str,
}

impl<'a> PinSource<'a> {
    /// The owner's current PIN: `--pin-file`, env `MPAY_PIN`, or a prompt.
    pub fn current(common: &'a Common) -> PinSource<'a> {
        PinSource {
            file: common.pin_file.as_deref(),
            env: "MPAY_PIN",
            prompt: "PIN: ",
        }
    }
}

/// Reads a PIN. From a file or the environment as given; otherwise from the
/// terminal without echo (asked twice when `confirm`), or one line of stdin
/// when stdin is not a terminal. Never printed.
pub fn read_pin(source: &PinSource<'_>, confirm: bool) -> Result<Zeroizing<String>, Failure> {
    let pin = if let Some(file) = source.file {
        let text = Zeroizing::new(
            fs::read(file)
                .map_err(|e| Failure::other(format!("cannot read {}: {e}", file.display())))?,
        );
        let first = text.split(|b| *b == b'\n').next().unwrap_or_default();
        let first = first.strip_suffix(b"\r").unwrap_or(first);
        if first.len() > PIN_LEN_MAX {
            return Err(Failure::other("the PIN file's first line is too long"));
        }
        Zeroizing::new(
            String::from_utf8(first.to_vec())
                .map_err(|_| Failure::other("the PIN file is not UTF-8"))?,
        )
    } else if let Ok(pin) = std::env::var(source.env) {
        Zeroizing::new(pin)
    } else if std::io::stdin().is_terminal() {
        let first = Zeroizing::new(
            rpassword::prompt_password(source.prompt)
                .map_err(|e| Failure::other(format!("cannot read the PIN: {e}")))?,
        );
        if confirm {
            let again = Zeroizing::new(
                rpassword::prompt_password("Repeat the PIN: ")
                    .map_err(|e| Failure::other(format!("cannot read the PIN: {e}")))?,
            );
            if *first != *again {
                return Err(Failure::other("the two PINs differ"));
            }
        }
        first
    } else {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .take_line(&mut line)
            .map_err(|e| Failure::other(format!("cannot read the PIN from stdin: {e}")))?;
        Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned())
    };
    if pin.is_empty() {
        return Err(Failure::other(format!(
            "no PIN given (use a prompt, --pin-file or {})",
            source.env
        )));
    }
    Ok(pin)
}

/// Reads one line, at most [`PIN_LEN_MAX`] bytes of it.
trait TakeLine {
    fn take_line(&mut self, into: &mut String) -> std::io::Result<()>;
}

impl<R: BufRead> TakeLine for R {
    fn take_line(&mut self, into: &mut String) -> std::io::Result<()> {
        let limit = u64::try_from(PIN_LEN_MAX).unwrap_or(u64::MAX) + 2;
        std::io::Read::take(self, limit).read_line(into)?;
        Ok(())
    }
}

/// Parses an amount given as one or two words: `12.50`, `12.50 EUR`,
/// `EUR 12.50`. Without a currency, `currency` is meant.
pub fn parse_amount(words: &[String], currency: Currency) -> Result<Amount, Failure> {
    crate::amount::parse(&words.join(" "), currency, crate::amount::Zero::Refused)
        .map_err(|e| Failure::other(e.to_string()))
}

/// Asks a yes/no question on the terminal; false unless answered yes.
pub fn ask_yes(question: &str) -> bool {
    print!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    if std::io::stdin().lock().take_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim(), "y" | "Y" | "yes" | "Yes")
}

/// Asks for a line on the terminal.
pub fn ask_line(question: &str) -> Option<String> {
    print!("{question}");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    std::io::stdin().lock().take_line(&mut line).ok()?;
    Some(line.trim().to_owned())
}
