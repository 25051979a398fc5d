//! What a bank is configured with: its currency, the scheme roots it
//! trusts, its peer banks, the API tokens of its callers, and the named
//! intervals of its background work. Plain values: the launcher reads them
//! from a file and the environment and builds a [`BankConfig`].

use std::collections::HashMap;
use std::fmt;

use mpay_identity::{Certificate, PartyId, hex_bytes};
use mpay_money::Currency;
use mpay_wire::Decode;

use crate::ledger::AccountId;

/// Longest caller name (the idempotency scope is `bank:<name>`).
pub const CALLER_NAME_LEN_MAX: usize = 48;
/// Shortest API token accepted in the configuration.
pub const TOKEN_LEN_MIN: usize = 16;
/// Default pause between two runs of the outbox delivery loop.
pub const DELIVERY_INTERVAL_MS_DEFAULT: u64 = 500;
/// Default pause between two runs of hold expiry.
pub const EXPIRY_INTERVAL_MS_DEFAULT: u64 = 1_000;
/// Default time limit of one interbank HTTP request.
pub const INTERBANK_TIMEOUT_MS_DEFAULT: u64 = 10_000;

/// A configuration value is wrong (the operator's fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bank configuration: {0}")]
pub struct ConfigError(pub String);

fn config_error(reason: impl Into<String>) -> ConfigError {
    ConfigError(reason.into())
}

/// Which accounts a caller may act on: `*` (all), `<prefix>*` (e.g.
/// `cust:*`), or one account id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountPattern {
    /// Every account.
    Any,
    /// Every account whose id starts with this text.
    Prefix(String),
    /// One account.
    Exact(AccountId),
}

impl AccountPattern {
    /// Parses `*`, `cust:*` or `cust:alice`.
    pub fn parse(text: &str) -> Result<AccountPattern, ConfigError> {
        if text == "*" {
            return Ok(AccountPattern::Any);
        }
        if let Some(prefix) = text.strip_suffix('*') {
            if prefix.is_empty() || prefix.contains('*') {
                return Err(config_error(format!("account pattern `{text}`")));
            }
            return Ok(AccountPattern::Prefix(prefix.to_owned()));
        }
        AccountId::parse(text)
            .map(AccountPattern::Exact)
            .map_err(|e| config_error(format!("account pattern `{text}`: {e}")))
    }

    /// True if `account` matches.
    pub fn matches(&self, account: &AccountId) -> bool {
        match self {
            AccountPattern::Any => true,
            AccountPattern::Prefix(prefix) => account.as_str().starts_with(prefix.as_str()),
            AccountPattern::Exact(id) => id == account,
        }
    }
}

/// Who is calling: a name (the idempotency scope: request ids are the
/// caller's own) and what it may do.
///
/// - The **operator** opens accounts, deposits, and may act on every account.
/// - Any other caller may act on the holder accounts its patterns match:
///   pay from them (transfers, interbank transfers), place holds on them,
///   read them and their notifications. It may pay *to* any holder
///   account. A hold may be posted or voided by the caller that placed it
///   (or the operator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    name: String,
    operator: bool,
    accounts: Vec<AccountPattern>,
}

impl Caller {
    fn check_name(name: &str) -> Result<(), ConfigError> {
        if name.is_empty()
            || name.len() > CALLER_NAME_LEN_MAX
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(config_error(format!(
                "caller names are 1..={CALLER_NAME_LEN_MAX} characters of [A-Za-z0-9._-]"
            )));
        }
        Ok(())
    }

    /// The operator, named `name`.
    pub fn operator(name: &str) -> Result<Caller, ConfigError> {
        Caller::check_name(name)?;
        Ok(Caller {
            name: name.to_owned(),
            operator: true,
            accounts: vec![AccountPattern::Any],
        })
    }

    /// A caller that may act on the accounts `accounts` match.
    pub fn new(name: &str, accounts: Vec<AccountPattern>) -> Result<Caller, ConfigError> {
        Caller::check_name(name)?;
        Ok(Caller {
            name: name.to_owned(),
            operator: false,
            accounts,
        })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True for the operator.
    pub fn is_operator(&self) -> bool {
        self.operator
    }

    /// True if it may pay from, hold on and read `account`.
    pub fn may_use(&self, account: &AccountId) -> bool {
        self.operator || self.accounts.iter().any(|p| p.matches(account))
    }

    /// Its idempotency scope.
    pub(crate) fn scope(&self) -> String {
        format!("bank:{}", self.name)
    }
}

/// A bearer token and the caller it stands for. The token never prints.
#[derive(Clone)]
pub struct ApiToken {
    token: String,
    caller: Caller,
}

impl ApiToken {
    /// `token` (at least [`TOKEN_LEN_MIN`] characters) authenticates `caller`.
    pub fn new(token: impl Into<String>, caller: Caller) -> Result<ApiToken, ConfigError> {
        let token = token.into();
        if token.len() < TOKEN_LEN_MIN || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(config_error(format!(
                "API tokens are at least {TOKEN_LEN_MIN} visible ASCII characters"
            )));
        }
        Ok(ApiToken { token, caller })
    }

    /// The caller.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiToken(<secret> for {})", self.caller.name)
    }
}

/// Finds the caller of a bearer token. Tokens are kept as BLAKE3 hashes and
/// looked up by hash, so the comparison does not leak a prefix by timing.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    by_hash: HashMap<[u8; 32], Caller>,
}

impl Authenticator {
    /// From the configured tokens; two equal tokens are an error.
    pub fn new(tokens: &[ApiToken]) -> Result<Authenticator, ConfigError> {
        let mut by_hash = HashMap::with_capacity(tokens.len());
        for token in tokens {
            let hash = *blake3::hash(token.token.as_bytes()).as_bytes();
            if by_hash.insert(hash, token.caller.clone()).is_some() {
                return Err(config_error("the same API token is configured twice"));
            }
        }
        Ok(Authenticator { by_hash })
    }

    /// The caller `token` stands for.
    pub fn caller(&self, token: &str) -> Option<&Caller> {
        self.by_hash.get(blake3::hash(token.as_bytes()).as_bytes())
    }
}

/// Another bank this one exchanges interbank transfers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerBank {
    /// Its party id.
    pub id: PartyId,
    /// Where its HTTP API is, e.g. `http://127.0.0.1:7801`.
    pub base_url: String,
    /// Its certificate (role `Bank`, issued by a scheme root).
    pub certificate: Certificate,
}

impl PeerBank {
    /// A peer; its certificate must name `id`.
    pub fn new(
        id: PartyId,
        base_url: &str,
        certificate: Certificate,
    ) -> Result<PeerBank, ConfigError> {
        if certificate.subject() != id {
            return Err(config_error(format!(
                "peer {id}: the certificate is of {}",
                certificate.subject()
            )));
        }
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(config_error(format!(
                "peer {id}: base URL `{base_url}` is not http(s)://"
            )));
        }
        Ok(PeerBank {
            id,
            base_url: base_url.trim_end_matches('/').to_owned(),
            certificate,
        })
    }

    /// A peer from its configuration text: id as 32 hex digits, base URL,
    /// certificate as hex of its wire encoding.
    pub fn from_hex(
        id_hex: &str,
        base_url: &str,
        certificate_hex: &str,
    ) -> Result<PeerBank, ConfigError> {
        let id = PartyId::from_hex(id_hex)
            .ok_or_else(|| config_error(format!("peer id `{id_hex}` is not 32 hex digits")))?;
        let bytes = hex_bytes(certificate_hex)
            .ok_or_else(|| config_error(format!("peer {id}: certificate is not hex")))?;
        let certificate = Certificate::from_wire(&bytes)
            .map_err(|e| config_error(format!("peer {id}: certificate: {e}")))?;
        PeerBank::new(id, base_url, certificate)
    }
}

/// A bank's configuration.
#[derive(Debug, Clone)]
pub struct BankConfig {
    /// The one currency this bank keeps.
    pub currency: Currency,
    /// Certificates of the scheme roots that issue bank certificates.
    pub scheme_roots: Vec<Certificate>,
    /// The banks it exchanges transfers with.
    pub peers: Vec<PeerBank>,
    /// The callers of its API.
    pub tokens: Vec<ApiToken>,
    /// Pause between two runs of the outbox delivery loop.
    pub delivery_interval_ms: u64,
    /// Pause between two runs of hold expiry.
    pub expiry_interval_ms: u64,
    /// Time limit of one interbank HTTP request.
    pub interbank_timeout_ms: u64,
    /// PEM file of the network's CA, the only root the interbank client
    /// trusts (None: it reaches `http://` peers only).
    pub tls_ca: Option<std::path::PathBuf>,
}

impl BankConfig {
    /// A configuration with no peers and no callers, default intervals.
    pub fn new(currency: Currency, scheme_roots: Vec<Certificate>) -> BankConfig {
        BankConfig {
            currency,
            scheme_roots,
            peers: Vec::new(),
            tokens: Vec::new(),
            delivery_interval_ms: DELIVERY_INTERVAL_MS_DEFAULT,
            expiry_interval_ms: EXPIRY_INTERVAL_MS_DEFAULT,
            interbank_timeout_ms: INTERBANK_TIMEOUT_MS_DEFAULT,
            tls_ca: None,
        }
    }

    /// The peer with id `id`.
    pub fn peer(&self, id: PartyId) -> Option<&PeerBank> {
        self.peers.iter().find(|p| p.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> AccountId {
        AccountId::parse(text).unwrap()
    }

    #[test]
    fn patterns_and_callers() {
        let cpp = Caller::new(
            "cpp1",
            vec![
                AccountPattern::parse("cust:*").unwrap(),
                AccountPattern::parse("cpp:cpp1").unwrap(),
            ],
        )
        .unwrap();
        assert!(cpp.may_use(&id("cust:alice")));
        assert!(cpp.may_use(&id("cpp:cpp1")));
        assert!(!cpp.may_use(&id("cpp:cpp2")));
        assert!(!cpp.is_operator());
        let operator = Caller::operator("ops").unwrap();
        assert!(operator.may_use(&id("cpp:cpp2")));
        assert!(AccountPattern::parse("*").unwrap().matches(&id("x:y")));
        assert!(AccountPattern::parse("a*b*").is_err());
        assert!(AccountPattern::parse("nocolon").is_err());
        assert!(Caller::new(&"n".repeat(CALLER_NAME_LEN_MAX), vec![]).is_ok());
        assert!(Caller::new(&"n".repeat(CALLER_NAME_LEN_MAX + 1), vec![]).is_err());
        assert!(Caller::new("a b", vec![]).is_err());
    }

    #[test]
    fn tokens_authenticate_and_never_print() {
        let alice =
            Caller::new("alice", vec![AccountPattern::parse("cust:alice").unwrap()]).unwrap();
        let token = ApiToken::new("alice-secret-token-0001", alice.clone()).unwrap();
        assert!(!format!("{token:?}").contains("secret-token"));
        assert!(ApiToken::new("short", alice.clone()).is_err());
        let auth = Authenticator::new(std::slice::from_ref(&token)).unwrap();
        assert_eq!(auth.caller("alice-secret-token-0001"), Some(&alice));
        assert_eq!(auth.caller("alice-secret-token-0002"), None);
        assert!(Authenticator::new(&[token.clone(), token]).is_err());
    }
}
