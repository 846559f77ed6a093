//! Reconciliation: list the `identity.verification_session.*` events Stripe has and ingest the
//! ones that never arrived as webhooks (endpoint down, disabled, misconfigured, or deliveries
//! given up after three days).
//!
//! Listed events go through the same storage path as webhooks (`Store::insert_events`, keyed
//! by `evt_…`), so an event that did arrive is a harmless duplicate and the processor applies
//! each event exactly once whichever way it came. Listed events are not signed; they are
//! trusted because they came from the API over TLS, authenticated with our own key.
//!
//! A cursor (the newest `created` seen) is kept in `sync_state`, so a periodic run only lists
//! what is new, with an overlap because events of the same second (or that Stripe makes
//! visible slightly late) may appear after we listed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::clock::{now_ms, now_secs};
use crate::store::{NewEvent, Receipt, Store, StoreError};
use crate::stripe_api::{
    StripeApiError, StripeClient, IDENTITY_EVENT_TYPES, STRIPE_EVENT_RETENTION,
};

/// `sync_state` name of the cursor.
const CURSOR: &str = "reconcile.events_created";
/// `sync_state` name of the last periodic run's result (JSON: `at_ms`, `ok`, `report` or
/// `error`).
pub const LAST_RUN: &str = "reconcile.last_run";
/// How far before the cursor each run starts again.
const CURSOR_OVERLAP_SECS: i64 = 300;

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("listing events at Stripe failed: {0}")]
    Stripe(#[from] StripeApiError),
    #[error("storing listed events failed: {0}")]
    Store(#[from] StoreError),
    #[error("an event could not be re-serialised: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReconcileReport {
    /// Events Stripe listed.
    pub listed: u64,
    /// Of those, events idverdict had never received: webhooks that were lost.
    pub ingested_new: u64,
    /// Of those, events already stored.
    pub duplicates: u64,
    /// The `created[gte]` the run listed from (unix seconds).
    pub listed_from: i64,
    /// Events listed with an identifier no backend can store (the webhook receiver refuses
    /// the same ones with 400 `invalid_identifier`): skipped, with a warning.
    pub invalid: u64,
}

pub struct Reconciler {
    store: Store,
    client: Arc<StripeClient>,
    /// Wakes the processor after new events were stored (it polls anyway, this is only sooner).
    wake: Option<Arc<Notify>>,
}

impl Reconciler {
    pub fn new(store: Store, client: Arc<StripeClient>) -> Reconciler {
        Reconciler {
            store,
            client,
            wake: None,
        }
    }

    /// Notify the processor (the same `Notify` the committer uses) when events were ingested.
    pub fn with_wake(mut self, wake: Arc<Notify>) -> Reconciler {
        self.wake = Some(wake);
        self
    }

    /// One pass: list events created since max(cursor − overlap, now − `since`, now − 30 days)
    /// and store the ones not seen yet. The cursor moves only after every page was stored, so
    /// a failed run is simply repeated by the next one.
    pub async fn run_once(&self, since: Duration) -> Result<ReconcileReport, ReconcileError> {
        let now = now_secs();
        let window = since.min(STRIPE_EVENT_RETENTION).as_secs() as i64;
        let mut from = now - window;
        if let Some(cursor) = self.cursor().await? {
            from = from.max(cursor - CURSOR_OVERLAP_SECS);
        }
        let mut report = ReconcileReport {
            listed_from: from,
            ..ReconcileReport::default()
        };
        let mut newest: Option<i64> = None;
        let mut pages = self.client.event_pages(IDENTITY_EVENT_TYPES, Some(from));
        while let Some(events) = pages.next_page().await? {
            let mut batch = Vec::with_capacity(events.len());
            for event in &events {
                newest = Some(newest.map_or(event.created, |n| n.max(event.created)));
                match NewEvent::from_event(event, serde_json::to_vec(event)?) {
                    Ok(new) => batch.push(new),
                    Err(error) => {
                        report.listed += 1;
                        report.invalid += 1;
                        tracing::warn!(%error, "skipped a listed event that cannot be stored");
                    }
                }
            }
            let receipts = self.store.insert_events(&batch, now_ms()).await?;
            for receipt in receipts {
                report.listed += 1;
                match receipt {
                    Receipt::New => report.ingested_new += 1,
                    Receipt::Duplicate => report.duplicates += 1,
                }
            }
        }
        if let Some(newest) = newest {
            self.store.sync_state_raise(CURSOR, newest).await?;
        }
        crate::metrics::reconcile_run(Some(report.ingested_new));
        if report.ingested_new > 0 {
            if let Some(wake) = &self.wake {
                wake.notify_one();
            }
        }
        Ok(report)
    }

    /// Keep what the run found (or why it failed) under [`LAST_RUN`], for the console.
    async fn record_run(&self, result: &Result<ReconcileReport, ReconcileError>) {
        let value = match result {
            Ok(report) => serde_json::json!({"at_ms": now_ms(), "ok": true, "report": report}),
            Err(e) => serde_json::json!({"at_ms": now_ms(), "ok": false, "error": e.to_string()}),
        };
        if let Err(e) = self
            .store
            .sync_state_set(LAST_RUN, &value.to_string())
            .await
        {
            tracing::warn!(error = %e, "cannot record the reconciliation run");
        }
    }

    /// The stored cursor (unix seconds), if a run has completed before.
    pub async fn cursor(&self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .store
            .sync_state_get(CURSOR)
            .await?
            .and_then(|v| v.parse::<i64>().ok()))
    }

    /// Run once at once, then every `interval`, until `shutdown` turns true (or its sender is
    /// dropped). A failed run is logged and counted; the next one tries again.
    pub async fn run_periodically(
        self,
        interval: Duration,
        since: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let result = self.run_once(since).await;
            self.record_run(&result).await;
            match result {
                // Nobody looks at a number that is always zero, so a non-zero one is loud:
                // every such event is a webhook Stripe could not deliver to us.
                Ok(report) if report.ingested_new > 0 => tracing::warn!(
                    missed = report.ingested_new,
                    listed = report.listed,
                    "reconciliation found events that never arrived as webhooks; check the endpoint at Stripe"
                ),
                Ok(report) => tracing::debug!(listed = report.listed, "reconciliation: nothing missed"),
                Err(e) => {
                    crate::metrics::reconcile_run(None);
                    tracing::error!(error = %e, "reconciliation failed; retrying at the next interval");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
        }
    }
}
