//! The Stripe API settings: the `[stripe]` table (or `STRIPE_API_KEY`, `STRIPE_API_BASE`,
//! `IDVERDICT_RECONCILE*`), resolved into [`StripeSettings`] when a key is set.

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::parse;
use super::SettingError;

/// Stripe's API host.
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";

/// `[stripe]` as read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct StripeTable {
    pub api_key: Option<SecretString>,
    pub api_base: Option<String>,
    #[serde(deserialize_with = "parse::de_bool")]
    pub reconcile: bool,
    #[serde(deserialize_with = "parse::de_seconds")]
    pub reconcile_interval_secs: u64,
    #[serde(deserialize_with = "parse::de_seconds")]
    pub reconcile_since_secs: u64,
}

impl Default for StripeTable {
    fn default() -> Self {
        StripeTable {
            api_key: None,
            api_base: None,
            reconcile: true,
            reconcile_interval_secs: 3600,
            reconcile_since_secs: 72 * 3600,
        }
    }
}

impl StripeTable {
    /// `None` when no key is set (Stripe calls are then off).
    pub fn resolve(&self) -> Result<Option<StripeSettings>, SettingError> {
        let positive = |key: &str, secs: u64| {
            if secs == 0 {
                Err(SettingError::new(
                    key,
                    "must be a positive number of seconds",
                ))
            } else {
                Ok(Duration::from_secs(secs))
            }
        };
        let reconcile_interval = positive(
            "stripe.reconcile_interval_secs",
            self.reconcile_interval_secs,
        )?;
        let reconcile_since = positive("stripe.reconcile_since_secs", self.reconcile_since_secs)?;
        let base = self.api_base.as_deref().map(str::trim);
        let Some(key) = &self.api_key else {
            if base.is_some() {
                return Err(SettingError::new(
                    "stripe.api_base",
                    "is set but `stripe.api_key` (STRIPE_API_KEY) is not: set a key (any sk_test_… works against the emulator)",
                ));
            }
            return Ok(None);
        };
        let mut settings =
            StripeSettings::new(key.expose_secret(), base.unwrap_or(DEFAULT_API_BASE))?;
        settings.reconcile_interval = reconcile_interval;
        settings.reconcile_since = reconcile_since;
        settings.reconcile_in_serve = self.reconcile;
        Ok(Some(settings))
    }
}

/// A Stripe secret or restricted key. `Debug` shows only its kind and mode (`sk_test_****`).
#[derive(Clone)]
pub struct StripeKey(SecretString);

impl StripeKey {
    /// The key itself, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// A restricted key (`rk_…`): only such a key may read sensitive verified outputs (the
    /// date of birth, ID numbers).
    pub fn is_restricted(&self) -> bool {
        self.expose().starts_with("rk_")
    }
}

impl fmt::Debug for StripeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix: Vec<&str> = self
            .expose()
            .split('_')
            .take(2)
            .filter(|p| matches!(*p, "sk" | "rk" | "test" | "live"))
            .collect();
        write!(f, "{}_****", prefix.join("_"))
    }
}

/// What the service needs to call Stripe.
#[derive(Debug, Clone)]
pub struct StripeSettings {
    pub api_key: StripeKey,
    pub api_base: String,
    /// How often `serve` reconciles with Stripe's events list.
    pub reconcile_interval: Duration,
    /// How far back each reconciliation looks (bounded by Stripe's 30 days).
    pub reconcile_since: Duration,
    /// `stripe.reconcile = off` turns the periodic job inside `serve` off (for example when
    /// `idverdict reconcile` runs from a scheduler instead).
    pub reconcile_in_serve: bool,
}

impl StripeSettings {
    /// Settings for a key and base URL with the default reconciliation schedule (validated).
    pub fn new(api_key: &str, api_base: &str) -> Result<StripeSettings, SettingError> {
        let ok = (api_key.starts_with("sk_") || api_key.starts_with("rk_"))
            && api_key.len() > 3
            && api_key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            // Never echo the value: it may be a real key pasted into the wrong variable.
            return Err(SettingError::new(
                "stripe.api_key",
                "must be a Stripe secret or restricted key (sk_… or rk_…)",
            ));
        }
        let api_base = match url::Url::parse(api_base) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                api_base.trim_end_matches('/').to_string()
            }
            _ => {
                return Err(SettingError::new(
                    "stripe.api_base",
                    format!(
                        "must be an http(s) URL such as {DEFAULT_API_BASE} or http://127.0.0.1:12111 (got `{api_base}`)"
                    ),
                ))
            }
        };
        let table = StripeTable::default();
        Ok(StripeSettings {
            api_key: StripeKey(SecretString::from(api_key.to_string())),
            api_base,
            reconcile_interval: Duration::from_secs(table.reconcile_interval_secs),
            reconcile_since: Duration::from_secs(table.reconcile_since_secs),
            reconcile_in_serve: table.reconcile,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_the_mode_not_the_key() {
        let s = StripeSettings::new("sk_test_supersecret", "http://127.0.0.1:1").unwrap();
        let text = format!("{s:?}");
        assert!(!text.contains("supersecret"), "{text}");
        assert!(text.contains("sk_test_****"), "{text}");
        assert_eq!(s.api_key.expose(), "sk_test_supersecret");
    }

    #[test]
    fn errors_never_echo_the_key() {
        let e = StripeSettings::new("pk_test_secretvalue", DEFAULT_API_BASE).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("STRIPE_API_KEY"), "{text}");
        assert!(!text.contains("secretvalue"), "{text}");
    }
}
