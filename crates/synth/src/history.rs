//! One resident's history: chronic conditions, 1+1+1 contracts, outpatient and
//! inpatient encounters, programme follow-ups with their observations, and childhood
//! immunizations. Each resident has their own random stream, so residents can be
//! generated in any order (or in parallel) and still give the same rows.
//!
//! Row ids are `resident_id × 10,000 + k`: unique, deterministic, and they keep each
//! resident's rows together (the resident id is the future distribution key).

use chrono::{Datelike, Days, Months, NaiveDate, NaiveDateTime, NaiveTime};
use dhp_core::codes::{immunization_schedule, observation, Span};
use dhp_core::registry::age_years;
use dhp_core::{
    Condition, Contract, ContractStatus, Encounter, EncounterType, Id, Immunization, Observation,
    Programme,
};
use dhp_store::Batch;
use rand::seq::IndexedRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Poisson};

use crate::config::{banded, Model};
use crate::draw::weighted;
use crate::people::Person;
use crate::registry::Registry;

/// Ids per resident per table.
pub(crate) const IDS_PER_RESIDENT: i64 = 10_000;

/// The time span of the history and the calibration date inside it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// Last day of the last full calendar year: the day the calibration figures use.
    pub calibration: NaiveDate,
}

/// Rates taken from the calibration targets (as fractions).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rates {
    pub key_signing: f64,
    pub community_visits: f64,
    pub combination_visits: f64,
    pub hypertension_management: f64,
    pub diabetes_management: f64,
}

/// The three organisations and the doctor of a resident's combination.
#[derive(Debug, Clone, Copy)]
struct Combination {
    doctor: Id,
    district_hospital: Id,
    city_hospital: Id,
}

struct Ids {
    base: Id,
    next: [i64; 5],
}

impl Ids {
    fn take(&mut self, table: usize) -> Id {
        let k = self.next[table];
        assert!(
            k < IDS_PER_RESIDENT,
            "more than {IDS_PER_RESIDENT} rows for one resident"
        );
        self.next[table] += 1;
        self.base + k
    }
}

const CONTRACT: usize = 0;
const ENCOUNTER: usize = 1;
const CONDITION: usize = 2;
const OBSERVATION: usize = 3;
const IMMUNIZATION: usize = 4;

fn uniform_date(rng: &mut ChaCha8Rng, lo: NaiveDate, hi: NaiveDate) -> NaiveDate {
    if hi <= lo {
        return lo;
    }
    lo + Days::new(rng.random_range(0..=(hi - lo).num_days() as u64))
}

fn at_time(rng: &mut ChaCha8Rng, d: NaiveDate, from_hour: u32, to_hour: u32) -> NaiveDateTime {
    let t = NaiveTime::from_hms_opt(
        rng.random_range(from_hour..to_hour),
        rng.random_range(0..60),
        0,
    )
    .expect("valid time");
    d.and_time(t)
}

fn year_part(y: i32, lo: NaiveDate, hi: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
    let a = NaiveDate::from_ymd_opt(y, 1, 1)?.max(lo);
    let b = NaiveDate::from_ymd_opt(y, 12, 31)?.min(hi);
    (a <= b).then_some((a, b))
}

/// Generate the history of one resident into `out`.
pub(crate) fn resident_history(
    p: &Person,
    reg: &Registry,
    model: &Model,
    rates: &Rates,
    w: &Window,
    rng: &mut ChaCha8Rng,
    out: &mut Batch,
) {
    let r = &p.resident;
    let birth = r.birth_date;
    let k = w.calibration;
    let mut ids = Ids {
        base: r.id * IDS_PER_RESIDENT,
        next: [0; 5],
    };
    let centre = &reg.centres[p.centre];
    let age_end = age_years(birth, w.end);

    // Chronic conditions, with onset somewhere in adult life up to now.
    let mut managed: Vec<(Programme, NaiveDate, f64)> = Vec::new();
    let mut key_condition_by_k = false;
    let mut diagnose =
        |rng: &mut ChaCha8Rng, icd10: &str, from_age: u32, out: &mut Batch| -> NaiveDate {
            let lo_age = from_age.max(age_end.saturating_sub(25));
            let onset_age = rng.random_range(lo_age..=age_end.max(lo_age));
            let onset = (birth + Months::new(12 * onset_age) + Days::new(rng.random_range(0..365)))
                .min(w.end)
                .max(birth);
            out.conditions.push(Condition {
                id: ids.take(CONDITION),
                resident_id: r.id,
                icd10: icd10.to_string(),
                onset,
                org_id: centre.org_id,
            });
            onset
        };
    if age_end >= 18 && rng.random_bool(banded(&model.hypertension, age_end)) {
        let onset = diagnose(rng, "I10", 18, out);
        managed.push((Programme::Hypertension, onset, rng.random()));
        key_condition_by_k |= onset <= k;
    }
    if age_end >= 25 && rng.random_bool(banded(&model.diabetes, age_end)) {
        let onset = diagnose(rng, "E11.9", 25, out);
        managed.push((Programme::Diabetes, onset, rng.random()));
        key_condition_by_k |= onset <= k;
    }
    let mut mental_from = None;
    if age_end >= 18 && rng.random_bool(model.severe_mental_disorder) {
        let code = ["F20.9", "F31.9", "F25.9", "F22.0"][rng.random_range(0..4)];
        let onset = diagnose(rng, code, 18, out);
        key_condition_by_k |= onset <= k;
        mental_from = Some(onset);
    }
    for (code, from_age, prevalence) in &model.other_conditions {
        if age_end >= *from_age && rng.random_bool(*prevalence) {
            diagnose(rng, code, *from_age, out);
        }
    }

    // Key population on the calibration date (domain-rules §2): 60+, 0–6, or a
    // managed chronic condition / severe mental disorder.
    let born_by_k = birth <= k;
    let key = born_by_k
        && (birth <= k - Months::new(12 * 60)
            || birth > k - Months::new(12 * 7)
            || key_condition_by_k);

    // The 1+1+1 combination the resident signs (or would sign).
    let zone = p.zone;
    let dh_weights: Vec<f64> = reg
        .district_hospitals
        .iter()
        .map(|h| h.combination[zone])
        .collect();
    let ch_weights: Vec<f64> = reg.city_hospitals.iter().map(|h| h.city_weight).collect();
    let combo = Combination {
        doctor: *centre
            .doctors
            .choose(rng)
            .expect("every centre has a family doctor"),
        district_hospital: reg.district_hospitals[weighted(rng, &dh_weights)].org_id,
        city_hospital: reg.city_hospitals[weighted(rng, &ch_weights)].org_id,
    };

    // Contract chains: (first start, number of yearly contracts).
    let signing_start =
        NaiveDate::from_ymd_opt(model.signing_start_year, 1, 1).expect("valid year");
    let earliest = signing_start.max(birth);
    let mut chains: Vec<(NaiveDate, u32)> = Vec::new();
    let signed_at_k = born_by_k
        && rng.random_bool(if key {
            rates.key_signing
        } else {
            model.non_key_signing
        });
    let renewals = |rng: &mut ChaCha8Rng, s0: NaiveDate, mut n: u32| -> u32 {
        while s0 + Months::new(12 * n) <= w.end && rng.random_bool(model.renewal) {
            n += 1;
        }
        n
    };
    if signed_at_k {
        let s0 = uniform_date(rng, earliest.min(k), k);
        let covering = age_years(s0, k) + 1;
        let n = renewals(rng, s0, covering);
        chains.push((s0, n));
    } else {
        if born_by_k && rng.random_bool(0.15) {
            let s0 = uniform_date(rng, earliest.min(k), k);
            let years = rng.random_range(1..=3u32);
            // Keep only contracts that ended before the calibration date.
            let n = (0..years)
                .take_while(|i| s0 + Months::new(12 * (i + 1)) - Days::new(1) < k)
                .count() as u32;
            if n > 0 {
                chains.push((s0, n));
            }
        }
        let later = if key || !born_by_k { 0.3 } else { 0.02 };
        let after = (k + Days::new(1)).max(birth);
        if after <= w.end && rng.random_bool(later) {
            let s0 = uniform_date(rng, after, w.end);
            let n = renewals(rng, s0, 1);
            chains.push((s0, n));
        }
    }
    for (s0, n) in &chains {
        for i in 0..*n {
            let start = *s0 + Months::new(12 * i);
            let end = *s0 + Months::new(12 * (i + 1)) - Days::new(1);
            out.contracts.push(Contract {
                id: ids.take(CONTRACT),
                resident_id: r.id,
                centre_org_id: centre.org_id,
                doctor_id: combo.doctor,
                district_hospital_id: combo.district_hospital,
                city_hospital_id: combo.city_hospital,
                start,
                end,
                status: if end < w.end {
                    ContractStatus::Expired
                } else {
                    ContractStatus::Active
                },
            });
        }
    }
    let signed_on = |d: NaiveDate| {
        chains
            .iter()
            .any(|(s0, n)| *s0 <= d && d < *s0 + Months::new(12 * n))
            || (signed_at_k && d.year() == k.year())
    };

    let lo = w.start.max(birth);
    if lo > w.end {
        return;
    }
    let station_or_centre = |rng: &mut ChaCha8Rng| -> Id {
        if !centre.stations.is_empty() && rng.random_bool(model.station_share) {
            *centre.stations.choose(rng).expect("non-empty")
        } else {
            centre.org_id
        }
    };
    let specialist = |rng: &mut ChaCha8Rng, org: Id| -> Option<Id> {
        reg.district_hospitals
            .iter()
            .chain(&reg.city_hospitals)
            .find(|h| h.org_id == org)
            .and_then(|h| h.specialists.choose(rng).copied())
    };

    for y in lo.year()..=w.end.year() {
        let Some((a, b)) = year_part(y, lo, w.end) else {
            continue;
        };
        let frac = ((b - a).num_days() + 1) as f64 / 365.0;
        let age = age_years(birth, a);
        let active_chronic = managed.iter().filter(|(_, onset, _)| *onset <= b).count() as f64;

        // Outpatient visits.
        let lambda = (banded(&model.outpatient_visits, age)
            + model.chronic_extra_visits * active_chronic)
            * frac;
        let visits = if lambda > 0.0 {
            Poisson::new(lambda)
                .map(|d| d.sample(rng) as u32)
                .unwrap_or(0)
        } else {
            0
        };
        for _ in 0..visits {
            let d = uniform_date(rng, a, b);
            let (org, doctor) = if signed_on(d) {
                let u: f64 = rng.random();
                if u < rates.community_visits {
                    (station_or_centre(rng), Some(combo.doctor))
                } else if u < rates.community_visits
                    + (rates.combination_visits - rates.community_visits) * 0.7
                {
                    (combo.district_hospital, None)
                } else if u < rates.combination_visits {
                    (combo.city_hospital, None)
                } else {
                    let others: Vec<Id> = reg
                        .district_hospitals
                        .iter()
                        .chain(&reg.city_hospitals)
                        .map(|h| h.org_id)
                        .filter(|id| *id != combo.district_hospital && *id != combo.city_hospital)
                        .collect();
                    (*others.choose(rng).expect("other hospitals exist"), None)
                }
            } else {
                let (c, dh, _) = model.unsigned_visit_share;
                let u: f64 = rng.random::<f64>() * (c + dh + model.unsigned_visit_share.2);
                if u < c {
                    (station_or_centre(rng), centre.doctors.choose(rng).copied())
                } else if u < c + dh {
                    (
                        reg.district_hospitals[weighted(rng, &dh_weights)].org_id,
                        None,
                    )
                } else {
                    (reg.city_hospitals[weighted(rng, &ch_weights)].org_id, None)
                }
            };
            let doctor = doctor.or_else(|| specialist(rng, org));
            let start = at_time(rng, d, 8, 17);
            out.encounters.push(Encounter {
                id: ids.take(ENCOUNTER),
                resident_id: r.id,
                kind: EncounterType::Outpatient,
                programme: None,
                org_id: org,
                practitioner_id: doctor,
                start,
            });
        }

        // Inpatient stays.
        let p_in = if age >= 65 {
            model.inpatient_rate.1
        } else {
            model.inpatient_rate.0
        } * frac;
        if rng.random_bool(p_in.min(1.0)) {
            let org = reg.district_hospitals[weighted(rng, &dh_weights)].org_id;
            let day = uniform_date(rng, a, b);
            let start = at_time(rng, day, 8, 20);
            let doctor = specialist(rng, org);
            out.encounters.push(Encounter {
                id: ids.take(ENCOUNTER),
                resident_id: r.id,
                kind: EncounterType::Inpatient,
                programme: None,
                org_id: org,
                practitioner_id: doctor,
                start,
            });
        }

        // Programme follow-ups of managed chronic patients, with their readings.
        for (programme, onset, propensity) in &managed {
            let rate = match programme {
                Programme::Hypertension => rates.hypertension_management,
                _ => rates.diabetes_management,
            };
            let Some((fa, fb)) = year_part(y, a.max(*onset), b) else {
                continue;
            };
            if *propensity >= rate {
                continue;
            }
            let n = 1 + weighted(rng, &model.followups_per_year);
            let mut dates: Vec<NaiveDate> = (0..n).map(|_| uniform_date(rng, fa, fb)).collect();
            dates.sort();
            for d in dates {
                let start = at_time(rng, d, 8, 12);
                let doctor = if signed_on(d) {
                    combo.doctor
                } else {
                    *centre.doctors.choose(rng).expect("doctor")
                };
                let encounter_id = ids.take(ENCOUNTER);
                out.encounters.push(Encounter {
                    id: encounter_id,
                    resident_id: r.id,
                    kind: EncounterType::FollowUp,
                    programme: Some(*programme),
                    org_id: centre.org_id,
                    practitioner_id: Some(doctor),
                    start,
                });
                let mut reading =
                    |key: &str, mean: f64, sd: f64, decimals: i32, rng: &mut ChaCha8Rng| {
                        let code = observation(key).expect("code in data/observation-codes.toml");
                        let x = Normal::new(mean, sd).expect("valid normal").sample(rng);
                        let scale = 10f64.powi(decimals);
                        let value = ((x * scale).round() / scale).clamp(code.min, code.max);
                        out.observations.push(Observation {
                            id: ids.take(OBSERVATION),
                            resident_id: r.id,
                            encounter_id: Some(encounter_id),
                            code: code.code.clone(),
                            value,
                            unit: code.unit.clone(),
                            effective: start + chrono::Duration::minutes(5),
                        });
                    };
                match programme {
                    Programme::Hypertension => {
                        reading("sbp", 136.0, 15.0, 0, rng);
                        reading("dbp", 84.0, 10.0, 0, rng);
                    }
                    _ => {
                        reading("fasting_glucose", 7.1, 1.6, 1, rng);
                        if rng.random_bool(0.3) {
                            reading("hba1c", 7.0, 1.1, 1, rng);
                        }
                    }
                }
            }
        }
    }

    // Basic public-health programmes: elderly checks, pregnancies, children's visits,
    // severe-mental-disorder follow-ups.
    {
        let mut take = |table: usize| ids.take(table);
        let mut sink = crate::programmes::Sink {
            resident_id: r.id,
            centre: centre.org_id,
            doctor: combo.doctor,
            take: &mut take,
            out,
        };
        crate::programmes::history(
            &model.programmes,
            birth,
            r.sex,
            mental_from,
            lo,
            w.end,
            rng,
            &mut sink,
        );
    }

    // Childhood immunizations on the national schedule, with delays and gaps, for
    // everyone still of catch-up age (under 18).
    if age_end < 18 {
        immunizations(p, reg, model, w, rng, &mut ids, out);
    }
}

fn immunizations(
    p: &Person,
    reg: &Registry,
    model: &Model,
    w: &Window,
    rng: &mut ChaCha8Rng,
    ids: &mut Ids,
    out: &mut Batch,
) {
    let birth = p.resident.birth_date;
    let centre = reg.centres[p.centre].org_id;
    let maternity = reg
        .district_hospitals
        .iter()
        .find(|h| h.maternity)
        .map(|h| h.org_id)
        .unwrap_or(reg.district_hospitals[0].org_id);
    let delay_weights: Vec<f64> = model.dose_delay.iter().map(|(p, _)| *p).collect();
    let mut live_injectable_days: Vec<NaiveDate> = Vec::new();
    for v in &immunization_schedule().vaccines {
        let limit = v.not_at_or_after.map(|s| s.after(birth));
        let mut previous: Option<NaiveDate> = None;
        for dose in &v.doses {
            let due = dose.age.after(birth);
            if !rng.random_bool(model.dose_uptake) {
                if rng.random_bool(0.5) {
                    break;
                }
                continue;
            }
            let at_birth = dose.age == Span::Days(0);
            let delay = if at_birth {
                if v.code == "HepB" {
                    0
                } else {
                    rng.random_range(0..3)
                }
            } else {
                let bucket = weighted(rng, &delay_weights);
                let lo = if bucket == 0 {
                    0
                } else {
                    model.dose_delay[bucket - 1].1 + 1
                };
                rng.random_range(lo..=model.dose_delay[bucket].1)
            };
            let mut date = due + Days::new(delay.into());
            if let (Some(interval), Some(prev)) = (dose.min_interval, previous) {
                date = date.max(interval.after(prev));
            }
            // Two injectable live vaccines not given the same day are ≥ 28 days apart.
            if v.live && v.injectable {
                while let Some(clash) = live_injectable_days
                    .iter()
                    .find(|d| **d != date && (date - **d).num_days().abs() < 28)
                {
                    date = date.max(*clash + Days::new(28));
                }
            }
            if limit.is_some_and(|l| date >= l) || date > w.end {
                break;
            }
            if v.live && v.injectable {
                live_injectable_days.push(date);
            }
            previous = Some(date);
            out.immunizations.push(Immunization {
                id: ids.take(IMMUNIZATION),
                resident_id: p.resident.id,
                vaccine: v.code.clone(),
                dose_number: dose.number,
                date,
                org_id: if at_birth { maternity } else { centre },
            });
        }
    }
}
