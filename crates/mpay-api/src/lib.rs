//! The mpay services' HTTP APIs as a client sees them, with no server and
//! no database in it, so the CLI and a phone's bindings link it alone:
//!
//! - [`ApiError`]: the body of every 4xx and 5xx answer of every service,
//!   `{"error": code, "message": text}`;
//! - [`schema`]: the OpenAPI schemas of the text forms the APIs share;
//! - [`semops`]: the JSON shapes of the CPP's, MPP's and DC's APIs and
//!   their clients ([`semops::CppClient`], [`semops::MppClient`],
//!   [`semops::DcClient`]);
//! - [`device`]: a customer's phone and a merchant's terminal over those
//!   clients: what each signs, and how each waits for a payment to end.
//!
//! The servers (`mpay-network`, `mpay-bank`, `mpay-office`) answer with
//! these same types, so a client and a server cannot disagree on a shape.

#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

pub mod device;
pub mod schema;
pub mod semops;

/// An error as a client sees it: the body of every 4xx and 5xx answer.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// A stable code (`not_found`, `malformed_json`, `insufficient_funds`, …).
    pub error: String,
    /// For people.
    pub message: String,
}

impl ApiError {
    /// The error with `code` and `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError {
            error: code.into(),
            message: message.into(),
        }
    }
}

/// The `Retry-After` of a 503 `busy` answer, in seconds: the service
/// changed nothing, and the same request may be sent again after it.
pub const BUSY_RETRY_AFTER_S: u32 = 1;
