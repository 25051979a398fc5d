//! `mpay-micro`: micropayment aggregation at the CPP (DESIGN §3.3, paper 002
//! §III), as a library the CPP service calls, plus the evaluation harness.
//!
//! - [`policy`] — the CPP's rule, pure: macro / defer (DT confirmation) /
//!   settle the whole pending total at θ (T confirmation) / refuse; the
//!   window W; what a failed settlement transfer does.
//! - [`pending`] — the pending structure in memory ([`pending::Aggregator`]):
//!   a customer's open micropayments and their sum in O(1), a time-ordered
//!   index for the window sweep, batches in flight, exposure.
//! - [`store`] — the same on mpay-sql (SQLite and PostgreSQL): append-only
//!   log + index, batches started / settled / failed, crash recovery.
//! - [`intermediary`] — one and two intermediaries: who owes whom, credit
//!   limits, net settlement per pair of processors.
//! - [`cluster`] — k-means (linfa) over customers' behaviour, θ and W per
//!   cluster with caps and a Beta prior; called by `mpay cpp recluster`,
//!   never on the payment path.
//! - [`eval`] — the seeded synthetic workload and the comparison of three
//!   policies (`mpay bench micro`).
//!
//! Pure except [`store`]: time comes in as `now`, randomness from seeds.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cluster;
pub mod eval;
pub mod intermediary;
pub mod pending;
pub mod policy;
pub mod store;
