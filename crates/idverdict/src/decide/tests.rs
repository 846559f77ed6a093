//! The session fold, through the same batch fold the processor runs, in every order of a flow.

use stripe_webhook::{ErrorCode, Event, SessionStatus, VerificationSession};

use super::*;
use crate::synth::{event_bytes, Kind, Spec};

fn event(kind: Kind, created: i64, code: Option<&str>, report: Option<&str>) -> Event {
    let mut spec = Spec::new(kind, "vs_1test", created);
    spec.session_created = 1_000;
    spec.user_ref = Some("user_42".into());
    spec.error_code = code.map(str::to_string);
    spec.report_id = report.map(str::to_string);
    spec.metadata = vec![("email".into(), "someone@example.com".into())];
    Event::from_slice(&event_bytes(&spec)).unwrap()
}

/// The facts the processor would take from `e` (leaked: a test's inputs borrow them).
fn facts(e: &Event) -> &'static EventFacts {
    Box::leak(Box::new(EventFacts::of(e)))
}

/// Fold events in the given order, each in a batch of its own (as if they arrived apart), with
/// the state carried from batch to batch the way the store keeps it.
fn fold(events: &[Event]) -> SessionRecord {
    let policy = Policy::default();
    let mut state = BatchState::default();
    for (seq, e) in events.iter().enumerate() {
        let input = Input::Event {
            seq: seq as i64,
            event: Some(facts(e)),
        };
        let changes = fold_batch(&mut state, &[input], &policy);
        assert_eq!(
            changes.dispositions,
            vec![(seq as i64, Disposition::Applied)]
        );
    }
    state.records.remove("vs_1test").unwrap()
}

fn code(c: &str) -> Option<ErrorCode> {
    Some(ErrorCode::from(c))
}

fn permutations(items: &[Event]) -> Vec<Vec<Event>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = Vec::new();
    for i in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(i);
        for mut p in permutations(&rest) {
            p.insert(0, first.clone());
            out.push(p);
        }
    }
    out
}

#[test]
fn a_verified_flow_ends_verified_in_every_order() {
    let flow = vec![
        event(Kind::Created, 1_000, None, None),
        event(Kind::Processing, 1_010, None, None),
        event(Kind::Verified, 1_020, None, Some("vr_1")),
    ];
    for order in permutations(&flow) {
        let r = fold(&order);
        assert_eq!(r.status, SessionStatus::Verified);
        assert_eq!(r.outcome, SessionOutcome::Verified);
        assert_eq!(r.failed_attempts, 0);
        assert_eq!(r.user_ref.as_deref(), Some("user_42"));
    }
}

#[test]
fn a_failure_then_success_ends_verified_with_one_attempt_in_every_order() {
    let flow = vec![
        event(Kind::Created, 1_000, None, None),
        event(Kind::Processing, 1_010, None, None),
        event(
            Kind::RequiresInput,
            1_020,
            Some("document_expired"),
            Some("vr_1"),
        ),
        event(Kind::Processing, 1_030, None, None),
        event(Kind::Verified, 1_040, None, Some("vr_2")),
    ];
    for order in permutations(&flow) {
        let r = fold(&order);
        assert_eq!(
            r.outcome,
            SessionOutcome::Verified,
            "{:?}",
            order.iter().map(|e| e.type_.as_str()).collect::<Vec<_>>()
        );
        assert_eq!(r.failed_attempts, 1);
    }
}

#[test]
fn a_late_processing_never_hides_a_failure() {
    let failed = event(
        Kind::RequiresInput,
        1_020,
        Some("document_expired"),
        Some("vr_1"),
    );
    let late = event(Kind::Processing, 1_010, None, None);
    let r = fold(&[failed, late]);
    assert_eq!(r.status, SessionStatus::RequiresInput);
    assert_eq!(r.outcome, SessionOutcome::RetryAllowed);
    assert_eq!(r.next_step, Some(NextStep::Retry));
    assert_eq!(r.last_error_code, code("document_expired"));
}

#[test]
fn terminal_states_are_never_overwritten() {
    for terminal in [Kind::Verified, Kind::Canceled] {
        let later_failure = event(
            Kind::RequiresInput,
            9_999,
            Some("document_expired"),
            Some("vr_9"),
        );
        let r = fold(&[
            event(terminal, 1_000, None, Some("vr_1")),
            event(Kind::Processing, 9_999, None, None),
            later_failure,
        ]);
        assert_eq!(
            r.status,
            if terminal == Kind::Verified {
                SessionStatus::Verified
            } else {
                SessionStatus::Canceled
            }
        );
    }
}

#[test]
fn duplicated_failures_count_once_and_the_limit_turns_retry_into_review() {
    let f1 = event(
        Kind::RequiresInput,
        1_010,
        Some("document_expired"),
        Some("vr_1"),
    );
    let f2 = event(
        Kind::RequiresInput,
        1_020,
        Some("document_expired"),
        Some("vr_2"),
    );
    let f3 = event(
        Kind::RequiresInput,
        1_030,
        Some("document_expired"),
        Some("vr_3"),
    );
    let r = fold(&[f1.clone(), f1.clone(), f2.clone(), f2.clone()]);
    assert_eq!(r.failed_attempts, 2);
    assert_eq!(r.outcome, SessionOutcome::RetryAllowed);
    let r = fold(&[f1, f2, f3]);
    assert_eq!(r.failed_attempts, 3);
    assert_eq!(r.outcome, SessionOutcome::NeedsReview);
    assert_eq!(r.next_step, Some(NextStep::ManualReview));
}

#[test]
fn codes_map_to_their_outcome() {
    let cases = [
        ("consent_declined", SessionOutcome::AlternativeRequired),
        ("selfie_manipulated", SessionOutcome::NeedsReview),
        ("under_supported_age", SessionOutcome::Rejected),
        ("document_expired", SessionOutcome::RetryAllowed),
        ("some_future_code", SessionOutcome::NeedsReview),
    ];
    for (code, outcome) in cases {
        let r = fold(&[event(Kind::RequiresInput, 1_000, Some(code), Some("vr_1"))]);
        assert_eq!(r.outcome, outcome, "{code}");
        assert_eq!(r.last_error_code, Some(ErrorCode::from(code)));
    }
}

#[test]
fn redaction_is_sticky_and_erases_metadata_in_any_order() {
    let flow = vec![
        event(Kind::Created, 1_000, None, None),
        event(Kind::Verified, 1_020, None, Some("vr_1")),
        event(Kind::Redacted, 1_030, None, Some("vr_1")),
    ];
    for order in permutations(&flow) {
        let r = fold(&order);
        assert!(r.is_redacted());
        assert!(r.metadata.is_empty());
        assert_eq!(r.outcome, SessionOutcome::Verified);
    }
}

#[test]
fn same_second_failures_keep_the_first_unless_stripes_current_session_says_otherwise() {
    let policy = Policy::default();
    let first = event(
        Kind::RequiresInput,
        1_000,
        Some("document_expired"),
        Some("vr_1"),
    );
    let second = event(
        Kind::RequiresInput,
        1_000,
        Some("consent_declined"),
        Some("vr_2"),
    );
    let mut state = BatchState::default();
    let inputs = [
        Input::Event {
            seq: 1,
            event: Some(facts(&first)),
        },
        Input::Event {
            seq: 2,
            event: Some(facts(&second)),
        },
    ];
    let changes = fold_batch(&mut state, &inputs, &policy);
    // Equal positions: an event cannot tell which came last, the record stays.
    let effects: Vec<Effect> = changes.history.iter().map(|h| h.effect).collect();
    assert_eq!(effects, vec![Effect::Applied, Effect::Stale]);
    let kept = &state.records["vs_1test"];
    assert_eq!(kept.last_error_code, code("document_expired"));
    assert_eq!(kept.failed_attempts, 2, "both failures count");

    // Stripe's current session can, and it adds no history line of its own.
    let current: VerificationSession = second.verification_session().unwrap().unwrap();
    let changes = fold_batch(&mut state, &[Input::Current(&current)], &policy);
    assert!(changes.history.is_empty() && changes.dispositions.is_empty());
    assert_eq!(changes.changed, vec!["vs_1test".to_string()]);
    let now = &state.records["vs_1test"];
    assert_eq!(now.last_error_code, code("consent_declined"));
    assert_eq!(now.outcome, SessionOutcome::AlternativeRequired);
    assert_eq!(now.failed_attempts, 2, "the report was counted already");
}

#[test]
fn stripes_current_session_moves_forward_never_back_and_counts_only_reported_failures() {
    let policy = Policy::default();
    let processing = event(Kind::Processing, 1_010, None, None);
    let mut state = BatchState::default();
    // Stripe says verified while only a late `processing` arrived.
    let verified = event(Kind::Verified, 1_020, None, Some("vr_1"));
    let current = verified.verification_session().unwrap().unwrap();
    let inputs = [
        Input::Event {
            seq: 1,
            event: Some(facts(&processing)),
        },
        Input::Current(&current),
    ];
    fold_batch(&mut state, &inputs, &policy);
    let r = &state.records["vs_1test"];
    assert_eq!(
        (r.status.clone(), r.outcome),
        (SessionStatus::Verified, SessionOutcome::Verified)
    );
    // An older snapshot from Stripe cannot undo it.
    let older = event(Kind::Processing, 900, None, None);
    let older = older.verification_session().unwrap().unwrap();
    fold_batch(&mut state, &[Input::Current(&older)], &policy);
    assert_eq!(state.records["vs_1test"].status, SessionStatus::Verified);

    // A failure without a report is counted from its event, not from Stripe's session.
    let mut state = BatchState::default();
    let abandoned_like = event(Kind::RequiresInput, 1_000, Some("document_expired"), None);
    let mut unreported: VerificationSession =
        abandoned_like.verification_session().unwrap().unwrap();
    unreported.last_verification_report = None;
    let created = event(Kind::Created, 990, None, None);
    let changes = fold_batch(
        &mut state,
        &[
            Input::Event {
                seq: 1,
                event: Some(facts(&created)),
            },
            Input::Current(&unreported),
        ],
        &policy,
    );
    assert!(changes.attempts.is_empty());
    assert_eq!(state.records["vs_1test"].failed_attempts, 0);
}

#[test]
fn a_current_session_without_a_record_is_left_alone() {
    let policy = Policy::default();
    let e = event(Kind::Verified, 1_000, None, Some("vr_1"));
    let current = e.verification_session().unwrap().unwrap();
    let mut state = BatchState::default();
    let changes = fold_batch(&mut state, &[Input::Current(&current)], &policy);
    assert_eq!(changes, BatchChanges::default());
    assert!(state.records.is_empty());
}

#[test]
fn every_event_gets_a_disposition_and_redaction_is_reported_once() {
    let policy = Policy::default();
    let other = Event::from_slice(br#"{"id":"evt_c","object":"event","created":1,"data":{"object":{"id":"cus_1","object":"customer"}},"livemode":false,"type":"customer.created"}"#).unwrap();
    let bad = Event::from_slice(br#"{"id":"evt_b","object":"event","created":1,"data":{"object":{"id":"vs_1test"}},"livemode":false,"type":"identity.verification_session.verified"}"#).unwrap();
    let verified = event(Kind::Verified, 1_020, None, Some("vr_1"));
    let redacted = event(Kind::Redacted, 1_030, None, Some("vr_1"));
    let mut state = BatchState::default();
    let inputs = [
        Input::Event {
            seq: 1,
            event: None,
        },
        Input::Event {
            seq: 2,
            event: Some(facts(&other)),
        },
        Input::Event {
            seq: 3,
            event: Some(facts(&bad)),
        },
        Input::Event {
            seq: 4,
            event: Some(facts(&verified)),
        },
        Input::Event {
            seq: 5,
            event: Some(facts(&redacted)),
        },
    ];
    assert_eq!(
        inputs
            .iter()
            .filter_map(Input::session_id)
            .collect::<Vec<_>>(),
        // The event whose object is not a readable session is about no session.
        vec!["vs_1test", "vs_1test"]
    );
    let changes = fold_batch(&mut state, &inputs, &policy);
    assert_eq!(
        changes.dispositions,
        vec![
            (1, Disposition::SkippedNoPayload),
            (2, Disposition::IgnoredNotIdentity),
            (3, Disposition::IgnoredBadSessionObject),
            (4, Disposition::Applied),
            (5, Disposition::Applied),
        ]
    );
    assert_eq!(changes.redacted, vec!["vs_1test".to_string()]);
    assert_eq!(changes.newly_redacted, vec!["vs_1test".to_string()]);
    // A later event about the redacted session: its payload goes too, but it is not news.
    let late = event(Kind::Processing, 1_040, None, None);
    let changes = fold_batch(
        &mut state,
        &[Input::Event {
            seq: 6,
            event: Some(facts(&late)),
        }],
        &policy,
    );
    assert_eq!(changes.redacted, vec!["vs_1test".to_string()]);
    assert!(changes.newly_redacted.is_empty());
}

/// A fraud signal outlives the resubmission that replaced it, in every order: the session
/// remembers every code it failed with.
#[test]
fn a_sessions_failure_codes_survive_resubmission_in_every_order() {
    let flow = vec![
        event(Kind::Created, 1_000, None, None),
        event(
            Kind::RequiresInput,
            1_010,
            Some("selfie_manipulated"),
            Some("vr_1"),
        ),
        event(
            Kind::RequiresInput,
            1_020,
            Some("document_expired"),
            Some("vr_2"),
        ),
        event(Kind::Verified, 1_030, None, Some("vr_3")),
    ];
    for order in permutations(&flow) {
        let r = fold(&order);
        assert_eq!(r.status, SessionStatus::Verified);
        assert_eq!(r.last_error_code, None);
        assert_eq!(
            r.failure_codes,
            vec![ErrorCode::DocumentExpired, ErrorCode::SelfieManipulated],
            "{order:?}"
        );
    }
}
