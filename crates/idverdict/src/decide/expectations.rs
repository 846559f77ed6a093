//! What the app expects of the verified person, and the comparison with what Stripe verified.
//!
//! The app says, when it asks for a session, who the person must be: `first_name`,
//! `last_name`, `dob`, `email`, `phone` (kept only as keyed digests: HMAC-SHA256 under the
//! server's expectations key of the normalised value, never the value), `min_age` and
//! `issuing_countries` (kept as rules). The policy may add rules for everyone
//! (`[policy.expectations]`: a `min_age`, accepted `issuing_countries`) and says per field what
//! a `mismatch` or an `unavailable` value leads to.
//!
//! Normalisation, before digesting (the app's value and Stripe's alike):
//! - every field: Unicode NFKC (compatibility forms fold: full-width letters, ligatures),
//!   Unicode case folding (`ß` and `SS` agree), whitespace collapsed to one space, trimmed;
//! - names, also: accents and other combining marks removed (a document's machine-readable
//!   zone carries none, so `Zoë` and `ZOE` are the same name), hyphens and dots read as
//!   spaces and apostrophes dropped (`Jean-Luc`/`Jean Luc`, `O'Neil`/`ONeil`);
//! - phone: only the digits, with a leading `+` kept (`+1 (555) 010-9999` is `+15550109999`);
//! - dob: the date as `YYYY-MM-DD` (a date that does not exist is refused).
//!
//! Each digest also covers the field's name, so equal values in two fields do not produce
//! equal digests. Digests carry the key's id: after a key change, old digests compare as
//! `unavailable`, never as a false `mismatch`.
//!
//! Everything here is pure: the caller fetches the verified outputs and passes the key and
//! today's date.

use std::collections::{BTreeMap, BTreeSet};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

use super::session::SessionRecord;

/// A field the app (or the policy) can expect something of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    FirstName,
    LastName,
    Dob,
    MinAge,
    IssuingCountry,
    Email,
    Phone,
}

impl Field {
    pub const ALL: [Field; 7] = [
        Field::FirstName,
        Field::LastName,
        Field::Dob,
        Field::MinAge,
        Field::IssuingCountry,
        Field::Email,
        Field::Phone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Field::FirstName => "first_name",
            Field::LastName => "last_name",
            Field::Dob => "dob",
            Field::MinAge => "min_age",
            Field::IssuingCountry => "issuing_country",
            Field::Email => "email",
            Field::Phone => "phone",
        }
    }

    pub fn parse(s: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// The date of birth is behind Stripe's restricted key.
    pub fn needs_dob(self) -> bool {
        matches!(self, Field::Dob | Field::MinAge)
    }

    /// Why a mismatch of this field matters, as the reason apps read.
    pub fn mismatch_reason(self) -> &'static str {
        match self {
            Field::FirstName | Field::LastName => "name_mismatch",
            Field::Dob => "dob_mismatch",
            Field::MinAge => "under_min_age",
            Field::IssuingCountry => "country_not_accepted",
            Field::Email => "email_mismatch",
            Field::Phone => "phone_mismatch",
        }
    }
}

/// What the comparison of one field found. Only this is stored, never a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldResult {
    Match,
    Mismatch,
    /// Stripe did not give the value (not collected, or behind a restricted key idverdict
    /// does not have), or the digest was made under another key.
    Unavailable,
}

impl FieldResult {
    /// The reason apps read for a result that is not a match.
    pub fn reason(self, field: Field) -> Option<&'static str> {
        match self {
            FieldResult::Match => None,
            FieldResult::Mismatch => Some(field.mismatch_reason()),
            FieldResult::Unavailable => Some("verified_output_unavailable"),
        }
    }
}

/// Per field, what the comparison found.
pub type CheckResults = BTreeMap<Field, FieldResult>;

/// What a mismatch or an unavailable value leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Count it as fine.
    Ignore,
    /// A person decides (the default).
    NeedsReview,
    Rejected,
}

/// A calendar date, as Stripe writes dates (`{day, month, year}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Date {
    pub day: u8,
    pub month: u8,
    pub year: i32,
}

impl Date {
    fn to_time(self) -> Option<time::Date> {
        let month = time::Month::try_from(self.month).ok()?;
        time::Date::from_calendar_date(self.year, month, self.day).ok()
    }

    /// Today (UTC) from unix seconds.
    pub fn from_unix(secs: i64) -> Option<Date> {
        let d = time::OffsetDateTime::from_unix_timestamp(secs).ok()?.date();
        Some(Date {
            day: d.day(),
            month: u8::from(d.month()),
            year: d.year(),
        })
    }

    /// Full years from `self` to `today`.
    fn age_on(self, today: Date) -> Option<i32> {
        let (born, today) = (self.to_time()?, today.to_time()?);
        let mut age = today.year() - born.year();
        if (u8::from(today.month()), today.day()) < (u8::from(born.month()), born.day()) {
            age -= 1;
        }
        Some(age)
    }

    fn canonical(self) -> Option<String> {
        let d = self.to_time()?;
        Some(format!(
            "{:04}-{:02}-{:02}",
            d.year(),
            u8::from(d.month()),
            d.day()
        ))
    }
}

/// The server key the digests are made with (`IDVERDICT_EXPECTATIONS_KEY`).
#[derive(Clone)]
pub struct DigestKey {
    /// HMAC-SHA256 keyed once; each digest starts from a clone.
    mac: HmacSha256,
    id: String,
}

impl std::fmt::Debug for DigestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DigestKey({})", self.id)
    }
}

type HmacSha256 = Hmac<Sha256>;

/// The key cannot be used (HMAC takes keys of any length, so this does not happen; the type
/// says so instead of a panic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the expectations key cannot key HMAC-SHA256")]
pub struct InvalidKey;

impl DigestKey {
    pub fn new(secret: &str) -> Result<DigestKey, InvalidKey> {
        let mac = <HmacSha256 as Mac>::new_from_slice(secret.as_bytes()).map_err(|_| InvalidKey)?;
        let mut key = DigestKey {
            mac,
            id: String::new(),
        };
        key.id = key.raw(b"idverdict expectations key id")[..16].to_string();
        Ok(key)
    }

    /// A short public name of the key (a digest of it), stored with the digests.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn raw(&self, data: &[u8]) -> String {
        let mut mac = self.mac.clone();
        mac.update(data);
        hex::encode(mac.finalize().into_bytes())
    }

    fn digest(&self, field: Field, normalised: &str) -> String {
        let mut input = format!("idverdict/v1/{}\0", field.as_str()).into_bytes();
        input.extend_from_slice(normalised.as_bytes());
        self.raw(&input)
    }
}

/// A value normalised for its field (see the module docs); `None` when nothing is left.
pub fn normalize(field: Field, value: &str) -> Option<String> {
    let folded = caseless::default_case_fold_str(&value.nfkc().collect::<String>());
    let text: String = match field {
        Field::FirstName | Field::LastName => folded
            .nfkd()
            .filter(|c| !is_combining_mark(*c))
            .filter(|c| !matches!(c, '\'' | '\u{2019}' | '\u{02bc}' | '`'))
            .map(|c| {
                if matches!(c, '-' | '\u{2010}' | '.') {
                    ' '
                } else {
                    c
                }
            })
            .collect::<String>()
            .nfkc()
            .collect(),
        Field::Phone => {
            let digits: String = folded.chars().filter(char::is_ascii_digit).collect();
            let plus = folded.trim_start().starts_with('+');
            format!("{}{digits}", if plus { "+" } else { "" })
        }
        _ => folded,
    };
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    (!collapsed.is_empty() && collapsed != "+").then_some(collapsed)
}

/// What the app sends (`expected` of a session creation request).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedInput {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub dob: Option<Date>,
    pub min_age: Option<u32>,
    pub issuing_countries: Option<Vec<String>>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

impl ExpectedInput {
    /// Whether a field needs the digest key.
    pub fn needs_key(&self) -> bool {
        self.first_name.is_some()
            || self.last_name.is_some()
            || self.dob.is_some()
            || self.email.is_some()
            || self.phone.is_some()
    }
}

/// Why an `expected` object is refused (the message names the field, never its value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected.{field}: {message}")]
pub struct ExpectedError {
    pub field: &'static str,
    pub message: &'static str,
}

/// What idverdict keeps of an app's expectations: digests and rules, no value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expectations {
    /// The id of the key the digests were made with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Digest per field (`first_name`, `last_name`, `dob`, `email`, `phone`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digests: BTreeMap<Field, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_age: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuing_countries: Option<BTreeSet<String>>,
    /// Fields whose digests were forgotten with the user's redacted sessions
    /// (`forget_digests`): still expected, so a later session is not waved through on them,
    /// but with nothing left to compare (`unavailable`) until the app sends them again.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub erased: BTreeSet<Field>,
}

/// A country code as `issuing_country` carries it: two ASCII letters, upper case.
fn country(code: &str) -> Option<String> {
    let code = code.trim().to_ascii_uppercase();
    (code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase())).then_some(code)
}

/// Accepted countries, checked and upper-cased.
pub fn countries(codes: &[String], field: &'static str) -> Result<BTreeSet<String>, ExpectedError> {
    let set: Option<BTreeSet<String>> = codes.iter().map(|c| country(c)).collect();
    match set {
        Some(set) if !set.is_empty() => Ok(set),
        _ => Err(ExpectedError {
            field,
            message: "must be a non-empty list of two-letter ISO country codes",
        }),
    }
}

/// The oldest `min_age` anyone sets.
const MAX_MIN_AGE: u32 = 150;
/// Longer values are refused rather than digested: no name, address or phone is this long.
const MAX_VALUE_CHARS: usize = 320;

impl Expectations {
    /// Forget every digest (a keyed digest of a name is still personal data), keeping the
    /// rules and which fields were expected. Returns whether anything was forgotten.
    pub fn forget_digests(&mut self) -> bool {
        if self.digests.is_empty() {
            return false;
        }
        self.erased.extend(self.digests.keys().copied());
        self.digests.clear();
        true
    }

    /// Check what the app sent and keep only digests and rules. `key` is needed as soon as a
    /// digested field is present (the caller refuses the request without one).
    pub fn from_input(
        input: &ExpectedInput,
        key: Option<&DigestKey>,
    ) -> Result<Expectations, ExpectedError> {
        let mut out = Expectations::default();
        let texts = [
            (Field::FirstName, &input.first_name),
            (Field::LastName, &input.last_name),
            (Field::Email, &input.email),
            (Field::Phone, &input.phone),
        ];
        for (field, value) in texts {
            let Some(value) = value else { continue };
            if value.chars().count() > MAX_VALUE_CHARS {
                return Err(ExpectedError {
                    field: field.as_str(),
                    message: "is too long",
                });
            }
            let normalised = normalize(field, value).ok_or(ExpectedError {
                field: field.as_str(),
                message: "is empty once normalised",
            })?;
            if let Some(key) = key {
                out.digests.insert(field, key.digest(field, &normalised));
            }
        }
        if let Some(dob) = input.dob {
            let canonical = dob.canonical().ok_or(ExpectedError {
                field: "dob",
                message: "is not a date that exists ({day, month, year})",
            })?;
            if let Some(key) = key {
                out.digests
                    .insert(Field::Dob, key.digest(Field::Dob, &canonical));
            }
        }
        if let Some(age) = input.min_age {
            if !(1..=MAX_MIN_AGE).contains(&age) {
                return Err(ExpectedError {
                    field: "min_age",
                    message: "must be between 1 and 150",
                });
            }
            out.min_age = Some(age);
        }
        if let Some(codes) = &input.issuing_countries {
            out.issuing_countries = Some(countries(codes, "issuing_countries")?);
        }
        if !out.digests.is_empty() {
            out.key_id = key.map(|k| k.id().to_string());
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty() && self.min_age.is_none() && self.issuing_countries.is_none()
    }
}

/// The operator's `[policy.expectations]`: rules for every user, and per field what a
/// mismatch or an unavailable value leads to (`needs_review` unless set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpectationPolicy {
    pub min_age: Option<u32>,
    pub issuing_countries: Option<BTreeSet<String>>,
    pub on_mismatch: BTreeMap<Field, Action>,
    pub on_unavailable: BTreeMap<Field, Action>,
}

impl ExpectationPolicy {
    /// Rules that apply to every verified session.
    pub fn has_rules(&self) -> bool {
        self.min_age.is_some() || self.issuing_countries.is_some()
    }

    /// What `result` of `field` leads to.
    pub fn action(&self, field: Field, result: FieldResult) -> Action {
        let table = match result {
            FieldResult::Match => return Action::Ignore,
            FieldResult::Mismatch => &self.on_mismatch,
            FieldResult::Unavailable => &self.on_unavailable,
        };
        table.get(&field).copied().unwrap_or(Action::NeedsReview)
    }
}

/// Which fields a verified session is checked on, from the user's expectations (if any) and
/// the policy: the policy's rules always apply, a request can only add to them.
pub fn fields_to_check(expected: Option<&Expectations>, policy: &ExpectationPolicy) -> Vec<Field> {
    Field::ALL
        .into_iter()
        .filter(|f| match f {
            Field::MinAge => {
                policy.min_age.is_some() || expected.is_some_and(|e| e.min_age.is_some())
            }
            Field::IssuingCountry => {
                policy.issuing_countries.is_some()
                    || expected.is_some_and(|e| e.issuing_countries.is_some())
            }
            other => {
                expected.is_some_and(|e| e.digests.contains_key(other) || e.erased.contains(other))
            }
        })
        .collect()
}

/// Whether a user's expectation digests must be forgotten: once every one of the user's
/// sessions is redacted, the app has asked Stripe to forget the person, and nothing is left
/// that the digests could be compared with.
pub fn digests_forgotten_with(sessions: &[&SessionRecord]) -> bool {
    !sessions.is_empty() && sessions.iter().all(|s| s.is_redacted())
}

/// What Stripe verified, as idverdict read it (`None`: not given or not readable).
#[derive(Default, Clone, PartialEq, Eq)]
pub struct VerifiedPerson {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub dob: Option<Date>,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// The document's issuing country (from the verification report).
    pub issuing_country: Option<String>,
}

impl std::fmt::Debug for VerifiedPerson {
    // Personal data: show only which values are present.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedPerson")
            .field("first_name", &self.first_name.is_some())
            .field("last_name", &self.last_name.is_some())
            .field("dob", &self.dob.is_some())
            .field("email", &self.email.is_some())
            .field("phone", &self.phone.is_some())
            .field("issuing_country", &self.issuing_country.is_some())
            .finish()
    }
}

/// Compare a verified person with what was expected. `today` counts ages; `key` digests the
/// verified values (without it, or under another key than the stored digests', digested
/// fields are `unavailable`).
pub fn compare(
    expected: Option<&Expectations>,
    policy: &ExpectationPolicy,
    person: &VerifiedPerson,
    key: Option<&DigestKey>,
    today: Date,
) -> CheckResults {
    let mut results = CheckResults::new();
    for field in fields_to_check(expected, policy) {
        let result = match field {
            Field::MinAge => {
                let min = policy
                    .min_age
                    .into_iter()
                    .chain(expected.and_then(|e| e.min_age))
                    .max()
                    .unwrap_or(0);
                match person.dob.and_then(|dob| dob.age_on(today)) {
                    None => FieldResult::Unavailable,
                    Some(age) if age >= i32::try_from(min).unwrap_or(i32::MAX) => {
                        FieldResult::Match
                    }
                    Some(_) => FieldResult::Mismatch,
                }
            }
            Field::IssuingCountry => match person.issuing_country.as_deref().and_then(country) {
                None => FieldResult::Unavailable,
                Some(c) => {
                    let lists = [
                        policy.issuing_countries.as_ref(),
                        expected.and_then(|e| e.issuing_countries.as_ref()),
                    ];
                    if lists.into_iter().flatten().all(|list| list.contains(&c)) {
                        FieldResult::Match
                    } else {
                        FieldResult::Mismatch
                    }
                }
            },
            digested => compare_digest(digested, expected, person, key),
        };
        results.insert(field, result);
    }
    results
}

fn compare_digest(
    field: Field,
    expected: Option<&Expectations>,
    person: &VerifiedPerson,
    key: Option<&DigestKey>,
) -> FieldResult {
    let (Some(expected), Some(key)) = (expected, key) else {
        return FieldResult::Unavailable;
    };
    let Some(stored) = expected.digests.get(&field) else {
        return FieldResult::Unavailable;
    };
    if expected.key_id.as_deref() != Some(key.id()) {
        return FieldResult::Unavailable;
    }
    let verified = match field {
        Field::FirstName => person
            .first_name
            .as_deref()
            .and_then(|v| normalize(field, v)),
        Field::LastName => person
            .last_name
            .as_deref()
            .and_then(|v| normalize(field, v)),
        Field::Email => person.email.as_deref().and_then(|v| normalize(field, v)),
        Field::Phone => person.phone.as_deref().and_then(|v| normalize(field, v)),
        Field::Dob => person.dob.and_then(Date::canonical),
        Field::MinAge | Field::IssuingCountry => None,
    };
    let Some(verified) = verified else {
        return FieldResult::Unavailable;
    };
    let digest = key.digest(field, &verified);
    if bool::from(digest.as_bytes().ct_eq(stored.as_bytes())) {
        FieldResult::Match
    } else {
        FieldResult::Mismatch
    }
}

/// What a session's results lead to: the strongest action over the fields (`rejected` over
/// `needs_review`; `ignore` and matches are fine), with the first field that calls for it.
/// `None`: the session passes.
pub fn verdict(
    results: &CheckResults,
    policy: &ExpectationPolicy,
) -> Option<(Field, FieldResult, Action)> {
    results
        .iter()
        .map(|(field, result)| (*field, *result, policy.action(*field, *result)))
        .filter(|(_, _, action)| *action != Action::Ignore)
        .fold(
            None,
            |best: Option<(Field, FieldResult, Action)>, next| match best {
                Some(b) if b.2 >= next.2 => Some(b),
                _ => Some(next),
            },
        )
}

/// The `[policy.expectations]` table as written in the configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectationsTable {
    pub min_age: Option<u32>,
    pub issuing_countries: Option<Vec<String>>,
    /// Default for every field.
    pub on_mismatch: Option<Action>,
    pub on_unavailable: Option<Action>,
    #[serde(default)]
    pub fields: BTreeMap<String, FieldTable>,
}

/// One `[policy.expectations.fields.<field>]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldTable {
    pub on_mismatch: Option<Action>,
    pub on_unavailable: Option<Action>,
}

impl ExpectationsTable {
    /// Validate; errors are `(key, message)`.
    pub fn resolve(&self) -> Result<ExpectationPolicy, (String, String)> {
        let mut policy = ExpectationPolicy::default();
        if let Some(age) = self.min_age {
            if !(1..=MAX_MIN_AGE).contains(&age) {
                return Err((
                    "policy.expectations.min_age".into(),
                    "must be between 1 and 150".into(),
                ));
            }
            policy.min_age = Some(age);
        }
        if let Some(codes) = &self.issuing_countries {
            policy.issuing_countries =
                Some(countries(codes, "issuing_countries").map_err(|e| {
                    (
                        "policy.expectations.issuing_countries".to_string(),
                        e.message.to_string(),
                    )
                })?);
        }
        for field in Field::ALL {
            if let Some(a) = self.on_mismatch {
                policy.on_mismatch.insert(field, a);
            }
            if let Some(a) = self.on_unavailable {
                policy.on_unavailable.insert(field, a);
            }
        }
        for (name, table) in &self.fields {
            let field = Field::parse(name).ok_or_else(|| {
                (
                    format!("policy.expectations.fields.{name}"),
                    format!(
                        "not a field (one of {})",
                        Field::ALL.map(Field::as_str).join(", ")
                    ),
                )
            })?;
            if let Some(a) = table.on_mismatch {
                policy.on_mismatch.insert(field, a);
            }
            if let Some(a) = table.on_unavailable {
                policy.on_unavailable.insert(field, a);
            }
        }
        Ok(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: Date = Date {
        day: 15,
        month: 6,
        year: 2026,
    };

    fn key() -> DigestKey {
        DigestKey::new("a test key of more than thirty-two characters").unwrap()
    }

    fn jane() -> ExpectedInput {
        ExpectedInput {
            first_name: Some("Jane".into()),
            last_name: Some("Doe".into()),
            dob: Some(Date {
                day: 2,
                month: 7,
                year: 1990,
            }),
            min_age: Some(18),
            issuing_countries: Some(vec!["fr".into(), "DE".into(), "ES".into()]),
            email: Some("Jane.Doe@Example.com".into()),
            phone: Some("+33 6 12 34 56 78".into()),
        }
    }

    fn verified_jane() -> VerifiedPerson {
        VerifiedPerson {
            first_name: Some("JANE".into()),
            last_name: Some("Doe".into()),
            dob: Some(Date {
                day: 2,
                month: 7,
                year: 1990,
            }),
            email: Some("jane.doe@example.com".into()),
            phone: Some("+33612345678".into()),
            issuing_country: Some("FR".into()),
        }
    }

    #[test]
    fn normalisation_makes_the_same_person_the_same_value() {
        let n = |f, v| normalize(f, v).unwrap();
        assert_eq!(
            n(Field::LastName, "  Zoë   O’Neil-Smith "),
            "zoe oneil smith"
        );
        assert_eq!(n(Field::LastName, "ZOE ONEIL SMITH"), "zoe oneil smith");
        assert_eq!(n(Field::LastName, "Strauß"), n(Field::LastName, "STRAUSS"));
        assert_eq!(n(Field::FirstName, "Ｊａｎｅ"), "jane");
        assert_eq!(n(Field::Phone, "+1 (555) 010-9999"), "+15550109999");
        assert_eq!(
            n(Field::Email, " Jane.Doe@EXAMPLE.com"),
            "jane.doe@example.com"
        );
        assert_eq!(normalize(Field::FirstName, " - "), None);
    }

    #[test]
    fn only_digests_and_rules_are_kept() {
        let e = Expectations::from_input(&jane(), Some(&key())).unwrap();
        let stored = serde_json::to_string(&e).unwrap();
        for value in ["Jane", "jane", "Doe", "doe", "1990", "example", "612345678"] {
            assert!(!stored.contains(value), "{value} in {stored}");
        }
        assert_eq!(e.min_age, Some(18));
        assert_eq!(e.digests.len(), 5);
        assert_eq!(e.key_id.as_deref(), Some(key().id()));
        // Field-separated: the same text in two fields digests differently.
        let same = ExpectedInput {
            first_name: Some("Lee".into()),
            last_name: Some("Lee".into()),
            ..Default::default()
        };
        let e = Expectations::from_input(&same, Some(&key())).unwrap();
        assert_ne!(e.digests[&Field::FirstName], e.digests[&Field::LastName]);
    }

    #[test]
    fn bad_input_names_the_field_not_the_value() {
        let bad =
            |input: ExpectedInput| Expectations::from_input(&input, Some(&key())).unwrap_err();
        let e = bad(ExpectedInput {
            dob: Some(Date {
                day: 31,
                month: 2,
                year: 1990,
            }),
            ..Default::default()
        });
        assert_eq!(e.field, "dob");
        assert_eq!(
            bad(ExpectedInput {
                issuing_countries: Some(vec!["FRA".into()]),
                ..Default::default()
            })
            .field,
            "issuing_countries"
        );
        assert_eq!(
            bad(ExpectedInput {
                min_age: Some(0),
                ..Default::default()
            })
            .field,
            "min_age"
        );
        let e = bad(ExpectedInput {
            last_name: Some("  ".into()),
            ..Default::default()
        });
        assert!(e.to_string().starts_with("expected.last_name"), "{e}");
    }

    #[test]
    fn the_same_person_matches_on_every_field() {
        let k = key();
        let e = Expectations::from_input(&jane(), Some(&k)).unwrap();
        let r = compare(
            Some(&e),
            &ExpectationPolicy::default(),
            &verified_jane(),
            Some(&k),
            TODAY,
        );
        assert_eq!(r.len(), 7);
        assert!(r.values().all(|v| *v == FieldResult::Match), "{r:?}");
        assert_eq!(verdict(&r, &ExpectationPolicy::default()), None);
    }

    #[test]
    fn each_mismatch_kind_and_its_reason() {
        let k = key();
        let e = Expectations::from_input(&jane(), Some(&k)).unwrap();
        let policy = ExpectationPolicy::default();
        type Change = fn(&mut VerifiedPerson);
        let cases: [(Field, Change, &str); 7] = [
            (
                Field::FirstName,
                |p| p.first_name = Some("Janet".into()),
                "name_mismatch",
            ),
            (
                Field::LastName,
                |p| p.last_name = Some("Roe".into()),
                "name_mismatch",
            ),
            (
                Field::Dob,
                |p| {
                    p.dob = Some(Date {
                        day: 3,
                        month: 7,
                        year: 1990,
                    })
                },
                "dob_mismatch",
            ),
            (
                Field::MinAge,
                |p| {
                    p.dob = Some(Date {
                        day: 16,
                        month: 6,
                        year: 2008,
                    })
                },
                "under_min_age",
            ),
            (
                Field::IssuingCountry,
                |p| p.issuing_country = Some("US".into()),
                "country_not_accepted",
            ),
            (
                Field::Email,
                |p| p.email = Some("jd@example.com".into()),
                "email_mismatch",
            ),
            (
                Field::Phone,
                |p| p.phone = Some("+33699999999".into()),
                "phone_mismatch",
            ),
        ];
        for (field, change, reason) in cases {
            let mut p = verified_jane();
            change(&mut p);
            let r = compare(Some(&e), &policy, &p, Some(&k), TODAY);
            assert_eq!(r[&field], FieldResult::Mismatch, "{field:?}: {r:?}");
            assert_eq!(FieldResult::Mismatch.reason(field), Some(reason));
            let (f, result, action) = verdict(&r, &policy).unwrap();
            assert_eq!(
                (result, action),
                (FieldResult::Mismatch, Action::NeedsReview)
            );
            // A date of birth that makes the person too young fails the dob field first.
            assert!(f == field || field == Field::MinAge, "{f:?} for {field:?}");
        }
        // 18 on the day: old enough.
        let mut p = verified_jane();
        p.dob = Some(Date {
            day: 15,
            month: 6,
            year: 2008,
        });
        let only_age = Expectations {
            min_age: Some(18),
            ..Default::default()
        };
        let r = compare(Some(&only_age), &policy, &p, None, TODAY);
        assert_eq!(r[&Field::MinAge], FieldResult::Match);
    }

    #[test]
    fn forgotten_digests_leave_the_fields_expected_but_unavailable() {
        let k = key();
        let mut e = Expectations::from_input(&jane(), Some(&k)).unwrap();
        let digested: Vec<Field> = e.digests.keys().copied().collect();
        assert!(!digested.is_empty());
        assert!(e.forget_digests());
        assert!(e.digests.is_empty(), "no digest survives");
        assert!(!e.forget_digests(), "forgetting twice changes nothing");
        // The very person who matched before is no longer waved through on those fields.
        let r = compare(
            Some(&e),
            &ExpectationPolicy::default(),
            &verified_jane(),
            Some(&k),
            TODAY,
        );
        for field in digested {
            assert_eq!(r[&field], FieldResult::Unavailable, "{field:?}");
        }
        // The rules are not personal and stay.
        assert_eq!(r[&Field::MinAge], FieldResult::Match);
        // What is stored says which fields were expected, and nothing of their values.
        let stored = serde_json::to_string(&e).unwrap();
        let back: Expectations = serde_json::from_str(&stored).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn unavailable_values_and_other_keys_are_never_a_mismatch() {
        let k = key();
        let e = Expectations::from_input(&jane(), Some(&k)).unwrap();
        // No date of birth (no restricted key), no phone collected.
        let mut p = verified_jane();
        p.dob = None;
        p.phone = None;
        let r = compare(Some(&e), &ExpectationPolicy::default(), &p, Some(&k), TODAY);
        assert_eq!(r[&Field::Dob], FieldResult::Unavailable);
        assert_eq!(r[&Field::MinAge], FieldResult::Unavailable);
        assert_eq!(r[&Field::Phone], FieldResult::Unavailable);
        assert_eq!(r[&Field::LastName], FieldResult::Match);
        // Digests made under another key.
        let other = DigestKey::new("another key, also longer than thirty-two chars").unwrap();
        let r = compare(
            Some(&e),
            &ExpectationPolicy::default(),
            &verified_jane(),
            Some(&other),
            TODAY,
        );
        assert_eq!(r[&Field::LastName], FieldResult::Unavailable);
        assert_eq!(
            r[&Field::IssuingCountry],
            FieldResult::Match,
            "rules need no key"
        );
    }

    #[test]
    fn the_policy_adds_rules_and_says_what_each_result_leads_to() {
        let text = "min_age = 21\nissuing_countries = [\"FR\"]\non_unavailable = \"ignore\"\n[fields.min_age]\non_mismatch = \"rejected\"\n";
        let table: ExpectationsTable = toml::from_str(text).unwrap();
        let policy = table.resolve().unwrap();
        // No expectations of the app at all: the policy's rules still apply.
        let mut p = verified_jane();
        p.issuing_country = Some("DE".into());
        p.dob = Some(Date {
            day: 1,
            month: 1,
            year: 2006,
        });
        let r = compare(None, &policy, &p, None, TODAY);
        assert_eq!(
            r,
            CheckResults::from([
                (Field::MinAge, FieldResult::Mismatch),
                (Field::IssuingCountry, FieldResult::Mismatch)
            ])
        );
        assert_eq!(
            verdict(&r, &policy),
            Some((Field::MinAge, FieldResult::Mismatch, Action::Rejected))
        );
        // The app's list narrows the policy's, never widens it.
        let app = Expectations {
            issuing_countries: Some(BTreeSet::from(["FR".into(), "DE".into()])),
            min_age: Some(18),
            ..Default::default()
        };
        let r = compare(Some(&app), &policy, &p, None, TODAY);
        assert_eq!(r[&Field::IssuingCountry], FieldResult::Mismatch);
        assert_eq!(r[&Field::MinAge], FieldResult::Mismatch, "21 wins over 18");
        // Unavailable ignored by policy: passes.
        p.dob = None;
        p.issuing_country = Some("FR".into());
        let r = compare(None, &policy, &p, None, TODAY);
        assert_eq!(r[&Field::MinAge], FieldResult::Unavailable);
        assert_eq!(verdict(&r, &policy), None);

        let bad: ExpectationsTable =
            toml::from_str("[fields.shoe_size]\non_mismatch = \"ignore\"\n").unwrap();
        assert_eq!(
            bad.resolve().unwrap_err().0,
            "policy.expectations.fields.shoe_size"
        );
    }

    #[test]
    fn ages_count_full_years() {
        let born = Date {
            day: 29,
            month: 2,
            year: 2000,
        };
        let on = |day, month, year| born.age_on(Date { day, month, year }).unwrap();
        assert_eq!(on(28, 2, 2018), 17);
        assert_eq!(on(1, 3, 2018), 18);
        assert_eq!(
            Date::from_unix(0),
            Some(Date {
                day: 1,
                month: 1,
                year: 1970
            })
        );
    }
}
