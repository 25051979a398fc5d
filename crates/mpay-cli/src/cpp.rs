//! `mpay cpp …`: a CPP operator's commands, with the operator's token from
//! the network folder's `operators.toml`.
//!
//! - `mpay cpp recluster` asks the CPP (`POST /v1/admin/micro/recluster`)
//!   to fit k-means over its customers' micropayment records and store each
//!   customer's θ and W. The fit runs in the CPP process, off the payment
//!   path (a blocking task); the command only starts it and prints the
//!   clusters.
//! - `mpay cpp pins` counts how the customers' PINs are stored
//!   (`GET /v1/admin/pins`).
//! - `mpay cpp rotate-pin-key` makes a new PIN verification key current in
//!   the CPP's key file (DESIGN §3.2); the CPP uses it once restarted.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use mpay_api::semops::CppClient;
use mpay_network::config::{read_pin_keys, write_pin_keys};
use mpay_network::{Directory, ServiceConfig};
use mpay_semops::PinKey;

use crate::network::provision::{DIRECTORY_FILE, Operators};

/// Which CPP of which network.
#[derive(Args)]
pub struct CppAt {
    /// The network folder (holding `network.toml`, `operators.toml` and
    /// each service's configuration).
    #[arg(long, env = "MPAY_NETWORK")]
    pub network: PathBuf,
    /// The CPP's name in the directory.
    #[arg(long)]
    pub cpp: String,
}

impl CppAt {
    /// A client of the CPP and the operator's token there.
    fn operator(&self) -> anyhow::Result<(CppClient, String)> {
        let directory = Directory::load(self.network.join(DIRECTORY_FILE))?;
        let service = directory
            .service(&self.cpp)
            .with_context(|| format!("no service `{}` in the directory", self.cpp))?;
        let token = Operators::load(&self.network)?.token(&self.cpp)?.to_owned();
        Ok((CppClient::new(&service.url)?, token))
    }
}

#[derive(Subcommand)]
pub enum CppCommand {
    /// Recompute every customer's micropayment θ and W by k-means over the
    /// CPP's records (payment rate, mean amount, failed transfers).
    Recluster {
        #[command(flatten)]
        at: CppAt,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// How the CPP's customers' PINs are stored: under the current key,
    /// under a replaced key (renewed at the next right PIN), as Argon2id
    /// hashes from before verification values, or under a retired key
    /// (those customers need `mpay customer set-pin`).
    Pins {
        #[command(flatten)]
        at: CppAt,
        /// Print the counts as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make a new PIN verification key current in the CPP's key file. The
    /// keys it replaced are kept (at most 8); each customer's value is
    /// renewed under the new key at their next right PIN. Restart the CPP
    /// to start using it.
    RotatePinKey {
        #[command(flatten)]
        at: CppAt,
    },
}

pub fn run(command: CppCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    match command {
        CppCommand::Recluster { at, json } => {
            let (client, token) = at.operator()?;
            let report = runtime
                .block_on(client.recluster(&token))
                .with_context(|| format!("{} could not recluster", at.cpp))?;
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
        CppCommand::Pins { at, json } => {
            let (client, token) = at.operator()?;
            let report = runtime
                .block_on(client.pin_report(&token))
                .with_context(|| format!("asking {} for its PIN report", at.cpp))?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!(
                    "{}: {} customers; {} under the current key, {} under a replaced key, \
                     {} Argon2id hashes from before, {} under a retired key (need a new PIN)",
                    at.cpp,
                    report.customers,
                    report.current_key,
                    report.older_keys,
                    report.argon2,
                    report.unverifiable
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        CppCommand::RotatePinKey { at } => {
            let config = ServiceConfig::load(at.network.join(format!("{}.toml", at.cpp)))?;
            let path = config
                .pin_keys
                .as_deref()
                .with_context(|| format!("{}'s configuration names no `pin_keys` file", at.cpp))?;
            let keys = read_pin_keys(Path::new(path))?;
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("OS randomness: {e}"))?;
            let rotated = keys
                .rotated(PinKey::new(secret))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            write_pin_keys(Path::new(path), &rotated)?;
            println!(
                "{path}: a new current key, {} keys in all; restart {} to use it",
                rotated.all().len(),
                at.cpp
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
