//! Indicator numerators and denominators (`indicator_values`), written once over
//! [`Exec`] for both backends: replaced whole by a rebuild, or moved by deltas in the
//! transaction of the write that changes them.

use dhp_core::indicators::{Count, Period};
use dhp_core::Id;

use crate::rows::Col;
use crate::shared::{insert_chunked, Exec, Param};
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
