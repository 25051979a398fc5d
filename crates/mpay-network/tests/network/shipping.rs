//! Shipping details shared with the merchant (`--share-shipping`): sealed by
//! the customer device to the merchant, carried through the CPP, the DCs
//! and the MPP unread, opened by the merchant only.

use mpay_network::client::{ClientError, Notice};
use mpay_network::wall_clock;
use mpay_semops::{
    CustomerRef, PaymentRequest, Pin, SHIPPING_CIPHERTEXT_LEN_MAX, SemopsError,
    SignedPaymentNotice, kind, open_shipping, seal_payload,
};
use mpay_sql::sqlx::{self, Row};
use mpay_sql::testing::for_each_backend;
use mpay_sql::{Backend, Db};
use mpay_wire::{Decode, Encode};
use rand_core::SeedableRng;

use crate::harness::{ALICE_DEPOSIT, Network, PIN, Which};

const ADDRESS: &str = "Alice Liddell\nFlat 3, 29 Christ Church Lane\nOxford OX1 1DP";

/// Every byte string and text stored in `db`'s tables, one per cell.
async fn stored_cells(db: &Db) -> Vec<Vec<u8>> {
    let tables_sql = match db.backend() {
        Backend::Sqlite => "SELECT name AS t FROM sqlite_master WHERE type = 'table'",
        Backend::Postgres => {
            "SELECT CAST(tablename AS TEXT) AS t FROM pg_tables WHERE schemaname = current_schema()"
        }
    };
    let tables: Vec<String> = sqlx::query(tables_sql)
        .fetch_all(db.pool())
        .await
        .expect("tables")
        .iter()
        .map(|r| r.try_get("t").expect("table name"))
        .collect();
    assert!(!tables.is_empty());
    let mut cells = Vec::new();
    for table in tables {
        // The names come from the database's own catalogue.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM {table}")))
            .fetch_all(db.pool())
            .await
            .expect("rows");
        for row in &rows {
            for i in 0..row.len() {
                if let Ok(Some(bytes)) = row.try_get::<Option<Vec<u8>>, _>(i) {
                    cells.push(bytes);
                } else if let Ok(Some(text)) = row.try_get::<Option<String>, _>(i) {
                    cells.push(text.into_bytes());
                }
            }
        }
    }
    cells
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Asserts that no cell of service `name`'s database holds any line of
/// [`ADDRESS`], and that one holds `expected` (so the scan does read what
/// the service stored).
async fn assert_unreadable_in(net: &Network, name: &str, expected: &[u8]) {
    let cells = stored_cells(net.db(name)).await;
    assert!(
        cells.iter().any(|c| contains(c, expected)),
        "{name}: the scan did not find what the service stored"
    );
    for line in ADDRESS.lines() {
        assert!(
            !cells.iter().any(|c| contains(c, line.as_bytes())),
            "{name} stores `{line}` in the clear"
        );
    }
}

/// An international payment (cpp1 → dc-eu → dc-us → mpp2) sharing shipping
/// details: carol reads them exactly, with the notice and with the payment
/// after it completed; the CPP, both DCs and the MPP store no line of them,
/// and their keys do not open them.
#[tokio::test]
async fn shared_shipping_reaches_the_merchant_only() {
    for_each_backend(|db| async move {
        let mut net = Network::start(db, 10_000).await;
        let trans = net.trans(Which::Carol, 20_00, "order-ship");
        let sealed = net.seal_shipping(Which::Carol, &trans, ADDRESS).await;
        let frame = net.pr_frame_sharing(&trans, PIN, [40; 16], Some(sealed.clone()));
        let status = net.cpp.submit(frame).await.expect("PR accepted");
        let status = net.past_received(status).await;
        assert_eq!(status.state, "pending", "{status:?}");

        let notice = net.notice(Which::Carol, &status.payment_id).await;
        let carol = (&net.carol.keys, net.carol.id);
        assert_eq!(
            notice.shipping,
            Some(mpay_identity::hex_string(&sealed.to_wire()))
        );
        let opened = notice.open_shipping(carol.0, carol.1).expect("shared");
        assert_eq!(opened.expect("opens").as_str(), ADDRESS);

        // The processors' own keys do not open what they carried.
        let nonce = trans.unverified_body().nonce;
        for name in ["cpp1", "dc-eu", "dc-us", "mpp2"] {
            let keys = &net.keys[name];
            assert_eq!(
                open_shipping(&sealed, keys, carol.1, &nonce),
                Err(SemopsError::ShippingSealBroken),
                "{name} opened the shipping details"
            );
        }
        // What each stored: the CPP its payment (with the sealed blob) and
        // the PN it queued, the DCs their routes, the MPP the PN it was
        // forwarded (the payload of the DC's frame, blob included).
        let blob = sealed.to_wire();
        assert_unreadable_in(&net, "cpp1", &blob).await;
        assert_unreadable_in(&net, "dc-eu", status.payment_id.as_bytes()).await;
        assert_unreadable_in(&net, "dc-us", b"forwarded").await;
        assert_unreadable_in(&net, "mpp2", &blob).await;
        let stored: Vec<u8> = sqlx::query("SELECT notice FROM mpp_payments")
            .fetch_one(net.db("mpp2").pool())
            .await
            .expect("the MPP's payment")
            .try_get("notice")
            .expect("notice");
        let pn = SignedPaymentNotice::from_wire(&stored).expect("a PN");
        assert_eq!(pn.unverified_body().shipping.as_ref(), Some(&sealed));

        net.decide(Which::Carol, &status.payment_id, true).await;
        assert_eq!(
            net.final_status(&status.payment_id).await.state,
            "completed"
        );
        let view = net
            .settled_merchant_view(Which::Carol, &status.payment_id)
            .await;
        let opened = view.open_shipping(carol.0, carol.1).expect("shared");
        assert_eq!(opened.expect("opens").as_str(), ADDRESS);
        net.check_conservation().await;
        assert_eq!(net.balance(0, "cust:alice").await, ALICE_DEPOSIT - 20_00);
        assert_eq!(net.balance(1, "shop:carol").await, 20_00);
        net.shutdown().await;
    })
    .await;
}

/// A micropayment's PN is signed when the CPP admits it (no hold): the
/// shared details travel in it all the same, and only the merchant reads
/// them.
#[tokio::test]
async fn shared_shipping_travels_with_a_micropayment() {
    for_each_backend(|db| async move {
        let config = mpay_network::MicroConfig {
            mode: mpay_network::MicroMode::One,
            limit: "1.00 EUR".into(),
            theta: "3.00 EUR".into(),
            window_ms: 24 * 3_600_000,
            credit_limit: "50.00 EUR".into(),
            transfer_fee: "0.20 EUR".into(),
            sweep_interval_ms: 200,
            settle_interval_ms: 300,
        };
        let mut net = Network::start_with_micro(db, 30_000, config).await;
        let trans = net.trans(Which::Bob, 80, "coffee");
        let sealed = net.seal_shipping(Which::Bob, &trans, ADDRESS).await;
        let frame = net.pr_frame_sharing(&trans, PIN, [42; 16], Some(sealed.clone()));
        let status = net.cpp.submit(frame).await.expect("PR accepted");
        let notice = net.notice(Which::Bob, &status.payment_id).await;
        let opened = notice
            .open_shipping(&net.bob.keys, net.bob.id)
            .expect("shared");
        assert_eq!(opened.expect("opens").as_str(), ADDRESS);
        assert_unreadable_in(&net, "cpp1", &sealed.to_wire()).await;
        assert_unreadable_in(&net, "mpp1", &sealed.to_wire()).await;
        net.decide(Which::Bob, &status.payment_id, false).await;
        assert_eq!(net.final_status(&status.payment_id).await.state, "rejected");
        net.check_conservation().await;
        assert_eq!(net.balance(0, "cust:alice").await, ALICE_DEPOSIT);
        net.shutdown().await;
    })
    .await;
}

/// Without sharing, no shipping field travels: none in the CPP's row, the
/// PN, the merchant's notice or its view of the payment.
#[tokio::test]
async fn without_sharing_no_shipping_travels() {
    for_each_backend(|db| async move {
        let mut net = Network::start(db, 10_000).await;
        let status = net.pay(Which::Bob, 7_00, [41; 16]).await;
        let notice = net.notice(Which::Bob, &status.payment_id).await;
        assert_eq!(notice.shipping, None);
        assert!(notice.open_shipping(&net.bob.keys, net.bob.id).is_none());
        let stored: Option<Vec<u8>> = sqlx::query("SELECT shipping FROM cpp_payments")
            .fetch_one(net.db("cpp1").pool())
            .await
            .expect("the CPP's payment")
            .try_get("shipping")
            .expect("shipping");
        assert_eq!(stored, None);
        let stored: Vec<u8> = sqlx::query("SELECT notice FROM mpp_payments")
            .fetch_one(net.db("mpp1").pool())
            .await
            .expect("the MPP's payment")
            .try_get("notice")
            .expect("notice");
        let pn = SignedPaymentNotice::from_wire(&stored).expect("a PN");
        assert_eq!(pn.unverified_body().shipping, None);
        net.decide(Which::Bob, &status.payment_id, false).await;
        assert_eq!(net.final_status(&status.payment_id).await.state, "rejected");
        let view = net
            .settled_merchant_view(Which::Bob, &status.payment_id)
            .await;
        assert_eq!(view.shipping, None);
        net.check_conservation().await;
        assert_eq!(net.balance(0, "cust:alice").await, ALICE_DEPOSIT);
        net.shutdown().await;
    })
    .await;
}

/// Shipping details of one payment, shown with another payment (an MPP
/// that moves them between its merchant's notices), do not open: the
/// merchant refuses them.
#[tokio::test]
async fn shipping_moved_to_another_payment_is_refused_by_the_merchant() {
    for_each_backend(|db| async move {
        let mut net = Network::start(db, 10_000).await;
        let mut notices: Vec<Notice> = Vec::new();
        for (i, text) in [(0u8, ADDRESS), (1, "Bob's other address")] {
            let trans = net.trans(Which::Bob, 3_00, &format!("order-{i}"));
            let sealed = net.seal_shipping(Which::Bob, &trans, text).await;
            let frame = net.pr_frame_sharing(&trans, PIN, [50 + i; 16], Some(sealed));
            let status = net.cpp.submit(frame).await.expect("PR accepted");
            let status = net.past_received(status).await;
            notices.push(net.notice(Which::Bob, &status.payment_id).await);
        }
        let (keys, id) = (&net.bob.keys, net.bob.id);
        for (notice, text) in notices.iter().zip([ADDRESS, "Bob's other address"]) {
            let opened = notice.open_shipping(keys, id).expect("shared");
            assert_eq!(opened.expect("opens").as_str(), text);
        }
        let moved = Notice {
            shipping: notices[0].shipping.clone(),
            ..notices[1].clone()
        };
        assert_eq!(
            moved.open_shipping(keys, id).expect("shared"),
            Err(SemopsError::ShippingSealBroken)
        );
        // Another merchant of the network cannot read them either.
        assert_eq!(
            notices[0]
                .open_shipping(&net.carol.keys, net.carol.id)
                .expect("shared"),
            Err(SemopsError::ShippingSealBroken)
        );
        for notice in &notices {
            net.decide(Which::Bob, &notice.payment_id, false).await;
            net.final_status(&notice.payment_id).await;
        }
        net.check_conservation().await;
        assert_eq!(net.balance(0, "cust:alice").await, ALICE_DEPOSIT);
        net.shutdown().await;
    })
    .await;
}

/// A PR whose sealed shipping details are longer than any the limit
/// allows is refused by the CPP's decoder: no payment, no money moved.
#[tokio::test]
async fn oversized_shipping_is_refused_by_the_cpp() {
    for_each_backend(|db| async move {
        let mut net = Network::start(db, 10_000).await;
        let trans = net.trans(Which::Bob, 5_00, "order-big");
        let mut sealed = net.seal_shipping(Which::Bob, &trans, "short").await;
        sealed.ciphertext = vec![0x41; SHIPPING_CIPHERTEXT_LEN_MAX + 1];
        let pr = PaymentRequest {
            trans,
            customer: CustomerRef::new("alice").expect("ref"),
            cpp: net.cpp_id,
            pin: Pin::new(PIN).expect("pin"),
            idempotency_key: [60; 16],
            shipping: Some(sealed),
        };
        let frame = seal_payload(
            kind::PAYMENT_REQUEST,
            &pr,
            &net.device_keys,
            net.device,
            net.cpp_id,
            &net.cpp_keys,
            [60; 16],
            wall_clock(),
            &mut rand_chacha::ChaCha20Rng::seed_from_u64(60),
        )
        .expect("seals");
        let error = net.cpp.submit(frame).await.expect_err("refused");
        assert!(
            matches!(
                &error,
                ClientError::Refused {
                    status: 400..=499,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(error.to_string().contains("shipping"), "{error}");
        let payments: i64 = sqlx::query("SELECT COUNT(*) AS n FROM cpp_payments")
            .fetch_one(net.db("cpp1").pool())
            .await
            .expect("count")
            .try_get("n")
            .expect("n");
        assert_eq!(payments, 0);
        net.check_conservation().await;
        assert_eq!(net.balance(0, "cust:alice").await, ALICE_DEPOSIT);
        net.shutdown().await;
    })
    .await;
}
