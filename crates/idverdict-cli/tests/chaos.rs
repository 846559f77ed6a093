//! Chaos: `idverdict serve` is killed with SIGKILL again and again while the Stripe emulator
//! delivers (with duplicates, reorders and delays on) and a slow callback receiver counts
//! `webhook-id`s. Afterwards nothing the emulator sent is missing, every session and user
//! reads back as driven, every decision reached the app, and no decision reached it under
//! two different ids (a resend after a crash carries the same `webhook-id`). On SQLite and
//! on PostgreSQL.
//!
//! Waits are bounded polls, never timing assertions; the pauses between kills only spread
//! them over the run.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use common::ServeProcess;
use idverdict::store::{ReactionFilter, Store};
use rand::Rng;
use serde_json::Value;
use stripe_emulator::{Chaos, EmulatorConfig, EmulatorHandle};
use test_support::{both_backends, Backend, TestDb};

const TOKEN: &str = "chaos-api-token-0123456789";
const KEY: &str = "sk_test_chaos";
const CALLBACK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const KILLS: usize = 8;
const EVENTS: &[&str] = &[
    "identity.verification_session.created",
    "identity.verification_session.processing",
    "identity.verification_session.verified",
    "identity.verification_session.requires_input",
    "identity.verification_session.canceled",
    "identity.verification_session.redacted",
];
const USERS: usize = 30;
/// Bound of every wait (two cores shared with other builds).
const PATIENCE: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------- the emulator

struct Emu {
    handle: Option<EmulatorHandle>,
    base: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Emu {
    async fn start() -> Emu {
        let dir = tempfile::tempdir().expect("temp dir");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind emulator");
        let handle = stripe_emulator::spawn(
            listener,
            EmulatorConfig {
                data_dir: dir.path().to_path_buf(),
                // Retries start after ~30 ms and double: a dead serve is retried quickly.
                time_scale: 0.0005,
                processing_delay: Duration::from_millis(50),
                delivery_timeout: Duration::from_secs(10),
                chaos: Chaos {
                    duplicate: 0.2,
                    reorder: 0.2,
                    delay: 0.2,
                    distinct_duplicate: 0.1,
                    max_delay: Duration::from_millis(200),
                    reorder_window: Duration::from_millis(200),
                },
                public_base_url: None,
            },
        )
        .await
        .expect("spawn emulator");
        Emu {
            base: handle.base_url().to_string(),
            handle: Some(handle),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            _dir: dir,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, form: &[(&str, &str)]) -> Value {
        let res = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(KEY)
            .form(form)
            .send()
            .await
            .expect("emulator request");
        let status = res.status();
        let body: Value = res.json().await.expect("emulator JSON");
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Value {
        self.call(reqwest::Method::POST, path, form).await
    }

    /// Every event id the emulator emitted.
    async fn event_ids(&self) -> HashSet<String> {
        let mut ids = HashSet::new();
        let mut after: Option<String> = None;
        loop {
            let path = match &after {
                Some(a) => format!("/v1/events?limit=100&starting_after={a}"),
                None => "/v1/events?limit=100".to_string(),
            };
            let page = self.call(reqwest::Method::GET, &path, &[]).await;
            let data = page["data"].as_array().expect("events");
            ids.extend(
                data.iter()
                    .filter_map(|e| e["id"].as_str().map(String::from)),
            );
            match (page["has_more"].as_bool(), data.last()) {
                (Some(true), Some(last)) => after = last["id"].as_str().map(String::from),
                _ => return ids,
            }
        }
    }

    async fn delivery_log(&self) -> Value {
        self.http
            .get(format!("{}/_emulator/deliveries?limit=10000", self.base))
            .send()
            .await
            .expect("delivery log")
            .json()
            .await
            .expect("delivery log JSON")
    }

    /// Deliveries not finished yet (a primary delivery retries until it succeeds).
    async fn unfinished_deliveries(&self) -> usize {
        self.delivery_log().await["deliveries"]
            .as_array()
            .expect("deliveries")
            .iter()
            .filter(|d| {
                d["state"] == "pending"
                    || d["state"] == "sending"
                    || (d["kind"] == "primary" && d["state"] != "succeeded")
            })
            .count()
    }
}

// ---------------------------------------------------------- the callback receiver

/// Per decision key, every `webhook-id` it arrived under, and how many requests came.
#[derive(Default)]
struct Callbacks {
    ids_by_key: BTreeMap<String, HashSet<String>>,
    requests: usize,
}

/// Answers 200 after a pause, so that kills land while callbacks are in flight.
async fn start_receiver() -> (SocketAddr, Arc<Mutex<Callbacks>>) {
    let seen = Arc::new(Mutex::new(Callbacks::default()));
    let state = seen.clone();
    let app = axum::Router::new().route(
        "/cb",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let state = state.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let id = headers
                    .get("webhook-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let key = serde_json::from_slice::<Value>(&body).unwrap_or_default()["key"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let mut s = state.lock().unwrap();
                s.requests += 1;
                s.ids_by_key.entry(key).or_default().insert(id);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, seen)
}

// ------------------------------------------------------------------- serve

/// `idverdict serve` on a fixed port, so the emulator's endpoint stays valid across kills.
struct Serve {
    envs: Vec<(String, String)>,
    addr: SocketAddr,
    /// Dropping it kills the child with SIGKILL.
    process: Option<ServeProcess>,
    http: reqwest::Client,
}

impl Serve {
    async fn start(envs: Vec<(String, String)>, addr: SocketAddr) -> Serve {
        let mut s = Serve {
            envs,
            addr,
            process: None,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        };
        s.spawn().await;
        s
    }

    /// Start the child and wait for its listening line (off the runtime: the emulator keeps
    /// delivering meanwhile).
    async fn spawn(&mut self) {
        let envs = self.envs.clone();
        let process = tokio::task::spawn_blocking(move || {
            let pairs: Vec<(&str, &str)> =
                envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            ServeProcess::start(&[], &pairs)
        })
        .await
        .expect("start serve");
        self.process = Some(process);
    }

    /// SIGKILL: no shutdown, requests and deliveries in flight are cut.
    fn kill(&mut self) {
        self.process = None;
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let res = self
            .http
            .get(format!("http://{}{path}", self.addr))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

// ------------------------------------------------------------------ scenarios

/// What is done to a user's session, and where it must end.
struct Plan {
    steps: &'static [Step],
    status: &'static str,
    outcome: &'static str,
    failed_attempts: u64,
}

#[derive(Clone, Copy)]
enum Step {
    Verify,
    Fail(&'static str),
    Cancel,
}

const PLANS: &[Plan] = &[
    Plan {
        steps: &[Step::Verify],
        status: "verified",
        outcome: "verified",
        failed_attempts: 0,
    },
    Plan {
        steps: &[Step::Fail("document_expired")],
        status: "requires_input",
        outcome: "retry_allowed",
        failed_attempts: 1,
    },
    Plan {
        steps: &[Step::Fail("consent_declined")],
        status: "requires_input",
        outcome: "alternative_required",
        failed_attempts: 1,
    },
    Plan {
        steps: &[Step::Fail("document_unverified_other"), Step::Verify],
        status: "verified",
        outcome: "verified",
        failed_attempts: 1,
    },
    Plan {
        steps: &[Step::Fail("selfie_face_mismatch")],
        status: "requires_input",
        outcome: "needs_review",
        failed_attempts: 1,
    },
    Plan {
        steps: &[Step::Cancel],
        status: "canceled",
        outcome: "canceled",
        failed_attempts: 0,
    },
];

/// Create one session per user and drive it through its plan, a little apart, so that the
/// deliveries spread over the kills. Returns (session id, user, plan index).
async fn drive(emu: &Emu, run: &str) -> Vec<(String, String, usize)> {
    let mut out = Vec::new();
    for u in 0..USERS {
        let user = format!("user_{run}_{u}");
        let session = emu
            .post(
                "/v1/identity/verification_sessions",
                &[("type", "document"), ("client_reference_id", &user)],
            )
            .await;
        let id = session["id"].as_str().expect("session id").to_string();
        let p = u % PLANS.len();
        for step in PLANS[p].steps {
            let helpers = format!("/v1/test_helpers/identity/verification_sessions/{id}");
            match step {
                Step::Verify => emu.post(&format!("{helpers}/verify"), &[]).await,
                Step::Fail(code) => {
                    emu.post(
                        &format!("{helpers}/require_input"),
                        &[("last_error[code]", code)],
                    )
                    .await
                }
                Step::Cancel => {
                    emu.post(
                        &format!("/v1/identity/verification_sessions/{id}/cancel"),
                        &[],
                    )
                    .await
                }
            };
        }
        out.push((id, user, p));
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    out
}

async fn kill_repeatedly_while_the_emulator_delivers(backend: Backend) {
    let db = TestDb::named(backend, "idv_chaos").await;
    let emu = Emu::start().await;
    let (receiver_addr, callbacks) = start_receiver().await;
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let url = format!("http://{addr}/webhook");
    let keys: Vec<String> = (0..EVENTS.len())
        .map(|i| format!("enabled_events[{i}]"))
        .collect();
    let mut form = vec![("url", url.as_str())];
    form.extend(keys.iter().map(String::as_str).zip(EVENTS.iter().copied()));
    let endpoint = emu.post("/v1/webhook_endpoints", &form).await;
    let secret = endpoint["secret"].as_str().expect("secret").to_string();

    let data = db.dir.path().join("serve");
    let envs: Vec<(String, String)> = [
        ("IDVERDICT_LISTEN", addr.to_string()),
        ("DATABASE_URL", db.url.clone()),
        ("IDVERDICT_DATA_DIR", data.display().to_string()),
        ("STRIPE_WEBHOOK_SECRET", secret),
        ("IDVERDICT_API_TOKEN", TOKEN.to_string()),
        (
            "IDVERDICT_CALLBACK_URLS",
            format!("http://{receiver_addr}/cb"),
        ),
        ("IDVERDICT_CALLBACK_SECRETS", CALLBACK_SECRET.to_string()),
        ("IDVERDICT_ALLOW_PRIVATE_TARGETS", "on".to_string()),
        (
            "IDVERDICT_RETRY_SCHEDULE",
            "100ms,200ms,400ms,1s,2s,5s".to_string(),
        ),
        ("IDVERDICT_LOG", "warn".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut serve = Serve::start(envs, addr).await;

    let run = idverdict::config::random_token(6).to_lowercase();
    let driving = drive(&emu, &run);
    let killing = async {
        for _ in 0..KILLS {
            let pause = rand::thread_rng().gen_range(100..400);
            tokio::time::sleep(Duration::from_millis(pause)).await;
            serve.kill();
            serve.spawn().await;
        }
    };
    let (created, ()) = tokio::join!(driving, killing);

    // Settle: the emulator has delivered everything, idverdict applied it and sent every
    // reaction.
    let store = Store::connect(&db.url).await.expect("store");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let unfinished = emu.unfinished_deliveries().await;
        let (_, pending_events) = store.event_counts().await.expect("counts");
        let waiting = store
            .list_reactions(&ReactionFilter {
                limit: Some(10_000),
                ..Default::default()
            })
            .await
            .expect("reactions")
            .iter()
            .filter(|r| r.state != "delivered")
            .count();
        if unfinished == 0 && pending_events == 0 && waiting == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not settled: {unfinished} deliveries unfinished, {pending_events} events unprocessed, {waiting} reactions not delivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // No acknowledged event is lost: everything the emulator emitted (it retries each until
    // a 2xx) is stored, once.
    let emitted = emu.event_ids().await;
    let (stored, _) = store.event_counts().await.unwrap();
    assert_eq!(stored as usize, emitted.len(), "stored vs emitted events");
    // The kills really hit deliveries: some attempts found serve dead and were retried.
    let failed_attempts = emu.delivery_log().await["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .filter(|a| a["success"] == false)
        .count();
    assert!(failed_attempts > 0, "no delivery ever found serve down");

    // Every session and user ends as driven.
    let mut errors = Vec::new();
    for (id, user, p) in &created {
        let plan = &PLANS[*p];
        let (status, s) = serve.get(&format!("/v1/verification_sessions/{id}")).await;
        let got = (
            s["status"].clone(),
            s["outcome"].clone(),
            s["failed_attempts"].clone(),
        );
        let want = (
            Value::from(plan.status),
            Value::from(plan.outcome),
            Value::from(plan.failed_attempts),
        );
        if status != 200 || got != want {
            errors.push(format!("{id}: HTTP {status} {got:?}, want {want:?}"));
        }
        let (status, u) = serve.get(&format!("/v1/users/{user}")).await;
        if status != 200 || u["outcome"] != plan.outcome || u["current_session"] != id.as_str() {
            errors.push(format!("{user}: HTTP {status} {u}"));
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));

    // Every decision reached the app, each under one id only: the id of its reaction.
    let reactions = store
        .list_reactions(&ReactionFilter {
            limit: Some(10_000),
            ..Default::default()
        })
        .await
        .unwrap();
    let expected: HashMap<&str, &str> = reactions
        .iter()
        .map(|r| (r.decision_key.as_str(), r.id.as_str()))
        .collect();
    assert_eq!(expected.len(), reactions.len(), "one callback per decision");
    assert!(reactions.len() >= USERS, "every user had a decision");
    let (ids_by_key, requests) = {
        let seen = callbacks.lock().unwrap();
        (seen.ids_by_key.clone(), seen.requests)
    };
    for (key, ids) in &ids_by_key {
        assert_eq!(ids.len(), 1, "decision {key} delivered under {ids:?}");
        let id = ids.iter().next().unwrap();
        assert_eq!(
            expected.get(key.as_str()),
            Some(&id.as_str()),
            "decision {key} arrived as {id}"
        );
    }
    assert_eq!(
        ids_by_key.len(),
        expected.len(),
        "decisions that never reached the app"
    );
    eprintln!(
        "chaos ({backend:?}): {KILLS} kills, {} events ({failed_attempts} failed deliveries), {} decisions, {} callback requests",
        emitted.len(),
        expected.len(),
        requests
    );
    store.close().await;
    drop(serve);
    if let Some(handle) = emu.handle {
        handle.shutdown().await.expect("emulator shutdown");
    }
}
both_backends!(kill_repeatedly_while_the_emulator_delivers);
