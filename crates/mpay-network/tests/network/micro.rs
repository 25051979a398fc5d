//! Micropayments through the services (DESIGN §3.3): DT confirmations with
//! no hold, one aggregated transfer at θ, take-back of a rejection, a failed
//! aggregated transfer, the window, net settlement toward the MPPs and
//! payouts in both intermediary modes, with the credit limits at work.

use mpay_network::client::{CppMicroSummary, MppMicroSummary, PaymentStatus};
use mpay_network::{MicroConfig, MicroMode};
use mpay_semops::ConfirmationOutcome;
use mpay_sql::Db;
use mpay_sql::sqlx::{self, Row};
use mpay_sql::testing::for_each_backend;

use crate::harness::{ALICE_DEPOSIT, Network, OPERATOR_TOKEN, Which};

pub(crate) fn micro(mode: MicroMode, theta: &str, credit: &str) -> MicroConfig {
    MicroConfig {
        mode,
        limit: "1.00 EUR".into(),
        theta: theta.into(),
        window_ms: 24 * 3_600_000,
        credit_limit: credit.into(),
        transfer_fee: "0.20 EUR".into(),
        sweep_interval_ms: 200,
        settle_interval_ms: 300,
    }
}

pub(crate) fn minor(text: &str) -> i64 {
    mpay_money::Amount::parse(text)
        .expect("amount")
        .minor_units()
}

/// Sets the limits every customer without a cluster gets (as a recluster
/// would).
async fn default_limits(db: &Db, theta: i64, window_ms: i64) {
    sqlx::query("DELETE FROM cpp_micro_model")
        .execute(db.pool())
        .await
        .expect("delete");
    sqlx::query(
        "INSERT INTO cpp_micro_model (id, clusters, customers, default_cluster, default_theta,
            default_window_ms, fitted_at) VALUES (1, 1, 0, 0, $1, $2, 0)",
    )
    .bind(theta)
    .bind(window_ms)
    .execute(db.pool())
    .await
    .expect("model");
}

impl Network {
    pub(crate) async fn decide_now(&self, which: Which, id: &str, approve: bool) {
        self.notice(which, id).await;
        let merchant = self.merchant_ref(which);
        let decision = self.decision(which, id, approve);
        merchant
            .client
            .decide(&merchant.token, &decision)
            .await
            .expect("decides");
    }

    pub(crate) async fn outcome(&self, id: &str) -> (String, Option<ConfirmationOutcome>) {
        let done = self.final_status(id).await;
        let cert = self.cpp.certificate().await.expect("cpp certificate");
        let outcome = done.confirmation().map(|c| {
            c.verify(&cert, mpay_network::wall_clock())
                .expect("signed by the CPP")
                .outcome
        });
        (done.state, outcome)
    }

    pub(crate) async fn cpp_micro(&self) -> CppMicroSummary {
        self.cpp
            .micro_summary(OPERATOR_TOKEN)
            .await
            .expect("micro summary")
    }

    async fn mpp_micro(&self, which: Which) -> MppMicroSummary {
        self.merchant_ref(which)
            .client
            .micro_summary(OPERATOR_TOKEN)
            .await
            .expect("mpp micro summary")
    }

    async fn record(&self, id: &str) -> mpay_network::client::PaymentRecord {
        self.cpp
            .payments(OPERATOR_TOKEN, 0, 1_000)
            .await
            .expect("listing")
            .into_iter()
            .find(|p| p.payment_id == id)
            .expect("listed")
    }

    async fn pending_holds(&self) -> i64 {
        let mut n = 0;
        for bank in &self.banks {
            n += bank.pending_holds().await.expect("holds");
        }
        n
    }
}

/// The CPP's books add up per customer: Σ confirmed = Σ collected − Σ
/// returned + pending, and the log replays to the index.
pub(crate) fn books_add_up(summary: &CppMicroSummary) {
    assert_eq!(summary.log_problem, None);
    for c in &summary.customers {
        assert_eq!(
            minor(&c.confirmed),
            minor(&c.collected) - minor(&c.returned) + minor(&c.pending),
            "{c:?}"
        );
    }
}

pub(crate) fn key(n: u8) -> [u8; 16] {
    [n; 16]
}

/// With micropayments off, the books say there is no credit limit (null),
/// not an empty amount that breaks the answer's schema.
#[tokio::test]
async fn without_micropayments_the_books_have_no_credit_limit() {
    for_each_backend(|db| async move {
        let net = Network::start(db, 20_000).await;
        let cpp = net.cpp_micro().await;
        assert_eq!((cpp.mode.as_str(), cpp.credit_limit), ("none", None));
        assert_eq!(cpp.credit_used, "0.00 EUR");
        let mpp = net.mpp_micro(Which::Bob).await;
        assert_eq!((mpp.mode.as_str(), mpp.credit_limit), ("none", None));
        net.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn one_intermediary_defers_settles_at_theta_takes_back_and_pays_merchants() {
    for_each_backend(|db| async move {
        let config = micro(MicroMode::One, "3.00 EUR", "50.00 EUR");
        let mut net = Network::start_with_micro(db, 30_000, config).await;
        let cpp_db = net.db("cpp1").clone();

        // Below θ: DT confirmation, no hold, no bank movement.
        let first = net.pay(Which::Bob, 80, key(1)).await;
        assert_eq!(first.state, "pending", "{first:?}");
        assert_eq!(net.pending_holds().await, 0, "a micropayment has no hold");
        net.decide_now(Which::Bob, &first.payment_id, true).await;
        assert_eq!(
            net.outcome(&first.payment_id).await,
            (
                "completed".into(),
                Some(ConfirmationOutcome::DelayedTransfer)
            )
        );
        let view = net
            .settled_merchant_view(Which::Bob, &first.payment_id)
            .await;
        assert_eq!(
            view.state, "completed",
            "the merchant got the DT confirmation"
        );
        assert_eq!(net.balance(0, "cust:alice").await, ALICE_DEPOSIT);
        let record = net.record(&first.payment_id).await;
        assert_eq!((record.class.as_str(), record.hold_id), ("micro", None));

        // One to carol stays undecided; one to bob is approved; one to
        // carol is rejected and leaves the pending total at once.
        let undecided = net.pay(Which::Carol, 70, key(2)).await;
        let second = net.pay(Which::Bob, 60, key(3)).await;
        net.decide_now(Which::Bob, &second.payment_id, true).await;
        let rejected = net.pay(Which::Carol, 40, key(4)).await;
        assert_eq!(minor(&net.cpp_micro().await.credit_used), 80 + 70 + 60 + 40);
        net.decide_now(Which::Carol, &rejected.payment_id, false)
            .await;
        assert_eq!(net.outcome(&rejected.payment_id).await.0, "rejected");
        let summary = net.cpp_micro().await;
        assert_eq!(minor(&summary.customers[0].pending), 80 + 70 + 60);
        assert_eq!(net.balance(0, "cust:alice").await, ALICE_DEPOSIT);

        // Reaching θ: ONE transfer of the whole pending total, then T.
        let trigger = net.pay(Which::Bob, 90, key(5)).await;
        assert_eq!(
            trigger.state, "pending",
            "transferred, PN sent: {trigger:?}"
        );
        assert_eq!(net.balance(0, "cust:alice").await, ALICE_DEPOSIT - 300);
        net.decide_now(Which::Bob, &trigger.payment_id, true).await;
        assert_eq!(
            net.outcome(&trigger.payment_id).await,
            ("completed".into(), Some(ConfirmationOutcome::Transferred))
        );
        let summary = net.cpp_micro().await;
        assert_eq!(summary.customers[0].collected, "3.00 EUR");
        assert_eq!(summary.customers[0].pending, "0.00 EUR");

        // Carol rejects the one the batch already collected: paid back.
        net.decide_now(Which::Carol, &undecided.payment_id, false)
            .await;
        assert_eq!(net.outcome(&undecided.payment_id).await.0, "rejected");
        assert_eq!(
            net.record(&undecided.payment_id).await.micro_returned,
            "0.70 EUR"
        );
        assert_eq!(net.balance(0, "cust:alice").await, ALICE_DEPOSIT - 230);

        // Net settlement: cpp1 pays mpp1 what bob's approvals came to, and
        // mpp1 passes it on (mode one: never ahead of the money).
        net.eventually("bob paid by net settlement", || async {
            net.balance(1, "shop:bob").await == 80 + 60 + 90
        })
        .await;
        let mpp = net.mpp_micro(Which::Bob).await;
        assert_eq!(mpp.advanced, "0.00 EUR");
        assert_eq!(mpp.cpps[0].received, "2.30 EUR");
        assert_eq!(net.balance(0, "cpp:cpp1").await, 0);
        assert_eq!(net.balance(1, "mpp:mpp1").await, 0);
        books_add_up(&net.cpp_micro().await);

        // A failed aggregated transfer rejects its trigger and blocks alice;
        // the window retries W after the failure.
        default_limits(&cpp_db, 300, 2_000).await;
        let macro_pay = net.pay(Which::Bob, ALICE_DEPOSIT - 230 - 70, key(6)).await;
        net.decide_now(Which::Bob, &macro_pay.payment_id, true)
            .await;
        assert_eq!(net.outcome(&macro_pay.payment_id).await.0, "completed");
        assert_eq!(net.balance(0, "cust:alice").await, 70);
        let mut deferred = Vec::new();
        for k in 7..10 {
            deferred.push(net.pay(Which::Bob, 90, key(k)).await.payment_id);
        }
        let failing = net.pay(Which::Bob, 50, key(10)).await;
        assert_eq!(failing.state, "declined", "{failing:?}");
        assert_eq!(failing.reason.as_deref(), Some("aggregate_transfer_failed"));
        assert_eq!(net.balance(0, "cust:alice").await, 70, "nothing moved");
        let blocked = net.pay(Which::Bob, 10, key(11)).await;
        assert_eq!(
            blocked.reason.as_deref(),
            Some("micro_blocked"),
            "{blocked:?}"
        );
        let summary = net.cpp_micro().await;
        assert_eq!(summary.customers[0].state, "blocked");
        assert_eq!(summary.customers[0].pending, "2.70 EUR");
        assert_eq!(summary.customers[0].failed_transfers, 1);
        for id in &deferred {
            net.decide_now(Which::Bob, id, true).await;
            assert_eq!(net.outcome(id).await.0, "completed");
        }
        net.deposit(0, "cust:alice", 10_00).await;
        net.eventually("the window retries the blocked total", || async {
            net.cpp_micro().await.customers[0].state == "open"
        })
        .await;
        assert_eq!(net.balance(0, "cust:alice").await, 10_70 - 2_70);

        // The window settles an open customer's old total without θ.
        let old = net.pay(Which::Bob, 30, key(12)).await;
        net.decide_now(Which::Bob, &old.payment_id, true).await;
        net.eventually("the window settles an old total", || async {
            net.balance(0, "cust:alice").await == 8_00 - 30
        })
        .await;
        net.eventually("every approved micropayment reaches bob", || async {
            net.balance(1, "shop:bob").await == 2_30 + 2_70 + 30 + (ALICE_DEPOSIT - 300)
        })
        .await;
        let summary = net.cpp_micro().await;
        books_add_up(&summary);
        assert_eq!(summary.batches_started, 0);
        let mpp1 = summary.mpps.iter().find(|m| m.mpp == "mpp1").expect("mpp1");
        assert_eq!(
            (mpp1.confirmed.as_str(), mpp1.paid.as_str()),
            ("5.30 EUR", "5.30 EUR")
        );
        net.check_conservation().await;
        net.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn two_intermediaries_pay_out_within_both_credit_limits() {
    for_each_backend(|db| async move {
        let mut config = micro(MicroMode::Two, "50.00 EUR", "2.00 EUR");
        config.credit_limit = "2.00 EUR".into();
        let mut net = Network::start_with_micro(db, 30_000, config).await;
        let cpp_db = net.db("cpp1").clone();
        // mpp1's credit limit is the same table: 2.00 for the CPP, and the
        // MPP gets 1.00 by its own configuration below.
        let mut mpp_config = net.configs["mpp1"].clone();
        mpp_config.micro.credit_limit = "1.00 EUR".into();
        net.configs.insert("mpp1".into(), mpp_config);
        net.stop_service("mpp1").await;
        net.start_service("mpp1", None).await;
        net.deposit(1, "mpp:mpp1", 5_00).await;

        // The MPP pays bob ahead of the CPP, within its 1.00.
        let a = net.pay(Which::Bob, 90, key(1)).await;
        net.decide_now(Which::Bob, &a.payment_id, true).await;
        assert_eq!(
            net.outcome(&a.payment_id).await.1,
            Some(ConfirmationOutcome::DelayedTransfer)
        );
        net.eventually("a payout ahead of the money", || async {
            net.balance(1, "shop:bob").await == 90
        })
        .await;
        assert_eq!(net.mpp_micro(Which::Bob).await.advanced, "0.90 EUR");

        // A second one would take the MPP past 1.00: bob waits.
        let b = net.pay(Which::Bob, 90, key(2)).await;
        net.decide_now(Which::Bob, &b.payment_id, true).await;
        net.final_status(&b.payment_id).await;
        tokio::time::sleep(std::time::Duration::from_millis(1_000)).await;
        let mpp = net.mpp_micro(Which::Bob).await;
        assert_eq!(
            (mpp.advanced.as_str(), mpp.merchants[0].owed.as_str()),
            ("0.90 EUR", "0.90 EUR")
        );
        assert_eq!(net.balance(1, "shop:bob").await, 90);

        // The CPP's credit: 1.80 owed by alice, so 0.90 more is a macro
        // payment with a hold.
        assert_eq!(net.cpp_micro().await.credit_used, "1.80 EUR");
        let c = net.pay(Which::Bob, 90, key(3)).await;
        let record = net.record(&c.payment_id).await;
        assert_eq!(record.class, "macro");
        assert!(record.hold_id.is_some(), "over the credit limit: a hold");
        net.decide_now(Which::Bob, &c.payment_id, true).await;
        assert_eq!(
            net.outcome(&c.payment_id).await.1,
            Some(ConfirmationOutcome::Transferred)
        );
        assert_eq!(net.cpp_micro().await.credit_used, "1.80 EUR");

        // θ lowered: the next micropayment settles alice's total, the CPP
        // pays mpp1 by net settlement, and mpp1 pays bob the rest.
        default_limits(&cpp_db, 200, 24 * 3_600_000).await;
        let d = net.pay(Which::Bob, 20, key(4)).await;
        assert_eq!(d.state, "pending", "{d:?}");
        net.decide_now(Which::Bob, &d.payment_id, true).await;
        assert_eq!(
            net.outcome(&d.payment_id).await.1,
            Some(ConfirmationOutcome::Transferred)
        );
        net.eventually("bob is paid everything", || async {
            net.balance(1, "shop:bob").await == 90 + 90 + 90 + 20
        })
        .await;
        net.eventually("the MPP is repaid", || async {
            net.mpp_micro(Which::Bob).await.advanced == "0.00 EUR"
        })
        .await;
        // The interbank leg of the net settlement reaches bank2 on its own.
        net.eventually("mpp1's float is whole again", || async {
            net.balance(1, "mpp:mpp1").await == 5_00
        })
        .await;
        assert_eq!(net.balance(0, "cpp:cpp1").await, 0);
        assert_eq!(
            net.balance(0, "cust:alice").await,
            ALICE_DEPOSIT - 90 - 2_00
        );
        books_add_up(&net.cpp_micro().await);
        let status: PaymentStatus = net.final_status(&d.payment_id).await;
        assert_eq!(status.state, "completed");
        net.check_conservation().await;
        net.shutdown().await;
    })
    .await;
}

/// `POST /v1/admin/micro/recluster`: features from the CPP's micro records,
/// k-means, θ/W stored per customer; a customer the fit did not see gets
/// the default cluster's limits on the payment path.
#[tokio::test]
async fn recluster_stores_limits_per_customer_and_new_customers_get_the_default() {
    for_each_backend(|db| async move {
        let config = micro(MicroMode::One, "10.00 EUR", "500.00 EUR");
        let net = Network::start_with_micro(db, 30_000, config).await;
        let cpp_db = net.db("cpp1").clone();
        // Too few customers: refused, nothing stored.
        let refused = net.cpp.recluster(OPERATOR_TOKEN).await;
        assert!(refused.is_err(), "{refused:?}");
        // 24 customers' histories: frequent small payers, rare large ones,
        // and some whose transfer failed.
        let eur = |m| mpay_money::Amount::new(m, mpay_money::Currency::EUR);
        let limits =
            mpay_micro::policy::MicroLimits::new(eur(100), eur(1_000), 86_400_000).expect("limits");
        let now = mpay_network::wall_clock().as_millis();
        let mut payment = 1_000_000u64;
        for c in 0..24u64 {
            let customer = mpay_identity::PartyId::from_u64(c + 1);
            let (n, amount) = if c % 2 == 0 { (30u64, 5) } else { (3, 90) };
            let first = payment;
            payment += n;
            let limits = &limits;
            cpp_db
                .with_retry(move |tx| {
                    Box::pin(async move {
                        let mut trigger = None;
                        for i in 0..n {
                            let at = mpay_identity::Timestamp(now - 86_400_000 + i * 1_000);
                            let out = mpay_micro::store::add(
                                tx,
                                &customer,
                                first + i,
                                eur(amount),
                                limits,
                                at,
                            )
                            .await?;
                            if let mpay_micro::pending::AddOutcome::SettleNeeded(b) = out {
                                trigger = Some(b);
                                break;
                            }
                        }
                        if let Some(batch) = trigger {
                            let t = mpay_identity::Timestamp(now - 1_000);
                            if c % 6 == 1 {
                                mpay_micro::store::failed(tx, batch.id, limits, t).await?;
                            } else {
                                mpay_micro::store::settled(
                                    tx,
                                    batch.id,
                                    mpay_money::Currency::EUR,
                                    t,
                                )
                                .await?;
                            }
                        }
                        Ok::<_, mpay_micro::store::StoreError>(())
                    })
                })
                .await
                .expect("history recorded");
        }
        let report = net.cpp.recluster(OPERATOR_TOKEN).await.expect("recluster");
        assert_eq!(report.customers, 24);
        assert!(report.clusters.len() >= 2, "{report:?}");
        assert_eq!(
            report.clusters.iter().map(|c| c.customers).sum::<usize>(),
            24
        );
        let stored: i64 = sqlx::query("SELECT COUNT(*) AS n FROM cpp_micro_limits")
            .fetch_one(cpp_db.pool())
            .await
            .expect("count")
            .try_get_unchecked("n")
            .expect("n");
        assert_eq!(stored, 24);
        let default = &report.clusters[report.default_cluster];
        assert!(
            report
                .clusters
                .iter()
                .all(|c| minor(&c.theta) >= minor(&default.theta)),
            "the default cluster is the most cautious: {report:?}"
        );
        // alice was not in the fit: her next micropayment runs on the
        // default cluster's θ.
        let mut net = net;
        let paid = net.pay(Which::Bob, 50, key(1)).await;
        assert_eq!(paid.state, "pending");
        let summary = net.cpp_micro().await;
        let alice = summary
            .customers
            .iter()
            .find(|c| c.name == "alice")
            .expect("alice");
        assert_eq!(alice.theta, default.theta);
        assert_eq!(alice.window_ms, default.window_ms);
        net.shutdown().await;
    })
    .await;
}
