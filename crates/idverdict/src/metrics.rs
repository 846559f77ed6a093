//! Counters and gauges, exposed in the Prometheus text format at `GET /metrics`. Names are
//! declared here, once, so a dashboard author can find them all in one place.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use metrics::{counter, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub const WEBHOOKS_ACCEPTED: &str = "idverdict_webhooks_accepted_total";
pub const WEBHOOKS_DUPLICATE: &str = "idverdict_webhooks_duplicate_total";
pub const WEBHOOKS_REJECTED: &str = "idverdict_webhooks_rejected_total";
pub const WEBHOOKS_STORAGE_FAILED: &str = "idverdict_webhooks_storage_failed_total";
pub const EVENTS_STORED: &str = "idverdict_events_stored";
pub const EVENTS_PENDING: &str = "idverdict_events_pending";

/// Handle to the process-wide recorder, and the webhook counts the console's overview reads
/// (kept per hour in memory and flushed to the database by [`WebhookTally::flush`]).
#[derive(Clone)]
pub struct Metrics {
    handle: Option<PrometheusHandle>,
    pub tally: Arc<WebhookTally>,
}

impl Metrics {
    /// Install the Prometheus recorder (once per process; later calls share nothing and
    /// render an empty page, which only happens in in-process tests).
    pub fn install() -> Metrics {
        let handle = PrometheusBuilder::new().install_recorder().ok();
        Metrics {
            handle,
            tally: Arc::default(),
        }
    }

    pub fn render(&self, stored: i64, pending: i64) -> String {
        gauge!(EVENTS_STORED).set(stored as f64);
        gauge!(EVENTS_PENDING).set(pending as f64);
        self.handle.as_ref().map(|h| h.render()).unwrap_or_default()
    }

    pub fn webhook_accepted(&self, duplicate: bool) {
        counter!(WEBHOOKS_ACCEPTED).increment(1);
        if duplicate {
            counter!(WEBHOOKS_DUPLICATE).increment(1);
        }
        self.tally
            .add(if duplicate { "duplicate" } else { "accepted" }.into());
    }

    pub fn webhook_rejected(&self, reason: &'static str) {
        counter!(WEBHOOKS_REJECTED, "reason" => reason).increment(1);
        self.tally.add(format!("rejected:{reason}").into());
    }

    pub fn webhook_storage_failed(&self) {
        counter!(WEBHOOKS_STORAGE_FAILED).increment(1);
        self.tally.add("storage_failed".into());
    }
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
        store: crate::store::Store,
        every: std::time::Duration,
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
    pub async fn flush(&self, store: &crate::store::Store) -> Result<(), crate::store::StoreError> {
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
