//! The processor: claims stored events and applies each one exactly once to its session, in a
//! transaction that also marks the event processed. It runs after the acknowledgement, so
//! Stripe never waits for it, and it starts from storage, so a crash between ack and
//! processing loses nothing: the batch's transaction rolls back and the next start (or
//! another instance) picks the events up.

use std::sync::Arc;
use std::time::Duration;

use stripe_webhook::Event;
use tokio::sync::{watch, Notify};

use crate::decide::{self, Policy};
use crate::store::{now_ms, ClaimedEvent, Store, StoreError};

/// Events claimed and applied per transaction.
const BATCH: i64 = 256;
/// Poll interval when idle: other instances (PostgreSQL) may have stored events we were not
/// told about.
const IDLE_POLL: Duration = Duration::from_millis(500);

pub struct Processor {
    store: Store,
    policy: Policy,
    wake: Arc<Notify>,
}

impl Processor {
    pub fn new(store: Store, policy: Policy, wake: Arc<Notify>) -> Processor {
        Processor {
            store,
            policy,
            wake,
        }
    }

    /// Run until `shutdown` flips to true. A batch in progress is finished first.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.run_once().await {
                Ok(0) => {
                    backoff = Duration::from_millis(100);
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(IDLE_POLL) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Ok(_) => backoff = Duration::from_millis(100),
                Err(error) => {
                    tracing::warn!(%error, "event processing failed; will retry");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Claim and apply one batch. Returns how many events were claimed. Tests call this to
    /// drain the queue deterministically.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let mut tx = self.store.begin().await?;
        let claimed = self.store.claim_events(&mut tx, BATCH).await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        self.apply_batch(&mut tx, &claimed).await?;
        tx.commit().await?;
        Ok(claimed.len())
    }

    /// Apply a claimed batch inside the claiming transaction: the batch commits as a whole
    /// (events marked processed together with their effects) or not at all.
    async fn apply_batch(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        claimed: &[ClaimedEvent],
    ) -> Result<(), StoreError> {
        let parsed: Vec<(&ClaimedEvent, Option<Event>)> = claimed
            .iter()
            .map(|c| {
                (
                    c,
                    c.payload.as_deref().and_then(|p| Event::from_slice(p).ok()),
                )
            })
            .collect();
        let session_ids: Vec<&str> = parsed
            .iter()
            .filter_map(|(_, e)| e.as_ref())
            .filter(|e| e.type_.is_verification_session())
            .filter_map(|e| e.data.object.get("id").and_then(|v| v.as_str()))
            .collect();

        self.store.lock_sessions(tx, &session_ids).await?;
        let now = now_ms();
        for (claim, event) in &parsed {
            let Some(event) = event else {
                // Stored payloads were verified and parsed before the ack; a missing one was
                // redacted meanwhile. Nothing left to apply.
                self.store
                    .mark_processed(tx, &claim.id, "skipped:no_payload", now)
                    .await?;
                continue;
            };
            if !event.type_.is_verification_session() {
                self.store
                    .mark_processed(tx, &claim.id, "ignored:not_identity", now)
                    .await?;
                continue;
            }
            let session = match event.verification_session() {
                Some(Ok(session)) => session,
                _ => {
                    self.store
                        .mark_processed(tx, &claim.id, "ignored:bad_session_object", now)
                        .await?;
                    continue;
                }
            };
            // Exactly once: whoever flips processed_at applies the event.
            if !self
                .store
                .mark_processed(tx, &claim.id, "applied", now)
                .await?
            {
                continue;
            }
            let current = self.store.session_for_update(tx, &session.id).await?;
            let attempts = match decide::attempt_key(event, &session) {
                Some((key, code)) => {
                    self.store
                        .record_attempt(tx, &session.id, &key, &code, event.created)
                        .await?
                }
                None => self.store.attempt_count(tx, &session.id).await?,
            };
            let (record, effect) =
                decide::apply(current.as_ref(), event, &session, attempts, &self.policy);
            self.store.save_session(tx, &record, now).await?;
            self.store
                .add_history(
                    tx,
                    &session.id,
                    &event.id,
                    event.type_.as_str(),
                    event.created,
                    effect.as_str(),
                    now,
                )
                .await?;
            if record.is_redacted() {
                // Personal data goes with the redaction: the raw payloads of every event about
                // this session, including ones that arrive after the redaction.
                self.store.purge_session_payloads(tx, &session.id).await?;
            }
            tracing::debug!(event = %event.id, session = %session.id, effect = effect.as_str(), outcome = record.outcome.as_str(), "applied event");
        }
        Ok(())
    }
}
