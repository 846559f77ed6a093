//! Fetch-latest: before acting on an event, ask Stripe for the session as it is now.
//!
//! Webhooks are snapshots taken when the event was created and may arrive late or out of
//! order; when a Stripe key is configured, the processor decides on Stripe's current truth
//! instead. Only `provided_details` is expanded (the end user's email, for the email reaction); no
//! `verified_outputs` (personal data idverdict does not need) are fetched.

use stripe_webhook::VerificationSession;

use crate::stripe_api::{StripeApiError, StripeClient};

/// The session `id` as Stripe has it now. A 404 (`resource_missing`) comes back as
/// [`StripeApiError::Api`] with status 404: the caller then keeps the event's own snapshot.
pub async fn fetch_latest(
    client: &StripeClient,
    session_id: &str,
) -> Result<VerificationSession, StripeApiError> {
    client
        .retrieve_verification_session(session_id, &["provided_details"])
        .await
}
