-- What the app expects of the verified person, per user: keyed digests (HMAC-SHA256 of the
-- normalised values under IDVERDICT_EXPECTATIONS_KEY) and rules (min_age, issuing
-- countries), as JSON (decide/expectations.rs). Never a plain personal value.
CREATE TABLE user_expectations (
    user_ref     TEXT    PRIMARY KEY,
    expectations TEXT    NOT NULL,
    set_at       INTEGER    NOT NULL
);

-- One check per verified session that had to be compared with expectations: 'pending' until
-- the verified outputs were retrieved and compared (retried with next_attempt_at), then
-- 'done' with the per-field results only (match / mismatch / unavailable), as JSON.
CREATE TABLE session_checks (
    session_id      TEXT    PRIMARY KEY,
    user_ref        TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    results         TEXT,
    attempts        INTEGER    NOT NULL DEFAULT 0,
    next_attempt_at INTEGER    NOT NULL,
    requested_at    INTEGER    NOT NULL,
    checked_at      INTEGER
);
CREATE INDEX session_checks_due ON session_checks (state, next_attempt_at);
CREATE INDEX session_checks_user ON session_checks (user_ref);
