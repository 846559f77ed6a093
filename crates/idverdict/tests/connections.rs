//! Connections that never finish a request are closed, and a flood of them cannot keep a
//! real request out: the header-read timeout (slowloris, silent connections), the idle
//! keep-alive timeout, the connection cap (the connection waiting longest makes room, one
//! mid-request never does), and `Expect: 100-continue` with an oversized body answered 413
//! at once. The same under a real descriptor limit is in the CLI's `connection_limits` test.
//!
//! Waits are bounded, never timing assertions: a bound only keeps a broken build from hanging.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for a connection to be closed before calling it a failure.
const PATIENCE: Duration = Duration::from_secs(60);

async fn start(vars: &[(&str, &str)]) -> (TestDb, TestApp) {
    let db = TestDb::new(Backend::Sqlite).await;
    let app = TestApp::start(&config_with(&db, &[SECRET], vars)).await;
    (db, app)
}

/// Read until the server closes the connection (end of stream or reset); everything read.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(PATIENCE, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the server kept the connection open (read so far: {:?})",
        String::from_utf8_lossy(&seen)
    );
    seen
}

/// One complete response (head and a `Content-Length` body) from a keep-alive connection.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let complete = tokio::time::timeout(PATIENCE, async {
        loop {
            let n = stream.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed before a response");
            seen.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&seen).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if seen.len() >= end + 4 + length {
                    return text;
                }
            }
        }
    })
    .await;
    complete.expect("no complete response")
}

#[tokio::test]
async fn a_slowloris_request_head_is_cut_off() {
    let (_db, app) = start(&[("IDVERDICT_HEADER_READ_TIMEOUT_SECS", "1")]).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHo")
        .await
        .unwrap();
    // Keep trickling header bytes, as a slowloris client does, until the server hangs up.
    let trickle = async {
        for byte in b"st: x\r\nX-Slow: ".iter().cycle() {
            if stream.write_all(&[*byte]).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    let cut = tokio::time::timeout(PATIENCE, trickle).await;
    assert_eq!(
        cut,
        Ok(true),
        "the server kept reading a head that never ended"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_silent_connection_is_closed() {
    let (_db, app) = start(&[("IDVERDICT_HEADER_READ_TIMEOUT_SECS", "1")]).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let seen = until_closed(&mut stream).await;
    assert!(seen.is_empty(), "{:?}", String::from_utf8_lossy(&seen));
    app.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    // A long header-read timeout: only the idle timeout can close this one.
    let (_db, app) = start(&[
        ("IDVERDICT_HEADER_READ_TIMEOUT_SECS", "600"),
        ("IDVERDICT_KEEPALIVE_TIMEOUT_SECS", "1"),
    ])
    .await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    for _ in 0..2 {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let response = read_response(&mut stream).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
    let seen = until_closed(&mut stream).await;
    assert!(seen.is_empty(), "{:?}", String::from_utf8_lossy(&seen));
    app.stop().await;
}

#[tokio::test]
async fn an_oversized_expect_continue_body_gets_413_before_it_is_sent() {
    let (_db, app) = start(&[]).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(
            b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 1000000000\r\nExpect: 100-continue\r\n\r\n",
        )
        .await
        .unwrap();
    // Without sending a byte of the body: the answer is the refusal, not "100 Continue".
    let response = read_response(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    let body = &response[response.find("\r\n\r\n").unwrap() + 4..];
    let json: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
    assert_eq!(json["error"]["code"], "payload_too_large", "{json}");
    app.stop().await;
}

#[tokio::test]
async fn at_the_cap_idle_connections_make_room_and_a_request_in_progress_is_kept() {
    // Timeouts far away: only the cap can free a slot here.
    let (_db, app) = start(&[
        ("IDVERDICT_HEADER_READ_TIMEOUT_SECS", "600"),
        ("IDVERDICT_KEEPALIVE_TIMEOUT_SECS", "600"),
        ("IDVERDICT_REQUEST_TIMEOUT_SECS", "600"),
        ("IDVERDICT_MAX_CONNECTIONS", "4"),
    ])
    .await;
    // A delivery whose body is still on its way: its request is being handled.
    let body = br#"{"id":"evt_1","object":"event"}"#;
    let mut in_progress = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Stripe-Signature: t=1,v1=00\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    in_progress.write_all(head.as_bytes()).await.unwrap();
    in_progress.write_all(&body[..5]).await.unwrap();
    // Let the server parse that head before the flood arrives (a healthz on another
    // connection answered means the accept loop has got past it).
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, 200);

    // Twenty connections that never send anything; each reports when the server closes it.
    let closed = Arc::new(AtomicUsize::new(0));
    let mut idle = Vec::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        let closed = closed.clone();
        idle.push(tokio::spawn(async move {
            let mut buf = [0u8; 64];
            if let Ok(0) | Err(_) = stream.read(&mut buf).await {
                closed.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    // A fresh client still gets through, again and again.
    for _ in 0..5 {
        let res = tokio::time::timeout(
            PATIENCE,
            reqwest::Client::new().get(app.url("/healthz")).send(),
        )
        .await
        .expect("healthz got no answer at the connection cap")
        .expect("healthz");
        assert_eq!(res.status(), 200);
    }
    // The delivery in progress was never closed to make room: it completes.
    in_progress.write_all(&body[5..]).await.unwrap();
    let response = read_response(&mut in_progress).await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    // At most four were open at any time: at least sixteen of the silent ones were closed.
    let mut waited = Duration::ZERO;
    while closed.load(Ordering::SeqCst) < 16 {
        assert!(
            waited < PATIENCE,
            "only {} idle connections were closed: the cap is not enforced",
            closed.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    for task in idle {
        task.abort();
    }
    app.stop().await;
}
