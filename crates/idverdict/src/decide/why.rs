//! The why of a user's state: which row of the user state table decided it, the facts that
//! row looked at, and the session it is about. Computed by [`super::user::user_view`] next to
//! the state, stored with the user, and carried by `GET /v1/users/{ref}` and every decision
//! payload. Its JSON form is a public contract (apps and the console read it):
//!
//! ```json
//! {"rule":"attempts_exhausted","error_code":"document_expired","attempts_used":3,"max_attempts":3,"on_exhausted":"needs_review","session":"vs_…"}
//! ```
//!
//! `rule` names the row; the other keys are that row's facts; `session` is the session that
//! decided it (`null` only for `no_sessions`).

use serde::{Deserialize, Serialize};
use stripe_webhook::{ErrorCode, SessionStatus};

use super::expectations::{Action, CheckResults, Field, FieldResult};
use super::next_step::NextStep;
use super::policy::Exhausted;
use super::user::ReviewAction;

/// A user state with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Why {
    #[serde(flatten)]
    pub rule: Rule,
    /// The session that decided the state.
    pub session: Option<String>,
}

/// The rule (row of the user state table) that produced a state, with its facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Rule {
    /// An operator decided: `approve` or `reject`, or an `allow_retry` that released the
    /// session waiting for review (until that session fails again). `max_attempts` is the
    /// allowance after the review.
    Review {
        action: ReviewAction,
        by: String,
        at_ms: i64,
        attempts_used: u32,
        max_attempts: u32,
    },
    /// A session was verified, but a session of the user failed with a code the policy
    /// holds for review (`flagged_session`, `error_code`): "verified after a fraud signal".
    /// `session` is the verified one. Only a reviewer's `approve` or `reject` ends it.
    FraudHold {
        error_code: ErrorCode,
        flagged_session: String,
    },
    /// A session was verified (and passed the checks of what was expected, whose per-field
    /// results are in `expectations`, when there were any).
    Verified {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expectations: Option<CheckResults>,
    },
    /// A session was verified and its verified outputs are being compared with what was
    /// expected: the user waits (`pending`) until the check is done.
    CheckingExpectations,
    /// A verified session did not match what was expected: `field` (the first field calling
    /// for `action`) had `result`, for `reason` (`name_mismatch`, `under_min_age`,
    /// `country_not_accepted`, …); `expectations` has every field's result.
    Expectation {
        field: Field,
        result: FieldResult,
        reason: String,
        action: Action,
        expectations: CheckResults,
    },
    /// No session of the user has been received.
    NoSessions,
    /// The newest session waits for the user's input or is being processed.
    InProgress { status: SessionStatus },
    /// The newest session was canceled.
    Canceled,
    /// The newest session failed, and the policy's step for its code decided.
    ErrorCode {
        error_code: ErrorCode,
        next_step: NextStep,
        /// Where the step comes from: the built-in table, the operator's `[policy.codes]`,
        /// or `policy.unknown_code` for a code this version does not know.
        step_from: StepSource,
        attempts_used: u32,
        max_attempts: u32,
    },
    /// The newest session failed with a code that allows a retry, but no attempt is left.
    AttemptsExhausted {
        error_code: ErrorCode,
        attempts_used: u32,
        max_attempts: u32,
        on_exhausted: Exhausted,
    },
}

/// Where a failure's next step comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepSource {
    /// idverdict's built-in table.
    BuiltIn,
    /// The operator's `[policy.codes.<code>]`.
    Policy,
    /// `policy.unknown_code`: Stripe sent a code this version does not know.
    UnknownCode,
}

impl Why {
    pub fn new(rule: Rule, session: Option<&str>) -> Why {
        Why {
            rule,
            session: session.map(str::to_string),
        }
    }

    /// The rule's name, as in the JSON (`attempts_exhausted`, `review`, …).
    pub fn rule_name(&self) -> &'static str {
        match self.rule {
            Rule::Review { .. } => "review",
            Rule::FraudHold { .. } => "fraud_hold",
            Rule::Verified { .. } => "verified",
            Rule::CheckingExpectations => "checking_expectations",
            Rule::Expectation { .. } => "expectation",
            Rule::NoSessions => "no_sessions",
            Rule::InProgress { .. } => "in_progress",
            Rule::Canceled => "canceled",
            Rule::ErrorCode { .. } => "error_code",
            Rule::AttemptsExhausted { .. } => "attempts_exhausted",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON apps and the console read: the rule's name, its facts, the session; and back.
    #[test]
    fn the_json_form_is_flat_and_stable() {
        let cases = [
            (
                Why::new(
                    Rule::AttemptsExhausted {
                        error_code: ErrorCode::DocumentExpired,
                        attempts_used: 3,
                        max_attempts: 3,
                        on_exhausted: Exhausted::NeedsReview,
                    },
                    Some("vs_1"),
                ),
                r#"{"rule":"attempts_exhausted","error_code":"document_expired","attempts_used":3,"max_attempts":3,"on_exhausted":"needs_review","session":"vs_1"}"#,
            ),
            (
                Why::new(
                    Rule::Review {
                        action: ReviewAction::AllowRetry,
                        by: "rita".into(),
                        at_ms: 5_000,
                        attempts_used: 3,
                        max_attempts: 4,
                    },
                    Some("vs_1"),
                ),
                r#"{"rule":"review","action":"allow_retry","by":"rita","at_ms":5000,"attempts_used":3,"max_attempts":4,"session":"vs_1"}"#,
            ),
            (
                Why::new(
                    Rule::ErrorCode {
                        error_code: ErrorCode::from("brand_new_code"),
                        next_step: NextStep::ManualReview,
                        step_from: StepSource::UnknownCode,
                        attempts_used: 1,
                        max_attempts: 3,
                    },
                    Some("vs_2"),
                ),
                r#"{"rule":"error_code","error_code":"brand_new_code","next_step":"manual_review","step_from":"unknown_code","attempts_used":1,"max_attempts":3,"session":"vs_2"}"#,
            ),
            (
                Why::new(
                    Rule::InProgress {
                        status: SessionStatus::Processing,
                    },
                    Some("vs_3"),
                ),
                r#"{"rule":"in_progress","status":"processing","session":"vs_3"}"#,
            ),
            (
                Why::new(Rule::NoSessions, None),
                r#"{"rule":"no_sessions","session":null}"#,
            ),
            (
                Why::new(
                    Rule::FraudHold {
                        error_code: ErrorCode::SelfieManipulated,
                        flagged_session: "vs_a".into(),
                    },
                    Some("vs_b"),
                ),
                r#"{"rule":"fraud_hold","error_code":"selfie_manipulated","flagged_session":"vs_a","session":"vs_b"}"#,
            ),
            (
                Why::new(Rule::Verified { expectations: None }, Some("vs_4")),
                r#"{"rule":"verified","session":"vs_4"}"#,
            ),
            (
                Why::new(Rule::CheckingExpectations, Some("vs_5")),
                r#"{"rule":"checking_expectations","session":"vs_5"}"#,
            ),
            (
                Why::new(
                    Rule::Expectation {
                        field: Field::LastName,
                        result: FieldResult::Mismatch,
                        reason: "name_mismatch".into(),
                        action: Action::NeedsReview,
                        expectations: CheckResults::from([
                            (Field::FirstName, FieldResult::Match),
                            (Field::LastName, FieldResult::Mismatch),
                        ]),
                    },
                    Some("vs_6"),
                ),
                r#"{"rule":"expectation","field":"last_name","result":"mismatch","reason":"name_mismatch","action":"needs_review","expectations":{"first_name":"match","last_name":"mismatch"},"session":"vs_6"}"#,
            ),
        ];
        for (why, json) in cases {
            assert_eq!(serde_json::to_string(&why).unwrap(), json);
            let back: Why = serde_json::from_str(json).unwrap();
            assert_eq!(back, why);
            assert!(json.contains(&format!(r#""rule":"{}""#, why.rule_name())));
        }
    }
}
