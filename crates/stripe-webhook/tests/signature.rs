//! Signature tests: the malformed-header matrix (what each official SDK does), the SDK
//! unit-test cases that apply to a Rust API, and concrete vectors.

use stripe_webhook::{
    compute_signature, parse_header, sign, sign_with_secrets, InvalidSecret, ParsedHeader,
    SignatureError, VerifiedSignature, Verifier, WebhookError, DEFAULT_FUTURE_SKEW_SECS,
    DEFAULT_TOLERANCE_SECS,
};

const SECRET: &str = "whsec_test_secret";
const ROLLED: &str = "whsec_test_secret_rolled_key";
const EMU2: &str = "whsec_emulator_secret_2";
const T: i64 = 1_700_000_000;

/// `JSON.stringify({id, object}, null, 2)`: 51 bytes, no trailing newline.
const P1: &[u8] = b"{\n  \"id\": \"evt_test_webhook\",\n  \"object\": \"event\"\n}";
const P1_SIG: &str = "4f1cd7feda9826e746b7d482c4badebb657398df1099e1046364f6196a230150";
const P1_SIG_ROLLED: &str = "dc80d0334b78e0dbbc3d5352c151a428b746163b94ad381096bb293b9e650f1e";
const P1_SIG_12345: &str = "2672d138c9a412830f3bfe2ecc5bfb3277cf6f5b49d0119d77dd6cb64da1257e";

const VERIFIED: &[u8] =
    include_bytes!("fixtures/SYNTHESIZED-event.identity.verification_session.verified.json");
const REQUIRES_INPUT: &[u8] =
    include_bytes!("fixtures/SYNTHESIZED-event.identity.verification_session.requires_input.json");

/// A complete v1 event (the SDK tests' `evt_test_webhook`, with the required fields).
const FULL_EVENT: &[u8] = br#"{"id":"evt_test_webhook","object":"event","created":1700000000,"livemode":false,"data":{"object":{"id":"cus_123","object":"customer"}},"type":"customer.created"}"#;

fn verifier() -> Verifier {
    Verifier::new([SECRET]).unwrap()
}

fn check(header: &str, now: i64) -> Result<VerifiedSignature, SignatureError> {
    verifier().verify(P1, Some(header), now)
}

fn ok_at(t: i64) -> Result<VerifiedSignature, SignatureError> {
    Ok(VerifiedSignature {
        timestamp: t,
        secret_index: 0,
    })
}

// ---------------------------------------------------------------- vectors

#[test]
fn p1_is_51_bytes() {
    assert_eq!(P1.len(), 51);
}

#[test]
fn vector_p1_three_signatures() {
    assert_eq!(compute_signature(P1, SECRET, T), P1_SIG);
    assert_eq!(compute_signature(P1, ROLLED, T), P1_SIG_ROLLED);
    assert_eq!(compute_signature(P1, SECRET, 12345), P1_SIG_12345);
    assert_eq!(sign(P1, SECRET, T), format!("t={T},v1={P1_SIG}"));
    assert_eq!(check(&format!("t={T},v1={P1_SIG}"), T), ok_at(T));
    let old = Verifier::new([SECRET]).unwrap().with_tolerance(u64::MAX);
    assert_eq!(
        old.verify(P1, Some(&format!("t=12345,v1={P1_SIG_12345}")), T)
            .unwrap()
            .timestamp,
        12345
    );
}

#[test]
fn vector_fixture_sizes() {
    assert_eq!(VERIFIED.len(), 968);
    assert_eq!(REQUIRES_INPUT.len(), 972);
}

#[test]
fn vector_verified_fixture_both_secrets() {
    let s1 = "47ddd1f5d708d18fa2341abccb967a09547cbe0fee1461ac67dff3359905cc16";
    let s2 = "84ad1754b18b29d8d2093dba37552dd483a010cde4170e16c740b769c60e9157";
    assert_eq!(compute_signature(VERIFIED, SECRET, T), s1);
    assert_eq!(compute_signature(VERIFIED, EMU2, T), s2);

    let combined = format!("t=1700000000,v1={s2},v1={s1}");
    assert_eq!(sign_with_secrets(VERIFIED, &[EMU2, SECRET], T), combined);
    for secret in [SECRET, EMU2] {
        let v = Verifier::new([secret]).unwrap();
        assert_eq!(v.verify(VERIFIED, Some(&combined), T), ok_at(T), "{secret}");
        let event = v.construct_event(VERIFIED, Some(&combined), T).unwrap();
        assert_eq!(event.id, "evt_1TestIdentityVerified0001");
    }
    // A verifier holding both secrets reports the first of its own list that matched.
    let both = Verifier::new([EMU2, SECRET]).unwrap();
    assert_eq!(
        both.verify(VERIFIED, Some(&combined), T)
            .unwrap()
            .secret_index,
        0
    );
    let only_second = format!("t=1700000000,v1={s1}");
    assert_eq!(
        both.verify(VERIFIED, Some(&only_second), T)
            .unwrap()
            .secret_index,
        1
    );
}

#[test]
fn vector_requires_input_fixture_both_secrets() {
    let t = 1_700_000_100;
    let s1 = "f2b3d1e39f4ffca053b5b9312df00586139f88f1593cd352cdd6cc973ee2ff10";
    let s2 = "27eb719e1c466df8b515f1fc52cbbfb57d30a34ac5a32a922b8f571c1c5a2f7a";
    assert_eq!(compute_signature(REQUIRES_INPUT, SECRET, t), s1);
    assert_eq!(compute_signature(REQUIRES_INPUT, EMU2, t), s2);
    for (secret, sig) in [(SECRET, s1), (EMU2, s2)] {
        let header = format!("t={t},v1={sig}");
        let v = Verifier::new([secret]).unwrap();
        assert_eq!(v.verify(REQUIRES_INPUT, Some(&header), t), ok_at(t));
        // The other fixture's body does not verify with this header.
        assert_eq!(
            v.verify(VERIFIED, Some(&header), t),
            Err(SignatureError::NoMatchingSignature)
        );
    }
}

// ---------------------------------------------------------------- malformed-header matrix

#[test]
fn e01_valid() {
    assert_eq!(check(&format!("t={T},v1={P1_SIG}"), T), ok_at(T));
}

#[test]
fn e02_valid_then_non_hex() {
    assert_eq!(
        check(&format!("t={T},v1={P1_SIG},v1=bad_signature"), T),
        ok_at(T)
    );
}

#[test]
fn e03_wrong_hex_then_valid() {
    assert_eq!(
        check(&format!("t={T},v1=deadbeef,v1={P1_SIG}"), T),
        ok_at(T)
    );
}

#[test]
fn e04_v0_only() {
    assert_eq!(
        check(&format!("t={T},v0={P1_SIG}"), T),
        Err(SignatureError::NoV1Signature)
    );
}

#[test]
fn e05_v1_and_v0() {
    let v0 = "6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39";
    assert_eq!(check(&format!("t={T},v1={P1_SIG},v0={v0}"), T), ok_at(T));
}

#[test]
fn e06_no_t() {
    assert_eq!(
        check(&format!("v1={P1_SIG}"), T),
        Err(SignatureError::MalformedHeader)
    );
}

#[test]
fn e07_t_not_numeric() {
    assert_eq!(
        check(&format!("t=abc,v1={P1_SIG}"), T),
        Err(SignatureError::MalformedHeader)
    );
}

#[test]
fn e08_t_with_trailing_garbage() {
    assert_eq!(
        check(&format!("t={T}abc,v1={P1_SIG}"), T),
        Err(SignatureError::MalformedHeader)
    );
}

#[test]
fn e09_space_after_comma_is_not_trimmed() {
    assert_eq!(
        check(&format!("t={T}, v1={P1_SIG}"), T),
        Err(SignatureError::NoV1Signature)
    );
    // A space before `t` makes the key " t", so there is no timestamp at all.
    assert_eq!(
        check(&format!("v1={P1_SIG}, t={T}"), T),
        Err(SignatureError::MalformedHeader)
    );
}

#[test]
fn e10_uppercase_hex_never_matches() {
    assert_eq!(
        check(&format!("t={T},v1={}", P1_SIG.to_uppercase()), T),
        Err(SignatureError::NoMatchingSignature)
    );
}

#[test]
fn e11_leading_zero_timestamp_is_reformatted() {
    assert_eq!(check(&format!("t=0{T},v1={P1_SIG}"), T), ok_at(T));
    assert_eq!(check(&format!("t=000{T},v1={P1_SIG}"), T), ok_at(T));
}

#[test]
fn e12_empty_header() {
    assert_eq!(check("", T), Err(SignatureError::MissingHeader));
    assert_eq!(check("   ", T), Err(SignatureError::MissingHeader));
    assert_eq!(
        verifier().verify(P1, None, T),
        Err(SignatureError::MissingHeader)
    );
}

#[test]
fn e13_trailing_comma() {
    assert_eq!(check(&format!("t={T},v1={P1_SIG},"), T), ok_at(T));
    assert_eq!(check(&format!(",,t={T},,v1={P1_SIG},,"), T), ok_at(T));
}

#[test]
fn e14_unknown_scheme_ignored() {
    assert_eq!(check(&format!("t={T},v2=abc,v1={P1_SIG}"), T), ok_at(T));
}

#[test]
fn e15_duplicate_t_is_malformed() {
    assert_eq!(
        check(&format!("t={T},t=1,v1={P1_SIG}"), T),
        Err(SignatureError::MalformedHeader)
    );
    assert_eq!(
        check(&format!("t={T},v1={P1_SIG},t={T}"), T),
        Err(SignatureError::MalformedHeader)
    );
}

#[test]
fn e16_empty_v1_ignored() {
    assert_eq!(check(&format!("t={T},v1={P1_SIG},v1="), T), ok_at(T));
    assert_eq!(
        check(&format!("t={T},v1="), T),
        Err(SignatureError::NoV1Signature)
    );
}

#[test]
fn e17_value_with_extra_equals() {
    assert_eq!(
        check(&format!("t={T},v1={P1_SIG}=x"), T),
        Err(SignatureError::NoMatchingSignature)
    );
    assert_eq!(
        parse_header(&format!("t={T},v1={P1_SIG}=x")).unwrap().v1,
        vec![format!("{P1_SIG}=x")]
    );
}

#[test]
fn e18_far_future_rejected_by_default() {
    let t = T + 3600;
    let header = sign(P1, SECRET, t);
    assert_eq!(
        check(&header, T),
        Err(SignatureError::TimestampInFuture {
            timestamp: t,
            now: T,
            skew: DEFAULT_FUTURE_SKEW_SECS
        })
    );
    // SDK behaviour on request.
    let lax = verifier().with_future_skew(u64::MAX);
    assert_eq!(lax.verify(P1, Some(&header), T), ok_at(t));
}

#[test]
fn e19_age_equal_to_tolerance_passes() {
    let t = T - 300;
    assert_eq!(check(&sign(P1, SECRET, t), T), ok_at(t));
}

#[test]
fn e20_age_one_over_tolerance_fails() {
    let t = T - 301;
    assert_eq!(
        check(&sign(P1, SECRET, t), T),
        Err(SignatureError::TimestampTooOld {
            timestamp: t,
            now: T,
            tolerance: 300
        })
    );
}

// ---------------------------------------------------------------- SDK tests

#[test]
fn sdk_bad_header_strings() {
    for h in [
        "bad_header",
        "I'm not even a real signature header",
        "t=",
        "t",
        "t=,v1=abc",
    ] {
        assert_eq!(check(h, T), Err(SignatureError::MalformedHeader), "{h}");
    }
    // Go's `v1,t=1` is InvalidHeader there; here the bare `v1` is skipped and
    // the header simply has no v1 signature.
    assert_eq!(check("v1,t=1", T), Err(SignatureError::NoV1Signature));
}

#[test]
fn sdk_bad_signature() {
    assert_eq!(
        check(&format!("t={T},v1=bad_signature"), T),
        Err(SignatureError::NoMatchingSignature)
    );
    let deadbeef = hex_of(b"deadbeef");
    assert_eq!(
        check(&format!("t={T},v1={deadbeef}"), T),
        Err(SignatureError::NoMatchingSignature)
    );
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn sdk_tolerance_10() {
    let v = verifier().with_tolerance(10);
    let now = 20_000;
    assert!(matches!(
        v.verify(P1, Some(&sign(P1, SECRET, now - 15)), now),
        Err(SignatureError::TimestampTooOld { .. })
    ));
    assert!(v.verify(P1, Some(&sign(P1, SECRET, now - 9)), now).is_ok());
    assert!(v.verify(P1, Some(&sign(P1, SECRET, now)), now).is_ok());
    assert!(verifier()
        .with_tolerance(20)
        .verify(P1, Some(&sign(P1, SECRET, now - 15)), now)
        .is_ok());
}

#[test]
fn sdk_old_timestamp_with_large_tolerance() {
    let v = verifier().with_tolerance(u64::MAX);
    assert_eq!(
        v.verify(P1, Some(&sign(P1, SECRET, 12345)), T),
        ok_at(12345)
    );
}

#[test]
fn sdk_valid_plus_potato() {
    assert_eq!(
        check(&format!("{},v1=potato", sign(P1, SECRET, T)), T),
        ok_at(T)
    );
}

#[test]
fn sdk_rolled_key_header_verifies_with_either_secret() {
    let header = format!(
        "{},v1={}",
        sign(P1, SECRET, T),
        compute_signature(P1, ROLLED, T)
    );
    assert_ne!(
        compute_signature(P1, SECRET, T),
        compute_signature(P1, ROLLED, T)
    );
    for secret in [SECRET, ROLLED] {
        let v = Verifier::new([secret]).unwrap();
        assert_eq!(v.verify(P1, Some(&header), T), ok_at(T));
    }
    let other = Verifier::new(["whsec_other"]).unwrap();
    assert_eq!(
        other.verify(P1, Some(&header), T),
        Err(SignatureError::NoMatchingSignature)
    );
}

#[test]
fn sdk_signature_checked_before_time() {
    // A stale request with a bad signature reports the signature problem.
    let stale_forged = format!("t={},v1={}", T - 10_000, "0".repeat(64));
    assert_eq!(
        check(&stale_forged, T),
        Err(SignatureError::NoMatchingSignature)
    );
}

#[test]
fn sdk_go_tolerance_edges() {
    assert!(check(&sign(P1, SECRET, T - 300 + 1), T).is_ok());
    assert!(check(&sign(P1, SECRET, T - 301), T).is_err());
    // constructEvent default tolerance: 400 s old fails.
    let r = verifier().construct_event(FULL_EVENT, Some(&sign(FULL_EVENT, SECRET, T - 400)), T);
    assert!(matches!(
        r,
        Err(WebhookError::Signature(
            SignatureError::TimestampTooOld { .. }
        ))
    ));
}

#[test]
fn sdk_construct_event_valid() {
    let header = sign(FULL_EVENT, SECRET, T);
    let event = verifier()
        .construct_event(FULL_EVENT, Some(&header), T)
        .unwrap();
    assert_eq!(event.id, "evt_test_webhook");
    assert!(event.verification_session().is_none());
}

#[test]
fn sdk_invalid_json_after_valid_signature() {
    let mut with_bracket = FULL_EVENT.to_vec();
    with_bracket.push(b'[');
    let bodies: [&[u8]; 3] = [
        b"} I am not valid JSON; 123][",
        b"this is not valid JSON",
        &with_bracket,
    ];
    for body in bodies {
        let header = sign(body, SECRET, T);
        let err = verifier()
            .construct_event(body, Some(&header), T)
            .unwrap_err();
        assert!(matches!(err, WebhookError::InvalidJson(_)), "{err:?}");
        assert_eq!(err.code(), "invalid_json");
    }
}

#[test]
fn sdk_invalid_json_with_bad_signature_reports_signature() {
    let body = b"this is not valid JSON";
    let err = verifier()
        .construct_event(body, Some(&format!("t={T},v1=bad")), T)
        .unwrap_err();
    assert_eq!(err.code(), "no_matching_signature");
}

#[test]
fn sdk_v2_thin_event_is_not_an_event() {
    let body = br#"{"id":"evt_test_webhook","object":"v2.core.event","type":"v1.billing.meter.error_report_triggered","created":"2024-01-01T00:00:00Z"}"#;
    let header = sign(body, SECRET, T);
    let err = verifier()
        .construct_event(body, Some(&header), T)
        .unwrap_err();
    assert!(matches!(err, WebhookError::NotAnEvent(_)), "{err:?}");
    assert_eq!(err.code(), "not_an_event");
    assert!(err.to_string().contains("v2.core.event"));
}

#[test]
fn sdk_p1_lacks_required_fields() {
    // The SDKs' bare `{id, object}` payload is JSON and `object: "event"`, but
    // misses `created`/`data`/`livemode`/`type`, so it is not a usable event here.
    let err = verifier()
        .construct_event(P1, Some(&sign(P1, SECRET, T)), T)
        .unwrap_err();
    assert!(matches!(err, WebhookError::NotAnEvent(_)), "{err:?}");
}

#[test]
fn sdk_secret_with_trailing_space_is_a_different_key() {
    let v = Verifier::new(["whsec_test_secret "]).unwrap();
    assert_eq!(
        v.verify(P1, Some(&sign(P1, SECRET, T)), T),
        Err(SignatureError::NoMatchingSignature)
    );
}

#[test]
fn sdk_appended_newline_breaks_signature() {
    let header = sign(P1, SECRET, T);
    let mut body = P1.to_vec();
    body.push(b'\n');
    assert_eq!(
        verifier().verify(&body, Some(&header), T),
        Err(SignatureError::NoMatchingSignature)
    );
}

// ---------------------------------------------------------------- own behaviour

#[test]
fn tolerance_zero_is_not_off() {
    let v = verifier().with_tolerance(0);
    assert_eq!(v.tolerance(), 0);
    assert_eq!(v.verify(P1, Some(&sign(P1, SECRET, T)), T), ok_at(T));
    assert_eq!(
        v.verify(P1, Some(&sign(P1, SECRET, T - 1)), T),
        Err(SignatureError::TimestampTooOld {
            timestamp: T - 1,
            now: T,
            tolerance: 0
        })
    );
    assert!(v.verify(P1, Some(&sign(P1, SECRET, 12345)), T).is_err());
}

#[test]
fn future_skew_edges() {
    let v = verifier().with_future_skew(60);
    assert_eq!(v.future_skew(), 60);
    assert!(v.verify(P1, Some(&sign(P1, SECRET, T + 60)), T).is_ok());
    assert_eq!(
        v.verify(P1, Some(&sign(P1, SECRET, T + 61)), T),
        Err(SignatureError::TimestampInFuture {
            timestamp: T + 61,
            now: T,
            skew: 60
        })
    );
    let strict = verifier().with_future_skew(0);
    assert!(strict
        .verify(P1, Some(&sign(P1, SECRET, T + 1)), T)
        .is_err());
    assert!(strict.verify(P1, Some(&sign(P1, SECRET, T)), T).is_ok());
}

#[test]
fn defaults() {
    assert_eq!(DEFAULT_TOLERANCE_SECS, 300);
    assert_eq!(DEFAULT_FUTURE_SKEW_SECS, 300);
    let v = verifier();
    assert_eq!(v.tolerance(), 300);
    assert_eq!(v.future_skew(), 300);
    assert_eq!(v.secret_count(), 1);
}

#[test]
fn sign_output_parses_and_verifies() {
    let header = sign(P1, SECRET, T);
    assert_eq!(header.split(',').count(), 2);
    assert!(header.starts_with("t=1700000000,v1="));
    assert_eq!(
        parse_header(&header),
        Ok(ParsedHeader {
            timestamp: T,
            v1: vec![P1_SIG.to_owned()]
        })
    );
    assert_eq!(check(&header, T), ok_at(T));
}

#[test]
fn sign_with_secrets_verifies_with_each_secret() {
    let secrets = [SECRET, ROLLED, EMU2];
    let header = sign_with_secrets(P1, &secrets, T);
    assert_eq!(parse_header(&header).unwrap().v1.len(), 3);
    for secret in secrets {
        let v = Verifier::new([secret]).unwrap();
        assert_eq!(v.verify(P1, Some(&header), T), ok_at(T));
    }
    assert_eq!(sign_with_secrets(P1, &[], T), format!("t={T}"));
    assert_eq!(
        check(&sign_with_secrets(P1, &[], T), T),
        Err(SignatureError::NoV1Signature)
    );
}

#[test]
fn parse_header_collects_all_v1_and_ignores_others() {
    let h = "t=42,v0=aa,v1=one,x=y,v1=two,bare,V1=three,v1=three=3";
    assert_eq!(
        parse_header(h),
        Ok(ParsedHeader {
            timestamp: 42,
            v1: vec!["one".into(), "two".into(), "three=3".into()]
        })
    );
    assert_eq!(
        parse_header("T=42,v1=a"),
        Err(SignatureError::MalformedHeader)
    );
    assert_eq!(
        parse_header("t=-42,v1=a"),
        Err(SignatureError::MalformedHeader)
    );
    assert_eq!(
        parse_header("t=+42,v1=a"),
        Err(SignatureError::MalformedHeader)
    );
    assert_eq!(
        parse_header("t=9223372036854775808,v1=a"),
        Err(SignatureError::MalformedHeader)
    );
    assert_eq!(
        parse_header("t=9223372036854775807").unwrap().timestamp,
        i64::MAX
    );
    assert_eq!(parse_header(""), Err(SignatureError::MissingHeader));
}

#[test]
fn invalid_secrets_rejected() {
    assert!(matches!(
        Verifier::new(Vec::<String>::new()),
        Err(InvalidSecret)
    ));
    assert!(Verifier::new([""]).is_err());
    assert!(Verifier::new([" \t\n"]).is_err());
    assert!(Verifier::new([SECRET, ""]).is_err());
    assert!(Verifier::new([SECRET.to_owned(), ROLLED.to_owned()]).is_ok());
    assert_eq!(
        InvalidSecret.to_string(),
        "webhook signing secret must not be empty"
    );
}

#[test]
fn debug_does_not_print_secrets() {
    let v = Verifier::new([SECRET, ROLLED]).unwrap();
    let dbg = format!("{v:?}");
    assert!(!dbg.contains("whsec"), "{dbg}");
    assert!(dbg.contains('2'), "{dbg}");
}

#[test]
fn error_codes_and_messages() {
    let cases = [
        (
            SignatureError::MissingHeader,
            "missing_signature_header",
            "No stripe-signature header value was provided",
        ),
        (
            SignatureError::MalformedHeader,
            "malformed_signature_header",
            "Unable to extract timestamp and signatures from header",
        ),
        (
            SignatureError::NoV1Signature,
            "no_v1_signature",
            "No signatures found with expected scheme v1",
        ),
        (
            SignatureError::NoMatchingSignature,
            "no_matching_signature",
            "No signatures found matching the expected signature for payload",
        ),
        (
            SignatureError::TimestampTooOld {
                timestamp: 1,
                now: 400,
                tolerance: 300,
            },
            "timestamp_too_old",
            "Timestamp outside the tolerance zone",
        ),
        (
            SignatureError::TimestampInFuture {
                timestamp: 900,
                now: 1,
                skew: 300,
            },
            "timestamp_in_future",
            "Timestamp outside the tolerance zone",
        ),
    ];
    for (err, code, msg) in cases {
        assert_eq!(err.code(), code);
        assert!(err.to_string().starts_with(msg), "{err}");
        let wrapped = WebhookError::from(err.clone());
        assert_eq!(wrapped.code(), code);
        assert_eq!(wrapped.to_string(), err.to_string());
    }
}

#[test]
fn extreme_now_values_do_not_panic() {
    let header = sign(P1, SECRET, T);
    for now in [i64::MIN, -1, 0, i64::MAX] {
        let _ = verifier().verify(P1, Some(&header), now);
        let _ = verifier()
            .with_tolerance(u64::MAX)
            .with_future_skew(u64::MAX)
            .verify(P1, Some(&header), now)
            .unwrap();
    }
}

#[test]
fn empty_payload_is_just_bytes() {
    let header = sign(b"", SECRET, T);
    assert_eq!(verifier().verify(b"", Some(&header), T), ok_at(T));
    let err = verifier()
        .construct_event(b"", Some(&header), T)
        .unwrap_err();
    assert_eq!(err.code(), "invalid_json");
}

#[test]
fn non_utf8_payload_is_signed_byte_for_byte() {
    let body = [0xff, 0xfe, 0x00, b'{'];
    let header = sign(&body, SECRET, T);
    assert_eq!(verifier().verify(&body, Some(&header), T), ok_at(T));
}
