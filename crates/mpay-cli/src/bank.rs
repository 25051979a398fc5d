//! `mpay bank …`: a bank operator's commands against a running bank of a
//! provisioned network — open an account, deposit, read an account, check
//! the books. The bank's URL and the operator's token come from the network
//! folder (`network.toml`, `operators.toml`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use mpay_bank::{AccountId, BankClient, Deposit};
use mpay_money::{Amount, Currency};

use crate::amount::{self, Zero};
use mpay_network::Directory;

use crate::network::provision::{DIRECTORY_FILE, Operators};

#[derive(Args, Clone)]
pub struct BankTarget {
    /// The network folder (`mpay network init --dir`).
    #[arg(long, env = "MPAY_NETWORK")]
    pub network: PathBuf,
    /// The bank's name in the directory (e.g. bank1).
    #[arg(long)]
    pub bank: String,
}

impl BankTarget {
    /// The network's one currency (from `network.toml`).
    pub fn currency(&self) -> anyhow::Result<Currency> {
        let directory = Directory::load(self.network.join(DIRECTORY_FILE))?;
        Ok(directory.currency.parse()?)
    }

    /// The bank's client with the operator's token.
    pub fn operator_client(&self) -> anyhow::Result<BankClient> {
        let directory = Directory::load(self.network.join(DIRECTORY_FILE))?;
        let entry = directory
            .bank(&self.bank)
            .with_context(|| format!("no bank `{}` in the directory", self.bank))?;
        let operators = Operators::load(&self.network)?;
        Ok(BankClient::new(&entry.url)?.with_token(operators.token(&self.bank)?))
    }
}

#[derive(Subcommand)]
pub enum BankCommand {
    /// Open a holder account (`cust:<name>`, `shop:<name>`, …), optionally
    /// with a first deposit.
    OpenAccount {
        #[command(flatten)]
        target: BankTarget,
        /// The account id, e.g. cust:alice.
        #[arg(long)]
        account: String,
        /// The holder's name (default: the part after the colon).
        #[arg(long)]
        holder: Option<String>,
        /// A first deposit, like `100.00` or `100.00 EUR`.
        #[arg(long)]
        deposit: Option<String>,
    },
    /// Credit an account from outside the bank.
    Deposit {
        #[command(flatten)]
        target: BankTarget,
        /// The account to credit, e.g. cust:alice.
        #[arg(long)]
        account: String,
        /// Like `25.00` or `25.00 EUR`.
        #[arg(long)]
        amount: String,
        /// Idempotency key (default: fresh): repeat it to retry safely.
        #[arg(long)]
        key: Option<String>,
    },
    /// An account's balance, held sum and floor.
    Account {
        #[command(flatten)]
        target: BankTarget,
        /// The account, e.g. cust:alice.
        #[arg(long)]
        account: String,
    },
    /// Check the bank's books and list every balance; exit 2 if they do not
    /// balance.
    Books {
        #[command(flatten)]
        target: BankTarget,
    },
}

/// A fresh idempotency key.
pub fn fresh_key() -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("OS randomness: {e}"))?;
    Ok(mpay_identity::hex_string(&bytes))
}

pub fn run(what: BankCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async move {
        match what {
            BankCommand::OpenAccount {
                target,
                account,
                holder,
                deposit,
            } => {
                let client = target.operator_client()?;
                let currency = target.currency()?;
                let deposit = match deposit {
                    Some(text) => Some(amount::parse(&text, currency, Zero::Allowed)?),
                    None => None,
                };
                let id = AccountId::parse(&account)?;
                // Both steps are idempotent (a re-run finishes an interrupted
                // one); what was there before tells whether this run changed
                // anything.
                let before = client.account(&id).await.ok();
                let holder = holder.unwrap_or_else(|| {
                    account
                        .split_once(':')
                        .map_or(account.as_str(), |(_, name)| name)
                        .to_owned()
                });
                let deposit = deposit.unwrap_or(Amount::zero(currency));
                let (view, receipt) = client
                    .open_with_deposit(&id, &holder, deposit, "first deposit")
                    .await
                    .with_context(|| format!("opening {account}"))?;
                let after = client.account(&id).await?;
                match before {
                    Some(before) if before.funds.balance == after.funds.balance => println!(
                        "{} was already open at {} (balance {}); nothing changed",
                        view.id, target.bank, after.funds.balance
                    ),
                    Some(_) => println!(
                        "{} was already open at {}; its first deposit is now made: balance {}",
                        view.id, target.bank, after.funds.balance
                    ),
                    None => {
                        println!("opened {} at {}", view.id, target.bank);
                        if let Some(receipt) = receipt {
                            println!("deposited {} into {}", receipt.amount, receipt.to);
                        }
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            BankCommand::Deposit {
                target,
                account,
                amount,
                key,
            } => {
                let client = target.operator_client()?;
                let amount = amount::parse(&amount, target.currency()?, Zero::Refused)?;
                let key = match key {
                    Some(key) => key,
                    None => fresh_key()?,
                };
                client
                    .deposit(
                        &key,
                        &Deposit {
                            account: AccountId::parse(&account)?,
                            amount,
                            reference: "deposit".to_owned(),
                        },
                    )
                    .await
                    .context("depositing")?;
                let view = client.account(&AccountId::parse(&account)?).await?;
                println!("{account}: balance {}", view.funds.balance);
                Ok(ExitCode::SUCCESS)
            }
            BankCommand::Account { target, account } => {
                let client = target.operator_client()?;
                let view = client.account(&AccountId::parse(&account)?).await?;
                println!(
                    "{}: balance {}, held {}, available {}",
                    view.id,
                    view.funds.balance,
                    view.funds.held,
                    view.funds.available()?
                );
                Ok(ExitCode::SUCCESS)
            }
            BankCommand::Books { target } => {
                let client = target.operator_client()?;
                let books = client.books().await?;
                for (account, balance) in &books.balances {
                    println!("{account:<48} {balance:>16}");
                }
                println!(
                    "holds pending: {}, interbank messages in flight: {}",
                    books.holds_pending, books.outbox_pending
                );
                match books.problem {
                    None => {
                        println!("books balance");
                        Ok(ExitCode::SUCCESS)
                    }
                    Some(problem) => {
                        println!("BOOKS DO NOT BALANCE: {problem}");
                        Ok(ExitCode::from(2))
                    }
                }
            }
        }
    })
}
