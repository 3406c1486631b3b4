//! Reading residents' records for the programme engine: one page of a cohort's
//! residents with every row the rules read, in a handful of statements per page.

use async_trait::async_trait;
use chrono::NaiveDate;
use dhp_core::access::Scope;
use dhp_core::programmes::ResidentRecord;
use dhp_core::Id;

use crate::rows;
use crate::shared::Backend;
use crate::shared::{scope_clause, Exec, Param};
use crate::{Batch, Result, Table};

/// Which residents a due list covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cohort {
    /// Every resident of the store.
    All,
    /// Residents living in a street or town.
    Area(Id),
    /// A community health centre's residents: those of its street or town, and those
    /// with a contract in force with the centre.
    Centre { centre: Id, area: Option<Id> },
    /// A family doctor's panel: residents with a contract in force with the doctor.
    Panel(Id),
    /// One resident.
    Resident(Id),
}

fn cohort_clause(
    cohort: &Cohort,
    today: NaiveDate,
    bind: &mut impl FnMut(Param) -> String,
) -> String {
    match cohort {
        Cohort::All => "1 = 1".into(),
        Cohort::Area(a) => format!("r.street_org_id = {}", bind(Param::I64(*a))),
        Cohort::Centre { centre, area } => scope_clause(
            &Scope::FamilyDoctor {
                centre: *centre,
                area: *area,
                practitioner: None,
            },
            today,
            bind,
        )
        .unwrap_or_else(|| "1 = 1".into()),
        Cohort::Panel(doctor) => {
            let t = bind(Param::Date(today));
            format!(
                "EXISTS (SELECT 1 FROM contracts c WHERE c.resident_id = r.id AND c.status <> 'ended' \
                 AND c.start_date <= {t} AND c.end_date >= {t} AND c.doctor_id = {})",
                bind(Param::I64(*doctor))
            )
        }
        Cohort::Resident(id) => format!("r.id = {}", bind(Param::I64(*id))),
    }
}

/// The page of `cohort`'s residents after `after`, in id order (`$n` parameters).
pub(crate) fn residents_statement(
    cohort: &Cohort,
    today: NaiveDate,
    after: Id,
    limit: i64,
) -> (String, Vec<Param>) {
    let mut params = vec![Param::I64(after), Param::I64(limit)];
    let clause = cohort_clause(cohort, today, &mut |p| {
        params.push(p);
        format!("${}", params.len())
    });
    let sql = format!(
        "SELECT {} FROM residents r WHERE r.id > $1 AND {clause} ORDER BY r.id LIMIT $2",
        rows::columns(Table::Residents)
            .split(", ")
            .map(|c| format!("r.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    (sql, params)
}

/// Rows of `table` of `cohort`'s residents with ids in `first..=last` (`$n` parameters).
pub(crate) fn rows_statement(
    table: Table,
    cohort: &Cohort,
    reading: Reading,
    today: NaiveDate,
    first: Id,
    last: Id,
) -> (String, Vec<Param>) {
    let mut params = vec![Param::I64(first), Param::I64(last)];
    let only = if table == Table::Encounters && reading == Reading::Programmes {
        " AND programme IS NOT NULL"
    } else {
        ""
    };
    let of_cohort = match cohort {
        Cohort::All => String::new(),
        _ => {
            let clause = cohort_clause(cohort, today, &mut |p| {
                params.push(p);
                format!("${}", params.len())
            });
            format!(" AND resident_id IN (SELECT r.id FROM residents r WHERE r.id >= $1 AND r.id <= $2 AND {clause})")
        }
    };
    let sql = format!(
        "SELECT {} FROM {} WHERE resident_id >= $1 AND resident_id <= $2{only}{of_cohort}",
        rows::columns(table),
        table.name()
    );
    (sql, params)
}

/// How much of each record to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// What the programme rules read: programme encounters only (not every outpatient
    /// visit), with all conditions, observations, immunizations and contracts.
    Programmes,
    /// Every row (the resident's page, visit figures).
    Full,
}

/// Up to `limit` residents of `cohort` with `id > after`, in id order, each with their
/// conditions, encounters, observations, immunizations and contracts. The five tables
/// are read at once, each on its own connection.
pub(crate) async fn records<E: Exec>(
    e: &E,
    cohort: &Cohort,
    reading: Reading,
    today: NaiveDate,
    after: Id,
    limit: i64,
) -> Result<Vec<ResidentRecord>> {
    let (sql, params) = residents_statement(cohort, today, after, limit);
    let residents = e
        .rows(&sql, params)
        .await?
        .iter()
        .map(rows::resident)
        .collect::<Result<Vec<_>>>()?;
    let (Some(first), Some(last)) = (
        residents.first().map(|r| r.id),
        residents.last().map(|r| r.id),
    ) else {
        return Ok(Vec::new());
    };
    let read = |table: Table| {
        let (sql, params) = rows_statement(table, cohort, reading, today, first, last);
        async move {
            let mut batch = Batch::default();
            for row in e.rows(&sql, params).await? {
                rows::push(&mut batch, table, &row)?;
            }
            Result::<Batch>::Ok(batch)
        }
    };
    let (contracts, encounters, conditions, observations, immunizations) = tokio::try_join!(
        read(Table::Contracts),
        read(Table::Encounters),
        read(Table::Conditions),
        read(Table::Observations),
        read(Table::Immunizations),
    )?;
    Ok(assemble(
        residents,
        [
            contracts,
            encounters,
            conditions,
            observations,
            immunizations,
        ],
    ))
}

/// The tables a resident's record is read from, besides `residents`.
pub(crate) const RECORD_TABLES: [Table; 5] = [
    Table::Contracts,
    Table::Encounters,
    Table::Conditions,
    Table::Observations,
    Table::Immunizations,
];

/// Residents with their rows (read in any number of parts), each row given to its
/// resident.
pub(crate) fn assemble(
    residents: Vec<dhp_core::Resident>,
    parts: impl IntoIterator<Item = Batch>,
) -> Vec<ResidentRecord> {
    let mut out: Vec<ResidentRecord> = residents.into_iter().map(ResidentRecord::new).collect();
    // Residents are in id order and rows mostly arrive in resident order: look at the
    // resident of the previous row first, else search.
    let ids: Vec<Id> = out.iter().map(|r| r.resident.id).collect();
    let mut cursor = 0usize;
    let mut at = |resident: Id| -> Option<usize> {
        if ids.get(cursor) != Some(&resident) {
            cursor = ids.binary_search(&resident).ok()?;
        }
        Some(cursor)
    };
    macro_rules! spread {
        ($rows:expr, $field:ident) => {
            for x in $rows {
                if let Some(i) = at(x.resident_id) {
                    out[i].$field.push(x);
                }
            }
        };
    }
    for batch in parts {
        spread!(batch.contracts, contracts);
        spread!(batch.encounters, encounters);
        spread!(batch.conditions, conditions);
        spread!(batch.observations, observations);
        spread!(batch.immunizations, immunizations);
    }
    out
}

/// What a backend may do its own way for [`CohortStore`].
#[async_trait]
pub trait BulkRecords {
    /// A faster read of `cohort`'s records than the shared statements, where the backend
    /// has one (`None`: use the shared path).
    async fn bulk_records(
        &self,
        _cohort: &crate::Cohort,
        _reading: crate::Reading,
        _today: NaiveDate,
        _after: Id,
        _limit: i64,
    ) -> Result<Option<Vec<dhp_core::programmes::ResidentRecord>>> {
        Ok(None)
    }
}

/// Programme reads: one page of a cohort's residents with every row the programme rules read.
#[async_trait]
pub trait CohortStore: Send + Sync {
    /// Up to `limit` residents of `cohort` (as of `today`) with `id > after`, in id order,
    /// each with the rows `reading` asks for.
    async fn programme_records(
        &self,
        cohort: &Cohort,
        reading: Reading,
        today: NaiveDate,
        after: Id,
        limit: i64,
    ) -> Result<Vec<dhp_core::programmes::ResidentRecord>>;
}

#[async_trait]
impl<B: Backend + BulkRecords> CohortStore for B {
    async fn programme_records(
        &self,
        cohort: &crate::Cohort,
        reading: crate::Reading,
        today: NaiveDate,
        after: Id,
        limit: i64,
    ) -> Result<Vec<dhp_core::programmes::ResidentRecord>> {
        if let Some(records) = self
            .bulk_records(cohort, reading, today, after, limit)
            .await?
        {
            return Ok(records);
        }
        crate::programmes::records(self.pool(), cohort, reading, today, after, limit).await
    }
}
