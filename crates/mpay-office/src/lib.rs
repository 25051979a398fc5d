//! The money office (DESIGN §2.1, §2.3): it enrols wallets (certificates with
//! limits), charges them from their owners' accounts (signed vouchers), takes
//! their chains back at sync, credits redemptions, resolves payments whose
//! buyer is uncertain after the claim deadline, and catches anyone who spends
//! the same money twice.
//!
//! - [`audit`]: the judgement of one sync, a pure function;
//! - [`office`]: the service over its database (SQLite or PostgreSQL);
//! - [`http`]: its HTTP API and a client.

pub mod audit;
pub mod http;
pub mod office;

pub use office::{
    Enrolment, FraudRecord, MIGRATIONS, Office, OfficeConfig, OfficeError, accounts, sign_enrolment,
};
