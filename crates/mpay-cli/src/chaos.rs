//! `mpay chaos`: load through the multi-process SEMOPS network (PostgreSQL
//! by default) while a random process — bank, DC, CPP or MPP — is SIGKILLed
//! about once a second and restarted. At the end, with nothing killed any
//! more, `reconcile` must find nothing lost and nothing doubled, every hold
//! posted or voided and every book balanced; and each customer's bank
//! account must have paid exactly its completed payments, the merchants'
//! accounts have received exactly them.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use mpay_money::Amount;
use mpay_network::Timing;
use mpay_network::load::{self, FaultOutcome};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use crate::network::provision;
use crate::network::supervisor;

/// How long one payment may take, chaos included, before it counts as
/// unresolved: past the CPP's decision timeout (120 s by default) a payment
/// ends expired at the latest, so anything still open after this is stuck.
const PAYMENT_WAIT_MS: u64 = 150_000;
/// Each load payment, minor units (1.00 EUR).
const PAYMENT_MINOR: i64 = 100;

#[derive(Args)]
pub struct ChaosArgs {
    /// PostgreSQL server (a database per process); `--sqlite` instead runs
    /// on SQLite files.
    #[arg(
        long,
        env = "MPAY_CHAOS_POSTGRES",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres: String,
    /// Run on SQLite files instead of PostgreSQL.
    #[arg(long)]
    sqlite: bool,
    /// Seconds of load with kills.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Concurrent customers paying in a closed loop.
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// Mean pause between two kills, ms.
    #[arg(long, default_value_t = 1_000)]
    kill_every_ms: u64,
    /// How long a killed process stays down, ms.
    #[arg(long, default_value_t = 300)]
    down_ms: u64,
    /// Seed of which process dies when (default: random).
    #[arg(long)]
    seed: Option<u64>,
    /// Keep the network folder here.
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

#[derive(Default, Debug, Clone, Copy)]
struct Tally {
    attempted: u64,
    completed: u64,
    failed_cleanly: u64,
    unresolved: u64,
}

pub fn run(args: ChaosArgs) -> anyhow::Result<ExitCode> {
    let temp = tempfile::tempdir().context("temporary directory")?;
    let dir = args.dir.clone().unwrap_or_else(|| temp.path().to_owned());
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let options = provision::Options {
        dir: dir.clone(),
        postgres: (!args.sqlite).then(|| args.postgres.clone()),
        base_port: None,
        timing: Timing::default(),
        micro: mpay_network::MicroConfig::default(),
        seed: None,
        plaintext: false,
    };
    let processes = runtime.block_on(provision::provision(&options))?;
    let mut network = supervisor::Network::start(&dir, processes)?;
    runtime.block_on(network.wait_healthy(Duration::from_secs(60)))?;
    let seed = match args.seed {
        Some(seed) => seed,
        None => load::fresh_rng()?.next_u64(),
    };
    println!(
        "chaos: {} s of load ({} customers) with a process SIGKILLed about every {} ms; seed {seed}; {}",
        args.seconds,
        args.workers,
        args.kill_every_ms,
        if args.sqlite { "SQLite" } else { "PostgreSQL" }
    );
    let result = runtime.block_on(async {
        let crowd = load::crowd(args.workers);
        let people = load::enrol(&dir, &load::SHOPS, crowd).await?;
        let payment = Amount::new(PAYMENT_MINOR, mpay_money::Currency::EUR);
        let stop = Arc::new(AtomicBool::new(false));
        let approvers: Vec<_> = people
            .merchants
            .iter()
            .map(|m| tokio::spawn(load::approver(Arc::clone(m), Arc::clone(&stop))))
            .collect();
        let end = Instant::now() + Duration::from_secs(args.seconds);
        let mut workers = Vec::new();
        for (i, customer) in people.customers.iter().enumerate() {
            let merchants = people.merchants.clone();
            let customer = Arc::clone(customer);
            workers.push(tokio::spawn(async move {
                let mut rng = load::fresh_rng()?;
                let mut tally = Tally::default();
                let mut n = i;
                while Instant::now() < end {
                    let merchant = &merchants[n % merchants.len()];
                    n += 1;
                    tally.attempted += 1;
                    let wait = Duration::from_millis(PAYMENT_WAIT_MS);
                    match load::pay_through_faults(&customer, merchant, payment, &mut rng, wait)
                        .await
                    {
                        FaultOutcome::Completed => tally.completed += 1,
                        FaultOutcome::FailedCleanly => tally.failed_cleanly += 1,
                        FaultOutcome::Unresolved => tally.unresolved += 1,
                    }
                }
                anyhow::Ok(tally)
            }));
        }
        // The killer: one random process at a time, down for `down_ms`.
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut kills = 0u64;
        while Instant::now() < end {
            let pause = args.kill_every_ms / 2 + rng.next_u64() % args.kill_every_ms.max(1);
            tokio::time::sleep(Duration::from_millis(pause)).await;
            if Instant::now() >= end {
                break;
            }
            let victim =
                usize::try_from(rng.next_u64() % network.processes().len() as u64).unwrap_or(0);
            network.kill(victim)?;
            kills += 1;
            tokio::time::sleep(Duration::from_millis(args.down_ms)).await;
            network.restart(victim)?;
        }
        let mut tally = Tally::default();
        for worker in workers {
            let t = worker.await.context("worker")??;
            tally.attempted += t.attempted;
            tally.completed += t.completed;
            tally.failed_cleanly += t.failed_cleanly;
            tally.unresolved += t.unresolved;
        }
        stop.store(true, Ordering::Relaxed);
        for a in approvers {
            let _ = a.await;
        }
        network.wait_healthy(Duration::from_secs(60)).await?;
        let report = crate::reconcile::reconcile(&dir, Duration::from_secs(120)).await?;
        let mut violations = report.mismatches.clone();
        violations.extend(
            load::check_accounts(&dir, crowd, &people.customers, &load::SHOPS, payment).await?,
        );
        anyhow::Ok((tally, kills, report, violations))
    });
    network.stop();
    // A network in a folder the caller named is kept for inspection,
    // databases included.
    if let (None, Some(server)) = (&args.dir, &options.postgres) {
        provision::drop_temporary_databases(&runtime, server, &dir);
    }
    let (tally, kills, report, violations) = result?;
    println!(
        "processes killed: {kills}; payments by end state at the CPPs: {:?}",
        report.payments
    );
    println!(
        "attempted={} completed={} failed_cleanly={} unresolved={} violations={}",
        tally.attempted,
        tally.completed,
        tally.failed_cleanly,
        tally.unresolved,
        violations.len()
    );
    for v in &violations {
        println!("VIOLATION: {v}");
    }
    Ok(if violations.is_empty() && tally.unresolved == 0 {
        println!("nothing lost, nothing doubled");
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
