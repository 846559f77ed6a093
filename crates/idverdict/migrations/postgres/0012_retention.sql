-- Retention (store/retention.rs) walks events by age: the payloads still kept, oldest first
-- (also the "oldest payload kept" gauge), and every row, oldest first, for deleting rows past
-- the de-duplication window. `received_at` grows with `seq`, so both indexes are appended to
-- at their right edge, not written at random places like the `evt_…` key.
CREATE INDEX events_payload_kept ON events (received_at) WHERE payload IS NOT NULL;
CREATE INDEX events_received ON events (received_at);
