//! `idverdict events`: the stored events, and putting a quarantined one back.
//!
//! - `idverdict events list [--state pending|processed|quarantined] [--limit N] [--json]`
//!   (newest first; a quarantined event shows the error that stopped it)
//! - `idverdict events retry ID` (a quarantined event goes back in the queue)
//!
//! An event is quarantined when the database refuses what applying it would write; it blocks
//! nothing behind it. Retrying only changes its row: a running `serve` takes it with its next
//! batch (at once on PostgreSQL, through `NOTIFY`; else within its poll interval).

use anyhow::bail;
use clap::{Args, Subcommand};
use idverdict::store::{EventState, Retried, Store};

use crate::time::{rfc3339_ms, rfc3339_secs};

#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(flatten)]
    pub config: super::ConfigArgs,
    #[command(subcommand)]
    pub command: EventsCommand,
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// List stored events, newest first.
    List {
        /// Only events in this state.
        #[arg(long, value_parser = ["pending", "processed", "quarantined"])]
        state: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// One JSON object per line instead of a table (times as stored: `created` in unix
        /// seconds, the others in unix milliseconds).
        #[arg(long)]
        json: bool,
    },
    /// Put a quarantined event back in the queue, once what stopped it is fixed.
    Retry {
        /// The event id (evt_…).
        id: String,
    },
}

pub async fn run(args: EventsArgs) -> anyhow::Result<()> {
    let config = super::load_config(&args.config, &[])?;
    let store = super::open_store(&config).await?;
    let result = command(&store, args.command).await;
    store.close().await;
    result
}

async fn command(store: &Store, command: EventsCommand) -> anyhow::Result<()> {
    match command {
        EventsCommand::List { state, limit, json } => {
            if !(1..=100_000).contains(&limit) {
                bail!("--limit must be between 1 and 100000");
            }
            let state = state.as_deref().and_then(EventState::parse);
            let rows = store.list_events(state, limit).await?;
            if json {
                for row in &rows {
                    println!("{}", serde_json::to_string(row)?);
                }
                return Ok(());
            }
            if rows.is_empty() {
                println!("no events");
                return Ok(());
            }
            println!(
                "{:<32} {:<46} {:<12} {:<24} {:<24} detail",
                "id", "type", "state", "created", "received"
            );
            for row in &rows {
                let detail = match row.state {
                    EventState::Quarantined => row.quarantine_error.clone().unwrap_or_default(),
                    _ => row.disposition.clone().unwrap_or_default(),
                };
                println!(
                    "{:<32} {:<46} {:<12} {:<24} {:<24} {}",
                    row.id,
                    row.event_type,
                    row.state.as_str(),
                    rfc3339_secs(row.created),
                    rfc3339_ms(row.received_at),
                    detail.escape_debug()
                );
            }
            Ok(())
        }
        EventsCommand::Retry { id } => match store.retry_event(&id).await? {
            Retried::Queued(_) => {
                println!("event {id} is back in the queue");
                Ok(())
            }
            Retried::NotQuarantined(row) => bail!(
                "event {id} is {}, not quarantined: nothing to retry",
                row.state.as_str()
            ),
            Retried::NotFound => bail!("no event {id} is stored"),
        },
    }
}
