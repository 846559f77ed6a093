//! The Stripe client's verification reports and FileLinks (what the console's case page uses)
//! against the emulator: typed checks and image ids, links that serve the image, and Stripe's
//! rules — a restricted key for identity images, at most 30 seconds.

use idverdict::stripe_api::{StripeApiError, StripeClient, StripeSettings};
use stripe_emulator::EmulatorConfig;

fn client(key: &str, base: &str) -> StripeClient {
    StripeClient::new(&StripeSettings::new(key, base).unwrap()).unwrap()
}

#[tokio::test]
async fn reports_and_file_links_as_the_console_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let emu = stripe_emulator::spawn(
        listener,
        EmulatorConfig {
            data_dir: dir.path().to_path_buf(),
            ..EmulatorConfig::default()
        },
    )
    .await
    .unwrap();
    let base = emu.base_url().to_string();
    let http = reqwest::Client::new();
    let created: serde_json::Value = http
        .post(format!("{base}/v1/identity/verification_sessions"))
        .bearer_auth("sk_test_x")
        .form(&[
            ("type", "document"),
            ("options[document][require_matching_selfie]", "true"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    http.post(format!(
        "{base}/v1/test_helpers/identity/verification_sessions/{id}/require_input"
    ))
    .bearer_auth("sk_test_x")
    .form(&[("last_error[code]", "selfie_face_mismatch")])
    .send()
    .await
    .unwrap();
    let rk = client("rk_test_console", &base);
    let session = rk.retrieve_verification_session(id, &[]).await.unwrap();
    let report_id = session
        .last_verification_report
        .as_ref()
        .and_then(|r| r.id())
        .expect("a report")
        .to_string();

    let report = rk.retrieve_verification_report(&report_id).await.unwrap();
    assert_eq!(report.id, report_id);
    let document = report.document.as_ref().unwrap();
    assert_eq!(document.status.as_deref(), Some("verified"));
    assert_eq!(document.document_type.as_deref(), Some("driving_license"));
    assert_eq!(document.issuing_country.as_deref(), Some("US"));
    let files = document.files.clone().unwrap();
    assert_eq!(files.len(), 2);
    let selfie = report.selfie.as_ref().unwrap();
    assert_eq!(selfie.status.as_deref(), Some("unverified"));
    assert_eq!(
        selfie.error.as_ref().and_then(|e| e.code.as_deref()),
        Some("selfie_face_mismatch")
    );
    assert!(rk.has_restricted_key());

    // A link within 30 s serves the image without a key; its Debug hides the URL.
    let now = idverdict::clock::now_secs();
    let link = rk.create_file_link(&files[0], now + 25).await.unwrap();
    let url = link.url.clone().unwrap();
    assert!(!format!("{link:?}").contains(&url));
    let image = http.get(&url).send().await.unwrap();
    assert_eq!(image.status(), 200);
    assert_eq!(image.headers()["content-type"], "image/svg+xml");
    assert!(image.text().await.unwrap().contains("TEST DOCUMENT"));

    // Stripe's rules: no link with a secret key, none beyond 30 s.
    let sk = client("sk_test_console", &base);
    assert!(!sk.has_restricted_key());
    match sk.create_file_link(&files[0], now + 25).await {
        Err(StripeApiError::Api { status: 403, .. }) => {}
        other => panic!("a secret key must be refused: {other:?}"),
    }
    match rk.create_file_link(&files[0], now + 3600).await {
        Err(StripeApiError::Api {
            status: 400, param, ..
        }) => assert_eq!(param.as_deref(), Some("expires_at")),
        other => panic!("an hour is too long: {other:?}"),
    }
    match rk.retrieve_verification_report("vr_missing").await {
        Err(e) => assert!(e.is_not_found(), "{e}"),
        Ok(_) => panic!("an unknown report"),
    }
    emu.shutdown().await.unwrap();
}
