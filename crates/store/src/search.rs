//! Searches over the core record tables ([`RecordQuery`] → SQL), within an access scope.
//! Resident-owned tables are limited to the residents the scope allows; the registry
//! (organisations, practitioners) is readable by every signed-in account.

use async_trait::async_trait;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use dhp_core::access::Scope;
use dhp_core::query::{DateCond, Field, Filter, RecordQuery};

use crate::rows::StoredResource;
use crate::rows::{self, Col};
use crate::shared::Backend;
use crate::shared::{one, scope_clause, Exec, Param};
use crate::{Batch, ResidentFilter, Result, StoreError, Table};
use dhp_core::Resident;

/// How a date column is compared.
#[derive(Clone, Copy)]
enum When {
    Day,
    Instant,
    /// Local time as text, `YYYY-MM-DDTHH:MM:SS` (resources kept as received).
    Text,
}

/// What a search reads: a core table, or resources kept as received (their search
/// columns in `resources`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Source {
    Core(Table),
    Stored { resident_owned: bool },
}

/// The SQL of a field of a resource kept as received (alias `t` = `resources`).
fn stored_column(field: Field) -> Option<(&'static str, Option<When>)> {
    Some(match field {
        Field::Id => ("t.id", None),
        Field::Resident => ("t.resident_id", None),
        Field::Status => ("t.status", None),
        Field::Code => ("t.code", None),
        Field::Date => ("t.date", Some(When::Text)),
        Field::Reference => ("t.ref", None),
        Field::LastUpdated => ("t.last_updated", None),
        _ => return None,
    })
}

/// The SQL of a field of `table` (alias `t`; stored resource `s`), if it has one.
fn column(table: Table, field: Field) -> Option<(&'static str, Option<When>)> {
    use Field::*;
    use Table::*;
    Some(match (table, field) {
        (_, Id) => ("t.id", None),
        (
            Encounters | Conditions | Observations | Immunizations | ImagingStudies | Contracts,
            Resident,
        ) => ("t.resident_id", None),
        (Residents, Resident) => ("t.id", None),
        (Residents, Org) => ("t.street_org_id", None),
        (Residents, Date) => ("t.birth_date", Some(When::Day)),
        (Residents, Name) => ("t.name", None),
        (Encounters, Date) => ("t.start_time", Some(When::Instant)),
        (Encounters, Org) => ("t.org_id", None),
        (Encounters, Practitioner) => ("t.practitioner_id", None),
        (Encounters, Status) => ("COALESCE(s.status, 'finished')", None),
        (Conditions, Code) => ("t.icd10", None),
        (Conditions, Date) => ("t.onset", Some(When::Day)),
        (Conditions, Org) => ("t.org_id", None),
        (Conditions, Status) => ("COALESCE(s.status, 'active')", None),
        (Observations, Code) => ("t.code", None),
        (Observations, Date) => ("t.effective", Some(When::Instant)),
        (Observations, Encounter) => ("t.encounter_id", None),
        (Observations, Status) => ("COALESCE(s.status, 'final')", None),
        (Immunizations, Code) => ("t.vaccine", None),
        (Immunizations, Date) => ("t.date", Some(When::Day)),
        (Immunizations, Org) => ("t.org_id", None),
        (Immunizations, Status) => ("COALESCE(s.status, 'completed')", None),
        (ImagingStudies, Code) => ("t.modality", None),
        (ImagingStudies, Date) => ("t.started", Some(When::Instant)),
        (ImagingStudies, Encounter) => ("t.encounter_id", None),
        (ImagingStudies, Org) => ("t.org_id", None),
        (ImagingStudies, Status) => ("COALESCE(s.status, 'available')", None),
        (ImagingStudies, Identifier) => ("t.uid", None),
        (Contracts, Date) => ("t.start_date", Some(When::Day)),
        (Contracts, Org) => ("t.centre_org_id", None),
        (Contracts, Practitioner) => ("t.doctor_id", None),
        (Contracts, Status) => (
            "(CASE t.status WHEN 'active' THEN 'active' ELSE 'inactive' END)",
            None,
        ),
        (Organisations, Code) => ("t.code", None),
        (Organisations, Name) => ("t.name_zh", None),
        (Organisations, Parent) => ("t.parent_id", None),
        (Practitioners, Code) => ("t.role", None),
        (Practitioners, Name) => ("t.name", None),
        (Practitioners, Org) => ("t.org_id", None),
        (_, LastUpdated) => ("COALESCE(s.last_updated, $gen)", None),
        _ => return None,
    })
}

/// The column naming the resident a row belongs to, for tables of resident data.
fn resident_column(table: Table) -> Option<&'static str> {
    match table {
        Table::Residents => Some("t.id"),
        Table::Encounters
        | Table::Conditions
        | Table::Observations
        | Table::Immunizations
        | Table::ImagingStudies
        | Table::Contracts => Some("t.resident_id"),
        Table::Organisations | Table::Practitioners | Table::Households => None,
    }
}

/// The first day whose start is at or after `t`.
fn day_ceil(t: NaiveDateTime) -> NaiveDate {
    if t.time() == NaiveTime::MIN {
        t.date()
    } else {
        t.date().succ_opt().unwrap_or(t.date())
    }
}

/// The LIKE pattern of a text search.
fn like(text: &str, contains: bool) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    if contains {
        p.push('%');
    }
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// Builds the WHERE clause and its parameters.
struct Sql {
    params: Vec<Param>,
    clauses: Vec<String>,
    /// The stored resource row (`s`) is needed.
    joins_stored: bool,
}

impl Sql {
    fn bind(&mut self, p: Param) -> String {
        self.params.push(p);
        format!("${}", self.params.len())
    }

    /// A field's SQL; `$gen` stands for the generated records' last-updated time.
    fn expr(
        &mut self,
        source: Source,
        field: Field,
        generated: &str,
    ) -> Result<(String, Option<When>)> {
        let found = match source {
            Source::Core(table) => column(table, field),
            Source::Stored { .. } => stored_column(field),
        };
        let (sql, when) = found.ok_or_else(|| {
            StoreError::Invalid(format!("{source:?} cannot be searched by {field:?}"))
        })?;
        if matches!(source, Source::Core(_)) && sql.contains("s.") {
            self.joins_stored = true;
        }
        let sql = if sql.contains("$gen") {
            let g = self.bind(Param::Text(generated.to_string()));
            sql.replace("$gen", &g)
        } else {
            sql.to_string()
        };
        Ok((sql, when))
    }

    fn date_param(&mut self, t: NaiveDateTime, when: Option<When>, field: Field) -> String {
        match (field, when) {
            // Last-updated times are `YYYY-MM-DDTHH:MM:SS.sssZ` text.
            (Field::LastUpdated, _) => {
                self.bind(Param::Text(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()))
            }
            (_, Some(When::Day)) => self.bind(Param::Date(day_ceil(t))),
            (_, Some(When::Text)) => {
                self.bind(Param::Text(t.format("%Y-%m-%dT%H:%M:%S").to_string()))
            }
            _ => self.bind(Param::DateTime(t)),
        }
    }
}

/// The WHERE clause (with its keyword, or empty), its parameters, and whether the stored
/// resource must be joined.
fn record_where(
    source: Source,
    q: &RecordQuery,
    scope: &Scope,
    today: NaiveDate,
    generated: &str,
) -> Result<Sql> {
    let mut s = Sql {
        params: Vec::new(),
        clauses: Vec::new(),
        joins_stored: false,
    };
    for f in &q.filters {
        let clause = match f {
            Filter::Ids(field, ids) => {
                let (col, _) = s.expr(source, *field, generated)?;
                if ids.is_empty() {
                    "1 = 0".to_string()
                } else {
                    let marks: Vec<String> = ids.iter().map(|&i| s.bind(Param::I64(i))).collect();
                    format!("{col} IN ({})", marks.join(", "))
                }
            }
            Filter::Tokens(field, values) => {
                let (col, _) = s.expr(source, *field, generated)?;
                if values.is_empty() {
                    "1 = 0".to_string()
                } else {
                    let marks: Vec<String> = values
                        .iter()
                        .map(|v| s.bind(Param::Text(v.clone())))
                        .collect();
                    format!("{col} IN ({})", marks.join(", "))
                }
            }
            Filter::Text {
                field,
                values,
                contains,
            } => {
                let (col, _) = s.expr(source, *field, generated)?;
                let any: Vec<String> = values
                    .iter()
                    .map(|v| {
                        let p = s.bind(Param::Text(like(v, *contains)));
                        format!("{col} LIKE {p} ESCAPE '\\'")
                    })
                    .collect();
                if any.is_empty() {
                    "1 = 0".to_string()
                } else {
                    format!("({})", any.join(" OR "))
                }
            }
            Filter::Date(field, cond) => {
                let (col, when) = s.expr(source, *field, generated)?;
                if when.is_none() && *field != Field::LastUpdated {
                    return Err(StoreError::Invalid(format!(
                        "{source:?} has no date {field:?}"
                    )));
                }
                match *cond {
                    DateCond::Ge(t) => format!("{col} >= {}", s.date_param(t, when, *field)),
                    DateCond::Lt(t) => format!("{col} < {}", s.date_param(t, when, *field)),
                    DateCond::Outside(a, b) => {
                        let a = s.date_param(a, when, *field);
                        let b = s.date_param(b, when, *field);
                        format!("({col} < {a} OR {col} >= {b})")
                    }
                }
            }
        };
        s.clauses.push(clause);
    }
    let owner = match source {
        Source::Core(table) => resident_column(table),
        Source::Stored { resident_owned } => resident_owned.then_some("t.resident_id"),
    };
    if let Some(owner) = owner {
        let mut bind = |p: Param| {
            s.params.push(p);
            format!("${}", s.params.len())
        };
        if let Some(scope_sql) = crate::shared::scope_clause(scope, today, &mut bind) {
            s.clauses.push(format!(
                "{owner} IN (SELECT r.id FROM residents r WHERE {scope_sql})"
            ));
        }
    }
    Ok(s)
}

/// Run a search built by [`record_where`] on `source` (FHIR type `kind`): the total,
/// then (unless `limit` is 0) one page of rows in the query's order.
async fn run<E: Exec>(
    e: &E,
    source: Source,
    mut s: Sql,
    q: &RecordQuery,
    kind: &str,
    generated: &str,
) -> Result<(Vec<E::Row>, i64)> {
    let (from, columns) = match source {
        Source::Core(table) => (table.name(), rows::columns(table)),
        Source::Stored { .. } => ("resources", crate::rows::RESOURCE_COLUMNS),
    };
    let mut order = Vec::new();
    for (field, descending) in &q.sort {
        let (col, _) = s.expr(source, *field, generated)?;
        order.push(format!(
            "{col} {}",
            if *descending { "DESC" } else { "ASC" }
        ));
    }
    order.push("t.id ASC".into());
    let join = if s.joins_stored {
        let k = s.bind(Param::Text(kind.to_string()));
        format!(" LEFT JOIN resources s ON s.type = {k} AND s.id = t.id")
    } else {
        String::new()
    };
    let where_sql = if s.clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", s.clauses.join(" AND "))
    };
    let from = format!("{from} t{join}{where_sql}");
    let total = one(
        e,
        &format!("SELECT COUNT(*) FROM {from}"),
        s.params.clone(),
        || "count".into(),
    )
    .await?
    .i64(0)?;
    if q.limit == 0 {
        return Ok((Vec::new(), total));
    }
    let columns: Vec<String> = columns.split(", ").map(|c| format!("t.{c}")).collect();
    let limit = s.bind(Param::I64(q.limit));
    let offset = s.bind(Param::I64(q.offset));
    let sql = format!(
        "SELECT {} FROM {from} ORDER BY {} LIMIT {limit} OFFSET {offset}",
        columns.join(", "),
        order.join(", ")
    );
    Ok((e.rows(&sql, s.params).await?, total))
}

/// The rows of `table` (FHIR type `kind`) matching `q` within `scope`, one page of
/// them, and how many match in all. `generated`: the last-updated time of records that
/// were never written through the API.
pub(crate) async fn search_records<E: Exec>(
    e: &E,
    table: Table,
    kind: &str,
    q: &RecordQuery,
    scope: &Scope,
    today: NaiveDate,
    generated: &str,
) -> Result<(Batch, i64)> {
    let source = Source::Core(table);
    let s = record_where(source, q, scope, today, generated)?;
    let (found, total) = run(e, source, s, q, kind, generated).await?;
    let mut batch = Batch::default();
    for r in &found {
        rows::push(&mut batch, table, r)?;
    }
    Ok((batch, total))
}

/// Resources of `kind` kept as received (deleted ones left out) matching `q` within
/// `scope` (when `resident_owned`): one page and how many match.
pub(crate) async fn search_stored<E: Exec>(
    e: &E,
    kind: &str,
    resident_owned: bool,
    q: &RecordQuery,
    scope: &Scope,
    today: NaiveDate,
) -> Result<(Vec<crate::StoredResource>, i64)> {
    let source = Source::Stored { resident_owned };
    let mut s = record_where(source, q, scope, today, "")?;
    let k = s.bind(Param::Text(kind.to_string()));
    s.clauses
        .push(format!("t.type = {k} AND t.json IS NOT NULL"));
    let (found, total) = run(e, source, s, q, kind, "").await?;
    let found = found
        .iter()
        .map(crate::rows::stored_resource)
        .collect::<Result<Vec<_>>>()?;
    Ok((found, total))
}

/// `text` as a LIKE pattern matching strings that start with it.
fn starts_with(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// The WHERE clause (without the keyword) and its parameters for a search in a scope.
fn resident_where(f: &ResidentFilter, scope: &Scope, today: NaiveDate) -> (String, Vec<Param>) {
    let mut clauses: Vec<String> = Vec::new();
    let mut params: Vec<Param> = Vec::new();
    let mut bind = |v: Param| {
        params.push(v);
        format!("${}", params.len())
    };
    if let Some(id) = f.id {
        clauses.push(format!("r.id = {}", bind(Param::I64(id))));
    }
    if let Some(n) = &f.identity_number {
        clauses.push(format!("r.identity_number = {}", bind(n.as_str().into())));
    }
    if let Some(n) = &f.name {
        let p = bind(Param::Text(starts_with(n)));
        clauses.push(format!(
            "(r.name LIKE {p} ESCAPE '\\' OR SUBSTR(r.name, 2) LIKE {p} ESCAPE '\\')"
        ));
    }
    if let Some(n) = &f.family {
        clauses.push(format!(
            "r.name LIKE {} ESCAPE '\\'",
            bind(Param::Text(starts_with(n)))
        ));
    }
    if let Some(n) = &f.given {
        clauses.push(format!(
            "SUBSTR(r.name, 2) LIKE {} ESCAPE '\\'",
            bind(Param::Text(starts_with(n)))
        ));
    }
    if let Some(sex) = f.sex {
        let s = match sex {
            dhp_core::Sex::Male => "male",
            dhp_core::Sex::Female => "female",
        };
        clauses.push(format!("r.sex = {}", bind(s.into())));
    }
    for (cmp, date) in &f.birth_date {
        clauses.push(format!(
            "r.birth_date {} {}",
            cmp.sql(),
            bind(Param::Date(*date))
        ));
    }
    if let Some(orgs) = &f.street_org {
        if orgs.is_empty() {
            clauses.push("1 = 0".into());
        } else {
            let marks: Vec<String> = orgs.iter().map(|&o| bind(Param::I64(o))).collect();
            clauses.push(format!("r.street_org_id IN ({})", marks.join(", ")));
        }
    }
    if let Some(a) = &f.address {
        let p = bind(Param::Text(format!("%{}", starts_with(a))));
        clauses.push(format!(
            "EXISTS (SELECT 1 FROM households h WHERE h.id = r.household_id \
             AND h.address LIKE {p} ESCAPE '\\')"
        ));
    }
    for cond in &f.last_updated {
        let g = bind(Param::Text(f.generated.clone()));
        let col = format!(
            "COALESCE((SELECT s.last_updated FROM resources s WHERE s.type = 'Patient' AND s.id = r.id), {g})"
        );
        let text = |t: NaiveDateTime| Param::Text(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
        clauses.push(match *cond {
            DateCond::Ge(t) => format!("{col} >= {}", bind(text(t))),
            DateCond::Lt(t) => format!("{col} < {}", bind(text(t))),
            DateCond::Outside(a, b) => {
                let (a, b) = (bind(text(a)), bind(text(b)));
                format!("({col} < {a} OR {col} >= {b})")
            }
        });
    }
    if let Some(c) = scope_clause(scope, today, &mut bind) {
        clauses.push(c);
    }
    let sql = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    (sql, params)
}

pub(crate) async fn search_residents<E: Exec>(
    e: &E,
    f: &ResidentFilter,
    scope: &Scope,
    today: NaiveDate,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Resident>, i64)> {
    let (where_sql, params) = resident_where(f, scope, today);
    let total = one(
        e,
        &format!("SELECT COUNT(*) FROM residents r{where_sql}"),
        params.clone(),
        || "count".into(),
    )
    .await?
    .i64(0)?;
    let n = params.len();
    let mut page_params = params;
    page_params.push(Param::I64(limit));
    page_params.push(Param::I64(offset));
    let mut order: Vec<String> = f
        .sort
        .iter()
        .filter_map(|(field, descending)| {
            let col = match field {
                Field::Id => "r.id",
                Field::Date => "r.birth_date",
                Field::Name => "r.name",
                Field::LastUpdated => {
                    "(SELECT s.last_updated FROM resources s WHERE s.type = 'Patient' AND s.id = r.id)"
                }
                _ => return None,
            };
            // Generated residents (no stored version) sort as the oldest.
            let nulls = if *field == Field::LastUpdated {
                if *descending { " NULLS LAST" } else { " NULLS FIRST" }
            } else {
                ""
            };
            Some(format!("{col} {}{nulls}", if *descending { "DESC" } else { "ASC" }))
        })
        .collect();
    order.push("r.id ASC".into());
    let sql = format!(
        "SELECT {} FROM residents r{where_sql} ORDER BY {} LIMIT ${} OFFSET ${}",
        rows::columns(Table::Residents),
        order.join(", "),
        n + 1,
        n + 2
    );
    let residents = e
        .rows(&sql, page_params)
        .await?
        .iter()
        .map(rows::resident)
        .collect::<Result<_>>()?;
    Ok((residents, total))
}

/// Searches within a reader's scope: residents by their fields, core records by a query, and resources stored as received by their index rows.
#[async_trait]
pub trait SearchStore: Send + Sync {
    /// Residents matching `filter` within `scope` (as of `today`), in the filter's order:
    /// `limit` of them from `offset`, and the total that match.
    async fn search_residents(
        &self,
        filter: &ResidentFilter,
        scope: &Scope,
        today: NaiveDate,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<Resident>, i64)>;
    /// Records of one core table (FHIR type `kind`) matching `query` within `scope`:
    /// one page of them and how many match. `generated`: when records never written
    /// through the API count as last updated.
    async fn search_records(
        &self,
        table: Table,
        kind: &str,
        query: &dhp_core::query::RecordQuery,
        scope: &Scope,
        today: NaiveDate,
        generated: &str,
    ) -> Result<(Batch, i64)>;
    /// Resources of `kind` kept as received (no core table) matching `query`, within
    /// `scope` when they are a resident's data: one page and how many match.
    async fn search_stored(
        &self,
        kind: &str,
        resident_owned: bool,
        query: &dhp_core::query::RecordQuery,
        scope: &Scope,
        today: NaiveDate,
    ) -> Result<(Vec<StoredResource>, i64)>;
}

#[async_trait]
impl<B: Backend> SearchStore for B {
    async fn search_residents(
        &self,
        filter: &ResidentFilter,
        scope: &Scope,
        today: NaiveDate,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<Resident>, i64)> {
        search_residents(self.pool(), filter, scope, today, limit, offset).await
    }
    async fn search_records(
        &self,
        table: Table,
        kind: &str,
        query: &dhp_core::query::RecordQuery,
        scope: &Scope,
        today: NaiveDate,
        generated: &str,
    ) -> Result<(Batch, i64)> {
        crate::search::search_records(self.pool(), table, kind, query, scope, today, generated)
            .await
    }
    async fn search_stored(
        &self,
        kind: &str,
        resident_owned: bool,
        query: &dhp_core::query::RecordQuery,
        scope: &Scope,
        today: NaiveDate,
    ) -> Result<(Vec<StoredResource>, i64)> {
        crate::search::search_stored(self.pool(), kind, resident_owned, query, scope, today).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn a_day_column_compares_the_first_whole_day() {
        assert_eq!(day_ceil(at("2025-03-01 00:00")).to_string(), "2025-03-01");
        assert_eq!(day_ceil(at("2025-03-01 08:30")).to_string(), "2025-03-02");
    }

    #[test]
    fn the_scope_limits_records_to_its_residents() {
        let q = RecordQuery::matching(vec![Filter::Ids(Field::Resident, vec![7])], 10);
        let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let all = record_where(
            Source::Core(Table::Observations),
            &q,
            &Scope::All,
            today,
            "g",
        )
        .unwrap();
        assert_eq!(all.clauses, ["t.resident_id IN ($1)"]);
        let mine = record_where(
            Source::Core(Table::Observations),
            &q,
            &Scope::Resident(7),
            today,
            "g",
        )
        .unwrap();
        assert_eq!(mine.clauses.len(), 2);
        assert!(mine.clauses[1].contains("SELECT r.id FROM residents r WHERE r.id = $2"));
        let registry = record_where(
            Source::Core(Table::Organisations),
            &RecordQuery::matching(vec![], 1),
            &Scope::Nothing,
            today,
            "g",
        )
        .unwrap();
        assert!(
            registry.clauses.is_empty(),
            "the registry is not resident data"
        );
    }

    #[test]
    fn a_field_a_table_lacks_is_an_error() {
        let q = RecordQuery::matching(vec![Filter::Ids(Field::Encounter, vec![1])], 1);
        let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        assert!(
            record_where(Source::Core(Table::Conditions), &q, &Scope::All, today, "g").is_err()
        );
    }
}
