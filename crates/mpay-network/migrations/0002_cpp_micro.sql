-- Micropayments at the CPP (DESIGN §3.3). The pending totals themselves
-- live in mpay-micro's tables (`micro_*`) in the same database; these are
-- the CPP's own records around them. Money is BIGINT minor units.

-- A micropayment's settlement batch when it was the one that reached θ
-- (its transfer decides the payment), and what the CPP paid back to the
-- customer when a rejected micropayment had already been collected.
ALTER TABLE cpp_payments ADD COLUMN micro_batch BIGINT;
ALTER TABLE cpp_payments ADD COLUMN micro_returned BIGINT NOT NULL DEFAULT 0;

-- Each customer's θ and W from the last `mpay cpp recluster` (keyed by the
-- customer's device id, as in `micro_customers`).
CREATE TABLE cpp_micro_limits (
    customer {blob} PRIMARY KEY,
    cluster BIGINT NOT NULL,
    theta BIGINT NOT NULL CHECK (theta > 0),
    window_ms BIGINT NOT NULL CHECK (window_ms > 0),
    fitted_at BIGINT NOT NULL
);

-- The last fitted model's default cluster, for customers it did not see.
CREATE TABLE cpp_micro_model (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    clusters BIGINT NOT NULL,
    customers BIGINT NOT NULL,
    default_cluster BIGINT NOT NULL,
    default_theta BIGINT NOT NULL CHECK (default_theta > 0),
    default_window_ms BIGINT NOT NULL CHECK (default_window_ms > 0),
    fitted_at BIGINT NOT NULL
);

-- What the CPP owes each MPP for approved micropayments (it pays on the
-- customers' behalf), until a net settlement run pays it.
CREATE TABLE cpp_micro_owed (
    payment_id {blob} PRIMARY KEY,
    mpp TEXT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    approved_at BIGINT NOT NULL,
    run BIGINT
);
CREATE INDEX cpp_micro_owed_run ON cpp_micro_owed (mpp, run);

-- Net settlement runs: one bank transfer each, `cpp:<cpp>` → `mpp:<mpp>`,
-- idempotency key `micro-net-<id>`; `started` is committed before the call.
CREATE TABLE cpp_micro_runs (
    id {serial_pk},
    mpp TEXT NOT NULL,
    total BIGINT NOT NULL CHECK (total > 0),
    count BIGINT NOT NULL CHECK (count > 0),
    state TEXT NOT NULL CHECK (state IN ('started', 'paid')),
    started_at BIGINT NOT NULL,
    paid_at BIGINT
);
CREATE INDEX cpp_micro_runs_state ON cpp_micro_runs (state);
