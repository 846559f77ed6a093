//! Stripe webhook signatures and Stripe Identity types, with no I/O.
//!
//! * [`Verifier`] checks `Stripe-Signature` headers against one or more
//!   endpoint secrets, with an injected clock; [`sign`] and
//!   [`sign_with_secrets`] produce headers exactly as Stripe does (useful for
//!   tests and emulators).
//! * [`Event`] is the webhook envelope; [`VerificationSession`] and friends
//!   model Stripe Identity. All enums are open (`Unknown(String)`), so new
//!   Stripe values never break parsing.
//!
//! ```
//! use stripe_webhook::{sign, EventType, Verifier};
//!
//! let body = br#"{"id":"evt_1","object":"event","created":1700000000,"livemode":false,
//!   "data":{"object":{"id":"vs_1","object":"identity.verification_session",
//!   "created":1699999000,"livemode":false,"status":"verified"}},
//!   "type":"identity.verification_session.verified"}"#;
//! let header = sign(body, "whsec_test_secret", 1_700_000_000);
//!
//! let verifier = Verifier::new(["whsec_test_secret"]).unwrap();
//! let event = verifier
//!     .construct_event(body, Some(&header), 1_700_000_010)
//!     .unwrap();
//! assert_eq!(event.type_, EventType::VerificationSessionVerified);
//! let session = event.verification_session().unwrap().unwrap();
//! assert_eq!(session.id, "vs_1");
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod string_enum;

pub mod event;
pub mod identity;
pub mod signature;

pub use event::{Event, EventData, EventRequest, EventType};
pub use identity::{
    Check, ErrorCode, LastError, ProvidedDetails, Redaction, RedactionStatus, RelatedPerson,
    ReportRef, SessionStatus, SessionType, VerificationSession,
};
pub use signature::{
    compute_signature, parse_header, sign, sign_with_secrets, InvalidSecret, ParsedHeader,
    SignatureError, VerifiedSignature, Verifier, DEFAULT_FUTURE_SKEW_SECS, DEFAULT_TOLERANCE_SECS,
};

use thiserror::Error;

/// Everything that can go wrong in [`Verifier::construct_event`].
#[derive(Debug, Error)]
pub enum WebhookError {
    /// The signature header was rejected.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The (correctly signed) payload is not JSON.
    #[error("payload is not valid JSON: {0}")]
    InvalidJson(serde_json::Error),
    /// Valid JSON, but not a v1 Stripe event (`object` is not `"event"`, e.g. a
    /// v2 thin event, or a required field is missing).
    #[error("payload is not a Stripe event: {0}")]
    NotAnEvent(String),
}

impl WebhookError {
    /// A stable snake_case code: the signature codes of
    /// [`SignatureError::code`], `"invalid_json"` or `"not_an_event"`.
    pub fn code(&self) -> &'static str {
        match self {
            WebhookError::Signature(e) => e.code(),
            WebhookError::InvalidJson(_) => "invalid_json",
            WebhookError::NotAnEvent(_) => "not_an_event",
        }
    }
}
