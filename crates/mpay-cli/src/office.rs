//! `mpay office …`: run the money office and operate it.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Subcommand;
use mpay_money::Currency;
use mpay_office::http::{OfficeClient, router, wall_clock};
use mpay_office::{Office, OfficeConfig};

use crate::amount::{self, Zero};

/// Environment variable holding the operator's token.
pub const ADMIN_TOKEN_ENV: &str = "MPAY_OFFICE_ADMIN_TOKEN";

#[derive(Subcommand)]
pub enum OfficeCommand {
    /// Run the money office's HTTP service.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "MPAY_OFFICE_LISTEN", default_value = "127.0.0.1:7700")]
        listen: SocketAddr,
        /// Database: `sqlite://path/office.db` (created if missing) or
        /// `postgres://user@host/db`.
        #[arg(
            long,
            env = "MPAY_OFFICE_DB",
            default_value = "sqlite://mpay-office.db"
        )]
        db: String,
        /// Currency of the office's books and wallets.
        #[arg(long, env = "MPAY_OFFICE_CURRENCY", default_value = "EUR")]
        currency: String,
        /// Operator token for `open-account` and `frauds` (unset: those
        /// routes are disabled).
        #[arg(long, env = ADMIN_TOKEN_ENV, hide_env_values = true)]
        admin_token: Option<String>,
        /// TLS: PEM certificate chain of the listener (with --tls-key).
        #[arg(long, env = "MPAY_OFFICE_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<std::path::PathBuf>,
        /// TLS: PEM private key of the listener.
        #[arg(long, env = "MPAY_OFFICE_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<std::path::PathBuf>,
        /// Offline balance limit of every enrolled wallet, like `500.00`
        /// or `500.00 EUR`.
        #[arg(long, default_value = "500.00")]
        offline_balance_max: String,
        /// Per-payment limit of every enrolled wallet, like `100.00` or
        /// `100.00 EUR`.
        #[arg(long, default_value = "100.00")]
        payment_max: String,
        /// Most days a wallet may go between syncs.
        #[arg(long, default_value_t = 7)]
        days_between_syncs_max: u16,
        /// Most payments a wallet may make between syncs.
        #[arg(long, default_value_t = 200)]
        payments_between_syncs_max: u32,
    },
    /// Open an owner's account with a deposit. Prints the owner's token
    /// alone on stdout (`token=$(mpay office open-account …)`); it is shown
    /// once.
    OpenAccount {
        /// The money office's URL.
        #[arg(long, env = "MPAY_OFFICE_URL", default_value = "http://127.0.0.1:7700")]
        office: String,
        /// The office operator's token (prefer the environment variable: a
        /// command line is visible to other users of the machine).
        #[arg(long, env = ADMIN_TOKEN_ENV, hide_env_values = true)]
        admin_token: String,
        /// The owner's name, unique at the office.
        #[arg(long)]
        owner: String,
        /// What the owner paid in, like `250.00` or `250.00 EUR` (may be 0).
        #[arg(long)]
        deposit: String,
        /// The currency of a deposit written without one (default: the
        /// office's, which it says at `GET /v1/office`).
        #[arg(long, env = "MPAY_OFFICE_CURRENCY")]
        currency: Option<String>,
        /// Print `{"owner", "token"}` as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// An owner's own account at the office: its name and balance.
    Account {
        /// The money office's URL.
        #[arg(long, env = "MPAY_OFFICE_URL", default_value = "http://127.0.0.1:7700")]
        office: String,
        /// The owner's token (prefer the environment variable: a command
        /// line is visible to other users of the machine).
        #[arg(long, env = "MPAY_OWNER_TOKEN", hide_env_values = true)]
        token: String,
        /// Print `{"owner", "balance"}` as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List the double spends the office caught, with their owners.
    Frauds {
        /// The money office's URL.
        #[arg(long, env = "MPAY_OFFICE_URL", default_value = "http://127.0.0.1:7700")]
        office: String,
        /// The office operator's token (prefer the environment variable).
        #[arg(long, env = ADMIN_TOKEN_ENV, hide_env_values = true)]
        admin_token: String,
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: OfficeCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(command))
}

async fn run_async(command: OfficeCommand) -> anyhow::Result<ExitCode> {
    match command {
        OfficeCommand::Serve {
            listen,
            db,
            currency,
            admin_token,
            tls_cert,
            tls_key,
            offline_balance_max,
            payment_max,
            days_between_syncs_max,
            payments_between_syncs_max,
        } => {
            let currency: Currency = currency.parse()?;
            let mut config = OfficeConfig::default_for(currency);
            config.wallet_limits.offline_balance_max =
                amount::parse(&offline_balance_max, currency, Zero::Refused)?;
            config.wallet_limits.payment_max =
                amount::parse(&payment_max, currency, Zero::Refused)?;
            config.wallet_limits.days_between_syncs_max = days_between_syncs_max;
            config.wallet_limits.payments_between_syncs_max = payments_between_syncs_max;
            let database = mpay_sql::Db::connect(&db).await?;
            let mut seed = [0u8; 32];
            getrandom_seed(&mut seed)?;
            let office = Office::open(database, config, seed, wall_clock()).await?;
            tracing::info!(office = %office.id(), %listen, db = %redact(&db), "money office starting");
            let tls = match (&tls_cert, &tls_key) {
                (Some(cert), Some(key)) => Some(mpay_tls::server_config(cert, key)?),
                _ => None,
            };
            let listener = tokio::net::TcpListener::bind(listen).await?;
            println!(
                "money office {} listening on {}://{}",
                office.id(),
                if tls.is_some() { "https" } else { "http" },
                listener.local_addr()?
            );
            let app = router(office, admin_token);
            mpay_tls::serve(listener, tls, app, shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        OfficeCommand::OpenAccount {
            office,
            admin_token,
            owner,
            deposit,
            currency,
            json,
        } => {
            let client = OfficeClient::new(&office)?;
            let currency: Currency = match currency {
                Some(currency) => currency.parse()?,
                None => client.info().await?.currency.parse()?,
            };
            let deposit = amount::parse(&deposit, currency, Zero::Allowed)?;
            let token = client.open_account(&admin_token, &owner, deposit).await?;
            if json {
                println!("{}", serde_json::json!({ "owner": owner, "token": token }));
            } else {
                eprintln!(
                    "opened account {owner} with {deposit}; the owner's token follows on \
                     stdout (keep it secret, it is shown once)"
                );
                println!("{token}");
            }
            Ok(ExitCode::SUCCESS)
        }
        OfficeCommand::Account {
            office,
            token,
            json,
        } => {
            let info = OfficeClient::new(&office)?.owner_balance(&token).await?;
            if json {
                println!("{}", serde_json::to_string(&info)?);
            } else {
                println!("owner {}: balance {}", info.owner, info.balance);
            }
            Ok(ExitCode::SUCCESS)
        }
        OfficeCommand::Frauds {
            office,
            admin_token,
            json,
        } => {
            let client = OfficeClient::new(&office)?;
            let frauds = client.frauds(&admin_token).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&frauds)?);
            } else if frauds.is_empty() {
                println!("no double spends caught");
            } else {
                println!(
                    "{:<34} {:<16} {:>6} {:>14}",
                    "wallet", "owner", "seq", "charged"
                );
                for f in &frauds {
                    println!(
                        "{:<34} {:<16} {:>6} {:>14}",
                        f.wallet, f.owner, f.seq, f.charged
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A database URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}@{}", &url[..scheme + 3], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

pub fn getrandom_seed(seed: &mut [u8; 32]) -> anyhow::Result<()> {
    getrandom::fill(seed).map_err(|e| anyhow::anyhow!("no OS randomness: {e}"))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
