-- One row per end user: the computed state (see decide/user.rs) and the latest review.
CREATE TABLE users (
    user_ref           TEXT    PRIMARY KEY,
    state              TEXT    NOT NULL,
    attempts_used      INTEGER NOT NULL,
    attempts_allowed   INTEGER NOT NULL,
    current_session    TEXT,
    error_code         TEXT,
    next_step          TEXT,
    state_since        INTEGER NOT NULL,
    review_action      TEXT,
    review_session     TEXT,
    review_attempts    INTEGER,
    updated_at         INTEGER NOT NULL
);
CREATE INDEX users_state ON users (state, state_since);

-- Every operator decision, with who and when.
CREATE TABLE user_reviews (
    user_ref    TEXT    NOT NULL,
    reviewed_at INTEGER NOT NULL,
    action      TEXT    NOT NULL,
    reviewer    TEXT    NOT NULL,
    note        TEXT,
    session_id  TEXT,
    PRIMARY KEY (user_ref, reviewed_at, action)
);
