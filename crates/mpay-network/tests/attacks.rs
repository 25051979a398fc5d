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
use mpay_wire::Decode;
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
            shipping: None,
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
        let http = net.http.clone();
        let base = net.url("cpp1");
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

/// Reads one blob column of the row of `payment` in `table` of `service`.
async fn stored_blob(net: &Network, service: &str, sql: &str, payment: &[u8; 16]) -> Vec<u8> {
    use mpay_sql::sqlx::Row;
    mpay_sql::sqlx::query(mpay_sql::sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(&payment[..])
        .fetch_one(net.db(service).pool())
        .await
        .expect("stored row")
        .try_get::<Vec<u8>, _>(0)
        .expect("blob")
}

/// `payload` of `kind` sealed by dc-eu to `receiver`, as dc-eu's outbox
/// would deliver it (a fresh frame each call).
fn from_dc(
    net: &Network,
    kind: mpay_envelope::MessageKind,
    payload: &[u8],
    receiver: &str,
    tx_id: [u8; 16],
    rng: &mut ChaCha20Rng,
) -> Vec<u8> {
    struct Raw<'a>(&'a [u8]);
    impl mpay_wire::Encode for Raw<'_> {
        fn encode(&self, w: &mut mpay_wire::Writer) {
            w.raw(self.0);
        }
    }
    let service = |name: &str| net.directory.service(name).expect("in the directory");
    let dc = PartyId::from_hex(&service("dc-eu").id).expect("id");
    let to = service(receiver);
    let to_id = PartyId::from_hex(&to.id).expect("id");
    let cert = to.parse_certificate().expect("certificate");
    mpay_semops::seal_payload(
        kind,
        &Raw(payload),
        &net.keys["dc-eu"],
        dc,
        to_id,
        &cert.body.keys,
        tx_id,
        mpay_network::wall_clock(),
        rng,
    )
    .expect("seals")
}

/// The PN, the confirmation and the refund relay delivered again — as a
/// fresh frame (a DC's retry) and as the exact same frame (a replay) —
/// change nothing: the first is acknowledged as a duplicate, the second
/// refused by the replay guard; no second notice, no second refund, no
/// money moves.
#[tokio::test]
async fn replayed_notices_confirmations_and_refunds_change_nothing() {
    for_each_backend(|db| async move {
        let mut net = Network::start(db, 10_000).await;
        let status = net.pay(Which::Bob, 6_00, [41; 16]).await;
        net.notice(Which::Bob, &status.payment_id).await;
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
        // The merchant's view shows the T confirmation before a refund.
        net.eventually("the T confirmation at the MPP", || async {
            net.bob
                .client
                .payment(&net.bob.token, &status.payment_id, 1_000)
                .await
                .expect("view")
                .confirmation
                .is_some()
        })
        .await;
        let refund = net.refund(Which::Bob, &status.payment_id, 2_00, 9);
        net.bob
            .client
            .refund(&net.bob.token, &refund)
            .await
            .expect("refund");
        net.eventually("the refund reaches alice", || async {
            net.balance(0, "cust:alice").await == ALICE_DEPOSIT - 6_00 + 2_00
        })
        .await;
        let id = harness::hex_id(&status.payment_id);
        let mut rng = ChaCha20Rng::seed_from_u64(17);

        // The PN again at the MPP.
        let notice = stored_blob(
            &net,
            "mpp1",
            "SELECT notice FROM mpp_payments WHERE id = $1",
            &id,
        )
        .await;
        let pn = mpay_semops::SignedPaymentNotice::from_wire(&notice).expect("stored PN");
        let routed = mpay_semops::RoutedNotice {
            deadline: pn.unverified_body().deadline,
            notice: pn,
        };
        use mpay_wire::Encode;
        let frame = from_dc(
            &net,
            mpay_semops::kind::PAYMENT_NOTICE,
            &routed.to_wire(),
            "mpp1",
            id,
            &mut rng,
        );
        let answer = net
            .bob
            .client
            .post_inbox(frame.clone())
            .await
            .expect("acknowledged");
        assert_eq!(answer.outcome, "duplicate");
        let replay = net.bob.client.post_inbox(frame).await.expect_err("replay");
        assert_eq!(replay.code(), Some("replay"));
        // A PN whose amount was changed after the CPP signed it.
        let (mut body, signature) = routed.notice.clone().into_parts();
        let (mut trans, trans_sig) = body.trans.into_parts();
        trans.amount = eur(1_00);
        body.trans = Signed::from_parts(trans, trans_sig).expect("parts");
        body.payment_id = [42; 16];
        let forged = mpay_semops::RoutedNotice {
            deadline: routed.deadline,
            notice: Signed::from_parts(body, signature).expect("parts"),
        };
        let frame = from_dc(
            &net,
            mpay_semops::kind::PAYMENT_NOTICE,
            &forged.to_wire(),
            "mpp1",
            [42; 16],
            &mut rng,
        );
        assert_eq!(
            net.bob
                .client
                .post_inbox(frame)
                .await
                .expect_err("forged PN")
                .code(),
            Some("refused")
        );

        // The T confirmation again at the MPP.
        let confirmation = stored_blob(
            &net,
            "mpp1",
            "SELECT confirmation FROM mpp_payments WHERE id = $1",
            &id,
        )
        .await;
        let frame = from_dc(
            &net,
            mpay_semops::kind::CONFIRMATION,
            &confirmation,
            "mpp1",
            id,
            &mut rng,
        );
        let answer = net
            .bob
            .client
            .post_inbox(frame.clone())
            .await
            .expect("acknowledged");
        assert_eq!(answer.outcome, "duplicate");
        assert_eq!(
            net.bob
                .client
                .post_inbox(frame)
                .await
                .expect_err("replay")
                .code(),
            Some("replay")
        );

        // The refund relay again at the CPP.
        let relay = stored_blob(
            &net,
            "cpp1",
            "SELECT relay FROM cpp_refunds WHERE payment_id = $1",
            &id,
        )
        .await;
        let frame = from_dc(
            &net,
            mpay_semops::kind::REFUND_RELAY,
            &relay,
            "cpp1",
            id,
            &mut rng,
        );
        let answer = net
            .cpp
            .post_inbox(frame.clone())
            .await
            .expect("acknowledged");
        assert_eq!(answer.outcome, "duplicate");
        assert_eq!(
            net.cpp.post_inbox(frame).await.expect_err("replay").code(),
            Some("replay")
        );

        // Nothing moved: one notice, one refund, the same balances.
        let notices = net
            .bob
            .client
            .notices(&net.bob.token, 0)
            .await
            .expect("notices");
        assert!(notices.is_empty(), "{notices:?}");
        let view = net
            .bob
            .client
            .payment(&net.bob.token, &status.payment_id, 0)
            .await
            .expect("view");
        assert_eq!(view.refunds.len(), 1);
        assert_eq!(view.refunded, "2.00 EUR");
        assert_eq!(net.balance(0, "cust:alice").await, ALICE_DEPOSIT - 4_00);
        assert_eq!(net.balance(1, "shop:bob").await, 4_00);
        net.check_conservation().await;
        net.shutdown().await;
    })
    .await;
}
