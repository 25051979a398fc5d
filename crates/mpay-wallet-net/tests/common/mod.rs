//! Shared test fixture: a money office, wallets with real encrypted stores in
//! a temporary directory, and nodes on loopback.
#![allow(dead_code)] // each test binary uses part of it

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mpay_identity::{Limits, PartyId, Suite, Timestamp};
use mpay_money::{Amount, Currency};
use mpay_offline::{BuyIntent, Config, Wallet};
use mpay_sim::fixture::Office;
use mpay_wallet_net::{NodeConfig, WalletNode, wall_clock};
use mpay_wallet_store::{KdfParams, WalletStore};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

pub const PIN: &str = "1357";
pub const CURRENCY: Currency = Currency::EUR;

/// Short retries: real time runs here.
pub fn engine_config() -> Config {
    Config {
        retry_interval_min_ms: 20,
        retry_interval_max_ms: 200,
        status_after_ms: 100,
        ..Config::default()
    }
}

/// Loopback node config with a multicast port of the test's own, so tests
/// running at once do not hear each other's LOOKUPs.
pub fn loopback(group_port: u16) -> NodeConfig {
    NodeConfig::multicast(
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
        SocketAddrV4::new(Ipv4Addr::new(239, 255, 77, 77), group_port),
        Ipv4Addr::LOCALHOST,
    )
}

pub fn eur(cents: i64) -> Amount {
    Amount::new(cents, CURRENCY)
}

pub struct Fixture {
    pub office: Office,
    pub dir: tempfile::TempDir,
    pub rng: ChaCha20Rng,
    /// What the office charged, in total.
    pub charged: Amount,
    /// Limit put in the certificates issued from now on.
    pub days_between_syncs_max: u16,
}

impl Fixture {
    pub fn new(seed: u64) -> Fixture {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let office = Office::new(Suite::Ed25519X25519, wall_clock(), &mut rng);
        Fixture {
            office,
            dir: tempfile::tempdir().expect("temp dir"),
            rng,
            charged: eur(0),
            days_between_syncs_max: 30,
        }
    }

    pub fn store_path(&self, n: u64) -> PathBuf {
        self.dir.path().join(format!("wallet-{n}.db"))
    }

    /// Issues wallet `n`, creates its store, and recovers its engine.
    pub fn wallet(&mut self, n: u64) -> (Wallet, WalletStore) {
        let limits = Limits {
            offline_balance_max: eur(1_000_000),
            payment_max: eur(10_000),
            days_between_syncs_max: self.days_between_syncs_max,
            payments_between_syncs_max: 1_000,
        };
        let issued = self
            .office
            .issue_wallet(PartyId::from_u64(n), limits, &mut self.rng)
            .expect("issue wallet");
        let mut store = WalletStore::create(&self.store_path(n), PIN, KdfParams::FAST_FOR_TESTS)
            .expect("create store");
        store.apply(&issued.genesis).expect("genesis");
        let snapshot = store.load().expect("load");
        let wallet = Wallet::recover(engine_config(), &snapshot, n, wall_clock()).expect("recover");
        (wallet, store)
    }

    pub fn node(&mut self, n: u64, config: NodeConfig) -> WalletNode {
        let (wallet, store) = self.wallet(n);
        WalletNode::new(wallet, store, config).expect("node")
    }

    /// Charges `node` with `amount` from the office.
    pub fn charge(&mut self, node: &mut WalletNode, amount: Amount) {
        let voucher = self
            .office
            .voucher(node.id(), amount, wall_clock(), &mut self.rng);
        node.charge(voucher).expect("charge");
        self.charged = self.charged.checked_add(amount).expect("sum");
    }

    /// Conservation: every balance plus every locked amount is what was
    /// charged.
    pub fn assert_conserved(&self, nodes: &[&WalletNode]) {
        let mut total = eur(0);
        for node in nodes {
            total = total
                .checked_add(node.wallet().balance())
                .and_then(|t| t.checked_add(node.wallet().locked()))
                .expect("sum");
        }
        assert_eq!(total, self.charged, "money not conserved");
    }
}

pub fn intent(max_cents: i64, seller: Option<PartyId>) -> BuyIntent {
    BuyIntent {
        max_amount: eur(max_cents),
        seller,
        expires_at: Timestamp(wall_clock().0 + 60_000),
    }
}

/// After its operation, a node settles its own transactions, then keeps
/// serving until every party counted in `settled` has settled too (a peer's
/// retransmission may still need an answer), or `deadline`.
pub fn settle_together(
    node: &mut WalletNode,
    settled: &Arc<AtomicUsize>,
    parties: usize,
    deadline: Instant,
) {
    let done = node.run_until_settled(deadline).expect("settle");
    assert!(done, "{:?} did not settle by the deadline", node.id());
    settled.fetch_add(1, Ordering::SeqCst);
    while settled.load(Ordering::SeqCst) < parties && Instant::now() < deadline {
        node.step(Duration::from_millis(20)).expect("serve");
    }
    // One more short turn for a last retransmission in flight.
    node.run_for(Duration::from_millis(50)).expect("serve");
}
