//! One record per verification session, and how each snapshot of the session folds into it,
//! whatever order the snapshots arrive in.
//!
//! ## Ordering rule
//! Each status-bearing snapshot gets a position `(at, rank)`, where `at` is the event's
//! `created` and rank orders the statuses of one attempt: `requires_input` without error (0) <
//! `processing` (1) < `requires_input` with an error (2) < `verified`/`canceled` (3). A
//! snapshot changes the status only if its position is later than the one that set the current
//! status, and never once the status is terminal. So a late `processing` cannot undo a
//! failure, and nothing undoes `verified` or `canceled`. Redaction is tracked on its own and is
//! sticky.

use std::collections::BTreeMap;

use serde::Serialize;
use stripe_webhook::{ErrorCode, RedactionStatus, SessionStatus, SessionType, VerificationSession};

use super::next_step::NextStep;
use super::policy::Policy;

/// What the app should make of a session right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionOutcome {
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

impl SessionOutcome {
    pub const ALL: [SessionOutcome; 8] = [
        SessionOutcome::AwaitingInput,
        SessionOutcome::Processing,
        SessionOutcome::Verified,
        SessionOutcome::RetryAllowed,
        SessionOutcome::NeedsReview,
        SessionOutcome::AlternativeRequired,
        SessionOutcome::Rejected,
        SessionOutcome::Canceled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SessionOutcome::AwaitingInput => "awaiting_input",
            SessionOutcome::Processing => "processing",
            SessionOutcome::Verified => "verified",
            SessionOutcome::RetryAllowed => "retry_allowed",
            SessionOutcome::NeedsReview => "needs_review",
            SessionOutcome::AlternativeRequired => "alternative_required",
            SessionOutcome::Rejected => "rejected",
            SessionOutcome::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<SessionOutcome> {
        SessionOutcome::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// The outcome a failure's next step leads to.
    pub fn of_step(step: NextStep) -> SessionOutcome {
        match step {
            NextStep::Retry => SessionOutcome::RetryAllowed,
            NextStep::AlternativeMethod => SessionOutcome::AlternativeRequired,
            NextStep::ManualReview => SessionOutcome::NeedsReview,
            NextStep::Reject => SessionOutcome::Rejected,
        }
    }
}

/// What the rules use of one snapshot of a session: taken once from an event when it is
/// received (and stored beside it, outside the personal payload), or from Stripe's current
/// session. Free text is made storable on both backends here: U+0000, which PostgreSQL
/// cannot hold in text, becomes U+FFFD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFacts {
    pub id: String,
    pub status: SessionStatus,
    pub session_type: Option<SessionType>,
    pub livemode: bool,
    /// The session's own `created`.
    pub created: i64,
    pub client_reference_id: Option<String>,
    pub last_error_code: Option<ErrorCode>,
    pub last_error_reason: Option<String>,
    pub report_id: Option<String>,
    pub redaction_status: Option<RedactionStatus>,
    /// Personal: erased from storage with a redaction, like the payload.
    pub metadata: BTreeMap<String, String>,
}

impl SessionFacts {
    pub fn of(session: &VerificationSession) -> SessionFacts {
        let error = session.last_error.as_ref();
        SessionFacts {
            id: session.id.clone(),
            status: session.status.clone(),
            session_type: session.type_.clone(),
            livemode: session.livemode,
            created: session.created,
            client_reference_id: session.client_reference_id.as_deref().map(storable),
            last_error_code: error
                .and_then(|e| e.code.as_ref())
                .map(|c| ErrorCode::from(storable(c.as_str()))),
            last_error_reason: error.and_then(|e| e.reason.as_deref()).map(storable),
            report_id: session
                .last_verification_report
                .as_ref()
                .and_then(|r| r.id())
                .map(storable),
            redaction_status: session.redaction.as_ref().map(|r| r.status.clone()),
            metadata: session
                .metadata
                .iter()
                .map(|(k, v)| (storable(k), storable(v)))
                .collect(),
        }
    }
}

/// `text` with every U+0000 replaced by U+FFFD (the one character no backend's text type
/// takes on both: PostgreSQL refuses it). Replacing rather than dropping keeps `a\0b` distinct
/// from `ab`.
pub fn storable(text: &str) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text.to_string()
    }
}

/// Everything idverdict keeps about one verification session.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub id: String,
    pub user_ref: Option<String>,
    pub status: SessionStatus,
    pub session_type: Option<SessionType>,
    pub livemode: bool,
    /// Erased when the session is redacted.
    pub metadata: BTreeMap<String, String>,
    pub last_error_code: Option<ErrorCode>,
    pub last_error_reason: Option<String>,
    pub last_report_id: Option<String>,
    pub redaction_status: Option<RedactionStatus>,
    pub failed_attempts: u32,
    /// The position (see the module docs) of the snapshot that set `status`.
    pub status_event_created: i64,
    pub status_rank: i64,
    pub session_created: i64,
    pub outcome: SessionOutcome,
    pub next_step: Option<NextStep>,
    /// Every `last_error.code` this session has failed with, in any snapshot (applied or
    /// stale), sorted: a resubmission replaces `last_error_code`, but a fraud signal must not
    /// vanish with it.
    pub failure_codes: Vec<ErrorCode>,
}

impl SessionRecord {
    /// Remember a code this session failed with (once, kept sorted).
    fn note_failure(&mut self, code: &ErrorCode) {
        if let Err(at) = self
            .failure_codes
            .binary_search_by(|c| c.as_str().cmp(code.as_str()))
        {
            self.failure_codes.insert(at, code.clone());
        }
    }

    pub fn is_redacted(&self) -> bool {
        self.redaction_status == Some(RedactionStatus::Redacted)
    }

    /// A record for a session seen for the first time, before its first snapshot is applied:
    /// its status is not placed yet, so any known status comes after it.
    fn first_seen(session: &SessionFacts) -> SessionRecord {
        SessionRecord {
            id: session.id.clone(),
            user_ref: None,
            status: session.status.clone(),
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
            outcome: SessionOutcome::AwaitingInput,
            next_step: None,
            failure_codes: Vec::new(),
        }
    }
}

#[cfg(test)]
impl SessionRecord {
    /// A document session of user `u` waiting for input, for tests to adjust.
    pub(crate) fn example(id: &str) -> SessionRecord {
        let session: VerificationSession = serde_json::from_value(serde_json::json!({
            "id": id, "object": "identity.verification_session", "created": 0,
            "livemode": false, "status": "requires_input",
        }))
        .expect("a minimal session");
        let session = SessionFacts::of(&session);
        SessionRecord {
            user_ref: Some("u".to_string()),
            session_type: Some(SessionType::Document),
            status_event_created: 0,
            status_rank: 0,
            ..SessionRecord::first_seen(&session)
        }
    }
}

/// What a snapshot did to its session (the `effect` of a history line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The snapshot set the session's status.
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

/// Where a snapshot of a session comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A stored event; `redaction` when it is the `…redacted` event itself.
    Event { redaction: bool },
    /// Stripe's session as it is now (fetch-latest).
    Current,
}

/// A snapshot of a session, placed in the session's life.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    pub session: &'a SessionFacts,
    /// Unix seconds: the event's `created`; for Stripe's current session, the newest time
    /// already known for it, so it can move the session forward but never back.
    pub at: i64,
    pub source: Source,
}

impl<'a> Snapshot<'a> {
    /// The snapshot an event carries: the event's `created`, and whether it is the
    /// `…redacted` event itself.
    pub fn of_event(created: i64, redaction: bool, session: &'a SessionFacts) -> Snapshot<'a> {
        Snapshot {
            session,
            at: created,
            source: Source::Event { redaction },
        }
    }

    /// Stripe's current session, placed at `at`.
    pub fn current(session: &'a SessionFacts, at: i64) -> Snapshot<'a> {
        Snapshot {
            session,
            at,
            source: Source::Current,
        }
    }

    /// The position of this snapshot's status (see the module docs); `None` for a status
    /// idverdict does not know.
    fn position(&self) -> Option<(i64, i64)> {
        let rank = match &self.session.status {
            SessionStatus::RequiresInput => {
                if self.error_code().is_some() {
                    2
                } else {
                    0
                }
            }
            SessionStatus::Processing => 1,
            SessionStatus::Verified | SessionStatus::Canceled => 3,
            SessionStatus::Unknown(_) => return None,
        };
        Some((self.at, rank))
    }

    /// Stripe's `created` has one-second resolution, so two failures of one session in the
    /// same second have equal positions; only Stripe's present state can say which came last.
    fn wins_ties(&self) -> bool {
        self.source == Source::Current
    }

    pub(super) fn error_code(&self) -> Option<&'a ErrorCode> {
        self.session.last_error_code.as_ref()
    }

    pub(super) fn report_id(&self) -> Option<&'a str> {
        self.session.report_id.as_deref()
    }
}

/// Fold one snapshot into the session record. `failed_attempts` is the number of distinct
/// failed attempts recorded for the session, including this snapshot's if it was one.
pub fn apply(
    current: Option<&SessionRecord>,
    snapshot: &Snapshot<'_>,
    failed_attempts: u32,
    policy: &Policy,
) -> (SessionRecord, Effect) {
    let session = snapshot.session;
    let position = snapshot.position();
    let mut record = match current {
        Some(existing) => existing.clone(),
        None => SessionRecord::first_seen(session),
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
        record.session_type = session.session_type.clone();
    }

    let newer = match (current, position) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(existing), Some(pos)) => {
            let known = (existing.status_event_created, existing.status_rank);
            !existing.status.is_terminal()
                && (pos > known || (snapshot.wins_ties() && pos == known))
        }
    };
    if let (true, Some((at, rank))) = (newer, position) {
        record.status = session.status.clone();
        record.status_event_created = at;
        record.status_rank = rank;
        record.last_error_code = snapshot.error_code().cloned();
        record.last_error_reason = session.last_error_reason.clone();
        if let Some(report) = snapshot.report_id() {
            record.last_report_id = Some(report.to_string());
        }
        record.metadata = session.metadata.clone();
    }

    // What the session failed with, whatever the order: a late failure snapshot still tells.
    if session.status == SessionStatus::RequiresInput {
        if let Some(code) = snapshot.error_code() {
            record.note_failure(code);
        }
    }

    // Redaction: `redacted` beats `processing`, and the redacted event itself settles it.
    let snapshot_redaction = session.redaction_status.clone();
    let redaction_event = snapshot.source == Source::Event { redaction: true };
    if redaction_event || snapshot_redaction == Some(RedactionStatus::Redacted) {
        record.redaction_status = Some(RedactionStatus::Redacted);
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
    let effect = if newer {
        Effect::Applied
    } else {
        Effect::Stale
    };
    (record, effect)
}

/// The outcome of a session given its status, last error and attempts used.
pub fn outcome_of(record: &SessionRecord, policy: &Policy) -> (SessionOutcome, Option<NextStep>) {
    match &record.status {
        SessionStatus::Verified => (SessionOutcome::Verified, None),
        SessionStatus::Canceled => (SessionOutcome::Canceled, None),
        SessionStatus::Processing => (SessionOutcome::Processing, None),
        SessionStatus::RequiresInput | SessionStatus::Unknown(_) => match &record.last_error_code {
            None => (SessionOutcome::AwaitingInput, None),
            Some(code) => {
                let step = policy.step_after_attempts(
                    policy.rule(code).next_step,
                    record.failed_attempts,
                    policy.max_attempts,
                );
                (SessionOutcome::of_step(step), Some(step))
            }
        },
    }
}
