//! Callback URLs' health (`callback_targets`): a URL whose every attempt has failed for
//! `callbacks.pause_after` is paused, the way Stripe disables a webhook endpoint that has
//! been failing for days. A paused URL's reactions stay `pending` and are not claimed (so they
//! use no retry slot) until the operator enables it again; enabling makes them due at once
//! with a fresh schedule, together with those that used up their retries while it was
//! failing. Nothing queued is dropped.

use std::collections::BTreeMap;

use sqlx::Row;

use super::reactions::{AttemptResult, NextState};
use super::{Backend, Store, StoreError, Tx};
use crate::react::ReactionKind;

/// Where a callback URL stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    /// Its last attempt succeeded, or it was never tried.
    Healthy,
    /// Every attempt since `failing_since` failed; still tried on the schedule.
    Failing,
    /// Not tried until the operator enables it.
    Paused,
}

impl TargetState {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::Healthy => "healthy",
            TargetState::Failing => "failing",
            TargetState::Paused => "paused",
        }
    }
}

/// A callback URL as the CLI, the API and the console show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CallbackTarget {
    pub url: String,
    pub state: TargetState,
    /// Listed in `callbacks.urls` now (a URL removed from the configuration can still hold
    /// reactions).
    pub configured: bool,
    /// The first failed attempt since the last success (unix ms).
    pub failing_since_ms: Option<i64>,
    pub last_failure_at_ms: Option<i64>,
    pub last_error: Option<String>,
    pub paused_at_ms: Option<i64>,
    pub enabled_at_ms: Option<i64>,
    /// Reactions to it not delivered yet (`pending` or `sending`).
    pub waiting: i64,
}

/// What enabling a paused URL put back in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Requeued {
    /// Reactions that were waiting: due now, with a fresh retry schedule.
    pub pending: u64,
    /// Reactions that used up their retries while the URL was failing: queued again.
    pub exhausted: u64,
}

/// What enabling a URL came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enabled {
    /// It was paused and is tried again now.
    Resumed(Requeued),
    /// It is not paused: failing (still tried) or healthy, as recorded.
    NotPaused(TargetState),
    /// Nothing is recorded about it: it never failed (or is not a callback URL).
    Unknown,
}

/// Record what this batch of results says about each callback URL, inside the caller's
/// transaction; returns the URLs paused now.
pub(super) async fn record_health(
    b: Backend,
    tx: &mut Tx,
    results: &[AttemptResult],
    now_ms: i64,
    pause_before_ms: Option<i64>,
) -> Result<Vec<String>, StoreError> {
    // Per URL: did any attempt in the batch succeed, and the last failure's error.
    let mut seen: BTreeMap<&str, (bool, Option<&str>)> = BTreeMap::new();
    for r in results
        .iter()
        .filter(|r| r.kind == ReactionKind::Callback.as_str())
    {
        let entry = seen.entry(r.target.as_str()).or_insert((false, None));
        if r.next == NextState::Delivered {
            entry.0 = true;
        } else {
            entry.1 = r.error.as_deref().or(entry.1);
        }
    }
    let healthy = format!(
        "UPDATE callback_targets SET failing_since = NULL, last_error = NULL \
         WHERE url = {} AND failing_since IS NOT NULL",
        b.param(1)
    );
    let failed = format!(
        "INSERT INTO callback_targets (url, failing_since, last_failure_at, last_error) \
         VALUES ({}, {}, {}, {}) ON CONFLICT (url) DO UPDATE SET \
         failing_since = COALESCE(callback_targets.failing_since, excluded.failing_since), \
         last_failure_at = excluded.last_failure_at, last_error = excluded.last_error",
        b.param(1),
        b.param(2),
        b.param(3),
        b.param(4)
    );
    let pause = format!(
        "UPDATE callback_targets SET paused_at = {} \
         WHERE url = {} AND paused_at IS NULL AND failing_since <= {}",
        b.param(1),
        b.param(2),
        b.param(3)
    );
    let mut paused = Vec::new();
    for (url, (delivered, error)) in seen {
        if delivered {
            sqlx::query(&healthy).bind(url).execute(&mut **tx).await?;
            continue;
        }
        sqlx::query(&failed)
            .bind(url)
            .bind(now_ms)
            .bind(now_ms)
            .bind(error.map(str::to_string))
            .execute(&mut **tx)
            .await?;
        if let Some(cutoff) = pause_before_ms {
            let done = sqlx::query(&pause)
                .bind(now_ms)
                .bind(url)
                .bind(cutoff)
                .execute(&mut **tx)
                .await?;
            if done.rows_affected() > 0 {
                paused.push(url.to_string());
            }
        }
    }
    Ok(paused)
}

impl Store {
    /// Every callback URL that is configured or has a record, with how many reactions wait
    /// for it; paused ones first, then by URL.
    pub async fn callback_targets(
        &self,
        configured: &[String],
    ) -> Result<Vec<CallbackTarget>, StoreError> {
        let rows = sqlx::query(
            "SELECT url, failing_since, last_failure_at, last_error, paused_at, enabled_at \
             FROM callback_targets",
        )
        .fetch_all(&self.read)
        .await?;
        let waiting = sqlx::query(
            "SELECT target, COUNT(*) AS n FROM reactions \
             WHERE kind = 'callback' AND state IN ('pending', 'sending') GROUP BY target",
        )
        .fetch_all(&self.read)
        .await?;
        let mut waiting: BTreeMap<String, i64> = waiting
            .iter()
            .map(|r| Ok((r.try_get("target")?, r.try_get("n")?)))
            .collect::<Result<_, sqlx::Error>>()?;
        let mut targets: BTreeMap<String, CallbackTarget> = BTreeMap::new();
        for r in &rows {
            let url: String = r.try_get("url")?;
            let failing_since_ms: Option<i64> = r.try_get("failing_since")?;
            let paused_at_ms: Option<i64> = r.try_get("paused_at")?;
            let state = match (paused_at_ms, failing_since_ms) {
                (Some(_), _) => TargetState::Paused,
                (None, Some(_)) => TargetState::Failing,
                (None, None) => TargetState::Healthy,
            };
            targets.insert(
                url.clone(),
                CallbackTarget {
                    configured: configured.contains(&url),
                    waiting: waiting.remove(&url).unwrap_or(0),
                    url,
                    state,
                    failing_since_ms,
                    last_failure_at_ms: r.try_get("last_failure_at")?,
                    last_error: r.try_get("last_error")?,
                    paused_at_ms,
                    enabled_at_ms: r.try_get("enabled_at")?,
                },
            );
        }
        let unrecorded: Vec<String> = configured
            .iter()
            .cloned()
            .chain(waiting.keys().cloned())
            .collect();
        for url in unrecorded {
            targets
                .entry(url.clone())
                .or_insert_with(|| CallbackTarget {
                    configured: configured.contains(&url),
                    waiting: waiting.get(&url).copied().unwrap_or(0),
                    url,
                    state: TargetState::Healthy,
                    failing_since_ms: None,
                    last_failure_at_ms: None,
                    last_error: None,
                    paused_at_ms: None,
                    enabled_at_ms: None,
                });
        }
        let mut out: Vec<CallbackTarget> = targets.into_values().collect();
        out.sort_by_key(|t| t.state != TargetState::Paused);
        Ok(out)
    }

    /// Enable a paused callback URL: it is tried again at once, its waiting reactions with a
    /// fresh retry schedule, and those that used up their retries while it was failing are
    /// queued again.
    pub async fn enable_callback_target(
        &self,
        url: &str,
        now_ms: i64,
    ) -> Result<Enabled, StoreError> {
        let b = self.backend;
        let mut tx = self.begin().await?;
        let row = sqlx::query(&format!(
            "SELECT failing_since, paused_at FROM callback_targets WHERE url = {}",
            b.param(1)
        ))
        .bind(url)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(Enabled::Unknown);
        };
        let paused_at: Option<i64> = row.try_get("paused_at")?;
        let failing_since: Option<i64> = row.try_get("failing_since")?;
        if paused_at.is_none() {
            return Ok(Enabled::NotPaused(if failing_since.is_some() {
                TargetState::Failing
            } else {
                TargetState::Healthy
            }));
        }
        sqlx::query(&format!(
            "UPDATE callback_targets SET paused_at = NULL, failing_since = NULL, last_error = NULL, \
             enabled_at = {} WHERE url = {}",
            b.param(1),
            b.param(2)
        ))
        .bind(now_ms)
        .bind(url)
        .execute(&mut *tx)
        .await?;
        let pending = sqlx::query(&format!(
            "UPDATE reactions SET next_attempt_at = {}, schedule_offset = attempts \
             WHERE kind = 'callback' AND target = {} AND state = 'pending'",
            b.param(1),
            b.param(2)
        ))
        .bind(now_ms)
        .bind(url)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // An exhausted reaction's next_attempt_at is when it was exhausted.
        let exhausted = sqlx::query(&format!(
            "UPDATE reactions SET state = 'pending', next_attempt_at = {}, schedule_offset = attempts \
             WHERE kind = 'callback' AND target = {} AND state = 'exhausted' AND next_attempt_at >= {}",
            b.param(1),
            b.param(2),
            b.param(3)
        ))
        .bind(now_ms)
        .bind(url)
        .bind(failing_since.unwrap_or(now_ms))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if pending + exhausted > 0 {
            self.notify(&mut tx, super::notify::REACTIONS).await?;
        }
        tx.commit().await?;
        Ok(Enabled::Resumed(Requeued { pending, exhausted }))
    }
}
