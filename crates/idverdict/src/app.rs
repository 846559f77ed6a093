//! Start-up and shutdown: connect and migrate storage, start the group committer and the
//! processor, bind the listener, serve until told to stop, then drain in order.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use secrecy::ExposeSecret;
use stripe_webhook::Verifier;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tower_http::catch_panic::CatchPanicLayer;

use crate::api::ApiError;
use crate::config::Config;
use crate::decide::expectations::DigestKey;
use crate::ingest::{webhook, Committer, IngestLoad};
use crate::metrics::Metrics;
use crate::processor::Processor;
use crate::state::AppState;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open storage ({url}): {source}")]
    Storage { url: String, source: StoreError },
    #[error("invalid webhook secret configuration: {0}")]
    Secret(#[from] stripe_webhook::InvalidSecret),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot set up the Stripe API client: {0}")]
    Stripe(#[from] crate::stripe_api::StripeApiError),
    #[error("cannot start the reactions dispatcher: {0}")]
    Reactions(#[from] crate::react::ReactError),
    #[error("cannot keep this instance's id: {0}")]
    InstanceId(crate::config::ConfigError),
    #[error("cannot create the development console operator: {0}")]
    DevOperator(String),
    #[error("invalid expectations key: {0}")]
    ExpectationsKey(#[from] crate::decide::expectations::InvalidKey),
}

/// A built, bound, not yet serving application.
pub struct App {
    listener: TcpListener,
    router: Router,
    store: Store,
    committer_task: tokio::task::JoinHandle<()>,
    processor: Processor,
    dispatcher: crate::react::Dispatcher,
    /// PostgreSQL: the database to listen on and what to wake (`store::notify`).
    listen: Option<(String, crate::store::notify::Wakers)>,
    /// Periodic reconciliation with Stripe's events list: (job, interval, look-back).
    reconciler: Option<(crate::reconcile::Reconciler, Duration, Duration)>,
    /// Webhook counts on their way to `webhook_stats` (the console's overview).
    tally: Arc<crate::metrics::WebhookTally>,
    limits: crate::connections::Limits,
    /// Retention's rules and the committer's load it yields to (`store::retention`).
    retention: (crate::config::RetentionConfig, Arc<IngestLoad>),
}

impl App {
    /// Bind the listen address (port 0 = any free port), connect to storage and apply
    /// migrations.
    pub async fn build(config: &Config) -> Result<App, StartError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen,
                    source,
                })?;
        App::build_on(config, listener).await
    }

    /// [`App::build`] on a listener the caller bound (`serve` binds first, so that a port in
    /// use is reported before anything is created or started).
    pub async fn build_on(config: &Config, listener: TcpListener) -> Result<App, StartError> {
        let storage_error = |source| StartError::Storage {
            url: crate::store::redact_url(&config.database_url),
            source,
        };
        let store = Store::connect(&config.database_url)
            .await
            .map_err(storage_error)?;
        store.migrate().await.map_err(storage_error)?;

        let verifier = Verifier::new(config.webhook_secrets.iter().map(|s| s.expose_secret()))?
            .with_tolerance(config.tolerance_secs)
            .with_future_skew(config.future_skew_secs);
        let wake = Arc::new(Notify::new());
        let load = Arc::new(IngestLoad::default());
        let (committer, committer_task) = Committer::spawn(
            store.clone(),
            wake.clone(),
            load.clone(),
            // Three quarters of the request deadline: a refusal, not a timeout.
            Duration::from_secs(config.request_timeout_secs) * 3 / 4,
        );
        let policy = config.policy.clone();
        let reactions = Arc::new(config.reactions.clone());
        let stripe = config
            .stripe
            .as_ref()
            .map(|s| crate::stripe_api::StripeClient::new(s).map(Arc::new))
            .transpose()?;
        let reconciler = stripe
            .as_ref()
            .zip(config.stripe.as_ref().filter(|s| s.reconcile_in_serve))
            .map(|(client, s)| {
                (
                    crate::reconcile::Reconciler::new(store.clone(), client.clone())
                        .with_wake(wake.clone()),
                    s.reconcile_interval,
                    s.reconcile_since,
                )
            });
        let dispatcher = crate::react::Dispatcher::new(store.clone(), config.reactions.clone())
            .await?
            .with_instance(config.instance_id().map_err(StartError::InstanceId)?)
            .with_poll_interval(config.poll_interval);
        // PostgreSQL: other instances (and CLI commands) tell this one about new work.
        let listen = (store.backend() == crate::store::Backend::Postgres).then(|| {
            (
                config.database_url.clone(),
                crate::store::notify::Wakers {
                    events: wake.clone(),
                    reactions: dispatcher.waker(),
                },
            )
        });
        if let Some(dev) = &config.dev_operator {
            crate::console::passwords::ensure_dev_operator(&store, dev)
                .await
                .map_err(StartError::DevOperator)?;
        }
        let metrics = Metrics::install(&config.webhook_path);
        let tally = metrics.tally.clone();
        let expectations_key = config
            .expectations_key
            .as_ref()
            .map(|k| DigestKey::new(k.expose_secret()).map(Arc::new))
            .transpose()?;
        let state = AppState {
            store: store.clone(),
            committer,
            verifier: Arc::new(verifier),
            api_token: config
                .api_token
                .as_ref()
                .map(|t| Arc::from(t.expose_secret())),
            policy: policy.clone(),
            reactions: reactions.clone(),
            stripe: stripe.clone(),
            expectations_key: expectations_key.clone(),
            metrics,
            signatures: Arc::default(),
            body_limit: config.body_limit_bytes,
            console: Arc::new(config.console.clone()),
        };
        let router = router(state, config);
        let fd_limit = crate::connections::raise_fd_limit();
        let limits = crate::connections::Limits {
            header_read_timeout: Duration::from_secs(config.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(config.keepalive_timeout_secs),
            max_connections: crate::connections::max_connections(
                config.max_connections,
                fd_limit,
                config.reactions.delivery.workers,
            ),
        };
        tracing::debug!(
            ?fd_limit,
            max_connections = limits.max_connections,
            "connection limits"
        );
        Ok(App {
            listener,
            router,
            store: store.clone(),
            committer_task,
            processor: Processor::new(
                store,
                policy,
                reactions,
                wake,
                load.clone(),
                dispatcher.waker(),
            )
            .with_poll_interval(config.poll_interval)
            .with_stripe(stripe.clone())
            .with_expectations_key(expectations_key),
            dispatcher,
            listen,
            reconciler,
            tally,
            limits,
            retention: (config.retention, load),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serve until `shutdown` resolves. Then: stop accepting, let in-flight requests finish,
    /// commit every event already accepted, let the processor finish its batch, close storage.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let (stop_processor, processor_stopped) = watch::channel(false);
        let processor = tokio::spawn(self.processor.run(processor_stopped.clone()));
        let reconcile = self.reconciler.map(|(job, every, since)| {
            tokio::spawn(job.run_periodically(every, since, processor_stopped.clone()))
        });
        let flusher = tokio::spawn(self.tally.clone().flush_periodically(
            self.store.clone(),
            TALLY_FLUSH_EVERY,
            processor_stopped.clone(),
        ));
        let scrubber = tokio::spawn(crate::store::scrub::run(
            self.store.clone(),
            processor_stopped.clone(),
        ));
        let (rules, load) = self.retention;
        let retention = tokio::spawn(crate::store::retention::run(
            self.store.clone(),
            rules,
            load,
            processor_stopped.clone(),
        ));
        let checkpointer = tokio::spawn(crate::store::checkpoint_periodically(
            self.store.clone(),
            processor_stopped.clone(),
        ));
        let gauges = tokio::spawn(crate::metrics::refresh_periodically(
            self.store.clone(),
            processor_stopped.clone(),
        ));
        let listener = self.listen.map(|(url, wakers)| {
            tokio::spawn(crate::store::notify::forward(
                url,
                wakers,
                processor_stopped.clone(),
            ))
        });
        let dispatcher = tokio::spawn(self.dispatcher.run(processor_stopped));
        crate::connections::serve(self.listener, self.router, self.limits, shutdown).await;
        // The router (and with it every Committer handle) is gone: the committer drains its
        // queue and ends.
        let _ = self.committer_task.await;
        let _ = stop_processor.send(true);
        let _ = processor.await;
        let _ = dispatcher.await;
        let _ = scrubber.await;
        let _ = retention.await;
        let _ = checkpointer.await;
        let _ = gauges.await;
        if let Some(listener) = listener {
            let _ = listener.await;
        }
        if let Some(reconcile) = reconcile {
            let _ = reconcile.await;
        }
        let _ = flusher.await;
        self.store.close().await;
        Ok(())
    }
}

/// How often webhook counts go from memory to the database.
const TALLY_FLUSH_EVERY: Duration = Duration::from_secs(2);

/// Every route, with answers in the API's error shape for what no handler answers: an
/// unknown path (404), a known path with the wrong method (405), a request over the time
/// limit (408) and a panicking handler (500).
fn router(state: AppState, config: &Config) -> Router {
    let body_limit = config.body_limit_bytes;
    let webhook = Router::new()
        .route(&config.webhook_path, post(webhook::receive))
        .layer(DefaultBodyLimit::max(config.body_limit_bytes));
    let limit = Duration::from_secs(config.request_timeout_secs);
    let console = if config.console.enabled {
        crate::console::routes(crate::console::image_origin(config))
    } else {
        Router::new()
    };
    Router::new()
        .merge(webhook)
        .merge(crate::api::app_routes(state.clone()))
        .merge(crate::api::ops_routes())
        .merge(console)
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .fallback(|| async { ApiError::no_route() })
        .layer(axum::middleware::from_fn(
            move |request: Request, next: Next| refuse_oversized(body_limit, request, next),
        ))
        .layer(axum::middleware::from_fn(
            move |request: Request, next: Next| time_limit(limit, request, next),
        ))
        .layer(CatchPanicLayer::custom(|_panic| {
            tracing::error!("a request handler panicked");
            ApiError::internal().into_response()
        }))
        .layer(axum::middleware::from_fn(track_duration))
        .with_state(state)
}

/// A body declared larger than the limit is refused before a byte of it is read: a client
/// that sent `Expect: 100-continue` gets the 413 instead of the go-ahead, and nobody uploads
/// megabytes only to be told they were too many.
async fn refuse_oversized(limit: usize, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return ApiError::too_large(limit).into_response();
    }
    next.run(request).await
}

/// Every answer's duration, by route template (bounded label values: an unknown path counts
/// as `unmatched`) and status; outermost, so timeouts and panics are counted too.
async fn track_duration(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    crate::metrics::http_request(route, response.status().as_u16(), started.elapsed());
    response
}

/// Abandon a request that takes longer than `limit`.
async fn time_limit(limit: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::timed_out().into_response(),
    }
}
