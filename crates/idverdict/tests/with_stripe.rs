//! The service with a Stripe API configured (the emulator here): fetch-latest overrules a
//! stale snapshot, and session creation follows the user's state and reviews.

mod common;

use std::time::Duration;

use common::*;
use idverdict::synth::{self, Kind, Spec};
use stripe_emulator::EmulatorConfig;

const KEY: &str = "sk_test_fetch_latest";

/// The service with its Stripe API pointed at the emulator, plus `extra` settings.
async fn start_app(db: &TestDb, emulator: &str, extra: &[(&str, &str)]) -> TestApp {
    let mut env = vec![("STRIPE_API_KEY", KEY), ("STRIPE_API_BASE", emulator)];
    env.extend_from_slice(extra);
    TestApp::start(&config_with(db, &[SECRET], &env)).await
}

/// The emulator on a free port with a fresh data directory (kept alive by the second value).
async fn start_emulator() -> (stripe_emulator::EmulatorHandle, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let emu = stripe_emulator::spawn(
        listener,
        EmulatorConfig {
            data_dir: dir.path().to_path_buf(),
            time_scale: 0.001,
            processing_delay: Duration::from_millis(10),
            ..EmulatorConfig::default()
        },
    )
    .await
    .unwrap();
    (emu, dir)
}

async fn a_stale_snapshot_is_overruled_by_stripes_current_session(backend: Backend) {
    let (emu, _dir) = start_emulator().await;
    let http = reqwest::Client::new();
    // A session the user completed successfully at Stripe (no webhook endpoint registered:
    // nothing is delivered by the emulator itself).
    let created: serde_json::Value = http
        .post(format!(
            "{}/v1/identity/verification_sessions",
            emu.base_url()
        ))
        .bearer_auth(KEY)
        .form(&[("type", "document"), ("client_reference_id", "fl_user")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    let verified = http
        .post(format!(
            "{}/v1/test_helpers/identity/verification_sessions/{id}/verify",
            emu.base_url()
        ))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), 200);

    let db = TestDb::new(backend).await;
    let base = emu.base_url().to_string();
    let app = start_app(&db, &base, &[("IDVERDICT_RECONCILE", "off")]).await;
    // Only a stale `processing` snapshot arrives (the later events are "lost").
    let mut spec = Spec::new(Kind::Processing, &id, now() - 10);
    spec.user_ref = Some("fl_user".into());
    assert_eq!(app.deliver_signed(&synth::event_bytes(&spec)).await.0, 200);
    drain(&db.store().await).await;

    let (_, session) = app.get(&format!("/v1/verification_sessions/{id}")).await;
    assert_eq!(session["status"], "verified", "{session}");
    // Only our one event was received (reconciliation is off): the verdict came from Stripe.
    assert_eq!(
        session["history"].as_array().map(Vec::len),
        Some(1),
        "{session}"
    );
    assert_eq!(session["outcome"], "verified");
    let (_, user) = app.get("/v1/users/fl_user").await;
    assert_eq!(user["state"], "verified", "{user}");
    app.stop().await;
    emu.shutdown().await.unwrap();
}
both_backends!(a_stale_snapshot_is_overruled_by_stripes_current_session);

/// Session creation follows the user's state: under review → 409; after a reviewer's
/// `allow_retry` the app gets the same session back to resubmit.
async fn allow_retry_lets_the_app_resume_the_session(backend: Backend) {
    let (emu, _dir) = start_emulator().await;
    let db = TestDb::new(backend).await;
    let base = emu.base_url().to_string();
    // Events reach idverdict through reconciliation every second (no webhook endpoint).
    let app = start_app(&db, &base, &[("IDVERDICT_RECONCILE_INTERVAL_SECS", "1")]).await;
    let create = || {
        app.http
            .post(app.url("/v1/users/rv_user/verification_sessions"))
            .bearer_auth(TOKEN)
            .send()
    };
    let res = create().await.unwrap();
    assert_eq!(res.status(), 201);
    let first: serde_json::Value = res.json().await.unwrap();
    let id = first["id"].as_str().unwrap().to_string();
    let failed = app
        .http
        .post(format!(
            "{base}/v1/test_helpers/identity/verification_sessions/{id}/require_input"
        ))
        .bearer_auth(KEY)
        .form(&[("last_error[code]", "selfie_manipulated")])
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 200);

    let mut user = serde_json::Value::Null;
    for _ in 0..200 {
        user = app.get("/v1/users/rv_user").await.1;
        if user["state"] == "needs_review" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(user["state"], "needs_review", "{user}");
    let refused = create().await.unwrap();
    assert_eq!(refused.status(), 409);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "under_review");

    let review = app
        .http
        .post(app.url("/v1/reviews/rv_user"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"action": "allow_retry", "reviewer": "rita"}))
        .send()
        .await
        .unwrap();
    assert_eq!(review.status(), 200);
    let resumed = create().await.unwrap();
    assert_eq!(resumed.status(), 200);
    let body: serde_json::Value = resumed.json().await.unwrap();
    assert_eq!(
        (body["id"].as_str(), body["reused"].as_bool()),
        (Some(id.as_str()), Some(true)),
        "{body}"
    );
    assert!(body["url"].is_string() && body["client_secret"].is_string());
    app.stop().await;
    emu.shutdown().await.unwrap();
}
both_backends!(allow_retry_lets_the_app_resume_the_session);

/// The end user's address given at session creation (`provided_details.email`) reaches the
/// email reaction through fetch-latest, although Stripe's webhooks never carry it.
async fn the_provided_email_reaches_the_email_reaction(backend: Backend) {
    let (emu, _dir) = start_emulator().await;
    let db = TestDb::new(backend).await;
    let base = emu.base_url().to_string();
    let app = start_app(
        &db,
        &base,
        &[
            ("IDVERDICT_RECONCILE_INTERVAL_SECS", "1"),
            // No SMTP server listens here: the reaction is planned and stays pending.
            ("IDVERDICT_SMTP_HOST", "127.0.0.1"),
            ("IDVERDICT_SMTP_PORT", "9"),
            ("IDVERDICT_SMTP_TLS", "none"),
            ("IDVERDICT_SMTP_FROM", "verify@example.com"),
        ],
    )
    .await;
    let res = app
        .http
        .post(app.url("/v1/users/pe_user/verification_sessions"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"provided_details": {"email": "pat@example.org"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let id = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let failed = app
        .http
        .post(format!(
            "{base}/v1/test_helpers/identity/verification_sessions/{id}/require_input"
        ))
        .bearer_auth(KEY)
        .form(&[("last_error[code]", "document_expired")])
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 200);
    let mut targets = 0;
    for _ in 0..200 {
        let mut raw = db.raw().await;
        targets = count(
            &mut raw,
            "SELECT COUNT(*) FROM reactions WHERE kind = 'email' AND target = 'pat@example.org'",
        )
        .await;
        if targets > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        targets, 1,
        "one retry_allowed email to the provided address"
    );
    app.stop().await;
    emu.shutdown().await.unwrap();
}
both_backends!(the_provided_email_reaches_the_email_reaction);

/// Create a session for `user` through idverdict, fail it at the emulator with `code`, and
/// wait until the user's state (reached through reconciliation) is no longer `pending`.
async fn fail_through_the_emulator(
    app: &TestApp,
    base: &str,
    user: &str,
    code: &str,
) -> serde_json::Value {
    let res = app
        .http
        .post(app.url(&format!("/v1/users/{user}/verification_sessions")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let id = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let failed = app
        .http
        .post(format!(
            "{base}/v1/test_helpers/identity/verification_sessions/{id}/require_input"
        ))
        .bearer_auth(KEY)
        .form(&[("last_error[code]", code)])
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 200);
    let mut user_json = serde_json::Value::Null;
    for _ in 0..400 {
        user_json = app.get(&format!("/v1/users/{user}")).await.1;
        if user_json["last_error"]["code"] == code && user_json["state"] != "pending" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    user_json
}

/// `address_mismatch` (the address check, from Stripe's outcomes guide) end to end: the
/// emulator fails a session with it, idverdict explains it, and the built-in table sends the
/// user to `retry`; an operator's `[policy.codes.address_mismatch]` entry changes that.
async fn address_mismatch_follows_the_policy_table(backend: Backend) {
    let (emu, _dir) = start_emulator().await;
    let base = emu.base_url().to_string();

    let db = TestDb::new(backend).await;
    let app = start_app(&db, &base, &[("IDVERDICT_RECONCILE_INTERVAL_SECS", "1")]).await;
    let user = fail_through_the_emulator(&app, &base, "am_user", "address_mismatch").await;
    assert_eq!(user["state"], "retry_allowed", "{user}");
    assert_eq!(user["next_step"], "retry", "{user}");
    assert_eq!(
        user["last_error"]["explanation"],
        stripe_webhook::ErrorCode::AddressMismatch.explanation(),
        "{user}"
    );
    assert_eq!(
        (
            user["why"]["rule"].as_str(),
            user["why"]["error_code"].as_str(),
            user["why"]["step_from"].as_str()
        ),
        (
            Some("error_code"),
            Some("address_mismatch"),
            Some("built_in")
        ),
        "{user}"
    );
    app.stop().await;

    let db = TestDb::new(backend).await;
    let policy = db.dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[policy.codes.address_mismatch]\nnext_step = \"manual_review\"\n",
    )
    .unwrap();
    let policy = policy.display().to_string();
    let app = start_app(
        &db,
        &base,
        &[
            ("IDVERDICT_RECONCILE_INTERVAL_SECS", "1"),
            ("IDVERDICT_CONFIG", policy.as_str()),
        ],
    )
    .await;
    let user = fail_through_the_emulator(&app, &base, "am_user2", "address_mismatch").await;
    assert_eq!(user["state"], "needs_review", "{user}");
    assert_eq!(user["why"]["step_from"], "policy", "{user}");
    app.stop().await;
    emu.shutdown().await.unwrap();
}
both_backends!(address_mismatch_follows_the_policy_table);
