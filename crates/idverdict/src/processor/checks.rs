//! Checks of verified sessions against what was expected of them. The user step queues a
//! check (a `session_checks` row) when a user's verified session must be compared before it
//! counts; here, for each due check, the verified outputs are retrieved from Stripe OUTSIDE
//! any transaction (`expand[]=verified_outputs`, the report for the document's issuing
//! country, and `verified_outputs.dob` only when a rule needs it and the key is a restricted
//! `rk_` key, as Stripe requires), `decide::expectations::compare` turns them into per-field
//! results, and one transaction stores only those results and recomputes the user (with the
//! decision's reactions). The values themselves live in memory for the comparison and are
//! never stored or logged.
//!
//! Stripe unreachable or failing (5xx): the check waits and is tried again (backoff up to an
//! hour). A session Stripe does not know (404) or will not show (another 4xx): every field is
//! `unavailable`, and the policy says what that leads to.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use stripe_webhook::VerificationSession;

use super::users::{update_users, BatchChanges};
use crate::decide::expectations::{
    compare, fields_to_check, Date, DigestKey, Field, VerifiedPerson,
};
use crate::decide::Policy;
use crate::react::ReactConfig;
use crate::store::{DueCheck, Store, StoreError};
use crate::stripe_api::{StripeApiError, StripeClient};

/// Checks handled per round.
const ROUND: i64 = 8;
/// The longest wait between two tries of one check.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// What the checker needs besides the store.
pub(super) struct Checker<'a> {
    pub store: &'a Store,
    pub stripe: Option<&'a StripeClient>,
    pub key: Option<&'a DigestKey>,
    pub policy: &'a Policy,
    pub react: &'a ReactConfig,
}

impl Checker<'_> {
    /// Handle the checks that are due. Returns how many were finished.
    pub async fn run_due(&self, now_ms: i64) -> Result<usize, StoreError> {
        let due = self.store.due_checks(now_ms, ROUND).await?;
        let mut finished = 0;
        for check in due {
            if self.run_one(&check, now_ms).await? {
                finished += 1;
            }
        }
        Ok(finished)
    }

    async fn run_one(&self, check: &DueCheck, now_ms: i64) -> Result<bool, StoreError> {
        let expected = self.store.expectations_of(&check.user_ref).await?;
        let fields = fields_to_check(expected.as_ref(), &self.policy.expectations);
        let person = match self.stripe {
            // No API key: nothing can be retrieved, every field is unavailable.
            None => VerifiedPerson::default(),
            Some(client) => match verified_person(client, &check.session_id, &fields).await {
                Ok(person) => person,
                Err(error) if is_transient(&error) => {
                    let wait = backoff(check.attempts);
                    tracing::warn!(session = %check.session_id, %error, retry_in_s = wait.as_secs(), "could not retrieve verified outputs; will retry");
                    let next =
                        now_ms.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
                    self.store.postpone_check(&check.session_id, next).await?;
                    return Ok(false);
                }
                Err(error) => {
                    tracing::warn!(session = %check.session_id, %error, "Stripe refused the verified outputs; every field is unavailable");
                    VerifiedPerson::default()
                }
            },
        };
        let Some(today) = Date::from_unix(now_ms / 1000) else {
            return Ok(false);
        };
        let results = compare(
            expected.as_ref(),
            &self.policy.expectations,
            &person,
            self.key,
            today,
        );
        drop(person);

        let mut tx = self.store.begin().await?;
        if !self
            .store
            .finish_check(&mut tx, &check.session_id, &results, now_ms)
            .await?
        {
            return Ok(false);
        }
        let records = self
            .store
            .load_sessions(&mut tx, &[check.session_id.as_str()])
            .await?;
        let changed: Vec<_> = records.values().collect();
        let decisions = update_users(
            self.store,
            &mut tx,
            self.policy,
            self.react,
            &BatchChanges {
                changed: &changed,
                newly_redacted: &[],
                provided_emails: &HashMap::new(),
            },
            now_ms,
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        crate::metrics::decisions_made(&decisions);
        tracing::info!(session = %check.session_id, fields = results.len(), "verified outputs checked against expectations");
        Ok(true)
    }
}

/// 5 s, doubling per attempt, at most an hour.
fn backoff(attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    Duration::from_secs(5)
        .saturating_mul(2u32.saturating_pow(exp))
        .min(MAX_BACKOFF)
}

/// Worth trying again later: no answer, rate limited, or Stripe's own trouble.
fn is_transient(error: &StripeApiError) -> bool {
    match error {
        StripeApiError::Transport(_) => true,
        other => other.status().is_some_and(|s| s == 429 || s >= 500),
    }
}

/// Retrieve what Stripe verified of a session, with the expansions the fields need.
async fn verified_person(
    client: &StripeClient,
    session_id: &str,
    fields: &[Field],
) -> Result<VerifiedPerson, StripeApiError> {
    let mut expand = vec!["verified_outputs", "last_verification_report"];
    let wants_dob = fields.iter().any(|f| f.needs_dob()) && client.has_restricted_key();
    if wants_dob {
        expand.push("verified_outputs.dob");
    }
    let session = match client
        .retrieve_verification_session(session_id, &expand)
        .await
    {
        // A restricted key without the permission for sensitive results (or past Stripe's
        // 48-hour window): the rest is still worth comparing.
        Err(e) if wants_dob && e.status() == Some(403) => {
            expand.pop();
            client
                .retrieve_verification_session(session_id, &expand)
                .await?
        }
        other => other?,
    };
    Ok(person_of(&session))
}

/// The verified person of a retrieved session (nothing of a redacted one).
fn person_of(session: &VerificationSession) -> VerifiedPerson {
    if session.redaction.is_some() {
        return VerifiedPerson::default();
    }
    let outputs = session.verified_outputs.as_ref();
    let text = |key: &str| {
        outputs
            .and_then(|o| o.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let dob = outputs.and_then(|o| o.get("dob")).and_then(|d| {
        let part = |k: &str| d.get(k).and_then(Value::as_i64);
        Some(Date {
            day: u8::try_from(part("day")?).ok()?,
            month: u8::try_from(part("month")?).ok()?,
            year: i32::try_from(part("year")?).ok()?,
        })
    });
    let issuing_country = match &session.last_verification_report {
        Some(stripe_webhook::ReportRef::Expanded(report)) => report
            .get("document")
            .and_then(|d| d.get("issuing_country"))
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    };
    VerifiedPerson {
        first_name: text("first_name"),
        last_name: text("last_name"),
        dob,
        email: text("email"),
        phone: text("phone"),
        issuing_country,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff(0), Duration::from_secs(5));
        assert_eq!(backoff(3), Duration::from_secs(40));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[test]
    fn the_person_is_read_from_outputs_and_report_and_never_from_a_redacted_session() {
        let session: VerificationSession = serde_json::from_value(serde_json::json!({
            "id": "vs_1", "object": "identity.verification_session", "created": 1,
            "livemode": false, "status": "verified",
            "verified_outputs": {"first_name": "Jane", "last_name": "Doe", "email": null,
                "dob": {"day": 2, "month": 7, "year": 1990}},
            "last_verification_report": {"id": "vr_1", "document": {"issuing_country": "FR"}},
        }))
        .unwrap();
        let p = person_of(&session);
        assert_eq!(p.first_name.as_deref(), Some("Jane"));
        assert_eq!(p.email, None);
        assert_eq!(
            p.dob,
            Some(Date {
                day: 2,
                month: 7,
                year: 1990
            })
        );
        assert_eq!(p.issuing_country.as_deref(), Some("FR"));
        let mut redacted = session.clone();
        redacted.redaction =
            serde_json::from_value(serde_json::json!({"status": "redacted"})).unwrap();
        assert_eq!(person_of(&redacted), VerifiedPerson::default());
    }
}
