//! The wallet engine: one phone's side of every offline transfer, as seller
//! (coordinator) or buyer (participant), as a deterministic state machine.
//!
//! Inputs: [`Wallet::handle_frame`], [`Wallet::handle_timeout`] and the
//! owner's commands ([`Wallet::sell`], [`Wallet::set_buy_intent`], …), each
//! with `now`. Outputs, polled by the driver in this order:
//! [`Wallet::poll_write`] (make it durable, then call
//! [`Wallet::write_completed`]), [`Wallet::poll_transmit`],
//! [`Wallet::poll_event`] and [`Wallet::poll_timeout`].
//!
//! **Durable before visible.** Every outgoing frame is tagged with the id of
//! the last write batch issued before it; `poll_transmit` releases it only
//! once that batch is reported complete. A driver cannot send a message whose
//! record is not yet on stable storage.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use mpay_envelope::{self as envelope, ENVELOPE_VERSION, EnvelopeError, Header, ReplayGuard};
use mpay_identity::{
    Certificate, CertificateError, Limits, MILLIS_PER_DAY, PartyId, RevocationList, Role,
    SecretKeys, Timestamp, TrustStore,
};
use mpay_money::{Amount, Currency};
use mpay_wire::{Decode, DecodeError, Encode};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use crate::TxId;
use crate::chain::{
    AbortEvidence, ChainEntry, ChainError, ChargeVoucher, EntryKind, GENESIS_PREV_HASH, VoidProof,
};
use crate::durable::{Snapshot, Write, WriteBatch};
use crate::messages::{
    Abort, AbortReason, Agreed, CommitRequest, Lookup, LookupReply, Message, Shipping, kind,
};
use crate::records::{TxRecord, meta};
use crate::sync::{
    Outcome, Resolution, SYNC_ENTRIES_MAX, SYNC_UNCERTAIN_MAX, SyncAttestation, SyncRequest,
    SyncResponse, Uncertain,
};

/// Default [`Config::lookups_per_window_max`]: a seller looking for buyers
/// sends about one LOOKUP per 150 ms, so this leaves room for two sellers at
/// once and little for a flood.
pub const LOOKUPS_PER_WINDOW_MAX: u32 = 16;
/// Default [`Config::lookup_window_ms`].
pub const LOOKUP_WINDOW_MS: u64 = 1_000;

/// Timing and capacity limits of the protocol. Every retry, queue and table
/// has a bound here.
#[derive(Clone, Debug)]
pub struct Config {
    /// First retransmission interval; doubles per attempt.
    pub retry_interval_min_ms: u64,
    /// Largest retransmission interval.
    pub retry_interval_max_ms: u64,
    /// COMMIT-REQUESTs sent before the seller gives up and aborts.
    pub commit_request_attempts_max: u32,
    /// How long a prepared buyer waits for COMMIT or ABORT before asking
    /// (STATUS).
    pub status_after_ms: u64,
    /// How long after agreeing the seller may claim a payment at the money
    /// office (the claim deadline in the authorization).
    pub claim_window_ms: u64,
    /// Shortest claim window a seller accepts in an authorization.
    pub claim_window_min_ms: u64,
    /// Most transactions a buyer holds prepared at once.
    pub prepared_txs_max: usize,
    /// Most sales a seller runs at once.
    pub sales_max: usize,
    /// Most buyers remembered from LOOKUP replies.
    pub nearby_buyers_max: usize,
    /// Most events queued for the owner before the oldest are dropped.
    pub events_max: usize,
    /// Most LOOKUPs this wallet takes in per [`Config::lookup_window_ms`];
    /// past it a LOOKUP is refused ([`InboundError::RateLimited`]) before its
    /// signature is checked, so a flood costs a header parse, not a
    /// signature check, a seal and a reply each.
    pub lookups_per_window_max: u32,
    /// The window of [`Config::lookups_per_window_max`].
    pub lookup_window_ms: u64,
    /// Accept the insecure simulation suite (simulator only).
    pub simulation: bool,
    /// Test-only fault: a seller with no record of a sale answers AGREED or
    /// STATUS with a signed ABORT even when its chain holds the sale's
    /// `Receive` (the old presumed abort after completion), so the tests can
    /// show the dishonest-peer simulation catches it. Never set otherwise.
    #[doc(hidden)]
    pub fault_presumed_abort_after_complete: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            retry_interval_min_ms: 200,
            retry_interval_max_ms: 5_000,
            commit_request_attempts_max: 6,
            status_after_ms: 1_000,
            claim_window_ms: 7 * mpay_identity::MILLIS_PER_DAY,
            claim_window_min_ms: mpay_identity::MILLIS_PER_DAY,
            prepared_txs_max: 16,
            sales_max: 64,
            nearby_buyers_max: 32,
            events_max: 1024,
            lookups_per_window_max: LOOKUPS_PER_WINDOW_MAX,
            lookup_window_ms: LOOKUP_WINDOW_MS,
            simulation: false,
            fault_presumed_abort_after_complete: false,
        }
    }
}

/// What the owner agreed to pay, in buyer mode: up to `max_amount`, to
/// `seller` if given, until `expires_at`. Consumed by one payment.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BuyIntent {
    pub max_amount: Amount,
    pub seller: Option<PartyId>,
    pub expires_at: Timestamp,
}

/// A frame to send. `to` is [`PartyId::BROADCAST`] for a one-hop broadcast.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Transmit {
    pub to: PartyId,
    pub frame: Vec<u8>,
}

/// A batch the driver must make durable, then acknowledge by `id`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PendingWrite {
    pub id: u64,
    pub batch: WriteBatch,
}

/// What happened, for the owner and the driver.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Event {
    /// A buyer answered our LOOKUP.
    BuyerFound { buyer: PartyId },
    /// A buyer answered our LOOKUP but this wallet will not take its money.
    BuyerRefused { buyer: PartyId, reason: AbortReason },
    /// A LOOKUP-REPLY came from a wallet that this wallet's revocation list
    /// names (a double spend was caught): the frame was refused, and the
    /// seller knows why it will never find that buyer. Only the fact that the
    /// named wallet is revoked is vouched for (by the office's list), not that
    /// it sent the frame.
    BuyerRevoked { buyer: PartyId },
    /// A newer revocation list arrived (from a peer or the office) and is in
    /// force.
    RevocationListInstalled { version: u64 },
    /// Seller: the buyer agreed and the sale is committed (money is ours).
    SaleCommitted {
        tx: TxId,
        buyer: PartyId,
        amount: Amount,
    },
    /// Seller: the buyer acknowledged the COMMIT; the transaction is forgotten.
    SaleCompleted { tx: TxId },
    /// Seller: the sale did not happen.
    SaleAborted { tx: TxId, reason: AbortReason },
    /// Seller: the buyer never acknowledged, but the claim deadline passed
    /// with the claim at the office, which settles the buyer; forgotten.
    SaleSettledByOffice { tx: TxId },
    /// Buyer: a seller asks for a payment (shown to the owner).
    PaymentRequested {
        tx: TxId,
        seller: PartyId,
        amount: Amount,
        description: String,
        accepted: bool,
    },
    /// Buyer: the payment is committed (money is gone).
    PaymentCommitted {
        tx: TxId,
        seller: PartyId,
        amount: Amount,
    },
    /// Buyer: the payment was aborted and the amount is back.
    PaymentAborted { tx: TxId, amount: Amount },
    /// Buyer: the claim deadline passed with the outcome unknown; only the
    /// money office can resolve it now.
    PaymentAwaitingOffice { tx: TxId },
    /// A charge from the money office was added.
    Charged { amount: Amount },
}

/// Why an incoming frame was refused. It changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboundError {
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("malformed message: {0}")]
    Malformed(#[from] DecodeError),
    #[error("message from {0}, whose certificate this wallet does not have")]
    UnknownPeer(PartyId),
    #[error("peer certificate refused: {0}")]
    Certificate(#[from] CertificateError),
    #[error("peer is not a wallet")]
    NotAWallet,
    #[error("message from ourselves")]
    FromSelf,
    #[error("too many LOOKUPs: more than {0} in the window")]
    RateLimited(u32),
}

/// Why the owner's sale could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SellError {
    #[error("no buyer {0} nearby (run a LOOKUP first)")]
    UnknownBuyer(PartyId),
    #[error("amount must be positive and in {0}")]
    InvalidAmount(Currency),
    #[error("too many sales in progress")]
    Busy,
    #[error("description longer than {0} bytes")]
    DescriptionTooLong(usize),
}

/// Why a charge voucher was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChargeError {
    #[error("voucher is not signed by this wallet's money office")]
    BadVoucher,
    #[error("voucher is for another wallet")]
    WrongWallet,
    #[error("voucher was already used")]
    AlreadyUsed,
    #[error("voucher amount must be positive and in {0}")]
    InvalidAmount(Currency),
    #[error("charge would exceed the offline balance limit of {0}")]
    OverLimit(Amount),
}

/// Why value could not be redeemed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedeemError {
    #[error("amount must be positive and in {0}")]
    InvalidAmount(Currency),
    #[error("insufficient funds: balance is {balance}")]
    InsufficientFunds { balance: Amount },
}

/// Why a sync response was refused. It changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("malformed sync response: {0}")]
    Malformed(#[from] DecodeError),
    #[error("response is not from this wallet's money office")]
    NotFromOffice,
    #[error("attestation is not signed by the office or not for this wallet")]
    BadAttestation,
    #[error("the office attests a chain this wallet does not have (a restored or copied wallet?)")]
    ForkedChain,
    #[error("a resolution is not signed by the office or not for this wallet")]
    BadResolution,
    #[error(
        "the office sent entries that are not this wallet's own, continuing its chain up to the attested head"
    )]
    BadCatchUp,
    #[error("local error: {0}")]
    Local(&'static str),
}

/// What a sync changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncSummary {
    /// Sequence the office has verified up to.
    pub attested_seq: u64,
    /// Entries still to upload, or still to receive from the office when
    /// this wallet is behind it (sync again when not zero).
    pub entries_left: u64,
    pub settled: Vec<TxId>,
    pub released: Vec<TxId>,
    pub revocation_version: Option<u64>,
}

/// Why a wallet could not be recovered from its store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecoverError {
    #[error("store is missing {0}")]
    Missing(&'static str),
    #[error("store holds a malformed record: {0}")]
    Malformed(#[from] DecodeError),
    #[error("store's chain is invalid: {0}")]
    Chain(#[from] ChainError),
    #[error("store is inconsistent: {0}")]
    Inconsistent(&'static str),
    #[error("certificate carries no limits")]
    NoLimits,
}

struct Identity {
    id: PartyId,
    keys: SecretKeys,
    certificate: Certificate,
    limits: Limits,
}

/// A buyer that answered a LOOKUP.
struct Nearby {
    seen_at: Timestamp,
    attestation: SyncAttestation,
}

enum Sale {
    /// Phase 1: COMMIT-REQUEST sent, waiting for AGREED or ABORT. In memory
    /// only: a seller that restarts forgets it, which is presumed abort.
    Requesting {
        buyer: PartyId,
        amount: Amount,
        description: String,
        attempts: u32,
        retry_at: Timestamp,
    },
    /// Phase 2: COMMIT record durable, COMMIT sent until acknowledged.
    Committing {
        buyer: PartyId,
        attempts: u32,
        retry_at: Timestamp,
        claim_deadline: Timestamp,
        /// The sale's `Receive` entry: once the office attests it and the
        /// claim deadline passed, the office settles the buyer and the sale
        /// may be forgotten without an acknowledgement.
        receive_seq: u64,
    },
}

/// A buyer's prepared transaction: UNDO record durable, amount locked.
struct Prepared {
    seller: PartyId,
    amount: Amount,
    pay_seq: u64,
    claim_deadline: Timestamp,
    /// Shared with the seller in the AGREED (and in every resend of it).
    shipping: Option<Shipping>,
    status_attempts: u32,
    status_at: Timestamp,
    awaiting_office: bool,
}

struct Outgoing {
    after_write: u64,
    transmit: Transmit,
}

/// One phone's wallet. See the module docs for the driving contract.
pub struct Wallet {
    config: Config,
    me: Identity,
    office: Certificate,
    trust: TrustStore,
    rng: ChaCha20Rng,
    replay: ReplayGuard,

    chain: Vec<ChainEntry>,
    /// tx → seq of its `Pay` entry (buyer side).
    pay_seq_by_tx: HashMap<TxId, u64>,
    voided: HashSet<TxId>,
    /// tx → buyer of every `Receive` entry in the chain: the sales this
    /// wallet committed, forever (rebuilt from the chain at recovery, one
    /// entry per chain entry, so bounded by the chain).
    received: HashMap<TxId, PartyId>,
    charge_ids: HashSet<[u8; 16]>,
    redeem_ids: HashSet<[u8; 16]>,

    sales: BTreeMap<TxId, Sale>,
    prepared: BTreeMap<TxId, Prepared>,
    intent: Option<BuyIntent>,
    /// The shipping details the owner chose to share with the seller the
    /// intent pays; goes with the intent.
    intent_shipping: Option<Shipping>,
    /// Seller side: the shipping details buyers shared with sales this
    /// wallet committed (rebuilt from the store's meta values at recovery).
    shipping: BTreeMap<TxId, Shipping>,
    peers: HashMap<PartyId, Certificate>,
    /// The peer certificates the store holds (as of the writes issued).
    durable_peers: HashMap<PartyId, Certificate>,
    nearby: BTreeMap<PartyId, Nearby>,
    /// The office's latest signed statement of this wallet's state.
    attestation: SyncAttestation,

    writes: VecDeque<PendingWrite>,
    write_issued: u64,
    write_completed: u64,
    outbox: VecDeque<Outgoing>,
    events: VecDeque<Event>,
    /// Start of the current LOOKUP window and the LOOKUPs taken in it.
    lookup_window: (Timestamp, u32),
}

impl Wallet {
    /// The first durable state of a new wallet: its keys, certificate, its
    /// money office's certificate, and the genesis chain entry.
    pub fn genesis(
        keys: &SecretKeys,
        certificate: &Certificate,
        office: &Certificate,
        attestation: &SyncAttestation,
        now: Timestamp,
    ) -> Result<WriteBatch, RecoverError> {
        if attestation.wallet != certificate.subject() || !attestation.verify(office.keys()) {
            return Err(RecoverError::Inconsistent(
                "enrollment attestation is not the office's for this wallet",
            ));
        }
        let limits = certificate.body.limits.ok_or(RecoverError::NoLimits)?;
        let genesis = ChainEntry::sign(
            keys,
            certificate.subject(),
            0,
            GENESIS_PREV_HASH,
            EntryKind::Genesis {
                certificate: certificate.clone(),
            },
            Amount::zero(limits.currency()),
            now,
        );
        let mut batch = WriteBatch::new();
        batch.push(Write::PutMeta {
            key: meta::SECRET_KEYS.into(),
            value: keys.to_secret_bytes().to_vec(),
        });
        batch.push(Write::PutMeta {
            key: meta::CERTIFICATE.into(),
            value: certificate.to_wire(),
        });
        batch.push(Write::PutMeta {
            key: meta::OFFICE_CERTIFICATE.into(),
            value: office.to_wire(),
        });
        batch.push(Write::PutMeta {
            key: meta::ATTESTATION.into(),
            value: attestation.to_wire(),
        });
        batch.push(Write::AppendChain {
            seq: 0,
            entry: genesis.to_wire(),
        });
        Ok(batch)
    }

    /// Rebuilds a wallet from its store after a start or a crash: prepared
    /// buyers become uncertain and ask (STATUS); committed sellers resend
    /// COMMIT; sales never committed are forgotten (presumed abort).
    pub fn recover(
        config: Config,
        snapshot: &Snapshot,
        rng_seed: u64,
        now: Timestamp,
    ) -> Result<Wallet, RecoverError> {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&rng_seed.to_be_bytes());
        Self::recover_with_seed(config, snapshot, seed, now)
    }

    /// [`Wallet::recover`] with a full 32-byte seed for the wallet's RNG,
    /// which also makes the nonces and ephemeral keys of every frame it
    /// seals. A phone must pass fresh OS randomness at every start: a seed
    /// used twice repeats nonces, which peers refuse as replays. (The `u64`
    /// form is for simulations and tests.)
    pub fn recover_with_seed(
        config: Config,
        snapshot: &Snapshot,
        rng_seed: [u8; 32],
        now: Timestamp,
    ) -> Result<Wallet, RecoverError> {
        let get = |key: &'static str| snapshot.meta.get(key).ok_or(RecoverError::Missing(key));
        let keys = SecretKeys::from_secret_bytes(get(meta::SECRET_KEYS)?)?;
        let certificate = Certificate::from_wire(get(meta::CERTIFICATE)?)?;
        let office = Certificate::from_wire(get(meta::OFFICE_CERTIFICATE)?)?;
        let attestation = SyncAttestation::from_wire(get(meta::ATTESTATION)?)?;
        let limits = certificate.body.limits.ok_or(RecoverError::NoLimits)?;
        if certificate.keys() != &keys.public() {
            return Err(RecoverError::Inconsistent(
                "keys do not match the certificate",
            ));
        }
        let mut trust = if config.simulation {
            TrustStore::for_simulation()
        } else {
            TrustStore::new()
        };
        trust.add_issuer(office.clone());
        if let Some(bytes) = snapshot.meta.get(meta::REVOCATION_LIST) {
            let list = mpay_identity::RevocationList::from_wire(bytes)?;
            // A list that no longer verifies is dropped, not trusted.
            let _ = trust.install_revocation_list(list);
        }
        let chain = snapshot
            .chain
            .values()
            .map(|bytes| ChainEntry::from_wire(bytes))
            .collect::<Result<Vec<_>, _>>()?;
        crate::chain::verify_chain(&keys.public(), None, &chain)?;

        let mut wallet = Wallet {
            rng: ChaCha20Rng::from_seed(rng_seed),
            me: Identity {
                id: certificate.subject(),
                keys,
                certificate,
                limits,
            },
            office,
            trust,
            replay: ReplayGuard::new(),
            chain: Vec::new(),
            pay_seq_by_tx: HashMap::new(),
            voided: HashSet::new(),
            received: HashMap::new(),
            charge_ids: HashSet::new(),
            redeem_ids: HashSet::new(),
            sales: BTreeMap::new(),
            prepared: BTreeMap::new(),
            intent: None,
            intent_shipping: None,
            shipping: BTreeMap::new(),
            peers: HashMap::new(),
            durable_peers: HashMap::new(),
            nearby: BTreeMap::new(),
            attestation,
            writes: VecDeque::new(),
            write_issued: 0,
            write_completed: 0,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            lookup_window: (now, 0),
            config,
        };
        for entry in chain {
            wallet.index_entry(&entry);
            wallet.chain.push(entry);
        }
        for (id, bytes) in &snapshot.peers {
            let cert = Certificate::from_wire(bytes)?;
            if cert.subject().0 != *id {
                return Err(RecoverError::Inconsistent(
                    "peer certificate under another id",
                ));
            }
            wallet.durable_peers.insert(cert.subject(), cert.clone());
            wallet.peers.insert(cert.subject(), cert);
        }
        for (tx, bytes) in &snapshot.txs {
            let tx = TxId(*tx);
            match TxRecord::from_wire(bytes)? {
                TxRecord::BuyerPrepared {
                    seller,
                    amount,
                    pay_seq,
                    claim_deadline,
                    shipping,
                } => {
                    if wallet.pay_seq_by_tx.get(&tx) != Some(&pay_seq) {
                        return Err(RecoverError::Inconsistent(
                            "prepared record without its Pay entry",
                        ));
                    }
                    wallet.prepared.insert(
                        tx,
                        Prepared {
                            seller,
                            amount,
                            pay_seq,
                            claim_deadline,
                            shipping,
                            status_attempts: 0,
                            status_at: now,
                            awaiting_office: false,
                        },
                    );
                }
                TxRecord::SellerCommitted {
                    buyer,
                    authorization,
                    receive_seq,
                } => {
                    let claim_deadline = match authorization.kind {
                        EntryKind::Pay { claim_deadline, .. } => claim_deadline,
                        _ => {
                            return Err(RecoverError::Inconsistent(
                                "authorization is not a Pay entry",
                            ));
                        }
                    };
                    wallet.sales.insert(
                        tx,
                        Sale::Committing {
                            buyer,
                            attempts: 0,
                            retry_at: now,
                            claim_deadline,
                            receive_seq,
                        },
                    );
                }
            }
        }
        for (key, bytes) in snapshot.meta.range(meta::SHIPPING_PREFIX.to_owned()..) {
            let Some(hex) = key.strip_prefix(meta::SHIPPING_PREFIX) else {
                break;
            };
            let tx = mpay_identity::hex_bytes(hex)
                .and_then(|b| <[u8; 16]>::try_from(b).ok())
                .map(TxId)
                .ok_or(RecoverError::Inconsistent(
                    "shipping details under a malformed key",
                ))?;
            let text = std::str::from_utf8(bytes)
                .map_err(|_| RecoverError::Inconsistent("shipping details are not UTF-8"))?;
            wallet.shipping.insert(tx, Shipping::new(text)?);
        }
        wallet.check_invariants();
        Ok(wallet)
    }

    fn index_entry(&mut self, entry: &ChainEntry) {
        match &entry.kind {
            EntryKind::Pay { tx, .. } => {
                self.pay_seq_by_tx.insert(*tx, entry.seq);
            }
            EntryKind::Void { tx, .. } => {
                self.voided.insert(*tx);
            }
            EntryKind::Charge { voucher } => {
                self.charge_ids.insert(voucher.charge_id);
            }
            EntryKind::Receive { tx, buyer, .. } => {
                self.received.insert(*tx, *buyer);
            }
            EntryKind::Redeem { redeem_id, .. } => {
                self.redeem_ids.insert(*redeem_id);
            }
            EntryKind::Genesis { .. } => {}
        }
    }

    // ---- queries -------------------------------------------------------

    pub fn id(&self) -> PartyId {
        self.me.id
    }

    pub fn certificate(&self) -> &Certificate {
        &self.me.certificate
    }

    pub fn currency(&self) -> Currency {
        self.me.limits.currency()
    }

    /// Spendable balance: the chain head's balance (locked amounts are
    /// already taken out by their `Pay` entries).
    pub fn balance(&self) -> Amount {
        self.chain
            .last()
            .map_or(Amount::zero(self.currency()), |e| e.balance_after)
    }

    /// Sum of the amounts locked by prepared payments.
    pub fn locked(&self) -> Amount {
        Amount::checked_sum(self.currency(), self.prepared.values().map(|p| &p.amount))
            .unwrap_or(Amount::zero(self.currency()))
    }

    pub fn chain(&self) -> &[ChainEntry] {
        &self.chain
    }

    /// Transactions this wallet holds prepared as buyer.
    pub fn prepared_txs(&self) -> impl Iterator<Item = (TxId, PartyId, Amount)> + '_ {
        self.prepared
            .iter()
            .map(|(tx, p)| (*tx, p.seller, p.amount))
    }

    /// Transactions this wallet committed as seller and not yet completed.
    pub fn committing_txs(&self) -> impl Iterator<Item = TxId> + '_ {
        self.sales
            .iter()
            .filter(|(_, s)| matches!(s, Sale::Committing { .. }))
            .map(|(tx, _)| *tx)
    }

    /// Sales in phase 1 (in memory only).
    pub fn requesting_txs(&self) -> impl Iterator<Item = TxId> + '_ {
        self.sales
            .iter()
            .filter(|(_, s)| matches!(s, Sale::Requesting { .. }))
            .map(|(tx, _)| *tx)
    }

    /// Buyers that answered a LOOKUP, most recent first.
    pub fn nearby_buyers(&self) -> Vec<PartyId> {
        let mut buyers: Vec<_> = self.nearby.iter().map(|(id, n)| (n.seen_at, *id)).collect();
        buyers.sort_by(|a, b| b.cmp(a));
        buyers.into_iter().map(|(_, id)| id).collect()
    }

    /// True when this buyer's `Pay` entry for `tx` stands (not voided) and
    /// is no longer prepared: the payment is committed.
    pub fn paid(&self, tx: &TxId) -> bool {
        self.pay_seq_by_tx.contains_key(tx)
            && !self.voided.contains(tx)
            && !self.prepared.contains_key(tx)
    }

    /// True when this wallet, as seller, committed `tx` (it holds the
    /// `Receive` entry).
    pub fn received(&self, tx: &TxId) -> bool {
        self.received.contains_key(tx)
    }

    /// True when this wallet, as buyer, aborted `tx` after agreeing.
    pub fn voided(&self, tx: &TxId) -> bool {
        self.voided.contains(tx)
    }

    /// Writes issued but not yet reported durable.
    pub fn writes_in_flight(&self) -> u64 {
        self.write_issued - self.write_completed
    }

    pub fn trust(&self) -> &TrustStore {
        &self.trust
    }

    // ---- driver outputs --------------------------------------------------

    pub fn poll_write(&mut self) -> Option<PendingWrite> {
        self.writes.pop_front()
    }

    /// The driver made batch `id` (and every batch before it) durable.
    pub fn write_completed(&mut self, id: u64) {
        assert!(
            id <= self.write_issued,
            "write {id} completed but only {} issued",
            self.write_issued
        );
        assert!(
            id > self.write_completed,
            "write {id} completed twice or out of order"
        );
        self.write_completed = id;
    }

    /// The next frame whose records are durable.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        match self.outbox.front() {
            Some(out) if out.after_write <= self.write_completed => {
                self.outbox.pop_front().map(|o| o.transmit)
            }
            _ => None,
        }
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Wallet::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let sales = self.sales.values().filter_map(|s| match s {
            Sale::Requesting { retry_at, .. } => Some(*retry_at),
            Sale::Committing {
                retry_at,
                claim_deadline,
                receive_seq,
                ..
            } => {
                if retry_at < claim_deadline {
                    Some(*retry_at)
                } else {
                    self.attested(*receive_seq).then_some(*claim_deadline)
                }
            }
        });
        let prepared = self.prepared.values().filter_map(|p| {
            if p.awaiting_office {
                None
            } else {
                Some(p.status_at.min(p.claim_deadline))
            }
        });
        sales.chain(prepared).min()
    }

    // ---- owner commands ----------------------------------------------------

    /// Adds a charge from the money office.
    pub fn charge(&mut self, now: Timestamp, voucher: ChargeVoucher) -> Result<(), ChargeError> {
        if voucher.office != self.office.subject() || !voucher.verify(self.office.keys()) {
            return Err(ChargeError::BadVoucher);
        }
        if voucher.wallet != self.me.id {
            return Err(ChargeError::WrongWallet);
        }
        if self.charge_ids.contains(&voucher.charge_id) {
            return Err(ChargeError::AlreadyUsed);
        }
        if !voucher.amount.is_positive() || voucher.amount.currency() != self.currency() {
            return Err(ChargeError::InvalidAmount(self.currency()));
        }
        let cap = self.me.limits.offline_balance_max;
        let after = self
            .balance()
            .checked_add(self.locked())
            .and_then(|b| b.checked_add(voucher.amount))
            .map_err(|_| ChargeError::OverLimit(cap))?;
        if after.checked_cmp(&cap) == Ok(std::cmp::Ordering::Greater) {
            return Err(ChargeError::OverLimit(cap));
        }
        let amount = voucher.amount;
        let mut batch = WriteBatch::new();
        let balance = self
            .balance()
            .checked_add(amount)
            .map_err(|_| ChargeError::OverLimit(cap))?;
        self.append_entry(&mut batch, now, EntryKind::Charge { voucher }, balance);
        self.issue_write(batch);
        self.push_event(Event::Charged { amount });
        Ok(())
    }

    /// Starts looking for buyers: a one-hop broadcast LOOKUP.
    pub fn lookup(&mut self, now: Timestamp) {
        let message = Message::Lookup(Lookup {
            seller_certificate: self.me.certificate.clone(),
            revocation_list: self.revocation_list().cloned(),
        });
        let tx = TxId(self.random_bytes());
        self.send_broadcast(now, tx, &message);
    }

    /// Sells `amount` to a buyer found by LOOKUP: sends COMMIT-REQUEST.
    pub fn sell(
        &mut self,
        now: Timestamp,
        buyer: PartyId,
        amount: Amount,
        description: &str,
    ) -> Result<TxId, SellError> {
        if !self.peers.contains_key(&buyer) {
            return Err(SellError::UnknownBuyer(buyer));
        }
        if !amount.is_positive() || amount.currency() != self.currency() {
            return Err(SellError::InvalidAmount(self.currency()));
        }
        if description.len() > mpay_wire::TEXT_LEN_MAX {
            return Err(SellError::DescriptionTooLong(mpay_wire::TEXT_LEN_MAX));
        }
        if self.sales.len() >= self.config.sales_max {
            return Err(SellError::Busy);
        }
        let tx = TxId(self.random_bytes());
        let retry_at = now.saturating_add_ms(self.retry_interval(0));
        self.sales.insert(
            tx,
            Sale::Requesting {
                buyer,
                amount,
                description: description.to_owned(),
                attempts: 1,
                retry_at,
            },
        );
        self.send_commit_request(now, tx);
        Ok(tx)
    }

    /// Hands `amount` back to the money office: a `Redeem` entry now, credited
    /// to the owner's account at the next sync. Returns the redeem id.
    pub fn redeem(&mut self, now: Timestamp, amount: Amount) -> Result<[u8; 16], RedeemError> {
        if !amount.is_positive() || amount.currency() != self.currency() {
            return Err(RedeemError::InvalidAmount(self.currency()));
        }
        let balance = self.balance();
        let after = balance
            .checked_sub(amount)
            .map_err(|_| RedeemError::InsufficientFunds { balance })?;
        if after.is_negative() {
            return Err(RedeemError::InsufficientFunds { balance });
        }
        let redeem_id = self.random_bytes();
        let mut batch = WriteBatch::new();
        self.append_entry(
            &mut batch,
            now,
            EntryKind::Redeem { redeem_id, amount },
            after,
        );
        self.issue_write(batch);
        Ok(redeem_id)
    }

    /// Sequence of the first chain entry the office has not attested: 0
    /// before the first sync (the enrolment attestation names no entry).
    pub fn next_unsynced_seq(&self) -> u64 {
        if self.attestation.head_hash == GENESIS_PREV_HASH {
            0
        } else {
            self.attestation.seq.saturating_add(1)
        }
    }

    /// True when the office has attested this wallet's chain up to `seq`.
    fn attested(&self, seq: u64) -> bool {
        self.attestation.head_hash != GENESIS_PREV_HASH && seq <= self.attestation.seq
    }

    /// Forgets committed sales whose buyer never acknowledged, once the
    /// claim deadline passed and the office holds the claim: from then on the
    /// buyer learns the outcome from the office (Settled), never from us, so
    /// no STATUS can reach a seller that forgot and be answered ABORT.
    fn forget_settled_sales(&mut self, now: Timestamp) {
        let settled: Vec<TxId> = self
            .sales
            .iter()
            .filter(|(_, s)| {
                matches!(s, Sale::Committing { claim_deadline, receive_seq, .. }
                    if *claim_deadline <= now && self.attested(*receive_seq))
            })
            .map(|(tx, _)| *tx)
            .collect();
        if settled.is_empty() {
            return;
        }
        let mut batch = WriteBatch::new();
        for tx in settled {
            self.sales.remove(&tx);
            batch.push(Write::DeleteTx { tx_id: tx.0 });
            self.push_event(Event::SaleSettledByOffice { tx });
        }
        self.issue_write(batch);
    }

    /// The office's latest attestation of this wallet.
    pub fn attestation(&self) -> &SyncAttestation {
        &self.attestation
    }

    /// The money office's certificate.
    pub fn office(&self) -> &Certificate {
        &self.office
    }

    /// The newest revocation list this wallet holds from its office.
    pub fn revocation_list(&self) -> Option<&RevocationList> {
        self.trust.revocation_list(&self.office.subject())
    }

    /// Installs `list` if it is the office's, genuine and newer, and makes it
    /// durable.
    fn offer_revocation_list(&mut self, list: Option<RevocationList>) -> Option<u64> {
        let list = list?;
        if list.issuer != self.office.subject() {
            return None;
        }
        let bytes = list.to_wire();
        match self.trust.install_revocation_list(list) {
            Ok(mpay_identity::RevocationUpdate::Installed { version }) => {
                let mut batch = WriteBatch::new();
                batch.push(Write::PutMeta {
                    key: meta::REVOCATION_LIST.into(),
                    value: bytes,
                });
                self.issue_write(batch);
                // Buyers found before may be revoked now.
                let trust = &self.trust;
                self.nearby.retain(|id, _| !trust.is_revoked(id));
                self.push_event(Event::RevocationListInstalled { version });
                Some(version)
            }
            _ => None,
        }
    }

    /// The sealed sync request for the office: the chain entries after the
    /// last attested one (at most [`SYNC_ENTRIES_MAX`]) and the payments held
    /// prepared past their claim deadline.
    pub fn sync_request(&mut self, now: Timestamp) -> Result<Vec<u8>, SyncError> {
        let from = usize::try_from(self.next_unsynced_seq())
            .map_err(|_| SyncError::Local("chain longer than memory"))?;
        let entries: Vec<ChainEntry> = self
            .chain
            .iter()
            .skip(from)
            .take(SYNC_ENTRIES_MAX)
            .cloned()
            .collect();
        let uncertain: Vec<Uncertain> = self
            .prepared
            .iter()
            .filter(|(_, p)| p.claim_deadline <= now)
            .take(SYNC_UNCERTAIN_MAX)
            .map(|(tx, p)| Uncertain {
                tx: *tx,
                pay_seq: p.pay_seq,
            })
            .collect();
        let request = SyncRequest {
            entries,
            uncertain,
            revocation_version: self.revocation_list().map_or(0, |l| l.version),
            head_seq: self.chain.last().map_or(0, |e| e.seq),
        };
        let header = Header {
            version: ENVELOPE_VERSION,
            suite: self.me.keys.suite(),
            kind: crate::sync::kind::SYNC_REQUEST,
            sender: self.me.id,
            receiver: self.office.subject(),
            tx_id: self.random_bytes(),
            nonce: self.rng.next_u64(),
            sent_at: now,
        };
        let office_keys = *self.office.keys();
        Ok(envelope::seal(
            &self.me.keys,
            &header,
            &request.to_wire(),
            &office_keys,
            &mut self.rng,
        )?)
    }

    /// Applies the office's sealed answer to a sync: the new attestation,
    /// a newer revocation list, and resolutions of uncertain payments. On
    /// error nothing changed.
    pub fn apply_sync_response(
        &mut self,
        now: Timestamp,
        frame: &[u8],
    ) -> Result<SyncSummary, SyncError> {
        let unverified = envelope::open(frame, &self.me.keys, self.me.id, &self.trust, now)?;
        if unverified.header().sender != self.office.subject()
            || unverified.header().kind != crate::sync::kind::SYNC_RESPONSE
        {
            return Err(SyncError::NotFromOffice);
        }
        let office = self.office.clone();
        let verified = unverified.verify(&office, &self.trust, &mut self.replay, now)?;
        let response = SyncResponse::from_wire(verified.payload())?;
        let attestation = response.attestation;
        if attestation.wallet != self.me.id
            || attestation.office != office.subject()
            || !attestation.verify(office.keys())
        {
            return Err(SyncError::BadAttestation);
        }
        // A wallet restored from a backup is behind what the office attested:
        // the office sends the entries after our head. They must be our own
        // signed entries continuing our chain, up to at most the attested
        // head; then we continue from them (a prefix, not a fork).
        let catch_up = response.entries;
        if !catch_up.is_empty()
            && (crate::chain::verify_chain(&self.me.keys.public(), self.chain.last(), &catch_up)
                .is_err()
                || catch_up.iter().any(|e| e.seq > attestation.seq))
        {
            return Err(SyncError::BadCatchUp);
        }
        let head_after = catch_up.last().or(self.chain.last()).map_or(0, |e| e.seq);
        let entry_at = |seq: u64| {
            usize::try_from(seq)
                .ok()
                .and_then(|i| self.chain.get(i))
                .or_else(|| catch_up.iter().find(|e| e.seq == seq))
        };
        let nothing_attested = attestation.seq == 0 && attestation.head_hash == GENESIS_PREV_HASH;
        // Caught up: the attested head is in our chain (with what the office
        // sent). Otherwise this round adopts what came and the next goes on.
        let caught_up = nothing_attested || attestation.seq <= head_after;
        if caught_up {
            match entry_at(attestation.seq) {
                _ if nothing_attested => {}
                Some(entry) if entry.hash() == attestation.head_hash => {}
                _ => return Err(SyncError::ForkedChain),
            }
            if attestation.seq < self.attestation.seq {
                return Err(SyncError::BadAttestation);
            }
        } else if catch_up.is_empty() {
            return Err(SyncError::ForkedChain);
        }
        for resolution in &response.resolutions {
            if resolution.wallet != self.me.id
                || resolution.office != office.subject()
                || !resolution.verify(office.keys())
            {
                return Err(SyncError::BadResolution);
            }
        }
        // Checked; now apply.
        let mut batch = WriteBatch::new();
        for entry in catch_up {
            batch.push(Write::AppendChain {
                seq: entry.seq,
                entry: entry.to_wire(),
            });
            self.index_entry(&entry);
            self.chain.push(entry);
        }
        // A payment the adopted entries voided is no longer prepared.
        let over: Vec<TxId> = self
            .prepared
            .keys()
            .filter(|tx| self.voided.contains(tx))
            .copied()
            .collect();
        for tx in over {
            self.prepared.remove(&tx);
            batch.push(Write::DeleteTx { tx_id: tx.0 });
        }
        let head = self.chain.last().map_or(0, |e| e.seq);
        let mut summary = SyncSummary {
            attested_seq: if caught_up {
                attestation.seq
            } else {
                self.attestation.seq
            },
            entries_left: if caught_up {
                head.saturating_sub(attestation.seq)
            } else {
                attestation.seq.saturating_sub(head)
            },
            ..SyncSummary::default()
        };
        summary.revocation_version = self.offer_revocation_list(response.revocation_list);
        if caught_up {
            batch.push(Write::PutMeta {
                key: meta::ATTESTATION.into(),
                value: attestation.to_wire(),
            });
            self.attestation = attestation;
        }
        for resolution in response.resolutions {
            self.apply_resolution(now, &mut batch, resolution, &mut summary);
        }
        self.issue_write(batch);
        self.forget_settled_sales(now);
        self.check_invariants();
        Ok(summary)
    }

    fn apply_resolution(
        &mut self,
        now: Timestamp,
        batch: &mut WriteBatch,
        resolution: Resolution,
        summary: &mut SyncSummary,
    ) {
        let tx = resolution.tx;
        let Some(prepared) = self.prepared.get(&tx) else {
            return;
        };
        if prepared.pay_seq != resolution.pay_seq {
            return;
        }
        let (seller, amount, pay_seq) = (prepared.seller, prepared.amount, prepared.pay_seq);
        match resolution.outcome {
            Outcome::Settled => {
                self.prepared.remove(&tx);
                batch.push(Write::DeleteTx { tx_id: tx.0 });
                summary.settled.push(tx);
                self.push_event(Event::PaymentCommitted { tx, seller, amount });
            }
            Outcome::Released => {
                let Ok(balance) = self.balance().checked_add(amount) else {
                    return;
                };
                self.prepared.remove(&tx);
                self.append_entry(
                    batch,
                    now,
                    EntryKind::Void {
                        tx,
                        paid_seq: pay_seq,
                        amount,
                        proof: VoidProof::OfficeRelease(resolution),
                    },
                    balance,
                );
                batch.push(Write::DeleteTx { tx_id: tx.0 });
                summary.released.push(tx);
                self.push_event(Event::PaymentAborted { tx, amount });
            }
        }
    }

    /// Cancels a sale still in phase 1 (no AGREED yet): it is aborted now
    /// and the buyer told so. Returns false if the sale is unknown or already
    /// committed (a committed sale cannot be cancelled: the money moved).
    pub fn cancel_sale(&mut self, now: Timestamp, tx: TxId) -> bool {
        match self.sales.get(&tx) {
            Some(Sale::Requesting { buyer, .. }) => {
                let buyer = *buyer;
                self.abort_sale(now, tx, buyer, AbortReason::NoAnswer);
                true
            }
            _ => false,
        }
    }

    /// Enters buyer mode: answer LOOKUPs and pay one request within `intent`.
    /// Shares nothing with the seller.
    pub fn set_buy_intent(&mut self, intent: BuyIntent) {
        self.set_buy_intent_sharing(intent, None);
    }

    /// [`Wallet::set_buy_intent`], sharing `shipping` with the seller this
    /// intent pays: inside the AGREED, sealed to that seller only.
    pub fn set_buy_intent_sharing(&mut self, intent: BuyIntent, shipping: Option<Shipping>) {
        self.intent = Some(intent);
        self.intent_shipping = shipping;
    }

    pub fn clear_buy_intent(&mut self) {
        self.intent = None;
        self.intent_shipping = None;
    }

    /// The shipping details the buyer of sale `tx` shared, if it shared
    /// any (kept in this wallet's store from the commit on).
    pub fn shipping_shared(&self, tx: &TxId) -> Option<&Shipping> {
        self.shipping.get(tx)
    }

    pub fn buy_intent(&self) -> Option<BuyIntent> {
        self.intent
    }

    // ---- inputs ------------------------------------------------------------

    /// Handles one received frame. On error nothing changed (a LOOKUP-REPLY
    /// from a revoked wallet only adds [`Event::BuyerRevoked`]).
    pub fn handle_frame(&mut self, now: Timestamp, frame: &[u8]) -> Result<(), InboundError> {
        let unverified = envelope::open(frame, &self.me.keys, self.me.id, &self.trust, now)?;
        let header = *unverified.header();
        if header.sender == self.me.id {
            return Err(InboundError::FromSelf);
        }
        if header.kind == kind::LOOKUP && self.lookups_exhausted(now) {
            return Err(InboundError::RateLimited(
                self.config.lookups_per_window_max,
            ));
        }
        // Messages that introduce their sender carry its certificate; for the
        // rest the sender must be a peer we already know.
        let carried = match header.kind {
            kind::LOOKUP | kind::LOOKUP_REPLY | kind::COMMIT_REQUEST | kind::STATUS => {
                match Message::decode(header.kind, unverified.unverified_payload())? {
                    Message::Lookup(m) => Some(m.seller_certificate),
                    Message::LookupReply(m) => Some(m.buyer_certificate),
                    Message::CommitRequest(m) => Some(m.seller_certificate),
                    Message::Status(m) => Some(m.buyer_certificate),
                    _ => None,
                }
            }
            _ => None,
        };
        let certificate = match carried {
            Some(cert) => cert,
            None => self
                .peers
                .get(&header.sender)
                .cloned()
                .ok_or(InboundError::UnknownPeer(header.sender))?,
        };
        if certificate.body.role != Role::Wallet {
            return Err(InboundError::NotAWallet);
        }
        let verified = match unverified.verify(&certificate, &self.trust, &mut self.replay, now) {
            Ok(verified) => verified,
            Err(EnvelopeError::Certificate(CertificateError::Revoked { subject }))
                if header.kind == kind::LOOKUP_REPLY =>
            {
                // Refused, but a seller asking for this buyer must learn why
                // it never answers: it is revoked. Nothing else changes.
                self.push_event(Event::BuyerRevoked { buyer: subject });
                return Err(
                    EnvelopeError::Certificate(CertificateError::Revoked { subject }).into(),
                );
            }
            Err(e) => return Err(e.into()),
        };
        let message = Message::decode(header.kind, verified.payload())?;
        if header.kind == kind::LOOKUP {
            self.take_lookup(now);
        }
        let tx = TxId(header.tx_id);
        let from = header.sender;
        match message {
            Message::Lookup(m) => self.on_lookup(now, tx, certificate, m.revocation_list),
            Message::LookupReply(m) => self.on_lookup_reply(now, m),
            Message::CommitRequest(m) => self.on_commit_request(now, tx, m),
            Message::Agreed(m) => self.on_agreed(now, tx, from, m),
            Message::Abort(m) => self.on_abort(now, tx, from, m, &verified),
            Message::Commit => self.on_commit(now, tx, from),
            Message::Committed => self.on_committed(tx, from),
            Message::Status(m) => self.on_status(now, tx, from, m.buyer_certificate),
            Message::Aborted => {}
        }
        self.check_invariants();
        Ok(())
    }

    /// Retransmits what is due.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let due_sales: Vec<TxId> = self
            .sales
            .iter()
            .filter(|(_, s)| match s {
                Sale::Requesting { retry_at, .. } => *retry_at <= now,
                Sale::Committing {
                    retry_at,
                    claim_deadline,
                    ..
                } => *retry_at <= now && *retry_at < *claim_deadline,
            })
            .map(|(tx, _)| *tx)
            .collect();
        for tx in due_sales {
            self.sale_timeout(now, tx);
        }
        self.forget_settled_sales(now);
        let due_prepared: Vec<TxId> = self
            .prepared
            .iter()
            .filter(|(_, p)| !p.awaiting_office && (p.status_at <= now || p.claim_deadline <= now))
            .map(|(tx, _)| *tx)
            .collect();
        for tx in due_prepared {
            self.prepared_timeout(now, tx);
        }
        self.check_invariants();
    }

    // ---- seller side -------------------------------------------------------

    fn on_lookup_reply(&mut self, now: Timestamp, reply: LookupReply) {
        let buyer_certificate = reply.buyer_certificate;
        if buyer_certificate.body.limits.map(|l| l.currency()) != Some(self.currency()) {
            return;
        }
        let buyer = buyer_certificate.subject();
        self.offer_revocation_list(reply.revocation_list);
        let attestation = reply.attestation;
        if attestation.wallet != buyer
            || attestation.office != self.office.subject()
            || !attestation.verify(self.office.keys())
        {
            self.push_event(Event::BuyerRefused {
                buyer,
                reason: AbortReason::BadAuthorization,
            });
            return;
        }
        if !self.attestation_fresh(&buyer_certificate, &attestation, now) {
            self.push_event(Event::BuyerRefused {
                buyer,
                reason: AbortReason::SyncTooOld,
            });
            return;
        }
        if !self.nearby.contains_key(&buyer) && self.nearby.len() >= self.config.nearby_buyers_max {
            // Forget the buyer seen longest ago.
            if let Some((&oldest, _)) = self.nearby.iter().min_by_key(|(_, n)| n.seen_at) {
                self.nearby.remove(&oldest);
            }
        }
        self.nearby.insert(
            buyer,
            Nearby {
                seen_at: now,
                attestation,
            },
        );
        self.peers.insert(buyer, buyer_certificate);
        self.push_event(Event::BuyerFound { buyer });
    }

    /// Whether `attestation` (already verified) is recent enough under the
    /// payer's certificate limits.
    fn attestation_fresh(
        &self,
        payer: &Certificate,
        attestation: &SyncAttestation,
        now: Timestamp,
    ) -> bool {
        let Some(limits) = payer.body.limits else {
            return false;
        };
        let max_age_ms = u64::from(limits.days_between_syncs_max).saturating_mul(MILLIS_PER_DAY);
        // An attestation from the future is as suspect as a stale one.
        attestation.synced_at <= now.saturating_add_ms(mpay_envelope::CLOCK_SKEW_MAX_MS)
            && now.millis_since(attestation.synced_at) <= max_age_ms
    }

    fn send_commit_request(&mut self, now: Timestamp, tx: TxId) {
        let Some(Sale::Requesting {
            buyer,
            amount,
            description,
            ..
        }) = self.sales.get(&tx)
        else {
            return;
        };
        let buyer = *buyer;
        let message = Message::CommitRequest(CommitRequest {
            amount: *amount,
            description: description.clone(),
            seller_certificate: self.me.certificate.clone(),
        });
        self.send(now, buyer, tx, &message);
    }

    fn on_agreed(&mut self, now: Timestamp, tx: TxId, from: PartyId, agreed: Agreed) {
        match self.sales.get(&tx) {
            Some(Sale::Requesting { buyer, amount, .. }) if *buyer == from => {
                let (buyer, amount) = (*buyer, *amount);
                match self.check_authorization(now, tx, buyer, amount, &agreed.authorization) {
                    Ok(claim_deadline) => {
                        self.commit_sale(now, tx, buyer, amount, claim_deadline, agreed)
                    }
                    Err(reason) => self.abort_sale(now, tx, buyer, reason),
                }
            }
            Some(Sale::Committing { buyer, .. }) if *buyer == from => {
                // A duplicate AGREED: our COMMIT may have been lost.
                self.send(now, from, tx, &Message::Commit);
            }
            Some(_) => {}
            None => self.answer_from_chain(now, tx, from),
        }
    }

    /// Answers a buyer asking about a sale this wallet holds no record of
    /// (COMPLETE erased it, or it was never committed): from the chain. A
    /// `Receive` entry means COMMIT, forever; a signed ABORT goes only to a
    /// transaction this wallet never committed (presumed abort: we gave up,
    /// or restarted in phase 1). Another party asking about a committed sale
    /// gets nothing signed.
    fn answer_from_chain(&mut self, now: Timestamp, tx: TxId, from: PartyId) {
        match self.received.get(&tx) {
            Some(_) if self.config.fault_presumed_abort_after_complete => {
                self.send_abort(now, from, tx, AbortReason::UnknownTransaction);
            }
            Some(buyer) if *buyer == from => self.send(now, from, tx, &Message::Commit),
            Some(_) => {}
            None => self.send_abort(now, from, tx, AbortReason::UnknownTransaction),
        }
    }

    fn check_authorization(
        &self,
        now: Timestamp,
        tx: TxId,
        buyer: PartyId,
        amount: Amount,
        entry: &ChainEntry,
    ) -> Result<Timestamp, AbortReason> {
        let cert = self
            .peers
            .get(&buyer)
            .ok_or(AbortReason::BadAuthorization)?;
        if entry.wallet != buyer || entry.verify(cert.keys()).is_err() {
            return Err(AbortReason::BadAuthorization);
        }
        let EntryKind::Pay {
            tx: entry_tx,
            seller,
            amount: entry_amount,
            claim_deadline,
        } = entry.kind
        else {
            return Err(AbortReason::BadAuthorization);
        };
        let claim_floor = now.saturating_add_ms(self.config.claim_window_min_ms);
        if entry_tx != tx
            || seller != self.me.id
            || entry_amount != amount
            || claim_deadline < claim_floor
            || entry.balance_after.is_negative()
            || entry.balance_after.currency() != amount.currency()
        {
            return Err(AbortReason::BadAuthorization);
        }
        if let Some(limits) = cert.body.limits
            && amount.checked_cmp(&limits.payment_max) == Ok(std::cmp::Ordering::Greater)
        {
            return Err(AbortReason::OverLimit);
        }
        // The payer's chain may not run too far past its last sync: entries
        // since the attestation bound the payments made since.
        let attestation = &self
            .nearby
            .get(&buyer)
            .ok_or(AbortReason::SyncTooOld)?
            .attestation;
        let since_sync = entry.seq.saturating_sub(attestation.seq);
        let max = cert
            .body
            .limits
            .map_or(0, |l| u64::from(l.payments_between_syncs_max));
        if entry.seq <= attestation.seq || since_sync > max {
            return Err(AbortReason::SyncTooOld);
        }
        if !self.attestation_fresh(cert, attestation, now) {
            return Err(AbortReason::SyncTooOld);
        }
        Ok(claim_deadline)
    }

    fn commit_sale(
        &mut self,
        now: Timestamp,
        tx: TxId,
        buyer: PartyId,
        amount: Amount,
        claim_deadline: Timestamp,
        agreed: Agreed,
    ) {
        let Ok(balance) = self.balance().checked_add(amount) else {
            self.abort_sale(now, tx, buyer, AbortReason::OverLimit);
            return;
        };
        let Agreed {
            authorization,
            shipping,
        } = agreed;
        let mut batch = WriteBatch::new();
        if let Some(shipping) = shipping {
            // With the Receive entry, in the same batch: a committed sale
            // never loses what its buyer shared.
            batch.push(Write::PutMeta {
                key: format!("{}{tx}", meta::SHIPPING_PREFIX),
                value: shipping.as_str().as_bytes().to_vec(),
            });
            self.shipping.insert(tx, shipping);
        }
        let receive_seq = self.append_entry(
            &mut batch,
            now,
            EntryKind::Receive {
                tx,
                buyer,
                amount,
                authorization: Box::new(authorization.clone()),
            },
            balance,
        );
        let record = TxRecord::SellerCommitted {
            buyer,
            authorization: Box::new(authorization),
            receive_seq,
        };
        self.write_tx_record(batch, tx, &record, buyer);
        let retry_at = now.saturating_add_ms(self.retry_interval(0));
        self.sales.insert(
            tx,
            Sale::Committing {
                buyer,
                attempts: 1,
                retry_at,
                claim_deadline,
                receive_seq,
            },
        );
        self.send(now, buyer, tx, &Message::Commit);
        self.push_event(Event::SaleCommitted { tx, buyer, amount });
    }

    fn abort_sale(&mut self, now: Timestamp, tx: TxId, buyer: PartyId, reason: AbortReason) {
        self.sales.remove(&tx);
        self.send_abort(now, buyer, tx, reason);
        self.push_event(Event::SaleAborted { tx, reason });
    }

    fn on_committed(&mut self, tx: TxId, from: PartyId) {
        if let Some(Sale::Committing { buyer, .. }) = self.sales.get(&tx)
            && *buyer == from
        {
            // COMPLETE: forget the transaction. The Receive entry stays.
            self.sales.remove(&tx);
            let mut batch = WriteBatch::new();
            batch.push(Write::DeleteTx { tx_id: tx.0 });
            self.issue_write(batch);
            self.push_event(Event::SaleCompleted { tx });
        }
    }

    fn on_status(&mut self, now: Timestamp, tx: TxId, from: PartyId, buyer: Certificate) {
        self.peers.entry(from).or_insert(buyer);
        match self.sales.get(&tx) {
            Some(Sale::Committing { buyer, .. }) if *buyer == from => {
                self.send(now, from, tx, &Message::Commit);
            }
            // Phase 1 still running: our COMMIT-REQUEST retransmission will
            // fetch the AGREED again.
            Some(Sale::Requesting { buyer, .. }) if *buyer == from => {}
            Some(_) => {}
            None => self.answer_from_chain(now, tx, from),
        }
    }

    fn sale_timeout(&mut self, now: Timestamp, tx: TxId) {
        let (buyer, attempt, committing) = match self.sales.get(&tx) {
            Some(Sale::Requesting {
                buyer, attempts, ..
            }) => (*buyer, *attempts, false),
            Some(Sale::Committing {
                buyer, attempts, ..
            }) => (*buyer, *attempts, true),
            None => return,
        };
        if !committing && attempt >= self.config.commit_request_attempts_max {
            // No answer after every retry: presumed abort.
            self.abort_sale(now, tx, buyer, AbortReason::NoAnswer);
            return;
        }
        let next = now.saturating_add_ms(self.retry_interval(attempt));
        match self.sales.get_mut(&tx) {
            Some(Sale::Requesting {
                attempts, retry_at, ..
            })
            | Some(Sale::Committing {
                attempts, retry_at, ..
            }) => {
                *attempts = attempts.saturating_add(1);
                *retry_at = next;
            }
            None => return,
        }
        if committing {
            self.send(now, buyer, tx, &Message::Commit);
        } else {
            self.send_commit_request(now, tx);
        }
    }

    // ---- buyer side --------------------------------------------------------

    fn intent_active(&self, now: Timestamp) -> Option<BuyIntent> {
        self.intent.filter(|i| i.expires_at > now)
    }

    fn on_lookup(
        &mut self,
        now: Timestamp,
        lookup_tx: TxId,
        seller_certificate: Certificate,
        revocation_list: Option<RevocationList>,
    ) {
        // Revocations spread through every LOOKUP, buyer mode or not.
        self.offer_revocation_list(revocation_list);
        let Some(intent) = self.intent_active(now) else {
            return;
        };
        let seller = seller_certificate.subject();
        if intent.seller.is_some_and(|s| s != seller) {
            return;
        }
        self.peers.insert(seller, seller_certificate);
        let reply = Message::LookupReply(LookupReply {
            buyer_certificate: self.me.certificate.clone(),
            attestation: self.attestation.clone(),
            revocation_list: self.revocation_list().cloned(),
        });
        self.send(now, seller, lookup_tx, &reply);
    }

    fn on_commit_request(&mut self, now: Timestamp, tx: TxId, request: CommitRequest) {
        let seller_cert = request.seller_certificate;
        let seller = seller_cert.subject();
        if let Some(prepared) = self.prepared.get(&tx) {
            if prepared.seller == seller {
                // Duplicate: our AGREED may have been lost; send it again.
                self.resend_agreed(now, tx);
            }
            return;
        }
        if self.pay_seq_by_tx.contains_key(&tx) {
            if self.voided.contains(&tx) {
                self.send_abort(now, seller, tx, AbortReason::UnknownTransaction);
            }
            // Committed already: a stale duplicate.
            return;
        }
        self.peers.insert(seller, seller_cert);
        let amount = request.amount;
        let decision = self.decide_payment(now, seller, amount);
        self.push_event(Event::PaymentRequested {
            tx,
            seller,
            amount,
            description: request.description,
            accepted: decision.is_ok(),
        });
        match decision {
            Ok(()) => self.prepare_payment(now, tx, seller, amount),
            Err(reason) => self.send_abort(now, seller, tx, reason),
        }
    }

    fn decide_payment(
        &self,
        now: Timestamp,
        seller: PartyId,
        amount: Amount,
    ) -> Result<(), AbortReason> {
        use std::cmp::Ordering::Greater;
        let intent = self.intent_active(now).ok_or(AbortReason::NotAgreed)?;
        if amount.currency() != self.currency() {
            return Err(AbortReason::WrongCurrency);
        }
        if !amount.is_positive() {
            return Err(AbortReason::InvalidAmount);
        }
        if intent.seller.is_some_and(|s| s != seller)
            || amount.checked_cmp(&intent.max_amount) != Ok(std::cmp::Ordering::Less)
                && amount.checked_cmp(&intent.max_amount) != Ok(std::cmp::Ordering::Equal)
        {
            return Err(AbortReason::NotAgreed);
        }
        if amount.checked_cmp(&self.me.limits.payment_max) == Ok(Greater) {
            return Err(AbortReason::OverLimit);
        }
        if amount.checked_cmp(&self.balance()) == Ok(Greater) {
            return Err(AbortReason::InsufficientFunds);
        }
        if self.prepared.len() >= self.config.prepared_txs_max {
            return Err(AbortReason::Busy);
        }
        Ok(())
    }

    fn prepare_payment(&mut self, now: Timestamp, tx: TxId, seller: PartyId, amount: Amount) {
        let Ok(balance) = self.balance().checked_sub(amount) else {
            self.send_abort(now, seller, tx, AbortReason::InsufficientFunds);
            return;
        };
        let claim_deadline = now.saturating_add_ms(self.config.claim_window_ms);
        let shipping = self.intent_shipping.take();
        let mut batch = WriteBatch::new();
        let pay_seq = self.append_entry(
            &mut batch,
            now,
            EntryKind::Pay {
                tx,
                seller,
                amount,
                claim_deadline,
            },
            balance,
        );
        let record = TxRecord::BuyerPrepared {
            seller,
            amount,
            pay_seq,
            claim_deadline,
            shipping: shipping.clone(),
        };
        self.write_tx_record(batch, tx, &record, seller);
        self.prepared.insert(
            tx,
            Prepared {
                seller,
                amount,
                pay_seq,
                claim_deadline,
                shipping,
                status_attempts: 0,
                status_at: now.saturating_add_ms(self.config.status_after_ms),
                awaiting_office: false,
            },
        );
        // One intent pays one request.
        self.clear_buy_intent();
        self.resend_agreed(now, tx);
    }

    fn resend_agreed(&mut self, now: Timestamp, tx: TxId) {
        let Some(prepared) = self.prepared.get(&tx) else {
            return;
        };
        let seller = prepared.seller;
        let shipping = prepared.shipping.clone();
        let Some(entry) = usize::try_from(prepared.pay_seq)
            .ok()
            .and_then(|i| self.chain.get(i))
            .cloned()
        else {
            return;
        };
        self.send(
            now,
            seller,
            tx,
            &Message::Agreed(Agreed {
                authorization: entry,
                shipping,
            }),
        );
    }

    fn on_commit(&mut self, now: Timestamp, tx: TxId, from: PartyId) {
        if let Some(prepared) = self.prepared.get(&tx) {
            if prepared.seller != from {
                return;
            }
            // REDO: the Pay entry already holds the new balance; dropping the
            // UNDO record releases the lock and makes the payment final.
            let prepared = self.prepared.remove(&tx);
            let mut batch = WriteBatch::new();
            batch.push(Write::DeleteTx { tx_id: tx.0 });
            self.issue_write(batch);
            self.send(now, from, tx, &Message::Committed);
            if let Some(p) = prepared {
                self.push_event(Event::PaymentCommitted {
                    tx,
                    seller: p.seller,
                    amount: p.amount,
                });
            }
        } else if self.pay_seq_by_tx.contains_key(&tx) && !self.voided.contains(&tx) {
            // Already committed: acknowledge again (idempotent).
            self.send(now, from, tx, &Message::Committed);
        }
        // A COMMIT for a transaction we never agreed to, or aborted: ignore.
    }

    fn on_abort(
        &mut self,
        now: Timestamp,
        tx: TxId,
        from: PartyId,
        abort: Abort,
        verified: &envelope::Verified,
    ) {
        // Seller side: the buyer refused our request.
        if let Some(Sale::Requesting { buyer, .. }) = self.sales.get(&tx)
            && *buyer == from
        {
            self.sales.remove(&tx);
            self.push_event(Event::SaleAborted {
                tx,
                reason: abort.reason,
            });
            return;
        }
        // A sale we committed stays committed: an ABORT for it is not
        // acknowledged (nothing signed may say it aborted).
        if self.received.contains_key(&tx) {
            return;
        }
        // Buyer side: UNDO.
        let Some(prepared) = self.prepared.get(&tx) else {
            if !self.pay_seq_by_tx.contains_key(&tx) || self.voided.contains(&tx) {
                self.send(now, from, tx, &Message::Aborted);
            }
            return;
        };
        if prepared.seller != from {
            return;
        }
        let (amount, pay_seq) = (prepared.amount, prepared.pay_seq);
        let Ok(balance) = self.balance().checked_add(amount) else {
            return;
        };
        self.prepared.remove(&tx);
        let mut batch = WriteBatch::new();
        let evidence = AbortEvidence {
            header: *verified.header(),
            payload: verified.payload().to_vec(),
            signature: *verified.signature(),
        };
        self.append_entry(
            &mut batch,
            now,
            EntryKind::Void {
                tx,
                paid_seq: pay_seq,
                amount,
                proof: VoidProof::SellerAbort(evidence),
            },
            balance,
        );
        batch.push(Write::DeleteTx { tx_id: tx.0 });
        self.issue_write(batch);
        self.send(now, from, tx, &Message::Aborted);
        self.push_event(Event::PaymentAborted { tx, amount });
    }

    fn prepared_timeout(&mut self, now: Timestamp, tx: TxId) {
        let interval_max = self.config.retry_interval_max_ms;
        let interval_min = self.config.retry_interval_min_ms;
        let jitter = self.jitter(interval_min);
        let Some(prepared) = self.prepared.get_mut(&tx) else {
            return;
        };
        if prepared.claim_deadline <= now {
            prepared.awaiting_office = true;
            self.push_event(Event::PaymentAwaitingOffice { tx });
            return;
        }
        let shift = prepared.status_attempts.min(16);
        let interval = interval_min
            .saturating_mul(1u64 << shift)
            .min(interval_max)
            .saturating_add(jitter);
        prepared.status_attempts = prepared.status_attempts.saturating_add(1);
        prepared.status_at = now.saturating_add_ms(interval);
        let seller = prepared.seller;
        let status = Message::Status(crate::messages::Status {
            buyer_certificate: self.me.certificate.clone(),
        });
        self.send(now, seller, tx, &status);
    }

    // ---- plumbing ------------------------------------------------------------

    /// True when the current LOOKUP window is used up (a window that ended
    /// counts as empty).
    fn lookups_exhausted(&self, now: Timestamp) -> bool {
        let (start, taken) = self.lookup_window;
        now.millis_since(start) < self.config.lookup_window_ms
            && taken >= self.config.lookups_per_window_max
    }

    /// Counts a verified LOOKUP in the window, opening a new window when the
    /// last one ended.
    fn take_lookup(&mut self, now: Timestamp) {
        let (start, taken) = self.lookup_window;
        self.lookup_window = if now.millis_since(start) >= self.config.lookup_window_ms {
            (now, 1)
        } else {
            (start, taken.saturating_add(1))
        };
    }

    fn random_bytes(&mut self) -> [u8; 16] {
        let mut bytes = [0u8; 16];
        self.rng.fill_bytes(&mut bytes);
        bytes
    }

    /// A uniform-enough random delay in `0..=max_ms` (the modulo bias is
    /// irrelevant for jitter).
    fn jitter(&mut self, max_ms: u64) -> u64 {
        self.rng.next_u64() % max_ms.saturating_add(1)
    }

    /// Bounded exponential backoff with jitter for attempt `attempt` (0-based).
    fn retry_interval(&mut self, attempt: u32) -> u64 {
        let base = self
            .config
            .retry_interval_min_ms
            .saturating_mul(1u64 << attempt.min(16))
            .min(self.config.retry_interval_max_ms);
        base.saturating_add(self.jitter(base / 4))
    }

    /// Appends a signed entry to the chain in memory and to `batch`; returns
    /// its sequence number.
    fn append_entry(
        &mut self,
        batch: &mut WriteBatch,
        now: Timestamp,
        kind: EntryKind,
        balance_after: Amount,
    ) -> u64 {
        let (seq, prev_hash) = match self.chain.last() {
            Some(last) => (last.seq.saturating_add(1), last.hash()),
            None => (0, GENESIS_PREV_HASH),
        };
        let entry = ChainEntry::sign(
            &self.me.keys,
            self.me.id,
            seq,
            prev_hash,
            kind,
            balance_after,
            now,
        );
        if let Some(last) = self.chain.last() {
            assert_eq!(
                entry.check_follows(last),
                Ok(()),
                "wallet built a chain entry that does not follow its chain"
            );
        }
        batch.push(Write::AppendChain {
            seq,
            entry: entry.to_wire(),
        });
        self.index_entry(&entry);
        self.chain.push(entry);
        seq
    }

    /// Completes `batch` with the transaction's log record and the peer's
    /// certificate, and issues it.
    fn write_tx_record(
        &mut self,
        mut batch: WriteBatch,
        tx: TxId,
        record: &TxRecord,
        peer: PartyId,
    ) {
        batch.push(Write::PutTx {
            tx_id: tx.0,
            record: record.to_wire(),
        });
        self.persist_peer(&mut batch, peer);
        self.issue_write(batch);
    }

    /// Adds the peer's certificate to `batch` unless the store already holds
    /// that very certificate.
    fn persist_peer(&mut self, batch: &mut WriteBatch, peer: PartyId) {
        let Some(cert) = self.peers.get(&peer) else {
            return;
        };
        if self.durable_peers.get(&peer) == Some(cert) {
            return;
        }
        batch.push(Write::PutPeer {
            party_id: peer.0,
            certificate: cert.to_wire(),
        });
        self.durable_peers.insert(peer, cert.clone());
    }

    fn issue_write(&mut self, batch: WriteBatch) {
        self.write_issued += 1;
        self.writes.push_back(PendingWrite {
            id: self.write_issued,
            batch,
        });
    }

    fn header(&mut self, now: Timestamp, to: PartyId, tx: TxId, message: &Message) -> Header {
        Header {
            version: ENVELOPE_VERSION,
            suite: self.me.keys.suite(),
            kind: message.kind(),
            sender: self.me.id,
            receiver: to,
            tx_id: tx.0,
            nonce: self.rng.next_u64(),
            sent_at: now,
        }
    }

    fn send(&mut self, now: Timestamp, to: PartyId, tx: TxId, message: &Message) {
        let Some(receiver_keys) = self.peers.get(&to).map(|c| *c.keys()) else {
            return;
        };
        let header = self.header(now, to, tx, message);
        let payload = message.payload();
        // Sealing fails only on a local bug (oversized payload) or a peer key
        // that is not a valid point, which its certificate check would catch.
        if let Ok(frame) = envelope::seal(
            &self.me.keys,
            &header,
            &payload,
            &receiver_keys,
            &mut self.rng,
        ) {
            self.outbox.push_back(Outgoing {
                after_write: self.write_issued,
                transmit: Transmit { to, frame },
            });
        }
    }

    fn send_broadcast(&mut self, now: Timestamp, tx: TxId, message: &Message) {
        let header = self.header(now, PartyId::BROADCAST, tx, message);
        if let Ok(frame) = envelope::sign_broadcast(&self.me.keys, &header, &message.payload()) {
            self.outbox.push_back(Outgoing {
                after_write: self.write_issued,
                transmit: Transmit {
                    to: PartyId::BROADCAST,
                    frame,
                },
            });
        }
    }

    fn send_abort(&mut self, now: Timestamp, to: PartyId, tx: TxId, reason: AbortReason) {
        self.send(now, to, tx, &Message::Abort(Abort { reason }));
    }

    fn push_event(&mut self, event: Event) {
        if self.events.len() >= self.config.events_max {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    /// Invariants that hold between any two inputs. Cheap enough to keep on.
    fn check_invariants(&self) {
        let balance = self.balance();
        assert!(
            !balance.is_negative(),
            "wallet balance went negative: {balance}"
        );
        assert!(
            self.prepared.len() <= self.config.prepared_txs_max,
            "more prepared transactions than allowed"
        );
        for (tx, p) in &self.prepared {
            assert!(
                self.pay_seq_by_tx.get(tx) == Some(&p.pay_seq) && !self.voided.contains(tx),
                "prepared transaction {tx:?} without a standing Pay entry"
            );
        }
        assert!(self.write_completed <= self.write_issued);
    }
}

/// Re-exported so drivers need not depend on the envelope crate for it.
pub use mpay_envelope::FRAME_LEN_MAX;

impl std::fmt::Debug for Wallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wallet")
            .field("id", &self.me.id)
            .field("balance", &self.balance())
            .field("locked", &self.locked())
            .field("sales", &self.sales.len())
            .field("prepared", &self.prepared.len())
            .finish()
    }
}
