#!/usr/bin/env bash
# Bench-only seeding: fill a migrated idverdict SQLite file with N already-processed events the
# way the real pipeline leaves them, in one transaction (minutes instead of the hours the HTTP
# path would take for millions). Per two events one session: `events` rows (pretty-printed
# ~1.7 KB payloads, `evt_…`/`vs_…` ids that are as scattered in the B-trees as Stripe's random
# ones, processed, disposition `applied`), `verification_sessions`, `session_events` and
# `users` rows. Received 10–20 days ago, so inside the payload window: nothing of it is
# pruned while the benchmark runs. Not seeded: reactions (the benchmark configures no channel),
# attempts and reviews.
#
#   bench/lib/seed-sqlite.sh FILE N [FIRST]   (FIRST: number of the first seeded event, default 0;
#                                              seeding twice with disjoint ranges adds up)
set -euo pipefail
FILE=$1
N=$2
FIRST=${3:-0}
NOW_MS=$(($(date +%s) * 1000))
sqlite3 "$FILE" <<SQL
PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;
PRAGMA cache_size = -262144;
PRAGMA secure_delete = OFF;
BEGIN;
CREATE TEMP TABLE seed AS
WITH RECURSIVE s(n) AS (SELECT $FIRST UNION ALL SELECT n + 1 FROM s WHERE n < $FIRST + $N - 1)
SELECT n,
       printf('evt_1%08x%08x%08x', (n * 2654435761) % 4294967296, (n * 40503 + 977) % 4294967296, n) AS id,
       printf('vs_1%08x%08x%08x', ((n / 2) * 2246822519) % 4294967296, ((n / 2) * 3266489917) % 4294967296, n / 2) AS session,
       printf('seed_user_%d', n / 2) AS user_ref,
       1700000000 + n AS created,
       $NOW_MS - 20 * 86400000 + ((n - $FIRST) * (10 * 86400000 / $N)) AS received
FROM s;
INSERT INTO events (id, type, object_id, created, livemode, api_version, payload, received_at, processed_at, disposition)
SELECT id,
       CASE n % 2 WHEN 0 THEN 'identity.verification_session.processing' ELSE 'identity.verification_session.verified' END,
       session, created, 0, '2026-07-29.dahlia',
       CAST(printf('{
  "id": "%s",
  "object": "event",
  "api_version": "2026-07-29.dahlia",
  "created": %d,
  "data": {
    "object": {
      "id": "%s",
      "object": "identity.verification_session",
      "client_reference_id": "%s",
      "client_secret": null,
      "created": %d,
      "last_error": null,
      "last_verification_report": "vr_1%024d",
      "livemode": false,
      "metadata": {
        "order_id": "ord_2026_11_%012d",
        "signup_source": "mobile_app_onboarding_flow_v3",
        "account_tier": "business_plus_annual",
        "region": "eu-west-1",
        "risk_segment": "standard_review_queue_b",
        "campaign": "autumn_referral_programme_2026",
        "customer_since": "2021-04-17T09:31:00Z",
        "kyc_reason": "payout_threshold_exceeded_first_time"
      },
      "options": {
        "document": {
          "require_matching_selfie": true
        }
      },
      "redaction": null,
      "related_customer": null,
      "related_customer_account": null,
      "status": "%s",
      "type": "document",
      "url": null
    }
  },
  "livemode": false,
  "pending_webhooks": 1,
  "request": {
    "id": null,
    "idempotency_key": null
  },
  "type": "identity.verification_session.%s"
}', id, created, session, user_ref, created - 30, n, n, CASE n % 2 WHEN 0 THEN 'processing' ELSE 'verified' END, CASE n % 2 WHEN 0 THEN 'processing' ELSE 'verified' END) AS BLOB),
       received, received + 40, 'applied'
FROM seed ORDER BY n;
INSERT INTO session_events (session_id, event_id, event_type, event_created, effect, applied_at)
SELECT session, id, CASE n % 2 WHEN 0 THEN 'identity.verification_session.processing' ELSE 'identity.verification_session.verified' END,
       created, 'applied', received + 40
FROM seed ORDER BY n;
INSERT INTO verification_sessions (id, user_ref, status, session_type, livemode, metadata, last_error_code,
    last_error_reason, last_report_id, redaction_status, failed_attempts, status_event_created, status_rank,
    session_created, outcome, next_step, first_seen_at, updated_at)
SELECT session, user_ref, 'verified', 'document', 0, '{"order_id":"seed"}', NULL, NULL,
       printf('vr_1%024d', n), NULL, 0, created, 4, created - 30, 'verified', NULL, received, received + 40
FROM seed WHERE n % 2 = 1 ORDER BY n;
INSERT INTO users (user_ref, state, attempts_used, attempts_allowed, current_session, error_code, next_step,
    state_since, review_action, review_session, review_attempts, updated_at)
SELECT user_ref, 'verified', 0, 3, session, NULL, NULL, received + 40, NULL, NULL, NULL, received + 40
FROM seed WHERE n % 2 = 1 ORDER BY n;
DROP TABLE seed;
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
