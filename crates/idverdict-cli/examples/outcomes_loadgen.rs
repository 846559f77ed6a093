//! Load generator for `bench/outcomes.sh`: end-to-end latency from the webhook's
//! acknowledgement to the app's callback receipt, and reactions/s sustained.
//!
//! `outcomes_loadgen URL SECRET RECEIVER_ADDR RATE SECONDS BURST CONNECTIONS`
//!
//! It runs the app's callback endpoint itself (a tiny HTTP receiver on RECEIVER_ADDR, which
//! `serve` has in `IDVERDICT_CALLBACK_URLS`), then:
//!
//! 1. **steady**: RATE `verified` events/s for SECONDS, each for a new session of a new user,
//!    so each makes exactly one `verified` decision and one callback. Latency = callback
//!    receipt − the webhook's 200 (matched by the `session` field of the callback body).
//! 2. **burst**: BURST such events as fast as CONNECTIONS keep-alive connections allow
//!    (closed loop); reactions/s = BURST / (time until the last callback arrived).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use idverdict::clock::now_secs;
use idverdict::synth::{self, Kind, Spec};

/// A `verified` event for a new session `vs_1obench{phase}{n}` of a new user.
fn verified_event(phase: &str, n: u64) -> (String, Vec<u8>) {
    let session = format!("vs_1obench{phase}{n:010}");
    let mut spec = Spec::new(Kind::Verified, &session, now_secs());
    spec.user_ref = Some(format!("obench_{phase}_{n}"));
    spec.session_created = now_secs() - 60;
    (
        session,
        serde_json::to_vec(&synth::event_json(&spec)).unwrap_or_default(),
    )
}

/// Per session: when the webhook was acknowledged and when its callback arrived.
#[derive(Default)]
struct Timeline {
    acked: HashMap<String, Instant>,
    called_back: HashMap<String, Instant>,
    callbacks: u64,
    last_callback: Option<Instant>,
}

async fn start_receiver(addr: SocketAddr, timeline: Arc<Mutex<Timeline>>) -> anyhow::Result<()> {
    let app = axum::Router::new().route(
        "/{*path}",
        post(move |body: Bytes| {
            let timeline = timeline.clone();
            async move {
                let at = Instant::now();
                let session = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["session"].as_str().map(str::to_string));
                if let (Some(session), Ok(mut t)) = (session, timeline.lock()) {
                    t.called_back.entry(session).or_insert(at);
                    t.callbacks += 1;
                    t.last_callback = Some(at);
                }
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(())
}

async fn send(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    body: Vec<u8>,
) -> Result<(), String> {
    let header = stripe_webhook::sign(&body, secret, now_secs());
    match client
        .post(url)
        .header("Stripe-Signature", header)
        .body(body)
        .send()
        .await
    {
        Ok(r) if r.status() == 200 => Ok(()),
        Ok(r) => Err(format!("HTTP {}", r.status())),
        Err(e) => Err(e.to_string()),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

/// Wait (bounded) until `expected` callbacks of this phase arrived; returns how many did.
async fn wait_callbacks(timeline: &Arc<Mutex<Timeline>>, sessions: &[String]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = match timeline.lock() {
            Ok(t) => sessions
                .iter()
                .filter(|s| t.called_back.contains_key(*s))
                .count(),
            Err(_) => 0,
        };
        if got == sessions.len() || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        args.len() == 8,
        "usage: outcomes_loadgen URL SECRET RECEIVER_ADDR RATE SECONDS BURST CONNECTIONS"
    );
    let (url, secret) = (args[1].clone(), args[2].clone());
    let receiver: SocketAddr = args[3].parse()?;
    let rate: u64 = args[4].parse()?;
    let seconds: u64 = args[5].parse()?;
    let burst: u64 = args[6].parse()?;
    let connections: u64 = args[7].parse()?;
    anyhow::ensure!(
        rate > 0 && connections > 0,
        "RATE and CONNECTIONS must be positive"
    );

    let timeline = Arc::new(Mutex::new(Timeline::default()));
    start_receiver(receiver, timeline.clone()).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .no_proxy()
        .build()?;

    // 1. Steady rate (open loop).
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let total = rate * seconds;
    let started = Instant::now();
    let failures = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let mut sessions = Vec::new();
    for i in 0..total {
        let scheduled = started + interval.mul_f64(i as f64);
        tokio::time::sleep_until(scheduled.into()).await;
        let (session, body) = verified_event("r", i);
        sessions.push(session.clone());
        let (client, url, secret, timeline, failures) = (
            client.clone(),
            url.clone(),
            secret.clone(),
            timeline.clone(),
            failures.clone(),
        );
        tasks.push(tokio::spawn(async move {
            match send(&client, &url, &secret, body).await {
                Ok(()) => {
                    if let Ok(mut t) = timeline.lock() {
                        t.acked.insert(session, Instant::now());
                    }
                }
                Err(_) => {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let arrived = wait_callbacks(&timeline, &sessions).await;
    let mut lat: Vec<Duration> = match timeline.lock() {
        Ok(t) => sessions
            .iter()
            .filter_map(|s| {
                let (a, c) = (t.acked.get(s)?, t.called_back.get(s)?);
                // A callback may beat the 200 back to the client: that counts as zero.
                Some(c.saturating_duration_since(*a))
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    lat.sort();
    println!(
        "steady {rate}/s for {seconds}s: {} events acked ({} failed), {arrived} callbacks; ack->callback p50_ms={:.1} p99_ms={:.1} max_ms={:.1}",
        total - failures.load(Ordering::Relaxed),
        failures.load(Ordering::Relaxed),
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        lat.last().map(|d| d.as_secs_f64() * 1000.0).unwrap_or(f64::NAN),
    );

    // 2. Closed-loop burst.
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, url, secret, counter) =
            (client.clone(), url.clone(), secret.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                if n >= burst {
                    return mine;
                }
                let (session, body) = verified_event("b", n);
                if send(&client, &url, &secret, body).await.is_ok() {
                    mine.push(session);
                }
            }
        }));
    }
    let mut sessions = Vec::new();
    for t in tasks {
        if let Ok(mine) = t.await {
            sessions.extend(mine);
        }
    }
    let ingested = started.elapsed();
    let arrived = wait_callbacks(&timeline, &sessions).await;
    let last = timeline
        .lock()
        .ok()
        .and_then(|t| t.last_callback)
        .unwrap_or_else(Instant::now);
    let elapsed = last.saturating_duration_since(started);
    println!(
        "burst {burst} over {connections} connections: {} acked in {:.2}s ({:.0} events/s), {arrived} callbacks by {:.2}s: {:.0} reactions/s",
        sessions.len(),
        ingested.as_secs_f64(),
        sessions.len() as f64 / ingested.as_secs_f64(),
        elapsed.as_secs_f64(),
        arrived as f64 / elapsed.as_secs_f64().max(1e-9),
    );
    Ok(())
}
