//! Everything that talks to the Stripe API, against the real emulator in-process on
//! 127.0.0.1:0: the typed client, reconciliation into a running idverdict (SQLite and
//! PostgreSQL) with no webhook endpoint at all, and session creation for the app over HTTP.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use idverdict::reconcile::Reconciler;
use idverdict::stripe_api::{
    CreateSession, DocumentOptions, RetryPolicy, StripeApiError, StripeClient, StripeSettings,
    IDENTITY_EVENT_TYPES,
};
use serde_json::Value;
use stripe_emulator::{EmulatorConfig, EmulatorHandle};

const KEY: &str = "sk_test_idverdict_tests";

struct Emu {
    handle: EmulatorHandle,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Emu {
    async fn start() -> Emu {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = EmulatorConfig {
            data_dir: dir.path().to_path_buf(),
            time_scale: 0.001,
            processing_delay: Duration::from_millis(50),
            delivery_timeout: Duration::from_secs(5),
            ..EmulatorConfig::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let handle = stripe_emulator::spawn(listener, config)
            .await
            .expect("emulator");
        Emu {
            handle,
            _dir: dir,
            http: reqwest::Client::builder().no_proxy().build().expect("http"),
        }
    }

    fn client(&self) -> StripeClient {
        let settings = StripeSettings::new(KEY, self.handle.base_url()).expect("settings");
        StripeClient::new(&settings)
            .expect("client")
            .with_retry(fast_retry())
    }

    /// The emulator's test helpers stand in for a user submitting the hosted flow.
    async fn drive(&self, id: &str, action: &str, code: Option<&str>) {
        let mut form = vec![];
        if let Some(c) = code {
            form.push(("last_error[code]", c));
        }
        let url = format!(
            "{}/v1/test_helpers/identity/verification_sessions/{id}/{action}",
            self.handle.base_url()
        );
        let resp = self
            .http
            .post(url)
            .bearer_auth(KEY)
            .form(&form)
            .send()
            .await
            .expect("drive");
        assert_eq!(resp.status().as_u16(), 200, "{action} {id}");
    }
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 2,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    }
}

fn new_session(user: &str) -> CreateSession {
    CreateSession {
        client_reference_id: Some(user.to_string()),
        metadata: [("user_id".to_string(), user.to_string())].into(),
        ..CreateSession::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_round_trips_and_maps_errors() {
    let emu = Emu::start().await;
    let client = emu.client();

    let params = CreateSession {
        session_type: None,
        client_reference_id: Some("user_rt".into()),
        metadata: [("plan".to_string(), "pro".to_string())].into(),
        return_url: Some("https://app.example/back".into()),
        provided_email: Some("rt@example.com".into()),
        document: Some(DocumentOptions {
            allowed_types: vec!["passport".into(), "id_card".into()],
            require_matching_selfie: Some(true),
            ..DocumentOptions::default()
        }),
    };
    let created = client
        .create_verification_session(&params, "idem-rt-1")
        .await
        .expect("create");
    assert!(created.id.starts_with("vs_"));
    assert_eq!(created.status.as_str(), "requires_input");
    assert_eq!(created.client_reference_id.as_deref(), Some("user_rt"));
    assert_eq!(
        created.metadata.get("plan").map(String::as_str),
        Some("pro")
    );
    assert!(created.client_secret.is_some() && created.url.is_some());
    let doc = &created.options.as_ref().expect("options")["document"];
    assert_eq!(
        doc["allowed_types"],
        serde_json::json!(["passport", "id_card"])
    );
    assert_eq!(doc["require_matching_selfie"], true);

    // Idempotency: the same key and parameters give the same session back…
    let replay = client
        .create_verification_session(&params, "idem-rt-1")
        .await
        .expect("replay");
    assert_eq!(replay.id, created.id);
    // …and the same key with other parameters is Stripe's idempotency_error.
    let mut other = params.clone();
    other.metadata.insert("plan".into(), "free".into());
    match client
        .create_verification_session(&other, "idem-rt-1")
        .await
    {
        Err(StripeApiError::Api { status, kind, .. }) => {
            assert_eq!(status, 400);
            assert_eq!(kind, "idempotency_error");
        }
        other => panic!("expected idempotency_error, got {other:?}"),
    }

    let fetched = client
        .retrieve_verification_session(&created.id, &[])
        .await
        .expect("retrieve");
    assert_eq!(fetched.id, created.id);
    assert!(
        fetched.url.is_some(),
        "a requires_input session has a fresh url"
    );

    let listed = client
        .list_verification_sessions("user_rt")
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
    assert!(client
        .list_verification_sessions("nobody")
        .await
        .expect("list")
        .is_empty());

    let canceled = client
        .cancel_verification_session(&created.id)
        .await
        .expect("cancel");
    assert_eq!(canceled.status.as_str(), "canceled");
    // Wrong state: Stripe's 400 invalid_request_error.
    match client.cancel_verification_session(&created.id).await {
        Err(e @ StripeApiError::Api { .. }) => {
            assert_eq!(e.status(), Some(400));
            assert_eq!(e.code(), Some("unexpected_state"));
        }
        other => panic!("expected a 400, got {other:?}"),
    }

    let second = client
        .create_verification_session(&new_session("user_rt"), "idem-rt-2")
        .await
        .expect("create");
    emu.drive(&second.id, "verify", None).await;
    let redacted = client
        .redact_verification_session(&second.id)
        .await
        .expect("redact");
    assert_eq!(
        redacted.redaction.as_ref().map(|r| r.status.as_str()),
        Some("processing")
    );

    // 404 with Stripe's error object, mapped field by field.
    match client
        .retrieve_verification_session("vs_missing", &[])
        .await
    {
        Err(StripeApiError::Api {
            status,
            kind,
            code,
            message,
            param,
        }) => {
            assert_eq!(status, 404);
            assert_eq!(kind, "invalid_request_error");
            assert_eq!(code.as_deref(), Some("resource_missing"));
            assert!(message.unwrap_or_default().contains("vs_missing"));
            assert_eq!(param.as_deref(), Some("id"));
        }
        other => panic!("expected 404, got {other:?}"),
    }
    // 400 on a bad parameter names the parameter.
    let bad = CreateSession {
        session_type: Some("selfie_only".into()),
        ..CreateSession::default()
    };
    match client
        .create_verification_session(&bad, "idem-rt-bad")
        .await
    {
        Err(StripeApiError::Api { status, param, .. }) => {
            assert_eq!(status, 400);
            assert_eq!(param.as_deref(), Some("type"));
        }
        other => panic!("expected 400, got {other:?}"),
    }
    // A wrong key is a 401, not retried.
    let wrong = StripeClient::new(
        &StripeSettings::new("sk_nope", emu.handle.base_url()).expect("settings"),
    )
    .expect("client");
    let e = wrong
        .retrieve_verification_session(&created.id, &[])
        .await
        .expect_err("bad key");
    assert_eq!(e.status(), Some(401));

    // Events of those sessions, all pages.
    let mut pages = client.event_pages(IDENTITY_EVENT_TYPES, None);
    let mut n = 0;
    while let Some(page) = pages.next_page().await.expect("events") {
        n += page.len();
    }
    assert!(n >= 5, "created×2, canceled, processing, verified: {n}");
    emu.handle.shutdown().await.expect("shutdown");
}

/// A stand-in API that fails `fail_first` times with `status` (and an optional
/// `Stripe-Should-Retry`), then answers a session.
async fn flaky_api(
    status: u16,
    should_retry: Option<&'static str>,
    fail_first: usize,
) -> (String, Arc<AtomicUsize>) {
    use axum::http::{HeaderMap, HeaderValue, StatusCode};
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let counter = counter.clone();
        async move {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            assert!(headers.get("idempotency-key").is_some(), "POSTs carry a key");
            let mut h = HeaderMap::new();
            if let Some(v) = should_retry {
                h.insert("stripe-should-retry", HeaderValue::from_static(v));
            }
            if n < fail_first {
                let body = serde_json::json!({"error": {"type": "api_error", "message": "try again"}});
                (StatusCode::from_u16(status).unwrap(), h, axum::Json(body))
            } else {
                let body = serde_json::json!({"id": "vs_ok", "object": "identity.verification_session", "created": 1, "livemode": false, "status": "requires_input"});
                (StatusCode::OK, h, axum::Json(body))
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), calls)
}

#[tokio::test]
async fn retries_follow_status_and_stripe_should_retry() {
    // (status, Stripe-Should-Retry, failures before success, expect success, expected calls)
    let cases: [(u16, Option<&'static str>, usize, bool, usize); 6] = [
        (500, None, 2, true, 3),
        (429, None, 1, true, 2),
        (409, None, 1, true, 2),
        (500, None, 5, false, 3),
        (503, Some("false"), 1, false, 1),
        (400, Some("true"), 1, true, 2),
    ];
    for (status, header, fail_first, ok, calls) in cases {
        let (base, counter) = flaky_api(status, header, fail_first).await;
        let client = StripeClient::new(&StripeSettings::new(KEY, &base).expect("settings"))
            .expect("client")
            .with_retry(fast_retry());
        let result = client.cancel_verification_session("vs_x").await;
        assert_eq!(result.is_ok(), ok, "{status} {header:?}: {result:?}");
        assert_eq!(counter.load(Ordering::SeqCst), calls, "{status} {header:?}");
        if let Err(e) = result {
            assert_eq!(e.status(), Some(status));
        }
    }
    // Nothing listening: a transport error after the retries.
    let client = StripeClient::new(&StripeSettings::new(KEY, "http://127.0.0.1:9").expect("s"))
        .expect("client")
        .with_retry(fast_retry());
    assert!(matches!(
        client.retrieve_verification_session("vs_x", &[]).await,
        Err(StripeApiError::Transport(_))
    ));
}

/// Wait until Stripe's redaction of `id` has finished (the emulator's timer).
async fn wait_redacted(client: &StripeClient, id: &str) {
    for _ in 0..200 {
        let s = client
            .retrieve_verification_session(id, &[])
            .await
            .expect("retrieve");
        if s.redaction.as_ref().map(|r| r.status.as_str()) == Some("redacted") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("redaction of {id} did not finish");
}

/// idverdict's view of a session over its HTTP API.
async fn idverdict_session(app: &TestApp, id: &str) -> Value {
    let (status, body) = app.get(&format!("/v1/verification_sessions/{id}")).await;
    assert_eq!(status, 200, "{id}: {body}");
    body
}

async fn reconciliation_brings_every_session_to_its_state(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&config(&db, &[SECRET])).await;
    let store = db.store().await;
    // No webhook endpoint is registered: every event exists only in Stripe's list.
    let emu = Emu::start().await;
    let client = Arc::new(emu.client());

    // (user, the steps a tester takes, expected Stripe status, expected idverdict outcome)
    type Step = (&'static str, Option<&'static str>);
    let flows: Vec<(Vec<Step>, &str, &str)> = vec![
        (vec![], "requires_input", "awaiting_input"),
        (vec![("verify", None)], "verified", "verified"),
        (
            vec![("require_input", Some("document_expired"))],
            "requires_input",
            "retry_allowed",
        ),
        (
            vec![
                ("require_input", Some("document_unverified_other")),
                ("verify", None),
            ],
            "verified",
            "verified",
        ),
        (
            vec![("require_input", Some("consent_declined"))],
            "requires_input",
            "alternative_required",
        ),
        (
            vec![("require_input", Some("selfie_manipulated"))],
            "requires_input",
            "needs_review",
        ),
        (vec![("cancel", None)], "canceled", "canceled"),
        (vec![("process", None)], "processing", "processing"),
        (
            vec![("verify", None), ("redact", None)],
            "verified",
            "verified",
        ),
    ];
    let mut expected = Vec::new();
    // Enough sessions that the events list spans several pages (limit 100).
    for round in 0..4 {
        for (i, (steps, status, outcome)) in flows.iter().enumerate() {
            let user = format!("user_rec_{round}_{i}");
            let s = client
                .create_verification_session(&new_session(&user), &format!("rec-{round}-{i}"))
                .await
                .expect("create");
            for (action, code) in steps {
                match *action {
                    "cancel" => {
                        client
                            .cancel_verification_session(&s.id)
                            .await
                            .expect("cancel");
                    }
                    "redact" => {
                        client
                            .redact_verification_session(&s.id)
                            .await
                            .expect("redact");
                        wait_redacted(&client, &s.id).await;
                    }
                    _ => emu.drive(&s.id, action, *code).await,
                }
            }
            expected.push((
                s.id,
                user,
                *status,
                *outcome,
                steps.iter().any(|(a, _)| *a == "redact"),
            ));
        }
    }

    // Every event the flows make: `created`, two per outcome, one per cancel/process/redact.
    let per_step = |action: &str| match action {
        "verify" | "require_input" => 2,
        _ => 1,
    };
    let in_stripe: u64 = 4 * flows
        .iter()
        .map(|(steps, _, _)| 1 + steps.iter().map(|(a, _)| per_step(a)).sum::<u64>())
        .sum::<u64>();
    // The `redacted` event follows the redaction's status change: wait until Stripe lists all.
    let mut listed_now = 0;
    for _ in 0..200 {
        listed_now = 0;
        let mut pages = client.event_pages(IDENTITY_EVENT_TYPES, None);
        while let Some(page) = pages.next_page().await.expect("events") {
            listed_now += page.len() as u64;
        }
        if listed_now == in_stripe {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(listed_now, in_stripe);
    assert!(in_stripe > 100, "several pages: {in_stripe}");

    let reconciler = Reconciler::new(store.clone(), client.clone());
    let first = reconciler
        .run_once(Duration::from_secs(72 * 3600))
        .await
        .expect("reconcile");
    assert_eq!(first.listed, in_stripe);
    assert_eq!(first.ingested_new, in_stripe, "nothing had arrived before");
    assert_eq!(first.duplicates, 0);
    assert!(reconciler.cursor().await.expect("cursor").is_some());
    drain(&store).await;

    for (id, user, status, outcome, redacted) in &expected {
        let body = idverdict_session(&app, id).await;
        assert_eq!(body["status"], *status, "{id}: {body}");
        assert_eq!(body["outcome"], *outcome, "{id}: {body}");
        assert_eq!(body["client_reference_id"], user.as_str());
        if *redacted {
            assert_eq!(body["redaction"]["status"], "redacted", "{id}: {body}");
        }
        // And Stripe agrees on the status.
        let at_stripe = client
            .retrieve_verification_session(id, &[])
            .await
            .expect("retrieve");
        assert_eq!(at_stripe.status.as_str(), *status);
    }

    // A second run finds nothing new: the cursor bounds the listing and the rest dedupes.
    let second = reconciler
        .run_once(Duration::from_secs(72 * 3600))
        .await
        .expect("reconcile again");
    assert_eq!(second.ingested_new, 0, "{second:?}");
    assert_eq!(second.listed, second.duplicates);

    // A new event after that is picked up by the next run.
    emu.drive(&expected[0].0, "verify", None).await;
    let third = reconciler
        .run_once(Duration::from_secs(72 * 3600))
        .await
        .expect("reconcile");
    assert_eq!(third.ingested_new, 2, "processing + verified: {third:?}");
    drain(&store).await;
    assert_eq!(
        idverdict_session(&app, &expected[0].0).await["status"],
        "verified"
    );

    store.close().await;
    app.stop().await;
    emu.handle.shutdown().await.expect("shutdown");
}
both_backends!(reconciliation_brings_every_session_to_its_state);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_reconciliation_runs_at_start_and_stops_on_shutdown() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = db.store().await;
    let emu = Emu::start().await;
    let client = Arc::new(emu.client());
    client
        .create_verification_session(&new_session("user_periodic"), "periodic-1")
        .await
        .expect("create");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(
        Reconciler::new(store.clone(), client.clone()).run_periodically(
            Duration::from_secs(3600),
            Duration::from_secs(3600),
            stopped,
        ),
    );
    // The start-up run stores the `created` event without waiting for the interval.
    for _ in 0..200 {
        if store.event_counts().await.expect("counts").0 == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(store.event_counts().await.expect("counts").0, 1);
    stop.send(true).expect("stop");
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops promptly")
        .expect("task");
    emu.handle.shutdown().await.expect("shutdown");
}

/// The session-creation routes of a running idverdict whose Stripe API is the emulator (no
/// webhook endpoint and no periodic reconciliation: `sync` brings Stripe's events in).
struct Creation {
    app: TestApp,
    store: idverdict::store::Store,
    emu: Emu,
    client: Arc<StripeClient>,
}

impl Creation {
    async fn start(backend: Backend) -> (Creation, TestDb) {
        let db = TestDb::new(backend).await;
        let emu = Emu::start().await;
        let base = emu.handle.base_url().to_string();
        let env = [
            ("STRIPE_API_KEY", KEY),
            ("STRIPE_API_BASE", base.as_str()),
            ("IDVERDICT_RECONCILE", "off"),
        ];
        let app = TestApp::start(&config_with(&db, &[SECRET], &env)).await;
        let store = db.store().await;
        let client = Arc::new(emu.client());
        let c = Creation {
            app,
            store,
            emu,
            client,
        };
        (c, db)
    }

    async fn post(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.app.http.post(self.app.url(path)).bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn create(&self, user: &str) -> (u16, Value) {
        self.post(&format!("/v1/users/{user}/verification_sessions"), None)
            .await
    }

    /// Bring Stripe's events into idverdict and let it decide.
    async fn sync(&self) {
        Reconciler::new(self.store.clone(), self.client.clone())
            .run_once(Duration::from_secs(3600))
            .await
            .expect("reconcile");
        drain(&self.store).await;
    }

    async fn stop(self) {
        self.store.close().await;
        self.app.stop().await;
        self.emu.handle.shutdown().await.expect("shutdown");
    }
}

async fn session_creation_reuses_and_refuses(backend: Backend) {
    let (c, _db) = Creation::start(backend).await;

    // A new user: a new session with what the front end needs.
    let (status, first) = c
        .post(
            "/v1/users/user_new/verification_sessions",
            Some(serde_json::json!({"metadata": {"plan": "pro"}, "return_url": "https://app.example/done", "provided_details": {"email": "new@example.com"}})),
        )
        .await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["reused"], false);
    assert_eq!(first["status"], "requires_input");
    let id = first["id"].as_str().expect("id").to_string();
    assert!(first["client_secret"].is_string() && first["url"].is_string());
    let at_stripe = c
        .client
        .retrieve_verification_session(&id, &[])
        .await
        .expect("retrieve");
    assert_eq!(at_stripe.client_reference_id.as_deref(), Some("user_new"));
    assert_eq!(
        at_stripe.metadata.get("user_id").map(String::as_str),
        Some("user_new")
    );
    assert_eq!(
        at_stripe.metadata.get("plan").map(String::as_str),
        Some("pro")
    );

    // Asked again before any webhook arrived: the same session, reused (Stripe's list).
    let (status, again) = c.create("user_new").await;
    assert_eq!(
        (status, again["reused"].clone()),
        (200, Value::Bool(true)),
        "{again}"
    );
    assert_eq!(again["id"], id.as_str());
    assert!(again["url"].is_string());

    // After a retryable failure, still the same session.
    c.emu
        .drive(&id, "require_input", Some("document_expired"))
        .await;
    c.sync().await;
    let (status, retry) = c.create("user_new").await;
    assert_eq!(
        (status, retry["id"].as_str()),
        (200, Some(id.as_str())),
        "{retry}"
    );

    // Canceled by the app: the next request creates attempt number 1.
    let (status, canceled) = c
        .post(
            &format!("/v1/users/user_new/verification_sessions/{id}/cancel"),
            None,
        )
        .await;
    assert_eq!(
        (status, canceled["status"].as_str()),
        (200, Some("canceled")),
        "{canceled}"
    );
    let (status, next) = c.create("user_new").await;
    assert_eq!(status, 201, "{next}");
    assert_ne!(next["id"], id.as_str());

    // Someone else's session: 404, and Stripe is not touched.
    let other = next["id"].as_str().expect("id").to_string();
    let (status, body) = c
        .post(
            &format!("/v1/users/user_intruder/verification_sessions/{other}/cancel"),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("session_not_found"))
    );
    let (status, _) = c
        .post(
            "/v1/users/user_new/verification_sessions/vs_nope/redact",
            None,
        )
        .await;
    assert_eq!(status, 404);

    // Each refusal, with its code.
    let refusal = |user: &'static str,
                   steps: Vec<(&'static str, Option<&'static str>)>,
                   code: &'static str| (user, steps, code);
    let cases = vec![
        refusal("user_verified", vec![("verify", None)], "user_verified"),
        refusal(
            "user_processing",
            vec![("process", None)],
            "verification_in_progress",
        ),
        refusal(
            "user_review",
            vec![("require_input", Some("selfie_manipulated"))],
            "under_review",
        ),
        refusal(
            "user_alternative",
            vec![("require_input", Some("device_not_supported"))],
            "alternative_required",
        ),
        refusal(
            "user_exhausted",
            vec![
                ("require_input", Some("document_expired")),
                ("require_input", Some("document_unverified_other")),
                ("require_input", Some("selfie_unverified_other")),
            ],
            "attempts_exhausted",
        ),
    ];
    for (user, steps, _) in &cases {
        let (status, s) = c.create(user).await;
        assert_eq!(status, 201, "{user}: {s}");
        let sid = s["id"].as_str().expect("id").to_string();
        for (action, code) in steps {
            c.emu.drive(&sid, action, *code).await;
        }
    }
    c.sync().await;
    for (user, _, code) in &cases {
        let (status, body) = c.create(user).await;
        assert_eq!(status, 409, "{user}: {body}");
        assert_eq!(body["error"]["code"], *code, "{user}: {body}");
        assert!(body["error"]["message"].is_string());
    }

    // Redact a verified session of the user: passed through.
    let (_, user) = c.app.get("/v1/users/user_verified").await;
    let vid = user["current_session"]
        .as_str()
        .expect("session")
        .to_string();
    let (status, body) = c
        .post(
            &format!("/v1/users/user_verified/verification_sessions/{vid}/redact"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["redaction"]["status"], "processing");

    // Bad input.
    let (status, body) = c
        .post(
            "/v1/users/user_x/verification_sessions",
            Some(serde_json::json!({"metadata": {"a[b]": "x"}})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_metadata"))
    );
    let (status, body) = c
        .post(
            "/v1/users/user_x/verification_sessions",
            Some(serde_json::json!({"unknown": 1})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_body"))
    );
    c.stop().await;
}
both_backends!(session_creation_reuses_and_refuses);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creation_makes_exactly_one_session() {
    let (c, _db) = Creation::start(Backend::Sqlite).await;
    let c = Arc::new(c);
    let requests = (0..10).map(|_| {
        let c = c.clone();
        async move { c.create("user_concurrent").await }
    });
    let answers = futures::future::join_all(requests).await;
    let mut ids = std::collections::HashSet::new();
    for (status, body) in &answers {
        assert!(*status == 201 || *status == 200, "{status}: {body}");
        ids.insert(body["id"].as_str().expect("id").to_string());
    }
    assert_eq!(ids.len(), 1, "one session for all: {answers:?}");
    let at_stripe = c
        .client
        .list_verification_sessions("user_concurrent")
        .await
        .expect("list");
    assert_eq!(at_stripe.len(), 1);
    if let Ok(c) = Arc::try_unwrap(c) {
        c.stop().await;
    }
}

#[tokio::test]
async fn without_stripe_the_routes_answer_503() {
    let db = TestDb::new(Backend::Sqlite).await;
    let app = TestApp::start(&config(&db, &[SECRET])).await;
    for path in [
        "/v1/users/u/verification_sessions",
        "/v1/users/u/verification_sessions/vs_1/cancel",
        "/v1/users/u/verification_sessions/vs_1/redact",
    ] {
        let resp = app
            .http
            .post(app.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 503, "{path}");
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["error"]["code"], "stripe_not_configured");
    }
    app.stop().await;
}
