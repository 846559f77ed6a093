//! One module per subcommand.

pub mod dev_loop;
pub mod emulate;
pub mod endpoints;
pub mod migrate;
pub mod reactions;
pub mod reconcile;
pub mod redact;
pub mod serve;
pub mod trigger;
