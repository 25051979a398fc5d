//! `mpay sim offline`: many seeded simulations of offline transfers.

use std::process::ExitCode;
use std::time::Instant;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum SimCommand {
    /// Simulate offline transfers over a lossy link with crashes, one seed
    /// per run, and check the invariants after each.
    Offline {
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
        /// One seed in this many has a dishonest buyer or seller (replays,
        /// STATUS/AGREED after completion, ABORT after COMMIT, late claims,
        /// a restored older store) and a real money office; 0: none.
        #[arg(long, default_value_t = mpay_sim::dishonest::DISHONEST_EVERY)]
        dishonest_every: u64,
    },
}

pub fn run(command: SimCommand) -> anyhow::Result<ExitCode> {
    match command {
        SimCommand::Offline {
            seeds,
            first_seed,
            threads,
            verbose,
            dishonest_every,
        } => {
            let threads = threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
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
            let per_second = if elapsed.as_secs_f64() > 0.0 {
                summary.seeds as f64 / elapsed.as_secs_f64()
            } else {
                0.0
            };
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
