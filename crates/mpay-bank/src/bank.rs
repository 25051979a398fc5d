//! The bank as a service over its database: the imperative shell around
//! [`crate::ledger`] and [`crate::interbank`]. Every operation is one
//! database transaction (retried on a lost race), idempotent by (caller,
//! request id), so a crash or a repeat leaves either all of it or none.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use mpay_envelope::{ENVELOPE_VERSION, EnvelopeError, Header, ReplayGuard};
use mpay_identity::{Certificate, PartyId, Role, SecretKeys, Timestamp, TrustStore};
use mpay_money::{Amount, Currency};
use mpay_sql::outbox::{self, NewMessage, OutboxMessage};
use mpay_sql::sqlx::{self, Row, any::AnyRow};
use mpay_sql::{
    BoxFuture, Db, DbError, IdempotencyError, MigrateError, Migrations, OutboxError, Retryable, Tx,
    idempotency,
};
use mpay_wire::{Decode, DecodeError, Encode};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use crate::config::{Authenticator, BankConfig, Caller, ConfigError, PeerBank};
use crate::identity::{BankIdentity, IdentityError};
use crate::interbank::{
    AckOutcome, InterbankAck, InterbankMessage, OUTBOX_KIND, TransferReason, kind,
};
use crate::ledger::{
    AccountId, AccountView, BankRequest, Deposit, Destination, EndedHold, Funds, HoldId, HoldState,
    HoldView, InterbankId, InterbankReceipt, InterbankTransfer, LedgerError, Notification,
    NotificationKind, OpenAccount, PendingHold, PlaceHold, PostHold, PostingId, Transfer,
    TransferReceipt, VoidHold,
};
use crate::mandate::{self, Mandate, Operation};

/// The bank's tables (component `bank`), after `mpay_sql::MIGRATIONS`.
pub const MIGRATIONS: Migrations = Migrations::new(
    "bank",
    &[
        ("0001_bank", include_str!("../migrations/0001_bank.sql")),
        (
            "0002_bank_mandates",
            include_str!("../migrations/0002_bank_mandates.sql"),
        ),
    ],
);

/// Most holds one [`Bank::expire_holds`] transaction expires (it loops
/// until none is left).
pub const EXPIRY_BATCH_MAX: i64 = 256;
/// Most notifications one page returns.
pub const NOTIFICATIONS_PAGE_MAX: u32 = 500;

/// Posting reasons in the journal.
pub mod reasons {
    /// `external` → account.
    pub const DEPOSIT: &str = "deposit";
    /// Account → account in this bank.
    pub const TRANSFER: &str = "transfer";
    /// A posted hold, paid to an account in this bank.
    pub const HOLD_POSTED: &str = "hold_posted";
    /// Account → `settlement:<peer>`: money leaving for a peer bank.
    pub const INTERBANK_OUT: &str = "interbank_out";
    /// `settlement:<peer>` → account: money arriving from a peer bank.
    pub const INTERBANK_IN: &str = "interbank_in";
    /// `settlement:<peer>` → account: a transfer the peer sent back.
    pub const RETURNED: &str = "returned";
    /// `settlement:<peer>` → `suspense`: a return for an account that is gone.
    pub const SUSPENSE: &str = "suspense";
}

/// Everything that can go wrong, and whose fault it is
/// ([`BankError::is_client_fault`], [`BankError::is_peer_fault`]).
#[derive(Debug, thiserror::Error)]
pub enum BankError {
    /// The database failed (ours).
    #[error("database: {0}")]
    Db(#[from] DbError),
    /// Migrations refused to run (ours).
    #[error("migrations: {0}")]
    Migrate(#[from] MigrateError),
    /// The idempotency table: a reused key is the client's fault, the rest ours.
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    /// The outbox failed (ours).
    #[error("outbox: {0}")]
    Outbox(#[from] OutboxError),
    /// The configuration is wrong (the operator's).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The bank's identity is wrong (the operator's).
    #[error("bank identity: {0}")]
    Identity(#[from] IdentityError),
    /// No or an unknown bearer token.
    #[error("not authenticated")]
    Unauthenticated,
    /// The caller may not do this.
    #[error("{caller} may not {action}")]
    Forbidden {
        /// Who asked.
        caller: String,
        /// What was refused.
        action: String,
    },
    /// A malformed or out-of-limits request.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// No such account.
    #[error("no account {0}")]
    UnknownAccount(AccountId),
    /// The account exists already.
    #[error("account {0} exists already")]
    AccountExists(AccountId),
    /// No such hold.
    #[error("no hold {}", .0.0)]
    UnknownHold(HoldId),
    /// The bank is not configured as a peer.
    #[error("bank {0} is not a peer of this bank")]
    UnknownPeer(PartyId),
    /// The account cannot pay: nothing changed.
    #[error("insufficient funds in {account}: {available} available, {requested} requested")]
    InsufficientFunds {
        /// The account.
        account: AccountId,
        /// What it could pay.
        available: Amount,
        /// What was asked.
        requested: Amount,
    },
    /// The hold ended before.
    #[error("hold {} is {state}, not pending", .hold.0)]
    HoldNotPending {
        /// The hold.
        hold: HoldId,
        /// Its state.
        state: HoldState,
    },
    /// The hold's expiry passed: it can only be voided or expire.
    #[error("hold {} expired at {expires_at}", .hold.0)]
    HoldExpired {
        /// The hold.
        hold: HoldId,
        /// Its expiry.
        expires_at: Timestamp,
    },
    /// An interbank frame was refused by the envelope (the peer's fault).
    #[error("interbank frame refused: {0}")]
    Envelope(#[from] EnvelopeError),
    /// A peer's payload does not decode (the peer's fault).
    #[error("malformed interbank payload: {0}")]
    Decode(#[from] DecodeError),
    /// A peer's message breaks the protocol (the peer's fault).
    #[error("interbank protocol: {0}")]
    PeerMessage(String),
    /// The movement would take a balance past its bound
    /// ([`mpay_money::BALANCE_MINOR_MAX`]): nothing changed.
    #[error("{account}: the balance would pass its bound of {max} minor units")]
    BalanceLimit {
        /// The account.
        account: AccountId,
        /// The bound.
        max: i64,
    },
    /// An invariant of the books does not hold (ours; never expected).
    #[error("the books are broken: {0}")]
    Books(String),
}

impl From<sqlx::Error> for BankError {
    fn from(e: sqlx::Error) -> Self {
        BankError::Db(e.into())
    }
}

impl Retryable for BankError {
    fn is_retryable(&self) -> bool {
        match self {
            BankError::Db(e) => e.is_retryable(),
            BankError::Idempotency(e) => e.is_retryable(),
            BankError::Outbox(e) => e.is_retryable(),
            _ => false,
        }
    }
}

impl BankError {
    /// True when the bank is only busy (answered 503 `busy`, see
    /// [`mpay_http::busy_response`]): a transaction that kept
    /// losing races, a concurrent request with the same idempotency key, or
    /// no free database connection.
    pub fn is_busy(&self) -> bool {
        match self {
            BankError::Db(e) | BankError::Outbox(OutboxError::Db(e)) => e.is_busy(),
            BankError::Idempotency(IdempotencyError::Db(e)) => e.is_busy(),
            BankError::Idempotency(e) => e.is_retryable(),
            _ => false,
        }
    }

    /// True when the HTTP caller is at fault (a 4xx), not the bank.
    pub fn is_client_fault(&self) -> bool {
        match self {
            BankError::Idempotency(e) => e.is_client_fault(),
            BankError::Db(_)
            | BankError::Migrate(_)
            | BankError::Outbox(_)
            | BankError::Config(_)
            | BankError::Identity(_)
            | BankError::Books(_) => false,
            _ => true,
        }
    }

    /// True when a peer bank's message was at fault.
    pub fn is_peer_fault(&self) -> bool {
        matches!(
            self,
            BankError::Envelope(_) | BankError::Decode(_) | BankError::PeerMessage(_)
        )
    }
}

fn books(reason: impl Into<String>) -> BankError {
    BankError::Books(reason.into())
}

/// A [`LedgerError`] about `account`, as the bank reports it.
fn at_account(account: &AccountId) -> impl Fn(LedgerError) -> BankError + '_ {
    move |error| match error {
        LedgerError::InsufficientFunds {
            available,
            requested,
        } => BankError::InsufficientFunds {
            account: account.clone(),
            available,
            requested,
        },
        LedgerError::BalanceLimit => BankError::BalanceLimit {
            account: account.clone(),
            max: mpay_money::BALANCE_MINOR_MAX,
        },
        other => BankError::from(other),
    }
}

impl From<LedgerError> for BankError {
    fn from(error: LedgerError) -> Self {
        match error {
            LedgerError::Invalid(reason) => BankError::Invalid(reason),
            LedgerError::Broken(reason) => BankError::Books(reason.to_owned()),
            other => BankError::Invalid(other.to_string()),
        }
    }
}

/// Counters for the metrics endpoint.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests that changed the books (first time, not repeats).
    pub operations: AtomicU64,
    /// Requests refused for the caller's fault.
    pub refusals: AtomicU64,
    /// Holds placed.
    pub holds_placed: AtomicU64,
    /// Holds posted.
    pub holds_posted: AtomicU64,
    /// Holds voided.
    pub holds_voided: AtomicU64,
    /// Holds expired.
    pub holds_expired: AtomicU64,
    /// Interbank transfers acknowledged by their receiver.
    pub interbank_delivered: AtomicU64,
    /// Failed delivery attempts (retried with the outbox's backoff).
    pub interbank_delivery_failures: AtomicU64,
    /// Interbank transfers received and applied (first time).
    pub interbank_received: AtomicU64,
    /// Received transfers sent back (no such account).
    pub interbank_returned: AtomicU64,
    /// Interbank frames refused (envelope, decoding, protocol).
    pub interbank_refused: AtomicU64,
}

/// What the last run of one of the bank's loops did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Messages acknowledged.
    pub delivered: u32,
    /// Messages whose attempt failed (due again after the backoff).
    pub failed: u32,
}

/// An interbank transfer this bank sent, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentTransfer {
    /// The message.
    pub message: InterbankMessage,
    /// The receiving bank.
    pub peer: PartyId,
    /// `None` until the receiver acknowledged it.
    pub outcome: Option<AckOutcome>,
}

/// A pending outgoing frame: where it goes and the sealed bytes.
#[derive(Debug, Clone)]
pub struct OutgoingFrame {
    /// The receiving bank's base URL.
    pub base_url: String,
    /// The sealed INTERBANK_TRANSFER frame.
    pub frame: Vec<u8>,
}

fn ms(t: Timestamp) -> i64 {
    i64::try_from(t.as_millis()).unwrap_or(i64::MAX)
}

fn ts(ms: i64) -> Timestamp {
    Timestamp(u64::try_from(ms).unwrap_or(0))
}

/// The bank.
pub struct Bank {
    db: Db,
    config: BankConfig,
    id: PartyId,
    keys: SecretKeys,
    certificate: Certificate,
    trust: TrustStore,
    callers: Authenticator,
    replay: Mutex<ReplayGuard>,
    rng: Mutex<ChaCha20Rng>,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
}

impl std::fmt::Debug for Bank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bank")
            .field("id", &self.id)
            .field("currency", &self.config.currency)
            .field("backend", &self.db.backend())
            .finish_non_exhaustive()
    }
}

/// One account row.
struct AccountRow {
    holder: String,
    funds: Funds,
}

/// What a movement left behind.
struct Moved {
    posting: PostingId,
    from_after: Funds,
}

impl Bank {
    /// Opens the bank on `db` (migrating it). On the first start `identity`
    /// is stored; later starts load the stored one (`identity` may then be
    /// `None`, and must otherwise be the same bank). Checks that its
    /// certificate and every peer's are `Bank` certificates under a
    /// configured scheme root, and creates `external`, `suspense` and a
    /// settlement account per peer. `rng_seed` seeds message ids and
    /// sealing: pass fresh OS randomness in production.
    pub async fn open(
        db: Db,
        config: BankConfig,
        identity: Option<BankIdentity>,
        rng_seed: [u8; 32],
        now: Timestamp,
    ) -> Result<Bank, BankError> {
        let callers = Authenticator::new(&config.tokens)?;
        db.migrate(&[mpay_sql::MIGRATIONS, MIGRATIONS]).await?;
        let mut trust = TrustStore::new();
        for root in &config.scheme_roots {
            trust.add_issuer(root.clone());
        }
        let given = identity.map(|identity| {
            let id = identity.id();
            let (keys, certificate) = identity.into_parts();
            (id, keys.to_secret_bytes(), certificate.to_wire())
        });
        let given = &given;
        let currency = config.currency;
        let (secret, certificate) = db
            .with_retry(move |tx| {
                Box::pin(async move { load_or_store_identity(tx, given, currency, now).await })
            })
            .await?;
        let keys = SecretKeys::from_secret_bytes(&secret)
            .map_err(|e| books(format!("stored keys: {e}")))?;
        let certificate = Certificate::from_wire(&certificate)
            .map_err(|e| books(format!("stored certificate: {e}")))?;
        let (keys, certificate) = BankIdentity::new(keys, certificate)?.into_parts();
        trust
            .check_role(&certificate, Role::Bank, now)
            .map_err(IdentityError::from)?;
        let id = certificate.subject();
        let mut system = vec![AccountId::external(), AccountId::suspense()];
        for peer in &config.peers {
            if peer.id == id {
                return Err(ConfigError(format!("peer {} is this bank", peer.id)).into());
            }
            trust
                .check_role(&peer.certificate, Role::Bank, now)
                .map_err(|e| ConfigError(format!("peer {}: {e}", peer.id)))?;
            system.push(AccountId::settlement(peer.id));
        }
        let system = &system;
        db.with_retry(move |tx| {
            Box::pin(async move {
                for account in system {
                    sqlx::query(
                        "INSERT INTO bank_accounts (id, holder, balance, held, floor, created_at)
                         VALUES ($1, $2, 0, 0, NULL, $3) ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(account.as_str())
                    .bind("bank")
                    .bind(ms(now))
                    .execute(&mut **tx)
                    .await?;
                }
                Ok::<(), BankError>(())
            })
        })
        .await?;
        Ok(Bank {
            db,
            config,
            id,
            keys,
            certificate,
            trust,
            callers,
            replay: Mutex::new(ReplayGuard::new()),
            rng: Mutex::new(ChaCha20Rng::from_seed(rng_seed)),
            metrics: Metrics::default(),
        })
    }

    /// The bank's party id.
    pub fn id(&self) -> PartyId {
        self.id
    }

    /// The bank's certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// The bank's configuration.
    pub fn config(&self) -> &BankConfig {
        &self.config
    }

    /// The bank's one currency.
    pub fn currency(&self) -> Currency {
        self.config.currency
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The caller a bearer token stands for.
    pub fn caller(&self, token: &str) -> Option<&Caller> {
        self.callers.caller(token)
    }

    /// How many holds are pending (for a metrics gauge).
    pub async fn pending_holds(&self) -> Result<i64, BankError> {
        Ok(
            sqlx::query("SELECT COUNT(*) AS n FROM bank_holds WHERE state = 'pending'")
                .fetch_one(self.db.pool())
                .await?
                .try_get("n")?,
        )
    }

    fn amount(&self, minor_units: i64) -> Amount {
        Amount::new(minor_units, self.config.currency)
    }

    fn random_id(&self) -> Result<InterbankId, BankError> {
        let mut bytes = [0u8; 16];
        self.rng
            .lock()
            .map_err(|_| books("rng lock poisoned"))?
            .fill_bytes(&mut bytes);
        Ok(InterbankId(bytes))
    }

    fn seal(
        &self,
        kind: mpay_envelope::MessageKind,
        peer: &PeerBank,
        tx_id: InterbankId,
        payload: &[u8],
        now: Timestamp,
    ) -> Result<Vec<u8>, BankError> {
        let mut rng = self.rng.lock().map_err(|_| books("rng lock poisoned"))?;
        let header = Header {
            version: ENVELOPE_VERSION,
            suite: self.keys.suite(),
            kind,
            sender: self.id,
            receiver: peer.id,
            tx_id: tx_id.0,
            nonce: rng.next_u64(),
            sent_at: now,
        };
        Ok(mpay_envelope::seal(
            &self.keys,
            &header,
            payload,
            peer.certificate.keys(),
            &mut *rng,
        )?)
    }

    fn peer(&self, id: PartyId) -> Result<&PeerBank, BankError> {
        self.config.peer(id).ok_or(BankError::UnknownPeer(id))
    }

    fn refused<T>(&self, result: Result<T, BankError>) -> Result<T, BankError> {
        if let Err(error) = &result
            && error.is_client_fault()
        {
            self.metrics.refusals.fetch_add(1, Relaxed);
        }
        result
    }

    fn require_operator(&self, caller: &Caller, action: &str) -> Result<(), BankError> {
        if caller.is_operator() {
            Ok(())
        } else {
            Err(BankError::Forbidden {
                caller: caller.name().to_owned(),
                action: action.to_owned(),
            })
        }
    }

    /// `caller` may do `operation` on `account`: directly or under a
    /// mandate ([`crate::mandate::authorize`]).
    async fn authorize(
        &self,
        caller: &Caller,
        account: &AccountId,
        operation: Operation,
        amount: Option<Amount>,
        to: Option<&AccountId>,
    ) -> Result<(), BankError> {
        mandate::authorize(
            &self.db,
            self.currency(),
            caller,
            account,
            operation,
            amount,
            to,
        )
        .await
    }

    /// Grants (or replaces) a mandate: only a caller acting directly on the
    /// account (its holder, or the operator on the holder's instruction).
    pub async fn grant_mandate(
        &self,
        caller: &Caller,
        grant: &Mandate,
        now: Timestamp,
    ) -> Result<Mandate, BankError> {
        self.refused(grant.validate(self.currency()))?;
        self.refused(self.require_direct(caller, &grant.account))?;
        let result = self
            .db
            .with_retry(move |tx| {
                Box::pin(async move {
                    load_account(tx, &grant.account, self.currency())
                        .await?
                        .ok_or_else(|| BankError::UnknownAccount(grant.account.clone()))?;
                    mandate::grant(tx, caller, grant, ms(now)).await
                })
            })
            .await;
        self.refused(result)?;
        Ok(grant.clone())
    }

    /// Revokes the mandate of `processor` on `account` (the same callers as
    /// [`Bank::grant_mandate`]); false if none was in force.
    pub async fn revoke_mandate(
        &self,
        caller: &Caller,
        account: &AccountId,
        processor: &str,
        now: Timestamp,
    ) -> Result<bool, BankError> {
        self.refused(self.require_direct(caller, account))?;
        let result = self
            .db
            .with_retry(move |tx| {
                Box::pin(async move { mandate::revoke(tx, account, processor, ms(now)).await })
            })
            .await;
        self.refused(result)
    }

    /// The mandate of `processor` on `account`, for a caller acting
    /// directly on the account or for that processor.
    pub async fn mandate(
        &self,
        caller: &Caller,
        account: &AccountId,
        processor: &str,
    ) -> Result<Option<Mandate>, BankError> {
        if caller.name() != processor {
            self.refused(self.require_direct(caller, account))?;
        }
        mandate::load(&self.db, account, processor, self.currency()).await
    }

    fn require_direct(&self, caller: &Caller, account: &AccountId) -> Result<(), BankError> {
        if caller.may_use(account) {
            Ok(())
        } else {
            Err(BankError::Forbidden {
                caller: caller.name().to_owned(),
                action: format!("grant or revoke mandates on {account}"),
            })
        }
    }

    /// Runs `work` once per (caller, request id): the first time in a
    /// transaction that also stores its response; a repeat with the same
    /// body returns the stored response; another body is refused. The flag
    /// is true the first time. A refusal rolls the work back and leaves no
    /// answer: [`Bank::idempotent`] keeps the refusals a caller acts on.
    async fn run_once<'env, R, F>(
        &'env self,
        caller: &'env Caller,
        request_id: &'env str,
        request_hash: [u8; 32],
        now: Timestamp,
        work: &'env F,
    ) -> Result<(R, bool), BankError>
    where
        R: Encode + Decode + Send + 'env,
        F: for<'c> Fn(&'c mut Tx<'env>) -> BoxFuture<'c, Result<R, BankError>> + Sync,
    {
        let scope = caller.scope();
        let outcome = self
            .db
            .with_retry(move |tx| {
                let scope = scope.clone();
                Box::pin(async move {
                    if let Some(stored) =
                        idempotency::begin(tx, &scope, request_id, &request_hash, ms(now)).await?
                    {
                        return self.stored_answer(&stored).map(|r| (r, false));
                    }
                    let response = work(&mut *tx).await?;
                    idempotency::finish(tx, &scope, request_id, &response.to_wire()).await?;
                    Ok((response, true))
                })
            })
            .await;
        if let Ok((_, true)) = &outcome {
            self.metrics.operations.fetch_add(1, Relaxed);
        }
        self.refused(outcome)
    }

    /// Runs `work` once per (caller, request id) ([`Bank::run_once`]), and
    /// keeps a refusal for want of funds as the key's answer (DESIGN §3.2:
    /// a repeat returns the stored result, a refusal included). A caller
    /// acts on such a refusal (a hold refused declines the payment; a
    /// failed micropayment batch is taken back), so a copy of the request
    /// that arrives later must not succeed once money has come in. A caller
    /// that waits for money asks again under its next attempt's key.
    async fn idempotent<'env, R, F>(
        &'env self,
        caller: &'env Caller,
        request_id: &'env str,
        request_hash: [u8; 32],
        now: Timestamp,
        work: &'env F,
    ) -> Result<(R, bool), BankError>
    where
        R: Encode + Decode + Send + 'env,
        F: for<'c> Fn(&'c mut Tx<'env>) -> BoxFuture<'c, Result<R, BankError>> + Sync,
    {
        let refusal = match self
            .run_once(caller, request_id, request_hash, now, work)
            .await
        {
            Err(BankError::InsufficientFunds {
                account,
                available,
                requested,
            }) => format!(
                "insufficient_funds {} {} {}",
                account.as_str(),
                available.minor_units(),
                requested.minor_units()
            ),
            other => return other,
        };
        let scope = caller.scope();
        // The transaction commits the refusal, so the answer travels as
        // `Ok(Err(refusal))` and is unwrapped after the commit.
        let answer = self
            .db
            .with_retry(move |tx| {
                let (scope, refusal) = (scope.clone(), refusal.clone());
                Box::pin(async move {
                    if let Some(stored) =
                        idempotency::begin(tx, &scope, request_id, &request_hash, ms(now)).await?
                    {
                        // A copy got there between the two transactions.
                        return Ok(self.stored_answer(&stored).map(|r| (r, false)));
                    }
                    idempotency::finish_refused(tx, &scope, request_id, &refusal).await?;
                    Ok(Err(self.stored_refusal(&refusal)?))
                })
            })
            .await;
        // Counted as a refusal once, by the first attempt.
        answer.and_then(|answer| answer)
    }

    /// A key's stored answer: its response, or the refusal it keeps.
    fn stored_answer<R: Decode>(
        &self,
        stored: &idempotency::StoredResponse,
    ) -> Result<R, BankError> {
        if let Some(refusal) = &stored.refusal {
            return Err(self.stored_refusal(refusal).unwrap_or_else(|broken| broken));
        }
        R::from_wire(&stored.response)
            .map_err(|e| books(format!("a stored response does not decode: {e}")))
    }

    /// The refusal a key keeps, as the error it was first answered with; a
    /// text that does not parse is a broken store.
    fn stored_refusal(&self, text: &str) -> Result<BankError, BankError> {
        let broken = || books(format!("a stored refusal does not parse: `{text}`"));
        let mut parts = text.split(' ');
        let (Some("insufficient_funds"), Some(account), Some(available), Some(requested), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(broken());
        };
        let minor = |t: &str| {
            t.parse::<i64>()
                .map(|m| Amount::new(m, self.currency()))
                .map_err(|_| broken())
        };
        Ok(BankError::InsufficientFunds {
            account: AccountId::parse(account).map_err(|_| broken())?,
            available: minor(available)?,
            requested: minor(requested)?,
        })
    }

    /// Opens a holder account with balance zero (operator only).
    pub async fn open_account(
        &self,
        caller: &Caller,
        request_id: &str,
        request: &OpenAccount,
        now: Timestamp,
    ) -> Result<AccountView, BankError> {
        self.refused(self.require_operator(caller, "open accounts"))?;
        self.refused(request.validate(self.currency()).map_err(BankError::from))?;
        let work = unit_of_work(move |tx| {
            Box::pin(async move {
                if load_account(tx, &request.account, self.currency())
                    .await?
                    .is_some()
                {
                    return Err(BankError::AccountExists(request.account.clone()));
                }
                sqlx::query(
                    "INSERT INTO bank_accounts (id, holder, balance, held, floor, created_at)
                     VALUES ($1, $2, 0, 0, $3, $4)",
                )
                .bind(request.account.as_str())
                .bind(request.holder.as_str())
                .bind(request.floor.minor_units())
                .bind(ms(now))
                .execute(&mut **tx)
                .await?;
                Ok(AccountView {
                    id: request.account.clone(),
                    holder: request.holder.clone(),
                    funds: Funds {
                        balance: self.amount(0),
                        held: self.amount(0),
                        floor: Some(request.floor),
                    },
                })
            })
        });
        let (response, _) = self
            .idempotent(caller, request_id, request.request_hash(), now, &work)
            .await?;
        Ok(response)
    }

    /// Credits an account from `external` (operator only).
    pub async fn deposit(
        &self,
        caller: &Caller,
        request_id: &str,
        request: &Deposit,
        now: Timestamp,
    ) -> Result<TransferReceipt, BankError> {
        self.refused(self.require_operator(caller, "make deposits"))?;
        self.refused(request.validate(self.currency()).map_err(BankError::from))?;
        let external = &AccountId::external();
        let work = unit_of_work(move |tx| {
            Box::pin(async move {
                let moved = self
                    .move_money(
                        tx,
                        external,
                        &request.account,
                        request.amount,
                        reasons::DEPOSIT,
                        &request.reference,
                        NotificationKind::Debited,
                        now,
                    )
                    .await?;
                Ok(TransferReceipt {
                    posting: moved.posting,
                    from: external.clone(),
                    to: request.account.clone(),
                    amount: request.amount,
                    from_balance_after: moved.from_after.balance,
                    at: now,
                })
            })
        });
        let (response, _) = self
            .idempotent(caller, request_id, request.request_hash(), now, &work)
            .await?;
        Ok(response)
    }

    /// Moves money between two holder accounts of this bank.
    pub async fn transfer(
        &self,
        caller: &Caller,
        request_id: &str,
        request: &Transfer,
        now: Timestamp,
    ) -> Result<TransferReceipt, BankError> {
        self.refused(request.validate(self.currency()).map_err(BankError::from))?;
        self.refused(
            self.authorize(
                caller,
                &request.from,
                Operation::Debit,
                Some(request.amount),
                Some(&request.to),
            )
            .await,
        )?;
        self.refused(
            mandate::check_payee(
                &self.db,
                self.currency(),
                caller,
                &request.from,
                &request.to,
            )
            .await,
        )?;
        let work = unit_of_work(move |tx| {
            Box::pin(async move {
                let moved = self
                    .move_money(
                        tx,
                        &request.from,
                        &request.to,
                        request.amount,
                        reasons::TRANSFER,
                        &request.reference,
                        NotificationKind::Debited,
                        now,
                    )
                    .await?;
                Ok(TransferReceipt {
                    posting: moved.posting,
                    from: request.from.clone(),
                    to: request.to.clone(),
                    amount: request.amount,
                    from_balance_after: moved.from_after.balance,
                    at: now,
                })
            })
        });
        let (response, _) = self
            .idempotent(caller, request_id, request.request_hash(), now, &work)
            .await?;
        Ok(response)
    }

    /// Reserves funds on an account until the hold is posted, voided or
    /// expires. Refused, changing nothing, when the account's available
    /// funds above its floor do not cover it.
    pub async fn place_hold(
        &self,
        caller: &Caller,
        request_id: &str,
        request: &PlaceHold,
        now: Timestamp,
    ) -> Result<HoldView, BankError> {
        self.refused(request.validate(self.currency()).map_err(BankError::from))?;
        self.refused(
            self.authorize(
                caller,
                &request.account,
                Operation::Hold,
                Some(request.amount),
                None,
            )
            .await,
        )?;
        let placed_by = caller.name();
        let work = unit_of_work(move |tx| {
            Box::pin(async move {
                // Checked in the transaction: a repeat after the hold's
                // expiry still finds its stored answer first.
                request.check_expiry(now)?;
                let row = load_account(tx, &request.account, self.currency())
                    .await?
                    .ok_or_else(|| BankError::UnknownAccount(request.account.clone()))?;
                let after = row
                    .funds
                    .hold(request.amount)
                    .map_err(at_account(&request.account))?;
                store_funds(tx, &request.account, &after).await?;
                let id: i64 = sqlx::query(
                    "INSERT INTO bank_holds (account, amount, reference, placed_by, expires_at,
                                             state, created_at, resolved_at, posting_id,
                                             destination, message_id)
                     VALUES ($1, $2, $3, $4, $5, 'pending', $6, NULL, NULL, NULL, NULL)
                     RETURNING id",
                )
                .bind(request.account.as_str())
                .bind(request.amount.minor_units())
                .bind(request.reference.as_str())
                .bind(placed_by)
                .bind(ms(request.expires_at))
                .bind(ms(now))
                .fetch_one(&mut **tx)
                .await?
                .try_get("id")?;
                notify(
                    tx,
                    &request.account,
                    NotificationKind::HoldPlaced,
                    request.amount,
                    &after,
                    &request.reference,
                    now,
                )
                .await?;
                Ok(HoldView {
                    id: HoldId(id),
                    account: request.account.clone(),
                    amount: request.amount,
                    reference: request.reference.clone(),
                    placed_by: placed_by.to_owned(),
                    expires_at: request.expires_at,
                    state: HoldState::Pending,
                    created_at: now,
                    resolved_at: None,
                    posting: None,
                    destination: None,
                    message: None,
                })
            })
        });
        let (view, first_time) = self
            .idempotent(caller, request_id, request.request_hash(), now, &work)
            .await?;
        if first_time {
            self.metrics.holds_placed.fetch_add(1, Relaxed);
        }
        Ok(view)
    }

    /// Posts a pending hold (before its expiry): its amount leaves the
    /// account for `destination`, in this bank or, through the settlement
    /// account, at a peer bank. Only the caller that placed the hold (or the
    /// operator) may post it.
    pub async fn post_hold(
        &self,
        caller: &Caller,
        request_id: &str,
        request: &PostHold,
        now: Timestamp,
    ) -> Result<HoldView, BankError> {
        self.refused(request.validate(self.currency()).map_err(BankError::from))?;
        if let Destination::Interbank { bank, .. } = &request.destination {
            self.refused(self.peer(*bank).map(|_| ()))?;
        }
        // Drawn before the transaction, which may run more than once.
        let message_id = self.random_id()?;
        let work = unit_of_work(move |tx| {
            Box::pin(async move {
                let (view, pending) = self.pending_hold(tx, caller, request.hold).await?;
                let ended = pending.post(now).map_err(|e| match e {
                    LedgerError::HoldExpired(expires_at) => BankError::HoldExpired {
                        hold: request.hold,
                        expires_at,
                    },
                    other => BankError::from(other),
                })?;
                self.release(tx, &ended).await?;
                let (posting, message) = match &request.destination {
                    Destination::Account(to) => {
                        if *to == ended.account {
                            return Err(BankError::Invalid(
                                "a hold cannot be posted to its own account".into(),
                            ));
                        }
                        let moved = self
                            .move_money(
                                tx,
                                &ended.account,
                                to,
                                ended.amount,
                                reasons::HOLD_POSTED,
                                &view.reference,
                                NotificationKind::HoldPosted,
                                now,
                            )
                            .await?;
                        (moved.posting, None)
                    }
                    Destination::Interbank { bank, account } => {
                        let message = InterbankMessage {
                            id: message_id,
                            from_account: ended.account.clone(),
                            to_account: account.clone(),
                            amount: ended.amount,
                            reference: view.reference.clone(),
                            reason: TransferReason::Payment,
                            returns: None,
                        };
                        let moved = self
                            .send_interbank(tx, *bank, &message, NotificationKind::HoldPosted, now)
                            .await?;
                        (moved.posting, Some(message_id))
                    }
                };
                let updated = sqlx::query(
                    "UPDATE bank_holds SET state = 'posted', resolved_at = $2, posting_id = $3,
                                           destination = $4, message_id = $5
                     WHERE id = $1 AND state = 'pending'",
                )
                .bind(request.hold.0)
                .bind(ms(now))
                .bind(posting.0)
                .bind(request.destination.to_wire())
                .bind(message.map(|m| m.0.to_vec()))
                .execute(&mut **tx)
                .await?;
                if updated.rows_affected() != 1 {
                    return Err(books(format!("hold {} ended twice", request.hold.0)));
                }
                Ok(HoldView {
                    state: HoldState::Posted,
                    resolved_at: Some(now),
                    posting: Some(posting),
                    destination: Some(request.destination.clone()),
                    message,
                    ..view
                })
            })
        });
        let (view, first_time) = self
            .idempotent(caller, request_id, request.request_hash(), now, &work)
            .await?;
        if first_time {
            self.metrics.holds_posted.fetch_add(1, Relaxed);
        }
        Ok(view)
    }

    /// Voids a pending hold: its funds are available again. Only the caller
    /// that placed it (or the operator) may void it.
    pub async fn void_hold(
        &self,
        caller: &Caller,
        request_id: &str,
        request: &VoidHold,
        now: Timestamp,
    ) -> Result<HoldView, BankError> {
        let work = unit_of_work(move |tx| {
            Box::pin(async move {
                let (view, pending) = self.pending_hold(tx, caller, request.hold).await?;
                let ended = pending.void();
                self.end_hold(tx, &ended, &view.reference, now).await?;
                Ok(HoldView {
                    state: HoldState::Voided,
                    resolved_at: Some(now),
                    ..view
                })
            })
        });
        let (view, first_time) = self
            .idempotent(caller, request_id, request.request_hash(), now, &work)
            .await?;
        if first_time {
            self.metrics.holds_voided.fetch_add(1, Relaxed);
        }
        Ok(view)
    }

    /// Expires every pending hold whose expiry is at or before `now`;
    /// returns the holds expired. The service runs it periodically.
    pub async fn expire_holds(&self, now: Timestamp) -> Result<Vec<HoldId>, BankError> {
        let mut expired = Vec::new();
        loop {
            let batch = self
                .db
                .with_retry(move |tx| {
                    Box::pin(async move {
                        let rows = sqlx::query(
                            "SELECT id, account, amount, reference, placed_by, expires_at
                             FROM bank_holds WHERE state = 'pending' AND expires_at <= $1
                             ORDER BY expires_at, id LIMIT $2",
                        )
                        .bind(ms(now))
                        .bind(EXPIRY_BATCH_MAX)
                        .fetch_all(&mut **tx)
                        .await?;
                        let mut batch = Vec::with_capacity(rows.len());
                        for row in rows {
                            let reference: String = row.try_get("reference")?;
                            let pending = PendingHold {
                                id: HoldId(row.try_get("id")?),
                                account: stored_account(&row, "account")?,
                                amount: self.amount(row.try_get("amount")?),
                                expires_at: ts(row.try_get("expires_at")?),
                                placed_by: row.try_get("placed_by")?,
                            };
                            let ended = pending
                                .expire(now)
                                .map_err(|_| books("a hold due to expire is not due"))?;
                            self.end_hold(tx, &ended, &reference, now).await?;
                            batch.push(ended.id);
                        }
                        Ok::<_, BankError>(batch)
                    })
                })
                .await?;
            let full = i64::try_from(batch.len()).unwrap_or(i64::MAX) >= EXPIRY_BATCH_MAX;
            self.metrics
                .holds_expired
                .fetch_add(u64::try_from(batch.len()).unwrap_or(0), Relaxed);
            expired.extend(batch);
            if !full {
                return Ok(expired);
            }
        }
    }

    /// Sends money from a holder account here to a holder account at a peer
    /// bank: debits the account and credits `settlement:<peer>` now, and
    /// leaves the message in the outbox for the delivery loop.
    pub async fn interbank_transfer(
        &self,
        caller: &Caller,
        request_id: &str,
        request: &InterbankTransfer,
        now: Timestamp,
    ) -> Result<InterbankReceipt, BankError> {
        self.refused(request.validate(self.currency()).map_err(BankError::from))?;
        self.refused(
            self.authorize(
                caller,
                &request.from,
                Operation::Debit,
                Some(request.amount),
                Some(&request.to),
            )
            .await,
        )?;
        self.refused(self.peer(request.bank).map(|_| ()))?;
        let message = &InterbankMessage {
            id: self.random_id()?,
            from_account: request.from.clone(),
            to_account: request.to.clone(),
            amount: request.amount,
            reference: request.reference.clone(),
            reason: TransferReason::Payment,
            returns: None,
        };
        let work = unit_of_work(move |tx| {
            Box::pin(async move {
                let moved = self
                    .send_interbank(tx, request.bank, message, NotificationKind::Debited, now)
                    .await?;
                Ok(InterbankReceipt {
                    message: message.id,
                    posting: moved.posting,
                    from: request.from.clone(),
                    bank: request.bank,
                    to: request.to.clone(),
                    amount: request.amount,
                    from_balance_after: moved.from_after.balance,
                    at: now,
                })
            })
        });
        let (response, _) = self
            .idempotent(caller, request_id, request.request_hash(), now, &work)
            .await?;
        Ok(response)
    }

    /// Handles a sealed INTERBANK_TRANSFER frame from a peer: opens and
    /// verifies it, applies it once per (peer, message id) — credit the
    /// account, or send the money back — and returns the sealed
    /// INTERBANK_ACK. A repeat of an applied message is acknowledged with
    /// the same outcome and changes nothing.
    pub async fn receive_interbank(
        &self,
        frame: &[u8],
        now: Timestamp,
    ) -> Result<Vec<u8>, BankError> {
        let outcome = self.receive_interbank_inner(frame, now).await;
        if let Err(error) = &outcome
            && error.is_client_fault()
        {
            self.metrics.interbank_refused.fetch_add(1, Relaxed);
        }
        outcome
    }

    async fn receive_interbank_inner(
        &self,
        frame: &[u8],
        now: Timestamp,
    ) -> Result<Vec<u8>, BankError> {
        let header = mpay_envelope::peek_header(frame)?;
        if header.kind != kind::INTERBANK_TRANSFER {
            return Err(BankError::PeerMessage(format!(
                "kind {:#06x} is not INTERBANK_TRANSFER",
                header.kind.0
            )));
        }
        let peer = self.peer(header.sender)?;
        let message = self.open_from(peer, frame, now)?;
        let message = InterbankMessage::from_wire(message.payload())?;
        if message.id.0 != header.tx_id {
            return Err(BankError::PeerMessage(
                "the envelope's transaction id is not the message id".into(),
            ));
        }
        let peer_id = peer.id;
        let message_ref = &message;
        let (outcome, first_time) = self
            .db
            .with_retry(move |tx| {
                Box::pin(async move { self.apply_incoming(tx, peer_id, message_ref, now).await })
            })
            .await?;
        if first_time {
            self.metrics.interbank_received.fetch_add(1, Relaxed);
            if outcome == AckOutcome::Returned {
                self.metrics.interbank_returned.fetch_add(1, Relaxed);
            }
        }
        let ack = InterbankAck {
            id: message.id,
            outcome,
        };
        self.seal(kind::INTERBANK_ACK, peer, message.id, &ack.to_wire(), now)
    }

    /// Opens and verifies a frame from `peer`.
    fn open_from(
        &self,
        peer: &PeerBank,
        frame: &[u8],
        now: Timestamp,
    ) -> Result<mpay_envelope::Verified, BankError> {
        self.trust
            .check_role(&peer.certificate, Role::Bank, now)
            .map_err(EnvelopeError::from)?;
        let unverified = mpay_envelope::open(frame, &self.keys, self.id, &self.trust, now)?;
        let mut replay = self
            .replay
            .lock()
            .map_err(|_| books("replay guard lock poisoned"))?;
        Ok(unverified.verify(&peer.certificate, &self.trust, &mut replay, now)?)
    }

    async fn apply_incoming(
        &self,
        tx: &mut Tx<'_>,
        peer: PartyId,
        message: &InterbankMessage,
        now: Timestamp,
    ) -> Result<(AckOutcome, bool), BankError> {
        let hash = message.hash();
        let seen = sqlx::query(
            "SELECT outcome, message_hash FROM bank_interbank_received
             WHERE peer = $1 AND message_id = $2",
        )
        .bind(peer.0.to_vec())
        .bind(message.id.0.to_vec())
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(row) = seen {
            let stored_hash: Vec<u8> = row.try_get("message_hash")?;
            if stored_hash != hash {
                return Err(BankError::PeerMessage(format!(
                    "message {} was received before with another body",
                    message.id.to_hex()
                )));
            }
            let outcome: String = row.try_get("outcome")?;
            let outcome = AckOutcome::from_name(&outcome)
                .ok_or_else(|| books(format!("stored outcome `{outcome}`")))?;
            return Ok((outcome, false));
        }
        if let Some(original) = message.returns {
            // Only what this bank sent to that peer comes back, exactly
            // once (the return's id is derived from the original's).
            let sent = sqlx::query(
                "SELECT message FROM bank_interbank_sent WHERE message_id = $1 AND peer = $2",
            )
            .bind(original.0.to_vec())
            .bind(peer.0.to_vec())
            .fetch_optional(&mut **tx)
            .await?;
            let expected = match sent {
                Some(row) => InterbankMessage::from_wire(&row.try_get::<Vec<u8>, _>("message")?)
                    .map_err(|e| books(format!("a stored message does not decode: {e}")))?
                    .return_message(),
                None => {
                    return Err(BankError::PeerMessage(format!(
                        "a return of message {}, which this bank never sent to that peer",
                        original.to_hex()
                    )));
                }
            };
            if expected != *message {
                return Err(BankError::PeerMessage(
                    "a return that does not match what was sent".into(),
                ));
            }
        }
        let target = load_account(tx, &message.to_account, self.currency())
            .await?
            .map(|_| message.to_account.kind());
        let mut outcome = message
            .decide(target, self.currency())
            .map_err(|e| BankError::PeerMessage(e.to_string()))?;
        let settlement = AccountId::settlement(peer);
        let mut posting = None;
        if outcome == AckOutcome::Credited {
            let reason = match message.reason {
                TransferReason::Payment => reasons::INTERBANK_IN,
                TransferReason::Returned => reasons::RETURNED,
            };
            let moved = self
                .move_money(
                    tx,
                    &settlement,
                    &message.to_account,
                    message.amount,
                    reason,
                    &message.reference,
                    NotificationKind::Debited,
                    now,
                )
                .await;
            match moved {
                Ok(moved) => posting = Some(moved.posting),
                // An account (or the settlement account) at its bound
                // cannot take it: a payment goes back, a return waits in
                // suspense, as for a missing account.
                Err(BankError::BalanceLimit { .. }) => {
                    outcome = match message.reason {
                        TransferReason::Payment => AckOutcome::Returned,
                        TransferReason::Returned => AckOutcome::Suspense,
                    };
                }
                Err(other) => return Err(other),
            }
        }
        match outcome {
            AckOutcome::Credited => {}
            AckOutcome::Suspense => {
                let moved = self
                    .move_money(
                        tx,
                        &settlement,
                        &AccountId::suspense(),
                        message.amount,
                        reasons::SUSPENSE,
                        &message.reference,
                        NotificationKind::Debited,
                        now,
                    )
                    .await?;
                posting = Some(moved.posting);
            }
            AckOutcome::Returned => {
                // The money never entered these books: only the message
                // back, which the peer books as `returned`.
                record_sent(tx, peer, &message.return_message(), None, now).await?;
            }
        }
        sqlx::query(
            "INSERT INTO bank_interbank_received
                 (peer, message_id, message_hash, outcome, posting_id, received_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(peer.0.to_vec())
        .bind(message.id.0.to_vec())
        .bind(hash.to_vec())
        .bind(outcome.as_str())
        .bind(posting.map(|p| p.0))
        .bind(ms(now))
        .execute(&mut **tx)
        .await?;
        Ok((outcome, true))
    }

    /// Seals an outbox message (an interbank transfer) for delivery now: a
    /// fresh frame per attempt, since the envelope refuses stale frames and
    /// the outbox may retry for longer than the freshness window.
    pub fn seal_outgoing(
        &self,
        message: &OutboxMessage,
        now: Timestamp,
    ) -> Result<OutgoingFrame, BankError> {
        let (peer, transfer) = self.outgoing(message)?;
        let frame = self.seal(
            kind::INTERBANK_TRANSFER,
            peer,
            transfer.id,
            &message.payload,
            now,
        )?;
        Ok(OutgoingFrame {
            base_url: peer.base_url.clone(),
            frame,
        })
    }

    fn outgoing(
        &self,
        message: &OutboxMessage,
    ) -> Result<(&PeerBank, InterbankMessage), BankError> {
        if message.kind != OUTBOX_KIND {
            return Err(books(format!("outbox kind `{}`", message.kind)));
        }
        let peer = PartyId::from_hex(&message.destination)
            .ok_or_else(|| books("an outbox destination is not a bank id"))?;
        let peer = self.peer(peer)?;
        let transfer = InterbankMessage::from_wire(&message.payload)
            .map_err(|e| books(format!("an outbox payload does not decode: {e}")))?;
        Ok((peer, transfer))
    }

    /// Checks the receiver's sealed acknowledgement of an outbox message
    /// and, if it holds, records the outcome and marks the message
    /// delivered.
    pub async fn accept_ack(
        &self,
        message: &OutboxMessage,
        frame: &[u8],
        now: Timestamp,
    ) -> Result<AckOutcome, BankError> {
        let (peer, transfer) = self.outgoing(message)?;
        let header = mpay_envelope::peek_header(frame)?;
        if header.kind != kind::INTERBANK_ACK || header.sender != peer.id {
            return Err(BankError::PeerMessage(
                "the answer is not an INTERBANK_ACK from the receiving bank".into(),
            ));
        }
        let verified = self.open_from(peer, frame, now)?;
        let ack = InterbankAck::from_wire(verified.payload())?;
        if ack.id != transfer.id {
            return Err(BankError::PeerMessage(
                "the acknowledgement is for another message".into(),
            ));
        }
        sqlx::query(
            "UPDATE bank_interbank_sent SET status = $2, acknowledged_at = $3
             WHERE message_id = $1 AND status = 'sent'",
        )
        .bind(transfer.id.0.to_vec())
        .bind(ack.outcome.as_str())
        .bind(ms(now))
        .execute(self.db.pool())
        .await?;
        outbox::mark_delivered(&self.db, message.id, ms(now)).await?;
        self.metrics.interbank_delivered.fetch_add(1, Relaxed);
        Ok(ack.outcome)
    }

    /// Records a failed delivery attempt (due again after the outbox's backoff).
    pub async fn delivery_failed(
        &self,
        message: &OutboxMessage,
        now: Timestamp,
    ) -> Result<(), BankError> {
        self.metrics
            .interbank_delivery_failures
            .fetch_add(1, Relaxed);
        outbox::mark_failed(&self.db, message.id, ms(now)).await?;
        Ok(())
    }

    /// An interbank transfer this bank sent (a payment or a return).
    pub async fn sent_transfer(&self, id: InterbankId) -> Result<Option<SentTransfer>, BankError> {
        let row = sqlx::query(
            "SELECT peer, message, status FROM bank_interbank_sent WHERE message_id = $1",
        )
        .bind(id.0.to_vec())
        .fetch_optional(self.db.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let peer: Vec<u8> = row.try_get("peer")?;
        let peer = PartyId(
            peer.try_into()
                .map_err(|_| books("a stored peer id is not 16 bytes"))?,
        );
        let message = InterbankMessage::from_wire(&row.try_get::<Vec<u8>, _>("message")?)
            .map_err(|e| books(format!("a stored message does not decode: {e}")))?;
        let status: String = row.try_get("status")?;
        Ok(Some(SentTransfer {
            message,
            peer,
            outcome: AckOutcome::from_name(&status),
        }))
    }

    /// The account, if `caller` may see it.
    pub async fn account(
        &self,
        caller: &Caller,
        account: &AccountId,
    ) -> Result<AccountView, BankError> {
        self.refused(
            self.authorize(caller, account, Operation::Read, None, None)
                .await,
        )?;
        let mut conn = self.db.pool().acquire().await?;
        let row = load_account_on(&mut conn, account, self.currency())
            .await?
            .ok_or_else(|| BankError::UnknownAccount(account.clone()));
        let row = self.refused(row)?;
        Ok(AccountView {
            id: account.clone(),
            holder: row.holder,
            funds: row.funds,
        })
    }

    /// The hold, if `caller` placed it or may use its account.
    pub async fn hold(&self, caller: &Caller, hold: HoldId) -> Result<HoldView, BankError> {
        let row = sqlx::query(HOLD_SELECT)
            .bind(hold.0)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(BankError::UnknownHold(hold));
        let view = hold_view(&self.refused(row)?, self.currency())?;
        if view.placed_by != caller.name() {
            self.refused(
                self.authorize(caller, &view.account, Operation::Read, None, None)
                    .await,
            )?;
        }
        Ok(view)
    }

    /// Up to `limit` (at most [`NOTIFICATIONS_PAGE_MAX`]) notifications of
    /// `account` after notification id `after`, oldest first.
    pub async fn notifications(
        &self,
        caller: &Caller,
        account: &AccountId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Notification>, BankError> {
        self.refused(
            self.authorize(caller, account, Operation::Read, None, None)
                .await,
        )?;
        let rows = sqlx::query(
            "SELECT id, kind, amount, balance_after, available_after, reference, at
             FROM bank_notifications WHERE account = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(account.as_str())
        .bind(after)
        .bind(i64::from(limit.min(NOTIFICATIONS_PAGE_MAX)))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let kind: String = row.try_get("kind")?;
                Ok(Notification {
                    id: row.try_get("id")?,
                    account: account.clone(),
                    kind: NotificationKind::from_name(&kind)
                        .ok_or_else(|| books(format!("stored notification kind `{kind}`")))?,
                    amount: self.amount(row.try_get("amount")?),
                    balance_after: self.amount(row.try_get("balance_after")?),
                    available_after: self.amount(row.try_get("available_after")?),
                    reference: row.try_get("reference")?,
                    at: ts(row.try_get("at")?),
                })
            })
            .collect()
    }

    /// Every account's balance (the operator's view; no caller check).
    pub async fn balances(&self) -> Result<BTreeMap<AccountId, Amount>, BankError> {
        let rows = sqlx::query("SELECT id, balance FROM bank_accounts")
            .fetch_all(self.db.pool())
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    stored_account(row, "id")?,
                    self.amount(row.try_get("balance")?),
                ))
            })
            .collect()
    }

    /// Checks the books in one consistent read: the balances sum to zero;
    /// every balance equals its credits minus its debits in the journal;
    /// every account's held sum equals its pending holds; no account with a
    /// floor is below it, counting what is held (`balance - held ≥ floor`).
    pub async fn check_books(&self) -> Result<(), BankError> {
        let mut tx = self.db.begin_read().await?;
        let rows = sqlx::query(
            "SELECT a.id, a.balance, a.held, a.floor,
                (SELECT CAST(COALESCE(SUM(p.amount / 1000000000), 0) AS BIGINT) FROM bank_postings p
                  WHERE p.credit = a.id) AS credits_high,
                (SELECT CAST(COALESCE(SUM(p.amount % 1000000000), 0) AS BIGINT) FROM bank_postings p
                  WHERE p.credit = a.id) AS credits_low,
                (SELECT CAST(COALESCE(SUM(p.amount / 1000000000), 0) AS BIGINT) FROM bank_postings p
                  WHERE p.debit = a.id) AS debits_high,
                (SELECT CAST(COALESCE(SUM(p.amount % 1000000000), 0) AS BIGINT) FROM bank_postings p
                  WHERE p.debit = a.id) AS debits_low,
                (SELECT CAST(COALESCE(SUM(h.amount), 0) AS BIGINT) FROM bank_holds h
                  WHERE h.account = a.id AND h.state = 'pending') AS pending
             FROM bank_accounts a",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        // Summed in i128: a partial sum of bounded balances cannot overflow.
        let mut total: i128 = 0;
        for row in &rows {
            let id = stored_account(row, "id")?;
            let funds = Funds {
                balance: self.amount(row.try_get("balance")?),
                held: self.amount(row.try_get("held")?),
                floor: row
                    .try_get::<Option<i64>, _>("floor")?
                    .map(|f| self.amount(f)),
            };
            // An account's lifetime credits and debits are unbounded in
            // count and may pass i64 (about 9,200 transfers of
            // AMOUNT_MINOR_MAX), where SQLite's SUM fails and PostgreSQL's
            // cast back to BIGINT does: each is summed in two parts that
            // cannot overflow (amounts are positive, the high part at most
            // i64::MAX / 10^9, the low part below 10^9, for fewer than about
            // 9·10^9 postings) and joined here in i128.
            let joined = |high: &str, low: &str| -> Result<i128, BankError> {
                let high: i64 = row.try_get(high)?;
                let low: i64 = row.try_get(low)?;
                Ok(i128::from(high) * 1_000_000_000 + i128::from(low))
            };
            let credits = joined("credits_high", "credits_low")?;
            let debits = joined("debits_high", "debits_low")?;
            let pending: i64 = row.try_get("pending")?;
            if credits - debits != i128::from(funds.balance.minor_units()) {
                return Err(books(format!(
                    "{id}: the balance differs from its postings"
                )));
            }
            if pending != funds.held.minor_units() {
                return Err(books(format!("{id}: the held sum differs from its holds")));
            }
            if funds.floor.is_none() && !id.kind().is_system() {
                return Err(books(format!("{id}: a holder account without a floor")));
            }
            funds.check().map_err(|e| books(format!("{id}: {e}")))?;
            funds
                .balance
                .check_within(mpay_money::BALANCE_MINOR_MAX)
                .map_err(|e| books(format!("{id}: {e}")))?;
            total += i128::from(funds.balance.minor_units());
        }
        if total != 0 {
            return Err(books(format!(
                "the balances sum to {total} minor units, not zero"
            )));
        }
        Ok(())
    }

    /// Loads a pending hold that `caller` may end.
    async fn pending_hold(
        &self,
        tx: &mut Tx<'_>,
        caller: &Caller,
        hold: HoldId,
    ) -> Result<(HoldView, PendingHold), BankError> {
        let row = sqlx::query(HOLD_SELECT)
            .bind(hold.0)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or(BankError::UnknownHold(hold))?;
        let view = hold_view(&row, self.currency())?;
        if !caller.is_operator() && view.placed_by != caller.name() {
            return Err(BankError::Forbidden {
                caller: caller.name().to_owned(),
                action: format!("end hold {}, placed by another caller", hold.0),
            });
        }
        if view.state != HoldState::Pending {
            return Err(BankError::HoldNotPending {
                hold,
                state: view.state,
            });
        }
        let pending = PendingHold {
            id: view.id,
            account: view.account.clone(),
            amount: view.amount,
            expires_at: view.expires_at,
            placed_by: view.placed_by.clone(),
        };
        Ok((view, pending))
    }

    /// Releases an ended hold's amount from its account's held sum.
    async fn release(&self, tx: &mut Tx<'_>, ended: &EndedHold) -> Result<Funds, BankError> {
        let row = load_account(tx, &ended.account, self.currency())
            .await?
            .ok_or_else(|| books(format!("hold {} has no account", ended.id.0)))?;
        let after = row.funds.release(ended.amount)?;
        store_funds(tx, &ended.account, &after).await?;
        Ok(after)
    }

    /// Ends a hold without paying it (voided or expired): release, record,
    /// tell the holder.
    async fn end_hold(
        &self,
        tx: &mut Tx<'_>,
        ended: &EndedHold,
        reference: &str,
        now: Timestamp,
    ) -> Result<(), BankError> {
        let after = self.release(tx, ended).await?;
        let updated = sqlx::query(
            "UPDATE bank_holds SET state = $2, resolved_at = $3 WHERE id = $1 AND state = 'pending'",
        )
        .bind(ended.id.0)
        .bind(ended.state.as_str())
        .bind(ms(now))
        .execute(&mut **tx)
        .await?;
        if updated.rows_affected() != 1 {
            return Err(books(format!("hold {} ended twice", ended.id.0)));
        }
        notify(
            tx,
            &ended.account,
            NotificationKind::for_hold(ended.state),
            ended.amount,
            &after,
            reference,
            now,
        )
        .await
    }

    /// Debits `from` (`debit_kind` tells its holder), credits
    /// `settlement:<peer>`, and records the message for delivery.
    async fn send_interbank(
        &self,
        tx: &mut Tx<'_>,
        peer: PartyId,
        message: &InterbankMessage,
        debit_kind: NotificationKind,
        now: Timestamp,
    ) -> Result<Moved, BankError> {
        if peer == self.id {
            return Err(BankError::Invalid(
                "an interbank transfer must go to another bank".into(),
            ));
        }
        let moved = self
            .move_money(
                tx,
                &message.from_account,
                &AccountId::settlement(peer),
                message.amount,
                reasons::INTERBANK_OUT,
                &message.reference,
                debit_kind,
                now,
            )
            .await?;
        record_sent(tx, peer, message, Some(moved.posting), now).await?;
        Ok(moved)
    }

    /// Moves `amount` from `from` to `to`: the funds check on `from`, both
    /// balances, one posting, and a notification to each holder account.
    #[allow(clippy::too_many_arguments)]
    async fn move_money(
        &self,
        tx: &mut Tx<'_>,
        from: &AccountId,
        to: &AccountId,
        amount: Amount,
        reason: &str,
        reference: &str,
        debit_kind: NotificationKind,
        now: Timestamp,
    ) -> Result<Moved, BankError> {
        if from == to {
            return Err(BankError::Invalid("a movement needs two accounts".into()));
        }
        let currency = self.currency();
        let from_row = load_account(tx, from, currency)
            .await?
            .ok_or_else(|| BankError::UnknownAccount(from.clone()))?;
        let to_row = load_account(tx, to, currency)
            .await?
            .ok_or_else(|| BankError::UnknownAccount(to.clone()))?;
        let from_after = from_row.funds.debit(amount).map_err(at_account(from))?;
        let to_after = to_row.funds.credit(amount).map_err(at_account(to))?;
        // Invariant: a movement never leaves an account below its floor.
        from_after
            .check()
            .map_err(|e| books(format!("{from}: {e}")))?;
        store_funds(tx, from, &from_after).await?;
        store_funds(tx, to, &to_after).await?;
        let posting: i64 = sqlx::query(
            "INSERT INTO bank_postings (at, debit, credit, amount, reason, reference)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(ms(now))
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(amount.minor_units())
        .bind(reason)
        .bind(reference)
        .fetch_one(&mut **tx)
        .await?
        .try_get("id")?;
        notify(tx, from, debit_kind, amount, &from_after, reference, now).await?;
        notify(
            tx,
            to,
            NotificationKind::Credited,
            amount,
            &to_after,
            reference,
            now,
        )
        .await?;
        Ok(Moved {
            posting: PostingId(posting),
            from_after,
        })
    }
}

/// Gives a unit of work the higher-ranked signature
/// [`Bank::idempotent`] needs (closure signatures are only inferred from a
/// bound at a call).
fn unit_of_work<'env, R, F>(work: F) -> F
where
    F: for<'c> Fn(&'c mut Tx<'env>) -> BoxFuture<'c, Result<R, BankError>>,
{
    work
}

const HOLD_SELECT: &str = "SELECT id, account, amount, reference, placed_by, expires_at, state,
        created_at, resolved_at, posting_id, destination, message_id
     FROM bank_holds WHERE id = $1";

fn stored_account(row: &AnyRow, column: &str) -> Result<AccountId, BankError> {
    let text: String = row.try_get(column)?;
    AccountId::parse(&text).map_err(|_| books(format!("stored account id `{text}`")))
}

fn hold_view(row: &AnyRow, currency: Currency) -> Result<HoldView, BankError> {
    let state: String = row.try_get("state")?;
    let destination: Option<Vec<u8>> = row.try_get("destination")?;
    let message: Option<Vec<u8>> = row.try_get("message_id")?;
    Ok(HoldView {
        id: HoldId(row.try_get("id")?),
        account: stored_account(row, "account")?,
        amount: Amount::new(row.try_get("amount")?, currency),
        reference: row.try_get("reference")?,
        placed_by: row.try_get("placed_by")?,
        expires_at: ts(row.try_get("expires_at")?),
        state: HoldState::from_name(&state)
            .ok_or_else(|| books(format!("stored hold state `{state}`")))?,
        created_at: ts(row.try_get("created_at")?),
        resolved_at: row.try_get::<Option<i64>, _>("resolved_at")?.map(ts),
        posting: row.try_get::<Option<i64>, _>("posting_id")?.map(PostingId),
        destination: destination
            .map(|bytes| Destination::from_wire(&bytes))
            .transpose()
            .map_err(|e| books(format!("a stored destination does not decode: {e}")))?,
        message: message
            .map(|bytes| bytes.try_into().map(InterbankId))
            .transpose()
            .map_err(|_| books("a stored message id is not 16 bytes"))?,
    })
}

async fn load_account(
    tx: &mut Tx<'_>,
    account: &AccountId,
    currency: Currency,
) -> Result<Option<AccountRow>, BankError> {
    load_account_on(tx, account, currency).await
}

async fn load_account_on(
    conn: &mut sqlx::AnyConnection,
    account: &AccountId,
    currency: Currency,
) -> Result<Option<AccountRow>, BankError> {
    let row = sqlx::query("SELECT holder, balance, held, floor FROM bank_accounts WHERE id = $1")
        .bind(account.as_str())
        .fetch_optional(conn)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let amount = |minor: i64| Amount::new(minor, currency);
    Ok(Some(AccountRow {
        holder: row.try_get("holder")?,
        funds: Funds {
            balance: amount(row.try_get("balance")?),
            held: amount(row.try_get("held")?),
            floor: row.try_get::<Option<i64>, _>("floor")?.map(amount),
        },
    }))
}

async fn store_funds(tx: &mut Tx<'_>, account: &AccountId, funds: &Funds) -> Result<(), BankError> {
    let updated = sqlx::query("UPDATE bank_accounts SET balance = $2, held = $3 WHERE id = $1")
        .bind(account.as_str())
        .bind(funds.balance.minor_units())
        .bind(funds.held.minor_units())
        .execute(&mut **tx)
        .await?;
    if updated.rows_affected() != 1 {
        return Err(books(format!("{account} vanished")));
    }
    Ok(())
}

/// Tells a holder account's holder what happened (the bank's own accounts
/// are not told).
async fn notify(
    tx: &mut Tx<'_>,
    account: &AccountId,
    kind: NotificationKind,
    amount: Amount,
    after: &Funds,
    reference: &str,
    now: Timestamp,
) -> Result<(), BankError> {
    if account.kind().is_system() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO bank_notifications
             (account, kind, amount, balance_after, available_after, reference, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(account.as_str())
    .bind(kind.as_str())
    .bind(amount.minor_units())
    .bind(after.balance.minor_units())
    .bind(after.available()?.minor_units())
    .bind(reference)
    .bind(ms(now))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records an interbank message this bank sends and puts it in the outbox,
/// in the caller's transaction.
async fn record_sent(
    tx: &mut Tx<'_>,
    peer: PartyId,
    message: &InterbankMessage,
    posting: Option<PostingId>,
    now: Timestamp,
) -> Result<(), BankError> {
    let payload = message.to_wire();
    sqlx::query(
        "INSERT INTO bank_interbank_sent
             (message_id, peer, message, posting_id, status, created_at, acknowledged_at)
         VALUES ($1, $2, $3, $4, 'sent', $5, NULL)",
    )
    .bind(message.id.0.to_vec())
    .bind(peer.0.to_vec())
    .bind(payload.as_slice())
    .bind(posting.map(|p| p.0))
    .bind(ms(now))
    .execute(&mut **tx)
    .await?;
    outbox::enqueue(
        tx,
        &NewMessage {
            destination: &peer.to_hex(),
            kind: OUTBOX_KIND,
            payload: &payload,
            idempotency_key: &message.id.to_hex(),
        },
        ms(now),
    )
    .await?;
    Ok(())
}

/// Secret keys and certificate, encoded, as stored.
type StoredIdentity = (zeroize::Zeroizing<Vec<u8>>, Vec<u8>);
/// An identity given to [`Bank::open`], encoded: its id, secret keys, certificate.
type GivenIdentity = (PartyId, zeroize::Zeroizing<Vec<u8>>, Vec<u8>);

async fn load_or_store_identity(
    tx: &mut Tx<'_>,
    given: &Option<GivenIdentity>,
    currency: Currency,
    now: Timestamp,
) -> Result<StoredIdentity, BankError> {
    let row = sqlx::query(
        "SELECT party, secret_keys, certificate, currency FROM bank_identity WHERE id = 1",
    )
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(row) = row {
        let stored_currency: String = row.try_get("currency")?;
        if stored_currency != currency.code() {
            return Err(ConfigError(format!(
                "this database keeps {stored_currency}, the configuration says {currency}"
            ))
            .into());
        }
        let party: Vec<u8> = row.try_get("party")?;
        if let Some((id, _, _)) = given
            && id.0.as_slice() != party.as_slice()
        {
            return Err(
                ConfigError(format!("this database belongs to another bank than {id}")).into(),
            );
        }
        return Ok((
            zeroize::Zeroizing::new(row.try_get("secret_keys")?),
            row.try_get("certificate")?,
        ));
    }
    let Some((id, secret, certificate)) = given else {
        return Err(ConfigError(
            "a new bank database needs an identity (BankIdentity::generate)".into(),
        )
        .into());
    };
    sqlx::query(
        "INSERT INTO bank_identity (id, party, secret_keys, certificate, currency, created_at)
         VALUES (1, $1, $2, $3, $4, $5)",
    )
    .bind(id.0.to_vec())
    .bind(secret.to_vec())
    .bind(certificate.as_slice())
    .bind(currency.code())
    .bind(ms(now))
    .execute(&mut **tx)
    .await?;
    Ok((secret.clone(), certificate.clone()))
}
