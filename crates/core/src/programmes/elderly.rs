//! Elderly health management (老年人健康管理, domain-rules §4): one health management a
//! year from 65, and the self-care score band of the latest assessment.

use chrono::NaiveDate;

use super::rules::ElderlyRules;
use super::{before, DueItem, ProgrammeStatus, ResidentRecord};
use crate::codes::Span;
use crate::record::Programme;
use crate::registry::age_years;

/// The band of a self-care score (0–3 independent, 4–8 mild, 9–18 moderate, ≥ 19
/// dependent): the last band whose lower bound the score reaches.
pub fn self_care_band(rules: &ElderlyRules, score: f64) -> Option<&super::rules::SelfCareBand> {
    rules
        .self_care_bands
        .iter()
        .rev()
        .find(|b| score >= f64::from(b.from))
}

pub(crate) fn assess(
    rec: &ResidentRecord,
    on: NaiveDate,
    rules: &ElderlyRules,
    items: &mut Vec<DueItem>,
    statuses: &mut Vec<ProgrammeStatus>,
) {
    let birth = rec.resident.birth_date;
    if age_years(birth, on) < rules.min_age {
        return;
    }
    let from = Span::Years(rules.min_age).after(birth);
    let last = rec
        .followups(Programme::Elderly, on)
        .last()
        .map(|e| e.start.date())
        .filter(|d| *d >= before(rules.window_before, from));
    let due = match last {
        Some(d) => rules.interval.after(d),
        None => from,
    };
    items.push(DueItem::new(
        Programme::Elderly,
        "annual-check",
        "老年人年度健康管理",
        "annual elderly health check",
        before(rules.window_before, due).max(from),
        due,
        rules.grace.after(due),
        on,
        match last {
            Some(d) => {
                format!("domain-rules §4 elderly 65+: one health management a year (last {d})")
            }
            None => format!(
                "domain-rules §4 elderly 65+: one health management a year (none since age {})",
                rules.min_age
            ),
        },
    ));
    let score = rec.latest("self_care_score", from, on);
    let (status, zh, en) =
        match score.and_then(|(t, s)| self_care_band(rules, s).map(|b| (t, s, b))) {
            Some((t, s, b)) => (
                b.band.clone(),
                format!("自理能力评分 {s:.0}（{}，{}）", b.name_zh, t.date()),
                format!("self-care score {s:.0} ({}, {})", b.band, t.date()),
            ),
            None => (
                "not-assessed".into(),
                "未做自理能力评估".into(),
                "self-care not assessed".into(),
            ),
        };
    statuses.push(ProgrammeStatus {
        programme: Programme::Elderly,
        status,
        detail_zh: zh,
        detail_en: en,
    });
}
