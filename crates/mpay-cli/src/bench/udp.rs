//! `mpay bench udp`: offline purchases between two processes (this one the
//! seller, a child `mpay bench udp-buyer` the buyer) over real UDP sockets
//! on loopback, each wallet on its real encrypted store.
//!
//! The seller names the buyer; one transfer is `WalletNode::sell` from call
//! to `Completed`: LOOKUP and its reply, then the two-phase commit (four
//! durable writes, four sealed frames). Run once with no loss and once with
//! a share of all datagrams dropped (each sender drops that share of what it
//! sends, LOOKUPs and replies included); report
//! median and p99 latency and the share of sales that completed. Money is
//! checked conserved at the end of each run.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mpay_identity::{Limits, PartyId, Suite};
use mpay_money::{Amount, Currency};
use mpay_offline::{BuyIntent, Config, Wallet};
use mpay_sim::fixture::Office;
use mpay_wallet_net::{DropKnob, NodeConfig, SaleOutcome, WalletNode, wall_clock};
use mpay_wallet_store::{KdfParams, WalletStore};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::{median, micros, percentile};

/// How long one sale may take before it counts as not completed.
const SALE_DEADLINE: Duration = Duration::from_secs(15);

struct RunResult {
    latencies: Vec<Duration>,
    attempted: usize,
    completed: usize,
}

pub fn run(transfers: usize, loss_permille: u32) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(transfers > 0, "transfers must be positive");
    anyhow::ensure!(loss_permille <= 1000, "loss is per mille: 0..=1000");
    let clean = run_once(transfers, 0, 1)?;
    let lossy = run_once(transfers, loss_permille, 2)?;
    let report = |name: &str, r: &RunResult| {
        println!(
            "{name}: {}/{} completed ({:.1}%), median {:.1} ms, p99 {:.1} ms",
            r.completed,
            r.attempted,
            100.0 * r.completed as f64 / r.attempted as f64,
            micros(median(&r.latencies)) / 1000.0,
            micros(percentile(&r.latencies, 99)) / 1000.0
        );
    };
    report("loss 0%", &clean);
    report(
        &format!("loss {:.0}%", f64::from(loss_permille) / 10.0),
        &lossy,
    );
    println!(
        "clean_median_ms={:.1} clean_p99_ms={:.1} lossy_completion={:.3} lossy_median_ms={:.1} lossy_p99_ms={:.1}",
        micros(median(&clean.latencies)) / 1000.0,
        micros(percentile(&clean.latencies, 99)) / 1000.0,
        lossy.completed as f64 / lossy.attempted as f64,
        micros(median(&lossy.latencies)) / 1000.0,
        micros(percentile(&lossy.latencies, 99)) / 1000.0,
    );
    Ok(ExitCode::SUCCESS)
}

/// A node on loopback whose LOOKUPs go to `group`; it drops `loss_permille`
/// of what it sends, so each datagram crosses one knob: its sender's.
fn node_config(group: SocketAddrV4, loss_permille: u32, n: u64) -> NodeConfig {
    let mut config = NodeConfig::multicast(
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
        group,
        Ipv4Addr::LOCALHOST,
    );
    config.drop = DropKnob {
        inbound_permille: 0,
        outbound_permille: loss_permille,
        seed: n.wrapping_mul(31).wrapping_add(u64::from(loss_permille)),
    };
    config
}

fn node(
    office: &Office,
    dir: &std::path::Path,
    n: u64,
    limits: Limits,
    group: SocketAddrV4,
    loss_permille: u32,
    rng: &mut ChaCha20Rng,
) -> anyhow::Result<WalletNode> {
    let issued = office.issue_wallet(PartyId::from_u64(n), limits, rng)?;
    let mut store = WalletStore::create(
        &dir.join(format!("phone-{n}.db")),
        "1234",
        KdfParams::FAST_FOR_TESTS,
    )?;
    store.apply(&issued.genesis)?;
    let mut seed = [0u8; 32];
    crate::office::getrandom_seed(&mut seed)?;
    let wallet = Wallet::recover_with_seed(Config::default(), &store.load()?, seed, wall_clock())?;
    Ok(WalletNode::new(
        wallet,
        store,
        node_config(group, loss_permille, n),
    )?)
}

fn run_once(transfers: usize, loss_permille: u32, round: u16) -> anyhow::Result<RunResult> {
    let dir = tempfile::tempdir()?;
    let mut rng = ChaCha20Rng::seed_from_u64(u64::from(round));
    let now = wall_clock();
    let office = Office::new(Suite::Ed25519X25519, now, &mut rng);
    let currency = Currency::EUR;
    let limits = super::bench_limits(currency);
    // A multicast port of this process's own, so concurrent runs do not
    // hear each other's LOOKUPs.
    let port = 40_000 + u16::try_from(std::process::id() % 10_000).unwrap_or(0) + round;
    let group = SocketAddrV4::new(Ipv4Addr::new(239, 255, 77, 78), port);
    let mut seller = node(
        &office,
        dir.path(),
        1,
        limits,
        group,
        loss_permille,
        &mut rng,
    )?;
    let mut buyer = node(
        &office,
        dir.path(),
        2,
        limits,
        group,
        loss_permille,
        &mut rng,
    )?;
    let voucher = office.voucher(
        buyer.id(),
        Amount::new(100_000_000, currency),
        now,
        &mut rng,
    );
    buyer.charge(voucher)?;
    let total_before = seller
        .wallet()
        .balance()
        .checked_add(buyer.wallet().balance())?;
    let seller_id = seller.id();
    let buyer_id = buyer.id();
    let price = Amount::new(100, currency);

    // The buyer runs in a process of its own, on its own store.
    let buyer_path = dir.path().join("phone-2.db");
    drop(buyer);
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args([
            "bench",
            "udp-buyer",
            "--store",
            &buyer_path.display().to_string(),
            "--group",
            &group.to_string(),
            "--seller",
            &seller_id.to_hex(),
            "--price-minor",
            &price.minor_units().to_string(),
            "--loss-permille",
            &loss_permille.to_string(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    {
        use std::io::BufRead;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout from the buyer process"))?;
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        anyhow::ensure!(
            line.starts_with("ready"),
            "buyer process did not start: {line}"
        );
    }

    let mut latencies = Vec::with_capacity(transfers);
    let mut completed = 0;
    for _ in 0..transfers {
        let started = Instant::now();
        let outcome = seller.sell(
            price,
            "bench",
            Some(buyer_id),
            SALE_DEADLINE,
            started + SALE_DEADLINE,
        );
        if let Ok(SaleOutcome::Completed { .. } | SaleOutcome::CommittedUnacknowledged { .. }) =
            outcome
        {
            latencies.push(started.elapsed());
            completed += 1;
        }
    }
    // Closing the buyer's stdin tells it to finish: it serves until nothing
    // is pending (or a bound), while the seller finishes its retransmissions.
    drop(child.stdin.take());
    let settle_until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        seller.run_for(Duration::from_millis(100))?;
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > settle_until {
            let _ = child.kill();
            break child.wait()?;
        }
    };
    anyhow::ensure!(status.success(), "buyer process failed: {status}");
    let settle_until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < settle_until && seller.wallet().committing_txs().next().is_some() {
        seller.run_for(Duration::from_millis(100))?;
    }
    let buyer_store = WalletStore::open(&buyer_path, "1234")?;
    let buyer_wallet = Wallet::recover(Config::default(), &buyer_store.load()?, 0, wall_clock())?;
    let total_after = seller
        .wallet()
        .balance()
        .checked_add(buyer_wallet.balance())?
        .checked_add(buyer_wallet.locked())?;
    anyhow::ensure!(
        total_before == total_after,
        "money not conserved: {total_before} before, {total_after} after"
    );
    Ok(RunResult {
        latencies,
        attempted: transfers,
        completed,
    })
}

/// The buyer's side of `bench udp`, in its own process: buyer mode until
/// its stdin closes, then serve until nothing is pending.
pub fn buyer_process(
    store_path: &std::path::Path,
    group: SocketAddrV4,
    seller: &str,
    price_minor: i64,
    loss_permille: u32,
) -> anyhow::Result<ExitCode> {
    use std::io::{Read, Write};
    let seller = PartyId::from_hex(seller).ok_or_else(|| anyhow::anyhow!("seller: not an id"))?;
    let store = WalletStore::open(store_path, "1234")?;
    let mut seed = [0u8; 32];
    crate::office::getrandom_seed(&mut seed)?;
    let wallet = Wallet::recover_with_seed(Config::default(), &store.load()?, seed, wall_clock())?;
    let mut buyer = WalletNode::new(wallet, store, node_config(group, loss_permille, 2))?;
    let price = Amount::new(price_minor, buyer.wallet().currency());
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        let _ = done_tx.send(());
    });
    println!("ready {}", buyer.id());
    std::io::stdout().flush()?;
    while done_rx.try_recv().is_err() {
        let intent = BuyIntent {
            max_amount: price,
            seller: Some(seller),
            expires_at: wall_clock().saturating_add_ms(60_000),
        };
        // A timeout just means no seller asked in this window.
        let _ = buyer.buy(intent, Instant::now() + Duration::from_millis(500), |_| {});
    }
    let until = Instant::now() + Duration::from_secs(20);
    buyer.run_until_settled(until)?;
    Ok(ExitCode::SUCCESS)
}
