//! `GET /v1/users/{client_reference_id}`: the user's decision state (see `decide/user.rs`),
//! attempts used and left, every session, the latest failure with its explanation, and the
//! reviews.

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
    let (user, reviews) = match (
        state.store.get_user(&user_ref).await,
        state.store.reviews_of(&user_ref).await,
    ) {
        (Ok(user), Ok(reviews)) => (user, reviews),
        (Err(e), _) | (_, Err(e)) => return storage_error(e),
    };
    let attempts_used: u32 = sessions.iter().map(|s| s.failed_attempts).sum();
    let attempts_allowed = user
        .as_ref()
        .map(|u| u.view.attempts_allowed)
        .unwrap_or(state.policy.max_attempts);
    let last_error = sessions
        .iter()
        .find(|s| s.last_error_code.is_some())
        .map(last_error_json);
    Json(json!({
        "client_reference_id": user_ref,
        // The user's decision state; null until the processor has applied the first event.
        "state": user.as_ref().map(|u| u.view.state),
        "state_since_ms": user.as_ref().map(|u| u.state_since_ms),
        "next_step": user.as_ref().and_then(|u| u.view.next_step),
        "attempts_left": attempts_allowed.saturating_sub(attempts_used),
        "outcome": current.outcome,
        "current_session": current.id,
        "failed_attempts": attempts_used,
        "max_attempts": attempts_allowed,
        "reviews": reviews,
        "last_error": last_error,
        "sessions": sessions.iter().map(session_json).collect::<Vec<_>>(),
    }))
    .into_response()
}
