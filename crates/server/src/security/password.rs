//! The password life cycle at login (GB/T 22239-2019 level 3, 8.1.4.1: passwords have
//! complexity requirements and are changed periodically): a password set by an
//! administrator, or older than the policy allows, must be changed before the account
//! can do anything else; a new password passes the complexity rules and is none of the
//! account's last few.
//!
//! - A person signing in at `/login` gets a session that opens only `/password` until
//!   the change is made ([`gate`] sends every other page there).
//! - An API client gets no token for such an account; `POST /auth/password`
//!   (`username`, `password`, `new_password`) changes it.
//! - Every change and every refused change is audited (never the passwords).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Json};
use chrono::Utc;
use dhp_core::password::{self, ChangeReason, PasswordError};
use dhp_store::{StoreError, User};
use serde::Deserialize;

use crate::audit::{self, Actor};
use crate::i18n::{messages, Messages};
use crate::security::login::{Attempt, LoginOutcome};
use crate::security::session::SignedIn;
use crate::security::web::{same_site_path, session_cookie, session_token, ClientAddress};
use crate::{AppError, AppState};

/// Whether `user` must change the password before acting: integrating systems'
/// secrets are machines' and do not expire. A password with no date on record counts
/// as set now.
pub async fn change_needed(
    state: &AppState,
    user: &User,
) -> Result<Option<ChangeReason>, StoreError> {
    if user.role == "system" {
        return Ok(None);
    }
    let now = Utc::now().naive_utc();
    let st = state.store.password_state(&user.username, 0).await?;
    if st.changed_at.is_none() {
        state
            .store
            .require_password_change(&user.username, st.must_change, Some(now))
            .await?;
    }
    Ok(password::change_needed(
        &state.config.passwords,
        st.must_change,
        st.changed_at,
        now,
    ))
}

/// Why a change was refused.
#[derive(Debug)]
pub enum Refusal {
    /// The current password did not verify (or the account is locked, throttled, busy).
    Login(LoginOutcome),
    /// An integrating system's secret is set with `dhp client add`.
    Client,
    Policy(PasswordError),
    /// The new password is the current one or one of the last few.
    Reused,
    /// The two new passwords typed differ.
    Mismatch,
}

impl Refusal {
    /// The message key of the refusal on the page.
    fn key(&self) -> &'static str {
        match self {
            Refusal::Login(LoginOutcome::Locked(_)) => "login_locked",
            Refusal::Login(LoginOutcome::Throttled(_)) => "login_throttled",
            Refusal::Login(LoginOutcome::Busy) => "login_busy",
            Refusal::Login(_) => "pw_wrong_current",
            Refusal::Client => "pw_client",
            Refusal::Policy(PasswordError::TooShort) => "pw_too_short",
            Refusal::Policy(PasswordError::TooSimple) => "pw_too_simple",
            Refusal::Policy(PasswordError::ContainsUsername) => "pw_contains_username",
            Refusal::Policy(PasswordError::Common) => "pw_common",
            Refusal::Reused => "pw_reused",
            Refusal::Mismatch => "pw_mismatch",
        }
    }

    /// The refusal in words for an API client, and the field at fault.
    fn describe(&self, history: usize) -> (String, &'static str) {
        match self {
            Refusal::Login(LoginOutcome::Locked(until)) => (
                format!("too many failed logins: the account is locked until {until} UTC"),
                "password",
            ),
            Refusal::Login(LoginOutcome::Throttled(_)) => (
                "too many failed logins from this address: try again later".into(),
                "password",
            ),
            Refusal::Login(LoginOutcome::Busy) => (
                "too many logins at once: try again in a moment".into(),
                "password",
            ),
            Refusal::Login(_) => ("wrong username or password".into(), "password"),
            Refusal::Client => (
                "an integrating system's secret is set with dhp client add".into(),
                "username",
            ),
            Refusal::Policy(e) => (format!("new_password: {e}"), "new_password"),
            Refusal::Reused => (
                format!("new_password: the new password must differ from the current one and the last {history}"),
                "new_password",
            ),
            Refusal::Mismatch => (
                "the two new passwords differ".into(),
                "confirm_password",
            ),
        }
    }
}

/// One request to change a password.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    pub username: &'a str,
    pub current: &'a str,
    pub new: &'a str,
    pub address: &'a str,
    /// `/password` or `/auth/password`.
    pub resource: &'a str,
}

/// Change a password: the current one is checked like a login (it counts toward the
/// lockout), the new one against the rules and the account's last passwords. Audited
/// either way; on success every session of the account ends.
pub async fn change(state: &AppState, c: Change<'_>) -> Result<Result<User, Refusal>, StoreError> {
    let outcome = state
        .login
        .attempt(
            &*state.store,
            Attempt {
                username: c.username,
                secret: c.current,
                systems_only: false,
                address: c.address,
                resource: c.resource,
                method: "password change",
            },
        )
        .await?;
    let user = match outcome {
        LoginOutcome::Verified(user) => user,
        other => return Ok(Err(Refusal::Login(other))),
    };
    let policy = state.config.passwords;
    let refused = if user.role == "system" {
        Some(Refusal::Client)
    } else if let Err(e) = password::check(&user.username, c.new) {
        Some(Refusal::Policy(e))
    } else if c.new == c.current {
        Some(Refusal::Reused)
    } else {
        let st = state
            .store
            .password_state(&user.username, policy.history)
            .await?;
        state
            .login
            .matches_any(c.new, &st.previous)
            .await
            .then_some(Refusal::Reused)
    };
    let actor = Actor::from(&user);
    let resource = format!("User/{}", user.username);
    if let Some(refusal) = refused {
        let (why, _) = refusal.describe(policy.history);
        audit::record(
            &*state.store,
            &actor,
            "password",
            &resource,
            None,
            "refused",
            &format!("{why}; from {}", c.address),
        )
        .await?;
        return Ok(Err(refusal));
    }
    let hash = state.login.hash(c.new).await;
    state
        .store
        .set_password(&user.username, &hash, false, Utc::now().naive_utc())
        .await?;
    state.sessions.close_user(&user.username);
    audit::record(
        &*state.store,
        &actor,
        "password",
        &resource,
        None,
        "success",
        &format!("password changed; from {}", c.address),
    )
    .await?;
    Ok(Ok(user))
}

#[derive(Debug, Deserialize)]
pub struct ApiChange {
    username: String,
    password: String,
    new_password: String,
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
#[template(path = "password.html")]
struct PasswordPage {
    t: &'static Messages,
    /// The header's account (`None` while the change is still owed: no menu).
    user: Option<SignedIn>,
    csrf: String,
    /// Why the change is asked for (a message key), if it is owed.
    reason: Option<&'static str>,
    refused: Option<&'static str>,
    minutes: i64,
    history: usize,
    next: String,
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    lang: Option<String>,
    next: Option<String>,
}

impl PageQuery {
    fn messages(&self) -> &'static Messages {
        messages(self.lang.as_deref().unwrap_or("zh"))
    }

    fn next(&self) -> String {
        self.next
            .as_deref()
            .and_then(same_site_path)
            .filter(|p| !p.starts_with("/password"))
            .unwrap_or_default()
            .to_string()
    }
}

fn reason_key(reason: Option<ChangeReason>) -> Option<&'static str> {
    reason.map(|r| match r {
        ChangeReason::SetByAdministrator => "pw_reason_first",
        ChangeReason::Expired => "pw_reason_expired",
    })
}

fn page(session: &SignedIn, q: &PageQuery, history: usize) -> PasswordPage {
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

fn to_login(q: &PageQuery) -> Response {
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
    current_password: String,
    new_password: String,
    confirm_password: String,
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
            let token = state.sessions.open(user);
            let lang = q.lang.as_deref().unwrap_or("zh");
            let next = q.next();
            let to = if next.is_empty() {
                format!("/?lang={lang}")
            } else {
                next
            };
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

/// Paths a session that owes a password change may still reach.
fn open_while_owed(path: &str) -> bool {
    path == "/password"
        || path == "/logout"
        || path == "/login"
        || path == "/healthz"
        || path.starts_with("/static/")
        || path.starts_with("/auth/")
}

/// A session that owes a password change reaches only the password page: pages are
/// sent there, anything else is refused (403). Bearer requests are not sessions.
pub async fn gate(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if req.headers().contains_key(header::AUTHORIZATION) || open_while_owed(req.uri().path()) {
        return next.run(req).await;
    }
    let owed = session_token(req.headers())
        .and_then(|t| state.sessions.get(&t))
        .is_some_and(|s| s.change.is_some());
    if !owed {
        return next.run(req).await;
    }
    let uri = req.uri();
    let lang = uri
        .query()
        .and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "lang")
                .map(|(_, v)| v.into_owned())
        })
        .filter(|l| l == "en")
        .unwrap_or_else(|| "zh".into());
    if matches!(*req.method(), Method::GET | Method::HEAD) && !uri.path().starts_with("/api/") {
        let here = uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        let next: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
        return Redirect::to(&format!("/password?lang={lang}&next={next}")).into_response();
    }
    (
        StatusCode::FORBIDDEN,
        Json(serde_json::json!({
            "error": "the account's password must be changed first (at /password)",
            "field": "password",
        })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_password_page_and_its_needs_stay_open() {
        for open in ["/password", "/logout", "/static/app.css", "/auth/token"] {
            assert!(open_while_owed(open), "{open}");
        }
        for shut in [
            "/",
            "/workbench",
            "/api/contracts",
            "/fhir/Patient",
            "/passwordx",
        ] {
            assert!(!open_while_owed(shut), "{shut}");
        }
    }
}
