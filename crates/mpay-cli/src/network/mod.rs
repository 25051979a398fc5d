//! The SEMOPS network from the command line: provision a two-region network
//! (`mpay network init`), run one process of it (`mpay serve …`), or run all
//! of it as child processes (`mpay network up`).

pub mod provision;
pub mod supervisor;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use mpay_network::{ServiceConfig, Timing};

pub use mpay_clock::wall_clock;

#[derive(Subcommand)]
pub enum ServeCommand {
    /// A bank: ledger, holds, interbank transfers.
    Bank(ServeArgs),
    /// A customer payment processor.
    Cpp(ServeArgs),
    /// A merchant payment processor.
    Mpp(ServeArgs),
    /// A data center.
    Dc(ServeArgs),
}

#[derive(Args)]
pub struct ServeArgs {
    /// The process's configuration file (TOML; `mpay network init` writes
    /// one per process). `MPAY_LISTEN`, `MPAY_DB` and (services)
    /// `MPAY_OPERATOR_TOKEN` override what it says.
    #[arg(long, env = "MPAY_CONFIG")]
    pub config: PathBuf,
}

#[derive(Args, Clone)]
pub struct InitArgs {
    /// Folder to provision (created if missing).
    #[arg(long)]
    pub dir: PathBuf,
    /// Run every process on this PostgreSQL server, a database each
    /// (e.g. postgres://postgres@127.0.0.1:5432/test). Default: SQLite files
    /// in the folder.
    #[arg(long)]
    pub postgres: Option<String>,
    /// First port of a fixed layout (banks base+1…, DCs base+11…, CPPs
    /// base+21…, MPPs base+31…). Default: free ports.
    #[arg(long)]
    pub base_port: Option<u16>,
    /// Decision timeout of a payment at the CPP, ms.
    #[arg(long)]
    pub decision_timeout_ms: Option<u64>,
    /// Micropayments: `none` (every payment macro), `one` (the CPP
    /// aggregates and pays the MPPs by net settlement) or `two` (the MPPs
    /// also aggregate what they owe merchants).
    #[arg(long, default_value = "none", value_parser = ["none", "one", "two"])]
    pub micro_mode: String,
    /// Largest micropayment, like `1.00` or `1.00 EUR`.
    #[arg(long)]
    pub micro_limit: Option<String>,
    /// θ of the default cluster: a customer's pending total that triggers
    /// one bank transfer, like `10.00` or `10.00 EUR`.
    #[arg(long)]
    pub micro_theta: Option<String>,
    /// W of the default cluster: the longest a pending total waits, ms.
    #[arg(long)]
    pub micro_window_ms: Option<u64>,
    /// Pause between net settlement runs (CPP) and payout runs (MPP), ms.
    #[arg(long)]
    pub micro_settle_interval_ms: Option<u64>,
    /// Credit limit of the CPPs (Σ pending totals) and, in mode two, of
    /// the MPPs (paid ahead), like `10000.00` or `10000.00 EUR`.
    #[arg(long)]
    pub micro_credit_limit: Option<String>,
    /// Plain http:// between the processes, bearer tokens allowed on
    /// loopback (debugging only; CLI commands then need
    /// MPAY_ALLOW_PLAINTEXT_LOOPBACK=1 to send theirs). Default: TLS under a
    /// CA made now.
    #[arg(long)]
    pub plaintext: bool,
}

impl InitArgs {
    /// The provisioning options; the micropayment amounts parsed with the
    /// one amount syntax ([`crate::amount`]) in the network's currency and
    /// written in full (`5.00` becomes `5.00 EUR`).
    pub fn options(&self) -> anyhow::Result<provision::Options> {
        let currency: mpay_money::Currency = provision::CURRENCY.parse()?;
        let amount = |option: &str, text: &str, zero| -> anyhow::Result<String> {
            crate::amount::parse(text, currency, zero)
                .map(|amount| amount.to_string())
                .with_context(|| format!("--{option}"))
        };
        let mut timing = Timing::default();
        if let Some(ms) = self.decision_timeout_ms {
            timing.decision_timeout_ms = ms;
        }
        let mut micro = mpay_network::MicroConfig {
            mode: match self.micro_mode.as_str() {
                "one" => mpay_network::MicroMode::One,
                "two" => mpay_network::MicroMode::Two,
                _ => mpay_network::MicroMode::None,
            },
            ..mpay_network::MicroConfig::default()
        };
        if let Some(limit) = &self.micro_limit {
            micro.limit = amount("micro-limit", limit, crate::amount::Zero::Refused)?;
        }
        if let Some(theta) = &self.micro_theta {
            micro.theta = amount("micro-theta", theta, crate::amount::Zero::Refused)?;
        }
        if let Some(ms) = self.micro_window_ms {
            micro.window_ms = ms;
        }
        if let Some(ms) = self.micro_settle_interval_ms {
            micro.settle_interval_ms = ms;
        }
        if let Some(limit) = &self.micro_credit_limit {
            micro.credit_limit = amount("micro-credit-limit", limit, crate::amount::Zero::Allowed)?;
        }
        Ok(provision::Options {
            dir: self.dir.clone(),
            postgres: self.postgres.clone(),
            base_port: self.base_port,
            timing,
            micro,
            seed: None,
            plaintext: self.plaintext,
        })
    }
}

#[derive(Subcommand)]
pub enum NetworkCommand {
    /// Provision a two-region network (3 banks, 2 DCs, 2 CPPs, 2 MPPs) in a
    /// folder: keys, certificates, the directory, a configuration per
    /// process and the operators' tokens.
    Init(InitArgs),
    /// Start every process of a network folder (provisioning it first if
    /// it is empty) and keep them running until interrupted; a process that
    /// dies is restarted.
    Up(InitArgs),
}

pub fn run_serve(what: ServeCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async move {
        match what {
            ServeCommand::Bank(args) => {
                mpay_network::bank_file::serve(&args.config).await?;
                anyhow::Ok(())
            }
            ServeCommand::Cpp(args) => {
                let (config, listener) = service(&args.config).await?;
                mpay_network::cpp::serve(config, listener).await?;
                Ok(())
            }
            ServeCommand::Mpp(args) => {
                let (config, listener) = service(&args.config).await?;
                mpay_network::mpp::serve(config, listener).await?;
                Ok(())
            }
            ServeCommand::Dc(args) => {
                let (config, listener) = service(&args.config).await?;
                mpay_network::dc::serve(config, listener).await?;
                Ok(())
            }
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn service(path: &Path) -> anyhow::Result<(ServiceConfig, tokio::net::TcpListener)> {
    let config = ServiceConfig::load(path)?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    tracing::info!(name = %config.name, listen = %config.listen, "serving");
    Ok((config, listener))
}

pub fn run_network(what: NetworkCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    match what {
        NetworkCommand::Init(args) => {
            let processes = runtime.block_on(provision::provision(&args.options()?))?;
            print_processes(&args.dir, &processes);
            Ok(ExitCode::SUCCESS)
        }
        NetworkCommand::Up(args) => {
            let processes = if args.dir.join(provision::DIRECTORY_FILE).exists() {
                provision::processes(&args.dir)?
            } else {
                runtime.block_on(provision::provision(&args.options()?))?
            };
            let mut network = supervisor::Network::start(&args.dir, processes)?;
            runtime.block_on(network.wait_healthy(std::time::Duration::from_secs(60)))?;
            print_processes(&args.dir, network.processes());
            println!(
                "running; SIGTERM or Ctrl-C stops every process; logs in {}, pids in {}",
                args.dir.join("logs").display(),
                args.dir.join("pids.toml").display()
            );
            runtime.block_on(network.supervise_until_interrupted())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_processes(dir: &Path, processes: &[provision::Process]) {
    println!("network in {}", dir.display());
    println!("{:<6} {:<7} url", "role", "name");
    for p in processes {
        println!("{:<6} {:<7} {}", p.role, p.name, p.url);
    }
    println!(
        "directory: {}  operators' tokens: {}",
        dir.join(provision::DIRECTORY_FILE).display(),
        dir.join(provision::OPERATORS_FILE).display()
    );
}
