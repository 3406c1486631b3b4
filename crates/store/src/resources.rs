//! FHIR resources as received, versioned: the current version in `resources`, earlier
//! ones in `resource_history`. A write also carries the core rows it projects to and
//! its audit entries, and lands in one transaction with them: all or nothing.

use async_trait::async_trait;
use dhp_core::Id;

use crate::rows::{stored_resource as decode, Col, RESOURCE_COLUMNS as COLUMNS};
pub use crate::rows::{Index, StoredResource};
use crate::shared::Backend;
use crate::shared::{Exec, Param};
use crate::{AuditEvent, Batch, Result, StoreError, Table};

/// What stands before a write: checked inside the transaction, so a write made on a
/// stale read fails with `Conflict` instead of overwriting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prior {
    /// A new resource: nothing may be stored under its id.
    Nothing,
    /// The stored current version (which moves to the history).
    Version(i64),
    /// A core row with no stored JSON yet (generated data): its FHIR form becomes
    /// version 1 in the history, and the write is version 2.
    Core { json: String, last_updated: String },
}

/// One resource write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceWrite {
    /// The new version, `json: None` to delete.
    pub resource: StoredResource,
    pub prior: Prior,
}

/// Everything one interaction or one Bundle writes, in one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteSet {
    pub resources: Vec<ResourceWrite>,
    /// Core rows to insert or replace (by id), projected from the resources.
    pub core: Batch,
    /// Core rows to delete (resources deleted). A row still referred to makes the
    /// whole set fail with `Conflict`.
    pub core_deletes: Vec<(Table, Id)>,
    pub audits: Vec<AuditEvent>,
    /// What must still hold when the set is written (else `Conflict`, nothing written).
    pub guards: Vec<Guard>,
    /// Settings written with the data (key, value), e.g. an import's mark that a file
    /// is in: committed together, so a crash cannot leave one without the other.
    pub meta: Vec<(String, String)>,
    /// Bookings into the slot pool (FHIR Appointments created `booked`), taken with
    /// the pool's capacity guard after the rows above are written.
    pub bookings: Vec<crate::Booking>,
    /// Holds on places of the pool (FHIR Appointments created `pending`, `$hold`):
    /// taken with the same guard, kept until `dhp_core::booking::hold_until`, each with
    /// the organisation holding it.
    pub holds: Vec<(crate::Booking, Option<dhp_core::Id>)>,
    /// Steps on appointments (an Appointment updated to cancelled, checked in …).
    pub appointment_steps: Vec<crate::AppointmentStep>,
}

/// A condition checked inside the write's transaction, for writes decided on rows read
/// before it (optimistic concurrency for rows without a stored version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    /// A resident's contracts are as read: how many, the largest id, how many ended.
    Contracts {
        resident_id: Id,
        count: i64,
        max_id: Id,
        ended: i64,
    },
    /// No resident matches `filter` within `scope` as of `today` (a conditional create,
    /// `If-None-Exist`): searched inside the write's transaction, so that two concurrent
    /// creates of one person cannot both pass. Fails with [`crate::StoreError::Exists`].
    NoResident {
        filter: Box<crate::ResidentFilter>,
        scope: dhp_core::access::Scope,
        today: chrono::NaiveDate,
    },
}

impl Guard {
    /// The guard of a resident's contracts as read.
    pub fn contracts(resident_id: Id, contracts: &[dhp_core::Contract]) -> Self {
        Guard::Contracts {
            resident_id,
            count: contracts.len() as i64,
            max_id: contracts.iter().map(|c| c.id).max().unwrap_or(0),
            ended: contracts
                .iter()
                .filter(|c| c.status == dhp_core::ContractStatus::Ended)
                .count() as i64,
        }
    }

    /// A statement that touches one row exactly when the guard holds (`None`: the
    /// guard is a search, checked by [`check_searches`]).
    pub(crate) fn statement(&self) -> Option<(String, Vec<Param>)> {
        Some(match self {
            Guard::NoResident { .. } => return None,
            Guard::Contracts {
                resident_id,
                count,
                max_id,
                ended,
            } => (
                "UPDATE residents SET id = id WHERE id = $1 \
                 AND (SELECT COUNT(*) FROM contracts WHERE resident_id = $1) = $2 \
                 AND (SELECT COALESCE(MAX(id), 0) FROM contracts WHERE resident_id = $1) = $3 \
                 AND (SELECT COUNT(*) FROM contracts WHERE resident_id = $1 AND status = 'ended') = $4"
                    .to_string(),
                vec![
                    Param::I64(*resident_id),
                    Param::I64(*count),
                    Param::I64(*max_id),
                    Param::I64(*ended),
                ],
            ),
        })
    }
}

/// Check the search guards of `w` on the open transaction `tx` (the caller took the
/// lock that keeps other conditional creates out until it commits).
pub(crate) async fn check_searches<E: Exec>(tx: &E, w: &WriteSet) -> Result<()> {
    for guard in &w.guards {
        if let Guard::NoResident {
            filter,
            scope,
            today,
        } = guard
        {
            let (found, _) =
                crate::search::search_residents(tx, filter, scope, *today, 1, 0).await?;
            if let Some(r) = found.first() {
                return Err(crate::StoreError::Exists(r.id));
            }
        }
    }
    Ok(())
}

impl WriteSet {
    /// Whether the set carries a search guard (a conditional create).
    pub fn has_search_guard(&self) -> bool {
        self.guards
            .iter()
            .any(|g| matches!(g, Guard::NoResident { .. }))
    }
}

impl WriteSet {
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
            && self.core.is_empty()
            && self.core_deletes.is_empty()
            && self.audits.is_empty()
            && self.meta.is_empty()
            && self.bookings.is_empty()
            && self.holds.is_empty()
            && self.appointment_steps.is_empty()
    }
}

/// The core table a resource type is projected to, if any.
pub fn core_table(kind: &str) -> Option<Table> {
    Some(match kind {
        "Patient" => Table::Residents,
        "Organization" => Table::Organisations,
        "Practitioner" | "PractitionerRole" => Table::Practitioners,
        "Encounter" => Table::Encounters,
        "Condition" => Table::Conditions,
        "Observation" => Table::Observations,
        "Immunization" => Table::Immunizations,
        "ImagingStudy" => Table::ImagingStudies,
        "CareTeam" => Table::Contracts,
        _ => return None,
    })
}

pub(crate) fn params(r: &StoredResource) -> [Param; 10] {
    [
        r.kind.as_str().into(),
        Param::I64(r.id),
        Param::I64(r.version_id),
        r.last_updated.as_str().into(),
        Param::OptI64(r.resident_id),
        Param::OptText(r.json.clone()),
        Param::OptText(r.status.clone()),
        Param::OptText(r.index.code.clone()),
        Param::OptText(r.index.date.clone()),
        Param::OptText(r.index.reference.clone()),
    ]
}

/// The current version (or tombstone) of a resource.
pub(crate) async fn current<E: Exec>(e: &E, kind: &str, id: Id) -> Result<Option<StoredResource>> {
    let rows = e
        .rows(
            &format!("SELECT {COLUMNS} FROM resources WHERE type = $1 AND id = $2"),
            vec![kind.into(), Param::I64(id)],
        )
        .await?;
    rows.first().map(decode).transpose()
}

/// The current versions of several resources of one type (missing ones left out).
pub(crate) async fn current_many<E: Exec>(
    e: &E,
    kind: &str,
    ids: &[Id],
) -> Result<Vec<StoredResource>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(500) {
        let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let mut p = vec![Param::from(kind)];
        p.extend(chunk.iter().map(|&i| Param::I64(i)));
        let rows = e
            .rows(
                &format!(
                    "SELECT {COLUMNS} FROM resources WHERE type = $1 AND id IN ({})",
                    marks.join(", ")
                ),
                p,
            )
            .await?;
        for r in &rows {
            out.push(decode(r)?);
        }
    }
    Ok(out)
}

/// Every version of a resource, newest first.
pub(crate) async fn versions<E: Exec>(e: &E, kind: &str, id: Id) -> Result<Vec<StoredResource>> {
    let rows = e
        .rows(
            &format!(
                "SELECT {COLUMNS} FROM resources WHERE type = $1 AND id = $2 \
                 UNION ALL SELECT {COLUMNS} FROM resource_history WHERE type = $1 AND id = $2 \
                 ORDER BY version_id DESC"
            ),
            vec![kind.into(), Param::I64(id)],
        )
        .await?;
    rows.iter().map(decode).collect()
}

/// Reserve `n` consecutive ids for new resources of `kind`; returns the first. The
/// sequence starts above every id already in the type's core table or stored, so a
/// generated district and resources created later never collide, and an id is never
/// handed out twice (ids of failed writes are skipped, as with any sequence).
pub(crate) async fn reserve_ids<E: Exec>(e: &E, kind: &str, n: i64) -> Result<Id> {
    if n < 1 {
        return Err(StoreError::Conflict(format!("cannot reserve {n} ids")));
    }
    // `WHERE true` keeps SQLite from reading ON CONFLICT as part of the SELECT.
    let floor = match core_table(kind).or((kind == "Household").then_some(Table::Households)) {
        Some(t) => format!("SELECT COALESCE(MAX(id), 0) AS m FROM {}", t.name()),
        None => "SELECT 0 AS m".to_string(),
    };
    let floors = format!(
        "{floor} \
         UNION ALL SELECT COALESCE(MAX(id), 0) AS m FROM resources WHERE type = $1 \
         UNION ALL SELECT COALESCE(MAX(id), 0) AS m FROM resource_history WHERE type = $1"
    );
    // Rows written with ids of their own (an import keeping its source ids) move the
    // sequence on: it never hands out an id at or below the largest in use. Each MAX
    // reads one end of a primary-key index. The sequence's own value is read from the
    // row being updated, never through a subquery: under PostgreSQL's read committed,
    // a writer that waited for another's lock re-reads the updated row, while a
    // subquery keeps its older snapshot and would hand both writers the same ids.
    let bump = format!(
        "UPDATE id_sequences SET next_id = (CASE \
           WHEN next_id - 1 >= (SELECT MAX(m) FROM ({floors}) AS f) THEN next_id - 1 \
           ELSE (SELECT MAX(m) FROM ({floors}) AS f) END) + 1 + $2 \
         WHERE name = $1 RETURNING next_id - $2"
    );
    let params = || vec![Param::from(kind), Param::I64(n)];
    if let Some(row) = e.rows(&bump, params()).await?.first() {
        return row.i64(0);
    }
    // The first reservation of this kind starts the sequence.
    e.execute(
        &format!(
            "INSERT INTO id_sequences (name, next_id) \
             SELECT $1, MAX(m) + 1 FROM ({floors}) AS floors \
             WHERE true ON CONFLICT (name) DO NOTHING"
        ),
        vec![kind.into()],
    )
    .await?;
    e.rows(&bump, params())
        .await?
        .first()
        .ok_or_else(|| StoreError::Corrupt(format!("id sequence {kind} is missing")))?
        .i64(0)
}

/// Rows per multi-row INSERT of resources: 10 parameters a row stays under both
/// backends' limits (SQLite 32,766; PostgreSQL 65,535).
pub(crate) const RESOURCE_CHUNK: usize = 3_000;

/// The statements of a [`WriteSet`]'s resource part, as (SQL, parameters, expected
/// row count) in order; `None` means any count. The backend runs them in its
/// transaction after the core rows.
///
/// `numbered`: `$n` placeholders (PostgreSQL); else `?` in order, which SQLite binds
/// in time linear in their number (a multi-row statement of thousands of `$n`
/// placeholders costs SQLite quadratic time).
pub(crate) fn resource_statements(
    w: &WriteSet,
    numbered: bool,
) -> Vec<(String, Vec<Param>, Option<u64>)> {
    let mut out = Vec::new();
    let mut creates: Vec<&StoredResource> = Vec::new();
    for write in &w.resources {
        let r = &write.resource;
        match &write.prior {
            Prior::Nothing => creates.push(r),
            Prior::Core { json, last_updated } => {
                let first = StoredResource {
                    version_id: 1,
                    last_updated: last_updated.clone(),
                    json: Some(json.clone()),
                    status: None,
                    index: Index::default(),
                    ..r.clone()
                };
                out.push((
                    format!(
                        "INSERT INTO resource_history ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                    ),
                    params(&first).to_vec(),
                    Some(1),
                ));
                creates.push(r);
            }
            Prior::Version(v) => {
                out.push((
                    format!(
                        "INSERT INTO resource_history ({COLUMNS}) SELECT {COLUMNS} FROM resources \
                         WHERE type = $1 AND id = $2 AND version_id = $3"
                    ),
                    vec![r.kind.as_str().into(), Param::I64(r.id), Param::I64(*v)],
                    Some(1),
                ));
                let mut p = params(r).to_vec();
                p.push(Param::I64(*v));
                out.push((
                    "UPDATE resources SET version_id = $3, last_updated = $4, resident_id = $5, json = $6, \
                     status = $7, code = $8, date = $9, ref = $10 \
                     WHERE type = $1 AND id = $2 AND version_id = $11"
                        .to_string(),
                    p,
                    Some(1),
                ));
            }
        }
    }
    for chunk in creates.chunks(RESOURCE_CHUNK) {
        let mut p = Vec::with_capacity(chunk.len() * 10);
        let mut rows = Vec::with_capacity(chunk.len());
        for r in chunk {
            rows.push(crate::shared::placeholders(p.len(), 10, numbered));
            p.extend(params(r));
        }
        out.push((
            format!(
                "INSERT INTO resources ({COLUMNS}) VALUES {}",
                rows.join(", ")
            ),
            p,
            Some(chunk.len() as u64),
        ));
    }
    for chunk in w.audits.chunks(3_000) {
        let (sql, p) = crate::audit::audit_insert(chunk, numbered);
        out.push((sql, p, None));
    }
    for (key, value) in &w.meta {
        out.push((
            crate::tables::SET_META.to_string(),
            vec![key.as_str().into(), value.as_str().into()],
            Some(1),
        ));
    }
    out
}

/// The statements deleting core rows, children before parents.
pub(crate) fn core_delete_statements(w: &WriteSet) -> Vec<(String, Vec<Param>)> {
    let mut deletes = w.core_deletes.clone();
    let rank = |t: Table| Table::ALL.iter().position(|&x| x == t).unwrap_or(0);
    deletes.sort_by_key(|(t, _)| std::cmp::Reverse(rank(*t)));
    deletes
        .into_iter()
        .map(|(t, id)| {
            (
                format!("DELETE FROM {} WHERE id = $1", t.name()),
                vec![Param::I64(id)],
            )
        })
        .collect()
}

/// Run a write set's statements on an open transaction `$tx` of either backend, with
/// `$write_rows` (the backend's bulk upsert of core rows). Expands to a block that
/// returns `Result<()>`; the caller commits.
macro_rules! run_write_set {
    ($tx:expr, $w:expr, $write_rows:expr, $numbered:expr) => {{
        let w: &$crate::resources::WriteSet = $w;
        for (sql, params) in w.guards.iter().filter_map(|g| g.statement()) {
            let done = $crate::shared::bind_all!(sqlx::query(&sql), params)
                .execute(&mut *$tx)
                .await?
                .rows_affected();
            if done != 1 {
                return Err($crate::StoreError::Conflict(
                    "the records changed since they were read; read them again".into(),
                ));
            }
        }
        for (sql, params) in $crate::resources::core_delete_statements(w) {
            $crate::shared::bind_all!(sqlx::query(&sql), params)
                .execute(&mut *$tx)
                .await
                .map_err(|e| match $crate::shared::conflict(e) {
                    $crate::StoreError::Conflict(_) => $crate::StoreError::Conflict(
                        "the record is still referred to by other records".into(),
                    ),
                    other => other,
                })?;
        }
        $write_rows(&mut *$tx, &w.core).await?;
        for (sql, params, expect) in $crate::resources::resource_statements(w, $numbered) {
            let done = $crate::shared::bind_all!(sqlx::query(&sql), params)
                .execute(&mut *$tx)
                .await
                .map_err($crate::shared::conflict)?
                .rows_affected();
            if let Some(n) = expect {
                if done != n {
                    return Err($crate::StoreError::Conflict(
                        "a resource changed since it was read (version conflict)".into(),
                    ));
                }
            }
        }
        $crate::Result::<()>::Ok(())
    }};
}
pub(crate) use run_write_set;

/// What a backend does its own way for [`ResourceStore`].
#[async_trait]
pub trait WriteSets {
    /// Write a [`WriteSet`] in one transaction: all or nothing.
    async fn write_set(&self, set: &WriteSet) -> Result<()>;
}

/// FHIR resources as received and their history: a write set in one transaction, current and earlier versions, and ids reserved for new resources.
#[async_trait]
pub trait ResourceStore: Send + Sync {
    /// Write resources, the core rows they project to and their audit entries in one
    /// transaction. `Conflict` (and nothing written) when a prior version no longer
    /// holds, an id is taken, or a deleted row is still referred to.
    async fn write_resources(&self, set: &WriteSet) -> Result<()>;
    /// The current version (or the tombstone) of a stored resource; `None` if the
    /// resource was never written through the API (generated rows have no stored JSON).
    async fn resource(&self, kind: &str, id: Id) -> Result<Option<StoredResource>>;
    /// The current versions of several resources of one type; missing ones left out.
    async fn resources(&self, kind: &str, ids: &[Id]) -> Result<Vec<StoredResource>>;
    /// Every stored version of a resource, newest first.
    async fn resource_versions(&self, kind: &str, id: Id) -> Result<Vec<StoredResource>>;
    /// Reserve `n` new ids for resources of `kind`; returns the first of them.
    async fn reserve_ids(&self, kind: &str, n: i64) -> Result<Id>;
}

#[async_trait]
impl<B: Backend + WriteSets> ResourceStore for B {
    async fn write_resources(&self, set: &WriteSet) -> Result<()> {
        self.write_set(set).await?;
        crate::shared::crash_point();
        Ok(())
    }
    async fn resource(&self, kind: &str, id: Id) -> Result<Option<StoredResource>> {
        current(self.pool(), kind, id).await
    }
    async fn resources(&self, kind: &str, ids: &[Id]) -> Result<Vec<StoredResource>> {
        current_many(self.pool(), kind, ids).await
    }
    async fn resource_versions(&self, kind: &str, id: Id) -> Result<Vec<StoredResource>> {
        versions(self.pool(), kind, id).await
    }
    async fn reserve_ids(&self, kind: &str, n: i64) -> Result<Id> {
        reserve_ids(self.pool(), kind, n).await
    }
}
