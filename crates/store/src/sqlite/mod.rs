//! SQLite backend: an embedded file in WAL mode, written with multi-row `INSERT`s.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use dhp_core::{Condition, Resident};
use sqlx::query_builder::Separated;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite};

use crate::shared::{self, impl_exec, Backend, Commit};
use crate::{Batch, Result, WriteSet};

mod group;
mod scan;

pub use group::SqliteTx;

impl_exec!(SqlitePool, sqlx::sqlite::SqliteRow, |pool, _sql| pool);
impl_exec!(SqliteTx, sqlx::sqlite::SqliteRow, |tx, sql| &mut *tx
    .conn(Some(sql))
    .await?);

/// SQLite allows 32,766 bound parameters per statement since 3.32.
const MAX_PARAMS: usize = 32_766;

/// The embedded store: one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Write transactions of this process: turns and group commit (see [`group`]).
    writers: group::Writers,
    /// The database file, for bulk scans on connections of their own.
    path: std::path::PathBuf,
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
            .pragma("temp_store", "memory")
            // Checkpoints are the checkpointer's (below), not a committing writer's.
            .pragma("wal_autocheckpoint", "0");
        let pool = SqlitePoolOptions::new()
            .max_connections(16)
            .connect_with(options)
            .await?;
        sqlx::migrate!("src/sqlite/migrations").run(&pool).await?;
        checkpoints(pool.clone());
        Ok(Self {
            writers: group::Writers::new(pool.clone()),
            pool,
            path: path.as_ref().to_path_buf(),
        })
    }
}

/// Copy the log into the database file twice a second, beside the writers: a commit
/// that had to do it (SQLite's automatic checkpoint, every 1,000 pages) held every
/// writer of its group for the copy and its fsync. Ends when the pool is closed.
fn checkpoints(pool: SqlitePool) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if pool.is_closed() {
                break;
            }
            // PASSIVE: copies what no reader still needs, never waits for anyone.
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                if !pool.is_closed() {
                    tracing::warn!(error = %e, "wal checkpoint failed");
                }
            }
        }
    });
}

/// Multi-row INSERT of `rows`, as many rows per statement as the parameter limit allows.
/// Full chunks share one SQL text, so the prepared statement is cached and reused.
/// With `upsert`, a row whose id exists replaces it.
async fn insert_rows<'a, T: 'a>(
    conn: &mut SqliteConnection,
    upsert: bool,
    head: &'static str,
    columns: usize,
    rows: &'a [T],
    bind: impl Fn(&mut Separated<'_, 'a, Sqlite, &'static str>, &'a T),
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let suffix = if upsert {
        shared::on_conflict_update(head)
    } else {
        String::new()
    };
    for chunk in rows.chunks((MAX_PARAMS / columns).max(1)) {
        let mut qb: QueryBuilder<'a, Sqlite> = QueryBuilder::new(head);
        qb.push_values(chunk, |mut b, r| bind(&mut b, r));
        qb.push(&suffix);
        qb.build()
            .execute(&mut *conn)
            .await
            .map_err(shared::conflict)?;
    }
    Ok(())
}

#[async_trait]
impl Backend for SqliteStore {
    type Pool = SqlitePool;
    type Tx = SqliteTx;

    async fn begin_write(&self) -> Result<Self::Tx> {
        // One writer at a time in this process, in arrival order, inside the shared
        // transaction (BEGIN IMMEDIATE when it opens; other processes meet the busy
        // timeout).
        self.writers.begin().await
    }

    fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    fn name(&self) -> &'static str {
        "sqlite"
    }

    async fn write_batch(&self, b: &Batch) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        write_rows(&mut tx, b, false).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn shut(&self) {
        // Best effort: a failed checkpoint leaves the WAL, which the next open replays.
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await
        {
            tracing::warn!(error = %e, "wal checkpoint failed");
        }
        self.pool.close().await;
    }

    async fn backup_file(&self, path: &str) -> Result<bool> {
        // One read transaction: the copy is one consistent state, and writers go on.
        sqlx::query("VACUUM INTO ?")
            .bind(path)
            .execute(&self.pool)
            .await?;
        Ok(true)
    }

    async fn clear_all(&self) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for sql in CLEAR_SQL {
            sqlx::query(sql).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl crate::resources::WriteSets for SqliteStore {
    async fn write_set(&self, w: &WriteSet) -> Result<()> {
        // IMMEDIATE (begin_write): take the write lock first, so the version checks
        // inside cannot be overtaken by another writer between read and write.
        let tx = self.begin_write().await?;
        if let Err(e) = crate::resources::check_searches(&tx, w).await {
            // What the search found may be another writer's work in the shared
            // transaction, not yet committed: "it exists" is answered only once that
            // commit is done (and not at all if it failed), so the caller can read it.
            if matches!(e, crate::StoreError::Exists(_)) {
                tx.commit().await?;
            }
            return Err(e);
        }
        // Indicator counts move in the same transaction (before/after tallies).
        let tracking = crate::indicators::Tracking::before(&tx, w).await?;
        {
            let mut g = tx.conn(None).await?;
            crate::resources::run_write_set!((g), w, upsert_rows, false)?;
        }
        crate::booking::apply_in_set(&tx, false, &w.bookings, &w.holds, &w.appointment_steps)
            .await?;
        if let Some(t) = tracking {
            t.after(&tx, w).await?;
        }
        tx.commit().await
    }
}

#[async_trait]
impl crate::programmes::BulkRecords for SqliteStore {
    async fn bulk_records(
        &self,
        cohort: &crate::Cohort,
        reading: crate::Reading,
        today: chrono::NaiveDate,
        after: dhp_core::Id,
        limit: i64,
    ) -> Result<Option<Vec<dhp_core::programmes::ResidentRecord>>> {
        let path = self.path.clone();
        let cohort = cohort.clone();
        tokio::task::spawn_blocking(move || {
            scan::records(&path, &cohort, reading, today, after, limit)
        })
        .await
        .map_err(|e| crate::StoreError::Embedded(format!("scan task: {e}")))?
        .map(Some)
    }
}

async fn upsert_rows(c: &mut SqliteConnection, b: &Batch) -> Result<()> {
    write_rows(c, b, true).await
}

/// Every row of `b`, parents before children, on an open transaction.
async fn write_rows(c: &mut SqliteConnection, b: &Batch, upsert: bool) -> Result<()> {
    {
        insert_rows(c, upsert, "INSERT INTO organisations (id, code, name_zh, name_en, kind, level, parent_id, district_code, beds) ", 9, &b.organisations, |q, o| {
            q.push_bind(o.id).push_bind(o.code.as_str()).push_bind(o.name_zh.as_str()).push_bind(o.name_en.as_str())
                .push_bind(o.kind.as_str()).push_bind(o.level.map(|l| l as i64)).push_bind(o.parent_id)
                .push_bind(o.district_code.as_str()).push_bind(o.beds);
        }).await?;
        insert_rows(
            c,
            upsert,
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
            upsert,
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
        insert_rows(c, upsert, "INSERT INTO residents (id, district_code, identity_number, name, sex, birth_date, street_org_id, household_id, phone, registered) ", 10, &b.residents, |q, r| {
            q.push_bind(r.id).push_bind(r.district_code.as_str()).push_bind(r.identity_number.as_str()).push_bind(r.name.as_str())
                .push_bind(sex(r)).push_bind(r.birth_date).push_bind(r.street_org_id).push_bind(r.household_id)
                .push_bind(r.phone.as_str()).push_bind(r.registered);
        }).await?;
        insert_rows(c, upsert, "INSERT INTO contracts (id, resident_id, centre_org_id, doctor_id, district_hospital_id, city_hospital_id, start_date, end_date, status) ", 9, &b.contracts, |q, k| {
            q.push_bind(k.id).push_bind(k.resident_id).push_bind(k.centre_org_id).push_bind(k.doctor_id)
                .push_bind(k.district_hospital_id).push_bind(k.city_hospital_id).push_bind(k.start).push_bind(k.end)
                .push_bind(k.status.as_str());
        }).await?;
        insert_rows(c, upsert, "INSERT INTO encounters (id, resident_id, kind, programme, org_id, practitioner_id, start_time) ", 7, &b.encounters, |q, e| {
            q.push_bind(e.id).push_bind(e.resident_id).push_bind(e.kind.as_str()).push_bind(e.programme.map(|p| p.as_str()))
                .push_bind(e.org_id).push_bind(e.practitioner_id).push_bind(e.start);
        }).await?;
        insert_rows(
            c,
            upsert,
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
        insert_rows(c, upsert, "INSERT INTO observations (id, resident_id, encounter_id, code, value, unit, effective) ", 7, &b.observations, |q, o| {
            q.push_bind(o.id).push_bind(o.resident_id).push_bind(o.encounter_id).push_bind(o.code.as_str())
                .push_bind(o.value).push_bind(o.unit.as_str()).push_bind(o.effective);
        }).await?;
        insert_rows(
            c,
            upsert,
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
        insert_rows(
            c,
            upsert,
            "INSERT INTO imaging_studies (id, resident_id, encounter_id, org_id, code, modality, started, uid, findings) ",
            9,
            &b.imaging_studies,
            |q, m| {
                q.push_bind(m.id)
                    .push_bind(m.resident_id)
                    .push_bind(m.encounter_id)
                    .push_bind(m.org_id)
                    .push_bind(m.code.as_str())
                    .push_bind(m.modality.as_str())
                    .push_bind(m.started)
                    .push_bind(m.uid.as_str())
                    .push_bind(m.findings.as_str());
            },
        )
        .await?;
    }
    Ok(())
}

fn sex(r: &Resident) -> &'static str {
    match r.sex {
        dhp_core::Sex::Male => "male",
        dhp_core::Sex::Female => "female",
    }
}

/// Children before parents.
pub(crate) const CLEAR_SQL: [&str; 37] = [
    "DELETE FROM contract_asks",
    "DELETE FROM guardians",
    "DELETE FROM surveys",
    "DELETE FROM test_orders",
    "DELETE FROM waitlist",
    "DELETE FROM reminders",
    "DELETE FROM quality_assessments",
    "DELETE FROM referral_steps",
    "DELETE FROM referrals",
    "DELETE FROM appointments",
    "DELETE FROM slots",
    "DELETE FROM schedules",
    "DELETE FROM indicator_values",
    "DELETE FROM emergency_access",
    "DELETE FROM case_reports",
    "DELETE FROM sentinel_reports",
    "DELETE FROM signals",
    "DELETE FROM signal_events",
    "DELETE FROM injected_outbreaks",
    "DELETE FROM resources",
    "DELETE FROM resource_history",
    "DELETE FROM id_sequences",
    "DELETE FROM audit_events",
    crate::audit::chain::RESET,
    "DELETE FROM password_history",
    "DELETE FROM users",
    "DELETE FROM imaging_studies",
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
