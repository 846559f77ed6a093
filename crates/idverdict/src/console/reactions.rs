//! `GET /console/reactions`: the outbox filtered by state, channel and user, under the callback
//! URLs that are failing or paused; one reaction with every delivery attempt; redeliver
//! (admins), as `idverdict reactions redeliver` does; enable a paused URL (admins), as
//! `idverdict reactions targets enable` does.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::audit::Action;
use super::auth::{Layout, NoFields, Posted, Signed};
use super::format::datetime_ms;
use super::{case_path, options, path_segment, render, see_other, ConsoleError, Opt};
use crate::api::ApiPath;
use crate::clock::now_ms;
use crate::decide::access::Permission;
use crate::react::masked_target;
use crate::state::AppState;
use crate::store::{Enabled, ReactionFilter, ReactionRow, Redeliver, TargetState};

const PAGE: i64 = 100;
const STATES: &[&str] = &["pending", "sending", "delivered", "exhausted", "canceled"];
const CHANNELS: &[&str] = &["callback", "email", "nats"];

struct Row {
    id: String,
    link: String,
    kind: String,
    target: String,
    state: String,
    decision: String,
    user: String,
    user_link: Option<String>,
    attempts: i64,
    created: String,
    last_error: String,
}

fn row(r: &ReactionRow) -> Row {
    Row {
        id: r.id.clone(),
        link: format!("/console/reactions/{}", path_segment(&r.id)),
        kind: r.kind.clone(),
        target: masked_target(&r.kind, &r.target),
        state: r.state.clone(),
        decision: r.decision.clone(),
        user: r.user_ref.clone().unwrap_or_default(),
        user_link: r.user_ref.as_deref().map(case_path),
        attempts: r.attempts,
        created: datetime_ms(r.created_at_ms),
        last_error: r.last_error.clone().unwrap_or_default(),
    }
}

/// A callback URL that is not healthy.
struct TargetRow {
    url: String,
    state: &'static str,
    paused: bool,
    since: String,
    waiting: i64,
    last_error: String,
}

#[derive(Template)]
#[template(path = "console/reactions.html")]
struct ReactionsPage {
    layout: Layout,
    targets: Vec<TargetRow>,
    can_enable: bool,
    rows: Vec<Row>,
    user: String,
    states: Vec<Opt>,
    channels: Vec<Opt>,
}

#[derive(Debug, Deserialize)]
pub struct ReactionsQuery {
    state: Option<String>,
    channel: Option<String>,
    user: Option<String>,
}

fn one_of(
    value: Option<String>,
    allowed: &[&str],
    what: &str,
) -> Result<Option<String>, ConsoleError> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) if allowed.contains(&v.as_str()) => Ok(Some(v)),
        Some(v) => Err(ConsoleError::bad_request(format!("`{v}` is not a {what}."))),
    }
}

pub async fn page(
    State(state): State<AppState>,
    signed: Signed,
    Query(q): Query<ReactionsQuery>,
) -> Result<Response, ConsoleError> {
    let wanted_state = one_of(q.state, STATES, "reaction state")?;
    let channel = one_of(q.channel, CHANNELS, "channel")?;
    let user = q.user.filter(|u| !u.is_empty());
    let rows = state
        .store
        .list_reactions(&ReactionFilter {
            state: wanted_state.clone(),
            user_ref: user.clone(),
            kind: channel.clone(),
            limit: Some(PAGE),
            ..ReactionFilter::default()
        })
        .await?;
    let targets = state
        .store
        .callback_targets(&state.reactions.callbacks.urls)
        .await?
        .into_iter()
        .filter(|t| t.state != TargetState::Healthy)
        .map(|t| TargetRow {
            state: t.state.as_str(),
            paused: t.state == TargetState::Paused,
            since: t
                .paused_at_ms
                .or(t.failing_since_ms)
                .map(datetime_ms)
                .unwrap_or_default(),
            waiting: t.waiting,
            last_error: t.last_error.unwrap_or_default(),
            url: t.url,
        })
        .collect();
    render(&ReactionsPage {
        layout: signed.layout("reactions"),
        targets,
        can_enable: signed.may(Permission::Administer),
        rows: rows.iter().map(row).collect(),
        user: user.unwrap_or_default(),
        states: options(
            STATES.iter().copied(),
            wanted_state.as_deref().unwrap_or(""),
        ),
        channels: options(CHANNELS.iter().copied(), channel.as_deref().unwrap_or("")),
    })
}

struct AttemptView {
    attempt: i64,
    at: String,
    result: String,
    latency_ms: i64,
}

#[derive(Template)]
#[template(path = "console/reaction.html")]
struct ReactionPage {
    layout: Layout,
    r: Row,
    payload: String,
    attempts: Vec<AttemptView>,
    can_redeliver: bool,
    redeliver_path: String,
}

pub async fn detail(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    signed: Signed,
) -> Result<Response, ConsoleError> {
    let Some(r) = state.store.get_reaction(&id).await? else {
        return Err(ConsoleError::not_found());
    };
    let attempts = state
        .store
        .reaction_attempts(&id)
        .await?
        .into_iter()
        .map(|a| AttemptView {
            attempt: a.attempt,
            at: datetime_ms(a.started_at_ms),
            result: match (a.status_code, a.error) {
                (Some(c), None) => format!("HTTP {c}"),
                (Some(c), Some(e)) => format!("HTTP {c}: {e}"),
                (None, Some(e)) => e,
                (None, None) => "sent".into(),
            },
            latency_ms: a.latency_ms,
        })
        .collect();
    let payload = serde_json::from_str::<serde_json::Value>(&r.payload)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| r.payload.clone());
    render(&ReactionPage {
        layout: signed.layout("reactions"),
        can_redeliver: signed.may(Permission::Administer)
            && (r.state == "exhausted" || r.state == "delivered"),
        redeliver_path: format!("/console/reactions/{}/redeliver", path_segment(&r.id)),
        payload,
        attempts,
        r: row(&r),
    })
}

/// `POST /console/reactions/{id}/redeliver` (admins): due now, with a fresh retry schedule.
pub async fn redeliver(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    posted: Posted<NoFields>,
) -> Result<Response, ConsoleError> {
    let signed = posted.signed;
    signed.require(Permission::Administer)?;
    let n = state.store.redeliver(Redeliver::One(&id), now_ms()).await?;
    if n == 0 {
        return Err(ConsoleError::conflict(
            "Only an exhausted or delivered reaction can be redelivered (a pending one is already queued).",
        ));
    }
    signed
        .audit(&state, Action::Redeliver, Some(&id), None)
        .await?;
    Ok(see_other(&format!(
        "/console/reactions/{}",
        path_segment(&id)
    )))
}

#[derive(Debug, Deserialize)]
pub struct EnableForm {
    url: String,
}

/// `POST /console/reactions/targets/enable` (admins): resume a paused callback URL; what
/// waited for it goes out at once.
pub async fn enable_target(
    State(state): State<AppState>,
    posted: Posted<EnableForm>,
) -> Result<Response, ConsoleError> {
    let Posted { signed, form } = posted;
    signed.require(Permission::Administer)?;
    match state
        .store
        .enable_callback_target(&form.url, now_ms())
        .await?
    {
        Enabled::Resumed(requeued) => {
            let detail = format!(
                "{} waiting, {} exhausted requeued",
                requeued.pending, requeued.exhausted
            );
            signed
                .audit(&state, Action::TargetEnable, Some(&form.url), Some(&detail))
                .await?;
            Ok(see_other("/console/reactions"))
        }
        Enabled::NotPaused(_) | Enabled::Unknown => {
            Err(ConsoleError::conflict("That callback URL is not paused."))
        }
    }
}
