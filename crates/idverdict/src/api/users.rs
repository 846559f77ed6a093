//! `GET /v1/users/{client_reference_id}`: every session of one end user, the attempts used and
//! the current outcome (that of the newest session).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::sessions::{last_error_json, session_json, storage_error};
use crate::app::AppState;
use crate::ingest::webhook::error;

pub async fn get_user(State(state): State<AppState>, Path(user_ref): Path<String>) -> Response {
    let sessions = match state.store.sessions_for_user(&user_ref).await {
        Ok(sessions) => sessions,
        Err(e) => return storage_error(e),
    };
    let Some(current) = sessions.first() else {
        return error(
            StatusCode::NOT_FOUND,
            "user_not_found",
            "no verification session has been received for this client_reference_id",
        );
    };
    let attempts_used: u32 = sessions.iter().map(|s| s.failed_attempts).sum();
    let last_error = sessions
        .iter()
        .find(|s| s.last_error_code.is_some())
        .map(last_error_json);
    Json(json!({
        "client_reference_id": user_ref,
        "outcome": current.outcome,
        "current_session": current.id,
        "failed_attempts": attempts_used,
        "max_attempts": state.policy.max_attempts,
        "last_error": last_error,
        "sessions": sessions.iter().map(session_json).collect::<Vec<_>>(),
    }))
    .into_response()
}
