//! The bank's drivers: the loop that delivers the outbox to peer banks, the
//! loop that expires holds, and serving the router. These are the only
//! places that read the clock on their own; everything they call takes `now`.

use std::sync::Arc;
use std::time::Duration;

use mpay_identity::Timestamp;
use mpay_sql::outbox;
use tokio::task::JoinHandle;

use crate::bank::{Bank, BankError, DeliveryReport};
use crate::http::{BankClient, router, wall_clock};

/// Most outbox messages one delivery run claims.
pub const DELIVERY_BATCH_MAX: u32 = 100;

/// An HTTP client for interbank delivery, with the configured time limit,
/// trusting the configured CA only ([`crate::BankConfig::tls_ca`]); an
/// error when that CA cannot be read, so the bank does not start.
pub fn interbank_http(bank: &Bank) -> Result<reqwest::Client, mpay_tls::TlsError> {
    let config = bank.config();
    let timeout = Duration::from_millis(config.interbank_timeout_ms);
    mpay_tls::http_client(config.tls_ca.as_deref(), timeout)
}

/// Delivers the outbox messages due at `now`: seals each afresh, POSTs it
/// to the peer's `/v1/interbank`, checks the sealed acknowledgement and
/// marks it delivered; any failure (peer down, refusal, bad answer) is
/// logged and the message is due again after the outbox's backoff.
pub async fn deliver_due(
    bank: &Bank,
    http: &reqwest::Client,
    now: Timestamp,
) -> Result<DeliveryReport, BankError> {
    let now_ms = i64::try_from(now.as_millis()).unwrap_or(i64::MAX);
    let mut report = DeliveryReport::default();
    // One send at a time: the lease covers one send; a message whose lease
    // runs out behind a slow run may go twice, which the peer takes as a
    // repeat of its idempotency key.
    let lease = outbox::claim_lease_ms(bank.config().interbank_timeout_ms);
    for message in outbox::due(bank.db(), now_ms, DELIVERY_BATCH_MAX, lease).await? {
        let attempt = async {
            let outgoing = bank.seal_outgoing(&message, now)?;
            let answer = BankClient::with_http(&outgoing.base_url, http.clone())
                .post_interbank(outgoing.frame)
                .await
                .map_err(|e| BankError::PeerMessage(e.to_string()))?;
            bank.accept_ack(&message, &answer, now).await
        };
        match attempt.await {
            Ok(outcome) => {
                tracing::debug!(
                    message = message.idempotency_key,
                    ?outcome,
                    "interbank transfer delivered"
                );
                report.delivered = report.delivered.saturating_add(1);
            }
            Err(error) => {
                tracing::warn!(
                    message = message.idempotency_key,
                    destination = message.destination,
                    attempts = message.attempts,
                    %error,
                    "interbank delivery failed; will retry"
                );
                bank.delivery_failed(&message, now).await?;
                report.failed = report.failed.saturating_add(1);
            }
        }
    }
    Ok(report)
}

/// The bank's background tasks; dropping it stops them.
#[derive(Debug)]
pub struct Background {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Background {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts the delivery loop (every `delivery_interval_ms`) and the expiry
/// loop (every `expiry_interval_ms`) on the current tokio runtime; an error
/// when the interbank client cannot be made ([`interbank_http`]).
pub fn spawn_background(bank: Arc<Bank>) -> Result<Background, mpay_tls::TlsError> {
    let http = interbank_http(&bank)?;
    let delivery = {
        let bank = Arc::clone(&bank);
        let pause = Duration::from_millis(bank.config().delivery_interval_ms);
        tokio::spawn(async move {
            loop {
                if let Err(error) = deliver_due(&bank, &http, wall_clock()).await {
                    tracing::error!(%error, "interbank delivery run failed");
                }
                tokio::time::sleep(pause).await;
            }
        })
    };
    let expiry = {
        let pause = Duration::from_millis(bank.config().expiry_interval_ms);
        tokio::spawn(async move {
            loop {
                match bank.expire_holds(wall_clock()).await {
                    Ok(expired) if !expired.is_empty() => {
                        tracing::info!(count = expired.len(), "holds expired");
                    }
                    Ok(_) => {}
                    Err(error) => tracing::error!(%error, "hold expiry run failed"),
                }
                tokio::time::sleep(pause).await;
            }
        })
    };
    Ok(Background {
        tasks: vec![delivery, expiry],
    })
}

/// Serves the bank's routes on `listener` (plaintext) until the task is
/// dropped.
pub async fn serve(bank: Arc<Bank>, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    serve_tls(bank, listener, None).await
}

/// Serves the bank's routes on `listener`, over TLS with `tls` if given,
/// until the task is dropped.
pub async fn serve_tls(
    bank: Arc<Bank>,
    listener: tokio::net::TcpListener,
    tls: Option<Arc<mpay_tls::rustls::ServerConfig>>,
) -> std::io::Result<()> {
    mpay_tls::serve(listener, tls, router(bank), std::future::pending()).await
}
