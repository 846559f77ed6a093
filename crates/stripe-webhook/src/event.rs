//! The Stripe `Event` envelope and its `type` strings.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::identity::VerificationSession;
use crate::string_enum::string_enum;
use crate::WebhookError;

/// Prefix shared by every Identity VerificationSession event type.
const VERIFICATION_SESSION_PREFIX: &str = "identity.verification_session.";

string_enum! {
    /// An event `type`. Only the Identity VerificationSession types are named;
    /// everything else (other products, future types) is kept as `Unknown`,
    /// which is never a parse error.
    pub enum EventType {
        /// `identity.verification_session.created`
        VerificationSessionCreated => "identity.verification_session.created",
        /// `identity.verification_session.processing`: the user submitted.
        VerificationSessionProcessing => "identity.verification_session.processing",
        /// `identity.verification_session.verified`: every check passed.
        VerificationSessionVerified => "identity.verification_session.verified",
        /// `identity.verification_session.requires_input`: a check failed; see `last_error`.
        VerificationSessionRequiresInput => "identity.verification_session.requires_input",
        /// `identity.verification_session.canceled` (also fires on redaction of a requires_input session).
        VerificationSessionCanceled => "identity.verification_session.canceled",
        /// `identity.verification_session.redacted`: not sent to `*` endpoints; subscribe explicitly.
        VerificationSessionRedacted => "identity.verification_session.redacted",
    }
}

impl EventType {
    /// The six Identity VerificationSession event types, e.g. for
    /// `enabled_events` when creating a webhook endpoint.
    pub const IDENTITY: [EventType; 6] = [
        EventType::VerificationSessionCreated,
        EventType::VerificationSessionProcessing,
        EventType::VerificationSessionVerified,
        EventType::VerificationSessionRequiresInput,
        EventType::VerificationSessionCanceled,
        EventType::VerificationSessionRedacted,
    ];

    /// `true` when `data.object` is a VerificationSession: the six known types
    /// and any future `identity.verification_session.*` type.
    pub fn is_verification_session(&self) -> bool {
        match self {
            EventType::Unknown(s) => s.starts_with(VERIFICATION_SESSION_PREFIX),
            _ => true,
        }
    }
}

/// A Stripe event as delivered to a webhook endpoint (`object: "event"`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// `evt_…`; the de-duplication key (Stripe delivers at least once).
    pub id: String,
    /// Always `"event"` for an `Event` produced by [`Event::from_slice`].
    pub object: String,
    /// The connected account the event came from (Connect endpoints only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// API version used to render `data`; null for very old events.
    #[serde(default)]
    pub api_version: Option<String>,
    /// Authentication context for fetching related objects (newer field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Creation time, unix seconds.
    pub created: i64,
    /// The object snapshot.
    pub data: EventData,
    /// Live or test mode.
    pub livemode: bool,
    /// Endpoints that have not acknowledged yet.
    #[serde(default)]
    pub pending_webhooks: i64,
    /// The API request that caused the event, if any.
    #[serde(default)]
    pub request: Option<EventRequest>,
    /// The event type.
    #[serde(rename = "type")]
    pub type_: EventType,
}

/// `data` of an event: a snapshot of the object at the time of the event.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct EventData {
    /// The object (for Identity events: the VerificationSession), kept as
    /// raw JSON so any product's events can be carried.
    pub object: serde_json::Value,
    /// Previous values of changed fields (`*.updated` events only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_attributes: Option<serde_json::Value>,
}

impl EventData {
    /// `data.object.id`: the id of the object the event is about (for Identity events, the
    /// `vs_…` session), whatever the object's type.
    pub fn object_id(&self) -> Option<&str> {
        self.object.get("id").and_then(|v| v.as_str())
    }
}

impl fmt::Debug for EventData {
    /// The snapshot may hold personal data and one-time secrets (`client_secret`,
    /// `url`, metadata, verified outputs), so Debug shows only the object's
    /// kind and id, and the names of changed fields.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let str_field = |key: &str| self.object.get(key).and_then(|v| v.as_str());
        let mut d = f.debug_struct("EventData");
        d.field("object.object", &str_field("object"))
            .field("object.id", &str_field("id"))
            .field("object", &format_args!("<redacted>"));
        if let Some(prev) = &self.previous_attributes {
            let keys: Vec<&str> = prev
                .as_object()
                .map(|m| m.keys().map(String::as_str).collect())
                .unwrap_or_default();
            d.field("previous_attributes.keys", &keys);
        }
        d.finish()
    }
}

/// `request` of an event: `id` is null for automatic events.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct EventRequest {
    /// `req_…`, or `None` when no API request caused the event.
    #[serde(default)]
    pub id: Option<String>,
    /// The idempotency key of that request, if one was sent.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

impl Event {
    /// Parses a raw payload into an `Event`.
    ///
    /// Errors are typed so a receiver can answer precisely:
    /// [`WebhookError::InvalidJson`] for bytes that are not JSON, and
    /// [`WebhookError::NotAnEvent`] for JSON whose `object` is not `"event"`
    /// (including v2 thin events, `object: "v2.core.event"`, which must be
    /// handled as event notifications instead) or that lacks a required field
    /// (`id`, `type`, `created`, `data`, `livemode`).
    pub fn from_slice(payload: &[u8]) -> Result<Event, WebhookError> {
        let value: serde_json::Value =
            serde_json::from_slice(payload).map_err(WebhookError::InvalidJson)?;
        let Some(map) = value.as_object() else {
            return Err(WebhookError::NotAnEvent(
                "expected a JSON object".to_owned(),
            ));
        };
        match map.get("object").and_then(|o| o.as_str()) {
            Some("event") => {}
            Some("v2.core.event") => {
                return Err(WebhookError::NotAnEvent(
                    "object is \"v2.core.event\" (a v2 thin event notification, not a v1 event)"
                        .to_owned(),
                ))
            }
            Some(other) => {
                return Err(WebhookError::NotAnEvent(format!(
                    "object is {other:?}, expected \"event\""
                )))
            }
            None => {
                return Err(WebhookError::NotAnEvent(
                    "missing string field `object`".to_owned(),
                ))
            }
        }
        serde_json::from_value(value).map_err(|e| WebhookError::NotAnEvent(e.to_string()))
    }

    /// `data.object` as a [`VerificationSession`] when the type is
    /// `identity.verification_session.*`; `None` for other event types.
    pub fn verification_session(&self) -> Option<Result<VerificationSession, serde_json::Error>> {
        if !self.type_.is_verification_session() {
            return None;
        }
        Some(VerificationSession::deserialize(&self.data.object))
    }
}
