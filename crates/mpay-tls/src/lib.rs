//! TLS between the mpay services and their clients: the server side, and
//! (re-exported) the client side of `mpay-tls-client`.
//!
//! - [`Ca`]: the network's private certificate authority (rcgen), made by
//!   `mpay network init`, issuing one server certificate per service for
//!   its loopback name and address ([`Ca::issue`]).
//! - [`server_config`] and [`TlsListener`]: a service serves its axum router
//!   over TLS 1.3; handshakes run concurrently, each within
//!   [`HANDSHAKE_TIMEOUT_MS`], at most [`HANDSHAKES_IN_FLIGHT_MAX`] at once,
//!   so a slow client cannot stall the accept loop ([`serve`]).
//! - Everything of `mpay-tls-client`: the ring provider, the clients' root
//!   of trust and the plaintext-token rule.

#![forbid(unsafe_code)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

pub use mpay_tls_client::*;

/// Longest a TLS handshake may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
/// Most TLS handshakes in progress at once; connections past it are
/// closed at once.
pub const HANDSHAKES_IN_FLIGHT_MAX: usize = 256;
/// Backdating of issued certificates, for clocks a little behind.
pub const CERTIFICATE_BACKDATE_S: i64 = 60 * 60;
/// Finished handshakes waiting for the server to take them.
const ACCEPTED_QUEUE_LEN: usize = 64;

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read_pem_file(path)?;
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
