//! Attacks at the phone: a LOOKUP flood over real UDP at a node in buyer
//! mode, and a PIN brute force against the wallet store with the production
//! Argon2id cost. (Oversized and malformed datagrams at the node:
//! loopback.rs `wrong_size_and_garbage_datagrams_are_dropped_unopened`.)

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::{Fixture, PIN, intent, loopback};
use mpay_offline::{LOOKUPS_PER_WINDOW_MAX, Transmit};
use mpay_wallet_net::{RefusalKind, wall_clock};
use mpay_wallet_store::{KdfParams, StoreError, WalletStore};

#[test]
fn a_lookup_flood_over_udp_is_rate_limited() {
    let mut fx = Fixture::new(21);
    let mut buyer = fx.node(2, loopback(47_741));
    buyer
        .command(|w, _| w.set_buy_intent(intent(1_000, None)))
        .expect("buyer mode");
    // The attacker is a genuine wallet of the same office: its LOOKUPs
    // verify, so only the rate limit stops them.
    let (mut attacker, _store) = fx.wallet(1);
    let flood: u32 = 3 * LOOKUPS_PER_WINDOW_MAX;
    let mut frames: Vec<Transmit> = Vec::new();
    for _ in 0..flood {
        attacker.lookup(wall_clock());
        while let Some(t) = attacker.poll_transmit() {
            frames.push(t);
        }
    }
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let started = Instant::now();
    for f in &frames {
        socket.send_to(&f.frame, buyer.local_addr()).expect("send");
    }
    buyer.run_for(Duration::from_millis(400)).expect("serve");
    let took = started.elapsed();
    let stats = buyer.stats();
    let limited = stats.refused.get(RefusalKind::RateLimited);
    let mut replies = 0;
    let mut buf = vec![0u8; 65_536];
    while socket.recv_from(&mut buf).is_ok() {
        replies += 1;
    }
    println!(
        "LOOKUP flood: {flood} sent in {took:?}, {replies} answered, {limited} refused as rate-limited"
    );
    assert_eq!(
        u64::from(flood),
        replies + limited,
        "every LOOKUP answered or refused: {stats:?}"
    );
    // The flood took well under two windows, so at most two windows' worth
    // were answered.
    assert!(took < Duration::from_millis(1_900), "{took:?}");
    assert!(replies >= u64::from(LOOKUPS_PER_WINDOW_MAX), "{replies}");
    assert!(
        replies <= 2 * u64::from(LOOKUPS_PER_WINDOW_MAX),
        "{replies}"
    );
    // No money moved, nothing was written but the genesis.
    assert_eq!(buyer.wallet().chain().len(), 1);
    assert!(buyer.wallet().prepared_txs().next().is_none());
}

#[test]
fn a_pin_brute_force_pays_the_argon2id_cost_per_guess() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("wallet.db");
    let params = KdfParams::default();
    let store = WalletStore::create(&path, PIN, params).expect("create");
    let before = store.load().expect("load");
    drop(store);
    let guesses = ["0000", "1234", "9999", "1356", "13570"];
    let started = Instant::now();
    for guess in guesses {
        let err = WalletStore::open(&path, guess).expect_err("wrong PIN opened the wallet");
        assert!(matches!(err, StoreError::WrongPin), "{err:?}");
        assert!(!err.to_string().contains(guess), "an error shows the PIN");
    }
    let per_guess = started.elapsed() / u32::try_from(guesses.len()).unwrap_or(1);
    // What a four-digit PIN costs to search exhaustively on this machine, on
    // one core (the store derives the key once per open).
    let four_digits = per_guess * 10_000;
    println!(
        "PIN guess against Argon2id m={} KiB t={} p={}: {per_guess:?} per guess; all 10^4 four-digit PINs: {four_digits:?}",
        params.memory_kib, params.iterations, params.parallelism
    );
    // The defence is the cost: the production parameters are not the test
    // ones, and a guess is not free.
    assert_ne!(params, KdfParams::FAST_FOR_TESTS);
    assert!(params.memory_kib >= 19_456 && params.iterations >= 2);
    assert!(per_guess >= Duration::from_millis(5), "{per_guess:?}");
    // Refused guesses changed nothing.
    let store = WalletStore::open(&path, PIN).expect("right PIN opens");
    assert_eq!(store.load().expect("load"), before);
}
