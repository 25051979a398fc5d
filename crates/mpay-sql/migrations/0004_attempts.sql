-- The attempt a request that waits for money is on (`attempts`): a bank keeps
-- a refusal as its key's answer (DESIGN §3.2), so the caller asks again under
-- the next attempt's key, and only after the refusal came back.
CREATE TABLE attempts (
    base TEXT PRIMARY KEY,
    attempt BIGINT NOT NULL
);
