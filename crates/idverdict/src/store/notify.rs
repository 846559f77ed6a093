//! Telling other instances about new work (PostgreSQL `LISTEN`/`NOTIFY`).
//!
//! Whoever stores events (`insert_events`: the committer, reconciliation) notifies
//! [`EVENTS`]; whoever makes reactions due (`enqueue_reactions`, redelivery, reclaiming,
//! enabling a paused URL — also from another process such as `idverdict reactions`) notifies
//! [`REACTIONS`]. The notification is sent inside the writing transaction, so PostgreSQL
//! delivers it only once the work is committed and visible. [`forward`] listens on its own
//! connection and wakes the processor or the dispatcher of this instance at once; their
//! idle poll (`poll_interval`) stays as the fallback for a notification lost while the
//! listening connection was down. SQLite has one instance by construction: the in-process
//! wake-ups are enough, and nothing is sent.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::{watch, Notify};

use super::{Backend, Store, StoreError, Tx};

/// New events are stored.
pub const EVENTS: &str = "idverdict_events";
/// Reactions are due.
pub const REACTIONS: &str = "idverdict_reactions";

impl Store {
    /// Notify `channel` when the caller's transaction commits (PostgreSQL; nothing on SQLite).
    pub(crate) async fn notify(
        &self,
        tx: &mut Tx,
        channel: &'static str,
    ) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            // The channel names are constants: nothing from outside goes into the statement.
            sqlx::query(&format!("NOTIFY {channel}"))
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

/// What to wake on each channel.
#[derive(Clone)]
pub struct Wakers {
    pub events: Arc<Notify>,
    pub reactions: Arc<Notify>,
}

impl Wakers {
    fn all(&self) {
        self.events.notify_one();
        self.reactions.notify_one();
    }
}

/// Listen on [`EVENTS`] and [`REACTIONS`] of the PostgreSQL database at `url` and wake the
/// matching worker for each notification, until `shutdown` turns true. A lost connection is
/// re-established (with backoff); both workers are woken after every (re)connection, since
/// notifications sent meanwhile are gone.
pub async fn forward(url: String, wakers: Wakers, mut shutdown: watch::Receiver<bool>) {
    let mut listener: Option<PgListener> = None;
    let mut backoff = Duration::from_millis(100);
    loop {
        if *shutdown.borrow() || shutdown.has_changed().is_err() {
            return;
        }
        let active = match listener.as_mut() {
            Some(l) => l,
            None => match connect(&url).await {
                Ok(l) => {
                    tracing::debug!("listening for other instances' notifications");
                    backoff = Duration::from_millis(100);
                    crate::metrics::notifications_listening(true);
                    wakers.all();
                    listener.insert(l)
                }
                Err(error) => {
                    crate::metrics::notifications_listening(false);
                    tracing::warn!(%error, "cannot listen for notifications; polling meanwhile");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            },
        };
        tokio::select! {
            received = active.try_recv() => match received {
                Ok(Some(notification)) => {
                    let channel = notification.channel();
                    crate::metrics::notification_received(channel);
                    match channel {
                        EVENTS => wakers.events.notify_one(),
                        REACTIONS => wakers.reactions.notify_one(),
                        _ => {}
                    }
                }
                // The connection was lost and is back: whatever was sent meanwhile is gone.
                Ok(None) => wakers.all(),
                Err(error) => {
                    crate::metrics::notifications_listening(false);
                    tracing::warn!(%error, "the notification listener failed; reconnecting");
                    listener = None;
                }
            },
            _ = shutdown.changed() => {}
        }
    }
}

async fn connect(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen_all([EVENTS, REACTIONS]).await?;
    Ok(listener)
}
