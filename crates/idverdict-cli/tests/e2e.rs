//! End to end: the embedded Stripe emulator delivers signed webhooks to a real idverdict
//! service, with every chaos switch on (duplicates, distinct duplicates, reorders, delays),
//! on SQLite and on PostgreSQL. Sessions are created and driven to every kind of outcome
//! through the emulator's API, exactly as an integration and the Stripe CLI would; the
//! verdict is read back through idverdict's own API.
//!
//! Waits are bounded polls, never timing assertions: the bounds only keep a broken build
//! from hanging the suite.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use idverdict::config::{Config, Sources};
use idverdict::store::Store;
use serde_json::Value;
use stripe_emulator::{Chaos, EmulatorConfig, EmulatorHandle};
use tokio::sync::oneshot;

const TOKEN: &str = "e2e-api-token-0123456789";
const KEY: &str = "sk_test_e2e";
const EVENTS: &[&str] = &[
    "identity.verification_session.created",
    "identity.verification_session.processing",
    "identity.verification_session.verified",
    "identity.verification_session.requires_input",
    "identity.verification_session.canceled",
    "identity.verification_session.redacted",
];
/// Upper bound for every wait (generous: two cores shared with other builds).
const PATIENCE: Duration = Duration::from_secs(240);

use test_support::{both_backends, Backend, TestDb};

// ---------------------------------------------------------------------------------------------
// Harness: a fresh database, the emulator, the service.

/// The emulator with every chaos switch on and a compressed retry schedule.
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
                // First retry after 30 ms, doubling; the 3-day horizon becomes ~2 minutes.
                time_scale: 0.0005,
                processing_delay: Duration::from_millis(100),
                delivery_timeout: Duration::from_secs(10),
                chaos: Chaos {
                    duplicate: 0.25,
                    reorder: 0.25,
                    delay: 0.25,
                    distinct_duplicate: 0.25,
                    max_delay: Duration::from_millis(300),
                    reorder_window: Duration::from_millis(300),
                },
                public_base_url: None,
            },
        )
        .await
        .expect("spawn emulator");
        let base = handle.base_url().to_string();
        Emu {
            handle: Some(handle),
            base,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            _dir: dir,
        }
    }

    async fn post(&self, path: &str, form: &[(String, String)]) -> Value {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {KEY}"))
            .form(form)
            .send()
            .await
            .expect("emulator request");
        let status = res.status();
        let body: Value = res.json().await.expect("emulator JSON");
        assert!(status.is_success(), "POST {path}: {status} {body}");
        body
    }

    async fn get(&self, path: &str) -> Value {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {KEY}"))
            .send()
            .await
            .expect("emulator request");
        let status = res.status();
        let body: Value = res.json().await.expect("emulator JSON");
        assert!(status.is_success(), "GET {path}: {status} {body}");
        body
    }

    /// Register a webhook endpoint for the six identity events; returns (id, secret).
    async fn create_endpoint(&self, url: &str) -> (String, String) {
        let mut form = vec![("url".to_string(), url.to_string())];
        for (i, e) in EVENTS.iter().enumerate() {
            form.push((format!("enabled_events[{i}]"), e.to_string()));
        }
        let ep = self.post("/v1/webhook_endpoints", &form).await;
        let id = ep["id"].as_str().expect("endpoint id").to_string();
        let secret = ep["secret"].as_str().expect("endpoint secret").to_string();
        assert!(secret.starts_with("whsec_"));
        (id, secret)
    }

    /// Every event id the emulator has emitted (all are identity events here).
    async fn event_ids(&self) -> HashSet<String> {
        let mut ids = HashSet::new();
        let mut after: Option<String> = None;
        loop {
            let path = match &after {
                Some(a) => format!("/v1/events?limit=100&starting_after={a}"),
                None => "/v1/events?limit=100".to_string(),
            };
            let page = self.get(&path).await;
            let data = page["data"].as_array().expect("list data");
            for e in data {
                ids.insert(e["id"].as_str().expect("event id").to_string());
            }
            match (page["has_more"].as_bool(), data.last()) {
                (Some(true), Some(last)) => after = last["id"].as_str().map(str::to_string),
                _ => return ids,
            }
        }
    }

    /// The delivery log (`/_emulator/deliveries`, no key needed).
    async fn deliveries(&self) -> Value {
        self.http
            .get(format!("{}/_emulator/deliveries?limit=10000", self.base))
            .send()
            .await
            .expect("delivery log")
            .json()
            .await
            .expect("delivery log JSON")
    }

    async fn shutdown(mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await.expect("emulator shutdown");
        }
    }
}

fn config(db: &TestDb, listen: SocketAddr, secret: &str) -> Config {
    let data_dir = db.dir.path().display().to_string();
    let url = db.url.clone();
    let listen = listen.to_string();
    let secret = secret.to_string();
    let env = move |k: &str| -> Option<String> {
        match k {
            "IDVERDICT_LISTEN" => Some(listen.clone()),
            "STRIPE_WEBHOOK_SECRET" => Some(secret.clone()),
            "IDVERDICT_API_TOKEN" => Some(TOKEN.into()),
            "DATABASE_URL" => Some(url.clone()),
            "IDVERDICT_DATA_DIR" => Some(data_dir.clone()),
            _ => None,
        }
    };
    Config::load(&Sources {
        file: None,
        env: &env,
    })
    .expect("config")
}

/// A running idverdict service.
struct Serve {
    addr: SocketAddr,
    http: reqwest::Client,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Serve {
    async fn start(config: &Config) -> Serve {
        let app = idverdict::App::build(config).await.expect("build app");
        let addr = app.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            app.run_until(async {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
        });
        Serve {
            addr,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            stop,
            task,
        }
    }

    fn webhook_url(&self) -> String {
        format!("http://{}/webhook", self.addr)
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

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("server task");
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios: what to do to a session and what idverdict must conclude.

#[derive(Debug, Clone, Copy)]
enum Step {
    Verify,
    Fail(&'static str),
    Cancel,
    Redact,
}

#[derive(Debug, Clone)]
struct Plan {
    steps: Vec<Step>,
    status: &'static str,
    outcome: &'static str,
    failed_attempts: u64,
    redacted: bool,
}

fn plan(steps: &[Step], status: &'static str, outcome: &'static str, failed_attempts: u64) -> Plan {
    Plan {
        steps: steps.to_vec(),
        status,
        outcome,
        failed_attempts,
        redacted: steps.iter().any(|s| matches!(s, Step::Redact)),
    }
}

/// The k-th session's plan. Session 0 is the redacted one; the rest cycle through every
/// kind of outcome (with max_attempts = 3, the default).
fn plan_for(k: usize) -> Plan {
    use Step::*;
    if k == 0 {
        return plan(&[Verify, Redact], "verified", "verified", 0);
    }
    let plans = [
        plan(&[Verify], "verified", "verified", 0),
        plan(
            &[Fail("document_expired")],
            "requires_input",
            "retry_allowed",
            1,
        ),
        plan(
            &[Fail("consent_declined")],
            "requires_input",
            "alternative_required",
            1,
        ),
        plan(
            &[Fail("selfie_face_mismatch")],
            "requires_input",
            "needs_review",
            1,
        ),
        plan(
            &[Fail("document_unverified_other"), Verify],
            "verified",
            "verified",
            1,
        ),
        // Three failures with the same code: a fourth try becomes a manual review. (One code
        // for all three so that the last error does not depend on same-second ordering.)
        plan(
            &[
                Fail("id_number_mismatch"),
                Fail("id_number_mismatch"),
                Fail("id_number_mismatch"),
            ],
            "requires_input",
            "needs_review",
            3,
        ),
        plan(&[Cancel], "canceled", "canceled", 0),
        plan(
            &[Fail("selfie_unverified_other"), Cancel],
            "canceled",
            "canceled",
            1,
        ),
        plan(&[], "requires_input", "awaiting_input", 0),
        plan(
            &[Fail("country_not_supported")],
            "requires_input",
            "alternative_required",
            1,
        ),
    ];
    plans[k % plans.len()].clone()
}

struct Created {
    id: String,
    user: String,
    order: String,
    plan: Plan,
}

/// Create `sessions_per_user` sessions for each of `users` users and drive each through its
/// plan; users run concurrently so that deliveries of different sessions interleave.
async fn create_and_drive(emu: &Emu, run: &str, users: usize, per_user: usize) -> Vec<Created> {
    let drives = (0..users).map(|u| async move {
        let mut out = Vec::new();
        for j in 0..per_user {
            let k = u * per_user + j;
            let user = format!("user_{run}_{u}");
            let order = format!("order_{k}");
            let plan = plan_for(k);
            let session = emu
                .post(
                    "/v1/identity/verification_sessions",
                    &[
                        ("type".to_string(), "document".to_string()),
                        ("client_reference_id".to_string(), user.clone()),
                        ("metadata[order]".to_string(), order.clone()),
                    ],
                )
                .await;
            let id = session["id"].as_str().expect("session id").to_string();
            for step in &plan.steps {
                let helpers = format!("/v1/test_helpers/identity/verification_sessions/{id}");
                let sessions = format!("/v1/identity/verification_sessions/{id}");
                match step {
                    Step::Verify => emu.post(&format!("{helpers}/verify"), &[]).await,
                    Step::Fail(code) => {
                        emu.post(
                            &format!("{helpers}/require_input"),
                            &[("last_error[code]".to_string(), code.to_string())],
                        )
                        .await
                    }
                    Step::Cancel => emu.post(&format!("{sessions}/cancel"), &[]).await,
                    Step::Redact => emu.post(&format!("{sessions}/redact"), &[]).await,
                };
            }
            out.push(Created {
                id,
                user,
                order,
                plan,
            });
        }
        out
    });
    futures::future::join_all(drives)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Wait until the emulator has delivered every event (each primary delivery `succeeded`) and
/// idverdict has processed everything it stored.
async fn wait_until_settled(emu: &Emu, store: &Store) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut last = String::new();
    while tokio::time::Instant::now() < deadline {
        let log = emu.deliveries().await;
        let deliveries = log["deliveries"].as_array().expect("deliveries");
        let unfinished: Vec<&Value> = deliveries
            .iter()
            // A primary delivery retries until it succeeds; a chaos duplicate is one extra
            // send, never retried, so only an unsent one is still to come.
            .filter(|d| {
                d["state"] == "pending"
                    || d["state"] == "sending"
                    || (d["kind"] == "primary" && d["state"] != "succeeded")
            })
            .collect();
        let (_, pending) = store.event_counts().await.expect("event counts");
        if unfinished.is_empty() && !deliveries.is_empty() && pending == 0 {
            return;
        }
        last = format!(
            "{} of {} deliveries unfinished (first: {:?}); {pending} events unprocessed",
            unfinished.len(),
            deliveries.len(),
            unfinished.first()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("not settled in time: {last}");
}

/// Compare every session and user with its plan; returns the differences.
async fn mismatches(serve: &Serve, created: &[Created]) -> Vec<String> {
    let mut errors = Vec::new();
    let mut expected_by_id = BTreeMap::new();
    let mut users: BTreeMap<&str, Vec<&Created>> = BTreeMap::new();
    for c in created {
        expected_by_id.insert(c.id.as_str(), c);
        users.entry(c.user.as_str()).or_default().push(c);
        let (status, s) = serve
            .get(&format!("/v1/verification_sessions/{}", c.id))
            .await;
        if status != 200 {
            errors.push(format!("{}: HTTP {status}", c.id));
            continue;
        }
        let p = &c.plan;
        let mut check = |what: &str, got: &Value, want: Value| {
            if *got != want {
                errors.push(format!(
                    "{} ({:?}): {what} = {got}, want {want}",
                    c.id, p.steps
                ));
            }
        };
        check("status", &s["status"], p.status.into());
        check("outcome", &s["outcome"], p.outcome.into());
        check(
            "failed_attempts",
            &s["failed_attempts"],
            p.failed_attempts.into(),
        );
        check(
            "client_reference_id",
            &s["client_reference_id"],
            c.user.as_str().into(),
        );
        if p.redacted {
            check(
                "redaction",
                &s["redaction"],
                serde_json::json!({"status": "redacted"}),
            );
            check("metadata", &s["metadata"], serde_json::json!({}));
        } else {
            check("redaction", &s["redaction"], Value::Null);
            check(
                "metadata",
                &s["metadata"],
                serde_json::json!({"order": c.order}),
            );
        }
    }
    for (user, sessions) in users {
        let (status, u) = serve.get(&format!("/v1/users/{user}")).await;
        if status != 200 {
            errors.push(format!("user {user}: HTTP {status}"));
            continue;
        }
        let failed: u64 = sessions.iter().map(|c| c.plan.failed_attempts).sum();
        if u["failed_attempts"] != failed {
            errors.push(format!(
                "user {user}: failed_attempts {}, want {failed}",
                u["failed_attempts"]
            ));
        }
        let listed = u["sessions"].as_array().map_or(0, Vec::len);
        if listed != sessions.len() {
            errors.push(format!(
                "user {user}: {listed} sessions, want {}",
                sessions.len()
            ));
        }
        // The user's outcome is that of their newest session, whichever that is.
        let current = u["current_session"].as_str().unwrap_or_default();
        match expected_by_id.get(current) {
            Some(c) if c.user == user => {
                if u["outcome"] != c.plan.outcome {
                    errors.push(format!(
                        "user {user}: outcome {}, want {} (of {current})",
                        u["outcome"], c.plan.outcome
                    ));
                }
            }
            _ => errors.push(format!("user {user}: unexpected current_session {current}")),
        }
    }
    errors
}

/// Everything the emulator emitted was stored once by idverdict, and every session and user
/// reads back as planned.
async fn assert_all_recorded(emu: &Emu, serve: &Serve, store: &Store, created: &[Created]) {
    wait_until_settled(emu, store).await;
    let emitted = emu.event_ids().await;
    let (stored, pending) = store.event_counts().await.expect("event counts");
    assert_eq!(pending, 0);
    assert_eq!(
        stored as usize,
        emitted.len(),
        "idverdict stored {stored} events, the emulator emitted {}",
        emitted.len()
    );
    let errors = mismatches(serve, created).await;
    assert!(
        errors.is_empty(),
        "{} mismatches:\n{}",
        errors.len(),
        errors.join("\n")
    );
}

fn run_id() -> String {
    idverdict::config::random_token(6).to_lowercase()
}

// ---------------------------------------------------------------------------------------------
// Tests

/// 20 users × 2 sessions driven to every outcome, one redacted, all under chaos.
async fn sessions_reach_every_outcome_under_chaos(backend: Backend) {
    let db = TestDb::named(backend, "idv_e2e").await;
    let emu = Emu::start().await;
    // The secret comes with the endpoint and serve needs it at start-up; serve's port is
    // known only once it is bound, so the endpoint is re-pointed afterwards.
    let (endpoint, secret) = emu.create_endpoint("http://127.0.0.1:9/webhook").await;
    let config = config(&db, "127.0.0.1:0".parse().unwrap(), &secret);
    let serve = Serve::start(&config).await;
    emu.post(
        &format!("/v1/webhook_endpoints/{endpoint}"),
        &[("url".to_string(), serve.webhook_url())],
    )
    .await;
    let store = Store::connect(&db.url).await.expect("store");

    let created = create_and_drive(&emu, &run_id(), 20, 2).await;
    assert_eq!(created.len(), 40);
    assert_all_recorded(&emu, &serve, &store, &created).await;

    // Chaos really was on: some event went out more than once.
    let log = emu.deliveries().await;
    let deliveries = log["deliveries"].as_array().expect("deliveries");
    let distinct: HashSet<&str> = deliveries
        .iter()
        .filter_map(|d| d["event"].as_str())
        .collect();
    assert!(deliveries.len() > distinct.len(), "no duplicate delivery");

    store.close().await;
    serve.stop().await;
    emu.shutdown().await;
}
both_backends!(sessions_reach_every_outcome_under_chaos);

/// Sessions are driven while idverdict is down: every delivery fails at first, the emulator
/// retries on its (compressed) schedule, and once idverdict starts everything arrives.
async fn deliveries_that_fail_at_first_arrive_on_retry(backend: Backend) {
    let db = TestDb::named(backend, "idv_e2e").await;
    let emu = Emu::start().await;
    // A port nobody listens on yet (bound and released); serve takes it later.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let (_endpoint, secret) = emu.create_endpoint(&format!("http://{addr}/webhook")).await;

    let created = create_and_drive(&emu, &run_id(), 6, 2).await;
    // Wait (bounded) until every delivery has failed at least once.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let log = emu.deliveries().await;
        let deliveries = log["deliveries"].as_array().expect("deliveries");
        let failed = log["attempts"]
            .as_array()
            .expect("attempts")
            .iter()
            .filter(|a| a["success"] == false)
            .count();
        if !deliveries.is_empty()
            && deliveries
                .iter()
                .all(|d| d["attempts"].as_i64().unwrap_or(0) >= 1)
            && failed >= deliveries.len()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "deliveries were not attempted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = emu.deliveries().await;
    assert!(log["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .all(|a| a["success"] == false));

    let config = config(&db, addr, &secret);
    let serve = Serve::start(&config).await;
    assert_eq!(serve.addr, addr);
    let store = Store::connect(&db.url).await.expect("store");
    assert_all_recorded(&emu, &serve, &store, &created).await;

    store.close().await;
    serve.stop().await;
    emu.shutdown().await;
}
both_backends!(deliveries_that_fail_at_first_arrive_on_retry);

// ---------------------------------------------------------------------------------------------
// `idverdict serve` on its embedded defaults: the binary runs the emulator too.

/// Start `idverdict serve` in dev mode (nothing configured, no Stripe key) and read its
/// banner: every line up to the how-to's last `curl`.
fn serve_dev(data: &std::path::Path) -> (std::process::Child, Vec<String>) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_idverdict"))
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env_remove("STRIPE_WEBHOOK_SECRET")
        .env_remove("IDVERDICT_API_TOKEN")
        .env_remove("STRIPE_API_KEY")
        .env_remove("IDVERDICT_NO_EMULATOR")
        .env("IDVERDICT_LISTEN", "127.0.0.1:0")
        .env("IDVERDICT_EMULATOR_LISTEN", "127.0.0.1:0")
        .env("IDVERDICT_DATA_DIR", data)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn serve");
    let mut reader = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut lines = Vec::new();
    while lines.len() < 20 {
        let mut line = String::new();
        if reader.read_line(&mut line).expect("read stdout") == 0 {
            break;
        }
        let done = line.contains("/v1/users/");
        lines.push(line.trim_end().to_string());
        if done {
            break;
        }
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in reader.lines() {});
    (child, lines)
}

fn after<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    lines
        .iter()
        .find_map(|l| l.split_once(prefix).map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no `{prefix}` in {lines:#?}"))
}

fn sigterm(child: &mut std::process::Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = child.wait().expect("wait");
    assert!(exit.success(), "serve exited with {exit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_embedded_defaults_runs_the_whole_loop() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut child, lines) = serve_dev(&data);
    assert!(
        lines[0].starts_with("webhook receiver listening on http://"),
        "{lines:#?}"
    );
    let api = after(&lines, "webhook receiver listening on ")
        .trim_end_matches("/webhook")
        .to_string();
    let token = after(&lines, "Your development API token is ")
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert!(after(&lines, "webhook signing secret is ").starts_with("whsec_"));
    let emu_base = after(&lines, "Stripe emulator listening on ")
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let endpoint = after(&lines, "webhook endpoint ")
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert!(endpoint.starts_with("we_"), "{lines:#?}");
    let curl = after(&lines, "curl -s -u sk_test_dev: ");
    assert!(curl.starts_with(&format!("{emu_base}/v1/identity/verification_sessions")));
    assert!(curl.contains("type=document") && curl.contains("client_reference_id="));

    // What the how-to says, as a program: create a session, pick an outcome.
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let session: Value = http
        .post(format!("{emu_base}/v1/identity/verification_sessions"))
        .basic_auth("sk_test_dev", Some(""))
        .form(&[("type", "document"), ("client_reference_id", "loop_user")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = session["id"].as_str().expect("session id").to_string();
    assert!(session["url"]
        .as_str()
        .unwrap_or_default()
        .starts_with(&emu_base));
    let res = http
        .post(format!(
            "{emu_base}/v1/test_helpers/identity/verification_sessions/{id}/require_input"
        ))
        .basic_auth("sk_test_dev", Some(""))
        .form(&[("last_error[code]", "document_expired")])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());

    let mut user = Value::Null;
    for _ in 0..600 {
        let res = http
            .get(format!("{api}/v1/users/loop_user"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        if res.status() == 200 {
            user = res.json().await.unwrap();
            if user["outcome"] == "retry_allowed" {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(user["outcome"], "retry_allowed", "{user}");
    assert_eq!(user["current_session"], id.as_str());
    sigterm(&mut child);

    // A restart reuses the endpoint (re-pointed at serve's new port) instead of adding one,
    // and events still arrive.
    let (mut child, lines) = serve_dev(&data);
    assert_eq!(
        after(&lines, "webhook endpoint ").split_whitespace().next(),
        Some(endpoint.as_str()),
        "{lines:#?}"
    );
    let api = after(&lines, "webhook receiver listening on ")
        .trim_end_matches("/webhook")
        .to_string();
    let emu_base = after(&lines, "Stripe emulator listening on ")
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let endpoints: Value = http
        .get(format!("{emu_base}/v1/webhook_endpoints"))
        .bearer_auth("sk_test_dev")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let data_list = endpoints["data"].as_array().expect("endpoints");
    assert_eq!(data_list.len(), 1, "{endpoints}");
    assert_eq!(data_list[0]["url"], format!("{api}/webhook").as_str());
    let res = http
        .post(format!(
            "{emu_base}/v1/test_helpers/identity/verification_sessions/{id}/verify"
        ))
        .basic_auth("sk_test_dev", Some(""))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let mut session = Value::Null;
    for _ in 0..600 {
        let res = http
            .get(format!("{api}/v1/verification_sessions/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        if res.status() == 200 {
            session = res.json().await.unwrap();
            if session["outcome"] == "verified" {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(session["outcome"], "verified", "{session}");
    assert_eq!(session["failed_attempts"], 1);
    sigterm(&mut child);
}
