//! Maternal care (孕产妇健康管理, domain-rules §4) and the five-colour pregnancy risk
//! grading (妊娠风险五色分级, §5): prenatal visit windows by gestational week, the
//! postpartum home visit and the 42-day check, and the risk colour of the current
//! pregnancy from recorded conditions and observations.

use chrono::{Days, NaiveDate};
use serde::Serialize;

use super::rules::{MaternalRules, RiskColour};
use super::{window_items, DueItem, ProgrammeStatus, ResidentRecord, Window};
use crate::record::Programme;
use crate::registry::{age_years, Sex};

/// The pregnancy a record is in, or has just ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Pregnancy {
    /// First day of the last menstrual period (the onset of the pregnancy condition).
    pub lmp: NaiveDate,
    pub delivered: Option<NaiveDate>,
}

impl Pregnancy {
    /// Completed gestational weeks on `on`.
    pub fn week(&self, on: NaiveDate) -> i64 {
        (on - self.lmp).num_days().div_euclid(7)
    }
}

/// The latest pregnancy begun on or before `on`, with its delivery if recorded.
pub fn pregnancy(rec: &ResidentRecord, rules: &MaternalRules, on: NaiveDate) -> Option<Pregnancy> {
    let is = |code: &str, list: &[String]| list.iter().any(|p| code.starts_with(p.as_str()));
    let lmp = rec
        .conditions
        .iter()
        .filter(|c| c.onset <= on && is(&c.icd10, &rules.pregnancy_codes))
        .map(|c| c.onset)
        .max()?;
    let delivered = rec
        .conditions
        .iter()
        .filter(|c| c.onset >= lmp && c.onset <= on && is(&c.icd10, &rules.delivery_codes))
        .map(|c| c.onset)
        .min();
    Some(Pregnancy { lmp, delivered })
}

/// The risk grade of a pregnancy: the highest colour among green–red, and whether
/// purple applies too, with every factor found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskGrade {
    pub colour: RiskColour,
    pub purple: bool,
    pub factors: Vec<(RiskColour, String)>,
}

/// Grade the pregnancy beginning `lmp` on `on` (domain-rules §5): age at the LMP,
/// the latest haemoglobin, platelets and BMI taken since the LMP, and conditions —
/// pregnancy-specific codes (chapter O) only from this pregnancy.
pub fn risk_grade(
    rec: &ResidentRecord,
    rules: &MaternalRules,
    lmp: NaiveDate,
    on: NaiveDate,
) -> RiskGrade {
    let age = age_years(rec.resident.birth_date, lmp);
    let has = |prefix: &str| {
        rec.conditions.iter().any(|c| {
            c.onset <= on
                && c.icd10.starts_with(prefix)
                && (!c.icd10.starts_with('O') || c.onset >= lmp)
        })
    };
    let mut factors = Vec::new();
    for f in &rules.risk {
        let hit = if let Some(a) = f.age_at_least {
            age >= a
        } else if let Some(a) = f.age_at_most {
            age <= a
        } else if let Some(key) = &f.observation {
            rec.latest(key, lmp, on).is_some_and(|(_, x)| f.in_range(x))
        } else if !f.all_of.is_empty() {
            f.all_of.iter().all(|group| group.iter().any(|p| has(p)))
        } else {
            f.any_of.iter().any(|p| has(p))
        };
        if hit {
            factors.push((f.colour, f.factor.clone()));
        }
    }
    let colour = factors
        .iter()
        .map(|(c, _)| *c)
        .filter(|c| *c != RiskColour::Purple)
        .max()
        .unwrap_or(RiskColour::Green);
    let purple = factors.iter().any(|(c, _)| *c == RiskColour::Purple);
    RiskGrade {
        colour,
        purple,
        factors,
    }
}

pub(crate) fn assess(
    rec: &ResidentRecord,
    on: NaiveDate,
    rules: &MaternalRules,
    items: &mut Vec<DueItem>,
    statuses: &mut Vec<ProgrammeStatus>,
) {
    if rec.resident.sex != Sex::Female {
        return;
    }
    let Some(p) = pregnancy(rec, rules, on) else {
        return;
    };
    let visits: Vec<NaiveDate> = rec
        .followups(Programme::Maternal, on)
        .iter()
        .map(|e| e.start.date())
        .filter(|d| *d >= p.lmp)
        .collect();
    let day = |weeks: u32, extra: u64| p.lmp + Days::new(u64::from(weeks) * 7 + extra);
    match p.delivered {
        None => {
            if p.week(on) > i64::from(rules.followed_to_week) {
                return;
            }
            let windows: Vec<Window<'_>> = rules
                .prenatal
                .iter()
                .map(|w| Window {
                    key: &w.key,
                    name_zh: &w.name_zh,
                    name_en: &w.name_en,
                    from: day(w.from_week, 0),
                    to: day(w.to_week, 6),
                })
                .collect();
            window_items(
                Programme::Maternal,
                &windows,
                &visits,
                on,
                &format!(
                    "domain-rules §4 maternal: 5 prenatal visits (LMP {})",
                    p.lmp
                ),
                items,
            );
        }
        Some(delivered) => {
            let discharge = rules.hospital_stay.after(delivered);
            let home_to = rules.postpartum_visit_within.after(discharge);
            let check_from = rules.check_42_at.after(delivered);
            let check_to = rules.check_42_grace.after(check_from);
            if on > check_to.max(home_to) + Days::new(28) {
                return;
            }
            let after: Vec<NaiveDate> =
                visits.iter().copied().filter(|d| *d >= delivered).collect();
            let windows = [
                Window {
                    key: "postpartum-visit",
                    name_zh: "产后访视",
                    name_en: "postpartum home visit",
                    from: delivered,
                    to: home_to,
                },
                Window {
                    key: "postpartum-42d",
                    name_zh: "产后42天健康检查",
                    name_en: "42-day postpartum check",
                    from: check_from,
                    to: check_to,
                },
            ];
            window_items(
                Programme::Maternal,
                &windows,
                &after,
                on,
                &format!("domain-rules §4 maternal: postpartum visit within {} of discharge, check at {} (delivered {delivered})", rules.postpartum_visit_within, rules.check_42_at),
                items,
            );
        }
    }
    let g = risk_grade(rec, rules, p.lmp, on);
    let factors: Vec<&str> = g.factors.iter().map(|(_, f)| f.as_str()).collect();
    let stage = match p.delivered {
        None => format!("孕 {} 周", p.week(on)),
        Some(d) => format!("产后 {} 天", (on - d).num_days()),
    };
    let stage_en = match p.delivered {
        None => format!("week {}", p.week(on)),
        Some(d) => format!("{} days postpartum", (on - d).num_days()),
    };
    statuses.push(ProgrammeStatus {
        programme: Programme::Maternal,
        status: if g.purple {
            format!("{}+purple", g.colour.as_str())
        } else {
            g.colour.as_str().into()
        },
        detail_zh: format!(
            "{stage}；{}{}{}",
            g.colour.name_zh(),
            if g.purple { " + 紫色" } else { "" },
            if factors.is_empty() {
                String::new()
            } else {
                format!("：{}", factors.join("、"))
            }
        ),
        detail_en: format!(
            "{stage_en}; {}{}{}",
            g.colour.as_str(),
            if g.purple { " + purple" } else { "" },
            if factors.is_empty() {
                String::new()
            } else {
                format!(": {}", factors.join(", "))
            }
        ),
    });
}
