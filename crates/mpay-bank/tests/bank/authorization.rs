//! The authorization model at the banks (issue 11, item 5; docs/security.md
//! "authorization model at the banks"): one test per rule, over real HTTP,
//! on SQLite and PostgreSQL. Processors hold tokens for their own accounts
//! only, as `mpay network init` provisions them; everything else they do is
//! under a mandate.

use std::sync::Arc;

use mpay_bank::config::AccountPattern;
use mpay_bank::http::wall_clock;
use mpay_bank::{ApiToken, Bank, Caller};
use mpay_sql::testing::for_each_backend;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::limits::post;
use crate::{OPERATOR_TOKEN, Scheme};

const CPP1: &str = "cpp1-only-own-account-token-01";
const CPP2: &str = "cpp2-only-own-account-token-01";
const MPP1: &str = "mpp1-only-own-account-token-01";
const MPP2: &str = "mpp2-only-own-account-token-01";
const ALICE: &str = "alice-holder-app-token-0000001";

fn processor(name: &str, own: &str) -> Caller {
    Caller::new(name, vec![AccountPattern::parse(own).expect("pattern")]).expect("caller")
}

/// A bank with alice (100.00), mallory and the merchant bob (50.00), the
/// processors' own accounts, alice's mandate to cpp1 (hold, debit, read;
/// cap 20.00) and bob's to mpp1 (debit; cap 20.00), granted by the
/// operator on the holders' instruction.
async fn bank(db: mpay_sql::Db) -> (Arc<Bank>, String) {
    let now = wall_clock();
    let mut scheme = Scheme::new(71, now);
    let identity = scheme.bank(now);
    let mut config = scheme.config(Vec::new());
    config.tokens = vec![
        ApiToken::new(OPERATOR_TOKEN, crate::operator()).expect("token"),
        ApiToken::new(CPP1, processor("cpp1", "cpp:cpp1")).expect("token"),
        ApiToken::new(CPP2, processor("cpp2", "cpp:cpp2")).expect("token"),
        ApiToken::new(MPP1, processor("mpp1", "mpp:mpp1")).expect("token"),
        ApiToken::new(MPP2, processor("mpp2", "mpp:mpp2")).expect("token"),
        ApiToken::new(ALICE, processor("alice", "cust:alice")).expect("token"),
    ];
    let bank = Arc::new(
        Bank::open(db, config, Some(identity), [4; 32], now)
            .await
            .expect("bank opens"),
    );
    crate::open_accounts(
        &bank,
        &[
            "cust:alice",
            "cust:mallory",
            "shop:bob",
            "cpp:cpp1",
            "cpp:cpp2",
            "mpp:mpp1",
            "mpp:mpp2",
        ],
        now,
    )
    .await;
    crate::deposit(&bank, "cust:alice", 10_000, "d-alice", now).await;
    crate::deposit(&bank, "shop:bob", 5_000, "d-bob", now).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let served = Arc::clone(&bank);
    tokio::spawn(async move {
        let _ = mpay_bank::service::serve(served, listener).await;
    });
    for (account, processor, operations) in [
        ("cust:alice", "cpp1", json!(["hold", "debit", "read"])),
        ("shop:bob", "mpp1", json!(["debit"])),
    ] {
        let (status, answer) = post(
            &url,
            "/v1/mandates",
            OPERATOR_TOKEN,
            "-",
            json!({"account": account, "processor": processor,
                   "operations": operations, "cap": "20.00 EUR"}),
        )
        .await;
        assert_eq!(status, 200, "grant: {answer}");
    }
    (bank, url)
}

async fn get(url: &str, path: &str, token: &str) -> (u16, Value) {
    let answer = crate::raw_http()
        .get(format!("{url}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("the bank answers");
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

fn assert_forbidden((status, answer): (u16, Value), what: &str) {
    assert_eq!(status, 403, "{what}: {answer}");
    assert_eq!(answer["error"], "forbidden", "{what}: {answer}");
}

async fn balances(bank: &Bank) -> [i64; 4] {
    bank.check_books().await.expect("books balance");
    [
        crate::balance(bank, "cust:alice").await,
        crate::balance(bank, "cust:mallory").await,
        crate::balance(bank, "shop:bob").await,
        crate::balance(bank, "cpp:cpp2").await,
    ]
}

fn transfer(from: &str, to: &str, amount: &str) -> Value {
    json!({"from": from, "to": to, "amount": amount})
}

fn hold(account: &str, amount: &str) -> Value {
    let expires_at = wall_clock().as_millis() + 600_000;
    json!({"account": account, "amount": amount, "expires_at": expires_at})
}

/// Rule 0 (the probes of the issue): another processor's token reaches
/// neither the history nor the money of a customer or merchant it does not
/// serve.
#[tokio::test]
async fn another_processors_token_reaches_no_one_elses_customer() {
    for_each_backend(|db| async move {
        let (bank, url) = bank(db).await;
        let before = balances(&bank).await;
        assert_forbidden(
            get(&url, "/v1/accounts/cust:alice/notifications", CPP2).await,
            "cpp2 reads alice's history",
        );
        assert_forbidden(
            get(&url, "/v1/accounts/cust:alice", CPP2).await,
            "cpp2 reads alice's account",
        );
        assert_forbidden(
            post(
                &url,
                "/v1/transfers",
                CPP2,
                "p1",
                transfer("cust:alice", "cust:mallory", "0.01 EUR"),
            )
            .await,
            "cpp2 moves alice's money",
        );
        assert_forbidden(
            post(
                &url,
                "/v1/holds",
                CPP2,
                "p2",
                hold("cust:alice", "0.01 EUR"),
            )
            .await,
            "cpp2 holds alice's money",
        );
        assert_forbidden(
            post(
                &url,
                "/v1/transfers",
                MPP2,
                "p3",
                transfer("shop:bob", "mpp:mpp2", "0.01 EUR"),
            )
            .await,
            "mpp2 moves bob's money",
        );
        assert_eq!(balances(&bank).await, before, "nothing moved");
    })
    .await;
}

/// Rule 1: only the account's holder or the operator grants or revokes a
/// mandate; a processor cannot grant itself one.
#[tokio::test]
async fn only_the_holder_or_the_operator_grants_a_mandate() {
    for_each_backend(|db| async move {
        let (_bank, url) = bank(db).await;
        let grant = |processor: &str| {
            json!({"account": "cust:alice", "processor": processor,
                   "operations": ["hold", "debit", "read"], "cap": "20.00 EUR"})
        };
        assert_forbidden(
            post(&url, "/v1/mandates", CPP2, "-", grant("cpp2")).await,
            "cpp2 grants itself a mandate",
        );
        assert_forbidden(
            post(
                &url,
                "/v1/mandates/revoke",
                CPP2,
                "-",
                json!({"account": "cust:alice", "processor": "cpp1"}),
            )
            .await,
            "cpp2 revokes cpp1's mandate",
        );
        // Alice's own app may grant one.
        let (status, answer) = post(&url, "/v1/mandates", ALICE, "-", grant("cpp2")).await;
        assert_eq!(status, 200, "alice grants: {answer}");
        let (status, answer) = get(&url, "/v1/accounts/cust:alice", CPP2).await;
        assert_eq!(status, 200, "cpp2 under alice's mandate: {answer}");
    })
    .await;
}

/// Rule 2: only the operations the mandate names.
#[tokio::test]
async fn a_mandate_allows_only_its_operations() {
    for_each_backend(|db| async move {
        let (bank, url) = bank(db).await;
        let before = balances(&bank).await;
        // bob's mandate to mpp1 is `debit` only: no holds, no reads.
        assert_forbidden(
            post(&url, "/v1/holds", MPP1, "h", hold("shop:bob", "1.00 EUR")).await,
            "a hold under a debit-only mandate",
        );
        assert_forbidden(
            get(&url, "/v1/accounts/shop:bob/notifications", MPP1).await,
            "a read under a debit-only mandate",
        );
        assert_eq!(balances(&bank).await, before);
        // alice's mandate to cpp1 allows all three.
        let (status, _) = get(&url, "/v1/accounts/cust:alice/notifications", CPP1).await;
        assert_eq!(status, 200);
        let (status, answer) = post(
            &url,
            "/v1/holds",
            CPP1,
            "h1",
            hold("cust:alice", "5.00 EUR"),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
    })
    .await;
}

/// Rule 3: at most the cap per hold or debit.
#[tokio::test]
async fn a_mandate_caps_each_hold_and_debit() {
    for_each_backend(|db| async move {
        let (bank, url) = bank(db).await;
        let before = balances(&bank).await;
        assert_forbidden(
            post(
                &url,
                "/v1/holds",
                CPP1,
                "h",
                hold("cust:alice", "20.01 EUR"),
            )
            .await,
            "a hold over the cap",
        );
        assert_forbidden(
            post(
                &url,
                "/v1/transfers",
                CPP1,
                "t",
                transfer("cust:alice", "cpp:cpp1", "20.01 EUR"),
            )
            .await,
            "a debit over the cap",
        );
        assert_eq!(balances(&bank).await, before);
        let (status, answer) = post(
            &url,
            "/v1/transfers",
            CPP1,
            "t2",
            transfer("cust:alice", "cpp:cpp1", "20.00 EUR"),
        )
        .await;
        assert_eq!(status, 200, "at the cap: {answer}");
        assert_eq!(crate::balance(&bank, "cust:alice").await, 8_000);
        assert_eq!(crate::balance(&bank, "cpp:cpp1").await, 2_000);
        bank.check_books().await.expect("books");
    })
    .await;
}

/// Rule 4: a debit under a mandate pays only a processor's account.
#[tokio::test]
async fn a_mandated_debit_pays_only_a_processor() {
    for_each_backend(|db| async move {
        let (bank, url) = bank(db).await;
        let before = balances(&bank).await;
        assert_forbidden(
            post(
                &url,
                "/v1/transfers",
                CPP1,
                "t",
                transfer("cust:alice", "cust:mallory", "0.01 EUR"),
            )
            .await,
            "cpp1 pays mallory from alice",
        );
        assert_forbidden(
            post(
                &url,
                "/v1/transfers",
                MPP1,
                "t2",
                transfer("shop:bob", "cust:mallory", "0.01 EUR"),
            )
            .await,
            "mpp1 pays mallory from bob",
        );
        assert_eq!(balances(&bank).await, before);
        // The refund path: the merchant's money to the CPP.
        let (status, answer) = post(
            &url,
            "/v1/transfers",
            MPP1,
            "t3",
            transfer("shop:bob", "cpp:cpp2", "6.00 EUR"),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(crate::balance(&bank, "cpp:cpp2").await, 600);
        bank.check_books().await.expect("books");
    })
    .await;
}

/// Rule 7: a processor pays from its own account only to a processor or to
/// an account that gave it a mandate (its own customers and merchants): an
/// MPP pays out only to its own merchants, a CPP refunds only its own
/// customers.
#[tokio::test]
async fn a_processor_pays_from_its_own_account_only_its_own_clients() {
    for_each_backend(|db| async move {
        let (bank, url) = bank(db).await;
        let now = wall_clock();
        for (account, key) in [
            ("cpp:cpp1", "d-c1"),
            ("cpp:cpp2", "d-c2"),
            ("mpp:mpp1", "d-m1"),
        ] {
            crate::deposit(&bank, account, 1_000, key, now).await;
        }
        let before = balances(&bank).await;
        for (token, from, to, what) in [
            (MPP1, "mpp:mpp1", "cust:mallory", "mpp1 pays mallory"),
            (
                MPP2,
                "mpp:mpp2",
                "shop:bob",
                "mpp2 pays another MPP's merchant",
            ),
            (
                CPP2,
                "cpp:cpp2",
                "cust:alice",
                "cpp2 pays another CPP's customer",
            ),
            (CPP2, "cpp:cpp2", "cust:mallory", "cpp2 pays mallory"),
        ] {
            assert_forbidden(
                post(
                    &url,
                    "/v1/transfers",
                    token,
                    what,
                    transfer(from, to, "0.01 EUR"),
                )
                .await,
                what,
            );
        }
        assert_eq!(balances(&bank).await, before);
        // What payments need: a payout to the MPP's merchant, a refund to
        // the CPP's customer, a settlement between processors.
        for (token, from, to, key) in [
            (MPP1, "mpp:mpp1", "shop:bob", "payout"),
            (CPP1, "cpp:cpp1", "cust:alice", "refund"),
            (CPP2, "cpp:cpp2", "mpp:mpp1", "settlement"),
        ] {
            let (status, answer) = post(
                &url,
                "/v1/transfers",
                token,
                key,
                transfer(from, to, "1.00 EUR"),
            )
            .await;
            assert_eq!(status, 200, "{key}: {answer}");
        }
        assert_eq!(crate::balance(&bank, "shop:bob").await, 5_100);
        assert_eq!(crate::balance(&bank, "cust:alice").await, 10_100);
        assert_eq!(crate::balance(&bank, "mpp:mpp1").await, 1_000);
        bank.check_books().await.expect("books");
    })
    .await;
}

/// Rule 5: a revoked mandate allows nothing.
#[tokio::test]
async fn a_revoked_mandate_allows_nothing() {
    for_each_backend(|db| async move {
        let (bank, url) = bank(db).await;
        let (status, answer) = post(
            &url,
            "/v1/mandates/revoke",
            ALICE,
            "-",
            json!({"account": "cust:alice", "processor": "cpp1"}),
        )
        .await;
        assert_eq!(
            (status, &answer["revoked"]),
            (200, &json!(true)),
            "{answer}"
        );
        let before = balances(&bank).await;
        assert_forbidden(
            post(&url, "/v1/holds", CPP1, "h", hold("cust:alice", "1.00 EUR")).await,
            "a hold after revocation",
        );
        assert_forbidden(
            get(&url, "/v1/accounts/cust:alice", CPP1).await,
            "a read after revocation",
        );
        assert_eq!(balances(&bank).await, before);
    })
    .await;
}

/// Rule 6: a hold is posted or voided only by its placer; its account's
/// other processors cannot end it.
#[tokio::test]
async fn only_the_placer_ends_a_hold() {
    for_each_backend(|db| async move {
        let (bank, url) = bank(db).await;
        let (status, placed) =
            post(&url, "/v1/holds", CPP1, "h", hold("cust:alice", "5.00 EUR")).await;
        assert_eq!(status, 200, "{placed}");
        let id = placed["id"].as_i64().expect("hold id");
        assert_forbidden(
            post(
                &url,
                &format!("/v1/holds/{id}/post"),
                CPP2,
                "p",
                json!({"to": "cpp:cpp2"}),
            )
            .await,
            "cpp2 posts cpp1's hold",
        );
        assert_forbidden(
            get(&url, &format!("/v1/holds/{id}"), CPP2).await,
            "cpp2 reads cpp1's hold",
        );
        let (status, answer) = post(
            &url,
            &format!("/v1/holds/{id}/post"),
            CPP1,
            "p",
            json!({"to": "shop:bob"}),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(crate::balance(&bank, "shop:bob").await, 5_500);
        bank.check_books().await.expect("books");
    })
    .await;
}
