//! Every amount entering the SEMOPS services is bounded by
//! `mpay_money::AMOUNT_MINOR_MAX` (issue 11, items 6 and 9): a TRANS in a
//! customer's PR and a merchant's refund request past it are refused at the
//! decoder with the documented JSON 400, signed by their true authors and
//! sent over the real routes, and nothing moves. At the bound itself the
//! request reaches the service's own checks.

use mpay_http::testing::{Case, probe_with};
use mpay_identity::SecretKeys;
use mpay_money::{AMOUNT_MINOR_MAX, Amount, Currency};
use mpay_network::wall_clock;
use mpay_semops::{
    REQUEST_LIFETIME_DEFAULT_MS, RefundRequest, Trans, Validity, kind, seal_payload, tags,
};
use mpay_sql::testing::for_each_backend;
use mpay_wire::{Encode, Writer};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use reqwest::Method;

use crate::harness::{ALICE_DEPOSIT, Network, PIN, Which, hex_id};

/// Bytes already encoded, to seal or sign what the typed constructors
/// refuse to build.
struct Raw(Vec<u8>);

impl Encode for Raw {
    fn encode(&self, w: &mut Writer) {
        w.raw(&self.0);
    }
}

/// `body` signed under `tag` as `Signed<T>` encodes it (body ‖ signature),
/// without the checks `Signed::sign` makes.
fn signed_raw(tag: &[u8], body: &impl Encode, keys: &SecretKeys) -> Vec<u8> {
    let body = body.to_wire();
    let signature = keys.sign(tag, &[&body]);
    let mut w = Writer::new();
    w.raw(&body).put(&signature);
    w.into_bytes()
}

/// Alice's PR for a TRANS of `minor` cents to bob, signed by bob and sealed
/// to the CPP by alice's device, whatever the amount.
fn pr_frame(net: &Network, minor: i64, key: [u8; 16], rng: &mut ChaCha20Rng) -> Vec<u8> {
    let trans = Trans {
        merchant: net.bob.id,
        mpp: net.bob.mpp,
        amount: Amount::new(minor, Currency::EUR),
        merchant_reference: "order-huge".into(),
        expires_at: wall_clock().saturating_add_ms(10 * 60 * 1000),
        description: "test purchase".into(),
        nonce: key,
    };
    let mut w = Writer::new();
    w.raw(&signed_raw(tags::TRANS, &trans, &net.bob.keys))
        .text("alice")
        .put(&net.cpp_id)
        .text(PIN)
        .raw(&key)
        .u8(0); // no shipping details
    seal_payload(
        kind::PAYMENT_REQUEST,
        &Raw(w.into_bytes()),
        &net.device_keys,
        net.device,
        net.cpp_id,
        &net.cpp_keys,
        key,
        wall_clock(),
        rng,
    )
    .expect("PR seals")
}

/// Bob's refund of `minor` cents of `payment_id` under key `[key; 16]`,
/// signed by bob, as the JSON body of `POST /v1/refunds`.
fn refund_body(net: &Network, payment_id: &str, minor: i64, key: u8) -> String {
    let request = RefundRequest {
        payment_id: hex_id(payment_id),
        merchant: net.bob.id,
        amount: Amount::new(minor, Currency::EUR),
        idempotency_key: [key; 16],
        validity: Validity::starting(wall_clock(), REQUEST_LIFETIME_DEFAULT_MS),
    };
    let signed = signed_raw(tags::REFUND_REQUEST, &request, &net.bob.keys);
    format!("{{\"signed\": \"{}\"}}", mpay_identity::hex_string(&signed))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbounded_amounts_are_refused_at_the_cpp_and_the_mpp() {
    for_each_backend(|db| async move {
        let mut net = Network::start(db, 10_000).await;
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let mut failures = Vec::new();

        // The CPP: a PR whose TRANS is past the bound is the customer's
        // fault (400); at the bound it reaches the bank, which declines it
        // (alice has 100.00 EUR).
        let mut cases = Vec::new();
        for (i, (minor, status)) in [(AMOUNT_MINOR_MAX + 1, 400), (i64::MAX, 400)]
            .into_iter()
            .enumerate()
        {
            let key = [0x60 + u8::try_from(i).expect("few"); 16];
            cases.push(
                Case::new(
                    format!("PR for {minor} minor units"),
                    Method::POST,
                    "/v1/payments",
                )
                .body(pr_frame(&net, minor, key, &mut rng))
                .expect(status),
            );
        }
        for failure in probe_with(&net.http, &net.url("cpp1"), &cases).await {
            failures.push(format!("cpp1: {failure}"));
        }
        let at_bound = pr_frame(&net, AMOUNT_MINOR_MAX, [0x6f; 16], &mut rng);
        match net.cpp.submit(at_bound).await {
            Ok(status) => assert_eq!(status.state, "declined", "{status:?}"),
            Err(e) => assert!(e.to_string().contains("(402)"), "{e}"),
        }

        // The MPP: a completed payment of 10.00 with 0.01 refunded, then
        // refunds past the bound (the total refunded would overflow in
        // SQL) and at it (more than was paid: 409).
        let status = net.pay(Which::Bob, 10_00, [0x70; 16]).await;
        let id = status.payment_id.clone();
        net.notice(Which::Bob, &id).await;
        net.decide(Which::Bob, &id, true).await;
        assert_eq!(net.final_status(&id).await.state, "completed");
        let view = net.settled_merchant_view(Which::Bob, &id).await;
        assert_eq!(view.state, "completed", "{view:?}");
        let first = net.refund(Which::Bob, &id, 1, 0x71);
        net.bob
            .client
            .refund(&net.bob.token, &first)
            .await
            .expect("a refund of 0.01 is accepted");
        let token = net.bob.token.clone();
        let refund = |name: &str, minor: i64, key: u8, status: u16| {
            Case::new(name, Method::POST, "/v1/refunds")
                .token(&token)
                .json(refund_body(&net, &id, minor, key))
                .expect(status)
        };
        let cases = vec![
            refund("refund of i64::MAX after a refund", i64::MAX, 0x72, 400),
            refund("refund past the bound", AMOUNT_MINOR_MAX + 1, 0x73, 400),
            refund("refund at the bound", AMOUNT_MINOR_MAX, 0x74, 409),
        ];
        for failure in probe_with(&net.http, &net.url("mpp1"), &cases).await {
            failures.push(format!("mpp1: {failure}"));
        }
        assert!(
            failures.is_empty(),
            "{} requests were answered wrongly:\n{}",
            failures.len(),
            failures.join("\n")
        );

        // Nothing moved but the payment and its refund of 0.01.
        net.eventually("the refund of 0.01 to reach alice", || async {
            net.balance(0, "cust:alice").await == ALICE_DEPOSIT - 10_00 + 1
        })
        .await;
        net.check_conservation().await;
        net.shutdown().await;
    })
    .await;
}
