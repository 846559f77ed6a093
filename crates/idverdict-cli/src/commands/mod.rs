//! One module per subcommand.

pub mod audit;
pub mod dev_loop;
pub mod emulate;
pub mod endpoints;
pub mod migrate;
pub mod operators;
pub mod reactions;
pub mod reconcile;
pub mod redact;
pub mod serve;
pub mod trigger;

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use idverdict::config::Sources;
use idverdict::store::{redact_url, Store};
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

/// Open the configured database and apply the migrations, for one-shot commands.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
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

/// The configured Stripe API client; `command` names who needs it in the error.
pub fn stripe_client(
    config: &Config,
    command: &str,
) -> anyhow::Result<(StripeClient, StripeSettings)> {
    let settings = config.stripe.clone().with_context(|| {
        format!("STRIPE_API_KEY is not set: {command} needs a Stripe key (any sk_test_… for the emulator, with STRIPE_API_BASE)")
    })?;
    Ok((StripeClient::new(&settings)?, settings))
}
