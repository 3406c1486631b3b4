//! Table-driven tests over domain-rules §4–5 (each threshold edge) and property tests of
//! the forecaster and the due lists.

use chrono::{Days, NaiveDate, NaiveDateTime};
use proptest::prelude::*;

use super::chronic::{classify, Control, Readings};
use super::immunization::{forecast_with, SeriesState};
use super::*;
use crate::codes::immunization_schedule;
use crate::record::{EncounterType, Programme};
use crate::registry::Sex;
use crate::IdentityNumber;

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn at(s: &str) -> NaiveDateTime {
    d(s).and_hms_opt(9, 0, 0).unwrap()
}

fn person(birth: &str, sex: Sex) -> ResidentRecord {
    let b = d(birth);
    ResidentRecord::new(Resident {
        id: 1,
        district_code: "310118".into(),
        identity_number: IdentityNumber::compose(
            "310118",
            b,
            if sex == Sex::Male { 11 } else { 12 },
        ),
        name: "测试".into(),
        sex,
        birth_date: b,
        street_org_id: 1,
        household_id: 1,
        phone: "13800000000".into(),
        registered: true,
    })
}

impl ResidentRecord {
    fn condition(mut self, icd10: &str, onset: &str) -> Self {
        let id = self.conditions.len() as i64 + 1;
        self.conditions.push(Condition {
            id,
            resident_id: 1,
            icd10: icd10.into(),
            onset: d(onset),
            org_id: 1,
        });
        self
    }

    /// A follow-up of `programme` on `day` with readings `(key, value)`.
    fn visit(mut self, programme: Programme, day: &str, readings: &[(&str, f64)]) -> Self {
        let id = 100 + self.encounters.len() as i64;
        self.encounters.push(Encounter {
            id,
            resident_id: 1,
            kind: EncounterType::FollowUp,
            programme: Some(programme),
            org_id: 1,
            practitioner_id: None,
            start: at(day),
        });
        for (key, value) in readings {
            self = self.observe(key, *value, day, Some(id));
        }
        self
    }

    fn observe(mut self, key: &str, value: f64, day: &str, encounter: Option<i64>) -> Self {
        let code = crate::codes::observation(key).unwrap();
        let id = 1000 + self.observations.len() as i64;
        self.observations.push(Observation {
            id,
            resident_id: 1,
            encounter_id: encounter,
            code: code.code.clone(),
            value,
            unit: code.unit.clone(),
            effective: at(day),
        });
        self
    }
}

fn items(rec: &ResidentRecord, on: &str, p: Programme) -> Vec<DueItem> {
    assess(rec, d(on))
        .items
        .into_iter()
        .filter(|i| i.programme == p)
        .collect()
}

fn status(rec: &ResidentRecord, on: &str, p: Programme) -> Option<String> {
    assess(rec, d(on))
        .statuses
        .into_iter()
        .find(|s| s.programme == p)
        .map(|s| s.status)
}

/// One `check(input, expect)` per threshold row: blood pressure and glucose edges.
#[test]
fn control_thresholds_at_their_edges() {
    let r = programme_rules();
    let bp = |sbp, dbp| Readings {
        sbp: Some(sbp),
        dbp: Some(dbp),
        ..Default::default()
    };
    let glucose = |g| Readings {
        glucose: Some(g),
        ..Default::default()
    };
    let check = |p, age, readings: Readings, expect: Control| {
        let rules = if p == Programme::Hypertension {
            &r.hypertension
        } else {
            &r.diabetes
        };
        assert_eq!(
            classify(p, rules, age, &readings),
            expect,
            "{p:?} age {age} {readings:?}"
        );
    };
    use Control::*;
    use Programme::{Diabetes as D, Hypertension as H};
    check(H, 50, bp(139.0, 89.0), Controlled);
    check(H, 50, bp(140.0, 89.0), Uncontrolled);
    check(H, 50, bp(139.0, 90.0), Uncontrolled);
    check(H, 64, bp(145.0, 80.0), Uncontrolled);
    check(H, 65, bp(149.0, 89.0), Controlled);
    check(H, 65, bp(150.0, 89.0), Uncontrolled);
    check(H, 65, bp(149.0, 90.0), Uncontrolled);
    check(H, 50, bp(179.0, 109.0), Uncontrolled);
    check(H, 50, bp(180.0, 80.0), Emergency);
    check(H, 50, bp(120.0, 110.0), Emergency);
    check(
        H,
        50,
        Readings {
            sbp: Some(120.0),
            dbp: Some(80.0),
            danger_symptoms: true,
            ..Default::default()
        },
        Emergency,
    );
    check(H, 50, Readings::default(), NoReading);
    check(D, 50, glucose(6.9), Controlled);
    check(D, 50, glucose(7.0), Uncontrolled);
    check(D, 50, glucose(16.6), Uncontrolled);
    check(D, 50, glucose(16.7), Emergency);
    check(D, 50, glucose(4.0), Controlled);
    check(D, 50, glucose(3.9), Emergency);
    check(
        D,
        50,
        Readings {
            glucose: Some(6.0),
            heart_rate: Some(100.0),
            ..Default::default()
        },
        Controlled,
    );
    check(
        D,
        50,
        Readings {
            glucose: Some(6.0),
            heart_rate: Some(101.0),
            ..Default::default()
        },
        Emergency,
    );
    check(
        D,
        50,
        Readings {
            glucose: Some(6.0),
            temperature: Some(39.0),
            ..Default::default()
        },
        Controlled,
    );
    check(
        D,
        50,
        Readings {
            glucose: Some(6.0),
            temperature: Some(39.1),
            ..Default::default()
        },
        Emergency,
    );
    check(
        D,
        50,
        Readings {
            glucose: Some(6.0),
            sbp: Some(180.0),
            dbp: Some(90.0),
            ..Default::default()
        },
        Emergency,
    );
}

#[test]
fn hypertension_follow_up_rules() {
    let base = person("1960-03-01", Sex::Male).condition("I10", "2020-01-10");
    // Never followed up: the first follow-up is overdue since diagnosis.
    let i = items(&base, "2025-06-01", Programme::Hypertension);
    assert_eq!(
        (i.len(), i[0].status, i[0].due),
        (1, DueStatus::Overdue, d("2020-01-10"))
    );
    // Controlled: next quarterly follow-up 3 months later, listed 14 days before.
    let ok = base.clone().visit(
        Programme::Hypertension,
        "2025-03-01",
        &[("sbp", 132.0), ("dbp", 84.0)],
    );
    let i = items(&ok, "2025-05-10", Programme::Hypertension);
    assert_eq!(
        (i[0].key.as_str(), i[0].due, i[0].status),
        ("followup", d("2025-06-01"), DueStatus::Upcoming)
    );
    assert_eq!(
        items(&ok, "2025-05-18", Programme::Hypertension)[0].status,
        DueStatus::Due
    );
    assert_eq!(
        items(&ok, "2025-06-16", Programme::Hypertension)[0].status,
        DueStatus::Overdue
    );
    assert_eq!(
        status(&ok, "2025-05-10", Programme::Hypertension).as_deref(),
        Some("controlled")
    );
    // First uncontrolled reading: revisit within 2 weeks, no referral.
    let one = ok.clone().visit(
        Programme::Hypertension,
        "2025-06-01",
        &[("sbp", 150.0), ("dbp", 88.0)],
    );
    let i = items(&one, "2025-06-05", Programme::Hypertension);
    assert_eq!(i.len(), 1);
    assert_eq!((i[0].due, i[0].status), (d("2025-06-15"), DueStatus::Due));
    assert!(i[0].rule.contains("first uncontrolled"));
    // Two consecutive uncontrolled: refer up, and follow up within 2 weeks.
    let two = one.clone().visit(
        Programme::Hypertension,
        "2025-06-14",
        &[("sbp", 152.0), ("dbp", 91.0)],
    );
    let keys: Vec<_> = items(&two, "2025-06-14", Programme::Hypertension)
        .iter()
        .map(|i| i.key.clone())
        .collect();
    assert_eq!(keys, ["referral", "followup"]);
    // Recording the referral at that follow-up takes the referral off the list.
    let referred = one.visit(
        Programme::Hypertension,
        "2025-06-14",
        &[("sbp", 152.0), ("dbp", 91.0), ("referral", 1.0)],
    );
    let keys: Vec<_> = items(&referred, "2025-06-14", Programme::Hypertension)
        .iter()
        .map(|i| i.key.clone())
        .collect();
    assert_eq!(keys, ["followup"]);
    // Emergency reading: emergency referral at once.
    let urgent = ok.visit(
        Programme::Hypertension,
        "2025-06-01",
        &[("sbp", 182.0), ("dbp", 100.0)],
    );
    let i = items(&urgent, "2025-06-02", Programme::Hypertension);
    assert_eq!(
        (i[0].key.as_str(), i[0].status),
        ("emergency-referral", DueStatus::Overdue)
    );
    assert_eq!(
        status(&urgent, "2025-06-02", Programme::Hypertension).as_deref(),
        Some("emergency")
    );
    // Under 35: not in the programme.
    let young = person("1995-01-01", Sex::Female).condition("I10", "2020-01-01");
    assert!(items(&young, "2025-01-01", Programme::Hypertension).is_empty());
}

#[test]
fn diabetes_glucose_rules() {
    let base = person("1955-01-01", Sex::Female).condition("E11.9", "2019-05-01");
    let ok = base.clone().visit(
        Programme::Diabetes,
        "2025-01-10",
        &[("fasting_glucose", 6.9)],
    );
    assert_eq!(
        status(&ok, "2025-02-01", Programme::Diabetes).as_deref(),
        Some("controlled")
    );
    let high = base.clone().visit(
        Programme::Diabetes,
        "2025-01-10",
        &[("fasting_glucose", 7.0)],
    );
    assert_eq!(
        status(&high, "2025-02-01", Programme::Diabetes).as_deref(),
        Some("uncontrolled")
    );
    let low = base.visit(
        Programme::Diabetes,
        "2025-01-10",
        &[("fasting_glucose", 3.9)],
    );
    assert_eq!(
        items(&low, "2025-01-10", Programme::Diabetes)[0].key,
        "emergency-referral"
    );
}

#[test]
fn elderly_annual_check_and_self_care_bands() {
    let r = &programme_rules().elderly;
    for (score, band) in [
        (0.0, "independent"),
        (3.0, "independent"),
        (4.0, "mild"),
        (8.0, "mild"),
        (9.0, "moderate"),
        (18.0, "moderate"),
        (19.0, "dependent"),
        (40.0, "dependent"),
    ] {
        assert_eq!(
            elderly::self_care_band(r, score).unwrap().band,
            band,
            "score {score}"
        );
    }
    let p = person("1958-04-10", Sex::Male);
    assert!(items(&p, "2023-04-09", Programme::Elderly).is_empty(), "64");
    let i = items(&p, "2023-04-10", Programme::Elderly);
    assert_eq!((i[0].due, i[0].status), (d("2023-04-10"), DueStatus::Due));
    let checked = p.visit(
        Programme::Elderly,
        "2024-05-01",
        &[("self_care_score", 5.0)],
    );
    let i = items(&checked, "2025-04-15", Programme::Elderly);
    assert_eq!((i[0].due, i[0].status), (d("2025-05-01"), DueStatus::Due));
    assert_eq!(
        status(&checked, "2025-04-15", Programme::Elderly).as_deref(),
        Some("mild")
    );
}

#[test]
fn prenatal_windows_by_gestational_week() {
    // LMP 2025-01-01: week 12 ends 2025-04-01 (day 90), week 16 starts 2025-04-23.
    let p = person("1995-06-01", Sex::Female).condition("Z34.0", "2025-01-01");
    let check = |rec: &ResidentRecord, on: &str, expect: &[(&str, DueStatus)]| {
        let got: Vec<(String, DueStatus)> = items(rec, on, Programme::Maternal)
            .into_iter()
            .map(|i| (i.key, i.status))
            .collect();
        let want: Vec<(String, DueStatus)> =
            expect.iter().map(|(k, s)| (k.to_string(), *s)).collect();
        assert_eq!(got, want, "on {on}");
    };
    check(&p, "2025-04-01", &[("prenatal-1", DueStatus::Due)]);
    check(
        &p,
        "2025-04-02",
        &[
            ("prenatal-1", DueStatus::Overdue),
            ("prenatal-2", DueStatus::Upcoming),
        ],
    );
    // The 2nd visit's window opening takes the missed first one's place.
    check(&p, "2025-04-23", &[("prenatal-2", DueStatus::Due)]);
    let booked = p.clone().visit(Programme::Maternal, "2025-03-20", &[]);
    check(
        &booked,
        "2025-04-02",
        &[("prenatal-2", DueStatus::Upcoming)],
    );
    // Week 20 ends on day 146 (2025-05-27); week 21 starts 2025-05-28.
    let second = booked.clone().visit(Programme::Maternal, "2025-05-27", &[]);
    check(&second, "2025-05-28", &[("prenatal-3", DueStatus::Due)]);
    let late = booked.visit(Programme::Maternal, "2025-05-28", &[]);
    check(&late, "2025-05-28", &[("prenatal-4", DueStatus::Upcoming)]);
    // Delivered: postpartum visit within 7 days of discharge (3-day stay), 42-day check.
    let delivered = second.condition("O80", "2025-10-01");
    check(
        &delivered,
        "2025-10-05",
        &[("postpartum-visit", DueStatus::Due)],
    );
    check(
        &delivered,
        "2025-10-12",
        &[
            ("postpartum-visit", DueStatus::Overdue),
            ("postpartum-42d", DueStatus::Upcoming),
        ],
    );
    let visited = delivered.visit(Programme::Maternal, "2025-10-08", &[]);
    check(
        &visited,
        "2025-11-12",
        &[("postpartum-42d", DueStatus::Due)],
    );
}

#[test]
fn five_colour_risk_grading() {
    let rules = &programme_rules().maternal;
    let lmp = "2025-01-01";
    let grade = |rec: ResidentRecord| {
        let g = maternal::risk_grade(&rec, rules, d(lmp), d("2025-04-01"));
        (g.colour, g.purple)
    };
    let woman = |birth: &str| person(birth, Sex::Female).condition("Z34", lmp);
    use RiskColour::*;
    assert_eq!(grade(woman("1995-01-01")), (Green, false));
    assert_eq!(grade(woman("1990-01-02")), (Green, false), "34 at LMP");
    assert_eq!(grade(woman("1990-01-01")), (Yellow, false), "35 at LMP");
    assert_eq!(grade(woman("1985-01-01")), (Orange, false), "40 at LMP");
    assert_eq!(grade(woman("2006-01-02")), (Yellow, false), "18 at LMP");
    assert_eq!(grade(woman("2007-06-01")), (Yellow, false), "17 at LMP");
    assert_eq!(grade(woman("2006-01-01")), (Green, false), "19 at LMP");
    let obs = |key: &str, v: f64| woman("1995-01-01").observe(key, v, "2025-02-01", None);
    for (key, v, want) in [
        ("haemoglobin", 110.0, Green),
        ("haemoglobin", 109.0, Yellow),
        ("haemoglobin", 60.0, Yellow),
        ("haemoglobin", 59.0, Orange),
        ("haemoglobin", 41.0, Orange),
        ("haemoglobin", 40.0, Red),
        ("platelets", 100.0, Green),
        ("platelets", 99.0, Yellow),
        ("platelets", 50.0, Yellow),
        ("platelets", 49.0, Orange),
        ("platelets", 30.0, Orange),
        ("platelets", 29.0, Red),
        ("bmi", 25.0, Green),
        ("bmi", 25.1, Yellow),
        ("bmi", 18.5, Green),
        ("bmi", 18.4, Yellow),
        ("bmi", 28.0, Orange),
    ] {
        assert_eq!(grade(obs(key, v)).0, want, "{key} {v}");
    }
    // Observations before this pregnancy do not count.
    assert_eq!(
        grade(woman("1995-01-01").observe("haemoglobin", 50.0, "2024-06-01", None)).0,
        Green
    );
    let cond = |code: &str| woman("1995-01-01").condition(code, "2025-02-01");
    for (code, want) in [
        ("O34.2", Yellow),
        ("O30.0", Yellow),
        ("O30.1", Orange),
        ("O14.1", Orange),
        ("O24.4", Orange),
        ("I27.0", Red),
        ("M32.1", Red),
        ("O43.2", Green),
        ("O44.0", Green),
    ] {
        assert_eq!(grade(cond(code)).0, want, "{code}");
    }
    assert_eq!(
        grade(cond("O43.2").condition("O44.1", "2025-02-01")).0,
        Red,
        "accreta with previa"
    );
    // Highest colour wins; purple coexists.
    assert_eq!(
        grade(cond("O30.0").condition("I27.0", "2025-02-01")),
        (Red, false)
    );
    assert_eq!(grade(cond("B18.1")), (Green, true));
    assert_eq!(
        grade(cond("A53.9").condition("O14.1", "2025-02-01")),
        (Orange, true)
    );
    // A chapter-O code of an earlier pregnancy does not count; a chronic one does.
    assert_eq!(
        grade(woman("1995-01-01").condition("O14.1", "2023-01-01")).0,
        Green
    );
    assert_eq!(
        grade(woman("1995-01-01").condition("I27.0", "2020-01-01")).0,
        Red
    );
}

#[test]
fn child_visits_by_age() {
    let c = person("2025-01-01", Sex::Male);
    let keys = |rec: &ResidentRecord, on: &str| -> Vec<(String, DueStatus)> {
        items(rec, on, Programme::Child)
            .into_iter()
            .map(|i| (i.key, i.status))
            .collect()
    };
    // Newborn visit within 7 days of a 3-day stay: by 2025-01-11.
    assert_eq!(
        keys(&c, "2025-01-05")[0],
        ("newborn".into(), DueStatus::Due)
    );
    assert_eq!(
        keys(&c, "2025-01-12")[0],
        ("newborn".into(), DueStatus::Overdue)
    );
    let seen = c.visit(Programme::Child, "2025-01-08", &[]);
    assert_eq!(
        keys(&seen, "2025-01-12")[0],
        ("1m".into(), DueStatus::Upcoming)
    );
    assert_eq!(keys(&seen, "2025-01-29")[0], ("1m".into(), DueStatus::Due));
    let month = seen.visit(Programme::Child, "2025-01-30", &[]);
    assert_eq!(
        keys(&month, "2025-03-15")[0],
        ("3m".into(), DueStatus::Upcoming)
    );
    // Haemoglobin at 6–8 months.
    let k = keys(&month, "2025-07-15");
    assert!(k.contains(&("hb-6m".into(), DueStatus::Due)), "{k:?}");
    let tested = month.observe("haemoglobin", 118.0, "2025-07-20", None);
    assert!(!keys(&tested, "2025-07-25")
        .iter()
        .any(|(k, _)| k == "hb-6m"));
    // Yearly visits to 6; nothing at 7.
    let six = person("2019-01-01", Sex::Female);
    assert!(keys(&six, "2025-01-10").contains(&("6y".into(), DueStatus::Due)));
    assert!(keys(&six, "2026-01-01").is_empty());
}

#[test]
fn mental_follow_up_by_danger_level() {
    let base = person("1980-01-01", Sex::Male).condition("F20.9", "2020-01-01");
    let next = |level: f64, on: &str| -> Vec<(String, NaiveDate)> {
        let rec = base
            .clone()
            .visit(Programme::Mental, "2025-03-01", &[("danger_level", level)]);
        items(&rec, on, Programme::Mental)
            .into_iter()
            .map(|i| (i.key, i.due))
            .collect()
    };
    assert_eq!(
        next(0.0, "2025-03-02"),
        [("followup".to_string(), d("2025-06-01"))]
    );
    for level in [1.0, 2.0] {
        assert_eq!(
            next(level, "2025-03-02"),
            [("followup".to_string(), d("2025-03-15"))],
            "level {level}"
        );
    }
    for level in [3.0, 4.0, 5.0] {
        assert_eq!(
            next(level, "2025-03-02"),
            [
                ("referral".to_string(), d("2025-03-01")),
                ("followup".to_string(), d("2025-03-15"))
            ],
            "level {level}"
        );
    }
    // Level 1 again at the 2-week review: then every 3 months.
    let reviewed = base
        .clone()
        .visit(Programme::Mental, "2025-03-01", &[("danger_level", 1.0)])
        .visit(Programme::Mental, "2025-03-14", &[("danger_level", 1.0)]);
    assert_eq!(
        items(&reviewed, "2025-03-20", Programme::Mental)[0].due,
        d("2025-06-14")
    );
    assert_eq!(
        status(&reviewed, "2025-03-20", Programme::Mental).as_deref(),
        Some("level-1")
    );
}

#[test]
fn key_populations_from_the_record() {
    let kp = |rec: &ResidentRecord, on: &str| key_populations(rec, d(on));
    use KeyPopulation::*;
    assert_eq!(kp(&person("1990-01-01", Sex::Male), "2025-01-01"), []);
    assert_eq!(kp(&person("1965-01-01", Sex::Male), "2025-01-01"), [Older]);
    assert_eq!(kp(&person("2019-01-02", Sex::Male), "2025-12-31"), [Child]);
    assert_eq!(kp(&person("2019-01-01", Sex::Male), "2026-01-01"), []);
    let disabled =
        person("1940-01-01", Sex::Female).observe("needs_level", 3.0, "2024-01-01", None);
    assert_eq!(kp(&disabled, "2025-01-01"), [Older, DisabledElderly]);
    let pregnant = person("1995-01-01", Sex::Female)
        .condition("Z34", "2025-01-01")
        .condition("E11.9", "2020-01-01");
    assert_eq!(kp(&pregnant, "2025-05-01"), [Chronic, Pregnant]);
    assert_eq!(
        kp(&pregnant.condition("O80", "2025-10-01"), "2026-01-01"),
        [Chronic]
    );
    assert_eq!(
        kp(
            &person("1980-01-01", Sex::Male).condition("F20.0", "2010-01-01"),
            "2025-01-01"
        ),
        [SevereMentalDisorder]
    );
}

fn arb_history() -> impl Strategy<Value = (NaiveDate, Vec<(usize, u32)>, u32)> {
    // Birth in 2015–2024; up to 30 doses of random vaccines at random ages; a day to ask.
    let n = immunization_schedule().vaccines.len();
    (
        0u32..3650,
        prop::collection::vec((0..n, 0u32..2600), 0..30),
        0u32..2600,
    )
        .prop_map(|(b, doses, on)| (d("2015-01-01") + Days::new(b.into()), doses, on))
}

proptest! {
    /// The forecaster never proposes a dose before its minimum age or interval, or past
    /// an age limit, and never restarts a series.
    #[test]
    fn forecasts_respect_ages_intervals_and_limits((birth, doses, on) in arb_history()) {
        let s = immunization_schedule();
        let on = birth + Days::new(on.into());
        let given: Vec<(&str, NaiveDate)> = doses
            .iter()
            .map(|(v, age)| (s.vaccines[*v].code.as_str(), birth + Days::new((*age).into())))
            .filter(|(_, d)| *d <= on)
            .collect();
        let rules = programme_rules();
        for f in forecast_with(s, rules, birth, &given, on) {
            let v = s.vaccine(&f.vaccine).unwrap();
            prop_assert_eq!(f.given.len(), given.iter().filter(|(c, _)| *c == f.vaccine).count());
            let Some(n) = &f.next else {
                prop_assert!(f.state != SeriesState::InProgress);
                continue;
            };
            prop_assert_eq!(n.number as usize, f.given.len() + 1, "never restarts");
            let dose = &v.doses[f.given.len()];
            prop_assert!(n.earliest >= dose.age.after(birth), "minimum age");
            prop_assert!(n.recommended >= n.earliest && n.overdue_after >= n.earliest);
            if let Some(interval) = dose.min_interval {
                let anchor = match &dose.interval_from {
                    Some(o) => given.iter().filter(|(c, _)| c == o).map(|(_, d)| *d).max(),
                    None => f.given.last().copied(),
                };
                if let Some(a) = anchor {
                    prop_assert!(n.earliest >= interval.after(a), "minimum interval");
                }
            }
            if let Some(limit) = v.not_at_or_after {
                prop_assert!(n.earliest.max(on) < limit.after(birth), "age limit");
            }
            if v.live && v.injectable {
                for (c, x) in &given {
                    let other = s.vaccine(c).unwrap();
                    if other.live && other.injectable && n.earliest != *x {
                        prop_assert!(n.earliest >= rules.immunization.live_injectable_gap.after(*x) || n.earliest < *x,
                            "28-day rule: {} {} vs {} {}", f.vaccine, n.earliest, c, x);
                    }
                }
            }
        }
    }

    /// Same record, same date → same due list.
    #[test]
    fn due_lists_are_idempotent((birth, doses, on) in arb_history(), sbp in 100.0f64..200.0, level in 0u8..6) {
        let s = immunization_schedule();
        let b = birth.to_string();
        let mut rec = person(&b, Sex::Female)
            .condition("I10", "2016-01-01")
            .condition("F20.0", "2016-01-01")
            .condition("Z34", &(birth + Days::new(6000)).to_string());
        for (v, age) in &doses {
            rec.immunizations.push(Immunization {
                id: rec.immunizations.len() as i64 + 1,
                resident_id: 1,
                vaccine: s.vaccines[*v].code.clone(),
                dose_number: 1,
                date: birth + Days::new((*age).into()),
                org_id: 1,
            });
        }
        let day = (birth + Days::new(on.into())).to_string();
        rec = rec.visit(Programme::Hypertension, &day, &[("sbp", sbp.round()), ("dbp", 85.0)])
            .visit(Programme::Mental, &day, &[("danger_level", f64::from(level))]);
        let asked = birth + Days::new(u64::from(on) + 30);
        let first = assess(&rec, asked);
        prop_assert_eq!(&first, &assess(&rec.clone(), asked));
        // Sorted: overdue first, then by due date.
        prop_assert!(first.items.windows(2).all(|w| w[0].sort_key() <= w[1].sort_key()));
    }
}
