//! The accounts API (`/api/admin/accounts…`).

use super::*;
use crate::audit::{self, Actor};
use crate::{AppError, AppState};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use dhp_core::access::{AccountAct, Principal, Role};
use dhp_store::StoreError;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

pub(crate) async fn api_caller(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Result<Principal, Response>, StoreError> {
    match crate::context::caller(state, headers).await {
        Some(who) => Ok(Ok(who)),
        None => {
            audit::record(
                &*state.store,
                &Actor::unverified("anonymous"),
                "read",
                "accounts",
                None,
                "denied",
                "no valid bearer token or session",
            )
            .await?;
            Ok(Err(Refused::new(
                StatusCode::UNAUTHORIZED,
                "Authorization",
                "sign in or send a bearer token",
                "acc_denied",
            )
            .json()))
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub(crate) q: Option<String>,
    pub(crate) page: Option<String>,
    #[serde(default, deserialize_with = "crate::i18n::page_lang")]
    pub(crate) lang: Option<String>,
    /// What the last act did (a message key) and for whom, shown above the list.
    pub(crate) done: Option<String>,
    pub(crate) who: Option<String>,
}

impl ListQuery {
    pub(crate) fn page(&self) -> usize {
        self.page
            .as_deref()
            .and_then(|p| p.parse::<usize>().ok())
            .filter(|p| (1..=100_000).contains(p))
            .unwrap_or(1)
    }
}

/// `GET /api/admin/accounts?q=&page=`.
pub async fn api_list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Response, AppError> {
    let who = match api_caller(&state, &headers).await? {
        Ok(w) => w,
        Err(r) => return Ok(r),
    };
    if let Err(r) = permitted(&state, &who, AccountAct::List, "", Role::Manager).await? {
        return Ok(r.json());
    }
    let page = q.page();
    let (accounts, total) = rows(&state, q.q.as_deref().unwrap_or(""), (page - 1) * PAGE).await?;
    audit::record(
        &*state.store,
        &Actor::from(&who),
        "read",
        "accounts",
        None,
        "success",
        &format!("{} of {total} accounts", accounts.len()),
    )
    .await?;
    Ok(
        Json(json!({ "total": total, "page": page, "page_size": PAGE, "accounts": accounts }))
            .into_response(),
    )
}

/// `POST /api/admin/accounts`.
pub async fn api_create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let who = match api_caller(&state, &headers).await? {
        Ok(w) => w,
        Err(r) => return Ok(r),
    };
    let req: CreateRequest = match crate::context::api_body(&body) {
        Ok(r) => r,
        Err(r) => {
            return Ok(Refused::new(
                StatusCode::BAD_REQUEST,
                match r.field.as_deref() {
                    Some("username") => "username",
                    Some("role") => "role",
                    Some("org") => "org",
                    Some("display_name") => "display_name",
                    _ => "body",
                },
                format!(
                    "the body must be {{\"username\", \"role\", \"org\", \"display_name\"}}: {}",
                    r.message
                ),
                "acc_err_other",
            )
            .json())
        }
    };
    Ok(match do_create(&state, &who, req).await? {
        Ok((username, password)) => (
            StatusCode::CREATED,
            [(axum::http::header::CACHE_CONTROL, "no-store")],
            Json(json!({ "username": username, "one_time_password": password, "must_change_password": true })),
        )
            .into_response(),
        Err(r) => r.json(),
    })
}

/// `POST /api/admin/accounts/{username}/password`.
pub async fn api_reset(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(username): Path<String>,
) -> Result<Response, AppError> {
    let who = match api_caller(&state, &headers).await? {
        Ok(w) => w,
        Err(r) => return Ok(r),
    };
    Ok(match do_reset(&state, &who, &username).await? {
        Ok(password) => (
            [(axum::http::header::CACHE_CONTROL, "no-store")],
            Json(json!({ "username": username, "one_time_password": password, "must_change_password": true })),
        )
            .into_response(),
        Err(r) => r.json(),
    })
}

/// `POST /api/admin/accounts/{username}/unlock`.
pub async fn api_unlock(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(username): Path<String>,
) -> Result<Response, AppError> {
    let who = match api_caller(&state, &headers).await? {
        Ok(w) => w,
        Err(r) => return Ok(r),
    };
    Ok(match do_unlock(&state, &who, &username).await? {
        Ok(had) => Json(json!({ "username": username, "was_locked": had })).into_response(),
        Err(r) => r.json(),
    })
}
