//! Every bad request to the money office, over real HTTP on loopback, gets
//! a 4xx whose body is the documented `{"error", "message"}` JSON: unknown
//! routes, wrong methods, oversized bodies, wrong content types, malformed
//! JSON, JSON of the wrong shape, missing tokens, huge numbers and non-UTF-8
//! bytes. No input produces a 5xx, and none moves money.

use mpay_http::testing::{Case, Routes, bad_requests, probe};
use mpay_money::{Amount, Currency};
use mpay_office::http::{REQUEST_BODY_LEN_MAX, router, wall_clock};
use mpay_office::{Office, OfficeConfig};
use mpay_sql::Db;
use mpay_sql::testing::for_each_backend;
use reqwest::Method;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const ADMIN_TOKEN: &str = "office-admin-token-0000001";

async fn open(db: Db) -> Office {
    let config = OfficeConfig::default_for(Currency::EUR);
    Office::open(db, config, [9; 32], wall_clock())
        .await
        .expect("office opens")
}

/// An office serving on loopback, with owner `alice` holding 50.00 EUR;
/// its token.
async fn serving(db: Db) -> (String, String, JoinHandle<()>) {
    let office = open(db).await;
    let alice = office
        .open_account("alice", Amount::new(50_00, Currency::EUR), wall_clock())
        .await
        .expect("alice's account");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let app = router(office, Some(ADMIN_TOKEN.to_owned()));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, alice, server)
}

fn admin_post(name: &str, path: &str, body: &str) -> Case {
    Case::new(name, Method::POST, path)
        .token(ADMIN_TOKEN)
        .json(body.to_owned())
}

fn office_cases(alice: &str) -> Vec<Case> {
    let owner_post = |name: &str, path: &str, key: Option<&str>, body: &str| {
        let case = Case::new(name, Method::POST, path).token(alice);
        let case = match key {
            Some(key) => case.header("idempotency-key", key),
            None => case,
        };
        case.json(body.to_owned())
    };
    vec![
        admin_post(
            "open an account with a huge deposit",
            "/v1/owners",
            "{\"owner\": \"bob\", \"deposit\": \"99999999999999999999999.99 EUR\"}",
        ),
        admin_post(
            "open an account with a negative deposit",
            "/v1/owners",
            "{\"owner\": \"bob\", \"deposit\": \"-1.00 EUR\"}",
        ),
        admin_post(
            "open an account in another currency",
            "/v1/owners",
            "{\"owner\": \"bob\", \"deposit\": \"1.00 USD\"}",
        ),
        admin_post(
            "open an account with a NUL in the name",
            "/v1/owners",
            "{\"owner\": \"b\\u0000b\", \"deposit\": \"1.00 EUR\"}",
        ),
        admin_post(
            "open an account with an overlong name",
            "/v1/owners",
            &format!(
                "{{\"owner\": \"{}\", \"deposit\": \"1.00 EUR\"}}",
                "b".repeat(10_000)
            ),
        ),
        admin_post(
            "open an account that exists",
            "/v1/owners",
            "{\"owner\": \"alice\", \"deposit\": \"1.00 EUR\"}",
        )
        .expect(409),
        admin_post(
            "open an account without a deposit",
            "/v1/owners",
            "{\"owner\": \"bob\"}",
        )
        .expect(422),
        Case::new(
            "open an account with an owner's token",
            Method::POST,
            "/v1/owners",
        )
        .token(alice)
        .json("{\"owner\": \"mallory\", \"deposit\": \"1.00 EUR\"}")
        .expect(401),
        Case::new(
            "open an account without a token, bad body",
            Method::POST,
            "/v1/owners",
        )
        .body("not json")
        .expect(401),
        Case::new("frauds without the admin token", Method::GET, "/v1/frauds")
            .token(alice)
            .expect(401),
        owner_post(
            "charge without an idempotency key",
            "/v1/charges",
            None,
            "{\"wallet\": \"00000000000000000000000000000000\", \"amount\": \"1.00 EUR\"}",
        )
        .expect(400),
        owner_post(
            "charge a malformed wallet",
            "/v1/charges",
            Some("c1"),
            "{\"wallet\": \"zz\", \"amount\": \"1.00 EUR\"}",
        )
        .expect(400),
        owner_post(
            "charge an unknown wallet",
            "/v1/charges",
            Some("c2"),
            "{\"wallet\": \"00000000000000000000000000000000\", \"amount\": \"1.00 EUR\"}",
        ),
        owner_post(
            "charge a huge amount",
            "/v1/charges",
            Some("c3"),
            "{\"wallet\": \"00000000000000000000000000000000\", \"amount\": \"92233720368547758.08 EUR\"}",
        ),
        owner_post(
            "charge with a non-ASCII key",
            "/v1/charges",
            Some("\u{e9}"),
            "{\"wallet\": \"00000000000000000000000000000000\", \"amount\": \"1.00 EUR\"}",
        ),
        owner_post(
            "enrol with keys that are not hex",
            "/v1/wallets",
            None,
            "{\"keys\": \"zz\", \"requested_at\": 0, \"proof\": \"00\"}",
        )
        .expect(400),
        owner_post(
            "enrol at the end of time",
            "/v1/wallets",
            None,
            "{\"keys\": \"00\", \"requested_at\": 18446744073709551615, \"proof\": \"00\"}",
        ),
        owner_post(
            "enrol past the end of time",
            "/v1/wallets",
            None,
            "{\"keys\": \"00\", \"requested_at\": 18446744073709551616, \"proof\": \"00\"}",
        )
        .expect(422),
        owner_post(
            "enrol at a negative time",
            "/v1/wallets",
            None,
            "{\"keys\": \"00\", \"requested_at\": -1, \"proof\": \"00\"}",
        )
        .expect(422),
        Case::new("sync of garbage", Method::POST, "/v1/sync").body(vec![0xA5; 1_000]),
        Case::new("sync of JSON", Method::POST, "/v1/sync").json("{\"sync\": 1e999}"),
        Case::new(
            "wrong method on revocations",
            Method::POST,
            "/v1/revocations",
        )
        .expect(405),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_request_gets_a_documented_json_4xx() {
    for_each_backend(|db| async move {
        let (base, alice, server) = serving(db.clone()).await;
        let routes = Routes {
            json_post: Some("/v1/owners".into()),
            json_headers: vec![("authorization".into(), format!("Bearer {ADMIN_TOKEN}"))],
            frame_post: Some("/v1/sync".into()),
            guarded_get: "/v1/owners/me".into(),
            path_get: None,
            path_headers: Vec::new(),
            body_len_max: REQUEST_BODY_LEN_MAX,
        };
        let mut cases = bad_requests(&routes);
        cases.extend(office_cases(&alice));
        let failures = probe(&base, &cases).await;
        assert!(
            failures.is_empty(),
            "{} of {} bad requests were answered wrongly:\n{}",
            failures.len(),
            cases.len(),
            failures.join("\n")
        );
        server.abort();
        // Nothing moved: alice still holds her deposit and the books balance.
        let office = open(db).await;
        assert_eq!(
            office.owner_balance("alice").await.expect("balance"),
            Amount::new(50_00, Currency::EUR)
        );
        office.check_books().await.expect("the books balance");
    })
    .await;
}

/// A deposit that would overflow the books is refused as the caller's
/// fault (issue 11, item 6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposit_that_would_overflow_is_a_json_4xx() {
    for_each_backend(|db| async move {
        let (base, _alice, server) = serving(db.clone()).await;
        let cases: Vec<Case> = ["big-1", "big-2"]
            .iter()
            .map(|name| {
                admin_post(
                    "deposit that overflows the books",
                    "/v1/owners",
                    &format!(
                        "{{\"owner\": \"{name}\", \"deposit\": \"92233720368547758.07 EUR\"}}"
                    ),
                )
            })
            .collect();
        let failures = probe(&base, &cases).await;
        server.abort();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        open(db)
            .await
            .check_books()
            .await
            .expect("the books balance");
    })
    .await;
}

/// Every amount entering the office is bounded by `AMOUNT_MINOR_MAX`: a
/// deposit or a charge past it (by one minor unit, or at `i64::MAX`) is a
/// JSON 400 before anything is looked up; a deposit at the bound opens the
/// account. The books balance afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amounts_past_the_bound_are_a_json_400() {
    for_each_backend(|db| async move {
        let (base, alice, server) = serving(db.clone()).await;
        let past = "10000000000000.01 EUR";
        let top = "92233720368547758.07 EUR";
        let deposit = |owner: &str, amount: &str| {
            admin_post(
                &format!("deposit of {amount}"),
                "/v1/owners",
                &format!("{{\"owner\": \"{owner}\", \"deposit\": \"{amount}\"}}"),
            )
        };
        let charge = |key: &str, amount: &str| {
            Case::new(format!("charge of {amount}"), Method::POST, "/v1/charges")
                .token(&alice)
                .header("idempotency-key", key)
                .json(format!(
                    "{{\"wallet\": \"00000000000000000000000000000000\", \"amount\": \"{amount}\"}}"
                ))
        };
        let cases = vec![
            deposit("bob", past).expect(400),
            deposit("carol", top).expect(400),
            charge("k1", past).expect(400),
            charge("k2", top).expect(400),
        ];
        let failures = probe(&base, &cases).await;
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        // At the bound: accepted.
        let answer = mpay_http::testing::client()
            .post(format!("{base}/v1/owners"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({"owner": "dave", "deposit": "10000000000000.00 EUR"}))
            .send()
            .await
            .expect("answer");
        assert_eq!(answer.status().as_u16(), 200);
        server.abort();
        let office = open(db).await;
        office.check_books().await.expect("the books balance");
        assert_eq!(
            office.owner_balance("dave").await.expect("dave"),
            Amount::new(mpay_money::AMOUNT_MINOR_MAX, Currency::EUR)
        );
        assert!(office.owner_balance("bob").await.is_err());
    })
    .await;
}

/// An account's lifetime credits and debits may pass `i64::MAX` while its
/// balance stays small. The check of the books must still answer, on both
/// backends: the journal below is that history, summarised as six postings
/// between two owners that net to zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_books_are_checked_when_lifetime_postings_pass_i64() {
    for_each_backend(|db| async move {
        let office = open(db).await;
        for owner in ["busy-a", "busy-b"] {
            office
                .open_account(owner, Amount::new(1_00, Currency::EUR), wall_clock())
                .await
                .expect("account");
        }
        let big: i64 = 4_000_000_000_000_000_000;
        for (i, (debit, credit)) in [
            ("owner:busy-a", "owner:busy-b"),
            ("owner:busy-b", "owner:busy-a"),
        ]
        .iter()
        .cycle()
        .take(6)
        .enumerate()
        {
            mpay_sql::sqlx::query(
                "INSERT INTO postings (at, debit, credit, amount, currency, reason, reference)
                 VALUES ($1, $2, $3, $4, 'EUR', 'history', $5)",
            )
            .bind(0i64)
            .bind(*debit)
            .bind(*credit)
            .bind(big)
            .bind(format!("history-{i}"))
            .execute(office.db().pool())
            .await
            .expect("posting");
        }
        office
            .check_books()
            .await
            .expect("the books are checked and balance");
    })
    .await;
}
