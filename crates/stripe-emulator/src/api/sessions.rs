//! `/v1/identity/verification_sessions`: create, retrieve, list, update, cancel, redact.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::list::{item_expansions, paginate, LIST_PARAMS};
use super::{expand, ApiResult, Ctx, KeyKind};
use crate::clock::now_s;
use crate::errors::ApiError;
use crate::form::Params;
use crate::ids::{new_id, token};
use crate::lifecycle;
use crate::model::{Session, Status};
use crate::person::DOCUMENT_TYPES;
use crate::report;
use crate::store::Kind;
use crate::Emulator;

const OBJECT_NAME: &str = "verificationsession";

/// `options` on create/update: only `options[document]` is a parameter
/// (`email`, `phone`, `matching` exist on the object but cannot be set).
fn parse_options(p: &Params) -> Result<Option<Value>, ApiError> {
    let Some(opts) = p.hash("options")? else {
        return Ok(None);
    };
    opts.only(&["document"]).map_err(|e| e.nested("options"))?;
    let mut out = Map::new();
    if let Some(doc) = opts
        .hash("document")
        .map_err(|e| e.with_param("options[document]"))?
    {
        doc.only(&[
            "allowed_types",
            "require_id_number",
            "require_live_capture",
            "require_matching_selfie",
        ])
        .map_err(|e| e.nested("options[document]"))?;
        let mut d = Map::new();
        if let Some(types) = doc
            .str_list("allowed_types")
            .map_err(|e| e.with_param("options[document][allowed_types]"))?
        {
            if let Some(bad) = types.iter().find(|t| !DOCUMENT_TYPES.contains(&t.as_str())) {
                return Err(ApiError::invalid_param(
                    "options[document][allowed_types]",
                    format!("Invalid options[document][allowed_types]: must be one of driving_license, id_card, or passport (got {bad})"),
                ));
            }
            d.insert("allowed_types".into(), json!(types));
        }
        for flag in [
            "require_id_number",
            "require_live_capture",
            "require_matching_selfie",
        ] {
            if let Some(b) = doc
                .bool(flag)
                .map_err(|e| e.with_param(&format!("options[document][{flag}]")))?
            {
                d.insert(flag.into(), json!(b));
            }
        }
        out.insert("document".into(), Value::Object(d));
    }
    Ok(Some(Value::Object(out)))
}

fn parse_provided_details(p: &Params) -> Result<Option<Value>, ApiError> {
    let Some(pd) = p.hash("provided_details")? else {
        return Ok(None);
    };
    pd.only(&["email", "phone"])
        .map_err(|e| e.nested("provided_details"))?;
    let mut out = Map::new();
    for k in ["email", "phone"] {
        if let Some(v) = pd
            .str(k)
            .map_err(|e| e.with_param(&format!("provided_details[{k}]")))?
        {
            if !v.is_empty() {
                out.insert(k.into(), json!(v));
            }
        }
    }
    Ok(Some(Value::Object(out)))
}

fn parse_type(p: &Params) -> Result<Option<String>, ApiError> {
    match p.str("type")? {
        None => Ok(None),
        Some(t) if t == "document" || t == "id_number" => Ok(Some(t)),
        Some(t) => Err(ApiError::invalid_param(
            "type",
            format!("Invalid type: must be one of document or id_number (got {t})"),
        )),
    }
}

/// Renders a session with the requested expansions (see [`expand::session`] for which need a
/// restricted key).
pub async fn render(emu: &Emulator, key: KeyKind, s: &Session, expand: &[String]) -> ApiResult {
    let x = expand::session(expand, key)?;
    let mut o = s.render(&emu.public_base);
    if x.report {
        if let Some(id) = &s.last_verification_report {
            if let Some(r) = emu.store.get::<Value>(Kind::Report, id).await? {
                o["last_verification_report"] = report::render(&r, &x.report_fields);
            }
        }
    }
    if x.verified_outputs {
        // Absent unless expanded, null until the session is verified.
        o["verified_outputs"] = s
            .person
            .as_ref()
            .map_or(Value::Null, |p| p.verified_outputs(&x.output_fields));
    }
    if x.provided_details {
        o["provided_details"] = s.provided_details.clone();
    }
    Ok(o)
}

pub async fn create(ctx: &mut Ctx<'_>, p: &Params) -> ApiResult {
    p.only(&[
        "type",
        "verification_flow",
        "client_reference_id",
        "metadata",
        "options",
        "provided_details",
        "related_customer",
        "related_customer_account",
        "related_person",
        "return_url",
        "expand",
    ])?;
    let flow = p.nullable_str("verification_flow")?.flatten();
    let kind = match (parse_type(p)?, &flow) {
        (Some(t), _) => t,
        (None, Some(_)) => "verification_flow".to_string(),
        (None, None) => return Err(ApiError::missing_param("type")),
    };
    let related_person = match p.hash("related_person")? {
        None => None,
        Some(rp) => {
            rp.only(&["account", "person"])
                .map_err(|e| e.nested("related_person"))?;
            let account = rp
                .required_str("account")
                .map_err(|e| e.with_param("related_person[account]"))?;
            let person = rp
                .required_str("person")
                .map_err(|e| e.with_param("related_person[person]"))?;
            Some(json!({"account": account, "person": person}))
        }
    };
    let mut metadata = BTreeMap::new();
    p.apply_metadata(&mut metadata)?;
    let mut s = Session {
        id: new_id("vs"),
        created: now_s(),
        status: Status::RequiresInput,
        kind,
        verification_flow: flow,
        client_reference_id: p.nullable_str("client_reference_id")?.flatten(),
        metadata,
        options: parse_options(p)?.unwrap_or_else(|| json!({})),
        provided_details: parse_provided_details(p)?.unwrap_or_else(|| json!({})),
        return_url: p.nullable_str("return_url")?.flatten(),
        related_customer: p.nullable_str("related_customer")?.flatten(),
        related_customer_account: p.nullable_str("related_customer_account")?.flatten(),
        related_person,
        last_error: None,
        last_verification_report: None,
        redaction: None,
        token: token(),
        person: None,
    };
    if s.options.get("document").is_none() && s.kind == "document" {
        s.options = json!({"document": {}});
    }
    ctx.emu
        .store
        .put(Kind::Session, &s.id, s.created, &s)
        .await?;
    lifecycle::emit(
        ctx.emu,
        ctx.w()?,
        &s,
        "identity.verification_session.created",
        &ctx.cause,
    )
    .await?;
    tracing::info!(session = %s.id, "verification session created");
    render(ctx.emu, ctx.key, &s, &p.expand()?).await
}

pub async fn retrieve(ctx: &mut Ctx<'_>, id: &str, p: &Params) -> ApiResult {
    p.only(&["expand"])?;
    let s = lifecycle::load(ctx.emu, id).await?;
    render(ctx.emu, ctx.key, &s, &p.expand()?).await
}

pub async fn list(ctx: &mut Ctx<'_>, p: &Params) -> ApiResult {
    let mut allowed = LIST_PARAMS.to_vec();
    allowed.extend([
        "client_reference_id",
        "status",
        "created",
        "related_customer",
        "related_customer_account",
    ]);
    p.only(&allowed)?;
    let status = match p.str("status")? {
        None => None,
        Some(st) => Some(Status::parse(&st).ok_or_else(|| {
            ApiError::invalid_param("status", format!("Invalid status: must be one of canceled, processing, requires_input, or verified (got {st})"))
        })?),
    };
    let created = p.range("created")?;
    let crid = p.str("client_reference_id")?;
    let customer = p.str("related_customer")?;
    let customer_account = p.str("related_customer_account")?;
    let expand = item_expansions(p)?;
    let mut items = Vec::new();
    for s in ctx.emu.store.all::<Session>(Kind::Session).await? {
        let keep = status.is_none_or(|st| s.status == st)
            && created.is_none_or(|r| r.contains(s.created))
            && crid
                .as_ref()
                .is_none_or(|c| s.client_reference_id.as_ref() == Some(c))
            && customer
                .as_ref()
                .is_none_or(|c| s.related_customer.as_ref() == Some(c))
            && customer_account
                .as_ref()
                .is_none_or(|c| s.related_customer_account.as_ref() == Some(c));
        if keep {
            items.push(s);
        }
    }
    // Render only the page's items with their expansions: paginate ids first.
    let ids: Vec<Value> = items.iter().map(|s| json!({"id": s.id})).collect();
    let mut page = paginate(ids, p, "/v1/identity/verification_sessions", OBJECT_NAME)?;
    let mut data = Vec::new();
    for v in page["data"].as_array().cloned().unwrap_or_default() {
        if let Some(s) = items
            .iter()
            .find(|s| Some(s.id.as_str()) == v["id"].as_str())
        {
            data.push(render(ctx.emu, ctx.key, s, &expand).await?);
        }
    }
    page["data"] = Value::Array(data);
    Ok(page)
}

pub async fn update(ctx: &mut Ctx<'_>, id: &str, p: &Params) -> ApiResult {
    p.only(&["metadata", "options", "provided_details", "type", "expand"])?;
    let mut s = lifecycle::load(ctx.emu, id).await?;
    if s.status != Status::RequiresInput || s.redaction.is_some() {
        return Err(ApiError::unexpected_state(format!(
            "You can only update VerificationSessions with status `requires_input`. This VerificationSession has status `{}`.",
            s.status.as_str()
        )));
    }
    p.apply_metadata(&mut s.metadata)?;
    if let Some(o) = parse_options(p)? {
        s.options = o;
    }
    if let Some(pd) = parse_provided_details(p)? {
        s.provided_details = pd;
    }
    if let Some(t) = parse_type(p)? {
        s.kind = t;
    }
    ctx.emu
        .store
        .put(Kind::Session, &s.id, s.created, &s)
        .await?;
    render(ctx.emu, ctx.key, &s, &p.expand()?).await
}

pub async fn cancel(ctx: &mut Ctx<'_>, id: &str, p: &Params) -> ApiResult {
    p.only(&["expand"])?;
    let s = lifecycle::cancel(ctx.emu, ctx.w()?, id, &ctx.cause).await?;
    render(ctx.emu, ctx.key, &s, &p.expand()?).await
}

pub async fn redact(ctx: &mut Ctx<'_>, id: &str, p: &Params) -> ApiResult {
    p.only(&["expand"])?;
    let s = lifecycle::redact(ctx.emu, ctx.w()?, id, &ctx.cause).await?;
    render(ctx.emu, ctx.key, &s, &p.expand()?).await
}
