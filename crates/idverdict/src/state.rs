//! What every request handler can reach: the shared handles `App::build` puts together. Kept
//! apart from `app` so that handlers (ingest, api, console) depend on this small type, not on
//! start-up and shutdown.

use std::sync::Arc;

use stripe_webhook::Verifier;

use crate::decide::expectations::DigestKey;
use crate::decide::Policy;
use crate::ingest::Committer;
use crate::metrics::Metrics;
use crate::store::Store;

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub committer: Committer,
    pub verifier: Arc<Verifier>,
    pub api_token: Option<Arc<str>>,
    pub policy: Policy,
    pub reactions: Arc<crate::react::ReactConfig>,
    /// The Stripe API client, when a key is configured (session creation).
    pub stripe: Option<Arc<crate::stripe_api::StripeClient>>,
    /// The key expected values are digested with (`IDVERDICT_EXPECTATIONS_KEY`).
    pub expectations_key: Option<Arc<DigestKey>>,
    pub metrics: Metrics,
    /// Deliveries no configured secret matched, for `/readyz` and the operator.
    pub signatures: Arc<crate::ingest::SignatureWatch>,
    pub body_limit: usize,
    /// The operator console's settings.
    pub console: Arc<crate::config::ConsoleConfig>,
}
