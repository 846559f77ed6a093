//! Shared helpers: an emulator on 127.0.0.1:0 with a fresh data dir, a small
//! Stripe client, and a webhook receiver whose behaviour the test scripts.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use stripe_emulator::{EmulatorConfig, EmulatorHandle};

pub const KEY: &str = "sk_test_emulator";
/// A restricted key: the only kind that may read sensitive verification results.
pub const RK: &str = "rk_test_emulator";

pub struct Emu {
    pub handle: EmulatorHandle,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
}

pub fn fast_config(dir: &std::path::Path) -> EmulatorConfig {
    EmulatorConfig {
        data_dir: dir.to_path_buf(),
        time_scale: 0.001,
        processing_delay: Duration::from_millis(50),
        delivery_timeout: Duration::from_secs(5),
        ..EmulatorConfig::default()
    }
}

pub async fn start_with(dir: tempfile::TempDir, f: impl FnOnce(&mut EmulatorConfig)) -> Emu {
    let mut cfg = fast_config(dir.path());
    f(&mut cfg);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handle = stripe_emulator::spawn(listener, cfg).await.unwrap();
    Emu {
        handle,
        dir,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
    }
}

pub async fn start() -> Emu {
    start_with(tempfile::tempdir().unwrap(), |_| {}).await
}

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Emu {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.handle.base_url(), path)
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(&str, &str)],
        extra: &[(&str, &str)],
    ) -> Resp {
        self.send_as(KEY, method, path, form, extra).await
    }

    pub async fn send_as(
        &self,
        key: &str,
        method: reqwest::Method,
        path: &str,
        form: &[(&str, &str)],
        extra: &[(&str, &str)],
    ) -> Resp {
        let mut req = self
            .http
            .request(method.clone(), self.url(path))
            .bearer_auth(key);
        if method == reqwest::Method::POST {
            req = req.form(form);
        } else {
            req = req.query(form);
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Resp {
        self.send(reqwest::Method::POST, path, form, &[]).await
    }

    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> Resp {
        self.send(reqwest::Method::GET, path, query, &[]).await
    }

    pub async fn get_as(&self, key: &str, path: &str, query: &[(&str, &str)]) -> Resp {
        self.send_as(key, reqwest::Method::GET, path, query, &[])
            .await
    }

    pub async fn post_as(&self, key: &str, path: &str, form: &[(&str, &str)]) -> Resp {
        self.send_as(key, reqwest::Method::POST, path, form, &[])
            .await
    }

    pub async fn ok_post(&self, path: &str, form: &[(&str, &str)]) -> Value {
        let r = self.post(path, form).await;
        assert_eq!(r.status, 200, "POST {path}: {}", r.body);
        r.body
    }

    pub async fn ok_get(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let r = self.get(path, query).await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        r.body
    }

    pub async fn session(&self) -> Value {
        self.ok_post(
            "/v1/identity/verification_sessions",
            &[("type", "document")],
        )
        .await
    }

    pub async fn endpoint(&self, url: &str, events: &[&str]) -> Value {
        let mut form: Vec<(String, String)> = vec![("url".into(), url.into())];
        for (i, e) in events.iter().enumerate() {
            form.push((format!("enabled_events[{i}]"), e.to_string()));
        }
        let form: Vec<(&str, &str)> = form.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        self.ok_post("/v1/webhook_endpoints", &form).await
    }

    pub async fn delivery_log(&self) -> Value {
        self.http
            .get(self.url("/_emulator/deliveries"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// Polls `f` every 20 ms until it returns `Some`, for at most `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {secs}s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[derive(Debug, Clone)]
pub struct Received {
    pub signature: String,
    pub body: Vec<u8>,
    pub user_agent: String,
    pub content_type: String,
    pub status_sent: u16,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Clone, Default)]
pub struct ReceiverState {
    pub log: Arc<Mutex<Vec<Received>>>,
    /// Answer 500 to this many requests before answering 200 (u32::MAX = never succeed).
    pub fail_first: Arc<Mutex<u32>>,
}

pub struct Receiver {
    pub url: String,
    pub state: ReceiverState,
}

impl Receiver {
    pub fn received(&self) -> Vec<Received> {
        self.state.log.lock().unwrap().clone()
    }

    pub fn successes(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.status_sent == 200)
            .collect()
    }

    pub async fn wait_successes(&self, n: usize, secs: u64) -> Vec<Received> {
        eventually(secs, || async {
            let s = self.successes();
            (s.len() >= n).then_some(s)
        })
        .await
    }
}

async fn receive(State(st): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let status = {
        let mut fail = st.fail_first.lock().unwrap();
        if *fail > 0 {
            if *fail != u32::MAX {
                *fail -= 1;
            }
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        }
    };
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    st.log.lock().unwrap().push(Received {
        signature: h("stripe-signature"),
        body: body.to_vec(),
        user_agent: h("user-agent"),
        content_type: h("content-type"),
        status_sent: status.as_u16(),
    });
    status
}

pub async fn receiver(fail_first: u32) -> Receiver {
    let state = ReceiverState {
        fail_first: Arc::new(Mutex::new(fail_first)),
        ..Default::default()
    };
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Receiver {
        url: format!("http://{addr}/hook"),
        state,
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Verifies a delivery with the official-semantics verifier from `stripe-webhook`.
pub fn verify(r: &Received, secret: &str) -> stripe_webhook::Event {
    let v = stripe_webhook::Verifier::new([secret]).unwrap();
    v.construct_event(&r.body, Some(&r.signature), now())
        .unwrap_or_else(|e| panic!("signature check failed: {e}"))
}
