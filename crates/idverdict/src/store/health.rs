//! Readiness: is storage usable right now? A database that still answers reads can refuse
//! every write (SQLite on a full or read-only disk), so reading is not enough: writers report
//! how their writes went (the group committer, after each batch), and after a failed write
//! readiness is decided by a small probe write of its own (at most one per second, so that a
//! load balancer polling `/readyz` cannot add load to a struggling database). Without the
//! probe, an instance taken out of rotation for a failed write would get no traffic to show it
//! has recovered.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use super::{Store, StoreError};
use crate::clock;

/// A readiness check longer than this is a failure (the pool would otherwise wait out its
/// acquire timeout against a server that is gone).
const CHECK_LIMIT: Duration = Duration::from_secs(2);
/// At most one probe write per this many milliseconds.
const PROBE_EVERY_MS: i64 = 1000;
/// The `sync_state` row the probe writes.
const PROBE_ROW: &str = "readiness_probe";

/// How the latest write went.
#[derive(Debug, Default)]
pub(crate) struct WriteHealth {
    failing: AtomicBool,
    last_probe_ms: AtomicI64,
}

#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("storage did not answer within {0:?}")]
    TimedOut(Duration),
    #[error("storage does not take writes: {0}")]
    Writes(StoreError),
    #[error("storage is unreachable: {0}")]
    Unreachable(StoreError),
    #[error("the last write failed; checking again shortly")]
    LastWriteFailed,
}

impl Store {
    /// A writer reports how a write went.
    pub fn note_write(&self, ok: bool) {
        self.health.failing.store(!ok, Ordering::SeqCst);
    }

    /// Ready: the database answers, and (after a failed write) takes writes again.
    pub async fn check_ready(&self) -> Result<(), NotReady> {
        match tokio::time::timeout(CHECK_LIMIT, self.readiness()).await {
            Ok(result) => result,
            Err(_) => Err(NotReady::TimedOut(CHECK_LIMIT)),
        }
    }

    async fn readiness(&self) -> Result<(), NotReady> {
        self.ping().await.map_err(NotReady::Unreachable)?;
        if !self.health.failing.load(Ordering::SeqCst) {
            return Ok(());
        }
        let now = clock::now_ms();
        let last = self.health.last_probe_ms.load(Ordering::SeqCst);
        if now - last < PROBE_EVERY_MS
            || self
                .health
                .last_probe_ms
                .compare_exchange(last, now, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
        {
            return Err(NotReady::LastWriteFailed);
        }
        match self.sync_state_set(PROBE_ROW, &now.to_string()).await {
            Ok(()) => {
                self.note_write(true);
                Ok(())
            }
            Err(e) => Err(NotReady::Writes(e)),
        }
    }
}
