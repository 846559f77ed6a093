//! The HTTP surface: `/v1/…` (the Stripe API), `/files/links/…` (what FileLink URLs serve),
//! `/verify/{id}` (the hosted-flow stand-in), `/_emulator/…` (emulator-only tools), and the
//! `Request-Id` header that every response carries.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{any, get, post};
use axum::Router;

use crate::api::{error_response, files, handle};
use crate::errors::ApiError;
use crate::{admin, hosted_page, ids, Emulator};

/// The `req_…` id of the current request, shared with handlers so that events
/// can name the request that caused them.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

async fn request_id(mut req: Request, next: Next) -> Response {
    let id = ids::request_id();
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("request-id", v);
    }
    resp
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    error_response(&ApiError::unrecognized_url(method.as_str(), uri.path()))
}

pub fn router(emu: Arc<Emulator>) -> Router {
    Router::new()
        .route("/v1/{*rest}", any(handle))
        // Binary answers, outside the JSON API handler.
        .route(
            "/v1/files/{id}/contents",
            get(files::contents).fallback(not_found),
        )
        .route(
            "/files/links/{id}/{token}",
            get(files::serve_link).fallback(not_found),
        )
        .route(
            "/verify/{id}",
            get(hosted_page::show).post(hosted_page::submit),
        )
        .route("/", get(admin::index))
        .route("/_emulator", get(admin::index))
        .route("/_emulator/deliveries", get(admin::deliveries_json))
        .route("/_emulator/events/{id}/resend", post(admin::resend))
        .route(
            "/_emulator/webhook_endpoints/{id}/roll_secret",
            post(admin::roll_secret),
        )
        .route(
            "/_emulator/health",
            get(|| async { (StatusCode::OK, "ok") }),
        )
        .fallback(not_found)
        .layer(middleware::from_fn(request_id))
        .with_state(emu)
}
