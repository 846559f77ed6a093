//! How the console writes times and durations: UTC timestamps (`2026-12-01 11:59:21 UTC`) and
//! short ages (`3 h 12 min`), without a calendar crate.

/// `2026-12-01 11:59:21 UTC` for unix milliseconds.
pub fn datetime_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The same for unix seconds (Stripe's times).
pub fn datetime_secs(secs: i64) -> String {
    datetime_ms(secs.saturating_mul(1000))
}

/// `45 s`, `12 min`, `3 h 12 min`, `2 d 4 h`.
pub fn duration_ms(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        3600..=86_399 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_durations() {
        assert_eq!(datetime_ms(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(datetime_secs(1_764_100_000), "2025-11-25 19:46:40 UTC");
        assert_eq!(datetime_secs(951_825_600), "2000-02-29 12:00:00 UTC");
        assert_eq!(duration_ms(45_000), "45 s");
        assert_eq!(duration_ms(12 * 60_000 + 5), "12 min");
        assert_eq!(duration_ms((3 * 3600 + 12 * 60) * 1000), "3 h 12 min");
        assert_eq!(duration_ms((2 * 86_400 + 4 * 3600) * 1000), "2 d 4 h");
        assert_eq!(duration_ms(-5), "0 s");
    }
}
