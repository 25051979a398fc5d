//! One TOML file per service process (CPP, MPP or DC), with environment
//! overrides for what differs between a developer's machine and a
//! deployment: `MPAY_LISTEN`, `MPAY_DB`, `MPAY_OPERATOR_TOKEN`.
//!
//! ```toml
//! name = "cpp1"                       # a service of the directory
//! listen = "127.0.0.1:7811"
//! db = "sqlite:///var/lib/mpay/cpp1.db" # or postgres://…
//! keys = "/etc/mpay/cpp1.keys"        # hex of SecretKeys::to_secret_bytes
//! directory = "/etc/mpay/directory.toml"
//! operator_token = "…at least 16 characters…"
//! pin_failures_max = 5                # CPP only
//! pin_keys = "/etc/mpay/cpp1.pin-keys" # CPP only: PIN verification keys
//!
//! [bank_tokens]                       # bank name → this service's token there
//! bank1 = "…"
//!
//! [timing]                            # every field optional (defaults below)
//! decision_timeout_ms = 120000
//! ```
//!
//! Secrets (the operator token, bank tokens) never print: `Debug` redacts
//! them, and no error carries them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use mpay_identity::{SecretKeys, hex_bytes, hex_string};
use mpay_semops::{PIN_KEY_LEN, PinKey, PinKeys};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Environment variable overriding [`ServiceConfig::listen`].
pub const ENV_LISTEN: &str = "MPAY_LISTEN";
/// Environment variable overriding [`ServiceConfig::db`].
pub const ENV_DB: &str = "MPAY_DB";
/// Environment variable overriding [`ServiceConfig::operator_token`].
pub const ENV_OPERATOR_TOKEN: &str = "MPAY_OPERATOR_TOKEN";
/// Shortest operator or bank token accepted.
pub const TOKEN_LEN_MIN: usize = 16;
/// Largest configuration or directory file read, bytes.
pub const CONFIG_FILE_LEN_MAX: u64 = 4 << 20;

/// A configuration or directory file is missing, unreadable or wrong (the
/// operator's fault). Never carries a token or a key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A value is wrong.
    #[error("configuration: {0}")]
    Invalid(String),
}

pub(crate) fn invalid(message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(message.into())
}

/// Reads a text file of at most [`CONFIG_FILE_LEN_MAX`] bytes.
pub(crate) fn read_text(path: &Path) -> Result<String, ConfigError> {
    let io = |source| ConfigError::Io {
        path: path.to_owned(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > CONFIG_FILE_LEN_MAX {
        return Err(ConfigError::Parse {
            path: path.to_owned(),
            message: format!("larger than {CONFIG_FILE_LEN_MAX} bytes"),
        });
    }
    std::fs::read_to_string(path).map_err(io)
}

/// Writes `text` to `path` with [`mpay_fs::write_atomic`]: a reader never
/// sees half a file, and the file (it may hold tokens) is the owner's only
/// from the start.
pub(crate) fn write_text(path: &Path, text: &str) -> Result<(), ConfigError> {
    mpay_fs::write_atomic(path, text.as_bytes()).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Named intervals, budgets and time limits of a service, all in
/// milliseconds. Every field has a default, so a config file may leave out
/// the table or any field of it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Timing {
    /// Pause of the outbox sweep that retries failed deliveries. New
    /// messages do not wait for it: every commit that enqueues one wakes the
    /// delivery loop at once.
    pub delivery_interval_ms: u64,
    /// What each forwarding hop keeps for itself out of a PN's deadline
    /// ([`mpay_semops::RoutedNotice::forward`]).
    pub hop_budget_ms: u64,
    /// CPP: how long the merchant has to decide (the PN deadline is the
    /// earlier of this and the TRANS's expiry).
    pub decision_timeout_ms: u64,
    /// CPP: pause of the sweep that expires pending payments past their
    /// deadline.
    pub expiry_interval_ms: u64,
    /// CPP, MPP: pause of the sweep that resumes saga steps left half done
    /// (bank unreachable, crash).
    pub recovery_interval_ms: u64,
    /// CPP: how long after the payment's deadline the bank keeps the hold,
    /// so that an approval right at the deadline can still post it.
    pub hold_grace_ms: u64,
    /// Time limit of one HTTP request to a bank or another service.
    pub http_timeout_ms: u64,
    /// Longest a long-poll (`status`, `notices`) waits.
    pub long_poll_max_ms: u64,
    /// Validity of the certificates a CPP issues to customer devices and an
    /// MPP to merchants.
    pub certificate_validity_ms: u64,
}

/// Default [`Timing::delivery_interval_ms`].
pub const DELIVERY_INTERVAL_MS_DEFAULT: u64 = 500;
/// Default [`Timing::hop_budget_ms`].
pub const HOP_BUDGET_MS_DEFAULT: u64 = 2_000;
/// Default [`Timing::decision_timeout_ms`].
pub const DECISION_TIMEOUT_MS_DEFAULT: u64 = 120_000;
/// Default [`Timing::expiry_interval_ms`].
pub const EXPIRY_INTERVAL_MS_DEFAULT: u64 = 500;
/// Default [`Timing::recovery_interval_ms`].
pub const RECOVERY_INTERVAL_MS_DEFAULT: u64 = 1_000;
/// Default [`Timing::hold_grace_ms`].
pub const HOLD_GRACE_MS_DEFAULT: u64 = 10 * 60 * 1_000;
/// Default [`Timing::http_timeout_ms`].
pub const HTTP_TIMEOUT_MS_DEFAULT: u64 = 5_000;
/// Default [`Timing::long_poll_max_ms`].
pub const LONG_POLL_MAX_MS_DEFAULT: u64 = 30_000;
/// Default [`Timing::certificate_validity_ms`].
pub const CERTIFICATE_VALIDITY_MS_DEFAULT: u64 = 365 * mpay_identity::MILLIS_PER_DAY;

impl Default for Timing {
    fn default() -> Self {
        Timing {
            delivery_interval_ms: DELIVERY_INTERVAL_MS_DEFAULT,
            hop_budget_ms: HOP_BUDGET_MS_DEFAULT,
            decision_timeout_ms: DECISION_TIMEOUT_MS_DEFAULT,
            expiry_interval_ms: EXPIRY_INTERVAL_MS_DEFAULT,
            recovery_interval_ms: RECOVERY_INTERVAL_MS_DEFAULT,
            hold_grace_ms: HOLD_GRACE_MS_DEFAULT,
            http_timeout_ms: HTTP_TIMEOUT_MS_DEFAULT,
            long_poll_max_ms: LONG_POLL_MAX_MS_DEFAULT,
            certificate_validity_ms: CERTIFICATE_VALIDITY_MS_DEFAULT,
        }
    }
}

impl Timing {
    /// How long a delivery run holds the outbox messages it claims: one
    /// send (a run's sends go concurrently, each bounded by
    /// [`Timing::http_timeout_ms`]).
    pub fn claim_lease_ms(&self) -> i64 {
        mpay_sql::outbox::claim_lease_ms(self.http_timeout_ms)
    }

    fn check(&self) -> Result<(), ConfigError> {
        for (name, value) in [
            ("delivery_interval_ms", self.delivery_interval_ms),
            ("hop_budget_ms", self.hop_budget_ms),
            ("decision_timeout_ms", self.decision_timeout_ms),
            ("expiry_interval_ms", self.expiry_interval_ms),
            ("recovery_interval_ms", self.recovery_interval_ms),
            ("http_timeout_ms", self.http_timeout_ms),
            ("certificate_validity_ms", self.certificate_validity_ms),
        ] {
            if value == 0 {
                return Err(invalid(format!("timing.{name} must be positive")));
            }
        }
        if self.hop_budget_ms.saturating_mul(4) > self.decision_timeout_ms {
            return Err(invalid(
                "timing.decision_timeout_ms must leave room for four hop budgets",
            ));
        }
        Ok(())
    }
}

/// A setting that is no longer read: accepted with any value so that older
/// files still load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retired;

impl<'de> Deserialize<'de> for Retired {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Retired, D::Error> {
        serde::de::IgnoredAny::deserialize(d)?;
        Ok(Retired)
    }
}

/// Who aggregates micropayments (DESIGN §3.3, paper 002 §III).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum MicroMode {
    /// No aggregation: every payment is a macro payment with a hold.
    #[default]
    None,
    /// One intermediary: the CPP aggregates customers' micropayments and
    /// pays the merchants' MPPs by net settlement; an MPP passes each
    /// settlement straight on to its merchants.
    One,
    /// Two intermediaries: as [`MicroMode::One`], and the MPP also
    /// aggregates what it owes each merchant and pays out in batches,
    /// advancing money within its credit limit.
    Two,
}

/// Micropayment aggregation of a CPP or MPP: the `[micro]` table. Amounts
/// are written as "1.00 EUR" in the network's currency. Every field has a
/// default, so a file may leave out the table or any field of it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct MicroConfig {
    /// Who aggregates; `none` switches micropayments off.
    pub mode: MicroMode,
    /// CPP: the largest micropayment; above it a payment is macro.
    pub limit: String,
    /// CPP: θ of the default cluster (customers `mpay cpp recluster` has
    /// not placed).
    pub theta: String,
    /// CPP: W of the default cluster, the longest a pending total waits.
    pub window_ms: u64,
    /// CPP: the most its customers may owe it at once (Σ pending totals);
    /// a micropayment beyond it is taken as a macro payment. MPP (mode
    /// two): the most it pays merchants ahead of the CPPs' settlements.
    pub credit_limit: String,
    /// CPP: the fixed fee of one bank transfer, which `mpay cpp recluster`
    /// weighs against expected losses.
    pub transfer_fee: String,
    /// CPP: pause of the window sweep (and of the retry of settlement
    /// batches left unfinished).
    pub sweep_interval_ms: u64,
    /// CPP: pause between net settlement runs toward the MPPs. MPP (mode
    /// two): pause between payout runs to the merchants.
    pub settle_interval_ms: u64,
}

/// Default [`MicroConfig::limit`].
pub const MICRO_LIMIT_DEFAULT: &str = "1.00 EUR";
/// Default [`MicroConfig::theta`].
pub const MICRO_THETA_DEFAULT: &str = "10.00 EUR";
/// Default [`MicroConfig::window_ms`]: one day.
pub const MICRO_WINDOW_MS_DEFAULT: u64 = mpay_identity::MILLIS_PER_DAY;
/// Default [`MicroConfig::credit_limit`].
pub const MICRO_CREDIT_LIMIT_DEFAULT: &str = "10000.00 EUR";
/// Default [`MicroConfig::transfer_fee`].
pub const MICRO_TRANSFER_FEE_DEFAULT: &str = "0.20 EUR";
/// Default [`MicroConfig::sweep_interval_ms`].
pub const MICRO_SWEEP_INTERVAL_MS_DEFAULT: u64 = 1_000;
/// Default [`MicroConfig::settle_interval_ms`].
pub const MICRO_SETTLE_INTERVAL_MS_DEFAULT: u64 = 60_000;

impl Default for MicroConfig {
    fn default() -> Self {
        MicroConfig {
            mode: MicroMode::None,
            limit: MICRO_LIMIT_DEFAULT.to_owned(),
            theta: MICRO_THETA_DEFAULT.to_owned(),
            window_ms: MICRO_WINDOW_MS_DEFAULT,
            credit_limit: MICRO_CREDIT_LIMIT_DEFAULT.to_owned(),
            transfer_fee: MICRO_TRANSFER_FEE_DEFAULT.to_owned(),
            sweep_interval_ms: MICRO_SWEEP_INTERVAL_MS_DEFAULT,
            settle_interval_ms: MICRO_SETTLE_INTERVAL_MS_DEFAULT,
        }
    }
}

/// [`MicroConfig`] parsed and checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MicroSettings {
    /// Who aggregates.
    pub mode: MicroMode,
    /// The default cluster's limits (micro limit, θ, W).
    pub limits: mpay_micro::policy::MicroLimits,
    /// The credit limit.
    pub credit_limit: mpay_money::Amount,
    /// The fee of one bank transfer.
    pub transfer_fee: mpay_money::Amount,
}

impl MicroConfig {
    /// Parses the amounts and checks every value.
    pub fn settings(&self) -> Result<MicroSettings, ConfigError> {
        // Every amount is at most AMOUNT_MINOR_MAX, as the bank's are: the
        // pending totals and credit checks sum them.
        let amount = |what: &str, text: &str| {
            let amount = mpay_money::Amount::parse(text)
                .map_err(|e| invalid(format!("micro.{what} `{text}`: {e}")))?;
            amount
                .check_bounded()
                .map_err(|e| invalid(format!("micro.{what} `{text}`: {e}")))?;
            Ok(amount)
        };
        let limit = amount("limit", &self.limit)?;
        let theta = amount("theta", &self.theta)?;
        let credit_limit = amount("credit_limit", &self.credit_limit)?;
        let transfer_fee = amount("transfer_fee", &self.transfer_fee)?;
        let limits = mpay_micro::policy::MicroLimits::new(limit, theta, self.window_ms)
            .map_err(|e| invalid(format!("micro limits: {e}")))?;
        if credit_limit.currency() != limit.currency()
            || transfer_fee.currency() != limit.currency()
            || credit_limit.is_negative()
            || transfer_fee.is_negative()
        {
            return Err(invalid(
                "micro amounts must be of one currency, and not negative",
            ));
        }
        if self.sweep_interval_ms == 0 || self.settle_interval_ms == 0 {
            return Err(invalid("micro intervals must be positive"));
        }
        Ok(MicroSettings {
            mode: self.mode,
            limits,
            credit_limit,
            transfer_fee,
        })
    }
}

/// The configuration of one CPP, MPP or DC process.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Must match a [`crate::ServiceEntry`] of the directory.
    pub name: String,
    /// Address to listen on, e.g. `127.0.0.1:7811`.
    pub listen: String,
    /// `sqlite:///abs/path/cpp1.db` or `postgres://…`.
    pub db: String,
    /// Path of a file holding hex(`SecretKeys::to_secret_bytes`).
    pub keys: String,
    /// Path of the directory TOML.
    pub directory: String,
    /// Bearer token of the operator routes (at least [`TOKEN_LEN_MIN`]
    /// characters; never printed).
    pub operator_token: String,
    /// Bank name → this service's token at that bank.
    #[serde(default)]
    pub bank_tokens: BTreeMap<String, String>,
    /// Named intervals and time limits.
    #[serde(default)]
    pub timing: Timing,
    /// CPP: lock a customer after this many wrong PINs in a row (default
    /// [`mpay_semops::PIN_FAILURES_MAX_DEFAULT`]).
    #[serde(default)]
    pub pin_failures_max: Option<u32>,
    /// CPP: path of the file of PIN verification keys ([`read_pin_keys`]),
    /// kept apart from the database (DESIGN §3.2). Required for a CPP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_keys: Option<String>,
    /// No longer read: PINs are checked by keyed verification values, not
    /// Argon2id hashes. Accepted so that older files still load; the CPP
    /// logs a warning when it is present.
    #[serde(default, skip_serializing)]
    pub pin_cost: Option<Retired>,
    /// CPP, MPP: micropayment aggregation (off by default).
    #[serde(default)]
    pub micro: MicroConfig,
    /// TLS: PEM file of this service's certificate chain (with
    /// [`ServiceConfig::tls_key`]; both or neither). None: plaintext HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<String>,
    /// TLS: PEM file of its private key (mode 0600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<String>,
    /// Lets this service send its bank tokens over plaintext `http://` to
    /// a loopback host (never to any other). Off: tokens go over
    /// `https://` only.
    #[serde(default)]
    pub allow_plaintext_loopback: bool,
}

impl fmt::Debug for ServiceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceConfig")
            .field("name", &self.name)
            .field("listen", &self.listen)
            .field("db", &redact_url(&self.db))
            .field("keys", &self.keys)
            .field("directory", &self.directory)
            .field("operator_token", &"<secret>")
            .field("bank_tokens", &self.bank_tokens.keys().collect::<Vec<_>>())
            .field("timing", &self.timing)
            .field("pin_failures_max", &self.pin_failures_max)
            .field("pin_keys", &self.pin_keys)
            .field("micro", &self.micro)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("allow_plaintext_loopback", &self.allow_plaintext_loopback)
            .finish()
    }
}

/// A database URL without its password, for logs.
pub fn redact_url(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    match (rest.find('@'), rest.find(':')) {
        (Some(at), Some(colon)) if colon < at => {
            format!("{}{}:***{}", &url[..start], &rest[..colon], &rest[at..])
        }
        _ => url.to_owned(),
    }
}

impl ServiceConfig {
    /// Reads `path`, applies the environment overrides ([`ENV_LISTEN`],
    /// [`ENV_DB`], [`ENV_OPERATOR_TOKEN`]) and checks the values.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let mut config = Self::from_toml(&read_text(path)?).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })?;
        config.apply_env(|name| std::env::var(name).ok());
        config.check()?;
        Ok(config)
    }

    /// Parses TOML text (no environment, no checks).
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("<text>"),
            message: e.to_string(),
        })
    }

    /// Writes the configuration as TOML (for provisioning); the file holds
    /// secrets, so it is created 0600 ([`mpay_fs::write_atomic`]).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), ConfigError> {
        let text = toml::to_string(self).map_err(|e| invalid(format!("encoding: {e}")))?;
        write_text(path.as_ref(), &text)
    }

    /// Applies the overrides `env` finds (a function, so tests need not
    /// touch the process environment).
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) {
        if let Some(listen) = env(ENV_LISTEN) {
            self.listen = listen;
        }
        if let Some(db) = env(ENV_DB) {
            self.db = db;
        }
        if let Some(token) = env(ENV_OPERATOR_TOKEN) {
            self.operator_token = token;
        }
    }

    /// Checks every value that can be checked without the directory.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.name.is_empty() {
            return Err(invalid("name is empty"));
        }
        if self.listen.is_empty() || self.db.is_empty() || self.keys.is_empty() {
            return Err(invalid("listen, db and keys must be set"));
        }
        check_token("operator_token", &self.operator_token)?;
        for (bank, token) in &self.bank_tokens {
            check_token(&format!("bank_tokens.{bank}"), token)?;
        }
        if self.pin_failures_max == Some(0) {
            return Err(invalid("pin_failures_max must be at least 1"));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(invalid("tls_cert and tls_key go together"));
        }
        self.micro.settings()?;
        self.timing.check()
    }

    /// The TLS server configuration of [`ServiceConfig::tls_cert`] and
    /// [`ServiceConfig::tls_key`], if set.
    pub fn server_tls(
        &self,
    ) -> Result<Option<std::sync::Arc<mpay_tls::rustls::ServerConfig>>, ConfigError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => mpay_tls::server_config(Path::new(cert), Path::new(key))
                .map(Some)
                .map_err(|e| invalid(format!("TLS: {e}"))),
            (None, None) => Ok(None),
            _ => Err(invalid("tls_cert and tls_key go together")),
        }
    }

    /// Whether this service may send tokens over plaintext to loopback
    /// (its setting, or [`mpay_tls::ENV_ALLOW_PLAINTEXT_LOOPBACK`]).
    pub fn plaintext(&self) -> mpay_tls::Plaintext {
        mpay_tls::Plaintext::from_flag(self.allow_plaintext_loopback).or_env()
    }

    /// Wrong PINs in a row that lock a customer.
    pub fn pin_failures_max(&self) -> u32 {
        self.pin_failures_max
            .unwrap_or(mpay_semops::PIN_FAILURES_MAX_DEFAULT)
    }

    /// Reads the service's secret keys from [`ServiceConfig::keys`].
    pub fn load_keys(&self) -> Result<SecretKeys, ConfigError> {
        read_keys(Path::new(&self.keys))
    }

    /// Reads the CPP's PIN verification keys from [`ServiceConfig::pin_keys`].
    pub fn load_pin_keys(&self) -> Result<PinKeys, ConfigError> {
        let path = self.pin_keys.as_deref().ok_or_else(|| {
            invalid(
                "a CPP needs `pin_keys`, the file of its PIN verification keys \
                 (`mpay semops pin-key new FILE` makes one)",
            )
        })?;
        read_pin_keys(Path::new(path))
    }

    /// Reads the directory named by [`ServiceConfig::directory`].
    pub fn load_directory(&self) -> Result<crate::Directory, ConfigError> {
        crate::Directory::load(&self.directory)
    }

    /// This service's token at bank `bank`.
    pub fn bank_token(&self, bank: &str) -> Result<&str, ConfigError> {
        self.bank_tokens
            .get(bank)
            .map(String::as_str)
            .ok_or_else(|| invalid(format!("no bank_tokens entry for bank `{bank}`")))
    }
}

fn check_token(what: &str, token: &str) -> Result<(), ConfigError> {
    if token.len() < TOKEN_LEN_MIN || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(format!(
            "{what} must be at least {TOKEN_LEN_MIN} visible ASCII characters"
        )));
    }
    Ok(())
}

/// Reads secret keys stored as hex of `SecretKeys::to_secret_bytes`
/// (surrounding whitespace ignored). The error never shows the file's text.
pub fn read_keys(path: &Path) -> Result<SecretKeys, ConfigError> {
    let text = Zeroizing::new(read_text(path)?);
    let bytes = Zeroizing::new(hex_bytes(text.trim()).ok_or_else(|| ConfigError::Parse {
        path: path.to_owned(),
        message: "not hex".into(),
    })?);
    SecretKeys::from_secret_bytes(&bytes).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: format!("secret keys: {e}"),
    })
}

/// Reads a CPP's PIN verification keys: one key per line as 64 hex digits,
/// the current key first, then the keys it replaced, newest first; blank
/// lines and lines starting with `#` are skipped. The file must be readable
/// by its owner only (mode 0600): whoever reads it and the database can
/// test every PIN. The error never shows the file's text.
pub fn read_pin_keys(path: &Path) -> Result<PinKeys, ConfigError> {
    let parse = |message: String| ConfigError::Parse {
        path: path.to_owned(),
        message,
    };
    check_owner_only(path)?;
    let text = Zeroizing::new(read_text(path)?);
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let secret = hex_bytes(line)
            .and_then(|bytes| <[u8; PIN_KEY_LEN]>::try_from(bytes.as_slice()).ok())
            .ok_or_else(|| {
                parse(format!(
                    "line {}: a PIN key is {} hex digits",
                    n + 1,
                    2 * PIN_KEY_LEN
                ))
            })?;
        keys.push(PinKey::new(secret));
    }
    PinKeys::new(keys).map_err(|e| parse(e.to_string()))
}

/// Writes `keys` to `path` in the form [`read_pin_keys`] reads (mode 0600,
/// atomically).
pub fn write_pin_keys(path: &Path, keys: &PinKeys) -> Result<(), ConfigError> {
    let mut text = Zeroizing::new(String::from(
        "# mpay PIN verification keys: the current key first, then the keys it\n\
         # replaced (newest first). Keep this file apart from the database.\n",
    ));
    for key in keys.all() {
        text.push_str(&hex_string(key.expose()));
        text.push('\n');
    }
    write_text(path, &text)
}

#[cfg(unix)]
fn check_owner_only(path: &Path) -> Result<(), ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(ConfigError::Parse {
            path: path.to_owned(),
            message: format!(
                "the PIN key file is readable by others (mode {:o}); `chmod 600` it",
                mode & 0o777
            ),
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_owner_only(_path: &Path) -> Result<(), ConfigError> {
    Ok(())
}

/// Writes `keys` as hex to `path` (mode 0600 on Unix), for provisioning.
pub fn write_keys(path: &Path, keys: &SecretKeys) -> Result<(), ConfigError> {
    let text = Zeroizing::new(hex_string(&keys.to_secret_bytes()));
    write_text(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"
name = "cpp1"
listen = "127.0.0.1:7811"
db = "postgres://u:pw@h/db"
keys = "/k"
directory = "/d"
operator_token = "operator-token-0000001"
[bank_tokens]
bank1 = "bank1-token-00000000001"
[timing]
decision_timeout_ms = 60000
"#;

    #[test]
    fn parses_with_defaults_and_env_overrides() {
        let mut config = ServiceConfig::from_toml(TEXT).unwrap();
        assert_eq!(config.timing.decision_timeout_ms, 60_000);
        assert_eq!(config.timing.hop_budget_ms, HOP_BUDGET_MS_DEFAULT);
        assert_eq!(config.pin_failures_max(), 5);
        config.check().unwrap();
        config.apply_env(|name| match name {
            ENV_LISTEN => Some("0.0.0.0:1".into()),
            ENV_OPERATOR_TOKEN => Some("short".into()),
            _ => None,
        });
        assert_eq!(config.listen, "0.0.0.0:1");
        assert_eq!(config.db, "postgres://u:pw@h/db");
        assert!(config.check().is_err(), "a short operator token is refused");
    }

    #[test]
    fn secrets_never_print() {
        let config = ServiceConfig::from_toml(TEXT).unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("operator-token"));
        assert!(!shown.contains("bank1-token"));
        assert!(!shown.contains("pw@"));
        assert!(shown.contains("bank1"));
    }

    #[test]
    fn micro_table_has_defaults_and_is_checked() {
        let config = ServiceConfig::from_toml(TEXT).unwrap();
        assert_eq!(config.micro.mode, MicroMode::None);
        let text = format!("{TEXT}\n[micro]\nmode = \"two\"\ntheta = \"5.00 EUR\"\n");
        let config = ServiceConfig::from_toml(&text).unwrap();
        let settings = config.micro.settings().unwrap();
        assert_eq!(settings.mode, MicroMode::Two);
        assert_eq!(settings.limits.theta().minor_units(), 500);
        assert_eq!(settings.limits.micro_max().minor_units(), 100);
        let mut bad = config.clone();
        for (field, text) in [
            ("limit", "1000.01 EUR"),
            ("theta", "10000000000000.01 EUR"),
            ("credit_limit", "92233720368547758.07 EUR"),
            ("transfer_fee", "10000000000000.01 EUR"),
        ] {
            let mut huge = config.micro.clone();
            match field {
                "limit" => huge.limit = text.into(),
                "theta" => huge.theta = text.into(),
                "credit_limit" => huge.credit_limit = text.into(),
                _ => huge.transfer_fee = text.into(),
            }
            assert!(huge.settings().is_err(), "micro.{field} = {text} accepted");
        }
        bad.micro.theta = "5.00 USD".into();
        assert!(bad.check().is_err(), "θ in another currency");
        let mut bad = config;
        bad.micro.window_ms = 0;
        assert!(bad.check().is_err(), "a zero window");
        assert!(ServiceConfig::from_toml(&format!("{TEXT}\n[micro]\nmode = \"three\"\n")).is_err());
    }

    #[test]
    fn unknown_fields_and_bad_timing_are_refused() {
        assert!(ServiceConfig::from_toml(&format!("{TEXT}\nsurprise = 1")).is_err());
        let mut config = ServiceConfig::from_toml(TEXT).unwrap();
        config.timing.decision_timeout_ms = config.timing.hop_budget_ms;
        assert!(config.check().is_err());
    }

    #[test]
    fn round_trips_and_keys_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = ServiceConfig::from_toml(TEXT).unwrap();
        let path = dir.path().join("c.toml");
        config.save(&path).unwrap();
        let loaded = ServiceConfig::from_toml(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(loaded, config);
        let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(1);
        let keys = SecretKeys::generate(mpay_identity::Suite::Ed25519X25519, &mut rng);
        let key_path = dir.path().join("k");
        write_keys(&key_path, &keys).unwrap();
        assert_eq!(read_keys(&key_path).unwrap().public(), keys.public());
        std::fs::write(&key_path, "zz").unwrap();
        let error = read_keys(&key_path).unwrap_err().to_string();
        assert!(!error.contains("zz"));
    }

    #[test]
    fn pin_keys_round_trip_owner_only_and_never_show_their_text() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cpp1.pin-keys");
        let keys = PinKeys::new(vec![PinKey::new([7; 32]), PinKey::new([6; 32])]).unwrap();
        write_pin_keys(&path, &keys).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let read = read_pin_keys(&path).unwrap();
        let ids = |k: &PinKeys| k.all().iter().map(PinKey::id).collect::<Vec<_>>();
        assert_eq!(ids(&read), ids(&keys), "the same keys, the current first");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = read_pin_keys(&path).unwrap_err().to_string();
        assert!(
            error.contains("readable by others") && error.contains("644"),
            "{error}"
        );

        let secret = "ab".repeat(31);
        std::fs::write(&path, format!("# comment\n\n{secret}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let error = read_pin_keys(&path).unwrap_err().to_string();
        assert!(
            error.contains("line 3") && !error.contains(&secret),
            "{error}"
        );
        std::fs::write(&path, "# no key\n").unwrap();
        assert!(read_pin_keys(&path).is_err(), "an empty key file");
    }

    #[test]
    fn a_cpp_config_names_its_pin_keys_and_an_old_pin_cost_still_loads() {
        let config = ServiceConfig::from_toml(TEXT).unwrap();
        let error = config.load_pin_keys().unwrap_err().to_string();
        assert!(error.contains("pin_keys"), "{error}");
        let old = format!("{TEXT}[pin_cost]\nmemory_kib = 65536\n");
        let config = ServiceConfig::from_toml(&old).unwrap();
        assert!(config.pin_cost.is_some());
        assert!(
            !toml::to_string(&config).unwrap().contains("pin_cost"),
            "not written back"
        );
    }
}
