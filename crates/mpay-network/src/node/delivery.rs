//! The outbox side of a service: [`Node::enqueue`] in the transaction of
//! a change, and the delivery loop that seals what is due for each
//! receiver (one [`InboxBatch`] frame for several messages), sends it and
//! marks delivered exactly what the receiver's signed ack says it took.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use mpay_envelope::MessageKind;
use mpay_identity::Timestamp;
use mpay_sql::Tx;
use mpay_sql::outbox::{self, MessageId, OutboxMessage};
use mpay_sql::sqlx;
use mpay_wire::Decode;
use tokio::task::{JoinHandle, JoinSet};

use super::{DELIVERY_BATCH_MAX, INBOX_ANSWER_LEN_MAX, Node, Raw};
use crate::ack::{
    BatchItem, INBOX_ACK, INBOX_BATCH, INBOX_BATCH_ACK, INBOX_BATCH_ITEMS_MAX,
    INBOX_BATCH_PAYLOAD_BUDGET, InboxAck, InboxBatch, InboxBatchAck, ItemResult,
};
use crate::api::{NetError, ms, wall_clock};
use crate::directory::ResolvedService;

/// What sending one message came to: delivered, or why not.
type Sent = Result<(), String>;

impl Node {
    /// Puts a message for `destination` in the outbox, in the caller's
    /// transaction, unless one with this key is there already (a repeat).
    /// `tx_id` becomes the envelope's transaction id (the payment id).
    #[allow(clippy::too_many_arguments)]
    pub async fn enqueue(
        tx: &mut Tx<'_>,
        destination: &str,
        kind: MessageKind,
        tx_id: [u8; 16],
        payload: &[u8],
        key: &str,
        now: Timestamp,
    ) -> Result<bool, NetError> {
        let exists =
            sqlx::query("SELECT id FROM outbox WHERE destination = $1 AND idempotency_key = $2")
                .bind(destination)
                .bind(key)
                .fetch_optional(&mut **tx)
                .await?;
        if exists.is_some() {
            return Ok(false);
        }
        let mut body = Vec::with_capacity(16 + payload.len());
        body.extend_from_slice(&tx_id);
        body.extend_from_slice(payload);
        let kind = format!("{:04x}", kind.0);
        outbox::enqueue(
            tx,
            &outbox::NewMessage {
                destination,
                kind: &kind,
                payload: &body,
                idempotency_key: key,
            },
            ms(now),
        )
        .await?;
        Ok(true)
    }

    /// One delivery run: claims what is due and sends it all at once,
    /// each destination's messages in batches. Returns how many messages
    /// were claimed.
    pub async fn deliver_due(self: &Arc<Self>) -> Result<usize, NetError> {
        let now = wall_clock();
        let lease = self.config.timing.claim_lease_ms();
        let due = outbox::due(&self.db, ms(now), DELIVERY_BATCH_MAX, lease).await?;
        let claimed = due.len();
        let mut by_destination: BTreeMap<String, Vec<(OutboxMessage, BatchItem)>> = BTreeMap::new();
        let mut unsendable = Vec::new();
        for message in due {
            match batch_item(&message) {
                Ok(item) => by_destination
                    .entry(message.destination.clone())
                    .or_default()
                    .push((message, item)),
                Err(error) => unsendable.push((message, Err(error))),
            }
        }
        let mut delivered = self.settle(unsendable).await;
        let mut sends = JoinSet::new();
        for (name, messages) in by_destination {
            for batch in batches(messages) {
                let node = Arc::clone(self);
                let name = name.clone();
                sends.spawn(async move {
                    let (messages, items): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                    let results = node.deliver(&name, items).await;
                    node.settle(messages.into_iter().zip(results).collect())
                        .await
                });
            }
        }
        // The run's deliveries are marked together, in one transaction. A
        // crash before it only sends them again once their claim lapses,
        // and receivers answer a repeat as a duplicate.
        while let Some(done) = sends.join_next().await {
            match done {
                Ok(ids) => delivered.extend(ids),
                Err(error) => tracing::error!(%error, "delivery task failed"),
            }
        }
        if let Err(error) = outbox::mark_delivered_all(&self.db, &delivered, ms(wall_clock())).await
        {
            tracing::error!(%error, "outbox bookkeeping failed");
        }
        Ok(claimed)
    }

    /// Sends `items` (all for service `name`): one in a frame of its own,
    /// several in one [`InboxBatch`]. Each item's result, in order.
    async fn deliver(&self, name: &str, items: Vec<BatchItem>) -> Vec<Sent> {
        let count = items.len();
        let sent = async {
            let destination = self
                .directory
                .service(name)
                .ok_or_else(|| format!("`{name}` is not in the directory"))?;
            let now = wall_clock();
            if let [item] = items.as_slice() {
                self.send(destination, item, now).await?;
                return Ok(vec![Ok(())]);
            }
            let results = self.send_batch(destination, items, now).await?;
            Ok(results
                .into_iter()
                .map(|r| match r.taken {
                    true => Ok(()),
                    false => Err(format!("refused in its batch: {}", r.outcome)),
                })
                .collect())
        };
        sent.await
            .unwrap_or_else(|error: String| vec![Err(error); count])
    }

    /// Seals and sends one message; `Ok` only on a 2xx answer that carries
    /// the receiver's signed acknowledgement of this very frame.
    async fn send(&self, destination: &ResolvedService, item: &BatchItem, now: Timestamp) -> Sent {
        let frame = self.seal_to(destination, item.kind, &Raw(&item.payload), item.tx_id, now)?;
        let answer = self.post_frame(destination, frame.clone()).await?;
        let payload = self.open_answer(destination, &answer, INBOX_ACK, wall_clock())?;
        let ack = InboxAck::from_wire(&payload).map_err(|e| format!("ack: {e}"))?;
        if ack.frame_hash != InboxAck::hash_of(&frame) {
            return Err("the ack names another frame".into());
        }
        Ok(())
    }

    /// Seals `items` into one [`InboxBatch`] frame and sends it; the
    /// receiver's result of each item, in order, from its signed ack of
    /// this very frame.
    async fn send_batch(
        &self,
        destination: &ResolvedService,
        items: Vec<BatchItem>,
        now: Timestamp,
    ) -> Result<Vec<ItemResult>, String> {
        let count = items.len();
        let frame = self.seal_to(
            destination,
            INBOX_BATCH,
            &InboxBatch { items },
            self.random16(),
            now,
        )?;
        self.metrics.outbox_batches.fetch_add(1, Relaxed);
        let answer = self.post_frame(destination, frame.clone()).await?;
        let payload = self.open_answer(destination, &answer, INBOX_BATCH_ACK, wall_clock())?;
        let ack = InboxBatchAck::from_wire(&payload).map_err(|e| format!("ack: {e}"))?;
        if ack.batch_hash != InboxAck::hash_of(&frame) {
            return Err("the ack names another frame".into());
        }
        if ack.results.len() != count {
            return Err(format!(
                "the ack has {} results for {count} items",
                ack.results.len()
            ));
        }
        Ok(ack.results)
    }

    /// POSTs `frame` to `destination`'s inbox; its answer, if 2xx.
    async fn post_frame(
        &self,
        destination: &ResolvedService,
        frame: Vec<u8>,
    ) -> Result<crate::client::InboxAnswer, String> {
        self.metrics.outbox_frames.fetch_add(1, Relaxed);
        let response = self
            .http
            .post(format!("{}/v1/inbox", destination.url))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(frame)
            .send()
            .await
            .map_err(|e| format!("unreachable: {e}"))?;
        let status = response.status();
        if status.is_success() {
            let mut response = response;
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| format!("{status}, answer cut: {e}"))?
            {
                if body.len() + chunk.len() > INBOX_ANSWER_LEN_MAX {
                    return Err(format!(
                        "{status} with an answer over {INBOX_ANSWER_LEN_MAX} bytes"
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            serde_json::from_slice(&body)
                .map_err(|e| format!("{status} without an inbox answer: {e}"))
        } else {
            let text = response.text().await.unwrap_or_default();
            Err(format!("{status}: {text}"))
        }
    }

    /// The payload of the acknowledgement `answer` carries: a frame of
    /// kind `kind` from `destination`, sealed to this service, signed, fresh
    /// and new.
    fn open_answer(
        &self,
        destination: &ResolvedService,
        answer: &crate::client::InboxAnswer,
        kind: MessageKind,
        now: Timestamp,
    ) -> Result<Vec<u8>, String> {
        let sealed = mpay_identity::hex_bytes(&answer.ack)
            .filter(|b| !b.is_empty())
            .ok_or("the answer carries no signed acknowledgement")?;
        let header = mpay_envelope::peek_header(&sealed).map_err(|e| format!("ack: {e}"))?;
        if header.kind != kind || header.sender != destination.id {
            return Err(format!(
                "the ack is not a {:#06x} from {}",
                kind.0, destination.name
            ));
        }
        let unverified = mpay_envelope::open(&sealed, &self.keys, self.me.id, &self.trust, now)
            .map_err(|e| format!("ack: {e}"))?;
        let verified = self
            .with_replay(|guard| {
                unverified.verify(&destination.certificate, &self.trust, guard, now)
            })
            .map_err(|e| format!("ack: {e}"))?;
        Ok(verified.into_payload())
    }

    /// Counts and logs what sending each message came to, marks the failed
    /// ones for a retry, and returns the ids of those delivered.
    async fn settle(&self, sent: Vec<(OutboxMessage, Sent)>) -> Vec<MessageId> {
        let mut delivered = Vec::with_capacity(sent.len());
        for (message, result) in sent {
            match result {
                Ok(()) => {
                    self.metrics.outbox_delivered.fetch_add(1, Relaxed);
                    delivered.push(message.id);
                }
                Err(error) => {
                    self.metrics.outbox_failures.fetch_add(1, Relaxed);
                    tracing::warn!(
                        service = self.me.name,
                        destination = message.destination,
                        key = message.idempotency_key,
                        attempts = message.attempts,
                        %error,
                        "delivery failed; will retry"
                    );
                    if let Err(error) =
                        outbox::mark_failed(&self.db, message.id, ms(wall_clock())).await
                    {
                        tracing::error!(%error, "outbox bookkeeping failed");
                    }
                }
            }
        }
        delivered
    }

    /// The delivery loop: runs at every kick and every
    /// `delivery_interval_ms`, and again at once while batches come full.
    pub fn spawn_delivery(self: &Arc<Self>) -> JoinHandle<()> {
        let node = Arc::clone(self);
        tokio::spawn(async move {
            let pause = Duration::from_millis(node.config.timing.delivery_interval_ms);
            loop {
                let kicked = node.kick.notified();
                tokio::pin!(kicked);
                kicked.as_mut().enable();
                match node.deliver_due().await {
                    Ok(claimed) if claimed >= DELIVERY_BATCH_MAX as usize => continue,
                    Ok(_) => {}
                    Err(error) => tracing::error!(%error, "delivery run failed"),
                }
                tokio::select! {
                    _ = &mut kicked => {}
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        })
    }
}

/// An outbox message as a batch item: its kind and transaction id parsed
/// back from how [`Node::enqueue`] stored them.
fn batch_item(message: &OutboxMessage) -> Result<BatchItem, String> {
    let kind = u16::from_str_radix(&message.kind, 16)
        .map(MessageKind)
        .map_err(|_| format!("outbox kind `{}`", message.kind))?;
    if message.payload.len() < 16 {
        return Err("outbox payload shorter than its transaction id".into());
    }
    let (tx_id, payload) = message.payload.split_at(16);
    let mut tx = [0u8; 16];
    tx.copy_from_slice(tx_id);
    Ok(BatchItem {
        kind,
        tx_id: tx,
        payload: payload.to_vec(),
    })
}

/// `messages` (all for one destination) cut into batches of at most
/// [`INBOX_BATCH_ITEMS_MAX`] items and [`INBOX_BATCH_PAYLOAD_BUDGET`]
/// payload bytes; a message over the budget goes alone.
fn batches(messages: Vec<(OutboxMessage, BatchItem)>) -> Vec<Vec<(OutboxMessage, BatchItem)>> {
    let mut batches: Vec<Vec<(OutboxMessage, BatchItem)>> = Vec::new();
    let mut bytes = 0usize;
    for message in messages {
        let len = message.1.payload.len();
        match batches.last_mut() {
            Some(batch)
                if batch.len() < INBOX_BATCH_ITEMS_MAX
                    && bytes.saturating_add(len) <= INBOX_BATCH_PAYLOAD_BUDGET =>
            {
                bytes += len;
                batch.push(message);
            }
            _ => {
                bytes = len;
                batches.push(vec![message]);
            }
        }
    }
    batches
}
