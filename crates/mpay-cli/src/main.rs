//! `mpay`: the command-line front door to the payment system.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sim { what } => sim::run(what),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
