//! `mpay reconcile`: checks a whole SEMOPS network against itself once it
//! is quiet ([`mpay_network::reconcile`] says what is checked) and prints
//! what it found. Exits 2 on any mismatch, and says which.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use mpay_network::Directory;
pub use mpay_network::reconcile::Report;

use crate::network::provision::{DIRECTORY_FILE, Operators};

#[derive(Args, Clone)]
pub struct ReconcileArgs {
    /// The network folder.
    #[arg(long, env = "MPAY_NETWORK")]
    pub network: PathBuf,
    /// Wait up to this long for every payment to reach its end and every
    /// message to be delivered before judging, seconds.
    #[arg(long, default_value_t = 30)]
    pub wait_secs: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Reconciles the network in `dir`, waiting up to `wait` for it to be quiet.
pub async fn reconcile(dir: &Path, wait: Duration) -> anyhow::Result<Report> {
    let directory = Directory::load(dir.join(DIRECTORY_FILE))?;
    let operators = Operators::load(dir)?;
    let token = |name: &str| operators.token(name).ok().map(str::to_owned);
    mpay_network::reconcile::reconcile(&directory, &token, wait)
        .await
        .context("reading the network")
}

pub fn run(args: ReconcileArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let report = runtime.block_on(reconcile(
        &args.network,
        Duration::from_secs(args.wait_secs),
    ))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "banks: {}  holds pending: {}  messages in flight: {}",
            report.banks, report.holds_pending, report.in_flight
        );
        let states: Vec<String> = report
            .payments
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        println!(
            "payments: {}",
            if states.is_empty() {
                "none".into()
            } else {
                states.join(", ")
            }
        );
        println!(
            "money: holder and external accounts sum to {} (0 expected); settlement accounts sum to {}",
            report.money_outside_settlement_minor, report.settlement_minor
        );
        if report.micro_books > 0 {
            println!(
                "micropayment books checked: {} (CPPs and MPPs aggregating)",
                report.micro_books
            );
        }
        if report.is_clean() {
            println!("reconciled: nothing lost, nothing doubled");
        } else {
            for m in &report.mismatches {
                println!("MISMATCH: {m}");
            }
        }
    }
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
