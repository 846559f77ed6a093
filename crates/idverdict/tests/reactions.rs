//! Reactions against real things: an HTTP receiver (axum) checked with an independent
//! Standard Webhooks implementation, a real SMTP server (aiosmtpd), the local NATS server,
//! and both storage backends.

mod common;

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use common::smtp::SmtpSink;
use common::*;
use futures::StreamExt;
use idverdict::clock::now_ms;
use idverdict::decide::{Decision, NextStep, UserState};
use idverdict::react::config::{EmailConfig, NatsConfig, NatsMode, TlsMode};
use idverdict::react::{plan, Dispatcher, NewReaction, ReactConfig, ReactionKind};
use idverdict::store::{Leases, ReactionFilter, ReactionRow, Redeliver, Store};
use idverdict::synth::{self, Kind, Spec};
use stripe_webhook::ErrorCode;

const SECRET_A: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SECRET_B: &str = "whsec_dGhlIHNlY29uZCBzZWNyZXQga2V5IGlzIGhlcmU=";
const FAST: &[&str] = &["10ms", "20ms", "40ms"];

// ---------------------------------------------------------------- helpers

fn decision(kind: &str, session: &str, user: &str) -> Decision {
    let retry = kind == "retry_allowed";
    Decision {
        key: format!("{session}:{kind}:1"),
        kind: serde_json::from_value(serde_json::json!(kind)).expect("a decision type"),
        user: Some(user.to_string()),
        session: session.to_string(),
        state: UserState::parse(kind).expect("a user state"),
        why: None,
        error_code: retry.then_some(ErrorCode::DocumentExpired),
        reason: retry.then(|| "Stripe says: document_expired for Jane Q. Public".to_string()),
        explanation: retry
            .then(|| "Your identity document has expired & can't be used.".to_string()),
        next_step: retry.then_some(NextStep::Retry),
        attempts_used: 1,
        attempts_left: 2,
        resume: Some(format!("POST /v1/users/{user}/verification_sessions")),
        reviewer: None,
        note: None,
        occurred_at: now() - 5,
        locale: None,
    }
}

fn callback_config(urls: Vec<String>, allow_private: bool) -> ReactConfig {
    let mut c = ReactConfig::default();
    c.callbacks.urls = urls;
    c.callbacks.secrets = vec![SECRET_A.into(), SECRET_B.into()];
    c.callbacks.timeout_secs = 5;
    c.delivery.schedule = FAST.iter().map(|s| s.to_string()).collect();
    c.delivery.allow_private_targets = allow_private;
    c
}

/// Plan a decision (emails to `to`) and write it to the outbox the way the processor does, in
/// a transaction.
async fn enqueue(
    store: &Store,
    d: &Decision,
    to: Option<&str>,
    config: &ReactConfig,
) -> Vec<String> {
    let planned = plan(d, to, config);
    write_outbox(store, &planned).await;
    planned.into_iter().map(|r| r.id).collect()
}

async fn write_outbox(store: &Store, reactions: &[NewReaction]) {
    let mut tx = store.begin().await.expect("begin");
    store
        .enqueue_reactions(&mut tx, reactions, now_ms())
        .await
        .expect("enqueue");
    tx.commit().await.expect("commit");
}

async fn reaction(store: &Store, id: &str) -> ReactionRow {
    store
        .get_reaction(id)
        .await
        .expect("get reaction")
        .expect("reaction exists")
}

/// Drain with `run_once` until the reaction reaches `state` (bounded: a broken build must
/// not hang the suite; the bound is not a timing assertion).
async fn drain_until(d: &Dispatcher, store: &Store, id: &str, state: &str) -> ReactionRow {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        d.run_once().await.expect("run_once");
        let r = reaction(store, id).await;
        if r.state == state {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "reaction {id} stuck in {} (wanted {state}): {:?}",
            r.state,
            r.last_error
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ------------------------------------------------------- callback receiver

#[derive(Clone, Copy, Debug)]
enum Reply {
    Status(u16),
    Redirect,
    RetryAfter(u16, u64),
    /// Answer 200, but only after this many milliseconds.
    Slow(u64),
}

#[derive(Clone)]
struct Received {
    at: Instant,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Default)]
struct ReceiverState {
    script: VecDeque<Reply>,
    fallback: Option<Reply>,
    requests: Vec<Received>,
}

#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<ReceiverState>>);

impl Receiver {
    fn requests(&self) -> Vec<Received> {
        self.0.lock().unwrap().requests.clone()
    }
    fn set_fallback(&self, reply: Reply) {
        self.0.lock().unwrap().fallback = Some(reply);
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    let reply = {
        let mut s = r.0.lock().unwrap();
        s.requests.push(Received {
            at: Instant::now(),
            headers,
            body,
        });
        let fallback = s.fallback.unwrap_or(Reply::Status(200));
        s.script.pop_front().unwrap_or(fallback)
    };
    match reply {
        Reply::Slow(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            StatusCode::OK.into_response()
        }
        Reply::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
        Reply::Redirect => (
            StatusCode::FOUND,
            [("location", "http://127.0.0.1:1/elsewhere")],
        )
            .into_response(),
        Reply::RetryAfter(code, secs) => (
            StatusCode::from_u16(code).unwrap(),
            [("retry-after", secs.to_string())],
        )
            .into_response(),
    }
}

async fn start_receiver(script: Vec<Reply>, fallback: Reply) -> (SocketAddr, Receiver) {
    let receiver = Receiver::default();
    {
        let mut s = receiver.0.lock().unwrap();
        s.script = script.into();
        s.fallback = Some(fallback);
    }
    let app = axum::Router::new()
        .route("/cb", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind receiver");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, receiver)
}

/// Check a callback with the independent `standardwebhooks` crate, once per secret: during a
/// rotation every secret must verify on its own.
fn verify_independently(req: &Received) {
    for secret in [SECRET_A, SECRET_B] {
        standardwebhooks::Webhook::new(secret)
            .expect("secret")
            .verify(&req.body, &req.headers)
            .unwrap_or_else(|e| panic!("signature for {secret} does not verify: {e:?}"));
    }
    let sig = req.headers["webhook-signature"].to_str().unwrap();
    assert_eq!(sig.split(' ').count(), 2, "one signature per secret: {sig}");
    let wrong = standardwebhooks::Webhook::new("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
    assert!(wrong.verify(&req.body, &req.headers).is_err());
}

// ------------------------------------------------------------------- tests

async fn callback_retries_until_delivered(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let (addr, receiver) = start_receiver(
        vec![
            Reply::Status(500),
            Reply::Redirect,
            Reply::RetryAfter(503, 1),
        ],
        Reply::Status(204),
    )
    .await;
    let config = callback_config(vec![format!("http://{addr}/cb")], true);
    let d = decision("retry_allowed", "vs_cb1", "user_cb1");
    let jane = Some("jane@example.test");
    let ids = enqueue(&store, &d, jane, &config).await;
    assert_eq!(ids.len(), 1, "one callback, no email/NATS configured");
    let dispatcher = Dispatcher::new(store.clone(), config.clone())
        .await
        .expect("dispatcher");

    let row = drain_until(&dispatcher, &store, &ids[0], "delivered").await;
    assert_eq!(row.attempts, 4);
    assert!(row.delivered_at_ms.is_some());

    let requests = receiver.requests();
    assert_eq!(requests.len(), 4, "N failures + 1 success");
    for req in &requests {
        assert_eq!(
            req.headers["webhook-id"],
            ids[0].as_str(),
            "stable webhook-id"
        );
        assert_eq!(req.headers["content-type"], "application/json");
        verify_independently(req);
        let body: Decision = serde_json::from_slice(&req.body).expect("JSON body");
        assert_eq!(body, d);
        assert!(!String::from_utf8_lossy(&req.body).contains("jane@"));
    }
    // Retry-After: 1 stretched the 40 ms step to a second.
    let gap = requests[3].at - requests[2].at;
    assert!(
        gap >= Duration::from_millis(990),
        "Retry-After not honoured: {gap:?}"
    );

    let attempts = store.reaction_attempts(&ids[0]).await.expect("attempts");
    let codes: Vec<Option<i64>> = attempts.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, vec![Some(500), Some(302), Some(503), Some(204)]);
    assert!(attempts[1].error.as_deref().unwrap().contains("redirect"));
    assert!(attempts[3].error.is_none());

    // Delivered means done: nothing more is sent, and planning the same decision again
    // (the engine re-applying it) adds nothing.
    assert_eq!(dispatcher.run_once().await.expect("run_once"), 0);
    enqueue(&store, &d, jane, &config).await;
    assert_eq!(dispatcher.run_once().await.expect("run_once"), 0);
    assert_eq!(receiver.requests().len(), 4);
    let all = store
        .list_reactions(&ReactionFilter::default())
        .await
        .expect("list");
    assert_eq!(all.len(), 1);
}
both_backends!(callback_retries_until_delivered);

async fn callback_exhausts_then_redelivers(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let (addr, receiver) = start_receiver(vec![], Reply::Status(500)).await;
    let config = callback_config(vec![format!("http://{addr}/cb")], true);
    let d = decision("needs_review", "vs_ex1", "user_ex1");
    let ids = enqueue(&store, &d, None, &config).await;
    let dispatcher = Dispatcher::new(store.clone(), config)
        .await
        .expect("dispatcher");

    let row = drain_until(&dispatcher, &store, &ids[0], "exhausted").await;
    assert_eq!(row.attempts, 4, "first attempt + one per schedule step");
    assert!(row.last_error.as_deref().unwrap().contains("500"));
    let attempts = store.reaction_attempts(&ids[0]).await.expect("attempts");
    assert_eq!(attempts.len(), 4, "every attempt recorded");
    assert!(attempts.iter().all(|a| a.status_code == Some(500)));
    assert_eq!(receiver.requests().len(), 4);

    // Kept and visible.
    let exhausted = store
        .list_reactions(&ReactionFilter {
            state: Some("exhausted".into()),
            user_ref: Some("user_ex1".into()),
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(exhausted.len(), 1);
    assert_eq!(dispatcher.run_once().await.expect("run_once"), 0);

    // The app is back; the operator redelivers.
    receiver.set_fallback(Reply::Status(200));
    assert_eq!(
        store
            .redeliver(Redeliver::AllExhausted, now_ms())
            .await
            .expect("redeliver"),
        1
    );
    assert_eq!(reaction(&store, &ids[0]).await.state, "pending");
    let row = drain_until(&dispatcher, &store, &ids[0], "delivered").await;
    assert_eq!(row.attempts, 5);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 5);
    assert!(requests
        .iter()
        .all(|r| r.headers["webhook-id"] == ids[0].as_str()));
    verify_independently(&requests[4]);
    assert_eq!(store.reaction_attempts(&ids[0]).await.unwrap().len(), 5);

    // A delivered reaction can be replayed by id; an unknown id changes nothing.
    assert_eq!(
        store
            .redeliver(Redeliver::One(&ids[0]), now_ms())
            .await
            .unwrap(),
        1
    );
    drain_until(&dispatcher, &store, &ids[0], "delivered").await;
    assert_eq!(receiver.requests().len(), 6);
    assert_eq!(
        store
            .redeliver(Redeliver::One("rx_nope"), now_ms())
            .await
            .unwrap(),
        0
    );
}
both_backends!(callback_exhausts_then_redelivers);

async fn ssrf_guard_refuses_loopback(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let (addr, receiver) = start_receiver(vec![], Reply::Status(200)).await;
    let config = callback_config(
        vec![
            format!("http://{addr}/cb"),
            format!("http://localhost:{}/cb", addr.port()),
        ],
        false,
    );
    let d = decision("verified", "vs_ssrf", "user_ssrf");
    let ids = enqueue(&store, &d, None, &config).await;
    assert_eq!(ids.len(), 2);
    let dispatcher = Dispatcher::new(store.clone(), config)
        .await
        .expect("dispatcher");
    for id in &ids {
        let row = drain_until(&dispatcher, &store, id, "exhausted").await;
        assert_eq!(row.attempts, 1, "a refused target is not retried");
        let error = row.last_error.unwrap();
        assert!(
            error.contains("loopback") && error.contains("allow_private_targets"),
            "{error}"
        );
    }
    assert_eq!(receiver.requests().len(), 0, "no request was made");
}
both_backends!(ssrf_guard_refuses_loopback);

#[tokio::test]
async fn a_slow_target_times_out_and_is_retried() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = db.store().await;
    let (addr, receiver) = start_receiver(vec![Reply::Slow(3000)], Reply::Status(200)).await;
    let mut config = callback_config(vec![format!("http://{addr}/cb")], true);
    config.callbacks.timeout_secs = 1;
    let ids = enqueue(&store, &decision("verified", "vs_slow", "u"), None, &config).await;
    let dispatcher = Dispatcher::new(store.clone(), config)
        .await
        .expect("dispatcher");
    let started = Instant::now();
    let row = drain_until(&dispatcher, &store, &ids[0], "delivered").await;
    assert!(
        started.elapsed() < Duration::from_millis(2900),
        "the timeout cut the wait"
    );
    assert_eq!(row.attempts, 2);
    let attempts = store.reaction_attempts(&ids[0]).await.unwrap();
    assert!(
        attempts[0].error.as_deref().unwrap().contains("timed out"),
        "{attempts:?}"
    );
    assert_eq!(receiver.requests().len(), 2);
}

// ------------------------------------------------------------------ email

fn email_config(port: u16) -> EmailConfig {
    EmailConfig {
        host: "127.0.0.1".into(),
        port: Some(port),
        tls: TlsMode::None,
        from: "Acme Identity <identity@acme.test>".into(),
        timeout_secs: 10,
        ..Default::default()
    }
}

async fn email_reaches_the_user(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let sink = SmtpSink::start().await;
    let mut config = ReactConfig::default();
    // A secret is configured (no callback URL): it must never end up in a mail.
    config.callbacks.secrets = vec![SECRET_A.into()];
    config.email = Some(email_config(sink.port));
    config.delivery.schedule = FAST.iter().map(|s| s.to_string()).collect();

    let cases = [
        ("retry_allowed", "retry@example.test"),
        ("alternative_required", "alt@example.test"),
        ("verified", "ok@example.test"),
    ];
    let mut ids = Vec::new();
    for (i, (kind, addr)) in cases.iter().enumerate() {
        let mut d = decision(kind, &format!("vs_mail{i}"), &format!("user_mail{i}"));
        if *kind == "alternative_required" {
            d.explanation = Some("Your device is not supported for online verification.".into());
        }
        let planned = enqueue(&store, &d, Some(addr), &config).await;
        assert_eq!(planned.len(), 1, "{kind}: one email");
        ids.push(planned[0].clone());
    }
    // No mail for these: a decision without a template, and no known address.
    assert!(enqueue(
        &store,
        &decision("needs_review", "vs_mail8", "u8"),
        Some("nr@example.test"),
        &config
    )
    .await
    .is_empty());
    assert!(enqueue(
        &store,
        &decision("verified", "vs_mail9", "u9"),
        None,
        &config
    )
    .await
    .is_empty());

    let dispatcher = Dispatcher::new(store.clone(), config)
        .await
        .expect("dispatcher");
    for id in &ids {
        let row = drain_until(&dispatcher, &store, id, "delivered").await;
        assert_eq!(row.kind, "email");
    }
    let mails = sink.messages();
    assert_eq!(mails.len(), 3);
    let find = |to: &str| {
        mails
            .iter()
            .find(|m| m["rcpt_tos"] == serde_json::json!([to]))
            .unwrap_or_else(|| panic!("no mail to {to}"))
    };

    let m = find("retry@example.test");
    assert!(m["to"].as_str().unwrap().contains("retry@example.test"));
    assert!(m["from"].as_str().unwrap().contains("identity@acme.test"));
    assert!(m["subject"].as_str().unwrap().contains("try again"));
    assert_eq!(m["content_type"], "multipart/alternative");
    let text = m["text"].as_str().unwrap();
    assert!(
        text.contains("Your identity document has expired & can't be used."),
        "{text}"
    );
    assert!(text.contains("How to try again"));
    assert!(text.contains("2 remaining"));
    let html = m["html"].as_str().unwrap();
    assert!(html.contains("expired &amp; can&#39;t be used"), "{html}");
    assert_eq!(m["message_id"], format!("<{}@acme.test>", ids[0]));

    let m = find("alt@example.test");
    assert!(m["subject"].as_str().unwrap().contains("another way"));
    assert!(m["text"]
        .as_str()
        .unwrap()
        .contains("Your device is not supported for online verification."));
    assert_eq!(m["message_id"], format!("<{}@acme.test>", ids[1]));

    let m = find("ok@example.test");
    assert!(m["subject"].as_str().unwrap().contains("verified"));
    assert!(m["text"].as_str().unwrap().contains("has been verified"));

    for m in &mails {
        let raw = m["raw"].as_str().unwrap();
        for leak in [
            "whsec_",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "client_secret",
            "http://",
            "https://",
            "POST /v1",
            "Jane Q. Public",
        ] {
            assert!(!raw.contains(leak), "mail leaks {leak:?}:\n{raw}");
        }
    }
}
both_backends!(email_reaches_the_user);

async fn redaction_strips_personal_fields(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let (addr, _receiver) = start_receiver(vec![], Reply::Status(200)).await;
    let mut config = callback_config(vec![format!("http://{addr}/cb")], true);
    // Nothing listens on port 1: the email stays pending.
    config.email = Some(email_config(1));
    let mut d = decision("retry_allowed", "vs_red", "user_red");
    d.note = Some("Reviewer note about Jane Q. Public".into());
    let ids = enqueue(&store, &d, Some("jane.personal@example.test"), &config).await;
    assert_eq!(ids.len(), 2);
    let callback = ids
        .iter()
        .find(|id| {
            futures::executor::block_on(store.get_reaction(id))
                .unwrap()
                .unwrap()
                .kind
                == "callback"
        })
        .unwrap()
        .clone();
    let dispatcher = Dispatcher::new(store.clone(), config)
        .await
        .expect("dispatcher");
    drain_until(&dispatcher, &store, &callback, "delivered").await;
    let other = decision("verified", "vs_other", "user_other");
    enqueue(
        &store,
        &other,
        Some("keep@example.test"),
        &callback_config(vec![format!("http://{addr}/cb")], true),
    )
    .await;

    // What the processor does when the session's redaction arrives, in its transaction.
    let mut tx = store.begin().await.expect("begin");
    let redacted = store
        .redact_reactions(&mut tx, &["vs_red"])
        .await
        .expect("redact");
    tx.commit().await.expect("commit");
    assert!(redacted >= 2);
    let mut conn = db.raw().await;
    for needle in [
        "jane.personal",
        "Jane Q. Public",
        "expired &",
        "document_expired for",
    ] {
        let n = count(
            &mut conn,
            &format!(
                "SELECT COUNT(*) FROM reactions WHERE target LIKE '%{needle}%' OR payload LIKE '%{needle}%' \
                 OR COALESCE(last_error, '') LIKE '%{needle}%'"
            ),
        )
        .await;
        assert_eq!(n, 0, "{needle} survived redaction");
        let n = count(
            &mut conn,
            &format!("SELECT COUNT(*) FROM reaction_attempts WHERE COALESCE(error, '') LIKE '%{needle}%'"),
        )
        .await;
        assert_eq!(n, 0, "{needle} survived redaction in attempts");
    }
    for id in &ids {
        let r = reaction(&store, id).await;
        // Ids, codes and states stay.
        let payload: serde_json::Value = serde_json::from_str(&r.payload).unwrap();
        assert_eq!(payload["error_code"], "document_expired");
        assert_eq!(payload["session"], "vs_red");
        assert!(payload["reason"].is_null() && payload["explanation"].is_null());
        match r.kind.as_str() {
            "email" => {
                assert_eq!(r.state, "canceled");
                assert_eq!(r.target, format!("redacted:{id}"));
            }
            _ => assert_eq!(r.state, "delivered"),
        }
    }
    // Other sessions are untouched.
    let n = count(
        &mut conn,
        "SELECT COUNT(*) FROM reactions WHERE session_id = 'vs_other'",
    )
    .await;
    assert_eq!(n, 1);
}
both_backends!(redaction_strips_personal_fields);

// ------------------------------------------------------------------- NATS

async fn nats_subscriber_receives_the_decision(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let prefix = format!("idvtest_{}", now_ms());
    let bus = async_nats::connect("nats://127.0.0.1:4222")
        .await
        .expect("NATS must be running on 127.0.0.1:4222 (scripts/test starts it)");
    let mut sub = bus
        .subscribe(format!("{prefix}.>"))
        .await
        .expect("subscribe");
    bus.flush().await.expect("flush");

    let config = ReactConfig {
        nats: Some(NatsConfig {
            url: "nats://127.0.0.1:4222".into(),
            subject_prefix: prefix.clone(),
            mode: NatsMode::Core,
            ..Default::default()
        }),
        ..Default::default()
    };
    let d = decision("retry_allowed", "vs_bus", "user_bus");
    let planned = plan(&d, Some("bus@example.test"), &config);
    assert_eq!(planned.len(), 1);
    assert_eq!(planned[0].kind, ReactionKind::Nats);
    let id = planned[0].id.clone();
    write_outbox(&store, &planned).await;
    let dispatcher = Dispatcher::new(store.clone(), config)
        .await
        .expect("dispatcher");
    drain_until(&dispatcher, &store, &id, "delivered").await;

    let msg = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("message within 10 s")
        .expect("subscription open");
    assert_eq!(msg.subject.as_str(), format!("{prefix}.retry_allowed"));
    let headers = msg.headers.expect("headers");
    // Looked up by its wire name (the client's typed and string header names differ).
    let msg_id = headers
        .iter()
        .find(|(name, _)| name.to_string().eq_ignore_ascii_case("Nats-Msg-Id"))
        .and_then(|(_, values)| values.first())
        .map(|v| v.as_str().to_string());
    assert_eq!(msg_id.as_deref(), Some(id.as_str()), "{headers:?}");
    let body: Decision = serde_json::from_slice(&msg.payload).expect("JSON");
    assert_eq!(body, d);
    assert!(!String::from_utf8_lossy(&msg.payload).contains("bus@example.test"));
}
both_backends!(nats_subscriber_receives_the_decision);

#[tokio::test]
async fn a_down_bus_does_not_stop_the_dispatcher() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = db.store().await;
    let mut config = ReactConfig {
        // Nothing listens on port 1.
        nats: Some(NatsConfig {
            url: "nats://127.0.0.1:1".into(),
            subject_prefix: "idvtest_down".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    config.delivery.schedule = vec!["1h".into()];
    let ids = enqueue(&store, &decision("verified", "vs_down", "u"), None, &config).await;
    let dispatcher = Dispatcher::new(store.clone(), config)
        .await
        .expect("start-up does not need the bus");
    assert_eq!(dispatcher.run_once().await.expect("run_once"), 1);
    let r = reaction(&store, &ids[0]).await;
    assert_eq!(r.state, "pending", "kept for a later attempt");
    assert!(r.next_attempt_at_ms > now_ms() + 40 * 60 * 1000);
    assert!(r.last_error.unwrap().contains("nats"));
}

// ------------------------------------------------------------- durability

/// Leases that cannot run out during a test.
fn hour_leases() -> Leases {
    Leases {
        callback_ms: 3_600_000,
        email_ms: 3_600_000,
        nats_ms: 3_600_000,
    }
}

async fn outbox_survives_restart_and_crashed_claims(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (addr, receiver) = start_receiver(vec![], Reply::Status(200)).await;
    let config = callback_config(vec![format!("http://{addr}/cb")], true);
    let mut all = Vec::new();
    {
        // First life: decisions are written, then the process goes away before dispatching.
        let store = db.store().await;
        for i in 0..30 {
            let d = decision("verified", &format!("vs_dur{i}"), &format!("user_dur{i}"));
            all.extend(enqueue(&store, &d, None, &config).await);
        }
        // This instance claimed ten and crashed before recording anything; the leases are
        // long, so only taking its own claims back explains their delivery below.
        let claimed = store
            .claim_reactions(10, now_ms(), &hour_leases(), "idv-durable")
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 10);
        store.close().await;
    }
    // Second life: the same instance's dispatcher runs as `serve` runs it.
    let store = db.store().await;
    let dispatcher = Dispatcher::new(store.clone(), config.clone())
        .await
        .expect("dispatcher")
        .with_instance("idv-durable");
    let waker = dispatcher.waker();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(dispatcher.run(stopped));
    waker.notify_one();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let delivered = store
            .list_reactions(&ReactionFilter {
                state: Some("delivered".into()),
                limit: Some(1000),
                ..Default::default()
            })
            .await
            .expect("list");
        if delivered.len() == all.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} delivered",
            delivered.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(true).expect("stop");
    task.await.expect("dispatcher task");

    // Third life: nothing left to do.
    let dispatcher = Dispatcher::new(store.clone(), config)
        .await
        .expect("dispatcher");
    assert_eq!(dispatcher.run_once().await.expect("run_once"), 0);

    let requests = receiver.requests();
    let ids: Vec<String> = requests
        .iter()
        .map(|r| r.headers["webhook-id"].to_str().unwrap().to_string())
        .collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), all.len(), "each reaction delivered once");
    assert_eq!(unique.len(), all.len());
    assert_eq!(unique, all.iter().collect::<HashSet<_>>());
    for r in &requests {
        verify_independently(r);
    }
}
both_backends!(outbox_survives_restart_and_crashed_claims);

/// Through the whole service: a failed session whose metadata names the user's address and
/// locale (`fr-CA`) produces a French retry mail (the operator's `retry_allowed.fr.txt`; the
/// HTML part falls back to the default) with the operator's resume link in place of "go back
/// to where you started"; a user without a locale gets the default, English.
async fn emails_follow_the_users_locale_and_link_the_resume_url(backend: Backend) {
    let db = TestDb::new(backend).await;
    let sink = SmtpSink::start().await;
    let templates = db.dir.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    std::fs::write(
        templates.join("retry_allowed.fr.txt"),
        "Subject: Vérification à refaire\n\nCe qui n'a pas marché : {{explanation}}\n\
         {{#resume_url}}Reprenez ici : {{resume_url}}{{/resume_url}}\n",
    )
    .unwrap();
    let port = sink.port.to_string();
    let templates = templates.display().to_string();
    let app = TestApp::start(&config_with(
        &db,
        &[SECRET],
        &[
            ("IDVERDICT_SMTP_HOST", "127.0.0.1"),
            ("IDVERDICT_SMTP_PORT", port.as_str()),
            ("IDVERDICT_SMTP_TLS", "none"),
            ("IDVERDICT_SMTP_FROM", "identity@acme.test"),
            ("IDVERDICT_EMAIL_METADATA_KEY", "email"),
            ("IDVERDICT_EMAIL_LOCALE_METADATA_KEY", "locale"),
            ("IDVERDICT_EMAIL_TEMPLATES_DIR", templates.as_str()),
            (
                "IDVERDICT_EMAIL_RESUME_URL",
                "https://app.acme.test/verify?user={user}",
            ),
            ("IDVERDICT_RETRY_SCHEDULE", "20ms,40ms,80ms"),
        ],
    ))
    .await;
    for (i, (user, to, locale)) in [
        ("u_fr", "marie@example.test", Some("fr-CA")),
        ("u_en", "mary@example.test", None),
    ]
    .into_iter()
    .enumerate()
    {
        let mut spec = Spec::new(Kind::RequiresInput, &format!("vs_1loc{i}"), now() - 60);
        spec.user_ref = Some(user.into());
        spec.error_code = Some("document_expired".into());
        spec.report_id = Some(format!("vr_loc{i}"));
        spec.metadata = vec![("email".into(), to.into())];
        if let Some(locale) = locale {
            spec.metadata.push(("locale".into(), locale.into()));
        }
        assert_eq!(app.deliver_signed(&synth::event_bytes(&spec)).await.0, 200);
    }
    let mut mails = Vec::new();
    for _ in 0..600 {
        mails = sink.messages();
        if mails.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let find = |to: &str| {
        mails
            .iter()
            .find(|m| m["rcpt_tos"] == serde_json::json!([to]))
            .unwrap_or_else(|| panic!("no mail to {to}: {mails:?}"))
            .clone()
    };
    let fr = find("marie@example.test");
    assert_eq!(fr["subject"], "Vérification à refaire", "{fr}");
    let text = fr["text"].as_str().unwrap();
    assert!(
        text.contains("Ce qui n'a pas marché : The identity document has expired."),
        "{text}"
    );
    assert!(
        text.contains("Reprenez ici : https://app.acme.test/verify?user=u_fr"),
        "{text}"
    );
    assert!(fr["html"].as_str().unwrap().contains("How to try again"));
    let en = find("mary@example.test");
    assert!(
        en["subject"].as_str().unwrap().contains("try again"),
        "{en}"
    );
    let text = en["text"].as_str().unwrap();
    assert!(
        text.contains("continue at https://app.acme.test/verify?user=u_en and verify again"),
        "{text}"
    );
    assert!(!text.contains("go back to where you started"), "{text}");
    app.stop().await;
}
both_backends!(emails_follow_the_users_locale_and_link_the_resume_url);
