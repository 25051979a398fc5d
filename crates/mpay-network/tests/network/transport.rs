//! Transport: what an on-path party between two services can and cannot do.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use axum::Router;
use mpay_identity::{PartyId, SecretKeys, Suite, hex_string};
use mpay_sql::outbox;
use mpay_sql::testing::for_each_backend;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::harness::{Network, Which};

/// An impostor in mpp1's place answers every inbox delivery with 200 and an
/// acknowledgement that mpp1 did not sign: first a bare `{"outcome"}` (what
/// a receiver answered before acks were signed), then one sealed with keys
/// that are not mpp1's. The DC must keep the notice in its outbox, and
/// deliver it once the real mpp1 is back, so the payment completes and no
/// money is made or lost.
#[tokio::test]
async fn a_forged_or_unsigned_inbox_ack_does_not_mark_a_frame_delivered() {
    for_each_backend(|db| async move {
        let mut net = Network::start(db, 15_000).await;
        // A first payment to bob, so the CPP knows his certificate and
        // the impostor has only inbox deliveries to answer.
        let first = net.pay(Which::Bob, 1_00, [8; 16]).await;
        net.notice(Which::Bob, &first.payment_id).await;
        let decision = net.decision(Which::Bob, &first.payment_id, true);
        net.bob
            .client
            .decide(&net.bob.token, &decision)
            .await
            .expect("decides");
        assert_eq!(net.final_status(&first.payment_id).await.state, "completed");
        net.check_conservation().await;
        // The impostor answers mpp1's public identity as mpp1 does (it is
        // public), and every other request with a 200 "ack".
        let identity = net.bob.client.identity().await.expect("mpp1's identity");
        net.stop_service("mpp1").await;
        let addr = net.addrs["mpp1"];
        let mut bound = None;
        for _ in 0..50 {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => {
                    bound = Some(l);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let listener = bound.expect("the impostor binds mpp1's address");
        let hits = Arc::new(AtomicU64::new(0));
        let mpp1 = PartyId::from_hex(&net.directory.service("mpp1").expect("mpp1").id).expect("id");
        let dc = net.directory.service("dc-eu").expect("dc-eu").clone();
        let dc_id = PartyId::from_hex(&dc.id).expect("id");
        let dc_keys = net.keys["dc-eu"].public();
        let counter = Arc::clone(&hits);
        let impostor = Router::new()
            .route(
                "/v1/identity",
                axum::routing::get(move || {
                    let identity = identity.clone();
                    async move { axum::Json(identity) }
                }),
            )
            .fallback(move || {
                let counter = Arc::clone(&counter);
                async move {
                    let n = counter.fetch_add(1, SeqCst);
                    let mut rng = ChaCha20Rng::seed_from_u64(n);
                    let wrong_keys = SecretKeys::generate(Suite::Ed25519X25519, &mut rng);
                    let forged = mpay_semops::seal_payload(
                        mpay_network::INBOX_ACK,
                        &mpay_network::InboxAck {
                            frame_hash: [0; 32],
                            outcome: "accepted".into(),
                        },
                        &wrong_keys,
                        mpp1,
                        dc_id,
                        &dc_keys,
                        [0; 16],
                        mpay_network::wall_clock(),
                        &mut rng,
                    )
                    .expect("seals");
                    let body = if n.is_multiple_of(2) {
                        serde_json::json!({"outcome": "accepted"})
                    } else {
                        serde_json::json!({"outcome": "accepted", "ack": hex_string(&forged)})
                    };
                    axum::Json(body)
                }
            });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, impostor).await;
        });

        let status = net.pay(Which::Bob, 5_00, [9; 16]).await;
        assert_eq!(status.state, "pending", "{status:?}");
        net.eventually("the impostor to be asked twice", || async {
            hits.load(SeqCst) >= 2
        })
        .await;
        assert!(
            outbox::pending_count(net.db("dc-eu"))
                .await
                .expect("outbox")
                > 0,
            "the DC took an acknowledgement mpp1 never signed as delivery"
        );

        server.abort();
        let _ = server.await;
        net.start_service("mpp1", None).await;
        let notice = net.notice(Which::Bob, &status.payment_id).await;
        assert_eq!(notice.amount, "5.00 EUR");
        let decision = net.decision(Which::Bob, &status.payment_id, true);
        net.bob
            .client
            .decide(&net.bob.token, &decision)
            .await
            .expect("decides");
        assert_eq!(
            net.final_status(&status.payment_id).await.state,
            "completed"
        );
        net.check_conservation().await;
        net.shutdown().await;
    })
    .await;
}
