//! The receiver over real HTTP, on SQLite and PostgreSQL: bad input is refused with the right
//! status and stores nothing; good events are stored once and applied once.

mod common;

use common::*;
use idverdict::synth::{self, Kind, Spec};
use rand::seq::SliceRandom;

async fn stored(db: &TestDb) -> i64 {
    count(&mut db.raw().await, "SELECT COUNT(*) FROM events").await
}

async fn bad_input_is_refused_and_nothing_is_stored(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&config(&db, &[SECRET])).await;
    let body = event(Kind::Verified, "vs_1bad", "user_bad", now());
    let t = now();
    let good = stripe_webhook::compute_signature(&body, SECRET, t);
    let mut tampered = body.clone();
    tampered[10] ^= 1;

    // (case, body, Stripe-Signature header, expected status, expected error code)
    type Case<'a> = (&'a str, Vec<u8>, Option<String>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "missing header",
            body.clone(),
            None,
            400,
            "missing_signature_header",
        ),
        (
            "malformed header",
            body.clone(),
            Some("bad_header".into()),
            400,
            "malformed_signature_header",
        ),
        (
            "v0 only",
            body.clone(),
            Some(format!("t={t},v0={good}")),
            400,
            "no_v1_signature",
        ),
        (
            "wrong secret",
            body.clone(),
            Some(stripe_webhook::sign(&body, "whsec_other", t)),
            400,
            "no_matching_signature",
        ),
        (
            "stale",
            body.clone(),
            Some(stripe_webhook::sign(&body, SECRET, t - 301)),
            400,
            "timestamp_too_old",
        ),
        (
            "future",
            body.clone(),
            Some(stripe_webhook::sign(&body, SECRET, t + 3600)),
            400,
            "timestamp_in_future",
        ),
        (
            "tampered body",
            tampered,
            Some(format!("t={t},v1={good}")),
            400,
            "no_matching_signature",
        ),
        (
            "not json",
            b"} not json [".to_vec(),
            Some(stripe_webhook::sign(b"} not json [", SECRET, t)),
            400,
            "invalid_json",
        ),
        (
            "json that is not an event",
            br#"{"id":"cus_1","object":"customer"}"#.to_vec(),
            Some(stripe_webhook::sign(
                br#"{"id":"cus_1","object":"customer"}"#,
                SECRET,
                t,
            )),
            400,
            "not_an_event",
        ),
    ];
    for (name, body, header, status, code) in cases {
        let (got, json) = app.deliver(&body, header.as_deref()).await;
        assert_eq!(got, status, "{name}: {json}");
        assert_eq!(json["error"]["code"], code, "{name}: {json}");
        assert!(
            json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{name}"
        );
    }

    // Oversized: 413 before anything else, from the announced length (sent by hand: a client
    // still writing the body when the server answers and closes can lose the answer).
    let (head, body) = app
        .raw_exchange(&format!(
            "POST /webhook HTTP/1.1\r\nHost: idverdict\r\nContent-Type: application/json\r\n\
             Stripe-Signature: {}\r\nContent-Length: 70000\r\nConnection: close\r\n\r\n",
            stripe_webhook::sign(b"{}", SECRET, t)
        ))
        .await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(json["error"]["code"], "payload_too_large", "{json}");

    // Wrong method and unknown path.
    let res = app.http.get(app.url("/webhook")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 405);
    let res = app
        .http
        .post(app.url("/nope"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);

    assert_eq!(
        stored(&db).await,
        0,
        "nothing may be stored for refused input"
    );
    app.stop().await;
}
both_backends!(bad_input_is_refused_and_nothing_is_stored);

async fn a_duplicate_is_acknowledged_and_changes_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&config(&db, &[SECRET])).await;
    let body = event(Kind::Verified, "vs_1dup", "user_dup", now());
    let (status, json) = app.deliver_signed(&body).await;
    assert_eq!(
        (status, json["received"].as_bool()),
        (200, Some(true)),
        "{json}"
    );
    assert_eq!(json["duplicate"], false);
    // Stripe re-sends with a new timestamp and signature: same evt_, same bytes.
    let (status, json) = app.deliver_signed(&body).await;
    assert_eq!(status, 200);
    assert_eq!(json["duplicate"], true);
    assert_eq!(stored(&db).await, 1);
    drain(&db.store().await).await;
    let (status, session) = app.get("/v1/verification_sessions/vs_1dup").await;
    assert_eq!(status, 200);
    assert_eq!(
        session["history"].as_array().map(Vec::len),
        Some(1),
        "{session}"
    );
    app.stop().await;
}
both_backends!(a_duplicate_is_acknowledged_and_changes_nothing);

async fn rotated_secrets_and_several_v1_are_accepted(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&config(&db, &["whsec_old_secret", "whsec_new_secret"])).await;
    for (i, secrets) in [
        vec!["whsec_old_secret"],
        vec!["whsec_new_secret"],
        vec!["whsec_unknown", "whsec_new_secret"],
    ]
    .into_iter()
    .enumerate()
    {
        let body = event(Kind::Created, &format!("vs_1rot{i}"), "user_rot", now());
        let header = stripe_webhook::sign_with_secrets(&body, &secrets, now());
        let (status, json) = app.deliver(&body, Some(&header)).await;
        assert_eq!(status, 200, "{secrets:?}: {json}");
    }
    assert_eq!(stored(&db).await, 3);
    app.stop().await;
}
both_backends!(rotated_secrets_and_several_v1_are_accepted);

async fn other_event_types_are_stored_but_not_acted_on(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&config(&db, &[SECRET])).await;
    let body = br#"{"id":"evt_1other","object":"event","api_version":"2026-07-29.dahlia","created":1700000000,"data":{"object":{"id":"cus_1","object":"customer"}},"livemode":false,"pending_webhooks":1,"request":null,"type":"customer.created"}"#;
    let (status, _) = app.deliver_signed(body).await;
    assert_eq!(status, 200);
    let store = db.store().await;
    drain(&store).await;
    assert_eq!(
        count(
            &mut db.raw().await,
            "SELECT COUNT(*) FROM events WHERE id = 'evt_1other' AND disposition = 'ignored:not_identity'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &mut db.raw().await,
            "SELECT COUNT(*) FROM verification_sessions"
        )
        .await,
        0
    );
    app.stop().await;
}
both_backends!(other_event_types_are_stored_but_not_acted_on);

async fn the_api_requires_the_token(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&config(&db, &[SECRET])).await;
    for auth in [
        None,
        Some("Bearer wrong-token-wrong-token"),
        Some("Basic dGVzdA=="),
    ] {
        let mut req = app.http.get(app.url("/v1/users/anyone"));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status().as_u16(), 401, "{auth:?}");
    }
    // With the token: someone idverdict never heard of is in state `none`.
    let (status, body) = app.get("/v1/users/anyone").await;
    assert_eq!((status, body["state"].as_str()), (200, Some("none")));
    let res = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let res = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    app.stop().await;
}
both_backends!(the_api_requires_the_token);

async fn storage_trouble_answers_503_so_stripe_retries(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&config(&db, &[SECRET])).await;
    let mut raw = db.raw().await;
    sqlx::query("ALTER TABLE events RENAME TO events_away")
        .execute(&mut raw)
        .await
        .unwrap();
    let body = event(Kind::Created, "vs_1down", "user_down", now());
    let (status, json) = app.deliver_signed(&body).await;
    assert_eq!(status, 503, "{json}");
    assert_eq!(json["error"]["code"], "storage_unavailable");
    sqlx::query("ALTER TABLE events_away RENAME TO events")
        .execute(&mut raw)
        .await
        .unwrap();
    // Stripe's retry now succeeds.
    let (status, _) = app.deliver_signed(&body).await;
    assert_eq!(status, 200);
    assert_eq!(stored(&db).await, 1);
    app.stop().await;
}
both_backends!(storage_trouble_answers_503_so_stripe_retries);

/// What a session's final state must be after its whole flow arrived in any order.
struct Flow {
    session: String,
    user: String,
    events: Vec<Vec<u8>>,
    status: &'static str,
    outcome: &'static str,
    failed_attempts: u64,
}

fn flows(n: usize, base: i64) -> Vec<Flow> {
    (0..n)
        .map(|i| {
            let session = format!("vs_1conc{i:05}");
            let user = format!("user_{}", i % 97);
            let make = |kind: Kind, offset: i64, code: Option<&str>, report: Option<&str>| {
                let mut spec = Spec::new(kind, &session, base + offset);
                spec.user_ref = Some(user.clone());
                spec.session_created = base;
                spec.error_code = code.map(str::to_string);
                spec.report_id = report.map(str::to_string);
                synth::event_bytes(&spec)
            };
            let (events, status, outcome, failed) = match i % 4 {
                0 => (
                    vec![
                        make(Kind::Created, 0, None, None),
                        make(Kind::Processing, 1, None, None),
                        make(Kind::Verified, 2, None, Some("vr_a")),
                    ],
                    "verified",
                    "verified",
                    0,
                ),
                1 => (
                    vec![
                        make(Kind::Created, 0, None, None),
                        make(Kind::Processing, 1, None, None),
                        make(
                            Kind::RequiresInput,
                            2,
                            Some("document_expired"),
                            Some("vr_a"),
                        ),
                    ],
                    "requires_input",
                    "retry_allowed",
                    1,
                ),
                2 => (
                    vec![
                        make(Kind::Processing, 1, None, None),
                        make(
                            Kind::RequiresInput,
                            2,
                            Some("selfie_face_mismatch"),
                            Some("vr_a"),
                        ),
                        make(Kind::Processing, 3, None, None),
                        make(Kind::Verified, 4, None, Some("vr_b")),
                    ],
                    "verified",
                    "verified",
                    1,
                ),
                _ => (
                    vec![
                        make(Kind::Created, 0, None, None),
                        make(Kind::Canceled, 5, None, None),
                    ],
                    "canceled",
                    "canceled",
                    0,
                ),
            };
            Flow {
                session,
                user,
                events,
                status,
                outcome,
                failed_attempts: failed,
            }
        })
        .collect()
}

async fn concurrent_shuffled_duplicated_deliveries_are_stored_and_applied_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&config(&db, &[SECRET])).await;
    let flows = flows(280, now() - 1000);
    let distinct: Vec<Vec<u8>> = flows.iter().flat_map(|f| f.events.clone()).collect();
    let mut deliveries = distinct.clone();
    let mut rng = rand::thread_rng();
    // 20 % of deliveries are duplicates.
    let dupes = distinct.len() / 4;
    deliveries.extend(distinct.choose_multiple(&mut rng, dupes).cloned());
    deliveries.shuffle(&mut rng);
    assert!(deliveries.len() >= 1000, "{}", deliveries.len());

    let results =
        futures::future::join_all(deliveries.iter().map(|body| app.deliver_signed(body))).await;
    assert!(
        results.iter().all(|(s, _)| *s == 200),
        "every delivery acknowledged"
    );
    let duplicates = results
        .iter()
        .filter(|(_, j)| j["duplicate"] == true)
        .count();
    assert_eq!(duplicates, dupes);
    assert_eq!(stored(&db).await, distinct.len() as i64);

    let store = db.store().await;
    drain(&store).await;
    let mut raw = db.raw().await;
    assert_eq!(
        count(&mut raw, "SELECT COUNT(*) FROM session_events").await,
        distinct.len() as i64,
        "each event applied once"
    );
    for flow in &flows {
        let (status, s) = app
            .get(&format!("/v1/verification_sessions/{}", flow.session))
            .await;
        assert_eq!(status, 200);
        assert_eq!(s["status"], flow.status, "{}", flow.session);
        assert_eq!(s["outcome"], flow.outcome, "{}", flow.session);
        assert_eq!(
            s["failed_attempts"].as_u64(),
            Some(flow.failed_attempts),
            "{}",
            flow.session
        );
        assert_eq!(s["client_reference_id"], flow.user.as_str());
        assert_eq!(
            s["history"].as_array().map(Vec::len),
            Some(flow.events.len())
        );
    }
    app.stop().await;
}
both_backends!(concurrent_shuffled_duplicated_deliveries_are_stored_and_applied_once);

async fn the_user_view_collects_sessions_attempts_and_next_step(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&config(&db, &[SECRET])).await;
    let base = now() - 500;
    for (session, offset, code, report) in [
        ("vs_1ua", 0, "document_expired", "vr_1"),
        ("vs_1ub", 100, "consent_declined", "vr_2"),
    ] {
        let mut spec = Spec::new(Kind::RequiresInput, session, base + offset + 10);
        spec.user_ref = Some("user_view".into());
        spec.session_created = base + offset;
        spec.error_code = Some(code.into());
        spec.report_id = Some(report.into());
        assert_eq!(app.deliver_signed(&synth::event_bytes(&spec)).await.0, 200);
    }
    drain(&db.store().await).await;
    let (status, user) = app.get("/v1/users/user_view").await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["sessions"].as_array().map(Vec::len), Some(2));
    assert_eq!(user["current_session"], "vs_1ub");
    assert_eq!(user["outcome"], "alternative_required");
    assert_eq!(user["failed_attempts"], 2);
    assert_eq!(user["last_error"]["code"], "consent_declined");
    assert_eq!(user["last_error"]["next_step"], "alternative_method");
    assert!(user["last_error"]["explanation"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    app.stop().await;
}
both_backends!(the_user_view_collects_sessions_attempts_and_next_step);

async fn redaction_deletes_personal_data(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&config(&db, &[SECRET])).await;
    let base = now() - 100;
    let personal = "jane.doe.private@example.com";
    for (kind, offset) in [(Kind::Created, 0), (Kind::Verified, 5)] {
        let mut spec = Spec::new(kind, "vs_1red", base + offset);
        spec.user_ref = Some("user_red".into());
        spec.metadata = vec![("email".into(), personal.into())];
        assert_eq!(app.deliver_signed(&synth::event_bytes(&spec)).await.0, 200);
    }
    let store = db.store().await;
    drain(&store).await;
    let (_, before) = app.get("/v1/verification_sessions/vs_1red").await;
    assert_eq!(before["metadata"]["email"], personal);

    let mut spec = Spec::new(Kind::Redacted, "vs_1red", base + 10);
    spec.user_ref = Some("user_red".into());
    assert_eq!(app.deliver_signed(&synth::event_bytes(&spec)).await.0, 200);
    drain(&store).await;
    let (_, after) = app.get("/v1/verification_sessions/vs_1red").await;
    assert_eq!(after["redaction"]["status"], "redacted");
    assert_eq!(after["status"], "verified");
    assert_eq!(after["metadata"], serde_json::json!({}));
    let mut raw = db.raw().await;
    assert_eq!(
        count(
            &mut raw,
            "SELECT COUNT(*) FROM events WHERE payload IS NOT NULL"
        )
        .await,
        0
    );
    let leaked = count(
        &mut raw,
        &format!("SELECT COUNT(*) FROM verification_sessions WHERE metadata LIKE '%{personal}%'"),
    )
    .await;
    assert_eq!(leaked, 0);
    app.stop().await;
}
both_backends!(redaction_deletes_personal_data);

async fn events_acknowledged_before_a_restart_are_processed_after_it(backend: Backend) {
    let db = TestDb::new(backend).await;
    let cfg = config(&db, &[SECRET]);
    // Store events directly as the receiver would, with no processor running: the state a
    // crash right after the acknowledgement leaves behind.
    let store = db.store().await;
    let bodies: Vec<Vec<u8>> = (0..20)
        .map(|i| event(Kind::Verified, &format!("vs_1rs{i}"), "user_rs", now()))
        .collect();
    let news: Vec<_> = bodies
        .iter()
        .map(|b| {
            let e = stripe_webhook::Event::from_slice(b).unwrap();
            idverdict::store::NewEvent {
                object_id: e
                    .data
                    .object
                    .get("id")
                    .and_then(|v| v.as_str())
                    .map(str::to_string),
                id: e.id,
                event_type: e.type_.as_str().to_string(),
                created: e.created,
                livemode: false,
                api_version: e.api_version,
                payload: b.clone(),
                // As versions before facts were kept stored them: the processor parses the
                // payload.
                facts: None,
            }
        })
        .collect();
    store.insert_events(&news, 0).await.unwrap();
    assert_eq!(store.event_counts().await.unwrap(), (20, 20));
    let app = TestApp::start(&cfg).await;
    drain(&store).await;
    for i in 0..20 {
        let (status, s) = app
            .get(&format!("/v1/verification_sessions/vs_1rs{i}"))
            .await;
        assert_eq!((status, s["status"].as_str()), (200, Some("verified")));
    }
    app.stop().await;
}
both_backends!(events_acknowledged_before_a_restart_are_processed_after_it);

/// Two instances behind a load balancer, one PostgreSQL database: every event applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_never_apply_an_event_twice() {
    let db = TestDb::new(Backend::Postgres).await;
    let cfg = config(&db, &[SECRET]);
    let a = TestApp::start(&cfg).await;
    let b = TestApp::start(&cfg).await;
    let flows = flows(200, now() - 1000);
    let mut deliveries: Vec<Vec<u8>> = flows.iter().flat_map(|f| f.events.clone()).collect();
    let distinct = deliveries.len();
    // Stripe may redeliver to either instance.
    deliveries.extend(deliveries.clone());
    deliveries.shuffle(&mut rand::thread_rng());
    let sends = deliveries.iter().enumerate().map(|(i, body)| {
        if i % 2 == 0 {
            a.deliver_signed(body)
        } else {
            b.deliver_signed(body)
        }
    });
    let results = futures::future::join_all(sends).await;
    assert!(
        results.iter().all(|(s, _)| *s == 200),
        "{:?}",
        results
            .iter()
            .filter(|(s, _)| *s != 200)
            .take(3)
            .collect::<Vec<_>>()
    );

    let store = db.store().await;
    drain(&store).await;
    let mut raw = db.raw().await;
    assert_eq!(
        count(&mut raw, "SELECT COUNT(*) FROM events").await,
        distinct as i64
    );
    assert_eq!(
        count(&mut raw, "SELECT COUNT(*) FROM session_events").await,
        distinct as i64
    );
    assert_eq!(
        count(
            &mut raw,
            "SELECT COUNT(*) FROM events WHERE disposition = 'applied'"
        )
        .await,
        distinct as i64
    );
    for flow in &flows {
        let (_, s) = a
            .get(&format!("/v1/verification_sessions/{}", flow.session))
            .await;
        assert_eq!(s["outcome"], flow.outcome, "{}", flow.session);
        assert_eq!(
            s["failed_attempts"].as_u64(),
            Some(flow.failed_attempts),
            "{}",
            flow.session
        );
    }
    a.stop().await;
    b.stop().await;
}
