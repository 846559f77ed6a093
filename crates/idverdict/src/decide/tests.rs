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

/// Fold events in the given order, counting attempts the way the processor does.
fn fold(events: &[Event]) -> SessionRecord {
    let policy = Policy::default();
    let mut record: Option<SessionRecord> = None;
    let mut attempts = std::collections::BTreeSet::new();
    for e in events {
        let s = e.verification_session().unwrap().unwrap();
        if let Some((key, _)) = attempt_key(e, &s, &policy) {
            attempts.insert(key);
        }
        record = Some(apply(record.as_ref(), e, &s, attempts.len() as u32, &policy).0);
    }
    record.unwrap()
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
        assert_eq!(r.status, "verified");
        assert_eq!(r.outcome, Outcome::Verified);
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
            Outcome::Verified,
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
    assert_eq!(r.status, "requires_input");
    assert_eq!(r.outcome, Outcome::RetryAllowed);
    assert_eq!(r.next_step, Some(NextStep::Retry));
    assert_eq!(r.last_error_code.as_deref(), Some("document_expired"));
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
                "verified"
            } else {
                "canceled"
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
    assert_eq!(r.outcome, Outcome::RetryAllowed);
    let r = fold(&[f1, f2, f3]);
    assert_eq!(r.failed_attempts, 3);
    assert_eq!(r.outcome, Outcome::NeedsReview);
    assert_eq!(r.next_step, Some(NextStep::ManualReview));
}

#[test]
fn codes_map_to_their_outcome() {
    let cases = [
        ("consent_declined", Outcome::AlternativeRequired),
        ("selfie_manipulated", Outcome::NeedsReview),
        ("under_supported_age", Outcome::Rejected),
        ("document_expired", Outcome::RetryAllowed),
        ("some_future_code", Outcome::NeedsReview),
    ];
    for (code, outcome) in cases {
        let r = fold(&[event(Kind::RequiresInput, 1_000, Some(code), Some("vr_1"))]);
        assert_eq!(r.outcome, outcome, "{code}");
        assert_eq!(r.last_error_code.as_deref(), Some(code));
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
        assert_eq!(r.outcome, Outcome::Verified);
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
    let s1 = first.verification_session().unwrap().unwrap();
    let s2 = second.verification_session().unwrap().unwrap();
    let (after_first, _) = apply(None, &first, &s1, 1, &policy);
    // Equal positions: an event cannot tell which came last, the record stays.
    let (kept, effect) = apply(Some(&after_first), &second, &s2, 2, &policy);
    assert_eq!(
        (kept.last_error_code.as_deref(), effect),
        (Some("document_expired"), Effect::Stale)
    );
    // Stripe's current session can.
    let (current, effect) = apply_current(Some(&after_first), &second, &s2, 2, &policy);
    assert_eq!(
        (current.last_error_code.as_deref(), effect),
        (Some("consent_declined"), Effect::Applied)
    );
    assert_eq!(current.outcome, Outcome::AlternativeRequired);
}
