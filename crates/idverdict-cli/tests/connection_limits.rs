//! Under a low open-file limit (`prlimit --nofile=128:128`, so start-up cannot raise it),
//! 150 connections that never send a request do not stop `/healthz`, `/readyz` or a correctly
//! signed webhook: the connection cap stays below the limit and the connection waiting longest
//! makes room. The timeouts are set far away so that only the cap can help.

mod common;

use std::time::Duration;

use common::{now, ServeProcess};
use idverdict::synth::{self, Kind, Spec};
use test_support::{both_backends, Backend, TestDb};

const SECRET: &str = "whsec_fd_limit_test_secret";
const TOKEN: &str = "fd-limit-test-token-0123456789";
/// A hang guard for each request, not a timing assertion.
const PATIENCE: Duration = Duration::from_secs(60);

async fn idle_connections_do_not_exhaust_descriptors(backend: Backend) {
    let db = TestDb::named(backend, "idv_fdlimit").await;
    let data_dir = db.dir.path().join("data");
    let data_dir = data_dir.to_str().unwrap();
    let server = ServeProcess::start(
        &["prlimit", "--nofile=128:128", "--"],
        &[
            ("IDVERDICT_LISTEN", "127.0.0.1:0"),
            ("IDVERDICT_DATA_DIR", data_dir),
            ("DATABASE_URL", &db.url),
            ("STRIPE_WEBHOOK_SECRET", SECRET),
            ("IDVERDICT_API_TOKEN", TOKEN),
            ("IDVERDICT_HEADER_READ_TIMEOUT_SECS", "600"),
            ("IDVERDICT_KEEPALIVE_TIMEOUT_SECS", "600"),
            ("IDVERDICT_REQUEST_TIMEOUT_SECS", "120"),
        ],
    );
    let addr = server.base.trim_start_matches("http://").to_string();

    let mut idle = Vec::new();
    for _ in 0..150 {
        idle.push(
            tokio::net::TcpStream::connect(&addr)
                .await
                .expect("connect"),
        );
    }

    // A fresh client per request: each needs a connection of its own past the idle ones.
    let fresh = || reqwest::Client::builder().no_proxy().build().unwrap();
    for path in ["/healthz", "/readyz"] {
        let res = tokio::time::timeout(PATIENCE, fresh().get(server.url(path)).send())
            .await
            .unwrap_or_else(|_| panic!("{path} got no answer behind 150 idle connections"))
            .expect(path);
        assert_eq!(res.status(), 200, "{path}");
    }
    let mut spec = Spec::new(Kind::Verified, "vs_fdlimit", now());
    spec.user_ref = Some("user_fdlimit".into());
    let body = synth::event_bytes(&spec);
    let res = tokio::time::timeout(
        PATIENCE,
        fresh()
            .post(server.url("/webhook"))
            .header("content-type", "application/json")
            .header(
                "Stripe-Signature",
                stripe_webhook::sign(&body, SECRET, now()),
            )
            .body(body)
            .send(),
    )
    .await
    .expect("the webhook got no answer behind 150 idle connections")
    .expect("webhook");
    assert_eq!(
        res.status(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );

    drop(idle);
    let status = server.stop();
    assert!(status.success(), "{status:?}");
}
both_backends!(idle_connections_do_not_exhaust_descriptors);
