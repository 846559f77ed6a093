//! `idverdict migrate`: apply the embedded schema migrations explicitly.

use std::path::PathBuf;

use clap::Args;
use idverdict::store::redact_url;

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// TOML configuration file.
    #[arg(long, env = "IDVERDICT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (for the default SQLite database).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

pub async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let config = super::serve::load_config(args.config.as_deref(), None, args.data_dir.as_deref())?;
    crate::logging::init(config.log_format);
    let url = redact_url(&config.database_url);
    let store = super::open_store(&config).await?;
    println!("migrations applied to {url}");
    store.close().await;
    Ok(())
}
