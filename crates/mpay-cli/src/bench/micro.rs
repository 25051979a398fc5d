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
    use std::time::Duration;

    use anyhow::Context;
    use mpay_api::device::MerchantTerminal;
    use mpay_money::Amount;
    use mpay_network::Timing;
    use mpay_network::load::{self, LoadCustomer, Shop, Window};

    use crate::network::provision;
    use crate::network::supervisor;

    /// A macro payment of the run (above the micro limit).
    pub const MACRO_AMOUNT: &str = "5.00 EUR";
    /// A micropayment of the run.
    pub const MICRO_AMOUNT: &str = "0.05 EUR";
    /// The run's one shop, at home.
    const SHOP: Shop<'static> = Shop {
        name: "bench-micro",
        mpp: "mpp1",
        bank: "bank2",
    };

    /// Completed payments per second of `amount` by the closed-loop
    /// customers for `seconds` ([`load::closed_loop`]), how many, and the
    /// failures; the merchant's approver decides each notice.
    async fn rate(
        customers: &[Arc<LoadCustomer>],
        merchant: &Arc<MerchantTerminal>,
        amount: Amount,
        seconds: u64,
    ) -> anyhow::Result<(f64, u64, u64)> {
        let stop = Arc::new(AtomicBool::new(false));
        let approver = tokio::spawn(load::approver(Arc::clone(merchant), Arc::clone(&stop)));
        let window = Window::from_now(Duration::ZERO, Duration::from_secs(seconds));
        let looped =
            load::closed_loop(customers, std::slice::from_ref(merchant), amount, window).await;
        stop.store(true, Ordering::Relaxed);
        let _ = approver.await;
        let looped = looped?;
        let done = looped.samples.len() as u64;
        Ok((done as f64 / seconds.max(1) as f64, done, looped.failures))
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
        load::enable_micro(dir.path())?;
        let mut network = supervisor::Network::start(dir.path(), processes)?;
        runtime.block_on(network.wait_healthy(Duration::from_secs(60)))?;
        let result = runtime.block_on(async {
            let crowd = load::Crowd {
                prefix: "micro",
                ..load::crowd(workers)
            };
            let people = load::enrol(dir.path(), &[SHOP], crowd).await?;
            let (customers, merchant) = (&people.customers, &people.merchants[0]);
            let (macro_amount, micro_amount) =
                (Amount::parse(MACRO_AMOUNT)?, Amount::parse(MICRO_AMOUNT)?);
            // A short warm-up of each kind, then the measured runs.
            rate(customers, merchant, macro_amount, 1).await?;
            rate(customers, merchant, micro_amount, 1).await?;
            let (macro_per_s, macro_done, f1) =
                rate(customers, merchant, macro_amount, seconds).await?;
            let (micro_per_s, micro_done, f2) =
                rate(customers, merchant, micro_amount, seconds).await?;
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
