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

use crate::harness::{BANK_OPERATOR_TOKEN, Network, OPERATOR_TOKEN, Transport, Which};

/// Every kind of service (bank, CPP, MPP, DC) answers over TLS to a client
/// trusting the network's CA, with and without a token.
#[tokio::test]
async fn every_service_kind_answers_over_tls() {
    for_each_backend(|db| async move {
        let net = Network::start(db, 10_000).await;
        assert_eq!(net.transport, Transport::Tls);
        for name in ["cpp1", "mpp1", "dc-eu"] {
            assert!(net.url(name).starts_with("https://"));
        }
        net.cpp.health().await.expect("CPP over TLS");
        let cpp = net.cpp.identity().await.expect("CPP identity over TLS");
        assert_eq!(cpp.name, "cpp1");
        net.bob.client.health().await.expect("MPP over TLS");
        let dc = net.dc("dc-eu");
        dc.health().await.expect("DC over TLS");
        assert_eq!(dc.identity().await.expect("DC identity").name, "dc-eu");
        let bank_url = net.directory.banks[0].url.clone();
        assert!(bank_url.starts_with("https://"));
        let bank = mpay_bank::BankClient::with_http(&bank_url, net.http.clone())
            .with_token(BANK_OPERATOR_TOKEN);
        bank.health().await.expect("bank over TLS");
        bank.books()
            .await
            .expect("an operator's token travels over TLS");
        // A token over TLS, end to end: a payment moves money.
        let mut net = net;
        let status = net.pay(Which::Bob, 2_00, [3; 16]).await;
        net.notice(Which::Bob, &status.payment_id).await;
        let decision = net.decision(Which::Bob, &status.payment_id, true);
        net.bob
            .client
            .decide(&net.bob.token, &decision)
            .await
            .expect("decides over TLS");
        assert_eq!(
            net.final_status(&status.payment_id).await.state,
            "completed"
        );
        net.check_conservation().await;
        net.shutdown().await;
    })
    .await;
}

/// A client that does not trust the network's CA (another CA, or none)
/// cannot talk to any service: the handshake fails before a byte of a
/// request, token or not, is sent.
#[tokio::test]
async fn a_client_trusting_another_ca_is_refused() {
    for_each_backend(|db| async move {
        let net = Network::start(db, 10_000).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let other = mpay_tls::Ca::generate("another CA", 3_600).expect("CA");
        let other_pem = dir.path().join("other.pem");
        std::fs::write(&other_pem, other.cert_pem()).expect("write");
        let strangers = [
            mpay_tls::http_client(Some(&other_pem), Duration::from_secs(5)).expect("client"),
            mpay_tls::http_client(None, Duration::from_secs(5)).expect("client"),
        ];
        for http in strangers {
            let cpp = mpay_network::CppClient::with_http(&net.url("cpp1"), http.clone());
            assert!(
                matches!(
                    cpp.health().await,
                    Err(mpay_network::ClientError::Unreachable { .. })
                ),
                "the CPP's certificate is not trusted"
            );
            let bank = mpay_bank::BankClient::with_http(&net.directory.banks[0].url, http)
                .with_token(BANK_OPERATOR_TOKEN);
            assert!(
                matches!(
                    bank.books().await,
                    Err(mpay_bank::ClientError::Unreachable { .. })
                ),
                "the bank's certificate is not trusted"
            );
        }
        net.shutdown().await;
    })
    .await;
}

/// A token is never sent over plaintext `http://` by default: the client
/// refuses before connecting (here to a listener that records whatever
/// reaches it). With plaintext explicitly allowed it goes to a loopback
/// host, and still never to any other host.
#[tokio::test]
async fn a_token_never_crosses_plaintext_unless_allowed_on_loopback() {
    mpay_tls::install_ring_provider();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&seen);
    let recorder = Router::new().fallback(move || {
        let counter = Arc::clone(&counter);
        async move {
            counter.fetch_add(1, SeqCst);
            axum::Json(serde_json::json!({"status": "ok"}))
        }
    });
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, recorder).await;
    });
    let http = mpay_tls::http_client(None, Duration::from_secs(5)).expect("client");
    let base = format!("http://{addr}");

    let cpp = mpay_network::CppClient::with_http(&base, http.clone())
        .with_plaintext(mpay_tls::Plaintext::Refuse);
    let refused = cpp.unlock(OPERATOR_TOKEN, "alice").await;
    assert!(
        matches!(refused, Err(mpay_network::ClientError::Transport(_))),
        "{refused:?}"
    );
    let bank = mpay_bank::BankClient::with_http(&base, http.clone())
        .with_token(BANK_OPERATOR_TOKEN)
        .with_plaintext(mpay_tls::Plaintext::Refuse);
    let refused = bank.books().await;
    assert!(
        matches!(refused, Err(mpay_bank::ClientError::Transport(_))),
        "{refused:?}"
    );
    assert_eq!(seen.load(SeqCst), 0, "a token reached a plaintext listener");

    // A request without a token is not affected.
    cpp.health().await.expect("no token, plaintext is fine");
    assert_eq!(seen.load(SeqCst), 1);

    // Allowed on loopback: the token goes.
    let allowed = mpay_bank::BankClient::with_http(&base, http.clone())
        .with_token(BANK_OPERATOR_TOKEN)
        .with_plaintext(mpay_tls::Plaintext::AllowLoopback);
    let _ = allowed.books().await;
    assert_eq!(seen.load(SeqCst), 2, "allowed on loopback");

    // Never to a host that is not loopback, whatever the setting.
    let remote = mpay_bank::BankClient::with_http("http://192.0.2.1:7801", http)
        .with_token(BANK_OPERATOR_TOKEN)
        .with_plaintext(mpay_tls::Plaintext::AllowLoopback);
    assert!(matches!(
        remote.books().await,
        Err(mpay_bank::ClientError::Transport(_))
    ));
    server.abort();
}

/// An impostor in mpp1's place answers every inbox delivery with 200 and an
/// acknowledgement that mpp1 did not sign: first a bare `{"outcome"}` (what
/// a receiver answered before acks were signed), then one sealed with keys
/// that are not mpp1's. The DC must keep the notice in its outbox, and
/// deliver it once the real mpp1 is back, so the payment completes and no
/// money is made or lost. The network runs on plaintext (tokens allowed
/// on loopback), so the impostor needs no certificate: the signed ack is
/// what stops it, whatever the transport.
#[tokio::test]
async fn a_forged_or_unsigned_inbox_ack_does_not_mark_a_frame_delivered() {
    for_each_backend(|db| async move {
        let mut net = Network::start_with(
            db,
            15_000,
            mpay_network::MicroConfig::default(),
            Transport::Plaintext,
        )
        .await;
        // A first payment to bob, so the CPP knows his certificate and
        // the impostor has only inbox deliveries to answer.
        let first = net.pay(Which::Bob, 1_00, [8; 16]).await;
        net.notice(Which::Bob, &first.payment_id).await;
        net.decide(Which::Bob, &first.payment_id, true).await;
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
        net.decide(Which::Bob, &status.payment_id, true).await;
        assert_eq!(
            net.final_status(&status.payment_id).await.state,
            "completed"
        );
        net.check_conservation().await;
        net.shutdown().await;
    })
    .await;
}
