//! The money office as a service over its database: the imperative shell
//! around [`crate::audit`]. Every operation is one database transaction
//! (retried on a lost race), so a crash leaves either all of it or none.
//!
//! Books (double entry, one currency per office; the sum of all balances is
//! always zero):
//! - `external` — money from outside the office (deposits), no floor;
//! - `owner:<name>` — an owner's account, floor zero;
//! - `float` — value the office has issued to wallets and not taken back;
//! - `loss` — value nobody could be charged for (fraud beyond the owner's
//!   means), no floor.
//!
//! Charge: owner → float. Redeem: float → owner. Unbacked value (a fork, a
//! late or self-aborted claim): owner → float up to the owner's balance, the
//! rest loss → float. So `float` always equals the value wallets may hold.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mpay_envelope::{ENVELOPE_VERSION, Header, ReplayGuard};
use mpay_identity::{
    Certificate, CertificateBody, Limits, PartyId, PublicKeys, RevocationEntry, RevocationList,
    RevocationReason, Role, SecretKeys, Suite, Timestamp, TrustStore, tags,
};
use mpay_money::{Amount, Currency};
use mpay_offline::TxId;
use mpay_offline::chain::{ChainEntry, ChargeVoucher, GENESIS_PREV_HASH};
use mpay_offline::sync::{
    Outcome, Resolution, SYNC_CATCH_UP_MAX, SyncAttestation, SyncRequest, SyncResponse,
    kind as sync_kind,
};
use mpay_sql::sqlx::{self, Row};
use mpay_sql::{Db, DbError, IdempotencyError, Migrations, Retryable, Tx, idempotency};
use mpay_wire::{Decode, DecodeError, Encode};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use crate::audit::{
    self, ClaimRecord, FraudProof, SyncContext, SyncRefusal, Unbacked, UnbackedReason, WalletRecord,
};

/// The office's tables. `{blob}` and `{serial_pk}` are `mpay-sql`
/// placeholders for the two dialects.
pub const MIGRATIONS: Migrations = Migrations::new(
    "money_office",
    &[("0001_office", include_str!("../migrations/0001_office.sql"))],
);

/// Names of the office's own accounts.
pub mod accounts {
    pub const EXTERNAL: &str = "external";
    pub const FLOAT: &str = "float";
    pub const LOSS: &str = "loss";

    pub fn owner(name: &str) -> String {
        format!("owner:{name}")
    }
}

/// Longest owner name.
pub const OWNER_NAME_LEN_MAX: usize = 64;
/// How long an enrolled wallet's certificate is valid.
pub const CERTIFICATE_VALIDITY_MS_DEFAULT: u64 = 365 * mpay_identity::MILLIS_PER_DAY;
/// Idempotency scope of charges.
const CHARGE_SCOPE: &str = "office.charge";

/// What an office is configured with.
#[derive(Clone, Debug)]
pub struct OfficeConfig {
    pub currency: Currency,
    /// The limits every enrolled wallet's certificate carries.
    pub wallet_limits: Limits,
    pub certificate_validity_ms: u64,
    /// Accept the simulation-only suite (never in production).
    pub simulation: bool,
}

impl OfficeConfig {
    pub fn default_for(currency: Currency) -> OfficeConfig {
        OfficeConfig {
            currency,
            wallet_limits: Limits {
                offline_balance_max: Amount::new(50_000, currency),
                payment_max: Amount::new(10_000, currency),
                days_between_syncs_max: 7,
                payments_between_syncs_max: 200,
            },
            certificate_validity_ms: CERTIFICATE_VALIDITY_MS_DEFAULT,
            simulation: false,
        }
    }
}

/// Everything that can go wrong, and whose fault it is.
#[derive(Debug, thiserror::Error)]
pub enum OfficeError {
    #[error("database: {0}")]
    Db(#[from] DbError),
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error("not authorised")]
    Unauthorized,
    #[error("unknown owner {0}")]
    UnknownOwner(String),
    #[error("owner {0} already exists")]
    OwnerExists(String),
    #[error("unknown wallet {0}")]
    UnknownWallet(PartyId),
    #[error("wallet {0} is revoked")]
    Revoked(PartyId),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("insufficient funds in {account}: balance {balance}")]
    InsufficientFunds { account: String, balance: Amount },
    #[error("sync refused: {0}")]
    SyncRefused(SyncRefusal),
    #[error(
        "double spend: wallet {wallet} wrote two entries with sequence {seq}; certificate revoked, owner {owner} charged {charged} for this wallet's double spends"
    )]
    Fraud {
        wallet: PartyId,
        owner: String,
        seq: u64,
        charged: Amount,
    },
    #[error("sealed request refused: {0}")]
    Envelope(#[from] mpay_envelope::EnvelopeError),
    #[error("malformed: {0}")]
    Decode(#[from] DecodeError),
    #[error("the books would break: {0}")]
    Books(&'static str),
}

impl From<sqlx::Error> for OfficeError {
    fn from(e: sqlx::Error) -> Self {
        OfficeError::Db(e.into())
    }
}

impl OfficeError {
    /// True when the office is only busy (answered 503 `busy`, see
    /// [`mpay_http::busy_response`]): a transaction that kept
    /// losing races, a concurrent request with the same idempotency key, or
    /// no free database connection.
    pub fn is_busy(&self) -> bool {
        match self {
            OfficeError::Db(e) | OfficeError::Idempotency(IdempotencyError::Db(e)) => e.is_busy(),
            OfficeError::Idempotency(e) => e.is_retryable(),
            _ => false,
        }
    }
}

impl Retryable for OfficeError {
    fn is_retryable(&self) -> bool {
        match self {
            OfficeError::Db(e) => e.is_retryable(),
            OfficeError::Idempotency(e) => matches!(e, IdempotencyError::ConcurrentDuplicate),
            _ => false,
        }
    }
}

impl OfficeError {
    /// True when the caller (a wallet or an owner) is at fault, not the office.
    pub fn is_client_fault(&self) -> bool {
        !matches!(self, OfficeError::Db(_) | OfficeError::Books(_))
    }
}

/// A fraud the office caught, as it reports it.
#[derive(Clone, Debug)]
pub struct FraudRecord {
    pub wallet: PartyId,
    pub owner: String,
    pub seq: u64,
    pub proof: FraudProof,
    pub detected_at: Timestamp,
    /// Listed by [`Office::frauds`]: what this detection charged. Returned
    /// with a sync refusal: the recorded sum for the wallet, so the wallet
    /// and the office's list tell one figure.
    pub charged: Amount,
}

/// What enrolment returns to the new wallet.
#[derive(Clone, Debug)]
pub struct Enrolment {
    pub certificate: Certificate,
    pub office_certificate: Certificate,
    pub attestation: SyncAttestation,
}

/// The signed proof that the enrolling party holds the keys it presents.
pub fn enrolment_proof_bytes(owner: &str, keys: &PublicKeys, requested_at: Timestamp) -> Vec<u8> {
    let mut w = mpay_wire::Writer::new();
    w.text(owner).put(keys).put(&requested_at);
    w.into_bytes()
}

/// Signs an enrolment request with the new wallet's keys.
pub fn sign_enrolment(
    owner: &str,
    keys: &SecretKeys,
    requested_at: Timestamp,
) -> mpay_identity::Signature {
    keys.sign(
        tags::ENROLMENT,
        &[&enrolment_proof_bytes(owner, &keys.public(), requested_at)],
    )
}

/// Counters for the metrics endpoint.
#[derive(Default, Debug)]
pub struct Metrics {
    pub syncs: std::sync::atomic::AtomicU64,
    pub sync_entries: std::sync::atomic::AtomicU64,
    pub sync_refusals: std::sync::atomic::AtomicU64,
    pub frauds: std::sync::atomic::AtomicU64,
    pub charges: std::sync::atomic::AtomicU64,
    pub enrolments: std::sync::atomic::AtomicU64,
}

/// The money office.
pub struct Office {
    db: Db,
    id: PartyId,
    keys: Arc<SecretKeys>,
    certificate: Certificate,
    config: OfficeConfig,
    trust: TrustStore,
    replay: Mutex<ReplayGuard>,
    rng: Mutex<ChaCha20Rng>,
    pub metrics: Metrics,
}

fn now_ms(now: Timestamp) -> i64 {
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

fn seq_i64(seq: u64) -> Result<i64, OfficeError> {
    i64::try_from(seq).map_err(|_| OfficeError::Invalid("sequence number too large".into()))
}

fn party(bytes: &[u8]) -> Result<PartyId, OfficeError> {
    let id: [u8; 16] = bytes
        .try_into()
        .map_err(|_| OfficeError::Books("stored party id is not 16 bytes"))?;
    Ok(PartyId(id))
}

impl Office {
    /// Opens the office on `db` (migrating it), creating its identity on the
    /// first start. `rng_seed` seeds key generation and sealing; pass fresh
    /// OS randomness in production.
    pub async fn open(
        db: Db,
        config: OfficeConfig,
        rng_seed: [u8; 32],
        now: Timestamp,
    ) -> Result<Office, OfficeError> {
        db.migrate(&[mpay_sql::MIGRATIONS, MIGRATIONS])
            .await
            .map_err(|e| OfficeError::Invalid(format!("migrations: {e}")))?;
        let mut rng = ChaCha20Rng::from_seed(rng_seed);
        let suite = if config.simulation {
            Suite::SimulationOnly
        } else {
            Suite::Ed25519X25519
        };
        // The identity draws from an RNG of its own, seeded from the main
        // one, so nothing the office later draws (tokens, ids, nonces) comes
        // from the stream its keys were made from. (Cloning the RNG here
        // would repeat that stream.)
        let identity_rng = ChaCha20Rng::from_rng(&mut rng);
        let seed_rng = &identity_rng;
        let (keys, certificate) = db
            .with_retry(move |tx| {
                Box::pin(async move {
                    let mut rng = seed_rng.clone();
                    load_or_create_identity(tx, &mut rng, suite, now).await
                })
            })
            .await?;
        let mut trust = if config.simulation {
            TrustStore::for_simulation()
        } else {
            TrustStore::new()
        };
        trust.add_issuer(certificate.clone());
        Ok(Office {
            id: certificate.subject(),
            db,
            keys: Arc::new(keys),
            certificate,
            config,
            trust,
            replay: Mutex::new(ReplayGuard::new()),
            rng: Mutex::new(rng),
            metrics: Metrics::default(),
        })
    }

    pub fn id(&self) -> PartyId {
        self.id
    }

    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    pub fn config(&self) -> &OfficeConfig {
        &self.config
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    fn random16(&self) -> [u8; 16] {
        let mut bytes = [0u8; 16];
        if let Ok(mut rng) = self.rng.lock() {
            rng.fill_bytes(&mut bytes);
        }
        bytes
    }

    fn amount(&self, minor: i64) -> Amount {
        Amount::new(minor, self.config.currency)
    }

    /// Opens an owner's account with `deposit` from outside; returns the
    /// owner's bearer token (shown once; the office keeps only its hash).
    pub async fn open_account(
        &self,
        owner: &str,
        deposit: Amount,
        now: Timestamp,
    ) -> Result<String, OfficeError> {
        if owner.is_empty()
            || owner.len() > OWNER_NAME_LEN_MAX
            || !owner
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return Err(OfficeError::Invalid(format!(
                "owner names are 1..={OWNER_NAME_LEN_MAX} characters of [A-Za-z0-9._-]"
            )));
        }
        if deposit.currency() != self.config.currency || deposit.is_negative() {
            return Err(OfficeError::Invalid(format!(
                "deposit must be a non-negative amount in {}",
                self.config.currency
            )));
        }
        let token = mpay_identity::hex_string(&[self.random16(), self.random16()].concat());
        let token_hash = blake3::hash(token.as_bytes());
        let account = &accounts::owner(owner);
        self.db
            .with_retry(move |tx| {
                Box::pin(async move {
                    let exists = sqlx::query("SELECT owner FROM owners WHERE owner = $1")
                        .bind(owner)
                        .fetch_optional(&mut **tx)
                        .await?;
                    if exists.is_some() {
                        return Err(OfficeError::OwnerExists(owner.to_owned()));
                    }
                    sqlx::query(
                        "INSERT INTO owners (owner, token_hash, created_at) VALUES ($1, $2, $3)",
                    )
                    .bind(owner)
                    .bind(token_hash.as_bytes().to_vec())
                    .bind(now_ms(now))
                    .execute(&mut **tx)
                    .await?;
                    create_account(tx, account, self.config.currency, Some(0)).await?;
                    transfer(
                        tx,
                        accounts::EXTERNAL,
                        account,
                        deposit,
                        "deposit",
                        owner,
                        now,
                    )
                    .await
                })
            })
            .await?;
        Ok(token)
    }

    /// The owner a bearer token belongs to.
    pub async fn authenticate(&self, token: &str) -> Result<String, OfficeError> {
        let hash = blake3::hash(token.as_bytes());
        let row = sqlx::query("SELECT owner FROM owners WHERE token_hash = $1")
            .bind(hash.as_bytes().to_vec())
            .fetch_optional(self.db.pool())
            .await?;
        match row {
            Some(row) => Ok(row.try_get("owner")?),
            None => Err(OfficeError::Unauthorized),
        }
    }

    /// Enrols a wallet for `owner`: checks it holds the keys it presents,
    /// issues its certificate with the office's limits and its enrolment
    /// attestation.
    pub async fn enroll(
        &self,
        owner: &str,
        keys: PublicKeys,
        requested_at: Timestamp,
        proof: &mpay_identity::Signature,
        now: Timestamp,
    ) -> Result<Enrolment, OfficeError> {
        if !self.trust.accepts(keys.suite) {
            return Err(OfficeError::Invalid("suite not accepted".into()));
        }
        keys.verify(
            tags::ENROLMENT,
            &[&enrolment_proof_bytes(owner, &keys, requested_at)],
            proof,
        )
        .map_err(|_| OfficeError::Invalid("enrolment proof does not verify".into()))?;
        if now.millis_since(requested_at) > mpay_envelope::MESSAGE_AGE_MAX_MS
            || requested_at > now.saturating_add_ms(mpay_envelope::CLOCK_SKEW_MAX_MS)
        {
            return Err(OfficeError::Invalid("enrolment request is stale".into()));
        }
        let wallet = PartyId(self.random16());
        let certificate = Certificate::issue(
            CertificateBody {
                subject: wallet,
                role: Role::Wallet,
                keys,
                limits: Some(self.config.wallet_limits),
                issued_at: now,
                expires_at: now.saturating_add_ms(self.config.certificate_validity_ms),
                issuer: self.id,
            },
            &self.keys,
        );
        let attestation = SyncAttestation::issue(
            self.id,
            &self.keys,
            wallet,
            0,
            GENESIS_PREV_HASH,
            Amount::zero(self.config.currency),
            now,
        );
        let certificate_ref = &certificate;
        self.db
            .with_retry(move |tx| Box::pin(async move {
                owner_exists(tx, owner).await?;
                sqlx::query(
                    "INSERT INTO wallets (wallet, owner, certificate, head, enrolled_at, synced_at, revoked_at, branches_charged)
                     VALUES ($1, $2, $3, NULL, $4, NULL, NULL, 0)",
                )
                .bind(wallet.0.to_vec())
                .bind(owner)
                .bind(certificate_ref.to_wire())
                .bind(now_ms(now))
                .execute(&mut **tx)
                .await?;
                Ok::<(), OfficeError>(())
            }))
            .await?;
        self.metrics
            .enrolments
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Enrolment {
            certificate,
            office_certificate: self.certificate.clone(),
            attestation,
        })
    }

    /// Charges `wallet` with `amount` from its owner's account: a signed
    /// voucher. Idempotent by `idempotency_key`: a repeat returns the same
    /// voucher; the same key with another wallet or amount is refused.
    pub async fn charge(
        &self,
        owner: &str,
        wallet: PartyId,
        amount: Amount,
        idempotency_key: &str,
        now: Timestamp,
    ) -> Result<ChargeVoucher, OfficeError> {
        if !amount.is_positive() || amount.currency() != self.config.currency {
            return Err(OfficeError::Invalid(format!(
                "charge must be a positive amount in {}",
                self.config.currency
            )));
        }
        if amount.checked_cmp(&self.config.wallet_limits.offline_balance_max)
            == Ok(std::cmp::Ordering::Greater)
        {
            return Err(OfficeError::Invalid(format!(
                "charge exceeds the offline balance limit of {}",
                self.config.wallet_limits.offline_balance_max
            )));
        }
        let mut request = mpay_wire::Writer::new();
        request.text(owner).put(&wallet).put(&amount);
        let request_hash = blake3::hash(request.as_bytes());
        let charge_id = self.random16();
        let fresh_voucher =
            &ChargeVoucher::issue(self.id, &self.keys, wallet, charge_id, amount, now);
        let voucher = self
            .db
            .with_retry(move |tx| {
                Box::pin(async move {
                    if let Some(stored) = idempotency::begin(
                        tx,
                        CHARGE_SCOPE,
                        idempotency_key,
                        request_hash.as_bytes(),
                        now_ms(now),
                    )
                    .await?
                    {
                        return Ok(ChargeVoucher::from_wire(&stored.response)?);
                    }
                    let row =
                        sqlx::query("SELECT owner, revoked_at FROM wallets WHERE wallet = $1")
                            .bind(wallet.0.to_vec())
                            .fetch_optional(&mut **tx)
                            .await?
                            .ok_or(OfficeError::UnknownWallet(wallet))?;
                    let wallet_owner: String = row.try_get("owner")?;
                    let revoked: Option<i64> = row.try_get("revoked_at")?;
                    if wallet_owner != owner {
                        return Err(OfficeError::Unauthorized);
                    }
                    if revoked.is_some() {
                        return Err(OfficeError::Revoked(wallet));
                    }
                    transfer(
                        tx,
                        &accounts::owner(owner),
                        accounts::FLOAT,
                        amount,
                        "charge",
                        &mpay_identity::hex_string(&charge_id),
                        now,
                    )
                    .await?;
                    sqlx::query(
                    "INSERT INTO vouchers (charge_id, wallet, amount, issued_at, voucher, spent_at)
                     VALUES ($1, $2, $3, $4, $5, NULL)",
                )
                .bind(charge_id.to_vec())
                .bind(wallet.0.to_vec())
                .bind(amount.minor_units())
                .bind(now_ms(now))
                .bind(fresh_voucher.to_wire())
                .execute(&mut **tx)
                .await?;
                    idempotency::finish(
                        tx,
                        CHARGE_SCOPE,
                        idempotency_key,
                        &fresh_voucher.to_wire(),
                    )
                    .await?;
                    Ok(fresh_voucher.clone())
                })
            })
            .await?;
        self.metrics
            .charges
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(voucher)
    }

    /// Handles a wallet's sealed sync request; returns the sealed response.
    pub async fn sync(&self, frame: &[u8], now: Timestamp) -> Result<Vec<u8>, OfficeError> {
        use std::sync::atomic::Ordering::Relaxed;
        self.metrics.syncs.fetch_add(1, Relaxed);
        let header = mpay_envelope::peek_header(frame)?;
        if header.kind != sync_kind::SYNC_REQUEST {
            return Err(OfficeError::Invalid("not a sync request".into()));
        }
        let wallet = header.sender;
        let record = self.wallet_record(wallet).await?;
        // Open and verify outside the transaction: the transaction may run
        // twice, the replay guard must see the frame once. A revoked wallet
        // may still sync (to redeem what it holds and learn it is revoked),
        // so its certificate is checked without the revocation list.
        let unverified = mpay_envelope::open(frame, &self.keys, self.id, &self.trust, now)?;
        let verified = {
            let mut replay = self
                .replay
                .lock()
                .map_err(|_| OfficeError::Books("replay guard poisoned"))?;
            unverified.verify(&record.certificate, &self.trust, &mut replay, now)?
        };
        let request = SyncRequest::from_wire(verified.payload())?;
        let request_ref = &request;
        let outcome = self
            .db
            .with_retry(move |tx| {
                Box::pin(async move { self.sync_in(tx, wallet, request_ref, now).await })
            })
            .await;
        let (attestation, resolutions, revocation_list) = match outcome {
            Ok(SyncDone::Accepted {
                attestation,
                resolutions,
                revocation_list,
                entries,
            }) => {
                self.metrics.sync_entries.fetch_add(entries, Relaxed);
                (attestation, resolutions, revocation_list)
            }
            Ok(SyncDone::Fraud(record)) => {
                self.metrics.frauds.fetch_add(1, Relaxed);
                self.metrics.sync_refusals.fetch_add(1, Relaxed);
                return Err(OfficeError::Fraud {
                    wallet: record.wallet,
                    owner: record.owner,
                    seq: record.seq,
                    charged: record.charged,
                });
            }
            Err(e) => {
                self.metrics.sync_refusals.fetch_add(1, Relaxed);
                return Err(e);
            }
        };
        // A wallet behind what the office attests (restored from a backup)
        // gets its own entries after its head, to continue from, once it has
        // uploaded everything up to that head (all of it matched, or the
        // audit would have refused a fork).
        let uploaded_to_head = request
            .entries
            .last()
            .is_none_or(|e| e.seq == request.head_seq);
        let catch_up = if uploaded_to_head && request.head_seq < attestation.seq {
            self.catch_up_entries(wallet, request.head_seq).await?
        } else {
            Vec::new()
        };
        let mut response = SyncResponse {
            attestation,
            revocation_list: revocation_list.filter(|l| l.version > request.revocation_version),
            resolutions,
            entries: catch_up,
        };
        // The catch-up shrinks to fit one frame; the wallet asks again.
        while response.to_wire().len() > mpay_envelope::PAYLOAD_LEN_MAX
            && response.entries.pop().is_some()
        {}
        let mut rng = self
            .rng
            .lock()
            .map_err(|_| OfficeError::Books("rng poisoned"))?;
        let header = Header {
            version: ENVELOPE_VERSION,
            suite: self.keys.suite(),
            kind: sync_kind::SYNC_RESPONSE,
            sender: self.id,
            receiver: wallet,
            tx_id: header.tx_id,
            nonce: rng.next_u64(),
            sent_at: now,
        };
        Ok(mpay_envelope::seal(
            &self.keys,
            &header,
            &response.to_wire(),
            record.certificate.keys(),
            &mut *rng,
        )?)
    }

    /// The wallet's own synced entries after `head_seq`, at most
    /// [`SYNC_CATCH_UP_MAX`], in order.
    async fn catch_up_entries(
        &self,
        wallet: PartyId,
        head_seq: u64,
    ) -> Result<Vec<ChainEntry>, OfficeError> {
        let limit = i64::try_from(SYNC_CATCH_UP_MAX).unwrap_or(i64::MAX);
        let rows = sqlx::query(
            "SELECT entry FROM chain WHERE wallet = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(wallet.0.to_vec())
        .bind(seq_i64(head_seq)?)
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| Ok(ChainEntry::from_wire(&row.try_get::<Vec<u8>, _>("entry")?)?))
            .collect()
    }

    async fn wallet_record(&self, wallet: PartyId) -> Result<WalletRecord, OfficeError> {
        load_wallet(self.db.pool(), wallet).await
    }

    async fn sync_in(
        &self,
        tx: &mut Tx<'_>,
        wallet: PartyId,
        request: &SyncRequest,
        now: Timestamp,
    ) -> Result<SyncDone, OfficeError> {
        let record = load_wallet(&mut **tx, wallet).await?;
        let ctx = self.load_context(tx, &record, request).await?;
        let effects = match audit::audit_sync(&record, &ctx, request, now) {
            Ok(effects) => effects,
            Err(SyncRefusal::Fork(proof)) => {
                let fraud = self.record_fraud(tx, *proof, now).await?;
                return Ok(SyncDone::Fraud(fraud));
            }
            Err(refusal) => return Err(OfficeError::SyncRefused(refusal)),
        };
        let currency = self.config.currency;
        let owner_account = accounts::owner(&record.owner);
        let rows = effects
            .new_entries
            .iter()
            .map(|e| {
                Ok(vec![
                    Value::Blob(wallet.0.to_vec()),
                    Value::Int(seq_i64(e.seq)?),
                    Value::Blob(e.to_wire()),
                ])
            })
            .collect::<Result<Vec<_>, OfficeError>>()?;
        insert_many(tx, "INSERT INTO chain (wallet, seq, entry) VALUES", rows).await?;
        if let Some(head) = effects.new_entries.last() {
            sqlx::query("UPDATE wallets SET head = $2, synced_at = $3 WHERE wallet = $1")
                .bind(wallet.0.to_vec())
                .bind(head.to_wire())
                .bind(now_ms(now))
                .execute(&mut **tx)
                .await?;
        } else {
            sqlx::query("UPDATE wallets SET synced_at = $2 WHERE wallet = $1")
                .bind(wallet.0.to_vec())
                .bind(now_ms(now))
                .execute(&mut **tx)
                .await?;
        }
        let rows = effects
            .pays
            .iter()
            .map(|p| pay_row(p, now))
            .collect::<Result<Vec<_>, OfficeError>>()?;
        insert_many(
            tx,
            "INSERT INTO pays (wallet, seq, hash, entry, seen_at) VALUES",
            rows,
        )
        .await?;
        let rows = effects
            .claims
            .iter()
            .map(|c| {
                Ok(vec![
                    Value::Blob(c.buyer.0.to_vec()),
                    Value::Int(seq_i64(c.pay_seq)?),
                    Value::Blob(c.claim.seller.0.to_vec()),
                    Value::Blob(c.claim.tx.0.to_vec()),
                    Value::Int(c.claim.amount.minor_units()),
                    Value::Int(now_ms(now)),
                ])
            })
            .collect::<Result<Vec<_>, OfficeError>>()?;
        insert_many(
            tx,
            "INSERT INTO claims (buyer, pay_seq, seller, tx, amount, claimed_at) VALUES",
            rows,
        )
        .await?;
        for (buyer, pay_seq) in &effects.voided_by_seller {
            sqlx::query("INSERT INTO seller_voids (buyer, pay_seq) VALUES ($1, $2)")
                .bind(buyer.0.to_vec())
                .bind(seq_i64(*pay_seq)?)
                .execute(&mut **tx)
                .await?;
        }
        for charge_id in &effects.vouchers_spent {
            sqlx::query("UPDATE vouchers SET spent_at = $2 WHERE charge_id = $1")
                .bind(charge_id.to_vec())
                .bind(now_ms(now))
                .execute(&mut **tx)
                .await?;
        }
        for (redeem_id, amount) in &effects.redeems {
            sqlx::query(
                "INSERT INTO redeems (redeem_id, wallet, amount, credited_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(redeem_id.to_vec())
            .bind(wallet.0.to_vec())
            .bind(amount.minor_units())
            .bind(now_ms(now))
            .execute(&mut **tx)
            .await?;
            transfer(
                tx,
                accounts::FLOAT,
                &owner_account,
                *amount,
                "redeem",
                &mpay_identity::hex_string(redeem_id),
                now,
            )
            .await?;
        }
        let mut resolutions = Vec::with_capacity(effects.resolutions.len());
        for (tx_id, pay_seq, outcome) in &effects.resolutions {
            let held =
                sqlx::query("SELECT outcome FROM resolutions WHERE buyer = $1 AND pay_seq = $2")
                    .bind(wallet.0.to_vec())
                    .bind(seq_i64(*pay_seq)?)
                    .fetch_optional(&mut **tx)
                    .await?;
            // A payment is resolved once; asking again gets the same answer.
            let outcome = match held {
                Some(row) => outcome_from_str(&row.try_get::<String, _>("outcome")?)?,
                None => {
                    sqlx::query(
                        "INSERT INTO resolutions (buyer, pay_seq, tx, outcome, resolved_at) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(wallet.0.to_vec())
                    .bind(seq_i64(*pay_seq)?)
                    .bind(tx_id.0.to_vec())
                    .bind(outcome_str(*outcome))
                    .bind(now_ms(now))
                    .execute(&mut **tx)
                    .await?;
                    *outcome
                }
            };
            resolutions.push(Resolution::issue(
                self.id, &self.keys, wallet, *tx_id, *pay_seq, outcome, now,
            ));
        }
        for unbacked in &effects.unbacked {
            self.charge_unbacked(tx, unbacked, now).await?;
        }
        for proof in effects.frauds.clone() {
            self.record_fraud(tx, proof, now).await?;
        }
        let head = effects.new_head(&record);
        let attestation = match head {
            Some(head) => SyncAttestation::issue(
                self.id,
                &self.keys,
                wallet,
                head.seq,
                head.hash(),
                head.balance_after,
                now,
            ),
            None => SyncAttestation::issue(
                self.id,
                &self.keys,
                wallet,
                0,
                GENESIS_PREV_HASH,
                Amount::zero(currency),
                now,
            ),
        };
        let revocation_list = latest_revocation_list(tx).await?;
        Ok(SyncDone::Accepted {
            attestation,
            resolutions,
            revocation_list,
            entries: u64::try_from(effects.new_entries.len()).unwrap_or(0),
        })
    }

    async fn load_context(
        &self,
        tx: &mut Tx<'_>,
        record: &WalletRecord,
        request: &SyncRequest,
    ) -> Result<SyncContext, OfficeError> {
        let lookups = audit::lookups(record, request);
        let wallet = record.wallet;
        let mut ctx = SyncContext {
            office: self.id,
            ..SyncContext::default()
        };
        for seq in &lookups.own_seqs {
            let row = sqlx::query("SELECT entry FROM chain WHERE wallet = $1 AND seq = $2")
                .bind(wallet.0.to_vec())
                .bind(seq_i64(*seq)?)
                .fetch_optional(&mut **tx)
                .await?;
            if let Some(row) = row {
                let bytes: Vec<u8> = row.try_get("entry")?;
                ctx.own_entries.insert(*seq, ChainEntry::from_wire(&bytes)?);
            }
        }
        for party_id in &lookups.parties {
            let row = sqlx::query("SELECT certificate FROM wallets WHERE wallet = $1")
                .bind(party_id.0.to_vec())
                .fetch_optional(&mut **tx)
                .await?;
            if let Some(row) = row {
                let bytes: Vec<u8> = row.try_get("certificate")?;
                ctx.certificates
                    .insert(*party_id, Certificate::from_wire(&bytes)?);
            }
        }
        // Pay entries, claims, resolutions and seller voids for every
        // (wallet, seq) the request touches: four queries per chunk of keys,
        // not four per key.
        let keys: Vec<(PartyId, u64)> = lookups.pay_keys.iter().copied().collect();
        for chunk in keys.chunks(LOOKUP_KEYS_PER_QUERY) {
            let pairs = chunk
                .iter()
                .map(|(w, seq)| Ok((w.0.to_vec(), seq_i64(*seq)?)))
                .collect::<Result<Vec<_>, OfficeError>>()?;
            let rows = keyed_query(
                tx,
                "SELECT wallet, seq, entry FROM pays WHERE (wallet, seq) IN",
                " ORDER BY seen_at, hash",
                &pairs,
            )
            .await?;
            for row in rows {
                let key = row_key(&row)?;
                let entry = ChainEntry::from_wire(&row.try_get::<Vec<u8>, _>("entry")?)?;
                ctx.pays.entry(key).or_default().push(entry);
            }
            let rows = keyed_query(
                tx,
                "SELECT buyer AS wallet, pay_seq AS seq, seller, tx, amount FROM claims WHERE (buyer, pay_seq) IN",
                "",
                &pairs,
            )
            .await?;
            for row in rows {
                let key = row_key(&row)?;
                let tx_bytes: Vec<u8> = row.try_get("tx")?;
                let tx_id: [u8; 16] = tx_bytes
                    .try_into()
                    .map_err(|_| OfficeError::Books("stored tx id is not 16 bytes"))?;
                ctx.claims.insert(
                    key,
                    ClaimRecord {
                        seller: party(&row.try_get::<Vec<u8>, _>("seller")?)?,
                        tx: TxId(tx_id),
                        amount: self.amount(row.try_get("amount")?),
                    },
                );
            }
            let rows = keyed_query(
                tx,
                "SELECT buyer AS wallet, pay_seq AS seq, outcome FROM resolutions WHERE (buyer, pay_seq) IN",
                "",
                &pairs,
            )
            .await?;
            for row in rows {
                let key = row_key(&row)?;
                if outcome_from_str(&row.try_get::<String, _>("outcome")?)? == Outcome::Released {
                    ctx.released.insert(key);
                }
            }
            let rows = keyed_query(
                tx,
                "SELECT buyer AS wallet, pay_seq AS seq FROM seller_voids WHERE (buyer, pay_seq) IN",
                "",
                &pairs,
            )
            .await?;
            for row in rows {
                let key = row_key(&row)?;
                ctx.voided_by_seller.insert(key);
            }
        }
        for charge_id in &lookups.charge_ids {
            let row = sqlx::query(
                "SELECT amount, spent_at FROM vouchers WHERE charge_id = $1 AND wallet = $2",
            )
            .bind(charge_id.to_vec())
            .bind(wallet.0.to_vec())
            .fetch_optional(&mut **tx)
            .await?;
            if let Some(row) = row {
                ctx.vouchers
                    .insert(*charge_id, self.amount(row.try_get("amount")?));
                if row.try_get::<Option<i64>, _>("spent_at")?.is_some() {
                    ctx.vouchers_spent.insert(*charge_id);
                }
            }
        }
        for redeem_id in &lookups.redeem_ids {
            let row = sqlx::query("SELECT redeem_id FROM redeems WHERE redeem_id = $1")
                .bind(redeem_id.to_vec())
                .fetch_optional(&mut **tx)
                .await?;
            if row.is_some() {
                ctx.redeemed.insert(*redeem_id);
            }
        }
        Ok(ctx)
    }

    /// Records a fraud proof (once), revokes the wallet and charges its
    /// owner for every branch beyond the first that the proofs show.
    async fn record_fraud(
        &self,
        tx: &mut Tx<'_>,
        proof: FraudProof,
        now: Timestamp,
    ) -> Result<FraudRecord, OfficeError> {
        let wallet = proof.wallet;
        let row = sqlx::query(
            "SELECT owner, branches_charged, certificate FROM wallets WHERE wallet = $1",
        )
        .bind(wallet.0.to_vec())
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(OfficeError::UnknownWallet(wallet))?;
        let owner: String = row.try_get("owner")?;
        let branches_charged: i64 = row.try_get("branches_charged")?;
        let certificate = Certificate::from_wire(&row.try_get::<Vec<u8>, _>("certificate")?)?;
        if !proof.verify(&certificate) {
            return Err(OfficeError::Books("a fraud proof that does not verify"));
        }
        // Both entries are evidence: keep the second with the first.
        for entry in [&proof.first, &proof.second] {
            if matches!(entry.kind, mpay_offline::chain::EntryKind::Pay { .. }) {
                let held = sqlx::query(
                    "SELECT hash FROM pays WHERE wallet = $1 AND seq = $2 AND hash = $3",
                )
                .bind(wallet.0.to_vec())
                .bind(seq_i64(entry.seq)?)
                .bind(entry.hash().to_vec())
                .fetch_optional(&mut **tx)
                .await?;
                if held.is_none() {
                    insert_pay(tx, entry, now).await?;
                }
            }
        }
        // Branches seen at this sequence: distinct entries among the pays and
        // the wallet's own synced entry.
        let mut hashes: Vec<[u8; 32]> = vec![proof.first.hash(), proof.second.hash()];
        let rows = sqlx::query("SELECT hash FROM pays WHERE wallet = $1 AND seq = $2")
            .bind(wallet.0.to_vec())
            .bind(seq_i64(proof.seq)?)
            .fetch_all(&mut **tx)
            .await?;
        for row in rows {
            let hash: Vec<u8> = row.try_get("hash")?;
            if let Ok(hash) = <[u8; 32]>::try_from(hash.as_slice())
                && !hashes.contains(&hash)
            {
                hashes.push(hash);
            }
        }
        let extra_branches = i64::try_from(hashes.len().saturating_sub(1)).unwrap_or(i64::MAX);
        let mut charged = Amount::zero(self.config.currency);
        if extra_branches > branches_charged {
            let per_branch = proof
                .duplicated_value()
                .ok_or(OfficeError::Books("fraud proof with no balance"))?;
            for _ in branches_charged..extra_branches {
                self.charge_unbacked(
                    tx,
                    &Unbacked {
                        wallet,
                        amount: per_branch,
                        reason: UnbackedReason::Fork { seq: proof.seq },
                    },
                    now,
                )
                .await?;
                charged = charged
                    .checked_add(per_branch)
                    .map_err(|_| OfficeError::Books("overflow"))?;
            }
            sqlx::query("UPDATE wallets SET branches_charged = $2 WHERE wallet = $1")
                .bind(wallet.0.to_vec())
                .bind(extra_branches)
                .execute(&mut **tx)
                .await?;
        }
        let already =
            sqlx::query("SELECT id FROM frauds WHERE wallet = $1 AND seq = $2 AND second = $3")
                .bind(wallet.0.to_vec())
                .bind(seq_i64(proof.seq)?)
                .bind(proof.second.to_wire())
                .fetch_optional(&mut **tx)
                .await?;
        if already.is_none() {
            sqlx::query(
                "INSERT INTO frauds (wallet, owner, seq, first, second, detected_at, charged) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(wallet.0.to_vec())
            .bind(&owner)
            .bind(seq_i64(proof.seq)?)
            .bind(proof.first.to_wire())
            .bind(proof.second.to_wire())
            .bind(now_ms(now))
            .bind(charged.minor_units())
            .execute(&mut **tx)
            .await?;
        }
        self.revoke(tx, wallet, RevocationReason::DoubleSpend, now)
            .await?;
        // One truth for what was charged: the figure the office recorded for
        // this wallet's double spends (what `frauds` lists), not only what
        // this detection added (nothing, when the branch was charged before).
        let rows = sqlx::query("SELECT charged FROM frauds WHERE wallet = $1")
            .bind(wallet.0.to_vec())
            .fetch_all(&mut **tx)
            .await?;
        let mut total = Amount::zero(self.config.currency);
        for row in rows {
            total = total
                .checked_add(self.amount(row.try_get("charged")?))
                .map_err(|_| OfficeError::Books("overflow"))?;
        }
        Ok(FraudRecord {
            wallet,
            owner,
            seq: proof.seq,
            proof,
            detected_at: now,
            charged: total,
        })
    }

    /// Moves unbacked value into `float`: from the responsible owner's
    /// account as far as it goes, the rest from `loss`.
    async fn charge_unbacked(
        &self,
        tx: &mut Tx<'_>,
        unbacked: &Unbacked,
        now: Timestamp,
    ) -> Result<(), OfficeError> {
        let owner: String = sqlx::query("SELECT owner FROM wallets WHERE wallet = $1")
            .bind(unbacked.wallet.0.to_vec())
            .fetch_optional(&mut **tx)
            .await?
            .ok_or(OfficeError::UnknownWallet(unbacked.wallet))?
            .try_get("owner")?;
        let account = accounts::owner(&owner);
        let balance = account_balance(tx, &account).await?;
        let from_owner = if balance.checked_cmp(&unbacked.amount) == Ok(std::cmp::Ordering::Less) {
            balance.max_zero()
        } else {
            unbacked.amount
        };
        let reference = format!("{:?}", unbacked.reason);
        if from_owner.is_positive() {
            transfer(
                tx,
                &account,
                accounts::FLOAT,
                from_owner,
                "unbacked",
                &reference,
                now,
            )
            .await?;
        }
        let rest = unbacked
            .amount
            .checked_sub(from_owner)
            .map_err(|_| OfficeError::Books("overflow"))?;
        if rest.is_positive() {
            transfer(
                tx,
                accounts::LOSS,
                accounts::FLOAT,
                rest,
                "unbacked",
                &reference,
                now,
            )
            .await?;
        }
        Ok(())
    }

    async fn revoke(
        &self,
        tx: &mut Tx<'_>,
        wallet: PartyId,
        reason: RevocationReason,
        now: Timestamp,
    ) -> Result<(), OfficeError> {
        let updated = sqlx::query(
            "UPDATE wallets SET revoked_at = $2, revocation_reason = $3 WHERE wallet = $1 AND revoked_at IS NULL",
        )
        .bind(wallet.0.to_vec())
        .bind(now_ms(now))
        .bind(i64::from(reason.tag()))
        .execute(&mut **tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Ok(());
        }
        let rows = sqlx::query(
            "SELECT wallet, revoked_at, revocation_reason FROM wallets WHERE revoked_at IS NOT NULL",
        )
        .fetch_all(&mut **tx)
        .await?;
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows {
            let reason_tag: i64 = row.try_get("revocation_reason")?;
            entries.push(RevocationEntry {
                subject: party(&row.try_get::<Vec<u8>, _>("wallet")?)?,
                reason: u8::try_from(reason_tag)
                    .ok()
                    .and_then(RevocationReason::from_tag)
                    .unwrap_or(RevocationReason::DoubleSpend),
                revoked_at: Timestamp(
                    u64::try_from(row.try_get::<i64, _>("revoked_at")?).unwrap_or(0),
                ),
            });
        }
        let version: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM revocations")
            .fetch_one(&mut **tx)
            .await?
            .try_get("v")?;
        let next = version.saturating_add(1);
        let list = RevocationList::issue(
            self.id,
            u64::try_from(next).unwrap_or(1),
            now,
            entries,
            &self.keys,
        );
        sqlx::query("INSERT INTO revocations (version, list, issued_at) VALUES ($1, $2, $3)")
            .bind(next)
            .bind(list.to_wire())
            .bind(now_ms(now))
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// The newest revocation list, if any wallet was ever revoked.
    pub async fn revocation_list(&self) -> Result<Option<RevocationList>, OfficeError> {
        let row = sqlx::query("SELECT list FROM revocations ORDER BY version DESC LIMIT 1")
            .fetch_optional(self.db.pool())
            .await?;
        match row {
            Some(row) => Ok(Some(RevocationList::from_wire(
                &row.try_get::<Vec<u8>, _>("list")?,
            )?)),
            None => Ok(None),
        }
    }

    /// Every fraud caught, oldest first.
    pub async fn frauds(&self) -> Result<Vec<FraudRecord>, OfficeError> {
        let rows = sqlx::query(
            "SELECT wallet, owner, seq, first, second, detected_at, charged FROM frauds ORDER BY id",
        )
        .fetch_all(self.db.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let wallet = party(&row.try_get::<Vec<u8>, _>("wallet")?)?;
            let seq = u64::try_from(row.try_get::<i64, _>("seq")?).unwrap_or(0);
            out.push(FraudRecord {
                wallet,
                owner: row.try_get("owner")?,
                seq,
                proof: FraudProof {
                    wallet,
                    seq,
                    first: ChainEntry::from_wire(&row.try_get::<Vec<u8>, _>("first")?)?,
                    second: ChainEntry::from_wire(&row.try_get::<Vec<u8>, _>("second")?)?,
                },
                detected_at: Timestamp(
                    u64::try_from(row.try_get::<i64, _>("detected_at")?).unwrap_or(0),
                ),
                charged: self.amount(row.try_get("charged")?),
            });
        }
        Ok(out)
    }

    /// Every account's balance.
    pub async fn balances(&self) -> Result<HashMap<String, Amount>, OfficeError> {
        let rows = sqlx::query("SELECT account, balance FROM accounts")
            .fetch_all(self.db.pool())
            .await?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in rows {
            out.insert(
                row.try_get("account")?,
                self.amount(row.try_get("balance")?),
            );
        }
        Ok(out)
    }

    /// Checks the books: all balances sum to zero, the postings journal
    /// explains every balance, no account is below its floor.
    pub async fn check_books(&self) -> Result<(), OfficeError> {
        let balances = self.balances().await?;
        let sum = Amount::checked_sum(self.config.currency, balances.values())
            .map_err(|_| OfficeError::Books("overflow"))?;
        if !sum.is_zero() {
            return Err(OfficeError::Books("account balances do not sum to zero"));
        }
        let rows = sqlx::query("SELECT account, balance, floor FROM accounts")
            .fetch_all(self.db.pool())
            .await?;
        for row in rows {
            let account: String = row.try_get("account")?;
            let balance: i64 = row.try_get("balance")?;
            let floor: Option<i64> = row.try_get("floor")?;
            if floor.is_some_and(|f| balance < f) {
                return Err(OfficeError::Books("an account is below its floor"));
            }
            // Lifetime credits and debits may pass i64 while the balance is
            // small: each is summed in two parts that cannot overflow
            // (`amount / 10^9`, `amount % 10^9`; amounts are not negative)
            // and joined in i128.
            let row = sqlx::query(
                "SELECT
                    CAST(COALESCE(SUM(CASE WHEN credit = $1 THEN amount / 1000000000 ELSE 0 END), 0) AS BIGINT) AS credits_high,
                    CAST(COALESCE(SUM(CASE WHEN credit = $1 THEN amount % 1000000000 ELSE 0 END), 0) AS BIGINT) AS credits_low,
                    CAST(COALESCE(SUM(CASE WHEN debit = $1 THEN amount / 1000000000 ELSE 0 END), 0) AS BIGINT) AS debits_high,
                    CAST(COALESCE(SUM(CASE WHEN debit = $1 THEN amount % 1000000000 ELSE 0 END), 0) AS BIGINT) AS debits_low
                 FROM postings WHERE credit = $1 OR debit = $1",
            )
            .bind(&account)
            .fetch_one(self.db.pool())
            .await?;
            let joined = |high: &str, low: &str| -> Result<i128, OfficeError> {
                let high: i64 = row.try_get(high)?;
                let low: i64 = row.try_get(low)?;
                Ok(i128::from(high) * 1_000_000_000 + i128::from(low))
            };
            let posted =
                joined("credits_high", "credits_low")? - joined("debits_high", "debits_low")?;
            if posted != i128::from(balance) {
                return Err(OfficeError::Books("a balance differs from its postings"));
            }
        }
        Ok(())
    }

    /// The owner's account balance.
    pub async fn owner_balance(&self, owner: &str) -> Result<Amount, OfficeError> {
        let row = sqlx::query("SELECT balance FROM accounts WHERE account = $1")
            .bind(accounts::owner(owner))
            .fetch_optional(self.db.pool())
            .await?
            .ok_or_else(|| OfficeError::UnknownOwner(owner.to_owned()))?;
        Ok(self.amount(row.try_get("balance")?))
    }
}

// Built once per sync and matched at once; boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum SyncDone {
    Accepted {
        attestation: SyncAttestation,
        resolutions: Vec<Resolution>,
        revocation_list: Option<RevocationList>,
        entries: u64,
    },
    Fraud(FraudRecord),
}

trait MaxZero {
    fn max_zero(self) -> Self;
}

impl MaxZero for Amount {
    fn max_zero(self) -> Amount {
        if self.is_negative() {
            Amount::zero(self.currency())
        } else {
            self
        }
    }
}

fn outcome_str(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Settled => "settled",
        Outcome::Released => "released",
    }
}

fn outcome_from_str(s: &str) -> Result<Outcome, OfficeError> {
    match s {
        "settled" => Ok(Outcome::Settled),
        "released" => Ok(Outcome::Released),
        _ => Err(OfficeError::Books("unknown stored outcome")),
    }
}

/// Most (wallet, seq) keys in one lookup query (two parameters each).
const LOOKUP_KEYS_PER_QUERY: usize = 200;

/// Runs `head (($1, $2), ($3, $4), …) tail` with `pairs` bound in order:
/// one round trip for many (wallet, seq) keys. Row values in `IN` work on
/// SQLite and PostgreSQL alike.
async fn keyed_query(
    tx: &mut Tx<'_>,
    head: &str,
    tail: &str,
    pairs: &[(Vec<u8>, i64)],
) -> Result<Vec<sqlx::any::AnyRow>, OfficeError> {
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = String::with_capacity(head.len() + tail.len() + pairs.len() * 12);
    sql.push_str(head);
    sql.push_str(" (");
    for i in 0..pairs.len() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("(${}, ${})", 2 * i + 1, 2 * i + 2));
    }
    sql.push(')');
    sql.push_str(tail);
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (wallet, seq) in pairs {
        query = query.bind(wallet.clone()).bind(*seq);
    }
    Ok(query.fetch_all(&mut **tx).await?)
}

/// The (wallet, seq) key of a row from [`keyed_query`].
fn row_key(row: &sqlx::any::AnyRow) -> Result<(PartyId, u64), OfficeError> {
    let wallet = party(&row.try_get::<Vec<u8>, _>("wallet")?)?;
    let seq = u64::try_from(row.try_get::<i64, _>("seq")?)
        .map_err(|_| OfficeError::Books("stored sequence number is negative"))?;
    Ok((wallet, seq))
}

async fn insert_pay(tx: &mut Tx<'_>, pay: &ChainEntry, now: Timestamp) -> Result<(), OfficeError> {
    insert_many(
        tx,
        "INSERT INTO pays (wallet, seq, hash, entry, seen_at) VALUES",
        vec![pay_row(pay, now)?],
    )
    .await
}

fn pay_row(pay: &ChainEntry, now: Timestamp) -> Result<Vec<Value>, OfficeError> {
    Ok(vec![
        Value::Blob(pay.wallet.0.to_vec()),
        Value::Int(seq_i64(pay.seq)?),
        Value::Blob(pay.hash().to_vec()),
        Value::Blob(pay.to_wire()),
        Value::Int(now_ms(now)),
    ])
}

/// A value bound into a batched statement.
enum Value {
    Blob(Vec<u8>),
    Int(i64),
}

/// Most parameters one batched statement binds (well under both backends'
/// limits).
const BATCH_PARAMS_MAX: usize = 900;

/// `head ($1, …), ($n, …), …` for `rows` (all the same width), in as few
/// statements as the parameter limit allows.
async fn insert_many(
    tx: &mut Tx<'_>,
    head: &str,
    rows: Vec<Vec<Value>>,
) -> Result<(), OfficeError> {
    let Some(width) = rows.first().map(Vec::len) else {
        return Ok(());
    };
    if width == 0 || rows.iter().any(|r| r.len() != width) {
        return Err(OfficeError::Books("batched rows of different widths"));
    }
    let per_statement = (BATCH_PARAMS_MAX / width).max(1);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Value>> = rows.by_ref().take(per_statement).collect();
        let mut sql = String::from(head);
        let mut n = 0;
        for (i, _) in chunk.iter().enumerate() {
            sql.push_str(if i == 0 { " (" } else { ", (" });
            for column in 0..width {
                n += 1;
                if column > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("${n}"));
            }
            sql.push(')');
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in chunk {
            for value in row {
                query = match value {
                    Value::Blob(b) => query.bind(b),
                    Value::Int(i) => query.bind(i),
                };
            }
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn owner_exists(tx: &mut Tx<'_>, owner: &str) -> Result<(), OfficeError> {
    let row = sqlx::query("SELECT owner FROM owners WHERE owner = $1")
        .bind(owner)
        .fetch_optional(&mut **tx)
        .await?;
    match row {
        Some(_) => Ok(()),
        None => Err(OfficeError::UnknownOwner(owner.to_owned())),
    }
}

async fn load_wallet<'c, E>(executor: E, wallet: PartyId) -> Result<WalletRecord, OfficeError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let row =
        sqlx::query("SELECT owner, certificate, head, revoked_at FROM wallets WHERE wallet = $1")
            .bind(wallet.0.to_vec())
            .fetch_optional(executor)
            .await?
            .ok_or(OfficeError::UnknownWallet(wallet))?;
    let head: Option<Vec<u8>> = row.try_get("head")?;
    Ok(WalletRecord {
        wallet,
        owner: row.try_get("owner")?,
        certificate: Certificate::from_wire(&row.try_get::<Vec<u8>, _>("certificate")?)?,
        head: head.map(|h| ChainEntry::from_wire(&h)).transpose()?,
        revoked: row.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
    })
}

async fn latest_revocation_list(tx: &mut Tx<'_>) -> Result<Option<RevocationList>, OfficeError> {
    let row = sqlx::query("SELECT list FROM revocations ORDER BY version DESC LIMIT 1")
        .fetch_optional(&mut **tx)
        .await?;
    match row {
        Some(row) => Ok(Some(RevocationList::from_wire(
            &row.try_get::<Vec<u8>, _>("list")?,
        )?)),
        None => Ok(None),
    }
}

async fn create_account(
    tx: &mut Tx<'_>,
    account: &str,
    currency: Currency,
    floor: Option<i64>,
) -> Result<(), OfficeError> {
    sqlx::query("INSERT INTO accounts (account, currency, balance, floor) VALUES ($1, $2, 0, $3)")
        .bind(account)
        .bind(currency.code())
        .bind(floor)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn account_balance(tx: &mut Tx<'_>, account: &str) -> Result<Amount, OfficeError> {
    let row = sqlx::query("SELECT balance, currency FROM accounts WHERE account = $1")
        .bind(account)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(OfficeError::Books("no such account"))?;
    let currency: String = row.try_get("currency")?;
    let currency = currency
        .parse()
        .map_err(|_| OfficeError::Books("stored currency is invalid"))?;
    Ok(Amount::new(row.try_get("balance")?, currency))
}

/// Moves `amount` from one account to another and journals it. Refuses to
/// take an account below its floor.
async fn transfer(
    tx: &mut Tx<'_>,
    from: &str,
    to: &str,
    amount: Amount,
    reason: &str,
    reference: &str,
    now: Timestamp,
) -> Result<(), OfficeError> {
    if amount.is_negative() {
        return Err(OfficeError::Books("negative transfer"));
    }
    let row = sqlx::query("SELECT balance, floor FROM accounts WHERE account = $1")
        .bind(from)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(OfficeError::Books("transfer from a missing account"))?;
    let balance: i64 = row.try_get("balance")?;
    let floor: Option<i64> = row.try_get("floor")?;
    let after = balance
        .checked_sub(amount.minor_units())
        .ok_or(OfficeError::Books("overflow"))?;
    if floor.is_some_and(|f| after < f) {
        return Err(OfficeError::InsufficientFunds {
            account: from.to_owned(),
            balance: Amount::new(balance, amount.currency()),
        });
    }
    sqlx::query("UPDATE accounts SET balance = $2 WHERE account = $1")
        .bind(from)
        .bind(after)
        .execute(&mut **tx)
        .await?;
    let updated = sqlx::query("UPDATE accounts SET balance = balance + $2 WHERE account = $1")
        .bind(to)
        .bind(amount.minor_units())
        .execute(&mut **tx)
        .await?;
    if updated.rows_affected() != 1 {
        return Err(OfficeError::Books("transfer to a missing account"));
    }
    sqlx::query(
        "INSERT INTO postings (at, debit, credit, amount, currency, reason, reference) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(now_ms(now))
    .bind(from)
    .bind(to)
    .bind(amount.minor_units())
    .bind(amount.currency().code())
    .bind(reason)
    .bind(reference)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn load_or_create_identity(
    tx: &mut Tx<'_>,
    rng: &mut ChaCha20Rng,
    suite: Suite,
    now: Timestamp,
) -> Result<(SecretKeys, Certificate), OfficeError> {
    let row = sqlx::query("SELECT secret_keys, certificate FROM identity WHERE id = 1")
        .fetch_optional(&mut **tx)
        .await?;
    if let Some(row) = row {
        let keys = SecretKeys::from_secret_bytes(&row.try_get::<Vec<u8>, _>("secret_keys")?)?;
        let certificate = Certificate::from_wire(&row.try_get::<Vec<u8>, _>("certificate")?)?;
        return Ok((keys, certificate));
    }
    let keys = SecretKeys::generate(suite, rng);
    let mut id = [0u8; 16];
    rng.fill_bytes(&mut id);
    id[0] |= 1;
    let id = PartyId(id);
    let certificate = Certificate::issue(
        CertificateBody {
            subject: id,
            role: Role::MoneyOffice,
            keys: keys.public(),
            limits: None,
            issued_at: now.saturating_sub_ms(60_000),
            expires_at: now.saturating_add_ms(10 * 365 * mpay_identity::MILLIS_PER_DAY),
            issuer: id,
        },
        &keys,
    );
    sqlx::query(
        "INSERT INTO identity (id, secret_keys, certificate, created_at) VALUES (1, $1, $2, $3)",
    )
    .bind(keys.to_secret_bytes().to_vec())
    .bind(certificate.to_wire())
    .bind(now_ms(now))
    .execute(&mut **tx)
    .await?;
    for (account, floor) in [
        (accounts::EXTERNAL, None),
        (accounts::FLOAT, None),
        (accounts::LOSS, None),
    ] {
        create_account(tx, account, Currency::EUR, floor).await?;
    }
    Ok((keys, certificate))
}
