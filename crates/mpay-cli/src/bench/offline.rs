//! `mpay bench offline`: one complete transfer (COMMIT-REQUEST, AGREED,
//! COMMIT, COMMITTED) between two wallet engines over an in-memory link,
//! each with its real encrypted store on disk (SQLCipher, WAL, synchronous
//! FULL).
//!
//! The floor, measured in the same run: what the protocol cannot avoid. A
//! transfer makes four durable writes (buyer UNDO/REDO, seller COMMIT,
//! buyer COMMITTED, seller COMPLETE) and four seal+open pairs. The fsync
//! cost is a 4 KiB write and `fdatasync` of a file in the same directory;
//! the seal+open cost is the envelope's. `ratio` = median transfer / floor.

use std::fs::OpenOptions;
use std::hint::black_box;
use std::io::{Seek, SeekFrom, Write as _};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mpay_envelope::{ENVELOPE_VERSION, Header, MessageKind, ReplayGuard};
use mpay_identity::{Limits, PartyId, Suite, Timestamp, TrustStore};
use mpay_money::{Amount, Currency};
use mpay_offline::{BuyIntent, Config, Transmit, Wallet};
use mpay_sim::fixture::Office;
use mpay_wallet_store::{KdfParams, WalletStore};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::{median, micros, percentile};

const NOW: Timestamp = Timestamp(1_767_225_600_000);
const DURABLE_WRITES_PER_TRANSFER: u32 = 4;
const SEAL_OPENS_PER_TRANSFER: u32 = 4;

struct Phone {
    wallet: Wallet,
    store: WalletStore,
    commit_samples: Vec<Duration>,
}

impl Phone {
    fn pump(&mut self) -> anyhow::Result<Vec<Transmit>> {
        let mut out = Vec::new();
        loop {
            if let Some(write) = self.wallet.poll_write() {
                let started = Instant::now();
                self.store.apply(&write.batch)?;
                self.commit_samples.push(started.elapsed());
                self.wallet.write_completed(write.id);
            } else if let Some(t) = self.wallet.poll_transmit() {
                out.push(t);
            } else if self.wallet.poll_event().is_some() {
            } else {
                return Ok(out);
            }
        }
    }

    fn deliver(&mut self, frames: &[Transmit]) -> anyhow::Result<Vec<Transmit>> {
        for f in frames {
            self.wallet.handle_frame(NOW, &f.frame)?;
        }
        self.pump()
    }
}

pub fn run(rounds: usize, transfers: usize) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        rounds > 0 && transfers > 0,
        "rounds and transfers must be positive"
    );
    let dir = tempfile::tempdir()?;
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let office = Office::new(Suite::Ed25519X25519, NOW, &mut rng);
    let currency = Currency::EUR;
    let limits = super::bench_limits(currency);
    let mut phone = |n: u64| -> anyhow::Result<Phone> {
        let issued = office.issue_wallet(PartyId::from_u64(n), limits, &mut rng)?;
        let mut store = WalletStore::create(
            &dir.path().join(format!("phone-{n}.db")),
            "1234",
            KdfParams::FAST_FOR_TESTS,
        )?;
        store.apply(&issued.genesis)?;
        let wallet = Wallet::recover(Config::default(), &store.load()?, n, NOW)?;
        Ok(Phone {
            wallet,
            store,
            commit_samples: Vec::new(),
        })
    };
    let mut seller = phone(1)?;
    let mut buyer = phone(2)?;
    let voucher = office.voucher(
        buyer.wallet.id(),
        Amount::new(100_000_000, currency),
        NOW,
        &mut rng,
    );
    buyer.wallet.charge(NOW, voucher)?;
    buyer.pump()?;
    let intent = BuyIntent {
        max_amount: Amount::new(100, currency),
        seller: Some(seller.wallet.id()),
        expires_at: NOW.saturating_add_ms(3_600_000),
    };
    buyer.wallet.set_buy_intent(intent);
    seller.wallet.lookup(NOW);
    let lookup = seller.pump()?;
    let reply = buyer.deliver(&lookup)?;
    seller.deliver(&reply)?;
    let buyer_id = buyer.wallet.id();
    let price = Amount::new(100, currency);

    let mut transfer_samples = Vec::with_capacity(rounds * transfers);
    let mut fsync_samples = Vec::with_capacity(rounds * transfers);
    let mut seal_open_samples = Vec::with_capacity(rounds * transfers);
    let mut fsync_file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.path().join("fsync-probe"))?;
    let page = [0x5au8; 4096];
    let (seal_keys, open_keys, trust, sender_cert, receiver_cert) =
        envelope_pair(&office, &mut rng)?;
    let mut replay = ReplayGuard::new();
    let payload = [7u8; 400];
    let mut nonce = 0u64;
    let mut committed = 0u64;
    let before = seller
        .wallet
        .balance()
        .checked_add(buyer.wallet.balance())?;

    for _ in 0..rounds {
        for _ in 0..transfers {
            buyer.wallet.set_buy_intent(intent);
            let started = Instant::now();
            let tx = seller.wallet.sell(NOW, buyer_id, price, "bench")?;
            let request = seller.pump()?;
            let agreed = buyer.deliver(&request)?;
            let commit = seller.deliver(&agreed)?;
            let ack = buyer.deliver(&commit)?;
            let rest = seller.deliver(&ack)?;
            transfer_samples.push(started.elapsed());
            anyhow::ensure!(
                rest.is_empty() && buyer.wallet.paid(&tx),
                "transfer did not complete"
            );
            committed += 1;
        }
        for _ in 0..transfers {
            let started = Instant::now();
            fsync_file.seek(SeekFrom::Start(0))?;
            fsync_file.write_all(&page)?;
            fsync_file.sync_data()?;
            fsync_samples.push(started.elapsed());
        }
        for _ in 0..transfers {
            nonce += 1;
            let header = Header {
                version: ENVELOPE_VERSION,
                suite: Suite::Ed25519X25519,
                kind: MessageKind(0x0103),
                sender: sender_cert.subject(),
                receiver: receiver_cert.subject(),
                tx_id: [9; 16],
                nonce,
                sent_at: NOW,
            };
            let started = Instant::now();
            let frame = mpay_envelope::seal(
                &seal_keys,
                &header,
                &payload,
                receiver_cert.keys(),
                &mut rng,
            )?;
            let verified =
                mpay_envelope::open(&frame, &open_keys, receiver_cert.subject(), &trust, NOW)?
                    .verify(&sender_cert, &trust, &mut replay, NOW)?;
            seal_open_samples.push(started.elapsed());
            black_box(verified);
        }
    }
    let after = seller
        .wallet
        .balance()
        .checked_add(buyer.wallet.balance())?;
    anyhow::ensure!(
        before == after,
        "money not conserved: {before} before, {after} after"
    );

    let p50 = median(&transfer_samples);
    let p99 = percentile(&transfer_samples, 99);
    let fsync = median(&fsync_samples);
    let seal_open = median(&seal_open_samples);
    let floor: Duration = fsync * DURABLE_WRITES_PER_TRANSFER + seal_open * SEAL_OPENS_PER_TRANSFER;
    let ratio = p50.as_secs_f64() / floor.as_secs_f64();
    println!("transfers={committed} rounds={rounds} (money conserved: {before} before and after)");
    println!(
        "transfer latency: median {:.0} us, p99 {:.0} us ({:.0} transfers/s sequential)",
        micros(p50),
        micros(p99),
        1.0 / p50.as_secs_f64()
    );
    println!(
        "floor: {DURABLE_WRITES_PER_TRANSFER} x fsync {:.0} us + {SEAL_OPENS_PER_TRANSFER} x seal+open {:.0} us = {:.0} us",
        micros(fsync),
        micros(seal_open),
        micros(floor)
    );
    let mut commits = seller.commit_samples.clone();
    commits.extend_from_slice(&buyer.commit_samples);
    println!(
        "of which: store commits median {:.0} us each (SQLCipher transaction incl. its fsync)",
        micros(median(&commits))
    );
    println!(
        "median_us={:.0} p99_us={:.0} floor_us={:.0} ratio={ratio:.3}",
        micros(p50),
        micros(p99),
        micros(floor)
    );
    Ok(ExitCode::SUCCESS)
}

type EnvelopePair = (
    mpay_identity::SecretKeys,
    mpay_identity::SecretKeys,
    TrustStore,
    mpay_identity::Certificate,
    mpay_identity::Certificate,
);

fn envelope_pair(office: &Office, rng: &mut ChaCha20Rng) -> anyhow::Result<EnvelopePair> {
    let limits = Limits {
        offline_balance_max: Amount::new(1, Currency::EUR),
        payment_max: Amount::new(1, Currency::EUR),
        days_between_syncs_max: 1,
        payments_between_syncs_max: 1,
    };
    let a = office.issue_wallet(PartyId::from_u64(90), limits, rng)?;
    let b = office.issue_wallet(PartyId::from_u64(91), limits, rng)?;
    let mut trust = TrustStore::new();
    trust.add_issuer(office.certificate.clone());
    Ok((a.keys, b.keys, trust, a.certificate, b.certificate))
}
