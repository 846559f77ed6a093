//! `GET /v1/verification_sessions/{id}`: one session as idverdict knows it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use stripe_webhook::ErrorCode;

use crate::app::AppState;
use crate::decide::{guidance, SessionRecord};
use crate::ingest::webhook::error;

pub async fn get_session(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.store.get_session(&id).await {
        Ok(Some(record)) => {
            let history = state.store.session_history(&id).await;
            let attempts = state.store.session_attempts(&id).await;
            match (history, attempts) {
                (Ok(history), Ok(attempts)) => {
                    let mut body = session_json(&record);
                    body["history"] = json!(history);
                    body["attempts"] = json!(attempts);
                    Json(body).into_response()
                }
                (Err(e), _) | (_, Err(e)) => storage_error(e),
            }
        }
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "session_not_found",
            &format!("no verification session `{id}` has been received"),
        ),
        Err(e) => storage_error(e),
    }
}

pub fn storage_error(e: crate::store::StoreError) -> Response {
    tracing::error!(error = %e, "storage error in the API");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "storage_unavailable",
        "storage is unavailable; retry later",
    )
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
        Some(code) => {
            let parsed: ErrorCode = code
                .parse()
                .unwrap_or_else(|_| ErrorCode::Unknown(code.clone()));
            json!({
                "code": code,
                "reason": r.last_error_reason,
                "explanation": parsed.explanation(),
                "next_step": r.next_step,
                "guidance": r.next_step.map(guidance),
            })
        }
    }
}
