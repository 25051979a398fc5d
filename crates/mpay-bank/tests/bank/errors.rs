//! Every bad request to the bank, over real HTTP on loopback, gets a 4xx
//! whose body is the documented `{"error", "message"}` JSON: unknown
//! routes, wrong methods, oversized bodies, wrong content types, malformed
//! JSON, bad path and query parameters, missing tokens, huge numbers and
//! non-UTF-8 bytes. No input produces a 5xx.

use std::sync::Arc;

use mpay_bank::Bank;
use mpay_bank::http::{REQUEST_BODY_LEN_MAX, wall_clock};
use mpay_http::testing::{Case, Routes, bad_requests, probe};
use mpay_sql::testing::for_each_backend;
use reqwest::Method;
use tokio::net::TcpListener;

use crate::{ALICE_TOKEN, CPP_TOKEN, OPERATOR_TOKEN, Scheme, balance, deposit, open_accounts};

fn operator_post(name: &str, path: &str, key: &str, body: &str) -> Case {
    Case::new(name, Method::POST, path)
        .token(OPERATOR_TOKEN)
        .header("idempotency-key", key)
        .json(body.to_owned())
}

fn cpp_post(name: &str, path: &str, key: &str, body: &str) -> Case {
    Case::new(name, Method::POST, path)
        .token(CPP_TOKEN)
        .header("idempotency-key", key)
        .json(body.to_owned())
}

/// The bank's own cases: amounts, floors, ids and times out of every limit,
/// and the checks on tokens and idempotency keys.
fn bank_cases() -> Vec<Case> {
    let huge = "92233720368547758.07 EUR";
    vec![
        operator_post("deposit without an account", "/v1/deposits", "d1", "{\"amount\": \"1.00 EUR\"}")
            .expect(422),
        operator_post("deposit of a huge amount", "/v1/deposits", "d2",
            "{\"account\": \"cust:alice\", \"amount\": \"99999999999999999999999999.99 EUR\"}"),
        operator_post("deposit of an amount with an exponent", "/v1/deposits", "d3",
            "{\"account\": \"cust:alice\", \"amount\": \"1e999 EUR\"}"),
        operator_post("deposit of a negative amount", "/v1/deposits", "d4",
            "{\"account\": \"cust:alice\", \"amount\": \"-5.00 EUR\"}"),
        operator_post("deposit in another currency", "/v1/deposits", "d5",
            "{\"account\": \"cust:alice\", \"amount\": \"5.00 USD\"}"),
        operator_post("deposit of sub-cent amount", "/v1/deposits", "d6",
            "{\"account\": \"cust:alice\", \"amount\": \"0.001 EUR\"}"),
        operator_post("deposit to a non-UTF-8-ish account", "/v1/deposits", "d7",
            "{\"account\": \"cust:\\u0000\\uffff\", \"amount\": \"1.00 EUR\"}"),
        operator_post("deposit with a NUL in the reference", "/v1/deposits", "d8",
            "{\"account\": \"cust:nobody\", \"amount\": \"1.00 EUR\", \"reference\": \"a\\u0000b\"}"),
        operator_post("open an account with an absurd floor", "/v1/accounts", "o1",
            "{\"id\": \"cust:abyss\", \"holder\": \"abyss\", \"floor\": \"-999999999999999999999.99 EUR\"}"),
        operator_post("open an account with a malformed id", "/v1/accounts", "o2",
            "{\"id\": \"no colon here\", \"holder\": \"x\"}"),
        operator_post("open an account with a NUL in the holder", "/v1/accounts", "o3",
            "{\"id\": \"cust:nul\", \"holder\": \"a\\u0000b\"}"),
        cpp_post("transfer of more than i64", "/v1/transfers", "t1",
            &format!("{{\"from\": \"cust:alice\", \"to\": \"cpp:cpp1\", \"amount\": \"{huge}0\"}}")),
        cpp_post("transfer of the largest amount", "/v1/transfers", "t2",
            &format!("{{\"from\": \"cust:alice\", \"to\": \"cpp:cpp1\", \"amount\": \"{huge}\"}}")),
        cpp_post("hold expiring at u64::MAX", "/v1/holds", "h1",
            "{\"account\": \"cust:alice\", \"amount\": \"1.00 EUR\", \"expires_at\": 18446744073709551615}"),
        cpp_post("hold expiring past u64", "/v1/holds", "h2",
            "{\"account\": \"cust:alice\", \"amount\": \"1.00 EUR\", \"expires_at\": 18446744073709551616}")
            .expect(422),
        cpp_post("hold expiring at 1e30", "/v1/holds", "h3",
            "{\"account\": \"cust:alice\", \"amount\": \"1.00 EUR\", \"expires_at\": 1e30}")
            .expect(422),
        cpp_post("hold expiring at a negative time", "/v1/holds", "h4",
            "{\"account\": \"cust:alice\", \"amount\": \"1.00 EUR\", \"expires_at\": -1}")
            .expect(422),
        cpp_post("post an unknown hold", "/v1/holds/9223372036854775807/post", "p1", "{\"to\": \"cpp:cpp1\"}"),
        cpp_post("post a hold id past i64", "/v1/holds/9223372036854775808/post", "p2", "{\"to\": \"cpp:cpp1\"}"),
        cpp_post("post to a malformed bank", "/v1/holds/1/post", "p3", "{\"to\": \"cpp:cpp1\", \"bank\": \"zz\"}"),
        cpp_post("interbank transfer to a malformed bank", "/v1/interbank-transfers", "i1",
            "{\"from\": \"cust:alice\", \"bank\": \"%FF\", \"to\": \"shop:bob\", \"amount\": \"1.00 EUR\"}"),
        Case::new("void without an idempotency key", Method::POST, "/v1/holds/1/void")
            .token(CPP_TOKEN)
            .expect(400),
        Case::new("deposit with a non-ASCII idempotency key", Method::POST, "/v1/deposits")
            .token(OPERATOR_TOKEN)
            .header("idempotency-key", "\u{e9}t\u{e9}")
            .json("{\"account\": \"cust:alice\", \"amount\": \"1.00 EUR\"}"),
        Case::new("deposit with an overlong idempotency key", Method::POST, "/v1/deposits")
            .token(OPERATOR_TOKEN)
            .header("idempotency-key", &"k".repeat(4_000))
            .json("{\"account\": \"cust:alice\", \"amount\": \"1.00 EUR\"}"),
        Case::new("deposit by a customer", Method::POST, "/v1/deposits")
            .token(ALICE_TOKEN)
            .header("idempotency-key", "c1")
            .json("{\"account\": \"cust:alice\", \"amount\": \"1.00 EUR\"}")
            .expect(403),
        Case::new("books by a customer", Method::GET, "/v1/books").token(ALICE_TOKEN).expect(403),
        Case::new("notifications, limit not a number", Method::GET,
            "/v1/accounts/cust:alice/notifications?limit=abc").token(ALICE_TOKEN).expect(400),
        Case::new("notifications, limit past u32", Method::GET,
            "/v1/accounts/cust:alice/notifications?limit=99999999999999999999").token(ALICE_TOKEN).expect(400),
        Case::new("notifications, after past i64", Method::GET,
            "/v1/accounts/cust:alice/notifications?after=9223372036854775808").token(ALICE_TOKEN).expect(400),
        Case::new("notifications, non-UTF-8 query", Method::GET,
            "/v1/accounts/cust:alice/notifications?after=%FF").token(ALICE_TOKEN).expect(400),
        Case::new("notifications, non-UTF-8 account", Method::GET,
            "/v1/accounts/%FF/notifications").token(ALICE_TOKEN).expect(400),
        Case::new("a hold id that is not a number", Method::GET, "/v1/holds/abc").token(CPP_TOKEN).expect(400),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_request_gets_a_documented_json_4xx() {
    for_each_backend(|db| async move {
        let (bank, base, server) = serving(db).await;
        let routes = Routes {
            json_post: Some("/v1/deposits".into()),
            json_headers: vec![
                ("authorization".into(), format!("Bearer {OPERATOR_TOKEN}")),
                ("idempotency-key".into(), "generic".into()),
            ],
            frame_post: Some("/v1/interbank".into()),
            guarded_get: "/v1/books".into(),
            path_get: Some("/v1/accounts/{}".into()),
            path_headers: vec![("authorization".into(), format!("Bearer {OPERATOR_TOKEN}"))],
            body_len_max: REQUEST_BODY_LEN_MAX,
        };
        let mut cases = bad_requests(&routes);
        cases.extend(bank_cases());
        let failures = probe(&base, &cases).await;
        assert!(
            failures.is_empty(),
            "{} of {} bad requests were answered wrongly:\n{}",
            failures.len(),
            cases.len(),
            failures.join("\n")
        );

        // Nothing moved, and the books still balance.
        assert_eq!(balance(&bank, "cust:alice").await, 10_000);
        assert_eq!(balance(&bank, "cpp:cpp1").await, 0);
        bank.check_books().await.expect("the books balance");
        let books = crate::loopback_client(&base)
            .with_token(OPERATOR_TOKEN)
            .books()
            .await
            .expect("books");
        assert!(books.balanced);
        server.abort();
    })
    .await;
}

/// A bank serving on loopback: alice with 100.00, the CPP's account empty.
async fn serving(db: mpay_sql::Db) -> (Arc<Bank>, String, tokio::task::JoinHandle<()>) {
    let now = wall_clock();
    let mut scheme = Scheme::new(43, now);
    let identity = scheme.bank(now);
    let bank: Arc<Bank> = Arc::new(
        Bank::open(db, scheme.config(Vec::new()), Some(identity), [5; 32], now)
            .await
            .expect("bank opens"),
    );
    open_accounts(&bank, &["cust:alice", "cpp:cpp1"], now).await;
    deposit(&bank, "cust:alice", 10_000, "dep-alice", now).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let served = Arc::clone(&bank);
    let server = tokio::spawn(async move {
        let _ = mpay_bank::service::serve(served, listener).await;
    });
    (bank, base, server)
}

/// A deposit that would overflow a balance is refused as the caller's
/// fault. The bound on every amount entering the API is issue 11 item 6;
/// until it is merged this answers 500, so the case stands apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposit_that_would_overflow_is_a_json_4xx() {
    for_each_backend(|db| async move {
        let (bank, base, server) = serving(db).await;
        let cases: Vec<Case> = ["big-1", "big-2"]
            .iter()
            .map(|key| {
                operator_post(
                    "deposit that overflows the balance",
                    "/v1/deposits",
                    key,
                    "{\"account\": \"cust:alice\", \"amount\": \"92233720368547758.07 EUR\"}",
                )
            })
            .collect();
        let failures = probe(&base, &cases).await;
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        bank.check_books().await.expect("the books balance");
        server.abort();
    })
    .await;
}

async fn get_json(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    token: &str,
) -> serde_json::Value {
    let answer = http
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("answer");
    assert!(answer.status().is_success(), "{path}: {}", answer.status());
    answer.json().await.expect("JSON")
}

/// What the bank answers agrees with its own OpenAPI document: no `null`
/// where the schema says string, every required field present (`GET
/// /v1/books` answered `"problem": null`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_agree_with_the_openapi_document() {
    use mpay_http::testing::schema_violations;
    for_each_backend(|db| async move {
        let (_bank, base, server) = serving(db).await;
        let http = crate::raw_http();
        let doc = get_json(&http, &base, "/openapi.json", OPERATOR_TOKEN).await;
        let hold = crate::loopback_client(&base)
            .with_token(CPP_TOKEN)
            .place_hold(
                "schema-hold",
                &mpay_bank::PlaceHold {
                    account: crate::id("cust:alice"),
                    amount: crate::eur(1_00),
                    expires_at: mpay_identity::Timestamp(wall_clock().as_millis() + 60_000),
                    reference: "schema".into(),
                },
            )
            .await
            .expect("hold");
        let mut violations = Vec::new();
        for (schema, path, token) in [
            ("Books", "/v1/books".to_owned(), OPERATOR_TOKEN),
            ("Account", "/v1/accounts/cust:alice".to_owned(), ALICE_TOKEN),
            (
                "Account",
                "/v1/accounts/external".to_owned(),
                OPERATOR_TOKEN,
            ),
            ("Hold", format!("/v1/holds/{}", hold.id.0), CPP_TOKEN),
            (
                "Notifications",
                "/v1/accounts/cust:alice/notifications".to_owned(),
                ALICE_TOKEN,
            ),
            ("BankInfo", "/v1/bank".to_owned(), OPERATOR_TOKEN),
        ] {
            let value = get_json(&http, &base, &path, token).await;
            violations.extend(schema_violations(&doc, schema, &value));
        }
        assert!(
            violations.is_empty(),
            "answers disagree with /openapi.json:\n{}",
            violations.join("\n")
        );
        server.abort();
    })
    .await;
}
