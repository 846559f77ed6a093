//! `/v1/events`: retrieve and list (filters `type` with `*` wildcards,
//! `types[]`, `created`, `delivery_success`), plus the resend that
//! `stripe events resend` performs.

use serde_json::{json, Value};

use super::list::{paginate, LIST_PARAMS};
use super::{ApiResult, Ctx};
use crate::delivery;
use crate::errors::ApiError;
use crate::form::Params;
use crate::model::{glob_match, Endpoint, Event};
use crate::store::Kind;

const OBJECT_NAME: &str = "event";

pub async fn retrieve(ctx: &mut Ctx<'_>, id: &str, p: &Params) -> ApiResult {
    p.only(&["expand"])?;
    let ev = ctx
        .emu
        .store
        .get::<Event>(Kind::Event, id)
        .await?
        .ok_or_else(|| ApiError::no_such(OBJECT_NAME, id))?;
    Ok(ev.render())
}

pub async fn list(ctx: &mut Ctx<'_>, p: &Params) -> ApiResult {
    let mut allowed = LIST_PARAMS.to_vec();
    allowed.extend(["type", "types", "created", "delivery_success"]);
    p.only(&allowed)?;
    let kind = p.str("type")?;
    let kinds = p.str_list("types")?;
    if kind.is_some() && kinds.is_some() {
        return Err(ApiError::invalid_param(
            "types",
            "You may pass either `type` or `types`, but not both.",
        ));
    }
    if let Some(k) = &kinds {
        if k.len() > 20 {
            return Err(ApiError::invalid_param(
                "types",
                "You may pass at most 20 event types in `types`.",
            ));
        }
    }
    let created = p.range("created")?;
    let delivered = p.bool("delivery_success")?;
    let items: Vec<Value> = ctx
        .emu
        .store
        .all::<Event>(Kind::Event)
        .await?
        .into_iter()
        .filter(|e| {
            kind.as_ref().is_none_or(|k| glob_match(k, &e.kind))
                && kinds
                    .as_ref()
                    .is_none_or(|ks| ks.iter().any(|k| k == &e.kind))
                && created.is_none_or(|r| r.contains(e.created))
                && delivered.is_none_or(|d| (e.pending_webhooks == 0) == d)
        })
        .map(|e| e.render())
        .collect();
    paginate(items, p, "/v1/events", OBJECT_NAME)
}

/// `POST /v1/events/{id}/retry` with `webhook_endpoint=we_…`: one extra
/// delivery attempt, independent of the automatic retries.
pub async fn retry(ctx: &mut Ctx<'_>, id: &str, p: &Params) -> ApiResult {
    p.only(&["webhook_endpoint", "expand"])?;
    let endpoint = p.required_str("webhook_endpoint")?;
    let ev = ctx
        .emu
        .store
        .get::<Event>(Kind::Event, id)
        .await?
        .ok_or_else(|| ApiError::no_such(OBJECT_NAME, id))?;
    if ctx
        .emu
        .store
        .get::<Endpoint>(Kind::Endpoint, &endpoint)
        .await?
        .is_none()
    {
        return Err(ApiError::no_such("webhookendpoint", &endpoint).with_param("webhook_endpoint"));
    }
    let delivery_id = delivery::resend(ctx.emu, &ev.id, &endpoint).await?;
    tracing::info!(event = %ev.id, endpoint = %endpoint, delivery_id, "event resend queued");
    let mut v = ev.render();
    v["emulator_resend"] = json!({"delivery_id": delivery_id, "webhook_endpoint": endpoint});
    Ok(v)
}
