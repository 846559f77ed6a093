//! Opening a database that must already exist. Only `serve` and `migrate` create and migrate
//! one; every other command works on the database a `serve` uses, and a wrong directory or URL
//! must be an error, not a fresh empty database that answers "nothing here".
//!
//! Also how every SQLite connection is set up ([`sqlite_pragmas`]) and the checkpointer that
//! keeps write-ahead-log checkpoints off the acknowledgement path ([`checkpoint_periodically`]).

use std::path::PathBuf;

use sqlx::Row;

use super::{sqlite_path, with_mode, Backend, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// SQLite: the file is not there.
    #[error("{} does not exist", path.display())]
    Missing { path: PathBuf },
    /// The database exists but idverdict's schema was never applied to it.
    #[error("{url} is not an initialised idverdict database (no idverdict schema)")]
    NotInitialised { url: String },
    /// The schema is older than this binary (`applied` < `expected`) or newer.
    #[error("{url} is at schema version {applied}, this idverdict expects {expected}")]
    SchemaVersion {
        url: String,
        applied: i64,
        expected: i64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Connect to an existing, initialised idverdict database, creating nothing and applying
    /// no migrations.
    pub async fn open_existing(url: &str) -> Result<Store, OpenError> {
        let shown = super::redact_url(url);
        let store = match Backend::from_url(url)? {
            Backend::Sqlite => {
                let path = sqlite_path(url);
                if !path.as_ref().is_some_and(|p| p.is_file()) {
                    return Err(OpenError::Missing {
                        path: path.unwrap_or_else(|| url.into()),
                    });
                }
                Store::connect_url(Backend::Sqlite, &with_mode(url, "rw")).await?
            }
            Backend::Postgres => Store::connect_url(Backend::Postgres, url).await?,
        };
        match store.applied_schema_version().await {
            Ok(Some(applied)) => {
                let expected = store.embedded_schema_version();
                if applied == expected {
                    Ok(store)
                } else {
                    store.close().await;
                    Err(OpenError::SchemaVersion {
                        url: shown,
                        applied,
                        expected,
                    })
                }
            }
            Ok(None) => {
                store.close().await;
                Err(OpenError::NotInitialised { url: shown })
            }
            Err(e) => {
                store.close().await;
                Err(e.into())
            }
        }
    }

    /// The newest migration applied, `None` when the migrations table does not exist.
    async fn applied_schema_version(&self) -> Result<Option<i64>, StoreError> {
        let exists = match self.backend {
            Backend::Sqlite => {
                "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
            }
            Backend::Postgres => {
                "SELECT COUNT(*) AS n FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'"
            }
        };
        let n: i64 = sqlx::query(exists)
            .fetch_one(&self.read)
            .await?
            .try_get("n")?;
        if n == 0 {
            return Ok(None);
        }
        let row =
            sqlx::query("SELECT MAX(version) AS v FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_one(&self.read)
                .await?;
        Ok(row.try_get::<Option<i64>, _>("v")?)
    }

    fn embedded_schema_version(&self) -> i64 {
        super::migrator(self.backend)
            .iter()
            .map(|m| m.version)
            .max()
            .unwrap_or_default()
    }
}

impl Store {
    /// SQLite: write a consistent copy of the database to `target` (`VACUUM INTO`), while
    /// `serve` keeps running; the copy is owner-only. `target` must not exist yet (SQLite refuses to overwrite).
    pub async fn backup_into(&self, target: &std::path::Path) -> Result<(), StoreError> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::Corrupt(
                "online backup is for SQLite; back PostgreSQL up with pg_dump".into(),
            ));
        }
        sqlx::query("VACUUM INTO $1")
            .bind(target.display().to_string())
            .execute(&self.read)
            .await?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(target, std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(())
    }
}

/// Set on every SQLite connection as it opens.
///
/// - `auto_vacuum = INCREMENTAL` first: it only takes effect on a new, empty file (before the
///   first table), where it lets retention give freed pages back (`store::retention`).
/// - WAL lets readers work beside the writer; `synchronous = FULL` makes every commit durable
///   before we acknowledge (the group committer amortises the fsync); `secure_delete`
///   overwrites what is deleted (redacted data) instead of leaving it in free pages.
/// - `wal_autocheckpoint = 0`: a checkpoint is never run by the committing connection (it
///   would copy the log into the database, with its own fsyncs, while deliveries wait for that
///   commit); [`checkpoint_periodically`] runs them beside the writer instead, finishing on
///   the writer between transactions when the log has grown.
///   `journal_size_limit` trims the log file after a checkpoint reset it.
/// - `cache_size`: the writer's page cache (8 MiB, four times the default) holds more of the
///   interior pages of the indexes the committer and the processor write (the random `evt_…`
///   key above all) once the store holds millions of events. Readers keep the default 2 MB, so
///   memory stays bounded (the RSS target is 40 MiB: 16 MiB measured +16 MiB of RSS and a
///   higher page-cache cost per commit, see bench/README.md).
pub(super) fn sqlite_pragmas(writer: bool) -> &'static str {
    if writer {
        "PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
         PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON; \
         PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864; \
         PRAGMA cache_size = -8192; PRAGMA temp_store = MEMORY;"
    } else {
        "PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
         PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON; \
         PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864;"
    }
}

/// How often the checkpointer copies the write-ahead log into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);
/// Log frames (4 KiB pages) beyond which the checkpointer finishes on the writer connection:
/// smaller catch-ups hold the writer for less at a time (1024 measured better than 4096 in
/// every column of bench/README.md, run D).
const CATCH_UP_FRAMES: i64 = 1024;

/// SQLite: every [`CHECKPOINT_EVERY`], a `PASSIVE` checkpoint on a reader connection, until
/// `shutdown`. It never takes the write lock, so the committer keeps committing while it
/// copies. But under continuous writes it never quite catches up — the writer appends while
/// it copies — and SQLite starts the log over only after a checkpoint that copied all of it,
/// so the log would grow without end (and every page read searches a longer log index). So
/// when the log holds more than [`CATCH_UP_FRAMES`], a second passive checkpoint runs on the
/// writer connection, queued like any write transaction: no commit is in flight then, the
/// frames left to copy are the few written since the first pass, and it completes, so the
/// next commit starts the log over. No-op on PostgreSQL.
pub async fn checkpoint_periodically(
    store: Store,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    if store.backend != Backend::Sqlite {
        return;
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(CHECKPOINT_EVERY) => {}
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    return;
                }
            }
        }
        match store.checkpoint(&store.read).await {
            Ok(frames) if frames > CATCH_UP_FRAMES => {
                if let Err(error) = store.checkpoint(&store.write).await {
                    tracing::debug!(%error, "write-ahead log catch-up checkpoint failed");
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::debug!(%error, "write-ahead log checkpoint failed; trying again")
            }
        }
    }
}

impl Store {
    /// One `PASSIVE` checkpoint on `pool`; returns the frames in the log.
    async fn checkpoint(&self, pool: &sqlx::AnyPool) -> Result<i64, StoreError> {
        let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(pool)
            .await?;
        Ok(row.try_get(1)?)
    }
}
