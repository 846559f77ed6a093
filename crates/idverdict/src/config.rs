//! Service configuration: defaults, an optional TOML file, then environment variables (which
//! win). Everything is validated once, at start-up, and every error names the setting at fault.
//!
//! The CLI layer (`idverdict-cli`) turns flags into environment-style overrides so that one
//! precedence order holds everywhere: flag > environment > file > default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Fully validated settings for `idverdict serve`.
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub webhook_path: String,
    /// Endpoint secrets (`whsec_…`). Several = rotation: any of them may match.
    pub webhook_secrets: Vec<String>,
    pub tolerance_secs: u64,
    pub future_skew_secs: u64,
    pub body_limit_bytes: usize,
    pub database_url: String,
    /// Bearer token for the app API. `None` = the API refuses every request.
    pub api_token: Option<String>,
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    /// Per-request deadline; slow clients (e.g. a body trickling in) are cut off.
    pub request_timeout_secs: u64,
    /// The decision policy (`[policy]` table; `IDVERDICT_MAX_ATTEMPTS` overrides its limit).
    pub policy: crate::decide::Policy,
    /// Where decisions go: `[callbacks]`, `[email]`, `[nats]`, `[delivery]` (see `react::config`).
    pub reactions: crate::react::ReactConfig,
    /// The Stripe API (`STRIPE_API_KEY`, `STRIPE_API_BASE`): session creation, reconciliation.
    pub stripe: Option<crate::stripe_api::StripeSettings>,
    /// True when the secret and token were generated for local development.
    pub dev_mode: bool,
}

impl std::fmt::Debug for Config {
    // Hand-written so that secrets and the token can never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("webhook_path", &self.webhook_path)
            .field(
                "webhook_secrets",
                &format!("<{} secret(s)>", self.webhook_secrets.len()),
            )
            .field("tolerance_secs", &self.tolerance_secs)
            .field("future_skew_secs", &self.future_skew_secs)
            .field("body_limit_bytes", &self.body_limit_bytes)
            .field("database", &crate::store::redact_url(&self.database_url))
            .field("api_token", &self.api_token.as_ref().map(|_| "<set>"))
            .field("data_dir", &self.data_dir)
            .field("log_format", &self.log_format)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("policy", &self.policy)
            .field("reactions", &self.reactions)
            .field("stripe", &self.stripe.as_ref().map(|s| &s.api_base))
            .field("dev_mode", &self.dev_mode)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

/// One row of the configuration table: the TOML key, the environment variable and the default.
/// The README's table is written from this list, so the two cannot drift silently.
pub const SETTINGS: &[(&str, &str, &str)] = &[
    ("listen", "IDVERDICT_LISTEN", "127.0.0.1:4242"),
    ("webhook_path", "IDVERDICT_WEBHOOK_PATH", "/webhook"),
    (
        "webhook_secrets",
        "STRIPE_WEBHOOK_SECRET",
        "(generated in dev mode)",
    ),
    ("tolerance_secs", "IDVERDICT_WEBHOOK_TOLERANCE_SECS", "300"),
    (
        "future_skew_secs",
        "IDVERDICT_WEBHOOK_FUTURE_SKEW_SECS",
        "300",
    ),
    ("body_limit_bytes", "IDVERDICT_BODY_LIMIT_BYTES", "1048576"),
    (
        "database_url",
        "DATABASE_URL",
        "sqlite://<data_dir>/idverdict.db",
    ),
    (
        "api_token",
        "IDVERDICT_API_TOKEN",
        "(generated in dev mode)",
    ),
    ("data_dir", "IDVERDICT_DATA_DIR", ".idverdict"),
    ("log_format", "IDVERDICT_LOG_FORMAT", "human"),
    (
        "request_timeout_secs",
        "IDVERDICT_REQUEST_TIMEOUT_SECS",
        "10",
    ),
    ("policy.max_attempts", "IDVERDICT_MAX_ATTEMPTS", "3"),
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration file {path}: {message}")]
    ParseFile { path: PathBuf, message: String },
    #[error("invalid setting `{key}` ({env}): {message}")]
    Invalid {
        key: &'static str,
        env: &'static str,
        message: String,
    },
    #[error("invalid policy: {message}")]
    Policy { message: String },
    #[error("invalid reactions configuration: {message}")]
    Reactions { message: String },
    #[error("invalid Stripe API configuration: {message}")]
    Stripe { message: String },
    #[error("cannot prepare the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The raw, unvalidated layer read from a TOML file. Unknown keys are an error: a typo in a
/// configuration file should not silently fall back to a default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLayer {
    listen: Option<String>,
    webhook_path: Option<String>,
    webhook_secrets: Option<SecretList>,
    tolerance_secs: Option<u64>,
    future_skew_secs: Option<u64>,
    body_limit_bytes: Option<u64>,
    database_url: Option<String>,
    api_token: Option<String>,
    data_dir: Option<String>,
    log_format: Option<String>,
    request_timeout_secs: Option<u64>,
    /// The `[policy]` table, validated by `decide::Policy::from_toml`.
    policy: Option<toml::Value>,
    /// Reaction tables, validated by `react::ReactConfig`.
    callbacks: Option<toml::Value>,
    email: Option<toml::Value>,
    nats: Option<toml::Value>,
    delivery: Option<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SecretList {
    One(String),
    Many(Vec<String>),
}

/// Where raw values come from: a file layer plus a lookup for environment variables.
pub struct Sources<'a> {
    pub file: Option<&'a Path>,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Sources<'a> {
    /// The process environment (plus an optional file).
    pub fn process(file: Option<&'a Path>) -> Self {
        Sources {
            file,
            env: &|k| std::env::var(k).ok().filter(|v| !v.is_empty()),
        }
    }
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    let env = SETTINGS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, e, _)| *e)
        .unwrap_or("-");
    ConfigError::Invalid {
        key,
        env,
        message: message.into(),
    }
}

impl Config {
    /// Read, merge and validate. Does not touch the disk except to read the file; dev-mode
    /// generation happens in [`Config::materialize_dev_defaults`].
    pub fn load(sources: &Sources<'_>) -> Result<Config, ConfigError> {
        let file = match sources.file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
                        path: path.to_path_buf(),
                        source,
                    })?;
                toml::from_str::<FileLayer>(&text).map_err(|e| ConfigError::ParseFile {
                    path: path.to_path_buf(),
                    message: e.message().to_string(),
                })?
            }
            None => FileLayer::default(),
        };
        let reactions = reactions_config(&file, sources.env)?;
        let stripe = crate::stripe_api::StripeSettings::from_env(sources.env)
            .map_err(|message| ConfigError::Stripe { message })?;
        let env = |key: &'static str| -> Option<String> {
            SETTINGS
                .iter()
                .find(|(k, _, _)| *k == key)
                .and_then(|(_, var, _)| (sources.env)(var))
        };
        let text = |key: &'static str, from_file: Option<String>, default: &str| -> String {
            env(key)
                .or(from_file)
                .unwrap_or_else(|| default.to_string())
        };
        let number =
            |key: &'static str, from_file: Option<u64>, default: u64| -> Result<u64, ConfigError> {
                match env(key) {
                    Some(v) => v.trim().parse::<u64>().map_err(|_| {
                        invalid(key, format!("`{v}` is not a non-negative whole number"))
                    }),
                    None => Ok(from_file.unwrap_or(default)),
                }
            };

        let listen_text = text("listen", file.listen, "127.0.0.1:4242");
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            invalid(
                "listen",
                format!("`{listen_text}` is not an address like 127.0.0.1:4242"),
            )
        })?;

        let webhook_path = text("webhook_path", file.webhook_path, "/webhook");
        if !webhook_path.starts_with('/')
            || webhook_path.len() < 2
            || webhook_path.contains(['?', '#', ' '])
        {
            return Err(invalid(
                "webhook_path",
                format!("`{webhook_path}` must be a path such as /webhook"),
            ));
        }

        let webhook_secrets: Vec<String> = match env("webhook_secrets") {
            Some(v) => split_list(&v),
            None => match file.webhook_secrets {
                Some(SecretList::One(s)) => split_list(&s),
                Some(SecretList::Many(v)) => v.into_iter().map(|s| s.trim().to_string()).collect(),
                None => Vec::new(),
            },
        };
        if webhook_secrets.iter().any(|s| s.is_empty()) {
            return Err(invalid("webhook_secrets", "contains an empty secret"));
        }
        if let Some(bad) = webhook_secrets.iter().find(|s| !s.starts_with("whsec_")) {
            let shown: String = bad.chars().take(6).collect();
            return Err(invalid(
                "webhook_secrets",
                format!("every secret must start with `whsec_` (one starts with `{shown}`)"),
            ));
        }

        let tolerance_secs = number("tolerance_secs", file.tolerance_secs, 300)?;
        let future_skew_secs = number("future_skew_secs", file.future_skew_secs, 300)?;
        let body_limit = number("body_limit_bytes", file.body_limit_bytes, 1024 * 1024)?;
        if !(1024..=64 * 1024 * 1024).contains(&body_limit) {
            return Err(invalid(
                "body_limit_bytes",
                "must be between 1024 and 67108864",
            ));
        }
        let request_timeout_secs = number("request_timeout_secs", file.request_timeout_secs, 10)?;
        if request_timeout_secs == 0 {
            return Err(invalid("request_timeout_secs", "must be at least 1"));
        }
        let mut policy = crate::decide::Policy::from_toml(file.policy.as_ref())
            .map_err(|message| ConfigError::Policy { message })?;
        if env("policy.max_attempts").is_some() {
            let max_attempts = number("policy.max_attempts", None, 3)?;
            if !(1..=100).contains(&max_attempts) {
                return Err(invalid("policy.max_attempts", "must be between 1 and 100"));
            }
            policy = policy.with_max_attempts(max_attempts as u32);
        }

        let data_dir = PathBuf::from(text("data_dir", file.data_dir, ".idverdict"));
        let database_url = match env("database_url").or(file.database_url) {
            Some(url) => url,
            None => format!("sqlite://{}", data_dir.join("idverdict.db").display()),
        };
        crate::store::Backend::from_url(&database_url)
            .map_err(|e| invalid("database_url", e.to_string()))?;

        let api_token = env("api_token").or(file.api_token);
        if let Some(token) = &api_token {
            if token.len() < 16 {
                return Err(invalid("api_token", "must be at least 16 characters"));
            }
        }

        let log_text = text("log_format", file.log_format, "human");
        let log_format = match log_text.as_str() {
            "human" => LogFormat::Human,
            "json" => LogFormat::Json,
            other => {
                return Err(invalid(
                    "log_format",
                    format!("`{other}` is neither `human` nor `json`"),
                ))
            }
        };

        // With neither a secret nor a token configured this is a first run on a laptop: the
        // embedded defaults generate both. With either configured, nothing is generated and a
        // missing secret is an error (we could not verify a single webhook).
        let dev_mode = webhook_secrets.is_empty() && api_token.is_none();
        if webhook_secrets.is_empty() && !dev_mode {
            return Err(invalid(
                "webhook_secrets",
                "no webhook signing secret is configured (set STRIPE_WEBHOOK_SECRET to the endpoint's whsec_… secret)",
            ));
        }

        Ok(Config {
            listen,
            webhook_path,
            webhook_secrets,
            tolerance_secs,
            future_skew_secs,
            body_limit_bytes: body_limit as usize,
            database_url,
            api_token,
            data_dir,
            log_format,
            request_timeout_secs,
            policy,
            reactions,
            stripe,
            dev_mode,
        })
    }

    /// In dev mode, load (or create once) the development secret and token kept in the data
    /// directory, so restarts keep working with the same values. Returns what was generated
    /// now, for the start-up banner.
    pub fn materialize_dev_defaults(&mut self) -> Result<DevCredentials, ConfigError> {
        std::fs::create_dir_all(&self.data_dir).map_err(|source| ConfigError::DataDir {
            path: self.data_dir.clone(),
            source,
        })?;
        if !self.dev_mode {
            return Ok(DevCredentials::default());
        }
        let secret = read_or_create(&self.data_dir.join("dev-webhook-secret"), || {
            format!("whsec_{}", random_token(32))
        })
        .map_err(|source| ConfigError::DataDir {
            path: self.data_dir.clone(),
            source,
        })?;
        let token = read_or_create(&self.data_dir.join("dev-api-token"), || {
            format!("idv_dev_{}", random_token(32))
        })
        .map_err(|source| ConfigError::DataDir {
            path: self.data_dir.clone(),
            source,
        })?;
        self.webhook_secrets = vec![secret.clone()];
        self.api_token = Some(token.clone());
        Ok(DevCredentials {
            webhook_secret: Some(secret),
            api_token: Some(token),
        })
    }
}

/// Assemble `[callbacks]`, `[email]`, `[nats]` and `[delivery]` into the reactions settings,
/// apply their environment variables, and validate.
fn reactions_config(
    file: &FileLayer,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<crate::react::ReactConfig, ConfigError> {
    let mut table = toml::map::Map::new();
    for (key, value) in [
        ("callbacks", &file.callbacks),
        ("email", &file.email),
        ("nats", &file.nats),
        ("delivery", &file.delivery),
    ] {
        if let Some(value) = value {
            table.insert(key.to_string(), value.clone());
        }
    }
    let parsed: crate::react::ReactConfig =
        toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Reactions {
                message: e.message().to_string(),
            })?;
    let with_env = parsed
        .with_env(env)
        .map_err(|message| ConfigError::Reactions { message })?;
    with_env
        .validate()
        .map_err(|message| ConfigError::Reactions { message })?;
    Ok(with_env)
}

/// Credentials generated for the embedded defaults (printed once, never logged).
#[derive(Default)]
pub struct DevCredentials {
    pub webhook_secret: Option<String>,
    pub api_token: Option<String>,
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',').map(|s| s.trim().to_string()).collect()
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
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(value.as_bytes())?;
    file.sync_all()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env = move |k: &str| map.get(k).cloned();
        Config::load(&Sources {
            file: None,
            env: &env,
        })
    }

    #[test]
    fn defaults_are_dev_mode_on_sqlite() {
        let c = load(&[]).unwrap();
        assert!(c.dev_mode);
        assert_eq!(c.listen.to_string(), "127.0.0.1:4242");
        assert_eq!(c.webhook_path, "/webhook");
        assert!(c.database_url.starts_with("sqlite://"));
        assert_eq!(c.tolerance_secs, 300);
    }

    #[test]
    fn secrets_are_a_comma_separated_list() {
        let c = load(&[
            ("STRIPE_WEBHOOK_SECRET", "whsec_a, whsec_b"),
            ("IDVERDICT_API_TOKEN", "0123456789abcdef"),
        ])
        .unwrap();
        assert_eq!(c.webhook_secrets, vec!["whsec_a", "whsec_b"]);
        assert!(!c.dev_mode);
    }

    #[test]
    fn errors_name_the_setting() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("IDVERDICT_LISTEN", "nope")], "IDVERDICT_LISTEN"),
            (
                &[("IDVERDICT_WEBHOOK_TOLERANCE_SECS", "-1")],
                "IDVERDICT_WEBHOOK_TOLERANCE_SECS",
            ),
            (
                &[("STRIPE_WEBHOOK_SECRET", "sk_test_x")],
                "STRIPE_WEBHOOK_SECRET",
            ),
            (&[("DATABASE_URL", "mysql://x")], "DATABASE_URL"),
            (&[("IDVERDICT_LOG_FORMAT", "xml")], "IDVERDICT_LOG_FORMAT"),
            (&[("IDVERDICT_API_TOKEN", "short")], "IDVERDICT_API_TOKEN"),
            (
                &[("IDVERDICT_API_TOKEN", "0123456789abcdef")],
                "STRIPE_WEBHOOK_SECRET",
            ),
            (
                &[("IDVERDICT_BODY_LIMIT_BYTES", "10")],
                "IDVERDICT_BODY_LIMIT_BYTES",
            ),
        ];
        for (vars, named) in cases {
            let err = load(vars)
                .err()
                .unwrap_or_else(|| panic!("{vars:?} should fail"))
                .to_string();
            assert!(err.contains(named), "{err} should name {named}");
        }
    }

    #[test]
    fn file_layer_is_overridden_by_env_and_rejects_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:5000\"\nwebhook_secrets = [\"whsec_file\"]\napi_token = \"0123456789abcdef0\"\n").unwrap();
        let env = |k: &str| (k == "IDVERDICT_LISTEN").then(|| "127.0.0.1:6000".to_string());
        let c = Config::load(&Sources {
            file: Some(&path),
            env: &env,
        })
        .unwrap();
        assert_eq!(c.listen.port(), 6000);
        assert_eq!(c.webhook_secrets, vec!["whsec_file"]);

        std::fs::write(&path, "listn = \"x\"\n").unwrap();
        let err = Config::load(&Sources {
            file: Some(&path),
            env: &|_| None,
        })
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("listn"), "{err}");
    }

    #[test]
    fn debug_does_not_print_credentials() {
        let c = load(&[
            ("STRIPE_WEBHOOK_SECRET", "whsec_supersecret"),
            ("IDVERDICT_API_TOKEN", "token-token-token-1"),
        ])
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("supersecret") && !shown.contains("token-token"));
    }
}
