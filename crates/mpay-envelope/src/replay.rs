//! Remembers which (sender, transaction, nonce) triples were accepted within
//! the freshness window, so an exact copy of a message is refused.
//!
//! The guard holds at most [`REPLAY_ENTRIES_MAX`] entries. When full it
//! forgets the oldest and raises a floor: anything sent at or before the
//! floor is refused, so forgetting never reopens a replay. Entries older than
//! the freshness window are dropped, since [`crate::open`] refuses those
//! messages anyway. The guard lives in memory; after a restart, protocol
//! idempotency by (transaction, step) is what keeps a replay harmless.

use std::collections::{BTreeSet, HashSet};

use mpay_identity::{PartyId, Timestamp};

use crate::{EnvelopeError, Header, MESSAGE_AGE_MAX_MS};

/// Most messages remembered at once.
pub const REPLAY_ENTRIES_MAX: usize = 65_536;

type Key = (PartyId, [u8; 16], u64);

#[derive(Debug)]
pub struct ReplayGuard {
    seen: HashSet<Key>,
    by_time: BTreeSet<(Timestamp, Key)>,
    floor: Option<Timestamp>,
    capacity: usize,
}

impl Default for ReplayGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplayGuard {
    pub fn new() -> Self {
        Self::with_capacity(REPLAY_ENTRIES_MAX)
    }

    pub fn with_capacity(capacity: usize) -> Self {
        assert!(capacity > 0, "replay guard capacity must be positive");
        ReplayGuard {
            seen: HashSet::new(),
            by_time: BTreeSet::new(),
            floor: None,
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    pub(crate) fn check_and_record(
        &mut self,
        header: &Header,
        now: Timestamp,
    ) -> Result<(), EnvelopeError> {
        self.expire(now);
        if self.floor.is_some_and(|floor| header.sent_at <= floor) {
            return Err(EnvelopeError::Replay);
        }
        let key = (header.sender, header.tx_id, header.nonce);
        if !self.seen.insert(key) {
            return Err(EnvelopeError::Replay);
        }
        self.by_time.insert((header.sent_at, key));
        while self.seen.len() > self.capacity {
            if let Some((sent_at, oldest)) = self.by_time.pop_first() {
                self.seen.remove(&oldest);
                self.floor = Some(self.floor.map_or(sent_at, |f| f.max(sent_at)));
            }
        }
        debug_assert_eq!(self.seen.len(), self.by_time.len());
        Ok(())
    }

    fn expire(&mut self, now: Timestamp) {
        let horizon = now.saturating_sub_ms(MESSAGE_AGE_MAX_MS);
        while let Some((sent_at, key)) = self.by_time.first().copied() {
            if sent_at >= horizon {
                break;
            }
            self.by_time.pop_first();
            self.seen.remove(&key);
        }
    }
}
