//! Decide: fold Stripe events into one record per verification session, whatever order they
//! arrive in, and derive the session's outcome. Pure functions, no I/O: the processor loads the
//! current record, calls [`apply`], and stores the result in the same transaction.
//!
//! ## Ordering rule
//! Each status-bearing snapshot gets a position `(event.created, rank)`, where rank orders the
//! statuses of one attempt: `requires_input` without error (0) < `processing` (1) <
//! `requires_input` with an error (2) < `verified`/`canceled` (3). A snapshot changes the status
//! only if its position is later than the one that set the current status, and never once the
//! status is terminal. So a late `processing` cannot undo a failure, and nothing undoes
//! `verified` or `canceled`. Redaction is tracked on its own and is sticky.

pub mod next_step;
pub mod policy;
pub mod user;

use std::collections::BTreeMap;

use serde::Serialize;
use stripe_webhook::{Event, EventType, SessionStatus, VerificationSession};

pub use next_step::{default_next_step, guidance, NextStep};
pub use policy::{CodeRule, Exhausted, Policy};

/// What the app should make of a session right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Created, waiting for the user to submit.
    AwaitingInput,
    /// Submitted; Stripe is checking.
    Processing,
    Verified,
    RetryAllowed,
    NeedsReview,
    AlternativeRequired,
    Rejected,
    Canceled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::AwaitingInput => "awaiting_input",
            Outcome::Processing => "processing",
            Outcome::Verified => "verified",
            Outcome::RetryAllowed => "retry_allowed",
            Outcome::NeedsReview => "needs_review",
            Outcome::AlternativeRequired => "alternative_required",
            Outcome::Rejected => "rejected",
            Outcome::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        [
            Outcome::AwaitingInput,
            Outcome::Processing,
            Outcome::Verified,
            Outcome::RetryAllowed,
            Outcome::NeedsReview,
            Outcome::AlternativeRequired,
            Outcome::Rejected,
            Outcome::Canceled,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// Everything idverdict keeps about one verification session.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub id: String,
    pub user_ref: Option<String>,
    pub status: String,
    pub session_type: Option<String>,
    pub livemode: bool,
    /// Erased when the session is redacted.
    pub metadata: BTreeMap<String, String>,
    pub last_error_code: Option<String>,
    pub last_error_reason: Option<String>,
    pub last_report_id: Option<String>,
    pub redaction_status: Option<String>,
    pub failed_attempts: u32,
    pub status_event_created: i64,
    pub status_rank: i64,
    pub session_created: i64,
    pub outcome: Outcome,
    pub next_step: Option<NextStep>,
}

impl SessionRecord {
    pub fn is_redacted(&self) -> bool {
        self.redaction_status.as_deref() == Some("redacted")
    }

    fn is_terminal(&self) -> bool {
        self.status == "verified" || self.status == "canceled"
    }
}

/// What an event did to its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The event set the session's status.
    Applied,
    /// Older than what we have, or the session was already final: recorded, status unchanged.
    Stale,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Applied => "applied",
            Effect::Stale => "stale",
        }
    }
}

/// The position of a snapshot within the session's life (see the module docs).
fn rank(session: &VerificationSession) -> Option<i64> {
    match &session.status {
        SessionStatus::RequiresInput => Some(if has_error(session) { 2 } else { 0 }),
        SessionStatus::Processing => Some(1),
        SessionStatus::Verified | SessionStatus::Canceled => Some(3),
        SessionStatus::Unknown(_) => None,
    }
}

fn has_error(session: &VerificationSession) -> bool {
    session
        .last_error
        .as_ref()
        .and_then(|e| e.code.as_ref())
        .is_some()
}

/// The key that makes one failed attempt count once: the verification report it produced, or,
/// for failures without a report (e.g. `abandoned`), the code and the time of the event.
/// `None` when the event is not a failure, or the policy says this code does not count.
pub fn attempt_key(
    event: &Event,
    session: &VerificationSession,
    policy: &Policy,
) -> Option<(String, String)> {
    if session.status != SessionStatus::RequiresInput {
        return None;
    }
    let code = session
        .last_error
        .as_ref()?
        .code
        .as_ref()?
        .as_str()
        .to_string();
    if !policy.rule(&code).counts_as_attempt {
        return None;
    }
    let key = match session
        .last_verification_report
        .as_ref()
        .and_then(|r| r.id())
    {
        Some(report) => format!("report:{report}"),
        None => format!("{code}@{}", event.created),
    };
    Some((key, code))
}

/// Fold one event into the session record. `failed_attempts` is the number of distinct failed
/// attempts recorded for the session, including this event's if it was one.
pub fn apply(
    current: Option<&SessionRecord>,
    event: &Event,
    session: &VerificationSession,
    failed_attempts: u32,
    policy: &Policy,
) -> (SessionRecord, Effect) {
    fold(
        current,
        event,
        session,
        failed_attempts,
        policy,
        Ties::KeepCurrent,
    )
}

/// Fold Stripe's current session (fetch-latest) in. It wins ties: Stripe's `created` has
/// one-second resolution, so two failures of one session in the same second have equal
/// positions, and only Stripe's present state can say which came last.
pub fn apply_current(
    current: Option<&SessionRecord>,
    snapshot: &Event,
    session: &VerificationSession,
    failed_attempts: u32,
    policy: &Policy,
) -> (SessionRecord, Effect) {
    fold(
        current,
        snapshot,
        session,
        failed_attempts,
        policy,
        Ties::Replace,
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ties {
    KeepCurrent,
    Replace,
}

fn fold(
    current: Option<&SessionRecord>,
    event: &Event,
    session: &VerificationSession,
    failed_attempts: u32,
    policy: &Policy,
    ties: Ties,
) -> (SessionRecord, Effect) {
    let position = rank(session).map(|r| (event.created, r));
    let mut record = match current {
        Some(existing) => existing.clone(),
        None => SessionRecord {
            id: session.id.clone(),
            user_ref: None,
            status: session.status.as_str().to_string(),
            session_type: None,
            livemode: session.livemode,
            metadata: BTreeMap::new(),
            last_error_code: None,
            last_error_reason: None,
            last_report_id: None,
            redaction_status: None,
            failed_attempts: 0,
            status_event_created: i64::MIN,
            status_rank: -1,
            session_created: session.created,
            outcome: Outcome::AwaitingInput,
            next_step: None,
        },
    };

    // Identity facts do not depend on order: fill what we do not know yet.
    if record.user_ref.is_none() {
        // The user: the app's client_reference_id, else the policy's metadata key.
        record.user_ref = session.client_reference_id.clone().or_else(|| {
            let key = policy.user_metadata_key.as_ref()?;
            session.metadata.get(key).cloned()
        });
    }
    if record.session_type.is_none() {
        record.session_type = session.type_.as_ref().map(|t| t.as_str().to_string());
    }

    let newer = match (current, position) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(existing), Some(pos)) => {
            let known = (existing.status_event_created, existing.status_rank);
            !existing.is_terminal() && (pos > known || (ties == Ties::Replace && pos == known))
        }
    };
    if let (true, Some((created, rank))) = (newer, position) {
        record.status = session.status.as_str().to_string();
        record.status_event_created = created;
        record.status_rank = rank;
        let error = session.last_error.as_ref();
        record.last_error_code = error
            .and_then(|e| e.code.as_ref())
            .map(|c| c.as_str().to_string());
        record.last_error_reason = error.and_then(|e| e.reason.clone());
        if let Some(report) = session
            .last_verification_report
            .as_ref()
            .and_then(|r| r.id())
        {
            record.last_report_id = Some(report.to_string());
        }
        record.metadata = session.metadata.clone();
    }

    // Redaction: `redacted` beats `processing`, and the redacted event itself settles it.
    let snapshot_redaction = session
        .redaction
        .as_ref()
        .map(|r| r.status.as_str().to_string());
    let redacted_now = event.type_ == EventType::VerificationSessionRedacted;
    if redacted_now || snapshot_redaction.as_deref() == Some("redacted") {
        record.redaction_status = Some("redacted".to_string());
    } else if record.redaction_status.is_none() {
        record.redaction_status = snapshot_redaction;
    }
    if record.is_redacted() {
        record.metadata.clear();
    }

    record.failed_attempts = failed_attempts;
    let (outcome, step) = outcome_of(&record, policy);
    record.outcome = outcome;
    record.next_step = step;
    (
        record,
        if newer {
            Effect::Applied
        } else {
            Effect::Stale
        },
    )
}

/// The outcome of a session given its status, last error and attempts used.
pub fn outcome_of(record: &SessionRecord, policy: &Policy) -> (Outcome, Option<NextStep>) {
    match record.status.as_str() {
        "verified" => (Outcome::Verified, None),
        "canceled" => (Outcome::Canceled, None),
        "processing" => (Outcome::Processing, None),
        _ => match &record.last_error_code {
            None => (Outcome::AwaitingInput, None),
            Some(code) => {
                let mut step = policy.rule(code).next_step;
                if step == NextStep::Retry && record.failed_attempts >= policy.max_attempts {
                    step = match policy.on_exhausted {
                        Exhausted::NeedsReview => NextStep::ManualReview,
                        Exhausted::AlternativeRequired => NextStep::AlternativeMethod,
                    };
                }
                (step_outcome(step), Some(step))
            }
        },
    }
}

/// The outcome a next step leads to.
pub fn step_outcome(step: NextStep) -> Outcome {
    match step {
        NextStep::Retry => Outcome::RetryAllowed,
        NextStep::AlternativeMethod => Outcome::AlternativeRequired,
        NextStep::ManualReview => Outcome::NeedsReview,
        NextStep::Reject => Outcome::Rejected,
    }
}

#[cfg(test)]
mod tests;
