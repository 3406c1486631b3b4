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

use crate::programmes::{assemble, Reading};
use crate::rows::{self, Col};
use crate::{Batch, Result, StoreError, Table};

fn failed(e: rusqlite::Error) -> StoreError {
    StoreError::Embedded(e.to_string())
}

fn open(path: &Path) -> Result<Connection> {
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(failed)?;
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
}

/// One table's rows of residents `first..=last` into a batch.
fn table_rows(path: &Path, table: Table, reading: Reading, first: Id, last: Id) -> Result<Batch> {
    let c = open(path)?;
    let only = if table == Table::Encounters && reading == Reading::Programmes {
        " AND programme IS NOT NULL"
    } else {
        ""
    };
    let sql = format!(
        "SELECT {} FROM {} WHERE resident_id >= ?1 AND resident_id <= ?2{only}",
        rows::columns(table),
        table.name()
    );
    let mut stmt = c.prepare(&sql).map_err(failed)?;
    let mut found = stmt.query([first, last]).map_err(failed)?;
    let mut batch = Batch::default();
    while let Some(row) = found.next().map_err(failed)? {
        rows::push(&mut batch, table, row)?;
    }
    Ok(batch)
}

/// Up to `limit` residents with `id > after`, in id order, with their records: every
/// resident of the file (the whole-district cohort).
pub(crate) fn records(
    path: &Path,
    reading: Reading,
    after: Id,
    limit: i64,
) -> Result<Vec<ResidentRecord>> {
    let residents = {
        let c = open(path)?;
        let sql = format!(
            "SELECT {} FROM residents WHERE id > ?1 ORDER BY id LIMIT ?2",
            rows::columns(Table::Residents)
        );
        let mut stmt = c.prepare(&sql).map_err(failed)?;
        let mut found = stmt.query([after, limit]).map_err(failed)?;
        let mut v = Vec::new();
        while let Some(row) = found.next().map_err(failed)? {
            v.push(rows::resident(row)?);
        }
        v
    };
    let (Some(first), Some(last)) = (
        residents.first().map(|r| r.id),
        residents.last().map(|r| r.id),
    ) else {
        return Ok(Vec::new());
    };
    let tables = [
        Table::Contracts,
        Table::Encounters,
        Table::Conditions,
        Table::Observations,
        Table::Immunizations,
    ];
    // Each table in two halves of the page, so the largest (observations) does not
    // leave a core idle.
    let middle = residents[residents.len() / 2].id;
    let halves = [(first, middle - 1), (middle, last)];
    let parts: Vec<Result<Batch>> = std::thread::scope(|s| {
        let handles: Vec<_> = tables
            .iter()
            .flat_map(|t| halves.iter().map(move |h| (*t, *h)))
            .filter(|(_, (a, b))| a <= b)
            .map(|(t, (a, b))| s.spawn(move || table_rows(path, t, reading, a, b)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(StoreError::Embedded("a scan thread panicked".into())))
            })
            .collect()
    });
    let mut batch = Batch::default();
    for part in parts {
        let p = part?;
        batch.contracts.extend(p.contracts);
        batch.encounters.extend(p.encounters);
        batch.conditions.extend(p.conditions);
        batch.observations.extend(p.observations);
        batch.immunizations.extend(p.immunizations);
    }
    Ok(assemble(residents, batch))
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
