//! dhp-store: persistence behind the [`Store`] trait, with a SQLite backend (embedded,
//! the default) and a PostgreSQL backend (production). Each backend has its own
//! migrations; one conformance suite (`tests/it`) runs against both.
//!
//! Writes go in batches: one transaction per [`Batch`], multi-row `INSERT` on SQLite and
//! `UNNEST` arrays on PostgreSQL. Keys are assigned by the writer, never by the
//! database, so the same input always gives the same rows.

mod audit_chain;
mod emergency;
mod indicators;
mod logins;
mod passwords;
mod postgres;
mod programmes;
mod resources;
mod rows;
mod search;
mod shared;
mod sqlite;
mod surveillance;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{NaiveDate, NaiveDateTime};
use dhp_core::access::{ResidentFacts, Scope};
use dhp_core::{
    Condition, Contract, Encounter, Household, Id, Immunization, Observation, Organisation,
    Practitioner, Resident,
};
use sha2::{Digest, Sha256};

pub use audit_chain::{
    entry_hash as audit_entry_hash, ChainBreak, ChainHead, ChainReport, SealedAudit,
    GENESIS as AUDIT_GENESIS,
};
pub use emergency::EmergencyGrant;
pub use indicators::PERIODS_META as INDICATOR_PERIODS_META;
pub use logins::LoginFailures;
pub use passwords::PasswordState;
pub use postgres::PostgresStore;
pub use programmes::{Cohort, Reading};
pub use resources::{core_table, Guard, Index, Prior, ResourceWrite, StoredResource, WriteSet};
pub use sqlite::SqliteStore;

/// Errors of the store. `NotFound` and `Conflict` are answers, the rest are failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    /// A conditional create found the resident it was not to create (their id).
    #[error("resident {0} already matches")]
    Exists(Id),
    #[error("unsupported database url {0:?}: use sqlite://PATH or postgres://USER@HOST/DB")]
    BadUrl(String),
    #[error("database {0} already holds a district; use an empty database")]
    NotEmpty(String),
    #[error("stored row is invalid: {0}")]
    Corrupt(String),
    /// A query the store cannot run (a field the table does not have).
    #[error("invalid query: {0}")]
    Invalid(String),
    // The sqlx error is shown in the message rather than chained as a source: its own
    // Display already includes its cause, and a chain would print it twice.
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// A bulk scan of the embedded file failed.
    #[error("database error: {0}")]
    Embedded(String),
    #[error("migration failed: {0}")]
    Migrate(sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(e)
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The large tables, in dependency order (a row only refers to rows of earlier tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    Organisations,
    Practitioners,
    Households,
    Residents,
    Contracts,
    Encounters,
    Conditions,
    Observations,
    Immunizations,
}

impl Table {
    pub const ALL: [Table; 9] = [
        Table::Organisations,
        Table::Practitioners,
        Table::Households,
        Table::Residents,
        Table::Contracts,
        Table::Encounters,
        Table::Conditions,
        Table::Observations,
        Table::Immunizations,
    ];

    /// The SQL table name (the same in both backends).
    pub fn name(self) -> &'static str {
        match self {
            Table::Organisations => "organisations",
            Table::Practitioners => "practitioners",
            Table::Households => "households",
            Table::Residents => "residents",
            Table::Contracts => "contracts",
            Table::Encounters => "encounters",
            Table::Conditions => "conditions",
            Table::Observations => "observations",
            Table::Immunizations => "immunizations",
        }
    }
}

/// Rows to write in one transaction, or rows read from one table.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Batch {
    pub organisations: Vec<Organisation>,
    pub practitioners: Vec<Practitioner>,
    pub households: Vec<Household>,
    pub residents: Vec<Resident>,
    pub contracts: Vec<Contract>,
    pub encounters: Vec<Encounter>,
    pub conditions: Vec<Condition>,
    pub observations: Vec<Observation>,
    pub immunizations: Vec<Immunization>,
}

impl Batch {
    /// Number of rows in the batch.
    pub fn len(&self) -> usize {
        self.organisations.len()
            + self.practitioners.len()
            + self.households.len()
            + self.residents.len()
            + self.contracts.len()
            + self.encounters.len()
            + self.conditions.len()
            + self.observations.len()
            + self.immunizations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The largest id in the batch, for paging through a table.
    pub fn last_id(&self) -> Option<Id> {
        [
            self.organisations.iter().map(|r| r.id).max(),
            self.practitioners.iter().map(|r| r.id).max(),
            self.households.iter().map(|r| r.id).max(),
            self.residents.iter().map(|r| r.id).max(),
            self.contracts.iter().map(|r| r.id).max(),
            self.encounters.iter().map(|r| r.id).max(),
            self.conditions.iter().map(|r| r.id).max(),
            self.observations.iter().map(|r| r.id).max(),
            self.immunizations.iter().map(|r| r.id).max(),
        ]
        .into_iter()
        .flatten()
        .max()
    }

    /// Canonical one-line text of every row, in table then id order. The digest of a
    /// database is the SHA-256 of these lines, so it is the same on either backend.
    fn canonical_lines(&self, out: &mut impl FnMut(String)) {
        fn opt<T: fmt::Display>(v: &Option<T>) -> String {
            v.as_ref().map(|x| x.to_string()).unwrap_or_default()
        }
        for o in &self.organisations {
            out(format!(
                "o|{}|{}|{}|{}|{}|{}|{}|{}|{}",
                o.id,
                o.code,
                o.name_zh,
                o.name_en,
                o.kind.as_str(),
                opt(&o.level.map(|l| l as i64)),
                opt(&o.parent_id),
                o.district_code,
                o.beds
            ));
        }
        for p in &self.practitioners {
            out(format!(
                "p|{}|{}|{}|{}|{}",
                p.id,
                p.name,
                p.role.as_str(),
                p.org_id,
                p.district_code
            ));
        }
        for h in &self.households {
            out(format!(
                "h|{}|{}|{}|{}",
                h.id, h.district_code, h.street_org_id, h.address
            ));
        }
        for r in &self.residents {
            out(format!(
                "r|{}|{}|{}|{}|{:?}|{}|{}|{}|{}|{}",
                r.id,
                r.district_code,
                r.identity_number,
                r.name,
                r.sex,
                r.birth_date,
                r.street_org_id,
                r.household_id,
                r.phone,
                r.registered
            ));
        }
        for c in &self.contracts {
            out(format!(
                "k|{}|{}|{}|{}|{}|{}|{}|{}|{}",
                c.id,
                c.resident_id,
                c.centre_org_id,
                c.doctor_id,
                c.district_hospital_id,
                c.city_hospital_id,
                c.start,
                c.end,
                c.status.as_str()
            ));
        }
        for e in &self.encounters {
            out(format!(
                "e|{}|{}|{}|{}|{}|{}|{}",
                e.id,
                e.resident_id,
                e.kind.as_str(),
                opt(&e.programme.map(|p| p.as_str())),
                e.org_id,
                opt(&e.practitioner_id),
                e.start
            ));
        }
        for c in &self.conditions {
            out(format!(
                "c|{}|{}|{}|{}|{}",
                c.id, c.resident_id, c.icd10, c.onset, c.org_id
            ));
        }
        for o in &self.observations {
            out(format!(
                "b|{}|{}|{}|{}|{}|{}|{}",
                o.id,
                o.resident_id,
                opt(&o.encounter_id),
                o.code,
                o.value,
                o.unit,
                o.effective
            ));
        }
        for i in &self.immunizations {
            out(format!(
                "i|{}|{}|{}|{}|{}|{}",
                i.id, i.resident_id, i.vaccine, i.dose_number, i.date, i.org_id
            ));
        }
    }
}

/// A login account of the portal.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: Id,
    pub username: String,
    /// PHC string of an argon2 hash; never the password.
    pub password_hash: String,
    /// `system`, `manager`, `public_health_doctor`, `family_doctor`,
    /// `hospital_clinician` or `resident`.
    pub role: String,
    pub display_name: String,
    pub org_id: Option<Id>,
    pub practitioner_id: Option<Id>,
    pub resident_id: Option<Id>,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password_hash", &"[redacted]")
            .field("role", &self.role)
            .field("org_id", &self.org_id)
            .finish()
    }
}

/// A comparison of a date search parameter (FHIR prefixes eq, ne, lt, gt, le, ge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

impl Comparison {
    pub(crate) fn sql(self) -> &'static str {
        match self {
            Comparison::Eq => "=",
            Comparison::Ne => "<>",
            Comparison::Lt => "<",
            Comparison::Gt => ">",
            Comparison::Le => "<=",
            Comparison::Ge => ">=",
        }
    }
}

/// What a resident search asks for; every field set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResidentFilter {
    pub id: Option<Id>,
    pub identity_number: Option<String>,
    /// Any part of the name starts with this (family name or given name).
    pub name: Option<String>,
    /// The family name (the first character) starts with this.
    pub family: Option<String>,
    /// The given name (after the family name) starts with this.
    pub given: Option<String>,
    pub sex: Option<dhp_core::Sex>,
    pub birth_date: Vec<(Comparison, NaiveDate)>,
    /// The street or town the resident lives in is one of these (when set).
    pub street_org: Option<Vec<Id>>,
    /// The household address contains this.
    pub address: Option<String>,
    /// Conditions on when the record was last written (UTC), generated records counting
    /// as written at `generated`.
    pub last_updated: Vec<dhp_core::query::DateCond>,
    /// `YYYY-MM-DDTHH:MM:SS.sssZ` when the district was generated.
    pub generated: String,
    /// Order (`true` = descending; `Field::Date` is the birth date, `Field::Name` the
    /// name); ties go by id.
    pub sort: Vec<(dhp_core::query::Field, bool)>,
}

/// One entry of the audit log (审计日志): who did what to which resident's data, when,
/// and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Time-ordered unique id (UUIDv7), assigned by the writer.
    pub id: String,
    pub recorded: NaiveDateTime,
    pub username: String,
    pub role: String,
    pub org_id: Option<Id>,
    pub resident_id: Option<Id>,
    /// `read`, `search`, `create`, `update`, `delete`, `login`.
    pub action: String,
    /// What was touched, e.g. `Patient/123`, or `/auth/token`.
    pub resource: String,
    /// `success`, `denied`, `not-found`, `invalid`, `failed`.
    pub outcome: String,
    pub detail: String,
}

/// Residents of one street or town, for the home page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AreaCount {
    pub org_id: Id,
    pub residents: i64,
    pub households: i64,
}

/// Persistence of the platform. Implemented by [`SqliteStore`] and [`PostgresStore`];
/// both pass the same conformance suite.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Write every row of `batch` in one transaction: all or nothing.
    async fn insert_batch(&self, batch: &Batch) -> Result<()>;

    /// Up to `limit` rows of `table` with `id > after`, in id order.
    async fn page(&self, table: Table, after: Id, limit: i64) -> Result<Batch>;

    /// Number of rows in `table`.
    async fn count(&self, table: Table) -> Result<i64>;

    /// A value of the `meta` table (generation parameters and the like).
    async fn meta(&self, key: &str) -> Result<Option<String>>;

    /// Set a value of the `meta` table.
    async fn set_meta(&self, key: &str, value: &str) -> Result<()>;

    /// Look an organisation up by its code.
    async fn organisation_by_code(&self, code: &str) -> Result<Organisation>;

    /// Look a resident up by identity number.
    async fn resident_by_identity(&self, identity_number: &str) -> Result<Resident>;

    /// Residents and households per street or town.
    async fn area_counts(&self) -> Result<Vec<AreaCount>>;

    /// Add a login account; `Conflict` if the username is taken.
    async fn insert_user(&self, user: &User) -> Result<()>;

    async fn user_by_username(&self, username: &str) -> Result<User>;

    async fn users(&self) -> Result<Vec<User>>;

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

    /// Remove every row of every table (used to undo a failed generation on a server
    /// database, where the load cannot be one file renamed into place).
    async fn clear(&self) -> Result<()>;

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

    /// The row of `table` with `id` (in the batch's vector for that table).
    async fn get(&self, table: Table, id: Id) -> Result<Batch>;

    async fn resident(&self, id: Id) -> Result<Resident>;

    async fn household(&self, id: Id) -> Result<Household>;

    async fn organisation(&self, id: Id) -> Result<Organisation>;

    /// What decides who may see resident `id` on `today` (contracts in force,
    /// organisations of their encounters).
    async fn resident_access_facts(&self, id: Id, today: NaiveDate) -> Result<ResidentFacts>;

    /// Record a failed login of `username` (known or not) from client `address` at `at`,
    /// forgetting every failure before `forget_before`.
    async fn record_login_failure(
        &self,
        username: &str,
        address: &str,
        at: NaiveDateTime,
        forget_before: NaiveDateTime,
    ) -> Result<()>;

    /// Failed logins since `since`: `username`'s, oldest first, and how many came from
    /// `address`.
    async fn login_failures(
        &self,
        username: &str,
        address: &str,
        since: NaiveDateTime,
    ) -> Result<LoginFailures>;

    /// Forget `username`'s failed logins (it signed in, or an administrator unlocked it).
    async fn clear_login_failures(&self, username: &str) -> Result<()>;

    /// Where `username`'s password stands, with the `history` hashes it last replaced.
    async fn password_state(&self, username: &str, history: usize) -> Result<PasswordState>;

    /// Set `username`'s password hash at `at` (the old hash is remembered), and whether
    /// it must be changed at the next login; one transaction.
    async fn set_password(
        &self,
        username: &str,
        hash: &str,
        must_change: bool,
        at: NaiveDateTime,
    ) -> Result<()>;

    /// Whether `username` must change the password at the next login; with `dated`, a
    /// password with no date on record counts as set then.
    async fn require_password_change(
        &self,
        username: &str,
        must: bool,
        dated: Option<NaiveDateTime>,
    ) -> Result<()>;

    /// Append to the audit log.
    async fn insert_audit(&self, event: &AuditEvent) -> Result<()>;

    /// Append several entries in one transaction (all or none).
    async fn insert_audits(&self, events: &[AuditEvent]) -> Result<()>;

    /// The households with these ids (any order; unknown ids are skipped).
    async fn households(&self, ids: &[Id]) -> Result<Vec<Household>>;

    /// The audit log, newest first, at most `limit` entries, optionally for one resident.
    async fn audit_events(&self, resident_id: Option<Id>, limit: i64) -> Result<Vec<AuditEvent>>;

    /// A consistent copy of the whole database into the new file `path`, taken while
    /// others go on writing (SQLite: `VACUUM INTO`).
    async fn backup_into(&self, path: &str) -> Result<()>;

    /// Record an emergency access grant (break the glass).
    async fn grant_emergency_access(&self, grant: &EmergencyGrant) -> Result<()>;

    /// Emergency access grants made since `since`, newest first, each with the number
    /// of audit entries its holder wrote on the resident while it lasted.
    async fn emergency_grants(&self, since: NaiveDateTime) -> Result<Vec<(EmergencyGrant, i64)>>;

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

    // Surveillance (SPEC capability 5).
    /// Stores case reports as given (ids reserved by the caller).
    async fn insert_case_reports(
        &self,
        reports: &[dhp_core::surveillance::CaseReport],
        source: &str,
    ) -> Result<()>;
    /// Case reports received on `from..=to`, newest first.
    async fn case_reports(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        limit: i64,
    ) -> Result<Vec<dhp_core::surveillance::CaseReport>>;
    async fn case_report(&self, id: Id) -> Result<dhp_core::surveillance::CaseReport>;
    /// Cases per disease, street and day (excluded cases left out).
    async fn case_counts(
        &self,
        basis: dhp_core::surveillance::DateBasis,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<dhp_core::surveillance::CaseCount>>;
    async fn put_sentinel_reports(
        &self,
        reports: &[dhp_core::surveillance::SentinelReport],
        received_at: chrono::NaiveDateTime,
    ) -> Result<()>;
    async fn sentinel_reports(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<dhp_core::surveillance::SentinelReport>>;
    async fn sentinel_last_reports(&self, today: NaiveDate) -> Result<Vec<(String, NaiveDate)>>;
    /// Signals whose last alarm day is on or after `since`, newest first.
    async fn signals(&self, since: NaiveDate) -> Result<Vec<dhp_core::surveillance::Signal>>;
    async fn signal(&self, id: Id) -> Result<dhp_core::surveillance::Signal>;
    /// Inserts new signals (id 0; ids assigned in place) and updates the others' figures.
    async fn save_signals(&self, signals: &mut [dhp_core::surveillance::Signal]) -> Result<()>;
    /// One verification step, guarded on the signal still being in `event.from`.
    async fn move_signal(
        &self,
        signal: &dhp_core::surveillance::Signal,
        event: &dhp_core::surveillance::SignalEvent,
    ) -> Result<()>;
    async fn signal_events(&self, id: Id) -> Result<Vec<dhp_core::surveillance::SignalEvent>>;
    async fn insert_outbreaks(
        &self,
        outbreaks: &[dhp_core::surveillance::InjectedOutbreak],
    ) -> Result<()>;
    async fn outbreaks(&self) -> Result<Vec<dhp_core::surveillance::InjectedOutbreak>>;
    /// Close the connections (SQLite: checkpoint the WAL into the file first).
    // Indicators (SPEC capability 7).
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

    async fn close(&self);
}

/// Every organisation, in id order.
pub async fn organisations(store: &dyn Store) -> Result<Vec<Organisation>> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = store.page(Table::Organisations, after, 10_000).await?;
        let Some(last) = page.organisations.last() else {
            break;
        };
        after = last.id;
        out.extend(page.organisations);
    }
    Ok(out)
}

/// The practitioners of the store, in id order.
pub async fn practitioners(store: &dyn Store) -> Result<Vec<dhp_core::Practitioner>> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = store.page(Table::Practitioners, after, 10_000).await?;
        let Some(last) = page.practitioners.last() else {
            break;
        };
        after = last.id;
        out.extend(page.practitioners);
    }
    Ok(out)
}

/// The district's "today": the last day of its records (meta `end_date`: a generated
/// district ends on a fixed day), else the calendar's today.
pub async fn as_of(store: &dyn Store) -> Result<chrono::NaiveDate> {
    Ok(store
        .meta("end_date")
        .await?
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| chrono::Local::now().date_naive()))
}

/// The periods the stored indicator counts cover (empty before the first rebuild).
pub async fn indicator_periods(store: &dyn Store) -> Result<Vec<dhp_core::indicators::Period>> {
    indicators::parse_periods(store.meta(indicators::PERIODS_META).await?)
}

/// Row counts of every table plus a SHA-256 content digest over all rows in canonical
/// form. Equal digests mean byte-identical data, whichever backend holds it.
pub async fn content_digest(store: &dyn Store) -> Result<(Vec<(Table, i64)>, String)> {
    const PAGE: i64 = 50_000;
    let mut hasher = Sha256::new();
    let mut counts = Vec::new();
    for table in Table::ALL {
        let mut after = 0;
        let mut n = 0i64;
        loop {
            let page = store.page(table, after, PAGE).await?;
            let rows = page.len() as i64;
            if rows == 0 {
                break;
            }
            n += rows;
            page.canonical_lines(&mut |line| {
                hasher.update(line.as_bytes());
                hasher.update(b"\n");
            });
            after = page.last_id().unwrap_or(after);
            if rows < PAGE {
                break;
            }
        }
        counts.push((table, n));
    }
    Ok((counts, hex::encode(hasher.finalize())))
}

/// Open the store a URL names, creating the database file (SQLite) and running the
/// backend's migrations. Accepts `sqlite://PATH`, `sqlite:PATH`, `postgres://…` and
/// `postgresql://…`.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    if let Some(path) = sqlite_path(url) {
        Ok(Arc::new(SqliteStore::open(path).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else {
        Err(StoreError::BadUrl(url.to_string()))
    }
}

/// The file path of a SQLite URL, or `None` if the URL is not SQLite.
pub fn sqlite_path(url: &str) -> Option<&str> {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .filter(|p| !p.is_empty())
}

/// A database URL fit for messages: the password, if any, replaced by `***`.
pub fn redact_url(url: &str) -> String {
    match url.split_once('@') {
        Some((scheme_user, host)) => match scheme_user.rsplit_once(':') {
            Some((user, _)) if user.contains("//") => format!("{user}:***@{host}"),
            _ => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// A PostgreSQL connection for administrative statements (scratch databases for
/// benchmarks); not part of the `Store`.
#[derive(Debug)]
pub struct AdminPool(sqlx::PgPool);

impl AdminPool {
    pub async fn connect(url: &str) -> Result<Self> {
        Ok(Self(sqlx::PgPool::connect(url).await?))
    }

    pub async fn execute(&self, sql: &str) -> Result<()> {
        sqlx::query(sql).execute(&self.0).await?;
        Ok(())
    }

    /// An empty database `name` on the server of `admin_url` (dropped first if it
    /// exists), and its URL.
    pub async fn fresh_database(&self, admin_url: &str, name: &str) -> Result<String> {
        let Some((base, _)) = admin_url.rsplit_once('/') else {
            return Err(StoreError::Invalid(format!(
                "{}: the PostgreSQL URL names no database",
                redact_url(admin_url)
            )));
        };
        self.execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await?;
        self.execute(&format!("CREATE DATABASE {name}")).await?;
        Ok(format!("{base}/{name}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_passwords_in_messages() {
        assert_eq!(
            redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://a.db"), "sqlite://a.db");
    }

    #[test]
    fn only_known_schemes_are_sqlite() {
        assert_eq!(sqlite_path("sqlite://x.db"), Some("x.db"));
        assert_eq!(sqlite_path("sqlite:x.db"), Some("x.db"));
        assert_eq!(sqlite_path("sqlite://"), None);
        assert_eq!(sqlite_path("mysql://x"), None);
    }
}
