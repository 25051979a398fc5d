-- The bank's books (DESIGN §3.1-3.2). Money is BIGINT minor units in the
-- bank's one currency; times are BIGINT ms since the Unix epoch; party ids,
-- keys and certificates are {blob} in their wire encoding. Tables carry a
-- `bank_` prefix so that they never collide with another service's.

-- The bank's own identity: one row.
CREATE TABLE bank_identity (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    party {blob} NOT NULL,
    secret_keys {blob} NOT NULL,
    certificate {blob} NOT NULL,
    currency TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- `held` is the sum of the account's pending holds, kept beside the balance
-- so that a funds check reads one row and two racing holds write the same
-- row. `floor` NULL: the account has no floor (`external`, `suspense`,
-- `settlement:<bank>`).
CREATE TABLE bank_accounts (
    id TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    balance BIGINT NOT NULL,
    held BIGINT NOT NULL CHECK (held >= 0),
    floor BIGINT,
    created_at BIGINT NOT NULL
);

-- The journal: every movement of money is one row. The balance of an
-- account is the sum of its credits minus the sum of its debits.
CREATE TABLE bank_postings (
    id {serial_pk},
    at BIGINT NOT NULL,
    debit TEXT NOT NULL REFERENCES bank_accounts (id),
    credit TEXT NOT NULL REFERENCES bank_accounts (id),
    amount BIGINT NOT NULL CHECK (amount > 0),
    reason TEXT NOT NULL,
    reference TEXT NOT NULL,
    CHECK (debit <> credit)
);
CREATE INDEX bank_postings_debit ON bank_postings (debit);
CREATE INDEX bank_postings_credit ON bank_postings (credit);

-- Holds: pending, then exactly one of posted, voided or expired.
CREATE TABLE bank_holds (
    id {serial_pk},
    account TEXT NOT NULL REFERENCES bank_accounts (id),
    amount BIGINT NOT NULL CHECK (amount > 0),
    reference TEXT NOT NULL,
    placed_by TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'posted', 'voided', 'expired')),
    created_at BIGINT NOT NULL,
    resolved_at BIGINT,
    posting_id BIGINT REFERENCES bank_postings (id),
    destination {blob},
    message_id {blob},
    CHECK ((state = 'pending') = (resolved_at IS NULL))
);
CREATE INDEX bank_holds_pending ON bank_holds (expires_at) WHERE state = 'pending';
CREATE INDEX bank_holds_account ON bank_holds (account, state);

-- What account holders are told: one row per movement of a holder account.
CREATE TABLE bank_notifications (
    id {serial_pk},
    account TEXT NOT NULL REFERENCES bank_accounts (id),
    kind TEXT NOT NULL,
    amount BIGINT NOT NULL,
    balance_after BIGINT NOT NULL,
    available_after BIGINT NOT NULL,
    reference TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX bank_notifications_account ON bank_notifications (account, id);

-- Interbank transfers this bank sent (its outbox carries the message).
CREATE TABLE bank_interbank_sent (
    message_id {blob} PRIMARY KEY,
    peer {blob} NOT NULL,
    message {blob} NOT NULL,
    posting_id BIGINT REFERENCES bank_postings (id),
    status TEXT NOT NULL CHECK (status IN ('sent', 'credited', 'returned', 'suspense')),
    created_at BIGINT NOT NULL,
    acknowledged_at BIGINT
);

-- Interbank transfers this bank received, once per (peer, message id).
CREATE TABLE bank_interbank_received (
    peer {blob} NOT NULL,
    message_id {blob} NOT NULL,
    message_hash {blob} NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('credited', 'returned', 'suspense')),
    posting_id BIGINT REFERENCES bank_postings (id),
    received_at BIGINT NOT NULL,
    PRIMARY KEY (peer, message_id)
);
