//! The processor: claims stored events and applies each one exactly once to its session, in a
//! transaction that also marks the event processed. It runs after the acknowledgement, so
//! Stripe never waits for it, and it starts from storage, so a crash between ack and
//! processing loses nothing: the batch's transaction rolls back and the next start (or
//! another instance) picks the events up.

mod checks;
mod latest;
mod users;

pub use users::{apply_review, ReviewError, Reviewed};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use stripe_webhook::VerificationSession;
use tokio::sync::{watch, Notify};

use crate::clock::now_ms;
use crate::decide::{
    fold_batch, BatchState, DecisionType, Disposition, Input, Policy, SessionRecord,
};
use crate::ingest::IngestLoad;
use crate::react::ReactConfig;
use crate::store::{ClaimedEvent, Store, StoreError, Tx};

/// Events claimed and applied per transaction.
const BATCH: i64 = 256;
/// Events per transaction while deliveries are arriving: a batch holds SQLite's single writer
/// for its whole transaction, and acknowledgements queue behind it, so a backlog is worked off
/// in small bites while Stripe is talking to us and in big ones when it is not.
const SMALL_BATCH: i64 = 32;
/// Poll interval when idle, unless configured (`poll_interval`): events another process
/// stored without a notification reaching us (PostgreSQL instances notify each other).
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
    /// Set when a Stripe key is configured: fetch-latest before each batch, and the verified
    /// outputs of sessions checked against expectations.
    stripe: Option<Arc<crate::stripe_api::StripeClient>>,
    /// The key expectations are digested with (`None`: digested fields are `unavailable`).
    expectations_key: Option<Arc<crate::decide::expectations::DigestKey>>,
    reactions_due: Arc<Notify>,
    wake: Arc<Notify>,
    load: Arc<IngestLoad>,
    poll: Duration,
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
            expectations_key: None,
            reactions_due,
            wake,
            load,
            poll: IDLE_POLL,
        }
    }

    /// Look for work at least this often when idle (`poll_interval`).
    pub fn with_poll_interval(mut self, poll: Duration) -> Processor {
        self.poll = poll;
        self
    }

    /// How long to sleep when idle: the poll interval, or less when a check against
    /// expectations comes due sooner.
    async fn idle_wait(&self) -> Duration {
        match self.store.next_check_due().await {
            Ok(Some(due)) => {
                Duration::from_millis((due - now_ms()).clamp(1, i64::MAX) as u64).min(self.poll)
            }
            _ => self.poll,
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

    /// Digest verified values with this key when checking them against expectations.
    pub fn with_expectations_key(
        mut self,
        key: Option<Arc<crate::decide::expectations::DigestKey>>,
    ) -> Processor {
        self.expectations_key = key;
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
                    let wait = self.idle_wait().await;
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(wait) => {}
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

    /// Claim and apply one batch, then run the checks against expectations that are due.
    /// Returns how many events were claimed plus how many checks were finished. Tests call
    /// this to drain the queue deterministically.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let events = self.run_batch().await?;
        let checked = checks::Checker {
            store: &self.store,
            stripe: self.stripe.as_deref(),
            key: self.expectations_key.as_deref(),
            policy: &self.policy,
            react: &self.react,
        }
        .run_due(now_ms())
        .await?;
        if checked > 0 {
            self.reactions_due.notify_one();
        }
        Ok(events + checked)
    }

    /// Claim and apply one batch. Returns how many events were claimed.
    async fn run_batch(&self) -> Result<usize, StoreError> {
        // Network first, outside the transaction: the writer is never held across a call to Stripe.
        let (latest, up_to) = match &self.stripe {
            Some(client) => latest::prefetch(&self.store, client, self.batch_size()).await?,
            None => (HashMap::new(), None),
        };
        if self.stripe.is_some() && up_to.is_none() {
            return Ok(0);
        }
        let started = std::time::Instant::now();
        let mut tx = self.store.begin().await?;
        let claimed = self
            .store
            .claim_events(&mut tx, self.batch_size(), up_to)
            .await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        match self.apply_batch(&mut tx, &claimed, &latest).await {
            Ok(decisions) => {
                tx.commit().await?;
                self.applied(claimed.len(), &decisions, started);
            }
            Err(error) => {
                // At once, not when the connection is next used: until then the claimed rows
                // stay locked and SKIP LOCKED would pass over them.
                let _ = tx.rollback().await;
                // Storage trouble (connection lost, disk full, a deadlock…): the whole batch
                // waits and is tried again; no event is to blame.
                if !error.is_about_the_data() {
                    return Err(error);
                }
                // The database refused something the batch would write: find the event(s).
                tracing::warn!(%error, events = claimed.len(), "a batch could not be applied; applying its events one by one");
                self.apply_one_by_one(&claimed, &latest).await?;
            }
        }
        Ok(claimed.len())
    }

    fn applied(&self, events: usize, decisions: &[DecisionType], started: std::time::Instant) {
        crate::metrics::batch_processed(events, decisions, started.elapsed());
        if !decisions.is_empty() {
            self.reactions_due.notify_one();
        }
    }

    /// After a batch failed on its data: each of its events in a transaction of its own, so
    /// the good ones are applied and one that the database refuses is quarantined with its
    /// error (visible in `/v1/events?state=quarantined`, the console and `/metrics`, retried
    /// by an operator) instead of blocking every event behind it. Storage trouble meanwhile
    /// stops the walk and quarantines nothing.
    async fn apply_one_by_one(
        &self,
        claimed: &[ClaimedEvent],
        latest: &HashMap<String, VerificationSession>,
    ) -> Result<(), StoreError> {
        for c in claimed {
            let started = std::time::Instant::now();
            let mut tx = self.store.begin().await?;
            // Still waiting? (Another instance may have taken it since the rollback.)
            let Some(event) = self.store.claim_event(&mut tx, c.seq).await? else {
                continue;
            };
            match self
                .apply_batch(&mut tx, std::slice::from_ref(&event), latest)
                .await
            {
                Ok(decisions) => {
                    tx.commit().await?;
                    self.applied(1, &decisions, started);
                }
                Err(error) => {
                    let _ = tx.rollback().await;
                    if !error.is_about_the_data() {
                        return Err(error);
                    }
                    let reason = error.to_string();
                    if self
                        .store
                        .quarantine_event(c.seq, &reason, now_ms())
                        .await?
                    {
                        tracing::error!(event = %c.id, error = %reason, "event quarantined: it cannot be applied (retry it once the cause is fixed)");
                        crate::metrics::event_quarantined();
                    }
                }
            }
        }
        Ok(())
    }

    /// Apply a claimed batch inside the claiming transaction: the batch commits as a whole
    /// (events marked processed together with their effects) or not at all. The claimed rows
    /// are locked (SKIP LOCKED on PostgreSQL, the single writer on SQLite), so no other
    /// processor can hold them: each event is applied exactly once. `decide::fold_batch` says
    /// what the batch changes; this loads its sessions first and writes the changes after.
    /// Returns the kinds of the decisions made (their reactions are in the outbox).
    async fn apply_batch(
        &self,
        tx: &mut Tx,
        claimed: &[ClaimedEvent],
        latest: &HashMap<String, VerificationSession>,
    ) -> Result<Vec<DecisionType>, StoreError> {
        // Stored facts that do not decode fail the batch as the event's fault: it is then
        // found and quarantined like one the database refuses.
        if let Some(c) = claimed.iter().find(|c| c.unreadable.is_some()) {
            return Err(StoreError::Corrupt(
                c.unreadable.clone().unwrap_or_default(),
            ));
        }
        // The facts taken from each event at ingest: no payload is parsed here, and a
        // redaction that purged the payloads meanwhile took nothing the rules need.
        let mut inputs: Vec<Input<'_>> = claimed
            .iter()
            .map(|c| Input::Event {
                seq: c.seq,
                event: c.facts.as_ref(),
            })
            .collect();
        let mut session_ids: Vec<&str> = inputs.iter().filter_map(Input::session_id).collect();
        session_ids.sort_unstable();
        session_ids.dedup();
        // Fetch-latest: Stripe's current session of each session here, after its events.
        inputs.extend(
            session_ids
                .iter()
                .filter_map(|id| latest.get(*id))
                .map(Input::Current),
        );

        self.store.lock_sessions(tx, &session_ids).await?;
        let mut state = BatchState {
            records: self.store.load_sessions(tx, &session_ids).await?,
            attempts: self.store.load_attempt_keys(tx, &session_ids).await?.into(),
        };
        let changes = fold_batch(&mut state, &inputs, &self.policy);
        for h in &changes.history {
            tracing::debug!(event = %h.event_id, session = %h.session_id, effect = h.effect.as_str(), "applied event");
        }

        let now = now_ms();
        let records: Vec<&SessionRecord> = changes
            .changed
            .iter()
            .filter_map(|id| state.records.get(id))
            .collect();
        self.store.save_sessions(tx, &records, now).await?;
        self.store.insert_attempts(tx, &changes.attempts).await?;
        self.store.insert_history(tx, &changes.history, now).await?;
        let mut by_disposition: HashMap<Disposition, Vec<i64>> = HashMap::new();
        for (seq, disposition) in &changes.dispositions {
            by_disposition.entry(*disposition).or_default().push(*seq);
        }
        let mut marked = 0;
        for (disposition, seqs) in &by_disposition {
            marked += self
                .store
                .mark_processed(tx, seqs, *disposition, now)
                .await?;
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
        let redacted: Vec<&str> = changes.redacted.iter().map(String::as_str).collect();
        self.store.purge_payloads(tx, &redacted).await?;

        let newly_redacted: Vec<&SessionRecord> = changes
            .newly_redacted
            .iter()
            .filter_map(|id| state.records.get(id))
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
        Ok(decisions)
    }
}

/// `provided_details.email` of the sessions fetch-latest retrieved, by session id.
fn provided_emails(latest: &HashMap<String, VerificationSession>) -> HashMap<String, String> {
    latest
        .iter()
        .filter_map(|(id, s)| Some((id.clone(), s.provided_details.as_ref()?.email.clone()?)))
        .collect()
}
