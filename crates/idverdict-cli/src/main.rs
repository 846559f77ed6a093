//! `idverdict`: the command line. A thin shell: parse flags, set up logging, call the library.

mod commands;
mod logging;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "idverdict",
    version,
    about = "Turn Stripe Identity verification outcomes into reliable reactions in your app."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Receive Stripe webhooks, record and decide (the service).
    Serve(commands::serve::ServeArgs),
    /// Apply the database schema migrations and exit.
    Migrate(commands::migrate::MigrateArgs),
    /// Send a realistic, signed identity.verification_session.* event to a receiver.
    Trigger(commands::trigger::TriggerArgs),
    /// Run the local Stripe emulator (verification sessions, events, webhook endpoints).
    Emulate(commands::emulate::EmulateArgs),
    /// Manage Stripe webhook endpoints (real Stripe or the emulator).
    Endpoints(commands::endpoints::EndpointsArgs),
    /// Ingest identity events listed at Stripe that never arrived as webhooks.
    Reconcile(commands::reconcile::ReconcileArgs),
    /// Ask Stripe to redact every verification session of one user (idverdict deletes its
    /// copy when the `redacted` events arrive).
    Redact(commands::redact::RedactArgs),
    /// Inspect the reactions outbox (callbacks, emails, bus messages) and redeliver.
    Reactions(commands::reactions::ReactionsArgs),
    /// Manage who may log in to the operator console.
    Operators(commands::operators::OperatorsArgs),
    /// Export the console's audit log.
    Audit(commands::audit::AuditArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // With one core (a small VM, or pinned with taskset) a single-threaded runtime avoids
    // waking a second runtime thread for every request; with more, use them all.
    let one_core = std::thread::available_parallelism()
        .map(|n| n.get() == 1)
        .unwrap_or(false);
    let runtime = if one_core {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    match runtime {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> std::process::ExitCode {
    let result = match cli.command {
        Command::Serve(args) => commands::serve::run(args).await,
        Command::Migrate(args) => commands::migrate::run(args).await,
        Command::Trigger(args) => {
            logging::init(idverdict::config::LogFormat::Human);
            commands::trigger::run(args).await
        }
        Command::Emulate(args) => {
            logging::init(idverdict::config::LogFormat::Human);
            commands::emulate::run(args).await
        }
        Command::Reconcile(args) => commands::reconcile::run(args).await,
        Command::Redact(args) => commands::redact::run(args).await,
        Command::Endpoints(args) => {
            logging::init(idverdict::config::LogFormat::Human);
            commands::endpoints::run(args).await
        }
        Command::Reactions(args) => {
            logging::init(idverdict::config::LogFormat::Human);
            commands::reactions::run(args).await
        }
        Command::Operators(args) => {
            logging::init(idverdict::config::LogFormat::Human);
            commands::operators::run(args).await
        }
        Command::Audit(args) => {
            logging::init(idverdict::config::LogFormat::Human);
            commands::audit::run(args).await
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
