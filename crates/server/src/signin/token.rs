//! `POST /auth/token`: the `password` grant (people) and the `client_credentials` grant
//! (integrating systems), answering a bearer token.

use crate::security::login::{Attempt, LoginOutcome};
use crate::security::token::{issue, TOKEN_SECONDS};
use crate::security::web::ClientAddress;
use crate::{AppError, AppState};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Deserialize)]
pub struct TokenRequest {
    pub(crate) grant_type: String,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) client_secret: Option<String>,
}

/// An OAuth2 error answer (RFC 6749 §5.2).
pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

/// `POST /auth/token`.
pub async fn token(
    State(state): State<Arc<AppState>>,
    ClientAddress(address): ClientAddress,
    Form(req): Form<TokenRequest>,
) -> Result<Response, AppError> {
    let (name, secret, clients_only) = match req.grant_type.as_str() {
        "password" => (req.username, req.password, false),
        "client_credentials" => (req.client_id, req.client_secret, true),
        _ => {
            return Ok(oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be password or client_credentials",
            ))
        }
    };
    let (Some(name), Some(secret)) = (name, secret) else {
        let fields = if clients_only {
            "client_id and client_secret"
        } else {
            "username and password"
        };
        return Ok(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("{fields} are required"),
        ));
    };
    let outcome = state
        .login
        .attempt(
            &*state.store,
            Attempt {
                username: &name,
                secret: &secret,
                systems_only: clients_only,
                address: &address,
                resource: "/auth/token",
                method: &req.grant_type,
            },
        )
        .await?;
    let user = match outcome {
        LoginOutcome::Verified(user) => user,
        LoginOutcome::Wrong => {
            let (error, what) = if clients_only {
                ("invalid_client", "unknown client or wrong secret")
            } else {
                ("invalid_grant", "wrong username or password")
            };
            return Ok(oauth_error(StatusCode::UNAUTHORIZED, error, what));
        }
        LoginOutcome::Locked(until) => {
            return Ok(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                &format!("too many failed logins: the account is locked until {until} UTC"),
            ))
        }
        LoginOutcome::Throttled(seconds) => {
            let mut res = oauth_error(
                StatusCode::TOO_MANY_REQUESTS,
                "slow_down",
                "too many failed logins from this address: try again later",
            );
            res.headers_mut()
                .insert(header::RETRY_AFTER, seconds.into());
            return Ok(res);
        }
        LoginOutcome::Busy => {
            let mut res = oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "too many logins at once: try again in a moment",
            );
            res.headers_mut().insert(header::RETRY_AFTER, 1.into());
            return Ok(res);
        }
    };
    if let Some(reason) = crate::security::password::change_needed(&state, &user).await? {
        return Ok(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            &format!(
                "the password must be changed first ({}): POST /auth/password with username, password and new_password, or sign in at /login",
                reason.as_str()
            ),
        ));
    }
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({
            "access_token": issue(&state.token_key, &user),
            "token_type": "Bearer",
            "expires_in": TOKEN_SECONDS,
        })),
    )
        .into_response())
}
