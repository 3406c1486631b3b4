//! Detection runs over a district's case reports and sentinel counts: dense daily
//! series per disease × area (every street or town, and the district), the configured
//! detectors of each disease, alarms merged into signals; and the evaluation of every
//! algorithm against the outbreaks the generator injected.

use std::collections::HashMap;
use std::ops::Range;
use std::time::Instant;

use chrono::{Days, NaiveDate, NaiveDateTime};
use dhp_core::surveillance::{
    self as sv, merge_alarms, missing_reports, Alarm, Algorithm, Cadence, CaseCount, DateBasis,
    InjectedOutbreak, MissingReport, SentinelReport,
};
use dhp_core::{OrgKind, Organisation};
use dhp_store::{Store, StoreError};
use rayon::prelude::*;
use serde::Serialize;

/// Days of history loaded before the first day scored: enough for every detector
/// (Farrington on daily counts looks back five years and three days).
pub const HISTORY_DAYS: u64 = 5 * 365 + 30;

/// Days of counts kept with an alarm (the counts behind a signal).
pub const COUNTS_KEPT: usize = 28;

/// The areas a district's series are counted for.
#[derive(Debug, Clone, Serialize)]
pub struct Areas {
    pub district: String,
    pub streets: Vec<String>,
    /// Sentinel sites: the district's community health centres and hospitals.
    pub sites: Vec<String>,
}

impl Areas {
    pub async fn of(store: &dyn Store) -> Result<Areas, StoreError> {
        let district = store
            .meta("district_code")
            .await?
            .ok_or_else(|| StoreError::NotFound("the district (meta district_code)".into()))?;
        let orgs: Vec<Organisation> = dhp_store::organisations(store).await?;
        let of_kind = |kinds: &[OrgKind]| -> Vec<String> {
            orgs.iter()
                .filter(|o| kinds.contains(&o.kind) && o.district_code == district)
                .map(|o| o.code.clone())
                .collect()
        };
        Ok(Areas {
            streets: of_kind(&[OrgKind::Street, OrgKind::Town]),
            sites: of_kind(&[OrgKind::CommunityHealthCentre, OrgKind::Hospital]),
            district,
        })
    }
}

/// Dense daily series, one per key, all starting on `start`.
#[derive(Debug, Clone)]
pub struct Series {
    pub start: NaiveDate,
    pub len: usize,
    /// (disease or syndrome key, area or site)
    pub keys: Vec<(String, String)>,
    pub values: Vec<Vec<f64>>,
}

impl Series {
    pub fn day(&self, i: usize) -> NaiveDate {
        self.start + Days::new(i as u64)
    }
    pub fn index(&self, d: NaiveDate) -> Option<usize> {
        let i = (d - self.start).num_days();
        (i >= 0 && (i as usize) < self.len).then_some(i as usize)
    }
}

fn span(start: NaiveDate, end: NaiveDate) -> usize {
    ((end - start).num_days() + 1).max(0) as usize
}

/// Case series of `diseases` per street and for the district (all streets summed,
/// plus cases whose street is not one of the district's).
pub fn case_series(
    counts: &[CaseCount],
    diseases: &[&str],
    areas: &Areas,
    start: NaiveDate,
    end: NaiveDate,
) -> Series {
    let len = span(start, end);
    let mut keys = Vec::new();
    let mut index = HashMap::new();
    for d in diseases {
        for a in areas.streets.iter().chain(std::iter::once(&areas.district)) {
            index.insert((d.to_string(), a.clone()), keys.len());
            keys.push((d.to_string(), a.clone()));
        }
    }
    let mut values = vec![vec![0.0; len]; keys.len()];
    for c in counts {
        let Some(t) = ((c.day - start).num_days() >= 0)
            .then(|| (c.day - start).num_days() as usize)
            .filter(|t| *t < len)
        else {
            continue;
        };
        if let Some(&k) = index.get(&(c.disease.clone(), c.street.clone())) {
            values[k][t] += c.count as f64;
        }
        if let Some(&k) = index.get(&(c.disease.clone(), areas.district.clone())) {
            values[k][t] += c.count as f64;
        }
    }
    Series {
        start,
        len,
        keys,
        values,
    }
}

/// Sentinel series per site and syndrome (`syndrome:<code>` keys); a missing day
/// counts as zero here and is reported apart as a missing report.
pub fn sentinel_series(reports: &[SentinelReport], start: NaiveDate, end: NaiveDate) -> Series {
    let len = span(start, end);
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    let mut keys = Vec::new();
    let mut values: Vec<Vec<f64>> = Vec::new();
    for r in reports {
        let key = (format!("syndrome:{}", r.syndrome), r.site.clone());
        let k = *index.entry(key.clone()).or_insert_with(|| {
            keys.push(key);
            values.push(vec![0.0; len]);
            keys.len() - 1
        });
        let t = (r.date - start).num_days();
        if t >= 0 && (t as usize) < len {
            values[k][t as usize] = r.count as f64;
        }
    }
    Series {
        start,
        len,
        keys,
        values,
    }
}

/// Alarms of `detectors(key)` on the days `days` (indexes) of every series, in parallel.
pub fn alarms(
    series: &Series,
    detectors: &(dyn Fn(&str) -> Vec<Algorithm> + Sync),
    days: Range<usize>,
) -> Vec<Alarm> {
    series
        .keys
        .par_iter()
        .zip(series.values.par_iter())
        .flat_map_iter(|((key, area), x)| {
            let mut out = Vec::new();
            for algorithm in detectors(key) {
                let scores = algorithm.score(x, Cadence::Daily);
                for t in days.clone() {
                    if let Some(s) = scores.get(t).copied().flatten() {
                        if s.alarm {
                            let from = (t + 1).saturating_sub(COUNTS_KEPT);
                            out.push(Alarm {
                                disease: key.clone(),
                                area: area.clone(),
                                algorithm: algorithm.name().to_string(),
                                day: series.day(t),
                                observed: s.observed,
                                expected: s.expected,
                                statistic: s.statistic,
                                threshold: s.threshold,
                                counts: x[from..=t].iter().map(|v| *v as i64).collect(),
                            });
                        }
                    }
                }
            }
            out
        })
        .collect()
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub series: usize,
    pub case_alarms: usize,
    pub sentinel_alarms: usize,
    pub new_signals: usize,
    pub updated_signals: usize,
    pub missing: Vec<MissingReport>,
    pub seconds: f64,
}

/// The detectors of a series key: a disease's own, or the sentinel rules for
/// `syndrome:` keys.
pub fn detectors_for(key: &str) -> Vec<Algorithm> {
    if key.starts_with("syndrome:") {
        return sv::sentinel_rules()
            .detection
            .iter()
            .filter_map(|s| s.build().ok())
            .collect();
    }
    sv::disease(key).map(|d| d.detectors()).unwrap_or_default()
}

/// Runs every disease's detectors for each day `from..=to` over every street and the
/// district, and the sentinel detectors over every site; alarms become signals
/// (merged with those already raised). Running a day twice changes nothing.
pub async fn run(
    store: &dyn Store,
    from: NaiveDate,
    to: NaiveDate,
    now: NaiveDateTime,
) -> Result<RunReport, StoreError> {
    let started = Instant::now();
    let areas = Areas::of(store).await?;
    let start = from - Days::new(HISTORY_DAYS);
    let mut all_alarms = Vec::new();
    let mut series_count = 0;
    for basis in [DateBasis::Onset, DateBasis::Report] {
        let diseases: Vec<&str> = sv::diseases()
            .iter()
            .filter(|d| d.aggregate_by() == basis)
            .map(|d| d.code.as_str())
            .collect();
        if diseases.is_empty() {
            continue;
        }
        let counts = store.case_counts(basis, start, to).await?;
        let series = case_series(&counts, &diseases, &areas, start, to);
        series_count += series.keys.len();
        let first = series.index(from).unwrap_or(0);
        let found = alarms(&series, &detectors_for, first..series.len);
        all_alarms.extend(found);
    }
    let case_alarms = all_alarms.len();
    // Sentinel counts need only weeks of history.
    let sentinel_start = from - Days::new(60);
    let reports = store.sentinel_reports(sentinel_start, to).await?;
    let series = sentinel_series(&reports, sentinel_start, to);
    series_count += series.keys.len();
    let first = series.index(from).unwrap_or(0);
    let sentinel = alarms(&series, &detectors_for, first..series.len);
    let sentinel_alarms = sentinel.len();
    all_alarms.extend(sentinel);
    let last: HashMap<String, NaiveDate> =
        store.sentinel_last_reports(to).await?.into_iter().collect();
    let since = reports
        .iter()
        .map(|r| r.date)
        .min()
        .unwrap_or(sentinel_start);
    let missing = missing_reports(&areas.sites, &last, to, since);

    let window = sv::merge_days();
    let mut signals = store.signals(from - Days::new(window as u64)).await?;
    let before = signals.len();
    let touched = merge_alarms(&mut signals, &all_alarms, window, now);
    let new_signals = touched.iter().filter(|i| **i >= before).count();
    let mut changed: Vec<_> = touched.iter().map(|i| signals[*i].clone()).collect();
    store.save_signals(&mut changed).await?;
    Ok(RunReport {
        from,
        to,
        series: series_count,
        case_alarms,
        sentinel_alarms,
        new_signals,
        updated_signals: touched.len() - new_signals,
        missing,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// One algorithm's evaluation against the injected outbreaks.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub algorithm: String,
    pub outbreaks: usize,
    pub detected: usize,
    /// Detected ÷ outbreaks × 100.
    pub sensitivity: f64,
    /// Signals (alarm runs merged as in the daily run) with no outbreak behind them,
    /// per 100 area-weeks (disease × area series × weeks evaluated).
    pub false_per_100_area_weeks: f64,
    /// Alarm days outside outbreaks ÷ series-days outside outbreaks × 100.
    pub false_alarm_day_rate: f64,
    /// Median days from an outbreak's start to its first alarm (detected ones).
    pub median_days_to_detection: Option<f64>,
    pub signals: usize,
    pub false_signals: usize,
}

/// Days after its start that an alarm still counts for an outbreak.
pub const OUTBREAK_GRACE_DAYS: i64 = 7;

/// Evaluates each algorithm (default parameters) on the series of the diseases that
/// had injected outbreaks, per street and for the district, over the days after the
/// longest history any algorithm needs.
pub fn evaluate(
    series: &Series,
    outbreaks: &[InjectedOutbreak],
    district: &str,
    algorithms: &[Algorithm],
    first_day: usize,
) -> Vec<Evaluation> {
    let window = sv::merge_days();
    // Outbreak windows per series.
    let covers = |key: &(String, String), t: usize| -> Vec<usize> {
        let day = series.day(t);
        outbreaks
            .iter()
            .enumerate()
            .filter(|(_, o)| {
                o.disease == key.0
                    && (o.street == key.1 || key.1 == district)
                    && day >= o.start_day
                    && (day - o.start_day).num_days() < o.days + OUTBREAK_GRACE_DAYS
            })
            .map(|(i, _)| i)
            .collect()
    };
    let in_range: Vec<&InjectedOutbreak> = outbreaks
        .iter()
        .filter(|o| series.index(o.start_day).is_some_and(|t| t >= first_day))
        .collect();
    algorithms
        .par_iter()
        .map(|algorithm| {
            let mut first_alarm: Vec<Option<i64>> = vec![None; outbreaks.len()];
            let mut signals = 0;
            let mut false_signals = 0;
            let mut false_days = 0usize;
            let mut quiet_days = 0usize;
            for (key, x) in series.keys.iter().zip(&series.values) {
                let scores = algorithm.score(x, Cadence::Daily);
                // Current run of alarms: last alarm day and whether it touched an outbreak.
                let mut run: Option<(usize, bool)> = None;
                for (t, score) in scores.iter().enumerate().skip(first_day) {
                    let hits = covers(key, t);
                    let alarm = score.is_some_and(|s| s.alarm);
                    if hits.is_empty() {
                        quiet_days += 1;
                        if alarm {
                            false_days += 1;
                        }
                    }
                    if !alarm {
                        continue;
                    }
                    for &i in &hits {
                        let d = (series.day(t) - outbreaks[i].start_day).num_days();
                        if first_alarm[i].is_none_or(|f| d < f) {
                            first_alarm[i] = Some(d);
                        }
                    }
                    run = match run {
                        Some((last, real)) if (t - last) as i64 <= window => {
                            Some((t, real || !hits.is_empty()))
                        }
                        previous => {
                            if let Some((_, real)) = previous {
                                signals += 1;
                                false_signals += usize::from(!real);
                            }
                            Some((t, !hits.is_empty()))
                        }
                    };
                }
                if let Some((_, real)) = run {
                    signals += 1;
                    false_signals += usize::from(!real);
                }
            }
            let mut delays: Vec<f64> = outbreaks
                .iter()
                .zip(&first_alarm)
                .filter(|(o, _)| in_range.iter().any(|r| r.id == o.id))
                .filter_map(|(_, d)| d.map(|d| d as f64))
                .collect();
            delays.sort_by(f64::total_cmp);
            let detected = delays.len();
            let area_weeks = series.keys.len() as f64 * (series.len - first_day) as f64 / 7.0;
            Evaluation {
                algorithm: algorithm.name().to_string(),
                outbreaks: in_range.len(),
                detected,
                sensitivity: if in_range.is_empty() {
                    0.0
                } else {
                    detected as f64 / in_range.len() as f64 * 100.0
                },
                false_per_100_area_weeks: false_signals as f64 / area_weeks.max(1.0) * 100.0,
                false_alarm_day_rate: false_days as f64 / quiet_days.max(1) as f64 * 100.0,
                median_days_to_detection: median(&delays),
                signals,
                false_signals,
            }
        })
        .collect()
}

fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    Some(if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    })
}

/// Loads a district's series for the diseases with injected outbreaks and evaluates
/// every algorithm but the fixed threshold (which alarms on any case by design).
pub async fn evaluate_store(store: &dyn Store) -> Result<(Vec<Evaluation>, Series), StoreError> {
    let areas = Areas::of(store).await?;
    let outbreaks = store.outbreaks().await?;
    let end: NaiveDate = store
        .meta("end_date")
        .await?
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| StoreError::NotFound("the district's end date (meta end_date)".into()))?;
    let years: u64 = store
        .meta("years")
        .await?
        .and_then(|y| y.parse().ok())
        .unwrap_or(10);
    let start = end - chrono::Months::new(12 * years as u32);
    let mut diseases: Vec<&str> = outbreaks.iter().map(|o| o.disease.as_str()).collect();
    diseases.sort_unstable();
    diseases.dedup();
    let counts = store.case_counts(DateBasis::Onset, start, end).await?;
    let series = case_series(&counts, &diseases, &areas, start, end);
    let algorithms: Vec<Algorithm> = sv::ALGORITHMS
        .iter()
        .filter(|a| **a != "fixed")
        .map(|a| Algorithm::configure(a, None, &[]).expect("defaults are valid"))
        .collect();
    let first_day = (HISTORY_DAYS as usize).min(series.len);
    Ok((
        evaluate(&series, &outbreaks, &areas.district, &algorithms, first_day),
        series,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 6, d).unwrap()
    }

    fn areas() -> Areas {
        Areas {
            district: "D".into(),
            streets: vec!["S1".into(), "S2".into()],
            sites: vec![],
        }
    }

    #[test]
    fn the_district_series_is_every_street_plus_cases_of_unknown_streets() {
        let c = |street: &str, d, count| CaseCount {
            disease: "hfmd".into(),
            street: street.into(),
            day: day(d),
            count,
        };
        let counts = vec![c("S1", 1, 2), c("S2", 1, 3), c("S9", 2, 1), c("S1", 30, 4)];
        let s = case_series(&counts, &["hfmd"], &areas(), day(1), day(3));
        assert_eq!(s.len, 3);
        let by = |a: &str| &s.values[s.keys.iter().position(|k| k.1 == a).unwrap()];
        assert_eq!(by("S1"), &vec![2.0, 0.0, 0.0]);
        assert_eq!(by("S2"), &vec![3.0, 0.0, 0.0]);
        // The unknown street counts for the district only; day 30 is outside the span.
        assert_eq!(by("D"), &vec![5.0, 1.0, 0.0]);
    }

    #[test]
    fn evaluation_counts_detections_false_signals_and_delays() {
        // One street, 60 quiet days of 1 case, an outbreak of 10 a day on days 40–42,
        // and one lone spike on day 20 with no outbreak behind it.
        let mut x = vec![1.0; 60];
        x[20] = 9.0;
        for v in &mut x[40..43] {
            *v = 10.0;
        }
        let series = Series {
            start: day(1),
            len: 60,
            keys: vec![("hfmd".into(), "S1".into())],
            values: vec![x],
        };
        let outbreak = InjectedOutbreak {
            id: 1,
            disease: "hfmd".into(),
            street: "S1".into(),
            start_day: series.day(40),
            days: 3,
            cases: 30,
            shape: "point".into(),
        };
        let fixed = Algorithm::configure("fixed", None, &[("cases".into(), "5".into())]).unwrap();
        let rows = evaluate(&series, &[outbreak], "D", &[fixed], 10);
        let r = &rows[0];
        assert_eq!((r.outbreaks, r.detected), (1, 1));
        assert_eq!(r.sensitivity, 100.0);
        assert_eq!(r.median_days_to_detection, Some(0.0));
        // Two signals: the spike (false) and the outbreak (true).
        assert_eq!((r.signals, r.false_signals), (2, 1));
        // 50 evaluated days, 3 + 7 grace days inside the outbreak window: 1 of 40 quiet days alarms.
        assert!(
            (r.false_alarm_day_rate - 100.0 / 40.0).abs() < 1e-9,
            "{}",
            r.false_alarm_day_rate
        );
    }
}
