//! `/v1/identity/verification_reports`: retrieve and list.

use serde_json::Value;

use super::list::{item_expansions, paginate, LIST_PARAMS};
use super::{expand, ApiResult, Ctx};
use crate::errors::ApiError;
use crate::form::Params;
use crate::report;
use crate::store::Kind;

const OBJECT_NAME: &str = "verificationreport";

pub async fn retrieve(ctx: &mut Ctx<'_>, id: &str, p: &Params) -> ApiResult {
    p.only(&["expand"])?;
    let fields = expand::report(&p.expand()?, ctx.key)?;
    let r = ctx
        .emu
        .store
        .get::<Value>(Kind::Report, id)
        .await?
        .ok_or_else(|| ApiError::no_such(OBJECT_NAME, id))?;
    Ok(report::render(&r, &fields))
}

pub async fn list(ctx: &mut Ctx<'_>, p: &Params) -> ApiResult {
    let mut allowed = LIST_PARAMS.to_vec();
    allowed.extend([
        "client_reference_id",
        "created",
        "type",
        "verification_session",
    ]);
    p.only(&allowed)?;
    let created = p.range("created")?;
    let crid = p.str("client_reference_id")?;
    let kind = p.str("type")?;
    if let Some(k) = &kind {
        if k != "document" && k != "id_number" {
            return Err(ApiError::invalid_param(
                "type",
                format!("Invalid type: must be one of document or id_number (got {k})"),
            ));
        }
    }
    let session = p.str("verification_session")?;
    let fields = expand::report(&item_expansions(p)?, ctx.key)?;
    let field_is = |r: &Value, f: &str, want: &Option<String>| {
        want.as_ref()
            .is_none_or(|w| r[f].as_str() == Some(w.as_str()))
    };
    let items: Vec<Value> = ctx
        .emu
        .store
        .all::<Value>(Kind::Report)
        .await?
        .into_iter()
        .filter(|r| {
            created.is_none_or(|c| c.contains(r["created"].as_i64().unwrap_or(0)))
                && field_is(r, "client_reference_id", &crid)
                && field_is(r, "type", &kind)
                && field_is(r, "verification_session", &session)
        })
        .map(|r| report::render(&r, &fields))
        .collect();
    paginate(items, p, "/v1/identity/verification_reports", OBJECT_NAME)
}
