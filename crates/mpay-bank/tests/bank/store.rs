//! One bank over its store: balances, floors, holds, idempotency,
//! concurrency, authorisation, notifications and the books.

use std::sync::Arc;

use mpay_bank::bank::BankError;
use mpay_bank::ledger::HoldState;
use mpay_bank::{
    Destination, HoldId, NotificationKind, OpenAccount, PlaceHold, PostHold, Transfer, VoidHold,
};
use mpay_identity::Timestamp;
use mpay_sql::IdempotencyError;
use mpay_sql::sqlx::{self, Row};
use mpay_sql::testing::for_each_backend;

use crate::{Scheme, alice, balance, cpp, deposit, eur, id, open_accounts, open_bank, operator};

const T0: Timestamp = Timestamp(1_767_225_600_000);
const MINUTE: u64 = 60_000;

async fn count(db: &mpay_sql::Db, table: &str) -> i64 {
    sqlx::query(mpay_sql::sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) AS n FROM {table}"
    )))
    .fetch_one(db.pool())
    .await
    .expect("count")
    .try_get("n")
    .expect("n")
}

/// Rows in the tables a refused request must not touch.
async fn footprint(db: &mpay_sql::Db) -> [i64; 4] {
    [
        count(db, "bank_postings").await,
        count(db, "bank_holds").await,
        count(db, "bank_notifications").await,
        count(db, "idempotency").await,
    ]
}

async fn one_bank(db: mpay_sql::Db) -> Arc<mpay_bank::Bank> {
    let mut scheme = Scheme::new(1, T0);
    let identity = scheme.bank(T0);
    let bank = open_bank(db, &scheme, identity, vec![], 1, T0).await;
    open_accounts(&bank, &["cust:alice", "cust:bob", "cpp:cpp1"], T0).await;
    deposit(&bank, "cust:alice", 10_000, "dep-1", T0).await;
    bank
}

fn transfer(from: &str, to: &str, cents: i64) -> Transfer {
    Transfer {
        from: id(from),
        to: id(to),
        amount: eur(cents),
        reference: "t".into(),
    }
}

fn hold(account: &str, cents: i64, expires_at: Timestamp) -> PlaceHold {
    PlaceHold {
        account: id(account),
        amount: eur(cents),
        expires_at,
        reference: "pay-1".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balances_move_and_floors_refuse_overdrafts_without_a_trace() {
    for_each_backend(|db| async move {
        let bank = one_bank(db.clone()).await;
        let receipt = bank
            .transfer(&alice(), "t-1", &transfer("cust:alice", "cust:bob", 3_000), T0)
            .await
            .expect("transfer");
        assert_eq!(receipt.from_balance_after, eur(7_000));
        assert_eq!(balance(&bank, "cust:alice").await, 7_000);
        assert_eq!(balance(&bank, "cust:bob").await, 3_000);
        assert_eq!(balance(&bank, "external").await, -10_000);

        // An overdraft is refused and leaves nothing behind but its key's
        // answer (see `a_transfer_refused_for_want_of_funds_stays_refused`).
        let before = footprint(&db).await;
        let refused = bank
            .transfer(&alice(), "t-2", &transfer("cust:alice", "cust:bob", 7_001), T0)
            .await;
        assert!(
            matches!(&refused, Err(BankError::InsufficientFunds { available, .. }) if *available == eur(7_000)),
            "{refused:?}"
        );
        let [postings, holds, notifications, keys] = before;
        assert_eq!(
            footprint(&db).await,
            [postings, holds, notifications, keys + 1]
        );
        assert_eq!(balance(&bank, "cust:alice").await, 7_000);
        // To the floor exactly is fine.
        bank.transfer(&alice(), "t-3", &transfer("cust:alice", "cust:bob", 7_000), T0)
            .await
            .expect("to the floor");
        assert_eq!(balance(&bank, "cust:alice").await, 0);

        // An overdraft floor lets an account go negative, to the floor.
        bank.open_account(
            &operator(),
            "open-credit",
            &OpenAccount {
                account: id("cust:credit"),
                holder: "credit line".into(),
                floor: eur(-500),
            },
            T0,
        )
        .await
        .expect("open");
        let credit = mpay_bank::Caller::operator("credit-ops").expect("caller");
        bank.transfer(&credit, "c-1", &transfer("cust:credit", "cust:bob", 500), T0)
            .await
            .expect("within the overdraft");
        assert!(matches!(
            bank.transfer(&credit, "c-2", &transfer("cust:credit", "cust:bob", 1), T0)
                .await,
            Err(BankError::InsufficientFunds { .. })
        ));

        // Who may do what.
        assert!(matches!(
            bank.transfer(&alice(), "t-4", &transfer("cust:bob", "cust:alice", 1), T0)
                .await,
            Err(BankError::Forbidden { .. })
        ));
        assert!(matches!(
            bank.deposit(
                &cpp(),
                "d-x",
                &mpay_bank::Deposit {
                    account: id("cust:alice"),
                    amount: eur(1),
                    reference: String::new(),
                },
                T0,
            )
            .await,
            Err(BankError::Forbidden { .. })
        ));
        assert!(matches!(
            bank.transfer(&alice(), "t-5", &transfer("cust:alice", "external", 1), T0)
                .await,
            Err(BankError::Invalid(_))
        ));
        assert!(matches!(
            bank.transfer(&alice(), "t-6", &transfer("cust:alice", "cust:nobody", 0), T0)
                .await,
            Err(BankError::Invalid(_))
        ));
        assert!(matches!(
            bank.open_account(
                &operator(),
                "open-again",
                &OpenAccount {
                    account: id("cust:alice"),
                    holder: "again".into(),
                    floor: eur(0),
                },
                T0,
            )
            .await,
            Err(BankError::AccountExists(_))
        ));

        // The holder hears of every movement.
        let heard = bank
            .notifications(&alice(), &id("cust:alice"), 0, 100)
            .await
            .expect("notifications");
        let kinds: Vec<_> = heard.iter().map(|n| (n.kind, n.amount, n.balance_after)).collect();
        assert_eq!(
            kinds,
            vec![
                (NotificationKind::Credited, eur(10_000), eur(10_000)),
                (NotificationKind::Debited, eur(3_000), eur(7_000)),
                (NotificationKind::Debited, eur(7_000), eur(0)),
            ]
        );
        let later = bank
            .notifications(&alice(), &id("cust:alice"), heard[1].id, 100)
            .await
            .expect("page");
        assert_eq!(later.len(), 1);
        assert!(matches!(
            bank.notifications(&alice(), &id("cust:bob"), 0, 100).await,
            Err(BankError::Forbidden { .. })
        ));
        bank.check_books().await.expect("books balance");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_is_posted_voided_or_expired_exactly_once() {
    for_each_backend(|db| async move {
        let bank = one_bank(db.clone()).await;
        let later = T0.saturating_add_ms(10 * MINUTE);

        // Placing reserves funds: available drops, the balance does not.
        let h1 = bank
            .place_hold(&cpp(), "h-1", &hold("cust:alice", 6_000, later), T0)
            .await
            .expect("hold");
        assert_eq!(h1.state, HoldState::Pending);
        let view = bank
            .account(&alice(), &id("cust:alice"))
            .await
            .expect("account");
        assert_eq!(view.funds.balance, eur(10_000));
        assert_eq!(view.funds.available(), Ok(eur(4_000)));
        // Held money can be neither spent nor held again.
        let before = footprint(&db).await;
        assert!(matches!(
            bank.transfer(
                &alice(),
                "t-1",
                &transfer("cust:alice", "cust:bob", 4_001),
                T0
            )
            .await,
            Err(BankError::InsufficientFunds { .. })
        ));
        assert!(matches!(
            bank.place_hold(&cpp(), "h-2", &hold("cust:alice", 4_001, later), T0)
                .await,
            Err(BankError::InsufficientFunds { .. })
        ));
        // Each refusal leaves nothing but its key's answer (see
        // `a_hold_refused_for_want_of_funds_stays_refused_when_money_arrives`).
        let [postings, holds, notifications, keys] = before;
        assert_eq!(
            footprint(&db).await,
            [postings, holds, notifications, keys + 2]
        );

        // Only its placer (or the operator) ends a hold.
        assert!(matches!(
            bank.void_hold(&alice(), "v-x", &VoidHold { hold: h1.id }, T0)
                .await,
            Err(BankError::Forbidden { .. })
        ));

        // Post: the held amount moves; a repeat is the same answer.
        let post = PostHold {
            hold: h1.id,
            destination: Destination::Account(id("cpp:cpp1")),
        };
        let posted = bank
            .post_hold(&cpp(), "p-1", &post, T0)
            .await
            .expect("post");
        assert_eq!(posted.state, HoldState::Posted);
        assert!(posted.posting.is_some());
        let again = bank
            .post_hold(&cpp(), "p-1", &post, T0)
            .await
            .expect("repeat");
        assert_eq!(again, posted);
        assert_eq!(balance(&bank, "cust:alice").await, 4_000);
        assert_eq!(balance(&bank, "cpp:cpp1").await, 6_000);
        // A second post or a void under new ids finds it ended.
        for result in [
            bank.post_hold(&cpp(), "p-2", &post, T0).await,
            bank.void_hold(&cpp(), "v-1", &VoidHold { hold: h1.id }, T0)
                .await,
        ] {
            assert!(
                matches!(
                    result,
                    Err(BankError::HoldNotPending {
                        state: HoldState::Posted,
                        ..
                    })
                ),
                "{result:?}"
            );
        }

        // Void: the funds come back; posting a voided hold fails.
        let h2 = bank
            .place_hold(&cpp(), "h-3", &hold("cust:alice", 1_000, later), T0)
            .await
            .expect("hold");
        let voided = bank
            .void_hold(&cpp(), "v-2", &VoidHold { hold: h2.id }, T0)
            .await
            .expect("void");
        assert_eq!(voided.state, HoldState::Voided);
        assert!(matches!(
            bank.post_hold(
                &cpp(),
                "p-3",
                &PostHold {
                    hold: h2.id,
                    destination: Destination::Account(id("cpp:cpp1")),
                },
                T0
            )
            .await,
            Err(BankError::HoldNotPending {
                state: HoldState::Voided,
                ..
            })
        ));
        assert_eq!(
            bank.account(&alice(), &id("cust:alice"))
                .await
                .expect("account")
                .funds
                .available(),
            Ok(eur(4_000))
        );

        // Expiry: not before it is due; posting at the expiry is refused;
        // afterwards it is expired and nothing else.
        let soon = T0.saturating_add_ms(MINUTE);
        let h3 = bank
            .place_hold(&cpp(), "h-4", &hold("cust:alice", 500, soon), T0)
            .await
            .expect("hold");
        assert_eq!(
            bank.expire_holds(soon.saturating_sub_ms(1))
                .await
                .expect("expire"),
            vec![]
        );
        assert!(matches!(
            bank.post_hold(
                &cpp(),
                "p-4",
                &PostHold {
                    hold: h3.id,
                    destination: Destination::Account(id("cpp:cpp1")),
                },
                soon
            )
            .await,
            Err(BankError::HoldExpired { .. })
        ));
        assert_eq!(bank.expire_holds(soon).await.expect("expire"), vec![h3.id]);
        assert_eq!(bank.expire_holds(soon).await.expect("expire"), vec![]);
        assert_eq!(
            bank.hold(&cpp(), h3.id).await.expect("hold").state,
            HoldState::Expired
        );
        assert!(matches!(
            bank.void_hold(&cpp(), "v-3", &VoidHold { hold: h3.id }, soon)
                .await,
            Err(BankError::HoldNotPending {
                state: HoldState::Expired,
                ..
            })
        ));
        assert!(matches!(
            bank.hold(&cpp(), HoldId(9_999)).await,
            Err(BankError::UnknownHold(_))
        ));
        // A hold must expire in the future, within the limit.
        assert!(matches!(
            bank.place_hold(&cpp(), "h-5", &hold("cust:alice", 1, T0), T0)
                .await,
            Err(BankError::Invalid(_))
        ));

        let kinds: Vec<_> = bank
            .notifications(&alice(), &id("cust:alice"), 0, 100)
            .await
            .expect("notifications")
            .iter()
            .map(|n| n.kind)
            .collect();
        use NotificationKind::*;
        assert_eq!(
            kinds,
            vec![
                Credited,
                HoldPlaced,
                HoldPosted,
                HoldPlaced,
                HoldVoided,
                HoldPlaced,
                HoldExpired
            ]
        );
        bank.check_books().await.expect("books balance");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_gives_one_result_and_refuses_another_body() {
    for_each_backend(|db| async move {
        let bank = one_bank(db.clone()).await;
        let t = transfer("cust:alice", "cust:bob", 1_000);
        let first = bank.transfer(&alice(), "k-1", &t, T0).await.expect("first");
        let repeat = bank
            .transfer(&alice(), "k-1", &t, T0.saturating_add_ms(MINUTE))
            .await
            .expect("repeat");
        assert_eq!(first, repeat, "the stored receipt, time included");
        assert_eq!(balance(&bank, "cust:bob").await, 1_000);

        // Same id, another body (or another kind of request): refused.
        let before = footprint(&db).await;
        let other = transfer("cust:alice", "cust:bob", 1_001);
        let refused = bank.transfer(&alice(), "k-1", &other, T0).await;
        assert!(
            matches!(
                &refused,
                Err(BankError::Idempotency(
                    IdempotencyError::KeyReusedWithDifferentRequest { .. }
                ))
            ),
            "{refused:?}"
        );
        assert!(refused.as_ref().err().is_some_and(|e| e.is_client_fault()));
        assert!(matches!(
            bank.place_hold(
                &alice(),
                "k-1",
                &hold("cust:alice", 1, T0.saturating_add_ms(MINUTE)),
                T0
            )
            .await,
            Err(BankError::Idempotency(
                IdempotencyError::KeyReusedWithDifferentRequest { .. }
            ))
        ));
        assert_eq!(footprint(&db).await, before);
        // Request ids are per caller: the CPP's "k-1" is its own.
        bank.transfer(&cpp(), "k-1", &t, T0)
            .await
            .expect("another caller's id");
        assert_eq!(balance(&bank, "cust:bob").await, 2_000);
        // The operator's deposit under an id already used is refused too.
        assert!(matches!(
            bank.deposit(
                &operator(),
                "dep-1",
                &mpay_bank::Deposit {
                    account: id("cust:alice"),
                    amount: eur(1),
                    reference: "cash".into(),
                },
                T0,
            )
            .await,
            Err(BankError::Idempotency(_))
        ));
        bank.check_books().await.expect("books balance");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_holds_on_the_same_funds_let_at_most_one_through() {
    for_each_backend(|db| async move {
        let bank = one_bank(db.clone()).await;
        let later = T0.saturating_add_ms(10 * MINUTE);
        const RACERS: usize = 4;
        let mut tasks = Vec::with_capacity(RACERS);
        for i in 0..RACERS {
            let bank = Arc::clone(&bank);
            tasks.push(tokio::spawn(async move {
                bank.place_hold(
                    &cpp(),
                    &format!("race-{i}"),
                    &hold("cust:alice", 6_000, later),
                    T0,
                )
                .await
            }));
        }
        let mut placed = 0;
        for task in tasks {
            match task.await.expect("task") {
                Ok(_) => placed += 1,
                Err(BankError::InsufficientFunds { .. }) => {}
                Err(other) => panic!("unexpected: {other}"),
            }
        }
        assert_eq!(placed, 1, "only one 60.00 hold fits in 100.00");
        let funds = bank
            .account(&alice(), &id("cust:alice"))
            .await
            .expect("account")
            .funds;
        assert_eq!(funds.held, eur(6_000));
        bank.check_books().await.expect("books balance");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bank_reopens_with_its_stored_identity_and_books() {
    for_each_backend(|db| async move {
        let mut scheme = Scheme::new(3, T0);
        let first = scheme.bank(T0);
        let bank_id = first.id();
        let bank = open_bank(db.clone(), &scheme, first, vec![], 1, T0).await;
        open_accounts(&bank, &["cust:alice"], T0).await;
        deposit(&bank, "cust:alice", 500, "dep-1", T0).await;
        drop(bank);

        let reopened = mpay_bank::Bank::open(db.clone(), scheme.config(vec![]), None, [2; 32], T0)
            .await
            .expect("reopens from the stored identity");
        assert_eq!(reopened.id(), bank_id);
        assert_eq!(balance(&reopened, "cust:alice").await, 500);
        reopened.check_books().await.expect("books balance");
        // Another bank's identity does not take over this database.
        let other = scheme.bank(T0);
        assert!(matches!(
            mpay_bank::Bank::open(db.clone(), scheme.config(vec![]), Some(other), [3; 32], T0)
                .await,
            Err(BankError::Config(_))
        ));
        // Nor does another currency.
        let mut usd = scheme.config(vec![]);
        usd.currency = mpay_money::Currency::USD;
        assert!(matches!(
            mpay_bank::Bank::open(db.clone(), usd, None, [4; 32], T0).await,
            Err(BankError::Config(_))
        ));
    })
    .await;
}

/// A hold request refused for want of funds keeps that answer: its caller
/// declines the payment on it, so a copy of the same request that arrives
/// later (a client retry racing the first, a second driver of the same
/// payment) must not place a hold nobody will ever post or void. Found by
/// the SEMOPS simulator (`mpay sim semops`, seeds 1670 and 1749 before the
/// fix).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_refused_for_want_of_funds_stays_refused_when_money_arrives() {
    for_each_backend(|db| async move {
        let bank = one_bank(db.clone()).await;
        let expires = T0.saturating_add_ms(MINUTE);
        let big = hold("cust:alice", 15_000, expires);
        let first = bank.place_hold(&cpp(), "hold-1", &big, T0).await;
        assert!(
            matches!(&first, Err(BankError::InsufficientFunds { .. })),
            "{first:?}"
        );
        deposit(&bank, "cust:alice", 10_000, "dep-2", T0).await;
        let again = bank.place_hold(&cpp(), "hold-1", &big, T0).await;
        assert!(
            matches!(&again, Err(BankError::InsufficientFunds { available, requested, .. })
                if *available == eur(10_000) && *requested == eur(15_000)),
            "the repeat got {again:?}, not the first answer"
        );
        assert_eq!(open_holds(&db).await, 0);
        // A new request is a new question.
        bank.place_hold(&cpp(), "hold-2", &big, T0)
            .await
            .expect("funds are there now");
        assert_eq!(open_holds(&db).await, 1);
        // Another body under the refused key is still a reused key.
        let other = bank
            .place_hold(&cpp(), "hold-1", &hold("cust:alice", 1, expires), T0)
            .await;
        assert!(
            matches!(
                &other,
                Err(BankError::Idempotency(
                    IdempotencyError::KeyReusedWithDifferentRequest { .. }
                ))
            ),
            "{other:?}"
        );
        bank.check_books().await.expect("books balance");
    })
    .await;
}

/// DESIGN §3.2: a repeat returns the stored result, a refusal included. A
/// caller that acts on a transfer's refusal (the CPP's aggregated
/// micropayment transfer fails its batch) must never see the same key
/// succeed later, when money has come in; a caller that waits for money asks
/// again under a new key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_refused_for_want_of_funds_stays_refused_when_money_arrives() {
    for_each_backend(|db| async move {
        let bank = one_bank(db.clone()).await;
        let big = transfer("cust:alice", "cust:bob", 15_000);
        let first = bank.transfer(&alice(), "batch-1", &big, T0).await;
        assert!(
            matches!(&first, Err(BankError::InsufficientFunds { .. })),
            "{first:?}"
        );
        deposit(&bank, "cust:alice", 10_000, "dep-2", T0).await;
        let again = bank.transfer(&alice(), "batch-1", &big, T0).await;
        assert!(
            matches!(&again, Err(BankError::InsufficientFunds { available, requested, .. })
                if *available == eur(10_000) && *requested == eur(15_000)),
            "the repeat got {again:?}, not the first answer"
        );
        assert_eq!(balance(&bank, "cust:bob").await, 0);
        // The next attempt is a new key.
        bank.transfer(&alice(), "batch-1-attempt-1", &big, T0)
            .await
            .expect("funds are there now");
        assert_eq!(balance(&bank, "cust:bob").await, 15_000);
        assert_eq!(balance(&bank, "cust:alice").await, 5_000);
        bank.check_books().await.expect("books balance");
    })
    .await;
}

async fn open_holds(db: &mpay_sql::Db) -> i64 {
    sqlx::query("SELECT COUNT(*) AS n FROM bank_holds WHERE state = 'pending'")
        .fetch_one(db.pool())
        .await
        .expect("count")
        .try_get("n")
        .expect("n")
}
