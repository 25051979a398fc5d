//! A merchant's standing approval of micropayments: the MPP approves a
//! covered micropayment as its PN arrives, the merchant decides the rest;
//! the CPP takes the approval only for a micropayment of the merchant it
//! names, within its amount per payment.

use mpay_identity::Timestamp;
use mpay_money::{Amount, Currency};
use mpay_network::MicroMode;
use mpay_network::wall_clock;
use mpay_semops::{
    Authority, ConfirmationOutcome, STANDING_PERIOD_MS_MAX, Signed, SignedStandingApproval,
    StandingApproval,
};
use mpay_sql::testing::for_each_backend;

use crate::harness::{ALICE_DEPOSIT, Network, Which, hex_id};
use crate::micro::{books_add_up, key, micro, minor};

fn eur(cents: i64) -> Amount {
    Amount::new(cents, Currency::EUR)
}

impl Network {
    /// A standing approval by `which` of micropayments up to `per_payment`
    /// cents each and `per_period` cents a period (the longest period, so
    /// that no test run crosses into the next one), signed at `at`.
    fn standing(
        &self,
        which: Which,
        per_payment: i64,
        per_period: i64,
        at: Timestamp,
    ) -> SignedStandingApproval {
        let merchant = self.merchant_ref(which);
        Signed::sign(
            StandingApproval {
                merchant: merchant.id,
                mpp: merchant.mpp,
                per_payment_max: eur(per_payment),
                period_max: eur(per_period),
                period_ms: STANDING_PERIOD_MS_MAX,
                signed_at: at,
                expires_at: at.saturating_add_ms(24 * 3_600_000),
            },
            &merchant.keys,
        )
        .expect("signs")
    }

    /// Whether the merchant has a notice of `payment_id` now (after a
    /// short wait for it to arrive).
    async fn has_notice(&self, which: Which, payment_id: &str) -> bool {
        let merchant = self.merchant_ref(which);
        merchant
            .client
            .notices(&merchant.token, 300)
            .await
            .expect("notices")
            .iter()
            .any(|n| n.payment_id == payment_id)
    }
}

#[tokio::test]
async fn a_standing_approval_approves_covered_micropayments_at_once_and_leaves_the_rest() {
    for_each_backend(|db| async move {
        let config = micro(MicroMode::One, "50.00 EUR", "50.00 EUR");
        let mut net = Network::start_with_micro(db, 30_000, config).await;
        let approval = net.standing(Which::Bob, 50, 1_00, wall_clock());
        let view = net
            .bob
            .client
            .set_standing_approval(&net.bob.token, &approval)
            .await
            .expect("set");
        assert_eq!(
            (view.per_payment_max.as_str(), view.period_max.as_str()),
            ("0.50 EUR", "1.00 EUR")
        );
        assert!(view.in_force);
        assert_eq!(view.used_in_period, "0.00 EUR");

        // Covered: approved without the merchant, DT confirmation.
        let mut covered = Vec::new();
        for (k, cents) in [(1, 40), (2, 50)] {
            let paid = net.pay(Which::Bob, cents, key(k)).await;
            assert_eq!(
                net.outcome(&paid.payment_id).await,
                (
                    "completed".into(),
                    Some(ConfirmationOutcome::DelayedTransfer)
                )
            );
            let view = net
                .settled_merchant_view(Which::Bob, &paid.payment_id)
                .await;
            assert!(view.standing, "{view:?}");
            assert_eq!(view.state, "completed");
            covered.push(paid.payment_id);
        }
        assert!(!net.has_notice(Which::Bob, &covered[0]).await);
        // The merchant cannot decide it again.
        let late = net.decision(Which::Bob, &covered[0], false);
        let error = net
            .bob
            .client
            .decide(&net.bob.token, &late)
            .await
            .expect_err("already approved");
        assert_eq!(error.code(), Some("not_awaiting_decision"));

        // Above the amount per payment: the merchant decides.
        let above = net.pay(Which::Bob, 60, key(3)).await;
        net.decide_now(Which::Bob, &above.payment_id, true).await;
        assert_eq!(net.outcome(&above.payment_id).await.0, "completed");
        let view = net
            .settled_merchant_view(Which::Bob, &above.payment_id)
            .await;
        assert!(!view.standing);

        // Past the period's budget (0.90 used of 1.00): the merchant decides.
        let spent = net.pay(Which::Bob, 20, key(4)).await;
        net.decide_now(Which::Bob, &spent.payment_id, false).await;
        assert_eq!(net.outcome(&spent.payment_id).await.0, "rejected");
        let view = net
            .bob
            .client
            .standing_approval(&net.bob.token)
            .await
            .expect("show")
            .expect("stands");
        assert_eq!(view.used_in_period, "0.90 EUR");

        // A macro payment is never covered.
        let big = net.standing(Which::Bob, 50_00, 100_00, wall_clock());
        net.bob
            .client
            .set_standing_approval(&net.bob.token, &big)
            .await
            .expect("a newer one replaces it");
        let macro_pay = net.pay(Which::Bob, 2_00, key(5)).await;
        net.decide_now(Which::Bob, &macro_pay.payment_id, true)
            .await;
        assert_eq!(
            net.outcome(&macro_pay.payment_id).await,
            ("completed".into(), Some(ConfirmationOutcome::Transferred))
        );

        // Withdrawn: every micropayment waits for a decision again, and
        // neither the withdrawn approval nor an older one can be set again.
        let answer = net
            .bob
            .client
            .withdraw_standing_approval(&net.bob.token)
            .await
            .expect("withdraw");
        assert!(answer.withdrawn);
        let again = net
            .bob
            .client
            .withdraw_standing_approval(&net.bob.token)
            .await
            .expect("withdraw again");
        assert!(!again.withdrawn);
        assert_eq!(
            net.bob
                .client
                .standing_approval(&net.bob.token)
                .await
                .expect("show"),
            None
        );
        for stale in [&approval, &big] {
            let error = net
                .bob
                .client
                .set_standing_approval(&net.bob.token, stale)
                .await
                .expect_err("stale");
            assert_eq!(error.code(), Some("stale_standing_approval"));
        }
        let after = net.pay(Which::Bob, 10, key(6)).await;
        net.decide_now(Which::Bob, &after.payment_id, true).await;
        assert_eq!(net.outcome(&after.payment_id).await.0, "completed");

        // The CPP owes mpp1 every approved micropayment, standing or not,
        // and its books add up; below θ nothing has left alice's account
        // but the macro payment.
        let summary = net.cpp_micro().await;
        books_add_up(&summary);
        let mpp1 = summary.mpps.iter().find(|m| m.mpp == "mpp1").expect("mpp1");
        assert_eq!(mpp1.confirmed, "1.60 EUR");
        assert_eq!(minor(&summary.customers[0].pending), 40 + 50 + 60 + 10);
        assert_eq!(net.balance(0, "cust:alice").await, ALICE_DEPOSIT - 2_00);
        net.eventually("the macro payment reaches bob's bank", || async {
            net.balance(1, "shop:bob").await == 2_00
        })
        .await;
        net.check_conservation().await;
        net.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn the_cpp_takes_a_standing_approval_only_for_a_covered_micropayment_of_its_merchant() {
    for_each_backend(|db| async move {
        let config = micro(MicroMode::One, "50.00 EUR", "50.00 EUR");
        let mut net = Network::start_with_micro(db, 30_000, config).await;
        let now = wall_clock();
        let bob_small = net.standing(Which::Bob, 50, 10_00, now);
        let bob_big = net.standing(Which::Bob, 50_00, 100_00, now);
        let carol = net.standing(Which::Carol, 50_00, 100_00, now);

        // Each relayed by bob's MPP for a payment to bob the merchant has
        // not decided: a macro payment, a micropayment above the amount per
        // payment, and carol's approval. The CPP refuses them all.
        let macro_pay = net.pay(Which::Bob, 2_00, key(1)).await;
        let above = net.pay(Which::Bob, 80, key(2)).await;
        for (payment, approval) in [
            (&macro_pay.payment_id, &bob_big),
            (&above.payment_id, &bob_small),
            (&above.payment_id, &carol),
        ] {
            let frame = net.authority_frame(
                Which::Bob,
                Authority::Standing {
                    payment_id: hex_id(payment),
                    approval: approval.clone(),
                },
            );
            let error = net.cpp.post_inbox(frame).await.expect_err("refused");
            assert_eq!(error.code(), Some("refused"), "{error}");
        }
        // The merchant's own decisions still count.
        net.decide_now(Which::Bob, &macro_pay.payment_id, false)
            .await;
        net.decide_now(Which::Bob, &above.payment_id, false).await;
        assert_eq!(net.outcome(&macro_pay.payment_id).await.0, "rejected");
        assert_eq!(net.outcome(&above.payment_id).await.0, "rejected");

        // A covered micropayment of bob's, relayed the same way, is approved.
        let covered = net.pay(Which::Bob, 30, key(3)).await;
        let frame = net.authority_frame(
            Which::Bob,
            Authority::Standing {
                payment_id: hex_id(&covered.payment_id),
                approval: bob_small.clone(),
            },
        );
        let answer = net.cpp.post_inbox(frame).await.expect("taken");
        assert_eq!(answer.outcome, "applied");
        assert_eq!(
            net.outcome(&covered.payment_id).await,
            (
                "completed".into(),
                Some(ConfirmationOutcome::DelayedTransfer)
            )
        );
        net.check_books().await;
        assert_eq!(net.balance(0, "cust:alice").await, ALICE_DEPOSIT);
        net.shutdown().await;
    })
    .await;
}
