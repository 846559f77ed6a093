//! `idverdict endpoints …`: register webhook endpoints at Stripe or the emulator (placeholder).
use clap::Args;

#[derive(Debug, Args)]
pub struct EndpointsArgs {}

pub async fn run(_args: EndpointsArgs) -> anyhow::Result<()> {
    anyhow::bail!("endpoint registration is not built yet")
}
