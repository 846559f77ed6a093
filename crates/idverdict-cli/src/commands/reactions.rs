//! `idverdict reactions`: look at the outbox and redeliver what was exhausted.
//!
//! - `idverdict reactions list [--state pending|sending|delivered|exhausted|canceled] [--user REF] [--limit N] [--json]`
//! - `idverdict reactions show ID` (the reaction and every attempt)
//! - `idverdict reactions redeliver ID` / `idverdict reactions redeliver --all-exhausted`
//!
//! Redelivery only resets rows in the database (due now, fresh retry schedule); the running
//! `serve` dispatcher picks them up within its poll interval.

use anyhow::bail;
use clap::{Args, Subcommand};
use idverdict::clock::now_ms;
use idverdict::store::{ReactionFilter, ReactionRow, Redeliver, Store};

#[derive(Debug, Args)]
pub struct ReactionsArgs {
    #[command(flatten)]
    pub config: super::ConfigArgs,
    #[command(subcommand)]
    pub command: ReactionsCommand,
}

#[derive(Debug, Subcommand)]
pub enum ReactionsCommand {
    /// List reactions, newest first.
    List {
        /// Only reactions in this state.
        #[arg(long, value_parser = ["pending", "sending", "delivered", "exhausted", "canceled"])]
        state: Option<String>,
        /// Only reactions about this user (client_reference_id).
        #[arg(long)]
        user: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one reaction and its attempts.
    Show { id: String },
    /// Make an exhausted (or delivered) reaction due again, with a fresh retry schedule.
    Redeliver {
        /// The reaction id (rx_…).
        #[arg(
            required_unless_present = "all_exhausted",
            conflicts_with = "all_exhausted"
        )]
        id: Option<String>,
        /// Every exhausted reaction.
        #[arg(long)]
        all_exhausted: bool,
    },
}

pub async fn run(args: ReactionsArgs) -> anyhow::Result<()> {
    let config = super::load_config(&args.config, &[])?;
    let store = super::open_store(&config).await?;
    let result = command(&store, args.command).await;
    store.close().await;
    result
}

async fn command(store: &Store, command: ReactionsCommand) -> anyhow::Result<()> {
    match command {
        ReactionsCommand::List {
            state,
            user,
            limit,
            json,
        } => {
            let rows = store
                .list_reactions(&ReactionFilter {
                    state,
                    user_ref: user,
                    session_id: None,
                    limit: Some(limit),
                })
                .await?;
            if json {
                for row in &rows {
                    println!("{}", serde_json::to_string(&public(row))?);
                }
            } else {
                print_table(&rows);
            }
        }
        ReactionsCommand::Show { id } => {
            let Some(row) = store.get_reaction(&id).await? else {
                bail!("no reaction {id}");
            };
            println!("{}", serde_json::to_string_pretty(&public(&row))?);
            println!("attempts:");
            for a in store.reaction_attempts(&id).await? {
                println!(
                    "  #{:<3} at {}  status {:<5} {:>6} ms  {}",
                    a.attempt,
                    a.started_at_ms,
                    a.status_code.map(|s| s.to_string()).unwrap_or("-".into()),
                    a.latency_ms,
                    a.error.as_deref().unwrap_or("ok")
                );
            }
        }
        ReactionsCommand::Redeliver { id, all_exhausted } => {
            let which = match (&id, all_exhausted) {
                (_, true) => Redeliver::AllExhausted,
                (Some(id), false) => Redeliver::One(id),
                (None, false) => bail!("give a reaction id or --all-exhausted"),
            };
            let n = store.redeliver(which, now_ms()).await?;
            match (id, n) {
                (Some(id), 0) => bail!(
                    "{id}: not found, or not exhausted/delivered (pending ones are already queued)"
                ),
                _ => println!("{n} reaction(s) queued for redelivery"),
            }
        }
    }
    Ok(())
}

/// The row as shown: email addresses masked (the operator sees that there is one, and
/// whose, from the user column; a terminal scrollback is not where addresses belong).
fn public(row: &ReactionRow) -> serde_json::Value {
    let mut v = serde_json::to_value(row).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        obj.insert("target".into(), mask_target(row).into());
        obj.remove("payload");
        obj.insert(
            "payload".into(),
            serde_json::from_str(&row.payload).unwrap_or(serde_json::Value::Null),
        );
    }
    v
}

fn mask_target(row: &ReactionRow) -> String {
    if row.kind != "email" {
        return row.target.clone();
    }
    match row.target.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => row.target.clone(),
    }
}

fn print_table(rows: &[ReactionRow]) {
    println!(
        "{:<27} {:<8} {:<9} {:>3} {:<20} {:<16} {:<30} LAST ERROR",
        "ID", "KIND", "STATE", "TRY", "DECISION", "USER", "TARGET"
    );
    for r in rows {
        let mut target = mask_target(r);
        if target.chars().count() > 30 {
            target = target.chars().take(29).collect::<String>() + "…";
        }
        println!(
            "{:<27} {:<8} {:<9} {:>3} {:<20} {:<16} {:<30} {}",
            r.id,
            r.kind,
            r.state,
            r.attempts,
            r.decision,
            r.user_ref.as_deref().unwrap_or("-"),
            target,
            r.last_error.as_deref().unwrap_or("")
        );
    }
    if rows.is_empty() {
        println!("(no reactions)");
    }
}
