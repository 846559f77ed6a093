//! `GET /console/operators` (admins): who may log in, with their roles; add an operator,
//! disable or enable one. The same as `idverdict operators`, and audited.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use super::audit::Action;
use super::auth::{Layout, Posted, Signed};
use super::format::datetime_ms;
use super::passwords::{check_email, check_new_password, hash_password, normalize_email};
use super::{render, see_other, ConsoleError};
use crate::api::ApiPath;
use crate::clock::now_ms;
use crate::decide::access::{Permission, Role};
use crate::state::AppState;

struct Row {
    id: i64,
    email: String,
    role: &'static str,
    disabled: bool,
    created: String,
    me: bool,
}

#[derive(Template)]
#[template(path = "console/operators.html")]
struct OperatorsPage {
    layout: Layout,
    rows: Vec<Row>,
    roles: Vec<&'static str>,
}

pub async fn page(State(state): State<AppState>, signed: Signed) -> Result<Response, ConsoleError> {
    signed.require(Permission::Administer)?;
    let rows = state
        .store
        .list_operators()
        .await?
        .into_iter()
        .map(|o| Row {
            me: o.id == signed.session.operator.id,
            id: o.id,
            email: o.email,
            role: o.role.as_str(),
            disabled: o.disabled,
            created: datetime_ms(o.created_at_ms),
        })
        .collect();
    render(&OperatorsPage {
        layout: signed.layout("operators"),
        rows,
        roles: Role::ALL.iter().map(|r| r.as_str()).collect(),
    })
}

#[derive(Debug, Deserialize)]
pub struct AddForm {
    email: String,
    role: String,
    password: String,
}

/// `POST /console/operators`: a new operator with a first password (they can be given a new
/// one with `idverdict operators passwd`).
pub async fn add(
    State(state): State<AppState>,
    posted: Posted<AddForm>,
) -> Result<Response, ConsoleError> {
    let Posted { signed, form } = posted;
    signed.require(Permission::Administer)?;
    let email = normalize_email(&form.email);
    check_email(&email).map_err(ConsoleError::bad_request)?;
    let role = Role::parse(&form.role)
        .ok_or_else(|| ConsoleError::bad_request("Choose viewer, reviewer or admin."))?;
    check_new_password(&form.password).map_err(|e| ConsoleError::bad_request(e.to_string()))?;
    let hash = hash_password(&form.password).map_err(|e| {
        tracing::error!(error = %e, "cannot hash a password");
        ConsoleError::internal()
    })?;
    if state
        .store
        .insert_operator(&email, role, &hash, now_ms())
        .await?
        .is_none()
    {
        return Err(ConsoleError::conflict(format!(
            "An operator {email} exists already."
        )));
    }
    signed
        .audit(
            &state,
            Action::OperatorAdd,
            Some(&email),
            Some(role.as_str()),
        )
        .await?;
    Ok(see_other("/console/operators"))
}

#[derive(Debug, Deserialize)]
pub struct AccessForm {
    /// `disable` or `enable`.
    action: String,
}

/// `POST /console/operators/{id}/access`: disable (ends their sessions) or enable.
pub async fn set_access(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    posted: Posted<AccessForm>,
) -> Result<Response, ConsoleError> {
    let Posted { signed, form } = posted;
    signed.require(Permission::Administer)?;
    let disable = match form.action.as_str() {
        "disable" => true,
        "enable" => false,
        _ => return Err(ConsoleError::bad_request("Choose disable or enable.")),
    };
    if disable && id == signed.session.operator.id {
        return Err(ConsoleError::conflict(
            "You cannot disable yourself; ask another admin.",
        ));
    }
    let operators = state.store.list_operators().await?;
    let Some(target) = operators.iter().find(|o| o.id == id) else {
        return Err(ConsoleError::not_found());
    };
    state
        .store
        .set_operator_disabled(&target.email, disable, now_ms())
        .await?;
    let action = if disable {
        Action::OperatorDisable
    } else {
        Action::OperatorEnable
    };
    signed
        .audit(&state, action, Some(&target.email), None)
        .await?;
    Ok(see_other("/console/operators"))
}
