//! Times as people read them: RFC 3339 in UTC (`2026-11-25T10:00:00Z`). JSON output keeps the
//! stored numbers.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Unix seconds as RFC 3339; an out-of-range value is shown as the number.
pub fn rfc3339_secs(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| secs.to_string())
}

/// Unix milliseconds as RFC 3339 with milliseconds.
pub fn rfc3339_ms(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(rfc3339_secs(1_764_100_000), "2025-11-25T19:46:40Z");
        assert_eq!(rfc3339_ms(1_764_100_000_123), "2025-11-25T19:46:40.123Z");
        assert_eq!(rfc3339_ms(1_764_100_000_000), "2025-11-25T19:46:40Z");
    }
}
