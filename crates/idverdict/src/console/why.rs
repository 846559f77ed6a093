//! Why a user is in their state, in words, from the facts the user view carries today: the
//! rule of the state table that holds, and its facts ("3 of 3 attempts used → on_exhausted =
//! needs_review"). One function the case page and the queue call, so a structured
//! explanation from `decide/` can replace it in one place.

use crate::decide::policy::Exhausted;
use crate::decide::{NextStep, Policy, SessionOutcome, SessionRecord, UserRecord, UserState};
use crate::store::ReviewRow;

/// The rule that holds, and the facts behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Why {
    pub rule: String,
    pub facts: Vec<String>,
}

fn on_exhausted(policy: &Policy) -> &'static str {
    match policy.on_exhausted {
        Exhausted::NeedsReview => "needs_review",
        Exhausted::AlternativeRequired => "alternative_required",
    }
}

/// The failure rule of a user whose newest session failed: the step the code leads to, or the
/// attempt limit when retrying ran out.
fn failure_rule(user: &UserRecord, policy: &Policy) -> Option<String> {
    let code = user.view.error_code.as_ref()?;
    let rule = policy.rule(code);
    let used = user.view.attempts_used;
    let allowed = user.view.attempts_allowed;
    if rule.next_step == NextStep::Retry && used >= allowed {
        return Some(format!(
            "{used} of {allowed} attempts used → on_exhausted = {}",
            on_exhausted(policy)
        ));
    }
    Some(format!(
        "{} → next step {} (policy)",
        code.as_str(),
        rule.next_step.as_str()
    ))
}

/// One line for the review queue: why this case is waiting.
pub fn queue_reason(user: &UserRecord, policy: &Policy) -> String {
    failure_rule(user, policy).unwrap_or_else(|| user.view.state.as_str().to_string())
}

/// The state and why. `sessions` newest first, `reviews` oldest first.
pub fn explain(
    user: Option<&UserRecord>,
    sessions: &[SessionRecord],
    reviews: &[ReviewRow],
    policy: &Policy,
) -> Why {
    let Some(user) = user else {
        return Why {
            rule: if sessions.is_empty() {
                "no sessions → none".into()
            } else {
                "sessions received, not yet processed".into()
            },
            facts: Vec::new(),
        };
    };
    let v = &user.view;
    let mut facts = vec![format!(
        "attempts used {} of {} allowed",
        v.attempts_used, v.attempts_allowed
    )];
    if let Some(s) = &v.current_session {
        facts.push(format!("newest session {s}"));
    }
    let latest_review = reviews.last();
    let rule = match v.state {
        UserState::Approved | UserState::Rejected
            if latest_review.is_some_and(|r| r.action == "approve" || r.action == "reject") =>
        {
            let r = latest_review.map(|r| (r.action.as_str(), r.reviewer.as_str()));
            let (action, by) = r.unwrap_or_default();
            format!("latest review {action} by {by} → {}", v.state.as_str())
        }
        UserState::Verified => {
            let s = sessions
                .iter()
                .find(|s| s.outcome == SessionOutcome::Verified)
                .map(|s| s.id.as_str())
                .unwrap_or("a session");
            format!("{s} verified → verified")
        }
        UserState::None => "no sessions → none".into(),
        UserState::Pending => "newest session awaiting input or processing → pending".into(),
        UserState::Canceled => "newest session canceled → canceled".into(),
        _ => failure_rule(user, policy)
            .map(|r| format!("{r} → {}", v.state.as_str()))
            .unwrap_or_else(|| v.state.as_str().to_string()),
    };
    if let Some(r) = latest_review.filter(|r| r.action == "allow_retry") {
        facts.push(format!(
            "allow_retry by {} raised the limit to {}",
            r.reviewer, v.attempts_allowed
        ));
    }
    if let Some(code) = &v.error_code {
        facts.push(format!("{}: {}", code.as_str(), code.explanation()));
    }
    Why { rule, facts }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::user::user_view;
    use stripe_webhook::ErrorCode;

    fn failed(code: ErrorCode, attempts: u32) -> SessionRecord {
        SessionRecord {
            last_error_code: Some(code),
            failed_attempts: attempts,
            outcome: SessionOutcome::RetryAllowed,
            ..SessionRecord::example("vs_a")
        }
    }

    fn user_of(sessions: &[SessionRecord]) -> UserRecord {
        let refs: Vec<&SessionRecord> = sessions.iter().collect();
        UserRecord {
            user_ref: "u".into(),
            view: user_view(&refs, None, &Policy::default()),
            state_since_ms: 0,
            review: None,
            updated_at_ms: 0,
        }
    }

    #[test]
    fn exhaustion_and_manual_review_say_their_rule() {
        let p = Policy::default();
        let s = [failed(ErrorCode::DocumentExpired, 3)];
        let u = user_of(&s);
        assert_eq!(u.view.state, UserState::NeedsReview);
        assert_eq!(
            explain(Some(&u), &s, &[], &p).rule,
            "3 of 3 attempts used → on_exhausted = needs_review → needs_review"
        );
        assert_eq!(
            queue_reason(&u, &p),
            "3 of 3 attempts used → on_exhausted = needs_review"
        );
        let s = [failed(ErrorCode::SelfieManipulated, 1)];
        let u = user_of(&s);
        assert_eq!(
            queue_reason(&u, &p),
            "selfie_manipulated → next step manual_review (policy)"
        );
        assert_eq!(explain(None, &[], &[], &p).rule, "no sessions → none");
    }
}
