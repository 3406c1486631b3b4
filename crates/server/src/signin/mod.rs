//! Signing in and out: the portal's login form, bearer tokens for API clients, and
//! changing a password (owed at the first login or when it is too old). The checks
//! themselves (lockout, throttling, the password rules) are in `security`.

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use crate::AppState;

mod login;
mod password;
mod token;

/// `/login`, `/logout`, `/auth/token`, `/auth/password`, `/password`.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/login", get(login::login_form).post(login::login))
        .route("/logout", post(login::logout))
        .route("/auth/token", post(token::token))
        .route("/auth/password", post(password::api_change))
        .route("/password", get(password::form).post(password::submit))
}
