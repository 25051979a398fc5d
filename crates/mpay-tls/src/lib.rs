//! TLS between the mpay services and their clients.
//!
//! - [`install_ring_provider`]: rustls runs on the *ring* provider only
//!   (aws-lc-rs in the same process makes rustls panic at first use); every
//!   binary and test calls it first. The configurations built here name
//!   ring explicitly as well, so they never depend on the process default.
//! - [`Ca`]: the network's private certificate authority (rcgen), made by
//!   `mpay network init`, issuing one server certificate per service for
//!   its loopback name and address ([`Ca::issue`]).
//! - [`server_config`] and [`TlsListener`]: a service serves its axum router
//!   over TLS 1.3; handshakes run concurrently, each within
//!   [`HANDSHAKE_TIMEOUT_MS`], at most [`HANDSHAKES_IN_FLIGHT_MAX`] at once,
//!   so a slow client cannot stall the accept loop ([`serve`]).
//! - [`http_client`]: a reqwest client whose only root is the network's CA
//!   (no system roots); without a CA it trusts nothing, so `https://` fails
//!   closed.
//! - [`Plaintext`] and [`check_token_url`]: a bearer token is never sent
//!   over `http://`, unless the operator allowed plaintext on loopback
//!   (`allow_plaintext_loopback`, or [`ENV_ALLOW_PLAINTEXT_LOOPBACK`]), and
//!   never to a host that is not loopback whatever the setting.

#![forbid(unsafe_code)]

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

pub use rustls;

/// Environment variable allowing bearer tokens over plaintext HTTP to a
/// loopback host (`1`, `true` or `yes`).
pub const ENV_ALLOW_PLAINTEXT_LOOPBACK: &str = "MPAY_ALLOW_PLAINTEXT_LOOPBACK";
/// Longest a TLS handshake may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
/// Most TLS handshakes in progress at once; connections past it are
/// closed at once.
pub const HANDSHAKES_IN_FLIGHT_MAX: usize = 256;
/// Finished handshakes waiting for the server to take them.
const ACCEPTED_QUEUE_LEN: usize = 64;
/// Largest PEM file read.
pub const PEM_FILE_LEN_MAX: u64 = 1 << 20;
/// Backdating of issued certificates, for clocks a little behind.
pub const CERTIFICATE_BACKDATE_S: i64 = 60 * 60;

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

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
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
    let bytes = read_file(path)?;
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

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read_file(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::Pem {
        path: path.to_owned(),
        message: format!("not a PEM private key: {e}"),
    })
}

/// A TLS 1.3 server configuration of the certificate chain in `cert` and
/// the key in `key` (PEM files), speaking HTTP/1.1.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = read_certificates(cert)?;
    let key = read_key(key)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
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

/// A listener that hands axum connections whose TLS handshake completed.
/// The TCP accept loop runs in its own task and each handshake in another,
/// so one slow or silent client delays nobody. Dropping it stops the loop.
pub struct TlsListener {
    accepted: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsListener {
    /// Serves TLS with `config` on `listener`.
    pub fn new(listener: TcpListener, config: Arc<ServerConfig>) -> io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (tx, accepted) = mpsc::channel(ACCEPTED_QUEUE_LEN);
        let acceptor = TlsAcceptor::from(config);
        let handshakes = Arc::new(Semaphore::new(HANDSHAKES_IN_FLIGHT_MAX));
        let task = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    break;
                }
                let Ok(permit) = Arc::clone(&handshakes).try_acquire_owned() else {
                    tracing::warn!(%peer, "too many TLS handshakes in progress; connection closed");
                    continue;
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let limit = Duration::from_millis(HANDSHAKE_TIMEOUT_MS);
                    match tokio::time::timeout(limit, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            drop(permit);
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            accepted,
            local,
            task,
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(accepted) => accepted,
            // The accept loop ended: nothing will come any more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// Serves `router` on `listener`, over TLS with `tls` if given, until
/// `shutdown` completes (then waits for requests in flight).
pub async fn serve<F>(
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    router: axum::Router,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    match tls {
        Some(config) => {
            axum::serve(TlsListener::new(listener, config)?, router)
                .with_graceful_shutdown(shutdown)
                .await
        }
        None => {
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}

fn offset_time(seconds_from_now: i64) -> Result<time::OffsetDateTime, TlsError> {
    let now = i64::try_from(mpay_clock::wall_clock().as_millis() / 1_000).unwrap_or(i64::MAX);
    time::OffsetDateTime::from_unix_timestamp(now.saturating_add(seconds_from_now))
        .map_err(|e| TlsError::Generate(format!("validity: {e}")))
}

/// A certificate and its private key, PEM.
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (secret: write it 0600).
    pub key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<secret>")
            .finish()
    }
}

/// The network's private certificate authority.
pub struct Ca {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    cert_pem: String,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("cert_pem", &self.cert_pem)
            .finish()
    }
}

fn generate(e: rcgen::Error) -> TlsError {
    TlsError::Generate(e.to_string())
}

impl Ca {
    /// A new CA named `name`, valid for `validity_s` seconds (ECDSA P-256).
    pub fn generate(name: &str, validity_s: i64) -> Result<Ca, TlsError> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(generate)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        params.not_before = offset_time(-CERTIFICATE_BACKDATE_S)?;
        params.not_after = offset_time(validity_s)?;
        let key = rcgen::KeyPair::generate().map_err(generate)?;
        let cert = params.self_signed(&key).map_err(generate)?;
        Ok(Ca {
            params,
            cert_pem: cert.pem(),
            key,
        })
    }

    /// The CA's certificate, PEM (what clients trust).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A server certificate for `names` (DNS names or IP addresses), valid
    /// for `validity_s` seconds, with a fresh key.
    pub fn issue(&self, names: &[&str], validity_s: i64) -> Result<Issued, TlsError> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = rcgen::CertificateParams::new(names.clone()).map_err(generate)?;
        if let Some(first) = names.first() {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, first.as_str());
        }
        params.is_ca = rcgen::IsCa::ExplicitNoCa;
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = offset_time(-CERTIFICATE_BACKDATE_S)?;
        params.not_after = offset_time(validity_s)?;
        let key = rcgen::KeyPair::generate().map_err(generate)?;
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).map_err(generate)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
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
