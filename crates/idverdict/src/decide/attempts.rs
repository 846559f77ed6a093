//! Counting failed attempts: each failure counts once, however often (and in whatever order)
//! its snapshot arrives, and only when the policy says its code counts.

use std::collections::{HashMap, HashSet};

use stripe_webhook::{ErrorCode, SessionStatus};

use super::policy::Policy;
use super::session::{Snapshot, Source};

/// One failed attempt of a session, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedAttempt {
    pub session_id: String,
    /// What makes the attempt count once: `report:vr_…`, or `{code}@{created}` for failures
    /// without a report (e.g. `abandoned`).
    pub key: String,
    pub code: ErrorCode,
    pub event_created: i64,
}

/// The failed attempt a snapshot shows, if it shows one that counts. The key is the
/// verification report the attempt produced, or, for failures without a report, the code and
/// the time of the event. Stripe's current session counts only with a report: without one the
/// key would depend on when it was fetched, and the event of that failure counts it anyway.
pub fn failed_attempt(snapshot: &Snapshot<'_>, policy: &Policy) -> Option<FailedAttempt> {
    if snapshot.session.status != SessionStatus::RequiresInput {
        return None;
    }
    let code = snapshot.error_code()?;
    if !policy.rule(code).counts_as_attempt {
        return None;
    }
    let key = match (snapshot.report_id(), snapshot.source) {
        (Some(report), _) => format!("report:{report}"),
        (None, Source::Event { .. }) => format!("{code}@{}", snapshot.at),
        (None, Source::Current) => return None,
    };
    Some(FailedAttempt {
        session_id: snapshot.session.id.clone(),
        key,
        code: code.clone(),
        event_created: snapshot.at,
    })
}

/// The attempt keys known per session: loaded with the batch, grown as it is folded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttemptLedger {
    keys: HashMap<String, HashSet<String>>,
}

impl From<HashMap<String, HashSet<String>>> for AttemptLedger {
    fn from(keys: HashMap<String, HashSet<String>>) -> AttemptLedger {
        AttemptLedger { keys }
    }
}

impl AttemptLedger {
    /// Count the snapshot's failed attempt, if it shows one. Returns the session's number of
    /// failed attempts afterwards, and the attempt when it was not known before.
    pub fn record(
        &mut self,
        snapshot: &Snapshot<'_>,
        policy: &Policy,
    ) -> (u32, Option<FailedAttempt>) {
        let keys = self.keys.entry(snapshot.session.id.clone()).or_default();
        let new = failed_attempt(snapshot, policy).filter(|a| keys.insert(a.key.clone()));
        (u32::try_from(keys.len()).unwrap_or(u32::MAX), new)
    }
}
