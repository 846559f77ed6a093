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
pub async fn readyz(State(state): State<AppState>) -> Response {
    let storage = state.store.backend().name();
    let webhooks = state.signatures.health();
    let warnings: Vec<&String> = webhooks.warning.iter().collect();
    match state.store.check_ready().await {
        Ok(()) => Json(json!({
            "status": "ready",
            "storage": storage,
            "webhooks": webhooks,
            "warnings": warnings,
        }))
        .into_response(),
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
