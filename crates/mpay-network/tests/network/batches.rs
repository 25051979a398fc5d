//! Messages between services travel in batches (DESIGN §3.4): what is due
//! for one receiver goes in one sealed frame, the receiver applies each
//! item as a frame of its own and acknowledges each item's result in one
//! signed ack, and the sender marks delivered exactly the items taken.

use mpay_envelope::ReplayGuard;
use mpay_network::ack::{
    BatchItem, INBOX_BATCH, INBOX_BATCH_ACK, InboxAck, InboxBatch, InboxBatchAck,
};
use mpay_network::wall_clock;
use mpay_semops::{Authority, kind};
use mpay_sql::sqlx::{self, Row};
use mpay_sql::testing::for_each_backend;
use mpay_wire::{Decode, Encode};

use crate::harness::{ALICE_DEPOSIT, Network, Which, hex_id};

/// Bytes written as they are.
struct Raw(Vec<u8>);

impl Encode for Raw {
    fn encode(&self, w: &mut mpay_wire::Writer) {
        w.raw(&self.0);
    }
}

/// Messages undelivered in `service`'s outbox: all of them, and those not
/// yet due again.
async fn undelivered(net: &Network, service: &str) -> (i64, i64) {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n,
                COALESCE(SUM(CASE WHEN next_attempt_at > $1 THEN 1 ELSE 0 END), 0) AS waiting
         FROM outbox WHERE delivered_at IS NULL",
    )
    .bind(i64::try_from(wall_clock().as_millis()).expect("ms"))
    .fetch_one(net.db(service).pool())
    .await
    .expect("outbox");
    (
        row.try_get("n").expect("n"),
        row.try_get("waiting").expect("waiting"),
    )
}

/// Three PNs queued while the DC was down go to it in one batch when the
/// CPP starts again; every payment completes, money is conserved.
#[tokio::test]
async fn messages_queued_for_one_receiver_travel_in_one_batch() {
    for_each_backend(|db| async move {
        let mut net = Network::start(db, 60_000).await;
        net.stop_service("dc-eu").await;
        let mut ids = Vec::new();
        for key in 1..=3u8 {
            ids.push(
                net.pay(Which::Bob, i64::from(key) * 1_00, [40 + key; 16])
                    .await
                    .payment_id,
            );
        }
        // Each PN was tried once and failed; then the CPP stops, the DC
        // comes back, and the CPP starts when all three are due again, so
        // its first delivery run finds them together.
        let until = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let tried: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM outbox WHERE delivered_at IS NULL AND attempts >= 1",
            )
            .fetch_one(net.db("cpp1").pool())
            .await
            .expect("outbox")
            .try_get("n")
            .expect("n");
            if tried == 3 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "the PNs were never tried"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        net.stop_service("cpp1").await;
        net.start_service("dc-eu", None).await;
        loop {
            let (n, waiting) = undelivered(&net, "cpp1").await;
            assert_eq!(n, 3, "the three PNs wait in the CPP's outbox");
            if waiting == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        net.start_service("cpp1", None).await;
        for id in &ids {
            net.notice(Which::Bob, id).await;
            net.decide(Which::Bob, id, true).await;
            assert_eq!(net.final_status(id).await.state, "completed");
        }
        assert!(net.counter("cpp1", "_outbox_batches_total").await >= 1);
        assert!(net.counter("dc-eu", "_inbox_batches_total").await >= 1);
        net.check_conservation().await;
        net.check_books().await;
        assert_eq!(net.balance(0, "cust:alice").await, ALICE_DEPOSIT - 6_00);
        net.shutdown().await;
    })
    .await;
}

/// The receiver's side: each item of a batch has its own result (a
/// refused item holds back no other), the ack is signed by the receiver,
/// sealed to the sender and names the batch frame; the same frame again is
/// a replay.
#[tokio::test]
async fn each_item_of_a_batch_is_answered_on_its_own() {
    for_each_backend(|db| async move {
        let mut net = Network::start(db, 60_000).await;
        let mut items = Vec::new();
        for key in 1..=2u8 {
            let status = net.pay(Which::Bob, 2_00, [50 + key; 16]).await;
            let id = status.payment_id;
            net.notice(Which::Bob, &id).await;
            let decision = net.decision(Which::Bob, &id, true);
            net.bob
                .client
                .decide(&net.bob.token, &decision)
                .await
                .expect("decides");
            assert_eq!(net.final_status(&id).await.state, "completed");
            // The relay the CPP already took, again: a duplicate.
            let relay = net.decision_relay(Which::Bob, Authority::Decision(decision));
            items.push(BatchItem {
                kind: kind::DECISION_RELAY,
                tx_id: hex_id(&id),
                payload: relay.to_wire(),
            });
        }
        // An item that does not decode, and one of a kind a CPP never takes.
        items.insert(
            1,
            BatchItem {
                kind: kind::DECISION_RELAY,
                tx_id: [9; 16],
                payload: vec![1, 2, 3],
            },
        );
        items.push(BatchItem {
            kind: kind::PAYMENT_NOTICE,
            tx_id: [8; 16],
            payload: Vec::new(),
        });
        let frame = net.seal_from_dc_to_cpp(INBOX_BATCH, &InboxBatch { items }, [7; 16]);
        let answer = net.cpp.post_inbox(frame.clone()).await.expect("answered");
        assert_eq!(answer.outcome, "batch");

        let sealed = mpay_identity::hex_bytes(&answer.ack).expect("hex");
        let now = wall_clock();
        let resolved = net.directory.resolve(now).expect("directory");
        let trust = resolved.trust_store();
        let dc_id = resolved.service("dc-eu").expect("dc").id;
        let cpp = resolved.service("cpp1").expect("cpp");
        let ack = mpay_envelope::open(&sealed, &net.keys["dc-eu"], dc_id, &trust, now)
            .expect("sealed to the sender")
            .verify(&cpp.certificate, &trust, &mut ReplayGuard::new(), now)
            .expect("signed by the CPP");
        assert_eq!(ack.header().kind, INBOX_BATCH_ACK);
        let ack = InboxBatchAck::from_wire(ack.payload()).expect("decodes");
        assert_eq!(ack.batch_hash, InboxAck::hash_of(&frame));
        let taken: Vec<bool> = ack.results.iter().map(|r| r.taken).collect();
        assert_eq!(taken, [true, false, true, false], "{:?}", ack.results);
        assert_eq!(ack.results[0].outcome, "duplicate");
        assert_eq!(ack.results[2].outcome, "duplicate");
        assert!(
            ack.results[1].outcome.starts_with("refused"),
            "{:?}",
            ack.results[1]
        );
        assert!(
            ack.results[3].outcome.starts_with("refused"),
            "{:?}",
            ack.results[3]
        );

        let replay = net.cpp.post_inbox(frame).await.expect_err("a replay");
        assert_eq!(replay.code(), Some("replay"));
        // A batch inside a batch is refused whole.
        let nested = {
            let mut w = mpay_wire::Writer::new();
            w.u8(1).u16(1).u16(INBOX_BATCH.0).raw(&[1; 16]).bytes32(&[]);
            w.into_bytes()
        };
        let frame = net.seal_from_dc_to_cpp(INBOX_BATCH, &Raw(nested), [6; 16]);
        let refused = net.cpp.post_inbox(frame).await.expect_err("refused");
        assert_eq!(refused.code(), Some("refused"));

        net.check_conservation().await;
        net.check_books().await;
        assert_eq!(net.balance(0, "cust:alice").await, ALICE_DEPOSIT - 4_00);
        net.shutdown().await;
    })
    .await;
}

/// A merchant's decisions in one request: each is checked and applied on
/// its own (one transaction at the MPP), a refused one holds back no other,
/// a repeat of the decision taken is taken again, and a batch over the
/// limit is refused whole.
#[tokio::test]
async fn a_merchants_decisions_travel_in_one_request() {
    for_each_backend(|db| async move {
        let mut net = Network::start(db, 60_000).await;
        let mut ids = Vec::new();
        for key in 1..=3u8 {
            let status = net.pay(Which::Bob, 1_00, [60 + key; 16]).await;
            net.notice(Which::Bob, &status.payment_id).await;
            ids.push(status.payment_id);
        }
        let approve_first = net.decision(Which::Bob, &ids[0], true);
        let batch = [
            approve_first.clone(),
            net.decision(Which::Bob, &ids[1], false),
            // The other answer on the same payment, in the same batch.
            net.decision(Which::Bob, &ids[1], true),
            net.decision(Which::Bob, &"00".repeat(16), true),
            // The first decision again, signed afresh: a repeat.
            net.decision(Which::Bob, &ids[0], true),
        ];
        let results = net
            .bob
            .client
            .decide_batch(&net.bob.token, &batch)
            .await
            .expect("the batch is answered");
        let summary: Vec<(Option<&str>, Option<&str>)> = results
            .iter()
            .map(|r| {
                (
                    r.state.as_deref(),
                    r.error.as_ref().map(|e| e.error.as_str()),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (Some("approved"), None),
                (Some("rejected"), None),
                (None, Some("already_decided")),
                (None, Some("not_found")),
                (Some("approved"), None),
            ]
        );
        assert_eq!(results[0].payment_id.as_deref(), Some(ids[0].as_str()));
        assert_eq!(results[3].payment_id, None);
        assert_eq!(net.final_status(&ids[0]).await.state, "completed");
        assert_eq!(net.final_status(&ids[1]).await.state, "rejected");

        // Over the limit: refused whole, nothing decided.
        let third = net.decision(Which::Bob, &ids[2], true);
        let many = vec![third; mpay_network::client::DECISIONS_BATCH_MAX + 1];
        let error = net
            .bob
            .client
            .decide_batch(&net.bob.token, &many)
            .await
            .expect_err("too many");
        assert_eq!(error.code(), Some("invalid"), "{error}");
        net.decide(Which::Bob, &ids[2], true).await;
        assert_eq!(net.final_status(&ids[2]).await.state, "completed");
        // The MPP counts the decisions it took and the requests they came in.
        assert_eq!(net.counter("mpp1", "_mpp_decisions_total").await, 4);
        assert_eq!(net.counter("mpp1", "_mpp_decision_requests_total").await, 2);

        net.check_conservation().await;
        net.check_books().await;
        assert_eq!(net.balance(0, "cust:alice").await, ALICE_DEPOSIT - 2_00);
        net.shutdown().await;
    })
    .await;
}
