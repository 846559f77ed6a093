//! Reviews sent at once: twenty identical decisions for one user all answer 200 with the same
//! result, and only one is recorded and announced (a repeat of the decision the user's state
//! already reflects changes nothing); twenty `allow_retry` grant one attempt and answer the
//! rest with a clear 409; alternating approve/reject decisions all land, one after the other.
//! Never a 5xx. Limits are counted in characters, as their messages say.

mod common;

use common::*;
use futures::future::join_all;
use idverdict::synth::{self, Kind, Spec};
use serde_json::{json, Value};

const CALLBACK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn failure(session: &str, user: &str, created: i64, report: &str) -> Vec<u8> {
    let mut spec = Spec::new(Kind::RequiresInput, session, created);
    spec.user_ref = Some(user.into());
    spec.session_created = created - 50;
    spec.error_code = Some("document_expired".into());
    spec.report_id = Some(report.into());
    synth::event_bytes(&spec)
}

async fn post_review(app: &TestApp, user: &str, body: Value) -> (u16, Value) {
    let res = app
        .http
        .post(app.url(&format!("/v1/reviews/{user}")))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Twenty requests at once; their answers.
async fn at_once(app: &TestApp, user: &str, bodies: Vec<Value>) -> Vec<(u16, Value)> {
    join_all(bodies.into_iter().map(|b| post_review(app, user, b))).await
}

async fn concurrent_reviews_never_fail(backend: Backend) {
    let db = TestDb::new(backend).await;
    // Decisions become reactions in the outbox; the target need not answer for that.
    let config = config_with(
        &db,
        &[SECRET],
        &[
            ("IDVERDICT_CALLBACK_URLS", "http://127.0.0.1:9/callbacks"),
            ("IDVERDICT_CALLBACK_SECRETS", CALLBACK_SECRET),
            ("IDVERDICT_ALLOW_PRIVATE_TARGETS", "true"),
            ("IDVERDICT_RETRY_SCHEDULE", "1h"),
        ],
    );
    let app = TestApp::start(&config).await;
    let store = db.store().await;
    let base = now() - 1000;
    // Three users waiting for review (three failed attempts each).
    for (i, user) in ["same", "retry", "flip"].iter().enumerate() {
        for (n, report) in ["vr_1", "vr_2", "vr_3"].iter().enumerate() {
            let body = failure(&format!("vs_1cr{i}"), user, base + n as i64, report);
            assert_eq!(app.deliver_signed(&body).await.0, 200);
        }
    }
    drain(&store).await;
    for user in ["same", "retry", "flip"] {
        assert_eq!(
            app.get(&format!("/v1/users/{user}")).await.1["state"],
            "needs_review"
        );
    }

    // Twenty identical rejections.
    let answers = at_once(
        &app,
        "same",
        vec![json!({"action": "reject", "reviewer": "alice", "note": "forged"}); 20],
    )
    .await;
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body["state"], "rejected", "{body}");
        assert_eq!(body["review"]["reviewer"], "alice", "{body}");
    }
    assert_eq!(
        answers
            .iter()
            .filter(|(_, b)| b["repeated"] == false)
            .count(),
        1,
        "exactly one of them was the decision: {answers:?}"
    );
    let (_, user) = app.get("/v1/users/same").await;
    assert_eq!(user["reviews"].as_array().map(Vec::len), Some(1), "{user}");
    let reactions = store.list_reactions(&Default::default()).await.unwrap();
    let rejected = reactions
        .iter()
        .filter(|r| r.user_ref.as_deref() == Some("same") && r.decision == "rejected")
        .count();
    assert_eq!(rejected, 1, "one decision, announced once");

    // Twenty allow_retry: one more attempt, granted once; the others are told why not.
    let answers = at_once(
        &app,
        "retry",
        vec![json!({"action": "allow_retry", "reviewer": "carol"}); 20],
    )
    .await;
    let granted = answers.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(granted, 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(s, _)| *s != 200) {
        assert_eq!(*status, 409, "{body}");
        assert_eq!(body["error"]["code"], "not_reviewable", "{body}");
    }
    let (_, user) = app.get("/v1/users/retry").await;
    assert_eq!(user["state"], "retry_allowed", "{user}");

    // Alternating decisions, each a change: all recorded, in some order, none refused.
    let bodies = (0..20)
        .map(|i| {
            let action = if i % 2 == 0 { "approve" } else { "reject" };
            json!({"action": action, "reviewer": format!("reviewer {i}")})
        })
        .collect();
    let answers = at_once(&app, "flip", bodies).await;
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
    }
    let (_, user) = app.get("/v1/users/flip").await;
    let reviews = user["reviews"].as_array().unwrap();
    let recorded = answers
        .iter()
        .filter(|(_, b)| b["repeated"] == false)
        .count();
    assert_eq!(reviews.len(), recorded, "{user}");
    let last = reviews.last().unwrap()["action"].as_str().unwrap();
    let expected_state = if last == "approve" {
        "approved"
    } else {
        "rejected"
    };
    assert_eq!(
        user["state"], expected_state,
        "the latest recorded review decides: {user}"
    );
    app.stop().await;
}
both_backends!(concurrent_reviews_never_fail);

async fn the_note_limit_counts_characters(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&config(&db, &[SECRET])).await;
    let store = db.store().await;
    for (n, report) in ["vr_1", "vr_2", "vr_3"].iter().enumerate() {
        let body = failure("vs_1note", "noted", now() - 100 + n as i64, report);
        assert_eq!(app.deliver_signed(&body).await.0, 200);
    }
    drain(&store).await;
    // 2000 characters of three bytes each: within the limit of 2000 characters.
    let note = "€".repeat(2000);
    let (status, body) = post_review(
        &app,
        "noted",
        json!({"action": "approve", "reviewer": "Zoë", "note": note}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post_review(
        &app,
        "noted",
        json!({"action": "reject", "reviewer": "Zoë", "note": "€".repeat(2001)}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_note", "{body}");
    let (status, body) = post_review(
        &app,
        "noted",
        json!({"action": "reject", "reviewer": "é".repeat(200)}),
    )
    .await;
    assert_eq!(status, 200, "200 characters of reviewer name: {body}");
    app.stop().await;
}
both_backends!(the_note_limit_counts_characters);
