//! Verification reports: built once per submission with everything it extracted, rendered
//! without the sensitive fields unless each is expanded, and redacted in place.

use serde_json::{json, Map, Value};
use stripe_webhook::{Check, ErrorCode};

use crate::clock::now_s;
use crate::ids::new_id;
use crate::model::{redacted_tree, Session, REPORT_OBJECT};
use crate::person::VerifiedPerson;

/// Report fields Stripe returns only when named in `expand[]` (by a restricted key),
/// as (block, field).
pub const SENSITIVE_FIELDS: &[(&str, &str)] = &[
    ("document", "dob"),
    ("document", "expiration_date"),
    ("document", "number"),
    ("document", "sex"),
    ("document", "unparsed_place_of_birth"),
    ("document", "unparsed_sex"),
    ("id_number", "dob"),
    ("id_number", "id_number"),
];

/// The file ids of the document and face images. Stripe's docs count the images among the
/// results that need a restricted key; the ids themselves are always in the report (Stripe's
/// own example reads `document.files[0]` after expanding only the report), so what the key
/// guards is the image behind them (FileLinks, contents). Naming them in `expand[]` is
/// therefore allowed to a restricted key only, and changes nothing.
pub const IMAGE_FIELDS: &[(&str, &str)] = &[
    ("document", "files"),
    ("selfie", "document"),
    ("selfie", "selfie"),
];

/// What a submission's outcome means for the report's blocks.
enum Failure<'a> {
    None,
    /// The check with this block failed with this code.
    Block(&'static str, &'a str),
    /// The user never got through the checks (abandoned, consent, device, country, age, or a
    /// code this version does not know): every block is unverified, none carries the error.
    SessionLevel,
    /// A check that has no block in Stripe's report (the address check): the blocks that ran
    /// passed, and the failure shows only in the session's `last_error`.
    Unblocked,
}

fn failure(code: Option<&str>) -> Failure<'_> {
    let Some(code) = code else {
        return Failure::None;
    };
    match ErrorCode::from(code).check() {
        Check::Session | Check::Unknown => Failure::SessionLevel,
        Check::Address => Failure::Unblocked,
        Check::Document => Failure::Block("document", code),
        Check::IdNumber => Failure::Block("id_number", code),
        Check::Selfie => Failure::Block("selfie", code),
        Check::Email => Failure::Block("email", code),
        Check::Phone => Failure::Block("phone", code),
    }
}

/// The checks a submission runs: the document (unless an ID-number session), the ID number,
/// the selfie when the options ask for them, email and phone when there is one to check, and
/// whichever check the outcome says failed.
pub fn checks(
    s: &Session,
    person: &VerifiedPerson,
    failed_code: Option<&str>,
) -> Vec<&'static str> {
    let doc_opts = s.options.get("document").cloned().unwrap_or(json!({}));
    let flag = |k: &str| doc_opts.get(k).and_then(Value::as_bool).unwrap_or(false);
    let mut checks = Vec::new();
    if s.kind != "id_number" {
        checks.push("document");
    }
    if s.kind == "id_number" || flag("require_id_number") {
        checks.push("id_number");
    }
    if flag("require_matching_selfie") {
        checks.push("selfie");
    }
    if person.email.is_some() {
        checks.push("email");
    }
    if person.phone.is_some() {
        checks.push("phone");
    }
    if let Failure::Block(block, _) = failure(failed_code) {
        if !checks.contains(&block) {
            checks.push(block);
        }
    }
    checks
}

/// The image files of one submission.
#[derive(Debug, Clone, Default)]
pub struct Images {
    pub document_front: Option<String>,
    pub document_back: Option<String>,
    pub selfie: Option<String>,
}

/// The report of one submission, with every field (sensitive ones included).
pub fn build(
    s: &Session,
    failed_code: Option<&str>,
    reason: Option<&str>,
    person: &VerifiedPerson,
    images: &Images,
) -> Value {
    let doc_opts = s.options.get("document").cloned().unwrap_or(json!({}));
    let mut report = json!({
        "id": new_id("vr"),
        "object": REPORT_OBJECT,
        "client_reference_id": s.client_reference_id,
        "created": now_s(),
        "livemode": false,
        "options": {"document": doc_opts, "id_number": {}},
        "type": s.kind,
        "verification_session": s.id,
    });
    if let Some(flow) = &s.verification_flow {
        report["verification_flow"] = json!(flow);
    }
    let fail = failure(failed_code);
    for check in checks(s, person, failed_code) {
        let (status, error) = match &fail {
            Failure::Block(block, code) if *block == check => (
                "unverified",
                json!({"code": code, "reason": reason.unwrap_or_default()}),
            ),
            Failure::SessionLevel => ("unverified", Value::Null),
            _ => ("verified", Value::Null),
        };
        let mut block = match check {
            "document" => {
                let mut b = person.document_block();
                let files: Vec<&String> = [&images.document_front, &images.document_back]
                    .into_iter()
                    .flatten()
                    .collect();
                b["files"] = json!(files);
                b
            }
            "id_number" => person.id_number_block(),
            "selfie" => json!({"document": images.document_front, "selfie": images.selfie}),
            "email" => json!({"email": person.email}),
            _ => json!({"phone": person.phone}),
        };
        block["status"] = json!(status);
        block["error"] = error;
        report[check] = block;
    }
    report
}

/// The report as a client sees it: each sensitive field only if `expanded` names it.
pub fn render(report: &Value, expanded: &[(&str, &str)]) -> Value {
    let mut out = report.clone();
    for &(block, field) in SENSITIVE_FIELDS {
        if expanded.contains(&(block, field)) {
            continue;
        }
        if let Some(b) = out.get_mut(block).and_then(Value::as_object_mut) {
            b.remove(field);
        }
    }
    out
}

/// Stripe's redaction of a report: personal values become `[redacted]` or 1/1/1; statuses,
/// errors, types, countries and the image file ids stay (the images' contents are deleted
/// separately).
pub fn redact(report: &mut Value) {
    for block in ["document", "id_number", "selfie", "email", "phone"] {
        let Some(b) = report.get(block).and_then(Value::as_object) else {
            continue;
        };
        let mut out = Map::new();
        for (k, v) in b {
            let keep = matches!(
                k.as_str(),
                "status" | "error" | "type" | "issuing_country" | "id_number_type" | "files"
            ) || (block == "selfie" && (k == "document" || k == "selfie"));
            out.insert(k.clone(), if keep { v.clone() } else { redacted_tree(v) });
        }
        report[block] = Value::Object(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(kind: &str, options: Value) -> Session {
        serde_json::from_value(json!({
            "id": "vs_1", "created": 0, "status": "processing", "type": kind,
            "verification_flow": null, "client_reference_id": "u1", "metadata": {},
            "options": options, "provided_details": {}, "return_url": null,
            "related_customer": null, "related_customer_account": null, "related_person": null,
            "last_error": null, "last_verification_report": null, "redaction": null, "token": "t"
        }))
        .unwrap()
    }

    fn images() -> Images {
        Images {
            document_front: Some("file_front".into()),
            document_back: Some("file_back".into()),
            selfie: Some("file_selfie".into()),
        }
    }

    #[test]
    fn blocks_follow_the_checks_and_the_failure() {
        let s = session(
            "document",
            json!({"document": {"require_matching_selfie": true}}),
        );
        let p = VerifiedPerson::defaults(&s);
        let r = build(
            &s,
            Some("selfie_face_mismatch"),
            Some("no match"),
            &p,
            &images(),
        );
        assert_eq!(r["document"]["status"], "verified");
        assert_eq!(r["document"]["files"], json!(["file_front", "file_back"]));
        assert_eq!(r["selfie"]["status"], "unverified");
        assert_eq!(
            r["selfie"]["error"],
            json!({"code": "selfie_face_mismatch", "reason": "no match"})
        );
        assert_eq!(r["selfie"]["document"], "file_front");
        assert!(r.get("id_number").is_none() && r.get("email").is_none());

        let r = build(&s, Some("consent_declined"), Some("x"), &p, &images());
        assert_eq!(r["document"]["status"], "unverified");
        assert!(r["document"]["error"].is_null());

        let r = build(&s, Some("address_mismatch"), Some("x"), &p, &images());
        assert_eq!(r["document"]["status"], "verified");
        assert!(r.get("address").is_none());

        let r = build(&s, Some("email_unverified_other"), Some("x"), &p, &images());
        assert_eq!(r["email"]["status"], "unverified");

        let s = session("id_number", json!({}));
        let r = build(
            &s,
            None,
            None,
            &VerifiedPerson::defaults(&s),
            &Images::default(),
        );
        assert!(r.get("document").is_none());
        assert_eq!(r["id_number"]["id_number_type"], "us_ssn");
    }

    #[test]
    fn sensitive_fields_only_when_expanded() {
        let s = session("document", json!({"document": {"require_id_number": true}}));
        let r = build(&s, None, None, &VerifiedPerson::defaults(&s), &images());
        let plain = render(&r, &[]);
        for (block, field) in SENSITIVE_FIELDS {
            if let Some(b) = plain.get(*block) {
                assert!(b.get(*field).is_none(), "{block}.{field}");
            }
        }
        assert_eq!(plain["document"]["first_name"], "Jenny");
        assert_eq!(
            plain["document"]["files"],
            json!(["file_front", "file_back"])
        );
        let some = render(&r, &[("document", "number"), ("id_number", "dob")]);
        assert_eq!(some["document"]["number"], "TEST0000000");
        assert_eq!(some["id_number"]["dob"]["year"], 1990);
        assert!(some["document"].get("dob").is_none());
    }

    #[test]
    fn redaction_keeps_what_is_not_personal() {
        let s = session(
            "document",
            json!({"document": {"require_matching_selfie": true}}),
        );
        let mut r = build(
            &s,
            Some("selfie_manipulated"),
            Some("why"),
            &VerifiedPerson::defaults(&s),
            &images(),
        );
        redact(&mut r);
        assert_eq!(r["document"]["first_name"], "[redacted]");
        assert_eq!(
            r["document"]["dob"],
            json!({"day": 1, "month": 1, "year": 1})
        );
        assert_eq!(r["document"]["address"]["country"], "US");
        assert_eq!(r["document"]["issuing_country"], "US");
        assert_eq!(r["document"]["type"], "driving_license");
        assert_eq!(r["document"]["files"], json!(["file_front", "file_back"]));
        assert_eq!(r["selfie"]["selfie"], "file_selfie");
        assert_eq!(r["selfie"]["error"]["code"], "selfie_manipulated");
        assert_eq!(r["client_reference_id"], "u1");
    }
}
