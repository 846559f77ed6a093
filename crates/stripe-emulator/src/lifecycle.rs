//! The VerificationSession state machine and the events each change emits.
//!
//! requires_input → processing → verified | requires_input(last_error);
//! requires_input → canceled; redaction on requires_input (canceled first) or
//! verified, with `redaction.status` processing → redacted. Every function here
//! expects the caller to hold the emulator's write lock.

use serde_json::{json, Value};
use stripe_webhook::ErrorCode;

use crate::clock::{now_ms, now_s};
use crate::delivery;
use crate::errors::{ApiError, StoreError};
use crate::files::{FileRecord, DOCUMENT_PURPOSE, SELFIE_PURPOSE};
use crate::ids::{new_id, token};
use crate::model::{Event, LastError, Session, Status};
use crate::person::VerifiedPerson;
use crate::report::{self, Images};
use crate::store::{Kind, Timer};
use crate::{images, redaction, Emulator, WriteGuard};

/// Which API request caused a change (`event.request`); `None` for automatic changes.
#[derive(Debug, Clone, Default)]
pub struct Cause {
    pub request_id: Option<String>,
    pub idempotency_key: Option<String>,
}

/// What a submission of the hosted flow (or a test helper) resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Verified,
    /// A `last_error.code`: one of the known codes.
    Failed(String),
}

/// The documented `last_error` codes with their explanations, in Stripe's order.
pub fn error_codes() -> Vec<(String, String)> {
    ErrorCode::ALL
        .iter()
        .map(|c| (c.as_str().to_string(), c.explanation().to_string()))
        .collect()
}

pub fn parse_outcome(s: &str) -> Option<Outcome> {
    if s == "verified" {
        return Some(Outcome::Verified);
    }
    error_codes()
        .into_iter()
        .find(|(c, _)| c == s)
        .map(|(c, _)| Outcome::Failed(c))
}

fn reason_for(code: &str) -> String {
    error_codes()
        .into_iter()
        .find(|(c, _)| c == code)
        .map(|(_, r)| r)
        .unwrap_or_else(|| "The verification could not be completed.".into())
}

/// Creates the event(s) for a change of `session` and schedules their delivery.
pub async fn emit(
    emu: &Emulator,
    _w: &WriteGuard<'_>,
    session: &Session,
    kind: &str,
    cause: &Cause,
) -> Result<(), StoreError> {
    let copies = if delivery::roll(emu.config.chaos.distinct_duplicate) {
        2
    } else {
        1
    };
    for _ in 0..copies {
        let mut event = Event {
            id: new_id("evt"),
            created: now_s(),
            kind: kind.to_string(),
            object: session.render(&emu.public_base),
            pending_webhooks: 0,
            request_id: cause.request_id.clone(),
            idempotency_key: cause.idempotency_key.clone(),
        };
        delivery::schedule_event(emu, &mut event).await?;
        tracing::debug!(event = %event.id, kind, pending = event.pending_webhooks, "event created");
    }
    emu.wake.notify_one();
    Ok(())
}

pub async fn load(emu: &Emulator, id: &str) -> Result<Session, ApiError> {
    emu.store
        .get::<Session>(Kind::Session, id)
        .await?
        .ok_or_else(|| ApiError::no_such("verificationsession", id))
}

async fn save(emu: &Emulator, s: &Session) -> Result<(), StoreError> {
    emu.store.put(Kind::Session, &s.id, s.created, s).await
}

/// An outcome to apply later, by a persisted timer: what the hosted page submits.
pub struct Pending {
    pub outcome: Outcome,
    pub person: VerifiedPerson,
    pub after: std::time::Duration,
}

/// `requires_input → processing`. With `pending` the outcome is applied by a persisted timer
/// (hosted page); without it the caller applies it at once.
pub async fn submit(
    emu: &Emulator,
    w: &WriteGuard<'_>,
    id: &str,
    pending: Option<Pending>,
    cause: &Cause,
) -> Result<Session, ApiError> {
    let mut s = load(emu, id).await?;
    if s.status != Status::RequiresInput {
        return Err(ApiError::unexpected_state(format!(
            "This VerificationSession has status `{}`; it can only be submitted while its status is `requires_input`.",
            s.status.as_str()
        )));
    }
    s.status = Status::Processing;
    // The link and client secret used for this submission are spent.
    s.token = token();
    save(emu, &s).await?;
    emit(
        emu,
        w,
        &s,
        "identity.verification_session.processing",
        cause,
    )
    .await?;
    if let Some(p) = pending {
        let code = match &p.outcome {
            Outcome::Verified => "verified".to_string(),
            Outcome::Failed(c) => c.clone(),
        };
        let due = now_ms() + i64::try_from(p.after.as_millis()).unwrap_or(i64::MAX / 4);
        emu.store
            .insert_timer(
                due,
                "outcome",
                &json!({"session": s.id, "outcome": code, "person": p.person}).to_string(),
            )
            .await?;
        emu.wake.notify_one();
    }
    Ok(s)
}

/// Stores one synthetic image of a submission and returns its file id.
async fn store_image(
    emu: &Emulator,
    session: &str,
    purpose: &str,
    filename: &str,
    svg: String,
) -> Result<String, StoreError> {
    let file = FileRecord {
        id: new_id("file"),
        created: now_s(),
        purpose: purpose.to_string(),
        filename: filename.to_string(),
        size: i64::try_from(svg.len()).unwrap_or(i64::MAX),
        session: session.to_string(),
    };
    emu.store
        .put_file_content(&file.id, session, svg.as_bytes())
        .await?;
    emu.store
        .put(Kind::File, &file.id, file.created, &file)
        .await?;
    Ok(file.id)
}

/// The images a submission collected: both sides of the document for a document check, a
/// selfie for a selfie check.
async fn collect_images(
    emu: &Emulator,
    s: &Session,
    person: &VerifiedPerson,
    checks: &[&str],
) -> Result<Images, StoreError> {
    let mut images = Images::default();
    if checks.contains(&"document") {
        for side in ["front", "back"] {
            let id = store_image(
                emu,
                &s.id,
                DOCUMENT_PURPOSE,
                &format!("document_{side}.svg"),
                images::document(&s.id, side, person),
            )
            .await?;
            if side == "front" {
                images.document_front = Some(id);
            } else {
                images.document_back = Some(id);
            }
        }
    }
    if checks.contains(&"selfie") {
        images.selfie = Some(
            store_image(
                emu,
                &s.id,
                SELFIE_PURPOSE,
                "selfie.svg",
                images::selfie(&s.id),
            )
            .await?,
        );
    }
    Ok(images)
}

/// `processing → verified | requires_input`, creating the verification report and its images.
/// `person` is who the submission shows; it becomes `verified_outputs` if it is verified.
pub async fn finish(
    emu: &Emulator,
    w: &WriteGuard<'_>,
    id: &str,
    outcome: &Outcome,
    person: &VerifiedPerson,
    cause: &Cause,
) -> Result<Session, ApiError> {
    let mut s = load(emu, id).await?;
    if s.status != Status::Processing {
        return Err(ApiError::unexpected_state(format!(
            "This VerificationSession has status `{}`; an outcome can only be applied while it is `processing`.",
            s.status.as_str()
        )));
    }
    let code = match outcome {
        Outcome::Verified => None,
        Outcome::Failed(c) => Some(c.as_str()),
    };
    let reason = code.map(reason_for);
    let checks = report::checks(&s, person, code);
    let images = collect_images(emu, &s, person, &checks).await?;
    let report = report::build(&s, code, reason.as_deref(), person, &images);
    let report_id = report["id"].as_str().unwrap_or_default().to_string();
    emu.store
        .put(Kind::Report, &report_id, now_s(), &report)
        .await?;
    s.last_verification_report = Some(report_id);
    let kind = match outcome {
        Outcome::Verified => {
            s.status = Status::Verified;
            s.last_error = None;
            s.person = Some(person.clone());
            "identity.verification_session.verified"
        }
        Outcome::Failed(code) => {
            s.status = Status::RequiresInput;
            s.last_error = Some(LastError {
                code: code.clone(),
                reason: reason.clone().unwrap_or_default(),
            });
            "identity.verification_session.requires_input"
        }
    };
    save(emu, &s).await?;
    emit(emu, w, &s, kind, cause).await?;
    Ok(s)
}

pub async fn cancel(
    emu: &Emulator,
    w: &WriteGuard<'_>,
    id: &str,
    cause: &Cause,
) -> Result<Session, ApiError> {
    let mut s = load(emu, id).await?;
    if s.status != Status::RequiresInput {
        return Err(ApiError::unexpected_state(format!(
            "This VerificationSession has status `{}`. Only a VerificationSession with status `requires_input` can be canceled.",
            s.status.as_str()
        )));
    }
    s.status = Status::Canceled;
    save(emu, &s).await?;
    emit(emu, w, &s, "identity.verification_session.canceled", cause).await?;
    Ok(s)
}

/// Starts a redaction; it completes after the processing delay (a persisted timer).
pub async fn redact(
    emu: &Emulator,
    w: &WriteGuard<'_>,
    id: &str,
    cause: &Cause,
) -> Result<Session, ApiError> {
    let mut s = load(emu, id).await?;
    if s.redaction.is_some() {
        // Asking again changes nothing; answer with the session as it is.
        return Ok(s);
    }
    match s.status {
        Status::RequiresInput => {
            s.status = Status::Canceled;
            save(emu, &s).await?;
            emit(emu, w, &s, "identity.verification_session.canceled", cause).await?;
        }
        Status::Verified => {}
        other => {
            return Err(ApiError::unexpected_state(format!(
                "This VerificationSession has status `{}`. Only a VerificationSession with status `requires_input` or `verified` can be redacted.",
                other.as_str()
            )))
        }
    }
    s.redaction = Some("processing".into());
    s.redact_fields();
    save(emu, &s).await?;
    let due =
        now_ms() + i64::try_from(emu.config.processing_delay.as_millis()).unwrap_or(i64::MAX / 4);
    emu.store
        .insert_timer(due, "redaction", &json!({"session": s.id}).to_string())
        .await?;
    emu.wake.notify_one();
    Ok(s)
}

/// Ends a redaction: the session and everything kept about it lose their personal data.
async fn complete_redaction(emu: &Emulator, w: &WriteGuard<'_>, id: &str) -> Result<(), ApiError> {
    let mut s = load(emu, id).await?;
    if s.redaction.as_deref() != Some("processing") {
        return Ok(());
    }
    // Reports, files and stored answers first: readers do not take the write lock, so once
    // the session says `redacted` nothing related may still show the personal data.
    redaction::erase_related(emu, id).await?;
    s.redaction = Some("redacted".into());
    s.redact_fields();
    save(emu, &s).await?;
    emit(
        emu,
        w,
        &s,
        "identity.verification_session.redacted",
        &Cause::default(),
    )
    .await?;
    Ok(())
}

/// Runs a due timer (taken out of the store by the scheduler).
pub async fn fire_timer(emu: &Emulator, t: Timer) {
    let payload: Value = serde_json::from_str(&t.payload).unwrap_or(Value::Null);
    let Some(session) = payload["session"].as_str() else {
        tracing::warn!(timer = t.id, "dropping a malformed timer");
        return;
    };
    let w = emu.write().await;
    let res = match t.kind.as_str() {
        "outcome" => match payload["outcome"].as_str().and_then(parse_outcome) {
            Some(o) => match timer_person(emu, session, &payload["person"]).await {
                Ok(person) => finish(emu, &w, session, &o, &person, &Cause::default())
                    .await
                    .map(|_| ()),
                Err(e) => Err(e),
            },
            None => Ok(()),
        },
        "redaction" => complete_redaction(emu, &w, session).await,
        _ => Ok(()),
    };
    if let Err(e) = res {
        tracing::warn!(timer = t.id, kind = %t.kind, session, error = %e.message, "timer had nothing to do");
    }
}

/// The person a hosted-page submission chose; the session's defaults for a timer written
/// before the emulator kept one.
async fn timer_person(emu: &Emulator, id: &str, v: &Value) -> Result<VerifiedPerson, ApiError> {
    match serde_json::from_value::<VerifiedPerson>(v.clone()) {
        Ok(p) => Ok(p),
        Err(_) => Ok(VerifiedPerson::defaults(&load(emu, id).await?)),
    }
}
