//! [`Wallet`]: one wallet directory opened with its PIN, and the flows
//! that need no radio (enrol, charge, sync, redeem, balance, history,
//! backup, restore, PIN change).

use std::fs;
use std::path::{Path, PathBuf};

use mpay_identity::{Certificate, Limits, PartyId, SecretKeys, Suite, Timestamp, hex_string};
use mpay_money::{Amount, Currency};
use mpay_office::http::{ClientError, OfficeClient};
use mpay_office::sign_enrolment;
use mpay_offline::chain::{ChainEntry, EntryKind};
use mpay_offline::durable::{Snapshot, Write, WriteBatch};
use mpay_offline::messages::Shipping;
use mpay_offline::records::meta;
use mpay_offline::sync::SyncAttestation;
use mpay_offline::{ChargeError, Config, Event, RecoverError, TxId};
use mpay_wallet_net::wall_clock;
use mpay_wallet_store::{KdfParams, WalletStore};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use zeroize::Zeroizing;

use crate::WalletError;
use crate::files::{
    OFFICE_TOKEN_META, STORE_FILE, Settings, WalletDir, WalletLock, os_random32, sync_dir,
};
use crate::profile::{PROFILE_META, Profile};

/// Most sync round trips one [`Wallet::sync`] makes: each uploads up to
/// `SYNC_ENTRIES_MAX` (128) entries, so this covers a chain of 128 000
/// unsynced entries, far beyond `payments_between_syncs_max`.
pub const SYNC_ROUNDS_MAX: usize = 1_000;

/// Longest PIN accepted, bytes.
pub const PIN_LEN_MAX: usize = 256;

/// Longest owner name, office URL or office token accepted, bytes.
pub const TEXT_LEN_MAX: usize = 1_024;

/// What people are told about backups, at backup and at restore.
pub const BACKUP_WARNING: &str = "A backup holds the wallet as it is now. Restoring it later and \
spending from it spends money the wallet may already have spent: the money office catches that \
at the next sync as a DOUBLE SPEND, revokes the wallet and charges its owner. Restore only a \
wallet that was lost, and sync it before spending.";

/// Cost of the key derivation from the PIN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KdfCost {
    /// Argon2id with OWASP's parameters (19 MiB, 2 passes).
    #[default]
    Default,
    /// The cheapest parameters: for tests only, a short PIN is then easy to
    /// brute-force.
    Fast,
}

impl KdfCost {
    fn params(self) -> KdfParams {
        match self {
            KdfCost::Default => KdfParams::default(),
            KdfCost::Fast => KdfParams::FAST_FOR_TESTS,
        }
    }
}

/// Whether an opened wallet may change (and so holds the directory's lock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Balance and history: read the store, write nothing, take no lock.
    Read,
    /// Everything else: one such handle at a time per directory.
    Write,
}

/// What a new wallet needs.
#[derive(Clone, Debug)]
pub struct NewWallet {
    /// The money office's base URL.
    pub office: String,
    /// The owner's name at the office.
    pub owner: String,
    /// The owner's office token, kept encrypted in the store for enrolment
    /// and charges.
    pub token: Option<String>,
    pub kdf: KdfCost,
}

/// A PIN given to [`Wallet::open`] and friends: at most [`PIN_LEN_MAX`]
/// bytes, not empty.
pub fn check_pin(pin: &str) -> Result<(), WalletError> {
    if pin.is_empty() {
        return Err(WalletError::other("no PIN given"));
    }
    if pin.len() > PIN_LEN_MAX {
        return Err(WalletError::other(format!(
            "the PIN is longer than {PIN_LEN_MAX} bytes"
        )));
    }
    Ok(())
}

fn check_text(what: &str, text: &str) -> Result<(), WalletError> {
    if text.len() > TEXT_LEN_MAX {
        return Err(WalletError::other(format!(
            "{what} is longer than {TEXT_LEN_MAX} bytes"
        )));
    }
    Ok(())
}

/// One wallet, opened with its PIN.
///
/// The engine runs in memory; every write it issues is made durable (one
/// transaction, one fsync) before the call that caused it returns. Frames it
/// releases while no radio runs are dropped, as if lost: the operations here
/// start no transfer, and the engine retransmits what a transfer needs the
/// next time [`Wallet::sell`], [`Wallet::buy`] or [`Wallet::resume`] runs it.
pub struct Wallet {
    pub(crate) files: WalletDir,
    pub(crate) settings: Settings,
    /// `None` after a store or socket failure stopped a node: the engine
    /// in memory may then be ahead of the disk, so the wallet must be opened
    /// again.
    pub(crate) store: Option<WalletStore>,
    /// `None` until enrolled (the key of the meta record missing is kept).
    pub(crate) engine: Option<mpay_offline::Wallet>,
    pub(crate) missing: &'static str,
    stored_token: Option<Zeroizing<String>>,
    _lock: Option<WalletLock>,
    access: Access,
    office_override: Option<String>,
}

impl std::fmt::Debug for Wallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wallet")
            .field("dir", &self.files.dir)
            .field("wallet", &self.settings.wallet)
            .field("access", &self.access)
            .finish_non_exhaustive()
    }
}

/// What a sync changed.
#[derive(Default, Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// First sequence uploaded.
    pub uploaded_from: u64,
    pub rounds: usize,
    pub settled: Vec<TxId>,
    pub released: Vec<TxId>,
    pub revocation_version: Option<u64>,
    pub attestation: Option<SyncAttestation>,
}

/// The wallet's enrolment with the money office.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    pub wallet: PartyId,
    pub owner: String,
    pub office: String,
    pub currency: Currency,
    pub limits: Option<Limits>,
    pub certificate_expires_at: Timestamp,
    /// True when the wallet was enrolled before this call.
    pub already: bool,
}

/// A charge voucher applied (or found already applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charged {
    pub amount: Amount,
    /// False when this voucher had been applied before (a repeated key).
    pub applied: bool,
    pub idempotency_key: String,
    pub balance: Amount,
}

/// Value handed back to the owner's office account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redeemed {
    pub amount: Amount,
    pub redeem_id: [u8; 16],
    pub balance: Amount,
    pub sync: SyncReport,
}

/// A payment this wallet agreed to whose outcome it waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub tx: TxId,
    pub seller: PartyId,
    pub amount: Amount,
}

/// Balance, locked amount, last sync and revocation status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceInfo {
    pub wallet: PartyId,
    pub owner: String,
    pub office: String,
    pub currency: Currency,
    pub balance: Amount,
    /// Locked by payments waiting for their seller.
    pub locked: Amount,
    /// When the office last attested this wallet; `None` before its first
    /// sync (the attestation is then the enrolment's).
    pub last_sync: Option<Timestamp>,
    pub attestation: SyncAttestation,
    pub unsynced_entries: u64,
    pub revoked: bool,
    pub revocation_version: Option<u64>,
    pub certificate_expires_at: Timestamp,
    pub certificate_expired: bool,
    pub prepared: Vec<Prepared>,
    /// Sales committed (the money is this wallet's) but not acknowledged.
    pub committing: Vec<TxId>,
}

/// What a chain entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKindName {
    Genesis,
    Charge,
    Pay,
    Receive,
    Void,
    Redeem,
}

impl EntryKindName {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKindName::Genesis => "genesis",
            EntryKindName::Charge => "charge",
            EntryKindName::Pay => "pay",
            EntryKindName::Receive => "receive",
            EntryKindName::Void => "void",
            EntryKindName::Redeem => "redeem",
        }
    }
}

/// Where a payment this wallet made stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayStatus {
    Paid,
    Voided,
    Locked,
}

impl PayStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PayStatus::Paid => "paid",
            PayStatus::Voided => "voided",
            PayStatus::Locked => "locked",
        }
    }
}

/// One chain entry as people and programs see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub seq: u64,
    pub kind: EntryKindName,
    /// The transaction, charge or redemption id (hex).
    pub tx: Option<String>,
    pub counterparty: Option<PartyId>,
    /// Signed change of the balance (a Pay is negative).
    pub change: Amount,
    pub balance_after: Amount,
    pub created_at: Timestamp,
    /// For a Pay: whether it is paid, voided or still locked.
    pub status: Option<PayStatus>,
    /// For a Receive: the shipping details the buyer chose to share.
    pub shipping: Option<String>,
}

/// What [`Wallet::restore`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The restored wallet's id (hex), if it was enrolled.
    pub wallet: Option<String>,
    /// Where the wallet that was replaced now lies.
    pub replaced: Option<PathBuf>,
}

impl Wallet {
    // ---- create, open ----------------------------------------------------------

    /// Creates a wallet in `dir`: new keys and an encrypted store, not yet
    /// enrolled ([`Wallet::enroll`]). `pin` is asked once the request is
    /// known to be sound, so a prompt comes after the checks.
    pub fn create_with(
        dir: &Path,
        new: &NewWallet,
        pin: impl FnOnce() -> Result<Zeroizing<String>, WalletError>,
    ) -> Result<Wallet, WalletError> {
        let files = WalletDir::new(dir);
        if files.has_wallet() {
            return Err(WalletError::other(format!(
                "a wallet already exists in {}; use another --dir, or `restore --force`",
                dir.display()
            )));
        }
        if new.owner.is_empty() {
            return Err(WalletError::other("--owner must not be empty"));
        }
        check_text("the owner's name", &new.owner)?;
        check_text("the office URL", &new.office)?;
        if let Some(token) = &new.token {
            check_text("the owner token", token)?;
        }
        let pin = pin()?;
        check_pin(&pin)?;
        fs::create_dir_all(dir)
            .map_err(|e| WalletError::other(format!("cannot create {}: {e}", dir.display())))?;
        let lock = files.lock()?;
        let mut rng = ChaCha20Rng::from_seed(os_random32()?);
        let keys = SecretKeys::generate(Suite::Ed25519X25519, &mut rng);
        let mut store = WalletStore::create(&files.store_path(), &pin, new.kdf.params())?;
        let mut batch = WriteBatch::new();
        batch.push(Write::PutMeta {
            key: meta::SECRET_KEYS.into(),
            value: keys.to_secret_bytes().to_vec(),
        });
        if let Some(token) = &new.token {
            batch.writes.extend(token_batch(token).writes);
        }
        store.apply(&batch)?;
        let settings = Settings::new(&new.office, &new.owner);
        files.write_settings(&settings)?;
        Ok(Wallet {
            files,
            settings,
            store: Some(store),
            engine: None,
            missing: meta::CERTIFICATE,
            stored_token: new.token.clone().map(Zeroizing::new),
            _lock: Some(lock),
            access: Access::Write,
            office_override: None,
        })
    }

    /// [`Wallet::create_with`] with the PIN given.
    pub fn create(dir: &Path, pin: &str, new: &NewWallet) -> Result<Wallet, WalletError> {
        Wallet::create_with(dir, new, || Ok(Zeroizing::new(pin.to_owned())))
    }

    /// Opens the wallet in `dir`; `pin` is asked after the settings are read
    /// and (for [`Access::Write`]) the lock is taken. Recovers the engine
    /// with a fresh OS-random seed: prepared payments become uncertain and
    /// ask their seller, committed sales resend COMMIT.
    pub fn open_with(
        dir: &Path,
        access: Access,
        pin: impl FnOnce() -> Result<Zeroizing<String>, WalletError>,
    ) -> Result<Wallet, WalletError> {
        let files = WalletDir::new(dir);
        let settings = files.read_settings()?;
        let lock = match access {
            Access::Read => None,
            Access::Write => Some(files.lock()?),
        };
        let pin = pin()?;
        check_pin(&pin)?;
        let store = WalletStore::open(&files.store_path(), &pin)?;
        let snapshot = store.load()?;
        let stored_token = stored_token(&snapshot);
        let (engine, missing) = if snapshot.meta.contains_key(meta::CERTIFICATE) {
            (Some(recover(&snapshot)?), "")
        } else {
            (None, meta::CERTIFICATE)
        };
        let mut wallet = Wallet {
            files,
            settings,
            store: Some(store),
            engine,
            missing,
            stored_token,
            _lock: lock,
            access,
            office_override: None,
        };
        if access == Access::Write && wallet.engine.is_some() {
            wallet.note_id()?;
        }
        Ok(wallet)
    }

    /// [`Wallet::open_with`] with the PIN given, for changes.
    pub fn open(dir: &Path, pin: &str) -> Result<Wallet, WalletError> {
        Wallet::open_with(dir, Access::Write, || Ok(Zeroizing::new(pin.to_owned())))
    }

    /// Uses `office` instead of the wallet's setting for this handle's calls
    /// to the money office (not saved, except by [`Wallet::enroll`]).
    pub fn use_office(&mut self, office: Option<String>) {
        self.office_override = office;
    }

    // ---- accessors ---------------------------------------------------------------

    pub fn dir(&self) -> &Path {
        &self.files.dir
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The money office's URL: the one [`Wallet::use_office`] gave, else the
    /// wallet's setting.
    pub fn office_url(&self) -> String {
        self.office_override
            .clone()
            .unwrap_or_else(|| self.settings.office.clone())
    }

    pub fn is_enrolled(&self) -> bool {
        self.engine.is_some()
    }

    /// The engine, for queries; an error before enrolment.
    pub fn engine(&self) -> Result<&mpay_offline::Wallet, WalletError> {
        match &self.engine {
            Some(engine) => Ok(engine),
            None if self.store.is_none() => Err(stopped()),
            None => Err(RecoverError::Missing(self.missing).into()),
        }
    }

    pub fn id(&self) -> Result<PartyId, WalletError> {
        Ok(self.engine()?.id())
    }

    pub fn currency(&self) -> Result<Currency, WalletError> {
        Ok(self.engine()?.currency())
    }

    pub fn balance(&self) -> Result<Amount, WalletError> {
        Ok(self.engine()?.balance())
    }

    pub fn locked(&self) -> Result<Amount, WalletError> {
        Ok(self.engine()?.locked())
    }

    /// Whether the newest revocation list this wallet holds names it.
    pub fn is_revoked(&self) -> bool {
        self.engine
            .as_ref()
            .is_some_and(|w| w.trust().is_revoked(&w.id()))
    }

    pub(crate) fn check_writable(&self) -> Result<(), WalletError> {
        if self.access == Access::Read {
            return Err(WalletError::other(
                "the wallet was opened to read only; open it for changes",
            ));
        }
        Ok(())
    }

    /// Engine and store, for a change.
    pub(crate) fn parts(
        &mut self,
    ) -> Result<(&mut mpay_offline::Wallet, &mut WalletStore), WalletError> {
        self.check_writable()?;
        match (&mut self.engine, &mut self.store) {
            (Some(engine), Some(store)) => Ok((engine, store)),
            (_, None) => Err(stopped()),
            (None, Some(_)) => Err(RecoverError::Missing(self.missing).into()),
        }
    }

    /// Records the wallet's id and currency in the settings if missing.
    fn note_id(&mut self) -> Result<(), WalletError> {
        let engine = self.engine()?;
        let id = engine.id().to_hex();
        let currency = engine.currency().to_string();
        if self.settings.wallet.as_deref() != Some(id.as_str()) {
            self.settings.wallet = Some(id);
            self.settings.currency = Some(currency);
            self.files.write_settings(&self.settings)?;
        }
        Ok(())
    }

    /// The owner's token: the one given, else the one kept in the store.
    fn token(&self, given: Option<&str>) -> Result<Zeroizing<String>, WalletError> {
        match (given, &self.stored_token) {
            (Some(t), _) => {
                check_text("the owner token", t)?;
                Ok(Zeroizing::new(t.to_owned()))
            }
            (None, Some(t)) => Ok(t.clone()),
            (None, None) => Err(WalletError::other(
                "no owner token: pass --token or set MPAY_OWNER_TOKEN",
            )),
        }
    }

    /// Makes every write the engine issued durable; returns its events.
    pub(crate) fn pump(&mut self) -> Result<Vec<Event>, WalletError> {
        let (engine, store) = self.parts()?;
        while let Some(write) = engine.poll_write() {
            store.apply(&write.batch)?;
            engine.write_completed(write.id);
        }
        // No sockets here: released frames are dropped, as if lost.
        while engine.poll_transmit().is_some() {}
        let mut events = Vec::new();
        while let Some(event) = engine.poll_event() {
            events.push(event);
        }
        Ok(events)
    }

    fn client(&self) -> Result<(OfficeClient, tokio::runtime::Runtime), WalletError> {
        Ok((OfficeClient::new(&self.office_url())?, runtime()?))
    }

    // ---- enrol -----------------------------------------------------------------

    /// Enrols the wallet with the money office (the token given, else the
    /// one kept at creation); a given token is kept in the store. An
    /// enrolled wallet is left as it is (`already`). With an office given by
    /// [`Wallet::use_office`], that office is saved in the settings.
    pub fn enroll(&mut self, token: Option<&str>) -> Result<Enrolment, WalletError> {
        self.check_writable()?;
        if self.engine.is_some() {
            return self.enrolment(true);
        }
        let snapshot = self.store.as_ref().ok_or_else(stopped)?.load()?;
        let keys = snapshot
            .meta
            .get(meta::SECRET_KEYS)
            .ok_or_else(|| WalletError::other("the store holds no keys (damaged?)"))
            .and_then(|bytes| {
                SecretKeys::from_secret_bytes(bytes)
                    .map_err(|e| WalletError::other(format!("the stored keys are damaged: {e}")))
            })?;
        let token = self.token(token)?;
        if token.as_str() != self.stored_token.as_deref().map_or("", |t| t.as_str()) {
            let store = self.store.as_mut().ok_or_else(stopped)?;
            store.apply(&token_batch(&token))?;
            self.stored_token = Some(token.clone());
        }
        let office = self.office_url();
        let owner = self.settings.owner.clone();
        let store = self.store.as_mut().ok_or_else(stopped)?;
        let engine = enroll_store(store, &keys, &owner, &office, &token)?;
        self.engine = Some(engine);
        if self.office_override.is_some() {
            self.settings.office = office.trim_end_matches('/').to_owned();
        }
        self.note_id_always()?;
        self.enrolment(false)
    }

    fn note_id_always(&mut self) -> Result<(), WalletError> {
        let engine = self.engine()?;
        let (id, currency) = (engine.id().to_hex(), engine.currency().to_string());
        self.settings.wallet = Some(id);
        self.settings.currency = Some(currency);
        self.files.write_settings(&self.settings)
    }

    fn enrolment(&self, already: bool) -> Result<Enrolment, WalletError> {
        let engine = self.engine()?;
        let cert: &Certificate = engine.certificate();
        Ok(Enrolment {
            wallet: engine.id(),
            owner: self.settings.owner.clone(),
            office: self.settings.office.clone(),
            currency: engine.currency(),
            limits: cert.body.limits,
            certificate_expires_at: cert.body.expires_at,
            already,
        })
    }

    // ---- charge, sync, redeem ---------------------------------------------------

    /// A fresh idempotency key for [`Wallet::charge`] (hex of 16 random
    /// bytes). Keep it until the charge returns: repeating a charge whose
    /// answer was lost with the same key charges the owner once.
    pub fn new_idempotency_key() -> Result<String, WalletError> {
        let seed = os_random32()?;
        Ok(hex_string(&seed[..16]))
    }

    /// Loads `amount` from the owner's office account into the wallet (the
    /// office's voucher, applied durably). Sync afterwards
    /// ([`Wallet::sync`]) so the office sees the charge.
    pub fn charge(
        &mut self,
        amount: Amount,
        token: Option<&str>,
        idempotency_key: &str,
    ) -> Result<Charged, WalletError> {
        check_text("the idempotency key", idempotency_key)?;
        self.check_charge(amount)?;
        let id = self.id()?;
        let token = self.token(token)?;
        let (client, rt) = self.client()?;
        let voucher = rt.block_on(client.charge(&token, id, amount, idempotency_key))?;
        let (engine, _) = self.parts()?;
        let applied = match engine.charge(wall_clock(), voucher) {
            Ok(()) => true,
            Err(ChargeError::AlreadyUsed) => false,
            Err(e) => return Err(e.into()),
        };
        self.pump()?;
        Ok(Charged {
            amount,
            applied,
            idempotency_key: idempotency_key.to_owned(),
            balance: self.balance()?,
        })
    }

    /// Whether [`Wallet::charge`] would ask the office for `amount`: the
    /// wallet is not revoked, the amount is positive, in the wallet's
    /// currency, and keeps the wallet within its offline balance limit.
    pub fn check_charge(&self, amount: Amount) -> Result<(), WalletError> {
        self.check_writable()?;
        if self.is_revoked() {
            return Err(WalletError::DoubleSpend(
                "this wallet is revoked (a double spend was caught); it cannot be charged".into(),
            ));
        }
        let engine = self.engine()?;
        if !amount.is_positive() || amount.currency() != engine.currency() {
            return Err(WalletError::other(format!(
                "cannot charge {amount}: a positive amount in {} is needed",
                engine.currency()
            )));
        }
        if let Some(limits) = engine.certificate().body.limits {
            let after = engine
                .balance()
                .checked_add(engine.locked())
                .and_then(|b| b.checked_add(amount))
                .map_err(|e| WalletError::other(e.to_string()))?;
            if after.checked_cmp(&limits.offline_balance_max) == Ok(std::cmp::Ordering::Greater) {
                return Err(WalletError::LimitExceeded(format!(
                    "a charge of {amount} would take the wallet to {after}, over its offline \
                     balance limit of {}",
                    limits.offline_balance_max
                )));
            }
        }
        Ok(())
    }

    /// Uploads the chain to the money office until every entry is taken,
    /// and applies its answers (attestation, settled and released payments,
    /// revocation list).
    pub fn sync(&mut self) -> Result<SyncReport, WalletError> {
        let (client, rt) = self.client()?;
        self.sync_with(&client, &rt)
    }

    fn sync_with(
        &mut self,
        client: &OfficeClient,
        runtime: &tokio::runtime::Runtime,
    ) -> Result<SyncReport, WalletError> {
        let (engine, _) = self.parts()?;
        let mut report = SyncReport {
            uploaded_from: engine.next_unsynced_seq(),
            ..SyncReport::default()
        };
        for _ in 0..SYNC_ROUNDS_MAX {
            let (engine, _) = self.parts()?;
            let request = engine.sync_request(wall_clock())?;
            let response = runtime.block_on(client.sync(request))?;
            let (engine, _) = self.parts()?;
            let summary = engine.apply_sync_response(wall_clock(), &response)?;
            self.pump()?;
            report.rounds += 1;
            report.settled.extend(summary.settled);
            report.released.extend(summary.released);
            if summary.revocation_version.is_some() {
                report.revocation_version = summary.revocation_version;
            }
            if summary.entries_left == 0 {
                report.attestation = Some(self.engine()?.attestation().clone());
                return Ok(report);
            }
        }
        Err(WalletError::other(format!(
            "the chain was not fully uploaded after {SYNC_ROUNDS_MAX} rounds; sync again"
        )))
    }

    /// Hands `amount` back to the owner's office account: syncs first (the
    /// office must accept this wallet's chain, or nothing is written), writes
    /// the Redeem entry, and syncs again so the office credits the owner.
    pub fn redeem(&mut self, amount: Amount) -> Result<Redeemed, WalletError> {
        self.check_writable()?;
        let (client, rt) = self.client()?;
        // A Redeem entry is credited only through a sync the office accepts. A
        // wallet whose chain the office refuses (a revoked copy) would lose the
        // value for a credit that never comes: sync first, and write nothing
        // unless the office takes this chain.
        self.sync_with(&client, &rt).map_err(|e| {
            e.context(
                "nothing was redeemed: the money office must accept this wallet's chain first",
            )
        })?;
        let (engine, _) = self.parts()?;
        let redeem_id = engine.redeem(wall_clock(), amount)?;
        self.pump()?;
        let sync = self.sync_with(&client, &rt).map_err(|e| {
            e.context(&format!(
                "redeemed {amount} locally; the owner is credited at the next successful sync"
            ))
        })?;
        Ok(Redeemed {
            amount,
            redeem_id,
            balance: self.balance()?,
            sync,
        })
    }

    // ---- balance, history --------------------------------------------------------

    /// Balance, locked amount, last sync, revocation and what is in flight.
    pub fn balance_info(&self) -> Result<BalanceInfo, WalletError> {
        let w = self.engine()?;
        let attestation = w.attestation().clone();
        let synced = w.next_unsynced_seq() > 0;
        let chain_len = u64::try_from(w.chain().len()).unwrap_or(u64::MAX);
        let expires = w.certificate().body.expires_at;
        Ok(BalanceInfo {
            wallet: w.id(),
            owner: self.settings.owner.clone(),
            office: self.settings.office.clone(),
            currency: w.currency(),
            balance: w.balance(),
            locked: w.locked(),
            last_sync: synced.then_some(attestation.synced_at),
            unsynced_entries: chain_len.saturating_sub(w.next_unsynced_seq()),
            attestation,
            revoked: self.is_revoked(),
            revocation_version: w.revocation_list().map(|l| l.version),
            certificate_expires_at: expires,
            certificate_expired: expires <= wall_clock(),
            prepared: w
                .prepared_txs()
                .map(|(tx, seller, amount)| Prepared { tx, seller, amount })
                .collect(),
            committing: w.committing_txs().collect(),
        })
    }

    /// The chain's entries, newest first, at most `limit`.
    pub fn history(&self, limit: Option<usize>) -> Result<Vec<HistoryEntry>, WalletError> {
        let w = self.engine()?;
        Ok(w.chain()
            .iter()
            .rev()
            .take(limit.unwrap_or(usize::MAX))
            .map(|entry| history_entry(w, entry))
            .collect())
    }

    // ---- profile -------------------------------------------------------------------

    /// The owner's profile kept in the store (empty if none was set).
    pub fn profile(&self) -> Result<Profile, WalletError> {
        let snapshot = self.store.as_ref().ok_or_else(stopped)?.load()?;
        match snapshot.meta.get(PROFILE_META) {
            None => Ok(Profile::default()),
            Some(bytes) => Profile::from_bytes(bytes)
                .map_err(|e| WalletError::other(format!("the stored profile is damaged: {e}"))),
        }
    }

    /// Replaces the owner's profile (durable, encrypted with the store).
    pub fn set_profile(&mut self, profile: &Profile) -> Result<(), WalletError> {
        self.check_writable()?;
        profile.check()?;
        let mut batch = WriteBatch::new();
        batch.push(Write::PutMeta {
            key: PROFILE_META.into(),
            value: profile.to_bytes(),
        });
        self.store.as_mut().ok_or_else(stopped)?.apply(&batch)?;
        Ok(())
    }

    /// The profile's shipping details, to share with a seller at checkout.
    pub(crate) fn shipping_to_share(&self) -> Result<Shipping, WalletError> {
        let profile = self.profile()?;
        let text = profile.shipping.as_deref().ok_or_else(|| {
            WalletError::other(
                "there are no shipping details in this wallet's profile to share: set them with \
                 `mpay wallet profile set --shipping \"…\"`",
            )
        })?;
        Shipping::new(text)
            .map_err(|e| WalletError::other(format!("the profile's shipping details: {e}")))
    }

    // ---- backup, restore, PIN ----------------------------------------------------

    /// Writes an encrypted copy of the wallet (same PIN) to `dest`, a new or
    /// empty directory. Read [`BACKUP_WARNING`].
    pub fn backup(&self, dest: &Path) -> Result<(), WalletError> {
        let store = self.store.as_ref().ok_or_else(stopped)?;
        if dest.exists() {
            let empty = fs::read_dir(dest)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
            if !empty {
                return Err(WalletError::other(format!(
                    "{} exists and is not empty; give a new directory",
                    dest.display()
                )));
            }
        }
        fs::create_dir_all(dest)
            .map_err(|e| WalletError::other(format!("cannot create {}: {e}", dest.display())))?;
        store.backup_to(&dest.join(STORE_FILE))?;
        WalletDir::new(dest).write_settings(&self.settings)?;
        sync_dir(dest)
    }

    /// Replaces the wallet in `dir` with the backup in `src` (`force` to
    /// replace an existing wallet: its files are moved aside, not deleted).
    /// The copy is staged and opened with `pin` first, so a wrong PIN or a
    /// damaged backup leaves the current wallet alone.
    pub fn restore_with(
        dir: &Path,
        src: &Path,
        force: bool,
        pin: impl FnOnce() -> Result<Zeroizing<String>, WalletError>,
    ) -> Result<Restored, WalletError> {
        let target = WalletDir::new(dir);
        let source = WalletDir::new(src);
        if !source.store_path().exists() {
            return Err(WalletError::other(format!(
                "{} holds no wallet backup ({STORE_FILE} missing)",
                src.display()
            )));
        }
        let settings = source.read_settings()?;
        if target.has_wallet() && !force {
            return Err(WalletError::other(format!(
                "a wallet already exists in {}; pass --force to replace it (its files are moved \
                 aside, not deleted)",
                dir.display()
            )));
        }
        fs::create_dir_all(dir)
            .map_err(|e| WalletError::other(format!("cannot create {}: {e}", dir.display())))?;
        let _lock = target.lock()?;
        let stamp = wall_clock().as_millis();
        let staging = WalletDir::new(&dir.join(format!(".restore-{stamp}")));
        fs::create_dir_all(&staging.dir).map_err(|e| WalletError::other(e.to_string()))?;
        let staged = copy_store(&source, &staging).and_then(|()| {
            let pin = pin()?;
            check_pin(&pin)?;
            let store = WalletStore::open(&staging.store_path(), &pin)?;
            store.load()?;
            Ok(())
        });
        if let Err(e) = staged {
            let _ = fs::remove_dir_all(&staging.dir);
            return Err(e);
        }
        let mut replaced = None;
        if target.has_wallet() {
            let aside = dir.join(format!("replaced-{stamp}"));
            fs::create_dir_all(&aside).map_err(|e| WalletError::other(e.to_string()))?;
            let mut old = target.store_files();
            if target.settings_path().exists() {
                old.push(target.settings_path());
            }
            move_files(&old, &aside)?;
            replaced = Some(aside);
        }
        move_files(&staging.store_files(), dir)?;
        let _ = fs::remove_dir_all(&staging.dir);
        target.write_settings(&settings)?;
        sync_dir(dir)?;
        Ok(Restored {
            wallet: settings.wallet,
            replaced,
        })
    }

    /// [`Wallet::restore_with`] with the PIN given.
    pub fn restore(
        dir: &Path,
        src: &Path,
        force: bool,
        pin: &str,
    ) -> Result<Restored, WalletError> {
        Wallet::restore_with(dir, src, force, || Ok(Zeroizing::new(pin.to_owned())))
    }

    /// Re-encrypts the store under `new_pin`.
    pub fn change_pin(&mut self, new_pin: &str, kdf: KdfCost) -> Result<(), WalletError> {
        self.check_writable()?;
        check_pin(new_pin)?;
        let store = self.store.as_mut().ok_or_else(stopped)?;
        store.change_pin(new_pin, kdf.params())?;
        Ok(())
    }
}

/// The error of a handle whose node stopped after a store or socket failure.
fn stopped() -> WalletError {
    WalletError::other(
        "the wallet stopped after a store or socket failure; open it again from its store",
    )
}

fn recover(snapshot: &Snapshot) -> Result<mpay_offline::Wallet, WalletError> {
    Ok(mpay_offline::Wallet::recover_with_seed(
        Config::default(),
        snapshot,
        os_random32()?,
        wall_clock(),
    )?)
}

fn stored_token(snapshot: &Snapshot) -> Option<Zeroizing<String>> {
    snapshot
        .meta
        .get(OFFICE_TOKEN_META)
        .and_then(|bytes| String::from_utf8(bytes.clone()).ok())
        .map(Zeroizing::new)
}

/// Enrols `keys` with the office and writes the genesis batch; returns the
/// engine as recovered from the store.
fn enroll_store(
    store: &mut WalletStore,
    keys: &SecretKeys,
    owner: &str,
    office: &str,
    token: &str,
) -> Result<mpay_offline::Wallet, WalletError> {
    let rt = runtime()?;
    let client = OfficeClient::new(office)?;
    let requested_at = wall_clock();
    let proof = sign_enrolment(owner, keys, requested_at);
    let enrolment = match rt.block_on(client.enroll(token, &keys.public(), requested_at, &proof)) {
        Ok(enrolment) => enrolment,
        Err(refused @ ClientError::Refused { .. }) => {
            // The proof names `owner`: a token of someone else fails it. Say so.
            return Err(match rt.block_on(client.owner_balance(token)) {
                Ok(info) if info.owner != owner => token_of_another_owner(&info.owner, owner),
                _ => WalletError::from(refused),
            });
        }
        Err(other) => return Err(other.into()),
    };
    if enrolment.certificate.keys() != &keys.public() {
        return Err(WalletError::other(
            "the office issued a certificate for other keys; not installed",
        ));
    }
    let batch = mpay_offline::Wallet::genesis(
        keys,
        &enrolment.certificate,
        &enrolment.office_certificate,
        &enrolment.attestation,
        wall_clock(),
    )
    .map_err(|e| WalletError::other(format!("the office's enrolment does not check out: {e}")))?;
    store.apply(&batch)?;
    let snapshot = store.load()?;
    recover(&snapshot)
}

/// Enrolment with a token the office knows as `holder`'s, not `owner`'s.
pub fn token_of_another_owner(holder: &str, owner: &str) -> WalletError {
    WalletError::other(format!(
        "this owner token belongs to {holder:?}, not to {owner:?}: pass {owner}'s token \
         (--token or MPAY_OWNER_TOKEN), or --owner {holder}"
    ))
}

fn history_entry(w: &mpay_offline::Wallet, entry: &ChainEntry) -> HistoryEntry {
    let zero = Amount::zero(w.currency());
    let neg = |a: Amount| a.checked_neg().unwrap_or(zero);
    let (kind, tx, counterparty, change, status) = match &entry.kind {
        EntryKind::Genesis { .. } => (EntryKindName::Genesis, None, None, zero, None),
        EntryKind::Charge { voucher } => (
            EntryKindName::Charge,
            Some(hex_string(&voucher.charge_id)),
            Some(voucher.office),
            voucher.amount,
            None,
        ),
        EntryKind::Pay {
            tx, seller, amount, ..
        } => (
            EntryKindName::Pay,
            Some(tx.to_string()),
            Some(*seller),
            neg(*amount),
            Some(if w.paid(tx) {
                PayStatus::Paid
            } else if w.voided(tx) {
                PayStatus::Voided
            } else {
                PayStatus::Locked
            }),
        ),
        EntryKind::Receive {
            tx, buyer, amount, ..
        } => (
            EntryKindName::Receive,
            Some(tx.to_string()),
            Some(*buyer),
            *amount,
            None,
        ),
        EntryKind::Void {
            tx,
            paid_seq,
            amount,
            ..
        } => {
            let seller = usize::try_from(*paid_seq)
                .ok()
                .and_then(|i| w.chain().get(i))
                .and_then(|e| match &e.kind {
                    EntryKind::Pay { seller, .. } => Some(*seller),
                    _ => None,
                });
            (
                EntryKindName::Void,
                Some(tx.to_string()),
                seller,
                *amount,
                None,
            )
        }
        EntryKind::Redeem { redeem_id, amount } => (
            EntryKindName::Redeem,
            Some(hex_string(redeem_id)),
            Some(w.office().subject()),
            neg(*amount),
            None,
        ),
    };
    HistoryEntry {
        seq: entry.seq,
        kind,
        tx,
        counterparty,
        change,
        balance_after: entry.balance_after,
        created_at: entry.created_at,
        status,
        shipping: match &entry.kind {
            EntryKind::Receive { tx, .. } => w.shipping_shared(tx).map(|s| s.as_str().to_owned()),
            _ => None,
        },
    }
}

fn copy_store(from: &WalletDir, to: &WalletDir) -> Result<(), WalletError> {
    for file in from.store_files() {
        let name = file
            .file_name()
            .ok_or_else(|| WalletError::other("a store file without a name"))?;
        let dest = to.dir.join(name);
        fs::copy(&file, &dest)
            .map_err(|e| WalletError::other(format!("cannot copy {}: {e}", file.display())))?;
        fs::File::open(&dest)
            .and_then(|f| f.sync_all())
            .map_err(|e| WalletError::other(format!("cannot sync {}: {e}", dest.display())))?;
    }
    sync_dir(&to.dir)
}

fn move_files(files: &[PathBuf], to: &Path) -> Result<(), WalletError> {
    for file in files {
        let Some(name) = file.file_name() else {
            continue;
        };
        fs::rename(file, to.join(name))
            .map_err(|e| WalletError::other(format!("cannot move {}: {e}", file.display())))?;
    }
    sync_dir(to)
}

/// A current-thread runtime for the office client.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, WalletError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| WalletError::other(format!("cannot start the HTTP client: {e}")))
}

/// The batch that keeps the owner's office token in the store.
fn token_batch(token: &str) -> WriteBatch {
    let mut batch = WriteBatch::new();
    batch.push(Write::PutMeta {
        key: OFFICE_TOKEN_META.into(),
        value: token.as_bytes().to_vec(),
    });
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_of_another_owner_is_named() {
        let error = token_of_another_owner("alice", "sam");
        assert!(matches!(error, WalletError::Other(_)));
        assert!(
            error
                .message()
                .starts_with("this owner token belongs to \"alice\", not to \"sam\""),
            "{error}"
        );
    }

    #[test]
    fn a_wrong_pin_is_its_own_kind_and_changes_nothing() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("w");
        let new = NewWallet {
            office: "http://127.0.0.1:9".into(),
            owner: "ann".into(),
            token: None,
            kdf: KdfCost::Fast,
        };
        drop(Wallet::create(&path, "1234", &new).expect("create"));
        let error = Wallet::open(&path, "9999").expect_err("wrong PIN");
        assert!(matches!(error, WalletError::WrongPin(_)), "{error:?}");
        let wallet = Wallet::open(&path, "1234").expect("right PIN");
        assert!(!wallet.is_enrolled());
        assert!(wallet.balance().is_err(), "not enrolled: no balance");
    }

    #[test]
    fn the_profile_is_kept_encrypted_in_the_store() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("w");
        let new = NewWallet {
            office: "http://127.0.0.1:9".into(),
            owner: "ann".into(),
            token: None,
            kdf: KdfCost::Fast,
        };
        let mut wallet = Wallet::create(&path, "1234", &new).expect("create");
        assert_eq!(wallet.profile().expect("empty"), Profile::default());
        let shipping = "Ann Example, 42 Quiet Lane, Smalltown";
        let profile = Profile {
            shipping: Some(shipping.into()),
            payment: Some("card ending 4242".into()),
            ..Profile::default()
        };
        wallet.set_profile(&profile).expect("set");
        drop(wallet);
        let wallet = Wallet::open_with(&path, Access::Read, || Ok(Zeroizing::new("1234".into())))
            .expect("open");
        assert_eq!(wallet.profile().expect("stored"), profile);
        // Nothing of it is readable in the wallet's files without the PIN.
        for entry in fs::read_dir(&path).expect("dir") {
            let bytes = fs::read(entry.expect("entry").path()).unwrap_or_default();
            assert!(
                !bytes
                    .windows(shipping.len())
                    .any(|w| w == shipping.as_bytes()),
                "the shipping details lie in plain text in the wallet's files"
            );
        }
        let mut reader = wallet;
        assert!(reader.set_profile(&profile).is_err(), "read-only handle");
    }

    #[test]
    fn a_pin_is_bounded() {
        assert!(check_pin("").is_err());
        assert!(check_pin(&"7".repeat(PIN_LEN_MAX)).is_ok());
        assert!(check_pin(&"7".repeat(PIN_LEN_MAX + 1)).is_err());
    }
}
