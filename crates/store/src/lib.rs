//! dhp-store: persistence behind the [`Store`] trait, with a SQLite backend (embedded,
//! the default) and a PostgreSQL backend (production). Each backend has its own
//! migrations; one conformance suite (`tests/it`) runs against both.
//!
//! Writes go in batches: one transaction per [`Batch`], multi-row `INSERT` on SQLite and
//! `UNNEST` arrays on PostgreSQL. Keys are assigned by the writer, never by the
//! database, so the same input always gives the same rows.

mod access;
mod accounts;
mod audit;
mod booking;
mod indicators;
mod portal;
mod postgres;
mod programmes;
mod recognition;
mod referral;
mod registry;
mod resources;
mod rows;
mod search;
mod shared;
mod sqlite;
mod surveillance;
mod tables;

use std::fmt;
use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime};
use dhp_core::{
    Condition, Contract, Encounter, Household, Id, ImagingStudy, Immunization, Observation,
    Organisation, Practitioner, Resident,
};
use sha2::{Digest, Sha256};

pub use access::emergency::EmergencyGrant;
pub use access::AccessStore;
pub use accounts::logins::LoginFailures;
pub use accounts::passwords::PasswordState;
pub use accounts::AccountStore;
pub use audit::chain::{
    entry_hash as audit_entry_hash, ChainBreak, ChainHead, ChainReport, SealedAudit,
    GENESIS as AUDIT_GENESIS,
};
pub use audit::{AuditQuery, AuditStore};
pub use booking::{
    AppointmentFilter, AppointmentRow, AppointmentStep, AppointmentView, Booking, BookingStore,
    ClinicAppointment, Delivery, DueReminder, Reminder, ScheduleFilter, SlotFilter, SlotQuery,
    SlotState, WaitEntry,
};
pub use indicators::IndicatorStore;
pub use indicators::PERIODS_META as INDICATOR_PERIODS_META;
pub use portal::{ContractAsk, Guardianship, PortalStore, Survey};
pub use postgres::PostgresStore;
pub use programmes::CohortStore;
pub use programmes::{Cohort, Reading};
pub use recognition::{
    Finding, NewOrder, OrderRow, PriorResult, RecognitionFigures, RecognitionStore,
};
pub use referral::{
    FoundReferral, ReferralFilter, ReferralRow, ReferralSearch, ReferralStep, ReferralStore,
};
pub use registry::RegistryStore;
pub use resources::ResourceStore;
pub use resources::{core_table, Guard, Index, Prior, ResourceWrite, StoredResource, WriteSet};
pub use search::SearchStore;
pub use sqlite::SqliteStore;
pub use surveillance::SurveillanceStore;
pub use tables::TableStore;

/// The conflict of a second imaging study with a Study Instance UID already held
/// (a write checks first; two writers at once meet the unique index).
pub const STUDY_UID_TAKEN: &str = "another imaging study already has this Study Instance UID";

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
    ImagingStudies,
}

impl Table {
    pub const ALL: [Table; 10] = [
        Table::Organisations,
        Table::Practitioners,
        Table::Households,
        Table::Residents,
        Table::Contracts,
        Table::Encounters,
        Table::Conditions,
        Table::Observations,
        Table::Immunizations,
        Table::ImagingStudies,
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
            Table::ImagingStudies => "imaging_studies",
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
    pub imaging_studies: Vec<ImagingStudy>,
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
            + self.imaging_studies.len()
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
            self.imaging_studies.iter().map(|r| r.id).max(),
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
        for m in &self.imaging_studies {
            out(format!(
                "m|{}|{}|{}|{}|{}|{}|{}|{}|{}",
                m.id,
                m.resident_id,
                m.encounter_id,
                m.org_id,
                m.code,
                m.modality,
                m.started,
                m.uid,
                m.findings
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

/// Persistence of the platform: the union of one trait per concern (each in the
/// module that owns its SQL). Implemented by [`SqliteStore`] and [`PostgresStore`];
/// both pass the same conformance suite. Code that needs one concern may ask for
/// that trait alone.
pub trait Store:
    TableStore
    + RegistryStore
    + SearchStore
    + ResourceStore
    + CohortStore
    + SurveillanceStore
    + IndicatorStore
    + AccountStore
    + AuditStore
    + AccessStore
    + BookingStore
    + ReferralStore
    + RecognitionStore
    + PortalStore
    + Send
    + Sync
    + fmt::Debug
{
}

impl<
        T: TableStore
            + RegistryStore
            + SearchStore
            + ResourceStore
            + CohortStore
            + SurveillanceStore
            + IndicatorStore
            + AccountStore
            + AuditStore
            + AccessStore
            + BookingStore
            + ReferralStore
            + RecognitionStore
            + PortalStore
            + Send
            + Sync
            + fmt::Debug
            + ?Sized,
    > Store for T
{
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
        .unwrap_or_else(dhp_core::clock::today))
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
