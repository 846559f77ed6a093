//! One module per subcommand.

pub mod dev_loop;
pub mod emulate;
pub mod endpoints;
pub mod migrate;
pub mod reactions;
pub mod reconcile;
pub mod redact;
pub mod serve;
pub mod trigger;

use anyhow::Context;
use idverdict::store::{redact_url, Store};
use idverdict::stripe_api::{StripeClient, StripeSettings};
use idverdict::Config;

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
