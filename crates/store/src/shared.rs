//! The reads and small writes whose SQL is the same text on both backends, written
//! once over [`Exec`]: each backend only says how to run a statement with parameters.

use async_trait::async_trait;
use chrono::{NaiveDate, NaiveDateTime};
use dhp_core::access::{ResidentFacts, Scope};
use dhp_core::query::{DateCond, Field};
use dhp_core::{Household, Id, Organisation, Resident};

use crate::resources::{self, StoredResource, WriteSet};
use crate::rows::{self, Col};
use crate::{AreaCount, AuditEvent, Batch, ResidentFilter, Result, Store, StoreError, Table, User};

/// What differs between backends; everything else of [`Store`] is written once, here,
/// for every backend (the blanket impl below).
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
    /// Write a [`WriteSet`] in one transaction: all or nothing.
    async fn write_set(&self, set: &WriteSet) -> Result<()>;
    async fn clear_all(&self) -> Result<()>;
    async fn shut(&self);
    /// A consistent copy of the whole database into a new file at `path`, taken while
    /// others write (`false`: the backend has no such copy).
    async fn backup_file(&self, _path: &str) -> Result<bool> {
        Ok(false)
    }
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

#[async_trait]
impl<B: Backend> Store for B {
    fn backend(&self) -> &'static str {
        self.name()
    }
    async fn insert_batch(&self, batch: &Batch) -> Result<()> {
        self.write_batch(batch).await
    }
    async fn page(&self, table: Table, after: Id, limit: i64) -> Result<Batch> {
        page(self.pool(), table, after, limit).await
    }
    async fn count(&self, table: Table) -> Result<i64> {
        count(self.pool(), table).await
    }
    async fn meta(&self, key: &str) -> Result<Option<String>> {
        meta(self.pool(), key).await
    }
    async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        set_meta(self.pool(), key, value).await?;
        crash_point();
        Ok(())
    }
    async fn organisation_by_code(&self, code: &str) -> Result<Organisation> {
        organisation_by_code(self.pool(), code).await
    }
    async fn resident_by_identity(&self, identity_number: &str) -> Result<Resident> {
        resident_by_identity(self.pool(), identity_number).await
    }
    async fn area_counts(&self) -> Result<Vec<AreaCount>> {
        area_counts(self.pool()).await
    }
    async fn insert_user(&self, user: &User) -> Result<()> {
        insert_user(self.pool(), user).await
    }
    async fn user_by_username(&self, username: &str) -> Result<User> {
        user_by_username(self.pool(), username).await
    }
    async fn users(&self) -> Result<Vec<User>> {
        users(self.pool()).await
    }
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
    async fn get(&self, table: Table, id: Id) -> Result<Batch> {
        by_id(self.pool(), table, id).await
    }
    async fn resident(&self, id: Id) -> Result<Resident> {
        resident(self.pool(), id).await
    }
    async fn household(&self, id: Id) -> Result<Household> {
        household(self.pool(), id).await
    }
    async fn organisation(&self, id: Id) -> Result<Organisation> {
        organisation(self.pool(), id).await
    }
    async fn resident_access_facts(&self, id: Id, today: NaiveDate) -> Result<ResidentFacts> {
        resident_access_facts(self.pool(), id, today).await
    }
    async fn record_login_failure(
        &self,
        username: &str,
        address: &str,
        at: NaiveDateTime,
        forget_before: NaiveDateTime,
    ) -> Result<()> {
        crate::logins::record(self.pool(), username, address, at, forget_before).await
    }
    async fn login_failures(
        &self,
        username: &str,
        address: &str,
        since: NaiveDateTime,
    ) -> Result<crate::LoginFailures> {
        crate::logins::since(self.pool(), username, address, since).await
    }
    async fn clear_login_failures(&self, username: &str) -> Result<()> {
        crate::logins::clear(self.pool(), username).await
    }
    async fn password_state(&self, username: &str, history: usize) -> Result<crate::PasswordState> {
        crate::passwords::state(self.pool(), username, history as i64).await
    }
    async fn set_password(
        &self,
        username: &str,
        hash: &str,
        must_change: bool,
        at: NaiveDateTime,
    ) -> Result<()> {
        let tx = self.begin_write().await?;
        crate::passwords::set(&tx, username, hash, must_change, at).await?;
        tx.commit().await
    }
    async fn require_password_change(
        &self,
        username: &str,
        must: bool,
        dated: Option<NaiveDateTime>,
    ) -> Result<()> {
        let tx = self.begin_write().await?;
        crate::passwords::require_change(&tx, username, must).await?;
        if let Some(at) = dated {
            crate::passwords::date_if_unknown(&tx, username, at).await?;
        }
        tx.commit().await
    }
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
    async fn households(&self, ids: &[Id]) -> Result<Vec<Household>> {
        households(self.pool(), ids).await
    }
    async fn audit_events(&self, resident_id: Option<Id>, limit: i64) -> Result<Vec<AuditEvent>> {
        audit_events(self.pool(), resident_id, limit).await
    }
    async fn grant_emergency_access(&self, grant: &crate::EmergencyGrant) -> Result<()> {
        crate::emergency::insert(self.pool(), grant).await
    }
    async fn emergency_grants(
        &self,
        since: NaiveDateTime,
    ) -> Result<Vec<(crate::EmergencyGrant, i64)>> {
        crate::emergency::since(self.pool(), since).await
    }
    async fn backup_into(&self, path: &str) -> Result<()> {
        if self.backup_file(path).await? {
            Ok(())
        } else {
            Err(StoreError::Invalid(format!(
                "{} has no file backup; use its own dump tool",
                self.name()
            )))
        }
    }
    async fn seal_audit(&self) -> Result<u64> {
        let mut total = 0;
        loop {
            let tx = self.begin_write().await?;
            let n = crate::audit_chain::seal_batch(tx, self.name() == "postgres").await?;
            total += n;
            if n == 0 {
                return Ok(total);
            }
        }
    }
    async fn audit_head(&self) -> Result<crate::ChainHead> {
        crate::audit_chain::head(self.pool(), false).await
    }
    async fn verify_audit(
        &self,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<crate::ChainReport> {
        crate::audit_chain::verify(self.pool(), progress).await
    }
    async fn sealed_audit(&self, after: i64, limit: i64) -> Result<Vec<crate::SealedAudit>> {
        crate::audit_chain::sealed(self.pool(), after, limit).await
    }
    async fn forget_archived_audit(&self, upto: i64, upto_hash: &str) -> Result<u64> {
        let tx = self.begin_write().await?;
        crate::audit_chain::forget_archived(tx, self.name() == "postgres", upto, upto_hash).await
    }
    async fn write_resources(&self, set: &WriteSet) -> Result<()> {
        self.write_set(set).await?;
        crash_point();
        Ok(())
    }
    async fn resource(&self, kind: &str, id: Id) -> Result<Option<StoredResource>> {
        resources::current(self.pool(), kind, id).await
    }
    async fn resources(&self, kind: &str, ids: &[Id]) -> Result<Vec<StoredResource>> {
        resources::current_many(self.pool(), kind, ids).await
    }
    async fn resource_versions(&self, kind: &str, id: Id) -> Result<Vec<StoredResource>> {
        resources::versions(self.pool(), kind, id).await
    }
    async fn reserve_ids(&self, kind: &str, n: i64) -> Result<Id> {
        resources::reserve_ids(self.pool(), kind, n).await
    }
    async fn clear(&self) -> Result<()> {
        self.clear_all().await
    }
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
    async fn insert_case_reports(
        &self,
        reports: &[dhp_core::surveillance::CaseReport],
        source: &str,
    ) -> Result<()> {
        // The reports and what they add to reporting timeliness, in one transaction.
        let tx = self.begin_write().await?;
        crate::surveillance::insert_case_reports(&tx, reports, source).await?;
        crate::indicators::add_events(&tx, |defs, units, periods, out| {
            for r in reports {
                let district = units.district_code_of(&r.street);
                dhp_core::indicators::rules::case_report_tallies(
                    r, &district, defs, units, periods, out,
                );
            }
        })
        .await?;
        tx.commit().await
    }
    async fn case_reports(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        limit: i64,
    ) -> Result<Vec<dhp_core::surveillance::CaseReport>> {
        crate::surveillance::case_reports(self.pool(), from, to, limit).await
    }
    async fn case_report(&self, id: Id) -> Result<dhp_core::surveillance::CaseReport> {
        crate::surveillance::case_report_by_id(self.pool(), id).await
    }
    async fn case_counts(
        &self,
        basis: dhp_core::surveillance::DateBasis,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<dhp_core::surveillance::CaseCount>> {
        crate::surveillance::case_counts(self.pool(), basis, from, to).await
    }
    async fn put_sentinel_reports(
        &self,
        reports: &[dhp_core::surveillance::SentinelReport],
        received_at: NaiveDateTime,
    ) -> Result<()> {
        crate::surveillance::put_sentinel_reports(self.pool(), reports, received_at).await
    }
    async fn sentinel_reports(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<dhp_core::surveillance::SentinelReport>> {
        crate::surveillance::sentinel_reports(self.pool(), from, to).await
    }
    async fn sentinel_last_reports(&self, today: NaiveDate) -> Result<Vec<(String, NaiveDate)>> {
        crate::surveillance::sentinel_last_reports(self.pool(), today).await
    }
    async fn signals(&self, since: NaiveDate) -> Result<Vec<dhp_core::surveillance::Signal>> {
        crate::surveillance::signals(self.pool(), since).await
    }
    async fn signal(&self, id: Id) -> Result<dhp_core::surveillance::Signal> {
        crate::surveillance::signal_by_id(self.pool(), id).await
    }
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

    async fn save_signals(&self, signals: &mut [dhp_core::surveillance::Signal]) -> Result<()> {
        let new = signals.iter().filter(|s| s.id == 0).count() as i64;
        let next = if new > 0 {
            resources::reserve_ids(self.pool(), "Signal", new).await?
        } else {
            0
        };
        crate::surveillance::save_signals(self.pool(), signals, next).await
    }
    async fn move_signal(
        &self,
        signal: &dhp_core::surveillance::Signal,
        event: &dhp_core::surveillance::SignalEvent,
    ) -> Result<()> {
        // The step and what it changes of the response time, in one transaction.
        let tx = self.begin_write().await?;
        crate::surveillance::move_signal(&tx, signal, event).await?;
        let mut after = signal.clone();
        if event.to == dhp_core::surveillance::SignalStatus::Verifying {
            after.verifying_at = Some(event.at);
        }
        crate::indicators::add_events(&tx, |defs, units, periods, out| {
            use dhp_core::indicators::rules::signal_tallies;
            let district = units.district_code_of(&signal.area);
            signal_tallies(&after, &district, defs, units, periods, out);
            signal_tallies(signal, &district, defs, units, periods, &mut |t| {
                out(dhp_core::indicators::Tally {
                    num: -t.num,
                    den: -t.den,
                    ..t
                })
            });
        })
        .await?;
        tx.commit().await
    }
    async fn signal_events(&self, id: Id) -> Result<Vec<dhp_core::surveillance::SignalEvent>> {
        crate::surveillance::signal_events(self.pool(), id).await
    }
    async fn insert_outbreaks(
        &self,
        outbreaks: &[dhp_core::surveillance::InjectedOutbreak],
    ) -> Result<()> {
        crate::surveillance::insert_outbreaks(self.pool(), outbreaks).await
    }
    async fn outbreaks(&self) -> Result<Vec<dhp_core::surveillance::InjectedOutbreak>> {
        crate::surveillance::outbreaks(self.pool()).await
    }
    async fn close(&self) {
        self.shut().await
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
/// back.
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
/// types and in how the executor is reached from `$this` (the value itself).
macro_rules! impl_exec {
    ($target:ty, $row:ty, |$this:ident| $executor:expr) => {
        #[async_trait::async_trait]
        impl $crate::shared::Exec for $target {
            type Row = $row;

            async fn rows(
                &self,
                sql: &str,
                params: Vec<$crate::shared::Param>,
            ) -> $crate::Result<Vec<$row>> {
                let $this = self;
                let q = $crate::shared::bind_all!(sqlx::query(sql), params);
                Ok(q.fetch_all($executor).await?)
            }

            async fn execute(
                &self,
                sql: &str,
                params: Vec<$crate::shared::Param>,
            ) -> $crate::Result<()> {
                let $this = self;
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
fn crash_point() {
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

pub(crate) async fn page<E: Exec>(e: &E, table: Table, after: Id, limit: i64) -> Result<Batch> {
    let rows = e
        .rows(
            &rows::page_sql(table),
            vec![Param::I64(after), Param::I64(limit)],
        )
        .await?;
    let mut batch = Batch::default();
    for r in &rows {
        rows::push(&mut batch, table, r)?;
    }
    Ok(batch)
}

pub(crate) async fn count<E: Exec>(e: &E, table: Table) -> Result<i64> {
    let sql = format!("SELECT COUNT(*) FROM {}", table.name());
    one(e, &sql, vec![], || table.name().into()).await?.i64(0)
}

pub(crate) async fn meta<E: Exec>(e: &E, key: &str) -> Result<Option<String>> {
    let rows = e
        .rows("SELECT value FROM meta WHERE key = $1", vec![key.into()])
        .await?;
    rows.first().map(|r| r.text(0)).transpose()
}

/// Insert or replace one setting.
pub(crate) const SET_META: &str =
    "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value";

pub(crate) async fn set_meta<E: Exec>(e: &E, key: &str, value: &str) -> Result<()> {
    e.execute(SET_META, vec![key.into(), value.into()]).await
}

pub(crate) async fn organisation_by_code<E: Exec>(e: &E, code: &str) -> Result<Organisation> {
    let sql = format!(
        "SELECT {} FROM organisations WHERE code = $1",
        rows::columns(Table::Organisations)
    );
    rows::organisation(
        &one(e, &sql, vec![code.into()], || {
            format!("organisation {code}")
        })
        .await?,
    )
}

pub(crate) async fn resident_by_identity<E: Exec>(
    e: &E,
    identity_number: &str,
) -> Result<Resident> {
    let sql = format!(
        "SELECT {} FROM residents WHERE identity_number = $1",
        rows::columns(Table::Residents)
    );
    rows::resident(&one(e, &sql, vec![identity_number.into()], || "resident".into()).await?)
}

pub(crate) async fn area_counts<E: Exec>(e: &E) -> Result<Vec<AreaCount>> {
    let rows = e
        .rows(
            "SELECT o.id, \
             (SELECT COUNT(*) FROM residents r WHERE r.street_org_id = o.id), \
             (SELECT COUNT(*) FROM households h WHERE h.street_org_id = o.id) \
             FROM organisations o WHERE o.kind IN ('street', 'town') ORDER BY o.id",
            vec![],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(AreaCount {
                org_id: r.i64(0)?,
                residents: r.i64(1)?,
                households: r.i64(2)?,
            })
        })
        .collect()
}

pub(crate) async fn insert_user<E: Exec>(e: &E, u: &User) -> Result<()> {
    e.execute(
        "INSERT INTO users (id, username, password_hash, role, display_name, org_id, practitioner_id, resident_id, password_changed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        vec![
            Param::I64(u.id),
            u.username.as_str().into(),
            u.password_hash.as_str().into(),
            u.role.as_str().into(),
            u.display_name.as_str().into(),
            Param::OptI64(u.org_id),
            Param::OptI64(u.practitioner_id),
            Param::OptI64(u.resident_id),
            Param::DateTime(chrono::Utc::now().naive_utc()),
        ],
    )
    .await
}

pub(crate) async fn user_by_username<E: Exec>(e: &E, username: &str) -> Result<User> {
    let sql = format!(
        "SELECT {} FROM users WHERE username = $1",
        rows::USER_COLUMNS
    );
    rows::user(
        &one(e, &sql, vec![username.into()], || {
            format!("user {username}")
        })
        .await?,
    )
}

pub(crate) async fn users<E: Exec>(e: &E) -> Result<Vec<User>> {
    let sql = format!("SELECT {} FROM users ORDER BY id", rows::USER_COLUMNS);
    e.rows(&sql, vec![]).await?.iter().map(rows::user).collect()
}

fn by_id_sql(table: Table) -> String {
    format!(
        "SELECT {} FROM {} WHERE id = $1",
        rows::columns(table),
        table.name()
    )
}

/// One row of `table` by id, decoded through the paging decoder.
pub(crate) async fn by_id<E: Exec>(e: &E, table: Table, id: Id) -> Result<Batch> {
    let row = one(e, &by_id_sql(table), vec![Param::I64(id)], || {
        format!("{} {id}", table.name())
    })
    .await?;
    let mut batch = Batch::default();
    rows::push(&mut batch, table, &row)?;
    Ok(batch)
}

fn first<T>(v: Vec<T>, what: &str) -> Result<T> {
    v.into_iter()
        .next()
        .ok_or_else(|| StoreError::NotFound(what.into()))
}

pub(crate) async fn resident<E: Exec>(e: &E, id: Id) -> Result<Resident> {
    first(by_id(e, Table::Residents, id).await?.residents, "resident")
}

pub(crate) async fn household<E: Exec>(e: &E, id: Id) -> Result<Household> {
    first(
        by_id(e, Table::Households, id).await?.households,
        "household",
    )
}

pub(crate) async fn organisation<E: Exec>(e: &E, id: Id) -> Result<Organisation> {
    first(
        by_id(e, Table::Organisations, id).await?.organisations,
        "organisation",
    )
}

pub(crate) async fn resident_access_facts<E: Exec>(
    e: &E,
    id: Id,
    today: NaiveDate,
) -> Result<ResidentFacts> {
    let r = one(
        e,
        "SELECT district_code, street_org_id FROM residents WHERE id = $1",
        vec![Param::I64(id)],
        || format!("resident {id}"),
    )
    .await?;
    let contracts = e
        .rows(
            "SELECT centre_org_id, doctor_id FROM contracts WHERE resident_id = $1 \
             AND status <> 'ended' AND start_date <= $2 AND end_date >= $2",
            vec![Param::I64(id), Param::Date(today)],
        )
        .await?;
    let encounters = e
        .rows(
            "SELECT DISTINCT org_id FROM encounters WHERE resident_id = $1",
            vec![Param::I64(id)],
        )
        .await?;
    let emergency = crate::emergency::holders(e, id, chrono::Utc::now().naive_utc()).await?;
    Ok(ResidentFacts {
        resident_id: id,
        district_code: r.text(0)?,
        street_org_id: r.i64(1)?,
        contract_centres: contracts.iter().map(|c| c.i64(0)).collect::<Result<_>>()?,
        contract_doctors: contracts.iter().map(|c| c.i64(1)).collect::<Result<_>>()?,
        encounter_orgs: encounters.iter().map(|c| c.i64(0)).collect::<Result<_>>()?,
        emergency_users: emergency,
    })
}

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

pub(crate) async fn households<E: Exec>(e: &E, ids: &[Id]) -> Result<Vec<Household>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(1_000) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT {} FROM households WHERE id IN ({})",
            rows::columns(Table::Households),
            marks.join(", ")
        );
        let found = e
            .rows(&sql, chunk.iter().map(|id| Param::I64(*id)).collect())
            .await?;
        let mut batch = Batch::default();
        for r in &found {
            rows::push(&mut batch, Table::Households, r)?;
        }
        out.extend(batch.households);
    }
    Ok(out)
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
            let mut whose = vec![format!("c.centre_org_id = {}", bind(Param::I64(*centre)))];
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
        Scope::Hospital(h) => format!(
            "EXISTS (SELECT 1 FROM encounters e WHERE e.resident_id = r.id AND e.org_id = {})",
            bind(Param::I64(*h))
        ),
        Scope::Resident(id) => format!("r.id = {}", bind(Param::I64(*id))),
        Scope::Nothing => "1 = 0".into(),
    })
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
