//! Counting rules: what one record adds to each indicator's numerator and denominator
//! in a period. Each rule cites its domain-rules §7 row (or plan clause); parameters
//! come from the definition table.

use chrono::{Days, NaiveDate, NaiveDateTime};

use super::{Basis, Indicator, Period, Units, Window};
use crate::codes::immunization_schedule;
use crate::programmes::chronic::{self, Control};
use crate::programmes::{key_populations, programme_rules, ResidentRecord};
use crate::record::{Condition, EncounterType, Programme};
use crate::registry::{age_years, Id};
use crate::surveillance::{disease, timeliness, CaseReport, Signal};

/// What records add to indicator `indicator` (its index in [`super::supported`]) for
/// org unit `unit` in `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tally {
    pub indicator: u16,
    pub period: Period,
    pub unit: Id,
    pub num: i64,
    pub den: i64,
}

/// Parameters a rule reads, or `None` for a rule unknown under `basis`.
pub(crate) fn parameters(rule: &str, basis: Basis) -> Option<&'static [&'static str]> {
    Some(match (basis, rule) {
        (Basis::Resident, "ehr_rate" | "newborn_visit" | "child_management" | "vaccination")
        | (Basis::Resident, "key_population_signing" | "resident_signing")
        | (Basis::Resident, "community_visits" | "combination_visits" | "chronic_control") => &[],
        (Basis::Resident, "record_usage") => &["days"],
        (Basis::Resident, "elderly_management" | "chronic_management") => &["min_age"],
        (Basis::Resident, "chronic_standard" | "mental_management") => &["min_followups"],
        (Basis::Resident, "glucose_control") => &["below"],
        (Basis::Resident, "early_registration") => &["before_week"],
        (Basis::Resident, "postpartum_visit") => &["within_days"],
        (Basis::Resident, "maternal_system") => {
            &["before_week", "prenatal", "postpartum", "postpartum_days"]
        }
        (Basis::Resources, "beds" | "physicians" | "nurses")
        | (Basis::Resources, "general_practitioners" | "public_health_staff") => &[],
        (Basis::CaseReports, "reporting_timeliness") | (Basis::Signals, "signal_response") => &[],
        (Basis::Referrals, "referral_acceptance" | "referral_acceptance_minutes")
        | (Basis::Referrals, "referral_up_share")
        | (Basis::Orders, "recognition")
        | (Basis::Surveys, "satisfaction") => &[],
        _ => return None,
    })
}

pub(crate) fn needs_programme(rule: &str) -> bool {
    matches!(
        rule,
        "chronic_management" | "chronic_standard" | "chronic_control" | "glucose_control"
    )
}

pub(crate) fn chronic_programme(ind: &Indicator) -> Option<Programme> {
    match ind.programme.as_deref() {
        Some("hypertension") => Some(Programme::Hypertension),
        Some("diabetes") => Some(Programme::Diabetes),
        _ => None,
    }
}

/// Dates of one resident's record, sorted once so each period is a few look-ups.
struct Facts<'a> {
    rec: &'a ResidentRecord,
    birth: NaiveDate,
    /// Every dated entry of the record (encounters, conditions, observations,
    /// immunizations, contract starts).
    activity: Vec<NaiveDate>,
    /// Programme encounters by programme, date-sorted.
    by_programme: [Vec<(NaiveDateTime, usize)>; 7],
    outpatient: Vec<(NaiveDate, Id)>,
    deliveries: Vec<(NaiveDate, Option<NaiveDate>)>,
}

fn programme_slot(p: Programme) -> usize {
    Programme::ALL.iter().position(|x| *x == p).expect("listed")
}

impl<'a> Facts<'a> {
    fn new(rec: &'a ResidentRecord) -> Self {
        let mut activity: Vec<NaiveDate> = Vec::new();
        activity.extend(rec.encounters.iter().map(|e| e.start.date()));
        activity.extend(rec.conditions.iter().map(|c| c.onset));
        activity.extend(rec.observations.iter().map(|o| o.effective.date()));
        activity.extend(rec.immunizations.iter().map(|i| i.date));
        activity.extend(rec.contracts.iter().map(|c| c.start));
        activity.sort_unstable();
        let mut by_programme: [Vec<(NaiveDateTime, usize)>; 7] = Default::default();
        let mut outpatient = Vec::new();
        for (i, e) in rec.encounters.iter().enumerate() {
            if let Some(p) = e.programme {
                by_programme[programme_slot(p)].push((e.start, i));
            }
            if e.kind == EncounterType::Outpatient {
                outpatient.push((e.start.date(), e.org_id));
            }
        }
        for v in &mut by_programme {
            v.sort_unstable_by_key(|(t, i)| (*t, rec.encounters[*i].id));
        }
        outpatient.sort_unstable();
        // Each delivery (活产) with the start of its pregnancy: the latest pregnancy
        // registration on or before it.
        let m = &programme_rules().maternal;
        let is = |code: &str, list: &[String]| list.iter().any(|p| code.starts_with(p.as_str()));
        let mut deliveries: Vec<(NaiveDate, Option<NaiveDate>)> = rec
            .conditions
            .iter()
            .filter(|c| is(&c.icd10, &m.delivery_codes))
            .map(|d| {
                let lmp = rec
                    .conditions
                    .iter()
                    .filter(|c| c.onset <= d.onset && is(&c.icd10, &m.pregnancy_codes))
                    .map(|c| c.onset)
                    .max();
                (d.onset, lmp)
            })
            .collect();
        deliveries.sort_unstable();
        deliveries.dedup();
        Facts {
            rec,
            birth: rec.resident.birth_date,
            activity,
            by_programme,
            outpatient,
            deliveries,
        }
    }

    /// Programme encounters dated in `[from, to]`.
    fn followups(&self, p: Programme, from: NaiveDate, to: NaiveDate) -> &[(NaiveDateTime, usize)] {
        let v = &self.by_programme[programme_slot(p)];
        let lo = v.partition_point(|(t, _)| t.date() < from);
        let hi = v.partition_point(|(t, _)| t.date() <= to);
        &v[lo..hi.max(lo)]
    }

    fn any_activity(&self, from: NaiveDate, to: NaiveDate) -> bool {
        let lo = self.activity.partition_point(|d| *d < from);
        self.activity.get(lo).is_some_and(|d| *d <= to)
    }

    fn has_record_by(&self, on: NaiveDate) -> bool {
        self.activity.first().is_some_and(|d| *d <= on)
    }

    fn age(&self, on: NaiveDate) -> u32 {
        age_years(self.birth, on)
    }

    fn onset(&self, p: Programme, on: NaiveDate) -> Option<NaiveDate> {
        match p {
            Programme::Hypertension | Programme::Diabetes => chronic::onset(self.rec, p, on),
            Programme::Mental => self
                .rec
                .conditions
                .iter()
                .filter(|c| c.onset <= on && Condition::is_severe_mental_disorder(&c.icd10))
                .map(|c| c.onset)
                .min(),
            _ => None,
        }
    }

    fn is_child(&self, on: NaiveDate) -> bool {
        self.birth <= on && on < programme_rules().child.until_age.after(self.birth)
    }
}

fn flag(b: bool) -> i64 {
    i64::from(b)
}

/// (numerator, denominator) of one resident-basis indicator for `[from, to]`.
fn count(
    ind: &Indicator,
    f: &Facts<'_>,
    units: &Units,
    from: NaiveDate,
    to: NaiveDate,
) -> (i64, i64) {
    let rec = f.rec;
    let rule = ind.rule.as_deref().unwrap_or_default();
    let born = f.birth <= to;
    if ind.basis == Some(Basis::Resources) {
        // Beds and staff per 1,000: each resident adds to the population (常住人口).
        return (0, flag(born));
    }
    match rule {
        // §7 e-health-record rate: residents with a record / resident population.
        "ehr_rate" => (flag(born && f.has_record_by(to)), flag(born)),
        // §7 record usage: records with activity in the last year / records.
        "record_usage" => {
            let has = born && f.has_record_by(to);
            let since = to - Days::new(ind.param("days") as u64 - 1);
            (flag(has && f.any_activity(since, to)), flag(has))
        }
        // §7 elderly management: 65+ managed in the year / residents 65+.
        "elderly_management" => {
            let den = born && f.age(to) >= ind.param("min_age") as u32;
            let managed = !f.followups(Programme::Elderly, from, to).is_empty();
            (flag(den && managed), flag(den))
        }
        // 表1 第10项: diagnosed patients of the age band followed up in the year.
        "chronic_management" => {
            let p = chronic_programme(ind).expect("checked at load");
            let den = born && f.age(to) >= ind.param("min_age") as u32 && f.onset(p, to).is_some();
            (flag(den && !f.followups(p, from, to).is_empty()), flag(den))
        }
        // §7 standard management: ≥ 4 follow-ups / patients under management in the year.
        "chronic_standard" | "chronic_control" | "glucose_control" => {
            let p = chronic_programme(ind).expect("checked at load");
            if f.onset(p, to).is_none() {
                return (0, 0);
            }
            let fu = f.followups(p, from, to);
            let Some(&(last_at, last)) = fu.last() else {
                return (0, 0);
            };
            let num = match rule {
                "chronic_standard" => fu.len() as i64 >= ind.param("min_followups") as i64,
                // §7 BP control: the last visit of the year at target (§4 < 140/90,
                // 65+ < 150/90).
                "chronic_control" => {
                    let e = &rec.encounters[last];
                    let rules = &programme_rules().hypertension;
                    let r = chronic::readings(rec, e);
                    chronic::classify(p, rules, f.age(last_at.date()), &r) == Control::Controlled
                }
                // §7 glucose control: last fasting glucose of the year < 7.0.
                _ => rec
                    .latest("fasting_glucose", from, to)
                    .is_some_and(|(_, v)| v < ind.param("below")),
            };
            (flag(num), 1)
        }
        // §7 maternal rows: per live birth (a delivery) in the year.
        "early_registration" | "postpartum_visit" | "maternal_system" => {
            let m = &programme_rules().maternal;
            let (mut num, mut den) = (0, 0);
            for &(delivered, lmp) in f.deliveries.iter().filter(|(d, _)| from <= *d && *d <= to) {
                den += 1;
                let early = || {
                    lmp.is_some_and(|lmp| {
                        let before = lmp + Days::new(7 * ind.param("before_week") as u64);
                        f.followups(Programme::Maternal, lmp, delivered)
                            .iter()
                            .any(|(t, _)| t.date() < before)
                    })
                };
                let ok = match rule {
                    "early_registration" => early(),
                    "postpartum_visit" => {
                        let discharge = m.hospital_stay.after(delivered);
                        let until = discharge + Days::new(ind.param("within_days") as u64);
                        !f.followups(Programme::Maternal, discharge, until)
                            .is_empty()
                    }
                    _ => {
                        let prenatal = lmp.map_or(0, |lmp| {
                            f.followups(Programme::Maternal, lmp, delivered - Days::new(1))
                                .len()
                        });
                        let after = f
                            .followups(
                                Programme::Maternal,
                                delivered + Days::new(1),
                                delivered + Days::new(ind.param("postpartum_days") as u64),
                            )
                            .len();
                        early()
                            && prenatal as f64 >= ind.param("prenatal")
                            && after as f64 >= ind.param("postpartum")
                    }
                };
                num += flag(ok);
            }
            (num, den)
        }
        // §7 newborn visit / §4: a visit within 7 days of discharge, per live birth.
        "newborn_visit" => {
            let den = from <= f.birth && f.birth <= to;
            let c = &programme_rules();
            let discharge = c.maternal.hospital_stay.after(f.birth);
            let until = c.child.newborn_visit_within.after(discharge);
            (
                flag(den && !f.followups(Programme::Child, f.birth, until).is_empty()),
                flag(den),
            )
        }
        // §7 child health management: children 0–6 with ≥ 1 visit / children 0–6.
        "child_management" => {
            let den = f.is_child(to);
            (
                flag(den && !f.followups(Programme::Child, from, to).is_empty()),
                flag(den),
            )
        }
        // §7 vaccination coverage: doses given / doses due (§3 schedule).
        "vaccination" => {
            if !f.is_child(to) {
                return (0, 0);
            }
            let grace = programme_rules().immunization.overdue_grace;
            let (mut num, mut den) = (0, 0);
            for v in &immunization_schedule().vaccines {
                for d in v.doses.iter().filter(|d| d.skip_if.is_none()) {
                    let due = match d.by {
                        Some(by) => by.after(f.birth),
                        None => grace.after(d.age.after(f.birth)),
                    };
                    if due > to {
                        continue;
                    }
                    den += 1;
                    num +=
                        flag(rec.immunizations.iter().any(|i| {
                            i.vaccine == v.code && i.dose_number == d.number && i.date <= to
                        }));
                }
            }
            (num, den)
        }
        // §7 mental disorder management: managed to spec / registered patients.
        "mental_management" => {
            if f.onset(Programme::Mental, to).is_none() {
                return (0, 0);
            }
            let n = f.followups(Programme::Mental, from, to).len() as i64;
            (flag(n >= ind.param("min_followups") as i64), 1)
        }
        // §7 key-population signing: key population with a contract in force.
        "key_population_signing" => {
            let den = born && !key_populations(rec, to).is_empty();
            (flag(den && rec.contract_on(to).is_some()), flag(den))
        }
        "resident_signing" => (flag(born && rec.contract_on(to).is_some()), flag(born)),
        // §7 community visit rate: signed residents' visits at their centre / their
        // visits; a visit counts when a contract is in force on its day.
        "community_visits" | "combination_visits" => {
            let lo = f.outpatient.partition_point(|(d, _)| *d < from);
            let (mut num, mut den) = (0, 0);
            for &(day, org) in f.outpatient[lo..].iter().take_while(|(d, _)| *d <= to) {
                let Some(c) = rec.contract_on(day) else {
                    continue;
                };
                den += 1;
                let at_centre = units.centre_of(org) == Some(c.centre_org_id);
                let ok = if rule == "community_visits" {
                    at_centre
                } else {
                    at_centre || c.combination().contains(&org)
                };
                num += flag(ok);
            }
            (num, den)
        }
        _ => (0, 0),
    }
}

/// The units a resident counts towards on `on`: the district, the street or town of
/// the address, and the centre of the contract in force (else the street's centre).
pub fn resident_units(rec: &ResidentRecord, units: &Units, on: NaiveDate) -> [Option<Id>; 3] {
    let r = &rec.resident;
    let centre = rec
        .contract_on(on)
        .map(|c| c.centre_org_id)
        .or_else(|| units.centre_of_street(r.street_org_id));
    [
        units.district(&r.district_code),
        Some(r.street_org_id),
        centre,
    ]
}

/// One resident's (numerator, denominator) of a resident- or resources-basis indicator
/// in `period`, and whether the resident counts towards `unit` then (the drill-down
/// from a unit's figure to the residents behind it).
pub fn resident_count(
    ind: &Indicator,
    rec: &ResidentRecord,
    units: &Units,
    period: Period,
    unit: Id,
) -> Option<(i64, i64)> {
    let to = period.end();
    if rec.resident.birth_date > to
        || !matches!(ind.basis, Some(Basis::Resident | Basis::Resources))
        || !resident_units(rec, units, to).contains(&Some(unit))
    {
        return None;
    }
    let f = Facts::new(rec);
    let from = period.window_start(ind.window.unwrap_or(Window::AsAt));
    Some(count(ind, &f, units, from, to)).filter(|(n, d)| *n != 0 || *d != 0)
}

/// Every non-zero tally of one resident's record over `periods`, for the supported
/// indicators `defs` (their order gives [`Tally::indicator`]).
pub fn resident_tallies(
    rec: &ResidentRecord,
    defs: &[&Indicator],
    units: &Units,
    periods: &[Period],
    out: &mut (impl FnMut(Tally) + ?Sized),
) {
    resident_changes(None, Some(rec), defs, units, periods, out);
}

/// A count (numerator, denominator) and the units it goes to.
type Counted = ((i64, i64), [Option<Id>; 3]);

/// What one resident's record changing from `before` to `after` (`None`: not there)
/// does to the tallies: for each period and indicator where the count or the units it
/// goes to differ, the old count taken away and the new one added; nothing where they
/// are the same (so a write costs what its changes cost, not a sum of every tally).
pub fn resident_changes(
    before: Option<&ResidentRecord>,
    after: Option<&ResidentRecord>,
    defs: &[&Indicator],
    units: &Units,
    periods: &[Period],
    out: &mut (impl FnMut(Tally) + ?Sized),
) {
    let before = before.map(Facts::new);
    let after = after.map(Facts::new);
    // Where a record counts in a period (its units then), if the resident was born.
    fn placed<'f, 'r>(
        f: &'f Option<Facts<'r>>,
        units: &Units,
        to: NaiveDate,
    ) -> Option<(&'f Facts<'r>, [Option<Id>; 3])> {
        f.as_ref()
            .filter(|f| f.birth <= to)
            .map(|f| (f, resident_units(f.rec, units, to)))
    }
    for &period in periods {
        let to = period.end();
        let (was, is) = (placed(&before, units, to), placed(&after, units, to));
        if was.is_none() && is.is_none() {
            continue;
        }
        for (i, ind) in defs.iter().enumerate() {
            if !matches!(ind.basis, Some(Basis::Resident | Basis::Resources)) {
                continue;
            }
            let from = period.window_start(ind.window.unwrap_or(Window::AsAt));
            let old = was.map(|(f, at)| (count(ind, f, units, from, to), at));
            let new = is.map(|(f, at)| (count(ind, f, units, from, to), at));
            if old == new {
                continue;
            }
            let mut emit = |counted: Option<Counted>, sign: i64| {
                let Some(((num, den), at)) = counted else {
                    return;
                };
                if num == 0 && den == 0 {
                    return;
                }
                for unit in at.iter().flatten() {
                    out(Tally {
                        indicator: i as u16,
                        period,
                        unit: *unit,
                        num: sign * num,
                        den: sign * den,
                    });
                }
            };
            emit(old, -1);
            emit(new, 1);
        }
    }
}

/// Numerators of the resources indicators: beds and staff of the organisations, counted
/// towards each unit above them, the same in every period (the registry has no history).
pub fn resource_tallies(
    orgs: &[crate::Organisation],
    staff: &[crate::Practitioner],
    defs: &[&Indicator],
    units: &Units,
    periods: &[Period],
    out: &mut (impl FnMut(Tally) + ?Sized),
) {
    use crate::registry::{OrgKind, PractitionerRole as R};
    let mut per_org: std::collections::HashMap<(u16, Id), i64> = Default::default();
    for (i, ind) in defs.iter().enumerate() {
        if ind.basis != Some(Basis::Resources) {
            continue;
        }
        let i = i as u16;
        match ind.rule.as_deref() {
            Some("beds") => {
                for o in orgs.iter().filter(|o| o.beds > 0) {
                    *per_org.entry((i, o.id)).or_default() += o.beds;
                }
            }
            Some(rule) => {
                for p in staff {
                    let hit = match rule {
                        // Licensed (assistant) physicians: family doctors, specialists,
                        // public-health doctors (as the calibration counts them).
                        "physicians" => {
                            matches!(
                                p.role,
                                R::FamilyDoctor | R::Specialist | R::PublicHealthDoctor
                            )
                        }
                        "nurses" => p.role == R::Nurse,
                        "general_practitioners" => p.role == R::FamilyDoctor,
                        "public_health_staff" => units
                            .get(p.org_id)
                            .is_some_and(|o| o.kind == OrgKind::PublicHealth),
                        _ => false,
                    };
                    if hit {
                        *per_org.entry((i, p.org_id)).or_default() += 1;
                    }
                }
            }
            None => {}
        }
    }
    let mut keys: Vec<_> = per_org.into_iter().collect();
    keys.sort_unstable();
    for ((i, org), n) in keys {
        for unit in units.resource_units(org) {
            for &period in periods {
                out(Tally {
                    indicator: i,
                    period,
                    unit,
                    num: n,
                    den: 0,
                });
            }
        }
    }
}

/// What one case report adds (§7 reporting timeliness: class A and A-managed ≤ 2 h,
/// others ≤ 24 h), in the tracked periods containing its report day, towards the
/// district, the patient's street and the reporting organisation.
pub fn case_report_tallies(
    report: &CaseReport,
    district: &str,
    defs: &[&Indicator],
    units: &Units,
    periods: &[Period],
    out: &mut (impl FnMut(Tally) + ?Sized),
) {
    let Some(d) = disease(&report.disease) else {
        return;
    };
    let on_time = timeliness(d, report.diagnosed_at, report.reported_at).on_time;
    let at = distinct([
        units.district(district),
        units.by_code(&report.street).map(|o| o.id),
        units.by_code(&report.reporting_org).map(|o| o.id),
    ]);
    event_tallies(
        Basis::CaseReports,
        report.reported_at.date(),
        (flag(on_time), 1),
        &at,
        defs,
        periods,
        out,
    );
}

/// What one signal adds to the mean response time: the minutes from raising to the
/// start of verification, once verification has started.
pub fn signal_tallies(
    signal: &Signal,
    district: &str,
    defs: &[&Indicator],
    units: &Units,
    periods: &[Period],
    out: &mut (impl FnMut(Tally) + ?Sized),
) {
    let Some(v) = signal.verifying_at else {
        return;
    };
    let minutes = (v - signal.raised_at).num_minutes().max(0);
    let at = distinct([
        units.district(district),
        units.by_code(&signal.area).map(|o| o.id),
    ]);
    event_tallies(
        Basis::Signals,
        signal.raised_at.date(),
        (minutes, 1),
        &at,
        defs,
        periods,
        out,
    );
}

/// The units given, each once.
fn distinct<const N: usize>(units: [Option<Id>; N]) -> Vec<Id> {
    let mut at: Vec<Id> = units.into_iter().flatten().collect();
    at.sort_unstable();
    at.dedup();
    at
}

/// What one referral adds, in the tracked periods containing the day it was made,
/// towards the district, the referring and the receiving organisation:
/// - `referral_acceptance`: accepted of those decided (accepted or rejected);
/// - `referral_acceptance_minutes`: minutes from the request to its acceptance;
/// - `referral_up_share`: up-referrals of all referrals (the up/down balance).
pub fn referral_tallies(
    r: &crate::referral::ReferralFact,
    district: &str,
    defs: &[&Indicator],
    units: &Units,
    periods: &[Period],
    out: &mut (impl FnMut(Tally) + ?Sized),
) {
    let at = distinct([units.district(district), Some(r.from_org), Some(r.to_org)]);
    let accepted = r.accepted_at.is_some();
    event_tallies_by(
        Basis::Referrals,
        r.created.date(),
        &at,
        defs,
        periods,
        out,
        |ind| match ind.rule.as_deref() {
            Some("referral_acceptance") => (accepted || r.rejected).then_some((flag(accepted), 1)),
            Some("referral_acceptance_minutes") => r
                .accepted_at
                .map(|a| ((a - r.created).num_minutes().max(0), 1)),
            Some("referral_up_share") => {
                Some((flag(r.direction == crate::referral::Direction::Up), 1))
            }
            _ => None,
        },
    );
}

/// What one test order that met a recognised result adds (`recognition`: the earlier
/// result used instead of a repeat), towards the district and the ordering organisation.
pub fn order_tallies(
    o: &crate::recognition::OrderFact,
    district: &str,
    defs: &[&Indicator],
    units: &Units,
    periods: &[Period],
    out: &mut (impl FnMut(Tally) + ?Sized),
) {
    let at = distinct([units.district(district), Some(o.org_id)]);
    event_tallies_by(Basis::Orders, o.day, &at, defs, periods, out, |_| {
        Some((flag(o.recognised), 1))
    });
}

/// What one answered satisfaction survey adds (`satisfaction`: its satisfied answers of
/// all its answers), towards the district and the institution visited, in the periods
/// of the visit's day.
pub fn survey_tallies(
    f: &crate::survey::SurveyFact,
    district: &str,
    defs: &[&Indicator],
    units: &Units,
    periods: &[Period],
    out: &mut (impl FnMut(Tally) + ?Sized),
) {
    let at = distinct([units.district(district), Some(f.org_id)]);
    event_tallies_by(Basis::Surveys, f.day, &at, defs, periods, out, |_| {
        Some((f.satisfied, f.answers))
    });
}

fn event_tallies(
    basis: Basis,
    day: NaiveDate,
    (num, den): (i64, i64),
    at: &[Id],
    defs: &[&Indicator],
    periods: &[Period],
    out: &mut (impl FnMut(Tally) + ?Sized),
) {
    event_tallies_by(basis, day, at, defs, periods, out, |_| Some((num, den)));
}

/// Each indicator of `basis` adds what `value` gives it (nothing for `None`).
fn event_tallies_by(
    basis: Basis,
    day: NaiveDate,
    at: &[Id],
    defs: &[&Indicator],
    periods: &[Period],
    out: &mut (impl FnMut(Tally) + ?Sized),
    value: impl Fn(&Indicator) -> Option<(i64, i64)>,
) {
    for (i, ind) in defs.iter().enumerate() {
        if ind.basis != Some(basis) {
            continue;
        }
        let Some((num, den)) = value(ind) else {
            continue;
        };
        for period in Period::containing(day) {
            if !periods.contains(&period) {
                continue;
            }
            for &unit in at {
                out(Tally {
                    indicator: i as u16,
                    period,
                    unit,
                    num,
                    den,
                });
            }
        }
    }
}
