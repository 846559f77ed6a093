//! The settings as read, before validation: the defaults, overlaid by the TOML file (one serde
//! section per table, unknown keys refused), overlaid by the environment
//! ([`super::settings::apply_env`]). [`super::Config::load`] then checks all of it once.

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

use super::console::ConsoleTable;
use super::parse;
use super::reactions::{CallbackConfig, DeliveryConfig, EmailConfig, NatsConfig};
use super::retention::RetentionTable;
use super::stripe::StripeTable;
use super::{settings, ConfigError, LogFormat};
use crate::decide::policy::PolicyTable;

/// The root table: server, webhook and storage settings, and one field per sub-table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawConfig {
    pub listen: String,
    pub webhook_path: String,
    #[serde(deserialize_with = "parse::de_secrets")]
    pub webhook_secrets: Vec<SecretString>,
    #[serde(deserialize_with = "parse::de_seconds")]
    pub tolerance_secs: u64,
    #[serde(deserialize_with = "parse::de_seconds")]
    pub future_skew_secs: u64,
    pub body_limit_bytes: u64,
    /// `None`: a SQLite file in the data directory.
    pub database_url: Option<String>,
    pub api_token: Option<SecretString>,
    pub expectations_key: Option<SecretString>,
    pub data_dir: PathBuf,
    #[serde(deserialize_with = "parse::de_choice")]
    pub log_format: LogFormat,
    #[serde(deserialize_with = "parse::de_seconds")]
    pub request_timeout_secs: u64,
    /// `None`: generated once and kept in the data directory.
    pub instance_id: Option<String>,
    #[serde(deserialize_with = "parse::de_duration")]
    pub poll_interval: std::time::Duration,
    #[serde(deserialize_with = "parse::de_seconds")]
    pub header_read_timeout_secs: u64,
    #[serde(deserialize_with = "parse::de_seconds")]
    pub keepalive_timeout_secs: u64,
    /// `None`: derived from the open-file limit at start-up.
    pub max_connections: Option<u64>,

    pub callbacks: CallbackConfig,
    /// Present (from the file or any email variable) = email is on.
    pub email: Option<EmailConfig>,
    /// Present = the bus is on.
    pub nats: Option<NatsConfig>,
    pub delivery: DeliveryConfig,
    pub stripe: StripeTable,
    /// The policy's own schema, validated by `decide::Policy::from_toml`.
    pub policy: Option<PolicyTable>,
    pub console: ConsoleTable,
    pub retention: RetentionTable,

    /// The embedded emulator of `serve` in dev mode: environment (and flags) only.
    #[serde(skip)]
    pub emulator_listen: Option<String>,
    #[serde(skip)]
    pub no_emulator: bool,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            listen: "127.0.0.1:4242".into(),
            webhook_path: "/webhook".into(),
            webhook_secrets: Vec::new(),
            tolerance_secs: stripe_webhook::DEFAULT_TOLERANCE_SECS,
            future_skew_secs: stripe_webhook::DEFAULT_FUTURE_SKEW_SECS,
            body_limit_bytes: 1024 * 1024,
            database_url: None,
            api_token: None,
            expectations_key: None,
            data_dir: PathBuf::from(".idverdict"),
            log_format: LogFormat::Human,
            request_timeout_secs: 10,
            instance_id: None,
            poll_interval: std::time::Duration::from_millis(500),
            header_read_timeout_secs: 10,
            keepalive_timeout_secs: 30,
            max_connections: None,
            callbacks: CallbackConfig::default(),
            email: None,
            nats: None,
            delivery: DeliveryConfig::default(),
            stripe: StripeTable::default(),
            policy: None,
            console: ConsoleTable::default(),
            retention: RetentionTable::default(),
            emulator_listen: None,
            no_emulator: false,
        }
    }
}

impl RawConfig {
    /// Parse a configuration file. Errors carry TOML's line and column, and name the setting
    /// (with its environment variable) when the fault is in a value.
    pub fn from_file(path: &Path) -> Result<RawConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text).map_err(|(setting, message)| ConfigError::ParseFile {
            path: path.to_path_buf(),
            setting,
            message,
        })
    }

    /// Parse TOML text; on error, the setting at fault (if a value is) and TOML's message.
    pub fn from_toml(text: &str) -> Result<RawConfig, (Option<String>, String)> {
        let deserializer = toml::Deserializer::new(text);
        serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = e.path().to_string();
            // TOML's own message: where (line, column, the line itself) and what.
            let message = e.inner().to_string().trim_end().to_string();
            let setting = (path != ".").then(|| settings::describe(&path));
            (setting, message)
        })
    }

    pub fn email(&mut self) -> &mut EmailConfig {
        self.email.get_or_insert_with(EmailConfig::default)
    }

    pub fn nats(&mut self) -> &mut NatsConfig {
        self.nats.get_or_insert_with(NatsConfig::default)
    }

    pub fn policy(&mut self) -> &mut PolicyTable {
        self.policy.get_or_insert_with(PolicyTable::default)
    }
}
