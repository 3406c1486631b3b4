//! `dhp user add` and `dhp client add`: accounts checked against the registry before
//! they are written.

use anyhow::{bail, Result};
use dhp_core::access::Role;
use dhp_store::{Store, StoreError};

use dhp_server::accounts::AccountError;
pub use dhp_server::accounts::NewAccount;

/// Validate and write one account; answers a one-line description. Its owner changes
/// the password at the first login (a machine's secret stays as set).
pub async fn add(store: &dyn Store, a: NewAccount) -> Result<String> {
    let (user, org) = match dhp_server::accounts::create(store, a, true).await {
        Ok(made) => made,
        Err(AccountError::Store(e)) => return Err(e.into()),
        // The field is the command's flag.
        Err(e @ AccountError::Password(_)) => bail!("{e}"),
        Err(e) => bail!("--{e}"),
    };
    Ok(format!(
        "{} {} ({}{})",
        if user.role == Role::System.as_str() {
            "client"
        } else {
            "user"
        },
        user.username,
        user.role,
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
