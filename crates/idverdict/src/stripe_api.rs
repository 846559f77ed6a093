//! A small typed client for the part of the Stripe API idverdict calls: Identity
//! VerificationSessions (create, retrieve, cancel, redact, list), the events list used by
//! reconciliation, and for the console verification reports and FileLinks. It talks to real
//! Stripe or to the emulator (`STRIPE_API_BASE`), which implements the same API.
//!
//! Conventions it follows, because Stripe's own SDKs do:
//! - form bodies with bracketed keys (`metadata[k]=v`, `options[document][allowed_types][]=…`);
//! - an `Idempotency-Key` on every POST (a generated one when the caller has none), so a retried
//!   POST can never act twice;
//! - retries on connection errors, 409, 429 and 5xx with exponential backoff and jitter, unless
//!   Stripe says otherwise with `Stripe-Should-Retry`;
//! - the secret key is sent as a bearer token and never logged (`Debug` redacts it).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use rand::Rng;
use serde::Deserialize;
use stripe_webhook::{Event, VerificationSession};

/// Every VerificationSession event type, as a `type` filter of `GET /v1/events`.
pub const IDENTITY_EVENT_TYPES: &str = "identity.verification_session.*";
/// Stripe's page size limit; bigger pages mean fewer round trips while catching up.
const PAGE_LIMIT: &str = "100";

/// Stripe keeps events for 30 days; asking for more is pointless.
pub const STRIPE_EVENT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// What the client needs (the key, the base URL, the reconciliation schedule): loaded with
/// the rest of the configuration, from `[stripe]` or `STRIPE_API_KEY`/`STRIPE_API_BASE`.
pub use crate::config::stripe::DEFAULT_API_BASE;
pub use crate::config::{StripeKey, StripeSettings};

/// An error from a Stripe API call.
#[derive(Debug, thiserror::Error)]
pub enum StripeApiError {
    /// Stripe answered with an error object (`{"error": {"type", "code", "message", "param"}}`).
    #[error("Stripe API error (HTTP {status}, {kind}{}): {}", code.as_deref().map(|c| format!(", {c}")).unwrap_or_default(), message.as_deref().unwrap_or("no message"))]
    Api {
        status: u16,
        /// `type`: `invalid_request_error`, `api_error`, `idempotency_error`, …
        kind: String,
        code: Option<String>,
        message: Option<String>,
        param: Option<String>,
    },
    /// No answer: connection refused, reset, timed out.
    #[error("cannot reach the Stripe API: {0}")]
    Transport(#[source] reqwest::Error),
    /// An answer that is not what the API documents.
    #[error("unexpected answer from the Stripe API (HTTP {status}): {reason}")]
    Decode { status: u16, reason: String },
    #[error("cannot build the Stripe API client: {0}")]
    Client(#[source] reqwest::Error),
}

impl StripeApiError {
    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            StripeApiError::Api { status, .. } | StripeApiError::Decode { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }

    /// Stripe's error `code` (e.g. `resource_missing`).
    pub fn code(&self) -> Option<&str> {
        match self {
            StripeApiError::Api { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

/// `options[document]` of a new session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentOptions {
    /// `driving_license`, `id_card`, `passport`; empty = Stripe's default (all).
    pub allowed_types: Vec<String>,
    pub require_id_number: Option<bool>,
    pub require_live_capture: Option<bool>,
    pub require_matching_selfie: Option<bool>,
}

/// Parameters of `POST /v1/identity/verification_sessions`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CreateSession {
    /// `document` (the default when `None`) or `id_number`.
    pub session_type: Option<String>,
    pub client_reference_id: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub return_url: Option<String>,
    /// `provided_details[email]`: personal data, redacted from `Debug`.
    pub provided_email: Option<String>,
    pub document: Option<DocumentOptions>,
}

impl fmt::Debug for CreateSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateSession")
            .field("session_type", &self.session_type)
            .field("client_reference_id", &self.client_reference_id)
            .field("metadata.keys", &self.metadata.keys().collect::<Vec<_>>())
            .field("return_url", &self.return_url.as_ref().map(|_| "[set]"))
            .field(
                "provided_email",
                &self.provided_email.as_ref().map(|_| "[redacted]"),
            )
            .field("document", &self.document)
            .finish()
    }
}

impl CreateSession {
    /// The form fields in Stripe's bracket syntax.
    pub fn form(&self) -> Vec<(String, String)> {
        let mut form = vec![(
            "type".to_string(),
            self.session_type
                .clone()
                .unwrap_or_else(|| "document".to_string()),
        )];
        if let Some(r) = &self.client_reference_id {
            form.push(("client_reference_id".into(), r.clone()));
        }
        for (k, v) in &self.metadata {
            form.push((format!("metadata[{k}]"), v.clone()));
        }
        if let Some(u) = &self.return_url {
            form.push(("return_url".into(), u.clone()));
        }
        if let Some(e) = &self.provided_email {
            form.push(("provided_details[email]".into(), e.clone()));
        }
        if let Some(d) = &self.document {
            for t in &d.allowed_types {
                form.push(("options[document][allowed_types][]".into(), t.clone()));
            }
            let flags = [
                ("require_id_number", d.require_id_number),
                ("require_live_capture", d.require_live_capture),
                ("require_matching_selfie", d.require_matching_selfie),
            ];
            for (name, value) in flags {
                if let Some(v) = value {
                    form.push((format!("options[document][{name}]"), v.to_string()));
                }
            }
        }
        form
    }
}

/// A verification report, as far as the console shows it: per check its status and error,
/// the document's type and issuing country, and the ids of the images.
#[derive(Debug, Clone, Deserialize)]
pub struct VerificationReport {
    pub id: String,
    pub created: i64,
    #[serde(rename = "type", default)]
    pub report_type: Option<String>,
    #[serde(default)]
    pub document: Option<DocumentCheck>,
    #[serde(default)]
    pub id_number: Option<IdNumberCheck>,
    #[serde(default)]
    pub selfie: Option<SelfieCheck>,
    #[serde(default)]
    pub email: Option<BasicCheck>,
    #[serde(default)]
    pub phone: Option<BasicCheck>,
}

/// A failed check's error.
#[derive(Debug, Clone, Deserialize)]
pub struct CheckError {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DocumentCheck {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub error: Option<CheckError>,
    #[serde(rename = "type", default)]
    pub document_type: Option<String>,
    #[serde(default)]
    pub issuing_country: Option<String>,
    /// File ids of the front and back images.
    #[serde(default)]
    pub files: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IdNumberCheck {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub error: Option<CheckError>,
    #[serde(default)]
    pub id_number_type: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SelfieCheck {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub error: Option<CheckError>,
    /// File id of the document image the face was compared with.
    #[serde(default)]
    pub document: Option<String>,
    /// File id of the selfie.
    #[serde(default)]
    pub selfie: Option<String>,
}

/// The email and phone checks: status and error only.
#[derive(Debug, Clone, Deserialize)]
pub struct BasicCheck {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub error: Option<CheckError>,
}

/// A FileLink. Its `url` shows the file to anyone until it expires: `Debug` hides it.
#[derive(Clone, Deserialize)]
pub struct FileLink {
    pub id: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub expires_at: Option<i64>,
}

impl fmt::Debug for FileLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileLink")
            .field("id", &self.id)
            .field("url", &self.url.as_ref().map(|_| "[hidden]"))
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// One page of a Stripe list (newest first).
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub has_more: bool,
}

#[derive(Deserialize)]
struct RawList {
    data: Vec<serde_json::Value>,
    has_more: bool,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorObject,
}

#[derive(Deserialize)]
struct ErrorObject {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    param: Option<String>,
}

/// Retry behaviour; the defaults match Stripe's SDKs (2 retries, 0.5 s doubling, ≤ 5 s).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub initial_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 2,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(5),
        }
    }
}

/// The client. Cheap to share behind an `Arc`; `reqwest::Client` pools connections.
#[derive(Clone)]
pub struct StripeClient {
    http: reqwest::Client,
    base: String,
    key: StripeKey,
    retry: RetryPolicy,
}

impl fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeClient")
            .field("base", &self.base)
            .field("key", &self.key)
            .field("retry", &self.retry)
            .finish()
    }
}

enum Method {
    Get,
    Post,
}

impl StripeClient {
    pub fn new(settings: &StripeSettings) -> Result<StripeClient, StripeApiError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // Stripe's SDKs wait up to 80 s; a session create is fast, and a stuck call must
            // not hold a user's request (or the reconciler) for that long.
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("idverdict/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(StripeApiError::Client)?;
        Ok(StripeClient {
            http,
            base: settings.api_base.trim_end_matches('/').to_string(),
            key: settings.api_key.clone(),
            retry: RetryPolicy::default(),
        })
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> StripeClient {
        self.retry = retry;
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Whether the key may read sensitive verified outputs and identity images (`rk_…`).
    pub fn has_restricted_key(&self) -> bool {
        self.key.is_restricted()
    }

    /// `POST /v1/identity/verification_sessions`. The same `idempotency_key` with the same
    /// parameters returns the same session (within Stripe's 24 h key lifetime).
    pub async fn create_verification_session(
        &self,
        params: &CreateSession,
        idempotency_key: &str,
    ) -> Result<VerificationSession, StripeApiError> {
        let v = self
            .send(
                Method::Post,
                "/v1/identity/verification_sessions",
                &params.form(),
                Some(idempotency_key),
            )
            .await?;
        parse_session(v)
    }

    /// `GET /v1/identity/verification_sessions/{id}`; `expand` e.g. `["verified_outputs"]`.
    /// While a session is `requires_input` this yields a fresh `url`/`client_secret`.
    pub async fn retrieve_verification_session(
        &self,
        id: &str,
        expand: &[&str],
    ) -> Result<VerificationSession, StripeApiError> {
        let query: Vec<(String, String)> = expand
            .iter()
            .map(|e| ("expand[]".to_string(), (*e).to_string()))
            .collect();
        let v = self
            .send(Method::Get, &session_path(id, ""), &query, None)
            .await?;
        parse_session(v)
    }

    /// `POST …/{id}/cancel` (only while `requires_input`; terminal).
    pub async fn cancel_verification_session(
        &self,
        id: &str,
    ) -> Result<VerificationSession, StripeApiError> {
        let v = self
            .send(Method::Post, &session_path(id, "/cancel"), &[], None)
            .await?;
        parse_session(v)
    }

    /// `POST …/{id}/redact` (in `requires_input` or `verified`).
    pub async fn redact_verification_session(
        &self,
        id: &str,
    ) -> Result<VerificationSession, StripeApiError> {
        let v = self
            .send(Method::Post, &session_path(id, "/redact"), &[], None)
            .await?;
        parse_session(v)
    }

    /// Every session with this `client_reference_id`, newest first (all pages).
    pub async fn list_verification_sessions(
        &self,
        client_reference_id: &str,
    ) -> Result<Vec<VerificationSession>, StripeApiError> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut query = vec![
                (
                    "client_reference_id".to_string(),
                    client_reference_id.to_string(),
                ),
                ("limit".to_string(), PAGE_LIMIT.to_string()),
            ];
            if let Some(a) = &after {
                query.push(("starting_after".into(), a.clone()));
            }
            let v = self
                .send(
                    Method::Get,
                    "/v1/identity/verification_sessions",
                    &query,
                    None,
                )
                .await?;
            let page = parse_list(v)?;
            let mut sessions = page
                .data
                .into_iter()
                .map(parse_session)
                .collect::<Result<Vec<_>, _>>()?;
            after = sessions.last().map(|s| s.id.clone());
            all.append(&mut sessions);
            if !page.has_more || after.is_none() {
                return Ok(all);
            }
        }
    }

    /// One page of `GET /v1/events?type=…&created[gte]=…` (newest first; `starting_after`
    /// continues towards older events).
    pub async fn list_events(
        &self,
        type_filter: &str,
        created_gte: Option<i64>,
        starting_after: Option<&str>,
    ) -> Result<Page<Event>, StripeApiError> {
        let mut query = vec![
            ("type".to_string(), type_filter.to_string()),
            ("limit".to_string(), PAGE_LIMIT.to_string()),
        ];
        if let Some(t) = created_gte {
            query.push(("created[gte]".into(), t.to_string()));
        }
        if let Some(a) = starting_after {
            query.push(("starting_after".into(), a.to_string()));
        }
        let v = self.send(Method::Get, "/v1/events", &query, None).await?;
        let page = parse_list(v)?;
        let data = page
            .data
            .into_iter()
            .map(|item| {
                serde_json::from_value::<Event>(item).map_err(|e| StripeApiError::Decode {
                    status: 200,
                    reason: format!("an event in the list: {e}"),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page {
            data,
            has_more: page.has_more,
        })
    }

    /// `GET /v1/identity/verification_reports/{id}`: the checks of one submission. Only the
    /// statuses, errors, document type and country and the image file ids are read; the
    /// person's details in the answer are never deserialised.
    pub async fn retrieve_verification_report(
        &self,
        id: &str,
    ) -> Result<VerificationReport, StripeApiError> {
        let id: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
        let v = self
            .send(
                Method::Get,
                &format!("/v1/identity/verification_reports/{id}"),
                &[],
                None,
            )
            .await?;
        serde_json::from_value(v).map_err(|e| StripeApiError::Decode {
            status: 200,
            reason: format!("not a verification report: {e}"),
        })
    }

    /// `POST /v1/file_links`: a public link to a file until `expires_at` (unix seconds).
    /// Identity images need a restricted key and an expiry at most 30 seconds away.
    pub async fn create_file_link(
        &self,
        file: &str,
        expires_at: i64,
    ) -> Result<FileLink, StripeApiError> {
        let form = [
            ("file".to_string(), file.to_string()),
            ("expires_at".to_string(), expires_at.to_string()),
        ];
        let v = self
            .send(Method::Post, "/v1/file_links", &form, None)
            .await?;
        serde_json::from_value(v).map_err(|e| StripeApiError::Decode {
            status: 200,
            reason: format!("not a file link: {e}"),
        })
    }

    /// Auto-pagination over [`StripeClient::list_events`]: call
    /// [`EventPages::next_page`] until it yields `None`.
    pub fn event_pages(&self, type_filter: &str, created_gte: Option<i64>) -> EventPages<'_> {
        EventPages {
            client: self,
            type_filter: type_filter.to_string(),
            created_gte,
            after: None,
            done: false,
        }
    }

    /// One request with retries. GET parameters go in the query string, POST ones in a form
    /// body; both use the bracket syntax already present in the keys.
    async fn send(
        &self,
        method: Method,
        path: &str,
        params: &[(String, String)],
        idempotency_key: Option<&str>,
    ) -> Result<serde_json::Value, StripeApiError> {
        let url = format!("{}{}", self.base, path);
        // A retried POST without a key could act twice; the SDKs generate one, so do we.
        let idem =
            match method {
                Method::Post => Some(idempotency_key.map(str::to_string).unwrap_or_else(|| {
                    format!("idverdict-retry-{}", crate::config::random_token(24))
                })),
                Method::Get => None,
            };
        let mut attempt = 0u32;
        loop {
            let mut req = match method {
                Method::Get => self.http.get(&url).query(params),
                Method::Post => self.http.post(&url).form(params),
            }
            .bearer_auth(self.key.expose());
            if let Some(k) = &idem {
                req = req.header("Idempotency-Key", k);
            }
            let outcome = req.send().await;
            let retryable = match &outcome {
                Err(e) => e.is_connect() || e.is_timeout() || e.is_request(),
                Ok(resp) => should_retry(resp),
            };
            if retryable && attempt < self.retry.max_retries {
                let delay = self.backoff(attempt);
                match &outcome {
                    Ok(resp) => tracing::warn!(
                        path,
                        status = resp.status().as_u16(),
                        attempt,
                        ?delay,
                        "Stripe API call failed; retrying"
                    ),
                    Err(e) => {
                        tracing::warn!(path, error = %e, attempt, ?delay, "Stripe API unreachable; retrying")
                    }
                }
                attempt += 1;
                tokio::time::sleep(delay).await;
                continue;
            }
            let resp = outcome.map_err(StripeApiError::Transport)?;
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.map_err(StripeApiError::Transport)?;
            if (200..300).contains(&status) {
                return serde_json::from_slice(&bytes).map_err(|e| StripeApiError::Decode {
                    status,
                    reason: format!("invalid JSON: {e}"),
                });
            }
            return Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(body) => StripeApiError::Api {
                    status,
                    kind: body.error.kind.unwrap_or_else(|| "api_error".to_string()),
                    code: body.error.code,
                    message: body.error.message,
                    param: body.error.param,
                },
                Err(_) => StripeApiError::Decode {
                    status,
                    reason: "an error without a Stripe error object".to_string(),
                },
            });
        }
    }

    /// Exponential backoff with jitter (half fixed, half random) so that many clients that
    /// failed together do not retry together.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .retry
            .initial_delay
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(self.retry.max_delay);
        let half = exp / 2;
        let jitter = rand::thread_rng().gen_range(0..=half.as_millis().max(1) as u64);
        half + Duration::from_millis(jitter)
    }
}

/// Stripe's `Stripe-Should-Retry` overrides everything; without it, the SDKs retry 409 (a
/// concurrent request holds the same idempotency key), 429 and 5xx.
fn should_retry(resp: &reqwest::Response) -> bool {
    if resp.status().is_success() {
        return false;
    }
    match resp
        .headers()
        .get("stripe-should-retry")
        .and_then(|v| v.to_str().ok())
    {
        Some("true") => return true,
        Some("false") => return false,
        _ => {}
    }
    let s = resp.status().as_u16();
    s == 409 || s == 429 || s >= 500
}

/// Session ids come from our callers' URLs: keep them to one path segment.
fn session_path(id: &str, suffix: &str) -> String {
    let id: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
    format!("/v1/identity/verification_sessions/{id}{suffix}")
}

fn parse_session(v: serde_json::Value) -> Result<VerificationSession, StripeApiError> {
    serde_json::from_value(v).map_err(|e| StripeApiError::Decode {
        status: 200,
        reason: format!("not a verification session: {e}"),
    })
}

fn parse_list(v: serde_json::Value) -> Result<RawList, StripeApiError> {
    serde_json::from_value(v).map_err(|e| StripeApiError::Decode {
        status: 200,
        reason: format!("not a list object: {e}"),
    })
}

/// Pages of events, newest first, until the list is exhausted.
pub struct EventPages<'a> {
    client: &'a StripeClient,
    type_filter: String,
    created_gte: Option<i64>,
    after: Option<String>,
    done: bool,
}

impl EventPages<'_> {
    pub async fn next_page(&mut self) -> Result<Option<Vec<Event>>, StripeApiError> {
        if self.done {
            return Ok(None);
        }
        let page = self
            .client
            .list_events(&self.type_filter, self.created_gte, self.after.as_deref())
            .await?;
        self.after = page.data.last().map(|e| e.id.clone());
        self.done = !page.has_more || self.after.is_none();
        if page.data.is_empty() {
            return Ok(None);
        }
        Ok(Some(page.data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_key() {
        let s = StripeSettings::new("sk_test_supersecret", "http://127.0.0.1:1").unwrap();
        let text = format!("{s:?}");
        assert!(!text.contains("supersecret"), "{text}");
        assert!(text.contains("sk_test_****"), "{text}");
        let c = StripeClient::new(&s).unwrap();
        assert!(!format!("{c:?}").contains("supersecret"));
        let p = CreateSession {
            provided_email: Some("jane@example.com".into()),
            metadata: [("user_id".to_string(), "secret-ish".to_string())].into(),
            ..Default::default()
        };
        let text = format!("{p:?}");
        assert!(
            !text.contains("jane@") && !text.contains("secret-ish"),
            "{text}"
        );
    }

    #[test]
    fn form_uses_bracket_syntax() {
        let p = CreateSession {
            session_type: None,
            client_reference_id: Some("user_1".into()),
            metadata: [("user_id".to_string(), "user_1".to_string())].into(),
            return_url: Some("https://app.example/back".into()),
            provided_email: Some("a@b.c".into()),
            document: Some(DocumentOptions {
                allowed_types: vec!["passport".into(), "id_card".into()],
                require_matching_selfie: Some(true),
                ..Default::default()
            }),
        };
        let form = p.form();
        let has = |k: &str, v: &str| form.iter().any(|(a, b)| a == k && b == v);
        assert!(has("type", "document"));
        assert!(has("client_reference_id", "user_1"));
        assert!(has("metadata[user_id]", "user_1"));
        assert!(has("return_url", "https://app.example/back"));
        assert!(has("provided_details[email]", "a@b.c"));
        assert!(has("options[document][allowed_types][]", "passport"));
        assert!(has("options[document][allowed_types][]", "id_card"));
        assert!(has("options[document][require_matching_selfie]", "true"));
        assert!(!form.iter().any(|(k, _)| k.contains("require_id_number")));
    }

    #[test]
    fn session_ids_stay_one_segment() {
        assert_eq!(
            session_path("vs_1/../x", "/cancel"),
            "/v1/identity/verification_sessions/vs_1%2F..%2Fx/cancel"
        );
    }
}
