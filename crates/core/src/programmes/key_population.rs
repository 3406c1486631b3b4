//! Key populations signed first (重点人群, domain-rules §2): computed from age,
//! conditions, pregnancy, the needs-assessment level and mental-disorder registration.

use chrono::NaiveDate;
use serde::Serialize;

use super::{maternal, programme_rules, ResidentRecord};
use crate::codes::Span;
use crate::record::Condition;
use crate::registry::{age_years, Sex};

/// One key population a resident belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyPopulation {
    Older,
    Chronic,
    DisabledElderly,
    Pregnant,
    Child,
    SevereMentalDisorder,
}

impl KeyPopulation {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyPopulation::Older => "older",
            KeyPopulation::Chronic => "chronic",
            KeyPopulation::DisabledElderly => "disabled-elderly",
            KeyPopulation::Pregnant => "pregnant",
            KeyPopulation::Child => "child",
            KeyPopulation::SevereMentalDisorder => "severe-mental-disorder",
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            KeyPopulation::Older => "老年人",
            KeyPopulation::Chronic => "慢性病患者",
            KeyPopulation::DisabledElderly => "失能老人",
            KeyPopulation::Pregnant => "孕产妇",
            KeyPopulation::Child => "0–6岁儿童",
            KeyPopulation::SevereMentalDisorder => "严重精神障碍患者",
        }
    }
}

/// The key populations of `rec` on `on` (empty: not a key-population resident).
/// Special-difficulty families are not recorded by the platform yet.
pub fn key_populations(rec: &ResidentRecord, on: NaiveDate) -> Vec<KeyPopulation> {
    let rules = programme_rules();
    let k = &rules.key_population;
    let birth = rec.resident.birth_date;
    let mut out = Vec::new();
    if birth > on {
        return out;
    }
    let age = age_years(birth, on);
    if age >= k.older_from_age {
        out.push(KeyPopulation::Older);
    }
    let has = |f: fn(&str) -> bool| rec.conditions.iter().any(|c| c.onset <= on && f(&c.icd10));
    if has(Condition::is_hypertension) || has(Condition::is_type2_diabetes) {
        out.push(KeyPopulation::Chronic);
    }
    if age >= k.older_from_age
        && rec
            .latest("needs_level", birth, on)
            .is_some_and(|(_, l)| l >= f64::from(k.disability_levels_from))
    {
        out.push(KeyPopulation::DisabledElderly);
    }
    if rec.resident.sex == Sex::Female {
        if let Some(p) = maternal::pregnancy(rec, &rules.maternal, on) {
            let ongoing =
                p.delivered.is_none() && p.week(on) <= i64::from(rules.maternal.followed_to_week);
            let postpartum = p
                .delivered
                .is_some_and(|d| on <= rules.maternal.check_42_at.after(d));
            if ongoing || postpartum {
                out.push(KeyPopulation::Pregnant);
            }
        }
    }
    if Span::Years(k.children_until_age).after(birth) > on {
        out.push(KeyPopulation::Child);
    }
    if has(Condition::is_severe_mental_disorder) {
        out.push(KeyPopulation::SevereMentalDisorder);
    }
    out
}
