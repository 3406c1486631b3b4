//! Indicators and plan monitoring (指标与规划监测) — SPEC capability 7, domain-rules §7,
//! five-year plan Tables 1 and 2. Definitions, baselines and targets are data
//! (`data/indicators/indicators.toml`); this module parses them, names periods and org
//! units, and counts what each record adds to each indicator ([`rules`]). Every count
//! is a (numerator, denominator) pair that adds up: the value of a unit and period is
//! the sum of its records' pairs, so a write changes the totals by the difference of
//! the written record's pairs before and after.

pub mod period;
pub mod rules;
pub mod units;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

pub use period::{Period, PeriodError};
pub use rules::{resident_changes, resident_count, resident_tallies, Tally};
pub use units::Units;

/// The stored numerator and denominator of one indicator, period and org unit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Count {
    pub indicator: String,
    pub period: Period,
    pub org_id: crate::registry::Id,
    pub num: i64,
    pub den: i64,
}

/// Tallies summed by (indicator, period, unit): what a set of records adds, or what a
/// change to them moves ([`resident_changes`]).
#[derive(Debug, Clone, Default)]
pub struct Totals(rustc_hash::FxHashMap<(u16, Period, crate::registry::Id), (i64, i64)>);

impl Totals {
    pub fn add(&mut self, t: Tally) {
        let e = self.0.entry((t.indicator, t.period, t.unit)).or_default();
        e.0 += t.num;
        e.1 += t.den;
    }

    /// Both sums together.
    pub fn merge(mut self, other: Totals) -> Totals {
        if self.0.len() < other.0.len() {
            return other.merge(self);
        }
        for (k, (n, d)) in other.0 {
            let e = self.0.entry(k).or_default();
            e.0 += n;
            e.1 += d;
        }
        self
    }

    /// The non-zero sums as counts of `defs` (the indicators the tallies index), sorted.
    pub fn into_counts(self, defs: &[&Indicator]) -> Vec<Count> {
        let mut v: Vec<Count> = self
            .0
            .into_iter()
            .filter(|(_, (n, d))| *n != 0 || *d != 0)
            .map(|((i, period, org_id), (num, den))| Count {
                indicator: defs[i as usize].id.clone(),
                period,
                org_id,
                num,
                den,
            })
            .collect();
        v.sort();
        v
    }
}

/// How an indicator's value is scaled from `numerator / denominator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Percent,
    /// ‰.
    PerMille,
    #[serde(rename = "per_1000")]
    Per1000,
    #[serde(rename = "per_100000")]
    Per100000,
    /// A mean in minutes (numerator: minutes summed).
    Minutes,
    Count,
    Years,
}

impl Unit {
    pub fn scale(self) -> f64 {
        match self {
            Unit::Percent => 100.0,
            Unit::PerMille | Unit::Per1000 => 1000.0,
            Unit::Per100000 => 100_000.0,
            Unit::Minutes | Unit::Count | Unit::Years => 1.0,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Unit::Percent => "%",
            Unit::PerMille => "‰",
            Unit::Per1000 => "/1000",
            Unit::Per100000 => "/100000",
            Unit::Minutes => "min",
            Unit::Count => "",
            Unit::Years => "y",
        }
    }
}

/// Which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Higher,
    Lower,
}

/// How a period is read (see the data file's header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    AsAt,
    YearToDate,
    Period,
}

/// What an indicator is counted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    Resident,
    Resources,
    CaseReports,
    Signals,
    /// Two-way referrals (acceptance, time to acceptance, the share referred up).
    Referrals,
    /// Test orders that met a recognised result (result recognition).
    Orders,
    /// Satisfaction surveys answered after completed visits.
    Surveys,
}

/// Comparison of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = ">=")]
    AtLeast,
    #[serde(rename = "<=")]
    AtMost,
    #[serde(rename = "=")]
    Equal,
}

impl Op {
    pub fn symbol(self) -> &'static str {
        match self {
            Op::AtLeast => "≥",
            Op::AtMost => "≤",
            Op::Equal => "=",
        }
    }
}

/// A baseline figure with its source clause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    pub year: i32,
    pub value: f64,
    pub source_zh: String,
    pub source_en: String,
}

impl Figure {
    /// The source in the page's language.
    pub fn source(&self, zh: bool) -> &str {
        if zh {
            &self.source_zh
        } else {
            &self.source_en
        }
    }
}

/// A plan target with its source clause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub year: i32,
    pub op: Op,
    pub value: f64,
    pub source_zh: String,
    pub source_en: String,
}

impl Target {
    /// The source in the page's language.
    pub fn source(&self, zh: bool) -> &str {
        if zh {
            &self.source_zh
        } else {
            &self.source_en
        }
    }

    /// Whether `value` meets the target (an exact "=" target is met within 0.5%).
    pub fn met_by(&self, value: f64) -> bool {
        match self.op {
            Op::AtLeast => value >= self.value,
            Op::AtMost => value <= self.value,
            Op::Equal => (value - self.value).abs() <= self.value.abs() * 0.005,
        }
    }

    /// How far `value` is from the target, signed so that positive is short of it.
    pub fn gap(&self, value: f64) -> f64 {
        match self.op {
            Op::AtLeast | Op::Equal => self.value - value,
            Op::AtMost => value - self.value,
        }
    }
}

/// One indicator definition (指标).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Indicator {
    pub id: String,
    pub name_zh: String,
    pub name_en: String,
    #[serde(default)]
    pub numerator_zh: String,
    #[serde(default)]
    pub numerator_en: String,
    #[serde(default)]
    pub denominator_zh: String,
    #[serde(default)]
    pub denominator_en: String,
    pub unit: Unit,
    pub direction: Direction,
    pub window: Option<Window>,
    pub basis: Option<Basis>,
    /// The counting rule in [`rules`] (several indicators may share one).
    pub rule: Option<String>,
    /// For the chronic-disease rules: `hypertension` or `diabetes`.
    pub programme: Option<String>,
    #[serde(default)]
    pub params: BTreeMap<String, f64>,
    /// The public document and clause the indicator comes from, in each language.
    pub source_zh: String,
    pub source_en: String,
    pub note_zh: Option<String>,
    pub note_en: Option<String>,
    #[serde(default = "yes")]
    pub supported: bool,
    /// Why the records cannot support an unsupported indicator.
    pub reason_zh: Option<String>,
    pub reason_en: Option<String>,
    pub baseline: Option<Figure>,
    #[serde(default)]
    pub targets: Vec<Target>,
}

fn yes() -> bool {
    true
}

impl Indicator {
    /// The source in the page's language.
    pub fn source(&self, zh: bool) -> &str {
        if zh {
            &self.source_zh
        } else {
            &self.source_en
        }
    }

    /// The note, if any, in the page's language.
    pub fn note(&self, zh: bool) -> Option<&str> {
        if zh { &self.note_zh } else { &self.note_en }.as_deref()
    }

    /// Why an unsupported indicator is not counted, in the page's language.
    pub fn reason(&self, zh: bool) -> Option<&str> {
        if zh { &self.reason_zh } else { &self.reason_en }.as_deref()
    }

    /// The value of a (numerator, denominator) pair; `None` when nothing is counted.
    pub fn value(&self, num: i64, den: i64) -> Option<f64> {
        (den != 0).then(|| num as f64 * self.unit.scale() / den as f64)
    }

    /// The target of `year`, else the nearest later one, else the latest.
    pub fn target(&self, year: i32) -> Option<&Target> {
        self.targets
            .iter()
            .filter(|t| t.year >= year)
            .min_by_key(|t| t.year)
            .or_else(|| self.targets.iter().max_by_key(|t| t.year))
    }

    /// The target a period of `year` is judged against: the plan year's (or a later
    /// one's) while the plan runs, else the latest.
    pub fn plan_target(&self, year: i32) -> Option<&Target> {
        self.target(year.max(plan_year()))
    }

    /// A numeric parameter of the rule; the table is checked at load, so a missing one
    /// is a programming error.
    pub fn param(&self, name: &str) -> f64 {
        *self
            .params
            .get(name)
            .unwrap_or_else(|| panic!("indicator {}: parameter {name} missing", self.id))
    }
}

#[derive(Deserialize)]
struct File {
    plan_year: i32,
    #[serde(rename = "indicator")]
    indicators: Vec<Indicator>,
}

/// A definition table that does not hold together.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("indicator {id}: {message}")]
pub struct DefinitionError {
    pub id: String,
    pub message: String,
}

/// Parse and check a definition table.
pub fn parse(text: &str) -> Result<Vec<Indicator>, DefinitionError> {
    let file: File = toml::from_str(text).map_err(|e| DefinitionError {
        id: "(file)".into(),
        message: e.to_string(),
    })?;
    let mut seen = std::collections::BTreeSet::new();
    for ind in &file.indicators {
        let fail = |message: String| DefinitionError {
            id: ind.id.clone(),
            message,
        };
        if !seen.insert(ind.id.as_str()) {
            return Err(fail("defined twice".into()));
        }
        // What pages show is in both languages and names public documents only.
        let mut shown: Vec<(&str, &str)> =
            vec![("source_zh", &ind.source_zh), ("source_en", &ind.source_en)];
        for (field, v) in [
            ("note_zh", &ind.note_zh),
            ("note_en", &ind.note_en),
            ("reason_zh", &ind.reason_zh),
            ("reason_en", &ind.reason_en),
        ] {
            if let Some(v) = v {
                shown.push((field, v));
            }
        }
        for f in ind
            .baseline
            .iter()
            .map(|b| (&b.source_zh, &b.source_en))
            .chain(ind.targets.iter().map(|t| (&t.source_zh, &t.source_en)))
        {
            shown.push(("baseline or target source_zh", f.0));
            shown.push(("baseline or target source_en", f.1));
        }
        for (field, v) in &shown {
            if v.trim().is_empty() {
                return Err(fail(format!("{field}: missing")));
            }
            if v.contains("domain-rules") {
                return Err(fail(format!(
                    "{field}: cite the public source, not the digest"
                )));
            }
            let han = v.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
            if field.ends_with("_en") && han {
                return Err(fail(format!("{field}: Chinese in the English text")));
            }
        }
        if ind.note_zh.is_some() != ind.note_en.is_some() {
            return Err(fail("note_zh, note_en: both or neither".into()));
        }
        if !ind.supported {
            if ind.reason_zh.is_none() || ind.reason_en.is_none() {
                return Err(fail(
                    "reason_zh, reason_en: an unsupported indicator says why".into(),
                ));
            }
            continue;
        }
        let (Some(_), Some(basis), Some(rule)) = (ind.window, ind.basis, ind.rule.as_deref())
        else {
            return Err(fail("window, basis and rule are required".into()));
        };
        let needs = rules::parameters(rule, basis)
            .ok_or_else(|| fail(format!("rule: unknown rule {rule:?} for its basis")))?;
        for p in needs {
            if !ind.params.contains_key(*p) {
                return Err(fail(format!("params.{p}: missing")));
            }
        }
        if rules::needs_programme(rule) && rules::chronic_programme(ind).is_none() {
            return Err(fail("programme: hypertension or diabetes".into()));
        }
    }
    Ok(file.indicators)
}

/// The district's indicator table, compiled in and parsed once.
pub fn indicators() -> &'static [Indicator] {
    static DEFS: OnceLock<Vec<Indicator>> = OnceLock::new();
    DEFS.get_or_init(|| {
        parse(include_str!("../../../../data/indicators/indicators.toml"))
            .expect("data/indicators/indicators.toml is valid")
    })
}

/// The year of the plan's targets (`plan_year` in the definition table).
pub fn plan_year() -> i32 {
    static YEAR: OnceLock<i32> = OnceLock::new();
    *YEAR.get_or_init(|| {
        toml::from_str::<File>(include_str!("../../../../data/indicators/indicators.toml"))
            .expect("data/indicators/indicators.toml is valid")
            .plan_year
    })
}

/// The indicator `id`.
pub fn indicator(id: &str) -> Option<&'static Indicator> {
    indicators().iter().find(|i| i.id == id)
}

/// Position of `id` among the supported indicators (the index [`Tally`] uses).
pub fn supported() -> Vec<&'static Indicator> {
    indicators().iter().filter(|i| i.supported).collect()
}

#[cfg(test)]
mod tests;
