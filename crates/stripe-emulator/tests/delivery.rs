//! Webhook delivery against real receivers on 127.0.0.1:0: signatures,
//! headers, retries, auto-disable, chaos switches, secret roll, resend, and
//! the hosted-page flow.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use serde_json::Value;

fn types(rs: &[Received]) -> Vec<String> {
    rs.iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn delivers_signed_events_with_stripe_headers() {
    let emu = start().await;
    let rx = receiver(0).await;
    let ep = emu.endpoint(&rx.url, &["*"]).await;
    let secret = ep["secret"].as_str().unwrap();
    let s = emu.session().await;
    let id = s["id"].as_str().unwrap();
    emu.ok_post(
        &format!("/v1/test_helpers/identity/verification_sessions/{id}/verify"),
        &[],
    )
    .await;
    let got = rx.wait_successes(3, 10).await;
    let mut seen: Vec<String> = types(&got);
    seen.sort();
    assert_eq!(
        seen,
        [
            "identity.verification_session.created",
            "identity.verification_session.processing",
            "identity.verification_session.verified"
        ]
    );
    for r in &got {
        let ev = verify(r, secret);
        assert!(ev.id.starts_with("evt_"));
        assert_eq!(
            r.user_agent,
            "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
        );
        assert_eq!(r.content_type, "application/json; charset=utf-8");
        assert_eq!(r.signature.matches("v1=").count(), 1);
        let body = r.json();
        assert_eq!(body["data"]["object"]["id"], id);
        assert_eq!(body["livemode"], false);
    }
    // pending_webhooks counts down to 0 once the endpoint answered 2xx.
    eventually(5, || async {
        let evs = emu
            .ok_get("/v1/events", &[("delivery_success", "false")])
            .await;
        evs["data"].as_array().unwrap().is_empty().then_some(())
    })
    .await;
    let first = got
        .iter()
        .find(|r| r.json()["type"] == "identity.verification_session.created")
        .unwrap();
    assert_eq!(
        first.json()["pending_webhooks"],
        1,
        "the delivered copy counts this endpoint as pending"
    );
    let ev = emu
        .ok_get(
            &format!("/v1/events/{}", first.json()["id"].as_str().unwrap()),
            &[],
        )
        .await;
    assert_eq!(ev["pending_webhooks"], 0);
    let log = emu.delivery_log().await;
    assert_eq!(log["attempts"].as_array().unwrap().len(), 3);
    assert!(log["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["success"] == true && a["status"] == 200));
    emu.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn subscriptions_and_star_excludes_redacted() {
    let emu = start().await;
    let star = receiver(0).await;
    let only_redacted = receiver(0).await;
    let verified_only = receiver(0).await;
    let disabled = receiver(0).await;
    emu.endpoint(&star.url, &["*"]).await;
    emu.endpoint(
        &only_redacted.url,
        &["identity.verification_session.redacted"],
    )
    .await;
    emu.endpoint(
        &verified_only.url,
        &["identity.verification_session.verified"],
    )
    .await;
    let d = emu.endpoint(&disabled.url, &["*"]).await;
    emu.ok_post(
        &format!("/v1/webhook_endpoints/{}", d["id"].as_str().unwrap()),
        &[("disabled", "true")],
    )
    .await;
    let s = emu.session().await;
    let id = s["id"].as_str().unwrap();
    emu.ok_post(
        &format!("/v1/test_helpers/identity/verification_sessions/{id}/verify"),
        &[],
    )
    .await;
    emu.ok_post(
        &format!("/v1/identity/verification_sessions/{id}/redact"),
        &[],
    )
    .await;
    only_redacted.wait_successes(1, 10).await;
    star.wait_successes(3, 10).await;
    verified_only.wait_successes(1, 10).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        types(&only_redacted.received()),
        ["identity.verification_session.redacted"]
    );
    assert!(
        !types(&star.received()).contains(&"identity.verification_session.redacted".to_string())
    );
    assert_eq!(star.received().len(), 3);
    assert_eq!(
        types(&verified_only.received()),
        ["identity.verification_session.verified"]
    );
    assert!(disabled.received().is_empty());
    emu.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn failing_receiver_gets_the_event_after_n_plus_one_attempts() {
    let emu = start().await;
    let rx = receiver(3).await;
    let ep = emu
        .endpoint(&rx.url, &["identity.verification_session.created"])
        .await;
    let secret = ep["secret"].as_str().unwrap();
    emu.session().await;
    let ok = rx.wait_successes(1, 20).await;
    let all = rx.received();
    assert_eq!(all.len(), 4, "3 failures then 1 success");
    let ids: Vec<Value> = all.iter().map(|r| r.json()["id"].clone()).collect();
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "every attempt carries the same event"
    );
    for r in &all {
        verify(r, secret);
    }
    assert_eq!(
        ok[0].json()["type"],
        "identity.verification_session.created"
    );
    // The receiver sees the 4th request a moment before the emulator records its answer.
    let log = eventually(10, || async {
        let log = emu.delivery_log().await;
        (log["attempts"].as_array().map(Vec::len) == Some(4)
            && log["deliveries"][0]["state"] == "succeeded")
            .then_some(log)
    })
    .await;
    let attempts = log["attempts"].as_array().unwrap();
    let numbers: Vec<i64> = attempts
        .iter()
        .rev()
        .map(|a| a["attempt"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2, 3, 4]);
    assert_eq!(
        attempts
            .iter()
            .filter(|a| a["status"] == 500 && a["success"] == false)
            .count(),
        3
    );
    assert_eq!(log["deliveries"][0]["state"], "succeeded");
    let ep_now = emu
        .ok_get(
            &format!("/v1/webhook_endpoints/{}", ep["id"].as_str().unwrap()),
            &[],
        )
        .await;
    assert_eq!(ep_now["status"], "enabled");
    emu.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn endpoint_that_never_succeeds_is_disabled() {
    let emu = start_with(tempfile::tempdir().unwrap(), |c| c.time_scale = 0.00002).await;
    let rx = receiver(u32::MAX).await;
    let ep = emu
        .endpoint(&rx.url, &["identity.verification_session.created"])
        .await;
    let ep_id = ep["id"].as_str().unwrap().to_string();
    emu.session().await;
    eventually(60, || async {
        let e = emu
            .ok_get(&format!("/v1/webhook_endpoints/{ep_id}"), &[])
            .await;
        (e["status"] == "disabled").then_some(())
    })
    .await;
    let n = rx.received().len();
    assert!(
        n > 5,
        "retried with backoff over the whole horizon ({n} attempts)"
    );
    let log = emu.delivery_log().await;
    assert_eq!(log["deliveries"][0]["state"], "failed");
    let ev = emu
        .ok_get("/v1/events", &[("delivery_success", "false")])
        .await;
    assert_eq!(ev["data"].as_array().unwrap().len(), 1);
    assert_eq!(ev["data"][0]["pending_webhooks"], 1);
    emu.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn chaos_duplicate_and_distinct_duplicate() {
    let emu = start_with(tempfile::tempdir().unwrap(), |c| {
        c.chaos.duplicate = 1.0;
        c.chaos.distinct_duplicate = 1.0;
    })
    .await;
    let rx = receiver(0).await;
    let ep = emu.endpoint(&rx.url, &["*"]).await;
    let secret = ep["secret"].as_str().unwrap();
    emu.session().await;
    // One change → two events (distinct ids) → each delivered twice.
    let got = rx.wait_successes(4, 10).await;
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for r in &got {
        verify(r, secret);
        *per_id
            .entry(r.json()["id"].as_str().unwrap().to_string())
            .or_default() += 1;
        assert_eq!(r.json()["type"], "identity.verification_session.created");
    }
    assert_eq!(per_id.len(), 2, "{per_id:?}");
    assert!(per_id.values().all(|n| *n == 2));
    let evs = emu.ok_get("/v1/events", &[]).await;
    assert_eq!(evs["data"].as_array().unwrap().len(), 2);
    assert_eq!(
        evs["data"][0]["data"]["object"]["id"],
        evs["data"][1]["data"]["object"]["id"]
    );
    emu.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn chaos_reorder_and_delay() {
    let emu = start_with(tempfile::tempdir().unwrap(), |c| {
        c.chaos.reorder = 1.0;
        c.chaos.reorder_window = Duration::from_millis(1000);
    })
    .await;
    let rx = receiver(0).await;
    emu.endpoint(&rx.url, &["*"]).await;
    let s = emu.session().await;
    let id = s["id"].as_str().unwrap();
    emu.ok_post(
        &format!("/v1/test_helpers/identity/verification_sessions/{id}/verify"),
        &[],
    )
    .await;
    let got = rx.wait_successes(3, 10).await;
    // created is held, processing overtakes it; verified waits out the window.
    assert_eq!(
        types(&got),
        [
            "identity.verification_session.processing",
            "identity.verification_session.created",
            "identity.verification_session.verified"
        ]
    );
    emu.handle.shutdown().await.unwrap();

    let emu = start_with(tempfile::tempdir().unwrap(), |c| {
        c.chaos.delay = 1.0;
        c.chaos.max_delay = Duration::from_millis(200);
    })
    .await;
    let rx = receiver(0).await;
    emu.endpoint(&rx.url, &["*"]).await;
    for _ in 0..3 {
        emu.session().await;
    }
    assert_eq!(rx.wait_successes(3, 10).await.len(), 3);
    emu.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn secret_roll_signs_with_both_secrets() {
    let emu = start().await;
    let rx = receiver(0).await;
    let ep = emu.endpoint(&rx.url, &["*"]).await;
    let old = ep["secret"].as_str().unwrap().to_string();
    let ep_id = ep["id"].as_str().unwrap();
    let rolled: Value = emu
        .http
        .post(emu.url(&format!("/_emulator/webhook_endpoints/{ep_id}/roll_secret")))
        .form(&[("expires_in", "3600")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new = rolled["secret"].as_str().unwrap().to_string();
    assert_ne!(old, new);
    assert!(rolled["previous_secret_expires_at"].as_i64().unwrap() > now());
    emu.session().await;
    let got = rx.wait_successes(1, 10).await;
    assert_eq!(got[0].signature.matches("v1=").count(), 2);
    verify(&got[0], &old);
    verify(&got[0], &new);
    // Expire the old one at once: one v1, only the newest secret verifies.
    let rolled: Value = emu
        .http
        .post(emu.url(&format!(
            "/_emulator/webhook_endpoints/{ep_id}/roll_secret?expires_in=0"
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let newest = rolled["secret"].as_str().unwrap().to_string();
    emu.session().await;
    let got = rx.wait_successes(2, 10).await;
    let last = &got[1];
    assert_eq!(
        last.signature.matches("v1=").count(),
        2,
        "the first roll's old secret is still valid: {}",
        last.signature
    );
    verify(last, &newest);
    verify(last, &old);
    let v = stripe_webhook::Verifier::new([new.as_str()]).unwrap();
    assert!(
        v.verify(&last.body, Some(&last.signature), now()).is_err(),
        "a secret expired by a roll no longer signs"
    );
    emu.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn resend_and_hosted_page_flow() {
    let emu = start().await;
    let rx = receiver(0).await;
    let ep = emu.endpoint(&rx.url, &["*"]).await;
    let ep_id = ep["id"].as_str().unwrap();
    let s = emu
        .ok_post(
            "/v1/identity/verification_sessions",
            &[
                ("type", "document"),
                ("return_url", "https://example.com/back"),
            ],
        )
        .await;
    let url = s["url"].as_str().unwrap();
    // The hosted page lists all 19 codes.
    let page = emu
        .http
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for code in stripe_webhook::ErrorCode::ALL {
        assert!(page.contains(code.as_str()), "{}", code.as_str());
    }
    let token = url.split("token=").nth(1).unwrap();
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let action = url.split('?').next().unwrap();
    let r = client
        .post(action)
        .form(&[("token", token), ("outcome", "document_expired")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "https://example.com/back");
    // The link is single use.
    let again = client
        .post(action)
        .form(&[("token", token), ("outcome", "verified")])
        .send()
        .await
        .unwrap();
    assert!(again.status().is_client_error());
    let id = s["id"].as_str().unwrap();
    let done = eventually(10, || async {
        let v = emu
            .ok_get(&format!("/v1/identity/verification_sessions/{id}"), &[])
            .await;
        (v["status"] == "requires_input" && !v["last_error"].is_null()).then_some(v)
    })
    .await;
    assert_eq!(done["last_error"]["code"], "document_expired");
    let got = rx.wait_successes(3, 10).await;
    assert!(types(&got).contains(&"identity.verification_session.requires_input".to_string()));
    // Second attempt through the fresh url: verified.
    let url2 = done["url"].as_str().unwrap();
    let token2 = url2.split("token=").nth(1).unwrap();
    let r = client
        .post(url2.split('?').next().unwrap())
        .form(&[("token", token2), ("outcome", "verified")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    eventually(10, || async {
        let v = emu
            .ok_get(&format!("/v1/identity/verification_sessions/{id}"), &[])
            .await;
        (v["status"] == "verified").then_some(())
    })
    .await;
    // Resend an event to the endpoint: one more delivery of the same event id.
    let created = emu
        .ok_get(
            "/v1/events",
            &[("type", "identity.verification_session.created")],
        )
        .await;
    let ev_id = created["data"][0]["id"].as_str().unwrap();
    // The session reads `verified` before its event has reached the receiver: count the
    // resends from after processing + verified arrived.
    let delivered = rx.wait_successes(5, 10).await;
    assert!(types(&delivered).contains(&"identity.verification_session.verified".to_string()));
    let before = rx.received().len();
    let r: Value = emu
        .http
        .post(emu.url(&format!("/_emulator/events/{ev_id}/resend")))
        .form(&[("webhook_endpoint", ep_id)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(r["delivery_id"].as_i64().is_some());
    emu.ok_post(
        &format!("/v1/events/{ev_id}/retry"),
        &[("webhook_endpoint", ep_id)],
    )
    .await;
    let got = rx.wait_successes(before + 2, 10).await;
    assert_eq!(got[before].json()["id"], ev_id);
    assert_eq!(got[before + 1].json()["id"], ev_id);
    let html = emu
        .http
        .get(emu.url("/_emulator"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(ev_id) && html.contains("resend"));
    emu.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn chaos_rates_follow_the_probability() {
    let emu = start_with(tempfile::tempdir().unwrap(), |c| {
        c.chaos.duplicate = 0.5;
        c.chaos.distinct_duplicate = 0.25;
    })
    .await;
    let rx = receiver(0).await;
    emu.endpoint(&rx.url, &["identity.verification_session.created"])
        .await;
    const N: usize = 120;
    for _ in 0..N {
        emu.session().await;
    }
    let events = emu.ok_get("/v1/events", &[("limit", "100")]).await;
    let mut all_events = events["data"].as_array().unwrap().len();
    if events["has_more"] == true {
        let last = events["data"][99]["id"].as_str().unwrap().to_string();
        let more = emu
            .ok_get("/v1/events", &[("limit", "100"), ("starting_after", &last)])
            .await;
        all_events += more["data"].as_array().unwrap().len();
    }
    let distinct = all_events - N;
    // Binomial bounds at more than 5 standard deviations: a broken switch
    // (0 or always) fails, a working one essentially never does.
    assert!(
        (5..=60).contains(&distinct),
        "{distinct} distinct duplicates for p=0.25 over {N}"
    );
    let log = eventually(20, || async {
        let log = emu.delivery_log().await;
        let deliveries = log["deliveries"].as_array().unwrap().clone();
        deliveries
            .iter()
            .all(|d| d["state"] == "succeeded")
            .then_some(deliveries)
    })
    .await;
    let dups = log.iter().filter(|d| d["kind"] == "duplicate").count();
    let primaries = log.iter().filter(|d| d["kind"] == "primary").count();
    assert_eq!(primaries, all_events);
    assert!(
        dups * 100 >= primaries * 20 && dups * 100 <= primaries * 80,
        "{dups} duplicates for p=0.5 over {primaries}"
    );
    assert_eq!(rx.successes().len(), primaries + dups);
    emu.handle.shutdown().await.unwrap();
}
