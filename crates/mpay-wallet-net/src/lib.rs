//! The UDP driver that runs one phone's wallet engine ([`mpay_offline::Wallet`])
//! over a real network: [`WalletNode`].
//!
//! The engine is sans-IO (ARCHITECTURE.md, "Boundaries"); this crate is the
//! thin driver that gives it a clock, a socket and a disk. It is the only
//! place in the wallet that reads the wall clock (`SystemTime`, turned into a
//! [`mpay_identity::Timestamp`] by [`wall_clock`]).
//!
//! # The loop
//!
//! One [`WalletNode::step`] does, in this order:
//!
//! 1. **pump**: every [`Wallet::poll_write`](mpay_offline::Wallet::poll_write)
//!    is applied with [`WalletStore::apply`](mpay_wallet_store::WalletStore::apply)
//!    (one transaction, one fsync) and only then acknowledged with
//!    `write_completed`; every `poll_transmit` is sent; every `poll_event` is
//!    queued for the owner. The engine releases a frame only after the write
//!    it depends on is acknowledged, and the node acknowledges only after
//!    `apply` returned `Ok`, so nothing leaves the phone before the record it
//!    depends on is on stable storage (durable before visible). A failed
//!    `apply` stops the node for good ([`NodeError::Store`], then
//!    [`NodeError::Stopped`]): after a failed fsync the engine's memory is
//!    ahead of the disk, and the only safe way on is a restart from the store
//!    (`WalletStore::open` + `Wallet::recover`).
//! 2. **wait**: for the next datagram, at most until the engine's
//!    `poll_timeout`, capped by [`NodeConfig::wait_ms_max`].
//! 3. **feed**: each datagram goes through the drop knob, is checked for
//!    size (larger than [`mpay_envelope::FRAME_LEN_MAX`] or shorter than a
//!    header: dropped unopened), its header is peeked to drop our own
//!    multicast echoes and frames addressed to someone else, and then it is
//!    handed to `handle_frame`. Due timers go to `handle_timeout`.
//! 4. **pump** again, so whatever the input caused is durable and sent before
//!    `step` returns.
//!
//! Two reader threads (one per socket) block on `recv_from` and hand
//! datagrams to the loop through a bounded channel
//! ([`NodeConfig::inbox_datagrams_max`]); std has no `poll` over two sockets,
//! and a thread per socket keeps the crate free of an async runtime. Only the
//! loop touches the engine and the store.
//!
//! # Addressing
//!
//! The engine speaks [`PartyId`](mpay_identity::PartyId)s. The node learns
//! `PartyId → SocketAddr` from the source address of every frame whose
//! header names that sender, and only after `handle_frame` accepted the
//! frame (its seal, signature, freshness and replay checks passed), so a
//! forged frame cannot redirect a peer. The table holds at most
//! [`NodeConfig::peer_addresses_max`] peers; the one heard from longest ago
//! is forgotten first. A unicast transmit to a peer with no known address is
//! dropped and counted ([`UnknownPeerRoute::Drop`], the default) or sent to
//! the broadcast destination ([`UnknownPeerRoute::ViaBroadcast`]): the frame
//! is sealed to its receiver, so the others on the link drop it after
//! peeking at its header. The second route is what lets a phone that
//! restarted on a new port reach a peer that has nothing more to say to it
//! (a seller resending COMMIT to a buyer that already committed).
//!
//! Every node sends everything, LOOKUPs included, from its own unicast
//! socket, so a receiver always learns the sender's unicast address, never
//! the shared group port.
//!
//! # Broadcast (LOOKUP)
//!
//! A transmit to [`PartyId::BROADCAST`](mpay_identity::PartyId::BROADCAST)
//! goes to the configured [`BroadcastTo`]:
//!
//! - [`BroadcastTo::Multicast`] (the default, [`NodeConfig::loopback`]): an
//!   IPv4 multicast group, by default [`DEFAULT_MULTICAST_GROUP`] joined on
//!   `127.0.0.1`, with `IP_MULTICAST_LOOP` on and TTL 1. Every node opens a
//!   second socket bound to the group's port with `SO_REUSEADDR` (and
//!   `SO_REUSEPORT` where it exists), which is what lets several nodes on
//!   one machine all receive each LOOKUP; std cannot set those before
//!   `bind`, hence the `socket2` dependency. Checked on this machine's
//!   Linux: `lo` does not carry the `MULTICAST` flag, yet joining the group
//!   on 127.0.0.1 and sending with `IP_MULTICAST_IF` = 127.0.0.1 delivers
//!   to every member, and the traffic stays on `lo`. On a phone the
//!   interface is the Wi-Fi address.
//! - [`BroadcastTo::Lan`]: `SO_BROADCAST` to a broadcast address
//!   (`255.255.255.255:PORT`, a subnet's, or `127.255.255.255:PORT` on
//!   loopback), every node listening on `0.0.0.0:PORT` with the same reuse
//!   options. For networks that filter multicast.
//! - [`BroadcastTo::Peers`]: a unicast copy to each address of a configured
//!   list, no second socket. For networks that pass neither.
//!
//! # The drop knob
//!
//! [`DropKnob`] drops a share (per mille, 0 to [`DROP_PERMILLE_MAX`]) of
//! incoming and, separately, outgoing datagrams at random, from an RNG
//! seeded by [`DropKnob::seed`]. It is for tests and demos of a lossy radio
//! link; every drop is counted in [`NodeStats`]. Because real time and real
//! thread scheduling drive the node, a seed fixes the coin flips, not the
//! run.
//!
//! # Owner operations
//!
//! [`WalletNode::sell`], [`WalletNode::buy`], [`WalletNode::run_until`],
//! [`WalletNode::run_for`] and [`WalletNode::run_until_settled`] block, each
//! up to a deadline, and return typed outcomes for the CLI.
//! [`WalletNode::command`] runs any other engine command with the node's
//! clock and makes its writes durable.

mod addresses;
mod config;
mod error;
mod node;
mod ops;
mod socket;
mod stats;

pub use config::{
    BROADCAST_PEERS_MAX, BroadcastTo, DEFAULT_MULTICAST_GROUP, DROP_PERMILLE_MAX, DropKnob,
    NodeConfig, UnknownPeerRoute,
};
pub use error::NodeError;
pub use node::{WalletNode, wall_clock};
pub use ops::{BUYERS_LISTED_MAX, Found, PaymentRequest, PurchaseOutcome, SaleOutcome, Watch};
pub use stats::{NodeStats, RefusalKind, Refusals};

/// Frames sent to a peer without hearing back before the node, with
/// [`UnknownPeerRoute::ViaBroadcast`], also sends them to the broadcast
/// destination: the peer may have restarted on another address.
pub const STALE_PEER_SENDS: u32 = 3;
