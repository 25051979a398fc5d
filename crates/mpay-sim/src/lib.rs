//! The deterministic simulator of offline transfers (DESIGN §2.2, §5).
//!
//! One seed drives everything: which buyers exist and what they hold, the
//! transfers, the network's loss, duplication, delay and reordering, and
//! crashes of any phone at any durable step. A crash loses the phone's memory
//! and any write not yet synced; synced writes survive. After a faulty phase
//! the link heals and every phone comes back; the run then checks:
//!
//! 1. conservation, after every step: the sum of every wallet's balance, plus
//!    amounts locked by buyers that no seller has yet been paid, equals what
//!    was charged;
//! 2. atomicity at the end: for every transaction, the seller holds its
//!    `Receive` entry exactly when the buyer's `Pay` entry stands;
//! 3. nothing applied twice: no transaction paid or received twice, chains
//!    valid;
//! 4. durability and liveness: once healed every transfer is resolved (no
//!    buyer still prepared, no seller still committing), and every wallet
//!    recovered from its store equals the one in memory.
//!
//! In a share of seeds ([`dishonest::DISHONEST_EVERY`]) one phone is
//! dishonest and a real money office enrols, charges and syncs every phone;
//! invariants 1-3 then hold between honest phones, and the office's verdict
//! on every honest phone is checked (see [`dishonest`]).
//!
//! A failing run reports its seed; [`run`] with the same seed replays it
//! step for step (the report's `trace_hash` is the same).

pub mod dishonest;
pub mod fixture;
pub mod schedule;
pub mod semops;

use std::collections::{BTreeMap, BinaryHeap, HashMap};

use mpay_identity::{Certificate, Limits, PartyId, SecretKeys, Suite, Timestamp};
use mpay_money::{Amount, Currency};
use mpay_offline::chain::{EntryKind, verify_chain};
use mpay_offline::durable::{DurableStore, Snapshot, StoreFailure};
use mpay_offline::{BuyIntent, Config, Event, TxId, Wallet};
use mpay_wallet_store::{KdfParams, WalletStore};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use std::path::PathBuf;

use dishonest::{Action, Adversary, DISHONEST_EVERY, Dishonest, OfficeWorld};

/// Virtual time at which every run starts (2026-01-01T00:00:00Z).
pub const EPOCH: Timestamp = Timestamp(1_767_225_600_000);
/// Largest share of datagrams dropped, in per mille.
pub const LOSS_PERMILLE_MAX: u32 = 600;
/// How long the faulty phase lasts.
pub const FAULTY_PHASE_MS: u64 = 60_000;
/// How long the healed phase may take before unresolved transfers count as
/// violations.
pub const HEAL_PHASE_MS_MAX: u64 = 120_000;
/// Steps after which a run is stopped as runaway (a violation).
pub const STEPS_MAX: u64 = 2_000_000;
/// One seed in this many uses the real Ed25519/X25519 suite; the rest use the
/// fast simulation-only suite.
pub const REAL_CRYPTO_EVERY: u64 = 8;

/// Where in a durable step a crash strikes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CrashPoint {
    /// The batch was written but not synced: it is lost.
    BeforeSync,
    /// The batch is synced, but the phone dies before sending what depends
    /// on it.
    AfterSync,
}

/// A crash planned at one exact durable step, for exhaustive tests.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PlannedCrash {
    pub node: usize,
    /// 1-based count of write batches on that node.
    pub write_index: u64,
    pub point: CrashPoint,
}

/// Where the simulated phones keep their stable storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Storage {
    /// In memory, with the same rules as the real store: fast, for many seeds.
    Memory,
    /// The real encrypted SQLite store, one file per phone in this directory;
    /// a restarted phone reopens its file with its PIN.
    Encrypted(PathBuf),
}

/// PIN of every simulated phone's encrypted store.
pub const SIM_PIN: &str = "2468";

/// Everything a run depends on; [`SimConfig::from_seed`] draws it all from
/// the seed.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    pub buyers: usize,
    pub transfers: usize,
    pub loss_permille: u32,
    pub duplicate_permille: u32,
    pub delay_ms_min: u64,
    pub delay_ms_max: u64,
    /// Chance of a crash at each durable write, per mille.
    pub crash_permille: u32,
    pub real_crypto: bool,
    pub planned_crash: Option<PlannedCrash>,
    pub storage: Storage,
    /// Record a line per event for people ([`SimReport::log`]).
    pub narrate: bool,
    /// The dishonest phone of this run, if any (in-memory storage only).
    pub dishonest: Option<Dishonest>,
    /// Runs every wallet with the test-only engine fault
    /// `Config::fault_presumed_abort_after_complete`, to show the run
    /// catches it.
    pub fault_presumed_abort_after_complete: bool,
}

impl SimConfig {
    /// The configuration of `seed`, with a dishonest peer in one seed in
    /// [`DISHONEST_EVERY`].
    pub fn from_seed(seed: u64) -> SimConfig {
        SimConfig::from_seed_with(seed, DISHONEST_EVERY)
    }

    /// The configuration of `seed`, with a dishonest peer in one seed in
    /// `dishonest_every` (0: none). The rest of the configuration does not
    /// depend on `dishonest_every`.
    pub fn from_seed_with(seed: u64, dishonest_every: u64) -> SimConfig {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_c0f1_9000_0001);
        let below = |rng: &mut ChaCha8Rng, n: u64| rng.next_u64() % n;
        let delay_ms_min = 1 + below(&mut rng, 20);
        let buyers = 1 + usize::try_from(below(&mut rng, 3)).unwrap_or(0);
        SimConfig {
            seed,
            buyers,
            transfers: 1 + usize::try_from(below(&mut rng, 6)).unwrap_or(0),
            loss_permille: u32::try_from(below(&mut rng, u64::from(LOSS_PERMILLE_MAX) + 1))
                .unwrap_or(0),
            duplicate_permille: u32::try_from(below(&mut rng, 101)).unwrap_or(0),
            delay_ms_min,
            delay_ms_max: delay_ms_min + below(&mut rng, 400),
            crash_permille: u32::try_from(below(&mut rng, 120)).unwrap_or(0),
            real_crypto: seed.is_multiple_of(REAL_CRYPTO_EVERY),
            planned_crash: None,
            storage: Storage::Memory,
            narrate: false,
            dishonest: Dishonest::draw(seed, buyers, dishonest_every),
            fault_presumed_abort_after_complete: false,
        }
    }
}

/// What one run did and found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimReport {
    pub seed: u64,
    pub sales_started: u64,
    pub committed: u64,
    pub aborted: u64,
    pub frames_sent: u64,
    pub frames_dropped: u64,
    pub frames_duplicated: u64,
    pub crashes: u64,
    pub steps: u64,
    pub violations: Vec<String>,
    /// BLAKE3 over every delivered frame and event, in order: equal for
    /// equal seeds.
    pub trace_hash: [u8; 32],
    /// Each wallet's id and balance after its charge, before any transfer.
    pub balances_before: Vec<(PartyId, Amount)>,
    /// Each wallet's id and balance at the end.
    pub balances_after: Vec<(PartyId, Amount)>,
    /// What the charges added up to.
    pub charged_total: Option<Amount>,
    /// With [`SimConfig::narrate`]: one line per event, for people.
    pub log: Vec<String>,
    /// The dishonest phone, if the run had one.
    pub dishonest_node: Option<usize>,
    /// Actions the dishonest phone took (its rollbacks among them).
    pub dishonest_actions: u64,
    pub dishonest_rollbacks: u64,
}

/// A phone's stable storage in the simulator.
enum NodeStore {
    Memory(Snapshot),
    Encrypted {
        path: PathBuf,
        store: Option<WalletStore>,
    },
}

impl NodeStore {
    fn create(storage: &Storage, n: usize) -> Result<NodeStore, StoreFailure> {
        Ok(match storage {
            Storage::Memory => NodeStore::Memory(Snapshot::default()),
            Storage::Encrypted(dir) => {
                let path = dir.join(format!("phone-{n}.db"));
                let store = WalletStore::create(&path, SIM_PIN, KdfParams::FAST_FOR_TESTS)?;
                NodeStore::Encrypted {
                    path,
                    store: Some(store),
                }
            }
        })
    }

    fn store(&mut self) -> Result<&mut dyn DurableStore, StoreFailure> {
        match self {
            NodeStore::Memory(s) => Ok(s),
            NodeStore::Encrypted { path, store } => {
                if store.is_none() {
                    *store = Some(WalletStore::open(path, SIM_PIN)?);
                }
                match store {
                    Some(s) => Ok(s),
                    None => Err("store not open".into()),
                }
            }
        }
    }

    fn apply(&mut self, batch: &mpay_offline::durable::WriteBatch) -> Result<(), StoreFailure> {
        self.store()?.apply_batch(batch)
    }

    fn snapshot(&self) -> Result<Snapshot, StoreFailure> {
        match self {
            NodeStore::Memory(s) => Ok(s.clone()),
            NodeStore::Encrypted { store: Some(s), .. } => s.load_snapshot(),
            NodeStore::Encrypted { path, store: None } => {
                WalletStore::open(path, SIM_PIN)?.load_snapshot()
            }
        }
    }

    /// The process died: close the file; the next use reopens it.
    fn close(&mut self) {
        if let NodeStore::Encrypted { store, .. } = self {
            *store = None;
        }
    }
}

struct Node {
    wallet: Option<Wallet>,
    store: NodeStore,
    incarnation: u64,
    restart_at: Option<Timestamp>,
    writes: u64,
    config: Config,
}

#[derive(PartialEq, Eq)]
struct InFlight {
    deliver_at: Timestamp,
    order: u64,
    to: usize,
    frame: Vec<u8>,
}

impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Earliest first in a max-heap.
        (other.deliver_at, other.order).cmp(&(self.deliver_at, self.order))
    }
}

impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A transfer the script wants: `buyer` (node index) pays `amount`.
struct Wanted {
    buyer: usize,
    amount: Amount,
    max_amount: Amount,
    lookups: u32,
    started: bool,
    next_lookup_at: Timestamp,
}

const SELLER: usize = 0;
const LOOKUPS_MAX: u32 = 8;
const LOOKUP_RETRY_MS: u64 = 1_500;

struct Sim {
    cfg: SimConfig,
    rng: ChaCha8Rng,
    now: Timestamp,
    nodes: Vec<Node>,
    ids: Vec<PartyId>,
    network: BinaryHeap<InFlight>,
    order: u64,
    healed: bool,
    wanted: Vec<Wanted>,
    /// tx → (buyer node, amount) for every sale the seller started.
    sales: BTreeMap<TxId, (usize, Amount)>,
    charged_total: Amount,
    /// What each node was charged at the start.
    charged: Vec<Amount>,
    certificates: Vec<Certificate>,
    adversary: Option<Adversary>,
    office: Option<OfficeWorld>,
    trace: blake3::Hasher,
    report: SimReport,
}

/// Runs one seed with the configuration drawn from it. A panic inside the
/// run (a failed assertion in the wallet) is reported as a violation.
pub fn run_seed(seed: u64) -> SimReport {
    run_guarded(SimConfig::from_seed(seed))
}

/// [`run_seed`] with a dishonest peer in one seed in `dishonest_every`
/// (0: none).
pub fn run_seed_with(seed: u64, dishonest_every: u64) -> SimReport {
    run_guarded(SimConfig::from_seed_with(seed, dishonest_every))
}

/// [`run`], with a panic turned into a violation of the seed.
pub fn run_guarded(cfg: SimConfig) -> SimReport {
    let seed = cfg.seed;
    match std::panic::catch_unwind(move || run(cfg)) {
        Ok(report) => report,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "unknown panic".to_owned());
            SimReport {
                seed,
                violations: vec![format!("panic: {message}")],
                ..SimReport::default()
            }
        }
    }
}

/// Runs one configuration to the end and checks the invariants.
pub fn run(cfg: SimConfig) -> SimReport {
    let mut sim = Sim::new(cfg);
    sim.run();
    sim.finish()
}

impl Sim {
    fn new(cfg: SimConfig) -> Sim {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let suite = if cfg.real_crypto {
            Suite::Ed25519X25519
        } else {
            Suite::SimulationOnly
        };
        let currency = Currency::EUR;
        let office = fixture::Office::new(suite, EPOCH, &mut rng);
        let limits = Limits {
            offline_balance_max: Amount::new(1_000_000, currency),
            payment_max: Amount::new(50_000, currency),
            days_between_syncs_max: 30,
            payments_between_syncs_max: 1_000,
        };
        let wallet_config = Config {
            simulation: true,
            fault_presumed_abort_after_complete: cfg.fault_presumed_abort_after_complete,
            ..Config::default()
        };
        let mut nodes = Vec::new();
        let mut ids = Vec::new();
        let mut charged_total = Amount::zero(currency);
        let mut trace = blake3::Hasher::new();
        trace.update(&cfg.seed.to_be_bytes());
        // A dishonest run has a real office, which enrols and charges.
        let mut world = cfg
            .dishonest
            .map(|_| OfficeWorld::open(suite, limits, EPOCH, &mut rng).expect("the office opens"));
        let mut charged = Vec::new();
        let mut certificates = Vec::new();
        let mut adversary = cfg.dishonest.map(|d| Adversary::new(d, EPOCH));
        for n in 0..=cfg.buyers {
            let (id, certificate, genesis) = match world.as_mut() {
                Some(world) => {
                    let e = world
                        .enroll(n, suite, EPOCH, &mut rng)
                        .expect("the office enrols");
                    (e.id, e.certificate, e.genesis)
                }
                None => {
                    let id = PartyId::from_u64(u64::try_from(n).unwrap_or(0) + 1);
                    let issued = office
                        .issue_wallet(id, limits, &mut rng)
                        .expect("fixture limits are set");
                    (id, issued.certificate, issued.genesis)
                }
            };
            let mut store = NodeStore::create(&cfg.storage, n).expect("simulated store opens");
            store.apply(&genesis).expect("genesis batch is in order");
            let snapshot = store.snapshot().expect("store loads");
            let mut wallet =
                Wallet::recover(wallet_config.clone(), &snapshot, rng.next_u64(), EPOCH)
                    .expect("a fresh wallet recovers");
            // Buyers get value; the seller starts empty or with a little.
            let charge = if n == SELLER {
                Amount::new(i64::try_from(rng.next_u64() % 1_000).unwrap_or(0), currency)
            } else {
                Amount::new(
                    5_000 + i64::try_from(rng.next_u64() % 50_000).unwrap_or(0),
                    currency,
                )
            };
            if let Some(adv) = adversary.as_mut()
                && adv.cfg.node == n
            {
                adv.keys = snapshot
                    .meta
                    .get(mpay_offline::records::meta::SECRET_KEYS)
                    .and_then(|b| SecretKeys::from_secret_bytes(b).ok());
            }
            if charge.is_positive() {
                let voucher = match world.as_mut() {
                    Some(world) => world
                        .voucher(n, id, charge, EPOCH)
                        .expect("the office charges"),
                    None => office.voucher(id, charge, EPOCH, &mut rng),
                };
                wallet.charge(EPOCH, voucher).expect("charge within limits");
                while let Some(w) = wallet.poll_write() {
                    store.apply(&w.batch).expect("charge batch in order");
                    wallet.write_completed(w.id);
                }
                while wallet.poll_event().is_some() {}
                charged_total = charged_total
                    .checked_add(charge)
                    .expect("simulated charges are small");
            }
            ids.push(id);
            charged.push(if charge.is_positive() {
                charge
            } else {
                Amount::zero(currency)
            });
            certificates.push(certificate);
            nodes.push(Node {
                wallet: Some(wallet),
                store,
                incarnation: 0,
                restart_at: None,
                writes: 0,
                config: wallet_config.clone(),
            });
        }
        let mut wanted = Vec::new();
        for _ in 0..cfg.transfers {
            let buyer =
                1 + usize::try_from(rng.next_u64() % u64::try_from(cfg.buyers).unwrap_or(1))
                    .unwrap_or(0);
            let amount = Amount::new(
                1 + i64::try_from(rng.next_u64() % 20_000).unwrap_or(0),
                currency,
            );
            // One in eight buyers agreed to less than the price and must refuse.
            let max_amount = if rng.next_u64().is_multiple_of(8) {
                Amount::new(amount.minor_units() - 1, currency)
            } else {
                amount
            };
            let start_at = EPOCH.saturating_add_ms(rng.next_u64() % (FAULTY_PHASE_MS / 2));
            wanted.push(Wanted {
                buyer,
                amount,
                max_amount,
                lookups: 0,
                started: false,
                next_lookup_at: start_at,
            });
        }
        let report = SimReport {
            seed: cfg.seed,
            balances_before: nodes
                .iter()
                .zip(&ids)
                .filter_map(|(node, id)| node.wallet.as_ref().map(|w| (*id, w.balance())))
                .collect(),
            charged_total: Some(charged_total),
            dishonest_node: cfg.dishonest.map(|d| d.node),
            ..SimReport::default()
        };
        Sim {
            cfg,
            rng,
            now: EPOCH,
            nodes,
            ids,
            network: BinaryHeap::new(),
            order: 0,
            healed: false,
            wanted,
            sales: BTreeMap::new(),
            charged_total,
            charged,
            certificates,
            adversary,
            office: world,
            trace,
            report,
        }
    }

    fn chance(&mut self, permille: u32) -> bool {
        permille > 0 && self.rng.next_u64() % 1000 < u64::from(permille)
    }

    fn narrate(&mut self, what: impl FnOnce() -> String) {
        if self.cfg.narrate {
            let seconds = self.now.millis_since(EPOCH) as f64 / 1000.0;
            let line = format!("{seconds:>8.3}s  {}", what());
            self.report.log.push(line);
        }
    }

    fn violation(&mut self, what: String) {
        if self.report.violations.len() < 16 {
            self.report.violations.push(what);
        }
    }

    fn run(&mut self) {
        let heal_at = EPOCH.saturating_add_ms(FAULTY_PHASE_MS);
        let stop_at = heal_at.saturating_add_ms(HEAL_PHASE_MS_MAX);
        loop {
            self.report.steps += 1;
            if self.report.steps > STEPS_MAX {
                self.violation(format!("runaway: more than {STEPS_MAX} steps"));
                return;
            }
            if !self.healed && self.now >= heal_at {
                self.heal();
            }
            let next = self.next_time(heal_at);
            let Some(next) = next else {
                return;
            };
            if next > stop_at {
                return;
            }
            self.now = self.now.max(next);
            self.step();
            self.check_conservation();
            if !self.report.violations.is_empty() {
                return;
            }
            if self.healed && self.resolved() {
                return;
            }
        }
    }

    fn next_time(&self, heal_at: Timestamp) -> Option<Timestamp> {
        let mut times = Vec::with_capacity(8);
        if let Some(f) = self.network.peek() {
            times.push(f.deliver_at);
        }
        for node in &self.nodes {
            if let Some(w) = &node.wallet
                && let Some(t) = w.poll_timeout()
            {
                times.push(t);
            }
            if let Some(t) = node.restart_at {
                times.push(t);
            }
        }
        for w in &self.wanted {
            if !w.started && w.lookups < LOOKUPS_MAX {
                times.push(w.next_lookup_at);
            }
        }
        if !self.healed {
            times.push(heal_at);
            if let Some(adv) = &self.adversary {
                times.push(adv.next_action_at);
            }
        }
        times.into_iter().min()
    }

    /// Ends the faulty phase: no more loss or crashes, every phone back up.
    fn heal(&mut self) {
        self.healed = true;
        for n in 0..self.nodes.len() {
            if self.nodes[n].wallet.is_none() {
                self.nodes[n].restart_at = Some(self.now);
            }
        }
    }

    fn step(&mut self) {
        let now = self.now;
        // Restarts due.
        for n in 0..self.nodes.len() {
            if self.nodes[n].restart_at.is_some_and(|t| t <= now) {
                self.restart(n);
            }
        }
        // Deliveries due.
        while self.network.peek().is_some_and(|f| f.deliver_at <= now) {
            let Some(frame) = self.network.pop() else {
                break;
            };
            let to = frame.to;
            if let Some(wallet) = self.nodes[to].wallet.as_mut() {
                self.trace.update(&frame.frame);
                // Refusals are normal here (duplicates, stale frames after a
                // restart); they must change nothing, which the invariants check.
                let _ = wallet.handle_frame(now, &frame.frame);
                self.pump(to);
            }
        }
        // Timers due.
        for n in 0..self.nodes.len() {
            let due = self.nodes[n]
                .wallet
                .as_ref()
                .and_then(|w| w.poll_timeout())
                .is_some_and(|t| t <= now);
            if due {
                if let Some(w) = self.nodes[n].wallet.as_mut() {
                    w.handle_timeout(now);
                }
                self.pump(n);
            }
        }
        // The dishonest phone acts while the link is faulty.
        if !self.healed
            && self
                .adversary
                .as_ref()
                .is_some_and(|a| a.next_action_at <= now)
        {
            self.adversary_act();
        }
        // The script: start transfers.
        for i in 0..self.wanted.len() {
            let w = &self.wanted[i];
            if w.started || w.lookups >= LOOKUPS_MAX || w.next_lookup_at > now {
                continue;
            }
            let (buyer, max_amount) = (w.buyer, w.max_amount);
            self.wanted[i].lookups += 1;
            self.wanted[i].next_lookup_at = now.saturating_add_ms(LOOKUP_RETRY_MS);
            if self.nodes[SELLER].wallet.is_none() {
                continue;
            }
            if let Some(bw) = self.nodes[buyer].wallet.as_mut() {
                bw.set_buy_intent(BuyIntent {
                    max_amount,
                    seller: Some(self.ids[SELLER]),
                    expires_at: now.saturating_add_ms(30_000),
                });
            }
            if let Some(sw) = self.nodes[SELLER].wallet.as_mut() {
                sw.lookup(now);
            }
            self.pump(SELLER);
        }
    }

    /// Drives one node's outputs: durable writes (with crashes), frames,
    /// events.
    fn pump(&mut self, n: usize) {
        loop {
            let Some(wallet) = self.nodes[n].wallet.as_mut() else {
                return;
            };
            if let Some(write) = wallet.poll_write() {
                self.nodes[n].writes += 1;
                let index = self.nodes[n].writes;
                let crash = self.crash_point(n, index);
                if crash == Some(CrashPoint::BeforeSync) {
                    self.crash(n);
                    return;
                }
                if let Err(e) = self.nodes[n].store.apply(&write.batch) {
                    self.violation(format!("node {n}: store refused a batch: {e}"));
                    return;
                }
                self.remember_snapshot(n);
                if crash == Some(CrashPoint::AfterSync) {
                    self.crash(n);
                    return;
                }
                if let Some(wallet) = self.nodes[n].wallet.as_mut() {
                    wallet.write_completed(write.id);
                }
                continue;
            }
            if let Some(t) = wallet.poll_transmit() {
                self.transmit(n, t.to, t.frame);
                continue;
            }
            if let Some(event) = wallet.poll_event() {
                self.on_event(n, event);
                continue;
            }
            return;
        }
    }

    fn crash_point(&mut self, n: usize, index: u64) -> Option<CrashPoint> {
        if let Some(plan) = self.cfg.planned_crash {
            return (plan.node == n && plan.write_index == index && self.nodes[n].incarnation == 0)
                .then_some(plan.point);
        }
        if self.healed || !self.chance(self.cfg.crash_permille) {
            return None;
        }
        Some(if self.rng.next_u64().is_multiple_of(2) {
            CrashPoint::BeforeSync
        } else {
            CrashPoint::AfterSync
        })
    }

    fn crash(&mut self, n: usize) {
        self.report.crashes += 1;
        self.narrate(|| {
            format!(
                "{} CRASHES (memory lost; unsynced writes lost)",
                phone_name(n)
            )
        });
        self.trace.update(b"crash");
        self.trace.update(&n.to_be_bytes());
        let node = &mut self.nodes[n];
        node.wallet = None;
        node.store.close();
        node.restart_at = Some(
            self.now
                .saturating_add_ms(100 + self.rng.next_u64() % 3_000),
        );
    }

    fn restart(&mut self, n: usize) {
        let seed = self.cfg.seed;
        let node = &mut self.nodes[n];
        node.restart_at = None;
        node.incarnation += 1;
        let rng_seed = seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(u64::try_from(n).unwrap_or(0) << 32)
            .wrapping_add(node.incarnation);
        let snapshot = match node.store.snapshot() {
            Ok(s) => s,
            Err(e) => {
                self.violation(format!("node {n}: store does not reopen: {e}"));
                return;
            }
        };
        match Wallet::recover(node.config.clone(), &snapshot, rng_seed, self.now) {
            Ok(wallet) => {
                let (balance, locked) = (wallet.balance(), wallet.locked());
                node.wallet = Some(wallet);
                self.narrate(|| {
                    format!(
                        "{} restarts from its store: balance {balance}, locked {locked}",
                        phone_name(n)
                    )
                });
                self.pump(n);
            }
            Err(e) => self.violation(format!("node {n} cannot recover: {e}")),
        }
    }

    fn transmit(&mut self, from: usize, to: PartyId, frame: Vec<u8>) {
        if let Some(adv) = self.adversary.as_mut()
            && adv.cfg.node == from
        {
            if adv.withholds(&frame) {
                return;
            }
            adv.remember_sent(to, &frame);
        }
        let targets: Vec<usize> = if to == PartyId::BROADCAST {
            (0..self.nodes.len()).filter(|&i| i != from).collect()
        } else {
            self.ids
                .iter()
                .position(|id| *id == to)
                .into_iter()
                .collect()
        };
        for target in targets {
            self.report.frames_sent += 1;
            if !self.healed && self.chance(self.cfg.loss_permille) {
                self.report.frames_dropped += 1;
                continue;
            }
            let copies = if !self.healed && self.chance(self.cfg.duplicate_permille) {
                self.report.frames_duplicated += 1;
                2
            } else {
                1
            };
            for _ in 0..copies {
                let span = self.cfg.delay_ms_max - self.cfg.delay_ms_min + 1;
                let delay = self.cfg.delay_ms_min + self.rng.next_u64() % span;
                self.order += 1;
                self.network.push(InFlight {
                    deliver_at: self.now.saturating_add_ms(delay),
                    order: self.order,
                    to: target,
                    frame: frame.clone(),
                });
            }
        }
    }

    fn on_event(&mut self, n: usize, event: Event) {
        self.trace.update(format!("{n}:{event:?}").as_bytes());
        self.narrate(|| describe(n, &event));
        match event {
            Event::BuyerFound { buyer } if n == SELLER => {
                let now = self.now;
                let Some(i) = self
                    .wanted
                    .iter()
                    .position(|w| !w.started && w.lookups > 0 && self.ids[w.buyer] == buyer)
                else {
                    return;
                };
                let (amount, buyer_node) = (self.wanted[i].amount, self.wanted[i].buyer);
                let Some(seller) = self.nodes[SELLER].wallet.as_mut() else {
                    return;
                };
                match seller.sell(now, buyer, amount, "simulated purchase") {
                    Ok(tx) => {
                        self.wanted[i].started = true;
                        self.report.sales_started += 1;
                        self.sales.insert(tx, (buyer_node, amount));
                    }
                    Err(e) => self.violation(format!("seller could not sell: {e}")),
                }
            }
            Event::SaleCommitted { .. } => self.report.committed += 1,
            Event::SaleAborted { .. } => self.report.aborted += 1,
            _ => {}
        }
    }

    /// Invariant 1, on every node's current view (memory if up, stable
    /// storage if down).
    fn check_conservation(&mut self) {
        if self.adversary.is_some() {
            // A dishonest phone can make value (a restored store); the
            // office's books and its verdict on the honest phones are
            // checked at the end instead.
            return;
        }
        let recovered = self.recover_down_nodes();
        let mut recovered = recovered.iter();
        let views: Vec<&Wallet> = self
            .nodes
            .iter()
            .map(|node| match &node.wallet {
                Some(w) => w,
                None => recovered
                    .next()
                    .expect("one recovered wallet per down node"),
            })
            .collect();
        let currency = self.charged_total.currency();
        let mut total = Amount::zero(currency);
        let seller_view = views[SELLER];
        let mut problems = Vec::new();
        for (n, view) in views.iter().enumerate() {
            let mut add = view.balance();
            for (tx, _, amount) in view.prepared_txs() {
                let seller_paid = self.sales.contains_key(&tx) && seller_view.received(&tx);
                if !seller_paid {
                    add = add.checked_add(amount).unwrap_or(add);
                }
            }
            if add.is_negative() {
                problems.push(format!("node {n} holds a negative amount {add}"));
            }
            total = total.checked_add(add).unwrap_or(total);
        }
        drop(views);
        for p in problems {
            self.violation(p);
        }
        if total != self.charged_total {
            let msg = format!(
                "conservation broken at {}: wallets hold {total}, {} was charged",
                self.now, self.charged_total
            );
            self.violation(msg);
        }
    }

    /// The wallets of the nodes that are down, recovered from stable
    /// storage, in node order.
    fn recover_down_nodes(&self) -> Vec<Wallet> {
        self.nodes
            .iter()
            .filter(|node| node.wallet.is_none())
            .map(|node| {
                let snapshot = node
                    .store
                    .snapshot()
                    .expect("a crashed phone's store loads");
                Wallet::recover(node.config.clone(), &snapshot, 0, self.now)
                    .expect("a stored wallet recovers (checked at restart)")
            })
            .collect()
    }

    fn resolved(&self) -> bool {
        let pending_lookups = self
            .wanted
            .iter()
            .any(|w| !w.started && w.lookups < LOOKUPS_MAX);
        // A dishonest phone need not finish anything, and what an honest
        // buyer holds prepared for a dishonest seller waits for the office.
        let dishonest = self.adversary.as_ref().map(|a| a.cfg.node);
        let dishonest_id = dishonest.map(|d| self.ids[d]);
        !pending_lookups
            && self.nodes.iter().enumerate().all(|(n, node)| {
                node.wallet.as_ref().is_some_and(|w| {
                    Some(n) == dishonest
                        || (w
                            .prepared_txs()
                            .all(|(_, seller, _)| Some(seller) == dishonest_id)
                            && w.committing_txs().all(|tx| {
                                self.sales.get(&tx).map(|(b, _)| Some(*b)) == Some(dishonest)
                            })
                            && w.requesting_txs().next().is_none()
                            && w.writes_in_flight() == 0)
                })
            })
    }

    /// Keeps a copy of the dishonest phone's store after each durable write.
    fn remember_snapshot(&mut self, n: usize) {
        let Some(adv) = self.adversary.as_mut() else {
            return;
        };
        if adv.cfg.node != n {
            return;
        }
        if let NodeStore::Memory(snapshot) = &self.nodes[n].store {
            adv.remember_snapshot(snapshot.clone(), &mut self.rng);
        }
    }

    /// One action of the dishonest phone.
    fn adversary_act(&mut self) {
        let now = self.now;
        let Some(adv) = self.adversary.as_mut() else {
            return;
        };
        let d = adv.cfg.node;
        let every = adv.cfg.action_every_ms;
        adv.next_action_at = now.saturating_add_ms(1 + self.rng.next_u64() % (2 * every));
        adv.actions += 1;
        let action = adv.draw_action(&mut self.rng, d == SELLER);
        self.trace.update(format!("act:{action:?}").as_bytes());
        self.narrate(|| format!("{} (dishonest): {action:?}", phone_name(d)));
        match action {
            Action::Replay => {
                let Some(adv) = self.adversary.as_ref() else {
                    return;
                };
                if adv.sent.is_empty() {
                    return;
                }
                let len = u64::try_from(adv.sent.len()).unwrap_or(1);
                let i = usize::try_from(self.rng.next_u64() % len).unwrap_or(0);
                let (to, frame) = adv.sent[i].clone();
                self.transmit(d, to, frame);
            }
            Action::Rollback => {
                let Some(adv) = self.adversary.as_mut() else {
                    return;
                };
                if adv.snapshots.is_empty() || !matches!(self.nodes[d].store, NodeStore::Memory(_))
                {
                    return;
                }
                let len = u64::try_from(adv.snapshots.len()).unwrap_or(1);
                let i = usize::try_from(self.rng.next_u64() % len).unwrap_or(0);
                let older = adv.snapshots[i].clone();
                adv.rollbacks += 1;
                self.narrate(|| format!("{} restores an older copy of its store", phone_name(d)));
                self.nodes[d].store = NodeStore::Memory(older);
                self.crash(d);
            }
            Action::Withhold => {
                let Some(wallet) = self.nodes[d].wallet.as_ref() else {
                    return;
                };
                let committing: Vec<TxId> = wallet.committing_txs().collect();
                if committing.is_empty() {
                    return;
                }
                let len = u64::try_from(committing.len()).unwrap_or(1);
                let tx = committing[usize::try_from(self.rng.next_u64() % len).unwrap_or(0)];
                if let Some(adv) = self.adversary.as_mut() {
                    adv.withheld.insert(tx);
                }
            }
            _ => {
                let Some(wallet) = self.nodes[d].wallet.as_ref() else {
                    return;
                };
                let Some((tx, peer, message)) =
                    dishonest::message_for(action, wallet, &mut self.rng)
                else {
                    return;
                };
                let Some(peer_node) = self.ids.iter().position(|id| *id == peer) else {
                    return;
                };
                let Some(keys) = self.adversary.as_ref().and_then(|a| a.keys.as_ref()) else {
                    return;
                };
                let frame = dishonest::forge(
                    keys,
                    self.ids[d],
                    &self.certificates[peer_node],
                    tx,
                    &message,
                    now,
                    &mut self.rng,
                );
                if let Some(frame) = frame {
                    self.transmit(d, peer, frame);
                }
            }
        }
    }

    /// Makes node `n`'s pending writes durable (no crashes: the link healed).
    fn settle_writes(&mut self, n: usize) -> Result<(), String> {
        let node = &mut self.nodes[n];
        let Some(wallet) = node.wallet.as_mut() else {
            return Ok(());
        };
        while let Some(write) = wallet.poll_write() {
            node.store
                .apply(&write.batch)
                .map_err(|e| format!("store refused a batch: {e}"))?;
            wallet.write_completed(write.id);
        }
        Ok(())
    }

    /// Syncs node `n` with the office; a refusal is a violation for an
    /// honest phone and the dishonest phone's own loss otherwise.
    fn sync_node(&mut self, world: &OfficeWorld, n: usize) {
        let now = self.now;
        let honest = self.adversary.as_ref().is_none_or(|a| a.cfg.node != n);
        let node = &mut self.nodes[n];
        let outcome = match node.wallet.as_mut() {
            Some(wallet) => {
                let store = &mut node.store;
                world.sync(wallet, now, |w| {
                    while let Some(write) = w.poll_write() {
                        store
                            .apply(&write.batch)
                            .map_err(|e| format!("store refused a batch: {e}"))?;
                        w.write_completed(write.id);
                    }
                    Ok(())
                })
            }
            None => Err("phone is down".to_owned()),
        };
        self.trace
            .update(format!("sync:{n}:{outcome:?}").as_bytes());
        self.narrate(|| match &outcome {
            Ok(()) => format!("{} syncs with the office", phone_name(n)),
            Err(e) => format!("{} sync refused: {e}", phone_name(n)),
        });
        if let Err(e) = outcome
            && honest
        {
            self.violation(format!("honest node {n}: sync with the office failed: {e}"));
        }
        self.pump(n);
    }

    /// The office's part of a dishonest run: every phone syncs, the claim
    /// windows close, every phone syncs twice more; then the office's
    /// verdict on every honest phone is checked.
    fn office_phase(&mut self) {
        let Some(world) = self.office.take() else {
            return;
        };
        let Some(d) = self.adversary.as_ref().map(|a| a.cfg.node) else {
            return;
        };
        let late = self
            .adversary
            .as_ref()
            .is_some_and(|a| !a.withheld.is_empty());
        let honest: Vec<usize> = (0..self.nodes.len()).filter(|n| *n != d).collect();
        for &n in &honest {
            self.sync_node(&world, n);
        }
        if !late {
            self.sync_node(&world, d);
        }
        let claim_window_ms = self.nodes[SELLER].config.claim_window_ms;
        self.now = OfficeWorld::after_claim_windows(self.now, claim_window_ms);
        let now = self.now;
        for n in 0..self.nodes.len() {
            if let Some(w) = self.nodes[n].wallet.as_mut() {
                w.handle_timeout(now);
            }
            self.pump(n);
        }
        for _round in 0..2 {
            for &n in &honest {
                self.sync_node(&world, n);
            }
            self.sync_node(&world, d);
        }
        for &n in &honest {
            if let Err(e) = self.settle_writes(n) {
                self.violation(format!("honest node {n}: {e}"));
            }
        }
        let honest_ids: Vec<(usize, PartyId)> = honest.iter().map(|n| (*n, self.ids[*n])).collect();
        for p in world.judge(&honest_ids) {
            self.violation(p);
        }
        for &n in &honest {
            self.check_honest_decisions(n);
        }
        self.office = Some(world);
    }

    /// An honest phone's balance is exactly what its own decisions say, and
    /// it paid only what its owner agreed to.
    fn check_honest_decisions(&mut self, n: usize) {
        let mut problems = Vec::new();
        let Some(wallet) = self.nodes[n].wallet.as_ref() else {
            self.violation(format!("honest node {n} is down at the end"));
            return;
        };
        for (tx, _, amount) in wallet.prepared_txs() {
            problems.push(format!(
                "honest node {n}: payment {} of {amount} still locked after the office resolved every claim window",
                tx.short()
            ));
        }
        problems.extend(dishonest::decisions_problems(
            n,
            wallet,
            self.charged[n],
            |tx, amount| self.sales.get(tx) == Some(&(n, amount)),
        ));
        for p in problems {
            self.violation(p);
        }
    }

    fn finish(mut self) -> SimReport {
        if self.report.violations.is_empty() {
            self.check_end_state();
        }
        if self.report.violations.is_empty() && self.office.is_some() {
            self.office_phase();
        }
        if let Some(adv) = &self.adversary {
            self.report.dishonest_actions = adv.actions;
            self.report.dishonest_rollbacks = adv.rollbacks;
        }
        self.report.balances_after = self
            .nodes
            .iter()
            .zip(&self.ids)
            .filter_map(|(node, id)| node.wallet.as_ref().map(|w| (*id, w.balance())))
            .collect();
        self.report.trace_hash = *self.trace.finalize().as_bytes();
        self.report
    }

    /// Invariants 2-4 once the link has healed.
    fn check_end_state(&mut self) {
        if !self.resolved() {
            let states: Vec<String> = self
                .nodes
                .iter()
                .map(|n| format!("{:?}", n.wallet))
                .collect();
            self.violation(format!("not resolved after healing: {states:?}"));
            return;
        }
        let mut problems = Vec::new();
        let seller = self.nodes[SELLER]
            .wallet
            .as_ref()
            .expect("resolved: all up");
        let mut received_count: HashMap<TxId, u32> = HashMap::new();
        for entry in seller.chain() {
            if let EntryKind::Receive { tx, .. } = entry.kind {
                *received_count.entry(tx).or_default() += 1;
            }
        }
        let dishonest = self.adversary.as_ref().map(|a| a.cfg.node);
        for (tx, (buyer_node, amount)) in &self.sales {
            // Atomicity is between honest phones; the office answers for
            // transfers with a dishonest one.
            if dishonest.is_some_and(|d| d == *buyer_node || d == SELLER) {
                continue;
            }
            let buyer = self.nodes[*buyer_node]
                .wallet
                .as_ref()
                .expect("resolved: all up");
            let received = received_count.get(tx).copied().unwrap_or(0);
            let paid = buyer.paid(tx);
            if received > 1 {
                problems.push(format!("tx {tx:?} received {received} times"));
            }
            if (received == 1) != paid {
                problems.push(format!(
                    "tx {tx:?} of {amount}: seller received={received}, buyer paid={paid}"
                ));
            }
        }
        for (n, node) in self.nodes.iter().enumerate() {
            let Some(wallet) = &node.wallet else { continue };
            let keys = *wallet.certificate().keys();
            if let Err(e) = verify_chain(&keys, None, wallet.chain()) {
                problems.push(format!("node {n}: chain invalid: {e}"));
            }
            let mut pays: HashMap<TxId, u32> = HashMap::new();
            for entry in wallet.chain() {
                if let EntryKind::Pay { tx, .. } = entry.kind {
                    *pays.entry(tx).or_default() += 1;
                }
            }
            if let Some((tx, count)) = pays.iter().find(|(_, c)| **c > 1)
                && Some(n) != dishonest
            {
                problems.push(format!("node {n}: tx {tx:?} paid {count} times"));
            }
            let stored = node
                .store
                .snapshot()
                .map_err(|e| e.to_string())
                .and_then(|s| {
                    Wallet::recover(node.config.clone(), &s, 0, self.now).map_err(|e| e.to_string())
                });
            match stored {
                Ok(stored) => {
                    if stored.balance() != wallet.balance()
                        || stored.chain().len() != wallet.chain().len()
                    {
                        problems.push(format!(
                            "node {n}: stored state (balance {}, {} entries) differs from memory (balance {}, {} entries)",
                            stored.balance(),
                            stored.chain().len(),
                            wallet.balance(),
                            wallet.chain().len()
                        ));
                    }
                }
                Err(e) => problems.push(format!("node {n}: store does not recover: {e}")),
            }
        }
        for p in problems {
            self.violation(p);
        }
    }
}

/// The name of simulated phone `n` in narration.
pub fn phone_name(n: usize) -> String {
    if n == SELLER {
        "seller".to_owned()
    } else {
        format!("buyer {n}")
    }
}

fn describe(n: usize, event: &Event) -> String {
    let who = phone_name(n);
    match event {
        Event::BuyerFound { buyer } => {
            format!("{who}: buyer {} answered the LOOKUP", buyer.short())
        }
        Event::SaleCommitted { tx, amount, .. } => {
            format!(
                "{who}: sale {} COMMITTED for {amount} (COMMIT record durable)",
                tx.short()
            )
        }
        Event::SaleCompleted { tx } => {
            format!("{who}: sale {} complete (buyer acknowledged)", tx.short())
        }
        Event::SaleSettledByOffice { tx } => {
            format!(
                "{who}: sale {} settled by the office (never acknowledged)",
                tx.short()
            )
        }
        Event::SaleAborted { tx, reason } => {
            format!("{who}: sale {} aborted ({reason:?})", tx.short())
        }
        Event::PaymentRequested {
            tx,
            amount,
            accepted,
            ..
        } => format!(
            "{who}: asked to pay {amount} for {}: {}",
            tx.short(),
            if *accepted {
                "agreed, funds locked"
            } else {
                "refused"
            }
        ),
        Event::PaymentCommitted { tx, amount, .. } => {
            format!("{who}: payment {} of {amount} committed", tx.short())
        }
        Event::PaymentAborted { tx, amount } => {
            format!("{who}: payment {} aborted, {amount} unlocked", tx.short())
        }
        Event::PaymentAwaitingOffice { tx } => {
            format!(
                "{who}: payment {} past its claim deadline, awaiting the office",
                tx.short()
            )
        }
        Event::Charged { amount } => format!("{who}: charged {amount}"),
        Event::BuyerRefused { buyer, reason } => {
            format!("{who}: buyer {} refused ({reason:?})", buyer.short())
        }
        Event::BuyerRevoked { buyer } => {
            format!("{who}: buyer {} refused (revoked)", buyer.short())
        }
        Event::RevocationListInstalled { version } => {
            format!("{who}: revocation list version {version} in force")
        }
    }
}

/// Totals over many seeds.
#[derive(Clone, Debug, Default)]
pub struct BatchSummary {
    pub seeds: u64,
    pub transfers: u64,
    pub committed: u64,
    pub aborted: u64,
    pub crashes: u64,
    pub frames_sent: u64,
    pub frames_dropped: u64,
    /// Runs with a dishonest phone, and what it did.
    pub dishonest_runs: u64,
    pub dishonest_actions: u64,
    pub dishonest_rollbacks: u64,
    pub failures: Vec<SimReport>,
}

impl BatchSummary {
    pub fn add(&mut self, report: SimReport) {
        self.seeds += 1;
        self.transfers += report.sales_started;
        self.committed += report.committed;
        self.aborted += report.aborted;
        self.crashes += report.crashes;
        self.frames_sent += report.frames_sent;
        self.frames_dropped += report.frames_dropped;
        self.dishonest_runs += u64::from(report.dishonest_node.is_some());
        self.dishonest_actions += report.dishonest_actions;
        self.dishonest_rollbacks += report.dishonest_rollbacks;
        if !report.violations.is_empty() {
            self.failures.push(report);
        }
    }

    fn merge(&mut self, part: BatchSummary) {
        self.seeds += part.seeds;
        self.transfers += part.transfers;
        self.committed += part.committed;
        self.aborted += part.aborted;
        self.crashes += part.crashes;
        self.frames_sent += part.frames_sent;
        self.frames_dropped += part.frames_dropped;
        self.dishonest_runs += part.dishonest_runs;
        self.dishonest_actions += part.dishonest_actions;
        self.dishonest_rollbacks += part.dishonest_rollbacks;
        self.failures.extend(part.failures);
    }

    pub fn violations(&self) -> usize {
        self.failures.iter().map(|r| r.violations.len()).sum()
    }
}

/// Runs `count` seeds from `first` on `threads` threads (each takes the next
/// seed not yet run, so slow seeds do not hold the others up).
pub fn run_seeds(first: u64, count: u64, threads: usize) -> BatchSummary {
    run_seeds_with(first, count, threads, DISHONEST_EVERY)
}

/// [`run_seeds`] with a dishonest peer in one seed in `dishonest_every`
/// (0: none).
pub fn run_seeds_with(
    first: u64,
    count: u64,
    threads: usize,
    dishonest_every: u64,
) -> BatchSummary {
    let mut total = across_threads(
        first,
        count,
        threads,
        move |summary: &mut BatchSummary, seed| summary.add(run_seed_with(seed, dishonest_every)),
        BatchSummary::merge,
    );
    total.failures.sort_by_key(|r| r.seed);
    total
}

/// Runs seeds `first..first + count` on `threads` threads, each taking the
/// next seed not yet run (so slow seeds do not hold the others up) and
/// adding it to its own part with `add`; the parts are then merged. `add`
/// must not panic (the runs catch their panics), so a worker cannot die
/// mid-batch.
pub fn across_threads<S: Default + Send + 'static>(
    first: u64,
    count: u64,
    threads: usize,
    add: impl Fn(&mut S, u64) + Send + Sync + Copy + 'static,
    merge: fn(&mut S, S),
) -> S {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let next = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let next = Arc::clone(&next);
            std::thread::spawn(move || {
                let mut part = S::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        return part;
                    }
                    add(&mut part, first.saturating_add(i));
                }
            })
        })
        .collect();
    let mut total = S::default();
    for handle in handles {
        merge(&mut total, handle.join().unwrap_or_default());
    }
    total
}
