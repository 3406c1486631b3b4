//! Severe mental disorder management (严重精神障碍患者管理, domain-rules §4): follow-up
//! interval by the danger level of the latest assessment; levels 3–5 refer now.

use chrono::NaiveDate;

use super::rules::MentalRules;
use super::{before, DueItem, ProgrammeStatus, ResidentRecord};
use crate::record::{Condition, Programme};

pub(crate) fn assess(
    rec: &ResidentRecord,
    on: NaiveDate,
    rules: &MentalRules,
    items: &mut Vec<DueItem>,
    statuses: &mut Vec<ProgrammeStatus>,
) {
    let Some(registered) = rec
        .conditions
        .iter()
        .filter(|c| c.onset <= on && Condition::is_severe_mental_disorder(&c.icd10))
        .map(|c| c.onset)
        .min()
    else {
        return;
    };
    let cite = "domain-rules §4 severe mental disorder";
    let followups = rec.followups(Programme::Mental, on);
    let level_at = |e: &crate::record::Encounter| {
        rec.reading(e, "danger_level")
            .map(|v| v.round().clamp(0.0, 5.0) as u8)
    };
    // Only the latest assessments decide, so they are read from the end.
    let latest = followups.last().map(|e| {
        let referred = rec.reading(e, "referral").is_some_and(|v| v >= 1.0);
        (e.start.date(), level_at(e), referred)
    });
    let Some((last, level, referred)) = latest else {
        items.push(DueItem::new(
            Programme::Mental,
            "followup",
            "严重精神障碍首次随访",
            "first severe-mental-disorder follow-up",
            registered,
            registered,
            rules.grace.after(registered),
            on,
            format!("{cite}: registered {registered}, no follow-up recorded"),
        ));
        statuses.push(ProgrammeStatus {
            programme: Programme::Mental,
            status: "not-assessed".into(),
            detail_zh: "未随访".into(),
            detail_en: "never followed up".into(),
        });
        return;
    };
    // A follow-up without an assessment keeps the level of the one before.
    let level = level
        .or_else(|| followups.iter().rev().find_map(|e| level_at(e)))
        .unwrap_or(0);
    let rule = rules
        .level(level)
        .or_else(|| rules.levels.first())
        .expect("danger levels in data");
    if rule.refer && !referred {
        items.push(DueItem::new(
            Programme::Mental,
            "referral",
            "严重精神障碍紧急转诊",
            "severe mental disorder: refer now",
            last,
            last,
            last,
            on,
            format!("{cite}: danger level {level} on {last} → refer now"),
        ));
    }
    // The first review after reaching a level, then the level's regular interval.
    let previous = followups.iter().rev().skip(1).find_map(|e| level_at(e));
    let (interval, which) = if previous == Some(level) {
        (rule.then, "then")
    } else {
        (rule.first, "first")
    };
    let due = interval.after(last);
    items.push(DueItem::new(
        Programme::Mental,
        "followup",
        format!("严重精神障碍随访（{}）", rule.name_zh),
        format!("severe mental disorder follow-up (level {level})"),
        before(rules.window_before, due).max(last.succ_opt().unwrap_or(last)),
        due,
        if interval.after(last) <= rules.window_before.after(last) {
            due
        } else {
            rules.grace.after(due)
        },
        on,
        format!("{cite}: danger level {level} → {which} follow-up within {interval} (last {last})"),
    ));
    statuses.push(ProgrammeStatus {
        programme: Programme::Mental,
        status: format!("level-{level}"),
        detail_zh: format!("危险性 {}（{last}）", rule.name_zh),
        detail_en: format!("danger level {} ({last})", rule.name_en),
    });
}
