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

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Json};
use chrono::Utc;
use dhp_core::access::{may_act_on_account, AccountAct, Principal, Role};
use dhp_core::Organisation;
use dhp_store::{Store, StoreError, User};
use serde::Deserialize;
use serde_json::json;

use crate::audit::{self, Actor};
use crate::i18n::{messages, Messages};
use crate::pages::current_user;
use crate::security::session::SignedIn;
use crate::workbench::principal_of;
use crate::{AppError, AppState};

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
    fn key(&self) -> &'static str {
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
        tokio::task::spawn_blocking(move || crate::auth::hash_password(&secret))
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
    let bytes = crate::auth::random_bytes::<15>();
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
    status: StatusCode,
    field: &'static str,
    message: String,
    /// The page's message key.
    key: &'static str,
}

impl Refused {
    fn new(
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

    fn json(&self) -> Response {
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
    username: String,
    role: String,
    org: Option<String>,
    display_name: Option<String>,
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
    state
        .store
        .set_password(username, &hash, true, Utc::now().naive_utc())
        .await?;
    state.sessions.close_user(username);
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

async fn api_caller(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Result<Principal, Response>, StoreError> {
    match crate::contracts::caller(state, headers) {
        Some(who) => Ok(Ok(who)),
        None => {
            audit::record(
                &*state.store,
                &Actor::unverified("anonymous"),
                "read",
                "accounts",
                None,
                "denied",
                "no valid bearer token or session",
            )
            .await?;
            Ok(Err(Refused::new(
                StatusCode::UNAUTHORIZED,
                "Authorization",
                "sign in or send a bearer token",
                "acc_denied",
            )
            .json()))
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    page: Option<String>,
    lang: Option<String>,
    /// What the last act did (a message key) and for whom, shown above the list.
    done: Option<String>,
    who: Option<String>,
}

impl ListQuery {
    fn page(&self) -> usize {
        self.page
            .as_deref()
            .and_then(|p| p.parse::<usize>().ok())
            .filter(|p| (1..=100_000).contains(p))
            .unwrap_or(1)
    }
}

/// `GET /api/admin/accounts?q=&page=`.
pub async fn api_list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Response, AppError> {
    let who = match api_caller(&state, &headers).await? {
        Ok(w) => w,
        Err(r) => return Ok(r),
    };
    if let Err(r) = permitted(&state, &who, AccountAct::List, "", Role::Manager).await? {
        return Ok(r.json());
    }
    let page = q.page();
    let (accounts, total) = rows(&state, q.q.as_deref().unwrap_or(""), (page - 1) * PAGE).await?;
    audit::record(
        &*state.store,
        &Actor::from(&who),
        "read",
        "accounts",
        None,
        "success",
        &format!("{} of {total} accounts", accounts.len()),
    )
    .await?;
    Ok(
        Json(json!({ "total": total, "page": page, "page_size": PAGE, "accounts": accounts }))
            .into_response(),
    )
}

/// `POST /api/admin/accounts`.
pub async fn api_create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let who = match api_caller(&state, &headers).await? {
        Ok(w) => w,
        Err(r) => return Ok(r),
    };
    let req: CreateRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return Ok(Refused::new(
                StatusCode::BAD_REQUEST,
                "body",
                format!(
                    "the body must be {{\"username\", \"role\", \"org\", \"display_name\"}}: {e}"
                ),
                "acc_err_other",
            )
            .json())
        }
    };
    Ok(match do_create(&state, &who, req).await? {
        Ok((username, password)) => (
            StatusCode::CREATED,
            [(axum::http::header::CACHE_CONTROL, "no-store")],
            Json(json!({ "username": username, "one_time_password": password, "must_change_password": true })),
        )
            .into_response(),
        Err(r) => r.json(),
    })
}

/// `POST /api/admin/accounts/{username}/password`.
pub async fn api_reset(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(username): Path<String>,
) -> Result<Response, AppError> {
    let who = match api_caller(&state, &headers).await? {
        Ok(w) => w,
        Err(r) => return Ok(r),
    };
    Ok(match do_reset(&state, &who, &username).await? {
        Ok(password) => (
            [(axum::http::header::CACHE_CONTROL, "no-store")],
            Json(json!({ "username": username, "one_time_password": password, "must_change_password": true })),
        )
            .into_response(),
        Err(r) => r.json(),
    })
}

/// `POST /api/admin/accounts/{username}/unlock`.
pub async fn api_unlock(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(username): Path<String>,
) -> Result<Response, AppError> {
    let who = match api_caller(&state, &headers).await? {
        Ok(w) => w,
        Err(r) => return Ok(r),
    };
    Ok(match do_unlock(&state, &who, &username).await? {
        Ok(had) => Json(json!({ "username": username, "was_locked": had })).into_response(),
        Err(r) => r.json(),
    })
}

struct RowView {
    row: AccountRow,
    role_label: String,
    org_name: String,
    may_reset: bool,
    may_unlock: bool,
}

#[derive(Template)]
#[template(path = "accounts.html")]
struct AccountsPage {
    t: &'static Messages,
    user: Option<SignedIn>,
    rows: Vec<RowView>,
    q: String,
    page: usize,
    pages: usize,
    total: usize,
    may_create: bool,
    /// Staff roles and organisations for the create form: (value, label).
    roles: Vec<(String, String)>,
    orgs: Vec<(String, String)>,
    /// What the last act did, shown once: message key, account, one-time password.
    done: Option<(String, String)>,
    one_time: Option<String>,
    refused: Option<String>,
}

async fn page_user(
    state: &AppState,
    headers: &HeaderMap,
    t: &Messages,
) -> Result<(SignedIn, Principal), Response> {
    let Some(user) = current_user(state, headers) else {
        return Err(Redirect::to(&format!(
            "/login?lang={}&next=/admin/accounts",
            t.get("lang")
        ))
        .into_response());
    };
    match principal_of(&user) {
        Some(who) => Ok((user, who)),
        None => Err((StatusCode::FORBIDDEN, Html(t.get("acc_denied").to_string())).into_response()),
    }
}

#[allow(clippy::too_many_arguments)]
async fn render(
    state: &AppState,
    t: &'static Messages,
    user: SignedIn,
    who: &Principal,
    q: &ListQuery,
    one_time: Option<String>,
    refused: Option<String>,
    status: StatusCode,
) -> Result<Response, AppError> {
    if let Err(r) = permitted(state, who, AccountAct::List, "", Role::Manager).await? {
        return Ok((r.status, Html(t.get(r.key).to_string())).into_response());
    }
    let page = q.page();
    let query = q.q.clone().unwrap_or_default();
    let (rows, total) = rows(state, &query, (page - 1) * PAGE).await?;
    audit::record(
        &*state.store,
        &Actor::from(who),
        "read",
        "accounts",
        None,
        "success",
        &format!("{} of {total} accounts (page {page})", rows.len()),
    )
    .await?;
    let orgs = state.orgs().await?;
    let zh = t.get("lang") == "zh";
    let org_name = |code: &Option<String>| {
        code.as_ref()
            .and_then(|c| orgs.values().find(|o| &o.code == c))
            .map(|o| {
                if zh {
                    o.name_zh.clone()
                } else {
                    o.name_en.clone()
                }
            })
            .unwrap_or_default()
    };
    let views = rows
        .into_iter()
        .map(|row| {
            let role = Role::parse(&row.role).unwrap_or(Role::Resident);
            RowView {
                role_label: t.role(&row.role).to_string(),
                org_name: org_name(&row.org),
                may_reset: may_act_on_account(who, AccountAct::ResetPassword, &row.username, role)
                    .allowed(),
                may_unlock: row.locked_until.is_some()
                    && may_act_on_account(who, AccountAct::Unlock, &row.username, role).allowed(),
                row,
            }
        })
        .collect();
    let mut org_list: Vec<(String, String)> = orgs
        .values()
        .filter(|o| {
            !matches!(
                o.kind,
                dhp_core::OrgKind::City
                    | dhp_core::OrgKind::Street
                    | dhp_core::OrgKind::Town
                    | dhp_core::OrgKind::District
            )
        })
        .map(|o| {
            (
                o.code.clone(),
                if zh {
                    o.name_zh.clone()
                } else {
                    o.name_en.clone()
                },
            )
        })
        .collect();
    org_list.sort();
    let view = AccountsPage {
        t,
        may_create: may_act_on_account(who, AccountAct::Create, "", Role::FamilyDoctor).allowed(),
        user: Some(user),
        rows: views,
        q: query,
        page,
        pages: total.div_ceil(PAGE).max(1),
        total,
        roles: Role::ALL
            .iter()
            .filter(|r| r.is_staff())
            .map(|r| (r.as_str().to_string(), t.role(r.as_str()).to_string()))
            .collect(),
        orgs: org_list,
        done: q.done.clone().zip(q.who.clone()),
        one_time,
        refused,
    };
    Ok((status, Html(view.render()?)).into_response())
}

/// `GET /admin/accounts?q=&page=`: the accounts, with the acts the administrator may do.
pub async fn page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Response, AppError> {
    let t = messages(q.lang.as_deref().unwrap_or("zh"));
    let (user, who) = match page_user(&state, &headers, t).await {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    render(&state, t, user, &who, &q, None, None, StatusCode::OK).await
}

#[derive(Debug, Deserialize)]
pub struct CreateForm {
    username: String,
    role: String,
    org: Option<String>,
    display_name: Option<String>,
}

/// `POST /admin/accounts`: make an account; the page shows its one-time password once.
pub async fn form_create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
    Form(f): Form<CreateForm>,
) -> Result<Response, AppError> {
    let t = messages(q.lang.as_deref().unwrap_or("zh"));
    let (user, who) = match page_user(&state, &headers, t).await {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let req = CreateRequest {
        username: f.username,
        role: f.role,
        org: f.org,
        display_name: f.display_name,
    };
    let q = ListQuery {
        q: None,
        page: None,
        ..q
    };
    match do_create(&state, &who, req).await? {
        Ok((username, password)) => {
            let q = ListQuery {
                done: Some("acc_made".into()),
                who: Some(username),
                ..q
            };
            render(
                &state,
                t,
                user,
                &who,
                &q,
                Some(password),
                None,
                StatusCode::CREATED,
            )
            .await
        }
        Err(r) => {
            render(
                &state,
                t,
                user,
                &who,
                &q,
                None,
                Some(r.key.into()),
                r.status,
            )
            .await
        }
    }
}

/// `POST /admin/accounts/{username}/password`.
pub async fn form_reset(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
    Path(username): Path<String>,
) -> Result<Response, AppError> {
    let t = messages(q.lang.as_deref().unwrap_or("zh"));
    let (user, who) = match page_user(&state, &headers, t).await {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    match do_reset(&state, &who, &username).await? {
        Ok(password) => {
            let q = ListQuery {
                done: Some("acc_reset_done".into()),
                who: Some(username),
                ..q
            };
            render(
                &state,
                t,
                user,
                &who,
                &q,
                Some(password),
                None,
                StatusCode::OK,
            )
            .await
        }
        Err(r) => {
            render(
                &state,
                t,
                user,
                &who,
                &q,
                None,
                Some(r.key.into()),
                r.status,
            )
            .await
        }
    }
}

/// `POST /admin/accounts/{username}/unlock`.
pub async fn form_unlock(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
    Path(username): Path<String>,
) -> Result<Response, AppError> {
    let t = messages(q.lang.as_deref().unwrap_or("zh"));
    let (user, who) = match page_user(&state, &headers, t).await {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    match do_unlock(&state, &who, &username).await? {
        Ok(_) => {
            let q = ListQuery {
                done: Some("acc_unlocked".into()),
                who: Some(username),
                ..q
            };
            render(&state, t, user, &who, &q, None, None, StatusCode::OK).await
        }
        Err(r) => {
            render(
                &state,
                t,
                user,
                &who,
                &q,
                None,
                Some(r.key.into()),
                r.status,
            )
            .await
        }
    }
}

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
