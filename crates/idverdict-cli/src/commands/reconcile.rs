//! `idverdict reconcile [--since 72h]`: list the `identity.verification_session.*` events at
//! Stripe (or the emulator) and store the ones that never arrived as webhooks, through the same
//! path as webhooks. `serve` applies them (it also reconciles on its own, periodically).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use idverdict::reconcile::Reconciler;

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// How far back to look: `72h`, `30m`, `7d`, `3600s` or plain seconds (at most 30 days,
    /// Stripe's event retention; a stored cursor can shorten it further).
    #[arg(long, default_value = "72h", value_parser = parse_since)]
    pub since: Duration,
    #[command(flatten)]
    pub config: super::ConfigArgs,
}

pub async fn run(args: ReconcileArgs) -> anyhow::Result<()> {
    let config = super::load_config(&args.config, &[])?;
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

/// `72h`, `30m`, `7d`, `45s` or plain seconds (the configuration's grammar), and not zero.
pub(crate) fn parse_since(text: &str) -> Result<Duration, String> {
    match idverdict::config::parse_seconds(text)? {
        0 => Err(format!("`{}` must be a positive duration", text.trim())),
        secs => Ok(Duration::from_secs(secs)),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_since;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_since("72h"), Ok(Duration::from_secs(259_200)));
        assert_eq!(parse_since("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_since("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_since("90"), Ok(Duration::from_secs(90)));
        assert!(parse_since("0h").is_err());
        assert!(parse_since("3w").is_err());
        assert!(parse_since("h").is_err());
    }
}
