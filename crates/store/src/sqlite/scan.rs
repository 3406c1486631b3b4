//! Bulk scans of the SQLite file for whole-district reads (every resident's due list).
//! sqlx hands each row from its worker thread to the async side one at a time, which
//! costs several microseconds a row; a district's programme rows number in the tens of
//! millions. Here each table of a page is read on its own thread with a read-only
//! `rusqlite` connection, and decoded by the same decoders as every other read (`Col`).

use std::path::Path;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use dhp_core::programmes::ResidentRecord;
use dhp_core::Id;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use crate::programmes::{
    assemble, residents_statement, rows_statement, Cohort, Reading, RECORD_TABLES,
};
use crate::rows::{self, Col};
use crate::shared::Param;
use crate::{Batch, Result, StoreError, Table};

fn failed(e: rusqlite::Error) -> StoreError {
    StoreError::Embedded(e.to_string())
}

fn open(path: &Path) -> Result<Connection> {
    // Opened read-write (but `query_only`): a read-only connection cannot create the
    // WAL index when no other connection holds the file open.
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(failed)?;
    c.pragma_update(None, "query_only", true).map_err(failed)?;
    c.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(failed)?;
    c.pragma_update(None, "cache_size", -65536)
        .map_err(failed)?;
    // Map the file rather than copy pages through read(2).
    c.pragma_update(None, "mmap_size", 1i64 << 34)
        .map_err(failed)?;
    Ok(c)
}

/// `YYYY-MM-DD` without the general format parser.
fn parse_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)
}

/// `YYYY-MM-DD HH:MM:SS` (as sqlx writes it), else any layout chrono reads.
fn parse_datetime(s: &str) -> Option<NaiveDateTime> {
    let b = s.as_bytes();
    if b.len() == 19 && (b[10] == b' ' || b[10] == b'T') && b[13] == b':' && b[16] == b':' {
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            b[r].iter().try_fold(0u32, |n, c| {
                c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
            })
        };
        let time = NaiveTime::from_hms_opt(num(11..13)?, num(14..16)?, num(17..19)?)?;
        return Some(parse_date(&s[..10])?.and_time(time));
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f"))
        .ok()
}

impl Col for rusqlite::Row<'_> {
    fn i64(&self, i: usize) -> Result<i64> {
        self.get(i).map_err(failed)
    }
    fn oi64(&self, i: usize) -> Result<Option<i64>> {
        self.get(i).map_err(failed)
    }
    fn text(&self, i: usize) -> Result<String> {
        self.get(i).map_err(failed)
    }
    fn otext(&self, i: usize) -> Result<Option<String>> {
        self.get(i).map_err(failed)
    }
    fn date(&self, i: usize) -> Result<NaiveDate> {
        match self.get_ref(i).map_err(failed)? {
            ValueRef::Text(t) => std::str::from_utf8(t).ok().and_then(parse_date),
            _ => None,
        }
        .ok_or_else(|| StoreError::Corrupt(format!("column {i} is not a date")))
    }
    fn datetime(&self, i: usize) -> Result<NaiveDateTime> {
        match self.get_ref(i).map_err(failed)? {
            ValueRef::Text(t) => std::str::from_utf8(t).ok().and_then(parse_datetime),
            _ => None,
        }
        .ok_or_else(|| StoreError::Corrupt(format!("column {i} is not a date and time")))
    }
    fn odate(&self, i: usize) -> Result<Option<NaiveDate>> {
        match self.get_ref(i).map_err(failed)? {
            ValueRef::Null => Ok(None),
            _ => self.date(i).map(Some),
        }
    }
    fn odatetime(&self, i: usize) -> Result<Option<NaiveDateTime>> {
        match self.get_ref(i).map_err(failed)? {
            ValueRef::Null => Ok(None),
            _ => self.datetime(i).map(Some),
        }
    }
    fn f64(&self, i: usize) -> Result<f64> {
        match self.get_ref(i).map_err(failed)? {
            ValueRef::Real(x) => Ok(x),
            ValueRef::Integer(n) => Ok(n as f64),
            _ => Err(StoreError::Corrupt(format!("column {i} is not a number"))),
        }
    }
    fn bool(&self, i: usize) -> Result<bool> {
        Ok(self.get::<_, i64>(i).map_err(failed)? != 0)
    }
    fn code<T>(
        &self,
        i: usize,
        what: &str,
        f: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>> {
        match self.get_ref(i).map_err(failed)? {
            ValueRef::Null => Ok(None),
            ValueRef::Text(t) => {
                let s = std::str::from_utf8(t)
                    .map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))?;
                f(s).map(Some)
                    .ok_or_else(|| StoreError::Corrupt(format!("{what} {s:?}")))
            }
            _ => Err(StoreError::Corrupt(format!("{what} is not text"))),
        }
    }
}

/// `$n` parameters bound by name, as sqlx writes their values into SQLite.
fn bind(stmt: &mut rusqlite::Statement<'_>, params: &[Param]) -> Result<()> {
    use rusqlite::types::Value;
    for (i, p) in params.iter().enumerate() {
        let v = match p {
            Param::I64(v) => Value::Integer(*v),
            Param::OptI64(v) => v.map_or(Value::Null, Value::Integer),
            Param::Text(v) => Value::Text(v.clone()),
            Param::OptText(v) => v.clone().map_or(Value::Null, Value::Text),
            Param::Date(d) => Value::Text(d.format("%Y-%m-%d").to_string()),
            Param::OptDate(d) => d.map_or(Value::Null, |d| {
                Value::Text(d.format("%Y-%m-%d").to_string())
            }),
            Param::DateTime(t) => Value::Text(t.format("%Y-%m-%d %H:%M:%S%.f").to_string()),
            Param::OptDateTime(t) => t.map_or(Value::Null, |t| {
                Value::Text(t.format("%Y-%m-%d %H:%M:%S%.f").to_string())
            }),
            Param::F64(v) => Value::Real(*v),
        };
        let at = stmt
            .parameter_index(&format!("${}", i + 1))
            .map_err(failed)?
            .ok_or_else(|| StoreError::Invalid(format!("no parameter ${}", i + 1)))?;
        stmt.raw_bind_parameter(at, v).map_err(failed)?;
    }
    Ok(())
}

/// Decode every row `sql` gives with `push`.
fn each_row(
    c: &Connection,
    sql: &str,
    params: &[Param],
    mut push: impl FnMut(&rusqlite::Row<'_>) -> Result<()>,
) -> Result<()> {
    let mut stmt = c.prepare(sql).map_err(failed)?;
    bind(&mut stmt, params)?;
    let mut found = stmt.raw_query();
    while let Some(row) = found.next().map_err(failed)? {
        push(row)?;
    }
    Ok(())
}

/// One table's rows of `cohort`'s residents `first..=last` into a batch.
fn table_rows(
    path: &Path,
    table: Table,
    cohort: &Cohort,
    reading: Reading,
    today: NaiveDate,
    first: Id,
    last: Id,
) -> Result<Batch> {
    let c = open(path)?;
    let (sql, params) = rows_statement(table, cohort, reading, today, first, last);
    let mut batch = Batch::default();
    each_row(&c, &sql, &params, |row| rows::push(&mut batch, table, row))?;
    Ok(batch)
}

/// Up to `limit` residents of `cohort` with `id > after`, in id order, with their records.
pub(crate) fn records(
    path: &Path,
    cohort: &Cohort,
    reading: Reading,
    today: NaiveDate,
    after: Id,
    limit: i64,
) -> Result<Vec<ResidentRecord>> {
    let mut residents = Vec::new();
    {
        let c = open(path)?;
        let (sql, params) = residents_statement(cohort, today, after, limit);
        each_row(&c, &sql, &params, |row| {
            residents.push(rows::resident(row)?);
            Ok(())
        })?;
    }
    let (Some(first), Some(last)) = (
        residents.first().map(|r| r.id),
        residents.last().map(|r| r.id),
    ) else {
        return Ok(Vec::new());
    };
    // Each table in two halves of the page, so the largest (observations) does not
    // leave a core idle.
    let middle = residents[residents.len() / 2].id;
    let halves = [(first, middle - 1), (middle, last)];
    let parts: Vec<Result<Batch>> = std::thread::scope(|s| {
        let handles: Vec<_> = RECORD_TABLES
            .iter()
            .flat_map(|t| halves.iter().map(move |h| (*t, *h)))
            .filter(|(_, (a, b))| a <= b)
            .map(|(t, (a, b))| s.spawn(move || table_rows(path, t, cohort, reading, today, a, b)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(StoreError::Embedded("a scan thread panicked".into())))
            })
            .collect()
    });
    Ok(assemble(
        residents,
        parts.into_iter().collect::<Result<Vec<_>>>()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_fast_and_fall_back() {
        assert_eq!(
            parse_date("2025-06-01"),
            NaiveDate::from_ymd_opt(2025, 6, 1)
        );
        assert_eq!(parse_date("2025-02-30"), None);
        assert_eq!(parse_date("2025-6-1"), None);
        let t = NaiveDate::from_ymd_opt(2025, 6, 1)
            .unwrap()
            .and_hms_opt(9, 5, 7)
            .unwrap();
        assert_eq!(parse_datetime("2025-06-01 09:05:07"), Some(t));
        assert_eq!(parse_datetime("2025-06-01T09:05:07"), Some(t));
        assert_eq!(
            parse_datetime("2025-06-01 09:05:07.250").map(|x| x.date()),
            Some(t.date())
        );
        assert_eq!(parse_datetime("2025-06-01 25:00:00"), None);
    }
}
