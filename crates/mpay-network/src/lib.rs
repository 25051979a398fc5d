//! The SEMOPS network services (DESIGN §3.1–3.2, paper 002 §II): the
//! customer payment processor ([`cpp`]), the data center ([`dc`]) and the
//! merchant payment processor ([`mpp`]), each its own process with its own
//! database, talking over HTTP in sealed `mpay-envelope` frames.
//!
//! - [`directory`]: who the banks and services are (a TOML file);
//! - [`party`]: a customer's or merchant's own file, and enrolment;
//! - [`load`]: the load harness of the benchmarks and `mpay chaos`;
//! - [`config`]: one TOML file per service process, with env overrides;
//! - [`client`]: the JSON shapes of the APIs and the reqwest clients
//!   (`mpay-api`, re-exported: a client links that crate alone);
//! - `node` (private): what every service is made of: the checked
//!   directory and identity, the envelope inbox, the transactional outbox
//!   and its delivery loop (kicked after each commit), long-poll waiters;
//! - `money` (private): the transfers a service asks of its bank; those
//!   that wait for money ask under numbered attempts;
//! - [`cpp`], [`dc`], [`mpp`]: the services, each with `serve` (the
//!   process entry point) and `start` (on an open database, for tests).
//!
//! # Between services
//!
//! Every message is an envelope frame signed by the sending hop and sealed
//! to the next, POSTed to the receiver's `/v1/inbox`. The receiver checks
//! that the sender is a directory service of a role allowed for that kind,
//! applies the message idempotently in one transaction and answers 200 only
//! after the commit; a repeat changes nothing and is acknowledged.
//! Whatever a service sends is written to its outbox in the transaction of
//! the state change and delivered until acknowledged, sealed afresh at each
//! attempt.
//!
//! ```text
//! customer ─PR─▶ CPP ─PN (RoutedNotice)─▶ DC ─▶ (DC of the MPP's region) ─▶ MPP ─▶ merchant
//! merchant ─decision─▶ MPP ─DecisionRelay─▶ DC ─▶ (DC) ─▶ CPP: hold posted / voided
//! CPP ─Confirmation (T, rejected, expired, refunded)─▶ DC ─▶ (DC) ─▶ MPP
//! merchant ─refund─▶ MPP (shop → cpp account) ─RefundRelay─▶ DC ─▶ (DC) ─▶ CPP (cpp → customer)
//! ```

#![forbid(unsafe_code)]

/// `From` a client's, a message's and a transport's error into the
/// `Device` variant (a [`mpay_api::device::DeviceError`]) of `$error`, so
/// `?` carries each of them there in one step.
macro_rules! device_error_from {
    ($error:ident) => {
        impl From<mpay_api::semops::ClientError> for $error {
            fn from(error: mpay_api::semops::ClientError) -> $error {
                $error::Device(mpay_api::device::DeviceError::Client(error))
            }
        }

        impl From<mpay_semops::SemopsError> for $error {
            fn from(error: mpay_semops::SemopsError) -> $error {
                $error::Device(mpay_api::device::DeviceError::Semops(error))
            }
        }

        impl From<mpay_tls_client::TlsError> for $error {
            fn from(error: mpay_tls_client::TlsError) -> $error {
                $error::from(mpay_api::semops::ClientError::Transport(error))
            }
        }
    };
}
pub(crate) use device_error_from;

pub mod ack;
pub mod api;
pub mod bank_file;
pub use mpay_api::semops as client;
pub mod config;
pub mod cpp;
pub mod dc;
pub mod directory;
pub mod load;
pub mod micro;
mod money;
pub mod mpp;
mod node;
pub mod party;
pub mod provision;
pub mod reconcile;

pub use ack::{INBOX_ACK, InboxAck};
pub use api::{ApiError, NetError, wall_clock};
pub use client::{ClientError, CppClient, DcClient, MppClient};
pub use config::{ConfigError, MicroConfig, MicroMode, ServiceConfig, Timing};
pub use directory::{BankEntry, Directory, ResolvedDirectory, ServiceEntry, ServiceRole};
pub use node::{Running, ServeError};
