//! The emulator's records and how each is rendered as a Stripe API object.
//!
//! Records keep a little more than the public object (the hosted-flow token,
//! every signing secret, the endpoint's failure streak); rendering decides
//! what a client may see, e.g. the endpoint `secret` only on create, `url` and
//! `client_secret` only while a session is `requires_input`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::person::VerifiedPerson;

/// The API version stamped on events (the release train current SDKs pin).
pub const API_VERSION: &str = "2026-07-29.dahlia";

pub const SESSION_OBJECT: &str = "identity.verification_session";
pub const REPORT_OBJECT: &str = "identity.verification_report";

/// Event types that `*` does not cover: an endpoint must name them explicitly.
pub const EXPLICIT_ONLY_EVENTS: &[&str] = &["identity.verification_session.redacted"];

/// Every event type this emulator emits.
pub const EVENT_TYPES: &[&str] = &[
    "identity.verification_session.created",
    "identity.verification_session.processing",
    "identity.verification_session.verified",
    "identity.verification_session.requires_input",
    "identity.verification_session.canceled",
    "identity.verification_session.redacted",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    RequiresInput,
    Processing,
    Verified,
    Canceled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::RequiresInput => "requires_input",
            Status::Processing => "processing",
            Status::Verified => "verified",
            Status::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [
            Status::RequiresInput,
            Status::Processing,
            Status::Verified,
            Status::Canceled,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LastError {
    pub code: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub created: i64,
    pub status: Status,
    #[serde(rename = "type")]
    pub kind: String,
    pub verification_flow: Option<String>,
    pub client_reference_id: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub options: Value,
    pub provided_details: Value,
    pub return_url: Option<String>,
    pub related_customer: Option<String>,
    pub related_customer_account: Option<String>,
    pub related_person: Option<Value>,
    pub last_error: Option<LastError>,
    pub last_verification_report: Option<String>,
    /// `processing` or `redacted` once a redaction was requested.
    pub redaction: Option<String>,
    /// Makes `url` and `client_secret` unguessable; rotated on every submission,
    /// so each link is single use as at Stripe.
    pub token: String,
    /// Who the session verified (shown as `verified_outputs`); set once it is `verified`.
    #[serde(default)]
    pub person: Option<VerifiedPerson>,
}

impl Session {
    /// The public object. `base_url` is where the hosted-flow stand-in is served.
    pub fn render(&self, base_url: &str) -> Value {
        let open = self.status == Status::RequiresInput;
        let mut o = json!({
            "id": self.id,
            "object": SESSION_OBJECT,
            "client_reference_id": self.client_reference_id,
            "client_secret": if open { Some(format!("{}_secret_{}", self.id, self.token)) } else { None },
            "created": self.created,
            "last_error": self.last_error.as_ref().map(|e| json!({"code": e.code, "reason": e.reason})),
            "last_verification_report": self.last_verification_report,
            "livemode": false,
            "metadata": self.metadata,
            "options": self.options,
            "redaction": self.redaction.as_ref().map(|s| json!({"status": s})),
            "related_customer": self.related_customer,
            "related_customer_account": self.related_customer_account,
            "status": self.status.as_str(),
            "type": self.kind,
            "url": if open { Some(format!("{}/verify/{}?token={}", base_url.trim_end_matches('/'), self.id, self.token)) } else { None },
        });
        if let Some(rp) = &self.related_person {
            o["related_person"] = rp.clone();
        }
        if let Some(flow) = &self.verification_flow {
            o["verification_flow"] = json!(flow);
        }
        o
    }

    /// Erases personal data and metadata, as Stripe's redaction does.
    pub fn redact_fields(&mut self) {
        self.metadata.clear();
        self.provided_details = redacted_tree(&self.provided_details);
        self.person = self.person.as_ref().map(VerifiedPerson::redacted);
    }
}

/// Replaces every string leaf with `[redacted]` except country codes, and every
/// date with 1/1/1, which is how Stripe shows redacted verification data.
pub fn redacted_tree(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let is_date =
                m.contains_key("year") && m.contains_key("month") && m.contains_key("day");
            if is_date {
                return json!({"day": 1, "month": 1, "year": 1});
            }
            let mut out = Map::new();
            for (k, child) in m {
                let keep = matches!(
                    k.as_str(),
                    "country"
                        | "issuing_country"
                        | "status"
                        | "type"
                        | "id_number_type"
                        | "object"
                        | "id"
                );
                out.insert(
                    k.clone(),
                    if keep {
                        child.clone()
                    } else {
                        redacted_tree(child)
                    },
                );
            }
            Value::Object(out)
        }
        Value::String(_) => json!("[redacted]"),
        Value::Array(items) => Value::Array(items.iter().map(redacted_tree).collect()),
        other => other.clone(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreviousSecret {
    pub secret: String,
    /// Unix seconds after which deliveries stop signing with this secret.
    pub expires_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: String,
    pub created: i64,
    pub url: String,
    pub enabled_events: Vec<String>,
    pub description: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub api_version: Option<String>,
    pub disabled: bool,
    pub secret: String,
    pub previous_secrets: Vec<PreviousSecret>,
    /// When the current run of failed deliveries began (ms); `None` after a success.
    pub failing_since_ms: Option<i64>,
}

impl Endpoint {
    pub fn render(&self, with_secret: bool) -> Value {
        let mut o = json!({
            "id": self.id,
            "object": "webhook_endpoint",
            "api_version": self.api_version,
            "application": null,
            "created": self.created,
            "description": self.description,
            "enabled_events": self.enabled_events,
            "livemode": false,
            "metadata": self.metadata,
            "status": if self.disabled { "disabled" } else { "enabled" },
            "url": self.url,
        });
        if with_secret {
            o["secret"] = json!(self.secret);
        }
        o
    }

    /// Whether this endpoint wants events of type `event_type`.
    pub fn subscribed(&self, event_type: &str) -> bool {
        self.enabled_events
            .iter()
            .any(|e| e == event_type || (e == "*" && !EXPLICIT_ONLY_EVENTS.contains(&event_type)))
    }

    /// Secrets to sign with at `now_s`: the current one first, then any rolled-over one still valid.
    pub fn active_secrets(&self, now_s: i64) -> Vec<&str> {
        let mut v = vec![self.secret.as_str()];
        v.extend(
            self.previous_secrets
                .iter()
                .filter(|p| p.expires_at > now_s)
                .map(|p| p.secret.as_str()),
        );
        v
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub created: i64,
    #[serde(rename = "type")]
    pub kind: String,
    /// The session snapshot at the time of the change.
    pub object: Value,
    pub pending_webhooks: i64,
    pub request_id: Option<String>,
    pub idempotency_key: Option<String>,
}

impl Event {
    pub fn render(&self) -> Value {
        json!({
            "id": self.id,
            "object": "event",
            "api_version": API_VERSION,
            "created": self.created,
            "data": { "object": self.object },
            "livemode": false,
            "pending_webhooks": self.pending_webhooks,
            "request": { "id": self.request_id, "idempotency_key": self.idempotency_key },
            "type": self.kind,
        })
    }

    pub fn object_id(&self) -> Option<&str> {
        self.object.get("id").and_then(Value::as_str)
    }
}

/// Glob match with `*` as "any sequence", for `type=identity.verification_session.*`.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(pos) => rest = &rest[pos + part.len()..],
                None => return false,
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globbing() {
        assert!(glob_match(
            "identity.verification_session.*",
            "identity.verification_session.verified"
        ));
        assert!(!glob_match(
            "identity.verification_session.*",
            "charge.succeeded"
        ));
        assert!(glob_match("*", "x"));
        assert!(glob_match("a.*.c", "a.b.c"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
    }

    #[test]
    fn star_excludes_redacted() {
        let ep = Endpoint {
            id: "we_1".into(),
            created: 0,
            url: "http://x".into(),
            enabled_events: vec!["*".into()],
            description: None,
            metadata: BTreeMap::new(),
            api_version: None,
            disabled: false,
            secret: "whsec_a".into(),
            previous_secrets: vec![PreviousSecret {
                secret: "whsec_old".into(),
                expires_at: 100,
            }],
            failing_since_ms: None,
        };
        assert!(ep.subscribed("identity.verification_session.verified"));
        assert!(!ep.subscribed("identity.verification_session.redacted"));
        assert_eq!(ep.active_secrets(99), vec!["whsec_a", "whsec_old"]);
        assert_eq!(ep.active_secrets(100), vec!["whsec_a"]);
    }

    #[test]
    fn redaction_keeps_country() {
        let v = json!({"first_name":"Jenny","dob":{"day":3,"month":4,"year":1990},"address":{"country":"US","city":"SF"}});
        assert_eq!(
            redacted_tree(&v),
            json!({"first_name":"[redacted]","dob":{"day":1,"month":1,"year":1},"address":{"country":"US","city":"[redacted]"}})
        );
    }
}
