//! Retention: the store does not grow forever. Two rules (`config::retention`):
//!
//! - the raw payload of a *processed* event, and the session metadata kept beside it, are set
//!   to NULL once it was received more than `retention.payload_days` ago (the non-personal
//!   facts the processor derived, the session history and the decisions stay);
//! - the row of a processed event is deleted once it was received more than
//!   `retention.event_days` ago — long enough that Stripe can no longer redeliver it and
//!   reconciliation can no longer list it, so de-duplication never needs it again.
//!
//! An unprocessed event keeps its payload and its row whatever its age: only rows with
//! `processed_at` set are ever touched.
//!
//! Pruning runs in small batches (each its own short transaction on the writer), and before each
//! batch it steps aside while the group committer is busy, so it never delays an
//! acknowledgement for long. SQLite gets the space back with `auto_vacuum = INCREMENTAL` (set on
//! every new file before its first table, see `open.rs`) and `PRAGMA incremental_vacuum` in
//! small steps after the deletions; a file created before this has `auto_vacuum = NONE`: its
//! freed pages are reused by new rows but the file does not shrink until one `VACUUM` converts
//! it (a warning at start-up says how). PostgreSQL is left to autovacuum: the deletions are
//! small batches of rows, which is what it handles well.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use tokio::sync::watch;

use super::{Backend, Store, StoreError};
use crate::config::RetentionConfig;
use crate::ingest::IngestLoad;

/// Rows per pruning transaction: short enough that a delivery waiting behind it waits a few
/// milliseconds at most.
pub const BATCH: i64 = 256;
/// Pages released to the file system per `incremental_vacuum` step (4 MiB of 4 KiB pages).
const VACUUM_STEP: i64 = 1024;
/// How often the background task looks for expired payloads and rows.
const EVERY: Duration = Duration::from_secs(60);
/// Longest wait for the committer to go quiet before one batch goes anyway.
const MAX_YIELD: Duration = Duration::from_secs(1);

/// What one pruning pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Payloads set to NULL.
    pub payloads: u64,
    /// Event rows deleted.
    pub events: u64,
    /// SQLite: pages given back to the file system.
    pub pages_released: i64,
}

/// SQLite's `auto_vacuum` mode of the open file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoVacuum {
    None,
    Full,
    Incremental,
}

impl Store {
    /// Set the payload of up to `limit` processed events received before `received_before_ms`
    /// to NULL, oldest first. Returns how many.
    pub async fn prune_payloads(
        &self,
        received_before_ms: i64,
        limit: i64,
    ) -> Result<u64, StoreError> {
        // The partial index `events_payload_kept` holds exactly the rows that still have one.
        self.prune_oldest(
            "UPDATE events SET payload = NULL, metadata = NULL",
            "payload IS NOT NULL AND",
            received_before_ms,
            limit,
        )
        .await
    }

    /// Delete up to `limit` processed event rows received before `received_before_ms`, oldest
    /// first. Returns how many.
    pub async fn prune_event_rows(
        &self,
        received_before_ms: i64,
        limit: i64,
    ) -> Result<u64, StoreError> {
        self.prune_oldest("DELETE FROM events", "", received_before_ms, limit)
            .await
    }

    /// `change` (an UPDATE or DELETE of `events`) applied to the up to `limit` oldest
    /// *processed* events received before `received_before_ms` that also match `also` (a
    /// condition followed by AND, or nothing). Returns the rows changed.
    async fn prune_oldest(
        &self,
        change: &str,
        also: &str,
        received_before_ms: i64,
        limit: i64,
    ) -> Result<u64, StoreError> {
        let p = |i| self.backend.param(i);
        let sql = format!(
            "{change} WHERE seq IN (SELECT seq FROM events WHERE {also} received_at < {} \
             AND processed_at IS NOT NULL ORDER BY received_at LIMIT {})",
            p(1),
            p(2)
        );
        let done = sqlx::query(&sql)
            .bind(received_before_ms)
            .bind(limit)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected())
    }

    /// `received_at` (unix ms) of the oldest event whose payload is still kept.
    pub async fn oldest_payload_ms(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT received_at FROM events WHERE payload IS NOT NULL ORDER BY received_at LIMIT 1",
        )
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|r| r.try_get("received_at")).transpose()?)
    }

    /// SQLite: the file's `auto_vacuum` mode; `None` on PostgreSQL.
    pub async fn auto_vacuum(&self) -> Result<Option<AutoVacuum>, StoreError> {
        if self.backend != Backend::Sqlite {
            return Ok(None);
        }
        let mode: i64 = sqlx::query("PRAGMA auto_vacuum")
            .fetch_one(&self.read)
            .await?
            .try_get(0)?;
        Ok(Some(match mode {
            1 => AutoVacuum::Full,
            2 => AutoVacuum::Incremental,
            _ => AutoVacuum::None,
        }))
    }

    /// SQLite: pages on the free list (0 on PostgreSQL).
    pub async fn free_pages(&self) -> Result<i64, StoreError> {
        if self.backend != Backend::Sqlite {
            return Ok(0);
        }
        Ok(sqlx::query("PRAGMA freelist_count")
            .fetch_one(&self.read)
            .await?
            .try_get(0)?)
    }

    /// SQLite with `auto_vacuum = INCREMENTAL`: give up to `pages` free pages back to the file
    /// system (one short write transaction). Returns the pages released.
    pub async fn release_free_pages(&self, pages: i64) -> Result<i64, StoreError> {
        if self.auto_vacuum().await? != Some(AutoVacuum::Incremental) {
            return Ok(0);
        }
        let before = self.free_pages().await?;
        if before == 0 {
            return Ok(0);
        }
        // A PRAGMA takes no bind parameters; `pages` is an integer we chose.
        sqlx::query(&format!("PRAGMA incremental_vacuum({})", pages.max(1)))
            .execute(&self.write)
            .await?;
        Ok(before - self.free_pages().await?)
    }
}

/// Wait (at most [`MAX_YIELD`]) while the group committer is busy: deliveries first.
async fn step_aside(load: Option<&IngestLoad>) {
    let Some(load) = load else { return };
    let started = std::time::Instant::now();
    while load.is_busy(crate::clock::now_ms()) && started.elapsed() < MAX_YIELD {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One full pass at time `now_ms`: every expired payload, every expired row, then (SQLite) the
/// freed pages back to the file system — all in batches of [`BATCH`], each after
/// [`step_aside`]. The clock is the caller's, so tests can move it.
pub async fn prune(
    store: &Store,
    rules: RetentionConfig,
    now_ms: i64,
    load: Option<&IngestLoad>,
) -> Result<Pruned, StoreError> {
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let payload_cutoff = now_ms.saturating_sub(ms(rules.payload));
    let event_cutoff = now_ms.saturating_sub(ms(rules.events));
    let mut pruned = Pruned::default();
    loop {
        step_aside(load).await;
        let n = store.prune_payloads(payload_cutoff, BATCH).await?;
        pruned.payloads += n;
        if n < BATCH as u64 {
            break;
        }
    }
    loop {
        step_aside(load).await;
        let n = store.prune_event_rows(event_cutoff, BATCH).await?;
        pruned.events += n;
        if n < BATCH as u64 {
            break;
        }
    }
    if store.backend() == Backend::Sqlite && (pruned.payloads > 0 || pruned.events > 0) {
        loop {
            step_aside(load).await;
            let n = store.release_free_pages(VACUUM_STEP).await?;
            pruned.pages_released += n;
            if n < VACUUM_STEP {
                break;
            }
        }
    }
    Ok(pruned)
}

/// Prune at start-up and then every [`EVERY`] until `shutdown`.
pub async fn run(
    store: Store,
    rules: RetentionConfig,
    load: Arc<IngestLoad>,
    mut shutdown: watch::Receiver<bool>,
) {
    if let Ok(Some(AutoVacuum::None)) = store.auto_vacuum().await {
        tracing::warn!(
            "this SQLite file was created without incremental auto-vacuum: pruned space is reused but the file will not shrink; convert it once with `sqlite3 FILE 'PRAGMA auto_vacuum = INCREMENTAL; VACUUM;'` while serve is stopped"
        );
    }
    loop {
        // Cancelling between statements is safe: each batch is its own transaction.
        let pass = tokio::select! {
            pass = prune(&store, rules, crate::clock::now_ms(), Some(&load)) => pass,
            _ = shutdown.changed() => return,
        };
        match pass {
            Ok(p) if p.payloads > 0 || p.events > 0 => tracing::info!(
                payloads = p.payloads,
                events = p.events,
                pages_released = p.pages_released,
                "retention: pruned expired payloads and events"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "retention pass failed; trying again later"),
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    return;
                }
            }
        }
    }
}
