//! `idverdict serve`.

use clap::Args;
use idverdict::config::ExposeSecret;
use idverdict::data_dir::{DataDirLock, EmulatorInfo, ServeInfo};
use idverdict::App;

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: super::ConfigArgs,
    /// Listen address, e.g. 127.0.0.1:4242 (port 0 picks a free port). Overrides IDVERDICT_LISTEN.
    #[arg(long)]
    pub listen: Option<String>,
    /// Where the embedded Stripe emulator listens (dev mode without a Stripe key only).
    /// Default: 127.0.0.1:12111 if free, else any free port on 127.0.0.1. Overrides
    /// IDVERDICT_EMULATOR_LISTEN.
    #[arg(long)]
    pub emulator_listen: Option<String>,
    /// Do not start the embedded Stripe emulator, even in dev mode. Overrides
    /// IDVERDICT_NO_EMULATOR.
    #[arg(long)]
    pub no_emulator: bool,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = super::load_config(
        &args.config,
        &[
            ("IDVERDICT_LISTEN", args.listen.clone()),
            ("IDVERDICT_EMULATOR_LISTEN", args.emulator_listen.clone()),
            (
                "IDVERDICT_NO_EMULATOR",
                args.no_emulator.then(|| "true".into()),
            ),
        ],
    )?;
    crate::logging::init(config.log_format);

    // One serve per data directory. Checked first when the directory exists, so a second
    // serve there is told who holds it rather than that the port is taken.
    let early_lock = if config.data_dir.is_dir() {
        Some(DataDirLock::acquire(&config.data_dir, "serve")?)
    } else {
        None
    };
    // The port next, before anything is created or started.
    let listener = bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let mut lock = match early_lock {
        Some(lock) => lock,
        None => DataDirLock::acquire(&config.data_dir, "serve")?,
    };
    for warning in idverdict::config::start_up_warnings(&config).await {
        tracing::warn!("{warning}");
    }
    let generated = config.materialize_dev_defaults()?;
    let webhook_url = super::dev_loop::webhook_url(addr, &config.webhook_path);

    // In dev mode with no Stripe key, run the emulator too (see `dev_loop`). Its endpoint's
    // secret must be known before `App::build_on`, which fixes the verifier's secrets; the dev
    // secret stays first so `idverdict trigger --synthesize` keeps working.
    let dev_loop = if !config.no_emulator && super::dev_loop::wanted(&config) {
        let dev = super::dev_loop::DevLoop::start(
            &config.data_dir,
            config.emulator_listen.as_deref(),
            &webhook_url,
        )
        .await?;
        if !config
            .webhook_secrets
            .iter()
            .any(|s| s.expose_secret() == dev.secret)
        {
            config.webhook_secrets.push(dev.secret.clone().into());
        }
        // The app API's Stripe calls (session creation, reconciliation) go to the emulator too,
        // so the whole product works offline.
        if config.stripe.is_none() {
            config.stripe = Some(
                idverdict::stripe_api::StripeSettings::new(
                    super::dev_loop::DEV_KEY,
                    dev.base_url(),
                )
                .map_err(anyhow::Error::new)?,
            );
        }
        Some(dev)
    } else {
        None
    };

    let app = match App::build_on(&config, listener).await {
        Ok(app) => app,
        Err(e) => {
            stop_dev_loop(dev_loop).await;
            return Err(anyhow::Error::new(e).context("starting the service"));
        }
    };
    tracing::info!(%addr, backend = app_backend(&config), "idverdict started");
    if let Some(dev) = &dev_loop {
        tracing::info!(emulator = %dev.base_url(), endpoint = %dev.endpoint_id(), "embedded Stripe emulator started");
    }
    let published = lock.publish(&ServeInfo {
        pid: std::process::id(),
        api_url: super::dev_loop::webhook_url(addr, ""),
        webhook_url: webhook_url.clone(),
        emulator: dev_loop.as_ref().map(|dev| EmulatorInfo {
            url: dev.base_url().to_string(),
            api_key: super::dev_loop::DEV_KEY.to_string(),
        }),
    });
    if let Err(e) = published {
        // The service works without it; only the CLI's discovery does not.
        tracing::warn!(error = %e, "cannot publish serve.json for the CLI");
    }

    let signal = shutdown_signal();

    // stdout, once: where to send webhooks and, in dev mode, the generated credentials
    // (like `stripe listen` prints its signing secret). Never written to the logs.
    println!("webhook receiver listening on {webhook_url}");
    if let Some(secret) = &generated.webhook_secret {
        println!("Ready! Your development webhook signing secret is {secret}");
    }
    if let Some(token) = &generated.api_token {
        println!("Your development API token is {token} (send it as `Authorization: Bearer …`)");
    }
    if let Some(dev) = &dev_loop {
        print_how_to(dev, addr, generated.api_token.as_deref());
    }

    // On SIGTERM/Ctrl-C the emulator stops first (no new deliveries, in-flight ones finish
    // against a receiver that is still up), then the service drains.
    app.run_until(async move {
        signal.await;
        stop_dev_loop(dev_loop).await;
    })
    .await?;
    // Dropping the lock removes serve.json: a clean stop leaves nothing for the CLI to find.
    drop(lock);
    tracing::info!("idverdict stopped");
    Ok(())
}

/// `sqlite` or `postgres`, for the start-up line.
fn app_backend(config: &idverdict::Config) -> &'static str {
    idverdict::store::Backend::from_url(&config.database_url)
        .map(|b| b.name())
        .unwrap_or("unknown")
}

/// Bind the service's address; a port in use says so and how to choose another.
async fn bind(addr: std::net::SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => Ok(listener),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => anyhow::bail!(
            "{addr} is already in use (another idverdict serve, or another program): \
             choose another address with --listen (or IDVERDICT_LISTEN), e.g. --listen 127.0.0.1:4243, or 127.0.0.1:0 for any free port"
        ),
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "cannot listen on {addr} (--listen or IDVERDICT_LISTEN)"
        ))),
    }
}

async fn stop_dev_loop(dev: Option<super::dev_loop::DevLoop>) {
    if let Some(dev) = dev {
        match dev.shutdown().await {
            Ok(()) => tracing::info!("embedded Stripe emulator stopped"),
            Err(e) => tracing::warn!(error = %e, "stopping the embedded Stripe emulator"),
        }
    }
}

/// The developer's next steps, on stdout (like `stripe listen`'s banner); never logged.
fn print_how_to(dev: &super::dev_loop::DevLoop, addr: std::net::SocketAddr, token: Option<&str>) {
    let emu = dev.base_url();
    let key = super::dev_loop::DEV_KEY;
    let api = super::dev_loop::webhook_url(addr, "");
    println!(
        "Stripe emulator listening on {emu} (any sk_test_ key; webhook endpoint {} delivers here; delivery log {emu}/_emulator)",
        dev.endpoint_id()
    );
    println!("Try the whole loop: create a verification session,");
    println!(
        "  curl -s -u {key}: {emu}/v1/identity/verification_sessions -d type=document -d client_reference_id=user_123"
    );
    println!("open its \"url\" in a browser and pick an outcome (verified, or a last_error code), then see what idverdict made of it:");
    println!(
        "  curl -s -H \"Authorization: Bearer {}\" {api}/v1/users/user_123",
        token.unwrap_or("<token>")
    );
}

/// Ctrl-C or SIGTERM. The handlers are installed when this is called, not when the future is
/// first polled: a supervisor (or a test) that sends SIGTERM as soon as it reads the banner
/// must get a graceful stop, not the default action that kills the process.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (term, int) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(term) => {}
                _ = wait(int) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutting down: finishing in-flight requests");
    }
}
