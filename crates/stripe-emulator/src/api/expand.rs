//! `expand[]` of sessions and reports, and Stripe's rule for sensitive verification results:
//! the date of birth, ID numbers, the document's number and expiry, and the images appear
//! only when each is named in `expand[]`, and only to a restricted key (`rk_…`). A secret key
//! that names one gets an error for the whole request, not a quietly missing field.

use axum::http::StatusCode;

use super::KeyKind;
use crate::errors::ApiError;
use crate::person::SENSITIVE_OUTPUTS;
use crate::report::{IMAGE_FIELDS, SENSITIVE_FIELDS};

/// What a session's `expand[]` asks for.
#[derive(Debug, Default)]
pub struct SessionExpand {
    pub report: bool,
    /// Sensitive fields of the expanded report, as (block, field).
    pub report_fields: Vec<(&'static str, &'static str)>,
    pub verified_outputs: bool,
    /// Sensitive `verified_outputs` fields.
    pub output_fields: Vec<&'static str>,
    pub provided_details: bool,
}

/// The answer to a secret key naming a sensitive field. Stripe's exact wording is not
/// published; the status is the one Stripe uses for a key that lacks a permission (403,
/// which the SDKs raise as their permission error).
pub fn needs_restricted_key(what: &str) -> ApiError {
    let mut e = ApiError::new(
        StatusCode::FORBIDDEN,
        "invalid_request_error",
        format!("`{what}` is a sensitive verification result and can only be accessed with a restricted API key (rk_…) that has the Identity permission \"Access recent sensitive verification results\", not with a secret key. See https://docs.stripe.com/identity/access-verification-results."),
    );
    e.param = Some("expand".into());
    e
}

fn cannot_expand(path: &str) -> ApiError {
    ApiError::invalid_param(
        "expand",
        format!("This property cannot be expanded ({path})."),
    )
}

/// A report-relative path (`document.dob`): `Some(Some(field))` for a sensitive field,
/// `Some(None)` for an image id, `None` if it is neither.
fn report_path(path: &str) -> Option<Option<(&'static str, &'static str)>> {
    let (block, field) = path.split_once('.')?;
    if let Some(&f) = SENSITIVE_FIELDS
        .iter()
        .find(|(b, f)| *b == block && *f == field)
    {
        return Some(Some(f));
    }
    IMAGE_FIELDS
        .iter()
        .any(|(b, f)| *b == block && *f == field)
        .then_some(None)
}

fn require_restricted(key: KeyKind, path: &str) -> Result<(), ApiError> {
    match key {
        KeyKind::Restricted => Ok(()),
        KeyKind::Secret => Err(needs_restricted_key(path)),
    }
}

/// `expand[]` of a report retrieved on its own (`document.dob`, …).
pub fn report(
    expand: &[String],
    key: KeyKind,
) -> Result<Vec<(&'static str, &'static str)>, ApiError> {
    let mut fields = Vec::new();
    for path in expand {
        match report_path(path) {
            Some(field) => {
                require_restricted(key, path)?;
                fields.extend(field);
            }
            None => return Err(cannot_expand(path)),
        }
    }
    Ok(fields)
}

/// `expand[]` of a session (`verified_outputs.dob`, `last_verification_report.document.number`, …).
pub fn session(expand: &[String], key: KeyKind) -> Result<SessionExpand, ApiError> {
    let mut x = SessionExpand::default();
    for path in expand {
        match path.as_str() {
            "last_verification_report" => x.report = true,
            "verified_outputs" => x.verified_outputs = true,
            "provided_details" => x.provided_details = true,
            other => {
                if let Some(field) = other.strip_prefix("verified_outputs.") {
                    let Some(&f) = SENSITIVE_OUTPUTS.iter().find(|f| **f == field) else {
                        return Err(cannot_expand(other));
                    };
                    require_restricted(key, other)?;
                    x.verified_outputs = true;
                    x.output_fields.push(f);
                } else if let Some(rel) = other.strip_prefix("last_verification_report.") {
                    let Some(field) = report_path(rel) else {
                        return Err(cannot_expand(other));
                    };
                    require_restricted(key, other)?;
                    x.report = true;
                    x.report_fields.extend(field);
                } else {
                    return Err(cannot_expand(other));
                }
            }
        }
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn secret_keys_get_everything_but_the_sensitive_fields() {
        let x = session(
            &v(&[
                "verified_outputs",
                "last_verification_report",
                "provided_details",
            ]),
            KeyKind::Secret,
        )
        .unwrap();
        assert!(x.verified_outputs && x.report && x.provided_details);
        for path in [
            "verified_outputs.dob",
            "verified_outputs.id_number",
            "last_verification_report.document.expiration_date",
            "last_verification_report.document.number",
            "last_verification_report.document.dob",
            "last_verification_report.document.files",
            "last_verification_report.selfie.selfie",
            "last_verification_report.id_number.id_number",
        ] {
            let e = session(&v(&[path]), KeyKind::Secret).unwrap_err();
            assert_eq!(e.status, StatusCode::FORBIDDEN, "{path}");
            assert!(e.message.contains(path));
            assert!(session(&v(&[path]), KeyKind::Restricted).is_ok(), "{path}");
        }
        let e = report(&v(&["document.number"]), KeyKind::Secret).unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
    }

    #[test]
    fn restricted_keys_name_what_they_get() {
        let x = session(
            &v(&[
                "verified_outputs.dob",
                "last_verification_report.document.number",
                "last_verification_report.selfie.selfie",
            ]),
            KeyKind::Restricted,
        )
        .unwrap();
        assert!(x.verified_outputs && x.report);
        assert_eq!(x.output_fields, ["dob"]);
        assert_eq!(x.report_fields, [("document", "number")]);
        assert_eq!(
            report(
                &v(&["id_number.dob", "document.files"]),
                KeyKind::Restricted
            )
            .unwrap(),
            [("id_number", "dob")]
        );
    }

    #[test]
    fn unknown_paths_are_refused_whatever_the_key() {
        for path in [
            "nope",
            "verified_outputs.first_name",
            "last_verification_report.document.first_name",
            "last_verification_report.x",
        ] {
            for key in [KeyKind::Secret, KeyKind::Restricted] {
                let e = session(&v(&[path]), key).unwrap_err();
                assert_eq!(e.status, StatusCode::BAD_REQUEST, "{path}");
                assert_eq!(e.param.as_deref(), Some("expand"));
            }
        }
        assert!(report(&v(&["document"]), KeyKind::Restricted).is_err());
    }
}
