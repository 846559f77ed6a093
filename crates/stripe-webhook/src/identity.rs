//! Stripe Identity `VerificationSession` types.
//!
//! Every enum is open (`Unknown(String)`) and unknown JSON fields are ignored,
//! so new Stripe API versions never break parsing of a webhook.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::string_enum::string_enum;

/// A VerificationSession (`object: "identity.verification_session"`, id `vs_…`).
///
/// `Debug` is hand-written and redacts `client_secret`, `url`, metadata values,
/// `provided_details` and `verified_outputs`: they are single-use credentials
/// or personal data and must not reach logs.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct VerificationSession {
    /// `vs_…`
    pub id: String,
    /// `"identity.verification_session"`
    pub object: String,
    /// Your own reference (e.g. a user id).
    #[serde(default)]
    pub client_reference_id: Option<String>,
    /// For Stripe.js; single use, expires after 24 h. Never log or store it.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Creation time, unix seconds.
    pub created: i64,
    /// Why the session needs input again (set with `requires_input`).
    #[serde(default)]
    pub last_error: Option<LastError>,
    /// The latest VerificationReport id, or the expanded report.
    #[serde(default)]
    pub last_verification_report: Option<ReportRef>,
    /// Live or test mode.
    pub livemode: bool,
    /// Your key/value pairs; erased on redaction. A JSON `null` reads as empty.
    #[serde(default, deserialize_with = "null_as_empty_map")]
    pub metadata: BTreeMap<String, String>,
    /// Check options (`document`, `email`, `id_number`, `matching`, `phone`).
    #[serde(default)]
    pub options: Option<serde_json::Value>,
    /// Only present when expanded; absent keys stay absent when serialized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provided_details: Option<ProvidedDetails>,
    /// `None` unless a redaction was requested.
    #[serde(default)]
    pub redaction: Option<Redaction>,
    /// `cus_…`
    #[serde(default)]
    pub related_customer: Option<String>,
    /// ID of the Account representing a customer.
    #[serde(default)]
    pub related_customer_account: Option<String>,
    /// Connect person this session is for (optional in the API; omitted
    /// from the output when `None`, as in Stripe's own fixtures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_person: Option<RelatedPerson>,
    /// Lifecycle status.
    pub status: SessionStatus,
    /// `document`, `id_number` or `verification_flow`.
    #[serde(default, rename = "type")]
    pub type_: Option<SessionType>,
    /// Hosted-flow URL; single use, expires after 48 h. Never log or store it.
    #[serde(default)]
    pub url: Option<String>,
    /// Dashboard verification flow id, when created from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_flow: Option<String>,
    /// Only present when expanded (never in webhook payloads); personal data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_outputs: Option<serde_json::Value>,
}

fn null_as_empty_map<'de, D>(deserializer: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(Option::<BTreeMap<String, String>>::deserialize(deserializer)?.unwrap_or_default())
}

/// Placeholder printed by the redacting `Debug` impls.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Shows whether an optional secret/personal value is present, never its content.
fn redact_opt<T>(value: &Option<T>) -> Option<Redacted> {
    value.as_ref().map(|_| Redacted)
}

impl fmt::Debug for VerificationSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let metadata: BTreeMap<&str, Redacted> = self
            .metadata
            .keys()
            .map(|k| (k.as_str(), Redacted))
            .collect();
        f.debug_struct("VerificationSession")
            .field("id", &self.id)
            .field("object", &self.object)
            .field("client_reference_id", &self.client_reference_id)
            .field("client_secret", &redact_opt(&self.client_secret))
            .field("created", &self.created)
            .field("last_error", &self.last_error)
            .field("last_verification_report", &self.last_verification_report)
            .field("livemode", &self.livemode)
            .field("metadata", &metadata)
            .field("options", &self.options)
            .field("provided_details", &redact_opt(&self.provided_details))
            .field("redaction", &self.redaction)
            .field("related_customer", &self.related_customer)
            .field("related_customer_account", &self.related_customer_account)
            .field("related_person", &self.related_person)
            .field("status", &self.status)
            .field("type_", &self.type_)
            .field("url", &redact_opt(&self.url))
            .field("verification_flow", &self.verification_flow)
            .field("verified_outputs", &redact_opt(&self.verified_outputs))
            .finish()
    }
}

string_enum! {
    /// `status` of a VerificationSession. There is no `redacted` status;
    /// see [`Redaction`].
    pub enum SessionStatus {
        /// Needs (new) input from the user; `last_error` says why after a failure.
        RequiresInput => "requires_input",
        /// Submitted; checks are running.
        Processing => "processing",
        /// Every check passed.
        Verified => "verified",
        /// Invalidated; no further submissions (terminal).
        Canceled => "canceled",
    }
}

impl SessionStatus {
    /// `true` for statuses that never change again (`verified`, `canceled`).
    pub fn is_terminal(&self) -> bool {
        matches!(self, SessionStatus::Verified | SessionStatus::Canceled)
    }
}

string_enum! {
    /// `type` of a VerificationSession.
    pub enum SessionType {
        /// Document check (optionally with selfie and ID number).
        Document => "document",
        /// ID-number-only check.
        IdNumber => "id_number",
        /// Created from a Dashboard verification flow.
        VerificationFlow => "verification_flow",
    }
}

string_enum! {
    /// `redaction.status`.
    pub enum RedactionStatus {
        /// Redaction requested; can take up to 4 days.
        Processing => "processing",
        /// Redaction finished (the `…redacted` event fires).
        Redacted => "redacted",
    }
}

/// `last_error` of a VerificationSession.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LastError {
    /// Machine-readable reason; `None` when Stripe sends `null`.
    #[serde(default)]
    pub code: Option<ErrorCode>,
    /// Human-readable reason from Stripe, suitable for showing to the user.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `last_verification_report`: an id, or the expanded report object.
#[derive(Debug, Clone, PartialEq)]
pub enum ReportRef {
    /// The `vr_…` id (the default, unexpanded form).
    Id(String),
    /// The expanded VerificationReport, kept as raw JSON.
    Expanded(Box<serde_json::Value>),
}

impl ReportRef {
    /// The report id: the string itself, or the expanded object's `id`.
    pub fn id(&self) -> Option<&str> {
        match self {
            ReportRef::Id(id) => Some(id),
            ReportRef::Expanded(obj) => obj.get("id").and_then(|v| v.as_str()),
        }
    }
}

impl Serialize for ReportRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ReportRef::Id(id) => serializer.serialize_str(id),
            ReportRef::Expanded(obj) => obj.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for ReportRef {
    /// Like `#[serde(untagged)]`, but only a string or a JSON object is
    /// accepted, so a number or array is an error rather than an "expanded"
    /// report.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(id) => Ok(ReportRef::Id(id)),
            obj @ serde_json::Value::Object(_) => Ok(ReportRef::Expanded(Box::new(obj))),
            other => Err(serde::de::Error::custom(format!(
                "last_verification_report must be a string or an object, got {other}"
            ))),
        }
    }
}

/// `redaction` of a VerificationSession.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Redaction {
    /// Progress of the redaction.
    pub status: RedactionStatus,
}

/// `provided_details` (only when expanded). `Debug` redacts both fields.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProvidedDetails {
    /// E-mail address the user was asked to verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Phone number the user was asked to verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

impl fmt::Debug for ProvidedDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProvidedDetails")
            .field("email", &redact_opt(&self.email))
            .field("phone", &redact_opt(&self.phone))
            .finish()
    }
}

/// `related_person` of a VerificationSession (Connect).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RelatedPerson {
    /// `acct_…`
    #[serde(default)]
    pub account: Option<String>,
    /// `person_…`
    #[serde(default)]
    pub person: Option<String>,
}

/// Which verification check an [`ErrorCode`] belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Check {
    /// The user session itself (abandoned, consent, device, country, age).
    Session,
    /// The identity document.
    Document,
    /// The ID number lookup.
    IdNumber,
    /// E-mail verification.
    Email,
    /// Phone verification.
    Phone,
    /// The selfie match.
    Selfie,
    /// The address check (the address matched against global databases).
    Address,
    /// An error code this crate does not know.
    Unknown,
}

impl Check {
    /// snake_case name, matching the report's check names.
    pub fn as_str(&self) -> &'static str {
        match self {
            Check::Session => "session",
            Check::Document => "document",
            Check::IdNumber => "id_number",
            Check::Email => "email",
            Check::Phone => "phone",
            Check::Selfie => "selfie",
            Check::Address => "address",
            Check::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

string_enum! {
    /// Session-level `last_error.code` values. Treat the set
    /// as open: unknown codes parse as `Unknown` and round-trip.
    pub enum ErrorCode {
        /// `abandoned`
        Abandoned => "abandoned",
        /// `consent_declined`
        ConsentDeclined => "consent_declined",
        /// `country_not_supported`
        CountryNotSupported => "country_not_supported",
        /// `device_not_supported`
        DeviceNotSupported => "device_not_supported",
        /// `under_supported_age`
        UnderSupportedAge => "under_supported_age",
        /// `document_expired`
        DocumentExpired => "document_expired",
        /// `document_type_not_supported` (there is no `document_type_not_allowed` code)
        DocumentTypeNotSupported => "document_type_not_supported",
        /// `document_unverified_other`
        DocumentUnverifiedOther => "document_unverified_other",
        /// `email_unverified_other`
        EmailUnverifiedOther => "email_unverified_other",
        /// `email_verification_declined`
        EmailVerificationDeclined => "email_verification_declined",
        /// `id_number_insufficient_document_data`
        IdNumberInsufficientDocumentData => "id_number_insufficient_document_data",
        /// `id_number_mismatch`
        IdNumberMismatch => "id_number_mismatch",
        /// `id_number_unverified_other`
        IdNumberUnverifiedOther => "id_number_unverified_other",
        /// `phone_unverified_other`
        PhoneUnverifiedOther => "phone_unverified_other",
        /// `phone_verification_declined`
        PhoneVerificationDeclined => "phone_verification_declined",
        /// `selfie_document_missing_photo`
        SelfieDocumentMissingPhoto => "selfie_document_missing_photo",
        /// `selfie_face_mismatch`
        SelfieFaceMismatch => "selfie_face_mismatch",
        /// `selfie_manipulated`
        SelfieManipulated => "selfie_manipulated",
        /// `selfie_unverified_other`
        SelfieUnverifiedOther => "selfie_unverified_other",
        /// `address_mismatch`: listed in Stripe's guide *Handle verification outcomes* (its
        /// own table, the address check) but not yet in the SDKs' enums.
        AddressMismatch => "address_mismatch",
    }
}

impl ErrorCode {
    /// The 20 known codes: the 19 of the SDKs' enums in Stripe's order, then `address_mismatch`
    /// from Stripe's guide.
    pub const ALL: [ErrorCode; 20] = [
        ErrorCode::Abandoned,
        ErrorCode::ConsentDeclined,
        ErrorCode::CountryNotSupported,
        ErrorCode::DeviceNotSupported,
        ErrorCode::UnderSupportedAge,
        ErrorCode::DocumentExpired,
        ErrorCode::DocumentTypeNotSupported,
        ErrorCode::DocumentUnverifiedOther,
        ErrorCode::EmailUnverifiedOther,
        ErrorCode::EmailVerificationDeclined,
        ErrorCode::IdNumberInsufficientDocumentData,
        ErrorCode::IdNumberMismatch,
        ErrorCode::IdNumberUnverifiedOther,
        ErrorCode::PhoneUnverifiedOther,
        ErrorCode::PhoneVerificationDeclined,
        ErrorCode::SelfieDocumentMissingPhoto,
        ErrorCode::SelfieFaceMismatch,
        ErrorCode::SelfieManipulated,
        ErrorCode::SelfieUnverifiedOther,
        ErrorCode::AddressMismatch,
    ];

    /// The check that produced this error.
    pub fn check(&self) -> Check {
        use ErrorCode::*;
        match self {
            Abandoned | ConsentDeclined | CountryNotSupported | DeviceNotSupported
            | UnderSupportedAge => Check::Session,
            DocumentExpired | DocumentTypeNotSupported | DocumentUnverifiedOther => Check::Document,
            EmailUnverifiedOther | EmailVerificationDeclined => Check::Email,
            IdNumberInsufficientDocumentData | IdNumberMismatch | IdNumberUnverifiedOther => {
                Check::IdNumber
            }
            PhoneUnverifiedOther | PhoneVerificationDeclined => Check::Phone,
            SelfieDocumentMissingPhoto
            | SelfieFaceMismatch
            | SelfieManipulated
            | SelfieUnverifiedOther => Check::Selfie,
            AddressMismatch => Check::Address,
            Unknown(_) => Check::Unknown,
        }
    }

    /// A plain-language explanation that an operator or end user can read.
    pub fn explanation(&self) -> &'static str {
        use ErrorCode::*;
        match self {
            Abandoned => "The verification was started but never submitted.",
            ConsentDeclined => "The user declined to be verified by Stripe.",
            CountryNotSupported => "Stripe cannot verify people from this country.",
            DeviceNotSupported => {
                "The device has no camera, or permission to use the camera was refused."
            }
            UnderSupportedAge => "The user is below the minimum age that can be verified.",
            DocumentExpired => "The identity document has expired.",
            DocumentTypeNotSupported => {
                "This type of identity document is not accepted for this verification."
            }
            DocumentUnverifiedOther => "The identity document could not be verified.",
            EmailUnverifiedOther => "The email address could not be verified.",
            EmailVerificationDeclined => {
                "The user did not complete the email verification (one-time code)."
            }
            IdNumberInsufficientDocumentData => {
                "The document did not contain enough information to check the ID number."
            }
            IdNumberMismatch => {
                "The ID number and personal details could not be matched in official records."
            }
            IdNumberUnverifiedOther => "The ID number could not be verified.",
            PhoneUnverifiedOther => "The phone number could not be verified.",
            PhoneVerificationDeclined => {
                "The user did not complete the phone verification (one-time code)."
            }
            SelfieDocumentMissingPhoto => "The identity document has no photo of a face.",
            SelfieFaceMismatch => "The selfie does not match the face on the identity document.",
            SelfieManipulated => "The selfie image appears to have been manipulated.",
            SelfieUnverifiedOther => "The selfie could not be verified.",
            AddressMismatch => {
                "The address could not be matched against official or commercial records."
            }
            Unknown(_) => "The verification failed for a reason not known to this version.",
        }
    }
}
