-- The operator console: who may log in, their sessions, login throttling, review claims,
-- case notes, the audit log, and hourly webhook counts for the overview.

-- `email` is stored lower-cased; `password_hash` is an Argon2id PHC string.
CREATE TABLE operators (
    id            BIGSERIAL PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE,
    role          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    disabled_at   BIGINT,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);

-- Only a SHA-256 of the cookie's token is kept: a copy of this table logs nobody in.
CREATE TABLE console_sessions (
    token_hash   TEXT    PRIMARY KEY,
    operator_id  BIGINT  NOT NULL,
    csrf_token   TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    last_seen_at BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL
);
CREATE INDEX console_sessions_operator ON console_sessions (operator_id);

-- Failed logins per `account:<email>` and per `address:<ip>`.
CREATE TABLE login_throttle (
    key              TEXT    PRIMARY KEY,
    failures         BIGINT  NOT NULL,
    first_failure_at BIGINT  NOT NULL,
    next_allowed_at  BIGINT  NOT NULL,
    locked_until     BIGINT
);

-- One lease per case in review; an expired row is free for anyone to take over.
CREATE TABLE review_claims (
    user_ref       TEXT    PRIMARY KEY,
    operator_id    BIGINT  NOT NULL,
    operator_email TEXT    NOT NULL,
    claimed_at     BIGINT  NOT NULL,
    expires_at     BIGINT  NOT NULL
);
CREATE INDEX review_claims_operator ON review_claims (operator_id, expires_at);

CREATE TABLE case_notes (
    id       BIGSERIAL PRIMARY KEY,
    user_ref TEXT    NOT NULL,
    operator TEXT    NOT NULL,
    at       BIGINT  NOT NULL,
    body     TEXT    NOT NULL
);
CREATE INDEX case_notes_user ON case_notes (user_ref, at);

-- Every console action. Append-only: the trigger refuses changes, deletions and TRUNCATE.
CREATE TABLE audit_log (
    seq         BIGSERIAL PRIMARY KEY,
    at          BIGINT  NOT NULL,
    operator    TEXT,
    action      TEXT    NOT NULL,
    target      TEXT,
    reason      TEXT,
    client_addr TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- Webhook deliveries per hour (unix seconds of the hour's start) and outcome (`accepted`,
-- `duplicate`, `rejected:<reason>`, `storage_failed`), flushed from memory in the background.
CREATE TABLE webhook_stats (
    hour    BIGINT  NOT NULL,
    outcome TEXT    NOT NULL,
    count   BIGINT  NOT NULL,
    PRIMARY KEY (hour, outcome)
);
