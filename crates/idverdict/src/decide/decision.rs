//! What a decision says: the body of every callback and bus message about a user (emails are
//! rendered from it). Its serialized form is a public contract: apps verify and parse it.

use serde::{Deserialize, Serialize};
use stripe_webhook::ErrorCode;

use super::next_step::NextStep;
use super::session::SessionRecord;
use super::user::{UserState, UserView};
use super::why::Why;

/// What kind of decision it is (`type` in the body).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionType {
    Verified,
    RetryAllowed,
    NeedsReview,
    AlternativeRequired,
    Rejected,
    Approved,
    Canceled,
    /// The session was redacted: the app may need to forget data too.
    Redacted,
}

impl DecisionType {
    pub const ALL: [DecisionType; 8] = [
        DecisionType::Verified,
        DecisionType::RetryAllowed,
        DecisionType::NeedsReview,
        DecisionType::AlternativeRequired,
        DecisionType::Rejected,
        DecisionType::Approved,
        DecisionType::Canceled,
        DecisionType::Redacted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DecisionType::Verified => "verified",
            DecisionType::RetryAllowed => "retry_allowed",
            DecisionType::NeedsReview => "needs_review",
            DecisionType::AlternativeRequired => "alternative_required",
            DecisionType::Rejected => "rejected",
            DecisionType::Approved => "approved",
            DecisionType::Canceled => "canceled",
            DecisionType::Redacted => "redacted",
        }
    }

    /// The decision that entering a user state makes: every state but `none` and `pending`
    /// tells someone something.
    pub fn entering(state: UserState) -> Option<DecisionType> {
        match state {
            UserState::None | UserState::Pending => None,
            UserState::Verified => Some(DecisionType::Verified),
            UserState::RetryAllowed => Some(DecisionType::RetryAllowed),
            UserState::NeedsReview => Some(DecisionType::NeedsReview),
            UserState::AlternativeRequired => Some(DecisionType::AlternativeRequired),
            UserState::Rejected => Some(DecisionType::Rejected),
            UserState::Approved => Some(DecisionType::Approved),
            UserState::Canceled => Some(DecisionType::Canceled),
        }
    }
}

/// One decision about one user. Field order is the order of the JSON body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Decision {
    /// Stable id of this decision (e.g. `user_1:retry_allowed:vs_123:2`): the same decision
    /// planned twice yields the same reactions once (unique per key, kind and target).
    pub key: String,
    #[serde(rename = "type")]
    pub kind: DecisionType,
    /// The app's `client_reference_id`.
    pub user: Option<String>,
    /// The verification session (`vs_…`) the decision is about.
    pub session: String,
    /// The user's state after the decision.
    pub state: UserState,
    /// Why the user is in that state: the rule, its facts and the deciding session.
    pub why: Option<Why>,
    pub error_code: Option<ErrorCode>,
    /// Stripe's `last_error.reason`: Stripe's own words, which Stripe says may be shown to the
    /// user.
    pub reason: Option<String>,
    /// What went wrong in plain words, for the end user.
    pub explanation: Option<String>,
    pub next_step: Option<NextStep>,
    pub attempts_used: u32,
    pub attempts_left: u32,
    /// How the app resumes, e.g. `POST /v1/users/{ref}/verification_sessions`.
    pub resume: Option<String>,
    /// Who decided, for operator decisions.
    pub reviewer: Option<String>,
    /// The operator's note.
    pub note: Option<String>,
    /// Unix seconds.
    pub occurred_at: i64,
    /// The end user's locale, on email reactions only (from `email.locale_metadata_key`):
    /// which templates render the mail. Absent from callbacks and bus messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

impl Decision {
    /// A decision of `kind` about a user's view, made at `now_ms`; `None` while the user has no
    /// session to speak of.
    pub fn about_user(
        user_ref: &str,
        view: &UserView,
        sessions: &[&SessionRecord],
        kind: DecisionType,
        now_ms: i64,
    ) -> Option<Decision> {
        let session = view.current_session.clone()?;
        let current = sessions.iter().find(|s| s.id == session);
        Some(Decision {
            key: format!(
                "{user_ref}:{}:{session}:{}",
                view.state.as_str(),
                view.attempts_used
            ),
            kind,
            user: Some(user_ref.to_string()),
            session,
            state: view.state,
            why: view.why.clone(),
            error_code: view.error_code.clone(),
            // Stripe's reason explains the error: a decision without one (an approval, a
            // verification) must not carry an earlier failure's reason.
            reason: view
                .error_code
                .as_ref()
                .and(current.and_then(|s| s.last_error_reason.clone())),
            explanation: view
                .error_code
                .as_ref()
                .map(|c| c.explanation().to_string()),
            next_step: view.next_step,
            attempts_used: view.attempts_used,
            attempts_left: view.attempts_allowed.saturating_sub(view.attempts_used),
            resume: (view.state == UserState::RetryAllowed)
                .then(|| format!("POST /v1/users/{user_ref}/verification_sessions")),
            reviewer: None,
            note: None,
            occurred_at: now_ms / 1000,
            locale: None,
        })
    }

    /// A session was redacted; `user` is its user's view afterwards (`None` without a user:
    /// the state is then `none`).
    pub fn redacted(session: &SessionRecord, user: Option<&UserView>, now_ms: i64) -> Decision {
        Decision {
            key: format!("{}:redacted", session.id),
            kind: DecisionType::Redacted,
            user: session.user_ref.clone(),
            session: session.id.clone(),
            state: user.map_or(UserState::None, |u| u.state),
            why: user.and_then(|u| u.why.clone()),
            error_code: None,
            reason: None,
            explanation: None,
            next_step: None,
            attempts_used: 0,
            attempts_left: 0,
            resume: None,
            reviewer: None,
            note: None,
            occurred_at: now_ms / 1000,
            locale: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::why::{Rule, StepSource};

    /// The body apps parse: field names, order and values as documented.
    #[test]
    fn the_body_is_the_documented_json() {
        let d = Decision {
            key: "user_123:retry_allowed:vs_1:1".into(),
            kind: DecisionType::RetryAllowed,
            user: Some("user_123".into()),
            session: "vs_1".into(),
            state: UserState::RetryAllowed,
            why: Some(Why::new(
                Rule::ErrorCode {
                    error_code: ErrorCode::DocumentExpired,
                    next_step: NextStep::Retry,
                    step_from: StepSource::BuiltIn,
                    attempts_used: 1,
                    max_attempts: 3,
                },
                Some("vs_1"),
            )),
            error_code: Some(ErrorCode::DocumentExpired),
            reason: Some("expired".into()),
            explanation: Some(ErrorCode::DocumentExpired.explanation().into()),
            next_step: Some(NextStep::Retry),
            attempts_used: 1,
            attempts_left: 2,
            resume: Some("POST /v1/users/user_123/verification_sessions".into()),
            reviewer: None,
            note: None,
            occurred_at: 1_764_100_000,
            locale: None,
        };
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(
            json,
            r#"{"key":"user_123:retry_allowed:vs_1:1","type":"retry_allowed","user":"user_123","session":"vs_1","state":"retry_allowed","why":{"rule":"error_code","error_code":"document_expired","next_step":"retry","step_from":"built_in","attempts_used":1,"max_attempts":3,"session":"vs_1"},"error_code":"document_expired","reason":"expired","explanation":"The identity document has expired.","next_step":"retry","attempts_used":1,"attempts_left":2,"resume":"POST /v1/users/user_123/verification_sessions","reviewer":null,"note":null,"occurred_at":1764100000}"#
        );
        let back: Decision = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn an_approval_carries_no_reason_of_the_failure_before_it() {
        use crate::decide::user::{user_view, Review};
        use crate::decide::{Policy, ReviewAction, SessionOutcome};
        let failed = SessionRecord {
            id: "vs_1".into(),
            user_ref: Some("u".into()),
            status: stripe_webhook::SessionStatus::RequiresInput,
            session_type: None,
            livemode: false,
            metadata: Default::default(),
            last_error_code: Some(ErrorCode::SelfieManipulated),
            last_error_reason: Some("The selfie was manipulated.".into()),
            last_report_id: None,
            redaction_status: None,
            failed_attempts: 1,
            status_event_created: 10,
            status_rank: 0,
            session_created: 10,
            outcome: SessionOutcome::NeedsReview,
            next_step: Some(NextStep::ManualReview),
            failure_codes: vec![ErrorCode::SelfieManipulated],
        };
        let sessions = [&failed];
        let policy = Policy::default();
        let review = |action| Review {
            action,
            by: "ops".into(),
            at_ms: 20,
            session_id: Some("vs_1".into()),
            attempts_at_review: 1,
        };
        let decide = |review: Option<&Review>, kind| {
            let view = user_view(&sessions, review, &Default::default(), &policy);
            Decision::about_user("u", &view, &sessions, kind, 0).unwrap()
        };
        let queued = decide(None, DecisionType::NeedsReview);
        assert_eq!(
            queued.reason.as_deref(),
            Some("The selfie was manipulated.")
        );
        let approved = decide(Some(&review(ReviewAction::Approve)), DecisionType::Approved);
        assert_eq!((approved.error_code, approved.reason), (None, None));
    }

    #[test]
    fn every_state_but_none_and_pending_is_a_decision_of_the_same_name() {
        for state in UserState::ALL {
            match DecisionType::entering(state) {
                None => assert!(matches!(state, UserState::None | UserState::Pending)),
                Some(kind) => assert_eq!(kind.as_str(), state.as_str()),
            }
        }
    }
}
