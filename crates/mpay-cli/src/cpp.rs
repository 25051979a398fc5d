//! `mpay cpp …`: a CPP operator's commands.
//!
//! `mpay cpp recluster --network DIR --cpp NAME` asks the CPP (its operator
//! route `POST /v1/admin/micro/recluster`, with the operator's token from
//! the network folder) to fit k-means over its customers' micropayment
//! records and store each customer's θ and W. The fit runs in the CPP
//! process, off the payment path (a blocking task); the command only
//! starts it and prints the clusters.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use mpay_network::{CppClient, Directory};

use crate::network::provision::{DIRECTORY_FILE, Operators};

#[derive(Subcommand)]
pub enum CppCommand {
    /// Recompute every customer's micropayment θ and W by k-means over the
    /// CPP's records (payment rate, mean amount, failed transfers).
    Recluster {
        /// The network folder.
        #[arg(long, env = "MPAY_NETWORK")]
        network: PathBuf,
        /// The CPP's name in the directory.
        #[arg(long)]
        cpp: String,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: CppCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    match command {
        CppCommand::Recluster { network, cpp, json } => {
            let directory = Directory::load(network.join(DIRECTORY_FILE))?;
            let service = directory
                .services
                .iter()
                .find(|s| s.name == cpp)
                .with_context(|| format!("no service `{cpp}` in the directory"))?;
            let operators = Operators::load(&network)?;
            let token = operators.token(&cpp)?;
            let report = runtime
                .block_on(CppClient::new(&service.url)?.recluster(token))
                .with_context(|| format!("{cpp} could not recluster"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "customers={} clusters={} default_cluster={}",
                    report.customers,
                    report.clusters.len(),
                    report.default_cluster
                );
                for c in &report.clusters {
                    println!(
                        "cluster={} customers={} defaults={} default_rate={:.4} theta={} window_ms={}",
                        c.cluster, c.customers, c.defaults, c.default_rate, c.theta, c.window_ms
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
