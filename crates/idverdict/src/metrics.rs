//! Counters and gauges, exposed in the Prometheus text format at `GET /metrics`. Names are
//! declared here, once, so a dashboard author can find them all in one place.

use metrics::{counter, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub const WEBHOOKS_ACCEPTED: &str = "idverdict_webhooks_accepted_total";
pub const WEBHOOKS_DUPLICATE: &str = "idverdict_webhooks_duplicate_total";
pub const WEBHOOKS_REJECTED: &str = "idverdict_webhooks_rejected_total";
pub const WEBHOOKS_STORAGE_FAILED: &str = "idverdict_webhooks_storage_failed_total";
pub const EVENTS_STORED: &str = "idverdict_events_stored";
pub const EVENTS_PENDING: &str = "idverdict_events_pending";

/// Handle to the process-wide recorder.
#[derive(Clone)]
pub struct Metrics {
    handle: Option<PrometheusHandle>,
}

impl Metrics {
    /// Install the Prometheus recorder (once per process; later calls share nothing and
    /// render an empty page, which only happens in in-process tests).
    pub fn install() -> Metrics {
        let handle = PrometheusBuilder::new().install_recorder().ok();
        Metrics { handle }
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
    }

    pub fn webhook_rejected(&self, reason: &'static str) {
        counter!(WEBHOOKS_REJECTED, "reason" => reason).increment(1);
    }

    pub fn webhook_storage_failed(&self) {
        counter!(WEBHOOKS_STORAGE_FAILED).increment(1);
    }
}
