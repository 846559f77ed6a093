//! Every kind of refusal the HTTP server makes, through the real server: whatever refuses —
//! a handler, an extractor, the token check, the router, the time limit — the answer is JSON
//! of the documented shape `{"error": {"code", "message"}}` with the right status.

mod common;

use common::*;
use serde_json::Value;

/// The status, the error code, and that the body is the documented shape.
async fn refusal(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = res.text().await.expect("body");
    assert_eq!(content_type, "application/json", "{status}: {text}");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{status}: {text}");
    let code = body["error"]["code"].as_str().expect("a code").to_string();
    (status, code)
}

async fn every_refusal_is_json_of_one_shape(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&config(&db, &[SECRET])).await;
    let http = &app.http;
    let authed = |req: reqwest::RequestBuilder| req.bearer_auth(TOKEN);

    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        ("unknown path", http.get(app.url("/nope")), 404, "not_found"),
        (
            "unknown path under /v1",
            authed(http.get(app.url("/v1/nope"))),
            404,
            "not_found",
        ),
        (
            "wrong method on the webhook",
            http.get(app.url("/webhook")),
            405,
            "method_not_allowed",
        ),
        (
            "wrong method on an API route",
            authed(http.delete(app.url("/v1/reviews"))),
            405,
            "method_not_allowed",
        ),
        (
            "no token",
            http.get(app.url("/v1/reviews")),
            401,
            "missing_token",
        ),
        (
            "a query that does not parse",
            authed(http.get(app.url("/v1/reviews?limit=many"))),
            400,
            "invalid_query",
        ),
        (
            "a path segment that is not UTF-8",
            authed(http.get(app.url("/v1/users/%FF%FE"))),
            400,
            "invalid_path",
        ),
        (
            "a review body that is not JSON",
            authed(
                http.post(app.url("/v1/reviews/someone"))
                    .header("content-type", "application/json")
                    .body("{"),
            ),
            400,
            "invalid_body",
        ),
        (
            "a review body without a JSON content type",
            authed(
                http.post(app.url("/v1/reviews/someone"))
                    .body(r#"{"action":"approve","reviewer":"a"}"#),
            ),
            400,
            "invalid_body",
        ),
        (
            "a review body with an unknown field",
            authed(
                http.post(app.url("/v1/reviews/someone"))
                    .json(&serde_json::json!({"action": "approve", "reviewer": "a", "extra": 1})),
            ),
            400,
            "invalid_body",
        ),
        (
            "a review of an unknown user",
            authed(
                http.post(app.url("/v1/reviews/someone"))
                    .json(&serde_json::json!({"action": "approve", "reviewer": "a"})),
            ),
            404,
            "user_not_found",
        ),
        (
            "a creation body that is not JSON",
            authed(
                http.post(app.url("/v1/users/u/verification_sessions"))
                    .body("nope"),
            ),
            400,
            "invalid_body",
        ),
    ];
    for (what, req, status, code) in cases {
        let res = req.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
        if status == 405 {
            assert!(res.headers().contains_key("allow"), "{what}: Allow header");
        }
        assert_eq!(refusal(res).await, (status, code.to_string()), "{what}");
    }

    // A body over the limit, announced by its Content-Length and never sent: the server must
    // refuse it from the header alone. Sent by hand, because a client still writing megabytes
    // when the server answers and closes can lose that answer to a connection reset.
    let (head, body) = app.raw_exchange(
        &format!(
            "POST /v1/reviews/someone HTTP/1.1\r\nHost: idverdict\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            3 * 1024 * 1024
        ),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let body: Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    app.stop().await;
}
both_backends!(every_refusal_is_json_of_one_shape);

/// A request still unfinished when the time limit runs out is abandoned with a 408 of the
/// same shape (here: a body that never arrives, sent by hand over TCP).
#[tokio::test]
async fn a_request_over_the_time_limit_gets_a_json_408() {
    let db = TestDb::new(Backend::Sqlite).await;
    let app = TestApp::start(&config_with(
        &db,
        &[SECRET],
        &[("IDVERDICT_REQUEST_TIMEOUT_SECS", "1")],
    ))
    .await;
    let (head, body) = app
        .raw_exchange(
            "POST /webhook HTTP/1.1\r\nHost: idverdict\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{",
        )
        .await;
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let body: Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(body["error"]["code"], "request_timeout", "{body}");
    assert!(body["error"]["message"].is_string());
    app.stop().await;
}
