//! The loader end to end: defaults, file, environment, errors, secrets.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::ExposeSecret;

use super::settings::{self, Kind, SETTINGS};
use super::*;

const SECRET: &str = "whsec_test_secret";
const TOKEN: &str = "0123456789abcdef";
const CALLBACK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k: &str| map.get(k).cloned()
}

fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::load(&Sources {
        file: None,
        env: &env_of(vars),
    })
}

fn load_file(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idverdict.toml");
    std::fs::write(&path, text).unwrap();
    Config::load(&Sources {
        file: Some(&path),
        env: &env_of(vars),
    })
}

fn error(vars: &[(&str, &str)]) -> String {
    load(vars)
        .err()
        .unwrap_or_else(|| panic!("{vars:?} should fail"))
        .to_string()
}

/// Every channel on, so that each setting below can change on its own and still validate.
fn everything_on() -> Vec<(&'static str, String)> {
    vec![
        ("STRIPE_WEBHOOK_SECRET", SECRET.into()),
        ("IDVERDICT_API_TOKEN", TOKEN.into()),
        ("IDVERDICT_CALLBACK_URLS", "https://app.test/cb".into()),
        ("IDVERDICT_CALLBACK_SECRETS", CALLBACK_SECRET.into()),
        ("IDVERDICT_SMTP_HOST", "smtp.test".into()),
        ("IDVERDICT_SMTP_FROM", "Acme <no-reply@acme.test>".into()),
        ("IDVERDICT_SMTP_USERNAME", "acme".into()),
        ("IDVERDICT_SMTP_PASSWORD", "smtp-password".into()),
        ("IDVERDICT_NATS_URL", "nats://127.0.0.1:4222".into()),
        ("STRIPE_API_KEY", "sk_test_base".into()),
    ]
}

fn with(base: &[(&'static str, String)], var: &str, value: Option<&str>) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = base
        .iter()
        .filter(|(k, _)| *k != var)
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    if let Some(value) = value {
        vars.push((var.to_string(), value.to_string()));
    }
    vars
}

fn load_owned(file: Option<&str>, vars: &[(String, String)]) -> Result<Config, ConfigError> {
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    match file {
        Some(text) => load_file(text, &pairs),
        None => load(&pairs),
    }
}

/// How a setting's value is written in the file: numbers bare, everything else as a string
/// (which every kind accepts).
fn toml_line(setting: &Setting, value: &str) -> String {
    let key = setting.key.unwrap();
    match setting.kind {
        Kind::Number | Kind::Port => format!("{key} = {value}\n"),
        _ => format!("{key} = {}\n", toml::Value::String(value.to_string())),
    }
}

type Check = fn(&Config) -> bool;

/// A value for every variable, different from its default, and how to see it took effect.
fn samples(templates: &str) -> Vec<(&'static str, String, Check)> {
    let s = |v: &str| v.to_string();
    vec![
        ("IDVERDICT_LISTEN", s("127.0.0.1:5001"), |c| {
            c.listen.port() == 5001
        }),
        ("IDVERDICT_WEBHOOK_PATH", s("/hooks/stripe"), |c| {
            c.webhook_path == "/hooks/stripe"
        }),
        ("STRIPE_WEBHOOK_SECRET", s("whsec_one, whsec_two"), |c| {
            let s: Vec<&str> = c
                .webhook_secrets
                .iter()
                .map(|s| s.expose_secret())
                .collect();
            s == ["whsec_one", "whsec_two"]
        }),
        ("IDVERDICT_WEBHOOK_TOLERANCE_SECS", s("2m"), |c| {
            c.tolerance_secs == 120
        }),
        ("IDVERDICT_WEBHOOK_FUTURE_SKEW_SECS", s("60"), |c| {
            c.future_skew_secs == 60
        }),
        ("IDVERDICT_BODY_LIMIT_BYTES", s("65536"), |c| {
            c.body_limit_bytes == 65536
        }),
        ("IDVERDICT_REQUEST_TIMEOUT_SECS", s("1m"), |c| {
            c.request_timeout_secs == 60
        }),
        ("IDVERDICT_HEADER_READ_TIMEOUT_SECS", s("3"), |c| {
            c.header_read_timeout_secs == 3
        }),
        ("IDVERDICT_KEEPALIVE_TIMEOUT_SECS", s("2m"), |c| {
            c.keepalive_timeout_secs == 120
        }),
        ("IDVERDICT_MAX_CONNECTIONS", s("500"), |c| {
            c.max_connections == Some(500)
        }),
        ("IDVERDICT_API_TOKEN", s("another-token-0123456789"), |c| {
            c.api_token.as_ref().unwrap().expose_secret() == "another-token-0123456789"
        }),
        (
            "IDVERDICT_EXPECTATIONS_KEY",
            s("another-expectations-key-0123456789abcdef"),
            |c| {
                c.expectations_key.as_ref().is_some_and(|k| {
                    k.expose_secret() == "another-expectations-key-0123456789abcdef"
                })
            },
        ),
        ("DATABASE_URL", s("postgres://u:pw@127.0.0.1/idv"), |c| {
            c.database_url == "postgres://u:pw@127.0.0.1/idv"
        }),
        ("IDVERDICT_DATA_DIR", s("/tmp/idv-data"), |c| {
            c.data_dir == Path::new("/tmp/idv-data")
                && c.database_url == "sqlite:///tmp/idv-data/idverdict.db"
        }),
        ("IDVERDICT_LOG_FORMAT", s("json"), |c| {
            c.log_format == LogFormat::Json
        }),
        ("IDVERDICT_INSTANCE_ID", s("idv-a.1"), |c| {
            c.instance_id.as_deref() == Some("idv-a.1")
        }),
        ("IDVERDICT_POLL_INTERVAL", s("5s"), |c| {
            c.poll_interval == Duration::from_secs(5)
        }),
        ("IDVERDICT_EMULATOR_LISTEN", s("127.0.0.1:12999"), |c| {
            c.emulator_listen.as_deref() == Some("127.0.0.1:12999")
        }),
        ("IDVERDICT_NO_EMULATOR", s("yes"), |c| c.no_emulator),
        ("STRIPE_API_KEY", s("rk_live_other"), |c| {
            c.stripe.as_ref().unwrap().api_key.expose() == "rk_live_other"
        }),
        ("STRIPE_API_BASE", s("http://127.0.0.1:12111/"), |c| {
            c.stripe.as_ref().unwrap().api_base == "http://127.0.0.1:12111"
        }),
        ("IDVERDICT_RECONCILE", s("off"), |c| {
            !c.stripe.as_ref().unwrap().reconcile_in_serve
        }),
        ("IDVERDICT_RECONCILE_INTERVAL_SECS", s("90"), |c| {
            c.stripe.as_ref().unwrap().reconcile_interval == Duration::from_secs(90)
        }),
        ("IDVERDICT_RECONCILE_SINCE_SECS", s("7d"), |c| {
            c.stripe.as_ref().unwrap().reconcile_since == Duration::from_secs(7 * 86400)
        }),
        (
            "IDVERDICT_CALLBACK_URLS",
            s("https://a.test/cb, https://b.test/cb"),
            |c| c.reactions.callbacks.urls == ["https://a.test/cb", "https://b.test/cb"],
        ),
        (
            "IDVERDICT_CALLBACK_SECRETS",
            s(&format!(
                "{CALLBACK_SECRET},whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSx"
            )),
            |c| {
                c.reactions.callbacks.secrets.len() == 2
                    && c.reactions.callbacks.secrets[1]
                        .expose_secret()
                        .ends_with("LaSx")
            },
        ),
        ("IDVERDICT_CALLBACK_TIMEOUT_SECS", s("5"), |c| {
            c.reactions.callbacks.timeout_secs == 5
        }),
        ("IDVERDICT_CALLBACK_PAUSE_AFTER", s("12h"), |c| {
            c.reactions.callbacks.pause_after == Duration::from_secs(12 * 3600)
        }),
        ("IDVERDICT_SMTP_HOST", s("mail.test"), |c| {
            email(c).host == "mail.test"
        }),
        ("IDVERDICT_SMTP_PORT", s("2525"), |c| {
            email(c).port() == 2525
        }),
        ("IDVERDICT_SMTP_TLS", s("tls"), |c| {
            email(c).tls == TlsMode::Tls && email(c).port() == 465
        }),
        ("IDVERDICT_SMTP_USERNAME", s("other-user"), |c| {
            email(c).username.as_deref() == Some("other-user")
        }),
        ("IDVERDICT_SMTP_PASSWORD", s("other-password"), |c| {
            email(c).password.as_ref().unwrap().expose_secret() == "other-password"
        }),
        ("IDVERDICT_SMTP_FROM", s("id@acme.test"), |c| {
            email(c).from == "id@acme.test"
        }),
        ("IDVERDICT_EMAIL_TEMPLATES_DIR", s(templates), |c| {
            email(c).templates_dir.is_some()
        }),
        ("IDVERDICT_EMAIL_METADATA_KEY", s("contact"), |c| {
            email(c).email_metadata_key.as_deref() == Some("contact")
        }),
        (
            "IDVERDICT_EMAIL_RESUME_URL",
            s("https://app.test/verify?user={user}"),
            |c| email(c).resume_url.as_deref() == Some("https://app.test/verify?user={user}"),
        ),
        ("IDVERDICT_EMAIL_LOCALE_METADATA_KEY", s("locale"), |c| {
            email(c).locale_metadata_key.as_deref() == Some("locale")
        }),
        ("IDVERDICT_SMTP_TIMEOUT_SECS", s("45s"), |c| {
            email(c).timeout_secs == 45
        }),
        ("IDVERDICT_NATS_URL", s("tls://bus.test:4222"), |c| {
            c.reactions.nats.as_ref().unwrap().url == "tls://bus.test:4222"
        }),
        ("IDVERDICT_NATS_SUBJECT_PREFIX", s("acme.idv"), |c| {
            c.reactions.nats.as_ref().unwrap().subject_prefix == "acme.idv"
        }),
        ("IDVERDICT_NATS_MODE", s("core"), |c| {
            c.reactions.nats.as_ref().unwrap().mode == reactions::NatsMode::Core
        }),
        ("IDVERDICT_NATS_STREAM", s("IDV_DECISIONS"), |c| {
            c.reactions.nats.as_ref().unwrap().stream.as_deref() == Some("IDV_DECISIONS")
        }),
        ("IDVERDICT_NATS_DUPLICATE_WINDOW", s("10m"), |c| {
            c.reactions.nats.as_ref().unwrap().duplicate_window == Duration::from_secs(600)
        }),
        ("IDVERDICT_RETRY_SCHEDULE", s("1s, 2m"), |c| {
            c.reactions.delivery.schedule == ["1s", "2m"]
        }),
        ("IDVERDICT_ALLOW_PRIVATE_TARGETS", s("on"), |c| {
            c.reactions.delivery.allow_private_targets
        }),
        ("IDVERDICT_DELIVERY_WORKERS", s("4"), |c| {
            c.reactions.delivery.workers == 4
        }),
        ("IDVERDICT_MAX_ATTEMPTS", s("5"), |c| {
            c.policy.max_attempts == 5
        }),
        ("IDVERDICT_RETENTION_PAYLOAD_DAYS", s("7"), |c| {
            c.retention.payload == Duration::from_secs(7 * 86400)
        }),
        ("IDVERDICT_RETENTION_EVENT_DAYS", s("40"), |c| {
            c.retention.events == Duration::from_secs(40 * 86400)
        }),
        ("IDVERDICT_CONSOLE", s("off"), |c| !c.console.enabled),
        ("IDVERDICT_CONSOLE_SESSION_IDLE_SECS", s("10m"), |c| {
            c.console.session_idle == Duration::from_secs(600)
        }),
        ("IDVERDICT_CONSOLE_SESSION_MAX_SECS", s("1d"), |c| {
            c.console.session_max == Duration::from_secs(86400)
        }),
        ("IDVERDICT_CONSOLE_LOGIN_SLOW_AFTER", s("1"), |c| {
            c.console.login_slow_after == 1
        }),
        ("IDVERDICT_CONSOLE_LOGIN_LOCK_AFTER", s("5"), |c| {
            c.console.login_lock_after == 5
        }),
        ("IDVERDICT_CONSOLE_LOGIN_LOCK_SECS", s("1h"), |c| {
            c.console.login_lock == Duration::from_secs(3600)
        }),
        ("IDVERDICT_CONSOLE_CLAIM_SECS", s("5m"), |c| {
            c.console.claim == Duration::from_secs(300)
        }),
        (
            "IDVERDICT_CONSOLE_REVIEW_REASONS",
            s("looks fine, looks fake"),
            |c| c.console.review_reasons == ["looks fine", "looks fake"],
        ),
        (
            "IDVERDICT_CONSOLE_TRUSTED_PROXIES",
            s("10.0.0.1, ::1"),
            |c| c.console.trusted_proxies.len() == 2,
        ),
        ("IDVERDICT_CONSOLE_IMAGES", s("no"), |c| !c.console.images),
    ]
}

fn email(c: &Config) -> &EmailConfig {
    c.reactions.email.as_ref().unwrap()
}

#[test]
fn every_variable_overrides_and_every_key_means_the_same_in_the_file() {
    let templates = tempfile::tempdir().unwrap();
    let samples = samples(templates.path().to_str().unwrap());
    for setting in SETTINGS {
        let Some(var) = setting.env else { continue };
        if var == settings::CONFIG_FILE_VAR {
            continue; // below
        }
        assert!(
            samples.iter().any(|(v, _, _)| *v == var),
            "{var} has no sample in this test"
        );
    }
    let base = everything_on();
    let baseline = load_owned(None, &with(&base, "", None)).expect("baseline");
    for (var, value, took_effect) in &samples {
        let setting = SETTINGS
            .iter()
            .find(|s| s.env == Some(var))
            .unwrap_or_else(|| panic!("{var} is not in the settings list"));
        assert!(
            !took_effect(&baseline),
            "{var}: the sample must differ from the baseline"
        );
        let from_env = load_owned(None, &with(&base, var, Some(value)))
            .unwrap_or_else(|e| panic!("{var}={value}: {e}"));
        assert!(took_effect(&from_env), "{var}={value} had no effect");
        if setting.key.is_some() {
            let line = toml_line(setting, value);
            let from_file = load_owned(Some(&line), &with(&base, var, None))
                .unwrap_or_else(|e| panic!("{line}: {e}"));
            assert!(took_effect(&from_file), "{line} had no effect");
            // The environment wins over the file.
            let both = load_owned(Some(&line), &with(&base, var, Some(value))).unwrap();
            assert!(took_effect(&both));
        }
    }
}

#[test]
fn documented_defaults_are_the_defaults() {
    let base = everything_on();
    let baseline = format!("{:?}", load_owned(None, &with(&base, "", None)).unwrap());
    for setting in SETTINGS {
        let settings::DefaultValue::Is(value) = setting.default else {
            continue;
        };
        let config = match (setting.key, setting.env) {
            (Some(_), var) => load_owned(
                Some(&toml_line(setting, value)),
                &with(&base, var.unwrap_or(""), None),
            ),
            (None, Some(var)) => load_owned(None, &with(&base, var, Some(value))),
            (None, None) => unreachable!(),
        }
        .unwrap_or_else(|e| panic!("{}: {e}", setting.name()));
        assert_eq!(
            format!("{config:?}"),
            baseline,
            "{} is documented with default `{value}`",
            setting.name()
        );
    }
}

#[test]
fn the_list_is_consistent() {
    let mut keys = std::collections::HashSet::new();
    let mut vars = std::collections::HashSet::new();
    for s in SETTINGS {
        assert!(s.key.is_some() || s.env.is_some());
        if let Some(k) = s.key {
            assert!(keys.insert(k), "{k} listed twice");
            assert_eq!(settings::find(k).map(|f| f.key), Some(s.key));
        }
        if let Some(v) = s.env {
            assert!(vars.insert(v), "{v} listed twice");
        }
        assert!(!s.about.is_empty());
        if s.kind == Kind::Table {
            assert!(s.env.is_none());
        }
    }
    assert_eq!(
        settings::find("callbacks.urls[3]").and_then(|s| s.env),
        Some("IDVERDICT_CALLBACK_URLS")
    );
    assert_eq!(
        settings::find("policy.codes.abandoned.next_step").and_then(|s| s.key),
        Some("policy.codes")
    );
    assert!(settings::find("listen_x").is_none());
    assert!(SETTINGS
        .iter()
        .any(|s| s.env == Some(settings::CONFIG_FILE_VAR) && s.key.is_none()));
}

#[test]
fn choices_are_exactly_the_accepted_words() {
    let base = everything_on();
    for setting in SETTINGS {
        let (Kind::Choice(words), Some(_)) = (setting.kind, setting.key) else {
            continue;
        };
        let vars = with(&base, setting.env.unwrap_or(""), None);
        for word in words.iter().copied().chain(["nonsense"]) {
            let loaded = load_owned(Some(&toml_line(setting, word)), &vars);
            assert_eq!(
                loaded.is_ok(),
                word != "nonsense",
                "{} = {word}",
                setting.name()
            );
        }
    }
}

#[test]
fn defaults_are_dev_mode_on_sqlite() {
    let c = load(&[]).unwrap();
    assert!(c.dev_mode);
    assert_eq!(c.listen.to_string(), "127.0.0.1:4242");
    assert_eq!(c.webhook_path, "/webhook");
    assert_eq!(c.database_url, "sqlite://.idverdict/idverdict.db");
    assert_eq!(c.tolerance_secs, 300);
    assert!(c.stripe.is_none() && c.reactions.email.is_none() && c.reactions.nats.is_none());
    assert!(!c.reactions.any_channel());
}

#[test]
fn secrets_are_a_comma_separated_list() {
    let c = load(&[
        ("STRIPE_WEBHOOK_SECRET", "whsec_a, whsec_b"),
        ("IDVERDICT_API_TOKEN", TOKEN),
    ])
    .unwrap();
    let shown: Vec<&str> = c
        .webhook_secrets
        .iter()
        .map(|s| s.expose_secret())
        .collect();
    assert_eq!(shown, ["whsec_a", "whsec_b"]);
    assert!(!c.dev_mode);
    let c = load_file(
        "webhook_secrets = [\"whsec_a\", \"whsec_b\"]\napi_token = \"0123456789abcdef\"\n",
        &[],
    )
    .unwrap();
    assert_eq!(c.webhook_secrets.len(), 2);
}

#[test]
fn legacy_seconds_variables_still_take_plain_numbers() {
    let c = load(&[
        ("STRIPE_WEBHOOK_SECRET", SECRET),
        ("IDVERDICT_API_TOKEN", TOKEN),
        ("IDVERDICT_WEBHOOK_TOLERANCE_SECS", "0"),
        ("IDVERDICT_CALLBACK_TIMEOUT_SECS", "30"),
        ("STRIPE_API_KEY", "sk_test_abc"),
        ("IDVERDICT_RECONCILE_INTERVAL_SECS", "1"),
        ("IDVERDICT_RECONCILE_SINCE_SECS", "3600"),
    ])
    .unwrap();
    assert_eq!(c.tolerance_secs, 0, "0 is a valid tolerance");
    assert_eq!(c.reactions.callbacks.timeout_secs, 30);
    let stripe = c.stripe.unwrap();
    assert_eq!(stripe.reconcile_interval, Duration::from_secs(1));
    assert_eq!(stripe.reconcile_since, Duration::from_secs(3600));
    assert!(stripe.reconcile_in_serve);
    assert_eq!(stripe.api_base, crate::stripe_api::DEFAULT_API_BASE);
}

#[test]
fn one_boolean_parser_for_every_switch() {
    let base = [
        ("STRIPE_WEBHOOK_SECRET", SECRET),
        ("IDVERDICT_API_TOKEN", TOKEN),
    ];
    for (text, expected) in [
        ("off", false),
        ("FALSE", false),
        ("0", false),
        ("on", true),
        ("yes", true),
    ] {
        let mut vars = base.to_vec();
        vars.extend([
            ("STRIPE_API_KEY", "sk_test_abc"),
            ("IDVERDICT_RECONCILE", text),
            ("IDVERDICT_ALLOW_PRIVATE_TARGETS", text),
            ("IDVERDICT_NO_EMULATOR", text),
        ]);
        let c = load(&vars).unwrap();
        assert_eq!(c.stripe.unwrap().reconcile_in_serve, expected, "{text}");
        assert_eq!(
            c.reactions.delivery.allow_private_targets, expected,
            "{text}"
        );
        assert_eq!(c.no_emulator, expected, "{text}");
    }
}

#[test]
fn errors_name_the_key_and_the_variable() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("IDVERDICT_LISTEN", "nope")],
            "`listen` (IDVERDICT_LISTEN)",
        ),
        (
            &[("IDVERDICT_WEBHOOK_TOLERANCE_SECS", "-1")],
            "`tolerance_secs` (IDVERDICT_WEBHOOK_TOLERANCE_SECS)",
        ),
        (
            &[("STRIPE_WEBHOOK_SECRET", "sk_test_x")],
            "`webhook_secrets` (STRIPE_WEBHOOK_SECRET)",
        ),
        (
            &[("DATABASE_URL", "mysql://x")],
            "`database_url` (DATABASE_URL)",
        ),
        (
            &[("IDVERDICT_LOG_FORMAT", "xml")],
            "`log_format` (IDVERDICT_LOG_FORMAT)",
        ),
        (
            &[("IDVERDICT_API_TOKEN", "short")],
            "`api_token` (IDVERDICT_API_TOKEN)",
        ),
        (
            &[("IDVERDICT_EXPECTATIONS_KEY", "too-short")],
            "`expectations_key` (IDVERDICT_EXPECTATIONS_KEY)",
        ),
        (
            &[
                ("IDVERDICT_SMTP_HOST", "mail.test"),
                ("IDVERDICT_SMTP_FROM", "a@b.test"),
                ("IDVERDICT_EMAIL_RESUME_URL", "https://app.test/{token}"),
            ],
            "`email.resume_url` (IDVERDICT_EMAIL_RESUME_URL)",
        ),
        (
            &[
                ("IDVERDICT_API_TOKEN", TOKEN),
                ("STRIPE_WEBHOOK_SECRET", ""),
            ],
            "`webhook_secrets` (STRIPE_WEBHOOK_SECRET)",
        ),
        (
            &[("IDVERDICT_INSTANCE_ID", "two words")],
            "`instance_id` (IDVERDICT_INSTANCE_ID)",
        ),
        (
            &[("IDVERDICT_POLL_INTERVAL", "2h")],
            "`poll_interval` (IDVERDICT_POLL_INTERVAL)",
        ),
        (
            &[
                ("IDVERDICT_NATS_URL", "nats://127.0.0.1:4222"),
                ("IDVERDICT_NATS_STREAM", "a.b"),
            ],
            "`nats.stream` (IDVERDICT_NATS_STREAM)",
        ),
        (
            &[
                ("IDVERDICT_NATS_URL", "nats://127.0.0.1:4222"),
                ("IDVERDICT_NATS_MODE", "core"),
                ("IDVERDICT_NATS_STREAM", "IDV"),
            ],
            "`nats.stream` (IDVERDICT_NATS_STREAM)",
        ),
        (
            &[
                ("IDVERDICT_NATS_URL", "nats://127.0.0.1:4222"),
                ("IDVERDICT_NATS_MODE", "durable"),
            ],
            "`nats.mode` (IDVERDICT_NATS_MODE)",
        ),
        (
            &[("IDVERDICT_BODY_LIMIT_BYTES", "10")],
            "`body_limit_bytes` (IDVERDICT_BODY_LIMIT_BYTES)",
        ),
        (
            &[("IDVERDICT_REQUEST_TIMEOUT_SECS", "0")],
            "`request_timeout_secs` (IDVERDICT_REQUEST_TIMEOUT_SECS)",
        ),
        (
            &[("IDVERDICT_HEADER_READ_TIMEOUT_SECS", "0")],
            "`header_read_timeout_secs` (IDVERDICT_HEADER_READ_TIMEOUT_SECS)",
        ),
        (
            &[("IDVERDICT_KEEPALIVE_TIMEOUT_SECS", "0")],
            "`keepalive_timeout_secs` (IDVERDICT_KEEPALIVE_TIMEOUT_SECS)",
        ),
        (
            &[("IDVERDICT_MAX_CONNECTIONS", "0")],
            "`max_connections` (IDVERDICT_MAX_CONNECTIONS)",
        ),
        (
            &[("IDVERDICT_NO_EMULATOR", "perhaps")],
            "IDVERDICT_NO_EMULATOR",
        ),
        (
            &[("IDVERDICT_SMTP_PORT", "70000")],
            "`email.port` (IDVERDICT_SMTP_PORT)",
        ),
        (
            &[("IDVERDICT_SMTP_TLS", "ssl")],
            "`email.tls` (IDVERDICT_SMTP_TLS)",
        ),
        (
            &[("IDVERDICT_SMTP_FROM", "x@y.test")],
            "`email.host` (IDVERDICT_SMTP_HOST)",
        ),
        (
            &[("IDVERDICT_ALLOW_PRIVATE_TARGETS", "maybe")],
            "`delivery.allow_private_targets` (IDVERDICT_ALLOW_PRIVATE_TARGETS)",
        ),
        (
            &[("IDVERDICT_RETRY_SCHEDULE", "5s,5x")],
            "`delivery.schedule` (IDVERDICT_RETRY_SCHEDULE)",
        ),
        (
            &[("IDVERDICT_DELIVERY_WORKERS", "0")],
            "`delivery.workers` (IDVERDICT_DELIVERY_WORKERS)",
        ),
        (
            &[("IDVERDICT_CALLBACK_URLS", "https://app.test/cb")],
            "`callbacks.secrets` (IDVERDICT_CALLBACK_SECRETS)",
        ),
        (
            &[
                ("IDVERDICT_CALLBACK_URLS", "ftp://x"),
                ("IDVERDICT_CALLBACK_SECRETS", CALLBACK_SECRET),
            ],
            "`callbacks.urls[0]` (IDVERDICT_CALLBACK_URLS)",
        ),
        (
            &[("IDVERDICT_NATS_URL", "http://x")],
            "`nats.url` (IDVERDICT_NATS_URL)",
        ),
        (
            &[("IDVERDICT_MAX_ATTEMPTS", "0")],
            "`policy.max_attempts` (IDVERDICT_MAX_ATTEMPTS)",
        ),
        (
            &[("IDVERDICT_MAX_ATTEMPTS", "many")],
            "`policy.max_attempts` (IDVERDICT_MAX_ATTEMPTS)",
        ),
        (
            &[("IDVERDICT_RECONCILE", "sometimes")],
            "`stripe.reconcile` (IDVERDICT_RECONCILE)",
        ),
        (
            &[
                ("STRIPE_API_KEY", "sk_test_a"),
                ("IDVERDICT_RECONCILE_INTERVAL_SECS", "0"),
            ],
            "`stripe.reconcile_interval_secs` (IDVERDICT_RECONCILE_INTERVAL_SECS)",
        ),
        (
            &[
                ("STRIPE_API_KEY", "sk_test_a"),
                ("IDVERDICT_RECONCILE_SINCE_SECS", "x"),
            ],
            "`stripe.reconcile_since_secs` (IDVERDICT_RECONCILE_SINCE_SECS)",
        ),
        (
            &[("STRIPE_API_BASE", "http://x")],
            "`stripe.api_key` (STRIPE_API_KEY)",
        ),
        (
            &[
                ("STRIPE_API_KEY", "sk_test_a"),
                ("STRIPE_API_BASE", "ftp://x"),
            ],
            "`stripe.api_base` (STRIPE_API_BASE)",
        ),
        (
            &[("STRIPE_API_KEY", "pk_test_secretvalue")],
            "`stripe.api_key` (STRIPE_API_KEY)",
        ),
    ];
    for (vars, named) in cases {
        let mut all = vec![
            ("STRIPE_WEBHOOK_SECRET", SECRET),
            ("IDVERDICT_API_TOKEN", TOKEN),
        ];
        all.retain(|(k, _)| !vars.iter().any(|(v, _)| v == k));
        all.extend(vars.iter().copied());
        let err = error(&all);
        assert!(err.contains(named), "{err} should name {named}");
        assert!(!err.contains("secretvalue"), "{err} shows the key");
    }
}

#[test]
fn file_errors_have_line_column_key_and_variable() {
    let err = load_file("listen = \"127.0.0.1:1\"\nlistn = \"x\"\n", &[])
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("listn") && err.contains("line 2"), "{err}");

    let err = load_file("[email]\nhost = \"smtp.test\"\nport = \"x\"\n", &[])
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("`email.port` (IDVERDICT_SMTP_PORT)"), "{err}");
    assert!(err.contains("line 3, column 8"), "{err}");

    let err = load_file("[delivery]\nallow_private_targets = \"maybe\"\n", &[])
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("`delivery.allow_private_targets` (IDVERDICT_ALLOW_PRIVATE_TARGETS)")
            && err.contains("line 2"),
        "{err}"
    );

    let err = load_file("[policy]\nmax_atempts = 2\n", &[])
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("max_atempts") && err.contains("line 2"),
        "{err}"
    );

    let err = load_file(
        "[policy.codes.document_expired]\nnext_step = \"pray\"\n",
        &[],
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("`policy.codes.document_expired.next_step`"),
        "{err}"
    );

    let err = load_file("listen = [\n", &[]).err().unwrap().to_string();
    assert!(err.contains("line 1"), "{err}");
}

#[test]
fn a_blank_or_spaced_api_token_is_refused() {
    for token in [
        "                    ",
        "0123456789 abcdef",
        "\t0123456789abcdef0",
        "0123456789abcdef\u{7}",
    ] {
        let text = format!(
            "webhook_secrets = [\"{SECRET}\"]\napi_token = {}\n",
            toml::Value::String(token.into())
        );
        let err = load_file(&text, &[]).err().map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(
                |e| e.contains("`api_token` (IDVERDICT_API_TOKEN)") && e.contains("blank")
            ),
            "{token:?}: {err:?}"
        );
    }
    // Sixteen characters, not sixteen bytes.
    assert!(load(&[
        ("STRIPE_WEBHOOK_SECRET", SECRET),
        ("IDVERDICT_API_TOKEN", "ééééééééé")
    ])
    .is_err());
    assert!(load(&[
        ("STRIPE_WEBHOOK_SECRET", SECRET),
        ("IDVERDICT_API_TOKEN", "éééééééééééééééé")
    ])
    .is_ok());
}

#[test]
fn precedence_is_env_then_file_then_default() {
    let file = "listen = \"127.0.0.1:5000\"\nwebhook_path = \"/from-file\"\nwebhook_secrets = [\"whsec_file\"]\napi_token = \"0123456789abcdef0\"\n[policy]\nmax_attempts = 4\n[delivery]\nworkers = 8\n";
    let c = load_file(
        file,
        &[
            ("IDVERDICT_LISTEN", "127.0.0.1:6000"),
            ("IDVERDICT_MAX_ATTEMPTS", "7"),
        ],
    )
    .unwrap();
    assert_eq!(c.listen.port(), 6000, "env over file");
    assert_eq!(c.webhook_path, "/from-file", "file over default");
    assert_eq!(c.webhook_secrets[0].expose_secret(), "whsec_file");
    assert_eq!(c.policy.max_attempts, 7, "env over the [policy] table");
    assert_eq!(c.reactions.delivery.workers, 8);
    assert_eq!(c.request_timeout_secs, 10, "default");
    // An empty variable is unset, not empty.
    let c = load_file(file, &[("IDVERDICT_LISTEN", "")]).unwrap();
    assert_eq!(c.listen.port(), 5000);
}

#[test]
fn the_file_can_come_from_idverdict_config() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.toml");
    let b = dir.path().join("b.toml");
    std::fs::write(&a, "listen = \"127.0.0.1:5101\"\n").unwrap();
    std::fs::write(&b, "listen = \"127.0.0.1:5102\"\n").unwrap();
    let env = env_of(&[("IDVERDICT_CONFIG", a.to_str().unwrap())]);
    let c = Config::load(&Sources {
        file: None,
        env: &env,
    })
    .unwrap();
    assert_eq!(c.listen.port(), 5101);
    // `--config` (the file given by the caller) wins over the variable.
    let c = Config::load(&Sources {
        file: Some(&b),
        env: &env,
    })
    .unwrap();
    assert_eq!(c.listen.port(), 5102);
    let env = env_of(&[("IDVERDICT_CONFIG", "/nonexistent/idverdict.toml")]);
    let err = Config::load(&Sources {
        file: None,
        env: &env,
    })
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("/nonexistent/idverdict.toml"), "{err}");
}

#[test]
fn the_stripe_table_in_the_file() {
    let c = load_file(
        "webhook_secrets = \"whsec_a\"\napi_token = \"0123456789abcdef\"\n[stripe]\napi_key = \"sk_test_file\"\napi_base = \"http://127.0.0.1:12111\"\nreconcile = false\nreconcile_interval_secs = \"10m\"\n",
        &[],
    )
    .unwrap();
    let s = c.stripe.unwrap();
    assert_eq!(s.api_key.expose(), "sk_test_file");
    assert_eq!(s.api_base, "http://127.0.0.1:12111");
    assert!(!s.reconcile_in_serve);
    assert_eq!(s.reconcile_interval, Duration::from_secs(600));
    // Without a key the table configures nothing (and a base alone is a mistake).
    assert!(load_file("[stripe]\nreconcile = false\n", &[])
        .unwrap()
        .stripe
        .is_none());
    assert!(load_file("[stripe]\napi_base = \"http://x.test\"\n", &[]).is_err());
}

#[test]
fn email_variables_turn_email_on() {
    let c = load(&[
        ("IDVERDICT_SMTP_HOST", "smtp.test"),
        ("IDVERDICT_SMTP_TLS", "tls"),
        ("IDVERDICT_SMTP_FROM", "Acme <no-reply@acme.test>"),
    ])
    .unwrap();
    let email = c.reactions.email.as_ref().unwrap();
    assert_eq!(email.port(), 465);
    assert_eq!(email.timeout_secs, 30);
    assert!(c.reactions.nats.is_none());
    let c = load(&[("IDVERDICT_NATS_URL", "nats://127.0.0.1:4222")]).unwrap();
    assert_eq!(c.reactions.nats.unwrap().subject_prefix, "idverdict");
}

#[test]
fn debug_never_shows_a_secret() {
    let c = load(&[
        ("STRIPE_WEBHOOK_SECRET", "whsec_supersecret"),
        ("IDVERDICT_API_TOKEN", "token-token-token-1"),
        ("DATABASE_URL", "postgres://idv:dbpassword@127.0.0.1/idv"),
        ("IDVERDICT_CALLBACK_URLS", "https://app.test/cb"),
        ("IDVERDICT_CALLBACK_SECRETS", CALLBACK_SECRET),
        ("IDVERDICT_SMTP_HOST", "smtp.test"),
        ("IDVERDICT_SMTP_FROM", "id@acme.test"),
        ("IDVERDICT_SMTP_USERNAME", "smtp-login"),
        ("IDVERDICT_SMTP_PASSWORD", "smtp-password"),
        (
            "IDVERDICT_NATS_URL",
            "nats://bus:natspassword@127.0.0.1:4222",
        ),
        ("STRIPE_API_KEY", "sk_test_stripekey"),
    ])
    .unwrap();
    let shown = format!("{c:?} {:#?}", c);
    for secret in [
        "supersecret",
        "token-token",
        "dbpassword",
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "smtp-login",
        "smtp-password",
        "natspassword",
        "stripekey",
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(
        shown.contains("sk_test_****"),
        "the key's mode stays visible: {shown}"
    );
    assert!(
        shown.contains("https://app.test/cb"),
        "non-secrets are shown: {shown}"
    );
}

#[test]
fn dev_mode_generates_an_owner_only_expectations_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let mut c = load(&[("IDVERDICT_DATA_DIR", data.as_str())]).unwrap();
    assert!(c.dev_mode && c.expectations_key.is_none());
    c.materialize_dev_defaults().unwrap();
    let key = c
        .expectations_key
        .as_ref()
        .unwrap()
        .expose_secret()
        .to_string();
    assert!(key.len() >= 32);
    let file = dir.path().join("dev-expectations-key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let mut again = load(&[("IDVERDICT_DATA_DIR", data.as_str())]).unwrap();
    again.materialize_dev_defaults().unwrap();
    assert_eq!(
        again.expectations_key.unwrap().expose_secret(),
        key,
        "kept across restarts"
    );
}

#[test]
fn policy_expectations_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "[policy.expectations]\nmin_age = 0\n").unwrap();
    let path = file.display().to_string();
    let e = load(&[("IDVERDICT_CONFIG", path.as_str())])
        .unwrap_err()
        .to_string();
    assert!(e.contains("policy.expectations.min_age"), "{e}");
    std::fs::write(
        &file,
        "[policy.expectations]\nissuing_countries = [\"FRA\"]\n",
    )
    .unwrap();
    let e = load(&[("IDVERDICT_CONFIG", path.as_str())])
        .unwrap_err()
        .to_string();
    assert!(e.contains("policy.expectations.issuing_countries"), "{e}");
}

#[test]
fn event_rows_must_outlive_the_redelivery_and_reconciliation_windows() {
    let c = load(&[
        ("STRIPE_WEBHOOK_SECRET", SECRET),
        ("IDVERDICT_API_TOKEN", TOKEN),
    ])
    .unwrap();
    assert_eq!(c.retention.payload, Duration::from_secs(30 * 86400));
    assert_eq!(c.retention.events, Duration::from_secs(33 * 86400));
    // 3 days of retries + 72 h of reconciliation = 6 days at least.
    let short = load(&[
        ("STRIPE_WEBHOOK_SECRET", SECRET),
        ("IDVERDICT_API_TOKEN", TOKEN),
        ("IDVERDICT_RETENTION_PAYLOAD_DAYS", "2"),
        ("IDVERDICT_RETENTION_EVENT_DAYS", "5"),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        short.contains("retention.event_days") && short.contains("at least 6 days"),
        "{short}"
    );
    let ok = load(&[
        ("STRIPE_WEBHOOK_SECRET", SECRET),
        ("IDVERDICT_API_TOKEN", TOKEN),
        ("IDVERDICT_RETENTION_PAYLOAD_DAYS", "2"),
        ("IDVERDICT_RETENTION_EVENT_DAYS", "6"),
    ])
    .unwrap();
    assert_eq!(ok.retention.events, Duration::from_secs(6 * 86400));
    // A row outliving its payload's window is required too.
    let shorter_than_payload = load(&[
        ("STRIPE_WEBHOOK_SECRET", SECRET),
        ("IDVERDICT_API_TOKEN", TOKEN),
        ("IDVERDICT_RETENTION_PAYLOAD_DAYS", "30"),
        ("IDVERDICT_RETENTION_EVENT_DAYS", "20"),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        shorter_than_payload.contains("retention.payload_days"),
        "{shorter_than_payload}"
    );
}
