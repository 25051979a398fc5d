//! The node's address book: `PartyId → SocketAddr`, learned from verified
//! frames, bounded.

use std::collections::HashMap;
use std::net::SocketAddr;

use mpay_identity::PartyId;

/// A peer's address, when (in learn order) it was last heard, and how many
/// frames were sent to it since.
struct Entry {
    addr: SocketAddr,
    heard: u64,
    unanswered: u32,
}

/// At most `max` peers; when full, the peer heard from longest ago is
/// forgotten to make room.
pub(crate) struct PeerAddresses {
    max: usize,
    entries: HashMap<PartyId, Entry>,
    heard_counter: u64,
}

impl PeerAddresses {
    pub fn new(max: usize) -> PeerAddresses {
        assert!(max > 0, "an address book must hold at least one peer");
        PeerAddresses {
            max,
            entries: HashMap::new(),
            heard_counter: 0,
        }
    }

    pub fn get(&self, peer: PartyId) -> Option<SocketAddr> {
        self.entries.get(&peer).map(|e| e.addr)
    }

    /// Notes a frame sent to `peer`; returns how many were sent since it was
    /// last heard from (0 if the peer is unknown).
    pub fn sent(&mut self, peer: PartyId) -> u32 {
        match self.entries.get_mut(&peer) {
            Some(entry) => {
                entry.unanswered = entry.unanswered.saturating_add(1);
                entry.unanswered
            }
            None => 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Remembers `peer` at `addr` as the most recently heard.
    pub fn learn(&mut self, peer: PartyId, addr: SocketAddr) {
        self.heard_counter = self.heard_counter.saturating_add(1);
        let heard = self.heard_counter;
        if let Some(known) = self.entries.get_mut(&peer) {
            known.addr = addr;
            known.heard = heard;
            known.unanswered = 0;
            return;
        }
        if self.entries.len() >= self.max
            && let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.heard)
                .map(|(id, _)| *id)
        {
            self.entries.remove(&oldest);
        }
        self.entries.insert(
            peer,
            Entry {
                addr,
                heard,
                unanswered: 0,
            },
        );
        assert!(
            self.entries.len() <= self.max,
            "peer address book over its limit"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn full_book_forgets_the_peer_heard_from_longest_ago() {
        let (a, b, c) = (
            PartyId::from_u64(1),
            PartyId::from_u64(2),
            PartyId::from_u64(3),
        );
        let mut book = PeerAddresses::new(2);
        book.learn(a, addr(1));
        book.learn(b, addr(2));
        // Hearing `a` again makes `b` the oldest.
        book.learn(a, addr(11));
        book.learn(c, addr(3));
        assert_eq!(book.len(), 2);
        assert_eq!(book.get(a), Some(addr(11)));
        assert_eq!(book.get(b), None);
        assert_eq!(book.get(c), Some(addr(3)));
    }

    #[test]
    fn a_book_of_one_keeps_the_latest() {
        let mut book = PeerAddresses::new(1);
        for n in 1..=5 {
            book.learn(PartyId::from_u64(n), addr(u16::try_from(n).unwrap_or(0)));
            assert_eq!(book.len(), 1);
            assert_eq!(
                book.get(PartyId::from_u64(n)),
                Some(addr(u16::try_from(n).unwrap_or(0)))
            );
        }
    }
}
