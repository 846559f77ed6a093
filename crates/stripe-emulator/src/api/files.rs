//! `/v1/files` (retrieve, list, contents) and `/v1/file_links` (create, retrieve, list,
//! update), plus the public URL a FileLink serves.
//!
//! Stripe's rules for the images a verification collects: reading them needs a restricted key
//! (`rk_…`), and a FileLink to one must expire within 30 seconds. After redaction the files
//! stay, but their contents are gone.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use subtle::ConstantTimeEq;

use super::list::{paginate, LIST_PARAMS};
use super::{authenticate, error_response, ApiResult, Ctx, KeyKind};
use crate::clock::now_s;
use crate::errors::ApiError;
use crate::files::{FileLinkRecord, FileRecord, IDENTITY_LINK_MAX_SECONDS, IMAGE_CONTENT_TYPE};
use crate::form::Params;
use crate::ids::{new_id, token};
use crate::store::Kind;
use crate::Emulator;

const FILE_OBJECT: &str = "file";
const LINK_OBJECT: &str = "file_link";

async fn load_file(emu: &Emulator, id: &str) -> Result<FileRecord, ApiError> {
    emu.store
        .get::<FileRecord>(Kind::File, id)
        .await?
        .ok_or_else(|| ApiError::no_such(FILE_OBJECT, id))
}

async fn load_link(emu: &Emulator, id: &str) -> Result<FileLinkRecord, ApiError> {
    emu.store
        .get::<FileLinkRecord>(Kind::FileLink, id)
        .await?
        .ok_or_else(|| ApiError::no_such(LINK_OBJECT, id))
}

fn images_need_restricted_key(action: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "invalid_request_error",
        format!("{action} an identity document or selfie image requires a restricted API key (rk_…) with the Identity permission \"Access recent sensitive verification results\" and Files Write, not a secret key. See https://docs.stripe.com/identity/access-verification-results."),
    )
}

fn contents_deleted(file: &str) -> String {
    format!("The contents of file {file} were deleted when its VerificationSession was redacted.")
}

pub async fn retrieve(ctx: &mut Ctx<'_>, id: &str, p: &Params) -> ApiResult {
    p.only(&["expand"])?;
    if let Some(e) = p.expand()?.first() {
        return Err(ApiError::invalid_param(
            "expand",
            format!("This property cannot be expanded ({e})."),
        ));
    }
    Ok(load_file(ctx.emu, id).await?.render(&ctx.emu.public_base))
}

pub async fn list(ctx: &mut Ctx<'_>, p: &Params) -> ApiResult {
    let mut allowed = LIST_PARAMS.to_vec();
    allowed.extend(["purpose", "created"]);
    p.only(&allowed)?;
    let purpose = p.str("purpose")?;
    let created = p.range("created")?;
    let items: Vec<Value> = ctx
        .emu
        .store
        .all::<FileRecord>(Kind::File)
        .await?
        .into_iter()
        .filter(|f| {
            purpose.as_ref().is_none_or(|want| &f.purpose == want)
                && created.is_none_or(|r| r.contains(f.created))
        })
        .map(|f| f.render(&ctx.emu.public_base))
        .collect();
    paginate(items, p, "/v1/files", FILE_OBJECT)
}

/// Renders a link, with `expand[]=file`.
async fn render_link(emu: &Emulator, link: &FileLinkRecord, expand: &[String]) -> ApiResult {
    let mut o = link.render(&emu.public_base, now_s());
    for e in expand {
        if e == "file" {
            o["file"] = load_file(emu, &link.file).await?.render(&emu.public_base);
        } else {
            return Err(ApiError::invalid_param(
                "expand",
                format!("This property cannot be expanded ({e})."),
            ));
        }
    }
    Ok(o)
}

/// Checks a link's expiry against Stripe's rules for the file: in the future, and for
/// identity images within 30 seconds.
fn check_expiry(file: &FileRecord, expires_at: Option<i64>, now: i64) -> Result<(), ApiError> {
    let too_long = || {
        ApiError::invalid_param(
            "expires_at",
            format!("FileLinks for identity document and selfie files must expire within {IDENTITY_LINK_MAX_SECONDS} seconds: set expires_at to at most {IDENTITY_LINK_MAX_SECONDS} seconds from now."),
        )
    };
    match expires_at {
        Some(t) if t <= now => Err(ApiError::invalid_param(
            "expires_at",
            format!(
                "Invalid expires_at: must be a timestamp in the future (got {t}, now is {now})."
            ),
        )),
        Some(t) if file.is_identity_image() && t - now > IDENTITY_LINK_MAX_SECONDS => {
            Err(too_long())
        }
        None if file.is_identity_image() => Err(too_long()),
        _ => Ok(()),
    }
}

pub async fn create_link(ctx: &mut Ctx<'_>, p: &Params) -> ApiResult {
    p.only(&["file", "expires_at", "metadata", "expand"])?;
    let file_id = p.required_str("file")?;
    let expires_at = p.int("expires_at")?;
    let file = load_file(ctx.emu, &file_id)
        .await
        .map_err(|e| e.with_param("file"))?;
    if file.is_identity_image() && ctx.key != KeyKind::Restricted {
        return Err(images_need_restricted_key("Creating a FileLink to"));
    }
    let now = now_s();
    check_expiry(&file, expires_at, now)?;
    if ctx.emu.store.file_content(&file.id).await?.is_none() {
        return Err(ApiError::invalid_param("file", contents_deleted(&file.id)));
    }
    let mut metadata = BTreeMap::new();
    p.apply_metadata(&mut metadata)?;
    let link = FileLinkRecord {
        id: new_id("link"),
        created: now,
        expires_at,
        file: file.id.clone(),
        metadata,
        token: token(),
    };
    ctx.emu
        .store
        .put(Kind::FileLink, &link.id, link.created, &link)
        .await?;
    render_link(ctx.emu, &link, &p.expand()?).await
}

pub async fn retrieve_link(ctx: &mut Ctx<'_>, id: &str, p: &Params) -> ApiResult {
    p.only(&["expand"])?;
    let link = load_link(ctx.emu, id).await?;
    render_link(ctx.emu, &link, &p.expand()?).await
}

/// `expires_at`: `now` ends the link at once, a timestamp moves its end, the empty string
/// removes it (not allowed for identity images); `metadata` as everywhere.
pub async fn update_link(ctx: &mut Ctx<'_>, id: &str, p: &Params) -> ApiResult {
    p.only(&["expires_at", "metadata", "expand"])?;
    let mut link = load_link(ctx.emu, id).await?;
    let now = now_s();
    if let Some(raw) = p.str("expires_at")? {
        let file = load_file(ctx.emu, &link.file).await?;
        if link.expired(now) {
            return Err(ApiError::invalid_param(
                "expires_at",
                "This FileLink has already expired; its expiry can no longer be changed.",
            ));
        }
        link.expires_at = match raw.as_str() {
            "now" => Some(now),
            "" => {
                check_expiry(&file, None, now)?;
                None
            }
            _ => {
                let t = p.int("expires_at")?;
                check_expiry(&file, t, now)?;
                t
            }
        };
    }
    p.apply_metadata(&mut link.metadata)?;
    ctx.emu
        .store
        .put(Kind::FileLink, &link.id, link.created, &link)
        .await?;
    render_link(ctx.emu, &link, &p.expand()?).await
}

pub async fn list_links(ctx: &mut Ctx<'_>, p: &Params) -> ApiResult {
    let mut allowed = LIST_PARAMS.to_vec();
    allowed.extend(["file", "expired", "created"]);
    p.only(&allowed)?;
    let file = p.str("file")?;
    let expired = p.bool("expired")?;
    let created = p.range("created")?;
    let now = now_s();
    let items: Vec<Value> = ctx
        .emu
        .store
        .all::<FileLinkRecord>(Kind::FileLink)
        .await?
        .into_iter()
        .filter(|l| {
            file.as_ref().is_none_or(|f| &l.file == f)
                && expired.is_none_or(|e| l.expired(now) == e)
                && created.is_none_or(|r| r.contains(l.created))
        })
        .map(|l| l.render(&ctx.emu.public_base, now))
        .collect();
    paginate(items, p, "/v1/file_links", LINK_OBJECT)
}

/// The image itself. Served with headers that keep it from running anything or being cached:
/// it is personal data.
fn image(bytes: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, IMAGE_CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_SECURITY_POLICY, "default-src 'none'"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        bytes,
    )
        .into_response()
}

/// `GET /v1/files/{id}/contents`: the file's bytes, for a key allowed to read them.
pub async fn contents(
    State(emu): State<Arc<Emulator>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let run = async {
        let key = authenticate(&headers)?;
        let file = load_file(&emu, &id).await?;
        if file.is_identity_image() && key != KeyKind::Restricted {
            return Err(images_need_restricted_key("Downloading"));
        }
        emu.store.file_content(&file.id).await?.ok_or_else(|| {
            ApiError::new(
                StatusCode::GONE,
                "invalid_request_error",
                contents_deleted(&file.id),
            )
        })
    };
    match run.await {
        Ok(bytes) => image(bytes),
        Err(e) => error_response(&e),
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response()
}

/// `GET /files/links/{id}/{token}`: what a FileLink's `url` serves, without authentication,
/// until the link expires (410 afterwards, and once redaction deleted the contents).
pub async fn serve_link(
    State(emu): State<Arc<Emulator>>,
    Path((id, presented)): Path<(String, String)>,
) -> Response {
    let not_found = || plain(StatusCode::NOT_FOUND, "No such file link.\n");
    let link = match emu.store.get::<FileLinkRecord>(Kind::FileLink, &id).await {
        Ok(Some(l)) => l,
        Ok(None) => return not_found(),
        Err(e) => return error_response(&ApiError::from(e)),
    };
    if !bool::from(link.token.as_bytes().ct_eq(presented.as_bytes())) {
        return not_found();
    }
    if link.expired(now_s()) {
        return plain(StatusCode::GONE, "This file link has expired.\n");
    }
    match emu.store.file_content(&link.file).await {
        Ok(Some(bytes)) => image(bytes),
        Ok(None) => plain(
            StatusCode::GONE,
            "The contents of this file were deleted when its verification session was redacted.\n",
        ),
        Err(e) => error_response(&ApiError::from(e)),
    }
}
