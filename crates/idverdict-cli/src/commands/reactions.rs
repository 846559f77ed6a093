//! `idverdict reactions`: look at the outbox and redeliver what was exhausted.
//!
//! - `idverdict reactions list [--state pending|sending|delivered|exhausted|canceled] [--user REF] [--limit N] [--json]`
//! - `idverdict reactions show ID [--json]` (the reaction and every attempt)
//! - `idverdict reactions redeliver ID` / `idverdict reactions redeliver --all-exhausted`
//! - `idverdict reactions targets list [--json]` (each callback URL: healthy, failing or
//!   paused, and how many reactions wait for it) / `idverdict reactions targets enable URL`
//!
//! Redelivery and enabling only change rows in the database (due now, fresh retry schedule);
//! a running `serve` hears of it at once on PostgreSQL (`NOTIFY`), else within its poll
//! interval.

use anyhow::bail;
use clap::{Args, Subcommand};
use idverdict::clock::now_ms;
use idverdict::react::masked_target;
use idverdict::store::{
    CallbackTarget, Enabled, ReactionAttemptRow, ReactionFilter, ReactionRow, Redeliver, Store,
    TargetState,
};

use crate::time::rfc3339_ms;

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
    Show {
        id: String,
        /// The reaction and its attempts as one JSON object (times as unix milliseconds).
        #[arg(long)]
        json: bool,
    },
    /// Make an exhausted (or delivered) reaction due again, with a fresh retry schedule.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["id", "all_exhausted"])))]
    Redeliver {
        /// The reaction id (rx_…).
        id: Option<String>,
        /// Every exhausted reaction.
        #[arg(long)]
        all_exhausted: bool,
    },
    /// Callback URLs: their health, and resuming one that was paused.
    Targets {
        #[command(subcommand)]
        command: TargetsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum TargetsCommand {
    /// Each callback URL: healthy, failing (since when, last error) or paused, and how many
    /// reactions wait for it.
    List {
        /// A JSON array instead of a table (times as unix milliseconds).
        #[arg(long)]
        json: bool,
    },
    /// Resume a paused callback URL: its queued reactions (and those that used up their
    /// retries while it was failing) go out at once, with a fresh retry schedule.
    Enable {
        /// The URL, exactly as in callbacks.urls.
        url: String,
    },
}

pub async fn run(args: ReactionsArgs) -> anyhow::Result<()> {
    let config = super::load_config(&args.config, &[])?;
    let store = super::open_store(&config).await?;
    let result = command(&store, &config.reactions.callbacks.urls, args.command).await;
    store.close().await;
    if result.is_ok() && !config.reactions.any_channel() {
        // stderr, so that `--json` output stays parseable.
        eprintln!(
            "note: no reaction channel is configured (IDVERDICT_CALLBACK_URLS, IDVERDICT_SMTP_HOST, IDVERDICT_NATS_URL): decisions are recorded but nothing is sent"
        );
    }
    result
}

async fn command(
    store: &Store,
    configured: &[String],
    command: ReactionsCommand,
) -> anyhow::Result<()> {
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
                    kind: None,
                    limit: Some(limit),
                })
                .await?;
            let paused: Vec<CallbackTarget> = store
                .callback_targets(configured)
                .await?
                .into_iter()
                .filter(|t| t.state == TargetState::Paused)
                .collect();
            let is_paused = |row: &ReactionRow| {
                row.kind == "callback" && paused.iter().any(|t| t.url == row.target)
            };
            if json {
                let rows: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|row| {
                        let mut v = public(row);
                        v["target_paused"] = is_paused(row).into();
                        v
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for t in &paused {
                    println!(
                        "PAUSED callback URL {} since {} ({} reaction(s) held): `idverdict reactions targets enable {}` resumes it",
                        t.url,
                        t.paused_at_ms.map(rfc3339_ms).unwrap_or_default(),
                        t.waiting,
                        t.url
                    );
                }
                print_table(&rows, &is_paused);
            }
        }
        ReactionsCommand::Targets {
            command: TargetsCommand::List { json },
        } => {
            let targets = store.callback_targets(configured).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&targets)?);
            } else {
                print_targets(&targets);
            }
        }
        ReactionsCommand::Targets {
            command: TargetsCommand::Enable { url },
        } => match store.enable_callback_target(&url, now_ms()).await? {
            Enabled::Resumed(requeued) => println!(
                "{url} enabled: {} waiting and {} exhausted reaction(s) queued for delivery now",
                requeued.pending, requeued.exhausted
            ),
            Enabled::NotPaused(state) => bail!("{url} is not paused (it is {})", state.as_str()),
            Enabled::Unknown if configured.contains(&url) => {
                bail!("{url} is not paused (it is healthy)")
            }
            Enabled::Unknown => bail!(
                "{url} is not a callback URL idverdict knows (see `idverdict reactions targets list`)"
            ),
        },
        ReactionsCommand::Show { id, json } => {
            let Some(row) = store.get_reaction(&id).await? else {
                bail!("no reaction {id}");
            };
            let attempts = store.reaction_attempts(&id).await?;
            if json {
                let mut v = public(&row);
                v["attempts_made"] = serde_json::to_value(&attempts)?;
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print_one(&row, &attempts);
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

/// Only a reaction waiting for an attempt has a next attempt.
fn waiting(row: &ReactionRow) -> bool {
    matches!(row.state.as_str(), "pending" | "sending")
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
        if !waiting(row) {
            obj.insert("next_attempt_at_ms".into(), serde_json::Value::Null);
        }
    }
    v
}

fn mask_target(row: &ReactionRow) -> String {
    masked_target(&row.kind, &row.target)
}

fn print_targets(targets: &[CallbackTarget]) {
    println!(
        "{:<9} {:>7} {:<24} {:<40} LAST ERROR",
        "STATE", "WAITING", "SINCE", "URL"
    );
    for t in targets {
        let since = match t.state {
            TargetState::Paused => t.paused_at_ms,
            TargetState::Failing => t.failing_since_ms,
            TargetState::Healthy => None,
        };
        let url = if t.configured {
            t.url.clone()
        } else {
            format!("{} (not configured)", t.url)
        };
        println!(
            "{:<9} {:>7} {:<24} {:<40} {}",
            t.state.as_str(),
            t.waiting,
            since.map(rfc3339_ms).unwrap_or_else(|| "-".into()),
            url,
            t.last_error.as_deref().unwrap_or("")
        );
    }
    if targets.is_empty() {
        println!("(no callback URLs)");
    }
}

fn print_table(rows: &[ReactionRow], is_paused: &dyn Fn(&ReactionRow) -> bool) {
    println!(
        "{:<27} {:<8} {:<9} {:>3} {:<20} {:<16} {:<24} {:<30} LAST ERROR",
        "ID", "KIND", "STATE", "TRY", "DECISION", "USER", "CREATED", "TARGET"
    );
    for r in rows {
        let mut target = mask_target(r);
        if target.chars().count() > 30 {
            target = target.chars().take(29).collect::<String>() + "…";
        }
        println!(
            "{:<27} {:<8} {:<9} {:>3} {:<20} {:<16} {:<24} {:<30} {}",
            r.id,
            r.kind,
            // Queued for a paused URL: not tried until it is enabled.
            if waiting(r) && is_paused(r) {
                "held"
            } else {
                r.state.as_str()
            },
            r.attempts,
            r.decision,
            r.user_ref.as_deref().unwrap_or("-"),
            rfc3339_ms(r.created_at_ms),
            target,
            r.last_error.as_deref().unwrap_or("")
        );
    }
    if rows.is_empty() {
        println!("(no reactions)");
    }
}

fn print_one(row: &ReactionRow, attempts: &[ReactionAttemptRow]) {
    let line = |label: &str, value: &str| println!("{label:<13} {value}");
    line("id", &row.id);
    line("kind", &row.kind);
    line("target", &mask_target(row));
    line("state", &row.state);
    line("decision", &row.decision);
    line("decision key", &row.decision_key);
    line("user", row.user_ref.as_deref().unwrap_or("-"));
    line("session", row.session_id.as_deref().unwrap_or("-"));
    line("created", &rfc3339_ms(row.created_at_ms));
    if let Some(at) = row.delivered_at_ms {
        line("delivered", &rfc3339_ms(at));
    }
    if waiting(row) {
        line("next attempt", &rfc3339_ms(row.next_attempt_at_ms));
    }
    if let Some(e) = &row.last_error {
        line("last error", e);
    }
    let payload = public(row)["payload"].to_string();
    line("payload", &payload);
    println!("attempts:");
    for a in attempts {
        println!(
            "  #{:<3} at {}  status {:<5} {:>6} ms  {}",
            a.attempt,
            rfc3339_ms(a.started_at_ms),
            a.status_code.map(|s| s.to_string()).unwrap_or("-".into()),
            a.latency_ms,
            a.error.as_deref().unwrap_or("ok")
        );
    }
    if attempts.is_empty() {
        println!("  (none yet)");
    }
}
