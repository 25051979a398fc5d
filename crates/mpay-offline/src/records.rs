//! The durable records of the wallet's transaction log (the UNDO/REDO log of
//! paper 000, §2.1.3) and the names of its meta values.
//!
//! The chain is the REDO log: a buyer's `Pay` entry is the new state it will
//! have after COMMIT. The buyer's `Prepared` record is the UNDO record and the
//! lock: while it exists the amount is locked, and ABORT restores it with a
//! `Void` entry carrying the proof. The seller's `Committed` record is the COMMIT record of the
//! paper; deleting it is the COMPLETE record ("forget").

use mpay_identity::{PartyId, Timestamp};
use mpay_money::Amount;
use mpay_wire::{Decode, DecodeError, Encode, Reader, Writer};

use crate::chain::ChainEntry;

pub mod meta {
    pub const SECRET_KEYS: &str = "secret_keys";
    pub const CERTIFICATE: &str = "certificate";
    pub const OFFICE_CERTIFICATE: &str = "office_certificate";
    pub const REVOCATION_LIST: &str = "revocation_list";
    /// The office's latest signed [`crate::sync::SyncAttestation`].
    pub const ATTESTATION: &str = "attestation";
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum TxRecord {
    /// Buyer: agreed and locked `amount` with the `Pay` entry `pay_seq`.
    BuyerPrepared {
        seller: PartyId,
        amount: Amount,
        pay_seq: u64,
        claim_deadline: Timestamp,
    },
    /// Seller: committed with the buyer's `authorization`, recorded as the
    /// `Receive` entry `receive_seq`; COMMIT not yet acknowledged.
    SellerCommitted {
        buyer: PartyId,
        authorization: Box<ChainEntry>,
        receive_seq: u64,
    },
}

impl Encode for TxRecord {
    fn encode(&self, w: &mut Writer) {
        match self {
            TxRecord::BuyerPrepared {
                seller,
                amount,
                pay_seq,
                claim_deadline,
            } => {
                w.u8(1)
                    .put(seller)
                    .put(amount)
                    .u64(*pay_seq)
                    .put(claim_deadline);
            }
            TxRecord::SellerCommitted {
                buyer,
                authorization,
                receive_seq,
            } => {
                w.u8(3).put(buyer).put(authorization).u64(*receive_seq);
            }
        }
    }
}

impl Decode for TxRecord {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8("tx record")? {
            1 => TxRecord::BuyerPrepared {
                seller: r.get()?,
                amount: r.get()?,
                pay_seq: r.u64("pay seq")?,
                claim_deadline: r.get()?,
            },
            3 => TxRecord::SellerCommitted {
                buyer: r.get()?,
                authorization: r.get()?,
                receive_seq: r.u64("receive seq")?,
            },
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "tx record",
                    tag,
                });
            }
        })
    }
}
