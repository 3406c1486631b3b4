//! Accounts: users, failed logins (lockout and throttling) and the password life cycle.

pub(crate) mod logins;
pub(crate) mod passwords;

use async_trait::async_trait;
use chrono::NaiveDateTime;

use crate::rows::{self};
use crate::shared::{one, Backend, Commit, Exec, Param};
use crate::{LoginFailures, PasswordState, Result, User};

pub(crate) async fn insert_user<E: Exec>(e: &E, u: &User) -> Result<()> {
    e.execute(
        "INSERT INTO users (id, username, password_hash, role, display_name, org_id, practitioner_id, resident_id, password_changed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        vec![
            Param::I64(u.id),
            u.username.as_str().into(),
            u.password_hash.as_str().into(),
            u.role.as_str().into(),
            u.display_name.as_str().into(),
            Param::OptI64(u.org_id),
            Param::OptI64(u.practitioner_id),
            Param::OptI64(u.resident_id),
            Param::DateTime(chrono::Utc::now().naive_utc()),
        ],
    )
    .await
}

pub(crate) async fn user_by_username<E: Exec>(e: &E, username: &str) -> Result<User> {
    let sql = format!(
        "SELECT {} FROM users WHERE username = $1",
        rows::USER_COLUMNS
    );
    rows::user(
        &one(e, &sql, vec![username.into()], || {
            format!("user {username}")
        })
        .await?,
    )
}

pub(crate) async fn users<E: Exec>(e: &E) -> Result<Vec<User>> {
    let sql = format!("SELECT {} FROM users ORDER BY id", rows::USER_COLUMNS);
    e.rows(&sql, vec![]).await?.iter().map(rows::user).collect()
}

/// Accounts: users, failed logins (lockout and throttling) and the password life cycle.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Add a login account; `Conflict` if the username is taken.
    async fn insert_user(&self, user: &User) -> Result<()>;
    async fn user_by_username(&self, username: &str) -> Result<User>;
    async fn users(&self) -> Result<Vec<User>>;
    /// Record a failed login of `username` (known or not) from client `address` at `at`,
    /// forgetting every failure before `forget_before`.
    async fn record_login_failure(
        &self,
        username: &str,
        address: &str,
        at: NaiveDateTime,
        forget_before: NaiveDateTime,
    ) -> Result<()>;
    /// Failed logins since `since`: `username`'s, oldest first, and how many came from
    /// `address`.
    async fn login_failures(
        &self,
        username: &str,
        address: &str,
        since: NaiveDateTime,
    ) -> Result<LoginFailures>;
    /// Forget `username`'s failed logins (it signed in, or an administrator unlocked it).
    async fn clear_login_failures(&self, username: &str) -> Result<()>;
    /// Where `username`'s password stands, with the `history` hashes it last replaced.
    async fn password_state(&self, username: &str, history: usize) -> Result<PasswordState>;
    /// Set `username`'s password hash at `at` (the old hash is remembered), and whether
    /// it must be changed at the next login; one transaction.
    async fn set_password(
        &self,
        username: &str,
        hash: &str,
        must_change: bool,
        at: NaiveDateTime,
    ) -> Result<()>;
    /// Whether `username` must change the password at the next login; with `dated`, a
    /// password with no date on record counts as set then.
    async fn require_password_change(
        &self,
        username: &str,
        must: bool,
        dated: Option<NaiveDateTime>,
    ) -> Result<()>;
}

#[async_trait]
impl<B: Backend> AccountStore for B {
    async fn insert_user(&self, user: &User) -> Result<()> {
        insert_user(self.pool(), user).await
    }
    async fn user_by_username(&self, username: &str) -> Result<User> {
        user_by_username(self.pool(), username).await
    }
    async fn users(&self) -> Result<Vec<User>> {
        users(self.pool()).await
    }
    async fn record_login_failure(
        &self,
        username: &str,
        address: &str,
        at: NaiveDateTime,
        forget_before: NaiveDateTime,
    ) -> Result<()> {
        crate::accounts::logins::record(self.pool(), username, address, at, forget_before).await
    }
    async fn login_failures(
        &self,
        username: &str,
        address: &str,
        since: NaiveDateTime,
    ) -> Result<crate::LoginFailures> {
        crate::accounts::logins::since(self.pool(), username, address, since).await
    }
    async fn clear_login_failures(&self, username: &str) -> Result<()> {
        crate::accounts::logins::clear(self.pool(), username).await
    }
    async fn password_state(&self, username: &str, history: usize) -> Result<crate::PasswordState> {
        crate::accounts::passwords::state(self.pool(), username, history as i64).await
    }
    async fn set_password(
        &self,
        username: &str,
        hash: &str,
        must_change: bool,
        at: NaiveDateTime,
    ) -> Result<()> {
        let tx = self.begin_write().await?;
        crate::accounts::passwords::set(&tx, username, hash, must_change, at).await?;
        tx.commit().await
    }
    async fn require_password_change(
        &self,
        username: &str,
        must: bool,
        dated: Option<NaiveDateTime>,
    ) -> Result<()> {
        let tx = self.begin_write().await?;
        crate::accounts::passwords::require_change(&tx, username, must).await?;
        if let Some(at) = dated {
            crate::accounts::passwords::date_if_unknown(&tx, username, at).await?;
        }
        tx.commit().await
    }
}
