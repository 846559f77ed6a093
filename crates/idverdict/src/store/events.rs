//! The `events` table: the durable inbox. Rows are written before Stripe gets its 2xx and are
//! claimed by the processor afterwards.
//!
//! Beside the exact payload each row keeps the event's facts (`facts`, JSON: what the rules
//! use, nothing personal) and the session's `metadata` (personal): taken once at ingest, they
//! are all the processor reads. A redaction drops `payload` and `metadata`; the facts stay, so
//! an event applied after its session's redaction still counts.
//!
//! An event that cannot be applied (the database refuses what it would write) is quarantined:
//! `quarantined_at` and `quarantine_error` are set, the processor skips it, an operator puts
//! it back with [`Store::retry_event`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use stripe_webhook::{ErrorCode, Event, EventType, RedactionStatus, SessionStatus, SessionType};

use super::{Backend, Store, StoreError, Tx};
use crate::decide::{EventFacts, SessionFacts, Subject};

/// Identifiers longer than this are refused: Stripe's are short, and a PostgreSQL B-tree
/// cannot index a key of more than about 2.7 kB (such an insert fails whatever is retried).
pub const MAX_IDENTIFIER_BYTES: usize = 255;

/// Why an event cannot be recorded (a 400 at the edge: retrying cannot help).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEvent {
    #[error(
        "the event's {0} is not a storable identifier (empty, control characters, or over 255 bytes)"
    )]
    Identifier(&'static str),
}

impl InvalidEvent {
    pub fn code(&self) -> &'static str {
        "invalid_identifier"
    }
}

/// Whether `id` can be stored and indexed as an identifier on both backends: not empty, no
/// control characters (U+0000 above all, which PostgreSQL cannot hold), at most
/// [`MAX_IDENTIFIER_BYTES`].
pub fn is_storable_identifier(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_IDENTIFIER_BYTES && !id.chars().any(char::is_control)
}

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
    /// What the rules need, taken from the parsed event at ingest. `None` only for rows
    /// written the way versions before facts were kept wrote them: the processor then parses
    /// the payload.
    pub facts: Option<EventFacts>,
}

impl NewEvent {
    /// The row for `event`, whose bytes are `payload` (the signed body of a webhook, or the
    /// event as Stripe's API listed it). Refuses identifiers no backend can store.
    pub fn from_event(event: &Event, payload: Vec<u8>) -> Result<NewEvent, InvalidEvent> {
        let object_id = event.data.object_id();
        for (field, value) in [
            ("id", Some(event.id.as_str())),
            ("type", Some(event.type_.as_str())),
            ("api_version", event.api_version.as_deref()),
            ("data.object.id", object_id),
        ] {
            if let Some(value) = value {
                if !is_storable_identifier(value) {
                    return Err(InvalidEvent::Identifier(field));
                }
            }
        }
        Ok(NewEvent {
            id: event.id.clone(),
            event_type: event.type_.as_str().to_string(),
            object_id: object_id.map(str::to_string),
            created: event.created,
            livemode: event.livemode,
            api_version: event.api_version.clone(),
            payload,
            facts: Some(EventFacts::of(event)),
        })
    }
}

/// `events.facts`: what an event is about, as stored (the session id is `object_id`, the
/// event's id, type and `created` have their own columns, the metadata its own column).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum StoredFacts {
    Session {
        status: SessionStatus,
        #[serde(default)]
        session_type: Option<SessionType>,
        livemode: bool,
        created: i64,
        #[serde(default)]
        client_reference_id: Option<String>,
        #[serde(default)]
        last_error_code: Option<ErrorCode>,
        #[serde(default)]
        last_error_reason: Option<String>,
        #[serde(default)]
        report_id: Option<String>,
        #[serde(default)]
        redaction_status: Option<RedactionStatus>,
    },
    NotIdentity,
    BadSessionObject,
}

/// (`facts`, `metadata`) columns of an event.
fn encode_facts(facts: &EventFacts) -> Result<(String, Option<String>), StoreError> {
    let (stored, metadata) = match &facts.subject {
        Subject::Session(s) => (
            StoredFacts::Session {
                status: s.status.clone(),
                session_type: s.session_type.clone(),
                livemode: s.livemode,
                created: s.created,
                client_reference_id: s.client_reference_id.clone(),
                last_error_code: s.last_error_code.clone(),
                last_error_reason: s.last_error_reason.clone(),
                report_id: s.report_id.clone(),
                redaction_status: s.redaction_status.clone(),
            },
            (!s.metadata.is_empty()).then_some(&s.metadata),
        ),
        Subject::NotIdentity => (StoredFacts::NotIdentity, None),
        Subject::BadSessionObject => (StoredFacts::BadSessionObject, None),
    };
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(e.to_string());
    Ok((
        serde_json::to_string(&stored).map_err(corrupt)?,
        metadata
            .map(serde_json::to_string)
            .transpose()
            .map_err(corrupt)?,
    ))
}

/// The facts of a stored event from its columns.
fn decode_facts(
    id: String,
    event_type: String,
    created: i64,
    object_id: Option<String>,
    facts: &str,
    metadata: Option<&str>,
) -> Result<EventFacts, StoreError> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("event facts: {e}"));
    let subject = match serde_json::from_str::<StoredFacts>(facts).map_err(corrupt)? {
        StoredFacts::Session {
            status,
            session_type,
            livemode,
            created,
            client_reference_id,
            last_error_code,
            last_error_reason,
            report_id,
            redaction_status,
        } => Subject::Session(Box::new(SessionFacts {
            id: object_id.ok_or_else(|| {
                StoreError::Corrupt("a session event without object_id".to_string())
            })?,
            status,
            session_type,
            livemode,
            created,
            client_reference_id,
            last_error_code,
            last_error_reason,
            report_id,
            redaction_status,
            metadata: match metadata {
                Some(m) => serde_json::from_str::<BTreeMap<String, String>>(m).map_err(corrupt)?,
                None => BTreeMap::new(),
            },
        })),
        StoredFacts::NotIdentity => Subject::NotIdentity,
        StoredFacts::BadSessionObject => Subject::BadSessionObject,
    };
    Ok(EventFacts {
        id,
        event_type: EventType::from(event_type),
        created,
        subject,
    })
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
    /// `None` only for a row stored without facts whose payload a redaction purged, or that
    /// no longer parses: nothing is left to apply.
    pub facts: Option<EventFacts>,
    /// Why the stored facts do not decode (the processor quarantines such an event instead of
    /// failing every claim that reaches it).
    pub unreadable: Option<String>,
}

/// The columns a claim reads.
const CLAIM_COLUMNS: &str = "seq, id, type, created, object_id, facts, metadata, \
     CASE WHEN facts IS NULL THEN payload END AS payload";

fn claimed_from_row(row: &sqlx::any::AnyRow) -> Result<ClaimedEvent, StoreError> {
    let seq: i64 = row.try_get("seq")?;
    let id: String = row.try_get("id")?;
    let facts: Option<String> = row.try_get("facts")?;
    let mut unreadable = None;
    let facts = match facts {
        Some(facts) => match decode_facts(
            id.clone(),
            row.try_get("type")?,
            row.try_get("created")?,
            row.try_get("object_id")?,
            &facts,
            row.try_get::<Option<String>, _>("metadata")?.as_deref(),
        ) {
            Ok(facts) => Some(facts),
            Err(error) => {
                unreadable = Some(error.to_string());
                None
            }
        },
        // Stored before facts were kept: the payload, once (it was verified before the ack).
        None => row
            .try_get::<Option<Vec<u8>>, _>("payload")?
            .and_then(|p| Event::from_slice(&p).ok())
            .map(|e| EventFacts::of(&e)),
    };
    Ok(ClaimedEvent {
        seq,
        id,
        facts,
        unreadable,
    })
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
            "INSERT INTO events (id, type, object_id, created, livemode, api_version, payload, received_at, facts, metadata) VALUES ",
        );
        sql.push_str(&super::apply::values(self.backend, order.len(), 10));
        // A second copy of an id inside the batch conflicts with the first and is skipped.
        sql.push_str(" ON CONFLICT (id) DO NOTHING RETURNING id");
        let encoded: Vec<(Option<String>, Option<String>)> = order
            .iter()
            .map(|e| match &e.facts {
                Some(f) => encode_facts(f).map(|(f, m)| (Some(f), m)),
                None => Ok((None, None)),
            })
            .collect::<Result<_, _>>()?;
        let mut query = sqlx::query(&sql);
        for (event, (facts, metadata)) in order.iter().zip(encoded) {
            query = query
                .bind(&event.id)
                .bind(&event.event_type)
                .bind(&event.object_id)
                .bind(event.created)
                .bind(i64::from(event.livemode))
                .bind(&event.api_version)
                .bind(&event.payload)
                .bind(received_at_ms)
                .bind(facts)
                .bind(metadata);
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
        // Quarantined events stay out until an operator puts them back.
        let sql = format!(
            "SELECT {CLAIM_COLUMNS} FROM events WHERE processed_at IS NULL AND quarantined_at IS NULL \
             AND seq <= {} ORDER BY seq LIMIT {}{skip_locked}",
            self.backend.param(1),
            self.backend.param(2)
        );
        let rows = sqlx::query(&sql)
            .bind(up_to_seq.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(&mut **tx)
            .await?;
        rows.iter().map(claimed_from_row).collect()
    }

    /// Claim one event again (by `seq`) if it is still waiting: the processor's event-by-event
    /// retry of a batch that failed.
    pub(crate) async fn claim_event(
        &self,
        tx: &mut Tx,
        seq: i64,
    ) -> Result<Option<ClaimedEvent>, StoreError> {
        let skip_locked = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "SELECT {CLAIM_COLUMNS} FROM events WHERE seq = {} AND processed_at IS NULL \
             AND quarantined_at IS NULL{skip_locked}",
            self.backend.param(1)
        );
        let row = sqlx::query(&sql)
            .bind(seq)
            .fetch_optional(&mut **tx)
            .await?;
        row.as_ref().map(claimed_from_row).transpose()
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
            "SELECT seq, type, object_id FROM events WHERE processed_at IS NULL AND quarantined_at IS NULL ORDER BY seq LIMIT $1",
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

/// Where an event is in the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventState {
    /// Stored, waiting for the processor.
    Pending,
    /// Applied (or ignored, see its disposition).
    Processed,
    /// Set aside: it could not be applied (see its error) and waits for an operator.
    Quarantined,
}

impl EventState {
    pub const ALL: [EventState; 3] = [
        EventState::Pending,
        EventState::Processed,
        EventState::Quarantined,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Pending => "pending",
            EventState::Processed => "processed",
            EventState::Quarantined => "quarantined",
        }
    }

    pub fn parse(s: &str) -> Option<EventState> {
        EventState::ALL.into_iter().find(|e| e.as_str() == s)
    }

    fn condition(self) -> &'static str {
        match self {
            EventState::Pending => "processed_at IS NULL AND quarantined_at IS NULL",
            EventState::Processed => "processed_at IS NOT NULL",
            EventState::Quarantined => "quarantined_at IS NOT NULL",
        }
    }
}

/// One stored event as the API and the CLI show it: ids, type, times and what became of it;
/// never the payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventRow {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// The object the event is about (`vs_…` for Identity sessions).
    pub object_id: Option<String>,
    /// Stripe's `created`, unix seconds.
    pub created: i64,
    /// Unix milliseconds.
    pub received_at: i64,
    pub state: EventState,
    pub processed_at: Option<i64>,
    pub disposition: Option<String>,
    pub quarantined_at: Option<i64>,
    /// Why the event could not be applied (the database's message).
    pub quarantine_error: Option<String>,
}

/// What putting a quarantined event back came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retried {
    /// Back in the queue.
    Queued(EventRow),
    /// The event is not quarantined (pending or processed): nothing changed.
    NotQuarantined(EventRow),
    NotFound,
}

/// Quarantine errors are kept to this many characters.
const MAX_ERROR_CHARS: usize = 1000;

const ROW_COLUMNS: &str = "id, type, object_id, created, received_at, processed_at, disposition, \
     quarantined_at, quarantine_error";

fn event_row(row: &sqlx::any::AnyRow) -> Result<EventRow, StoreError> {
    let processed_at: Option<i64> = row.try_get("processed_at")?;
    let quarantined_at: Option<i64> = row.try_get("quarantined_at")?;
    Ok(EventRow {
        id: row.try_get("id")?,
        event_type: row.try_get("type")?,
        object_id: row.try_get("object_id")?,
        created: row.try_get("created")?,
        received_at: row.try_get("received_at")?,
        state: match (processed_at, quarantined_at) {
            (Some(_), _) => EventState::Processed,
            (None, Some(_)) => EventState::Quarantined,
            (None, None) => EventState::Pending,
        },
        processed_at,
        disposition: row.try_get("disposition")?,
        quarantined_at,
        quarantine_error: row.try_get("quarantine_error")?,
    })
}

impl Store {
    /// Set an unprocessed event aside with the error that stopped it (its own transaction).
    /// Returns whether it was quarantined now (false: processed or quarantined meanwhile).
    pub(crate) async fn quarantine_event(
        &self,
        seq: i64,
        error: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let error: String = crate::decide::session::storable(error)
            .chars()
            .take(MAX_ERROR_CHARS)
            .collect();
        let sql = format!(
            "UPDATE events SET quarantined_at = {}, quarantine_error = {} \
             WHERE seq = {} AND processed_at IS NULL AND quarantined_at IS NULL",
            self.backend.param(1),
            self.backend.param(2),
            self.backend.param(3)
        );
        let done = sqlx::query(&sql)
            .bind(now_ms)
            .bind(error)
            .bind(seq)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// How many events are quarantined now (an index on the quarantined ones keeps it cheap).
    pub async fn quarantined_events(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM events WHERE quarantined_at IS NOT NULL")
            .fetch_one(&self.read)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Stored events, newest first: all, or those in `state`.
    pub async fn list_events(
        &self,
        state: Option<EventState>,
        limit: i64,
    ) -> Result<Vec<EventRow>, StoreError> {
        let filter = state.map_or(String::new(), |s| format!("WHERE {} ", s.condition()));
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM events {filter}ORDER BY seq DESC LIMIT {}",
            self.backend.param(1)
        );
        let rows = sqlx::query(&sql).bind(limit).fetch_all(&self.read).await?;
        rows.iter().map(event_row).collect()
    }

    pub async fn event_by_id(&self, id: &str) -> Result<Option<EventRow>, StoreError> {
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM events WHERE id = {}",
            self.backend.param(1)
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(event_row).transpose()
    }

    /// Put a quarantined event back in the queue (after the cause was fixed); the processor
    /// applies it with the next batch, and instances on PostgreSQL hear of it at once.
    pub async fn retry_event(&self, id: &str) -> Result<Retried, StoreError> {
        let sql = format!(
            "UPDATE events SET quarantined_at = NULL, quarantine_error = NULL \
             WHERE id = {} AND quarantined_at IS NOT NULL AND processed_at IS NULL",
            self.backend.param(1)
        );
        let mut tx = self.begin().await?;
        let changed = sqlx::query(&sql).bind(id).execute(&mut *tx).await?;
        if changed.rows_affected() > 0 {
            self.notify(&mut tx, super::notify::EVENTS).await?;
        }
        tx.commit().await?;
        let Some(row) = self.event_by_id(id).await? else {
            return Ok(Retried::NotFound);
        };
        Ok(if changed.rows_affected() > 0 {
            Retried::Queued(row)
        } else {
            Retried::NotQuarantined(row)
        })
    }
}

impl StoreError {
    /// Whether the database refused what was written (a value or a constraint: the same
    /// statement fails however often it is retried), as opposed to storage trouble
    /// (connection lost, disk full, locks, timeouts) that passes. The processor quarantines
    /// an event only for the first kind.
    pub fn is_about_the_data(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(db)) => match db.code() {
                // PostgreSQL's SQLSTATE: 22 data exception (e.g. 22021, a NUL in text),
                // 23 integrity constraint violation, 54 program limit exceeded (e.g. an index
                // row too large).
                // (SQLite's codes have at most four digits.)
                Some(code) if code.len() == 5 => matches!(code.get(..2), Some("22" | "23" | "54")),
                // SQLite's (extended) result code; the primary code is its low byte:
                // 18 TOOBIG, 19 CONSTRAINT, 20 MISMATCH, 25 RANGE.
                Some(code) => code
                    .parse::<i64>()
                    .is_ok_and(|n| matches!(n & 0xff, 18 | 19 | 20 | 25)),
                None => !matches!(db.kind(), sqlx::error::ErrorKind::Other),
            },
            StoreError::Database(
                sqlx::Error::Encode(_) | sqlx::Error::Decode(_) | sqlx::Error::ColumnDecode { .. },
            ) => true,
            // Stored facts that do not decode, a row that contradicts the schema.
            StoreError::Corrupt(_) => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_trouble_is_not_the_datas_fault() {
        let io = std::io::Error::other("connection reset");
        for error in [
            StoreError::Database(sqlx::Error::PoolTimedOut),
            StoreError::Database(sqlx::Error::PoolClosed),
            StoreError::Database(sqlx::Error::Io(io)),
            StoreError::Database(sqlx::Error::Protocol("unexpected message".into())),
        ] {
            assert!(!error.is_about_the_data(), "{error}");
        }
        assert!(StoreError::Corrupt("facts".into()).is_about_the_data());
    }

    #[test]
    fn identifiers_no_backend_can_store_are_refused() {
        assert!(is_storable_identifier("evt_1NxTLs2eZvKYlo2C"));
        for bad in [
            "",
            "evt_\0",
            "vs_\n1",
            &"x".repeat(MAX_IDENTIFIER_BYTES + 1),
        ] {
            assert!(!is_storable_identifier(bad), "{bad:?}");
        }
    }

    #[test]
    fn facts_round_trip_through_their_columns() {
        let bytes = crate::synth::event_bytes(&{
            let mut spec =
                crate::synth::Spec::new(crate::synth::Kind::RequiresInput, "vs_1facts", 1_000);
            spec.user_ref = Some("u\0x".into());
            spec.metadata = vec![("email".into(), "a@example.com".into())];
            spec
        });
        let event = Event::from_slice(&bytes).unwrap();
        let facts = EventFacts::of(&event);
        let (encoded, metadata) = encode_facts(&facts).unwrap();
        assert!(
            !encoded.contains("a@example.com"),
            "metadata has its own column"
        );
        let decoded = decode_facts(
            event.id.clone(),
            event.type_.as_str().to_string(),
            event.created,
            Some("vs_1facts".into()),
            &encoded,
            metadata.as_deref(),
        )
        .unwrap();
        assert_eq!(decoded, facts);
        let session = decoded.session().unwrap();
        assert_eq!(session.client_reference_id.as_deref(), Some("u\u{FFFD}x"));
        assert!(session.last_error_code.is_some() && session.report_id.is_some());
    }
}
