-- Micropayments at the MPP (DESIGN §3.3): which of its payments are
-- micropayments, which the CPPs' net settlements have paid for (`funded`),
-- and the payouts to merchants. Money is BIGINT minor units.
ALTER TABLE mpp_payments ADD COLUMN micro BIGINT NOT NULL DEFAULT 0;
ALTER TABLE mpp_payments ADD COLUMN funded BIGINT NOT NULL DEFAULT 0;
ALTER TABLE mpp_payments ADD COLUMN payout BIGINT;
CREATE INDEX mpp_payments_payout ON mpp_payments (merchant, micro, payout);

-- Settlement statements received, once each per (CPP, run).
CREATE TABLE mpp_micro_statements (
    cpp TEXT NOT NULL,
    run BIGINT NOT NULL,
    total BIGINT NOT NULL CHECK (total > 0),
    count BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (cpp, run)
);

-- Payouts: one bank transfer each, `mpp:<mpp>` → the merchant's account,
-- idempotency key `micro-payout-<id>`; `started` is committed before the call.
CREATE TABLE mpp_micro_payouts (
    id {serial_pk},
    merchant {blob} NOT NULL,
    total BIGINT NOT NULL CHECK (total > 0),
    count BIGINT NOT NULL CHECK (count > 0),
    state TEXT NOT NULL CHECK (state IN ('started', 'paid')),
    started_at BIGINT NOT NULL,
    paid_at BIGINT
);
CREATE INDEX mpp_micro_payouts_state ON mpp_micro_payouts (state);
