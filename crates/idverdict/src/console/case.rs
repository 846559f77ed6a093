//! One user — the case: the state and why, the evidence (live from Stripe), the claim, the
//! decision form (approve / reject / allow retry with a required reason, through the same path
//! as `POST /v1/reviews/{ref}`, so the reactions go out) and notes, then a timeline of every
//! session, event, attempt, review, note, claim and reaction (with its delivery attempts).

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use super::audit::Action;
use super::auth::{Layout, Posted, Signed};
use super::evidence::{self, Evidence};
use super::format::{datetime_ms, datetime_secs, duration_ms};
use super::why::{explain, WhyView};
use super::{case_path, path_segment, render, see_other, ConsoleError};
use crate::api::reviews::record_review;
use crate::api::ApiPath;
use crate::clock::now_ms;
use crate::decide::access::Permission;
use crate::decide::{ReviewAction, UserState};
use crate::state::AppState;
use crate::store::{AuditRow, ReactionFilter};

/// Longest free text added to a decision's reason, and longest note.
const MAX_DETAILS: usize = 1000;
const MAX_NOTE: usize = 2000;

/// One line of the timeline.
struct Item {
    at_ms: i64,
    at: String,
    kind: &'static str,
    text: String,
    details: Vec<String>,
    link: Option<String>,
}

struct SessionView {
    id: String,
    status: String,
    outcome: String,
    created: String,
    error: String,
    attempts: u32,
    metadata: Vec<(String, String)>,
    redacted: bool,
}

struct ClaimView {
    holder: String,
    until: String,
    mine: bool,
}

#[derive(Template)]
#[template(path = "console/case.html")]
struct CasePage {
    layout: Layout,
    user_ref: String,
    path: String,
    state: String,
    since: Option<String>,
    why: WhyView,
    attempts: String,
    in_review: bool,
    known: bool,
    claim: Option<ClaimView>,
    evidence: Evidence,
    reasons: Vec<String>,
    sessions: Vec<SessionView>,
    timeline: Vec<Item>,
}

fn item(at_ms: i64, kind: &'static str, text: String) -> Item {
    Item {
        at_ms,
        at: datetime_ms(at_ms),
        kind,
        text,
        details: Vec::new(),
        link: None,
    }
}

pub async fn page(
    State(state): State<AppState>,
    ApiPath(user_ref): ApiPath<String>,
    signed: Signed,
) -> Result<Response, ConsoleError> {
    let store = &state.store;
    let now = now_ms();
    let user = store.get_user(&user_ref).await?;
    let sessions = store.sessions_for_user(&user_ref).await?;
    if user.is_none() && sessions.is_empty() {
        return Err(ConsoleError::new(
            axum::http::StatusCode::NOT_FOUND,
            "Unknown user",
            format!(
                "idverdict has received no verification session for `{user_ref}` (state none)."
            ),
        ));
    }
    let reviews = store.reviews_of(&user_ref).await?;
    let notes = store.case_notes(&user_ref).await?;
    let claim = store.claim_on(&user_ref, now).await?;
    let audit = store.audit_page(None, Some(&user_ref), 200).await?;
    let reactions = store
        .list_reactions(&ReactionFilter {
            user_ref: Some(user_ref.clone()),
            limit: Some(500),
            ..ReactionFilter::default()
        })
        .await?;

    let mut timeline = Vec::new();
    let mut views = Vec::new();
    for s in &sessions {
        let mut created = item(
            s.session_created.saturating_mul(1000),
            "session",
            format!(
                "Session {} created ({})",
                s.id,
                s.session_type
                    .as_ref()
                    .map(|t| t.as_str())
                    .unwrap_or("document")
            ),
        );
        created.link = None;
        timeline.push(created);
        for h in store.session_history(&s.id).await? {
            let mut e = item(
                h.event_created.saturating_mul(1000),
                "event",
                format!("{} ({})", h.event_type, h.effect),
            );
            e.details
                .push(format!("{} on session {}", h.event_id, s.id));
            timeline.push(e);
        }
        for a in store.session_attempts(&s.id).await? {
            timeline.push(item(
                a.event_created.saturating_mul(1000),
                "attempt",
                format!(
                    "Failed attempt on {}: {}",
                    s.id,
                    a.error_code.as_deref().unwrap_or("unknown error")
                ),
            ));
        }
        views.push(SessionView {
            id: s.id.clone(),
            status: s.status.as_str().to_string(),
            outcome: s.outcome.as_str().to_string(),
            created: datetime_secs(s.session_created),
            error: s
                .last_error_code
                .as_ref()
                .map(|c| match &s.last_error_reason {
                    Some(r) => format!("{}: {r}", c.as_str()),
                    None => c.as_str().to_string(),
                })
                .unwrap_or_default(),
            attempts: s.failed_attempts,
            metadata: s
                .metadata
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            redacted: s.redaction_status.is_some(),
        });
    }
    for r in &reviews {
        let mut e = item(
            r.reviewed_at_ms,
            "review",
            format!("Review: {} by {}", r.action, r.reviewer),
        );
        e.details.extend(r.note.clone());
        timeline.push(e);
    }
    for n in &notes {
        let mut e = item(n.at_ms, "note", format!("Note by {}", n.operator));
        e.details.push(n.body.clone());
        timeline.push(e);
    }
    for a in audit
        .iter()
        .filter(|a| a.action == "claim" || a.action == "release")
    {
        timeline.push(claim_item(a));
    }
    for r in &reactions {
        let mut e = item(
            r.created_at_ms,
            "reaction",
            format!(
                "Decision {} → {} to {}: {}",
                r.decision,
                r.kind,
                crate::react::masked_target(&r.kind, &r.target),
                r.state
            ),
        );
        for a in store.reaction_attempts(&r.id).await? {
            e.details.push(format!(
                "attempt {} at {}: {} ({} ms)",
                a.attempt,
                datetime_ms(a.started_at_ms),
                match (a.status_code, &a.error) {
                    (Some(code), None) => format!("HTTP {code}"),
                    (Some(code), Some(err)) => format!("HTTP {code}, {err}"),
                    (None, Some(err)) => err.clone(),
                    (None, None) => "sent".into(),
                },
                a.latency_ms
            ));
        }
        e.link = Some(format!("/console/reactions/{}", path_segment(&r.id)));
        timeline.push(e);
    }
    timeline.sort_by_key(|i| i.at_ms);

    let report_id = sessions.iter().find_map(|s| s.last_report_id.as_deref());
    let evidence = evidence::load(&state, report_id).await;
    let why = explain(user.as_ref(), !sessions.is_empty());
    render(&CasePage {
        layout: signed.layout("queue"),
        path: case_path(&user_ref),
        state: user
            .as_ref()
            .map(|u| u.view.state.as_str())
            .unwrap_or("pending")
            .to_string(),
        since: user.as_ref().map(|u| {
            format!(
                "{} ({} ago)",
                datetime_ms(u.state_since_ms),
                duration_ms(now - u.state_since_ms)
            )
        }),
        why,
        attempts: user
            .as_ref()
            .map(|u| format!("{} of {}", u.view.attempts_used, u.view.attempts_allowed))
            .unwrap_or_default(),
        in_review: user
            .as_ref()
            .is_some_and(|u| u.view.state == UserState::NeedsReview),
        known: user.is_some(),
        claim: claim.map(|c| ClaimView {
            mine: c.operator_id == signed.session.operator.id,
            holder: c.operator_email,
            until: datetime_ms(c.expires_at_ms),
        }),
        evidence,
        reasons: state.console.review_reasons.clone(),
        sessions: views,
        timeline,
        user_ref,
    })
}

fn claim_item(a: &AuditRow) -> Item {
    let who = a.operator.as_deref().unwrap_or("someone");
    let text = if a.action == "claim" {
        format!("Claimed by {who}")
    } else {
        format!("Released by {who}")
    };
    item(a.at_ms, "claim", text)
}

#[derive(Debug, Deserialize)]
pub struct DecideForm {
    action: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    details: String,
}

/// `POST /console/users/{ref}/decide`: the review, with the reason as its note.
pub async fn decide(
    State(state): State<AppState>,
    ApiPath(user_ref): ApiPath<String>,
    posted: Posted<DecideForm>,
) -> Result<Response, ConsoleError> {
    let Posted { signed, form } = posted;
    signed.require(Permission::Review)?;
    let Some(action) = ReviewAction::parse(&form.action) else {
        return Err(ConsoleError::bad_request(
            "Choose approve, reject or allow retry.",
        ));
    };
    let reason = form.reason.trim();
    if !state.console.review_reasons.iter().any(|r| r == reason) {
        return Err(ConsoleError::bad_request(
            "Choose a reason from the list: a decision needs one. Nothing was changed.",
        ));
    }
    let details = form.details.trim();
    if details.chars().count() > MAX_DETAILS {
        return Err(ConsoleError::bad_request(format!(
            "The details may be at most {MAX_DETAILS} characters."
        )));
    }
    let now = now_ms();
    if let Some(c) = state.store.claim_on(&user_ref, now).await? {
        if c.operator_id != signed.session.operator.id {
            return Err(ConsoleError::conflict(format!(
                "{} is working on this case (claimed until {}); they must release it first.",
                c.operator_email,
                datetime_ms(c.expires_at_ms)
            )));
        }
    }
    let note = if details.is_empty() {
        reason.to_string()
    } else {
        format!("{reason} — {details}")
    };
    let user = record_review(&state, &user_ref, action, signed.email(), Some(&note))
        .await?
        .user;
    state
        .store
        .release_case(&user_ref, signed.session.operator.id, true)
        .await?;
    signed
        .audit(&state, Action::Review(action), Some(&user_ref), Some(&note))
        .await?;
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair(
        "done",
        &format!(
            "{user_ref}: {} → {}",
            action.as_str(),
            user.view.state.as_str()
        ),
    );
    Ok(see_other(&format!("/console/queue?{}", query.finish())))
}

#[derive(Debug, Deserialize)]
pub struct NoteForm {
    #[serde(default)]
    body: String,
}

/// `POST /console/users/{ref}/notes`: a note, without deciding.
pub async fn add_note(
    State(state): State<AppState>,
    ApiPath(user_ref): ApiPath<String>,
    posted: Posted<NoteForm>,
) -> Result<Response, ConsoleError> {
    let Posted { signed, form } = posted;
    signed.require(Permission::Review)?;
    let body = form.body.trim();
    if body.is_empty() || body.chars().count() > MAX_NOTE {
        return Err(ConsoleError::bad_request(format!(
            "A note is 1 to {MAX_NOTE} characters."
        )));
    }
    let known = state.store.get_user(&user_ref).await?.is_some()
        || !state.store.sessions_for_user(&user_ref).await?.is_empty();
    if !known {
        return Err(ConsoleError::not_found());
    }
    state
        .store
        .add_case_note(&user_ref, signed.email(), body, now_ms())
        .await?;
    signed
        .audit(&state, Action::Note, Some(&user_ref), None)
        .await?;
    Ok(see_other(&case_path(&user_ref)))
}
