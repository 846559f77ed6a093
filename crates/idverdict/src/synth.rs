//! Realistic Stripe Identity events, built the way Stripe shapes them (see the fixtures in
//! Stripe's CLI and API docs). Used by `idverdict trigger`, the benchmarks and the tests.

use serde_json::{json, Value};

/// The identity session statuses a synthetic event can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Created,
    Processing,
    Verified,
    RequiresInput,
    Canceled,
    Redacted,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Created,
        Kind::Processing,
        Kind::Verified,
        Kind::RequiresInput,
        Kind::Canceled,
        Kind::Redacted,
    ];

    pub fn event_type(self) -> &'static str {
        match self {
            Kind::Created => "identity.verification_session.created",
            Kind::Processing => "identity.verification_session.processing",
            Kind::Verified => "identity.verification_session.verified",
            Kind::RequiresInput => "identity.verification_session.requires_input",
            Kind::Canceled => "identity.verification_session.canceled",
            Kind::Redacted => "identity.verification_session.redacted",
        }
    }

    /// Accepts the full event type or its last segment (`verified`).
    pub fn parse(s: &str) -> Option<Kind> {
        let short = s
            .strip_prefix("identity.verification_session.")
            .unwrap_or(s);
        Kind::ALL
            .into_iter()
            .find(|k| k.event_type().ends_with(&format!(".{short}")))
    }
}

/// Inputs for one synthetic event.
#[derive(Debug, Clone)]
pub struct Spec {
    pub kind: Kind,
    pub event_id: String,
    pub session_id: String,
    pub user_ref: Option<String>,
    /// For `RequiresInput`: the `last_error.code` (default `document_unverified_other`).
    pub error_code: Option<String>,
    /// The report of this attempt (`RequiresInput`, `Verified`); generated when `None`.
    pub report_id: Option<String>,
    pub created: i64,
    pub session_created: i64,
    pub metadata: Vec<(String, String)>,
}

impl Spec {
    pub fn new(kind: Kind, session_id: &str, created: i64) -> Spec {
        Spec {
            kind,
            event_id: new_id("evt"),
            session_id: session_id.to_string(),
            user_ref: None,
            error_code: None,
            report_id: None,
            created,
            session_created: created,
            metadata: Vec::new(),
        }
    }
}

/// A Stripe-style object id: prefix, `_1`, then 24 alphanumerics.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_1{}", crate::config::random_token(24))
}

/// The event as Stripe would send it, serialised with two-space indentation like Stripe's.
pub fn event_json(spec: &Spec) -> Value {
    let (status, last_error, report, redaction) = match spec.kind {
        Kind::Created => ("requires_input", Value::Null, Value::Null, Value::Null),
        Kind::Processing => ("processing", Value::Null, Value::Null, Value::Null),
        Kind::Verified => ("verified", Value::Null, report_value(spec), Value::Null),
        Kind::RequiresInput => {
            let code = spec
                .error_code
                .clone()
                .unwrap_or_else(|| "document_unverified_other".to_string());
            let reason = reason_for(&code);
            (
                "requires_input",
                json!({"code": code, "reason": reason}),
                report_value(spec),
                Value::Null,
            )
        }
        Kind::Canceled => ("canceled", Value::Null, Value::Null, Value::Null),
        Kind::Redacted => (
            "verified",
            Value::Null,
            report_value(spec),
            json!({"status": "redacted"}),
        ),
    };
    let metadata: serde_json::Map<String, Value> = if spec.kind == Kind::Redacted {
        serde_json::Map::new()
    } else {
        spec.metadata
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect()
    };
    json!({
        "id": spec.event_id,
        "object": "event",
        "api_version": "2026-07-29.dahlia",
        "created": spec.created,
        "data": {
            "object": {
                "id": spec.session_id,
                "object": "identity.verification_session",
                "client_reference_id": spec.user_ref,
                "client_secret": Value::Null,
                "created": spec.session_created,
                "last_error": last_error,
                "last_verification_report": report,
                "livemode": false,
                "metadata": metadata,
                "options": {"document": {"require_matching_selfie": true}},
                "redaction": redaction,
                "related_customer": Value::Null,
                "related_customer_account": Value::Null,
                "status": status,
                "type": "document",
                "url": Value::Null
            }
        },
        "livemode": false,
        "pending_webhooks": 1,
        "request": {"id": Value::Null, "idempotency_key": Value::Null},
        "type": spec.kind.event_type()
    })
}

/// The exact bytes to send (pretty-printed, as Stripe does).
pub fn event_bytes(spec: &Spec) -> Vec<u8> {
    serde_json::to_vec_pretty(&event_json(spec)).unwrap_or_default()
}

fn report_value(spec: &Spec) -> Value {
    Value::String(spec.report_id.clone().unwrap_or_else(|| new_id("vr")))
}

fn reason_for(code: &str) -> String {
    stripe_webhook::ErrorCode::from(code)
        .explanation()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_events_parse_as_stripe_events() {
        for kind in Kind::ALL {
            let mut spec = Spec::new(kind, "vs_1abc", 1_700_000_000);
            spec.user_ref = Some("user_1".into());
            spec.error_code = Some("document_expired".into());
            let bytes = event_bytes(&spec);
            let event = stripe_webhook::Event::from_slice(&bytes).unwrap();
            assert_eq!(event.type_.as_str(), kind.event_type());
            let session = event.verification_session().unwrap().unwrap();
            assert_eq!(session.id, "vs_1abc");
            assert_eq!(session.client_reference_id.as_deref(), Some("user_1"));
        }
        assert_eq!(Kind::parse("verified"), Some(Kind::Verified));
        assert_eq!(
            Kind::parse("identity.verification_session.requires_input"),
            Some(Kind::RequiresInput)
        );
        assert_eq!(Kind::parse("nope"), None);
    }
}
