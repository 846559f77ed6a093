//! Webhook delivery: scheduling, signed POSTs, retries with backoff, the
//! auto-disable of failing endpoints, and the chaos switches.
//!
//! Every delivery is a row in the state file, so a restart resumes pending
//! ones. The scheduler claims due rows and sends each in its own task; the
//! signature is computed right before sending, with a fresh timestamp and one
//! `v1` per secret active at that moment, as Stripe does on every attempt.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::clock::{now_ms, now_s};
use crate::errors::StoreError;
use crate::lifecycle;
use crate::model::{Endpoint, Event};
use crate::store::{Attempt, Delivery, DeliveryKind, Kind};
use crate::Emulator;

/// Stripe retries for up to three days (live mode).
pub const RETRY_HORIZON: Duration = Duration::from_secs(3 * 24 * 3600);
const FIRST_RETRY: Duration = Duration::from_secs(60);
const MAX_RETRY_GAP: Duration = Duration::from_secs(12 * 3600);

/// `true` with probability `p`.
pub fn roll(p: f64) -> bool {
    p > 0.0 && (p >= 1.0 || rand::thread_rng().gen_bool(p.clamp(0.0, 1.0)))
}

fn scaled_ms(d: Duration, scale: f64) -> i64 {
    (d.as_secs_f64() * 1000.0 * scale).round().max(0.0) as i64
}

/// Delay before retry number `failures` (1 = after the first failed attempt):
/// doubling from one minute up to twelve hours, ±15 % jitter, times the time scale.
pub fn retry_delay_ms(failures: i64, time_scale: f64) -> i64 {
    let exp = u32::try_from((failures - 1).clamp(0, 20)).unwrap_or(20);
    let base = FIRST_RETRY
        .saturating_mul(2u32.saturating_pow(exp))
        .min(MAX_RETRY_GAP);
    let jitter = rand::thread_rng().gen_range(0.85..1.15);
    scaled_ms(base, time_scale * jitter).max(1)
}

/// Creates the event and one delivery per enabled, subscribed endpoint
/// (`pending_webhooks` is that number), applying the chaos switches.
pub async fn schedule_event(emu: &Emulator, event: &mut Event) -> Result<(), StoreError> {
    let endpoints: Vec<Endpoint> = emu
        .store
        .all::<Endpoint>(Kind::Endpoint)
        .await?
        .into_iter()
        .filter(|e| !e.disabled && e.subscribed(&event.kind))
        .collect();
    event.pending_webhooks = i64::try_from(endpoints.len()).unwrap_or(i64::MAX);
    emu.store
        .put(Kind::Event, &event.id, event.created, event)
        .await?;
    let now = now_ms();
    let chaos = &emu.config.chaos;
    for ep in endpoints {
        let mut next = now;
        if roll(chaos.delay) {
            next += rand::thread_rng().gen_range(0..=scaled_ms(chaos.max_delay, 1.0).max(1));
        }
        // Reorder: the first delivery picked is held back; the next one to the
        // same endpoint overtakes it and releases it once attempted.
        let overtakes = if chaos.reorder > 0.0 {
            emu.store.unpaired_held_delivery(&ep.id).await?
        } else {
            None
        };
        let hold = overtakes.is_none() && roll(chaos.reorder);
        if hold {
            next += scaled_ms(chaos.reorder_window, 1.0);
        }
        let id = emu
            .store
            .insert_delivery(&event.id, &ep.id, DeliveryKind::Primary, next, hold)
            .await?;
        if let Some(held) = overtakes {
            emu.store.pair_held_delivery(held, id).await?;
        }
        if roll(chaos.duplicate) {
            emu.store
                .insert_delivery(&event.id, &ep.id, DeliveryKind::Duplicate, next, false)
                .await?;
        }
    }
    Ok(())
}

/// Queues a one-off resend of an event to an endpoint (does not touch the automatic retries).
pub async fn resend(emu: &Emulator, event_id: &str, endpoint_id: &str) -> Result<i64, StoreError> {
    let id = emu
        .store
        .insert_delivery(event_id, endpoint_id, DeliveryKind::Resend, now_ms(), false)
        .await?;
    emu.wake.notify_one();
    Ok(id)
}

/// How long a stopping emulator waits for delivery attempts in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The scheduler: runs due timers and due deliveries until shutdown.
pub async fn run_scheduler(emu: Arc<Emulator>, mut shutdown: watch::Receiver<bool>) {
    let mut inflight = JoinSet::new();
    let mut last_prune = 0i64;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let now = now_ms();
        match emu.store.take_due_timers(now).await {
            Ok(timers) => {
                for t in timers {
                    lifecycle::fire_timer(&emu, t).await;
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read timers"),
        }
        match emu.store.claim_due_deliveries(now).await {
            Ok(due) => {
                for d in due {
                    let emu = emu.clone();
                    inflight.spawn(async move { attempt(&emu, d).await });
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read deliveries"),
        }
        while inflight.try_join_next().is_some() {}
        if now - last_prune > 60_000 {
            last_prune = now;
            if let Err(e) = emu.store.idempotent_prune(now - 24 * 3600 * 1000).await {
                tracing::warn!(error = %e, "cannot prune idempotency keys");
            }
        }
        let next = [
            emu.store.next_delivery_due().await.ok().flatten(),
            emu.store.next_timer_due().await.ok().flatten(),
        ]
        .into_iter()
        .flatten()
        .min();
        let wait = next.map_or(1000, |n| (n - now_ms()).clamp(0, 1000));
        let wait = Duration::from_millis(u64::try_from(wait).unwrap_or(0));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = emu.wake.notified() => {}
            _ = shutdown.changed() => {}
            Some(_) = inflight.join_next(), if !inflight.is_empty() => {}
        }
    }
    // Give attempts in flight a moment to finish: aborting one between recording its result
    // and counting down `pending_webhooks` would leave the event looking undelivered. Then
    // stop: a receiver that hangs must not hold the shutdown. Attempts still marked `sending`
    // are sent again by the next start.
    let drain = async { while inflight.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        inflight.shutdown().await;
    }
}

async fn attempt(emu: &Emulator, d: Delivery) {
    if let Err(e) = attempt_inner(emu, &d).await {
        tracing::error!(delivery = d.id, error = %e, "delivery bookkeeping failed");
        let _ = emu.store.set_delivery_state(d.id, "pending").await;
    }
    emu.wake.notify_one();
}

struct Answer {
    status: Option<u16>,
    error: Option<String>,
    success: bool,
    latency_ms: i64,
}

async fn post(emu: &Emulator, ep: &Endpoint, body: Vec<u8>) -> Answer {
    let ts = now_s();
    let signature = stripe_webhook::sign_with_secrets(&body, &ep.active_secrets(ts), ts);
    let started = Instant::now();
    let res = emu
        .http
        .post(&ep.url)
        .header("Content-Type", "application/json; charset=utf-8")
        .header(
            "User-Agent",
            "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        )
        .header("Cache-Control", "no-cache")
        .header("Accept", "*/*; q=0.5, application/xml")
        .header("Stripe-Signature", signature)
        .body(body)
        .timeout(emu.config.delivery_timeout)
        .send()
        .await;
    let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    match res {
        Ok(resp) => {
            let status = resp.status();
            let success = status.is_success();
            Answer {
                status: Some(status.as_u16()),
                error: if success {
                    None
                } else if status.is_redirection() {
                    Some(format!("HTTP {status}: redirects are not followed"))
                } else {
                    Some(format!("HTTP {status}"))
                },
                success,
                latency_ms,
            }
        }
        Err(e) => {
            let error = if e.is_timeout() {
                "timed out".to_string()
            } else if e.is_connect() {
                "connection failed".to_string()
            } else {
                format!("request failed: {e}")
            };
            Answer {
                status: None,
                error: Some(error),
                success: false,
                latency_ms,
            }
        }
    }
}

async fn attempt_inner(emu: &Emulator, d: &Delivery) -> Result<(), StoreError> {
    let started_ms = now_ms();
    let event = emu.store.get::<Event>(Kind::Event, &d.event_id).await?;
    let endpoint = emu
        .store
        .get::<Endpoint>(Kind::Endpoint, &d.endpoint_id)
        .await?;
    let (Some(event), Some(endpoint)) = (event, endpoint) else {
        emu.store.set_delivery_state(d.id, "abandoned").await?;
        emu.store.release_held_after(d.id, now_ms()).await?;
        return Ok(());
    };
    // At Stripe a retry that falls due while the endpoint is disabled is dropped.
    if endpoint.disabled && d.kind != DeliveryKind::Resend {
        emu.store.set_delivery_state(d.id, "abandoned").await?;
        emu.store.release_held_after(d.id, now_ms()).await?;
        return Ok(());
    }
    // Pretty-printed like Stripe's payloads, so receivers that re-serialise
    // instead of verifying the raw body fail here as they would in production.
    let body = serde_json::to_vec_pretty(&event.render())?;
    let answer = post(emu, &endpoint, body).await;
    let number = d.attempts + 1;
    tracing::info!(
        event = %event.id, endpoint = %endpoint.id, kind = d.kind.as_str(), attempt = number,
        status = ?answer.status, success = answer.success, latency_ms = answer.latency_ms, "webhook delivery attempt"
    );
    emu.store
        .insert_attempt(&Attempt {
            id: 0,
            delivery_id: d.id,
            event_id: event.id.clone(),
            endpoint_id: endpoint.id.clone(),
            kind: d.kind.as_str().to_string(),
            attempt: number,
            at_ms: started_ms,
            status: answer.status.map(i64::from),
            latency_ms: answer.latency_ms,
            error: answer.error.clone(),
            success: answer.success,
        })
        .await?;

    let now = now_ms();
    let first_at = d.first_at_ms.unwrap_or(started_ms);
    let w = emu.write().await;
    if answer.success {
        emu.store
            .finish_attempt(d, "succeeded", now, first_at)
            .await?;
        if d.kind == DeliveryKind::Primary {
            // Derived from the deliveries rather than counted down, so that an attempt sent
            // twice (after a restart) cannot count twice.
            emu.store.recount_pending_webhooks(Some(&event.id)).await?;
        }
        if let Some(mut ep) = emu
            .store
            .get::<Endpoint>(Kind::Endpoint, &endpoint.id)
            .await?
        {
            if ep.failing_since_ms.is_some() {
                ep.failing_since_ms = None;
                emu.store
                    .put(Kind::Endpoint, &ep.id, ep.created, &ep)
                    .await?;
            }
        }
    } else if d.kind == DeliveryKind::Primary {
        let next = now + retry_delay_ms(number, emu.config.time_scale);
        let horizon = scaled_ms(RETRY_HORIZON, emu.config.time_scale);
        let gave_up = next - first_at > horizon;
        emu.store
            .finish_attempt(
                d,
                if gave_up { "failed" } else { "pending" },
                if gave_up { now } else { next },
                first_at,
            )
            .await?;
        if let Some(mut ep) = emu
            .store
            .get::<Endpoint>(Kind::Endpoint, &endpoint.id)
            .await?
        {
            let since = *ep.failing_since_ms.get_or_insert(started_ms);
            // An endpoint that failed every attempt over a whole retry horizon
            // is disabled, as Stripe does after days of failures.
            if gave_up && since <= first_at && !ep.disabled {
                ep.disabled = true;
                tracing::warn!(endpoint = %ep.id, "webhook endpoint disabled after failing for the whole retry horizon");
            }
            emu.store
                .put(Kind::Endpoint, &ep.id, ep.created, &ep)
                .await?;
        }
    } else {
        emu.store.finish_attempt(d, "failed", now, first_at).await?;
    }
    drop(w);
    emu.store.release_held_after(d.id, now_ms()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let a = retry_delay_ms(1, 1.0);
        assert!((51_000..=69_000).contains(&a), "{a}");
        let b = retry_delay_ms(3, 1.0);
        assert!((204_000..=276_000).contains(&b), "{b}");
        let c = retry_delay_ms(30, 1.0);
        assert!(c <= 12 * 3600 * 1000 * 115 / 100, "{c}");
        assert!(retry_delay_ms(1, 0.001) <= 69);
    }

    #[test]
    fn roll_extremes() {
        assert!(!roll(0.0));
        assert!(roll(1.0));
    }
}
