//! `user_expectations` (what an app expects of each user's verified person: digests and rules,
//! never a value) and `session_checks` (per verified session: pending, or the per-field
//! results of the comparison).

use std::collections::HashMap;

use sqlx::Row;

use super::apply::{list, values, Tx};
use super::{Store, StoreError};
use crate::decide::expectations::{CheckResults, Expectations};

/// A check waiting for its (next) attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueCheck {
    pub session_id: String,
    pub user_ref: String,
    pub attempts: i64,
}

/// One check of a user's session, as the API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckRow {
    pub session: String,
    /// `pending` or `done`.
    pub state: String,
    pub results: Option<CheckResults>,
    pub checked_at_ms: Option<i64>,
}

fn corrupt(what: &str, e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("unreadable {what}: {e}"))
}

impl Store {
    /// Record (replace) what the app expects of a user.
    pub async fn save_expectations(
        &self,
        user_ref: &str,
        expectations: &Expectations,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(expectations).map_err(|e| corrupt("expectations", e))?;
        let p = |i| self.backend.param(i);
        let sql = format!(
            "INSERT INTO user_expectations (user_ref, expectations, set_at) VALUES ({}, {}, {}) \
             ON CONFLICT (user_ref) DO UPDATE SET expectations = excluded.expectations, set_at = excluded.set_at",
            p(1),
            p(2),
            p(3)
        );
        sqlx::query(&sql)
            .bind(user_ref)
            .bind(json)
            .bind(now_ms)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// What the app expects of each of these users (users without expectations are absent).
    pub(crate) async fn load_expectations(
        &self,
        tx: &mut Tx,
        refs: &[&str],
    ) -> Result<HashMap<String, Expectations>, StoreError> {
        if refs.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT user_ref, expectations FROM user_expectations WHERE user_ref IN ({})",
            list(self.backend, refs.len(), 0)
        );
        let mut query = sqlx::query(&sql);
        for r in refs {
            query = query.bind(*r);
        }
        let mut out = HashMap::new();
        for row in query.fetch_all(&mut **tx).await? {
            let text: String = row.try_get("expectations")?;
            let e = serde_json::from_str(&text).map_err(|e| corrupt("expectations", e))?;
            out.insert(row.try_get("user_ref")?, e);
        }
        Ok(out)
    }

    /// Forget the expectation digests of these users (`Expectations::forget_digests`),
    /// inside the redacting transaction. Returns how many users had digests.
    pub(crate) async fn forget_expectation_digests(
        &self,
        tx: &mut Tx,
        refs: &[&str],
    ) -> Result<usize, StoreError> {
        let mut forgotten = 0;
        for (user_ref, mut expectations) in self.load_expectations(tx, refs).await? {
            if !expectations.forget_digests() {
                continue;
            }
            let json =
                serde_json::to_string(&expectations).map_err(|e| corrupt("expectations", e))?;
            let sql = format!(
                "UPDATE user_expectations SET expectations = {} WHERE user_ref = {}",
                self.backend.param(1),
                self.backend.param(2)
            );
            sqlx::query(&sql)
                .bind(json)
                .bind(&user_ref)
                .execute(&mut **tx)
                .await?;
            forgotten += 1;
        }
        if forgotten > 0 {
            self.note_erasure();
        }
        Ok(forgotten)
    }

    /// What is expected of one user (outside any transaction: the checker reads it before it
    /// calls Stripe).
    pub(crate) async fn expectations_of(
        &self,
        user_ref: &str,
    ) -> Result<Option<Expectations>, StoreError> {
        let sql = format!(
            "SELECT expectations FROM user_expectations WHERE user_ref = {}",
            self.backend.param(1)
        );
        let row = sqlx::query(&sql)
            .bind(user_ref)
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| {
            let text: String = r.try_get("expectations")?;
            serde_json::from_str(&text).map_err(|e| corrupt("expectations", e))
        })
        .transpose()
    }

    /// The finished checks of these users' sessions: user → session → results.
    pub(crate) async fn load_checks(
        &self,
        tx: &mut Tx,
        refs: &[&str],
    ) -> Result<HashMap<String, HashMap<String, CheckResults>>, StoreError> {
        if refs.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT user_ref, session_id, results FROM session_checks \
             WHERE state = 'done' AND user_ref IN ({})",
            list(self.backend, refs.len(), 0)
        );
        let mut query = sqlx::query(&sql);
        for r in refs {
            query = query.bind(*r);
        }
        let mut out: HashMap<String, HashMap<String, CheckResults>> = HashMap::new();
        for row in query.fetch_all(&mut **tx).await? {
            let text: Option<String> = row.try_get("results")?;
            let results = serde_json::from_str(text.as_deref().unwrap_or("{}"))
                .map_err(|e| corrupt("check results", e))?;
            out.entry(row.try_get("user_ref")?)
                .or_default()
                .insert(row.try_get("session_id")?, results);
        }
        Ok(out)
    }

    /// Ask for a check of these `(session, user)` pairs (once: a pending or finished check
    /// stays as it is).
    pub(crate) async fn request_checks(
        &self,
        tx: &mut Tx,
        checks: &[(&str, &str)],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        if checks.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "INSERT INTO session_checks (session_id, user_ref, state, next_attempt_at, requested_at) \
             VALUES {} ON CONFLICT (session_id) DO NOTHING",
            values(self.backend, checks.len(), 5)
        );
        let mut query = sqlx::query(&sql);
        for (session, user) in checks {
            query = query
                .bind(*session)
                .bind(*user)
                .bind("pending")
                .bind(now_ms)
                .bind(now_ms);
        }
        query.execute(&mut **tx).await?;
        Ok(())
    }

    /// Pending checks whose time has come, oldest first.
    pub(crate) async fn due_checks(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<DueCheck>, StoreError> {
        let p = |i| self.backend.param(i);
        let sql = format!(
            "SELECT session_id, user_ref, attempts FROM session_checks \
             WHERE state = 'pending' AND next_attempt_at <= {} ORDER BY next_attempt_at, session_id LIMIT {}",
            p(1),
            p(2)
        );
        let rows = sqlx::query(&sql)
            .bind(now_ms)
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(DueCheck {
                    session_id: r.try_get("session_id")?,
                    user_ref: r.try_get("user_ref")?,
                    attempts: r.try_get("attempts")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// When the next pending check comes due, if any.
    pub(crate) async fn next_check_due(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(next_attempt_at) AS due FROM session_checks WHERE state = 'pending'",
        )
        .fetch_one(&self.read)
        .await?;
        Ok(row.try_get("due")?)
    }

    /// Record a finished check's results. Returns false when it was not pending any more
    /// (another instance finished it).
    pub(crate) async fn finish_check(
        &self,
        tx: &mut Tx,
        session_id: &str,
        results: &CheckResults,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let json = serde_json::to_string(results).map_err(|e| corrupt("check results", e))?;
        let p = |i| self.backend.param(i);
        let sql = format!(
            "UPDATE session_checks SET state = 'done', results = {}, checked_at = {}, attempts = attempts + 1 \
             WHERE session_id = {} AND state = 'pending'",
            p(1),
            p(2),
            p(3)
        );
        let done = sqlx::query(&sql)
            .bind(json)
            .bind(now_ms)
            .bind(session_id)
            .execute(&mut **tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Try a check again at `next_at_ms` (Stripe could not be asked).
    pub(crate) async fn postpone_check(
        &self,
        session_id: &str,
        next_at_ms: i64,
    ) -> Result<(), StoreError> {
        let p = |i| self.backend.param(i);
        let sql = format!(
            "UPDATE session_checks SET attempts = attempts + 1, next_attempt_at = {} \
             WHERE session_id = {} AND state = 'pending'",
            p(1),
            p(2)
        );
        sqlx::query(&sql)
            .bind(next_at_ms)
            .bind(session_id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Every check of a user's sessions, newest request first.
    pub async fn checks_of_user(&self, user_ref: &str) -> Result<Vec<CheckRow>, StoreError> {
        let sql = format!(
            "SELECT session_id, state, results, checked_at FROM session_checks WHERE user_ref = {} \
             ORDER BY requested_at DESC, session_id",
            self.backend.param(1)
        );
        let rows = sqlx::query(&sql)
            .bind(user_ref)
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                let text: Option<String> = r.try_get("results")?;
                Ok(CheckRow {
                    session: r.try_get("session_id")?,
                    state: r.try_get("state")?,
                    results: text
                        .map(|t| serde_json::from_str(&t).map_err(|e| corrupt("check results", e)))
                        .transpose()?,
                    checked_at_ms: r.try_get("checked_at")?,
                })
            })
            .collect()
    }
}
