//! The HTTP API for the app (`/v1/…`, bearer token) and for operations (health, metrics).

mod auth;
mod health;
mod reviews;
mod sessions;
pub mod user_sessions;
mod users;

use axum::routing::get;
use axum::Router;

use crate::app::AppState;

/// `/v1/…`: everything here requires the API token.
pub fn app_routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/verification_sessions/{id}", get(sessions::get_session))
        .route("/v1/users/{user_ref}", get(users::get_user))
        .route("/v1/reviews", get(reviews::queue))
        .route(
            "/v1/reviews/{user_ref}",
            axum::routing::post(reviews::decide),
        )
        .merge(user_sessions::routes())
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
