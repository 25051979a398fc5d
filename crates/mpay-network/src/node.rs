//! What every service process is made of: its identity and the checked
//! directory, its database, the envelope inbox (open, verify, replay guard),
//! the transactional outbox and its delivery loop, long-poll waiters, the
//! bank clients, counters, and the running server handle.
//!
//! Delivery (module `delivery`): a message to another service is written
//! with [`Node::enqueue`] in the transaction of the state change it reports; its payload is the
//! *unsealed* inner message, because the envelope refuses frames older than
//! its freshness window, so the loop seals it afresh at every attempt
//! ([`Node::deliver_due`]). The loop is woken by [`Node::kick`] right after
//! the commit; its periodic sweep (`timing.delivery_interval_ms`) only
//! serves retries. A message counts as delivered only on a 2xx answer,
//! which the receiver gives after its own commit; anything else is retried
//! with the outbox's backoff, forever (`outbox_pending` shows it).
//!
//! Batches: a run sends what is due for one destination together, one
//! [`InboxBatch`] frame per [`INBOX_BATCH_ITEMS_MAX`] messages (one HTTP
//! request, one seal, one signature each way); a lone message goes in a
//! frame of its own. The receiver ([`Node::receive`]) applies each item as
//! a frame of its own and acknowledges each item's result in one signed
//! [`InboxBatchAck`]; the sender marks delivered exactly the items taken.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mpay_bank::BankClient;
use mpay_envelope::{FRAME_LEN_MAX, Header, MessageKind, ReplayGuard};
use mpay_identity::{SecretKeys, Timestamp, TrustStore};
use mpay_sql::outbox;
use mpay_sql::sqlx::{self, Row};
use mpay_sql::{Db, Migrations};
use mpay_wire::{Decode, Encode, Writer};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

mod delivery;

use crate::ack::{
    INBOX_ACK, INBOX_BATCH, INBOX_BATCH_ACK, ITEM_OUTCOME_LEN_MAX, InboxAck, InboxBatch,
    InboxBatchAck, ItemResult,
};
use crate::api::{NetError, wall_clock};
use crate::config::{ConfigError, ServiceConfig};
use crate::directory::{ResolvedDirectory, ResolvedService, ServiceRole};

/// Most outbox messages one delivery run claims (and sends concurrently).
pub const DELIVERY_BATCH_MAX: u32 = 128;
/// Largest inbox answer (outcome and sealed ack) a sender reads.
pub const INBOX_ANSWER_LEN_MAX: usize = 16 * 1024;
/// Most long-poll waiters keyed at once; past it a waiter polls on its
/// timer only.
pub const WAITER_KEYS_MAX: usize = 65_536;

/// Why a service could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration or directory is wrong (the operator's fault).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Db(#[from] mpay_sql::DbError),
    /// Migrations failed.
    #[error("migrations: {0}")]
    Migrate(#[from] mpay_sql::MigrateError),
    /// Serving failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// Counts of `column` values in `table` of `db`, in `column`'s order
/// (names from this crate's code, never from a request).
pub(crate) async fn count_by(
    db: &Db,
    table: &str,
    column: &str,
) -> Result<Vec<(String, i64)>, NetError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {column} AS k, COUNT(*) AS n FROM {table} GROUP BY {column} ORDER BY {column}"
    )))
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("k")?, r.try_get("n")?)))
        .collect()
}

/// Writes bytes as they are (a payload already encoded).
pub(crate) struct Raw<'a>(pub &'a [u8]);

impl Encode for Raw<'_> {
    fn encode(&self, w: &mut Writer) {
        w.raw(self.0);
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub inbox_accepted: AtomicU64,
    pub inbox_refused: AtomicU64,
    pub outbox_delivered: AtomicU64,
    pub outbox_failures: AtomicU64,
    /// Batch frames taken at the inbox.
    pub inbox_batches: AtomicU64,
    /// Batch frames sent (each one HTTP request for several messages).
    pub outbox_batches: AtomicU64,
    /// Frames POSTed to other services' inboxes, single or batch.
    pub outbox_frames: AtomicU64,
}

/// A verified message from another service.
pub(crate) struct Inbound {
    pub header: Header,
    pub sender: ResolvedService,
    pub payload: Vec<u8>,
}

/// One service process's shared state.
pub(crate) struct Node {
    pub config: ServiceConfig,
    pub me: ResolvedService,
    pub keys: SecretKeys,
    /// Keyed-hash secret derived from the keys (payment ids, pseudonyms,
    /// request hashes): stable across restarts, never stored.
    pub secret: [u8; 32],
    pub directory: ResolvedDirectory,
    pub trust: TrustStore,
    pub db: Db,
    /// The client of banks and services: the network's CA is its only root.
    pub http: reqwest::Client,
    /// This service's TLS server configuration (None: plaintext).
    pub tls: Option<Arc<mpay_tls::rustls::ServerConfig>>,
    replay: Mutex<ReplayGuard>,
    rng: Mutex<ChaCha20Rng>,
    /// Wakes the delivery loop (after a commit that enqueued something).
    pub kick: Notify,
    pub waiters: Waiters,
    pub metrics: Metrics,
    /// Saga steps being driven now, so a sweep does not start a second
    /// driver of the same step (a second one would be harmless, only wasted).
    in_flight: Mutex<HashSet<Vec<u8>>>,
}

impl Node {
    /// Loads the directory and keys named by `config`, checks that this
    /// service is in the directory with `role` and these keys, and migrates
    /// `db`.
    pub async fn open(
        config: ServiceConfig,
        db: Db,
        role: ServiceRole,
        migrations: Migrations,
    ) -> Result<Node, ServeError> {
        config.check()?;
        let now = wall_clock();
        let directory = config.load_directory()?.resolve(now)?;
        let me = directory
            .service(&config.name)
            .ok_or_else(|| {
                ConfigError::Invalid(format!("`{}` is not in the directory", config.name))
            })?
            .clone();
        if me.role != role {
            return Err(ConfigError::Invalid(format!(
                "`{}` is a {} in the directory, not a {}",
                me.name,
                me.role.as_str(),
                role.as_str()
            ))
            .into());
        }
        let keys = config.load_keys()?;
        if keys.public() != *me.certificate.keys() {
            return Err(ConfigError::Invalid(format!(
                "the keys in {} are not those of {}'s certificate",
                config.keys, me.name
            ))
            .into());
        }
        db.migrate(&[mpay_sql::MIGRATIONS, migrations]).await?;
        let secret = blake3::derive_key(
            "mpay/v1/network service secret",
            &keys.to_secret_bytes()[..],
        );
        let http = mpay_tls::http_client(
            directory.tls_ca.as_deref(),
            Duration::from_millis(config.timing.http_timeout_ms),
        )
        .map_err(|e| ConfigError::Invalid(format!("HTTP client: {e}")))?;
        let tls = config.server_tls()?;
        let seed: [u8; 32] = rand::random();
        let trust = directory.trust_store();
        Ok(Node {
            config,
            me,
            keys,
            secret,
            directory,
            trust,
            db,
            http,
            tls,
            replay: Mutex::new(ReplayGuard::new()),
            rng: Mutex::new(ChaCha20Rng::from_seed(seed)),
            kick: Notify::new(),
            waiters: Waiters::default(),
            metrics: Metrics::default(),
            in_flight: Mutex::new(HashSet::new()),
        })
    }

    /// Keyed BLAKE3 under this service's secret of `context` and the
    /// length-prefixed `parts`.
    pub fn keyed_hash(&self, context: &str, parts: &[&[u8]]) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_keyed(&self.secret);
        hasher.update(context.as_bytes());
        hasher.update(&[0]);
        for part in parts {
            hasher.update(&u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
            hasher.update(part);
        }
        *hasher.finalize().as_bytes()
    }

    /// 16 fresh random bytes.
    pub fn random16(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        match self.rng.lock() {
            Ok(mut rng) => rng.fill_bytes(&mut out),
            Err(poisoned) => poisoned.into_inner().fill_bytes(&mut out),
        }
        out
    }

    /// Runs `f` with the RNG.
    pub fn with_rng<T>(&self, f: impl FnOnce(&mut ChaCha20Rng) -> T) -> T {
        match self.rng.lock() {
            Ok(mut rng) => f(&mut rng),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// Runs `f` with the replay guard.
    pub fn with_replay<T>(&self, f: impl FnOnce(&mut ReplayGuard) -> T) -> T {
        match self.replay.lock() {
            Ok(mut guard) => f(&mut guard),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// Marks `key` as being driven; `false` if it already is.
    pub fn begin_step(&self, key: &[u8]) -> bool {
        self.in_flight
            .lock()
            .map(|mut set| set.insert(key.to_vec()))
            .unwrap_or(true)
    }

    /// Ends what [`Node::begin_step`] began.
    pub fn end_step(&self, key: &[u8]) {
        if let Ok(mut set) = self.in_flight.lock() {
            set.remove(key);
        }
    }

    /// The client of bank `name`, with this service's token there.
    pub fn bank(&self, name: &str) -> Result<BankClient, NetError> {
        let bank = self
            .directory
            .bank(name)
            .ok_or_else(|| NetError::Internal(format!("bank `{name}` is not in the directory")))?;
        let token = self
            .config
            .bank_token(name)
            .map_err(|e| NetError::Internal(e.to_string()))?;
        Ok(BankClient::with_http(&bank.url, self.http.clone())
            .with_token(token)
            .with_plaintext(self.config.plaintext()))
    }

    /// The DC of this service's region.
    pub fn my_dc(&self) -> Result<&ResolvedService, NetError> {
        self.directory
            .dc_of_region(&self.me.region)
            .ok_or_else(|| NetError::Internal("no DC in this region".into()))
    }

    /// Checks an operator's bearer token.
    pub fn check_operator(&self, headers: &axum::http::HeaderMap) -> Result<(), NetError> {
        match crate::api::bearer(headers) {
            Some(token) if crate::api::same_secret(token, &self.config.operator_token) => Ok(()),
            _ => Err(NetError::Unauthenticated),
        }
    }

    /// Opens and verifies a frame POSTed to `/v1/inbox`: the sender must be
    /// a service of the directory (its certificate under the scheme root),
    /// the frame sealed to this service, signed, fresh and new. Which
    /// senders may send which kinds is the caller's check.
    pub fn open_inbox(&self, frame: &[u8], now: Timestamp) -> Result<Inbound, NetError> {
        let opened = self.open_inbox_inner(frame, now);
        match &opened {
            Ok(_) => self.metrics.inbox_accepted.fetch_add(1, Relaxed),
            Err(error) => {
                self.log_refused(mpay_envelope::peek_header(frame).ok().as_ref(), error);
                self.metrics.inbox_refused.fetch_add(1, Relaxed)
            }
        };
        opened
    }

    /// Says, at debug level, why an inbox frame (whose header was `header`,
    /// if it had one) was refused: the sender's operator sees only a 4xx.
    pub fn log_refused(&self, header: Option<&Header>, error: &NetError) {
        match header {
            Some(h) => tracing::debug!(
                service = self.me.name,
                sender = %h.sender.to_hex(),
                kind = format_args!("{:#06x}", h.kind.0),
                tx = %mpay_identity::hex_string(&h.tx_id),
                reason = %error,
                "inbox frame refused"
            ),
            None => tracing::debug!(
                service = self.me.name,
                reason = %error,
                "inbox frame refused"
            ),
        }
    }

    fn open_inbox_inner(&self, frame: &[u8], now: Timestamp) -> Result<Inbound, NetError> {
        if frame.len() > FRAME_LEN_MAX {
            return Err(NetError::Refused("frame too large".into()));
        }
        let refused = |e: mpay_envelope::EnvelopeError| NetError::Refused(e.to_string());
        let header = mpay_envelope::peek_header(frame).map_err(refused)?;
        let sender = self
            .directory
            .service_by_id(header.sender)
            .ok_or_else(|| NetError::Refused("sender is not a service of the directory".into()))?
            .clone();
        let unverified = mpay_envelope::open(frame, &self.keys, self.me.id, &self.trust, now)
            .map_err(refused)?;
        let verified = self
            .with_replay(|guard| unverified.verify(&sender.certificate, &self.trust, guard, now))
            .map_err(|e| match e {
                mpay_envelope::EnvelopeError::Replay => NetError::Replay,
                other => refused(other),
            })?;
        Ok(Inbound {
            header: *verified.header(),
            sender,
            payload: verified.into_payload(),
        })
    }

    /// Answers the inbox `frame`: opens and verifies it, then applies its
    /// message with `apply`, or, for an [`INBOX_BATCH`], each of its
    /// messages as a frame of its own from the same sender (concurrently,
    /// as separate frames would be), and seals the signed acknowledgement
    /// back to the sender. A single message's error is the answer's; an
    /// item's error is that item's result only.
    pub async fn receive<F, Fut>(
        &self,
        frame: &[u8],
        now: Timestamp,
        apply: F,
    ) -> Result<crate::client::InboxAnswer, NetError>
    where
        F: Fn(Inbound) -> Fut,
        Fut: Future<Output = Result<String, NetError>> + Send + 'static,
    {
        let inbound = self.open_inbox(frame, now)?;
        let header = inbound.header;
        if header.kind != INBOX_BATCH {
            let outcome = apply(inbound)
                .await
                .inspect_err(|e| self.log_refused(Some(&header), e))?;
            let ack = InboxAck {
                frame_hash: InboxAck::hash_of(frame),
                outcome: outcome.clone(),
            };
            let ack = self.seal_ack(INBOX_ACK, &ack, &header)?;
            return Ok(crate::client::InboxAnswer { outcome, ack });
        }
        let batch = InboxBatch::from_wire(&inbound.payload)
            .map_err(|e| NetError::Refused(format!("batch: {e}")))
            .inspect_err(|e| self.log_refused(Some(&header), e))?;
        self.metrics.inbox_batches.fetch_add(1, Relaxed);
        let applying: Vec<_> = batch
            .items
            .into_iter()
            .map(|item| {
                let header = Header {
                    kind: item.kind,
                    tx_id: item.tx_id,
                    ..header
                };
                let task = tokio::spawn(apply(Inbound {
                    header,
                    sender: inbound.sender.clone(),
                    payload: item.payload,
                }));
                (header, task)
            })
            .collect();
        let mut results = Vec::with_capacity(applying.len());
        for (header, task) in applying {
            results.push(match task.await {
                Ok(Ok(outcome)) => ItemResult {
                    taken: true,
                    outcome: mpay_wire::prefix_within(&outcome, ITEM_OUTCOME_LEN_MAX).to_owned(),
                },
                Ok(Err(error)) => {
                    self.log_refused(Some(&header), &error);
                    ItemResult {
                        taken: false,
                        outcome: item_failure(&error),
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "a batch item's task failed");
                    ItemResult {
                        taken: false,
                        outcome: "internal".into(),
                    }
                }
            });
        }
        let ack = InboxBatchAck {
            batch_hash: InboxAck::hash_of(frame),
            results,
        };
        Ok(crate::client::InboxAnswer {
            outcome: "batch".into(),
            ack: self.seal_ack(INBOX_BATCH_ACK, &ack, &header)?,
        })
    }

    /// `payload` as kind `kind`, signed and sealed to `destination`.
    fn seal_to<T: Encode>(
        &self,
        destination: &ResolvedService,
        kind: MessageKind,
        payload: &T,
        tx_id: [u8; 16],
        now: Timestamp,
    ) -> Result<Vec<u8>, String> {
        self.with_rng(|rng| {
            mpay_semops::seal_payload(
                kind,
                payload,
                &self.keys,
                self.me.id,
                destination.id,
                destination.certificate.keys(),
                tx_id,
                now,
                rng,
            )
        })
        .map_err(|e| format!("seal: {e}"))
    }

    /// Hex of `ack` signed and sealed, as kind `kind`, to the sender of
    /// the frame whose header was `header`, with its `tx_id`.
    fn seal_ack<T: Encode>(
        &self,
        kind: MessageKind,
        ack: &T,
        header: &Header,
    ) -> Result<String, NetError> {
        let sender = self
            .directory
            .service_by_id(header.sender)
            .ok_or_else(|| NetError::Internal("the sender left the directory".into()))?;
        let sealed = self
            .seal_to(sender, kind, ack, header.tx_id, wall_clock())
            .map_err(|e| NetError::Internal(format!("sealing the ack: {e}")))?;
        Ok(mpay_identity::hex_string(&sealed))
    }

    /// Counts of `column` values in `table` (payments by state), for metrics.
    pub async fn count_by(
        &self,
        table: &str,
        column: &str,
    ) -> Result<Vec<(String, i64)>, NetError> {
        count_by(&self.db, table, column).await
    }

    /// What `GET /v1/admin/work` answers: the outbox, the refunds in
    /// `refunds` (a table with a refund core `state`) whose money is on its
    /// way, and the rows of `transfers` (tables with a `state`) still
    /// `started`.
    pub async fn work(
        &self,
        refunds: Option<&str>,
        transfers: &[&str],
    ) -> Result<crate::client::Work, NetError> {
        let mut work = crate::client::Work {
            outbox_pending: outbox::pending_count(&self.db).await?,
            ..crate::client::Work::default()
        };
        if let Some(table) = refunds {
            for (state, n) in self.count_by(table, "state").await? {
                if mpay_processor::refund::State::parse(&state)
                    .is_some_and(mpay_processor::refund::State::is_in_flight)
                {
                    work.refunds_moving += n;
                }
            }
        }
        for table in transfers {
            for (state, n) in self.count_by(table, "state").await? {
                if state == "started" {
                    work.transfers_started += n;
                }
            }
        }
        Ok(work)
    }

    /// What `GET /v1/identity` answers.
    pub fn identity(&self) -> crate::client::Identity {
        let me = &self.me;
        crate::client::Identity {
            name: me.name.clone(),
            id: me.id.to_hex(),
            role: me.role.as_str().to_owned(),
            region: me.region.clone(),
            certificate: mpay_identity::hex_string(&me.certificate.to_wire()),
        }
    }

    /// The Prometheus text common to all services, plus `by_state`
    /// (`<prefix>_payments{state=…}`).
    pub async fn metrics_text(
        &self,
        prefix: &str,
        by_state: &[(String, i64)],
    ) -> Result<String, NetError> {
        let pending = outbox::pending_count(&self.db).await?;
        let m = &self.metrics;
        let mut text = String::new();
        for (name, value) in [
            ("inbox_accepted_total", m.inbox_accepted.load(Relaxed)),
            ("inbox_refused_total", m.inbox_refused.load(Relaxed)),
            ("outbox_delivered_total", m.outbox_delivered.load(Relaxed)),
            (
                "outbox_delivery_failures_total",
                m.outbox_failures.load(Relaxed),
            ),
            ("inbox_batches_total", m.inbox_batches.load(Relaxed)),
            ("outbox_batches_total", m.outbox_batches.load(Relaxed)),
            ("outbox_frames_total", m.outbox_frames.load(Relaxed)),
        ] {
            text.push_str(&format!(
                "# TYPE {prefix}_{name} counter\n{prefix}_{name} {value}\n"
            ));
        }
        text.push_str(&format!(
            "# TYPE {prefix}_outbox_pending gauge\n{prefix}_outbox_pending {pending}\n"
        ));
        text.push_str(&format!("# TYPE {prefix}_payments gauge\n"));
        for (state, n) in by_state {
            text.push_str(&format!("{prefix}_payments{{state=\"{state}\"}} {n}\n"));
        }
        Ok(text)
    }

    /// Checks that `sender` has `role`, and for a CPP or MPP that it is of
    /// this service's region.
    pub fn check_sender(
        &self,
        sender: &ResolvedService,
        allowed: &[ServiceRole],
        same_region: bool,
    ) -> Result<(), NetError> {
        if !allowed.contains(&sender.role) {
            return Err(NetError::Refused(format!(
                "a {} may not send this kind",
                sender.role.as_str()
            )));
        }
        if same_region && sender.region != self.me.region {
            return Err(NetError::Refused(format!(
                "{} is not of region {}",
                sender.name, self.me.region
            )));
        }
        Ok(())
    }
}

/// Long-poll waiters keyed by a payment or merchant id: a waiter registers
/// before it checks the state, so a change committed between its check and
/// its wait still wakes it.
#[derive(Default)]
pub(crate) struct Waiters {
    map: Mutex<HashMap<[u8; 16], Arc<Notify>>>,
}

impl Waiters {
    fn entry(&self, key: [u8; 16]) -> Option<Arc<Notify>> {
        let mut map = self.map.lock().ok()?;
        if let Some(n) = map.get(&key) {
            return Some(Arc::clone(n));
        }
        if map.len() >= WAITER_KEYS_MAX {
            return None;
        }
        let n = Arc::new(Notify::new());
        map.insert(key, Arc::clone(&n));
        Some(n)
    }

    fn release(&self, key: [u8; 16], notify: Option<&Arc<Notify>>) {
        if let (Some(notify), Ok(mut map)) = (notify, self.map.lock()) {
            // The map's and ours: nobody else waits on it.
            if Arc::strong_count(notify) <= 2 {
                map.remove(&key);
            }
        }
    }

    /// Wakes every waiter on `key`.
    pub fn wake(&self, key: [u8; 16]) {
        let notify = self.map.lock().ok().and_then(|m| m.get(&key).cloned());
        if let Some(n) = notify {
            n.notify_waiters();
        }
    }

    /// Calls `check` until it says done or `wait` has passed, waiting for a
    /// wake between calls; returns its last value.
    pub async fn wait<T, F, Fut>(
        &self,
        key: [u8; 16],
        wait: Duration,
        mut check: F,
    ) -> Result<T, NetError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(T, bool), NetError>>,
    {
        /// A waiter without a key (table full) re-checks this often.
        const POLL_MS_UNKEYED: u64 = 50;
        let until = tokio::time::Instant::now() + wait;
        loop {
            let notify = self.entry(key);
            let fallback = Notify::new();
            let n = notify.as_deref().unwrap_or(&fallback);
            let notified = n.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (value, done) = match check().await {
                Ok(v) => v,
                Err(e) => {
                    self.release(key, notify.as_ref());
                    return Err(e);
                }
            };
            if done || tokio::time::Instant::now() >= until {
                self.release(key, notify.as_ref());
                return Ok(value);
            }
            let nap = if notify.is_some() {
                until
            } else {
                (tokio::time::Instant::now() + Duration::from_millis(POLL_MS_UNKEYED)).min(until)
            };
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(nap) => {}
            }
            self.release(key, notify.as_ref());
        }
    }
}

/// A running service: its address and tasks. [`Running::stop`] shuts the
/// server down (open connections are closed once idle) and stops the
/// background loops; dropping it aborts everything.
pub struct Running {
    addr: SocketAddr,
    scheme: &'static str,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), std::io::Error>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    pub(crate) fn start(
        listener: tokio::net::TcpListener,
        tls: Option<Arc<mpay_tls::rustls::ServerConfig>>,
        router: axum::Router,
        tasks: Vec<JoinHandle<()>>,
    ) -> Result<Running, ServeError> {
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            mpay_tls::serve(listener, tls, router, async move {
                let _ = rx.await;
            })
            .await
        });
        Ok(Running {
            addr,
            scheme,
            shutdown: Some(tx),
            server: Some(server),
            tasks,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL on loopback (`https://` when it serves TLS).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Stops serving and the background loops; waits (at most
    /// [`STOP_WAIT_MS_MAX`]) for requests in flight to finish.
    pub async fn stop(mut self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let abort = server.abort_handle();
            if tokio::time::timeout(Duration::from_millis(STOP_WAIT_MS_MAX), server)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }

    /// Runs until the server fails (or forever).
    pub async fn wait(mut self) -> Result<(), ServeError> {
        match self.server.take() {
            Some(server) => match server.await {
                Ok(result) => Ok(result?),
                Err(e) => Err(ServeError::Io(std::io::Error::other(e.to_string()))),
            },
            None => Ok(()),
        }
    }
}

/// Longest [`Running::stop`] waits for requests in flight.
pub const STOP_WAIT_MS_MAX: u64 = 5_000;

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Some(server) = &self.server {
            server.abort();
        }
    }
}

/// Spawns a loop that calls `step` every `pause`.
pub(crate) fn spawn_loop<F, Fut>(name: &'static str, pause: Duration, mut step: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), NetError>> + Send,
{
    tokio::spawn(async move {
        loop {
            if let Err(error) = step().await {
                tracing::error!(loop_name = name, %error, "background run failed");
            }
            tokio::time::sleep(pause).await;
        }
    })
}

/// Prometheus text as an HTTP answer.
pub fn prometheus(text: String) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
}

/// What a batch ack says of an item that failed: the error's code and
/// text as a 4xx answer would carry them, but only the code of a fault of
/// this service (its detail stays in the log).
fn item_failure(error: &NetError) -> String {
    let (status, code) = error.status();
    if error.is_busy() {
        "busy".into()
    } else if status.is_server_error() {
        code.into()
    } else {
        mpay_wire::prefix_within(&format!("{code}: {error}"), ITEM_OUTCOME_LEN_MAX).to_owned()
    }
}
