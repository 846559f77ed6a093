//! Batch reads and writes for the processor. A claimed batch of events is applied with a
//! handful of statements, whatever its size: per-statement round trips, not rows, are what
//! cost on a small machine (each one is a hop to the database thread or server).

use std::collections::{HashMap, HashSet};

use sqlx::{Any, Row, Transaction};

use super::sessions::{session_from_row, SESSION_COLUMNS};
use super::{Backend, Store, StoreError};
use crate::decide::attempts::FailedAttempt;
use crate::decide::{Disposition, HistoryEntry, NextStep, SessionRecord};

/// A write transaction (see [`Store::begin`]).
pub type Tx = Transaction<'static, Any>;

/// PostgreSQL advisory-lock key spaces. Sessions use the one-`bigint` form
/// (`pg_advisory_xact_lock(hashtext(id)::bigint)`); everything else the two-`int` form, whose
/// first key names the space (users: 1). PostgreSQL keeps the two forms apart, so no user
/// lock can collide with a session's.
#[derive(Debug, Clone, Copy)]
enum LockSpace {
    Sessions,
    /// A user's record: the processor's user step and an operator's review, which both read a
    /// user, recompute and write it back.
    Users,
}

impl LockSpace {
    /// The lock call for one key, `id` being the column the keys are in.
    fn lock_call(self) -> &'static str {
        match self {
            LockSpace::Sessions => "pg_advisory_xact_lock(hashtext(id)::bigint)",
            LockSpace::Users => "pg_advisory_xact_lock(1, hashtext(id))",
        }
    }
}

/// `($1, $2, …), ($n+1, …)` for `rows` rows of `cols` columns.
pub(super) fn values(backend: Backend, rows: usize, cols: usize) -> String {
    let mut sql = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&backend.param(r * cols + c + 1));
        }
        sql.push(')');
    }
    sql
}

/// `$1, $2, …, $n` (after `offset` earlier parameters).
pub(super) fn list(backend: Backend, n: usize, offset: usize) -> String {
    (1..=n)
        .map(|i| backend.param(i + offset))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Serialise work on these sessions across instances for the rest of the transaction.
    /// PostgreSQL: transaction-scoped advisory locks, taken in sorted order so that two
    /// instances with overlapping batches cannot deadlock (and they work even before the
    /// session row exists). SQLite: the single writer already serialises everything.
    pub(crate) async fn lock_sessions(&self, tx: &mut Tx, ids: &[&str]) -> Result<(), StoreError> {
        self.advisory_locks(tx, LockSpace::Sessions, ids).await
    }

    /// Serialise reading, recomputing and writing these users for the rest of the
    /// transaction, as [`Store::lock_sessions`] does for sessions. A batch takes these after
    /// its session locks and a review takes only these, so the order is the same everywhere
    /// and no two transactions can wait on each other in a cycle.
    pub(crate) async fn lock_users(&self, tx: &mut Tx, refs: &[&str]) -> Result<(), StoreError> {
        self.advisory_locks(tx, LockSpace::Users, refs).await
    }

    async fn advisory_locks(
        &self,
        tx: &mut Tx,
        space: LockSpace,
        ids: &[&str],
    ) -> Result<(), StoreError> {
        if self.backend != Backend::Postgres || ids.is_empty() {
            return Ok(());
        }
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        // One statement; ORDER BY makes the locks come in sorted order.
        let sql = format!(
            "SELECT COUNT(*) AS n FROM (SELECT {} FROM \
             (SELECT unnest(ARRAY[{}]::text[]) AS id ORDER BY 1) AS ids) AS locks",
            space.lock_call(),
            list(self.backend, ids.len(), 0)
        );
        let mut query = sqlx::query(&sql);
        for id in ids {
            query = query.bind(id);
        }
        query.fetch_one(&mut **tx).await?;
        Ok(())
    }

    /// The current records of these sessions.
    pub(crate) async fn load_sessions(
        &self,
        tx: &mut Tx,
        ids: &[&str],
    ) -> Result<HashMap<String, SessionRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM verification_sessions WHERE id IN ({})",
            list(self.backend, ids.len(), 0)
        );
        let mut query = sqlx::query(&sql);
        for id in ids {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(&mut **tx).await?;
        rows.iter()
            .map(|r| session_from_row(r).map(|s| (s.id.clone(), s)))
            .collect()
    }

    /// The failed-attempt keys already recorded for these sessions.
    pub(crate) async fn load_attempt_keys(
        &self,
        tx: &mut Tx,
        ids: &[&str],
    ) -> Result<HashMap<String, HashSet<String>>, StoreError> {
        let mut keys: HashMap<String, HashSet<String>> = HashMap::new();
        if ids.is_empty() {
            return Ok(keys);
        }
        let sql = format!(
            "SELECT session_id, attempt_key FROM session_attempts WHERE session_id IN ({})",
            list(self.backend, ids.len(), 0)
        );
        let mut query = sqlx::query(&sql);
        for id in ids {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut **tx).await? {
            keys.entry(row.try_get("session_id")?)
                .or_default()
                .insert(row.try_get("attempt_key")?);
        }
        Ok(keys)
    }

    /// Insert or replace session records (one statement).
    pub(crate) async fn save_sessions(
        &self,
        tx: &mut Tx,
        sessions: &[&SessionRecord],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        if sessions.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "INSERT INTO verification_sessions (id, user_ref, status, session_type, livemode, metadata, last_error_code, \
               last_error_reason, last_report_id, redaction_status, failed_attempts, status_event_created, status_rank, \
               session_created, outcome, next_step, failure_codes, first_seen_at, updated_at) VALUES {} \
             ON CONFLICT (id) DO UPDATE SET user_ref = excluded.user_ref, status = excluded.status, \
               session_type = excluded.session_type, livemode = excluded.livemode, metadata = excluded.metadata, \
               last_error_code = excluded.last_error_code, last_error_reason = excluded.last_error_reason, \
               last_report_id = excluded.last_report_id, redaction_status = excluded.redaction_status, \
               failed_attempts = excluded.failed_attempts, status_event_created = excluded.status_event_created, \
               status_rank = excluded.status_rank, session_created = excluded.session_created, \
               outcome = excluded.outcome, next_step = excluded.next_step, \
               failure_codes = excluded.failure_codes, updated_at = excluded.updated_at",
            values(self.backend, sessions.len(), 19)
        );
        let mut query = sqlx::query(&sql);
        for s in sessions {
            let metadata = if s.metadata.is_empty() {
                None
            } else {
                Some(
                    serde_json::to_string(&s.metadata)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                )
            };
            query = query
                .bind(s.id.clone())
                .bind(s.user_ref.clone())
                .bind(s.status.as_str().to_string())
                .bind(s.session_type.as_ref().map(|t| t.as_str().to_string()))
                .bind(i64::from(s.livemode))
                .bind(metadata)
                .bind(s.last_error_code.as_ref().map(|c| c.as_str().to_string()))
                .bind(s.last_error_reason.clone())
                .bind(s.last_report_id.clone())
                .bind(s.redaction_status.as_ref().map(|r| r.as_str().to_string()))
                .bind(i64::from(s.failed_attempts))
                .bind(s.status_event_created)
                .bind(s.status_rank)
                .bind(s.session_created)
                .bind(s.outcome.as_str())
                .bind(s.next_step.map(NextStep::as_str))
                .bind(failure_codes(s))
                .bind(now_ms)
                .bind(now_ms);
        }
        query.execute(&mut **tx).await?;
        Ok(())
    }

    pub(crate) async fn insert_attempts(
        &self,
        tx: &mut Tx,
        attempts: &[FailedAttempt],
    ) -> Result<(), StoreError> {
        if attempts.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "INSERT INTO session_attempts (session_id, attempt_key, error_code, event_created) VALUES {} \
             ON CONFLICT (session_id, attempt_key) DO NOTHING",
            values(self.backend, attempts.len(), 4)
        );
        let mut query = sqlx::query(&sql);
        for a in attempts {
            query = query
                .bind(a.session_id.clone())
                .bind(a.key.clone())
                .bind(a.code.as_str().to_string())
                .bind(a.event_created);
        }
        query.execute(&mut **tx).await?;
        Ok(())
    }

    pub(crate) async fn insert_history(
        &self,
        tx: &mut Tx,
        lines: &[HistoryEntry],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        if lines.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "INSERT INTO session_events (session_id, event_id, event_type, event_created, effect, applied_at) VALUES {} \
             ON CONFLICT (session_id, event_id) DO NOTHING",
            values(self.backend, lines.len(), 6)
        );
        let mut query = sqlx::query(&sql);
        for h in lines {
            query = query
                .bind(h.session_id.clone())
                .bind(h.event_id.clone())
                .bind(h.event_type.as_str().to_string())
                .bind(h.event_created)
                .bind(h.effect.as_str())
                .bind(now_ms);
        }
        query.execute(&mut **tx).await?;
        Ok(())
    }

    /// Mark claimed events processed with their disposition. Returns how many rows changed;
    /// the caller checks it equals the number it claimed (exactly-once, defensively).
    pub(crate) async fn mark_processed(
        &self,
        tx: &mut Tx,
        seqs: &[i64],
        disposition: Disposition,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        if seqs.is_empty() {
            return Ok(0);
        }
        let sql = format!(
            "UPDATE events SET processed_at = {}, disposition = {} WHERE processed_at IS NULL AND seq IN ({})",
            self.backend.param(1),
            self.backend.param(2),
            list(self.backend, seqs.len(), 2)
        );
        let mut query = sqlx::query(&sql).bind(now_ms).bind(disposition.as_str());
        for seq in seqs {
            query = query.bind(*seq);
        }
        Ok(query.execute(&mut **tx).await?.rows_affected())
    }

    /// Redaction: drop the raw payloads and the metadata of every event about these sessions.
    /// What stays is the facts (ids, types, statuses, codes, timestamps, the user reference):
    /// an event of the session still waiting is applied from them all the same.
    pub(crate) async fn purge_payloads(
        &self,
        tx: &mut Tx,
        session_ids: &[&str],
    ) -> Result<u64, StoreError> {
        if session_ids.is_empty() {
            return Ok(0);
        }
        let sql = format!(
            "UPDATE events SET payload = NULL, metadata = NULL \
             WHERE (payload IS NOT NULL OR metadata IS NOT NULL) AND object_id IN ({})",
            list(self.backend, session_ids.len(), 0)
        );
        let mut query = sqlx::query(&sql);
        for id in session_ids {
            query = query.bind(*id);
        }
        let purged = query.execute(&mut **tx).await?.rows_affected();
        if purged > 0 {
            self.note_erasure();
        }
        Ok(purged)
    }
}

/// A session's failure codes as stored: comma-joined (codes are `[a-z_]` words), or NULL.
fn failure_codes(s: &SessionRecord) -> Option<String> {
    (!s.failure_codes.is_empty()).then(|| {
        s.failure_codes
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(",")
    })
}
