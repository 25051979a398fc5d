//! The wallet library ([`mpay_wallet`]) exported through UniFFI (proc-macro
//! mode), for Python, Kotlin and Swift apps.
//!
//! Amounts cross as minor units (`i64`) of the wallet's currency, bounded by
//! [`AMOUNT_MINOR_MAX`]; wallet and transaction ids as hex strings. Every
//! failure is a [`WalletException`] whose variant is the library error's
//! kind. Progress comes to a foreign [`ProgressListener`]; a
//! [`CancelToken`] stops a sale or a purchase from another thread before
//! anything moves. Calls block: an app runs `sell`, `buy` and `resume` off
//! its UI thread.

#![forbid(unsafe_code)]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mpay_wallet::{
    Access, Amount, BuyRequest, CancelHandle, Event, KdfCost, Listener, NetOptions, PartyId,
    Progress, PurchaseOutcome, Sale, SellRequest, SyncReport, WalletError,
};

uniffi::setup_scaffolding!();

/// Largest amount accepted from the app, minor units (ten billion units of
/// a two-decimal currency): far below overflow; the certificate's limits
/// are smaller still.
pub const AMOUNT_MINOR_MAX: i64 = 1_000_000_000_000;

/// Longest wait accepted from the app, milliseconds (a day).
pub const WAIT_MS_MAX: u64 = 86_400_000;

/// A wallet failure, by kind; `message` is for the owner.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum WalletException {
    #[error("{message}")]
    WrongPin { message: String },
    #[error("{message}")]
    InsufficientFunds { message: String },
    #[error("{message}")]
    NoBuyerNearby { message: String },
    #[error("{message}")]
    Refused { message: String },
    #[error("{message}")]
    LimitExceeded { message: String },
    #[error("{message}")]
    OfficeUnreachable { message: String },
    #[error("{message}")]
    DoubleSpend { message: String },
    #[error("{message}")]
    Timeout { message: String },
    #[error("{message}")]
    SeveralBuyers {
        buyers: Vec<String>,
        message: String,
    },
    #[error("{message}")]
    Cancelled { message: String },
    #[error("{message}")]
    Other { message: String },
}

impl From<WalletError> for WalletException {
    fn from(e: WalletError) -> WalletException {
        let message = e.message().to_owned();
        match e {
            WalletError::WrongPin(_) => WalletException::WrongPin { message },
            WalletError::InsufficientFunds(_) => WalletException::InsufficientFunds { message },
            WalletError::NoBuyerNearby(_) => WalletException::NoBuyerNearby { message },
            WalletError::Refused(_) => WalletException::Refused { message },
            WalletError::LimitExceeded(_) => WalletException::LimitExceeded { message },
            WalletError::OfficeUnreachable(_) => WalletException::OfficeUnreachable { message },
            WalletError::DoubleSpend(_) => WalletException::DoubleSpend { message },
            WalletError::Timeout(_) => WalletException::Timeout { message },
            WalletError::SeveralBuyers { buyers, .. } => WalletException::SeveralBuyers {
                buyers: buyers.iter().map(|b| b.to_hex()).collect(),
                message,
            },
            WalletError::Cancelled(_) => WalletException::Cancelled { message },
            WalletError::Other(_) => WalletException::Other { message },
        }
    }
}

fn other(message: impl Into<String>) -> WalletException {
    WalletException::Other {
        message: message.into(),
    }
}

/// How a sale or a purchase goes, as it goes.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ProgressEvent {
    /// The seller broadcasts LOOKUPs.
    LookingForBuyers {
        local_addr: String,
    },
    /// The buyers that answered so far.
    BuyersFound {
        buyers: Vec<String>,
    },
    /// The COMMIT-REQUEST left: waiting for the buyer's agreement.
    WaitingForBuyer {
        tx: String,
        buyer: String,
        amount_minor: i64,
    },
    /// Buyer mode: waiting for a seller's request.
    WaitingForSeller {
        max_minor: i64,
        balance_minor: i64,
        local_addr: String,
    },
    /// A seller asked; `refusal` says why the wallet did not agree.
    PaymentRequested {
        tx: String,
        seller: String,
        amount_minor: i64,
        description: String,
        accepted: bool,
        refusal: Option<String>,
    },
    /// Serving pending transactions.
    Resuming {
        local_addr: String,
        prepared: u32,
        committing: u32,
    },
    /// The sale is committed: the money is the seller's.
    SaleCommitted {
        tx: String,
        buyer: String,
        amount_minor: i64,
    },
    /// The buyer acknowledged the commit.
    SaleCompleted {
        tx: String,
    },
    SaleAborted {
        tx: String,
        reason: String,
    },
    /// The payment is committed: the money is the seller's.
    PaymentCommitted {
        tx: String,
        seller: String,
        amount_minor: i64,
    },
    PaymentAborted {
        tx: String,
        amount_minor: i64,
    },
    /// Anything else the engine reports, in words.
    Note {
        text: String,
    },
}

fn u32_of(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl From<&Progress> for ProgressEvent {
    fn from(p: &Progress) -> ProgressEvent {
        match p {
            Progress::LookingForBuyers { local_addr } => ProgressEvent::LookingForBuyers {
                local_addr: local_addr.to_string(),
            },
            Progress::BuyersFound { buyers } => ProgressEvent::BuyersFound {
                buyers: buyers.iter().map(|b| b.to_hex()).collect(),
            },
            Progress::WaitingForBuyer { tx, buyer, amount } => ProgressEvent::WaitingForBuyer {
                tx: tx.to_string(),
                buyer: buyer.to_hex(),
                amount_minor: amount.minor_units(),
            },
            Progress::WaitingForSeller {
                max,
                balance,
                local_addr,
            } => ProgressEvent::WaitingForSeller {
                max_minor: max.minor_units(),
                balance_minor: balance.minor_units(),
                local_addr: local_addr.to_string(),
            },
            Progress::PaymentRequested { request, refusal } => ProgressEvent::PaymentRequested {
                tx: request.tx.to_string(),
                seller: request.seller.to_hex(),
                amount_minor: request.amount.minor_units(),
                description: request.description.clone(),
                accepted: request.accepted,
                refusal: refusal.clone(),
            },
            Progress::Resuming {
                local_addr,
                prepared,
                committing,
            } => ProgressEvent::Resuming {
                local_addr: local_addr.to_string(),
                prepared: u32_of(*prepared),
                committing: u32_of(*committing),
            },
            Progress::Event(event) => match event {
                Event::SaleCommitted { tx, buyer, amount } => ProgressEvent::SaleCommitted {
                    tx: tx.to_string(),
                    buyer: buyer.to_hex(),
                    amount_minor: amount.minor_units(),
                },
                Event::SaleCompleted { tx } => ProgressEvent::SaleCompleted { tx: tx.to_string() },
                Event::SaleAborted { tx, reason } => ProgressEvent::SaleAborted {
                    tx: tx.to_string(),
                    reason: mpay_wallet::abort_text(*reason).to_owned(),
                },
                Event::PaymentCommitted { tx, seller, amount } => ProgressEvent::PaymentCommitted {
                    tx: tx.to_string(),
                    seller: seller.to_hex(),
                    amount_minor: amount.minor_units(),
                },
                Event::PaymentAborted { tx, amount } => ProgressEvent::PaymentAborted {
                    tx: tx.to_string(),
                    amount_minor: amount.minor_units(),
                },
                other => ProgressEvent::Note {
                    text: mpay_wallet::describe(other).unwrap_or_default(),
                },
            },
        }
    }
}

/// Told how an operation goes; implemented by the app.
#[uniffi::export(with_foreign)]
pub trait ProgressListener: Send + Sync {
    fn on_progress(&self, event: ProgressEvent);
    /// Several buyers answered a sale that named none: the one to sell to
    /// (its hex id), or none to stop.
    fn choose_buyer(&self, buyers: Vec<String>) -> Option<String>;
}

struct Relay(Arc<dyn ProgressListener>);

impl Listener for Relay {
    fn progress(&mut self, progress: &Progress) {
        self.0.on_progress(ProgressEvent::from(progress));
    }

    fn choose_buyer(&mut self, buyers: &[PartyId]) -> Option<PartyId> {
        let chosen = self
            .0
            .choose_buyer(buyers.iter().map(|b| b.to_hex()).collect())?;
        // Only one of the buyers offered may be chosen.
        buyers.iter().find(|b| b.to_hex() == chosen.trim()).copied()
    }
}

/// Stops a running sale, purchase or resume from another thread; honoured
/// only where nothing has moved yet.
#[derive(Debug, Default, uniffi::Object)]
pub struct CancelToken {
    inner: CancelHandle,
}

#[uniffi::export]
impl CancelToken {
    #[uniffi::constructor]
    pub fn new() -> Arc<CancelToken> {
        Arc::new(CancelToken::default())
    }

    pub fn cancel(&self) {
        self.inner.cancel();
    }

    pub fn is_cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }
}

/// How the wallet reaches wallets nearby.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct NetConfig {
    /// Local UDP address, like `127.0.0.1:0`.
    pub bind: String,
    /// `multicast`, `multicast:GROUP:PORT`, `lan:ADDRESS:PORT` or
    /// `peers:ADDR:PORT,…`.
    pub broadcast: String,
    /// The interface that joins a multicast group, like `127.0.0.1`.
    pub interface: String,
}

impl NetConfig {
    fn options(&self) -> Result<NetOptions, WalletException> {
        let bind: SocketAddrV4 = self
            .bind
            .parse()
            .map_err(|_| other(format!("bind {:?} is not an IPv4 address:port", self.bind)))?;
        let interface: Ipv4Addr = self.interface.parse().map_err(|_| {
            other(format!(
                "interface {:?} is not an IPv4 address",
                self.interface
            ))
        })?;
        Ok(NetOptions {
            bind,
            broadcast: mpay_wallet::parse_broadcast(&self.broadcast, interface)?,
            interface,
            drop_permille: 0,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct EnrolmentInfo {
    pub wallet: String,
    pub owner: String,
    pub office: String,
    pub currency: String,
    pub certificate_expires_ms: u64,
    pub already: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChargeInfo {
    pub amount_minor: i64,
    pub applied: bool,
    pub idempotency_key: String,
    pub balance_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncInfo {
    pub rounds: u32,
    pub uploaded_from: u64,
    pub attested_seq: Option<u64>,
    pub attested_balance_minor: Option<i64>,
    pub settled: Vec<String>,
    pub released: Vec<String>,
    pub revocation_version: Option<u64>,
}

impl From<&SyncReport> for SyncInfo {
    fn from(r: &SyncReport) -> SyncInfo {
        SyncInfo {
            rounds: u32_of(r.rounds),
            uploaded_from: r.uploaded_from,
            attested_seq: r.attestation.as_ref().map(|a| a.seq),
            attested_balance_minor: r.attestation.as_ref().map(|a| a.balance.minor_units()),
            settled: r.settled.iter().map(|t| t.to_string()).collect(),
            released: r.released.iter().map(|t| t.to_string()).collect(),
            revocation_version: r.revocation_version,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RedeemInfo {
    pub amount_minor: i64,
    pub redeem_id: String,
    pub balance_minor: i64,
    pub sync: SyncInfo,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PendingPayment {
    pub tx: String,
    pub seller: String,
    pub amount_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct BalanceInfo {
    pub wallet: String,
    pub owner: String,
    pub office: String,
    pub currency: String,
    pub balance_minor: i64,
    pub locked_minor: i64,
    pub last_sync_ms: Option<u64>,
    pub attested_seq: u64,
    pub attested_balance_minor: i64,
    pub unsynced_entries: u64,
    pub revoked: bool,
    pub certificate_expires_ms: u64,
    pub prepared: Vec<PendingPayment>,
    pub committing: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HistoryItem {
    pub seq: u64,
    /// `genesis`, `charge`, `pay`, `receive`, `void` or `redeem`.
    pub kind: String,
    pub tx: Option<String>,
    pub counterparty: Option<String>,
    /// Signed change of the balance (a payment is negative).
    pub change_minor: i64,
    pub balance_after_minor: i64,
    pub time_ms: u64,
    /// For a payment: `paid`, `voided` or `locked`.
    pub status: Option<String>,
    /// For a sale: the shipping details the buyer chose to share.
    pub shipping: Option<String>,
}

/// How a sale ended.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SaleInfo {
    pub tx: String,
    pub buyer: String,
    pub amount_minor: i64,
    /// False when committed (the money is the seller's) but the buyer's
    /// acknowledgement had not arrived.
    pub acknowledged: bool,
    /// The shipping details the buyer chose to share, if it did.
    pub shipping: Option<String>,
}

/// How a purchase ended.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum PurchaseInfo {
    Paid {
        tx: String,
        seller: String,
        amount_minor: i64,
    },
    /// The seller aborted after the wallet agreed; the amount is back.
    Aborted { tx: String, amount_minor: i64 },
    /// Agreed, the amount locked, the outcome not known yet (`resume`).
    Uncertain {
        tx: String,
        seller: String,
        amount_minor: i64,
    },
    /// The claim deadline passed: the money office settles it at sync.
    AwaitingOffice { tx: String },
}

/// The owner's payment information, certificate, shipping and billing
/// details, kept encrypted in the store.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ProfileInfo {
    pub payment: Option<String>,
    pub certificate: Option<String>,
    pub shipping: Option<String>,
    pub billing: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ResumeInfo {
    pub balance_minor: i64,
    pub locked_minor: i64,
    pub prepared: Vec<PendingPayment>,
    pub committing: Vec<String>,
}

fn kdf(fast: bool) -> KdfCost {
    if fast {
        KdfCost::Fast
    } else {
        KdfCost::Default
    }
}

fn wait_of(ms: u64) -> Result<Duration, WalletException> {
    if ms > WAIT_MS_MAX {
        return Err(other(format!("a wait longer than {WAIT_MS_MAX} ms")));
    }
    Ok(Duration::from_millis(ms))
}

fn party(text: &str, what: &str) -> Result<PartyId, WalletException> {
    Ok(mpay_wallet::parse_party(text, what)?)
}

/// One wallet directory, opened with its PIN.
#[derive(uniffi::Object)]
pub struct Wallet {
    inner: Mutex<mpay_wallet::Wallet>,
}

impl std::fmt::Debug for Wallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wallet").finish_non_exhaustive()
    }
}

impl Wallet {
    fn lock(&self) -> Result<MutexGuard<'_, mpay_wallet::Wallet>, WalletException> {
        self.inner
            .lock()
            .map_err(|_| other("an earlier call on this wallet failed midway; open it again"))
    }

    fn wrap(wallet: mpay_wallet::Wallet) -> Arc<Wallet> {
        Arc::new(Wallet {
            inner: Mutex::new(wallet),
        })
    }

    fn amount(&self, minor: i64) -> Result<Amount, WalletException> {
        if !(1..=AMOUNT_MINOR_MAX).contains(&minor) {
            return Err(other(format!(
                "an amount of {minor} minor units: between 1 and {AMOUNT_MINOR_MAX} is needed"
            )));
        }
        Ok(Amount::new(minor, self.lock()?.currency()?))
    }
}

#[uniffi::export]
impl Wallet {
    /// Creates a wallet in `dir` (new keys, encrypted store), not enrolled
    /// yet. `fast_kdf` is for tests only.
    #[uniffi::constructor]
    pub fn create(
        dir: String,
        pin: String,
        office: String,
        owner: String,
        token: Option<String>,
        fast_kdf: bool,
    ) -> Result<Arc<Wallet>, WalletException> {
        let new = mpay_wallet::NewWallet {
            office,
            owner,
            token,
            kdf: kdf(fast_kdf),
        };
        Ok(Wallet::wrap(mpay_wallet::Wallet::create(
            &PathBuf::from(dir),
            &pin,
            &new,
        )?))
    }

    /// Opens the wallet in `dir` for changes (one handle at a time).
    #[uniffi::constructor]
    pub fn open(dir: String, pin: String) -> Result<Arc<Wallet>, WalletException> {
        Ok(Wallet::wrap(mpay_wallet::Wallet::open(
            &PathBuf::from(dir),
            &pin,
        )?))
    }

    /// Opens the wallet in `dir` to read balance and history only.
    #[uniffi::constructor]
    pub fn open_read_only(dir: String, pin: String) -> Result<Arc<Wallet>, WalletException> {
        let wallet =
            mpay_wallet::Wallet::open_with(&PathBuf::from(dir), Access::Read, || Ok(pin.into()))?;
        Ok(Wallet::wrap(wallet))
    }

    /// Replaces the wallet in `dir` with the backup in `src` and opens it.
    #[uniffi::constructor]
    pub fn restore(
        dir: String,
        src: String,
        force: bool,
        pin: String,
    ) -> Result<Arc<Wallet>, WalletException> {
        let dir = PathBuf::from(dir);
        mpay_wallet::Wallet::restore(&dir, &PathBuf::from(src), force, &pin)?;
        Ok(Wallet::wrap(mpay_wallet::Wallet::open(&dir, &pin)?))
    }

    pub fn enroll(&self, token: Option<String>) -> Result<EnrolmentInfo, WalletException> {
        let e = self.lock()?.enroll(token.as_deref())?;
        Ok(EnrolmentInfo {
            wallet: e.wallet.to_hex(),
            owner: e.owner,
            office: e.office,
            currency: e.currency.to_string(),
            certificate_expires_ms: e.certificate_expires_at.as_millis(),
            already: e.already,
        })
    }

    pub fn id(&self) -> Result<String, WalletException> {
        Ok(self.lock()?.id()?.to_hex())
    }

    pub fn currency(&self) -> Result<String, WalletException> {
        Ok(self.lock()?.currency()?.to_string())
    }

    /// Loads value from the owner's office account (then `sync`). Without
    /// a key a fresh one is made; give the same key again to repeat a
    /// charge whose answer was lost.
    pub fn charge(
        &self,
        amount_minor: i64,
        idempotency_key: Option<String>,
    ) -> Result<ChargeInfo, WalletException> {
        let amount = self.amount(amount_minor)?;
        let key = match idempotency_key {
            Some(key) => key,
            None => mpay_wallet::Wallet::new_idempotency_key()?,
        };
        let c = self.lock()?.charge(amount, None, &key)?;
        Ok(ChargeInfo {
            amount_minor: c.amount.minor_units(),
            applied: c.applied,
            idempotency_key: c.idempotency_key,
            balance_minor: c.balance.minor_units(),
        })
    }

    pub fn sync(&self) -> Result<SyncInfo, WalletException> {
        Ok(SyncInfo::from(&self.lock()?.sync()?))
    }

    pub fn redeem(&self, amount_minor: i64) -> Result<RedeemInfo, WalletException> {
        let amount = self.amount(amount_minor)?;
        let r = self.lock()?.redeem(amount)?;
        Ok(RedeemInfo {
            amount_minor: r.amount.minor_units(),
            redeem_id: r.redeem_id.iter().map(|b| format!("{b:02x}")).collect(),
            balance_minor: r.balance.minor_units(),
            sync: SyncInfo::from(&r.sync),
        })
    }

    pub fn balance(&self) -> Result<BalanceInfo, WalletException> {
        let b = self.lock()?.balance_info()?;
        Ok(BalanceInfo {
            wallet: b.wallet.to_hex(),
            owner: b.owner,
            office: b.office,
            currency: b.currency.to_string(),
            balance_minor: b.balance.minor_units(),
            locked_minor: b.locked.minor_units(),
            last_sync_ms: b.last_sync.map(|t| t.as_millis()),
            attested_seq: b.attestation.seq,
            attested_balance_minor: b.attestation.balance.minor_units(),
            unsynced_entries: b.unsynced_entries,
            revoked: b.revoked,
            certificate_expires_ms: b.certificate_expires_at.as_millis(),
            prepared: b
                .prepared
                .iter()
                .map(|p| PendingPayment {
                    tx: p.tx.to_string(),
                    seller: p.seller.to_hex(),
                    amount_minor: p.amount.minor_units(),
                })
                .collect(),
            committing: b.committing.iter().map(|t| t.to_string()).collect(),
        })
    }

    /// The chain's entries, newest first.
    pub fn history(&self, limit: Option<u32>) -> Result<Vec<HistoryItem>, WalletException> {
        let limit = limit.map(|l| usize::try_from(l).unwrap_or(usize::MAX));
        Ok(self
            .lock()?
            .history(limit)?
            .into_iter()
            .map(|e| HistoryItem {
                seq: e.seq,
                kind: e.kind.as_str().to_owned(),
                tx: e.tx,
                counterparty: e.counterparty.map(|p| p.to_hex()),
                change_minor: e.change.minor_units(),
                balance_after_minor: e.balance_after.minor_units(),
                time_ms: e.created_at.as_millis(),
                status: e.status.map(|s| s.as_str().to_owned()),
                shipping: e.shipping,
            })
            .collect())
    }

    pub fn profile(&self) -> Result<ProfileInfo, WalletException> {
        let p = self.lock()?.profile()?;
        Ok(ProfileInfo {
            payment: p.payment,
            certificate: p.certificate,
            shipping: p.shipping,
            billing: p.billing,
        })
    }

    /// Replaces the profile; each text is bounded (`Other` if longer).
    pub fn set_profile(&self, profile: ProfileInfo) -> Result<(), WalletException> {
        let p = mpay_wallet::Profile {
            payment: profile.payment,
            certificate: profile.certificate,
            shipping: profile.shipping,
            billing: profile.billing,
        };
        Ok(self.lock()?.set_profile(&p)?)
    }

    /// An encrypted copy (same PIN) in `dest`, a new or empty directory.
    pub fn backup(&self, dest: String) -> Result<(), WalletException> {
        Ok(self.lock()?.backup(&PathBuf::from(dest))?)
    }

    pub fn change_pin(&self, new_pin: String, fast_kdf: bool) -> Result<(), WalletException> {
        Ok(self.lock()?.change_pin(&new_pin, kdf(fast_kdf))?)
    }

    /// Sells `amount_minor` to a wallet nearby in buyer mode (`buyer`: its
    /// hex id; without it the only one nearby, or the listener's choice).
    #[allow(clippy::too_many_arguments)] // the flat shape foreign callers see
    pub fn sell(
        &self,
        amount_minor: i64,
        buyer: Option<String>,
        description: String,
        wait_ms: u64,
        lookup_ms: u64,
        net: NetConfig,
        listener: Arc<dyn ProgressListener>,
        cancel: Arc<CancelToken>,
    ) -> Result<SaleInfo, WalletException> {
        let request = SellRequest {
            amount: self.amount(amount_minor)?,
            buyer: buyer.as_deref().map(|b| party(b, "buyer")).transpose()?,
            description,
            wait: wait_of(wait_ms)?,
            lookup: wait_of(lookup_ms)?,
        };
        let sale = self.lock()?.sell(
            &request,
            &net.options()?,
            &mut Relay(listener),
            &cancel.inner,
        )?;
        Ok(match sale {
            Sale::Completed {
                tx,
                buyer,
                amount,
                shipping,
            } => SaleInfo {
                tx: tx.to_string(),
                buyer: buyer.to_hex(),
                amount_minor: amount.minor_units(),
                acknowledged: true,
                shipping,
            },
            Sale::CommittedUnacknowledged {
                tx,
                buyer,
                amount,
                shipping,
            } => SaleInfo {
                tx: tx.to_string(),
                buyer: buyer.to_hex(),
                amount_minor: amount.minor_units(),
                acknowledged: false,
                shipping,
            },
        })
    }

    /// Buyer mode: pays the first request of at most `max_minor` (from
    /// `seller` only, if given) within `wait_ms`; with `share_shipping`, the
    /// profile's shipping details go to that seller, sealed to it.
    #[allow(clippy::too_many_arguments)] // the flat shape foreign callers see
    pub fn buy(
        &self,
        max_minor: i64,
        seller: Option<String>,
        wait_ms: u64,
        share_shipping: bool,
        net: NetConfig,
        listener: Arc<dyn ProgressListener>,
        cancel: Arc<CancelToken>,
    ) -> Result<PurchaseInfo, WalletException> {
        let request = BuyRequest {
            max: self.amount(max_minor)?,
            seller: seller.as_deref().map(|s| party(s, "seller")).transpose()?,
            wait: wait_of(wait_ms)?,
            share_shipping,
        };
        let outcome = self.lock()?.buy(
            &request,
            &net.options()?,
            &mut Relay(listener),
            &cancel.inner,
        )?;
        Ok(match outcome {
            PurchaseOutcome::Paid { tx, seller, amount } => PurchaseInfo::Paid {
                tx: tx.to_string(),
                seller: seller.to_hex(),
                amount_minor: amount.minor_units(),
            },
            PurchaseOutcome::Aborted { tx, amount } => PurchaseInfo::Aborted {
                tx: tx.to_string(),
                amount_minor: amount.minor_units(),
            },
            PurchaseOutcome::Uncertain { tx, seller, amount } => PurchaseInfo::Uncertain {
                tx: tx.to_string(),
                seller: seller.to_hex(),
                amount_minor: amount.minor_units(),
            },
            PurchaseOutcome::AwaitingOffice { tx } => {
                PurchaseInfo::AwaitingOffice { tx: tx.to_string() }
            }
        })
    }

    /// Finishes what a crash or an exit left open, answering wallets nearby.
    pub fn resume(
        &self,
        wait_ms: u64,
        stay: bool,
        net: NetConfig,
        listener: Arc<dyn ProgressListener>,
        cancel: Arc<CancelToken>,
    ) -> Result<ResumeInfo, WalletException> {
        let r = self.lock()?.resume(
            &net.options()?,
            wait_of(wait_ms)?,
            stay,
            &mut Relay(listener),
            &cancel.inner,
        )?;
        Ok(ResumeInfo {
            balance_minor: r.balance.minor_units(),
            locked_minor: r.locked.minor_units(),
            prepared: r
                .prepared
                .iter()
                .map(|p| PendingPayment {
                    tx: p.tx.to_string(),
                    seller: p.seller.to_hex(),
                    amount_minor: p.amount.minor_units(),
                })
                .collect(),
            committing: r.committing.iter().map(|t| t.to_string()).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_error_keeps_its_kind_and_message() {
        let e = WalletException::from(WalletError::WrongPin("wrong PIN".into()));
        assert_eq!(
            e,
            WalletException::WrongPin {
                message: "wrong PIN".into()
            }
        );
        let buyer = PartyId::from_u64(3);
        let e = WalletException::from(WalletError::several_buyers(&[buyer]));
        assert!(
            matches!(&e, WalletException::SeveralBuyers { buyers, .. } if buyers == &[buyer.to_hex()]),
            "{e:?}"
        );
    }

    #[test]
    fn a_wait_is_bounded() {
        assert!(wait_of(WAIT_MS_MAX).is_ok());
        assert!(wait_of(WAIT_MS_MAX + 1).is_err());
    }
}
