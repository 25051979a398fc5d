//! Attacks on the SEMOPS services (issue 7, docs/security.md): each gets a
//! typed error and changes no state — no payment recorded, no hold placed,
//! no money moved. Runs on SQLite and PostgreSQL.

#![allow(clippy::inconsistent_digit_grouping)]

#[allow(dead_code)]
#[path = "network/harness.rs"]
mod harness;

use harness::{ALICE_DEPOSIT, Network, OPERATOR_TOKEN, PIN, Which, eur};
use mpay_identity::{PartyId, SecretKeys, Suite};
use mpay_semops::{CustomerRef, PaymentRequest, Pin, Signed, Trans, seal_pr};
use mpay_sql::testing::for_each_backend;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// Nothing happened at the CPP or the customer's bank.
async fn nothing_changed(net: &Network) {
    let payments = net
        .cpp
        .payments(OPERATOR_TOKEN, 0, 100)
        .await
        .expect("listing");
    assert!(payments.is_empty(), "no payment recorded: {payments:?}");
    assert_eq!(net.banks[0].pending_holds().await.expect("holds"), 0);
    assert_eq!(net.balance(0, "cust:alice").await, ALICE_DEPOSIT);
    net.check_conservation().await;
}

/// A customer pays "a merchant" with a TRANS the merchant never signed: a
/// TRANS signed by someone else under bob's id, and bob's real TRANS with
/// its amount changed.
#[tokio::test]
async fn a_trans_the_merchant_never_signed_is_refused() {
    for_each_backend(|db| async move {
        let mut net = Network::start(db, 10_000).await;
        let real = net.trans(Which::Bob, 5_00, "order-1");
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let impostor = SecretKeys::generate(Suite::Ed25519X25519, &mut rng);
        let forged = Signed::sign(real.unverified_body().clone(), &impostor)
            .expect("signs with the wrong key");
        let frame = net.pr_frame(&forged, PIN, [1; 16]);
        let refused = net.cpp.submit(frame).await.expect_err("forged TRANS");
        assert_eq!(refused.code(), Some("refused"), "{refused}");

        let (mut body, signature) = real.clone().into_parts();
        body.amount = eur(1_00);
        let altered = Signed::<Trans>::from_parts(body, signature).expect("parts");
        let frame = net.pr_frame(&altered, PIN, [2; 16]);
        let refused = net.cpp.submit(frame).await.expect_err("altered TRANS");
        assert_eq!(refused.code(), Some("refused"), "{refused}");

        // A TRANS naming a merchant the MPP does not know.
        let (mut body, _) = real.into_parts();
        body.merchant = PartyId::random(&mut rng);
        let unknown = Signed::sign(body, &impostor).expect("signs");
        let frame = net.pr_frame(&unknown, PIN, [3; 16]);
        assert!(net.cpp.submit(frame).await.is_err(), "unknown merchant");
        nothing_changed(&net).await;
        net.shutdown().await;
    })
    .await;
}

/// Every single flipped byte of a PR frame is refused (the seal, the
/// header in the AAD, the signature), and nothing is recorded.
#[tokio::test]
async fn every_tampered_byte_of_a_pr_is_refused() {
    for_each_backend(|db| async move {
        let mut net = Network::start(db, 10_000).await;
        let trans = net.trans(Which::Bob, 7_00, "order-1");
        let frame = net.pr_frame(&trans, PIN, [4; 16]);
        for i in 0..frame.len() {
            let mut bad = frame.clone();
            bad[i] ^= 0x01;
            let refused = net.cpp.submit(bad).await.expect_err("tampered PR");
            assert!(
                matches!(refused.code(), Some("refused" | "replay" | "invalid")),
                "byte {i}: {refused}"
            );
        }
        nothing_changed(&net).await;
        // The untouched frame still works: the refusals cost nothing.
        let status = net.cpp.submit(frame).await.expect("the genuine PR");
        assert_eq!(status.state, "pending");
        net.shutdown().await;
    })
    .await;
}

/// A PR sealed to someone else, a PR signed with a key that is not the
/// device's, and a PR from a device of another customer are refused.
#[tokio::test]
async fn misaddressed_and_wrongly_signed_prs_are_refused() {
    for_each_backend(|db| async move {
        let mut net = Network::start(db, 10_000).await;
        let trans = net.trans(Which::Bob, 3_00, "order-1");
        let pr = PaymentRequest {
            trans,
            customer: CustomerRef::new("alice").expect("ref"),
            cpp: net.cpp_id,
            pin: Pin::new(PIN).expect("pin"),
            idempotency_key: [5; 16],
        };
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        // Sealed to the DC's keys: the CPP cannot open it.
        let dc_keys = net.keys["dc-eu"].public();
        let frame = seal_pr(
            &pr,
            &net.device_keys,
            net.device,
            &dc_keys,
            mpay_network::wall_clock(),
            &mut rng,
        )
        .expect("seals");
        assert_eq!(
            net.cpp
                .submit(frame)
                .await
                .expect_err("sealed to another")
                .code(),
            Some("refused")
        );
        // Signed by a key that is not the device's certificate's.
        let thief = SecretKeys::generate(Suite::Ed25519X25519, &mut rng);
        let frame = seal_pr(
            &pr,
            &thief,
            net.device,
            &net.cpp_keys,
            mpay_network::wall_clock(),
            &mut rng,
        )
        .expect("seals");
        assert_eq!(
            net.cpp.submit(frame).await.expect_err("wrong key").code(),
            Some("refused")
        );
        // The device pays in another customer's name.
        let mut other = pr.clone();
        other.customer = CustomerRef::new("mallory").expect("ref");
        let frame = seal_pr(
            &other,
            &net.device_keys,
            net.device,
            &net.cpp_keys,
            mpay_network::wall_clock(),
            &mut rng,
        )
        .expect("seals");
        assert!(net.cpp.submit(frame).await.is_err(), "someone else's name");
        nothing_changed(&net).await;
        net.shutdown().await;
    })
    .await;
}

/// Oversized and malformed requests get a 4xx and change nothing.
#[tokio::test]
async fn oversized_and_malformed_requests_are_refused() {
    for_each_backend(|db| async move {
        let net = Network::start(db, 10_000).await;
        let http = reqwest::Client::new();
        let base = format!("http://{}", net.addrs["cpp1"]);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("/v1/payments", vec![0u8; 8 << 20]),
            ("/v1/payments", b"not a frame".to_vec()),
            ("/v1/payments", Vec::new()),
            ("/v1/inbox", vec![0xff; 300]),
            ("/v1/inbox", vec![0u8; 8 << 20]),
        ];
        for (path, body) in cases {
            let len = body.len();
            let answer = http
                .post(format!("{base}{path}"))
                .header("content-type", "application/octet-stream")
                .body(body)
                .send()
                .await
                .expect("answers");
            assert!(
                answer.status().is_client_error(),
                "{path} with {len} bytes: {}",
                answer.status()
            );
        }
        let answer = http
            .post(format!("{base}/v1/customers"))
            .bearer_auth(OPERATOR_TOKEN)
            .header("content-type", "application/json")
            .body("{\"name\": ")
            .send()
            .await
            .expect("answers");
        assert!(answer.status().is_client_error(), "{}", answer.status());
        nothing_changed(&net).await;
        net.shutdown().await;
    })
    .await;
}
