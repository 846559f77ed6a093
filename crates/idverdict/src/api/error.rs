//! Every error the service answers over HTTP, in one shape:
//! `{"error": {"code": "…", "message": "…"}}` with the status that fits (4xx for the
//! caller's mistakes, 5xx only for real trouble). Handlers return `Result<_, ApiError>` and
//! use `?`; the extractors here turn axum's own rejections (body, path, query) into the same
//! shape, and the router's fallbacks answer unknown routes and methods with it.

use std::borrow::Cow;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::store::StoreError;
use crate::stripe_api::StripeApiError;

/// An error answer: status, a stable machine-readable `code`, a message for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub message: Cow<'static, str>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> ApiError {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn bad_request(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn conflict(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }

    pub fn unavailable(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// No route has this path (the router's fallback).
    pub fn no_route() -> ApiError {
        ApiError::not_found("not_found", "no such route")
    }

    /// The path exists, the method does not (the router's fallback for 405).
    pub fn method_not_allowed() -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not accept that method",
        )
    }

    /// The body is (or is declared) larger than the configured limit.
    pub fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than the limit of {limit} bytes"),
        )
    }

    /// The request took longer than the configured limit.
    pub fn timed_out() -> ApiError {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request took too long and was abandoned",
        )
    }

    /// A handler panicked: a bug, answered without detail (the log has it).
    pub fn internal() -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "an internal error occurred; see the service log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

/// Storage trouble is ours, not the caller's: 503, details in the log only.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        tracing::error!(error = %e, "storage error in the API");
        ApiError::unavailable("storage_unavailable", "storage is unavailable; retry later")
    }
}

/// Stripe's answer, translated for the app: its own mistakes are 4xx, Stripe's trouble 502.
impl From<StripeApiError> for ApiError {
    fn from(e: StripeApiError) -> ApiError {
        let StripeApiError::Api {
            status,
            kind,
            code,
            message,
            param,
        } = &e
        else {
            tracing::error!(error = %e, "Stripe API call failed");
            return ApiError::new(
                StatusCode::BAD_GATEWAY,
                "stripe_unavailable",
                "the Stripe API could not be reached; retry later",
            );
        };
        if kind == "idempotency_error" {
            return ApiError::conflict(
                "request_conflict",
                "another request for this user's verification attempt used different parameters; retry with the same body",
            );
        }
        let text = message
            .clone()
            .unwrap_or_else(|| "Stripe refused the request".into());
        let text = match param {
            Some(p) => format!("{text} (parameter {p})"),
            None => text,
        };
        match (*status, code.as_deref()) {
            (404, _) => ApiError::not_found("session_not_found", text),
            (400, Some("unexpected_state")) | (409, _) => {
                ApiError::conflict("invalid_session_state", text)
            }
            (400, _) => ApiError::bad_request("stripe_invalid_request", text),
            _ => {
                tracing::error!(error = %e, "Stripe API call failed");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "stripe_error",
                    "the Stripe API refused the call; see the service log",
                )
            }
        }
    }
}

/// A body refused while it was read: 413 when it is over the limit, else 400 with `code`.
fn body_refused(status: StatusCode, text: String, code: &'static str) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(status, "payload_too_large", text)
    } else {
        ApiError::bad_request(code, text)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        body_refused(rejection.status(), rejection.body_text(), "invalid_body")
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> ApiError {
        body_refused(rejection.status(), rejection.body_text(), "unreadable_body")
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        ApiError::bad_request("invalid_path", rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::bad_request("invalid_query", rejection.body_text())
    }
}

/// 400 `invalid_text` for a JSON body with a `\u0000` in a string: PostgreSQL cannot store a
/// NUL in text, and no field of this API may hold one (the answer is the same on SQLite).
fn refuse_nul(json: &[u8]) -> Result<(), ApiError> {
    // Backslashes occur only inside strings, each starting an escape of two or six bytes.
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'\\' {
            if json.get(i + 1..i + 6) == Some(b"u0000".as_slice()) {
                return Err(ApiError::bad_request(
                    "invalid_text",
                    "the JSON body contains a NUL character (\\u0000), which no field may hold",
                ));
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// A JSON body (`Content-Type: application/json`); rejections are [`ApiError`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state).await?;
        refuse_nul(&bytes)?;
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(value))
    }
}

/// A JSON body that may be left out: an empty (or blank) body is `T::default()`, and no
/// `Content-Type` is required. What the body must be is said in the error, with serde's
/// reason (which names the position or field, never the content).
#[derive(Debug, Clone, Copy, Default)]
pub struct OptionalJson<T>(pub T);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Default,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let body = Bytes::from_request(req, state).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        refuse_nul(&body)?;
        serde_json::from_slice(&body)
            .map(OptionalJson)
            .map_err(|e| {
                ApiError::bad_request(
                    "invalid_body",
                    format!("the JSON body is not what this route takes: {e}"),
                )
            })
    }
}

/// Path parameters; rejections (e.g. a segment that is not UTF-8) are [`ApiError`]s.
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        // A NUL (`%00`) is in no identifier, and PostgreSQL cannot even compare with it: a
        // lookup would fail as storage trouble (503) instead of saying what is wrong.
        if let Ok(raw) = RawPathParams::from_request_parts(parts, state).await {
            if let Some((name, _)) = raw.iter().find(|(_, value)| value.contains('\0')) {
                return Err(ApiError::bad_request(
                    "invalid_identifier",
                    format!("the path parameter `{name}` contains a NUL character"),
                ));
            }
        }
        let Path(value) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(ApiPath(value))
    }
}

/// Query parameters; rejections (e.g. `?limit=abc`) are [`ApiError`]s.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        // A NUL can only arrive percent-encoded; no parameter may hold one (see `ApiPath`).
        if parts.uri.query().is_some_and(|q| q.contains("%00")) {
            return Err(ApiError::bad_request(
                "invalid_query",
                "a query parameter contains a NUL character",
            ));
        }
        let Query(value) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(ApiQuery(value))
    }
}
