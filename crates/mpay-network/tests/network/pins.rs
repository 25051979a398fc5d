//! PINs checked by keyed verification values (DESIGN §3.2): a customer
//! enrolled before them moves to one at the next right PIN, a key rotation
//! renews them as customers pay, a retired key needs an operator's new PIN,
//! and the operator's PIN routes are the operator's alone.

use mpay_network::client::PinReport;
use mpay_semops::{Pin, PinHash, PinKey, PinKeys, PinParams, StoredPin};
use mpay_sql::sqlx;
use mpay_sql::testing::for_each_backend;
use mpay_wire::Encode;

use crate::harness::{Network, OPERATOR_TOKEN, PIN, Which};

async fn report(net: &Network) -> PinReport {
    net.cpp
        .pin_report(OPERATOR_TOKEN)
        .await
        .expect("PIN report")
}

/// Rejects `payment_id` at the merchant, so its hold is voided.
async fn reject(net: &Network, payment_id: &str) {
    net.notice(Which::Bob, payment_id).await;
    net.decide(Which::Bob, payment_id, false).await;
    assert_eq!(net.final_status(payment_id).await.state, "rejected");
}

/// Restarts the CPP with `keys` in its PIN key file.
async fn restart_cpp_with(net: &mut Network, keys: &PinKeys) {
    let path = net.configs["cpp1"]
        .pin_keys
        .clone()
        .expect("a PIN key file");
    mpay_network::config::write_pin_keys(std::path::Path::new(&path), keys).expect("written");
    net.stop_service("cpp1").await;
    net.start_service("cpp1", None).await;
    // A connection pooled before the restart fails once (the old server
    // closed it); wait until the new server answers.
    net.eventually("cpp1 to answer after its restart", || async {
        net.cpp.health().await.is_ok()
    })
    .await;
}

fn current_keys(net: &Network) -> PinKeys {
    let path = net.configs["cpp1"]
        .pin_keys
        .clone()
        .expect("a PIN key file");
    mpay_network::config::read_pin_keys(std::path::Path::new(&path)).expect("read")
}

#[tokio::test]
async fn a_customer_enrolled_before_pvvs_pays_and_is_moved_to_a_pvv() {
    for_each_backend(|db| async move {
        let mut net = Network::start(db, 10_000).await;
        // Alice as enrolled before PVVs: an Argon2id hash of her PIN.
        let pin = Pin::new(PIN).expect("PIN");
        let hash = PinHash::new(&pin, [5; 16], PinParams::FAST_FOR_TESTS).expect("hash");
        sqlx::query("UPDATE cpp_customers SET pin_hash = $1 WHERE name = 'alice'")
            .bind(StoredPin::Argon2(hash).to_wire())
            .execute(net.db("cpp1").pool())
            .await
            .expect("stored");
        let before = report(&net).await;
        assert_eq!((before.customers, before.argon2), (1, 1), "{before:?}");

        let trans = net.trans(Which::Bob, 1_00, "order-old-pin");
        let frame = net.pr_frame(&trans, "9999", [31; 16]);
        let error = net.cpp.submit(frame).await.unwrap_err();
        assert_eq!(error.code(), Some("wrong_pin"));
        assert_eq!(report(&net).await.argon2, 1, "a wrong PIN moves nothing");

        let paid = net.pay(Which::Bob, 2_00, [32; 16]).await;
        let after = report(&net).await;
        assert_eq!((after.argon2, after.current_key), (0, 1), "{after:?}");
        // And the PVV it now has checks her PIN.
        let again = net.pay(Which::Bob, 3_00, [33; 16]).await;
        for id in [&paid.payment_id, &again.payment_id] {
            reject(&net, id).await;
        }
        net.check_conservation().await;
        net.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_rotated_key_renews_as_customers_pay_and_a_retired_key_needs_a_new_pin() {
    for_each_backend(|db| async move {
        let mut net = Network::start(db, 10_000).await;
        let first = current_keys(&net);
        let rotated = first.rotated(PinKey::new([0x42; 32])).expect("rotated");
        restart_cpp_with(&mut net, &rotated).await;
        let r = report(&net).await;
        assert_eq!((r.current_key, r.older_keys), (0, 1), "{r:?}");

        let paid = net.pay(Which::Bob, 1_00, [41; 16]).await;
        let r = report(&net).await;
        assert_eq!((r.current_key, r.older_keys), (1, 0), "renewed: {r:?}");

        // Every key Alice's value was made under is retired.
        let retired = PinKeys::new(vec![PinKey::new([0x43; 32])]).expect("keys");
        restart_cpp_with(&mut net, &retired).await;
        assert_eq!(report(&net).await.unverifiable, 1);
        let trans = net.trans(Which::Bob, 2_00, "order-retired");
        let frame = net.pr_frame(&trans, PIN, [42; 16]);
        let error = net.cpp.submit(frame).await.unwrap_err();
        assert_eq!(error.code(), Some("pin_reset_required"), "{error}");
        assert_eq!(
            net.banks[0].pending_holds().await.expect("holds"),
            1,
            "only the first"
        );

        net.cpp
            .set_pin(OPERATOR_TOKEN, "alice", "24680")
            .await
            .expect("a new PIN");
        assert_eq!(report(&net).await.current_key, 1);
        let frame = net.pr_frame(&trans, "24680", [43; 16]);
        let status = net.cpp.submit(frame).await.expect("the new PIN pays");
        let frame = net.pr_frame(&trans, PIN, [44; 16]);
        assert_eq!(
            net.cpp.submit(frame).await.unwrap_err().code(),
            Some("wrong_pin"),
            "the old PIN no longer does"
        );
        for id in [&paid.payment_id, &status.payment_id] {
            reject(&net, id).await;
        }
        net.check_conservation().await;
        net.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn the_pin_routes_are_the_operators_and_check_what_they_are_given() {
    for_each_backend(|db| async move {
        let net = Network::start(db, 10_000).await;
        let refused = |e: mpay_network::client::ClientError| e.code().map(str::to_owned);
        let e = net
            .cpp
            .set_pin("not-the-operator-token", "alice", "1111")
            .await;
        assert_eq!(e.map_err(refused), Err(Some("unauthenticated".into())));
        let e = net.cpp.pin_report("not-the-operator-token").await;
        assert_eq!(e.map_err(refused), Err(Some("unauthenticated".into())));
        let e = net.cpp.set_pin(OPERATOR_TOKEN, "alice", "12ab").await;
        assert_eq!(e.map_err(refused), Err(Some("invalid".into())));
        let e = net.cpp.set_pin(OPERATOR_TOKEN, "nobody", "1111").await;
        assert_eq!(e.map_err(refused), Err(Some("not_found".into())));
        // Alice's PIN is unchanged by all of it.
        let paid = net.cpp.pin_report(OPERATOR_TOKEN).await.expect("report");
        assert_eq!(paid.current_key, 1);
        net.shutdown().await;
    })
    .await;
}
