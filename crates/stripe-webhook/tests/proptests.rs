//! Property tests: tampering is always detected, parsing never panics, and
//! signing round-trips for arbitrary secrets and payloads.

use proptest::prelude::*;
use stripe_webhook::{compute_signature, parse_header, sign, SignatureError, Verifier};

const SECRET: &str = "whsec_test_secret";
const NOW: i64 = 1_700_000_000;

fn lax(secret: &str) -> Verifier {
    Verifier::new([secret])
        .unwrap()
        .with_tolerance(u64::MAX)
        .with_future_skew(u64::MAX)
}

proptest! {
    #[test]
    fn body_byte_change_rejected(
        body in proptest::collection::vec(any::<u8>(), 1..256),
        idx in any::<prop::sample::Index>(),
        delta in 1u8..=255,
    ) {
        let header = sign(&body, SECRET, NOW);
        let mut tampered = body.clone();
        let i = idx.index(tampered.len());
        tampered[i] = tampered[i].wrapping_add(delta);
        prop_assert_eq!(
            lax(SECRET).verify(&tampered, Some(&header), NOW),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn timestamp_digit_change_rejected(
        body in proptest::collection::vec(any::<u8>(), 0..128),
        t in 1_000_000_000i64..2_000_000_000,
        idx in any::<prop::sample::Index>(),
        new_digit in 0u8..10,
    ) {
        let sig = compute_signature(&body, SECRET, t);
        let mut digits = t.to_string().into_bytes();
        let i = idx.index(digits.len());
        prop_assume!(digits[i] != b'0' + new_digit);
        digits[i] = b'0' + new_digit;
        let digits = String::from_utf8(digits).unwrap();
        let header = format!("t={digits},v1={sig}");
        // The new digits parse (maybe with a leading zero) to a different
        // integer, so the signature cannot match.
        prop_assert_eq!(
            lax(SECRET).verify(&body, Some(&header), NOW),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn signature_hex_change_rejected(
        body in proptest::collection::vec(any::<u8>(), 0..128),
        idx in 0usize..64,
        replacement in proptest::char::range('!', '~'),
    ) {
        let sig = compute_signature(&body, SECRET, NOW);
        let mut chars: Vec<char> = sig.chars().collect();
        prop_assume!(chars[idx] != replacement);
        chars[idx] = replacement;
        let tampered: String = chars.into_iter().collect();
        prop_assume!(!tampered.contains(','));
        let header = format!("t={NOW},v1={tampered}");
        prop_assert_eq!(
            lax(SECRET).verify(&body, Some(&header), NOW),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn parse_header_never_panics(s in any::<String>()) {
        let _ = parse_header(&s);
        let _ = lax(SECRET).verify(b"x", Some(&s), NOW);
    }

    #[test]
    fn parse_header_never_panics_on_header_like_input(
        s in "[tv01=,a-f0-9 ]{0,120}",
    ) {
        if let Ok(parsed) = parse_header(&s) {
            prop_assert!(parsed.timestamp >= 0);
            prop_assert!(parsed.v1.iter().all(|v| !v.is_empty()));
        }
    }

    #[test]
    fn sign_verify_round_trip(
        secret in "[!-~]{1,64}",
        body in proptest::collection::vec(any::<u8>(), 0..512),
        t in 0i64..=i64::MAX,
    ) {
        let header = sign(&body, &secret, t);
        let ok = lax(&secret).verify(&body, Some(&header), NOW).unwrap();
        prop_assert_eq!(ok.timestamp, t);
        prop_assert_eq!(ok.secret_index, 0);
        let sig = compute_signature(&body, &secret, t);
        prop_assert_eq!(sig.len(), 64);
        prop_assert!(sig.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    }

    #[test]
    fn different_secret_rejected(
        a in "whsec_[a-zA-Z0-9]{1,32}",
        b in "whsec_[a-zA-Z0-9]{1,32}",
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        prop_assume!(a != b);
        let header = sign(&body, &a, NOW);
        prop_assert_eq!(
            lax(&b).verify(&body, Some(&header), NOW),
            Err(SignatureError::NoMatchingSignature)
        );
    }
}
