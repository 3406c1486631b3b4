//! Every supported indicator on a hand-built district of six residents, with the
//! expected numerator and denominator worked out by hand in the comments.

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};

use super::rules::{
    case_report_tallies, order_tallies, referral_tallies, resource_tallies, signal_tallies,
    survey_tallies,
};
use super::*;
use crate::programmes::ResidentRecord;
use crate::record::{Condition, Contract, ContractStatus, Encounter, EncounterType, Immunization};
use crate::referral::{Direction, ReferralFact};
use crate::registry::{Id, OrgKind, Organisation, Practitioner, PractitionerRole, Resident, Sex};
use crate::surveillance::{CaseReport, CaseStatus, Signal, SignalStatus};
use crate::{IdentityNumber, Observation, Programme};

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn t(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
}

const DISTRICT: Id = 2;
const S1: Id = 10;
const S2: Id = 11;
const C1: Id = 20;
const STATION1: Id = 21;
const C2: Id = 22;
const HOSPITAL: Id = 30;
const CDC: Id = 40;

fn org(id: Id, code: &str, kind: OrgKind, parent: Option<Id>, beds: i64) -> Organisation {
    Organisation {
        id,
        code: code.into(),
        name_zh: code.into(),
        name_en: code.into(),
        kind,
        level: None,
        parent_id: parent,
        district_code: "310118".into(),
        beds,
    }
}

fn orgs() -> Vec<Organisation> {
    vec![
        org(1, "310000", OrgKind::City, None, 0),
        org(DISTRICT, "310118", OrgKind::District, Some(1), 0),
        org(S1, "S1", OrgKind::Street, Some(DISTRICT), 0),
        org(S2, "S2", OrgKind::Town, Some(DISTRICT), 0),
        org(C1, "C1", OrgKind::CommunityHealthCentre, Some(S1), 20),
        org(STATION1, "C1-ST1", OrgKind::Station, Some(C1), 0),
        org(C2, "C2", OrgKind::CommunityHealthCentre, Some(S2), 0),
        org(HOSPITAL, "H", OrgKind::Hospital, Some(S2), 100),
        org(CDC, "CDC", OrgKind::PublicHealth, Some(DISTRICT), 0),
    ]
}

fn staff() -> Vec<Practitioner> {
    let p = |id, role, org_id| Practitioner {
        id,
        name: "x".into(),
        role,
        org_id,
        district_code: "310118".into(),
    };
    vec![
        p(1, PractitionerRole::FamilyDoctor, C1),
        p(2, PractitionerRole::Specialist, HOSPITAL),
        p(3, PractitionerRole::Nurse, STATION1),
        p(4, PractitionerRole::PublicHealthDoctor, CDC),
        p(5, PractitionerRole::Manager, C2),
    ]
}

struct R(ResidentRecord);

impl R {
    fn new(id: Id, birth: &str, sex: Sex, street: Id) -> Self {
        let b = d(birth);
        R(ResidentRecord::new(Resident {
            id,
            district_code: "310118".into(),
            identity_number: IdentityNumber::compose("310118", b, 10 + id as u16),
            name: "测试".into(),
            sex,
            birth_date: b,
            street_org_id: street,
            household_id: id,
            phone: "13800000000".into(),
            registered: true,
        }))
    }

    fn id(&self) -> Id {
        self.0.resident.id
    }

    fn condition(mut self, icd10: &str, onset: &str) -> Self {
        let id = self.id() * 100 + self.0.conditions.len() as Id;
        self.0.conditions.push(Condition {
            id,
            resident_id: self.id(),
            icd10: icd10.into(),
            onset: d(onset),
            org_id: C1,
        });
        self
    }

    fn encounter(
        mut self,
        kind: EncounterType,
        p: Option<Programme>,
        day: &str,
        org_id: Id,
    ) -> Self {
        let id = self.id() * 1000 + self.0.encounters.len() as Id;
        self.0.encounters.push(Encounter {
            id,
            resident_id: self.id(),
            kind,
            programme: p,
            org_id,
            practitioner_id: None,
            start: d(day).and_hms_opt(9, 0, 0).unwrap(),
        });
        self
    }

    fn follow_up(self, p: Programme, day: &str) -> Self {
        self.encounter(EncounterType::FollowUp, Some(p), day, C1)
    }

    fn visit(self, day: &str, org: Id) -> Self {
        self.encounter(EncounterType::Outpatient, None, day, org)
    }

    /// A reading on the last encounter.
    fn reading(mut self, key: &str, value: f64) -> Self {
        let e = self.0.encounters.last().unwrap().clone();
        let code = crate::codes::observation(key).unwrap();
        self.0.observations.push(Observation {
            id: self.id() * 10_000 + self.0.observations.len() as Id,
            resident_id: self.id(),
            encounter_id: Some(e.id),
            code: code.code.clone(),
            value,
            unit: code.unit.clone(),
            effective: e.start,
        });
        self
    }

    fn dose(mut self, vaccine: &str, n: i32, day: &str) -> Self {
        self.0.immunizations.push(Immunization {
            id: self.id() * 100 + self.0.immunizations.len() as Id,
            resident_id: self.id(),
            vaccine: vaccine.into(),
            dose_number: n,
            date: d(day),
            org_id: C1,
        });
        self
    }

    fn contract(mut self, centre: Id, start: &str, end: &str) -> Self {
        self.0.contracts.push(Contract {
            id: self.id(),
            resident_id: self.id(),
            centre_org_id: centre,
            doctor_id: 1,
            district_hospital_id: HOSPITAL,
            city_hospital_id: 99,
            start: d(start),
            end: d(end),
            status: ContractStatus::Active,
        });
        self
    }
}

fn residents() -> Vec<ResidentRecord> {
    use Programme::*;
    vec![
        // A: 75 at the end of 2025, hypertensive since 2015, four follow-ups in 2025,
        // the last at 145/85 (controlled for 65+: < 150/90), an elderly check, signed
        // with C1 for 2025; visits at C1's station, at the hospital of the combination,
        // and at C2.
        R::new(1, "1950-03-01", Sex::Male, S1)
            .condition("I10", "2015-04-01")
            .follow_up(Hypertension, "2025-02-10")
            .reading("sbp", 150.0)
            .reading("dbp", 95.0)
            .follow_up(Hypertension, "2025-05-10")
            .follow_up(Hypertension, "2025-08-10")
            .follow_up(Hypertension, "2025-11-10")
            .reading("sbp", 145.0)
            .reading("dbp", 85.0)
            .follow_up(Elderly, "2025-06-01")
            .contract(C1, "2025-01-01", "2025-12-31")
            .visit("2025-03-03", STATION1)
            .visit("2025-04-04", HOSPITAL)
            .visit("2025-07-07", C2)
            .0,
        // B: 45, type 2 diabetic since 2020, two follow-ups, last glucose 7.2; no
        // contract.
        R::new(2, "1980-01-01", Sex::Male, S2)
            .condition("E11.9", "2020-06-01")
            .follow_up(Diabetes, "2025-03-01")
            .reading("fasting_glucose", 6.1)
            .follow_up(Diabetes, "2025-09-01")
            .reading("fasting_glucose", 7.2)
            .0,
        // C: born 2025-03-10; newborn visit on 03-15 (discharge 03-13 + 7 days);
        // HepB 1 and 2 and BCG given.
        R::new(3, "2025-03-10", Sex::Female, S1)
            .follow_up(Child, "2025-03-15")
            .dose("HepB", 1, "2025-03-10")
            .dose("BCG", 1, "2025-03-10")
            .dose("HepB", 2, "2025-04-12")
            .0,
        // D: pregnancy from 2024-08-01, first visit in week 7, five prenatal visits,
        // delivered 2025-05-01 (discharge 05-04), postpartum visits 05-06 and 06-12.
        R::new(4, "1995-05-05", Sex::Female, S1)
            .condition("Z34.9", "2024-08-01")
            .follow_up(Maternal, "2024-09-20")
            .follow_up(Maternal, "2024-12-01")
            .follow_up(Maternal, "2025-01-05")
            .follow_up(Maternal, "2025-03-01")
            .follow_up(Maternal, "2025-04-20")
            .condition("O80", "2025-05-01")
            .encounter(EncounterType::HomeVisit, Some(Maternal), "2025-05-06", C1)
            .encounter(EncounterType::HomeVisit, Some(Maternal), "2025-06-12", C1)
            .0,
        // E: 55, severe mental disorder since 2019, four follow-ups in 2025.
        R::new(5, "1970-07-07", Sex::Male, S2)
            .condition("F20.0", "2019-01-01")
            .follow_up(Mental, "2025-01-15")
            .follow_up(Mental, "2025-04-15")
            .follow_up(Mental, "2025-07-15")
            .follow_up(Mental, "2025-10-15")
            .0,
        // F: 25, nothing on record.
        R::new(6, "2000-02-02", Sex::Female, S2).0,
    ]
}

type Totals = HashMap<(String, Id, Period), (i64, i64)>;

fn totals(periods: &[Period]) -> Totals {
    let defs = supported();
    let units = Units::new(&orgs());
    let mut out: Totals = HashMap::new();
    let mut add = |t: Tally| {
        let e = out
            .entry((defs[t.indicator as usize].id.clone(), t.unit, t.period))
            .or_default();
        e.0 += t.num;
        e.1 += t.den;
    };
    for r in residents() {
        resident_tallies(&r, &defs, &units, periods, &mut add);
    }
    resource_tallies(&orgs(), &staff(), &defs, &units, periods, &mut add);
    let report = |id, disease: &str, diag: &str, rep: &str, org: &str| CaseReport {
        id,
        disease: disease.into(),
        resident_id: None,
        reporting_org: org.into(),
        street: "S2".into(),
        status: CaseStatus::Confirmed,
        onset_date: d("2025-06-01"),
        diagnosed_at: t(diag),
        reported_at: t(rep),
    };
    for r in [
        // Cholera (class A, 2 h): 3 h late.
        report(1, "cholera", "2025-06-02 08:00", "2025-06-02 11:00", "H"),
        // Influenza (24 h): 5 h, on time.
        report(2, "influenza", "2025-06-02 08:00", "2025-06-02 13:00", "H"),
        // Influenza at C2 exactly at the limit: on time.
        report(3, "influenza", "2025-07-01 08:00", "2025-07-02 08:00", "C2"),
    ] {
        case_report_tallies(&r, "310118", &defs, &units, periods, &mut add);
    }
    let signal = |id, raised: &str, verifying: Option<&str>| Signal {
        id,
        disease: "influenza".into(),
        area: "S1".into(),
        algorithms: "ears-c2".into(),
        first_day: d("2025-06-01"),
        last_day: d("2025-06-01"),
        alarm_days: 1,
        observed: 5.0,
        expected: 1.0,
        statistic: 3.0,
        threshold: 2.0,
        counts: vec![],
        status: SignalStatus::Verifying,
        raised_at: t(raised),
        verifying_at: verifying.map(t),
        closed_at: None,
        note: String::new(),
    };
    for s in [
        signal(1, "2025-06-01 08:00", Some("2025-06-01 09:30")),
        signal(2, "2025-06-03 08:00", Some("2025-06-03 08:30")),
        signal(3, "2025-06-05 08:00", None),
    ] {
        signal_tallies(&s, "310118", &defs, &units, periods, &mut add);
    }
    let referral =
        |direction, from_org, to_org, created: &str, accepted: Option<&str>, rejected| {
            ReferralFact {
                direction,
                from_org,
                to_org,
                created: t(created),
                accepted_at: accepted.map(t),
                rejected,
            }
        };
    for r in [
        // Accepted after 150 minutes.
        referral(
            Direction::Up,
            C1,
            HOSPITAL,
            "2025-03-01 08:00",
            Some("2025-03-01 10:30"),
            false,
        ),
        // Rejected.
        referral(Direction::Up, C2, HOSPITAL, "2025-04-01 09:00", None, true),
        // Down, not yet taken up: no decision.
        referral(
            Direction::Down,
            HOSPITAL,
            C1,
            "2025-05-01 09:00",
            None,
            false,
        ),
        // Accepted after 60 minutes.
        referral(
            Direction::Up,
            C1,
            HOSPITAL,
            "2025-06-01 08:00",
            Some("2025-06-01 09:00"),
            false,
        ),
    ] {
        referral_tallies(&r, "310118", &defs, &units, periods, &mut add);
    }
    for (org, day, recognised) in [
        (HOSPITAL, "2025-06-02", true),
        (HOSPITAL, "2025-06-03", false),
        (C1, "2025-07-01", true),
    ] {
        order_tallies(
            &crate::recognition::OrderFact {
                org_id: org,
                day: d(day),
                recognised,
            },
            "310118",
            &defs,
            &units,
            periods,
            &mut add,
        );
    }
    // Surveys: at the hospital 5 of 6 and 2 of 6 answers satisfied; at C1 6 of 6 in
    // the next quarter.
    for (org, day, satisfied) in [
        (HOSPITAL, "2025-05-20", 5),
        (HOSPITAL, "2025-06-30", 2),
        (C1, "2025-07-01", 6),
    ] {
        survey_tallies(
            &crate::survey::SurveyFact {
                org_id: org,
                day: d(day),
                satisfied,
                answers: 6,
            },
            "310118",
            &defs,
            &units,
            periods,
            &mut add,
        );
    }
    out
}

#[test]
fn every_indicator_by_hand_for_the_district_in_2025() {
    let y = Period::Year(2025);
    let got = totals(&[y]);
    // (indicator, numerator, denominator) for the district, 2025.
    let expect: &[(&str, i64, i64)] = &[
        // Six residents, five with something on record (F has nothing).
        ("ehr_rate", 5, 6),
        // All five records had activity in 2025.
        ("record_usage", 5, 5),
        // Only A is 65+, with an elderly check.
        ("elderly_management", 1, 1),
        ("hypertension_management", 1, 1),
        // A: four follow-ups; last 145/85 at 75 is under 150/90.
        ("hypertension_standard", 1, 1),
        ("bp_control", 1, 1),
        ("diabetes_management", 1, 1),
        // B: two follow-ups, last glucose 7.2.
        ("diabetes_standard", 0, 1),
        ("glucose_control", 0, 1),
        // D: one delivery; first visit in week 7; postpartum 2 days after discharge;
        // five prenatal and two postpartum visits.
        ("early_pregnancy_registration", 1, 1),
        ("postpartum_visit", 1, 1),
        ("maternal_system_management", 1, 1),
        // C: born in 2025, visited on day 5.
        ("newborn_visit", 1, 1),
        ("child_health_management", 1, 1),
        // C at 9 months: due HepB1, HepB2, BCG1, IPV1, IPV2, DTaP1, DTaP2, MPSV-A1;
        // given HepB1, HepB2, BCG1.
        ("vaccination_coverage", 3, 8),
        ("mental_management", 1, 1),
        // Key populations on 31 Dec: A (60+, chronic), B (chronic), C (0–6), E
        // (mental); D's postpartum ended 42 days after delivery. Signed: A.
        ("key_population_signing", 1, 4),
        ("resident_signing", 1, 6),
        // A's visits: station of C1 (yes), hospital (combination only), C2 (neither).
        ("community_visit_rate", 1, 3),
        ("combination_visit_rate", 2, 3),
        // Beds: C1 20 + hospital 100; six residents.
        ("beds_per_1000", 120, 6),
        // Family doctor, specialist, public-health doctor.
        ("physicians_per_1000", 3, 6),
        ("nurses_per_1000", 1, 6),
        ("gps_per_1000", 1, 6),
        // The CDC's one doctor.
        ("public_health_staff_per_1000", 1, 6),
        // Cholera late, two influenza on time.
        ("reporting_timeliness", 2, 3),
        // 90 + 30 minutes over two signals taken up.
        ("signal_response_minutes", 120, 2),
        // Two of the three decided referrals accepted, after 150 and 60 minutes; three
        // of the four went up.
        ("referral_acceptance", 2, 3),
        ("referral_acceptance_minutes", 210, 2),
        ("referral_up_share", 3, 4),
        // Two of three orders that met a recognised result used it.
        ("result_recognition", 2, 3),
        // Thirteen satisfied answers of eighteen, over three surveys.
        ("satisfaction", 13, 18),
    ];
    let ids: Vec<&str> = expect.iter().map(|e| e.0).collect();
    for ind in supported() {
        assert!(
            ids.contains(&ind.id.as_str()),
            "{} has no hand-computed case",
            ind.id
        );
    }
    for &(id, num, den) in expect {
        let pair = got
            .get(&(id.to_string(), DISTRICT, y))
            .copied()
            .unwrap_or((0, 0));
        assert_eq!(pair, (num, den), "{id}");
    }
    let v = |id: &str| {
        let (n, d) = got[&(id.to_string(), DISTRICT, y)];
        indicator(id).unwrap().value(n, d).unwrap()
    };
    assert!((v("beds_per_1000") - 20_000.0).abs() < 1e-9);
    assert!((v("community_visit_rate") - 100.0 / 3.0).abs() < 1e-9);
    assert_eq!(v("signal_response_minutes"), 60.0);
    assert_eq!(v("referral_acceptance_minutes"), 105.0);
    // The hospital's own figures: three referrals received, two decided-and-accepted.
    assert_eq!(
        got[&("referral_acceptance".to_string(), HOSPITAL, y)],
        (2, 3)
    );
    // Satisfaction at the institution visited, per quarter.
    let q = |n| Period::Quarter(2025, n);
    let quarters = totals(&[q(2), q(3)]);
    assert_eq!(
        quarters[&("satisfaction".to_string(), HOSPITAL, q(2))],
        (7, 12)
    );
    assert_eq!(quarters[&("satisfaction".to_string(), C1, q(3))], (6, 6));
    assert!(!quarters.contains_key(&("satisfaction".to_string(), C1, q(2))));
}

#[test]
fn units_streets_centres_and_hospitals_get_their_share() {
    let y = Period::Year(2025);
    let got = totals(&[y]);
    let pair = |id: &str, unit: Id| {
        got.get(&(id.to_string(), unit, y))
            .copied()
            .unwrap_or((0, 0))
    };
    // Street S1: A, C, D; S2: B, E, F.
    assert_eq!(pair("ehr_rate", S1), (3, 3));
    assert_eq!(pair("ehr_rate", S2), (2, 3));
    // Centres: A by contract, C and D by street → C1; B, E, F → C2.
    assert_eq!(pair("ehr_rate", C1), (3, 3));
    assert_eq!(pair("ehr_rate", C2), (2, 3));
    // Beds: C1's 20 in S1 and C1; the hospital's 100 in S2 and the hospital.
    assert_eq!(pair("beds_per_1000", S1), (20, 3));
    assert_eq!(pair("beds_per_1000", S2), (100, 3));
    assert_eq!(pair("beds_per_1000", HOSPITAL), (100, 0));
    // The nurse at C1's station counts for C1 and S1.
    assert_eq!(pair("nurses_per_1000", C1), (1, 3));
    // Reports: the hospital sent the two June ones (one late), C2 the July one.
    assert_eq!(pair("reporting_timeliness", HOSPITAL), (1, 2));
    assert_eq!(pair("reporting_timeliness", C2), (1, 1));
    assert_eq!(pair("reporting_timeliness", S2), (2, 3));
    assert_eq!(pair("signal_response_minutes", S1), (120, 2));
}

#[test]
fn months_and_quarters_read_their_windows() {
    let periods = [
        Period::Month(2025, 3),
        Period::Quarter(2025, 2),
        Period::Month(2025, 6),
        Period::Year(2024),
    ];
    let got = totals(&periods);
    let pair = |id: &str, p: Period| {
        got.get(&(id.to_string(), DISTRICT, p))
            .copied()
            .unwrap_or((0, 0))
    };
    // Year to date to March: A has one hypertension follow-up (not yet 4).
    assert_eq!(
        pair("hypertension_standard", Period::Month(2025, 3)),
        (0, 1)
    );
    // As at the end of March: C (born 03-10) has only HepB1 due (BCG by 3 months,
    // HepB2 from 05-10), and given.
    assert_eq!(pair("vaccination_coverage", Period::Month(2025, 3)), (1, 1));
    // Visits in the period only: A's April visit falls in Q2 (combination, not
    // centre).
    assert_eq!(
        pair("community_visit_rate", Period::Quarter(2025, 2)),
        (0, 1)
    );
    assert_eq!(
        pair("combination_visit_rate", Period::Quarter(2025, 2)),
        (1, 1)
    );
    // June: the two June reports; signals raised in June.
    assert_eq!(pair("reporting_timeliness", Period::Month(2025, 6)), (1, 2));
    assert_eq!(
        pair("signal_response_minutes", Period::Quarter(2025, 2)),
        (120, 2)
    );
    // 2024: D's pregnancy is under way, not delivered: no live birth.
    assert_eq!(
        pair("early_pregnancy_registration", Period::Year(2024)),
        (0, 0)
    );
    // In 2024 C is not born: five residents.
    assert_eq!(pair("ehr_rate", Period::Year(2024)), (4, 5));
}

#[test]
fn the_table_holds_together() {
    let all = indicators();
    assert!(all.len() >= 30);
    // Every domain-rules §7 row is supported.
    for id in [
        "ehr_rate",
        "record_usage",
        "elderly_management",
        "hypertension_standard",
        "bp_control",
        "diabetes_standard",
        "glucose_control",
        "early_pregnancy_registration",
        "postpartum_visit",
        "newborn_visit",
        "child_health_management",
        "vaccination_coverage",
        "mental_management",
        "reporting_timeliness",
        "key_population_signing",
        "community_visit_rate",
    ] {
        assert!(indicator(id).is_some_and(|i| i.supported), "{id}");
    }
    // Every Table 2 row appears, supported or with its reason.
    let table2: Vec<&Indicator> = all
        .iter()
        .filter(|i| i.targets.iter().any(|t| t.source_zh.contains("表2")))
        .collect();
    assert_eq!(
        table2.len(),
        15,
        "{:?}",
        table2.iter().map(|i| &i.id).collect::<Vec<_>>()
    );
    assert_eq!(
        indicator("beds_per_1000")
            .unwrap()
            .target(2025)
            .unwrap()
            .value,
        7.48
    );
    assert!(!indicator("life_expectancy").unwrap().supported);
    // Bad tables are refused with the field named.
    let bad = all_text().replace("rule = \"ehr_rate\"", "rule = \"no_such_rule\"");
    let e = parse(&bad).unwrap_err();
    assert_eq!(e.id, "ehr_rate");
    assert!(e.message.starts_with("rule:"), "{e}");
    let bad = all_text().replace("params = { days = 365 }", "");
    assert_eq!(parse(&bad).unwrap_err().message, "params.days: missing");
    // What pages show names the public source, in the page's language.
    let bad = all_text().replacen(
        "source_en = \"National",
        "source_en = \"domain-rules §7; National",
        1,
    );
    assert!(parse(&bad)
        .unwrap_err()
        .message
        .contains("cite the public source"));
    let bad = all_text().replacen("source_en = \"National", "source_en = \"国家 National", 1);
    assert!(parse(&bad)
        .unwrap_err()
        .message
        .contains("Chinese in the English text"));
}

fn all_text() -> String {
    include_str!("../../../../data/indicators/indicators.toml").to_string()
}

#[test]
fn targets_meet_and_gap_both_ways() {
    let t = Target {
        year: 2025,
        op: Op::AtLeast,
        value: 80.0,
        source_zh: String::new(),
        source_en: String::new(),
    };
    assert!(t.met_by(80.0) && !t.met_by(79.9));
    assert!((t.gap(70.0) - 10.0).abs() < 1e-12);
    let t = Target {
        op: Op::AtMost,
        ..t
    };
    assert!(t.met_by(80.0) && !t.met_by(80.1));
    assert!((t.gap(90.0) - 10.0).abs() < 1e-12);
}
