//! Child health management 0–6 (0～6岁儿童健康管理, domain-rules §4): the newborn home
//! visit, the one-month check, the visits by age, and the haemoglobin checks.

use chrono::NaiveDate;

use super::rules::{ChildRules, MaternalRules};
use super::{window_items, DueItem, ProgrammeStatus, ResidentRecord, Window};
use crate::record::Programme;

pub(crate) fn assess(
    rec: &ResidentRecord,
    on: NaiveDate,
    rules: &ChildRules,
    maternal: &MaternalRules,
    items: &mut Vec<DueItem>,
    statuses: &mut Vec<ProgrammeStatus>,
) {
    let birth = rec.resident.birth_date;
    if birth > on || rules.until_age.after(birth) <= on {
        return;
    }
    let cite = "domain-rules §4 children 0–6";
    let visits: Vec<NaiveDate> = rec
        .followups(Programme::Child, on)
        .iter()
        .map(|e| e.start.date())
        .collect();
    // Discharge after birth: the same stay as the mother's when none is recorded.
    let discharge = maternal.hospital_stay.after(birth);
    let mut windows = vec![Window {
        key: "newborn",
        name_zh: "新生儿家庭访视",
        name_en: "newborn home visit",
        from: birth,
        to: rules.newborn_visit_within.after(discharge),
    }];
    windows.extend(rules.visits.iter().map(|v| Window {
        key: &v.key,
        name_zh: &v.name_zh,
        name_en: &v.name_en,
        from: v.from.after(birth),
        to: v.to.after(birth),
    }));
    let before = items.len();
    window_items(Programme::Child, &windows, &visits, on, cite, items);
    let hb: Vec<NaiveDate> = crate::codes::observation("haemoglobin")
        .map(|code| {
            rec.observations
                .iter()
                .filter(|o| o.code == code.code && o.effective.date() <= on)
                .map(|o| o.effective.date())
                .collect()
        })
        .unwrap_or_default();
    let hb_windows: Vec<Window<'_>> = rules
        .haemoglobin
        .iter()
        .map(|v| Window {
            key: &v.key,
            name_zh: &v.name_zh,
            name_en: &v.name_en,
            from: v.from.after(birth),
            to: v.to.after(birth),
        })
        .collect();
    window_items(Programme::Child, &hb_windows, &hb, on, cite, items);
    let done = windows.iter().filter(|w| w.to < on).count();
    let missed = items[before..]
        .iter()
        .filter(|i| i.status == super::DueStatus::Overdue)
        .count();
    statuses.push(ProgrammeStatus {
        programme: Programme::Child,
        status: if missed > 0 {
            "behind".into()
        } else {
            "on-track".into()
        },
        detail_zh: format!("已到期检查 {done} 次，已做 {} 次", visits.len()),
        detail_en: format!("{done} visits due so far, {} recorded", visits.len()),
    });
}
