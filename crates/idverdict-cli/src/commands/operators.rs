//! `idverdict operators`: who may log in to the console.
//!
//! - `idverdict operators add EMAIL --role viewer|reviewer|admin [--password-stdin]`
//! - `idverdict operators list [--json]`
//! - `idverdict operators disable EMAIL` / `enable EMAIL` (disabling ends their sessions)
//! - `idverdict operators passwd EMAIL [--password-stdin]` (ends their sessions)
//!
//! Passwords come from a prompt that does not echo, or from the first line of standard input.
//! Every change is written to the audit log (operator `cli`).

use std::io::BufRead;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use idverdict::clock::now_ms;
use idverdict::console::passwords::{
    check_email, check_new_password, hash_password, normalize_email,
};
use idverdict::decide::access::Role;
use idverdict::store::{NewAudit, Store};

#[derive(Debug, Args)]
pub struct OperatorsArgs {
    #[command(flatten)]
    pub config: super::ConfigArgs,
    #[command(subcommand)]
    pub command: OperatorsCommand,
}

#[derive(Debug, Subcommand)]
pub enum OperatorsCommand {
    /// Add an operator.
    Add {
        email: String,
        #[arg(long, value_parser = ["viewer", "reviewer", "admin"])]
        role: String,
        /// Read the password from the first line of standard input instead of a prompt.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List operators.
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Disable an operator (their sessions end).
    Disable { email: String },
    /// Enable a disabled operator again.
    Enable { email: String },
    /// Set a new password (their sessions end).
    Passwd {
        email: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

pub async fn run(args: OperatorsArgs) -> anyhow::Result<()> {
    let config = super::load_config(&args.config, &[])?;
    let store = super::open_store(&config).await?;
    let result = command(&store, args.command).await;
    store.close().await;
    result
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        let first = rpassword::prompt_password("Password: ").context("reading the password")?;
        let again = rpassword::prompt_password("Again: ").context("reading the password")?;
        if first != again {
            bail!("the two passwords differ");
        }
        first
    };
    check_new_password(&password)?;
    Ok(password)
}

async fn audit(
    store: &Store,
    action: &str,
    email: &str,
    reason: Option<&str>,
) -> anyhow::Result<()> {
    store
        .append_audit(
            &NewAudit {
                operator: Some("cli"),
                action,
                target: Some(email),
                reason,
                client_addr: Some("local"),
            },
            now_ms(),
        )
        .await?;
    Ok(())
}

async fn command(store: &Store, command: OperatorsCommand) -> anyhow::Result<()> {
    match command {
        OperatorsCommand::Add {
            email,
            role,
            password_stdin,
        } => {
            let email = normalize_email(&email);
            check_email(&email).map_err(anyhow::Error::msg)?;
            let role = Role::parse(&role).context("unknown role")?;
            let password = read_password(password_stdin)?;
            let hash = hash_password(&password)?;
            if store
                .insert_operator(&email, role, &hash, now_ms())
                .await?
                .is_none()
            {
                bail!("an operator {email} exists already (change the password with `idverdict operators passwd {email}`)");
            }
            audit(store, "operator.add", &email, Some(role.as_str())).await?;
            println!("added {email} ({})", role.as_str());
        }
        OperatorsCommand::List { json } => {
            let operators = store.list_operators().await?;
            if json {
                for o in &operators {
                    println!("{}", serde_json::to_string(o)?);
                }
            } else {
                println!("{:<40} {:<9} STATUS", "EMAIL", "ROLE");
                for o in &operators {
                    println!(
                        "{:<40} {:<9} {}",
                        o.email,
                        o.role.as_str(),
                        if o.disabled { "disabled" } else { "active" }
                    );
                }
                if operators.is_empty() {
                    println!("(no operators)");
                }
            }
        }
        OperatorsCommand::Disable { email } => set_disabled(store, &email, true).await?,
        OperatorsCommand::Enable { email } => set_disabled(store, &email, false).await?,
        OperatorsCommand::Passwd {
            email,
            password_stdin,
        } => {
            let email = normalize_email(&email);
            if store.operator_by_email(&email).await?.is_none() {
                bail!("no operator {email}");
            }
            let password = read_password(password_stdin)?;
            let hash = hash_password(&password)?;
            store.set_operator_password(&email, &hash, now_ms()).await?;
            audit(store, "operator.password", &email, None).await?;
            println!("password of {email} changed; their console sessions ended");
        }
    }
    Ok(())
}

async fn set_disabled(store: &Store, email: &str, disabled: bool) -> anyhow::Result<()> {
    let email = normalize_email(email);
    if !store
        .set_operator_disabled(&email, disabled, now_ms())
        .await?
    {
        bail!("no operator {email}");
    }
    let action = if disabled {
        "operator.disable"
    } else {
        "operator.enable"
    };
    audit(store, action, &email, None).await?;
    println!(
        "{email} {}",
        if disabled {
            "disabled; their console sessions ended"
        } else {
            "enabled"
        }
    );
    Ok(())
}
