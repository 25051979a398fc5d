//! The wallet's hash chain (DESIGN §2.3): every change of balance is an entry
//! signed by the wallet, numbered +1 and linked to the previous entry's hash.
//! A buyer's payment authorization is such an entry (`Pay`), so the money
//! office can later prove a double spend: two different entries with the same
//! (wallet, sequence).

use mpay_envelope::Header;
use mpay_identity::{
    Certificate, PartyId, PublicKeys, SecretKeys, Signature, Timestamp, hex_string, tags,
};
use mpay_money::Amount;
use mpay_wire::{Decode, DecodeError, Encode, Reader, Writer};

use crate::TxId;
use crate::sync::Resolution;

pub type EntryHash = [u8; 32];

/// The hash of the entry before the first.
pub const GENESIS_PREV_HASH: EntryHash = [0; 32];

/// A money office's signed promise that `wallet` may add `amount` to its
/// balance, once (by `charge_id`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ChargeVoucher {
    pub office: PartyId,
    pub wallet: PartyId,
    pub charge_id: [u8; 16],
    pub amount: Amount,
    pub issued_at: Timestamp,
    pub signature: Signature,
}

impl ChargeVoucher {
    fn signed_bytes(
        office: PartyId,
        wallet: PartyId,
        charge_id: &[u8; 16],
        amount: Amount,
        issued_at: Timestamp,
    ) -> Vec<u8> {
        let mut w = Writer::new();
        w.put(&office)
            .put(&wallet)
            .raw(charge_id)
            .put(&amount)
            .put(&issued_at);
        w.into_bytes()
    }

    pub fn issue(
        office: PartyId,
        office_keys: &SecretKeys,
        wallet: PartyId,
        charge_id: [u8; 16],
        amount: Amount,
        issued_at: Timestamp,
    ) -> Self {
        let bytes = Self::signed_bytes(office, wallet, &charge_id, amount, issued_at);
        ChargeVoucher {
            office,
            wallet,
            charge_id,
            amount,
            issued_at,
            signature: office_keys.sign(tags::CHARGE_VOUCHER, &[&bytes]),
        }
    }

    pub fn verify(&self, office_keys: &PublicKeys) -> bool {
        let bytes = Self::signed_bytes(
            self.office,
            self.wallet,
            &self.charge_id,
            self.amount,
            self.issued_at,
        );
        office_keys
            .verify(tags::CHARGE_VOUCHER, &[&bytes], &self.signature)
            .is_ok()
    }
}

impl Encode for ChargeVoucher {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.office)
            .put(&self.wallet)
            .raw(&self.charge_id)
            .put(&self.amount)
            .put(&self.issued_at)
            .put(&self.signature);
    }
}

impl Decode for ChargeVoucher {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ChargeVoucher {
            office: r.get()?,
            wallet: r.get()?,
            charge_id: r.array("charge id")?,
            amount: r.get()?,
            issued_at: r.get()?,
            signature: r.get()?,
        })
    }
}

/// Largest ABORT payload kept as evidence (an ABORT payload is one byte).
pub const ABORT_EVIDENCE_PAYLOAD_LEN_MAX: usize = 64;

/// What the seller said when it aborted a transaction the buyer had
/// prepared: its signed ABORT (envelope header, payload and signature), which
/// anyone holding the seller's certificate can check with
/// `mpay_envelope::verify_detached`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AbortEvidence {
    pub header: Header,
    pub payload: Vec<u8>,
    pub signature: Signature,
}

impl Encode for AbortEvidence {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.header)
            .bytes16(&self.payload)
            .put(&self.signature);
    }
}

impl Decode for AbortEvidence {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(AbortEvidence {
            header: r.get()?,
            payload: r
                .bytes16("abort payload", ABORT_EVIDENCE_PAYLOAD_LEN_MAX)?
                .to_vec(),
            signature: r.get()?,
        })
    }
}

/// Why a `Pay` entry no longer stands.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum VoidProof {
    /// The seller's signed ABORT.
    SellerAbort(AbortEvidence),
    /// The money office's signed release after the claim deadline.
    OfficeRelease(Resolution),
}

impl Encode for VoidProof {
    fn encode(&self, w: &mut Writer) {
        match self {
            VoidProof::SellerAbort(e) => w.u8(1).put(e),
            VoidProof::OfficeRelease(r) => w.u8(2).put(r),
        };
    }
}

impl Decode for VoidProof {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8("void proof")? {
            1 => Ok(VoidProof::SellerAbort(r.get()?)),
            2 => Ok(VoidProof::OfficeRelease(r.get()?)),
            tag => Err(DecodeError::UnknownTag {
                what: "void proof",
                tag,
            }),
        }
    }
}

/// What an entry records.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum EntryKind {
    /// The first entry: the wallet's certificate, balance zero.
    Genesis { certificate: Certificate },
    /// Value loaded from the money office.
    Charge { voucher: ChargeVoucher },
    /// The buyer's payment authorization: `amount` to `seller` for `tx`, to
    /// be claimed by `claim_deadline`. Written when the buyer agrees; the
    /// amount is locked from then and leaves for good at COMMIT.
    Pay {
        tx: TxId,
        seller: PartyId,
        amount: Amount,
        claim_deadline: Timestamp,
    },
    /// The seller's record of a committed sale, carrying the buyer's signed
    /// `Pay` entry it was paid with: the seller's claim at the office.
    Receive {
        tx: TxId,
        buyer: PartyId,
        amount: Amount,
        authorization: Box<ChainEntry>,
    },
    /// The buyer's record that its `Pay` entry `paid_seq` was aborted and
    /// its `amount` is back, with the proof.
    Void {
        tx: TxId,
        paid_seq: u64,
        amount: Amount,
        proof: VoidProof,
    },
    /// Value handed back to the money office, to be credited to the owner's
    /// account at the next sync.
    Redeem { redeem_id: [u8; 16], amount: Amount },
}

impl EntryKind {
    fn tag(&self) -> u8 {
        match self {
            EntryKind::Genesis { .. } => 0,
            EntryKind::Charge { .. } => 1,
            EntryKind::Pay { .. } => 2,
            EntryKind::Receive { .. } => 3,
            EntryKind::Void { .. } => 4,
            EntryKind::Redeem { .. } => 5,
        }
    }
}

impl Encode for EntryKind {
    fn encode(&self, w: &mut Writer) {
        w.u8(self.tag());
        match self {
            EntryKind::Genesis { certificate } => {
                w.put(certificate);
            }
            EntryKind::Charge { voucher } => {
                w.put(voucher);
            }
            EntryKind::Pay {
                tx,
                seller,
                amount,
                claim_deadline,
            } => {
                w.put(tx).put(seller).put(amount).put(claim_deadline);
            }
            EntryKind::Receive {
                tx,
                buyer,
                amount,
                authorization,
            } => {
                w.put(tx).put(buyer).put(amount).put(authorization);
            }
            EntryKind::Void {
                tx,
                paid_seq,
                amount,
                proof,
            } => {
                w.put(tx).u64(*paid_seq).put(amount).put(proof);
            }
            EntryKind::Redeem { redeem_id, amount } => {
                w.raw(redeem_id).put(amount);
            }
        }
    }
}

impl EntryKind {
    /// Decodes an entry kind; `nested` is true inside a `Receive`, where only
    /// a `Pay` entry may appear (so nesting is one level deep, never more).
    fn decode_nested(r: &mut Reader<'_>, nested: bool) -> Result<Self, DecodeError> {
        let tag = r.u8("entry kind")?;
        if nested && tag != 2 {
            return Err(DecodeError::Invalid {
                what: "authorization",
                reason: "a Receive entry must carry a Pay entry",
            });
        }
        Ok(match tag {
            0 => EntryKind::Genesis {
                certificate: r.get()?,
            },
            1 => EntryKind::Charge { voucher: r.get()? },
            2 => EntryKind::Pay {
                tx: r.get()?,
                seller: r.get()?,
                amount: r.get()?,
                claim_deadline: r.get()?,
            },
            3 => EntryKind::Receive {
                tx: r.get()?,
                buyer: r.get()?,
                amount: r.get()?,
                authorization: Box::new(ChainEntry::decode_nested(r, true)?),
            },
            4 => EntryKind::Void {
                tx: r.get()?,
                paid_seq: r.u64("paid seq")?,
                amount: r.get()?,
                proof: r.get()?,
            },
            5 => EntryKind::Redeem {
                redeem_id: r.array("redeem id")?,
                amount: r.get()?,
            },
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "entry kind",
                    tag,
                });
            }
        })
    }
}

impl Decode for EntryKind {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        EntryKind::decode_nested(r, false)
    }
}

/// One signed link of a wallet's hash chain.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ChainEntry {
    pub wallet: PartyId,
    pub seq: u64,
    pub prev_hash: EntryHash,
    pub kind: EntryKind,
    pub balance_after: Amount,
    pub created_at: Timestamp,
    pub signature: Signature,
}

/// Why a chain entry or a chain is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("entry {seq} of wallet {wallet} is not signed by the wallet")]
    BadSignature { wallet: PartyId, seq: u64 },
    #[error("entry {seq} does not follow entry {prev_seq} (sequence or hash link broken)")]
    BrokenLink { seq: u64, prev_seq: u64 },
    #[error("entry {seq} has a balance that does not follow from the entry before")]
    BadBalance { seq: u64 },
    #[error("entry {seq} belongs to another wallet")]
    WrongWallet { seq: u64 },
}

impl ChainEntry {
    fn body_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(160);
        w.put(&self.wallet)
            .u64(self.seq)
            .raw(&self.prev_hash)
            .put(&self.kind)
            .put(&self.balance_after)
            .put(&self.created_at);
        w.into_bytes()
    }

    /// Builds and signs an entry.
    pub fn sign(
        keys: &SecretKeys,
        wallet: PartyId,
        seq: u64,
        prev_hash: EntryHash,
        kind: EntryKind,
        balance_after: Amount,
        created_at: Timestamp,
    ) -> ChainEntry {
        let mut entry = ChainEntry {
            wallet,
            seq,
            prev_hash,
            kind,
            balance_after,
            created_at,
            signature: Signature([0; 64]),
        };
        entry.signature = keys.sign(tags::CHAIN_ENTRY, &[&entry.body_bytes()]);
        entry
    }

    pub fn verify(&self, wallet_keys: &PublicKeys) -> Result<(), ChainError> {
        wallet_keys
            .verify(tags::CHAIN_ENTRY, &[&self.body_bytes()], &self.signature)
            .map_err(|_| ChainError::BadSignature {
                wallet: self.wallet,
                seq: self.seq,
            })
    }

    /// BLAKE3 of the whole encoded entry, signature included.
    pub fn hash(&self) -> EntryHash {
        *blake3::hash(&self.to_wire()).as_bytes()
    }

    pub fn hash_hex(&self) -> String {
        hex_string(&self.hash())
    }

    /// Checks that `self` may follow `prev`: same wallet, next sequence,
    /// hash link, and a balance change the entry kind explains.
    pub fn check_follows(&self, prev: &ChainEntry) -> Result<(), ChainError> {
        let seq = self.seq;
        if self.wallet != prev.wallet {
            return Err(ChainError::WrongWallet { seq });
        }
        if prev.seq.checked_add(1) != Some(seq) || self.prev_hash != prev.hash() {
            return Err(ChainError::BrokenLink {
                seq,
                prev_seq: prev.seq,
            });
        }
        let expected = match &self.kind {
            EntryKind::Genesis { .. } => None,
            EntryKind::Charge { voucher } => prev.balance_after.checked_add(voucher.amount).ok(),
            EntryKind::Pay { amount, .. } => prev.balance_after.checked_sub(*amount).ok(),
            EntryKind::Receive { amount, .. } => prev.balance_after.checked_add(*amount).ok(),
            EntryKind::Void { amount, .. } => prev.balance_after.checked_add(*amount).ok(),
            EntryKind::Redeem { amount, .. } => prev.balance_after.checked_sub(*amount).ok(),
        };
        match expected {
            Some(balance) if balance == self.balance_after && !balance.is_negative() => Ok(()),
            _ => Err(ChainError::BadBalance { seq }),
        }
    }
}

impl Encode for ChainEntry {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.wallet)
            .u64(self.seq)
            .raw(&self.prev_hash)
            .put(&self.kind)
            .put(&self.balance_after)
            .put(&self.created_at)
            .put(&self.signature);
    }
}

impl ChainEntry {
    fn decode_nested(r: &mut Reader<'_>, nested: bool) -> Result<Self, DecodeError> {
        Ok(ChainEntry {
            wallet: r.get()?,
            seq: r.u64("seq")?,
            prev_hash: r.array("prev hash")?,
            kind: EntryKind::decode_nested(r, nested)?,
            balance_after: r.get()?,
            created_at: r.get()?,
            signature: r.get()?,
        })
    }
}

impl Decode for ChainEntry {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        ChainEntry::decode_nested(r, false)
    }
}

/// Checks a run of entries of one wallet: signatures, links, balances.
/// `entries` must be in sequence order and start right after `before` (or
/// with the genesis entry when `before` is `None`).
pub fn verify_chain(
    wallet_keys: &PublicKeys,
    before: Option<&ChainEntry>,
    entries: &[ChainEntry],
) -> Result<(), ChainError> {
    let mut prev = before;
    for entry in entries {
        entry.verify(wallet_keys)?;
        match prev {
            None => {
                let genesis_ok = matches!(&entry.kind, EntryKind::Genesis { certificate } if certificate.subject() == entry.wallet)
                    && entry.seq == 0
                    && entry.prev_hash == GENESIS_PREV_HASH
                    && entry.balance_after.is_zero();
                if !genesis_ok {
                    return Err(ChainError::BrokenLink {
                        seq: entry.seq,
                        prev_seq: 0,
                    });
                }
            }
            Some(p) => entry.check_follows(p)?,
        }
        prev = Some(entry);
    }
    Ok(())
}
