-- The money office's books, wallets, and what it learnt from syncs.
-- Money is BIGINT minor units in the office's currency; times are BIGINT ms
-- since the Unix epoch; ids and signed objects are {blob} in their wire
-- encoding (docs/wire-format.md).

CREATE TABLE identity (
    id BIGINT PRIMARY KEY,
    secret_keys {blob} NOT NULL,
    certificate {blob} NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE owners (
    owner TEXT PRIMARY KEY,
    token_hash {blob} NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE accounts (
    account TEXT PRIMARY KEY,
    currency TEXT NOT NULL,
    balance BIGINT NOT NULL,
    floor BIGINT
);

CREATE TABLE postings (
    id {serial_pk},
    at BIGINT NOT NULL,
    debit TEXT NOT NULL REFERENCES accounts (account),
    credit TEXT NOT NULL REFERENCES accounts (account),
    amount BIGINT NOT NULL CHECK (amount >= 0),
    currency TEXT NOT NULL,
    reason TEXT NOT NULL,
    reference TEXT NOT NULL
);

CREATE TABLE wallets (
    wallet {blob} PRIMARY KEY,
    owner TEXT NOT NULL REFERENCES owners (owner),
    certificate {blob} NOT NULL,
    head {blob},
    enrolled_at BIGINT NOT NULL,
    synced_at BIGINT,
    revoked_at BIGINT,
    revocation_reason BIGINT,
    branches_charged BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE chain (
    wallet {blob} NOT NULL REFERENCES wallets (wallet),
    seq BIGINT NOT NULL,
    entry {blob} NOT NULL,
    PRIMARY KEY (wallet, seq)
);

CREATE TABLE pays (
    wallet {blob} NOT NULL,
    seq BIGINT NOT NULL,
    hash {blob} NOT NULL,
    entry {blob} NOT NULL,
    seen_at BIGINT NOT NULL,
    PRIMARY KEY (wallet, seq, hash)
);

CREATE TABLE claims (
    buyer {blob} NOT NULL,
    pay_seq BIGINT NOT NULL,
    seller {blob} NOT NULL,
    tx {blob} NOT NULL,
    amount BIGINT NOT NULL,
    claimed_at BIGINT NOT NULL,
    PRIMARY KEY (buyer, pay_seq)
);

CREATE TABLE resolutions (
    buyer {blob} NOT NULL,
    pay_seq BIGINT NOT NULL,
    tx {blob} NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('settled', 'released')),
    resolved_at BIGINT NOT NULL,
    PRIMARY KEY (buyer, pay_seq)
);

CREATE TABLE seller_voids (
    buyer {blob} NOT NULL,
    pay_seq BIGINT NOT NULL,
    PRIMARY KEY (buyer, pay_seq)
);

CREATE TABLE vouchers (
    charge_id {blob} PRIMARY KEY,
    wallet {blob} NOT NULL REFERENCES wallets (wallet),
    amount BIGINT NOT NULL,
    issued_at BIGINT NOT NULL,
    voucher {blob} NOT NULL,
    spent_at BIGINT
);

CREATE TABLE redeems (
    redeem_id {blob} PRIMARY KEY,
    wallet {blob} NOT NULL REFERENCES wallets (wallet),
    amount BIGINT NOT NULL,
    credited_at BIGINT NOT NULL
);

CREATE TABLE frauds (
    id {serial_pk},
    wallet {blob} NOT NULL REFERENCES wallets (wallet),
    owner TEXT NOT NULL,
    seq BIGINT NOT NULL,
    first {blob} NOT NULL,
    second {blob} NOT NULL,
    detected_at BIGINT NOT NULL,
    charged BIGINT NOT NULL
);

CREATE TABLE revocations (
    version BIGINT PRIMARY KEY,
    list {blob} NOT NULL,
    issued_at BIGINT NOT NULL
);
