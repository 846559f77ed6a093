//! Session creation: when the app asks for a verification session for a user, hand out the
//! open one again, create a new one, or refuse — from the user's state (reviews included) and
//! what idverdict and Stripe know about the user's sessions.
//!
//! While a session is `requires_input` it is reused: retrieving it yields a fresh
//! `url`/`client_secret` and keeps the failure history in one place. A new session is attempt
//! number n (the user's sessions so far), which the caller turns into an idempotency key so a
//! retried or concurrent request cannot create a second one.

use std::collections::HashMap;

use stripe_webhook::{SessionStatus, VerificationSession};

use super::policy::Policy;
use super::session::{SessionOutcome, SessionRecord};
use super::user::{UserState, UserView};

/// What the creation rule knows about one of the user's sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFacts {
    pub id: String,
    /// Stripe's status: the fresher one when Stripe listed the session.
    pub status: SessionStatus,
    /// idverdict's outcome, once the session's events have been processed.
    pub outcome: Option<SessionOutcome>,
    pub failed_attempts: u32,
    pub created: i64,
}

impl SessionFacts {
    /// idverdict's records merged with Stripe's list: Stripe's status is the fresher one;
    /// outcome and attempts only idverdict knows. Sessions Stripe lists whose events have not
    /// arrived yet are included without an outcome.
    pub fn merge(local: &[SessionRecord], remote: &[VerificationSession]) -> Vec<SessionFacts> {
        let mut by_id: HashMap<&str, SessionFacts> = local
            .iter()
            .map(|r| {
                let facts = SessionFacts {
                    id: r.id.clone(),
                    status: r.status.clone(),
                    outcome: Some(r.outcome),
                    failed_attempts: r.failed_attempts,
                    created: r.session_created,
                };
                (r.id.as_str(), facts)
            })
            .collect();
        for s in remote {
            by_id
                .entry(s.id.as_str())
                .and_modify(|f| f.status = s.status.clone())
                .or_insert_with(|| SessionFacts {
                    id: s.id.clone(),
                    status: s.status.clone(),
                    outcome: None,
                    failed_attempts: 0,
                    created: s.created,
                });
        }
        by_id.into_values().collect()
    }
}

/// Why a user may not start (or resume) a verification now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    UserVerified,
    VerificationInProgress,
    UnderReview,
    UserRejected,
    AlternativeRequired,
    AttemptsExhausted,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::UserVerified => "user_verified",
            Refusal::VerificationInProgress => "verification_in_progress",
            Refusal::UnderReview => "under_review",
            Refusal::UserRejected => "user_rejected",
            Refusal::AlternativeRequired => "alternative_required",
            Refusal::AttemptsExhausted => "attempts_exhausted",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Refusal::UserVerified => "this user is already verified; no new verification is needed",
            Refusal::VerificationInProgress => {
                "a verification of this user is being processed; wait for its outcome"
            }
            Refusal::UnderReview => {
                "this user's verification is waiting for a manual review; a reviewer decides what happens next"
            }
            Refusal::UserRejected => "this user's verification was rejected",
            Refusal::AlternativeRequired => {
                "retrying the document check cannot succeed for this user; offer an alternative verification method"
            }
            Refusal::AttemptsExhausted => {
                "this user has used every allowed verification attempt"
            }
        }
    }
}

/// What to do with a creation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Creation {
    /// Hand out this `requires_input` session again.
    Reuse(String),
    Refuse(Refusal),
    /// Create attempt number `attempt` (0-based: the number of sessions the user has).
    Create {
        attempt: usize,
    },
}

/// The creation rule. `user` is the stored user (`None` before the first event of theirs was
/// processed); `sessions` their sessions as [`SessionFacts::merge`] builds them.
pub fn creation(user: Option<&UserView>, sessions: &[SessionFacts], policy: &Policy) -> Creation {
    if let Some(refusal) = user.and_then(refusal_of_state) {
        return Creation::Refuse(refusal);
    }
    // An `allow_retry` review raised the allowance and released the session that waited for
    // review: it may be resubmitted.
    let max_attempts = user.map_or(policy.max_attempts, |u| u.attempts_allowed);
    let released = user.is_some_and(|u| u.state == UserState::RetryAllowed);
    let outcome = |s: &SessionFacts| match s.outcome {
        Some(SessionOutcome::NeedsReview) if released => Some(SessionOutcome::RetryAllowed),
        other => other,
    };
    by_sessions(sessions, outcome, max_attempts)
}

/// Refusals that follow from the user's state alone.
fn refusal_of_state(user: &UserView) -> Option<Refusal> {
    let exhausted = user.attempts_used >= user.attempts_allowed;
    match user.state {
        // Out of attempts is the more useful reason than what exhaustion turned into.
        UserState::NeedsReview | UserState::AlternativeRequired if exhausted => {
            Some(Refusal::AttemptsExhausted)
        }
        UserState::Verified | UserState::Approved => Some(Refusal::UserVerified),
        UserState::Rejected => Some(Refusal::UserRejected),
        UserState::NeedsReview => Some(Refusal::UnderReview),
        UserState::AlternativeRequired => Some(Refusal::AlternativeRequired),
        UserState::None | UserState::Pending | UserState::RetryAllowed | UserState::Canceled => {
            None
        }
    }
}

/// The rule on the sessions themselves (the first that holds wins). They matter beyond the
/// user's state because Stripe may know of sessions and statuses whose events have not been
/// processed yet. Canceled sessions count for nothing but the attempt number (they end a
/// series).
fn by_sessions(
    sessions: &[SessionFacts],
    outcome: impl Fn(&SessionFacts) -> Option<SessionOutcome>,
    max_attempts: u32,
) -> Creation {
    let is = |s: &SessionFacts, o: SessionOutcome| outcome(s) == Some(o);
    let live = || {
        sessions
            .iter()
            .filter(|s| s.status != SessionStatus::Canceled)
    };
    if sessions
        .iter()
        .any(|s| s.status == SessionStatus::Verified || is(s, SessionOutcome::Verified))
    {
        return Creation::Refuse(Refusal::UserVerified);
    }
    if sessions.iter().any(|s| is(s, SessionOutcome::Rejected)) {
        return Creation::Refuse(Refusal::UserRejected);
    }
    if sessions
        .iter()
        .any(|s| s.status == SessionStatus::Processing)
    {
        return Creation::Refuse(Refusal::VerificationInProgress);
    }
    // Before review/alternative: once the attempts are used up the policy turns the last
    // session into one of those, and "out of attempts" is the more useful reason.
    let failed: u32 = sessions.iter().map(|s| s.failed_attempts).sum();
    if failed >= max_attempts {
        return Creation::Refuse(Refusal::AttemptsExhausted);
    }
    if live().any(|s| is(s, SessionOutcome::NeedsReview)) {
        return Creation::Refuse(Refusal::UnderReview);
    }
    if live().any(|s| is(s, SessionOutcome::AlternativeRequired)) {
        return Creation::Refuse(Refusal::AlternativeRequired);
    }
    // The newest open session; its outcome is unknown while its events are on their way.
    let open = live()
        .filter(|s| s.status == SessionStatus::RequiresInput)
        .filter(|s| {
            matches!(
                outcome(s),
                None | Some(SessionOutcome::AwaitingInput) | Some(SessionOutcome::RetryAllowed)
            )
        })
        .max_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    match open {
        Some(s) => Creation::Reuse(s.id.clone()),
        None => Creation::Create {
            attempt: sessions.len(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SessionOutcome as O;
    use SessionStatus as S;

    fn s(id: &str, status: S, outcome: Option<O>, failed: u32, created: i64) -> SessionFacts {
        SessionFacts {
            id: id.into(),
            status,
            outcome,
            failed_attempts: failed,
            created,
        }
    }

    fn user(state: UserState, used: u32, allowed: u32) -> UserView {
        UserView {
            state,
            attempts_used: used,
            attempts_allowed: allowed,
            current_session: Some("vs_a".into()),
            error_code: None,
            next_step: None,
            why: None,
        }
    }

    #[test]
    fn rule_table_on_the_sessions() {
        use Creation::*;
        use Refusal::*;
        let cases: Vec<(Vec<SessionFacts>, Creation)> = vec![
            (vec![], Create { attempt: 0 }),
            (
                vec![s("vs_a", S::RequiresInput, None, 0, 1)],
                Reuse("vs_a".into()),
            ),
            (
                vec![s("vs_a", S::RequiresInput, Some(O::RetryAllowed), 1, 1)],
                Reuse("vs_a".into()),
            ),
            (
                vec![s("vs_a", S::Canceled, Some(O::Canceled), 0, 1)],
                Create { attempt: 1 },
            ),
            (
                vec![
                    s("vs_a", S::Canceled, Some(O::Canceled), 1, 1),
                    s("vs_b", S::Canceled, Some(O::Canceled), 1, 2),
                ],
                Create { attempt: 2 },
            ),
            (
                vec![s("vs_a", S::Verified, Some(O::Verified), 0, 1)],
                Refuse(UserVerified),
            ),
            // Stripe says verified before idverdict has processed it.
            (
                vec![s("vs_a", S::Verified, Some(O::Processing), 0, 1)],
                Refuse(UserVerified),
            ),
            (
                vec![s("vs_a", S::Processing, Some(O::AwaitingInput), 0, 1)],
                Refuse(VerificationInProgress),
            ),
            (
                vec![s("vs_a", S::RequiresInput, Some(O::NeedsReview), 1, 1)],
                Refuse(UnderReview),
            ),
            (
                vec![s("vs_a", S::RequiresInput, Some(O::Rejected), 1, 1)],
                Refuse(UserRejected),
            ),
            (
                vec![s(
                    "vs_a",
                    S::RequiresInput,
                    Some(O::AlternativeRequired),
                    1,
                    1,
                )],
                Refuse(AlternativeRequired),
            ),
            (
                vec![
                    s("vs_a", S::Canceled, Some(O::Canceled), 2, 1),
                    s("vs_b", S::RequiresInput, Some(O::RetryAllowed), 1, 2),
                ],
                Refuse(AttemptsExhausted),
            ),
            // The newest open session is the one handed out.
            (
                vec![
                    s("vs_old", S::RequiresInput, Some(O::AwaitingInput), 0, 1),
                    s("vs_new", S::RequiresInput, None, 0, 5),
                ],
                Reuse("vs_new".into()),
            ),
            // Verified wins over everything, even an open session.
            (
                vec![
                    s("vs_a", S::Verified, Some(O::Verified), 0, 1),
                    s("vs_b", S::RequiresInput, None, 0, 2),
                ],
                Refuse(UserVerified),
            ),
        ];
        let policy = Policy::default();
        for (sessions, expected) in cases {
            assert_eq!(creation(None, &sessions, &policy), expected, "{sessions:?}");
        }
    }

    #[test]
    fn the_users_state_refuses_first() {
        let policy = Policy::default();
        let open = [s("vs_a", S::RequiresInput, None, 0, 1)];
        for (state, used, allowed, expected) in [
            (UserState::Verified, 0, 3, Refusal::UserVerified),
            (UserState::Approved, 3, 3, Refusal::UserVerified),
            (UserState::Rejected, 1, 3, Refusal::UserRejected),
            (UserState::NeedsReview, 1, 3, Refusal::UnderReview),
            (
                UserState::AlternativeRequired,
                1,
                3,
                Refusal::AlternativeRequired,
            ),
            // Out of attempts says more than what exhaustion turned into.
            (UserState::NeedsReview, 3, 3, Refusal::AttemptsExhausted),
            (
                UserState::AlternativeRequired,
                3,
                3,
                Refusal::AttemptsExhausted,
            ),
        ] {
            let u = user(state, used, allowed);
            assert_eq!(
                creation(Some(&u), &open, &policy),
                Creation::Refuse(expected),
                "{state:?} {used}/{allowed}"
            );
        }
        for state in [
            UserState::None,
            UserState::Pending,
            UserState::RetryAllowed,
            UserState::Canceled,
        ] {
            let u = user(state, 0, 3);
            assert_eq!(
                creation(Some(&u), &open, &policy),
                Creation::Reuse("vs_a".into()),
                "{state:?}"
            );
        }
    }

    #[test]
    fn allow_retry_releases_the_reviewed_session_and_raises_the_allowance() {
        let policy = Policy::default();
        // Three failures used every default attempt; the review allowed a fourth.
        let reviewed = [s("vs_a", S::RequiresInput, Some(O::NeedsReview), 3, 1)];
        let released = user(UserState::RetryAllowed, 3, 4);
        assert_eq!(
            creation(Some(&released), &reviewed, &policy),
            Creation::Reuse("vs_a".into())
        );
        // Without the review the same session is still waiting for one.
        assert_eq!(
            creation(None, &reviewed, &policy),
            Creation::Refuse(Refusal::AttemptsExhausted)
        );
        let one_used = [s("vs_a", S::RequiresInput, Some(O::NeedsReview), 1, 1)];
        assert_eq!(
            creation(None, &one_used, &policy),
            Creation::Refuse(Refusal::UnderReview)
        );
    }

    #[test]
    fn stripes_status_is_fresher_and_unprocessed_sessions_are_included() {
        let record = SessionRecord {
            failed_attempts: 1,
            session_created: 5,
            outcome: O::RetryAllowed,
            ..SessionRecord::example("vs_a")
        };
        let at_stripe = |id: &str, status: &str, created: i64| -> VerificationSession {
            serde_json::from_value(serde_json::json!({
                "id": id, "object": "identity.verification_session", "created": created,
                "livemode": false, "status": status,
            }))
            .unwrap()
        };
        let mut facts = SessionFacts::merge(
            &[record],
            &[
                at_stripe("vs_a", "processing", 5),
                at_stripe("vs_b", "requires_input", 9),
            ],
        );
        facts.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(
            facts,
            vec![
                s("vs_a", S::Processing, Some(O::RetryAllowed), 1, 5),
                s("vs_b", S::RequiresInput, None, 0, 9),
            ]
        );
    }
}
