//! The images of a verification against a real emulator: File objects, their contents,
//! FileLinks with Stripe's rules for identity images (restricted key, expiry within 30 s),
//! expiry, and redaction deleting the contents.

mod common;

use common::*;
use serde_json::Value;

const SESSIONS: &str = "/v1/identity/verification_sessions";

/// A verified session with a selfie check; returns (session id, front, back, selfie file ids).
async fn verified_with_images(emu: &Emu) -> (String, String, String, String) {
    let s = emu
        .ok_post(
            SESSIONS,
            &[
                ("type", "document"),
                ("options[document][require_matching_selfie]", "true"),
            ],
        )
        .await;
    let id = s["id"].as_str().unwrap().to_string();
    emu.ok_post(
        &format!("/v1/test_helpers/identity/verification_sessions/{id}/verify"),
        &[
            ("verified_outputs[first_name]", "Ada"),
            ("document[number]", "P7654321"),
        ],
    )
    .await;
    let r = emu
        .ok_get(
            &format!("{SESSIONS}/{id}"),
            &[("expand[]", "last_verification_report")],
        )
        .await["last_verification_report"]
        .clone();
    let files: Vec<String> = r["document"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    let selfie = r["selfie"]["selfie"].as_str().unwrap().to_string();
    (id, files[0].clone(), files[1].clone(), selfie)
}

async fn create_link(emu: &Emu, key: &str, file: &str, expires_at: Option<i64>) -> Resp {
    let exp = expires_at.map(|t| t.to_string());
    let mut form = vec![("file", file)];
    if let Some(e) = &exp {
        form.push(("expires_at", e.as_str()));
    }
    emu.post_as(key, "/v1/file_links", &form).await
}

async fn fetch(
    emu: &Emu,
    url: &str,
    key: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut req = emu.http.get(url);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap())
}

#[tokio::test]
async fn files_are_stripe_file_objects_with_marked_test_images() {
    let emu = start().await;
    let (id, front, back, selfie) = verified_with_images(&emu).await;
    assert!(front.starts_with("file_") && back.starts_with("file_") && front != back);
    let f = emu.ok_get(&format!("/v1/files/{front}"), &[]).await;
    assert_eq!(f["object"], "file");
    assert_eq!(f["id"], front.as_str());
    assert_eq!(f["purpose"], "identity_document_downloadable");
    assert_eq!(f["type"], "svg");
    assert_eq!(f["filename"], "document_front.svg");
    assert!(f["size"].as_i64().unwrap() > 100);
    assert!(f["created"].is_i64() && f["expires_at"].is_null());
    let contents_url = format!("{}/v1/files/{front}/contents", emu.handle.base_url());
    assert_eq!(f["url"], contents_url.as_str());
    assert_eq!(
        emu.ok_get(&format!("/v1/files/{selfie}"), &[]).await["purpose"],
        "selfie"
    );
    let r = emu.get("/v1/files/file_nope", &[]).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (404, Some("resource_missing"))
    );
    let listed = emu.ok_get("/v1/files", &[("purpose", "selfie")]).await;
    assert_eq!(listed["url"], "/v1/files");
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [selfie.as_str()]);

    // Contents: a restricted key only, and clearly a test image of this session.
    let (status, _, body) = fetch(&emu, &contents_url, Some(KEY)).await;
    assert_eq!(status, 403, "{body}");
    let (status, _, _) = fetch(&emu, &contents_url, None).await;
    assert_eq!(status, 401);
    let (status, headers, svg) = fetch(&emu, &contents_url, Some(RK)).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "image/svg+xml");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(svg.starts_with("<svg") && svg.contains("TEST DOCUMENT — NOT REAL"));
    assert!(svg.contains(&id) && svg.contains("Ada") && svg.contains("P7654321"));
    assert_eq!(
        u64::try_from(f["size"].as_i64().unwrap()).unwrap(),
        svg.len() as u64
    );
    let (_, _, back_svg) = fetch(
        &emu,
        &format!("{}/v1/files/{back}/contents", emu.handle.base_url()),
        Some(RK),
    )
    .await;
    assert!(back_svg.contains("BACK") && !back_svg.contains("P7654321"));
    let (_, _, face) = fetch(
        &emu,
        &format!("{}/v1/files/{selfie}/contents", emu.handle.base_url()),
        Some(RK),
    )
    .await;
    assert!(face.contains("TEST SELFIE — NOT REAL"));
    emu.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn file_links_follow_stripes_rules_for_identity_images() {
    let emu = start().await;
    let (_, front, _, selfie) = verified_with_images(&emu).await;

    // A secret key may not link to identity images.
    let r = create_link(&emu, KEY, &front, Some(now() + 30)).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.body["error"]["type"], "invalid_request_error");
    // The link must expire, in the future, within 30 seconds.
    for exp in [None, Some(now() + 3600), Some(now() + 60), Some(now() - 1)] {
        let r = create_link(&emu, RK, &front, exp).await;
        assert_eq!(r.status, 400, "{exp:?}: {}", r.body);
        assert_eq!(r.body["error"]["param"], "expires_at");
    }
    let r = create_link(&emu, RK, "file_nope", Some(now() + 30)).await;
    assert_eq!(
        (r.status, r.body["error"]["param"].as_str()),
        (404, Some("file"))
    );
    let r = emu.post_as(RK, "/v1/file_links", &[]).await;
    assert_eq!(
        (r.status, r.body["error"]["param"].as_str()),
        (400, Some("file"))
    );

    let expires = now() + 30;
    let r = emu
        .post_as(
            RK,
            "/v1/file_links",
            &[
                ("file", front.as_str()),
                ("expires_at", &expires.to_string()),
                ("metadata[purpose]", "review"),
                ("expand[]", "file"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let link = r.body;
    assert!(link["id"].as_str().unwrap().starts_with("link_"));
    assert_eq!(link["object"], "file_link");
    assert_eq!(link["expired"], false);
    assert_eq!(link["expires_at"], expires);
    assert_eq!(link["livemode"], false);
    assert_eq!(link["metadata"]["purpose"], "review");
    assert_eq!(link["file"]["id"], front.as_str(), "expanded");
    let url = link["url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&format!("{}/files/links/", emu.handle.base_url())));

    // The URL serves the image to anyone, without a key, while the link lives.
    let (status, headers, svg) = fetch(&emu, &url, None).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "image/svg+xml");
    assert!(svg.contains("TEST DOCUMENT — NOT REAL"));
    let (status, _, _) = fetch(&emu, &format!("{url}x"), None).await;
    assert_eq!(status, 404, "a wrong token is no link");

    let lid = link["id"].as_str().unwrap();
    let got = emu.ok_get(&format!("/v1/file_links/{lid}"), &[]).await;
    assert_eq!(
        (got["file"].as_str(), got["url"].as_str()),
        (Some(front.as_str()), Some(url.as_str()))
    );
    let listed = emu
        .ok_get("/v1/file_links", &[("file", front.as_str())])
        .await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        emu.ok_get("/v1/file_links", &[("file", selfie.as_str())])
            .await["data"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // Extending an identity image's link past 30 seconds, or removing its expiry, is refused.
    for exp in [(now() + 600).to_string(), String::new()] {
        let r = emu
            .post_as(
                RK,
                &format!("/v1/file_links/{lid}"),
                &[("expires_at", exp.as_str())],
            )
            .await;
        assert_eq!(
            (r.status, r.body["error"]["param"].as_str()),
            (400, Some("expires_at")),
            "{exp}"
        );
    }
    // Ending it now: the object says so and the URL answers 410.
    let ended = emu
        .post_as(
            RK,
            &format!("/v1/file_links/{lid}"),
            &[("expires_at", "now")],
        )
        .await;
    assert_eq!(ended.status, 200, "{}", ended.body);
    assert_eq!(ended.body["expired"], true);
    assert!(ended.body["url"].is_null());
    let (status, _, _) = fetch(&emu, &url, None).await;
    assert_eq!(status, 410);
    assert_eq!(
        emu.ok_get("/v1/file_links", &[("expired", "true")]).await["data"][0]["id"],
        lid
    );

    // A link also ends by itself when its time comes.
    let short = create_link(&emu, RK, &selfie, Some(now() + 1)).await;
    assert_eq!(short.status, 200, "{}", short.body);
    let short_url = short.body["url"].as_str().unwrap().to_string();
    eventually(10, || async {
        (fetch(&emu, &short_url, None).await.0 == 410).then_some(())
    })
    .await;
    let sid = short.body["id"].as_str().unwrap();
    assert_eq!(
        emu.ok_get(&format!("/v1/file_links/{sid}"), &[]).await["expired"],
        true
    );
    emu.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn redaction_deletes_the_image_contents() {
    let emu = start().await;
    let (id, front, _, _) = verified_with_images(&emu).await;
    let live = create_link(&emu, RK, &front, Some(now() + 30)).await.body;
    let url = live["url"].as_str().unwrap().to_string();
    assert_eq!(fetch(&emu, &url, None).await.0, 200);
    emu.ok_post(&format!("{SESSIONS}/{id}/redact"), &[]).await;
    eventually(10, || async {
        let v: Value = emu.ok_get(&format!("{SESSIONS}/{id}"), &[]).await;
        (v["redaction"]["status"] == "redacted").then_some(())
    })
    .await;
    let contents = format!("{}/v1/files/{front}/contents", emu.handle.base_url());
    let (status, _, body) = fetch(&emu, &contents, Some(RK)).await;
    assert_eq!(status, 410, "{body}");
    assert!(body.contains("redacted"));
    // A link made before the redaction shows nothing any more, and no new one can be made.
    assert_eq!(fetch(&emu, &url, None).await.0, 410);
    let r = create_link(&emu, RK, &front, Some(now() + 30)).await;
    assert_eq!(
        (r.status, r.body["error"]["param"].as_str()),
        (400, Some("file"))
    );
    // The File object itself stays, as the report still names it.
    assert_eq!(
        emu.ok_get(&format!("/v1/files/{front}"), &[]).await["id"],
        front.as_str()
    );
    emu.handle.shutdown().await.unwrap();
}
