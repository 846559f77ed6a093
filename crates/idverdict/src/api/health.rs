//! `/healthz` (the process is alive), `/readyz` (storage is reachable and takes writes;
//! webhook trouble),
//! `/metrics`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::state::AppState;

pub async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// Ready when storage answers. The body also says what an operator should know about the
/// webhooks: deliveries that matched no configured secret show up here (and in `warnings`).
/// Quarantined events (ones that cannot be applied) make the status `degraded` with their
/// count, but the answer stays 200: deliveries must keep flowing, and nothing behind a
/// quarantined event is held up.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let storage = state.store.backend().name();
    let webhooks = state.signatures.health();
    let mut warnings: Vec<String> = webhooks.warning.iter().cloned().collect();
    match state.store.check_ready().await {
        Ok(()) => {
            let quarantined = state.store.quarantined_events().await.unwrap_or(0);
            if quarantined > 0 {
                warnings.push(format!(
                    "{quarantined} event(s) quarantined: they cannot be applied (GET /v1/events?state=quarantined, then POST /v1/events/{{id}}/retry once fixed)"
                ));
            }
            Json(json!({
                "status": if quarantined > 0 { "degraded" } else { "ready" },
                "storage": storage,
                "webhooks": webhooks,
                "events": {"quarantined": quarantined},
                "warnings": warnings,
            }))
            .into_response()
        }
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "status": "unavailable",
                    "storage": storage,
                    "webhooks": webhooks,
                    "warnings": warnings,
                })),
            )
                .into_response()
        }
    }
}

/// The Prometheus page; only in-memory values (no database query per scrape).
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
