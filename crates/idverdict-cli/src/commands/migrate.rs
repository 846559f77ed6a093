//! `idverdict migrate`: apply the embedded schema migrations explicitly.

use clap::Args;
use idverdict::store::redact_url;

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub config: super::ConfigArgs,
}

pub async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let config = super::load_config(&args.config, &[])?;
    crate::logging::init(config.log_format);
    let url = redact_url(&config.database_url);
    let store = super::create_store(&config).await?;
    println!("migrations applied to {url}");
    store.close().await;
    Ok(())
}
