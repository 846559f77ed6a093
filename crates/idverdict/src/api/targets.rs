//! Callback URLs for operators: `GET /v1/reactions/targets` (each URL's health, whether it is
//! paused, how many reactions wait for it) and `POST /v1/reactions/targets/enable`
//! (`{"url": …}`: resume a paused URL; its queued reactions go out at once). Behind the API
//! token like every `/v1` route.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ApiError, ApiJson};
use crate::clock::now_ms;
use crate::state::AppState;
use crate::store::Enabled;

pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let targets = state
        .store
        .callback_targets(&state.reactions.callbacks.urls)
        .await?;
    Ok(Json(json!({"object": "list", "data": targets})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnableBody {
    url: String,
}

pub async fn enable(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<EnableBody>,
) -> Result<Json<Value>, ApiError> {
    let url = body.url.trim();
    // A control character (NUL, which PostgreSQL cannot store, among them) is in no URL.
    if url.is_empty() || url.len() > 2048 || url.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_url",
            "`url` must be the callback URL to enable (1 to 2048 characters, no control characters)",
        ));
    }
    match state.store.enable_callback_target(url, now_ms()).await? {
        Enabled::Resumed(requeued) => {
            tracing::info!(%url, pending = requeued.pending, exhausted = requeued.exhausted, "callback URL enabled by the operator");
            Ok(Json(
                json!({"url": url, "state": "healthy", "requeued": requeued}),
            ))
        }
        Enabled::NotPaused(current) => Err(ApiError::conflict(
            "target_not_paused",
            format!("{url} is not paused (it is {})", current.as_str()),
        )),
        Enabled::Unknown if state.reactions.callbacks.urls.iter().any(|u| u == url) => {
            Err(ApiError::conflict(
                "target_not_paused",
                format!("{url} is not paused (it is healthy)"),
            ))
        }
        Enabled::Unknown => Err(ApiError::not_found(
            "unknown_target",
            format!("{url} is not a callback URL idverdict knows"),
        )),
    }
}
