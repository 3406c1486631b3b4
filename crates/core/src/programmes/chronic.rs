//! Hypertension and type-2 diabetes management (高血压 / 2型糖尿病患者健康管理,
//! domain-rules §4): follow-ups due (≥ 4 a year), control status from the latest
//! readings, emergency referral, the 2-week revisit after a first uncontrolled reading,
//! and referral after two consecutive uncontrolled follow-ups.

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use super::rules::ChronicRules;
use super::{before, DueItem, ProgrammeStatus, ResidentRecord};
use crate::record::{Condition, Encounter, Programme};
use crate::registry::age_years;

/// The control class of one follow-up's readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Control {
    Controlled,
    Uncontrolled,
    /// A reading (or danger symptoms) that calls for emergency referral.
    Emergency,
    /// The follow-up recorded no reading the rule needs.
    NoReading,
}

impl Control {
    pub fn as_str(self) -> &'static str {
        match self {
            Control::Controlled => "controlled",
            Control::Uncontrolled => "uncontrolled",
            Control::Emergency => "emergency",
            Control::NoReading => "no-reading",
        }
    }

    fn is_uncontrolled(self) -> bool {
        matches!(self, Control::Uncontrolled | Control::Emergency)
    }
}

/// Readings of one follow-up that the rules look at.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Readings {
    pub sbp: Option<f64>,
    pub dbp: Option<f64>,
    pub glucose: Option<f64>,
    pub heart_rate: Option<f64>,
    pub temperature: Option<f64>,
    pub danger_symptoms: bool,
}

/// Classify readings for `programme` of a patient aged `age` (domain-rules §4 rows:
/// controlled < 140/90, 65+ < 150/90; glucose < 7.0; emergency SBP ≥ 180 or DBP ≥ 110,
/// glucose ≥ 16.7 or ≤ 3.9, heart rate > 100, temperature > 39 °C, danger symptoms).
pub fn classify(programme: Programme, rules: &ChronicRules, age: u32, r: &Readings) -> Control {
    let ge = |x: Option<f64>, b: Option<f64>| matches!((x, b), (Some(x), Some(b)) if x >= b);
    let le = |x: Option<f64>, b: Option<f64>| matches!((x, b), (Some(x), Some(b)) if x <= b);
    let gt = |x: Option<f64>, b: Option<f64>| matches!((x, b), (Some(x), Some(b)) if x > b);
    let emergency = r.danger_symptoms
        || ge(r.sbp, Some(rules.emergency_sbp_at_least))
        || ge(r.dbp, Some(rules.emergency_dbp_at_least))
        || ge(r.glucose, rules.emergency_glucose_at_least)
        || le(r.glucose, rules.emergency_glucose_at_most)
        || gt(r.heart_rate, rules.emergency_heart_rate_above)
        || gt(r.temperature, rules.emergency_temperature_above);
    if emergency {
        return Control::Emergency;
    }
    match programme {
        Programme::Hypertension => {
            let older = rules.older_from_age.is_some_and(|a| age >= a);
            let (sb, db) = if older {
                (
                    rules.older_controlled_sbp_below,
                    rules.older_controlled_dbp_below,
                )
            } else {
                (rules.controlled_sbp_below, rules.controlled_dbp_below)
            };
            match (r.sbp, r.dbp, sb, db) {
                (Some(s), Some(d), Some(sb), Some(db)) if s < sb && d < db => Control::Controlled,
                (Some(_), Some(_), _, _) => Control::Uncontrolled,
                _ => Control::NoReading,
            }
        }
        _ => match (r.glucose, rules.controlled_glucose_below) {
            (Some(g), Some(b)) if g < b => Control::Controlled,
            (Some(_), _) => Control::Uncontrolled,
            _ => Control::NoReading,
        },
    }
}

pub(crate) fn readings(rec: &ResidentRecord, e: &Encounter) -> Readings {
    Readings {
        sbp: rec.reading(e, "sbp"),
        dbp: rec.reading(e, "dbp"),
        glucose: rec.reading(e, "fasting_glucose"),
        heart_rate: rec.reading(e, "heart_rate"),
        temperature: rec.reading(e, "body_temperature"),
        danger_symptoms: rec.reading(e, "danger_symptoms").is_some_and(|v| v >= 1.0),
    }
}

/// The onset of the programme's condition, if the resident has it by `on`.
pub fn onset(rec: &ResidentRecord, programme: Programme, on: NaiveDate) -> Option<NaiveDate> {
    let is = match programme {
        Programme::Hypertension => Condition::is_hypertension,
        Programme::Diabetes => Condition::is_type2_diabetes,
        _ => return None,
    };
    rec.conditions
        .iter()
        .filter(|c| c.onset <= on && is(&c.icd10))
        .map(|c| c.onset)
        .min()
}

pub(crate) fn assess(
    rec: &ResidentRecord,
    on: NaiveDate,
    programme: Programme,
    rules: &ChronicRules,
    items: &mut Vec<DueItem>,
    statuses: &mut Vec<ProgrammeStatus>,
) {
    let birth = rec.resident.birth_date;
    let Some(onset) = onset(rec, programme, on) else {
        return;
    };
    if age_years(birth, on) < rules.min_age {
        return;
    }
    let (zh, en) = match programme {
        Programme::Hypertension => ("高血压", "hypertension"),
        _ => ("2型糖尿病", "type 2 diabetes"),
    };
    let cite = format!("domain-rules §4 {en}");
    let followups = rec.followups(programme, on);
    // Walking back from the latest follow-up: the latest reading, and how many
    // follow-ups with readings in a row were uncontrolled (only these decide).
    let mut latest: Option<(&Encounter, Readings, Control, bool)> = None;
    let mut trailing = 0;
    for e in followups.iter().rev() {
        let r = readings(rec, e);
        let c = classify(programme, rules, age_years(birth, e.start.date()), &r);
        if c == Control::NoReading {
            continue;
        }
        if latest.is_none() {
            let referred = rec.reading(e, "referral").is_some_and(|v| v >= 1.0);
            latest = Some((e, r, c, referred));
        }
        if !c.is_uncontrolled() {
            break;
        }
        trailing += 1;
    }
    let this_year = followups
        .iter()
        .filter(|e| e.start.date().year() == on.year())
        .count();

    let Some(last) = followups.last() else {
        // Under management but never followed up: the first follow-up is due now.
        let due = onset.max(rules.min_age_date(birth));
        items.push(DueItem::new(
            programme,
            "followup",
            format!("{zh}首次随访"),
            format!("first {en} follow-up"),
            due,
            due,
            rules.grace.after(due),
            on,
            format!("{cite}: ≥ {} face-to-face follow-ups a year; none recorded since diagnosis {onset}", rules.followups_per_year),
        ));
        statuses.push(ProgrammeStatus {
            programme,
            status: Control::NoReading.as_str().into(),
            detail_zh: "未随访".into(),
            detail_en: "never followed up".into(),
        });
        return;
    };
    let last_day = last.start.date();
    let latest_is_last = latest.as_ref().is_some_and(|(e, _, _, _)| e.id == last.id);

    let mut push_referral =
        |key: &str, zh_what: &str, en_what: &str, why: String, at: NaiveDate| {
            items.push(DueItem::new(
                programme, key, zh_what, en_what, at, at, at, on, why,
            ));
        };
    if let Some((e, r, c, referred)) = &latest {
        let at = e.start.date();
        if *c == Control::Emergency && !*referred {
            push_referral(
                "emergency-referral",
                &format!("{zh}紧急转诊"),
                &format!("{en} emergency referral"),
                format!(
                    "{cite}: emergency referral ({}) at the follow-up of {at}",
                    describe(r)
                ),
                at,
            );
        } else if trailing >= rules.consecutive_uncontrolled_to_refer && !*referred {
            push_referral(
                "referral",
                &format!("{zh}转诊"),
                &format!("{en} referral up"),
                format!("{cite}: {trailing} consecutive uncontrolled follow-ups → refer up"),
                at,
            );
        }
    }
    // The next follow-up: within 2 weeks after an uncontrolled last reading, else on the
    // regular interval.
    if latest_is_last && trailing >= 1 {
        let due = rules.revisit_after_uncontrolled.after(last_day);
        let why = if trailing >= rules.consecutive_uncontrolled_to_refer {
            format!("{cite}: {trailing} consecutive uncontrolled follow-ups → refer and follow up within {}", rules.revisit_after_uncontrolled)
        } else {
            format!(
                "{cite}: first uncontrolled reading on {last_day} → revisit within {}",
                rules.revisit_after_uncontrolled
            )
        };
        items.push(DueItem::new(
            programme,
            "followup",
            format!("{zh}复诊随访（2周内）"),
            format!("{en} revisit (2 weeks)"),
            last_day.succ_opt().unwrap_or(last_day),
            due,
            due,
            on,
            why,
        ));
    } else {
        let due = rules.interval.after(last_day);
        items.push(DueItem::new(
            programme,
            "followup",
            format!("{zh}季度随访"),
            format!("{en} quarterly follow-up"),
            before(rules.window_before, due),
            due,
            rules.grace.after(due),
            on,
            format!(
                "{cite}: ≥ {} follow-ups a year, every {} (last {last_day})",
                rules.followups_per_year, rules.interval
            ),
        ));
    }
    let (status, zh_d, en_d) = match &latest {
        Some((e, r, c, _)) => (
            c.as_str(),
            format!(
                "最近 {} {}；本年随访 {this_year} 次",
                e.start.date(),
                describe(r)
            ),
            format!(
                "latest {} {}; {this_year} follow-ups this year",
                e.start.date(),
                describe(r)
            ),
        ),
        None => (
            Control::NoReading.as_str(),
            format!("无读数；本年随访 {this_year} 次"),
            format!("no readings; {this_year} follow-ups this year"),
        ),
    };
    statuses.push(ProgrammeStatus {
        programme,
        status: status.into(),
        detail_zh: zh_d,
        detail_en: en_d,
    });
}

fn describe(r: &Readings) -> String {
    let mut parts = Vec::new();
    if let (Some(s), Some(d)) = (r.sbp, r.dbp) {
        parts.push(format!("{s:.0}/{d:.0} mmHg"));
    }
    if let Some(g) = r.glucose {
        parts.push(format!("FPG {g:.1} mmol/L"));
    }
    if let Some(h) = r.heart_rate {
        parts.push(format!("HR {h:.0}"));
    }
    if let Some(t) = r.temperature {
        parts.push(format!("T {t:.1} °C"));
    }
    if r.danger_symptoms {
        parts.push("danger symptoms".into());
    }
    parts.join(", ")
}

impl ChronicRules {
    /// The day a resident born on `birth` reaches the programme's minimum age.
    pub fn min_age_date(&self, birth: NaiveDate) -> NaiveDate {
        crate::codes::Span::Years(self.min_age).after(birth)
    }
}
