//! The dishonest peer and the money office of a dishonest run (DESIGN §5,
//! invariants 6 and 7).
//!
//! In a share of seeds one phone, a buyer or the seller, is dishonest. It
//! runs the real engine (so it takes part in transfers like anyone) and
//! holds its own valid keys, with which it also sends any well-signed
//! message at any time: byte-for-byte replays of its own earlier frames,
//! STATUS and AGREED after a transfer completed, ABORT after COMMIT,
//! COMMIT-REQUEST again, and it restores an older copy of its store (which
//! lets it pay again from funds it already spent). A dishonest seller also
//! withholds its COMMIT and claims late, after the office released the buyer.
//!
//! Its wallets are enrolled at a real [`mpay_office::Office`] (SQLite in a
//! temporary directory) and charged by it. When the link has healed every
//! phone syncs; the clock then jumps past the claim window, every phone syncs
//! again (uncertain payments are resolved) and once more. Then, for every
//! honest phone: the office never charged its owner nor reported it as a
//! cheat, it holds no payment still locked, every payment standing in its
//! chain is one its owner agreed to, and its balance is exactly what its own
//! decisions say (charges, plus the sales it committed, minus the payments it
//! committed), which is also the balance the office attests.

use std::collections::HashSet;

use mpay_envelope::{ENVELOPE_VERSION, Header};
use mpay_identity::{Certificate, Limits, MILLIS_PER_DAY, PartyId, SecretKeys, Suite, Timestamp};
use mpay_money::Amount;
use mpay_office::{Office, OfficeConfig, OfficeError, sign_enrolment};
use mpay_offline::chain::EntryKind;
use mpay_offline::durable::{Snapshot, WriteBatch};
use mpay_offline::messages::{Abort, AbortReason, Agreed, CommitRequest, Message, Status};
use mpay_offline::{TxId, Wallet};
use rand_chacha::ChaCha8Rng;
use rand_core::Rng;

/// By default one seed in this many has a dishonest peer.
pub const DISHONEST_EVERY: u64 = 4;
/// Seeds with `seed % DISHONEST_EVERY == DISHONEST_REMAINDER` are dishonest
/// (chosen apart from the real-crypto seeds, which are multiples of 8).
pub const DISHONEST_REMAINDER: u64 = 3;
/// Frames of its own the dishonest peer remembers for replays.
pub const SENT_KEPT_MAX: usize = 64;
/// Older copies of its store the dishonest peer keeps to restore.
pub const SNAPSHOTS_KEPT_MAX: usize = 32;
/// What each owner deposits at the office before charging its phone.
pub const OWNER_DEPOSIT_MINOR: i64 = 10_000_000;
/// Where the office's database goes when the directory exists.
pub const RAM_DIR: &str = "/dev/shm";
/// Syncs of one phone in one round before it counts as stuck.
const SYNCS_PER_ROUND_MAX: u32 = 16;

/// Which phone is dishonest and how busy it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dishonest {
    /// The dishonest node (0 is the seller).
    pub node: usize,
    /// Mean time between its actions.
    pub action_every_ms: u64,
}

impl Dishonest {
    /// The dishonest peer of `seed` among `buyers` buyers and one seller, if
    /// `seed` is one in `every` (0: never).
    pub fn draw(seed: u64, buyers: usize, every: u64) -> Option<Dishonest> {
        if every == 0 || seed % every != DISHONEST_REMAINDER % every {
            return None;
        }
        let mut rng =
            <ChaCha8Rng as rand_core::SeedableRng>::seed_from_u64(seed ^ 0xd150_4e57_0000_0003);
        let nodes = u64::try_from(buyers).unwrap_or(0).saturating_add(1);
        Some(Dishonest {
            node: usize::try_from(rng.next_u64() % nodes).unwrap_or(0),
            action_every_ms: 300 + rng.next_u64() % 3_000,
        })
    }
}

/// One thing the dishonest peer does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Sends one of its earlier frames again, byte for byte.
    Replay,
    /// A fresh STATUS for a payment it made (buyer).
    StatusAfterCompletion,
    /// A fresh AGREED with the authorization of a payment it made (buyer).
    AgreedAfterCompletion,
    /// A fresh ABORT for a transfer that committed.
    AbortAfterCommit,
    /// A fresh COMMIT-REQUEST for a sale it already received (seller).
    CommitRequestAgain,
    /// Stops sending anything for one committed sale (seller): the buyer
    /// must wait for the office, and the seller claims late.
    Withhold,
    /// Restores an older copy of its store and restarts from it.
    Rollback,
}

/// The dishonest peer's memory: what it sent, copies of its store.
pub(crate) struct Adversary {
    pub(crate) cfg: Dishonest,
    pub(crate) keys: Option<SecretKeys>,
    pub(crate) next_action_at: Timestamp,
    pub(crate) sent: Vec<(PartyId, Vec<u8>)>,
    pub(crate) snapshots: Vec<Snapshot>,
    pub(crate) withheld: HashSet<TxId>,
    pub(crate) actions: u64,
    pub(crate) rollbacks: u64,
}

impl Adversary {
    pub(crate) fn new(cfg: Dishonest, start: Timestamp) -> Adversary {
        Adversary {
            cfg,
            keys: None,
            next_action_at: start.saturating_add_ms(cfg.action_every_ms),
            sent: Vec::new(),
            snapshots: Vec::new(),
            withheld: HashSet::new(),
            actions: 0,
            rollbacks: 0,
        }
    }

    /// Remembers a frame it sent (the oldest is forgotten past the bound).
    pub(crate) fn remember_sent(&mut self, to: PartyId, frame: &[u8]) {
        if self.sent.len() >= SENT_KEPT_MAX {
            self.sent.remove(0);
        }
        self.sent.push((to, frame.to_vec()));
    }

    /// Keeps a copy of its store; past the bound a random older copy goes.
    pub(crate) fn remember_snapshot(&mut self, snapshot: Snapshot, rng: &mut ChaCha8Rng) {
        if self.snapshots.len() >= SNAPSHOTS_KEPT_MAX {
            let len = u64::try_from(self.snapshots.len()).unwrap_or(1);
            let i = usize::try_from(rng.next_u64() % len).unwrap_or(0);
            self.snapshots.remove(i);
        }
        self.snapshots.push(snapshot);
    }

    /// Whether a frame it is about to send belongs to a withheld sale.
    pub(crate) fn withholds(&self, frame: &[u8]) -> bool {
        !self.withheld.is_empty()
            && mpay_envelope::peek_header(frame)
                .is_ok_and(|h| self.withheld.contains(&TxId(h.tx_id)))
    }

    pub(crate) fn draw_action(&self, rng: &mut ChaCha8Rng, seller: bool) -> Action {
        let buyer_actions = [
            Action::Replay,
            Action::StatusAfterCompletion,
            Action::AgreedAfterCompletion,
            Action::AbortAfterCommit,
            Action::Rollback,
        ];
        let seller_actions = [
            Action::Replay,
            Action::AbortAfterCommit,
            Action::CommitRequestAgain,
            Action::Withhold,
            Action::Rollback,
        ];
        let actions: &[Action] = if seller {
            &seller_actions
        } else {
            &buyer_actions
        };
        let len = u64::try_from(actions.len()).unwrap_or(1);
        actions[usize::try_from(rng.next_u64() % len).unwrap_or(0)]
    }
}

/// A well-signed frame from `keys` (the dishonest peer's own) to a peer.
pub fn forge(
    keys: &SecretKeys,
    from: PartyId,
    to: &Certificate,
    tx: TxId,
    message: &Message,
    now: Timestamp,
    rng: &mut ChaCha8Rng,
) -> Option<Vec<u8>> {
    let header = Header {
        version: ENVELOPE_VERSION,
        suite: keys.suite(),
        kind: message.kind(),
        sender: from,
        receiver: to.subject(),
        tx_id: tx.0,
        nonce: rng.next_u64(),
        sent_at: now,
    };
    let mut seal_rng = rand_chacha::ChaCha20Rng::from_seed_u64(rng.next_u64());
    mpay_envelope::seal(keys, &header, &message.payload(), to.keys(), &mut seal_rng).ok()
}

trait FromSeedU64 {
    fn from_seed_u64(seed: u64) -> Self;
}

impl FromSeedU64 for rand_chacha::ChaCha20Rng {
    fn from_seed_u64(seed: u64) -> Self {
        <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(seed)
    }
}

/// The message of `action` for transaction `tx`, from what the dishonest
/// wallet's chain holds; `None` when it holds nothing that fits.
pub fn message_for(
    action: Action,
    wallet: &Wallet,
    rng: &mut ChaCha8Rng,
) -> Option<(TxId, PartyId, Message)> {
    let pays: Vec<_> = wallet
        .chain()
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::Pay { tx, seller, .. } => Some((*tx, *seller, e.clone())),
            _ => None,
        })
        .collect();
    let receives: Vec<_> = wallet
        .chain()
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::Receive {
                tx, buyer, amount, ..
            } => Some((*tx, *buyer, *amount)),
            _ => None,
        })
        .collect();
    let pick = |rng: &mut ChaCha8Rng, len: usize| {
        usize::try_from(rng.next_u64() % u64::try_from(len.max(1)).unwrap_or(1)).unwrap_or(0)
    };
    match action {
        Action::StatusAfterCompletion if !pays.is_empty() => {
            let (tx, seller, _) = &pays[pick(rng, pays.len())];
            Some((
                *tx,
                *seller,
                Message::Status(Status {
                    buyer_certificate: wallet.certificate().clone(),
                }),
            ))
        }
        Action::AgreedAfterCompletion if !pays.is_empty() => {
            let (tx, seller, entry) = &pays[pick(rng, pays.len())];
            Some((
                *tx,
                *seller,
                Message::Agreed(Agreed {
                    authorization: entry.clone(),
                    shipping: None,
                }),
            ))
        }
        Action::AbortAfterCommit if !pays.is_empty() || !receives.is_empty() => {
            let abort = Message::Abort(Abort {
                reason: AbortReason::UnknownTransaction,
            });
            if receives.is_empty() {
                let (tx, seller, _) = &pays[pick(rng, pays.len())];
                Some((*tx, *seller, abort))
            } else {
                let (tx, buyer, _) = &receives[pick(rng, receives.len())];
                Some((*tx, *buyer, abort))
            }
        }
        Action::CommitRequestAgain if !receives.is_empty() => {
            let (tx, buyer, amount) = &receives[pick(rng, receives.len())];
            Some((
                *tx,
                *buyer,
                Message::CommitRequest(CommitRequest {
                    amount: *amount,
                    description: "again".to_owned(),
                    seller_certificate: wallet.certificate().clone(),
                }),
            ))
        }
        _ => None,
    }
}

/// An honest wallet's balance against its own decisions: it must equal what
/// its owner charged, plus the sales it committed, minus the payments it
/// committed or holds locked; and every payment standing in its chain must be
/// one its owner agreed to (`agreed(tx, amount)`). Every problem as a
/// sentence about node `n`; empty when all holds.
pub fn decisions_problems(
    n: usize,
    wallet: &Wallet,
    charged: Amount,
    agreed: impl Fn(&TxId, Amount) -> bool,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut expected = charged;
    for entry in wallet.chain() {
        let change = match &entry.kind {
            EntryKind::Receive { amount, .. } => Some((*amount, true)),
            EntryKind::Pay { tx, amount, .. } if !wallet.voided(tx) => {
                if !agreed(tx, *amount) {
                    problems.push(format!(
                        "honest node {n} paid {amount} for {} that its owner never agreed to",
                        tx.short()
                    ));
                }
                Some((*amount, false))
            }
            _ => None,
        };
        expected = match change {
            Some((a, true)) => expected.checked_add(a).unwrap_or(expected),
            Some((a, false)) => expected.checked_sub(a).unwrap_or(expected),
            None => expected,
        };
    }
    if wallet.balance() != expected || expected.currency() != charged.currency() {
        problems.push(format!(
            "honest node {n} holds {}, its own decisions say {expected}",
            wallet.balance()
        ));
    }
    problems
}

/// A wallet as the office issues it: keys, certificate, genesis batch.
pub(crate) struct Enrolled {
    pub(crate) id: PartyId,
    pub(crate) certificate: Certificate,
    pub(crate) genesis: WriteBatch,
}

/// The money office of a dishonest run, in process, over SQLite.
pub(crate) struct OfficeWorld {
    runtime: tokio::runtime::Runtime,
    pub(crate) office: Office,
    /// Per node: its owner's name and what the owner paid in charges.
    pub(crate) owners: Vec<(String, Amount)>,
    _dir: tempfile::TempDir,
}

fn owner_name(n: usize) -> String {
    format!("owner-{n}")
}

impl OfficeWorld {
    pub(crate) fn open(
        suite: Suite,
        limits: Limits,
        now: Timestamp,
        rng: &mut ChaCha8Rng,
    ) -> Result<OfficeWorld, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("runtime: {e}"))?;
        // A RAM-backed directory where the machine has one: the office's
        // durability is tested elsewhere, its judgement is what runs here.
        let shm = std::path::Path::new(RAM_DIR);
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm)
        } else {
            tempfile::tempdir()
        }
        .map_err(|e| format!("temporary directory: {e}"))?;
        let url = format!("sqlite://{}", dir.path().join("office.db").display());
        let mut config = OfficeConfig::default_for(limits.currency());
        config.wallet_limits = limits;
        config.simulation = suite == Suite::SimulationOnly;
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let office = runtime.block_on(async {
            let db = mpay_sql::Db::connect(&url)
                .await
                .map_err(|e| format!("office database: {e}"))?;
            Office::open(db, config, seed, now)
                .await
                .map_err(|e| format!("office: {e}"))
        })?;
        Ok(OfficeWorld {
            runtime,
            office,
            owners: Vec::new(),
            _dir: dir,
        })
    }

    /// Opens node `n`'s owner and enrols its wallet.
    pub(crate) fn enroll(
        &mut self,
        n: usize,
        suite: Suite,
        now: Timestamp,
        rng: &mut ChaCha8Rng,
    ) -> Result<Enrolled, String> {
        let owner = owner_name(n);
        let currency = self.office.config().currency;
        let keys = SecretKeys::generate(suite, rng);
        let proof = sign_enrolment(&owner, &keys, now);
        let office = &self.office;
        let enrolment = self
            .runtime
            .block_on(async {
                office
                    .open_account(&owner, Amount::new(OWNER_DEPOSIT_MINOR, currency), now)
                    .await?;
                office.enroll(&owner, keys.public(), now, &proof, now).await
            })
            .map_err(|e| format!("enrolment: {e}"))?;
        let genesis = Wallet::genesis(
            &keys,
            &enrolment.certificate,
            &enrolment.office_certificate,
            &enrolment.attestation,
            now,
        )
        .map_err(|e| format!("genesis: {e}"))?;
        self.owners.push((owner, Amount::zero(currency)));
        Ok(Enrolled {
            id: enrolment.certificate.subject(),
            certificate: enrolment.certificate,
            genesis,
        })
    }

    /// A voucher for node `n`'s wallet, paid by its owner.
    pub(crate) fn voucher(
        &mut self,
        n: usize,
        wallet: PartyId,
        amount: Amount,
        now: Timestamp,
    ) -> Result<mpay_offline::chain::ChargeVoucher, String> {
        let (owner, charged) = self
            .owners
            .get(n)
            .cloned()
            .ok_or_else(|| format!("no owner for node {n}"))?;
        let key = format!("charge-{n}-{}", charged.minor_units());
        let office = &self.office;
        let voucher = self
            .runtime
            .block_on(office.charge(&owner, wallet, amount, &key, now))
            .map_err(|e| format!("charge: {e}"))?;
        if let Some(entry) = self.owners.get_mut(n) {
            entry.1 = charged.checked_add(amount).map_err(|e| e.to_string())?;
        }
        Ok(voucher)
    }

    /// Syncs `wallet` until it has uploaded everything. The wallet's writes
    /// are left for the caller to make durable.
    pub(crate) fn sync(
        &self,
        wallet: &mut Wallet,
        now: Timestamp,
        mut durable: impl FnMut(&mut Wallet) -> Result<(), String>,
    ) -> Result<(), String> {
        for _ in 0..SYNCS_PER_ROUND_MAX {
            let request = wallet.sync_request(now).map_err(|e| e.to_string())?;
            let response = self
                .runtime
                .block_on(self.office.sync(&request, now))
                .map_err(|e: OfficeError| e.to_string())?;
            let summary = wallet
                .apply_sync_response(now, &response)
                .map_err(|e| format!("response refused: {e}"))?;
            durable(wallet)?;
            if summary.entries_left == 0 {
                return Ok(());
            }
        }
        Err(format!("still uploading after {SYNCS_PER_ROUND_MAX} syncs"))
    }

    /// What the office holds against the honest phones: every problem as a
    /// sentence.
    pub(crate) fn judge(&self, honest: &[(usize, PartyId)]) -> Vec<String> {
        let mut problems = Vec::new();
        let office = &self.office;
        let currency = office.config().currency;
        let found = self.runtime.block_on(async {
            let books = office.check_books().await;
            let frauds = office.frauds().await?;
            let mut balances = Vec::new();
            for (n, _) in honest {
                let Some((owner, _)) = self.owners.get(*n) else {
                    continue;
                };
                balances.push((*n, office.owner_balance(owner).await?));
            }
            Ok::<_, OfficeError>((books, frauds, balances))
        });
        let (books, frauds, balances) = match found {
            Ok(found) => found,
            Err(e) => return vec![format!("office cannot be read: {e}")],
        };
        if let Err(e) = books {
            problems.push(format!("office books broken: {e}"));
        }
        for (n, id) in honest {
            for fraud in frauds.iter().filter(|f| f.wallet == *id) {
                problems.push(format!(
                    "honest node {n} reported as a cheat at entry {} (owner charged {})",
                    fraud.seq, fraud.charged
                ));
            }
        }
        for (n, balance) in balances {
            let Some((owner, charged)) = self.owners.get(n) else {
                continue;
            };
            let expected = Amount::new(OWNER_DEPOSIT_MINOR, currency)
                .checked_sub(*charged)
                .unwrap_or(Amount::zero(currency));
            if balance != expected {
                problems.push(format!(
                    "honest node {n}'s owner {owner} was charged by the office: account holds {balance}, its own charges leave {expected}"
                ));
            }
        }
        problems
    }

    /// Days past which every claim window of the run has closed.
    pub(crate) fn after_claim_windows(now: Timestamp, claim_window_ms: u64) -> Timestamp {
        now.saturating_add_ms(claim_window_ms.saturating_add(MILLIS_PER_DAY))
    }
}
