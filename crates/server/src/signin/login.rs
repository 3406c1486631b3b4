//! `/login` and `/logout`: the portal's sign-in form (through the login guard) and its
//! end.

use crate::context::LangQuery;
use crate::i18n::Messages;
use crate::security::login::{Attempt, LoginOutcome};
use crate::security::session::SignedIn;
use crate::security::web::{same_site_path, session_cookie, session_token, ClientAddress};
use crate::{AppError, AppState};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Template)]
#[template(path = "signin/login.html")]
pub(crate) struct LoginPage {
    pub(crate) t: &'static Messages,
    pub(crate) user: Option<SignedIn>,
    /// Why the last attempt was refused (a message key), if it was.
    pub(crate) refused: Option<&'static str>,
    /// Minutes until a locked account may try again.
    pub(crate) minutes: i64,
    pub(crate) username: String,
    /// Where to go after logging in (a same-site path, or empty).
    pub(crate) next: String,
}

impl LoginPage {
    pub(crate) fn new(q: &LangQuery) -> Self {
        Self {
            t: q.messages(),
            user: None,
            refused: None,
            minutes: 0,
            username: String::new(),
            next: q
                .next
                .as_deref()
                .and_then(same_site_path)
                .unwrap_or_default()
                .to_string(),
        }
    }
}

pub async fn login_form(Query(q): Query<LangQuery>) -> Result<Html<String>, AppError> {
    Ok(Html(LoginPage::new(&q).render()?))
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    pub(crate) username: String,
    pub(crate) password: String,
}

pub async fn login(
    State(state): State<Arc<AppState>>,
    Query(q): Query<LangQuery>,
    ClientAddress(address): ClientAddress,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    let username = form.username.trim();
    let outcome = state
        .login
        .attempt(
            &*state.store,
            Attempt {
                username,
                secret: &form.password,
                systems_only: false,
                address: &address,
                resource: "/login",
                method: "password",
            },
        )
        .await?;
    let mut page = LoginPage::new(&q);
    page.username = username.to_string();
    let (status, refused) = match outcome {
        LoginOutcome::Verified(user) => {
            tracing::info!(username = %user.username, role = %user.role, "login");
            let lang = q.lang.as_deref().unwrap_or("zh");
            let next = q.next.as_deref().and_then(same_site_path);
            let start = crate::context::start_page(&user.role);
            let (token, to) = match crate::security::password::change_needed(&state, &user).await? {
                None => (
                    state.sessions.open(user),
                    // Each role lands on its own start page unless it was going
                    // somewhere.
                    crate::i18n::with_lang(next.unwrap_or(start), lang),
                ),
                // The password first: the session opens only the password page.
                Some(reason) => {
                    let then: String =
                        url::form_urlencoded::byte_serialize(next.unwrap_or(start).as_bytes())
                            .collect();
                    (
                        state.sessions.open_for_change(user, reason),
                        format!("/password?lang={lang}&next={then}"),
                    )
                }
            };
            return Ok((
                [(
                    header::SET_COOKIE,
                    session_cookie(Some(&token), state.config.tls),
                )],
                Redirect::to(&to),
            )
                .into_response());
        }
        LoginOutcome::Wrong => (StatusCode::UNAUTHORIZED, "login_failed"),
        LoginOutcome::Locked(until) => {
            page.minutes = ((until - chrono::Utc::now().naive_utc()).num_seconds() + 59) / 60;
            (StatusCode::FORBIDDEN, "login_locked")
        }
        LoginOutcome::Throttled(_) => (StatusCode::TOO_MANY_REQUESTS, "login_throttled"),
        LoginOutcome::Busy => (StatusCode::SERVICE_UNAVAILABLE, "login_busy"),
    };
    tracing::warn!(username = %username, refused, "login refused");
    page.refused = Some(refused);
    Ok((status, Html(page.render()?)).into_response())
}

pub async fn logout(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(token) = session_token(&headers) {
        state.sessions.close(&token);
    }
    (
        [(header::SET_COOKIE, session_cookie(None, state.config.tls))],
        Redirect::to("/"),
    )
        .into_response()
}
