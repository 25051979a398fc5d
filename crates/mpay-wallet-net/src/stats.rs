//! What a node counted: datagrams in and out, drops and refusals by reason,
//! durable writes and the time they took.

use std::collections::BTreeMap;
use std::time::Duration;

use mpay_envelope::EnvelopeError;
use mpay_offline::InboundError;

/// Why a received frame was refused, by kind: the [`InboundError`] (and
/// inside it the [`EnvelopeError`]) without its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RefusalKind {
    Malformed,
    TooLarge,
    UnsupportedVersion,
    UnsupportedSuite,
    WrongReceiver,
    BroadcastMismatch,
    Stale,
    FromFuture,
    SealBroken,
    SenderMismatch,
    Certificate,
    BadSignature,
    Replay,
    LocalEnvelope,
    UnknownPeer,
    NotAWallet,
    FromSelf,
    /// Over the engine's LOOKUP rate limit.
    RateLimited,
    /// A refusal kind this driver does not know yet (the engine grew one).
    Other,
}

impl RefusalKind {
    /// The kind of an engine refusal.
    pub fn of(error: &InboundError) -> RefusalKind {
        // An `if let` chain rather than one exhaustive `match`: the engine's
        // error enums are growing, and a new variant must land here as
        // `Other`, not break the driver's build.
        if let InboundError::Envelope(e) = error {
            Self::of_envelope(e)
        } else if let InboundError::Malformed(_) = error {
            RefusalKind::Malformed
        } else if let InboundError::UnknownPeer(_) = error {
            RefusalKind::UnknownPeer
        } else if let InboundError::Certificate(_) = error {
            RefusalKind::Certificate
        } else if let InboundError::NotAWallet = error {
            RefusalKind::NotAWallet
        } else if let InboundError::FromSelf = error {
            RefusalKind::FromSelf
        } else if let InboundError::RateLimited(_) = error {
            RefusalKind::RateLimited
        } else {
            RefusalKind::Other
        }
    }

    /// The kind of an envelope refusal (also what `peek_header` can say).
    pub fn of_envelope(error: &EnvelopeError) -> RefusalKind {
        use EnvelopeError as E;
        if let E::Malformed(_) = error {
            RefusalKind::Malformed
        } else if let E::TooLarge { .. } = error {
            RefusalKind::TooLarge
        } else if let E::UnsupportedVersion(_) = error {
            RefusalKind::UnsupportedVersion
        } else if let E::UnsupportedSuite(_) = error {
            RefusalKind::UnsupportedSuite
        } else if let E::WrongReceiver { .. } = error {
            RefusalKind::WrongReceiver
        } else if let E::BroadcastMismatch(_) = error {
            RefusalKind::BroadcastMismatch
        } else if let E::Stale { .. } = error {
            RefusalKind::Stale
        } else if let E::FromFuture { .. } = error {
            RefusalKind::FromFuture
        } else if let E::SealBroken = error {
            RefusalKind::SealBroken
        } else if let E::SenderMismatch { .. } = error {
            RefusalKind::SenderMismatch
        } else if let E::Certificate(_) = error {
            RefusalKind::Certificate
        } else if let E::BadSignature = error {
            RefusalKind::BadSignature
        } else if let E::Replay = error {
            RefusalKind::Replay
        } else if let E::Local(_) = error {
            RefusalKind::LocalEnvelope
        } else {
            RefusalKind::Other
        }
    }
}

/// Refused frames, counted by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Refusals {
    by_kind: BTreeMap<RefusalKind, u64>,
}

impl Refusals {
    pub(crate) fn count(&mut self, kind: RefusalKind) {
        let n = self.by_kind.entry(kind).or_insert(0);
        *n = n.saturating_add(1);
    }

    /// How many frames were refused for `kind`.
    pub fn get(&self, kind: RefusalKind) -> u64 {
        self.by_kind.get(&kind).copied().unwrap_or(0)
    }

    /// All refused frames.
    pub fn total(&self) -> u64 {
        self.by_kind.values().fold(0, |a, b| a.saturating_add(*b))
    }

    /// Each kind that occurred, with its count.
    pub fn iter(&self) -> impl Iterator<Item = (RefusalKind, u64)> + '_ {
        self.by_kind.iter().map(|(k, n)| (*k, *n))
    }
}

/// Counters of one node since it started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Datagrams handed to the socket (each broadcast copy counts).
    pub frames_sent: u64,
    /// Datagrams whose `send_to` failed (UDP is lossy; not fatal).
    pub send_failures: u64,
    /// Datagrams the drop knob dropped instead of sending.
    pub dropped_outbound: u64,
    /// Unicast frames dropped because the peer's address is unknown.
    pub unroutable: u64,
    /// Unicast frames sent to the broadcast destination because the peer's
    /// address is unknown ([`crate::UnknownPeerRoute::ViaBroadcast`]).
    pub routed_via_broadcast: u64,
    /// Datagrams received from the sockets (before any drop).
    pub frames_received: u64,
    /// Received datagrams the drop knob dropped.
    pub dropped_inbound: u64,
    /// Received datagrams larger than `FRAME_LEN_MAX` or shorter than a
    /// header, dropped unopened.
    pub dropped_size: u64,
    /// Received datagrams dropped because the inbox was full.
    pub dropped_inbox_full: u64,
    /// Our own broadcasts, looped back by multicast, dropped unopened.
    pub own_echoes: u64,
    /// Frames addressed to another party (a unicast routed via broadcast),
    /// dropped unopened.
    pub not_for_us: u64,
    /// Frames the engine accepted.
    pub frames_accepted: u64,
    /// Frames the engine (or the header peek) refused, by reason.
    pub refused: Refusals,
    /// Engine events dropped because nobody polled them.
    pub events_dropped: u64,
    /// Write batches made durable.
    pub writes: u64,
    /// Time spent in `WalletStore::apply` (the transaction and its fsync).
    pub fsync_time: Duration,
    /// Longest single `WalletStore::apply`.
    pub fsync_time_max: Duration,
}
