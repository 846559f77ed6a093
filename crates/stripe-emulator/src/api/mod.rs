//! The `/v1` API: authentication, parameter decoding, idempotency and routing.
//! Resource handlers live in the submodules and only see decoded [`Params`].

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use base64::Engine;
use serde_json::Value;

use crate::clock::now_ms;
use crate::errors::ApiError;
use crate::form::{decode, Params};
use crate::lifecycle::Cause;
use crate::server::RequestId;
use crate::store::IdempotentResponse;
use crate::{Emulator, WriteGuard};

mod endpoints;
mod events;
pub(crate) mod expand;
pub(crate) mod files;
pub(crate) mod list;
mod reports;
mod sessions;
mod test_helpers;

/// Which kind of test key authenticated the request. Restricted keys (`rk_test_…`) can do all
/// a secret key can, and also read sensitive verification results (as a restricted key with
/// the Identity permissions Stripe's guide lists would).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Secret,
    Restricted,
}

/// What a handler knows about the request besides its parameters.
pub(crate) struct Ctx<'a> {
    pub emu: &'a Emulator,
    pub key: KeyKind,
    pub cause: Cause,
    /// Held for every POST and DELETE (see [`Emulator::write`]).
    pub write: Option<WriteGuard<'a>>,
}

impl Ctx<'_> {
    /// The write guard; every mutating route runs with it held.
    pub fn w(&self) -> Result<&WriteGuard<'_>, ApiError> {
        self.write
            .as_ref()
            .ok_or_else(|| ApiError::internal("write lock not held"))
    }
}

pub(crate) type ApiResult = Result<Value, ApiError>;

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let text = serde_json::to_string_pretty(body).unwrap_or_else(|_| "{}".into());
    let mut resp = (status, text).into_response();
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    resp
}

pub(crate) fn error_response(e: &ApiError) -> Response {
    json_response(e.status, &e.body())
}

const NO_KEY: &str = "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.";

/// stripe-mock's rule, limited to test mode: `sk_test_…` or `rk_test_…` with a non-empty rest.
fn valid_key(key: &str) -> bool {
    ["sk_test_", "rk_test_"].iter().any(|p| {
        key.strip_prefix(p)
            .is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace))
    })
}

/// Only the prefix and the last four characters, never the whole key.
fn masked(key: &str) -> String {
    let prefix: String = key.chars().take(8).collect();
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{prefix}****{tail}")
}

pub(crate) fn authenticate(headers: &HeaderMap) -> Result<KeyKind, ApiError> {
    let unauthorized =
        |msg: String| ApiError::new(StatusCode::UNAUTHORIZED, "invalid_request_error", msg);
    let Some(raw) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return Err(unauthorized(NO_KEY.into()));
    };
    let raw = raw.trim();
    let key = if let Some(k) = raw
        .strip_prefix("Bearer ")
        .or_else(|| raw.strip_prefix("bearer "))
    {
        k.trim().to_string()
    } else if let Some(b) = raw
        .strip_prefix("Basic ")
        .or_else(|| raw.strip_prefix("basic "))
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .ok()
            .and_then(|d| String::from_utf8(d).ok())
            .unwrap_or_default();
        decoded.split(':').next().unwrap_or_default().to_string()
    } else {
        return Err(unauthorized(
            "Invalid API Key provided: the Authorization header must use Bearer or Basic auth."
                .into(),
        ));
    };
    if key.is_empty() {
        return Err(unauthorized(NO_KEY.into()));
    }
    if !valid_key(&key) {
        return Err(unauthorized(format!(
            "Invalid API Key provided: {}",
            masked(&key)
        )));
    }
    Ok(if key.starts_with("rk_") {
        KeyKind::Restricted
    } else {
        KeyKind::Secret
    })
}

/// What identifies a request for idempotency: a digest, so that the parameters (metadata,
/// personal details) are never kept in the idempotency table.
fn fingerprint(method: &Method, path: &str, params: &Params) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(format!("{method} {path} {}", params.as_value()).as_bytes());
    hex::encode(h.finalize())
}

/// Entry point for everything under `/v1`.
pub(crate) async fn handle(
    State(emu): State<Arc<Emulator>>,
    Extension(rid): Extension<RequestId>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match handle_inner(&emu, &rid.0, &method, &uri, &headers, &body).await {
        Ok(resp) => resp,
        Err(e) => error_response(&e),
    }
}

async fn handle_inner(
    emu: &Emulator,
    request_id: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let key = authenticate(headers)?;
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").as_bytes();
    let params = if *method == Method::POST {
        // Query-string parameters on a POST are honoured too (curl users do that).
        let mut merged = decode(query)?;
        if let (Value::Object(m), Value::Object(b)) = (&mut merged, decode(body)?) {
            m.extend(b);
        }
        merged
    } else {
        decode(query)?
    };
    let params = Params::new(params);
    let idem_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .filter(|k| !k.is_empty());
    if let Some(k) = &idem_key {
        if k.len() > 255 {
            return Err(ApiError::invalid_request(
                "Idempotency-Key must be at most 255 characters long.",
            ));
        }
    }
    let mutating = *method == Method::POST || *method == Method::DELETE;
    let write = if mutating {
        Some(emu.write().await)
    } else {
        None
    };
    let cause = Cause {
        request_id: Some(request_id.to_string()),
        idempotency_key: if *method == Method::POST {
            idem_key.clone()
        } else {
            None
        },
    };

    // Idempotency applies to POSTs only, as at Stripe.
    let idem = if *method == Method::POST {
        idem_key
    } else {
        None
    };
    let fingerprint = fingerprint(method, &path, &params);
    if let Some(key) = &idem {
        if let Some(stored) = emu.store.idempotent_get(key).await? {
            if stored.fingerprint != fingerprint {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "idempotency_error",
                    format!("Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."),
                ));
            }
            let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
            let mut resp = Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Body::from(stored.body))
                .map_err(|e| ApiError::internal(e.to_string()))?;
            resp.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            if let Ok(v) = HeaderValue::from_str(key) {
                resp.headers_mut().insert("idempotency-key", v);
            }
            return Ok(resp);
        }
    }

    let mut ctx = Ctx {
        emu,
        key,
        cause,
        write,
    };
    let segs: Vec<&str> = path
        .trim_start_matches("/v1/")
        .trim_end_matches('/')
        .split('/')
        .collect();
    let result = route(&mut ctx, method, &path, &segs, &params).await;
    let (status, body) = match &result {
        Ok(v) => (StatusCode::OK, v.clone()),
        Err(e) => (e.status, e.body()),
    };
    if let Some(key) = &idem {
        // Like Stripe, remember results but not requests that failed validation
        // (those may be retried with the same key once fixed).
        if status.is_success() || status.is_server_error() {
            let text = serde_json::to_string_pretty(&body).unwrap_or_default();
            emu.store
                .idempotent_put(
                    key,
                    &IdempotentResponse {
                        fingerprint,
                        status: status.as_u16(),
                        body: text,
                    },
                    now_ms(),
                )
                .await?;
        }
    }
    let mut resp = json_response(status, &body);
    if let Some(key) = &idem {
        if let Ok(v) = HeaderValue::from_str(key) {
            resp.headers_mut().insert("idempotency-key", v);
        }
    }
    Ok(resp)
}

async fn route(
    ctx: &mut Ctx<'_>,
    method: &Method,
    path: &str,
    segs: &[&str],
    p: &Params,
) -> ApiResult {
    let m = method.as_str();
    match (m, segs) {
        ("POST", ["identity", "verification_sessions"]) => sessions::create(ctx, p).await,
        ("GET", ["identity", "verification_sessions"]) => sessions::list(ctx, p).await,
        ("GET", ["identity", "verification_sessions", id]) => sessions::retrieve(ctx, id, p).await,
        ("POST", ["identity", "verification_sessions", id]) => sessions::update(ctx, id, p).await,
        ("POST", ["identity", "verification_sessions", id, "cancel"]) => {
            sessions::cancel(ctx, id, p).await
        }
        ("POST", ["identity", "verification_sessions", id, "redact"]) => {
            sessions::redact(ctx, id, p).await
        }
        ("GET", ["identity", "verification_reports"]) => reports::list(ctx, p).await,
        ("GET", ["identity", "verification_reports", id]) => reports::retrieve(ctx, id, p).await,
        ("POST", ["webhook_endpoints"]) => endpoints::create(ctx, p).await,
        ("GET", ["webhook_endpoints"]) => endpoints::list(ctx, p).await,
        ("GET", ["webhook_endpoints", id]) => endpoints::retrieve(ctx, id, p).await,
        ("POST", ["webhook_endpoints", id]) => endpoints::update(ctx, id, p).await,
        ("DELETE", ["webhook_endpoints", id]) => endpoints::delete(ctx, id).await,
        ("GET", ["events"]) => events::list(ctx, p).await,
        ("GET", ["events", id]) => events::retrieve(ctx, id, p).await,
        // What `stripe events resend` calls.
        ("POST", ["events", id, "retry"]) => events::retry(ctx, id, p).await,
        ("GET", ["files"]) => files::list(ctx, p).await,
        ("GET", ["files", id]) => files::retrieve(ctx, id, p).await,
        ("POST", ["file_links"]) => files::create_link(ctx, p).await,
        ("GET", ["file_links"]) => files::list_links(ctx, p).await,
        ("GET", ["file_links", id]) => files::retrieve_link(ctx, id, p).await,
        ("POST", ["file_links", id]) => files::update_link(ctx, id, p).await,
        ("POST", ["test_helpers", "identity", "verification_sessions", id, action]) => {
            test_helpers::drive(ctx, id, action, p).await
        }
        _ => Err(ApiError::unrecognized_url(m, path)),
    }
}
