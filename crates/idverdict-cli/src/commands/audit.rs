//! `idverdict audit export [--since 7d]`: the console's audit log as JSON lines, oldest first
//! (every entry, or those of the last `--since`), for an auditor or a log archive.

use std::io::Write;
use std::time::Duration;

use clap::{Args, Subcommand};
use idverdict::clock::now_ms;

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub config: super::ConfigArgs,
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Print the audit log as JSON lines (`seq`, `at_ms`, `operator`, `action`, `target`,
    /// `reason`, `client_addr`).
    Export {
        /// Only entries of the last `72h`, `30m`, `7d` or plain seconds. Default: all.
        #[arg(long, value_parser = super::reconcile::parse_since)]
        since: Option<Duration>,
    },
}

/// Entries read per query while exporting.
const PAGE: i64 = 1000;

pub async fn run(args: AuditArgs) -> anyhow::Result<()> {
    let config = super::load_config(&args.config, &[])?;
    let store = super::open_store(&config).await?;
    let AuditCommand::Export { since } = args.command;
    let since_ms = since.map_or(0, |d| now_ms() - d.as_millis() as i64);
    let result = async {
        let mut out = std::io::stdout().lock();
        let mut after = 0;
        loop {
            let page = store.audit_since(since_ms, after, PAGE).await?;
            for entry in &page {
                writeln!(out, "{}", serde_json::to_string(entry)?)?;
            }
            match page.last() {
                Some(last) if page.len() as i64 == PAGE => after = last.seq,
                _ => break,
            }
        }
        out.flush()?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    store.close().await;
    result
}
