//! The wallet store on real files in a temporary directory.

use std::fs;
use std::path::{Path, PathBuf};

use mpay_wallet_store::{
    KdfParams, SidecarProblem, Snapshot, StoreError, WalletStore, Write, WriteBatch, sidecar_path,
};
use tempfile::TempDir;

const PIN: &str = "4711";
const FAST: KdfParams = KdfParams::FAST_FOR_TESTS;
const MARKER: &[u8] = b"PLAINTEXT-MARKER-mpay-3b1f9e";

fn wallet_in(dir: &TempDir) -> PathBuf {
    dir.path().join("wallet.db")
}

fn batch(writes: Vec<Write>) -> WriteBatch {
    WriteBatch { writes }
}

/// One batch that uses every kind of write.
fn every_write() -> Vec<WriteBatch> {
    vec![
        batch(vec![
            Write::PutMeta {
                key: "identity".into(),
                value: MARKER.to_vec(),
            },
            Write::PutMeta {
                key: "settings".into(),
                value: vec![],
            },
            Write::PutMeta {
                key: "gone".into(),
                value: vec![1],
            },
            Write::AppendChain {
                seq: 7,
                entry: b"entry-7".to_vec(),
            },
            Write::AppendChain {
                seq: 8,
                entry: vec![],
            },
            Write::PutTx {
                tx_id: [1; 16],
                record: b"undo".to_vec(),
            },
            Write::PutTx {
                tx_id: [2; 16],
                record: b"redo".to_vec(),
            },
            Write::PutPeer {
                party_id: [9; 16],
                certificate: b"cert".to_vec(),
            },
        ]),
        batch(vec![
            Write::DeleteMeta { key: "gone".into() },
            Write::DeleteMeta {
                key: "never-there".into(),
            },
            Write::PutTx {
                tx_id: [1; 16],
                record: b"commit".to_vec(),
            },
            Write::DeleteTx { tx_id: [2; 16] },
            Write::PutPeer {
                party_id: [9; 16],
                certificate: b"cert-2".to_vec(),
            },
            Write::AppendChain {
                seq: 9,
                entry: vec![0; 1000],
            },
        ]),
    ]
}

fn model_of(batches: &[WriteBatch]) -> Snapshot {
    let mut model = Snapshot::default();
    for b in batches {
        model.apply(b).unwrap();
    }
    model
}

fn raw_bytes_of_wallet(db: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        if let Ok(b) = fs::read(PathBuf::from(name)) {
            bytes.extend(b);
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn every_write_kind_survives_reopen() {
    let dir = TempDir::new().unwrap();
    let path = wallet_in(&dir);
    let batches = every_write();
    {
        let mut store = WalletStore::create(&path, PIN, FAST).unwrap();
        assert_eq!(store.load().unwrap(), Snapshot::default());
        for b in &batches {
            store.apply(b).unwrap();
        }
        assert_eq!(store.load().unwrap(), model_of(&batches));
    }
    let store = WalletStore::open(&path, PIN).unwrap();
    let loaded = store.load().unwrap();
    assert_eq!(loaded, model_of(&batches));
    assert_eq!(loaded.meta["settings"], Vec::<u8>::new());
    assert_eq!(loaded.chain.keys().copied().collect::<Vec<_>>(), [7, 8, 9]);
}

#[test]
fn out_of_order_append_rejects_the_whole_batch() {
    let dir = TempDir::new().unwrap();
    let path = wallet_in(&dir);
    let mut store = WalletStore::create(&path, PIN, FAST).unwrap();
    store.apply(&every_write()[0]).unwrap();
    let before = store.load().unwrap();
    let bad = batch(vec![
        Write::PutMeta {
            key: "half".into(),
            value: vec![1],
        },
        Write::AppendChain {
            seq: 9,
            entry: vec![],
        },
        Write::AppendChain {
            seq: 11,
            entry: vec![],
        },
    ]);
    let err = store.apply(&bad).unwrap_err();
    let StoreError::ChainOrder(order) = err else {
        panic!("expected ChainOrder, got {err:?}");
    };
    let mut model = before.clone();
    assert_eq!(model.apply(&bad), Err(order));
    assert_eq!(store.load().unwrap(), before);
    drop(store);
    assert_eq!(
        WalletStore::open(&path, PIN).unwrap().load().unwrap(),
        before
    );
}

#[test]
fn chain_uses_the_whole_u64_range() {
    let dir = TempDir::new().unwrap();
    let mut store = WalletStore::create(&wallet_in(&dir), PIN, FAST).unwrap();
    let top = u64::MAX;
    store
        .apply(&batch(
            (top - 2..=top)
                .map(|seq| Write::AppendChain {
                    seq,
                    entry: seq.to_le_bytes().to_vec(),
                })
                .collect(),
        ))
        .unwrap();
    let err = store
        .apply(&batch(vec![Write::AppendChain {
            seq: 0,
            entry: vec![],
        }]))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::ChainOrder(ref e) if e.last == top && e.seq == 0),
        "{err:?}"
    );
    let all = store.chain_since(None).unwrap();
    assert_eq!(
        all.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [top - 2, top - 1, top]
    );
    assert_eq!(store.chain_since(Some(top - 2)).unwrap(), all[1..].to_vec());
    assert_eq!(store.chain_since(Some(top)).unwrap(), vec![]);
    // i64::MAX and its neighbours sort as unsigned numbers.
    assert_eq!(store.chain_since(Some(1 << 63)).unwrap(), all);
}

#[test]
fn chain_since_returns_the_tail_in_order() {
    let dir = TempDir::new().unwrap();
    let mut store = WalletStore::create(&wallet_in(&dir), PIN, FAST).unwrap();
    assert_eq!(store.chain_since(None).unwrap(), vec![]);
    for seq in 0..5u64 {
        store
            .apply(&batch(vec![Write::AppendChain {
                seq,
                entry: vec![u8::try_from(seq).unwrap(); 3],
            }]))
            .unwrap();
    }
    let tail = store.chain_since(Some(2)).unwrap();
    assert_eq!(tail, vec![(3, vec![3; 3]), (4, vec![4; 3])]);
    assert_eq!(store.chain_since(None).unwrap().len(), 5);
}

#[test]
fn wrong_pin_is_refused() {
    let dir = TempDir::new().unwrap();
    let path = wallet_in(&dir);
    let mut store = WalletStore::create(&path, PIN, FAST).unwrap();
    store.apply(&every_write()[0]).unwrap();
    drop(store);
    let err = WalletStore::open(&path, "4712").unwrap_err();
    assert!(matches!(err, StoreError::WrongPin), "{err:?}");
    assert_eq!(err.to_string(), "wrong PIN");
    // A refused PIN changes nothing.
    assert_eq!(
        WalletStore::open(&path, PIN).unwrap().load().unwrap(),
        model_of(&every_write()[..1])
    );
}

#[test]
fn missing_wallet_or_key_file_is_not_found() {
    let dir = TempDir::new().unwrap();
    let path = wallet_in(&dir);
    let err = WalletStore::open(&path, PIN).unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { path: ref p } if *p == path),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("wallet file not found at "));

    drop(WalletStore::create(&path, PIN, FAST).unwrap());
    fs::remove_file(sidecar_path(&path)).unwrap();
    let err = WalletStore::open(&path, PIN).unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { path: ref p } if *p == sidecar_path(&path)),
        "{err:?}"
    );
}

#[test]
fn database_is_encrypted_on_disk() {
    let dir = TempDir::new().unwrap();
    let path = wallet_in(&dir);
    let mut store = WalletStore::create(&path, PIN, FAST).unwrap();
    store.apply(&every_write()[0]).unwrap();
    // While open, the marker sits in the WAL: encrypted there too.
    assert!(fs::metadata(format!("{}-wal", path.display())).is_ok());
    assert!(!contains(&raw_bytes_of_wallet(&path), MARKER));
    assert!(!contains(&raw_bytes_of_wallet(&path), b"identity"));
    drop(store);
    let raw = raw_bytes_of_wallet(&path);
    assert!(raw.len() > 4096);
    assert!(!contains(&raw, MARKER));
    assert!(!contains(&raw, b"SQLite format 3"));
    assert!(!contains(&raw, b"CREATE TABLE"));

    // Plain SQLite (no key) cannot read it.
    let plain = rusqlite::Connection::open(&path).unwrap();
    let err = plain
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap_err();
    assert_eq!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase),
        "{err:?}"
    );
}

#[test]
fn pragmas_are_wal_full_and_foreign_keys() {
    let dir = TempDir::new().unwrap();
    let path = wallet_in(&dir);
    drop(WalletStore::create(&path, PIN, FAST).unwrap());
    let store = WalletStore::open(&path, PIN).unwrap();
    let d = store.diagnostics().unwrap();
    assert_eq!(d.journal_mode, "wal");
    assert_eq!(d.synchronous, 2);
    assert!(d.foreign_keys);
    assert_eq!(d.schema_version, 1);
    assert!(!d.cipher_version.is_empty(), "{d:?}");
    assert_eq!(d.kdf_params, FAST);
}

#[test]
fn damaged_key_file_is_a_typed_error() {
    let dir = TempDir::new().unwrap();
    let path = wallet_in(&dir);
    drop(WalletStore::create(&path, PIN, FAST).unwrap());
    let kdf = sidecar_path(&path);
    let good = fs::read(&kdf).unwrap();
    type Expect = fn(&SidecarProblem) -> bool;
    let cases: Vec<(Vec<u8>, Expect)> = vec![
        (vec![], |p| {
            matches!(p, SidecarProblem::WrongLength { found: 0, .. })
        }),
        (good[..10].to_vec(), |p| {
            matches!(p, SidecarProblem::WrongLength { found: 10, .. })
        }),
        ([good.clone(), vec![0]].concat(), |p| {
            matches!(p, SidecarProblem::WrongLength { .. })
        }),
        (vec![0xff; 1 << 20], |p| {
            matches!(p, SidecarProblem::WrongLength { .. })
        }),
        (
            {
                let mut b = good.clone();
                b[0] = b'X';
                b
            },
            |p| *p == SidecarProblem::BadMagic,
        ),
        (
            {
                let mut b = good.clone();
                b[8] = 2;
                b
            },
            |p| *p == SidecarProblem::UnsupportedVersion(2),
        ),
        (
            {
                let mut b = good.clone();
                b[25] ^= 1; // a salt bit
                b
            },
            |p| *p == SidecarProblem::BadChecksum,
        ),
    ];
    for (bytes, expected) in cases {
        fs::write(&kdf, &bytes).unwrap();
        match WalletStore::open(&path, PIN) {
            Err(StoreError::CorruptSidecar { path: p, problem }) => {
                assert_eq!(p, kdf);
                assert!(expected(&problem), "{problem:?}");
            }
            other => panic!("expected CorruptSidecar, got {other:?}"),
        }
    }
    fs::write(&kdf, &good).unwrap();
    WalletStore::open(&path, PIN).unwrap();
}

#[test]
fn key_file_with_params_out_of_range_is_refused() {
    let dir = TempDir::new().unwrap();
    let path = wallet_in(&dir);
    let too_weak = KdfParams {
        memory_kib: 8,
        ..FAST
    };
    let err = WalletStore::create(&path, PIN, too_weak).unwrap_err();
    assert!(
        matches!(err, StoreError::KdfParamsOutOfRange { .. }),
        "{err:?}"
    );
    assert!(!path.exists());
    assert!(!sidecar_path(&path).exists());
}

#[test]
fn change_pin_switches_pins() {
    let dir = TempDir::new().unwrap();
    let path = wallet_in(&dir);
    let batches = every_write();
    let mut store = WalletStore::create(&path, PIN, FAST).unwrap();
    store.apply(&batches[0]).unwrap();
    let old_sidecar = fs::read(sidecar_path(&path)).unwrap();
    let new_params = KdfParams {
        memory_kib: 128,
        iterations: 2,
        parallelism: 2,
    };
    store.change_pin("90210", new_params).unwrap();
    // Still usable, and still WAL.
    store.apply(&batches[1]).unwrap();
    assert_eq!(store.diagnostics().unwrap().journal_mode, "wal");
    assert_eq!(store.diagnostics().unwrap().kdf_params, new_params);
    drop(store);
    assert_ne!(fs::read(sidecar_path(&path)).unwrap(), old_sidecar);
    assert!(!Path::new(&format!("{}.kdf.new", path.display())).exists());
    let err = WalletStore::open(&path, PIN).unwrap_err();
    assert!(matches!(err, StoreError::WrongPin), "{err:?}");
    let store = WalletStore::open(&path, "90210").unwrap();
    assert_eq!(store.load().unwrap(), model_of(&batches));
    assert!(!contains(&raw_bytes_of_wallet(&path), MARKER));
    assert!(matches!(
        WalletStore::open(&path, "").unwrap_err(),
        StoreError::WrongPin
    ));
}

#[test]
fn change_pin_interrupted_before_rekey_keeps_the_old_pin() {
    let dir = TempDir::new().unwrap();
    let path = wallet_in(&dir);
    let mut store = WalletStore::create(&path, PIN, FAST).unwrap();
    store.apply(&every_write()[0]).unwrap();
    drop(store);
    // What a crash after writing the pending key file leaves: a valid key
    // file for another PIN and salt, but the database still on the old key.
    let pending = PathBuf::from(format!("{}.kdf.new", path.display()));
    let other = dir.path().join("other.db");
    drop(WalletStore::create(&other, "1111", FAST).unwrap());
    fs::copy(sidecar_path(&other), &pending).unwrap();

    assert!(matches!(
        WalletStore::open(&path, "1111").unwrap_err(),
        StoreError::WrongPin
    ));
    let store = WalletStore::open(&path, PIN).unwrap();
    assert!(!pending.exists());
    assert_eq!(store.load().unwrap(), model_of(&every_write()[..1]));
}

#[test]
fn change_pin_interrupted_after_rekey_is_finished_by_open() {
    let dir = TempDir::new().unwrap();
    let path = wallet_in(&dir);
    let mut store = WalletStore::create(&path, PIN, FAST).unwrap();
    store.apply(&every_write()[0]).unwrap();
    let old_sidecar = fs::read(sidecar_path(&path)).unwrap();
    store.change_pin("2222", FAST).unwrap();
    drop(store);
    // What a crash after the rekey but before the rename leaves.
    let pending = PathBuf::from(format!("{}.kdf.new", path.display()));
    fs::rename(sidecar_path(&path), &pending).unwrap();
    fs::write(sidecar_path(&path), &old_sidecar).unwrap();

    assert!(matches!(
        WalletStore::open(&path, PIN).unwrap_err(),
        StoreError::WrongPin
    ));
    let store = WalletStore::open(&path, "2222").unwrap();
    assert!(!pending.exists());
    assert_eq!(store.load().unwrap(), model_of(&every_write()[..1]));
    drop(store);
    WalletStore::open(&path, "2222").unwrap();
}

#[test]
fn backup_opens_with_the_same_pin_and_holds_the_same_snapshot() {
    let dir = TempDir::new().unwrap();
    let path = wallet_in(&dir);
    let batches = every_write();
    let mut store = WalletStore::create(&path, PIN, FAST).unwrap();
    for b in &batches {
        store.apply(b).unwrap();
    }
    let dest = dir.path().join("backup.db");
    store.backup_to(&dest).unwrap();
    // The source goes on independently.
    store
        .apply(&batch(vec![Write::PutMeta {
            key: "after-backup".into(),
            value: vec![],
        }]))
        .unwrap();

    let raw = fs::read(&dest).unwrap();
    assert!(!contains(&raw, MARKER));
    assert!(!Path::new(&format!("{}.partial", dest.display())).exists());
    assert_eq!(
        fs::read(sidecar_path(&dest)).unwrap(),
        fs::read(sidecar_path(&path)).unwrap()
    );
    assert!(matches!(
        WalletStore::open(&dest, "0000").unwrap_err(),
        StoreError::WrongPin
    ));
    let copy = WalletStore::open(&dest, PIN).unwrap();
    assert_eq!(copy.load().unwrap(), model_of(&batches));
    assert_eq!(copy.diagnostics().unwrap().journal_mode, "wal");

    let err = store.backup_to(&dest).unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err:?}");
}

#[test]
fn backup_of_a_rekeyed_wallet_uses_the_new_pin() {
    let dir = TempDir::new().unwrap();
    let path = wallet_in(&dir);
    let mut store = WalletStore::create(&path, PIN, FAST).unwrap();
    store.apply(&every_write()[0]).unwrap();
    store.change_pin("5555", FAST).unwrap();
    let dest = dir.path().join("backup.db");
    store.backup_to(&dest).unwrap();
    let copy = WalletStore::open(&dest, "5555").unwrap();
    assert_eq!(copy.load().unwrap(), model_of(&every_write()[..1]));
}

#[test]
fn create_over_an_existing_wallet_fails() {
    let dir = TempDir::new().unwrap();
    let path = wallet_in(&dir);
    let mut store = WalletStore::create(&path, PIN, FAST).unwrap();
    store.apply(&every_write()[0]).unwrap();
    drop(store);
    let sidecar_before = fs::read(sidecar_path(&path)).unwrap();

    let err = WalletStore::create(&path, "9999", FAST).unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err:?}");
    assert!(err.to_string().starts_with("a wallet already exists at "));

    // A key file alone also blocks creation (and is left alone).
    let lone = dir.path().join("lone.db");
    fs::write(sidecar_path(&lone), b"x").unwrap();
    let err = WalletStore::create(&lone, "9999", FAST).unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err:?}");
    assert!(!lone.exists());

    assert_eq!(fs::read(sidecar_path(&path)).unwrap(), sidecar_before);
    assert_eq!(
        WalletStore::open(&path, PIN).unwrap().load().unwrap(),
        model_of(&every_write()[..1])
    );
}

#[test]
fn empty_pin_is_refused() {
    let dir = TempDir::new().unwrap();
    let path = wallet_in(&dir);
    assert!(matches!(
        WalletStore::create(&path, "", FAST).unwrap_err(),
        StoreError::EmptyPin
    ));
    let mut store = WalletStore::create(&path, PIN, FAST).unwrap();
    assert!(matches!(
        store.change_pin("", FAST).unwrap_err(),
        StoreError::EmptyPin
    ));
}

#[test]
fn errors_never_show_the_pin() {
    let dir = TempDir::new().unwrap();
    let path = wallet_in(&dir);
    let secret_pin = "secret-pin-31337";
    let store = WalletStore::create(&path, secret_pin, FAST).unwrap();
    assert!(!format!("{store:?}").contains(secret_pin));
    drop(store);
    let err = WalletStore::open(&path, "another-secret-pin").unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("secret"), "{shown}");
}
