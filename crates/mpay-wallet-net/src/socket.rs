//! The node's sockets and the threads that read them.
//!
//! A node has a unicast socket (it sends everything, and receives unicast
//! frames) and, for [`BroadcastTo::Multicast`] and [`BroadcastTo::Lan`], a
//! listening socket bound to the shared broadcast port with `SO_REUSEADDR`
//! (and `SO_REUSEPORT` where it exists), so every node on one machine gets
//! every LOOKUP. Each socket has a reader thread that hands datagrams to the
//! loop through a bounded channel.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use mpay_envelope::{FRAME_LEN_MAX, HEADER_LEN};
use socket2::{Domain, Protocol, SockRef, Socket, Type};

use crate::{BroadcastTo, NodeConfig, NodeError};

/// How often a reader thread wakes from `recv_from` to see whether the node
/// is shutting down.
pub(crate) const READER_WAKE_MS: u64 = 50;
/// Receive buffer: one byte more than the largest frame, so a longer
/// datagram shows up as too long instead of silently truncated.
const RECV_BUFFER_LEN: usize = FRAME_LEN_MAX + 1;
/// Multicast hops: one-hop, like the radio link LOOKUP stands for.
const MULTICAST_TTL: u32 = 1;

/// What a reader thread hands the loop.
pub(crate) enum Inbound {
    Datagram {
        bytes: Vec<u8>,
        from: SocketAddr,
    },
    /// The socket failed for good; the reader stopped.
    Failed(io::Error),
}

/// Counters the reader threads keep (they drop before the loop sees).
#[derive(Default)]
pub(crate) struct ReaderCounters {
    pub received: AtomicU64,
    pub dropped_size: AtomicU64,
    pub dropped_inbox_full: AtomicU64,
}

/// The node's sockets, reader threads and inbox.
pub(crate) struct Sockets {
    /// Sends every frame; its address is the node's.
    pub unicast: UdpSocket,
    pub local_addr: SocketAddr,
    pub inbox: Receiver<Inbound>,
    pub counters: Arc<ReaderCounters>,
    stop: Arc<AtomicBool>,
    readers: Vec<JoinHandle<()>>,
}

fn socket_error(during: &'static str) -> impl FnOnce(io::Error) -> NodeError {
    move |source| NodeError::Socket { during, source }
}

impl Sockets {
    pub fn open(config: &NodeConfig) -> Result<Sockets, NodeError> {
        let unicast =
            UdpSocket::bind(config.bind).map_err(socket_error("binding the unicast socket"))?;
        let local_addr = unicast
            .local_addr()
            .map_err(socket_error("reading the unicast address"))?;
        let listener = match &config.broadcast {
            BroadcastTo::Multicast { group, interface } => {
                unicast
                    .set_multicast_loop_v4(true)
                    .map_err(socket_error("enabling IP_MULTICAST_LOOP"))?;
                unicast
                    .set_multicast_ttl_v4(MULTICAST_TTL)
                    .map_err(socket_error("setting the multicast TTL"))?;
                SockRef::from(&unicast)
                    .set_multicast_if_v4(interface)
                    .map_err(socket_error("setting IP_MULTICAST_IF"))?;
                // Bound to the group itself where the OS allows it, so only
                // group traffic arrives; Windows needs the wildcard.
                let bind_ip = if cfg!(unix) {
                    *group.ip()
                } else {
                    Ipv4Addr::UNSPECIFIED
                };
                let listener = shared_port_socket(SocketAddrV4::new(bind_ip, group.port()))?;
                listener
                    .join_multicast_v4(group.ip(), interface)
                    .map_err(socket_error("joining the multicast group"))?;
                Some(listener)
            }
            BroadcastTo::Lan { address } => {
                unicast
                    .set_broadcast(true)
                    .map_err(socket_error("enabling SO_BROADCAST"))?;
                Some(shared_port_socket(SocketAddrV4::new(
                    Ipv4Addr::UNSPECIFIED,
                    address.port(),
                ))?)
            }
            BroadcastTo::Peers(_) => None,
        };

        let (tx, inbox) = sync_channel(config.inbox_datagrams_max);
        let counters = Arc::new(ReaderCounters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut sockets = Sockets {
            unicast,
            local_addr,
            inbox,
            counters,
            stop,
            readers: Vec::new(),
        };
        let reader = sockets
            .unicast
            .try_clone()
            .map_err(socket_error("cloning the unicast socket"))?;
        sockets.spawn_reader("mpay-net-unicast", reader, tx.clone())?;
        if let Some(listener) = listener {
            sockets.spawn_reader("mpay-net-broadcast", listener, tx)?;
        }
        Ok(sockets)
    }

    fn spawn_reader(
        &mut self,
        name: &str,
        socket: UdpSocket,
        tx: SyncSender<Inbound>,
    ) -> Result<(), NodeError> {
        socket
            .set_read_timeout(Some(Duration::from_millis(READER_WAKE_MS)))
            .map_err(socket_error("setting the read timeout"))?;
        let stop = Arc::clone(&self.stop);
        let counters = Arc::clone(&self.counters);
        let handle = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || read_loop(&socket, &tx, &stop, &counters))
            .map_err(socket_error("starting a reader thread"))?;
        self.readers.push(handle);
        Ok(())
    }
}

impl Drop for Sockets {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for reader in self.readers.drain(..) {
            // A reader that panicked has nothing left to clean up.
            let _ = reader.join();
        }
    }
}

/// A UDP socket bound to a port that every node on the machine shares.
fn shared_port_socket(addr: SocketAddrV4) -> Result<UdpSocket, NodeError> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
        .map_err(socket_error("creating the broadcast socket"))?;
    socket
        .set_reuse_address(true)
        .map_err(socket_error("setting SO_REUSEADDR"))?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    socket
        .set_reuse_port(true)
        .map_err(socket_error("setting SO_REUSEPORT"))?;
    socket
        .bind(&SocketAddr::V4(addr).into())
        .map_err(socket_error("binding the broadcast socket"))?;
    Ok(socket.into())
}

/// Receive errors that say nothing about the socket's health: timeouts, and
/// ICMP errors some systems report on unconnected UDP sockets.
fn is_transient(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
            | io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
    )
}

fn read_loop(
    socket: &UdpSocket,
    tx: &SyncSender<Inbound>,
    stop: &AtomicBool,
    counters: &ReaderCounters,
) {
    let mut buffer = vec![0u8; RECV_BUFFER_LEN];
    while !stop.load(Ordering::Relaxed) {
        let (len, from) = match socket.recv_from(&mut buffer) {
            Ok(received) => received,
            Err(e) if is_transient(&e) => continue,
            Err(e) => {
                // The loop learns of it and stops the node; if the loop is
                // gone there is nobody left to tell.
                let _ = tx.send(Inbound::Failed(e));
                return;
            }
        };
        counters.received.fetch_add(1, Ordering::Relaxed);
        if !(HEADER_LEN..=FRAME_LEN_MAX).contains(&len) {
            counters.dropped_size.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let bytes = buffer.get(..len).map(<[u8]>::to_vec).unwrap_or_default();
        match tx.try_send(Inbound::Datagram { bytes, from }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                counters.dropped_inbox_full.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => return,
        }
    }
}
