//! The whole loop on a laptop: in dev mode with no Stripe key, `idverdict serve` also runs the
//! embedded Stripe emulator, registers its own webhook URL there and trusts that endpoint's
//! signing secret, so a newcomer can create a verification session, open its `url`, pick an
//! outcome and watch idverdict record it — with `cargo run --release -- serve` alone.
//!
//! The endpoint is created once and reused across restarts: its id and secret are kept next to
//! the emulator's state (`<data_dir>/emulator/serve-endpoint.json`), because Stripe (and the
//! emulator) reveal a secret only in the create response. If the emulator's state was wiped,
//! the stored id is unknown there and a new endpoint is created.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use idverdict::data_dir::DataDirLock;
use serde_json::Value;
use stripe_emulator::{EmulatorConfig, EmulatorHandle};
use stripe_webhook::EventType;

use super::stripe_http::{array_form, StripeHttp};

/// Where the emulator listens unless told otherwise: stripe-mock's port, which the docs and
/// SDK examples use. Taken only if free; otherwise any free port (see [`bind`]).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:12111";

/// Any `sk_test_…` key works against the emulator; this is the one the how-to shows.
pub const DEV_KEY: &str = "sk_test_dev";

const ENDPOINT_FILE: &str = "serve-endpoint.json";

/// A running embedded emulator and the endpoint registered for `serve`.
pub struct DevLoop {
    emulator: EmulatorHandle,
    /// The emulator's state directory is ours while it runs (no `idverdict emulate` on it).
    _lock: DataDirLock,
    endpoint_id: String,
    /// The endpoint's `whsec_…` secret: add it to serve's webhook secrets before building.
    pub secret: String,
}

/// True when `serve` should run the embedded emulator: dev mode (nothing configured) and no
/// Stripe key (a key means the developer works against real Stripe or their own emulator).
pub fn wanted(config: &idverdict::Config) -> bool {
    config.dev_mode && config.stripe.is_none()
}

/// Bind the emulator's listener. An explicit address must be available; the default
/// (127.0.0.1:12111) falls back to a free port, so a second `serve` or a running
/// `idverdict emulate` does not stop `serve` from starting.
async fn bind(explicit: Option<&str>) -> anyhow::Result<tokio::net::TcpListener> {
    if let Some(addr) = explicit {
        return tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (IDVERDICT_EMULATOR_LISTEN)"));
    }
    match tokio::net::TcpListener::bind(DEFAULT_LISTEN).await {
        Ok(l) => Ok(l),
        Err(e) => {
            tracing::info!(default = DEFAULT_LISTEN, error = %e, "emulator port busy; using a free port");
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .context("cannot listen on 127.0.0.1 for the emulator")
        }
    }
}

impl DevLoop {
    /// Start the emulator with its state in `<data_dir>/emulator` and make sure an endpoint
    /// for serve's `webhook_url` exists there (re-pointed on every start: the port may change).
    pub async fn start(
        data_dir: &Path,
        listen: Option<&str>,
        webhook_url: &str,
    ) -> anyhow::Result<DevLoop> {
        let emu_dir = data_dir.join("emulator");
        let lock = DataDirLock::acquire(&emu_dir, "serve")?;
        let listener = bind(listen).await?;
        let emulator = stripe_emulator::spawn(
            listener,
            EmulatorConfig {
                data_dir: emu_dir.clone(),
                ..EmulatorConfig::default()
            },
        )
        .await
        .context("starting the embedded Stripe emulator")?;
        let api = StripeHttp::new(emulator.base_url(), DEV_KEY)?;
        match ensure_endpoint(&api, &emu_dir, webhook_url).await {
            Ok((endpoint_id, secret)) => Ok(DevLoop {
                emulator,
                _lock: lock,
                endpoint_id,
                secret,
            }),
            Err(e) => {
                if let Err(stop) = emulator.shutdown().await {
                    tracing::warn!(error = %stop, "stopping the emulator");
                }
                Err(e)
            }
        }
    }

    pub fn base_url(&self) -> &str {
        self.emulator.base_url()
    }

    pub fn endpoint_id(&self) -> &str {
        &self.endpoint_id
    }

    /// Stop serving and delivering; unfinished deliveries resume on the next start.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.emulator.shutdown().await
    }
}

/// The webhook URL the emulator should call for a receiver bound at `addr`: an unspecified
/// bind address (0.0.0.0 / ::) is reached through loopback, since both run on this machine.
pub fn webhook_url(addr: SocketAddr, path: &str) -> String {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    format!("http://{}{path}", SocketAddr::new(ip, addr.port()))
}

/// Reuse the stored endpoint (re-pointed and re-enabled, with the six events), or create one.
async fn ensure_endpoint(
    api: &StripeHttp,
    emu_dir: &Path,
    url: &str,
) -> anyhow::Result<(String, String)> {
    let file = emu_dir.join(ENDPOINT_FILE);
    if let Some((id, secret)) = read_stored(&file) {
        let mut form = vec![
            ("url".to_string(), url.to_string()),
            // An endpoint that failed for a whole retry horizon (serve stopped for days) was
            // disabled by the emulator, as Stripe does; serve is back, so enable it again.
            ("disabled".to_string(), "false".to_string()),
        ];
        form.extend(events_form());
        match api
            .post(&format!("/v1/webhook_endpoints/{id}"), &form)
            .await
        {
            Ok(_) => {
                tracing::info!(endpoint = %id, "reusing the emulator webhook endpoint");
                return Ok((id, secret));
            }
            Err(e) if e.is_not_found() => {
                tracing::info!(endpoint = %id, "stored emulator endpoint is gone; creating a new one");
            }
            Err(e) => return Err(e).context("updating the emulator's webhook endpoint"),
        }
    }
    let mut form = vec![
        ("url".to_string(), url.to_string()),
        (
            "description".to_string(),
            "idverdict serve (embedded dev loop)".to_string(),
        ),
    ];
    form.extend(events_form());
    let created = api
        .post("/v1/webhook_endpoints", &form)
        .await
        .context("registering serve's webhook endpoint at the emulator")?;
    let id = created["id"].as_str().unwrap_or_default().to_string();
    let secret = created["secret"].as_str().unwrap_or_default().to_string();
    if !id.starts_with("we_") || !secret.starts_with("whsec_") {
        anyhow::bail!("the emulator answered a webhook endpoint without an id or secret");
    }
    store(&file, &id, &secret).with_context(|| format!("cannot write {}", file.display()))?;
    tracing::info!(endpoint = %id, "registered serve's webhook endpoint at the emulator");
    Ok((id, secret))
}

/// The Identity events idverdict consumes, each named: `*` does not cover `redacted`, at
/// Stripe as in the emulator.
pub fn events_form() -> Vec<(String, String)> {
    let events: Vec<&str> = EventType::IDENTITY.iter().map(|e| e.as_str()).collect();
    array_form("enabled_events", &events)
}

fn read_stored(file: &Path) -> Option<(String, String)> {
    let text = std::fs::read_to_string(file).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    let id = v["id"].as_str()?.to_string();
    let secret = v["secret"].as_str()?.to_string();
    (id.starts_with("we_") && secret.starts_with("whsec_")).then_some((id, secret))
}

/// Written owner-only: it holds a signing secret.
fn store(file: &Path, id: &str, secret: &str) -> std::io::Result<()> {
    let body = serde_json::json!({ "id": id, "secret": secret }).to_string();
    idverdict::data_dir::write_private(file, body.as_bytes())
}
