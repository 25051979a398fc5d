//! `mpay demo`: the system in one command. This first version runs the
//! offline wallet: a money office charges two phones, which make purchases
//! over a lossy simulated radio link, one phone crashes in the middle of a
//! purchase, and the books must still balance.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use mpay_sim::{CrashPoint, PlannedCrash, SimConfig, Storage, phone_name};

#[derive(Args)]
pub struct DemoArgs {
    /// Seed for everything random (same seed, same day).
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Keep the wallets' encrypted stores in this directory (default: a
    /// temporary directory, deleted at the end).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Purchases to attempt.
    #[arg(long, default_value_t = 5)]
    purchases: usize,
    /// Share of radio datagrams lost, in per mille.
    #[arg(long, default_value_t = 250)]
    loss_permille: u32,
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let temp;
    let dir = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            dir.clone()
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let cfg = SimConfig {
        seed: args.seed,
        buyers: 1,
        transfers: args.purchases,
        loss_permille: args.loss_permille.min(mpay_sim::LOSS_PERMILLE_MAX),
        duplicate_permille: 50,
        delay_ms_min: 5,
        delay_ms_max: 120,
        crash_permille: 0,
        real_crypto: true,
        // The buyer dies right after its UNDO/REDO record of a purchase is
        // durable and before its AGREED leaves.
        planned_crash: Some(PlannedCrash {
            node: 1,
            write_index: 3,
            point: CrashPoint::AfterSync,
        }),
        storage: Storage::Encrypted(dir.clone()),
        narrate: true,
    };
    println!("mpay demo: the offline wallet");
    println!(
        "  two phones, a money office, {} purchases, {:.0}% of datagrams lost, one crash mid-purchase",
        args.purchases,
        f64::from(cfg.loss_permille) / 10.0
    );
    println!(
        "  encrypted wallet stores (SQLCipher, PIN-derived key): {}",
        dir.display()
    );
    println!();
    let report = mpay_sim::run_guarded(cfg);
    for line in &report.log {
        println!("{line}");
    }
    println!();
    println!("{:<10} {:>14} {:>14}", "wallet", "before", "after");
    for (n, ((id, before), (_, after))) in report
        .balances_before
        .iter()
        .zip(&report.balances_after)
        .enumerate()
    {
        println!(
            "{:<10} {:>14} {:>14}   ({})",
            phone_name(n),
            before.to_string(),
            after.to_string(),
            id.short()
        );
    }
    let held: i64 = report
        .balances_after
        .iter()
        .map(|(_, a)| a.minor_units())
        .sum();
    let charged = report.charged_total.map_or(0, |a| a.minor_units());
    println!();
    println!(
        "purchases committed={} aborted={} crashes={} datagrams sent={} lost={}",
        report.committed, report.aborted, report.crashes, report.frames_sent, report.frames_dropped
    );
    if report.violations.is_empty() && held == charged {
        println!(
            "conservation: charged {:.2} EUR, wallets hold {:.2} EUR: money conserved",
            charged as f64 / 100.0,
            held as f64 / 100.0
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!("INVARIANT VIOLATED (seed {}):", report.seed);
        for v in &report.violations {
            println!("  {v}");
        }
        if held != charged {
            println!("  charged {charged} cents but wallets hold {held} cents");
        }
        Ok(ExitCode::from(2))
    }
}
