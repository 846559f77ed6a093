//! Stored events for operators: `GET /v1/events` (newest first; `?state=pending|processed|
//! quarantined`, `?limit=1..1000`, default 100) and `POST /v1/events/{id}/retry` (put a
//! quarantined event back in the queue once the cause is fixed). An event is quarantined when
//! the database refuses what applying it would write; it then waits here with its error and
//! blocks nothing behind it. Behind the API token like every `/v1` route; ids, types, times
//! and errors only, never a payload.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ApiError, ApiPath, ApiQuery};
use crate::state::AppState;
use crate::store::{EventState, Retried};

#[derive(Debug, Deserialize)]
pub struct ListParams {
    state: Option<String>,
    limit: Option<i64>,
}

pub async fn list(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let wanted = match params.state.as_deref() {
        None | Some("") => None,
        Some(s) => Some(EventState::parse(s).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_state",
                format!(
                    "`state` must be one of: {}",
                    EventState::ALL.map(EventState::as_str).join(", ")
                ),
            )
        })?),
    };
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            "`limit` must be between 1 and 1000",
        ));
    }
    let events = state.store.list_events(wanted, limit).await?;
    Ok(Json(json!({"object": "list", "data": events})))
}

pub async fn retry(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    match state.store.retry_event(&id).await? {
        Retried::Queued(event) => {
            tracing::info!(event = %event.id, "quarantined event put back in the queue");
            Ok(Json(json!(event)))
        }
        Retried::NotQuarantined(event) => Err(ApiError::conflict(
            "event_not_quarantined",
            format!(
                "event `{id}` is {}, not quarantined: there is nothing to retry",
                event.state.as_str()
            ),
        )),
        Retried::NotFound => Err(ApiError::not_found(
            "event_not_found",
            format!("no event `{id}` has been received"),
        )),
    }
}
