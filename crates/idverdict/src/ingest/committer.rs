//! Group commit: many concurrent deliveries share one transaction and one fsync. Each request
//! waits until the batch holding its event is committed, so an acknowledgement still means
//! "on disk" — the batching only changes how many acknowledgements one fsync pays for.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Notify};

use crate::clock::now_ms;
use crate::store::{NewEvent, Receipt, Store};

/// Largest batch committed at once. Bigger batches amortise more but hold the writer longer.
const MAX_BATCH: usize = 512;
/// Requests waiting for a batch slot; beyond this, callers wait (back-pressure), never drop.
const QUEUE_DEPTH: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("storage is unavailable: {0}")]
    Storage(String),
    #[error("the service is shutting down")]
    ShuttingDown,
    #[error("storage did not take the event in time")]
    TooSlow,
}

type Reply = oneshot::Sender<Result<Receipt, CommitError>>;

/// How busy the receiver is, for the processor to step aside during bursts: on a small
/// machine, acknowledging Stripe quickly matters more than applying events a few hundred
/// milliseconds sooner.
#[derive(Debug, Default)]
pub struct IngestLoad {
    last_batch_at_ms: AtomicI64,
    last_batch_len: AtomicUsize,
}

impl IngestLoad {
    /// Busy = a batch of several deliveries was committed in the last few milliseconds, i.e.
    /// requests are queueing up behind each other.
    pub fn is_busy(&self, now_ms: i64) -> bool {
        const RECENT_MS: i64 = 20;
        const CONCURRENT: usize = 8;
        now_ms - self.last_batch_at_ms.load(Ordering::Relaxed) < RECENT_MS
            && self.last_batch_len.load(Ordering::Relaxed) >= CONCURRENT
    }

    /// Deliveries are arriving at all (a batch committed in the last 100 ms).
    pub fn is_active(&self, now_ms: i64) -> bool {
        now_ms - self.last_batch_at_ms.load(Ordering::Relaxed) < 100
    }

    fn record(&self, len: usize) {
        self.last_batch_len.store(len, Ordering::Relaxed);
        self.last_batch_at_ms.store(now_ms(), Ordering::Relaxed);
    }
}

/// Handle used by request handlers. Cheap to clone.
#[derive(Clone)]
pub struct Committer {
    tx: mpsc::Sender<(NewEvent, Reply)>,
    answer_within: Duration,
}

impl Committer {
    /// Start the committer task. `committed` is notified after every batch that stored new
    /// events, so the processor can start at once instead of waiting for its next poll.
    /// `answer_within` bounds how long a delivery waits for its batch (see [`Self::submit`]).
    pub fn spawn(
        store: Store,
        committed: Arc<Notify>,
        load: Arc<IngestLoad>,
        answer_within: Duration,
    ) -> (Committer, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let task = tokio::spawn(run(store, rx, committed, load));
        (Committer { tx, answer_within }, task)
    }

    /// Store one event durably (or learn it was already stored). When the database is slow
    /// or gone (each batch waits out the pool's connect timeout), a delivery queued behind
    /// failing batches gets [`CommitError::TooSlow`] within `answer_within` — a clear 503
    /// before the request deadline turns it into a timeout. Its event may still be stored
    /// after that; Stripe's retry then finds it a duplicate. Nothing acknowledged is lost.
    pub async fn submit(&self, event: NewEvent) -> Result<Receipt, CommitError> {
        let (reply, answer) = oneshot::channel();
        let stored = async {
            self.tx
                .send((event, reply))
                .await
                .map_err(|_| CommitError::ShuttingDown)?;
            answer.await.map_err(|_| CommitError::ShuttingDown)?
        };
        tokio::time::timeout(self.answer_within, stored)
            .await
            .unwrap_or(Err(CommitError::TooSlow))
    }
}

async fn run(
    store: Store,
    mut rx: mpsc::Receiver<(NewEvent, Reply)>,
    committed: Arc<Notify>,
    load: Arc<IngestLoad>,
) {
    let mut events = Vec::with_capacity(MAX_BATCH);
    let mut replies: Vec<Reply> = Vec::with_capacity(MAX_BATCH);
    // Ends when every Committer handle is dropped and the queue is drained: shutdown finishes
    // the batches already accepted.
    while let Some((event, reply)) = rx.recv().await {
        events.push(event);
        replies.push(reply);
        while events.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok((event, reply)) => {
                    events.push(event);
                    replies.push(reply);
                }
                Err(_) => break,
            }
        }
        // Two copies of one evt_ in the same batch: the second sees the first's row.
        load.record(events.len());
        let result = store.insert_events(&events, now_ms()).await;
        store.note_write(result.is_ok());
        match result {
            Ok(receipts) => {
                let any_new = receipts.contains(&Receipt::New);
                tracing::trace!(size = events.len(), "committed webhook batch");
                for (reply, receipt) in replies.drain(..).zip(receipts) {
                    let _ = reply.send(Ok(receipt));
                }
                if any_new {
                    committed.notify_one();
                }
            }
            Err(error) => {
                tracing::error!(%error, batch = events.len(), "could not store a batch of webhook events; answering 503 so Stripe retries");
                let message = error.to_string();
                for reply in replies.drain(..) {
                    let _ = reply.send(Err(CommitError::Storage(message.clone())));
                }
            }
        }
        events.clear();
    }
}
