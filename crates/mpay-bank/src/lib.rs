//! The bank of the SEMOPS network (DESIGN §3.1–3.2): a double-entry ledger
//! with accounts, holds, transfers, notifications, and interbank transfers
//! through settlement accounts. One currency per bank. Every request is
//! idempotent by (caller, request id); no account goes below its floor.
//!
//! - [`ledger`]: the rules as pure values (account ids and floors, the funds
//!   check, the hold life cycle, requests and their canonical hash, receipts);
//! - [`interbank`]: the interbank messages and the receiver's decision;
//! - [`bank`]: the service over its database (SQLite or PostgreSQL, through
//!   `mpay-sql`), one transaction per operation;
//! - [`identity`]: the bank's keys and certificate, and a scheme root to
//!   issue them in tests and on one machine;
//! - [`config`]: currency, scheme roots, peers, API tokens and callers;
//! - [`mandate`]: what a processor may do on accounts not its own;
//! - [`http`]: the axum router and the reqwest [`BankClient`];
//! - [`service`]: the drivers (outbox delivery, hold expiry, serving).
//!
//! # The books
//!
//! Every movement is one posting in the journal (`bank_postings`: debit
//! account, credit account, amount > 0, reason, reference); a balance is its
//! credits minus its debits, and the balances of all accounts sum to zero.
//! Accounts:
//!
//! | account | floor | what it is |
//! |---|---|---|
//! | `external` | none | the outside world; deposits are `external` → account |
//! | `settlement:<peer bank id>` | none | what this bank owes the peer (positive) or is owed (negative) |
//! | `suspense` | none | a returned transfer whose account is gone |
//! | `<prefix>:<name>` (`cust:alice`, `cpp:cpp1`, `shop:bob`) | 0, or a negative overdraft | a holder's account, opened by the operator |
//!
//! A **hold** reserves funds: `available = balance - held`, where `held` is
//! the sum of the account's pending holds, and every debit and every new hold
//! must leave `balance - held ≥ floor`. A hold is *pending*, then exactly
//! one of *posted* (its amount is paid to an account here, or through
//! `settlement:<peer>` to another bank; only before its expiry), *voided*,
//! or *expired* ([`Bank::expire_holds`], run periodically by
//! [`service::spawn_background`]). [`Bank::check_books`] verifies it all:
//! Σ balances = 0, balances = postings, held = Σ pending holds, floors hold.
//!
//! Every posting or hold event on a holder account leaves a notification
//! (`credited`, `debited`, `hold_placed`, `hold_posted`, `hold_voided`,
//! `hold_expired`, with the amount, balance and available after, the
//! reference and the time), paged by id (`GET
//! /v1/accounts/{id}/notifications?after=<id>`).
//!
//! # Idempotency
//!
//! Each operation takes the caller's request id (the `Idempotency-Key`
//! header) and runs in one transaction with `mpay_sql::idempotency`, scope
//! `bank:<caller>`, bound to the BLAKE3 hash of the request's canonical
//! `mpay-wire` encoding ([`ledger::BankRequest`]). A repeat with the same
//! body returns the stored receipt; another body under the same id is
//! refused. A refused request (insufficient funds, an expired hold, …)
//! stores nothing and changes nothing, so repeating it asks again.
//!
//! # The interbank protocol
//!
//! Bank A pays X to account `acc` at bank B:
//!
//! 1. In one transaction, A debits the payer's account, credits
//!    `settlement:B`, records the [`interbank::InterbankMessage`] (a random
//!    16-byte id) and puts it in its outbox (durable before visible).
//! 2. A's delivery loop ([`service::deliver_due`]) seals the message afresh
//!    at each attempt — signed by A, sealed to B, kind `0x0301`
//!    INTERBANK_TRANSFER, envelope transaction id = message id — and POSTs
//!    it to B's `/v1/interbank`, retrying with the outbox's backoff
//!    (1 s doubling to 10 s, forever) until B acknowledges. A fresh frame
//!    per attempt, because the envelope refuses frames older than 5 minutes.
//! 3. B opens and verifies the frame (a configured peer, a `Bank`
//!    certificate under a trusted scheme root, the signature, the receiver,
//!    freshness, the replay guard) and, in one transaction and once per
//!    (A, message id), debits `settlement:A` and credits `acc`. If `acc`
//!    is not a holder account at B (or the currency is not B's), B books
//!    nothing and puts a return message (reason `returned`, id derived from
//!    the original) in its own outbox; A credits the payer back from
//!    `settlement:B` when it arrives. A return that cannot be credited goes
//!    to `suspense` and is never returned again. Money is never lost.
//! 4. B answers a sealed INTERBANK_ACK (`0x0302`) with the outcome
//!    (`credited`, `returned`, `suspense`); a repeat of an applied message
//!    gets the same answer and changes nothing. A checks the ack and marks
//!    the message delivered ([`Bank::sent_transfer`] shows the outcome).
//!
//! Once everything is delivered, A's `settlement:B` and B's `settlement:A`
//! are opposite; the sum over both banks of every holder account and
//! `external` is what was deposited. Tampered, wrongly sealed, stale,
//! replayed or foreign frames are refused (4xx: `interbank_refused`, or
//! `unknown_bank` for a sender that is not a peer) and change nothing; so is
//! a return that is not exactly the return of a message this bank sent to
//! that peer (a peer cannot make money by "returning" it).
//!
//! # Who may do what
//!
//! Callers authenticate with `Authorization: Bearer <token>`; the
//! configuration maps each token ([`config::ApiToken`]) to a
//! [`config::Caller`]: a name (its idempotency scope) and account patterns
//! (`*`, `cust:*`, `cpp:cpp1`).
//!
//! - The **operator** opens accounts and deposits, and may act on every
//!   account.
//! - Any caller acts directly on the accounts its patterns match: pays from
//!   them (transfer, interbank transfer), holds on them, reads them and
//!   their notifications, grants and revokes mandates on them; it may pay
//!   *to* any holder account.
//! - On any other account a processor acts only under a **mandate**
//!   ([`mandate`]): granted by the holder or the operator at enrolment,
//!   for named operations (`hold`, `debit`, `read`), capped per operation,
//!   a debit paying only a processor's account, revocable.
//! - A hold is posted or voided by the caller that placed it, or the
//!   operator; it is read by its placer or a caller allowed to read its
//!   account.
//! - `POST /v1/interbank` takes no token: the envelope authenticates the
//!   peer bank.
//!
//! A CPP is `Caller::new("cpp1", [cpp:cpp1])` with a mandate on each
//! customer's account: it holds on it, posts holds to merchants' accounts
//! (here or at their bank), and aggregates micropayments with transfers
//! `cust:<name>` → `cpp:cpp1`. A customer's app gets a token for its own
//! account only.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bank;
pub mod config;
pub mod http;
pub mod identity;
pub mod interbank;
pub mod ledger;
pub mod mandate;
pub mod service;

pub use bank::{Bank, BankError, MIGRATIONS};
pub use config::{AccountPattern, ApiToken, BankConfig, Caller, PeerBank};
pub use http::{BankClient, BooksJson, ClientError, router};
pub use identity::{BankIdentity, SchemeRoot, issue_bank_certificate};
pub use ledger::{
    AccountId, AccountView, Deposit, Destination, HoldId, HoldState, HoldView, InterbankId,
    InterbankReceipt, InterbankTransfer, Notification, NotificationKind, OpenAccount, PlaceHold,
    PostHold, Transfer, TransferReceipt, VoidHold,
};
pub use mandate::{Mandate, Operation};
pub use service::{Background, deliver_due, spawn_background};
