//! The operator console under `/console`: server-rendered HTML for the people who handle
//! outcomes — an overview, the review queue with claims, one page per user (the case), users,
//! reactions, the audit log and operators. Templates (`templates/console/`) are compiled into
//! the binary by askama, which checks them at build time and escapes every value; the one
//! stylesheet is served from the binary; no page needs JavaScript.
//!
//! One file per page, like `api/`: [`auth`] (login, sessions, CSRF, roles — every other page
//! goes through its extractors), `overview.rs`, `queue.rs` (queue, claim, release),
//! `case.rs` (one user, decide, notes; `evidence.rs` fetches the report and images live from
//! Stripe, `why.rs` says why the user is in their state), `users.rs`, `reactions.rs`,
//! `audit.rs` (the page, and [`audit::record`] which every action calls), `operators.rs`.
//! Rules (roles, the login throttle) live in `decide::access`; storage in `store/console.rs`.

pub mod audit;
pub mod auth;
mod case;
mod evidence;
mod format;
mod operators;
mod overview;
pub mod passwords;
mod queue;
mod reactions;
mod users;
mod why;

use askama::Template;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::api::ApiError;
use crate::state::AppState;
use crate::store::StoreError;

pub use auth::{Layout, Posted, Signed};

/// Every console route. `img_origin` is where images may come from (the Stripe file host, or
/// the emulator in development), `None` when the console shows no images.
pub fn routes(img_origin: Option<String>) -> Router<AppState> {
    let csp = content_security_policy(img_origin.as_deref());
    Router::new()
        .route("/console", get(overview::page))
        .route("/console/", get(|| async { Redirect::to("/console") }))
        .route("/console/login", get(auth::login_page).post(auth::login))
        .route("/console/logout", post(auth::logout))
        .route("/console/queue", get(queue::page))
        .route("/console/queue/claim", post(queue::claim_next))
        .route("/console/users", get(users::page))
        .route("/console/users/{user_ref}", get(case::page))
        .route("/console/users/{user_ref}/claim", post(queue::claim))
        .route("/console/users/{user_ref}/release", post(queue::release))
        .route("/console/users/{user_ref}/decide", post(case::decide))
        .route("/console/users/{user_ref}/notes", post(case::add_note))
        .route("/console/reactions", get(reactions::page))
        .route("/console/reactions/{id}", get(reactions::detail))
        .route(
            "/console/reactions/targets/enable",
            post(reactions::enable_target),
        )
        .route(
            "/console/reactions/{id}/redeliver",
            post(reactions::redeliver),
        )
        .route("/console/audit", get(audit::page))
        .route(
            "/console/operators",
            get(operators::page).post(operators::add),
        )
        .route(
            "/console/operators/{id}/access",
            post(operators::set_access),
        )
        .route("/console/static/console.css", get(stylesheet))
        .route(
            "/console/{*rest}",
            get(|| async { ConsoleError::not_found() }),
        )
        .layer(axum::middleware::from_fn(
            move |request: Request, next: Next| security_headers(csp.clone(), request, next),
        ))
}

/// Where the case page's images come from: Stripe's file host, or the origin of another API
/// base (the emulator serves its FileLinks itself). `None` when the console shows no images
/// (turned off, no Stripe key, or a secret key that may not read them).
pub fn image_origin(config: &crate::config::Config) -> Option<String> {
    let stripe = config.stripe.as_ref()?;
    if !config.console.images || !stripe.api_key.expose().starts_with("rk_") {
        return None;
    }
    if stripe.api_base == crate::stripe_api::DEFAULT_API_BASE {
        return Some(STRIPE_FILES_ORIGIN.to_string());
    }
    let url = url::Url::parse(&stripe.api_base).ok()?;
    Some(url.origin().ascii_serialization())
}

/// Where Stripe's FileLinks point.
pub const STRIPE_FILES_ORIGIN: &str = "https://files.stripe.com";

/// `default-src 'self'` and nothing inline; images also from `img_origin`.
fn content_security_policy(img_origin: Option<&str>) -> HeaderValue {
    let img = match img_origin {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_string(),
    };
    let policy = format!(
        "default-src 'self'; img-src {img}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static("default-src 'self'"))
}

/// The headers every console answer carries. Pages show personal data, so nothing is cached
/// unless the handler said otherwise (the stylesheet).
async fn security_headers(csp: HeaderValue, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, csp);
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../templates/console/console.css"),
    )
        .into_response()
}

/// Render a page.
fn render(page: &impl Template) -> Result<Response, ConsoleError> {
    render_with(StatusCode::OK, page)
}

fn render_with(status: StatusCode, page: &impl Template) -> Result<Response, ConsoleError> {
    match page.render() {
        Ok(html) => Ok((status, Html(html)).into_response()),
        Err(e) => {
            tracing::error!(error = %e, "a console template failed to render");
            Err(ConsoleError::internal())
        }
    }
}

/// An error page: status, a title and a sentence for the person reading it.
#[derive(Debug, Clone)]
pub struct ConsoleError {
    pub status: StatusCode,
    pub title: &'static str,
    pub message: String,
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

impl ConsoleError {
    pub fn new(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
        ConsoleError {
            status,
            title,
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ConsoleError::new(StatusCode::FORBIDDEN, "Not allowed", message)
    }

    pub fn not_found() -> Self {
        ConsoleError::new(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such page in the console.",
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ConsoleError::new(StatusCode::BAD_REQUEST, "Not accepted", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ConsoleError::new(StatusCode::CONFLICT, "Not possible now", message)
    }

    pub fn internal() -> Self {
        ConsoleError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "The console could not show this page; the service log has the details.",
        )
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let page = ErrorPage {
            title: self.title,
            message: &self.message,
        };
        match page.render() {
            Ok(html) => (self.status, Html(html)).into_response(),
            Err(_) => (self.status, self.message).into_response(),
        }
    }
}

/// Storage trouble: 503, details in the log only.
impl From<StoreError> for ConsoleError {
    fn from(e: StoreError) -> ConsoleError {
        tracing::error!(error = %e, "storage error in the console");
        ConsoleError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Storage unavailable",
            "The database did not answer. Nothing was changed; try again in a moment.",
        )
    }
}

/// The API's answers (the review path is shared) shown as a page with the same status.
impl From<ApiError> for ConsoleError {
    fn from(e: ApiError) -> ConsoleError {
        let title = match e.status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::CONFLICT => "Not possible now",
            s if s.is_client_error() => "Not accepted",
            _ => "Something went wrong",
        };
        ConsoleError::new(e.status, title, e.message.into_owned())
    }
}

/// One choice of a `<select>`.
pub struct Opt {
    pub value: String,
    pub selected: bool,
}

/// The choices, with `current` selected.
fn options<'a>(all: impl IntoIterator<Item = &'a str>, current: &str) -> Vec<Opt> {
    all.into_iter()
        .map(|v| Opt {
            value: v.to_string(),
            selected: v == current,
        })
        .collect()
}

/// A 303 to a console page (after a form was handled).
fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
}

/// `/console/users/{ref}` with the ref as one path segment.
pub fn case_path(user_ref: &str) -> String {
    format!("/console/users/{}", path_segment(user_ref))
}

/// Percent-encode a value for one path segment.
pub fn path_segment(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
