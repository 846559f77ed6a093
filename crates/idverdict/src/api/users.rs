//! `GET /v1/users/{client_reference_id}`: the user's decision state (see `decide/user.rs`),
//! attempts used and left, every session, the latest failure with its explanation, and the
//! reviews.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::sessions::{last_error_json, session_json};
use super::{ApiError, ApiPath};
use crate::app::AppState;
use crate::decide::user::attempts_used;
use crate::decide::SessionRecord;

pub async fn get_user(
    State(state): State<AppState>,
    ApiPath(user_ref): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let sessions = state.store.sessions_for_user(&user_ref).await?;
    let Some(current) = sessions.first() else {
        return Err(unknown_user());
    };
    let user = state.store.get_user(&user_ref).await?;
    let reviews = state.store.reviews_of(&user_ref).await?;
    let checks = state.store.checks_of_user(&user_ref).await?;
    let attempts_used = attempts_used(&sessions.iter().collect::<Vec<&SessionRecord>>());
    let attempts_allowed = user
        .as_ref()
        .map_or(state.policy.max_attempts, |u| u.view.attempts_allowed);
    let last_error = sessions
        .iter()
        .find(|s| s.last_error_code.is_some())
        .map(last_error_json);
    Ok(Json(json!({
        "client_reference_id": user_ref,
        // The user's decision state; null until the processor has applied the first event.
        "state": user.as_ref().map(|u| u.view.state),
        "state_since_ms": user.as_ref().map(|u| u.state_since_ms),
        // Why: the rule that decided the state, its facts and the deciding session.
        "why": user.as_ref().and_then(|u| u.view.why.as_ref()),
        "next_step": user.as_ref().and_then(|u| u.view.next_step),
        "attempts_left": attempts_allowed.saturating_sub(attempts_used),
        "outcome": current.outcome,
        "current_session": current.id,
        "failed_attempts": attempts_used,
        "max_attempts": attempts_allowed,
        "reviews": reviews,
        // Verified sessions compared with what was expected: per field match / mismatch /
        // unavailable (never a value).
        "checks": checks,
        "last_error": last_error,
        "sessions": sessions.iter().map(session_json).collect::<Vec<_>>(),
    })))
}

/// 404 for a user idverdict has never received a session of.
pub fn unknown_user() -> ApiError {
    ApiError::not_found(
        "user_not_found",
        "no verification session has been received for this client_reference_id",
    )
}
