//! Every metric, in one place: [`SERIES`] names each series with its type, labels and `# HELP`
//! text; components record through the functions below; `GET /metrics` renders the Prometheus
//! text format. Every series exists from start-up (labelled ones with each label value known
//! in advance, at zero), so dashboards and alerts see a zero rather than "no data".
//!
//! Scrapes never query the database: the store-backed gauges (backlog, processor lag, review
//! queue, exhausted reactions, store size) are refreshed by [`refresh_store_gauges`] on a
//! timer, with queries that only touch indexed subsets of their tables.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::decide::DecisionType;
use crate::react::ReactionKind;
use crate::store::Store;

pub const HTTP_REQUEST_DURATION: &str = "idverdict_http_request_duration_seconds";
pub const WEBHOOKS_ACCEPTED: &str = "idverdict_webhooks_accepted_total";
pub const WEBHOOKS_DUPLICATE: &str = "idverdict_webhooks_duplicate_total";
pub const WEBHOOKS_REJECTED: &str = "idverdict_webhooks_rejected_total";
pub const WEBHOOKS_STORAGE_FAILED: &str = "idverdict_webhooks_storage_failed_total";
pub const EVENTS_PENDING: &str = "idverdict_events_pending";
pub const EVENTS_PROCESSED: &str = "idverdict_events_processed_total";
pub const EVENTS_QUARANTINED: &str = "idverdict_events_quarantined";
pub const EVENTS_QUARANTINED_TOTAL: &str = "idverdict_events_quarantined_total";
pub const PROCESSOR_LAG: &str = "idverdict_processor_lag_seconds";
pub const PROCESSOR_BATCH_DURATION: &str = "idverdict_processor_batch_duration_seconds";
pub const DECISIONS: &str = "idverdict_decisions_total";
pub const REACTION_ATTEMPTS: &str = "idverdict_reaction_attempts_total";
pub const REACTION_ATTEMPT_DURATION: &str = "idverdict_reaction_attempt_duration_seconds";
pub const REACTION_DELIVERY_LATENCY: &str = "idverdict_reaction_delivery_latency_seconds";
pub const REACTIONS_EXHAUSTED: &str = "idverdict_reactions_exhausted";
pub const REVIEW_QUEUE_LENGTH: &str = "idverdict_review_queue_length";
pub const REVIEW_QUEUE_OLDEST_AGE: &str = "idverdict_review_queue_oldest_age_seconds";
pub const RECONCILE_RUNS: &str = "idverdict_reconcile_runs_total";
pub const RECONCILE_INGESTED: &str = "idverdict_reconcile_ingested_total";
pub const STORE_SIZE: &str = "idverdict_store_size_bytes";
pub const STORE_OLDEST_PAYLOAD_AGE: &str = "idverdict_store_oldest_payload_age_seconds";
pub const NOTIFICATIONS_RECEIVED: &str = "idverdict_notifications_received_total";
pub const NOTIFICATIONS_LISTENING: &str = "idverdict_notifications_listening";
pub const REACTIONS_RECLAIMED: &str = "idverdict_reactions_reclaimed_total";
pub const CALLBACK_TARGET_PAUSES: &str = "idverdict_callback_target_pauses_total";
pub const CALLBACK_TARGETS_PAUSED: &str = "idverdict_callback_targets_paused";
pub const REACTIONS_HELD: &str = "idverdict_reactions_held";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One series: what a dashboard author needs to know about it.
#[derive(Debug)]
pub struct Series {
    pub name: &'static str,
    pub kind: Kind,
    /// Label names, in order.
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

/// Why a webhook delivery was refused: the `code` of its 4xx answer.
pub const REJECTION_REASONS: [&str; 11] = [
    "missing_signature_header",
    "malformed_signature_header",
    "no_v1_signature",
    "no_matching_signature",
    "timestamp_too_old",
    "timestamp_in_future",
    "invalid_json",
    "not_an_event",
    "payload_too_large",
    "unreadable_body",
    "invalid_identifier",
];

/// The `LISTEN`/`NOTIFY` channels (PostgreSQL), as `store::notify` names them.
pub const NOTIFY_CHANNELS: [&str; 2] = [
    crate::store::notify::EVENTS,
    crate::store::notify::REACTIONS,
];

/// What a reaction attempt ended in.
pub const ATTEMPT_OUTCOMES: [&str; 3] = ["delivered", "failed", "exhausted"];

/// Every series `/metrics` exposes.
pub const SERIES: &[Series] = &[
    Series {
        name: HTTP_REQUEST_DURATION,
        kind: Kind::Histogram,
        labels: &["route", "status"],
        help: "Time to answer an HTTP request, by route template and status code.",
    },
    Series {
        name: WEBHOOKS_ACCEPTED,
        kind: Kind::Counter,
        labels: &[],
        help: "Webhook deliveries stored and acknowledged with 200 (duplicates included).",
    },
    Series {
        name: WEBHOOKS_DUPLICATE,
        kind: Kind::Counter,
        labels: &[],
        help: "Acknowledged webhook deliveries of an event that was already stored.",
    },
    Series {
        name: WEBHOOKS_REJECTED,
        kind: Kind::Counter,
        labels: &["reason"],
        help: "Webhook deliveries refused with a 4xx, by reason; no_matching_signature means no configured webhook secret matched.",
    },
    Series {
        name: WEBHOOKS_STORAGE_FAILED,
        kind: Kind::Counter,
        labels: &[],
        help: "Webhook deliveries answered 503 because the event could not be stored (Stripe retries).",
    },
    Series {
        name: EVENTS_PENDING,
        kind: Kind::Gauge,
        labels: &[],
        help: "Stored events not yet processed.",
    },
    Series {
        name: EVENTS_PROCESSED,
        kind: Kind::Counter,
        labels: &[],
        help: "Events applied by the processor.",
    },
    Series {
        name: EVENTS_QUARANTINED,
        kind: Kind::Gauge,
        labels: &[],
        help: "Stored events set aside because they cannot be applied (GET /v1/events?state=quarantined; retry with POST /v1/events/{id}/retry). Not counted as pending.",
    },
    Series {
        name: EVENTS_QUARANTINED_TOTAL,
        kind: Kind::Counter,
        labels: &[],
        help: "Events this instance quarantined.",
    },
    Series {
        name: PROCESSOR_LAG,
        kind: Kind::Gauge,
        labels: &[],
        help: "Age in seconds of the oldest stored event not yet processed (0 when none).",
    },
    Series {
        name: PROCESSOR_BATCH_DURATION,
        kind: Kind::Histogram,
        labels: &[],
        help: "Time to claim, decide and commit one batch of events.",
    },
    Series {
        name: DECISIONS,
        kind: Kind::Counter,
        labels: &["decision"],
        help: "Decisions made about users and sessions, by kind.",
    },
    Series {
        name: REACTION_ATTEMPTS,
        kind: Kind::Counter,
        labels: &["channel", "outcome"],
        help: "Reaction delivery attempts by channel (callback, email, nats) and outcome (delivered, failed and retried later, exhausted).",
    },
    Series {
        name: REACTION_ATTEMPT_DURATION,
        kind: Kind::Histogram,
        labels: &["channel"],
        help: "Time one reaction delivery attempt took, by channel.",
    },
    Series {
        name: REACTION_DELIVERY_LATENCY,
        kind: Kind::Histogram,
        labels: &["channel"],
        help: "Time from a decision to the delivery of its reaction, retries included, by channel.",
    },
    Series {
        name: REACTIONS_EXHAUSTED,
        kind: Kind::Gauge,
        labels: &[],
        help: "Reactions that used up their retries and wait for `idverdict reactions redeliver`.",
    },
    Series {
        name: REVIEW_QUEUE_LENGTH,
        kind: Kind::Gauge,
        labels: &[],
        help: "Users waiting in the manual-review queue (needs_review).",
    },
    Series {
        name: REVIEW_QUEUE_OLDEST_AGE,
        kind: Kind::Gauge,
        labels: &[],
        help: "Seconds the longest-waiting user has been in the review queue (0 when empty).",
    },
    Series {
        name: RECONCILE_RUNS,
        kind: Kind::Counter,
        labels: &["result"],
        help: "Reconciliation runs against Stripe's events list, by result (ok, failed).",
    },
    Series {
        name: RECONCILE_INGESTED,
        kind: Kind::Counter,
        labels: &[],
        help: "Events reconciliation found that had never arrived as webhooks.",
    },
    Series {
        name: STORE_SIZE,
        kind: Kind::Gauge,
        labels: &[],
        help: "Size of the database in bytes (the SQLite file, or the PostgreSQL database).",
    },
    Series {
        name: STORE_OLDEST_PAYLOAD_AGE,
        kind: Kind::Gauge,
        labels: &[],
        help: "Age of the oldest raw event payload still stored (retention deletes processed events' payloads after retention.payload_days); 0 when none is kept.",
    },
    Series {
        name: NOTIFICATIONS_RECEIVED,
        kind: Kind::Counter,
        labels: &["channel"],
        help: "PostgreSQL notifications received that new work is stored (idverdict_events, idverdict_reactions), from this or another instance or a CLI command.",
    },
    Series {
        name: NOTIFICATIONS_LISTENING,
        kind: Kind::Gauge,
        labels: &[],
        help: "1 while this instance listens for PostgreSQL notifications of new work, 0 while it only polls (always 0 on SQLite, where one instance does all the work).",
    },
    Series {
        name: REACTIONS_RECLAIMED,
        kind: Kind::Counter,
        labels: &[],
        help: "Claimed reactions taken back because their attempt's result was never recorded (a crash, or a lease that ran out); each is sent again with the same id.",
    },
    Series {
        name: CALLBACK_TARGET_PAUSES,
        kind: Kind::Counter,
        labels: &[],
        help: "Times a callback URL was paused after failing for callbacks.pause_after.",
    },
    Series {
        name: CALLBACK_TARGETS_PAUSED,
        kind: Kind::Gauge,
        labels: &[],
        help: "Callback URLs paused now: not tried until `idverdict reactions targets enable URL`.",
    },
    Series {
        name: REACTIONS_HELD,
        kind: Kind::Gauge,
        labels: &[],
        help: "Reactions queued for a paused callback URL (kept, sent once it is enabled).",
    },
];

/// Seconds, for request and batch durations.
const FAST_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Seconds, for deliveries whose retries span hours.
const DELIVERY_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 7200.0, 21600.0,
    86400.0,
];

/// How often the store-backed gauges are refreshed.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5);

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Handle to the process-wide recorder, and this app's webhook counts for the console's
/// overview (kept per hour in memory, flushed to the database by [`WebhookTally::flush`]).
#[derive(Clone)]
pub struct Metrics {
    handle: Option<PrometheusHandle>,
    pub tally: Arc<WebhookTally>,
}

impl Metrics {
    /// Install the Prometheus recorder once per process (every [`App`](crate::App) in it
    /// shares it) and register every series at zero. `webhook_path` is the route label of
    /// the webhook receiver.
    pub fn install(webhook_path: &str) -> Metrics {
        let handle = RECORDER
            .get_or_init(|| {
                let mut builder = PrometheusBuilder::new();
                for (name, buckets) in [
                    (HTTP_REQUEST_DURATION, FAST_BUCKETS),
                    (PROCESSOR_BATCH_DURATION, FAST_BUCKETS),
                    (REACTION_ATTEMPT_DURATION, DELIVERY_BUCKETS),
                    (REACTION_DELIVERY_LATENCY, DELIVERY_BUCKETS),
                ] {
                    builder = builder
                        .set_buckets_for_metric(Matcher::Full(name.to_string()), buckets)
                        .ok()?;
                }
                builder.install_recorder().ok()
            })
            .clone();
        register_all(webhook_path);
        Metrics {
            handle,
            tally: Arc::default(),
        }
    }

    /// A webhook stored (or a duplicate acknowledged): the counter and the overview's count.
    pub fn webhook_accepted(&self, duplicate: bool) {
        webhook_accepted(duplicate);
        self.tally
            .add(if duplicate { "duplicate" } else { "accepted" }.into());
    }

    /// A webhook refused, by reason.
    pub fn webhook_rejected(&self, reason: &'static str) {
        webhook_rejected(reason);
        self.tally.add(format!("rejected:{reason}").into());
    }

    /// A webhook that could not be stored (503).
    pub fn webhook_storage_failed(&self) {
        webhook_storage_failed();
        self.tally.add("storage_failed".into());
    }

    /// The Prometheus text page. Reads only in-memory values.
    pub fn render(&self) -> String {
        self.handle.as_ref().map(|h| h.render()).unwrap_or_default()
    }
}

/// Describe every series and create each one (each known label combination) at zero.
fn register_all(webhook_path: &str) {
    for s in SERIES {
        match s.kind {
            Kind::Counter => describe_counter!(s.name, s.help),
            Kind::Gauge => describe_gauge!(s.name, s.help),
            Kind::Histogram => describe_histogram!(s.name, s.help),
        }
    }
    let channels = ReactionKind::ALL.map(ReactionKind::as_str);
    for name in [
        WEBHOOKS_ACCEPTED,
        WEBHOOKS_DUPLICATE,
        WEBHOOKS_STORAGE_FAILED,
        EVENTS_PROCESSED,
        EVENTS_QUARANTINED_TOTAL,
        RECONCILE_INGESTED,
        REACTIONS_RECLAIMED,
        CALLBACK_TARGET_PAUSES,
    ] {
        counter!(name).increment(0);
    }
    for channel in NOTIFY_CHANNELS {
        counter!(NOTIFICATIONS_RECEIVED, "channel" => channel).increment(0);
    }
    for reason in REJECTION_REASONS {
        counter!(WEBHOOKS_REJECTED, "reason" => reason).increment(0);
    }
    for decision in DecisionType::ALL {
        counter!(DECISIONS, "decision" => decision.as_str()).increment(0);
    }
    for channel in channels {
        for outcome in ATTEMPT_OUTCOMES {
            counter!(REACTION_ATTEMPTS, "channel" => channel, "outcome" => outcome).increment(0);
        }
        let _ = histogram!(REACTION_ATTEMPT_DURATION, "channel" => channel);
        let _ = histogram!(REACTION_DELIVERY_LATENCY, "channel" => channel);
    }
    for result in ["ok", "failed"] {
        counter!(RECONCILE_RUNS, "result" => result).increment(0);
    }
    for name in [
        EVENTS_PENDING,
        EVENTS_QUARANTINED,
        PROCESSOR_LAG,
        REACTIONS_EXHAUSTED,
        REVIEW_QUEUE_LENGTH,
        REVIEW_QUEUE_OLDEST_AGE,
        STORE_SIZE,
        STORE_OLDEST_PAYLOAD_AGE,
        CALLBACK_TARGETS_PAUSED,
        REACTIONS_HELD,
        NOTIFICATIONS_LISTENING,
    ] {
        gauge!(name).increment(0.0);
    }
    let _ = histogram!(PROCESSOR_BATCH_DURATION);
    // The receiver's acknowledgements and refusals, the two lines every dashboard draws.
    for status in ["200", "400"] {
        let _ = histogram!(HTTP_REQUEST_DURATION, "route" => webhook_path.to_string(), "status" => status);
    }
}

pub fn http_request(route: String, status: u16, elapsed: Duration) {
    histogram!(HTTP_REQUEST_DURATION, "route" => route, "status" => status.to_string())
        .record(elapsed.as_secs_f64());
}

pub fn webhook_accepted(duplicate: bool) {
    counter!(WEBHOOKS_ACCEPTED).increment(1);
    if duplicate {
        counter!(WEBHOOKS_DUPLICATE).increment(1);
    }
}

pub fn webhook_rejected(reason: &'static str) {
    counter!(WEBHOOKS_REJECTED, "reason" => reason).increment(1);
}

pub fn webhook_storage_failed() {
    counter!(WEBHOOKS_STORAGE_FAILED).increment(1);
}

/// A committed batch: its events, the decisions it made and how long it took.
pub fn batch_processed(events: usize, decisions: &[DecisionType], elapsed: Duration) {
    histogram!(PROCESSOR_BATCH_DURATION).record(elapsed.as_secs_f64());
    counter!(EVENTS_PROCESSED).increment(events as u64);
    decisions_made(decisions);
}

/// Committed decisions (a batch's, or a review's).
pub fn decisions_made(decisions: &[DecisionType]) {
    for d in decisions {
        counter!(DECISIONS, "decision" => d.as_str()).increment(1);
    }
}

/// One reaction attempt on `channel` ended in `outcome` (one of [`ATTEMPT_OUTCOMES`]);
/// `since_decision` is set when it was delivered.
pub fn reaction_attempt(
    channel: &'static str,
    outcome: &'static str,
    took: Duration,
    since_decision: Option<Duration>,
) {
    counter!(REACTION_ATTEMPTS, "channel" => channel, "outcome" => outcome).increment(1);
    histogram!(REACTION_ATTEMPT_DURATION, "channel" => channel).record(took.as_secs_f64());
    if let Some(latency) = since_decision {
        histogram!(REACTION_DELIVERY_LATENCY, "channel" => channel).record(latency.as_secs_f64());
    }
}

/// A `LISTEN`/`NOTIFY` notification arrived on `channel`.
pub fn notification_received(channel: &str) {
    if let Some(known) = NOTIFY_CHANNELS.iter().find(|c| **c == channel) {
        counter!(NOTIFICATIONS_RECEIVED, "channel" => *known).increment(1);
    }
}

/// Whether this instance's notification listener is connected.
pub fn notifications_listening(listening: bool) {
    gauge!(NOTIFICATIONS_LISTENING).set(if listening { 1.0 } else { 0.0 });
}

/// An event set aside by the processor.
pub fn event_quarantined() {
    counter!(EVENTS_QUARANTINED_TOTAL).increment(1);
}

/// Claims taken back after their attempt was interrupted.
pub fn reactions_reclaimed(n: u64) {
    counter!(REACTIONS_RECLAIMED).increment(n);
}

/// Callback URLs paused now.
pub fn callback_targets_paused(n: usize) {
    counter!(CALLBACK_TARGET_PAUSES).increment(n as u64);
}

pub fn reconcile_run(ingested: Option<u64>) {
    match ingested {
        Some(n) => {
            counter!(RECONCILE_RUNS, "result" => "ok").increment(1);
            counter!(RECONCILE_INGESTED).increment(n);
        }
        None => counter!(RECONCILE_RUNS, "result" => "failed").increment(1),
    }
}

/// Refresh the store-backed gauges from a few indexed queries (see `Store::stats`).
pub async fn refresh_store_gauges(store: &Store) -> Result<(), crate::store::StoreError> {
    let stats = store.stats().await?;
    let now = crate::clock::now_ms();
    let age = |since_ms: Option<i64>| {
        since_ms
            .map(|t| (now - t).max(0) as f64 / 1000.0)
            .unwrap_or(0.0)
    };
    gauge!(EVENTS_PENDING).set(stats.pending_events as f64);
    gauge!(EVENTS_QUARANTINED).set(stats.quarantined_events as f64);
    gauge!(PROCESSOR_LAG).set(age(stats.oldest_pending_received_ms));
    gauge!(REACTIONS_EXHAUSTED).set(stats.exhausted_reactions as f64);
    gauge!(REVIEW_QUEUE_LENGTH).set(stats.review_queue as f64);
    gauge!(REVIEW_QUEUE_OLDEST_AGE).set(age(stats.oldest_review_since_ms));
    gauge!(CALLBACK_TARGETS_PAUSED).set(stats.paused_callback_targets as f64);
    gauge!(REACTIONS_HELD).set(stats.held_reactions as f64);
    if let Some(bytes) = stats.size_bytes {
        gauge!(STORE_SIZE).set(bytes as f64);
    }
    gauge!(STORE_OLDEST_PAYLOAD_AGE).set(age(stats.oldest_payload_received_ms));
    Ok(())
}

/// Refresh the gauges now and then every [`REFRESH_INTERVAL`] until `stop` turns true.
pub async fn refresh_periodically(store: Store, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        if let Err(error) = refresh_store_gauges(&store).await {
            tracing::debug!(%error, "refreshing the store gauges failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(REFRESH_INTERVAL) => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
            }
        }
    }
}

/// The line before the generated metrics table in README.md.
pub const README_BEGIN: &str = "<!-- metrics table: generated from crates/idverdict/src/metrics.rs (IDVERDICT_WRITE_README=1 cargo test -p idverdict metrics:: rewrites it) -->";
/// The line after it.
pub const README_END: &str = "<!-- end of metrics table -->";

/// The README's metrics table, generated from [`SERIES`].
pub fn markdown_table() -> String {
    let mut out = String::from("| Series | Type | Labels | Meaning |\n|---|---|---|---|\n");
    for s in SERIES {
        let labels = if s.labels.is_empty() {
            "—".to_string()
        } else {
            s.labels
                .iter()
                .map(|l| format!("`{l}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "| `{}` | {} | {labels} | {} |\n",
            s.name,
            s.kind.as_str(),
            s.help
        ));
    }
    out
}

/// Webhook outcomes per hour, counted in memory on the request path (never a database write
/// per request, least of all per rejected one) and added to `webhook_stats` by
/// [`WebhookTally::flush`], so the console's numbers survive restarts and add up over
/// instances.
#[derive(Debug, Default)]
pub struct WebhookTally {
    counts: Mutex<HashMap<(i64, Cow<'static, str>), i64>>,
}

impl WebhookTally {
    fn add(&self, outcome: Cow<'static, str>) {
        let hour = crate::clock::now_secs() / 3600 * 3600;
        if let Ok(mut counts) = self.counts.lock() {
            *counts.entry((hour, outcome)).or_default() += 1;
        }
    }

    /// Flush every `every` until `stop` turns true, and once more then.
    pub async fn flush_periodically(
        self: Arc<Self>,
        store: Store,
        every: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            let stopping = tokio::select! {
                _ = tokio::time::sleep(every) => false,
                changed = stop.changed() => changed.is_err() || *stop.borrow(),
            };
            if let Err(e) = self.flush(&store).await {
                tracing::warn!(error = %e, "cannot store the webhook counts; keeping them for the next try");
            }
            if stopping {
                return;
            }
        }
    }

    /// Move what was counted to the database; on failure it is put back for the next flush.
    pub async fn flush(&self, store: &Store) -> Result<(), crate::store::StoreError> {
        let taken: Vec<(i64, String, i64)> = match self.counts.lock() {
            Ok(mut counts) => counts
                .drain()
                .map(|((hour, outcome), n)| (hour, outcome.into_owned(), n))
                .collect(),
            Err(_) => return Ok(()),
        };
        if let Err(e) = store.add_webhook_stats(&taken).await {
            if let Ok(mut counts) = self.counts.lock() {
                for (hour, outcome, n) in taken {
                    *counts.entry((hour, outcome.into())).or_default() += n;
                }
            }
            return Err(e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_named_once_with_a_prometheus_name() {
        let mut names: Vec<&str> = SERIES.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SERIES.len());
        for s in SERIES {
            assert!(s.name.starts_with("idverdict_"), "{}", s.name);
            assert_eq!(
                s.kind == Kind::Counter,
                s.name.ends_with("_total"),
                "{}",
                s.name
            );
            assert!(!s.help.is_empty());
        }
    }

    /// The README lists exactly these series.
    #[test]
    fn the_readme_table_is_current() {
        crate::config::docs::check_readme(README_BEGIN, README_END, &markdown_table());
    }

    #[test]
    fn cells_cannot_break_the_table() {
        for s in SERIES {
            assert!(
                !s.help.contains('|') && !s.help.contains('\n'),
                "{}",
                s.name
            );
        }
    }
}
