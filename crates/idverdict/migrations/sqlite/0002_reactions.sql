-- The outbox: one row per reaction (callback, email, bus message) to a decision. Rows are
-- written in the same transaction as the decision and dispatched by workers afterwards.
-- `id` doubles as the idempotency key seen by the receiver (`webhook-id`, Message-ID, Nats-Msg-Id).
CREATE TABLE reactions (
    id              TEXT    PRIMARY KEY,
    decision_key    TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    target          TEXT    NOT NULL,
    user_ref        TEXT,
    session_id      TEXT,
    decision        TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- `attempts` when the operator last redelivered: the retry schedule restarts from here,
    -- while attempt numbers (and the history in reaction_attempts) keep counting up.
    schedule_offset INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    UNIQUE (decision_key, kind, target)
);
-- Due work: `pending` rows wait for next_attempt_at; `sending` rows are claimed and
-- next_attempt_at is their lease expiry (a crashed dispatcher's claims become due again).
CREATE INDEX reactions_due ON reactions (next_attempt_at) WHERE state IN ('pending', 'sending');
CREATE INDEX reactions_session ON reactions (session_id);
CREATE INDEX reactions_state ON reactions (state, created_at);
CREATE INDEX reactions_user ON reactions (user_ref);

CREATE TABLE reaction_attempts (
    reaction_id TEXT    NOT NULL,
    attempt     INTEGER NOT NULL,
    started_at  INTEGER NOT NULL,
    status_code INTEGER,
    latency_ms  INTEGER NOT NULL,
    error       TEXT,
    PRIMARY KEY (reaction_id, attempt)
);
