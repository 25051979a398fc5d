-- A key whose request was refused for good keeps the refusal as its answer
-- (`finish_refused`): a repeat gets the refusal again instead of doing the
-- work that the caller already gave up on.
ALTER TABLE idempotency ADD COLUMN refusal TEXT;
