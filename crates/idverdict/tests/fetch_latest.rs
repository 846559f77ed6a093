//! Fetch-latest over the real emulator: with a Stripe key configured, a stale or reordered
//! webhook snapshot does not decide — Stripe's current session does.

mod common;

use std::time::Duration;

use common::*;
use idverdict::synth::{self, Kind, Spec};
use stripe_emulator::EmulatorConfig;

const KEY: &str = "sk_test_fetch_latest";

async fn a_stale_snapshot_is_overruled_by_stripes_current_session(backend: Backend) {
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
    let app = TestApp::start(&config_with(
        &db,
        &[SECRET],
        &[
            ("STRIPE_API_KEY", KEY),
            ("STRIPE_API_BASE", base.as_str()),
            ("IDVERDICT_RECONCILE", "off"),
        ],
    ))
    .await;
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
