//! The processor: claims stored events and applies each one exactly once to its session, in a
//! transaction that also marks the event processed. It runs after the acknowledgement, so
//! Stripe never waits for it, and it starts from storage, so a crash between ack and
//! processing loses nothing: the batch's transaction rolls back and the next start (or
//! another instance) picks the events up.

mod latest;
mod users;

pub use users::{apply_review, ReviewOutcome};

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use stripe_webhook::{Event, VerificationSession};
use tokio::sync::{watch, Notify};

use crate::decide::SessionRecord;
use crate::decide::{self, Policy};
use crate::ingest::IngestLoad;
use crate::react::ReactConfig;
use crate::store::{now_ms, ClaimedEvent, NewAttempt, NewHistory, Store, StoreError, Tx};

/// Events claimed and applied per transaction.
const BATCH: i64 = 256;
/// Events per transaction while deliveries are arriving: a batch holds SQLite's single writer
/// for its whole transaction, and acknowledgements queue behind it, so a backlog is worked off
/// in small bites while Stripe is talking to us and in big ones when it is not.
const SMALL_BATCH: i64 = 32;
/// Poll interval when idle: other instances (PostgreSQL) may have stored events we were not
/// told about.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Pause after a partial batch, so that the next one is fuller.
const COALESCE: Duration = Duration::from_millis(5);

/// During a burst, step aside this long before looking again…
const YIELD_TO_INGEST: Duration = Duration::from_millis(50);
/// …but never for longer than this in a row, so a sustained burst cannot starve processing.
const MAX_DEFERRAL: Duration = Duration::from_secs(1);

pub struct Processor {
    store: Store,
    policy: Policy,
    react: Arc<ReactConfig>,
    /// Set when a Stripe key is configured: fetch-latest before each batch.
    stripe: Option<Arc<crate::stripe_api::StripeClient>>,
    reactions_due: Arc<Notify>,
    wake: Arc<Notify>,
    load: Arc<IngestLoad>,
}

impl Processor {
    pub fn new(
        store: Store,
        policy: Policy,
        react: Arc<ReactConfig>,
        wake: Arc<Notify>,
        load: Arc<IngestLoad>,
        reactions_due: Arc<Notify>,
    ) -> Processor {
        Processor {
            store,
            policy,
            react,
            stripe: None,
            reactions_due,
            wake,
            load,
        }
    }

    /// Decide on Stripe's current truth: retrieve each session before applying its events.
    pub fn with_stripe(
        mut self,
        client: Option<Arc<crate::stripe_api::StripeClient>>,
    ) -> Processor {
        self.stripe = client;
        self
    }

    fn batch_size(&self) -> i64 {
        if self.load.is_active(now_ms()) {
            SMALL_BATCH
        } else {
            BATCH
        }
    }

    /// Wait while the receiver is busy (bounded by MAX_DEFERRAL): the single SQLite writer
    /// and the CPU go to acknowledging deliveries first.
    async fn yield_to_ingest(&self, shutdown: &mut watch::Receiver<bool>) {
        let mut waited = Duration::ZERO;
        while waited < MAX_DEFERRAL && self.load.is_busy(now_ms()) && !*shutdown.borrow() {
            tokio::select! {
                _ = tokio::time::sleep(YIELD_TO_INGEST) => {}
                _ = shutdown.changed() => {}
            }
            waited += YIELD_TO_INGEST;
        }
    }

    /// Run until `shutdown` flips to true. A batch in progress is finished first.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            if *shutdown.borrow() {
                return;
            }
            self.yield_to_ingest(&mut shutdown).await;
            match self.run_once().await {
                Ok(0) => {
                    backoff = Duration::from_millis(100);
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(IDLE_POLL) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Ok(n) => {
                    backoff = Duration::from_millis(100);
                    if n < self.batch_size() as usize {
                        // A partial batch: let more events gather before the next claim.
                        // Under load this turns many tiny transactions into few full ones
                        // (the fixed cost per batch dominates); when idle it adds at most
                        // COALESCE to the time from acknowledgement to decision.
                        tokio::select! {
                            _ = tokio::time::sleep(COALESCE) => {}
                            _ = shutdown.changed() => {}
                        }
                    }
                }
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
        // Network first, outside the transaction: the writer is never held across a call to Stripe.
        let (latest, up_to) = match &self.stripe {
            Some(client) => latest::prefetch(&self.store, client, self.batch_size()).await?,
            None => (HashMap::new(), None),
        };
        if self.stripe.is_some() && up_to.is_none() {
            return Ok(0);
        }
        let mut tx = self.store.begin().await?;
        let claimed = self
            .store
            .claim_events(&mut tx, self.batch_size(), up_to)
            .await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let decisions = self.apply_batch(&mut tx, &claimed, &latest).await?;
        tx.commit().await?;
        if decisions > 0 {
            self.reactions_due.notify_one();
        }
        Ok(claimed.len())
    }

    /// Apply a claimed batch inside the claiming transaction: the batch commits as a whole
    /// (events marked processed together with their effects) or not at all. The claimed rows
    /// are locked (SKIP LOCKED on PostgreSQL, the single writer on SQLite), so no other
    /// processor can hold them: each event is applied exactly once.
    /// Returns how many decisions were made (their reactions are in the outbox).
    async fn apply_batch(
        &self,
        tx: &mut Tx,
        claimed: &[ClaimedEvent],
        latest: &HashMap<String, VerificationSession>,
    ) -> Result<usize, StoreError> {
        let parsed: Vec<(&ClaimedEvent, Option<Event>)> = claimed
            .iter()
            .map(|c| {
                (
                    c,
                    c.payload.as_deref().and_then(|p| Event::from_slice(p).ok()),
                )
            })
            .collect();
        let mut session_ids: Vec<&str> = parsed
            .iter()
            .filter_map(|(_, e)| e.as_ref())
            .filter(|e| e.type_.is_verification_session())
            .filter_map(|e| e.data.object.get("id").and_then(|v| v.as_str()))
            .collect();
        session_ids.sort_unstable();
        session_ids.dedup();

        self.store.lock_sessions(tx, &session_ids).await?;
        let mut sessions = self.store.load_sessions(tx, &session_ids).await?;
        let redacted_before: HashSet<String> = sessions
            .values()
            .filter(|s| s.is_redacted())
            .map(|s| s.id.clone())
            .collect();
        let mut attempt_keys = self.store.load_attempt_keys(tx, &session_ids).await?;
        let mut new_attempts = Vec::new();
        let mut history = Vec::new();
        let mut changed: Vec<String> = Vec::new();
        let mut by_outcome: HashMap<&'static str, Vec<i64>> = HashMap::new();

        for (claim, event) in &parsed {
            let outcome = match event {
                // Stored payloads were verified and parsed before the ack; a missing one was
                // redacted meanwhile. Nothing left to apply.
                None => "skipped:no_payload",
                Some(event) if !event.type_.is_verification_session() => "ignored:not_identity",
                Some(event) => match event.verification_session() {
                    Some(Ok(session)) => {
                        let keys = attempt_keys.entry(session.id.clone()).or_default();
                        if let Some((key, code)) =
                            decide::attempt_key(event, &session, &self.policy)
                        {
                            if keys.insert(key.clone()) {
                                new_attempts.push(NewAttempt {
                                    session_id: session.id.clone(),
                                    key,
                                    code,
                                    event_created: event.created,
                                });
                            }
                        }
                        let attempts = u32::try_from(keys.len()).unwrap_or(u32::MAX);
                        let (record, effect) = decide::apply(
                            sessions.get(&session.id),
                            event,
                            &session,
                            attempts,
                            &self.policy,
                        );
                        tracing::debug!(event = %event.id, session = %session.id, effect = effect.as_str(), outcome = record.outcome.as_str(), "applied event");
                        history.push(NewHistory {
                            session_id: claim_session_id(event),
                            event_id: &event.id,
                            event_type: event.type_.as_str(),
                            event_created: event.created,
                            effect: effect.as_str(),
                        });
                        if !changed.contains(&record.id) {
                            changed.push(record.id.clone());
                        }
                        sessions.insert(record.id.clone(), record);
                        "applied"
                    }
                    _ => "ignored:bad_session_object",
                },
            };
            by_outcome.entry(outcome).or_default().push(claim.seq);
        }

        // Fetch-latest: fold Stripe's current snapshot in after the batch's own events.
        for id in &session_ids {
            let (Some(fetched), Some(current)) = (latest.get(*id), sessions.get(*id)) else {
                continue;
            };
            let newest_in_batch = parsed
                .iter()
                .filter_map(|(_, e)| e.as_ref())
                .filter(|e| claim_session_id(e) == *id)
                .map(|e| e.created)
                .max()
                .unwrap_or(i64::MIN);
            let Some(snapshot) =
                latest::as_event(fetched, current.status_event_created.max(newest_in_batch))
            else {
                continue;
            };
            let keys = attempt_keys.entry(fetched.id.clone()).or_default();
            if fetched.last_verification_report.is_some() {
                if let Some((key, code)) = decide::attempt_key(&snapshot, fetched, &self.policy) {
                    if keys.insert(key.clone()) {
                        new_attempts.push(NewAttempt {
                            session_id: fetched.id.clone(),
                            key,
                            code,
                            event_created: snapshot.created,
                        });
                    }
                }
            }
            let attempts = u32::try_from(keys.len()).unwrap_or(u32::MAX);
            let (record, effect) =
                decide::apply_current(Some(current), &snapshot, fetched, attempts, &self.policy);
            tracing::debug!(session = %record.id, effect = effect.as_str(), outcome = record.outcome.as_str(), "applied Stripe's current session");
            if !changed.contains(&record.id) {
                changed.push(record.id.clone());
            }
            sessions.insert(record.id.clone(), record);
        }

        let now = now_ms();
        let records: Vec<&SessionRecord> =
            changed.iter().filter_map(|id| sessions.get(id)).collect();
        self.store.save_sessions(tx, &records, now).await?;
        self.store.insert_attempts(tx, &new_attempts).await?;
        self.store.insert_history(tx, &history, now).await?;
        let mut marked = 0;
        for (outcome, seqs) in &by_outcome {
            marked += self.store.mark_processed(tx, seqs, outcome, now).await?;
        }
        if marked != claimed.len() as u64 {
            // Someone else processed one of our events: roll the whole batch back.
            return Err(StoreError::Corrupt(format!(
                "claimed {} events but marked {marked} processed",
                claimed.len()
            )));
        }
        // Personal data goes with the redaction: the raw payloads of every event about a
        // redacted session, including ones that arrive after the redaction.
        let redacted: Vec<&str> = records
            .iter()
            .filter(|r| r.is_redacted())
            .map(|r| r.id.as_str())
            .collect();
        self.store.purge_payloads(tx, &redacted).await?;

        let newly_redacted: Vec<&SessionRecord> = records
            .iter()
            .copied()
            .filter(|r| r.is_redacted() && !redacted_before.contains(&r.id))
            .collect();
        let decisions = users::update_users(
            &self.store,
            tx,
            &self.policy,
            &self.react,
            &users::BatchChanges {
                changed: &records,
                newly_redacted: &newly_redacted,
                provided_emails: &provided_emails(latest),
            },
            now,
        )
        .await?;
        Ok(decisions.len())
    }
}

/// `provided_details.email` of the sessions fetch-latest retrieved, by session id.
fn provided_emails(latest: &HashMap<String, VerificationSession>) -> HashMap<String, String> {
    latest
        .iter()
        .filter_map(|(id, s)| Some((id.clone(), s.provided_details.as_ref()?.email.clone()?)))
        .collect()
}

/// The session id an identity event is about (checked to exist by the caller).
fn claim_session_id(event: &Event) -> &str {
    event
        .data
        .object
        .get("id")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
}
