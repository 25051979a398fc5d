-- The CPP (DESIGN §3.2): enrolled customers with their device certificate,
-- PIN hash and wrong-PIN guard; payments with their saga state; refunds;
-- decisions that came too late to be applied.
CREATE TABLE cpp_customers (
    name TEXT PRIMARY KEY,
    device {blob} NOT NULL UNIQUE,
    bank TEXT NOT NULL,
    account TEXT NOT NULL,
    certificate {blob} NOT NULL,
    pin_hash {blob} NOT NULL,
    pin_guard {blob} NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE cpp_payments (
    seq {serial_pk},
    id {blob} NOT NULL UNIQUE,
    customer TEXT NOT NULL REFERENCES cpp_customers (name),
    idempotency_key {blob} NOT NULL,
    request_hash {blob} NOT NULL,
    trans {blob} NOT NULL,
    merchant_certificate {blob} NOT NULL,
    mpp TEXT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    class TEXT NOT NULL,
    state TEXT NOT NULL,
    bank TEXT NOT NULL,
    account TEXT NOT NULL,
    hold_id BIGINT,
    notice_sent BIGINT NOT NULL DEFAULT 0 CHECK (notice_sent IN (0, 1)),
    hold_expires_at BIGINT NOT NULL,
    deadline BIGINT NOT NULL,
    decision {blob},
    confirmation {blob},
    reason TEXT,
    refunded BIGINT NOT NULL DEFAULT 0 CHECK (refunded >= 0 AND refunded <= amount),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (customer, idempotency_key)
);

CREATE INDEX cpp_payments_state ON cpp_payments (state, deadline);

CREATE TABLE cpp_refunds (
    payment_id {blob} NOT NULL,
    refund_key {blob} NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    state TEXT NOT NULL,
    relay {blob} NOT NULL,
    confirmation {blob},
    reason TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (payment_id, refund_key)
);

CREATE INDEX cpp_refunds_state ON cpp_refunds (state);

CREATE TABLE cpp_late_decisions (
    id {serial_pk},
    payment_id {blob} NOT NULL,
    relay {blob} NOT NULL,
    state_then TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
