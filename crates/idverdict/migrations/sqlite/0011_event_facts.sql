-- What the rules use of each event, taken once when it is received (issue 11, defect 4; issue
-- 10, parse once): `facts` is JSON without anything personal (status, error code and reason,
-- report id, client_reference_id, redaction, session type, …); `metadata` is the session's
-- metadata (personal), dropped with `payload` by a redaction. NULL `facts`: a row stored
-- before this migration, whose payload the processor parses.
ALTER TABLE events ADD COLUMN facts TEXT;
ALTER TABLE events ADD COLUMN metadata TEXT;
-- An event that could not be applied is set aside (defect 2) until an operator retries it.
ALTER TABLE events ADD COLUMN quarantined_at INTEGER;
ALTER TABLE events ADD COLUMN quarantine_error TEXT;
CREATE INDEX events_quarantined ON events (seq) WHERE quarantined_at IS NOT NULL;
