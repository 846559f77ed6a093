//! `POST /webhook`: Stripe's delivery endpoint.
//!
//! Answers: 200 `{"received":true}` once the event is durable (also for an `evt_…` seen
//! before); 400 with a reason when the signature or payload is bad, or an identifier (event
//! id, session id, `type`, `api_version`) cannot be stored (`invalid_identifier`) — nothing
//! stored; Stripe retrying will not help, so it should see a client error; 413 when the body is over the
//! limit; 503 when storage is down (Stripe retries later).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};
use stripe_webhook::{SignatureError, WebhookError};

use super::CommitError;
use crate::api::ApiError;
use crate::clock;
use crate::state::AppState;
use crate::store::{NewEvent, Receipt};

pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            state.metrics.webhook_rejected("payload_too_large");
            ApiError::too_large(state.body_limit)
        } else {
            state.metrics.webhook_rejected("unreadable_body");
            ApiError::new(
                rejection.status(),
                "unreadable_body",
                "the request body could not be read",
            )
        }
    })?;
    let header = match headers.get("stripe-signature").map(|v| v.to_str()) {
        None => None,
        Some(Ok(text)) => Some(text),
        // Non-ASCII bytes cannot be a valid signature header.
        Some(Err(_)) => {
            state.metrics.webhook_rejected("malformed_signature_header");
            return Err(ApiError::bad_request(
                "malformed_signature_header",
                "the Stripe-Signature header is not valid ASCII",
            ));
        }
    };

    let event = state
        .verifier
        .construct_event(&body, header, clock::now_secs())
        .map_err(|e| {
            state.metrics.webhook_rejected(e.code());
            if matches!(
                e,
                WebhookError::Signature(SignatureError::NoMatchingSignature)
            ) {
                state.signatures.mismatch();
            }
            tracing::info!(reason = e.code(), "rejected a webhook delivery");
            ApiError::bad_request(e.code(), rejection_message(&e))
        })?;

    // Identifiers no backend can store or index (a NUL, control characters, kilobytes) are
    // refused here with a 400, before they could fail a commit with a 503 that Stripe would
    // retry for days.
    let new = NewEvent::from_event(&event, body.to_vec()).map_err(|e| {
        state.metrics.webhook_rejected(e.code());
        tracing::info!(reason = e.code(), "rejected a webhook delivery");
        ApiError::bad_request(e.code(), e.to_string())
    })?;
    match state.committer.submit(new).await {
        Ok(receipt) => {
            let duplicate = receipt == Receipt::Duplicate;
            state.metrics.webhook_accepted(duplicate);
            state.signatures.accepted();
            tracing::debug!(event = %event.id, duplicate, "webhook event stored");
            Ok(Json(json!({"received": true, "duplicate": duplicate})))
        }
        Err(CommitError::ShuttingDown) => Err(ApiError::unavailable(
            "shutting_down",
            "the receiver is shutting down; retry later",
        )),
        Err(CommitError::Storage(_) | CommitError::TooSlow) => {
            state.metrics.webhook_storage_failed();
            Err(ApiError::unavailable(
                "storage_unavailable",
                "the event could not be stored; retry later",
            ))
        }
    }
}

/// The SDK-style message, without echoing anything from the request.
fn rejection_message(e: &WebhookError) -> String {
    match e {
        // serde's message names the position only; it does not quote the payload.
        WebhookError::InvalidJson(inner) => format!("payload is not valid JSON ({inner})"),
        other => other.to_string(),
    }
}
