//! A bank process's configuration file (TOML), read by `mpay serve bank`.
//!
//! ```toml
//! name = "bank1"                       # its entry in the directory
//! listen = "127.0.0.1:7801"
//! db = "sqlite:///abs/dir/bank1.db"    # or postgres://…
//! keys = "/abs/dir/bank1.keys"         # hex of its secret keys
//! certificate = "…hex…"                # issued by the scheme root
//! directory = "/abs/dir/network.toml"  # currency, scheme root, peer banks
//! accounts = ["cpp:cpp1"]              # holder accounts opened at start if missing
//!
//! [[tokens]]
//! token = "…"                          # ≥ 16 visible characters, never printed
//! caller = "cpp1"
//! accounts = ["cpp:cpp1"]              # its own account; or operator = true
//!                                      # (customers' accounts: by mandate)
//! ```
//!
//! Environment overrides: `MPAY_LISTEN`, `MPAY_DB`.

use std::fmt;
use std::path::Path;

use mpay_bank::{AccountPattern, ApiToken, BankConfig, BankIdentity, Caller, PeerBank};
use mpay_identity::{Certificate, hex_bytes};
use mpay_wire::Decode;
use serde::{Deserialize, Serialize};

use crate::Directory;
use crate::config::{ConfigError, ENV_DB, ENV_LISTEN, invalid, read_keys, read_text, write_text};

/// A value of the bank's file that does not hold, with what it is.
fn wrong(what: &str, error: impl fmt::Display) -> ConfigError {
    invalid(format!("{what}: {error}"))
}

/// One caller's token at the bank.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// The secret (≥ 16 visible characters; never printed).
    pub token: String,
    /// Who presents it (its name in the bank's logs).
    pub caller: String,
    /// The accounts it reaches (patterns such as `cpp:cpp1`).
    #[serde(default)]
    pub accounts: Vec<String>,
    /// The operator's token: every account, the books.
    #[serde(default)]
    pub operator: bool,
}

impl fmt::Debug for TokenEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenEntry")
            .field("token", &"<secret>")
            .field("caller", &self.caller)
            .field("accounts", &self.accounts)
            .field("operator", &self.operator)
            .finish()
    }
}

/// The file.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BankFile {
    /// Its entry in the directory.
    pub name: String,
    /// The address it listens on.
    pub listen: String,
    /// Its database URL (`sqlite://…` or `postgres://…`).
    pub db: String,
    /// The file of its secret keys.
    pub keys: String,
    /// Hex of its certificate, issued by the scheme root.
    pub certificate: String,
    /// The directory file (currency, scheme root, peer banks).
    pub directory: String,
    /// Holder accounts the bank opens at start if they are missing (the
    /// processors' own accounts), floor zero.
    #[serde(default)]
    pub accounts: Vec<String>,
    #[serde(default)]
    pub tokens: Vec<TokenEntry>,
    /// TLS: PEM certificate chain and key (0600) of the bank's listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<String>,
    /// The key of `tls_cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<String>,
}

/// What `mpay serve bank` needs, checked.
pub struct LoadedBank {
    /// Holder accounts to open at start if missing.
    pub accounts: Vec<mpay_bank::AccountId>,
    /// The address to listen on.
    pub listen: String,
    /// The database URL.
    pub db: String,
    /// Currency, scheme root, peers and tokens.
    pub config: BankConfig,
    /// Its keys and certificate.
    pub identity: BankIdentity,
    /// The listener's TLS configuration (None: plaintext).
    pub tls: Option<std::sync::Arc<mpay_tls::rustls::ServerConfig>>,
}

impl BankFile {
    /// Reads `path` and applies the environment overrides ([`ENV_LISTEN`],
    /// [`ENV_DB`]).
    pub fn load(path: &Path) -> Result<BankFile, ConfigError> {
        let text = read_text(path)?;
        let mut file: BankFile = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        if let Ok(listen) = std::env::var(ENV_LISTEN) {
            file.listen = listen;
        }
        if let Ok(db) = std::env::var(ENV_DB) {
            file.db = db;
        }
        Ok(file)
    }

    /// Writes the file (it holds tokens: created 0600, atomically).
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let text =
            toml::to_string(self).map_err(|e| wrong("encoding the bank configuration", e))?;
        write_text(path, &text)
    }

    /// Resolves the directory (currency, scheme root, peers = every other
    /// bank), the keys and the tokens.
    pub fn resolve(&self, now: mpay_identity::Timestamp) -> Result<LoadedBank, ConfigError> {
        let directory = Directory::load(&self.directory)?;
        let resolved = directory.resolve(now)?;
        if resolved.bank(&self.name).is_none() {
            return Err(invalid(format!(
                "bank `{}` is not in the directory {}",
                self.name, self.directory
            )));
        }
        let mut config = BankConfig::new(resolved.currency, vec![resolved.root.clone()]);
        config.tls_ca = resolved.tls_ca.clone();
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(
                mpay_tls::server_config(Path::new(cert), Path::new(key))
                    .map_err(|e| wrong("TLS", e))?,
            ),
            (None, None) => None,
            _ => return Err(invalid("tls_cert and tls_key go together")),
        };
        for bank in &resolved.banks {
            if bank.name != self.name {
                let peer = PeerBank::new(bank.id, &bank.url, bank.certificate.clone())
                    .map_err(|e| wrong(&format!("peer bank {}", bank.name), e))?;
                config.peers.push(peer);
            }
        }
        for entry in &self.tokens {
            let what = format!("the token of {}", entry.caller);
            let caller = if entry.operator {
                Caller::operator(&entry.caller).map_err(|e| wrong(&what, e))?
            } else {
                let patterns = entry
                    .accounts
                    .iter()
                    .map(|p| AccountPattern::parse(p))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| wrong(&what, e))?;
                Caller::new(&entry.caller, patterns).map_err(|e| wrong(&what, e))?
            };
            let token = ApiToken::new(entry.token.clone(), caller).map_err(|e| wrong(&what, e))?;
            config.tokens.push(token);
        }
        let keys = read_keys(Path::new(&self.keys))?;
        let bytes = hex_bytes(&self.certificate).ok_or_else(|| invalid("certificate: not hex"))?;
        let certificate = Certificate::from_wire(&bytes).map_err(|e| wrong("certificate", e))?;
        let identity =
            BankIdentity::new(keys, certificate).map_err(|e| wrong("the bank's identity", e))?;
        let accounts = self
            .accounts
            .iter()
            .map(|a| mpay_bank::AccountId::parse(a))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| wrong("accounts", e))?;
        Ok(LoadedBank {
            accounts,
            listen: self.listen.clone(),
            db: self.db.clone(),
            config,
            identity,
            tls,
        })
    }
}

/// Why a bank process could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum BankServeError {
    /// Its file, keys or directory is wrong (the operator's fault).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database could not be opened.
    #[error("opening {url}: {error}")]
    Db {
        /// The database URL, its password redacted.
        url: String,
        /// What went wrong.
        error: mpay_sql::DbError,
    },
    /// The bank refused to open (migrations, tokens) or to open a
    /// configured account.
    #[error("{what}: {error}")]
    Bank {
        /// What was being done.
        what: String,
        /// The bank's error.
        error: mpay_bank::BankError,
    },
    /// OS randomness, the interbank client's TLS, or serving.
    #[error("{0}")]
    Failed(String),
}

/// `mpay serve bank`: opens the bank of the file at `path`, opens the
/// configured holder accounts that do not exist yet, starts the interbank
/// delivery and serves until the task is dropped.
pub async fn serve(path: &Path) -> Result<(), BankServeError> {
    let now = crate::wall_clock();
    let loaded = BankFile::load(path)?.resolve(now)?;
    let db = mpay_sql::Db::connect(&loaded.db)
        .await
        .map_err(|error| BankServeError::Db {
            url: crate::config::redact_url(&loaded.db),
            error,
        })?;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| BankServeError::Failed(format!("OS randomness: {e}")))?;
    let bank = mpay_bank::Bank::open(db, loaded.config, Some(loaded.identity), seed, now)
        .await
        .map_err(|error| BankServeError::Bank {
            what: "opening the bank".into(),
            error,
        })?;
    let bank = std::sync::Arc::new(bank);
    open_configured_accounts(&bank, &loaded.accounts, now).await?;
    let _background = mpay_bank::spawn_background(std::sync::Arc::clone(&bank))
        .map_err(|e| BankServeError::Failed(format!("the interbank client: {e}")))?;
    let listener = tokio::net::TcpListener::bind(&loaded.listen)
        .await
        .map_err(|e| BankServeError::Failed(format!("listening on {}: {e}", loaded.listen)))?;
    tracing::info!(listen = %loaded.listen, "bank serving");
    mpay_bank::service::serve_tls(bank, listener, loaded.tls)
        .await
        .map_err(|e| BankServeError::Failed(format!("serving: {e}")))
}

/// Opens the configured holder accounts that do not exist yet.
async fn open_configured_accounts(
    bank: &mpay_bank::Bank,
    accounts: &[mpay_bank::AccountId],
    now: mpay_identity::Timestamp,
) -> Result<(), BankServeError> {
    let operator = Caller::operator("configuration").map_err(|e| BankServeError::Failed(e.0))?;
    for account in accounts {
        let request = mpay_bank::OpenAccount {
            account: account.clone(),
            holder: account.to_string(),
            floor: mpay_money::Amount::new(0, bank.currency()),
        };
        match bank
            .open_account(&operator, &format!("configured:{account}"), &request, now)
            .await
        {
            Ok(_) | Err(mpay_bank::BankError::AccountExists(_)) => {}
            Err(error) => {
                return Err(BankServeError::Bank {
                    what: format!("opening {account}"),
                    error,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serving_a_missing_or_broken_file_names_it() {
        let error = serve(Path::new("/nowhere/bank9.toml"))
            .await
            .expect_err("no file");
        assert!(matches!(error, BankServeError::Config(_)), "{error:?}");
        assert!(error.to_string().contains("bank9.toml"), "{error}");
        let dir = tempfile::tempdir().expect("a folder");
        let path = dir.path().join("bank8.toml");
        std::fs::write(&path, "name = [").expect("written");
        let error = serve(&path).await.expect_err("broken");
        assert!(error.to_string().contains("bank8.toml"), "{error}");
    }

    fn file(dir: &Path) -> BankFile {
        BankFile {
            name: "bank1".into(),
            listen: "127.0.0.1:7801".into(),
            db: "sqlite::memory:".into(),
            keys: dir.join("bank1.keys").display().to_string(),
            certificate: "00".into(),
            directory: dir.join("network.toml").display().to_string(),
            accounts: vec!["cpp:cpp1".into()],
            tokens: vec![TokenEntry {
                token: "a-secret-token-of-the-bank".into(),
                caller: "cpp1".into(),
                accounts: vec!["cpp:cpp1".into()],
                operator: false,
            }],
            tls_cert: None,
            tls_key: None,
        }
    }

    #[test]
    fn round_trips_owner_only_and_never_prints_a_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bank1.toml");
        let written = file(dir.path());
        written.save(&path).unwrap();
        assert_eq!(BankFile::load(&path).unwrap(), written);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
        assert!(!format!("{written:?}").contains("a-secret-token"));
    }

    #[test]
    fn a_wrong_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bank1.toml");
        std::fs::write(&path, "name = \"bank1\"\nsurprise = 1\n").unwrap();
        let error = BankFile::load(&path).unwrap_err().to_string();
        assert!(error.contains("bank1.toml"), "{error}");
        let missing = BankFile::load(&dir.path().join("none.toml")).unwrap_err();
        assert!(matches!(missing, ConfigError::Io { .. }), "{missing}");
        // A directory that cannot be read is named before anything else.
        let error = file(dir.path())
            .resolve(mpay_identity::Timestamp(0))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("network.toml"), "{error}");
    }
}
