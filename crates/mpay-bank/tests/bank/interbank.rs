//! Two banks, two databases (of the backend under test), two axum servers on
//! ephemeral loopback ports, real HTTP: interbank transfers arrive exactly
//! once, come back when the account is unknown, and forged frames change
//! nothing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mpay_bank::bank::DeliveryReport;
use mpay_bank::http::wall_clock;
use mpay_bank::interbank::{AckOutcome, InterbankMessage, TransferReason, kind};
use mpay_bank::service::interbank_http;
use mpay_bank::{
    AccountId, Bank, BankClient, BankIdentity, ClientError, Destination, HoldState, InterbankId,
    InterbankTransfer, NotificationKind, PeerBank, PlaceHold, PostHold, deliver_due,
    spawn_background,
};
use mpay_envelope::{ENVELOPE_VERSION, Header};
use mpay_identity::{SecretKeys, Timestamp};
use mpay_sql::testing::{self, TestDb, for_each_backend};
use mpay_sql::{Backend, Db, outbox};
use mpay_wire::{Decode, Encode};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::{
    ALICE_TOKEN, CPP_TOKEN, OPERATOR_TOKEN, SHOP_TOKEN, Scheme, balance, deposit, eur, id,
    open_accounts,
};

/// Longest a test waits for background delivery.
const BACKGROUND_WAIT_MS_MAX: u64 = 15_000;

/// A fresh database of the same backend as `first`.
async fn second_db(first: &Db) -> TestDb {
    match first.backend() {
        Backend::Sqlite => testing::sqlite().await.expect("sqlite"),
        Backend::Postgres => testing::postgres().await.expect("postgres"),
    }
}

async fn serve(bank: Arc<Bank>, listener: TcpListener) -> JoinHandle<()> {
    tokio::spawn(async move {
        let _ = mpay_bank::service::serve(bank, listener).await;
    })
}

/// Bank A (serving) and bank B (served only once `start_b` is called), each
/// the other's peer. Alice banks at A with 100.00; the shop at B.
struct Pair {
    a: Arc<Bank>,
    b: Arc<Bank>,
    a_url: String,
    b_url: String,
    b_addr: SocketAddr,
    servers: Vec<JoinHandle<()>>,
    db_b: Option<TestDb>,
    /// An identity under the same root that neither bank knows as a peer.
    stranger: BankIdentity,
    /// B's keys, to forge what only a misbehaving B could send.
    b_keys: SecretKeys,
}

impl Pair {
    async fn new(db_a: Db, delivery_interval_ms: u64) -> Pair {
        let now = wall_clock();
        let db_b = second_db(&db_a).await;
        let mut scheme = Scheme::new(7, now);
        let identity_a = scheme.bank(now);
        let identity_b = scheme.bank(now);
        let b_keys =
            SecretKeys::from_secret_bytes(&identity_b.keys().to_secret_bytes()).expect("keys");
        let stranger = scheme.bank(now);
        let listener_a = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let a_addr = listener_a.local_addr().expect("addr");
        // B's port is reserved and released: B is down until `start_b`.
        let b_addr = {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            listener.local_addr().expect("addr")
        };
        let a_url = format!("http://{a_addr}");
        let b_url = format!("http://{b_addr}");
        let peer_a =
            PeerBank::new(identity_a.id(), &a_url, identity_a.certificate().clone()).expect("peer");
        let peer_b =
            PeerBank::new(identity_b.id(), &b_url, identity_b.certificate().clone()).expect("peer");
        let mut config_a = scheme.config(vec![peer_b]);
        config_a.delivery_interval_ms = delivery_interval_ms;
        let mut config_b = scheme.config(vec![peer_a]);
        config_b.delivery_interval_ms = delivery_interval_ms;
        let a = Arc::new(
            Bank::open(db_a, config_a, Some(identity_a), [1; 32], now)
                .await
                .expect("bank A opens"),
        );
        let b = Arc::new(
            Bank::open(db_b.db().clone(), config_b, Some(identity_b), [2; 32], now)
                .await
                .expect("bank B opens"),
        );
        open_accounts(&a, &["cust:alice", "cpp:cpp1"], now).await;
        open_accounts(&b, &["shop:bob"], now).await;
        deposit(&a, "cust:alice", 10_000, "dep-a", now).await;
        let servers = vec![serve(Arc::clone(&a), listener_a).await];
        Pair {
            a,
            b,
            a_url,
            b_url,
            b_addr,
            servers,
            db_b: Some(db_b),
            stranger,
            b_keys,
        }
    }

    async fn start_b(&mut self) {
        let listener = TcpListener::bind(self.b_addr)
            .await
            .expect("rebind B's port");
        self.servers
            .push(serve(Arc::clone(&self.b), listener).await);
    }

    fn client_a(&self, token: &str) -> BankClient {
        crate::loopback_client(&self.a_url).with_token(token)
    }

    fn client_b(&self, token: &str) -> BankClient {
        crate::loopback_client(&self.b_url).with_token(token)
    }

    /// Σ over both banks of every holder account and `external` is zero
    /// (all that was deposited is in holder accounts), the settlement
    /// accounts mirror each other, and each bank's books balance.
    async fn check_conservation(&self) {
        let mut total = 0i64;
        let mut settlement = 0i64;
        for bank in [&self.a, &self.b] {
            bank.check_books().await.expect("books balance");
            for (account, amount) in bank.balances().await.expect("balances") {
                match account.kind() {
                    mpay_bank::ledger::AccountKind::Settlement(_) => {
                        settlement += amount.minor_units();
                    }
                    _ => total += amount.minor_units(),
                }
            }
        }
        assert_eq!(total, 0, "holder accounts + external over both banks");
        assert_eq!(settlement, 0, "settlement accounts mirror each other");
        assert_eq!(
            balance(&self.a, "cust:alice").await
                + balance(&self.a, "cpp:cpp1").await
                + balance(&self.b, "shop:bob").await,
            10_000,
            "what was deposited"
        );
    }

    async fn finish(mut self) {
        for server in &self.servers {
            server.abort();
        }
        if let Some(db) = self.db_b.take() {
            drop(self.a);
            drop(self.b);
            db.cleanup().await;
        }
    }
}

fn pay_bob(pair: &Pair, cents: i64, to: &str) -> InterbankTransfer {
    InterbankTransfer {
        from: id("cust:alice"),
        bank: pair.b.id(),
        to: id(to),
        amount: eur(cents),
        reference: "order-1".into(),
    }
}

fn after(now: Timestamp, ms: u64) -> Timestamp {
    now.saturating_add_ms(ms)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_arrives_once_though_the_receiver_starts_late() {
    for_each_backend(|db| async move {
        let mut pair = Pair::new(db, 60_000).await;
        let http = interbank_http(&pair.a).expect("client");
        // Refused for want of funds: the key keeps that answer, even once
        // the money is there (DESIGN §3.2).
        let code = |r: Result<_, mpay_bank::ClientError>| {
            r.err().and_then(|e| e.code().map(str::to_owned))
        };
        let alice = pair.client_a(ALICE_TOKEN);
        let too_much = pay_bob(&pair, 10_001, "shop:bob");
        let first = alice.interbank_transfer("ib-0", &too_much).await;
        assert_eq!(code(first).as_deref(), Some("insufficient_funds"));
        let now = wall_clock();
        deposit(&pair.a, "cust:alice", 1, "dep-a2", now).await;
        let again = alice.interbank_transfer("ib-0", &too_much).await;
        assert_eq!(code(again).as_deref(), Some("insufficient_funds"));
        assert_eq!(
            balance(&pair.a, &AccountId::settlement(pair.b.id()).to_string()).await,
            0
        );
        // The extra cent goes to an account the checks below do not count.
        open_accounts(&pair.a, &["cust:carol"], now).await;
        let cent = mpay_bank::Transfer {
            from: id("cust:alice"),
            to: id("cust:carol"),
            amount: eur(1),
            reference: "t".into(),
        };
        alice.transfer("cent", &cent).await.expect("transfer");
        let receipt = pair
            .client_a(ALICE_TOKEN)
            .interbank_transfer("ib-1", &pay_bob(&pair, 3_000, "shop:bob"))
            .await
            .expect("interbank transfer");
        assert_eq!(receipt.from_balance_after, eur(7_000));
        assert_eq!(
            balance(&pair.a, &AccountId::settlement(pair.b.id()).to_string()).await,
            3_000
        );

        // B is down: the attempt fails and is scheduled again.
        let now = wall_clock();
        assert_eq!(
            deliver_due(&pair.a, &http, now).await.expect("run"),
            DeliveryReport {
                delivered: 0,
                failed: 1
            }
        );
        assert_eq!(balance(&pair.b, "shop:bob").await, 0);
        pair.start_b().await;
        // Not due again before the outbox's backoff ...
        assert_eq!(
            deliver_due(&pair.a, &http, now).await.expect("run"),
            DeliveryReport::default()
        );
        // ... and delivered once it is.
        let retry_at = after(now, u64::try_from(outbox::RETRY_FIRST_MS).expect("ms"));
        assert_eq!(
            deliver_due(&pair.a, &http, retry_at).await.expect("run"),
            DeliveryReport {
                delivered: 1,
                failed: 0
            }
        );
        assert_eq!(
            deliver_due(&pair.a, &http, after(retry_at, 3_600_000))
                .await
                .expect("run"),
            DeliveryReport::default(),
            "nothing left to deliver"
        );
        let bob = pair
            .client_b(SHOP_TOKEN)
            .account(&id("shop:bob"))
            .await
            .expect("bob's account");
        assert_eq!(bob.funds.balance, eur(3_000));
        assert_eq!(
            balance(&pair.b, &AccountId::settlement(pair.a.id()).to_string()).await,
            -3_000
        );
        let sent = pair
            .a
            .sent_transfer(receipt.message)
            .await
            .expect("read")
            .expect("recorded");
        assert_eq!(sent.outcome, Some(AckOutcome::Credited));
        let heard = pair
            .client_b(SHOP_TOKEN)
            .notifications(&id("shop:bob"), 0, 10)
            .await
            .expect("notifications");
        assert_eq!(heard.len(), 1);
        assert_eq!(heard[0].kind, NotificationKind::Credited);
        assert_eq!(
            pair.b
                .metrics
                .interbank_received
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        // The operator's view over HTTP: balanced books, every balance, and
        // nothing left in the outbox; a holder may not read it.
        let books = pair
            .client_b(crate::OPERATOR_TOKEN)
            .books()
            .await
            .expect("books");
        assert!(books.balanced, "{:?}", books.problem);
        assert_eq!(
            books.balances.get("shop:bob").map(String::as_str),
            Some("30.00 EUR")
        );
        assert_eq!((books.holds_pending, books.outbox_pending), (0, 0));
        let refused = pair.client_b(SHOP_TOKEN).books().await;
        assert_eq!(
            refused
                .err()
                .and_then(|e| e.code().map(str::to_owned))
                .as_deref(),
            Some("forbidden")
        );
        pair.check_conservation().await;
        pair.finish().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_are_acknowledged_and_forgeries_refused_without_effect() {
    for_each_backend(|db| async move {
        let mut pair = Pair::new(db, 60_000).await;
        pair.start_b().await;
        pair.a
            .interbank_transfer(&crate::alice(), "ib-1", &pay_bob(&pair, 2_500, "shop:bob"), wall_clock())
            .await
            .expect("interbank transfer");
        let now = wall_clock();
        let due = outbox::due(
            pair.a.db(),
            i64::try_from(now.as_millis()).expect("ms"),
            10,
            outbox::claim_lease_ms(5_000),
        )
            .await
            .expect("due");
        assert_eq!(due.len(), 1);
        let message = &due[0];
        let to_b = crate::loopback_client(&pair.b_url);
        let b_before = pair.b.balances().await.expect("balances");

        // Forgeries: a flipped byte, a seal to the wrong key, a signature by
        // a bank that is not A, a stranger that is nobody's peer.
        let genuine = pair.a.seal_outgoing(message, now).expect("seal").frame;
        let mut flipped = genuine.clone();
        if let Some(last) = flipped.last_mut() {
            *last ^= 0x01;
        }
        let payload = message.payload.clone();
        let transfer = InterbankMessage::from_wire(&payload).expect("payload");
        let mut rng = ChaCha20Rng::seed_from_u64(99);
        let header = |sender| Header {
            version: ENVELOPE_VERSION,
            suite: pair.stranger.keys().suite(),
            kind: kind::INTERBANK_TRANSFER,
            sender,
            receiver: pair.b.id(),
            tx_id: transfer.id.0,
            nonce: 42,
            sent_at: now,
        };
        let sealed_to_stranger = mpay_envelope::seal(
            pair.stranger.keys(),
            &header(pair.a.id()),
            &payload,
            pair.stranger.certificate().keys(),
            &mut rng,
        )
        .expect("seal");
        let signed_by_stranger = mpay_envelope::seal(
            pair.stranger.keys(),
            &header(pair.a.id()),
            &payload,
            pair.b.certificate().keys(),
            &mut rng,
        )
        .expect("seal");
        let from_stranger = mpay_envelope::seal(
            pair.stranger.keys(),
            &header(pair.stranger.id()),
            &payload,
            pair.b.certificate().keys(),
            &mut rng,
        )
        .expect("seal");
        for (what, frame) in [
            ("flipped byte", flipped),
            ("sealed to another key", sealed_to_stranger),
            ("signed by another bank", signed_by_stranger),
            ("from a stranger", from_stranger),
            ("garbage", b"not a frame".to_vec()),
        ] {
            let refused = to_b.post_interbank(frame).await;
            assert!(
                matches!(&refused, Err(ClientError::Refused { status, .. }) if (400..500).contains(status)),
                "{what}: {refused:?}"
            );
        }
        assert_eq!(pair.b.balances().await.expect("balances"), b_before);
        assert!(
            pair.b
                .notifications(&crate::operator(), &id("shop:bob"), 0, 10)
                .await
                .expect("notifications")
                .is_empty()
        );

        // The genuine frame, then the same message in a fresh frame (a
        // retry after a lost acknowledgement): both acknowledged, applied once.
        let first_ack = to_b.post_interbank(genuine.clone()).await.expect("delivered");
        let second = pair.a.seal_outgoing(message, now).expect("seal").frame;
        let second_ack = to_b.post_interbank(second).await.expect("re-delivered");
        assert_eq!(
            pair.a.accept_ack(message, &first_ack, now).await.expect("ack"),
            AckOutcome::Credited
        );
        assert_eq!(
            pair.a.accept_ack(message, &second_ack, now).await.expect("ack"),
            AckOutcome::Credited
        );
        // The very same frame again is a replay.
        assert!(matches!(
            to_b.post_interbank(genuine).await,
            Err(ClientError::Refused { status: 400, .. })
        ));
        // An acknowledgement is accepted only once, and only from B.
        assert!(pair.a.accept_ack(message, &first_ack, now).await.is_err());
        assert_eq!(balance(&pair.b, "shop:bob").await, 2_500);
        assert_eq!(
            pair.b
                .notifications(&crate::operator(), &id("shop:bob"), 0, 10)
                .await
                .expect("notifications")
                .len(),
            1
        );
        assert_eq!(
            deliver_due(&pair.a, &interbank_http(&pair.a).expect("client"), after(now, 3_600_000))
                .await
                .expect("run"),
            DeliveryReport::default(),
            "delivered: nothing due"
        );

        // Even a genuine peer cannot "return" money it was never sent.
        let bogus = InterbankMessage {
            id: InterbankId([9; 16]),
            from_account: id("shop:bob"),
            to_account: id("cust:alice"),
            amount: eur(1_000),
            reference: "free money".into(),
            reason: TransferReason::Returned,
            returns: Some(InterbankId([8; 16])),
        };
        let forged_return = mpay_envelope::seal(
            &pair.b_keys,
            &Header {
                sender: pair.b.id(),
                receiver: pair.a.id(),
                tx_id: bogus.id.0,
                ..header(pair.b.id())
            },
            &bogus.to_wire(),
            pair.a.certificate().keys(),
            &mut rng,
        )
        .expect("seal");
        assert!(matches!(
            crate::loopback_client(&pair.a_url).post_interbank(forged_return).await,
            Err(ClientError::Refused { status: 400, .. })
        ));
        assert_eq!(balance(&pair.a, "cust:alice").await, 7_500);
        pair.check_conservation().await;
        pair.finish().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_to_an_unknown_account_comes_back() {
    for_each_backend(|db| async move {
        let mut pair = Pair::new(db, 60_000).await;
        pair.start_b().await;
        let http = interbank_http(&pair.a).expect("client");
        let receipt = pair
            .a
            .interbank_transfer(
                &crate::alice(),
                "ib-1",
                &pay_bob(&pair, 2_500, "shop:nobody"),
                wall_clock(),
            )
            .await
            .expect("interbank transfer");
        let now = wall_clock();
        assert_eq!(
            deliver_due(&pair.a, &http, now)
                .await
                .expect("run")
                .delivered,
            1
        );
        let sent = pair
            .a
            .sent_transfer(receipt.message)
            .await
            .expect("read")
            .expect("sent");
        assert_eq!(sent.outcome, Some(AckOutcome::Returned));
        assert_eq!(balance(&pair.a, "cust:alice").await, 7_500, "not back yet");
        // B booked nothing, and sends the money back.
        assert_eq!(
            balance(&pair.b, &AccountId::settlement(pair.a.id()).to_string()).await,
            0
        );
        assert_eq!(
            deliver_due(
                &pair.b,
                &interbank_http(&pair.b).expect("client"),
                wall_clock()
            )
            .await
            .expect("run")
            .delivered,
            1
        );
        assert_eq!(balance(&pair.a, "cust:alice").await, 10_000);
        assert_eq!(
            balance(&pair.a, &AccountId::settlement(pair.b.id()).to_string()).await,
            0
        );
        let heard: Vec<_> = pair
            .client_a(ALICE_TOKEN)
            .notifications(&id("cust:alice"), 0, 10)
            .await
            .expect("notifications")
            .into_iter()
            .map(|n| (n.kind, n.amount))
            .collect();
        assert_eq!(
            heard,
            vec![
                (NotificationKind::Credited, eur(10_000)),
                (NotificationKind::Debited, eur(2_500)),
                (NotificationKind::Credited, eur(2_500)),
            ]
        );
        pair.check_conservation().await;
        pair.finish().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpp_posts_a_hold_to_another_bank_and_the_service_delivers_it() {
    for_each_backend(|db| async move {
        let mut pair = Pair::new(db, 50).await;
        pair.start_b().await;
        let _background_a = spawn_background(Arc::clone(&pair.a)).expect("client");
        let _background_b = spawn_background(Arc::clone(&pair.b)).expect("client");
        let cpp = pair.client_a(CPP_TOKEN);
        let now = wall_clock();
        let hold = cpp
            .place_hold(
                "pay-7-hold",
                &PlaceHold {
                    account: id("cust:alice"),
                    amount: eur(4_000),
                    expires_at: after(now, 600_000),
                    reference: "payment 7".into(),
                },
            )
            .await
            .expect("hold");
        let post = PostHold {
            hold: hold.id,
            destination: Destination::Interbank {
                bank: pair.b.id(),
                account: id("shop:bob"),
            },
        };
        let posted = cpp.post_hold("pay-7-post", &post).await.expect("post");
        assert_eq!(posted.state, HoldState::Posted);
        assert!(posted.message.is_some());
        assert_eq!(
            cpp.post_hold("pay-7-post", &post).await.expect("repeat"),
            posted
        );
        // The customer cannot end the CPP's hold.
        assert_eq!(
            pair.client_a(ALICE_TOKEN)
                .void_hold("x", &mpay_bank::VoidHold { hold: hold.id })
                .await
                .err()
                .and_then(|e| e.code().map(str::to_owned)),
            Some("forbidden".to_owned())
        );
        let shop = pair.client_b(SHOP_TOKEN);
        let waited_from = std::time::Instant::now();
        loop {
            let bob = shop.account(&id("shop:bob")).await.expect("bob");
            if bob.funds.balance == eur(4_000) {
                break;
            }
            assert!(
                waited_from.elapsed() < Duration::from_millis(BACKGROUND_WAIT_MS_MAX),
                "the transfer did not arrive"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The operational endpoints answer.
        let http = crate::raw_http();
        let metrics = http
            .get(format!("{}/metrics", pair.b_url))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        assert!(
            metrics.contains("mpay_bank_interbank_received_total 1"),
            "{metrics}"
        );
        let openapi: serde_json::Value = http
            .get(format!("{}/openapi.json", pair.a_url))
            .send()
            .await
            .expect("openapi")
            .json()
            .await
            .expect("json");
        assert!(openapi["paths"]["/v1/holds/{id}/post"].is_object());
        pair.client_a(OPERATOR_TOKEN)
            .health()
            .await
            .expect("health");
        assert_eq!(
            pair.client_a("not-a-token-at-all-0000")
                .account(&id("cust:alice"))
                .await
                .err()
                .and_then(|e| e.code().map(str::to_owned)),
            Some("unauthenticated".to_owned())
        );
        pair.check_conservation().await;
        pair.finish().await;
    })
    .await;
}
