//! `GET /v1/users/{client_reference_id}`: the user's decision state (see `decide/user.rs`),
//! attempts used and left, every session, the latest failure with its explanation, and the
//! reviews. A user idverdict has no session of is in state `none`, as the state table says:
//! 200, not 404, so an app can ask about anyone. `GET /v1/users` lists users, Stripe-style.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::sessions::{last_error_json, session_json};
use super::{ApiError, ApiPath, ApiQuery};
use crate::decide::user::attempts_used;
use crate::decide::{SessionRecord, UserRecord, UserState};
use crate::state::AppState;
use crate::store::UserFilter;

pub async fn get_user(
    State(state): State<AppState>,
    ApiPath(user_ref): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let sessions = state.store.sessions_for_user(&user_ref).await?;
    let Some(current) = sessions.first() else {
        return Ok(Json(json!({
            "client_reference_id": user_ref,
            "state": UserState::None,
            "state_since_ms": null,
            "next_step": null,
            "attempts_left": state.policy.max_attempts,
            "outcome": null,
            "current_session": null,
            "failed_attempts": 0,
            "max_attempts": state.policy.max_attempts,
            "reviews": [],
            "last_error": null,
            "sessions": [],
        })));
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    state: Option<String>,
    starting_after: Option<String>,
    limit: Option<i64>,
}

/// `GET /v1/users?state=…&starting_after=…&limit=…`: users in `client_reference_id` order,
/// as a Stripe-style list (`limit` 1 to 100, default 10; `has_more`; continue with
/// `starting_after` = the last id).
pub async fn list_users(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let wanted = match params.state.as_deref() {
        None | Some("") => None,
        Some(s) => Some(UserState::parse(s).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_state",
                format!(
                    "`state` must be one of: {}",
                    UserState::ALL.map(UserState::as_str).join(", ")
                ),
            )
        })?),
    };
    let limit = params.limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            "`limit` must be between 1 and 100",
        ));
    }
    let mut users = state
        .store
        .list_users(&UserFilter {
            state: wanted,
            prefix: None,
            starting_after: params.starting_after.as_deref().filter(|s| !s.is_empty()),
            limit: limit + 1,
        })
        .await?;
    let has_more = users.len() as i64 > limit;
    users.truncate(limit as usize);
    Ok(Json(json!({
        "object": "list",
        "url": "/v1/users",
        "has_more": has_more,
        "data": users.iter().map(user_summary_json).collect::<Vec<_>>(),
    })))
}

/// A user as the list shows them (the full record is `GET /v1/users/{ref}`).
fn user_summary_json(u: &UserRecord) -> Value {
    json!({
        "object": "user",
        "id": u.user_ref,
        "client_reference_id": u.user_ref,
        "state": u.view.state,
        "state_since_ms": u.state_since_ms,
        "next_step": u.view.next_step,
        "error_code": u.view.error_code,
        "failed_attempts": u.view.attempts_used,
        "max_attempts": u.view.attempts_allowed,
        "attempts_left": u.view.attempts_allowed.saturating_sub(u.view.attempts_used),
        "current_session": u.view.current_session,
    })
}
