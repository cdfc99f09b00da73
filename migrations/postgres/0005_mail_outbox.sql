-- The mail outbox. The `dossiers` projection queues a notification in the transaction that moves
-- its checkpoint past the event, so each mail is queued exactly once per event; the sender
-- claims a row (compare-and-set on its state), sends it, and marks it sent, so a mail is sent at
-- most once across restarts and processes. A row left `sending` by a crash becomes `failed` for
-- the office to check and re-send, never re-sent by itself.

CREATE TABLE mail_outbox (
    -- Derived from what caused it, e.g. `received:<position>` or `reminder:<dossier>:<deadline>`.
    mail_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    dossier_id TEXT NOT NULL,
    -- What the template needs beyond the candidate's account, as JSON.
    payload TEXT NOT NULL,
    -- `pending`, `sending`, `sent` or `failed`.
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at_us BIGINT NOT NULL,
    claim TEXT,
    claimed_until_us BIGINT,
    recipient TEXT,
    subject TEXT,
    last_error TEXT,
    queued_at_us BIGINT NOT NULL,
    sent_at_us BIGINT
);
CREATE INDEX mail_outbox_due ON mail_outbox (state, next_attempt_at_us);
CREATE INDEX mail_outbox_dossier ON mail_outbox (dossier_id);

-- Events at or before this position had happened before the outbox existed: a rebuild of the read
-- models from position 0 queues no mail for them.
CREATE TABLE mail_outbox_start (position BIGINT NOT NULL);
INSERT INTO mail_outbox_start (position) SELECT COALESCE(MAX(position), 0) FROM events;
