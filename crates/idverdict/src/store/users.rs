//! The `users` table (the computed per-user state, [`UserRecord`]) and `user_reviews`
//! (every operator decision, with who and when).

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::Row;

use stripe_webhook::ErrorCode;

use super::apply::{list, values, Tx};
use super::sessions::{session_from_row, SESSION_COLUMNS};
use super::{Store, StoreError};
use crate::decide::user::{Review, ReviewAction, UserRecord, UserState, UserView};
use crate::decide::{NextStep, SessionRecord, Why};

/// A review to record.
pub(crate) struct NewReview<'a> {
    pub user_ref: &'a str,
    pub action: ReviewAction,
    pub reviewer: &'a str,
    pub note: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub at_ms: i64,
}

/// One recorded review.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReviewRow {
    pub action: String,
    pub reviewer: String,
    pub note: Option<String>,
    pub session_id: Option<String>,
    pub reviewed_at_ms: i64,
}

pub(super) const USER_COLUMNS: &str =
    "user_ref, state, attempts_used, attempts_allowed, current_session, error_code, next_step, \
     state_since, review_action, review_session, review_attempts, updated_at, why, review_by, \
     review_at";

impl Store {
    pub(crate) async fn load_users(
        &self,
        tx: &mut Tx,
        refs: &[&str],
    ) -> Result<HashMap<String, UserRecord>, StoreError> {
        if refs.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE user_ref IN ({})",
            list(self.backend, refs.len(), 0)
        );
        let mut query = sqlx::query(&sql);
        for r in refs {
            query = query.bind(*r);
        }
        query
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|row| user_from_row(row).map(|u| (u.user_ref.clone(), u)))
            .collect()
    }

    /// Every session of these users.
    pub(crate) async fn load_sessions_of_users(
        &self,
        tx: &mut Tx,
        refs: &[&str],
    ) -> Result<Vec<SessionRecord>, StoreError> {
        if refs.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM verification_sessions WHERE user_ref IN ({})",
            list(self.backend, refs.len(), 0)
        );
        let mut query = sqlx::query(&sql);
        for r in refs {
            query = query.bind(*r);
        }
        query
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(session_from_row)
            .collect()
    }

    pub(crate) async fn save_users(
        &self,
        tx: &mut Tx,
        users: &[&UserRecord],
    ) -> Result<(), StoreError> {
        if users.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "INSERT INTO users ({USER_COLUMNS}) VALUES {} ON CONFLICT (user_ref) DO UPDATE SET \
               state = excluded.state, attempts_used = excluded.attempts_used, attempts_allowed = excluded.attempts_allowed, \
               current_session = excluded.current_session, error_code = excluded.error_code, next_step = excluded.next_step, \
               state_since = excluded.state_since, review_action = excluded.review_action, \
               review_session = excluded.review_session, review_attempts = excluded.review_attempts, updated_at = excluded.updated_at, \
               why = excluded.why, review_by = excluded.review_by, review_at = excluded.review_at",
            values(self.backend, users.len(), 15)
        );
        let mut query = sqlx::query(&sql);
        for u in users {
            query = query
                .bind(u.user_ref.clone())
                .bind(u.view.state.as_str())
                .bind(i64::from(u.view.attempts_used))
                .bind(i64::from(u.view.attempts_allowed))
                .bind(u.view.current_session.clone())
                .bind(u.view.error_code.as_ref().map(|c| c.as_str().to_string()))
                .bind(u.view.next_step.map(NextStep::as_str))
                .bind(u.state_since_ms)
                .bind(u.review.as_ref().map(|r| r.action.as_str()))
                .bind(u.review.as_ref().and_then(|r| r.session_id.clone()))
                .bind(u.review.as_ref().map(|r| i64::from(r.attempts_at_review)))
                .bind(u.updated_at_ms)
                .bind(u.view.why.as_ref().map(why_json))
                .bind(u.review.as_ref().map(|r| r.by.clone()))
                .bind(u.review.as_ref().map(|r| r.at_ms));
        }
        query.execute(&mut **tx).await?;
        Ok(())
    }

    pub(crate) async fn insert_review(
        &self,
        tx: &mut Tx,
        review: &NewReview<'_>,
    ) -> Result<(), StoreError> {
        let p = |i| self.backend.param(i);
        let sql = format!(
            "INSERT INTO user_reviews (user_ref, reviewed_at, action, reviewer, note, session_id) VALUES ({}, {}, {}, {}, {}, {})",
            p(1),
            p(2),
            p(3),
            p(4),
            p(5),
            p(6)
        );
        sqlx::query(&sql)
            .bind(review.user_ref)
            .bind(review.at_ms)
            .bind(review.action.as_str())
            .bind(review.reviewer)
            .bind(review.note)
            .bind(review.session_id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// When the user's latest review was recorded.
    pub(crate) async fn latest_review_at(
        &self,
        tx: &mut Tx,
        user_ref: &str,
    ) -> Result<Option<i64>, StoreError> {
        let sql = format!(
            "SELECT MAX(reviewed_at) AS at FROM user_reviews WHERE user_ref = {}",
            self.backend.param(1)
        );
        let row = sqlx::query(&sql)
            .bind(user_ref)
            .fetch_one(&mut **tx)
            .await?;
        Ok(row.try_get::<Option<i64>, _>("at")?)
    }

    pub async fn get_user(&self, user_ref: &str) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE user_ref = $1");
        let row = sqlx::query(&sql)
            .bind(user_ref)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Users waiting for a person, oldest first.
    pub async fn review_queue(&self, limit: i64) -> Result<Vec<UserRecord>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE state = $1 ORDER BY state_since, user_ref LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(UserState::NeedsReview.as_str())
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(user_from_row).collect()
    }

    pub async fn reviews_of(&self, user_ref: &str) -> Result<Vec<ReviewRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT action, reviewer, note, session_id, reviewed_at FROM user_reviews WHERE user_ref = $1 ORDER BY reviewed_at",
        )
        .bind(user_ref)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ReviewRow {
                    action: r.try_get("action")?,
                    reviewer: r.try_get("reviewer")?,
                    note: r.try_get("note")?,
                    session_id: r.try_get("session_id")?,
                    reviewed_at_ms: r.try_get("reviewed_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}

pub(super) fn user_from_row(r: &AnyRow) -> Result<UserRecord, StoreError> {
    let state: String = r.try_get("state")?;
    let error_code: Option<String> = r.try_get("error_code")?;
    let next_step: Option<String> = r.try_get("next_step")?;
    let review_action: Option<String> = r.try_get("review_action")?;
    let review_attempts: Option<i64> = r.try_get("review_attempts")?;
    let why: Option<String> = r.try_get("why")?;
    let why = why
        .map(|text| {
            serde_json::from_str::<Why>(&text)
                .map_err(|e| StoreError::Corrupt(format!("unreadable user why: {e}")))
        })
        .transpose()?;
    let count = |v: i64| u32::try_from(v).unwrap_or(0);
    Ok(UserRecord {
        user_ref: r.try_get("user_ref")?,
        view: UserView {
            state: UserState::parse(&state)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown user state `{state}`")))?,
            attempts_used: count(r.try_get("attempts_used")?),
            attempts_allowed: count(r.try_get("attempts_allowed")?),
            current_session: r.try_get("current_session")?,
            error_code: error_code.map(ErrorCode::from),
            next_step: next_step.as_deref().and_then(NextStep::parse),
            why,
        },
        state_since_ms: r.try_get("state_since")?,
        review: review_action
            .as_deref()
            .and_then(ReviewAction::parse)
            .map(|action| Review {
                action,
                by: r
                    .try_get::<Option<String>, _>("review_by")
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
                at_ms: r
                    .try_get::<Option<i64>, _>("review_at")
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
                session_id: r.try_get("review_session").ok().flatten(),
                attempts_at_review: count(review_attempts.unwrap_or(0)),
            }),
        updated_at_ms: r.try_get("updated_at")?,
    })
}

/// A why as stored: its JSON (a struct of strings and numbers, which always serializes).
fn why_json(why: &Why) -> String {
    serde_json::to_string(why).unwrap_or_default()
}
