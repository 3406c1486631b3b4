//! The audit log: entries appended, read by resident, sealed into the chain, verified, and archived.

pub(crate) mod chain;

use async_trait::async_trait;
use dhp_core::Id;

use crate::rows::Col;
use crate::shared::{placeholders, Backend, Exec, Param};
use crate::{AuditEvent, ChainHead, ChainReport, Result, SealedAudit, StoreError};

pub(crate) const AUDIT_COLUMNS: &str =
    "id, recorded, username, role, org_id, resident_id, action, resource, outcome, detail";

fn audit_params(a: &AuditEvent) -> [Param; 10] {
    [
        a.id.as_str().into(),
        Param::DateTime(a.recorded),
        a.username.as_str().into(),
        a.role.as_str().into(),
        Param::OptI64(a.org_id),
        Param::OptI64(a.resident_id),
        a.action.as_str().into(),
        a.resource.as_str().into(),
        a.outcome.as_str().into(),
        a.detail.as_str().into(),
    ]
}

/// One multi-row INSERT (a single statement is atomic on both backends).
/// `numbered`: `$n` placeholders (PostgreSQL), else `?` (SQLite binds thousands of
/// `$n` in quadratic time).
pub(crate) async fn insert_audits<E: Exec>(
    e: &E,
    events: &[AuditEvent],
    numbered: bool,
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    // 10 parameters a row; both backends take 3,000 rows' worth in one statement.
    if events.len() > 3_000 {
        return Err(StoreError::Conflict(
            "at most 3,000 audit entries at once".into(),
        ));
    }
    let (sql, params) = audit_insert(events, numbered);
    e.execute(&sql, params).await
}

/// The multi-row INSERT of audit entries (at most 3,000); see
/// [`placeholders`] for `numbered`.
pub(crate) fn audit_insert(events: &[AuditEvent], numbered: bool) -> (String, Vec<Param>) {
    let mut params = Vec::with_capacity(events.len() * 10);
    let mut rows = Vec::with_capacity(events.len());
    for a in events {
        rows.push(placeholders(params.len(), 10, numbered));
        params.extend(audit_params(a));
    }
    (
        format!(
            "INSERT INTO audit_events ({AUDIT_COLUMNS}) VALUES {}",
            rows.join(", ")
        ),
        params,
    )
}

pub(crate) async fn audit_events<E: Exec>(
    e: &E,
    resident_id: Option<Id>,
    limit: i64,
) -> Result<Vec<AuditEvent>> {
    let rows = match resident_id {
        Some(r) => {
            e.rows(
                &format!("SELECT {AUDIT_COLUMNS} FROM audit_events WHERE resident_id = $1 ORDER BY recorded DESC, id DESC LIMIT $2"),
                vec![Param::I64(r), Param::I64(limit)],
            )
            .await?
        }
        None => {
            e.rows(
                &format!("SELECT {AUDIT_COLUMNS} FROM audit_events ORDER BY recorded DESC, id DESC LIMIT $1"),
                vec![Param::I64(limit)],
            )
            .await?
        }
    };
    rows.iter().map(audit_event).collect()
}

/// One page of the audit log, newest first: entries of `resident` (any when `None`)
/// recorded within `recorded` (UTC), after the place `before` (the recorded time and
/// id of the last entry of the page before), at most `limit`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    pub resident: Option<Id>,
    /// Leave out the entries of this account (a resident's own acts on their record),
    /// but not failed sign-ins under its name.
    pub not_username: Option<String>,
    pub recorded: Vec<dhp_core::query::DateCond>,
    pub before: Option<(chrono::NaiveDateTime, String)>,
    pub limit: i64,
}

impl AuditQuery {
    /// The place `before` a page link gives (`{UTC nanoseconds}_{id}`, as
    /// [`AuditEvent::place`] writes it), or `None` when it is not one.
    pub fn parse_place(v: &str) -> Option<(chrono::NaiveDateTime, String)> {
        let (nanos, id) = v.split_once('_')?;
        let at = chrono::DateTime::from_timestamp_nanos(nanos.parse().ok()?).naive_utc();
        // Entry ids are UUIDs (36 characters, hex digits and dashes).
        let uuid = id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
        uuid.then(|| (at, id.to_string()))
    }
}

impl AuditEvent {
    /// Where this entry stands in the newest-first order, for the link to the page
    /// after it.
    pub fn place(&self) -> String {
        // Nanoseconds, as the entry's time is kept: a coarser place would drop the
        // entries of the same microsecond that follow it.
        let at = self.recorded.and_utc();
        let nanos = at
            .timestamp_nanos_opt()
            .unwrap_or_else(|| at.timestamp_micros().saturating_mul(1_000));
        format!("{nanos}_{}", self.id)
    }
}

pub(crate) async fn audit_page<E: Exec>(e: &E, q: &AuditQuery) -> Result<Vec<AuditEvent>> {
    use dhp_core::query::DateCond;
    let mut wheres = Vec::new();
    let mut params = Vec::new();
    let p = |v: Param, params: &mut Vec<Param>| {
        params.push(v);
        format!("${}", params.len())
    };
    if let Some(r) = q.resident {
        wheres.push(format!("resident_id = {}", p(Param::I64(r), &mut params)));
    }
    if let Some(u) = &q.not_username {
        // A failed sign-in under the account's name is not the account's own act.
        wheres.push(format!(
            "(username <> {} OR (action IN ('login', 'password') AND outcome <> 'success'))",
            p(u.as_str().into(), &mut params)
        ));
    }
    for c in &q.recorded {
        wheres.push(match *c {
            DateCond::Ge(t) => format!("recorded >= {}", p(Param::DateTime(t), &mut params)),
            DateCond::Lt(t) => format!("recorded < {}", p(Param::DateTime(t), &mut params)),
            DateCond::Outside(a, b) => {
                let a = p(Param::DateTime(a), &mut params);
                let b = p(Param::DateTime(b), &mut params);
                format!("(recorded < {a} OR recorded >= {b})")
            }
        });
    }
    if let Some((t, id)) = &q.before {
        let t1 = p(Param::DateTime(*t), &mut params);
        let t2 = p(Param::DateTime(*t), &mut params);
        let id = p(id.as_str().into(), &mut params);
        wheres.push(format!(
            "(recorded < {t1} OR (recorded = {t2} AND id < {id}))"
        ));
    }
    let limit = p(Param::I64(q.limit), &mut params);
    let filter = if wheres.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", wheres.join(" AND "))
    };
    let rows = e
        .rows(
            &format!("SELECT {AUDIT_COLUMNS} FROM audit_events {filter} ORDER BY recorded DESC, id DESC LIMIT {limit}"),
            params,
        )
        .await?;
    rows.iter().map(audit_event).collect()
}

/// An audit entry from a row of [`AUDIT_COLUMNS`] (more columns may follow).
pub(crate) fn audit_event<R: Col>(r: &R) -> Result<AuditEvent> {
    Ok(AuditEvent {
        id: r.text(0)?,
        recorded: r.datetime(1)?,
        username: r.text(2)?,
        role: r.text(3)?,
        org_id: r.oi64(4)?,
        resident_id: r.oi64(5)?,
        action: r.text(6)?,
        resource: r.text(7)?,
        outcome: r.text(8)?,
        detail: r.text(9)?,
    })
}

/// The audit log: entries appended, read by resident, sealed into the chain, verified, and archived.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Append to the audit log.
    async fn insert_audit(&self, event: &AuditEvent) -> Result<()>;
    /// Append several entries in one transaction (all or none).
    async fn insert_audits(&self, events: &[AuditEvent]) -> Result<()>;
    /// The audit log, newest first, at most `limit` entries, optionally for one resident.
    async fn audit_events(&self, resident_id: Option<Id>, limit: i64) -> Result<Vec<AuditEvent>>;
    /// One page of the audit log (see [`AuditQuery`]).
    async fn audit_page(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>>;
    /// Seal every audit entry written so far into the hash chain (in batches, one
    /// process at a time): how many were sealed.
    async fn seal_audit(&self) -> Result<u64>;
    /// The audit chain's head.
    async fn audit_head(&self) -> Result<ChainHead>;
    /// Check the audit chain from the last archived entry to the head (`progress` is
    /// told how many entries are checked so far).
    async fn verify_audit(&self, progress: &mut (dyn FnMut(u64) + Send)) -> Result<ChainReport>;
    /// Sealed audit entries after chain place `after`, in chain order, at most `limit`.
    async fn sealed_audit(&self, after: i64, limit: i64) -> Result<Vec<SealedAudit>>;
    /// Remove the sealed audit entries up to chain place `upto` (archived), keeping
    /// `upto_hash` as where the chain in the table now starts: how many were removed.
    async fn forget_archived_audit(&self, upto: i64, upto_hash: &str) -> Result<u64>;
}

#[async_trait]
impl<B: Backend> AuditStore for B {
    async fn insert_audit(&self, event: &AuditEvent) -> Result<()> {
        insert_audits(
            self.pool(),
            std::slice::from_ref(event),
            self.name() == "postgres",
        )
        .await
    }
    async fn insert_audits(&self, events: &[AuditEvent]) -> Result<()> {
        insert_audits(self.pool(), events, self.name() == "postgres").await
    }
    async fn audit_events(&self, resident_id: Option<Id>, limit: i64) -> Result<Vec<AuditEvent>> {
        audit_events(self.pool(), resident_id, limit).await
    }
    async fn audit_page(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>> {
        audit_page(self.pool(), q).await
    }
    async fn seal_audit(&self) -> Result<u64> {
        let mut total = 0;
        loop {
            let tx = self.begin_write().await?;
            let n = crate::audit::chain::seal_batch(tx, self.name() == "postgres").await?;
            total += n;
            if n == 0 {
                return Ok(total);
            }
        }
    }
    async fn audit_head(&self) -> Result<crate::ChainHead> {
        crate::audit::chain::head(self.pool(), false).await
    }
    async fn verify_audit(
        &self,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<crate::ChainReport> {
        crate::audit::chain::verify(self.pool(), progress).await
    }
    async fn sealed_audit(&self, after: i64, limit: i64) -> Result<Vec<crate::SealedAudit>> {
        crate::audit::chain::sealed(self.pool(), after, limit).await
    }
    async fn forget_archived_audit(&self, upto: i64, upto_hash: &str) -> Result<u64> {
        let tx = self.begin_write().await?;
        crate::audit::chain::forget_archived(tx, self.name() == "postgres", upto, upto_hash).await
    }
}
