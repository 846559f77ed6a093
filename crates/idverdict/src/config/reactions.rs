//! Reaction settings: where callbacks go and how they are signed, the SMTP relay, the bus, and
//! the delivery schedule — the `[callbacks]`, `[email]`, `[nats]` and `[delivery]` tables, with
//! their environment variables in [`super::settings::SETTINGS`]. Checked once at start-up by
//! [`ReactConfig::validate`] (the dispatcher checks a hand-built one the same way).
//!
//! The schedule lists the waits *between* attempts: the first attempt is immediate, so seven
//! entries mean eight attempts; each wait gets ±20 % jitter and a longer `Retry-After` wins.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::parse;
use super::SettingError;

/// Everything the reactions need.
#[derive(Debug, Clone, Default)]
pub struct ReactConfig {
    pub callbacks: CallbackConfig,
    pub email: Option<EmailConfig>,
    pub nats: Option<NatsConfig>,
    pub delivery: DeliveryConfig,
}

/// `[callbacks]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallbackConfig {
    #[serde(deserialize_with = "parse::de_list")]
    pub urls: Vec<String>,
    /// `whsec_<base64>`. Every secret signs every callback (one `v1,` signature each), so
    /// apps can roll their secret without a window of failing verifications.
    #[serde(deserialize_with = "parse::de_secrets")]
    pub secrets: Vec<SecretString>,
    #[serde(deserialize_with = "parse::de_seconds")]
    pub timeout_secs: u64,
    /// A URL whose every attempt has failed for this long is paused (zero: never).
    #[serde(deserialize_with = "parse::de_duration")]
    pub pause_after: Duration,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        CallbackConfig {
            urls: Vec::new(),
            secrets: Vec::new(),
            timeout_secs: 10,
            pause_after: Duration::from_secs(3 * 86_400),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// Plain SMTP (a local relay or a test sink).
    None,
    /// Connect in plain text, then upgrade; refuse to continue without TLS.
    #[default]
    Starttls,
    /// Implicit TLS from the first byte (port 465).
    Tls,
}

impl std::str::FromStr for TlsMode {
    type Err = String;

    fn from_str(s: &str) -> Result<TlsMode, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(TlsMode::None),
            "starttls" => Ok(TlsMode::Starttls),
            "tls" => Ok(TlsMode::Tls),
            _ => Err(format!("`{s}` is not none, starttls or tls")),
        }
    }
}

impl TlsMode {
    pub fn default_port(self) -> u16 {
        match self {
            TlsMode::None => 25,
            TlsMode::Starttls => 587,
            TlsMode::Tls => 465,
        }
    }
}

/// `[email]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    pub host: String,
    /// `None` = the usual port for the TLS mode.
    pub port: Option<u16>,
    #[serde(deserialize_with = "parse::de_choice")]
    pub tls: TlsMode,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub from: String,
    /// Files named `{decision}.txt` (first line `Subject: …`, a blank line, then the text) and
    /// `{decision}.html` replace the built-in ones; missing files fall back to them.
    pub templates_dir: Option<PathBuf>,
    /// A session metadata key holding the user's address, when Stripe's
    /// `provided_details.email` is not collected. Read by the decision code, not here.
    pub email_metadata_key: Option<String>,
    /// Where the end user resumes, for the retry and alternative-method emails: a URL with
    /// `{user}` (the user reference, URL-encoded) and `{session}` placeholders.
    pub resume_url: Option<String>,
    /// A session metadata key holding the end user's locale (`fr`, `pt-BR`): the emails use
    /// the templates of that locale when there are some, else the default ones.
    pub locale_metadata_key: Option<String>,
    #[serde(deserialize_with = "parse::de_seconds")]
    pub timeout_secs: u64,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            host: String::new(),
            port: None,
            tls: TlsMode::default(),
            username: None,
            password: None,
            from: String::new(),
            templates_dir: None,
            email_metadata_key: None,
            resume_url: None,
            locale_metadata_key: None,
            timeout_secs: 30,
        }
    }
}

impl EmailConfig {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.tls.default_port())
    }
}

impl std::fmt::Debug for EmailConfig {
    // Hand-written: the login is not shown either.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailConfig")
            .field("host", &self.host)
            .field("port", &self.port())
            .field("tls", &self.tls)
            .field("username", &self.username.as_ref().map(|_| "<set>"))
            .field("password", &self.password)
            .field("from", &self.from)
            .field("templates_dir", &self.templates_dir)
            .field("email_metadata_key", &self.email_metadata_key)
            .field("resume_url", &self.resume_url)
            .field("locale_metadata_key", &self.locale_metadata_key)
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

/// How messages go onto the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NatsMode {
    /// JetStream publish; delivered once the stream acknowledged it.
    #[default]
    JetStream,
    /// Core publish: delivered once flushed to the server, which keeps nothing.
    Core,
}

impl std::str::FromStr for NatsMode {
    type Err = String;

    fn from_str(s: &str) -> Result<NatsMode, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "jetstream" => Ok(NatsMode::JetStream),
            "core" => Ok(NatsMode::Core),
            _ => Err(format!("`{s}` is not jetstream or core")),
        }
    }
}

/// `[nats]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    pub url: String,
    pub subject_prefix: String,
    #[serde(deserialize_with = "parse::de_choice")]
    pub mode: NatsMode,
    /// A stream to create over `{subject_prefix}.>` when it does not exist.
    pub stream: Option<String>,
    /// The created stream's deduplication window.
    #[serde(deserialize_with = "parse::de_duration")]
    pub duplicate_window: Duration,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: String::new(),
            subject_prefix: "idverdict".to_string(),
            mode: NatsMode::default(),
            stream: None,
            duplicate_window: Duration::from_secs(3600),
        }
    }
}

impl NatsConfig {
    /// Every subject idverdict publishes to: `{prefix}.>`.
    pub fn subjects(&self) -> String {
        format!("{}.>", self.subject_prefix)
    }
}

impl std::fmt::Debug for NatsConfig {
    // The URL may carry credentials (nats://user:pass@host).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsConfig")
            .field("url", &crate::store::redact_url(&self.url))
            .field("subject_prefix", &self.subject_prefix)
            .field("mode", &self.mode)
            .field("stream", &self.stream)
            .field("duplicate_window", &self.duplicate_window)
            .finish()
    }
}

/// `[delivery]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    #[serde(deserialize_with = "parse::de_list")]
    pub schedule: Vec<String>,
    #[serde(deserialize_with = "parse::de_bool")]
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
    pub fn schedule_durations(&self) -> Result<Vec<Duration>, SettingError> {
        self.schedule
            .iter()
            .enumerate()
            .map(|(i, s)| {
                parse::parse_duration(s)
                    .map_err(|e| SettingError::new(format!("delivery.schedule[{i}]"), e))
            })
            .collect()
    }
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

/// A new callback secret, `whsec_` and the base64 of 32 random bytes (the Standard Webhooks
/// form [`decode_secret`] reads), for `idverdict secrets generate callback`.
pub fn generate_callback_secret() -> String {
    use rand::RngCore;
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

impl ReactConfig {
    /// Check everything once, at start-up; the error names the key (and its variable).
    pub fn validate(&self) -> Result<(), SettingError> {
        let invalid = |key: String, message: String| Err(SettingError::new(key, message));
        for (i, u) in self.callbacks.urls.iter().enumerate() {
            let key = || format!("callbacks.urls[{i}]");
            let url = match url::Url::parse(u) {
                Ok(url) => url,
                Err(e) => return invalid(key(), e.to_string()),
            };
            if !matches!(url.scheme(), "http" | "https") {
                return invalid(key(), "must be an http or https URL".into());
            }
            if url.host_str().is_none_or(str::is_empty) {
                return invalid(key(), "has no host".into());
            }
            if !url.username().is_empty() || url.password().is_some() {
                return invalid(
                    key(),
                    "credentials in the URL are not supported (the payload is signed instead)"
                        .into(),
                );
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, u) in self.callbacks.urls.iter().enumerate() {
            if !seen.insert(u) {
                return invalid(format!("callbacks.urls[{i}]"), "listed twice".into());
            }
        }
        for (i, s) in self.callbacks.secrets.iter().enumerate() {
            if let Err(e) = decode_secret(s.expose_secret()) {
                return invalid(format!("callbacks.secrets[{i}]"), e);
            }
        }
        if !self.callbacks.urls.is_empty() && self.callbacks.secrets.is_empty() {
            return invalid(
                "callbacks.secrets".into(),
                "at least one whsec_… secret is required when callbacks.urls is set".into(),
            );
        }
        if !(1..=300).contains(&self.callbacks.timeout_secs) {
            return invalid(
                "callbacks.timeout_secs".into(),
                "must be between 1 and 300".into(),
            );
        }
        if let Some(email) = &self.email {
            email.validate()?;
        }
        if let Some(nats) = &self.nats {
            let url = match url::Url::parse(&nats.url) {
                Ok(url) => url,
                Err(e) => return invalid("nats.url".into(), e.to_string()),
            };
            if !matches!(url.scheme(), "nats" | "tls") {
                return invalid("nats.url".into(), "must be a nats:// or tls:// URL".into());
            }
            let prefix = &nats.subject_prefix;
            let valid_token = |t: &str| {
                !t.is_empty()
                    && t.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
            };
            if !prefix.split('.').all(valid_token) {
                return invalid(
                    "nats.subject_prefix".into(),
                    format!("`{prefix}` must be dot-separated tokens of letters, digits, - and _"),
                );
            }
            if let Some(stream) = &nats.stream {
                if !valid_token(stream) || stream.len() > 255 {
                    return invalid(
                        "nats.stream".into(),
                        format!("`{stream}` must be a name of letters, digits, - and _"),
                    );
                }
                if nats.mode == NatsMode::Core {
                    return invalid(
                        "nats.stream".into(),
                        "is a JetStream stream: it needs nats.mode = jetstream".into(),
                    );
                }
            }
            if nats.duplicate_window < Duration::from_secs(1) {
                return invalid("nats.duplicate_window".into(), "must be at least 1s".into());
            }
        }
        let schedule = self.delivery.schedule_durations()?;
        if schedule.len() > 50 {
            return invalid("delivery.schedule".into(), "at most 50 retries".into());
        }
        if !(1..=1024).contains(&self.delivery.workers) {
            return invalid(
                "delivery.workers".into(),
                "must be between 1 and 1024".into(),
            );
        }
        Ok(())
    }

    /// Is any channel configured? Without one, no reactions are planned.
    pub fn any_channel(&self) -> bool {
        !self.callbacks.urls.is_empty() || self.email.is_some() || self.nats.is_some()
    }
}

impl EmailConfig {
    fn validate(&self) -> Result<(), SettingError> {
        let invalid = |key: &str, message: String| Err(SettingError::new(key, message));
        if self.host.trim().is_empty() {
            return invalid("email.host", "required when email is configured".into());
        }
        if self.from.trim().is_empty() {
            return invalid("email.from", "required when email is configured".into());
        }
        if let Err(e) = self.from.parse::<lettre::message::Mailbox>() {
            return invalid(
                "email.from",
                format!("`{}` is not an address: {e}", self.from),
            );
        }
        match (self.username.is_some(), self.password.is_some()) {
            (true, false) => return invalid("email.password", "set with email.username".into()),
            (false, true) => return invalid("email.username", "set with email.password".into()),
            _ => {}
        }
        if self.port == Some(0) {
            return invalid("email.port", "must not be 0".into());
        }
        if self.timeout_secs == 0 {
            return invalid("email.timeout_secs", "must be at least 1".into());
        }
        if let Some(dir) = &self.templates_dir {
            if !dir.is_dir() {
                return invalid(
                    "email.templates_dir",
                    format!("{} is not a directory", dir.display()),
                );
            }
        }
        // The templates are parsed now, so a broken one stops start-up instead of a mail.
        if let Err(e) = crate::react::email::Templates::load(self.templates_dir.as_deref()) {
            return invalid("email.templates_dir", e.to_string());
        }
        for (key, value) in [
            ("email.email_metadata_key", &self.email_metadata_key),
            ("email.locale_metadata_key", &self.locale_metadata_key),
        ] {
            if value.as_ref().is_some_and(|k| k.trim().is_empty()) {
                return invalid(key, "must not be empty".into());
            }
        }
        if let Some(template) = &self.resume_url {
            if let Err(message) = crate::react::email::check_resume_url(template) {
                return invalid("email.resume_url", message);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn default_schedule_is_svix_like() {
        let d = DeliveryConfig::default().schedule_durations().unwrap();
        assert_eq!(d.len(), 7);
        assert_eq!(d[0], Duration::from_secs(5));
        assert_eq!(d[6], Duration::from_secs(36000));
    }

    #[test]
    fn validation_names_the_key_and_its_variable() {
        let key_of = |c: &ReactConfig| c.validate().unwrap_err().key.unwrap();
        let mut c = ReactConfig::default();
        c.callbacks.urls = vec!["https://a.test/x".into(), "ftp://b".into()];
        c.callbacks.secrets = vec![SECRET.into()];
        assert_eq!(key_of(&c), "callbacks.urls[1]");
        let shown = c.validate().unwrap_err().to_string();
        assert!(shown.contains("IDVERDICT_CALLBACK_URLS"), "{shown}");
        c.callbacks.urls.pop();
        assert!(c.validate().is_ok());
        c.callbacks.secrets.push("nope".into());
        assert_eq!(key_of(&c), "callbacks.secrets[1]");
        c.callbacks.secrets.pop();
        c.delivery.schedule = vec!["5s".into(), "5x".into()];
        assert_eq!(key_of(&c), "delivery.schedule[1]");
        c.delivery.schedule = vec!["5s".into()];
        c.email = Some(EmailConfig {
            host: "smtp.test".into(),
            from: "Acme <no-reply@acme.test>".into(),
            username: Some("acme".into()),
            ..Default::default()
        });
        assert_eq!(key_of(&c), "email.password");
        c.email.as_mut().unwrap().password = Some("pw".into());
        assert!(c.validate().is_ok());
        c.email.as_mut().unwrap().from = "not an address".into();
        assert_eq!(key_of(&c), "email.from");
    }

    #[test]
    fn toml_rejects_unknown_keys() {
        assert!(toml::from_str::<CallbackConfig>("url = \"x\"\n").is_err());
        let c: CallbackConfig = toml::from_str(&format!(
            "urls = [\"https://a.test\"]\nsecrets = [\"{SECRET}\"]\n"
        ))
        .unwrap();
        assert_eq!(c.timeout_secs, 10);
        let n: NatsConfig = toml::from_str("url = \"nats://127.0.0.1:4222\"\n").unwrap();
        assert_eq!(n.subject_prefix, "idverdict");
    }
}
