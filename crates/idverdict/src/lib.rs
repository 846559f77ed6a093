//! idverdict: turn Stripe Identity verification outcomes into reliable reactions.
//!
//! The service is a pipeline; each stage is a module:
//! - [`ingest`]: `POST /webhook` — verify, parse, and durably record (group commit) before the 2xx.
//! - [`store`]: SQLite or PostgreSQL behind one type.
//! - [`processor`] + [`decide`]: apply each stored event exactly once to its session record,
//!   order-independently, and derive the outcome and next step.
//! - [`api`]: the app's read API, health and metrics.
//! - [`console`]: the operator console (`/console`): review queue, cases, audit log.
//!
//! [`app`] wires the stages together; [`config`] loads and validates settings.

pub mod api;
pub mod app;
pub mod clock;
pub mod config;
pub mod connections;
pub mod console;
pub mod data_dir;
pub mod decide;
pub mod ingest;
pub mod metrics;
pub mod owner_only;
pub mod processor;
pub mod react;
pub mod reconcile;
pub mod state;
pub mod store;
pub mod stripe_api;
pub mod synth;

pub use app::{App, StartError};
pub use config::Config;
pub use state::AppState;
