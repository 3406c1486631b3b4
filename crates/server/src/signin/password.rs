//! The password page (`/password`) and `POST /auth/password`: changing a password, in a
//! browser or without one.

use crate::i18n::{messages, Messages};
use crate::security::login::LoginOutcome;
use crate::security::password::{change, Change, Refusal};
use crate::security::session::SignedIn;
use crate::security::web::{same_site_path, session_cookie, session_token, ClientAddress};
use crate::{AppError, AppState};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Json};
use chrono::Utc;
use dhp_core::password::ChangeReason;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Deserialize)]
pub struct ApiChange {
    pub(crate) username: String,
    pub(crate) password: String,
    pub(crate) new_password: String,
}

/// `POST /auth/password`: change a password without a browser (a form body, like
/// `/auth/token`). 200 `{"changed": true}`, or 400 naming the field at fault.
pub async fn api_change(
    State(state): State<Arc<AppState>>,
    ClientAddress(address): ClientAddress,
    Form(req): Form<ApiChange>,
) -> Result<Response, AppError> {
    let outcome = change(
        &state,
        Change {
            username: req.username.trim(),
            current: &req.password,
            new: &req.new_password,
            address: &address,
            resource: "/auth/password",
        },
    )
    .await?;
    Ok(match outcome {
        Ok(_) => (
            [(header::CACHE_CONTROL, "no-store")],
            Json(serde_json::json!({ "changed": true })),
        )
            .into_response(),
        Err(refusal) => {
            let status = match refusal {
                Refusal::Login(LoginOutcome::Wrong) => StatusCode::UNAUTHORIZED,
                Refusal::Login(LoginOutcome::Throttled(_)) => StatusCode::TOO_MANY_REQUESTS,
                Refusal::Login(LoginOutcome::Busy) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_REQUEST,
            };
            let (description, field) = refusal.describe(state.config.passwords.history);
            (
                status,
                [(header::CACHE_CONTROL, "no-store")],
                Json(serde_json::json!({
                    "error": "invalid_request",
                    "error_description": description,
                    "field": field,
                })),
            )
                .into_response()
        }
    })
}

#[derive(Template)]
#[template(path = "signin/password.html")]
pub(crate) struct PasswordPage {
    pub(crate) t: &'static Messages,
    /// The header's account (`None` while the change is still owed: no menu).
    pub(crate) user: Option<SignedIn>,
    pub(crate) csrf: String,
    /// Why the change is asked for (a message key), if it is owed.
    pub(crate) reason: Option<&'static str>,
    pub(crate) refused: Option<&'static str>,
    pub(crate) minutes: i64,
    pub(crate) history: usize,
    pub(crate) next: String,
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    #[serde(default, deserialize_with = "crate::i18n::page_lang")]
    pub(crate) lang: Option<String>,
    pub(crate) next: Option<String>,
}

impl PageQuery {
    pub(crate) fn messages(&self) -> &'static Messages {
        messages(self.lang.as_deref().unwrap_or("zh"))
    }

    pub(crate) fn next(&self) -> String {
        self.next
            .as_deref()
            .and_then(same_site_path)
            .filter(|p| !p.starts_with("/password"))
            .unwrap_or_default()
            .to_string()
    }
}

pub(crate) fn reason_key(reason: Option<ChangeReason>) -> Option<&'static str> {
    reason.map(|r| match r {
        ChangeReason::SetByAdministrator => "pw_reason_first",
        ChangeReason::Expired => "pw_reason_expired",
    })
}

pub(crate) fn page(session: &SignedIn, q: &PageQuery, history: usize) -> PasswordPage {
    PasswordPage {
        t: q.messages(),
        user: session.change.is_none().then(|| session.clone()),
        csrf: session.csrf.clone(),
        reason: reason_key(session.change),
        refused: None,
        minutes: 0,
        history,
        next: q.next(),
    }
}

pub(crate) fn to_login(q: &PageQuery) -> Response {
    let lang = q.lang.as_deref().unwrap_or("zh");
    Redirect::to(&format!("/login?lang={lang}&next=/password")).into_response()
}

/// `GET /password`: the form (for a session that owes a change, or any signed-in one).
pub async fn form(
    State(state): State<Arc<AppState>>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let Some(session) = session_token(&headers).and_then(|t| state.sessions.get(&t)) else {
        return Ok(to_login(&q));
    };
    let page = page(&session, &q, state.config.passwords.history);
    Ok(Html(page.render()?).into_response())
}

#[derive(Debug, Deserialize)]
pub struct PageChange {
    pub(crate) current_password: String,
    pub(crate) new_password: String,
    pub(crate) confirm_password: String,
}

/// `POST /password`: change it; on success a fresh session, on to `next` or home.
pub async fn submit(
    State(state): State<Arc<AppState>>,
    Query(q): Query<PageQuery>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    Form(form): Form<PageChange>,
) -> Result<Response, AppError> {
    let Some(session) = session_token(&headers).and_then(|t| state.sessions.get(&t)) else {
        return Ok(to_login(&q));
    };
    let history = state.config.passwords.history;
    let mut view = page(&session, &q, history);
    let outcome = if form.new_password != form.confirm_password {
        Err(Refusal::Mismatch)
    } else {
        change(
            &state,
            Change {
                username: &session.username,
                current: &form.current_password,
                new: &form.new_password,
                address: &address,
                resource: "/password",
            },
        )
        .await?
    };
    match outcome {
        Ok(user) => {
            let lang = q.lang.as_deref().unwrap_or("zh");
            let next = q.next();
            // On to where the sign-in was going, else the role's own start page.
            let to = crate::i18n::with_lang(
                if next.is_empty() || next == "/" {
                    crate::context::start_page(&user.role)
                } else {
                    &next
                },
                lang,
            );
            let token = state.sessions.open(user);
            Ok((
                [(
                    header::SET_COOKIE,
                    session_cookie(Some(&token), state.config.tls),
                )],
                Redirect::to(&to),
            )
                .into_response())
        }
        Err(refusal) => {
            if let Refusal::Login(LoginOutcome::Locked(until)) = &refusal {
                view.minutes = ((*until - Utc::now().naive_utc()).num_seconds() + 59) / 60;
            }
            view.refused = Some(refusal.key());
            let status = match refusal {
                Refusal::Login(LoginOutcome::Wrong) => StatusCode::UNAUTHORIZED,
                Refusal::Login(LoginOutcome::Locked(_)) => StatusCode::FORBIDDEN,
                Refusal::Login(LoginOutcome::Throttled(_)) => StatusCode::TOO_MANY_REQUESTS,
                Refusal::Login(LoginOutcome::Busy) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_REQUEST,
            };
            Ok((status, Html(view.render()?)).into_response())
        }
    }
}
