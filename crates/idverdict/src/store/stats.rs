//! The numbers behind the store-backed metrics. Each query reads an indexed subset (the
//! unprocessed events, the exhausted reactions, the users in review), never a whole table, so
//! refreshing them stays cheap however much history is kept.

use sqlx::Row;

use super::{Backend, Store, StoreError};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Unprocessed events the processor will take (quarantined ones are not).
    pub pending_events: i64,
    pub quarantined_events: i64,
    /// `received_at` (unix ms) of the oldest unprocessed event.
    pub oldest_pending_received_ms: Option<i64>,
    pub exhausted_reactions: i64,
    /// Users in `needs_review`.
    pub review_queue: i64,
    /// `state_since` (unix ms) of the longest-waiting of them.
    pub oldest_review_since_ms: Option<i64>,
    /// Callback URLs paused now, and the reactions queued for them.
    pub paused_callback_targets: i64,
    pub held_reactions: i64,
    /// The database's size; `None` when it cannot be told.
    pub size_bytes: Option<i64>,
    /// `received_at` (unix ms) of the oldest event whose raw payload is still kept.
    pub oldest_payload_received_ms: Option<i64>,
}

impl Store {
    pub async fn stats(&self) -> Result<StoreStats, StoreError> {
        let pending = sqlx::query("SELECT COUNT(*) AS n FROM events WHERE processed_at IS NULL")
            .fetch_one(&self.read)
            .await?;
        let quarantined = self.quarantined_events().await?;
        let oldest = sqlx::query(
            "SELECT received_at FROM events WHERE processed_at IS NULL AND quarantined_at IS NULL ORDER BY seq LIMIT 1",
        )
        .fetch_optional(&self.read)
        .await?;
        let exhausted =
            sqlx::query("SELECT COUNT(*) AS n FROM reactions WHERE state = 'exhausted'")
                .fetch_one(&self.read)
                .await?;
        let review = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(state_since) AS since FROM users WHERE state = 'needs_review'",
        )
        .fetch_one(&self.read)
        .await?;
        let paused =
            sqlx::query("SELECT COUNT(*) AS n FROM callback_targets WHERE paused_at IS NOT NULL")
                .fetch_one(&self.read)
                .await?;
        // Only when something is paused: the reactions of the paused URLs, by the due index.
        let paused_callback_targets: i64 = paused.try_get("n")?;
        let held_reactions: i64 = if paused_callback_targets == 0 {
            0
        } else {
            let sql = format!(
                "SELECT COUNT(*) AS n FROM reactions WHERE state IN ('pending', 'sending') \
                 AND NOT {}",
                super::reactions::NOT_PAUSED
            );
            sqlx::query(&sql)
                .fetch_one(&self.read)
                .await?
                .try_get("n")?
        };
        Ok(StoreStats {
            paused_callback_targets,
            held_reactions,
            pending_events: pending.try_get::<i64, _>("n")? - quarantined,
            quarantined_events: quarantined,
            oldest_pending_received_ms: oldest.map(|r| r.try_get("received_at")).transpose()?,
            exhausted_reactions: exhausted.try_get("n")?,
            review_queue: review.try_get("n")?,
            oldest_review_since_ms: review.try_get("since")?,
            size_bytes: self.size_bytes().await?,
            oldest_payload_received_ms: self.oldest_payload_ms().await?,
        })
    }

    pub async fn size_bytes(&self) -> Result<Option<i64>, StoreError> {
        Ok(match self.backend {
            // The database file's pages (the write-ahead log is bounded by checkpoints).
            Backend::Sqlite => {
                let row = sqlx::query(
                    "SELECT page_count * page_size AS n FROM pragma_page_count(), pragma_page_size()",
                )
                .fetch_one(&self.read)
                .await?;
                Some(row.try_get("n")?)
            }
            Backend::Postgres => {
                let row = sqlx::query("SELECT pg_database_size(current_database()) AS n")
                    .fetch_one(&self.read)
                    .await?;
                Some(row.try_get("n")?)
            }
        })
    }
}
