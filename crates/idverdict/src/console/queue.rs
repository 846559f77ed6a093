//! The review queue: users in `needs_review`, oldest first (by when they entered the state),
//! with why, attempts and age; a filter by error code; and the claims — "Claim next" leases the
//! oldest unclaimed case to the reviewer (`console.claim_secs`), a case can be claimed or
//! released from its page, an expired claim is free again, and every claim shows its holder.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use stripe_webhook::ErrorCode;

use super::audit::Action;
use super::auth::{Layout, NoFields, Posted, Signed};
use super::format::{datetime_ms, duration_ms};
use super::{case_path, options, render, see_other, ConsoleError, Opt};
use crate::api::ApiPath;
use crate::clock::now_ms;
use crate::decide::access::Permission;
use crate::state::AppState;
use crate::store::ClaimOutcome;

/// Cases shown on one page of the queue.
const QUEUE_PAGE: i64 = 200;

struct Row {
    user_ref: String,
    link: String,
    since: String,
    age: String,
    code: String,
    rule: String,
    attempts: String,
    claimed_by: Option<String>,
    mine: bool,
}

#[derive(Template)]
#[template(path = "console/queue.html")]
struct QueuePage {
    layout: Layout,
    rows: Vec<Row>,
    total: i64,
    filtered: bool,
    reasons: Vec<Opt>,
    done: Option<String>,
    empty_claim: bool,
}

#[derive(Debug, Deserialize)]
pub struct QueueQuery {
    reason: Option<String>,
    /// A case just decided (shown as a confirmation).
    done: Option<String>,
    /// "Claim next" found nothing.
    empty: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    signed: Signed,
    Query(q): Query<QueueQuery>,
) -> Result<Response, ConsoleError> {
    let now = now_ms();
    let reason = q.reason.filter(|r| !r.is_empty());
    let users = state
        .store
        .review_queue_by_reason(reason.as_deref(), QUEUE_PAGE)
        .await?;
    let (total, _) = state.store.review_queue_summary().await?;
    let claims: HashMap<String, _> = state
        .store
        .live_claims(now)
        .await?
        .into_iter()
        .map(|c| (c.user_ref.clone(), c))
        .collect();
    let rows = users
        .iter()
        .map(|u| {
            let claim = claims.get(&u.user_ref);
            Row {
                user_ref: u.user_ref.clone(),
                link: case_path(&u.user_ref),
                since: datetime_ms(u.state_since_ms),
                age: duration_ms(now - u.state_since_ms),
                code: u
                    .view
                    .error_code
                    .as_ref()
                    .map(|c| c.as_str().to_string())
                    .unwrap_or_default(),
                rule: super::why::queue_reason(u),
                attempts: format!("{} / {}", u.view.attempts_used, u.view.attempts_allowed),
                claimed_by: claim.map(|c| {
                    format!(
                        "{} (until {})",
                        c.operator_email,
                        datetime_ms(c.expires_at_ms)
                    )
                }),
                mine: claim.is_some_and(|c| c.operator_id == signed.session.operator.id),
            }
        })
        .collect();
    render(&QueuePage {
        layout: signed.layout("queue"),
        rows,
        total,
        filtered: reason.is_some(),
        reasons: options(
            ErrorCode::ALL.iter().map(|c| c.as_str()),
            reason.as_deref().unwrap_or(""),
        ),
        done: q.done,
        empty_claim: q.empty.is_some(),
    })
}

fn lease_ms(state: &AppState) -> i64 {
    state.console.claim.as_millis() as i64
}

/// `POST /console/queue/claim`: the oldest unclaimed case (or the one already held).
pub async fn claim_next(
    State(state): State<AppState>,
    posted: Posted<NoFields>,
) -> Result<Response, ConsoleError> {
    let signed = posted.signed;
    signed.require(Permission::Review)?;
    let op = &signed.session.operator;
    let claimed = state
        .store
        .claim_next_case(op.id, &op.email, now_ms(), lease_ms(&state))
        .await?;
    let Some(user_ref) = claimed else {
        return Ok(see_other("/console/queue?empty=1"));
    };
    signed
        .audit(&state, Action::Claim, Some(&user_ref), None)
        .await?;
    Ok(see_other(&case_path(&user_ref)))
}

/// `POST /console/users/{ref}/claim`.
pub async fn claim(
    State(state): State<AppState>,
    ApiPath(user_ref): ApiPath<String>,
    posted: Posted<NoFields>,
) -> Result<Response, ConsoleError> {
    let signed = posted.signed;
    signed.require(Permission::Review)?;
    let op = &signed.session.operator;
    match state
        .store
        .claim_case(&user_ref, op.id, &op.email, now_ms(), lease_ms(&state))
        .await?
    {
        ClaimOutcome::Claimed { .. } => {
            signed
                .audit(&state, Action::Claim, Some(&user_ref), None)
                .await?;
            Ok(see_other(&case_path(&user_ref)))
        }
        ClaimOutcome::HeldBy {
            email,
            expires_at_ms,
        } => Err(ConsoleError::conflict(format!(
            "{email} is working on this case (claimed until {}).",
            datetime_ms(expires_at_ms)
        ))),
        ClaimOutcome::NotInReview => Err(ConsoleError::conflict(
            "This user is not waiting for review, so there is nothing to claim.",
        )),
    }
}

/// `POST /console/users/{ref}/release`: the holder gives the case back (an admin may release
/// anyone's claim).
pub async fn release(
    State(state): State<AppState>,
    ApiPath(user_ref): ApiPath<String>,
    posted: Posted<NoFields>,
) -> Result<Response, ConsoleError> {
    let signed = posted.signed;
    signed.require(Permission::Review)?;
    let any = signed.may(Permission::Administer);
    let released = state
        .store
        .release_case(&user_ref, signed.session.operator.id, any)
        .await?;
    if !released {
        return Err(ConsoleError::conflict(
            "You hold no claim on this case (it may have expired or been released).",
        ));
    }
    signed
        .audit(&state, Action::Release, Some(&user_ref), None)
        .await?;
    Ok(see_other(&case_path(&user_ref)))
}
