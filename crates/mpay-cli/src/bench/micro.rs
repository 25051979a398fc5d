//! `mpay bench micro`: the micropayment evaluation harness
//! (`mpay_micro::eval`) and the in-process throughput of the pending
//! structure (`mpay_micro::pending::Aggregator`).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use mpay_identity::{PartyId, Timestamp};
use mpay_micro::eval::{self, CostModel, PolicyReport, WorkloadConfig};
use mpay_micro::pending::{AddOutcome, Aggregator};
use mpay_micro::policy::MicroLimits;
use mpay_money::{Amount, Currency};

/// Customers the throughput run spreads its micropayments over.
const THROUGHPUT_CUSTOMERS: u64 = 100_000;

fn money(minor: i64, currency: Currency) -> String {
    Amount::new(minor, currency).to_string()
}

fn print_policy(p: &PolicyReport, currency: Currency) {
    println!(
        "policy=\"{}\" micropayments={} transfers={} failed_transfers={} transfers_per_micropayment={:.5} \
         micropayments_per_transfer={:.1} bank_cost_per_micropayment_minor={:.3} bank_cost={} lost={} \
         total_cost={} peak_exposure={} mean_exposure={}",
        p.name,
        p.totals.micropayments,
        p.totals.transfers,
        p.totals.failed_transfers,
        p.transfers_per_micropayment(),
        p.micropayments_per_transfer(),
        p.bank_cost_per_micropayment_minor(),
        money(p.totals.fees_minor, currency),
        money(p.totals.lost_minor, currency),
        money(p.totals.total_cost_minor(), currency),
        money(p.peak_exposure_minor, currency),
        money(p.mean_exposure_minor, currency),
    );
}

/// Through the real services as well: `(seconds, workers, postgres URL)`.
pub type ServicesRun = (u64, usize, Option<String>);

/// The evaluation harness and the aggregator's rate; with `services`, the micro and macro rates through the real
/// multi-process network, measured in the same run.
pub fn run_with(
    customers: usize,
    seed: u64,
    threads: usize,
    adds: u64,
    rounds: usize,
    services: Option<ServicesRun>,
) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(rounds > 0 && adds > 0, "rounds and adds must be positive");
    let config = WorkloadConfig {
        threads: threads.max(1),
        ..WorkloadConfig::default_with(customers, seed)
    };
    let currency = config.currency;
    let cost = CostModel::default_for(currency);
    let started = Instant::now();
    let report = eval::run(&config, &cost)?;
    let eval_time = started.elapsed();

    println!(
        "workload customers={} fit={} held_out={} seed={} history_days={} horizon_days={} micro_max={} \
         default_rate={:.4} cost_model=\"{} per transfer + {} ppm\" eval_s={:.1}",
        config.customers,
        report.fit_customers,
        report.held_out_customers,
        config.seed,
        config.history_days,
        config.horizon_days,
        money(config.micro_max_minor, currency),
        report.default_rate,
        cost.fixed_fee,
        cost.ad_valorem_ppm,
        eval_time.as_secs_f64(),
    );
    println!(
        "single theta={} window_h={}",
        report.single.theta(),
        report.single.window_ms() / 3_600_000
    );
    println!(
        "kmeans k={} theta_scale={} window_scale={} default_cluster={} exposure_bound_met_on_fit={}",
        report.model.clusters().len(),
        report.scales.0,
        report.scales.1,
        report.model.default_cluster(),
        report.exposure_bound_met_on_fit
    );
    for (i, c) in report.model.clusters().iter().enumerate() {
        println!(
            "cluster={i} customers={} defaults={} default_rate={:.4} spend_per_day={} theta={} window_h={:.1}",
            c.customers,
            c.defaults,
            c.default_rate,
            money(c.spend_per_day_minor.round() as i64, currency),
            c.limits.theta(),
            c.limits.window_ms() as f64 / 3_600_000.0
        );
    }
    for p in [&report.per_payment, &report.best_single, &report.kmeans] {
        print_policy(p, currency);
    }

    let mut rates = Vec::with_capacity(rounds);
    for round in 0..rounds {
        rates.push(aggregator_throughput(
            adds,
            seed.wrapping_add(round as u64),
        )?);
    }
    let per_add = super::median(&rates);
    println!(
        "aggregator adds={adds} rounds={rounds} threads=1 adds_per_s={:.0}",
        1.0 / per_add.as_secs_f64()
    );

    let saving = report.kmeans_saving();
    let within = report.kmeans_within_exposure();
    let verdict = if saving > 0.0 && within {
        "k-means wins at no more exposure"
    } else if saving > 0.0 {
        "k-means costs less but with MORE exposure: it does not win"
    } else {
        "k-means does NOT beat the best single theta"
    };
    println!("verdict: {verdict}");
    if let Some((seconds, workers, postgres)) = services {
        let rates = services::run(seconds, workers, postgres)?;
        println!(
            "services backend={} workers={} seconds={} micro_amount=\"{}\" macro_amount=\"{}\" \
             micropayments={} macro_payments={} failures={}",
            rates.backend,
            rates.workers,
            seconds,
            services::MICRO_AMOUNT,
            services::MACRO_AMOUNT,
            rates.micro_done,
            rates.macro_done,
            rates.failures
        );
        println!(
            "services micro_per_s={:.1} macro_per_s={:.1} micro_over_macro={:.2} aggregator_adds_per_s={:.0}",
            rates.micro_per_s,
            rates.macro_per_s,
            rates.micro_per_s / rates.macro_per_s.max(f64::MIN_POSITIVE),
            1.0 / per_add.as_secs_f64()
        );
    }
    let chosen = report.chosen();
    println!(
        "chosen=\"{}\" per_transfer={:.0} kmeans_saving={:.3}",
        chosen.name,
        chosen.micropayments_per_transfer(),
        saving
    );
    Ok(ExitCode::SUCCESS)
}

/// Time per add of the in-memory pending structure, one thread: `adds`
/// micropayments over [`THROUGHPUT_CUSTOMERS`] customers, each settlement
/// reported as succeeded at once.
fn aggregator_throughput(adds: u64, seed: u64) -> anyhow::Result<Duration> {
    let currency = Currency::EUR;
    let limits = MicroLimits::new(
        Amount::new(1_000, currency),
        Amount::new(5_000, currency),
        86_400_000,
    )?;
    // The input is drawn before the clock starts (xorshift; 1-1000 minor units).
    let mut x = seed | 1;
    let input: Vec<(PartyId, Amount)> = (0..adds)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let customer = PartyId::from_u64(x % THROUGHPUT_CUSTOMERS);
            let amount = i64::try_from((x >> 32) % 1_000 + 1).unwrap_or(1);
            (customer, Amount::new(amount, currency))
        })
        .collect();
    let mut aggregator = Aggregator::new(currency, 0);
    let mut settlements = 0u64;
    let started = Instant::now();
    for (i, (customer, amount)) in input.iter().enumerate() {
        let now = Timestamp(i as u64);
        match aggregator.add(*customer, i as u64, *amount, &limits, now)? {
            AddOutcome::SettleNeeded(batch) => {
                aggregator.settled(batch.id)?;
                settlements += 1;
            }
            AddOutcome::Deferred { .. } => {}
            other => anyhow::bail!("unexpected outcome {other:?}"),
        }
    }
    let elapsed = started.elapsed();
    aggregator.check()?;
    anyhow::ensure!(settlements > 0, "the run reached θ");
    Ok(elapsed / u32::try_from(adds).unwrap_or(u32::MAX))
}

/// Throughput through the real multi-process network (`--services-seconds`).
pub mod services {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    use anyhow::{Context, bail};
    use mpay_api::semops::{CppClient, EnrolCustomer, EnrolMerchant, MppClient};
    use mpay_bank::{AccountId, BankClient, Deposit, OpenAccount};
    use mpay_identity::{Certificate, PartyId, SecretKeys, Suite, hex_bytes};
    use mpay_money::Amount;
    use mpay_network::{Directory, Timing};
    use mpay_semops::{
        CustomerRef, Decision, MerchantDecision, PaymentRequest, Pin, Signed, Trans, seal_pr,
    };
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use crate::network::provision::{self, DIRECTORY_FILE, Operators, grant_enrolment_mandate};
    use crate::network::{supervisor, wall_clock};

    const PIN: &str = "4321";
    /// Long-poll of a worker waiting for its payment's end.
    const STATUS_WAIT_MS: u64 = 5_000;
    /// Long-poll of the merchant's approver.
    const NOTICES_WAIT_MS: u64 = 500;
    /// A macro payment of the run (above the micro limit).
    pub const MACRO_AMOUNT: &str = "5.00 EUR";
    /// A micropayment of the run.
    pub const MICRO_AMOUNT: &str = "0.05 EUR";

    struct Customer {
        name: String,
        id: PartyId,
        keys: SecretKeys,
        cpp: PartyId,
        cpp_cert: Certificate,
    }

    struct Merchant {
        id: PartyId,
        mpp: PartyId,
        keys: SecretKeys,
        url: String,
        token: String,
    }

    fn random16(rng: &mut ChaCha20Rng) -> [u8; 16] {
        let mut bytes = [0u8; 16];
        rand_core::Rng::fill_bytes(rng, &mut bytes);
        bytes
    }

    async fn pay_once(
        customer: &Customer,
        merchant: &Merchant,
        amount: Amount,
        rng: &mut ChaCha20Rng,
        client: &CppClient,
    ) -> anyhow::Result<()> {
        let now = wall_clock();
        let trans = Signed::sign(
            Trans {
                merchant: merchant.id,
                mpp: merchant.mpp,
                amount,
                merchant_reference: "bench".into(),
                expires_at: now.saturating_add_ms(120_000),
                description: String::new(),
                nonce: random16(rng),
            },
            &merchant.keys,
        )?;
        let request = PaymentRequest {
            trans,
            customer: CustomerRef::new(&customer.name)?,
            cpp: customer.cpp,
            pin: Pin::new(PIN).map_err(|e| anyhow::anyhow!("{e}"))?,
            idempotency_key: random16(rng),
            shipping: None,
        };
        let mut status = client
            .submit_sealed(|| {
                seal_pr(
                    &request,
                    &customer.keys,
                    customer.id,
                    &customer.cpp_cert.body.keys,
                    now,
                    rng,
                )
            })
            .await?;
        while !status.is_final {
            status = client.status(&status.payment_id, STATUS_WAIT_MS).await?;
        }
        if status.state != "completed" {
            bail!("payment ended `{}` ({:?})", status.state, status.reason);
        }
        Ok(())
    }

    async fn approver(merchant: Arc<Merchant>, stop: Arc<AtomicBool>) -> anyhow::Result<u64> {
        let client = MppClient::new(&merchant.url)?;
        let mut approved = 0;
        while !stop.load(Ordering::Relaxed) {
            for notice in client.notices(&merchant.token, NOTICES_WAIT_MS).await? {
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
                client.decide(&merchant.token, &decision).await?;
                approved += 1;
            }
        }
        Ok(approved)
    }

    /// Completed payments per second of `amount` by `workers` closed-loop
    /// customers for `seconds`, and the failures.
    async fn load(
        customers: &[Arc<Customer>],
        merchant: &Arc<Merchant>,
        cpp_url: &str,
        amount: Amount,
        seconds: u64,
    ) -> anyhow::Result<(f64, u64, u64)> {
        let stop = Arc::new(AtomicBool::new(false));
        let approver = tokio::spawn(approver(Arc::clone(merchant), Arc::clone(&stop)));
        let started = Instant::now();
        let end = started + Duration::from_secs(seconds);
        let mut workers = Vec::new();
        for customer in customers {
            let (customer, merchant) = (Arc::clone(customer), Arc::clone(merchant));
            let client = CppClient::new(cpp_url)?;
            workers.push(tokio::spawn(async move {
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("OS randomness: {e}"))?;
                let mut rng = ChaCha20Rng::from_seed(seed);
                let (mut done, mut failed) = (0u64, 0u64);
                while Instant::now() < end {
                    match pay_once(&customer, &merchant, amount, &mut rng, &client).await {
                        Ok(()) => done += 1,
                        Err(error) => {
                            failed += 1;
                            tracing::warn!(%error, "bench payment failed");
                        }
                    }
                }
                anyhow::Ok((done, failed))
            }));
        }
        let (mut done, mut failed) = (0, 0);
        for w in workers {
            let (d, f) = w.await.context("worker")??;
            done += d;
            failed += f;
        }
        let elapsed = started.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        let _ = approver.await;
        Ok((done as f64 / elapsed, done, failed))
    }

    async fn open(bank: &BankClient, account: &str, deposit: Option<&str>) -> anyhow::Result<()> {
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
            .await?;
        }
        Ok(())
    }

    /// What one run through the services measured.
    pub struct Rates {
        pub micro_per_s: f64,
        pub macro_per_s: f64,
        pub micro_done: u64,
        pub macro_done: u64,
        pub failures: u64,
        pub backend: &'static str,
        pub workers: usize,
    }

    /// Provisions a network (SQLite files, or databases on `postgres`) with
    /// micropayments on at cpp1 and mpp1 (mode one), then measures macro
    /// payments and micropayments by the same customers and merchant
    /// (domestic: cpp1/bank1 → mpp1/bank2), `seconds` each.
    pub fn run(seconds: u64, workers: usize, postgres: Option<String>) -> anyhow::Result<Rates> {
        let dir = tempfile::tempdir().context("temporary directory")?;
        let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
        let backend = if postgres.is_some() {
            "postgres"
        } else {
            "sqlite"
        };
        let options = provision::Options {
            dir: dir.path().to_owned(),
            postgres,
            base_port: None,
            timing: Timing::default(),
            micro: mpay_network::MicroConfig::default(),
            seed: None,
            plaintext: false,
        };
        let processes = runtime.block_on(provision::provision(&options))?;
        // θ far above the run's spending per customer (the harness above
        // reports micropayments per transfer).
        crate::bench::semops::enable_micro(dir.path())?;
        let mut network = supervisor::Network::start(dir.path(), processes)?;
        runtime.block_on(network.wait_healthy(Duration::from_secs(60)))?;
        let result = runtime.block_on(async {
            let directory = Directory::load(dir.path().join(DIRECTORY_FILE))?;
            let resolved = directory.resolve(wall_clock())?;
            let operators = Operators::load(dir.path())?;
            let bank = |name: &str| -> anyhow::Result<BankClient> {
                let entry = directory.bank(name).context("bank")?;
                Ok(BankClient::new(&entry.url)?.with_token(operators.token(name)?))
            };
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("OS randomness: {e}"))?;
            let mut rng = ChaCha20Rng::from_seed(seed);
            open(&bank("bank2")?, "shop:bench-micro", None).await?;
            grant_enrolment_mandate(dir.path(), "bank2", "shop:bench-micro", "mpp1").await?;
            let mpp = resolved.service("mpp1").context("mpp1")?;
            let keys = SecretKeys::generate(Suite::Ed25519X25519, &mut rng);
            let (cert, token) = MppClient::new(&mpp.url)?
                .enroll_merchant(
                    operators.token("mpp1")?,
                    &EnrolMerchant::new("bench-micro", "bank2", "shop:bench-micro", &keys.public()),
                )
                .await?;
            let merchant = Arc::new(Merchant {
                id: cert.subject(),
                mpp: mpp.id,
                keys,
                url: mpp.url.clone(),
                token,
            });
            let cpp = resolved.service("cpp1").context("cpp1")?;
            let mut customers = Vec::new();
            for i in 0..workers {
                let name = format!("micro{i}");
                let account = format!("cust:{name}");
                open(&bank("bank1")?, &account, Some("1000000.00 EUR")).await?;
                grant_enrolment_mandate(dir.path(), "bank1", &account, "cpp1").await?;
                let keys = SecretKeys::generate(Suite::Ed25519X25519, &mut rng);
                let cert = CppClient::new(&cpp.url)?
                    .enroll_customer(
                        operators.token("cpp1")?,
                        &EnrolCustomer::new(&name, "bank1", &account, PIN, &keys.public()),
                    )
                    .await?;
                customers.push(Arc::new(Customer {
                    name,
                    id: cert.subject(),
                    keys,
                    cpp: cpp.id,
                    cpp_cert: cpp.certificate.clone(),
                }));
            }
            // A short warm-up of each kind, then the measured runs.
            load(
                &customers,
                &merchant,
                &cpp.url,
                Amount::parse(MACRO_AMOUNT)?,
                1,
            )
            .await?;
            load(
                &customers,
                &merchant,
                &cpp.url,
                Amount::parse(MICRO_AMOUNT)?,
                1,
            )
            .await?;
            let (macro_per_s, macro_done, f1) = load(
                &customers,
                &merchant,
                &cpp.url,
                Amount::parse(MACRO_AMOUNT)?,
                seconds,
            )
            .await?;
            let (micro_per_s, micro_done, f2) = load(
                &customers,
                &merchant,
                &cpp.url,
                Amount::parse(MICRO_AMOUNT)?,
                seconds,
            )
            .await?;
            anyhow::Ok(Rates {
                micro_per_s,
                macro_per_s,
                micro_done,
                macro_done,
                failures: f1 + f2,
                backend,
                workers,
            })
        });
        network.stop();
        if let Some(server) = &options.postgres {
            provision::drop_temporary_databases(&runtime, server, dir.path());
        }
        result
    }
}
