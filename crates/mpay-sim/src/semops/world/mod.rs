//! One seeded run of the whole SEMOPS network in one process: two regions,
//! each with a bank, a CPP, a DC and an MPP, customers and merchants; a
//! simulated clock and network (loss, duplication, reordering, delay, a
//! partition between the regions), banks that are down for a while, and
//! crashes of any service before or after any durable step (a delivery, or
//! a round of background work): at random, and in every seed one forced
//! crash of a chosen service at a chosen delivery ([`Forced`]), so that the
//! seeds together crash each service at each of its first [`FORCED_STEPS`]
//! deliveries.
//!
//! The services keep what they would keep in their databases (payments,
//! refunds, frames seen, the outbox) apart from what a crash loses (bank
//! calls awaiting an answer, when a frame was last sent); every fate is
//! decided by the processor cores of `mpay-processor`. Each handled event is
//! one durable step: a crash before it loses the event (its sender tries
//! again), a crash after it loses the messages it would have sent at once
//! (the outbox and the saga states send them again after the restart).
//!
//! Micropayments (at most [`MICRO_MAX`]) take the path of one intermediary
//! (DESIGN §3.3): the CPP adds them to the customer's pending total with
//! `mpay-micro`'s aggregator, transfers the whole total at θ or when the
//! window W has passed, takes rejected ones back (paying back what a
//! settled batch collected), owes the MPP what its merchants approved and
//! pays it by net settlement runs with a statement. With one intermediary
//! the MPP pays funded micropayments out to its merchants; with two (every
//! other seed) it pays out ahead of net settlement, within its credit limit. Some merchants give their MPP a
//! standing approval, which approves covered micropayments as their PN
//! arrives.

use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use mpay_identity::{PartyId, Timestamp};
use mpay_micro::pending::Aggregator;
use mpay_micro::policy::{BatchId, MicroLimits};
use mpay_money::Amount;
use mpay_processor::merchant::{self, Outcome};
use mpay_processor::payment::{self, Effect, End, Input, State};
use mpay_processor::refund::{self, Leg};
use mpay_processor::route::{self, NextHop, Sender};
use mpay_processor::saga::{self, HoldCall, HoldEnd, Next, TransferAnswer};
use mpay_semops::StandingApproval;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use super::bank::{Bank, BankOp, BankResult, CURRENCY, Dest, Interbank};
use super::{SemopsReport, Variant};

mod check;
mod cpp;
mod micro;
mod mpp;
mod net;

/// Regions, each with one bank, CPP, DC and MPP.
pub const REGIONS: u8 = 2;
/// Customers (customer `c` banks and pays in region `c % REGIONS`).
const CUSTOMERS: u32 = 6;
/// Merchants (merchant `m` is served in region `m % REGIONS`).
const MERCHANTS: u32 = 4;
/// The simulated clock's start (ms since the epoch).
const START: u64 = 1_750_000_000_000;
/// From a PR's record to its decision deadline.
const DECISION_MS: u64 = 1_500;
/// From a TRANS's creation to its expiry (a PR after it is stale).
const TRANS_MS: u64 = 4_000;
/// Between two rounds of a service's background work.
const TICK_MS: u64 = 100;
/// Per mille of a service's rounds of background work it crashes in.
const TICK_CRASH_PER_MILLE: u64 = 2;
/// A bank call or a frame unanswered this long is sent again.
const RETRY_MS: u64 = 300;
/// Faults (loss, duplication, partitions, crashes, banks down) stop here.
const FAULTS_END_MS: u64 = 20_000;
/// A run that is not quiet by here has failed to finish.
const END_MS: u64 = 180_000;
/// Largest micropayment (minor units): a payment up to it is aggregated.
const MICRO_MAX: i64 = 300;
/// θ: a customer's pending total reaching it is transferred at once.
const THETA: i64 = 900;
/// W: a pending total older than this is transferred by the window sweep.
const WINDOW_MS: u64 = 2_500;
/// A CPP's credit limit: the most its customers' pending totals may reach.
const CPP_CREDIT: i64 = 3_000;
/// What each CPP keeps in its own account: more than one customer's debt
/// below θ, which a customer whose transfer failed may never pay. Net
/// settlement otherwise waits for the customers' aggregated transfers
/// (refused, asked again under the next attempt), and refund legs for the
/// MPP's transfer.
const CPP_FLOAT: i64 = 1_000;
/// Between two net settlement runs of a CPP.
const SETTLE_MS: u64 = 700;
/// With two intermediaries: what an MPP may pay out ahead of the CPPs'
/// net settlement, and what it keeps in its account to do so.
const MPP_CREDIT: i64 = 600;
/// A standing approval's largest micropayment, budget and period.
const STANDING_PER_PAYMENT: i64 = 200;
const STANDING_PERIOD_MAX: i64 = 700;
const STANDING_PERIOD_MS: u64 = 4_000;

/// A process of the simulated network.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Node {
    /// Region `r`'s bank.
    Bank(u8),
    /// Region `r`'s customers' payment processor.
    Cpp(u8),
    /// Region `r`'s data center.
    Dc(u8),
    /// Region `r`'s merchants' payment processor.
    Mpp(u8),
    /// A customer's device.
    Customer,
}

impl Node {
    fn region(self) -> Option<u8> {
        match self {
            Node::Bank(r) | Node::Cpp(r) | Node::Dc(r) | Node::Mpp(r) => Some(r),
            Node::Customer => None,
        }
    }

    fn index(self) -> u8 {
        match self {
            Node::Bank(r) => r,
            Node::Cpp(r) => 4 + r,
            Node::Dc(r) => 8 + r,
            Node::Mpp(r) => 12 + r,
            Node::Customer => 16,
        }
    }
}

fn customer_account(c: u32) -> String {
    format!("cust:c{c}")
}

fn merchant_account(m: u32) -> String {
    format!("merch:m{m}")
}

/// The CPP of region `r`'s own account at its bank (refunds pass through,
/// customers' aggregated transfers arrive, net settlement leaves).
fn cpp_account(r: u8) -> String {
    format!("cpp:cpp{r}")
}

/// The MPP of region `r`'s own account at its bank (net settlement
/// arrives, payouts to merchants leave).
fn mpp_account(r: u8) -> String {
    format!("mpp:mpp{r}")
}

/// A customer as the CPP's micropayment books know it.
fn customer_party(c: u32) -> PartyId {
    PartyId::from_u64(u64::from(c) + 1)
}

/// The CPPs' micropayment limits.
fn micro_limits() -> MicroLimits {
    MicroLimits::new(
        Amount::new(MICRO_MAX, CURRENCY),
        Amount::new(THETA, CURRENCY),
        WINDOW_MS,
    )
    .expect("the simulator's limits are valid")
}

fn region_of_customer(c: u32) -> u8 {
    (c % u32::from(REGIONS)) as u8
}

fn region_of_merchant(m: u32) -> u8 {
    (m % u32::from(REGIONS)) as u8
}

/// A payment request as the customer's device sends it.
#[derive(Clone, Debug)]
struct Pr {
    payment: u64,
    customer: u32,
    /// The device that signed it (a foreign device: another customer's).
    device: u32,
    pin_ok: bool,
    merchant: u32,
    amount: i64,
    trans_expires: u64,
}

/// What travels between the services through the DCs.
#[derive(Clone, Debug)]
enum Body {
    Notice {
        payment: u64,
        cpp: u8,
        merchant: u32,
        amount: i64,
        deadline: u64,
        micro: bool,
    },
    Decision {
        payment: u64,
        approve: bool,
        /// The merchant's standing approval the MPP applied, if it did.
        standing: Option<StandingApproval>,
    },
    Confirmation {
        payment: u64,
        cpp: u8,
        merchant: u32,
        amount: i64,
        outcome: Outcome,
    },
    RefundRelay {
        payment: u64,
        key: u64,
        amount: i64,
    },
    RefundDone {
        payment: u64,
        key: u64,
    },
    /// A CPP's net settlement run: what it paid the MPP for.
    Statement {
        run: u64,
        cpp: u8,
        payments: Vec<(u64, i64)>,
    },
}

#[derive(Clone, Debug)]
enum Msg {
    Pr(Pr),
    BankReq {
        call: Call,
        key: String,
        op: BankOp,
    },
    BankReply {
        call: Call,
        key: String,
        result: BankResult,
    },
    Interbank(Interbank),
    InterbankAck {
        id: u64,
    },
    Frame {
        id: u64,
        target: Node,
        body: Body,
    },
    FrameAck {
        id: u64,
    },
}

#[derive(Clone, Debug)]
enum Event {
    Deliver {
        from: Node,
        to: Node,
        msg: Msg,
    },
    Tick {
        node: Node,
        epoch: u32,
    },
    Restart {
        node: Node,
    },
    Customer(Pr),
    Decide {
        mpp: u8,
        payment: u64,
        approve: bool,
    },
    Refund {
        mpp: u8,
        payment: u64,
        key: u64,
        amount: i64,
    },
}

impl Event {
    fn tag(&self) -> u8 {
        match self {
            Event::Deliver { msg, .. } => match msg {
                Msg::Pr(_) => 1,
                Msg::BankReq { .. } => 2,
                Msg::BankReply { .. } => 3,
                Msg::Interbank(_) => 4,
                Msg::InterbankAck { .. } => 5,
                Msg::Frame { .. } => 6,
                Msg::FrameAck { .. } => 7,
            },
            Event::Tick { .. } => 8,
            Event::Restart { .. } => 9,
            Event::Customer(_) => 10,
            Event::Decide { .. } => 11,
            Event::Refund { .. } => 12,
        }
    }
}

struct Queued {
    at: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // A max-heap: the earliest event first.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// A bank call: what it is for. Its idempotency key is the one the
/// services use (`mpay_processor::saga`), with the attempt appended only by
/// a broken variant that forgets its key.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Call {
    Hold(u64),
    Post(u64),
    Void(u64),
    CppRefund {
        payment: u64,
        key: u64,
        attempt: u32,
    },
    MppRefund {
        payment: u64,
        key: u64,
        attempt: u32,
    },
    /// A customer's aggregated transfer (its key: the batch).
    Batch(u64),
    /// Paying back a collected micropayment its merchant rejected.
    MicroReturn {
        payment: u64,
        attempt: u32,
    },
    /// A CPP's net settlement transfer to an MPP.
    NetRun {
        run: u64,
        attempt: u32,
    },
    /// An MPP's payout to a merchant.
    Payout {
        payout: u64,
        attempt: u32,
    },
}

/// Moves a refund leg's `attempt` past `refused`, the attempt a bank
/// refused for want of funds; false if it was past it already.
fn past_refused(attempt: &mut u32, refused: u32) -> bool {
    let moves = *attempt <= refused;
    if moves {
        *attempt = refused + 1;
    }
    moves
}

fn hex(id: u64) -> String {
    format!("{id:032x}")
}

impl Call {
    fn key(self) -> String {
        match self {
            Call::Hold(id) => HoldCall::Place.key(&hex(id)),
            Call::Post(id) => HoldCall::Post.key(&hex(id)),
            Call::Void(id) => HoldCall::Void.key(&hex(id)),
            Call::CppRefund {
                payment,
                key,
                attempt,
            } => saga::attempt_key(
                &saga::refund_key(Leg::Cpp, &hex(payment), &hex(key)),
                attempt,
            ),
            Call::MppRefund {
                payment,
                key,
                attempt,
            } => saga::attempt_key(
                &saga::refund_key(Leg::Mpp, &hex(payment), &hex(key)),
                attempt,
            ),
            Call::Batch(batch) => BatchId(batch).to_string(),
            Call::MicroReturn { payment, attempt } => {
                saga::attempt_key(&format!("micro-return-{}", hex(payment)), attempt)
            }
            Call::NetRun { run, attempt } => {
                saga::attempt_key(&format!("micro-net-{run}"), attempt)
            }
            Call::Payout { payout, attempt } => {
                saga::attempt_key(&format!("micro-payout-{payout}"), attempt)
            }
        }
    }
}

/// The services a seed may crash at a chosen step.
const SERVICES: [Node; 6] = [
    Node::Cpp(0),
    Node::Cpp(1),
    Node::Dc(0),
    Node::Dc(1),
    Node::Mpp(0),
    Node::Mpp(1),
];
/// The forced crashes cover a service's steps up to this one.
const FORCED_STEPS: u64 = 150;

/// The crash a seed forces: `node` at its `step`-th durable step (counted
/// from 0 over the run), before or after the step. Seeds go through every
/// service, both sides and every step below [`FORCED_STEPS`] in turn, so
/// 10,000 seeds crash each service at each of those steps about five
/// times, when the run reaches it (a DC handles fewer steps than a CPP).
struct Forced {
    node: Node,
    step: u64,
    before: bool,
}

impl Forced {
    fn of(seed: u64) -> Forced {
        let n = SERVICES.len() as u64;
        Forced {
            node: SERVICES[(seed % n) as usize],
            before: (seed / n).is_multiple_of(2),
            step: (seed / (2 * n)) % FORCED_STEPS,
        }
    }
}

/// What a crash loses: calls awaiting an answer, when frames were sent.
#[derive(Default)]
struct Volatile {
    awaiting: BTreeMap<String, u64>,
    frames_sent: BTreeMap<u64, u64>,
}

/// A service's liveness and volatile state.
struct Process {
    up: bool,
    epoch: u32,
    volatile: Volatile,
}

impl Process {
    fn new() -> Process {
        Process {
            up: true,
            epoch: 0,
            volatile: Volatile::default(),
        }
    }
}

/// Frames a service still has to get acknowledged: id → (next hop, target, body).
type Outbox = BTreeMap<u64, (Node, Node, Body)>;

#[derive(Clone, Debug)]
struct CppPayment {
    customer: u32,
    merchant: u32,
    amount: i64,
    core: payment::Payment,
    hold: Option<i64>,
    refunded: i64,
    reason: Option<String>,
    created: u64,
    updated: u64,
    /// Aggregated (a micropayment), not held.
    micro: bool,
    /// The batch it reached θ in (its trigger).
    batch: Option<u64>,
    /// A settled batch collected it from the customer.
    collected: bool,
    /// Paid back to the customer after a rejection (collected before).
    returned: i64,
}

/// A refund at a processor (the CPP's leg or the MPP's): one refund saga.
#[derive(Clone, Debug)]
struct Refund {
    payment: u64,
    amount: i64,
    state: refund::State,
    attempt: u32,
}

/// Where a customer's aggregated transfer stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum BatchState {
    Started,
    Settled,
    Failed,
}

/// One aggregated transfer: a customer's whole pending total.
#[derive(Clone, Debug)]
struct MicroBatch {
    customer: u32,
    total: i64,
    trigger: Option<u64>,
    /// The micropayments it covers.
    payments: Vec<u64>,
    state: BatchState,
}

/// A micropayment the CPP owes an MPP for (approved), and the net
/// settlement run that pays it.
#[derive(Clone, Debug)]
struct Owed {
    mpp: u8,
    amount: i64,
    run: Option<u64>,
}

/// One net settlement run: one transfer to one MPP, then its statement.
#[derive(Clone, Debug)]
struct NetRun {
    mpp: u8,
    total: i64,
    payments: Vec<(u64, i64)>,
    attempt: u32,
    paid: bool,
}

struct Cpp {
    payments: BTreeMap<u64, CppPayment>,
    refunds: BTreeMap<u64, Refund>,
    seen: BTreeSet<u64>,
    outbox: Outbox,
    /// The pending totals (`mpay-micro`'s aggregator; durable, as the
    /// CPP's micropayment tables are).
    micro: Aggregator,
    batches: BTreeMap<u64, MicroBatch>,
    owed: BTreeMap<u64, Owed>,
    runs: BTreeMap<u64, NetRun>,
    /// Collected micropayments being paid back: payment → attempt.
    returns: BTreeMap<u64, u32>,
    last_run_at: u64,
}

impl Cpp {
    fn new() -> Cpp {
        Cpp {
            payments: BTreeMap::new(),
            refunds: BTreeMap::new(),
            seen: BTreeSet::new(),
            outbox: Outbox::new(),
            micro: Aggregator::new(CURRENCY, 0),
            batches: BTreeMap::new(),
            owed: BTreeMap::new(),
            runs: BTreeMap::new(),
            returns: BTreeMap::new(),
            last_run_at: START,
        }
    }
}

#[derive(Clone, Debug)]
struct MppPayment {
    cpp: u8,
    merchant: u32,
    amount: i64,
    deadline: u64,
    core: merchant::Payment,
    refunded: i64,
    created: u64,
    updated: u64,
    micro: bool,
    /// The payout that paid it to its merchant.
    payout: Option<u64>,
}

/// One payout of funded micropayments to one merchant.
#[derive(Clone, Debug)]
struct Payout {
    merchant: u32,
    total: i64,
    attempt: u32,
    paid: bool,
}

#[derive(Default)]
struct Mpp {
    payments: BTreeMap<u64, MppPayment>,
    refunds: BTreeMap<u64, Refund>,
    seen: BTreeSet<u64>,
    outbox: Outbox,
    /// Net settlement statements taken, by (CPP, run), with their totals.
    statements: BTreeMap<(u8, u64), i64>,
    /// Micropayments a CPP's statement paid for.
    funded: BTreeSet<u64>,
    payouts: BTreeMap<u64, Payout>,
    /// A standing approval's use: (merchant, period) → minor units.
    standing_used: BTreeMap<(u32, u64), i64>,
}

#[derive(Default)]
struct Dc {
    seen: BTreeSet<u64>,
    outbox: Outbox,
}

/// A window of time `[from, to)`.
#[derive(Clone, Copy)]
struct Window {
    from: u64,
    to: u64,
}

impl Window {
    fn contains(self, at: u64) -> bool {
        (self.from..self.to).contains(&at)
    }
}

/// The whole network of one seed.
pub struct World {
    variant: Variant,
    rng: ChaCha8Rng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Queued>,
    trace: blake3::Hasher,
    next_id: u64,
    banks: Vec<Bank>,
    bank_down: Vec<Vec<Window>>,
    partition: Option<Window>,
    cpps: Vec<Cpp>,
    mpps: Vec<Mpp>,
    dcs: Vec<Dc>,
    procs: BTreeMap<Node, Process>,
    outgoing: Vec<(Node, Node, Msg)>,
    last_script_at: u64,
    opening: BTreeMap<(u8, String), i64>,
    /// Merchants' standing approvals of micropayments.
    standing: BTreeMap<u32, StandingApproval>,
    /// The MPPs pay out ahead of net settlement (two intermediaries).
    two_intermediaries: bool,
    /// The crash this seed forces, and each service's durable steps so far.
    forced: Forced,
    steps: BTreeMap<Node, u64>,
    pub(super) report: SemopsReport,
}

/// Per mille.
fn chance(rng: &mut ChaCha8Rng, per_mille: u64) -> bool {
    rng.next_u64() % 1000 < per_mille
}

fn below(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    if n == 0 { 0 } else { rng.next_u64() % n }
}

impl World {
    /// The network of `seed`, its workload scheduled.
    pub fn new(seed: u64, variant: Variant) -> World {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5e30_0b5e_0000_0001);
        let mut banks: Vec<Bank> = (0..REGIONS).map(Bank::new).collect();
        let mut opening = BTreeMap::new();
        // Every other seed, the MPPs pay out ahead (two intermediaries).
        let two_intermediaries = !(seed / 3).is_multiple_of(2);
        for c in 0..CUSTOMERS {
            // Some customers can afford little: their banks refuse holds.
            let minor = if c % 3 == 2 { 3_000 } else { 40_000 };
            let r = region_of_customer(c);
            banks[usize::from(r)].open(&customer_account(c), minor);
            opening.insert((r, customer_account(c)), minor);
        }
        for m in 0..MERCHANTS {
            let r = region_of_merchant(m);
            banks[usize::from(r)].open(&merchant_account(m), 1_000);
            opening.insert((r, merchant_account(m)), 1_000);
        }
        for r in 0..REGIONS {
            banks[usize::from(r)].open(&cpp_account(r), CPP_FLOAT);
            opening.insert((r, cpp_account(r)), CPP_FLOAT);
            let float = if two_intermediaries { MPP_CREDIT } else { 0 };
            banks[usize::from(r)].open(&mpp_account(r), float);
            opening.insert((r, mpp_account(r)), float);
        }
        // Some merchants approve covered micropayments in advance, some
        // until a moment in the run.
        let mut standing = BTreeMap::new();
        for m in 0..MERCHANTS {
            if chance(&mut rng, 500) {
                let r = region_of_merchant(m);
                let expires = START + 4_000 + below(&mut rng, 30_000);
                standing.insert(
                    m,
                    StandingApproval {
                        merchant: PartyId::from_u64(1_000 + u64::from(m)),
                        mpp: PartyId::from_u64(2_000 + u64::from(r)),
                        per_payment_max: Amount::new(STANDING_PER_PAYMENT, CURRENCY),
                        period_max: Amount::new(STANDING_PERIOD_MAX, CURRENCY),
                        period_ms: STANDING_PERIOD_MS,
                        signed_at: Timestamp(START),
                        expires_at: Timestamp(expires),
                    },
                );
            }
        }
        let bank_down = (0..REGIONS)
            .map(|_| {
                (0..below(&mut rng, 3))
                    .map(|_| {
                        let from = START + below(&mut rng, FAULTS_END_MS - 2_000);
                        Window {
                            from,
                            to: from + 200 + below(&mut rng, 1_200),
                        }
                    })
                    .collect()
            })
            .collect();
        let partition = chance(&mut rng, 400).then(|| {
            let from = START + below(&mut rng, FAULTS_END_MS - 3_000);
            Window {
                from,
                to: from + 300 + below(&mut rng, 2_500),
            }
        });
        let mut procs = BTreeMap::new();
        for r in 0..REGIONS {
            for node in [Node::Bank(r), Node::Cpp(r), Node::Dc(r), Node::Mpp(r)] {
                procs.insert(node, Process::new());
            }
        }
        let mut world = World {
            variant,
            rng,
            now: START,
            seq: 0,
            queue: BinaryHeap::new(),
            trace: blake3::Hasher::new(),
            next_id: 0,
            banks,
            bank_down,
            partition,
            cpps: (0..REGIONS).map(|_| Cpp::new()).collect(),
            mpps: (0..REGIONS).map(|_| Mpp::default()).collect(),
            dcs: (0..REGIONS).map(|_| Dc::default()).collect(),
            procs,
            outgoing: Vec::new(),
            last_script_at: START,
            opening,
            standing,
            two_intermediaries,
            forced: Forced::of(seed),
            steps: BTreeMap::new(),
            report: SemopsReport {
                seed,
                variant,
                ..SemopsReport::default()
            },
        };
        world.schedule_workload();
        for r in 0..REGIONS {
            for node in [Node::Cpp(r), Node::Dc(r), Node::Mpp(r), Node::Bank(r)] {
                world.at(START + 1, Event::Tick { node, epoch: 0 });
            }
        }
        world
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn at(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Queued {
            at,
            seq: self.seq,
            event,
        });
    }

    fn script(&mut self, at: u64, event: Event) {
        self.last_script_at = self.last_script_at.max(at);
        self.at(at, event);
    }

    fn faulty(&self) -> bool {
        self.now < START + FAULTS_END_MS
    }

    fn schedule_workload(&mut self) {
        let payments = 16 + below(&mut self.rng, 24);
        for _ in 0..payments {
            let payment = self.id();
            let customer = below(&mut self.rng, u64::from(CUSTOMERS)) as u32;
            let merchant = below(&mut self.rng, u64::from(MERCHANTS)) as u32;
            let at = START + 10 + below(&mut self.rng, 10_000);
            // One payment in two is a micropayment.
            let amount = if chance(&mut self.rng, 500) {
                1 + below(&mut self.rng, MICRO_MAX as u64) as i64
            } else {
                1 + below(&mut self.rng, 5_000) as i64
            };
            let mut pr = Pr {
                payment,
                customer,
                device: customer,
                pin_ok: true,
                merchant,
                amount,
                trans_expires: at + TRANS_MS,
            };
            // The dishonest requests: a wrong PIN, another customer's
            // credentials, a stale replay (the same PR after its TRANS
            // expired), and plain repeats.
            let roll = below(&mut self.rng, 100);
            if roll < 4 {
                pr.pin_ok = false;
                self.report.counts.dishonest += 1;
            } else if roll < 8 {
                pr.device = (customer + 1) % CUSTOMERS;
                self.report.counts.dishonest += 1;
            }
            self.report.counts.requests += 1;
            for retry in 0..3 {
                self.script(at + retry * 400, Event::Customer(pr.clone()));
            }
            if chance(&mut self.rng, 100) {
                self.report.counts.dishonest += 1;
                let later = pr.trans_expires + 1 + below(&mut self.rng, 3_000);
                self.script(later, Event::Customer(pr.clone()));
            }
        }
    }

    /// Runs to quiet (or [`END_MS`]) and returns what was checked.
    pub fn run(mut self) -> SemopsReport {
        while let Some(Queued { at, event, .. }) = self.queue.pop() {
            if at > START + END_MS {
                break;
            }
            self.now = at;
            self.report.counts.events += 1;
            let mut h = [0u8; 18];
            h[..8].copy_from_slice(&at.to_le_bytes());
            h[8] = event.tag();
            h[9] = match &event {
                Event::Deliver { to, .. } => to.index(),
                Event::Tick { node, .. } | Event::Restart { node } => node.index(),
                _ => 17,
            };
            self.trace.update(&h);
            self.handle(event);
            if self.now > START + FAULTS_END_MS && self.now > self.last_script_at && self.quiet() {
                break;
            }
        }
        self.report.trace_hash = *self.trace.finalize().as_bytes();
        self.report.sim_ms = self.now - START;
        let view = self.view();
        let report = mpay_network::reconcile::judge(&view, std::time::Duration::ZERO);
        for (state, n) in &report.payments {
            match state.as_str() {
                "completed" => self.report.counts.completed += n,
                "refunded" => {
                    self.report.counts.completed += n;
                    self.report.counts.refunded_in_full += n;
                }
                "rejected" => self.report.counts.rejected += n,
                "expired" => self.report.counts.expired += n,
                "declined" => self.report.counts.declined += n,
                _ => {}
            }
        }
        self.report.counts.payments = view.payments.len() as u64;
        self.report.violations.extend(report.mismatches);
        self.check_balances();
        self.describe_in_flight();
        self.report
    }

    /// Names what is still moving, for a run that did not get quiet.
    fn describe_in_flight(&mut self) {
        let mut moving = Vec::new();
        for (name, outbox) in self
            .cpps
            .iter()
            .enumerate()
            .map(|(r, c)| (format!("cpp{r}"), &c.outbox))
            .chain(
                self.mpps
                    .iter()
                    .enumerate()
                    .map(|(r, m)| (format!("mpp{r}"), &m.outbox)),
            )
            .chain(
                self.dcs
                    .iter()
                    .enumerate()
                    .map(|(r, d)| (format!("dc{r}"), &d.outbox)),
            )
        {
            for (id, (hop, _, body)) in outbox {
                moving.push(format!(
                    "{name} frame {id} to {hop:?} unacknowledged: {body:?}"
                ));
            }
        }
        for (r, c) in self.cpps.iter().enumerate() {
            for (key, f) in c.refunds.iter().filter(|(_, f)| f.state.is_in_flight()) {
                moving.push(format!(
                    "cpp{r} refund {key} still {}: {f:?}",
                    f.state.as_str()
                ));
            }
        }
        for (r, m) in self.mpps.iter().enumerate() {
            for (key, f) in m.refunds.iter().filter(|(_, f)| f.state.is_in_flight()) {
                moving.push(format!(
                    "mpp{r} refund {key} still {}: {f:?}",
                    f.state.as_str()
                ));
            }
        }
        let known: BTreeSet<i64> = self
            .cpps
            .iter()
            .flat_map(|c| c.payments.values().filter_map(|p| p.hold))
            .collect();
        for b in &self.banks {
            for hold in b.hold_views() {
                if hold.state == mpay_bank::ledger::HoldState::Pending
                    && !known.contains(&hold.id.0)
                {
                    moving.push(format!(
                        "bank{} hold {} of {} on {} is pending and no payment has it",
                        b.id,
                        hold.id.0,
                        hold.amount,
                        hold.account.as_str()
                    ));
                }
            }
        }
        for (r, c) in self.cpps.iter().enumerate() {
            for (b, batch) in &c.batches {
                if batch.state == BatchState::Started {
                    moving.push(format!("cpp{r} batch {b} still started: {batch:?}"));
                }
            }
            for (run, n) in c.runs.iter().filter(|(_, n)| !n.paid) {
                moving.push(format!("cpp{r} net run {run} not paid: {n:?}"));
            }
            for (id, o) in c.owed.iter().filter(|(_, o)| o.run.is_none()) {
                moving.push(format!("cpp{r} owes for {id} in no run: {o:?}"));
            }
            for id in c.returns.keys() {
                moving.push(format!("cpp{r} micropayment {id} still being paid back"));
            }
        }
        for (r, m) in self.mpps.iter().enumerate() {
            for (id, p) in m.payouts.iter().filter(|(_, p)| !p.paid) {
                moving.push(format!("mpp{r} payout {id} not paid: {p:?}"));
            }
        }
        for b in &self.banks {
            for credit in b.outbox.values() {
                moving.push(format!(
                    "bank{} interbank credit unacknowledged: {credit:?}",
                    b.id
                ));
            }
        }
        self.report.violations.extend(moving);
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Deliver { from, to, msg } => self.deliver(from, to, msg),
            Event::Tick { node, epoch } => {
                let Some(p) = self.procs.get(&node) else {
                    return;
                };
                if !p.up || p.epoch != epoch {
                    return;
                }
                // A round of background work is a durable step too (a
                // window sweep starts batches, a run or a payout is
                // recorded): a service may crash before it (the round is
                // lost) or after it (what it sent at once is lost). The
                // restart starts the rounds again.
                let crash = self.faulty()
                    && !matches!(node, Node::Bank(_))
                    && chance(&mut self.rng, TICK_CRASH_PER_MILLE);
                if crash && chance(&mut self.rng, 500) {
                    self.crash(node);
                    return;
                }
                self.tick(node);
                if crash {
                    self.outgoing.clear();
                    self.crash(node);
                    return;
                }
                self.flush(node);
                self.at(self.now + TICK_MS, Event::Tick { node, epoch });
            }
            Event::Restart { node } => {
                if let Some(p) = self.procs.get_mut(&node) {
                    p.up = true;
                    p.epoch += 1;
                    p.volatile = Volatile::default();
                    let epoch = p.epoch;
                    self.at(self.now, Event::Tick { node, epoch });
                }
            }
            Event::Customer(pr) => {
                let cpp = Node::Cpp(region_of_customer(pr.customer));
                self.outgoing.push((Node::Customer, cpp, Msg::Pr(pr)));
                self.flush(Node::Customer);
            }
            Event::Decide {
                mpp,
                payment,
                approve,
            } => {
                if !self.is_up(Node::Mpp(mpp)) {
                    // The merchant's device tries again.
                    self.at(
                        self.now + 200,
                        Event::Decide {
                            mpp,
                            payment,
                            approve,
                        },
                    );
                    return;
                }
                self.mpp_decide(mpp, payment, approve, None);
                self.flush(Node::Mpp(mpp));
            }
            Event::Refund {
                mpp,
                payment,
                key,
                amount,
            } => {
                if !self.is_up(Node::Mpp(mpp)) {
                    self.at(
                        self.now + 200,
                        Event::Refund {
                            mpp,
                            payment,
                            key,
                            amount,
                        },
                    );
                    return;
                }
                self.mpp_refund(mpp, payment, key, amount);
                self.flush(Node::Mpp(mpp));
            }
        }
    }

    fn is_up(&self, node: Node) -> bool {
        self.procs.get(&node).is_none_or(|p| p.up)
    }

    fn crash(&mut self, node: Node) {
        if let Some(p) = self.procs.get_mut(&node) {
            p.up = false;
            p.volatile = Volatile::default();
        }
        self.report.counts.crashes += 1;
        let back = self.now + 100 + below(&mut self.rng, 900);
        self.at(back, Event::Restart { node });
    }

    fn deliver(&mut self, from: Node, to: Node, msg: Msg) {
        if !self.is_up(to) {
            self.report.counts.dropped += 1;
            return;
        }
        if let Node::Bank(b) = to {
            self.bank_receive(b, from, msg);
            self.flush(to);
            return;
        }
        // A crash before the step loses the message; after it, the
        // messages the step would have sent at once. Besides the random
        // ones, each seed crashes one service at one chosen step.
        let step = self.steps.entry(to).or_default();
        let forced = self.forced.node == to && self.forced.step == *step;
        *step += 1;
        let random = self.faulty() && to != Node::Customer && chance(&mut self.rng, 8);
        let random_before = random && chance(&mut self.rng, 500);
        let crash = forced || random;
        let before = if forced {
            self.report.counts.forced_crashes += 1;
            self.forced.before
        } else {
            random_before
        };
        if before {
            self.crash(to);
            return;
        }
        match (to, msg) {
            (Node::Cpp(r), Msg::Pr(pr)) => self.cpp_pr(r, pr),
            (Node::Cpp(r), Msg::BankReply { call, key, result }) => {
                self.cpp_bank_reply(r, call, &key, result)
            }
            (Node::Mpp(r), Msg::BankReply { call, key, result }) => {
                self.mpp_bank_reply(r, call, &key, result)
            }
            (node, Msg::Frame { id, target, body }) => self.frame(node, from, id, target, body),
            (node, Msg::FrameAck { id }) => self.frame_acked(node, id),
            _ => {}
        }
        if crash {
            self.outgoing.clear();
            self.crash(to);
        } else {
            self.flush(to);
        }
    }

    /// Sends what `from`'s step produced, through the faulty network.
    fn flush(&mut self, from: Node) {
        let out = std::mem::take(&mut self.outgoing);
        for (src, to, msg) in out {
            debug_assert!(src == from || src == Node::Customer || matches!(src, Node::Bank(_)));
            self.report.counts.sent += 1;
            let cut = self.partition.is_some_and(|w| w.contains(self.now))
                && matches!((src.region(), to.region()), (Some(a), Some(b)) if a != b);
            if cut || (self.faulty() && chance(&mut self.rng, 50)) {
                self.report.counts.dropped += 1;
                continue;
            }
            let copies = if self.faulty() && chance(&mut self.rng, 40) {
                2
            } else {
                1
            };
            for _ in 0..copies {
                let delay = 1 + below(&mut self.rng, 40);
                self.at(
                    self.now + delay,
                    Event::Deliver {
                        from: src,
                        to,
                        msg: msg.clone(),
                    },
                );
            }
        }
    }

    fn send(&mut self, from: Node, to: Node, msg: Msg) {
        self.outgoing.push((from, to, msg));
    }

    fn volatile(&mut self, node: Node) -> &mut Volatile {
        &mut self
            .procs
            .get_mut(&node)
            .expect("every service has a process")
            .volatile
    }
}
