//! The SEMOPS load harness, shared by `mpay bench semops`, `mpay bench
//! micro --services-seconds` and `mpay chaos`: on a provisioned, running
//! network it opens bank accounts for shops and a crowd of customers,
//! enrols them, and drives closed-loop payments through the real services
//! with the devices of [`mpay_api::device`]. One approver per shop
//! long-polls its MPP and approves every notice. Afterwards
//! [`check_accounts`] checks that each customer paid exactly its completed
//! payments and the shops received all of them.
//!
//! What a run measures beside this (CPU time of the processes, pgbench,
//! the outboxes' counters) stays with the benchmark that prints it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mpay_api::device::{CustomerDevice, DeviceError, MerchantTerminal, Submitted, Terms};
use mpay_api::semops::{ClientError, CppClient, EnrolCustomer, EnrolMerchant, MppClient};
use mpay_bank::{AccountId, BankClient};
use mpay_identity::{SecretKeys, Suite};
use mpay_money::Amount;
use mpay_semops::Decision;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng as _, SeedableRng};

use crate::config::ConfigError;
use crate::directory::Directory;
use crate::provision::{DIRECTORY_FILE, Operators, ProvisionError, grant_enrolment_mandate};
use crate::{MicroMode, ServiceConfig, wall_clock};

/// Every load customer's PIN.
pub const LOAD_PIN: &str = "4321";
/// Pause before asking an unreachable service again.
pub const RETRY_MS: u64 = 200;
/// How long a load TRANS stays payable.
const TRANS_VALIDITY_MS: u64 = 120_000;
/// Long-poll of a merchant's approver.
const NOTICES_WAIT_MS: u64 = 1_000;
/// Long-poll of a customer waiting for its payment's end.
const STATUS_WAIT_MS: u64 = 5_000;
/// The same while services crash: shorter, to notice a restart sooner.
const FAULT_STATUS_WAIT_MS: u64 = 2_000;

/// Why a load could not be set up or run.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The network folder's files.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The operators' file or a mandate.
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    /// A device could not sign, seal or ask.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// A bank refused to open an account or take a deposit, or could not
    /// be asked.
    #[error("{what}: {message}")]
    Bank {
        /// What was asked of which bank.
        what: String,
        /// What went wrong.
        message: String,
    },
    /// A payment of the load ended otherwise than completed.
    #[error("payment ended `{state}` ({reason:?})")]
    NotCompleted {
        /// Its final state.
        state: String,
        /// Why, if the CPP said.
        reason: Option<String>,
    },
    /// Anything else: a name the directory lacks, OS randomness, a worker
    /// that panicked.
    #[error("{0}")]
    Failed(String),
}

crate::device_error_from!(LoadError);

/// A generator seeded from the OS.
pub fn fresh_rng() -> Result<ChaCha20Rng, LoadError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| LoadError::Failed(format!("OS randomness: {e}")))?;
    Ok(ChaCha20Rng::from_seed(seed))
}

/// 16 random bytes (a nonce or an idempotency key).
pub fn random16(rng: &mut ChaCha20Rng) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    bytes
}

/// A shop of the load: its name, MPP and bank (account `shop:<name>`).
#[derive(Debug, Clone, Copy)]
pub struct Shop<'a> {
    /// The merchant's name.
    pub name: &'a str,
    /// Its MPP.
    pub mpp: &'a str,
    /// Its bank.
    pub bank: &'a str,
}

/// The customers of the load: `count` of them named `<prefix><i>`, each
/// with account `cust:<name>` at `bank` holding `deposit`, at `cpp`.
#[derive(Debug, Clone, Copy)]
pub struct Crowd<'a> {
    /// Their names' prefix.
    pub prefix: &'a str,
    /// How many.
    pub count: usize,
    /// Their CPP.
    pub cpp: &'a str,
    /// Their bank.
    pub bank: &'a str,
    /// What each account starts with.
    pub deposit: Amount,
}

/// The shops of the standard load: one at home (mpp1, bank2), one abroad
/// (mpp2, bank3).
pub const SHOPS: [Shop<'static>; 2] = [
    Shop {
        name: "load-shop1",
        mpp: "mpp1",
        bank: "bank2",
    },
    Shop {
        name: "load-shop2",
        mpp: "mpp2",
        bank: "bank3",
    },
];

/// What each customer of the standard crowd starts with, in cents.
pub const CUSTOMER_DEPOSIT_MINOR: i64 = 100_000_000;

/// The standard crowd: `count` customers `load<i>` at cpp1 (bank1), each
/// with [`CUSTOMER_DEPOSIT_MINOR`].
pub fn crowd(count: usize) -> Crowd<'static> {
    Crowd {
        prefix: "load",
        count,
        cpp: "cpp1",
        bank: "bank1",
        deposit: Amount::new(CUSTOMER_DEPOSIT_MINOR, mpay_money::Currency::EUR),
    }
}

/// A customer of the load: its bank account and its phone.
#[derive(Debug)]
pub struct LoadCustomer {
    /// Its account at its bank.
    pub account: String,
    /// Its phone.
    pub device: CustomerDevice,
}

/// The enrolled population of a load.
#[derive(Debug)]
pub struct Population {
    /// The shops' terminals, in the order given.
    pub merchants: Vec<Arc<MerchantTerminal>>,
    /// The customers.
    pub customers: Vec<Arc<LoadCustomer>>,
}

/// The operators' bank clients of the network folder `dir`.
struct Banks {
    directory: Directory,
    operators: Operators,
}

impl Banks {
    fn load(dir: &Path) -> Result<Banks, LoadError> {
        Ok(Banks {
            directory: Directory::load(dir.join(DIRECTORY_FILE))?,
            operators: Operators::load(dir)?,
        })
    }

    fn bank(&self, name: &str) -> Result<BankClient, LoadError> {
        let entry = self
            .directory
            .bank(name)
            .ok_or_else(|| LoadError::Failed(format!("no bank `{name}` in the directory")))?;
        let client = BankClient::new(&entry.url).map_err(|e| LoadError::Bank {
            what: format!("a client of {name}"),
            message: e.to_string(),
        })?;
        Ok(client.with_token(self.operators.token(name)?))
    }

    /// Opens `account` at `bank`, with `deposit` paid in if above zero.
    async fn open(&self, bank: &str, account: &str, deposit: Amount) -> Result<(), LoadError> {
        let id = AccountId::parse(account).map_err(|e| LoadError::Failed(e.to_string()))?;
        self.bank(bank)?
            .open_with_deposit(&id, account, deposit, "load")
            .await
            .map_err(|e| LoadError::Bank {
                what: format!("opening {account} at {bank}"),
                message: e.to_string(),
            })?;
        Ok(())
    }
}

/// Opens the shops' and the crowd's accounts on the running network of
/// folder `dir`, grants the processors their mandates and enrols everyone.
pub async fn enrol(
    dir: &Path,
    shops: &[Shop<'_>],
    crowd: Crowd<'_>,
) -> Result<Population, LoadError> {
    let banks = Banks::load(dir)?;
    let resolved = banks.directory.resolve(wall_clock())?;
    let service = |name: &str| {
        resolved
            .service(name)
            .ok_or_else(|| LoadError::Failed(format!("no `{name}` in the directory")))
    };
    let mut rng = fresh_rng()?;
    let mut merchants = Vec::new();
    for shop in shops {
        let account = format!("shop:{}", shop.name);
        let currency = banks.directory.currency()?;
        banks
            .open(shop.bank, &account, Amount::zero(currency))
            .await?;
        grant_enrolment_mandate(dir, shop.bank, &account, shop.mpp).await?;
        let mpp = service(shop.mpp)?;
        let keys = SecretKeys::generate(Suite::Ed25519X25519, &mut rng);
        let client = MppClient::new(&mpp.url)?;
        let (certificate, token) = client
            .enroll_merchant(
                banks.operators.token(shop.mpp)?,
                &EnrolMerchant::new(shop.name, shop.bank, &account, &keys.public()),
            )
            .await?;
        merchants.push(Arc::new(MerchantTerminal {
            id: certificate.subject(),
            keys,
            mpp: mpp.id,
            client,
            token,
        }));
    }
    let cpp = service(crowd.cpp)?;
    let mut customers = Vec::new();
    for i in 0..crowd.count {
        let name = format!("{}{i}", crowd.prefix);
        let account = format!("cust:{name}");
        banks.open(crowd.bank, &account, crowd.deposit).await?;
        grant_enrolment_mandate(dir, crowd.bank, &account, crowd.cpp).await?;
        let keys = SecretKeys::generate(Suite::Ed25519X25519, &mut rng);
        let client = CppClient::new(&cpp.url)?;
        let certificate = client
            .enroll_customer(
                banks.operators.token(crowd.cpp)?,
                &EnrolCustomer::new(&name, crowd.bank, &account, LOAD_PIN, &keys.public()),
            )
            .await?;
        customers.push(Arc::new(LoadCustomer {
            account,
            device: CustomerDevice {
                name,
                id: certificate.subject(),
                keys,
                cpp: cpp.id,
                cpp_certificate: cpp.certificate.clone(),
                client,
            },
        }));
    }
    Ok(Population {
        merchants,
        customers,
    })
}

/// A TRANS of `amount` from `merchant`, signed, with a fresh nonce.
pub fn load_trans(
    merchant: &MerchantTerminal,
    amount: Amount,
    rng: &mut ChaCha20Rng,
) -> Result<mpay_semops::SignedTrans, LoadError> {
    let terms = Terms {
        amount,
        reference: "load".into(),
        description: String::new(),
        valid_ms: TRANS_VALIDITY_MS,
    };
    Ok(merchant.trans(terms, random16(rng))?)
}

/// One payment of `amount` from submit to confirmation; its latency.
pub async fn pay_once(
    customer: &LoadCustomer,
    merchant: &MerchantTerminal,
    amount: Amount,
    rng: &mut ChaCha20Rng,
) -> Result<Duration, LoadError> {
    let phone = &customer.device;
    let trans = load_trans(merchant, amount, rng)?;
    let request = phone.request(trans, LOAD_PIN, random16(rng), None)?;
    let started = Instant::now();
    let mut status = match phone.submit(&request, rng).await? {
        Submitted::Accepted(status) => status,
        Submitted::Refused(error) => return Err(error.into()),
    };
    while !status.is_final {
        status = phone
            .client
            .status(&status.payment_id, STATUS_WAIT_MS)
            .await?;
    }
    if status.state != "completed" {
        return Err(LoadError::NotCompleted {
            state: status.state,
            reason: status.reason,
        });
    }
    Ok(started.elapsed())
}

/// How a payment through faults ended ([`pay_through_faults`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultOutcome {
    /// Completed.
    Completed,
    /// Refused, declined, rejected or expired: ended, and no money moved.
    FailedCleanly,
    /// Not final within the wait: something is stuck.
    Unresolved,
}

/// One payment of `amount` while services crash and restart: the PR is
/// submitted again (sealed afresh, same idempotency key) until the CPP
/// answers, then followed to its end, for at most `wait`.
pub async fn pay_through_faults(
    customer: &LoadCustomer,
    merchant: &MerchantTerminal,
    amount: Amount,
    rng: &mut ChaCha20Rng,
    wait: Duration,
) -> FaultOutcome {
    let phone = &customer.device;
    let Ok(trans) = load_trans(merchant, amount, rng) else {
        return FaultOutcome::Unresolved;
    };
    let Ok(request) = phone.request(trans, LOAD_PIN, random16(rng), None) else {
        return FaultOutcome::Unresolved;
    };
    let deadline = Instant::now() + wait;
    let mut last_error = String::new();
    let mut status = loop {
        if Instant::now() > deadline {
            tracing::warn!(%last_error, "payment never accepted within the wait");
            return FaultOutcome::Unresolved;
        }
        let Ok(frame) = phone.seal(&request, rng) else {
            return FaultOutcome::Unresolved;
        };
        match phone.client.submit(frame).await {
            Ok(status) => break status,
            Err(ClientError::Refused { status, error }) if status < 500 => {
                tracing::warn!(status, code = %error.error, message = %error.message, "payment refused");
                return FaultOutcome::FailedCleanly;
            }
            Err(error) => {
                last_error = error.to_string();
                tokio::time::sleep(Duration::from_millis(RETRY_MS)).await;
            }
        }
    };
    while !status.is_final {
        if Instant::now() > deadline {
            tracing::warn!(payment = %status.payment_id, state = %status.state, "payment not final within the wait");
            return FaultOutcome::Unresolved;
        }
        match phone
            .client
            .status(&status.payment_id, FAULT_STATUS_WAIT_MS)
            .await
        {
            Ok(next) => status = next,
            Err(_) => tokio::time::sleep(Duration::from_millis(RETRY_MS)).await,
        }
    }
    if status.state == "completed" {
        FaultOutcome::Completed
    } else {
        FaultOutcome::FailedCleanly
    }
}

/// Approves every notice of `merchant` until `stop`, all the notices of one
/// poll in one request; an unreachable MPP is asked again after a pause,
/// and a notice whose decision did not land comes back on the next poll.
/// How many it approved.
pub async fn approver(merchant: Arc<MerchantTerminal>, stop: Arc<AtomicBool>) -> u64 {
    let mut approved = 0;
    while !stop.load(Ordering::Relaxed) {
        let notices = match merchant.notices(NOTICES_WAIT_MS).await {
            Ok(notices) => notices,
            Err(error) => {
                tracing::debug!(%error, "notices");
                tokio::time::sleep(Duration::from_millis(RETRY_MS)).await;
                continue;
            }
        };
        if notices.is_empty() {
            continue;
        }
        let decisions: Vec<(&str, Decision)> = notices
            .iter()
            .map(|n| (n.payment_id.as_str(), Decision::Approve))
            .collect();
        match merchant.decide_all(&decisions).await {
            Ok(results) => approved += results.iter().filter(|r| r.state.is_some()).count() as u64,
            Err(error) => tracing::debug!(%error, "decide"),
        }
    }
    approved
}

/// Gives `merchant`'s MPP a standing approval of micropayments up to
/// `per_payment` each, without a budget a run could reach, for a day.
pub async fn stand_approving(
    merchant: &MerchantTerminal,
    per_payment: Amount,
) -> Result<(), LoadError> {
    let day_ms = 24 * 3_600_000;
    let period_max = Amount::new(mpay_money::AMOUNT_MINOR_MAX, per_payment.currency());
    merchant
        .stand(per_payment, period_max, day_ms, day_ms)
        .await?;
    Ok(())
}

/// Turns micropayments on at cpp1 and mpp1 (mode one) in a provisioned
/// network's configuration, with θ and the credit limit far above a run's
/// spending per customer: every micropayment is deferred, as nearly all are
/// at θ.
pub fn enable_micro(dir: &Path) -> Result<(), LoadError> {
    for name in ["cpp1", "mpp1"] {
        let path = dir.join(format!("{name}.toml"));
        let text = crate::config::read_text(&path)?;
        let mut config = ServiceConfig::from_toml(&text)?;
        config.micro.mode = MicroMode::One;
        config.micro.theta = "1000.00 EUR".into();
        config.micro.credit_limit = "1000000.00 EUR".into();
        config.save(&path)?;
    }
    Ok(())
}

/// When a closed loop runs: until `warmup_end` its payments are not
/// counted, then those that end by `end` are.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// The end of the warm-up.
    pub warmup_end: Instant,
    /// The end of the measured time.
    pub end: Instant,
}

impl Window {
    /// A warm-up of `warmup`, then `measured`, from now.
    pub fn from_now(warmup: Duration, measured: Duration) -> Window {
        let warmup_end = Instant::now() + warmup;
        Window {
            warmup_end,
            end: warmup_end + measured,
        }
    }
}

/// What a closed loop did in its measured time.
#[derive(Debug, Default)]
pub struct Looped {
    /// The latency of every payment started and ended in the measured time.
    pub samples: Vec<Duration>,
    /// Payments that failed (warm-up included).
    pub failures: u64,
}

/// One closed loop: each customer pays `merchants` in turn, payments of
/// `amount`, one at a time, until the window ends.
pub async fn closed_loop(
    customers: &[Arc<LoadCustomer>],
    merchants: &[Arc<MerchantTerminal>],
    amount: Amount,
    window: Window,
) -> Result<Looped, LoadError> {
    if merchants.is_empty() {
        return Err(LoadError::Failed("a load needs a merchant".into()));
    }
    let mut workers = Vec::new();
    for (i, customer) in customers.iter().enumerate() {
        let (customer, merchants) = (Arc::clone(customer), merchants.to_vec());
        workers.push(tokio::spawn(async move {
            let mut rng = fresh_rng()?;
            let mut looped = Looped::default();
            let mut n = i;
            while Instant::now() < window.end {
                let merchant = &merchants[n % merchants.len()];
                n += 1;
                let before = Instant::now();
                match pay_once(&customer, merchant, amount, &mut rng).await {
                    Ok(latency) if before >= window.warmup_end && Instant::now() <= window.end => {
                        looped.samples.push(latency)
                    }
                    Ok(_) => {}
                    Err(error) => {
                        looped.failures += 1;
                        tracing::warn!(%error, "load payment failed");
                    }
                }
            }
            Ok::<_, LoadError>(looped)
        }));
    }
    let mut all = Looped::default();
    for worker in workers {
        let looped = worker
            .await
            .map_err(|e| LoadError::Failed(format!("a load worker: {e}")))??;
        all.samples.extend(looped.samples);
        all.failures += looped.failures;
    }
    Ok(all)
}

/// Each customer of the crowd at `cpp` and `bank` paid exactly its
/// completed payments of `payment` each, none is left with money held,
/// and the `shops` received all of them. The violations found.
pub async fn check_accounts(
    dir: &Path,
    crowd: Crowd<'_>,
    customers: &[Arc<LoadCustomer>],
    shops: &[Shop<'_>],
    payment: Amount,
) -> Result<Vec<String>, LoadError> {
    let banks = Banks::load(dir)?;
    let cpp = banks
        .directory
        .service(crowd.cpp)
        .ok_or_else(|| LoadError::Failed(format!("no `{}` in the directory", crowd.cpp)))?;
    let client = CppClient::new(&cpp.url)?;
    let mut completed = BTreeMap::<String, i64>::new();
    let mut after = 0;
    loop {
        let page = client
            .payments(banks.operators.token(crowd.cpp)?, after, 500)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for p in page {
            if p.state == "completed" {
                *completed.entry(p.customer).or_default() += 1;
            }
        }
    }
    let read = |bank: &str, account: &str| {
        let (bank, account) = (bank.to_owned(), account.to_owned());
        let client = banks.bank(&bank);
        async move {
            let id = AccountId::parse(&account).map_err(|e| LoadError::Failed(e.to_string()))?;
            client?.account(&id).await.map_err(|e| LoadError::Bank {
                what: format!("reading {account} at {bank}"),
                message: e.to_string(),
            })
        }
    };
    let (deposit, each) = (crowd.deposit.minor_units(), payment.minor_units());
    let mut violations = Vec::new();
    let mut total = 0i64;
    for customer in customers {
        let name = &customer.device.name;
        let view = read(crowd.bank, &customer.account).await?;
        let paid = deposit - view.funds.balance.minor_units();
        let n = completed.get(name).copied().unwrap_or(0);
        total += n;
        if Some(paid) != n.checked_mul(each) || !view.funds.held.is_zero() {
            violations.push(format!(
                "{name}: paid {paid} minor units with {} held for {n} completed payments",
                view.funds.held
            ));
        }
    }
    let mut received = 0i64;
    for shop in shops {
        let view = read(shop.bank, &format!("shop:{}", shop.name)).await?;
        received += view.funds.balance.minor_units();
    }
    if Some(received) != total.checked_mul(each) {
        violations.push(format!(
            "merchants received {received} minor units for {total} completed payments"
        ));
    }
    Ok(violations)
}
