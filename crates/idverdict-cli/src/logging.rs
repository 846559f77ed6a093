//! Log set-up: human-readable by default, JSON on request; always to stderr so stdout stays
//! for the few lines meant for people and scripts (addresses, generated credentials). Colour
//! only on a terminal, and never with `NO_COLOR` set (https://no-color.org): a log written to
//! a file or a journal must not fill up with escape codes.

use std::io::IsTerminal;

use idverdict::config::LogFormat;
use tracing_subscriber::EnvFilter;

pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_env("IDVERDICT_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn colour() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stderr().is_terminal()
}
