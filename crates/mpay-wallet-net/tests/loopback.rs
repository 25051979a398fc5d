//! Wallet nodes on real UDP sockets on loopback, each with its own encrypted
//! store on disk, in threads of this process. Real time runs: the engine
//! config has short retry intervals (common::engine_config).

mod common;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::thread;
use std::time::{Duration, Instant};

use common::{Fixture, PIN, engine_config, eur, intent, loopback, settle_together};
use mpay_envelope::FRAME_LEN_MAX;
use mpay_offline::messages::AbortReason;
use mpay_wallet_net::{
    BroadcastTo, DropKnob, NodeConfig, NodeError, PurchaseOutcome, RefusalKind, SaleOutcome,
    UnknownPeerRoute, WalletNode,
};
use mpay_wallet_store::{WalletStore, Write, WriteBatch};

const LOOKUP_WAIT: Duration = Duration::from_millis(800);

fn secs(s: f64) -> Instant {
    Instant::now() + Duration::from_secs_f64(s)
}

#[test]
fn purchase_completes_and_conserves_money() {
    let mut fx = Fixture::new(1);
    let mut seller = fx.node(1, loopback(47_711));
    let mut buyer = fx.node(2, loopback(47_711));
    fx.charge(&mut buyer, eur(5_000));
    let seller_id = seller.id();

    let buyer_thread = thread::spawn(move || {
        let mut requests = Vec::new();
        let outcome = buyer.buy(intent(1_000, Some(seller_id)), secs(5.0), |r| {
            requests.push(r.clone())
        });
        buyer.run_for(Duration::from_millis(200)).expect("serve");
        (buyer, outcome, requests)
    });
    let sale = seller
        .sell(eur(750), "coffee", None, LOOKUP_WAIT, secs(5.0))
        .expect("sale");
    let (buyer, purchase, requests) = buyer_thread.join().expect("buyer thread");

    let SaleOutcome::Completed {
        tx,
        buyer: to,
        amount,
    } = sale
    else {
        panic!("sale did not complete: {sale:?}");
    };
    assert_eq!((to, amount), (buyer.id(), eur(750)));
    assert_eq!(
        purchase.expect("purchase"),
        PurchaseOutcome::Paid {
            tx,
            seller: seller_id,
            amount: eur(750)
        }
    );
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].description, "coffee");
    assert!(requests[0].accepted);

    assert!(seller.wallet().received(&tx) && buyer.wallet().paid(&tx));
    assert_eq!(seller.wallet().balance(), eur(750));
    assert_eq!(buyer.wallet().balance(), eur(4_250));
    fx.assert_conserved(&[&seller, &buyer]);
    // Addresses learned from verified frames, both ways.
    assert_eq!(seller.peer_address(buyer.id()), Some(buyer.local_addr()));
    assert_eq!(buyer.peer_address(seller_id), Some(seller.local_addr()));
    // Four durable writes per transfer (+ the buyer's charge), fsync timed.
    let (s, b) = (seller.stats(), buyer.stats());
    assert_eq!(s.writes + b.writes, 5, "{s:?} {b:?}");
    assert!(s.fsync_time > Duration::ZERO && s.fsync_time_max <= s.fsync_time);
    assert!(s.own_echoes >= 1, "the seller hears its own LOOKUP: {s:?}");
    assert_eq!(s.refused.total() + b.refused.total(), 0, "{s:?} {b:?}");

    // The store agrees with memory: a wallet recovered from it has the same
    // balances.
    drop(seller);
    let reopened = WalletStore::open(&fx.store_path(1), PIN).expect("open");
    let snapshot = reopened.load().expect("load");
    let recovered =
        mpay_offline::Wallet::recover(engine_config(), &snapshot, 9, mpay_wallet_net::wall_clock())
            .expect("recover");
    assert_eq!(recovered.balance(), eur(750));
}

#[test]
fn lossy_link_purchases_agree() {
    const PURCHASES: u64 = 8;
    // Each direction of the link loses 30 %: first by each side dropping
    // what it sends, then by each side dropping what it receives.
    let knob = |round: u64, seed: u64| {
        let permille = 300;
        let (inbound_permille, outbound_permille) = if round < PURCHASES / 2 {
            (0, permille)
        } else {
            (permille, 0)
        };
        DropKnob {
            inbound_permille,
            outbound_permille,
            seed: seed * 100 + round,
        }
    };
    let mut fx = Fixture::new(2);
    let mut seller = fx.node(1, loopback(47_712));
    let mut buyer = fx.node(2, loopback(47_712));
    fx.charge(&mut buyer, eur(5_000));
    let seller_id = seller.id();
    let buyer_id = buyer.id();
    let mut completed = 0;

    for round in 0..PURCHASES {
        seller.set_drop(knob(round, 1)).expect("knob");
        buyer.set_drop(knob(round, 2)).expect("knob");
        let settled = Arc::new(AtomicUsize::new(0));
        let buyer_settled = Arc::clone(&settled);
        let deadline = secs(6.0);
        let buyer_thread = thread::spawn(move || {
            let outcome = buyer.buy(intent(1_000, Some(seller_id)), secs(4.0), |_| {});
            settle_together(&mut buyer, &buyer_settled, 2, deadline);
            (buyer, outcome)
        });
        let sale = seller.sell(
            eur(100),
            "bread",
            Some(buyer_id),
            Duration::from_secs(2),
            secs(4.0),
        );
        settle_together(&mut seller, &settled, 2, deadline);
        let (b, purchase) = buyer_thread.join().expect("buyer thread");
        buyer = b;

        // Whatever each side's operation reported, once settled both hold
        // the same outcome.
        let tx = match (&sale, &purchase) {
            (Ok(SaleOutcome::Completed { tx, .. }), _)
            | (Ok(SaleOutcome::CommittedUnacknowledged { tx, .. }), _)
            | (Err(NodeError::BuyerRefused { tx, .. }), _)
            | (Err(NodeError::BuyerSilent { tx }), _)
            | (Err(NodeError::Timeout { tx: Some(tx), .. }), _) => Some(*tx),
            (Err(NodeError::BuyerNotNearby(_)), _) => None,
            other => panic!("round {round}: unexpected {other:?}"),
        };
        if let Some(tx) = tx {
            let received = seller.wallet().received(&tx);
            assert_eq!(
                received,
                buyer.wallet().paid(&tx),
                "round {round}: seller and buyer disagree on {tx:?} ({sale:?} / {purchase:?})"
            );
            if received {
                completed += 1;
                assert!(
                    !matches!(purchase, Ok(PurchaseOutcome::Aborted { .. })),
                    "round {round}: the buyer was told aborted but paid"
                );
            } else {
                assert!(
                    !matches!(purchase, Ok(PurchaseOutcome::Paid { .. })),
                    "round {round}: the buyer was told paid but the seller has nothing"
                );
            }
        }
        eprintln!("round {round}: {sale:?} / {purchase:?}");
        assert_eq!(
            buyer.wallet().locked(),
            eur(0),
            "round {round}: funds left locked"
        );
        fx.assert_conserved(&[&seller, &buyer]);
    }
    assert_eq!(
        seller.wallet().balance(),
        eur(100 * completed),
        "the seller holds exactly the completed sales"
    );
    let (s, b) = (seller.stats(), buyer.stats());
    eprintln!("seller {s:?}\nbuyer {b:?}");
    assert!(
        s.dropped_outbound > 0
            && b.dropped_outbound > 0
            && s.dropped_inbound > 0
            && b.dropped_inbound > 0,
        "{s:?} {b:?}"
    );
}

#[test]
fn seller_sees_two_buyers_and_sells_to_the_named_one() {
    let mut fx = Fixture::new(3);
    let mut seller = fx.node(1, loopback(47_713));
    let mut buyers = vec![fx.node(2, loopback(47_713)), fx.node(3, loopback(47_713))];
    for b in &mut buyers {
        fx.charge(b, eur(1_000));
    }
    let buyer_ids: Vec<_> = buyers.iter().map(WalletNode::id).collect();
    let threads: Vec<_> = buyers
        .into_iter()
        .map(|mut b| {
            thread::spawn(move || {
                let outcome = b.buy(intent(500, None), secs(2.5), |_| {});
                b.run_for(Duration::from_millis(200)).expect("serve");
                (b, outcome)
            })
        })
        .collect();

    let first = seller
        .sell(
            eur(300),
            "book",
            None,
            Duration::from_millis(800),
            secs(4.0),
        )
        .expect("lookup");
    let SaleOutcome::ChooseBuyer { buyers: nearby } = first else {
        panic!("expected a choice of buyers, got {first:?}");
    };
    let mut sorted = nearby.clone();
    sorted.sort();
    let mut expected = buyer_ids.clone();
    expected.sort();
    assert_eq!(sorted, expected, "the seller sees both buyers");

    let chosen = buyer_ids[1];
    let sale = seller
        .sell(eur(300), "book", Some(chosen), LOOKUP_WAIT, secs(4.0))
        .expect("sale");
    assert!(
        matches!(sale, SaleOutcome::Completed { buyer, .. } if buyer == chosen),
        "{sale:?}"
    );
    let results: Vec<_> = threads
        .into_iter()
        .map(|t| t.join().expect("buyer thread"))
        .collect();
    for (b, outcome) in &results {
        if b.id() == chosen {
            assert!(
                matches!(outcome, Ok(PurchaseOutcome::Paid { .. })),
                "{outcome:?}"
            );
            assert_eq!(b.wallet().balance(), eur(700));
        } else {
            assert!(
                matches!(outcome, Err(NodeError::Timeout { tx: None, .. })),
                "the other buyer was never asked: {outcome:?}"
            );
            assert_eq!(b.wallet().balance(), eur(1_000));
            assert!(b.wallet().buy_intent().is_none(), "buyer mode ended");
        }
    }
    let nodes: Vec<&WalletNode> = std::iter::once(&seller)
        .chain(results.iter().map(|(b, _)| b))
        .collect();
    fx.assert_conserved(&nodes);
}

#[test]
fn buyer_restarted_mid_transfer_completes() {
    let mut fx = Fixture::new(4);
    let mut seller = fx.node(1, loopback(47_714));
    let mut buyer = fx.node(2, loopback(47_714));
    fx.charge(&mut buyer, eur(2_000));
    let seller_id = seller.id();
    let buyer_addr = buyer.local_addr();
    let buyer_path = fx.store_path(2);

    let buyer_thread = thread::spawn(move || {
        buyer
            .command(|w, _| w.set_buy_intent(intent(1_000, Some(seller_id))))
            .expect("intent");
        // Serve until the wallet agreed (its UNDO/REDO is durable and AGREED
        // is sent), then crash: memory and sockets are gone.
        let deadline = secs(4.0);
        while buyer.wallet().prepared_txs().next().is_none() {
            assert!(Instant::now() < deadline, "the buyer never agreed");
            buyer.step(Duration::from_millis(20)).expect("step");
        }
        drop(buyer);
        // The seller's COMMITs go nowhere for a while.
        thread::sleep(Duration::from_millis(300));
        // Restart on the same port from the store: the wallet comes back
        // uncertain, and the seller's next COMMIT resolves it.
        let mut config = loopback(47_714);
        config.bind = match buyer_addr {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => unreachable!("bound to 127.0.0.1"),
        };
        let mut restarted =
            WalletNode::open(&buyer_path, PIN, engine_config(), [22; 32], config).expect("restart");
        let (tx, _, _) = restarted
            .wallet()
            .prepared_txs()
            .next()
            .expect("prepared survives the crash");
        let settled = restarted.run_until_settled(secs(4.0)).expect("settle");
        restarted
            .run_for(Duration::from_millis(200))
            .expect("serve");
        (restarted, tx, settled)
    });
    let sale = seller
        .sell(eur(400), "lamp", None, LOOKUP_WAIT, secs(5.0))
        .expect("sale");
    let (buyer, tx, settled) = buyer_thread.join().expect("buyer thread");
    assert!(settled);
    assert_eq!(
        sale,
        SaleOutcome::Completed {
            tx,
            buyer: buyer.id(),
            amount: eur(400)
        }
    );
    assert!(buyer.wallet().paid(&tx) && seller.wallet().received(&tx));
    assert!(seller.stats().frames_sent >= 3, "COMMIT was resent");
    fx.assert_conserved(&[&seller, &buyer]);
}

#[test]
fn seller_restarted_after_commit_reaches_buyer_via_broadcast_route() {
    let mut fx = Fixture::new(5);
    let mut seller_config = loopback(47_715);
    seller_config.unknown_peer = UnknownPeerRoute::ViaBroadcast;
    let mut seller = fx.node(1, seller_config.clone());
    let mut buyer = fx.node(2, loopback(47_715));
    fx.charge(&mut buyer, eur(2_000));
    let seller_id = seller.id();
    let buyer_id = buyer.id();

    let settled = Arc::new(AtomicUsize::new(0));
    let buyer_settled = Arc::clone(&settled);
    let buyer_thread = thread::spawn(move || {
        let outcome = buyer.buy(intent(1_000, Some(seller_id)), secs(4.0), |_| {});
        settle_together(&mut buyer, &buyer_settled, 2, secs(6.0));
        (buyer, outcome)
    });

    // The seller finds the buyer and sells, but crashes as soon as the sale
    // is committed (its COMMIT record is durable), before it hears COMMITTED.
    let lookup_until = Instant::now() + LOOKUP_WAIT;
    while !seller.wallet().nearby_buyers().contains(&buyer_id) {
        assert!(Instant::now() < lookup_until, "buyer not found");
        seller.command(|w, now| w.lookup(now)).expect("lookup");
        seller.step(Duration::from_millis(100)).expect("step");
    }
    let tx = seller
        .command(|w, now| w.sell(now, buyer_id, eur(250), "pen"))
        .expect("command")
        .expect("sell");
    while !seller.wallet().received(&tx) {
        seller.step(Duration::from_millis(20)).expect("step");
    }
    drop(seller);

    // Back on a new port with no address book: the COMMIT it resends for the
    // committed sale goes via the group, sealed to the buyer, which answers.
    let mut restarted = WalletNode::open(
        &fx.store_path(1),
        PIN,
        engine_config(),
        [33; 32],
        seller_config,
    )
    .expect("restart");
    assert_eq!(
        restarted.wallet().committing_txs().collect::<Vec<_>>(),
        vec![tx]
    );
    settle_together(&mut restarted, &settled, 2, secs(6.0));
    let (buyer, purchase) = buyer_thread.join().expect("buyer thread");

    assert!(matches!(purchase, Ok(PurchaseOutcome::Paid { tx: t, .. }) if t == tx));
    assert!(
        restarted.wallet().committing_txs().next().is_none(),
        "COMPLETE"
    );
    assert!(restarted.wallet().received(&tx) && buyer.wallet().paid(&tx));
    let s = restarted.stats();
    assert!(s.routed_via_broadcast >= 1, "{s:?}");
    fx.assert_conserved(&[&restarted, &buyer]);
}

#[test]
fn store_failure_stops_the_node_before_it_agrees() {
    let mut fx = Fixture::new(6);
    let mut seller = fx.node(1, loopback(47_716));
    let mut buyer = fx.node(2, loopback(47_716));
    fx.charge(&mut buyer, eur(2_000));
    let seller_id = seller.id();
    // Another writer takes the buyer's next chain sequence behind the node's
    // back, so the node's next batch (the payment's UNDO/REDO) is refused.
    let mut intruder = WalletStore::open(&fx.store_path(2), PIN).expect("open");
    let next_seq = u64::try_from(buyer.wallet().chain().len()).expect("len");
    let mut batch = WriteBatch::new();
    batch.push(Write::AppendChain {
        seq: next_seq,
        entry: vec![0; 8],
    });
    intruder.apply(&batch).expect("intruder write");

    let buyer_thread = thread::spawn(move || {
        let outcome = buyer.buy(intent(1_000, Some(seller_id)), secs(4.0), |_| {});
        let after = buyer.step(Duration::from_millis(10));
        (buyer, outcome, after)
    });
    let sale = seller.sell(eur(300), "cup", None, LOOKUP_WAIT, secs(4.0));
    let (buyer, purchase, after) = buyer_thread.join().expect("buyer thread");

    assert!(
        matches!(&purchase, Err(e @ NodeError::Store(_)) if e.is_fatal()),
        "{purchase:?}"
    );
    assert!(matches!(after, Err(NodeError::Stopped)), "{after:?}");
    assert!(buyer.is_stopped());
    // Durable before visible: the AGREED that depended on the failed write
    // never left, so the seller gave up and holds nothing.
    assert!(
        matches!(sale, Err(NodeError::BuyerSilent { .. })),
        "{sale:?}"
    );
    assert_eq!(seller.wallet().balance(), eur(0));
}

#[test]
fn refusing_buyer_is_reported_with_its_reason() {
    let mut fx = Fixture::new(7);
    let mut seller = fx.node(1, loopback(47_717));
    let mut buyer = fx.node(2, loopback(47_717));
    fx.charge(&mut buyer, eur(2_000));
    let seller_id = seller.id();
    let buyer_id = buyer.id();
    let buyer_thread = thread::spawn(move || {
        let mut shown = Vec::new();
        let outcome = buyer.buy(intent(100, Some(seller_id)), secs(1.5), |r| {
            shown.push(r.clone())
        });
        (buyer, outcome, shown)
    });
    let sale = seller.sell(eur(900), "too dear", Some(buyer_id), LOOKUP_WAIT, secs(3.0));
    let (buyer, purchase, shown) = buyer_thread.join().expect("buyer thread");
    assert!(
        matches!(
            sale,
            Err(NodeError::BuyerRefused {
                reason: AbortReason::NotAgreed,
                ..
            })
        ),
        "{sale:?}"
    );
    assert!(sale.as_ref().is_err_and(NodeError::is_peer_fault));
    assert!(matches!(purchase, Err(NodeError::Timeout { tx: None, .. })));
    assert!(!shown.is_empty() && shown.iter().all(|r| !r.accepted && r.amount == eur(900)));
    fx.assert_conserved(&[&seller, &buyer]);
}

#[test]
fn buyer_with_a_stale_sync_is_not_acceptable() {
    let mut fx = Fixture::new(12);
    let mut seller = fx.node(1, loopback(47_721));
    // A certificate that wants a sync every 0 days: the genesis attestation
    // is already too old when the buyer answers.
    fx.days_between_syncs_max = 0;
    let mut buyer = fx.node(2, loopback(47_721));
    fx.charge(&mut buyer, eur(1_000));
    let (seller_id, buyer_id) = (seller.id(), buyer.id());
    let buyer_thread = thread::spawn(move || {
        let outcome = buyer.buy(intent(500, Some(seller_id)), secs(2.0), |_| {});
        (buyer, outcome)
    });
    let named = seller.sell(eur(100), "x", Some(buyer_id), LOOKUP_WAIT, secs(2.0));
    assert!(
        matches!(
            named,
            Err(NodeError::BuyerNotAcceptable { buyer, reason: AbortReason::SyncTooOld })
                if buyer == buyer_id
        ),
        "{named:?}"
    );
    let anyone = seller.sell(eur(100), "x", None, LOOKUP_WAIT, secs(2.0));
    match anyone {
        Err(NodeError::NoBuyerNearby { refused, revoked }) => {
            assert_eq!(refused, vec![(buyer_id, AbortReason::SyncTooOld)]);
            assert!(revoked.is_empty(), "{revoked:?}");
        }
        other => panic!("expected no acceptable buyer, got {other:?}"),
    }
    let (buyer, purchase) = buyer_thread.join().expect("buyer thread");
    assert!(matches!(purchase, Err(NodeError::Timeout { tx: None, .. })));
    fx.assert_conserved(&[&seller, &buyer]);
}

#[test]
fn no_buyer_nearby_when_every_datagram_is_dropped() {
    let mut fx = Fixture::new(8);
    let mut deaf = loopback(47_718);
    deaf.drop = DropKnob {
        inbound_permille: 1_000,
        outbound_permille: 0,
        seed: 1,
    };
    let mut seller = fx.node(1, deaf);
    let mut buyer = fx.node(2, loopback(47_718));
    fx.charge(&mut buyer, eur(100));
    let seller_id = seller.id();
    let buyer_thread = thread::spawn(move || {
        let outcome = buyer.buy(intent(100, Some(seller_id)), secs(1.0), |_| {});
        (buyer, outcome)
    });
    let sale = seller.sell(eur(50), "x", None, Duration::from_millis(600), secs(2.0));
    let (buyer, _) = buyer_thread.join().expect("buyer thread");
    assert!(
        matches!(sale, Err(NodeError::NoBuyerNearby { .. })),
        "{sale:?}"
    );
    let s = seller.stats();
    assert!(s.dropped_inbound > 0 && s.frames_accepted == 0, "{s:?}");
    assert!(buyer.stats().frames_sent > 0, "the buyer did answer");

    // The knob's edge: above 1000 per mille is refused.
    let over = DropKnob {
        inbound_permille: 1_001,
        outbound_permille: 0,
        seed: 0,
    };
    assert!(matches!(seller.set_drop(over), Err(NodeError::Config(_))));
    let mut config = loopback(47_718);
    config.drop = over;
    let (wallet, store) = fx.wallet(3);
    assert!(matches!(
        WalletNode::new(wallet, store, config),
        Err(NodeError::Config(_))
    ));
}

#[test]
fn wrong_size_and_garbage_datagrams_are_dropped_unopened() {
    let mut fx = Fixture::new(9);
    let mut node = fx.node(1, loopback(47_719));
    let probe = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let to = node.local_addr();
    probe.send_to(&[1; 10], to).expect("short");
    probe
        .send_to(&vec![2; FRAME_LEN_MAX + 1], to)
        .expect("long");
    probe.send_to(&[3; 200], to).expect("garbage");
    node.run_for(Duration::from_millis(300)).expect("serve");
    let s = node.stats();
    assert_eq!(s.frames_received, 3, "{s:?}");
    assert_eq!(s.dropped_size, 2, "{s:?}");
    assert_eq!(s.refused.total(), 1, "{s:?}");
    assert!(
        s.refused.get(RefusalKind::UnsupportedVersion) + s.refused.get(RefusalKind::Malformed) == 1,
        "{s:?}"
    );
    assert!(
        node.peer_address(mpay_identity::PartyId::from_u64(3))
            .is_none()
    );
}

#[test]
fn lan_broadcast_on_loopback_finds_the_buyer() {
    let lan = || {
        let mut config = NodeConfig::loopback();
        config.broadcast = BroadcastTo::Lan {
            address: SocketAddrV4::new(Ipv4Addr::new(127, 255, 255, 255), 47_720),
        };
        config
    };
    purchase_with(&mut Fixture::new(10), lan(), lan());
}

#[test]
fn peer_list_broadcast_finds_the_buyer() {
    let mut fx = Fixture::new(11);
    let mut buyer_config = NodeConfig::loopback();
    buyer_config.broadcast = BroadcastTo::Peers(Vec::new());
    // The buyer needs a fixed address for the seller's list.
    let port_holder = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let buyer_addr = port_holder.local_addr().expect("addr");
    drop(port_holder);
    buyer_config.bind = match buyer_addr {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => unreachable!("bound to 127.0.0.1"),
    };
    let mut seller_config = NodeConfig::loopback();
    seller_config.broadcast = BroadcastTo::Peers(vec![buyer_addr]);
    purchase_with(&mut fx, seller_config, buyer_config);
}

/// One purchase between a seller and a buyer configured as given.
fn purchase_with(fx: &mut Fixture, seller_config: NodeConfig, buyer_config: NodeConfig) {
    let mut seller = fx.node(1, seller_config);
    let mut buyer = fx.node(2, buyer_config);
    fx.charge(&mut buyer, eur(1_000));
    let seller_id = seller.id();
    let buyer_thread = thread::spawn(move || {
        let outcome = buyer.buy(intent(500, Some(seller_id)), secs(4.0), |_| {});
        buyer.run_for(Duration::from_millis(200)).expect("serve");
        (buyer, outcome)
    });
    let sale = seller
        .sell(eur(200), "tea", None, LOOKUP_WAIT, secs(4.0))
        .expect("sale");
    let (buyer, purchase) = buyer_thread.join().expect("buyer thread");
    assert!(matches!(sale, SaleOutcome::Completed { .. }), "{sale:?}");
    assert!(
        matches!(purchase, Ok(PurchaseOutcome::Paid { .. })),
        "{purchase:?}"
    );
    fx.assert_conserved(&[&seller, &buyer]);
}

#[test]
fn uncertain_buyer_reaches_a_seller_restarted_on_a_new_port() {
    let mut fx = Fixture::new(15);
    let seller_config = loopback(47_731);
    let mut seller = fx.node(1, seller_config.clone());
    let mut buyer_config = loopback(47_731);
    buyer_config.unknown_peer = UnknownPeerRoute::ViaBroadcast;
    let mut buyer = fx.node(2, buyer_config);
    fx.charge(&mut buyer, eur(2_000));
    let seller_id = seller.id();
    let buyer_id = buyer.id();
    let buyer_thread = thread::spawn(move || {
        let outcome = buyer.buy(intent(1_000, Some(seller_id)), secs(10.0), |_| {});
        (buyer, outcome)
    });
    let lookup_until = Instant::now() + LOOKUP_WAIT;
    while !seller.wallet().nearby_buyers().contains(&buyer_id) {
        assert!(Instant::now() < lookup_until, "buyer not found");
        seller.command(|w, now| w.lookup(now)).expect("lookup");
        seller.step(Duration::from_millis(100)).expect("step");
    }
    // The seller sends its COMMIT-REQUEST and dies before hearing AGREED.
    seller
        .command(|w, now| w.sell(now, buyer_id, eur(300), "lamp"))
        .expect("command")
        .expect("sell");
    drop(seller);
    // It comes back on a new port and has forgotten the sale (presumed
    // abort). The buyer's STATUS to the old port goes unanswered, so after a
    // few the buyer also sends it to the group, and learns the new address.
    let mut restarted = WalletNode::open(
        &fx.store_path(1),
        PIN,
        engine_config(),
        [44; 32],
        seller_config,
    )
    .expect("restart");
    let deadline = secs(10.0);
    while !buyer_thread.is_finished() && Instant::now() < deadline {
        restarted.step(Duration::from_millis(50)).expect("step");
    }
    let (buyer, outcome) = buyer_thread.join().expect("buyer thread");
    assert!(
        matches!(outcome, Ok(PurchaseOutcome::Aborted { .. })),
        "{outcome:?}"
    );
    assert_eq!(buyer.wallet().locked(), eur(0));
    assert!(
        buyer.stats().routed_via_broadcast >= 1,
        "{:?}",
        buyer.stats()
    );
    fx.assert_conserved(&[&restarted, &buyer]);
}

/// Stops the operation at the first turn after `armed` is set.
struct StopWhen(Arc<std::sync::atomic::AtomicBool>);

impl mpay_wallet_net::Watch for StopWhen {
    fn turn(&mut self, _node: &WalletNode) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[test]
fn a_sale_stopped_before_the_commit_moves_nothing() {
    let mut fx = Fixture::new(11);
    let mut seller = fx.node(1, loopback(47_745));
    let mut buyer = fx.node(2, loopback(47_745));
    fx.charge(&mut buyer, eur(2_000));
    let seller_id = seller.id();
    let buyer_id = buyer.id();
    let buyer_thread = thread::spawn(move || {
        let outcome = buyer.buy(intent(1_000, Some(seller_id)), secs(4.0), |_| {});
        buyer
            .run_until_settled(secs(3.0))
            .expect("the buyer learns the outcome");
        (buyer, outcome)
    });
    let found = seller
        .find_buyers(Some(buyer_id), secs(3.0), &mut ())
        .expect("lookup");
    assert_eq!(found, mpay_wallet_net::Found::One(buyer_id));
    let tx = seller
        .start_sale(buyer_id, eur(600), "lamp")
        .expect("start");
    // The owner stops while the COMMIT-REQUEST is on its way.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sale = seller.finish_sale(tx, buyer_id, eur(600), secs(3.0), &mut StopWhen(stop));
    assert!(
        matches!(sale, Err(NodeError::Cancelled { tx: Some(t) }) if t == tx),
        "{sale:?}"
    );
    // The seller keeps answering, so a buyer that agreed learns the abort.
    assert!(seller.run_until_settled(secs(3.0)).expect("serve"));
    let (buyer, purchase) = buyer_thread.join().expect("buyer thread");
    assert!(
        matches!(
            purchase,
            Ok(PurchaseOutcome::Aborted { .. }) | Err(NodeError::Timeout { tx: None, .. })
        ),
        "{purchase:?}"
    );
    assert_eq!(seller.wallet().balance(), eur(0));
    assert_eq!(buyer.wallet().balance(), eur(2_000));
    assert_eq!(buyer.wallet().locked(), eur(0));
    fx.assert_conserved(&[&seller, &buyer]);
}

#[test]
fn a_purchase_stopped_before_agreeing_ends_buyer_mode() {
    let mut fx = Fixture::new(12);
    let mut buyer = fx.node(2, loopback(47_746));
    fx.charge(&mut buyer, eur(2_000));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let purchase = buyer.buy_watched(
        intent(1_000, None),
        None,
        secs(3.0),
        |_| {},
        &mut StopWhen(stop),
    );
    assert!(
        matches!(purchase, Err(NodeError::Cancelled { tx: None })),
        "{purchase:?}"
    );
    assert!(buyer.wallet().buy_intent().is_none());
    assert_eq!(buyer.wallet().balance(), eur(2_000));
}
