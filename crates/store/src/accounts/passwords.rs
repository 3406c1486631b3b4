//! The password life cycle of an account: when it was last set, whether it must be
//! changed at the next login, and the hashes it replaced. Policy (how old, how many
//! remembered) is `dhp_core::password`'s; the store keeps and counts.

use chrono::NaiveDateTime;

use crate::rows::Col;
use crate::shared::{Exec, Param};
use crate::{Result, StoreError};

/// Hashes kept per account; older ones go (more than any policy remembers).
pub const HISTORY_KEPT: i64 = 24;

/// Where an account's password stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordState {
    /// When it was last set; `None` for an account made before the date was kept.
    pub changed_at: Option<NaiveDateTime>,
    /// It must be changed at the next login.
    pub must_change: bool,
    /// The hashes it replaced, newest first (never the passwords).
    pub previous: Vec<String>,
}

pub(crate) async fn state<E: Exec>(e: &E, username: &str, history: i64) -> Result<PasswordState> {
    let row = e
        .rows(
            "SELECT password_changed_at, must_change_password FROM users WHERE username = $1",
            vec![username.into()],
        )
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::NotFound(format!("user {username}")))?;
    let previous = e
        .rows(
            "SELECT password_hash FROM password_history WHERE username = $1 \
             ORDER BY replaced_at DESC LIMIT $2",
            vec![username.into(), Param::I64(history.max(0))],
        )
        .await?
        .iter()
        .map(|r| r.text(0))
        .collect::<Result<Vec<_>>>()?;
    Ok(PasswordState {
        changed_at: row.odatetime(0)?,
        must_change: row.i64(1)? != 0,
        previous,
    })
}

/// Set `username`'s password hash (the old one goes to the history), in the
/// transaction `e` is.
pub(crate) async fn set<E: Exec>(
    e: &E,
    username: &str,
    hash: &str,
    must_change: bool,
    at: NaiveDateTime,
) -> Result<()> {
    if e.rows(
        "SELECT 1 FROM users WHERE username = $1",
        vec![username.into()],
    )
    .await?
    .is_empty()
    {
        return Err(StoreError::NotFound(format!("user {username}")));
    }
    e.execute(
        "INSERT INTO password_history (username, password_hash, replaced_at) \
         SELECT username, password_hash, $2 FROM users WHERE username = $1",
        vec![username.into(), Param::DateTime(at)],
    )
    .await?;
    e.execute(
        "UPDATE users SET password_hash = $2, password_changed_at = $3, must_change_password = $4 \
         WHERE username = $1",
        vec![
            username.into(),
            hash.into(),
            Param::DateTime(at),
            Param::I64(i64::from(must_change)),
        ],
    )
    .await?;
    e.execute(
        "DELETE FROM password_history WHERE username = $1 AND replaced_at < (\
         SELECT MIN(replaced_at) FROM (SELECT replaced_at FROM password_history \
         WHERE username = $1 ORDER BY replaced_at DESC LIMIT $2) AS kept)",
        vec![username.into(), Param::I64(HISTORY_KEPT)],
    )
    .await
}

/// Mark `username`'s password as set at `at` if no date is on record (the first login
/// after the date began to be kept).
pub(crate) async fn date_if_unknown<E: Exec>(
    e: &E,
    username: &str,
    at: NaiveDateTime,
) -> Result<()> {
    e.execute(
        "UPDATE users SET password_changed_at = $2 WHERE username = $1 AND password_changed_at IS NULL",
        vec![username.into(), Param::DateTime(at)],
    )
    .await
}

/// Whether `username` must change the password at the next login.
pub(crate) async fn require_change<E: Exec>(e: &E, username: &str, must: bool) -> Result<()> {
    e.execute(
        "UPDATE users SET must_change_password = $2 WHERE username = $1",
        vec![username.into(), Param::I64(i64::from(must))],
    )
    .await
}
