//! Immunization forecasting on the national schedule (预防接种, domain-rules §3): the next
//! dose of each series with its earliest, recommended and overdue dates. Catch-up gives
//! only the missing doses (a series is never restarted), respects minimum ages and
//! intervals, keeps injectable live vaccines 28 days apart unless given the same day,
//! and proposes nothing past a vaccine's age limit.

use chrono::NaiveDate;
use serde::Serialize;

use super::rules::ProgrammeRules;
use super::{DueItem, DueStatus, ProgrammeStatus, ResidentRecord};
use crate::codes::{immunization_schedule, ImmunizationSchedule, Span, VaccineRule};
use crate::record::Programme;

/// Where a vaccine series stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SeriesState {
    /// Every dose given (or the rest made unnecessary).
    Complete,
    /// A next dose is proposed.
    InProgress,
    /// Past the vaccine's age limit (or the catch-up age) with doses missing.
    Closed,
}

/// The next dose of a series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NextDose {
    pub number: i32,
    /// First day it may be given (minimum age, intervals, live-vaccine gap).
    pub earliest: NaiveDate,
    /// The schedule's age for the dose, or the earliest day if that is later.
    pub recommended: NaiveDate,
    /// Last on-time day ("complete by", or the recommended day plus the grace).
    pub overdue_after: NaiveDate,
    pub status: DueStatus,
    pub rule: String,
}

/// The forecast of one vaccine for one child.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesForecast {
    pub vaccine: String,
    pub name_zh: String,
    pub name_en: String,
    /// Dates of the doses given, oldest first.
    pub given: Vec<NaiveDate>,
    pub state: SeriesState,
    pub next: Option<NextDose>,
}

/// Forecast every vaccine of `schedule` for a child born on `birth` with doses `given`
/// (vaccine code, date), on `on`.
pub fn forecast_with(
    schedule: &ImmunizationSchedule,
    rules: &ProgrammeRules,
    birth: NaiveDate,
    given: &[(&str, NaiveDate)],
    on: NaiveDate,
) -> Vec<SeriesForecast> {
    let r = &rules.immunization;
    let dates_of = |code: &str| -> Vec<NaiveDate> {
        let mut v: Vec<NaiveDate> = given
            .iter()
            .filter(|(c, d)| *c == code && *d <= on)
            .map(|(_, d)| *d)
            .collect();
        v.sort();
        v
    };
    // Every past dose of an injectable live vaccine (§3 general rules).
    let mut live_days: Vec<NaiveDate> = given
        .iter()
        .filter(|(c, d)| *d <= on && schedule.vaccine(c).is_some_and(|v| v.live && v.injectable))
        .map(|(_, d)| *d)
        .collect();
    live_days.sort();
    live_days.dedup();
    let catch_up_end = r.catch_up_until.after(birth);

    schedule
        .vaccines
        .iter()
        .map(|v| {
            let dates = dates_of(&v.code);
            let (state, next) =
                next_dose(v, &dates, birth, on, &dates_of, &live_days, r, catch_up_end);
            SeriesForecast {
                vaccine: v.code.clone(),
                name_zh: v.name_zh.clone(),
                name_en: v.name_en.clone(),
                given: dates,
                state,
                next,
            }
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn next_dose(
    v: &VaccineRule,
    dates: &[NaiveDate],
    birth: NaiveDate,
    on: NaiveDate,
    dates_of: &dyn Fn(&str) -> Vec<NaiveDate>,
    live_days: &[NaiveDate],
    r: &super::rules::ImmunizationRules,
    catch_up_end: NaiveDate,
) -> (SeriesState, Option<NextDose>) {
    // Doses counted, never restarted: the next dose is the one after those given.
    let Some(dose) = v.doses.get(dates.len()) else {
        return (SeriesState::Complete, None);
    };
    if let Some(skip) = &dose.skip_if {
        if dates_of(&skip.vaccine).len() >= skip.at_least {
            return (SeriesState::Complete, None);
        }
    }
    let scheduled = dose.age.after(birth);
    let mut earliest = scheduled;
    let mut why = vec![format!("dose {} from age {}", dose.number, dose.age)];
    if let Some(interval) = dose.min_interval {
        let anchor = match &dose.interval_from {
            Some(other) => dates_of(other).last().copied(),
            None => dates.last().copied(),
        };
        if let Some(prev) = anchor {
            earliest = earliest.max(interval.after(prev));
            why.push(format!(
                "≥ {interval} after {}",
                match &dose.interval_from {
                    Some(other) => format!("the last {other} dose"),
                    None => format!("dose {}", dose.number - 1),
                }
            ));
        }
    }
    if v.live && v.injectable {
        // Not inside the gap after another injectable live dose, unless on the same day
        // as it — possible only when that day is today.
        let mut last_clash = None;
        while let Some(x) = live_days.iter().find(|x| {
            let gap_end = r.live_injectable_gap.after(**x);
            earliest < gap_end && !(earliest <= **x && **x == on)
        }) {
            earliest = r.live_injectable_gap.after(*x);
            last_clash = Some(*x);
        }
        if let Some(x) = last_clash {
            why.push(format!(
                "≥ {} after the live vaccine given {x}",
                r.live_injectable_gap
            ));
        }
    }
    // The dose can be given no earlier than today: past the limit by then, it is closed.
    let limit = v.not_at_or_after.map(|s| s.after(birth));
    let soonest = earliest.max(on);
    if limit.is_some_and(|l| soonest >= l) || soonest >= catch_up_end {
        return (SeriesState::Closed, None);
    }
    let recommended = earliest.max(scheduled);
    let mut overdue_after = match dose.by {
        Some(by) => super::before(Span::Days(1), by.after(birth)),
        None => r.overdue_grace.after(recommended),
    };
    if let Some(l) = limit {
        overdue_after = overdue_after.min(super::before(Span::Days(1), l));
    }
    let overdue_after = overdue_after.max(earliest);
    if let Some(by) = dose.by {
        why.push(format!("complete by {by}"));
    }
    if let Some(l) = v.not_at_or_after {
        why.push(format!("not at or after {l}"));
    }
    if let Some(note) = &v.note {
        why.push(note.clone());
    }
    (
        SeriesState::InProgress,
        Some(NextDose {
            number: dose.number,
            earliest,
            recommended,
            overdue_after,
            status: DueStatus::on(on, earliest, overdue_after),
            rule: why.join("; "),
        }),
    )
}

/// The forecast on the schedule in force.
pub fn forecast(rec: &ResidentRecord, on: NaiveDate) -> Vec<SeriesForecast> {
    let given: Vec<(&str, NaiveDate)> = rec
        .immunizations
        .iter()
        .map(|i| (i.vaccine.as_str(), i.date))
        .collect();
    forecast_with(
        immunization_schedule(),
        super::programme_rules(),
        rec.resident.birth_date,
        &given,
        on,
    )
}

pub(crate) fn assess(
    rec: &ResidentRecord,
    on: NaiveDate,
    rules: &ProgrammeRules,
    items: &mut Vec<DueItem>,
    statuses: &mut Vec<ProgrammeStatus>,
) {
    let birth = rec.resident.birth_date;
    if birth > on || rules.immunization.catch_up_until.after(birth) <= on {
        return;
    }
    let schedule = immunization_schedule();
    let series = forecast(rec, on);
    let (mut complete, mut open, mut closed) = (0, 0, 0);
    for s in &series {
        match s.state {
            SeriesState::Complete => complete += 1,
            SeriesState::Closed => closed += 1,
            SeriesState::InProgress => open += 1,
        }
        let Some(n) = &s.next else { continue };
        items.push(DueItem::new(
            Programme::Immunization,
            format!("{}-{}", s.vaccine, n.number),
            format!("{} 第{}剂", s.name_zh, n.number),
            format!("{} dose {}", s.vaccine, n.number),
            n.earliest,
            n.recommended,
            n.overdue_after,
            on,
            format!(
                "national schedule {} (domain-rules §3), {}: {}",
                schedule.edition, s.vaccine, n.rule
            ),
        ));
    }
    statuses.push(ProgrammeStatus {
        programme: Programme::Immunization,
        status: if open == 0 && closed == 0 {
            "complete".into()
        } else {
            "in-progress".into()
        },
        detail_zh: format!("已完成 {complete} 种，待种 {open} 种，超龄未种 {closed} 种"),
        detail_en: format!("{complete} series complete, {open} open, {closed} past age limit"),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::programmes::programme_rules;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn next(birth: &str, given: &[(&str, &str)], on: &str, vaccine: &str) -> Option<NextDose> {
        let given: Vec<(&str, NaiveDate)> = given.iter().map(|(c, x)| (*c, d(x))).collect();
        forecast_with(
            immunization_schedule(),
            programme_rules(),
            d(birth),
            &given,
            d(on),
        )
        .into_iter()
        .find(|s| s.vaccine == vaccine)
        .unwrap()
        .next
    }

    /// One row per vaccine and dose of domain-rules §3: a child who had every earlier
    /// dose on time is proposed this dose at exactly its schedule age.
    #[test]
    fn each_dose_of_the_schedule_falls_at_its_age_when_on_time() {
        let birth = d("2024-01-15");
        let s = immunization_schedule();
        for v in &s.vaccines {
            let mut given: Vec<(&str, NaiveDate)> = Vec::new();
            for dose in &v.doses {
                if dose.skip_if.is_some() {
                    continue;
                }
                let at = dose.age.after(birth);
                // Other series' doses this one is measured from, on time.
                let mut all = given.clone();
                if let Some(other) = &dose.interval_from {
                    for od in &s.vaccine(other).unwrap().doses {
                        all.push((other.as_str(), od.age.after(birth)));
                    }
                }
                let f = forecast_with(s, programme_rules(), birth, &all, at);
                let n = f.iter().find(|x| x.vaccine == v.code).unwrap().next.clone();
                let n = n.unwrap_or_else(|| panic!("{} dose {} proposed", v.code, dose.number));
                assert_eq!(n.number, dose.number, "{}", v.code);
                assert_eq!(n.recommended, at, "{} dose {}", v.code, dose.number);
                if let Some(by) = dose.by {
                    assert_eq!(n.overdue_after, by.after(birth) - chrono::Days::new(1));
                }
                given.push((v.code.as_str(), at));
            }
        }
    }

    #[test]
    fn hepb_intervals_28_then_60_days() {
        // Dose 1 at birth, dose 2 late at 3 months: dose 3 no earlier than 60 days later.
        let n = next(
            "2024-01-01",
            &[("HepB", "2024-01-01"), ("HepB", "2024-06-01")],
            "2024-07-01",
            "HepB",
        )
        .unwrap();
        assert_eq!(n.number, 3);
        assert_eq!(n.earliest, d("2024-07-31"));
        assert_eq!(n.status, DueStatus::Upcoming);
        // Dose 2 given 20 days after a late dose 1: 28 days apply.
        let n = next(
            "2024-01-01",
            &[("HepB", "2024-02-10")],
            "2024-02-20",
            "HepB",
        )
        .unwrap();
        assert_eq!(n.earliest, d("2024-03-09"));
        // A newborn without the birth dose is overdue after the first day.
        let n = next("2024-01-01", &[], "2024-01-03", "HepB").unwrap();
        assert_eq!((n.number, n.status), (1, DueStatus::Overdue));
    }

    #[test]
    fn bcg_is_not_given_at_four_years() {
        assert!(next("2020-01-01", &[], "2023-12-31", "BCG").is_some());
        assert!(next("2020-01-01", &[], "2024-01-01", "BCG").is_none());
        let n = next("2024-01-01", &[], "2024-05-01", "BCG").unwrap();
        assert_eq!(n.status, DueStatus::Overdue, "complete by 3 months");
        assert!(n.rule.contains("PPD"));
    }

    #[test]
    fn dtap_catch_up_keeps_intervals_and_six_months_before_dose_four() {
        let n = next(
            "2023-01-01",
            &[
                ("DTaP", "2023-04-01"),
                ("DTaP", "2023-05-01"),
                ("DTaP", "2024-06-01"),
            ],
            "2024-07-01",
            "DTaP",
        )
        .unwrap();
        assert_eq!(n.number, 4);
        assert_eq!(n.earliest, d("2024-12-01"));
        // DTaP closes at 6 y; DT takes over 6 months after the last DTaP.
        assert!(next(
            "2017-01-01",
            &[("DTaP", "2017-04-01")],
            "2023-01-01",
            "DTaP"
        )
        .is_none());
        let dt = next("2017-01-01", &[("DTaP", "2022-10-01")], "2023-01-02", "DT").unwrap();
        assert_eq!(dt.earliest, d("2023-04-01"));
    }

    #[test]
    fn live_injectables_28_days_apart_unless_same_day() {
        // JE-L given at 8 months; MMR not given: MMR waits 28 days.
        let n = next("2024-01-01", &[("JE-L", "2024-09-01")], "2024-09-10", "MMR").unwrap();
        assert_eq!(n.earliest, d("2024-09-29"));
        // On the day JE-L is given, MMR may still go the same day.
        let n = next("2024-01-01", &[("JE-L", "2024-09-01")], "2024-09-01", "MMR").unwrap();
        assert_eq!(n.earliest, d("2024-09-01"));
        // bOPV is live but oral: no gap.
        let n = next(
            "2024-01-01",
            &[
                ("MMR", "2024-09-01"),
                ("IPV", "2024-03-01"),
                ("IPV", "2024-04-01"),
            ],
            "2024-09-05",
            "bOPV",
        )
        .unwrap();
        assert_eq!(n.earliest, d("2024-05-01"));
    }

    #[test]
    fn polio_four_year_dose_skipped_after_four_ipv() {
        let given = [
            ("IPV", "2020-03-01"),
            ("IPV", "2020-04-01"),
            ("IPV", "2020-05-01"),
            ("IPV", "2021-05-01"),
            ("bOPV", "2020-06-01"),
        ];
        assert!(next("2020-01-01", &given, "2024-02-01", "bOPV").is_none());
        let n = next(
            "2020-01-01",
            &given[..2]
                .iter()
                .chain(&given[4..])
                .copied()
                .collect::<Vec<_>>(),
            "2024-02-01",
            "bOPV",
        )
        .unwrap();
        assert_eq!(n.number, 2);
    }

    #[test]
    fn mpsv_a_closes_at_24_months_and_ac_follows_a_year_after() {
        assert!(next(
            "2022-01-01",
            &[("MPSV-A", "2022-07-01")],
            "2024-01-01",
            "MPSV-A"
        )
        .is_none());
        let n = next(
            "2021-01-01",
            &[("MPSV-A", "2021-07-01"), ("MPSV-A", "2023-06-01")],
            "2024-01-01",
            "MPSV-AC",
        )
        .unwrap();
        assert_eq!(n.earliest, d("2024-06-01"));
        let n = next(
            "2021-01-01",
            &[("MPSV-AC", "2024-01-01")],
            "2025-01-01",
            "MPSV-AC",
        )
        .unwrap();
        assert_eq!(n.earliest, d("2027-01-01"), "AC doses ≥ 3 y apart");
    }

    #[test]
    fn jel_catch_up_doses_a_year_apart() {
        let n = next(
            "2021-01-01",
            &[("JE-L", "2023-03-01")],
            "2023-04-01",
            "JE-L",
        )
        .unwrap();
        assert_eq!(n.earliest, d("2024-03-01"));
    }

    #[test]
    fn series_complete_proposes_nothing() {
        let f = forecast_with(
            immunization_schedule(),
            programme_rules(),
            d("2024-01-01"),
            &[("HepA-L", d("2025-07-01"))],
            d("2025-08-01"),
        );
        let s = f.iter().find(|s| s.vaccine == "HepA-L").unwrap();
        assert_eq!((s.state, s.next.is_none()), (SeriesState::Complete, true));
    }
}
