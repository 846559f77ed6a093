//! `GET /console/users`: users by `client_reference_id` prefix and by state, a page at a time
//! (the same listing as `GET /v1/users`).

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::auth::{Layout, Signed};
use super::format::datetime_ms;
use super::{case_path, options, render, ConsoleError, Opt};
use crate::decide::UserState;
use crate::state::AppState;
use crate::store::UserFilter;

const PAGE: i64 = 50;

struct Row {
    user_ref: String,
    link: String,
    state: String,
    since: String,
    attempts: String,
    code: String,
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage {
    layout: Layout,
    q: String,
    states: Vec<Opt>,
    rows: Vec<Row>,
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct UsersQuery {
    q: Option<String>,
    state: Option<String>,
    after: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<UsersQuery>,
) -> Result<Response, ConsoleError> {
    let q = query.q.unwrap_or_default().trim().to_string();
    let wanted = match query.state.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            UserState::parse(s)
                .ok_or_else(|| ConsoleError::bad_request(format!("`{s}` is not a user state.")))?,
        ),
    };
    let mut users = state
        .store
        .list_users(&UserFilter {
            state: wanted,
            prefix: Some(q.as_str()).filter(|p| !p.is_empty()),
            starting_after: query.after.as_deref().filter(|a| !a.is_empty()),
            limit: PAGE + 1,
        })
        .await?;
    let more = users.len() as i64 > PAGE;
    users.truncate(PAGE as usize);
    let next = match users.last() {
        Some(last) if more => {
            let mut s = url::form_urlencoded::Serializer::new(String::new());
            s.append_pair("q", &q);
            s.append_pair("state", wanted.map(UserState::as_str).unwrap_or(""));
            s.append_pair("after", &last.user_ref);
            Some(format!("/console/users?{}", s.finish()))
        }
        _ => None,
    };
    let rows = users
        .iter()
        .map(|u| Row {
            user_ref: u.user_ref.clone(),
            link: case_path(&u.user_ref),
            state: u.view.state.as_str().to_string(),
            since: datetime_ms(u.state_since_ms),
            attempts: format!("{} / {}", u.view.attempts_used, u.view.attempts_allowed),
            code: u
                .view
                .error_code
                .as_ref()
                .map(|c| c.as_str().to_string())
                .unwrap_or_default(),
        })
        .collect();
    render(&UsersPage {
        layout: signed.layout("users"),
        q,
        states: options(
            UserState::ALL.iter().map(|s| s.as_str()),
            wanted.map(UserState::as_str).unwrap_or(""),
        ),
        rows,
        next,
    })
}
