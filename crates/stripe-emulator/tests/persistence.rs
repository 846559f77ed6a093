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
