-- The DC: one route per payment (where its PN came from and went to), so
-- decisions, refunds and confirmations go back the same way.
CREATE TABLE dc_routes (
    seq {serial_pk},
    payment_id {blob} NOT NULL UNIQUE,
    cpp TEXT NOT NULL,
    from_hop TEXT NOT NULL,
    to_hop TEXT,
    state TEXT NOT NULL,
    hop_deadline BIGINT NOT NULL,
    messages BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
