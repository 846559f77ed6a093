//! Session creation for the app, with the limits enforced (issue 4 §2):
//!
//! - `POST /v1/users/{ref}/verification_sessions`: reuse the user's open session or create a
//!   new Stripe VerificationSession; 409 when the user must not start another one.
//! - `POST /v1/users/{ref}/verification_sessions/{id}/cancel` and `…/redact`: pass-through to
//!   Stripe for a session of that user (404 for anyone else's).
//!
//! The rules follow Stripe's advice (stripe.md §4.2): while a session is `requires_input` it is
//! reused — retrieving it yields a fresh `url`/`client_secret` and keeps the failure history in
//! one place — and a new one is created with an idempotency key derived from the user and the
//! attempt number (`idverdict:{ref}:{n}`, n = the user's sessions so far), so a retried or
//! concurrent request cannot create a second session.
//!
//! The user's sessions are read from idverdict's records (outcomes, attempts) AND from Stripe
//! (current status, and sessions whose webhooks have not arrived yet). New sessions get
//! `type=document`, `client_reference_id=ref`, `metadata[user_id]=ref` plus the request's
//! metadata; `options[document]` will come from configuration (`session_options` in the
//! future `[stripe]` table) — until then Stripe's defaults apply.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use stripe_webhook::VerificationSession;

use super::sessions::storage_error;
use crate::app::AppState;
use crate::decide::user::{UserState, UserView};
use crate::decide::SessionRecord;
use crate::ingest::webhook::error;
use crate::store::Store;
use crate::stripe_api::{CreateSession, DocumentOptions, StripeApiError, StripeClient};

/// Metadata key that names the user on every session idverdict creates.
pub const USER_METADATA_KEY: &str = "user_id";
/// Stripe's idempotency keys are at most 255 characters; leave room for the prefix and number.
const MAX_USER_REF_LEN: usize = 200;

/// Routes to merge into the authenticated `/v1` router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/users/{user_ref}/verification_sessions",
            post(create_handler),
        )
        .route(
            "/v1/users/{user_ref}/verification_sessions/{id}/cancel",
            post(cancel_handler),
        )
        .route(
            "/v1/users/{user_ref}/verification_sessions/{id}/redact",
            post(redact_handler),
        )
}

/// Everything the handlers need; built from [`AppState`], or directly in tests.
#[derive(Clone)]
pub struct SessionsCtx {
    pub store: Store,
    pub stripe: Option<Arc<StripeClient>>,
    pub max_attempts: u32,
    /// `options[document]` for new sessions (from configuration; `None` = Stripe's defaults).
    pub document_options: Option<DocumentOptions>,
}

impl SessionsCtx {
    fn from_state(state: &AppState) -> SessionsCtx {
        SessionsCtx {
            store: state.store.clone(),
            // Until AppState carries the client (lead): `stripe: state.stripe.clone(),`
            stripe: state.stripe.clone(),
            max_attempts: state.policy.max_attempts,
            document_options: None,
        }
    }
}

/// The same routes over a [`SessionsCtx`] (no token check): for tests and embedding.
pub fn router_with(ctx: SessionsCtx) -> Router {
    Router::new()
        .route(
            "/v1/users/{user_ref}/verification_sessions",
            post(
                |State(ctx): State<SessionsCtx>, Path(user_ref): Path<String>, body: Bytes| async move {
                    create(&ctx, &user_ref, &body).await
                },
            ),
        )
        .route(
            "/v1/users/{user_ref}/verification_sessions/{id}/{action}",
            post(
                |State(ctx): State<SessionsCtx>,
                 Path((user_ref, id, action)): Path<(String, String, String)>| async move {
                    match action.as_str() {
                        "cancel" => pass_through(&ctx, &user_ref, &id, Action::Cancel).await,
                        "redact" => pass_through(&ctx, &user_ref, &id, Action::Redact).await,
                        _ => error(StatusCode::NOT_FOUND, "not_found", "no such route"),
                    }
                },
            ),
        )
        .with_state(ctx)
}

async fn create_handler(
    State(state): State<AppState>,
    Path(user_ref): Path<String>,
    body: Bytes,
) -> Response {
    create(&SessionsCtx::from_state(&state), &user_ref, &body).await
}

async fn cancel_handler(
    State(state): State<AppState>,
    Path((user_ref, id)): Path<(String, String)>,
) -> Response {
    pass_through(
        &SessionsCtx::from_state(&state),
        &user_ref,
        &id,
        Action::Cancel,
    )
    .await
}

async fn redact_handler(
    State(state): State<AppState>,
    Path((user_ref, id)): Path<(String, String)>,
) -> Response {
    pass_through(
        &SessionsCtx::from_state(&state),
        &user_ref,
        &id,
        Action::Redact,
    )
    .await
}

/// The optional JSON body of a creation request.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    #[serde(default)]
    return_url: Option<String>,
    #[serde(default)]
    provided_details: Option<ProvidedDetails>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvidedDetails {
    #[serde(default)]
    email: Option<String>,
}

/// What the creation rule knows about one of the user's sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFacts {
    pub id: String,
    /// Stripe's status (`requires_input`, `processing`, `verified`, `canceled`).
    pub status: String,
    /// idverdict's outcome (`awaiting_input`, `retry_allowed`, `needs_review`, …), when the
    /// session's events have been processed.
    pub outcome: Option<String>,
    pub failed_attempts: u32,
    pub created: i64,
}

/// Why a user may not start (or resume) a verification now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    UserVerified,
    VerificationInProgress,
    UnderReview,
    UserRejected,
    AlternativeRequired,
    AttemptsExhausted,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::UserVerified => "user_verified",
            Refusal::VerificationInProgress => "verification_in_progress",
            Refusal::UnderReview => "under_review",
            Refusal::UserRejected => "user_rejected",
            Refusal::AlternativeRequired => "alternative_required",
            Refusal::AttemptsExhausted => "attempts_exhausted",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Refusal::UserVerified => "this user is already verified; no new verification is needed",
            Refusal::VerificationInProgress => {
                "a verification of this user is being processed; wait for its outcome"
            }
            Refusal::UnderReview => {
                "this user's verification is waiting for a manual review; a reviewer decides what happens next"
            }
            Refusal::UserRejected => "this user's verification was rejected",
            Refusal::AlternativeRequired => {
                "retrying the document check cannot succeed for this user; offer an alternative verification method"
            }
            Refusal::AttemptsExhausted => {
                "this user has used every allowed verification attempt"
            }
        }
    }
}

/// The decision for a creation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Creation {
    /// Hand out this `requires_input` session again.
    Reuse(String),
    Refuse(Refusal),
    /// Create attempt number `attempt` (0-based: the number of sessions the user has).
    Create {
        attempt: usize,
    },
}

/// The creation rule, in one place (the first that holds wins). When the per-user state
/// machine is stored, this becomes a match on the user state: verified/approved →
/// `user_verified`, rejected → `user_rejected`, needs_review → `under_review`,
/// alternative_required → `alternative_required`, pending+processing →
/// `verification_in_progress`, pending/retry_allowed with an open session → reuse.
///
/// Canceled sessions count for nothing but the attempt number (they end a series).
pub fn creation_rule(sessions: &[SessionFacts], max_attempts: u32) -> Creation {
    let live = || sessions.iter().filter(|s| s.status != "canceled");
    let outcome_is = |s: &SessionFacts, o: &str| s.outcome.as_deref() == Some(o);
    if sessions
        .iter()
        .any(|s| s.status == "verified" || outcome_is(s, "verified") || outcome_is(s, "approved"))
    {
        return Creation::Refuse(Refusal::UserVerified);
    }
    if sessions.iter().any(|s| outcome_is(s, "rejected")) {
        return Creation::Refuse(Refusal::UserRejected);
    }
    if sessions.iter().any(|s| s.status == "processing") {
        return Creation::Refuse(Refusal::VerificationInProgress);
    }
    // Before review/alternative: once the attempts are used up the policy turns the last
    // session into one of those, and "out of attempts" is the more useful reason.
    let failed: u32 = sessions.iter().map(|s| s.failed_attempts).sum();
    if failed >= max_attempts {
        return Creation::Refuse(Refusal::AttemptsExhausted);
    }
    if live().any(|s| outcome_is(s, "needs_review")) {
        return Creation::Refuse(Refusal::UnderReview);
    }
    if live().any(|s| outcome_is(s, "alternative_required")) {
        return Creation::Refuse(Refusal::AlternativeRequired);
    }
    // The newest open session; its outcome is unknown while its events are on their way.
    let open = live()
        .filter(|s| s.status == "requires_input")
        .filter(|s| {
            matches!(
                s.outcome.as_deref(),
                None | Some("awaiting_input") | Some("retry_allowed")
            )
        })
        .max_by(|a, b| a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id)));
    match open {
        Some(s) => Creation::Reuse(s.id.clone()),
        None => Creation::Create {
            attempt: sessions.len(),
        },
    }
}

/// Refusals that follow from the user's state alone.
fn user_refusal(user: &UserView) -> Option<Refusal> {
    let exhausted = user.attempts_used >= user.attempts_allowed;
    match user.state {
        // Out of attempts is the more useful reason than what exhaustion turned into.
        UserState::NeedsReview | UserState::AlternativeRequired if exhausted => {
            Some(Refusal::AttemptsExhausted)
        }
        UserState::Verified | UserState::Approved => Some(Refusal::UserVerified),
        UserState::Rejected => Some(Refusal::UserRejected),
        UserState::NeedsReview => Some(Refusal::UnderReview),
        UserState::AlternativeRequired => Some(Refusal::AlternativeRequired),
        UserState::None | UserState::Pending | UserState::RetryAllowed | UserState::Canceled => {
            None
        }
    }
}

/// idverdict's records merged with Stripe's list: Stripe's status is the fresher one; outcome
/// and attempts only idverdict knows.
fn merge_facts(local: &[SessionRecord], remote: &[VerificationSession]) -> Vec<SessionFacts> {
    let mut by_id: HashMap<String, SessionFacts> = local
        .iter()
        .map(|r| {
            (
                r.id.clone(),
                SessionFacts {
                    id: r.id.clone(),
                    status: r.status.clone(),
                    outcome: Some(r.outcome.as_str().to_string()),
                    failed_attempts: r.failed_attempts,
                    created: r.session_created,
                },
            )
        })
        .collect();
    for s in remote {
        let status = s.status.as_str().to_string();
        by_id
            .entry(s.id.clone())
            .and_modify(|f| f.status = status.clone())
            .or_insert_with(|| SessionFacts {
                id: s.id.clone(),
                status,
                outcome: None,
                failed_attempts: 0,
                created: s.created,
            });
    }
    by_id.into_values().collect()
}

async fn create(ctx: &SessionsCtx, user_ref: &str, body: &[u8]) -> Response {
    let Some(stripe) = ctx.stripe.as_deref() else {
        return not_configured();
    };
    if user_ref.is_empty() || user_ref.len() > MAX_USER_REF_LEN {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_user_ref",
            &format!("the user reference must be 1 to {MAX_USER_REF_LEN} characters long"),
        );
    }
    let body: CreateBody = if body.iter().all(u8::is_ascii_whitespace) {
        CreateBody::default()
    } else {
        match serde_json::from_slice(body) {
            Ok(b) => b,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_body",
                    &format!("the body must be a JSON object with optional metadata, return_url and provided_details.email: {e}"),
                )
            }
        }
    };
    if let Err(message) = check_metadata(&body.metadata) {
        return error(StatusCode::BAD_REQUEST, "invalid_metadata", &message);
    }

    let local = match ctx.store.sessions_for_user(user_ref).await {
        Ok(records) => records,
        Err(e) => return storage_error(e),
    };
    let remote = match stripe.list_verification_sessions(user_ref).await {
        Ok(sessions) => sessions,
        Err(e) => return stripe_error(e),
    };
    // The user's decision state (reviews included) settles what the sessions alone cannot:
    // an approved or rejected user, and the attempts an `allow_retry` review granted.
    let user = match ctx.store.get_user(user_ref).await {
        Ok(user) => user.map(|u| u.view),
        Err(e) => return storage_error(e),
    };
    if let Some(refusal) = user.as_ref().and_then(user_refusal) {
        tracing::info!(code = refusal.code(), "verification session refused");
        return error(StatusCode::CONFLICT, refusal.code(), refusal.message());
    }
    let max_attempts = user
        .as_ref()
        .map(|u| u.attempts_allowed)
        .unwrap_or(ctx.max_attempts);
    let mut facts = merge_facts(&local, &remote);
    if user
        .as_ref()
        .is_some_and(|u| u.state == UserState::RetryAllowed)
    {
        // A reviewer released the user (`allow_retry`): the session that was waiting for
        // review may be resubmitted.
        for fact in &mut facts {
            if fact.outcome.as_deref() == Some("needs_review") {
                fact.outcome = Some("retry_allowed".to_string());
            }
        }
    }
    // A reused session may have moved on since it was listed; decide again with its new status
    // (bounded: each round settles one session).
    for _ in 0..3 {
        match creation_rule(&facts, max_attempts) {
            Creation::Refuse(refusal) => {
                tracing::info!(code = refusal.code(), "verification session refused");
                return error(StatusCode::CONFLICT, refusal.code(), refusal.message());
            }
            Creation::Reuse(id) => {
                let session = match stripe.retrieve_verification_session(&id, &[]).await {
                    Ok(s) => s,
                    Err(e) => return stripe_error(e),
                };
                if session.status.as_str() == "requires_input" {
                    tracing::info!(session = %id, "verification session reused");
                    return session_response(StatusCode::OK, &session, true);
                }
                if let Some(f) = facts.iter_mut().find(|f| f.id == id) {
                    f.status = session.status.as_str().to_string();
                }
            }
            Creation::Create { attempt } => {
                let mut metadata = body.metadata.clone();
                // Ours wins: the user id in metadata is how idverdict finds the user again.
                metadata.insert(USER_METADATA_KEY.to_string(), user_ref.to_string());
                let params = CreateSession {
                    session_type: Some("document".to_string()),
                    client_reference_id: Some(user_ref.to_string()),
                    metadata,
                    return_url: body.return_url.clone(),
                    provided_email: body.provided_details.as_ref().and_then(|d| d.email.clone()),
                    document: ctx.document_options.clone(),
                };
                let key = format!("idverdict:{user_ref}:{attempt}");
                return match stripe.create_verification_session(&params, &key).await {
                    Ok(session) => {
                        tracing::info!(session = %session.id, attempt, "verification session created");
                        session_response(StatusCode::CREATED, &session, false)
                    }
                    Err(e) => stripe_error(e),
                };
            }
        }
    }
    error(
        StatusCode::CONFLICT,
        "sessions_changing",
        "the user's sessions are changing right now; retry in a moment",
    )
}

/// Stripe's metadata limits (stripe.md §3.5), checked here so the app gets a clear 400.
fn check_metadata(metadata: &BTreeMap<String, String>) -> Result<(), String> {
    if metadata.len() >= 50 {
        return Err("at most 49 metadata keys (idverdict adds user_id)".to_string());
    }
    for (k, v) in metadata {
        if k.is_empty() || k.len() > 40 || k.contains('[') || k.contains(']') {
            return Err(format!(
                "metadata key `{k}` must be 1 to 40 characters without [ or ]"
            ));
        }
        if v.len() > 500 {
            return Err(format!(
                "metadata value of `{k}` is longer than 500 characters"
            ));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Cancel,
    Redact,
}

async fn pass_through(ctx: &SessionsCtx, user_ref: &str, id: &str, action: Action) -> Response {
    let Some(stripe) = ctx.stripe.as_deref() else {
        return not_configured();
    };
    let not_found = || {
        error(
            StatusCode::NOT_FOUND,
            "session_not_found",
            "this user has no verification session with that id",
        )
    };
    // Ownership: idverdict's record when it has one, otherwise Stripe's session.
    match ctx.store.get_session(id).await {
        Ok(Some(record)) => {
            if record.user_ref.as_deref() != Some(user_ref) {
                return not_found();
            }
        }
        Ok(None) => match stripe.retrieve_verification_session(id, &[]).await {
            Ok(session) => {
                let owner = session
                    .client_reference_id
                    .as_deref()
                    .or(session.metadata.get(USER_METADATA_KEY).map(String::as_str));
                if owner != Some(user_ref) {
                    return not_found();
                }
            }
            Err(e) if e.is_not_found() => return not_found(),
            Err(e) => return stripe_error(e),
        },
        Err(e) => return storage_error(e),
    }
    let result = match action {
        Action::Cancel => stripe.cancel_verification_session(id).await,
        Action::Redact => stripe.redact_verification_session(id).await,
    };
    match result {
        Ok(session) => {
            tracing::info!(session = %id, ?action, "verification session passed through to Stripe");
            Json(json!({
                "id": session.id,
                "status": session.status.as_str(),
                "client_reference_id": session.client_reference_id,
                "redaction": session.redaction.as_ref().map(|r| json!({"status": r.status.as_str()})),
            }))
            .into_response()
        }
        Err(e) => stripe_error(e),
    }
}

/// What the app's front end needs. `client_secret` and `url` are single-use credentials: they
/// go to the app in this answer and nowhere else (not logged, not stored).
fn session_response(status: StatusCode, s: &VerificationSession, reused: bool) -> Response {
    (
        status,
        Json(json!({
            "id": s.id,
            "client_secret": s.client_secret,
            "url": s.url,
            "status": s.status.as_str(),
            "reused": reused,
        })),
    )
        .into_response()
}

fn not_configured() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "stripe_not_configured",
        "no Stripe API key is configured (STRIPE_API_KEY), so sessions cannot be created or changed",
    )
}

/// Stripe's answer, translated for the app: its own mistakes are 4xx, Stripe's trouble 502.
fn stripe_error(e: StripeApiError) -> Response {
    match &e {
        StripeApiError::Api {
            status,
            kind,
            code,
            message,
            param,
        } => {
            let text = message
                .clone()
                .unwrap_or_else(|| "Stripe refused the request".into());
            let text = match param {
                Some(p) => format!("{text} (parameter {p})"),
                None => text,
            };
            if kind == "idempotency_error" {
                return error(
                    StatusCode::CONFLICT,
                    "request_conflict",
                    "another request for this user's verification attempt used different parameters; retry with the same body",
                );
            }
            match (*status, code.as_deref()) {
                (404, _) => error(StatusCode::NOT_FOUND, "session_not_found", &text),
                (400, Some("unexpected_state")) | (409, _) => {
                    error(StatusCode::CONFLICT, "invalid_session_state", &text)
                }
                (400, _) => error(StatusCode::BAD_REQUEST, "stripe_invalid_request", &text),
                _ => {
                    tracing::error!(error = %e, "Stripe API call failed");
                    error(
                        StatusCode::BAD_GATEWAY,
                        "stripe_error",
                        "the Stripe API refused the call; see the service log",
                    )
                }
            }
        }
        _ => {
            tracing::error!(error = %e, "Stripe API call failed");
            error(
                StatusCode::BAD_GATEWAY,
                "stripe_unavailable",
                "the Stripe API could not be reached; retry later",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(id: &str, status: &str, outcome: Option<&str>, failed: u32, created: i64) -> SessionFacts {
        SessionFacts {
            id: id.into(),
            status: status.into(),
            outcome: outcome.map(str::to_string),
            failed_attempts: failed,
            created,
        }
    }

    #[test]
    fn rule_table() {
        use Creation::*;
        use Refusal::*;
        let cases: Vec<(Vec<SessionFacts>, Creation)> = vec![
            (vec![], Create { attempt: 0 }),
            (
                vec![s("vs_a", "requires_input", None, 0, 1)],
                Reuse("vs_a".into()),
            ),
            (
                vec![s("vs_a", "requires_input", Some("retry_allowed"), 1, 1)],
                Reuse("vs_a".into()),
            ),
            (
                vec![s("vs_a", "canceled", Some("canceled"), 0, 1)],
                Create { attempt: 1 },
            ),
            (
                vec![
                    s("vs_a", "canceled", Some("canceled"), 1, 1),
                    s("vs_b", "canceled", Some("canceled"), 1, 2),
                ],
                Create { attempt: 2 },
            ),
            (
                vec![s("vs_a", "verified", Some("verified"), 0, 1)],
                Refuse(UserVerified),
            ),
            (
                vec![s("vs_a", "processing", Some("awaiting_input"), 0, 1)],
                Refuse(VerificationInProgress),
            ),
            (
                vec![s("vs_a", "requires_input", Some("needs_review"), 1, 1)],
                Refuse(UnderReview),
            ),
            (
                vec![s("vs_a", "requires_input", Some("rejected"), 1, 1)],
                Refuse(UserRejected),
            ),
            (
                vec![s(
                    "vs_a",
                    "requires_input",
                    Some("alternative_required"),
                    1,
                    1,
                )],
                Refuse(AlternativeRequired),
            ),
            (
                vec![
                    s("vs_a", "canceled", Some("canceled"), 2, 1),
                    s("vs_b", "requires_input", Some("retry_allowed"), 1, 2),
                ],
                Refuse(AttemptsExhausted),
            ),
            // The newest open session is the one handed out.
            (
                vec![
                    s("vs_old", "requires_input", Some("awaiting_input"), 0, 1),
                    s("vs_new", "requires_input", None, 0, 5),
                ],
                Reuse("vs_new".into()),
            ),
            // Verified wins over everything, even an open session.
            (
                vec![
                    s("vs_a", "verified", Some("verified"), 0, 1),
                    s("vs_b", "requires_input", None, 0, 2),
                ],
                Refuse(UserVerified),
            ),
        ];
        for (sessions, expected) in cases {
            assert_eq!(creation_rule(&sessions, 3), expected, "{sessions:?}");
        }
    }

    #[test]
    fn metadata_limits() {
        let ok: BTreeMap<String, String> = [("plan".to_string(), "pro".to_string())].into();
        assert!(check_metadata(&ok).is_ok());
        let bad: BTreeMap<String, String> = [("a[b]".to_string(), "x".to_string())].into();
        assert!(check_metadata(&bad).is_err());
        let long: BTreeMap<String, String> = [("k".to_string(), "x".repeat(501))].into();
        assert!(check_metadata(&long).is_err());
    }
}
