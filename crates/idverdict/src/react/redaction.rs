//! What a session's redaction does to the reactions already written about it, pending and
//! delivered alike: the personal fields of the payload go (Stripe's reason, the plain-words
//! explanation, the operator's free-text note); an email's address goes, and an email not sent
//! yet is canceled, because it cannot be sent without one. Ids, states, codes, counters and
//! timestamps stay. Pure: the store reads the rows and applies what [`redact`] returns.

use serde_json::Value;

use super::plan::{ReactionKind, ReactionState};

/// Fields of a reaction payload that may carry personal data or free text.
pub const PERSONAL_FIELDS: &[&str] = &["reason", "explanation", "note"];

/// Why a canceled email was never sent (the reaction's `last_error`).
pub const CANCELED_BY_REDACTION: &str = "canceled: the session was redacted before delivery";

/// A stored reaction about a redacted session.
#[derive(Debug, Clone, Copy)]
pub struct StoredReaction<'a> {
    pub id: &'a str,
    pub kind: Option<ReactionKind>,
    pub state: Option<ReactionState>,
    pub target: &'a str,
    pub payload: &'a str,
}

/// What redaction changes in one reaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted {
    pub payload: String,
    pub target: String,
    /// Cancel it (with [`CANCELED_BY_REDACTION`]): an email that was still to be sent.
    pub cancel: bool,
}

/// The change redaction makes to `reaction`; `None` when there is nothing left to remove.
pub fn redact(reaction: &StoredReaction<'_>) -> Option<Redacted> {
    let is_email = reaction.kind == Some(ReactionKind::Email);
    let payload = strip_personal(reaction.payload);
    let target = if is_email {
        format!("redacted:{}", reaction.id)
    } else {
        reaction.target.to_string()
    };
    let cancel = is_email && reaction.state.is_some_and(ReactionState::is_waiting);
    if payload == reaction.payload && target == reaction.target && !cancel {
        return None;
    }
    Some(Redacted {
        payload,
        target,
        cancel,
    })
}

/// The payload with its personal fields nulled (unchanged if it is not a JSON object).
fn strip_personal(payload: &str) -> String {
    let Ok(Value::Object(mut map)) = serde_json::from_str::<Value>(payload) else {
        return payload.to_string();
    };
    let mut touched = false;
    for field in PERSONAL_FIELDS {
        if let Some(v) = map.get_mut(*field).filter(|v| !v.is_null()) {
            *v = Value::Null;
            touched = true;
        }
    }
    if touched {
        Value::Object(map).to_string()
    } else {
        payload.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOAD: &str = r#"{"key":"k","type":"retry_allowed","reason":"Jane's document","explanation":"Expired.","note":"called her","attempts_used":1}"#;

    fn reaction<'a>(
        kind: ReactionKind,
        state: ReactionState,
        payload: &'a str,
    ) -> StoredReaction<'a> {
        StoredReaction {
            id: "rx_1",
            kind: Some(kind),
            state: Some(state),
            target: if kind == ReactionKind::Email {
                "jane@example.test"
            } else {
                "https://app.test/cb"
            },
            payload,
        }
    }

    #[test]
    fn personal_fields_go_from_every_reaction_ids_and_counters_stay() {
        for kind in [ReactionKind::Callback, ReactionKind::Nats] {
            for state in [ReactionState::Pending, ReactionState::Delivered] {
                let change = redact(&reaction(kind, state, PAYLOAD)).expect("a change");
                let body: Value = serde_json::from_str(&change.payload).unwrap();
                for field in PERSONAL_FIELDS {
                    assert!(body[*field].is_null(), "{field}");
                }
                assert_eq!(body["key"], "k");
                assert_eq!(body["attempts_used"], 1);
                assert_eq!(change.target, "https://app.test/cb");
                assert!(!change.cancel, "{kind:?} {state:?} is not canceled");
            }
        }
    }

    #[test]
    fn emails_lose_their_address_and_unsent_ones_are_canceled() {
        for (state, cancel) in [
            (ReactionState::Pending, true),
            (ReactionState::Sending, true),
            (ReactionState::Delivered, false),
            (ReactionState::Exhausted, false),
        ] {
            let change = redact(&reaction(ReactionKind::Email, state, PAYLOAD)).unwrap();
            assert_eq!(change.target, "redacted:rx_1");
            assert_eq!(change.cancel, cancel, "{state:?}");
        }
    }

    #[test]
    fn an_already_redacted_reaction_is_left_alone() {
        let change = redact(&reaction(
            ReactionKind::Callback,
            ReactionState::Delivered,
            PAYLOAD,
        ))
        .unwrap();
        let again = StoredReaction {
            payload: &change.payload,
            ..reaction(ReactionKind::Callback, ReactionState::Delivered, PAYLOAD)
        };
        assert_eq!(redact(&again), None);
        let email = StoredReaction {
            target: "redacted:rx_1",
            payload: &change.payload,
            ..reaction(ReactionKind::Email, ReactionState::Canceled, PAYLOAD)
        };
        assert_eq!(redact(&email), None);
        // Not JSON: nothing to strip, kept as it is.
        assert_eq!(
            redact(&reaction(
                ReactionKind::Nats,
                ReactionState::Delivered,
                "not json"
            )),
            None
        );
    }
}
