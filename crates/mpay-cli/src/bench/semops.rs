//! `mpay bench semops`: a closed-loop load of macro payments through the
//! real multi-process SEMOPS network (3 banks, 2 DCs, 2 CPPs, 2 MPPs as
//! child processes on loopback) on PostgreSQL at full durability, then two
//! of micropayments by the same customers, and, in the same run, pgbench's
//! TPC-B-like transactions per second on the same server. Half the macro
//! payments are domestic, half international; the micropayments go to the
//! merchant at home (cpp1 and mpp1 take micropayments, mode one): first
//! with the merchant deciding each, then under its standing approval (mpp1
//! approves each as its PN arrives, without a round trip to the merchant;
//! the `micro_per_s` of the last line). Beside
//! the rates, the CPU time per macro payment of every process on the
//! machine that serves it ([`super::cpu`]).
//!
//! Each worker is one customer paying in a loop: the merchant's TRANS is
//! signed in-process, the PR sealed and submitted to the CPP, and the worker
//! long-polls its status until the T confirmation; one approver task per
//! merchant long-polls its MPP's notices and approves each (signed). A
//! payment's latency is from submitting the PR to seeing the confirmation.

use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mpay_api::semops::{CppClient, DcClient, EnrolCustomer, EnrolMerchant, MppClient, SubmitError};
use mpay_bank::{AccountId, BankClient, Deposit, OpenAccount};
use mpay_identity::{Certificate, PartyId, SecretKeys, Suite, hex_bytes};
use mpay_money::Amount;
use mpay_network::{Directory, Timing};
use mpay_semops::{
    CustomerRef, Decision, MerchantDecision, PaymentRequest, Pin, Signed, SignedTrans,
    StandingApproval, Trans, seal_pr,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::{cpu, percentile};
use crate::network::provision::{self, DIRECTORY_FILE, Operators, grant_enrolment_mandate};
use crate::network::{supervisor, wall_clock};

const PIN: &str = "4321";
/// Long-poll of a worker waiting for its payment's end.
const STATUS_WAIT_MS: u64 = 5_000;
/// Long-poll of a merchant's approver.
const NOTICES_WAIT_MS: u64 = 1_000;
/// What each load customer starts with.
pub const CUSTOMER_DEPOSIT: &str = "1000000.00 EUR";
/// Pause before asking an unreachable service again.
pub const RETRY_MS: u64 = 200;
/// How long a load TRANS stays payable.
const TRANS_VALIDITY_MS: u64 = 120_000;
/// A macro payment of the load.
const MACRO_AMOUNT: &str = "1.00 EUR";
/// A micropayment of the load (below the micro limit).
pub const MICRO_AMOUNT: &str = "0.05 EUR";

/// The run's settings.
pub struct Settings {
    pub postgres: String,
    pub workers: usize,
    pub seconds: u64,
    pub warmup_seconds: u64,
    pub pgbench_clients: u32,
}

/// pgbench's TPC-B-like transactions per second on `server`, in a database
/// of its own: scale 10, `-c clients -j 2 -T seconds`, default (full)
/// durability.
pub fn pgbench_tps(
    server: &str,
    database: &str,
    clients: u32,
    seconds: u64,
) -> anyhow::Result<f64> {
    let url = provision::postgres_database_url(server, database)?;
    let admin = Command::new("psql")
        .args([
            server,
            "-qc",
            &format!("DROP DATABASE IF EXISTS {database}"),
        ])
        .output()
        .context("running psql (is the PostgreSQL client installed?)")?;
    if !admin.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&admin.stderr));
    }
    let admin = Command::new("psql")
        .args([server, "-qc", &format!("CREATE DATABASE {database}")])
        .output()
        .context("running psql")?;
    if !admin.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&admin.stderr));
    }
    let init = Command::new("pgbench")
        .args(["-i", "-q", "-s", "10", &url])
        .stdout(Stdio::null())
        .output()
        .context("running pgbench -i (is pgbench installed?)")?;
    if !init.status.success() {
        bail!("pgbench -i: {}", String::from_utf8_lossy(&init.stderr));
    }
    let out = Command::new("pgbench")
        .args([
            "-n",
            "-c",
            &clients.to_string(),
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            &url,
        ])
        .output()
        .context("running pgbench")?;
    // pgbench's tables are not kept: the figure is all that is needed.
    let dropped = Command::new("psql")
        .args([
            server,
            "-qc",
            &format!("DROP DATABASE IF EXISTS {database}"),
        ])
        .output();
    if !dropped.is_ok_and(|d| d.status.success()) {
        eprintln!("warning: database {database} was not dropped");
    }
    if !out.status.success() {
        bail!("pgbench: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|line| {
            line.strip_prefix("tps = ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .with_context(|| format!("no `tps = ` line in pgbench's output:\n{text}"))
}

/// A merchant of the load, its keys in this process.
pub struct Merchant {
    pub id: PartyId,
    pub mpp: PartyId,
    pub keys: SecretKeys,
    pub mpp_url: String,
    pub token: String,
}

/// A customer of the load, its device keys in this process.
pub struct Customer {
    pub name: String,
    pub account: String,
    pub id: PartyId,
    pub keys: SecretKeys,
    pub cpp: PartyId,
    pub cpp_cert: Certificate,
    pub cpp_url: String,
}

pub fn fresh_rng() -> anyhow::Result<ChaCha20Rng> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("OS randomness: {e}"))?;
    Ok(ChaCha20Rng::from_seed(seed))
}

pub fn random16(rng: &mut ChaCha20Rng) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    rand_core::Rng::fill_bytes(rng, &mut bytes);
    bytes
}

async fn open_account(
    bank: &BankClient,
    account: &str,
    deposit: Option<&str>,
) -> anyhow::Result<()> {
    let id = AccountId::parse(account)?;
    bank.open_account(
        &format!("open:{account}"),
        &OpenAccount {
            account: id.clone(),
            holder: account.to_owned(),
            floor: Amount::parse("0.00 EUR")?,
        },
    )
    .await
    .with_context(|| format!("opening {account}"))?;
    if let Some(amount) = deposit {
        bank.deposit(
            &format!("deposit:{account}"),
            &Deposit {
                account: id,
                amount: Amount::parse(amount)?,
                reference: "bench".into(),
            },
        )
        .await
        .with_context(|| format!("depositing into {account}"))?;
    }
    Ok(())
}

/// A TRANS of 1.00 EUR from `merchant`, signed.
pub fn load_trans(merchant: &Merchant, nonce: [u8; 16]) -> anyhow::Result<SignedTrans> {
    trans_of(merchant, nonce, Amount::parse(MACRO_AMOUNT)?)
}

/// A TRANS of `amount` from `merchant`, signed.
fn trans_of(merchant: &Merchant, nonce: [u8; 16], amount: Amount) -> anyhow::Result<SignedTrans> {
    Ok(Signed::sign(
        Trans {
            merchant: merchant.id,
            mpp: merchant.mpp,
            amount,
            merchant_reference: "bench".into(),
            expires_at: wall_clock().saturating_add_ms(TRANS_VALIDITY_MS),
            description: String::new(),
            nonce,
        },
        &merchant.keys,
    )?)
}

/// `customer`'s PR for `trans` under idempotency key `key`, sealed afresh
/// (a retry must carry the same TRANS and key, in a new frame).
pub fn pr_frame(
    customer: &Customer,
    trans: &SignedTrans,
    key: [u8; 16],
    rng: &mut ChaCha20Rng,
) -> anyhow::Result<Vec<u8>> {
    let request = PaymentRequest {
        trans: trans.clone(),
        customer: CustomerRef::new(&customer.name)?,
        cpp: customer.cpp,
        pin: Pin::new(PIN).map_err(|e| anyhow::anyhow!("{e}"))?,
        idempotency_key: key,
        shipping: None,
    };
    Ok(seal_pr(
        &request,
        &customer.keys,
        customer.id,
        &customer.cpp_cert.body.keys,
        wall_clock(),
        rng,
    )?)
}

/// One payment from submit to confirmation; its latency.
async fn pay_once(
    customer: &Customer,
    merchant: &Merchant,
    amount: Amount,
    rng: &mut ChaCha20Rng,
    client: &CppClient,
) -> anyhow::Result<Duration> {
    let trans = trans_of(merchant, random16(rng), amount)?;
    let key = random16(rng);
    let started = Instant::now();
    let mut status = client
        .submit_sealed(|| pr_frame(customer, &trans, key, rng))
        .await
        .map_err(SubmitError::into_error)?;
    while !status.is_final {
        status = client.status(&status.payment_id, STATUS_WAIT_MS).await?;
    }
    if status.state != "completed" {
        bail!("payment ended `{}` ({:?})", status.state, status.reason);
    }
    Ok(started.elapsed())
}

/// Approves every notice of `merchant` until `stop`; an unreachable MPP is
/// asked again after a pause.
pub async fn approver(merchant: Arc<Merchant>, stop: Arc<AtomicBool>) -> anyhow::Result<u64> {
    let client = MppClient::new(&merchant.mpp_url)?;
    let mut approved = 0;
    while !stop.load(Ordering::Relaxed) {
        let notices = match client.notices(&merchant.token, NOTICES_WAIT_MS).await {
            Ok(notices) => notices,
            Err(error) => {
                tracing::debug!(%error, "notices");
                tokio::time::sleep(Duration::from_millis(RETRY_MS)).await;
                continue;
            }
        };
        for notice in notices {
            let id = hex_bytes(&notice.payment_id)
                .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
                .context("notice id")?;
            let decision = Signed::sign(
                MerchantDecision {
                    payment_id: id,
                    merchant: merchant.id,
                    decision: Decision::Approve,
                    validity: mpay_semops::Validity::starting(
                        mpay_network::wall_clock(),
                        mpay_semops::REQUEST_LIFETIME_DEFAULT_MS,
                    ),
                },
                &merchant.keys,
            )?;
            match client.decide(&merchant.token, &decision).await {
                Ok(_) => approved += 1,
                // The notice comes back on the next poll if the decision
                // did not land.
                Err(error) => tracing::debug!(%error, "decide"),
            }
        }
    }
    Ok(approved)
}

/// Gives `merchant`'s MPP a standing approval of every micropayment of the
/// load (up to [`MICRO_AMOUNT`] each, without a budget a run could reach):
/// the MPP approves them as their notices arrive.
pub async fn stand_approving(merchant: &Merchant) -> anyhow::Result<()> {
    let per_payment = Amount::parse(MICRO_AMOUNT)?;
    let now = wall_clock();
    let approval = Signed::sign(
        StandingApproval {
            merchant: merchant.id,
            mpp: merchant.mpp,
            per_payment_max: per_payment,
            period_max: Amount::new(mpay_money::AMOUNT_MINOR_MAX, per_payment.currency()),
            period_ms: 24 * 3_600_000,
            signed_at: now,
            expires_at: now.saturating_add_ms(24 * 3_600_000),
        },
        &merchant.keys,
    )?;
    MppClient::new(&merchant.mpp_url)?
        .set_standing_approval(&merchant.token, &approval)
        .await
        .context("setting the standing approval")?;
    Ok(())
}

/// Turns micropayments on at cpp1 and mpp1 (mode one) in a provisioned
/// network's configuration, with θ and the credit limit far above a run's
/// spending per customer: every micropayment is deferred, as nearly all are
/// at θ.
pub fn enable_micro(dir: &std::path::Path) -> anyhow::Result<()> {
    for name in ["cpp1", "mpp1"] {
        let path = dir.join(format!("{name}.toml"));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let mut config = mpay_network::ServiceConfig::from_toml(&text)?;
        config.micro.mode = mpay_network::MicroMode::One;
        config.micro.theta = "1000.00 EUR".into();
        config.micro.credit_limit = "1000000.00 EUR".into();
        config.save(&path)?;
    }
    Ok(())
}

/// What one load measured.
struct Phase {
    rate: f64,
    samples: Vec<Duration>,
    failures: u64,
    /// CPU milliseconds over the measured seconds, by process.
    cpu_ms: std::collections::BTreeMap<String, f64>,
}

impl Phase {
    fn cpu_ms_per_payment(&self) -> f64 {
        self.cpu_ms.values().sum::<f64>() / (self.samples.len().max(1) as f64)
    }

    /// `name=ms …` per payment, the largest first.
    fn cpu_by_process(&self) -> String {
        let n = self.samples.len().max(1) as f64;
        let mut parts: Vec<(&String, f64)> = self
            .cpu_ms
            .iter()
            .map(|(name, ms)| (name, ms / n))
            .collect();
        parts.sort_by(|a, b| b.1.total_cmp(&a.1));
        parts
            .iter()
            .map(|(name, ms)| format!("{}={ms:.1}", name.replace(' ', "_")))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

pub fn run(settings: Settings) -> anyhow::Result<ExitCode> {
    let dir = tempfile::tempdir().context("temporary directory")?;
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let options = provision::Options {
        dir: dir.path().to_owned(),
        postgres: Some(settings.postgres.clone()),
        base_port: None,
        timing: Timing::default(),
        micro: mpay_network::MicroConfig::default(),
        seed: None,
        plaintext: false,
    };
    let processes = runtime.block_on(provision::provision(&options))?;
    enable_micro(dir.path())?;
    let mut network = supervisor::Network::start(dir.path(), processes)?;
    runtime.block_on(network.wait_healthy(Duration::from_secs(60)))?;
    let pids = network.pids();
    let result = runtime.block_on(load(dir.path(), &settings, &pids));
    network.stop();
    provision::drop_temporary_databases(&runtime, &settings.postgres, dir.path());
    let (macros, asked, micros, outbox) = result?;
    let pgbench = pgbench_tps(
        &settings.postgres,
        "mpay_bench_pgbench",
        settings.pgbench_clients,
        settings.seconds,
    )?;
    let ms = |samples: &[Duration], p| percentile(samples, p).as_secs_f64() * 1e3;
    println!(
        "workers={} seconds={} payments={} failures={} micropayments={} micro_failures={}",
        settings.workers,
        settings.seconds,
        macros.samples.len(),
        macros.failures,
        micros.samples.len(),
        micros.failures,
    );
    println!(
        "pgbench_clients={} pgbench_tps={pgbench:.0} isolation=serializable",
        settings.pgbench_clients
    );
    println!(
        "macro p50_ms={:.1} p99_ms={:.1} cpu_ms_per_payment={:.1}; micro p50_ms={:.1} p99_ms={:.1} cpu_ms_per_payment={:.1}",
        ms(&macros.samples, 50),
        ms(&macros.samples, 99),
        macros.cpu_ms_per_payment(),
        ms(&micros.samples, 50),
        ms(&micros.samples, 99),
        micros.cpu_ms_per_payment(),
    );
    println!(
        "macro cpu_ms_per_payment by process: {}",
        macros.cpu_by_process()
    );
    println!(
        "micro cpu_ms_per_payment by process: {}",
        micros.cpu_by_process()
    );
    println!(
        "micro without a standing approval (the merchant decides each): micro_per_s={:.1} p50_ms={:.1} p99_ms={:.1} cpu_ms_per_payment={:.1} failures={}; by process: {}",
        asked.rate,
        ms(&asked.samples, 50),
        ms(&asked.samples, 99),
        asked.cpu_ms_per_payment(),
        asked.failures,
        asked.cpu_by_process(),
    );
    println!(
        "outbox over the run, all services: messages_delivered={} frames={} batch_frames={} messages_per_frame={:.2}",
        outbox.delivered,
        outbox.frames,
        outbox.batches,
        outbox.delivered as f64 / outbox.frames.max(1) as f64,
    );
    println!(
        "payments_per_s={:.1} p99_ms={:.1} ratio={:.4} micro_per_s={:.1} micro_ratio={:.2} cpu_ms_per_payment={:.1}",
        macros.rate,
        ms(&macros.samples, 99),
        macros.rate / pgbench,
        micros.rate,
        micros.rate / macros.rate.max(f64::MIN_POSITIVE),
        macros.cpu_ms_per_payment(),
    );
    Ok(ExitCode::SUCCESS)
}

/// What a load runs with: merchants (one at home: mpp1 at bank2, one abroad:
/// mpp2 at bank3) and `customers` customers at cpp1 (bank1), each with
/// [`CUSTOMER_DEPOSIT`].
pub async fn setup(
    dir: &std::path::Path,
    customers_count: usize,
) -> anyhow::Result<(Vec<Arc<Merchant>>, Vec<Customer>)> {
    let directory = Directory::load(dir.join(DIRECTORY_FILE))?;
    let resolved = directory.resolve(wall_clock())?;
    let operators = Operators::load(dir)?;
    let bank = |name: &str| -> anyhow::Result<BankClient> {
        let entry = directory
            .bank(name)
            .with_context(|| format!("bank {name}"))?;
        Ok(BankClient::new(&entry.url)?.with_token(operators.token(name)?))
    };
    let mut rng = fresh_rng()?;
    // Two merchants: one at home (mpp1, bank2), one abroad (mpp2, bank3).
    let mut merchants = Vec::new();
    for (name, mpp, bank_name) in [
        ("bench-shop1", "mpp1", "bank2"),
        ("bench-shop2", "mpp2", "bank3"),
    ] {
        let account = format!("shop:{name}");
        open_account(&bank(bank_name)?, &account, None).await?;
        grant_enrolment_mandate(dir, bank_name, &account, mpp).await?;
        let service = resolved.service(mpp).context("mpp")?;
        let keys = SecretKeys::generate(Suite::Ed25519X25519, &mut rng);
        let (cert, token) = MppClient::new(&service.url)?
            .enroll_merchant(
                operators.token(mpp)?,
                &EnrolMerchant::new(name, bank_name, &account, &keys.public()),
            )
            .await?;
        merchants.push(Arc::new(Merchant {
            id: cert.subject(),
            mpp: service.id,
            keys,
            mpp_url: service.url.clone(),
            token,
        }));
    }
    // One customer per worker, all at cpp1 (bank1).
    let cpp = resolved.service("cpp1").context("cpp1")?;
    let mut customers = Vec::new();
    for i in 0..customers_count {
        let name = format!("bench{i}");
        let account = format!("cust:{name}");
        open_account(&bank("bank1")?, &account, Some(CUSTOMER_DEPOSIT)).await?;
        grant_enrolment_mandate(dir, "bank1", &account, "cpp1").await?;
        let keys = SecretKeys::generate(Suite::Ed25519X25519, &mut rng);
        let cert = CppClient::new(&cpp.url)?
            .enroll_customer(
                operators.token("cpp1")?,
                &EnrolCustomer::new(&name, "bank1", &account, PIN, &keys.public()),
            )
            .await?;
        customers.push(Customer {
            name,
            account,
            id: cert.subject(),
            keys,
            cpp: cpp.id,
            cpp_cert: cpp.certificate.clone(),
            cpp_url: cpp.url.clone(),
        });
    }
    Ok((merchants, customers))
}

/// What the services' outboxes sent over a run, from their metrics.
#[derive(Debug, Default)]
struct OutboxCounts {
    delivered: u64,
    frames: u64,
    batches: u64,
}

/// Sums the outbox counters of every service of the directory in `dir`.
async fn outbox_counts(dir: &std::path::Path) -> anyhow::Result<OutboxCounts> {
    let directory = Directory::load(dir.join(DIRECTORY_FILE))?;
    let mut counts = OutboxCounts::default();
    for service in &directory.services {
        let text = DcClient::new(&service.url)?.metrics().await?;
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((key, value)) = line.split_once(' ') else {
                continue;
            };
            let value: u64 = value.trim().parse().unwrap_or(0);
            if key.ends_with("_outbox_delivered_total") {
                counts.delivered += value;
            } else if key.ends_with("_outbox_frames_total") {
                counts.frames += value;
            } else if key.ends_with("_outbox_batches_total") {
                counts.batches += value;
            }
        }
    }
    Ok(counts)
}

/// The macro load over both merchants, then two micro loads to the one at
/// home by the same customers: the merchant deciding each, then under its
/// standing approval; one approver per merchant throughout (it approves
/// what no standing approval covers).
async fn load(
    dir: &std::path::Path,
    settings: &Settings,
    pids: &[(u32, String)],
) -> anyhow::Result<(Phase, Phase, Phase, OutboxCounts)> {
    let (merchants, customers) = setup(dir, settings.workers).await?;
    let customers: Vec<Arc<Customer>> = customers.into_iter().map(Arc::new).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let approvers: Vec<_> = merchants
        .iter()
        .map(|m| tokio::spawn(approver(Arc::clone(m), Arc::clone(&stop))))
        .collect();
    let macros = phase(
        &customers,
        &merchants,
        Amount::parse(MACRO_AMOUNT)?,
        settings,
        pids,
    )
    .await;
    // Micropayments the merchant decides one by one (the approver), then
    // under its standing approval.
    let micro_amount = Amount::parse(MICRO_AMOUNT)?;
    let mut micros = Vec::new();
    if macros.is_ok() {
        for standing in [false, true] {
            if standing {
                stand_approving(&merchants[0]).await?;
            }
            let measured = phase(&customers, &merchants[..1], micro_amount, settings, pids).await;
            let failed = measured.is_err();
            micros.push(measured);
            if failed {
                break;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for a in approvers {
        let _ = a.await;
    }
    let macros = macros?;
    let mut micros = micros.into_iter();
    let (Some(asked), Some(standing)) = (micros.next(), micros.next()) else {
        bail!("the micropayment loads did not run");
    };
    let outbox = outbox_counts(dir).await?;
    Ok((macros, asked?, standing?, outbox))
}

/// One closed-loop load of payments of `amount`, each customer paying the
/// `merchants` in turn: the warm-up, then `settings.seconds` measured, with
/// the CPU time of every process over the measured seconds.
async fn phase(
    customers: &[Arc<Customer>],
    merchants: &[Arc<Merchant>],
    amount: Amount,
    settings: &Settings,
    pids: &[(u32, String)],
) -> anyhow::Result<Phase> {
    let warmup_end = Instant::now() + Duration::from_secs(settings.warmup_seconds);
    let end = warmup_end + Duration::from_secs(settings.seconds);
    let mut workers = Vec::new();
    for (i, customer) in customers.iter().enumerate() {
        let (customer, merchants) = (Arc::clone(customer), merchants.to_vec());
        workers.push(tokio::spawn(async move {
            let mut rng = fresh_rng()?;
            let client = CppClient::new(&customer.cpp_url)?;
            let mut samples = Vec::new();
            let mut failures = 0u64;
            let mut n = i;
            while Instant::now() < end {
                let merchant = &merchants[n % merchants.len()];
                n += 1;
                let before = Instant::now();
                match pay_once(&customer, merchant, amount, &mut rng, &client).await {
                    Ok(latency) if before >= warmup_end && Instant::now() <= end => {
                        samples.push(latency)
                    }
                    Ok(_) => {}
                    Err(error) => {
                        failures += 1;
                        tracing::warn!(%error, "bench payment failed");
                    }
                }
            }
            anyhow::Ok((samples, failures))
        }));
    }
    let pids = pids.to_vec();
    let cpu = tokio::spawn(async move {
        tokio::time::sleep_until(warmup_end.into()).await;
        let before = cpu::sample(&pids);
        tokio::time::sleep_until(end.into()).await;
        cpu::sample(&pids).ms_since(&before)
    });
    let mut samples = Vec::new();
    let mut failures = 0;
    for worker in workers {
        let (s, f) = worker.await.context("worker")??;
        samples.extend(s);
        failures += f;
    }
    let cpu_ms = cpu.await.context("CPU sampler")?;
    let rate = samples.len() as f64 / settings.seconds as f64;
    Ok(Phase {
        rate,
        samples,
        failures,
        cpu_ms,
    })
}
