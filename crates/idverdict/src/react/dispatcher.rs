//! The dispatcher: claims due reactions, delivers them concurrently, records each attempt and
//! moves the reaction on (delivered, retry later, or exhausted).
//!
//! Three short steps, never one long transaction: claim (a lease, in its own transaction),
//! deliver (network I/O, no database handle held — on SQLite the single writer stays free for
//! the webhook receiver), record (another short transaction, batched).
//!
//! Each attempt has a hard deadline of its channel ([`deadline`]), and the lease is that plus
//! [`LEASE_MARGIN`] for recording, so no second dispatcher takes a row still in flight. A
//! dispatcher that dies mid-delivery leaves claims without a result: when it starts again it
//! takes its own back at once ([`Dispatcher::reclaim_interrupted`]: on SQLite every claim,
//! on PostgreSQL those under its instance id), and another instance takes them once their
//! lease runs out. Either way the lost attempt costs no slot of the retry schedule, and the
//! receiver may see the message twice, with the same idempotency key.
//!
//! Callback results also keep each URL's health (`store::targets`): a URL that has failed
//! every attempt for `callbacks.pause_after` is paused, and its reactions wait, untried,
//! until the operator enables it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::{mpsc, watch, Notify, Semaphore};

use super::callback::CallbackChannel;
use super::config::ReactConfig;
use super::email::EmailChannel;
use super::nats::NatsChannel;
use super::retry::Schedule;
use super::{Delivery, Failure, ReactError, ReactionKind};
use crate::clock::now_ms;
use crate::store::{
    AttemptResult, Backend, ClaimedReaction, Interrupted, Leases, NextState, Store,
};

/// Most reactions claimed by one `run_once` statement.
const CLAIM_BATCH: i64 = 256;
/// Longest sleep when nothing is due, unless configured (`poll_interval`): work another
/// process stored without a notification reaching us.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Results recorded per transaction, at most.
const RECORD_BATCH: usize = 256;
/// A lease outlasts its attempt's deadline by this much: the time to record the result
/// (results are recorded in batches, retried while the database is busy).
pub const LEASE_MARGIN: Duration = Duration::from_secs(15);

/// The longest one attempt on `kind` may take before it counts as failed. Callbacks: the
/// request timeout plus resolving the host for the SSRF check. Email: SMTP's timeout applies
/// to each exchange of a conversation, so twice it for the whole message. NATS: connecting
/// plus the stream's acknowledgement.
pub fn deadline(kind: Option<ReactionKind>, config: &ReactConfig) -> Duration {
    match kind {
        Some(ReactionKind::Callback) => Duration::from_secs(config.callbacks.timeout_secs + 5),
        Some(ReactionKind::Email) => {
            Duration::from_secs(2 * config.email.as_ref().map_or(30, |e| e.timeout_secs))
        }
        Some(ReactionKind::Nats) | None => super::nats::ATTEMPT_DEADLINE,
    }
}

/// Each channel's lease: its deadline plus [`LEASE_MARGIN`].
pub fn leases(config: &ReactConfig) -> Leases {
    let lease = |kind| {
        i64::try_from((deadline(Some(kind), config) + LEASE_MARGIN).as_millis()).unwrap_or(i64::MAX)
    };
    Leases {
        callback_ms: lease(ReactionKind::Callback),
        email_ms: lease(ReactionKind::Email),
        nats_ms: lease(ReactionKind::Nats),
    }
}

struct Inner {
    store: Store,
    schedule: Schedule,
    workers: usize,
    leases: Leases,
    deadlines: [(ReactionKind, Duration); 3],
    /// `callbacks.pause_after`; `None`: never pause a URL.
    pause_after: Option<Duration>,
    callbacks: Option<CallbackChannel>,
    email: Option<EmailChannel>,
    nats: Option<NatsChannel>,
}

/// Delivers the outbox. Build it with [`Dispatcher::new`], then either [`Dispatcher::run`] it
/// as a task or drain it with [`Dispatcher::run_once`].
pub struct Dispatcher {
    inner: Arc<Inner>,
    wake: Arc<Notify>,
    /// Written into each claim (`claimed_by`), so a restarted instance knows its own.
    instance: String,
    poll: Duration,
}

impl Dispatcher {
    /// Validate the configuration and build the channels. The NATS connection is made on the
    /// first message, so a bus that is down does not stop start-up.
    pub async fn new(store: Store, config: ReactConfig) -> Result<Dispatcher, ReactError> {
        config
            .validate()
            .map_err(|e| ReactError::Config(e.to_string()))?;
        let schedule = Schedule::new(
            config
                .delivery
                .schedule_durations()
                .map_err(|e| ReactError::Config(e.to_string()))?,
        );
        // A channel whose configuration was removed cannot deliver its old reactions; they
        // exhaust with a clear error and can be redelivered once it is configured again.
        let callbacks = if config.callbacks.secrets.is_empty() {
            None
        } else {
            Some(CallbackChannel::new(&config)?)
        };
        let email = config.email.as_ref().map(EmailChannel::new).transpose()?;
        let nats = config.nats.as_ref().map(NatsChannel::new);
        let deadlines = ReactionKind::ALL.map(|kind| (kind, deadline(Some(kind), &config)));
        Ok(Dispatcher {
            inner: Arc::new(Inner {
                store,
                schedule,
                workers: config.delivery.workers.max(1),
                leases: leases(&config),
                deadlines,
                pause_after: Some(config.callbacks.pause_after).filter(|d| !d.is_zero()),
                callbacks,
                email,
                nats,
            }),
            wake: Arc::new(Notify::new()),
            instance: format!("idv-{}", crate::config::random_token(12).to_lowercase()),
            poll: IDLE_POLL,
        })
    }

    /// Claim under this instance id (`instance_id`, kept across restarts) instead of a
    /// random one.
    pub fn with_instance(mut self, id: impl Into<String>) -> Dispatcher {
        self.instance = id.into();
        self
    }

    /// Look for due work at least this often when idle (`poll_interval`).
    pub fn with_poll_interval(mut self, poll: Duration) -> Dispatcher {
        self.poll = poll;
        self
    }

    /// Take back the claims a previous life of this instance left without a result (it was
    /// killed mid-delivery): SQLite has one instance by construction, so every claim;
    /// PostgreSQL, those under this instance id. They are due at once, the lost attempt is
    /// logged and costs no retry slot. Returns how many. [`Dispatcher::run`] starts with it.
    pub async fn reclaim_interrupted(&self) -> Result<u64, ReactError> {
        let which = match self.inner.store.backend() {
            Backend::Sqlite => Interrupted::All,
            Backend::Postgres => Interrupted::ClaimedBy(&self.instance),
        };
        let n = self
            .inner
            .store
            .reclaim_interrupted(which, now_ms())
            .await?;
        if n > 0 {
            crate::metrics::reactions_reclaimed(n);
            tracing::warn!(
                count = n,
                "took back reactions claimed before the last stop whose results were never recorded; sending them again (same ids)"
            );
        }
        Ok(n)
    }

    /// Notify this after committing a decision's reactions so they go out without waiting
    /// for the next poll.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Deliver everything due now, concurrently (up to `delivery.workers` at a time), and
    /// record the results. Returns how many attempts were made. Tests drain with this.
    pub async fn run_once(&self) -> Result<usize, ReactError> {
        let mut total = 0;
        loop {
            let claimed = self
                .inner
                .store
                .claim_reactions(CLAIM_BATCH, now_ms(), &self.inner.leases, &self.instance)
                .await?;
            if claimed.is_empty() {
                return Ok(total);
            }
            let n = claimed.len();
            let inner = &self.inner;
            let results: Vec<AttemptResult> = futures::stream::iter(claimed)
                .map(|c| inner.attempt(c))
                .buffer_unordered(inner.workers)
                .collect()
                .await;
            inner.record(&results).await?;
            total += n;
            if n < CLAIM_BATCH as usize {
                return Ok(total);
            }
        }
    }

    /// Run until `shutdown` flips to true. Deliveries in flight are finished and recorded
    /// before it returns; what is not claimed yet stays in the outbox for the next start.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(100);
        // Before anything new: what the last life of this instance left claimed.
        while let Err(error) = self.reclaim_interrupted().await {
            tracing::warn!(%error, "taking back interrupted reactions failed; will retry");
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() || shutdown.has_changed().is_err() {
                return;
            }
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
        let inner = self.inner.clone();
        let permits = Arc::new(Semaphore::new(inner.workers));
        let (results_tx, results_rx) = mpsc::channel::<AttemptResult>(inner.workers * 4);
        let recorder = tokio::spawn(record_loop(inner.clone(), results_rx));
        backoff = Duration::from_millis(100);
        loop {
            // A dropped sender also means stop (and would otherwise make every
            // `changed()` below return at once: a busy loop).
            if *shutdown.borrow() || shutdown.has_changed().is_err() {
                break;
            }
            // Wait for a free worker before claiming: a claim is a lease, and leasing more
            // than we can send would only delay those rows.
            let first = tokio::select! {
                p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                _ = shutdown.changed() => continue,
            };
            let free = permits.available_permits() + 1;
            let claimed = match inner
                .store
                .claim_reactions(free as i64, now_ms(), &inner.leases, &self.instance)
                .await
            {
                Ok(c) => {
                    backoff = Duration::from_millis(100);
                    c
                }
                Err(error) => {
                    drop(first);
                    tracing::warn!(%error, "claiming reactions failed; will retry");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            };
            let n = claimed.len();
            let mut first = Some(first);
            for c in claimed {
                let permit = match first.take() {
                    Some(p) => p,
                    None => match permits.clone().acquire_owned().await {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                };
                let inner = inner.clone();
                let tx = results_tx.clone();
                tokio::spawn(async move {
                    let result = inner.attempt(c).await;
                    // The recorder only stops after every sender is gone.
                    let _ = tx.send(result).await;
                    drop(permit);
                });
            }
            drop(first);
            if n < free {
                // Everything due is out: sleep until the next row is due, a decision wakes
                // us, or the poll interval passes.
                let wait = match inner.store.next_reaction_due().await {
                    Ok(Some(due)) => {
                        Duration::from_millis((due - now_ms()).clamp(1, i64::MAX) as u64)
                            .min(self.poll)
                    }
                    _ => self.poll,
                };
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
        // Wait for the deliveries in flight (each is bounded by its channel's timeout).
        let _ = permits.acquire_many(inner.workers as u32).await;
        drop(results_tx);
        let _ = recorder.await;
    }
}

/// Record results as they arrive, many per transaction when they come in quickly.
async fn record_loop(inner: Arc<Inner>, mut rx: mpsc::Receiver<AttemptResult>) {
    let mut buf = Vec::with_capacity(RECORD_BATCH);
    while rx.recv_many(&mut buf, RECORD_BATCH).await > 0 {
        let mut backoff = Duration::from_millis(50);
        loop {
            match inner.record(&buf).await {
                Ok(()) => break,
                Err(error) if backoff < Duration::from_secs(30) => {
                    tracing::warn!(%error, "recording reaction attempts failed; will retry");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(error) => {
                    // Leases will expire and the rows come due again: the receivers may see
                    // these messages twice (same idempotency key), never zero times.
                    tracing::error!(%error, count = buf.len(), "giving up recording reaction attempts");
                    break;
                }
            }
        }
        buf.clear();
    }
}

impl Inner {
    /// Record results; log and count the callback URLs they paused.
    async fn record(&self, results: &[AttemptResult]) -> Result<(), crate::store::StoreError> {
        let now = now_ms();
        let pause_before = self
            .pause_after
            .map(|p| now.saturating_sub(i64::try_from(p.as_millis()).unwrap_or(i64::MAX)));
        let paused = self
            .store
            .record_attempts(results, now, pause_before)
            .await?;
        if !paused.is_empty() {
            crate::metrics::callback_targets_paused(paused.len());
        }
        for url in paused {
            tracing::error!(
                %url,
                "callback URL paused: every attempt has failed for callbacks.pause_after; its reactions are kept and wait for `idverdict reactions targets enable {url}`"
            );
        }
        Ok(())
    }

    fn deadline(&self, kind: Option<ReactionKind>) -> Duration {
        self.deadlines
            .iter()
            .find(|(k, _)| Some(*k) == kind)
            .map_or(super::nats::ATTEMPT_DEADLINE, |(_, d)| *d)
    }

    /// Make one attempt and decide what comes next.
    async fn attempt(&self, c: ClaimedReaction) -> AttemptResult {
        let started_at_ms = now_ms();
        let started = Instant::now();
        let kind = ReactionKind::parse(&c.kind);
        let not_configured = |what: &str| {
            Delivery::Failed(Failure {
                status: None,
                error: format!("{what} not configured"),
                retry_after: None,
                permanent: true,
            })
        };
        let deliver = async {
            match kind {
                Some(ReactionKind::Callback) => match &self.callbacks {
                    Some(ch) => ch.deliver(&c.id, &c.target, &c.payload).await,
                    None => not_configured("callbacks are"),
                },
                Some(ReactionKind::Email) => match &self.email {
                    Some(ch) => ch.deliver(&c.id, &c.target, &c.payload).await,
                    None => not_configured("email is"),
                },
                Some(ReactionKind::Nats) => match &self.nats {
                    Some(ch) => ch.deliver(&c.id, &c.target, &c.payload).await,
                    None => not_configured("nats is"),
                },
                None => not_configured("this reaction kind is"),
            }
        };
        // The hard bound the lease is sized from: past it the attempt is abandoned.
        let deadline = self.deadline(kind);
        let outcome = match tokio::time::timeout(deadline, deliver).await {
            Ok(outcome) => outcome,
            Err(_) => Delivery::Failed(Failure {
                status: None,
                error: format!(
                    "timed out: the attempt took longer than {} s",
                    deadline.as_secs()
                ),
                retry_after: None,
                permanent: false,
            }),
        };
        let elapsed = started.elapsed();
        let kind_label = kind.map(ReactionKind::as_str).unwrap_or("unknown");
        let (status_code, error, next) = match outcome {
            Delivery::Delivered { status } => {
                let since_decision = u64::try_from(now_ms() - c.created_at_ms)
                    .ok()
                    .map(Duration::from_millis);
                crate::metrics::reaction_attempt(kind_label, "delivered", elapsed, since_decision);
                tracing::info!(reaction = %c.id, kind = kind_label, attempt = c.attempt, "reaction delivered");
                (status, None, NextState::Delivered)
            }
            Delivery::Failed(f) => {
                let failed = usize::try_from(c.attempt - c.schedule_offset).unwrap_or(usize::MAX);
                let delay = if f.permanent {
                    None
                } else {
                    self.schedule
                        .next_delay(failed, f.retry_after, &mut rand::thread_rng())
                };
                let next = match delay {
                    Some(d) => NextState::Retry {
                        at_ms: now_ms() + i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2),
                    },
                    None => NextState::Exhausted,
                };
                let result = if next == NextState::Exhausted {
                    "exhausted"
                } else {
                    "failed"
                };
                crate::metrics::reaction_attempt(kind_label, result, elapsed, None);
                tracing::warn!(
                    reaction = %c.id,
                    kind = kind_label,
                    attempt = c.attempt,
                    status = f.status,
                    error = %f.error,
                    retry_in_ms = delay.map(|d| d.as_millis() as u64),
                    "reaction {result}"
                );
                (f.status, Some(f.error), next)
            }
        };
        AttemptResult {
            reaction_id: c.id,
            kind: c.kind,
            target: c.target,
            attempt: c.attempt,
            started_at_ms,
            status_code: status_code.map(i64::from),
            latency_ms: i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX),
            error,
            next,
        }
    }
}
