//! Erased means erased on disk too (SQLite). `secure_delete`, set on every connection, makes
//! SQLite overwrite the content of deleted rows instead of leaving it in free pages; but the
//! write-ahead log still holds the pages as they were before the erasure until a checkpoint
//! copies the log into the database file and empties it. So after each erasure of personal
//! data the scrubber runs that checkpoint, off the acknowledgement path: shortly after (many
//! erasures in a burst share one), first a passive checkpoint that blocks nobody, then a
//! truncating one that holds the writer only for the few frames written in between.
//! PostgreSQL keeps its files to itself; there this is a no-op.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use tokio::sync::{watch, Notify};

use super::{Store, StoreError};

/// Let the erasing transaction commit and further erasures gather before checkpointing.
const SETTLE: Duration = Duration::from_millis(200);
/// A checkpoint that could not finish (a long reader) is tried again after this.
const RETRY: Duration = Duration::from_secs(1);

/// Whether personal data was erased since the last complete checkpoint.
#[derive(Default)]
pub(crate) struct Erasures {
    pending: AtomicBool,
    wake: Notify,
}

impl Store {
    /// Personal data was just erased (inside a transaction that may not have committed yet).
    pub(crate) fn note_erasure(&self) {
        if let Some(erasures) = &self.erasures {
            erasures.pending.store(true, Ordering::SeqCst);
            erasures.wake.notify_one();
        }
    }

    /// Checkpoint the write-ahead log into the database file and truncate it. Returns `false`
    /// when readers kept the checkpoint from finishing (try again later).
    pub async fn scrub_wal(&self) -> Result<bool, StoreError> {
        let Some(erasures) = &self.erasures else {
            return Ok(true);
        };
        erasures.pending.store(false, Ordering::SeqCst);
        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&self.read)
            .await?;
        // Waits (busy timeout) for the writer's transaction to end, then copies the rest.
        let row = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&self.read)
            .await?;
        let busy: i64 = row.try_get(0)?;
        if busy != 0 {
            erasures.pending.store(true, Ordering::SeqCst);
        }
        Ok(busy == 0)
    }

    /// Whether an erasure has not been checkpointed yet.
    pub(crate) fn erasure_pending(&self) -> bool {
        self.erasures
            .as_ref()
            .is_some_and(|e| e.pending.load(Ordering::SeqCst))
    }
}

/// Checkpoint after erasures until `shutdown` (the last one, if still owed, is done by
/// [`Store::close`]).
pub async fn run(store: Store, mut shutdown: watch::Receiver<bool>) {
    let Some(erasures) = store.erasures.clone() else {
        return;
    };
    let erasures: Arc<Erasures> = erasures;
    loop {
        if !store.erasure_pending() {
            tokio::select! {
                _ = erasures.wake.notified() => {}
                _ = shutdown.changed() => return,
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(SETTLE) => {}
            _ = shutdown.changed() => return,
        }
        match store.scrub_wal().await {
            Ok(true) => tracing::debug!("write-ahead log checkpointed after an erasure"),
            Ok(false) | Err(_) => {
                tracing::debug!("checkpoint after an erasure could not finish; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(RETRY) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }
}
