//! Reaction settings: where callbacks go and how they are signed, the SMTP relay, the bus, and
//! the delivery schedule. Read from the `[reactions]`-style TOML table the lead's config embeds,
//! then overridden from the environment, then validated once at start-up.
//!
//! | TOML key | Environment variable | Default |
//! |---|---|---|
//! | `callbacks.urls` | `IDVERDICT_CALLBACK_URLS` (comma list) | none (no callbacks) |
//! | `callbacks.secrets` | `IDVERDICT_CALLBACK_SECRETS` (comma list of `whsec_…`; several = rotation) | required with `urls` |
//! | `callbacks.timeout_secs` | `IDVERDICT_CALLBACK_TIMEOUT_SECS` | `10` |
//! | `email.host` | `IDVERDICT_SMTP_HOST` | none (no email) |
//! | `email.port` | `IDVERDICT_SMTP_PORT` | `587` (`465` with `tls = "tls"`, `25` with `"none"`) |
//! | `email.tls` | `IDVERDICT_SMTP_TLS` (`none`, `starttls`, `tls`) | `starttls` |
//! | `email.username` | `IDVERDICT_SMTP_USERNAME` | none |
//! | `email.password` | `IDVERDICT_SMTP_PASSWORD` | none |
//! | `email.from` | `IDVERDICT_SMTP_FROM` (`Name <addr>` or `addr`) | required with `host` |
//! | `email.templates_dir` | `IDVERDICT_EMAIL_TEMPLATES_DIR` | built-in templates |
//! | `email.email_metadata_key` | `IDVERDICT_EMAIL_METADATA_KEY` | none (`provided_details.email` only) |
//! | `email.timeout_secs` | — | `30` |
//! | `nats.url` | `IDVERDICT_NATS_URL` | none (no bus) |
//! | `nats.subject_prefix` | `IDVERDICT_NATS_SUBJECT_PREFIX` | `idverdict` |
//! | `delivery.schedule` | `IDVERDICT_RETRY_SCHEDULE` (comma list) | `5s,5m,30m,2h,5h,10h,10h` |
//! | `delivery.allow_private_targets` | `IDVERDICT_ALLOW_PRIVATE_TARGETS` (`true`/`false`) | `false` |
//! | `delivery.workers` | `IDVERDICT_DELIVERY_WORKERS` | `16` |
//!
//! The schedule lists the waits *between* attempts: the first attempt is immediate, so seven
//! entries mean eight attempts; each wait gets ±20 % jitter and a longer `Retry-After` wins.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use serde::Deserialize;

/// Everything the reactions need.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReactConfig {
    pub callbacks: CallbackConfig,
    pub email: Option<EmailConfig>,
    pub nats: Option<NatsConfig>,
    pub delivery: DeliveryConfig,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallbackConfig {
    pub urls: Vec<String>,
    /// `whsec_<base64>`. Every secret signs every callback (one `v1,` signature each), so
    /// apps can roll their secret without a window of failing verifications.
    pub secrets: Vec<String>,
    pub timeout_secs: u64,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        CallbackConfig {
            urls: Vec::new(),
            secrets: Vec::new(),
            timeout_secs: 10,
        }
    }
}

impl std::fmt::Debug for CallbackConfig {
    // Hand-written: secrets never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackConfig")
            .field("urls", &self.urls)
            .field("secrets", &format!("<{} secret(s)>", self.secrets.len()))
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain SMTP (a local relay or a test sink).
    None,
    /// Connect in plain text, then upgrade; refuse to continue without TLS.
    #[default]
    Starttls,
    /// Implicit TLS from the first byte (port 465).
    Tls,
}

impl TlsMode {
    fn parse(s: &str) -> Option<TlsMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Some(TlsMode::None),
            "starttls" => Some(TlsMode::Starttls),
            "tls" => Some(TlsMode::Tls),
            _ => None,
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            TlsMode::None => 25,
            TlsMode::Starttls => 587,
            TlsMode::Tls => 465,
        }
    }
}

#[derive(Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    pub host: String,
    /// `None` = the usual port for the TLS mode.
    pub port: Option<u16>,
    pub tls: TlsMode,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: String,
    /// Files named `{decision}.txt` (first line `Subject: …`, a blank line, then the text) and
    /// `{decision}.html` replace the built-in ones; missing files fall back to them.
    pub templates_dir: Option<PathBuf>,
    /// A session metadata key holding the user's address, when Stripe's
    /// `provided_details.email` is not collected. Read by the decision code, not here.
    pub email_metadata_key: Option<String>,
    pub timeout_secs: Option<u64>,
}

impl EmailConfig {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.tls.default_port())
    }
}

impl std::fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailConfig")
            .field("host", &self.host)
            .field("port", &self.port())
            .field("tls", &self.tls)
            .field("username", &self.username.as_ref().map(|_| "<set>"))
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .field("from", &self.from)
            .field("templates_dir", &self.templates_dir)
            .field("email_metadata_key", &self.email_metadata_key)
            .finish()
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    pub url: String,
    pub subject_prefix: String,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: String::new(),
            subject_prefix: "idverdict".to_string(),
        }
    }
}

impl std::fmt::Debug for NatsConfig {
    // The URL may carry credentials (nats://user:pass@host).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsConfig")
            .field("url", &crate::store::redact_url(&self.url))
            .field("subject_prefix", &self.subject_prefix)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    pub schedule: Vec<String>,
    pub allow_private_targets: bool,
    pub workers: usize,
}

pub const DEFAULT_SCHEDULE: &[&str] = &["5s", "5m", "30m", "2h", "5h", "10h", "10h"];

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            schedule: DEFAULT_SCHEDULE.iter().map(|s| s.to_string()).collect(),
            allow_private_targets: false,
            workers: 16,
        }
    }
}

impl DeliveryConfig {
    /// The schedule as durations (validated by [`ReactConfig::validate`]).
    pub fn schedule_durations(&self) -> Result<Vec<Duration>, String> {
        self.schedule
            .iter()
            .enumerate()
            .map(|(i, s)| parse_duration(s).map_err(|e| format!("delivery.schedule[{i}]: {e}")))
            .collect()
    }
}

/// `250ms`, `5s`, `5m`, `2h`, `1d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{s}` has no unit (use ms, s, m, h or d)"))?;
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{s}` does not start with a whole number"))?;
    let ms_per = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "`{s}`: unknown unit `{unit}` (use ms, s, m, h or d)"
            ))
        }
    };
    n.checked_mul(ms_per)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{s}` is too long"))
}

/// Decode a `whsec_<base64>` secret into the HMAC key.
pub fn decode_secret(secret: &str) -> Result<Vec<u8>, String> {
    let b64 = secret
        .strip_prefix("whsec_")
        .ok_or_else(|| "must start with `whsec_`".to_string())?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| "the part after `whsec_` must be base64".to_string())?;
    if key.len() < 16 {
        return Err("the key must be at least 16 bytes (24 base64 characters)".to_string());
    }
    Ok(key)
}

fn comma_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn parse_bool(key: &str, s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("{key}: `{s}` is not true or false")),
    }
}

impl ReactConfig {
    /// Apply environment overrides (they win over the file). Setting any `IDVERDICT_SMTP_*`
    /// or `IDVERDICT_NATS_URL` turns that channel on.
    pub fn with_env(mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        if let Some(v) = env("IDVERDICT_CALLBACK_URLS") {
            self.callbacks.urls = comma_list(&v);
        }
        if let Some(v) = env("IDVERDICT_CALLBACK_SECRETS") {
            self.callbacks.secrets = comma_list(&v);
        }
        if let Some(v) = env("IDVERDICT_CALLBACK_TIMEOUT_SECS") {
            self.callbacks.timeout_secs = v.trim().parse().map_err(|_| {
                format!("callbacks.timeout_secs (IDVERDICT_CALLBACK_TIMEOUT_SECS): `{v}` is not a number")
            })?;
        }

        let smtp = |k: &str| env(&format!("IDVERDICT_SMTP_{k}"));
        let email_env = ["HOST", "PORT", "TLS", "USERNAME", "PASSWORD", "FROM"]
            .iter()
            .any(|k| smtp(k).is_some())
            || env("IDVERDICT_EMAIL_TEMPLATES_DIR").is_some()
            || env("IDVERDICT_EMAIL_METADATA_KEY").is_some();
        if email_env {
            let mut email = self.email.take().unwrap_or_default();
            if let Some(v) = smtp("HOST") {
                email.host = v.trim().to_string();
            }
            if let Some(v) = smtp("PORT") {
                email.port = Some(v.trim().parse().map_err(|_| {
                    format!("email.port (IDVERDICT_SMTP_PORT): `{v}` is not a port number")
                })?);
            }
            if let Some(v) = smtp("TLS") {
                email.tls = TlsMode::parse(&v).ok_or_else(|| {
                    format!("email.tls (IDVERDICT_SMTP_TLS): `{v}` is not none, starttls or tls")
                })?;
            }
            if let Some(v) = smtp("USERNAME") {
                email.username = Some(v);
            }
            if let Some(v) = smtp("PASSWORD") {
                email.password = Some(v);
            }
            if let Some(v) = smtp("FROM") {
                email.from = v.trim().to_string();
            }
            if let Some(v) = env("IDVERDICT_EMAIL_TEMPLATES_DIR") {
                email.templates_dir = Some(PathBuf::from(v));
            }
            if let Some(v) = env("IDVERDICT_EMAIL_METADATA_KEY") {
                email.email_metadata_key = Some(v.trim().to_string());
            }
            self.email = Some(email);
        }

        if env("IDVERDICT_NATS_URL").is_some() || env("IDVERDICT_NATS_SUBJECT_PREFIX").is_some() {
            let mut nats = self.nats.take().unwrap_or_default();
            if let Some(v) = env("IDVERDICT_NATS_URL") {
                nats.url = v.trim().to_string();
            }
            if let Some(v) = env("IDVERDICT_NATS_SUBJECT_PREFIX") {
                nats.subject_prefix = v.trim().to_string();
            }
            self.nats = Some(nats);
        }

        if let Some(v) = env("IDVERDICT_RETRY_SCHEDULE") {
            self.delivery.schedule = comma_list(&v);
        }
        if let Some(v) = env("IDVERDICT_ALLOW_PRIVATE_TARGETS") {
            self.delivery.allow_private_targets = parse_bool(
                "delivery.allow_private_targets (IDVERDICT_ALLOW_PRIVATE_TARGETS)",
                &v,
            )?;
        }
        if let Some(v) = env("IDVERDICT_DELIVERY_WORKERS") {
            self.delivery.workers = v.trim().parse().map_err(|_| {
                format!("delivery.workers (IDVERDICT_DELIVERY_WORKERS): `{v}` is not a number")
            })?;
        }
        Ok(self)
    }

    /// Check everything once, at start-up; the message names the key at fault.
    pub fn validate(&self) -> Result<(), String> {
        for (i, u) in self.callbacks.urls.iter().enumerate() {
            let url = url::Url::parse(u).map_err(|e| format!("callbacks.urls[{i}]: {e}"))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(format!("callbacks.urls[{i}]: must be an http or https URL"));
            }
            if url.host_str().is_none_or(str::is_empty) {
                return Err(format!("callbacks.urls[{i}]: has no host"));
            }
            if !url.username().is_empty() || url.password().is_some() {
                return Err(format!(
                    "callbacks.urls[{i}]: credentials in the URL are not supported (the payload is signed instead)"
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, u) in self.callbacks.urls.iter().enumerate() {
            if !seen.insert(u) {
                return Err(format!("callbacks.urls[{i}]: listed twice"));
            }
        }
        for (i, s) in self.callbacks.secrets.iter().enumerate() {
            decode_secret(s).map_err(|e| format!("callbacks.secrets[{i}]: {e}"))?;
        }
        if !self.callbacks.urls.is_empty() && self.callbacks.secrets.is_empty() {
            return Err(
                "callbacks.secrets: at least one whsec_… secret is required when callbacks.urls is set"
                    .to_string(),
            );
        }
        if !(1..=300).contains(&self.callbacks.timeout_secs) {
            return Err("callbacks.timeout_secs: must be between 1 and 300".to_string());
        }
        if let Some(email) = &self.email {
            if email.host.trim().is_empty() {
                return Err("email.host: required when email is configured".to_string());
            }
            if email.from.trim().is_empty() {
                return Err("email.from: required when email is configured".to_string());
            }
            email
                .from
                .parse::<lettre::message::Mailbox>()
                .map_err(|e| format!("email.from: `{}` is not an address: {e}", email.from))?;
            if email.username.is_some() != email.password.is_some() {
                return Err("email.username/email.password: set both or neither".to_string());
            }
            if email.port == Some(0) {
                return Err("email.port: must not be 0".to_string());
            }
            if let Some(dir) = &email.templates_dir {
                if !dir.is_dir() {
                    return Err(format!(
                        "email.templates_dir: {} is not a directory",
                        dir.display()
                    ));
                }
            }
            super::email::Templates::load(email.templates_dir.as_deref())
                .map_err(|e| format!("email.templates_dir: {e}"))?;
            if let Some(key) = &email.email_metadata_key {
                if key.trim().is_empty() {
                    return Err("email.email_metadata_key: must not be empty".to_string());
                }
            }
        }
        if let Some(nats) = &self.nats {
            let url = url::Url::parse(&nats.url).map_err(|e| format!("nats.url: {e}"))?;
            if !matches!(url.scheme(), "nats" | "tls") {
                return Err("nats.url: must be a nats:// or tls:// URL".to_string());
            }
            let prefix = &nats.subject_prefix;
            let valid_token = |t: &str| {
                !t.is_empty()
                    && t.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
            };
            if !prefix.split('.').all(valid_token) {
                return Err(format!(
                    "nats.subject_prefix: `{prefix}` must be dot-separated tokens of letters, digits, - and _"
                ));
            }
        }
        let schedule = self.delivery.schedule_durations()?;
        if schedule.len() > 50 {
            return Err("delivery.schedule: at most 50 retries".to_string());
        }
        if !(1..=1024).contains(&self.delivery.workers) {
            return Err("delivery.workers: must be between 1 and 1024".to_string());
        }
        Ok(())
    }

    /// Is any channel configured? Without one, no reactions are planned.
    pub fn any_channel(&self) -> bool {
        !self.callbacks.urls.is_empty() || self.email.is_some() || self.nats.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10ms"), Ok(Duration::from_millis(10)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration(" 2h "), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("5 s").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("5w").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn default_schedule_is_svix_like() {
        let d = DeliveryConfig::default().schedule_durations().unwrap();
        assert_eq!(d.len(), 7);
        assert_eq!(d[0], Duration::from_secs(5));
        assert_eq!(d[6], Duration::from_secs(36000));
    }

    #[test]
    fn validation_names_the_key() {
        let mut c = ReactConfig::default();
        c.callbacks.urls = vec!["https://a.test/x".into(), "ftp://b".into()];
        c.callbacks.secrets = vec!["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()];
        assert!(c.validate().unwrap_err().starts_with("callbacks.urls[1]"));
        c.callbacks.urls.pop();
        assert_eq!(c.validate(), Ok(()));
        c.callbacks.secrets.push("nope".into());
        assert!(c
            .validate()
            .unwrap_err()
            .starts_with("callbacks.secrets[1]"));
        c.callbacks.secrets.pop();
        c.delivery.schedule = vec!["5s".into(), "5x".into()];
        assert!(c
            .validate()
            .unwrap_err()
            .starts_with("delivery.schedule[1]"));
    }

    #[test]
    fn env_overrides() {
        let env = |k: &str| -> Option<String> {
            match k {
                "IDVERDICT_CALLBACK_URLS" => Some("https://a.test/cb, https://b.test/cb".into()),
                "IDVERDICT_CALLBACK_SECRETS" => {
                    Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into())
                }
                "IDVERDICT_SMTP_HOST" => Some("smtp.test".into()),
                "IDVERDICT_SMTP_TLS" => Some("tls".into()),
                "IDVERDICT_SMTP_FROM" => Some("Acme <no-reply@acme.test>".into()),
                "IDVERDICT_NATS_URL" => Some("nats://127.0.0.1:4222".into()),
                "IDVERDICT_RETRY_SCHEDULE" => Some("1s,2s".into()),
                "IDVERDICT_ALLOW_PRIVATE_TARGETS" => Some("true".into()),
                _ => None,
            }
        };
        let c = ReactConfig::default().with_env(&env).unwrap();
        assert_eq!(c.callbacks.urls.len(), 2);
        let email = c.email.as_ref().unwrap();
        assert_eq!(email.port(), 465);
        assert_eq!(c.nats.as_ref().unwrap().subject_prefix, "idverdict");
        assert_eq!(c.delivery.schedule, vec!["1s", "2s"]);
        assert!(c.delivery.allow_private_targets);
        assert_eq!(c.validate(), Ok(()));
        let bad = |k: &str| (k == "IDVERDICT_SMTP_TLS").then(|| "ssl".to_string());
        assert!(ReactConfig::default()
            .with_env(&bad)
            .unwrap_err()
            .starts_with("email.tls"));
    }

    #[test]
    fn toml_rejects_unknown_keys() {
        let c: Result<ReactConfig, _> = toml::from_str("[callbacks]\nurl = \"x\"\n");
        assert!(c.is_err());
        let c: ReactConfig = toml::from_str(
            "[callbacks]\nurls = [\"https://a.test\"]\nsecrets = [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]\n[nats]\nurl = \"nats://127.0.0.1:4222\"\n[delivery]\nschedule = [\"1s\"]\n",
        )
        .unwrap();
        assert_eq!(c.nats.unwrap().subject_prefix, "idverdict");
        assert_eq!(c.callbacks.timeout_secs, 10);
    }
}
