//! Email to the end user over SMTP: one template per decision (`retry_allowed`,
//! `alternative_required`, `verified`), plain text and HTML (multipart/alternative).
//!
//! Templates are built in (English) and can be replaced per file from `email.templates_dir`:
//! `{decision}.txt` starts with a `Subject: …` line and a blank line, then the text body;
//! `{decision}.html` is the HTML body. `{decision}.{locale}.txt`/`.html` are the templates of a
//! locale (`fr`, `pt-br`), chosen by the session's `email.locale_metadata_key` metadata value
//! (`pt-BR` tries `pt-br`, then `pt`, then the default); a locale's missing file falls back to
//! the default one. `{{name}}` is replaced by a value (HTML-escaped in the HTML body);
//! `{{#name}}…{{/name}}` is kept only when the value is not empty, `{{^name}}…{{/name}}` only
//! when it is. Only the variables in [`VARIABLES`] exist: nothing that could carry a secret or
//! a `client_secret` is ever offered to a template; the one link is the operator's own
//! `email.resume_url`.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use super::config::{EmailConfig, TlsMode};
use super::{Delivery, Failure, ReactError};
use crate::decide::{Decision, DecisionType};

/// The decisions that mail the end user: what went wrong and how to try again, that another
/// way is needed, or that they are verified. The others concern the app, not the user.
pub const EMAIL_DECISIONS: [DecisionType; 3] = [
    DecisionType::RetryAllowed,
    DecisionType::AlternativeRequired,
    DecisionType::Verified,
];

/// What a template may use.
pub const VARIABLES: &[&str] = &[
    "explanation",
    "reason",
    "resume_url",
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
    /// By decision and locale (`None`: the default).
    by_decision: HashMap<(DecisionType, Option<String>), Template>,
    /// `email.resume_url`, with its `{user}` and `{session}` placeholders.
    resume_url: Option<String>,
}

/// A locale as written in metadata (`pt_BR`, `FR`), as template files name it (`pt-br`,
/// `fr`); `None` for anything that is not letters, digits and dashes.
pub fn normalize_locale(raw: &str) -> Option<String> {
    let locale = raw.trim().to_ascii_lowercase().replace('_', "-");
    let valid = !locale.is_empty()
        && locale.len() <= 35
        && locale
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    valid.then_some(locale)
}

/// Check `email.resume_url`: an http(s) URL once its placeholders are filled, with no other
/// `{…}` than `{user}` and `{session}`.
pub fn check_resume_url(template: &str) -> Result<(), String> {
    let filled = template.replace("{user}", "u").replace("{session}", "vs_1");
    if filled.contains(['{', '}']) {
        return Err(format!(
            "`{template}`: the only placeholders are {{user}} and {{session}}"
        ));
    }
    match url::Url::parse(&filled) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
        _ => Err(format!("`{template}` is not an http or https URL")),
    }
}

/// The resume link for a decision: the template with the user (URL-encoded) and session.
fn resume_link(template: &str, d: &Decision) -> String {
    let encode = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    template
        .replace("{user}", &encode(d.user.as_deref().unwrap_or_default()))
        .replace("{session}", &encode(&d.session))
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Templates {
    /// The built-in templates, each replaced by the operator's file when `dir` has one, plus
    /// the locale templates `dir` holds.
    pub fn load(dir: Option<&Path>) -> Result<Templates, TemplateError> {
        let mut by_decision = HashMap::new();
        for (decision, text, html) in BUILT_IN {
            let base = Source {
                name: format!("built-in {}", decision.as_str()),
                text: text.to_string(),
                html: html.to_string(),
            };
            let default = base.overridden(dir, decision.as_str())?;
            by_decision.insert((*decision, None), default.parse()?);
            for locale in locales(dir, *decision)? {
                let stem = format!("{}.{locale}", decision.as_str());
                let localized = default.overridden(dir, &stem)?;
                by_decision.insert((*decision, Some(locale)), localized.parse()?);
            }
        }
        Ok(Templates {
            by_decision,
            resume_url: None,
        })
    }

    /// Use this `email.resume_url` in the retry and alternative-method emails.
    pub fn with_resume_url(mut self, template: Option<String>) -> Templates {
        self.resume_url = template;
        self
    }

    /// Render the mail for a decision (`None` for decisions that send no mail), in the
    /// decision's locale when there are templates for it.
    pub fn render(&self, decision: &Decision) -> Option<Rendered> {
        let localized = decision.locale.as_deref().and_then(|locale| {
            let language = locale.split('-').next().unwrap_or(locale);
            [locale, language]
                .into_iter()
                .find_map(|l| self.by_decision.get(&(decision.kind, Some(l.to_string()))))
        });
        let template = localized.or_else(|| self.by_decision.get(&(decision.kind, None)))?;
        let vars = variables(decision, self.resume_url.as_deref());
        let subject = substitute(&template.subject, &vars, false).replace(['\r', '\n'], " ");
        Some(Rendered {
            subject,
            text: substitute(&template.text, &vars, false),
            html: substitute(&template.html, &vars, true),
        })
    }
}

/// One decision's template sources: the text file (with its subject line) and the HTML file,
/// and where they came from (for errors).
#[derive(Debug, Clone)]
struct Source {
    name: String,
    text: String,
    html: String,
}

impl Source {
    /// These sources with `dir/{stem}.txt` and `dir/{stem}.html` in place of each part that
    /// exists there.
    fn overridden(&self, dir: Option<&Path>, stem: &str) -> Result<Source, TemplateError> {
        let mut out = self.clone();
        let Some(dir) = dir else {
            return Ok(out);
        };
        for (ext, part) in [("txt", &mut out.text), ("html", &mut out.html)] {
            let path = dir.join(format!("{stem}.{ext}"));
            if path.is_file() {
                *part = std::fs::read_to_string(&path).map_err(|source| TemplateError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                out.name = path.display().to_string();
            }
        }
        Ok(out)
    }

    fn parse(&self) -> Result<Template, TemplateError> {
        let (subject, body) =
            split_subject(&self.text).ok_or_else(|| TemplateError::NoSubject {
                file: format!("{} (text)", self.name),
            })?;
        check(&self.name, &self.text)?;
        check(&self.name, &self.html)?;
        Ok(Template {
            subject,
            text: body,
            html: self.html.clone(),
        })
    }
}

/// The locales `dir` has templates of for `decision`: files `{decision}.{locale}.txt|html`.
fn locales(dir: Option<&Path>, decision: DecisionType) -> Result<Vec<String>, TemplateError> {
    let Some(dir) = dir else {
        return Ok(Vec::new());
    };
    let entries = std::fs::read_dir(dir).map_err(|source| TemplateError::Read {
        path: dir.display().to_string(),
        source,
    })?;
    let prefix = format!("{}.", decision.as_str());
    let mut found: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|name| {
            let rest = name.strip_prefix(&prefix)?;
            let locale = rest
                .strip_suffix(".txt")
                .or_else(|| rest.strip_suffix(".html"))?;
            normalize_locale(locale).filter(|l| l == locale)
        })
        .collect();
    found.sort();
    found.dedup();
    Ok(found)
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

/// A `{{…}}` tag: a variable, or the start (`#` kept when not empty, `^` when empty) or end
/// (`/`) of a section.
enum Tag<'a> {
    Var(&'a str),
    Open { name: &'a str, when_set: bool },
    Close(&'a str),
}

fn tag(inner: &str) -> Tag<'_> {
    let inner = inner.trim();
    if let Some(name) = inner.strip_prefix('#') {
        Tag::Open {
            name: name.trim(),
            when_set: true,
        }
    } else if let Some(name) = inner.strip_prefix('^') {
        Tag::Open {
            name: name.trim(),
            when_set: false,
        }
    } else if let Some(name) = inner.strip_prefix('/') {
        Tag::Close(name.trim())
    } else {
        Tag::Var(inner)
    }
}

/// Every `{{name}}` must be a known variable, and sections must close in order.
fn check(file: &str, src: &str) -> Result<(), TemplateError> {
    let unknown = |name: &str| TemplateError::UnknownVariable {
        file: file.to_string(),
        name: name.to_string(),
        known: VARIABLES.join(", "),
    };
    let mut open: Vec<&str> = Vec::new();
    let mut rest = src;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| TemplateError::Unclosed {
            file: file.to_string(),
        })?;
        let name = match tag(&after[..end]) {
            Tag::Var(name) => name,
            Tag::Open { name, .. } => {
                open.push(name);
                name
            }
            Tag::Close(name) => {
                if open.pop() != Some(name) {
                    return Err(TemplateError::Unclosed {
                        file: file.to_string(),
                    });
                }
                name
            }
        };
        if !VARIABLES.contains(&name) {
            return Err(unknown(name));
        }
        rest = &after[end + 2..];
    }
    if open.is_empty() {
        Ok(())
    } else {
        Err(TemplateError::Unclosed {
            file: file.to_string(),
        })
    }
}

fn substitute(src: &str, vars: &HashMap<&str, String>, html: bool) -> String {
    let mut out = String::with_capacity(src.len() + 64);
    // Sections whose content is being skipped, innermost last; output resumes when empty.
    let mut skipping: Vec<&str> = Vec::new();
    let mut rest = src;
    while let Some(start) = rest.find("{{") {
        if skipping.is_empty() {
            out.push_str(&rest[..start]);
        }
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            if skipping.is_empty() {
                out.push_str(&rest[start..]);
            }
            rest = "";
            break;
        };
        let value = |name: &str| vars.get(name).map(String::as_str).unwrap_or("");
        match tag(&after[..end]) {
            Tag::Var(name) if skipping.is_empty() => {
                if html {
                    out.push_str(&escape_html(value(name)));
                } else {
                    out.push_str(value(name));
                }
            }
            Tag::Var(_) => {}
            Tag::Open { name, when_set } => {
                let set = !value(name).trim().is_empty();
                if !skipping.is_empty() || set != when_set {
                    skipping.push(name);
                }
            }
            Tag::Close(name) => {
                if skipping.last() == Some(&name) {
                    skipping.pop();
                }
            }
        }
        rest = &after[end + 2..];
    }
    if skipping.is_empty() {
        out.push_str(rest);
    }
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

fn variables(d: &Decision, resume_url: Option<&str>) -> HashMap<&'static str, String> {
    // The resume link only where the user has something to resume.
    let resumes = matches!(
        d.kind,
        DecisionType::RetryAllowed | DecisionType::AlternativeRequired
    );
    let resume_url = resume_url
        .filter(|_| resumes)
        .map(|t| resume_link(t, d))
        .unwrap_or_default();
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
        ("reason", d.reason.clone().unwrap_or_default()),
        ("resume_url", resume_url),
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
            .map_err(|e| ReactError::Config(format!("email.templates_dir: {e}")))?
            .with_resume_url(config.resume_url.clone());
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
            why: None,
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
            locale: None,
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

    #[test]
    fn the_resume_link_replaces_go_back_where_the_user_resumes() {
        let t = Templates::load(None).unwrap().with_resume_url(Some(
            "https://app.example/verify?user={user}&s={session}".into(),
        ));
        let mut d = decision(DecisionType::RetryAllowed);
        d.user = Some("u 1&2".into());
        let r = t.render(&d).unwrap();
        let link = "https://app.example/verify?user=u+1%262&s=vs_1";
        assert!(
            r.text
                .contains(&format!("continue at {link} and verify again")),
            "{}",
            r.text
        );
        assert!(!r.text.contains("go back to where you started"));
        assert!(
            r.html.contains(&format!("href=\"{}\"", escape_html(link))),
            "{}",
            r.html
        );
        let alt = t
            .render(&decision(DecisionType::AlternativeRequired))
            .unwrap();
        assert!(alt
            .text
            .contains("continue at https://app.example/verify?user=u%3C1%3E"));
        // Nothing to resume once verified.
        let done = t.render(&decision(DecisionType::Verified)).unwrap();
        assert!(!done.text.contains("app.example"));
        // Without the setting: the words as before.
        let plain = Templates::load(None).unwrap().render(&d).unwrap();
        assert!(plain
            .text
            .contains("go back to where you started the verification"));
        assert!(!plain.text.contains("{{") && !plain.text.contains("continue at"));
    }

    #[test]
    fn resume_url_settings_are_checked() {
        assert!(check_resume_url("https://app.example/verify?user={user}").is_ok());
        assert!(check_resume_url("http://localhost:3000/v/{session}").is_ok());
        assert!(check_resume_url("https://app.example/{token}").is_err());
        assert!(check_resume_url("javascript:alert({user})").is_err());
        assert!(check_resume_url("not a url").is_err());
    }

    #[test]
    fn locale_templates_are_chosen_by_the_decisions_locale_with_fallbacks() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("retry_allowed.fr.txt"),
            "Subject: Vérification à refaire\n\nRaison : {{explanation}}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("retry_allowed.pt-br.txt"),
            "Subject: Tente de novo\n\n{{explanation}}\n",
        )
        .unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        let with = |locale: Option<&str>| {
            let mut d = decision(DecisionType::RetryAllowed);
            d.locale = locale.map(str::to_string);
            t.render(&d).unwrap()
        };
        assert_eq!(with(Some("fr")).subject, "Vérification à refaire");
        // A region falls back to its language; the HTML part falls back to the default.
        let fr_ca = with(Some("fr-ca"));
        assert_eq!(fr_ca.subject, "Vérification à refaire");
        assert!(fr_ca.html.contains("How to try again"));
        assert_eq!(with(Some("pt-br")).subject, "Tente de novo");
        // No templates for it (or no locale): the default, English.
        assert!(with(Some("de")).subject.contains("try again"));
        assert!(with(None).subject.contains("try again"));
        assert_eq!(normalize_locale(" pt_BR "), Some("pt-br".into()));
        assert_eq!(normalize_locale("../etc"), None);
        // A locale file is checked like the others.
        std::fs::write(dir.path().join("verified.de.html"), "<p>{{secret}}</p>").unwrap();
        let e = Templates::load(Some(dir.path())).unwrap_err().to_string();
        assert!(
            e.contains("verified.de.html") && e.contains("secret"),
            "{e}"
        );
    }

    #[test]
    fn sections_render_only_when_their_variable_is_set_or_unset() {
        let vars: HashMap<&str, String> =
            HashMap::from([("user", "u".to_string()), ("reason", String::new())]);
        let src = "a{{#user}}[{{user}}{{^reason}}-{{/reason}}]{{/user}}{{#reason}}R{{/reason}}b";
        assert_eq!(substitute(src, &vars, false), "a[u-]b");
        assert!(check("t", src).is_ok());
        assert!(matches!(
            check("t", "{{#user}}x"),
            Err(TemplateError::Unclosed { .. })
        ));
        assert!(matches!(
            check("t", "{{#user}}x{{/reason}}"),
            Err(TemplateError::Unclosed { .. })
        ));
    }
}
