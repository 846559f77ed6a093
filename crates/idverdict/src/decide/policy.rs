//! The operator's policy: per `last_error.code`, the next step and whether the failure counts as
//! an attempt; how many attempts a user gets; what happens when they run out. Read from the
//! `[policy]` table of the configuration file, checked once at start-up.
//!
//! ```toml
//! [policy]
//! max_attempts = 3
//! on_exhausted = "needs_review"        # or "alternative_required"
//! unknown_code = "manual_review"       # next step for codes Stripe adds later
//! user_metadata_key = "user_id"        # who the user is when client_reference_id is empty
//!
//! [policy.codes.abandoned]
//! next_step = "retry"
//! counts_as_attempt = false
//!
//! [policy.codes.selfie_face_mismatch]
//! hold_for_review = true               # a later verification waits for a reviewer
//! ```

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use stripe_webhook::ErrorCode;

use super::expectations::{ExpectationPolicy, ExpectationsTable};
use super::next_step::{default_next_step, NextStep};
use super::why::StepSource;

/// What running out of attempts leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exhausted {
    NeedsReview,
    AlternativeRequired,
}

/// The rule for one error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeRule {
    pub next_step: NextStep,
    pub counts_as_attempt: bool,
    /// A fraud signal: once a session of the user failed with this code, a later verified
    /// session leaves the user in `needs_review` until a reviewer approves or rejects.
    pub hold_for_review: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Failed attempts (over all of a user's sessions) after which retrying stops.
    pub max_attempts: u32,
    pub on_exhausted: Exhausted,
    pub unknown_code: NextStep,
    /// Metadata key naming the user when a session has no `client_reference_id`.
    pub user_metadata_key: Option<String>,
    /// `[policy.expectations]`: rules for every verified session, and what a mismatch or an
    /// unavailable value leads to.
    pub expectations: ExpectationPolicy,
    overrides: HashMap<ErrorCode, CodeRule>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_attempts: 3,
            on_exhausted: Exhausted::NeedsReview,
            unknown_code: NextStep::ManualReview,
            user_metadata_key: Some("user_id".to_string()),
            expectations: ExpectationPolicy::default(),
            overrides: HashMap::new(),
        }
    }
}

/// Built-in rule for a code: the next step from the table in `next_step.rs`; every failure
/// counts as an attempt except `abandoned` (the user never submitted anything); only
/// `selfie_manipulated` holds a later verification for review. A manipulated selfie is
/// tampering, never a capture accident, so a success that follows it is exactly what a person
/// should look at. `selfie_face_mismatch` is not held by default: it is mostly light, glasses
/// or an old document photo, its next step already sends the user to a reviewer before any
/// retry, and a hold would have the reviewer decide twice about one honest person.
fn builtin(code: &ErrorCode) -> CodeRule {
    CodeRule {
        next_step: default_next_step(code),
        counts_as_attempt: !matches!(code, ErrorCode::Abandoned),
        hold_for_review: matches!(code, ErrorCode::SelfieManipulated),
    }
}

impl Policy {
    /// The rule for a `last_error.code`: the operator's override, else the built-in one; a
    /// code this version does not know gets `unknown_code` and counts as an attempt.
    pub fn rule(&self, code: &ErrorCode) -> CodeRule {
        if let Some(rule) = self.overrides.get(code) {
            return *rule;
        }
        match code {
            ErrorCode::Unknown(_) => CodeRule {
                next_step: self.unknown_code,
                counts_as_attempt: true,
                hold_for_review: false,
            },
            known => builtin(known),
        }
    }

    /// Where the step for `code` comes from (for the why of a state).
    pub fn step_source(&self, code: &ErrorCode) -> StepSource {
        if self.overrides.contains_key(code) {
            StepSource::Policy
        } else if code.is_unknown() {
            StepSource::UnknownCode
        } else {
            StepSource::BuiltIn
        }
    }

    /// The state exhaustion leads to.
    pub fn exhausted_step(&self) -> NextStep {
        match self.on_exhausted {
            Exhausted::NeedsReview => NextStep::ManualReview,
            Exhausted::AlternativeRequired => NextStep::AlternativeMethod,
        }
    }

    /// The step once attempts are taken into account: a `retry` with no attempt left
    /// (`used >= allowed`) becomes what `on_exhausted` says.
    pub fn step_after_attempts(&self, step: NextStep, used: u32, allowed: u32) -> NextStep {
        if step != NextStep::Retry || used < allowed {
            return step;
        }
        self.exhausted_step()
    }

    /// Validate the `[policy]` table (`None`: the defaults). Errors name the key at fault.
    pub fn from_toml(table: Option<&PolicyTable>) -> Result<Policy, PolicyError> {
        let mut policy = Policy::default();
        let Some(raw) = table else {
            return Ok(policy);
        };
        if let Some(n) = raw.max_attempts {
            if !(1..=100).contains(&n) {
                return Err(PolicyError::new(
                    "policy.max_attempts",
                    "must be between 1 and 100",
                ));
            }
            policy.max_attempts = n;
        }
        if let Some(e) = raw.on_exhausted {
            policy.on_exhausted = e;
        }
        if let Some(step) = &raw.unknown_code {
            policy.unknown_code = parse_step(step).ok_or_else(|| {
                PolicyError::new(
                    "policy.unknown_code",
                    format!("`{step}` is not one of {STEPS}"),
                )
            })?;
        }
        if let Some(key) = &raw.user_metadata_key {
            policy.user_metadata_key = (!key.is_empty()).then(|| key.clone());
        }
        if let Some(table) = &raw.expectations {
            policy.expectations = table
                .resolve()
                .map_err(|(key, message)| PolicyError::new(key, message))?;
        }
        for (name, rule) in &raw.codes {
            let code = ErrorCode::from(name.as_str());
            if code.is_unknown() {
                return Err(PolicyError::new(
                    format!("policy.codes.{name}"),
                    "not a Stripe Identity last_error code",
                ));
            }
            let default = policy.rule(&code);
            let next_step = match &rule.next_step {
                Some(step) => parse_step(step).ok_or_else(|| {
                    PolicyError::new(
                        format!("policy.codes.{name}.next_step"),
                        format!("`{step}` is not one of {STEPS}"),
                    )
                })?,
                None => default.next_step,
            };
            policy.overrides.insert(
                code,
                CodeRule {
                    next_step,
                    counts_as_attempt: rule.counts_as_attempt.unwrap_or(default.counts_as_attempt),
                    hold_for_review: rule.hold_for_review.unwrap_or(default.hold_for_review),
                },
            );
        }
        Ok(policy)
    }
}

/// A `[policy]` value that is not valid: the dotted key and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct PolicyError {
    pub key: String,
    pub message: String,
}

impl PolicyError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> PolicyError {
        PolicyError {
            key: key.into(),
            message: message.into(),
        }
    }
}

const STEPS: &str = "retry, alternative_method, manual_review, reject";

fn parse_step(s: &str) -> Option<NextStep> {
    NextStep::parse(s)
}

/// The `[policy]` table as written in the configuration file, checked by [`Policy::from_toml`].
/// The configuration loader reads it with the rest of the file (so TOML errors carry their
/// line) and sets `max_attempts` from `IDVERDICT_MAX_ATTEMPTS`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyTable {
    pub max_attempts: Option<u32>,
    pub on_exhausted: Option<Exhausted>,
    pub unknown_code: Option<String>,
    pub user_metadata_key: Option<String>,
    #[serde(default)]
    pub codes: BTreeMap<String, CodeTable>,
    pub expectations: Option<ExpectationsTable>,
}

/// One `[policy.codes.<code>]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeTable {
    pub next_step: Option<String>,
    pub counts_as_attempt: Option<bool>,
    pub hold_for_review: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Policy, String> {
        #[derive(Deserialize)]
        struct File {
            policy: Option<PolicyTable>,
        }
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        Policy::from_toml(file.policy.as_ref()).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_users_rely_on() {
        let p = Policy::default();
        assert_eq!(p.max_attempts, 3);
        assert_eq!(
            p.rule(&ErrorCode::from("abandoned")),
            CodeRule {
                next_step: NextStep::Retry,
                counts_as_attempt: false,
                hold_for_review: false,
            }
        );
        assert_eq!(
            p.rule(&ErrorCode::from("selfie_manipulated")),
            CodeRule {
                next_step: NextStep::ManualReview,
                counts_as_attempt: true,
                hold_for_review: true,
            }
        );
        let held: Vec<&ErrorCode> = ErrorCode::ALL
            .iter()
            .filter(|c| p.rule(c).hold_for_review)
            .collect();
        assert_eq!(held, vec![&ErrorCode::SelfieManipulated]);
        assert_eq!(
            p.rule(&ErrorCode::from("consent_declined")).next_step,
            NextStep::AlternativeMethod
        );
        assert_eq!(
            p.rule(&ErrorCode::from("device_not_supported")).next_step,
            NextStep::AlternativeMethod
        );
        assert_eq!(
            p.rule(&ErrorCode::from("country_not_supported")).next_step,
            NextStep::AlternativeMethod
        );
        assert_eq!(
            p.rule(&ErrorCode::from("under_supported_age")).next_step,
            NextStep::Reject
        );
        assert_eq!(
            p.rule(&ErrorCode::from("document_expired")),
            CodeRule {
                next_step: NextStep::Retry,
                counts_as_attempt: true,
                hold_for_review: false,
            }
        );
        assert_eq!(
            p.rule(&ErrorCode::from("a_future_code")).next_step,
            NextStep::ManualReview
        );
        // The address check's code (from Stripe's outcomes guide, not yet in the SDKs): the
        // user can correct the address, and it counts as an attempt.
        assert_eq!(
            p.rule(&ErrorCode::from("address_mismatch")),
            CodeRule {
                next_step: NextStep::Retry,
                counts_as_attempt: true,
                hold_for_review: false,
            }
        );
        assert_eq!(
            parse("[policy.codes.address_mismatch]\nnext_step = \"manual_review\"\n")
                .unwrap()
                .rule(&ErrorCode::AddressMismatch)
                .next_step,
            NextStep::ManualReview
        );
    }

    #[test]
    fn every_code_has_a_rule_and_overrides_apply() {
        let p = parse("[policy]\nmax_attempts = 5\non_exhausted = \"alternative_required\"\nunknown_code = \"retry\"\n[policy.codes.selfie_face_mismatch]\nnext_step = \"retry\"\ncounts_as_attempt = false\nhold_for_review = true\n").unwrap();
        assert_eq!(p.max_attempts, 5);
        assert_eq!(p.on_exhausted, Exhausted::AlternativeRequired);
        assert_eq!(
            p.rule(&ErrorCode::from("new_code")).next_step,
            NextStep::Retry
        );
        assert_eq!(
            p.rule(&ErrorCode::from("selfie_face_mismatch")),
            CodeRule {
                next_step: NextStep::Retry,
                counts_as_attempt: false,
                hold_for_review: true,
            }
        );
        // Codes without an override keep their built-in rule.
        for code in ErrorCode::ALL
            .iter()
            .filter(|c| **c != ErrorCode::SelfieFaceMismatch)
        {
            assert_eq!(p.rule(code), builtin(code), "{code}");
        }
    }

    #[test]
    fn running_out_of_attempts_turns_only_retry_into_on_exhausted() {
        let p = Policy::default();
        assert_eq!(
            p.step_after_attempts(NextStep::Retry, 2, 3),
            NextStep::Retry
        );
        assert_eq!(
            p.step_after_attempts(NextStep::Retry, 3, 3),
            NextStep::ManualReview
        );
        assert_eq!(
            p.step_after_attempts(NextStep::Reject, 9, 3),
            NextStep::Reject
        );
        let p = parse("[policy]\non_exhausted = \"alternative_required\"\n").unwrap();
        assert_eq!(
            p.step_after_attempts(NextStep::Retry, 4, 3),
            NextStep::AlternativeMethod
        );
    }

    #[test]
    fn invalid_policy_names_the_key() {
        for (text, key) in [
            ("[policy]\nmax_attempts = 0\n", "policy.max_attempts"),
            (
                "[policy.codes.nonsense]\nnext_step = \"retry\"\n",
                "policy.codes.nonsense",
            ),
            (
                "[policy.codes.document_expired]\nnext_step = \"pray\"\n",
                "policy.codes.document_expired.next_step",
            ),
            ("[policy]\nunknown_code = \"x\"\n", "policy.unknown_code"),
            ("[policy]\nmax_atempts = 2\n", "max_atempts"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(key), "{err} should name {key}");
        }
    }
}
