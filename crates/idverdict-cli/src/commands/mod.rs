//! One module per subcommand.

pub mod audit;
pub mod backup;
pub mod dev_loop;
pub mod emulate;
pub mod endpoints;
pub mod events;
pub mod migrate;
pub mod operators;
pub mod reactions;
pub mod reconcile;
pub mod redact;
pub mod secrets;
pub mod serve;
pub mod stripe_http;
pub mod trigger;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use idverdict::config::Sources;
use idverdict::data_dir;
use idverdict::store::{redact_url, OpenError, Store};
use idverdict::stripe_api::{StripeClient, StripeSettings};
use idverdict::Config;

/// `--config` and `--data-dir`: the same for every command that reads the configuration.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// TOML configuration file; environment variables override it. Default: IDVERDICT_CONFIG.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Data directory (the default SQLite database, dev credentials). Overrides
    /// IDVERDICT_DATA_DIR.
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
}

/// Load the configuration: flags > environment > file > defaults. `flags` are the command's
/// own flags, each standing in for its environment variable (`None`: not given).
pub fn load_config(args: &ConfigArgs, flags: &[(&str, Option<String>)]) -> anyhow::Result<Config> {
    let data_dir = args.data_dir.as_ref().map(|d| d.display().to_string());
    let env = |var: &str| -> Option<String> {
        let flag = match var {
            "IDVERDICT_DATA_DIR" => data_dir.clone(),
            _ => flags
                .iter()
                .find(|(name, _)| *name == var)
                .and_then(|(_, value)| value.clone()),
        };
        flag.or_else(|| std::env::var(var).ok())
    };
    Ok(Config::load(&Sources {
        file: args.config.as_deref(),
        env: &env,
    })?)
}

/// The data directory the way `serve` resolves it (flag > environment > file > default),
/// without validating the rest of the configuration: for `trigger` and `endpoints`, which
/// only look for a running `serve` there.
pub fn data_dir(args: &ConfigArgs) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &args.data_dir {
        return Ok(dir.clone());
    }
    let env = |var: &str| std::env::var(var).ok();
    Ok(Config::load_data_dir(&Sources {
        file: args.config.as_deref(),
        env: &env,
    })?)
}

/// Open the database a `serve` uses, for the commands that read or change it. Nothing is
/// created: a wrong directory or URL is an error naming what was looked at, not a fresh empty
/// database. (`serve` and `migrate` create and migrate; see [`create_store`].)
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let url = redact_url(&config.database_url);
    let in_data_dir =
        config.database_url == idverdict::config::default_database_url(&config.data_dir);
    let looked_at = if in_data_dir {
        format!("the data directory {}", config.data_dir.display())
    } else {
        format!("DATABASE_URL {url}")
    };
    match Store::open_existing(&config.database_url).await {
        Ok(store) => Ok(store),
        Err(e @ (OpenError::Missing { .. } | OpenError::NotInitialised { .. })) => {
            anyhow::bail!(
                "no idverdict database in {looked_at} ({e}): run this where `idverdict serve` runs, \
                 or name its database with --data-dir, --config or DATABASE_URL \
                 (`idverdict migrate` creates an empty one)"
            )
        }
        Err(e @ OpenError::SchemaVersion { .. }) => anyhow::bail!(
            "{e}: run `idverdict migrate` (or restart `idverdict serve`) with this version first"
        ),
        Err(OpenError::Store(e)) => Err(anyhow::Error::new(e).context(format!("opening {url}"))),
    }
}

/// Create (if needed) and migrate the configured database: `migrate`.
pub async fn create_store(config: &Config) -> anyhow::Result<Store> {
    let url = redact_url(&config.database_url);
    let store = Store::connect(&config.database_url)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    store
        .migrate()
        .await
        .with_context(|| format!("migrating {url}"))?;
    Ok(store)
}

/// `--api-key` and `--api-base`, accepted before or after a subcommand (like the Stripe CLI's
/// flags), on every command that talks to Stripe.
#[derive(Debug, Args)]
pub struct StripeArgs {
    /// Stripe secret or restricted key (sk_… / rk_…). Default: STRIPE_API_KEY, else the
    /// embedded emulator of a dev-mode `idverdict serve` running in the data directory.
    #[arg(long, global = true, value_name = "KEY")]
    pub api_key: Option<String>,
    /// Stripe API base URL (default https://api.stripe.com; the emulator: e.g.
    /// http://127.0.0.1:12111). Default: STRIPE_API_BASE.
    #[arg(long, global = true, value_name = "URL")]
    pub api_base: Option<String>,
}

impl StripeArgs {
    /// The flags as the environment overrides `load_config` takes.
    pub fn overrides(&self) -> [(&'static str, Option<String>); 2] {
        [
            ("STRIPE_API_KEY", self.api_key.clone()),
            ("STRIPE_API_BASE", self.api_base.clone()),
        ]
    }

    /// Settings from the flags or the environment alone (for `endpoints`, which reads no
    /// configuration file); `None` when no key is given.
    pub fn settings_from_flags_or_env(&self) -> anyhow::Result<Option<StripeSettings>> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let key = self.api_key.clone().or_else(|| var("STRIPE_API_KEY"));
        let base = self.api_base.clone().or_else(|| var("STRIPE_API_BASE"));
        match (key, base) {
            (Some(key), base) => Ok(Some(StripeSettings::new(
                &key,
                base.as_deref()
                    .unwrap_or(idverdict::stripe_api::DEFAULT_API_BASE),
            )?)),
            (None, Some(_)) => anyhow::bail!(
                "--api-base (STRIPE_API_BASE) is set but no key: add --api-key or STRIPE_API_KEY (any sk_test_… works against the emulator)"
            ),
            (None, None) => Ok(None),
        }
    }
}

/// The Stripe API to use: `configured` (flags, environment, file) if any, else the embedded
/// emulator of a dev-mode `serve` running in `data_dir`. `command` names who needs it.
pub fn stripe_settings(
    configured: Option<StripeSettings>,
    data_dir: &Path,
    command: &str,
) -> anyhow::Result<StripeSettings> {
    if let Some(settings) = configured {
        return Ok(settings);
    }
    let discovery = data_dir::discover(data_dir);
    if let Some(emulator) = discovery.running().and_then(|s| s.emulator.as_ref()) {
        // stderr: stdout stays the command's answer.
        eprintln!(
            "using the embedded Stripe emulator of the `idverdict serve` running in {} ({})",
            data_dir.display(),
            emulator.url
        );
        return Ok(StripeSettings::new(&emulator.api_key, &emulator.url)?);
    }
    let found = match discovery {
        data_dir::Discovery::Running(_) => "its serve runs without the embedded emulator",
        data_dir::Discovery::Stale(_) => "its serve.json is stale: that serve is no longer running",
        data_dir::Discovery::Nothing => "no serve runs there",
    };
    anyhow::bail!(
        "STRIPE_API_KEY is not set: {command} needs a Stripe key (--api-key, or STRIPE_API_KEY; any sk_test_… for an emulator, with --api-base), \
         or a dev-mode `idverdict serve` running in {} ({found})",
        data_dir.display()
    )
}

/// The Stripe API client for `configured`, or the embedded emulator (see [`stripe_settings`]).
pub fn stripe_client(
    config: &Config,
    command: &str,
) -> anyhow::Result<(StripeClient, StripeSettings)> {
    let settings = stripe_settings(config.stripe.clone(), &config.data_dir, command)?;
    Ok((StripeClient::new(&settings)?, settings))
}
