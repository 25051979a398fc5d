//! The pure cores of the SEMOPS processors.
//!
//! A core knows no SQL, HTTP, clock or task (this crate's `Cargo.toml`
//! shows it): a transition takes the old state by value, the input and
//! `now`, and returns the next state and the effects the driver must carry
//! out (bank calls, messages, confirmations). The drivers in `mpay-network`
//! read the clock, load and store the state, and execute the effects in the
//! same database transaction as the state change.
//!
//! [`payment`]: a payment's life cycle at the customer's payment processor;
//! [`merchant`]: a payment's states at the merchant's payment processor;
//! [`refund`]: a refund's saga, one for both processors; [`route`]: the data
//! center's routing decisions; [`saga`]: which bank call a saga state needs,
//! under which key, and what its answer means.

pub mod merchant;
pub mod payment;
pub mod refund;
pub mod route;
pub mod saga;
