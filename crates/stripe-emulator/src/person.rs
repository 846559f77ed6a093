//! The person a submission "verifies": what the tester chose on the hosted page or passed to
//! the test helper, with test defaults for everything left out. It is what `verified_outputs`
//! shows once the session is verified, and what the verification report and the synthetic
//! document images carry.
//!
//! The hosted page and the test helper read their choices differently (flat form fields,
//! bracketed API parameters) but both end up as [`Choices`], and [`Choices::resolve`] is the
//! one place where the values are checked.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::clock::current_year;
use crate::model::{redacted_tree, Session};

pub const DOCUMENT_TYPES: &[&str] = &["driving_license", "id_card", "passport"];
pub const ID_NUMBER_TYPES: &[&str] = &["br_cpf", "sg_nric", "us_ssn"];
/// Longest text a tester may choose for one field.
const MAX_TEXT: usize = 200;

/// A calendar date as Stripe writes it (`{day, month, year}`); redaction turns it into 1/1/1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Date {
    pub day: u32,
    pub month: u32,
    pub year: i32,
}

impl Date {
    /// A real calendar date (no 31 April, 29 February only in leap years).
    pub fn new(day: u32, month: u32, year: i32) -> Option<Date> {
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        ((1..=9999).contains(&year) && (1..=days).contains(&day)).then_some(Date {
            day,
            month,
            year,
        })
    }

    /// `YYYY-MM-DD`, the value of an HTML date input.
    pub fn parse_iso(s: &str) -> Option<Date> {
        let mut parts = s.trim().splitn(3, '-');
        let year = parts.next()?.parse().ok()?;
        let month = parts.next()?.parse().ok()?;
        let day = parts.next()?.parse().ok()?;
        Date::new(day, month, year)
    }

    pub fn iso(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

/// What the identity document says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentFacts {
    #[serde(rename = "type")]
    pub kind: String,
    pub issuing_country: Option<String>,
    pub number: Option<String>,
    pub expiration_date: Option<Date>,
    pub issued_date: Option<Date>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedPerson {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub dob: Option<Date>,
    pub address: Address,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub id_number: Option<String>,
    pub id_number_type: Option<String>,
    pub document: DocumentFacts,
}

/// The `verified_outputs` fields Stripe returns only when each is named in `expand[]`
/// (and only to a restricted key).
pub const SENSITIVE_OUTPUTS: &[&str] = &[
    "dob",
    "id_number",
    "sex",
    "unparsed_place_of_birth",
    "unparsed_sex",
];

fn date_json(d: Option<Date>) -> Value {
    d.map_or(Value::Null, |d| json!(d))
}

impl VerifiedPerson {
    /// Stripe's own example person (Jenny Rosen, San Francisco), with the email and phone the
    /// session was given, a document of the first allowed type, and an ID number when the
    /// session checks one.
    pub fn defaults(session: &Session) -> VerifiedPerson {
        let provided = |k: &str| {
            session
                .provided_details
                .get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let doc_opts = session.options.get("document");
        let kind = doc_opts
            .and_then(|d| d.get("allowed_types"))
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .unwrap_or("driving_license")
            .to_string();
        let checks_id_number = session.kind == "id_number"
            || doc_opts
                .and_then(|d| d.get("require_id_number"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
        let year = current_year();
        let some = |s: &str| Some(s.to_string());
        VerifiedPerson {
            first_name: some("Jenny"),
            last_name: some("Rosen"),
            dob: Date::new(1, 1, 1990),
            address: Address {
                line1: some("1234 Main St."),
                line2: None,
                city: some("San Francisco"),
                state: some("CA"),
                postal_code: some("94111"),
                country: some("US"),
            },
            email: provided("email"),
            phone: provided("phone"),
            // For a US SSN Stripe collects only the last four digits.
            id_number: checks_id_number.then(|| "0000".to_string()),
            id_number_type: checks_id_number.then(|| "us_ssn".to_string()),
            document: DocumentFacts {
                kind,
                issuing_country: some("US"),
                number: some("TEST0000000"),
                expiration_date: Date::new(1, 12, year + 5),
                issued_date: Date::new(1, 12, year - 5),
            },
        }
    }

    /// Stripe's redaction: every string becomes `[redacted]`, every date 1/1/1; the countries,
    /// the document type and the ID number type stay.
    pub fn redacted(&self) -> VerifiedPerson {
        let tree = redacted_tree(&serde_json::to_value(self).unwrap_or(Value::Null));
        serde_json::from_value(tree).unwrap_or_else(|_| self.clone())
    }

    fn address_json(&self) -> Value {
        json!(self.address)
    }

    /// `verified_outputs`, with the sensitive fields in `sensitive` (names from
    /// [`SENSITIVE_OUTPUTS`]) added.
    pub fn verified_outputs(&self, sensitive: &[&str]) -> Value {
        let mut o = json!({
            "address": self.address_json(),
            "email": self.email,
            "first_name": self.first_name,
            "id_number_type": self.id_number_type,
            "last_name": self.last_name,
            "phone": self.phone,
        });
        for field in sensitive {
            let v = match *field {
                "dob" => date_json(self.dob),
                "id_number" => json!(self.id_number),
                // Neither sex nor place of birth is part of what a tester chooses.
                _ => Value::Null,
            };
            o[*field] = v;
        }
        o
    }

    /// The report's `document` block data, every sensitive field included (rendering removes
    /// those not expanded).
    pub fn document_block(&self) -> Value {
        json!({
            "address": self.address_json(),
            "dob": date_json(self.dob),
            "expiration_date": date_json(self.document.expiration_date),
            "first_name": self.first_name,
            "issued_date": date_json(self.document.issued_date),
            "issuing_country": self.document.issuing_country,
            "last_name": self.last_name,
            "number": self.document.number,
            "sex": null,
            "type": self.document.kind,
            "unparsed_place_of_birth": null,
            "unparsed_sex": null,
        })
    }

    pub fn id_number_block(&self) -> Value {
        json!({
            "dob": date_json(self.dob),
            "first_name": self.first_name,
            "id_number": self.id_number,
            "id_number_type": self.id_number_type,
            "last_name": self.last_name,
        })
    }
}

/// Every value a tester can choose. Each has a form field name (hosted page) and an API
/// parameter (test helper).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    FirstName,
    LastName,
    Dob,
    Line1,
    Line2,
    City,
    State,
    PostalCode,
    Country,
    Email,
    Phone,
    IdNumber,
    IdNumberType,
    DocumentType,
    IssuingCountry,
    DocumentNumber,
    ExpirationDate,
    IssuedDate,
}

impl Field {
    pub const ALL: [Field; 18] = [
        Field::FirstName,
        Field::LastName,
        Field::Dob,
        Field::Line1,
        Field::Line2,
        Field::City,
        Field::State,
        Field::PostalCode,
        Field::Country,
        Field::Email,
        Field::Phone,
        Field::IdNumber,
        Field::IdNumberType,
        Field::DocumentType,
        Field::IssuingCountry,
        Field::DocumentNumber,
        Field::ExpirationDate,
        Field::IssuedDate,
    ];

    /// (hash, key) of the test-helper parameter: `verified_outputs[address][city]` is
    /// (`verified_outputs`, `address`, `city`).
    pub fn param_path(self) -> (&'static str, Option<&'static str>, &'static str) {
        use Field::*;
        let vo = "verified_outputs";
        match self {
            FirstName => (vo, None, "first_name"),
            LastName => (vo, None, "last_name"),
            Dob => (vo, None, "dob"),
            Line1 => (vo, Some("address"), "line1"),
            Line2 => (vo, Some("address"), "line2"),
            City => (vo, Some("address"), "city"),
            State => (vo, Some("address"), "state"),
            PostalCode => (vo, Some("address"), "postal_code"),
            Country => (vo, Some("address"), "country"),
            Email => (vo, None, "email"),
            Phone => (vo, None, "phone"),
            IdNumber => (vo, None, "id_number"),
            IdNumberType => (vo, None, "id_number_type"),
            DocumentType => ("document", None, "type"),
            IssuingCountry => ("document", None, "issuing_country"),
            DocumentNumber => ("document", None, "number"),
            ExpirationDate => ("document", None, "expiration_date"),
            IssuedDate => ("document", None, "issued_date"),
        }
    }

    /// `verified_outputs[address][city]`.
    pub fn param(self) -> String {
        match self.param_path() {
            (hash, Some(sub), key) => format!("{hash}[{sub}][{key}]"),
            (hash, None, key) => format!("{hash}[{key}]"),
        }
    }

    /// The hosted page's form field name.
    pub fn form_name(self) -> &'static str {
        use Field::*;
        match self {
            FirstName => "first_name",
            LastName => "last_name",
            Dob => "dob",
            Line1 => "address_line1",
            Line2 => "address_line2",
            City => "address_city",
            State => "address_state",
            PostalCode => "address_postal_code",
            Country => "address_country",
            Email => "email",
            Phone => "phone",
            IdNumber => "id_number",
            IdNumberType => "id_number_type",
            DocumentType => "document_type",
            IssuingCountry => "document_issuing_country",
            DocumentNumber => "document_number",
            ExpirationDate => "document_expiration_date",
            IssuedDate => "document_issued_date",
        }
    }

    pub fn label(self) -> &'static str {
        use Field::*;
        match self {
            FirstName => "First name",
            LastName => "Last name",
            Dob => "Date of birth",
            Line1 => "Address line 1",
            Line2 => "Address line 2",
            City => "City",
            State => "State",
            PostalCode => "Postal code",
            Country => "Country (ISO code)",
            Email => "Email",
            Phone => "Phone",
            IdNumber => "ID number",
            IdNumberType => "ID number type",
            DocumentType => "Document type",
            IssuingCountry => "Issuing country (ISO code)",
            DocumentNumber => "Document number",
            ExpirationDate => "Document expiry date",
            IssuedDate => "Document issue date",
        }
    }

    pub fn is_date(self) -> bool {
        matches!(self, Field::Dob | Field::ExpirationDate | Field::IssuedDate)
    }

    /// The value of this field in `p`, as the hosted page prefills it.
    pub fn current(self, p: &VerifiedPerson) -> String {
        use Field::*;
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let date = |v: Option<Date>| v.map(|d| d.iso()).unwrap_or_default();
        match self {
            FirstName => text(&p.first_name),
            LastName => text(&p.last_name),
            Dob => date(p.dob),
            Line1 => text(&p.address.line1),
            Line2 => text(&p.address.line2),
            City => text(&p.address.city),
            State => text(&p.address.state),
            PostalCode => text(&p.address.postal_code),
            Country => text(&p.address.country),
            Email => text(&p.email),
            Phone => text(&p.phone),
            IdNumber => text(&p.id_number),
            IdNumberType => text(&p.id_number_type),
            DocumentType => p.document.kind.clone(),
            IssuingCountry => text(&p.document.issuing_country),
            DocumentNumber => text(&p.document.number),
            ExpirationDate => date(p.document.expiration_date),
            IssuedDate => date(p.document.issued_date),
        }
    }
}

/// A chosen value: text, or a date already checked to be a real one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Text(String),
    Date(Date),
}

/// Why a choice was refused, naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: Field,
    pub message: String,
}

/// The tester's choices. A field that is absent keeps its default; `Some(None)` empties it
/// (Stripe's convention: an empty value unsets).
#[derive(Debug, Clone, Default)]
pub struct Choices(BTreeMap<Field, Option<Choice>>);

impl Choices {
    pub fn set(&mut self, field: Field, value: Option<Choice>) {
        self.0.insert(field, value);
    }

    /// Applies the choices to the session's defaults and checks every value.
    pub fn resolve(&self, session: &Session) -> Result<VerifiedPerson, FieldError> {
        let mut p = VerifiedPerson::defaults(session);
        for (&field, choice) in &self.0 {
            apply(&mut p, field, choice.clone(), session)?;
        }
        Ok(p)
    }
}

fn text_value(field: Field, choice: Option<Choice>) -> Result<Option<String>, FieldError> {
    let err = |message: String| FieldError { field, message };
    match choice {
        None => Ok(None),
        Some(Choice::Date(_)) => Err(err("must be text, not a date".into())),
        Some(Choice::Text(s)) => {
            let s = s.trim().to_string();
            if s.chars().count() > MAX_TEXT {
                return Err(err(format!("must be at most {MAX_TEXT} characters")));
            }
            if s.chars().any(char::is_control) {
                return Err(err("must not contain control characters".into()));
            }
            Ok((!s.is_empty()).then_some(s))
        }
    }
}

fn date_value(field: Field, choice: Option<Choice>) -> Result<Option<Date>, FieldError> {
    match choice {
        None => Ok(None),
        Some(Choice::Date(d)) => Ok(Some(d)),
        Some(Choice::Text(s)) if s.trim().is_empty() => Ok(None),
        Some(Choice::Text(s)) => Date::parse_iso(&s).map(Some).ok_or(FieldError {
            field,
            message: format!("must be a real date as YYYY-MM-DD (got {s})"),
        }),
    }
}

fn country_value(field: Field, choice: Option<Choice>) -> Result<Option<String>, FieldError> {
    let v = text_value(field, choice)?.map(|s| s.to_ascii_uppercase());
    match v {
        Some(c) if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()) => Err(FieldError {
            field,
            message: format!("must be a two-letter ISO 3166-1 country code such as US (got {c})"),
        }),
        other => Ok(other),
    }
}

fn one_of(
    field: Field,
    value: Option<String>,
    allowed: &[&str],
) -> Result<Option<String>, FieldError> {
    match value {
        Some(v) if !allowed.contains(&v.as_str()) => Err(FieldError {
            field,
            message: format!("must be one of {} (got {v})", allowed.join(", ")),
        }),
        other => Ok(other),
    }
}

fn apply(
    p: &mut VerifiedPerson,
    field: Field,
    choice: Option<Choice>,
    session: &Session,
) -> Result<(), FieldError> {
    use Field::*;
    let err = |message: String| FieldError { field, message };
    match field {
        FirstName => p.first_name = text_value(field, choice)?,
        LastName => p.last_name = text_value(field, choice)?,
        Dob => {
            let dob = date_value(field, choice)?;
            if dob.is_some_and(|d| d.year > current_year()) {
                return Err(err("must not be in the future".into()));
            }
            p.dob = dob;
        }
        Line1 => p.address.line1 = text_value(field, choice)?,
        Line2 => p.address.line2 = text_value(field, choice)?,
        City => p.address.city = text_value(field, choice)?,
        State => p.address.state = text_value(field, choice)?,
        PostalCode => p.address.postal_code = text_value(field, choice)?,
        Country => p.address.country = country_value(field, choice)?,
        Email => {
            let email = text_value(field, choice)?;
            if email.as_deref().is_some_and(|e| {
                e.split_once('@')
                    .is_none_or(|(a, b)| a.is_empty() || b.is_empty())
            }) {
                return Err(err(
                    "must be an email address such as jenny@example.com".into()
                ));
            }
            p.email = email;
        }
        Phone => {
            let phone = text_value(field, choice)?;
            let digits = |s: &str| s.chars().filter(char::is_ascii_digit).count();
            if phone.as_deref().is_some_and(|s| {
                digits(s) < 4
                    || !s
                        .chars()
                        .all(|c| c.is_ascii_digit() || "+ -().".contains(c))
            }) {
                return Err(err("must be a phone number such as +14155550123".into()));
            }
            p.phone = phone;
        }
        IdNumber => p.id_number = text_value(field, choice)?,
        IdNumberType => {
            p.id_number_type = one_of(field, text_value(field, choice)?, ID_NUMBER_TYPES)?
        }
        DocumentType => {
            let kind = one_of(field, text_value(field, choice)?, DOCUMENT_TYPES)?
                .ok_or_else(|| err("must not be empty".into()))?;
            let allowed: Vec<&str> = session
                .options
                .get("document")
                .and_then(|d| d.get("allowed_types"))
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if !allowed.is_empty() && !allowed.contains(&kind.as_str()) {
                return Err(err(format!(
                    "must be one of the session's options[document][allowed_types] ({}); got {kind}",
                    allowed.join(", ")
                )));
            }
            p.document.kind = kind;
        }
        IssuingCountry => p.document.issuing_country = country_value(field, choice)?,
        DocumentNumber => p.document.number = text_value(field, choice)?,
        ExpirationDate => p.document.expiration_date = date_value(field, choice)?,
        IssuedDate => p.document.issued_date = date_value(field, choice)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(options: Value) -> Session {
        serde_json::from_value(json!({
            "id": "vs_1", "created": 0, "status": "requires_input", "type": "document",
            "verification_flow": null, "client_reference_id": null, "metadata": {},
            "options": options, "provided_details": {"email": "given@example.com"},
            "return_url": null, "related_customer": null, "related_customer_account": null,
            "related_person": null, "last_error": null, "last_verification_report": null,
            "redaction": null, "token": "t"
        }))
        .unwrap()
    }

    #[test]
    fn dates_are_real_calendar_dates() {
        assert!(Date::new(29, 2, 2024).is_some());
        assert!(Date::new(29, 2, 2023).is_none());
        assert!(Date::new(31, 4, 2020).is_none());
        assert!(Date::new(1, 13, 2020).is_none());
        assert!(Date::new(0, 1, 2020).is_none());
        assert_eq!(Date::parse_iso("1985-12-10"), Date::new(10, 12, 1985));
        assert_eq!(Date::parse_iso("1985-02-30"), None);
        assert_eq!(Date::new(3, 4, 1985).unwrap().iso(), "1985-04-03");
    }

    #[test]
    fn choices_override_defaults_and_are_checked() {
        let s = session(json!({"document": {"allowed_types": ["passport"]}}));
        let defaults = VerifiedPerson::defaults(&s);
        assert_eq!(defaults.document.kind, "passport");
        assert_eq!(defaults.email.as_deref(), Some("given@example.com"));
        assert_eq!(
            defaults.id_number, None,
            "no ID number check on this session"
        );

        let mut c = Choices::default();
        c.set(Field::FirstName, Some(Choice::Text(" Ada ".into())));
        c.set(Field::Line2, Some(Choice::Text("Flat 2".into())));
        c.set(Field::Email, None);
        c.set(Field::Country, Some(Choice::Text("gb".into())));
        c.set(
            Field::Dob,
            Some(Choice::Date(Date::new(10, 12, 1985).unwrap())),
        );
        let p = c.resolve(&s).unwrap();
        assert_eq!(p.first_name.as_deref(), Some("Ada"));
        assert_eq!(p.address.line2.as_deref(), Some("Flat 2"));
        assert_eq!(p.address.country.as_deref(), Some("GB"));
        assert_eq!(p.email, None);
        assert_eq!(p.last_name.as_deref(), Some("Rosen"));

        for (field, value) in [
            (Field::DocumentType, "driving_license"), // not allowed by the session
            (Field::DocumentType, "library_card"),
            (Field::Country, "USA"),
            (Field::Email, "not-an-email"),
            (Field::Phone, "call me"),
            (Field::IdNumberType, "ssn"),
            (Field::ExpirationDate, "2030-02-30"),
            (Field::FirstName, "a\u{0}b"),
        ] {
            let mut c = Choices::default();
            c.set(field, Some(Choice::Text(value.into())));
            let e = c.resolve(&s).unwrap_err();
            assert_eq!(e.field, field, "{value}");
        }
        let mut c = Choices::default();
        c.set(
            Field::Dob,
            Some(Choice::Date(Date::new(1, 1, current_year() + 1).unwrap())),
        );
        assert_eq!(c.resolve(&s).unwrap_err().field, Field::Dob);
    }

    #[test]
    fn outputs_hide_sensitive_fields_unless_named() {
        let p = VerifiedPerson::defaults(&session(json!({})));
        let plain = p.verified_outputs(&[]);
        assert_eq!(plain["first_name"], "Jenny");
        assert!(plain.get("dob").is_none() && plain.get("id_number").is_none());
        let full = p.verified_outputs(&["dob", "id_number"]);
        assert_eq!(full["dob"], json!({"day": 1, "month": 1, "year": 1990}));
        assert!(full["id_number"].is_null());
    }

    #[test]
    fn redaction_keeps_countries_and_types() {
        let p = VerifiedPerson::defaults(&session(json!({}))).redacted();
        assert_eq!(p.first_name.as_deref(), Some("[redacted]"));
        assert_eq!(p.dob, Date::new(1, 1, 1));
        assert_eq!(p.document.expiration_date, Date::new(1, 1, 1));
        assert_eq!(p.address.country.as_deref(), Some("US"));
        assert_eq!(p.address.line2, None);
        assert_eq!(p.document.issuing_country.as_deref(), Some("US"));
        assert_eq!(p.document.kind, "driving_license");
        assert_eq!(p.email.as_deref(), Some("[redacted]"));
    }

    #[test]
    fn form_names_and_params_are_distinct() {
        let mut forms = std::collections::HashSet::new();
        let mut params = std::collections::HashSet::new();
        for f in Field::ALL {
            assert!(forms.insert(f.form_name()));
            assert!(params.insert(f.param()));
        }
        assert_eq!(Field::City.param(), "verified_outputs[address][city]");
        assert_eq!(Field::ExpirationDate.param(), "document[expiration_date]");
    }
}
