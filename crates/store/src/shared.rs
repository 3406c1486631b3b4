//! What every concern of the store shares: the [`Backend`] a database implements, the
//! [`Exec`] abstraction (run one statement with parameters; the SQL of every concern is
//! the same text on both backends), transactions, chunked multi-row inserts, and the
//! SQL of an access scope. Each concern (`tables`, `registry`, `search`, `resources`,
//! `programmes`, `surveillance`, `indicators`, `accounts`, `audit`, `access`) owns its
//! SQL and its trait, implemented once for every [`Backend`].

use async_trait::async_trait;
use chrono::{NaiveDate, NaiveDateTime};
use dhp_core::access::Scope;

use crate::rows::Col;
use crate::{Batch, Result, StoreError};

/// What differs between backends; every trait of [`crate::Store`] is written once, in
/// its concern's module, for every backend. A concern that lets a backend do part of
/// its work its own way says so with a trait of its own (`resources::WriteSets`,
/// `programmes::BulkRecords`).
#[async_trait]
pub trait Backend: Send + Sync + std::fmt::Debug {
    type Pool: Exec;
    /// An open write transaction.
    type Tx: Exec + Commit + Send;
    fn pool(&self) -> &Self::Pool;
    /// Begin a write transaction (SQLite: taking the write lock at once).
    async fn begin_write(&self) -> Result<Self::Tx>;
    /// `sqlite` or `postgres`.
    fn name(&self) -> &'static str;
    /// Write a whole batch in one transaction, in the dialect's fastest bulk form.
    async fn write_batch(&self, batch: &Batch) -> Result<()>;
    async fn clear_all(&self) -> Result<()>;
    async fn shut(&self);
    /// A consistent copy of the whole database into a new file at `path`, taken while
    /// others write (`false`: the backend has no such copy).
    async fn backup_file(&self, _path: &str) -> Result<bool> {
        Ok(false)
    }
}

/// A bound parameter.
#[derive(Debug, Clone)]
pub enum Param {
    I64(i64),
    OptI64(Option<i64>),
    Text(String),
    OptText(Option<String>),
    Date(NaiveDate),
    OptDate(Option<NaiveDate>),
    DateTime(NaiveDateTime),
    OptDateTime(Option<NaiveDateTime>),
    F64(f64),
}

impl From<&str> for Param {
    fn from(s: &str) -> Self {
        Param::Text(s.to_string())
    }
}

/// How a backend runs one statement.
#[async_trait]
pub trait Exec: Send + Sync {
    type Row: Col + Send;
    async fn rows(&self, sql: &str, params: Vec<Param>) -> Result<Vec<Self::Row>>;
    async fn execute(&self, sql: &str, params: Vec<Param>) -> Result<()>;
}

/// Bind every parameter of `params` to query `q`.
macro_rules! bind_all {
    ($q:expr, $params:expr) => {{
        let mut q = $q;
        for p in $params {
            q = match p {
                $crate::shared::Param::I64(v) => q.bind(v),
                $crate::shared::Param::OptI64(v) => q.bind(v),
                $crate::shared::Param::Text(v) => q.bind(v),
                $crate::shared::Param::OptText(v) => q.bind(v),
                $crate::shared::Param::Date(v) => q.bind(v),
                $crate::shared::Param::OptDate(v) => q.bind(v),
                $crate::shared::Param::DateTime(v) => q.bind(v),
                $crate::shared::Param::OptDateTime(v) => q.bind(v),
                $crate::shared::Param::F64(v) => q.bind(v),
            };
        }
        q
    }};
}
pub(crate) use bind_all;

/// An open transaction used through [`Exec`]: statements run one after another on it,
/// and none is seen by others until [`Commit::commit`]. Dropped uncommitted, it rolls
/// back. (PostgreSQL's; SQLite's writers share one transaction: `sqlite::SqliteTx`.)
pub struct Tx<DB: sqlx::Database>(pub(crate) tokio::sync::Mutex<sqlx::Transaction<'static, DB>>);

impl<DB: sqlx::Database> std::fmt::Debug for Tx<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tx")
    }
}

/// Ends a transaction.
#[async_trait]
pub trait Commit {
    async fn commit(self) -> Result<()>;
}

#[async_trait]
impl<DB: sqlx::Database> Commit for Tx<DB> {
    async fn commit(self) -> Result<()> {
        self.0.into_inner().commit().await?;
        Ok(())
    }
}

/// Implement [`Exec`] for a pool or an open transaction: the bodies differ only in the
/// types and in how the executor is reached from `$this` (the value itself) for
/// statement `$sql`.
macro_rules! impl_exec {
    ($target:ty, $row:ty, |$this:ident, $sql:ident| $executor:expr) => {
        #[async_trait::async_trait]
        impl $crate::shared::Exec for $target {
            type Row = $row;

            async fn rows(
                &self,
                sql: &str,
                params: Vec<$crate::shared::Param>,
            ) -> $crate::Result<Vec<$row>> {
                let ($this, $sql) = (self, sql);
                let q = $crate::shared::bind_all!(sqlx::query(sql), params);
                Ok(q.fetch_all($executor).await?)
            }

            async fn execute(
                &self,
                sql: &str,
                params: Vec<$crate::shared::Param>,
            ) -> $crate::Result<()> {
                let ($this, $sql) = (self, sql);
                let q = $crate::shared::bind_all!(sqlx::query(sql), params);
                q.execute($executor)
                    .await
                    .map_err($crate::shared::conflict)?;
                Ok(())
            }
        }
    };
}
pub(crate) use impl_exec;

/// ` ON CONFLICT (id) DO UPDATE SET …` for an `INSERT INTO t (id, a, b) …` statement:
/// every column but the id takes the new value. The same text on both backends.
pub(crate) fn on_conflict_update(insert: &str) -> String {
    let open = insert.find('(').map_or(0, |i| i + 1);
    let close = insert[open..].find(')').map_or(open, |i| open + i);
    let sets: Vec<String> = insert[open..close]
        .split(',')
        .map(str::trim)
        .filter(|c| *c != "id" && !c.is_empty())
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    format!(" ON CONFLICT (id) DO UPDATE SET {}", sets.join(", "))
}

/// Keep constraint violations apart from failures.
/// Crash testing: with `DHP_CRASH_AFTER_COMMITS=N` in the environment the process
/// aborts (as a power cut or `kill -9` would stop it) right after its N-th committed
/// write of resources or settings — the moment a resumable job is most likely to lose
/// or repeat work. Unset, it costs one atomic load per commit.
pub(crate) fn crash_point() {
    use std::sync::atomic::{AtomicU64, Ordering};
    static AFTER: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    static COMMITS: AtomicU64 = AtomicU64::new(0);
    let after = AFTER.get_or_init(|| {
        std::env::var("DHP_CRASH_AFTER_COMMITS")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if let Some(n) = after {
        if COMMITS.fetch_add(1, Ordering::SeqCst) + 1 >= *n {
            std::process::abort();
        }
    }
}

/// In words a client can act on, never the database's own message (which names
/// tables and columns, not resources).
pub(crate) fn conflict(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => StoreError::Conflict(
            "a record it refers to does not exist (or was deleted meanwhile)".into(),
        ),
        // Two writers of one Study Instance UID at once (the write checks it first).
        sqlx::Error::Database(d)
            if d.is_unique_violation()
                && (d.constraint() == Some("imaging_studies_uid")
                    || d.message().contains("imaging_studies.uid")) =>
        {
            StoreError::Conflict(crate::STUDY_UID_TAKEN.into())
        }
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::Conflict("another record already has the same id or identity number".into())
        }
        sqlx::Error::Database(d) if d.is_check_violation() => {
            StoreError::Conflict("a value is outside what the record allows".into())
        }
        _ => StoreError::Database(e),
    }
}

pub(crate) async fn one<E: Exec>(
    e: &E,
    sql: &str,
    params: Vec<Param>,
    what: impl FnOnce() -> String,
) -> Result<E::Row> {
    e.rows(sql, params)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::NotFound(what()))
}

pub(crate) fn first<T>(v: Vec<T>, what: &str) -> Result<T> {
    v.into_iter()
        .next()
        .ok_or_else(|| StoreError::NotFound(what.into()))
}

/// `($1, $2, …)` for a row whose parameters start after `base`, or `(?, ?, …)`.
pub(crate) fn placeholders(base: usize, n: usize, numbered: bool) -> String {
    let marks: Vec<String> = (1..=n)
        .map(|i| {
            if numbered {
                format!("${}", base + i)
            } else {
                "?".to_string()
            }
        })
        .collect();
    format!("({})", marks.join(", "))
}

/// Residents (alias `r`) referred to organisation `org` (a bound parameter) by a
/// referral that engages it (`TaskStatus::engages_receiver`), or holding a booking
/// there (`Status::holds_place`; a `$hold` not yet booked does not count, see
/// [`NOT_A_HOLD`]).
fn referred(org: &str) -> String {
    let idle: Vec<String> = dhp_core::referral::TaskStatus::ALL
        .into_iter()
        .filter(|s| !s.engages_receiver())
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    let holding: Vec<String> = dhp_core::booking::Status::ALL
        .into_iter()
        .filter(|s| s.holds_place())
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    format!(
        "(EXISTS (SELECT 1 FROM referrals rf WHERE rf.resident_id = r.id AND rf.to_org = {org} \
         AND rf.status NOT IN ({})) \
         OR EXISTS (SELECT 1 FROM appointments ap JOIN slots sl ON sl.id = ap.slot_id \
         JOIN schedules sc ON sc.id = sl.schedule_id \
         WHERE ap.resident_id = r.id AND sc.org_id = {org} AND ap.status IN ({}) \
         AND {NOT_A_HOLD}))",
        idle.join(", "),
        holding.join(", ")
    )
}

/// An appointment (alias `ap`) that is not a `$hold` waiting for its booking: a hold
/// keeps a place for a few minutes but opens nobody's record.
pub(crate) const NOT_A_HOLD: &str = "NOT (ap.status = 'pending' AND ap.hold_until IS NOT NULL)";

/// The condition on residents (alias `r`) of an access scope; `None` for no limit.
pub(crate) fn scope_clause(
    scope: &Scope,
    today: NaiveDate,
    bind: &mut impl FnMut(Param) -> String,
) -> Option<String> {
    Some(match scope {
        Scope::All => return None,
        Scope::District(d) => format!("r.district_code = {}", bind(d.as_str().into())),
        Scope::FamilyDoctor {
            centre,
            area,
            practitioner,
        } => {
            let mut any = Vec::new();
            if let Some(a) = area {
                any.push(format!("r.street_org_id = {}", bind(Param::I64(*a))));
            }
            let t = bind(Param::Date(today));
            let c = bind(Param::I64(*centre));
            any.push(referred(&c));
            let mut whose = vec![format!("c.centre_org_id = {c}")];
            if let Some(p) = practitioner {
                whose.push(format!("c.doctor_id = {}", bind(Param::I64(*p))));
            }
            any.push(format!(
                "EXISTS (SELECT 1 FROM contracts c WHERE c.resident_id = r.id AND c.status <> 'ended' \
                 AND c.start_date <= {t} AND c.end_date >= {t} AND ({}))",
                whose.join(" OR ")
            ));
            format!("({})", any.join(" OR "))
        }
        Scope::Hospital(h) => {
            let h = bind(Param::I64(*h));
            format!(
                "(EXISTS (SELECT 1 FROM encounters e WHERE e.resident_id = r.id AND e.org_id = {h}) \
                 OR {})",
                referred(&h)
            )
        }
        Scope::Resident(id) => format!("r.id = {}", bind(Param::I64(*id))),
        Scope::Nothing => "1 = 0".into(),
    })
}

/// Parameters per multi-row INSERT. sqlx binds SQLite's `$n` parameters by name, a
/// lookup that is linear in the statement's parameters, so a statement's cost grows
/// with the square of its size: a few hundred parameters is the sweet spot.
const PARAMS_PER_STATEMENT: usize = 256;

/// `INSERT INTO t (cols) VALUES ($1, …), (…)` for `rows` rows of `width` columns.
pub(crate) fn values_sql(insert: &str, width: usize, rows: usize) -> String {
    let mut sql = String::with_capacity(insert.len() + rows * width * 5);
    sql.push_str(insert);
    sql.push_str(" VALUES ");
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..width {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", r * width + c + 1));
        }
        sql.push(')');
    }
    sql
}

/// Multi-row INSERTs of `rows`, a few hundred parameters each, `suffix` after each.
pub(crate) async fn insert_chunked<E: Exec, T>(
    e: &E,
    insert: &str,
    suffix: &str,
    width: usize,
    rows: &[T],
    params: impl Fn(&T, &mut Vec<Param>),
) -> Result<()> {
    for chunk in rows.chunks((PARAMS_PER_STATEMENT / width).max(1)) {
        let mut p = Vec::with_capacity(chunk.len() * width);
        for r in chunk {
            params(r, &mut p);
        }
        let sql = format!("{}{suffix}", values_sql(insert, width, chunk.len()));
        e.execute(&sql, p).await?;
    }
    Ok(())
}
