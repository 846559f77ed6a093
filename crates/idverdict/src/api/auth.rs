//! Bearer-token authentication for the app API, compared in constant time: both tokens are
//! hashed to fixed-length digests first, so not even the length of the configured token
//! shows in how long a refusal takes.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ApiError;
use crate::state::AppState;

fn unauthorized(code: &'static str, message: &'static str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, message)
}

pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(expected) = state.api_token.as_deref() else {
        return Err(unauthorized(
            "api_disabled",
            "the API is disabled: no API token is configured (set IDVERDICT_API_TOKEN)",
        ));
    };
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        None => Err(unauthorized(
            "missing_token",
            "send the API token as `Authorization: Bearer <token>`",
        )),
        Some(token) if token_matches(expected, token) => Ok(next.run(request).await),
        Some(_) => Err(unauthorized("invalid_token", "the API token is not valid")),
    }
}

/// Whether `presented` is the `expected` token, in time independent of both.
pub fn token_matches(expected: &str, presented: &str) -> bool {
    let expected = Sha256::digest(expected.as_bytes());
    let presented = Sha256::digest(presented.as_bytes());
    bool::from(expected.ct_eq(&presented))
}

#[cfg(test)]
mod tests {
    use super::token_matches;

    #[test]
    fn tokens_match_only_exactly() {
        let token = "idv_0123456789abcdef";
        assert!(token_matches(token, token));
        for other in [
            "",
            "idv_0123456789abcde",
            "idv_0123456789abcdef0",
            "IDV_0123456789abcdef",
        ] {
            assert!(!token_matches(token, other), "{other:?}");
        }
    }
}
