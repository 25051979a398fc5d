//! The SEMOPS side of the day: the network's processes (banks, DCs, CPPs,
//! MPPs as `mpay serve …` children) and the people who use it. Customers'
//! phones and merchants' terminals are played by this process through the
//! same clients `mpay customer` and `mpay merchant` use: a customer seals a
//! PR to its CPP; a merchant's terminal signs a TRANS, long-polls its MPP
//! for notices and signs its decision.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mpay_api::device::{CustomerDevice, MerchantTerminal, Submitted, Terms};
use mpay_api::semops::{
    ClientError, CppClient, EnrolCustomer, EnrolMerchant, MppClient, PaymentStatus,
};
use mpay_bank::BankClient;
use mpay_identity::{SecretKeys, Suite, hex_string};
use mpay_money::Amount;
use mpay_network::{Directory, ResolvedDirectory};
use mpay_semops::{Decision, SignedTrans};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng as _, SeedableRng};

use crate::network::provision::{DIRECTORY_FILE, Operators, Process, grant_enrolment_mandate};
use crate::network::{supervisor, wall_clock};

/// Every SEMOPS customer's PIN.
pub const CUSTOMER_PIN: &str = "1357";
/// The PIN typed by mistake.
pub const WRONG_PIN: &str = "9999";
/// How long a customer waits for a payment to become final.
pub const PAYMENT_WAIT_MS_MAX: u64 = 30_000;
/// Pause before asking a processor that is down (restarting) again.
const UNREACHABLE_RETRY_MS: u64 = 100;
/// A merchant terminal's pause when no notice needs it.
const TERMINAL_IDLE_MS: u64 = 50;
/// Longest a restarted service may take to answer `/health`.
pub const SERVICE_START_SECS_MAX: u64 = 60;
/// How long a TRANS is payable.
const TRANS_VALIDITY_MS: u64 = 300_000;

/// The network's processes as children of the demo.
pub struct Services {
    pub dir: PathBuf,
    children: Vec<(Process, Option<Child>)>,
    pub resolved: ResolvedDirectory,
    pub operators: Operators,
}

impl Services {
    /// Starts every provisioned process and waits until all answer.
    pub async fn start(dir: &Path, processes: Vec<Process>) -> anyhow::Result<Services> {
        let mut children = Vec::new();
        for p in processes {
            let child = supervisor::spawn(dir, &p)?;
            children.push((p, Some(child)));
        }
        let resolved = Directory::load(dir.join(DIRECTORY_FILE))?.resolve(wall_clock())?;
        let services = Services {
            dir: dir.to_owned(),
            children,
            resolved,
            operators: Operators::load(dir)?,
        };
        for (p, _) in &services.children {
            supervisor::wait_health(&p.url, Duration::from_secs(SERVICE_START_SECS_MAX))
                .await
                .with_context(|| format!("{} {} (see {}/logs)", p.role, p.name, dir.display()))?;
        }
        Ok(services)
    }

    pub fn len(&self) -> usize {
        self.children.len()
    }

    /// SIGKILLs one process.
    pub fn kill(&mut self, name: &str) -> anyhow::Result<()> {
        let (_, child) = self
            .children
            .iter_mut()
            .find(|(p, _)| p.name == name)
            .with_context(|| format!("no process {name}"))?;
        if let Some(mut child) = child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Starts a killed process again and waits until it answers.
    pub async fn restart(&mut self, name: &str) -> anyhow::Result<()> {
        let dir = self.dir.clone();
        let (process, child) = self
            .children
            .iter_mut()
            .find(|(p, _)| p.name == name)
            .with_context(|| format!("no process {name}"))?;
        *child = Some(supervisor::spawn(&dir, process)?);
        supervisor::wait_health(&process.url, Duration::from_secs(SERVICE_START_SECS_MAX)).await
    }

    pub fn stop(&mut self) {
        for (_, child) in &mut self.children {
            if let Some(mut c) = child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    /// A bank's client with its operator's token.
    pub fn bank(&self, name: &str) -> anyhow::Result<BankClient> {
        let bank = self
            .resolved
            .banks
            .iter()
            .find(|b| b.name == name)
            .with_context(|| format!("no bank {name}"))?;
        Ok(BankClient::new(&bank.url)?.with_token(self.operators.token(name)?))
    }

    /// Bank id (hex) → bank name.
    pub fn bank_names(&self) -> BTreeMap<String, String> {
        self.resolved
            .banks
            .iter()
            .map(|b| (b.id.to_hex(), b.name.clone()))
            .collect()
    }

    fn service(&self, name: &str) -> anyhow::Result<&mpay_network::directory::ResolvedService> {
        self.resolved
            .services
            .iter()
            .find(|s| s.name == name)
            .with_context(|| format!("no service {name}"))
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A customer's phone, enrolled at its CPP.
pub struct Customer {
    pub name: String,
    pub cpp: String,
    pub device: CustomerDevice,
}

/// A merchant's terminal, enrolled at its MPP.
pub struct Merchant {
    pub name: String,
    pub terminal: MerchantTerminal,
}

/// How a payment ended for the customer.
#[derive(Debug)]
pub enum Paid {
    /// The CPP answered; the status is final unless the wait ran out.
    Status {
        status: PaymentStatus,
        latency_ms: f64,
    },
    /// The CPP refused the PR (wrong PIN, locked, declined).
    Refused { code: String },
}

fn random16(rng: &Mutex<ChaCha20Rng>) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    if let Ok(mut rng) = rng.lock() {
        rng.fill_bytes(&mut bytes);
    }
    bytes
}

/// Keys and nonces for the day's customers and merchants, from the seed.
pub struct People {
    rng: Mutex<ChaCha20Rng>,
}

impl People {
    pub fn new(seed: u64) -> People {
        People {
            rng: Mutex::new(ChaCha20Rng::seed_from_u64(seed ^ 0x5e3a_0b5e)),
        }
    }

    pub fn nonce(&self) -> [u8; 16] {
        random16(&self.rng)
    }

    fn keys(&self) -> anyhow::Result<SecretKeys> {
        let mut rng = self.rng.lock().map_err(|_| anyhow::anyhow!("rng lock"))?;
        Ok(SecretKeys::generate(Suite::Ed25519X25519, &mut *rng))
    }

    /// Enrols `name` (account `cust:<name>` at `bank`) at `cpp`.
    pub async fn customer(
        &self,
        net: &Services,
        name: &str,
        cpp: &str,
        bank: &str,
    ) -> anyhow::Result<Customer> {
        let keys = self.keys()?;
        let service = net.service(cpp)?;
        grant_enrolment_mandate(&net.dir, bank, &format!("cust:{name}"), cpp).await?;
        let client = CppClient::new(&service.url)?;
        let certificate = client
            .enroll_customer(
                net.operators.token(cpp)?,
                &EnrolCustomer::new(
                    name,
                    bank,
                    &format!("cust:{name}"),
                    CUSTOMER_PIN,
                    &keys.public(),
                ),
            )
            .await
            .with_context(|| format!("enrolling customer {name} at {cpp}"))?;
        Ok(Customer {
            name: name.to_owned(),
            cpp: cpp.to_owned(),
            device: CustomerDevice {
                name: name.to_owned(),
                id: certificate.subject(),
                keys,
                cpp: service.id,
                cpp_certificate: service.certificate.clone(),
                client,
            },
        })
    }

    /// Enrols shop `name` (account `shop:<name>` at `bank`) at `mpp`.
    pub async fn merchant(
        &self,
        net: &Services,
        name: &str,
        mpp: &str,
        bank: &str,
    ) -> anyhow::Result<Merchant> {
        let keys = self.keys()?;
        let service = net.service(mpp)?;
        grant_enrolment_mandate(&net.dir, bank, &format!("shop:{name}"), mpp).await?;
        let client = MppClient::new(&service.url)?;
        let (certificate, token) = client
            .enroll_merchant(
                net.operators.token(mpp)?,
                &EnrolMerchant::new(name, bank, &format!("shop:{name}"), &keys.public()),
            )
            .await
            .with_context(|| format!("enrolling merchant {name} at {mpp}"))?;
        Ok(Merchant {
            name: name.to_owned(),
            terminal: MerchantTerminal {
                id: certificate.subject(),
                keys,
                mpp: service.id,
                client,
                token,
            },
        })
    }
}

impl Merchant {
    /// A signed TRANS for `amount`; its nonce (hex) identifies it in the
    /// notice.
    pub fn trans(
        &self,
        amount: Amount,
        reference: &str,
        nonce: [u8; 16],
    ) -> anyhow::Result<SignedTrans> {
        let terms = Terms {
            amount,
            reference: reference.to_owned(),
            description: format!("{} order {reference}", self.name),
            valid_ms: TRANS_VALIDITY_MS,
        };
        Ok(self.terminal.trans(terms, nonce)?)
    }

    pub async fn decide(&self, payment: &str, decision: Decision) -> anyhow::Result<()> {
        self.terminal.decide(payment, decision).await?;
        Ok(())
    }

    /// Refunds `amount` of a completed payment under `key`; the refund's
    /// state at the MPP.
    pub async fn refund(
        &self,
        payment: &str,
        amount: Amount,
        key: [u8; 16],
    ) -> anyhow::Result<String> {
        let wait = Duration::from_millis(PAYMENT_WAIT_MS_MAX);
        Ok(self
            .terminal
            .refund(payment, amount, key, wait)
            .await?
            .state)
    }
}

impl Customer {
    /// Seals a PR for `trans` and submits it; waits for the final status.
    pub async fn pay(
        &self,
        trans: &SignedTrans,
        pin: &str,
        key: [u8; 16],
        rng_seed: [u8; 32],
    ) -> anyhow::Result<Paid> {
        let request = self.device.request(trans.clone(), pin, key, None)?;
        let started = Instant::now();
        let mut rng = ChaCha20Rng::from_seed(rng_seed);
        let status = match self.device.submit(&request, &mut rng).await? {
            Submitted::Accepted(status) => status,
            Submitted::Refused(ClientError::Refused { error, .. }) => {
                return Ok(Paid::Refused { code: error.error });
            }
            Submitted::Refused(other) => return Err(other.into()),
        };
        let status = self
            .device
            .wait_final(status, Duration::from_millis(PAYMENT_WAIT_MS_MAX))
            .await?;
        Ok(Paid::Status {
            status,
            latency_ms: started.elapsed().as_secs_f64() * 1_000.0,
        })
    }

    /// The outcome of a final status's confirmation, checked against the
    /// CPP's certificate; `None` without a valid one.
    pub fn outcome(&self, status: &PaymentStatus) -> Option<mpay_semops::ConfirmationOutcome> {
        match self.device.verified_outcome(status)? {
            Ok((outcome, _)) => Some(outcome),
            Err(_) => None,
        }
    }

    /// The CPP's operator unlocks this customer.
    pub async fn unlock(&self, net: &Services) -> anyhow::Result<()> {
        self.device
            .client
            .unlock(net.operators.token(&self.cpp)?, &self.name)
            .await?;
        Ok(())
    }
}

/// What a terminal does with the notice of a TRANS (by nonce).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Approve,
    Reject,
    /// Leave it: the payment expires, or the script decides by hand.
    Hold,
}

/// The merchants' terminals, answering notices in the background.
pub struct Terminals {
    answers: Arc<Mutex<HashMap<String, Answer>>>,
    /// TRANS nonce (hex) → payment id, for every notice seen.
    seen: Arc<Mutex<HashMap<String, String>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Terminals {
    pub fn start(merchants: &[Arc<Merchant>]) -> Terminals {
        let answers = Arc::new(Mutex::new(HashMap::new()));
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = merchants
            .iter()
            .map(|m| {
                let (m, answers, seen, stop) = (
                    Arc::clone(m),
                    Arc::clone(&answers),
                    Arc::clone(&seen),
                    Arc::clone(&stop),
                );
                tokio::spawn(async move {
                    let mut decided = std::collections::HashSet::new();
                    while !stop.load(Ordering::Relaxed) {
                        let Ok(notices) = m.terminal.notices(500).await else {
                            tokio::time::sleep(Duration::from_millis(UNREACHABLE_RETRY_MS)).await;
                            continue;
                        };
                        let mut acted = false;
                        for n in notices {
                            if let Ok(mut seen) = seen.lock() {
                                seen.insert(n.trans_nonce.clone(), n.payment_id.clone());
                            }
                            if decided.contains(&n.payment_id) {
                                continue;
                            }
                            let answer = answers
                                .lock()
                                .ok()
                                .and_then(|a| a.get(&n.trans_nonce).copied())
                                .unwrap_or(Answer::Hold);
                            let decision = match answer {
                                Answer::Approve => Decision::Approve,
                                Answer::Reject => Decision::Reject {
                                    reason: "out of stock".into(),
                                },
                                Answer::Hold => continue,
                            };
                            if m.decide(&n.payment_id, decision).await.is_ok() {
                                decided.insert(n.payment_id.clone());
                                acted = true;
                            }
                        }
                        if !acted {
                            tokio::time::sleep(Duration::from_millis(TERMINAL_IDLE_MS)).await;
                        }
                    }
                })
            })
            .collect();
        Terminals {
            answers,
            seen,
            stop,
            tasks,
        }
    }

    /// What to do with the notice of the TRANS with `nonce`.
    pub fn expect(&self, nonce: &[u8; 16], answer: Answer) {
        if let Ok(mut a) = self.answers.lock() {
            a.insert(hex_string(nonce), answer);
        }
    }

    /// Waits (at most `limit`) for the notice of the TRANS with `nonce`;
    /// its payment id.
    pub async fn wait_notice(&self, nonce: &[u8; 16], limit: Duration) -> anyhow::Result<String> {
        let key = hex_string(nonce);
        let started = Instant::now();
        loop {
            if let Some(id) = self.seen.lock().ok().and_then(|s| s.get(&key).cloned()) {
                return Ok(id);
            }
            if started.elapsed() > limit {
                bail!("no notice for TRANS {key} within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(TERMINAL_IDLE_MS)).await;
        }
    }

    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}
