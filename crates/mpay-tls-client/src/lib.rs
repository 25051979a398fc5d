//! The client side of TLS between the mpay services and their clients,
//! with no server in it, so a client (the CLI, a phone's bindings) links it
//! without axum or a listener.
//!
//! - [`install_ring_provider`]: rustls runs on the *ring* provider only
//!   (aws-lc-rs in the same process makes rustls panic at first use); every
//!   binary and test calls it first. The configurations built here name
//!   ring explicitly as well, so they never depend on the process default.
//! - [`http_client`]: a reqwest client whose only root is the network's CA
//!   (no system roots); without a CA it trusts nothing, so `https://` fails
//!   closed.
//! - [`Plaintext`] and [`check_token_url`]: a bearer token is never sent
//!   over `http://`, unless the operator allowed plaintext on loopback
//!   (`allow_plaintext_loopback`, or [`ENV_ALLOW_PLAINTEXT_LOOPBACK`]), and
//!   never to a host that is not loopback whatever the setting.
//!
//! The server side (the CA, the listener) is `mpay-tls`, which re-exports
//! all of this.

#![forbid(unsafe_code)]

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

pub use rustls;

/// Environment variable allowing bearer tokens over plaintext HTTP to a
/// loopback host (`1`, `true` or `yes`).
pub const ENV_ALLOW_PLAINTEXT_LOOPBACK: &str = "MPAY_ALLOW_PLAINTEXT_LOOPBACK";
/// Largest PEM file read.
pub const PEM_FILE_LEN_MAX: u64 = 1 << 20;
/// Why TLS could not be set up, or why a request was refused before it
/// left. Never carries a key or a token.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read or written (the
    /// operator's fault).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// A certificate or key file does not hold what it should (the
    /// operator's fault).
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the configuration (the operator's fault: a key that
    /// does not match its certificate, an unsupported key type).
    #[error("TLS configuration: {0}")]
    Config(String),
    /// A certificate could not be made.
    #[error("certificate generation: {0}")]
    Generate(String),
    /// A bearer token would cross a plaintext connection (the caller's
    /// configuration is at fault: use `https://`, or allow plaintext on
    /// loopback explicitly).
    #[error("refusing to send a bearer token to {url}: {reason}")]
    Plaintext {
        /// The base URL (no credentials in it).
        url: String,
        /// Why.
        reason: &'static str,
    },
}

/// The ring provider.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Installs ring as the process's rustls provider (once; later calls and a
/// provider installed before are left alone).
pub fn install_ring_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The bytes of the PEM file `path`, refused past [`PEM_FILE_LEN_MAX`].
pub fn read_pem_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    let io = |source| TlsError::Io {
        path: path.to_owned(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > PEM_FILE_LEN_MAX {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            message: format!("larger than {PEM_FILE_LEN_MAX} bytes"),
        });
    }
    std::fs::read(path).map_err(io)
}

/// The certificates of a PEM file (at least one).
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_pem_file(path)?;
    let pem = |message: String| TlsError::Pem {
        path: path.to_owned(),
        message,
    };
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem(format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(pem("no certificate in it".into()));
    }
    Ok(certs)
}

/// A TLS 1.3 client configuration trusting the certificates of the PEM
/// file `ca` only, or nothing at all without one.
pub fn client_config(ca: Option<&Path>) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore::empty();
    if let Some(ca) = ca {
        for cert in read_certificates(ca)? {
            roots.add(cert).map_err(|e| TlsError::Pem {
                path: ca.to_owned(),
                message: format!("not a usable CA certificate: {e}"),
            })?;
        }
    }
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A reqwest client with time limit `timeout` whose only root of trust is
/// the CA in `ca` (PEM); without one it reaches `http://` only.
pub fn http_client(ca: Option<&Path>, timeout: Duration) -> Result<reqwest::Client, TlsError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .tls_backend_preconfigured(client_config(ca)?)
        .build()
        .map_err(|e| TlsError::Config(format!("HTTP client: {e}")))
}

/// Environment variable naming the PEM file of the network's CA, the root
/// of trust of clients made without one ([`default_client`]).
pub const ENV_TLS_CA: &str = "MPAY_TLS_CA";

static DEFAULT_CA: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Makes `ca` the root of trust of clients made without one, for the rest
/// of the process (the first call wins; a CLI command calls it when it
/// loads a network's directory).
pub fn set_default_ca(ca: &Path) {
    let _ = DEFAULT_CA.set(ca.to_owned());
}

/// The CA of [`set_default_ca`], else [`ENV_TLS_CA`]'s, else none.
pub fn default_ca() -> Option<PathBuf> {
    DEFAULT_CA
        .get()
        .cloned()
        .or_else(|| std::env::var_os(ENV_TLS_CA).map(PathBuf::from))
}

/// A client trusting [`default_ca`]; an error names the CA file when it
/// cannot be read or holds no certificate (nothing is sent then).
pub fn default_client(timeout: Duration) -> Result<reqwest::Client, TlsError> {
    http_client(default_ca().as_deref(), timeout)
}

/// Refuses a built `request` that carries an `Authorization` header to a
/// URL where [`check_token_url`] says no.
pub fn check_request(request: &reqwest::Request, plaintext: Plaintext) -> Result<(), TlsError> {
    if request
        .headers()
        .contains_key(reqwest::header::AUTHORIZATION)
    {
        check_token_url(request.url().as_str(), plaintext)
    } else {
        Ok(())
    }
}

/// Whether bearer tokens may travel over plaintext HTTP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Plaintext {
    /// Never (the default).
    #[default]
    Refuse,
    /// To a loopback host only (`127.0.0.0/8`, `::1`, `localhost`), as the
    /// operator asked.
    AllowLoopback,
}

impl Plaintext {
    /// [`Plaintext::AllowLoopback`] if `allow`.
    pub fn from_flag(allow: bool) -> Plaintext {
        if allow {
            Plaintext::AllowLoopback
        } else {
            Plaintext::Refuse
        }
    }

    /// As [`ENV_ALLOW_PLAINTEXT_LOOPBACK`] says (refuse when unset).
    pub fn from_env() -> Plaintext {
        let allowed = std::env::var(ENV_ALLOW_PLAINTEXT_LOOPBACK)
            .map(|v| matches!(v.trim(), "1" | "true" | "yes"))
            .unwrap_or(false);
        Plaintext::from_flag(allowed)
    }

    /// The more permissive of `self` and the environment's.
    pub fn or_env(self) -> Plaintext {
        match self {
            Plaintext::AllowLoopback => self,
            Plaintext::Refuse => Plaintext::from_env(),
        }
    }
}

/// Whether `url`'s host is a loopback address or `localhost`.
pub fn is_loopback_url(url: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return false;
    };
    match parsed.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// Checks that a bearer token may be sent to `url`: `https://` always;
/// `http://` only under [`Plaintext::AllowLoopback`] and to a loopback host.
pub fn check_token_url(url: &str, plaintext: Plaintext) -> Result<(), TlsError> {
    let refuse = |reason| TlsError::Plaintext {
        url: redact(url),
        reason,
    };
    let parsed = reqwest::Url::parse(url).map_err(|_| refuse("not a URL"))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => match plaintext {
            Plaintext::Refuse => Err(refuse(
                "plaintext http:// (use https://, or allow plaintext on loopback explicitly)",
            )),
            Plaintext::AllowLoopback if is_loopback_url(url) => Ok(()),
            Plaintext::AllowLoopback => Err(refuse(
                "plaintext http:// to a host that is not loopback is never allowed",
            )),
        },
        _ => Err(refuse("not an http(s):// URL")),
    }
}

/// `url` without any credentials in it, for errors and logs.
fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_password(None);
            let _ = parsed.set_username("");
            parsed.set_query(None);
            parsed.to_string()
        }
        Err(_) => "<not a URL>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_travel_over_https_and_over_plaintext_only_to_loopback_when_allowed() {
        for url in ["https://bank.example:443", "https://127.0.0.1:7801"] {
            check_token_url(url, Plaintext::Refuse).expect("https is fine");
        }
        for url in [
            "http://127.0.0.1:7801",
            "http://localhost:7801",
            "http://[::1]:7801",
        ] {
            assert!(
                matches!(
                    check_token_url(url, Plaintext::Refuse),
                    Err(TlsError::Plaintext { .. })
                ),
                "{url} refused by default"
            );
            check_token_url(url, Plaintext::AllowLoopback).expect("allowed on loopback");
        }
        for url in [
            "http://10.0.0.7:7801",
            "http://bank.example",
            "http://127.0.0.1.evil.example",
            "ftp://127.0.0.1",
            "not a url",
        ] {
            assert!(
                check_token_url(url, Plaintext::AllowLoopback).is_err(),
                "{url} refused even when plaintext on loopback is allowed"
            );
        }
    }

    #[test]
    fn refusals_never_repeat_credentials_of_the_url() {
        let error = check_token_url(
            "http://user:secret-pw@10.0.0.1/?token=abc",
            Plaintext::Refuse,
        )
        .expect_err("refused");
        let text = error.to_string();
        assert!(
            !text.contains("secret-pw") && !text.contains("abc"),
            "{text}"
        );
    }
}
