//! `dhp bench recognition`: the recognition check on order (the resident's earlier
//! results of the test, their issuers' quality assessments, the result that stands) at
//! the scale of a large district. A generated district is grown to `--residents`: each
//! added resident is a copy of a generated one under a new identity number, with an
//! outpatient encounter at a centre and two laboratory results (HbA1c, cholesterol),
//! so the tables the check reads hold what a district of that size would. The figure is
//! p50 / p99 of 1,000 checks of residents spread over the whole table.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use chrono::{Duration, NaiveDate};
use dhp_core::{Encounter, EncounterType, IdentityNumber, Observation, OrgKind};
use dhp_store::{Batch, Store, Table};

use crate::bench_booking::timed;

/// Residents added per transaction.
const CHUNK: usize = 20_000;

/// Grow the district in `store` to `target` residents; the residents added.
async fn grow(store: &dyn Store, target: u64) -> Result<u64> {
    let templates = store.page(Table::Residents, 0, 50_000).await?.residents;
    let have = store.count(Table::Residents).await? as u64;
    let centre = store
        .page(Table::Organisations, 0, 10_000)
        .await?
        .organisations
        .into_iter()
        .find(|o| o.kind == OrgKind::CommunityHealthCentre)
        .ok_or_else(|| anyhow::anyhow!("the district has no community health centre"))?;
    let extra = target.saturating_sub(have);
    if extra == 0 || templates.is_empty() {
        return Ok(0);
    }
    let born_from = NaiveDate::from_ymd_opt(1940, 1, 1).unwrap_or_default();
    let day = NaiveDate::from_ymd_opt(2026, 6, 1)
        .unwrap_or_default()
        .and_hms_opt(9, 0, 0)
        .unwrap_or_default();
    let mut added = 0u64;
    while added < extra {
        let n = (extra - added).min(CHUNK as u64) as i64;
        let rid = store.reserve_ids("Patient", n).await?;
        let eid = store.reserve_ids("Encounter", n).await?;
        let oid = store.reserve_ids("Observation", 2 * n).await?;
        let mut b = Batch::default();
        for i in 0..n {
            let k = added + i as u64;
            let t = &templates[(k as usize) % templates.len()];
            // Unique numbers: a birth day and a sequence per added resident, under a
            // region the generator does not use (Beijing Dongcheng: a migrant).
            let birth = born_from + Duration::days((k % 20_000) as i64);
            let number = IdentityNumber::compose("110101", birth, (k / 20_000) as u16);
            let mut r = t.clone();
            r.id = rid + i;
            r.sex = number.sex();
            r.birth_date = birth;
            r.identity_number = number;
            r.registered = false;
            b.encounters.push(Encounter {
                id: eid + i,
                resident_id: r.id,
                kind: EncounterType::Outpatient,
                programme: None,
                org_id: centre.id,
                practitioner_id: None,
                start: day - Duration::days(k as i64 % 60),
            });
            for (j, (code, value, unit)) in [("4548-4", 7.1, "%"), ("14647-2", 5.2, "mmol/L")]
                .into_iter()
                .enumerate()
            {
                b.observations.push(Observation {
                    id: oid + 2 * i + j as i64,
                    resident_id: r.id,
                    encounter_id: Some(eid + i),
                    code: code.into(),
                    value,
                    unit: unit.into(),
                    effective: day - Duration::days(k as i64 % 60),
                });
            }
            b.residents.push(r);
        }
        store.insert_batch(&b).await?;
        added += n as u64;
        eprint!("\r  {} of {extra} residents added", added);
    }
    eprintln!();
    Ok(added)
}

/// p50 / p99 of 1,000 recognition checks over the whole resident table.
async fn check(store: Arc<dyn Store>) -> Result<(f64, f64)> {
    let mut ids = Vec::new();
    let mut after = 0;
    loop {
        let page = store.page(Table::Residents, after, 100_000).await?;
        let Some(last) = page.residents.last() else {
            break;
        };
        after = last.id;
        ids.extend(page.residents.iter().map(|r| r.id));
    }
    let today = NaiveDate::from_ymd_opt(2026, 6, 30).unwrap_or_default();
    let ids = Arc::new(ids);
    timed(1_000, |i| {
        let (store, ids) = (store.clone(), ids.clone());
        async move {
            let resident = ids[(i * 1_299_709) % ids.len()];
            let prior: Vec<_> = store
                .prior_results(resident, "4548-4")
                .await?
                .into_iter()
                .map(|p| p.prior)
                .collect();
            dhp_core::recognition::table().standing("4548-4", &prior, today);
            Ok(())
        }
    })
    .await
}

/// One backend's run: generate the base district, grow it, check.
async fn run(url: &str, residents: u64) -> Result<(u64, f64, (f64, f64))> {
    let params = dhp_synth::Params::new(residents.min(20_000), 1);
    let (store, _) = dhp_synth::generate_into(url, &params, &dhp_synth::Quiet).await?;
    let t = Instant::now();
    grow(&*store, residents).await?;
    let grown = t.elapsed().as_secs_f64();
    let total = store.count(Table::Residents).await? as u64;
    let figures = check(store.clone()).await;
    store.close().await;
    Ok((total, grown, figures?))
}

pub async fn bench(residents: u64, postgres: Option<&str>) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("dhp-bench-recognition-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}", dir.join("d.db").display());
    let sqlite = run(&url, residents).await;
    let _ = std::fs::remove_dir_all(&dir);
    let mut rows = vec![("sqlite", sqlite?)];
    if let Some(admin_url) = postgres {
        let name = format!("dhp_bench_recognition_{}", std::process::id());
        let admin = dhp_store::AdminPool::connect(admin_url).await?;
        let url = admin.fresh_database(admin_url, &name).await?;
        let pg = run(&url, residents).await;
        admin
            .execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await?;
        rows.push(("postgres", pg?));
    }
    println!("| backend | residents | grown in s | recognition check p50 / p99 ms |");
    println!("|---|---:|---:|---:|");
    for (backend, (total, grown, (p50, p99))) in rows {
        println!("| {backend} | {total} | {grown:.0} | {p50:.2} / {p99:.2} |");
    }
    Ok(())
}
