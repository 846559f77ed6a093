-- What processing did with each event (`applied`, `ignored:not_identity`, …) was stored as
-- `outcome`, the word the session table uses for something else; it is the event's disposition.
ALTER TABLE events RENAME COLUMN outcome TO disposition;
