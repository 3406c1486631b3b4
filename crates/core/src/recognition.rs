//! Mutual recognition of examination and test results (检查检验结果互认, domain-rules §8):
//! which items are recognised, for how long (a local choice per item, the measures set no
//! window), whether the issuing institution must have passed external quality assessment,
//! and the reasons a test may be repeated anyway. `data/recognition.toml` holds the table.

use std::collections::HashMap;
use std::sync::OnceLock;

use chrono::{NaiveDate, NaiveDateTime};
use serde::Deserialize;

use crate::booking::{invalid, Invalid};
use crate::Id;

/// A recognised item (互认项目).
#[derive(Debug, Clone, Deserialize)]
pub struct Item {
    /// LOINC code of the test, as results carry it.
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    /// `laboratory` or `imaging`.
    pub category: String,
    /// The DICOM modality of an imaging item's studies (CT, DX, US, MR, ECG).
    #[serde(default)]
    pub modality: Option<String>,
    /// Days a result stands; `None`: the table's default.
    pub window_days: Option<u32>,
    /// Whether the issuing institution must hold a passing external quality assessment
    /// of the item's category on the result's day.
    pub eqa_required: bool,
    pub source: String,
}

/// A reason a test may be repeated although a recognised result stands.
#[derive(Debug, Clone, Deserialize)]
pub struct Exception {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    /// Whether the reason needs words of its own (the physician's judgement).
    #[serde(default)]
    pub note_required: bool,
}

/// The recognition table.
#[derive(Debug, Deserialize)]
pub struct Table {
    pub default_window_days: u32,
    #[serde(rename = "item")]
    pub items: Vec<Item>,
    #[serde(rename = "exception")]
    pub exceptions: Vec<Exception>,
    #[serde(skip)]
    by_code: HashMap<String, usize>,
}

/// The table compiled from `data/recognition.toml`.
pub fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t: Table = toml::from_str(include_str!("../../../data/recognition.toml"))
            .expect("data/recognition.toml is valid");
        t.by_code = t
            .items
            .iter()
            .enumerate()
            .map(|(i, it)| (it.code.clone(), i))
            .collect();
        t
    })
}

/// A result already in the resident's record, as the check reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Prior {
    pub result_id: Id,
    pub code: String,
    pub effective: NaiveDateTime,
    /// The institution that issued it.
    pub org_id: Id,
    /// Whether that institution held a passing quality assessment of the item's
    /// category on the result's day.
    pub org_assessed: bool,
}

/// A test order that met a recognised result, as the indicators count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderFact {
    /// The ordering organisation.
    pub org_id: Id,
    pub day: NaiveDate,
    /// Whether the earlier result was used (a repeat avoided).
    pub recognised: bool,
}

impl Table {
    pub fn item(&self, code: &str) -> Option<&Item> {
        self.by_code.get(code).map(|&i| &self.items[i])
    }

    pub fn exception(&self, code: &str) -> Option<&Exception> {
        self.exceptions.iter().find(|e| e.code == code)
    }

    /// Days a result of `item` stands.
    pub fn window(&self, item: &Item) -> u32 {
        item.window_days.unwrap_or(self.default_window_days)
    }

    /// The newest result of `code` among `prior` that stands on `today` — recognised
    /// item, inside its window, from an assessed institution where the item needs one.
    pub fn standing<'a>(
        &self,
        code: &str,
        prior: &'a [Prior],
        today: NaiveDate,
    ) -> Option<&'a Prior> {
        let item = self.item(code)?;
        let window = i64::from(self.window(item));
        prior
            .iter()
            .filter(|p| p.code == code)
            .filter(|p| {
                let age = (today - p.effective.date()).num_days();
                (0..=window).contains(&age)
            })
            .filter(|p| !item.eqa_required || p.org_assessed)
            .max_by_key(|p| (p.effective, p.result_id))
    }

    /// Whether an order of `code` may go ahead given the standing result: with none it
    /// may; with one it needs an exception reason from the table (and words where the
    /// reason asks for them).
    pub fn check_order(
        &self,
        standing: Option<&Prior>,
        exception: Option<&str>,
        note: Option<&str>,
    ) -> Result<(), Invalid> {
        let Some(p) = standing else {
            if let Some(code) = exception.filter(|c| !c.is_empty()) {
                self.exception(code).ok_or_else(|| {
                    invalid("exception", format!("{code:?} is not an exception reason"))
                })?;
            }
            return Ok(());
        };
        let Some(code) = exception.filter(|c| !c.is_empty()) else {
            return Err(invalid(
                "exception",
                format!(
                    "a recognised result of {} from {} stands; use it, or give a reason to repeat the test",
                    p.code,
                    p.effective.date()
                ),
            ));
        };
        let reason = self
            .exception(code)
            .ok_or_else(|| invalid("exception", format!("{code:?} is not an exception reason")))?;
        if reason.note_required && note.is_none_or(|n| n.trim().is_empty()) {
            return Err(invalid("note", "this reason needs the physician's words"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    fn prior(id: Id, code: &str, when: &str, assessed: bool) -> Prior {
        Prior {
            result_id: id,
            code: code.into(),
            effective: at(when),
            org_id: 7,
            org_assessed: assessed,
        }
    }

    #[test]
    fn the_table_loads_with_sources_and_the_default_window() {
        let t = table();
        assert!(!t.items.is_empty());
        assert!(t.items.iter().all(|i| !i.source.is_empty()));
        assert!(t
            .items
            .iter()
            .all(|i| i.category == "laboratory" || i.category == "imaging"));
        // Every imaging item names its modality; laboratory items do not.
        assert!(t
            .items
            .iter()
            .all(|i| (i.category == "imaging") == i.modality.is_some()));
        assert!(t.items.iter().any(|i| i.category == "imaging"));
        let glucose = t.item("14771-0").unwrap();
        assert_eq!(t.window(glucose), t.default_window_days);
        assert!(t.exception("physician-judgement").unwrap().note_required);
    }

    #[test]
    fn the_newest_assessed_result_inside_its_window_stands() {
        let t = table();
        let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        // HbA1c: 90-day window.
        let p = vec![
            prior(1, "4548-4", "2026-08-01 09:00", true), // 122 days: outside
            prior(2, "4548-4", "2026-11-20 09:00", false), // not assessed
            prior(3, "4548-4", "2026-10-01 09:00", true), // 61 days: stands
            prior(4, "777-3", "2026-11-30 09:00", true),  // another item
        ];
        assert_eq!(t.standing("4548-4", &p, today).unwrap().result_id, 3);
        // Platelets: 7-day window.
        assert_eq!(t.standing("777-3", &p, today).unwrap().result_id, 4);
        let later = NaiveDate::from_ymd_opt(2026, 12, 8).unwrap();
        assert!(t.standing("777-3", &p, later).is_none());
        // Not a recognised item: nothing stands.
        assert!(t.standing("8480-6", &p, today).is_none());
    }

    #[test]
    fn repeating_a_standing_result_needs_a_listed_reason() {
        let t = table();
        let p = prior(3, "4548-4", "2026-10-01 09:00", true);
        assert_eq!(
            t.check_order(Some(&p), None, None).unwrap_err().field,
            "exception"
        );
        assert_eq!(
            t.check_order(Some(&p), Some("bored"), None)
                .unwrap_err()
                .field,
            "exception"
        );
        assert!(t
            .check_order(Some(&p), Some("condition-changed"), None)
            .is_ok());
        assert_eq!(
            t.check_order(Some(&p), Some("physician-judgement"), Some(" "))
                .unwrap_err()
                .field,
            "note"
        );
        assert!(t
            .check_order(Some(&p), Some("physician-judgement"), Some("疑似溶血"))
            .is_ok());
        assert!(t.check_order(None, None, None).is_ok());
    }
}
