//! Fan a decision out to the configured channels. Pure: the caller writes the result to the
//! outbox inside the decision's transaction.

use rand::Rng;

use super::config::ReactConfig;
use super::email::{normalize_locale, EMAIL_DECISIONS};
use crate::decide::{Decision, DecisionType, SessionRecord};

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
    pub decision: DecisionType,
    /// The decision as JSON (the body sent; emails are rendered from it).
    pub payload: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReactionState {
    /// Waiting for its (next) attempt.
    Pending,
    /// Leased by a dispatcher for an attempt.
    Sending,
    Delivered,
    /// Every scheduled attempt failed; kept for the operator to redeliver.
    Exhausted,
    /// Will never be sent (an email whose session was redacted first).
    Canceled,
}

impl ReactionState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReactionState::Pending => "pending",
            ReactionState::Sending => "sending",
            ReactionState::Delivered => "delivered",
            ReactionState::Exhausted => "exhausted",
            ReactionState::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<ReactionState> {
        [
            ReactionState::Pending,
            ReactionState::Sending,
            ReactionState::Delivered,
            ReactionState::Exhausted,
            ReactionState::Canceled,
        ]
        .into_iter()
        .find(|state| state.as_str() == s)
    }

    /// Not delivered yet, and still going to be tried.
    pub fn is_waiting(self) -> bool {
        matches!(self, ReactionState::Pending | ReactionState::Sending)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReactionKind {
    Callback,
    Email,
    Nats,
}

impl ReactionKind {
    pub const ALL: [ReactionKind; 3] = [
        ReactionKind::Callback,
        ReactionKind::Email,
        ReactionKind::Nats,
    ];

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

/// The end user's address for a decision about `session`, when email is configured: the
/// session's metadata under `email_metadata_key`, else `provided_details.email` as Stripe
/// returned it to fetch-latest (webhooks never carry it). Used as the email target only;
/// never stored anywhere else.
pub fn recipient(
    session: Option<&SessionRecord>,
    provided_email: Option<&str>,
    config: &ReactConfig,
) -> Option<String> {
    let email = config.email.as_ref()?;
    let from_metadata = email
        .email_metadata_key
        .as_ref()
        .and_then(|key| session?.metadata.get(key).cloned());
    from_metadata.or_else(|| provided_email.map(str::to_string))
}

/// The end user's locale for a decision about `session`: the session's metadata under
/// `email.locale_metadata_key`, normalised (`pt_BR` → `pt-br`). Read when the decision is
/// planned, so a later redaction (which erases metadata) cannot change the mail's language.
pub fn locale(session: Option<&SessionRecord>, config: &ReactConfig) -> Option<String> {
    let key = config.email.as_ref()?.locale_metadata_key.as_ref()?;
    normalize_locale(session?.metadata.get(key)?)
}

/// [`plan_for`] without a locale: the default templates.
pub fn plan(
    decision: &Decision,
    recipient: Option<&str>,
    config: &ReactConfig,
) -> Vec<NewReaction> {
    plan_for(decision, recipient, None, config)
}

/// Fan a decision out to the configured channels: one callback per configured URL; an email
/// to `recipient` when email is configured, an address is known and the decision is one of
/// [`EMAIL_DECISIONS`] (its payload carries `locale`, which picks the templates); one NATS
/// message to `{prefix}.{type}` when NATS is configured.
pub fn plan_for(
    decision: &Decision,
    recipient: Option<&str>,
    locale: Option<&str>,
    config: &ReactConfig,
) -> Vec<NewReaction> {
    let mut out = Vec::new();
    if !config.any_channel() {
        return out;
    }
    // Serializing a struct of strings and integers cannot fail; if it ever did, sending
    // nothing would be worse than sending an empty object, so fall back to that.
    let payload = serde_json::to_string(decision).unwrap_or_else(|_| "{}".to_string());
    let mut push = |kind: ReactionKind, target: String, payload: String| {
        out.push(NewReaction {
            id: reaction_id(),
            decision_key: decision.key.clone(),
            kind,
            target,
            user_ref: decision.user.clone(),
            session_id: decision.session.clone(),
            decision: decision.kind,
            payload,
        });
    };
    for url in &config.callbacks.urls {
        push(ReactionKind::Callback, url.clone(), payload.clone());
    }
    if config.email.is_some() && EMAIL_DECISIONS.contains(&decision.kind) {
        if let Some(address) = recipient.map(str::trim) {
            if !address.is_empty() {
                let localized = Decision {
                    locale: locale.map(str::to_string),
                    ..decision.clone()
                };
                let email_payload =
                    serde_json::to_string(&localized).unwrap_or_else(|_| payload.clone());
                push(ReactionKind::Email, address.to_string(), email_payload);
            }
        }
    }
    if let Some(nats) = &config.nats {
        push(
            ReactionKind::Nats,
            format!("{}.{}", nats.subject_prefix, decision.kind.as_str()),
            payload.clone(),
        );
    }
    out
}

/// A reaction's target as people are shown it (the console, `idverdict reactions`): email
/// addresses masked to their first letter and domain — whose it is, the user column says.
pub fn masked_target(kind: &str, target: &str) -> String {
    if kind != ReactionKind::Email.as_str() {
        return target.to_string();
    }
    match target.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => target.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::UserState;
    use crate::react::config::{EmailConfig, NatsConfig};
    use DecisionType as T;

    fn decision(kind: DecisionType) -> Decision {
        Decision {
            key: format!("vs_1:{}:1", kind.as_str()),
            kind,
            user: Some("user_1".into()),
            session: "vs_1".into(),
            state: UserState::parse(kind.as_str()).unwrap_or(UserState::None),
            why: None,
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
            locale: None,
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
            ..Default::default()
        });
        c
    }

    fn kinds(r: &[NewReaction]) -> Vec<(ReactionKind, &str)> {
        r.iter().map(|r| (r.kind, r.target.as_str())).collect()
    }

    #[test]
    fn nothing_configured_nothing_planned() {
        assert!(plan(
            &decision(T::Verified),
            Some("a@b.test"),
            &ReactConfig::default()
        )
        .is_empty());
    }

    #[test]
    fn fan_out_per_decision() {
        let c = full_config();
        for kind in EMAIL_DECISIONS {
            let r = plan(&decision(kind), Some("jane@example.test"), &c);
            assert_eq!(
                kinds(&r),
                vec![
                    (ReactionKind::Callback, "https://a.test/cb"),
                    (ReactionKind::Callback, "https://b.test/cb"),
                    (ReactionKind::Email, "jane@example.test"),
                    (
                        ReactionKind::Nats,
                        format!("acme.idv.{}", kind.as_str()).as_str()
                    ),
                ]
            );
        }
        for kind in [
            T::NeedsReview,
            T::Rejected,
            T::Approved,
            T::Canceled,
            T::Redacted,
        ] {
            let r = plan(&decision(kind), Some("jane@example.test"), &c);
            assert_eq!(r.len(), 3, "{kind:?}: no email");
            assert!(r.iter().all(|r| r.kind != ReactionKind::Email));
        }
        // No address known: no email.
        let r = plan(&decision(T::Verified), None, &c);
        assert_eq!(r.len(), 3);
        let r = plan(&decision(T::Verified), Some("  "), &c);
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn ids_are_unique_and_payload_has_no_address() {
        let r = plan(
            &decision(T::RetryAllowed),
            Some("jane@example.test"),
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
        let r = plan(&decision(T::Verified), Some("jane@example.test"), &c);
        assert!(r.iter().all(|r| r.kind != ReactionKind::Email));
        assert_eq!(recipient(None, Some("jane@example.test"), &c), None);
    }

    #[test]
    fn the_recipient_is_the_metadata_address_else_the_provided_one() {
        let mut c = full_config();
        let mut session: SessionRecord = SessionRecord::example("vs_1");
        session
            .metadata
            .insert("contact".into(), "meta@example.test".into());
        assert_eq!(
            recipient(Some(&session), Some("provided@example.test"), &c).as_deref(),
            Some("provided@example.test"),
            "no metadata key configured"
        );
        if let Some(email) = c.email.as_mut() {
            email.email_metadata_key = Some("contact".into());
        }
        assert_eq!(
            recipient(Some(&session), Some("provided@example.test"), &c).as_deref(),
            Some("meta@example.test")
        );
        session.metadata.clear();
        assert_eq!(
            recipient(Some(&session), Some("provided@example.test"), &c).as_deref(),
            Some("provided@example.test")
        );
        assert_eq!(recipient(Some(&session), None, &c), None);
    }

    #[test]
    fn the_locale_goes_to_the_email_payload_only() {
        let mut c = full_config();
        if let Some(email) = c.email.as_mut() {
            email.locale_metadata_key = Some("locale".into());
        }
        let mut session = SessionRecord::example("vs_1");
        session.metadata.insert("locale".into(), "pt_BR".into());
        let locale = locale(Some(&session), &c);
        assert_eq!(locale.as_deref(), Some("pt-br"));
        let r = plan_for(
            &decision(T::RetryAllowed),
            Some("jane@example.test"),
            locale.as_deref(),
            &c,
        );
        for x in &r {
            let body: serde_json::Value = serde_json::from_str(&x.payload).unwrap();
            match x.kind {
                ReactionKind::Email => assert_eq!(body["locale"], "pt-br"),
                _ => assert!(body.get("locale").is_none(), "{body}"),
            }
        }
    }
}
