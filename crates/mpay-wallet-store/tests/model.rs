//! The SQLite store against the in-memory model, `Snapshot::apply`: after
//! every step of a random sequence of batches (some with out-of-order chain
//! appends, some of them rejected) and reopens, both hold the same snapshot
//! and reject the same batches with the same error.

use mpay_wallet_store::{KdfParams, Snapshot, StoreError, WalletStore, Write, WriteBatch};
use proptest::prelude::*;
use tempfile::TempDir;

const PIN: &str = "2468";

/// How a generated chain append picks its sequence number, relative to the
/// chain's state when the batch is built, so that most appends are in order.
#[derive(Clone, Debug)]
enum SeqChoice {
    /// One after the last entry (or `start` for an empty chain).
    Next { start: u64 },
    /// `last + delta`, wrapping: usually out of order.
    Delta(u64),
    /// A fixed value, including the edges of the `u64` range.
    Exact(u64),
}

#[derive(Clone, Debug)]
enum WriteChoice {
    PutMeta(usize, Vec<u8>),
    DeleteMeta(usize),
    Append(SeqChoice, Vec<u8>),
    PutTx(u8, Vec<u8>),
    DeleteTx(u8),
    PutPeer(u8, Vec<u8>),
}

#[derive(Clone, Debug)]
enum Step {
    Apply(Vec<WriteChoice>),
    Reopen,
}

/// A few keys, so that puts overwrite and deletes hit.
const META_KEYS: &[&str] = &["", "identity", "settings", "counter", "ключ", "a\0b"];

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(vec![]),
        proptest::collection::vec(any::<u8>(), 0..48),
        proptest::collection::vec(any::<u8>(), 3000..5000),
    ]
}

fn seq_choice() -> impl Strategy<Value = SeqChoice> {
    prop_oneof![
        8 => prop_oneof![
            Just(0u64),
            Just(1u64 << 63),
            Just(u64::MAX - 3),
            any::<u64>()
        ]
        .prop_map(|start| SeqChoice::Next { start }),
        1 => prop_oneof![Just(0u64), Just(2u64), Just(u64::MAX), any::<u64>()]
            .prop_map(SeqChoice::Delta),
        1 => prop_oneof![Just(0u64), Just(u64::MAX), any::<u64>()].prop_map(SeqChoice::Exact),
    ]
}

fn write_choice() -> impl Strategy<Value = WriteChoice> {
    let id = 0u8..4;
    prop_oneof![
        2 => (0..META_KEYS.len(), value()).prop_map(|(k, v)| WriteChoice::PutMeta(k, v)),
        1 => (0..META_KEYS.len()).prop_map(WriteChoice::DeleteMeta),
        3 => (seq_choice(), value()).prop_map(|(s, v)| WriteChoice::Append(s, v)),
        2 => (id.clone(), value()).prop_map(|(i, v)| WriteChoice::PutTx(i, v)),
        1 => id.clone().prop_map(WriteChoice::DeleteTx),
        1 => (id, value()).prop_map(|(i, v)| WriteChoice::PutPeer(i, v)),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => proptest::collection::vec(write_choice(), 0..8).prop_map(Step::Apply),
        1 => Just(Step::Reopen),
    ]
}

fn id(i: u8) -> [u8; 16] {
    let mut id = [0xa5; 16];
    id[15] = i;
    id
}

/// Turns choices into a concrete batch against the model's chain.
fn concrete(choices: &[WriteChoice], model: &Snapshot) -> WriteBatch {
    let mut last = model.chain.keys().next_back().copied();
    let writes = choices
        .iter()
        .map(|choice| match choice {
            WriteChoice::PutMeta(k, v) => Write::PutMeta {
                key: META_KEYS[*k].to_owned(),
                value: v.clone(),
            },
            WriteChoice::DeleteMeta(k) => Write::DeleteMeta {
                key: META_KEYS[*k].to_owned(),
            },
            WriteChoice::Append(seq, entry) => {
                let seq = match *seq {
                    SeqChoice::Next { start } => last.map_or(start, |l| l.wrapping_add(1)),
                    SeqChoice::Delta(d) => last.unwrap_or(0).wrapping_add(d),
                    SeqChoice::Exact(s) => s,
                };
                last = Some(seq);
                Write::AppendChain {
                    seq,
                    entry: entry.clone(),
                }
            }
            WriteChoice::PutTx(i, v) => Write::PutTx {
                tx_id: id(*i),
                record: v.clone(),
            },
            WriteChoice::DeleteTx(i) => Write::DeleteTx { tx_id: id(*i) },
            WriteChoice::PutPeer(i, v) => Write::PutPeer {
                party_id: id(*i),
                certificate: v.clone(),
            },
        })
        .collect();
    WriteBatch { writes }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        ..ProptestConfig::default()
    })]

    #[test]
    fn store_agrees_with_the_in_memory_model(steps in proptest::collection::vec(step(), 1..24)) {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("wallet.db");
        let mut store = WalletStore::create(&path, PIN, KdfParams::FAST_FOR_TESTS).unwrap();
        let mut model = Snapshot::default();
        for step in &steps {
            match step {
                Step::Reopen => {
                    drop(store);
                    store = WalletStore::open(&path, PIN).unwrap();
                }
                Step::Apply(choices) => {
                    let batch = concrete(choices, &model);
                    let expected = model.apply(&batch);
                    match (store.apply(&batch), expected) {
                        (Ok(()), Ok(())) => {}
                        (Err(StoreError::ChainOrder(got)), Err(want)) => prop_assert_eq!(got, want),
                        (got, want) => prop_assert!(false, "store {:?}, model {:?}", got, want),
                    }
                }
            }
            prop_assert_eq!(&store.load().unwrap(), &model);
            let chain: Vec<(u64, Vec<u8>)> =
                model.chain.iter().map(|(s, e)| (*s, e.clone())).collect();
            prop_assert_eq!(&store.chain_since(None).unwrap(), &chain);
            if let Some((after, _)) = chain.first() {
                prop_assert_eq!(store.chain_since(Some(*after)).unwrap(), chain[1..].to_vec());
            }
        }
        drop(store);
        prop_assert_eq!(WalletStore::open(&path, PIN).unwrap().load().unwrap(), model);
    }
}
