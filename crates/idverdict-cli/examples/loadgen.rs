//! Load generator for `bench/ingest.sh`: drives distinct, freshly signed identity events at a
//! receiver and reports acknowledged events/s and latency percentiles.
//!
//! `loadgen URL SECRET closed CONNECTIONS SECONDS` — as fast as CONNECTIONS keep-alive
//!   connections allow (closed loop).
//! `loadgen URL SECRET rate EVENTS_PER_SEC SECONDS` — a steady rate (open loop); latency is
//!   measured from each request's scheduled start, so queueing counts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use idverdict::clock::now_secs;
use idverdict::synth::{self, Kind, Spec};

fn next_event(n: u64) -> Vec<u8> {
    let kinds = [Kind::Created, Kind::Processing, Kind::Verified];
    let mut spec = Spec::new(
        kinds[(n % 3) as usize],
        &format!("vs_1bench{:012}", n / 3),
        now_secs(),
    );
    spec.user_ref = Some(format!("bench_user_{}", n / 3));
    // Compact, like a Stripe body without the indentation; distinct evt_ each time.
    serde_json::to_vec(&synth::event_json(&spec)).unwrap_or_default()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        args.len() == 6,
        "usage: loadgen URL SECRET closed|rate N SECONDS"
    );
    let (url, secret, mode) = (args[1].clone(), args[2].clone(), args[3].clone());
    let n: u64 = args[4].parse()?;
    let seconds: u64 = args[5].parse()?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()?;
    let counter = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();

    let mut tasks = Vec::new();
    match mode.as_str() {
        "closed" => {
            for _ in 0..n {
                let (client, url, secret, counter) =
                    (client.clone(), url.clone(), secret.clone(), counter.clone());
                tasks.push(tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut failures = 0u64;
                    while Instant::now() < deadline {
                        let body = next_event(counter.fetch_add(1, Ordering::Relaxed));
                        let header = stripe_webhook::sign(&body, &secret, now_secs());
                        let t0 = Instant::now();
                        let ok = matches!(client.post(&url).header("Stripe-Signature", header).body(body).send().await, Ok(r) if r.status() == 200);
                        if ok { lat.push(t0.elapsed()); } else { failures += 1; }
                    }
                    (lat, failures)
                }));
            }
        }
        "rate" => {
            let interval = Duration::from_secs_f64(1.0 / n as f64);
            let total = n * seconds;
            for i in 0..total {
                let scheduled = started + interval * i as u32;
                tokio::time::sleep_until(scheduled.into()).await;
                let (client, url, secret, counter) =
                    (client.clone(), url.clone(), secret.clone(), counter.clone());
                tasks.push(tokio::spawn(async move {
                    let body = next_event(counter.fetch_add(1, Ordering::Relaxed));
                    let header = stripe_webhook::sign(&body, &secret, now_secs());
                    let ok = matches!(client.post(&url).header("Stripe-Signature", header).body(body).send().await, Ok(r) if r.status() == 200);
                    if ok { (vec![scheduled.elapsed()], 0) } else { (vec![], 1) }
                }));
            }
        }
        other => anyhow::bail!("unknown mode {other}"),
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for task in tasks {
        let (lat, f) = task.await?;
        latencies.extend(lat);
        failures += f;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(f64::NAN)
    };
    println!(
        "acked={} failed={} seconds={:.1} events_per_sec={:.0} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        latencies.len(), failures, elapsed, latencies.len() as f64 / elapsed, pct(0.50), pct(0.99), pct(1.0)
    );
    Ok(())
}
