//! OAuth2-style bearer tokens: `POST /auth/token` with the `password` grant (people)
//! or the `client_credentials` grant (integrating systems), answering a JWT signed by
//! the server (HS256, key kept in the store's `meta` table).

use axum::http::{header, HeaderMap};
use chrono::Utc;
use dhp_core::access::{Principal, Role};
use dhp_store::User;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

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
