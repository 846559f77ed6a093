//! Why a user is in their state, in words: the case page and the queue render the structured
//! explanation `decide` computes with the state (`decide::why`, stored with the user and
//! carried by `GET /v1/users/{ref}`), and show its JSON too.

use crate::decide::policy::Exhausted;
use crate::decide::why::{Rule, StepSource, Why};
use crate::decide::{UserRecord, UserState};

use super::format::datetime_ms;

/// The rule that holds, its facts, and the explanation as the API carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhyView {
    pub rule: String,
    pub facts: Vec<String>,
    pub json: String,
}

fn on_exhausted(e: Exhausted) -> &'static str {
    match e {
        Exhausted::NeedsReview => "needs_review",
        Exhausted::AlternativeRequired => "alternative_required",
    }
}

fn step_from(s: StepSource) -> &'static str {
    match s {
        StepSource::BuiltIn => "built-in table",
        StepSource::Policy => "your [policy.codes]",
        StepSource::UnknownCode => "policy.unknown_code: a code this version does not know",
    }
}

/// A value's snake_case name, as its JSON says it.
fn word<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The rule in one line, ending in the state it leads to.
fn rule_line(why: &Why, state: UserState) -> String {
    let state = state.as_str();
    let session = why.session.as_deref().unwrap_or("the newest session");
    match &why.rule {
        Rule::Review {
            action, by, at_ms, ..
        } => format!(
            "review {} by {by} at {} → {state}",
            action.as_str(),
            datetime_ms(*at_ms)
        ),
        Rule::Verified { expectations } => match expectations {
            Some(_) => format!("{session} verified and matched what was expected → {state}"),
            None => format!("{session} verified → {state}"),
        },
        Rule::FraudHold {
            error_code,
            flagged_session,
        } => format!(
            "{session} verified after a fraud signal ({} on {flagged_session}): held for review → {state}",
            error_code.as_str()
        ),
        Rule::CheckingExpectations => {
            format!("{session} verified; comparing it with what was expected → {state}")
        }
        Rule::Expectation {
            field,
            result,
            reason,
            action,
            ..
        } => format!(
            "expected {}: {} ({reason}) → {} → {state}",
            field.as_str(),
            word(result),
            word(action)
        ),
        Rule::NoSessions => format!("no sessions → {state}"),
        Rule::InProgress { status } => {
            format!("newest session {session} is {} → {state}", status.as_str())
        }
        Rule::Canceled => format!("newest session {session} canceled → {state}"),
        Rule::ErrorCode {
            error_code,
            next_step,
            step_from: from,
            ..
        } => format!(
            "{} → next step {} ({}) → {state}",
            error_code.as_str(),
            next_step.as_str(),
            step_from(*from)
        ),
        Rule::AttemptsExhausted {
            attempts_used,
            max_attempts,
            on_exhausted: e,
            ..
        } => format!(
            "{attempts_used} of {max_attempts} attempts used → on_exhausted = {} → {state}",
            on_exhausted(*e)
        ),
    }
}

/// One line for the review queue: why this case is waiting.
pub fn queue_reason(user: &UserRecord) -> String {
    match &user.view.why {
        Some(why) => rule_line(why, user.view.state),
        None => user.view.state.as_str().to_string(),
    }
}

/// The state and why, for the case page.
pub fn explain(user: Option<&UserRecord>, has_sessions: bool) -> WhyView {
    let Some(user) = user else {
        return WhyView {
            rule: if has_sessions {
                "sessions received, not yet processed".into()
            } else {
                "no sessions → none".into()
            },
            facts: Vec::new(),
            json: String::new(),
        };
    };
    let v = &user.view;
    let mut facts = vec![format!(
        "attempts used {} of {} allowed",
        v.attempts_used, v.attempts_allowed
    )];
    if let Some(code) = &v.error_code {
        facts.push(format!("{}: {}", code.as_str(), code.explanation()));
    }
    match &v.why {
        Some(why) => WhyView {
            rule: rule_line(why, v.state),
            facts,
            json: serde_json::to_string(why).unwrap_or_default(),
        },
        None => WhyView {
            rule: v.state.as_str().to_string(),
            facts,
            json: String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::user::{user_view, Checks};
    use crate::decide::{Policy, SessionOutcome, SessionRecord};
    use stripe_webhook::ErrorCode;

    fn user_of(code: ErrorCode, attempts: u32) -> UserRecord {
        let s = SessionRecord {
            last_error_code: Some(code),
            failed_attempts: attempts,
            outcome: SessionOutcome::RetryAllowed,
            ..SessionRecord::example("vs_a")
        };
        UserRecord {
            user_ref: "u".into(),
            view: user_view(&[&s], None, &Checks::default(), &Policy::default()),
            state_since_ms: 0,
            review: None,
            updated_at_ms: 0,
        }
    }

    #[test]
    fn each_rule_reads_as_a_sentence() {
        let u = user_of(ErrorCode::DocumentExpired, 3);
        assert_eq!(
            queue_reason(&u),
            "3 of 3 attempts used → on_exhausted = needs_review → needs_review"
        );
        let why = explain(Some(&u), true);
        assert!(
            why.json.contains(r#""rule":"attempts_exhausted""#),
            "{}",
            why.json
        );
        assert_eq!(why.facts[0], "attempts used 3 of 3 allowed");
        let u = user_of(ErrorCode::SelfieManipulated, 1);
        assert_eq!(
            queue_reason(&u),
            "selfie_manipulated → next step manual_review (built-in table) → needs_review"
        );
        assert_eq!(explain(None, false).rule, "no sessions → none");
    }
}
