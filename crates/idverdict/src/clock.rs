//! The wall clock, in the units idverdict stores and sends: unix milliseconds for its own
//! timestamps, unix seconds where Stripe and Standard Webhooks count in seconds. One place, so
//! every component reads the same clock the same way.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now.
pub fn now() -> SystemTime {
    SystemTime::now()
}

/// Now in unix milliseconds.
pub fn now_ms() -> i64 {
    unix_ms(now())
}

/// Now in unix seconds.
pub fn now_secs() -> i64 {
    unix_secs(now())
}

/// A time in unix milliseconds (0 before 1970, which a real clock never is).
pub fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// A time in unix seconds (0 before 1970).
pub fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn units_agree() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(unix_ms(t), 1_700_000_000_123);
        assert_eq!(unix_secs(t), 1_700_000_000);
        assert_eq!(unix_ms(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
