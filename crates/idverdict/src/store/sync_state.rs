//! The `sync_state` table: small named values kept between runs (the reconciliation cursor
//! and the last run's result).

use sqlx::Row;

use super::{Store, StoreError};

impl Store {
    /// The value stored under `name`, if any.
    pub async fn sync_state_get(&self, name: &str) -> Result<Option<String>, StoreError> {
        let sql = format!(
            "SELECT value FROM sync_state WHERE name = {}",
            self.backend.param(1)
        );
        let row = sqlx::query(&sql)
            .bind(name)
            .fetch_optional(&self.read)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("value")?),
            None => None,
        })
    }

    /// Raise the integer stored under `name` to `value` (never lowers it), atomically, so two
    /// instances reconciling at once cannot move a cursor backwards.
    pub async fn sync_state_raise(&self, name: &str, value: i64) -> Result<(), StoreError> {
        let p = |i| self.backend.param(i);
        // The comparison is done on the integer value; both backends cast TEXT → BIGINT.
        let sql = format!(
            "INSERT INTO sync_state (name, value, updated_at) VALUES ({}, {}, {}) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at \
             WHERE CAST(sync_state.value AS BIGINT) < CAST(excluded.value AS BIGINT)",
            p(1),
            p(2),
            p(3)
        );
        sqlx::query(&sql)
            .bind(name)
            .bind(value.to_string())
            .bind(crate::clock::now_ms())
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Store `value` under `name`, replacing what was there.
    pub async fn sync_state_set(&self, name: &str, value: &str) -> Result<(), StoreError> {
        let p = |i| self.backend.param(i);
        let sql = format!(
            "INSERT INTO sync_state (name, value, updated_at) VALUES ({}, {}, {}) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            p(1),
            p(2),
            p(3)
        );
        sqlx::query(&sql)
            .bind(name)
            .bind(value)
            .bind(crate::clock::now_ms())
            .execute(&self.write)
            .await?;
        Ok(())
    }
}
