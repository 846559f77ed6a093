//! Bearer-token authentication for the app API, compared in constant time.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use crate::app::AppState;
use crate::ingest::webhook::error;

pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = state.api_token.as_deref() else {
        return error(
            StatusCode::UNAUTHORIZED,
            "api_disabled",
            "the API is disabled: no API token is configured (set IDVERDICT_API_TOKEN)",
        );
    };
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        None => error(
            StatusCode::UNAUTHORIZED,
            "missing_token",
            "send the API token as `Authorization: Bearer <token>`",
        ),
        Some(token) if bool::from(token.as_bytes().ct_eq(expected.as_bytes())) => {
            next.run(request).await
        }
        Some(_) => error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the API token is not valid",
        ),
    }
}
