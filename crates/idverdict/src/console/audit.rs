//! The audit log: every console action (login, failed login, logout, claim, release, review,
//! note, redelivery, operator changes) with who, when, the target and the reason. Appended by
//! [`record`] only — nothing changes or deletes an entry — and shown to admins, newest first;
//! `idverdict audit export` prints it as JSON lines.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::auth::{Client, Layout, Signed};
use super::format::datetime_ms;
use super::{case_path, render, ConsoleError};
use crate::clock::now_ms;
use crate::decide::access::Permission;
use crate::state::AppState;
use crate::store::{AuditRow, NewAudit};

/// What an operator did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Login,
    LoginFailed,
    Logout,
    Claim,
    Release,
    Review(crate::decide::ReviewAction),
    Note,
    Redeliver,
    TargetEnable,
    OperatorAdd,
    OperatorDisable,
    OperatorEnable,
    OperatorPassword,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        use crate::decide::ReviewAction as R;
        match self {
            Action::Login => "login",
            Action::LoginFailed => "login_failed",
            Action::Logout => "logout",
            Action::Claim => "claim",
            Action::Release => "release",
            Action::Review(R::Approve) => "review.approve",
            Action::Review(R::Reject) => "review.reject",
            Action::Review(R::AllowRetry) => "review.allow_retry",
            Action::Note => "note",
            Action::Redeliver => "redeliver",
            Action::TargetEnable => "target.enable",
            Action::OperatorAdd => "operator.add",
            Action::OperatorDisable => "operator.disable",
            Action::OperatorEnable => "operator.enable",
            Action::OperatorPassword => "operator.password",
        }
    }
}

/// Append one entry.
pub async fn record(
    state: &AppState,
    operator: Option<&str>,
    action: Action,
    target: Option<&str>,
    reason: Option<&str>,
    client: &Client,
) -> Result<(), ConsoleError> {
    state
        .store
        .append_audit(
            &NewAudit {
                operator,
                action: action.as_str(),
                target,
                reason,
                client_addr: Some(&client.addr),
            },
            now_ms(),
        )
        .await?;
    Ok(())
}

/// Entries per page.
const PAGE: i64 = 100;

struct EntryView {
    seq: i64,
    at: String,
    operator: String,
    action: String,
    target: String,
    target_link: Option<String>,
    reason: String,
    client: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    layout: Layout,
    entries: Vec<EntryView>,
    target: String,
    older: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    before: Option<i64>,
    target: Option<String>,
}

fn view(row: AuditRow) -> EntryView {
    let is_user = row.action == "claim"
        || row.action == "release"
        || row.action == "note"
        || row.action.starts_with("review.");
    let target_link = row
        .target
        .as_deref()
        .filter(|_| is_user)
        .map(case_path)
        .or_else(|| {
            row.target
                .as_deref()
                .filter(|_| row.action == "redeliver")
                .map(|id| format!("/console/reactions/{}", super::path_segment(id)))
        });
    EntryView {
        seq: row.seq,
        at: datetime_ms(row.at_ms),
        operator: row.operator.unwrap_or_else(|| "—".into()),
        action: row.action,
        target: row.target.unwrap_or_default(),
        target_link,
        reason: row.reason.unwrap_or_default(),
        client: row.client_addr.unwrap_or_default(),
    }
}

/// `GET /console/audit[?target=…&before=seq]` (admins).
pub async fn page(
    State(state): State<AppState>,
    signed: Signed,
    Query(q): Query<AuditQuery>,
) -> Result<Response, ConsoleError> {
    signed.require(Permission::Administer)?;
    let target = q.target.filter(|t| !t.is_empty());
    let rows = state
        .store
        .audit_page(q.before, target.as_deref(), PAGE + 1)
        .await?;
    let more = rows.len() as i64 > PAGE;
    let entries: Vec<EntryView> = rows.into_iter().take(PAGE as usize).map(view).collect();
    let older = match entries.last() {
        Some(last) if more => {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("before", &last.seq.to_string());
            if let Some(t) = &target {
                query.append_pair("target", t);
            }
            Some(format!("/console/audit?{}", query.finish()))
        }
        _ => None,
    };
    render(&AuditPage {
        layout: signed.layout("audit"),
        entries,
        target: target.unwrap_or_default(),
        older,
    })
}
