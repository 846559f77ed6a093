//! Reactions: what idverdict does about a decision — an HTTP callback to the app (Standard
//! Webhooks), an email to the end user, a message on the bus (NATS).
//!
//! The processor turns each [`Decision`](crate::decide::Decision) into [`NewReaction`]s with
//! [`plan`] and writes them to the outbox (`reactions` table) in the decision's own
//! transaction; the [`Dispatcher`] delivers them afterwards, at least once, with the reaction
//! id as the idempotency key the receiver deduplicates on (`webhook-id`, `Message-ID`,
//! `Nats-Msg-Id`): exactly once in effect. Failed attempts are retried on a schedule with jitter; after the last one the
//! reaction is `exhausted`, kept, and can be redelivered by the operator.
//!
//! One job per module: [`plan`] (fan-out), [`dispatcher`] (claim, deliver, record),
//! [`retry`] (when again), [`callback`] (signing and HTTP), [`email`] (templates and SMTP),
//! [`nats`] (the bus), [`ssrf`] (target guard), [`redaction`] (what a redaction does to
//! reactions already written). Their settings are loaded and checked with the rest in
//! `crate::config::reactions`, re-exported here as `config`.

pub mod callback;
pub use crate::config::reactions as config;
pub mod dispatcher;
pub mod email;
pub mod nats;
pub mod plan;
pub mod redaction;
pub mod retry;
pub mod ssrf;

use std::time::Duration;

pub use config::ReactConfig;
pub use dispatcher::Dispatcher;
pub use plan::{
    locale, masked_target, plan, plan_for, recipient, NewReaction, ReactionKind, ReactionState,
};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ReactError {
    #[error("invalid reactions configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot build the HTTP client: {0}")]
    Http(reqwest::Error),
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// The receiver has it (HTTP 2xx, SMTP accepted, the JetStream stream acknowledged — or,
    /// with core NATS, the publish flushed to the server).
    Delivered {
        status: Option<u16>,
    },
    Failed(Failure),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// HTTP status or SMTP reply code, when there was one.
    pub status: Option<u16>,
    /// Why, without payloads, addresses or secrets (it is stored and logged).
    pub error: String,
    /// The receiver asked for this much patience.
    pub retry_after: Option<Duration>,
    /// Retrying cannot help (a refused target, a rejected recipient): exhaust now.
    pub permanent: bool,
}
