//! SQLite backend: an embedded file in WAL mode, written with multi-row `INSERT`s.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use dhp_core::{Condition, Id, Organisation, Resident};
use sqlx::query_builder::Separated;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite};

use crate::figures::{self, DistrictFigures, Param};
use crate::rows::{self, Col};
use crate::{AreaCount, Batch, Result, Store, StoreError, Table, User};

/// SQLite allows 32,766 bound parameters per statement since 3.32.
const MAX_PARAMS: usize = 32_766;

/// The embedded store: one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Open (creating if missing) the database file at `path` and migrate it.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, SqliteSynchronous::Normal).await
    }

    /// Open for a bulk load into a new file that is renamed into place on success:
    /// durability is provided by the rename, so fsync per commit is skipped.
    pub async fn open_bulk(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, SqliteSynchronous::Off).await
    }

    async fn open_with(path: impl AsRef<Path>, sync: SqliteSynchronous) -> Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path.as_ref())
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(sync)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("src/sqlite/migrations").run(&pool).await?;
        Ok(Self { pool })
    }
}

/// Multi-row INSERT of `rows`, as many rows per statement as the parameter limit allows.
/// Full chunks share one SQL text, so the prepared statement is cached and reused.
async fn insert_rows<'a, T: 'a>(
    conn: &mut SqliteConnection,
    head: &'static str,
    columns: usize,
    rows: &'a [T],
    bind: impl Fn(&mut Separated<'_, 'a, Sqlite, &'static str>, &'a T),
) -> Result<()> {
    for chunk in rows.chunks((MAX_PARAMS / columns).max(1)) {
        let mut qb: QueryBuilder<'a, Sqlite> = QueryBuilder::new(head);
        qb.push_values(chunk, |mut b, r| bind(&mut b, r));
        qb.build().execute(&mut *conn).await.map_err(conflict)?;
    }
    Ok(())
}

/// Keep constraint violations apart from failures.
pub(crate) fn conflict(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d)
            if d.is_unique_violation()
                || d.is_foreign_key_violation()
                || d.is_check_violation() =>
        {
            StoreError::Conflict(d.message().to_string())
        }
        _ => StoreError::Database(e),
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn insert_batch(&self, b: &Batch) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let c = &mut *tx;
        insert_rows(c, "INSERT INTO organisations (id, code, name_zh, name_en, kind, level, parent_id, district_code, beds) ", 9, &b.organisations, |q, o| {
            q.push_bind(o.id).push_bind(o.code.as_str()).push_bind(o.name_zh.as_str()).push_bind(o.name_en.as_str())
                .push_bind(o.kind.as_str()).push_bind(o.level.map(|l| l as i64)).push_bind(o.parent_id)
                .push_bind(o.district_code.as_str()).push_bind(o.beds);
        }).await?;
        insert_rows(
            c,
            "INSERT INTO practitioners (id, name, role, org_id, district_code) ",
            5,
            &b.practitioners,
            |q, p| {
                q.push_bind(p.id)
                    .push_bind(p.name.as_str())
                    .push_bind(p.role.as_str())
                    .push_bind(p.org_id)
                    .push_bind(p.district_code.as_str());
            },
        )
        .await?;
        insert_rows(
            c,
            "INSERT INTO households (id, district_code, street_org_id, address) ",
            4,
            &b.households,
            |q, h| {
                q.push_bind(h.id)
                    .push_bind(h.district_code.as_str())
                    .push_bind(h.street_org_id)
                    .push_bind(h.address.as_str());
            },
        )
        .await?;
        insert_rows(c, "INSERT INTO residents (id, district_code, identity_number, name, sex, birth_date, street_org_id, household_id, phone, registered) ", 10, &b.residents, |q, r| {
            q.push_bind(r.id).push_bind(r.district_code.as_str()).push_bind(r.identity_number.as_str()).push_bind(r.name.as_str())
                .push_bind(sex(r)).push_bind(r.birth_date).push_bind(r.street_org_id).push_bind(r.household_id)
                .push_bind(r.phone.as_str()).push_bind(r.registered);
        }).await?;
        insert_rows(c, "INSERT INTO contracts (id, resident_id, centre_org_id, doctor_id, district_hospital_id, city_hospital_id, start_date, end_date, status) ", 9, &b.contracts, |q, k| {
            q.push_bind(k.id).push_bind(k.resident_id).push_bind(k.centre_org_id).push_bind(k.doctor_id)
                .push_bind(k.district_hospital_id).push_bind(k.city_hospital_id).push_bind(k.start).push_bind(k.end)
                .push_bind(k.status.as_str());
        }).await?;
        insert_rows(c, "INSERT INTO encounters (id, resident_id, kind, programme, org_id, practitioner_id, start_time) ", 7, &b.encounters, |q, e| {
            q.push_bind(e.id).push_bind(e.resident_id).push_bind(e.kind.as_str()).push_bind(e.programme.map(|p| p.as_str()))
                .push_bind(e.org_id).push_bind(e.practitioner_id).push_bind(e.start);
        }).await?;
        insert_rows(
            c,
            "INSERT INTO conditions (id, resident_id, icd10, category, onset, org_id) ",
            6,
            &b.conditions,
            |q, k| {
                q.push_bind(k.id)
                    .push_bind(k.resident_id)
                    .push_bind(k.icd10.as_str())
                    .push_bind(Condition::category(&k.icd10))
                    .push_bind(k.onset)
                    .push_bind(k.org_id);
            },
        )
        .await?;
        insert_rows(c, "INSERT INTO observations (id, resident_id, encounter_id, code, value, unit, effective) ", 7, &b.observations, |q, o| {
            q.push_bind(o.id).push_bind(o.resident_id).push_bind(o.encounter_id).push_bind(o.code.as_str())
                .push_bind(o.value).push_bind(o.unit.as_str()).push_bind(o.effective);
        }).await?;
        insert_rows(
            c,
            "INSERT INTO immunizations (id, resident_id, vaccine, dose_number, date, org_id) ",
            6,
            &b.immunizations,
            |q, i| {
                q.push_bind(i.id)
                    .push_bind(i.resident_id)
                    .push_bind(i.vaccine.as_str())
                    .push_bind(i.dose_number as i64)
                    .push_bind(i.date)
                    .push_bind(i.org_id);
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn page(&self, table: Table, after: Id, limit: i64) -> Result<Batch> {
        let rows = sqlx::query(&rows::page_sql(table))
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        let mut batch = Batch::default();
        for r in &rows {
            rows::push(&mut batch, table, r)?;
        }
        Ok(batch)
    }

    async fn count(&self, table: Table) -> Result<i64> {
        let sql = format!("SELECT COUNT(*) FROM {}", table.name());
        Ok(sqlx::query_scalar(&sql).fetch_one(&self.pool).await?)
    }

    async fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn organisation_by_code(&self, code: &str) -> Result<Organisation> {
        let sql = format!(
            "SELECT {} FROM organisations WHERE code = $1",
            rows::columns(Table::Organisations)
        );
        let row = sqlx::query(&sql)
            .bind(code)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("organisation {code}")))?;
        rows::organisation(&row)
    }

    async fn resident_by_identity(&self, identity_number: &str) -> Result<Resident> {
        let sql = format!(
            "SELECT {} FROM residents WHERE identity_number = $1",
            rows::columns(Table::Residents)
        );
        let row = sqlx::query(&sql)
            .bind(identity_number)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound("resident".into()))?;
        rows::resident(&row)
    }

    async fn area_counts(&self) -> Result<Vec<AreaCount>> {
        let rows = sqlx::query(AREA_COUNTS_SQL).fetch_all(&self.pool).await?;
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

    async fn insert_user(&self, u: &User) -> Result<()> {
        sqlx::query(INSERT_USER_SQL)
            .bind(u.id)
            .bind(&u.username)
            .bind(&u.password_hash)
            .bind(&u.role)
            .bind(&u.display_name)
            .bind(u.org_id)
            .bind(u.practitioner_id)
            .bind(u.resident_id)
            .execute(&self.pool)
            .await
            .map_err(conflict)?;
        Ok(())
    }

    async fn user_by_username(&self, username: &str) -> Result<User> {
        let sql = format!(
            "SELECT {} FROM users WHERE username = $1",
            rows::USER_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(username)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {username}")))?;
        rows::user(&row)
    }

    async fn users(&self) -> Result<Vec<User>> {
        let sql = format!("SELECT {} FROM users ORDER BY id", rows::USER_COLUMNS);
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(rows::user).collect()
    }

    async fn district_figures(&self, district_code: &str, year: i32) -> Result<DistrictFigures> {
        let mut out = Vec::new();
        for fq in figures::queries(district_code, year) {
            let mut q = sqlx::query(fq.sql);
            for p in fq.params {
                q = match p {
                    Param::Text(s) => q.bind(s),
                    Param::Date(d) => q.bind(d),
                    Param::DateTime(t) => q.bind(t),
                };
            }
            let row = q.fetch_one(&self.pool).await?;
            out.push(
                (0..fq.columns)
                    .map(|i| row.i64(i))
                    .collect::<Result<Vec<_>>>()?,
            );
        }
        Ok(figures::assemble(year, out))
    }

    async fn close(&self) {
        // Best effort: a failed checkpoint leaves the WAL, which the next open replays.
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await
        {
            tracing::warn!(error = %e, "wal checkpoint failed");
        }
        self.pool.close().await;
    }

    async fn clear(&self) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for sql in CLEAR_SQL {
            sqlx::query(sql).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

fn sex(r: &Resident) -> &'static str {
    match r.sex {
        dhp_core::Sex::Male => "male",
        dhp_core::Sex::Female => "female",
    }
}

pub(crate) const AREA_COUNTS_SQL: &str = "SELECT o.id, \
    (SELECT COUNT(*) FROM residents r WHERE r.street_org_id = o.id), \
    (SELECT COUNT(*) FROM households h WHERE h.street_org_id = o.id) \
    FROM organisations o WHERE o.kind IN ('street', 'town') ORDER BY o.id";

pub(crate) const INSERT_USER_SQL: &str = "INSERT INTO users (id, username, password_hash, role, display_name, org_id, practitioner_id, resident_id) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// Children before parents.
pub(crate) const CLEAR_SQL: [&str; 11] = [
    "DELETE FROM users",
    "DELETE FROM immunizations",
    "DELETE FROM observations",
    "DELETE FROM conditions",
    "DELETE FROM encounters",
    "DELETE FROM contracts",
    "DELETE FROM residents",
    "DELETE FROM households",
    "DELETE FROM practitioners",
    "DELETE FROM organisations",
    "DELETE FROM meta",
];
