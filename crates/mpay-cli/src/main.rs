//! `mpay`: the command-line front door to the payment system.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod amount;
mod bank;
mod bench;
mod chaos;
mod cpp;
mod demo;
mod network;
mod office;
mod reconcile;
mod semops;
mod sim;
mod wallet;
mod wire;

#[cfg(test)]
mod readme;

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
    /// The money office: run it, open owners' accounts, show an owner's
    /// account, list frauds.
    Office {
        #[command(subcommand)]
        what: office::OfficeCommand,
    },
    /// The offline wallet on this device: create, charge, sell, buy, sync.
    #[command(after_help = wallet::EXIT_CODES_HELP)]
    Wallet {
        #[command(flatten)]
        common: wallet::Common,
        #[command(subcommand)]
        what: wallet::WalletCommand,
    },
    /// Run one process of the SEMOPS network from its configuration file.
    Serve {
        #[command(subcommand)]
        what: network::ServeCommand,
    },
    /// Provision or run a whole SEMOPS network (two regions) on this machine.
    Network {
        #[command(subcommand)]
        what: network::NetworkCommand,
    },
    /// A bank operator's commands: accounts, deposits, the books.
    Bank {
        #[command(subcommand)]
        what: bank::BankCommand,
    },
    /// A SEMOPS customer: enrol, pay a merchant's TRANS, follow a payment.
    #[command(after_help = semops::EXIT_CODES_HELP)]
    Customer {
        #[command(subcommand)]
        what: semops::CustomerCommand,
    },
    /// A SEMOPS merchant: enrol, request a payment, approve, reject, refund.
    Merchant {
        #[command(subcommand)]
        what: semops::MerchantCommand,
    },
    /// A CPP operator's commands (micropayment limits).
    Cpp {
        #[command(subcommand)]
        what: cpp::CppCommand,
    },
    /// Check a whole SEMOPS network: books, money across banks, every
    /// payment's end state; exit 2 on any mismatch.
    Reconcile(reconcile::ReconcileArgs),
    /// Load through the SEMOPS network while processes are SIGKILLed and
    /// restarted; then check that nothing was lost or doubled.
    Chaos(chaos::ChaosArgs),
    /// Envelope frames: decode, seal, open, verify (docs/wire-format.md).
    #[command(after_help = wire::EXIT_CODES_HELP)]
    Wire {
        #[command(subcommand)]
        what: wire::WireCommand,
    },
    /// Benchmarks, each with its baseline measured in the same run.
    Bench {
        #[command(subcommand)]
        what: bench::BenchCommand,
    },
}

/// PostgreSQL's notices say nothing to an operator (the most common: a
/// transaction that lost a serialization race at COMMIT is rolled back and
/// run again, and the server answers that ROLLBACK with "there is no
/// transaction in progress"), so they are off unless `MPAY_LOG` names
/// `sqlx`.
const QUIET_NOTICES: &str = "sqlx::postgres::notice=error";

/// The log filter of `MPAY_LOG` (default `warn`), notices quieted.
fn log_filter(setting: Option<String>) -> tracing_subscriber::EnvFilter {
    let setting = setting.unwrap_or_else(|| "warn".into());
    let setting = if setting.contains("sqlx") {
        setting
    } else {
        format!("{setting},{QUIET_NOTICES}")
    };
    tracing_subscriber::EnvFilter::try_new(&setting)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("warn,{QUIET_NOTICES}")))
}

fn main() -> ExitCode {
    // rustls runs on ring only (aws-lc-rs alongside makes it panic).
    mpay_tls::install_ring_provider();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(log_filter(std::env::var("MPAY_LOG").ok()))
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Sim { what } => sim::run(what),
        Command::Bench { what } => bench::run(what),
        Command::Office { what } => office::run(what),
        Command::Wallet { common, what } => wallet::run(common, what),
        Command::Serve { what } => network::run_serve(what),
        Command::Network { what } => network::run_network(what),
        Command::Bank { what } => bank::run(what),
        Command::Customer { what } => semops::run_customer(what),
        Command::Merchant { what } => semops::run_merchant(what),
        Command::Reconcile(args) => reconcile::run(args),
        Command::Cpp { what } => cpp::run(what),
        Command::Chaos(args) => chaos::run(args),
        Command::Wire { what } => wire::run(what),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            ExitCode::from(1)
        }
    }
}

/// An error and its causes on one line, each said once: a cause whose text
/// the message before it already includes is not repeated.
fn error_text(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let said = cause.to_string();
        if text.is_empty() {
            text = said;
        } else if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{error_text, log_filter};

    #[test]
    fn postgres_notices_are_quiet_unless_the_log_setting_names_sqlx() {
        let quiet = |setting: Option<&str>| log_filter(setting.map(str::to_owned)).to_string();
        for setting in [None, Some("info"), Some("mpay=debug,warn")] {
            let filter = quiet(setting);
            assert!(filter.contains("sqlx::postgres::notice=error"), "{filter}");
        }
        let asked = quiet(Some("sqlx=debug"));
        assert!(!asked.contains("notice=error"), "{asked}");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot reach the office: {source}")]
    struct Unreachable {
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn an_error_says_each_cause_once() {
        let refused = || std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = anyhow::Error::new(Unreachable { source: refused() });
        assert_eq!(error_text(&error), "cannot reach the office: refused");
        let error = anyhow::Error::new(refused()).context("listing frauds");
        assert_eq!(error_text(&error), "listing frauds: refused");
    }
}
