//! The reactions outbox: rows written with the decision, claimed by dispatchers, retried,
//! kept when exhausted. Claims are leases (`state = 'sending'`, `next_attempt_at` = lease
//! expiry, `claimed_by` = the instance) taken in a short transaction of their own, so no
//! transaction, and on SQLite not the single writer, is held across network I/O. A claim
//! whose result was never recorded (the process died) is taken back by
//! [`Store::reclaim_interrupted`] — at start-up for the instance's own claims, at the next
//! claim once a lease ran out — and the lost attempt is logged as interrupted without using
//! up a slot of the retry schedule.

use sqlx::Row;

use super::apply::{list, values};
use super::{Backend, Store, StoreError, Tx};
use crate::react::redaction::{redact, StoredReaction, CANCELED_BY_REDACTION};
use crate::react::{NewReaction, ReactionKind, ReactionState};

/// Rows per multi-row INSERT (10 parameters each; well under both backends' limits).
const INSERT_CHUNK: usize = 500;

/// A reaction taken by one dispatcher until its lease expires.
#[derive(Debug, Clone)]
pub struct ClaimedReaction {
    pub id: String,
    pub kind: String,
    pub target: String,
    pub payload: String,
    /// The number of this attempt (1-based, counting every attempt ever made).
    pub attempt: i64,
    /// Attempts made before the last redelivery: the schedule restarts from there.
    pub schedule_offset: i64,
    /// When the decision wrote it (unix ms): the start of its delivery latency.
    pub created_at_ms: i64,
}

/// Where a reaction goes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextState {
    Delivered,
    Retry { at_ms: i64 },
    Exhausted,
}

/// How long a claim holds a reaction, per channel: each attempt has a hard deadline of its
/// channel, and the lease outlasts it, so no second dispatcher takes a row still in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leases {
    pub callback_ms: i64,
    pub email_ms: i64,
    pub nats_ms: i64,
}

/// Which claims to take back because their attempt's result was never recorded.
#[derive(Debug, Clone, Copy)]
pub enum Interrupted<'a> {
    /// Every claim: SQLite at start-up (one instance by construction: whatever is `sending`
    /// was claimed by a process that is gone).
    All,
    /// This instance's own claims: PostgreSQL at start-up.
    ClaimedBy(&'a str),
    /// Claims whose lease ran out (an instance died, or could not record).
    LeaseExpired,
}

/// The attempt log's entry for an attempt whose result was never recorded.
pub const INTERRUPTED: &str =
    "interrupted: the process stopped before this attempt's result was recorded (it may have arrived; it is sent again with the same id)";

/// The result of one attempt, to record.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub reaction_id: String,
    /// The reaction's channel and target: a callback's result also tells whether its URL is
    /// failing.
    pub kind: String,
    pub target: String,
    pub attempt: i64,
    pub started_at_ms: i64,
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub next: NextState,
}

/// A reaction as the CLI and dashboard show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReactionRow {
    pub id: String,
    pub decision_key: String,
    pub kind: String,
    pub target: String,
    pub user_ref: Option<String>,
    pub session_id: Option<String>,
    pub decision: String,
    pub payload: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at_ms: i64,
    pub last_error: Option<String>,
    pub created_at_ms: i64,
    pub delivered_at_ms: Option<i64>,
}

/// One recorded attempt.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReactionAttemptRow {
    pub attempt: i64,
    pub started_at_ms: i64,
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub error: Option<String>,
}

/// Which reactions to list (newest first).
#[derive(Debug, Clone, Default)]
pub struct ReactionFilter {
    /// `pending`, `sending`, `delivered`, `exhausted` or `canceled`.
    pub state: Option<String>,
    pub user_ref: Option<String>,
    pub session_id: Option<String>,
    /// `callback`, `email` or `nats`.
    pub kind: Option<String>,
    pub limit: Option<i64>,
}

/// What to redeliver.
#[derive(Debug, Clone, Copy)]
pub enum Redeliver<'a> {
    /// One reaction, exhausted or already delivered (a replay).
    One(&'a str),
    /// Every exhausted reaction.
    AllExhausted,
}

const ROW_COLUMNS: &str =
    "id, decision_key, kind, target, user_ref, session_id, decision, payload, state, \
    attempts, next_attempt_at, last_error, created_at, delivered_at";

fn reaction_row(r: &sqlx::any::AnyRow) -> Result<ReactionRow, sqlx::Error> {
    Ok(ReactionRow {
        id: r.try_get("id")?,
        decision_key: r.try_get("decision_key")?,
        kind: r.try_get("kind")?,
        target: r.try_get("target")?,
        user_ref: r.try_get("user_ref")?,
        session_id: r.try_get("session_id")?,
        decision: r.try_get("decision")?,
        payload: r.try_get("payload")?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at_ms: r.try_get("next_attempt_at")?,
        last_error: r.try_get("last_error")?,
        created_at_ms: r.try_get("created_at")?,
        delivered_at_ms: r.try_get("delivered_at")?,
    })
}

impl Store {
    /// Write reactions to the outbox inside the decision's transaction. A reaction already
    /// planned for the same decision, kind and target is kept as it is (the decision was
    /// re-applied): one reaction per decision and target, ever.
    pub async fn enqueue_reactions(
        &self,
        tx: &mut Tx,
        reactions: &[NewReaction],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        for chunk in reactions.chunks(INSERT_CHUNK) {
            let sql = format!(
                "INSERT INTO reactions (id, decision_key, kind, target, user_ref, session_id, decision, payload, \
                   state, next_attempt_at, created_at) VALUES {} \
                 ON CONFLICT (decision_key, kind, target) DO NOTHING",
                values_with_state(self.backend, chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for r in chunk {
                query = query
                    .bind(r.id.clone())
                    .bind(r.decision_key.clone())
                    .bind(r.kind.as_str())
                    .bind(r.target.clone())
                    .bind(r.user_ref.clone())
                    .bind(r.session_id.clone())
                    .bind(r.decision.as_str())
                    .bind(r.payload.clone())
                    .bind(now_ms)
                    .bind(now_ms);
            }
            query.execute(&mut **tx).await?;
        }
        if !reactions.is_empty() {
            self.notify(tx, super::notify::REACTIONS).await?;
        }
        Ok(())
    }

    /// Take up to `limit` due reactions for `instance`, oldest due first, each leased for its
    /// channel's time, in one short transaction that first takes back claims whose lease ran
    /// out. Reactions of a paused callback URL are not taken. PostgreSQL: SKIP LOCKED lets
    /// several dispatchers claim disjoint sets. SQLite: the single writer serialises claims.
    pub async fn claim_reactions(
        &self,
        limit: i64,
        now_ms: i64,
        leases: &Leases,
        instance: &str,
    ) -> Result<Vec<ClaimedReaction>, StoreError> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        let b = self.backend;
        let skip_locked = match b {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE reactions SET state = 'sending', attempts = attempts + 1, claimed_by = {}, \
               claimed_at = {}, next_attempt_at = {} + CASE kind WHEN 'callback' THEN {} \
               WHEN 'email' THEN {} ELSE {} END \
             WHERE id IN (SELECT id FROM reactions WHERE state = 'pending' AND next_attempt_at <= {} \
               AND {NOT_PAUSED} ORDER BY next_attempt_at LIMIT {}{skip_locked}) \
             RETURNING id, kind, target, payload, attempts, schedule_offset, created_at",
            b.param(1),
            b.param(2),
            b.param(3),
            b.param(4),
            b.param(5),
            b.param(6),
            b.param(7),
            b.param(8)
        );
        let mut tx = self.begin().await?;
        reclaim(b, &mut tx, Interrupted::LeaseExpired, now_ms).await?;
        let rows = sqlx::query(&sql)
            .bind(instance)
            .bind(now_ms)
            .bind(now_ms)
            .bind(leases.callback_ms)
            .bind(leases.email_ms)
            .bind(leases.nats_ms)
            .bind(now_ms)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                Ok(ClaimedReaction {
                    id: r.try_get("id")?,
                    kind: r.try_get("kind")?,
                    target: r.try_get("target")?,
                    payload: r.try_get("payload")?,
                    attempt: r.try_get("attempts")?,
                    schedule_offset: r.try_get("schedule_offset")?,
                    created_at_ms: r.try_get("created_at")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Take back claims whose attempt's result was never recorded: each becomes due now,
    /// its lost attempt is logged as [`INTERRUPTED`], and the retry schedule skips it (a crash
    /// is not the target's failure). Returns how many were taken back.
    pub async fn reclaim_interrupted(
        &self,
        which: Interrupted<'_>,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let n = reclaim(self.backend, &mut tx, which, now_ms).await?;
        if n > 0 {
            self.notify(&mut tx, super::notify::REACTIONS).await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    /// Record attempts and move their reactions on, in one short transaction. A result for a
    /// claim that is no longer current (its lease expired and someone else took the row, or
    /// redaction canceled it) changes nothing but the attempt log.
    ///
    /// Callback results also keep each URL's health: a delivery clears its failure run, a
    /// failure starts one (or continues it), and a URL whose run started at or before
    /// `pause_before_ms` is paused. Returns the URLs paused now.
    pub async fn record_attempts(
        &self,
        results: &[AttemptResult],
        now_ms: i64,
        pause_before_ms: Option<i64>,
    ) -> Result<Vec<String>, StoreError> {
        if results.is_empty() {
            return Ok(Vec::new());
        }
        let b = self.backend;
        let mut tx = self.begin().await?;
        for chunk in results.chunks(INSERT_CHUNK) {
            let sql = format!(
                "INSERT INTO reaction_attempts (reaction_id, attempt, started_at, status_code, latency_ms, error) \
                 VALUES {} ON CONFLICT (reaction_id, attempt) DO NOTHING",
                values(b, chunk.len(), 6)
            );
            let mut query = sqlx::query(&sql);
            for r in chunk {
                query = query
                    .bind(r.reaction_id.clone())
                    .bind(r.attempt)
                    .bind(r.started_at_ms)
                    .bind(r.status_code)
                    .bind(r.latency_ms)
                    .bind(r.error.clone());
            }
            query.execute(&mut *tx).await?;
        }
        // The common case, deliveries, in one statement per chunk.
        let delivered: Vec<&str> = results
            .iter()
            .filter(|r| r.next == NextState::Delivered)
            .map(|r| r.reaction_id.as_str())
            .collect();
        for chunk in delivered.chunks(INSERT_CHUNK) {
            let ids = (0..chunk.len())
                .map(|i| b.param(i + 3))
                .collect::<Vec<_>>()
                .join(", ");
            // `next_attempt_at` held the lease expiry; a delivered reaction has no next attempt,
            // so it must not keep a time in the future.
            let sql = format!(
                "UPDATE reactions SET state = 'delivered', delivered_at = {}, next_attempt_at = {}, \
                 last_error = NULL WHERE state = 'sending' AND id IN ({ids})",
                b.param(1),
                b.param(2)
            );
            let mut query = sqlx::query(&sql).bind(now_ms).bind(now_ms);
            for id in chunk {
                query = query.bind(*id);
            }
            query.execute(&mut *tx).await?;
        }
        let sql = format!(
            "UPDATE reactions SET state = {}, next_attempt_at = {}, last_error = {} \
             WHERE id = {} AND attempts = {} AND state = 'sending'",
            b.param(1),
            b.param(2),
            b.param(3),
            b.param(4),
            b.param(5)
        );
        for r in results {
            let (state, at) = match r.next {
                NextState::Delivered => continue,
                NextState::Retry { at_ms } => ("pending", at_ms),
                NextState::Exhausted => ("exhausted", now_ms),
            };
            sqlx::query(&sql)
                .bind(state)
                .bind(at)
                .bind(r.error.clone())
                .bind(r.reaction_id.clone())
                .bind(r.attempt)
                .execute(&mut *tx)
                .await?;
        }
        let paused =
            super::targets::record_health(b, &mut tx, results, now_ms, pause_before_ms).await?;
        tx.commit().await?;
        Ok(paused)
    }

    /// When the next reaction comes due (including leases running out), if any; reactions of
    /// paused callback URLs wait for the operator, not for a time.
    pub async fn next_reaction_due(&self) -> Result<Option<i64>, StoreError> {
        let sql = format!(
            "SELECT MIN(next_attempt_at) AS due FROM reactions \
             WHERE state IN ('pending', 'sending') AND {NOT_PAUSED}"
        );
        let row = sqlx::query(&sql).fetch_one(&self.read).await?;
        Ok(row.try_get("due")?)
    }

    /// Reactions, newest first, filtered.
    pub async fn list_reactions(
        &self,
        filter: &ReactionFilter,
    ) -> Result<Vec<ReactionRow>, StoreError> {
        let b = self.backend;
        let mut clauses = Vec::new();
        let mut binds: Vec<String> = Vec::new();
        for (column, value) in [
            ("state", &filter.state),
            ("user_ref", &filter.user_ref),
            ("session_id", &filter.session_id),
            ("kind", &filter.kind),
        ] {
            if let Some(v) = value {
                binds.push(v.clone());
                clauses.push(format!("{column} = {}", b.param(binds.len())));
            }
        }
        let filter_sql = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM reactions{filter_sql} ORDER BY created_at DESC, id LIMIT {}",
            b.param(binds.len() + 1)
        );
        let mut query = sqlx::query(&sql);
        for v in binds {
            query = query.bind(v);
        }
        let rows = query
            .bind(filter.limit.unwrap_or(100).clamp(1, 10_000))
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(reaction_row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::from)
    }

    pub async fn get_reaction(&self, id: &str) -> Result<Option<ReactionRow>, StoreError> {
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM reactions WHERE id = {}",
            self.backend.param(1)
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref()
            .map(reaction_row)
            .transpose()
            .map_err(StoreError::from)
    }

    /// The attempt log of one reaction, oldest first.
    pub async fn reaction_attempts(&self, id: &str) -> Result<Vec<ReactionAttemptRow>, StoreError> {
        let sql = format!(
            "SELECT attempt, started_at, status_code, latency_ms, error FROM reaction_attempts \
             WHERE reaction_id = {} ORDER BY attempt",
            self.backend.param(1)
        );
        let rows = sqlx::query(&sql).bind(id).fetch_all(&self.read).await?;
        rows.iter()
            .map(|r| {
                Ok(ReactionAttemptRow {
                    attempt: r.try_get("attempt")?,
                    started_at_ms: r.try_get("started_at")?,
                    status_code: r.try_get("status_code")?,
                    latency_ms: r.try_get("latency_ms")?,
                    error: r.try_get("error")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Make reactions due again now, with a fresh retry schedule. The attempt history stays
    /// (attempt numbers keep counting up). Returns how many were reset.
    pub async fn redeliver(&self, which: Redeliver<'_>, now_ms: i64) -> Result<u64, StoreError> {
        let b = self.backend;
        let set = format!(
            "UPDATE reactions SET state = 'pending', next_attempt_at = {}, schedule_offset = attempts, \
             delivered_at = NULL",
            b.param(1)
        );
        let mut tx = self.begin().await?;
        let done = match which {
            Redeliver::One(id) => {
                let sql = format!(
                    "{set} WHERE id = {} AND state IN ('exhausted', 'delivered')",
                    b.param(2)
                );
                sqlx::query(&sql)
                    .bind(now_ms)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
            }
            Redeliver::AllExhausted => {
                let sql = format!("{set} WHERE state = 'exhausted'");
                sqlx::query(&sql).bind(now_ms).execute(&mut *tx).await?
            }
        };
        if done.rows_affected() > 0 {
            self.notify(&mut tx, super::notify::REACTIONS).await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Redaction: apply [`redact`] to every reaction of these sessions (pending and
    /// delivered alike). Returns how many changed.
    pub async fn redact_reactions(
        &self,
        tx: &mut Tx,
        session_ids: &[&str],
    ) -> Result<u64, StoreError> {
        if session_ids.is_empty() {
            return Ok(0);
        }
        let b = self.backend;
        let sql = format!(
            "SELECT id, kind, target, payload, state FROM reactions WHERE session_id IN ({})",
            list(b, session_ids.len(), 0)
        );
        let mut query = sqlx::query(&sql);
        for id in session_ids {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(&mut **tx).await?;
        // A canceled email also gets its state and the reason it was never sent.
        let sql = format!(
            "UPDATE reactions SET payload = {}, target = {}, state = COALESCE({}, state), \
             last_error = COALESCE({}, last_error) WHERE id = {}",
            b.param(1),
            b.param(2),
            b.param(3),
            b.param(4),
            b.param(5)
        );
        let mut changed = 0;
        for row in rows {
            let id: String = row.try_get("id")?;
            let kind: String = row.try_get("kind")?;
            let target: String = row.try_get("target")?;
            let payload: String = row.try_get("payload")?;
            let state: String = row.try_get("state")?;
            let Some(change) = redact(&StoredReaction {
                id: &id,
                kind: ReactionKind::parse(&kind),
                state: ReactionState::parse(&state),
                target: &target,
                payload: &payload,
            }) else {
                continue;
            };
            let cancel = change.cancel;
            sqlx::query(&sql)
                .bind(change.payload)
                .bind(change.target)
                .bind(cancel.then_some(ReactionState::Canceled.as_str()))
                .bind(cancel.then_some(CANCELED_BY_REDACTION))
                .bind(id)
                .execute(&mut **tx)
                .await?;
            changed += 1;
        }
        if changed > 0 {
            self.note_erasure();
        }
        Ok(changed)
    }
}

/// A reaction not held back by a paused callback URL (a condition on `reactions`).
pub(super) const NOT_PAUSED: &str = "NOT (kind = 'callback' AND target IN \
    (SELECT url FROM callback_targets WHERE paused_at IS NOT NULL))";

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// [`Store::reclaim_interrupted`] inside the caller's transaction.
async fn reclaim(
    b: Backend,
    tx: &mut Tx,
    which: Interrupted<'_>,
    now_ms: i64,
) -> Result<u64, StoreError> {
    // The condition, with its parameter numbered `i`, and that parameter's value.
    let condition = |i: usize| match which {
        Interrupted::All => "1 = 1".to_string(),
        Interrupted::ClaimedBy(_) => format!("claimed_by = {}", b.param(i)),
        Interrupted::LeaseExpired => format!("next_attempt_at <= {}", b.param(i)),
    };
    fn bind<'q>(query: AnyQuery<'q>, which: Interrupted<'_>, now_ms: i64) -> AnyQuery<'q> {
        match which {
            Interrupted::All => query,
            Interrupted::ClaimedBy(id) => query.bind(id.to_string()),
            Interrupted::LeaseExpired => query.bind(now_ms),
        }
    }
    // The log first, from the rows as they are (a lost attempt has no entry yet: a result
    // and its state change are recorded together).
    let log = format!(
        "INSERT INTO reaction_attempts (reaction_id, attempt, started_at, status_code, latency_ms, error) \
         SELECT id, attempts, COALESCE(claimed_at, {}), NULL, 0, {} FROM reactions \
         WHERE state = 'sending' AND {} ON CONFLICT (reaction_id, attempt) DO NOTHING",
        b.param(1),
        b.param(2),
        condition(3)
    );
    bind(
        sqlx::query(&log).bind(now_ms).bind(INTERRUPTED),
        which,
        now_ms,
    )
    .execute(&mut **tx)
    .await?;
    let update = format!(
        "UPDATE reactions SET state = 'pending', next_attempt_at = {}, \
         schedule_offset = schedule_offset + 1, claimed_by = NULL \
         WHERE state = 'sending' AND {}",
        b.param(1),
        condition(2)
    );
    let done = bind(sqlx::query(&update).bind(now_ms), which, now_ms)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected())
}

/// `(…, 'pending', $n, $n+1)` rows: the 8 reaction columns, the state literal, then the two
/// timestamps.
fn values_with_state(backend: Backend, rows: usize) -> String {
    let mut sql = String::new();
    let mut p = 0;
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..8 {
            p += 1;
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&backend.param(p));
        }
        sql.push_str(", 'pending', ");
        p += 1;
        sql.push_str(&backend.param(p));
        sql.push_str(", ");
        p += 1;
        sql.push_str(&backend.param(p));
        sql.push(')');
    }
    sql
}
