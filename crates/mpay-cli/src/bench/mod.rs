//! `mpay bench …`: the benchmarks whose figures docs/benchmarks.md records.
//! Each compares against a baseline measured in the same run, so the ratio
//! means something on a noisy machine.

use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;

mod cpu;
mod envelope;
mod micro;
mod office_sync;
mod offline;
mod pin;
pub mod semops;
mod udp;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Seals and opens per second against the bare primitives they use.
    Envelope {
        /// Rounds; the median round is reported.
        #[arg(long, default_value_t = 7)]
        rounds: usize,
        /// Seal+open pairs per round.
        #[arg(long, default_value_t = 2_000)]
        iterations: usize,
        /// Payload size in bytes.
        #[arg(long, default_value_t = 256)]
        payload_bytes: usize,
    },
    /// One complete offline transfer on real encrypted stores, against the
    /// fsyncs and seals it cannot avoid.
    Offline {
        /// Rounds; transfers and floor samples alternate by round.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Transfers per round.
        #[arg(long, default_value_t = 200)]
        transfers: usize,
    },
    /// Offline purchases between two wallet nodes over real UDP on loopback:
    /// latency with no loss, and completion and latency with loss.
    Udp {
        /// Sales per run.
        #[arg(long, default_value_t = 200)]
        transfers: usize,
        /// Share of all datagrams dropped in the lossy run, per mille.
        #[arg(long, default_value_t = 300)]
        loss_permille: u32,
    },
    /// Chain entries the money office audits per second at sync, against the
    /// signature checks they need.
    Office {
        /// Purchases between the two wallets (each makes entries on both).
        #[arg(long, default_value_t = 1_000)]
        entries: usize,
        /// Database URL (default: a SQLite file in a temporary directory).
        #[arg(long)]
        db: Option<String>,
    },
    /// Micropayment aggregation: the three policies on a synthetic workload
    /// and the in-process aggregator's adds per second.
    Micro {
        /// Customers whose pending totals the aggregator keeps.
        #[arg(long, default_value_t = 100_000)]
        customers: usize,
        /// Seed of the generated micropayments.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Threads adding micropayments.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Micropayments per throughput round.
        #[arg(long, default_value_t = 2_000_000)]
        adds: u64,
        /// Throughput rounds (the median is reported).
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Also measure micro and macro payments per second through the
        /// real multi-process network for this many seconds each (0: not).
        #[arg(long, default_value_t = 0)]
        services_seconds: u64,
        /// Closed-loop customers of the services run.
        #[arg(long, default_value_t = 8)]
        services_workers: usize,
        /// PostgreSQL server for the services run (default: SQLite files).
        #[arg(long)]
        postgres: Option<String>,
    },
    /// The buyer process of `bench udp` (started by it).
    #[command(hide = true)]
    UdpBuyer {
        /// The buyer's wallet store.
        #[arg(long)]
        store: std::path::PathBuf,
        /// The multicast group of the run.
        #[arg(long)]
        group: std::net::SocketAddrV4,
        /// The seller's wallet id.
        #[arg(long)]
        seller: String,
        /// The most the buyer pays per purchase, minor units.
        #[arg(long)]
        price_minor: i64,
        /// Share of received datagrams dropped, per mille.
        #[arg(long)]
        loss_permille: u32,
    },
    /// Macro payments and micropayments per second through the real
    /// multi-process SEMOPS network on PostgreSQL, against pgbench on the
    /// same server, with the CPU time per payment of every process.
    Semops {
        /// PostgreSQL server (each process gets a database of its own).
        #[arg(
            long,
            env = "MPAY_BENCH_POSTGRES",
            default_value = "postgres://postgres@127.0.0.1:5432/test"
        )]
        postgres: String,
        /// Concurrent customers, each paying in a closed loop.
        #[arg(long, default_value_t = 32)]
        workers: usize,
        /// Measured seconds of each load, macro and micro (pgbench runs
        /// as long).
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Seconds of load before measuring each.
        #[arg(long, default_value_t = 3)]
        warmup_seconds: u64,
        /// pgbench clients.
        #[arg(long, default_value_t = 32)]
        pgbench_clients: u32,
    },
    /// What checking a PIN costs the CPP: a keyed verification value
    /// against an Argon2id hash at the default cost, in the same run.
    Pin {
        /// Rounds; the median round is reported.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// PVV checks per round.
        #[arg(long, default_value_t = 100_000)]
        pvv_checks: usize,
        /// Argon2id checks per round.
        #[arg(long, default_value_t = 20)]
        argon2_checks: usize,
    },
    /// Simulator seeds per second.
    Sim {
        /// Seeds per measurement.
        #[arg(long, default_value_t = 4_000)]
        seeds: u64,
        /// Measurements; the median is reported.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
}

pub fn run(command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Envelope {
            rounds,
            iterations,
            payload_bytes,
        } => envelope::run(rounds, iterations, payload_bytes),
        BenchCommand::Offline { rounds, transfers } => offline::run(rounds, transfers),
        BenchCommand::Sim { seeds, rounds } => sim_seeds(seeds, rounds),
        BenchCommand::Pin {
            rounds,
            pvv_checks,
            argon2_checks,
        } => pin::run(rounds, pvv_checks, argon2_checks),
        BenchCommand::Semops {
            postgres,
            workers,
            seconds,
            warmup_seconds,
            pgbench_clients,
        } => semops::run(semops::Settings {
            postgres,
            workers,
            seconds,
            warmup_seconds,
            pgbench_clients,
        }),

        BenchCommand::Micro {
            customers,
            seed,
            threads,
            adds,
            rounds,
            services_seconds,
            services_workers,
            postgres,
        } => micro::run_with(
            customers,
            seed,
            threads,
            adds,
            rounds,
            (services_seconds > 0).then_some((services_seconds, services_workers, postgres)),
        ),
        BenchCommand::Office { entries, db } => office_sync::run(entries, db),
        BenchCommand::UdpBuyer {
            store,
            group,
            seller,
            price_minor,
            loss_permille,
        } => udp::buyer_process(&store, group, &seller, price_minor, loss_permille),
        BenchCommand::Udp {
            transfers,
            loss_permille,
        } => udp::run(transfers, loss_permille),
    }
}

fn sim_seeds(seeds: u64, rounds: usize) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(seeds > 0 && rounds > 0, "seeds and rounds must be positive");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut rates = Vec::with_capacity(rounds);
    let mut one_thread = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let first = u64::try_from(round).unwrap_or(0) * seeds;
        let started = std::time::Instant::now();
        let summary = mpay_sim::run_seeds_with(first, seeds, threads, 0);
        anyhow::ensure!(summary.violations() == 0, "violations in the benchmark run");
        rates.push(started.elapsed() / u32::try_from(seeds).unwrap_or(1));
        let started = std::time::Instant::now();
        let summary = mpay_sim::run_seeds_with(first, seeds, 1, 0);
        anyhow::ensure!(summary.violations() == 0, "violations in the benchmark run");
        one_thread.push(started.elapsed() / u32::try_from(seeds).unwrap_or(1));
    }
    let per_seed = median(&rates);
    let per_seed_one = median(&one_thread);
    println!("threads={threads} seeds_per_round={seeds} rounds={rounds}");
    println!(
        "seeds_per_s={:.0} seeds_per_s_one_thread={:.0} scaling={:.2}",
        1.0 / per_seed.as_secs_f64(),
        1.0 / per_seed_one.as_secs_f64(),
        per_seed_one.as_secs_f64() / per_seed.as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// Limits generous enough that no benchmark runs into them.
pub fn bench_limits(currency: mpay_money::Currency) -> mpay_identity::Limits {
    mpay_identity::Limits {
        offline_balance_max: mpay_money::Amount::new(1_000_000_000, currency),
        payment_max: mpay_money::Amount::new(100_000, currency),
        days_between_syncs_max: 30,
        payments_between_syncs_max: 1_000_000,
    }
}

/// The median of `samples` (upper median for an even count).
pub fn median(samples: &[Duration]) -> Duration {
    percentile(samples, 50)
}

/// The `p`-th percentile by nearest rank.
pub fn percentile(samples: &[Duration], p: u32) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let n = sorted.len();
    let rank = (usize::try_from(p).unwrap_or(100) * n)
        .div_ceil(100)
        .clamp(1, n);
    sorted[rank - 1]
}

pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
