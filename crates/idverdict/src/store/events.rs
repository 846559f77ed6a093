//! The `events` table: the durable inbox. Rows are written before Stripe gets its 2xx and are
//! claimed by the processor afterwards.

use sqlx::Row;
use stripe_webhook::{Event, EventType};

use super::{Backend, Store, StoreError, Tx};

/// An event about to be recorded.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: String,
    pub event_type: String,
    pub object_id: Option<String>,
    pub created: i64,
    pub livemode: bool,
    pub api_version: Option<String>,
    pub payload: Vec<u8>,
}

impl NewEvent {
    /// The row for `event`, whose bytes are `payload` (the signed body of a webhook, or the
    /// event as Stripe's API listed it).
    pub fn from_event(event: &Event, payload: Vec<u8>) -> NewEvent {
        NewEvent {
            id: event.id.clone(),
            event_type: event.type_.as_str().to_string(),
            object_id: event.data.object_id().map(str::to_string),
            created: event.created,
            livemode: event.livemode,
            api_version: event.api_version.clone(),
            payload,
        }
    }
}

/// What recording an event came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// Stored now.
    New,
    /// An `evt_…` stored before: nothing changed.
    Duplicate,
}

/// An unprocessed event taken by one processor (row-locked until its transaction ends).
#[derive(Debug, Clone)]
pub struct ClaimedEvent {
    pub seq: i64,
    pub id: String,
    pub payload: Option<Vec<u8>>,
}

impl Store {
    /// Record a batch of events with ONE statement in ONE transaction (group commit): one
    /// round trip and one fsync for many deliveries. The result says, per event, whether it
    /// was new or an `evt_…` seen before. Either the whole batch is durable or the call fails.
    pub async fn insert_events(
        &self,
        batch: &[NewEvent],
        received_at_ms: i64,
    ) -> Result<Vec<Receipt>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        // Rows in id order: two instances committing overlapping batches then take the
        // unique-index locks in the same order and cannot deadlock each other.
        let mut order: Vec<&NewEvent> = batch.iter().collect();
        order.sort_by(|a, b| a.id.cmp(&b.id));
        let mut sql = String::from(
            "INSERT INTO events (id, type, object_id, created, livemode, api_version, payload, received_at) VALUES ",
        );
        sql.push_str(&super::apply::values(self.backend, order.len(), 8));
        // A second copy of an id inside the batch conflicts with the first and is skipped.
        sql.push_str(" ON CONFLICT (id) DO NOTHING RETURNING id");
        let mut query = sqlx::query(&sql);
        for event in &order {
            query = query
                .bind(&event.id)
                .bind(&event.event_type)
                .bind(&event.object_id)
                .bind(event.created)
                .bind(i64::from(event.livemode))
                .bind(&event.api_version)
                .bind(&event.payload)
                .bind(received_at_ms);
        }
        let mut tx = self.begin().await?;
        let rows = query.fetch_all(&mut *tx).await?;
        if !rows.is_empty() {
            self.notify(&mut tx, super::notify::EVENTS).await?;
        }
        tx.commit().await?;
        let mut inserted: std::collections::HashSet<String> = rows
            .iter()
            .map(|r| r.try_get::<String, _>("id"))
            .collect::<Result<_, _>>()?;
        // The first occurrence of an id in the caller's order is the one that was stored.
        Ok(batch
            .iter()
            .map(|e| {
                if inserted.remove(&e.id) {
                    Receipt::New
                } else {
                    Receipt::Duplicate
                }
            })
            .collect())
    }

    /// Take up to `limit` unprocessed events, oldest first, inside the caller's transaction.
    /// PostgreSQL: `FOR UPDATE SKIP LOCKED` row locks let several instances take disjoint
    /// batches without waiting on each other, and vanish with the connection if an instance
    /// dies, so nothing stays claimed by a crashed process. SQLite: the single writer
    /// connection already makes the transaction exclusive.
    pub(crate) async fn claim_events(
        &self,
        tx: &mut Tx,
        limit: i64,
        up_to_seq: Option<i64>,
    ) -> Result<Vec<ClaimedEvent>, StoreError> {
        let skip_locked = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        // `up_to_seq`: fetch-latest looked at the events up to here before the transaction;
        // later arrivals wait for the next batch (and their own fetch).
        let sql = format!(
            "SELECT seq, id, payload FROM events WHERE processed_at IS NULL AND seq <= {} ORDER BY seq LIMIT {}{skip_locked}",
            self.backend.param(1),
            self.backend.param(2)
        );
        let rows = sqlx::query(&sql)
            .bind(up_to_seq.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(&mut **tx)
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(ClaimedEvent {
                    seq: row.try_get("seq")?,
                    id: row.try_get("id")?,
                    payload: row.try_get("payload")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// (all events, unprocessed events): a full count, for tests and tools, not for metrics.
    pub async fn event_counts(&self) -> Result<(i64, i64), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS total, COALESCE(SUM(CASE WHEN processed_at IS NULL THEN 1 ELSE 0 END), 0) AS pending FROM events",
        )
        .fetch_one(&self.read)
        .await?;
        Ok((row.try_get("total")?, row.try_get("pending")?))
    }

    /// Peek (read-only) at the next `limit` unprocessed events: the identity sessions they
    /// are about, and the last `seq` looked at — for fetch-latest before the transaction.
    pub async fn peek_unprocessed(
        &self,
        limit: i64,
    ) -> Result<(Vec<String>, Option<i64>), StoreError> {
        let rows = sqlx::query(
            "SELECT seq, type, object_id FROM events WHERE processed_at IS NULL ORDER BY seq LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        let mut ids = Vec::new();
        let mut last = None;
        for row in rows {
            let seq: i64 = row.try_get("seq")?;
            let event_type = EventType::from(row.try_get::<String, _>("type")?);
            let object: Option<String> = row.try_get("object_id")?;
            last = Some(seq);
            if let Some(id) = object.filter(|_| event_type.is_verification_session()) {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        Ok((ids, last))
    }
}
