//! `idverdict`: the command line. A thin shell: parse flags, set up logging, call the library.

mod commands;
mod logging;
mod time;

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
    /// List stored events (pending, processed, quarantined) and retry a quarantined one.
    Events(commands::events::EventsArgs),
    /// Manage who may log in to the operator console.
    Operators(commands::operators::OperatorsArgs),
    /// Export the console's audit log.
    Audit(commands::audit::AuditArgs),
    /// Generate the secrets you choose yourself (callback signing secret, API token).
    Secrets(commands::secrets::SecretsArgs),
    /// Copy the SQLite database to a file while `serve` runs (online backup).
    Backup(commands::backup::BackupArgs),
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        Command::Events(args) => {
            logging::init(idverdict::config::LogFormat::Human);
            commands::events::run(args).await
        }
        Command::Operators(args) => {
            logging::init(idverdict::config::LogFormat::Human);
            commands::operators::run(args).await
        }
        Command::Audit(args) => {
            logging::init(idverdict::config::LogFormat::Human);
            commands::audit::run(args).await
        }
        Command::Secrets(args) => commands::secrets::run(args),
        Command::Backup(args) => commands::backup::run(args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", cause_chain(&error));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes, `: `-separated, each said once: many errors already end with
/// their cause's text (`cannot listen on …: Address already in use`), which anyhow's `{:#}`
/// would print a second time.
fn cause_chain(error: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut previous = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !previous.is_empty() && previous.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
        previous = text;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::cause_chain;

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address already in use");
        #[derive(Debug, thiserror::Error)]
        #[error("cannot listen on 127.0.0.1:1: {source}")]
        struct Bind {
            source: std::io::Error,
        }
        let e = anyhow::Error::new(Bind { source: io }).context("starting the service");
        assert_eq!(
            cause_chain(&e),
            "starting the service: cannot listen on 127.0.0.1:1: Address already in use"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(cause_chain(&plain), "outer: inner");
    }
}
