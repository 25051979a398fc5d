-- Standing approvals of micropayments (module mpp::standing): per merchant
-- the one in force (NULL once withdrawn) and the latest instant one was set
-- or withdrawn at (a new one must be signed after it); the use of the
-- current period (minor units); and which payments were approved under one.
CREATE TABLE mpp_standing_approvals (
    merchant {blob} PRIMARY KEY REFERENCES mpp_merchants (id),
    approval {blob},
    latest BIGINT NOT NULL
);

CREATE TABLE mpp_standing_usage (
    merchant {blob} NOT NULL,
    period BIGINT NOT NULL,
    used BIGINT NOT NULL CHECK (used > 0),
    PRIMARY KEY (merchant, period)
);

ALTER TABLE mpp_payments ADD COLUMN standing BIGINT NOT NULL DEFAULT 0;
