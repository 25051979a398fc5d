-- The MPP: its merchants (certificate, payout account, token hash), the PNs
-- awaiting or past their merchant's decision, and refunds.
CREATE TABLE mpp_merchants (
    id {blob} PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    bank TEXT NOT NULL,
    account TEXT NOT NULL,
    certificate {blob} NOT NULL,
    token_hash {blob} NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE mpp_payments (
    seq {serial_pk},
    id {blob} NOT NULL UNIQUE,
    merchant {blob} NOT NULL REFERENCES mpp_merchants (id),
    cpp TEXT NOT NULL,
    notice {blob} NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    reference TEXT NOT NULL,
    pseudonym {blob} NOT NULL,
    hop_deadline BIGINT NOT NULL,
    state TEXT NOT NULL,
    decision {blob},
    confirmation {blob},
    refunded BIGINT NOT NULL DEFAULT 0 CHECK (refunded >= 0 AND refunded <= amount),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX mpp_payments_merchant_state ON mpp_payments (merchant, state);

CREATE TABLE mpp_refunds (
    payment_id {blob} NOT NULL,
    refund_key {blob} NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    state TEXT NOT NULL,
    request {blob} NOT NULL,
    transfer_reference TEXT,
    confirmation {blob},
    reason TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (payment_id, refund_key)
);

CREATE INDEX mpp_refunds_state ON mpp_refunds (state);
