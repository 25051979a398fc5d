//! What a wallet keeps on stable storage, as the engine sees it: opaque
//! encoded records in four tables. The engine emits a [`WriteBatch`]; a store
//! applies it atomically and durably (fsync'd) and only then tells the engine
//! it completed. A store hands back a [`Snapshot`] at start-up, from which the
//! engine recovers.

use std::collections::BTreeMap;

/// One change to the durable state.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Write {
    /// Sets a named value (keys, certificate, settings, counters).
    PutMeta {
        key: String,
        value: Vec<u8>,
    },
    DeleteMeta {
        key: String,
    },
    /// Appends the entry with sequence `seq` to the wallet's hash chain. The
    /// chain is append-only: `seq` must be one more than the last entry's (or
    /// any value for the first entry).
    AppendChain {
        seq: u64,
        entry: Vec<u8>,
    },
    /// Creates or replaces the log record of one transaction (UNDO/REDO,
    /// COMMIT, …).
    PutTx {
        tx_id: [u8; 16],
        record: Vec<u8>,
    },
    /// Forgets a transaction's log record.
    DeleteTx {
        tx_id: [u8; 16],
    },
    /// Remembers a peer's certificate.
    PutPeer {
        party_id: [u8; 16],
        certificate: Vec<u8>,
    },
}

/// Writes that must reach stable storage together or not at all.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct WriteBatch {
    pub writes: Vec<Write>,
}

impl WriteBatch {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn push(&mut self, write: Write) {
        self.writes.push(write);
    }
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}

/// Everything a store holds, as it was after the last completed batch.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Snapshot {
    pub meta: BTreeMap<String, Vec<u8>>,
    /// Chain entries by sequence, in order.
    pub chain: BTreeMap<u64, Vec<u8>>,
    pub txs: BTreeMap<[u8; 16], Vec<u8>>,
    pub peers: BTreeMap<[u8; 16], Vec<u8>>,
}

/// A chain append that breaks the chain's order: a bug in the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chain entry {seq} appended after entry {last}")]
pub struct ChainOrderError {
    pub last: u64,
    pub seq: u64,
}

/// The chain-order rule every store enforces: each append in `batch` is one
/// more than the entry before it (`last` is the store's last sequence).
pub fn check_chain_order(mut last: Option<u64>, batch: &WriteBatch) -> Result<(), ChainOrderError> {
    for write in &batch.writes {
        if let Write::AppendChain { seq, .. } = write {
            if let Some(prev) = last
                && prev.checked_add(1) != Some(*seq)
            {
                return Err(ChainOrderError {
                    last: prev,
                    seq: *seq,
                });
            }
            last = Some(*seq);
        }
    }
    Ok(())
}

/// A failure of a durable store, for code generic over stores.
pub type StoreFailure = Box<dyn std::error::Error + Send + Sync>;

/// Stable storage as a driver sees it: [`Snapshot`] in memory for the
/// simulator, the encrypted SQLite store on a phone.
pub trait DurableStore {
    /// Applies `batch` atomically; durable (fsync'd) when it returns.
    fn apply_batch(&mut self, batch: &WriteBatch) -> Result<(), StoreFailure>;
    /// Everything the store holds.
    fn load_snapshot(&self) -> Result<Snapshot, StoreFailure>;
}

impl DurableStore for Snapshot {
    fn apply_batch(&mut self, batch: &WriteBatch) -> Result<(), StoreFailure> {
        self.apply(batch).map_err(Into::into)
    }

    fn load_snapshot(&self) -> Result<Snapshot, StoreFailure> {
        Ok(self.clone())
    }
}

impl Snapshot {
    /// Applies a batch in memory, with the same rules a durable store enforces.
    /// On error nothing is changed.
    pub fn apply(&mut self, batch: &WriteBatch) -> Result<(), ChainOrderError> {
        check_chain_order(self.chain.keys().next_back().copied(), batch)?;
        for write in &batch.writes {
            match write {
                Write::PutMeta { key, value } => {
                    self.meta.insert(key.clone(), value.clone());
                }
                Write::DeleteMeta { key } => {
                    self.meta.remove(key);
                }
                Write::AppendChain { seq, entry } => {
                    self.chain.insert(*seq, entry.clone());
                }
                Write::PutTx { tx_id, record } => {
                    self.txs.insert(*tx_id, record.clone());
                }
                Write::DeleteTx { tx_id } => {
                    self.txs.remove(tx_id);
                }
                Write::PutPeer {
                    party_id,
                    certificate,
                } => {
                    self.peers.insert(*party_id, certificate.clone());
                }
            }
        }
        Ok(())
    }
}
