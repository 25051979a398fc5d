//! The real seller and buyer engines (`mpay_offline::Wallet`, sans-IO) under
//! a schedule the fuzzer chooses: which frame is delivered when, lost or
//! delivered again, when each driver makes its writes durable and releases
//! its frames, when time passes, and when a phone crashes (losing its memory
//! and every write not yet durable). One seller and two buyers, on the
//! simulation suite.
//!
//! Checked after every step: conservation, in memory and on the durable
//! stores (the sum of balances plus the amounts locked by prepared buyers
//! whose seller has not received equals what was charged). At the end the
//! network heals (no loss, no crash, every write made durable, every frame
//! delivered, time advancing to each timeout) and every transfer must be
//! resolved, atomically: the seller holds its `Receive` entry exactly when
//! the buyer's `Pay` entry stands, no buyer still prepared, no sale still
//! open; and every wallet recovered from its store matches the one in
//! memory.

use std::sync::OnceLock;

use mpay_identity::{Limits, MILLIS_PER_DAY, PartyId, Suite, Timestamp};
use mpay_money::{Amount, Currency};
use mpay_offline::durable::Snapshot;
use mpay_offline::{BuyIntent, Config, TxId, Wallet};
use mpay_sim::fixture::Office;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

/// Index of the seller; buyers are 1 and 2.
pub const SELLER: usize = 0;
pub const NODES: usize = 3;
/// What each buyer is charged at the start.
pub const BUYER_CHARGE: i64 = 1_000;
/// Frames kept in flight at most (the oldest is lost past it).
pub const IN_FLIGHT_MAX: usize = 64;
/// Steps of the healing phase before an unresolved transfer is a finding.
pub const HEAL_ROUNDS_MAX: usize = 2_000;
/// Operations read from one input at most.
pub const OPS_MAX: usize = 512;

const START: Timestamp = Timestamp(1_767_225_600_000);

struct Setup {
    ids: [PartyId; NODES],
    stores: [Snapshot; NODES],
    charged: Amount,
}

fn currency() -> Currency {
    Currency::EUR
}

fn config() -> Config {
    Config {
        simulation: true,
        ..Config::default()
    }
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let office = Office::new(Suite::SimulationOnly, START, &mut rng);
        let limits = Limits {
            offline_balance_max: Amount::new(1_000_000, currency()),
            payment_max: Amount::new(50_000, currency()),
            days_between_syncs_max: 30,
            payments_between_syncs_max: 1_000,
        };
        let mut ids = [PartyId::from_u64(0); NODES];
        let mut stores: [Snapshot; NODES] = Default::default();
        let mut charged = Amount::zero(currency());
        for n in 0..NODES {
            let id = PartyId::from_u64(n as u64 + 1);
            let issued = office
                .issue_wallet(id, limits, &mut rng)
                .expect("fixture wallet");
            let mut store = Snapshot::default();
            store.apply(&issued.genesis).expect("genesis");
            if n != SELLER {
                let mut wallet =
                    Wallet::recover(config(), &store, 1, START).expect("fresh wallet recovers");
                let amount = Amount::new(BUYER_CHARGE, currency());
                wallet
                    .charge(START, office.voucher(id, amount, START, &mut rng))
                    .expect("charge");
                while let Some(w) = wallet.poll_write() {
                    store.apply(&w.batch).expect("charge batch");
                    wallet.write_completed(w.id);
                }
                charged = charged.checked_add(amount).expect("small");
            }
            ids[n] = id;
            stores[n] = store;
        }
        Setup {
            ids,
            stores,
            charged,
        }
    })
}

struct Node {
    wallet: Wallet,
    store: Snapshot,
    /// Starts of this phone: a new RNG seed each time (a phone draws fresh
    /// OS randomness at every start).
    starts: u64,
}

struct Frame {
    to: PartyId,
    bytes: Vec<u8>,
}

/// What a run did, for tests that check the harness reaches something.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub sales: usize,
    pub committed: usize,
    /// Sales the buyer had agreed to and then voided.
    pub voided: usize,
    pub crashes: u64,
}

/// One run. Public so a test can replay an input without the fuzzer.
pub struct Harness {
    nodes: Vec<Node>,
    ids: [PartyId; NODES],
    network: Vec<Frame>,
    now: Timestamp,
    sales: Vec<(TxId, usize)>,
    charged: Amount,
}

/// Reads bytes as operations; missing bytes read as zero.
struct Ops<'a> {
    data: &'a [u8],
}

impl Ops<'_> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }
}

impl Harness {
    pub fn new() -> Harness {
        let s = setup();
        let nodes = (0..NODES)
            .map(|n| Node {
                wallet: Wallet::recover(config(), &s.stores[n], n as u64 * 1_000, START)
                    .expect("fixture recovers"),
                store: s.stores[n].clone(),
                starts: 0,
            })
            .collect();
        let mut h = Harness {
            nodes,
            ids: s.ids,
            network: Vec::new(),
            now: START,
            sales: Vec::new(),
            charged: s.charged,
        };
        // Buyer mode on both buyers and one clean LOOKUP round, so most
        // inputs are about transfers.
        for b in 1..NODES {
            h.set_intent(b, 500);
        }
        h.nodes[SELLER].wallet.lookup(h.now);
        h.settle_cleanly(4);
        h
    }

    fn set_intent(&mut self, b: usize, max: i64) {
        let now = self.now;
        self.nodes[b].wallet.set_buy_intent(BuyIntent {
            max_amount: Amount::new(max, currency()),
            seller: None,
            expires_at: now.saturating_add_ms(MILLIS_PER_DAY),
        });
    }

    fn node_of(&self, id: PartyId) -> Option<usize> {
        self.ids.iter().position(|i| *i == id)
    }

    /// Makes `count` of node `n`'s pending writes durable, in order.
    fn flush(&mut self, n: usize, count: usize) {
        let node = &mut self.nodes[n];
        for _ in 0..count {
            let Some(w) = node.wallet.poll_write() else {
                return;
            };
            node.store
                .apply(&w.batch)
                .expect("the engine issues writes in chain order");
            node.wallet.write_completed(w.id);
        }
    }

    /// Moves the frames node `n` may send (their writes durable) to the network.
    fn release(&mut self, n: usize) {
        while let Some(t) = self.nodes[n].wallet.poll_transmit() {
            if self.network.len() >= IN_FLIGHT_MAX {
                self.network.remove(0);
            }
            self.network.push(Frame {
                to: t.to,
                bytes: t.frame,
            });
        }
        while self.nodes[n].wallet.poll_event().is_some() {}
    }

    fn deliver(&mut self, frame: &Frame) {
        let sender = mpay_envelope::peek_header(&frame.bytes)
            .ok()
            .and_then(|h| self.node_of(h.sender));
        let targets: Vec<usize> = if frame.to == PartyId::BROADCAST {
            (0..NODES).filter(|n| Some(*n) != sender).collect()
        } else {
            self.node_of(frame.to).into_iter().collect()
        };
        for n in targets {
            // Refused frames change nothing; the invariants below check it.
            let _ = self.nodes[n].wallet.handle_frame(self.now, &frame.bytes);
        }
    }

    /// The phone loses its memory and every write not yet durable, and
    /// restarts from its store.
    fn crash(&mut self, n: usize) {
        let node = &mut self.nodes[n];
        node.starts += 1;
        let seed = (n as u64 * 1_000).wrapping_add(node.starts);
        node.wallet = Wallet::recover(config(), &node.store, seed, self.now)
            .expect("a durable store recovers");
    }

    fn advance(&mut self, ms: u64) {
        self.now = self.now.saturating_add_ms(ms);
        for node in &mut self.nodes {
            if node.wallet.poll_timeout().is_some_and(|t| t <= self.now) {
                node.wallet.handle_timeout(self.now);
            }
        }
    }

    /// Delivers everything with no loss and no crash for `rounds` rounds.
    fn settle_cleanly(&mut self, rounds: usize) {
        for _ in 0..rounds {
            for n in 0..NODES {
                self.flush(n, usize::MAX);
                self.release(n);
            }
            let frames = std::mem::take(&mut self.network);
            for f in &frames {
                self.deliver(f);
            }
        }
    }

    /// Runs the operations in `data`, then heals and checks the end state.
    pub fn run(data: &[u8]) -> Outcome {
        let mut h = Harness::new();
        let mut ops = Ops { data };
        let mut count = 0;
        while !ops.data.is_empty() && count < OPS_MAX {
            count += 1;
            h.step(&mut ops);
            h.check_conservation();
        }
        h.heal();
        h.check_end()
    }

    fn step(&mut self, ops: &mut Ops<'_>) {
        let op = ops.byte();
        let arg = ops.byte();
        let node = usize::from(arg) % NODES;
        let buyer = 1 + usize::from(arg) % (NODES - 1);
        let frame = |h: &Harness| {
            if h.network.is_empty() {
                None
            } else {
                Some(usize::from(arg) % h.network.len())
            }
        };
        match op % 12 {
            0 => {
                let amount = 1 + i64::from(ops.byte()) * 3;
                let now = self.now;
                let id = self.ids[buyer];
                if let Ok(tx) =
                    self.nodes[SELLER]
                        .wallet
                        .sell(now, id, Amount::new(amount, currency()), "fuzz")
                {
                    self.sales.push((tx, buyer));
                }
            }
            1 | 2 => {
                // Deliver; 2 keeps a copy in flight (a duplicate later).
                if let Some(i) = frame(self) {
                    let f = if op % 12 == 2 {
                        Frame {
                            to: self.network[i].to,
                            bytes: self.network[i].bytes.clone(),
                        }
                    } else {
                        self.network.remove(i)
                    };
                    self.deliver(&f);
                }
            }
            3 => {
                if let Some(i) = frame(self) {
                    self.network.remove(i);
                }
            }
            4 => self.advance(u64::from(ops.byte()) * 50),
            5 => self.flush(node, 1 + usize::from(arg >> 4)),
            6 => self.release(node),
            7 => self.crash(node),
            8 => self.set_intent(buyer, 1 + i64::from(ops.byte()) * 3),
            9 => {
                let now = self.now;
                self.nodes[SELLER].wallet.lookup(now);
            }
            10 => {
                // A frame with one byte changed: refused or harmless.
                if let Some(i) = frame(self) {
                    let mut bytes = self.network[i].bytes.clone();
                    let at = usize::from(ops.byte()) * 7 % bytes.len().max(1);
                    if let Some(b) = bytes.get_mut(at) {
                        *b ^= 1 | ops.byte();
                    }
                    let f = Frame {
                        to: self.network[i].to,
                        bytes,
                    };
                    self.deliver(&f);
                }
            }
            _ => {
                if let Some(&(tx, _)) = self.sales.get(usize::from(arg) % self.sales.len().max(1)) {
                    let now = self.now;
                    self.nodes[SELLER].wallet.cancel_sale(now, tx);
                }
            }
        }
    }

    /// Money held: balances plus locked amounts whose seller has not
    /// received, over `views` (in memory or recovered from the stores).
    fn money(views: &[&Wallet]) -> Amount {
        let seller = views[SELLER];
        let mut total = Amount::zero(currency());
        for view in views {
            assert!(!view.balance().is_negative(), "negative balance");
            total = total.checked_add(view.balance()).expect("small amounts");
            for (tx, _, amount) in view.prepared_txs() {
                if !seller.received(&tx) {
                    total = total.checked_add(amount).expect("small amounts");
                }
            }
        }
        total
    }

    fn recovered(&self) -> Vec<Wallet> {
        self.nodes
            .iter()
            .map(|n| {
                Wallet::recover(config(), &n.store, 0, self.now).expect("a durable store recovers")
            })
            .collect()
    }

    fn check_conservation(&self) {
        let memory: Vec<&Wallet> = self.nodes.iter().map(|n| &n.wallet).collect();
        assert_eq!(
            Self::money(&memory),
            self.charged,
            "conservation broken in memory"
        );
        let recovered = self.recovered();
        let durable: Vec<&Wallet> = recovered.iter().collect();
        assert_eq!(
            Self::money(&durable),
            self.charged,
            "conservation broken on the durable stores"
        );
    }

    fn resolved(&self) -> bool {
        self.network.is_empty()
            && self.nodes.iter().all(|n| {
                n.wallet.prepared_txs().next().is_none()
                    && n.wallet.committing_txs().next().is_none()
                    && n.wallet.requesting_txs().next().is_none()
                    && n.wallet.writes_in_flight() == 0
            })
    }

    /// No more loss or crashes: every write durable, every frame delivered,
    /// time moving to the next timeout, until every transfer is resolved.
    fn heal(&mut self) {
        for _ in 0..HEAL_ROUNDS_MAX {
            self.settle_cleanly(1);
            for n in 0..NODES {
                self.flush(n, usize::MAX);
                self.release(n);
            }
            if self.resolved() {
                return;
            }
            if self.network.is_empty() {
                let next = self
                    .nodes
                    .iter()
                    .filter_map(|n| n.wallet.poll_timeout())
                    .min();
                match next {
                    Some(t) if t > self.now => self.advance(t.millis_since(self.now)),
                    _ => self.advance(0),
                }
            }
        }
        panic!("transfers still unresolved after healing");
    }

    fn check_end(&self) -> Outcome {
        self.check_conservation();
        let seller = &self.nodes[SELLER].wallet;
        let mut outcome = Outcome {
            sales: self.sales.len(),
            crashes: self.nodes.iter().map(|n| n.starts).sum(),
            ..Outcome::default()
        };
        for (tx, b) in &self.sales {
            let buyer = &self.nodes[*b].wallet;
            assert_eq!(
                seller.received(tx),
                buyer.paid(tx),
                "atomicity broken for {tx:?}: seller received {}, buyer paid {}",
                seller.received(tx),
                buyer.paid(tx)
            );
            assert!(
                !(seller.received(tx) && buyer.voided(tx)),
                "{tx:?} received and voided"
            );
            if seller.received(tx) {
                outcome.committed += 1;
            }
            if buyer.voided(tx) {
                outcome.voided += 1;
            }
        }
        for (n, recovered) in self.recovered().iter().enumerate() {
            let memory = &self.nodes[n].wallet;
            assert_eq!(recovered.balance(), memory.balance(), "node {n} balance");
            assert_eq!(recovered.chain(), memory.chain(), "node {n} chain");
        }
        outcome
    }
}

impl Default for Harness {
    fn default() -> Self {
        Harness::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_sale_commits() {
        // sell to buyer 1 for 1 + 3·10
        let outcome = Harness::run(&[0, 0, 10]);
        assert_eq!(outcome.sales, 1);
        assert_eq!(outcome.committed, 1);
    }

    #[test]
    fn a_buyer_crash_after_agreeing_still_resolves() {
        let outcome = Harness::run(&[
            0, 0, 10, // sell to buyer 1
            6, 0, // seller releases COMMIT-REQUEST
            1, 0, // delivered to buyer 1
            5, 1, // buyer 1 makes its Pay entry durable
            6, 1, // and releases AGREED
            7, 1, // then crashes
            1, 0, // AGREED delivered: the seller commits
            7, 0, // the seller crashes too (its record may be lost)
        ]);
        assert_eq!(outcome.sales, 1);
        assert_eq!(outcome.crashes, 2);
    }

    #[test]
    fn a_sale_the_buyer_never_agreed_to_aborts() {
        // The seller's retries all lost; the buyer never hears.
        let mut ops = vec![0, 0, 10];
        for _ in 0..12 {
            ops.extend([6, 0, 3, 0, 4, 0, 200]);
        }
        let outcome = Harness::run(&ops);
        assert_eq!(outcome.sales, 1);
        assert_eq!(outcome.committed, 0);
    }

    #[test]
    fn a_prepared_buyer_is_voided_when_the_seller_forgot() {
        let outcome = Harness::run(&[
            0, 0, 10, // sell to buyer 1
            6, 0, 1, 0, // COMMIT-REQUEST delivered
            5, 1, 6, 1, // buyer 1 prepared, AGREED in flight
            3, 0, // AGREED lost
            7, 0, // seller crashes: forgets the sale (presumed abort)
        ]);
        assert_eq!(outcome.sales, 1);
        assert_eq!(outcome.committed, 0);
        assert_eq!(outcome.voided, 1);
    }
}
