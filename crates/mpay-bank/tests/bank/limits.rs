//! The books cannot be broken through the API (issue 11, item 6): every
//! amount and floor that enters is bounded by `mpay_money::AMOUNT_MINOR_MAX`
//! and every balance by `BALANCE_MINOR_MAX`, refused with a typed 4xx, never
//! a 500; the books balance after every accepted call.

use std::sync::Arc;

use mpay_bank::Bank;
use mpay_bank::http::wall_clock;
use mpay_money::{AMOUNT_MINOR_MAX, BALANCE_MINOR_MAX};
use mpay_sql::testing::for_each_backend;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::{CPP_TOKEN, OPERATOR_TOKEN, Scheme, eur};

/// The bank on `db`, served on a loopback port; its base URL.
pub async fn served_bank(db: mpay_sql::Db, seed: u64) -> (Arc<Bank>, String) {
    let now = wall_clock();
    let mut scheme = Scheme::new(seed, now);
    let identity = scheme.bank(now);
    let bank = crate::open_bank(db, &scheme, identity, Vec::new(), 3, now).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let served = Arc::clone(&bank);
    tokio::spawn(async move {
        let _ = mpay_bank::service::serve(served, listener).await;
    });
    (bank, url)
}

/// POSTs `body` to `path` with `token`; the status and the JSON answer.
pub async fn post(url: &str, path: &str, token: &str, key: &str, body: Value) -> (u16, Value) {
    let answer = crate::raw_http()
        .post(format!("{url}{path}"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .expect("the bank answers");
    let status = answer.status().as_u16();
    let body = answer.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

async fn assert_books_balance(url: &str) {
    let books = crate::loopback_client(url)
        .with_token(OPERATOR_TOKEN)
        .books()
        .await
        .expect("books");
    assert!(books.balanced, "books: {:?}", books.problem);
}

fn money(minor: i64) -> String {
    eur(minor).to_string()
}

#[tokio::test]
async fn extreme_floors_transfers_and_deposits_are_refused_and_the_books_hold() {
    for_each_backend(|db| async move {
        let (_bank, url) = served_bank(db, 61).await;
        // The probe: a floor near i64::MIN, then a transfer of all of it.
        let (status, answer) = post(
            &url,
            "/v1/accounts",
            OPERATOR_TOKEN,
            "open-ovf-a",
            json!({"id": "cust:ovf-a", "holder": "ovf", "floor": "-92233720368547758.07 EUR"}),
        )
        .await;
        assert_eq!(status, 400, "an unbounded floor: {answer}");
        assert_eq!(answer["error"], "invalid", "{answer}");
        for (name, floor) in [("cust:ovf-a", -AMOUNT_MINOR_MAX), ("cust:ovf-b", 0)] {
            let (status, answer) = post(
                &url,
                "/v1/accounts",
                OPERATOR_TOKEN,
                &format!("open-{name}-bounded"),
                json!({"id": name, "holder": "ovf", "floor": money(floor)}),
            )
            .await;
            assert_eq!(status, 200, "a floor at the bound: {answer}");
        }
        assert_books_balance(&url).await;
        let (status, answer) = post(
            &url,
            "/v1/transfers",
            CPP_TOKEN,
            "ovf-transfer",
            json!({"from": "cust:ovf-a", "to": "cust:ovf-b", "amount": "92233720368547758.07 EUR"}),
        )
        .await;
        assert_eq!(status, 400, "an unbounded transfer: {answer}");
        assert_eq!(answer["error"], "invalid", "{answer}");
        assert_books_balance(&url).await;
        // Deposits: the largest amount is taken, one past it is not, and
        // an account's balance stops at its bound with a 4xx, never a 500.
        let (status, answer) = post(
            &url,
            "/v1/deposits",
            OPERATOR_TOKEN,
            "dep-huge",
            json!({"account": "cust:ovf-b", "amount": "92233720368547758.07 EUR"}),
        )
        .await;
        assert_eq!(status, 400, "an unbounded deposit: {answer}");
        let (status, answer) = post(
            &url,
            "/v1/deposits",
            OPERATOR_TOKEN,
            "dep-over",
            json!({"account": "cust:ovf-b", "amount": money(AMOUNT_MINOR_MAX + 1)}),
        )
        .await;
        assert_eq!(status, 400, "one past the bound: {answer}");
        let deposits = BALANCE_MINOR_MAX / AMOUNT_MINOR_MAX;
        for n in 0..deposits {
            let (status, answer) = post(
                &url,
                "/v1/deposits",
                OPERATOR_TOKEN,
                &format!("dep-{n}"),
                json!({"account": "cust:ovf-b", "amount": money(AMOUNT_MINOR_MAX)}),
            )
            .await;
            assert_eq!(status, 200, "deposit {n}: {answer}");
        }
        let (status, answer) = post(
            &url,
            "/v1/deposits",
            OPERATOR_TOKEN,
            "dep-past-the-balance-bound",
            json!({"account": "cust:ovf-b", "amount": money(1)}),
        )
        .await;
        assert_eq!(status, 422, "a balance past its bound: {answer}");
        assert_eq!(answer["error"], "balance_limit", "{answer}");
        // The account at its floor's bound can still pay what it has.
        let (status, answer) = post(
            &url,
            "/v1/transfers",
            CPP_TOKEN,
            "ovf-transfer-bounded",
            json!({"from": "cust:ovf-a", "to": "cust:ovf-b", "amount": money(AMOUNT_MINOR_MAX)}),
        )
        .await;
        assert_eq!(status, 422, "the receiver is full: {answer}");
        assert_books_balance(&url).await;
    })
    .await;
}

/// One call of the bank's API, as the property test drives it.
#[derive(Debug, Clone)]
enum Call {
    Open { account: usize, floor: i64 },
    Deposit { account: usize, amount: i64 },
    Transfer { from: usize, to: usize, amount: i64 },
    Hold { account: usize, amount: i64 },
    Post { hold: usize, to: usize },
    Void { hold: usize },
}

const ACCOUNTS: [&str; 4] = ["cust:p0", "cust:p1", "cust:p2", "cpp:cpp1"];

fn amounts() -> impl proptest::strategy::Strategy<Value = i64> {
    use proptest::prelude::*;
    prop_oneof![
        1..1_000_000i64,
        Just(AMOUNT_MINOR_MAX),
        Just(AMOUNT_MINOR_MAX + 1),
        Just(BALANCE_MINOR_MAX),
        Just(i64::MAX),
        Just(0),
        Just(-1),
        Just(i64::MIN),
        (AMOUNT_MINOR_MAX / 2)..=AMOUNT_MINOR_MAX,
    ]
}

fn calls() -> impl proptest::strategy::Strategy<Value = Vec<Call>> {
    use proptest::prelude::*;
    let account = 0..ACCOUNTS.len();
    let call = prop_oneof![
        (account.clone(), amounts()).prop_map(|(account, floor)| Call::Open {
            account,
            floor: floor.saturating_neg()
        }),
        (account.clone(), amounts())
            .prop_map(|(account, amount)| Call::Deposit { account, amount }),
        (account.clone(), account.clone(), amounts())
            .prop_map(|(from, to, amount)| Call::Transfer { from, to, amount }),
        (account.clone(), amounts()).prop_map(|(account, amount)| Call::Hold { account, amount }),
        (0..8usize, account).prop_map(|(hold, to)| Call::Post { hold, to }),
        (0..8usize).prop_map(|hold| Call::Void { hold }),
    ];
    proptest::collection::vec(call, 1..40)
}

/// Runs `calls` against a bank on a fresh SQLite database through its
/// service layer; after every call the books must balance and a refusal
/// must be the caller's fault (a 4xx), never the bank's.
async fn drive(calls: Vec<Call>) -> Result<(), String> {
    use mpay_bank::{
        Deposit, Destination, HoldId, OpenAccount, PlaceHold, PostHold, Transfer, VoidHold,
    };
    let test_db = mpay_sql::testing::sqlite()
        .await
        .map_err(|e| e.to_string())?;
    let now = mpay_identity::Timestamp(1_767_225_600_000);
    let mut scheme = Scheme::new(5, now);
    let identity = scheme.bank(now);
    let bank = crate::open_bank(test_db.db().clone(), &scheme, identity, Vec::new(), 9, now).await;
    let (operator, cpp) = (crate::operator(), crate::cpp());
    let mut holds: Vec<HoldId> = Vec::new();
    let mut outcome = Ok(());
    for (n, call) in calls.iter().enumerate() {
        let key = format!("call-{n}");
        let account = |i: usize| crate::id(ACCOUNTS[i]);
        let result: Result<(), mpay_bank::BankError> = match call {
            Call::Open { account: a, floor } => bank
                .open_account(
                    &operator,
                    &key,
                    &OpenAccount {
                        account: account(*a),
                        holder: "p".into(),
                        floor: eur(*floor),
                    },
                    now,
                )
                .await
                .map(|_| ()),
            Call::Deposit { account: a, amount } => bank
                .deposit(
                    &operator,
                    &key,
                    &Deposit {
                        account: account(*a),
                        amount: eur(*amount),
                        reference: String::new(),
                    },
                    now,
                )
                .await
                .map(|_| ()),
            Call::Transfer { from, to, amount } => bank
                .transfer(
                    &cpp,
                    &key,
                    &Transfer {
                        from: account(*from),
                        to: account(*to),
                        amount: eur(*amount),
                        reference: String::new(),
                    },
                    now,
                )
                .await
                .map(|_| ()),
            Call::Hold { account: a, amount } => bank
                .place_hold(
                    &cpp,
                    &key,
                    &PlaceHold {
                        account: account(*a),
                        amount: eur(*amount),
                        expires_at: now.saturating_add_ms(3_600_000),
                        reference: String::new(),
                    },
                    now,
                )
                .await
                .map(|view| holds.push(view.id)),
            Call::Post { hold, to } => match holds.get(*hold) {
                None => Ok(()),
                Some(id) => bank
                    .post_hold(
                        &cpp,
                        &key,
                        &PostHold {
                            hold: *id,
                            destination: Destination::Account(account(*to)),
                        },
                        now,
                    )
                    .await
                    .map(|_| ()),
            },
            Call::Void { hold } => match holds.get(*hold) {
                None => Ok(()),
                Some(id) => bank
                    .void_hold(&cpp, &key, &VoidHold { hold: *id }, now)
                    .await
                    .map(|_| ()),
            },
        };
        if let Err(error) = &result
            && !error.is_client_fault()
        {
            outcome = Err(format!("call {n} {call:?}: the bank failed: {error}"));
            break;
        }
        if let Err(error) = bank.check_books().await {
            outcome = Err(format!("after call {n} {call:?}: {error}"));
            break;
        }
    }
    test_db.cleanup().await;
    outcome
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    })]

    #[test]
    fn no_sequence_of_accepted_calls_breaks_the_books(calls in calls()) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let outcome = runtime.block_on(drive(calls));
        proptest::prop_assert!(outcome.is_ok(), "{}", outcome.err().unwrap_or_default());
    }
}

/// An account's lifetime credits and debits may pass `i64::MAX` while every
/// balance stays small (about 9,200 transfers of `AMOUNT_MINOR_MAX` in and
/// out). The check of the books must still answer, on both backends: the
/// journal below is that history, summarised as six postings that net to
/// zero.
#[tokio::test]
async fn the_books_are_checked_when_lifetime_postings_pass_i64() {
    for_each_backend(|db| async move {
        let (bank, _url) = served_bank(db, 62).await;
        let now = wall_clock();
        crate::open_accounts(&bank, &["cust:busy-a", "cust:busy-b"], now).await;
        let big = 4 * BALANCE_MINOR_MAX * 10;
        for (i, (debit, credit)) in [
            ("cust:busy-a", "cust:busy-b"),
            ("cust:busy-b", "cust:busy-a"),
        ]
        .iter()
        .cycle()
        .take(6)
        .enumerate()
        {
            mpay_sql::sqlx::query(
                "INSERT INTO bank_postings (at, debit, credit, amount, reason, reference)
                 VALUES ($1, $2, $3, $4, 'transfer', $5)",
            )
            .bind(0i64)
            .bind(*debit)
            .bind(*credit)
            .bind(big)
            .bind(format!("history-{i}"))
            .execute(bank.db().pool())
            .await
            .expect("posting");
        }
        bank.check_books()
            .await
            .expect("the books are checked and balance");
    })
    .await;
}
