//! `mpay wallet …`: the offline wallet as a person uses it on a phone.
//!
//! A wallet lives in a directory (`--dir`, env `MPAY_WALLET_DIR`, default
//! `./mpay-wallet`): the encrypted store, the settings and the lock that
//! [`mpay_wallet`] describes. The flows are that library's
//! ([`mpay_wallet::Wallet`]); these commands parse arguments, ask for the PIN
//! and choices on the terminal, and print text or one JSON object. Every
//! command exits with one of the codes in [`EXIT_CODES_HELP`]
//! ([`exit::Exit`], chosen by the kind of [`mpay_wallet::WalletError`]).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};

mod exit;
mod files;
mod manage;
pub(crate) mod output;
mod trade;

use exit::Failure;
use output::Out;

/// The exit codes, as `mpay wallet --help` shows them.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0   done
  1   any other error (bad input, the office refused the request, damaged
      files, …)
  2   command-line usage error
  3   wrong PIN
  4   insufficient funds in this wallet or the owner's office account
  5   no buyer nearby (or the named buyer did not answer)
  6   refused: the peer refused (the buyer lacks funds, …), a peer is
      revoked or expired, the seller aborted
  7   limit exceeded (your --max, the per-payment or offline balance limit)
  8   money office unreachable (or unavailable)
  9   double spend detected: this wallet is revoked, or its chain forks from
      the office's (a copied or restored wallet)
  10  timeout: the deadline passed before the outcome was known
  11  several buyers nearby and no terminal to choose: pass --buyer ID

Environment: MPAY_WALLET_DIR, MPAY_PIN (the PIN, instead of a prompt),
MPAY_OWNER_TOKEN (the owner's office token, for init/enroll/charge),
MPAY_OFFICE_URL, MPAY_WALLET_BIND, MPAY_WALLET_BROADCAST.
Secrets (PIN, token, keys) are never printed.";

/// The wallet's directory when neither `--dir` nor `MPAY_WALLET_DIR` names one.
const DIR_DEFAULT: &str = "./mpay-wallet";

/// Options every wallet command takes. They belong to `mpay wallet` and are
/// global, so they may stand before or after the subcommand
/// (`mpay wallet --dir alice init …` and `mpay wallet init --dir alice …`).
#[derive(Args, Clone, Debug)]
pub struct Common {
    /// The wallet's directory.
    #[arg(long, global = true, env = "MPAY_WALLET_DIR", default_value = DIR_DEFAULT)]
    pub dir: PathBuf,
    /// Print one JSON object on stdout instead of text for people.
    #[arg(long, global = true)]
    pub json: bool,
    /// Money office URL, overriding the one the wallet was created with.
    #[arg(long, global = true, env = "MPAY_OFFICE_URL")]
    pub office: Option<String>,
    /// Read the PIN from the first line of this file (otherwise env
    /// `MPAY_PIN`, otherwise a prompt).
    #[arg(long, global = true)]
    pub pin_file: Option<PathBuf>,
}

impl Default for Common {
    /// Only a placeholder: [`run`] replaces it with the parsed options.
    fn default() -> Common {
        Common {
            dir: PathBuf::from(DIR_DEFAULT),
            json: false,
            office: None,
            pin_file: None,
        }
    }
}

/// Options of the commands that talk to wallets nearby over UDP.
#[derive(Args, Clone, Debug)]
pub struct NetArgs {
    /// Local UDP address of this wallet (port 0: any free port).
    #[arg(long, env = "MPAY_WALLET_BIND", default_value = "127.0.0.1:0")]
    pub bind: SocketAddrV4,
    /// Where LOOKUPs go: `multicast` (239.255.77.77:47701),
    /// `multicast:GROUP:PORT`, `lan:ADDRESS:PORT` (UDP broadcast) or
    /// `peers:ADDR:PORT,ADDR:PORT,…` (a unicast copy to each).
    #[arg(long, env = "MPAY_WALLET_BROADCAST", default_value = "multicast")]
    pub broadcast: String,
    /// Address of the interface that joins the multicast group.
    #[arg(long, default_value = "127.0.0.1")]
    pub interface: Ipv4Addr,
    /// Test knob: drop this share of received datagrams at random, per
    /// mille (300 = 30 %).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub drop_permille: u32,
}

/// Cost of the key derivation from the PIN.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kdf {
    /// Argon2id with OWASP's parameters (19 MiB, 2 passes).
    Default,
    /// The cheapest parameters: for tests only, a short PIN is then easy
    /// to brute-force.
    Fast,
}

#[derive(Subcommand)]
pub enum WalletCommand {
    /// Create a wallet: new keys, an encrypted store, enrolment with the
    /// money office.
    Init(InitArgs),
    /// Enrol a wallet whose `init` could not reach the money office.
    Enroll(EnrollArgs),
    /// Load value from the owner's office account into the wallet, then sync.
    Charge(ChargeArgs),
    /// Balance, locked amount, last sync and revocation status.
    Balance,
    /// The wallet's chain entries, newest first.
    History(HistoryArgs),
    /// Sell to a wallet nearby that is in buyer mode.
    Sell(SellArgs),
    /// Enter buyer mode: pay one seller's request up to --max.
    Buy(BuyArgs),
    /// Finish what a crash or an exit left open (uncertain payments,
    /// unacknowledged sales), answering wallets nearby meanwhile.
    Resume(ResumeArgs),
    /// Upload the chain to the money office and apply its answer.
    Sync,
    /// Hand value back to the owner's office account, then sync.
    Redeem(RedeemArgs),
    /// Write an encrypted copy of the wallet to a new directory.
    Backup(BackupArgs),
    /// Replace the wallet with a backup.
    Restore(RestoreArgs),
    /// Change the PIN (re-encrypts the store).
    ChangePin(ChangePinArgs),
    /// The owner's payment information, certificate, shipping and billing
    /// details, kept encrypted in the store.
    Profile(ProfileArgs),
}

#[derive(Args)]
pub struct ProfileArgs {
    #[arg(skip)]
    pub common: Common,
    #[command(subcommand)]
    pub what: ProfileCommand,
}

#[derive(Subcommand)]
pub enum ProfileCommand {
    /// Set the fields given (the others stay); an empty value clears one.
    Set {
        /// How the owner pays (an account, a card reference, …).
        #[arg(long)]
        payment: Option<String>,
        /// A file holding the owner's identity certificate (PEM or text).
        #[arg(long)]
        certificate_file: Option<PathBuf>,
        /// Where goods go.
        #[arg(long)]
        shipping: Option<String>,
        /// Where invoices go.
        #[arg(long)]
        billing: Option<String>,
    },
    /// Show the profile.
    Show,
}

#[derive(Args)]
pub struct InitArgs {
    #[arg(skip)]
    pub common: Common,
    /// The owner's name at the money office.
    #[arg(long)]
    pub owner: String,
    /// The owner's office token (prefer env `MPAY_OWNER_TOKEN`: a command
    /// line is visible to other users of the machine). Kept encrypted in the
    /// wallet's store.
    #[arg(long, env = "MPAY_OWNER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Cost of deriving the store's key from the PIN.
    #[arg(long, value_enum, default_value = "default")]
    pub kdf: Kdf,
    /// Create the keys and the store only; enrol later with `enroll`.
    #[arg(long)]
    pub no_enroll: bool,
}

#[derive(Args)]
pub struct EnrollArgs {
    #[arg(skip)]
    pub common: Common,
    /// The owner's office token, if not the one stored at `init`.
    #[arg(long, env = "MPAY_OWNER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Args)]
pub struct ChargeArgs {
    #[arg(skip)]
    pub common: Common,
    /// Amount, like `20.00` (the wallet's currency) or `20.00 EUR`.
    #[arg(required = true, num_args = 1..=2)]
    pub amount: Vec<String>,
    /// The owner's office token, if not the one stored at `init`.
    #[arg(long, env = "MPAY_OWNER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Repeat an earlier charge whose answer was lost: the office returns
    /// the same voucher and charges once.
    #[arg(long)]
    pub idempotency_key: Option<String>,
}

#[derive(Args)]
pub struct HistoryArgs {
    #[arg(skip)]
    pub common: Common,
    /// Show at most this many entries.
    #[arg(long)]
    pub limit: Option<usize>,
}

#[derive(Args)]
pub struct SellArgs {
    #[arg(skip)]
    pub common: Common,
    #[command(flatten)]
    pub net: NetArgs,
    /// Amount to ask, like `12.50` or `12.50 EUR`.
    #[arg(long)]
    pub amount: String,
    /// The buyer's wallet id (from its screen or QR code).
    #[arg(long)]
    pub buyer: Option<String>,
    /// What is sold, shown to the buyer.
    #[arg(long, default_value = "")]
    pub description: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 30)]
    pub wait: u64,
    /// Without --buyer: how long to collect the buyers that answer, seconds.
    #[arg(long, default_value_t = 2)]
    pub lookup_secs: u64,
}

#[derive(Args)]
pub struct BuyArgs {
    #[arg(skip)]
    pub common: Common,
    #[command(flatten)]
    pub net: NetArgs,
    /// Most you agree to pay, like `20.00` or `20.00 EUR`.
    #[arg(long)]
    pub max: String,
    /// Pay only this seller (wallet id).
    #[arg(long)]
    pub seller: Option<String>,
    /// Leave buyer mode after this many seconds.
    #[arg(long, default_value_t = 60)]
    pub wait: u64,
    /// Do not ask for confirmation before entering buyer mode.
    #[arg(long)]
    pub yes: bool,
    /// Show the wallet id as a QR code.
    #[arg(long)]
    pub qr: bool,
    /// Share the shipping details of your profile (`mpay wallet profile
    /// set --shipping`) with the seller you pay: sealed to that seller
    /// inside the payment; the money office and other wallets never see
    /// them.
    #[arg(long)]
    pub share_shipping: bool,
}

#[derive(Args)]
pub struct ResumeArgs {
    #[arg(skip)]
    pub common: Common,
    #[command(flatten)]
    pub net: NetArgs,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 30)]
    pub wait: u64,
    /// Keep answering wallets nearby until --wait even once nothing of this
    /// wallet is pending.
    #[arg(long)]
    pub stay: bool,
}

#[derive(Args)]
pub struct RedeemArgs {
    #[arg(skip)]
    pub common: Common,
    /// Amount, like `20.00` or `20.00 EUR`.
    #[arg(required = true, num_args = 1..=2)]
    pub amount: Vec<String>,
}

#[derive(Args)]
pub struct BackupArgs {
    #[arg(skip)]
    pub common: Common,
    /// New directory for the copy (must not exist or be empty).
    pub dest: PathBuf,
}

#[derive(Args)]
pub struct RestoreArgs {
    #[arg(skip)]
    pub common: Common,
    /// A directory written by `mpay wallet backup`.
    pub src: PathBuf,
    /// Replace an existing wallet (its files are moved aside, not deleted).
    #[arg(long)]
    pub force: bool,
}

#[derive(Args)]
pub struct ChangePinArgs {
    #[arg(skip)]
    pub common: Common,
    /// Read the new PIN from the first line of this file (otherwise env
    /// `MPAY_NEW_PIN`, otherwise a prompt).
    #[arg(long)]
    pub new_pin_file: Option<PathBuf>,
    /// Cost of deriving the store's key from the new PIN.
    #[arg(long, value_enum, default_value = "default")]
    pub kdf: Kdf,
}

/// Runs a wallet command with the options given to `mpay wallet`.
/// Failures are reported here (text on stderr, or one JSON object on stdout
/// with `--json`) and become the exit code.
pub fn run(common: Common, command: WalletCommand) -> anyhow::Result<ExitCode> {
    let out = Out::new(common.json);
    let result: Result<(), Failure> = match command {
        WalletCommand::Init(mut a) => {
            a.common = common;
            manage::init(&out, a)
        }
        WalletCommand::Enroll(mut a) => {
            a.common = common;
            manage::enroll(&out, a)
        }
        WalletCommand::Charge(mut a) => {
            a.common = common;
            manage::charge(&out, a)
        }
        WalletCommand::Balance => manage::balance(&out, &common),
        WalletCommand::History(mut a) => {
            a.common = common;
            manage::history(&out, a)
        }
        WalletCommand::Sync => manage::sync(&out, &common),
        WalletCommand::Redeem(mut a) => {
            a.common = common;
            manage::redeem(&out, a)
        }
        WalletCommand::Backup(mut a) => {
            a.common = common;
            manage::backup(&out, a)
        }
        WalletCommand::Restore(mut a) => {
            a.common = common;
            manage::restore(&out, a)
        }
        WalletCommand::ChangePin(mut a) => {
            a.common = common;
            manage::change_pin(&out, a)
        }
        WalletCommand::Sell(mut a) => {
            a.common = common;
            trade::sell(&out, a)
        }
        WalletCommand::Buy(mut a) => {
            a.common = common;
            trade::buy(&out, a)
        }
        WalletCommand::Resume(mut a) => {
            a.common = common;
            trade::resume(&out, a)
        }
        WalletCommand::Profile(mut a) => {
            a.common = common;
            manage::profile(&out, a)
        }
    };
    Ok(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            out.failure(&failure);
            ExitCode::from(failure.exit.code())
        }
    })
}
