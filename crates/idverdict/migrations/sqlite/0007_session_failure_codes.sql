-- Every `last_error.code` a session has failed with (comma-joined, sorted), whatever the order
-- its snapshots arrived in: a resubmission replaces `last_error_code`, but a fraud signal
-- (a code with `hold_for_review`) must outlive it. Filled from what is known: the counted
-- attempts and the current error.
ALTER TABLE verification_sessions ADD COLUMN failure_codes TEXT;
UPDATE verification_sessions SET failure_codes = (
    SELECT group_concat(code, ',') FROM (
        SELECT DISTINCT code FROM (
            SELECT a.error_code AS code FROM session_attempts a
             WHERE a.session_id = verification_sessions.id AND a.error_code IS NOT NULL
            UNION SELECT verification_sessions.last_error_code
             WHERE verification_sessions.last_error_code IS NOT NULL
        ) ORDER BY code
    )
);
