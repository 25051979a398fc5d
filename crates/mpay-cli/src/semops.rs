//! `mpay customer …` and `mpay merchant …`: the two ends of a SEMOPS
//! payment from the command line, against a running network.
//!
//! Each party keeps a file of its own (`mpay_network::party`); `enroll`
//! makes it. The payments themselves go through the devices of
//! `mpay_api::device`; this module parses, calls and prints.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use mpay_api::device::{self, Outcome, Refusal, Submitted, Terms};
use mpay_api::semops::{ClientError, MerchantPaymentView, PaymentStatus, StandingApprovalView};
use mpay_money::Amount;
use mpay_network::party::{self, Enrolment, PartyFile};
use mpay_semops::{Decision, SemopsError, ShippingDetails, seal_shipping};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::network::wall_clock;

/// Exit codes of `mpay customer pay` and `status` (the merchant's are [`MERCHANT_EXIT_CODES_HELP`]).
pub const EXIT_CODES_HELP: &str = "Exit codes: 0 completed (T or DT confirmation), 1 error, \
3 wrong PIN, 4 declined (insufficient funds or refused by the CPP), 5 account locked, \
6 rejected by the merchant, 7 expired, 10 not final within the wait.";

/// Exit codes of the merchant's commands that wait for a payment.
pub const MERCHANT_EXIT_CODES_HELP: &str = "Exit codes: 0 completed (or refunded), 1 error, \
4 declined (the CPP or the customer's bank refused it), 6 rejected, 7 expired, \
10 not final within the wait.";

const EXIT_WRONG_PIN: u8 = 3;
const EXIT_DECLINED: u8 = 4;
const EXIT_LOCKED: u8 = 5;
const EXIT_REJECTED: u8 = 6;
const EXIT_EXPIRED: u8 = 7;
const EXIT_TIMEOUT: u8 = 10;

fn fresh_rng() -> anyhow::Result<ChaCha20Rng> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("OS randomness: {e}"))?;
    Ok(ChaCha20Rng::from_seed(seed))
}

fn random16() -> anyhow::Result<[u8; 16]> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("OS randomness: {e}"))?;
    Ok(bytes)
}

/// `text` as an amount in the currency of `me`'s network.
fn amount(me: &PartyFile, text: &str) -> anyhow::Result<Amount> {
    Ok(crate::amount::parse(
        text,
        me.currency()?,
        crate::amount::Zero::Refused,
    )?)
}

#[derive(Args, Clone)]
pub struct Enrol {
    /// The network folder.
    #[arg(long, env = "MPAY_NETWORK")]
    network: PathBuf,
    /// The processor to enrol with (a CPP for a customer, an MPP for a merchant).
    #[arg(long)]
    processor: String,
    /// The party's name (its account at the processor).
    #[arg(long)]
    name: String,
    /// Its bank (directory name).
    #[arg(long)]
    bank: String,
    /// Its account at that bank (default: cust:<name> or shop:<name>).
    #[arg(long)]
    account: Option<String>,
    /// Where to write the party's file.
    #[arg(long)]
    out: PathBuf,
    /// The processor operator's token (default: from the folder's operators.toml).
    #[arg(long, env = "MPAY_OPERATOR_TOKEN", hide_env_values = true)]
    operator_token: Option<String>,
}

impl Enrol {
    fn enrolment(&self) -> Enrolment {
        Enrolment {
            network: self.network.clone(),
            processor: self.processor.clone(),
            name: self.name.clone(),
            bank: self.bank.clone(),
            account: self.account.clone(),
            out: self.out.clone(),
            operator_token: self.operator_token.clone(),
        }
    }
}

#[derive(Subcommand)]
pub enum CustomerCommand {
    /// Enrol a customer and this device at a CPP; writes the customer's file.
    #[command(
        mut_arg("processor", |a| a.help("The CPP to enrol with (its name in the directory)")),
        mut_arg("name", |a| a.help("The customer's name (its account at the CPP)")),
        mut_arg("bank", |a| a.help("The customer's bank (its name in the directory)")),
        mut_arg("account", |a| a.help("The customer's account at that bank (default: cust:<name>)")),
        mut_arg("out", |a| a.help("Where to write the customer's file")),
    )]
    Enroll {
        #[command(flatten)]
        enrol: Enrol,
        /// The PIN to set (4–12 digits). Default: read from MPAY_PIN.
        #[arg(long, env = "MPAY_PIN", hide_env_values = true)]
        pin: String,
    },
    /// Pay a merchant's TRANS (the `mpay:` URI from its terminal), and wait
    /// for the confirmation.
    #[command(after_help = EXIT_CODES_HELP)]
    Pay {
        /// The `mpay:trans?…` URI.
        uri: String,
        /// The customer's file.
        #[arg(long, env = "MPAY_CUSTOMER")]
        customer: PathBuf,
        /// The PIN (default: MPAY_PIN).
        #[arg(long, env = "MPAY_PIN", hide_env_values = true)]
        pin: String,
        /// Idempotency key (32 hex digits) to retry a payment safely; default fresh.
        #[arg(long)]
        key: Option<String>,
        /// Share these shipping details with the merchant (at most 1024
        /// bytes; line breaks allowed, as `\n` in a shell's $'…'). They are
        /// sealed to the merchant's key: the CPP, the DCs and the MPP carry
        /// them unread, and the merchant sees them with the payment.
        /// Without this flag nothing but the pseudonym reaches the merchant.
        #[arg(long, value_name = "TEXT")]
        share_shipping: Option<String>,
        /// How long to wait for the merchant and the banks, seconds.
        #[arg(long, default_value_t = 60)]
        wait_secs: u64,
        /// Print the final status as JSON.
        #[arg(long)]
        json: bool,
    },
    /// A payment's state at the CPP.
    #[command(after_help = EXIT_CODES_HELP)]
    Status {
        /// The payment's id (32 hex digits, printed by `pay`).
        payment_id: String,
        /// The customer's file (from `customer enroll`).
        #[arg(long, env = "MPAY_CUSTOMER")]
        customer: PathBuf,
        /// Wait this long for it to become final, seconds.
        #[arg(long, default_value_t = 0)]
        wait_secs: u64,
        /// Print the payment's status as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Unlock a customer locked out by wrong PINs. For the CPP's operator:
    /// the operator's token is read from the network folder's
    /// `operators.toml`.
    Unlock {
        /// The network folder (holding `network.toml` and `operators.toml`).
        #[arg(long, env = "MPAY_NETWORK")]
        network: PathBuf,
        /// The CPP the customer is enrolled at.
        #[arg(long)]
        cpp: String,
        /// The customer's name.
        #[arg(long)]
        name: String,
    },
    /// Give a customer a new PIN and start their wrong-PIN count again. For
    /// the CPP's operator: a customer enrolled before PINs were checked by
    /// verification values who has not paid since, or one whose PIN key
    /// was retired (`mpay cpp pins` counts both).
    SetPin {
        /// The network folder (holding `network.toml` and `operators.toml`).
        #[arg(long, env = "MPAY_NETWORK")]
        network: PathBuf,
        /// The CPP the customer is enrolled at.
        #[arg(long)]
        cpp: String,
        /// The customer's name.
        #[arg(long)]
        name: String,
        /// The new PIN (4–12 digits). Default: read from MPAY_PIN.
        #[arg(long, env = "MPAY_PIN", hide_env_values = true)]
        pin: String,
    },
}

#[derive(Subcommand)]
pub enum MerchantCommand {
    /// Enrol a merchant at an MPP; writes the merchant's file (with its
    /// token at the MPP).
    #[command(
        mut_arg("processor", |a| a.help("The MPP to enrol with (its name in the directory)")),
        mut_arg("name", |a| a.help("The merchant's name (its account at the MPP)")),
        mut_arg("bank", |a| a.help("The merchant's bank (its name in the directory)")),
        mut_arg("account", |a| a.help("The merchant's account at that bank (default: shop:<name>)")),
        mut_arg("out", |a| a.help("Where to write the merchant's file")),
    )]
    Enroll {
        #[command(flatten)]
        enrol: Enrol,
    },
    /// Make a signed TRANS and print it as an `mpay:` URI (and a QR code).
    Request {
        /// The merchant's file (from `merchant enroll`).
        #[arg(long, env = "MPAY_MERCHANT")]
        merchant: PathBuf,
        /// Like `12.50` or `12.50 EUR`.
        #[arg(long)]
        amount: String,
        /// The merchant's reference (order number).
        #[arg(long, default_value = "")]
        reference: String,
        /// For the customer.
        #[arg(long, default_value = "")]
        description: String,
        /// Payable for this long, seconds.
        #[arg(long, default_value_t = 300)]
        expires_in_secs: u64,
        /// Also draw the URI as a QR code.
        #[arg(long)]
        qr: bool,
        /// Then wait for the payment's notice and approve or reject it, and
        /// wait for its confirmation.
        #[arg(long, value_parser = ["approve", "reject"])]
        then: Option<String>,
        /// How long to wait with --then, seconds.
        #[arg(long, default_value_t = 60)]
        wait_secs: u64,
    },
    /// Payment notices awaiting this merchant's decision.
    Pending {
        /// The merchant's file (from `merchant enroll`).
        #[arg(long, env = "MPAY_MERCHANT")]
        merchant: PathBuf,
        /// Wait up to this long for one, seconds.
        #[arg(long, default_value_t = 0)]
        wait_secs: u64,
        /// Print the notices as JSON.
        #[arg(long)]
        json: bool,
        /// Print only the payments' ids, one a line (`payment=$(mpay
        /// merchant pending --ids …)`).
        #[arg(long, conflicts_with = "json")]
        ids: bool,
    },
    /// Approve a payment (signed by the merchant).
    Approve {
        /// The payment's id (32 hex digits, from `pending`).
        payment_id: String,
        /// The merchant's file (from `merchant enroll`).
        #[arg(long, env = "MPAY_MERCHANT")]
        merchant: PathBuf,
    },
    /// Reject a payment (signed by the merchant).
    Reject {
        /// The payment's id (32 hex digits, from `pending`).
        payment_id: String,
        /// The merchant's file (from `merchant enroll`).
        #[arg(long, env = "MPAY_MERCHANT")]
        merchant: PathBuf,
        /// Why, for the customer.
        #[arg(long, default_value = "rejected by the merchant")]
        reason: String,
    },
    /// Refund (part of) a completed payment; the money goes back the way it came.
    #[command(after_help = REFUND_HELP)]
    Refund {
        /// The payment's id (32 hex digits, from `pending`).
        payment_id: String,
        /// The merchant's file (from `merchant enroll`).
        #[arg(long, env = "MPAY_MERCHANT")]
        merchant: PathBuf,
        /// Like `5.00` or `5.00 EUR`.
        #[arg(long)]
        amount: String,
        /// Your reference of this refund (a return slip number); with the
        /// payment and the amount it makes the refund's idempotency key.
        #[arg(long, default_value = "1")]
        reference: String,
        /// The refund's idempotency key (32 hex digits) instead of the derived one.
        #[arg(long, alias = "key", conflicts_with = "reference")]
        idempotency_key: Option<String>,
        /// If the MPP has not seen the payment complete yet, wait this long
        /// for it before asking, seconds.
        #[arg(long, default_value_t = 10)]
        wait_secs: u64,
    },
    /// A payment as the merchant sees it.
    #[command(after_help = MERCHANT_EXIT_CODES_HELP)]
    Status {
        /// The payment's id (32 hex digits, from `pending`).
        payment_id: String,
        /// The merchant's file (from `merchant enroll`).
        #[arg(long, env = "MPAY_MERCHANT")]
        merchant: PathBuf,
        /// Wait this long for its T confirmation, seconds.
        #[arg(long, default_value_t = 0)]
        wait_secs: u64,
        /// Print the payment as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The merchant's standing approval of micropayments: its MPP approves
    /// each micropayment within the limits at once, without asking.
    #[command(subcommand, after_help = STANDING_HELP)]
    Standing(StandingCommand),
}

#[derive(Subcommand)]
pub enum StandingCommand {
    /// Sign a standing approval and give it to the MPP (it replaces the
    /// one standing).
    Set {
        /// The merchant's file (from `merchant enroll`).
        #[arg(long, env = "MPAY_MERCHANT")]
        merchant: PathBuf,
        /// The largest micropayment it approves, like `0.50`.
        #[arg(long)]
        per_payment: String,
        /// The most it approves in one period, all payments together.
        #[arg(long)]
        per_period: String,
        /// The period's length, hours (periods start at whole multiples of
        /// it since 1970-01-01 UTC).
        #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..=744))]
        period_hours: u64,
        /// How long it stands, days (at most 366; then set a new one).
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=366))]
        days: u64,
    },
    /// The standing approval and what it approved this period.
    Show {
        /// The merchant's file (from `merchant enroll`).
        #[arg(long, env = "MPAY_MERCHANT")]
        merchant: PathBuf,
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Withdraw it: from now on every micropayment waits for a decision.
    Withdraw {
        /// The merchant's file (from `merchant enroll`).
        #[arg(long, env = "MPAY_MERCHANT")]
        merchant: PathBuf,
    },
}

const STANDING_HELP: &str = "\
A micropayment (at or below the CPP's micropayment limit) the standing \
approval covers is approved by the MPP the moment it arrives; it never shows \
in `pending`, and `status` shows it approved under the standing approval. A \
payment above --per-payment, or past --per-period in the current period, \
waits for your decision as without one. Macro payments always do.";

const REFUND_HELP: &str = "\
A refund's idempotency key is derived from the payment, the amount and \
--reference (or given with --idempotency-key). Running the same command again \
(a retry after a timeout or a lost answer) is the same refund: it gets the \
first answer again and never refunds twice. That first answer is final, a \
refusal too: a refund refused because the payment was still pending stays \
refused under its key. To make another refund (of the same amount, or after \
a refusal) give another --reference.";

fn exit_of(outcome: Outcome) -> ExitCode {
    match outcome {
        Outcome::Completed => ExitCode::SUCCESS,
        Outcome::Declined => ExitCode::from(EXIT_DECLINED),
        Outcome::Rejected => ExitCode::from(EXIT_REJECTED),
        Outcome::Expired => ExitCode::from(EXIT_EXPIRED),
        Outcome::Pending => ExitCode::from(EXIT_TIMEOUT),
    }
}

fn exit_of_refusal(error: &ClientError) -> ExitCode {
    match Refusal::of(error) {
        Some(Refusal::WrongPin) => ExitCode::from(EXIT_WRONG_PIN),
        Some(Refusal::Locked) => ExitCode::from(EXIT_LOCKED),
        Some(Refusal::Declined) => ExitCode::from(EXIT_DECLINED),
        None => ExitCode::from(1),
    }
}

/// A refused payment as the one JSON object `--json` prints.
fn refusal_json(error: &ClientError) -> serde_json::Value {
    let (status, code, message) = match error {
        ClientError::Refused { status, error } => {
            (Some(*status), error.error.clone(), error.message.clone())
        }
        ClientError::Unreachable { .. } => (None, "unreachable".to_owned(), error.to_string()),
        ClientError::BadAnswer(_) => (None, "bad_answer".to_owned(), error.to_string()),
        ClientError::Transport(_) => (None, "transport".to_owned(), error.to_string()),
    };
    serde_json::json!({
        "state": "refused",
        "is_final": true,
        "error": code,
        "message": message,
        "http_status": status,
    })
}

/// A decision deadline for people: the UTC time and how far away it is.
fn deadline_text(deadline_ms: u64, now_ms: u64) -> String {
    let when = crate::wallet::output::utc(deadline_ms);
    if deadline_ms >= now_ms {
        format!("{when} (in {} s)", (deadline_ms - now_ms).div_ceil(1_000))
    } else {
        format!("{when} (passed)")
    }
}

fn print_status(
    status: &PaymentStatus,
    device: &device::CustomerDevice,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(status)?);
        return Ok(());
    }
    println!(
        "payment {}: {} ({}, reference `{}`{})",
        status.payment_id,
        status.state,
        status.amount,
        status.merchant_reference,
        status
            .reason
            .as_deref()
            .map(|r| format!(", reason {r}"))
            .unwrap_or_default()
    );
    match device.verified_outcome(status) {
        Some(Ok((outcome, amount))) => {
            println!("confirmation {outcome:?} for {amount} signed by the CPP: verified")
        }
        Some(Err(e)) => println!("confirmation does NOT verify: {e}"),
        None => {}
    }
    Ok(())
}

pub fn run_customer(what: CustomerCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async move {
        match what {
            CustomerCommand::Enroll { enrol, pin } => {
                let certificate = enrol
                    .enrolment()
                    .customer(&pin)
                    .await
                    .context("enrolling the customer")?;
                println!(
                    "enrolled customer {} at {} (device {}); file {}",
                    enrol.name,
                    enrol.processor,
                    certificate.subject(),
                    enrol.out.display()
                );
                Ok(ExitCode::SUCCESS)
            }
            CustomerCommand::Pay {
                uri,
                customer,
                pin,
                key,
                share_shipping,
                wait_secs,
                json,
            } => {
                let me = PartyFile::load(&customer)?;
                let details = share_shipping
                    .as_deref()
                    .map(ShippingDetails::new)
                    .transpose()
                    .context("--share-shipping")?;
                let trans =
                    mpay_semops::SignedTrans::from_uri(uri.trim()).context("the TRANS URI")?;
                let phone = me.customer()?;
                let mut rng = fresh_rng()?;
                let shipping = match details {
                    Some(details) => {
                        let merchant = party::merchant_certificate(&me.resolved()?, &trans)
                            .await
                            .context(
                            "the merchant's certificate, to seal the shipping details to",
                        )?;
                        Some(seal_shipping(&details, &trans, &merchant, &mut rng)?)
                    }
                    None => None,
                };
                let key = match key {
                    Some(text) => device::id16(&text, "an idempotency key")?,
                    None => random16()?,
                };
                let request = phone.request(trans, &pin, key, shipping)?;
                let status = match phone.submit(&request, &mut rng).await? {
                    Submitted::Accepted(status) => status,
                    Submitted::Refused(error) => {
                        if json {
                            println!("{}", refusal_json(&error));
                        } else {
                            eprintln!("payment refused: {error}");
                        }
                        return Ok(exit_of_refusal(&error));
                    }
                };
                if !json {
                    println!("payment {} submitted: {}", status.payment_id, status.state);
                }
                let status = phone
                    .wait_final(status, Duration::from_secs(wait_secs))
                    .await?;
                print_status(&status, &phone, json)?;
                Ok(exit_of(Outcome::of_status(&status)))
            }
            CustomerCommand::Status {
                payment_id,
                customer,
                wait_secs,
                json,
            } => {
                let phone = PartyFile::load(&customer)?.customer()?;
                let status = phone.client.status(&payment_id, 0).await?;
                let status = phone
                    .wait_final(status, Duration::from_secs(wait_secs))
                    .await?;
                print_status(&status, &phone, json)?;
                Ok(exit_of(Outcome::of_status(&status)))
            }
            CustomerCommand::Unlock { network, cpp, name } => {
                party::unlock(&network, &cpp, &name).await?;
                println!("unlocked {name} at {cpp}");
                Ok(ExitCode::SUCCESS)
            }
            CustomerCommand::SetPin {
                network,
                cpp,
                name,
                pin,
            } => {
                party::set_pin(&network, &cpp, &name, &pin).await?;
                println!("a new PIN is set for {name} at {cpp}");
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

/// Shared shipping details as the merchant `me` opens them.
type Opened = Option<Result<ShippingDetails, SemopsError>>;

/// Adds the opened shipping details to a notice's or payment's JSON:
/// `shipping_details` (the text), or `shipping_error` if they do not open.
fn with_shipping(mut value: serde_json::Value, opened: Opened) -> serde_json::Value {
    if let Some(object) = value.as_object_mut() {
        match opened {
            Some(Ok(details)) => {
                object.insert("shipping_details".into(), details.as_str().into());
            }
            Some(Err(error)) => {
                object.insert("shipping_error".into(), error.to_string().into());
            }
            None => {}
        }
    }
    value
}

/// Prints the opened shipping details under a notice's or payment's line.
fn print_shipping(opened: Opened) {
    match opened {
        Some(Ok(details)) => {
            let mut lines = details.as_str().lines();
            println!("  ship to: {}", lines.next().unwrap_or_default());
            for line in lines {
                println!("           {line}");
            }
        }
        Some(Err(error)) => println!("  shipping details refused: {error}"),
        None => {}
    }
}

fn print_merchant_view(
    view: &MerchantPaymentView,
    json: bool,
    terminal: &device::MerchantTerminal,
) -> anyhow::Result<()> {
    let opened = view.open_shipping(&terminal.keys, terminal.id);
    if json {
        let value = with_shipping(serde_json::to_value(view)?, opened);
        println!("{}", serde_json::to_string(&value)?);
        return Ok(());
    }
    println!(
        "payment {}: {} ({}, reference `{}`, customer {}, refunded {})",
        view.payment_id,
        view.state,
        view.amount,
        view.merchant_reference,
        view.customer_pseudonym,
        view.refunded
    );
    if view.standing {
        println!("  approved at once under the standing approval");
    }
    print_shipping(opened);
    if let Some(c) = view.confirmation() {
        println!(
            "confirmation {:?} for {}",
            c.unverified_body().outcome,
            c.unverified_body().amount
        );
    }
    Ok(())
}

async fn run_standing(what: StandingCommand) -> anyhow::Result<ExitCode> {
    let print = |view: &StandingApprovalView| {
        println!(
            "standing approval: up to {} a payment, {} a period of {} h ({} so far this period); {}",
            view.per_payment_max,
            view.period_max,
            view.period_ms / 3_600_000,
            view.used_in_period,
            if view.in_force {
                "in force"
            } else {
                "not in force"
            },
        );
    };
    match what {
        StandingCommand::Set {
            merchant,
            per_payment,
            per_period,
            period_hours,
            days,
        } => {
            let me = PartyFile::load(&merchant)?;
            let (per_payment, per_period) = (amount(&me, &per_payment)?, amount(&me, &per_period)?);
            let view = me
                .merchant()?
                .stand(
                    per_payment,
                    per_period,
                    period_hours.saturating_mul(3_600_000),
                    days.saturating_mul(24 * 3_600_000),
                )
                .await
                .context("the standing approval")?;
            print(&view);
            Ok(ExitCode::SUCCESS)
        }
        StandingCommand::Show { merchant, json } => {
            let terminal = PartyFile::load(&merchant)?.merchant()?;
            let view = terminal.client.standing_approval(&terminal.token).await?;
            match (view, json) {
                (view, true) => println!("{}", serde_json::to_string(&view)?),
                (Some(view), false) => print(&view),
                (None, false) => {
                    println!("no standing approval: every payment waits for a decision")
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        StandingCommand::Withdraw { merchant } => {
            let terminal = PartyFile::load(&merchant)?.merchant()?;
            let answer = terminal
                .client
                .withdraw_standing_approval(&terminal.token)
                .await?;
            println!(
                "{}",
                if answer.withdrawn {
                    "standing approval withdrawn: every payment now waits for a decision"
                } else {
                    "no standing approval stood"
                }
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn run_merchant(what: MerchantCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async move {
        match what {
            MerchantCommand::Enroll { enrol } => {
                let certificate = enrol
                    .enrolment()
                    .merchant()
                    .await
                    .context("enrolling the merchant")?;
                println!(
                    "enrolled merchant {} at {} ({}); file {}",
                    enrol.name,
                    enrol.processor,
                    certificate.subject(),
                    enrol.out.display()
                );
                Ok(ExitCode::SUCCESS)
            }
            MerchantCommand::Request {
                merchant,
                amount: text,
                reference,
                description,
                expires_in_secs,
                qr,
                then,
                wait_secs,
            } => {
                let me = PartyFile::load(&merchant)?;
                let terminal = me.merchant()?;
                let nonce = random16()?;
                let terms = Terms {
                    amount: amount(&me, &text)?,
                    reference,
                    description,
                    valid_ms: expires_in_secs.saturating_mul(1_000),
                };
                let trans = terminal.trans(terms, nonce)?;
                println!("{}", trans.to_uri());
                if qr {
                    println!("{}", trans.to_terminal_qr()?);
                }
                std::io::stdout().flush()?;
                let Some(then) = then else {
                    return Ok(ExitCode::SUCCESS);
                };
                let wait = Duration::from_secs(wait_secs);
                let started = std::time::Instant::now();
                let Some(notice) = terminal.notice_of(nonce, wait).await? else {
                    eprintln!("no payment arrived for this TRANS within {wait_secs} s");
                    return Ok(ExitCode::from(EXIT_TIMEOUT));
                };
                println!(
                    "notice {}: {} from customer {}",
                    notice.payment_id, notice.amount, notice.customer_pseudonym
                );
                print_shipping(notice.open_shipping(&terminal.keys, terminal.id));
                let decision = if then == "approve" {
                    Decision::Approve
                } else {
                    Decision::Reject {
                        reason: "rejected by the merchant".into(),
                    }
                };
                terminal.decide(&notice.payment_id, decision).await?;
                println!("{then}d {}", notice.payment_id);
                let left = wait.saturating_sub(started.elapsed());
                let view = terminal.wait_final(&notice.payment_id, left).await?;
                print_merchant_view(&view, false, &terminal)?;
                Ok(exit_of(Outcome::of_view(&view)))
            }
            MerchantCommand::Pending {
                merchant,
                wait_secs,
                json,
                ids,
            } => {
                let terminal = PartyFile::load(&merchant)?.merchant()?;
                let notices = terminal.notices(wait_secs.saturating_mul(1_000)).await?;
                let (keys, id) = (&terminal.keys, terminal.id);
                if json {
                    let list = notices
                        .iter()
                        .map(|n| {
                            Ok(with_shipping(
                                serde_json::to_value(n)?,
                                n.open_shipping(keys, id),
                            ))
                        })
                        .collect::<anyhow::Result<Vec<_>>>()?;
                    println!("{}", serde_json::to_string(&list)?);
                } else if ids {
                    for n in &notices {
                        println!("{}", n.payment_id);
                    }
                } else if notices.is_empty() {
                    println!("no payments await a decision");
                } else {
                    for n in &notices {
                        println!(
                            "{}  {:>14}  ref `{}`  customer {}  decide by {}",
                            n.payment_id,
                            n.amount,
                            n.merchant_reference,
                            n.customer_pseudonym,
                            deadline_text(n.deadline, wall_clock().0)
                        );
                        print_shipping(n.open_shipping(keys, id));
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            MerchantCommand::Approve {
                payment_id,
                merchant,
            } => {
                let terminal = PartyFile::load(&merchant)?.merchant()?;
                let view = terminal.decide(&payment_id, Decision::Approve).await?;
                print_merchant_view(&view, false, &terminal)?;
                Ok(ExitCode::SUCCESS)
            }
            MerchantCommand::Reject {
                payment_id,
                merchant,
                reason,
            } => {
                let terminal = PartyFile::load(&merchant)?.merchant()?;
                let view = terminal
                    .decide(&payment_id, Decision::Reject { reason })
                    .await?;
                print_merchant_view(&view, false, &terminal)?;
                Ok(ExitCode::SUCCESS)
            }
            MerchantCommand::Refund {
                payment_id,
                merchant,
                amount: text,
                reference,
                idempotency_key,
                wait_secs,
            } => {
                let me = PartyFile::load(&merchant)?;
                let terminal = me.merchant()?;
                let amount = amount(&me, &text)?;
                let key = match idempotency_key {
                    Some(text) => device::id16(&text, "an idempotency key")?,
                    None => terminal.refund_key(&payment_id, amount, &reference)?,
                };
                let refund = terminal
                    .refund(&payment_id, amount, key, Duration::from_secs(wait_secs))
                    .await?;
                println!(
                    "refund of {} for {}: {} (idempotency key {})",
                    refund.amount, payment_id, refund.state, refund.refund_key
                );
                Ok(ExitCode::SUCCESS)
            }
            MerchantCommand::Standing(what) => run_standing(what).await,
            MerchantCommand::Status {
                payment_id,
                merchant,
                wait_secs,
                json,
            } => {
                let terminal = PartyFile::load(&merchant)?.merchant()?;
                let view = terminal
                    .wait_final(&payment_id, Duration::from_secs(wait_secs))
                    .await?;
                print_merchant_view(&view, json, &terminal)?;
                Ok(exit_of(Outcome::of_view(&view)))
            }
        }
    })
}
