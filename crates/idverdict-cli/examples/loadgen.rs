//! Load generator for `bench/ingest.sh` and `bench/compare.sh`: drives distinct, freshly
//! signed, pretty-printed Identity events at a receiver and reports acknowledged events/s and
//! latency percentiles.
//!
//! `loadgen URL SECRET closed CONNECTIONS SECONDS` — as fast as CONNECTIONS keep-alive
//!   connections allow (closed loop).
//! `loadgen URL SECRET rate EVENTS_PER_SEC SECONDS` — a steady rate (open loop); latency is
//!   measured from each request's scheduled start, so queueing counts.
//!
//! The events: sessions with histories of one to three events (`verified`; `created` →
//! `requires_input`; `created` → `processing` → `verified`), each event a distinct `evt_…`,
//! pretty-printed like Stripe's bodies and 1–3 KB (the session's metadata varies in size).
//! A session's events go out close together, possibly out of order across connections, as
//! Stripe's do. `LOADGEN_FIRST=N` starts the numbering at N (several runs against one store
//! then never repeat a session); `LOADGEN_METRICS=URL` samples an idverdict `/metrics` at the
//! start and the end and adds what was applied in between.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use idverdict::clock::now_secs;
use idverdict::synth::{self, Kind, Spec};

/// What a merchant typically keeps in a session's metadata; the number of entries varies by
/// session so that bodies range over 1–3 KB.
const METADATA: [(&str, &str); 14] = [
    ("order_id", "ord_2026_11_000000000000"),
    ("signup_source", "mobile_app_onboarding_flow_v3"),
    ("account_tier", "business_plus_annual"),
    ("region", "eu-west-1"),
    ("risk_segment", "standard_review_queue_b"),
    ("campaign", "autumn_referral_programme_2026"),
    ("customer_since", "2021-04-17T09:31:00Z"),
    ("kyc_reason", "payout_threshold_exceeded_first_time"),
    (
        "support_ticket",
        "https://support.example.com/tickets/48213377",
    ),
    ("locale", "de-DE"),
    ("device", "ios_17_4_iphone_15_pro_safari_webview"),
    (
        "internal_note",
        "requested by compliance after manual screening hit on name variant",
    ),
    ("merchant_ref", "mch_7c1f0e9a2b4d4c6f8e0a1b2c3d4e5f60"),
    ("flow_version", "identity_flow_2026_10_rollout_cohort_17"),
];

/// Event `n` of the stream: blocks of six events are three sessions with histories of 1, 2
/// and 3 events.
fn next_event(n: u64) -> Vec<u8> {
    let (block, r) = (n / 6, n % 6);
    let (session, kind) = match r {
        0 => (block * 3, Kind::Verified),
        1 => (block * 3 + 1, Kind::Created),
        2 => (block * 3 + 1, Kind::RequiresInput),
        3 => (block * 3 + 2, Kind::Created),
        4 => (block * 3 + 2, Kind::Processing),
        _ => (block * 3 + 2, Kind::Verified),
    };
    let now = now_secs();
    let mut spec = Spec::new(kind, &format!("vs_1bench{session:014}"), now);
    spec.session_created = now - 30;
    spec.created = now - 30 + r as i64;
    spec.user_ref = Some(format!("bench_user_{session}"));
    if kind == Kind::RequiresInput {
        spec.error_code = Some(
            [
                "document_expired",
                "selfie_face_mismatch",
                "document_unverified_other",
            ][(session % 3) as usize]
                .to_string(),
        );
    }
    let entries = (session * 7 % (METADATA.len() as u64 + 1)) as usize;
    spec.metadata = METADATA[..entries]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    synth::event_bytes(&spec)
}

/// A counter of `/metrics` (the first sample without labels), if reachable.
async fn scrape(client: &reqwest::Client, url: &str, name: &str) -> Option<f64> {
    let text = client.get(url).send().await.ok()?.text().await.ok()?;
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
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
    let first: u64 = std::env::var("LOADGEN_FIRST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let metrics_url = std::env::var("LOADGEN_METRICS").ok();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()?;
    let processed_before = match &metrics_url {
        Some(m) => scrape(&client, m, "idverdict_events_processed_total").await,
        None => None,
    };
    let counter = Arc::new(AtomicU64::new(first));
    let bytes_sent = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();

    let mut tasks = Vec::new();
    match mode.as_str() {
        "closed" => {
            for _ in 0..n {
                let (client, url, secret, counter, bytes_sent) = (
                    client.clone(),
                    url.clone(),
                    secret.clone(),
                    counter.clone(),
                    bytes_sent.clone(),
                );
                tasks.push(tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut failures = 0u64;
                    while Instant::now() < deadline {
                        let body = next_event(counter.fetch_add(1, Ordering::Relaxed));
                        bytes_sent.fetch_add(body.len() as u64, Ordering::Relaxed);
                        let header = stripe_webhook::sign(&body, &secret, now_secs());
                        let t0 = Instant::now();
                        let ok = matches!(client.post(&url).header("Stripe-Signature", header).header("Content-Type", "application/json").body(body).send().await, Ok(r) if r.status() == 200);
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
                let (client, url, secret, counter, bytes_sent) = (
                    client.clone(),
                    url.clone(),
                    secret.clone(),
                    counter.clone(),
                    bytes_sent.clone(),
                );
                tasks.push(tokio::spawn(async move {
                    let body = next_event(counter.fetch_add(1, Ordering::Relaxed));
                    bytes_sent.fetch_add(body.len() as u64, Ordering::Relaxed);
                    let header = stripe_webhook::sign(&body, &secret, now_secs());
                    let ok = matches!(client.post(&url).header("Stripe-Signature", header).header("Content-Type", "application/json").body(body).send().await, Ok(r) if r.status() == 200);
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
    let applied = match (&metrics_url, processed_before) {
        (Some(m), Some(before)) => scrape(&client, m, "idverdict_events_processed_total")
            .await
            .map(|after| after - before),
        _ => None,
    };
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(f64::NAN)
    };
    let sent = counter.load(Ordering::Relaxed) - first;
    let mut line = format!(
        "acked={} failed={} seconds={:.1} events_per_sec={:.0} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} mean_body_bytes={:.0} next={}",
        latencies.len(), failures, elapsed, latencies.len() as f64 / elapsed, pct(0.50), pct(0.99), pct(1.0),
        bytes_sent.load(Ordering::Relaxed) as f64 / sent.max(1) as f64,
        counter.load(Ordering::Relaxed)
    );
    if let Some(applied) = applied {
        line.push_str(&format!(
            " applied={applied:.0} applied_per_sec={:.0} backlog_at_end={:.0}",
            applied / elapsed,
            latencies.len() as f64 - applied
        ));
    }
    println!("{line}");
    Ok(())
}
