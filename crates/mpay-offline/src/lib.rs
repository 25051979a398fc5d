//! The offline wallet's protocol core: the hash chain, the wallet messages,
//! and the two-phase commit as a sans-IO state machine ([`Wallet`]).
//!
//! Nothing here reads a clock, a socket, a file or a global RNG. Time comes
//! in as `now`; randomness from a seed given at construction; durable writes
//! leave as [`durable::WriteBatch`]es that a driver must make durable and
//! acknowledge before the messages that depend on them are released.

pub mod chain;
pub mod durable;
pub mod messages;
pub mod records;
pub mod sync;
mod wallet;

pub use wallet::*;

use std::fmt;

use mpay_wire::{Decode, DecodeError, Encode, Reader, Writer};

/// A transaction id: 16 random bytes chosen by the seller.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TxId(pub [u8; 16]);

impl TxId {
    pub fn short(&self) -> String {
        mpay_identity::hex_string(&self.0[..4])
    }
}

impl fmt::Debug for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TxId({})", self.short())
    }
}

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mpay_identity::hex_string(&self.0))
    }
}

impl Encode for TxId {
    fn encode(&self, w: &mut Writer) {
        w.raw(&self.0);
    }
}

impl Decode for TxId {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(TxId(r.array("tx id")?))
    }
}
