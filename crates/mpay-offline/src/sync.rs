//! What a wallet and its money office exchange at sync (DESIGN §2.3), and
//! the office's signed statements a wallet keeps: the sync attestation and
//! the resolution of an uncertain payment.
//!
//! Sync travels in the same envelope as everything else: the wallet seals a
//! [`SyncRequest`] to the office (kind [`kind::SYNC_REQUEST`]), the office
//! answers with a [`SyncResponse`] sealed to the wallet.

use mpay_envelope::MessageKind;
use mpay_identity::{PartyId, PublicKeys, RevocationList, SecretKeys, Signature, Timestamp, tags};
use mpay_money::Amount;
use mpay_wire::{Decode, DecodeError, Encode, LIST_LEN_MAX, Reader, Writer, wire_enum};

use crate::TxId;
use crate::chain::{ChainEntry, EntryHash};

pub mod kind {
    use super::MessageKind;
    /// Wallet → office: the chain since the last sync, and uncertain payments.
    pub const SYNC_REQUEST: MessageKind = MessageKind(0x0201);
    /// Office → wallet: attestation, revocation list, resolutions.
    pub const SYNC_RESPONSE: MessageKind = MessageKind(0x0202);
}

/// Most chain entries one sync request carries; a longer backlog syncs in
/// several rounds.
pub const SYNC_ENTRIES_MAX: usize = 128;
/// Most uncertain payments one sync asks about.
pub const SYNC_UNCERTAIN_MAX: usize = 64;
/// Most of the wallet's own attested entries one sync response carries to
/// bring a restored wallet up to date (more take several rounds).
pub const SYNC_CATCH_UP_MAX: usize = 64;

/// The office's signed statement of a wallet's state as of a sync: its chain
/// head and balance. Payees check it is recent (the certificate's limits).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SyncAttestation {
    pub office: PartyId,
    pub wallet: PartyId,
    /// Sequence of the last chain entry the office verified (0 at enrollment).
    pub seq: u64,
    /// Hash of that entry (all zero at enrollment, before any sync).
    pub head_hash: EntryHash,
    pub balance: Amount,
    pub synced_at: Timestamp,
    pub signature: Signature,
}

fn attestation_bytes(
    office: PartyId,
    wallet: PartyId,
    seq: u64,
    head_hash: &EntryHash,
    balance: Amount,
    synced_at: Timestamp,
) -> Vec<u8> {
    let mut w = Writer::new();
    w.put(&office)
        .put(&wallet)
        .u64(seq)
        .raw(head_hash)
        .put(&balance)
        .put(&synced_at);
    w.into_bytes()
}

impl SyncAttestation {
    pub fn issue(
        office: PartyId,
        office_keys: &SecretKeys,
        wallet: PartyId,
        seq: u64,
        head_hash: EntryHash,
        balance: Amount,
        synced_at: Timestamp,
    ) -> Self {
        let bytes = attestation_bytes(office, wallet, seq, &head_hash, balance, synced_at);
        SyncAttestation {
            office,
            wallet,
            seq,
            head_hash,
            balance,
            synced_at,
            signature: office_keys.sign(tags::SYNC_ATTESTATION, &[&bytes]),
        }
    }

    pub fn verify(&self, office_keys: &PublicKeys) -> bool {
        let bytes = attestation_bytes(
            self.office,
            self.wallet,
            self.seq,
            &self.head_hash,
            self.balance,
            self.synced_at,
        );
        office_keys
            .verify(tags::SYNC_ATTESTATION, &[&bytes], &self.signature)
            .is_ok()
    }
}

impl Encode for SyncAttestation {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.office)
            .put(&self.wallet)
            .u64(self.seq)
            .raw(&self.head_hash)
            .put(&self.balance)
            .put(&self.synced_at)
            .put(&self.signature);
    }
}

impl Decode for SyncAttestation {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SyncAttestation {
            office: r.get()?,
            wallet: r.get()?,
            seq: r.u64("attested seq")?,
            head_hash: r.array("attested head hash")?,
            balance: r.get()?,
            synced_at: r.get()?,
            signature: r.get()?,
        })
    }
}

wire_enum! {
    /// What the office decided about a payment whose buyer is uncertain.
    pub enum Outcome: "resolution outcome" {
        /// The seller claimed the payment in time: it stands.
        Settled = 1,
        /// No claim by the deadline: the amount goes back to the buyer.
        Released = 2,
    }
}

/// The office's signed decision about the `Pay` entry `pay_seq` of `wallet`
/// for `tx`, made after the claim deadline.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Resolution {
    pub office: PartyId,
    pub wallet: PartyId,
    pub tx: TxId,
    pub pay_seq: u64,
    pub outcome: Outcome,
    pub resolved_at: Timestamp,
    pub signature: Signature,
}

fn resolution_bytes(
    office: PartyId,
    wallet: PartyId,
    tx: TxId,
    pay_seq: u64,
    outcome: Outcome,
    resolved_at: Timestamp,
) -> Vec<u8> {
    let mut w = Writer::new();
    w.put(&office)
        .put(&wallet)
        .put(&tx)
        .u64(pay_seq)
        .put(&outcome)
        .put(&resolved_at);
    w.into_bytes()
}

impl Resolution {
    pub fn issue(
        office: PartyId,
        office_keys: &SecretKeys,
        wallet: PartyId,
        tx: TxId,
        pay_seq: u64,
        outcome: Outcome,
        resolved_at: Timestamp,
    ) -> Self {
        let bytes = resolution_bytes(office, wallet, tx, pay_seq, outcome, resolved_at);
        Resolution {
            office,
            wallet,
            tx,
            pay_seq,
            outcome,
            resolved_at,
            signature: office_keys.sign(tags::RESOLUTION, &[&bytes]),
        }
    }

    pub fn verify(&self, office_keys: &PublicKeys) -> bool {
        let bytes = resolution_bytes(
            self.office,
            self.wallet,
            self.tx,
            self.pay_seq,
            self.outcome,
            self.resolved_at,
        );
        office_keys
            .verify(tags::RESOLUTION, &[&bytes], &self.signature)
            .is_ok()
    }
}

impl Encode for Resolution {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.office)
            .put(&self.wallet)
            .put(&self.tx)
            .u64(self.pay_seq)
            .put(&self.outcome)
            .put(&self.resolved_at)
            .put(&self.signature);
    }
}

impl Decode for Resolution {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Resolution {
            office: r.get()?,
            wallet: r.get()?,
            tx: r.get()?,
            pay_seq: r.u64("pay seq")?,
            outcome: r.get()?,
            resolved_at: r.get()?,
            signature: r.get()?,
        })
    }
}

/// A payment the buyer holds prepared past its claim deadline.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Uncertain {
    pub tx: TxId,
    pub pay_seq: u64,
}

impl Encode for Uncertain {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.tx).u64(self.pay_seq);
    }
}

impl Decode for Uncertain {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Uncertain {
            tx: r.get()?,
            pay_seq: r.u64("pay seq")?,
        })
    }
}

/// Wallet → office.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SyncRequest {
    /// The chain entries after the last attested one, in order (at most
    /// [`SYNC_ENTRIES_MAX`]).
    pub entries: Vec<ChainEntry>,
    pub uncertain: Vec<Uncertain>,
    /// Version of the newest revocation list the wallet holds (0: none).
    pub revocation_version: u64,
    /// Sequence of the wallet's chain head: an office that attested more
    /// (the wallet was restored from a backup) sends the entries after it.
    pub head_seq: u64,
}

impl Encode for SyncRequest {
    fn encode(&self, w: &mut Writer) {
        w.list(&self.entries)
            .list(&self.uncertain)
            .u64(self.revocation_version)
            .u64(self.head_seq);
    }
}

impl Decode for SyncRequest {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SyncRequest {
            entries: r.list("sync entries", SYNC_ENTRIES_MAX)?,
            uncertain: r.list("uncertain payments", SYNC_UNCERTAIN_MAX)?,
            revocation_version: r.u64("revocation version")?,
            head_seq: r.u64("head seq")?,
        })
    }
}

/// Office → wallet.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SyncResponse {
    pub attestation: SyncAttestation,
    /// The office's list, when newer than the wallet's.
    pub revocation_list: Option<RevocationList>,
    pub resolutions: Vec<Resolution>,
    /// The wallet's own entries the office holds after the request's
    /// `head_seq`, in order (at most [`SYNC_CATCH_UP_MAX`]): a restored
    /// wallet continues from them, not from its older head.
    pub entries: Vec<ChainEntry>,
}

impl Encode for SyncResponse {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.attestation)
            .option(&self.revocation_list)
            .list(&self.resolutions)
            .list(&self.entries);
    }
}

impl Decode for SyncResponse {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SyncResponse {
            attestation: r.get()?,
            revocation_list: r.option("revocation list")?,
            resolutions: r.list("resolutions", LIST_LEN_MAX)?,
            entries: r.list("catch-up entries", SYNC_CATCH_UP_MAX)?,
        })
    }
}
