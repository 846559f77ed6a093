//! `POST /webhook`: Stripe's delivery endpoint.
//!
//! Answers: 200 `{"received":true}` once the event is durable (also for an `evt_…` seen
//! before); 400 with a reason when the signature or payload is bad (nothing stored; Stripe
//! retrying will not help, so it should see a client error); 413 when the body is over the
//! limit; 503 when storage is down (Stripe retries later).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use stripe_webhook::WebhookError;

use super::CommitError;
use crate::app::AppState;
use crate::store::{InsertOutcome, NewEvent};

pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let status = rejection.status();
            let (code, message) = if status == StatusCode::PAYLOAD_TOO_LARGE {
                (
                    "payload_too_large",
                    format!(
                        "the body is larger than the limit of {} bytes",
                        state.body_limit
                    ),
                )
            } else {
                (
                    "unreadable_body",
                    "the request body could not be read".to_string(),
                )
            };
            return error(status, code, &message);
        }
    };
    let header = match headers.get("stripe-signature").map(|v| v.to_str()) {
        None => None,
        Some(Ok(text)) => Some(text),
        // Non-ASCII bytes cannot be a valid signature header.
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "malformed_signature_header",
                "the Stripe-Signature header is not valid ASCII",
            )
        }
    };

    let event = match state.verifier.construct_event(&body, header, unix_now()) {
        Ok(event) => event,
        Err(e) => {
            state.metrics.webhook_rejected(e.code());
            tracing::info!(reason = e.code(), "rejected a webhook delivery");
            return error(StatusCode::BAD_REQUEST, e.code(), &rejection_message(&e));
        }
    };

    let new = NewEvent {
        object_id: event
            .data
            .object
            .get("id")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        id: event.id,
        event_type: event.type_.as_str().to_string(),
        created: event.created,
        livemode: event.livemode,
        api_version: event.api_version,
        payload: body.to_vec(),
    };
    let event_id = new.id.clone();
    match state.committer.submit(new).await {
        Ok(outcome) => {
            let duplicate = outcome == InsertOutcome::Duplicate;
            state.metrics.webhook_accepted(duplicate);
            tracing::debug!(event = %event_id, duplicate, "webhook event stored");
            (
                StatusCode::OK,
                Json(json!({"received": true, "duplicate": duplicate})),
            )
                .into_response()
        }
        Err(CommitError::ShuttingDown) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the receiver is shutting down; retry later",
        ),
        Err(CommitError::Storage(_)) => {
            state.metrics.webhook_storage_failed();
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "the event could not be stored; retry later",
            )
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

pub fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}
