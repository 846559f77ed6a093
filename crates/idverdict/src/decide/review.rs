//! An operator's review of a user: `approve`, `reject`, or `allow_retry` (one more attempt,
//! releasing the session that waits for review). The review changes the user's state through
//! the same state function as events, and is always a decision of its own.

use super::decision::{Decision, DecisionType};
use super::policy::Policy;
use super::session::SessionRecord;
use super::user::{user_view, Review, ReviewAction, UserChange, UserRecord, UserState};

/// Why a review cannot be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewRefused {
    /// `allow_retry` needs a user waiting in `needs_review`; this is their state.
    NotReviewable(UserState),
}

/// Apply `action` by `reviewer` to a stored user with these sessions, at `now_ms`.
pub fn review(
    stored: &UserRecord,
    sessions: &[&SessionRecord],
    action: ReviewAction,
    reviewer: &str,
    note: Option<&str>,
    policy: &Policy,
    now_ms: i64,
) -> Result<UserChange, ReviewRefused> {
    if action == ReviewAction::AllowRetry && stored.view.state != UserState::NeedsReview {
        return Err(ReviewRefused::NotReviewable(stored.view.state));
    }
    let review = Review {
        action,
        session_id: stored.view.current_session.clone(),
        attempts_at_review: stored.view.attempts_used,
    };
    let view = user_view(sessions, Some(&review), policy);
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
