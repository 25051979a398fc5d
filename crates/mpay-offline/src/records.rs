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
use crate::messages::Shipping;

pub mod meta {
    pub const SECRET_KEYS: &str = "secret_keys";
    pub const CERTIFICATE: &str = "certificate";
    pub const OFFICE_CERTIFICATE: &str = "office_certificate";
    pub const REVOCATION_LIST: &str = "revocation_list";
    /// The office's latest signed [`crate::sync::SyncAttestation`].
    pub const ATTESTATION: &str = "attestation";
    /// Followed by a transaction id in hex: the shipping details the buyer
    /// of that sale shared (written with the sale's `Receive` entry; kept in
    /// the wallet's store only, never in the chain the office reads).
    pub const SHIPPING_PREFIX: &str = "shipping/";
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum TxRecord {
    /// Buyer: agreed and locked `amount` with the `Pay` entry `pay_seq`;
    /// `shipping` is what its AGREED shares with the seller (kept so a
    /// resent AGREED after a restart says the same). Tag 1 without shipping
    /// details, 4 with them.
    BuyerPrepared {
        seller: PartyId,
        amount: Amount,
        pay_seq: u64,
        claim_deadline: Timestamp,
        shipping: Option<Shipping>,
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
                shipping,
            } => {
                w.u8(if shipping.is_some() { 4 } else { 1 })
                    .put(seller)
                    .put(amount)
                    .u64(*pay_seq)
                    .put(claim_deadline);
                if let Some(shipping) = shipping {
                    w.put(shipping);
                }
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
            tag @ (1 | 4) => TxRecord::BuyerPrepared {
                seller: r.get()?,
                amount: r.get()?,
                pay_seq: r.u64("pay seq")?,
                claim_deadline: r.get()?,
                shipping: if tag == 4 { Some(r.get()?) } else { None },
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
