//! `mpay`: the command-line front door to the payment system.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod demo;
mod office;
mod sim;
mod wallet;

#[derive(Parser)]
#[command(
    name = "mpay",
    version,
    about = "mpay: offline wallets and SEMOPS payments"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the system end to end and check that money is conserved.
    Demo(demo::DemoArgs),
    /// Deterministic simulations.
    Sim {
        #[command(subcommand)]
        what: sim::SimCommand,
    },
    /// The money office: run it, open owners' accounts, list frauds.
    Office {
        #[command(subcommand)]
        what: office::OfficeCommand,
    },
    /// The offline wallet on this device: create, charge, sell, buy, sync.
    #[command(after_help = wallet::EXIT_CODES_HELP)]
    Wallet {
        #[command(subcommand)]
        what: wallet::WalletCommand,
    },
    /// Benchmarks, each with its baseline measured in the same run.
    Bench {
        #[command(subcommand)]
        what: bench::BenchCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MPAY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Sim { what } => sim::run(what),
        Command::Bench { what } => bench::run(what),
        Command::Office { what } => office::run(what),
        Command::Wallet { what } => wallet::run(what),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
