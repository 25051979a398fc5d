-- Mandates (issue 11 item 5): what a payment processor may do on an
-- account that is not its own. Granted by the account's holder or the
-- operator when the customer or merchant enrols with the processor;
-- revoked by setting `revoked_at`. `operations` is a comma list of
-- `hold`, `debit`, `read`; `cap` bounds one hold or one debit (minor units).
CREATE TABLE bank_mandates (
    account TEXT NOT NULL REFERENCES bank_accounts (id),
    processor TEXT NOT NULL,
    operations TEXT NOT NULL,
    cap BIGINT NOT NULL CHECK (cap > 0),
    granted_by TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    revoked_at BIGINT,
    PRIMARY KEY (account, processor)
);
