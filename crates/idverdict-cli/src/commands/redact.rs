//! `idverdict redact --user REF`: ask Stripe to redact every verification session of one end
//! user (a data-deletion request), found both at Stripe (`client_reference_id`) and in
//! idverdict's own records (sessions matched by the user metadata key as well).
//!
//! Stripe redacts only sessions that are `requires_input` or `verified`; `processing` sessions
//! must finish first and `canceled` ones cannot be redacted (the command says so). Redaction at
//! Stripe completes asynchronously; each session then emits
//! `identity.verification_session.redacted`, and when that event reaches `serve` (as a webhook,
//! or through reconciliation) idverdict deletes the personal data it holds for the session.
//! This command itself changes nothing locally.

use std::collections::BTreeMap;

use anyhow::Context;
use clap::Args;
use idverdict::store::redact_url;
use stripe_webhook::{RedactionStatus, SessionStatus, VerificationSession};

#[derive(Debug, Args)]
#[command(
    long_about = "Ask Stripe to redact every verification session of one user.\n\n\
The user's sessions are listed at Stripe (by client_reference_id) and in idverdict's \
database. Each session that is `requires_input` or `verified` and not already redacted is \
redacted through Stripe's API (POST /v1/identity/verification_sessions/{id}/redact); \
`processing` sessions must finish first, `canceled` ones cannot be redacted.\n\n\
idverdict's own copy of the personal data (metadata values, email addresses, raw event \
payloads, personal fields of reaction payloads) is deleted when Stripe's \
`identity.verification_session.redacted` events arrive at `serve` — as webhooks, or through \
`idverdict reconcile`. Ids, statuses, error codes and timestamps are kept.\n\n\
Needs STRIPE_API_KEY or --api-key (and STRIPE_API_BASE or --api-base for an emulator); in \
the data directory of a dev-mode `idverdict serve` its embedded emulator is found on its own."
)]
pub struct RedactArgs {
    /// The user: the `client_reference_id` the sessions were created with.
    #[arg(long)]
    pub user: String,
    /// List what would be redacted without calling Stripe's redact.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub config: super::ConfigArgs,
    #[command(flatten)]
    pub stripe: super::StripeArgs,
}

/// What the command does with one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Redact,
    AlreadyRedacted,
    RedactionInProgress,
    NotRedactable,
    NotAtStripe,
}

fn plan_for(session: Option<&VerificationSession>) -> Plan {
    let Some(s) = session else {
        return Plan::NotAtStripe;
    };
    match s.redaction.as_ref().map(|r| &r.status) {
        Some(RedactionStatus::Redacted) => return Plan::AlreadyRedacted,
        Some(RedactionStatus::Processing) => return Plan::RedactionInProgress,
        _ => {}
    }
    match s.status {
        SessionStatus::RequiresInput | SessionStatus::Verified => Plan::Redact,
        _ => Plan::NotRedactable,
    }
}

pub async fn run(args: RedactArgs) -> anyhow::Result<()> {
    let user = args.user.trim();
    anyhow::ensure!(!user.is_empty(), "--user must not be empty");
    let config = super::load_config(&args.config, &args.stripe.overrides())?;
    crate::logging::init(config.log_format);
    let (client, settings) = super::stripe_client(&config, "redact")?;

    let url = redact_url(&config.database_url);
    let store = super::open_store(&config).await?;
    let local = store.sessions_for_user(user).await;
    store.close().await;
    let local = local.with_context(|| format!("reading the user's sessions from {url}"))?;

    let remote = client
        .list_verification_sessions(user)
        .await
        .with_context(|| format!("listing the user's sessions at {}", settings.api_base))?;
    let mut sessions: BTreeMap<String, Option<VerificationSession>> = remote
        .into_iter()
        .map(|s| (s.id.clone(), Some(s)))
        .collect();
    for record in &local {
        if sessions.contains_key(&record.id) {
            continue;
        }
        // Known here but not listed for this client_reference_id (matched by metadata).
        let found = match client.retrieve_verification_session(&record.id, &[]).await {
            Ok(s) => Some(s),
            Err(e) if e.is_not_found() => None,
            Err(e) => {
                return Err(e).with_context(|| format!("retrieving {} from Stripe", record.id))
            }
        };
        sessions.insert(record.id.clone(), found);
    }
    if sessions.is_empty() {
        println!("no verification sessions found for user {user} (at Stripe or in idverdict)");
        return Ok(());
    }

    let mut requested = 0usize;
    let mut failures = 0usize;
    for (id, session) in &sessions {
        let status = session
            .as_ref()
            .map(|s| s.status.as_str())
            .unwrap_or("unknown");
        let line = match plan_for(session.as_ref()) {
            Plan::Redact if args.dry_run => "would request redaction".to_string(),
            Plan::Redact => match client.redact_verification_session(id).await {
                Ok(_) => {
                    requested += 1;
                    "redaction requested".to_string()
                }
                Err(e) => {
                    failures += 1;
                    format!("redaction FAILED: {e}")
                }
            },
            Plan::AlreadyRedacted => "already redacted".to_string(),
            Plan::RedactionInProgress => "redaction already in progress".to_string(),
            Plan::NotRedactable => {
                "skipped: Stripe redacts only requires_input or verified sessions".to_string()
            }
            Plan::NotAtStripe => "skipped: not found at Stripe".to_string(),
        };
        println!("{id}\t{status}\t{line}");
    }
    println!(
        "{requested} redaction(s) requested for user {user}; idverdict deletes its copy of the personal data when Stripe's identity.verification_session.redacted events arrive"
    );
    anyhow::ensure!(failures == 0, "{failures} redaction request(s) failed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(status: &str, redaction: Option<&str>) -> VerificationSession {
        let mut v = serde_json::json!({
            "id": "vs_1",
            "object": "identity.verification_session",
            "created": 1,
            "livemode": false,
            "status": status,
            "type": "document",
            "metadata": {},
        });
        if let Some(r) = redaction {
            v["redaction"] = serde_json::json!({ "status": r });
        }
        serde_json::from_value(v).expect("session")
    }

    #[test]
    fn plans() {
        assert_eq!(plan_for(Some(&session("verified", None))), Plan::Redact);
        assert_eq!(
            plan_for(Some(&session("requires_input", None))),
            Plan::Redact
        );
        assert_eq!(
            plan_for(Some(&session("processing", None))),
            Plan::NotRedactable
        );
        assert_eq!(
            plan_for(Some(&session("canceled", None))),
            Plan::NotRedactable
        );
        assert_eq!(
            plan_for(Some(&session("verified", Some("redacted")))),
            Plan::AlreadyRedacted
        );
        assert_eq!(
            plan_for(Some(&session("verified", Some("processing")))),
            Plan::RedactionInProgress
        );
        assert_eq!(plan_for(None), Plan::NotAtStripe);
    }
}
