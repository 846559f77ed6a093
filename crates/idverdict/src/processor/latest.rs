//! Fetch-latest inside the processor: when a Stripe key is configured, the sessions of the
//! next batch are retrieved from Stripe BEFORE the batch's transaction opens (no network
//! I/O while holding the writer), and each retrieved snapshot is folded in after the batch's
//! own events, so decisions rest on Stripe's current truth rather than a late or reordered
//! snapshot.
//!
//! Webhooks are snapshots taken when the event was created and may arrive late or out of
//! order. Only `provided_details` is expanded (the end user's email, for the email reaction);
//! `verified_outputs` are fetched only by the expectations checker (`checks.rs`), for the
//! sessions that must be compared with what the app expected. How a current
//! session folds in (placed at the newest time already known, so it moves a session forward
//! but never back; it wins ties) is decided in `decide::batch`.

use std::collections::HashMap;
use std::sync::Arc;

use futures::stream::{self, StreamExt};
use stripe_webhook::VerificationSession;

use crate::store::{Store, StoreError};
use crate::stripe_api::StripeClient;

/// Retrievals in flight at once.
const CONCURRENCY: usize = 8;

/// Retrieve the sessions the next `limit` unprocessed events are about, and say up to which
/// event that covers. Sessions that cannot be retrieved (Stripe down, unknown id: a 404) are
/// simply left out: their events still apply.
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
                match client
                    .retrieve_verification_session(&id, &["provided_details"])
                    .await
                {
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
