//! State survives a restart of the emulator on the same data directory:
//! objects, idempotency keys, pending deliveries and pending outcomes.

mod common;

use std::time::Duration;

use common::*;
use reqwest::Method;

#[tokio::test]
async fn state_and_pending_work_survive_a_restart() {
    // time_scale 0.01: the first retry comes ~0.6 s after a failure.
    let emu = start_with(tempfile::tempdir().unwrap(), |c| {
        c.time_scale = 0.01;
        c.processing_delay = Duration::from_millis(700);
    })
    .await;
    let rx = receiver(1).await;
    let ep = emu.endpoint(&rx.url, &["*"]).await;
    let secret = ep["secret"].as_str().unwrap().to_string();
    let created = emu
        .send(
            Method::POST,
            "/v1/identity/verification_sessions",
            &[("type", "document"), ("metadata[k]", "v")],
            &[("Idempotency-Key", "persist-1")],
        )
        .await;
    assert_eq!(created.status, 200);
    let id = created.body["id"].as_str().unwrap().to_string();
    // The first attempt fails; its retry is now pending.
    eventually(10, || async { (!rx.received().is_empty()).then_some(()) }).await;
    // A hosted-page submission whose outcome is due after the restart.
    let url = created.body["url"].as_str().unwrap().to_string();
    let token = url.split("token=").nth(1).unwrap().to_string();
    let r = emu
        .http
        .post(url.split('?').next().unwrap())
        .form(&[("token", token.as_str()), ("outcome", "verified")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let Emu { handle, dir, .. } = emu;
    handle.shutdown().await.unwrap();

    let emu = start_with(dir, |c| {
        c.time_scale = 0.01;
        c.processing_delay = Duration::from_millis(700);
    })
    .await;
    let s = emu
        .ok_get(&format!("/v1/identity/verification_sessions/{id}"), &[])
        .await;
    assert_eq!(s["metadata"]["k"], "v");
    let replay = emu
        .send(
            Method::POST,
            "/v1/identity/verification_sessions",
            &[("type", "document"), ("metadata[k]", "v")],
            &[("Idempotency-Key", "persist-1")],
        )
        .await;
    assert_eq!(replay.headers.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(replay.body["id"], id.as_str());
    let e = emu
        .ok_get(
            &format!("/v1/webhook_endpoints/{}", ep["id"].as_str().unwrap()),
            &[],
        )
        .await;
    assert_eq!(e["url"], rx.url.as_str());
    // The pending outcome fires after the restart…
    eventually(10, || async {
        let v = emu
            .ok_get(&format!("/v1/identity/verification_sessions/{id}"), &[])
            .await;
        (v["status"] == "verified").then_some(())
    })
    .await;
    // …and every event, including the retried `created`, reaches the receiver.
    let got = rx.wait_successes(3, 20).await;
    // At least once: a delivery in flight when the emulator stopped may arrive twice, so
    // compare distinct events.
    let mut seen = std::collections::BTreeMap::new();
    for r in &got {
        let json = r.json();
        seen.insert(
            json["id"].as_str().unwrap().to_string(),
            json["type"].as_str().unwrap().to_string(),
        );
    }
    let mut kinds: Vec<String> = seen.into_values().collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "identity.verification_session.created",
            "identity.verification_session.processing",
            "identity.verification_session.verified"
        ]
    );
    for r in &got {
        verify(r, &secret);
    }
    for _ in 0..100 {
        let evs = emu
            .ok_get("/v1/events", &[("delivery_success", "false")])
            .await;
        if evs["data"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let evs = emu
        .ok_get("/v1/events", &[("delivery_success", "false")])
        .await;
    if !evs["data"].as_array().unwrap().is_empty() {
        let d = reqwest::get(format!("{}/_emulator/deliveries", emu.handle.base_url()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        panic!("undelivered events: {evs}\ndeliveries: {d}");
    }
    emu.handle.shutdown().await.unwrap();
}

/// Sets an event's `pending_webhooks` in the state file directly, as a crash between
/// recording a delivery and counting it would have left it.
async fn tamper_pending(dir: &std::path::Path, event_id: &str, value: i64) {
    let opts =
        sqlx::sqlite::SqliteConnectOptions::new().filename(dir.join(stripe_emulator::DB_FILE));
    let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    let res = sqlx::query(
        "UPDATE objects SET body = json_set(body, '$.pending_webhooks', ?) WHERE id = ?",
    )
    .bind(value)
    .bind(event_id)
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(res.rows_affected(), 1);
    pool.close().await;
}

#[tokio::test]
async fn pending_webhooks_is_recounted_from_the_deliveries_at_start() {
    let emu = start().await;
    let ok = receiver(0).await;
    emu.endpoint(&ok.url, &["identity.verification_session.created"])
        .await;
    // An endpoint that never answers: its delivery stays pending (retries far away).
    emu.endpoint(
        "http://127.0.0.1:9/hook",
        &["identity.verification_session.canceled"],
    )
    .await;
    let s = emu.session().await;
    let id = s["id"].as_str().unwrap();
    emu.ok_post(
        &format!("/v1/identity/verification_sessions/{id}/cancel"),
        &[],
    )
    .await;
    ok.wait_successes(1, 10).await;
    let events = |v: &serde_json::Value, kind: &str| -> String {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == kind)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let list = emu.ok_get("/v1/events", &[]).await;
    let created = events(&list, "identity.verification_session.created");
    let canceled = events(&list, "identity.verification_session.canceled");
    eventually(10, || async {
        let e = emu.ok_get(&format!("/v1/events/{created}"), &[]).await;
        (e["pending_webhooks"] == 0).then_some(())
    })
    .await;
    eventually(10, || async {
        let log = emu.delivery_log().await;
        let failed_once = log["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["event_id"] == canceled.as_str());
        failed_once.then_some(())
    })
    .await;
    let Emu { handle, dir, .. } = emu;
    handle.shutdown().await.unwrap();
    // Wrong in both directions: a delivered event still counted, an undelivered one not.
    tamper_pending(dir.path(), &created, 1).await;
    tamper_pending(dir.path(), &canceled, 0).await;

    let emu = start_with(dir, |c| c.time_scale = 1.0).await;
    let e = emu.ok_get(&format!("/v1/events/{created}"), &[]).await;
    assert_eq!(e["pending_webhooks"], 0);
    let e = emu.ok_get(&format!("/v1/events/{canceled}"), &[]).await;
    assert_eq!(e["pending_webhooks"], 1);
    let undelivered = emu
        .ok_get("/v1/events", &[("delivery_success", "false")])
        .await;
    let ids: Vec<&str> = undelivered["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [canceled.as_str()]);
    emu.handle.shutdown().await.unwrap();
}

#[cfg(unix)]
#[tokio::test]
async fn state_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("nested").join("emulator");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handle = stripe_emulator::spawn(listener, fast_config(&data))
        .await
        .unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = http
        .post(format!(
            "{}/v1/identity/verification_sessions",
            handle.base_url()
        ))
        .bearer_auth(KEY)
        .form(&[
            ("type", "document"),
            ("metadata[email]", "someone@example.com"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "data directory");
    assert_eq!(
        mode(&root.path().join("nested")),
        0o700,
        "directories it created"
    );
    let mut seen = 0;
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(stripe_emulator::DB_FILE)
        {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
            seen += 1;
        }
    }
    assert!(seen >= 2, "the database and its write-ahead log");
    handle.shutdown().await.unwrap();
}

/// Every byte of every file under `dir`.
fn raw_bytes(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(raw_bytes(&path));
        } else {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

#[tokio::test]
async fn redaction_leaves_no_personal_value_on_disk_and_scrubs_idempotent_replays() {
    let emu = start().await;
    let private = [
        "ada.private@example.org",
        "Zebedee",
        "Quixotic",
        "Xanadu",
        "ZX9988776",
        "+15550106789",
    ];
    let create_form = [
        ("type", "document"),
        ("metadata[email]", private[0]),
        ("provided_details[email]", private[0]),
        ("provided_details[phone]", private[5]),
    ];
    let created = emu
        .send(
            Method::POST,
            "/v1/identity/verification_sessions",
            &create_form,
            &[("Idempotency-Key", "redact-create")],
        )
        .await;
    assert_eq!(created.status, 200);
    let id = created.body["id"].as_str().unwrap().to_string();
    let verify_form = [
        ("verified_outputs[first_name]", private[1]),
        ("verified_outputs[last_name]", private[2]),
        ("verified_outputs[address][city]", private[3]),
        ("document[number]", private[4]),
        ("expand[0]", "verified_outputs"),
        ("expand[1]", "provided_details"),
        ("expand[2]", "last_verification_report"),
    ];
    let helper = format!("/v1/test_helpers/identity/verification_sessions/{id}/verify");
    let verified = emu
        .send(
            Method::POST,
            &helper,
            &verify_form,
            &[("Idempotency-Key", "redact-verify")],
        )
        .await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    assert_eq!(verified.body["verified_outputs"]["first_name"], private[1]);

    emu.ok_post(
        &format!("/v1/identity/verification_sessions/{id}/redact"),
        &[],
    )
    .await;
    eventually(10, || async {
        let evs = emu
            .ok_get(
                "/v1/events",
                &[("type", "identity.verification_session.redacted")],
            )
            .await;
        (!evs["data"].as_array().unwrap().is_empty()).then_some(())
    })
    .await;

    // Replays answer the redacted session, not the stored personal values.
    let replay = emu
        .send(
            Method::POST,
            "/v1/identity/verification_sessions",
            &create_form,
            &[("Idempotency-Key", "redact-create")],
        )
        .await;
    assert_eq!(replay.headers.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(replay.body["id"], id.as_str());
    assert_eq!(replay.body["metadata"], serde_json::json!({}));
    let replay = emu
        .send(
            Method::POST,
            &helper,
            &verify_form,
            &[("Idempotency-Key", "redact-verify")],
        )
        .await;
    assert_eq!(replay.headers.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(replay.body["verified_outputs"]["first_name"], "[redacted]");
    assert_eq!(replay.body["provided_details"]["email"], "[redacted]");
    assert_eq!(
        replay.body["last_verification_report"]["document"]["first_name"],
        "[redacted]"
    );
    let text = replay.body.to_string();
    for value in private {
        assert!(!text.contains(value), "replay still holds {value}");
    }

    let Emu { handle, dir, .. } = emu;
    handle.shutdown().await.unwrap();
    for (path, bytes) in raw_bytes(dir.path()) {
        for value in private {
            let found = bytes.windows(value.len()).any(|w| w == value.as_bytes());
            assert!(!found, "{path} still holds {value}");
        }
    }
}
