//! The DC's store: one route per payment (where its PN came from and went
//! to) and, in the same transaction as each change, the message that
//! change sends. The DC's driver (`dc.rs`) decides; this stores.
//!
//! - [`RouteStore`]: what the DC asks of its store;
//! - [`SqlRoutes`]: SQLite or PostgreSQL through `mpay-sql` (the
//!   `dc_routes` table, the service's outbox);
//! - [`MemoryRoutes`]: the same in memory, its queued messages kept in
//!   order (for tests and simulation).
//!
//! One suite (the tests below) runs on SQLite, PostgreSQL and memory.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Mutex;

use mpay_envelope::MessageKind;
use mpay_identity::Timestamp;
use mpay_processor::route::RouteState;
use mpay_sql::Db;
use mpay_sql::sqlx::{self, Row};

use crate::api::{NetError, hex, ms, ts};
use crate::client::RouteRecord;
use crate::node::Node;

/// A message a change sends, queued with it.
#[derive(Debug, Clone, Copy)]
pub struct Queued<'a> {
    /// The next hop (a directory name).
    pub to: &'a str,
    /// Its kind.
    pub kind: MessageKind,
    /// Its bytes.
    pub payload: &'a [u8],
    /// Its idempotency key at that hop: a message is queued once per key.
    pub key: &'a str,
}

/// A payment's route, as its PN arrived.
#[derive(Debug, Clone, Copy)]
pub struct NewRoute<'a> {
    /// The payment.
    pub payment: [u8; 16],
    /// The CPP that sent the PN first.
    pub cpp: &'a str,
    /// The hop the PN came from.
    pub from: &'a str,
    /// The hop it went on to (none when it came too late).
    pub to: Option<&'a str>,
    /// Forwarded, or late.
    pub state: RouteState,
    /// The hop deadline it arrived with.
    pub hop_deadline: Timestamp,
}

/// What recording a route came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Recorded now (with its message, if any).
    New,
    /// The payment already had a route: nothing changed.
    Duplicate,
}

/// The two ends of a recorded route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hops {
    /// Where the PN came from.
    pub from: String,
    /// Where it went (none if it was late).
    pub to: Option<String>,
}

/// What the DC asks of its store. Each call is one transaction.
pub trait RouteStore: Send + Sync {
    /// Records `route` and queues `forward` with it; a payment that has a
    /// route already changes nothing.
    fn record(
        &self,
        route: &NewRoute<'_>,
        forward: Option<&Queued<'_>>,
        now: Timestamp,
    ) -> impl Future<Output = Result<Recorded, NetError>> + Send;

    /// The route of `payment`, if it has one.
    fn hops(
        &self,
        payment: &[u8; 16],
    ) -> impl Future<Output = Result<Option<Hops>, NetError>> + Send;

    /// Queues `message` along `payment`'s route and counts it on the route;
    /// `false` (and nothing changed) if one with its key was queued before.
    fn pass(
        &self,
        payment: &[u8; 16],
        message: &Queued<'_>,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, NetError>> + Send;

    /// Routes after `after` in the order they were recorded, at most `limit`.
    fn page(
        &self,
        after: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<RouteRecord>, NetError>> + Send;

    /// How many routes are in each state.
    fn count_by_state(&self) -> impl Future<Output = Result<Vec<(String, i64)>, NetError>> + Send;
}

/// The DC's routes in its SQL database.
#[derive(Debug, Clone)]
pub struct SqlRoutes {
    db: Db,
}

impl SqlRoutes {
    /// The store on `db` (migrated with the DC's migrations).
    pub fn new(db: Db) -> SqlRoutes {
        SqlRoutes { db }
    }
}

impl RouteStore for SqlRoutes {
    async fn record(
        &self,
        route: &NewRoute<'_>,
        forward: Option<&Queued<'_>>,
        now: Timestamp,
    ) -> Result<Recorded, NetError> {
        self.db
            .with_retry(move |tx| {
                Box::pin(async move {
                    let id = route.payment;
                    let existing = sqlx::query("SELECT state FROM dc_routes WHERE payment_id = $1")
                        .bind(&id[..])
                        .fetch_optional(&mut **tx)
                        .await?;
                    if existing.is_some() {
                        return Ok(Recorded::Duplicate);
                    }
                    sqlx::query(
                        "INSERT INTO dc_routes (payment_id, cpp, from_hop, to_hop, state,
                            hop_deadline, messages, created_at, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7)",
                    )
                    .bind(&id[..])
                    .bind(route.cpp)
                    .bind(route.from)
                    .bind(route.to)
                    .bind(route.state.as_str())
                    .bind(ms(route.hop_deadline))
                    .bind(ms(now))
                    .execute(&mut **tx)
                    .await?;
                    if let Some(m) = forward {
                        Node::enqueue(tx, m.to, m.kind, id, m.payload, m.key, now).await?;
                    }
                    Ok::<_, NetError>(Recorded::New)
                })
            })
            .await
    }

    async fn hops(&self, payment: &[u8; 16]) -> Result<Option<Hops>, NetError> {
        let row = sqlx::query("SELECT from_hop, to_hop FROM dc_routes WHERE payment_id = $1")
            .bind(&payment[..])
            .fetch_optional(self.db.pool())
            .await?;
        row.map(|row| {
            Ok(Hops {
                from: row.try_get("from_hop")?,
                to: row.try_get("to_hop")?,
            })
        })
        .transpose()
    }

    async fn pass(
        &self,
        payment: &[u8; 16],
        message: &Queued<'_>,
        now: Timestamp,
    ) -> Result<bool, NetError> {
        let id = *payment;
        self.db
            .with_retry(move |tx| {
                Box::pin(async move {
                    let m = message;
                    let queued = Node::enqueue(tx, m.to, m.kind, id, m.payload, m.key, now).await?;
                    if queued {
                        sqlx::query(
                            "UPDATE dc_routes SET messages = messages + 1, updated_at = $2
                             WHERE payment_id = $1",
                        )
                        .bind(&id[..])
                        .bind(ms(now))
                        .execute(&mut **tx)
                        .await?;
                    }
                    Ok::<_, NetError>(queued)
                })
            })
            .await
    }

    async fn page(&self, after: i64, limit: u32) -> Result<Vec<RouteRecord>, NetError> {
        let rows = sqlx::query("SELECT * FROM dc_routes WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(self.db.pool())
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: Vec<u8> = r.try_get("payment_id")?;
            out.push(RouteRecord {
                seq: r.try_get("seq")?,
                payment_id: hex(&id),
                cpp: r.try_get("cpp")?,
                from: r.try_get("from_hop")?,
                to: r.try_get("to_hop")?,
                state: r.try_get("state")?,
                messages: r.try_get("messages")?,
                created_at: ts(r.try_get("created_at")?).as_millis(),
                updated_at: ts(r.try_get("updated_at")?).as_millis(),
            });
        }
        Ok(out)
    }

    async fn count_by_state(&self) -> Result<Vec<(String, i64)>, NetError> {
        crate::node::count_by(&self.db, "dc_routes", "state").await
    }
}

/// A message [`MemoryRoutes`] queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryMessage {
    /// The next hop.
    pub to: String,
    /// Its kind.
    pub kind: MessageKind,
    /// The payment.
    pub payment: [u8; 16],
    /// Its bytes.
    pub payload: Vec<u8>,
    /// Its idempotency key.
    pub key: String,
}

#[derive(Debug, Default)]
struct Memory {
    /// Payment → its route, with its sequence number.
    routes: BTreeMap<[u8; 16], RouteRecord>,
    next_seq: i64,
    /// Every message queued, in order.
    outbox: Vec<MemoryMessage>,
    /// (next hop, key) of every message queued.
    keys: BTreeSet<(String, String)>,
}

impl Memory {
    fn queue(&mut self, payment: [u8; 16], m: &Queued<'_>) -> bool {
        if !self.keys.insert((m.to.to_owned(), m.key.to_owned())) {
            return false;
        }
        self.outbox.push(MemoryMessage {
            to: m.to.to_owned(),
            kind: m.kind,
            payment,
            payload: m.payload.to_vec(),
            key: m.key.to_owned(),
        });
        true
    }
}

/// The DC's routes in memory.
#[derive(Debug, Default)]
pub struct MemoryRoutes {
    inner: Mutex<Memory>,
}

impl MemoryRoutes {
    /// An empty store.
    pub fn new() -> MemoryRoutes {
        MemoryRoutes::default()
    }

    /// Every message queued so far, in order.
    pub fn queued(&self) -> Vec<MemoryMessage> {
        self.lock().map(|m| m.outbox.clone()).unwrap_or_default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Memory>, NetError> {
        self.inner
            .lock()
            .map_err(|_| NetError::Internal("the route store's lock is poisoned".into()))
    }
}

impl RouteStore for MemoryRoutes {
    async fn record(
        &self,
        route: &NewRoute<'_>,
        forward: Option<&Queued<'_>>,
        now: Timestamp,
    ) -> Result<Recorded, NetError> {
        let mut memory = self.lock()?;
        if memory.routes.contains_key(&route.payment) {
            return Ok(Recorded::Duplicate);
        }
        memory.next_seq += 1;
        let record = RouteRecord {
            seq: memory.next_seq,
            payment_id: hex(&route.payment),
            cpp: route.cpp.to_owned(),
            from: route.from.to_owned(),
            to: route.to.map(str::to_owned),
            state: route.state.as_str().to_owned(),
            messages: 1,
            created_at: now.as_millis(),
            updated_at: now.as_millis(),
        };
        memory.routes.insert(route.payment, record);
        if let Some(m) = forward {
            memory.queue(route.payment, m);
        }
        Ok(Recorded::New)
    }

    async fn hops(&self, payment: &[u8; 16]) -> Result<Option<Hops>, NetError> {
        Ok(self.lock()?.routes.get(payment).map(|r| Hops {
            from: r.from.clone(),
            to: r.to.clone(),
        }))
    }

    async fn pass(
        &self,
        payment: &[u8; 16],
        message: &Queued<'_>,
        now: Timestamp,
    ) -> Result<bool, NetError> {
        let mut memory = self.lock()?;
        let queued = memory.queue(*payment, message);
        if queued && let Some(route) = memory.routes.get_mut(payment) {
            route.messages += 1;
            route.updated_at = now.as_millis();
        }
        Ok(queued)
    }

    async fn page(&self, after: i64, limit: u32) -> Result<Vec<RouteRecord>, NetError> {
        let memory = self.lock()?;
        let mut out: Vec<RouteRecord> = memory
            .routes
            .values()
            .filter(|r| r.seq > after)
            .cloned()
            .collect();
        out.sort_by_key(|r| r.seq);
        out.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(out)
    }

    async fn count_by_state(&self) -> Result<Vec<(String, i64)>, NetError> {
        let mut counts = BTreeMap::<String, i64>::new();
        for route in self.lock()?.routes.values() {
            *counts.entry(route.state.clone()).or_default() += 1;
        }
        Ok(counts.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use mpay_semops::kind;

    use super::*;

    const A: [u8; 16] = [0xa1; 16];
    const B: [u8; 16] = [0xb2; 16];

    fn at(ms: u64) -> Timestamp {
        Timestamp(ms)
    }

    /// The suite every store passes; `queued` reads back (next hop, key)
    /// of every message the store has queued, in order.
    async fn suite<S, F>(store: &S, queued: impl Fn() -> F)
    where
        S: RouteStore,
        F: Future<Output = Vec<(String, String)>>,
    {
        let forwarded = NewRoute {
            payment: A,
            cpp: "cpp1",
            from: "cpp1",
            to: Some("mpp1"),
            state: RouteState::Forwarded,
            hop_deadline: at(9_000),
        };
        let pn = Queued {
            to: "mpp1",
            kind: kind::PAYMENT_NOTICE,
            payload: b"pn",
            key: "pn-a",
        };
        assert_eq!(
            store
                .record(&forwarded, Some(&pn), at(1_000))
                .await
                .unwrap(),
            Recorded::New
        );
        // The same PN again (a repeat from the CPP) changes nothing.
        let again = Queued { key: "pn-a2", ..pn };
        assert_eq!(
            store
                .record(&forwarded, Some(&again), at(1_500))
                .await
                .unwrap(),
            Recorded::Duplicate
        );
        let late = NewRoute {
            payment: B,
            cpp: "cpp2",
            from: "dc2",
            to: None,
            state: RouteState::Late,
            hop_deadline: at(500),
        };
        assert_eq!(
            store.record(&late, None, at(2_000)).await.unwrap(),
            Recorded::New
        );
        assert_eq!(queued().await, vec![("mpp1".into(), "pn-a".into())]);

        assert_eq!(
            store.hops(&A).await.unwrap(),
            Some(Hops {
                from: "cpp1".into(),
                to: Some("mpp1".into())
            })
        );
        assert_eq!(
            store.hops(&B).await.unwrap().map(|h| (h.from, h.to)),
            Some(("dc2".into(), None))
        );
        assert_eq!(store.hops(&[0; 16]).await.unwrap(), None);

        // A decision goes back once per key, counted on the route.
        let decision = Queued {
            to: "cpp1",
            kind: kind::DECISION_RELAY,
            payload: b"approve",
            key: "decision-a",
        };
        assert!(store.pass(&A, &decision, at(3_000)).await.unwrap());
        assert!(!store.pass(&A, &decision, at(3_100)).await.unwrap());
        assert_eq!(
            queued().await,
            vec![
                ("mpp1".into(), "pn-a".into()),
                ("cpp1".into(), "decision-a".into())
            ]
        );

        let all = store.page(0, 10).await.unwrap();
        assert_eq!(all.len(), 2);
        let (first, second) = (&all[0], &all[1]);
        assert_eq!(first.payment_id, hex(&A));
        assert_eq!((first.messages, first.state.as_str()), (2, "forwarded"));
        assert_eq!((first.created_at, first.updated_at), (1_000, 3_000));
        assert_eq!((second.cpp.as_str(), second.to.as_deref()), ("cpp2", None));
        assert_eq!((second.messages, second.state.as_str()), (1, "late"));
        assert!(first.seq < second.seq);
        let one = store.page(0, 1).await.unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(store.page(one[0].seq, 10).await.unwrap().len(), 1);
        assert!(store.page(second.seq, 10).await.unwrap().is_empty());
        assert_eq!(
            store.count_by_state().await.unwrap(),
            vec![("forwarded".into(), 1), ("late".into(), 1)]
        );
    }

    #[tokio::test]
    async fn the_suite_in_memory() {
        let store = MemoryRoutes::new();
        let read = || async {
            store
                .queued()
                .into_iter()
                .map(|m| (m.to, m.key))
                .collect::<Vec<_>>()
        };
        suite(&store, read).await;
        let queued = store.queued();
        assert_eq!(queued[1].kind, kind::DECISION_RELAY);
        assert_eq!(
            (queued[1].payment, queued[1].payload.as_slice()),
            (A, &b"approve"[..])
        );
    }

    #[tokio::test]
    async fn the_suite_on_sqlite_and_postgres() {
        mpay_sql::testing::for_each_backend(|db| async move {
            db.migrate(&[mpay_sql::MIGRATIONS, crate::dc::MIGRATIONS])
                .await
                .expect("migrated");
            let store = SqlRoutes::new(db.clone());
            let read = || {
                let db = db.clone();
                async move {
                    sqlx::query("SELECT destination, idempotency_key FROM outbox ORDER BY id")
                        .fetch_all(db.pool())
                        .await
                        .expect("the outbox")
                        .iter()
                        .map(|r| {
                            (
                                r.try_get("destination").expect("destination"),
                                r.try_get("idempotency_key").expect("key"),
                            )
                        })
                        .collect::<Vec<(String, String)>>()
                }
            };
            suite(&store, read).await;
        })
        .await;
    }
}
