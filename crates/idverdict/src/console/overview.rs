//! `GET /console`: the numbers that say whether the loop is healthy — users per state, the
//! review queue, the last 24 hours of webhooks (accepted, rejected by reason), the processor's
//! backlog, reactions, the last reconciliation — and warnings for the usual trouble: deliveries
//! rejected for their signature (a wrong `STRIPE_WEBHOOK_SECRET`), a processor that is not
//! keeping up, reactions that are exhausting, callback URLs that are paused.
//!
//! Every number comes from an index or an aggregate (`webhook_stats`, hourly), never a scan of
//! a big table, so the page stays cheap however much history there is.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::auth::{Layout, Signed};
use super::format::{datetime_ms, duration_ms};
use super::{render, ConsoleError};
use crate::clock::{now_ms, now_secs};
use crate::reconcile::LAST_RUN;
use crate::state::AppState;
use crate::store::TargetState;

/// The processor counts as behind when its oldest waiting event is older than this.
const LAG_WARNING_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

struct Count {
    label: String,
    count: i64,
    link: Option<String>,
}

#[derive(Template)]
#[template(path = "console/overview.html")]
struct OverviewPage {
    layout: Layout,
    warnings: Vec<String>,
    states: Vec<Count>,
    queue_length: i64,
    queue_oldest: Option<String>,
    webhooks: Vec<Count>,
    backlog: i64,
    backlog_oldest: Option<String>,
    /// Events set aside because they cannot be applied.
    quarantined: i64,
    reactions: Vec<Count>,
    reconcile: String,
    store_size: String,
    oldest_payload: String,
}

pub async fn page(State(state): State<AppState>, signed: Signed) -> Result<Response, ConsoleError> {
    let store = &state.store;
    let now = now_ms();
    let mut warnings = Vec::new();

    let states = store
        .users_per_state()
        .await?
        .into_iter()
        .map(|(s, count)| Count {
            label: s.as_str().to_string(),
            count,
            link: Some(format!("/console/users?state={}", s.as_str())),
        })
        .collect();
    let (queue_length, oldest) = store.review_queue_summary().await?;

    // This instance's counts of the last seconds first, so a delivery just made shows up
    // (other instances' arrive with their next periodic flush).
    if let Err(error) = state.metrics.tally.flush(store).await {
        tracing::warn!(%error, "cannot store the webhook counts before the overview");
    }
    let since_hour = (now_secs() - 86_400) / 3600 * 3600;
    let mut webhooks: Vec<Count> = Vec::new();
    let mut signature_rejections = 0;
    let mut accepted = 0;
    for (outcome, count) in store.webhook_stats_since(since_hour).await? {
        if outcome == "rejected:no_matching_signature" {
            signature_rejections += count;
        }
        if outcome == "accepted" {
            accepted += count;
        }
        webhooks.push(Count {
            label: outcome.replace(':', " — "),
            count,
            link: None,
        });
    }
    if signature_rejections > 0 {
        warnings.push(format!(
            "{signature_rejections} webhook deliveries in the last 24 h were rejected because no configured secret matched their signature ({accepted} accepted). Check that STRIPE_WEBHOOK_SECRET is the endpoint's signing secret (whsec_…) shown at Stripe."
        ));
    }

    let (backlog, backlog_since) = store.processor_backlog().await?;
    if let Some(since) = backlog_since.filter(|t| now - t > LAG_WARNING_MS) {
        warnings.push(format!(
            "The processor is not keeping up: {backlog} events are waiting, the oldest for {}.",
            duration_ms(now - since)
        ));
    }

    let quarantined = store.quarantined_events().await?;
    if quarantined > 0 {
        warnings.push(format!(
            "{quarantined} events are quarantined: the database refused what applying them would write. They block nothing; list them with `idverdict events list --state quarantined` (or GET /v1/events?state=quarantined) and retry each once the cause is fixed."
        ));
    }

    let (by_state, failing) = store.reaction_counts_since(now - DAY_MS).await?;
    let mut reactions = Vec::new();
    for (s, count) in by_state {
        if s == "exhausted" && count > 0 {
            warnings.push(format!(
                "{count} reactions in the last 24 h were exhausted: every retry failed. See them under Reactions and redeliver once the receiver works."
            ));
        }
        reactions.push(Count {
            link: Some(format!("/console/reactions?state={s}")),
            label: s,
            count,
        });
    }
    reactions.push(Count {
        label: "failing (pending after a failed attempt)".into(),
        count: failing,
        link: Some("/console/reactions?state=pending".into()),
    });

    let paused = store
        .callback_targets(&state.reactions.callbacks.urls)
        .await?
        .into_iter()
        .filter(|t| t.state == TargetState::Paused)
        .count();
    if paused > 0 {
        warnings.push(format!(
            "{paused} callback URL(s) paused after failing continuously: their reactions are held, nothing is lost. See Reactions, and enable a URL once its receiver works."
        ));
    }

    let reconcile = match (&state.stripe, store.sync_state_get(LAST_RUN).await?) {
        (None, _) => "off: no Stripe key is configured".to_string(),
        (Some(_), None) => "no run recorded yet".to_string(),
        (Some(_), Some(text)) => describe_run(&text, now),
    };

    let store_size = match store.size_bytes().await? {
        Some(bytes) => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
        None => "unknown".to_string(),
    };
    let oldest_payload = match store.oldest_payload_ms().await? {
        Some(t) => format!(
            "oldest raw payload kept: {} ({} ago)",
            datetime_ms(t),
            duration_ms(now - t)
        ),
        None => "no raw payload kept".to_string(),
    };

    render(&OverviewPage {
        layout: signed.layout("overview"),
        warnings,
        states,
        queue_length,
        queue_oldest: oldest.map(|t| format!("{} ({} ago)", datetime_ms(t), duration_ms(now - t))),
        webhooks,
        backlog,
        backlog_oldest: backlog_since.map(|t| duration_ms(now - t)),
        quarantined,
        reactions,
        reconcile,
        store_size,
        oldest_payload,
    })
}

/// The stored last run, in words.
fn describe_run(text: &str, now: i64) -> String {
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let at = v["at_ms"].as_i64().unwrap_or(0);
    let when = format!("{} ago", duration_ms(now - at));
    if v["ok"].as_bool() == Some(true) {
        let r = &v["report"];
        format!(
            "{when}: {} events listed, {} had never arrived as webhooks, {} already stored",
            r["listed"].as_u64().unwrap_or(0),
            r["ingested_new"].as_u64().unwrap_or(0),
            r["duplicates"].as_u64().unwrap_or(0)
        )
    } else {
        format!(
            "{when}: failed ({})",
            v["error"].as_str().unwrap_or("unknown error")
        )
    }
}
