//! Notifiable-disease case reports with seasonal baselines and injected outbreaks, and
//! sentinel syndromic counts with zero reports and the odd missing day
//! (`[model.surveillance]`).

use chrono::{Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime};
use dhp_core::surveillance::{
    self as sv, CaseReport, CaseStatus, InjectedOutbreak, SentinelReport,
};
use dhp_core::Id;
use rand::seq::IndexedRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Poisson};

use crate::config::SurveillanceModel;
use crate::history::Window;

/// Where the district's reports come from.
pub(crate) struct Places<'a> {
    /// Street / town codes with their population shares.
    pub areas: Vec<(String, f64)>,
    /// Generated residents living in each area (same order), for linking reports.
    pub residents: Vec<Vec<Id>>,
    /// Organisations that report cases and sentinel counts (centres and hospitals).
    pub sites: &'a [String],
}

#[derive(Debug, Default)]
pub(crate) struct Generated {
    pub reports: Vec<CaseReport>,
    pub sentinel: Vec<SentinelReport>,
    pub outbreaks: Vec<InjectedOutbreak>,
}

fn poisson(rng: &mut ChaCha8Rng, mean: f64) -> u64 {
    if mean <= 0.0 {
        return 0;
    }
    Poisson::new(mean)
        .map(|p| p.sample(rng) as u64)
        .unwrap_or(0)
}

fn days(from: NaiveDate, to: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    from.iter_days().take_while(move |d| *d <= to)
}

/// Draws a report for a case with onset on `onset` (ids assigned later).
fn report(
    m: &SurveillanceModel,
    rng: &mut ChaCha8Rng,
    places: &Places<'_>,
    disease: &str,
    area: usize,
    onset: NaiveDate,
    end: NaiveDate,
) -> CaseReport {
    let d = sv::disease(disease).expect("generator diseases are in the table");
    let delay = *[0u64, 0, 0, 0, 1, 1, 1, 2, 2, 3]
        .choose(rng)
        .expect("non-empty");
    let diagnosed_day = (onset + Days::new(delay)).min(end);
    let diagnosed_at = diagnosed_day.and_time(
        NaiveTime::from_hms_opt(rng.random_range(8..18), rng.random_range(0..60), 0).expect("time"),
    );
    let limit = d.limit_hours() as f64;
    let hours = if rng.random_bool(m.on_time) {
        rng.random_range(0.1..limit * 0.95)
    } else {
        limit * rng.random_range(1.05..3.0)
    };
    let latest = end.and_hms_opt(23, 59, 0).expect("time");
    let reported_at: NaiveDateTime =
        (diagnosed_at + chrono::Duration::minutes((hours * 60.0) as i64)).min(latest);
    let status = if d.fixed {
        CaseStatus::Suspected
    } else if rng.random_bool(m.excluded) {
        CaseStatus::Excluded
    } else {
        match rng.random_range(0..10) {
            0..4 => CaseStatus::Confirmed,
            4..9 => CaseStatus::Clinical,
            _ => CaseStatus::Suspected,
        }
    };
    CaseReport {
        id: 0,
        disease: disease.to_string(),
        resident_id: places.residents[area].choose(rng).copied(),
        reporting_org: places.sites.choose(rng).cloned().unwrap_or_default(),
        street: places.areas[area].0.clone(),
        status,
        onset_date: onset,
        diagnosed_at,
        reported_at,
    }
}

fn pick_weighted(rng: &mut ChaCha8Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.random_range(0.0..total);
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

/// Onset-day weights of an outbreak over its days: a common-source (point) outbreak
/// peaks early and tails off; a propagated one rises to a peak at two thirds.
fn shape_weights(shape: &str, n: i64) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let x = i as f64;
            let n = n as f64;
            if shape == "point" {
                (-(x - 1.0).abs() / (n / 4.0).max(1.0)).exp()
            } else {
                let peak = (2.0 * n / 3.0).max(1.0);
                if x <= peak {
                    (x + 1.0) / (peak + 1.0)
                } else {
                    ((n - x) / (n - peak)).max(0.1)
                }
            }
        })
        .collect()
}

pub(crate) fn generate(
    m: &SurveillanceModel,
    window: &Window,
    places: &Places<'_>,
    rng: &mut ChaCha8Rng,
) -> Generated {
    let mut out = Generated::default();
    let shares: Vec<f64> = places.areas.iter().map(|a| a.1).collect();
    let share_total: f64 = shares.iter().sum();
    let per_day = |incidence: f64, area: usize| {
        m.population * shares[area] / share_total * incidence / 1e5 / 365.0
    };
    // Seasonal baselines and the sporadic background.
    for disease in &m.disease {
        let mean_season = disease.season.iter().sum::<f64>() / 12.0;
        for day in days(window.start, window.end) {
            let season = disease.season[day.month0() as usize] / mean_season;
            for area in 0..places.areas.len() {
                for _ in 0..poisson(rng, per_day(disease.incidence, area) * season) {
                    let r = report(m, rng, places, &disease.code, area, day, window.end);
                    out.reports.push(r);
                }
            }
        }
    }
    for (code, incidence) in &m.sporadic {
        for day in days(window.start, window.end) {
            for area in 0..places.areas.len() {
                for _ in 0..poisson(rng, per_day(*incidence, area)) {
                    out.reports
                        .push(report(m, rng, places, code, area, day, window.end));
                }
            }
        }
    }
    // Injected outbreaks: after five years of baseline, and a few recent ones.
    let weights: Vec<f64> = m.disease.iter().map(|d| d.outbreak).collect();
    let first = window.start + Days::new(5 * 365 + 60);
    let last_historic = window.end - Days::new((m.recent_days + 20) as u64);
    let historic = if first < last_historic {
        ((last_historic - first).num_days() as f64 / 365.0 * m.outbreaks_per_year).round() as usize
    } else {
        0
    };
    let recent_from = window.end - Days::new(m.recent_days as u64);
    let mut plans = Vec::new();
    for i in 0..historic + m.recent_outbreaks {
        let (lo, hi) = if i < historic {
            (first, last_historic)
        } else {
            (recent_from, window.end - Days::new(3))
        };
        if lo >= hi {
            continue;
        }
        let start = lo + Days::new(rng.random_range(0..=(hi - lo).num_days()) as u64);
        plans.push(start);
    }
    for (i, start) in plans.into_iter().enumerate() {
        let disease = &m.disease[pick_weighted(rng, &weights)];
        let area = pick_weighted(rng, &shares);
        let cases = rng.random_range(m.outbreak_cases.0..=m.outbreak_cases.1);
        let span = rng
            .random_range(m.outbreak_days.0..=m.outbreak_days.1)
            .min((window.end - start).num_days() + 1);
        let shape = if rng.random_bool(0.5) {
            "point"
        } else {
            "propagated"
        };
        let w = shape_weights(shape, span);
        for _ in 0..cases {
            let day = start + Days::new(pick_weighted(rng, &w) as u64);
            out.reports
                .push(report(m, rng, places, &disease.code, area, day, window.end));
        }
        out.outbreaks.push(InjectedOutbreak {
            id: i as Id + 1,
            disease: disease.code.clone(),
            street: places.areas[area].0.clone(),
            start_day: start,
            days: span,
            cases,
            shape: shape.to_string(),
        });
    }
    for (code, before) in &m.fixed_cases {
        let day = window.end - Days::new(*before as u64);
        if day >= window.start {
            let area = pick_weighted(rng, &shares);
            out.reports
                .push(report(m, rng, places, code, area, day, window.end));
        }
    }
    // Sentinel counts: every site reports every syndrome daily, zeros included; a few
    // site-days are missing, and the last site has been silent for the last two days.
    let from = (window.end - chrono::Months::new(12 * m.sentinel_years as u32)).max(window.start);
    let flu = m.disease.iter().find(|d| d.code == "influenza");
    for (s, site) in places.sites.iter().enumerate() {
        let silent_from = (s + 1 == places.sites.len()).then(|| window.end - Days::new(1));
        for day in days(from, window.end) {
            if silent_from.is_some_and(|f| day >= f) || rng.random_bool(m.sentinel_missing) {
                continue;
            }
            let weekday = if day.weekday().number_from_monday() >= 6 {
                0.8
            } else {
                1.0
            };
            for (syndrome, mean) in &m.sentinel_means {
                let season = match (syndrome.as_str(), flu) {
                    ("fever" | "respiratory", Some(f)) => {
                        f.season[day.month0() as usize] / (f.season.iter().sum::<f64>() / 12.0)
                    }
                    _ => 1.0,
                };
                out.sentinel.push(SentinelReport {
                    site: site.clone(),
                    date: day,
                    syndrome: syndrome.clone(),
                    count: poisson(rng, mean * weekday * season) as i64,
                });
            }
        }
    }
    out
}
