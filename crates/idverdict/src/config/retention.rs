//! How long stored events are kept: the `[retention]` table (or `IDVERDICT_RETENTION_*`),
//! checked into [`RetentionConfig`]. The pruning itself is `store::retention`.
//!
//! The rule for event rows: a row is what makes a redelivered `evt_…` a duplicate, so it stays
//! at least as long as a copy of that event can still arrive — Stripe retries a delivery for up
//! to 3 days, and reconciliation lists events up to `stripe.reconcile_since_secs` back — so
//! `event_days` must cover 3 days plus the reconciliation window. The default, 33 days, is 3 days
//! plus the longest window Stripe's events list has (30 days), safe for any reconciliation
//! setting.

use std::time::Duration;

use serde::Deserialize;

use super::SettingError;

/// Stripe retries a webhook delivery for up to three days.
pub const STRIPE_RETRY_WINDOW: Duration = Duration::from_secs(3 * 86_400);
const DAY: u64 = 86_400;

/// `[retention]` as read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RetentionTable {
    pub payload_days: u32,
    pub event_days: u32,
}

impl Default for RetentionTable {
    fn default() -> Self {
        RetentionTable {
            payload_days: 30,
            event_days: 33,
        }
    }
}

impl RetentionTable {
    /// `reconcile_since`: how far back reconciliation looks (`stripe.reconcile_since_secs`).
    pub fn resolve(&self, reconcile_since: Duration) -> Result<RetentionConfig, SettingError> {
        if self.payload_days == 0 {
            return Err(SettingError::new(
                "retention.payload_days",
                "must be at least 1 day",
            ));
        }
        let payload = Duration::from_secs(u64::from(self.payload_days) * DAY);
        let events = Duration::from_secs(u64::from(self.event_days) * DAY);
        let dedup = STRIPE_RETRY_WINDOW + reconcile_since;
        if events < dedup {
            return Err(SettingError::new(
                "retention.event_days",
                format!(
                    "must cover Stripe's 3-day retry window plus the reconciliation window (stripe.reconcile_since_secs): at least {} days",
                    dedup.as_secs().div_ceil(DAY)
                ),
            ));
        }
        if events < payload {
            return Err(SettingError::new(
                "retention.event_days",
                "must not be shorter than `retention.payload_days` (a payload lives in its event row)",
            ));
        }
        Ok(RetentionConfig { payload, events })
    }
}

/// The validated retention rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionConfig {
    /// A processed event's raw payload is deleted this long after it was received.
    pub payload: Duration,
    /// A processed event's row is deleted this long after it was received.
    pub events: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionTable::default()
            .resolve(Duration::from_secs(72 * 3600))
            .unwrap_or(RetentionConfig {
                payload: Duration::from_secs(30 * DAY),
                events: Duration::from_secs(33 * DAY),
            })
    }
}
