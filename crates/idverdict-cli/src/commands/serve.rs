//! `idverdict serve`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use idverdict::config::{Config, Sources};
use idverdict::App;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration file (environment variables override it).
    #[arg(long, env = "IDVERDICT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Listen address, e.g. 127.0.0.1:4242 (port 0 picks a free port). Overrides IDVERDICT_LISTEN.
    #[arg(long)]
    pub listen: Option<String>,
    /// Data directory. Overrides IDVERDICT_DATA_DIR.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// Load the configuration with flags taking precedence over the environment.
pub fn load_config(
    config: Option<&std::path::Path>,
    listen: Option<&str>,
    data_dir: Option<&std::path::Path>,
) -> anyhow::Result<Config> {
    let data_dir = data_dir.map(|d| d.display().to_string());
    let env = |key: &str| -> Option<String> {
        match key {
            "IDVERDICT_LISTEN" if listen.is_some() => listen.map(str::to_string),
            "IDVERDICT_DATA_DIR" if data_dir.is_some() => data_dir.clone(),
            _ => std::env::var(key).ok().filter(|v| !v.is_empty()),
        }
    };
    Ok(Config::load(&Sources {
        file: config,
        env: &env,
    })?)
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = load_config(
        args.config.as_deref(),
        args.listen.as_deref(),
        args.data_dir.as_deref(),
    )?;
    crate::logging::init(config.log_format);
    let generated = config.materialize_dev_defaults()?;
    let app = App::build(&config).await.context("starting the service")?;
    let addr = app.local_addr()?;
    tracing::info!(%addr, backend = ?idverdict::store::Backend::from_url(&config.database_url).ok(), "idverdict started");

    // stdout, once: where to send webhooks and, in dev mode, the generated credentials
    // (like `stripe listen` prints its signing secret). Never written to the logs.
    println!(
        "webhook receiver listening on http://{addr}{}",
        config.webhook_path
    );
    if let Some(secret) = &generated.webhook_secret {
        println!("Ready! Your development webhook signing secret is {secret}");
    }
    if let Some(token) = &generated.api_token {
        println!("Your development API token is {token} (send it as `Authorization: Bearer …`)");
    }

    app.run_until(shutdown_signal()).await?;
    tracing::info!("idverdict stopped");
    Ok(())
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
