//! The processor's pipeline under hostile orderings and bad data (issue 11, defects 2–4):
//! facts kept from ingest on, so a redaction that overtakes a failure cannot erase it; an
//! event the database refuses is quarantined instead of stalling everything behind it; input
//! no backend can store is refused at the edge with a 400, never a 503.

mod common;

use common::*;
use idverdict::clock::now_ms;
use idverdict::decide::{SessionOutcome, UserState};
use idverdict::processor::Processor;
use idverdict::store::{EventState, NewEvent, Retried, Store};
use idverdict::synth::{self, Kind, Spec};
use serde_json::{json, Value};
use stripe_webhook::{Event, RedactionStatus, SessionStatus};

const PERSONAL: &str = "order-personal@example.com";

async fn drain_with(processor: &Processor) {
    for _ in 0..1000 {
        if processor.run_once().await.expect("processing") == 0 {
            return;
        }
    }
    panic!("the processor never ran dry");
}

/// created → processing → requires_input (a failure that counts) → canceled → redacted, of
/// session `session` for user `user`, as the five events Stripe sends.
fn flow(session: &str, user: &str) -> Vec<NewEvent> {
    let steps = [
        (Kind::Created, 1_000),
        (Kind::Processing, 1_010),
        (Kind::RequiresInput, 1_020),
        (Kind::Canceled, 1_030),
        (Kind::Redacted, 1_040),
    ];
    steps
        .iter()
        .map(|&(kind, created)| {
            let mut spec = Spec::new(kind, session, created);
            spec.user_ref = Some(user.to_string());
            spec.session_created = 990;
            spec.report_id = Some(format!("vr_{session}"));
            spec.metadata = vec![("email".into(), PERSONAL.into())];
            let mut value = synth::event_json(&spec);
            if kind == Kind::Redacted {
                // Stripe's redacted event carries the session as it was: canceled.
                value["data"]["object"]["status"] = json!("canceled");
                value["data"]["object"]["last_verification_report"] = Value::Null;
            }
            let bytes = serde_json::to_vec_pretty(&value).unwrap();
            let event = Event::from_slice(&bytes).expect("a synthetic event parses");
            NewEvent::from_event(&event, bytes).expect("storable")
        })
        .collect()
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for at in 0..=p.len() {
            let mut q = p.clone();
            q.insert(at, n - 1);
            out.push(q);
        }
    }
    out
}

/// How each order is delivered.
#[derive(Debug, Clone, Copy)]
enum Delivery {
    /// One event of every session per round, each round processed before the next arrives:
    /// a session's events are applied in that order, each in a later batch.
    ApartInOrder,
    /// All stored in that order, then processed.
    AllAtOnce,
    /// All stored in that order, but the failure is held back (as when another instance has
    /// it claimed) while the rest, redaction included, is applied; then it is applied.
    FailureWaitsBehindTheRedaction,
}

async fn a_redaction_in_any_order_keeps_the_failed_attempt(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let p = processor(&store);
    let orders = permutations(5);
    assert_eq!(orders.len(), 120);
    let modes = [
        Delivery::ApartInOrder,
        Delivery::AllAtOnce,
        Delivery::FailureWaitsBehindTheRedaction,
    ];
    let mut raw = db.raw().await;
    for (m, mode) in modes.into_iter().enumerate() {
        let flows: Vec<(String, String, Vec<NewEvent>)> = (0..orders.len())
            .map(|i| {
                let session = format!("vs_1m{m}o{i:03}");
                let user = format!("user_m{m}o{i:03}");
                let events = flow(&session, &user);
                (session, user, events)
            })
            .collect();
        match mode {
            Delivery::ApartInOrder => {
                for round in 0..5 {
                    let batch: Vec<NewEvent> = flows
                        .iter()
                        .zip(&orders)
                        .map(|((_, _, events), order)| events[order[round]].clone())
                        .collect();
                    store.insert_events(&batch, now_ms()).await.unwrap();
                    drain_with(&p).await;
                }
            }
            Delivery::AllAtOnce | Delivery::FailureWaitsBehindTheRedaction => {
                for ((_, _, events), order) in flows.iter().zip(&orders) {
                    let batch: Vec<NewEvent> = order.iter().map(|&k| events[k].clone()).collect();
                    store.insert_events(&batch, now_ms()).await.unwrap();
                }
                if matches!(mode, Delivery::FailureWaitsBehindTheRedaction) {
                    for (_, _, events) in &flows {
                        let sql = format!(
                            "UPDATE events SET quarantined_at = 1, quarantine_error = 'held' WHERE id = '{}'",
                            events[2].id
                        );
                        sqlx::query(&sql).execute(&mut raw).await.unwrap();
                    }
                    drain_with(&p).await;
                    // The redaction went through first: the held failure lost its payload...
                    let (session, _, events) = &flows[0];
                    let held = count(
                        &mut raw,
                        &format!(
                            "SELECT COUNT(*) FROM events WHERE id = '{}' AND payload IS NULL AND metadata IS NULL",
                            events[2].id
                        ),
                    )
                    .await;
                    assert_eq!(held, 1, "{session}: the redaction purged the waiting event");
                    // ...and still counts once it is applied.
                    for (_, _, events) in &flows {
                        assert!(matches!(
                            store.retry_event(&events[2].id).await.unwrap(),
                            Retried::Queued(_)
                        ));
                    }
                }
                drain_with(&p).await;
            }
        }

        for ((session, user, _), order) in flows.iter().zip(&orders) {
            let s = store.get_session(session).await.unwrap().expect("session");
            let what = format!("{mode:?}, order {order:?}");
            assert_eq!(s.status, SessionStatus::Canceled, "{what}");
            assert_eq!(s.outcome, SessionOutcome::Canceled, "{what}");
            assert_eq!(s.failed_attempts, 1, "{what}: the failure counts");
            assert_eq!(
                s.redaction_status,
                Some(RedactionStatus::Redacted),
                "{what}"
            );
            assert!(s.metadata.is_empty(), "{what}");
            assert_eq!(s.user_ref.as_deref(), Some(user.as_str()), "{what}");
            let u = store.get_user(user).await.unwrap().expect("user");
            assert_eq!(u.view.attempts_used, 1, "{what}");
            assert_eq!(u.view.current_session.as_deref(), Some(session.as_str()));
            assert_eq!(u.view.state, UserState::Canceled, "{what}");
        }
    }
    let (total, pending) = store.event_counts().await.unwrap();
    assert_eq!((total, pending), (3 * 600, 0));
    // Nothing personal is left in the inbox: payloads and metadata went with the redaction.
    let left = count(
        &mut raw,
        "SELECT COUNT(*) FROM events WHERE payload IS NOT NULL OR metadata IS NOT NULL",
    )
    .await;
    assert_eq!(left, 0);
    let facts = count(
        &mut raw,
        &format!("SELECT COUNT(*) FROM events WHERE facts LIKE '%{PERSONAL}%'"),
    )
    .await;
    assert_eq!(facts, 0, "the facts hold nothing personal");
}
both_backends!(a_redaction_in_any_order_keeps_the_failed_attempt);

/// Make the database refuse any session row for `session` (what a value the backend cannot
/// hold does), the way a CHECK constraint would.
async fn refuse_session(db: &TestDb, session: &str) {
    let mut raw = db.raw().await;
    let statements: Vec<String> = match db.backend {
        Backend::Sqlite => vec![format!(
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON verification_sessions \
             WHEN NEW.id = '{session}' BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END"
        )],
        Backend::Postgres => vec![
            format!(
                "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN \
                 IF NEW.id = '{session}' THEN RAISE EXCEPTION 'refused by the test trigger' \
                 USING ERRCODE = 'check_violation'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            ),
            "CREATE TRIGGER refuse_poison BEFORE INSERT OR UPDATE ON verification_sessions \
             FOR EACH ROW EXECUTE FUNCTION refuse_poison()"
                .to_string(),
        ],
    };
    for sql in statements {
        sqlx::query(&sql).execute(&mut raw).await.expect(&sql);
    }
}

async fn accept_sessions_again(db: &TestDb) {
    let mut raw = db.raw().await;
    let sql = match db.backend {
        Backend::Sqlite => "DROP TRIGGER refuse_poison",
        Backend::Postgres => "DROP TRIGGER refuse_poison ON verification_sessions",
    };
    sqlx::query(sql).execute(&mut raw).await.unwrap();
}

/// Wait (bounded) until nothing is pending: quarantined events are not pending.
async fn settle(store: &Store) {
    for _ in 0..1200 {
        if store
            .list_events(Some(EventState::Pending), 1)
            .await
            .unwrap()
            .is_empty()
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("events stayed pending");
}

async fn post(app: &TestApp, path: &str) -> (u16, Value) {
    let res = app
        .http
        .post(app.url(path))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn an_event_the_database_refuses_is_quarantined_and_blocks_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let cfg = config(&db, &[SECRET]);
    let store = db.store().await;
    refuse_session(&db, "vs_1poison").await;
    let app = TestApp::start(&cfg).await;
    let t = now();

    let before = event(Kind::Verified, "vs_1before", "user_before", t);
    let poison = event(Kind::Verified, "vs_1poison", "user_poison", t);
    let poison_id = Event::from_slice(&poison).unwrap().id;
    for body in [&before, &poison] {
        assert_eq!(app.deliver_signed(body).await.0, 200);
    }
    let after: Vec<Vec<u8>> = (0..20)
        .map(|i| {
            event(
                Kind::Verified,
                &format!("vs_1after{i}"),
                "user_after",
                t + i,
            )
        })
        .collect();
    for body in &after {
        assert_eq!(app.deliver_signed(body).await.0, 200);
    }
    settle(&store).await;

    // Everything but the poison event was applied.
    for id in
        std::iter::once("vs_1before".to_string()).chain((0..20).map(|i| format!("vs_1after{i}")))
    {
        let (status, s) = app.get(&format!("/v1/verification_sessions/{id}")).await;
        assert_eq!(
            (status, s["status"].as_str()),
            (200, Some("verified")),
            "{id}"
        );
    }
    assert_eq!(app.get("/v1/verification_sessions/vs_1poison").await.0, 404);

    // The poison event is visible with its error: API, readiness, metrics.
    let (status, list) = app.get("/v1/events?state=quarantined").await;
    assert_eq!(status, 200);
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{list}");
    assert_eq!(data[0]["id"], json!(poison_id));
    assert_eq!(data[0]["state"], json!("quarantined"));
    assert!(
        data[0]["quarantine_error"]
            .as_str()
            .unwrap()
            .contains("refused by the test trigger"),
        "{list}"
    );
    assert!(data[0].get("payload").is_none());
    let (status, ready) = app.get("/readyz").await;
    assert_eq!(status, 200, "deliveries keep flowing");
    assert_eq!(ready["status"], json!("degraded"));
    assert_eq!(ready["events"]["quarantined"], json!(1));
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // (The recorder is global to the test process: other tests may quarantine too.)
    let quarantined_total: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("idverdict_events_quarantined_total "))
        .expect("the series")
        .parse()
        .unwrap();
    assert!(quarantined_total >= 1.0, "{metrics}");
    let (_, pending) = app.get("/v1/events?state=pending").await;
    assert_eq!(pending["data"].as_array().unwrap().len(), 0);

    // Retrying before the fix quarantines it again, with nothing else held up.
    assert_eq!(
        post(&app, &format!("/v1/events/{poison_id}/retry")).await.0,
        200
    );
    let late = event(Kind::Verified, "vs_1late", "user_late", t);
    assert_eq!(app.deliver_signed(&late).await.0, 200);
    settle(&store).await;
    assert_eq!(app.get("/v1/verification_sessions/vs_1late").await.0, 200);
    assert_eq!(store.quarantined_events().await.unwrap(), 1);

    // The operator fixes the cause and retries: the event is applied.
    accept_sessions_again(&db).await;
    let (status, retried) = post(&app, &format!("/v1/events/{poison_id}/retry")).await;
    assert_eq!(
        (status, retried["state"].as_str()),
        (200, Some("pending")),
        "{retried}"
    );
    settle(&store).await;
    let (status, s) = app.get("/v1/verification_sessions/vs_1poison").await;
    assert_eq!((status, s["status"].as_str()), (200, Some("verified")));
    assert_eq!(store.quarantined_events().await.unwrap(), 0);
    let (_, ready) = app.get("/readyz").await;
    assert_eq!(ready["status"], json!("ready"));

    // Retrying what is not quarantined, or does not exist, says so.
    let (status, body) = post(&app, &format!("/v1/events/{poison_id}/retry")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("event_not_quarantined"))
    );
    let (status, body) = post(&app, "/v1/events/evt_unknown/retry").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("event_not_found"))
    );
    let (status, body) = app.get("/v1/events?state=lost").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_state"))
    );
    app.stop().await;
}
both_backends!(an_event_the_database_refuses_is_quarantined_and_blocks_nothing);

/// A signed event whose identifiers no backend can store: 400 `invalid_identifier`, nothing
/// stored (Stripe would otherwise retry a 503 for days).
async fn unstorable_identifiers_are_refused_at_the_edge(backend: Backend) {
    let db = TestDb::new(backend).await;
    let cfg = config(&db, &[SECRET]);
    let store = db.store().await;
    let app = TestApp::start(&cfg).await;
    let good = synth::event_json(&Spec::new(Kind::Verified, "vs_1edge", now()));
    let long = "x".repeat(300);
    let cases: Vec<(&str, Value)> = vec![
        ("id", json!("evt_1a\u{0}b")),
        ("id", json!(format!("evt_{long}"))),
        ("type", json!("identity.verification_session.verified\u{0}")),
        ("api_version", json!("2026-07-29\u{0}")),
        ("session id", json!("vs_1a\u{0}b")),
        ("session id", json!("vs_1a\nb")),
    ];
    for (field, value) in cases {
        let mut event = good.clone();
        match field {
            "session id" => event["data"]["object"]["id"] = value,
            f => event[f] = value,
        }
        let body = serde_json::to_vec(&event).unwrap();
        let (status, answer) = app.deliver_signed(&body).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some("invalid_identifier")),
            "{field}: {answer}"
        );
    }
    assert_eq!(store.event_counts().await.unwrap(), (0, 0));

    // Path and query parameters with a NUL: 400, never 503.
    for path in [
        "/v1/users/a%00b",
        "/v1/verification_sessions/vs_1a%00b",
        "/v1/users?state=%00",
        "/v1/events?state=a%00",
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body["error"]["code"].is_string(), "{path}: {body}");
    }
    for path in [
        "/v1/reviews/a%00b",
        "/v1/events/evt_%00/retry",
        "/v1/users/a%00b/verification_sessions",
        "/v1/users/a%00b/verification_sessions/vs_1x/cancel",
    ] {
        let (status, body) = post(&app, path).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("invalid_identifier")),
            "{path}: {body}"
        );
    }
    // JSON bodies with a NUL in a string: 400 `invalid_text`; an escaped backslash before
    // `u0000` is plain text and goes through to the route's own answer.
    for (path, body, code) in [
        (
            "/v1/reviews/user_edge",
            r#"{"action":"reject","reviewer":"a\u0000b"}"#,
            "invalid_text",
        ),
        (
            "/v1/reactions/targets/enable",
            r#"{"url":"\u0000"}"#,
            "invalid_text",
        ),
        (
            "/v1/users/user_edge/verification_sessions",
            r#"{"metadata":{"k":"v\u0000"}}"#,
            "invalid_text",
        ),
        (
            "/v1/reviews/user_edge",
            r#"{"action":"reject","reviewer":"a\\u0000b"}"#,
            "user_not_found",
        ),
    ] {
        let res = app
            .http
            .post(app.url(path))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let answer: Value = res.json().await.unwrap();
        assert_eq!(
            answer["error"]["code"].as_str(),
            Some(code),
            "{path} {body}: {answer}"
        );
        assert!(status < 500, "{path}: {status}");
    }
    app.stop().await;
}
both_backends!(unstorable_identifiers_are_refused_at_the_edge);

/// Free text with a NUL (client_reference_id, metadata, last_error.reason) is accepted and
/// stored the same way on both backends: each U+0000 becomes U+FFFD.
async fn a_nul_in_free_text_is_replaced_on_both_backends(backend: Backend) {
    let db = TestDb::new(backend).await;
    let cfg = config(&db, &[SECRET]);
    let store = db.store().await;
    let app = TestApp::start(&cfg).await;
    let mut spec = Spec::new(Kind::RequiresInput, "vs_1nul", now());
    spec.user_ref = Some("user\u{0}nul".into());
    spec.metadata = vec![("note\u{0}".into(), "a\u{0}b".into())];
    let mut event = synth::event_json(&spec);
    event["data"]["object"]["last_error"]["reason"] = json!("bad\u{0}reason");
    let (status, _) = app
        .deliver_signed(&serde_json::to_vec(&event).unwrap())
        .await;
    assert_eq!(status, 200);
    settle(&store).await;
    assert_eq!(store.quarantined_events().await.unwrap(), 0);
    let s = store
        .get_session("vs_1nul")
        .await
        .unwrap()
        .expect("applied");
    assert_eq!(s.user_ref.as_deref(), Some("user\u{FFFD}nul"));
    assert_eq!(s.last_error_reason.as_deref(), Some("bad\u{FFFD}reason"));
    assert_eq!(
        s.metadata.get("note\u{FFFD}").map(String::as_str),
        Some("a\u{FFFD}b")
    );
    let (status, user) = app.get("/v1/users/user%EF%BF%BDnul").await;
    assert_eq!(status, 200, "{user}");
    app.stop().await;
}
both_backends!(a_nul_in_free_text_is_replaced_on_both_backends);

/// Storage trouble is not the events' fault: when PostgreSQL says its disk is full, the batch
/// fails and waits, nothing is quarantined, and once the disk has room again it is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_trouble_quarantines_nothing() {
    let db = TestDb::new(Backend::Postgres).await;
    let store = db.store().await;
    let p = processor(&store);
    let mut raw = db.raw().await;
    for sql in [
        "CREATE FUNCTION disk_full() RETURNS trigger AS $$ BEGIN \
         RAISE EXCEPTION 'could not extend file: No space left on device' \
         USING ERRCODE = 'disk_full'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER disk_full BEFORE INSERT OR UPDATE ON verification_sessions \
         FOR EACH ROW EXECUTE FUNCTION disk_full()",
    ] {
        sqlx::query(sql).execute(&mut raw).await.expect(sql);
    }
    let events: Vec<NewEvent> = (0..3)
        .map(|i| {
            let bytes = event(Kind::Verified, &format!("vs_1full{i}"), "user_full", 1_000);
            NewEvent::from_event(&Event::from_slice(&bytes).unwrap(), bytes).unwrap()
        })
        .collect();
    store.insert_events(&events, now_ms()).await.unwrap();

    for _ in 0..3 {
        let error = p.run_once().await.expect_err("the disk is full");
        assert!(!error.is_about_the_data(), "{error}");
    }
    assert_eq!(store.quarantined_events().await.unwrap(), 0);
    assert_eq!(store.event_counts().await.unwrap(), (3, 3));

    sqlx::query("DROP TRIGGER disk_full ON verification_sessions")
        .execute(&mut raw)
        .await
        .unwrap();
    drain_with(&p).await;
    assert_eq!(store.event_counts().await.unwrap(), (3, 0));
    for i in 0..3 {
        let s = store.get_session(&format!("vs_1full{i}")).await.unwrap();
        assert_eq!(s.map(|s| s.status), Some(SessionStatus::Verified));
    }
}

/// A measurement, not a test (run it with `--ignored --nocapture`): the processor's time to
/// apply the same events from their stored facts and, side by side in the same run, by
/// parsing their payloads (how rows without facts are applied, as every row was before facts
/// were kept). Prints the ratio; asserts nothing about speed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: cargo test --release -p idverdict --test pipeline parse_once -- --ignored --nocapture"]
async fn parse_once_measurement() {
    const EVENTS: usize = 20_000;
    let mut results = Vec::new();
    for round in 0..3 {
        for with_facts in [true, false] {
            let db = TestDb::new(Backend::Sqlite).await;
            let store = db.store().await;
            let p = processor(&store);
            let events: Vec<NewEvent> = (0..EVENTS)
                .map(|i| {
                    let kind = [Kind::Created, Kind::Processing, Kind::RequiresInput][i % 3];
                    let bytes = event(
                        kind,
                        &format!("vs_1m{}", i / 3),
                        &format!("u{}", i / 3),
                        1_000 + i as i64,
                    );
                    let mut new =
                        NewEvent::from_event(&Event::from_slice(&bytes).unwrap(), bytes).unwrap();
                    if !with_facts {
                        new.facts = None;
                    }
                    new
                })
                .collect();
            for chunk in events.chunks(500) {
                store.insert_events(chunk, now_ms()).await.unwrap();
            }
            let started = std::time::Instant::now();
            drain_with(&p).await;
            let elapsed = started.elapsed();
            assert_eq!(store.event_counts().await.unwrap(), (EVENTS as i64, 0));
            println!(
                "round {round} {}: {EVENTS} events applied in {:.3} s ({:.0} events/s)",
                if with_facts { "facts  " } else { "payload" },
                elapsed.as_secs_f64(),
                EVENTS as f64 / elapsed.as_secs_f64()
            );
            results.push((with_facts, elapsed.as_secs_f64()));
        }
    }
    let median = |facts: bool| {
        let mut v: Vec<f64> = results
            .iter()
            .filter(|r| r.0 == facts)
            .map(|r| r.1)
            .collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    println!(
        "median: facts {:.3} s, payload {:.3} s: payload / facts = {:.2}",
        median(true),
        median(false),
        median(false) / median(true)
    );
}

/// A row whose stored facts no longer decode (damaged by hand, say) is quarantined like one
/// the database refuses; the events around it are applied.
async fn undecodable_facts_are_quarantined(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let p = processor(&store);
    let events: Vec<NewEvent> = (0..3)
        .map(|i| {
            let bytes = event(Kind::Verified, &format!("vs_1dmg{i}"), "user_dmg", 1_000);
            NewEvent::from_event(&Event::from_slice(&bytes).unwrap(), bytes).unwrap()
        })
        .collect();
    store.insert_events(&events, now_ms()).await.unwrap();
    let mut raw = db.raw().await;
    sqlx::query(&format!(
        "UPDATE events SET facts = '{{\"kind\":\"session\"' WHERE id = '{}'",
        events[1].id
    ))
    .execute(&mut raw)
    .await
    .unwrap();
    drain_with(&p).await;
    for (i, applied) in [(0, true), (1, false), (2, true)] {
        let s = store.get_session(&format!("vs_1dmg{i}")).await.unwrap();
        assert_eq!(s.is_some(), applied, "vs_1dmg{i}");
    }
    let quarantined = store
        .list_events(Some(EventState::Quarantined), 10)
        .await
        .unwrap();
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0].id, events[1].id);
    assert!(
        quarantined[0]
            .quarantine_error
            .as_deref()
            .unwrap()
            .contains("event facts"),
        "{quarantined:?}"
    );
}
both_backends!(undecodable_facts_are_quarantined);
