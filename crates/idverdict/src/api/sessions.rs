//! `GET /v1/verification_sessions/{id}`: one session as idverdict knows it.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::{ApiError, ApiPath};
use crate::decide::{guidance, SessionRecord};
use crate::state::AppState;

pub async fn get_session(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let Some(record) = state.store.get_session(&id).await? else {
        return Err(ApiError::not_found(
            "session_not_found",
            format!("no verification session `{id}` has been received"),
        ));
    };
    let history = state.store.session_history(&id).await?;
    let attempts = state.store.session_attempts(&id).await?;
    let mut body = session_json(&record);
    body["history"] = json!(history);
    body["attempts"] = json!(attempts);
    Ok(Json(body))
}

/// The public shape of a session record.
pub fn session_json(r: &SessionRecord) -> Value {
    json!({
        "id": r.id,
        "client_reference_id": r.user_ref,
        "status": r.status,
        "type": r.session_type,
        "livemode": r.livemode,
        "metadata": r.metadata,
        "outcome": r.outcome,
        "failed_attempts": r.failed_attempts,
        "last_error": last_error_json(r),
        "last_verification_report": r.last_report_id,
        "redaction": r.redaction_status.as_ref().map(|s| json!({"status": s})),
        "created": r.session_created,
        "status_event_created": r.status_event_created,
    })
}

/// The last error with its plain-language explanation and the next step.
pub fn last_error_json(r: &SessionRecord) -> Value {
    match &r.last_error_code {
        None => Value::Null,
        Some(code) => json!({
            "code": code,
            "reason": r.last_error_reason,
            "explanation": code.explanation(),
            "next_step": r.next_step,
            "guidance": r.next_step.map(guidance),
        }),
    }
}
