//! `dhp bench booking`: concurrent bookings against a district-sized slot pool. A
//! generated district (SQLite, and PostgreSQL if given) gets schedules at its
//! hospitals until the pool holds `--slots` open slots; then `--connections` clients
//! book for `--seconds`, most of them at a hot set of popular slots, each booking a
//! random resident through a referral or the public channel. Reported: attempts and
//! bookings per second, p50 / p99 latency, and the slots booked beyond their capacity
//! counted again from the appointments (must be 0).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use chrono::{NaiveTime, TimeDelta};
use dhp_core::booking::{Channel, Schedule};
use dhp_core::OrgKind;
use dhp_store::{Booking, Store, StoreError, Table};
use rand::{Rng, SeedableRng};

/// Services each hospital publishes schedules for.
const SERVICES: [&str; 6] = [
    "cardiology",
    "endocrinology",
    "ophthalmology",
    "orthopaedics",
    "neurology",
    "respiratory",
];

/// The popular slots most clients aim at.
const HOT: usize = 1_000;

struct Outcome {
    booked: u64,
    refused: u64,
    failed: u64,
    latencies_us: Vec<u64>,
}

/// One backend's figures.
pub struct Figures {
    pub backend: String,
    pub slots: usize,
    pub attempts: u64,
    pub booked: u64,
    pub refused: u64,
    pub failed: u64,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub over_capacity: i64,
    pub wrong_counters: i64,
    /// "Earliest slot with a place in the next 14 days" at one hospital, and across the
    /// district: p50 / p99 ms over sequential searches after the bookings.
    pub search_hospital: (f64, f64),
    pub search_district: (f64, f64),
    /// The recognition check of one order (the resident's earlier results of the test
    /// and the standing one): p50 / p99 ms.
    pub recognition: (f64, f64),
}

/// p50 and p99 of `samples` (microseconds) in milliseconds.
fn percentiles(mut samples: Vec<u64>) -> (f64, f64) {
    samples.sort_unstable();
    let at = |p: f64| {
        samples
            .get(((samples.len() as f64 * p) as usize).min(samples.len().saturating_sub(1)))
            .map_or(0.0, |us| *us as f64 / 1000.0)
    };
    (at(0.50), at(0.99))
}

/// Time `n` runs of `f` (each given its index), one after another.
pub(crate) async fn timed<F, Fut>(n: usize, mut f: F) -> Result<(f64, f64)>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f(i).await?;
        lat.push(t.elapsed().as_micros() as u64);
    }
    Ok(percentiles(lat))
}

/// Publish schedules until the pool holds at least `target` slots, from the day after
/// the district's last day. The slots' ids, in order.
async fn publish(store: &dyn Store, target: usize) -> Result<(Vec<i64>, chrono::NaiveDateTime)> {
    let orgs = dhp_store::organisations(store).await?;
    let hospitals: Vec<_> = orgs
        .iter()
        .filter(|o| o.kind == OrgKind::Hospital)
        .collect();
    if hospitals.is_empty() {
        bail!("the district has no hospital to publish schedules at");
    }
    let from = dhp_store::as_of(store).await? + TimeDelta::days(1);
    // Ids from the store's sequences: the generated district has schedules of its own.
    let mut ids = Vec::new();
    let mut schedule_id: i64 = store.reserve_ids("Schedule", 1).await?;
    while ids.len() < target {
        let h = hospitals[(schedule_id as usize) % hospitals.len()];
        let s = Schedule {
            id: schedule_id,
            org_id: h.id,
            service: format!(
                "{}-{}",
                SERVICES[(schedule_id as usize / hospitals.len()) % SERVICES.len()],
                schedule_id
            ),
            practitioner_id: None,
            weekdays: [true, true, true, true, true, true, false],
            first_start: NaiveTime::from_hms_opt(8, 0, 0).expect("a time"),
            slot_minutes: 15,
            slots_per_day: 32,
            capacity: 1 + (schedule_id % 4) as u32,
            referral_share: 50,
            release_hours: 48,
            horizon_days: 28,
        };
        let n = s.slots(from, 1)?.len() as i64;
        let slots = s.slots(from, store.reserve_ids("Slot", n.max(1)).await?)?;
        store.publish_schedule(&s, &slots).await?;
        ids.extend(slots.iter().map(|x| x.id));
        schedule_id = store.reserve_ids("Schedule", 1).await?;
    }
    // The pool as a district runs it: its statistics current (autovacuum's job later).
    store.refresh_statistics().await?;
    // Bookings are made the day before the pool opens (reserved places not released).
    Ok((
        ids,
        (from - TimeDelta::days(1))
            .and_hms_opt(9, 0, 0)
            .expect("a time"),
    ))
}

/// Run the bench on `store` (its label `backend`).
pub async fn run_on(
    backend: &str,
    store: Arc<dyn Store>,
    target: usize,
    connections: usize,
    seconds: f64,
) -> Result<Figures> {
    let (slots, at) = publish(&*store, target).await?;
    let mut residents = Vec::new();
    let mut after = 0;
    loop {
        let page = store.page(Table::Residents, after, 50_000).await?;
        let Some(last) = page.residents.last() else {
            break;
        };
        after = last.id;
        residents.extend(page.residents.iter().map(|r| r.id));
    }
    let (slots, residents) = (Arc::new(slots), Arc::new(residents));
    // Appointment ids: a block of the store's sequence, taken once.
    let next_id = Arc::new(AtomicI64::new(
        store.reserve_ids("Appointment", 100_000_000).await?,
    ));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..connections {
        let (store, slots, residents, next_id) = (
            store.clone(),
            slots.clone(),
            residents.clone(),
            next_id.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(w as u64);
            let mut o = Outcome {
                booked: 0,
                refused: 0,
                failed: 0,
                latencies_us: Vec::new(),
            };
            while Instant::now() < deadline {
                let slot = if rng.random_bool(0.8) {
                    slots[rng.random_range(0..HOT.min(slots.len()))]
                } else {
                    slots[rng.random_range(0..slots.len())]
                };
                let b = Booking {
                    appointment_id: next_id.fetch_add(1, Ordering::Relaxed),
                    slot_id: slot,
                    resident_id: residents[rng.random_range(0..residents.len())],
                    channel: if rng.random_bool(0.5) {
                        Channel::Referral
                    } else {
                        Channel::Public
                    },
                    at,
                };
                let t = Instant::now();
                let r = store.book(&b).await;
                o.latencies_us.push(t.elapsed().as_micros() as u64);
                match r {
                    Ok(()) => o.booked += 1,
                    Err(StoreError::Conflict(_) | StoreError::Invalid(_)) => o.refused += 1,
                    Err(e) => {
                        o.failed += 1;
                        tracing::warn!(error = %e, "booking failed");
                    }
                }
            }
            o
        }));
    }
    let (mut booked, mut refused, mut failed, mut lat) = (0, 0, 0, Vec::new());
    for w in workers {
        let o = w.await?;
        booked += o.booked;
        refused += o.refused;
        failed += o.failed;
        lat.extend(o.latencies_us);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let attempts = lat.len() as u64;
    let (p50_ms, p99_ms) = percentiles(lat);
    let (over_capacity, wrong_counters) = store.pool_faults().await?;
    // The pool's search, on the pool as the bookings left it.
    let hospitals: Vec<i64> = dhp_store::organisations(&*store)
        .await?
        .iter()
        .filter(|o| o.kind == OrgKind::Hospital)
        .map(|o| o.id)
        .collect();
    let search = |org: Option<i64>| dhp_store::SlotQuery {
        org_id: org,
        service: None,
        practitioner_id: None,
        from: at,
        to: at + TimeDelta::days(14),
        channel: Channel::Public,
        now: at,
        limit: 1,
    };
    let search_hospital = timed(1_000, |i| {
        let (store, q) = (store.clone(), search(Some(hospitals[i % hospitals.len()])));
        async move {
            store.find_slots(&q).await?;
            Ok(())
        }
    })
    .await?;
    let search_district = timed(1_000, |_| {
        let (store, q) = (store.clone(), search(None));
        async move {
            store.find_slots(&q).await?;
            Ok(())
        }
    })
    .await?;
    let recognition = timed(1_000, |i| {
        let store = store.clone();
        let resident = residents[(i * 7_919) % residents.len()];
        async move {
            let prior: Vec<_> = store
                .prior_results(resident, "4548-4")
                .await?
                .into_iter()
                .map(|p| p.prior)
                .collect();
            dhp_core::recognition::table().standing("4548-4", &prior, at.date());
            Ok(())
        }
    })
    .await?;
    Ok(Figures {
        backend: backend.to_string(),
        slots: slots.len(),
        attempts,
        booked,
        refused,
        failed,
        seconds: elapsed,
        p50_ms,
        p99_ms,
        over_capacity,
        wrong_counters,
        search_hospital,
        search_district,
        recognition,
    })
}

/// Print the figures as the README's table.
pub fn print(figures: &[Figures], connections: usize) {
    println!("| backend | open slots | connections | attempts/s | booked/s | booked | refused (full, conflict) | failed | p50 ms | p99 ms | over capacity | wrong counters |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for f in figures {
        println!(
            "| {} | {} | {connections} | {:.0} | {:.0} | {} | {} | {} | {:.2} | {:.2} | {} | {} |",
            f.backend,
            f.slots,
            f.attempts as f64 / f.seconds,
            f.booked as f64 / f.seconds,
            f.booked,
            f.refused,
            f.failed,
            f.p50_ms,
            f.p99_ms,
            f.over_capacity,
            f.wrong_counters
        );
    }
    println!();
    println!("| backend | earliest slot at a hospital, p50 / p99 ms | earliest slot in the district, p50 / p99 ms | recognition check, p50 / p99 ms |");
    println!("|---|---:|---:|---:|");
    for f in figures {
        println!(
            "| {} | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} / {:.2} |",
            f.backend,
            f.search_hospital.0,
            f.search_hospital.1,
            f.search_district.0,
            f.search_district.1,
            f.recognition.0,
            f.recognition.1
        );
    }
}

/// `dhp bench booking`: a generated district of `residents` on SQLite (a scratch file)
/// and, with `postgres` (an admin URL), on a scratch PostgreSQL database; both removed
/// after.
pub async fn bench(
    residents: u64,
    slots: usize,
    connections: usize,
    seconds: f64,
    postgres: Option<&str>,
) -> Result<()> {
    let params = dhp_synth::Params::new(residents, 1);
    let dir = std::env::temp_dir().join(format!("dhp-bench-booking-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut figures = Vec::new();
    let url = format!("sqlite://{}", dir.join("pool.db").display());
    let run = async {
        let (store, _) = dhp_synth::generate_into(&url, &params, &dhp_synth::Quiet).await?;
        let f = run_on("sqlite", store.clone(), slots, connections, seconds).await;
        store.close().await;
        f
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    figures.push(run?);
    if let Some(admin_url) = postgres {
        let name = format!("dhp_bench_booking_{}", std::process::id());
        let admin = dhp_store::AdminPool::connect(admin_url).await?;
        let url = admin.fresh_database(admin_url, &name).await?;
        let run = async {
            let (store, _) = dhp_synth::generate_into(&url, &params, &dhp_synth::Quiet).await?;
            let f = run_on("postgres", store.clone(), slots, connections, seconds).await;
            store.close().await;
            f
        }
        .await;
        admin
            .execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await?;
        figures.push(run?);
    }
    print(&figures, connections);
    if figures
        .iter()
        .any(|f| f.over_capacity > 0 || f.wrong_counters > 0)
    {
        bail!("a slot was booked beyond its capacity");
    }
    Ok(())
}
