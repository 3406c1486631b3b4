//! OAuth2-style bearer tokens: `POST /auth/token` with the `password` grant (people)
//! or the `client_credentials` grant (integrating systems), answering a JWT signed by
//! the server (HS256, key kept in the store's `meta` table).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use chrono::Utc;
use dhp_core::access::{Principal, Role};
use dhp_store::User;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::security::login::{Attempt, LoginOutcome};
use crate::security::web::ClientAddress;
use crate::{AppError, AppState};

/// Lifetime of an access token.
pub const TOKEN_SECONDS: i64 = 3600;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: String,
    org: Option<i64>,
    prac: Option<i64>,
    res: Option<i64>,
    iat: i64,
    exp: i64,
}

/// Sign a token for `user`.
pub fn issue(key: &[u8], user: &User) -> String {
    let now = Utc::now().timestamp();
    let claims = Claims {
        sub: user.username.clone(),
        role: user.role.clone(),
        org: user.org_id,
        prac: user.practitioner_id,
        res: user.resident_id,
        iat: now,
        exp: now + TOKEN_SECONDS,
    };
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(key),
    )
    .expect("HS256 signing cannot fail")
}

/// Why a bearer token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    Missing,
    Invalid(String),
}

/// The principal a request's `Authorization: Bearer …` header names.
pub fn principal(key: &[u8], headers: &HeaderMap) -> Result<Principal, TokenError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(TokenError::Missing)?;
    let token = value
        .strip_prefix("Bearer ")
        .ok_or_else(|| TokenError::Invalid("authorization must be a Bearer token".into()))?;
    let data = decode::<Claims>(
        token,
        &DecodingKey::from_secret(key),
        &Validation::new(Algorithm::HS256),
    )
    .map_err(|e| TokenError::Invalid(format!("token rejected: {e}")))?;
    let c = data.claims;
    Ok(Principal {
        role: Role::parse(&c.role)
            .ok_or_else(|| TokenError::Invalid(format!("unknown role {}", c.role)))?,
        username: c.sub,
        org_id: c.org,
        practitioner_id: c.prac,
        resident_id: c.res,
    })
}

#[derive(Debug, Deserialize)]
pub struct TokenRequest {
    grant_type: String,
    username: Option<String>,
    password: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// An OAuth2 error answer (RFC 6749 §5.2).
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
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
