//! A local, stateful emulator of the part of the Stripe API that a Stripe
//! Identity integration touches: verification sessions and reports, the files
//! and file links of their images, webhook endpoints and events, with signed
//! webhook delivery, retries and chaos switches. State lives in a SQLite file so that sessions, events and pending
//! deliveries survive a restart.
//!
//! Embed it with [`spawn`] on a bound listener; `idverdict emulate` is a thin
//! command-line wrapper around the same call.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Mutex, MutexGuard, Notify};
use tokio::task::JoinHandle;

mod admin;
mod api;
mod clock;
mod delivery;
mod errors;
mod files;
mod form;
mod hosted_page;
mod ids;
mod images;
mod lifecycle;
mod model;
mod person;
mod redaction;
mod report;
mod server;
mod store;

pub use errors::{ApiError, StoreError};

/// Stripe's form decoding as the emulator's handlers use it, for the fuzz target only: not
/// part of the emulator's API.
#[doc(hidden)]
pub fn decode_form(input: &[u8]) -> Result<serde_json::Value, ApiError> {
    form::decode(input)
}
pub use model::{API_VERSION, EVENT_TYPES};
pub use store::DB_FILE;

/// Chaos switches for testing receivers; each is a probability in `0.0..=1.0`
/// applied independently to every delivery (or, for `distinct_duplicate`, to every event).
#[derive(Debug, Clone, PartialEq)]
pub struct Chaos {
    /// Send the same event (same `evt_` id) a second time.
    pub duplicate: f64,
    /// Hold a delivery back until the next delivery to the same endpoint has
    /// been sent (or `reorder_window` has passed), so that they arrive out of order.
    pub reorder: f64,
    /// Hold a delivery back for a random time up to `max_delay`.
    pub delay: f64,
    /// Create a second event, with its own `evt_` id, for the same change.
    pub distinct_duplicate: f64,
    /// Upper bound of the `delay` switch.
    pub max_delay: Duration,
    /// How long a reordered delivery waits at most for another one to overtake it.
    pub reorder_window: Duration,
}

impl Default for Chaos {
    fn default() -> Self {
        Chaos {
            duplicate: 0.0,
            reorder: 0.0,
            delay: 0.0,
            distinct_duplicate: 0.0,
            max_delay: Duration::from_secs(2),
            reorder_window: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// State persists here (a SQLite file) across restarts.
    pub data_dir: PathBuf,
    /// Multiplies every delivery-retry delay and the 3-day retry horizon:
    /// 1.0 = Stripe-like real time, 0.001 = 1000× faster.
    pub time_scale: f64,
    /// Delay of `processing → outcome` after a hosted-page submission, and of
    /// `redaction.status processing → redacted`.
    pub processing_delay: Duration,
    /// How long a receiver may take to answer one delivery.
    pub delivery_timeout: Duration,
    pub chaos: Chaos,
    /// Base for session `url` links; defaults to the bound address.
    pub public_base_url: Option<String>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            data_dir: PathBuf::from(".idverdict/emulator"),
            time_scale: 1.0,
            processing_delay: Duration::from_secs(2),
            delivery_timeout: Duration::from_secs(30),
            chaos: Chaos::default(),
            public_base_url: None,
        }
    }
}

/// Shared state of a running emulator.
pub(crate) struct Emulator {
    pub store: store::Store,
    pub config: EmulatorConfig,
    /// Where hosted-flow links point (no trailing slash).
    pub public_base: String,
    /// Wakes the scheduler when a delivery or timer was added.
    pub wake: Notify,
    /// Serialises every state change, so that read-modify-write of an object
    /// (and an idempotency check with the request it guards) is atomic.
    write_lock: Mutex<()>,
    pub http: reqwest::Client,
}

/// Proof that the caller holds the emulator's write lock.
pub(crate) type WriteGuard<'a> = MutexGuard<'a, ()>;

impl Emulator {
    pub async fn write(&self) -> WriteGuard<'_> {
        self.write_lock.lock().await
    }
}

/// A running emulator; dropping it does not stop it, call [`EmulatorHandle::shutdown`].
pub struct EmulatorHandle {
    base_url: String,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    scheduler: JoinHandle<()>,
    emu: Arc<Emulator>,
}

impl EmulatorHandle {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and delivering. Deliveries not yet finished stay pending
    /// in the state file and resume on the next start.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.scheduler.await?;
        self.server.await??;
        self.emu.store.close().await;
        Ok(())
    }
}

/// Serves the emulator on an already-bound listener (port 0 in tests) in the background.
pub async fn spawn(
    listener: tokio::net::TcpListener,
    config: EmulatorConfig,
) -> anyhow::Result<EmulatorHandle> {
    let addr = listener.local_addr()?;
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let base_url = format!("http://{host}:{}", addr.port());
    let public_base = config
        .public_base_url
        .clone()
        .unwrap_or_else(|| base_url.clone())
        .trim_end_matches('/')
        .to_string();

    if !(config.time_scale.is_finite() && config.time_scale > 0.0) {
        anyhow::bail!("time_scale must be a positive number");
    }
    let store = store::Store::open(&config.data_dir).await?;
    // Webhook receivers are usually on this machine: never route them through
    // an HTTP proxy from the environment, and never follow redirects (Stripe
    // counts a 3xx as a failure).
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let emu = Arc::new(Emulator {
        store,
        config,
        public_base,
        wake: Notify::new(),
        write_lock: Mutex::new(()),
        http,
    });

    let (tx, rx) = watch::channel(false);
    let scheduler = tokio::spawn(delivery::run_scheduler(emu.clone(), rx.clone()));
    let app = server::router(emu.clone());
    let mut srx = rx;
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = srx.wait_for(|v| *v).await;
            })
            .await
    });
    tracing::info!(%base_url, "stripe emulator listening");
    Ok(EmulatorHandle {
        base_url,
        addr,
        shutdown: tx,
        server,
        scheduler,
        emu,
    })
}
