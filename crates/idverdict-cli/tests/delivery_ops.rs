//! Delivery as operators see it, with `idverdict serve` as separate processes (each with its
//! own `/metrics`):
//!
//! - two instances on one PostgreSQL database: work one of them stores is taken up by the
//!   other at once, because it is notified (`LISTEN`/`NOTIFY`) — both poll only hourly here;
//! - a callback URL that keeps failing is paused, shows in `/metrics`, the API and
//!   `idverdict reactions`, and is resumed by the operator with nothing lost.
//!
//! Waits are bounded polls, never timing assertions.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use common::{now, ServeProcess, BIN};
use idverdict::synth::{self, Kind, Spec};
use serde_json::Value;
use test_support::{both_backends, Backend, TestDb};

const SECRET: &str = "whsec_delivery_ops_secret";
const TOKEN: &str = "delivery-ops-token-0123456789";
const CALLBACK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const PATIENCE: Duration = Duration::from_secs(60);

/// A callback receiver: answers `status` (changeable) and counts arrivals per `webhook-id`.
#[derive(Clone, Default)]
struct Receiver {
    status: Arc<AtomicU16>,
    arrivals: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    async fn start(status: u16) -> (String, Receiver) {
        let r = Receiver::default();
        r.status.store(status, Ordering::SeqCst);
        let state = r.clone();
        let app = axum::Router::new().route(
            "/cb",
            axum::routing::post(move |headers: HeaderMap| {
                let state = state.clone();
                async move {
                    let id = headers
                        .get("webhook-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    state.arrivals.lock().unwrap().push(id);
                    StatusCode::from_u16(state.status.load(Ordering::SeqCst)).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}/cb"), r)
    }

    fn arrivals(&self) -> Vec<String> {
        self.arrivals.lock().unwrap().clone()
    }
}

/// A running `idverdict serve` child (killed when dropped) and a client for it.
struct Serve {
    /// Held for its life: dropping it kills the child.
    _process: ServeProcess,
    base: String,
    http: reqwest::Client,
}

impl Serve {
    /// Start on a free port with these variables (plus the secret, the token and the
    /// database).
    async fn start(db: &TestDb, data: &str, envs: &[(&str, &str)]) -> Serve {
        let data = db.dir.path().join(data).display().to_string();
        let mut all = vec![
            ("IDVERDICT_LISTEN", "127.0.0.1:0"),
            ("DATABASE_URL", db.url.as_str()),
            ("IDVERDICT_DATA_DIR", data.as_str()),
            ("STRIPE_WEBHOOK_SECRET", SECRET),
            ("IDVERDICT_API_TOKEN", TOKEN),
            ("IDVERDICT_ALLOW_PRIVATE_TARGETS", "on"),
            ("IDVERDICT_CALLBACK_SECRETS", CALLBACK_SECRET),
        ];
        all.extend_from_slice(envs);
        let process = ServeProcess::start(&[], &all);
        Serve {
            base: process.base.clone(),
            _process: process,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        }
    }

    async fn deliver(&self, body: &[u8]) -> u16 {
        self.http
            .post(format!("{}/webhook", self.base))
            .header(
                "Stripe-Signature",
                stripe_webhook::sign(body, SECRET, now()),
            )
            .body(body.to_vec())
            .send()
            .await
            .expect("webhook")
            .status()
            .as_u16()
    }

    async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Every sample of `/metrics`, by series with its labels (`name{a="b"}`).
    async fn metrics(&self) -> HashMap<String, f64> {
        let text = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                Some((series.to_string(), value.parse().ok()?))
            })
            .collect()
    }

    async fn metric(&self, series: &str) -> f64 {
        self.metrics().await.get(series).copied().unwrap_or(0.0)
    }
}

/// `idverdict <args>` against the same database; (success, stdout, stderr).
fn cli(db: &TestDb, envs: &[(&str, &str)], args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &db.url)
        .env("IDVERDICT_DATA_DIR", db.dir.path().join("cli"))
        .env("STRIPE_WEBHOOK_SECRET", SECRET)
        .env("IDVERDICT_API_TOKEN", TOKEN)
        .env("IDVERDICT_CALLBACK_SECRETS", CALLBACK_SECRET)
        .envs(envs.iter().copied())
        .output()
        .expect("run idverdict");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn wait_for<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A Stripe API that accepts connections and never answers: an instance configured with it
/// is stuck fetching the latest sessions before each batch (for minutes: Stripe's timeout
/// and retries), so the events it stores must be applied by the other instance.
async fn unresponsive_stripe() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}")
}

/// Two instances on one database, both polling only once an hour. A webhook accepted by A
/// (whose processor is stuck on an unresponsive Stripe API) is applied by B and its callback
/// sent, and a redelivery asked for by `idverdict reactions redeliver` (a third process) goes
/// out: both only because the instances were notified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instance_takes_up_new_work_at_once_when_notified() {
    let db = TestDb::named(Backend::Postgres, "idv_notify").await;
    let (callback, receiver) = Receiver::start(200).await;
    let stripe = unresponsive_stripe().await;
    let common = [
        ("IDVERDICT_CALLBACK_URLS", callback.as_str()),
        ("IDVERDICT_POLL_INTERVAL", "1h"),
    ];
    let mut a_env = common.to_vec();
    a_env.extend([
        ("STRIPE_API_KEY", "sk_test_unresponsive"),
        ("STRIPE_API_BASE", stripe.as_str()),
        ("IDVERDICT_RECONCILE", "off"),
    ]);
    let a = Serve::start(&db, "a", &a_env).await;
    let b = Serve::start(&db, "b", &common).await;
    let events = r#"idverdict_notifications_received_total{channel="idverdict_events"}"#;
    let reactions = r#"idverdict_notifications_received_total{channel="idverdict_reactions"}"#;
    assert_eq!(b.metric("idverdict_events_processed_total").await, 0.0);
    // B answers HTTP before its listener has connected; an event stored before that is
    // picked up by the wake-up on connecting, not by a notification.
    wait_for("B never listened for notifications", || async {
        b.metric("idverdict_notifications_listening").await == 1.0
    })
    .await;

    let mut spec = Spec::new(Kind::Verified, "vs_1notify", now());
    spec.user_ref = Some("user_notify".into());
    assert_eq!(a.deliver(&synth::event_bytes(&spec)).await, 200);
    wait_for("B never applied the event A stored", || async {
        b.api(reqwest::Method::GET, "/v1/users/user_notify", None)
            .await
            .1["state"]
            == "verified"
    })
    .await;
    wait_for("the callback never arrived", || async {
        !receiver.arrivals().is_empty()
    })
    .await;
    assert_eq!(b.metric("idverdict_events_processed_total").await, 1.0);
    assert_eq!(a.metric("idverdict_events_processed_total").await, 0.0);
    assert!(b.metric(events).await >= 1.0, "B was not notified");

    // The operator replays the callback from the command line.
    let id = receiver.arrivals()[0].clone();
    let before = b.metric(reactions).await + a.metric(reactions).await;
    let (ok, out, err) = cli(&db, &common, &["reactions", "redeliver", &id]);
    assert!(ok, "{out}{err}");
    wait_for("the redelivery never went out", || async {
        receiver.arrivals().iter().filter(|i| **i == id).count() == 2
    })
    .await;
    assert!(b.metric(reactions).await + a.metric(reactions).await > before);
}

/// A URL that fails every attempt is paused after `callbacks.pause_after`; `/metrics`, the
/// API and `idverdict reactions` show it, nothing is attempted meanwhile, and enabling it
/// (through the API) sends what waited, once.
async fn a_paused_callback_url_is_shown_everywhere_and_resumed(backend: Backend) {
    let db = TestDb::named(backend, "idv_pause").await;
    let (callback, receiver) = Receiver::start(503).await;
    let envs = [
        ("IDVERDICT_CALLBACK_URLS", callback.as_str()),
        ("IDVERDICT_CALLBACK_PAUSE_AFTER", "500ms"),
        ("IDVERDICT_RETRY_SCHEDULE", "100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms"),
    ];
    let serve = Serve::start(&db, "serve", &envs).await;
    for n in 0..3 {
        let mut spec = Spec::new(Kind::Verified, &format!("vs_1pause{n}"), now());
        spec.user_ref = Some(format!("user_pause{n}"));
        assert_eq!(serve.deliver(&synth::event_bytes(&spec)).await, 200);
    }
    wait_for("the URL was never paused", || async {
        let (_, t) = serve
            .api(reqwest::Method::GET, "/v1/reactions/targets", None)
            .await;
        t["data"][0]["state"] == "paused"
    })
    .await;
    let (_, t) = serve
        .api(reqwest::Method::GET, "/v1/reactions/targets", None)
        .await;
    let target = &t["data"][0];
    assert_eq!(target["url"], callback.as_str());
    assert_eq!(target["waiting"], 3);
    assert_eq!(target["configured"], true);
    assert!(target["last_error"].as_str().unwrap().contains("HTTP 503"));
    wait_for("/metrics never showed the paused URL", || async {
        serve.metric("idverdict_callback_targets_paused").await == 1.0
            && serve.metric("idverdict_reactions_held").await == 3.0
    })
    .await;
    assert_eq!(
        serve.metric("idverdict_callback_target_pauses_total").await,
        1.0
    );

    // The CLI says so too.
    let (ok, out, err) = cli(&db, &envs, &["reactions", "list"]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("PAUSED callback URL {callback}")),
        "{out}"
    );
    assert_eq!(out.matches(" held ").count(), 3, "{out}");
    let (ok, out, err) = cli(&db, &envs, &["reactions", "targets", "list", "--json"]);
    assert!(ok, "{err}");
    let listed: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(listed[0]["state"], "paused");

    // Paused: nothing more is attempted.
    let attempts = receiver.arrivals().len();
    let (_, t) = serve
        .api(reqwest::Method::GET, "/v1/reactions/targets", None)
        .await;
    assert_eq!(t["data"][0]["state"], "paused");
    assert_eq!(receiver.arrivals().len(), attempts);

    // Bad input is refused precisely.
    let (status, e) = serve
        .api(
            reqwest::Method::POST,
            "/v1/reactions/targets/enable",
            Some(serde_json::json!({"url": "https://nowhere.test/cb"})),
        )
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (404, Some("unknown_target"))
    );
    let (status, _) = serve
        .api(
            reqwest::Method::POST,
            "/v1/reactions/targets/enable",
            Some(serde_json::json!({"address": callback})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, e) = serve
        .api(
            reqwest::Method::POST,
            "/v1/reactions/targets/enable",
            Some(serde_json::json!({"url": format!("{callback}\u{0}")})),
        )
        .await;
    // A NUL in any JSON body is refused before the route looks at it.
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("invalid_text"))
    );
    let (status, _) = serve
        .http
        .post(format!("{}/v1/reactions/targets/enable", serve.base))
        .json(&serde_json::json!({"url": callback}))
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(status, 401, "the route needs the API token");

    // Fixed; the operator enables it.
    receiver.status.store(200, Ordering::SeqCst);
    let (status, enabled) = serve
        .api(
            reqwest::Method::POST,
            "/v1/reactions/targets/enable",
            Some(serde_json::json!({"url": callback})),
        )
        .await;
    assert_eq!(status, 200, "{enabled}");
    assert_eq!(enabled["requeued"]["pending"], 3);
    wait_for("the held reactions never went out", || async {
        let (_, t) = serve
            .api(reqwest::Method::GET, "/v1/reactions/targets", None)
            .await;
        t["data"][0]["waiting"] == 0
    })
    .await;
    let after = &receiver.arrivals()[attempts..];
    let unique: std::collections::HashSet<&String> = after.iter().collect();
    assert_eq!((after.len(), unique.len()), (3, 3), "{after:?}");
    let (ok, _, err) = cli(&db, &envs, &["reactions", "targets", "enable", &callback]);
    assert!(!ok);
    assert!(err.contains("is not paused (it is healthy)"), "{err}");
}
both_backends!(a_paused_callback_url_is_shown_everywhere_and_resumed);
