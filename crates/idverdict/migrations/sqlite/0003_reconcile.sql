-- Small named values the service keeps between runs, e.g. the reconciliation cursor (the
-- newest `created` of the Stripe events already listed). `updated_at` is unix milliseconds.
CREATE TABLE sync_state (
    name       TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);
