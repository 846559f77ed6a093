//! `POST /v1/test_helpers/identity/verification_sessions/{id}/{process|verify|require_input}`:
//! the programmatic stand-in for a tester submitting the hosted flow, as the Stripe CLI's
//! (unreleased) Identity triggers call it. Each helper applies its transition at once, without
//! the processing delay:
//!
//! * `process`: `requires_input → processing` (and stays there).
//! * `verify`: `→ processing → verified` (from `requires_input` or `processing`).
//! * `require_input`: `→ processing → requires_input` with `last_error[code]`
//!   (any known code; default `document_unverified_other`).
//!
//! `verify` and `require_input` also take who the submission shows, in the shape it is read
//! back: `verified_outputs[first_name|last_name|email|phone|id_number|id_number_type]`,
//! `verified_outputs[dob][day|month|year]`,
//! `verified_outputs[address][line1|line2|city|state|postal_code|country]`, and
//! `document[type|issuing_country|number]`, `document[expiration_date|issued_date][day|month|year]`.
//! Anything left out keeps its test default; an empty value clears it.

use super::sessions::render;
use super::{ApiResult, Ctx};
use crate::errors::ApiError;
use crate::form::Params;
use crate::lifecycle::{self, parse_outcome, Outcome};
use crate::model::Status;
use crate::person::{Choice, Choices, Date, Field};

/// A `{day, month, year}` hash as a real date; an empty value (`dob=`) clears the field.
fn date_param(h: &Params, param: &str) -> Result<Option<Choice>, ApiError> {
    let parts: Vec<Option<i64>> = ["day", "month", "year"]
        .iter()
        .map(|k| h.int(k).map_err(|e| e.with_param(&format!("{param}[{k}]"))))
        .collect::<Result<_, _>>()?;
    if parts.iter().all(Option::is_none) {
        return Ok(None);
    }
    let invalid = || {
        ApiError::invalid_param(
            param,
            format!("Invalid {param}: day, month and year must together be a real date."),
        )
    };
    let [Some(day), Some(month), Some(year)] = parts[..] else {
        return Err(invalid());
    };
    let date = match (
        u32::try_from(day),
        u32::try_from(month),
        i32::try_from(year),
    ) {
        (Ok(d), Ok(m), Ok(y)) => Date::new(d, m, y),
        _ => None,
    };
    date.map(|d| Some(Choice::Date(d))).ok_or_else(invalid)
}

/// The tester's choices among the parameters (see the module documentation).
fn choices(p: &Params) -> Result<Choices, ApiError> {
    let mut out = Choices::default();
    let vo = p.hash("verified_outputs")?;
    let doc = p.hash("document")?;
    let address = match &vo {
        Some(v) => v
            .hash("address")
            .map_err(|e| e.with_param("verified_outputs[address]"))?,
        None => None,
    };
    let allowed = |hash: &str, sub: Option<&str>| -> Vec<&'static str> {
        Field::ALL
            .iter()
            .map(|f| f.param_path())
            .filter(|(h, s, _)| *h == hash && *s == sub)
            .map(|(_, _, k)| k)
            .collect()
    };
    if let Some(v) = &vo {
        let mut keys = allowed("verified_outputs", None);
        keys.push("address");
        v.only(&keys).map_err(|e| e.nested("verified_outputs"))?;
    }
    if let Some(a) = &address {
        a.only(&allowed("verified_outputs", Some("address")))
            .map_err(|e| e.nested("verified_outputs[address]"))?;
    }
    if let Some(d) = &doc {
        d.only(&allowed("document", None))
            .map_err(|e| e.nested("document"))?;
    }
    for field in Field::ALL {
        let (hash, sub, key) = field.param_path();
        let source = match (hash, sub) {
            ("document", _) => doc.as_ref(),
            (_, Some(_)) => address.as_ref(),
            _ => vo.as_ref(),
        };
        let Some(h) = source else { continue };
        let param = field.param();
        if field.is_date() {
            if let Some(d) = h.hash(key).map_err(|e| e.with_param(&param))? {
                out.set(field, date_param(&d, &param)?);
            }
        } else if let Some(v) = h.nullable_str(key).map_err(|e| e.with_param(&param))? {
            out.set(field, v.map(Choice::Text));
        }
    }
    Ok(out)
}

pub async fn drive(ctx: &mut Ctx<'_>, id: &str, action: &str, p: &Params) -> ApiResult {
    let outcome = match action {
        "process" => {
            p.only(&["expand"])?;
            None
        }
        "verify" => {
            p.only(&["verified_outputs", "document", "expand"])?;
            Some(Outcome::Verified)
        }
        "require_input" => {
            p.only(&["last_error", "verified_outputs", "document", "expand"])?;
            let code = match p.hash("last_error")? {
                Some(le) => {
                    le.only(&["code", "reason"])
                        .map_err(|e| e.nested("last_error"))?;
                    le.str("code")
                        .map_err(|e| e.with_param("last_error[code]"))?
                }
                None => None,
            };
            let code = code.unwrap_or_else(|| "document_unverified_other".into());
            match parse_outcome(&code) {
                Some(o @ Outcome::Failed(_)) => Some(o),
                _ => {
                    let known: Vec<String> = lifecycle::error_codes()
                        .into_iter()
                        .map(|(c, _)| c)
                        .collect();
                    return Err(ApiError::invalid_param(
                        "last_error[code]",
                        format!(
                            "Invalid last_error[code]: must be one of {} (got {code})",
                            known.join(", ")
                        ),
                    ));
                }
            }
        }
        _ => {
            return Err(ApiError::unrecognized_url(
                "POST",
                &format!("/v1/test_helpers/identity/verification_sessions/{id}/{action}"),
            ))
        }
    };
    let chosen = choices(p)?;
    let session = lifecycle::load(ctx.emu, id).await?;
    let person = chosen.resolve(&session).map_err(|e| {
        ApiError::invalid_param(
            &e.field.param(),
            format!("Invalid {}: {}.", e.field.param(), e.message),
        )
    })?;
    let w = ctx.w()?;
    if session.status == Status::RequiresInput {
        lifecycle::submit(ctx.emu, w, id, None, &ctx.cause).await?;
    } else if session.status != Status::Processing || outcome.is_none() {
        return Err(ApiError::unexpected_state(format!(
            "This VerificationSession has status `{}`; `{action}` needs `requires_input`{}.",
            session.status.as_str(),
            if outcome.is_some() {
                " or `processing`"
            } else {
                ""
            }
        )));
    }
    let s = match outcome {
        Some(o) => lifecycle::finish(ctx.emu, w, id, &o, &person, &ctx.cause).await?,
        None => lifecycle::load(ctx.emu, id).await?,
    };
    render(ctx.emu, ctx.key, &s, &p.expand()?).await
}
