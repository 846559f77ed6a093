//! `idverdict emulate`: run the local Stripe emulator until SIGTERM or Ctrl-C.
//!
//! Prints exactly one line to stdout once bound —
//! `emulator listening on http://127.0.0.1:PORT` — so scripts and tests that
//! start it with `--listen 127.0.0.1:0` can read the port. Logs go to stderr.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use stripe_emulator::{Chaos, EmulatorConfig};

#[derive(Debug, Args)]
pub struct EmulateArgs {
    /// Address to listen on (12111 is stripe-mock's port; use port 0 for any free port).
    #[arg(
        long,
        default_value = "127.0.0.1:12111",
        env = "IDVERDICT_EMULATOR_LISTEN"
    )]
    pub listen: String,
    /// Directory of the state file; sessions, events and pending deliveries survive restarts.
    #[arg(
        long = "data",
        default_value = ".idverdict/emulator",
        env = "IDVERDICT_EMULATOR_DATA"
    )]
    pub data: PathBuf,
    /// Multiplies every webhook retry delay and the 3-day retry horizon (0.001 = 1000× faster).
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Delay between a hosted-page submission (processing) and its outcome, in milliseconds;
    /// also the time a redaction takes.
    #[arg(long, default_value_t = 2000)]
    pub processing_delay_ms: u64,
    /// How long a webhook receiver may take to answer, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    pub delivery_timeout_ms: u64,
    /// Base URL for session `url` links, when the emulator is reached under another address.
    #[arg(long)]
    pub public_base_url: Option<String>,
    /// Probability (0..1) that a delivery is sent twice with the same event id.
    #[arg(long, default_value_t = 0.0)]
    pub chaos_duplicate: f64,
    /// Probability (0..1) that a delivery is held back until the next one to the same endpoint overtakes it.
    #[arg(long, default_value_t = 0.0)]
    pub chaos_reorder: f64,
    /// Probability (0..1) that a delivery is delayed by a random time up to --chaos-max-delay-ms.
    #[arg(long, default_value_t = 0.0)]
    pub chaos_delay: f64,
    /// Probability (0..1) that a change produces a second event with its own id.
    #[arg(long, default_value_t = 0.0)]
    pub chaos_distinct_duplicate: f64,
    /// Upper bound of the random delay of --chaos-delay, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub chaos_max_delay_ms: u64,
    /// How long a reordered delivery waits at most for another one to overtake it, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub chaos_reorder_window_ms: u64,
}

fn probability(name: &str, p: f64) -> anyhow::Result<f64> {
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        anyhow::bail!("{name} must be between 0 and 1, got {p}")
    }
}

impl EmulateArgs {
    fn config(&self) -> anyhow::Result<EmulatorConfig> {
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            anyhow::bail!("--time-scale must be a positive number");
        }
        Ok(EmulatorConfig {
            data_dir: self.data.clone(),
            time_scale: self.time_scale,
            processing_delay: Duration::from_millis(self.processing_delay_ms),
            delivery_timeout: Duration::from_millis(self.delivery_timeout_ms.max(1)),
            chaos: Chaos {
                duplicate: probability("--chaos-duplicate", self.chaos_duplicate)?,
                reorder: probability("--chaos-reorder", self.chaos_reorder)?,
                delay: probability("--chaos-delay", self.chaos_delay)?,
                distinct_duplicate: probability(
                    "--chaos-distinct-duplicate",
                    self.chaos_distinct_duplicate,
                )?,
                max_delay: Duration::from_millis(self.chaos_max_delay_ms),
                reorder_window: Duration::from_millis(self.chaos_reorder_window_ms),
            },
            public_base_url: self.public_base_url.clone(),
        })
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub async fn run(args: EmulateArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    // One emulator per state directory (held until this process ends): two would deliver
    // every webhook twice from one SQLite file.
    let _lock = idverdict::data_dir::DataDirLock::acquire(&args.data, "emulate")?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    let handle = stripe_emulator::spawn(listener, config).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "emulator listening on {}", handle.base_url())?;
        out.flush()?;
    }
    tracing::info!(data = %args.data.display(), "emulator state directory");
    shutdown_signal().await;
    tracing::info!("shutting down the emulator");
    handle.shutdown().await
}
