//! A SEMOPS request cannot be replayed later (DESIGN §3.2, last
//! paragraphs): an idempotency key is used up by its first answer, a
//! refusal included, and the total refunded never exceeds what was paid,
//! however the refunds race.

use mpay_identity::PartyId;
use mpay_network::client::RefundView;
use mpay_network::{ClientError, wall_clock};
use mpay_semops::{RefundRelay, Signed, SignedRefundRequest, kind, seal_payload};
use mpay_sql::sqlx::{self, Row};
use mpay_sql::testing::for_each_backend;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::harness::{ALICE_DEPOSIT, Network, PIN, Which, hex_id};

/// Pays bob `cents` and waits until both the CPP and bob's MPP see the
/// payment completed; returns its id.
async fn completed_payment(net: &mut Network, cents: i64, key: u8) -> String {
    let status = net.pay(Which::Bob, cents, [key; 16]).await;
    net.notice(Which::Bob, &status.payment_id).await;
    net.decide(Which::Bob, &status.payment_id, true).await;
    assert_eq!(
        net.final_status(&status.payment_id).await.state,
        "completed"
    );
    let view = net
        .settled_merchant_view(Which::Bob, &status.payment_id)
        .await;
    assert_eq!(view.state, "completed", "{view:?}");
    status.payment_id
}

async fn send_refund(
    net: &Network,
    request: &SignedRefundRequest,
) -> Result<RefundView, ClientError> {
    net.bob.client.refund(&net.bob.token, request).await
}

/// The probe of the issue: a refund request refused with 409
/// `not_completed` while the payment was pending, sent again byte for byte
/// after the payment completed, answers the stored refusal and moves no
/// money; so does the same refund signed afresh under that key; another
/// amount under it is `idempotency_conflict`.
#[tokio::test]
async fn a_refund_refused_while_pending_is_not_applied_when_replayed_after_completion() {
    for_each_backend(|db| async move {
        let mut net = Network::start(db, 10_000).await;
        let status = net.pay(Which::Bob, 12_50, [31; 16]).await;
        net.notice(Which::Bob, &status.payment_id).await;
        let early = net.refund(Which::Bob, &status.payment_id, 6_00, 31);
        let refused = send_refund(&net, &early).await.unwrap_err();
        assert_eq!(refused.code(), Some("not_completed"), "{refused:?}");

        net.decide(Which::Bob, &status.payment_id, true).await;
        assert_eq!(
            net.final_status(&status.payment_id).await.state,
            "completed"
        );
        let view = net
            .settled_merchant_view(Which::Bob, &status.payment_id)
            .await;
        assert_eq!(view.state, "completed");

        // The captured request, byte for byte.
        let replayed = send_refund(&net, &early).await;
        assert_eq!(
            replayed.as_ref().err().and_then(|e| e.code()),
            Some("not_completed"),
            "the key was used up by its refusal: {replayed:?}"
        );
        // The same refund signed afresh under the same key: the same answer.
        let again = net.refund(Which::Bob, &status.payment_id, 6_00, 31);
        let answer = send_refund(&net, &again).await;
        assert_eq!(
            answer.as_ref().err().and_then(|e| e.code()),
            Some("not_completed"),
            "{answer:?}"
        );
        // Another refund under that key is a conflict.
        let changed = net.refund(Which::Bob, &status.payment_id, 5_00, 31);
        let answer = send_refund(&net, &changed).await;
        assert_eq!(
            answer.as_ref().err().and_then(|e| e.code()),
            Some("idempotency_conflict"),
            "{answer:?}"
        );

        net.check_conservation().await;
        assert_eq!(net.balance(0, "cust:alice").await, ALICE_DEPOSIT - 12_50);
        assert_eq!(net.balance(1, "shop:bob").await, 12_50);
        let done = net.final_status(&status.payment_id).await;
        assert_eq!(done.refunded, "0.00 EUR");
        net.shutdown().await;
    })
    .await;
}

/// Two refunds under different keys whose sum exceeds the payment, sent at
/// the same time: exactly one is accepted, and the money moves once.
#[tokio::test]
async fn racing_refunds_never_exceed_the_payment() {
    for_each_backend(|db| async move {
        let mut net = Network::start(db, 10_000).await;
        let id = completed_payment(&mut net, 10_00, 32).await;
        let first = net.refund(Which::Bob, &id, 6_00, 41);
        let second = net.refund(Which::Bob, &id, 6_00, 42);
        let (a, b) = tokio::join!(send_refund(&net, &first), send_refund(&net, &second));
        let accepted = [&a, &b].iter().filter(|r| r.is_ok()).count();
        assert_eq!(accepted, 1, "exactly one refund accepted: {a:?} {b:?}");
        for answer in [&a, &b] {
            if let Err(e) = answer {
                assert_eq!(e.code(), Some("refund_exceeds_payment"), "{e:?}");
            }
        }
        net.eventually("the refund reaches alice", || async {
            net.balance(0, "cust:alice").await == ALICE_DEPOSIT - 10_00 + 6_00
        })
        .await;
        net.check_conservation().await;
        assert_eq!(net.balance(0, "cust:alice").await, ALICE_DEPOSIT - 4_00);
        assert_eq!(net.balance(1, "shop:bob").await, 4_00);
        assert_eq!(net.balance(0, "cpp:cpp1").await, 0);
        let view = net.settled_merchant_view(Which::Bob, &id).await;
        assert_eq!(view.refunded, "6.00 EUR");
        net.shutdown().await;
    })
    .await;
}

/// The CPP's own bound, whatever its MPP says: refund relays (signed by the
/// MPP, delivered by the DC) whose sum exceeds the payment, delivered at
/// the same time, are applied only up to what was paid.
#[tokio::test]
async fn racing_refund_relays_at_the_cpp_never_exceed_the_payment() {
    for_each_backend(|db| async move {
        let mut net = Network::start(db, 10_000).await;
        let id = completed_payment(&mut net, 10_00, 33).await;
        let payment = hex_id(&id);
        // The MPP would have funded each relayed refund at the CPP's account.
        net.deposit(0, "cpp:cpp1", 12_00).await;
        let mut rng = ChaCha20Rng::seed_from_u64(33);
        let mut frames = Vec::new();
        for key in [51u8, 52, 53] {
            let request = net.refund(Which::Bob, &id, 4_00, key);
            let relay = Signed::sign(
                RefundRelay {
                    refund: request,
                    mpp: net.bob.mpp,
                    transfer_reference: format!("test-{key}"),
                },
                &net.keys["mpp1"],
            )
            .expect("relay signs");
            let dc =
                PartyId::from_hex(&net.directory.service("dc-eu").expect("dc").id).expect("dc id");
            let frame = seal_payload(
                kind::REFUND_RELAY,
                &relay,
                &net.keys["dc-eu"],
                dc,
                net.cpp_id,
                &net.cpp_keys,
                payment,
                wall_clock(),
                &mut rng,
            )
            .expect("seals");
            frames.push(frame);
        }
        let (a, b, c) = tokio::join!(
            net.cpp.post_inbox(frames[0].clone()),
            net.cpp.post_inbox(frames[1].clone()),
            net.cpp.post_inbox(frames[2].clone()),
        );
        for answer in [&a, &b, &c] {
            assert!(answer.is_ok(), "the inbox takes every relay: {answer:?}");
        }
        let row = sqlx::query(
            "SELECT CAST(SUM(amount) AS BIGINT) AS total, COUNT(*) AS n FROM cpp_refunds
             WHERE payment_id = $1 AND state <> 'refused'",
        )
        .bind(&payment[..])
        .fetch_one(net.db("cpp1").pool())
        .await
        .expect("refunds");
        let total: i64 = row.try_get("total").expect("total");
        let n: i64 = row.try_get("n").expect("n");
        assert_eq!((n, total), (2, 8_00), "two of three 4.00 refunds fit 10.00");
        let refunded: i64 = sqlx::query("SELECT refunded FROM cpp_payments WHERE id = $1")
            .bind(&payment[..])
            .fetch_one(net.db("cpp1").pool())
            .await
            .expect("payment")
            .try_get("refunded")
            .expect("refunded");
        assert_eq!(refunded, 8_00);
        net.eventually("two refunds reach alice", || async {
            net.balance(0, "cust:alice").await == ALICE_DEPOSIT - 10_00 + 8_00
        })
        .await;
        // mpp1 never made these relays, so it refuses the CPP's refund
        // confirmations and dc-eu keeps them: check the banks alone.
        net.check_books().await;
        assert_eq!(net.balance(0, "cust:alice").await, ALICE_DEPOSIT - 2_00);
        // The refused relay's money stays at the CPP for the operator.
        assert_eq!(net.balance(0, "cpp:cpp1").await, 4_00);
        net.shutdown().await;
    })
    .await;
}

/// A PR's key is used up by its first answer, a wrong PIN included: the
/// same PR again (a fresh frame, as a device retries) gets the stored
/// `wrong_pin` and does not count another failure, so repeats cannot lock
/// the account; the right PIN under that key is `idempotency_conflict`.
#[tokio::test]
async fn a_pr_refused_for_its_pin_answers_the_same_when_repeated() {
    for_each_backend(|db| async move {
        let mut net = Network::start(db, 10_000).await;
        let trans = net.trans(Which::Bob, 1_00, "order-pin-repeat");
        for attempt in 1..=4 {
            let frame = net.pr_frame(&trans, "9999", [61; 16]);
            let error = net.cpp.submit(frame).await.unwrap_err();
            assert_eq!(error.code(), Some("wrong_pin"), "repeat {attempt}: {error}");
        }
        let frame = net.pr_frame(&trans, PIN, [61; 16]);
        let error = net.cpp.submit(frame).await.unwrap_err();
        assert_eq!(error.code(), Some("idempotency_conflict"), "{error}");
        // One failure was counted: the right PIN under a new key pays.
        let frame = net.pr_frame(&trans, PIN, [62; 16]);
        let status = net.cpp.submit(frame).await.expect("not locked");
        // Accepted: the answer follows one attempt at the hold; a bank slow to
        // answer leaves it `received` and the sweep resumes it (the notice
        // below shows it went on).
        assert!(
            matches!(status.state.as_str(), "received" | "pending"),
            "{status:?}"
        );
        net.notice(Which::Bob, &status.payment_id).await;
        net.decide(Which::Bob, &status.payment_id, false).await;
        assert_eq!(net.final_status(&status.payment_id).await.state, "rejected");
        net.check_conservation().await;
        assert_eq!(net.balance(0, "cust:alice").await, ALICE_DEPOSIT);
        net.shutdown().await;
    })
    .await;
}
