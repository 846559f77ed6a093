//! Manual review: `GET /v1/reviews` (users waiting for a person, oldest first) and
//! `POST /v1/reviews/{client_reference_id}` (`approve`, `reject` or `allow_retry`, with who
//! and a note). A review is recorded, changes the user's state through the same state
//! function as events do, and produces the same kind of reactions.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::sessions::{last_error_json, session_json};
use super::users::unknown_user;
use super::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::decide::ReviewAction;
use crate::processor::{apply_review, ReviewError, Reviewed};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct QueueParams {
    limit: Option<i64>,
}

pub async fn queue(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<QueueParams>,
) -> Result<Json<Value>, ApiError> {
    let limit = params.limit.unwrap_or(50).clamp(1, 500);
    let users = state.store.review_queue(limit).await?;
    let mut data = Vec::with_capacity(users.len());
    for user in users {
        let sessions = state.store.sessions_for_user(&user.user_ref).await?;
        data.push(json!({
            "client_reference_id": user.user_ref,
            "state": user.view.state,
            "waiting_since_ms": user.state_since_ms,
            "why": user.view.why,
            "attempts_used": user.view.attempts_used,
            "attempts_allowed": user.view.attempts_allowed,
            "current_session": user.view.current_session,
            "last_error": sessions.iter().find(|s| s.last_error_code.is_some()).map(last_error_json),
            "sessions": sessions.iter().map(session_json).collect::<Vec<_>>(),
        }));
    }
    Ok(Json(json!({"object": "list", "data": data})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    action: String,
    reviewer: String,
    note: Option<String>,
}

pub async fn submit(
    State(state): State<AppState>,
    ApiPath(user_ref): ApiPath<String>,
    ApiJson(body): ApiJson<ReviewBody>,
) -> Result<Json<Value>, ApiError> {
    let Some(action) = ReviewAction::parse(&body.action) else {
        return Err(ApiError::bad_request(
            "invalid_action",
            "`action` must be approve, reject or allow_retry",
        ));
    };
    let reviewer = body.reviewer.trim();
    let reviewed = record_review(&state, &user_ref, action, reviewer, body.note.as_deref()).await?;
    // A repeat answers with the review on record: it is what decided.
    let review = match reviewed.repeat {
        false => json!({"action": action.as_str(), "reviewer": reviewer, "note": body.note}),
        true => {
            let recorded = state.store.reviews_of(&user_ref).await?;
            let latest = recorded.last();
            json!({
                "action": action.as_str(),
                "reviewer": latest.map(|r| r.reviewer.as_str()),
                "note": latest.and_then(|r| r.note.as_deref()),
            })
        }
    };
    let user = reviewed.user;
    Ok(Json(json!({
        "client_reference_id": user.user_ref,
        "state": user.view.state,
        "why": user.view.why,
        "attempts_used": user.view.attempts_used,
        "attempts_allowed": user.view.attempts_allowed,
        "review": review,
        "repeated": reviewed.repeat,
    })))
}

/// The one review path, for the API and the console alike: check who and the note, record the
/// review, change the user's state and put the decision's reactions in the outbox.
pub async fn record_review(
    state: &AppState,
    user_ref: &str,
    action: ReviewAction,
    reviewer: &str,
    note: Option<&str>,
) -> Result<Reviewed, ApiError> {
    if reviewer.is_empty() || reviewer.chars().count() > 200 {
        return Err(ApiError::bad_request(
            "invalid_reviewer",
            "`reviewer` (who decides) must be 1 to 200 characters",
        ));
    }
    if note.is_some_and(|n| n.chars().count() > 2000) {
        return Err(ApiError::bad_request(
            "invalid_note",
            "`note` must be at most 2000 characters",
        ));
    }
    apply_review(
        &state.store,
        &state.policy,
        &state.reactions,
        user_ref,
        action,
        reviewer,
        note,
    )
    .await
    .map_err(|e| match e {
        ReviewError::UnknownUser => unknown_user(),
        ReviewError::NotReviewable(_) | ReviewError::VerifiedSessionHeld => {
            ApiError::conflict("not_reviewable", e.to_string())
        }
        ReviewError::Store(e) => ApiError::from(e),
    })
}
