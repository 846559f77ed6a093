//! When to try again: the configured schedule with ±20 % jitter (so a recovering target is
//! not hit by every queued reaction at the same instant), stretched by `Retry-After`.

use std::time::{Duration, SystemTime};

use rand::Rng;

/// A `Retry-After` longer than this is capped: a target cannot park a reaction for days.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The waits between attempts.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    waits: Vec<Duration>,
}

impl Schedule {
    pub fn new(waits: Vec<Duration>) -> Schedule {
        Schedule { waits }
    }

    /// Total attempts: the first one plus one per wait.
    pub fn max_attempts(&self) -> usize {
        self.waits.len() + 1
    }

    /// After the `failed`-th failed attempt (1-based, counted since the last redelivery), how
    /// long to wait before the next one; `None` = that was the last attempt.
    pub fn next_delay(
        &self,
        failed: usize,
        retry_after: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Option<Duration> {
        let base = *self.waits.get(failed.checked_sub(1)?)?;
        let jittered = jitter(base, rng);
        Some(match retry_after {
            Some(asked) => jittered.max(asked.min(MAX_RETRY_AFTER)),
            None => jittered,
        })
    }
}

/// `base` scaled by a uniform factor in [0.8, 1.2].
pub fn jitter(base: Duration, rng: &mut impl Rng) -> Duration {
    let factor: f64 = rng.gen_range(0.8..=1.2);
    base.mul_f64(factor)
}

/// `Retry-After` as delta-seconds or an HTTP-date (RFC 9110 §10.2.3), relative to `now`.
/// A date in the past means "now"; anything unparsable is ignored.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn schedule() -> Schedule {
        Schedule::new(vec![
            Duration::from_secs(5),
            Duration::from_secs(300),
            Duration::from_secs(1800),
        ])
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let base = Duration::from_secs(100);
        let (mut lo, mut hi) = (Duration::MAX, Duration::ZERO);
        for _ in 0..10_000 {
            let d = jitter(base, &mut rng);
            assert!(
                d >= Duration::from_secs(80) && d <= Duration::from_secs(120),
                "{d:?}"
            );
            lo = lo.min(d);
            hi = hi.max(d);
        }
        // It actually spreads (not a constant).
        assert!(lo < Duration::from_secs(85) && hi > Duration::from_secs(115));
    }

    #[test]
    fn schedule_steps_then_exhausts() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let s = schedule();
        assert_eq!(s.max_attempts(), 4);
        assert_eq!(s.next_delay(0, None, &mut rng), None);
        let d1 = s.next_delay(1, None, &mut rng).unwrap();
        assert!(d1 >= Duration::from_secs(4) && d1 <= Duration::from_secs(6));
        let d3 = s.next_delay(3, None, &mut rng).unwrap();
        assert!(d3 >= Duration::from_secs(1440) && d3 <= Duration::from_secs(2160));
        assert_eq!(s.next_delay(4, None, &mut rng), None);
        assert_eq!(Schedule::new(vec![]).next_delay(1, None, &mut rng), None);
    }

    #[test]
    fn retry_after_lengthens_never_shortens() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let s = schedule();
        let d = s
            .next_delay(1, Some(Duration::from_secs(60)), &mut rng)
            .unwrap();
        assert_eq!(d, Duration::from_secs(60));
        let d = s
            .next_delay(2, Some(Duration::from_secs(1)), &mut rng)
            .unwrap();
        assert!(d >= Duration::from_secs(240));
        let d = s
            .next_delay(1, Some(Duration::from_secs(10 * 86400)), &mut rng)
            .unwrap();
        assert_eq!(d, MAX_RETRY_AFTER);
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:51:37 GMT", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }
}
