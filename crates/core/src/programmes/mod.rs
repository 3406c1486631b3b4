//! Basic public-health programmes (基本公共卫生服务) — SPEC capability 4: given one
//! resident's record and a date, what is due, overdue or next, with the rule that
//! produced each item, and each programme's status. Pure: the same record and date
//! always give the same answer.
//!
//! Rules come from `data/programme-rules.toml` and `data/immunization-schedule.toml`
//! (domain-rules §3–5); each programme module cites the rows it applies.

pub mod child;
pub mod chronic;
pub mod elderly;
pub mod immunization;
pub mod key_population;
pub mod maternal;
pub mod mental;
pub mod rules;

use chrono::{NaiveDate, NaiveDateTime};
use serde::Serialize;

use crate::codes::{observation, Span};
use crate::record::{Condition, Contract, Encounter, Immunization, Observation, Programme};
use crate::registry::Resident;

pub use key_population::{key_populations, KeyPopulation};
pub use rules::{programme_rules, ProgrammeRules, RiskColour};

/// Everything the programmes read of one resident (居民健康档案).
#[derive(Debug, Clone, PartialEq)]
pub struct ResidentRecord {
    pub resident: Resident,
    pub conditions: Vec<Condition>,
    pub encounters: Vec<Encounter>,
    pub observations: Vec<Observation>,
    pub immunizations: Vec<Immunization>,
    /// Family-doctor contracts, every year of them.
    pub contracts: Vec<Contract>,
}

impl ResidentRecord {
    pub fn new(resident: Resident) -> Self {
        Self {
            resident,
            conditions: Vec::new(),
            encounters: Vec::new(),
            observations: Vec::new(),
            immunizations: Vec::new(),
            contracts: Vec::new(),
        }
    }

    /// The contract in force on `on`, if any.
    pub fn contract_on(&self, on: NaiveDate) -> Option<&Contract> {
        self.contracts
            .iter()
            .filter(|c| c.covers(on))
            .max_by_key(|c| (c.start, c.id))
    }

    /// Follow-up encounters of `programme` up to `on`, oldest first.
    pub fn followups(&self, programme: Programme, on: NaiveDate) -> Vec<&Encounter> {
        let mut v: Vec<&Encounter> = self
            .encounters
            .iter()
            .filter(|e| e.programme == Some(programme) && e.start.date() <= on)
            .collect();
        v.sort_by_key(|e| (e.start, e.id));
        v
    }

    /// The value of observation `key` taken at encounter `e` (its own, or one with no
    /// encounter on the same day); the latest if several.
    pub fn reading(&self, e: &Encounter, key: &str) -> Option<f64> {
        let code = &observation(key)?.code;
        self.observations
            .iter()
            .filter(|o| match o.encounter_id {
                Some(id) => id == e.id,
                None => o.effective.date() == e.start.date(),
            })
            .filter(|o| &o.code == code)
            .max_by_key(|o| (o.effective, o.id))
            .map(|o| o.value)
    }

    /// The latest observation `key` taken in `[from, on]`, with its time.
    pub fn latest(
        &self,
        key: &str,
        from: NaiveDate,
        on: NaiveDate,
    ) -> Option<(NaiveDateTime, f64)> {
        let code = &observation(key)?.code;
        self.observations
            .iter()
            .filter(|o| &o.code == code && o.effective.date() >= from && o.effective.date() <= on)
            .max_by_key(|o| (o.effective, o.id))
            .map(|o| (o.effective, o.value))
    }

    /// Whether the resident has a condition whose code starts with one of `prefixes`,
    /// with onset on or before `on`.
    pub fn has_condition(&self, prefixes: &[String], on: NaiveDate) -> bool {
        self.conditions
            .iter()
            .any(|c| c.onset <= on && prefixes.iter().any(|p| c.icd10.starts_with(p.as_str())))
    }
}

/// Where an item stands on the day asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DueStatus {
    /// Past its last on-time day.
    Overdue,
    /// Inside its window now.
    Due,
    /// Not yet: the next one.
    Upcoming,
}

impl DueStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DueStatus::Overdue => "overdue",
            DueStatus::Due => "due",
            DueStatus::Upcoming => "upcoming",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Overdue, Self::Due, Self::Upcoming]
            .into_iter()
            .find(|k| k.as_str() == s)
    }

    /// The status on `on` of an item that may be done from `earliest` and is on time
    /// until `last_on_time` inclusive.
    pub fn on(on: NaiveDate, earliest: NaiveDate, last_on_time: NaiveDate) -> Self {
        if on < earliest {
            DueStatus::Upcoming
        } else if on > last_on_time {
            DueStatus::Overdue
        } else {
            DueStatus::Due
        }
    }
}

/// One thing a family doctor should do for a resident (待办事项).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DueItem {
    pub programme: Programme,
    /// Stable key within the programme (`HepB-3`, `followup`, `prenatal-2`, `referral`).
    pub key: String,
    pub what_zh: String,
    pub what_en: String,
    /// First day it may be done.
    pub earliest: NaiveDate,
    /// The day it is due.
    pub due: NaiveDate,
    /// Last day it is on time; after it the item is overdue.
    pub overdue_after: NaiveDate,
    pub status: DueStatus,
    /// The rule that produced the item, citing its row.
    pub rule: String,
}

impl DueItem {
    /// An item with its status computed for `on`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        programme: Programme,
        key: impl Into<String>,
        what_zh: impl Into<String>,
        what_en: impl Into<String>,
        earliest: NaiveDate,
        due: NaiveDate,
        overdue_after: NaiveDate,
        on: NaiveDate,
        rule: impl Into<String>,
    ) -> Self {
        let overdue_after = overdue_after.max(earliest);
        Self {
            programme,
            key: key.into(),
            what_zh: what_zh.into(),
            what_en: what_en.into(),
            earliest,
            due,
            overdue_after,
            status: DueStatus::on(on, earliest, overdue_after),
            rule: rule.into(),
        }
    }

    /// Order of a due list: overdue first, then due, then upcoming; earlier dates first.
    pub fn sort_key(&self) -> (DueStatus, NaiveDate, Programme, &str) {
        (self.status, self.due, self.programme, &self.key)
    }
}

/// A programme's standing for a resident (管理状态), shown beside the due items.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProgrammeStatus {
    pub programme: Programme,
    /// Short machine value: `controlled`, `uncontrolled`, `emergency`, `no-reading`,
    /// a risk colour, a self-care band, `level-N`, `complete`, `in-progress`, …
    pub status: String,
    pub detail_zh: String,
    pub detail_en: String,
}

/// All due items (sorted: overdue first) and statuses of one resident on one day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assessment {
    pub resident_id: crate::Id,
    pub on: NaiveDate,
    pub items: Vec<DueItem>,
    pub statuses: Vec<ProgrammeStatus>,
}

/// Assess every programme for `rec` on `on`.
pub fn assess(rec: &ResidentRecord, on: NaiveDate) -> Assessment {
    let rules = programme_rules();
    let mut items = Vec::new();
    let mut statuses = Vec::new();
    immunization::assess(rec, on, rules, &mut items, &mut statuses);
    chronic::assess(
        rec,
        on,
        Programme::Hypertension,
        &rules.hypertension,
        &mut items,
        &mut statuses,
    );
    chronic::assess(
        rec,
        on,
        Programme::Diabetes,
        &rules.diabetes,
        &mut items,
        &mut statuses,
    );
    elderly::assess(rec, on, &rules.elderly, &mut items, &mut statuses);
    maternal::assess(rec, on, &rules.maternal, &mut items, &mut statuses);
    child::assess(
        rec,
        on,
        &rules.child,
        &rules.maternal,
        &mut items,
        &mut statuses,
    );
    mental::assess(rec, on, &rules.mental, &mut items, &mut statuses);
    items.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    Assessment {
        resident_id: rec.resident.id,
        on,
        items,
        statuses,
    }
}

/// A contact that should happen once inside a window of dates.
#[derive(Debug, Clone)]
pub(crate) struct Window<'a> {
    pub key: &'a str,
    pub name_zh: &'a str,
    pub name_en: &'a str,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// Items of a series of windows (prenatal visits, child visits, haemoglobin checks):
/// each event date fills the first open window containing it. The next open window
/// that has not ended is listed (due or upcoming); the latest window that ended open is
/// listed as overdue while no later window has opened, so a missed contact stays on the
/// list until the next one takes its place.
pub(crate) fn window_items(
    programme: Programme,
    windows: &[Window<'_>],
    events: &[NaiveDate],
    on: NaiveDate,
    rule: &str,
    out: &mut Vec<DueItem>,
) {
    let mut filled = vec![false; windows.len()];
    for d in events {
        if let Some(i) =
            (0..windows.len()).find(|&i| !filled[i] && windows[i].from <= *d && *d <= windows[i].to)
        {
            filled[i] = true;
        }
    }
    let item = |w: &Window<'_>| {
        DueItem::new(
            programme,
            w.key,
            w.name_zh,
            w.name_en,
            w.from,
            w.from,
            w.to,
            on,
            format!("{rule}: {} between {} and {}", w.name_en, w.from, w.to),
        )
    };
    let next_open = (0..windows.len()).find(|&i| !filled[i] && windows[i].to >= on);
    let started_after_missed = |i: usize| windows.iter().skip(i + 1).any(|w| w.from <= on);
    if let Some(i) = (0..windows.len())
        .rev()
        .find(|&i| !filled[i] && windows[i].to < on)
    {
        if !started_after_missed(i) {
            out.push(item(&windows[i]));
        }
    }
    if let Some(i) = next_open {
        out.push(item(&windows[i]));
    }
}

/// `date` minus a span (month ends clamp).
pub(crate) fn before(span: Span, date: NaiveDate) -> NaiveDate {
    match span {
        Span::Days(n) => date - chrono::Days::new(n.into()),
        Span::Months(n) => date - chrono::Months::new(n),
        Span::Years(n) => date - chrono::Months::new(n * 12),
    }
}

#[cfg(test)]
mod tests;
