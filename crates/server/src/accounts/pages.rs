//! The accounts page (`/admin/accounts`) and its forms.

use super::*;
use crate::audit::{self, Actor};
use crate::context::current_user;
use crate::context::principal_of;
use crate::i18n::{messages, Messages};
use crate::security::session::SignedIn;
use crate::{AppError, AppState};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use dhp_core::access::{may_act_on_account, AccountAct, Principal, Role};
use serde::Deserialize;
use std::sync::Arc;

pub(crate) struct RowView {
    pub(crate) row: AccountRow,
    pub(crate) role_label: String,
    pub(crate) org_name: String,
    pub(crate) may_reset: bool,
    pub(crate) may_unlock: bool,
}

#[derive(Template)]
#[template(path = "accounts/accounts.html")]
pub(crate) struct AccountsPage {
    pub(crate) t: &'static Messages,
    pub(crate) user: Option<SignedIn>,
    pub(crate) rows: Vec<RowView>,
    pub(crate) q: String,
    pub(crate) page: usize,
    pub(crate) pages: usize,
    pub(crate) total: usize,
    pub(crate) may_create: bool,
    /// Staff roles and organisations for the create form: (value, label).
    pub(crate) roles: Vec<(String, String)>,
    pub(crate) orgs: Vec<(String, String)>,
    /// What the last act did, shown once: message key, account, one-time password.
    pub(crate) done: Option<(String, String)>,
    pub(crate) one_time: Option<String>,
    pub(crate) refused: Option<String>,
}

pub(crate) async fn page_user(
    state: &AppState,
    headers: &HeaderMap,
    t: &Messages,
) -> Result<(SignedIn, Principal), Response> {
    let Some(user) = current_user(state, headers) else {
        return Err(Redirect::to(&format!(
            "/login?lang={}&next=/admin/accounts",
            t.get("lang")
        ))
        .into_response());
    };
    match principal_of(&user) {
        Some(who) => Ok((user, who)),
        None => Err((StatusCode::FORBIDDEN, Html(t.get("acc_denied").to_string())).into_response()),
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn render(
    state: &AppState,
    t: &'static Messages,
    user: SignedIn,
    who: &Principal,
    q: &ListQuery,
    one_time: Option<String>,
    refused: Option<String>,
    status: StatusCode,
) -> Result<Response, AppError> {
    if let Err(r) = permitted(state, who, AccountAct::List, "", Role::Manager).await? {
        return Ok((r.status, Html(t.get(r.key).to_string())).into_response());
    }
    let page = q.page();
    let query = q.q.clone().unwrap_or_default();
    let (rows, total) = rows(state, &query, (page - 1) * PAGE).await?;
    audit::record(
        &*state.store,
        &Actor::from(who),
        "read",
        "accounts",
        None,
        "success",
        &format!("{} of {total} accounts (page {page})", rows.len()),
    )
    .await?;
    let orgs = state.orgs().await?;
    let zh = t.get("lang") == "zh";
    let org_name = |code: &Option<String>| {
        code.as_ref()
            .and_then(|c| orgs.values().find(|o| &o.code == c))
            .map(|o| {
                if zh {
                    o.name_zh.clone()
                } else {
                    o.name_en.clone()
                }
            })
            .unwrap_or_default()
    };
    let views = rows
        .into_iter()
        .map(|row| {
            let role = Role::parse(&row.role).unwrap_or(Role::Resident);
            RowView {
                role_label: t.role(&row.role).to_string(),
                org_name: org_name(&row.org),
                may_reset: may_act_on_account(who, AccountAct::ResetPassword, &row.username, role)
                    .allowed(),
                may_unlock: row.locked_until.is_some()
                    && may_act_on_account(who, AccountAct::Unlock, &row.username, role).allowed(),
                row,
            }
        })
        .collect();
    let mut org_list: Vec<(String, String)> = orgs
        .values()
        .filter(|o| {
            !matches!(
                o.kind,
                dhp_core::OrgKind::City
                    | dhp_core::OrgKind::Street
                    | dhp_core::OrgKind::Town
                    | dhp_core::OrgKind::District
            )
        })
        .map(|o| {
            (
                o.code.clone(),
                if zh {
                    o.name_zh.clone()
                } else {
                    o.name_en.clone()
                },
            )
        })
        .collect();
    org_list.sort();
    let view = AccountsPage {
        t,
        may_create: may_act_on_account(who, AccountAct::Create, "", Role::FamilyDoctor).allowed(),
        user: Some(user),
        rows: views,
        q: query,
        page,
        pages: total.div_ceil(PAGE).max(1),
        total,
        roles: Role::ALL
            .iter()
            .filter(|r| r.is_staff())
            .map(|r| (r.as_str().to_string(), t.role(r.as_str()).to_string()))
            .collect(),
        orgs: org_list,
        done: q.done.clone().zip(q.who.clone()),
        one_time,
        refused,
    };
    Ok((status, Html(view.render()?)).into_response())
}

/// `GET /admin/accounts?q=&page=`: the accounts, with the acts the administrator may do.
pub async fn page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Response, AppError> {
    let t = messages(q.lang.as_deref().unwrap_or("zh"));
    let (user, who) = match page_user(&state, &headers, t).await {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    render(&state, t, user, &who, &q, None, None, StatusCode::OK).await
}

#[derive(Debug, Deserialize)]
pub struct CreateForm {
    pub(crate) username: String,
    pub(crate) role: String,
    pub(crate) org: Option<String>,
    pub(crate) display_name: Option<String>,
}

/// `POST /admin/accounts`: make an account; the page shows its one-time password once.
pub async fn form_create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
    Form(f): Form<CreateForm>,
) -> Result<Response, AppError> {
    let t = messages(q.lang.as_deref().unwrap_or("zh"));
    let (user, who) = match page_user(&state, &headers, t).await {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let req = CreateRequest {
        username: f.username,
        role: f.role,
        org: f.org,
        display_name: f.display_name,
    };
    let q = ListQuery {
        q: None,
        page: None,
        ..q
    };
    let done = do_create(&state, &who, req)
        .await?
        .map(|(username, password)| Done {
            key: "acc_made",
            username,
            password: Some(password),
            status: StatusCode::CREATED,
        });
    answer(&state, t, user, &who, q, done).await
}

/// `POST /admin/accounts/{username}/password`.
pub async fn form_reset(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
    Path(username): Path<String>,
) -> Result<Response, AppError> {
    let t = messages(q.lang.as_deref().unwrap_or("zh"));
    let (user, who) = match page_user(&state, &headers, t).await {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let done = do_reset(&state, &who, &username)
        .await?
        .map(|password| Done {
            key: "acc_reset_done",
            username,
            password: Some(password),
            status: StatusCode::OK,
        });
    answer(&state, t, user, &who, q, done).await
}

/// `POST /admin/accounts/{username}/unlock`.
pub async fn form_unlock(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
    Path(username): Path<String>,
) -> Result<Response, AppError> {
    let t = messages(q.lang.as_deref().unwrap_or("zh"));
    let (user, who) = match page_user(&state, &headers, t).await {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let done = do_unlock(&state, &who, &username).await?.map(|_| Done {
        key: "acc_unlocked",
        username,
        password: None,
        status: StatusCode::OK,
    });
    answer(&state, t, user, &who, q, done).await
}

/// What a form's act came to: the message key of the page, the account, the one-time
/// password to show once, and the status.
pub(crate) struct Done {
    key: &'static str,
    username: String,
    password: Option<String>,
    status: StatusCode,
}

/// The accounts page answering a form: what was done, or why it was refused.
async fn answer(
    state: &AppState,
    t: &'static Messages,
    user: SignedIn,
    who: &Principal,
    q: ListQuery,
    done: Result<Done, Refused>,
) -> Result<Response, AppError> {
    match done {
        Ok(d) => {
            let q = ListQuery {
                done: Some(d.key.into()),
                who: Some(d.username),
                ..q
            };
            render(state, t, user, who, &q, d.password, None, d.status).await
        }
        Err(r) => render(state, t, user, who, &q, None, Some(r.key.into()), r.status).await,
    }
}
