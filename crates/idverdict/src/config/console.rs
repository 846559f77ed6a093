//! The operator console's settings: the `[console]` table (or `IDVERDICT_CONSOLE_*`), checked
//! into [`ConsoleConfig`].

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use super::parse;
use super::SettingError;

/// `[console]` as read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ConsoleTable {
    #[serde(deserialize_with = "parse::de_bool")]
    pub enabled: bool,
    #[serde(deserialize_with = "parse::de_seconds")]
    pub session_idle_secs: u64,
    #[serde(deserialize_with = "parse::de_seconds")]
    pub session_max_secs: u64,
    pub login_slow_after: u32,
    pub login_lock_after: u32,
    #[serde(deserialize_with = "parse::de_seconds")]
    pub login_lock_secs: u64,
    #[serde(deserialize_with = "parse::de_seconds")]
    pub claim_secs: u64,
    #[serde(deserialize_with = "parse::de_list")]
    pub review_reasons: Vec<String>,
    #[serde(deserialize_with = "parse::de_list")]
    pub trusted_proxies: Vec<String>,
    #[serde(deserialize_with = "parse::de_bool")]
    pub images: bool,
}

/// The reasons a reviewer picks from unless the operator lists their own.
pub const DEFAULT_REVIEW_REASONS: &[&str] = &[
    "document and selfie match the person",
    "document is genuine, error was technical",
    "person does not match the document",
    "document looks altered or fake",
    "images unreadable, ask for a new attempt",
];

impl Default for ConsoleTable {
    fn default() -> Self {
        ConsoleTable {
            enabled: true,
            session_idle_secs: 30 * 60,
            session_max_secs: 12 * 3600,
            login_slow_after: 3,
            login_lock_after: 10,
            login_lock_secs: 15 * 60,
            claim_secs: 30 * 60,
            review_reasons: DEFAULT_REVIEW_REASONS
                .iter()
                .map(|r| r.to_string())
                .collect(),
            trusted_proxies: Vec::new(),
            images: true,
        }
    }
}

/// The console's validated settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleConfig {
    /// `false`: `/console` is not served at all.
    pub enabled: bool,
    /// A session unused this long ends.
    pub session_idle: Duration,
    /// A session ends this long after login, used or not.
    pub session_max: Duration,
    /// Failed logins (per account, per address) before each further try must wait.
    pub login_slow_after: u32,
    /// Failed logins before the account or address is locked for `login_lock`.
    pub login_lock_after: u32,
    pub login_lock: Duration,
    /// How long "claim" leases a case to a reviewer.
    pub claim: Duration,
    /// The reasons a reviewer chooses from (free text is added to the chosen one).
    pub review_reasons: Vec<String>,
    /// Peers whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Show document and selfie images (needs a restricted `rk_…` Stripe key).
    pub images: bool,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleTable::default()
            .resolve()
            .unwrap_or_else(|_| unreachable!("the defaults are valid"))
    }
}

impl ConsoleTable {
    pub fn resolve(&self) -> Result<ConsoleConfig, SettingError> {
        let positive = |key: &str, secs: u64| {
            if secs == 0 {
                Err(SettingError::new(key, "must be at least 1 second"))
            } else {
                Ok(Duration::from_secs(secs))
            }
        };
        let session_idle = positive("console.session_idle_secs", self.session_idle_secs)?;
        let session_max = positive("console.session_max_secs", self.session_max_secs)?;
        if session_idle > session_max {
            return Err(SettingError::new(
                "console.session_idle_secs",
                "must not be longer than `console.session_max_secs`",
            ));
        }
        if self.login_lock_after == 0 || self.login_lock_after > 1000 {
            return Err(SettingError::new(
                "console.login_lock_after",
                "must be between 1 and 1000",
            ));
        }
        if self.login_slow_after > self.login_lock_after {
            return Err(SettingError::new(
                "console.login_slow_after",
                "must not be more than `console.login_lock_after`",
            ));
        }
        let login_lock = positive("console.login_lock_secs", self.login_lock_secs)?;
        let claim = positive("console.claim_secs", self.claim_secs)?;
        let review_reasons: Vec<String> = self
            .review_reasons
            .iter()
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty())
            .collect();
        if review_reasons.is_empty() {
            return Err(SettingError::new(
                "console.review_reasons",
                "needs at least one reason",
            ));
        }
        if let Some(long) = review_reasons.iter().find(|r| r.chars().count() > 200) {
            return Err(SettingError::new(
                "console.review_reasons",
                format!(
                    "each reason must be at most 200 characters (one starts `{}`)",
                    long.chars().take(20).collect::<String>()
                ),
            ));
        }
        let trusted_proxies = self
            .trusted_proxies
            .iter()
            .enumerate()
            .map(|(i, p)| {
                p.trim().parse::<IpAddr>().map_err(|_| {
                    SettingError::new(
                        format!("console.trusted_proxies[{i}]"),
                        format!("`{p}` is not an IP address"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ConsoleConfig {
            enabled: self.enabled,
            session_idle,
            session_max,
            login_slow_after: self.login_slow_after,
            login_lock_after: self.login_lock_after,
            login_lock,
            claim,
            review_reasons,
            trusted_proxies,
            images: self.images,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_name_the_key() {
        let bad = |f: fn(&mut ConsoleTable)| {
            let mut t = ConsoleTable::default();
            f(&mut t);
            t.resolve().unwrap_err().key.unwrap()
        };
        assert_eq!(
            bad(|t| t.session_idle_secs = 0),
            "console.session_idle_secs"
        );
        assert_eq!(
            bad(|t| t.session_idle_secs = t.session_max_secs + 1),
            "console.session_idle_secs"
        );
        assert_eq!(bad(|t| t.login_lock_after = 0), "console.login_lock_after");
        assert_eq!(
            bad(|t| t.login_slow_after = t.login_lock_after + 1),
            "console.login_slow_after"
        );
        assert_eq!(bad(|t| t.review_reasons.clear()), "console.review_reasons");
        assert_eq!(
            bad(|t| t.trusted_proxies = vec!["10.0.0.1".into(), "proxy".into()]),
            "console.trusted_proxies[1]"
        );
        assert_eq!(bad(|t| t.claim_secs = 0), "console.claim_secs");
    }
}
