//! The SEMOPS network end to end in one process: two banks, two regions,
//! CPP, DCs and MPPs on real HTTP over loopback, every database of the
//! backend under test (`for_each_backend`: SQLite, then PostgreSQL). Every
//! test that moves money checks conservation and that every hold ended
//! posted or voided.

// Amounts in cents are written euros_cents (`12_50` is 12.50 EUR).
#![allow(clippy::inconsistent_digit_grouping)]

mod batches;
mod errors;
mod flows;
mod harness;
mod limits;
mod micro;
mod pins;
mod replay;
mod shipping;
mod standing;
mod transport;
