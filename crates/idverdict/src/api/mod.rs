//! The HTTP API for the app (`/v1/…`, bearer token) and for operations (health, metrics).
//! Every error answer, here and on `/webhook`, is an [`ApiError`].

mod auth;
pub mod error;
mod events;
mod health;
pub(crate) mod reviews;
mod sessions;
mod targets;
mod user_sessions;
mod users;

use axum::routing::{get, post};
use axum::Router;

pub use error::{ApiError, ApiJson, ApiPath, ApiQuery, OptionalJson};

use crate::state::AppState;

/// `/v1/…`: everything here requires the API token.
pub fn app_routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/verification_sessions/{id}", get(sessions::get_session))
        .route("/v1/events", get(events::list))
        .route("/v1/events/{id}/retry", post(events::retry))
        .route("/v1/users", get(users::list_users))
        .route("/v1/users/{user_ref}", get(users::get_user))
        .route("/v1/reviews", get(reviews::queue))
        .route("/v1/reviews/{user_ref}", post(reviews::submit))
        .route("/v1/reactions/targets", get(targets::list))
        .route("/v1/reactions/targets/enable", post(targets::enable))
        .route(
            "/v1/users/{user_ref}/verification_sessions",
            post(user_sessions::create),
        )
        .route(
            "/v1/users/{user_ref}/verification_sessions/{id}/cancel",
            post(user_sessions::cancel),
        )
        .route(
            "/v1/users/{user_ref}/verification_sessions/{id}/redact",
            post(user_sessions::redact),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            auth::require_token,
        ))
}

/// Liveness, readiness and metrics: no credentials, no personal data.
pub fn ops_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
}
