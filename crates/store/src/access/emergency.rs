//! Emergency access ("break the glass"): a clinician outside a resident's scope, with a
//! reason, for a few hours. The store keeps the grants; who may, and for how long, is
//! `dhp_core::access`'s.

use chrono::NaiveDateTime;
use dhp_core::Id;

use crate::rows::Col;
use crate::shared::{Exec, Param};
use crate::Result;

/// One grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmergencyGrant {
    /// Time-ordered unique id (UUIDv7), assigned by the writer.
    pub id: String,
    pub username: String,
    pub role: String,
    pub org_id: Option<Id>,
    pub resident_id: Id,
    pub reason: String,
    pub granted: NaiveDateTime,
    pub expires: NaiveDateTime,
}

pub(crate) async fn insert<E: Exec>(e: &E, g: &EmergencyGrant) -> Result<()> {
    e.execute(
        "INSERT INTO emergency_access (id, username, role, org_id, resident_id, reason, granted, expires) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        vec![
            g.id.as_str().into(),
            g.username.as_str().into(),
            g.role.as_str().into(),
            Param::OptI64(g.org_id),
            Param::I64(g.resident_id),
            g.reason.as_str().into(),
            Param::DateTime(g.granted),
            Param::DateTime(g.expires),
        ],
    )
    .await
}

/// The accounts holding emergency access to `resident` at `now`.
pub(crate) async fn holders<E: Exec>(
    e: &E,
    resident: Id,
    now: NaiveDateTime,
) -> Result<Vec<String>> {
    e.rows(
        "SELECT DISTINCT username FROM emergency_access WHERE resident_id = $1 AND expires > $2 AND granted <= $2",
        vec![Param::I64(resident), Param::DateTime(now)],
    )
    .await?
    .iter()
    .map(|r| r.text(0))
    .collect()
}

pub(crate) async fn since<E: Exec>(
    e: &E,
    since: NaiveDateTime,
) -> Result<Vec<(EmergencyGrant, i64)>> {
    e.rows(
        "SELECT g.id, g.username, g.role, g.org_id, g.resident_id, g.reason, g.granted, g.expires, \
         (SELECT COUNT(*) FROM audit_events a WHERE a.resident_id = g.resident_id \
          AND a.username = g.username AND a.recorded >= g.granted AND a.recorded <= g.expires) \
         FROM emergency_access g WHERE g.granted >= $1 ORDER BY g.granted DESC, g.id DESC",
        vec![Param::DateTime(since)],
    )
    .await?
    .iter()
    .map(|r| {
        Ok((
            EmergencyGrant {
                id: r.text(0)?,
                username: r.text(1)?,
                role: r.text(2)?,
                org_id: r.oi64(3)?,
                resident_id: r.i64(4)?,
                reason: r.text(5)?,
                granted: r.datetime(6)?,
                expires: r.datetime(7)?,
            },
            r.i64(8)?,
        ))
    })
    .collect()
}
