//! Indicator numerators and denominators (`indicator_values`), written once over
//! [`Exec`] for both backends: replaced whole by a rebuild, or moved by deltas in the
//! transaction of the write that changes them.

use async_trait::async_trait;
use dhp_core::indicators::{Count, Period, Totals, Units};
use dhp_core::programmes::ResidentRecord;
use dhp_core::Id;

use crate::rows::Col;
use crate::shared::Backend;
use crate::shared::{insert_chunked, Commit, Exec, Param};
use crate::{Result, StoreError};

const INSERT: &str = "INSERT INTO indicator_values (indicator, period, org_id, num, den)";

fn params(c: &Count, p: &mut Vec<Param>) {
    p.extend([
        Param::Text(c.indicator.clone()),
        Param::Text(c.period.to_string()),
        Param::I64(c.org_id),
        Param::I64(c.num),
        Param::I64(c.den),
    ]);
}

/// Replace every stored count by `counts` (on a transaction: all or nothing).
pub(crate) async fn replace<E: Exec>(e: &E, counts: &[Count]) -> Result<()> {
    e.execute("DELETE FROM indicator_values", vec![]).await?;
    let nonzero: Vec<&Count> = counts.iter().filter(|c| c.num != 0 || c.den != 0).collect();
    insert_chunked(e, INSERT, "", 5, &nonzero, |c, p| params(c, p)).await
}

/// Add `deltas` to the stored counts; pairs that reach (0, 0) are removed.
pub(crate) async fn add<E: Exec>(e: &E, deltas: &[Count]) -> Result<()> {
    let moved: Vec<&Count> = deltas.iter().filter(|c| c.num != 0 || c.den != 0).collect();
    if moved.is_empty() {
        return Ok(());
    }
    insert_chunked(
        e,
        INSERT,
        " ON CONFLICT (indicator, period, org_id) DO UPDATE SET \
          num = indicator_values.num + excluded.num, den = indicator_values.den + excluded.den",
        5,
        &moved,
        |c, p| params(c, p),
    )
    .await?;
    // Stored counts are never negative, so only a delta with a negative part can bring
    // a pair to (0, 0).
    if moved.iter().all(|c| c.num >= 0 && c.den >= 0) {
        return Ok(());
    }
    e.execute(
        "DELETE FROM indicator_values WHERE num = 0 AND den = 0",
        vec![],
    )
    .await
}

/// Stored counts, optionally of one indicator, period and org unit.
pub(crate) async fn read<E: Exec>(
    e: &E,
    indicator: Option<&str>,
    period: Option<Period>,
    org: Option<Id>,
) -> Result<Vec<Count>> {
    let mut params = Vec::new();
    let mut clauses = Vec::new();
    if let Some(i) = indicator {
        params.push(Param::Text(i.to_string()));
        clauses.push(format!("indicator = ${}", params.len()));
    }
    if let Some(p) = period {
        params.push(Param::Text(p.to_string()));
        clauses.push(format!("period = ${}", params.len()));
    }
    if let Some(o) = org {
        params.push(Param::I64(o));
        clauses.push(format!("org_id = ${}", params.len()));
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    let sql = format!(
        "SELECT indicator, period, org_id, num, den FROM indicator_values{filter} \
         ORDER BY indicator, period, org_id"
    );
    e.rows(&sql, params)
        .await?
        .iter()
        .map(|r| {
            let period = r.text(1)?;
            Ok(Count {
                indicator: r.text(0)?,
                period: Period::parse(&period)
                    .map_err(|e| StoreError::Corrupt(format!("indicator_values: {e}")))?,
                org_id: r.i64(2)?,
                num: r.i64(3)?,
                den: r.i64(4)?,
            })
        })
        .collect()
}

/// Keeping the counts current inside a write's transaction: the written residents'
/// tallies are taken before and after the write, and the difference is added to the
/// stored counts before the transaction commits. Nothing is tracked before the first
/// rebuild (no periods are stored yet).
pub(crate) struct Tracking {
    periods: Vec<Period>,
    units: Units,
    records: Vec<ResidentRecord>,
}

/// The periods the stored counts cover (meta `indicator_periods`; empty before the
/// first rebuild).
pub(crate) async fn tracked_periods<E: Exec>(e: &E) -> Result<Vec<Period>> {
    parse_periods(crate::tables::meta(e, PERIODS_META).await?)
}

/// The meta value `indicator_periods` as periods.
pub(crate) fn parse_periods(list: Option<String>) -> Result<Vec<Period>> {
    list.unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| Period::parse(s).map_err(|e| StoreError::Corrupt(format!("{PERIODS_META}: {e}"))))
        .collect()
}

/// Meta key of the periods the stored counts cover.
pub const PERIODS_META: &str = "indicator_periods";

async fn units<E: Exec>(e: &E) -> Result<Units> {
    let orgs = crate::tables::page(e, crate::Table::Organisations, 0, i64::MAX)
        .await?
        .organisations;
    Ok(dhp_core::indicators::Units::new(&orgs))
}

/// `residents`' records as they stand in `e` (rows in id order).
async fn read_records<E: Exec>(
    e: &E,
    residents: &[Id],
    last: chrono::NaiveDate,
) -> Result<Vec<ResidentRecord>> {
    let mut out = Vec::with_capacity(residents.len());
    for &id in residents {
        let records = crate::programmes::records(
            e,
            &crate::Cohort::Resident(id),
            crate::Reading::Full,
            last,
            id - 1,
            1,
        )
        .await?;
        out.extend(records);
    }
    out.iter_mut().for_each(in_id_order);
    Ok(out)
}

/// What the records changing from `before` to `after` (each in resident id order)
/// does to the counts.
fn changes(
    before: &[ResidentRecord],
    after: &[ResidentRecord],
    periods: &[Period],
    units: &Units,
) -> Totals {
    let defs = dhp_core::indicators::supported();
    let mut ids: Vec<Id> = before.iter().chain(after).map(|r| r.resident.id).collect();
    ids.sort_unstable();
    ids.dedup();
    fn find(list: &[ResidentRecord], id: Id) -> Option<&ResidentRecord> {
        list.binary_search_by_key(&id, |r| r.resident.id)
            .ok()
            .map(|i| &list[i])
    }
    let mut sums = Totals::default();
    for id in ids {
        dhp_core::indicators::resident_changes(
            find(before, id),
            find(after, id),
            &defs,
            units,
            periods,
            &mut |t| sums.add(t),
        );
    }
    sums
}

/// Residents a write set touches: those of the rows it writes, the present owners of
/// rows it replaces or deletes.
async fn touched<E: Exec>(e: &E, w: &crate::WriteSet) -> Result<Vec<Id>> {
    use crate::Table;
    let c = &w.core;
    let mut ids: Vec<Id> = Vec::new();
    ids.extend(c.residents.iter().map(|r| r.id));
    ids.extend(c.contracts.iter().map(|r| r.resident_id));
    ids.extend(c.encounters.iter().map(|r| r.resident_id));
    ids.extend(c.conditions.iter().map(|r| r.resident_id));
    ids.extend(c.observations.iter().map(|r| r.resident_id));
    ids.extend(c.immunizations.iter().map(|r| r.resident_id));
    let mut owned: Vec<(Table, Id)> = w.core_deletes.clone();
    owned.extend(c.contracts.iter().map(|r| (Table::Contracts, r.id)));
    owned.extend(c.encounters.iter().map(|r| (Table::Encounters, r.id)));
    owned.extend(c.conditions.iter().map(|r| (Table::Conditions, r.id)));
    owned.extend(c.observations.iter().map(|r| (Table::Observations, r.id)));
    owned.extend(c.immunizations.iter().map(|r| (Table::Immunizations, r.id)));
    for (table, id) in owned {
        match table {
            Table::Residents => ids.push(id),
            Table::Contracts
            | Table::Encounters
            | Table::Conditions
            | Table::Observations
            | Table::Immunizations => {
                let sql = format!("SELECT resident_id FROM {} WHERE id = $1", table.name());
                for r in e.rows(&sql, vec![Param::I64(id)]).await? {
                    ids.push(r.i64(0)?);
                }
            }
            _ => {}
        }
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

impl Tracking {
    /// Before the write: the records of the residents it touches
    /// (`None` when nothing is tracked).
    pub(crate) async fn before<E: Exec>(e: &E, w: &crate::WriteSet) -> Result<Option<Self>> {
        let periods = tracked_periods(e).await?;
        if periods.is_empty() {
            return Ok(None);
        }
        let residents = touched(e, w).await?;
        if residents.is_empty() {
            return Ok(None);
        }
        let units = units(e).await?;
        let last = periods.iter().map(|p| p.end()).max().unwrap_or_default();
        let records = read_records(e, &residents, last).await?;
        Ok(Some(Tracking {
            periods,
            units,
            records,
        }))
    }

    /// After `w` was written, in the same transaction: add the difference its rows
    /// make to the counts.
    pub(crate) async fn after<E: Exec>(self, e: &E, w: &crate::WriteSet) -> Result<()> {
        let after = apply(&self.records, w);
        add_totals(
            e,
            changes(&self.records, &after, &self.periods, &self.units),
        )
        .await
    }
}

/// `before` (the touched residents' records) as the write set leaves them, without
/// reading them again: rows deleted or replaced leave the record that holds them, the
/// written rows join their resident's record, written residents replace theirs and
/// deleted residents leave. The write has succeeded when this is called, so the rows
/// stored are the rows written.
fn apply(before: &[ResidentRecord], w: &crate::WriteSet) -> Vec<ResidentRecord> {
    use crate::Table;
    use std::collections::{BTreeMap, HashSet};
    let c = &w.core;
    let mut gone: HashSet<(Table, Id)> = w.core_deletes.iter().copied().collect();
    gone.extend(c.contracts.iter().map(|r| (Table::Contracts, r.id)));
    gone.extend(c.encounters.iter().map(|r| (Table::Encounters, r.id)));
    gone.extend(c.conditions.iter().map(|r| (Table::Conditions, r.id)));
    gone.extend(c.observations.iter().map(|r| (Table::Observations, r.id)));
    gone.extend(c.immunizations.iter().map(|r| (Table::Immunizations, r.id)));
    let mut records: BTreeMap<Id, ResidentRecord> =
        before.iter().map(|r| (r.resident.id, r.clone())).collect();
    for r in records.values_mut() {
        r.contracts
            .retain(|x| !gone.contains(&(Table::Contracts, x.id)));
        r.encounters
            .retain(|x| !gone.contains(&(Table::Encounters, x.id)));
        r.conditions
            .retain(|x| !gone.contains(&(Table::Conditions, x.id)));
        r.observations
            .retain(|x| !gone.contains(&(Table::Observations, x.id)));
        r.immunizations
            .retain(|x| !gone.contains(&(Table::Immunizations, x.id)));
    }
    records.retain(|id, _| !gone.contains(&(Table::Residents, *id)));
    for r in &c.residents {
        records
            .entry(r.id)
            .and_modify(|rec| rec.resident = r.clone())
            .or_insert_with(|| ResidentRecord::new(r.clone()));
    }
    macro_rules! join {
        ($rows:expr, $field:ident) => {
            for x in &$rows {
                if let Some(rec) = records.get_mut(&x.resident_id) {
                    rec.$field.push(x.clone());
                }
            }
        };
    }
    join!(c.contracts, contracts);
    join!(c.encounters, encounters);
    join!(c.conditions, conditions);
    join!(c.observations, observations);
    join!(c.immunizations, immunizations);
    let mut out: Vec<ResidentRecord> = records.into_values().collect();
    out.iter_mut().for_each(in_id_order);
    out
}

/// Rows of a record in id order (as both backends return them by index).
fn in_id_order(r: &mut ResidentRecord) {
    r.contracts.sort_unstable_by_key(|x| x.id);
    r.encounters.sort_unstable_by_key(|x| x.id);
    r.conditions.sort_unstable_by_key(|x| x.id);
    r.observations.sort_unstable_by_key(|x| x.id);
    r.immunizations.sort_unstable_by_key(|x| x.id);
}

async fn add_totals<E: Exec>(e: &E, totals: Totals) -> Result<()> {
    add(e, &totals.into_counts(&dhp_core::indicators::supported())).await
}

/// What event tallies (case reports, signals) add, inside the transaction that writes
/// them.
pub(crate) async fn add_events<E: Exec>(
    e: &E,
    emit: impl Fn(
        &[&dhp_core::indicators::Indicator],
        &dhp_core::indicators::Units,
        &[Period],
        &mut dyn FnMut(dhp_core::indicators::Tally),
    ),
) -> Result<()> {
    let periods = tracked_periods(e).await?;
    if periods.is_empty() {
        return Ok(());
    }
    let units = units(e).await?;
    let defs = dhp_core::indicators::supported();
    let mut sums = Totals::default();
    emit(&defs, &units, &periods, &mut |t| sums.add(t));
    add_totals(e, sums).await
}

/// Indicator counts: (indicator, period, unit) → (numerator, denominator), replaced by a rebuild or moved by a difference.
#[async_trait]
pub trait IndicatorStore: Send + Sync {
    /// Close the connections (SQLite: checkpoint the WAL into the file first).
    /// Replace every stored indicator count by `counts`, in one transaction.
    async fn replace_indicator_counts(&self, counts: &[dhp_core::indicators::Count]) -> Result<()>;
    /// Add `deltas` to the stored indicator counts, in one transaction.
    async fn add_indicator_counts(&self, deltas: &[dhp_core::indicators::Count]) -> Result<()>;
    /// Stored indicator counts, optionally of one indicator, period and org unit.
    async fn indicator_counts(
        &self,
        indicator: Option<&str>,
        period: Option<dhp_core::indicators::Period>,
        org: Option<Id>,
    ) -> Result<Vec<dhp_core::indicators::Count>>;
}

#[async_trait]
impl<B: Backend> IndicatorStore for B {
    async fn replace_indicator_counts(&self, counts: &[dhp_core::indicators::Count]) -> Result<()> {
        let tx = self.begin_write().await?;
        crate::indicators::replace(&tx, counts).await?;
        tx.commit().await
    }
    async fn add_indicator_counts(&self, deltas: &[dhp_core::indicators::Count]) -> Result<()> {
        let tx = self.begin_write().await?;
        crate::indicators::add(&tx, deltas).await?;
        tx.commit().await
    }
    async fn indicator_counts(
        &self,
        indicator: Option<&str>,
        period: Option<dhp_core::indicators::Period>,
        org: Option<Id>,
    ) -> Result<Vec<dhp_core::indicators::Count>> {
        crate::indicators::read(self.pool(), indicator, period, org).await
    }
}
