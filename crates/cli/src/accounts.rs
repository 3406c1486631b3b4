//! `dhp user add` and `dhp client add`: accounts checked against the registry before
//! they are written.

use anyhow::{bail, Context, Result};
use dhp_core::access::Role;
use dhp_store::{Store, StoreError, User};

/// The shortest client secret accepted.
const CLIENT_SECRET_MIN: usize = 16;

#[derive(Debug)]
pub struct NewAccount {
    pub username: String,
    pub role: String,
    pub org: Option<String>,
    pub resident: Option<String>,
    pub display_name: Option<String>,
    pub password: String,
}

/// Validate and write one account; answers a one-line description.
pub async fn add(store: &dyn Store, a: NewAccount) -> Result<String> {
    let username = a.username.trim().to_string();
    if username.is_empty() || username.chars().any(char::is_whitespace) {
        bail!("--username must be non-empty and without spaces");
    }
    let role = Role::parse(&a.role).with_context(|| {
        let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        format!("--role {:?} is not one of {}", a.role, names.join(", "))
    })?;
    // Level 3 (GB/T 22239-2019 8.1.4.1): identification information has complexity
    // requirements. A client secret is a machine's: long is what counts.
    if role == Role::System {
        if a.password.chars().count() < CLIENT_SECRET_MIN {
            bail!("the client secret must be at least {CLIENT_SECRET_MIN} characters (e.g. `openssl rand -hex 16`)");
        }
    } else if let Err(e) = dhp_core::password::check(&username, &a.password) {
        bail!("{e}");
    }
    let staff = matches!(
        role,
        Role::Manager | Role::PublicHealthDoctor | Role::FamilyDoctor | Role::HospitalClinician
    );
    let org = match (&a.org, staff) {
        (Some(code), true) => Some(match store.organisation_by_code(code).await {
            Ok(o) => o,
            Err(StoreError::NotFound(_)) => bail!("--org {code}: no such organisation"),
            Err(e) => return Err(e.into()),
        }),
        (None, true) => bail!("--org is required for role {}", role.as_str()),
        (Some(_), false) => bail!("--org does not apply to role {}", role.as_str()),
        (None, false) => None,
    };
    let resident = match (&a.resident, role) {
        (Some(number), Role::Resident) => Some(match store.resident_by_identity(number).await {
            Ok(r) => r,
            Err(StoreError::NotFound(_)) => {
                bail!("--resident: no resident has that identity number")
            }
            Err(e) => return Err(e.into()),
        }),
        (None, Role::Resident) => bail!("--resident is required for role resident"),
        (Some(_), _) => bail!("--resident applies only to role resident"),
        (None, _) => None,
    };
    let id = store.users().await?.iter().map(|u| u.id).max().unwrap_or(0) + 1;
    let display_name = a
        .display_name
        .or_else(|| resident.as_ref().map(|r| r.name.clone()))
        .unwrap_or_else(|| username.clone());
    let user = User {
        id,
        username: username.clone(),
        password_hash: dhp_server::auth::hash_password(&a.password),
        role: role.as_str().to_string(),
        display_name,
        org_id: org.as_ref().map(|o| o.id),
        practitioner_id: None,
        resident_id: resident.as_ref().map(|r| r.id),
    };
    match store.insert_user(&user).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => bail!("username {username} is taken"),
        Err(e) => return Err(e.into()),
    }
    // The administrator chose this password: its owner replaces it at the first login
    // (a machine's secret stays as set).
    if role != Role::System {
        store.require_password_change(&username, true, None).await?;
    }
    Ok(format!(
        "{} {username} ({}{})",
        if role == Role::System {
            "client"
        } else {
            "user"
        },
        role.as_str(),
        org.map(|o| format!(" at {}", o.name_zh))
            .unwrap_or_default()
    ))
}

/// Set a new password for `username` at an administrator's hand (the CLI's operator):
/// checked against the rules and the account's last passwords, and to be changed by its
/// owner at the next login. Audited.
pub async fn reset_password(store: &dyn Store, username: &str, password: &str) -> Result<String> {
    let user = match store.user_by_username(username).await {
        Ok(u) => u,
        Err(StoreError::NotFound(_)) => bail!("no account is called {username}"),
        Err(e) => return Err(e.into()),
    };
    if user.role == Role::System.as_str() {
        bail!(
            "{username} is an integrating system's client: its secret is set with dhp client add"
        );
    }
    if let Err(e) = dhp_core::password::check(username, password) {
        bail!("{e}");
    }
    let history = dhp_core::password::Lifecycle::default().history;
    let previous = store.password_state(username, history).await?.previous;
    if std::iter::once(&user.password_hash)
        .chain(&previous)
        .any(|h| dhp_server::auth::verify_password(password, h))
    {
        bail!("the password must differ from the current one and the last {history}");
    }
    let hash = dhp_server::auth::hash_password(password);
    store
        .set_password(username, &hash, true, chrono::Utc::now().naive_utc())
        .await?;
    let by = format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "operator".into())
    );
    dhp_server::security::login::record_admin_act(
        store,
        &by,
        "password",
        username,
        "password reset; to be changed at the next login",
    )
    .await?;
    Ok(format!(
        "{username}: new password set; it must be changed at the next login"
    ))
}
