//! `mpay sim offline` and `mpay sim semops`: many seeded simulations of
//! offline transfers, and of the whole SEMOPS network.

use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Subcommand};

/// Which seeds to run, and how.
#[derive(Args)]
pub struct Seeds {
    /// How many seeds to run.
    #[arg(long, default_value_t = 1000)]
    seeds: u64,
    /// The first seed; seeds run from here upwards.
    #[arg(long, default_value_t = 0)]
    first_seed: u64,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Print one line per seed.
    #[arg(long)]
    verbose: bool,
}

impl Seeds {
    fn threads(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

#[derive(Subcommand)]
pub enum SimCommand {
    /// Simulate offline transfers over a lossy link with crashes, one seed
    /// per run, and check the invariants after each.
    Offline {
        #[command(flatten)]
        run: Seeds,
        /// One seed in this many has a dishonest buyer or seller (replays,
        /// STATUS/AGREED after completion, ABORT after COMMIT, late claims,
        /// a restored older store) and a real money office; 0: none.
        #[arg(long, default_value_t = mpay_sim::dishonest::DISHONEST_EVERY)]
        dishonest_every: u64,
    },
    /// Simulate the whole SEMOPS network (banks, CPPs, DCs and MPPs of two
    /// regions) over a faulty network with crashes, banks down, late and
    /// rejecting merchants, refunds, micropayments (θ, window, net
    /// settlement, payouts, standing approvals) and dishonest requests, one
    /// seed per run, and run the network-wide checks after each.
    Semops {
        #[command(flatten)]
        run: Seeds,
        /// Run a deliberately broken variant of the services, to see the
        /// checks catch it.
        #[arg(long, default_value = "correct", value_parser = semops_variant)]
        variant: mpay_sim::semops::Variant,
    },
}

fn semops_variant(text: &str) -> Result<mpay_sim::semops::Variant, String> {
    mpay_sim::semops::Variant::parse(text).ok_or_else(|| {
        let names: Vec<&str> = mpay_sim::semops::Variant::ALL
            .iter()
            .map(|v| v.name())
            .collect();
        format!("no variant `{text}`; one of: {}", names.join(", "))
    })
}

fn per_second(count: u64, elapsed: std::time::Duration) -> f64 {
    if elapsed.as_secs_f64() > 0.0 {
        count as f64 / elapsed.as_secs_f64()
    } else {
        0.0
    }
}

fn run_semops(run: &Seeds, variant: mpay_sim::semops::Variant) -> ExitCode {
    let Seeds {
        seeds,
        first_seed,
        verbose,
        ..
    } = *run;
    let threads = run.threads();
    let started = Instant::now();
    if verbose {
        for seed in first_seed..first_seed.saturating_add(seeds) {
            let r = mpay_sim::semops::run_seed(seed, variant);
            println!(
                "seed={seed} payments={} micropayments={} completed={} rejected={} expired={} declined={} refunds={} dishonest={} crashes={} sent={} dropped={} events={} sim_ms={} violations={} trace={}",
                r.counts.payments,
                r.counts.micropayments,
                r.counts.completed,
                r.counts.rejected,
                r.counts.expired,
                r.counts.declined,
                r.counts.refunds,
                r.counts.dishonest,
                r.counts.crashes,
                r.counts.sent,
                r.counts.dropped,
                r.counts.events,
                r.sim_ms,
                r.violations.len(),
                mpay_identity::hex_string(&r.trace_hash[..8])
            );
        }
    }
    let summary = mpay_sim::semops::run_seeds(first_seed, seeds, threads, variant);
    let elapsed = started.elapsed();
    let variant_arg = if variant == mpay_sim::semops::Variant::Correct {
        String::new()
    } else {
        format!(" --variant {}", variant.name())
    };
    for failure in &summary.failures {
        println!(
            "FAILED seed={} (replay: mpay sim semops --first-seed {} --seeds 1{variant_arg} --verbose)",
            failure.seed, failure.seed
        );
        for v in &failure.violations {
            println!("  {v}");
        }
    }
    println!(
        "completed={} rejected={} expired={} declined={} refunded_in_full={} refunds={} dishonest={} refused_requests={} crashes={} forced_crashes={} sent={} dropped={} elapsed_s={:.2} seeds_per_s={:.0}",
        summary.counts.completed,
        summary.counts.rejected,
        summary.counts.expired,
        summary.counts.declined,
        summary.counts.refunded_in_full,
        summary.counts.refunds,
        summary.counts.dishonest,
        summary.counts.refused_requests,
        summary.counts.crashes,
        summary.counts.forced_crashes,
        summary.counts.sent,
        summary.counts.dropped,
        elapsed.as_secs_f64(),
        per_second(summary.seeds, elapsed)
    );
    println!(
        "micropayments={} deferred={} batches_settled={} batches_failed={} micro_returns={} net_runs={} run_attempts={} payouts={} payouts_ahead={} standing_approved={}",
        summary.counts.micropayments,
        summary.counts.deferred,
        summary.counts.batches_settled,
        summary.counts.batches_failed,
        summary.counts.micro_returns,
        summary.counts.net_runs,
        summary.counts.run_attempts,
        summary.counts.payouts,
        summary.counts.payouts_ahead,
        summary.counts.standing_approved
    );
    println!(
        "seeds={} payments={} violations={}",
        summary.seeds,
        summary.counts.payments,
        summary.violations()
    );
    if summary.violations() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

pub fn run(command: SimCommand) -> anyhow::Result<ExitCode> {
    match command {
        SimCommand::Semops { run, variant } => Ok(run_semops(&run, variant)),
        SimCommand::Offline {
            run,
            dishonest_every,
        } => {
            let threads = run.threads();
            let Seeds {
                seeds,
                first_seed,
                verbose,
                ..
            } = run;
            let started = Instant::now();
            if verbose {
                for seed in first_seed..first_seed.saturating_add(seeds) {
                    let r = mpay_sim::run_seed_with(seed, dishonest_every);
                    let dishonest = r
                        .dishonest_node
                        .map_or("none".to_owned(), mpay_sim::phone_name);
                    println!(
                        "seed={seed} dishonest={dishonest} actions={} rollbacks={} sales={} committed={} aborted={} crashes={} sent={} dropped={} steps={} violations={} trace={}",
                        r.dishonest_actions,
                        r.dishonest_rollbacks,
                        r.sales_started,
                        r.committed,
                        r.aborted,
                        r.crashes,
                        r.frames_sent,
                        r.frames_dropped,
                        r.steps,
                        r.violations.len(),
                        mpay_identity::hex_string(&r.trace_hash[..8])
                    );
                }
            }
            let summary = mpay_sim::run_seeds_with(first_seed, seeds, threads, dishonest_every);
            let elapsed = started.elapsed();
            for failure in &summary.failures {
                println!(
                    "FAILED seed={} (replay: mpay sim offline --first-seed {} --seeds 1 --dishonest-every {} --verbose)",
                    failure.seed, failure.seed, dishonest_every
                );
                for v in &failure.violations {
                    println!("  {v}");
                }
            }
            let per_second = per_second(summary.seeds, elapsed);
            println!(
                "committed={} aborted={} crashes={} frames_sent={} frames_dropped={} dishonest_runs={} dishonest_actions={} dishonest_rollbacks={} elapsed_s={:.2} seeds_per_s={:.0}",
                summary.committed,
                summary.aborted,
                summary.crashes,
                summary.frames_sent,
                summary.frames_dropped,
                summary.dishonest_runs,
                summary.dishonest_actions,
                summary.dishonest_rollbacks,
                elapsed.as_secs_f64(),
                per_second
            );
            println!(
                "seeds={} transfers={} violations={}",
                summary.seeds,
                summary.transfers,
                summary.violations()
            );
            Ok(if summary.violations() == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
