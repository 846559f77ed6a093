//! The `verification_sessions` table and its two companions: `session_events` (the ordered
//! history) and `session_attempts` (one row per failed attempt).

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{Store, StoreError};
use crate::decide::{NextStep, Outcome, SessionRecord};

type Tx = Transaction<'static, Any>;

/// One line of a session's history.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HistoryRow {
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub event_created: i64,
    pub effect: String,
    pub applied_at_ms: i64,
}

/// One failed attempt.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AttemptRow {
    pub attempt_key: String,
    pub error_code: Option<String>,
    pub event_created: i64,
}

const SESSION_COLUMNS: &str = "id, user_ref, status, session_type, livemode, metadata, last_error_code, last_error_reason, \
     last_report_id, redaction_status, failed_attempts, status_event_created, status_rank, session_created, outcome, next_step";

impl Store {
    /// Mark an event processed, unless someone already did. Returns false when the event was
    /// already processed: the caller must then not apply it (exactly-once application).
    pub(crate) async fn mark_processed(
        &self,
        tx: &mut Tx,
        event_id: &str,
        outcome: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE events SET processed_at = $1, outcome = $2 WHERE id = $3 AND processed_at IS NULL")
            .bind(now_ms)
            .bind(outcome)
            .bind(event_id)
            .execute(&mut **tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Serialise work on these sessions across instances for the rest of the transaction.
    /// PostgreSQL: transaction-scoped advisory locks, taken in sorted order so that two
    /// instances with overlapping batches cannot deadlock (and they work even before the
    /// session row exists). SQLite: the single writer already serialises everything.
    pub(crate) async fn lock_sessions(&self, tx: &mut Tx, ids: &[&str]) -> Result<(), StoreError> {
        if self.backend != super::Backend::Postgres {
            return Ok(());
        }
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            sqlx::query(
                "SELECT 1 AS locked FROM (SELECT pg_advisory_xact_lock(hashtext($1)::bigint)) AS l",
            )
            .bind(id)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Load a session inside a write transaction, locking its row on PostgreSQL so that two
    /// instances applying events of the same session take turns.
    pub(crate) async fn session_for_update(
        &self,
        tx: &mut Tx,
        id: &str,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM verification_sessions WHERE id = $1{}",
            self.lock_clause()
        );
        let row = sqlx::query(&sql).bind(id).fetch_optional(&mut **tx).await?;
        row.map(|r| session_from_row(&r)).transpose()
    }

    /// Insert or replace the session record.
    pub(crate) async fn save_session(
        &self,
        tx: &mut Tx,
        s: &SessionRecord,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let metadata = if s.metadata.is_empty() {
            None
        } else {
            Some(
                serde_json::to_string(&s.metadata)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            )
        };
        sqlx::query(
            "INSERT INTO verification_sessions (id, user_ref, status, session_type, livemode, metadata, last_error_code, \
               last_error_reason, last_report_id, redaction_status, failed_attempts, status_event_created, status_rank, \
               session_created, outcome, next_step, first_seen_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17) \
             ON CONFLICT (id) DO UPDATE SET user_ref = excluded.user_ref, status = excluded.status, \
               session_type = excluded.session_type, livemode = excluded.livemode, metadata = excluded.metadata, \
               last_error_code = excluded.last_error_code, last_error_reason = excluded.last_error_reason, \
               last_report_id = excluded.last_report_id, redaction_status = excluded.redaction_status, \
               failed_attempts = excluded.failed_attempts, status_event_created = excluded.status_event_created, \
               status_rank = excluded.status_rank, session_created = excluded.session_created, \
               outcome = excluded.outcome, next_step = excluded.next_step, updated_at = excluded.updated_at",
        )
        .bind(&s.id)
        .bind(&s.user_ref)
        .bind(&s.status)
        .bind(&s.session_type)
        .bind(i64::from(s.livemode))
        .bind(metadata)
        .bind(&s.last_error_code)
        .bind(&s.last_error_reason)
        .bind(&s.last_report_id)
        .bind(&s.redaction_status)
        .bind(i64::from(s.failed_attempts))
        .bind(s.status_event_created)
        .bind(s.status_rank)
        .bind(s.session_created)
        .bind(s.outcome.as_str())
        .bind(s.next_step.map(NextStep::as_str))
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Record a failed attempt once; returns the number of distinct failed attempts.
    pub(crate) async fn record_attempt(
        &self,
        tx: &mut Tx,
        session_id: &str,
        key: &str,
        code: &str,
        event_created: i64,
    ) -> Result<u32, StoreError> {
        sqlx::query(
            "INSERT INTO session_attempts (session_id, attempt_key, error_code, event_created) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (session_id, attempt_key) DO NOTHING",
        )
        .bind(session_id)
        .bind(key)
        .bind(code)
        .bind(event_created)
        .execute(&mut **tx)
        .await?;
        self.attempt_count(tx, session_id).await
    }

    pub(crate) async fn attempt_count(
        &self,
        tx: &mut Tx,
        session_id: &str,
    ) -> Result<u32, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM session_attempts WHERE session_id = $1")
            .bind(session_id)
            .fetch_one(&mut **tx)
            .await?;
        let n: i64 = row.try_get("n")?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    pub(crate) async fn add_history(
        &self,
        tx: &mut Tx,
        session_id: &str,
        event_id: &str,
        event_type: &str,
        event_created: i64,
        effect: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO session_events (session_id, event_id, event_type, event_created, effect, applied_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (session_id, event_id) DO NOTHING",
        )
        .bind(session_id)
        .bind(event_id)
        .bind(event_type)
        .bind(event_created)
        .bind(effect)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Redaction: drop the raw payloads of every event about the session. What stays is ids,
    /// types, statuses, codes and timestamps.
    pub(crate) async fn purge_session_payloads(
        &self,
        tx: &mut Tx,
        session_id: &str,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE events SET payload = NULL WHERE object_id = $1 AND payload IS NOT NULL",
        )
        .bind(session_id)
        .execute(&mut **tx)
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn get_session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM verification_sessions WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| session_from_row(&r)).transpose()
    }

    /// All sessions of one end user, newest first.
    pub async fn sessions_for_user(
        &self,
        user_ref: &str,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM verification_sessions WHERE user_ref = $1 ORDER BY session_created DESC, id DESC"
        );
        let rows = sqlx::query(&sql)
            .bind(user_ref)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(session_from_row).collect()
    }

    pub async fn session_history(&self, session_id: &str) -> Result<Vec<HistoryRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT event_id, event_type, event_created, effect, applied_at FROM session_events \
             WHERE session_id = $1 ORDER BY applied_at, event_created, event_id",
        )
        .bind(session_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HistoryRow {
                    event_id: r.try_get("event_id")?,
                    event_type: r.try_get("event_type")?,
                    event_created: r.try_get("event_created")?,
                    effect: r.try_get("effect")?,
                    applied_at_ms: r.try_get("applied_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    pub async fn session_attempts(&self, session_id: &str) -> Result<Vec<AttemptRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT attempt_key, error_code, event_created FROM session_attempts WHERE session_id = $1 ORDER BY event_created, attempt_key",
        )
        .bind(session_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AttemptRow {
                    attempt_key: r.try_get("attempt_key")?,
                    error_code: r.try_get("error_code")?,
                    event_created: r.try_get("event_created")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}

fn session_from_row(r: &AnyRow) -> Result<SessionRecord, StoreError> {
    let metadata: Option<String> = r.try_get("metadata")?;
    let metadata = match metadata {
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("metadata: {e}")))?,
        None => Default::default(),
    };
    let outcome: String = r.try_get("outcome")?;
    let next_step: Option<String> = r.try_get("next_step")?;
    let livemode: i64 = r.try_get("livemode")?;
    let failed_attempts: i64 = r.try_get("failed_attempts")?;
    Ok(SessionRecord {
        id: r.try_get("id")?,
        user_ref: r.try_get("user_ref")?,
        status: r.try_get("status")?,
        session_type: r.try_get("session_type")?,
        livemode: livemode != 0,
        metadata,
        last_error_code: r.try_get("last_error_code")?,
        last_error_reason: r.try_get("last_error_reason")?,
        last_report_id: r.try_get("last_report_id")?,
        redaction_status: r.try_get("redaction_status")?,
        failed_attempts: u32::try_from(failed_attempts).unwrap_or(0),
        status_event_created: r.try_get("status_event_created")?,
        status_rank: r.try_get("status_rank")?,
        session_created: r.try_get("session_created")?,
        outcome: Outcome::parse(&outcome)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown outcome `{outcome}`")))?,
        next_step: next_step.as_deref().and_then(NextStep::parse),
    })
}
