//! The offline wallet's protocol core.

pub mod durable;
