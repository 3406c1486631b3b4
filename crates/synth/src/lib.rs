//! dhp-synth: a deterministic synthetic district shaped like Qingpu (SPEC capability 10).
//!
//! The district's real streets, towns, centres and hospitals come from
//! `data/district/qingpu.toml`; the rates the history must reproduce come from
//! `data/calibration/qingpu-2020.toml`. The same seed and size give byte-identical
//! rows: every random draw comes from a ChaCha stream keyed by (seed, purpose, index),
//! so residents can be generated on several threads in any order.

pub mod config;
mod draw;
mod history;
mod names;
mod people;
mod programmes;
mod registry;
mod surveillance;
mod tiered;

use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::time::Instant;

use chrono::{Datelike, Months, NaiveDate};
use dhp_core::Id;
use dhp_store::{sqlite_path, Batch, SqliteStore, Store, StoreError, Table, TableStore};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::history::{Rates, Window};
use crate::people::People;
use crate::registry::Registry;

/// Residents per written batch (one transaction each).
const CHUNK: usize = 4_000;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub residents: u64,
    pub seed: u64,
    /// Years of history before `end`.
    pub years: u32,
    /// Last day of the history. A fixed default keeps output independent of the clock.
    pub end: NaiveDate,
}

impl Params {
    pub const DEFAULT_END: (i32, u32, u32) = (2026, 6, 30);

    pub fn new(residents: u64, seed: u64) -> Self {
        let (y, m, d) = Self::DEFAULT_END;
        Self {
            residents,
            seed,
            years: 10,
            end: NaiveDate::from_ymd_opt(y, m, d).expect("valid default end"),
        }
    }

    pub fn validate(&self) -> Result<(), GenerateError> {
        if self.residents == 0 {
            return Err(GenerateError::Invalid(
                "--residents must be at least 1".into(),
            ));
        }
        if self.residents > 50_000_000 {
            return Err(GenerateError::Invalid(
                "--residents must be at most 50,000,000".into(),
            ));
        }
        if !(1..=30).contains(&self.years) {
            return Err(GenerateError::Invalid(
                "--years must be between 1 and 30".into(),
            ));
        }
        Ok(())
    }

    /// The history window and its calibration date (the last full calendar year).
    fn window(&self) -> Window {
        let start = self.end - Months::new(12 * self.years);
        let year = if self.end.month() == 12 && self.end.day() == 31 {
            self.end.year()
        } else {
            self.end.year() - 1
        };
        Window {
            start,
            end: self.end,
            calibration: NaiveDate::from_ymd_opt(year, 12, 31).expect("valid date"),
        }
    }

    /// The calendar year the calibration figures are computed for.
    pub fn calibration_year(&self) -> i32 {
        self.window().calibration.year()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot use {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} already exists; remove it or choose another path")]
    Exists(String),
    #[error("generator failed: {0}")]
    Internal(String),
}

/// Progress of a generation, for a progress bar.
pub trait Progress: Send + Sync {
    fn begin(&self, total_residents: u64);
    fn advance(&self, residents: u64, rows: u64);
    fn finish(&self);
}

/// No progress display.
#[derive(Debug)]
pub struct Quiet;

impl Progress for Quiet {
    fn begin(&self, _: u64) {}
    fn advance(&self, _: u64, _: u64) {}
    fn finish(&self) {}
}

/// What a generation wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub residents: u64,
    pub rows: u64,
    pub seconds: f64,
    pub calibration_year: i32,
    pub district_code: String,
}

fn stream(seed: u64, purpose: u64, index: u64) -> ChaCha8Rng {
    // Seed, purpose and index together make the key, so no two streams share one.
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&purpose.to_le_bytes());
    key[16..24].copy_from_slice(&index.to_le_bytes());
    key[24..].copy_from_slice(b"dhp-syn1");
    ChaCha8Rng::from_seed(key)
}

/// Generate a district into a database named by URL, all or nothing: a SQLite file is
/// written beside its final path and renamed into place on success; a PostgreSQL
/// database must be empty and is emptied again if the generation fails.
pub async fn generate_into(
    url: &str,
    params: &Params,
    progress: &dyn Progress,
) -> Result<(Arc<dyn Store>, Summary), GenerateError> {
    params.validate()?;
    if let Some(path) = sqlite_path(url) {
        let final_path = PathBuf::from(path);
        if final_path.exists() {
            return Err(GenerateError::Exists(final_path.display().to_string()));
        }
        let dir = final_path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        if !dir.is_dir() {
            return Err(GenerateError::Io {
                path: final_path.display().to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("directory {} does not exist", dir.display()),
                ),
            });
        }
        let partial = PathBuf::from(format!("{path}.partial"));
        remove_sqlite_files(&partial);
        let io = |source| GenerateError::Io {
            path: final_path.display().to_string(),
            source,
        };
        let result = async {
            let store = SqliteStore::open_bulk(&partial).await?;
            let summary = generate(&store, params, progress).await;
            store.close().await;
            summary
        }
        .await;
        match result {
            Ok(summary) => {
                std::fs::rename(&partial, &final_path).map_err(io)?;
                remove_sqlite_files(&partial);
                let store = dhp_store::connect(url).await?;
                Ok((store, summary))
            }
            Err(e) => {
                remove_sqlite_files(&partial);
                Err(e)
            }
        }
    } else {
        let store = dhp_store::connect(url).await?;
        if store.count(Table::Organisations).await? > 0 {
            return Err(StoreError::NotEmpty(dhp_store::redact_url(url)).into());
        }
        match generate(&*store, params, progress).await {
            Ok(summary) => Ok((store, summary)),
            Err(e) => {
                store.clear().await?;
                Err(e)
            }
        }
    }
}

fn remove_sqlite_files(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// Generate a district into an empty store through the batched write path.
pub async fn generate(
    store: &dyn Store,
    params: &Params,
    progress: &dyn Progress,
) -> Result<Summary, GenerateError> {
    params.validate()?;
    if store.count(Table::Organisations).await? > 0 {
        return Err(StoreError::NotEmpty(store.backend().to_string()).into());
    }
    let started = Instant::now();
    let cfg = config::district();
    let cal = config::calibration();
    let window = params.window();
    let n = params.residents as usize;

    let mut reg = registry::build_orgs(&cfg);
    let people = people::generate(&cfg, &reg, n, params.end, &mut stream(params.seed, 0, 0))
        .map_err(GenerateError::Internal)?;
    let population = people
        .persons
        .iter()
        .filter(|p| p.resident.birth_date <= window.calibration)
        .count() as i64;
    let mut centre_population = vec![0i64; reg.centres.len()];
    for p in &people.persons {
        centre_population[p.centre] += 1;
    }
    registry::staff(
        &mut reg,
        &cfg,
        cal,
        population,
        &centre_population,
        &mut stream(params.seed, 1, 0),
    );
    progress.begin(params.residents);
    let head = Batch {
        organisations: reg.organisations.clone(),
        practitioners: reg.practitioners.clone(),
        ..Batch::default()
    };
    store.insert_batch(&head).await?;
    let mut rows = head.len() as u64;

    let rates = Rates {
        key_signing: cal.value("key_population_signing_rate") / 100.0,
        community_visits: cal.value("community_visit_rate") / 100.0,
        combination_visits: cal.value("in_combination_visit_rate") / 100.0,
        hypertension_management: cal.value("hypertension_management_rate") / 100.0,
        diabetes_management: cal.value("diabetes_management_rate") / 100.0,
    };
    let shared = Arc::new(Shared {
        people,
        reg,
        model: cfg.model.clone(),
        rates,
        window,
        seed: params.seed,
    });
    let chunks = chunk_bounds(&shared.people);
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4);
    let mut receivers: Vec<Receiver<Batch>> = Vec::new();
    let mut handles = Vec::new();
    for w in 0..workers {
        let (tx, rx) = sync_channel::<Batch>(2);
        receivers.push(rx);
        let shared = Arc::clone(&shared);
        let mine: Vec<(usize, usize)> = chunks.iter().copied().skip(w).step_by(workers).collect();
        handles.push(std::thread::spawn(move || {
            for (lo, hi) in mine {
                if tx.send(shared.chunk(lo, hi)).is_err() {
                    return;
                }
            }
        }));
    }
    let mut written = 0u64;
    let mut failure = None;
    for i in 0..chunks.len() {
        let rx = &receivers[i % workers];
        let batch = match tokio::task::block_in_place(|| rx.recv()) {
            Ok(b) => b,
            Err(_) => {
                failure = Some(GenerateError::Internal("a generator thread stopped".into()));
                break;
            }
        };
        if let Err(e) = store.insert_batch(&batch).await {
            failure = Some(e.into());
            break;
        }
        written += batch.residents.len() as u64;
        rows += batch.len() as u64;
        progress.advance(batch.residents.len() as u64, batch.len() as u64);
    }
    drop(receivers);
    for h in handles {
        let _ = h.join();
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let links: Vec<dhp_store::Guardianship> = shared
        .people
        .guardians
        .iter()
        .map(
            |&(child_id, guardian_id, relation)| dhp_store::Guardianship {
                child_id,
                guardian_id,
                relation: relation.to_string(),
                consent_at: None,
            },
        )
        .collect();
    store.add_guardians(&links).await?;
    rows += links.len() as u64;
    rows += write_surveillance(store, &shared, &cfg).await?;
    rows += tiered::write(store, &shared, params.end, &mut stream(params.seed, 9, 0)).await?;
    for (k, v) in [
        ("generator", "dhp-synth 1".to_string()),
        ("seed", params.seed.to_string()),
        ("residents", params.residents.to_string()),
        ("years", params.years.to_string()),
        ("end_date", params.end.to_string()),
        ("calibration_year", params.calibration_year().to_string()),
        ("district_code", cfg.district.code.clone()),
        (
            "district_former_codes",
            cfg.district.old_county_code.clone(),
        ),
        ("district_name_zh", cfg.district.name_zh.clone()),
        ("district_name_en", cfg.district.name_en.clone()),
        ("city_name_zh", cfg.city.name_zh.clone()),
        ("city_name_en", cfg.city.name_en.clone()),
    ] {
        store.set_meta(k, &v).await?;
    }
    progress.finish();
    Ok(Summary {
        residents: written,
        rows,
        seconds: started.elapsed().as_secs_f64(),
        calibration_year: params.calibration_year(),
        district_code: cfg.district.code,
    })
}

/// Case reports, sentinel counts and injected outbreaks of the district; returns rows.
async fn write_surveillance(
    store: &dyn Store,
    shared: &Shared,
    cfg: &config::DistrictConfig,
) -> Result<u64, GenerateError> {
    let code_of = |id: Id| {
        shared
            .reg
            .organisations
            .iter()
            .find(|o| o.id == id)
            .map(|o| o.code.clone())
            .unwrap_or_default()
    };
    let mut residents: Vec<Vec<Id>> = vec![Vec::new(); shared.reg.area_ids.len()];
    let area_index: std::collections::HashMap<Id, usize> = shared
        .reg
        .area_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i))
        .collect();
    for p in &shared.people.persons {
        let h = &shared.people.households[(p.resident.household_id - 1) as usize];
        if let Some(&i) = area_index.get(&h.street_org_id) {
            residents[i].push(p.resident.id);
        }
    }
    let sites: Vec<String> = shared
        .reg
        .centres
        .iter()
        .map(|c| code_of(c.org_id))
        .chain(
            shared
                .reg
                .district_hospitals
                .iter()
                .map(|h| code_of(h.org_id)),
        )
        .collect();
    let places = surveillance::Places {
        areas: cfg
            .areas
            .iter()
            .map(|a| (a.code.clone(), a.share))
            .collect(),
        residents,
        sites: &sites,
    };
    let model = &shared.model.surveillance;
    let mut data = tokio::task::block_in_place(|| {
        surveillance::generate(
            model,
            &shared.window,
            &places,
            &mut stream(shared.seed, 3, 0),
        )
    });
    if !data.reports.is_empty() {
        let first = store
            .reserve_ids("CaseReport", data.reports.len() as i64)
            .await?;
        data.reports.sort_by_key(|r| r.reported_at);
        for (i, r) in data.reports.iter_mut().enumerate() {
            r.id = first + i as Id;
        }
    }
    store
        .insert_case_reports(&data.reports, "generated")
        .await?;
    let received = shared.window.end.and_hms_opt(23, 0, 0).expect("time");
    store.put_sentinel_reports(&data.sentinel, received).await?;
    store.insert_outbreaks(&data.outbreaks).await?;
    Ok((data.reports.len() + data.sentinel.len() + data.outbreaks.len()) as u64)
}

/// Everything the worker threads read.
struct Shared {
    people: People,
    reg: Registry,
    model: config::Model,
    rates: Rates,
    window: Window,
    seed: u64,
}

impl Shared {
    /// Households, residents and histories of persons `lo..hi` (whole households).
    fn chunk(&self, lo: usize, hi: usize) -> Batch {
        let persons = &self.people.persons[lo..hi];
        let mut batch = Batch::default();
        let first = persons
            .first()
            .map(|p| p.resident.household_id)
            .unwrap_or(1);
        let last = persons.last().map(|p| p.resident.household_id).unwrap_or(0);
        batch.households = self.people.households[(first - 1) as usize..last as usize].to_vec();
        for p in persons {
            batch.residents.push(p.resident.clone());
            let mut rng = stream(self.seed, 2, p.resident.id as u64);
            history::resident_history(
                p,
                &self.reg,
                &self.model,
                &self.rates,
                &self.window,
                &mut rng,
                &mut batch,
            );
        }
        batch
    }
}

/// Split persons into chunks of about `CHUNK` that never cut a household.
fn chunk_bounds(people: &People) -> Vec<(usize, usize)> {
    let persons = &people.persons;
    let mut out = Vec::new();
    let mut lo = 0;
    while lo < persons.len() {
        let mut hi = (lo + CHUNK).min(persons.len());
        while hi < persons.len()
            && persons[hi].resident.household_id == persons[hi - 1].resident.household_id
        {
            hi += 1;
        }
        out.push((lo, hi));
        lo = hi;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_reject_bad_sizes() {
        assert!(Params::new(0, 1).validate().is_err());
        let mut p = Params::new(10, 1);
        p.years = 0;
        assert!(p.validate().is_err());
        assert!(Params::new(10, 1).validate().is_ok());
        assert_eq!(Params::new(10, 1).calibration_year(), 2025);
    }

    #[test]
    fn streams_differ_by_index_and_repeat_by_key() {
        use rand::Rng;
        let a: u64 = stream(7, 2, 1).random();
        let b: u64 = stream(7, 2, 2).random();
        let c: u64 = stream(7, 2, 1).random();
        assert_ne!(a, b);
        assert_eq!(a, c);
    }
}
