//! The console in a real browser (Debian's Chromium over WebDriver, chromedriver started
//! here): a reviewer logs in, sees a case in the queue, claims it, opens it with the report and
//! the images from the emulator, approves it with a reason; the callback arrives at a receiver
//! and an admin finds the decision in the audit log. A screenshot of every page is written to
//! `target/console-screenshots/`.
//!
//! Every step waits for a condition (an element, a URL, a callback) with a bound; nothing
//! sleeps and hopes.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use common::console::{add_operator, PASSWORD};
use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use idverdict::decide::access::Role;
use stripe_emulator::EmulatorConfig;

const KEY: &str = "rk_test_console_browser";
const CALLBACK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// The bound on every wait (a broken build must not hang the suite).
const WAIT: Duration = Duration::from_secs(30);

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: tokio::process::Child,
    url: String,
}

impl Driver {
    async fn start() -> Driver {
        assert!(
            std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists(),
            "the browser tests need Debian's chromium and chromium-driver (scripts/test installs them: apt-get install chromium chromium-driver)"
        );
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let child = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not listen"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Driver { child, url }
    }

    async fn browser(&self, profile: &std::path::Path) -> Client {
        // WebDriver is plain HTTP here, but the client must still have a TLS provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--window-size=1400,1700",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        ClientBuilder::rustls()
            .expect("tls")
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a WebDriver session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn screenshots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.expect("screenshot");
    std::fs::write(screenshots_dir().join(format!("{name}.png")), png).unwrap();
}

/// Wait until the page's source contains `text`.
async fn wait_for_text(browser: &Client, text: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let source = browser.source().await.expect("source");
        if source.contains(text) {
            return source;
        }
        if tokio::time::Instant::now() >= deadline {
            screenshot(browser, "failure").await;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "`{text}` never appeared on {}",
            browser
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A callback receiver that records every body.
async fn receiver() -> (SocketAddr, Arc<Mutex<Vec<serde_json::Value>>>) {
    let seen: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    async fn take(
        State(seen): State<Arc<Mutex<Vec<serde_json::Value>>>>,
        body: Bytes,
    ) -> &'static str {
        if let Ok(v) = serde_json::from_slice(&body) {
            seen.lock().unwrap().push(v);
        }
        "ok"
    }
    let app = axum::Router::new()
        .route("/callback", axum::routing::post(take))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, seen)
}

/// A session at the emulator for `user` (with a selfie check), failed with `code`.
async fn failed_session(http: &reqwest::Client, emu: &str, user: &str, code: &str) -> String {
    let created: serde_json::Value = http
        .post(format!("{emu}/v1/identity/verification_sessions"))
        .bearer_auth(KEY)
        .form(&[
            ("type", "document"),
            ("client_reference_id", user),
            ("options[document][require_matching_selfie]", "true"),
            ("metadata[plan]", "<b>gold</b>"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    let res = http
        .post(format!(
            "{emu}/v1/test_helpers/identity/verification_sessions/{id}/require_input"
        ))
        .bearer_auth(KEY)
        .form(&[("last_error[code]", code)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );
    id
}

async fn wait_for_state(app: &TestApp, user: &str, state: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, v) = app.get(&format!("/v1/users/{user}")).await;
        if v["state"] == state {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{user} never reached {state}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn log_in(browser: &Client, base: &str, email: &str) {
    browser.goto(&format!("{base}/console")).await.unwrap();
    let form = browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("input[name=email]"))
        .await
        .expect("the login form");
    form.send_keys(email).await.unwrap();
    browser
        .find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    browser
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(browser, "<h1>Overview</h1>").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_clears_a_case_in_a_real_browser() {
    // The emulator, a callback receiver, and idverdict reconciling from the emulator every
    // second (no webhook endpoint needed) with a restricted key, so the images show.
    let emu_dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let emu = stripe_emulator::spawn(
        listener,
        EmulatorConfig {
            data_dir: emu_dir.path().to_path_buf(),
            processing_delay: Duration::from_millis(10),
            ..EmulatorConfig::default()
        },
    )
    .await
    .unwrap();
    let emu_url = emu.base_url().to_string();
    let (receiver_addr, callbacks) = receiver().await;
    let callback_url = format!("http://{receiver_addr}/callback");
    let db = TestDb::new(Backend::Sqlite).await;
    let app = TestApp::start(&config_with(
        &db,
        &[SECRET],
        &[
            ("STRIPE_API_KEY", KEY),
            ("STRIPE_API_BASE", &emu_url),
            ("IDVERDICT_RECONCILE_INTERVAL_SECS", "1"),
            ("IDVERDICT_CALLBACK_URLS", &callback_url),
            ("IDVERDICT_CALLBACK_SECRETS", CALLBACK_SECRET),
            ("IDVERDICT_ALLOW_PRIVATE_TARGETS", "on"),
            ("IDVERDICT_RETRY_SCHEDULE", "100ms,200ms"),
        ],
    ))
    .await;
    let store = db.store().await;
    add_operator(&store, "rita@example.com", Role::Reviewer).await;
    add_operator(&store, "ada@example.com", Role::Admin).await;

    // Mixed cases: two for review (the older first), one that may retry, one rejected.
    let http = reqwest::Client::new();
    failed_session(&http, &emu_url, "user_fraud", "selfie_manipulated").await;
    wait_for_state(&app, "user_fraud", "needs_review").await;
    failed_session(&http, &emu_url, "user_mismatch", "selfie_face_mismatch").await;
    failed_session(&http, &emu_url, "user_expired", "document_expired").await;
    failed_session(&http, &emu_url, "user_young", "under_supported_age").await;
    for (user, state) in [
        ("user_mismatch", "needs_review"),
        ("user_expired", "retry_allowed"),
        ("user_young", "rejected"),
    ] {
        wait_for_state(&app, user, state).await;
    }

    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.browser(profile.path()).await;
    let base = app.url("");

    // Logged out, the console shows the login page.
    browser
        .goto(&format!("{base}/console/queue"))
        .await
        .unwrap();
    wait_for_text(&browser, "<h1>Log in</h1>").await;
    screenshot(&browser, "01-login").await;
    log_in(&browser, &base, "rita@example.com").await;
    browser.goto(&format!("{base}/console")).await.unwrap();
    wait_for_text(&browser, "Users per state").await;
    screenshot(&browser, "02-overview").await;

    browser
        .goto(&format!("{base}/console/queue"))
        .await
        .unwrap();
    let queue = wait_for_text(&browser, "user_fraud").await;
    assert!(queue.contains("user_mismatch"));
    assert!(
        !queue.contains("user_expired"),
        "only cases for review are queued"
    );
    screenshot(&browser, "03-queue").await;

    // Claim next: the oldest case, on its own page, with the report and the images.
    browser
        .find(Locator::Css("form[action='/console/queue/claim'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let case = wait_for_text(&browser, "You are working on this case").await;
    assert!(
        browser
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/console/users/user_fraud"),
        "claim next gives the oldest case"
    );
    assert!(
        case.contains("selfie_manipulated"),
        "the why and the report"
    );
    assert!(case.contains("unverified"));
    assert!(
        case.contains("driving_license"),
        "the document type from the live report"
    );
    browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(".images img"))
        .await
        .expect("the images");
    // Every image came through its short-lived FileLink and was drawn by the browser.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let loaded = browser
            .execute(
                "return Array.from(document.querySelectorAll('.images img')).map(i => i.complete && i.naturalWidth > 0);",
                vec![],
            )
            .await
            .unwrap();
        let flags: Vec<bool> = serde_json::from_value(loaded).unwrap();
        if flags.len() == 3 && flags.iter().all(|f| *f) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "images did not load: {flags:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    screenshot(&browser, "04-case").await;

    // Approve with a reason.
    browser
        .find(Locator::Css("input[name=action][value=approve]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .find(Locator::Css("select[name=reason]"))
        .await
        .unwrap()
        .select_by_value("document and selfie match the person")
        .await
        .unwrap();
    browser
        .find(Locator::Css("textarea[name=details]"))
        .await
        .unwrap()
        .send_keys("selfie checked against the document by hand")
        .await
        .unwrap();
    browser
        .find(Locator::Css("form[action$='/decide'] button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let after = wait_for_text(&browser, "Decided: user_fraud: approve → approved").await;
    assert!(
        !after.contains(">user_fraud</a>"),
        "the case left the queue"
    );
    screenshot(&browser, "05-queue-after-decision").await;

    // The callback reached the app, signed by idverdict, saying who decided and why.
    let deadline = tokio::time::Instant::now() + WAIT;
    let approved = loop {
        let found = callbacks
            .lock()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "approved" && c["user"] == "user_fraud")
            .cloned();
        if let Some(c) = found {
            break c;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no approved callback"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(approved["reviewer"], "rita@example.com");
    assert_eq!(
        approved["note"],
        "document and selfie match the person — selfie checked against the document by hand"
    );

    // The other pages, as the reviewer.
    browser
        .goto(&format!("{base}/console/users"))
        .await
        .unwrap();
    wait_for_text(&browser, "user_young").await;
    screenshot(&browser, "06-users").await;
    browser
        .goto(&format!("{base}/console/reactions"))
        .await
        .unwrap();
    wait_for_text(&browser, "approved").await;
    screenshot(&browser, "07-reactions").await;
    browser
        .find(Locator::Css("table a[href^='/console/reactions/rx_']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&browser, "Delivery attempts").await;
    screenshot(&browser, "08-reaction").await;

    // An auditor (admin) sees who decided what and why.
    browser
        .find(Locator::Css("form[action='/console/logout'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&browser, "<h1>Log in</h1>").await;
    log_in(&browser, &base, "ada@example.com").await;
    browser
        .goto(&format!("{base}/console/audit"))
        .await
        .unwrap();
    let audit = wait_for_text(&browser, "review.approve").await;
    assert!(audit.contains("rita@example.com"));
    assert!(audit.contains("selfie checked against the document by hand"));
    assert!(audit.contains("claim"));
    screenshot(&browser, "09-audit").await;
    browser
        .goto(&format!("{base}/console/operators"))
        .await
        .unwrap();
    wait_for_text(&browser, "Add an operator").await;
    screenshot(&browser, "10-operators").await;
    browser
        .goto(&format!("{base}/console/users/user_mismatch"))
        .await
        .unwrap();
    wait_for_text(&browser, "Nobody has claimed this case").await;
    screenshot(&browser, "11-case-unclaimed").await;

    browser.close().await.unwrap();
    drop(driver);
    app.stop().await;
    emu.shutdown().await.unwrap();
}
