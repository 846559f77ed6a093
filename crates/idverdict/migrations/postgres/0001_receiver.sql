-- Every acknowledged Stripe event, in arrival order. `payload` is the exact signed body; it is
-- set to NULL when the session it belongs to is redacted.
CREATE TABLE events (
    seq          BIGSERIAL PRIMARY KEY,
    id           TEXT    NOT NULL UNIQUE,
    type         TEXT    NOT NULL,
    object_id    TEXT,
    created      BIGINT  NOT NULL,
    livemode     BIGINT  NOT NULL,
    api_version  TEXT,
    payload      BYTEA,
    received_at  BIGINT  NOT NULL,
    processed_at BIGINT,
    outcome      TEXT
);
CREATE INDEX events_unprocessed ON events (seq) WHERE processed_at IS NULL;
CREATE INDEX events_object ON events (object_id);

CREATE TABLE verification_sessions (
    id                   TEXT    PRIMARY KEY,
    user_ref             TEXT,
    status               TEXT    NOT NULL,
    session_type         TEXT,
    livemode             BIGINT  NOT NULL,
    metadata             TEXT,
    last_error_code      TEXT,
    last_error_reason    TEXT,
    last_report_id       TEXT,
    redaction_status     TEXT,
    failed_attempts      BIGINT  NOT NULL,
    status_event_created BIGINT  NOT NULL,
    status_rank          BIGINT  NOT NULL,
    session_created      BIGINT  NOT NULL,
    outcome              TEXT    NOT NULL,
    next_step            TEXT,
    first_seen_at        BIGINT  NOT NULL,
    updated_at           BIGINT  NOT NULL
);
CREATE INDEX verification_sessions_user ON verification_sessions (user_ref);

-- The ordered history of events applied to each session, including those that arrived too late
-- to change its status (effect = 'stale').
CREATE TABLE session_events (
    session_id    TEXT    NOT NULL,
    event_id      TEXT    NOT NULL,
    event_type    TEXT    NOT NULL,
    event_created BIGINT  NOT NULL,
    effect        TEXT    NOT NULL,
    applied_at    BIGINT  NOT NULL,
    PRIMARY KEY (session_id, event_id)
);

-- One row per failed verification attempt; the key makes redelivered or duplicated events count
-- once.
CREATE TABLE session_attempts (
    session_id    TEXT    NOT NULL,
    attempt_key   TEXT    NOT NULL,
    error_code    TEXT,
    event_created BIGINT  NOT NULL,
    PRIMARY KEY (session_id, attempt_key)
);
