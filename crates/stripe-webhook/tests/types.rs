//! Event and Identity type tests.

use std::str::FromStr;

use serde_json::json;
use stripe_webhook::{
    Check, ErrorCode, Event, EventType, LastError, ProvidedDetails, RedactionStatus, ReportRef,
    SessionStatus, SessionType, VerificationSession, WebhookError,
};

const VERIFIED: &[u8] =
    include_bytes!("fixtures/SYNTHESIZED-event.identity.verification_session.verified.json");
const REQUIRES_INPUT: &[u8] =
    include_bytes!("fixtures/SYNTHESIZED-event.identity.verification_session.requires_input.json");

fn session_json() -> serde_json::Value {
    json!({
        "id": "vs_123",
        "object": "identity.verification_session",
        "client_reference_id": "user_9",
        "client_secret": "vs_123_secret_TOPSECRETVALUE",
        "created": 1699999000,
        "last_error": null,
        "last_verification_report": null,
        "livemode": true,
        "metadata": {"email_hint": "alice@example.com"},
        "options": {},
        "provided_details": {"email": "alice-provided@example.com", "phone": "+15550001111"},
        "redaction": null,
        "related_customer": null,
        "related_customer_account": null,
        "related_person": {"account": "acct_1", "person": "person_1"},
        "status": "requires_input",
        "type": "document",
        "url": "https://verify.stripe.com/start/SECRETURLTOKEN",
        "verification_flow": null,
        "verified_outputs": {"first_name": "Alicewonderland", "dob": {"day": 1, "month": 2, "year": 1990}}
    })
}

#[test]
fn verified_fixture_parses() {
    let event = Event::from_slice(VERIFIED).unwrap();
    assert_eq!(event.id, "evt_1TestIdentityVerified0001");
    assert_eq!(event.object, "event");
    assert_eq!(event.api_version.as_deref(), Some("2026-07-29.dahlia"));
    assert_eq!(event.created, 1_700_000_000);
    assert!(!event.livemode);
    assert_eq!(event.pending_webhooks, 1);
    assert_eq!(event.account, None);
    let request = event.request.clone().unwrap();
    assert_eq!(request.id, None);
    assert_eq!(request.idempotency_key, None);
    assert_eq!(event.type_, EventType::VerificationSessionVerified);
    assert!(event.data.previous_attributes.is_none());

    let s = event.verification_session().unwrap().unwrap();
    assert_eq!(s.id, "vs_1TestSessionVerified00001");
    assert_eq!(s.object, "identity.verification_session");
    assert_eq!(s.client_reference_id.as_deref(), Some("user_123"));
    assert_eq!(s.client_secret, None);
    assert_eq!(s.created, 1_699_999_000);
    assert_eq!(s.last_error, None);
    assert_eq!(
        s.last_verification_report.as_ref().and_then(ReportRef::id),
        Some("vr_1TestReportVerified000001")
    );
    assert_eq!(
        s.metadata.get("user_id").map(String::as_str),
        Some("user_123")
    );
    assert_eq!(
        s.options,
        Some(json!({"document": {"require_matching_selfie": true}}))
    );
    assert_eq!(s.redaction, None);
    assert_eq!(s.status, SessionStatus::Verified);
    assert_eq!(s.type_, Some(SessionType::Document));
    assert_eq!(s.url, None);
    assert_eq!(s.verified_outputs, None);
    assert_eq!(s.provided_details, None);
}

#[test]
fn requires_input_fixture_parses() {
    let event = Event::from_slice(REQUIRES_INPUT).unwrap();
    assert_eq!(event.id, "evt_1TestIdentityReqInput0001");
    assert_eq!(event.created, 1_700_000_100);
    assert_eq!(event.type_, EventType::VerificationSessionRequiresInput);
    let s = event.verification_session().unwrap().unwrap();
    assert_eq!(s.id, "vs_1TestSessionReqInput00001");
    assert_eq!(s.status, SessionStatus::RequiresInput);
    assert_eq!(s.client_reference_id, None);
    assert!(s.metadata.is_empty());
    let err = s.last_error.unwrap();
    assert_eq!(err.code, Some(ErrorCode::DocumentExpired));
    assert_eq!(err.reason.as_deref(), Some("The document is expired."));
    assert_eq!(err.code.unwrap().check(), Check::Document);
}

#[test]
fn fixture_event_serde_round_trip() {
    for bytes in [VERIFIED, REQUIRES_INPUT] {
        let event = Event::from_slice(bytes).unwrap();
        let back: serde_json::Value = serde_json::to_value(&event).unwrap();
        let original: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        assert_eq!(back, original);
        let session = event.verification_session().unwrap().unwrap();
        assert_eq!(
            serde_json::to_value(&session).unwrap(),
            original["data"]["object"]
        );
    }
}

#[test]
fn event_type_strings() {
    assert_eq!(EventType::IDENTITY.len(), 6);
    for t in EventType::IDENTITY {
        assert!(t.is_verification_session());
        assert!(t.as_str().starts_with("identity.verification_session."));
        assert_eq!(EventType::from_str(t.as_str()).unwrap(), t);
        assert_eq!(t.to_string(), t.as_str());
        let j = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<EventType>(&j).unwrap(), t);
    }
    let unknown: EventType = serde_json::from_str("\"customer.created\"").unwrap();
    assert_eq!(unknown, EventType::Unknown("customer.created".into()));
    assert!(!unknown.is_verification_session());
    assert_eq!(
        serde_json::to_string(&unknown).unwrap(),
        "\"customer.created\""
    );
    let future = EventType::from("identity.verification_session.updated");
    assert!(future.is_unknown());
    assert!(future.is_verification_session());
    assert!(serde_json::from_str::<EventType>("42").is_err());
}

#[test]
fn unknown_event_type_and_extra_fields_round_trip() {
    let body = json!({
        "id": "evt_x", "object": "event", "created": 1, "livemode": true,
        "account": "acct_1", "context": "ctx_1", "brand_new_field": {"a": 1},
        "data": {"object": {"id": "in_1", "object": "invoice"}, "previous_attributes": {"status": "draft"}},
        "type": "invoice.brand_new"
    });
    let event = Event::from_slice(body.to_string().as_bytes()).unwrap();
    assert_eq!(event.type_, EventType::Unknown("invoice.brand_new".into()));
    assert_eq!(event.account.as_deref(), Some("acct_1"));
    assert_eq!(event.context.as_deref(), Some("ctx_1"));
    assert_eq!(event.pending_webhooks, 0);
    assert_eq!(event.request, None);
    assert_eq!(event.api_version, None);
    assert!(event.verification_session().is_none());
    let back = serde_json::to_value(&event).unwrap();
    assert_eq!(back["type"], "invoice.brand_new");
    assert_eq!(back["data"]["previous_attributes"]["status"], "draft");
    assert!(back.get("brand_new_field").is_none());
    let again: Event = serde_json::from_value(back).unwrap();
    assert_eq!(again, event);
}

#[test]
fn from_slice_error_kinds() {
    let cases: [(&[u8], &str); 8] = [
        (b"not json", "invalid_json"),
        (b"", "invalid_json"),
        (b"[1,2]", "not_an_event"),
        (br#"{"id":"x"}"#, "not_an_event"),
        (br#"{"object":"customer","id":"cus_1"}"#, "not_an_event"),
        (br#"{"object":"v2.core.event","id":"evt_1","type":"x"}"#, "not_an_event"),
        (br#"{"object":"event","id":"evt_1","created":1,"livemode":false,"data":{"object":{}}}"#, "not_an_event"),
        (br#"{"object":"event","id":"evt_1","created":"soon","livemode":false,"data":{"object":{}},"type":"a"}"#, "not_an_event"),
    ];
    for (body, code) in cases {
        let err = Event::from_slice(body).unwrap_err();
        assert_eq!(err.code(), code, "{}", String::from_utf8_lossy(body));
        match (&err, code) {
            (WebhookError::InvalidJson(_), "invalid_json")
            | (WebhookError::NotAnEvent(_), "not_an_event") => {}
            _ => panic!("wrong variant {err:?}"),
        }
    }
}

#[test]
fn verification_session_wrong_shape_is_some_err() {
    let body = json!({
        "id": "evt_x", "object": "event", "created": 1, "livemode": true,
        "data": {"object": {"id": "vs_1"}},
        "type": "identity.verification_session.verified"
    });
    let event = Event::from_slice(body.to_string().as_bytes()).unwrap();
    assert!(matches!(event.verification_session(), Some(Err(_))));
}

#[test]
fn session_unknown_values_and_fields() {
    let mut j = session_json();
    j["status"] = json!("paused_for_review");
    j["type"] = json!("biometric_only");
    j["last_error"] = json!({"code": "brand_new_code", "reason": "x"});
    j["redaction"] = json!({"status": "validated"});
    j["future_field"] = json!([1, 2, 3]);
    let s: VerificationSession = serde_json::from_value(j.clone()).unwrap();
    assert_eq!(s.status, SessionStatus::Unknown("paused_for_review".into()));
    assert_eq!(s.type_, Some(SessionType::Unknown("biometric_only".into())));
    let code = s.last_error.as_ref().unwrap().code.clone().unwrap();
    assert_eq!(code, ErrorCode::Unknown("brand_new_code".into()));
    assert_eq!(code.check(), Check::Unknown);
    assert!(!code.explanation().is_empty());
    assert_eq!(
        s.redaction.as_ref().unwrap().status,
        RedactionStatus::Unknown("validated".into())
    );
    let back = serde_json::to_value(&s).unwrap();
    assert_eq!(back["status"], "paused_for_review");
    assert_eq!(back["type"], "biometric_only");
    assert_eq!(back["last_error"]["code"], "brand_new_code");
    assert_eq!(back["redaction"]["status"], "validated");
    assert!(back.get("future_field").is_none());
    let again: VerificationSession = serde_json::from_value(back).unwrap();
    assert_eq!(again, s);
}

#[test]
fn session_minimal_and_nulls() {
    let s: VerificationSession = serde_json::from_value(json!({
        "id": "vs_1", "object": "identity.verification_session", "created": 5,
        "livemode": false, "status": "processing", "metadata": null, "last_error": {"code": null, "reason": null}
    }))
    .unwrap();
    assert_eq!(s.status, SessionStatus::Processing);
    assert!(s.metadata.is_empty());
    assert_eq!(s.last_error, Some(LastError::default()));
    assert_eq!(s.type_, None);
    let back = serde_json::to_value(&s).unwrap();
    // Expand-only fields stay absent rather than becoming null.
    assert!(back.get("verified_outputs").is_none());
    assert!(back.get("provided_details").is_none());
}

#[test]
fn report_ref_forms() {
    let id: ReportRef = serde_json::from_value(json!("vr_1")).unwrap();
    assert_eq!(id, ReportRef::Id("vr_1".into()));
    assert_eq!(id.id(), Some("vr_1"));
    let expanded: ReportRef =
        serde_json::from_value(json!({"id": "vr_2", "object": "identity.verification_report"}))
            .unwrap();
    assert!(matches!(expanded, ReportRef::Expanded(_)));
    assert_eq!(expanded.id(), Some("vr_2"));
    assert_eq!(
        serde_json::to_value(&expanded).unwrap(),
        json!({"id": "vr_2", "object": "identity.verification_report"})
    );
    assert_eq!(serde_json::to_value(&id).unwrap(), json!("vr_1"));
    let no_id: ReportRef = serde_json::from_value(json!({})).unwrap();
    assert_eq!(no_id.id(), None);
    assert!(serde_json::from_value::<ReportRef>(json!(12)).is_err());
}

#[test]
fn all_20_error_codes() {
    // The 19 of the SDKs' enums plus `address_mismatch` from Stripe's outcomes guide.
    assert_eq!(ErrorCode::ALL.len(), 20);
    let expected = [
        ("abandoned", Check::Session),
        ("consent_declined", Check::Session),
        ("country_not_supported", Check::Session),
        ("device_not_supported", Check::Session),
        ("under_supported_age", Check::Session),
        ("document_expired", Check::Document),
        ("document_type_not_supported", Check::Document),
        ("document_unverified_other", Check::Document),
        ("email_unverified_other", Check::Email),
        ("email_verification_declined", Check::Email),
        ("id_number_insufficient_document_data", Check::IdNumber),
        ("id_number_mismatch", Check::IdNumber),
        ("id_number_unverified_other", Check::IdNumber),
        ("phone_unverified_other", Check::Phone),
        ("phone_verification_declined", Check::Phone),
        ("selfie_document_missing_photo", Check::Selfie),
        ("selfie_face_mismatch", Check::Selfie),
        ("selfie_manipulated", Check::Selfie),
        ("selfie_unverified_other", Check::Selfie),
        ("address_mismatch", Check::Address),
    ];
    let mut explanations = std::collections::HashSet::new();
    for (code, (text, check)) in ErrorCode::ALL.iter().zip(expected) {
        assert_eq!(code.as_str(), text);
        assert_eq!(code.check(), check, "{text}");
        assert!(!code.is_unknown());
        let j = serde_json::to_string(code).unwrap();
        assert_eq!(j, format!("\"{text}\""));
        assert_eq!(&serde_json::from_str::<ErrorCode>(&j).unwrap(), code);
        assert_eq!(&ErrorCode::from_str(text).unwrap(), code);
        assert_eq!(code.to_string(), text);
        let e = code.explanation();
        assert!(e.len() > 10 && e.ends_with('.'), "{text}: {e}");
        assert!(explanations.insert(e), "duplicate explanation for {text}");
    }
    assert_eq!(
        ErrorCode::DocumentExpired.explanation(),
        "The identity document has expired."
    );
    // The docs' `document_type_not_allowed` is not a real code.
    assert!(ErrorCode::from("document_type_not_allowed").is_unknown());
}

#[test]
fn other_enums_round_trip() {
    for (s, text) in [
        (SessionStatus::RequiresInput, "requires_input"),
        (SessionStatus::Processing, "processing"),
        (SessionStatus::Verified, "verified"),
        (SessionStatus::Canceled, "canceled"),
        (SessionStatus::Unknown("x".into()), "x"),
    ] {
        assert_eq!(s.as_str(), text);
        assert_eq!(serde_json::to_value(&s).unwrap(), json!(text));
        assert_eq!(
            serde_json::from_value::<SessionStatus>(json!(text)).unwrap(),
            s
        );
        assert_eq!(text.parse::<SessionStatus>().unwrap(), s);
    }
    assert!(SessionStatus::Verified.is_terminal());
    assert!(!SessionStatus::Processing.is_terminal());
    for (t, text) in [
        (SessionType::Document, "document"),
        (SessionType::IdNumber, "id_number"),
        (SessionType::VerificationFlow, "verification_flow"),
    ] {
        assert_eq!(
            serde_json::from_value::<SessionType>(json!(text)).unwrap(),
            t
        );
        assert_eq!(t.to_string(), text);
    }
    for (r, text) in [
        (RedactionStatus::Processing, "processing"),
        (RedactionStatus::Redacted, "redacted"),
    ] {
        assert_eq!(
            serde_json::from_value::<RedactionStatus>(json!(text)).unwrap(),
            r
        );
        assert_eq!(serde_json::to_value(&r).unwrap(), json!(text));
    }
}

#[test]
fn session_debug_redacts_personal_data() {
    let s: VerificationSession = serde_json::from_value(session_json()).unwrap();
    let dbg = format!("{s:?}");
    for secret in [
        "TOPSECRETVALUE",
        "SECRETURLTOKEN",
        "alice@example.com",
        "alice-provided",
        "+15550001111",
        "Alicewonderland",
        "1990",
    ] {
        assert!(!dbg.contains(secret), "{secret} leaked: {dbg}");
    }
    assert!(dbg.contains("vs_123"));
    assert!(
        dbg.contains("email_hint"),
        "metadata keys stay visible: {dbg}"
    );
    assert!(dbg.contains("RequiresInput"));
    let pd = ProvidedDetails {
        email: Some("bob@example.com".into()),
        phone: None,
    };
    assert!(!format!("{pd:?}").contains("bob@"));
}

#[test]
fn event_debug_redacts_data_object() {
    let mut j = json!({
        "id": "evt_x", "object": "event", "created": 1, "livemode": true,
        "data": {"object": session_json()},
        "type": "identity.verification_session.requires_input"
    });
    j["data"]["previous_attributes"] = json!({"status": "processing"});
    let event = Event::from_slice(j.to_string().as_bytes()).unwrap();
    let dbg = format!("{event:?}");
    assert!(!dbg.contains("TOPSECRETVALUE"), "{dbg}");
    assert!(!dbg.contains("SECRETURLTOKEN"), "{dbg}");
    assert!(!dbg.contains("alice@example.com"), "{dbg}");
    assert!(dbg.contains("vs_123"));
    assert!(dbg.contains("evt_x"));
    assert!(dbg.contains("status"));
}
