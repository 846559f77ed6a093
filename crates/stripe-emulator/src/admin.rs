//! Emulator-only tools (no API key needed; the emulator is a local test tool):
//!
//! * `GET /_emulator` — an HTML page with the delivery log.
//! * `GET /_emulator/deliveries[?event=evt_…][&endpoint=we_…][&limit=N]` — the same as JSON.
//! * `POST /_emulator/events/{id}/resend` with `webhook_endpoint=we_…` — one extra delivery.
//! * `POST /_emulator/webhook_endpoints/{id}/roll_secret[?expires_in=SECONDS]` — a new
//!   secret; the old one keeps signing (a second `v1`) for `expires_in` seconds
//!   (default 86400, 0 = expire at once).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::api::{error_response, json_response};
use crate::clock::now_s;
use crate::delivery;
use crate::errors::ApiError;
use crate::form::{decode, Params};
use crate::hosted_page::{escape, page};
use crate::ids::webhook_secret;
use crate::model::{Endpoint, Event, PreviousSecret};
use crate::store::Kind;
use crate::Emulator;

#[derive(Deserialize)]
pub struct LogQuery {
    event: Option<String>,
    endpoint: Option<String>,
    limit: Option<i64>,
}

pub async fn deliveries_json(
    State(emu): State<Arc<Emulator>>,
    Query(q): Query<LogQuery>,
) -> Response {
    let limit = q.limit.unwrap_or(500).clamp(1, 10_000);
    let attempts = emu
        .store
        .attempts(q.event.as_deref(), q.endpoint.as_deref(), limit)
        .await;
    let deliveries = emu
        .store
        .deliveries(q.event.as_deref(), q.endpoint.as_deref())
        .await;
    match (attempts, deliveries) {
        (Ok(a), Ok(d)) => {
            let deliveries: Vec<_> = d
                .iter()
                .map(|d| json!({"id": d.id, "event": d.event_id, "endpoint": d.endpoint_id, "kind": d.kind.as_str(), "attempts": d.attempts, "state": d.state, "next_attempt_at_ms": d.next_at_ms, "held": d.held}))
                .collect();
            json_response(
                StatusCode::OK,
                &json!({"object": "emulator.delivery_log", "attempts": a, "deliveries": deliveries}),
            )
        }
        (Err(e), _) | (_, Err(e)) => error_response(&ApiError::from(e)),
    }
}

pub async fn index(State(emu): State<Arc<Emulator>>) -> Response {
    let attempts = match emu.store.attempts(None, None, 200).await {
        Ok(a) => a,
        Err(e) => return error_response(&ApiError::from(e)),
    };
    let mut rows = String::new();
    for a in &attempts {
        let class = if a.success { "ok" } else { "bad" };
        rows.push_str(&format!(
            "<tr><td>{at}</td><td><code>{ev}</code></td><td><code>{ep}</code></td><td>{kind}</td><td>{n}</td><td class=\"{class}\">{status}</td><td>{lat} ms</td><td>{err}</td></tr>",
            at = a.at_ms / 1000,
            ev = escape(&a.event_id),
            ep = escape(&a.endpoint_id),
            kind = escape(&a.kind),
            n = a.attempt,
            status = a.status.map_or("—".to_string(), |s| s.to_string()),
            lat = a.latency_ms,
            err = escape(a.error.as_deref().unwrap_or("")),
        ));
    }
    let body = format!(
        "<h1>Stripe emulator</h1><p>API base <code>{base}/v1</code> · any <code>sk_test_…</code> key. \
JSON: <a href=\"/_emulator/deliveries\">/_emulator/deliveries</a>.</p>\
<h2>Webhook delivery log</h2><p><small>Newest first; the last {n} attempts (unix time in seconds).</small></p>\
<table><tr><th>at</th><th>event</th><th>endpoint</th><th>kind</th><th>#</th><th>status</th><th>latency</th><th>error</th></tr>{rows}</table>",
        base = escape(&emu.public_base),
        n = attempts.len(),
    );
    Html(page("Stripe emulator", &body)).into_response()
}

/// Parameters from the query string and a form body alike.
fn params(uri: &Uri, body: &[u8]) -> Result<Params, ApiError> {
    let mut v = decode(uri.query().unwrap_or("").as_bytes())?;
    if let (Some(m), serde_json::Value::Object(b)) = (v.as_object_mut(), decode(body)?) {
        m.extend(b);
    }
    Ok(Params::new(v))
}

pub async fn resend(
    State(emu): State<Arc<Emulator>>,
    Path(id): Path<String>,
    uri: Uri,
    body: Bytes,
) -> Response {
    let run = async {
        let p = params(&uri, &body)?;
        let endpoint = p.required_str("webhook_endpoint")?;
        let ev = emu
            .store
            .get::<Event>(Kind::Event, &id)
            .await?
            .ok_or_else(|| ApiError::no_such("event", &id))?;
        if emu
            .store
            .get::<Endpoint>(Kind::Endpoint, &endpoint)
            .await?
            .is_none()
        {
            return Err(
                ApiError::no_such("webhookendpoint", &endpoint).with_param("webhook_endpoint")
            );
        }
        let delivery_id = delivery::resend(&emu, &ev.id, &endpoint).await?;
        Ok(json!({"event": ev.id, "webhook_endpoint": endpoint, "delivery_id": delivery_id}))
    };
    match run.await {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => error_response(&e),
    }
}

pub async fn roll_secret(
    State(emu): State<Arc<Emulator>>,
    Path(id): Path<String>,
    uri: Uri,
    body: Bytes,
) -> Response {
    let run = async {
        let p = params(&uri, &body)?;
        let expires_in = p.int("expires_in")?.unwrap_or(86_400);
        if expires_in < 0 {
            return Err(ApiError::invalid_param(
                "expires_in",
                "expires_in must be 0 or more seconds.",
            ));
        }
        let _w = emu.write().await;
        let mut ep = emu
            .store
            .get::<Endpoint>(Kind::Endpoint, &id)
            .await?
            .ok_or_else(|| ApiError::no_such("webhookendpoint", &id))?;
        let now = now_s();
        let expires_at = now.saturating_add(expires_in);
        let old = std::mem::replace(&mut ep.secret, webhook_secret());
        ep.previous_secrets.retain(|s| s.expires_at > now);
        if expires_in > 0 {
            ep.previous_secrets.push(PreviousSecret {
                secret: old,
                expires_at,
            });
        }
        emu.store
            .put(Kind::Endpoint, &ep.id, ep.created, &ep)
            .await?;
        tracing::info!(endpoint = %ep.id, expires_in, "webhook endpoint secret rolled");
        Ok(
            json!({"id": ep.id, "object": "webhook_endpoint", "secret": ep.secret, "previous_secret_expires_at": if expires_in > 0 { Some(expires_at) } else { None }}),
        )
    };
    match run.await {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => error_response(&e),
    }
}
