//! `POST /v1/test_helpers/identity/verification_sessions/{id}/{process|verify|require_input}`:
//! the programmatic stand-in for a tester submitting the hosted flow, as the
//! Stripe CLI's (unreleased) Identity triggers call it. Each helper applies its
//! transition at once, without the processing delay:
//!
//! * `process`: `requires_input → processing` (and stays there).
//! * `verify`: `→ processing → verified` (from `requires_input` or `processing`).
//! * `require_input`: `→ processing → requires_input` with `last_error[code]`
//!   (any of the 19 codes; default `document_unverified_other`).

use super::sessions::render;
use super::{ApiResult, Ctx};
use crate::errors::ApiError;
use crate::form::Params;
use crate::lifecycle::{self, parse_outcome, Outcome};
use crate::model::Status;

pub async fn drive(ctx: &mut Ctx<'_>, id: &str, action: &str, p: &Params) -> ApiResult {
    let outcome = match action {
        "process" => {
            p.only(&["expand"])?;
            None
        }
        "verify" => {
            p.only(&["expand"])?;
            Some(Outcome::Verified)
        }
        "require_input" => {
            p.only(&["last_error", "expand"])?;
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
    let session = lifecycle::load(ctx.emu, id).await?;
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
        Some(o) => lifecycle::finish(ctx.emu, w, id, &o, &ctx.cause).await?,
        None => lifecycle::load(ctx.emu, id).await?,
    };
    render(ctx.emu, &s, &p.expand()?).await
}
