//! `/v1/webhook_endpoints`: create (the only response carrying `secret`),
//! retrieve, list, update (`disabled` toggles the status), delete.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::list::{paginate, LIST_PARAMS};
use super::{ApiResult, Ctx};
use crate::clock::now_s;
use crate::errors::ApiError;
use crate::form::Params;
use crate::ids::{new_id, webhook_secret};
use crate::model::Endpoint;
use crate::store::Kind;

const OBJECT_NAME: &str = "webhookendpoint";
/// Stripe's limit on endpoints per account.
const MAX_ENDPOINTS: usize = 16;

fn parse_url(p: &Params, required: bool) -> Result<Option<String>, ApiError> {
    let raw = if required {
        Some(p.required_str("url")?)
    } else {
        p.str("url")?
    };
    let Some(raw) = raw else { return Ok(None) };
    match url::Url::parse(&raw) {
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => {
            Ok(Some(raw))
        }
        _ => Err(ApiError::invalid_param(
            "url",
            format!(
                "Invalid URL: {raw}. URLs must begin with http:// or https:// and name a host."
            ),
        )),
    }
}

fn parse_events(p: &Params, required: bool) -> Result<Option<Vec<String>>, ApiError> {
    match p.str_list("enabled_events")? {
        None if required => Err(ApiError::missing_param("enabled_events")),
        None => Ok(None),
        Some(v) if v.is_empty() || v.iter().any(|e| e.trim().is_empty()) => {
            Err(ApiError::invalid_param(
                "enabled_events",
                "enabled_events must name at least one event type, or `*`.",
            ))
        }
        Some(v) => Ok(Some(v)),
    }
}

async fn load(ctx: &Ctx<'_>, id: &str) -> Result<Endpoint, ApiError> {
    ctx.emu
        .store
        .get::<Endpoint>(Kind::Endpoint, id)
        .await?
        .ok_or_else(|| ApiError::no_such(OBJECT_NAME, id))
}

pub async fn create(ctx: &mut Ctx<'_>, p: &Params) -> ApiResult {
    p.only(&[
        "url",
        "enabled_events",
        "description",
        "metadata",
        "api_version",
        "connect",
        "expand",
    ])?;
    let url = parse_url(p, true)?.unwrap_or_default();
    let enabled_events = parse_events(p, true)?.unwrap_or_default();
    p.bool("connect")?;
    if ctx.emu.store.all::<Value>(Kind::Endpoint).await?.len() >= MAX_ENDPOINTS {
        return Err(ApiError::invalid_request(format!(
            "You have reached the maximum of {MAX_ENDPOINTS} test webhook endpoints."
        )));
    }
    let mut metadata = BTreeMap::new();
    p.apply_metadata(&mut metadata)?;
    let ep = Endpoint {
        id: new_id("we"),
        created: now_s(),
        url,
        enabled_events,
        description: p.nullable_str("description")?.flatten(),
        metadata,
        api_version: p.nullable_str("api_version")?.flatten(),
        disabled: false,
        secret: webhook_secret(),
        previous_secrets: Vec::new(),
        failing_since_ms: None,
    };
    ctx.emu
        .store
        .put(Kind::Endpoint, &ep.id, ep.created, &ep)
        .await?;
    tracing::info!(endpoint = %ep.id, "webhook endpoint created");
    Ok(ep.render(true))
}

pub async fn retrieve(ctx: &mut Ctx<'_>, id: &str, p: &Params) -> ApiResult {
    p.only(&["expand"])?;
    Ok(load(ctx, id).await?.render(false))
}

pub async fn list(ctx: &mut Ctx<'_>, p: &Params) -> ApiResult {
    p.only(LIST_PARAMS)?;
    let items: Vec<Value> = ctx
        .emu
        .store
        .all::<Endpoint>(Kind::Endpoint)
        .await?
        .iter()
        .map(|e| e.render(false))
        .collect();
    paginate(items, p, "/v1/webhook_endpoints", OBJECT_NAME)
}

pub async fn update(ctx: &mut Ctx<'_>, id: &str, p: &Params) -> ApiResult {
    p.only(&[
        "url",
        "enabled_events",
        "description",
        "metadata",
        "disabled",
        "expand",
    ])?;
    let mut ep = load(ctx, id).await?;
    if let Some(u) = parse_url(p, false)? {
        ep.url = u;
    }
    if let Some(ev) = parse_events(p, false)? {
        ep.enabled_events = ev;
    }
    if let Some(d) = p.nullable_str("description")? {
        ep.description = d;
    }
    p.apply_metadata(&mut ep.metadata)?;
    if let Some(disabled) = p.bool("disabled")? {
        if ep.disabled && !disabled {
            // Re-enabling starts a fresh failure streak.
            ep.failing_since_ms = None;
        }
        ep.disabled = disabled;
    }
    ctx.emu
        .store
        .put(Kind::Endpoint, &ep.id, ep.created, &ep)
        .await?;
    Ok(ep.render(false))
}

pub async fn delete(ctx: &mut Ctx<'_>, id: &str) -> ApiResult {
    let ep = load(ctx, id).await?;
    ctx.emu.store.delete(Kind::Endpoint, &ep.id).await?;
    Ok(json!({"id": ep.id, "object": "webhook_endpoint", "deleted": true}))
}
