//! The `verification_sessions` table and its two companions: `session_events` (the ordered
//! history) and `session_attempts` (one row per failed attempt).

use sqlx::any::AnyRow;
use sqlx::Row;

use stripe_webhook::{ErrorCode, RedactionStatus, SessionStatus, SessionType};

use super::{Store, StoreError};
use crate::decide::{NextStep, SessionOutcome, SessionRecord};

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

pub(super) const SESSION_COLUMNS: &str = "id, user_ref, status, session_type, livemode, metadata, last_error_code, last_error_reason, \
     last_report_id, redaction_status, failed_attempts, status_event_created, status_rank, session_created, outcome, next_step, \
     failure_codes";

impl Store {
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

pub(super) fn session_from_row(r: &AnyRow) -> Result<SessionRecord, StoreError> {
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
    let status: String = r.try_get("status")?;
    let session_type: Option<String> = r.try_get("session_type")?;
    let last_error_code: Option<String> = r.try_get("last_error_code")?;
    let redaction_status: Option<String> = r.try_get("redaction_status")?;
    let failure_codes: Option<String> = r.try_get("failure_codes")?;
    Ok(SessionRecord {
        id: r.try_get("id")?,
        user_ref: r.try_get("user_ref")?,
        status: SessionStatus::from(status),
        session_type: session_type.map(SessionType::from),
        livemode: livemode != 0,
        metadata,
        last_error_code: last_error_code.map(ErrorCode::from),
        last_error_reason: r.try_get("last_error_reason")?,
        last_report_id: r.try_get("last_report_id")?,
        redaction_status: redaction_status.map(RedactionStatus::from),
        failed_attempts: u32::try_from(failed_attempts).unwrap_or(0),
        status_event_created: r.try_get("status_event_created")?,
        status_rank: r.try_get("status_rank")?,
        session_created: r.try_get("session_created")?,
        outcome: SessionOutcome::parse(&outcome)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown outcome `{outcome}`")))?,
        next_step: next_step.as_deref().and_then(NextStep::parse),
        failure_codes: {
            let mut codes: Vec<ErrorCode> = failure_codes
                .as_deref()
                .unwrap_or_default()
                .split(',')
                .filter(|c| !c.is_empty())
                .map(ErrorCode::from)
                .collect();
            codes.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            codes.dedup();
            codes
        },
    })
}
