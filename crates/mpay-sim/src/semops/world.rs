//! One seeded run of the whole SEMOPS network in one process: two regions,
//! each with a bank, a CPP, a DC and an MPP, customers and merchants; a
//! simulated clock and network (loss, duplication, reordering, delay, a
//! partition between the regions), banks that are down for a while, and
//! crashes of any service before or after any durable step.
//!
//! The services keep what they would keep in their databases (payments,
//! refunds, frames seen, the outbox) apart from what a crash loses (bank
//! calls awaiting an answer, when a frame was last sent); every fate is
//! decided by the processor cores of `mpay-processor`. Each handled event is
//! one durable step: a crash before it loses the event (its sender tries
//! again), a crash after it loses the messages it would have sent at once
//! (the outbox and the saga states send them again after the restart).

use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use mpay_processor::merchant::{self, Outcome};
use mpay_processor::payment::{self, Effect, End, Input, State};
use mpay_processor::refund::{self, Leg};
use mpay_processor::route::{self, NextHop, Sender};
use mpay_processor::saga::{self, HoldCall, HoldEnd, Next, TransferAnswer};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use super::bank::{Bank, BankOp, BankResult, Dest, Interbank};
use super::{SemopsReport, Variant};

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
/// A bank call or a frame unanswered this long is sent again.
const RETRY_MS: u64 = 300;
/// Faults (loss, duplication, partitions, crashes, banks down) stop here.
const FAULTS_END_MS: u64 = 20_000;
/// A run that is not quiet by here has failed to finish.
const END_MS: u64 = 180_000;

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

/// The CPP of region `r`'s own account at its bank (refunds pass through).
fn cpp_account(r: u8) -> String {
    format!("cpp:cpp{r}")
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
    },
    Decision {
        payment: u64,
        approve: bool,
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
}

#[derive(Clone, Debug)]
struct CppRefund {
    payment: u64,
    amount: i64,
    state: refund::State,
    attempt: u32,
}

#[derive(Default)]
struct Cpp {
    payments: BTreeMap<u64, CppPayment>,
    refunds: BTreeMap<u64, CppRefund>,
    seen: BTreeSet<u64>,
    outbox: Outbox,
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
}

#[derive(Clone, Debug)]
struct MppRefund {
    payment: u64,
    amount: i64,
    state: refund::State,
    attempt: u32,
}

#[derive(Default)]
struct Mpp {
    payments: BTreeMap<u64, MppPayment>,
    refunds: BTreeMap<u64, MppRefund>,
    seen: BTreeSet<u64>,
    outbox: Outbox,
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
            opening.insert((r, cpp_account(r)), 0);
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
            cpps: (0..REGIONS).map(|_| Cpp::default()).collect(),
            mpps: (0..REGIONS).map(|_| Mpp::default()).collect(),
            dcs: (0..REGIONS).map(|_| Dc::default()).collect(),
            procs,
            outgoing: Vec::new(),
            last_script_at: START,
            opening,
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
        let payments = 12 + below(&mut self.rng, 20);
        for _ in 0..payments {
            let payment = self.id();
            let customer = below(&mut self.rng, u64::from(CUSTOMERS)) as u32;
            let merchant = below(&mut self.rng, u64::from(MERCHANTS)) as u32;
            let at = START + 10 + below(&mut self.rng, 10_000);
            let amount = 1 + below(&mut self.rng, 5_000) as i64;
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
                self.report.dishonest += 1;
            } else if roll < 8 {
                pr.device = (customer + 1) % CUSTOMERS;
                self.report.dishonest += 1;
            }
            self.report.requests += 1;
            for retry in 0..3 {
                self.script(at + retry * 400, Event::Customer(pr.clone()));
            }
            if chance(&mut self.rng, 100) {
                self.report.dishonest += 1;
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
            self.report.events += 1;
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
                "completed" => self.report.completed += n,
                "refunded" => {
                    self.report.completed += n;
                    self.report.refunded_in_full += n;
                }
                "rejected" => self.report.rejected += n,
                "expired" => self.report.expired += n,
                "declined" => self.report.declined += n,
                _ => {}
            }
        }
        self.report.payments = view.payments.len() as u64;
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
                self.tick(node);
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
                self.mpp_decide(mpp, payment, approve);
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
        self.report.crashes += 1;
        let back = self.now + 100 + below(&mut self.rng, 900);
        self.at(back, Event::Restart { node });
    }

    fn deliver(&mut self, from: Node, to: Node, msg: Msg) {
        if !self.is_up(to) {
            self.report.dropped += 1;
            return;
        }
        if let Node::Bank(b) = to {
            self.bank_receive(b, from, msg);
            self.flush(to);
            return;
        }
        // A crash before the step loses the message; after it, the
        // messages the step would have sent at once.
        let crash = self.faulty() && to != Node::Customer && chance(&mut self.rng, 8);
        let before = crash && chance(&mut self.rng, 500);
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
            self.report.sent += 1;
            let cut = self.partition.is_some_and(|w| w.contains(self.now))
                && matches!((src.region(), to.region()), (Some(a), Some(b)) if a != b);
            if cut || (self.faulty() && chance(&mut self.rng, 50)) {
                self.report.dropped += 1;
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

    // ---- banks ------------------------------------------------------------

    fn bank_receive(&mut self, b: u8, from: Node, msg: Msg) {
        let down = self.bank_down[usize::from(b)]
            .iter()
            .any(|w| w.contains(self.now));
        if down {
            self.report.dropped += 1;
            return;
        }
        let now = self.now;
        match msg {
            Msg::BankReq { call, key, op } => {
                let bank = &mut self.banks[usize::from(b)];
                let forget = self.variant == Variant::RefusalForgotten;
                let result = bank.apply(&key, &op, now, &mut self.next_id, forget);
                self.send(Node::Bank(b), from, Msg::BankReply { call, key, result });
            }
            Msg::Interbank(credit) => {
                self.banks[usize::from(b)].receive(&credit, false);
                self.send(Node::Bank(b), from, Msg::InterbankAck { id: credit.id });
            }
            Msg::InterbankAck { id } => {
                self.banks[usize::from(b)].outbox.remove(&id);
            }
            _ => {}
        }
    }

    // ---- the services' background work --------------------------------------

    fn tick(&mut self, node: Node) {
        match node {
            Node::Bank(b) => {
                let now = self.now;
                self.banks[usize::from(b)].expire_due(now);
                let credits: Vec<Interbank> = self.banks[usize::from(b)]
                    .outbox
                    .values()
                    .cloned()
                    .collect();
                for credit in credits {
                    let to = Node::Bank(credit.to);
                    self.send(node, to, Msg::Interbank(credit));
                }
            }
            Node::Cpp(r) => self.cpp_tick(r),
            Node::Mpp(r) => self.mpp_tick(r),
            Node::Dc(_) | Node::Customer => {}
        }
        self.resend_frames(node);
    }

    fn outbox(&mut self, node: Node) -> Option<&mut Outbox> {
        match node {
            Node::Cpp(r) => Some(&mut self.cpps[usize::from(r)].outbox),
            Node::Mpp(r) => Some(&mut self.mpps[usize::from(r)].outbox),
            Node::Dc(r) => Some(&mut self.dcs[usize::from(r)].outbox),
            Node::Bank(_) | Node::Customer => None,
        }
    }

    fn resend_frames(&mut self, node: Node) {
        let frames: Vec<(u64, Node, Node, Body)> = self
            .outbox(node)
            .map(|o| {
                o.iter()
                    .map(|(id, (hop, target, body))| (*id, *hop, *target, body.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let now = self.now;
        for (id, hop, target, body) in frames {
            let last = self.volatile(node).frames_sent.get(&id).copied();
            if last.is_some_and(|t| now < t + RETRY_MS) {
                continue;
            }
            self.volatile(node).frames_sent.insert(id, now);
            self.send(node, hop, Msg::Frame { id, target, body });
        }
    }

    /// Queues `body` for `target` through `from`'s region DC (or straight to
    /// it from a DC), and sends it now.
    fn queue_frame(&mut self, from: Node, hop: Node, target: Node, body: Body) {
        let id = self.id();
        if let Some(outbox) = self.outbox(from) {
            outbox.insert(id, (hop, target, body.clone()));
        }
        let now = self.now;
        self.volatile(from).frames_sent.insert(id, now);
        self.send(from, hop, Msg::Frame { id, target, body });
    }

    fn frame_acked(&mut self, node: Node, id: u64) {
        if let Some(outbox) = self.outbox(node) {
            outbox.remove(&id);
        }
        self.volatile(node).frames_sent.remove(&id);
    }

    fn frame(&mut self, node: Node, from: Node, id: u64, target: Node, body: Body) {
        let seen = match node {
            Node::Cpp(r) => &mut self.cpps[usize::from(r)].seen,
            Node::Mpp(r) => &mut self.mpps[usize::from(r)].seen,
            Node::Dc(r) => &mut self.dcs[usize::from(r)].seen,
            Node::Bank(_) | Node::Customer => return,
        };
        let repeat_applied = self.variant == Variant::RefundRelayWithoutKey
            && matches!(node, Node::Cpp(_))
            && matches!(body, Body::RefundRelay { .. });
        let new = seen.insert(id);
        if new || repeat_applied {
            match node {
                Node::Dc(r) => self.dc_forward(r, from, target, body),
                Node::Cpp(r) => self.cpp_frame(r, body),
                Node::Mpp(r) => self.mpp_frame(r, body),
                Node::Bank(_) | Node::Customer => {}
            }
        }
        self.send(node, from, Msg::FrameAck { id });
    }

    fn dc_forward(&mut self, r: u8, from: Node, target: Node, body: Body) {
        let Some(target_region) = target.region() else {
            return;
        };
        let sender = if matches!(from, Node::Dc(_)) {
            Sender::Dc
        } else {
            Sender::Cpp
        };
        let hop = match route::next_hop(&r.to_string(), sender, &target_region.to_string()) {
            Ok(NextHop::Mpp) => target,
            Ok(NextHop::RegionDc) => Node::Dc(target_region),
            Err(refusal) => {
                self.report.violations.push(format!(
                    "dc{r} refused a frame from {from:?} to {target:?}: {refusal}"
                ));
                return;
            }
        };
        self.queue_frame(Node::Dc(r), hop, target, body);
    }

    // ---- the CPP ------------------------------------------------------------

    fn cpp_pr(&mut self, r: u8, pr: Pr) {
        let now = self.now;
        if pr.device != pr.customer || !pr.pin_ok || now > pr.trans_expires {
            self.report.refused_requests += 1;
            return;
        }
        let cpp = &mut self.cpps[usize::from(r)];
        if cpp.payments.contains_key(&pr.payment) {
            return;
        }
        cpp.payments.insert(
            pr.payment,
            CppPayment {
                customer: pr.customer,
                merchant: pr.merchant,
                amount: pr.amount,
                core: payment::Payment {
                    state: State::Received,
                    deadline_ms: now + DECISION_MS,
                    notice_sent: false,
                },
                hold: None,
                refunded: 0,
                reason: None,
                created: now,
                updated: now,
            },
        );
        if self.variant == Variant::NoticeBeforeHold {
            self.cpp_send_notice(r, pr.payment);
        }
        self.cpp_drive(r, pr.payment);
    }

    /// Makes the bank call the payment's saga state names (module docs of
    /// `mpay_processor::payment`).
    fn cpp_drive(&mut self, r: u8, id: u64) {
        let Some(p) = self.cpps[usize::from(r)].payments.get(&id).cloned() else {
            return;
        };
        let (call, op) = match (HoldCall::due(p.core.state), p.hold) {
            (Some(HoldCall::Place), _) => (
                Call::Hold(id),
                BankOp::Hold {
                    account: customer_account(p.customer),
                    amount: p.amount,
                    expires_at: self.now + DECISION_MS + 30_000,
                },
            ),
            (Some(HoldCall::Post), Some(hold)) => (
                Call::Post(id),
                BankOp::Post {
                    hold,
                    to: Dest {
                        bank: region_of_merchant(p.merchant),
                        account: merchant_account(p.merchant),
                    },
                },
            ),
            (Some(HoldCall::Void), Some(hold)) => (Call::Void(id), BankOp::Void { hold }),
            (Some(HoldCall::Post | HoldCall::Void), None) => {
                self.report.violations.push(format!(
                    "cpp{r} payment {id} is past `received` without a hold"
                ));
                return;
            }
            (None, _) => return,
        };
        self.bank_call(Node::Cpp(r), call, op);
    }

    fn bank_call(&mut self, node: Node, call: Call, op: BankOp) {
        let now = self.now;
        let key = call.key();
        self.volatile(node).awaiting.insert(key.clone(), now);
        let bank = Node::Bank(node.region().unwrap_or(0));
        self.send(node, bank, Msg::BankReq { call, key, op });
    }

    /// Feeds `input` to the payment core and carries out its effects.
    fn cpp_step(&mut self, r: u8, id: u64, input: Input) {
        let now = self.now;
        let Some(p) = self.cpps[usize::from(r)].payments.get(&id).cloned() else {
            return;
        };
        let step = match payment::step(p.core, input, now) {
            Ok(step) => step,
            Err(illegal) => {
                self.report
                    .violations
                    .push(format!("cpp{r} payment {id}: {illegal}"));
                return;
            }
        };
        let mut next = p.clone();
        next.core = step.payment;
        next.updated = now;
        self.cpps[usize::from(r)].payments.insert(id, next.clone());
        let mut end = None;
        for effect in step.effects {
            match effect {
                Effect::SendNotice => self.cpp_send_notice(r, id),
                Effect::Drive => self.cpp_drive(r, id),
                Effect::Confirm(outcome) => end = Some(outcome),
                Effect::ForwardConfirmation => {
                    let outcome = match end {
                        Some(End::Completed) => Outcome::Transferred,
                        Some(End::Expired) => Outcome::Expired,
                        Some(End::Rejected | End::Declined) | None => Outcome::Rejected,
                    };
                    self.queue_frame(
                        Node::Cpp(r),
                        Node::Dc(r),
                        Node::Mpp(region_of_merchant(next.merchant)),
                        Body::Confirmation {
                            payment: id,
                            cpp: r,
                            merchant: next.merchant,
                            amount: next.amount,
                            outcome,
                        },
                    );
                }
                Effect::RecordLate => self.report.late_decisions += 1,
                Effect::Wake => {}
            }
        }
    }

    fn cpp_send_notice(&mut self, r: u8, id: u64) {
        let Some(p) = self.cpps[usize::from(r)].payments.get(&id).cloned() else {
            return;
        };
        let mpp = region_of_merchant(p.merchant);
        self.queue_frame(
            Node::Cpp(r),
            Node::Dc(r),
            Node::Mpp(mpp),
            Body::Notice {
                payment: id,
                cpp: r,
                merchant: p.merchant,
                amount: p.amount,
                deadline: p.core.deadline_ms,
            },
        );
    }

    fn cpp_bank_reply(&mut self, r: u8, call: Call, key: &str, result: BankResult) {
        let node = Node::Cpp(r);
        if self.volatile(node).awaiting.remove(key).is_none() {
            return; // an answer nobody waits for any more (a repeat)
        }
        let due = |w: &World, id: u64| {
            w.cpps[usize::from(r)]
                .payments
                .get(&id)
                .and_then(|p| HoldCall::due(p.core.state))
        };
        // What the answer means is the services' own decision
        // (`mpay_processor::saga`); the simulated bank answers a post or a
        // void of an ended hold with the hold's end.
        let next = match (call, &result) {
            (Call::Hold(id), BankResult::Held(hold)) if due(self, id) == Some(HoldCall::Place) => {
                if let Some(p) = self.cpps[usize::from(r)].payments.get_mut(&id) {
                    p.hold = Some(*hold);
                }
                let routed = self.now <= self.deadline_of(r, id);
                Some((id, Next::Apply(saga::after_place(true, routed))))
            }
            (Call::Hold(id), BankResult::Refused(reason))
                if due(self, id) == Some(HoldCall::Place) =>
            {
                if let Some(p) = self.cpps[usize::from(r)].payments.get_mut(&id) {
                    p.reason = Some(reason.clone());
                }
                Some((id, Next::Apply(saga::after_place(false, false))))
            }
            (Call::Post(id), BankResult::Posted) if due(self, id) == Some(HoldCall::Post) => {
                Some((id, saga::after_post(HoldEnd::Posted)))
            }
            (Call::Post(id), BankResult::Released) if due(self, id) == Some(HoldCall::Post) => {
                Some((id, saga::after_post(HoldEnd::Expired)))
            }
            (Call::Void(id), BankResult::Voided) if due(self, id) == Some(HoldCall::Void) => {
                Some((id, saga::after_void(HoldEnd::Voided)))
            }
            (Call::Void(id), BankResult::Refused(_)) if due(self, id) == Some(HoldCall::Void) => {
                Some((id, saga::after_void(HoldEnd::Posted)))
            }
            (Call::CppRefund { key, attempt, .. }, result) => {
                let answer = match result {
                    BankResult::Moved => TransferAnswer::Done,
                    // The simulated banks refuse a transfer only for want of
                    // funds (the MPP's money still on its way).
                    _ => TransferAnswer::InsufficientFunds,
                };
                // Past the refused attempt only (a late copy of an older
                // refusal moves nothing).
                if answer == TransferAnswer::InsufficientFunds
                    && let Some(f) = self.cpps[usize::from(r)].refunds.get_mut(&key)
                    && past_refused(&mut f.attempt, attempt)
                {
                    self.report.refund_attempts += 1;
                }
                // None: tried again later.
                if let Some(input) = saga::after_refund_transfer(answer) {
                    self.cpp_refund_answered(r, key, input);
                }
                None
            }
            (Call::Hold(_) | Call::Post(_) | Call::Void(_), _) => None, // a stale answer
            (call, result) => {
                self.report.violations.push(format!(
                    "cpp{r}: unexpected bank answer {result:?} to {call:?}"
                ));
                None
            }
        };
        match next {
            Some((id, Next::Apply(input))) => self.cpp_step(r, id, input),
            Some((_, Next::Retry)) | None => {}
            Some((id, Next::Broken(what))) => self
                .report
                .violations
                .push(format!("cpp{r} payment {id}: {what}")),
        }
    }

    fn deadline_of(&self, r: u8, id: u64) -> u64 {
        self.cpps[usize::from(r)]
            .payments
            .get(&id)
            .map_or(0, |p| p.core.deadline_ms)
    }

    fn cpp_tick(&mut self, r: u8) {
        let node = Node::Cpp(r);
        let now = self.now;
        let payments: Vec<(u64, CppPayment)> = self.cpps[usize::from(r)]
            .payments
            .iter()
            .map(|(id, p)| (*id, p.clone()))
            .collect();
        for (id, p) in payments {
            if p.core.state == State::Pending && now > p.core.deadline_ms {
                if self.variant == Variant::ExpiryWithoutVoid {
                    if let Some(p) = self.cpps[usize::from(r)].payments.get_mut(&id) {
                        p.core.state = State::Expired;
                    }
                    continue;
                }
                self.cpp_step(r, id, Input::DeadlinePassed);
                continue;
            }
            if HoldCall::due(p.core.state).is_some()
                && !self.waiting(node, &[Call::Hold(id), Call::Post(id), Call::Void(id)])
            {
                self.cpp_drive(r, id);
            }
        }
        let refunds: Vec<(u64, CppRefund)> = self.cpps[usize::from(r)]
            .refunds
            .iter()
            .filter(|(_, f)| f.state.is_moving())
            .map(|(k, f)| (*k, f.clone()))
            .collect();
        for (key, f) in refunds {
            let call = Call::CppRefund {
                payment: f.payment,
                key,
                attempt: f.attempt,
            };
            if self.awaiting_since(node, &call.key()).is_some() {
                continue;
            }
            self.cpp_refund_transfer(r, key);
        }
    }

    /// True when a call among `calls` awaits an answer sent less than
    /// [`RETRY_MS`] ago.
    fn waiting(&mut self, node: Node, calls: &[Call]) -> bool {
        calls
            .iter()
            .any(|c| self.awaiting_since(node, &c.key()).is_some())
    }

    fn awaiting_since(&mut self, node: Node, key: &str) -> Option<u64> {
        let now = self.now;
        let v = self.volatile(node);
        match v.awaiting.get(key) {
            Some(&t) if now < t + RETRY_MS => Some(t),
            Some(_) => {
                v.awaiting.remove(key);
                None
            }
            None => None,
        }
    }

    fn cpp_frame(&mut self, r: u8, body: Body) {
        match body {
            Body::Decision { payment, approve } => {
                if self.cpps[usize::from(r)].payments.contains_key(&payment) {
                    self.cpp_step(r, payment, Input::Decided { approve });
                }
            }
            Body::RefundRelay {
                payment,
                key,
                amount,
            } => self.cpp_refund_relay(r, payment, key, amount),
            other => self
                .report
                .violations
                .push(format!("cpp{r} got a frame not for it: {other:?}")),
        }
    }

    fn cpp_refund_relay(&mut self, r: u8, payment: u64, key: u64, amount: i64) {
        let forget = self.variant == Variant::RefundRelayWithoutKey;
        let cpp = &mut self.cpps[usize::from(r)];
        if cpp.refunds.contains_key(&key) && !forget {
            return;
        }
        let key = if forget && cpp.refunds.contains_key(&key) {
            self.next_id += 1;
            self.next_id
        } else {
            key
        };
        let cpp = &mut self.cpps[usize::from(r)];
        let fits = cpp
            .payments
            .get(&payment)
            .is_some_and(|p| p.core.state == State::Completed && p.refunded + amount <= p.amount);
        if fits && let Some(p) = cpp.payments.get_mut(&payment) {
            p.refunded += amount;
        }
        cpp.refunds.insert(
            key,
            CppRefund {
                payment,
                amount,
                state: refund::State::start(Leg::Cpp, fits),
                attempt: 0,
            },
        );
        if fits {
            self.cpp_refund_transfer(r, key);
        } else {
            self.report.refunds_refused += 1;
        }
    }

    fn cpp_refund_transfer(&mut self, r: u8, key: u64) {
        let Some(f) = self.cpps[usize::from(r)].refunds.get_mut(&key) else {
            return;
        };
        // The broken variant moves to a new key at every try, a lost answer
        // included; a correct leg only after a refusal came back.
        if self.variant == Variant::RefundTransferWithoutKey {
            f.attempt += 1;
        }
        let (payment, amount, attempt) = (f.payment, f.amount, f.attempt);
        let Some(customer) = self.cpps[usize::from(r)]
            .payments
            .get(&payment)
            .map(|p| p.customer)
        else {
            return;
        };
        let op = BankOp::Transfer {
            from: cpp_account(r),
            to: Dest {
                bank: region_of_customer(customer),
                account: customer_account(customer),
            },
            amount,
        };
        let call = Call::CppRefund {
            payment,
            key,
            attempt,
        };
        self.bank_call(Node::Cpp(r), call, op);
    }

    fn cpp_refund_answered(&mut self, r: u8, key: u64, input: refund::Input) {
        let Some(f) = self.cpps[usize::from(r)].refunds.get(&key).cloned() else {
            return;
        };
        let (state, effects) = match refund::step(f.state, input) {
            Ok(next) => next,
            Err(illegal) => {
                if self.variant != Variant::RefundTransferWithoutKey {
                    self.report
                        .violations
                        .push(format!("cpp{r} refund {key}: {illegal}"));
                }
                return;
            }
        };
        if let Some(f) = self.cpps[usize::from(r)].refunds.get_mut(&key) {
            f.state = state;
        }
        if state == refund::State::Refunded {
            self.report.refunds += 1;
        }
        for effect in effects {
            match effect {
                refund::Effect::Confirm => {
                    let merchant = self.cpps[usize::from(r)]
                        .payments
                        .get(&f.payment)
                        .map_or(0, |p| p.merchant);
                    // The refund key the MPP knows (the broken variant's
                    // second application has a fresh one the MPP never saw).
                    self.queue_frame(
                        Node::Cpp(r),
                        Node::Dc(r),
                        Node::Mpp(region_of_merchant(merchant)),
                        Body::RefundDone {
                            payment: f.payment,
                            key,
                        },
                    );
                }
                refund::Effect::MaybeRefundedInFull => {
                    let cpp = &self.cpps[usize::from(r)];
                    let moving = cpp
                        .refunds
                        .values()
                        .any(|g| g.payment == f.payment && g.state.is_moving());
                    let full = cpp.payments.get(&f.payment).is_some_and(|p| {
                        p.refunded == p.amount && p.core.state == State::Completed
                    });
                    if full && !moving {
                        self.cpp_step(r, f.payment, Input::RefundedInFull);
                    }
                }
                refund::Effect::Release => {
                    if let Some(p) = self.cpps[usize::from(r)].payments.get_mut(&f.payment) {
                        p.refunded -= f.amount;
                    }
                }
                refund::Effect::SendRelay => {}
            }
        }
    }

    // ---- the MPP ------------------------------------------------------------

    fn mpp_frame(&mut self, r: u8, body: Body) {
        let now = self.now;
        match body {
            Body::Notice {
                payment,
                cpp,
                merchant,
                amount,
                deadline,
            } => {
                if self.mpps[usize::from(r)].payments.contains_key(&payment) {
                    return;
                }
                let late = now >= deadline;
                self.mpps[usize::from(r)].payments.insert(
                    payment,
                    MppPayment {
                        cpp,
                        merchant,
                        amount,
                        deadline,
                        core: merchant::Payment::noticed(late),
                        refunded: 0,
                        created: now,
                        updated: now,
                    },
                );
                if !late {
                    self.plan_merchant(r, payment, amount, deadline);
                }
            }
            Body::Confirmation {
                payment,
                cpp,
                merchant,
                amount,
                outcome,
            } => {
                let mpp = &mut self.mpps[usize::from(r)];
                let p = mpp.payments.entry(payment).or_insert(MppPayment {
                    cpp,
                    merchant,
                    amount,
                    deadline: now,
                    core: merchant::Payment::noticed(true),
                    refunded: 0,
                    created: now,
                    updated: now,
                });
                match merchant::step(p.core, merchant::Input::Confirmed(outcome), now) {
                    Ok(step) => {
                        p.core = step.payment;
                        p.updated = now;
                    }
                    Err(merchant::Illegal::AlreadyConfirmed) => {}
                    Err(illegal) => self
                        .report
                        .violations
                        .push(format!("mpp{r} payment {payment}: {illegal}")),
                }
            }
            Body::RefundDone { payment, key } => self.mpp_refund_done(r, payment, key),
            other => self
                .report
                .violations
                .push(format!("mpp{r} got a frame not for it: {other:?}")),
        }
    }

    /// How the merchant answers: approves, rejects, answers late or never;
    /// and, for some approvals, asks for refunds later (partial, full,
    /// repeated, racing).
    fn plan_merchant(&mut self, r: u8, payment: u64, amount: i64, deadline: u64) {
        let roll = below(&mut self.rng, 100);
        let now = self.now;
        let (at, approve) = match roll {
            0..65 => (now + 5 + below(&mut self.rng, 600), true),
            65..80 => (now + 5 + below(&mut self.rng, 600), false),
            80..90 => (deadline + below(&mut self.rng, 400), true),
            _ => return,
        };
        self.script(
            at,
            Event::Decide {
                mpp: r,
                payment,
                approve,
            },
        );
        if !approve || !chance(&mut self.rng, 450) {
            return;
        }
        let later = at + 2_000 + below(&mut self.rng, 4_000);
        let key = self.id();
        match below(&mut self.rng, 4) {
            0 => self.script(
                later,
                Event::Refund {
                    mpp: r,
                    payment,
                    key,
                    amount: (amount + 1) / 2,
                },
            ),
            1 => self.script(
                later,
                Event::Refund {
                    mpp: r,
                    payment,
                    key,
                    amount,
                },
            ),
            2 => {
                for again in 0..2 {
                    self.script(
                        later + again * 50,
                        Event::Refund {
                            mpp: r,
                            payment,
                            key,
                            amount,
                        },
                    );
                }
            }
            _ => {
                let other = self.id();
                let part = amount - amount / 3;
                self.script(
                    later,
                    Event::Refund {
                        mpp: r,
                        payment,
                        key,
                        amount: part,
                    },
                );
                self.script(
                    later,
                    Event::Refund {
                        mpp: r,
                        payment,
                        key: other,
                        amount: part,
                    },
                );
            }
        }
    }

    fn mpp_decide(&mut self, r: u8, payment: u64, approve: bool) {
        let now = self.now;
        let Some(p) = self.mpps[usize::from(r)].payments.get(&payment).cloned() else {
            return;
        };
        let input = merchant::Input::Decided {
            approve,
            deadline_ms: p.deadline,
        };
        match merchant::step(p.core, input, now) {
            Ok(step) => {
                if let Some(q) = self.mpps[usize::from(r)].payments.get_mut(&payment) {
                    q.core = step.payment;
                    q.updated = now;
                }
                for merchant::Effect::RelayDecision in step.effects {
                    self.queue_frame(
                        Node::Mpp(r),
                        Node::Dc(r),
                        Node::Cpp(p.cpp),
                        Body::Decision { payment, approve },
                    );
                }
            }
            Err(merchant::Illegal::DeadlinePassed | merchant::Illegal::NotAwaitingDecision(_)) => {
                self.report.late_decisions += 1;
            }
            Err(illegal) => self
                .report
                .violations
                .push(format!("mpp{r} payment {payment}: {illegal}")),
        }
    }

    fn mpp_refund(&mut self, r: u8, payment: u64, key: u64, amount: i64) {
        let mpp = &mut self.mpps[usize::from(r)];
        if mpp.refunds.contains_key(&key) {
            return; // a repeat of a refund already taken
        }
        let fits = mpp.payments.get(&payment).is_some_and(|p| {
            p.core.state == merchant::State::Completed && p.refunded + amount <= p.amount
        });
        if !fits {
            self.report.refunds_refused += 1;
            return;
        }
        if let Some(p) = mpp.payments.get_mut(&payment) {
            p.refunded += amount;
        }
        mpp.refunds.insert(
            key,
            MppRefund {
                payment,
                amount,
                state: refund::State::start(Leg::Mpp, true),
                attempt: 0,
            },
        );
        self.mpp_refund_transfer(r, key);
    }

    fn mpp_refund_transfer(&mut self, r: u8, key: u64) {
        let Some(f) = self.mpps[usize::from(r)].refunds.get(&key).cloned() else {
            return;
        };
        let Some(p) = self.mpps[usize::from(r)].payments.get(&f.payment).cloned() else {
            return;
        };
        let op = BankOp::Transfer {
            from: merchant_account(p.merchant),
            to: Dest {
                bank: p.cpp,
                account: cpp_account(p.cpp),
            },
            amount: f.amount,
        };
        let call = Call::MppRefund {
            payment: f.payment,
            key,
            attempt: f.attempt,
        };
        self.bank_call(Node::Mpp(r), call, op);
    }

    fn mpp_bank_reply(&mut self, r: u8, call: Call, key: &str, result: BankResult) {
        if self.volatile(Node::Mpp(r)).awaiting.remove(key).is_none() {
            return;
        }
        let Call::MppRefund {
            key: refund_key,
            attempt,
            ..
        } = call
        else {
            return;
        };
        let Some(f) = self.mpps[usize::from(r)].refunds.get(&refund_key).cloned() else {
            return;
        };
        let answer = match result {
            BankResult::Moved => TransferAnswer::Done,
            // The simulated banks refuse a transfer only for want of funds.
            _ => TransferAnswer::InsufficientFunds,
        };
        if answer == TransferAnswer::InsufficientFunds
            && let Some(g) = self.mpps[usize::from(r)].refunds.get_mut(&refund_key)
            && past_refused(&mut g.attempt, attempt)
        {
            self.report.refund_attempts += 1;
        }
        // None: refused for now (the merchant's money on its way), tried again.
        let Some(input) = saga::after_refund_transfer(answer) else {
            return;
        };
        if f.state != refund::State::Funding {
            return;
        }
        match refund::step(f.state, input) {
            Ok((state, effects)) => {
                if let Some(g) = self.mpps[usize::from(r)].refunds.get_mut(&refund_key) {
                    g.state = state;
                }
                for effect in effects {
                    if effect == refund::Effect::SendRelay {
                        let cpp = self.mpps[usize::from(r)]
                            .payments
                            .get(&f.payment)
                            .map_or(0, |p| p.cpp);
                        self.queue_frame(
                            Node::Mpp(r),
                            Node::Dc(r),
                            Node::Cpp(cpp),
                            Body::RefundRelay {
                                payment: f.payment,
                                key: refund_key,
                                amount: f.amount,
                            },
                        );
                    }
                }
            }
            Err(illegal) => self
                .report
                .violations
                .push(format!("mpp{r} refund {refund_key}: {illegal}")),
        }
    }

    fn mpp_refund_done(&mut self, r: u8, payment: u64, key: u64) {
        let Some(f) = self.mpps[usize::from(r)].refunds.get(&key).cloned() else {
            return;
        };
        let Ok((state, effects)) = refund::step(f.state, refund::Input::Confirmed) else {
            return; // confirmed already
        };
        if let Some(g) = self.mpps[usize::from(r)].refunds.get_mut(&key) {
            g.state = state;
        }
        if effects.contains(&refund::Effect::MaybeRefundedInFull) {
            let mpp = &mut self.mpps[usize::from(r)];
            let moving = mpp
                .refunds
                .values()
                .any(|g| g.payment == payment && g.state.is_in_flight());
            let now = self.now;
            if let Some(p) = mpp.payments.get_mut(&payment)
                && p.refunded == p.amount
                && !moving
            {
                match merchant::step(p.core, merchant::Input::RefundedInFull, now) {
                    Ok(step) => {
                        p.core = step.payment;
                        p.updated = now;
                    }
                    Err(illegal) => self
                        .report
                        .violations
                        .push(format!("mpp{r} payment {payment}: {illegal}")),
                }
            }
        }
    }

    fn mpp_tick(&mut self, r: u8) {
        let node = Node::Mpp(r);
        let moving: Vec<Call> = self.mpps[usize::from(r)]
            .refunds
            .iter()
            .filter(|(_, f)| f.state == refund::State::Funding)
            .map(|(&key, f)| Call::MppRefund {
                payment: f.payment,
                key,
                attempt: f.attempt,
            })
            .collect();
        for call in moving {
            let Call::MppRefund { key, .. } = call else {
                continue;
            };
            if self.awaiting_since(node, &call.key()).is_none() {
                self.mpp_refund_transfer(r, key);
            }
        }
    }

    // ---- the checks -----------------------------------------------------------

    /// Nothing moving, every payment final, both processors agreeing.
    fn quiet(&self) -> bool {
        self.in_flight() == 0
            && self
                .cpps
                .iter()
                .all(|c| c.payments.values().all(|p| p.core.state.is_final()))
            && self
                .mpps
                .iter()
                .all(|m| m.payments.values().all(|p| p.core.state.is_final()))
    }

    fn in_flight(&self) -> i64 {
        let frames: usize = self.cpps.iter().map(|c| c.outbox.len()).sum::<usize>()
            + self.mpps.iter().map(|m| m.outbox.len()).sum::<usize>()
            + self.dcs.iter().map(|d| d.outbox.len()).sum::<usize>()
            + self.banks.iter().map(|b| b.outbox.len()).sum::<usize>();
        let refunds = self
            .cpps
            .iter()
            .map(|c| {
                c.refunds
                    .values()
                    .filter(|f| f.state.is_in_flight())
                    .count()
            })
            .sum::<usize>()
            + self
                .mpps
                .iter()
                .map(|m| {
                    m.refunds
                        .values()
                        .filter(|f| f.state.is_in_flight())
                        .count()
                })
                .sum::<usize>();
        (frames + refunds) as i64
    }

    fn view(&self) -> mpay_network::reconcile::View {
        use mpay_network::client::{MppPaymentRecord, PaymentRecord};
        let money = |minor: i64| mpay_money::Amount::new(minor, super::bank::CURRENCY).to_string();
        let hex = |id: u64| format!("{id:032x}");
        let mut view = mpay_network::reconcile::View::default();
        for bank in &self.banks {
            let name = format!("bank{}", bank.id);
            view.banks.push((name.clone(), bank.books()));
            view.holds_pending += bank.holds_pending();
            for hold in bank.hold_views() {
                view.holds.insert((name.clone(), hold.id.0), hold);
            }
        }
        let mut seq = 0;
        for (r, cpp) in self.cpps.iter().enumerate() {
            for (id, p) in &cpp.payments {
                seq += 1;
                view.payments.push((
                    format!("cpp{r}"),
                    PaymentRecord {
                        seq,
                        payment_id: hex(*id),
                        customer: format!("c{}", p.customer),
                        mpp: format!("mpp{}", region_of_merchant(p.merchant)),
                        amount: money(p.amount),
                        state: p.core.state.as_str().to_owned(),
                        bank: format!("bank{r}"),
                        account: customer_account(p.customer),
                        hold_id: p.hold,
                        refunded: money(p.refunded),
                        reason: p.reason.clone(),
                        deadline: p.core.deadline_ms,
                        created_at: p.created,
                        updated_at: p.updated,
                        class: "macro".to_owned(),
                        micro_batch: None,
                        micro_returned: money(0),
                    },
                ));
            }
        }
        for (r, mpp) in self.mpps.iter().enumerate() {
            for (id, p) in &mpp.payments {
                seq += 1;
                view.mpp_payments.insert(
                    hex(*id),
                    (
                        format!("mpp{r}"),
                        MppPaymentRecord {
                            seq,
                            payment_id: hex(*id),
                            merchant: format!("m{}", p.merchant),
                            cpp: format!("cpp{}", p.cpp),
                            amount: money(p.amount),
                            state: p.core.state.as_str().to_owned(),
                            refunded: money(p.refunded),
                            created_at: p.created,
                            updated_at: p.updated,
                            micro: false,
                            funded: false,
                            payout: None,
                        },
                    ),
                );
            }
        }
        view.in_flight = self.in_flight();
        view
    }

    /// Every holder's balance is its opening balance plus what its
    /// payments and refunds say: nobody paid twice, nobody paid for
    /// nothing.
    fn check_balances(&mut self) {
        let mut expected = self.opening.clone();
        let mut add = |bank: u8, account: String, minor: i64| {
            *expected.entry((bank, account)).or_default() += minor;
        };
        for (r, cpp) in self.cpps.iter().enumerate() {
            let r = r as u8;
            for p in cpp.payments.values() {
                if p.core.state.is_paid() {
                    add(
                        region_of_customer(p.customer),
                        customer_account(p.customer),
                        -p.amount,
                    );
                    add(
                        region_of_merchant(p.merchant),
                        merchant_account(p.merchant),
                        p.amount,
                    );
                }
            }
            for f in cpp.refunds.values() {
                if f.state == refund::State::Refunded
                    && let Some(p) = cpp.payments.get(&f.payment)
                {
                    add(
                        region_of_customer(p.customer),
                        customer_account(p.customer),
                        f.amount,
                    );
                    add(r, cpp_account(r), -f.amount);
                }
            }
        }
        for mpp in &self.mpps {
            for f in mpp.refunds.values() {
                if matches!(f.state, refund::State::Relayed | refund::State::Refunded)
                    && let Some(p) = mpp.payments.get(&f.payment)
                {
                    add(
                        region_of_merchant(p.merchant),
                        merchant_account(p.merchant),
                        -f.amount,
                    );
                    add(p.cpp, cpp_account(p.cpp), f.amount);
                }
            }
        }
        for ((bank, account), want) in expected {
            let have = self.banks[usize::from(bank)].balance(&account);
            if have != want {
                self.report.violations.push(format!(
                    "bank{bank} {account} holds {have}, its payments and refunds say {want}"
                ));
            }
        }
    }
}
