//! `idverdict backup --to FILE`: a consistent copy of the SQLite database while `serve` runs
//! (SQLite's `VACUUM INTO`: a snapshot of one read transaction, compacted). PostgreSQL is
//! backed up with its own tools (`pg_dump`).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the copy (must not exist yet; written owner-only).
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
    #[command(flatten)]
    pub config: super::ConfigArgs,
}

pub async fn run(args: BackupArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        !args.to.exists(),
        "{} already exists: a backup never overwrites a file",
        args.to.display()
    );
    let config = super::load_config(&args.config, &[])?;
    crate::logging::init(config.log_format);
    let store = super::open_store(&config).await?;
    let result = store.backup_into(&args.to).await;
    store.close().await;
    result.with_context(|| format!("backing up to {}", args.to.display()))?;
    println!(
        "backed up {} to {}",
        idverdict::store::redact_url(&config.database_url),
        args.to.display()
    );
    Ok(())
}
