//! Fan a decision out to the configured channels. Pure: the caller writes the result to the
//! outbox inside the decision's transaction.

use rand::Rng;

use super::config::ReactConfig;
use super::decision::{Decision, EMAIL_DECISIONS};

/// A reaction to write to the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct NewReaction {
    /// `rx_` + random; also the idempotency key the receiver sees.
    pub id: String,
    pub decision_key: String,
    pub kind: ReactionKind,
    /// Callback URL, email address or NATS subject.
    pub target: String,
    pub user_ref: Option<String>,
    pub session_id: String,
    pub decision: String,
    /// The decision as JSON (the body sent; emails are rendered from it).
    pub payload: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReactionKind {
    Callback,
    Email,
    Nats,
}

impl ReactionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReactionKind::Callback => "callback",
            ReactionKind::Email => "email",
            ReactionKind::Nats => "nats",
        }
    }

    pub fn parse(s: &str) -> Option<ReactionKind> {
        match s {
            "callback" => Some(ReactionKind::Callback),
            "email" => Some(ReactionKind::Email),
            "nats" => Some(ReactionKind::Nats),
            _ => None,
        }
    }
}

/// A fresh reaction id: `rx_` and 24 random alphanumerics (~143 bits).
pub fn reaction_id() -> String {
    let mut rng = rand::thread_rng();
    let suffix: String = (0..24)
        .map(|_| rng.sample(rand::distributions::Alphanumeric) as char)
        .collect();
    format!("rx_{suffix}")
}

/// Fan a decision out to the configured channels: one callback per configured URL; an email
/// when email is configured, an address is known and the decision is `retry_allowed`,
/// `alternative_required` or `verified`; one NATS message to `{prefix}.{decision}` when NATS
/// is configured.
pub fn plan(decision: &Decision, config: &ReactConfig) -> Vec<NewReaction> {
    let mut out = Vec::new();
    if !config.any_channel() {
        return out;
    }
    // Serializing a struct of strings and integers cannot fail; if it ever did, sending
    // nothing would be worse than sending an empty object, so fall back to that.
    let payload = serde_json::to_string(decision).unwrap_or_else(|_| "{}".to_string());
    let mut push = |kind: ReactionKind, target: String| {
        out.push(NewReaction {
            id: reaction_id(),
            decision_key: decision.key.clone(),
            kind,
            target,
            user_ref: decision.user.clone(),
            session_id: decision.session.clone(),
            decision: decision.decision.clone(),
            payload: payload.clone(),
        });
    };
    for url in &config.callbacks.urls {
        push(ReactionKind::Callback, url.clone());
    }
    if config.email.is_some() && EMAIL_DECISIONS.contains(&decision.decision.as_str()) {
        if let Some(address) = decision.email.as_deref().map(str::trim) {
            if !address.is_empty() {
                push(ReactionKind::Email, address.to_string());
            }
        }
    }
    if let Some(nats) = &config.nats {
        push(
            ReactionKind::Nats,
            format!("{}.{}", nats.subject_prefix, decision.decision),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::react::config::{EmailConfig, NatsConfig};

    fn decision(kind: &str, email: Option<&str>) -> Decision {
        Decision {
            key: format!("vs_1:{kind}:1"),
            decision: kind.into(),
            user: Some("user_1".into()),
            session: "vs_1".into(),
            state: kind.into(),
            error_code: None,
            reason: None,
            explanation: None,
            next_step: None,
            attempts_used: 1,
            attempts_left: 2,
            resume: None,
            reviewer: None,
            note: None,
            occurred_at: 1_700_000_000,
            email: email.map(str::to_string),
        }
    }

    fn full_config() -> ReactConfig {
        let mut c = ReactConfig::default();
        c.callbacks.urls = vec!["https://a.test/cb".into(), "https://b.test/cb".into()];
        c.email = Some(EmailConfig {
            host: "smtp.test".into(),
            from: "no-reply@acme.test".into(),
            ..Default::default()
        });
        c.nats = Some(NatsConfig {
            url: "nats://127.0.0.1:4222".into(),
            subject_prefix: "acme.idv".into(),
        });
        c
    }

    fn kinds(r: &[NewReaction]) -> Vec<(ReactionKind, &str)> {
        r.iter().map(|r| (r.kind, r.target.as_str())).collect()
    }

    #[test]
    fn nothing_configured_nothing_planned() {
        assert!(plan(
            &decision("verified", Some("a@b.test")),
            &ReactConfig::default()
        )
        .is_empty());
    }

    #[test]
    fn fan_out_per_decision() {
        let c = full_config();
        for kind in ["retry_allowed", "alternative_required", "verified"] {
            let r = plan(&decision(kind, Some("jane@example.test")), &c);
            assert_eq!(
                kinds(&r),
                vec![
                    (ReactionKind::Callback, "https://a.test/cb"),
                    (ReactionKind::Callback, "https://b.test/cb"),
                    (ReactionKind::Email, "jane@example.test"),
                    (ReactionKind::Nats, format!("acme.idv.{kind}").as_str()),
                ]
            );
        }
        for kind in [
            "needs_review",
            "rejected",
            "approved",
            "canceled",
            "redacted",
        ] {
            let r = plan(&decision(kind, Some("jane@example.test")), &c);
            assert_eq!(r.len(), 3, "{kind}: no email");
            assert!(r.iter().all(|r| r.kind != ReactionKind::Email));
        }
        // No address known: no email.
        let r = plan(&decision("verified", None), &c);
        assert_eq!(r.len(), 3);
        let r = plan(&decision("verified", Some("  ")), &c);
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn ids_are_unique_and_payload_has_no_address() {
        let r = plan(
            &decision("retry_allowed", Some("jane@example.test")),
            &full_config(),
        );
        let mut ids: Vec<&str> = r.iter().map(|r| r.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), r.len());
        for x in &r {
            assert!(x.id.starts_with("rx_") && x.id.len() == 27);
            assert!(!x.payload.contains("jane"));
            assert_eq!(x.decision_key, "vs_1:retry_allowed:1");
            assert_eq!(x.user_ref.as_deref(), Some("user_1"));
        }
    }

    #[test]
    fn email_without_smtp_config_is_not_planned() {
        let mut c = full_config();
        c.email = None;
        let r = plan(&decision("verified", Some("jane@example.test")), &c);
        assert!(r.iter().all(|r| r.kind != ReactionKind::Email));
    }
}
