//! Failed logins inside the lockout window (等保三级: login failure handling): the rows
//! that lock an account and throttle a client address. Policy (how many, how long) is
//! the server's; the store only keeps and counts.

use chrono::NaiveDateTime;

use crate::rows::Col;
use crate::shared::{Exec, Param};
use crate::Result;

/// Failed logins since a moment: when each of one name's happened (oldest first), and
/// how many came from one client address (whatever name they tried).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginFailures {
    pub account: Vec<NaiveDateTime>,
    pub address: i64,
}

pub(crate) async fn record<E: Exec>(
    e: &E,
    username: &str,
    address: &str,
    at: NaiveDateTime,
    forget_before: NaiveDateTime,
) -> Result<()> {
    e.execute(
        "DELETE FROM login_failures WHERE at < $1",
        vec![Param::DateTime(forget_before)],
    )
    .await?;
    e.execute(
        "INSERT INTO login_failures (username, address, at) VALUES ($1, $2, $3)",
        vec![username.into(), address.into(), Param::DateTime(at)],
    )
    .await
}

pub(crate) async fn since<E: Exec>(
    e: &E,
    username: &str,
    address: &str,
    since: NaiveDateTime,
) -> Result<LoginFailures> {
    let account = e
        .rows(
            "SELECT at FROM login_failures WHERE username = $1 AND at >= $2 ORDER BY at",
            vec![username.into(), Param::DateTime(since)],
        )
        .await?
        .iter()
        .map(|r| r.datetime(0))
        .collect::<Result<Vec<_>>>()?;
    let address = e
        .rows(
            "SELECT COUNT(*) FROM login_failures WHERE address = $1 AND at >= $2",
            vec![address.into(), Param::DateTime(since)],
        )
        .await?
        .first()
        .map(|r| r.i64(0))
        .transpose()?
        .unwrap_or(0);
    Ok(LoginFailures { account, address })
}

pub(crate) async fn clear<E: Exec>(e: &E, username: &str) -> Result<()> {
    e.execute(
        "DELETE FROM login_failures WHERE username = $1",
        vec![username.into()],
    )
    .await
}
