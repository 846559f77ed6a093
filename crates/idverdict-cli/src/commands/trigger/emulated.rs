//! Through an emulator: create a real session there and drive it with the emulator's test
//! helpers (`process`, `verify`, `require_input`) or its cancel and redact routes. The
//! emulator emits the events and signs and delivers them to every subscribed endpoint, so the
//! receiver can fetch the same session back, reconcile it and create the next one.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{bail, Context};
use idverdict::synth::Kind;
use serde_json::Value;

use super::super::stripe_http::StripeHttp;
use super::{Request, TriggerArgs};

/// Bounded waits: for the events (a redaction completes after the emulator's processing
/// delay) and for the first delivery attempt of each.
const POLL: Duration = Duration::from_millis(100);
const MAX_POLLS: u32 = 300;

/// One call to the emulator.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Create,
    Process,
    Verify,
    RequireInput(String),
    Cancel,
    Redact,
}

impl Step {
    /// The event type that shows the step is done.
    fn done_when(&self) -> &'static str {
        match self {
            Step::Create => Kind::Created.event_type(),
            Step::Process => Kind::Processing.event_type(),
            Step::Verify => Kind::Verified.event_type(),
            Step::RequireInput(_) => Kind::RequiresInput.event_type(),
            Step::Cancel => Kind::Canceled.event_type(),
            Step::Redact => Kind::Redacted.event_type(),
        }
    }
}

/// The calls that produce `request`'s events. An existing session (`--session`) is driven
/// from where it is, so a flow on it is a resubmission without a new `created`.
fn plan(request: &Request, existing: bool) -> anyhow::Result<Vec<Step>> {
    let code = request
        .error_code
        .clone()
        .unwrap_or_else(|| "document_unverified_other".into());
    let last = request
        .kinds
        .last()
        .copied()
        .context("nothing to trigger")?;
    let outcome = match last {
        Kind::Created => None,
        Kind::Processing => Some(Step::Process),
        Kind::Verified => Some(Step::Verify),
        Kind::RequiresInput => Some(Step::RequireInput(code)),
        Kind::Canceled => Some(Step::Cancel),
        Kind::Redacted => Some(Step::Redact),
    };
    let mut steps = Vec::new();
    match (existing, &outcome) {
        (true, None) => bail!("`created` is the event of a new session: leave out --session"),
        (true, _) => {}
        // A redaction needs a session that can be redacted: a verified one.
        (false, Some(Step::Redact)) if !request.flow => steps.extend([Step::Create, Step::Verify]),
        (false, _) => steps.push(Step::Create),
    }
    steps.extend(outcome);
    Ok(steps)
}

pub async fn run(
    base: &str,
    key: &str,
    request: &Request,
    args: &TriggerArgs,
) -> anyhow::Result<()> {
    let api = StripeHttp::new(base, key)?;
    let steps = plan(request, args.session.is_some())?;
    let mut session = args.session.clone();
    let before: HashSet<String> = match &session {
        Some(id) => {
            api.get(&format!("/v1/identity/verification_sessions/{id}"), &[])
                .await
                .with_context(|| format!("{id} at the emulator {base}"))?;
            events_of(&api, id)
                .await?
                .into_iter()
                .map(|e| e["id"].as_str().unwrap_or_default().to_string())
                .collect()
        }
        None => HashSet::new(),
    };

    for step in &steps {
        let id = session.clone().unwrap_or_default();
        let sessions = "/v1/identity/verification_sessions";
        let helpers = "/v1/test_helpers/identity/verification_sessions";
        let answer = match step {
            Step::Create => {
                let mut form = vec![("type".to_string(), "document".to_string())];
                if let Some(user) = &args.user {
                    form.push(("client_reference_id".into(), user.clone()));
                }
                api.post(sessions, &form).await
            }
            Step::Process => api.post(&format!("{helpers}/{id}/process"), &[]).await,
            Step::Verify => api.post(&format!("{helpers}/{id}/verify"), &[]).await,
            Step::RequireInput(code) => {
                api.post(
                    &format!("{helpers}/{id}/require_input"),
                    &[("last_error[code]".into(), code.clone())],
                )
                .await
            }
            Step::Cancel => api.post(&format!("{sessions}/{id}/cancel"), &[]).await,
            Step::Redact => api.post(&format!("{sessions}/{id}/redact"), &[]).await,
        }
        .with_context(|| format!("{step:?} at the emulator {base}"))?;
        if *step == Step::Create {
            let id = answer["id"].as_str().unwrap_or_default().to_string();
            if !id.starts_with("vs_") {
                bail!("the emulator created a session without an id");
            }
            println!(
                "created {id}{} at the emulator {base}",
                args.user
                    .as_deref()
                    .map(|u| format!(" for user {u}"))
                    .unwrap_or_default()
            );
            session = Some(id);
        }
    }
    let session = session.unwrap_or_default();

    // The events this run produced, oldest first, once the last step's event exists.
    let wanted = steps.last().map(Step::done_when).unwrap_or_default();
    let mut events = Vec::new();
    for _ in 0..MAX_POLLS {
        events = events_of(&api, &session).await?;
        events.retain(|e| !before.contains(e["id"].as_str().unwrap_or_default()));
        if events.iter().any(|e| e["type"] == wanted) {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    if !events.iter().any(|e| e["type"] == wanted) {
        bail!("the emulator did not emit {wanted} for {session} in time");
    }

    let mut failed = 0;
    for event in &events {
        let id = event["id"].as_str().unwrap_or_default();
        let kind = event["type"].as_str().unwrap_or_default();
        for line in first_attempts(&api, id).await? {
            if !line.ok {
                failed += 1;
            }
            println!("{kind} {id} ({session}) -> {}", line.text);
        }
    }
    if failed > 0 {
        bail!(
            "{failed} delivery attempt(s) failed (the emulator retries them; see {base}/_emulator)"
        );
    }
    Ok(())
}

/// The session's events at the emulator, oldest first.
async fn events_of(api: &StripeHttp, session: &str) -> anyhow::Result<Vec<Value>> {
    let list = api
        .get(
            "/v1/events",
            &[
                ("limit".into(), "100".into()),
                ("type".into(), "identity.verification_session.*".into()),
            ],
        )
        .await?;
    let mut mine: Vec<Value> = list["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["data"]["object"]["id"] == session)
        .cloned()
        .collect();
    // Newest first from the API; ties in `created` keep the API's order.
    mine.reverse();
    Ok(mine)
}

struct Delivered {
    ok: bool,
    text: String,
}

/// The first attempt of each delivery of `event` (waiting, bounded, for it to happen).
async fn first_attempts(api: &StripeHttp, event: &str) -> anyhow::Result<Vec<Delivered>> {
    let mut log = Value::Null;
    for _ in 0..MAX_POLLS {
        log = api
            .get("/_emulator/deliveries", &[("event".into(), event.into())])
            .await?;
        // The log lists attempts and deliveries from two reads: wait until every delivery's
        // first attempt is in the list itself, not only counted on the delivery.
        let deliveries = log["deliveries"].as_array().cloned().unwrap_or_default();
        let attempts = log["attempts"].as_array().cloned().unwrap_or_default();
        if deliveries
            .iter()
            .all(|d| attempts.iter().any(|a| a["delivery_id"] == d["id"]))
        {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let deliveries = log["deliveries"].as_array().cloned().unwrap_or_default();
    if deliveries.is_empty() {
        return Ok(vec![Delivered {
            ok: true,
            text: "no webhook endpoint is subscribed at the emulator".into(),
        }]);
    }
    let attempts = log["attempts"].as_array().cloned().unwrap_or_default();
    Ok(deliveries
        .iter()
        .map(|d| {
            let endpoint = d["endpoint"].as_str().unwrap_or("?");
            let first = attempts
                .iter()
                .filter(|a| a["delivery_id"] == d["id"])
                .min_by_key(|a| a["attempt"].as_i64());
            match first {
                None => Delivered {
                    ok: true,
                    text: format!("{endpoint}: not attempted yet ({})", d["state"]),
                },
                Some(a) => {
                    let status = a["status"]
                        .as_i64()
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "no answer".into());
                    let ok = a["success"].as_bool() == Some(true);
                    let error = a["error"].as_str().unwrap_or_default();
                    Delivered {
                        ok,
                        text: format!(
                            "{endpoint}: {status}{}",
                            if ok {
                                String::new()
                            } else {
                                format!(" {error}")
                            }
                        ),
                    }
                }
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(kinds: &[Kind], flow: bool, code: Option<&str>) -> Request {
        Request {
            kinds: kinds.to_vec(),
            flow,
            error_code: code.map(str::to_string),
        }
    }

    #[test]
    fn flows_and_events_become_emulator_calls() {
        let failed = request(
            &[Kind::Created, Kind::Processing, Kind::RequiresInput],
            true,
            Some("document_expired"),
        );
        assert_eq!(
            plan(&failed, false).unwrap(),
            vec![Step::Create, Step::RequireInput("document_expired".into())]
        );
        // On an existing session: a resubmission.
        assert_eq!(
            plan(&failed, true).unwrap(),
            vec![Step::RequireInput("document_expired".into())]
        );
        let verified = request(
            &[Kind::Created, Kind::Processing, Kind::Verified],
            true,
            None,
        );
        assert_eq!(
            plan(&verified, false).unwrap(),
            vec![Step::Create, Step::Verify]
        );
        assert_eq!(
            plan(&request(&[Kind::Redacted], false, None), false).unwrap(),
            vec![Step::Create, Step::Verify, Step::Redact]
        );
        assert_eq!(
            plan(&request(&[Kind::RequiresInput], false, None), true).unwrap(),
            vec![Step::RequireInput("document_unverified_other".into())]
        );
        assert!(plan(&request(&[Kind::Created], false, None), true).is_err());
    }
}
