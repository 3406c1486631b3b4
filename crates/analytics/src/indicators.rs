//! The indicator engine (SPEC capability 7): every supported indicator for every org
//! unit and tracked period, from the stored records, and the plan scorecard over the
//! stored counts.
//!
//! A full computation reads every resident's record page by page, counts each record's
//! tallies in parallel ([`dhp_core::indicators::resident_tallies`]), adds the
//! organisations' beds and staff, the case reports and the signals, and sums by
//! (indicator, period, unit). [`rebuild`] stores the result in one transaction.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{Datelike, NaiveDate};
use dhp_core::indicators::rules::{
    case_report_tallies, order_tallies, referral_tallies, resource_tallies, signal_tallies,
    survey_tallies,
};
use dhp_core::indicators::{self, Count, Indicator, Period, Totals, Units};
use dhp_core::{Id, Organisation, Practitioner};
use dhp_store::{Cohort, Reading, Store, StoreError};
use rayon::prelude::*;
use serde::Serialize;

/// The periods kept: every year from `first_year` to `last_year`, and the quarters and
/// months of the last `detailed_years` of them.
pub fn tracked_periods(first_year: i32, last_year: i32, detailed_years: i32) -> Vec<Period> {
    let mut v = Vec::new();
    for y in first_year..=last_year {
        if y > last_year - detailed_years {
            v.extend(Period::all_of_year(y));
        } else {
            v.push(Period::Year(y));
        }
    }
    v
}

/// The default tracking: from the plan's baseline year 2020 to `today`'s year, with
/// quarters and months for this year and last.
pub fn default_periods(today: NaiveDate) -> Vec<Period> {
    tracked_periods(2020.min(today.year()), today.year(), 2)
}

/// The period pages and the CLI open on: the last complete year counted on `today`
/// (the current year once it is complete, or when it is the only one).
pub fn default_period(stored: &[Period], today: NaiveDate) -> Period {
    let this = Period::Year(today.year());
    let last = Period::Year(today.year() - 1);
    if today != this.end() && stored.contains(&last) {
        last
    } else {
        stored
            .iter()
            .copied()
            .filter(|p| matches!(p, Period::Year(_)))
            .max()
            .unwrap_or(this)
    }
}

/// Whether `period` had not ended on `today`: its in-period counts are partial and its
/// as-at figures are read at its last day, after the records end.
pub fn in_progress(period: Period, today: NaiveDate) -> bool {
    period.end() > today
}

/// What a full computation did.
#[derive(Debug, Clone, Serialize)]
pub struct Computed {
    pub counts: Vec<Count>,
    pub residents: usize,
    pub case_reports: usize,
    pub signals: usize,
    pub periods: usize,
    pub elapsed: Duration,
}

/// Everything the engine reads besides residents' records.
#[derive(Debug)]
pub struct Context {
    pub orgs: Vec<Organisation>,
    pub staff: Vec<Practitioner>,
    pub units: Units,
}

impl Context {
    pub async fn load(store: &dyn Store) -> Result<Context, StoreError> {
        let orgs = dhp_store::organisations(store).await?;
        let staff = dhp_store::practitioners(store).await?;
        let units = Units::new(&orgs);
        Ok(Context { orgs, staff, units })
    }
}

/// Residents read per page.
const PAGE: i64 = 5_000;

/// Compute every supported indicator for every unit and period in `periods` from the
/// stored records. `progress` hears the number of residents done after each page.
pub async fn compute(
    store: &dyn Store,
    periods: &[Period],
    progress: &mut (dyn FnMut(usize) + Send),
) -> Result<Computed, StoreError> {
    let started = Instant::now();
    let defs = indicators::supported();
    let ctx = Context::load(store).await?;
    let first = periods.iter().map(|p| p.start()).min();
    let last = periods.iter().map(|p| p.end()).max();
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(Computed {
            counts: Vec::new(),
            residents: 0,
            case_reports: 0,
            signals: 0,
            periods: 0,
            elapsed: started.elapsed(),
        });
    };
    let mut sums = Totals::default();
    let mut residents = 0usize;
    let mut after = 0;
    loop {
        let page = store
            .programme_records(&Cohort::All, Reading::Full, last, after, PAGE)
            .await?;
        let Some(tail) = page.last() else {
            break;
        };
        after = tail.resident.id;
        residents += page.len();
        let part = page
            .par_iter()
            .fold(Totals::default, |mut s, rec| {
                indicators::resident_tallies(rec, &defs, &ctx.units, periods, &mut |t| s.add(t));
                s
            })
            .reduce(Totals::default, Totals::merge);
        sums = sums.merge(part);
        progress(residents);
    }
    resource_tallies(
        &ctx.orgs,
        &ctx.staff,
        &defs,
        &ctx.units,
        periods,
        &mut |t| sums.add(t),
    );
    let reports = store.case_reports(first, last, i64::MAX).await?;
    for r in &reports {
        let district = ctx.units.district_code_of(&r.street);
        case_report_tallies(r, &district, &defs, &ctx.units, periods, &mut |t| {
            sums.add(t)
        });
    }
    let signals = store.signals(first).await?;
    for s in &signals {
        let district = ctx.units.district_code_of(&s.area);
        signal_tallies(s, &district, &defs, &ctx.units, periods, &mut |t| {
            sums.add(t)
        });
    }
    // Referrals and orders count where they were made: the referring organisation's
    // district.
    let districts: HashMap<Id, &str> = ctx
        .orgs
        .iter()
        .map(|o| (o.id, o.district_code.as_str()))
        .collect();
    let district_of = |org: Id| districts.get(&org).copied().unwrap_or_default();
    for r in &store.referral_facts(first).await? {
        referral_tallies(
            r,
            district_of(r.from_org),
            &defs,
            &ctx.units,
            periods,
            &mut |t| sums.add(t),
        );
    }
    for o in &store.order_facts(first).await? {
        order_tallies(
            o,
            district_of(o.org_id),
            &defs,
            &ctx.units,
            periods,
            &mut |t| sums.add(t),
        );
    }
    // Satisfaction counts at the institution visited.
    for f in &store.survey_facts(first).await? {
        survey_tallies(
            f,
            district_of(f.org_id),
            &defs,
            &ctx.units,
            periods,
            &mut |t| sums.add(t),
        );
    }
    Ok(Computed {
        counts: sums.into_counts(&defs),
        residents,
        case_reports: reports.len(),
        signals: signals.len(),
        periods: periods.len(),
        elapsed: started.elapsed(),
    })
}

/// Compute everything again and replace the stored counts in one transaction, with the
/// periods kept recorded in the store's meta table.
pub async fn rebuild(
    store: &dyn Store,
    periods: &[Period],
    progress: &mut (dyn FnMut(usize) + Send),
) -> Result<Computed, StoreError> {
    let computed = compute(store, periods, progress).await?;
    store.replace_indicator_counts(&computed.counts).await?;
    let list: Vec<String> = periods.iter().map(|p| p.to_string()).collect();
    store.set_meta(PERIODS_META, &list.join(",")).await?;
    Ok(computed)
}

/// Meta key of the periods the stored counts cover.
pub use dhp_store::INDICATOR_PERIODS_META as PERIODS_META;

/// The periods the stored counts cover (empty before the first rebuild).
pub use dhp_store::indicator_periods as stored_periods;

/// One line of the plan scorecard (规划指标监测).
#[derive(Debug, Clone, Serialize)]
pub struct ScoreRow {
    pub indicator: &'static Indicator,
    pub num: i64,
    pub den: i64,
    /// `None`: nothing counted, or the indicator is not supported.
    pub value: Option<f64>,
    pub target: Option<&'static indicators::Target>,
    /// Short of the target (positive) or past it (negative), in the indicator's unit.
    pub gap: Option<f64>,
    /// Where the straight path from the 2020 baseline to the target stands in the
    /// period's year (the target itself when there is no baseline).
    pub expected: Option<f64>,
    pub on_track: Option<bool>,
}

/// The scorecard of org unit `org` in `period` from stored `counts` (any counts of
/// other units or periods are ignored): every indicator with a target or baseline
/// first, plan order, then the rest.
pub fn scorecard(counts: &[Count], org: Id, period: Period) -> Vec<ScoreRow> {
    let mine: HashMap<&str, (i64, i64)> = counts
        .iter()
        .filter(|c| c.org_id == org && c.period == period)
        .map(|c| (c.indicator.as_str(), (c.num, c.den)))
        .collect();
    let year = period.year();
    let mut rows: Vec<ScoreRow> = indicators::indicators()
        .iter()
        .map(|ind| {
            let (num, den) = mine.get(ind.id.as_str()).copied().unwrap_or((0, 0));
            let value = if ind.supported {
                ind.value(num, den)
            } else {
                None
            };
            let target = ind.plan_target(year);
            let expected = target.map(|t| match &ind.baseline {
                Some(b) if t.year > b.year && year < t.year => {
                    let share = f64::from((year - b.year).max(0)) / f64::from(t.year - b.year);
                    b.value + (t.value - b.value) * share
                }
                _ => t.value,
            });
            let gap = target.zip(value).map(|(t, v)| t.gap(v));
            let on_track = target.zip(value).zip(expected).map(|((t, v), e)| {
                let path = indicators::Target {
                    value: e,
                    ..t.clone()
                };
                t.met_by(v) || path.met_by(v)
            });
            ScoreRow {
                indicator: ind,
                num,
                den,
                value,
                target,
                gap,
                expected,
                on_track,
            }
        })
        .collect();
    rows.sort_by_key(|r| {
        let plan = r.target.is_some() || r.indicator.baseline.is_some();
        (!plan, !r.indicator.supported)
    });
    rows
}

/// The stored value of every period of `indicator` for `org`, oldest first.
pub fn trend(counts: &[Count], indicator: &str, org: Id) -> Vec<(Period, i64, i64)> {
    let mut v: Vec<(Period, i64, i64)> = counts
        .iter()
        .filter(|c| c.indicator == indicator && c.org_id == org)
        .map(|c| (c.period, c.num, c.den))
        .collect();
    v.sort_by_key(|(p, ..)| (p.start(), p.end()));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_open_on_the_last_complete_year() {
        let stored = tracked_periods(2020, 2026, 2);
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(
            default_period(&stored, day(2026, 6, 30)),
            Period::Year(2025)
        );
        assert_eq!(
            default_period(&stored, day(2026, 12, 31)),
            Period::Year(2026)
        );
        let only = tracked_periods(2026, 2026, 2);
        assert_eq!(default_period(&only, day(2026, 6, 30)), Period::Year(2026));
        assert!(in_progress(Period::Year(2026), day(2026, 6, 30)));
        assert!(!in_progress(Period::Quarter(2026, 2), day(2026, 6, 30)));
        assert!(in_progress(Period::Month(2026, 7), day(2026, 6, 30)));
    }

    #[test]
    fn tracked_periods_detail_the_last_years() {
        let v = tracked_periods(2020, 2026, 2);
        assert_eq!(v.len(), 5 + 17 * 2);
        assert_eq!(v[0], Period::Year(2020));
        assert!(v.contains(&Period::Month(2025, 1)));
        assert!(!v.contains(&Period::Month(2024, 12)));
    }

    #[test]
    fn scorecard_reads_counts_and_paths() {
        let c = |id: &str, num, den| Count {
            indicator: id.into(),
            period: Period::Year(2023),
            org_id: 7,
            num,
            den,
        };
        // Beds: 2020 baseline 3.72 → 2025 target 7.48; path in 2023: 3.72 + 3.76 × 3/5
        // = 5.976. 6 per 1,000 is on track though short of 7.48.
        // Key-population signing: 83.4 → 80 (≥): already met at 81%.
        let counts = vec![
            c("beds_per_1000", 6, 1000),
            c("key_population_signing", 81, 100),
            c("ehr_rate", 1, 2),
            Count {
                org_id: 8,
                ..c("ehr_rate", 2, 2)
            },
        ];
        let rows = scorecard(&counts, 7, Period::Year(2023));
        let row = |id: &str| rows.iter().find(|r| r.indicator.id == id).unwrap();
        let beds = row("beds_per_1000");
        assert!((beds.value.unwrap() - 6.0).abs() < 1e-12);
        assert!((beds.expected.unwrap() - 5.976).abs() < 1e-9);
        assert!((beds.gap.unwrap() - 1.48).abs() < 1e-9);
        assert_eq!(beds.on_track, Some(true));
        assert_eq!(row("key_population_signing").on_track, Some(true));
        assert_eq!(row("ehr_rate").value, Some(50.0));
        assert_eq!(row("ehr_rate").on_track, None);
        // Nurses: nothing counted → no value, no verdict.
        assert_eq!(row("nurses_per_1000").value, None);
        assert_eq!(row("life_expectancy").value, None);
        // Plan indicators (with a target or baseline) come first.
        let first_plain = rows
            .iter()
            .position(|r| r.target.is_none() && r.indicator.baseline.is_none())
            .unwrap();
        assert!(rows[first_plain..]
            .iter()
            .all(|r| r.target.is_none() && r.indicator.baseline.is_none()));
    }
}
