//! What each `last_error.code` means and what should happen next. This is the built-in table;
//! every known code has an entry, and unknown future codes fall back to a manual review (a
//! human looks before anyone is told to try again).

use serde::{Deserialize, Serialize};
use stripe_webhook::ErrorCode;

/// The next step after a failed verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NextStep {
    /// The user can fix it and submit again (same session, fresh `url`).
    Retry,
    /// Identity verification by Stripe cannot work for this user; offer another way.
    AlternativeMethod,
    /// A person should look at the session before anything else happens.
    ManualReview,
    /// The user cannot be verified (e.g. under age); no retry, no alternative.
    Reject,
}

impl NextStep {
    pub fn as_str(self) -> &'static str {
        match self {
            NextStep::Retry => "retry",
            NextStep::AlternativeMethod => "alternative_method",
            NextStep::ManualReview => "manual_review",
            NextStep::Reject => "reject",
        }
    }

    pub fn parse(s: &str) -> Option<NextStep> {
        match s {
            "retry" => Some(NextStep::Retry),
            "alternative_method" => Some(NextStep::AlternativeMethod),
            "manual_review" => Some(NextStep::ManualReview),
            "reject" => Some(NextStep::Reject),
            _ => None,
        }
    }
}

/// The built-in next step for a code (the operator's policy may override it).
pub fn default_next_step(code: &ErrorCode) -> NextStep {
    use ErrorCode::*;
    match code {
        // The user can correct these themselves: another photo, another document, another go.
        Abandoned
        | DocumentExpired
        | DocumentTypeNotSupported
        | DocumentUnverifiedOther
        | EmailUnverifiedOther
        | EmailVerificationDeclined
        | IdNumberInsufficientDocumentData
        | IdNumberMismatch
        | IdNumberUnverifiedOther
        | PhoneUnverifiedOther
        | PhoneVerificationDeclined
        | SelfieDocumentMissingPhoto
        | SelfieUnverifiedOther
        // The address did not match global databases: the user can correct what they typed.
        | AddressMismatch => NextStep::Retry,
        // Retrying cannot change these: the user refused, or their device/country is out.
        ConsentDeclined | CountryNotSupported | DeviceNotSupported => NextStep::AlternativeMethod,
        // Possible fraud: a person decides, never an automatic retry.
        SelfieFaceMismatch | SelfieManipulated => NextStep::ManualReview,
        // The user is below the age of majority: nothing they can do changes that.
        UnderSupportedAge => NextStep::Reject,
        Unknown(_) => NextStep::ManualReview,
    }
}

/// What the user should be told to do, in plain words.
pub fn guidance(step: NextStep) -> &'static str {
    match step {
        NextStep::Retry => {
            "The user can try again: open the session again to get a fresh link and resubmit."
        }
        NextStep::AlternativeMethod => "Offer the user another way to verify their identity.",
        NextStep::ManualReview => {
            "An operator should review this verification before the user continues."
        }
        NextStep::Reject => "The user cannot be verified; do not offer another attempt.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_code_has_a_step_and_explanation() {
        for code in ErrorCode::ALL.iter() {
            let step = default_next_step(code);
            assert!(!code.explanation().is_empty(), "{code:?}");
            assert_eq!(NextStep::parse(step.as_str()), Some(step));
        }
    }

    #[test]
    fn choices_users_rely_on() {
        assert_eq!(
            default_next_step(&ErrorCode::DocumentExpired),
            NextStep::Retry
        );
        assert_eq!(
            default_next_step(&ErrorCode::ConsentDeclined),
            NextStep::AlternativeMethod
        );
        assert_eq!(
            default_next_step(&ErrorCode::DeviceNotSupported),
            NextStep::AlternativeMethod
        );
        assert_eq!(
            default_next_step(&ErrorCode::SelfieManipulated),
            NextStep::ManualReview
        );
        assert_eq!(
            default_next_step(&ErrorCode::Unknown("brand_new".into())),
            NextStep::ManualReview
        );
    }
}
