//! `Stripe-Signature` header parsing, signing and verification.
//!
//! # Scheme
//!
//! Stripe sends `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…][,v0=<hex>]`.
//! Each `v1` is the lower-case hex HMAC-SHA256 of `"{t}.{raw body}"`, keyed
//! with the bytes of the endpoint secret *string* (the `whsec_` prefix
//! included, no base64 decoding). During a secret roll Stripe sends one `v1`
//! per active secret; `v0` is a fake test-mode signature and is ignored, as are
//! all other schemes (downgrade protection).
//!
//! # Order of checks
//!
//! Like the official Node/Python/Ruby SDKs, the signature is checked *before*
//! the time window: a stale request with a bad signature reports
//! [`SignatureError::NoMatchingSignature`], and a timing error is only ever
//! reported for a request that Stripe really signed. (stripe-go does the
//! opposite.)
//!
//! # Time window
//!
//! * too old when `now - t > tolerance` (an age equal to the tolerance passes);
//! * in the future when `t - now > future_skew`.
//!
//! A tolerance of `0` means "only `t == now` passes"; it never switches the
//! check off (the SDKs disagree on what 0 means, so this crate picks the
//! literal reading). The future bound is an addition of this crate: every
//! official SDK accepts any future timestamp, which lets a captured request
//! signed with a far-future `t` be replayed for a long time. Pass
//! `u64::MAX` to [`Verifier::with_future_skew`] to get the SDK behaviour.
//!
//! # Malformed headers: decisions where the official SDKs disagree
//!
//! `T` = 1700000000, `S` = the correct `v1` for payload P1 and `whsec_test_secret`.
//!
//! | #   | Header                                 | Outcome here                 | Why |
//! |-----|----------------------------------------|------------------------------|-----|
//! | E1  | `t=T,v1=S`                             | ok                           | |
//! | E2  | `t=T,v1=S,v1=bad_signature`            | ok                           | any `v1` may match; non-hex values never match |
//! | E3  | `t=T,v1=deadbeef,v1=S`                 | ok                           | all `v1` values are tried, not just the last |
//! | E4  | `t=T,v0=S`                             | `NoV1Signature`              | `v0` is ignored |
//! | E5  | `t=T,v1=S,v0=<hex>`                    | ok                           | |
//! | E6  | `v1=S`                                 | `MalformedHeader`            | no `t` |
//! | E7  | `t=abc,v1=S`                           | `MalformedHeader`            | `t` must be ASCII digits |
//! | E8  | `t=1700000000abc,v1=S`                 | `MalformedHeader`            | no prefix parsing (Node's `parseInt` quirk is not copied) |
//! | E9  | `t=T, v1=S`                            | `NoV1Signature`              | no whitespace trimming: the key is `" v1"`, an unknown scheme. Stripe never sends spaces; Node, Python and Go behave the same |
//! | E10 | `t=T,v1=UPPERCASE(S)`                  | `NoMatchingSignature`        | Stripe sends lower-case hex; only Go accepts upper case |
//! | E11 | `t=0T,v1=S`                            | ok                           | the parsed integer is re-formatted for the signed string, like all SDKs |
//! | E12 | empty (or whitespace-only) header      | `MissingHeader`              | |
//! | E13 | `t=T,v1=S,`                            | ok                           | empty elements are skipped |
//! | E14 | `t=T,v2=abc,v1=S`                      | ok                           | unknown schemes are ignored |
//! | E15 | `t=T,t=1,v1=S`                         | `MalformedHeader`            | the SDKs disagree on which `t` wins; refusing to guess is safest |
//! | E16 | `t=T,v1=S,v1=`                         | ok                           | an empty `v1` is dropped while parsing (so `t=T,v1=` alone is `NoV1Signature`) |
//! | E17 | `t=T,v1=S=x`                           | `NoMatchingSignature`        | split at the first `=`; the value `S=x` is not 64 hex chars |
//! | E18 | `t = now+3600`, defaults               | `TimestampInFuture`          | deliberate difference from the SDKs (see above) |
//! | E19 | `t = now-300`, tolerance 300           | ok                           | equal age passes (strict `>`, as in Node) |
//! | E20 | `t = now-301`, tolerance 300           | `TimestampTooOld`            | |
//!
//! Further choices: an element without `=` is ignored unless it is a bare
//! `t` (which is malformed); keys are case-sensitive (`T=` is not `t`); a `t`
//! that does not fit in `i64` is malformed.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use thiserror::Error;

use crate::event::Event;
use crate::WebhookError;

type HmacSha256 = Hmac<Sha256>;

/// Default maximum age of a signed timestamp, in seconds (the SDKs' 5 minutes).
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;
/// Default maximum distance a signed timestamp may lie in the future, in seconds.
pub const DEFAULT_FUTURE_SKEW_SECS: u64 = 300;

/// Length of a `v1` signature in hex characters (32-byte SHA-256 HMAC).
const V1_HEX_LEN: usize = 64;

/// Returned by [`Verifier::new`] when no secret, or an empty/whitespace-only
/// secret, is given: such a configuration error would otherwise reject every
/// webhook with a confusing "no matching signature".
#[derive(Debug, Error)]
#[error("webhook signing secret must not be empty")]
pub struct InvalidSecret;

/// Why a `Stripe-Signature` header was rejected.
///
/// The messages mirror the official SDKs' wording so operators can search for
/// them; [`SignatureError::code`] gives stable machine-readable codes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignatureError {
    /// The header is absent, empty or whitespace-only.
    #[error("No stripe-signature header value was provided.")]
    MissingHeader,
    /// The header has no usable `t` (missing, not ASCII digits, out of range, or
    /// given more than once).
    #[error("Unable to extract timestamp and signatures from header")]
    MalformedHeader,
    /// The header has a timestamp but no (non-empty) `v1` element.
    #[error("No signatures found with expected scheme v1")]
    NoV1Signature,
    /// At least one `v1` is present but none matches any configured secret.
    #[error("No signatures found matching the expected signature for payload")]
    NoMatchingSignature,
    /// The signature is valid but the timestamp is older than the tolerance.
    #[error(
        "Timestamp outside the tolerance zone (t={timestamp}, now={now}, tolerance={tolerance}s)"
    )]
    TimestampTooOld {
        /// The signed timestamp.
        timestamp: i64,
        /// The verifier's current time.
        now: i64,
        /// The configured tolerance in seconds.
        tolerance: u64,
    },
    /// The signature is valid but the timestamp lies too far in the future.
    #[error("Timestamp outside the tolerance zone: in the future (t={timestamp}, now={now}, allowed skew={skew}s)")]
    TimestampInFuture {
        /// The signed timestamp.
        timestamp: i64,
        /// The verifier's current time.
        now: i64,
        /// The configured future skew in seconds.
        skew: u64,
    },
}

impl SignatureError {
    /// A stable snake_case code, suitable for metrics labels and API responses.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::MissingHeader => "missing_signature_header",
            SignatureError::MalformedHeader => "malformed_signature_header",
            SignatureError::NoV1Signature => "no_v1_signature",
            SignatureError::NoMatchingSignature => "no_matching_signature",
            SignatureError::TimestampTooOld { .. } => "timestamp_too_old",
            SignatureError::TimestampInFuture { .. } => "timestamp_in_future",
        }
    }
}

/// A successfully parsed `Stripe-Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedHeader {
    /// The `t` value as an integer.
    pub timestamp: i64,
    /// Every non-empty `v1` value, in header order, unvalidated (values that
    /// are not 64 lower-case hex characters simply never match).
    pub v1: Vec<String>,
}

/// The result of a successful verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    /// The signed timestamp (unix seconds).
    pub timestamp: i64,
    /// Index (in the order given to [`Verifier::new`]) of the first secret
    /// that matched. Useful to notice when the old secret of a roll is no
    /// longer used.
    pub secret_index: usize,
}

/// Parses a `Stripe-Signature` header value.
///
/// Grammar: split on `,`; split each element at its first `=`; exactly one
/// `t` made of ASCII digits; collect all non-empty `v1` values; ignore `v0`,
/// other schemes, unknown keys, empty elements and elements without `=`
/// (except a bare `t`). See the module docs for the full decision table.
///
/// Note that this only parses: a header with zero `v1` values is returned as
/// `Ok` here, and [`Verifier::verify`] turns it into
/// [`SignatureError::NoV1Signature`].
pub fn parse_header(header: &str) -> Result<ParsedHeader, SignatureError> {
    if header.trim().is_empty() {
        return Err(SignatureError::MissingHeader);
    }
    let mut timestamp: Option<i64> = None;
    let mut v1 = Vec::new();
    for element in header.split(',') {
        if element.is_empty() {
            continue;
        }
        let Some((key, value)) = element.split_once('=') else {
            if element == "t" {
                return Err(SignatureError::MalformedHeader);
            }
            continue;
        };
        match key {
            "t" => {
                if timestamp.is_some() {
                    return Err(SignatureError::MalformedHeader);
                }
                timestamp = Some(parse_timestamp(value)?);
            }
            // An empty `v1=` is dropped (E16) rather than kept as a value that can never match.
            "v1" if !value.is_empty() => v1.push(value.to_owned()),
            _ => {}
        }
    }
    match timestamp {
        Some(timestamp) => Ok(ParsedHeader { timestamp, v1 }),
        None => Err(SignatureError::MalformedHeader),
    }
}

/// ASCII digits only: `str::parse::<i64>` alone would also accept a leading
/// `+` or `-`, which Stripe never sends.
fn parse_timestamp(value: &str) -> Result<i64, SignatureError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::MalformedHeader);
    }
    value
        .parse::<i64>()
        .map_err(|_| SignatureError::MalformedHeader)
}

fn hmac_for(secret: &str, timestamp: i64, payload: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length (long keys are hashed first), so this
    // constructor cannot fail; the error type only exists for fixed-size MACs.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes())
        .expect("HMAC-SHA256 accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac
}

/// Lower-case hex HMAC-SHA256 of `"{timestamp}.{payload}"`, keyed with the
/// bytes of `secret` exactly as given (including the `whsec_` prefix).
pub fn compute_signature(payload: &[u8], secret: &str, timestamp: i64) -> String {
    hex::encode(hmac_for(secret, timestamp, payload).finalize().into_bytes())
}

/// Builds the header Stripe would send for one secret: `t={t},v1={sig}`.
pub fn sign(payload: &[u8], secret: &str, timestamp: i64) -> String {
    sign_with_secrets(payload, &[secret], timestamp)
}

/// Builds a header with one `v1` per secret, in the given order, as Stripe
/// does while an endpoint secret is being rolled: `t={t},v1={sig1},v1={sig2}…`.
pub fn sign_with_secrets(payload: &[u8], secrets: &[&str], timestamp: i64) -> String {
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        header.push_str(",v1=");
        header.push_str(&compute_signature(payload, secret, timestamp));
    }
    header
}

/// Decodes a `v1` value, accepting only what Stripe sends: exactly 64
/// lower-case hex characters. Anything else can never match.
fn decode_v1(value: &str) -> Option<[u8; 32]> {
    if value.len() != V1_HEX_LEN
        || !value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(value, &mut out).ok()?;
    Some(out)
}

/// Verifies `Stripe-Signature` headers against one or more endpoint secrets.
///
/// Several secrets cover the cases where one URL receives from more than one
/// endpoint (e.g. test and live mode) or you rotate on your side. Stripe's own
/// secret roll needs no change here: during the overlap Stripe sends one `v1`
/// per active secret, so either secret alone verifies.
#[derive(Clone)]
pub struct Verifier {
    secrets: Vec<String>,
    tolerance: u64,
    future_skew: u64,
}

impl fmt::Debug for Verifier {
    // Secrets must never reach logs, so only their number is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field(
                "secrets",
                &format_args!("<{} redacted>", self.secrets.len()),
            )
            .field("tolerance", &self.tolerance)
            .field("future_skew", &self.future_skew)
            .finish()
    }
}

impl Verifier {
    /// Creates a verifier with the default tolerance and future skew (300 s each).
    ///
    /// Fails if the list is empty or any secret is empty or whitespace-only.
    /// Secrets are used verbatim (no trimming): a stray space would be part of
    /// the HMAC key, exactly as in the SDKs.
    pub fn new<I, S>(secrets: I) -> Result<Self, InvalidSecret>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let secrets: Vec<String> = secrets.into_iter().map(Into::into).collect();
        if secrets.is_empty() || secrets.iter().any(|s| s.trim().is_empty()) {
            return Err(InvalidSecret);
        }
        Ok(Verifier {
            secrets,
            tolerance: DEFAULT_TOLERANCE_SECS,
            future_skew: DEFAULT_FUTURE_SKEW_SECS,
        })
    }

    /// Sets the maximum age in seconds. `0` means only `t == now` passes; it
    /// does **not** disable the check.
    pub fn with_tolerance(mut self, secs: u64) -> Self {
        self.tolerance = secs;
        self
    }

    /// Sets how far in the future `t` may be, in seconds (`u64::MAX` to
    /// accept any future timestamp, as the official SDKs do).
    pub fn with_future_skew(mut self, secs: u64) -> Self {
        self.future_skew = secs;
        self
    }

    /// The maximum accepted age in seconds.
    pub fn tolerance(&self) -> u64 {
        self.tolerance
    }

    /// The maximum accepted distance into the future in seconds.
    pub fn future_skew(&self) -> u64 {
        self.future_skew
    }

    /// How many secrets this verifier tries.
    pub fn secret_count(&self) -> usize {
        self.secrets.len()
    }

    /// Verifies `header` (the raw header value, `None` if absent) for the raw
    /// request body `payload`, at time `now` (unix seconds, injected so tests
    /// and callers control the clock).
    ///
    /// Passes when any `v1` matches any secret; then the time window is
    /// checked. All comparisons of signature bytes are constant-time.
    pub fn verify(
        &self,
        payload: &[u8],
        header: Option<&str>,
        now: i64,
    ) -> Result<VerifiedSignature, SignatureError> {
        let header = header.ok_or(SignatureError::MissingHeader)?;
        let parsed = parse_header(header)?;
        if parsed.v1.is_empty() {
            return Err(SignatureError::NoV1Signature);
        }
        let candidates: Vec<[u8; 32]> = parsed.v1.iter().filter_map(|v| decode_v1(v)).collect();

        let mut matched: Option<usize> = None;
        for (index, secret) in self.secrets.iter().enumerate() {
            let expected = hmac_for(secret, parsed.timestamp, payload)
                .finalize()
                .into_bytes();
            // Compare against every candidate without short-circuiting, so the
            // time taken does not depend on which candidate matched.
            let mut any = subtle::Choice::from(0u8);
            for candidate in &candidates {
                any |= expected.as_slice().ct_eq(candidate.as_slice());
            }
            if bool::from(any) {
                matched = Some(index);
                break;
            }
        }
        let secret_index = matched.ok_or(SignatureError::NoMatchingSignature)?;

        check_window(parsed.timestamp, now, self.tolerance, self.future_skew)?;
        Ok(VerifiedSignature {
            timestamp: parsed.timestamp,
            secret_index,
        })
    }

    /// [`verify`](Self::verify), then parse the payload with
    /// [`Event::from_slice`]. The JSON is only looked at after the signature
    /// passed, so unauthenticated input never reaches the parser's error paths.
    pub fn construct_event(
        &self,
        payload: &[u8],
        header: Option<&str>,
        now: i64,
    ) -> Result<Event, WebhookError> {
        self.verify(payload, header, now)?;
        Event::from_slice(payload)
    }
}

/// Time-window check in i128 so that no `now`/`t` combination can overflow.
fn check_window(timestamp: i64, now: i64, tolerance: u64, skew: u64) -> Result<(), SignatureError> {
    let age = i128::from(now) - i128::from(timestamp);
    if age > i128::from(tolerance) {
        return Err(SignatureError::TimestampTooOld {
            timestamp,
            now,
            tolerance,
        });
    }
    if -age > i128::from(skew) {
        return Err(SignatureError::TimestampInFuture {
            timestamp,
            now,
            skew,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_v1_accepts_only_lowercase_64_hex() {
        assert!(decode_v1(&"a".repeat(64)).is_some());
        assert!(decode_v1(&"A".repeat(64)).is_none());
        assert!(decode_v1(&"a".repeat(63)).is_none());
        assert!(decode_v1(&"g".repeat(64)).is_none());
        assert!(decode_v1("").is_none());
    }

    #[test]
    fn window_edges() {
        assert!(check_window(100, 100, 0, 0).is_ok());
        assert!(check_window(99, 100, 0, 0).is_err());
        assert!(check_window(101, 100, 0, 0).is_err());
        assert!(check_window(0, i64::MIN, 0, u64::MAX).is_ok());
        assert!(check_window(0, i64::MAX, u64::MAX, 0).is_ok());
        assert!(check_window(i64::MAX, i64::MIN, 0, 0).is_err());
    }

    #[test]
    fn timestamp_digits_only() {
        assert_eq!(parse_timestamp("0001"), Ok(1));
        for bad in ["", "+1", "-1", " 1", "1 ", "1e3", "99999999999999999999"] {
            assert_eq!(
                parse_timestamp(bad),
                Err(SignatureError::MalformedHeader),
                "{bad:?}"
            );
        }
    }
}
