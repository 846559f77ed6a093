//! Decide: every rule about sessions, users and decisions, as pure functions on typed values.
//! No I/O: the processor, the API handlers and the review path load what a rule needs, call
//! it, and store or answer what it returns.
//!
//! - [`session`]: one record per verification session, folded from snapshots in any order
//!   (the ordering rule), and the session's outcome.
//! - [`attempts`]: which failures count, once each.
//! - [`batch`]: the fold over one processor batch (events, then Stripe's current sessions).
//! - [`user`]: the user state table, from all of a user's sessions and the latest review.
//! - [`why`]: the row of that table that decided a state, with its facts and session.
//! - [`review`]: an operator's review of a user.
//! - [`decision`]: what a decision about a user says (the callback body).
//! - [`expectations`]: what the app expects of the verified person (digests and rules), and
//!   the comparison with what Stripe verified.
//! - [`creation`]: whether the app may get a session for a user, and which.
//! - [`access`]: the console's roles and the login throttle.
//! - [`next_step`] and [`policy`]: what each `last_error.code` leads to, and the operator's
//!   overrides, attempt limit and exhaustion.

pub mod access;
pub mod attempts;
pub mod batch;
pub mod creation;
pub mod decision;
pub mod expectations;
pub mod next_step;
pub mod policy;
pub mod review;
pub mod session;
pub mod user;
pub mod why;

pub use batch::{
    fold_batch, BatchChanges, BatchState, Disposition, EventFacts, HistoryEntry, Input, Subject,
};
pub use decision::{Decision, DecisionType};
pub use next_step::{default_next_step, guidance, NextStep};
pub use policy::{CodeRule, Exhausted, Policy};
pub use session::{Effect, SessionFacts, SessionOutcome, SessionRecord};
pub use user::{ReviewAction, UserChange, UserRecord, UserState, UserView};
pub use why::{Rule, StepSource, Why};

#[cfg(test)]
mod tests;
