//! Delivery guarantees of the outbox against real things: crashed claims taken back without
//! costing a retry slot (both backends), a failing callback URL paused and resumed with
//! nothing lost, JetStream publishes acknowledged and stored once — on the local NATS server,
//! and on a private `nats-server -js` killed and restarted mid-run —, and callback secrets
//! that never reach the database.
//!
//! Waits are bounded polls, never timing assertions: the bounds only keep a broken build
//! from hanging the suite.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use common::*;
use idverdict::clock::now_ms;
use idverdict::decide::{Decision, DecisionType, UserState};
use idverdict::react::config::{NatsConfig, NatsMode};
use idverdict::react::{plan, Dispatcher, ReactConfig};
use idverdict::store::{
    Enabled, Interrupted, Leases, ReactionRow, Redeliver, Store, TargetState, INTERRUPTED,
};

const CALLBACK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const PATIENCE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------- helpers

fn decision(n: usize, kind: DecisionType) -> Decision {
    let session = format!("vs_dlv{n}");
    let user = format!("user_dlv{n}");
    Decision {
        key: format!("{user}:{}:{session}:1", kind.as_str()),
        kind,
        user: Some(user),
        session,
        state: UserState::parse(kind.as_str()).unwrap_or(UserState::Verified),
        why: None,
        error_code: None,
        reason: None,
        explanation: None,
        next_step: None,
        attempts_used: 0,
        attempts_left: 3,
        resume: None,
        reviewer: None,
        note: None,
        occurred_at: now(),
        locale: None,
    }
}

/// Plan decisions `range` and write them to the outbox as the processor does; their ids.
async fn enqueue(
    store: &Store,
    config: &ReactConfig,
    range: std::ops::Range<usize>,
) -> Vec<String> {
    let mut ids = Vec::new();
    let mut tx = store.begin().await.expect("begin");
    for n in range {
        let planned = plan(&decision(n, DecisionType::Verified), None, config);
        store
            .enqueue_reactions(&mut tx, &planned, now_ms())
            .await
            .expect("enqueue");
        ids.extend(planned.into_iter().map(|r| r.id));
    }
    tx.commit().await.expect("commit");
    ids
}

async fn reaction(store: &Store, id: &str) -> ReactionRow {
    store
        .get_reaction(id)
        .await
        .expect("get reaction")
        .expect("reaction exists")
}

/// Drain with `run_once` until every reaction reaches `state`.
async fn drain_until(d: &Dispatcher, store: &Store, ids: &[String], state: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        d.run_once().await.expect("run_once");
        let mut stuck = None;
        for id in ids {
            let r = reaction(store, id).await;
            if r.state != state {
                stuck = Some(r);
                break;
            }
        }
        let Some(r) = stuck else { return };
        assert!(
            Instant::now() < deadline,
            "reaction {} stuck in {} (wanted {state}): {:?}",
            r.id,
            r.state,
            r.last_error
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Leases that cannot run out during a test.
fn hour_leases() -> Leases {
    Leases {
        callback_ms: 3_600_000,
        email_ms: 3_600_000,
        nats_ms: 3_600_000,
    }
}

/// A callback receiver answering `status` (changeable) and counting every request's
/// `webhook-id`.
#[derive(Clone, Default)]
struct Receiver {
    status: Arc<AtomicU16>,
    ids: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Receiver {
    async fn start(status: u16) -> (SocketAddr, Receiver) {
        let receiver = Receiver::default();
        receiver.status.store(status, Ordering::SeqCst);
        let state = receiver.clone();
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
                    state.ids.lock().unwrap().push(id);
                    StatusCode::from_u16(state.status.load(Ordering::SeqCst)).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (addr, receiver)
    }

    fn ids(&self) -> Vec<String> {
        self.ids.lock().unwrap().clone()
    }

    fn count(&self, id: &str) -> usize {
        self.ids().iter().filter(|i| *i == id).count()
    }
}

fn callback_config(addr: SocketAddr, schedule: &[&str]) -> ReactConfig {
    let mut c = ReactConfig::default();
    c.callbacks.urls = vec![format!("http://{addr}/cb")];
    c.callbacks.secrets = vec![CALLBACK_SECRET.into()];
    c.callbacks.timeout_secs = 5;
    c.delivery.schedule = schedule.iter().map(|s| s.to_string()).collect();
    c.delivery.allow_private_targets = true;
    c
}

// ------------------------------------------------------ crashes and claims

/// A dispatcher claimed two reactions and died before recording anything (the leases are an
/// hour long). When it starts again it takes them back at once — on SQLite whatever is
/// claimed (one instance by construction), on PostgreSQL what its own instance id claimed,
/// while another instance leaves them alone until their lease runs out — and the lost
/// attempt is logged as interrupted without using up a slot: all three scheduled attempts
/// still reach the (failing) receiver.
async fn interrupted_claims_are_taken_back_without_using_a_retry_slot(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let (addr, receiver) = Receiver::start(500).await;
    let config = callback_config(addr, &["10ms", "20ms"]);
    let ids = enqueue(&store, &config, 0..2).await;
    let claimed = store
        .claim_reactions(10, now_ms(), &hour_leases(), "idv-a")
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 2);

    let other = Dispatcher::new(store.clone(), config.clone())
        .await
        .expect("dispatcher")
        .with_instance("idv-b");
    let restarted = Dispatcher::new(store.clone(), config.clone())
        .await
        .expect("dispatcher")
        .with_instance("idv-a");
    match backend {
        Backend::Sqlite => assert_eq!(other.reclaim_interrupted().await.unwrap(), 2),
        Backend::Postgres => {
            assert_eq!(other.reclaim_interrupted().await.unwrap(), 0);
            assert_eq!(other.run_once().await.unwrap(), 0, "leased to idv-a");
            assert_eq!(restarted.reclaim_interrupted().await.unwrap(), 2);
        }
    }
    for id in &ids {
        let r = reaction(&store, id).await;
        assert_eq!(r.state, "pending");
        assert!(r.next_attempt_at_ms <= now_ms(), "due at once");
    }
    drain_until(&restarted, &store, &ids, "exhausted").await;
    for id in &ids {
        let log = store.reaction_attempts(id).await.expect("attempts");
        let errors: Vec<&str> = log
            .iter()
            .map(|a| a.error.as_deref().unwrap_or(""))
            .collect();
        assert_eq!(log.len(), 4, "{errors:?}");
        assert_eq!(errors[0], INTERRUPTED);
        assert!(
            errors[1..].iter().all(|e| e.contains("HTTP 500")),
            "{errors:?}"
        );
        assert_eq!(receiver.count(id), 3, "every scheduled attempt was made");
    }
}
both_backends!(interrupted_claims_are_taken_back_without_using_a_retry_slot);

/// A claim whose lease ran out (its instance is gone and never comes back) is taken over by
/// whichever dispatcher claims next, logged as interrupted, with no slot used up.
async fn an_expired_lease_is_taken_over_without_using_a_retry_slot(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let (addr, receiver) = Receiver::start(500).await;
    let config = callback_config(addr, &["10ms"]);
    let ids = enqueue(&store, &config, 0..1).await;
    let short = Leases {
        callback_ms: 1,
        email_ms: 1,
        nats_ms: 1,
    };
    assert_eq!(
        store
            .claim_reactions(10, now_ms(), &short, "idv-gone")
            .await
            .unwrap()
            .len(),
        1
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    let d = Dispatcher::new(store.clone(), config)
        .await
        .expect("dispatcher")
        .with_instance("idv-c");
    drain_until(&d, &store, &ids, "exhausted").await;
    let log = store.reaction_attempts(&ids[0]).await.unwrap();
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].error.as_deref(), Some(INTERRUPTED));
    assert_eq!(receiver.count(&ids[0]), 2);
    // Nothing to take back any more.
    assert_eq!(
        store
            .reclaim_interrupted(Interrupted::All, now_ms())
            .await
            .unwrap(),
        0
    );
}
both_backends!(an_expired_lease_is_taken_over_without_using_a_retry_slot);

// ------------------------------------------------------ a URL that keeps failing

/// The receiver fails every request. Once the URL has failed for `pause_after` it is paused:
/// its reactions stay queued and no attempt is made for them (nor for a new one), however
/// often the dispatcher runs. Enabling it sends them all at once — also the one that used up
/// its retries while the URL was failing — and each arrives exactly once.
async fn a_failing_callback_url_is_paused_then_resumed_with_nothing_lost(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let (addr, receiver) = Receiver::start(503).await;
    let url = format!("http://{addr}/cb");
    // One reaction exhausts quickly (two attempts); the rest keep retrying.
    let mut quick = callback_config(addr, &["10ms"]);
    quick.callbacks.pause_after = Duration::from_millis(300);
    let mut config = callback_config(addr, &["50ms"; 40]);
    config.callbacks.pause_after = Duration::from_millis(300);
    let exhausted = enqueue(&store, &quick, 0..1).await;
    let fast = Dispatcher::new(store.clone(), quick).await.unwrap();
    drain_until(&fast, &store, &exhausted, "exhausted").await;

    let waiting = enqueue(&store, &config, 1..4).await;
    let d = Dispatcher::new(store.clone(), config.clone())
        .await
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    let paused = loop {
        d.run_once().await.unwrap();
        let targets = store
            .callback_targets(&config.callbacks.urls)
            .await
            .unwrap();
        let t = targets
            .iter()
            .find(|t| t.url == url)
            .expect("the URL is listed");
        if t.state == TargetState::Paused {
            break t.clone();
        }
        assert_eq!(t.state, TargetState::Failing, "{t:?}");
        assert!(Instant::now() < deadline, "never paused: {t:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(paused.configured);
    assert_eq!(paused.waiting, 3);
    assert!(paused
        .last_error
        .as_deref()
        .unwrap_or("")
        .contains("HTTP 503"));
    assert!(
        paused.paused_at_ms.unwrap() - paused.failing_since_ms.unwrap() >= 300,
        "{paused:?}"
    );

    // Paused: nothing is attempted, a new reaction for it waits too, nothing is dropped.
    let later = enqueue(&store, &config, 4..5).await;
    let requests = receiver.ids().len();
    for _ in 0..5 {
        assert_eq!(d.run_once().await.unwrap(), 0);
    }
    assert_eq!(receiver.ids().len(), requests);
    assert_eq!(store.next_reaction_due().await.unwrap(), None);
    for id in waiting.iter().chain(&later) {
        assert_eq!(reaction(&store, id).await.state, "pending");
    }
    let stats = store.stats().await.unwrap();
    assert_eq!(
        (stats.paused_callback_targets, stats.held_reactions),
        (1, 4)
    );

    // The app is fixed; the operator enables the URL.
    receiver.status.store(200, Ordering::SeqCst);
    let before = receiver.ids();
    match store.enable_callback_target(&url, now_ms()).await.unwrap() {
        Enabled::Resumed(requeued) => {
            assert_eq!((requeued.pending, requeued.exhausted), (4, 1))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.enable_callback_target(&url, now_ms()).await.unwrap(),
        Enabled::NotPaused(TargetState::Healthy)
    );
    let all: Vec<String> = exhausted
        .iter()
        .chain(&waiting)
        .chain(&later)
        .cloned()
        .collect();
    drain_until(&d, &store, &all, "delivered").await;
    let after: Vec<String> = receiver.ids()[before.len()..].to_vec();
    let unique: HashSet<&String> = after.iter().collect();
    assert_eq!(
        after.len(),
        all.len(),
        "each sent once after enabling: {after:?}"
    );
    assert_eq!(unique, all.iter().collect::<HashSet<_>>());
    let t = store
        .callback_targets(&config.callbacks.urls)
        .await
        .unwrap();
    assert_eq!(t[0].state, TargetState::Healthy);
    assert_eq!(t[0].waiting, 0);
}
both_backends!(a_failing_callback_url_is_paused_then_resumed_with_nothing_lost);

/// The console lists a paused URL on its reactions page; only an admin may enable it there
/// (a viewer sees no button and is refused), and the audit log records who did.
async fn an_admin_enables_a_paused_url_in_the_console(backend: Backend) {
    use common::console::{add_operator, Console};
    use idverdict::decide::access::Role;
    let db = TestDb::new(backend).await;
    let (addr, receiver) = Receiver::start(500).await;
    let url = format!("http://{addr}/cb");
    let app = TestApp::start(&config_with(
        &db,
        &[SECRET],
        &[
            ("IDVERDICT_CALLBACK_URLS", url.as_str()),
            ("IDVERDICT_CALLBACK_SECRETS", CALLBACK_SECRET),
            ("IDVERDICT_ALLOW_PRIVATE_TARGETS", "on"),
            ("IDVERDICT_CALLBACK_PAUSE_AFTER", "300ms"),
            ("IDVERDICT_RETRY_SCHEDULE", &["100ms"; 30].join(",")),
        ],
    ))
    .await;
    let store = db.store().await;
    add_operator(&store, "ada@example.com", Role::Admin).await;
    add_operator(&store, "vic@example.com", Role::Viewer).await;
    let body = event(
        idverdict::synth::Kind::Verified,
        "vs_console1",
        "user_console",
        now(),
    );
    assert_eq!(app.deliver_signed(&body).await.0, 200);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let t = store
            .callback_targets(std::slice::from_ref(&url))
            .await
            .unwrap();
        if t[0].state == TargetState::Paused {
            break;
        }
        assert!(Instant::now() < deadline, "never paused: {t:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let base = app.url("");
    let mut vic = Console::logged_in(&base, "vic@example.com").await;
    let page = vic.get("/console/reactions").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(&url) && page.body.contains("paused"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("/console/reactions/targets/enable"));
    let overview = vic.get("/console").await;
    assert!(
        overview.body.contains("1 callback URL(s) paused"),
        "the overview warns of the paused URL: {}",
        overview.body
    );
    let token = page.csrf();
    let refused = vic
        .post(
            "/console/reactions/targets/enable",
            &[("url", url.as_str()), ("csrf_token", token.as_str())],
        )
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        store
            .callback_targets(std::slice::from_ref(&url))
            .await
            .unwrap()[0]
            .state,
        TargetState::Paused
    );

    receiver.status.store(200, Ordering::SeqCst);
    let mut ada = Console::logged_in(&base, "ada@example.com").await;
    let page = ada.get("/console/reactions").await;
    assert!(
        page.body.contains("/console/reactions/targets/enable"),
        "{}",
        page.body
    );
    let token = page.csrf();
    let done = ada
        .post(
            "/console/reactions/targets/enable",
            &[("url", url.as_str()), ("csrf_token", token.as_str())],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    // What waited goes out now that the URL answers 200.
    loop {
        let t = store
            .callback_targets(std::slice::from_ref(&url))
            .await
            .unwrap();
        if t[0].state == TargetState::Healthy && t[0].waiting == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not delivered after enabling: {t:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let overview = ada.get("/console").await;
    assert!(
        !overview.body.contains("callback URL(s) paused"),
        "no warning once enabled: {}",
        overview.body
    );
    let audit = store.audit_page(None, Some(&url), 10).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "target.enable");
    assert_eq!(audit[0].operator.as_deref(), Some("ada@example.com"));
    app.stop().await;
}
both_backends!(an_admin_enables_a_paused_url_in_the_console);

/// `callbacks.pause_after = 0s`: a failing URL is never paused.
#[tokio::test]
async fn pausing_can_be_turned_off() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = db.store().await;
    let (addr, _receiver) = Receiver::start(500).await;
    let mut config = callback_config(addr, &["5ms"; 10]);
    config.callbacks.pause_after = Duration::ZERO;
    let ids = enqueue(&store, &config, 0..1).await;
    let d = Dispatcher::new(store.clone(), config.clone())
        .await
        .unwrap();
    drain_until(&d, &store, &ids, "exhausted").await;
    let t = store
        .callback_targets(&config.callbacks.urls)
        .await
        .unwrap();
    assert_eq!(t[0].state, TargetState::Failing);
    assert_eq!(reaction(&store, &ids[0]).await.attempts, 11);
}

// ------------------------------------------------------------- secrets

/// The threat model says the database never holds a callback secret: after a decision was
/// signed and delivered, neither the `whsec_…` string nor its base64 key appears in any cell
/// of any table, nor (SQLite) anywhere in the bytes of the data directory's files.
async fn callback_secrets_never_reach_the_database(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (addr, receiver) = Receiver::start(200).await;
    let url = format!("http://{addr}/cb");
    let app = TestApp::start(&config_with(
        &db,
        &[SECRET],
        &[
            ("IDVERDICT_CALLBACK_URLS", url.as_str()),
            ("IDVERDICT_CALLBACK_SECRETS", CALLBACK_SECRET),
            ("IDVERDICT_ALLOW_PRIVATE_TARGETS", "on"),
        ],
    ))
    .await;
    let body = event(
        idverdict::synth::Kind::Verified,
        "vs_secret1",
        "user_secret",
        now(),
    );
    assert_eq!(app.deliver_signed(&body).await.0, 200);
    let deadline = Instant::now() + PATIENCE;
    while receiver.ids().is_empty() {
        assert!(Instant::now() < deadline, "no callback arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.stop().await;
    let key_b64 = CALLBACK_SECRET.trim_start_matches("whsec_");
    let mut conn = db.raw().await;
    for (cell, value) in dump(&mut conn, db.backend).await {
        assert!(!value.contains(key_b64), "{cell} holds the callback secret");
    }
    if db.backend == Backend::Sqlite {
        for entry in std::fs::read_dir(db.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                assert!(
                    !bytes
                        .windows(key_b64.len())
                        .any(|w| w == key_b64.as_bytes()),
                    "{} holds the callback secret",
                    path.display()
                );
            }
        }
    }
}
both_backends!(callback_secrets_never_reach_the_database);

// ------------------------------------------------------------------- NATS

fn random_name(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        idverdict::config::random_token(10).to_lowercase()
    )
}

fn jetstream_config(url: &str, prefix: &str, stream: Option<&str>) -> ReactConfig {
    let mut c = ReactConfig {
        nats: Some(NatsConfig {
            url: url.to_string(),
            subject_prefix: prefix.to_string(),
            mode: NatsMode::JetStream,
            stream: stream.map(str::to_string),
            ..Default::default()
        }),
        ..Default::default()
    };
    c.delivery.schedule = vec!["20ms".into(); 3];
    c
}

/// Every message of a stream: `(Nats-Msg-Id, subject)`.
async fn stream_messages(
    js: &async_nats::jetstream::Context,
    stream: &str,
) -> Vec<(String, String)> {
    let mut s = js.get_stream(stream).await.expect("stream");
    let last = s.info().await.expect("stream info").state.last_sequence;
    let mut out = Vec::new();
    for seq in 1..=last {
        let Ok(m) = s.get_raw_message(seq).await else {
            continue;
        };
        let id = m
            .headers
            .iter()
            .find(|(name, _)| name.to_string().eq_ignore_ascii_case("Nats-Msg-Id"))
            .and_then(|(_, values)| values.first())
            .map(|v| v.as_str().to_string())
            .unwrap_or_default();
        out.push((id, m.subject.to_string()));
    }
    out
}

async fn shared_bus() -> async_nats::jetstream::Context {
    let client = async_nats::connect("nats://127.0.0.1:4222")
        .await
        .expect("NATS must be running on 127.0.0.1:4222 with -js (scripts/test starts it)");
    async_nats::jetstream::new(client)
}

/// With `nats.stream`, idverdict creates the stream; each message is delivered only once the
/// stream acknowledged it, and a replay (same `Nats-Msg-Id`) is stored once.
async fn jetstream_messages_are_acknowledged_and_stored_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let prefix = random_name("idvjs");
    let stream = random_name("IDVJS").to_uppercase();
    let config = jetstream_config("nats://127.0.0.1:4222", &prefix, Some(&stream));
    let ids = enqueue(&store, &config, 0..3).await;
    let d = Dispatcher::new(store.clone(), config).await.unwrap();
    drain_until(&d, &store, &ids, "delivered").await;

    let js = shared_bus().await;
    let messages = stream_messages(&js, &stream).await;
    let stored: HashSet<&str> = messages.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert_eq!(stored, ids.iter().map(String::as_str).collect());
    assert!(messages
        .iter()
        .all(|(_, subject)| subject == &format!("{prefix}.verified")));

    // The operator replays one: delivered again, stored once.
    assert_eq!(
        store
            .redeliver(Redeliver::One(&ids[0]), now_ms())
            .await
            .unwrap(),
        1
    );
    drain_until(&d, &store, &ids[..1], "delivered").await;
    assert_eq!(reaction(&store, &ids[0]).await.attempts, 2);
    assert_eq!(stream_messages(&js, &stream).await.len(), 3);
    js.delete_stream(&stream).await.expect("delete stream");
}
both_backends!(jetstream_messages_are_acknowledged_and_stored_once);

/// No stream captures the subject and idverdict is not to create one: the first attempt
/// fails for good with the remedy (the settings by name); once a stream exists, a
/// redelivery goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subject_no_stream_captures_fails_at_once_naming_the_settings() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = db.store().await;
    let prefix = random_name("idvnostream");
    let config = jetstream_config("nats://127.0.0.1:4222", &prefix, None);
    let ids = enqueue(&store, &config, 0..1).await;
    let d = Dispatcher::new(store.clone(), config).await.unwrap();
    assert_eq!(d.run_once().await.unwrap(), 1);
    let r = reaction(&store, &ids[0]).await;
    assert_eq!(r.state, "exhausted", "{:?}", r.last_error);
    let error = r.last_error.unwrap_or_default();
    for named in [
        "nats.stream",
        "IDVERDICT_NATS_STREAM",
        "nats.mode",
        &format!("{prefix}.>"),
    ] {
        assert!(error.contains(named), "`{named}` missing from: {error}");
    }

    let js = shared_bus().await;
    let stream = random_name("IDVNS").to_uppercase();
    js.create_stream(async_nats::jetstream::stream::Config {
        name: stream.clone(),
        subjects: vec![format!("{prefix}.>")],
        ..Default::default()
    })
    .await
    .expect("create stream");
    store
        .redeliver(Redeliver::AllExhausted, now_ms())
        .await
        .unwrap();
    drain_until(&d, &store, &ids, "delivered").await;
    assert_eq!(stream_messages(&js, &stream).await.len(), 1);
    js.delete_stream(&stream).await.expect("delete stream");
}

/// A `nats-server -js` of the test's own, on a free port with its own store directory.
struct PrivateNats {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl PrivateNats {
    async fn start() -> PrivateNats {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut nats = PrivateNats {
            port,
            dir: tempfile::tempdir().expect("store dir"),
            child: None,
        };
        nats.restart().await;
        nats
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Start (again) on the same port and store directory; return once it accepts clients.
    async fn restart(&mut self) {
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server must be installed");
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "nats-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: no goodbye to the clients, acknowledgements in flight are lost.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The dispatcher runs as `serve` runs it while decisions keep coming; the bus is killed
/// mid-run and started again. Every reaction ends up delivered, and the stream holds each
/// message exactly once (a publish whose acknowledgement was lost is resent with the same
/// `Nats-Msg-Id` and deduplicated by the stream).
async fn a_bus_killed_and_restarted_mid_run_loses_nothing_and_duplicates_nothing(backend: Backend) {
    const TOTAL: usize = 150;
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let mut bus = PrivateNats::start().await;
    let mut config = jetstream_config(&bus.url(), "idvrestart", Some("IDV_RESTART"));
    config.delivery.schedule = ["50ms", "100ms", "200ms", "400ms", "800ms"]
        .iter()
        .chain(&["1s"; 30])
        .map(|s| s.to_string())
        .collect();
    let dispatcher = Dispatcher::new(store.clone(), config.clone())
        .await
        .unwrap();
    let waker = dispatcher.waker();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(dispatcher.run(stopped));

    // Decisions keep coming, one every 10 ms.
    let produced = Arc::new(AtomicUsize::new(0));
    let producer = {
        let (store, config, produced, waker) = (
            store.clone(),
            config.clone(),
            produced.clone(),
            waker.clone(),
        );
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..TOTAL {
                ids.extend(enqueue(&store, &config, n..n + 1).await);
                produced.fetch_add(1, Ordering::SeqCst);
                waker.notify_one();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            ids
        })
    };
    let delivered = |store: Store| async move {
        store
            .list_reactions(&idverdict::store::ReactionFilter {
                state: Some("delivered".into()),
                limit: Some(10_000),
                ..Default::default()
            })
            .await
            .unwrap()
            .len()
    };
    let deadline = Instant::now() + PATIENCE;
    while delivered(store.clone()).await < 30 {
        assert!(Instant::now() < deadline, "nothing delivered");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    bus.kill();
    let produced_at_kill = produced.load(Ordering::SeqCst);
    assert!(produced_at_kill < TOTAL, "the kill must land mid-run");
    tokio::time::sleep(Duration::from_millis(300)).await;
    bus.restart().await;

    let ids = producer.await.unwrap();
    assert_eq!(ids.len(), TOTAL);
    while delivered(store.clone()).await < TOTAL {
        assert!(Instant::now() < deadline, "not everything was delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(true);
    task.await.unwrap();

    // The outage was seen: some attempts failed and were retried.
    let mut retried = 0;
    for id in &ids {
        if reaction(&store, id).await.attempts > 1 {
            retried += 1;
        }
    }
    assert!(retried > 0, "no attempt failed while the bus was down");

    let client = async_nats::connect(bus.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let messages = stream_messages(&js, "IDV_RESTART").await;
    let stored: Vec<&str> = messages.iter().map(|(id, _)| id.as_str()).collect();
    let unique: HashSet<&str> = stored.iter().copied().collect();
    assert_eq!(
        unique.len(),
        stored.len(),
        "a message is in the stream twice"
    );
    assert_eq!(
        unique,
        ids.iter().map(String::as_str).collect::<HashSet<_>>()
    );
}
both_backends!(a_bus_killed_and_restarted_mid_run_loses_nothing_and_duplicates_nothing);
