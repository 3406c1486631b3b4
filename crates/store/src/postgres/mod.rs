//! PostgreSQL backend: batched writes as `INSERT … SELECT FROM UNNEST(arrays)`, one
//! statement per table per chunk, all in one transaction.

use std::time::Duration;

use async_trait::async_trait;
use dhp_core::{Condition, Sex};
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};

use crate::shared::{self, impl_exec, Backend, Commit, Tx};
use crate::{Batch, Result, WriteSet};

impl_exec!(PgPool, sqlx::postgres::PgRow, |pool, _sql| pool);
impl_exec!(Tx<sqlx::Postgres>, sqlx::postgres::PgRow, |tx, _sql| {
    &mut **tx.0.lock().await
});

/// Rows per UNNEST statement: large enough to amortise the round trip, small enough to
/// keep the bound arrays modest.
const CHUNK: usize = 20_000;

/// The production store: a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connect to `url` and migrate the database.
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        sqlx::migrate!("src/postgres/migrations").run(&pool).await?;
        Ok(Self { pool })
    }
}

/// Collect one column of a chunk.
fn col<T, U>(rows: &[T], f: impl Fn(&T) -> U) -> Vec<U> {
    rows.iter().map(f).collect()
}

#[async_trait]
impl Backend for PostgresStore {
    type Pool = PgPool;
    type Tx = Tx<sqlx::Postgres>;

    async fn begin_write(&self) -> Result<Self::Tx> {
        Ok(Tx(tokio::sync::Mutex::new(self.pool.begin().await?)))
    }

    fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn write_batch(&self, b: &Batch) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        write_rows(&mut tx, b, false).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn shut(&self) {
        self.pool.close().await;
    }

    async fn clear_all(&self) -> Result<()> {
        sqlx::query("TRUNCATE contract_asks, guardians, surveys, test_orders, waitlist, reminders, quality_assessments, referral_steps, referrals, appointments, slots, schedules, emergency_access, password_history, indicator_values, case_reports, sentinel_reports, signals, signal_events, injected_outbreaks, resources, resource_history, id_sequences, audit_events, users, imaging_studies, immunizations, observations, conditions, encounters, contracts, residents, households, practitioners, organisations, meta")
            .execute(&self.pool)
            .await?;
        sqlx::query(crate::audit::chain::RESET)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl crate::resources::WriteSets for PostgresStore {
    async fn write_set(&self, w: &WriteSet) -> Result<()> {
        let tx = self.begin_write().await?;
        if w.has_search_guard() {
            // Conditional creates one at a time: the search and the insert are one
            // step for every other conditional create (the mode conflicts with itself).
            crate::shared::Exec::execute(
                &tx,
                "LOCK TABLE residents IN SHARE ROW EXCLUSIVE MODE",
                vec![],
            )
            .await?;
        }
        crate::resources::check_searches(&tx, w).await?;
        // Indicator counts move in the same transaction (before/after tallies).
        let tracking = crate::indicators::Tracking::before(&tx, w).await?;
        {
            let mut g = tx.0.lock().await;
            crate::resources::run_write_set!((*g), w, upsert_rows, true)?;
        }
        crate::booking::apply_in_set(&tx, true, &w.bookings, &w.holds, &w.appointment_steps)
            .await?;
        if let Some(t) = tracking {
            t.after(&tx, w).await?;
        }
        tx.commit().await
    }
}

impl crate::programmes::BulkRecords for PostgresStore {}

/// The INSERT text, with the upsert clause when asked.
fn statement(upsert: bool, insert: &str) -> String {
    if upsert {
        format!("{insert}{}", shared::on_conflict_update(insert))
    } else {
        insert.to_string()
    }
}

async fn upsert_rows(c: &mut PgConnection, b: &Batch) -> Result<()> {
    write_rows(c, b, true).await
}

/// Every row of `b`, parents before children, on an open transaction.
async fn write_rows(conn: &mut PgConnection, b: &Batch, upsert: bool) -> Result<()> {
    for c in b.organisations.chunks(CHUNK) {
        sqlx::query(&statement(upsert, "INSERT INTO organisations (id, code, name_zh, name_en, kind, level, parent_id, district_code, beds) \
                SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::text[], $9::bigint[])"))
                .bind(col(c, |o| o.id)).bind(col(c, |o| o.code.clone())).bind(col(c, |o| o.name_zh.clone()))
                .bind(col(c, |o| o.name_en.clone())).bind(col(c, |o| o.kind.as_str())).bind(col(c, |o| o.level.map(|l| l as i64)))
                .bind(col(c, |o| o.parent_id)).bind(col(c, |o| o.district_code.clone())).bind(col(c, |o| o.beds))
                .execute(&mut *conn).await.map_err(shared::conflict)?;
    }
    for c in b.practitioners.chunks(CHUNK) {
        sqlx::query(&statement(upsert, "INSERT INTO practitioners (id, name, role, org_id, district_code) \
                SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[])"))
                .bind(col(c, |p| p.id)).bind(col(c, |p| p.name.clone())).bind(col(c, |p| p.role.as_str()))
                .bind(col(c, |p| p.org_id)).bind(col(c, |p| p.district_code.clone()))
                .execute(&mut *conn).await.map_err(shared::conflict)?;
    }
    for c in b.households.chunks(CHUNK) {
        sqlx::query(&statement(
            upsert,
            "INSERT INTO households (id, district_code, street_org_id, address) \
                SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[])",
        ))
        .bind(col(c, |h| h.id))
        .bind(col(c, |h| h.district_code.clone()))
        .bind(col(c, |h| h.street_org_id))
        .bind(col(c, |h| h.address.clone()))
        .execute(&mut *conn)
        .await
        .map_err(shared::conflict)?;
    }
    for c in b.residents.chunks(CHUNK) {
        sqlx::query(&statement(upsert, "INSERT INTO residents (id, district_code, identity_number, name, sex, birth_date, street_org_id, household_id, phone, registered) \
                SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::date[], $7::bigint[], $8::bigint[], $9::text[], $10::boolean[])"))
                .bind(col(c, |r| r.id)).bind(col(c, |r| r.district_code.clone()))
                .bind(col(c, |r| r.identity_number.as_str().to_string())).bind(col(c, |r| r.name.clone()))
                .bind(col(c, |r| match r.sex { Sex::Male => "male", Sex::Female => "female" }))
                .bind(col(c, |r| r.birth_date)).bind(col(c, |r| r.street_org_id)).bind(col(c, |r| r.household_id))
                .bind(col(c, |r| r.phone.clone())).bind(col(c, |r| r.registered))
                .execute(&mut *conn).await.map_err(shared::conflict)?;
    }
    for c in b.contracts.chunks(CHUNK) {
        sqlx::query(&statement(upsert, "INSERT INTO contracts (id, resident_id, centre_org_id, doctor_id, district_hospital_id, city_hospital_id, start_date, end_date, status) \
                SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::date[], $8::date[], $9::text[])"))
                .bind(col(c, |k| k.id)).bind(col(c, |k| k.resident_id)).bind(col(c, |k| k.centre_org_id))
                .bind(col(c, |k| k.doctor_id)).bind(col(c, |k| k.district_hospital_id)).bind(col(c, |k| k.city_hospital_id))
                .bind(col(c, |k| k.start)).bind(col(c, |k| k.end)).bind(col(c, |k| k.status.as_str()))
                .execute(&mut *conn).await.map_err(shared::conflict)?;
    }
    for c in b.encounters.chunks(CHUNK) {
        sqlx::query(&statement(upsert, "INSERT INTO encounters (id, resident_id, kind, programme, org_id, practitioner_id, start_time) \
                SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::timestamp[])"))
                .bind(col(c, |e| e.id)).bind(col(c, |e| e.resident_id)).bind(col(c, |e| e.kind.as_str()))
                .bind(col(c, |e| e.programme.map(|p| p.as_str()))).bind(col(c, |e| e.org_id))
                .bind(col(c, |e| e.practitioner_id)).bind(col(c, |e| e.start))
                .execute(&mut *conn).await.map_err(shared::conflict)?;
    }
    for c in b.conditions.chunks(CHUNK) {
        sqlx::query(&statement(upsert, "INSERT INTO conditions (id, resident_id, icd10, category, onset, org_id) \
                SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::date[], $6::bigint[])"))
                .bind(col(c, |k| k.id)).bind(col(c, |k| k.resident_id)).bind(col(c, |k| k.icd10.clone()))
                .bind(col(c, |k| Condition::category(&k.icd10))).bind(col(c, |k| k.onset)).bind(col(c, |k| k.org_id))
                .execute(&mut *conn).await.map_err(shared::conflict)?;
    }
    for c in b.observations.chunks(CHUNK) {
        sqlx::query(&statement(upsert, "INSERT INTO observations (id, resident_id, encounter_id, code, value, unit, effective) \
                SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::float8[], $6::text[], $7::timestamp[])"))
                .bind(col(c, |o| o.id)).bind(col(c, |o| o.resident_id)).bind(col(c, |o| o.encounter_id))
                .bind(col(c, |o| o.code.clone())).bind(col(c, |o| o.value)).bind(col(c, |o| o.unit.clone()))
                .bind(col(c, |o| o.effective))
                .execute(&mut *conn).await.map_err(shared::conflict)?;
    }
    for c in b.immunizations.chunks(CHUNK) {
        sqlx::query(&statement(upsert, "INSERT INTO immunizations (id, resident_id, vaccine, dose_number, date, org_id) \
                SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::date[], $6::bigint[])"))
                .bind(col(c, |i| i.id)).bind(col(c, |i| i.resident_id)).bind(col(c, |i| i.vaccine.clone()))
                .bind(col(c, |i| i.dose_number as i64)).bind(col(c, |i| i.date)).bind(col(c, |i| i.org_id))
                .execute(&mut *conn).await.map_err(shared::conflict)?;
    }
    for c in b.imaging_studies.chunks(CHUNK) {
        sqlx::query(&statement(upsert, "INSERT INTO imaging_studies (id, resident_id, encounter_id, org_id, code, modality, started, uid, findings) \
                SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::timestamp[], $8::text[], $9::text[])"))
                .bind(col(c, |m| m.id)).bind(col(c, |m| m.resident_id)).bind(col(c, |m| m.encounter_id))
                .bind(col(c, |m| m.org_id)).bind(col(c, |m| m.code.clone())).bind(col(c, |m| m.modality.clone()))
                .bind(col(c, |m| m.started)).bind(col(c, |m| m.uid.clone())).bind(col(c, |m| m.findings.clone()))
                .execute(&mut *conn).await.map_err(shared::conflict)?;
    }
    Ok(())
}
