//! The per-user decision. A user (`client_reference_id`, or the policy's metadata key) has many
//! sessions over time; their state is computed from ALL of them plus the latest operator review,
//! in this one function, so it does not depend on the order events arrived in.
//!
//! | Condition (first that holds)                                    | User state             |
//! |-----------------------------------------------------------------|------------------------|
//! | latest review is `approve`                                      | `approved`             |
//! | latest review is `reject`                                       | `rejected`             |
//! | any session `verified`                                          | `verified`             |
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
//! allowed = `max_attempts`, raised by each `allow_retry` review to one more than were used
//! when the reviewer decided.

use serde::{Deserialize, Serialize};
use stripe_webhook::ErrorCode;

use super::decision::{Decision, DecisionType};
use super::policy::Policy;
use super::session::{SessionOutcome, SessionRecord};
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
    /// The newest session when the review was made: an `allow_retry` releases that session.
    pub session_id: Option<String>,
    /// Attempts used when the review was made.
    pub attempts_at_review: u32,
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

/// Compute the user's state. `sessions` may be in any order.
pub fn user_view(
    sessions: &[&SessionRecord],
    review: Option<&Review>,
    policy: &Policy,
) -> UserView {
    let attempts_used = attempts_used(sessions);
    let mut attempts_allowed = policy.max_attempts;
    if let Some(r) = review.filter(|r| r.action == ReviewAction::AllowRetry) {
        attempts_allowed = attempts_allowed.max(r.attempts_at_review + 1);
    }
    let newest = newest(sessions);
    let view = |state, error_code: Option<ErrorCode>, next_step| UserView {
        state,
        attempts_used,
        attempts_allowed,
        current_session: newest.map(|s| s.id.clone()),
        error_code,
        next_step,
    };

    match review.map(|r| r.action) {
        Some(ReviewAction::Approve) => return view(UserState::Approved, None, None),
        Some(ReviewAction::Reject) => return view(UserState::Rejected, None, None),
        _ => {}
    }
    if sessions
        .iter()
        .any(|s| s.outcome == SessionOutcome::Verified)
    {
        return view(UserState::Verified, None, None);
    }
    let Some(current) = newest else {
        return view(UserState::None, None, None);
    };
    match current.outcome {
        SessionOutcome::AwaitingInput | SessionOutcome::Processing => {
            view(UserState::Pending, None, None)
        }
        SessionOutcome::Canceled => view(UserState::Canceled, None, None),
        SessionOutcome::Verified => view(UserState::Verified, None, None),
        SessionOutcome::RetryAllowed
        | SessionOutcome::NeedsReview
        | SessionOutcome::AlternativeRequired
        | SessionOutcome::Rejected => {
            let Some(error) = current.last_error_code.clone() else {
                return view(UserState::Pending, None, None);
            };
            let released = review.is_some_and(|r| {
                r.action == ReviewAction::AllowRetry
                    && r.session_id.as_deref() == Some(current.id.as_str())
            });
            let mut step = policy.rule(&error).next_step;
            if step == NextStep::ManualReview && released {
                step = NextStep::Retry;
            }
            let step = policy.step_after_attempts(step, attempts_used, attempts_allowed);
            view(UserState::of_step(step), Some(error), Some(step))
        }
    }
}

/// Recompute a user after their sessions changed (the stored review stays). `None` when the
/// view is what was stored. Entering a state that tells someone something (see
/// [`DecisionType::entering`]) is a decision, and so is each new failure while
/// `retry_allowed` (the user may be told how many attempts are left).
pub fn recompute(
    user_ref: &str,
    sessions: &[&SessionRecord],
    stored: Option<&UserRecord>,
    policy: &Policy,
    now_ms: i64,
) -> Option<UserChange> {
    let review = stored.and_then(|u| u.review.as_ref());
    let view = user_view(sessions, review, policy);
    let old = stored.map(|u| &u.view);
    if old == Some(&view) {
        return None;
    }
    let state_changed = old.map(|v| v.state) != Some(view.state);
    let new_failure = view.state == UserState::RetryAllowed
        && old.map(|v| v.attempts_used) != Some(view.attempts_used);
    let decision = DecisionType::entering(view.state)
        .filter(|_| state_changed || new_failure)
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
            assert_eq!(user_view(&refs, None, &p).state, expected, "{sessions:?}");
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
        assert_eq!(user_view(&refs, None, &p).state, UserState::NeedsReview);
        let allow = Review {
            action: ReviewAction::AllowRetry,
            session_id: Some("vs_a".into()),
            attempts_at_review: 3,
        };
        let v = user_view(&refs, Some(&allow), &p);
        assert_eq!((v.state, v.attempts_allowed), (UserState::RetryAllowed, 4));
        let approve = Review {
            action: ReviewAction::Approve,
            ..allow.clone()
        };
        assert_eq!(
            user_view(&refs, Some(&approve), &p).state,
            UserState::Approved
        );
        let reject = Review {
            action: ReviewAction::Reject,
            ..allow
        };
        assert_eq!(
            user_view(&refs, Some(&reject), &p).state,
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
            user_view(&refs, None, &p).state,
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
        let change = recompute("u", &refs, None, &p, 5_000).expect("a new user");
        assert_eq!(change.user.view.state, UserState::Pending);
        assert_eq!(change.user.state_since_ms, 5_000);
        assert_eq!(change.decision, None, "pending tells nobody anything");
        // Nothing changed: nothing to store.
        assert_eq!(recompute("u", &refs, Some(&change.user), &p, 6_000), None);

        let failed = [session(
            "vs_a",
            10,
            Outcome::RetryAllowed,
            Some("document_expired"),
            1,
        )];
        let refs: Vec<&SessionRecord> = failed.iter().collect();
        let change = recompute("u", &refs, Some(&change.user), &p, 7_000).unwrap();
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
        let before = stored(user_view(&refs, None, &p), 1_000);
        let two = [session(
            "vs_a",
            10,
            Outcome::RetryAllowed,
            Some("document_expired"),
            2,
        )];
        let refs: Vec<&SessionRecord> = two.iter().collect();
        let change = recompute("u", &refs, Some(&before), &p, 9_000).unwrap();
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
        let mut before = stored(user_view(&refs, None, &p), 1_000);
        before.review = Some(Review {
            action: ReviewAction::Approve,
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
        let change = recompute("u", &refs, Some(&before), &p, 2_000).unwrap();
        assert_eq!(change.user.view.state, UserState::Approved);
        assert_eq!(change.user.review, before.review);
    }
}
