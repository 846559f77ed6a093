//! The one list of settings: TOML key, environment variable, kind, default and meaning of each.
//!
//! The environment pass (`apply_env`) is driven by it, error messages look the variable up in
//! it, and the README's configuration table is rendered from it (`super::docs`), so a setting
//! cannot exist in one place and be missing from another. Each row's setter is generated from
//! its kind, so a `Bool` row is always parsed by the one boolean parser.

use super::parse;
use super::raw::RawConfig;
use super::SettingError;

/// What a value looks like (it picks the parser, and is shown in the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `host:port`.
    Address,
    Text,
    /// Never shown, logged or echoed in an error.
    Secret,
    /// Comma-separated secrets (TOML: a list).
    Secrets,
    /// Comma-separated (TOML: a list).
    List,
    /// A duration with its unit (`250ms`, `5s`, `3d`).
    Duration,
    /// Comma-separated durations with units (`5s,5m`).
    Durations,
    /// A number of seconds, or a duration with a unit (`300`, `5m`).
    Seconds,
    /// A whole number.
    Number,
    Port,
    Bool,
    Path,
    Url,
    /// One of these words.
    Choice(&'static [&'static str]),
    /// A TOML table (file only).
    Table,
}

impl Kind {
    /// How the README names the kind.
    pub fn describe(self) -> String {
        match self {
            Kind::Address => "address".into(),
            Kind::Text => "text".into(),
            Kind::Secret => "secret".into(),
            Kind::Secrets => "secrets, comma list".into(),
            Kind::List => "comma list".into(),
            Kind::Duration => "duration".into(),
            Kind::Durations => "durations, comma list".into(),
            Kind::Seconds => "seconds".into(),
            Kind::Number => "number".into(),
            Kind::Port => "port".into(),
            Kind::Bool => "bool".into(),
            Kind::Path => "path".into(),
            Kind::Url => "URL".into(),
            Kind::Choice(words) => words
                .iter()
                .map(|w| format!("`{w}`"))
                .collect::<Vec<_>>()
                .join(" / "),
            Kind::Table => "table".into(),
        }
    }
}

/// The default as documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultValue {
    /// A value the loader produces when nothing is set (a unit test holds the code to it).
    Is(&'static str),
    /// No single value: what happens instead.
    Note(&'static str),
}

/// One setting.
pub struct Setting {
    /// Dotted TOML key; `None` for a variable read only from the environment.
    pub key: Option<&'static str>,
    /// `None` for a key read only from the file.
    pub env: Option<&'static str>,
    pub kind: Kind,
    pub default: DefaultValue,
    /// One line for the README.
    pub about: &'static str,
    /// Applies an environment value (or a flag standing in for one).
    set: Option<Setter>,
}

/// Parses a variable's text per the row's kind and stores it in its field.
type Setter = fn(&mut RawConfig, &str) -> Result<(), String>;

impl Setting {
    /// `` `email.port` (IDVERDICT_SMTP_PORT) ``: how errors name the setting.
    pub fn name(&self) -> String {
        name(self.key, self.env)
    }
}

/// How errors name a TOML key, with its variable when it has one.
pub fn describe(key: &str) -> String {
    name(Some(key), find(key).and_then(|s| s.env))
}

pub(crate) fn name(key: Option<&str>, env: Option<&str>) -> String {
    match (key, env) {
        (Some(k), Some(e)) => format!("`{k}` ({e})"),
        (Some(k), None) => format!("`{k}`"),
        (None, Some(e)) => e.to_string(),
        (None, None) => "the configuration".to_string(),
    }
}

/// The variable naming the configuration file (resolved before everything else).
pub const CONFIG_FILE_VAR: &str = "IDVERDICT_CONFIG";

/// The row of a key such as `email.port`, `callbacks.urls[2]` or `policy.codes.abandoned`.
pub fn find(key: &str) -> Option<&'static Setting> {
    SETTINGS
        .iter()
        .filter(|s| {
            s.key.is_some_and(|k| {
                key == k
                    || key
                        .strip_prefix(k)
                        .is_some_and(|rest| rest.starts_with(['.', '[']))
            })
        })
        .max_by_key(|s| s.key.map_or(0, str::len))
}

/// Overlay every set environment variable (empty counts as unset). Errors name the setting.
pub(crate) fn apply_env(
    raw: &mut RawConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), SettingError> {
    for setting in SETTINGS {
        let (Some(var), Some(set)) = (setting.env, setting.set) else {
            continue;
        };
        let Some(value) = env(var).filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        set(raw, &value).map_err(|message| SettingError {
            key: setting.key.map(str::to_string),
            env: Some(var),
            message,
        })?;
    }
    Ok(())
}

/// The kind's parser. `Choice` and `Number` are generic: the field's type picks the enum or
/// the integer width.
macro_rules! parser {
    (Address) => {
        parse::parse_text
    };
    (Text) => {
        parse::parse_text
    };
    (Url) => {
        parse::parse_text
    };
    (Secret) => {
        parse::parse_secret
    };
    (Secrets) => {
        parse::parse_secrets
    };
    (List) => {
        parse::parse_strings
    };
    (Duration) => {
        parse::parse_duration
    };
    (Durations) => {
        parse::parse_durations
    };
    (Seconds) => {
        parse::parse_seconds
    };
    (Number) => {
        parse::parse_number
    };
    (Port) => {
        parse::parse_number
    };
    (Bool) => {
        parse::parse_bool
    };
    (Path) => {
        parse::parse_path
    };
    (Choice) => {
        parse::parse_choice
    };
}

/// A row: `key`/`env` (either may be missing), the kind, the default, the meaning, and for
/// rows with a variable `|raw, value| raw.field = value` (the value already parsed per kind).
macro_rules! setting {
    (key: $key:literal, env: $env:literal, $($rest:tt)*) => {
        setting!(@row Some($key), Some($env), $($rest)*)
    };
    (key: $key:literal, $($rest:tt)*) => { setting!(@row Some($key), None, $($rest)*) };
    (env: $env:literal, $($rest:tt)*) => { setting!(@row None, Some($env), $($rest)*) };
    (@row $key:expr, $env:expr, $kind:ident $(($words:expr))?, $default:expr, $about:literal
        $(, |$raw:ident, $v:ident| $assign:expr)?) => {
        Setting {
            key: $key,
            env: $env,
            kind: Kind::$kind $(($words))?,
            default: $default,
            about: $about,
            set: setting!(@set $kind $(, |$raw, $v| $assign)?),
        }
    };
    (@set $kind:ident) => { None };
    (@set $kind:ident, |$raw:ident, $v:ident| $assign:expr) => {
        Some(|$raw: &mut RawConfig, text: &str| -> Result<(), String> {
            let $v = parser!($kind)(text)?;
            $assign;
            Ok(())
        })
    };
}

use DefaultValue::{Is, Note};

/// Every setting, in the order of the README table.
pub static SETTINGS: &[Setting] = &[
    // ------------------------------------------------------------------ server and webhook
    setting!(key: "listen", env: "IDVERDICT_LISTEN", Address, Is("127.0.0.1:4242"),
        "Address for webhooks and the API (port 0 picks a free port; `serve --listen`).",
        |c, v| c.listen = v),
    setting!(key: "webhook_path", env: "IDVERDICT_WEBHOOK_PATH", Text, Is("/webhook"),
        "Path Stripe posts to.",
        |c, v| c.webhook_path = v),
    setting!(key: "webhook_secrets", env: "STRIPE_WEBHOOK_SECRET", Secrets,
        Note("generated in dev mode"),
        "Endpoint secrets `whsec_…`. Any one may match: list the old and the new one while you rotate.",
        |c, v| c.webhook_secrets = v),
    setting!(key: "tolerance_secs", env: "IDVERDICT_WEBHOOK_TOLERANCE_SECS", Seconds, Is("300"),
        "Oldest accepted signature timestamp, as in Stripe's libraries. `0` means \"only the current second\", never \"off\".",
        |c, v| c.tolerance_secs = v),
    setting!(key: "future_skew_secs", env: "IDVERDICT_WEBHOOK_FUTURE_SKEW_SECS", Seconds, Is("300"),
        "Newest accepted timestamp. Stripe's libraries accept any future timestamp; idverdict refuses ones more than this ahead (a replay-window bound for clocks gone wrong).",
        |c, v| c.future_skew_secs = v),
    setting!(key: "body_limit_bytes", env: "IDVERDICT_BODY_LIMIT_BYTES", Number, Is("1048576"),
        "Larger bodies get 413 (1024 to 67108864).",
        |c, v| c.body_limit_bytes = v),
    setting!(key: "request_timeout_secs", env: "IDVERDICT_REQUEST_TIMEOUT_SECS", Seconds, Is("10"),
        "Whole-request deadline; slow clients get 408.",
        |c, v| c.request_timeout_secs = v),
    setting!(key: "header_read_timeout_secs", env: "IDVERDICT_HEADER_READ_TIMEOUT_SECS", Seconds,
        Is("10"),
        "A request head must be complete this long after the connection opens (or its first byte after an idle spell); else the connection is closed.",
        |c, v| c.header_read_timeout_secs = v),
    setting!(key: "keepalive_timeout_secs", env: "IDVERDICT_KEEPALIVE_TIMEOUT_SECS", Seconds,
        Is("30"),
        "An idle keep-alive connection is closed after this long.",
        |c, v| c.keepalive_timeout_secs = v),
    setting!(key: "max_connections", env: "IDVERDICT_MAX_CONNECTIONS", Number,
        Note("half of what the open-file limit leaves after a reserve, at most 4096"),
        "Open connections at most (1 to 65536); at the cap the one idle longest is closed. Start-up raises the soft open-file limit to the hard one.",
        |c, v| c.max_connections = Some(v)),
    setting!(key: "api_token", env: "IDVERDICT_API_TOKEN", Secret, Note("generated in dev mode"),
        "Bearer token for `/v1/…` (at least 16 characters, no spaces or control characters). Without one (outside dev mode) the API answers 401.",
        |c, v| c.api_token = Some(v)),
    setting!(key: "expectations_key", env: "IDVERDICT_EXPECTATIONS_KEY", Secret,
        Note("generated in dev mode"),
        "Key of the HMAC-SHA256 digests of expected names, dates of birth, emails and phones (at least 32 characters). Required once an app sends `expected` names, dob, email or phone (503 `expectations_not_configured` otherwise); changing it turns older digests `unavailable`.",
        |c, v| c.expectations_key = Some(v)),
    // ------------------------------------------------------------------ storage and logs
    setting!(key: "database_url", env: "DATABASE_URL", Url,
        Note("`sqlite://<data_dir>/idverdict.db`"),
        "`sqlite://…` or `postgres://…`.",
        |c, v| c.database_url = Some(v)),
    setting!(key: "data_dir", env: "IDVERDICT_DATA_DIR", Path, Is(".idverdict"),
        "SQLite file, dev credentials, embedded emulator state; the running `serve`'s lock and `serve.json` (`--data-dir`). One `serve` per directory.",
        |c, v| c.data_dir = v),
    setting!(key: "log_format", env: "IDVERDICT_LOG_FORMAT", Choice(&["human", "json"]), Is("human"),
        "Log lines on stderr. Verbosity: `IDVERDICT_LOG=debug` (an `EnvFilter`).",
        |c, v| c.log_format = v),
    setting!(key: "instance_id", env: "IDVERDICT_INSTANCE_ID", Text,
        Note("generated once, kept in `<data_dir>/instance-id`"),
        "This instance's name in the reactions it claims: after a crash it takes its own claims back at once instead of waiting for their lease. Each instance on one PostgreSQL database needs its own (a data dir of its own, or this).",
        |c, v| c.instance_id = Some(v)),
    setting!(key: "poll_interval", env: "IDVERDICT_POLL_INTERVAL", Duration, Is("500ms"),
        "How often idle workers look for events and reactions nobody told them about (10ms to 1h). On PostgreSQL, instances tell each other at once (`LISTEN`/`NOTIFY`): this is the fallback.",
        |c, v| c.poll_interval = v),
    // ------------------------------------------------------------------ the command line
    setting!(env: "IDVERDICT_CONFIG", Path, Note("none"),
        "The TOML file (`--config`)."),
    setting!(env: "IDVERDICT_EMULATOR_LISTEN", Address, Note("`127.0.0.1:12111`, else a free port"),
        "Embedded emulator address in dev mode (`serve --emulator-listen`).",
        |c, v| c.emulator_listen = Some(v)),
    setting!(env: "IDVERDICT_NO_EMULATOR", Bool, Is("false"),
        "Do not start the embedded emulator in dev mode (`serve --no-emulator`).",
        |c, v| c.no_emulator = v),
    // ------------------------------------------------------------------ [stripe]
    setting!(key: "stripe.api_key", env: "STRIPE_API_KEY", Secret,
        Note("unset (dev mode: the embedded emulator)"),
        "Stripe secret or restricted key (`sk_…`, `rk_…`). Enables session creation, reconciliation and fetch-latest; also used by `idverdict reconcile` and `redact`.",
        |c, v| c.stripe.api_key = Some(v)),
    setting!(key: "stripe.api_base", env: "STRIPE_API_BASE", Url, Is("https://api.stripe.com"),
        "Another Stripe API (the emulator: `http://127.0.0.1:12111`). Needs a key.",
        |c, v| c.stripe.api_base = Some(v)),
    setting!(key: "stripe.reconcile", env: "IDVERDICT_RECONCILE", Bool, Is("on"),
        "`off`: no periodic reconciliation inside `serve` (run `idverdict reconcile` from a scheduler instead).",
        |c, v| c.stripe.reconcile = v),
    setting!(key: "stripe.reconcile_interval_secs", env: "IDVERDICT_RECONCILE_INTERVAL_SECS", Seconds,
        Is("3600"),
        "How often `serve` reconciles with Stripe's events list (and once at start-up).",
        |c, v| c.stripe.reconcile_interval_secs = v),
    setting!(key: "stripe.reconcile_since_secs", env: "IDVERDICT_RECONCILE_SINCE_SECS", Seconds,
        Is("259200"),
        "How far back each reconciliation looks (72 h); never beyond Stripe's 30 days.",
        |c, v| c.stripe.reconcile_since_secs = v),
    // ------------------------------------------------------------------ [retention]
    setting!(key: "retention.payload_days", env: "IDVERDICT_RETENTION_PAYLOAD_DAYS", Number, Is("30"),
        "Days after which the raw payload of a processed event, and the session metadata kept with it, are deleted (its facts and decisions stay). At least 1; Stripe keeps events for 30 days.",
        |c, v| c.retention.payload_days = v),
    setting!(key: "retention.event_days", env: "IDVERDICT_RETENTION_EVENT_DAYS", Number, Is("33"),
        "Days after which a processed event's row is deleted. A row is what recognises a redelivery as a duplicate, so this must cover Stripe's 3-day retry window plus `stripe.reconcile_since_secs`, and `retention.payload_days`.",
        |c, v| c.retention.event_days = v),
    // ------------------------------------------------------------------ [console]
    setting!(key: "console.enabled", env: "IDVERDICT_CONSOLE", Bool, Is("on"),
        "`off`: no operator console at `/console`.",
        |c, v| c.console.enabled = v),
    setting!(key: "console.session_idle_secs", env: "IDVERDICT_CONSOLE_SESSION_IDLE_SECS", Seconds,
        Is("1800"),
        "A console session unused this long ends (log in again).",
        |c, v| c.console.session_idle_secs = v),
    setting!(key: "console.session_max_secs", env: "IDVERDICT_CONSOLE_SESSION_MAX_SECS", Seconds,
        Is("43200"),
        "A console session ends this long after login, however busy (12 h).",
        |c, v| c.console.session_max_secs = v),
    setting!(key: "console.login_slow_after", env: "IDVERDICT_CONSOLE_LOGIN_SLOW_AFTER", Number,
        Is("3"),
        "Failed logins (per account and per client address) after which each further try must wait, 2 s doubling up to 60 s.",
        |c, v| c.console.login_slow_after = v),
    setting!(key: "console.login_lock_after", env: "IDVERDICT_CONSOLE_LOGIN_LOCK_AFTER", Number,
        Is("10"),
        "Failed logins after which the account or address is locked (1 to 1000).",
        |c, v| c.console.login_lock_after = v),
    setting!(key: "console.login_lock_secs", env: "IDVERDICT_CONSOLE_LOGIN_LOCK_SECS", Seconds,
        Is("900"),
        "How long a lock lasts; failures older than this are forgotten.",
        |c, v| c.console.login_lock_secs = v),
    setting!(key: "console.claim_secs", env: "IDVERDICT_CONSOLE_CLAIM_SECS", Seconds, Is("1800"),
        "How long \"claim\" leases a review case to one reviewer.",
        |c, v| c.console.claim_secs = v),
    setting!(key: "console.review_reasons", env: "IDVERDICT_CONSOLE_REVIEW_REASONS", List,
        Note("five built-in reasons"),
        "The reasons a reviewer must choose from when deciding (free text may be added).",
        |c, v| c.console.review_reasons = v),
    setting!(key: "console.trusted_proxies", env: "IDVERDICT_CONSOLE_TRUSTED_PROXIES", List,
        Note("none"),
        "Proxy addresses whose `X-Forwarded-For` (client address) and `X-Forwarded-Proto: https` (`Secure` cookie) are believed.",
        |c, v| c.console.trusted_proxies = v),
    setting!(key: "console.images", env: "IDVERDICT_CONSOLE_IMAGES", Bool, Is("on"),
        "Show document and selfie images on the case page through 30-second Stripe FileLinks (needs an `rk_…` key).",
        |c, v| c.console.images = v),
    // ------------------------------------------------------------------ [callbacks]
    setting!(key: "callbacks.urls", env: "IDVERDICT_CALLBACK_URLS", List, Note("none"),
        "Your app's callback endpoints (http or https, no credentials in the URL).",
        |c, v| c.callbacks.urls = v),
    setting!(key: "callbacks.secrets", env: "IDVERDICT_CALLBACK_SECRETS", Secrets,
        Note("required with `urls`"),
        "Standard Webhooks secrets `whsec_<base64>`; several = rotation (one signature each).",
        |c, v| c.callbacks.secrets = v),
    setting!(key: "callbacks.timeout_secs", env: "IDVERDICT_CALLBACK_TIMEOUT_SECS", Seconds, Is("10"),
        "Per request (1 to 300).",
        |c, v| c.callbacks.timeout_secs = v),
    setting!(key: "callbacks.pause_after", env: "IDVERDICT_CALLBACK_PAUSE_AFTER", Duration, Is("3d"),
        "Pause a callback URL that has failed every attempt for this long: its reactions stay queued, untried, until `idverdict reactions targets enable URL` (`0s`: never pause).",
        |c, v| c.callbacks.pause_after = v),
    // ------------------------------------------------------------------ [email]
    setting!(key: "email.host", env: "IDVERDICT_SMTP_HOST", Text, Note("none (no email)"),
        "SMTP server. Any `[email]` key or `IDVERDICT_SMTP_*`/`IDVERDICT_EMAIL_*` variable turns email on.",
        |c, v| c.email().host = v),
    setting!(key: "email.port", env: "IDVERDICT_SMTP_PORT", Port,
        Note("`587` (`465` with `tls`, `25` with `none`)"),
        "SMTP port.",
        |c, v| c.email().port = Some(v)),
    setting!(key: "email.tls", env: "IDVERDICT_SMTP_TLS", Choice(&["none", "starttls", "tls"]),
        Is("starttls"),
        "`starttls` upgrades and refuses to continue without TLS; `tls` is TLS from the first byte; `none` is plain (a local relay).",
        |c, v| c.email().tls = v),
    setting!(key: "email.username", env: "IDVERDICT_SMTP_USERNAME", Text, Note("none"),
        "SMTP login, with the password: both or neither.",
        |c, v| c.email().username = Some(v)),
    setting!(key: "email.password", env: "IDVERDICT_SMTP_PASSWORD", Secret, Note("none"),
        "SMTP password.",
        |c, v| c.email().password = Some(v)),
    setting!(key: "email.from", env: "IDVERDICT_SMTP_FROM", Text, Note("required with `host`"),
        "`Name <addr>` or `addr`.",
        |c, v| c.email().from = v),
    setting!(key: "email.templates_dir", env: "IDVERDICT_EMAIL_TEMPLATES_DIR", Path, Note("built-in"),
        "Files `{decision}.txt` (first line `Subject: …`) and `{decision}.html` override the built-ins one by one.",
        |c, v| c.email().templates_dir = Some(v)),
    setting!(key: "email.email_metadata_key", env: "IDVERDICT_EMAIL_METADATA_KEY", Text, Note("none"),
        "The session metadata key holding the end user's address. Otherwise, with a Stripe key, the session's `provided_details.email` (fetched, never stored; webhooks do not carry it).",
        |c, v| c.email().email_metadata_key = Some(v)),
    setting!(key: "email.resume_url", env: "IDVERDICT_EMAIL_RESUME_URL", Url, Note("none"),
        "Where the end user resumes, e.g. `https://app.example/verify?user={user}` (`{user}` URL-encoded, `{session}`): the retry and alternative-method emails link it instead of \"go back to where you started\".",
        |c, v| c.email().resume_url = Some(v)),
    setting!(key: "email.locale_metadata_key", env: "IDVERDICT_EMAIL_LOCALE_METADATA_KEY", Text, Note("none"),
        "The session metadata key holding the end user's locale (`fr`, `pt-BR`): templates `{decision}.{locale}.txt`/`.html` from `templates_dir` are used when present (`pt-br`, then `pt`), else the default (English) ones.",
        |c, v| c.email().locale_metadata_key = Some(v)),
    setting!(key: "email.timeout_secs", env: "IDVERDICT_SMTP_TIMEOUT_SECS", Seconds, Is("30"),
        "Per message.",
        |c, v| c.email().timeout_secs = v),
    // ------------------------------------------------------------------ [nats]
    setting!(key: "nats.url", env: "IDVERDICT_NATS_URL", Url, Note("none (no bus)"),
        "`nats://…` or `tls://…`: publish decisions to `{prefix}.{decision}`.",
        |c, v| c.nats().url = v),
    setting!(key: "nats.subject_prefix", env: "IDVERDICT_NATS_SUBJECT_PREFIX", Text, Is("idverdict"),
        "Dot-separated tokens of letters, digits, `-` and `_`.",
        |c, v| c.nats().subject_prefix = v),
    setting!(key: "nats.mode", env: "IDVERDICT_NATS_MODE", Choice(&["jetstream", "core"]), Is("jetstream"),
        "`jetstream`: publish to a JetStream stream and count a message delivered only on the stream's acknowledgement (`Nats-Msg-Id` deduplicates resends). `core`: fire-and-forget core publish (delivered once flushed to the server; lost if no subscriber is listening).",
        |c, v| c.nats().mode = v),
    setting!(key: "nats.stream", env: "IDVERDICT_NATS_STREAM", Text, Note("none"),
        "A JetStream stream idverdict creates over `{prefix}.>` if it does not exist. Unset: a stream must already capture the subjects, else each message fails at once, naming this setting.",
        |c, v| c.nats().stream = Some(v)),
    setting!(key: "nats.duplicate_window", env: "IDVERDICT_NATS_DUPLICATE_WINDOW", Duration, Is("1h"),
        "The deduplication window of the stream idverdict creates (`nats.stream`): a message resent within it is stored once.",
        |c, v| c.nats().duplicate_window = v),
    // ------------------------------------------------------------------ [delivery]
    setting!(key: "delivery.schedule", env: "IDVERDICT_RETRY_SCHEDULE", Durations,
        Is("5s,5m,30m,2h,5h,10h,10h"),
        "Waits between attempts (±20 % jitter; `Retry-After` can only lengthen one; at most 50). After the last: `exhausted`.",
        |c, v| c.delivery.schedule = v),
    setting!(key: "delivery.allow_private_targets", env: "IDVERDICT_ALLOW_PRIVATE_TARGETS", Bool,
        Is("false"),
        "Allow callbacks to loopback/private addresses (SSRF guard off).",
        |c, v| c.delivery.allow_private_targets = v),
    setting!(key: "delivery.workers", env: "IDVERDICT_DELIVERY_WORKERS", Number, Is("16"),
        "Deliveries in flight (1 to 1024).",
        |c, v| c.delivery.workers = v),
    // ------------------------------------------------------------------ [policy]
    setting!(key: "policy.max_attempts", env: "IDVERDICT_MAX_ATTEMPTS", Number, Is("3"),
        "Failed attempts per user, over all their sessions (1 to 100).",
        |c, v| c.policy().max_attempts = Some(v)),
    setting!(key: "policy.on_exhausted", Choice(&["needs_review", "alternative_required"]),
        Is("needs_review"),
        "The user state when the attempts are used up."),
    setting!(key: "policy.unknown_code",
        Choice(&["retry", "alternative_method", "manual_review", "reject"]), Is("manual_review"),
        "Next step for `last_error` codes Stripe adds later."),
    setting!(key: "policy.user_metadata_key", Text, Is("user_id"),
        "Metadata key naming the user when `client_reference_id` is empty (`\"\"`: none)."),
    setting!(key: "policy.expectations", Table, Note("none"),
        "`[policy.expectations]`: `min_age` and `issuing_countries` for every verified session, `on_mismatch`/`on_unavailable` (`needs_review`, `rejected`, `ignore`; default `needs_review`), per field in `[policy.expectations.fields.<field>]` (see [Expectations](#expectations-who-the-verified-person-must-be))."),
    setting!(key: "policy.codes", Table, Note("the built-in table"),
        "`[policy.codes.<code>]`: `next_step`, `counts_as_attempt` and `hold_for_review` per `last_error` code (see [Policy](#policy))."),
];
