//! `idverdict reconcile [--since 72h]`: list the `identity.verification_session.*` events at
//! Stripe (or the emulator) and store the ones that never arrived as webhooks, through the same
//! path as webhooks. `serve` applies them (it also reconciles on its own, periodically).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use idverdict::reconcile::Reconciler;

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// How far back to look: `72h`, `30m`, `7d`, `3600s` or plain seconds (at most 30 days,
    /// Stripe's event retention; a stored cursor can shorten it further).
    #[arg(long, default_value = "72h", value_parser = parse_duration)]
    pub since: Duration,
    /// TOML configuration file (for the database).
    #[arg(long, env = "IDVERDICT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (for the default SQLite database).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

pub async fn run(args: ReconcileArgs) -> anyhow::Result<()> {
    let config = super::serve::load_config(args.config.as_deref(), None, args.data_dir.as_deref())?;
    crate::logging::init(config.log_format);
    let (client, settings) = super::stripe_client(&config, "reconcile")?;
    let store = super::open_store(&config).await?;
    let result = Reconciler::new(store.clone(), Arc::new(client))
        .run_once(args.since)
        .await;
    store.close().await;
    let report = result.with_context(|| format!("reconciling with {}", settings.api_base))?;
    println!(
        "listed {} events from {} (created since {}): {} new, {} already received",
        report.listed,
        settings.api_base,
        report.listed_from,
        report.ingested_new,
        report.duplicates
    );
    if report.ingested_new > 0 {
        println!(
            "{} events had never arrived as webhooks; `serve` applies them. Check the webhook endpoint at Stripe.",
            report.ingested_new
        );
    }
    Ok(())
}

/// `72h`, `30m`, `7d`, `45s` or plain seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 72h, 30m, 7d or 3600s"))?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit in `{text}`: use s, m, h or d")),
    };
    match n.checked_mul(factor) {
        Some(secs) if secs > 0 => Ok(Duration::from_secs(secs)),
        _ => Err(format!("`{text}` must be a positive duration")),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("72h"), Ok(Duration::from_secs(259_200)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("0h").is_err());
        assert!(parse_duration("3w").is_err());
        assert!(parse_duration("h").is_err());
    }
}
