//! [`WalletNode`]: the loop that runs one wallet engine over UDP.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use mpay_identity::{PartyId, Timestamp};
use mpay_offline::chain::ChargeVoucher;
use mpay_offline::{Config, Event, Transmit, Wallet};
use mpay_wallet_store::WalletStore;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use crate::addresses::PeerAddresses;
use crate::socket::{Inbound, Sockets};
use crate::{BroadcastTo, DROP_PERMILLE_MAX, DropKnob, NodeConfig, NodeError, NodeStats};
use crate::{RefusalKind, UnknownPeerRoute};

/// The wall clock as the engine sees it ([`mpay_clock::wall_clock`]): only
/// the node and its driver read it.
pub use mpay_clock::wall_clock;

/// One phone: its wallet engine, its encrypted store and its sockets.
///
/// Only this type reads the clock and does I/O for the engine. See the crate
/// docs for the loop, addressing and broadcast.
pub struct WalletNode {
    wallet: Wallet,
    store: WalletStore,
    config: NodeConfig,
    sockets: Sockets,
    peers: PeerAddresses,
    drop_rng: ChaCha8Rng,
    /// Engine events with their sequence number, for the owner.
    events: VecDeque<(u64, Event)>,
    /// Sequence number of the last event queued.
    event_seq: u64,
    stats: NodeStats,
    /// Set by a store or socket failure; the node refuses to go on.
    stopped: bool,
}

impl std::fmt::Debug for WalletNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalletNode")
            .field("wallet", &self.wallet)
            .field("local_addr", &self.sockets.local_addr)
            .field("peers", &self.peers.len())
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

impl WalletNode {
    /// Binds the node's sockets and makes any writes the wallet already
    /// issued durable.
    pub fn new(
        wallet: Wallet,
        store: WalletStore,
        config: NodeConfig,
    ) -> Result<WalletNode, NodeError> {
        config.check()?;
        let sockets = Sockets::open(&config)?;
        let peers = PeerAddresses::new(config.peer_addresses_max);
        let mut node = WalletNode {
            wallet,
            store,
            drop_rng: ChaCha8Rng::seed_from_u64(config.drop.seed),
            config,
            sockets,
            peers,
            events: VecDeque::new(),
            event_seq: 0,
            stats: NodeStats::default(),
            stopped: false,
        };
        node.pump()?;
        Ok(node)
    }

    /// Opens the wallet at `path` with `pin`, recovers its engine (prepared
    /// buyers become uncertain and ask; committed sellers resend COMMIT) and
    /// starts a node on it.
    ///
    /// `rng_seed` seeds the engine's RNG (nonces, transaction ids, sealing
    /// randomness): it must come from the operating system's randomness at
    /// every start. A seed used again repeats nonces, which peers refuse as
    /// replays, and repeats the sealing randomness.
    pub fn open(
        path: &Path,
        pin: &str,
        engine: Config,
        rng_seed: [u8; 32],
        config: NodeConfig,
    ) -> Result<WalletNode, NodeError> {
        let store = WalletStore::open(path, pin).map_err(NodeError::Store)?;
        let snapshot = store.load().map_err(NodeError::Store)?;
        let wallet = Wallet::recover_with_seed(engine, &snapshot, rng_seed, wall_clock())?;
        WalletNode::new(wallet, store, config)
    }

    /// Stops the node and gives its engine and store back, every write the
    /// engine issued made durable first. Events not yet polled are dropped.
    /// A node stopped by a failure gives nothing back: its engine may be
    /// ahead of its store, so the wallet must be opened again from the store.
    pub fn into_parts(mut self) -> Result<(Wallet, WalletStore), NodeError> {
        self.check_running()?;
        self.pump()?;
        Ok((self.wallet, self.store))
    }

    // ---- queries -------------------------------------------------------

    /// The engine, for queries (balance, chain, prepared transactions, …).
    pub fn wallet(&self) -> &Wallet {
        &self.wallet
    }

    pub fn id(&self) -> PartyId {
        self.wallet.id()
    }

    /// The node's unicast address: what peers learn it by.
    pub fn local_addr(&self) -> SocketAddr {
        self.sockets.local_addr
    }

    /// The node's configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// The address learned for `peer`, if any.
    pub fn peer_address(&self, peer: PartyId) -> Option<SocketAddr> {
        self.peers.get(peer)
    }

    /// Counters since the node started.
    pub fn stats(&self) -> NodeStats {
        let counters = &self.sockets.counters;
        let mut stats = self.stats.clone();
        stats.frames_received = counters.received.load(Ordering::Relaxed);
        stats.dropped_size = counters.dropped_size.load(Ordering::Relaxed);
        stats.dropped_inbox_full = counters.dropped_inbox_full.load(Ordering::Relaxed);
        stats
    }

    /// True once a store or socket failure stopped the node. The engine in
    /// memory may then be ahead of its store: restart from the store
    /// ([`WalletNode::open`]) rather than trust it.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    // ---- owner inputs ------------------------------------------------------

    /// Runs an engine command with the node's clock, then makes what it
    /// wrote durable and sends what it released. The way to reach engine
    /// commands the node has no method for.
    ///
    /// The command must be an owner command or a query: the driver outputs
    /// and inputs (`poll_*`, `write_completed`, `handle_*`) belong to the
    /// node, and taking a write from `poll_write` here would keep it from
    /// ever reaching the disk.
    pub fn command<R>(
        &mut self,
        command: impl FnOnce(&mut Wallet, Timestamp) -> R,
    ) -> Result<R, NodeError> {
        self.check_running()?;
        let result = command(&mut self.wallet, wall_clock());
        self.pump()?;
        Ok(result)
    }

    /// Adds a charge voucher from the money office (durable when it returns).
    pub fn charge(&mut self, voucher: ChargeVoucher) -> Result<(), NodeError> {
        self.command(|wallet, now| wallet.charge(now, voucher))?
            .map_err(NodeError::Charge)
    }

    /// Tells the node where `peer` is, e.g. from a QR code; a frame from the
    /// peer later overrides it.
    pub fn set_peer_address(&mut self, peer: PartyId, addr: SocketAddr) {
        self.peers.learn(peer, addr);
    }

    /// Changes the drop knob (tests). The RNG is reseeded from `knob.seed`.
    pub fn set_drop(&mut self, knob: DropKnob) -> Result<(), NodeError> {
        knob.check()?;
        self.config.drop = knob;
        self.drop_rng = ChaCha8Rng::seed_from_u64(knob.seed);
        Ok(())
    }

    /// The oldest engine event not yet polled.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front().map(|(_, e)| e)
    }

    // ---- the loop ------------------------------------------------------------

    /// One turn of the loop: wait up to `wait_max` (and no longer than the
    /// engine's next timer or [`NodeConfig::wait_ms_max`]) for datagrams,
    /// feed them and any due timer to the engine, then make its writes
    /// durable and send its frames.
    pub fn step(&mut self, wait_max: Duration) -> Result<(), NodeError> {
        self.check_running()?;
        self.pump()?;
        let now = wall_clock();
        let until_timer = match self.wallet.poll_timeout() {
            Some(due) => Duration::from_millis(due.millis_since(now)),
            None => Duration::MAX,
        };
        let wait = until_timer
            .min(Duration::from_millis(self.config.wait_ms_max))
            .min(wait_max);
        let first = if wait.is_zero() {
            match self.sockets.inbox.try_recv() {
                Ok(inbound) => Some(inbound),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => return Err(self.readers_gone()),
            }
        } else {
            match self.sockets.inbox.recv_timeout(wait) {
                Ok(inbound) => Some(inbound),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return Err(self.readers_gone()),
            }
        };
        if let Some(inbound) = first {
            self.receive(inbound)?;
            // Take what else has arrived, but no more than the inbox holds,
            // so timers are not starved by a flood.
            for _ in 1..self.config.inbox_datagrams_max {
                match self.sockets.inbox.try_recv() {
                    Ok(inbound) => self.receive(inbound)?,
                    Err(_) => break,
                }
            }
        }
        let now = wall_clock();
        if self.wallet.poll_timeout().is_some_and(|due| due <= now) {
            self.wallet.handle_timeout(now);
        }
        self.pump()
    }

    /// Serves (answers peers, retransmits, asks STATUS) until `deadline`.
    pub fn run_until(&mut self, deadline: Instant) -> Result<(), NodeError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            self.step(left)?;
        }
    }

    /// Serves for `duration`.
    pub fn run_for(&mut self, duration: Duration) -> Result<(), NodeError> {
        self.run_until(Instant::now() + duration)
    }

    /// Serves until no transaction is in flight (no sale requesting or
    /// committing, no payment prepared) or `deadline`; true if settled. A
    /// buyer waiting for the money office counts as in flight.
    pub fn run_until_settled(&mut self, deadline: Instant) -> Result<bool, NodeError> {
        loop {
            self.check_running()?;
            if self.is_settled() {
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            self.step(left)?;
        }
    }

    fn is_settled(&self) -> bool {
        self.wallet.requesting_txs().next().is_none()
            && self.wallet.committing_txs().next().is_none()
            && self.wallet.prepared_txs().next().is_none()
    }

    // ---- internals ---------------------------------------------------------

    /// The sequence number of the newest event queued (0 before the first).
    pub fn event_seq(&self) -> u64 {
        self.event_seq
    }

    /// Events still queued with a sequence number after `after`, oldest
    /// first, without taking them from the queue: how a [`crate::Watch`]
    /// follows an operation.
    pub fn events_after(&self, after: u64) -> impl Iterator<Item = &(u64, Event)> + '_ {
        self.events.iter().filter(move |(seq, _)| *seq > after)
    }

    fn check_running(&self) -> Result<(), NodeError> {
        if self.stopped {
            Err(NodeError::Stopped)
        } else {
            Ok(())
        }
    }

    fn readers_gone(&mut self) -> NodeError {
        self.stopped = true;
        NodeError::Socket {
            during: "receiving",
            source: std::io::Error::other("reader threads ended"),
        }
    }

    /// Makes every issued write durable, then sends every released frame and
    /// queues every event. Durable before visible: a write is acknowledged to
    /// the engine only after `apply` returned `Ok`.
    fn pump(&mut self) -> Result<(), NodeError> {
        loop {
            if let Some(write) = self.wallet.poll_write() {
                let started = Instant::now();
                let applied = self.store.apply(&write.batch);
                let took = started.elapsed();
                self.stats.fsync_time = self.stats.fsync_time.saturating_add(took);
                self.stats.fsync_time_max = self.stats.fsync_time_max.max(took);
                if let Err(e) = applied {
                    // The engine's memory is now ahead of the disk; nothing
                    // may go on from here (never continue after a failed
                    // fsync).
                    self.stopped = true;
                    return Err(NodeError::Store(e));
                }
                self.stats.writes = self.stats.writes.saturating_add(1);
                self.wallet.write_completed(write.id);
            } else if let Some(transmit) = self.wallet.poll_transmit() {
                self.transmit(&transmit);
            } else if let Some(event) = self.wallet.poll_event() {
                self.queue_event(event);
            } else {
                return Ok(());
            }
        }
    }

    fn queue_event(&mut self, event: Event) {
        if self.events.len() >= self.config.events_max {
            self.events.pop_front();
            self.stats.events_dropped = self.stats.events_dropped.saturating_add(1);
        }
        self.event_seq = self.event_seq.saturating_add(1);
        self.events.push_back((self.event_seq, event));
    }

    fn transmit(&mut self, transmit: &Transmit) {
        if transmit.to == PartyId::BROADCAST {
            self.send_broadcast(&transmit.frame);
            return;
        }
        match self.peers.get(transmit.to) {
            Some(addr) => {
                self.send_datagram(&transmit.frame, addr);
                // A peer that stopped answering may have restarted on another
                // address: with the broadcast route, also try the group.
                let unanswered = self.peers.sent(transmit.to);
                if self.config.unknown_peer == UnknownPeerRoute::ViaBroadcast
                    && unanswered > crate::STALE_PEER_SENDS
                {
                    self.stats.routed_via_broadcast =
                        self.stats.routed_via_broadcast.saturating_add(1);
                    self.send_broadcast(&transmit.frame);
                }
            }
            None => match self.config.unknown_peer {
                UnknownPeerRoute::Drop => {
                    self.stats.unroutable = self.stats.unroutable.saturating_add(1);
                }
                UnknownPeerRoute::ViaBroadcast => {
                    self.stats.routed_via_broadcast =
                        self.stats.routed_via_broadcast.saturating_add(1);
                    self.send_broadcast(&transmit.frame);
                }
            },
        }
    }

    fn send_broadcast(&mut self, frame: &[u8]) {
        match &self.config.broadcast {
            BroadcastTo::Multicast { group, .. } => {
                let to = SocketAddr::V4(*group);
                self.send_datagram(frame, to);
            }
            BroadcastTo::Lan { address } => {
                let to = SocketAddr::V4(*address);
                self.send_datagram(frame, to);
            }
            BroadcastTo::Peers(peers) => {
                // Cloned: the list is short (BROADCAST_PEERS_MAX) and the
                // sends need `&mut self` for the counters.
                for to in peers.clone() {
                    self.send_datagram(frame, to);
                }
            }
        }
    }

    fn send_datagram(&mut self, frame: &[u8], to: SocketAddr) {
        if self.draw_drop(self.config.drop.outbound_permille) {
            self.stats.dropped_outbound = self.stats.dropped_outbound.saturating_add(1);
            return;
        }
        match self.sockets.unicast.send_to(frame, to) {
            Ok(_) => self.stats.frames_sent = self.stats.frames_sent.saturating_add(1),
            Err(_) => self.stats.send_failures = self.stats.send_failures.saturating_add(1),
        }
    }

    fn draw_drop(&mut self, permille: u32) -> bool {
        permille > 0 && self.drop_rng.next_u32() % DROP_PERMILLE_MAX < permille
    }

    fn receive(&mut self, inbound: Inbound) -> Result<(), NodeError> {
        let (bytes, from) = match inbound {
            Inbound::Datagram { bytes, from } => (bytes, from),
            Inbound::Failed(source) => {
                self.stopped = true;
                return Err(NodeError::Socket {
                    during: "receiving",
                    source,
                });
            }
        };
        if self.draw_drop(self.config.drop.inbound_permille) {
            self.stats.dropped_inbound = self.stats.dropped_inbound.saturating_add(1);
            return Ok(());
        }
        let header = match mpay_envelope::peek_header(&bytes) {
            Ok(header) => header,
            Err(e) => {
                tracing::debug!(%from, len = bytes.len(), reason = %e, "frame refused: header");
                self.stats.refused.count(RefusalKind::of_envelope(&e));
                return Ok(());
            }
        };
        let me = self.wallet.id();
        if header.sender == me {
            self.stats.own_echoes = self.stats.own_echoes.saturating_add(1);
            return Ok(());
        }
        if header.receiver != me && header.receiver != PartyId::BROADCAST {
            self.stats.not_for_us = self.stats.not_for_us.saturating_add(1);
            return Ok(());
        }
        match self.wallet.handle_frame(wall_clock(), &bytes) {
            Ok(()) => {
                self.stats.frames_accepted = self.stats.frames_accepted.saturating_add(1);
                // Learned only now: the frame verified as the sender's.
                self.peers.learn(header.sender, from);
            }
            Err(e) => {
                tracing::debug!(
                    %from,
                    kind = format_args!("{:#06x}", header.kind.0),
                    sender = %header.sender,
                    reason = %e,
                    "frame refused"
                );
                self.stats.refused.count(RefusalKind::of(&e));
            }
        }
        Ok(())
    }
}
