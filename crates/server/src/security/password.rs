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

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use chrono::Utc;
use dhp_core::password::{self, ChangeReason, PasswordError};
use dhp_store::{StoreError, User};

use crate::audit::{self, Actor};
use crate::security::login::{Attempt, LoginOutcome};
use crate::security::web::session_token;
use crate::AppState;

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
    pub(crate) fn key(&self) -> &'static str {
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
    pub(crate) fn describe(&self, history: usize) -> (String, &'static str) {
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
            user.resident_id,
            "refused",
            &format!("{why}; from {}", c.address),
        )
        .await?;
        return Ok(Err(refusal));
    }
    let hash = state.login.hash(c.new).await;
    let at = Utc::now().naive_utc();
    state
        .store
        .set_password(&user.username, &hash, false, at)
        .await?;
    state.sessions.close_user(&user.username);
    state.revoked.password_set(&user.username, at);
    audit::record(
        &*state.store,
        &actor,
        "password",
        &resource,
        user.resident_id,
        "success",
        &format!("password changed; from {}", c.address),
    )
    .await?;
    Ok(Ok(user))
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
