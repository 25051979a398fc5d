//! The wallet opened without sockets: for the commands that only touch the
//! store and the money office (charge, sync, redeem, balance, history).
//!
//! [`Session::pump`] is the durable half of the node's loop: every write
//! the engine issues is applied (one transaction, one fsync) before it is
//! acknowledged. Frames the engine releases are dropped unsent, as if lost:
//! these commands start no transfer, and the engine retransmits whatever a
//! transfer needs the next time a node runs it.

use mpay_office::http::OfficeClient;
use mpay_offline::durable::{Snapshot, Write, WriteBatch};
use mpay_offline::sync::SyncAttestation;
use mpay_offline::{Config, Event, TxId, Wallet};
use mpay_wallet_net::{NodeConfig, WalletNode, wall_clock};
use mpay_wallet_store::WalletStore;
use zeroize::Zeroizing;

use super::Common;
use super::exit::Failure;
use super::files::{
    OFFICE_TOKEN_META, PinSource, Settings, WalletDir, WalletLock, os_random32, read_pin,
};

/// Most sync round trips one `sync` makes: each uploads up to
/// `SYNC_ENTRIES_MAX` (128) entries, so this covers a chain of 128 000
/// unsynced entries, far beyond `payments_between_syncs_max`.
pub const SYNC_ROUNDS_MAX: usize = 1_000;

/// Whether a command changes the wallet (and so takes its lock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// balance, history: read the store, write nothing.
    Read,
    /// Everything else: one such process at a time.
    Write,
}

/// An opened wallet: settings, store and engine.
pub struct Session {
    pub files: WalletDir,
    pub settings: Settings,
    pub store: WalletStore,
    pub wallet: Wallet,
    /// The owner's office token kept in the store, if any.
    pub stored_token: Option<Zeroizing<String>>,
    /// Held for [`Access::Write`].
    pub lock: Option<WalletLock>,
}

/// A store opened with the PIN, before the engine: for enrolment.
pub struct OpenedStore {
    pub files: WalletDir,
    pub settings: Settings,
    pub store: WalletStore,
    pub snapshot: Snapshot,
    pub lock: Option<WalletLock>,
}

impl OpenedStore {
    pub fn open(common: &Common, access: Access) -> Result<OpenedStore, Failure> {
        let files = WalletDir::new(&common.dir);
        let settings = files.read_settings()?;
        let lock = match access {
            Access::Read => None,
            Access::Write => Some(files.lock()?),
        };
        let pin = read_pin(&PinSource::current(common), false)?;
        let store = WalletStore::open(&files.store_path(), &pin)?;
        let snapshot = store.load()?;
        Ok(OpenedStore {
            files,
            settings,
            store,
            snapshot,
            lock,
        })
    }

    pub fn stored_token(&self) -> Option<Zeroizing<String>> {
        self.snapshot
            .meta
            .get(OFFICE_TOKEN_META)
            .and_then(|bytes| String::from_utf8(bytes.clone()).ok())
            .map(Zeroizing::new)
    }
}

impl Session {
    /// Opens the wallet in `common.dir` with the owner's PIN and recovers
    /// its engine with a fresh OS-random seed.
    pub fn open(common: &Common, access: Access) -> Result<Session, Failure> {
        let opened = OpenedStore::open(common, access)?;
        let stored_token = opened.stored_token();
        let wallet = Wallet::recover_with_seed(
            Config::default(),
            &opened.snapshot,
            os_random32()?,
            wall_clock(),
        )?;
        let mut session = Session {
            files: opened.files,
            settings: opened.settings,
            store: opened.store,
            wallet,
            stored_token,
            lock: opened.lock,
        };
        if access == Access::Write {
            session.note_id()?;
        }
        Ok(session)
    }

    /// Records the wallet's id and currency in the settings if missing.
    fn note_id(&mut self) -> Result<(), Failure> {
        let id = self.wallet.id().to_hex();
        if self.settings.wallet.as_deref() != Some(id.as_str()) {
            self.settings.wallet = Some(id);
            self.settings.currency = Some(self.wallet.currency().to_string());
            self.files.write_settings(&self.settings)?;
        }
        Ok(())
    }

    /// The office URL: `--office` if given, else the wallet's setting.
    pub fn office_url(&self, common: &Common) -> String {
        common
            .office
            .clone()
            .unwrap_or_else(|| self.settings.office.clone())
    }

    /// The owner's token: the one given, else the one kept in the store.
    pub fn token(&self, given: Option<&str>) -> Result<Zeroizing<String>, Failure> {
        match (given, &self.stored_token) {
            (Some(t), _) => Ok(Zeroizing::new(t.to_owned())),
            (None, Some(t)) => Ok(t.clone()),
            (None, None) => Err(Failure::other(
                "no owner token: pass --token or set MPAY_OWNER_TOKEN",
            )),
        }
    }

    /// Makes every write the engine issued durable; returns its events.
    pub fn pump(&mut self) -> Result<Vec<Event>, Failure> {
        while let Some(write) = self.wallet.poll_write() {
            self.store.apply(&write.batch)?;
            self.wallet.write_completed(write.id);
        }
        // No sockets here: released frames are dropped, as if lost.
        while self.wallet.poll_transmit().is_some() {}
        let mut events = Vec::new();
        while let Some(event) = self.wallet.poll_event() {
            events.push(event);
        }
        Ok(events)
    }

    /// Hands the wallet to a UDP node; the lock goes with it.
    pub fn into_node(
        self,
        config: NodeConfig,
    ) -> Result<(WalletNode, Option<WalletLock>), Failure> {
        let node = WalletNode::new(self.wallet, self.store, config)?;
        Ok((node, self.lock))
    }

    /// Whether the newest revocation list this wallet holds names it.
    pub fn is_revoked(&self) -> bool {
        self.wallet.trust().is_revoked(&self.wallet.id())
    }

    /// Syncs with the office until every entry is uploaded.
    pub fn sync(
        &mut self,
        client: &OfficeClient,
        runtime: &tokio::runtime::Runtime,
    ) -> Result<SyncReport, Failure> {
        let mut report = SyncReport {
            uploaded_from: self.wallet.next_unsynced_seq(),
            ..SyncReport::default()
        };
        for _ in 0..SYNC_ROUNDS_MAX {
            let request = self
                .wallet
                .sync_request(wall_clock())
                .map_err(Failure::from)?;
            let response = runtime.block_on(client.sync(request))?;
            let summary = self.wallet.apply_sync_response(wall_clock(), &response)?;
            self.pump()?;
            report.rounds += 1;
            report.settled.extend(summary.settled);
            report.released.extend(summary.released);
            if summary.revocation_version.is_some() {
                report.revocation_version = summary.revocation_version;
            }
            if summary.entries_left == 0 {
                report.attestation = Some(self.wallet.attestation().clone());
                return Ok(report);
            }
        }
        Err(Failure::other(format!(
            "the chain was not fully uploaded after {SYNC_ROUNDS_MAX} rounds; sync again"
        )))
    }
}

/// What a sync changed.
#[derive(Default, Debug)]
pub struct SyncReport {
    /// First sequence uploaded.
    pub uploaded_from: u64,
    pub rounds: usize,
    pub settled: Vec<TxId>,
    pub released: Vec<TxId>,
    pub revocation_version: Option<u64>,
    pub attestation: Option<SyncAttestation>,
}

/// A current-thread runtime for the office client.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::other(format!("cannot start the HTTP client: {e}")))
}

/// The batch that keeps the owner's office token in the store.
pub fn token_batch(token: &str) -> WriteBatch {
    let mut batch = WriteBatch::new();
    batch.push(Write::PutMeta {
        key: OFFICE_TOKEN_META.into(),
        value: token.as_bytes().to_vec(),
    });
    batch
}
