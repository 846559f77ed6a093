//! Redaction across everything: with callbacks (one target healthy, one failing so reactions
//! stay pending) and email (a real aiosmtpd sink) configured, sessions whose metadata carries a
//! user's email address and name produce decisions and reactions; then
//! `identity.verification_session.redacted` arrives for each session. Afterwards every text and
//! blob column of every table is dumped and searched for the personal values: none may remain.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::routing::post;
use common::smtp::SmtpSink;
use common::*;
use idverdict::synth::{self, Kind, Spec};

const CALLBACK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const EMAIL: &str = "jane.private@example.com";
const NAME: &str = "Jane Q. Private";
/// Every value that must be gone after redaction (the address's local part on its own too:
/// it would survive a naive replace of the full address).
const PERSONAL: &[&str] = &[EMAIL, "jane.private", NAME, "Q. Private"];
const USER: &str = "user_red";
const PATIENCE: Duration = Duration::from_secs(60);

/// `/ok` accepts, `/down` always answers 500 (its reactions stay pending).
async fn start_receiver() -> (SocketAddr, Arc<Mutex<u32>>) {
    let accepted = Arc::new(Mutex::new(0u32));
    let counter = accepted.clone();
    let app = axum::Router::new()
        .route(
            "/ok",
            post(move || {
                let counter = counter.clone();
                async move {
                    *counter.lock().unwrap() += 1;
                    StatusCode::OK
                }
            }),
        )
        .route(
            "/down",
            post(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, accepted)
}

fn personal_event(kind: Kind, session: &str, created: i64, code: Option<&str>) -> Vec<u8> {
    let mut spec = Spec::new(kind, session, created);
    spec.user_ref = Some(USER.to_string());
    spec.session_created = created - 100;
    spec.error_code = code.map(str::to_string);
    if code.is_some() {
        spec.report_id = Some(format!("vr_{session}"));
    }
    // Stripe's redacted event carries the session after redaction: no personal metadata.
    if kind != Kind::Redacted {
        spec.metadata = vec![
            ("email".to_string(), EMAIL.to_string()),
            ("name".to_string(), NAME.to_string()),
        ];
    }
    synth::event_bytes(&spec)
}

fn leaks(cells: &[(String, String)]) -> Vec<String> {
    cells
        .iter()
        .flat_map(|(place, value)| {
            PERSONAL
                .iter()
                .filter(|p| value.contains(*p))
                .map(move |p| format!("{place} contains {p:?}: {value}"))
        })
        .collect()
}

/// `file contains "value"` for every personal value in the raw bytes of any file under `dir`.
fn leaks_on_disk(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            // A file may vanish meanwhile (SQLite's -wal at close).
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            for p in PERSONAL {
                if bytes.windows(p.len()).any(|w| w == p.as_bytes()) {
                    found.push(format!("{} contains {p:?}", path.display()));
                }
            }
        }
    }
    found
}

async fn nothing_personal_survives_redaction(backend: Backend) {
    let db = TestDb::new(backend).await;
    let sink = SmtpSink::start().await;
    let (receiver, accepted) = start_receiver().await;
    let urls = format!("http://{receiver}/ok,http://{receiver}/down");
    let port = sink.port.to_string();
    let config = config_with(
        &db,
        &[SECRET],
        &[
            ("IDVERDICT_CALLBACK_URLS", urls.as_str()),
            ("IDVERDICT_CALLBACK_SECRETS", CALLBACK_SECRET),
            // The failing target's reactions wait an hour after their first failure: pending.
            ("IDVERDICT_RETRY_SCHEDULE", "20ms,1h"),
            ("IDVERDICT_ALLOW_PRIVATE_TARGETS", "true"),
            ("IDVERDICT_SMTP_HOST", "127.0.0.1"),
            ("IDVERDICT_SMTP_PORT", port.as_str()),
            ("IDVERDICT_SMTP_TLS", "none"),
            ("IDVERDICT_SMTP_FROM", "Acme Identity <identity@acme.test>"),
            ("IDVERDICT_EMAIL_METADATA_KEY", "email"),
        ],
    );
    let app = TestApp::start(&config).await;
    let store = db.store().await;
    let t = now() - 600;
    // vs_red1 fails once (retry_allowed: callback + mail), vs_red2 is then verified
    // (verified: callback + mail).
    // Decided one at a time (a batch holding both would only announce the final verdict).
    for batch in [
        vec![
            personal_event(Kind::Created, "vs_red1", t, None),
            personal_event(
                Kind::RequiresInput,
                "vs_red1",
                t + 10,
                Some("document_expired"),
            ),
        ],
        vec![
            personal_event(Kind::Created, "vs_red2", t + 100, None),
            personal_event(Kind::Processing, "vs_red2", t + 110, None),
            personal_event(Kind::Verified, "vs_red2", t + 120, None),
        ],
    ] {
        for body in batch {
            assert_eq!(app.deliver_signed(&body).await.0, 200);
        }
        drain(&store).await;
    }
    let (_, u) = app.get(&format!("/v1/users/{USER}")).await;
    assert_eq!(u["state"], "verified", "{u}");

    // Mail went out to the user, the healthy target got its callbacks, the failing target's
    // reactions are pending: personal data is now in every corner.
    let deadline = Instant::now() + PATIENCE;
    while sink.messages().len() < 2 || *accepted.lock().unwrap() < 2 {
        if Instant::now() > deadline {
            let rows = store
                .list_reactions(&Default::default())
                .await
                .expect("reactions");
            panic!(
                "reactions were not delivered: {} mails, {} callbacks; {:#?}",
                sink.messages().len(),
                accepted.lock().unwrap(),
                rows.iter()
                    .map(|r| (&r.kind, &r.target, &r.decision, &r.state, &r.last_error))
                    .collect::<Vec<_>>()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut conn = db.raw().await;
    let before = leaks(&dump(&mut conn, backend).await);
    assert!(
        before.iter().any(|l| l.contains(EMAIL)),
        "the test must start with personal data stored: {before:?}"
    );
    if backend == Backend::Sqlite {
        assert!(
            !leaks_on_disk(db.dir.path()).is_empty(),
            "the test must start with personal data in the database files"
        );
    }
    let pending = count(
        &mut conn,
        "SELECT COUNT(*) FROM reactions WHERE state IN ('pending', 'sending')",
    )
    .await;
    assert!(pending > 0, "some reactions must still be pending");

    for (i, vs) in ["vs_red1", "vs_red2"].iter().enumerate() {
        let body = personal_event(Kind::Redacted, vs, t + 200 + i as i64, None);
        assert_eq!(app.deliver_signed(&body).await.0, 200);
    }
    drain(&store).await;

    let cells = dump(&mut conn, backend).await;
    let left = leaks(&cells);
    assert!(
        left.is_empty(),
        "personal data survived redaction:\n{}",
        left.join("\n")
    );
    // What is kept: ids, statuses, codes.
    let (_, u) = app.get(&format!("/v1/users/{USER}")).await;
    assert_eq!(u["state"], "verified", "{u}");
    assert!(cells.iter().any(|(_, v)| v.contains("vs_red1")));
    assert!(cells.iter().any(|(_, v)| v.contains("document_expired")));

    // Nor in the raw bytes of the files (SQLite: the data directory holds them all): not in
    // the write-ahead log's old frames, not in the database file's free pages. Shortly after
    // the redaction while serving, and after a graceful stop.
    if backend == Backend::Sqlite {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = leaks_on_disk(db.dir.path());
            if left.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "personal data stays on disk after redaction:\n{}",
                left.join("\n")
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    app.stop().await;
    if backend == Backend::Sqlite {
        let left = leaks_on_disk(db.dir.path());
        assert!(
            left.is_empty(),
            "personal data on disk after a graceful stop:\n{}",
            left.join("\n")
        );
    }
}
both_backends!(nothing_personal_survives_redaction);
