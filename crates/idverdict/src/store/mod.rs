//! Durable storage behind one type, two backends: SQLite (the embedded default: one file, one
//! writer) and PostgreSQL (several instances share it). Both speak the same SQL through sqlx's
//! `Any` driver; the few places where they differ (row locks, SKIP LOCKED) are marked.
//!
//! Times are stored as integers (unix seconds for Stripe's own `created`, unix milliseconds for
//! ours) so that both backends compare them the same way.

mod apply;
mod console;
mod events;
mod expectations;
mod health;
pub mod notify;
mod open;
mod reactions;
pub mod retention;
pub mod scrub;
mod sessions;
mod stats;
mod sync_state;
mod targets;
mod users;

pub use apply::Tx;
pub use console::{
    AuditRow, ClaimOutcome, ClaimRow, ConsoleSession, NewAudit, NoteRow, Operator, UserFilter,
};
pub use events::{
    is_storable_identifier, ClaimedEvent, EventRow, EventState, InvalidEvent, NewEvent, Receipt,
    Retried, MAX_IDENTIFIER_BYTES,
};
pub use expectations::{CheckRow, DueCheck};
pub use health::NotReady;
pub use open::{checkpoint_periodically, OpenError};
pub use reactions::{
    AttemptResult, ClaimedReaction, Interrupted, Leases, NextState, ReactionAttemptRow,
    ReactionFilter, ReactionRow, Redeliver, INTERRUPTED,
};
pub use sessions::{AttemptRow, HistoryRow};
pub use stats::StoreStats;
pub use targets::{CallbackTarget, Enabled, Requeued, TargetState};
pub(crate) use users::NewReview;
pub use users::ReviewRow;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL (expected sqlite://… or postgres://…)")]
    UnsupportedUrl,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("schema migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot prepare the database file or its directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Backend, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }

    /// The `i`-th (1-based) bind parameter. PostgreSQL numbers them; SQLite gets plain `?`,
    /// because the driver resolves numbered ones with a linear search per parameter, which is
    /// quadratic in the big multi-row statements the batch writers use. A statement built with
    /// this must use it for every parameter (SQLite numbers `?` by position).
    pub fn param(self, i: usize) -> String {
        match self {
            Backend::Sqlite => "?".to_string(),
            Backend::Postgres => format!("${i}"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Hide the password of a database URL before it is shown anywhere.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

/// The storage handle. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// SQLite allows one writer at a time; giving all writes one connection turns lock
    /// contention ("database is locked") into an orderly queue. On PostgreSQL this is the
    /// same pool as `read`.
    write: AnyPool,
    read: AnyPool,
    /// SQLite only: erasures of personal data still owed a checkpoint (see `scrub`).
    erasures: Option<std::sync::Arc<scrub::Erasures>>,
    /// How the latest write went, for readiness (see `health`).
    health: std::sync::Arc<health::WriteHealth>,
}

impl Store {
    /// Connect (creating the SQLite file and its directory if needed). Does not migrate.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let backend = Backend::from_url(url)?;
        match backend {
            Backend::Sqlite => Store::connect_url(backend, &sqlite_url_with_create(url)?).await,
            Backend::Postgres => Store::connect_url(backend, url).await,
        }
    }

    /// Connect to `url` as given (for SQLite, its `mode=` decides whether the file may be
    /// created).
    async fn connect_url(backend: Backend, url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let options = AnyConnectOptions::from_str(url)?;
        match backend {
            Backend::Sqlite => {
                let write = sqlite_pool(1, true)
                    .after_release(|conn, _meta| {
                        Box::pin(async move {
                            // On a full or read-only disk SQLite rolls a failed transaction
                            // back by itself; sqlx's ROLLBACK then fails and it still counts
                            // the transaction as open, so the next "transaction" on this
                            // connection would be a savepoint whose release commits nothing
                            // durable — acknowledged events that never reach the disk. Such a
                            // connection is closed instead of reused. (The trivial query
                            // waits for a rollback still queued from the drop.)
                            conn.execute("SELECT 1").await?;
                            Ok(!sqlx::Connection::is_in_transaction(conn))
                        })
                    })
                    .connect_with(options.clone())
                    .await?;
                let read = sqlite_pool(4, false).connect_with(options).await?;
                Ok(Store {
                    backend,
                    write,
                    read,
                    erasures: Some(Default::default()),
                    health: Default::default(),
                })
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_with(options)
                    .await?;
                Ok(Store {
                    backend,
                    write: pool.clone(),
                    read: pool,
                    erasures: None,
                    health: Default::default(),
                })
            }
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Apply the embedded schema migrations (idempotent; PostgreSQL serialises concurrent
    /// runs with an advisory lock).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrator(self.backend).run(&self.write).await?;
        Ok(())
    }

    /// Readiness: can we reach the database right now?
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    pub async fn close(&self) {
        if self.erasure_pending() {
            if let Err(error) = self.scrub_wal().await {
                tracing::warn!(%error, "could not checkpoint the write-ahead log after an erasure");
            }
        }
        self.write.close().await;
        self.read.close().await;
    }

    /// A write transaction. On SQLite the single writer connection makes it exclusive.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(self.write.begin().await?)
    }
}

fn sqlite_pool(max: u32, writer: bool) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                conn.execute(open::sqlite_pragmas(writer)).await?;
                Ok(())
            })
        })
}

/// The embedded migrations of `backend`.
fn migrator(backend: Backend) -> sqlx::migrate::Migrator {
    match backend {
        Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
        Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
    }
}

/// The file of a `sqlite:` URL (`None` for an in-memory database).
fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| path.into())
}

/// Make sure the SQLite file can be created: add `mode=rwc`, create its directory (0700) and
/// the file itself (0600).
fn sqlite_url_with_create(url: &str) -> Result<String, StoreError> {
    if let Some(path) = sqlite_path(url) {
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                crate::owner_only::create_dir(parent)?;
            }
        }
        // Unless the URL asks for an existing file only (`mode=ro`, `mode=rw`).
        if !url.contains("mode=") || url.contains("mode=rwc") {
            crate::owner_only::prepare_database_files(&path)?;
        }
    }
    Ok(with_mode(url, "rwc"))
}

/// `url` with SQLite's open `mode` (`rw`: the file must exist; `rwc`: create it), unless the
/// URL names one itself.
fn with_mode(url: &str, mode: &str) -> String {
    if url.contains("mode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode={mode}")
    } else {
        format!("{url}?mode={mode}")
    }
}
