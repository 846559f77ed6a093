//! The `/v1` API against a real emulator: conventions, errors, lists,
//! idempotency and every resource.

mod common;

use common::*;
use reqwest::Method;
use serde_json::Value;

#[tokio::test]
async fn auth_rules_and_request_id() {
    let emu = start().await;
    let url = emu.url("/v1/identity/verification_sessions");
    // No key.
    let r = emu.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r
        .headers()
        .get("request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("req_"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("You did not provide an API key"));
    // Malformed and live keys.
    for key in ["sk_test_", "pk_test_abc", "sk_live_abc", "garbage"] {
        let r = emu.http.get(&url).bearer_auth(key).send().await.unwrap();
        assert_eq!(r.status(), 401, "{key}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Invalid API Key provided"),
            "{body}"
        );
    }
    // Basic auth with the key as user, and rk_test_ keys.
    let r = emu
        .http
        .get(&url)
        .basic_auth("sk_test_abc", Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = emu
        .http
        .get(&url)
        .bearer_auth("rk_test_abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("request-id").is_some());
    // Unknown route.
    let r = emu.get("/v1/charges", &[]).await;
    assert_eq!(r.status, 404);
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Unrecognized request URL (GET: /v1/charges)"));
    let r = emu
        .send(
            Method::DELETE,
            "/v1/identity/verification_sessions",
            &[],
            &[],
        )
        .await;
    assert_eq!(r.status, 404);
    emu.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn session_create_with_every_encoding() {
    let emu = start().await;
    // Indexed arrays, percent-encoded brackets, and `[]` all decode the same way.
    let bodies = [
        "type=document&options[document][allowed_types][0]=passport&options[document][allowed_types][1]=id_card&metadata[user]=u1",
        "type=document&options%5Bdocument%5D%5Ballowed_types%5D%5B0%5D=passport&options%5Bdocument%5D%5Ballowed_types%5D%5B1%5D=id_card&metadata%5Buser%5D=u1",
        "type=document&options[document][allowed_types][]=passport&options[document][allowed_types][]=id_card&metadata[user]=u1",
    ];
    for body in bodies {
        let r = emu
            .http
            .post(emu.url("/v1/identity/verification_sessions"))
            .bearer_auth(KEY)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let s: Value = r.json().await.unwrap();
        assert_eq!(
            s["options"]["document"]["allowed_types"],
            serde_json::json!(["passport", "id_card"]),
            "{body}"
        );
        assert_eq!(s["metadata"]["user"], "u1");
    }
    let s = emu
        .ok_post(
            "/v1/identity/verification_sessions",
            &[
                ("type", "id_number"),
                ("client_reference_id", "user_42"),
                ("return_url", "https://example.com/done"),
                ("related_customer", "cus_123"),
                ("provided_details[email]", "jenny@example.com"),
                ("options[document][require_matching_selfie]", "true"),
                ("expand[]", "provided_details"),
            ],
        )
        .await;
    assert!(s["id"].as_str().unwrap().starts_with("vs_"));
    assert_eq!(s["object"], "identity.verification_session");
    assert_eq!(s["status"], "requires_input");
    assert_eq!(s["type"], "id_number");
    assert_eq!(s["livemode"], false);
    assert_eq!(s["client_reference_id"], "user_42");
    assert_eq!(s["related_customer"], "cus_123");
    assert_eq!(s["options"]["document"]["require_matching_selfie"], true);
    assert_eq!(s["provided_details"]["email"], "jenny@example.com");
    assert!(s["client_secret"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}_secret_", s["id"].as_str().unwrap())));
    assert!(s["url"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}/verify/", emu.handle.base_url())));
    assert!(
        s["redaction"].is_null()
            && s["last_error"].is_null()
            && s["last_verification_report"].is_null()
    );
    // provided_details is absent unless expanded.
    let again = emu
        .ok_get(
            &format!(
                "/v1/identity/verification_sessions/{}",
                s["id"].as_str().unwrap()
            ),
            &[],
        )
        .await;
    assert!(again.get("provided_details").is_none());
    emu.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn parameter_errors_name_the_param() {
    let emu = start().await;
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "type"),
        (&[("type", "passport")], "type"),
        (&[("type", "document"), ("bogus", "1")], "bogus"),
        (
            &[
                ("type", "document"),
                ("options[document][allowed_types][0]", "library_card"),
            ],
            "options[document][allowed_types]",
        ),
        (
            &[
                ("type", "document"),
                ("options[document][require_matching_selfie]", "yes"),
            ],
            "options[document][require_matching_selfie]",
        ),
        (
            &[
                ("type", "document"),
                ("options[email][require_verification]", "true"),
            ],
            "options[email]",
        ),
        (
            &[("type", "document"), ("related_person[account]", "acct_1")],
            "related_person[person]",
        ),
    ];
    for (form, param) in cases {
        let r = emu.post("/v1/identity/verification_sessions", form).await;
        assert_eq!(r.status, 400, "{form:?}: {}", r.body);
        assert_eq!(r.body["error"]["type"], "invalid_request_error");
        assert_eq!(r.body["error"]["param"], *param, "{form:?}: {}", r.body);
    }
    let r = emu
        .get("/v1/identity/verification_sessions/vs_nope", &[])
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error"]["code"], "resource_missing");
    assert_eq!(r.body["error"]["param"], "id");
    for path in [
        "/v1/identity/verification_reports/vr_nope",
        "/v1/webhook_endpoints/we_nope",
        "/v1/events/evt_nope",
    ] {
        let r = emu.get(path, &[]).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.body["error"]["code"], "resource_missing");
    }
    let r = emu
        .post("/v1/webhook_endpoints", &[("url", "https://example.com/h")])
        .await;
    assert_eq!(
        (r.status, r.body["error"]["param"].as_str()),
        (400, Some("enabled_events"))
    );
    let r = emu
        .post(
            "/v1/webhook_endpoints",
            &[("url", "not a url"), ("enabled_events[]", "*")],
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["param"].as_str()),
        (400, Some("url"))
    );
    emu.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn update_cancel_and_state_errors() {
    let emu = start().await;
    let s = emu
        .ok_post(
            "/v1/identity/verification_sessions",
            &[
                ("type", "document"),
                ("metadata[a]", "1"),
                ("metadata[b]", "2"),
            ],
        )
        .await;
    let id = s["id"].as_str().unwrap();
    let path = format!("/v1/identity/verification_sessions/{id}");
    let u = emu
        .ok_post(
            &path,
            &[
                ("metadata[a]", ""),
                ("metadata[c]", "3"),
                ("type", "id_number"),
            ],
        )
        .await;
    assert_eq!(u["metadata"], serde_json::json!({"b": "2", "c": "3"}));
    assert_eq!(u["type"], "id_number");
    let u = emu.ok_post(&path, &[("metadata", "")]).await;
    assert_eq!(u["metadata"], serde_json::json!({}));
    let c = emu.ok_post(&format!("{path}/cancel"), &[]).await;
    assert_eq!(c["status"], "canceled");
    assert!(c["url"].is_null() && c["client_secret"].is_null());
    for (p, form) in [
        (path.clone(), vec![("metadata[x]", "1")]),
        (format!("{path}/cancel"), vec![]),
        (format!("{path}/redact"), vec![]),
    ] {
        let r = emu.post(&p, &form).await;
        assert_eq!(r.status, 400, "{p}: {}", r.body);
        assert_eq!(r.body["error"]["type"], "invalid_request_error");
    }
    // A processing session can be neither canceled nor redacted.
    let s = emu.session().await;
    let id = s["id"].as_str().unwrap();
    let p = emu
        .ok_post(
            &format!("/v1/test_helpers/identity/verification_sessions/{id}/process"),
            &[],
        )
        .await;
    assert_eq!(p["status"], "processing");
    for action in ["cancel", "redact"] {
        let r = emu
            .post(
                &format!("/v1/identity/verification_sessions/{id}/{action}"),
                &[],
            )
            .await;
        assert_eq!(r.status, 400, "{action}");
    }
    emu.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn outcomes_reports_and_expand() {
    let emu = start().await;
    let s = emu
        .ok_post(
            "/v1/identity/verification_sessions",
            &[
                ("type", "document"),
                ("options[document][require_matching_selfie]", "true"),
                ("client_reference_id", "u1"),
            ],
        )
        .await;
    let id = s["id"].as_str().unwrap();
    let helpers = format!("/v1/test_helpers/identity/verification_sessions/{id}");
    let failed = emu
        .ok_post(
            &format!("{helpers}/require_input"),
            &[("last_error[code]", "selfie_face_mismatch")],
        )
        .await;
    assert_eq!(failed["status"], "requires_input");
    assert_eq!(failed["last_error"]["code"], "selfie_face_mismatch");
    assert!(failed["last_error"]["reason"].as_str().unwrap().len() > 5);
    assert_ne!(failed["url"], s["url"], "a submission spends the link");
    let first_report = failed["last_verification_report"]
        .as_str()
        .unwrap()
        .to_string();
    let report = emu
        .ok_get(
            &format!("/v1/identity/verification_reports/{first_report}"),
            &[],
        )
        .await;
    assert_eq!(report["object"], "identity.verification_report");
    assert_eq!(report["verification_session"], id);
    assert_eq!(report["selfie"]["status"], "unverified");
    assert_eq!(report["selfie"]["error"]["code"], "selfie_face_mismatch");
    assert_eq!(report["document"]["status"], "verified");

    let bad = emu
        .post(
            &format!("{helpers}/require_input"),
            &[("last_error[code]", "not_a_code")],
        )
        .await;
    assert_eq!(
        (bad.status, bad.body["error"]["param"].as_str()),
        (400, Some("last_error[code]"))
    );

    let ok = emu
        .ok_post(
            &format!("{helpers}/verify"),
            &[("expand[]", "last_verification_report")],
        )
        .await;
    assert_eq!(ok["status"], "verified");
    assert!(ok["last_error"].is_null());
    assert!(ok["url"].is_null() && ok["client_secret"].is_null());
    assert_eq!(
        ok["last_verification_report"]["object"],
        "identity.verification_report"
    );
    assert_eq!(
        ok["last_verification_report"]["document"]["status"],
        "verified"
    );
    let r = emu.post(&format!("{helpers}/verify"), &[]).await;
    assert_eq!(r.status, 400, "verified is final");

    // The date of birth is a sensitive result: a restricted key, named on its own.
    let vo = emu
        .get_as(
            RK,
            &format!("/v1/identity/verification_sessions/{id}"),
            &[
                ("expand[0]", "verified_outputs"),
                ("expand[1]", "verified_outputs.dob"),
            ],
        )
        .await;
    assert_eq!(vo.status, 200, "{}", vo.body);
    let vo = vo.body;
    assert_eq!(vo["verified_outputs"]["first_name"], "Jenny");
    assert_eq!(vo["verified_outputs"]["dob"]["year"], 1990);
    let plain = emu
        .ok_get(
            &format!("/v1/identity/verification_sessions/{id}"),
            &[("expand[]", "verified_outputs")],
        )
        .await;
    assert!(
        plain["verified_outputs"].get("dob").is_none(),
        "dob needs its own expand"
    );
    let r = emu
        .get(
            &format!("/v1/identity/verification_sessions/{id}"),
            &[("expand[]", "nope")],
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["param"].as_str()),
        (400, Some("expand"))
    );

    // Reports list, filters.
    let reports = emu
        .ok_get(
            "/v1/identity/verification_reports",
            &[("verification_session", id)],
        )
        .await;
    assert_eq!(reports["url"], "/v1/identity/verification_reports");
    assert_eq!(reports["data"].as_array().unwrap().len(), 2);
    assert_eq!(
        reports["data"][1]["id"],
        first_report.as_str(),
        "newest first"
    );
    let none = emu
        .ok_get(
            "/v1/identity/verification_reports",
            &[("client_reference_id", "other")],
        )
        .await;
    assert_eq!(none["data"].as_array().unwrap().len(), 0);
    // Lists expand with data.
    let l = emu
        .ok_get(
            "/v1/identity/verification_sessions",
            &[("expand[]", "data.last_verification_report")],
        )
        .await;
    assert_eq!(
        l["data"][0]["last_verification_report"]["object"],
        "identity.verification_report"
    );
    emu.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_error_code_can_be_forced() {
    let emu = start().await;
    for code in stripe_webhook::ErrorCode::ALL {
        let s = emu.session().await;
        let id = s["id"].as_str().unwrap();
        let r = emu
            .ok_post(
                &format!("/v1/test_helpers/identity/verification_sessions/{id}/require_input"),
                &[("last_error[code]", code.as_str())],
            )
            .await;
        assert_eq!(r["last_error"]["code"], code.as_str());
    }
    emu.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn redaction() {
    let emu = start().await;
    // requires_input: canceled first, then redacted.
    let s = emu
        .ok_post(
            "/v1/identity/verification_sessions",
            &[
                ("type", "document"),
                ("metadata[email]", "x@y.z"),
                ("provided_details[email]", "x@y.z"),
            ],
        )
        .await;
    let id = s["id"].as_str().unwrap();
    let r = emu
        .ok_post(
            &format!("/v1/identity/verification_sessions/{id}/redact"),
            &[],
        )
        .await;
    assert_eq!(r["status"], "canceled");
    assert_eq!(r["redaction"]["status"], "processing");
    assert_eq!(r["metadata"], serde_json::json!({}));
    let done = eventually(5, || async {
        let v = emu
            .ok_get(
                &format!("/v1/identity/verification_sessions/{id}"),
                &[("expand[]", "provided_details")],
            )
            .await;
        (v["redaction"]["status"] == "redacted").then_some(v)
    })
    .await;
    assert_eq!(done["provided_details"]["email"], "[redacted]");
    // The session shows `redacted` a moment before the `redacted` event is recorded: wait for
    // the event too.
    let types: Vec<String> = eventually(5, || async {
        let types: Vec<String> = emu.ok_get("/v1/events", &[]).await["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect();
        (types.len() >= 3).then_some(types)
    })
    .await;
    assert_eq!(
        types,
        [
            "identity.verification_session.redacted",
            "identity.verification_session.canceled",
            "identity.verification_session.created"
        ]
    );
    let r = emu
        .post(
            &format!("/v1/identity/verification_sessions/{id}"),
            &[("metadata[a]", "b")],
        )
        .await;
    assert_eq!(r.status, 400, "a redacted session cannot be updated");

    // verified: status kept, outputs redacted.
    let s = emu.session().await;
    let id = s["id"].as_str().unwrap();
    emu.ok_post(
        &format!("/v1/test_helpers/identity/verification_sessions/{id}/verify"),
        &[],
    )
    .await;
    let r = emu
        .ok_post(
            &format!("/v1/identity/verification_sessions/{id}/redact"),
            &[("expand[]", "verified_outputs")],
        )
        .await;
    assert_eq!(r["status"], "verified");
    assert_eq!(r["verified_outputs"]["first_name"], "[redacted]");
    assert_eq!(r["verified_outputs"]["address"]["country"], "US");
    let report_id = r["last_verification_report"].as_str().unwrap().to_string();
    eventually(5, || async {
        let rep = emu
            .ok_get(
                &format!("/v1/identity/verification_reports/{report_id}"),
                &[],
            )
            .await;
        (rep["document"]["first_name"] == "[redacted]").then_some(())
    })
    .await;
    emu.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn lists_paginate_newest_first_and_filter() {
    let emu = start().await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let crid = if i % 2 == 0 { "even" } else { "odd" };
        let s = emu
            .ok_post(
                "/v1/identity/verification_sessions",
                &[("type", "document"), ("client_reference_id", crid)],
            )
            .await;
        ids.push(s["id"].as_str().unwrap().to_string());
    }
    ids.reverse(); // newest first
    let page = |v: &Value| {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let l = emu.ok_get("/v1/identity/verification_sessions", &[]).await;
    assert_eq!(l["object"], "list");
    assert_eq!(l["url"], "/v1/identity/verification_sessions");
    assert_eq!(page(&l), ids);
    assert_eq!(l["has_more"], false);
    let l = emu
        .ok_get("/v1/identity/verification_sessions", &[("limit", "3")])
        .await;
    assert_eq!(page(&l), ids[..3]);
    assert_eq!(l["has_more"], true);
    let l = emu
        .ok_get(
            "/v1/identity/verification_sessions",
            &[("limit", "3"), ("starting_after", &ids[2])],
        )
        .await;
    assert_eq!(page(&l), ids[3..6]);
    assert_eq!(l["has_more"], true);
    let l = emu
        .ok_get(
            "/v1/identity/verification_sessions",
            &[("limit", "3"), ("starting_after", &ids[5])],
        )
        .await;
    assert_eq!(page(&l), ids[6..]);
    assert_eq!(l["has_more"], false);
    let l = emu
        .ok_get(
            "/v1/identity/verification_sessions",
            &[("limit", "2"), ("ending_before", &ids[4])],
        )
        .await;
    assert_eq!(page(&l), ids[2..4]);
    assert_eq!(l["has_more"], true);
    for (k, v) in [
        ("limit", "0"),
        ("limit", "101"),
        ("limit", "x"),
        ("starting_after", "vs_unknown"),
        ("status", "done"),
        ("created[between]", "1"),
    ] {
        let r = emu
            .get("/v1/identity/verification_sessions", &[(k, v)])
            .await;
        assert_eq!(
            r.status,
            if k == "starting_after" { 404 } else { 400 },
            "{k}={v}: {}",
            r.body
        );
    }
    let r = emu
        .get(
            "/v1/identity/verification_sessions",
            &[("starting_after", &ids[0]), ("ending_before", &ids[1])],
        )
        .await;
    assert_eq!(r.status, 400);
    let even = emu
        .ok_get(
            "/v1/identity/verification_sessions",
            &[("client_reference_id", "even")],
        )
        .await;
    assert_eq!(even["data"].as_array().unwrap().len(), 4);
    emu.ok_post(
        &format!("/v1/identity/verification_sessions/{}/cancel", ids[0]),
        &[],
    )
    .await;
    let canceled = emu
        .ok_get(
            "/v1/identity/verification_sessions",
            &[("status", "canceled")],
        )
        .await;
    assert_eq!(page(&canceled), [ids[0].clone()]);
    let now = now().to_string();
    let future = (now.parse::<i64>().unwrap() + 100).to_string();
    let all = emu
        .ok_get(
            "/v1/identity/verification_sessions",
            &[("created[lte]", &now), ("limit", "100")],
        )
        .await;
    assert_eq!(all["data"].as_array().unwrap().len(), 7);
    let none = emu
        .ok_get(
            "/v1/identity/verification_sessions",
            &[("created[gt]", &future)],
        )
        .await;
    assert_eq!(none["data"].as_array().unwrap().len(), 0);
    emu.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn idempotency_replays_and_rejects_mismatch() {
    let emu = start().await;
    let h = [("Idempotency-Key", "key-1")];
    let a = emu
        .send(
            Method::POST,
            "/v1/identity/verification_sessions",
            &[("type", "document")],
            &h,
        )
        .await;
    assert_eq!(a.status, 200);
    assert!(a.headers.get("idempotent-replayed").is_none());
    let b = emu
        .send(
            Method::POST,
            "/v1/identity/verification_sessions",
            &[("type", "document")],
            &h,
        )
        .await;
    assert_eq!(b.status, 200);
    assert_eq!(b.headers.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(a.body, b.body);
    assert_ne!(a.headers.get("request-id"), b.headers.get("request-id"));
    let list = emu.ok_get("/v1/identity/verification_sessions", &[]).await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "the replay created nothing"
    );
    let c = emu
        .send(
            Method::POST,
            "/v1/identity/verification_sessions",
            &[("type", "id_number")],
            &h,
        )
        .await;
    assert_eq!(c.status, 400);
    assert_eq!(c.body["error"]["type"], "idempotency_error");
    // Failed validation is not stored: the same key can be used once fixed.
    let k2 = [("Idempotency-Key", "key-2")];
    let d = emu
        .send(Method::POST, "/v1/identity/verification_sessions", &[], &k2)
        .await;
    assert_eq!(d.status, 400);
    let e = emu
        .send(
            Method::POST,
            "/v1/identity/verification_sessions",
            &[("type", "document")],
            &k2,
        )
        .await;
    assert_eq!(e.status, 200);
    assert!(e.headers.get("idempotent-replayed").is_none());
    // The created event names the request and key.
    let ev = emu.ok_get("/v1/events", &[("limit", "1")]).await;
    assert_eq!(ev["data"][0]["request"]["idempotency_key"], "key-2");
    assert_eq!(
        ev["data"][0]["request"]["id"].as_str().unwrap(),
        e.headers.get("request-id").unwrap().to_str().unwrap()
    );
    emu.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn webhook_endpoint_crud() {
    let emu = start().await;
    let ep = emu
        .ok_post(
            "/v1/webhook_endpoints",
            &[
                ("url", "https://example.com/hook"),
                ("enabled_events[0]", "*"),
                (
                    "enabled_events[1]",
                    "identity.verification_session.redacted",
                ),
                ("description", "d"),
                ("metadata[k]", "v"),
                ("api_version", "2026-07-29.dahlia"),
            ],
        )
        .await;
    let id = ep["id"].as_str().unwrap();
    assert!(id.starts_with("we_"));
    assert!(ep["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(ep["status"], "enabled");
    assert_eq!(ep["object"], "webhook_endpoint");
    assert_eq!(ep["api_version"], "2026-07-29.dahlia");
    let got = emu
        .ok_get(&format!("/v1/webhook_endpoints/{id}"), &[])
        .await;
    assert!(got.get("secret").is_none(), "secret only on create");
    assert_eq!(
        got["enabled_events"],
        serde_json::json!(["*", "identity.verification_session.redacted"])
    );
    let upd = emu
        .ok_post(
            &format!("/v1/webhook_endpoints/{id}"),
            &[
                ("disabled", "true"),
                ("url", "https://example.com/other"),
                ("enabled_events[]", "identity.verification_session.verified"),
            ],
        )
        .await;
    assert_eq!(upd["status"], "disabled");
    assert_eq!(upd["url"], "https://example.com/other");
    assert!(upd.get("secret").is_none());
    let upd = emu
        .ok_post(
            &format!("/v1/webhook_endpoints/{id}"),
            &[("disabled", "false")],
        )
        .await;
    assert_eq!(upd["status"], "enabled");
    let r = emu
        .post(
            &format!("/v1/webhook_endpoints/{id}"),
            &[("status", "disabled")],
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["param"].as_str()),
        (400, Some("status"))
    );
    emu.endpoint("https://example.com/2", &["*"]).await;
    let l = emu.ok_get("/v1/webhook_endpoints", &[]).await;
    assert_eq!(l["url"], "/v1/webhook_endpoints");
    assert_eq!(l["data"].as_array().unwrap().len(), 2);
    assert_eq!(l["data"][1]["id"], id);
    let d = emu
        .send(
            Method::DELETE,
            &format!("/v1/webhook_endpoints/{id}"),
            &[],
            &[],
        )
        .await;
    assert_eq!(d.status, 200);
    assert_eq!(
        d.body,
        serde_json::json!({"id": id, "object": "webhook_endpoint", "deleted": true})
    );
    let r = emu.get(&format!("/v1/webhook_endpoints/{id}"), &[]).await;
    assert_eq!(r.status, 404);
    emu.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn events_list_and_filters() {
    let emu = start().await;
    let s = emu.session().await;
    let id = s["id"].as_str().unwrap();
    emu.ok_post(
        &format!("/v1/test_helpers/identity/verification_sessions/{id}/verify"),
        &[],
    )
    .await;
    let s2 = emu.session().await;
    emu.ok_post(
        &format!(
            "/v1/identity/verification_sessions/{}/cancel",
            s2["id"].as_str().unwrap()
        ),
        &[],
    )
    .await;
    let all = emu.ok_get("/v1/events", &[]).await;
    let types: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "identity.verification_session.canceled",
            "identity.verification_session.created",
            "identity.verification_session.verified",
            "identity.verification_session.processing",
            "identity.verification_session.created"
        ]
    );
    let ev = &all["data"][2];
    assert!(ev["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(ev["object"], "event");
    assert_eq!(ev["livemode"], false);
    assert_eq!(ev["api_version"], stripe_emulator::API_VERSION);
    assert_eq!(ev["pending_webhooks"], 0);
    assert_eq!(ev["data"]["object"]["id"], id);
    assert_eq!(ev["data"]["object"]["status"], "verified");
    assert!(ev["data"]["object"].get("verified_outputs").is_none());
    let one = emu
        .ok_get(&format!("/v1/events/{}", ev["id"].as_str().unwrap()), &[])
        .await;
    assert_eq!(&one, ev);
    let count = |v: &Value| v["data"].as_array().unwrap().len();
    assert_eq!(
        count(
            &emu.ok_get(
                "/v1/events",
                &[("type", "identity.verification_session.created")]
            )
            .await
        ),
        2
    );
    assert_eq!(
        count(
            &emu.ok_get("/v1/events", &[("type", "identity.verification_session.*")])
                .await
        ),
        5
    );
    assert_eq!(
        count(&emu.ok_get("/v1/events", &[("type", "charge.*")]).await),
        0
    );
    assert_eq!(
        count(
            &emu.ok_get(
                "/v1/events",
                &[
                    ("types[0]", "identity.verification_session.verified"),
                    ("types[1]", "identity.verification_session.canceled")
                ]
            )
            .await
        ),
        2
    );
    let r = emu
        .get("/v1/events", &[("type", "a"), ("types[]", "b")])
        .await;
    assert_eq!(r.status, 400);
    let now = now();
    assert_eq!(
        count(
            &emu.ok_get("/v1/events", &[("created[gte]", &(now - 60).to_string())])
                .await
        ),
        5
    );
    assert_eq!(
        count(
            &emu.ok_get("/v1/events", &[("created[lt]", &(now - 60).to_string())])
                .await
        ),
        0
    );
    assert_eq!(
        count(
            &emu.ok_get("/v1/events", &[("delivery_success", "true")])
                .await
        ),
        5
    );
    assert_eq!(
        count(
            &emu.ok_get("/v1/events", &[("delivery_success", "false")])
                .await
        ),
        0
    );
    let p = emu
        .ok_get(
            "/v1/events",
            &[
                ("limit", "2"),
                ("starting_after", all["data"][1]["id"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(p["data"][0]["id"], all["data"][2]["id"]);
    assert_eq!(p["has_more"], true);
    emu.handle.shutdown().await.unwrap();
}
