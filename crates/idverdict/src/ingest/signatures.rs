//! Deliveries refused because no configured secret matched their signature. A wrong
//! `STRIPE_WEBHOOK_SECRET` looks exactly like this: every delivery gets 400, Stripe retries
//! for days and then disables the endpoint, and nothing else shows it. So each one is counted
//! for `/readyz`, and a warning saying what to check is logged — at once, then at most once a
//! minute with the number refused meanwhile.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::clock::now_ms;

/// Quietest gap between two warnings.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// How long after the last refusal `/readyz` keeps saying so.
const RECENT_MS: i64 = 3600 * 1000;

#[derive(Default)]
pub struct SignatureWatch {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    mismatches: u64,
    last_mismatch_ms: Option<i64>,
    last_accepted_ms: Option<i64>,
    /// Refusals since the last warning.
    unreported: u64,
    last_warned: Option<Instant>,
}

/// What `/readyz` shows (times in unix milliseconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignatureHealth {
    /// Deliveries since start-up whose signature matched no configured secret.
    pub signature_mismatches: u64,
    pub last_signature_mismatch_at_ms: Option<i64>,
    pub last_accepted_at_ms: Option<i64>,
    /// Set while refusals are recent: what to check (`/readyz` lists it under `warnings`).
    #[serde(skip)]
    pub warning: Option<String>,
}

const HOW_TO_CHECK: &str = "check that STRIPE_WEBHOOK_SECRET is the signing secret of the endpoint Stripe delivers to (`idverdict endpoints list` shows the endpoints; Stripe shows a secret once, at creation, or in the Dashboard)";

impl SignatureWatch {
    /// A delivery whose signature matched none of the configured secrets.
    pub fn mismatch(&self) {
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        s.mismatches += 1;
        s.unreported += 1;
        s.last_mismatch_ms = Some(now_ms());
        if s.last_warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
            tracing::warn!(
                refused = s.unreported,
                "webhook deliveries refused: no configured webhook secret matched their signature; {HOW_TO_CHECK}"
            );
            s.unreported = 0;
            s.last_warned = Some(Instant::now());
        }
    }

    /// A delivery that was verified and stored.
    pub fn accepted(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.last_accepted_ms = Some(now_ms());
        }
    }

    pub fn health(&self) -> SignatureHealth {
        let (mismatches, last_mismatch, last_accepted) = match self.state.lock() {
            Ok(s) => (s.mismatches, s.last_mismatch_ms, s.last_accepted_ms),
            Err(_) => (0, None, None),
        };
        let recent = last_mismatch.is_some_and(|t| now_ms() - t < RECENT_MS);
        SignatureHealth {
            signature_mismatches: mismatches,
            last_signature_mismatch_at_ms: last_mismatch,
            last_accepted_at_ms: last_accepted,
            warning: recent.then(|| {
                format!(
                    "{mismatches} webhook deliveries since start-up matched no configured webhook secret; {HOW_TO_CHECK}"
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_counted_and_explained() {
        let watch = SignatureWatch::default();
        assert_eq!(watch.health().warning, None);
        watch.accepted();
        for _ in 0..3 {
            watch.mismatch();
        }
        let h = watch.health();
        assert_eq!(h.signature_mismatches, 3);
        assert!(h.last_accepted_at_ms.is_some() && h.last_signature_mismatch_at_ms.is_some());
        let warning = h.warning.unwrap();
        assert!(
            warning.starts_with("3 webhook deliveries")
                && warning.contains("STRIPE_WEBHOOK_SECRET"),
            "{warning}"
        );
    }
}
