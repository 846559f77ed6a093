-- Who holds a `sending` reaction and since when: an instance that restarts takes back its own
-- claims at once (`claimed_by` = its instance id) instead of waiting for the lease, and the
-- interrupted attempt is logged from `claimed_at`.
ALTER TABLE reactions ADD COLUMN claimed_by TEXT;
ALTER TABLE reactions ADD COLUMN claimed_at INTEGER;
CREATE INDEX reactions_claimed_by ON reactions (claimed_by) WHERE state = 'sending';

-- Callback targets that fail: `failing_since` is the first failed attempt since the last
-- success (NULL when healthy). Once a target has failed for `callbacks.pause_after` it is
-- paused (`paused_at`): its reactions stay queued, untried, until the operator enables it.
CREATE TABLE callback_targets (
    url             TEXT    PRIMARY KEY,
    failing_since   INTEGER,
    last_failure_at INTEGER,
    last_error      TEXT,
    paused_at       INTEGER,
    enabled_at      INTEGER
);
