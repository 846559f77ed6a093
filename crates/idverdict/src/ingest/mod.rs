//! Ingest: the `POST /webhook` endpoint. Verify the signature on the raw bytes, parse, and make
//! the event durable before Stripe gets its 2xx. Processing happens later, from storage.

pub mod committer;
pub mod signatures;
pub mod webhook;

pub use committer::{CommitError, Committer, IngestLoad};
pub use signatures::{SignatureHealth, SignatureWatch};
