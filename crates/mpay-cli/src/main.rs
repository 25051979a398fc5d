//! `mpay`: the command-line front door to the payment system.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod demo;
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
    /// Run the system end to end and check that money is conserved.
    Demo(demo::DemoArgs),
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
        Command::Demo(args) => demo::run(args),
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
