-- Micropayment aggregation at the CPP (DESIGN §3.3). Money is BIGINT minor
-- units; times are BIGINT ms since the Unix epoch; customers are {blob}
-- party ids. Tables carry a `micro_` prefix so that they sit beside the
-- CPP's own tables in one database.

-- The append-only log: every change to a pending total is one row, never
-- updated or deleted. `kind`: 'deferred' (DT-confirmed), 'trigger' (reached
-- θ, its batch is in flight), 'started' (a batch began; amount = its
-- total), 'settled' / 'failed' (a batch ended), 'rejected' (a trigger whose
-- transfer failed). Replaying it gives every pending total (`check_log`).
CREATE TABLE micro_log (
    seq {serial_pk},
    customer {blob} NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('deferred', 'trigger', 'started', 'settled', 'failed', 'rejected')),
    payment BIGINT,
    amount BIGINT NOT NULL CHECK (amount > 0),
    batch BIGINT,
    at BIGINT NOT NULL
);
CREATE INDEX micro_log_customer ON micro_log (customer, seq);
-- A payment is aggregated at most once.
CREATE UNIQUE INDEX micro_log_payment ON micro_log (payment) WHERE kind IN ('deferred', 'trigger');

-- The index: one row per customer, read in one lookup. `due_at`: when the
-- window sweep must settle it (NULL: nothing waits). `batch`: the batch in
-- flight while `state` = 'settling'.
CREATE TABLE micro_customers (
    customer {blob} PRIMARY KEY,
    currency TEXT NOT NULL,
    total BIGINT NOT NULL CHECK (total >= 0),
    count BIGINT NOT NULL CHECK (count >= 0),
    oldest_at BIGINT,
    due_at BIGINT,
    state TEXT NOT NULL CHECK (state IN ('open', 'settling', 'blocked')),
    batch BIGINT,
    blocked_since BIGINT,
    failed_transfers BIGINT NOT NULL CHECK (failed_transfers >= 0),
    CHECK ((state = 'settling') = (batch IS NOT NULL)),
    CHECK ((state = 'blocked') = (blocked_since IS NOT NULL)),
    CHECK ((count = 0) = (oldest_at IS NULL))
);
CREATE INDEX micro_customers_due ON micro_customers (due_at) WHERE due_at IS NOT NULL;

-- The open micropayments of every customer (deleted when settled or
-- rejected; the log keeps them).
CREATE TABLE micro_items (
    payment BIGINT PRIMARY KEY,
    customer {blob} NOT NULL REFERENCES micro_customers (customer),
    amount BIGINT NOT NULL CHECK (amount > 0),
    at BIGINT NOT NULL,
    seq BIGINT NOT NULL
);
CREATE INDEX micro_items_customer ON micro_items (customer, seq);

-- Settlement batches: one bank transfer each, idempotency key = id.
CREATE TABLE micro_batches (
    id {serial_pk},
    customer {blob} NOT NULL REFERENCES micro_customers (customer),
    total BIGINT NOT NULL CHECK (total > 0),
    count BIGINT NOT NULL CHECK (count > 0),
    trigger_payment BIGINT,
    trigger_amount BIGINT,
    trigger_at BIGINT,
    state TEXT NOT NULL CHECK (state IN ('started', 'settled', 'failed')),
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    CHECK ((state = 'started') = (finished_at IS NULL))
);
CREATE INDEX micro_batches_started ON micro_batches (id) WHERE state = 'started';
