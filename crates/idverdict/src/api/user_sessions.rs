//! Session creation for the app:
//!
//! - `POST /v1/users/{ref}/verification_sessions`: reuse the user's open session or create a
//!   new Stripe VerificationSession; 409 when the user must not start another one. Which of
//!   the three is `decide::creation`'s rule; this handler loads what it needs (idverdict's
//!   records, Stripe's list, the user's state), calls it and carries it out.
//! - `POST /v1/users/{ref}/verification_sessions/{id}/cancel` and `…/redact`: pass-through to
//!   Stripe for a session of that user (404 for anyone else's).
//!
//! New sessions get `type=document`, `client_reference_id=ref`, `metadata[user_id]=ref` plus
//! the request's metadata, and the idempotency key `idverdict:{ref}:{n}` (n = the attempt
//! number the rule gives), so a retried or concurrent request cannot create a second session.
//! `options[document]` is left to Stripe's defaults.
//!
//! `expected` (who the verified person must be) is checked and stored as digests and rules
//! (`decide::expectations`) before Stripe is asked; the user's verified sessions are then
//! compared with it by the processor's checker.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use stripe_webhook::{SessionStatus, VerificationSession};

use super::{ApiError, ApiPath, OptionalJson};
use crate::decide::creation::{creation, Creation, Refusal, SessionFacts};
use crate::decide::expectations::{Expectations, ExpectedInput};
use crate::state::AppState;
use crate::stripe_api::{CreateSession, StripeClient};

/// Metadata key that names the user on every session idverdict creates.
pub const USER_METADATA_KEY: &str = "user_id";
/// Stripe's idempotency keys are at most 255 characters; leave room for the prefix and number.
const MAX_USER_REF_LEN: usize = 200;
/// A reused session may have moved on since it was listed: decide again with its new status,
/// at most this many times (each round settles one session).
const REUSE_ROUNDS: usize = 3;

/// The optional JSON body of a creation request.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    #[serde(default)]
    return_url: Option<String>,
    #[serde(default)]
    provided_details: Option<ProvidedDetails>,
    /// Who the verified person must be: kept as digests and rules only.
    #[serde(default)]
    expected: Option<ExpectedInput>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvidedDetails {
    #[serde(default)]
    email: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    ApiPath(user_ref): ApiPath<String>,
    OptionalJson(body): OptionalJson<CreateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let stripe = stripe(&state)?;
    if user_ref.is_empty() || user_ref.len() > MAX_USER_REF_LEN {
        return Err(ApiError::bad_request(
            "invalid_user_ref",
            format!("the user reference must be 1 to {MAX_USER_REF_LEN} characters long"),
        ));
    }
    check_metadata(&body.metadata).map_err(|m| ApiError::bad_request("invalid_metadata", m))?;
    let expectations = body
        .expected
        .as_ref()
        .map(|input| expectations(&state, input))
        .transpose()?
        .filter(|e| !e.is_empty());

    let local = state.store.sessions_for_user(&user_ref).await?;
    let remote = stripe.list_verification_sessions(&user_ref).await?;
    let user = state.store.get_user(&user_ref).await?.map(|u| u.view);
    let mut facts = SessionFacts::merge(&local, &remote);
    if let Creation::Refuse(refusal) = creation(user.as_ref(), &facts, &state.policy) {
        return Err(refused(refusal));
    }
    // Stored before Stripe is asked: a session this request hands out is never verified
    // without the check the app asked for.
    if let Some(e) = &expectations {
        state
            .store
            .save_expectations(&user_ref, e, crate::clock::now_ms())
            .await?;
    }
    for _ in 0..REUSE_ROUNDS {
        match creation(user.as_ref(), &facts, &state.policy) {
            Creation::Refuse(refusal) => return Err(refused(refusal)),
            Creation::Reuse(id) => {
                let session = stripe.retrieve_verification_session(&id, &[]).await?;
                if session.status == SessionStatus::RequiresInput {
                    tracing::info!(session = %id, "verification session reused");
                    return Ok(session_response(StatusCode::OK, &session, true));
                }
                if let Some(f) = facts.iter_mut().find(|f| f.id == id) {
                    f.status = session.status;
                }
            }
            Creation::Create { attempt } => {
                let mut metadata = body.metadata;
                // Ours wins: the user id in metadata is how idverdict finds the user again.
                metadata.insert(USER_METADATA_KEY.to_string(), user_ref.clone());
                let params = CreateSession {
                    session_type: Some("document".to_string()),
                    client_reference_id: Some(user_ref.clone()),
                    metadata,
                    return_url: body.return_url,
                    provided_email: body.provided_details.and_then(|d| d.email),
                    document: None,
                };
                let key = format!("idverdict:{user_ref}:{attempt}");
                let session = stripe.create_verification_session(&params, &key).await?;
                tracing::info!(session = %session.id, attempt, "verification session created");
                return Ok(session_response(StatusCode::CREATED, &session, false));
            }
        }
    }
    Err(ApiError::conflict(
        "sessions_changing",
        "the user's sessions are changing right now; retry in a moment",
    ))
}

/// Check `expected` and keep only digests and rules. Names, dob, email and phone need the
/// digest key; without one the request is refused rather than stored unchecked.
fn expectations(state: &AppState, input: &ExpectedInput) -> Result<Expectations, ApiError> {
    let key = state.expectations_key.as_deref();
    if input.needs_key() && key.is_none() {
        return Err(ApiError::unavailable(
            "expectations_not_configured",
            "no expectations key is configured (IDVERDICT_EXPECTATIONS_KEY), so expected names, dates of birth, emails and phones cannot be kept",
        ));
    }
    Expectations::from_input(input, key)
        .map_err(|e| ApiError::bad_request("invalid_expected", e.to_string()))
}

fn refused(refusal: Refusal) -> ApiError {
    tracing::info!(code = refusal.code(), "verification session refused");
    ApiError::conflict(refusal.code(), refusal.message())
}

/// Stripe's metadata limits (at most 50 keys of up to 40 characters without brackets, values of
/// up to 500), checked here so the app gets a clear 400 rather than Stripe's error.
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

pub async fn cancel(
    State(state): State<AppState>,
    ApiPath((user_ref, id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    pass_through(&state, &user_ref, &id, Action::Cancel).await
}

pub async fn redact(
    State(state): State<AppState>,
    ApiPath((user_ref, id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    pass_through(&state, &user_ref, &id, Action::Redact).await
}

async fn pass_through(
    state: &AppState,
    user_ref: &str,
    id: &str,
    action: Action,
) -> Result<Json<Value>, ApiError> {
    let stripe = stripe(state)?;
    let not_found = || {
        ApiError::not_found(
            "session_not_found",
            "this user has no verification session with that id",
        )
    };
    // Ownership: idverdict's record when it has one, otherwise Stripe's session.
    let owner = match state.store.get_session(id).await? {
        Some(record) => record.user_ref,
        None => match stripe.retrieve_verification_session(id, &[]).await {
            Ok(session) => session
                .client_reference_id
                .or_else(|| session.metadata.get(USER_METADATA_KEY).cloned()),
            Err(e) if e.is_not_found() => return Err(not_found()),
            Err(e) => return Err(e.into()),
        },
    };
    if owner.as_deref() != Some(user_ref) {
        return Err(not_found());
    }
    let session = match action {
        Action::Cancel => stripe.cancel_verification_session(id).await?,
        Action::Redact => stripe.redact_verification_session(id).await?,
    };
    tracing::info!(session = %id, ?action, "verification session passed through to Stripe");
    Ok(Json(json!({
        "id": session.id,
        "status": session.status,
        "client_reference_id": session.client_reference_id,
        "redaction": session.redaction.as_ref().map(|r| json!({"status": r.status})),
    })))
}

/// What the app's front end needs. `client_secret` and `url` are single-use credentials: they
/// go to the app in this answer and nowhere else (not logged, not stored).
fn session_response(
    status: StatusCode,
    s: &VerificationSession,
    reused: bool,
) -> (StatusCode, Json<Value>) {
    (
        status,
        Json(json!({
            "id": s.id,
            "client_secret": s.client_secret,
            "url": s.url,
            "status": s.status,
            "reused": reused,
        })),
    )
}

/// The Stripe client, or 503 when no API key is configured.
fn stripe(state: &AppState) -> Result<&StripeClient, ApiError> {
    state.stripe.as_deref().ok_or_else(|| {
        ApiError::unavailable(
            "stripe_not_configured",
            "no Stripe API key is configured (STRIPE_API_KEY), so sessions cannot be created or changed",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
