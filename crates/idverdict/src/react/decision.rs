//! What happened, as the app, the user and the bus should learn it. The serialized form is
//! the body of callbacks and bus messages (the end user's address is never part of it).

/// One decision about one user. Built by the outcome engine inside the decision's
/// transaction; [`super::plan`] fans it out to reactions.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Decision {
    /// Stable id of this decision (e.g. `vs_123:retry_allowed:2`): the same decision planned
    /// twice yields the same reactions once (unique per key, kind and target).
    pub key: String,
    /// `verified`, `retry_allowed`, `needs_review`, `alternative_required`, `rejected`,
    /// `approved`, `canceled` or `redacted`.
    #[serde(rename = "type")]
    pub decision: String,
    /// The app's `client_reference_id`.
    pub user: Option<String>,
    /// The verification session (`vs_…`) the decision is about.
    pub session: String,
    /// The user's outcome state after the decision.
    pub state: String,
    pub error_code: Option<String>,
    /// Stripe's `last_error.reason` (developer-facing).
    pub reason: Option<String>,
    /// What went wrong in plain words, for the end user.
    pub explanation: Option<String>,
    /// `retry`, `alternative_method`, `manual_review` or `reject`.
    pub next_step: Option<String>,
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
    /// The end user's address: the email target, never in a callback or bus body.
    #[serde(skip)]
    pub email: Option<String>,
}

/// The decision types that mail the end user.
pub const EMAIL_DECISIONS: &[&str] = &["retry_allowed", "alternative_required", "verified"];

/// Fields of a stored payload that may carry personal data or free text, removed on
/// redaction. Ids, states, codes, counters and timestamps stay.
pub const PERSONAL_FIELDS: &[&str] = &["reason", "explanation", "note"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_never_serialized() {
        let d = Decision {
            key: "vs_1:verified:0".into(),
            decision: "verified".into(),
            user: Some("u1".into()),
            session: "vs_1".into(),
            state: "verified".into(),
            error_code: None,
            reason: None,
            explanation: None,
            next_step: None,
            attempts_used: 1,
            attempts_left: 2,
            resume: None,
            reviewer: None,
            note: None,
            occurred_at: 1,
            email: Some("jane@example.test".into()),
        };
        let json = serde_json::to_string(&d).unwrap();
        assert!(!json.contains("jane"));
        assert!(json.contains("\"type\":\"verified\""));
        let back: Decision = serde_json::from_str(&json).unwrap();
        assert_eq!(back.email, None);
    }
}
