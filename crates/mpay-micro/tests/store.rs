//! The durable pending structure on both backends: a scripted CPP is
//! "crashed" at every durable step (a transaction dropped before commit, or
//! the process stopping between steps), then recovered from the database;
//! no micropayment may be lost or counted twice.

use std::collections::{BTreeMap, HashMap};

use mpay_identity::{PartyId, Timestamp};
use mpay_micro::pending::{AddOutcome, Batch};
use mpay_micro::policy::{BatchId, MicroLimits};
use mpay_micro::store::{self, Ended, StoreError};
use mpay_money::{Amount, Currency};
use mpay_sql::Db;
use mpay_sql::sqlx;

const EUR: Currency = Currency::EUR;
const W: u64 = 1_000;

fn eur(minor: i64) -> Amount {
    Amount::new(minor, EUR)
}
fn limits() -> MicroLimits {
    MicroLimits::new(eur(400), eur(1_000), W).unwrap()
}
fn customer(n: u64) -> PartyId {
    PartyId::from_u64(n)
}

const CPP_PAYMENTS: mpay_sql::Migrations = mpay_sql::Migrations::new(
    "test_cpp",
    &[(
        "0001_payments",
        "CREATE TABLE cpp_payments (payment BIGINT PRIMARY KEY, outcome TEXT NOT NULL)",
    )],
);

/// The bank: one transfer per idempotency key; customer 3's account is empty
/// until `all_funded`.
#[derive(Default)]
struct Bank {
    outcomes: HashMap<BatchId, bool>,
    collected: BTreeMap<PartyId, i64>,
    transfers: usize,
    all_funded: bool,
}

impl Bank {
    fn transfer(&mut self, batch: &Batch) -> bool {
        if let Some(&ok) = self.outcomes.get(&batch.id) {
            return ok;
        }
        let ok = self.all_funded || batch.customer != customer(3);
        if ok {
            *self.collected.entry(batch.customer).or_default() += batch.total.minor_units();
            self.transfers += 1;
        }
        self.outcomes.insert(batch.id, ok);
        ok
    }
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Add {
        customer: u64,
        payment: u64,
        amount: i64,
        at: u64,
    },
    Sweep {
        at: u64,
    },
}

fn script() -> Vec<Op> {
    let mut ops = Vec::new();
    // Three customers; amounts make θ (1000) trip every few payments.
    let amounts = [300, 250, 400, 120, 380, 90, 400, 310];
    for i in 0..18u64 {
        let payment = i + 1;
        ops.push(Op::Add {
            customer: 1 + i % 3,
            payment,
            amount: amounts[usize::try_from(i).unwrap() % amounts.len()],
            at: i * 100,
        });
        if i % 6 == 5 {
            ops.push(Op::Sweep { at: i * 100 + 50 });
        }
    }
    ops.push(Op::Sweep { at: 10_000 });
    ops
}

/// What the CPP knows it promised: committed adds, rejected triggers.
#[derive(Default)]
struct Reference {
    accepted: BTreeMap<PartyId, i64>,
    rejected: BTreeMap<PartyId, i64>,
}

struct Crash;

struct Cpp<'a> {
    db: &'a Db,
    bank: &'a mut Bank,
    reference: &'a mut Reference,
    step: usize,
    crash_at: Option<usize>,
}

impl Cpp<'_> {
    /// Counts a durable step; `Err(Crash)` at the chosen one.
    fn step(&mut self) -> Result<(), Crash> {
        self.step += 1;
        if Some(self.step) == self.crash_at {
            Err(Crash)
        } else {
            Ok(())
        }
    }

    async fn end(&mut self, batch: Batch, now: Timestamp) -> Result<(), Crash> {
        self.step()?; // crash before the bank call
        let ok = self.bank.transfer(&batch);
        self.step()?; // crash after the bank call, before recording its end
        let mut tx = self.db.begin().await.unwrap();
        let ended = if ok {
            store::settled(&mut tx, batch.id, EUR, now).await.unwrap()
        } else {
            store::failed(&mut tx, batch.id, &limits(), now)
                .await
                .unwrap()
        };
        self.step()?; // crash before commit: the transaction is dropped
        tx.commit().await.unwrap();
        if let (Ended::Now(b), false) = (ended, ok)
            && let Some(trigger) = b.trigger
        {
            *self.reference.rejected.entry(b.customer).or_default() += trigger.amount.minor_units();
        }
        Ok(())
    }

    async fn run(&mut self, op: Op) -> Result<(), Crash> {
        match op {
            Op::Add {
                customer: c,
                payment,
                amount,
                at,
            } => {
                let mut tx = self.db.begin().await.unwrap();
                let outcome = store::add(
                    &mut tx,
                    &customer(c),
                    payment,
                    eur(amount),
                    &limits(),
                    Timestamp(at),
                )
                .await
                .unwrap();
                // The CPP's own payment row, in the same transaction.
                sqlx::query("INSERT INTO cpp_payments (payment, outcome) VALUES ($1, $2)")
                    .bind(i64::try_from(payment).unwrap())
                    .bind(format!("{outcome:?}"))
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                self.step()?;
                tx.commit().await.unwrap();
                match outcome {
                    AddOutcome::Deferred { .. } | AddOutcome::SettleNeeded(_) => {
                        *self.reference.accepted.entry(customer(c)).or_default() += amount;
                    }
                    AddOutcome::Refused(_) | AddOutcome::Macro => {}
                }
                if let AddOutcome::SettleNeeded(batch) = outcome {
                    self.end(batch, Timestamp(at + 1)).await?;
                }
            }
            Op::Sweep { at } => {
                let now = Timestamp(at);
                let mut tx = self.db.begin().await.unwrap();
                let due = store::due_for_window(&mut tx, now, 100).await.unwrap();
                drop(tx);
                for c in due {
                    let mut tx = self.db.begin().await.unwrap();
                    let batch = store::start_settlement(&mut tx, &c, EUR, now)
                        .await
                        .unwrap();
                    self.step()?;
                    tx.commit().await.unwrap();
                    if let Some(batch) = batch {
                        self.end(batch, now).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// After a restart: repeat every unfinished batch's transfer and end it.
    async fn recover(&mut self, now: Timestamp) {
        let mut tx = self.db.begin().await.unwrap();
        let unfinished = store::unfinished(&mut tx, EUR).await.unwrap();
        drop(tx);
        self.crash_at = None;
        for batch in unfinished {
            let _ = self.end(batch, now).await;
        }
    }
}

async fn reset(db: &Db) {
    for table in [
        "micro_items",
        "micro_batches",
        "micro_customers",
        "micro_log",
        "cpp_payments",
    ] {
        sqlx::query(mpay_sql::sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table}"
        )))
        .execute(db.pool())
        .await
        .unwrap();
    }
}

/// Every accepted micropayment is collected once or still pending; nothing
/// rejected was collected; the log replays to the index; the in-memory
/// structure rebuilt from the tables agrees.
async fn check_conservation(db: &Db, bank: &Bank, reference: &Reference, when: &str) {
    let mut tx = db.begin_read().await.unwrap();
    store::check_log(&mut tx, EUR).await.unwrap();
    let aggregator = store::load(&mut tx, EUR).await.unwrap();
    for (c, accepted) in &reference.accepted {
        let pending = aggregator.pending(c).map_or(0, |p| p.total.minor_units());
        let in_flight_trigger: i64 = aggregator
            .in_flight()
            .filter(|b| b.customer == *c)
            .filter_map(|b| b.trigger.map(|t| t.amount.minor_units()))
            .sum();
        let collected = bank.collected.get(c).copied().unwrap_or(0);
        let rejected = reference.rejected.get(c).copied().unwrap_or(0);
        assert_eq!(
            collected + pending,
            accepted - rejected,
            "{when}: customer {c:?}: collected {collected} + pending {pending} (trigger in flight {in_flight_trigger})"
        );
    }
    // Atomicity with the CPP's payment row: an aggregated payment has its
    // payment row and the other way round.
    let payments: i64 = mpay_sql::sqlx::Row::get(
        &sqlx::query("SELECT COUNT(*) AS n FROM cpp_payments")
            .fetch_one(&mut *tx)
            .await
            .unwrap(),
        "n",
    );
    let logged: i64 = mpay_sql::sqlx::Row::get(
        &sqlx::query("SELECT COUNT(*) AS n FROM micro_log WHERE kind IN ('deferred', 'trigger')")
            .fetch_one(&mut *tx)
            .await
            .unwrap(),
        "n",
    );
    let refused: i64 = mpay_sql::sqlx::Row::get(
        &sqlx::query("SELECT COUNT(*) AS n FROM cpp_payments WHERE outcome LIKE 'Refused%'")
            .fetch_one(&mut *tx)
            .await
            .unwrap(),
        "n",
    );
    assert_eq!(payments - refused, logged, "{when}: payment rows vs log");
}

#[tokio::test]
async fn a_crash_at_every_step_neither_loses_nor_double_counts() {
    mpay_sql::testing::for_each_backend(|db| async move {
        db.migrate(&[mpay_sql::MIGRATIONS, store::MIGRATIONS, CPP_PAYMENTS])
            .await
            .unwrap();
        // A run without a crash counts the steps.
        let mut bank = Bank::default();
        let mut reference = Reference::default();
        let mut cpp = Cpp {
            db: &db,
            bank: &mut bank,
            reference: &mut reference,
            step: 0,
            crash_at: None,
        };
        for op in script() {
            assert!(cpp.run(op).await.is_ok());
        }
        let steps = cpp.step;
        assert!(
            steps > 30,
            "the script exercises settlements ({steps} steps)"
        );
        assert!(bank.transfers >= 4, "θ was reached several times");
        assert!(
            bank.outcomes.values().any(|ok| !ok),
            "the empty account made a transfer fail"
        );
        check_conservation(&db, &bank, &reference, "no crash").await;

        for crash_at in 1..=steps {
            reset(&db).await;
            let mut bank = Bank::default();
            let mut reference = Reference::default();
            let mut cpp = Cpp {
                db: &db,
                bank: &mut bank,
                reference: &mut reference,
                step: 0,
                crash_at: Some(crash_at),
            };
            let mut crashed_after = None;
            for (i, op) in script().into_iter().enumerate() {
                if cpp.run(op).await.is_err() {
                    crashed_after = Some(i);
                    break;
                }
            }
            assert!(crashed_after.is_some(), "crash point {crash_at} reached");
            // Restart: everything must add up before and after recovery.
            cpp.recover(Timestamp(20_000)).await;
            let when = format!("crash at step {crash_at}");
            check_conservation(&db, &bank, &reference, &when).await;
            let mut tx = db.begin().await.unwrap();
            assert!(store::unfinished(&mut tx, EUR).await.unwrap().is_empty());
            drop(tx);
            // Then settle everything with every account funded: the bank
            // must have collected exactly what was accepted and not rejected.
            bank.all_funded = true;
            let mut cpp = Cpp {
                db: &db,
                bank: &mut bank,
                reference: &mut reference,
                step: 0,
                crash_at: None,
            };
            assert!(cpp.run(Op::Sweep { at: 1_000_000 }).await.is_ok());
            check_conservation(&db, &bank, &reference, &when).await;
            for (c, accepted) in &reference.accepted {
                let rejected = reference.rejected.get(c).copied().unwrap_or(0);
                assert_eq!(
                    bank.collected.get(c).copied().unwrap_or(0),
                    accepted - rejected
                );
            }
        }
    })
    .await;
}

#[tokio::test]
async fn ends_are_idempotent_and_exclusive_and_payments_unique() {
    mpay_sql::testing::for_each_backend(|db| async move {
        db.migrate(&[mpay_sql::MIGRATIONS, store::MIGRATIONS])
            .await
            .unwrap();
        let mut tx = db.begin().await.unwrap();
        let c = customer(9);
        let out = store::add(&mut tx, &c, 1, eur(400), &limits(), Timestamp(0))
            .await
            .unwrap();
        assert_eq!(out, AddOutcome::Deferred { total: eur(400) });
        tx.commit().await.unwrap();
        let mut tx = db.begin().await.unwrap();
        let dup = store::add(&mut tx, &c, 1, eur(5), &limits(), Timestamp(1)).await;
        assert!(matches!(dup, Err(StoreError::DuplicatePayment(1))));
        drop(tx);
        let mut tx = db.begin().await.unwrap();
        let out = store::add(&mut tx, &c, 5, eur(200), &limits(), Timestamp(1))
            .await
            .unwrap();
        assert_eq!(out, AddOutcome::Deferred { total: eur(600) });
        tx.commit().await.unwrap();

        let mut tx = db.begin().await.unwrap();
        let AddOutcome::SettleNeeded(batch) =
            store::add(&mut tx, &c, 2, eur(400), &limits(), Timestamp(2))
                .await
                .unwrap()
        else {
            panic!("600 + 400 reaches θ = 1000")
        };
        assert_eq!((batch.total, batch.count), (eur(1_000), 3));
        // Macro payments and refusals write nothing.
        assert_eq!(
            store::add(&mut tx, &c, 3, eur(401), &limits(), Timestamp(3))
                .await
                .unwrap(),
            AddOutcome::Macro
        );
        assert!(matches!(
            store::add(&mut tx, &c, 4, eur(1), &limits(), Timestamp(3))
                .await
                .unwrap(),
            AddOutcome::Refused(_)
        ));
        tx.commit().await.unwrap();

        let mut tx = db.begin().await.unwrap();
        assert_eq!(
            store::settled(&mut tx, batch.id, EUR, Timestamp(4))
                .await
                .unwrap(),
            Ended::Now(batch)
        );
        assert_eq!(
            store::settled(&mut tx, batch.id, EUR, Timestamp(5))
                .await
                .unwrap(),
            Ended::Before(batch)
        );
        let wrong_way = store::failed(&mut tx, batch.id, &limits(), Timestamp(5)).await;
        assert!(matches!(wrong_way, Err(StoreError::BatchEnded { .. })));
        assert!(wrong_way.unwrap_err().is_client_fault());
        assert!(matches!(
            store::settled(&mut tx, BatchId(999), EUR, Timestamp(5)).await,
            Err(StoreError::UnknownBatch(_))
        ));
        let (pending, items) = store::customer(&mut tx, &c, EUR).await.unwrap().unwrap();
        assert_eq!((pending.total, pending.count, items.len()), (eur(0), 0, 0));
        store::check_log(&mut tx, EUR).await.unwrap();
        tx.commit().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_rejected_micropayment_is_taken_back_out_of_the_pending_total() {
    mpay_sql::testing::for_each_backend(|db| async move {
        db.migrate(&[mpay_sql::MIGRATIONS, store::MIGRATIONS])
            .await
            .unwrap();
        let c = customer(4);
        let add = |payment: u64, amount: i64, at: u64| {
            let db = db.clone();
            async move {
                let mut tx = db.begin().await.unwrap();
                let out = store::add(&mut tx, &c, payment, eur(amount), &limits(), Timestamp(at))
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                out
            }
        };
        let take = |payment: u64, at: u64| {
            let db = db.clone();
            async move {
                let mut tx = db.begin().await.unwrap();
                let out = store::take_back(&mut tx, &c, payment, &limits(), Timestamp(at)).await;
                tx.commit().await.unwrap();
                out
            }
        };
        assert_eq!(
            add(1, 300, 10).await,
            AddOutcome::Deferred { total: eur(300) }
        );
        assert_eq!(
            add(2, 200, 20).await,
            AddOutcome::Deferred { total: eur(500) }
        );
        // The oldest is taken back: the total and the window follow.
        assert_eq!(
            take(1, 30).await.unwrap(),
            store::TakeBack::Removed { total: eur(200) }
        );
        assert_eq!(take(1, 31).await.unwrap(), store::TakeBack::Gone);
        let mut tx = db.begin().await.unwrap();
        let (pending, items) = store::customer(&mut tx, &c, EUR).await.unwrap().unwrap();
        assert_eq!((pending.total, pending.count), (eur(200), 1));
        assert_eq!(items.iter().map(|i| i.payment).collect::<Vec<_>>(), vec![2]);
        assert_eq!(pending.oldest, Some(Timestamp(20)));
        assert_eq!(
            store::due_for_window(&mut tx, Timestamp(20 + W - 1), 10)
                .await
                .unwrap(),
            vec![]
        );
        assert_eq!(
            store::due_for_window(&mut tx, Timestamp(20 + W), 10)
                .await
                .unwrap(),
            vec![c]
        );
        drop(tx);
        // A payment that was never aggregated, or another customer's, is unknown.
        let mut tx = db.begin().await.unwrap();
        assert!(matches!(
            store::take_back(&mut tx, &c, 99, &limits(), Timestamp(40)).await,
            Err(StoreError::UnknownPayment(99))
        ));
        assert!(matches!(
            store::take_back(&mut tx, &customer(5), 2, &limits(), Timestamp(40)).await,
            Err(StoreError::UnknownPayment(2))
        ));
        drop(tx);
        // While a batch is in flight its items cannot leave it.
        assert_eq!(
            add(3, 400, 50).await,
            AddOutcome::Deferred { total: eur(600) }
        );
        let AddOutcome::SettleNeeded(batch) = add(8, 400, 51).await else {
            panic!("600 + 400 reaches θ")
        };
        assert_eq!(batch.total, eur(1_000));
        assert_eq!(
            take(2, 60).await.unwrap(),
            store::TakeBack::InFlight(batch.id)
        );
        let mut tx = db.begin().await.unwrap();
        assert!(matches!(
            store::settled(&mut tx, batch.id, EUR, Timestamp(70))
                .await
                .unwrap(),
            Ended::Now(_)
        ));
        tx.commit().await.unwrap();
        // Once collected, the customer paid it: the CPP owes it back.
        assert_eq!(take(2, 80).await.unwrap(), store::TakeBack::Collected);
        // A failed trigger is gone; a blocked customer left with nothing is open.
        assert_eq!(
            add(4, 300, 90).await,
            AddOutcome::Deferred { total: eur(300) }
        );
        assert_eq!(
            add(5, 400, 91).await,
            AddOutcome::Deferred { total: eur(700) }
        );
        let AddOutcome::SettleNeeded(batch) = add(6, 300, 92).await else {
            panic!("1000 reaches θ")
        };
        let mut tx = db.begin().await.unwrap();
        store::failed(&mut tx, batch.id, &limits(), Timestamp(93))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(take(6, 94).await.unwrap(), store::TakeBack::Gone);
        assert_eq!(
            take(4, 95).await.unwrap(),
            store::TakeBack::Removed { total: eur(400) }
        );
        let mut tx = db.begin().await.unwrap();
        let (pending, _) = store::customer(&mut tx, &c, EUR).await.unwrap().unwrap();
        assert!(matches!(
            pending.standing,
            mpay_micro::policy::Standing::Blocked { .. }
        ));
        drop(tx);
        assert_eq!(
            take(5, 96).await.unwrap(),
            store::TakeBack::Removed { total: eur(0) }
        );
        assert_eq!(
            add(7, 10, 97).await,
            AddOutcome::Deferred { total: eur(10) }
        );
        let mut tx = db.begin().await.unwrap();
        assert_eq!(store::check_log(&mut tx, EUR).await.unwrap(), 1);
        store::load(&mut tx, EUR).await.unwrap();
    })
    .await;
}
