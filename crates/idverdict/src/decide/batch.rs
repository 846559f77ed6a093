//! The fold over one processor batch: every claimed event, then Stripe's current sessions
//! (fetch-latest), applied to the loaded session records in order. Pure: the processor loads
//! the state, calls [`fold_batch`] and writes what it returns, all in the batch's transaction.

use std::collections::{HashMap, HashSet};

use stripe_webhook::{Event, EventType, VerificationSession};

use super::attempts::{AttemptLedger, FailedAttempt};
use super::policy::Policy;
use super::session::{apply, Effect, SessionFacts, SessionRecord, Snapshot};

/// What the rules use of one event: extracted once, when the event is received, and stored
/// beside its payload, so the processor never parses the payload again and a redaction that
/// purges payloads takes nothing the rules still need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFacts {
    pub id: String,
    pub event_type: EventType,
    pub created: i64,
    pub subject: Subject,
}

/// What an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// An Identity VerificationSession event and its session snapshot.
    Session(Box<SessionFacts>),
    /// Not an Identity VerificationSession event.
    NotIdentity,
    /// An Identity event whose `data.object` is not a readable session.
    BadSessionObject,
}

impl EventFacts {
    pub fn of(event: &Event) -> EventFacts {
        let subject = match event.verification_session() {
            None => Subject::NotIdentity,
            Some(Ok(session)) => Subject::Session(Box::new(SessionFacts::of(&session))),
            Some(Err(_)) => Subject::BadSessionObject,
        };
        EventFacts {
            id: event.id.clone(),
            event_type: event.type_.clone(),
            created: event.created,
            subject,
        }
    }

    /// The session snapshot, for an Identity session event.
    pub fn session(&self) -> Option<&SessionFacts> {
        match &self.subject {
            Subject::Session(s) => Some(s.as_ref()),
            _ => None,
        }
    }
}

/// What one batch input is.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// A claimed event (`seq` is its row); `None` when nothing about it is left to apply (an
    /// event stored before facts were kept, whose payload a redaction purged).
    Event {
        seq: i64,
        event: Option<&'a EventFacts>,
    },
    /// Stripe's session as it is now. The processor puts these after the batch's events.
    Current(&'a VerificationSession),
}

impl<'a> Input<'a> {
    /// The session an input is about, for locking and loading before the fold.
    pub fn session_id(&self) -> Option<&'a str> {
        match *self {
            Input::Event { event: Some(e), .. } => e.session().map(|s| s.id.as_str()),
            Input::Event { .. } => None,
            Input::Current(session) => Some(session.id.as_str()),
        }
    }
}

/// What processing did with a stored event (recorded on the event's row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Disposition {
    /// Folded into its session.
    Applied,
    /// Nothing left to apply: an event stored before facts were kept, whose payload a
    /// redaction purged meanwhile.
    SkippedNoPayload,
    /// Not an Identity VerificationSession event.
    IgnoredNotIdentity,
    /// An Identity event whose `data.object` is not a readable session.
    IgnoredBadSessionObject,
}

impl Disposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Applied => "applied",
            Disposition::SkippedNoPayload => "skipped:no_payload",
            Disposition::IgnoredNotIdentity => "ignored:not_identity",
            Disposition::IgnoredBadSessionObject => "ignored:bad_session_object",
        }
    }
}

/// One line of a session's history, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub session_id: String,
    pub event_id: String,
    pub event_type: EventType,
    pub event_created: i64,
    pub effect: Effect,
}

/// The sessions of a batch as loaded: their records and the failed attempts already counted.
#[derive(Debug, Clone, Default)]
pub struct BatchState {
    pub records: HashMap<String, SessionRecord>,
    pub attempts: AttemptLedger,
}

/// What a batch changed. The new records are in [`BatchState::records`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchChanges {
    /// Sessions whose record the batch wrote, in the order first touched: save these.
    pub changed: Vec<String>,
    /// Of those, the ones that are redacted (their stored payloads go).
    pub redacted: Vec<String>,
    /// Of those, the ones that became redacted in this batch.
    pub newly_redacted: Vec<String>,
    pub attempts: Vec<FailedAttempt>,
    pub history: Vec<HistoryEntry>,
    /// What became of each event input, by `seq`.
    pub dispositions: Vec<(i64, Disposition)>,
}

/// Fold a batch into `state`. Each event is applied in the order given; Stripe's current
/// session is placed at the newest time known for the session (its record, or any event of
/// the batch, even a stale one), and applies only to a session there is a record of.
pub fn fold_batch(state: &mut BatchState, inputs: &[Input<'_>], policy: &Policy) -> BatchChanges {
    let redacted_before: HashSet<String> = state
        .records
        .values()
        .filter(|r| r.is_redacted())
        .map(|r| r.id.clone())
        .collect();
    let mut changes = BatchChanges::default();
    let mut newest_event: HashMap<String, i64> = HashMap::new();

    for input in inputs {
        match *input {
            Input::Event { seq, event } => {
                let disposition = match event.map(|e| (e, &e.subject)) {
                    None => Disposition::SkippedNoPayload,
                    Some((_, Subject::NotIdentity)) => Disposition::IgnoredNotIdentity,
                    Some((_, Subject::BadSessionObject)) => Disposition::IgnoredBadSessionObject,
                    Some((event, Subject::Session(session))) => {
                        let seen = newest_event.entry(session.id.clone()).or_insert(i64::MIN);
                        *seen = (*seen).max(event.created);
                        let redaction = event.event_type == EventType::VerificationSessionRedacted;
                        let effect = fold_one(
                            state,
                            &mut changes,
                            &Snapshot::of_event(event.created, redaction, session),
                            policy,
                        );
                        changes.history.push(HistoryEntry {
                            session_id: session.id.clone(),
                            event_id: event.id.clone(),
                            event_type: event.event_type.clone(),
                            event_created: event.created,
                            effect,
                        });
                        Disposition::Applied
                    }
                };
                changes.dispositions.push((seq, disposition));
            }
            Input::Current(session) => {
                let Some(record) = state.records.get(&session.id) else {
                    continue;
                };
                let known = newest_event.get(&session.id).copied().unwrap_or(i64::MIN);
                let at = record.status_event_created.max(known);
                let facts = SessionFacts::of(session);
                fold_one(state, &mut changes, &Snapshot::current(&facts, at), policy);
            }
        }
    }

    for id in &changes.changed {
        if state
            .records
            .get(id)
            .is_some_and(SessionRecord::is_redacted)
        {
            changes.redacted.push(id.clone());
            if !redacted_before.contains(id) {
                changes.newly_redacted.push(id.clone());
            }
        }
    }
    changes
}

/// Count the snapshot's attempt and apply it to its session's record.
fn fold_one(
    state: &mut BatchState,
    changes: &mut BatchChanges,
    snapshot: &Snapshot<'_>,
    policy: &Policy,
) -> Effect {
    let (attempts, new_attempt) = state.attempts.record(snapshot, policy);
    changes.attempts.extend(new_attempt);
    let id = &snapshot.session.id;
    let (record, effect) = apply(state.records.get(id), snapshot, attempts, policy);
    if !changes.changed.contains(id) {
        changes.changed.push(id.clone());
    }
    state.records.insert(id.clone(), record);
    effect
}
