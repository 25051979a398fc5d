-- Idempotency keys (DESIGN §3.2): one row per (scope, key). `begin` inserts
-- the row with the request's hash and no response inside the caller's
-- transaction; `finish` stores the response in the same transaction.
CREATE TABLE idempotency (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash {blob} NOT NULL,
    response {blob},
    created_at BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);

-- For pruning old keys.
CREATE INDEX idempotency_created_at ON idempotency (created_at);
