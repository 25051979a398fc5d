//! One payment at a time through the whole network.

use mpay_sql::testing::for_each_backend;

use crate::harness::{ALICE_DEPOSIT, Network, OPERATOR_TOKEN, PIN, Which};

/// A domestic payment (customer and merchant in region eu, banks 1 → 2):
/// hold placed, approved, posted across banks, T confirmations on both
/// sides.
#[tokio::test]
async fn domestic_payment_is_approved_and_transferred() {
    for_each_backend(|db| async move {
        let mut net = Network::start(db, 10_000).await;
        let status = net.pay(Which::Bob, 12_50, [1; 16]).await;
        assert_eq!(status.state, "pending", "{status:?}");
        assert_eq!(
            net.balance(0, "cust:alice").await,
            ALICE_DEPOSIT,
            "held, not yet moved"
        );
        let notice = net.notice(Which::Bob, &status.payment_id).await;
        assert_eq!(notice.amount, "12.50 EUR");
        assert_ne!(
            notice.customer_pseudonym, "",
            "the merchant sees a pseudonym"
        );
        net.decide(Which::Bob, &status.payment_id, true).await;
        let done = net.final_status(&status.payment_id).await;
        assert_eq!(done.state, "completed");
        let confirmation = done.confirmation().expect("T confirmation");
        let cpp_cert = net.cpp.certificate().await.expect("cpp certificate");
        let body = confirmation
            .verify(&cpp_cert, mpay_network::wall_clock())
            .expect("signed by the CPP");
        assert_eq!(body.outcome, mpay_semops::ConfirmationOutcome::Transferred);
        let view = net
            .settled_merchant_view(Which::Bob, &status.payment_id)
            .await;
        assert_eq!(view.state, "completed");
        assert!(
            view.confirmation().is_some(),
            "the merchant got the T confirmation"
        );
        net.check_conservation().await;
        assert_eq!(net.balance(0, "cust:alice").await, ALICE_DEPOSIT - 12_50);
        assert_eq!(net.balance(1, "shop:bob").await, 12_50);
        net.shutdown().await;
    })
    .await;
}

/// An international payment: the PN goes CPP → dc-eu → dc-us → mpp2, the
/// decision and the confirmation come back the same way.
#[tokio::test]
async fn international_payment_goes_through_both_dcs() {
    for_each_backend(|db| async move {
        let mut net = Network::start(db, 10_000).await;
        let status = net.pay(Which::Carol, 20_00, [2; 16]).await;
        assert_eq!(status.state, "pending", "{status:?}");
        net.notice(Which::Carol, &status.payment_id).await;
        net.decide(Which::Carol, &status.payment_id, true).await;
        assert_eq!(
            net.final_status(&status.payment_id).await.state,
            "completed"
        );
        let view = net
            .settled_merchant_view(Which::Carol, &status.payment_id)
            .await;
        assert_eq!(view.state, "completed");
        let eu = net
            .dc("dc-eu")
            .routes(OPERATOR_TOKEN, 0, 100)
            .await
            .expect("routes");
        let us = net
            .dc("dc-us")
            .routes(OPERATOR_TOKEN, 0, 100)
            .await
            .expect("routes");
        assert_eq!(eu.len(), 1);
        assert_eq!(
            (eu[0].from.as_str(), eu[0].to.as_deref()),
            ("cpp1", Some("dc-us"))
        );
        assert_eq!(
            (us[0].from.as_str(), us[0].to.as_deref()),
            ("dc-eu", Some("mpp2"))
        );
        // PN, decision, T confirmation.
        assert_eq!(us[0].messages, 3);
        net.check_conservation().await;
        assert_eq!(net.balance(1, "shop:carol").await, 20_00);
        assert_eq!(net.balance(0, "cust:alice").await, ALICE_DEPOSIT - 20_00);
        net.shutdown().await;
    })
    .await;
}

/// A rejection voids the hold; nothing moves.
#[tokio::test]
async fn rejection_voids_the_hold() {
    for_each_backend(|db| async move {
        let mut net = Network::start(db, 10_000).await;
        let status = net.pay(Which::Bob, 30_00, [3; 16]).await;
        net.notice(Which::Bob, &status.payment_id).await;
        net.decide(Which::Bob, &status.payment_id, false).await;
        let done = net.final_status(&status.payment_id).await;
        assert_eq!(done.state, "rejected");
        assert_eq!(done.reason.as_deref(), Some("merchant_rejected"));
        // The merchant cannot change its mind.
        let again = net.decision(Which::Bob, &status.payment_id, true);
        let refused = net
            .bob
            .client
            .decide(&net.bob.token, &again)
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Some("already_decided"));
        net.check_conservation().await;
        assert_eq!(net.balance(0, "cust:alice").await, ALICE_DEPOSIT);
        assert_eq!(net.balance(1, "shop:bob").await, 0);
        net.shutdown().await;
    })
    .await;
}

/// No decision before the deadline: the hold is voided, both sides learn
/// `expired`, and an approval that arrives afterwards is recorded as late
/// and never applied.
#[tokio::test]
async fn expiry_voids_the_hold_and_a_late_approval_is_not_applied() {
    for_each_backend(|db| async move {
        let mut net = Network::start(db, 1_500).await;
        let status = net.pay(Which::Bob, 15_00, [4; 16]).await;
        net.notice(Which::Bob, &status.payment_id).await;
        let done = net.final_status(&status.payment_id).await;
        assert_eq!(done.state, "expired");
        let view = net
            .settled_merchant_view(Which::Bob, &status.payment_id)
            .await;
        assert_eq!(view.state, "expired");
        // The MPP refuses a decision past its deadline ...
        let late = net.decision(Which::Bob, &status.payment_id, true);
        let refused = net
            .bob
            .client
            .decide(&net.bob.token, &late)
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Some("deadline_passed"));
        // ... and the CPP records one that reaches it anyway, unapplied.
        let answer = net.relay_decision_to_cpp(Which::Bob, &late).await;
        assert_eq!(answer.outcome, "late");
        assert_eq!(net.late_decisions().await, 1);
        assert_eq!(
            net.cpp
                .status(&status.payment_id, 0)
                .await
                .expect("status")
                .state,
            "expired"
        );
        net.check_conservation().await;
        assert_eq!(net.balance(0, "cust:alice").await, ALICE_DEPOSIT);
        assert_eq!(net.balance(1, "shop:bob").await, 0);
        net.shutdown().await;
    })
    .await;
}

/// A completed payment is refunded in two parts; the money is back at the
/// customer and nothing more than the payment can be refunded.
#[tokio::test]
async fn refunds_take_the_path_back() {
    for_each_backend(|db| async move {
        let mut net = Network::start(db, 10_000).await;
        let status = net.pay(Which::Bob, 12_50, [5; 16]).await;
        net.notice(Which::Bob, &status.payment_id).await;
        net.decide(Which::Bob, &status.payment_id, true).await;
        assert_eq!(
            net.final_status(&status.payment_id).await.state,
            "completed"
        );
        // The merchant's view must show the T confirmation before a refund.
        net.settled_merchant_view(Which::Bob, &status.payment_id)
            .await;
        let first = net.refund(Which::Bob, &status.payment_id, 5_00, 1);
        let view = net
            .bob
            .client
            .refund(&net.bob.token, &first)
            .await
            .expect("refund 1");
        // `funding` while the payment is still between banks, then relayed.
        assert!(
            ["funding", "relayed", "refunded"].contains(&view.state.as_str()),
            "{view:?}"
        );
        // The same request again is the same refund.
        let again = net
            .bob
            .client
            .refund(&net.bob.token, &first)
            .await
            .expect("repeat");
        assert_eq!(again.refund_key, view.refund_key);
        let too_much = net.refund(Which::Bob, &status.payment_id, 8_00, 2);
        let refused = net
            .bob
            .client
            .refund(&net.bob.token, &too_much)
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Some("refund_exceeds_payment"));
        let rest = net.refund(Which::Bob, &status.payment_id, 7_50, 3);
        net.bob
            .client
            .refund(&net.bob.token, &rest)
            .await
            .expect("refund 2");
        let view = net
            .settled_merchant_view(Which::Bob, &status.payment_id)
            .await;
        assert_eq!(view.state, "refunded", "{view:?}");
        assert!(
            view.refunds
                .iter()
                .all(|r| r.state == "refunded" && r.confirmation.is_some())
        );
        let done = net.final_status(&status.payment_id).await;
        assert_eq!(done.state, "refunded");
        assert_eq!(done.refunded, "12.50 EUR");
        net.check_conservation().await;
        assert_eq!(net.balance(0, "cust:alice").await, ALICE_DEPOSIT);
        assert_eq!(net.balance(1, "shop:bob").await, 0);
        assert_eq!(net.balance(0, "cpp:cpp1").await, 0);
        net.shutdown().await;
    })
    .await;
}

/// Wrong PINs count; at the limit the account locks (even the right PIN is
/// refused) until the operator unlocks it.
#[tokio::test]
async fn wrong_pins_lock_until_the_operator_unlocks() {
    for_each_backend(|db| async move {
        let mut net = Network::start(db, 10_000).await;
        let trans = net.trans(Which::Bob, 1_00, "order-pin");
        for (attempt, key) in [(1u8, [11u8; 16]), (2, [12; 16])] {
            let frame = net.pr_frame(&trans, "9999", key);
            let error = net.cpp.submit(frame).await.unwrap_err();
            assert_eq!(error.code(), Some("wrong_pin"), "attempt {attempt}");
        }
        let frame = net.pr_frame(&trans, "9999", [13; 16]);
        assert_eq!(
            net.cpp.submit(frame).await.unwrap_err().code(),
            Some("account_locked")
        );
        let frame = net.pr_frame(&trans, PIN, [14; 16]);
        assert_eq!(
            net.cpp.submit(frame).await.unwrap_err().code(),
            Some("account_locked")
        );
        assert_eq!(
            net.banks[0].pending_holds().await.expect("holds"),
            0,
            "no hold while locked"
        );
        net.cpp
            .unlock(OPERATOR_TOKEN, "alice")
            .await
            .expect("unlock");
        let frame = net.pr_frame(&trans, PIN, [15; 16]);
        let status = net.cpp.submit(frame).await.expect("accepted after unlock");
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
        net.shutdown().await;
    })
    .await;
}

/// The same PR twice (fresh frames, same idempotency key) is one payment
/// with one hold; the key with another PR is refused.
#[tokio::test]
async fn a_duplicated_pr_is_one_payment() {
    for_each_backend(|db| async move {
        let mut net = Network::start(db, 10_000).await;
        let trans = net.trans(Which::Bob, 9_99, "order-dup");
        let first = net.pr_frame(&trans, PIN, [21; 16]);
        let second = net.pr_frame(&trans, PIN, [21; 16]);
        let a = net.cpp.submit(first.clone()).await.expect("first");
        let b = net.cpp.submit(second).await.expect("second");
        assert_eq!(a.payment_id, b.payment_id);
        assert_eq!(
            net.banks[0].pending_holds().await.expect("holds"),
            1,
            "one hold"
        );
        // The exact same frame again is a replay.
        assert_eq!(
            net.cpp.submit(first).await.unwrap_err().code(),
            Some("replay")
        );
        let other = net.trans(Which::Bob, 5_00, "order-other");
        let changed = net.pr_frame(&other, PIN, [21; 16]);
        assert_eq!(
            net.cpp.submit(changed).await.unwrap_err().code(),
            Some("idempotency_conflict")
        );
        let payments = net
            .cpp
            .payments(OPERATOR_TOKEN, 0, 100)
            .await
            .expect("listing");
        assert_eq!(payments.len(), 1);
        net.notice(Which::Bob, &a.payment_id).await;
        net.decide(Which::Bob, &a.payment_id, true).await;
        assert_eq!(net.final_status(&a.payment_id).await.state, "completed");
        net.check_conservation().await;
        assert_eq!(net.balance(0, "cust:alice").await, ALICE_DEPOSIT - 9_99);
        net.shutdown().await;
    })
    .await;
}

/// A replayed inbox frame changes nothing: an exact copy is refused by the
/// envelope; a fresh frame with the same decision is acknowledged as a
/// duplicate.
#[tokio::test]
async fn a_replayed_inbox_frame_changes_nothing() {
    for_each_backend(|db| async move {
        let mut net = Network::start(db, 10_000).await;
        let status = net.pay(Which::Bob, 4_00, [31; 16]).await;
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
        net.check_conservation().await;
        let frame = net.decision_frame(Which::Bob, &decision);
        let answer = net
            .cpp
            .post_inbox(frame.clone())
            .await
            .expect("acknowledged");
        assert_eq!(answer.outcome, "duplicate");
        let replay = net.cpp.post_inbox(frame).await.unwrap_err();
        assert_eq!(replay.code(), Some("replay"));
        // A frame from someone who is not a service is refused.
        let forged = net.forged_decision_frame(&decision);
        assert_eq!(
            net.cpp.post_inbox(forged).await.unwrap_err().code(),
            Some("refused")
        );
        assert_eq!(net.late_decisions().await, 0);
        net.check_conservation().await;
        assert_eq!(net.balance(0, "cust:alice").await, ALICE_DEPOSIT - 4_00);
        assert_eq!(net.balance(1, "shop:bob").await, 4_00);
        net.shutdown().await;
    })
    .await;
}

/// The DC is down when the PN leaves: the CPP's outbox keeps it and
/// delivers it once the DC is back; the payment completes.
#[tokio::test]
async fn a_dc_down_for_a_while_delays_but_loses_nothing() {
    for_each_backend(|db| async move {
        let mut net = Network::start(db, 20_000).await;
        net.stop_service("dc-eu").await;
        let status = net.pay(Which::Bob, 6_00, [41; 16]).await;
        assert_eq!(status.state, "pending");
        tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
        let pending = mpay_sql::outbox::pending_count(net.db("cpp1"))
            .await
            .expect("outbox");
        assert_eq!(pending, 1, "the PN waits in the CPP's outbox");
        net.start_service("dc-eu", None).await;
        net.notice(Which::Bob, &status.payment_id).await;
        net.decide(Which::Bob, &status.payment_id, true).await;
        assert_eq!(
            net.final_status(&status.payment_id).await.state,
            "completed"
        );
        net.check_conservation().await;
        assert_eq!(net.balance(1, "shop:bob").await, 6_00);
        net.shutdown().await;
    })
    .await;
}

/// A service killed while sending a message (claimed from its outbox, not
/// yet acknowledged) sends it again soon after it restarts: the claim's
/// lease covers one send, not a minute.
#[tokio::test]
async fn a_message_claimed_by_a_process_that_died_is_sent_again_soon() {
    for_each_backend(|db| async move {
        let mut net = Network::start(db, 20_000).await;
        net.stop_service("dc-eu").await;
        let status = net.pay(Which::Bob, 6_00, [43; 16]).await;
        assert_eq!(status.state, "pending");
        net.stop_service("cpp1").await;
        // What a delivery run does just before the process dies mid-send.
        let cpp = net.db("cpp1").clone();
        mpay_sql::sqlx::query("UPDATE outbox SET next_attempt_at = 0 WHERE delivered_at IS NULL")
            .execute(cpp.pool())
            .await
            .expect("make the PN due");
        let lease = crate::harness::timing(20_000).claim_lease_ms();
        let now = i64::try_from(mpay_network::api::wall_clock().as_millis()).expect("ms");
        let claimed = mpay_sql::outbox::due(&cpp, now, 10, lease)
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 1, "the PN, claimed by the dying run");
        net.start_service("dc-eu", None).await;
        net.start_service("cpp1", None).await;
        net.notice(Which::Bob, &status.payment_id).await;
        net.decide(Which::Bob, &status.payment_id, true).await;
        assert_eq!(
            net.final_status(&status.payment_id).await.state,
            "completed"
        );
        net.check_conservation().await;
        assert_eq!(net.balance(1, "shop:bob").await, 6_00);
        net.shutdown().await;
    })
    .await;
}

/// Insufficient funds: 402, the payment is declined, no hold, no PN.
#[tokio::test]
async fn insufficient_funds_decline_without_a_hold() {
    for_each_backend(|db| async move {
        let mut net = Network::start(db, 10_000).await;
        let trans = net.trans(Which::Bob, ALICE_DEPOSIT + 1, "order-big");
        let frame = net.pr_frame(&trans, PIN, [51; 16]);
        let error = net.cpp.submit(frame).await.unwrap_err();
        assert_eq!(error.code(), Some("insufficient_funds"));
        let payments = net
            .cpp
            .payments(OPERATOR_TOKEN, 0, 10)
            .await
            .expect("listing");
        assert_eq!(payments.len(), 1);
        assert_eq!(payments[0].state, "declined");
        assert_eq!(payments[0].hold_id, None);
        net.check_conservation().await;
        assert!(
            net.dc("dc-eu")
                .routes(OPERATOR_TOKEN, 0, 10)
                .await
                .expect("routes")
                .is_empty()
        );
        net.shutdown().await;
    })
    .await;
}
