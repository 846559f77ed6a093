//! The emulator's state, in one SQLite file inside the data directory.
//!
//! API objects are stored as JSON documents in one table, ordered by an
//! insertion sequence (which is what "newest first" means for lists, even for
//! objects created in the same second). Deliveries and timers are rows of
//! their own so that the scheduler can pick up where it left off after a restart.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};

use crate::errors::StoreError;

/// File name of the state database inside the data directory.
pub const DB_FILE: &str = "emulator.sqlite3";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Session,
    Report,
    Endpoint,
    Event,
    File,
    FileLink,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Session => "session",
            Kind::Report => "report",
            Kind::Endpoint => "endpoint",
            Kind::Event => "event",
            Kind::File => "file",
            Kind::FileLink => "file_link",
        }
    }
}

/// Why a delivery row exists: the automatic one (retried, counts towards
/// `pending_webhooks`), a chaos duplicate, or a manual resend (single attempt each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryKind {
    Primary,
    Duplicate,
    Resend,
}

impl DeliveryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryKind::Primary => "primary",
            DeliveryKind::Duplicate => "duplicate",
            DeliveryKind::Resend => "resend",
        }
    }
    fn parse(s: &str) -> DeliveryKind {
        match s {
            "duplicate" => DeliveryKind::Duplicate,
            "resend" => DeliveryKind::Resend,
            _ => DeliveryKind::Primary,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: i64,
    pub event_id: String,
    pub endpoint_id: String,
    pub kind: DeliveryKind,
    pub attempts: i64,
    pub first_at_ms: Option<i64>,
    pub next_at_ms: i64,
    /// `pending`, `sending`, `succeeded`, `failed` (gave up) or `abandoned` (endpoint gone or disabled).
    pub state: String,
    /// Held back by the reorder chaos switch until another delivery overtakes it.
    pub held: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub id: i64,
    pub delivery_id: i64,
    pub event_id: String,
    pub endpoint_id: String,
    pub kind: String,
    pub attempt: i64,
    pub at_ms: i64,
    pub status: Option<i64>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub success: bool,
}

#[derive(Debug, Clone)]
pub struct Timer {
    pub id: i64,
    pub due_ms: i64,
    pub kind: String,
    pub payload: String,
}

#[derive(Debug, Clone)]
pub struct IdempotentResponse {
    pub fingerprint: String,
    pub status: u16,
    pub body: String,
}

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS objects (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        id TEXT NOT NULL UNIQUE,
        created INTEGER NOT NULL,
        body TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS objects_kind_seq ON objects(kind, seq)",
    "CREATE TABLE IF NOT EXISTS idempotency (
        key TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        status INTEGER NOT NULL,
        body TEXT NOT NULL,
        created_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL,
        endpoint_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        first_at_ms INTEGER,
        next_at_ms INTEGER NOT NULL,
        state TEXT NOT NULL,
        held INTEGER NOT NULL DEFAULT 0,
        release_after INTEGER)",
    "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(state, next_at_ms)",
    "CREATE TABLE IF NOT EXISTS attempts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        delivery_id INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        endpoint_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        at_ms INTEGER NOT NULL,
        status INTEGER,
        latency_ms INTEGER NOT NULL,
        error TEXT,
        success INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS timers (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        due_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL)",
    // The bytes behind File objects, apart from the objects so that redaction can delete them.
    "CREATE TABLE IF NOT EXISTS file_contents (
        file_id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL,
        content BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS file_contents_session ON file_contents(session_id)",
];

fn delivery_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        id: r.try_get("id")?,
        event_id: r.try_get("event_id")?,
        endpoint_id: r.try_get("endpoint_id")?,
        kind: DeliveryKind::parse(r.try_get::<String, _>("kind")?.as_str()),
        attempts: r.try_get("attempts")?,
        first_at_ms: r.try_get("first_at_ms")?,
        next_at_ms: r.try_get("next_at_ms")?,
        state: r.try_get("state")?,
        held: r.try_get::<i64, _>("held")? != 0,
    })
}

/// Creates the data directory owner-only (0700) and the state file owner-only (0600), whatever
/// the umask: the state holds personal data (metadata, verified outputs, images). SQLite gives
/// its `-wal` and `-shm` files the mode of the database file.
fn prepare_files(dir: &Path, db: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    let existed = dir.is_dir();
    builder.create(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if !existed {
            // The mode given to mkdir is reduced by the umask.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(db)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = existed;
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the state file in `dir`.
    pub async fn open(dir: &Path) -> Result<Store, StoreError> {
        let path = dir.join(DB_FILE);
        prepare_files(dir, &path).map_err(|source| StoreError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
        let opts = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Deleted rows (redacted data, file contents) are overwritten, not left in free pages.
            .pragma("secure_delete", "ON")
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await?;
        for stmt in SCHEMA {
            sqlx::query(stmt).execute(&pool).await?;
        }
        // Attempts that were in flight when the previous process stopped never
        // got an answer: send them again.
        sqlx::query("UPDATE deliveries SET state = 'pending' WHERE state = 'sending'")
            .execute(&pool)
            .await?;
        let store = Store { pool };
        // A stop between recording a delivery's success and counting it down left the count
        // wrong: derive it again from the deliveries.
        store.recount_pending_webhooks(None).await?;
        Ok(store)
    }

    /// Sets `pending_webhooks` of one event (or of every event) to the number of its
    /// automatic deliveries that have not succeeded, which is what the count means.
    pub async fn recount_pending_webhooks(&self, event_id: Option<&str>) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE objects SET body = json_set(body, '$.pending_webhooks', c.n)
             FROM (SELECT o.id AS id, (SELECT COUNT(*) FROM deliveries d
                       WHERE d.event_id = o.id AND d.kind = 'primary' AND d.state != 'succeeded') AS n
                   FROM objects o WHERE o.kind = 'event' AND (?1 IS NULL OR o.id = ?1)) AS c
             WHERE objects.id = c.id AND json_extract(objects.body, '$.pending_webhooks') IS NOT c.n",
        )
        .bind(event_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Moves everything in the write-ahead log into the database file and empties the log, so
    /// that data just erased does not linger in old log frames.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ----- API objects -----

    /// Inserts or replaces an object; an existing object keeps its list position.
    pub async fn put<T: Serialize>(
        &self,
        kind: Kind,
        id: &str,
        created: i64,
        obj: &T,
    ) -> Result<(), StoreError> {
        let body = serde_json::to_string(obj)?;
        sqlx::query("INSERT INTO objects (kind, id, created, body) VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET body = excluded.body")
            .bind(kind.as_str())
            .bind(id)
            .bind(created)
            .bind(body)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        kind: Kind,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        let row = sqlx::query("SELECT body FROM objects WHERE kind = ? AND id = ?")
            .bind(kind.as_str())
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(Some(serde_json::from_str(
                &r.try_get::<String, _>("body")?,
            )?)),
            None => Ok(None),
        }
    }

    /// Every object of a kind, newest first.
    pub async fn all<T: DeserializeOwned>(&self, kind: Kind) -> Result<Vec<T>, StoreError> {
        let rows = sqlx::query("SELECT body FROM objects WHERE kind = ? ORDER BY seq DESC")
            .bind(kind.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(serde_json::from_str(&r.try_get::<String, _>("body")?)?))
            .collect()
    }

    pub async fn delete(&self, kind: Kind, id: &str) -> Result<bool, StoreError> {
        let res = sqlx::query("DELETE FROM objects WHERE kind = ? AND id = ?")
            .bind(kind.as_str())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(res.rows_affected() > 0)
    }

    // ----- idempotency -----

    pub async fn idempotent_get(
        &self,
        key: &str,
    ) -> Result<Option<IdempotentResponse>, StoreError> {
        let row = sqlx::query("SELECT fingerprint, status, body FROM idempotency WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(Some(IdempotentResponse {
                fingerprint: r.try_get("fingerprint")?,
                status: u16::try_from(r.try_get::<i64, _>("status")?).unwrap_or(500),
                body: r.try_get("body")?,
            })),
            None => Ok(None),
        }
    }

    pub async fn idempotent_put(
        &self,
        key: &str,
        resp: &IdempotentResponse,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT OR REPLACE INTO idempotency (key, fingerprint, status, body, created_ms) VALUES (?, ?, ?, ?, ?)")
            .bind(key)
            .bind(&resp.fingerprint)
            .bind(i64::from(resp.status))
            .bind(&resp.body)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stored answers whose body mentions `needle` (a session id), as (key, body).
    pub async fn idempotent_bodies_mentioning(
        &self,
        needle: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT key, body FROM idempotency WHERE instr(body, ?) > 0")
            .bind(needle)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("key")?, r.try_get("body")?)))
            .collect()
    }

    pub async fn idempotent_set_body(&self, key: &str, body: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE idempotency SET body = ? WHERE key = ?")
            .bind(body)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stripe prunes keys after 24 hours; so do we.
    pub async fn idempotent_prune(&self, older_than_ms: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM idempotency WHERE created_ms < ?")
            .bind(older_than_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ----- deliveries -----

    pub async fn insert_delivery(
        &self,
        event_id: &str,
        endpoint_id: &str,
        kind: DeliveryKind,
        next_at_ms: i64,
        held: bool,
    ) -> Result<i64, StoreError> {
        let res = sqlx::query("INSERT INTO deliveries (event_id, endpoint_id, kind, next_at_ms, state, held) VALUES (?, ?, ?, ?, 'pending', ?)")
            .bind(event_id)
            .bind(endpoint_id)
            .bind(kind.as_str())
            .bind(next_at_ms)
            .bind(i64::from(held))
            .execute(&self.pool)
            .await?;
        Ok(res.last_insert_rowid())
    }

    /// A delivery of `endpoint_id` held back by the reorder switch and not yet
    /// paired with the delivery that will overtake it.
    pub async fn unpaired_held_delivery(
        &self,
        endpoint_id: &str,
    ) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT id FROM deliveries WHERE endpoint_id = ? AND held = 1 AND release_after IS NULL AND state = 'pending' AND attempts = 0 ORDER BY id LIMIT 1")
            .bind(endpoint_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("id")?),
            None => None,
        })
    }

    pub async fn pair_held_delivery(
        &self,
        held_id: i64,
        release_after: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE deliveries SET release_after = ? WHERE id = ?")
            .bind(release_after)
            .bind(held_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Lets deliveries held behind `delivery_id` go now that it has been attempted.
    pub async fn release_held_after(
        &self,
        delivery_id: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE deliveries SET next_at_ms = ? WHERE release_after = ? AND state = 'pending' AND attempts = 0 AND next_at_ms > ?")
            .bind(now_ms)
            .bind(delivery_id)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Claims every pending delivery that is due, marking it `sending`.
    pub async fn claim_due_deliveries(&self, now_ms: i64) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query("UPDATE deliveries SET state = 'sending' WHERE state = 'pending' AND next_at_ms <= ? RETURNING *")
            .bind(now_ms)
            .fetch_all(&self.pool)
            .await?;
        let mut v = rows
            .iter()
            .map(delivery_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        v.sort_by_key(|d| (d.next_at_ms, d.id));
        Ok(v)
    }

    pub async fn next_delivery_due(&self) -> Result<Option<i64>, StoreError> {
        let row =
            sqlx::query("SELECT MIN(next_at_ms) AS m FROM deliveries WHERE state = 'pending'")
                .fetch_one(&self.pool)
                .await?;
        Ok(row.try_get("m")?)
    }

    pub async fn finish_attempt(
        &self,
        d: &Delivery,
        state: &str,
        next_at_ms: i64,
        first_at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE deliveries SET attempts = attempts + 1, state = ?, next_at_ms = ?, first_at_ms = COALESCE(first_at_ms, ?) WHERE id = ?")
            .bind(state)
            .bind(next_at_ms)
            .bind(first_at_ms)
            .bind(d.id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_delivery_state(&self, id: i64, state: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE deliveries SET state = ? WHERE id = ?")
            .bind(state)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn deliveries(
        &self,
        event_id: Option<&str>,
        endpoint_id: Option<&str>,
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query("SELECT * FROM deliveries WHERE (?1 IS NULL OR event_id = ?1) AND (?2 IS NULL OR endpoint_id = ?2) ORDER BY id")
            .bind(event_id)
            .bind(endpoint_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    pub async fn insert_attempt(&self, a: &Attempt) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO attempts (delivery_id, event_id, endpoint_id, kind, attempt, at_ms, status, latency_ms, error, success) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(a.delivery_id)
            .bind(&a.event_id)
            .bind(&a.endpoint_id)
            .bind(&a.kind)
            .bind(a.attempt)
            .bind(a.at_ms)
            .bind(a.status)
            .bind(a.latency_ms)
            .bind(&a.error)
            .bind(i64::from(a.success))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The delivery log, newest attempt first.
    pub async fn attempts(
        &self,
        event_id: Option<&str>,
        endpoint_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Attempt>, StoreError> {
        let rows = sqlx::query("SELECT * FROM attempts WHERE (?1 IS NULL OR event_id = ?1) AND (?2 IS NULL OR endpoint_id = ?2) ORDER BY id DESC LIMIT ?3")
            .bind(event_id)
            .bind(endpoint_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Attempt {
                    id: r.try_get("id")?,
                    delivery_id: r.try_get("delivery_id")?,
                    event_id: r.try_get("event_id")?,
                    endpoint_id: r.try_get("endpoint_id")?,
                    kind: r.try_get("kind")?,
                    attempt: r.try_get("attempt")?,
                    at_ms: r.try_get("at_ms")?,
                    status: r.try_get("status")?,
                    latency_ms: r.try_get("latency_ms")?,
                    error: r.try_get("error")?,
                    success: r.try_get::<i64, _>("success")? != 0,
                })
            })
            .collect()
    }

    // ----- file contents -----

    pub async fn put_file_content(
        &self,
        file_id: &str,
        session_id: &str,
        content: &[u8],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT OR REPLACE INTO file_contents (file_id, session_id, content) VALUES (?, ?, ?)",
        )
        .bind(file_id)
        .bind(session_id)
        .bind(content)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The bytes of a file; `None` once redaction deleted them.
    pub async fn file_content(&self, file_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT content FROM file_contents WHERE file_id = ?")
            .bind(file_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("content")?),
            None => None,
        })
    }

    /// Deletes the contents of every file a session collected; returns how many.
    pub async fn delete_file_contents(&self, session_id: &str) -> Result<u64, StoreError> {
        let res = sqlx::query("DELETE FROM file_contents WHERE session_id = ?")
            .bind(session_id)
            .execute(&self.pool)
            .await?;
        Ok(res.rows_affected())
    }

    // ----- timers (processing outcomes, redaction completion) -----

    pub async fn insert_timer(
        &self,
        due_ms: i64,
        kind: &str,
        payload: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO timers (due_ms, kind, payload) VALUES (?, ?, ?)")
            .bind(due_ms)
            .bind(kind)
            .bind(payload)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Removes and returns every timer that is due.
    pub async fn take_due_timers(&self, now_ms: i64) -> Result<Vec<Timer>, StoreError> {
        let rows =
            sqlx::query("DELETE FROM timers WHERE due_ms <= ? RETURNING id, due_ms, kind, payload")
                .bind(now_ms)
                .fetch_all(&self.pool)
                .await?;
        let mut v = rows
            .iter()
            .map(|r| {
                Ok(Timer {
                    id: r.try_get("id")?,
                    due_ms: r.try_get("due_ms")?,
                    kind: r.try_get("kind")?,
                    payload: r.try_get("payload")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        v.sort_by_key(|t| (t.due_ms, t.id));
        Ok(v)
    }

    pub async fn next_timer_due(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT MIN(due_ms) AS m FROM timers")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("m")?)
    }
}
