//! The hosted verification flow's stand-in: the page behind each session's
//! `url`, where a tester picks the outcome (as in Stripe's test mode, where
//! nothing is really verified and the tester selects a test case) and who the
//! submission shows: name, date of birth, address, email, phone, ID number and
//! the document's type, country, number and dates, prefilled with test defaults.
//!
//! Submitting moves the session to `processing` at once and to the chosen
//! outcome after the configured processing delay.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use serde::Deserialize;

use crate::lifecycle::{self, error_codes, parse_outcome, Cause, Pending};
use crate::model::{Session, Status};
use crate::person::{Choice, Choices, Field, VerifiedPerson, DOCUMENT_TYPES, ID_NUMBER_TYPES};
use crate::store::Kind;
use crate::Emulator;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{t}</title><style>body{{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1a1f36}}\
fieldset{{border:1px solid #ccd;border-radius:6px;margin:1rem 0}}label{{display:block;margin:.3rem 0}}small{{color:#697386}}\
.grid{{display:grid;grid-template-columns:12rem 1fr;gap:.3rem .8rem;align-items:center}}.grid label{{margin:0}}\
button{{background:#635bff;color:#fff;border:0;border-radius:6px;padding:.6rem 1.2rem;font-size:1rem}}\
table{{border-collapse:collapse;font-size:.85rem}}td,th{{border-bottom:1px solid #e3e8ee;padding:.25rem .5rem;text-align:left}}\
.ok{{color:#0a7d32}}.bad{{color:#c0123c}}code{{font-size:.85rem}}</style></head><body>{body}</body></html>",
        t = escape(title)
    )
}

fn message(status: StatusCode, title: &str, text: &str) -> Response {
    (
        status,
        Html(page(
            title,
            &format!("<h1>{}</h1><p>{}</p>", escape(title), escape(text)),
        )),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

async fn session_for(emu: &Emulator, id: &str, token: Option<&str>) -> Result<Session, Response> {
    let s = emu
        .store
        .get::<Session>(Kind::Session, id)
        .await
        .map_err(|_| {
            message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Error",
                "The emulator could not read its state.",
            )
        })?;
    match s {
        Some(s) if s.status == Status::RequiresInput && token == Some(s.token.as_str()) => Ok(s),
        Some(s) if s.status == Status::RequiresInput => Err(message(
            StatusCode::NOT_FOUND,
            "This link has expired",
            "Verification links are single use. Retrieve the VerificationSession again to get a fresh url.",
        )),
        Some(s) => Err(message(
            StatusCode::CONFLICT,
            "Nothing to submit",
            &format!("This verification session has status `{}`; only a session that requires input can be submitted.", s.status.as_str()),
        )),
        None => Err(message(StatusCode::NOT_FOUND, "Unknown verification session", "No such verification session.")),
    }
}

pub async fn show(
    State(emu): State<Arc<Emulator>>,
    Path(id): Path<String>,
    Query(q): Query<TokenQuery>,
) -> Response {
    let s = match session_for(&emu, &id, q.token.as_deref()).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let mut options = String::from("<label><input type=\"radio\" name=\"outcome\" value=\"verified\" checked> <b>verified</b> <small>— every check passes</small></label>");
    for (code, why) in error_codes() {
        options.push_str(&format!(
            "<label><input type=\"radio\" name=\"outcome\" value=\"{c}\"> <code>{c}</code> <small>— {w}</small></label>",
            c = escape(&code),
            w = escape(&why)
        ));
    }
    let last = s
        .last_error
        .as_ref()
        .map(|e| {
            format!(
                "<p>Previous attempt failed: <code>{}</code></p>",
                escape(&e.code)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<h1>Verify your identity</h1><p><small>Stripe emulator — test mode. Nothing is really verified: pick the outcome this submission should have.</small></p>\
<p>Session <code>{id}</code> · type <code>{kind}</code></p>{last}\
<form method=\"post\" action=\"/verify/{id}\"><input type=\"hidden\" name=\"token\" value=\"{token}\">\
<fieldset><legend>Outcome</legend>{options}</fieldset>{person}<button type=\"submit\">Submit</button></form>",
        id = escape(&s.id),
        kind = escape(&s.kind),
        token = escape(&s.token),
        person = person_fields(&VerifiedPerson::defaults(&s)),
    );
    Html(page("Verify your identity", &body)).into_response()
}

/// The inputs for who the submission shows, each prefilled with `p`'s value.
fn person_fields(p: &VerifiedPerson) -> String {
    let mut rows = String::new();
    for field in Field::ALL {
        let name = field.form_name();
        let current = field.current(p);
        let choices: Option<&[&str]> = match field {
            Field::DocumentType => Some(DOCUMENT_TYPES),
            Field::IdNumberType => Some(ID_NUMBER_TYPES),
            _ => None,
        };
        let input = match choices {
            Some(values) => {
                let mut options = String::new();
                if field == Field::IdNumberType {
                    options.push_str("<option value=\"\">(none)</option>");
                }
                for v in values {
                    options.push_str(&format!(
                        "<option value=\"{v}\"{sel}>{v}</option>",
                        v = escape(v),
                        sel = if *v == current { " selected" } else { "" }
                    ));
                }
                format!("<select id=\"{name}\" name=\"{name}\">{options}</select>")
            }
            None => format!(
                "<input id=\"{name}\" name=\"{name}\" type=\"{kind}\" value=\"{value}\">",
                kind = if field.is_date() { "date" } else { "text" },
                value = escape(&current),
            ),
        };
        rows.push_str(&format!(
            "<label for=\"{name}\">{label}</label>{input}",
            label = escape(field.label())
        ));
    }
    format!(
        "<fieldset><legend>Who this submission shows</legend><p><small>Becomes <code>verified_outputs</code> when the outcome is verified, and what the verification report and its (synthetic) document images carry. An empty field is left out.</small></p><div class=\"grid\">{rows}</div></fieldset>"
    )
}

/// The person fields of a submitted form. A field that is not in the form keeps its default.
fn form_choices(form: &HashMap<String, String>) -> Choices {
    let mut c = Choices::default();
    for field in Field::ALL {
        if let Some(v) = form.get(field.form_name()) {
            let v = v.trim();
            c.set(field, (!v.is_empty()).then(|| Choice::Text(v.to_string())));
        }
    }
    c
}

pub async fn submit(
    State(emu): State<Arc<Emulator>>,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (Some(token), Some(outcome_name)) = (form.get("token"), form.get("outcome")) else {
        return message(
            StatusCode::BAD_REQUEST,
            "Incomplete form",
            "The form must carry the link's token and an outcome.",
        );
    };
    let Some(outcome) = parse_outcome(outcome_name) else {
        return message(
            StatusCode::BAD_REQUEST,
            "Unknown outcome",
            "Pick `verified` or one of the listed error codes.",
        );
    };
    let w = emu.write().await;
    let s = match session_for(&emu, &id, Some(token)).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let person = match form_choices(&form).resolve(&s) {
        Ok(p) => p,
        Err(e) => {
            return message(
                StatusCode::BAD_REQUEST,
                "Please correct the form",
                &format!("{}: {}.", e.field.label(), e.message),
            )
        }
    };
    let pending = Pending {
        outcome,
        person,
        after: emu.config.processing_delay,
    };
    if let Err(e) = lifecycle::submit(&emu, &w, &s.id, Some(pending), &Cause::default()).await {
        return message(e.status, "Could not submit", &e.message);
    }
    drop(w);
    tracing::info!(session = %s.id, outcome = %outcome_name, "hosted flow submitted");
    match &s.return_url {
        Some(url) => (StatusCode::SEE_OTHER, [(header::LOCATION, url.clone())]).into_response(),
        None => message(StatusCode::OK, "Submitted", "The session is processing; its outcome follows after the processing delay. You can close this page."),
    }
}
