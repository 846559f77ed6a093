//! Manual review: `GET /v1/reviews` (users waiting for a person, oldest first) and
//! `POST /v1/reviews/{client_reference_id}` (`approve`, `reject` or `allow_retry`, with who
//! and a note). A review is recorded, changes the user's state through the same state
//! function as events do, and produces the same kind of reactions.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::sessions::{last_error_json, session_json, storage_error};
use crate::app::AppState;
use crate::decide::user::ReviewAction;
use crate::ingest::webhook::error;
use crate::processor::{apply_review, ReviewOutcome};

#[derive(Debug, Deserialize)]
pub struct QueueParams {
    limit: Option<i64>,
}

pub async fn queue(State(state): State<AppState>, Query(params): Query<QueueParams>) -> Response {
    let limit = params.limit.unwrap_or(50).clamp(1, 500);
    let users = match state.store.review_queue(limit).await {
        Ok(users) => users,
        Err(e) => return storage_error(e),
    };
    let mut data = Vec::with_capacity(users.len());
    for user in users {
        let sessions = match state.store.sessions_for_user(&user.user_ref).await {
            Ok(s) => s,
            Err(e) => return storage_error(e),
        };
        data.push(json!({
            "client_reference_id": user.user_ref,
            "state": user.view.state,
            "waiting_since_ms": user.state_since_ms,
            "attempts_used": user.view.attempts_used,
            "attempts_allowed": user.view.attempts_allowed,
            "current_session": user.view.current_session,
            "last_error": sessions.iter().find(|s| s.last_error_code.is_some()).map(last_error_json),
            "sessions": sessions.iter().map(session_json).collect::<Vec<_>>(),
        }));
    }
    Json(json!({"object": "list", "data": data})).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    action: String,
    reviewer: String,
    note: Option<String>,
}

pub async fn decide(
    State(state): State<AppState>,
    Path(user_ref): Path<String>,
    body: Result<Json<ReviewBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(body) => body,
        Err(rejection) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                &rejection.body_text(),
            )
        }
    };
    let Some(action) = ReviewAction::parse(&body.action) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_action",
            "`action` must be approve, reject or allow_retry",
        );
    };
    let reviewer = body.reviewer.trim();
    if reviewer.is_empty() || reviewer.len() > 200 {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_reviewer",
            "`reviewer` (who decides) must be 1 to 200 characters",
        );
    }
    if body.note.as_deref().is_some_and(|n| n.len() > 2000) {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_note",
            "`note` must be at most 2000 characters",
        );
    }
    let outcome = apply_review(
        &state.store,
        &state.policy,
        &state.reactions,
        &user_ref,
        action,
        reviewer,
        body.note.as_deref(),
    )
    .await;
    match outcome {
        Ok(ReviewOutcome::Done(user)) => Json(json!({
            "client_reference_id": user.user_ref,
            "state": user.view.state,
            "attempts_used": user.view.attempts_used,
            "attempts_allowed": user.view.attempts_allowed,
            "review": {"action": action.as_str(), "reviewer": reviewer, "note": body.note},
        }))
        .into_response(),
        Ok(ReviewOutcome::UnknownUser) => error(
            StatusCode::NOT_FOUND,
            "user_not_found",
            "no verification session has been received for this client_reference_id",
        ),
        Ok(ReviewOutcome::NotReviewable(state)) => error(
            StatusCode::CONFLICT,
            "not_reviewable",
            &format!(
                "allow_retry needs a user in needs_review; this user is {}",
                state.as_str()
            ),
        ),
        Err(e) => storage_error(e),
    }
}
