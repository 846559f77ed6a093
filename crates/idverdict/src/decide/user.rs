//! The per-user decision. A user (`client_reference_id`, or the policy's metadata key) has many
//! sessions over time; their state is computed from ALL of them plus the latest operator review,
//! in this one function, so it does not depend on the order events arrived in.
//!
//! | Condition (first that holds)                                    | User state             |
//! |-----------------------------------------------------------------|------------------------|
//! | latest review is `approve`                                      | `approved`             |
//! | latest review is `reject`                                       | `rejected`             |
//! | expectations apply and a verified session is still being checked | `pending`             |
//! | expectations apply and no verified session passed its check     | `needs_review` / `rejected` (policy, per field) |
//! | any session `verified` (and passed), but a session failed with a code held for review (`hold_for_review`) | `needs_review` |
//! | any session `verified` (and passed)                             | `verified`             |
//! | no sessions                                                     | `none`                 |
//! | newest session awaiting input or processing                     | `pending`              |
//! | newest session canceled                                         | `canceled`             |
//! | newest session failed, policy step `reject`                     | `rejected`             |
//! | … step `alternative_method`                                     | `alternative_required` |
//! | … step `manual_review`, not released by an `allow_retry` review | `needs_review`         |
//! | … step `retry` (or released review) and attempts left           | `retry_allowed`        |
//! | … attempts used up                                              | policy `on_exhausted`: `needs_review` or `alternative_required` |
//!
//! Attempts used = failed attempts that count (policy) over all the user's sessions. Attempts
//! allowed = `max_attempts`, or after an `allow_retry` review `max(max_attempts, attempts used
//! at the review + 1)` (see [`Review::attempts_allowed`]). The review releases the session
//! that waited for it until that session fails again.
//!
//! Next to the state, the row that decided it is recorded with its facts and session
//! ([`Why`]): the why the API, the decisions and the console show.

use serde::{Deserialize, Serialize};
use stripe_webhook::ErrorCode;

use std::collections::HashMap;

use super::decision::{Decision, DecisionType};
use super::expectations::{self, Action, CheckResults, Field, FieldResult};
use super::policy::Policy;
use super::session::{SessionOutcome, SessionRecord};
use super::why::{Rule, Why};
use super::NextStep;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserState {
    None,
    Pending,
    Verified,
    RetryAllowed,
    NeedsReview,
    AlternativeRequired,
    Rejected,
    Approved,
    Canceled,
}

impl UserState {
    pub const ALL: [UserState; 9] = [
        UserState::None,
        UserState::Pending,
        UserState::Verified,
        UserState::RetryAllowed,
        UserState::NeedsReview,
        UserState::AlternativeRequired,
        UserState::Rejected,
        UserState::Approved,
        UserState::Canceled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UserState::None => "none",
            UserState::Pending => "pending",
            UserState::Verified => "verified",
            UserState::RetryAllowed => "retry_allowed",
            UserState::NeedsReview => "needs_review",
            UserState::AlternativeRequired => "alternative_required",
            UserState::Rejected => "rejected",
            UserState::Approved => "approved",
            UserState::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<UserState> {
        UserState::ALL.into_iter().find(|u| u.as_str() == s)
    }

    /// The state a failure's next step leaves the user in.
    fn of_step(step: NextStep) -> UserState {
        match step {
            NextStep::Retry => UserState::RetryAllowed,
            NextStep::AlternativeMethod => UserState::AlternativeRequired,
            NextStep::ManualReview => UserState::NeedsReview,
            NextStep::Reject => UserState::Rejected,
        }
    }
}

/// An operator's decision about a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewAction {
    Approve,
    Reject,
    AllowRetry,
}

impl ReviewAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewAction::Approve => "approve",
            ReviewAction::Reject => "reject",
            ReviewAction::AllowRetry => "allow_retry",
        }
    }

    pub fn parse(s: &str) -> Option<ReviewAction> {
        [
            ReviewAction::Approve,
            ReviewAction::Reject,
            ReviewAction::AllowRetry,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// The latest review of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub action: ReviewAction,
    /// Who decided.
    pub by: String,
    /// When (ms).
    pub at_ms: i64,
    /// The newest session when the review was made: an `allow_retry` releases that session.
    pub session_id: Option<String>,
    /// Attempts used when the review was made.
    pub attempts_at_review: u32,
}

impl Review {
    /// The attempts a user is allowed: the policy's `max_attempts`, or after an `allow_retry`
    /// review at least one more than were used when the reviewer decided —
    /// `max(max_attempts, attempts_at_review + 1)`. So a user released with attempts left keeps
    /// the limit (and the attempts they had left); a user released after using them all gets
    /// exactly one more.
    pub fn attempts_allowed(review: Option<&Review>, policy: &Policy) -> u32 {
        match review.filter(|r| r.action == ReviewAction::AllowRetry) {
            Some(r) => policy
                .max_attempts
                .max(r.attempts_at_review.saturating_add(1)),
            None => policy.max_attempts,
        }
    }

    /// Whether this review released `session` from its wait for review: an `allow_retry` made
    /// while it was the newest session, as long as it has not failed again since (a new
    /// failure of the same session is judged afresh).
    fn releases(&self, session: &SessionRecord, attempts_used: u32) -> bool {
        self.action == ReviewAction::AllowRetry
            && self.session_id.as_deref() == Some(session.id.as_str())
            && attempts_used <= self.attempts_at_review
    }

    fn why(&self, attempts_used: u32, max_attempts: u32) -> Why {
        Why::new(
            Rule::Review {
                action: self.action,
                by: self.by.clone(),
                at_ms: self.at_ms,
                attempts_used,
                max_attempts,
            },
            self.session_id.as_deref(),
        )
    }
}

/// The computed view of one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserView {
    pub state: UserState,
    pub attempts_used: u32,
    pub attempts_allowed: u32,
    pub current_session: Option<String>,
    /// The failure behind the state, when there is one.
    pub error_code: Option<ErrorCode>,
    pub next_step: Option<NextStep>,
    /// Why the user is in this state. `None` only for a user stored before idverdict recorded
    /// it and not recomputed since.
    pub why: Option<Why>,
}

/// A user as idverdict keeps them.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub user_ref: String,
    pub view: UserView,
    /// When the user entered the current state (ms); orders the review queue.
    pub state_since_ms: i64,
    pub review: Option<Review>,
    pub updated_at_ms: i64,
}

/// A user's new record, and the decision the change makes (its reactions go out with it).
#[derive(Debug, Clone, PartialEq)]
pub struct UserChange {
    pub user: UserRecord,
    pub decision: Option<Decision>,
}

/// Attempts used = failed attempts that count (policy) over all the user's sessions.
pub fn attempts_used(sessions: &[&SessionRecord]) -> u32 {
    sessions.iter().map(|s| s.failed_attempts).sum()
}

/// The newest of the user's sessions: by Stripe's `created`, then id for a stable tie-break.
fn newest<'a>(sessions: &[&'a SessionRecord]) -> Option<&'a SessionRecord> {
    sessions
        .iter()
        .copied()
        .max_by(|a, b| (a.session_created, &a.id).cmp(&(b.session_created, &b.id)))
}

/// The newest session that failed with a code the policy holds for review, and that code.
fn fraud_signal<'a>(
    sessions: &[&'a SessionRecord],
    policy: &Policy,
) -> Option<(&'a SessionRecord, &'a ErrorCode)> {
    sessions
        .iter()
        .copied()
        .filter_map(|s| {
            let code = s
                .failure_codes
                .iter()
                .find(|c| policy.rule(c).hold_for_review)?;
            Some((s, code))
        })
        .max_by(|(a, _), (b, _)| (a.session_created, &a.id).cmp(&(b.session_created, &b.id)))
}

/// The state, the failure behind it and why: the table's rows, first that holds.
struct Verdict {
    state: UserState,
    failure: Option<(ErrorCode, NextStep)>,
    why: Why,
}

impl Verdict {
    fn plain(state: UserState, rule: Rule, session: Option<&SessionRecord>) -> Verdict {
        Verdict {
            state,
            failure: None,
            why: Why::new(rule, session.map(|s| s.id.as_str())),
        }
    }
}

/// What the user step knows about the checks of a user's verified sessions against what was
/// expected of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checks {
    /// A verified session counts only once checked: the user (or the policy) expects
    /// something of the verified person.
    pub required: bool,
    /// Results of the checks done, by session.
    pub done: HashMap<String, CheckResults>,
}

/// Compute the user's state. `sessions` may be in any order.
pub fn user_view(
    sessions: &[&SessionRecord],
    review: Option<&Review>,
    checks: &Checks,
    policy: &Policy,
) -> UserView {
    let attempts_used = attempts_used(sessions);
    let attempts_allowed = Review::attempts_allowed(review, policy);
    let newest = newest(sessions);
    let verdict = verdict(
        sessions,
        newest,
        review,
        checks,
        attempts_used,
        attempts_allowed,
        policy,
    );
    let (error_code, next_step) = verdict.failure.unzip();
    UserView {
        state: verdict.state,
        attempts_used,
        attempts_allowed,
        current_session: newest.map(|s| s.id.clone()),
        error_code,
        next_step,
        why: Some(verdict.why),
    }
}

/// The user has verified sessions (`verified`, newest first): with expectations, a session
/// counts once its check passed; a fraud signal holds even a passing one.
fn verified_verdict(
    verified: &[&SessionRecord],
    sessions: &[&SessionRecord],
    checks: &Checks,
    policy: &Policy,
) -> Verdict {
    let mut passed: Option<(&SessionRecord, Option<CheckResults>)> = None;
    if checks.required {
        passed = verified.iter().find_map(|s| {
            let results = checks.done.get(&s.id)?;
            expectations::verdict(results, &policy.expectations)
                .is_none()
                .then(|| (*s, Some(results.clone())))
        });
        if passed.is_none() {
            if let Some(unchecked) = verified.iter().find(|s| !checks.done.contains_key(&s.id)) {
                return Verdict::plain(
                    UserState::Pending,
                    Rule::CheckingExpectations,
                    Some(unchecked),
                );
            }
        }
    }
    let (session, expectations) = match passed {
        Some(found) => found,
        None if !checks.required => (verified[0], None),
        None => {
            // Every verified session was checked and none passed: the newest one decides.
            let session = verified[0];
            let results = checks.done.get(&session.id).cloned().unwrap_or_default();
            let (field, result, action) = expectations::verdict(&results, &policy.expectations)
                .unwrap_or((
                    Field::FirstName,
                    FieldResult::Unavailable,
                    Action::NeedsReview,
                ));
            let state = match action {
                Action::Rejected => UserState::Rejected,
                Action::NeedsReview | Action::Ignore => UserState::NeedsReview,
            };
            return Verdict::plain(
                state,
                Rule::Expectation {
                    field,
                    result,
                    reason: result.reason(field).unwrap_or_default().to_string(),
                    action,
                    expectations: results,
                },
                Some(session),
            );
        }
    };
    // A fraud signal anywhere in the user's sessions is not washed away by a success: the
    // user waits for a reviewer's approve or reject (which come before this rule).
    if let Some((flagged, code)) = fraud_signal(sessions, policy) {
        return Verdict {
            state: UserState::NeedsReview,
            failure: Some((code.clone(), NextStep::ManualReview)),
            why: Why::new(
                Rule::FraudHold {
                    error_code: code.clone(),
                    flagged_session: flagged.id.clone(),
                },
                Some(&session.id),
            ),
        };
    }
    Verdict::plain(
        UserState::Verified,
        Rule::Verified { expectations },
        Some(session),
    )
}

fn verdict(
    sessions: &[&SessionRecord],
    newest: Option<&SessionRecord>,
    review: Option<&Review>,
    checks: &Checks,
    attempts_used: u32,
    attempts_allowed: u32,
    policy: &Policy,
) -> Verdict {
    if let Some(r) = review {
        let state = match r.action {
            ReviewAction::Approve => Some(UserState::Approved),
            ReviewAction::Reject => Some(UserState::Rejected),
            ReviewAction::AllowRetry => None,
        };
        if let Some(state) = state {
            return Verdict {
                state,
                failure: None,
                why: r.why(attempts_used, attempts_allowed),
            };
        }
    }
    let mut verified: Vec<&SessionRecord> = sessions
        .iter()
        .copied()
        .filter(|s| s.outcome == SessionOutcome::Verified)
        .collect();
    // Newest first.
    verified.sort_by(|a, b| (b.session_created, &b.id).cmp(&(a.session_created, &a.id)));
    if !verified.is_empty() {
        return verified_verdict(&verified, sessions, checks, policy);
    }
    let Some(current) = newest else {
        return Verdict::plain(UserState::None, Rule::NoSessions, None);
    };
    let in_progress = || {
        Verdict::plain(
            UserState::Pending,
            Rule::InProgress {
                status: current.status.clone(),
            },
            Some(current),
        )
    };
    match current.outcome {
        SessionOutcome::AwaitingInput | SessionOutcome::Processing => in_progress(),
        SessionOutcome::Canceled => {
            Verdict::plain(UserState::Canceled, Rule::Canceled, Some(current))
        }
        SessionOutcome::Verified => verified_verdict(&[current], sessions, checks, policy),
        SessionOutcome::RetryAllowed
        | SessionOutcome::NeedsReview
        | SessionOutcome::AlternativeRequired
        | SessionOutcome::Rejected => {
            let Some(error) = current.last_error_code.clone() else {
                return in_progress();
            };
            let release = review.filter(|r| r.releases(current, attempts_used));
            let policy_step = policy.rule(&error).next_step;
            let step = match policy_step {
                NextStep::ManualReview if release.is_some() => NextStep::Retry,
                other => other,
            };
            let final_step = policy.step_after_attempts(step, attempts_used, attempts_allowed);
            let why = if final_step != step {
                Why::new(
                    Rule::AttemptsExhausted {
                        error_code: error.clone(),
                        attempts_used,
                        max_attempts: attempts_allowed,
                        on_exhausted: policy.on_exhausted,
                    },
                    Some(&current.id),
                )
            } else if let Some(r) = release {
                r.why(attempts_used, attempts_allowed)
            } else {
                Why::new(
                    Rule::ErrorCode {
                        error_code: error.clone(),
                        next_step: final_step,
                        step_from: policy.step_source(&error),
                        attempts_used,
                        max_attempts: attempts_allowed,
                    },
                    Some(&current.id),
                )
            };
            Verdict {
                state: UserState::of_step(final_step),
                failure: Some((error, final_step)),
                why,
            }
        }
    }
}

/// Recompute a user after their sessions changed (the stored review stays). `None` when the
/// view is what was stored. Entering a state that tells someone something (see
/// [`DecisionType::entering`]) is a decision, and so is each new failure while
/// `retry_allowed` (the user may be told how many attempts are left) and each change of the
/// session that decides the state (the why names another session).
pub fn recompute(
    user_ref: &str,
    sessions: &[&SessionRecord],
    stored: Option<&UserRecord>,
    checks: &Checks,
    policy: &Policy,
    now_ms: i64,
) -> Option<UserChange> {
    let review = stored.and_then(|u| u.review.as_ref());
    let view = user_view(sessions, review, checks, policy);
    let old = stored.map(|u| &u.view);
    if old == Some(&view) {
        return None;
    }
    let state_changed = old.map(|v| v.state) != Some(view.state);
    let new_failure = view.state == UserState::RetryAllowed
        && old.map(|v| v.attempts_used) != Some(view.attempts_used);
    // Same state, but decided by another session (a verification held after a fraud signal
    // while the flagged session waited for review): the app learns of the new reason.
    let new_deciding_session = old
        .and_then(|v| v.why.as_ref())
        .zip(view.why.as_ref())
        .is_some_and(|(before, now)| before.session != now.session);
    let decision = DecisionType::entering(view.state)
        .filter(|_| state_changed || new_failure || new_deciding_session)
        .and_then(|kind| Decision::about_user(user_ref, &view, sessions, kind, now_ms));
    let user = UserRecord {
        user_ref: user_ref.to_string(),
        state_since_ms: match stored {
            Some(u) if !state_changed => u.state_since_ms,
            _ => now_ms,
        },
        review: review.cloned(),
        view,
        updated_at_ms: now_ms,
    };
    Some(UserChange { user, decision })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::StepSource;
    use std::collections::BTreeMap;
    use stripe_webhook::SessionStatus;
    use SessionOutcome as Outcome;

    fn session(
        id: &str,
        created: i64,
        outcome: Outcome,
        code: Option<&str>,
        failed: u32,
    ) -> SessionRecord {
        SessionRecord {
            id: id.into(),
            user_ref: Some("u".into()),
            status: match outcome {
                Outcome::Verified => SessionStatus::Verified,
                Outcome::Canceled => SessionStatus::Canceled,
                Outcome::Processing => SessionStatus::Processing,
                _ => SessionStatus::RequiresInput,
            },
            session_type: Some(stripe_webhook::SessionType::Document),
            livemode: false,
            metadata: BTreeMap::new(),
            last_error_code: code.map(ErrorCode::from),
            last_error_reason: None,
            last_report_id: None,
            redaction_status: None,
            failed_attempts: failed,
            status_event_created: created,
            status_rank: 0,
            session_created: created,
            outcome,
            next_step: None,
            failure_codes: code.map(|c| vec![ErrorCode::from(c)]).unwrap_or_default(),
        }
    }

    #[test]
    fn the_table_holds() {
        let p = Policy::default();
        let failed = |code| session("vs_b", 20, Outcome::RetryAllowed, Some(code), 1);
        let old_fail = session(
            "vs_a",
            10,
            Outcome::RetryAllowed,
            Some("document_expired"),
            1,
        );
        let cases: Vec<(Vec<SessionRecord>, UserState)> = vec![
            (vec![], UserState::None),
            (
                vec![session("vs_a", 10, Outcome::AwaitingInput, None, 0)],
                UserState::Pending,
            ),
            (
                vec![session("vs_a", 10, Outcome::Processing, None, 0)],
                UserState::Pending,
            ),
            (
                vec![session("vs_a", 10, Outcome::Canceled, None, 0)],
                UserState::Canceled,
            ),
            (vec![failed("document_expired")], UserState::RetryAllowed),
            (
                vec![failed("consent_declined")],
                UserState::AlternativeRequired,
            ),
            (vec![failed("selfie_manipulated")], UserState::NeedsReview),
            (vec![failed("under_supported_age")], UserState::Rejected),
            // A late event for an older session never replaces the newest one.
            (
                vec![
                    old_fail.clone(),
                    session("vs_b", 20, Outcome::Processing, None, 0),
                ],
                UserState::Pending,
            ),
            // Verified anywhere wins.
            (
                vec![
                    session("vs_a", 10, Outcome::Verified, None, 0),
                    failed("document_expired"),
                ],
                UserState::Verified,
            ),
            // Out of attempts over several sessions.
            (
                vec![
                    session(
                        "vs_a",
                        10,
                        Outcome::RetryAllowed,
                        Some("document_expired"),
                        2,
                    ),
                    failed("document_expired"),
                ],
                UserState::NeedsReview,
            ),
        ];
        for (sessions, expected) in cases {
            let refs: Vec<&SessionRecord> = sessions.iter().collect();
            assert_eq!(
                user_view(&refs, None, &Checks::default(), &p).state,
                expected,
                "{sessions:?}"
            );
        }
    }

    #[test]
    fn reviews_decide_and_allow_retry_releases_one_more_attempt() {
        let p = Policy::default();
        let s = [session(
            "vs_a",
            10,
            Outcome::RetryAllowed,
            Some("document_expired"),
            3,
        )];
        let refs: Vec<&SessionRecord> = s.iter().collect();
        assert_eq!(
            user_view(&refs, None, &Checks::default(), &p).state,
            UserState::NeedsReview
        );
        let allow = Review {
            action: ReviewAction::AllowRetry,
            by: "rita".into(),
            at_ms: 1,
            session_id: Some("vs_a".into()),
            attempts_at_review: 3,
        };
        let v = user_view(&refs, Some(&allow), &Checks::default(), &p);
        assert_eq!((v.state, v.attempts_allowed), (UserState::RetryAllowed, 4));
        let approve = Review {
            action: ReviewAction::Approve,
            ..allow.clone()
        };
        assert_eq!(
            user_view(&refs, Some(&approve), &Checks::default(), &p).state,
            UserState::Approved
        );
        let reject = Review {
            action: ReviewAction::Reject,
            ..allow
        };
        assert_eq!(
            user_view(&refs, Some(&reject), &Checks::default(), &p).state,
            UserState::Rejected
        );
    }

    #[test]
    fn exhaustion_can_lead_to_an_alternative() {
        let text = "[policy]\non_exhausted = \"alternative_required\"\nmax_attempts = 1\n";
        let value: toml::Value = toml::from_str(text).unwrap();
        let p = Policy::from_toml(Some(&value["policy"].clone().try_into().unwrap())).unwrap();
        let s = [session(
            "vs_a",
            10,
            Outcome::RetryAllowed,
            Some("document_expired"),
            1,
        )];
        let refs: Vec<&SessionRecord> = s.iter().collect();
        assert_eq!(
            user_view(&refs, None, &Checks::default(), &p).state,
            UserState::AlternativeRequired
        );
    }

    fn stored(view: UserView, since: i64) -> UserRecord {
        UserRecord {
            user_ref: "u".into(),
            view,
            state_since_ms: since,
            review: None,
            updated_at_ms: since,
        }
    }

    #[test]
    fn entering_a_state_that_tells_someone_is_a_decision_pending_is_not() {
        let p = Policy::default();
        let pending = [session("vs_a", 10, Outcome::Processing, None, 0)];
        let refs: Vec<&SessionRecord> = pending.iter().collect();
        let change =
            recompute("u", &refs, None, &Checks::default(), &p, 5_000).expect("a new user");
        assert_eq!(change.user.view.state, UserState::Pending);
        assert_eq!(change.user.state_since_ms, 5_000);
        assert_eq!(change.decision, None, "pending tells nobody anything");
        // Nothing changed: nothing to store.
        assert_eq!(
            recompute(
                "u",
                &refs,
                Some(&change.user),
                &Checks::default(),
                &p,
                6_000
            ),
            None
        );

        let failed = [session(
            "vs_a",
            10,
            Outcome::RetryAllowed,
            Some("document_expired"),
            1,
        )];
        let refs: Vec<&SessionRecord> = failed.iter().collect();
        let change = recompute(
            "u",
            &refs,
            Some(&change.user),
            &Checks::default(),
            &p,
            7_000,
        )
        .unwrap();
        let d = change.decision.expect("retry_allowed is a decision");
        assert_eq!(d.kind, DecisionType::RetryAllowed);
        assert_eq!(d.key, "u:retry_allowed:vs_a:1");
        assert_eq!((d.attempts_used, d.attempts_left), (1, 2));
        assert_eq!(d.occurred_at, 7);
        assert_eq!(
            d.resume.as_deref(),
            Some("POST /v1/users/u/verification_sessions")
        );
        assert_eq!(change.user.state_since_ms, 7_000);
    }

    #[test]
    fn each_new_failure_while_retry_allowed_is_a_decision_and_keeps_state_since() {
        let p = Policy::default();
        let one = [session(
            "vs_a",
            10,
            Outcome::RetryAllowed,
            Some("document_expired"),
            1,
        )];
        let refs: Vec<&SessionRecord> = one.iter().collect();
        let before = stored(user_view(&refs, None, &Checks::default(), &p), 1_000);
        let two = [session(
            "vs_a",
            10,
            Outcome::RetryAllowed,
            Some("document_expired"),
            2,
        )];
        let refs: Vec<&SessionRecord> = two.iter().collect();
        let change = recompute("u", &refs, Some(&before), &Checks::default(), &p, 9_000).unwrap();
        let d = change.decision.expect("a second failure is news");
        assert_eq!(
            (d.key.as_str(), d.attempts_left),
            ("u:retry_allowed:vs_a:2", 1)
        );
        assert_eq!(change.user.state_since_ms, 1_000, "same state since before");
    }

    #[test]
    fn a_stored_review_stays_through_recomputation() {
        let p = Policy::default();
        let s = [session(
            "vs_a",
            10,
            Outcome::NeedsReview,
            Some("selfie_manipulated"),
            1,
        )];
        let refs: Vec<&SessionRecord> = s.iter().collect();
        let mut before = stored(user_view(&refs, None, &Checks::default(), &p), 1_000);
        before.review = Some(Review {
            action: ReviewAction::Approve,
            by: "rita".into(),
            at_ms: 1,
            session_id: Some("vs_a".into()),
            attempts_at_review: 1,
        });
        let newer = [
            s[0].clone(),
            session(
                "vs_b",
                20,
                Outcome::RetryAllowed,
                Some("document_expired"),
                1,
            ),
        ];
        let refs: Vec<&SessionRecord> = newer.iter().collect();
        let change = recompute("u", &refs, Some(&before), &Checks::default(), &p, 2_000).unwrap();
        assert_eq!(change.user.view.state, UserState::Approved);
        assert_eq!(change.user.review, before.review);
    }

    // ------------------------------------------------------------------ the why, per rule

    fn why_of(sessions: &[SessionRecord], review: Option<&Review>, p: &Policy) -> (UserState, Why) {
        let refs: Vec<&SessionRecord> = sessions.iter().collect();
        let v = user_view(&refs, review, &Checks::default(), p);
        (v.state, v.why.expect("user_view always says why"))
    }

    fn review(action: ReviewAction, session: &str, at_review: u32) -> Review {
        Review {
            action,
            by: "rita".into(),
            at_ms: 9_000,
            session_id: Some(session.into()),
            attempts_at_review: at_review,
        }
    }

    #[test]
    fn why_no_sessions() {
        assert_eq!(
            why_of(&[], None, &Policy::default()),
            (UserState::None, Why::new(Rule::NoSessions, None))
        );
    }

    #[test]
    fn why_in_progress_names_the_newest_sessions_status() {
        let s = [
            session(
                "vs_a",
                10,
                Outcome::RetryAllowed,
                Some("document_expired"),
                1,
            ),
            session("vs_b", 20, Outcome::Processing, None, 0),
        ];
        assert_eq!(
            why_of(&s, None, &Policy::default()),
            (
                UserState::Pending,
                Why::new(
                    Rule::InProgress {
                        status: SessionStatus::Processing
                    },
                    Some("vs_b")
                )
            )
        );
    }

    #[test]
    fn why_canceled() {
        let s = [session("vs_a", 10, Outcome::Canceled, None, 0)];
        assert_eq!(
            why_of(&s, None, &Policy::default()),
            (UserState::Canceled, Why::new(Rule::Canceled, Some("vs_a")))
        );
    }

    #[test]
    fn why_verified_names_the_verified_session_not_the_newest() {
        let s = [
            session("vs_a", 10, Outcome::Verified, None, 0),
            session("vs_b", 20, Outcome::AwaitingInput, None, 0),
        ];
        assert_eq!(
            why_of(&s, None, &Policy::default()),
            (
                UserState::Verified,
                Why::new(Rule::Verified { expectations: None }, Some("vs_a"))
            )
        );
    }

    #[test]
    fn why_error_code_says_where_the_step_comes_from() {
        let text = "[policy.codes.document_expired]\nnext_step = \"alternative_method\"\n";
        let value: toml::Value = toml::from_str(text).unwrap();
        let overridden =
            Policy::from_toml(Some(&value["policy"].clone().try_into().unwrap())).unwrap();
        for (code, policy, state, step, from) in [
            (
                "document_expired",
                Policy::default(),
                UserState::RetryAllowed,
                NextStep::Retry,
                StepSource::BuiltIn,
            ),
            (
                "document_expired",
                overridden,
                UserState::AlternativeRequired,
                NextStep::AlternativeMethod,
                StepSource::Policy,
            ),
            (
                "a_code_stripe_adds_later",
                Policy::default(),
                UserState::NeedsReview,
                NextStep::ManualReview,
                StepSource::UnknownCode,
            ),
        ] {
            let s = [session("vs_a", 10, Outcome::RetryAllowed, Some(code), 1)];
            assert_eq!(
                why_of(&s, None, &policy),
                (
                    state,
                    Why::new(
                        Rule::ErrorCode {
                            error_code: ErrorCode::from(code),
                            next_step: step,
                            step_from: from,
                            attempts_used: 1,
                            max_attempts: 3,
                        },
                        Some("vs_a")
                    )
                ),
                "{code}"
            );
        }
    }

    #[test]
    fn why_attempts_exhausted_counts_over_every_session() {
        let s = [
            session(
                "vs_a",
                10,
                Outcome::RetryAllowed,
                Some("document_expired"),
                2,
            ),
            session(
                "vs_b",
                20,
                Outcome::RetryAllowed,
                Some("selfie_unverified_other"),
                1,
            ),
        ];
        assert_eq!(
            why_of(&s, None, &Policy::default()),
            (
                UserState::NeedsReview,
                Why::new(
                    Rule::AttemptsExhausted {
                        error_code: ErrorCode::SelfieUnverifiedOther,
                        attempts_used: 3,
                        max_attempts: 3,
                        on_exhausted: crate::decide::Exhausted::NeedsReview,
                    },
                    Some("vs_b")
                )
            )
        );
    }

    #[test]
    fn why_review_approve_and_reject_name_the_reviewer() {
        let s = [session(
            "vs_a",
            10,
            Outcome::NeedsReview,
            Some("selfie_manipulated"),
            1,
        )];
        for (action, state) in [
            (ReviewAction::Approve, UserState::Approved),
            (ReviewAction::Reject, UserState::Rejected),
        ] {
            let r = review(action, "vs_a", 1);
            assert_eq!(
                why_of(&s, Some(&r), &Policy::default()),
                (
                    state,
                    Why::new(
                        Rule::Review {
                            action,
                            by: "rita".into(),
                            at_ms: 9_000,
                            attempts_used: 1,
                            max_attempts: 3,
                        },
                        Some("vs_a")
                    )
                )
            );
        }
    }

    /// `allow_retry` with attempts left keeps the limit, and the attempts left with it: the
    /// user has what they had before the failure that sent them to review, minus that one.
    #[test]
    fn allow_retry_with_attempts_left_keeps_the_limit() {
        let p = Policy::default();
        let s = [session(
            "vs_a",
            10,
            Outcome::NeedsReview,
            Some("selfie_manipulated"),
            1,
        )];
        let r = review(ReviewAction::AllowRetry, "vs_a", 1);
        let refs: Vec<&SessionRecord> = s.iter().collect();
        let v = user_view(&refs, Some(&r), &Checks::default(), &p);
        assert_eq!(
            (v.state, v.attempts_used, v.attempts_allowed),
            (UserState::RetryAllowed, 1, 3)
        );
        assert_eq!(
            v.why,
            Some(Why::new(
                Rule::Review {
                    action: ReviewAction::AllowRetry,
                    by: "rita".into(),
                    at_ms: 9_000,
                    attempts_used: 1,
                    max_attempts: 3,
                },
                Some("vs_a")
            ))
        );
    }

    /// `allow_retry` after every attempt was used gives exactly one more.
    #[test]
    fn allow_retry_after_exhaustion_gives_exactly_one_more_attempt() {
        let p = Policy::default();
        let s = [session(
            "vs_a",
            10,
            Outcome::NeedsReview,
            Some("document_expired"),
            3,
        )];
        let r = review(ReviewAction::AllowRetry, "vs_a", 3);
        let (state, why) = why_of(&s, Some(&r), &p);
        assert_eq!(state, UserState::RetryAllowed);
        assert!(matches!(
            why.rule,
            Rule::Review {
                attempts_used: 3,
                max_attempts: 4,
                ..
            }
        ));
        // That attempt used too: exhausted again, at the raised limit.
        let again = [session(
            "vs_a",
            10,
            Outcome::NeedsReview,
            Some("document_expired"),
            4,
        )];
        let (state, why) = why_of(&again, Some(&r), &p);
        assert_eq!(state, UserState::NeedsReview);
        assert!(matches!(
            why.rule,
            Rule::AttemptsExhausted {
                attempts_used: 4,
                max_attempts: 4,
                ..
            }
        ));
    }

    /// The release covers the failure the reviewer looked at, not the next one: the same
    /// session failing again for a code that needs a review waits for a review again.
    #[test]
    fn a_released_session_that_fails_again_waits_for_review_again() {
        let p = Policy::default();
        let r = review(ReviewAction::AllowRetry, "vs_a", 1);
        let again = [session(
            "vs_a",
            10,
            Outcome::NeedsReview,
            Some("selfie_manipulated"),
            2,
        )];
        let (state, why) = why_of(&again, Some(&r), &p);
        assert_eq!(state, UserState::NeedsReview);
        assert!(matches!(
            why.rule,
            Rule::ErrorCode {
                next_step: NextStep::ManualReview,
                attempts_used: 2,
                ..
            }
        ));
    }

    // ------------------------------------------------------------------ fraud hold

    fn verified_after(flagged_code: &str, same_session: bool) -> Vec<SessionRecord> {
        if same_session {
            let mut s = session("vs_a", 10, Outcome::Verified, None, 1);
            s.failure_codes = vec![ErrorCode::from(flagged_code)];
            vec![s]
        } else {
            vec![
                session("vs_a", 10, Outcome::NeedsReview, Some(flagged_code), 1),
                session("vs_b", 20, Outcome::Verified, None, 0),
            ]
        }
    }

    #[test]
    fn why_fraud_hold_a_verification_after_selfie_manipulated_waits_for_a_reviewer() {
        let p = Policy::default();
        for same_session in [false, true] {
            let s = verified_after("selfie_manipulated", same_session);
            let verified = if same_session { "vs_a" } else { "vs_b" };
            let refs: Vec<&SessionRecord> = s.iter().collect();
            let v = user_view(&refs, None, &Checks::default(), &p);
            assert_eq!(
                v.state,
                UserState::NeedsReview,
                "same session: {same_session}"
            );
            assert_eq!(
                (v.error_code.clone(), v.next_step),
                (
                    Some(ErrorCode::SelfieManipulated),
                    Some(NextStep::ManualReview)
                )
            );
            assert_eq!(
                v.why,
                Some(Why::new(
                    Rule::FraudHold {
                        error_code: ErrorCode::SelfieManipulated,
                        flagged_session: "vs_a".into(),
                    },
                    Some(verified)
                ))
            );
            // An allow_retry made before the verification does not lift the hold…
            let allow = review(ReviewAction::AllowRetry, "vs_a", 1);
            assert_eq!(
                user_view(&refs, Some(&allow), &Checks::default(), &p).state,
                UserState::NeedsReview
            );
            // …a reviewer's approve or reject does.
            let approve = review(ReviewAction::Approve, verified, 1);
            assert_eq!(
                user_view(&refs, Some(&approve), &Checks::default(), &p).state,
                UserState::Approved
            );
            let reject = review(ReviewAction::Reject, verified, 1);
            assert_eq!(
                user_view(&refs, Some(&reject), &Checks::default(), &p).state,
                UserState::Rejected
            );
        }
    }

    #[test]
    fn without_the_hold_a_later_verification_verifies() {
        let text = "[policy.codes.selfie_manipulated]\nhold_for_review = false\n";
        let value: toml::Value = toml::from_str(text).unwrap();
        let p = Policy::from_toml(Some(&value["policy"].clone().try_into().unwrap())).unwrap();
        let s = verified_after("selfie_manipulated", false);
        let refs: Vec<&SessionRecord> = s.iter().collect();
        assert_eq!(
            user_view(&refs, None, &Checks::default(), &p).state,
            UserState::Verified
        );
        // Codes not held by default do not hold either.
        let s = verified_after("selfie_face_mismatch", false);
        let refs: Vec<&SessionRecord> = s.iter().collect();
        assert_eq!(
            user_view(&refs, None, &Checks::default(), &Policy::default()).state,
            UserState::Verified
        );
    }

    #[test]
    fn a_held_verification_is_a_needs_review_decision() {
        let p = Policy::default();
        let flagged = [session(
            "vs_a",
            10,
            Outcome::NeedsReview,
            Some("selfie_manipulated"),
            1,
        )];
        let refs: Vec<&SessionRecord> = flagged.iter().collect();
        let before = recompute("u", &refs, None, &Checks::default(), &p, 1_000)
            .unwrap()
            .user;
        let s = verified_after("selfie_manipulated", false);
        let refs: Vec<&SessionRecord> = s.iter().collect();
        let change = recompute("u", &refs, Some(&before), &Checks::default(), &p, 2_000).unwrap();
        assert_eq!(change.user.view.state, UserState::NeedsReview);
        // Still needs_review, but for another reason and another session: news for the app.
        let d = change.decision.expect("a decision");
        assert_eq!(
            (d.kind, d.session.as_str()),
            (DecisionType::NeedsReview, "vs_b")
        );
        assert_eq!(d.why.map(|w| w.rule_name()), Some("fraud_hold"));
    }

    // ------------------------------------------------------------------ expectations

    fn checked(results: &[(Field, FieldResult)]) -> Checks {
        Checks {
            required: true,
            done: HashMap::from([("vs_a".to_string(), results.iter().copied().collect())]),
        }
    }

    #[test]
    fn why_checking_expectations_a_verified_session_waits_for_its_check() {
        let s = [session("vs_a", 10, Outcome::Verified, None, 0)];
        let refs: Vec<&SessionRecord> = s.iter().collect();
        let pending = Checks {
            required: true,
            done: HashMap::new(),
        };
        let v = user_view(&refs, None, &pending, &Policy::default());
        assert_eq!(
            (v.state, v.why),
            (
                UserState::Pending,
                Some(Why::new(Rule::CheckingExpectations, Some("vs_a")))
            )
        );
    }

    #[test]
    fn why_expectation_names_the_field_result_reason_and_action() {
        let s = [session("vs_a", 10, Outcome::Verified, None, 0)];
        let refs: Vec<&SessionRecord> = s.iter().collect();
        let results = [
            (Field::FirstName, FieldResult::Match),
            (Field::LastName, FieldResult::Mismatch),
            (Field::MinAge, FieldResult::Unavailable),
        ];
        let v = user_view(&refs, None, &checked(&results), &Policy::default());
        assert_eq!(v.state, UserState::NeedsReview);
        assert_eq!(
            v.why,
            Some(Why::new(
                Rule::Expectation {
                    field: Field::LastName,
                    result: FieldResult::Mismatch,
                    reason: "name_mismatch".into(),
                    action: Action::NeedsReview,
                    expectations: results.into_iter().collect(),
                },
                Some("vs_a")
            ))
        );
        // The policy's strongest action wins: a rejected field rejects.
        let text = "[policy.expectations.fields.min_age]\non_unavailable = \"rejected\"\n";
        let value: toml::Value = toml::from_str(text).unwrap();
        let p = Policy::from_toml(Some(&value["policy"].clone().try_into().unwrap())).unwrap();
        let v = user_view(&refs, None, &checked(&results), &p);
        assert_eq!(v.state, UserState::Rejected);
        assert!(matches!(
            v.why.unwrap().rule,
            Rule::Expectation {
                field: Field::MinAge,
                action: Action::Rejected,
                ..
            }
        ));
    }

    #[test]
    fn a_passing_check_verifies_and_the_why_carries_its_results() {
        let s = [session("vs_a", 10, Outcome::Verified, None, 0)];
        let refs: Vec<&SessionRecord> = s.iter().collect();
        let results = [(Field::LastName, FieldResult::Match)];
        let v = user_view(&refs, None, &checked(&results), &Policy::default());
        assert_eq!(
            (v.state, v.why),
            (
                UserState::Verified,
                Some(Why::new(
                    Rule::Verified {
                        expectations: Some(results.into_iter().collect())
                    },
                    Some("vs_a")
                ))
            )
        );
    }
}
