-- The transactional outbox (DESIGN §3.2): a message is enqueued in the same
-- transaction as the state change it reports, and delivered with retries
-- until the destination acknowledges it.
CREATE TABLE outbox (
    id {serial_pk},
    destination TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload {blob} NOT NULL,
    idempotency_key TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT
);

-- The receiver deduplicates by idempotency key, so one key names one message
-- per destination.
CREATE UNIQUE INDEX outbox_destination_key ON outbox (destination, idempotency_key);

-- What the delivery loop scans: undelivered messages by due time.
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at IS NULL;
