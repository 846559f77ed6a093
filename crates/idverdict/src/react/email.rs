//! Email to the end user over SMTP: one template per decision (`retry_allowed`,
//! `alternative_required`, `verified`), plain text and HTML (multipart/alternative).
//!
//! Templates are built in and can be replaced per file from `email.templates_dir`:
//! `{decision}.txt` starts with a `Subject: …` line and a blank line, then the text body;
//! `{decision}.html` is the HTML body. `{{name}}` is replaced by a value (HTML-escaped in
//! the HTML body). Only the variables in [`VARIABLES`] exist: nothing that could carry a
//! secret, a `client_secret` or a link is ever offered to a template.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use super::config::{EmailConfig, TlsMode};
use super::plan::EMAIL_DECISIONS;
use super::{Delivery, Failure, ReactError};
use crate::decide::{Decision, DecisionType};

/// What a template may use.
pub const VARIABLES: &[&str] = &[
    "explanation",
    "error_code",
    "state",
    "attempts_used",
    "attempts_left",
    "session",
    "user",
    "date",
];

const BUILT_IN: &[(DecisionType, &str, &str)] = &[
    (
        DecisionType::RetryAllowed,
        include_str!("../../templates/email/retry_allowed.txt"),
        include_str!("../../templates/email/retry_allowed.html"),
    ),
    (
        DecisionType::AlternativeRequired,
        include_str!("../../templates/email/alternative_required.txt"),
        include_str!("../../templates/email/alternative_required.html"),
    ),
    (
        DecisionType::Verified,
        include_str!("../../templates/email/verified.txt"),
        include_str!("../../templates/email/verified.html"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{file}: the first line must be `Subject: …` followed by a blank line")]
    NoSubject { file: String },
    #[error("{file}: unknown variable {{{{{name}}}}} (known: {known})")]
    UnknownVariable {
        file: String,
        name: String,
        known: String,
    },
    #[error("{file}: `{{{{` without a closing `}}}}`")]
    Unclosed { file: String },
}

#[derive(Debug, Clone)]
struct Template {
    subject: String,
    text: String,
    html: String,
}

/// The loaded, checked templates.
#[derive(Debug, Clone)]
pub struct Templates {
    by_decision: HashMap<DecisionType, Template>,
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Templates {
    /// The built-in templates, each replaced by the operator's file when `dir` has one.
    pub fn load(dir: Option<&Path>) -> Result<Templates, TemplateError> {
        let mut by_decision = HashMap::new();
        for (decision, text, html) in BUILT_IN {
            let read = |ext: &str, default: &str| -> Result<(String, String), TemplateError> {
                let name = format!("{}.{ext}", decision.as_str());
                if let Some(dir) = dir {
                    let path = dir.join(&name);
                    if path.is_file() {
                        let body = std::fs::read_to_string(&path).map_err(|source| {
                            TemplateError::Read {
                                path: path.display().to_string(),
                                source,
                            }
                        })?;
                        return Ok((path.display().to_string(), body));
                    }
                }
                Ok((format!("built-in {name}"), default.to_string()))
            };
            let (text_file, text_src) = read("txt", text)?;
            let (html_file, html_src) = read("html", html)?;
            let (subject, body) =
                split_subject(&text_src).ok_or_else(|| TemplateError::NoSubject {
                    file: text_file.clone(),
                })?;
            check(&text_file, &text_src)?;
            check(&html_file, &html_src)?;
            by_decision.insert(
                *decision,
                Template {
                    subject,
                    text: body,
                    html: html_src,
                },
            );
        }
        Ok(Templates { by_decision })
    }

    /// Render the mail for a decision (`None` for decisions that send no mail).
    pub fn render(&self, decision: &Decision) -> Option<Rendered> {
        let template = self.by_decision.get(&decision.kind)?;
        let vars = variables(decision);
        let subject = substitute(&template.subject, &vars, false).replace(['\r', '\n'], " ");
        Some(Rendered {
            subject,
            text: substitute(&template.text, &vars, false),
            html: substitute(&template.html, &vars, true),
        })
    }
}

fn split_subject(src: &str) -> Option<(String, String)> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let (first, rest) = src.split_once('\n')?;
    let subject = first
        .trim_end_matches('\r')
        .strip_prefix("Subject:")?
        .trim();
    if subject.is_empty() {
        return None;
    }
    let rest = rest
        .strip_prefix("\r\n")
        .or_else(|| rest.strip_prefix('\n'))?;
    Some((subject.to_string(), rest.to_string()))
}

/// Every `{{name}}` must be a known variable.
fn check(file: &str, src: &str) -> Result<(), TemplateError> {
    let mut rest = src;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| TemplateError::Unclosed {
            file: file.to_string(),
        })?;
        let name = after[..end].trim();
        if !VARIABLES.contains(&name) {
            return Err(TemplateError::UnknownVariable {
                file: file.to_string(),
                name: name.to_string(),
                known: VARIABLES.join(", "),
            });
        }
        rest = &after[end + 2..];
    }
    Ok(())
}

fn substitute(src: &str, vars: &HashMap<&str, String>, html: bool) -> String {
    let mut out = String::with_capacity(src.len() + 64);
    let mut rest = src;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let value = vars
                    .get(after[..end].trim())
                    .map(String::as_str)
                    .unwrap_or("");
                if html {
                    out.push_str(&escape_html(value));
                } else {
                    out.push_str(value);
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What the end user is told when the decision carries no explanation of its own.
fn default_explanation(decision: DecisionType) -> &'static str {
    match decision {
        DecisionType::RetryAllowed => {
            "the verification could not be completed with the photos or document provided."
        }
        DecisionType::AlternativeRequired => "online verification cannot be used in your case.",
        _ => "",
    }
}

fn variables(d: &Decision) -> HashMap<&'static str, String> {
    let explanation = d
        .explanation
        .clone()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| default_explanation(d.kind).to_string());
    let date = std::time::UNIX_EPOCH
        .checked_add(Duration::from_secs(
            u64::try_from(d.occurred_at).unwrap_or(0),
        ))
        .map(httpdate::fmt_http_date)
        .unwrap_or_default();
    HashMap::from([
        ("explanation", explanation),
        (
            "error_code",
            d.error_code
                .as_ref()
                .map(|c| c.as_str().to_string())
                .unwrap_or_default(),
        ),
        ("state", d.state.as_str().to_string()),
        ("attempts_used", d.attempts_used.to_string()),
        ("attempts_left", d.attempts_left.to_string()),
        ("session", d.session.clone()),
        ("user", d.user.clone().unwrap_or_default()),
        ("date", date),
    ])
}

/// Replace anything that looks like an address in an error message: SMTP servers like to
/// quote the recipient (`550 <jane@…>: unknown user`), and error text is stored and logged.
pub fn scrub_addresses(s: &str) -> String {
    s.split(' ')
        .map(|w| if w.contains('@') { "<address>" } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The email channel: an SMTP transport, the sender and the templates.
pub struct EmailChannel {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    domain: String,
    templates: Templates,
}

impl EmailChannel {
    pub fn new(config: &EmailConfig) -> Result<EmailChannel, ReactError> {
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| ReactError::Config(format!("email.from: {e}")))?;
        let domain = from.email.domain().to_string();
        let templates = Templates::load(config.templates_dir.as_deref())
            .map_err(|e| ReactError::Config(format!("email.templates_dir: {e}")))?;
        let host = config.host.trim();
        let builder = match config.tls {
            TlsMode::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            TlsMode::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .map_err(|e| ReactError::Config(format!("email.host: {e}")))?,
            TlsMode::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                .map_err(|e| ReactError::Config(format!("email.host: {e}")))?,
        };
        let mut builder = builder
            .port(config.port())
            .timeout(Some(Duration::from_secs(config.timeout_secs)));
        if let (Some(user), Some(pass)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                pass.expose_secret().to_string(),
            ));
        }
        Ok(EmailChannel {
            transport: builder.build(),
            from,
            domain,
            templates,
        })
    }

    /// Render and send. `id` becomes the Message-ID, so a resent mail is recognisable as the
    /// same message by the receiving side.
    pub async fn deliver(&self, id: &str, to: &str, payload: &str) -> Delivery {
        let permanent = |error: String| {
            Delivery::Failed(Failure {
                status: None,
                error,
                retry_after: None,
                permanent: true,
            })
        };
        let decision: Decision = match serde_json::from_str(payload) {
            Ok(d) => d,
            Err(e) => return permanent(format!("stored payload is not a decision: {e}")),
        };
        let no_template = || {
            permanent(format!(
                "no email template for `{}`",
                decision.kind.as_str()
            ))
        };
        if !EMAIL_DECISIONS.contains(&decision.kind) {
            return no_template();
        }
        let Some(rendered) = self.templates.render(&decision) else {
            return no_template();
        };
        let to: Mailbox = match to.parse() {
            Ok(m) => m,
            Err(_) => return permanent("the recipient is not a valid address".to_string()),
        };
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(rendered.subject)
            .message_id(Some(format!("<{id}@{}>", self.domain)))
            .multipart(MultiPart::alternative_plain_html(
                rendered.text,
                rendered.html,
            ));
        let message = match message {
            Ok(m) => m,
            Err(e) => return permanent(scrub_addresses(&format!("cannot build the message: {e}"))),
        };
        match self.transport.send(message).await {
            Ok(response) => Delivery::Delivered {
                status: Some(u16::from(response.code())),
            },
            Err(e) => Delivery::Failed(Failure {
                status: e.status().map(u16::from),
                error: scrub_addresses(&format!("smtp: {e}")),
                retry_after: None,
                // 5xx: the server will say the same next time (unknown user, rejected).
                permanent: e.is_permanent(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{NextStep, UserState};
    use stripe_webhook::ErrorCode;

    fn decision(kind: DecisionType) -> Decision {
        Decision {
            key: "k".into(),
            kind,
            user: Some("u<1>".into()),
            session: "vs_1".into(),
            state: UserState::parse(kind.as_str()).unwrap_or(UserState::None),
            error_code: Some(ErrorCode::DocumentExpired),
            reason: Some("secret-ish reason".into()),
            explanation: Some("Your document has <expired>.".into()),
            next_step: Some(NextStep::Retry),
            attempts_used: 1,
            attempts_left: 2,
            resume: Some("POST /v1/users/u/verification_sessions".into()),
            reviewer: None,
            note: None,
            occurred_at: 1_700_000_000,
        }
    }

    #[test]
    fn built_in_templates_render() {
        let t = Templates::load(None).unwrap();
        let r = t.render(&decision(DecisionType::RetryAllowed)).unwrap();
        assert!(r.subject.contains("try again"));
        assert!(r.text.contains("Your document has <expired>."));
        assert!(r.html.contains("Your document has &lt;expired&gt;."));
        assert!(r.text.contains("2 remaining"));
        assert!(!r.text.contains("POST /v1"));
        assert!(!r.text.contains("{{"));
        assert!(t
            .render(&decision(DecisionType::AlternativeRequired))
            .is_some());
        assert!(t.render(&decision(DecisionType::Verified)).is_some());
        assert!(t.render(&decision(DecisionType::NeedsReview)).is_none());
    }

    #[test]
    fn overrides_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("verified.txt"),
            "Subject: Done, {{user}}\n\nAll good ({{session}}).\n",
        )
        .unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        let r = t.render(&decision(DecisionType::Verified)).unwrap();
        assert_eq!(r.subject, "Done, u<1>");
        assert_eq!(r.text, "All good (vs_1).\n");
        // The HTML part still comes from the built-in file.
        assert!(r.html.contains("has been verified"));

        std::fs::write(dir.path().join("verified.html"), "<p>{{client_secret}}</p>").unwrap();
        let e = Templates::load(Some(dir.path())).unwrap_err().to_string();
        assert!(
            e.contains("verified.html") && e.contains("client_secret"),
            "{e}"
        );
        std::fs::write(dir.path().join("verified.html"), "<p>{{session</p>").unwrap();
        assert!(matches!(
            Templates::load(Some(dir.path())),
            Err(TemplateError::Unclosed { .. })
        ));
        std::fs::remove_file(dir.path().join("verified.html")).unwrap();
        std::fs::write(dir.path().join("verified.txt"), "no subject here\n").unwrap();
        assert!(matches!(
            Templates::load(Some(dir.path())),
            Err(TemplateError::NoSubject { .. })
        ));
    }

    #[test]
    fn addresses_are_scrubbed_from_errors() {
        assert_eq!(
            scrub_addresses("550 <jane@example.test>: unknown user"),
            "550 <address> unknown user"
        );
    }
}
