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

use anyhow::{Context, bail};
use mpay_bank::{AccountPattern, ApiToken, BankConfig, BankIdentity, Caller, PeerBank};
use mpay_identity::{Certificate, hex_bytes};
use mpay_network::Directory;
use mpay_network::config::{ENV_DB, ENV_LISTEN, read_keys};
use mpay_wire::Decode;
use serde::{Deserialize, Serialize};

/// One caller's token at the bank.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    pub token: String,
    pub caller: String,
    #[serde(default)]
    pub accounts: Vec<String>,
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
    pub name: String,
    pub listen: String,
    pub db: String,
    pub keys: String,
    pub certificate: String,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<String>,
}

/// What `mpay serve bank` needs, checked.
pub struct LoadedBank {
    pub accounts: Vec<mpay_bank::AccountId>,
    pub listen: String,
    pub db: String,
    pub config: BankConfig,
    pub identity: BankIdentity,
    /// The listener's TLS configuration (None: plaintext).
    pub tls: Option<std::sync::Arc<mpay_tls::rustls::ServerConfig>>,
}

impl BankFile {
    pub fn load(path: &Path) -> anyhow::Result<BankFile> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut file: BankFile =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        if let Ok(listen) = std::env::var(ENV_LISTEN) {
            file.listen = listen;
        }
        if let Ok(db) = std::env::var(ENV_DB) {
            file.db = db;
        }
        Ok(file)
    }

    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let text = toml::to_string(self).context("encoding the bank configuration")?;
        super::provision::write_private(path, &text)
    }

    /// Resolves the directory (currency, scheme root, peers = every other
    /// bank), the keys and the tokens.
    pub fn resolve(&self, now: mpay_identity::Timestamp) -> anyhow::Result<LoadedBank> {
        let directory = Directory::load(&self.directory)?;
        let resolved = directory.resolve(now)?;
        if resolved.bank(&self.name).is_none() {
            bail!(
                "bank `{}` is not in the directory {}",
                self.name,
                self.directory
            );
        }
        let mut config = BankConfig::new(resolved.currency, vec![resolved.root.clone()]);
        config.tls_ca = resolved.tls_ca.clone();
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                Some(mpay_tls::server_config(Path::new(cert), Path::new(key))?)
            }
            (None, None) => None,
            _ => bail!("tls_cert and tls_key go together"),
        };
        for bank in &resolved.banks {
            if bank.name != self.name {
                config
                    .peers
                    .push(PeerBank::new(bank.id, &bank.url, bank.certificate.clone())?);
            }
        }
        for entry in &self.tokens {
            let caller = if entry.operator {
                Caller::operator(&entry.caller)?
            } else {
                let patterns = entry
                    .accounts
                    .iter()
                    .map(|p| AccountPattern::parse(p))
                    .collect::<Result<Vec<_>, _>>()?;
                Caller::new(&entry.caller, patterns)?
            };
            config
                .tokens
                .push(ApiToken::new(entry.token.clone(), caller)?);
        }
        let keys = read_keys(Path::new(&self.keys))?;
        let bytes = hex_bytes(&self.certificate).context("certificate: not hex")?;
        let certificate = Certificate::from_wire(&bytes).context("certificate")?;
        let identity = BankIdentity::new(keys, certificate)?;
        let accounts = self
            .accounts
            .iter()
            .map(|a| mpay_bank::AccountId::parse(a))
            .collect::<Result<Vec<_>, _>>()?;
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
