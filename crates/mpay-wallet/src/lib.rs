//! The offline wallet as an application library: what a phone app (or the
//! `mpay wallet` command, or the bindings in `mpay-wallet-ffi`) does with a
//! wallet, behind one small typed API.
//!
//! A wallet lives in a directory:
//!
//! - `wallet.db` and its key file `wallet.db.kdf`: the encrypted store
//!   (SQLCipher, key derived from the PIN by Argon2id). It holds the keys, the
//!   certificate, the hash chain, the transaction log and, under the meta key
//!   [`files::OFFICE_TOKEN_META`], the owner's office token;
//! - `wallet.json`: non-secret settings (office URL, owner name, wallet id);
//! - `wallet.lock`: held by the one handle that may change the wallet.
//!
//! [`Wallet::create`] / [`Wallet::open`] take the PIN; then
//! [`Wallet::enroll`], [`Wallet::charge`], [`Wallet::sync`],
//! [`Wallet::redeem`], [`Wallet::balance_info`], [`Wallet::history`],
//! [`Wallet::profile`] / [`Wallet::set_profile`] (the owner's payment
//! information, certificate, shipping and billing details, encrypted),
//! [`Wallet::backup`], [`Wallet::restore`], [`Wallet::change_pin`] need no
//! radio; [`Wallet::sell`], [`Wallet::buy`] and [`Wallet::resume`] run the
//! engine over UDP for the length of the call, tell a [`Listener`] how it
//! goes and stop early, where nothing has moved yet, when their
//! [`CancelHandle`] is raised. Every failure is one [`WalletError`], whose
//! variant is the kind (wrong PIN, insufficient funds, no buyer nearby, …)
//! and whose message is for the owner.
//!
//! Terminal prompts, QR codes, JSON and exit codes are the CLI's; this
//! library prints nothing and reads no environment variable (the office
//! client's plaintext allowance aside, which `mpay-tls` reads).

#![forbid(unsafe_code)]

mod error;
pub mod files;
mod profile;
mod trade;
mod wallet;

pub use error::{WalletError, abort_text};
pub use mpay_identity::{Limits, PartyId, Timestamp};
pub use mpay_money::{Amount, Currency};
pub use mpay_offline::sync::SyncAttestation;
pub use mpay_offline::{Event, TxId};
pub use mpay_wallet_net::{BroadcastTo, PaymentRequest, PurchaseOutcome};
pub use profile::{PROFILE_CERTIFICATE_LEN_MAX, PROFILE_META, PROFILE_TEXT_LEN_MAX, Profile};
pub use trade::{
    ABORT_LINGER_MS, ACK_LINGER_MS_MAX, ACK_QUIET_MS, BuyRequest, CancelHandle,
    DESCRIPTION_LEN_MAX, Listener, NetOptions, Progress, Resumed, Sale, SellRequest, WAIT_SECS_MAX,
    describe, parse_broadcast, parse_party,
};
pub use wallet::{
    Access, BACKUP_WARNING, BalanceInfo, Charged, Enrolment, EntryKindName, HistoryEntry, KdfCost,
    NewWallet, PIN_LEN_MAX, PayStatus, Prepared, Redeemed, Restored, SYNC_ROUNDS_MAX, SyncReport,
    TEXT_LEN_MAX, Wallet, check_pin, token_of_another_owner,
};
