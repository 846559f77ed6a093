//! The VerificationSession state machine and the events each change emits.
//!
//! requires_input → processing → verified | requires_input(last_error);
//! requires_input → canceled; redaction on requires_input (canceled first) or
//! verified, with `redaction.status` processing → redacted. Every function here
//! expects the caller to hold the emulator's write lock.

use serde_json::{json, Value};
use stripe_webhook::{Check, ErrorCode};

use crate::clock::{now_ms, now_s};
use crate::delivery;
use crate::errors::{ApiError, StoreError};
use crate::ids::{new_id, token};
use crate::model::{
    redacted_tree, test_verified_outputs, Event, LastError, Session, Status, REPORT_OBJECT,
};
use crate::store::{Kind, Timer};
use crate::{Emulator, WriteGuard};

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
    /// A `last_error.code`: one of the 19 documented codes.
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

/// `requires_input → processing`. With `outcome_after` the outcome is applied by a
/// persisted timer (hosted page); without it the caller applies it at once.
pub async fn submit(
    emu: &Emulator,
    w: &WriteGuard<'_>,
    id: &str,
    outcome: Option<(Outcome, std::time::Duration)>,
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
    if let Some((outcome, after)) = outcome {
        let code = match &outcome {
            Outcome::Verified => "verified".to_string(),
            Outcome::Failed(c) => c.clone(),
        };
        let due = now_ms() + i64::try_from(after.as_millis()).unwrap_or(i64::MAX / 4);
        emu.store
            .insert_timer(
                due,
                "outcome",
                &json!({"session": s.id, "outcome": code}).to_string(),
            )
            .await?;
        emu.wake.notify_one();
    }
    Ok(s)
}

/// `processing → verified | requires_input`, creating the verification report.
pub async fn finish(
    emu: &Emulator,
    w: &WriteGuard<'_>,
    id: &str,
    outcome: &Outcome,
    cause: &Cause,
) -> Result<Session, ApiError> {
    let mut s = load(emu, id).await?;
    if s.status != Status::Processing {
        return Err(ApiError::unexpected_state(format!(
            "This VerificationSession has status `{}`; an outcome can only be applied while it is `processing`.",
            s.status.as_str()
        )));
    }
    let report = build_report(&s, outcome);
    let report_id = report["id"].as_str().unwrap_or_default().to_string();
    emu.store
        .put(Kind::Report, &report_id, now_s(), &report)
        .await?;
    s.last_verification_report = Some(report_id);
    let kind = match outcome {
        Outcome::Verified => {
            s.status = Status::Verified;
            s.last_error = None;
            s.verified_outputs = Some(test_verified_outputs(&s));
            "identity.verification_session.verified"
        }
        Outcome::Failed(code) => {
            s.status = Status::RequiresInput;
            s.last_error = Some(LastError {
                code: code.clone(),
                reason: reason_for(code),
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

/// Ends a redaction: the session, its reports and the stored event snapshots lose their personal data.
async fn complete_redaction(emu: &Emulator, w: &WriteGuard<'_>, id: &str) -> Result<(), ApiError> {
    let mut s = load(emu, id).await?;
    if s.redaction.as_deref() != Some("processing") {
        return Ok(());
    }
    s.redaction = Some("redacted".into());
    s.redact_fields();
    save(emu, &s).await?;
    for mut report in emu.store.all::<Value>(Kind::Report).await? {
        if report["verification_session"].as_str() == Some(id) {
            for block in ["document", "id_number", "selfie", "email", "phone"] {
                if let Some(b) = report.get(block).cloned() {
                    report[block] = redacted_tree(&b);
                }
            }
            let rid = report["id"].as_str().unwrap_or_default().to_string();
            let created = report["created"].as_i64().unwrap_or(0);
            emu.store.put(Kind::Report, &rid, created, &report).await?;
        }
    }
    for mut ev in emu.store.all::<Event>(Kind::Event).await? {
        if ev.object_id() == Some(id) {
            if let Some(obj) = ev.object.as_object_mut() {
                obj.insert("metadata".into(), json!({}));
            }
            emu.store.put(Kind::Event, &ev.id, ev.created, &ev).await?;
        }
    }
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
            Some(o) => finish(emu, &w, session, &o, &Cause::default())
                .await
                .map(|_| ()),
            None => Ok(()),
        },
        "redaction" => complete_redaction(emu, &w, session).await,
        _ => Ok(()),
    };
    if let Err(e) = res {
        tracing::warn!(timer = t.id, kind = %t.kind, session, error = %e.message, "timer had nothing to do");
    }
}

/// The check a `last_error` code belongs to, i.e. the report block that fails;
/// `None` for session-level codes (abandoned, consent_declined, …) where the
/// user never got through the checks.
fn check_of(code: &str) -> Option<&'static str> {
    match ErrorCode::from(code).check() {
        Check::Session | Check::Unknown => None,
        c => Some(c.as_str()),
    }
}

fn build_report(s: &Session, outcome: &Outcome) -> Value {
    let doc_opts = s.options.get("document").cloned().unwrap_or(json!({}));
    let flag = |k: &str| doc_opts.get(k).and_then(Value::as_bool).unwrap_or(false);
    let mut checks: Vec<&str> = Vec::new();
    if s.kind != "id_number" {
        checks.push("document");
    }
    if s.kind == "id_number" || flag("require_id_number") {
        checks.push("id_number");
    }
    if flag("require_matching_selfie") {
        checks.push("selfie");
    }
    let (failed_check, code) = match outcome {
        Outcome::Verified => (None, None),
        Outcome::Failed(c) => (check_of(c), Some(c.as_str())),
    };
    if let Some(fc) = failed_check {
        if !checks.contains(&fc) {
            checks.push(fc);
        }
    }
    let session_level_failure = code.is_some() && failed_check.is_none();
    let mut report = json!({
        "id": new_id("vr"),
        "object": REPORT_OBJECT,
        "client_reference_id": s.client_reference_id,
        "created": now_s(),
        "livemode": false,
        "options": {"document": doc_opts, "id_number": {}},
        "type": s.kind,
        "verification_session": s.id,
    });
    if let Some(flow) = &s.verification_flow {
        report["verification_flow"] = json!(flow);
    }
    for check in checks {
        let failed = session_level_failure || failed_check == Some(check);
        let status = if failed { "unverified" } else { "verified" };
        let error = match (failed_check == Some(check), code) {
            (true, Some(c)) => json!({"code": c, "reason": reason_for(c)}),
            _ => Value::Null,
        };
        let block = match check {
            "document" => json!({
                "status": status, "error": error,
                "address": {"city": "San Francisco", "country": "US", "line1": "1234 Main St.", "line2": null, "postal_code": "94111", "state": "CA"},
                "first_name": "Jenny", "last_name": "Rosen",
                "issued_date": {"day": 1, "month": 12, "year": 2020}, "issuing_country": "US",
                "type": "driving_license",
                "files": [new_id("file"), new_id("file")],
            }),
            "id_number" => {
                json!({"status": status, "error": error, "first_name": "Jenny", "last_name": "Rosen", "id_number_type": "us_ssn"})
            }
            "selfie" => {
                json!({"status": status, "error": error, "document": new_id("file"), "selfie": new_id("file")})
            }
            "email" => {
                json!({"status": status, "error": error, "email": s.provided_details.get("email")})
            }
            _ => {
                json!({"status": status, "error": error, "phone": s.provided_details.get("phone")})
            }
        };
        report[check] = block;
    }
    report
}
