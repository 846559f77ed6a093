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
    #[command(flatten)]
    pub stripe: super::StripeArgs,
}

pub async fn run(args: ReconcileArgs) -> anyhow::Result<()> {
    let config = super::load_config(&args.config, &args.stripe.overrides())?;
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
        crate::time::rfc3339_secs(report.listed_from),
        report.ingested_new,
        report.duplicates
    );
    if report.ingested_new > 0 {
        // Who applies them: a serve on this SQLite file holds the data directory; with
        // PostgreSQL any instance does, possibly on another machine.
        let applied_by = if !config.database_url.starts_with("sqlite:") {
            "the next `idverdict serve` on this database to process applies them".to_string()
        } else if idverdict::data_dir::holder(&config.data_dir).is_some() {
            format!(
                "the `idverdict serve` running in {} applies them now",
                config.data_dir.display()
            )
        } else {
            format!(
                "no `idverdict serve` runs in {}: they are applied when it starts",
                config.data_dir.display()
            )
        };
        println!(
            "{} events had never arrived as webhooks; {applied_by}. Check the webhook endpoint at Stripe (`idverdict endpoints list`).",
            report.ingested_new
        );
    }
    Ok(())
}

/// `72h`, `30m`, `7d`, `45s` or plain seconds (the configuration's grammar), and not zero.
fn parse_since(text: &str) -> Result<Duration, String> {
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
