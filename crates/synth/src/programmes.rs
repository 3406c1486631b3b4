//! Programme histories of one resident (domain-rules §4 schedules, with realistic
//! non-compliance from `[model.programmes]`): elderly yearly checks with self-care
//! scores, pregnancies with prenatal visits, risk conditions, deliveries and postpartum
//! visits, children's visits and haemoglobin checks, and severe-mental-disorder
//! follow-ups with danger levels. Windows come from the same rule table the programme
//! engine reads, so a visit made "on time" here is on time there.

use chrono::{Datelike, Days, Months, NaiveDate};
use dhp_core::codes::observation;
use dhp_core::programmes::programme_rules;
use dhp_core::registry::age_years;
use dhp_core::{Condition, Encounter, EncounterType, Id, Observation, Programme, Sex};
use dhp_store::Batch;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::config::ProgrammeModel;
use crate::draw::weighted;

/// Where the resident's programme rows go.
pub(crate) struct Sink<'a> {
    pub resident_id: Id,
    pub centre: Id,
    pub doctor: Id,
    pub take: &'a mut dyn FnMut(usize) -> Id,
    pub out: &'a mut Batch,
}

pub(crate) const ENCOUNTER: usize = 1;
pub(crate) const CONDITION: usize = 2;
pub(crate) const OBSERVATION: usize = 3;

impl Sink<'_> {
    fn visit(
        &mut self,
        rng: &mut ChaCha8Rng,
        programme: Programme,
        day: NaiveDate,
        kind: EncounterType,
    ) -> (Id, chrono::NaiveDateTime) {
        let id = (self.take)(ENCOUNTER);
        let start = day
            .and_hms_opt(rng.random_range(8..12), rng.random_range(0..60), 0)
            .expect("valid time");
        self.out.encounters.push(Encounter {
            id,
            resident_id: self.resident_id,
            kind,
            programme: Some(programme),
            org_id: self.centre,
            practitioner_id: Some(self.doctor),
            start,
        });
        (id, start)
    }

    fn observe(&mut self, key: &str, value: f64, encounter: Id, at: chrono::NaiveDateTime) {
        let code = observation(key).expect("code in data/observation-codes.toml");
        let id = (self.take)(OBSERVATION);
        self.out.observations.push(Observation {
            id,
            resident_id: self.resident_id,
            encounter_id: Some(encounter),
            code: code.code.clone(),
            value: value.clamp(code.min, code.max),
            unit: code.unit.clone(),
            effective: at + chrono::Duration::minutes(5),
        });
    }

    fn diagnose(&mut self, code: &str, onset: NaiveDate) {
        let id = (self.take)(CONDITION);
        self.out.conditions.push(Condition {
            id,
            resident_id: self.resident_id,
            icd10: code.to_string(),
            onset,
            org_id: self.centre,
        });
    }
}

fn day_in(rng: &mut ChaCha8Rng, from: NaiveDate, to: NaiveDate) -> NaiveDate {
    if to <= from {
        return from;
    }
    from + Days::new(rng.random_range(0..=(to - from).num_days() as u64))
}

fn normal(rng: &mut ChaCha8Rng, mean: f64, sd: f64) -> f64 {
    Normal::new(mean, sd).expect("valid normal").sample(rng)
}

/// Every programme history of a resident born `birth` over `[start, end]`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn history(
    m: &ProgrammeModel,
    birth: NaiveDate,
    sex: Sex,
    mental_from: Option<NaiveDate>,
    start: NaiveDate,
    end: NaiveDate,
    rng: &mut ChaCha8Rng,
    sink: &mut Sink<'_>,
) {
    let rules = programme_rules();
    // Elderly: a yearly health management from 65, with a self-care score.
    let from65 = birth + Months::new(12 * rules.elderly.min_age);
    let disabled = rng.random_bool(m.disabled_elderly);
    for y in start.year().max(from65.year())..=end.year() {
        let lo = NaiveDate::from_ymd_opt(y, 1, 1)
            .expect("valid")
            .max(from65)
            .max(start);
        let hi = NaiveDate::from_ymd_opt(y, 12, 31).expect("valid").min(end);
        if lo > hi || !rng.random_bool(m.elderly_check) {
            continue;
        }
        let day = day_in(rng, lo, hi);
        let (e, at) = sink.visit(rng, Programme::Elderly, day, EncounterType::FollowUp);
        let band = weighted(rng, &m.self_care);
        let score = match band {
            0 => rng.random_range(0..=3),
            1 => rng.random_range(4..=8),
            2 => rng.random_range(9..=18),
            _ => rng.random_range(19..=30),
        };
        sink.observe("self_care_score", f64::from(score), e, at);
        sink.observe("sbp", normal(rng, 138.0, 16.0).round(), e, at);
        sink.observe("dbp", normal(rng, 82.0, 10.0).round(), e, at);
        if disabled {
            sink.observe("needs_level", f64::from(rng.random_range(2..=6)), e, at);
        }
    }

    // Children 0–6: each scheduled visit, and each haemoglobin check, made in its
    // window with the model's uptake.
    let child_end = rules.child.until_age.after(birth);
    if child_end > start && birth <= end {
        let discharge = rules.maternal.hospital_stay.after(birth);
        let mut windows = vec![(
            birth + Days::new(1),
            rules.child.newborn_visit_within.after(discharge),
            EncounterType::HomeVisit,
        )];
        windows.extend(rules.child.visits.iter().map(|v| {
            (
                v.from.after(birth),
                v.to.after(birth),
                EncounterType::FollowUp,
            )
        }));
        for (from, to, kind) in windows {
            if from < start || from > end || !rng.random_bool(m.child_visit_uptake) {
                continue;
            }
            let day = day_in(rng, from, to.min(end));
            let (e, at) = sink.visit(rng, Programme::Child, day, kind);
            sink.observe(
                "weight",
                (3.3 + 0.5 * f64::from(dhp_core::registry::age_months(birth, day)).sqrt() * 2.2)
                    .round(),
                e,
                at,
            );
        }
        for w in &rules.child.haemoglobin {
            let (from, to) = (w.from.after(birth), w.to.after(birth));
            if from < start || from > end || !rng.random_bool(m.child_hb_uptake) {
                continue;
            }
            let day = day_in(rng, from, to.min(end));
            let (e, at) = sink.visit(rng, Programme::Child, day, EncounterType::FollowUp);
            sink.observe("haemoglobin", normal(rng, 120.0, 10.0).round(), e, at);
        }
    }

    // Pregnancies of women 20–39, with visits by gestational week, risk conditions,
    // delivery and postpartum care.
    if sex == Sex::Female {
        let mut y_from = start.year();
        let mut next_free = start;
        while y_from <= end.year() {
            let y = y_from;
            y_from += 1;
            let age = age_years(birth, NaiveDate::from_ymd_opt(y, 7, 1).expect("valid"));
            if !(20..=39).contains(&age) || !rng.random_bool(m.pregnancy_rate) {
                continue;
            }
            let lo = NaiveDate::from_ymd_opt(y, 1, 1)
                .expect("valid")
                .max(next_free);
            let hi = NaiveDate::from_ymd_opt(y, 12, 31).expect("valid").min(end);
            if lo > hi {
                continue;
            }
            let lmp = day_in(rng, lo, hi);
            pregnancy(m, lmp, end, rng, sink);
            // No new pregnancy within 18 months of this one.
            next_free = lmp + Months::new(18);
        }
    }

    // Severe mental disorder follow-ups with danger levels.
    if let Some(onset) = mental_from {
        let from = onset.max(start);
        for y in from.year()..=end.year() {
            let lo = NaiveDate::from_ymd_opt(y, 1, 1).expect("valid").max(from);
            let hi = NaiveDate::from_ymd_opt(y, 12, 31).expect("valid").min(end);
            if lo > hi {
                continue;
            }
            let n = 1 + weighted(rng, &m.mental_followups_per_year);
            let mut days: Vec<NaiveDate> = (0..n).map(|_| day_in(rng, lo, hi)).collect();
            days.sort();
            for d in days {
                let (e, at) = sink.visit(rng, Programme::Mental, d, EncounterType::HomeVisit);
                sink.observe("danger_level", weighted(rng, &m.danger_level) as f64, e, at);
            }
        }
    }
}

fn pregnancy(
    m: &ProgrammeModel,
    lmp: NaiveDate,
    end: NaiveDate,
    rng: &mut ChaCha8Rng,
    sink: &mut Sink<'_>,
) {
    let rules = &programme_rules().maternal;
    sink.diagnose("Z34.9", lmp);
    let week = |w: u32, d: u64| lmp + Days::new(u64::from(w) * 7 + d);
    for (i, w) in rules.prenatal.iter().enumerate() {
        let (from, to) = (week(w.from_week, 0), week(w.to_week, 6));
        let p = if i == 0 {
            m.first_visit_on_time
        } else {
            m.prenatal_uptake
        };
        if !rng.random_bool(p) {
            continue;
        }
        // The first exam happens from week 6; a late booking falls after the window.
        let (from, to) = if i == 0 { (week(6, 0), to) } else { (from, to) };
        let day = day_in(rng, from, to);
        if day > end {
            break;
        }
        let (e, at) = sink.visit(rng, Programme::Maternal, day, EncounterType::FollowUp);
        sink.observe(
            "gestational_age",
            ((day - lmp).num_days() / 7) as f64,
            e,
            at,
        );
        if i == 0 {
            let hb = if rng.random_bool(m.anaemia) {
                normal(rng, 100.0, 7.0)
            } else {
                normal(rng, 125.0, 8.0)
            };
            sink.observe("haemoglobin", hb.round(), e, at);
            sink.observe("platelets", normal(rng, 220.0, 50.0).round(), e, at);
            sink.observe("bmi", (normal(rng, 22.0, 3.0) * 10.0).round() / 10.0, e, at);
            for (code, p) in &m.pregnancy_risks {
                if rng.random_bool(*p) {
                    sink.diagnose(code, day);
                }
            }
        }
    }
    let delivered = week(rng.random_range(37..=40), rng.random_range(0..7));
    if delivered > end {
        return;
    }
    sink.diagnose("O80", delivered);
    let discharge = rules.hospital_stay.after(delivered);
    for (from, to) in [
        (discharge, rules.postpartum_visit_within.after(discharge)),
        (
            rules.check_42_at.after(delivered),
            rules
                .check_42_grace
                .after(rules.check_42_at.after(delivered)),
        ),
    ] {
        if !rng.random_bool(m.postpartum_uptake) {
            continue;
        }
        let day = day_in(rng, from, to);
        if day <= end {
            sink.visit(rng, Programme::Maternal, day, EncounterType::HomeVisit);
        }
    }
}
