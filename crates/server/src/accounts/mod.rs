//! Accounts and their administration under separation of duties (三员管理, GB/T
//! 22239-2019 level 3): the system administrator makes staff accounts and resets their
//! passwords, the security administrator unlocks locked accounts, the audit
//! administrator reads the audit log; none acts on an administrator's account (the
//! rules are `dhp_core::access::may_act_on_account`). Every act, allowed or refused, is
//! audited under the administrator's name.
//!
//! - `GET /api/admin/accounts` → the accounts (no resident data).
//! - `POST /api/admin/accounts` `{"username", "role", "org", "display_name"}` → `201`
//!   with a one-time password, shown once; its owner changes it at the first login.
//! - `POST /api/admin/accounts/{username}/password` → a new one-time password.
//! - `POST /api/admin/accounts/{username}/unlock`.
//! - The same as a page at `/admin/accounts`, with forms.

mod api;
mod pages;

use api::*;
use axum::routing::{get, post};
use axum::Router;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use dhp_core::access::{may_act_on_account, AccountAct, Principal, Role};
use dhp_core::Organisation;
use dhp_store::{Store, StoreError, User};
use serde::Deserialize;
use serde_json::json;

use crate::audit::{self, Actor};
use crate::AppState;

/// `/api/admin/accounts…` and `/admin/accounts…`.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/api/admin/accounts",
            get(api::api_list).post(api::api_create),
        )
        .route(
            "/api/admin/accounts/{username}/password",
            post(api::api_reset),
        )
        .route(
            "/api/admin/accounts/{username}/unlock",
            post(api::api_unlock),
        )
        .route("/admin/accounts", get(pages::page).post(pages::form_create))
        .route(
            "/admin/accounts/{username}/password",
            post(pages::form_reset),
        )
        .route(
            "/admin/accounts/{username}/unlock",
            post(pages::form_unlock),
        )
}

/// The shortest secret of an integrating system's client.
pub const CLIENT_SECRET_MIN: usize = 16;

/// An account to make.
#[derive(Debug)]
pub struct NewAccount {
    pub username: String,
    pub role: String,
    /// Code of the organisation (staff roles and administrators).
    pub org: Option<String>,
    /// Identity number of the resident (role resident).
    pub resident: Option<String>,
    pub display_name: Option<String>,
    pub password: String,
}

/// Why an account was not made: the field at fault, in plain words.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("username must be non-empty and without spaces")]
    Username,
    #[error("role {0:?} is not one of {1}")]
    Role(String, String),
    #[error("{0}")]
    Password(String),
    #[error("org is required for role {0}")]
    OrgRequired(&'static str),
    #[error("org does not apply to role {0}")]
    OrgNotApplicable(&'static str),
    #[error("org {0}: no such organisation")]
    NoSuchOrg(String),
    #[error("resident is required for role resident")]
    ResidentRequired,
    #[error("resident applies only to role resident")]
    ResidentNotApplicable,
    #[error("resident: no resident has that identity number")]
    NoSuchResident,
    #[error("username {0} is taken")]
    Taken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AccountError {
    /// The form field at fault (`None` for a store failure).
    pub fn field(&self) -> Option<&'static str> {
        Some(match self {
            AccountError::Username | AccountError::Taken(_) => "username",
            AccountError::Role(..) => "role",
            AccountError::Password(_) => "password",
            AccountError::OrgRequired(_)
            | AccountError::OrgNotApplicable(_)
            | AccountError::NoSuchOrg(_) => "org",
            AccountError::ResidentRequired
            | AccountError::ResidentNotApplicable
            | AccountError::NoSuchResident => "resident",
            AccountError::Store(_) => return None,
        })
    }

    /// The message key of the refusal on the page.
    pub(crate) fn key(&self) -> &'static str {
        match self {
            AccountError::Username => "acc_err_username",
            AccountError::Role(..) => "acc_err_role",
            AccountError::OrgRequired(_) | AccountError::OrgNotApplicable(_) => "acc_err_org",
            AccountError::NoSuchOrg(_) => "acc_err_no_org",
            AccountError::Taken(_) => "acc_err_taken",
            _ => "acc_err_other",
        }
    }
}

/// Make an account after checking it against the rules and the registry; with
/// `must_change`, its owner changes the password at the first login. The account and
/// its organisation.
pub async fn create(
    store: &dyn Store,
    a: NewAccount,
    must_change: bool,
) -> Result<(User, Option<Organisation>), AccountError> {
    let username = a.username.trim().to_string();
    if username.is_empty() || username.chars().any(char::is_whitespace) || username.len() > 64 {
        return Err(AccountError::Username);
    }
    let role = Role::parse(&a.role).ok_or_else(|| {
        let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        AccountError::Role(a.role.clone(), names.join(", "))
    })?;
    // Level 3 (GB/T 22239-2019 8.1.4.1): identification information has complexity
    // requirements. A client secret is a machine's: long is what counts.
    if role == Role::System {
        if a.password.chars().count() < CLIENT_SECRET_MIN {
            return Err(AccountError::Password(format!(
                "the client secret must be at least {CLIENT_SECRET_MIN} characters (e.g. `openssl rand -hex 16`)"
            )));
        }
    } else if let Err(e) = dhp_core::password::check(&username, &a.password) {
        return Err(AccountError::Password(e.to_string()));
    }
    let works_somewhere = role.is_staff() || role.is_administrator();
    let org = match (&a.org, works_somewhere) {
        (Some(code), true) => Some(match store.organisation_by_code(code).await {
            Ok(o) => o,
            Err(StoreError::NotFound(_)) => return Err(AccountError::NoSuchOrg(code.clone())),
            Err(e) => return Err(e.into()),
        }),
        (None, true) => return Err(AccountError::OrgRequired(role.as_str())),
        (Some(_), false) => return Err(AccountError::OrgNotApplicable(role.as_str())),
        (None, false) => None,
    };
    let resident = match (&a.resident, role) {
        (Some(number), Role::Resident) => Some(match store.resident_by_identity(number).await {
            Ok(r) => r,
            Err(StoreError::NotFound(_)) => return Err(AccountError::NoSuchResident),
            Err(e) => return Err(e.into()),
        }),
        (None, Role::Resident) => return Err(AccountError::ResidentRequired),
        (Some(_), _) => return Err(AccountError::ResidentNotApplicable),
        (None, _) => None,
    };
    let id = store.users().await?.iter().map(|u| u.id).max().unwrap_or(0) + 1;
    let display_name = a
        .display_name
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
        .or_else(|| resident.as_ref().map(|r| r.name.clone()))
        .unwrap_or_else(|| username.clone());
    let hash = {
        let secret = a.password.clone();
        tokio::task::spawn_blocking(move || crate::security::auth::hash_password(&secret))
            .await
            .expect("hashing a password does not panic")
    };
    let user = User {
        id,
        username: username.clone(),
        password_hash: hash,
        role: role.as_str().to_string(),
        display_name,
        org_id: org.as_ref().map(|o| o.id),
        practitioner_id: None,
        resident_id: resident.as_ref().map(|r| r.id),
    };
    match store.insert_user(&user).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Err(AccountError::Taken(username)),
        Err(e) => return Err(e.into()),
    }
    if must_change && role != Role::System {
        store.require_password_change(&username, true, None).await?;
    }
    Ok((user, org))
}

/// A one-time password that meets the rules: 16 characters from an alphabet without
/// look-alikes, with a capital, a small letter, a digit and a hyphen.
pub fn one_time_password() -> String {
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const LOWER: &[u8] = b"abcdefghijkmnpqrstuvwxyz";
    const DIGIT: &[u8] = b"23456789";
    let bytes = crate::security::auth::random_bytes::<15>();
    let pick = |set: &[u8], b: u8| set[usize::from(b) % set.len()] as char;
    let mut out = String::with_capacity(16);
    for (i, b) in bytes.iter().enumerate() {
        if i == 8 {
            out.push('-');
        }
        let set = match i % 3 {
            0 => UPPER,
            1 => LOWER,
            _ => DIGIT,
        };
        out.push(pick(set, *b));
    }
    out
}

/// A refused act: status, field, words.
struct Refused {
    pub(crate) status: StatusCode,
    pub(crate) field: &'static str,
    pub(crate) message: String,
    /// The page's message key.
    pub(crate) key: &'static str,
}

impl Refused {
    pub(crate) fn new(
        status: StatusCode,
        field: &'static str,
        message: impl Into<String>,
        key: &'static str,
    ) -> Self {
        Self {
            status,
            field,
            message: message.into(),
            key,
        }
    }

    pub(crate) fn json(&self) -> Response {
        (
            self.status,
            Json(json!({ "error": self.message, "field": self.field })),
        )
            .into_response()
    }
}

/// Check `act` on `target` for `who`, auditing a refusal.
async fn permitted(
    state: &AppState,
    who: &Principal,
    act: AccountAct,
    target: &str,
    target_role: Role,
) -> Result<Result<(), Refused>, StoreError> {
    let decision = may_act_on_account(who, act, target, target_role);
    if decision.allowed() {
        return Ok(Ok(()));
    }
    audit::record(
        &*state.store,
        &Actor::from(who),
        act_name(act),
        &format!("User/{target}"),
        None,
        "denied",
        decision.reason(),
    )
    .await?;
    Ok(Err(Refused::new(
        StatusCode::FORBIDDEN,
        "role",
        decision.reason(),
        "acc_denied",
    )))
}

fn act_name(act: AccountAct) -> &'static str {
    match act {
        AccountAct::List => "read",
        AccountAct::Create => "account",
        AccountAct::ResetPassword => "password",
        AccountAct::Unlock => "unlock",
    }
}

/// The role of the account `username`, or a refusal naming it.
async fn target_role(
    state: &AppState,
    username: &str,
) -> Result<Result<Role, Refused>, StoreError> {
    match state.store.user_by_username(username).await {
        Ok(u) => Ok(Role::parse(&u.role).ok_or_else(|| {
            Refused::new(
                StatusCode::CONFLICT,
                "username",
                "the account has an unknown role",
                "acc_err_other",
            )
        })),
        Err(StoreError::NotFound(_)) => Ok(Err(Refused::new(
            StatusCode::NOT_FOUND,
            "username",
            format!("no account is called {username}"),
            "acc_err_no_account",
        ))),
        Err(e) => Err(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct CreateRequest {
    pub(crate) username: String,
    pub(crate) role: String,
    pub(crate) org: Option<String>,
    pub(crate) display_name: Option<String>,
}

/// Make a staff account as the system administrator: the account and its one-time
/// password.
async fn do_create(
    state: &AppState,
    who: &Principal,
    req: CreateRequest,
) -> Result<Result<(String, String), Refused>, StoreError> {
    let Some(role) = Role::parse(&req.role) else {
        return Ok(Err(Refused::new(
            StatusCode::BAD_REQUEST,
            "role",
            format!("role {:?} is not a staff role", req.role),
            "acc_err_role",
        )));
    };
    if let Err(r) = permitted(state, who, AccountAct::Create, req.username.trim(), role).await? {
        return Ok(Err(r));
    }
    let password = one_time_password();
    let made = create(
        &*state.store,
        NewAccount {
            username: req.username,
            role: req.role,
            org: req.org.filter(|o| !o.trim().is_empty()),
            resident: None,
            display_name: req.display_name,
            password: password.clone(),
        },
        true,
    )
    .await;
    let (user, _) = match made {
        Ok(made) => made,
        Err(AccountError::Store(e)) => return Err(e),
        Err(e) => {
            let field = e.field().unwrap_or("username");
            return Ok(Err(Refused::new(
                StatusCode::BAD_REQUEST,
                field,
                e.to_string(),
                e.key(),
            )));
        }
    };
    audit::record(
        &*state.store,
        &Actor::from(who),
        "account",
        &format!("User/{}", user.username),
        None,
        "success",
        &format!(
            "account made ({}), password to be changed at the first login",
            user.role
        ),
    )
    .await?;
    Ok(Ok((user.username, password)))
}

/// Reset a staff account's password as the system administrator.
async fn do_reset(
    state: &AppState,
    who: &Principal,
    username: &str,
) -> Result<Result<String, Refused>, StoreError> {
    let role = match target_role(state, username).await? {
        Ok(r) => r,
        Err(r) => return Ok(Err(r)),
    };
    if let Err(r) = permitted(state, who, AccountAct::ResetPassword, username, role).await? {
        return Ok(Err(r));
    }
    let password = one_time_password();
    let hash = state.login.hash(&password).await;
    let at = Utc::now().naive_utc();
    state.store.set_password(username, &hash, true, at).await?;
    state.sessions.close_user(username);
    state.revoked.password_set(username, at);
    audit::record(
        &*state.store,
        &Actor::from(who),
        "password",
        &format!("User/{username}"),
        None,
        "success",
        "password reset; to be changed at the next login",
    )
    .await?;
    Ok(Ok(password))
}

/// Unlock an account as the security administrator: whether it had failed logins.
async fn do_unlock(
    state: &AppState,
    who: &Principal,
    username: &str,
) -> Result<Result<bool, Refused>, StoreError> {
    let role = match target_role(state, username).await? {
        Ok(r) => r,
        Err(r) => return Ok(Err(r)),
    };
    if let Err(r) = permitted(state, who, AccountAct::Unlock, username, role).await? {
        return Ok(Err(r));
    }
    crate::security::login::unlock(&*state.store, username, &who.username)
        .await
        .map(Ok)
}

/// One account as the administrators see it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AccountRow {
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub org: Option<String>,
    /// Locked after failed logins until then (UTC).
    pub locked_until: Option<String>,
    pub must_change_password: bool,
    /// Days since the password was set (`None`: not known yet).
    pub password_age_days: Option<i64>,
}

/// The accounts whose username or name contains `q`, `PAGE` at a time from `offset`,
/// and how many match.
async fn rows(
    state: &AppState,
    q: &str,
    offset: usize,
) -> Result<(Vec<AccountRow>, usize), StoreError> {
    let needle = q.trim().to_lowercase();
    let users: Vec<User> = state
        .store
        .users()
        .await?
        .into_iter()
        .filter(|u| {
            needle.is_empty()
                || u.username.to_lowercase().contains(&needle)
                || u.display_name.to_lowercase().contains(&needle)
        })
        .collect();
    let total = users.len();
    let orgs = state.orgs().await?;
    let now = Utc::now().naive_utc();
    let window = chrono::Duration::from_std(state.config.login.window).unwrap_or_default();
    let mut out = Vec::new();
    for u in users.into_iter().skip(offset).take(PAGE) {
        let failures = state
            .store
            .login_failures(&u.username, "", now - window)
            .await?
            .account;
        let n = state.config.login.account_failures;
        let locked_until = (n > 0 && failures.len() >= n).then(|| {
            (failures[failures.len() - n] + window)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        });
        let pw = state.store.password_state(&u.username, 0).await?;
        out.push(AccountRow {
            org: u.org_id.and_then(|o| orgs.get(&o)).map(|o| o.code.clone()),
            username: u.username,
            display_name: u.display_name,
            role: u.role,
            locked_until,
            must_change_password: pw.must_change,
            password_age_days: pw.changed_at.map(|c| (now - c).num_days()),
        });
    }
    Ok((out, total))
}

/// Accounts on one page.
const PAGE: usize = 50;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_time_passwords_meet_the_rules_and_differ() {
        let a = one_time_password();
        let b = one_time_password();
        assert_eq!(a.chars().count(), 16);
        assert_ne!(a, b);
        for p in [a, b] {
            assert_eq!(dhp_core::password::check("someone", &p), Ok(()), "{p}");
        }
    }
}
