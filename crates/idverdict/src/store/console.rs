//! The operator console's tables: `operators`, `console_sessions`, `login_throttle`,
//! `review_claims`, `case_notes`, `audit_log` (append-only: no statement here changes or
//! deletes a row, and triggers refuse it) and `webhook_stats`, plus the listings and counts the
//! console's pages read.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::users::{user_from_row, USER_COLUMNS};
use super::{Backend, Store, StoreError};
use crate::decide::access::{LoginThrottle, Role};
use crate::decide::{UserRecord, UserState};

/// An operator account.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Operator {
    pub id: i64,
    pub email: String,
    pub role: Role,
    #[serde(skip)]
    pub password_hash: String,
    pub disabled: bool,
    pub created_at_ms: i64,
}

/// A live console session with its operator.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    /// SHA-256 of the cookie's token (the key of the row).
    pub token_hash: String,
    pub operator: Operator,
    pub csrf_token: String,
    pub created_at_ms: i64,
    pub last_seen_at_ms: i64,
    pub expires_at_ms: i64,
}

/// One audit entry to append.
#[derive(Debug, Clone, Default)]
pub struct NewAudit<'a> {
    pub operator: Option<&'a str>,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub client_addr: Option<&'a str>,
}

/// One audit entry.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditRow {
    pub seq: i64,
    pub at_ms: i64,
    pub operator: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub reason: Option<String>,
    pub client_addr: Option<String>,
}

/// A reviewer's lease on a case.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClaimRow {
    pub user_ref: String,
    pub operator_id: i64,
    pub operator_email: String,
    pub claimed_at_ms: i64,
    pub expires_at_ms: i64,
}

/// What claiming one case did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The case is now (or was already) the caller's until this time.
    Claimed { expires_at_ms: i64 },
    /// Someone else holds it.
    HeldBy { email: String, expires_at_ms: i64 },
    /// The user is not waiting for review.
    NotInReview,
}

/// A note on a case.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NoteRow {
    pub id: i64,
    pub user_ref: String,
    pub operator: String,
    pub at_ms: i64,
    pub body: String,
}

/// Which users to list, in `user_ref` order.
#[derive(Debug, Clone, Default)]
pub struct UserFilter<'a> {
    pub state: Option<UserState>,
    /// `client_reference_id` starts with this.
    pub prefix: Option<&'a str>,
    /// After this `user_ref` (the cursor).
    pub starting_after: Option<&'a str>,
    pub limit: i64,
}

const OPERATOR_COLUMNS: &str =
    "o.id, o.email, o.role, o.password_hash, o.disabled_at, o.created_at";

fn operator_from_row(r: &AnyRow) -> Result<Operator, StoreError> {
    let role: String = r.try_get("role")?;
    let disabled_at: Option<i64> = r.try_get("disabled_at")?;
    Ok(Operator {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown operator role `{role}`")))?,
        password_hash: r.try_get("password_hash")?,
        disabled: disabled_at.is_some(),
        created_at_ms: r.try_get("created_at")?,
    })
}

fn claim_from_row(r: &AnyRow) -> Result<ClaimRow, sqlx::Error> {
    Ok(ClaimRow {
        user_ref: r.try_get("user_ref")?,
        operator_id: r.try_get("operator_id")?,
        operator_email: r.try_get("operator_email")?,
        claimed_at_ms: r.try_get("claimed_at")?,
        expires_at_ms: r.try_get("expires_at")?,
    })
}

/// One change to an operator's row.
enum OperatorChange<'a> {
    DisabledAt(Option<i64>),
    PasswordHash(&'a str),
}

/// `$1, $2, …` or `?, ?, …` for one statement.
fn params(b: Backend, n: usize) -> Vec<String> {
    (1..=n).map(|i| b.param(i)).collect()
}

impl Store {
    // ------------------------------------------------------------------ operators

    /// Add an operator; `None` when the email is taken.
    pub async fn insert_operator(
        &self,
        email: &str,
        role: Role,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let p = params(self.backend, 5);
        let sql = format!(
            "INSERT INTO operators (email, role, password_hash, created_at, updated_at) VALUES ({}, {}, {}, {}, {}) \
             ON CONFLICT (email) DO NOTHING RETURNING id",
            p[0], p[1], p[2], p[3], p[4]
        );
        let row = sqlx::query(&sql)
            .bind(email)
            .bind(role.as_str())
            .bind(password_hash)
            .bind(now_ms)
            .bind(now_ms)
            .fetch_optional(&self.write)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("id")?),
            None => None,
        })
    }

    pub async fn operator_by_email(&self, email: &str) -> Result<Option<Operator>, StoreError> {
        let sql = format!(
            "SELECT {OPERATOR_COLUMNS} FROM operators o WHERE o.email = {}",
            self.backend.param(1)
        );
        let row = sqlx::query(&sql)
            .bind(email)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(operator_from_row).transpose()
    }

    pub async fn list_operators(&self) -> Result<Vec<Operator>, StoreError> {
        let sql = format!("SELECT {OPERATOR_COLUMNS} FROM operators o ORDER BY o.email");
        let rows = sqlx::query(&sql).fetch_all(&self.read).await?;
        rows.iter().map(operator_from_row).collect()
    }

    /// Disable (or enable) an operator; disabling ends their sessions. False if unknown.
    pub async fn set_operator_disabled(
        &self,
        email: &str,
        disabled: bool,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let change = OperatorChange::DisabledAt(disabled.then_some(now_ms));
        self.change_operator(email, change, disabled, now_ms).await
    }

    /// Replace an operator's password hash; every session of theirs ends. False if unknown.
    pub async fn set_operator_password(
        &self,
        email: &str,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let change = OperatorChange::PasswordHash(password_hash);
        self.change_operator(email, change, true, now_ms).await
    }

    async fn change_operator(
        &self,
        email: &str,
        change: OperatorChange<'_>,
        end_sessions: bool,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let p = params(self.backend, 3);
        let column = match change {
            OperatorChange::DisabledAt(_) => "disabled_at",
            OperatorChange::PasswordHash(_) => "password_hash",
        };
        let sql = format!(
            "UPDATE operators SET {column} = {}, updated_at = {} WHERE email = {}",
            p[0], p[1], p[2]
        );
        let query = match change {
            OperatorChange::DisabledAt(at) => sqlx::query(&sql).bind(at),
            OperatorChange::PasswordHash(hash) => sqlx::query(&sql).bind(hash),
        };
        let mut tx = self.begin().await?;
        let done = query.bind(now_ms).bind(email).execute(&mut *tx).await?;
        if end_sessions {
            end_sessions_of(self.backend, &mut tx, email).await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    // ------------------------------------------------------------------ sessions

    pub async fn insert_console_session(
        &self,
        token_hash: &str,
        operator_id: i64,
        csrf_token: &str,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        let p = params(self.backend, 6);
        let sql = format!(
            "INSERT INTO console_sessions (token_hash, operator_id, csrf_token, created_at, last_seen_at, expires_at) \
             VALUES ({}, {}, {}, {}, {}, {})",
            p[0], p[1], p[2], p[3], p[4], p[5]
        );
        sqlx::query(&sql)
            .bind(token_hash)
            .bind(operator_id)
            .bind(csrf_token)
            .bind(now_ms)
            .bind(now_ms)
            .bind(expires_at_ms)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// The session with this token hash and its operator (expired or not: the caller judges).
    pub async fn console_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        let sql = format!(
            "SELECT {OPERATOR_COLUMNS}, s.csrf_token, s.created_at AS s_created, s.last_seen_at, s.expires_at \
             FROM console_sessions s JOIN operators o ON o.id = s.operator_id WHERE s.token_hash = {}",
            self.backend.param(1)
        );
        let Some(r) = sqlx::query(&sql)
            .bind(token_hash)
            .fetch_optional(&self.read)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(ConsoleSession {
            token_hash: token_hash.to_string(),
            operator: operator_from_row(&r)?,
            csrf_token: r.try_get("csrf_token")?,
            created_at_ms: r.try_get("s_created")?,
            last_seen_at_ms: r.try_get("last_seen_at")?,
            expires_at_ms: r.try_get("expires_at")?,
        }))
    }

    pub async fn touch_console_session(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let p = params(self.backend, 2);
        let sql = format!(
            "UPDATE console_sessions SET last_seen_at = {} WHERE token_hash = {}",
            p[0], p[1]
        );
        sqlx::query(&sql)
            .bind(now_ms)
            .bind(token_hash)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    pub async fn delete_console_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let sql = format!(
            "DELETE FROM console_sessions WHERE token_hash = {}",
            self.backend.param(1)
        );
        sqlx::query(&sql)
            .bind(token_hash)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Forget sessions past their absolute expiry or idle since `idle_before_ms`.
    pub async fn delete_stale_console_sessions(
        &self,
        now_ms: i64,
        idle_before_ms: i64,
    ) -> Result<u64, StoreError> {
        let p = params(self.backend, 2);
        let sql = format!(
            "DELETE FROM console_sessions WHERE expires_at <= {} OR last_seen_at <= {}",
            p[0], p[1]
        );
        let done = sqlx::query(&sql)
            .bind(now_ms)
            .bind(idle_before_ms)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected())
    }

    // ------------------------------------------------------------------ login throttle

    pub async fn login_throttle(&self, key: &str) -> Result<LoginThrottle, StoreError> {
        let sql = format!(
            "SELECT failures, first_failure_at, next_allowed_at, locked_until FROM login_throttle WHERE key = {}",
            self.backend.param(1)
        );
        let Some(r) = sqlx::query(&sql)
            .bind(key)
            .fetch_optional(&self.read)
            .await?
        else {
            return Ok(LoginThrottle::default());
        };
        let failures: i64 = r.try_get("failures")?;
        Ok(LoginThrottle {
            failures: u32::try_from(failures).unwrap_or(u32::MAX),
            first_failure_at_ms: r.try_get("first_failure_at")?,
            next_allowed_at_ms: r.try_get("next_allowed_at")?,
            locked_until_ms: r.try_get("locked_until")?,
        })
    }

    pub async fn put_login_throttle(&self, key: &str, t: &LoginThrottle) -> Result<(), StoreError> {
        let p = params(self.backend, 5);
        let sql = format!(
            "INSERT INTO login_throttle (key, failures, first_failure_at, next_allowed_at, locked_until) \
             VALUES ({}, {}, {}, {}, {}) ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, \
             first_failure_at = excluded.first_failure_at, next_allowed_at = excluded.next_allowed_at, \
             locked_until = excluded.locked_until",
            p[0], p[1], p[2], p[3], p[4]
        );
        sqlx::query(&sql)
            .bind(key)
            .bind(i64::from(t.failures))
            .bind(t.first_failure_at_ms)
            .bind(t.next_allowed_at_ms)
            .bind(t.locked_until_ms)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    pub async fn clear_login_throttle(&self, key: &str) -> Result<(), StoreError> {
        let sql = format!(
            "DELETE FROM login_throttle WHERE key = {}",
            self.backend.param(1)
        );
        sqlx::query(&sql).bind(key).execute(&self.write).await?;
        Ok(())
    }

    // ------------------------------------------------------------------ review claims

    /// Lease the oldest unclaimed case in review to this operator, or hand back the one they
    /// already hold. Two reviewers asking at once get different cases: on PostgreSQL the
    /// candidate user row is taken `FOR UPDATE SKIP LOCKED` (another instance's candidate is
    /// skipped, not waited for) and the lease is written only over a free or expired claim;
    /// on SQLite the single writer runs the whole transaction alone.
    pub async fn claim_next_case(
        &self,
        operator_id: i64,
        operator_email: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        let b = self.backend;
        let mut tx = self.begin().await?;
        let p = params(b, 3);
        let mine = format!(
            "SELECT c.user_ref FROM review_claims c JOIN users u ON u.user_ref = c.user_ref \
             WHERE c.operator_id = {} AND c.expires_at > {} AND u.state = {} ORDER BY c.claimed_at LIMIT 1",
            p[0], p[1], p[2]
        );
        if let Some(r) = sqlx::query(&mine)
            .bind(operator_id)
            .bind(now_ms)
            .bind(UserState::NeedsReview.as_str())
            .fetch_optional(&mut *tx)
            .await?
        {
            let user_ref: String = r.try_get("user_ref")?;
            tx.commit().await?;
            return Ok(Some(user_ref));
        }
        let lock = match b {
            Backend::Postgres => " FOR UPDATE OF u SKIP LOCKED",
            Backend::Sqlite => "",
        };
        // One candidate at a time: `FOR UPDATE` locks every row a query returns, so a longer
        // list would hold back cases another reviewer could take.
        let candidate = format!(
            "SELECT u.user_ref FROM users u LEFT JOIN review_claims c ON c.user_ref = u.user_ref AND c.expires_at > {} \
             WHERE u.state = {} AND c.user_ref IS NULL ORDER BY u.state_since, u.user_ref LIMIT 1{lock}",
            p[0], p[1]
        );
        // A candidate whose claim another reviewer committed just now is refused by the
        // conditional upsert; the next query sees that claim and moves on.
        for _ in 0..8 {
            let Some(r) = sqlx::query(&candidate)
                .bind(now_ms)
                .bind(UserState::NeedsReview.as_str())
                .fetch_optional(&mut *tx)
                .await?
            else {
                break;
            };
            let user_ref: String = r.try_get("user_ref")?;
            if upsert_claim(
                b,
                &mut tx,
                &user_ref,
                operator_id,
                operator_email,
                now_ms,
                lease_ms,
            )
            .await?
            {
                tx.commit().await?;
                return Ok(Some(user_ref));
            }
        }
        tx.commit().await?;
        Ok(None)
    }

    /// Lease one case (or renew the caller's lease on it).
    pub async fn claim_case(
        &self,
        user_ref: &str,
        operator_id: i64,
        operator_email: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        let b = self.backend;
        let mut tx = self.begin().await?;
        let Some(user) = self.get_user_in(&mut tx, user_ref).await? else {
            return Ok(ClaimOutcome::NotInReview);
        };
        if user.view.state != UserState::NeedsReview {
            return Ok(ClaimOutcome::NotInReview);
        }
        if upsert_claim(
            b,
            &mut tx,
            user_ref,
            operator_id,
            operator_email,
            now_ms,
            lease_ms,
        )
        .await?
        {
            tx.commit().await?;
            return Ok(ClaimOutcome::Claimed {
                expires_at_ms: now_ms + lease_ms,
            });
        }
        let held = claim_in(b, &mut tx, user_ref).await?;
        tx.commit().await?;
        Ok(match held {
            Some(c) => ClaimOutcome::HeldBy {
                email: c.operator_email,
                expires_at_ms: c.expires_at_ms,
            },
            None => ClaimOutcome::NotInReview,
        })
    }

    /// Give a case back. `any_holder`: release whoever holds it (an admin, or a decision).
    pub async fn release_case(
        &self,
        user_ref: &str,
        operator_id: i64,
        any_holder: bool,
    ) -> Result<bool, StoreError> {
        let p = params(self.backend, 2);
        let sql = if any_holder {
            format!("DELETE FROM review_claims WHERE user_ref = {}", p[0])
        } else {
            format!(
                "DELETE FROM review_claims WHERE user_ref = {} AND operator_id = {}",
                p[0], p[1]
            )
        };
        let mut q = sqlx::query(&sql).bind(user_ref);
        if !any_holder {
            q = q.bind(operator_id);
        }
        Ok(q.execute(&self.write).await?.rows_affected() > 0)
    }

    /// The live claim on a case, if any.
    pub async fn claim_on(
        &self,
        user_ref: &str,
        now_ms: i64,
    ) -> Result<Option<ClaimRow>, StoreError> {
        let p = params(self.backend, 2);
        let sql = format!(
            "SELECT user_ref, operator_id, operator_email, claimed_at, expires_at FROM review_claims \
             WHERE user_ref = {} AND expires_at > {}",
            p[0], p[1]
        );
        let row = sqlx::query(&sql)
            .bind(user_ref)
            .bind(now_ms)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.as_ref().map(claim_from_row).transpose()?)
    }

    /// Every live claim (the queue shows who holds what).
    pub async fn live_claims(&self, now_ms: i64) -> Result<Vec<ClaimRow>, StoreError> {
        let sql = format!(
            "SELECT user_ref, operator_id, operator_email, claimed_at, expires_at FROM review_claims \
             WHERE expires_at > {}",
            self.backend.param(1)
        );
        let rows = sqlx::query(&sql).bind(now_ms).fetch_all(&self.read).await?;
        Ok(rows.iter().map(claim_from_row).collect::<Result<_, _>>()?)
    }

    // ------------------------------------------------------------------ notes

    pub async fn add_case_note(
        &self,
        user_ref: &str,
        operator: &str,
        body: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let p = params(self.backend, 4);
        let sql = format!(
            "INSERT INTO case_notes (user_ref, operator, at, body) VALUES ({}, {}, {}, {})",
            p[0], p[1], p[2], p[3]
        );
        sqlx::query(&sql)
            .bind(user_ref)
            .bind(operator)
            .bind(now_ms)
            .bind(body)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    pub async fn case_notes(&self, user_ref: &str) -> Result<Vec<NoteRow>, StoreError> {
        let sql = format!(
            "SELECT id, user_ref, operator, at, body FROM case_notes WHERE user_ref = {} ORDER BY at, id",
            self.backend.param(1)
        );
        let rows = sqlx::query(&sql)
            .bind(user_ref)
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(NoteRow {
                    id: r.try_get("id")?,
                    user_ref: r.try_get("user_ref")?,
                    operator: r.try_get("operator")?,
                    at_ms: r.try_get("at")?,
                    body: r.try_get("body")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    // ------------------------------------------------------------------ audit log

    /// Append one entry (the only write the audit log ever gets).
    pub async fn append_audit(&self, entry: &NewAudit<'_>, now_ms: i64) -> Result<(), StoreError> {
        let p = params(self.backend, 6);
        let sql = format!(
            "INSERT INTO audit_log (at, operator, action, target, reason, client_addr) VALUES ({}, {}, {}, {}, {}, {})",
            p[0], p[1], p[2], p[3], p[4], p[5]
        );
        sqlx::query(&sql)
            .bind(now_ms)
            .bind(entry.operator)
            .bind(entry.action)
            .bind(entry.target)
            .bind(entry.reason)
            .bind(entry.client_addr)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Entries newest first, before `before_seq` (a cursor), optionally about one target.
    pub async fn audit_page(
        &self,
        before_seq: Option<i64>,
        target: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let b = self.backend;
        let mut clauses = Vec::new();
        let mut n = 0;
        let mut next = || {
            n += 1;
            b.param(n)
        };
        if before_seq.is_some() {
            clauses.push(format!("seq < {}", next()));
        }
        if target.is_some() {
            clauses.push(format!("target = {}", next()));
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "SELECT seq, at, operator, action, target, reason, client_addr FROM audit_log {filter} \
             ORDER BY seq DESC LIMIT {}",
            next()
        );
        let mut q = sqlx::query(&sql);
        if let Some(s) = before_seq {
            q = q.bind(s);
        }
        if let Some(t) = target {
            q = q.bind(t);
        }
        let rows = q.bind(limit).fetch_all(&self.read).await?;
        rows.iter().map(audit_from_row).collect()
    }

    /// Entries at or after `since_ms`, oldest first, after `after_seq` (for exporting in pages).
    pub async fn audit_since(
        &self,
        since_ms: i64,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let p = params(self.backend, 3);
        let sql = format!(
            "SELECT seq, at, operator, action, target, reason, client_addr FROM audit_log \
             WHERE at >= {} AND seq > {} ORDER BY seq LIMIT {}",
            p[0], p[1], p[2]
        );
        let rows = sqlx::query(&sql)
            .bind(since_ms)
            .bind(after_seq)
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(audit_from_row).collect()
    }

    // ------------------------------------------------------------------ webhook counts

    /// Add counts to their hourly buckets (one statement for all of them).
    pub async fn add_webhook_stats(&self, counts: &[(i64, String, i64)]) -> Result<(), StoreError> {
        if counts.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "INSERT INTO webhook_stats (hour, outcome, count) VALUES {} \
             ON CONFLICT (hour, outcome) DO UPDATE SET count = webhook_stats.count + excluded.count",
            super::apply::values(self.backend, counts.len(), 3)
        );
        let mut q = sqlx::query(&sql);
        for (hour, outcome, count) in counts {
            q = q.bind(*hour).bind(outcome.clone()).bind(*count);
        }
        q.execute(&self.write).await?;
        Ok(())
    }

    /// Counts per outcome over the hours starting at or after `since_hour`.
    pub async fn webhook_stats_since(
        &self,
        since_hour: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let sql = format!(
            "SELECT outcome, CAST(SUM(count) AS BIGINT) AS n FROM webhook_stats WHERE hour >= {} GROUP BY outcome ORDER BY outcome",
            self.backend.param(1)
        );
        let rows = sqlx::query(&sql)
            .bind(since_hour)
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("outcome")?, r.try_get("n")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    // ------------------------------------------------------------------ pages' reads

    /// Users in `user_ref` order, after the cursor, by state and/or `client_reference_id`
    /// prefix.
    pub async fn list_users(&self, f: &UserFilter<'_>) -> Result<Vec<UserRecord>, StoreError> {
        let b = self.backend;
        let mut clauses = Vec::new();
        let mut n = 0;
        let mut next = || {
            n += 1;
            b.param(n)
        };
        if f.state.is_some() {
            clauses.push(format!("state = {}", next()));
        }
        if f.prefix.is_some() {
            // substr compares characters the same way on both backends (LIKE does not: it
            // ignores ASCII case on SQLite).
            let (a, c) = (next(), next());
            clauses.push(format!("substr(user_ref, 1, {a}) = {c}"));
        }
        if f.starting_after.is_some() {
            clauses.push(format!("user_ref > {}", next()));
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users {filter} ORDER BY user_ref LIMIT {}",
            next()
        );
        let mut q = sqlx::query(&sql);
        if let Some(s) = f.state {
            q = q.bind(s.as_str());
        }
        if let Some(p) = f.prefix {
            q = q.bind(p.chars().count() as i64).bind(p);
        }
        if let Some(a) = f.starting_after {
            q = q.bind(a);
        }
        let rows = q.bind(f.limit).fetch_all(&self.read).await?;
        rows.iter().map(user_from_row).collect()
    }

    /// The review queue, oldest first, optionally only users sent there by one error code.
    pub async fn review_queue_by_reason(
        &self,
        reason: Option<&str>,
        limit: i64,
    ) -> Result<Vec<UserRecord>, StoreError> {
        let p = params(self.backend, 3);
        let (filter, limit_param) = match reason {
            Some(_) => (format!(" AND error_code = {}", p[1]), &p[2]),
            None => (String::new(), &p[1]),
        };
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE state = {}{filter} ORDER BY state_since, user_ref LIMIT {limit_param}",
            p[0]
        );
        let mut q = sqlx::query(&sql).bind(UserState::NeedsReview.as_str());
        if let Some(r) = reason {
            q = q.bind(r);
        }
        let rows = q.bind(limit).fetch_all(&self.read).await?;
        rows.iter().map(user_from_row).collect()
    }

    /// How many users are in each state (each count answered by the `(state, state_since)`
    /// index, not a scan of the table).
    pub async fn users_per_state(&self) -> Result<Vec<(UserState, i64)>, StoreError> {
        let sql = format!(
            "SELECT COUNT(*) AS n FROM users WHERE state = {}",
            self.backend.param(1)
        );
        let mut out = Vec::new();
        for state in UserState::ALL {
            let r = sqlx::query(&sql)
                .bind(state.as_str())
                .fetch_one(&self.read)
                .await?;
            out.push((state, r.try_get("n")?));
        }
        Ok(out)
    }

    /// The review queue's length and when its oldest case entered it.
    pub async fn review_queue_summary(&self) -> Result<(i64, Option<i64>), StoreError> {
        let sql = format!(
            "SELECT COUNT(*) AS n, MIN(state_since) AS oldest FROM users WHERE state = {}",
            self.backend.param(1)
        );
        let r = sqlx::query(&sql)
            .bind(UserState::NeedsReview.as_str())
            .fetch_one(&self.read)
            .await?;
        Ok((r.try_get("n")?, r.try_get("oldest")?))
    }

    /// Events waiting for the processor and when the oldest of them arrived (from the
    /// partial index of unprocessed events).
    pub async fn processor_backlog(&self) -> Result<(i64, Option<i64>), StoreError> {
        let r = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(received_at) AS oldest FROM events WHERE processed_at IS NULL AND quarantined_at IS NULL",
        )
        .fetch_one(&self.read)
        .await?;
        Ok((r.try_get("n")?, r.try_get("oldest")?))
    }

    /// Reactions per state created at or after `since_ms` (the `(state, created_at)` index),
    /// and how many pending ones have failed at least once.
    pub async fn reaction_counts_since(
        &self,
        since_ms: i64,
    ) -> Result<(Vec<(String, i64)>, i64), StoreError> {
        let p = params(self.backend, 2);
        let sql = format!(
            "SELECT COUNT(*) AS n FROM reactions WHERE state = {} AND created_at >= {}",
            p[0], p[1]
        );
        let mut out = Vec::new();
        for state in ["pending", "sending", "delivered", "exhausted", "canceled"] {
            let r = sqlx::query(&sql)
                .bind(state)
                .bind(since_ms)
                .fetch_one(&self.read)
                .await?;
            out.push((state.to_string(), r.try_get("n")?));
        }
        let failing = format!(
            "SELECT COUNT(*) AS n FROM reactions WHERE state = 'pending' AND created_at >= {} AND attempts > 0",
            self.backend.param(1)
        );
        let r = sqlx::query(&failing)
            .bind(since_ms)
            .fetch_one(&self.read)
            .await?;
        Ok((out, r.try_get("n")?))
    }

    async fn get_user_in(
        &self,
        tx: &mut super::Tx,
        user_ref: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE user_ref = {}{lock}",
            self.backend.param(1)
        );
        let row = sqlx::query(&sql)
            .bind(user_ref)
            .fetch_optional(&mut **tx)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }
}

fn audit_from_row(r: &AnyRow) -> Result<AuditRow, StoreError> {
    Ok(AuditRow {
        seq: r.try_get("seq")?,
        at_ms: r.try_get("at")?,
        operator: r.try_get("operator")?,
        action: r.try_get("action")?,
        target: r.try_get("target")?,
        reason: r.try_get("reason")?,
        client_addr: r.try_get("client_addr")?,
    })
}

/// Write the lease unless someone else holds a live one. True when the caller holds it now.
async fn upsert_claim(
    b: Backend,
    tx: &mut super::Tx,
    user_ref: &str,
    operator_id: i64,
    operator_email: &str,
    now_ms: i64,
    lease_ms: i64,
) -> Result<bool, StoreError> {
    let p = params(b, 7);
    let sql = format!(
        "INSERT INTO review_claims (user_ref, operator_id, operator_email, claimed_at, expires_at) \
         VALUES ({}, {}, {}, {}, {}) ON CONFLICT (user_ref) DO UPDATE SET operator_id = excluded.operator_id, \
         operator_email = excluded.operator_email, claimed_at = excluded.claimed_at, expires_at = excluded.expires_at \
         WHERE review_claims.expires_at <= {} OR review_claims.operator_id = {}",
        p[0], p[1], p[2], p[3], p[4], p[5], p[6]
    );
    let done = sqlx::query(&sql)
        .bind(user_ref)
        .bind(operator_id)
        .bind(operator_email)
        .bind(now_ms)
        .bind(now_ms + lease_ms)
        .bind(now_ms)
        .bind(operator_id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

async fn claim_in(
    b: Backend,
    tx: &mut super::Tx,
    user_ref: &str,
) -> Result<Option<ClaimRow>, StoreError> {
    let sql = format!(
        "SELECT user_ref, operator_id, operator_email, claimed_at, expires_at FROM review_claims WHERE user_ref = {}",
        b.param(1)
    );
    let row = sqlx::query(&sql)
        .bind(user_ref)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.as_ref().map(claim_from_row).transpose()?)
}

async fn end_sessions_of(b: Backend, tx: &mut super::Tx, email: &str) -> Result<(), StoreError> {
    let sql = format!(
        "DELETE FROM console_sessions WHERE operator_id IN (SELECT id FROM operators WHERE email = {})",
        b.param(1)
    );
    sqlx::query(&sql).bind(email).execute(&mut **tx).await?;
    Ok(())
}
