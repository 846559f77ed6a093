//! The decisions over real HTTP on both backends: per-user states from event flows, the
//! review API, and callbacks to the app — each decision delivered exactly once by
//! `webhook-id` even when the app's endpoint fails at random.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine;
use common::*;
use hmac::{Hmac, Mac};
use idverdict::synth::{self, Kind, Spec};
use rand::Rng;

const CALLBACK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// What the app received: body per `webhook-id`, and how many times each id arrived with 2xx.
#[derive(Default)]
struct Received {
    bodies: HashMap<String, serde_json::Value>,
    accepted: HashMap<String, u32>,
    bad_signatures: u32,
}

/// The app's callback endpoint: verifies Standard Webhooks signatures with its own code and
/// fails `fail_ratio` of the requests with a 500.
async fn start_app_receiver(fail_ratio: f64) -> (SocketAddr, Arc<Mutex<Received>>) {
    let received = Arc::new(Mutex::new(Received::default()));
    let state = received.clone();
    let app = axum::Router::new().route(
        "/callbacks",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let state = state.clone();
            async move {
                let header = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string()
                };
                let (id, ts, sigs) = (
                    header("webhook-id"),
                    header("webhook-timestamp"),
                    header("webhook-signature"),
                );
                let key = base64::engine::general_purpose::STANDARD
                    .decode(CALLBACK_SECRET.trim_start_matches("whsec_"))
                    .unwrap();
                let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
                mac.update(format!("{id}.{ts}.").as_bytes());
                mac.update(&body);
                let expected = format!(
                    "v1,{}",
                    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
                );
                let mut r = state.lock().unwrap();
                if !sigs.split(' ').any(|s| s == expected) {
                    r.bad_signatures += 1;
                    return StatusCode::BAD_REQUEST;
                }
                if rand::thread_rng().gen_bool(fail_ratio) {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                r.bodies
                    .insert(id.clone(), serde_json::from_slice(&body).unwrap());
                *r.accepted.entry(id).or_default() += 1;
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, received)
}

fn engine_config(db: &TestDb, receiver: SocketAddr) -> idverdict::Config {
    let url = format!("http://{receiver}/callbacks");
    config_with(
        db,
        &[SECRET],
        &[
            ("IDVERDICT_CALLBACK_URLS", url.as_str()),
            ("IDVERDICT_CALLBACK_SECRETS", CALLBACK_SECRET),
            (
                "IDVERDICT_RETRY_SCHEDULE",
                "20ms,40ms,80ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms",
            ),
            ("IDVERDICT_ALLOW_PRIVATE_TARGETS", "true"),
        ],
    )
}

fn failure(session: &str, user: &str, created: i64, code: &str, report: &str) -> Vec<u8> {
    let mut spec = Spec::new(Kind::RequiresInput, session, created);
    spec.user_ref = Some(user.into());
    spec.session_created = created - 50;
    spec.error_code = Some(code.into());
    spec.report_id = Some(report.into());
    synth::event_bytes(&spec)
}

async fn wait_for<F: Fn(&Received) -> bool>(received: &Arc<Mutex<Received>>, done: F) {
    for _ in 0..600 {
        if done(&received.lock().unwrap()) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("callbacks did not arrive");
}

async fn users_end_in_the_policy_state_and_get_each_callback_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (receiver, received) = start_app_receiver(0.3).await;
    let app = TestApp::start(&engine_config(&db, receiver)).await;
    let base = now() - 3000;
    // (user, events, expected state)
    let mut expected = Vec::new();
    let mut deliveries = Vec::new();
    for i in 0..60 {
        let user = format!("u{i:03}");
        let vs = format!("vs_1eng{i:03}");
        let t = base + i as i64 * 10;
        let (events, state): (Vec<Vec<u8>>, &str) = match i % 6 {
            0 => (
                vec![
                    event(Kind::Created, &vs, &user, t),
                    event(Kind::Verified, &vs, &user, t + 5),
                ],
                "verified",
            ),
            1 => (
                vec![failure(&vs, &user, t, "document_expired", "vr_a")],
                "retry_allowed",
            ),
            2 => (
                vec![failure(&vs, &user, t, "consent_declined", "vr_a")],
                "alternative_required",
            ),
            3 => (
                vec![failure(&vs, &user, t, "selfie_manipulated", "vr_a")],
                "needs_review",
            ),
            4 => (
                vec![failure(&vs, &user, t, "under_supported_age", "vr_a")],
                "rejected",
            ),
            _ => (
                vec![
                    failure(&vs, &user, t, "document_expired", "vr_a"),
                    failure(&vs, &user, t + 1, "document_expired", "vr_b"),
                    failure(&vs, &user, t + 2, "document_unverified_other", "vr_c"),
                ],
                "needs_review",
            ),
        };
        deliveries.extend(events.iter().cloned());
        // Stripe redelivers some.
        if i % 4 == 0 {
            deliveries.extend(events);
        }
        expected.push((user, state));
    }
    for body in &deliveries {
        assert_eq!(app.deliver_signed(body).await.0, 200);
    }
    drain(&db.store().await).await;
    for (i, (user, state)) in expected.iter().enumerate() {
        let (status, u) = app.get(&format!("/v1/users/{user}")).await;
        assert_eq!(status, 200);
        assert_eq!(u["state"], *state, "{user}: {u}");
        // The why: the rule that decided, its facts, the deciding session.
        let rule = match i % 6 {
            0 => "verified",
            5 => "attempts_exhausted",
            _ => "error_code",
        };
        assert_eq!(u["why"]["rule"], rule, "{user}: {u}");
        assert_eq!(u["why"]["session"], format!("vs_1eng{i:03}"), "{user}: {u}");
        if rule == "attempts_exhausted" {
            assert_eq!(
                (
                    &u["why"]["attempts_used"],
                    &u["why"]["max_attempts"],
                    &u["why"]["on_exhausted"]
                ),
                (
                    &serde_json::json!(3),
                    &serde_json::json!(3),
                    &serde_json::json!("needs_review")
                ),
                "{u}"
            );
        }
    }
    // One callback per user (each ended in a decision state once), each accepted exactly once
    // by webhook-id, all validly signed, despite 30 % failures.
    let all_arrived = |r: &Received| {
        expected.iter().all(|(user, state)| {
            r.bodies
                .values()
                .any(|b| b["user"] == user.as_str() && b["type"] == *state)
        })
    };
    wait_for(&received, all_arrived).await;
    {
        let r = received.lock().unwrap();
        assert_eq!(r.bad_signatures, 0);
        assert!(
            r.accepted.values().all(|n| *n == 1),
            "a webhook-id was accepted twice"
        );
        let mut by_user: HashMap<String, Vec<String>> = HashMap::new();
        for body in r.bodies.values() {
            by_user
                .entry(body["user"].as_str().unwrap().to_string())
                .or_default()
                .push(body["type"].as_str().unwrap().to_string());
        }
        for (user, state) in &expected {
            let got = by_user.get(user).cloned().unwrap_or_default();
            // Every flow ends in exactly one decision of its final state. The three-failure flow
            // may also announce retry_allowed after its first and second failure, depending on
            // how the events were batched — at most once each.
            assert_eq!(
                got.iter().filter(|t| *t == state).count(),
                1,
                "{user}: {got:?}"
            );
            let others: Vec<&String> = got.iter().filter(|t| *t != state).collect();
            assert!(
                others.iter().all(|t| *t == "retry_allowed") && others.len() <= 2,
                "{user}: {got:?}"
            );
        }
        let sample = r
            .bodies
            .values()
            .find(|b| b["type"] == "retry_allowed")
            .expect("a retry callback");
        assert_eq!(sample["error_code"], "document_expired");
        assert!(sample["explanation"]
            .as_str()
            .is_some_and(|s| !s.is_empty()));
        assert_eq!(sample["next_step"], "retry");
        assert_eq!(
            (
                sample["why"]["rule"].as_str(),
                sample["why"]["error_code"].as_str(),
                sample["why"]["step_from"].as_str()
            ),
            (
                Some("error_code"),
                Some("document_expired"),
                Some("built_in")
            ),
            "{sample}"
        );
        assert_eq!(sample["why"]["session"], sample["session"]);
        assert!(sample["resume"]
            .as_str()
            .is_some_and(|s| s.contains("/verification_sessions")));
    }
    app.stop().await;
}
both_backends!(users_end_in_the_policy_state_and_get_each_callback_once);

async fn reviews_approve_reject_and_allow_retry(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (receiver, received) = start_app_receiver(0.0).await;
    let app = TestApp::start(&engine_config(&db, receiver)).await;
    let base = now() - 1000;
    for (i, user) in ["rev_a", "rev_b", "rev_c"].iter().enumerate() {
        let vs = format!("vs_1rev{i}");
        for (n, report) in ["vr_1", "vr_2", "vr_3"].iter().enumerate() {
            assert_eq!(
                app.deliver_signed(&failure(
                    &vs,
                    user,
                    base + i as i64 * 100 + n as i64,
                    "document_expired",
                    report
                ))
                .await
                .0,
                200
            );
        }
    }
    drain(&db.store().await).await;
    let (status, queue) = app.get("/v1/reviews").await;
    assert_eq!(status, 200);
    let waiting: Vec<&str> = queue["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["client_reference_id"].as_str().unwrap())
        .collect();
    assert_eq!(waiting, vec!["rev_a", "rev_b", "rev_c"], "oldest first");
    assert_eq!(queue["data"][0]["attempts_used"], 3);

    let post = |user: &str, body: serde_json::Value| {
        app.http
            .post(app.url(&format!("/v1/reviews/{user}")))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    let res = post("rev_a", serde_json::json!({"action": "approve", "reviewer": "alice", "note": "document checked by hand"})).await.unwrap();
    assert_eq!(res.status(), 200);
    let res = post(
        "rev_b",
        serde_json::json!({"action": "reject", "reviewer": "bob"}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    let res = post(
        "rev_c",
        serde_json::json!({"action": "allow_retry", "reviewer": "carol"}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    // allow_retry only from needs_review; bad input is refused precisely.
    assert_eq!(
        post(
            "rev_c",
            serde_json::json!({"action": "allow_retry", "reviewer": "carol"})
        )
        .await
        .unwrap()
        .status(),
        409
    );
    assert_eq!(
        post(
            "rev_c",
            serde_json::json!({"action": "maybe", "reviewer": "carol"})
        )
        .await
        .unwrap()
        .status(),
        400
    );
    assert_eq!(
        post("rev_c", serde_json::json!({"action": "approve"}))
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        post(
            "nobody",
            serde_json::json!({"action": "approve", "reviewer": "x"})
        )
        .await
        .unwrap()
        .status(),
        404
    );

    let (_, a) = app.get("/v1/users/rev_a").await;
    assert_eq!(a["state"], "approved");
    assert_eq!(a["reviews"][0]["reviewer"], "alice");
    assert_eq!(
        (
            a["why"]["rule"].as_str(),
            a["why"]["action"].as_str(),
            a["why"]["by"].as_str(),
            a["why"]["session"].as_str()
        ),
        (
            Some("review"),
            Some("approve"),
            Some("alice"),
            Some("vs_1rev0")
        ),
        "{a}"
    );
    let (_, b) = app.get("/v1/users/rev_b").await;
    assert_eq!(b["state"], "rejected");
    let (_, c) = app.get("/v1/users/rev_c").await;
    assert_eq!(
        (c["state"].as_str(), c["attempts_left"].as_u64()),
        (Some("retry_allowed"), Some(1)),
        "{c}"
    );
    // allow_retry after all three attempts: exactly one more, and the why says so.
    assert_eq!(
        (
            c["why"]["rule"].as_str(),
            c["why"]["action"].as_str(),
            c["why"]["by"].as_str(),
            c["why"]["max_attempts"].as_u64()
        ),
        (Some("review"), Some("allow_retry"), Some("carol"), Some(4)),
        "{c}"
    );
    let (_, queue) = app.get("/v1/reviews").await;
    assert_eq!(queue["data"].as_array().map(Vec::len), Some(0));

    wait_for(&received, |r| {
        r.bodies
            .values()
            .filter(|b| b["reviewer"].is_string())
            .count()
            >= 3
    })
    .await;
    {
        let r = received.lock().unwrap();
        let approved = r
            .bodies
            .values()
            .find(|b| b["type"] == "approved")
            .expect("approved callback");
        assert_eq!(
            (
                approved["user"].as_str(),
                approved["reviewer"].as_str(),
                approved["note"].as_str()
            ),
            (
                Some("rev_a"),
                Some("alice"),
                Some("document checked by hand")
            )
        );
        assert_eq!(approved["why"]["rule"], "review", "{approved}");
        assert_eq!(approved["why"]["by"], "alice", "{approved}");
    }
    app.stop().await;
}
both_backends!(reviews_approve_reject_and_allow_retry);

/// `selfie_manipulated` on one session, then a second session that verifies.
async fn flagged_then_verified(app: &TestApp, user: &str) {
    let base = now() - 500;
    let events = [
        failure(
            &format!("vs_1{user}a"),
            user,
            base,
            "selfie_manipulated",
            "vr_1",
        ),
        event(Kind::Created, &format!("vs_1{user}b"), user, base + 100),
        event(Kind::Verified, &format!("vs_1{user}b"), user, base + 110),
    ];
    for e in events {
        assert_eq!(app.deliver_signed(&e).await.0, 200);
    }
}

/// A fraud signal is not washed away by the next attempt: `selfie_manipulated`, then a new
/// session that verifies, leaves the user in `needs_review` until a reviewer approves; with
/// the hold turned off for the code, the same flow ends `verified`.
async fn a_verification_after_a_fraud_signal_waits_for_a_reviewer(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (receiver, received) = start_app_receiver(0.0).await;
    let app = TestApp::start(&engine_config(&db, receiver)).await;
    flagged_then_verified(&app, "fh_held").await;
    drain(&db.store().await).await;
    let (_, u) = app.get("/v1/users/fh_held").await;
    assert_eq!(u["state"], "needs_review", "{u}");
    assert_eq!(
        (
            u["why"]["rule"].as_str(),
            u["why"]["error_code"].as_str(),
            u["why"]["flagged_session"].as_str(),
            u["why"]["session"].as_str()
        ),
        (
            Some("fraud_hold"),
            Some("selfie_manipulated"),
            Some("vs_1fh_helda"),
            Some("vs_1fh_heldb")
        ),
        "{u}"
    );
    let (_, queue) = app.get("/v1/reviews").await;
    assert_eq!(
        queue["data"][0]["client_reference_id"], "fh_held",
        "{queue}"
    );
    // The app heard of it: a needs_review decision about the verified session.
    wait_for(&received, |r| {
        r.bodies
            .values()
            .any(|b| b["type"] == "needs_review" && b["why"]["rule"] == "fraud_hold")
    })
    .await;
    assert!(
        !received
            .lock()
            .unwrap()
            .bodies
            .values()
            .any(|b| b["type"] == "verified"),
        "no verified decision went out"
    );
    let review = |action: &str| {
        app.http
            .post(app.url("/v1/reviews/fh_held"))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({"action": action, "reviewer": "vera"}))
            .send()
    };
    // Another attempt cannot change a verified session: allow_retry is refused.
    let refused = review("allow_retry").await.unwrap();
    assert_eq!(refused.status(), 409);
    assert_eq!(
        refused.json::<serde_json::Value>().await.unwrap()["error"]["code"],
        "not_reviewable"
    );
    assert_eq!(review("approve").await.unwrap().status(), 200);
    let (_, u) = app.get("/v1/users/fh_held").await;
    assert_eq!(
        (u["state"].as_str(), u["why"]["rule"].as_str()),
        (Some("approved"), Some("review")),
        "{u}"
    );
    app.stop().await;

    // Without the hold.
    let db = TestDb::new(backend).await;
    let policy = db.dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[policy.codes.selfie_manipulated]\nhold_for_review = false\n",
    )
    .unwrap();
    let policy = policy.display().to_string();
    let app = TestApp::start(&config_with(
        &db,
        &[SECRET],
        &[("IDVERDICT_CONFIG", policy.as_str())],
    ))
    .await;
    flagged_then_verified(&app, "fh_free").await;
    drain(&db.store().await).await;
    let (_, u) = app.get("/v1/users/fh_free").await;
    assert_eq!(
        (u["state"].as_str(), u["why"]["rule"].as_str()),
        (Some("verified"), Some("verified")),
        "{u}"
    );
    app.stop().await;
}
both_backends!(a_verification_after_a_fraud_signal_waits_for_a_reviewer);
