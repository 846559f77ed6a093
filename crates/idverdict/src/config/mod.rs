//! Service configuration, loaded one way: defaults, then an optional TOML file, then
//! environment variables (which win); the command line turns its flags into environment-style
//! overrides, so one precedence holds everywhere: flag > environment > file > default.
//!
//! - [`settings`]: the one list of settings (key, variable, kind, default, meaning) that drives
//!   the environment pass, error messages and the README table ([`docs`]);
//! - [`parse`]: the one grammar for booleans, durations, lists and numbers;
//! - `raw`: the serde sections of the file (unknown keys refused, line and column on errors);
//! - [`reactions`], [`stripe`]: the `[callbacks]`/`[email]`/`[nats]`/`[delivery]` and
//!   `[stripe]` sections and their checks; `[policy]` is the policy's own schema
//!   (`decide::PolicyTable`, checked by `decide::Policy::from_toml`).
//!
//! Everything is validated once, at start-up, and every error names the TOML key and the
//! environment variable. Secrets are [`SecretString`]s: `Debug` cannot show them.

pub mod console;
pub mod docs;
pub mod parse;
mod raw;
pub mod reactions;
pub mod retention;
pub mod settings;
pub mod stripe;
#[cfg(test)]
mod tests;
mod warnings;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The secret type of every credential setting, and the trait that reads one on purpose.
pub use secrecy::{ExposeSecret, SecretString};

pub use console::ConsoleConfig;
pub use parse::{parse_bool, parse_duration, parse_seconds};
pub use reactions::{
    decode_secret, generate_callback_secret, CallbackConfig, DeliveryConfig, EmailConfig,
    NatsConfig, ReactConfig, TlsMode,
};
pub use retention::RetentionConfig;
pub use settings::{Setting, SETTINGS};
pub use stripe::{StripeKey, StripeSettings};
pub use warnings::start_up_warnings;

use raw::RawConfig;

/// Fully validated settings for `idverdict serve` (and the one-shot commands).
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub webhook_path: String,
    /// Endpoint secrets (`whsec_…`). Several = rotation: any of them may match.
    pub webhook_secrets: Vec<SecretString>,
    pub tolerance_secs: u64,
    pub future_skew_secs: u64,
    pub body_limit_bytes: usize,
    pub database_url: String,
    /// Bearer token for the app API. `None` = the API refuses every request.
    pub api_token: Option<SecretString>,
    /// Key of the digests of expected values. `None` = expectations of names, dob, email or
    /// phone are refused (rules such as `min_age` need no key).
    pub expectations_key: Option<SecretString>,
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    /// Per-request deadline; slow clients (e.g. a body trickling in) are cut off.
    pub request_timeout_secs: u64,
    /// This instance's name in the reactions it claims (`None`: the one kept in the data
    /// directory, see [`Config::instance_id`]).
    pub instance_id: Option<String>,
    /// How often idle workers look for work nobody told them about.
    pub poll_interval: std::time::Duration,
    /// A request head must be complete within this of the connection opening (or of its
    /// first byte after an idle spell).
    pub header_read_timeout_secs: u64,
    /// An idle keep-alive connection is closed after this.
    pub keepalive_timeout_secs: u64,
    /// Open connections at most; `None` = derived from the open-file limit at start-up.
    pub max_connections: Option<u64>,
    /// The decision policy (`[policy]`).
    pub policy: crate::decide::Policy,
    /// Where decisions go: `[callbacks]`, `[email]`, `[nats]`, `[delivery]`.
    pub reactions: ReactConfig,
    /// The Stripe API (`[stripe]`): session creation, reconciliation. `None` without a key.
    pub stripe: Option<StripeSettings>,
    /// The operator console (`[console]`).
    pub console: ConsoleConfig,
    /// How long stored events and their payloads are kept (`[retention]`).
    pub retention: RetentionConfig,
    /// Where `serve`'s embedded emulator listens in dev mode (`None`: the usual port if free).
    pub emulator_listen: Option<String>,
    /// `serve` does not start the embedded emulator even in dev mode.
    pub no_emulator: bool,
    /// True when the secret and token were generated for local development.
    pub dev_mode: bool,
    /// In dev mode, the console's development admin (created once, password in the data
    /// directory).
    pub dev_operator: Option<DevOperator>,
}

/// The development console login.
#[derive(Debug, Clone)]
pub struct DevOperator {
    pub email: String,
    pub password: SecretString,
}

/// The development admin's login.
pub const DEV_OPERATOR_EMAIL: &str = "admin@localhost";

impl std::fmt::Debug for Config {
    // Hand-written for the database URL, which may carry a password; secrets are
    // `SecretString`s and print as redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("webhook_path", &self.webhook_path)
            .field("webhook_secrets", &self.webhook_secrets)
            .field("tolerance_secs", &self.tolerance_secs)
            .field("future_skew_secs", &self.future_skew_secs)
            .field("body_limit_bytes", &self.body_limit_bytes)
            .field("database", &crate::store::redact_url(&self.database_url))
            .field("api_token", &self.api_token)
            .field("expectations_key", &self.expectations_key)
            .field("data_dir", &self.data_dir)
            .field("log_format", &self.log_format)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("instance_id", &self.instance_id)
            .field("poll_interval", &self.poll_interval)
            .field("header_read_timeout_secs", &self.header_read_timeout_secs)
            .field("keepalive_timeout_secs", &self.keepalive_timeout_secs)
            .field("max_connections", &self.max_connections)
            .field("policy", &self.policy)
            .field("reactions", &self.reactions)
            .field("stripe", &self.stripe)
            .field("console", &self.console)
            .field("retention", &self.retention)
            .field("emulator_listen", &self.emulator_listen)
            .field("no_emulator", &self.no_emulator)
            .field("dev_mode", &self.dev_mode)
            .field("dev_operator", &self.dev_operator)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<LogFormat, String> {
        match s {
            "human" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("`{other}` is neither `human` nor `json`")),
        }
    }
}

/// A setting with a value that is not valid. Shown as
/// ``invalid setting `email.port` (IDVERDICT_SMTP_PORT): …``.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting {}: {message}", settings::name(key.as_deref(), *env))]
pub struct SettingError {
    /// The TOML key (`callbacks.urls[1]`), `None` for a variable without one.
    pub key: Option<String>,
    pub env: Option<&'static str>,
    pub message: String,
}

impl SettingError {
    /// An error about a TOML key; its variable comes from the settings list.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> SettingError {
        let key = key.into();
        SettingError {
            env: settings::find(&key).and_then(|s| s.env),
            key: Some(key),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path} (--config or IDVERDICT_CONFIG): {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// TOML's message carries the line, the column and the line itself.
    #[error("invalid configuration file {path}: {}{message}", setting.as_ref().map(|s| format!("in {s}: ")).unwrap_or_default())]
    ParseFile {
        path: PathBuf,
        /// The setting whose value is at fault (`` `email.port` (IDVERDICT_SMTP_PORT) ``).
        setting: Option<String>,
        message: String,
    },
    #[error(transparent)]
    Invalid(#[from] SettingError),
    #[error("cannot prepare the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where raw values come from: an optional file (else `IDVERDICT_CONFIG`) plus a lookup for
/// environment variables (empty values count as unset).
pub struct Sources<'a> {
    pub file: Option<&'a Path>,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl Config {
    /// Read, merge and validate. Does not touch the disk except to read the file; dev-mode
    /// generation happens in [`Config::materialize_dev_defaults`].
    pub fn load(sources: &Sources<'_>) -> Result<Config, ConfigError> {
        Ok(resolve(read_raw(sources)?)?)
    }

    /// Only the data directory, from the same sources, without validating the rest: for the
    /// commands that merely look for a running `serve` there (`trigger`, `endpoints`), which
    /// must work before the configuration is complete (`endpoints create` is how one gets
    /// the webhook secret).
    pub fn load_data_dir(sources: &Sources<'_>) -> Result<PathBuf, ConfigError> {
        Ok(read_raw(sources)?.data_dir)
    }

    /// In dev mode, load (or create once) the development secret and token kept in the data
    /// directory, so restarts keep working with the same values. Returns what was generated
    /// now, for the start-up banner.
    pub fn materialize_dev_defaults(&mut self) -> Result<DevCredentials, ConfigError> {
        let dir = self.data_dir.clone();
        let failed = |source| ConfigError::DataDir {
            path: dir.clone(),
            source,
        };
        crate::owner_only::create_dir(&dir).map_err(failed)?;
        if !self.dev_mode {
            return Ok(DevCredentials::default());
        }
        let secret = read_or_create(&dir.join("dev-webhook-secret"), || {
            format!("whsec_{}", random_token(32))
        })
        .map_err(failed)?;
        let token = read_or_create(&dir.join("dev-api-token"), || {
            format!("idv_dev_{}", random_token(32))
        })
        .map_err(failed)?;
        let console_password =
            read_or_create(&dir.join("dev-console-password"), || random_token(20))
                .map_err(failed)?;
        if self.expectations_key.is_none() {
            let key = read_or_create(&dir.join("dev-expectations-key"), || random_token(48))
                .map_err(failed)?;
            self.expectations_key = Some(SecretString::from(key));
        }
        self.webhook_secrets = vec![SecretString::from(secret.clone())];
        self.api_token = Some(SecretString::from(token.clone()));
        self.dev_operator = Some(DevOperator {
            email: DEV_OPERATOR_EMAIL.to_string(),
            password: SecretString::from(console_password.clone()),
        });
        Ok(DevCredentials {
            webhook_secret: Some(secret),
            api_token: Some(token),
            console_login: Some((DEV_OPERATOR_EMAIL.to_string(), console_password)),
        })
    }
}

/// The file keeping a generated instance id across restarts.
pub const INSTANCE_ID_FILE: &str = "instance-id";

impl Config {
    /// This instance's id: `instance_id` when configured, else the one generated on the
    /// first start and kept in `<data_dir>/instance-id` (so a restarted instance knows which
    /// reactions it had claimed when it died).
    pub fn instance_id(&self) -> Result<String, ConfigError> {
        if let Some(id) = &self.instance_id {
            return Ok(id.clone());
        }
        let dir = &self.data_dir;
        let failed = |source| ConfigError::DataDir {
            path: dir.clone(),
            source,
        };
        crate::owner_only::create_dir(dir).map_err(failed)?;
        read_or_create(&dir.join(INSTANCE_ID_FILE), || {
            format!("idv-{}", random_token(12).to_lowercase())
        })
        .map_err(failed)
    }
}

/// The database when none is configured: a SQLite file in the data directory.
pub fn default_database_url(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join("idverdict.db").display())
}

/// The file (if any) overlaid by the environment, not yet validated.
fn read_raw(sources: &Sources<'_>) -> Result<RawConfig, ConfigError> {
    let env = |var: &str| (sources.env)(var).filter(|v| !v.trim().is_empty());
    let from_env = env(settings::CONFIG_FILE_VAR).map(PathBuf::from);
    let mut raw = match sources.file.or(from_env.as_deref()) {
        Some(path) => RawConfig::from_file(path)?,
        None => RawConfig::default(),
    };
    settings::apply_env(&mut raw, &env)?;
    Ok(raw)
}

/// Check every value once and build the [`Config`].
fn resolve(raw: RawConfig) -> Result<Config, SettingError> {
    let invalid = |key: &str, message: String| Err(SettingError::new(key, message));

    let listen: SocketAddr = match raw.listen.trim().parse() {
        Ok(addr) => addr,
        Err(_) => {
            return invalid(
                "listen",
                format!("`{}` is not an address like 127.0.0.1:4242", raw.listen),
            )
        }
    };

    let webhook_path = raw.webhook_path;
    if !webhook_path.starts_with('/')
        || webhook_path.len() < 2
        || webhook_path.contains(['?', '#', ' '])
    {
        return invalid(
            "webhook_path",
            format!("`{webhook_path}` must be a path such as /webhook"),
        );
    }

    let webhook_secrets = raw.webhook_secrets;
    if let Some(i) = webhook_secrets
        .iter()
        .position(|s| s.expose_secret().trim().is_empty())
    {
        return invalid(&format!("webhook_secrets[{i}]"), "is empty".into());
    }
    if let Some(bad) = webhook_secrets
        .iter()
        .find(|s| !s.expose_secret().starts_with("whsec_"))
    {
        let shown: String = bad.expose_secret().chars().take(6).collect();
        return invalid(
            "webhook_secrets",
            format!("every secret must start with `whsec_` (one starts with `{shown}`)"),
        );
    }

    if !(1024..=64 * 1024 * 1024).contains(&raw.body_limit_bytes) {
        return invalid(
            "body_limit_bytes",
            "must be between 1024 and 67108864".into(),
        );
    }
    for (key, secs) in [
        ("request_timeout_secs", raw.request_timeout_secs),
        ("header_read_timeout_secs", raw.header_read_timeout_secs),
        ("keepalive_timeout_secs", raw.keepalive_timeout_secs),
    ] {
        if secs == 0 {
            return invalid(key, "must be at least 1".into());
        }
    }
    if raw
        .max_connections
        .is_some_and(|n| !(1..=65536).contains(&n))
    {
        return invalid("max_connections", "must be between 1 and 65536".into());
    }

    if let Some(id) = &raw.instance_id {
        let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if id.is_empty() || id.len() > 64 || !id.chars().all(valid) {
            return invalid(
                "instance_id",
                format!("`{id}` must be 1 to 64 letters, digits, `-`, `_` or `.`"),
            );
        }
    }
    if !(Duration::from_millis(10)..=Duration::from_secs(3600)).contains(&raw.poll_interval) {
        return invalid("poll_interval", "must be between 10ms and 1h".into());
    }

    let policy = crate::decide::Policy::from_toml(raw.policy.as_ref())
        .map_err(|e| SettingError::new(e.key, e.message))?;

    let database_url = match raw.database_url {
        Some(url) => url,
        None => default_database_url(&raw.data_dir),
    };
    if let Err(e) = crate::store::Backend::from_url(&database_url) {
        return invalid("database_url", e.to_string());
    }

    let api_token = raw.api_token;
    if let Some(token) = api_token.as_ref().map(|t| t.expose_secret()) {
        // HTTP trims a header value's surrounding whitespace, and a token with spaces inside
        // is hard to send verbatim: such a token would lock the API's own users out.
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return invalid(
                "api_token",
                "must not be blank or contain spaces or control characters".into(),
            );
        }
        if token.chars().count() < 16 {
            return invalid("api_token", "must be at least 16 characters".into());
        }
    }

    let expectations_key = raw.expectations_key;
    if expectations_key
        .as_ref()
        .is_some_and(|k| k.expose_secret().chars().count() < 32)
    {
        return invalid("expectations_key", "must be at least 32 characters".into());
    }

    let reactions = ReactConfig {
        callbacks: raw.callbacks,
        email: raw.email,
        nats: raw.nats,
        delivery: raw.delivery,
    };
    reactions.validate()?;
    let stripe = raw.stripe.resolve()?;
    let console = raw.console.resolve()?;
    let retention = raw
        .retention
        .resolve(Duration::from_secs(raw.stripe.reconcile_since_secs))?;

    // With neither a secret nor a token configured this is a first run on a laptop: the
    // embedded defaults generate both. With either configured, nothing is generated and a
    // missing secret is an error (we could not verify a single webhook).
    let dev_mode = webhook_secrets.is_empty() && api_token.is_none();
    if webhook_secrets.is_empty() && !dev_mode {
        return invalid(
            "webhook_secrets",
            "no webhook signing secret is configured (set STRIPE_WEBHOOK_SECRET to the endpoint's whsec_… secret)".into(),
        );
    }

    Ok(Config {
        listen,
        webhook_path,
        webhook_secrets,
        tolerance_secs: raw.tolerance_secs,
        future_skew_secs: raw.future_skew_secs,
        body_limit_bytes: raw.body_limit_bytes as usize,
        database_url,
        api_token,
        expectations_key,
        data_dir: raw.data_dir,
        log_format: raw.log_format,
        request_timeout_secs: raw.request_timeout_secs,
        instance_id: raw.instance_id,
        poll_interval: raw.poll_interval,
        header_read_timeout_secs: raw.header_read_timeout_secs,
        keepalive_timeout_secs: raw.keepalive_timeout_secs,
        max_connections: raw.max_connections,
        policy,
        reactions,
        stripe,
        console,
        retention,
        emulator_listen: raw.emulator_listen,
        no_emulator: raw.no_emulator,
        dev_mode,
        dev_operator: None,
    })
}

/// Credentials generated for the embedded defaults (printed once, never logged).
#[derive(Default)]
pub struct DevCredentials {
    pub webhook_secret: Option<String>,
    pub api_token: Option<String>,
    /// The console's development admin: email and password.
    pub console_login: Option<(String, String)>,
}

/// The development webhook secret a local `serve` would use, for `idverdict trigger`.
pub fn dev_webhook_secret(data_dir: &Path) -> Option<String> {
    std::fs::read_to_string(data_dir.join("dev-webhook-secret"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn read_or_create(path: &Path, make: impl FnOnce() -> String) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(existing) if !existing.trim().is_empty() => Ok(existing.trim().to_string()),
        Ok(_) | Err(_) => {
            let value = make();
            write_private(path, &value)?;
            Ok(value)
        }
    }
}

/// Write a file readable by the owner only: it holds a credential.
fn write_private(path: &Path, value: &str) -> std::io::Result<()> {
    crate::data_dir::write_private(path, value.as_bytes())
}

/// A random alphanumeric string from the OS-seeded CSPRNG.
pub fn random_token(len: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}
