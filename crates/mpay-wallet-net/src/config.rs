//! How a node is wired: its sockets, its broadcast destination, its limits and
//! the test drop knob.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use crate::NodeError;

/// The default LOOKUP group: organisation-local scope (239.255/16), a port
/// of its own.
pub const DEFAULT_MULTICAST_GROUP: SocketAddrV4 =
    SocketAddrV4::new(Ipv4Addr::new(239, 255, 77, 77), 47_701);
/// Largest share of datagrams the drop knob can drop, per mille (all).
pub const DROP_PERMILLE_MAX: u32 = 1_000;
/// Most addresses [`BroadcastTo::Peers`] sends a copy to.
pub const BROADCAST_PEERS_MAX: usize = 64;

/// Where a broadcast (LOOKUP) goes. See the crate docs for the trade-offs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BroadcastTo {
    /// An IPv4 multicast group joined on `interface` (the address of the
    /// interface to use: `127.0.0.1` for loopback, the Wi-Fi address on a
    /// phone). Sent with TTL 1 and `IP_MULTICAST_LOOP` on.
    Multicast {
        group: SocketAddrV4,
        interface: Ipv4Addr,
    },
    /// `SO_BROADCAST` to `address` (`255.255.255.255:PORT`, a subnet
    /// broadcast, or `127.255.255.255:PORT` on loopback); every node also
    /// listens on `0.0.0.0:PORT`.
    Lan { address: SocketAddrV4 },
    /// A unicast copy to each of these addresses (at most
    /// [`BROADCAST_PEERS_MAX`]); no listening socket of its own.
    Peers(Vec<SocketAddr>),
}

/// What to do with a unicast frame for a peer whose address is unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum UnknownPeerRoute {
    /// Drop it and count it ([`crate::NodeStats::unroutable`]).
    #[default]
    Drop,
    /// Send it to the broadcast destination; it is sealed to its receiver,
    /// every other node drops it unopened. Counted in
    /// [`crate::NodeStats::routed_via_broadcast`].
    ViaBroadcast,
}

/// Drops a share of datagrams at random, for tests of a lossy link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct DropKnob {
    /// Share of received datagrams dropped before they are looked at, per
    /// mille (0 to [`DROP_PERMILLE_MAX`]).
    pub inbound_permille: u32,
    /// Share of datagrams to send that are dropped instead, per mille (0 to
    /// [`DROP_PERMILLE_MAX`]). Each copy of a broadcast is drawn on its own.
    pub outbound_permille: u32,
    /// Seed of the RNG that draws the drops.
    pub seed: u64,
}

impl DropKnob {
    /// No drops.
    pub const NONE: DropKnob = DropKnob {
        inbound_permille: 0,
        outbound_permille: 0,
        seed: 0,
    };

    pub(crate) fn check(&self) -> Result<(), NodeError> {
        if self.inbound_permille > DROP_PERMILLE_MAX || self.outbound_permille > DROP_PERMILLE_MAX {
            return Err(NodeError::Config("drop share above 1000 per mille"));
        }
        Ok(())
    }
}

/// Everything a [`crate::WalletNode`] needs besides its wallet and store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// Local address of the node's unicast socket; port 0 picks a free one.
    /// IPv4 only, like the broadcast options.
    pub bind: SocketAddrV4,
    /// Where LOOKUPs go and where the node listens for them.
    pub broadcast: BroadcastTo,
    /// What to do with a frame for a peer whose address is unknown.
    pub unknown_peer: UnknownPeerRoute,
    /// Test knob: drop datagrams at random.
    pub drop: DropKnob,
    /// Longest one [`crate::WalletNode::step`] waits for a datagram, even
    /// when the engine has no timer due.
    pub wait_ms_max: u64,
    /// Most peers whose address the node remembers.
    pub peer_addresses_max: usize,
    /// Most received datagrams queued between the reader threads and the
    /// loop; more are dropped and counted.
    pub inbox_datagrams_max: usize,
    /// Most engine events kept for [`crate::WalletNode::poll_event`]; the
    /// oldest are dropped (and counted) beyond it.
    pub events_max: usize,
    /// How often [`crate::WalletNode::sell`] repeats its LOOKUP while it
    /// waits for buyers (a LOOKUP or its reply may be lost).
    pub lookup_interval_ms: u64,
}

impl NodeConfig {
    /// Default [`NodeConfig::wait_ms_max`].
    pub const WAIT_MS_MAX: u64 = 200;
    /// Default [`NodeConfig::peer_addresses_max`].
    pub const PEER_ADDRESSES_MAX: usize = 256;
    /// Default [`NodeConfig::inbox_datagrams_max`].
    pub const INBOX_DATAGRAMS_MAX: usize = 512;
    /// Default [`NodeConfig::events_max`].
    pub const EVENTS_MAX: usize = 1_024;
    /// Default [`NodeConfig::lookup_interval_ms`].
    pub const LOOKUP_INTERVAL_MS: u64 = 150;

    /// Every node on this machine: unicast on `127.0.0.1` (a free port),
    /// LOOKUPs to [`DEFAULT_MULTICAST_GROUP`] on loopback.
    pub fn loopback() -> NodeConfig {
        NodeConfig::multicast(
            SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
            DEFAULT_MULTICAST_GROUP,
            Ipv4Addr::LOCALHOST,
        )
    }

    /// Unicast on `bind`, LOOKUPs to `group` joined on `interface`.
    pub fn multicast(bind: SocketAddrV4, group: SocketAddrV4, interface: Ipv4Addr) -> NodeConfig {
        NodeConfig {
            bind,
            broadcast: BroadcastTo::Multicast { group, interface },
            unknown_peer: UnknownPeerRoute::Drop,
            drop: DropKnob::NONE,
            wait_ms_max: Self::WAIT_MS_MAX,
            peer_addresses_max: Self::PEER_ADDRESSES_MAX,
            inbox_datagrams_max: Self::INBOX_DATAGRAMS_MAX,
            events_max: Self::EVENTS_MAX,
            lookup_interval_ms: Self::LOOKUP_INTERVAL_MS,
        }
    }

    pub(crate) fn check(&self) -> Result<(), NodeError> {
        self.drop.check()?;
        if self.wait_ms_max == 0 {
            return Err(NodeError::Config("wait_ms_max must be positive"));
        }
        if self.peer_addresses_max == 0 {
            return Err(NodeError::Config("peer_addresses_max must be positive"));
        }
        if self.inbox_datagrams_max == 0 {
            return Err(NodeError::Config("inbox_datagrams_max must be positive"));
        }
        if self.events_max == 0 {
            return Err(NodeError::Config("events_max must be positive"));
        }
        if self.lookup_interval_ms == 0 {
            return Err(NodeError::Config("lookup_interval_ms must be positive"));
        }
        match &self.broadcast {
            BroadcastTo::Multicast { group, .. } if !group.ip().is_multicast() => Err(
                NodeError::Config("multicast group is not a multicast address"),
            ),
            BroadcastTo::Peers(peers) if peers.len() > BROADCAST_PEERS_MAX => Err(
                NodeError::Config("more broadcast peers than BROADCAST_PEERS_MAX"),
            ),
            _ => Ok(()),
        }
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig::loopback()
    }
}
