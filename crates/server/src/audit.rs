//! Writing the audit log. Fail closed: when the audit entry cannot be written, the
//! access it describes is refused.

use chrono::Utc;
use dhp_core::access::Principal;
use dhp_core::Id;
use dhp_store::{AuditEvent, Store, StoreError, User};

/// Who is acting, for an audit entry (a failed login has no principal yet).
#[derive(Debug, Clone)]
pub struct Actor {
    pub username: String,
    pub role: String,
    pub org_id: Option<Id>,
}

impl Actor {
    /// Someone not (yet) identified: a failed login names who they claimed to be; a
    /// request without a valid token names nobody.
    pub fn unverified(claimed: &str) -> Self {
        Self {
            username: claimed.to_string(),
            role: String::new(),
            org_id: None,
        }
    }
}

impl From<&User> for Actor {
    fn from(u: &User) -> Self {
        Self {
            username: u.username.clone(),
            role: u.role.clone(),
            org_id: u.org_id,
        }
    }
}

impl From<&Principal> for Actor {
    fn from(p: &Principal) -> Self {
        Self {
            username: p.username.clone(),
            role: p.role.as_str().to_string(),
            org_id: p.org_id,
        }
    }
}

/// An entry for `actor`, stamped now.
pub fn entry(
    actor: &Actor,
    action: &str,
    resource: &str,
    resident_id: Option<Id>,
    outcome: &str,
    detail: &str,
) -> AuditEvent {
    AuditEvent {
        id: uuid::Uuid::now_v7().to_string(),
        recorded: Utc::now().naive_utc(),
        username: actor.username.clone(),
        role: actor.role.clone(),
        org_id: actor.org_id,
        resident_id,
        action: action.to_string(),
        resource: resource.to_string(),
        outcome: outcome.to_string(),
        detail: detail.to_string(),
    }
}

/// Append one entry.
pub async fn record(
    store: &dyn Store,
    actor: &Actor,
    action: &str,
    resource: &str,
    resident_id: Option<Id>,
    outcome: &str,
    detail: &str,
) -> Result<(), StoreError> {
    store
        .insert_audit(&entry(
            actor,
            action,
            resource,
            resident_id,
            outcome,
            detail,
        ))
        .await
}
