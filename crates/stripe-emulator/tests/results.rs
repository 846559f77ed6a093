//! Verification results against a real emulator: the verified person a tester chooses (test
//! helper and hosted page), where it shows up, which fields need a restricted key, the
//! address check, and what redaction leaves.

mod common;

use common::*;
use serde_json::{json, Value};

const SESSIONS: &str = "/v1/identity/verification_sessions";

fn helper(id: &str, action: &str) -> String {
    format!("/v1/test_helpers/identity/verification_sessions/{id}/{action}")
}

/// Ada, chosen field by field, in the shape she is read back.
const ADA: &[(&str, &str)] = &[
    ("verified_outputs[first_name]", "Ada"),
    ("verified_outputs[last_name]", "Lovelace"),
    ("verified_outputs[dob][day]", "10"),
    ("verified_outputs[dob][month]", "12"),
    ("verified_outputs[dob][year]", "1985"),
    ("verified_outputs[address][line1]", "12 St James's Square"),
    ("verified_outputs[address][city]", "London"),
    ("verified_outputs[address][state]", ""),
    ("verified_outputs[address][postal_code]", "SW1Y 4LB"),
    ("verified_outputs[address][country]", "gb"),
    ("verified_outputs[email]", "ada@example.org"),
    ("verified_outputs[phone]", "+44 20 7946 0000"),
    ("verified_outputs[id_number]", "6789"),
    ("verified_outputs[id_number_type]", "us_ssn"),
    ("document[type]", "passport"),
    ("document[issuing_country]", "GB"),
    ("document[number]", "P1234567"),
    ("document[expiration_date][day]", "1"),
    ("document[expiration_date][month]", "6"),
    ("document[expiration_date][year]", "2031"),
];

async fn session_with_every_check(emu: &Emu) -> String {
    let s = emu
        .ok_post(
            SESSIONS,
            &[
                ("type", "document"),
                ("options[document][require_id_number]", "true"),
                ("options[document][require_matching_selfie]", "true"),
                ("provided_details[email]", "given@example.com"),
            ],
        )
        .await;
    s["id"].as_str().unwrap().to_string()
}

async fn verified_ada(emu: &Emu) -> String {
    let id = session_with_every_check(emu).await;
    let v = emu.ok_post(&helper(&id, "verify"), ADA).await;
    assert_eq!(v["status"], "verified");
    id
}

fn assert_needs_restricted_key(r: &Resp, path: &str) {
    assert_eq!(r.status, 403, "{path}: {}", r.body);
    assert_eq!(r.body["error"]["type"], "invalid_request_error");
    assert_eq!(r.body["error"]["param"], "expand");
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains(path) && msg.contains("restricted API key"),
        "{msg}"
    );
}

#[tokio::test]
async fn chosen_outputs_show_up_and_sensitive_ones_need_a_restricted_key() {
    let emu = start().await;
    let id = verified_ada(&emu).await;
    let path = format!("{SESSIONS}/{id}");

    // Secret key: names, address, email and phone; no date of birth, no ID number.
    let vo =
        emu.ok_get(&path, &[("expand[]", "verified_outputs")]).await["verified_outputs"].clone();
    assert_eq!(vo["first_name"], "Ada");
    assert_eq!(vo["last_name"], "Lovelace");
    assert_eq!(
        vo["address"],
        json!({"line1": "12 St James's Square", "line2": null, "city": "London", "state": null, "postal_code": "SW1Y 4LB", "country": "GB"})
    );
    assert_eq!(vo["email"], "ada@example.org");
    assert_eq!(vo["phone"], "+44 20 7946 0000");
    assert_eq!(vo["id_number_type"], "us_ssn");
    assert!(
        vo.get("dob").is_none() && vo.get("id_number").is_none(),
        "{vo}"
    );
    // Without the expand there is no verified_outputs at all.
    assert!(emu
        .ok_get(&path, &[])
        .await
        .get("verified_outputs")
        .is_none());

    // A secret key naming a sensitive field fails the whole request.
    for sensitive in [
        "verified_outputs.dob",
        "verified_outputs.id_number",
        "last_verification_report.document.expiration_date",
        "last_verification_report.document.number",
        "last_verification_report.document.dob",
        "last_verification_report.document.files",
        "last_verification_report.selfie.selfie",
        "last_verification_report.id_number.id_number",
    ] {
        let r = emu
            .get(
                &path,
                &[("expand[0]", "verified_outputs"), ("expand[1]", sensitive)],
            )
            .await;
        assert_needs_restricted_key(&r, sensitive);
    }
    let r = emu
        .get(SESSIONS, &[("expand[]", "data.verified_outputs.dob")])
        .await;
    assert_needs_restricted_key(&r, "verified_outputs.dob");

    // A restricted key gets each sensitive field it names, and only those.
    let r = emu
        .get_as(
            RK,
            &path,
            &[
                ("expand[0]", "verified_outputs.dob"),
                ("expand[1]", "verified_outputs.id_number"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let vo = &r.body["verified_outputs"];
    assert_eq!(vo["dob"], json!({"day": 10, "month": 12, "year": 1985}));
    assert_eq!(vo["id_number"], "6789");
    assert_eq!(vo["first_name"], "Ada");
    let only_dob = emu
        .get_as(RK, &path, &[("expand[]", "verified_outputs.dob")])
        .await
        .body;
    assert!(only_dob["verified_outputs"].get("id_number").is_none());
    // The restricted key also does everything else a secret key does.
    assert_eq!(emu.get_as(RK, SESSIONS, &[]).await.status, 200);
    emu.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_report_carries_the_person_and_hides_its_sensitive_fields() {
    let emu = start().await;
    let id = verified_ada(&emu).await;
    let path = format!("{SESSIONS}/{id}");
    let s = emu
        .ok_get(&path, &[("expand[]", "last_verification_report")])
        .await;
    let r = &s["last_verification_report"];
    let doc = &r["document"];
    assert_eq!(doc["status"], "verified");
    assert!(doc["error"].is_null());
    assert_eq!(
        (doc["first_name"].as_str(), doc["last_name"].as_str()),
        (Some("Ada"), Some("Lovelace"))
    );
    assert_eq!(doc["type"], "passport");
    assert_eq!(doc["issuing_country"], "GB");
    assert_eq!(doc["address"]["city"], "London");
    assert!(doc["issued_date"]["year"].is_i64());
    assert_eq!(doc["files"].as_array().unwrap().len(), 2);
    for hidden in [
        "dob",
        "expiration_date",
        "number",
        "sex",
        "unparsed_place_of_birth",
        "unparsed_sex",
    ] {
        assert!(
            doc.get(hidden).is_none(),
            "document.{hidden} without expand"
        );
    }
    let idn = &r["id_number"];
    assert_eq!(idn["id_number_type"], "us_ssn");
    assert_eq!(idn["first_name"], "Ada");
    assert!(idn.get("id_number").is_none() && idn.get("dob").is_none());
    assert_eq!(
        r["email"],
        json!({"status": "verified", "error": null, "email": "ada@example.org"})
    );
    assert_eq!(r["phone"]["phone"], "+44 20 7946 0000");
    assert_eq!(r["selfie"]["status"], "verified");
    assert_eq!(r["selfie"]["document"], doc["files"][0]);
    assert!(r["selfie"]["selfie"].as_str().unwrap().starts_with("file_"));

    // Through the session, with a restricted key.
    let full = emu
        .get_as(
            RK,
            &path,
            &[
                ("expand[0]", "last_verification_report.document.number"),
                (
                    "expand[1]",
                    "last_verification_report.document.expiration_date",
                ),
                ("expand[2]", "last_verification_report.document.dob"),
                ("expand[3]", "last_verification_report.id_number.id_number"),
            ],
        )
        .await;
    assert_eq!(full.status, 200, "{}", full.body);
    let r = &full.body["last_verification_report"];
    assert_eq!(r["document"]["number"], "P1234567");
    assert_eq!(
        r["document"]["expiration_date"],
        json!({"day": 1, "month": 6, "year": 2031})
    );
    assert_eq!(r["document"]["dob"]["year"], 1985);
    assert_eq!(r["id_number"]["id_number"], "6789");
    assert!(r["id_number"].get("dob").is_none(), "not named");

    // Through the report itself, and its list.
    let rid = r["id"].as_str().unwrap();
    let rpath = format!("/v1/identity/verification_reports/{rid}");
    assert_needs_restricted_key(
        &emu.get(&rpath, &[("expand[]", "document.number")]).await,
        "document.number",
    );
    let rep = emu
        .get_as(RK, &rpath, &[("expand[]", "document.number")])
        .await;
    assert_eq!(rep.body["document"]["number"], "P1234567");
    assert!(emu.ok_get(&rpath, &[]).await["document"]
        .get("number")
        .is_none());
    let listed = emu
        .get_as(
            RK,
            "/v1/identity/verification_reports",
            &[
                ("verification_session", id.as_str()),
                ("expand[]", "data.id_number.dob"),
            ],
        )
        .await;
    assert_eq!(listed.body["data"][0]["id_number"]["dob"]["month"], 12);
    assert_needs_restricted_key(
        &emu.get(
            "/v1/identity/verification_reports",
            &[("expand[]", "data.id_number.dob")],
        )
        .await,
        "id_number.dob",
    );
    emu.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn defaults_and_refused_choices() {
    let emu = start().await;
    // Nothing chosen: Stripe's example person, with the email the session was given.
    let id = session_with_every_check(&emu).await;
    emu.ok_post(&helper(&id, "verify"), &[]).await;
    let r = emu
        .get_as(
            RK,
            &format!("{SESSIONS}/{id}"),
            &[("expand[]", "verified_outputs.dob")],
        )
        .await;
    let vo = &r.body["verified_outputs"];
    assert_eq!(
        (vo["first_name"].as_str(), vo["last_name"].as_str()),
        (Some("Jenny"), Some("Rosen"))
    );
    assert_eq!(vo["email"], "given@example.com");
    assert_eq!(vo["dob"], json!({"day": 1, "month": 1, "year": 1990}));

    // Bad choices name their parameter and leave the session untouched.
    let s = emu
        .ok_post(
            SESSIONS,
            &[
                ("type", "document"),
                ("options[document][allowed_types][]", "id_card"),
            ],
        )
        .await;
    let id = s["id"].as_str().unwrap();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[
                ("verified_outputs[dob][day]", "30"),
                ("verified_outputs[dob][month]", "2"),
                ("verified_outputs[dob][year]", "1990"),
            ],
            "verified_outputs[dob]",
        ),
        (
            &[("verified_outputs[dob][day]", "3")],
            "verified_outputs[dob]",
        ),
        (
            &[("verified_outputs[dob][day]", "x")],
            "verified_outputs[dob][day]",
        ),
        (
            &[("verified_outputs[nickname]", "Ada")],
            "verified_outputs[nickname]",
        ),
        (
            &[("verified_outputs[address][country]", "GBR")],
            "verified_outputs[address][country]",
        ),
        (
            &[("verified_outputs[address][planet]", "Earth")],
            "verified_outputs[address][planet]",
        ),
        (
            &[("verified_outputs[email]", "nobody")],
            "verified_outputs[email]",
        ),
        (
            &[("verified_outputs[id_number_type]", "passport_no")],
            "verified_outputs[id_number_type]",
        ),
        (&[("document[type]", "passport")], "document[type]"), // not an allowed type here
        (&[("document[colour]", "red")], "document[colour]"),
    ];
    for (form, param) in cases {
        let r = emu.post(&helper(id, "verify"), form).await;
        assert_eq!(r.status, 400, "{form:?}: {}", r.body);
        assert_eq!(r.body["error"]["param"], *param, "{form:?}: {}", r.body);
    }
    let still = emu.ok_get(&format!("{SESSIONS}/{id}"), &[]).await;
    assert_eq!(still["status"], "requires_input");
    assert_eq!(
        still["url"], s["url"],
        "a refused choice does not spend the link"
    );
    emu.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn hosted_page_lets_the_tester_choose_who_is_verified() {
    let emu = start().await;
    let s = emu.session().await;
    let id = s["id"].as_str().unwrap().to_string();
    let url = s["url"].as_str().unwrap().to_string();
    let page = emu
        .http
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Prefilled with the test defaults; every code is offered, the address check's too.
    for needle in [
        r#"name="first_name" type="text" value="Jenny""#,
        r#"name="dob" type="date" value="1990-01-01""#,
        r#"name="address_country" type="text" value="US""#,
        r#"<option value="driving_license" selected>"#,
        r#"name="document_expiration_date" type="date""#,
        r#"value="address_mismatch""#,
    ] {
        assert!(page.contains(needle), "page lacks {needle}");
    }
    let token = url.split("token=").nth(1).unwrap().to_string();
    let action = url.split('?').next().unwrap().to_string();
    let mut form = vec![
        ("token", token.as_str()),
        ("outcome", "verified"),
        ("first_name", "Grace"),
        ("last_name", "Hopper"),
        ("dob", "1906-02-30"),
        ("address_line1", "1 Navy Way"),
        ("address_line2", ""),
        ("address_city", "Arlington"),
        ("address_country", "US"),
        ("email", "grace@example.org"),
        ("document_type", "id_card"),
        ("document_number", "N123"),
    ];
    // A date that does not exist is refused and nothing is spent…
    let r = emu.http.post(&action).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("Date of birth"));
    // …the corrected form goes through.
    form[4] = ("dob", "1906-12-09");
    let r = emu.http.post(&action).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let done = eventually(10, || async {
        let v = emu
            .get_as(
                RK,
                &format!("{SESSIONS}/{id}"),
                &[
                    ("expand[0]", "verified_outputs.dob"),
                    ("expand[1]", "last_verification_report.document.number"),
                ],
            )
            .await
            .body;
        (v["status"] == "verified").then_some(v)
    })
    .await;
    let vo = &done["verified_outputs"];
    assert_eq!(
        (vo["first_name"].as_str(), vo["last_name"].as_str()),
        (Some("Grace"), Some("Hopper"))
    );
    assert_eq!(vo["dob"], json!({"day": 9, "month": 12, "year": 1906}));
    assert!(vo["address"]["line2"].is_null());
    assert_eq!(vo["email"], "grace@example.org");
    // Fields not in the form keep their defaults.
    assert_eq!(vo["address"]["state"], "CA");
    let doc = &done["last_verification_report"]["document"];
    assert_eq!(
        (doc["type"].as_str(), doc["number"].as_str()),
        (Some("id_card"), Some("N123"))
    );
    emu.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn address_mismatch_is_a_known_code() {
    let emu = start().await;
    let s = emu.session().await;
    let id = s["id"].as_str().unwrap();
    let r = emu
        .ok_post(
            &helper(id, "require_input"),
            &[("last_error[code]", "address_mismatch")],
        )
        .await;
    assert_eq!(r["status"], "requires_input");
    assert_eq!(r["last_error"]["code"], "address_mismatch");
    assert_eq!(
        r["last_error"]["reason"],
        stripe_webhook::ErrorCode::AddressMismatch.explanation()
    );
    let rep = emu
        .ok_get(
            &format!("{SESSIONS}/{id}"),
            &[("expand[]", "last_verification_report")],
        )
        .await["last_verification_report"]
        .clone();
    // Stripe's report has no block for the address check: the document check itself passed.
    assert_eq!(rep["document"]["status"], "verified");
    assert!(rep.get("address").is_none());
    emu.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn redaction_replaces_the_chosen_values() {
    let emu = start().await;
    let id = verified_ada(&emu).await;
    emu.ok_post(&format!("{SESSIONS}/{id}/redact"), &[]).await;
    let path = format!("{SESSIONS}/{id}");
    let expand = [
        ("expand[0]", "verified_outputs.dob"),
        ("expand[1]", "verified_outputs.id_number"),
        ("expand[2]", "last_verification_report.document.number"),
        (
            "expand[3]",
            "last_verification_report.document.expiration_date",
        ),
    ];
    let v: Value = eventually(10, || async {
        let v = emu.get_as(RK, &path, &expand).await.body;
        (v["redaction"]["status"] == "redacted").then_some(v)
    })
    .await;
    let vo = &v["verified_outputs"];
    assert_eq!(vo["first_name"], "[redacted]");
    assert_eq!(vo["email"], "[redacted]");
    assert_eq!(vo["dob"], json!({"day": 1, "month": 1, "year": 1}));
    assert_eq!(vo["id_number"], "[redacted]");
    assert_eq!(vo["address"]["country"], "GB");
    assert_eq!(vo["address"]["city"], "[redacted]");
    assert!(vo["address"]["state"].is_null());
    let doc = &v["last_verification_report"]["document"];
    assert_eq!(doc["number"], "[redacted]");
    assert_eq!(
        doc["expiration_date"],
        json!({"day": 1, "month": 1, "year": 1})
    );
    assert_eq!(
        (doc["issuing_country"].as_str(), doc["type"].as_str()),
        (Some("GB"), Some("passport"))
    );
    assert_eq!(doc["status"], "verified");
    assert_eq!(
        v["last_verification_report"]["email"]["email"],
        "[redacted]"
    );
    emu.handle.shutdown().await.unwrap();
}
