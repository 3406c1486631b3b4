//! OAuth2-style bearer tokens: `POST /auth/token` with the `password` grant (people)
//! or the `client_credentials` grant (integrating systems), answering a JWT signed by
//! the server (HS256, key kept in the store's `meta` table).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};
use chrono::{NaiveDateTime, Utc};
use dhp_core::access::{Principal, Role};
use dhp_store::{Store, StoreError, User};
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
    /// When it was issued, in milliseconds (`iat` is whole seconds): a token issued
    /// in the second of a password change is told apart from one issued before it.
    #[serde(default)]
    iat_ms: Option<i64>,
    exp: i64,
}

/// Sign a token for `user`.
pub fn issue(key: &[u8], user: &User) -> String {
    let now_ms = Utc::now().timestamp_millis();
    let now = now_ms.div_euclid(1000);
    let claims = Claims {
        sub: user.username.clone(),
        role: user.role.clone(),
        org: user.org_id,
        prac: user.practitioner_id,
        res: user.resident_id,
        iat: now,
        iat_ms: Some(now_ms),
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

/// The principal a request's `Authorization: Bearer …` header names, and when its
/// token was issued (milliseconds), for [`Revocations::check`].
pub fn principal(key: &[u8], headers: &HeaderMap) -> Result<(Principal, i64), TokenError> {
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
    let issued = c.iat_ms.unwrap_or(c.iat.saturating_mul(1000));
    Ok((
        Principal {
            role: Role::parse(&c.role)
                .ok_or_else(|| TokenError::Invalid(format!("unknown role {}", c.role)))?,
            username: c.sub,
            org_id: c.org,
            practitioner_id: c.prac,
            resident_id: c.res,
        },
        issued,
    ))
}

/// How long what [`Revocations`] read of an account's password is trusted before it is
/// read again: a password reset at the console (another process) ends the account's
/// tokens within this time; one changed through this server ends them at once.
const RECHECK: Duration = Duration::from_secs(30);

/// Accounts [`Revocations`] remembers at most; past it, all is read afresh.
const REMEMBERED: usize = 10_000;

/// Tokens end with the password they were issued under: a token issued before the
/// account's password was last set (changed by its owner, reset by an administrator
/// or at the console) is refused, as the account's portal sessions are closed then.
#[derive(Debug, Default)]
pub struct Revocations {
    /// Per account: when its password was last set (milliseconds; `None`: never on
    /// record, or no such account: `Err`) and when that was read.
    seen: Mutex<HashMap<String, (Instant, PasswordSet)>>,
}

/// When an account's password was last set (milliseconds): `Ok(None)` never on
/// record, `Err(())` no such account.
type PasswordSet = Result<Option<i64>, ()>;

impl Revocations {
    /// `username`'s password was set at `at`: its earlier tokens end now.
    pub fn password_set(&self, username: &str, at: NaiveDateTime) {
        let mut seen = self.seen.lock().expect("revocations lock");
        if seen.len() >= REMEMBERED {
            seen.clear();
        }
        seen.insert(
            username.to_string(),
            (Instant::now(), Ok(Some(at.and_utc().timestamp_millis()))),
        );
    }

    /// Whether a token of `username` issued at `issued` (milliseconds) still stands.
    pub async fn check(
        &self,
        store: &dyn Store,
        username: &str,
        issued: i64,
    ) -> Result<(), TokenError> {
        let known = {
            let seen = self.seen.lock().expect("revocations lock");
            seen.get(username)
                .filter(|(read, _)| read.elapsed() < RECHECK)
                .map(|(_, v)| *v)
        };
        let set_at = match known {
            Some(v) => v,
            None => {
                let v = match store.password_state(username, 0).await {
                    Ok(p) => Ok(p.changed_at.map(|t| t.and_utc().timestamp_millis())),
                    Err(StoreError::NotFound(_)) => Err(()),
                    // The store could not answer: refuse now, ask again next time.
                    Err(_) => {
                        return Err(TokenError::Invalid(
                            "the token could not be checked; try again".into(),
                        ))
                    }
                };
                let mut seen = self.seen.lock().expect("revocations lock");
                if seen.len() >= REMEMBERED {
                    seen.clear();
                }
                seen.insert(username.to_string(), (Instant::now(), v));
                v
            }
        };
        match set_at {
            Err(()) => Err(TokenError::Invalid(
                "the token's account no longer exists".into(),
            )),
            Ok(Some(at)) if issued < at => Err(TokenError::Invalid(
                "the token was issued before the account's password was last set; ask for a new one"
                    .into(),
            )),
            Ok(_) => Ok(()),
        }
    }
}
