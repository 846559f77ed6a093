//! An operator's review of a user: `approve`, `reject`, or `allow_retry` (one more attempt,
//! releasing the session that waits for review). The review changes the user's state through
//! the same state function as events, and is always a decision of its own.

use super::decision::{Decision, DecisionType};
use super::policy::Policy;
use super::session::{SessionOutcome, SessionRecord};
use super::user::{user_view, Checks, Review, ReviewAction, UserChange, UserRecord, UserState};

/// Why a review cannot be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewRefused {
    /// `allow_retry` needs a user waiting in `needs_review`; this is their state.
    NotReviewable(UserState),
    /// `allow_retry` for a user who has a verified session (held for review after a fraud
    /// signal, or for what was expected of it): another attempt cannot change that; approve
    /// or reject.
    VerifiedSessionHeld,
}

/// Whether `action` only repeats the verdict the user's state already reflects: an `approve`
/// or `reject` like the latest review, with nothing changed since (the same current session,
/// the same attempts). Recording it again would announce the same decision twice, so a repeat
/// is answered with the user as they are. `allow_retry` never repeats: each one asks for one
/// more attempt, and a second is refused unless the user is waiting for review again.
pub fn repeats_latest(stored: &UserRecord, action: ReviewAction) -> bool {
    action != ReviewAction::AllowRetry
        && stored.review.as_ref().is_some_and(|latest| {
            latest.action == action
                && latest.session_id == stored.view.current_session
                && latest.attempts_at_review == stored.view.attempts_used
        })
}

/// What a reviewer decided.
#[derive(Debug, Clone, Copy)]
pub struct ReviewRequest<'a> {
    pub action: ReviewAction,
    pub reviewer: &'a str,
    pub note: Option<&'a str>,
}

/// Apply a review to a stored user with these sessions (and checks), at `now_ms`.
pub fn review(
    stored: &UserRecord,
    sessions: &[&SessionRecord],
    checks: &Checks,
    request: ReviewRequest<'_>,
    policy: &Policy,
    now_ms: i64,
) -> Result<UserChange, ReviewRefused> {
    let ReviewRequest {
        action,
        reviewer,
        note,
    } = request;
    if action == ReviewAction::AllowRetry {
        if stored.view.state != UserState::NeedsReview {
            return Err(ReviewRefused::NotReviewable(stored.view.state));
        }
        if sessions
            .iter()
            .any(|s| s.outcome == SessionOutcome::Verified)
        {
            return Err(ReviewRefused::VerifiedSessionHeld);
        }
    }
    let review = Review {
        action,
        by: reviewer.to_string(),
        at_ms: now_ms,
        session_id: stored.view.current_session.clone(),
        attempts_at_review: stored.view.attempts_used,
    };
    let view = user_view(sessions, Some(&review), checks, policy);
    let decision = DecisionType::entering(view.state)
        .and_then(|kind| Decision::about_user(&stored.user_ref, &view, sessions, kind, now_ms))
        .map(|decision| Decision {
            // A review is its own decision even when the state does not change.
            key: format!("{}:review:{}:{now_ms}", stored.user_ref, action.as_str()),
            reviewer: Some(reviewer.to_string()),
            note: note.map(str::to_string),
            ..decision
        });
    let user = UserRecord {
        user_ref: stored.user_ref.clone(),
        state_since_ms: if view.state == stored.view.state {
            stored.state_since_ms
        } else {
            now_ms
        },
        review: Some(review),
        view,
        updated_at_ms: now_ms,
    };
    Ok(UserChange { user, decision })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::user::user_view;
    use crate::decide::DecisionType;
    use stripe_webhook::ErrorCode;

    fn waiting_for_review() -> (SessionRecord, UserRecord) {
        let session = SessionRecord {
            last_error_code: Some(ErrorCode::SelfieManipulated),
            failed_attempts: 1,
            outcome: SessionOutcome::NeedsReview,
            ..SessionRecord::example("vs_a")
        };
        let view = user_view(&[&session], None, &Checks::default(), &Policy::default());
        assert_eq!(view.state, UserState::NeedsReview);
        let user = UserRecord {
            user_ref: "u".into(),
            view,
            state_since_ms: 1_000,
            review: None,
            updated_at_ms: 1_000,
        };
        (session, user)
    }

    #[test]
    fn allow_retry_releases_the_session_with_one_more_attempt_and_says_who() {
        let (session, user) = waiting_for_review();
        let change = review(
            &user,
            &[&session],
            &Checks::default(),
            ReviewRequest {
                action: ReviewAction::AllowRetry,
                reviewer: "alice",
                note: Some("looked fine"),
            },
            &Policy::default(),
            5_000,
        )
        .unwrap();
        assert_eq!(change.user.view.state, UserState::RetryAllowed);
        assert_eq!(change.user.state_since_ms, 5_000);
        let r = change.user.review.as_ref().unwrap();
        assert_eq!(
            (r.session_id.as_deref(), r.attempts_at_review),
            (Some("vs_a"), 1)
        );
        let d = change.decision.unwrap();
        assert_eq!(d.kind, DecisionType::RetryAllowed);
        assert_eq!(d.key, "u:review:allow_retry:5000");
        assert_eq!(
            (d.reviewer.as_deref(), d.note.as_deref()),
            (Some("alice"), Some("looked fine"))
        );
    }

    #[test]
    fn a_review_is_a_decision_even_when_the_state_stays() {
        let (session, mut user) = waiting_for_review();
        user.view.state = UserState::Approved;
        let change = review(
            &user,
            &[&session],
            &Checks::default(),
            ReviewRequest {
                action: ReviewAction::Approve,
                reviewer: "bob",
                note: None,
            },
            &Policy::default(),
            6_000,
        )
        .unwrap();
        assert_eq!(change.user.view.state, UserState::Approved);
        assert_eq!(
            change.user.state_since_ms, 1_000,
            "the state did not change"
        );
        assert_eq!(change.decision.unwrap().kind, DecisionType::Approved);
    }

    #[test]
    fn a_verdict_like_the_latest_with_nothing_changed_is_a_repeat() {
        let (session, user) = waiting_for_review();
        assert!(
            !repeats_latest(&user, ReviewAction::Reject),
            "no review yet"
        );
        let rejected = review(
            &user,
            &[&session],
            &Checks::default(),
            ReviewRequest {
                action: ReviewAction::Reject,
                reviewer: "alice",
                note: None,
            },
            &Policy::default(),
            5_000,
        )
        .unwrap()
        .user;
        assert!(repeats_latest(&rejected, ReviewAction::Reject));
        assert!(!repeats_latest(&rejected, ReviewAction::Approve));
        // Something happened since: a new session, or another attempt.
        let mut moved_on = rejected.clone();
        moved_on.view.current_session = Some("vs_b".into());
        assert!(!repeats_latest(&moved_on, ReviewAction::Reject));
        let mut moved_on = rejected;
        moved_on.view.attempts_used += 1;
        assert!(!repeats_latest(&moved_on, ReviewAction::Reject));
        // Each allow_retry asks for one more attempt: never a repeat.
        let retried = review(
            &user,
            &[&session],
            &Checks::default(),
            ReviewRequest {
                action: ReviewAction::AllowRetry,
                reviewer: "carol",
                note: None,
            },
            &Policy::default(),
            6_000,
        )
        .unwrap()
        .user;
        assert!(!repeats_latest(&retried, ReviewAction::AllowRetry));
    }

    #[test]
    fn allow_retry_needs_a_user_waiting_for_review() {
        let (session, mut user) = waiting_for_review();
        user.view.state = UserState::RetryAllowed;
        assert_eq!(
            review(
                &user,
                &[&session],
                &Checks::default(),
                ReviewRequest {
                    action: ReviewAction::AllowRetry,
                    reviewer: "alice",
                    note: None
                },
                &Policy::default(),
                1
            ),
            Err(ReviewRefused::NotReviewable(UserState::RetryAllowed))
        );
    }
}
