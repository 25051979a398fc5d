//! `mpay`: the command-line front door to the payment system.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod sim;

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
    /// Deterministic simulations.
    Sim {
        #[command(subcommand)]
        what: sim::SimCommand,
    },
    /// Benchmarks, each with its baseline measured in the same run.
    Bench {
        #[command(subcommand)]
        what: bench::BenchCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sim { what } => sim::run(what),
        Command::Bench { what } => bench::run(what),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
