//! A model of the offline two-phase commit as `mpay-offline` implements it,
//! checked exhaustively with [stateright](https://docs.rs/stateright/0.31.0).
//!
//! # What is modelled
//!
//! One seller (the coordinator) and two buyers (participants); transfer `t`
//! is a sale by the seller to buyer `t` of `AMOUNT[t]`. Each party is the
//! engine of `crates/mpay-offline/src/wallet.rs` reduced to what decides an
//! outcome, with its driver's write contract:
//!
//! - **Durable log vs. memory.** Every party has a durable log
//!   ([`SellerLog`], [`BuyerLog`]) and a memory view of it. Handling an input
//!   may issue one write batch and queue frames; the frames that depend on
//!   the batch are *held* until the driver flushes it ([`Action::Flush`]),
//!   exactly as `Wallet::poll_transmit` holds a frame until
//!   `write_completed`. The driver (`mpay-wallet-net`) flushes before it
//!   takes the next input, so a party with a pending batch takes no input.
//! - **Seller.** `sell` sends COMMIT-REQUEST and keeps the sale in memory
//!   only (`Requesting`). On AGREED it writes the `Receive` chain entry and
//!   the `SellerCommitted` record in one batch, then COMMIT (held until the
//!   batch is durable). It resends COMMIT-REQUEST on timeout up to
//!   [`COMMIT_REQUEST_ATTEMPTS_MAX`] times, then aborts (ABORT, forgets).
//!   In `Committing` it resends COMMIT on timeout, on a duplicate AGREED and
//!   on STATUS; on COMMITTED it deletes the record (COMPLETE). With no record
//!   of a transaction it answers AGREED and STATUS from its chain: COMMIT
//!   if it holds the `Receive` (forever, also after COMPLETE), otherwise
//!   ABORT (presumed abort).
//! - **Buyer.** On COMMIT-REQUEST, if its owner's buy intent is active, it
//!   writes the `Pay` entry (REDO) and the `BuyerPrepared` record (UNDO and
//!   lock) in one batch, then AGREED; otherwise it answers ABORT. The intent
//!   lives in memory only, so a buyer that restarts refuses. Prepared, it
//!   resends AGREED on a duplicate COMMIT-REQUEST and asks with STATUS on
//!   timeout; on COMMIT it deletes the record (the `Pay` entry stands) and
//!   answers COMMITTED, on ABORT it writes a `Void` entry and deletes the
//!   record.
//! - **Network.** A set of messages in flight. Delivering a message leaves it
//!   in the set, so every message may be delivered any number of times
//!   (duplication) in any order (reordering); [`Action::Drop`] loses one. A
//!   set is exact here: with unbounded duplication two copies of one message
//!   allow nothing that one copy does not.
//! - **Crash.** Any party may crash at any time, as often as the checker
//!   likes: its memory (sales in phase 1, buy intent, held frames, a batch
//!   not yet flushed) is lost and it recovers from its durable log as
//!   `Wallet::recover` does: prepared buyers stay prepared (and ask),
//!   committed sellers resend COMMIT, sales never committed are forgotten.
//! - **Time.** Timeouts are untimed: any retransmission or give-up may fire
//!   at any moment, including too early. This covers every real timing.
//!
//! Left out, on purpose: LOOKUP / LOOKUP-REPLY (they decide no outcome; the
//! model starts with the seller knowing both buyers), ABORTED (the engine
//! ignores it: `Message::Aborted => {}`), signatures and the envelope (a
//! frame in the model is genuine; forgeries and replays are refused by the
//! envelope, see `docs/security.md`), and the money office's resolution
//! after the claim deadline (seven days; the model's buyers keep asking).
//!
//! # A dishonest buyer or seller
//!
//! [`TwoPhaseCommit::with_dishonest_buyer`] makes the buyer of
//! [`CHEAT_TRANSFER`] a cheat, [`TwoPhaseCommit::with_dishonest_seller`]
//! the seller, toward that transfer's buyer. Only that transfer starts: the
//! seller keeps nothing across transfers but its pending batch, and the
//! honest model checks two. Besides running its engine, the cheat may at any
//! moment send any message it can sign about the transfer
//! ([`Action::Forge`]); the network then delivers it any number of times,
//! which is also what a replay of its own earlier messages could achieve.
//! And it may restore any earlier copy of its durable log and restart from
//! it ([`Action::Restore`]).
//!
//! - **Buyer**: STATUS, COMMITTED and ABORT (also after COMMIT), AGREED with
//!   the `Pay` entry it signed (also after completion). Restoring lets it
//!   pay the same request again from funds it already spent. Paying two
//!   sellers from the same funds is not in the model: the money office
//!   finds it at sync (the simulator's dishonest peer does it,
//!   `crates/mpay-sim/src/dishonest.rs`).
//! - **Seller**: COMMIT-REQUEST again (also after completion), COMMIT (also
//!   before any AGREED) and ABORT (also after COMMIT). Restoring is a
//!   rollback: it forgets a `Receive` and a record, or brings back a record
//!   it had deleted. Withholding (the simulator's `Withhold`: no COMMIT, no
//!   answer to STATUS) needs no action of its own: the network may drop any
//!   message and never deliver one, so every schedule of a silent seller is
//!   already explored. A COMMIT-REQUEST of the same transaction with another
//!   amount is not in the model: the buyer takes it as the same request
//!   (duplicate, refused, or a new request that its owner's intent decides,
//!   for the amount it names).
//!
//! # Properties
//!
//! Checked in every reachable state (`always`), over the durable logs; the
//! first three for every transfer between honest parties (the third also
//! for the honest buyer of a dishonest seller, see below):
//!
//! - **atomicity** — per transfer, the buyer's `Pay` entry standing final
//!   implies the seller holds its `Receive` entry, and the seller holding
//!   its `Receive` entry implies the buyer holds its `Pay` entry and did not
//!   void it;
//! - **conservation** — the sum of the durable balances plus the amounts
//!   locked by prepared buyers whose seller has not yet written `Receive`
//!   equals the money at the start;
//! - **resolves once the network heals** — from the state, the
//!   deterministic schedule of [`heal`] (no more loss or crashes: flush every
//!   pending batch, deliver every message in flight, fire every timeout,
//!   repeat) reaches a state where every transfer that started is resolved
//!   (both sides committed or neither, every log record deleted, nothing
//!   pending) within [`HEAL_ROUNDS_MAX`] rounds. For a dishonest seller's
//!   transfer only the buyer's side is judged (no record, nothing pending),
//!   with the seller's engine running again in the schedule. What a seller
//!   that never runs it again can leave open is exactly a buyer left
//!   prepared (COMMIT withheld, STATUS unanswered); the money office
//!   resolves that buyer after the claim deadline, which the model leaves
//!   out;
//! - **the seller never signs ABORT for a sale it received** — no ABORT
//!   leaves the seller for a transaction whose `Receive` its chain holds.
//!   With such an ABORT a buyer could void at the money office a payment
//!   the seller received and be charged for nothing while the seller loses
//!   the sale; without one, after the office's sync only the cheat can be
//!   charged;
//! - **the seller keeps every sale it received** — a `Receive` once durable
//!   stays, whatever the buyer sends or restores: the honest seller's
//!   balance is what its own decisions say.
//!
//! These two are about an honest seller and are not asked of a dishonest
//! one. For every honest buyer (also the buyer of a dishonest seller,
//! against which they say most):
//!
//! - **an honest buyer writes at most one `Pay` entry per transaction** —
//!   whatever COMMIT-REQUESTs come, also after completion and with a buy
//!   intent active again;
//! - **an honest buyer pays only a request its owner accepted** — a `Pay`
//!   entry exists only if its owner's buy intent accepted a COMMIT-REQUEST
//!   of the transfer ([`Buyer::accepted`], kept across crashes);
//! - **an honest buyer's balance is what its own decisions say** — its
//!   durable balance is its start, less the payment its owner accepted while
//!   that payment's `Pay` entry stands (not voided). A dishonest seller can
//!   make it void a payment (an ABORT while prepared: the buyer gets its
//!   money back and holds the seller's signed ABORT) or commit one the
//!   seller has no `Receive` for (a COMMIT, or a rollback: the seller's own
//!   loss), never take more;
//! - **an honest buyer never voids a payment it answered COMMITTED** — once
//!   its COMMITTED left (only after its record's deletion is durable), no
//!   ABORT, however late, voids the payment.
//!
//! The third is how liveness is checked, rather than with stateright's
//! `eventually`: that operator only judges paths that end (no successor, or
//! the depth bound), and here every state has successors (a message in
//! flight can always be delivered again), so it would judge nothing. Instead
//! the check asserts, for every reachable state, that a resolved state is
//! reachable from it without loss and without crash, by exhibiting the path.
//!
//! `sometimes` properties make sure the interesting outcomes are reachable
//! at all (a check that reaches nothing proves nothing).
//!
//! # Broken variants
//!
//! [`Variant::CommitBeforeSellerRecord`] releases COMMIT before the seller's
//! batch is durable; [`Variant::AgreedBeforeBuyerRedo`] releases AGREED before
//! the buyer's `Pay` entry and record are durable. The checker must find a
//! counterexample to atomicity and conservation in each.
//! [`Variant::NoPresumedAbort`] breaks only liveness.
//! [`Variant::PresumedAbortAfterComplete`] answers a STATUS or AGREED after
//! COMPLETE with ABORT; the checker finds the seller signing ABORT for a
//! sale it received. [`Variant::PayAgainAfterComplete`] is a buyer that
//! takes a repeated COMMIT-REQUEST after completion for a new request; the
//! checker finds a second `Pay` entry and a balance its owner did not
//! decide (the engine has no fault flag for it: the variant is the model's
//! alone).
//!
//! # Replayed through the engines
//!
//! `tests/replay.rs` maps every [`Action`] to calls on the real
//! `mpay_offline::Wallet` engines (one place, so model and engine cannot
//! drift apart) and checks after every step that the engines hold what the
//! model says: durable `Pay` / `Void` / `Receive` entries and records per
//! transaction, sales, prepared payments, intents, pending batches, the
//! messages in flight, the balances, what the buyers' owners accepted and
//! which buyers answered COMMITTED. It replays seeded random walks of the
//! honest model and of the models with a dishonest buyer and with a
//! dishonest seller, each ending with the healing schedule; the checker's
//! example path of every `sometimes` property of the dishonest-seller model;
//! the counterexample of [`Variant::PresumedAbortAfterComplete`] on engines
//! with `Config::fault_presumed_abort_after_complete`, where the seller
//! signs the same ABORT; and the counterexample of
//! [`Variant::PayAgainAfterComplete`], which drifts from the engines at the
//! late COMMIT-REQUEST (they write no second `Pay`).

use std::fmt;

use stateright::{Checker, Model, Property};

/// Transfers in the model: transfer `t` is a sale to buyer `t`.
pub const TRANSFERS: usize = 2;
/// What each transfer moves (minor units).
pub const AMOUNT: [i64; TRANSFERS] = [2, 3];
/// What each buyer holds at the start; the seller starts with nothing.
pub const BUYER_BALANCE_START: i64 = 5;
/// COMMIT-REQUESTs the seller sends before giving up. The engine's default
/// is 6, and so is the model's.
pub const COMMIT_REQUEST_ATTEMPTS_MAX: u8 = 6;
/// Rounds the healing schedule may take. A round delivers every message and
/// fires every timeout; a transfer needs at most about six.
pub const HEAL_ROUNDS_MAX: usize = 16;

/// Money in the model at every moment.
pub const TOTAL: i64 = BUYER_BALANCE_START * TRANSFERS as i64;

/// Which protocol the model runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// The protocol as implemented.
    Correct,
    /// Bug: the seller's COMMIT leaves before its `Receive` entry and
    /// `SellerCommitted` record are durable.
    CommitBeforeSellerRecord,
    /// Bug: the buyer's AGREED leaves before its `Pay` entry (REDO) and
    /// `BuyerPrepared` record (UNDO) are durable.
    AgreedBeforeBuyerRedo,
    /// Bug: a seller with no record of a transaction ignores AGREED and
    /// STATUS instead of answering ABORT (no presumed abort).
    NoPresumedAbort,
    /// Bug: a seller with no record of a transaction answers AGREED and
    /// STATUS with ABORT even when its chain holds the sale's `Receive`
    /// (presumed abort after COMPLETE); the engine's
    /// `Config::fault_presumed_abort_after_complete`.
    PresumedAbortAfterComplete,
    /// Bug: a buyer whose payment is final (its `Pay` entry stands, its
    /// record is gone) takes a repeated COMMIT-REQUEST of the same
    /// transaction for a new request: with an active buy intent it writes a
    /// second `Pay` entry and answers AGREED. The engine's
    /// `on_commit_request` refuses by the `Pay` entry it holds; the engine
    /// has no fault flag for this, so the variant is the model's only.
    PayAgainAfterComplete,
}

/// The wallet messages that decide an outcome. The direction follows from
/// the kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// seller → buyer
    CommitRequest = 0,
    /// buyer → seller
    Agreed = 1,
    /// seller → buyer
    AbortToBuyer = 2,
    /// buyer → seller
    AbortToSeller = 3,
    /// seller → buyer
    Commit = 4,
    /// buyer → seller
    Committed = 5,
    /// buyer → seller
    Status = 6,
}

const KINDS: [Kind; 7] = [
    Kind::CommitRequest,
    Kind::Agreed,
    Kind::AbortToBuyer,
    Kind::AbortToSeller,
    Kind::Commit,
    Kind::Committed,
    Kind::Status,
];
const KIND_COUNT: usize = KINDS.len();

/// A message of transfer `tx`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Msg {
    pub tx: u8,
    pub kind: Kind,
}

impl Msg {
    fn bit(self) -> u16 {
        1 << (usize::from(self.tx) * KIND_COUNT + self.kind as usize)
    }

    fn to_seller(self) -> bool {
        matches!(
            self.kind,
            Kind::Agreed | Kind::AbortToSeller | Kind::Committed | Kind::Status
        )
    }
}

/// A set of messages (one bit per transfer and kind).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct MsgSet(u16);

impl MsgSet {
    fn insert(&mut self, m: Msg) {
        self.0 |= m.bit();
    }
    fn remove(&mut self, m: Msg) {
        self.0 &= !m.bit();
    }
    fn contains(self, m: Msg) -> bool {
        self.0 & m.bit() != 0
    }
    fn union(&mut self, other: MsgSet) {
        self.0 |= other.0;
    }
    fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The messages in the set, in a fixed order.
    pub fn iter(self) -> impl Iterator<Item = Msg> {
        (0..TRANSFERS as u8)
            .flat_map(|tx| KINDS.iter().map(move |&kind| Msg { tx, kind }))
            .filter(move |m| self.contains(*m))
    }
}

impl fmt::Debug for MsgSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// The seller's durable log, per transfer: its `Receive` chain entry and its
/// `SellerCommitted` record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SellerLog {
    pub receive: [bool; TRANSFERS],
    pub committed_record: [bool; TRANSFERS],
}

impl SellerLog {
    /// The log as a number below [`SELLER_LOGS`] (two bits per transfer).
    pub fn index(self) -> u8 {
        (0..TRANSFERS).fold(0, |i, t| {
            i | u8::from(self.receive[t]) << (2 * t)
                | u8::from(self.committed_record[t]) << (2 * t + 1)
        })
    }
    /// The log of [`SellerLog::index`].
    pub fn from_index(i: u8) -> SellerLog {
        SellerLog {
            receive: std::array::from_fn(|t| i & 1 << (2 * t) != 0),
            committed_record: std::array::from_fn(|t| i & 1 << (2 * t + 1) != 0),
        }
    }
}

/// Distinct seller logs ([`SellerLog::index`] is below this).
pub const SELLER_LOGS: u8 = 1 << (2 * TRANSFERS);

/// A sale in the seller's memory (`Sale` in the engine).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Sale {
    /// No sale in memory: presumed abort for anything that asks.
    #[default]
    None,
    /// Phase 1, in memory only.
    Requesting { attempts: u8 },
    /// Phase 2: the record is durable (or being written).
    Committing,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Seller {
    pub durable: SellerLog,
    /// The engine's view: `durable` plus the batch not yet flushed.
    pub mem: SellerLog,
    pub sales: [Sale; TRANSFERS],
    /// Frames held until the pending batch is durable.
    pub held: MsgSet,
    /// The cheat only: every durable log it ever had (bit
    /// [`SellerLog::index`]), the copies it may restore.
    pub copies: u16,
}

impl Seller {
    /// The seller after a restart from `log`, as `Wallet::recover` rebuilds
    /// it: committed sales resend COMMIT, sales in phase 1 are forgotten.
    fn restarted(self, log: SellerLog) -> Seller {
        Seller {
            durable: log,
            mem: log,
            sales: std::array::from_fn(|t| {
                if log.committed_record[t] {
                    Sale::Committing
                } else {
                    Sale::None
                }
            }),
            held: MsgSet::default(),
            copies: self.copies,
        }
    }
}

/// A buyer's durable log for its one transfer: the `Pay` entry (REDO), the
/// `Void` entry, and the `BuyerPrepared` record (UNDO and lock).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BuyerLog {
    pub pay: bool,
    pub void: bool,
    pub prepared_record: bool,
    /// A second `Pay` entry for the same transaction (only
    /// [`Variant::PayAgainAfterComplete`] writes one).
    pub pay_again: bool,
}

impl BuyerLog {
    /// The durable balance: the start, less every `Pay` entry, plus every
    /// `Void` entry (as the engine's chain computes `balance_after`).
    pub fn balance(self, tx: usize) -> i64 {
        let pays = i64::from(self.pay) + i64::from(self.pay_again);
        BUYER_BALANCE_START - AMOUNT[tx] * (pays - i64::from(self.void))
    }
    /// The `Pay` entry stands and the lock is gone: the payment is final.
    pub fn committed(self) -> bool {
        self.pay && !self.void && !self.prepared_record
    }
}

impl BuyerLog {
    /// The log as a number below [`BUYER_LOGS`] (one bit per field).
    pub fn index(self) -> u8 {
        u8::from(self.pay)
            | u8::from(self.void) << 1
            | u8::from(self.prepared_record) << 2
            | u8::from(self.pay_again) << 3
    }
    /// The log of [`BuyerLog::index`].
    pub fn from_index(i: u8) -> BuyerLog {
        BuyerLog {
            pay: i & 1 != 0,
            void: i & 2 != 0,
            prepared_record: i & 4 != 0,
            pay_again: i & 8 != 0,
        }
    }
}

/// Distinct buyer logs ([`BuyerLog::index`] is below this).
pub const BUYER_LOGS: u8 = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Buyer {
    pub durable: BuyerLog,
    pub mem: BuyerLog,
    /// The owner's buy intent (memory only, consumed by one payment).
    pub intent: bool,
    pub held: MsgSet,
    /// The cheat only: every durable log it ever had (bit
    /// [`BuyerLog::index`]), the copies it may restore.
    pub copies: u16,
    /// The cheat only: it signed a `Pay` entry for its transfer, so it can
    /// send AGREED with it at any time.
    pub signed_pay: bool,
    /// Its owner's buy intent accepted a COMMIT-REQUEST of its transfer
    /// (sticky: a fact about the world, kept across crashes).
    pub accepted: bool,
    /// It sent COMMITTED for its transfer (sticky).
    pub answered_committed: bool,
    /// A COMMIT-REQUEST reached it while its payment was final (sticky).
    /// Kept only in the model with a dishonest seller, for a `sometimes`
    /// property: the honest network's duplicates bring such a request too,
    /// and the flag would nearly double the honest model's states.
    pub late_request: bool,
}

impl Default for Buyer {
    fn default() -> Self {
        Buyer {
            durable: BuyerLog::default(),
            mem: BuyerLog::default(),
            intent: true,
            held: MsgSet::default(),
            copies: 0,
            signed_pay: false,
            accepted: false,
            answered_committed: false,
            late_request: false,
        }
    }
}

/// Party index: 0 is the seller, `1 + t` is buyer `t`.
pub type Party = u8;
pub const SELLER: Party = 0;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct State {
    pub seller: Seller,
    pub buyers: [Buyer; TRANSFERS],
    pub network: MsgSet,
    /// Which transfers the seller's owner started (a fact about the world,
    /// not the seller's memory: a sale forgotten in a crash stays started).
    pub started: [bool; TRANSFERS],
    /// Per transfer: the seller signed an ABORT for it while its chain held
    /// the `Receive` (sticky; the buyer could take it to the money office as
    /// proof and void a payment the seller received).
    pub seller_aborted_a_sale: [bool; TRANSFERS],
    /// Per transfer: the seller's `Receive` was ever durable (sticky).
    pub seller_received_ever: [bool; TRANSFERS],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The seller's owner starts sale `t` (`Wallet::sell`).
    Start(u8),
    /// The network delivers a message (it stays in flight: it may come again).
    Deliver(Msg),
    /// The network loses a message.
    Drop(Msg),
    /// The party's driver makes its pending batch durable and releases the
    /// frames it held.
    Flush(Party),
    /// The party crashes and restarts from its durable log.
    Crash(Party),
    /// Retransmission timer of transfer `t` at the seller.
    SellerTimeout(u8),
    /// STATUS timer of buyer `t`.
    BuyerTimeout(u8),
    /// Buyer `t`'s owner enters buyer mode again (`Wallet::set_buy_intent`),
    /// e.g. after a restart.
    SetIntent(u8),
    /// The cheat sends a message of its transfer that it can sign, whatever
    /// its state. A buyer: STATUS, COMMITTED and ABORT at any time, AGREED
    /// once it signed a `Pay` entry. A seller: COMMIT-REQUEST, COMMIT and
    /// ABORT at any time after it started the sale.
    Forge(Kind),
    /// The cheat restores an earlier copy of its durable log (a
    /// [`BuyerLog::index`] or a [`SellerLog::index`]) and restarts from it.
    Restore(u8),
}

/// The transfer whose buyer is the cheat, when the model has one.
pub const CHEAT_TRANSFER: u8 = 0;

/// Which party of transfer [`CHEAT_TRANSFER`] is dishonest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cheat {
    /// Its buyer ([`TwoPhaseCommit::with_dishonest_buyer`]).
    Buyer,
    /// The seller, toward that transfer's buyer
    /// ([`TwoPhaseCommit::with_dishonest_seller`]).
    Seller,
}

/// The model: which variant runs, and which party of transfer
/// [`CHEAT_TRANSFER`] is dishonest, if any.
#[derive(Clone, Debug)]
pub struct TwoPhaseCommit {
    pub variant: Variant,
    pub cheat: Option<Cheat>,
    /// COMMIT-REQUESTs the seller sends before giving up.
    pub commit_request_attempts_max: u8,
}

impl State {
    /// The party has a batch not yet durable or frames held behind one.
    pub fn pending(&self, party: Party) -> bool {
        match party {
            SELLER => self.seller.mem != self.seller.durable || !self.seller.held.is_empty(),
            b => {
                let b = &self.buyers[usize::from(b - 1)];
                b.mem != b.durable || !b.held.is_empty()
            }
        }
    }

    /// Per-transfer atomicity over the durable logs.
    pub fn atomic(&self) -> bool {
        (0..TRANSFERS).all(|t| self.atomic_in(t))
    }

    /// Atomicity of transfer `t`: the buyer's `Pay` standing final implies
    /// the seller's `Receive`, which implies the buyer's `Pay`, not voided.
    pub fn atomic_in(&self, t: usize) -> bool {
        let buyer = self.buyers[t].durable;
        let received = self.seller.durable.receive[t];
        (!buyer.committed() || received) && (!received || (buyer.pay && !buyer.void))
    }

    /// Money in the durable logs, with locked amounts counted while their
    /// seller has not written `Receive`.
    pub fn money(&self) -> i64 {
        (0..TRANSFERS).map(|t| self.money_in(t)).sum()
    }

    /// The money of transfer `t` in the durable logs: what the seller
    /// received for it, what its buyer holds, and its locked amount while the
    /// seller has not written `Receive`. [`BUYER_BALANCE_START`] at every
    /// moment.
    pub fn money_in(&self, t: usize) -> i64 {
        let b = self.buyers[t].durable;
        let received = self.seller.durable.receive[t];
        let seller = if received { AMOUNT[t] } else { 0 };
        let locked = b.prepared_record && b.pay && !b.void && !received;
        seller + b.balance(t) + if locked { AMOUNT[t] } else { 0 }
    }

    /// Buyer `t`'s durable balance is its start, less the payment its owner
    /// accepted while that payment's `Pay` entry stands (not voided): what
    /// its own decisions say, whatever its seller sent.
    pub fn buyer_balance_decided(&self, t: usize) -> bool {
        let b = &self.buyers[t];
        let standing = b.accepted && b.durable.pay && !b.durable.void;
        b.durable.balance(t) == BUYER_BALANCE_START - if standing { AMOUNT[t] } else { 0 }
    }

    /// Every started transfer decided the same way on both sides, every log
    /// record gone, no batch pending.
    pub fn resolved(&self) -> bool {
        (0..TRANSFERS).all(|t| self.resolved_in(t))
    }

    /// The buyer of transfer `t` is done with it, whatever its seller holds:
    /// no record (it is not left prepared) and no batch pending.
    pub fn buyer_resolved_in(&self, t: usize) -> bool {
        !self.buyers[t].durable.prepared_record && !self.pending(t as u8 + 1)
    }

    /// [`State::resolved`] for transfer `t` alone.
    pub fn resolved_in(&self, t: usize) -> bool {
        if !self.started[t] {
            return true;
        }
        let buyer = self.buyers[t].durable;
        let both_committed = self.seller.durable.receive[t] && buyer.committed();
        let both_aborted = !self.seller.durable.receive[t]
            && matches!(self.seller.sales[t], Sale::None)
            && !buyer.prepared_record
            && (!buyer.pay || buyer.void);
        (both_committed || both_aborted)
            && !self.seller.durable.committed_record[t]
            && !self.pending(SELLER)
            && !self.pending(t as u8 + 1)
    }
}

impl TwoPhaseCommit {
    /// The model with honest parties only.
    pub fn new(variant: Variant) -> Self {
        TwoPhaseCommit {
            variant,
            cheat: None,
            commit_request_attempts_max: COMMIT_REQUEST_ATTEMPTS_MAX,
        }
    }

    /// The model whose buyer of transfer [`CHEAT_TRANSFER`] is dishonest.
    /// Only that transfer starts: the seller keeps nothing across
    /// transfers but its pending batch, and the honest model checks two.
    pub fn with_dishonest_buyer(variant: Variant) -> Self {
        TwoPhaseCommit {
            variant,
            cheat: Some(Cheat::Buyer),
            commit_request_attempts_max: COMMIT_REQUEST_ATTEMPTS_MAX,
        }
    }

    /// The model whose seller is dishonest toward the buyer of
    /// [`CHEAT_TRANSFER`]. Only that transfer starts, as with a dishonest
    /// buyer.
    pub fn with_dishonest_seller(variant: Variant) -> Self {
        TwoPhaseCommit {
            variant,
            cheat: Some(Cheat::Seller),
            commit_request_attempts_max: COMMIT_REQUEST_ATTEMPTS_MAX,
        }
    }

    /// Whether the buyer of [`CHEAT_TRANSFER`] is dishonest.
    pub fn dishonest_buyer(&self) -> bool {
        self.cheat == Some(Cheat::Buyer)
    }

    /// Whether the seller is dishonest (toward the buyer of
    /// [`CHEAT_TRANSFER`]).
    pub fn dishonest_seller(&self) -> bool {
        self.cheat == Some(Cheat::Seller)
    }

    /// Whether buyer `t` is honest.
    pub fn honest_buyer(&self, t: usize) -> bool {
        !(self.dishonest_buyer() && t == usize::from(CHEAT_TRANSFER))
    }

    /// Whether both parties of transfer `t` are honest.
    pub fn honest(&self, t: usize) -> bool {
        self.cheat.is_none() || t != usize::from(CHEAT_TRANSFER)
    }

    fn cheat(&self, party: Party) -> bool {
        self.dishonest_buyer() && party == CHEAT_TRANSFER + 1
    }

    /// Applies `action` to `s` in place. Returns false when the action is not
    /// enabled.
    pub fn apply(&self, s: &mut State, action: Action) -> bool {
        match action {
            Action::Start(t) => {
                let ti = usize::from(t);
                let cheat_only = self.cheat.is_some() && t != CHEAT_TRANSFER;
                if s.started[ti] || s.pending(SELLER) || cheat_only {
                    return false;
                }
                s.started[ti] = true;
                s.seller.sales[ti] = Sale::Requesting { attempts: 1 };
                s.network.insert(Msg {
                    tx: t,
                    kind: Kind::CommitRequest,
                });
            }
            Action::Deliver(m) => {
                if !s.network.contains(m) {
                    return false;
                }
                let to = if m.to_seller() { SELLER } else { m.tx + 1 };
                if s.pending(to) {
                    return false;
                }
                if to == SELLER {
                    self.seller_receive(s, m);
                } else {
                    self.buyer_receive(s, m);
                }
            }
            Action::Drop(m) => {
                if !s.network.contains(m) {
                    return false;
                }
                s.network.remove(m);
            }
            Action::Flush(p) => {
                if !s.pending(p) {
                    return false;
                }
                if p == SELLER {
                    s.seller.durable = s.seller.mem;
                    s.network.union(s.seller.held);
                    s.seller.held = MsgSet::default();
                    for t in 0..TRANSFERS {
                        s.seller_received_ever[t] |= s.seller.durable.receive[t];
                    }
                    if self.dishonest_seller() {
                        s.seller.copies |= 1 << s.seller.durable.index();
                    }
                } else {
                    let cheat = self.cheat(p);
                    let b = &mut s.buyers[usize::from(p - 1)];
                    b.durable = b.mem;
                    b.answered_committed |= b.held.iter().any(|m| m.kind == Kind::Committed);
                    s.network.union(b.held);
                    b.held = MsgSet::default();
                    if cheat {
                        b.copies |= 1 << b.durable.index();
                    }
                }
            }
            Action::Crash(p) => {
                if p == SELLER {
                    s.seller = s.seller.restarted(s.seller.durable);
                } else {
                    let b = &mut s.buyers[usize::from(p - 1)];
                    *b = Buyer {
                        durable: b.durable,
                        mem: b.durable,
                        intent: false,
                        held: MsgSet::default(),
                        ..*b
                    };
                }
            }
            Action::SellerTimeout(t) => {
                let ti = usize::from(t);
                if s.pending(SELLER) {
                    return false;
                }
                match s.seller.sales[ti] {
                    Sale::None => return false,
                    Sale::Requesting { attempts }
                        if attempts >= self.commit_request_attempts_max =>
                    {
                        s.seller.sales[ti] = Sale::None;
                        s.network.insert(Msg {
                            tx: t,
                            kind: Kind::AbortToBuyer,
                        });
                    }
                    Sale::Requesting { attempts } => {
                        s.seller.sales[ti] = Sale::Requesting {
                            attempts: attempts + 1,
                        };
                        s.network.insert(Msg {
                            tx: t,
                            kind: Kind::CommitRequest,
                        });
                    }
                    Sale::Committing => s.network.insert(Msg {
                        tx: t,
                        kind: Kind::Commit,
                    }),
                }
            }
            Action::SetIntent(t) => {
                let b = &mut s.buyers[usize::from(t)];
                if b.intent {
                    return false;
                }
                b.intent = true;
            }
            Action::Forge(kind) => {
                let b = &s.buyers[usize::from(CHEAT_TRANSFER)];
                let signable = match (self.cheat, kind) {
                    (Some(Cheat::Buyer), Kind::Agreed) => b.signed_pay,
                    (Some(Cheat::Buyer), Kind::AbortToSeller | Kind::Committed | Kind::Status) => {
                        true
                    }
                    (
                        Some(Cheat::Seller),
                        Kind::CommitRequest | Kind::AbortToBuyer | Kind::Commit,
                    ) => true,
                    _ => false,
                };
                // The buyer learns the transaction id from the
                // COMMIT-REQUEST; the seller made it up when it started.
                if !signable || !s.started[usize::from(CHEAT_TRANSFER)] {
                    return false;
                }
                s.network.insert(Msg {
                    tx: CHEAT_TRANSFER,
                    kind,
                });
            }
            Action::Restore(copy) => match self.cheat {
                Some(Cheat::Buyer) => {
                    let b = &mut s.buyers[usize::from(CHEAT_TRANSFER)];
                    if copy >= BUYER_LOGS || b.copies & (1 << copy) == 0 {
                        return false;
                    }
                    let log = BuyerLog::from_index(copy);
                    b.durable = log;
                    b.mem = log;
                    b.intent = false;
                    b.held = MsgSet::default();
                }
                Some(Cheat::Seller) => {
                    if copy >= SELLER_LOGS || s.seller.copies & (1 << copy) == 0 {
                        return false;
                    }
                    s.seller = s.seller.restarted(SellerLog::from_index(copy));
                }
                None => return false,
            },
            Action::BuyerTimeout(t) => {
                let b = &s.buyers[usize::from(t)];
                if s.pending(t + 1) || !b.mem.prepared_record {
                    return false;
                }
                s.network.insert(Msg {
                    tx: t,
                    kind: Kind::Status,
                });
            }
        }
        true
    }

    fn seller_receive(&self, s: &mut State, m: Msg) {
        let t = usize::from(m.tx);
        let reply = |kind| Msg { tx: m.tx, kind };
        match (m.kind, s.seller.sales[t]) {
            (Kind::Agreed, Sale::Requesting { .. }) => {
                // Writes Receive + SellerCommitted in one batch, then COMMIT.
                s.seller.mem.receive[t] = true;
                s.seller.mem.committed_record[t] = true;
                s.seller.sales[t] = Sale::Committing;
                if self.variant == Variant::CommitBeforeSellerRecord {
                    s.network.insert(reply(Kind::Commit));
                } else {
                    s.seller.held.insert(reply(Kind::Commit));
                }
            }
            (Kind::Agreed | Kind::Status, Sale::Committing) => {
                s.network.insert(reply(Kind::Commit));
            }
            (Kind::Agreed | Kind::Status, Sale::None) => {
                // Answered from the chain: a `Receive` means COMMIT forever.
                if s.seller.mem.receive[t] {
                    if self.variant == Variant::PresumedAbortAfterComplete {
                        s.seller_aborted_a_sale[t] = true;
                        s.network.insert(reply(Kind::AbortToBuyer));
                    } else {
                        s.network.insert(reply(Kind::Commit));
                    }
                } else if self.variant != Variant::NoPresumedAbort {
                    s.network.insert(reply(Kind::AbortToBuyer));
                }
            }
            (Kind::Status, Sale::Requesting { .. }) => {}
            (Kind::AbortToSeller, Sale::Requesting { .. }) => {
                s.seller.sales[t] = Sale::None;
            }
            (Kind::AbortToSeller, _) => {}
            (Kind::Committed, Sale::Committing) => {
                s.seller.sales[t] = Sale::None;
                s.seller.mem.committed_record[t] = false;
            }
            (Kind::Committed, _) => {}
            (Kind::CommitRequest | Kind::AbortToBuyer | Kind::Commit, _) => {
                unreachable!("{m:?} is not addressed to the seller")
            }
        }
    }

    fn buyer_receive(&self, s: &mut State, m: Msg) {
        let b = &mut s.buyers[usize::from(m.tx)];
        let reply = |kind| Msg { tx: m.tx, kind };
        match m.kind {
            Kind::CommitRequest => {
                let pays_again =
                    self.variant == Variant::PayAgainAfterComplete && b.mem.committed();
                b.late_request |= self.dishonest_seller() && b.mem.committed();
                if b.mem.prepared_record {
                    s.network.insert(reply(Kind::Agreed));
                } else if b.mem.pay && !pays_again {
                    if b.mem.void {
                        s.network.insert(reply(Kind::AbortToSeller));
                    }
                    // Final already: a stale duplicate, ignored.
                } else if b.intent {
                    // Writes Pay + BuyerPrepared in one batch, then AGREED.
                    b.intent = false;
                    b.accepted = true;
                    b.signed_pay |= self.cheat(m.tx + 1);
                    if b.mem.pay {
                        b.mem.pay_again = true;
                    }
                    b.mem.pay = true;
                    b.mem.prepared_record = true;
                    if self.variant == Variant::AgreedBeforeBuyerRedo {
                        s.network.insert(reply(Kind::Agreed));
                    } else {
                        b.held.insert(reply(Kind::Agreed));
                    }
                } else {
                    s.network.insert(reply(Kind::AbortToSeller));
                }
            }
            Kind::Commit => {
                if b.mem.prepared_record {
                    b.mem.prepared_record = false;
                    b.held.insert(reply(Kind::Committed));
                } else if b.mem.pay && !b.mem.void {
                    b.answered_committed = true;
                    s.network.insert(reply(Kind::Committed));
                }
            }
            Kind::AbortToBuyer => {
                if b.mem.prepared_record {
                    b.mem.void = true;
                    b.mem.prepared_record = false;
                }
            }
            Kind::Agreed | Kind::AbortToSeller | Kind::Committed | Kind::Status => {
                unreachable!("{m:?} is not addressed to a buyer")
            }
        }
    }

    /// Every transfer between honest parties is resolved, and so is the
    /// honest buyer's side of a dishonest seller's transfer.
    pub fn resolved_honest(&self, s: &State) -> bool {
        (0..TRANSFERS).all(|t| {
            if self.honest(t) {
                s.resolved_in(t)
            } else {
                !self.dishonest_seller() || s.buyer_resolved_in(t)
            }
        })
    }

    fn timeouts() -> impl Iterator<Item = Action> {
        (0..TRANSFERS as u8).flat_map(|t| [Action::SellerTimeout(t), Action::BuyerTimeout(t)])
    }
}

/// The healing schedule: no loss and no crash from `s` on. Each round makes
/// every pending batch durable, delivers every message in flight once, and
/// fires every timeout. Returns the number of rounds after which every
/// started transfer is resolved, or `None` if it is not within
/// [`HEAL_ROUNDS_MAX`].
pub fn heal(model: &TwoPhaseCommit, s: &State) -> Option<usize> {
    let mut s = *s;
    for round in 0..=HEAL_ROUNDS_MAX {
        for p in 0..=TRANSFERS as u8 {
            model.apply(&mut s, Action::Flush(p));
        }
        if model.resolved_honest(&s) {
            return Some(round);
        }
        let in_flight = s.network;
        s.network = MsgSet::default();
        for m in in_flight.iter() {
            s.network.insert(m);
            let to = if m.to_seller() { SELLER } else { m.tx + 1 };
            model.apply(&mut s, Action::Flush(to));
            model.apply(&mut s, Action::Deliver(m));
            s.network.remove(m);
        }
        for p in 0..=TRANSFERS as u8 {
            model.apply(&mut s, Action::Flush(p));
        }
        for a in TwoPhaseCommit::timeouts() {
            model.apply(&mut s, a);
        }
    }
    None
}

impl Model for TwoPhaseCommit {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        let mut s = State::default();
        match self.cheat {
            Some(Cheat::Buyer) => {
                s.buyers[usize::from(CHEAT_TRANSFER)].copies = 1 << BuyerLog::default().index();
            }
            Some(Cheat::Seller) => s.seller.copies = 1 << SellerLog::default().index(),
            None => {}
        }
        vec![s]
    }

    fn actions(&self, s: &State, actions: &mut Vec<Action>) {
        for t in 0..TRANSFERS as u8 {
            if self.cheat.is_none() || t == CHEAT_TRANSFER {
                actions.push(Action::Start(t));
            }
        }
        for m in s.network.iter() {
            actions.push(Action::Deliver(m));
            actions.push(Action::Drop(m));
        }
        for p in 0..=TRANSFERS as u8 {
            actions.push(Action::Flush(p));
            actions.push(Action::Crash(p));
        }
        actions.extend(Self::timeouts());
        for t in 0..TRANSFERS as u8 {
            actions.push(Action::SetIntent(t));
        }
        match self.cheat {
            Some(Cheat::Buyer) => {
                for kind in [
                    Kind::Agreed,
                    Kind::AbortToSeller,
                    Kind::Committed,
                    Kind::Status,
                ] {
                    actions.push(Action::Forge(kind));
                }
                for copy in 0..BUYER_LOGS {
                    actions.push(Action::Restore(copy));
                }
            }
            Some(Cheat::Seller) => {
                for kind in [Kind::CommitRequest, Kind::AbortToBuyer, Kind::Commit] {
                    actions.push(Action::Forge(kind));
                }
                for copy in 0..SELLER_LOGS {
                    actions.push(Action::Restore(copy));
                }
            }
            None => {}
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut next = *last;
        if !self.apply(&mut next, action) || next == *last {
            return None;
        }
        Some(next)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("atomicity", |m: &TwoPhaseCommit, s: &State| {
                (0..TRANSFERS).all(|t| !m.honest(t) || s.atomic_in(t))
            }),
            Property::always("conservation", |m: &TwoPhaseCommit, s: &State| {
                (0..TRANSFERS).all(|t| !m.honest(t) || s.money_in(t) == BUYER_BALANCE_START)
            }),
            // A dishonest seller's transfer is judged on its buyer's side
            // only ([`TwoPhaseCommit::resolved_honest`]). The healing
            // schedule runs the seller's engine, so this asks that the
            // buyer resolves once the cheat goes back to following it. A
            // seller that never does can leave exactly one thing open: its
            // buyer prepared, its COMMIT withheld and its buyer's STATUS
            // unanswered (every other state of an honest buyer's log is
            // final). The money office resolves that buyer after the claim
            // deadline, which the model leaves out.
            Property::always(
                "resolves once the network heals",
                |m: &TwoPhaseCommit, s: &State| heal(m, s).is_some(),
            ),
            Property::always(
                "the seller never signs ABORT for a sale it received",
                |m: &TwoPhaseCommit, s: &State| {
                    m.dishonest_seller() || !s.seller_aborted_a_sale.iter().any(|&a| a)
                },
            ),
            Property::always(
                "the seller keeps every sale it received",
                |m: &TwoPhaseCommit, s: &State| {
                    m.dishonest_seller()
                        || (0..TRANSFERS)
                            .all(|t| !s.seller_received_ever[t] || s.seller.durable.receive[t])
                },
            ),
            Property::always(
                "an honest buyer writes at most one Pay entry per transaction",
                |m: &TwoPhaseCommit, s: &State| {
                    (0..TRANSFERS).all(|t| !m.honest_buyer(t) || !s.buyers[t].durable.pay_again)
                },
            ),
            Property::always(
                "an honest buyer pays only a request its owner accepted",
                |m: &TwoPhaseCommit, s: &State| {
                    (0..TRANSFERS).all(|t| {
                        let b = &s.buyers[t];
                        !m.honest_buyer(t) || !b.durable.pay || b.accepted
                    })
                },
            ),
            Property::always(
                "an honest buyer's balance is what its own decisions say",
                |m: &TwoPhaseCommit, s: &State| {
                    (0..TRANSFERS).all(|t| !m.honest_buyer(t) || s.buyer_balance_decided(t))
                },
            ),
            Property::always(
                "an honest buyer never voids a payment it answered COMMITTED",
                |m: &TwoPhaseCommit, s: &State| {
                    (0..TRANSFERS).all(|t| {
                        let b = &s.buyers[t];
                        !(m.honest_buyer(t) && b.answered_committed && b.durable.void)
                    })
                },
            ),
            Property::sometimes("both transfers committed", |_, s: &State| {
                s.resolved() && (0..TRANSFERS).all(|t| s.seller.durable.receive[t])
            }),
            Property::sometimes("a prepared buyer voided its payment", |_, s: &State| {
                s.buyers.iter().any(|b| b.durable.void)
            }),
            Property::sometimes(
                "one transfer committed, the other voided",
                |_, s: &State| {
                    s.resolved() && s.seller.durable.receive[0] && s.buyers[1].durable.void
                },
            ),
            Property::sometimes("a restarted buyer still prepared", |_, s: &State| {
                s.buyers
                    .iter()
                    .any(|b| b.durable.prepared_record && !b.intent && b.held.is_empty())
                    && !s.resolved()
            }),
            Property::sometimes(
                "the cheat restored a copy from before a payment the seller received",
                |_, s: &State| {
                    let t = usize::from(CHEAT_TRANSFER);
                    s.seller.durable.receive[t] && !s.buyers[t].durable.pay
                },
            ),
            Property::sometimes(
                "the cheat restored a copy from before a sale it received",
                |_, s: &State| {
                    (0..TRANSFERS)
                        .any(|t| s.seller_received_ever[t] && !s.seller.durable.receive[t])
                },
            ),
            Property::sometimes(
                "a COMMIT-REQUEST reached a buyer whose payment was final",
                |_, s: &State| s.buyers.iter().any(|b| b.late_request),
            ),
            Property::sometimes(
                "a buyer's payment is final and its seller holds no Receive",
                |_, s: &State| {
                    (0..TRANSFERS)
                        .any(|t| s.buyers[t].durable.committed() && !s.seller.durable.receive[t])
                },
            ),
            Property::sometimes(
                "a buyer voided a payment its seller received",
                |_, s: &State| {
                    (0..TRANSFERS).any(|t| s.buyers[t].durable.void && s.seller_received_ever[t])
                },
            ),
        ]
    }
}

/// The first counterexample the breadth-first checker finds in `model` (a
/// shortest one), with the name of the property it breaks; the search stops
/// there.
pub fn first_counterexample(
    model: TwoPhaseCommit,
    threads: usize,
) -> Option<(&'static str, Vec<Action>)> {
    let properties = model.properties();
    let checker = model
        .checker()
        .threads(threads)
        .finish_when(stateright::HasDiscoveries::AnyFailures)
        .spawn_bfs()
        .join();
    properties
        .iter()
        .filter(|p| p.expectation != stateright::Expectation::Sometimes)
        .find_map(|p| Some((p.name, checker.discovery(p.name)?.into_actions())))
}

/// What one exhaustive run found.
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// Distinct states visited.
    pub unique_states: usize,
    /// States generated, counting revisits.
    pub states: usize,
    /// Longest path from the initial state explored.
    pub max_depth: usize,
    /// Names of the `always` properties with a counterexample.
    pub violated: Vec<&'static str>,
    /// Names of the `sometimes` properties with an example.
    pub reached: Vec<&'static str>,
    /// The first counterexample, rendered action by action.
    pub counterexample: Option<String>,
    /// Every property with a discovery (a counterexample of an `always`
    /// property, an example of a `sometimes` one) and the path to it.
    pub discoveries: Vec<(&'static str, Vec<Action>)>,
}

/// Runs the breadth-first checker over every reachable state of `variant`
/// (the state space is finite, so the search is exhaustive) on `threads`
/// threads.
pub fn check(variant: Variant, threads: usize) -> CheckReport {
    check_model(TwoPhaseCommit::new(variant), threads)
}

/// [`check`] for any configuration of the model.
pub fn check_model(model: TwoPhaseCommit, threads: usize) -> CheckReport {
    let properties = model.properties();
    let checker = model.checker().threads(threads).spawn_bfs().join();
    let mut violated = Vec::new();
    let mut reached = Vec::new();
    let mut counterexample = None;
    let mut discoveries = Vec::new();
    for p in &properties {
        let found = checker.discovery(p.name);
        if let Some(path) = &found {
            discoveries.push((p.name, path.clone().into_actions()));
        }
        match p.expectation {
            stateright::Expectation::Always | stateright::Expectation::Eventually => {
                if let Some(path) = found {
                    violated.push(p.name);
                    if counterexample.is_none() {
                        counterexample = Some(format!("{}: {:?}", p.name, path.into_actions()));
                    }
                }
            }
            stateright::Expectation::Sometimes => {
                if found.is_some() {
                    reached.push(p.name);
                }
            }
        }
    }
    CheckReport {
        unique_states: checker.unique_state_count(),
        states: checker.state_count(),
        max_depth: checker.max_depth(),
        violated,
        reached,
        counterexample,
        discoveries,
    }
}
