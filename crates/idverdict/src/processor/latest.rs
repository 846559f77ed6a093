//! Fetch-latest inside the processor: when a Stripe key is configured, the sessions of the
//! next batch are retrieved from Stripe BEFORE the batch's transaction opens (no network
//! I/O while holding the writer), and each retrieved snapshot is folded in after the batch's
//! own events, so decisions rest on Stripe's current truth rather than a late or reordered
//! snapshot.
//!
//! The snapshot is placed at the newest position idverdict already knows for the session, so
//! it can move a session forward (e.g. a late `processing` event while Stripe already says
//! `verified`) but never backwards. A failure without a report is not counted from a snapshot
//! (its attempt key would depend on the snapshot's time); the event itself counts it.

use std::collections::HashMap;
use std::sync::Arc;

use futures::stream::{self, StreamExt};
use serde_json::json;
use stripe_webhook::{Event, SessionStatus, VerificationSession};

use crate::fetch_latest::fetch_latest;
use crate::store::{Store, StoreError};
use crate::stripe_api::StripeClient;

/// Retrievals in flight at once.
const CONCURRENCY: usize = 8;

/// Retrieve the sessions the next `limit` unprocessed events are about, and say up to which
/// event that covers. Sessions that cannot be retrieved (Stripe down, unknown id) are simply
/// left out: their events still apply.
pub(super) async fn prefetch(
    store: &Store,
    client: &Arc<StripeClient>,
    limit: i64,
) -> Result<(HashMap<String, VerificationSession>, Option<i64>), StoreError> {
    let (ids, up_to) = store.peek_unprocessed(limit).await?;
    let fetched: Vec<(String, Option<VerificationSession>)> = stream::iter(ids)
        .map(|id| {
            let client = client.clone();
            async move {
                match fetch_latest(&client, &id).await {
                    Ok(session) => (id, Some(session)),
                    Err(error) => {
                        tracing::warn!(session = %id, %error, "could not fetch the latest session from Stripe; using the event's snapshot");
                        (id, None)
                    }
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let sessions = fetched
        .into_iter()
        .filter_map(|(id, s)| s.filter(|s| s.id == id).map(|s| (id, s)))
        .collect();
    Ok((sessions, up_to))
}

/// The retrieved session as an event at `created`, for `decide::apply`.
pub(super) fn as_event(session: &VerificationSession, created: i64) -> Option<Event> {
    let kind = match &session.status {
        SessionStatus::Verified => "verified",
        SessionStatus::Canceled => "canceled",
        SessionStatus::Processing => "processing",
        SessionStatus::RequiresInput
            if session
                .last_error
                .as_ref()
                .and_then(|e| e.code.as_ref())
                .is_some() =>
        {
            "requires_input"
        }
        SessionStatus::RequiresInput => "created",
        SessionStatus::Unknown(_) => return None,
    };
    let mut object = serde_json::to_value(session).ok()?;
    // Never carry the single-use links further than needed.
    if let Some(map) = object.as_object_mut() {
        map.insert("client_secret".into(), serde_json::Value::Null);
        map.insert("url".into(), serde_json::Value::Null);
    }
    let envelope = json!({
        "id": format!("fetched_{}", session.id),
        "object": "event",
        "created": created,
        "data": {"object": object},
        "livemode": session.livemode,
        "pending_webhooks": 0,
        "type": format!("identity.verification_session.{kind}"),
    });
    serde_json::from_value(envelope).ok()
}
