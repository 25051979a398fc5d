//! `mpay bench office`: how fast the money office audits chains at sync.
//!
//! Two wallets make `entries` purchases in memory; then each syncs with a
//! real office on a real database (SQLite file by default, or `--db`), in
//! requests of up to `SYNC_ENTRIES_MAX` entries. Reported: chain entries
//! verified and recorded per second. Baseline in the same run: the bare
//! Ed25519 verifications those entries need (one per entry, two for a
//! `Receive`, which carries the buyer's signed `Pay`). `ratio` = baseline
//! time / sync time.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mpay_identity::{SecretKeys, Suite, Timestamp};
use mpay_money::{Amount, Currency};
use mpay_office::{Office, OfficeConfig, sign_enrolment};
use mpay_offline::chain::EntryKind;
use mpay_offline::durable::Snapshot;
use mpay_offline::{BuyIntent, Config, Transmit, Wallet};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::micros;

struct Phone {
    wallet: Wallet,
    store: Snapshot,
}

impl Phone {
    fn pump(&mut self) -> Vec<Transmit> {
        let mut out = Vec::new();
        loop {
            if let Some(write) = self.wallet.poll_write() {
                let _ = self.store.apply(&write.batch);
                self.wallet.write_completed(write.id);
            } else if let Some(t) = self.wallet.poll_transmit() {
                out.push(t);
            } else if self.wallet.poll_event().is_none() {
                return out;
            }
        }
    }

    fn deliver(&mut self, now: Timestamp, frames: &[Transmit]) -> Vec<Transmit> {
        for f in frames {
            let _ = self.wallet.handle_frame(now, &f.frame);
        }
        self.pump()
    }
}

pub fn run(entries: usize, db: Option<String>) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(entries > 0, "entries must be positive");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(entries, db))
}

async fn run_async(entries: usize, db: Option<String>) -> anyhow::Result<ExitCode> {
    let dir = tempfile::tempdir()?;
    let url = db.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("office.db").display()));
    let database = mpay_sql::Db::connect(&url).await?;
    let now = mpay_office::http::wall_clock();
    let currency = Currency::EUR;
    let mut config = OfficeConfig::default_for(currency);
    config.wallet_limits.offline_balance_max = Amount::new(1_000_000_000, currency);
    config.wallet_limits.payments_between_syncs_max = u32::MAX;
    let office = Office::open(database, config, [9; 32], now).await?;
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let suffix = now.as_millis();
    let mut phones = Vec::new();
    for (n, name) in ["buyer", "seller"].iter().enumerate() {
        let owner = format!("bench-{name}-{suffix}");
        office
            .open_account(&owner, Amount::new(100_000_000, currency), now)
            .await?;
        let keys = SecretKeys::generate(Suite::Ed25519X25519, &mut rng);
        let proof = sign_enrolment(&owner, &keys, now);
        let enrolment = office
            .enroll(&owner, keys.public(), now, &proof, now)
            .await?;
        let mut store = Snapshot::default();
        store.apply(&Wallet::genesis(
            &keys,
            &enrolment.certificate,
            &enrolment.office_certificate,
            &enrolment.attestation,
            now,
        )?)?;
        let wallet = Wallet::recover(Config::default(), &store, 77 + u64::try_from(n)?, now)?;
        phones.push((owner, Phone { wallet, store }));
    }
    let (seller_owner, mut seller) = phones.pop().ok_or_else(|| anyhow::anyhow!("no seller"))?;
    let (buyer_owner, mut buyer) = phones.pop().ok_or_else(|| anyhow::anyhow!("no buyer"))?;
    let _ = seller_owner;
    let voucher = office
        .charge(
            &buyer_owner,
            buyer.wallet.id(),
            Amount::new(10_000_000, currency),
            "bench",
            now,
        )
        .await?;
    buyer.wallet.charge(now, voucher)?;
    buyer.pump();
    // The purchases, in memory.
    let price = Amount::new(100, currency);
    seller.wallet.lookup(now);
    buyer.wallet.set_buy_intent(BuyIntent {
        max_amount: price,
        seller: Some(seller.wallet.id()),
        expires_at: now.saturating_add_ms(3_600_000),
    });
    let lookup = seller.pump();
    let reply = buyer.deliver(now, &lookup);
    seller.deliver(now, &reply);
    for _ in 0..entries {
        buyer.wallet.set_buy_intent(BuyIntent {
            max_amount: price,
            seller: Some(seller.wallet.id()),
            expires_at: now.saturating_add_ms(3_600_000),
        });
        seller.wallet.sell(now, buyer.wallet.id(), price, "bench")?;
        let request = seller.pump();
        let agreed = buyer.deliver(now, &request);
        let commit = seller.deliver(now, &agreed);
        let ack = buyer.deliver(now, &commit);
        seller.deliver(now, &ack);
    }
    let chain_entries: usize = buyer.wallet.chain().len() + seller.wallet.chain().len();
    // Baseline: the signature checks these chains need.
    let buyer_keys = *buyer.wallet.certificate().keys();
    let seller_keys = *seller.wallet.certificate().keys();
    let started = Instant::now();
    let mut verifications = 0u64;
    for entry in buyer.wallet.chain() {
        black_box(entry.verify(&buyer_keys).is_ok());
        verifications += 1;
    }
    for entry in seller.wallet.chain() {
        black_box(entry.verify(&seller_keys).is_ok());
        verifications += 1;
        if let EntryKind::Receive { authorization, .. } = &entry.kind {
            black_box(authorization.verify(&buyer_keys).is_ok());
            verifications += 1;
        }
    }
    let baseline = started.elapsed();
    // The syncs: seller first (its claims), then the buyer.
    let started = Instant::now();
    let mut requests = 0u64;
    for phone in [&mut seller, &mut buyer] {
        loop {
            let request = phone.wallet.sync_request(now)?;
            let response = office.sync(&request, now).await?;
            requests += 1;
            let summary = phone.wallet.apply_sync_response(now, &response)?;
            phone.pump();
            if summary.entries_left == 0 {
                break;
            }
        }
    }
    let elapsed = started.elapsed();
    office.check_books().await?;
    let per_second = chain_entries as f64 / elapsed.as_secs_f64();
    let ratio = baseline.as_secs_f64() / elapsed.as_secs_f64();
    println!(
        "backend={} entries={chain_entries} requests={requests} verifications={verifications}",
        office.db().backend()
    );
    println!(
        "sync: {:.0} ms in all, {:.0} entries/s ({:.1} us per entry); signature checks alone: {:.0} ms",
        micros(elapsed) / 1000.0,
        per_second,
        micros(elapsed) / chain_entries as f64,
        micros(baseline) / 1000.0
    );
    println!(
        "entries_per_s={per_second:.0} baseline_ms={:.1} sync_ms={:.1} ratio={ratio:.3}",
        micros(baseline) / 1000.0,
        micros(elapsed) / 1000.0
    );
    let _ = Duration::ZERO;
    Ok(ExitCode::SUCCESS)
}
