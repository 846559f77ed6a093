//! The evidence on a case page, fetched live from Stripe for each page view and never stored:
//! the latest verification report's checks (status and error of each; the document's type and
//! issuing country), and with a restricted key (`rk_…`) the document and selfie images through
//! FileLinks that expire within 30 seconds — the page links to them, nothing keeps or logs
//! them, and the page itself is `no-store`.

use std::time::Duration;

use crate::clock::now_secs;
use crate::state::AppState;
use crate::stripe_api::{CheckError, StripeClient, VerificationReport};

/// How long an image link lives (Stripe allows at most 30 s for identity files).
const LINK_SECONDS: i64 = 25;
/// The page waits this long for Stripe before showing it without the evidence.
const STRIPE_WAIT: Duration = Duration::from_secs(5);

pub struct CheckView {
    pub name: &'static str,
    pub status: String,
    pub error: Option<String>,
    pub details: Vec<(&'static str, String)>,
}

pub struct ImageView {
    pub label: &'static str,
    /// A FileLink URL, or `None` when no link could be made (the reason is `note`).
    pub url: Option<String>,
    pub note: Option<String>,
}

/// What the case page shows of the report.
pub struct Evidence {
    pub report_id: Option<String>,
    pub created: Option<String>,
    pub checks: Vec<CheckView>,
    pub images: Vec<ImageView>,
    /// Why something is missing ("no Stripe key", "no report yet", …).
    pub notes: Vec<String>,
}

impl Evidence {
    fn only(note: impl Into<String>) -> Evidence {
        Evidence {
            report_id: None,
            created: None,
            checks: Vec::new(),
            images: Vec::new(),
            notes: vec![note.into()],
        }
    }
}

fn error_text(e: &Option<CheckError>) -> Option<String> {
    let e = e.as_ref()?;
    match (&e.code, &e.reason) {
        (Some(c), Some(r)) if !r.is_empty() => Some(format!("{c}: {r}")),
        (Some(c), _) => Some(c.clone()),
        (None, Some(r)) => Some(r.clone()),
        (None, None) => None,
    }
}

fn status(s: &Option<String>) -> String {
    s.clone().unwrap_or_else(|| "unknown".into())
}

fn checks_of(report: &VerificationReport) -> Vec<CheckView> {
    let mut out = Vec::new();
    if let Some(d) = &report.document {
        let mut details = Vec::new();
        if let Some(t) = &d.document_type {
            details.push(("type", t.clone()));
        }
        if let Some(c) = &d.issuing_country {
            details.push(("issuing country", c.clone()));
        }
        out.push(CheckView {
            name: "document",
            status: status(&d.status),
            error: error_text(&d.error),
            details,
        });
    }
    if let Some(n) = &report.id_number {
        out.push(CheckView {
            name: "id_number",
            status: status(&n.status),
            error: error_text(&n.error),
            details: n
                .id_number_type
                .iter()
                .map(|t| ("type", t.clone()))
                .collect(),
        });
    }
    if let Some(s) = &report.selfie {
        out.push(CheckView {
            name: "selfie",
            status: status(&s.status),
            error: error_text(&s.error),
            details: Vec::new(),
        });
    }
    for (name, check) in [("email", &report.email), ("phone", &report.phone)] {
        if let Some(c) = check {
            out.push(CheckView {
                name,
                status: status(&c.status),
                error: error_text(&c.error),
                details: Vec::new(),
            });
        }
    }
    out
}

/// The images of a report, each as a short-lived link.
async fn images_of(client: &StripeClient, report: &VerificationReport) -> Vec<ImageView> {
    let mut files: Vec<(&'static str, String)> = Vec::new();
    if let Some(d) = &report.document {
        let labels = ["document front", "document back"];
        for (label, id) in labels.iter().zip(d.files.iter().flatten()) {
            files.push((label, id.clone()));
        }
    }
    if let Some(id) = report.selfie.as_ref().and_then(|s| s.selfie.clone()) {
        files.push(("selfie", id));
    }
    let mut out = Vec::with_capacity(files.len());
    for (label, file) in files {
        let link = client
            .create_file_link(&file, now_secs() + LINK_SECONDS)
            .await;
        out.push(match link {
            Ok(l) if l.url.is_some() => ImageView {
                label,
                url: l.url,
                note: None,
            },
            Ok(_) => ImageView {
                label,
                url: None,
                note: Some("Stripe made no link for this image.".into()),
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot create a file link for a case image");
                ImageView {
                    label,
                    url: None,
                    note: Some(
                        "The image is not available (redacted, or Stripe refused the link).".into(),
                    ),
                }
            }
        });
    }
    out
}

/// The evidence for a report id, or notes saying why there is none.
pub async fn load(state: &AppState, report_id: Option<&str>) -> Evidence {
    let Some(client) = &state.stripe else {
        return Evidence::only(
            "No Stripe key is configured (STRIPE_API_KEY): the report cannot be retrieved.",
        );
    };
    let Some(report_id) = report_id else {
        return Evidence::only("No verification report yet for the newest session.");
    };
    let fetched = tokio::time::timeout(STRIPE_WAIT, async {
        let report = client.retrieve_verification_report(report_id).await?;
        let images = if !state.console.images {
            None
        } else if client.has_restricted_key() {
            Some(images_of(client, &report).await)
        } else {
            None
        };
        Ok::<_, crate::stripe_api::StripeApiError>((report, images))
    })
    .await;
    let (report, images) = match fetched {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot retrieve a verification report for the console");
            return Evidence::only(format!(
                "Stripe did not return report {report_id} ({}).",
                if e.is_not_found() {
                    "not found"
                } else {
                    "see the service log"
                }
            ));
        }
        Err(_) => return Evidence::only("Stripe did not answer in time; reload to try again."),
    };
    let mut notes = Vec::new();
    if !state.console.images {
        notes.push("Images are turned off (console.images = off).".to_string());
    } else if images.is_none() {
        notes.push(
            "Images need a restricted Stripe key (rk_…) with access to sensitive verification results."
                .to_string(),
        );
    }
    Evidence {
        report_id: Some(report.id.clone()),
        created: Some(super::format::datetime_secs(report.created)),
        checks: checks_of(&report),
        images: images.unwrap_or_default(),
        notes,
    }
}
