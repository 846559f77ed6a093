//! Who is at the console: login and logout, sessions, CSRF, the client's address and scheme,
//! roles.
//!
//! - A session is a random token in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` when
//!   the request came over HTTPS through a trusted proxy); the database keeps only its SHA-256,
//!   with an idle and an absolute expiry.
//! - Every state-changing request goes through [`Posted`]: logged out → redirect to the login
//!   page; a foreign or missing origin (`Origin`, else `Sec-Fetch-Site`, else `Referer`), or a
//!   missing or wrong synchronizer token →
//!   403, and the handler never runs. The login form has its own token (a cookie it must match),
//!   since there is no session yet.
//! - Failed logins are throttled per account and per client address (`decide::access`); the
//!   message never says whether the account exists.

use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use cookie::{Cookie, SameSite};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::audit::{self, Action};
use super::passwords::{normalize_email, verify_password};
use super::{render_with, ConsoleError};
use crate::clock::now_ms;
use crate::config::random_token;
use crate::decide::access::{Gate, Permission, Role, ThrottleRule};
use crate::state::AppState;
use crate::store::ConsoleSession;

/// The session cookie.
pub const SESSION_COOKIE: &str = "idv_console";
/// The login form's own CSRF cookie (there is no session yet to hold a token).
const LOGIN_COOKIE: &str = "idv_login";
/// A session's `last_seen_at` is written at most this often (not on every page).
const TOUCH_EVERY_MS: i64 = 60_000;

/// Where the request came from, as far as the console can tell.
#[derive(Debug, Clone)]
pub struct Client {
    /// The client's address: the peer's, or the forwarded one when the peer is a trusted proxy.
    pub addr: String,
    /// The request reached the proxy over HTTPS (only a trusted proxy can say so).
    pub https: bool,
}

impl Client {
    fn of(parts: &Parts, state: &AppState) -> Client {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let trusted = |ip: &IpAddr| state.console.trusted_proxies.contains(ip);
        let Some(peer) = peer else {
            return Client {
                addr: "unknown".into(),
                https: false,
            };
        };
        if !trusted(&peer) {
            return Client {
                addr: peer.to_string(),
                https: false,
            };
        }
        // The rightmost address a trusted proxy did not add is the client's.
        let forwarded = header_str(&parts.headers, "x-forwarded-for")
            .into_iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter_map(|a| a.parse::<IpAddr>().ok())
            .rev()
            .find(|ip| !trusted(ip));
        let https = header_str(&parts.headers, "x-forwarded-proto")
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
        Client {
            addr: forwarded.unwrap_or(peer).to_string(),
            https,
        }
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A logged-in operator (the extractor every console page takes).
#[derive(Debug, Clone)]
pub struct Signed {
    pub session: ConsoleSession,
    pub client: Client,
}

/// What every page's layout shows about who is logged in.
#[derive(Debug, Clone)]
pub struct Layout {
    pub email: String,
    pub role: &'static str,
    pub csrf: String,
    /// The tab to highlight.
    pub tab: &'static str,
    pub can_review: bool,
    pub is_admin: bool,
}

impl Signed {
    pub fn email(&self) -> &str {
        &self.session.operator.email
    }

    pub fn role(&self) -> Role {
        self.session.operator.role
    }

    pub fn may(&self, p: Permission) -> bool {
        self.role().may(p)
    }

    /// 403 unless the operator's role allows `p`.
    pub fn require(&self, p: Permission) -> Result<(), ConsoleError> {
        if self.may(p) {
            return Ok(());
        }
        let needed = match p {
            Permission::Read => "viewer",
            Permission::Review => "reviewer",
            Permission::Administer => "admin",
        };
        Err(ConsoleError::forbidden(format!(
            "This needs the {needed} role; you are logged in as {} ({}).",
            self.email(),
            self.role().as_str()
        )))
    }

    pub fn layout(&self, tab: &'static str) -> Layout {
        Layout {
            email: self.email().to_string(),
            role: self.role().as_str(),
            csrf: self.session.csrf_token.clone(),
            tab,
            can_review: self.may(Permission::Review),
            is_admin: self.may(Permission::Administer),
        }
    }

    /// Append an audit entry by this operator.
    pub async fn audit(
        &self,
        state: &AppState,
        action: Action,
        target: Option<&str>,
        reason: Option<&str>,
    ) -> Result<(), ConsoleError> {
        audit::record(
            state,
            Some(self.email()),
            action,
            target,
            reason,
            &self.client,
        )
        .await
    }
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// To the login page, coming back to `next` afterwards.
fn to_login(next: Option<&str>, expired: bool) -> Response {
    let mut url = String::from("/console/login");
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if let Some(n) = next.filter(|n| is_console_path(n) && !n.starts_with("/console/login")) {
        query.append_pair("next", n);
    }
    if expired {
        query.append_pair("expired", "1");
    }
    let query = query.finish();
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query);
    }
    Redirect::to(&url).into_response()
}

/// Only console paths are places to go back to (no open redirect).
fn is_console_path(p: &str) -> bool {
    (p == "/console" || p.starts_with("/console/") || p.starts_with("/console?"))
        && !p.contains("//")
        && !p.contains('\\')
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Signed, Response> {
        let next = (parts.method == axum::http::Method::GET)
            .then(|| parts.uri.path_and_query().map(|p| p.as_str().to_string()))
            .flatten();
        let Some(token) = cookie_value(&parts.headers, SESSION_COOKIE) else {
            return Err(to_login(next.as_deref(), false));
        };
        let hash = token_hash(&token);
        let session = match state.store.console_session(&hash).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(to_login(next.as_deref(), false)),
            Err(e) => return Err(ConsoleError::from(e).into_response()),
        };
        let now = now_ms();
        let idle_ms = state.console.session_idle.as_millis() as i64;
        let expired = now >= session.expires_at_ms || now - session.last_seen_at_ms >= idle_ms;
        if expired || session.operator.disabled {
            if let Err(e) = state.store.delete_console_session(&hash).await {
                return Err(ConsoleError::from(e).into_response());
            }
            return Err(to_login(next.as_deref(), expired));
        }
        if now - session.last_seen_at_ms >= TOUCH_EVERY_MS {
            if let Err(e) = state.store.touch_console_session(&hash, now).await {
                return Err(ConsoleError::from(e).into_response());
            }
        }
        Ok(Signed {
            session,
            client: Client::of(parts, state),
        })
    }
}

/// The origin this request was addressed to, from `Host` and the scheme.
fn own_origin(headers: &HeaderMap, client: &Client) -> Option<String> {
    let host = header_str(headers, "host")?;
    let scheme = if client.https { "https" } else { "http" };
    Some(format!("{scheme}://{host}"))
}

/// The request comes from a console page. `Origin`, when the browser names one, must be this
/// service; with `Referrer-Policy: no-referrer` browsers send `Origin: null` on form posts, so
/// then the browser's own `Sec-Fetch-Site` (which no page script can set) must say
/// `same-origin`; a client that sends neither must send a `Referer` of this service. Anything
/// else is refused.
fn same_origin(headers: &HeaderMap, client: &Client) -> Result<(), ConsoleError> {
    let refused = || {
        ConsoleError::forbidden(
            "This form was not sent from a console page (Origin/Referer check). Nothing was changed.",
        )
    };
    let own = own_origin(headers, client).ok_or_else(refused)?;
    if let Some(origin) = header_str(headers, "origin").filter(|o| *o != "null") {
        return if origin.eq_ignore_ascii_case(&own) {
            Ok(())
        } else {
            Err(refused())
        };
    }
    if let Some(site) = header_str(headers, "sec-fetch-site") {
        return if site == "same-origin" {
            Ok(())
        } else {
            Err(refused())
        };
    }
    match header_str(headers, "referer") {
        Some(r)
            if r.len() > own.len()
                && r[..own.len()].eq_ignore_ascii_case(&own)
                && r[own.len()..].starts_with('/') =>
        {
            Ok(())
        }
        _ => Err(refused()),
    }
}

fn tokens_match(given: Option<&str>, expected: &str) -> bool {
    match given {
        Some(g) if !expected.is_empty() => bool::from(g.as_bytes().ct_eq(expected.as_bytes())),
        _ => false,
    }
}

#[derive(Deserialize)]
struct CsrfField {
    csrf_token: Option<String>,
}

/// A state-changing form from a logged-in operator: same origin, valid CSRF token, then the
/// form itself (`T`). Anything else is refused before the handler runs.
pub struct Posted<T> {
    pub signed: Signed,
    pub form: T,
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for Posted<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Posted<T>, Response> {
        let (mut parts, body) = req.into_parts();
        let signed = Signed::from_request_parts(&mut parts, state).await?;
        same_origin(&parts.headers, &signed.client).map_err(IntoResponse::into_response)?;
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|_| {
                ConsoleError::bad_request("The form could not be read.").into_response()
            })?;
        let csrf: CsrfField = serde_urlencoded::from_bytes(&bytes).map_err(|_| {
            ConsoleError::bad_request("The form could not be read.").into_response()
        })?;
        if !tokens_match(csrf.csrf_token.as_deref(), &signed.session.csrf_token) {
            return Err(ConsoleError::forbidden(
                "The form's security token is missing or stale (reload the page and try again). Nothing was changed.",
            )
            .into_response());
        }
        let form: T = serde_urlencoded::from_bytes(&bytes).map_err(|e| {
            ConsoleError::bad_request(format!("The form is not complete: {e}.")).into_response()
        })?;
        Ok(Posted { signed, form })
    }
}

/// An empty form (buttons that only carry the CSRF token).
#[derive(Debug, Deserialize)]
pub struct NoFields {}

// ---------------------------------------------------------------------- login and logout

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    email: String,
    message: Option<String>,
    expired: bool,
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    expired: Option<String>,
}

fn login_cookie(token: &str, https: bool) -> HeaderValue {
    let cookie = Cookie::build((LOGIN_COOKIE, token.to_string()))
        .path("/console/login")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(https)
        .max_age(cookie::time::Duration::hours(1))
        .build();
    HeaderValue::from_str(&cookie.to_string()).unwrap_or(HeaderValue::from_static(""))
}

fn show_login(
    status: StatusCode,
    client: &Client,
    next: &str,
    email: &str,
    message: Option<String>,
    expired: bool,
) -> Response {
    let token = random_token(32);
    let page = LoginPage {
        csrf: token.clone(),
        next: next.to_string(),
        email: email.to_string(),
        message,
        expired,
    };
    match render_with(status, &page) {
        Ok(mut response) => {
            response
                .headers_mut()
                .append(header::SET_COOKIE, login_cookie(&token, client.https));
            response
        }
        Err(e) => e.into_response(),
    }
}

/// `GET /console/login`: the form (or straight to the console when already logged in).
pub async fn login_page(
    State(state): State<AppState>,
    Query(q): Query<LoginQuery>,
    request: Request,
) -> Response {
    let (mut parts, _) = request.into_parts();
    if Signed::from_request_parts(&mut parts, &state).await.is_ok() {
        return Redirect::to("/console").into_response();
    }
    let client = Client::of(&parts, &state);
    let next = q.next.filter(|n| is_console_path(n)).unwrap_or_default();
    show_login(
        StatusCode::OK,
        &client,
        &next,
        "",
        None,
        q.expired.is_some(),
    )
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    csrf_token: Option<String>,
    #[serde(default)]
    next: String,
}

/// The one message for a wrong email, a wrong password or a disabled account.
const WRONG: &str = "Wrong email or password.";

/// A hash to verify against when the account does not exist, so that answering takes as long
/// either way.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| super::passwords::hash_password(&random_token(24)).unwrap_or_default())
}

fn throttle_rule(state: &AppState) -> ThrottleRule {
    ThrottleRule {
        slow_after: state.console.login_slow_after,
        lock_after: state.console.login_lock_after,
        lock_ms: state.console.login_lock.as_millis() as i64,
    }
}

/// `POST /console/login`.
pub async fn login(State(state): State<AppState>, request: Request) -> Response {
    match try_login(state, request).await {
        Ok(r) | Err(r) => r,
    }
}

async fn try_login(state: AppState, request: Request) -> Result<Response, Response> {
    let (parts, body) = request.into_parts();
    let client = Client::of(&parts, &state);
    same_origin(&parts.headers, &client).map_err(IntoResponse::into_response)?;
    let cookie_token = cookie_value(&parts.headers, LOGIN_COOKIE);
    let bytes = Bytes::from_request(Request::from_parts(parts, body), &state)
        .await
        .map_err(|_| ConsoleError::bad_request("The form could not be read.").into_response())?;
    let form: LoginForm = serde_urlencoded::from_bytes(&bytes).map_err(|_| {
        ConsoleError::bad_request("The login form needs an email and a password.").into_response()
    })?;
    let token_ok = cookie_token
        .as_deref()
        .is_some_and(|c| tokens_match(form.csrf_token.as_deref(), c));
    if !token_ok {
        return Err(ConsoleError::forbidden(
            "The login form's security token is missing or stale: reload the login page and try again.",
        )
        .into_response());
    }
    let next = Some(form.next.as_str())
        .filter(|n| is_console_path(n))
        .unwrap_or("/console")
        .to_string();
    let email = normalize_email(&form.email);
    let store = &state.store;
    let now = now_ms();
    let rule = throttle_rule(&state);
    let keys = [
        format!("account:{email}"),
        format!("address:{}", client.addr),
    ];
    let mut throttles = Vec::with_capacity(2);
    for key in &keys {
        throttles.push(store.login_throttle(key).await.map_err(err)?);
    }
    let gate = throttles
        .iter()
        .map(|t| rule.gate(*t, now))
        .max_by_key(|g| match g {
            Gate::Open => 0,
            Gate::Wait { until_ms } => *until_ms,
            Gate::Locked { until_ms } => *until_ms + i64::MAX / 2,
        })
        .unwrap_or(Gate::Open);
    let refuse = |message: String| {
        show_login(
            StatusCode::TOO_MANY_REQUESTS,
            &client,
            &next,
            &email,
            Some(message),
            false,
        )
    };
    match gate {
        Gate::Open => {}
        Gate::Wait { until_ms } => {
            return Err(refuse(format!(
                "Too many failed attempts: wait {} s before trying again.",
                (until_ms - now + 999) / 1000
            )))
        }
        Gate::Locked { until_ms } => {
            return Err(refuse(format!(
                "Too many failed attempts: logins from here or for this account are locked for {}.",
                super::format::duration_ms(until_ms - now)
            )))
        }
    }

    let operator = store.operator_by_email(&email).await.map_err(err)?;
    let verified = match &operator {
        Some(op) if !op.disabled => verify_password(&op.password_hash, &form.password),
        _ => {
            let _ = verify_password(dummy_hash(), &form.password);
            false
        }
    };
    let Some(operator) = operator.filter(|_| verified) else {
        for (key, t) in keys.iter().zip(&throttles) {
            store
                .put_login_throttle(key, &rule.failed(*t, now))
                .await
                .map_err(err)?;
        }
        let known = store.operator_by_email(&email).await.map_err(err)?;
        let why = match &known {
            Some(op) if op.disabled => "account disabled",
            Some(_) => "wrong password",
            None => "unknown account",
        };
        // A typed email that is no account is not written down: it may be a password typed
        // into the wrong field.
        audit::record(
            &state,
            known.as_ref().map(|op| op.email.as_str()),
            Action::LoginFailed,
            None,
            Some(why),
            &client,
        )
        .await
        .map_err(IntoResponse::into_response)?;
        return Err(show_login(
            StatusCode::UNAUTHORIZED,
            &client,
            &next,
            &email,
            Some(WRONG.to_string()),
            false,
        ));
    };

    store.clear_login_throttle(&keys[0]).await.map_err(err)?;
    let idle_ms = state.console.session_idle.as_millis() as i64;
    let max_ms = state.console.session_max.as_millis() as i64;
    store
        .delete_stale_console_sessions(now, now - idle_ms)
        .await
        .map_err(err)?;
    let token = random_token(43);
    store
        .insert_console_session(
            &token_hash(&token),
            operator.id,
            &random_token(32),
            now,
            now + max_ms,
        )
        .await
        .map_err(err)?;
    audit::record(
        &state,
        Some(&operator.email),
        Action::Login,
        None,
        None,
        &client,
    )
    .await
    .map_err(IntoResponse::into_response)?;
    let session_cookie = Cookie::build((SESSION_COOKIE, token))
        .path("/console")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(client.https)
        .max_age(cookie::time::Duration::milliseconds(max_ms))
        .build();
    let mut response = Redirect::to(&next).into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&session_cookie.to_string()) {
        h.append(header::SET_COOKIE, v);
    }
    h.append(
        header::SET_COOKIE,
        clear_cookie(LOGIN_COOKIE, "/console/login"),
    );
    Ok(response)
}

fn err(e: crate::store::StoreError) -> Response {
    ConsoleError::from(e).into_response()
}

fn clear_cookie(name: &'static str, path: &'static str) -> HeaderValue {
    let cookie = Cookie::build((name, ""))
        .path(path)
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(cookie::time::Duration::ZERO)
        .build();
    HeaderValue::from_str(&cookie.to_string()).unwrap_or(HeaderValue::from_static(""))
}

/// `POST /console/logout`.
pub async fn logout(State(state): State<AppState>, posted: Posted<NoFields>) -> Response {
    let signed = posted.signed;
    let result = async {
        state
            .store
            .delete_console_session(&signed.session.token_hash)
            .await?;
        Ok::<_, crate::store::StoreError>(())
    }
    .await;
    if let Err(e) = result {
        return err(e);
    }
    if let Err(e) = signed.audit(&state, Action::Logout, None, None).await {
        return e.into_response();
    }
    let mut response = Redirect::to("/console/login").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, clear_cookie(SESSION_COOKIE, "/console"));
    response
}
