//! Code tables loaded from `data/` at start-up: observation codes and the national
//! immunization schedule (domain-rules §3). The files are compiled in, parsed once.

use std::sync::OnceLock;

use chrono::{Days, Months, NaiveDate};
use serde::Deserialize;

/// One row of `data/observation-codes.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ObservationCode {
    /// LOINC code where one exists, else a `DHP-` local code.
    pub code: String,
    /// Short programme-facing key (`sbp`, `fasting_glucose`, …).
    pub key: String,
    pub name_zh: String,
    pub name_en: String,
    pub unit: String,
    /// FHIR `Observation.category` code (`vital-signs`, `laboratory`, `exam`, `survey`).
    pub category: String,
    /// UCUM code of the unit (`mm[Hg]` for mmHg).
    pub ucum: String,
    /// Plausible range; a value outside is rejected as a data-entry error.
    pub min: f64,
    pub max: f64,
    /// Reference range shown to residents, as its source words it: a value at or
    /// above `high_from` is high; at or below `low_at`, or below `low_below`, low.
    #[serde(default)]
    pub high_from: Option<f64>,
    #[serde(default)]
    pub low_at: Option<f64>,
    #[serde(default)]
    pub low_below: Option<f64>,
    /// The public source of the reference range, in each language.
    #[serde(default)]
    pub ref_source_zh: Option<String>,
    #[serde(default)]
    pub ref_source_en: Option<String>,
    /// A coded answer's words, one per value from `min` up (`0` none, `1` present).
    #[serde(default)]
    pub answers_zh: Vec<String>,
    #[serde(default)]
    pub answers_en: Vec<String>,
    /// The unit as read out, where the stored one is a UCUM annotation (`{score}`).
    #[serde(default)]
    pub shown_unit_zh: Option<String>,
    #[serde(default)]
    pub shown_unit_en: Option<String>,
}

/// A result against its reference range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    Low,
    High,
}

impl ObservationCode {
    /// `value` against the reference range (`None`: within it, or no range is known).
    pub fn flag(&self, value: f64) -> Option<Flag> {
        if self.high_from.is_some_and(|h| value >= h) {
            return Some(Flag::High);
        }
        if self.low_at.is_some_and(|l| value <= l) || self.low_below.is_some_and(|l| value < l) {
            return Some(Flag::Low);
        }
        None
    }

    /// A value as a person reads it: a coded answer's words (`有`, `规律`), else the
    /// number with its unit (`134 mmHg`, `85 分`); never a UCUM annotation.
    pub fn shown_value(&self, value: f64, zh: bool) -> String {
        let answers = if zh {
            &self.answers_zh
        } else {
            &self.answers_en
        };
        let at = value - self.min;
        if at >= 0.0 && at.fract() == 0.0 {
            if let Some(a) = answers.get(at as usize) {
                return a.clone();
            }
        }
        let unit = if zh {
            &self.shown_unit_zh
        } else {
            &self.shown_unit_en
        };
        match unit.as_deref() {
            Some(u) => format!("{value} {u}"),
            None if self.unit.starts_with('{') => value.to_string(),
            None => format!("{value} {}", self.unit),
        }
    }

    /// The reference range in words (`< 140`, `18.5–24.0`, `> 3.9 – < 7.0`), if known.
    pub fn range_text(&self) -> Option<String> {
        let low = match (self.low_at, self.low_below) {
            (Some(l), _) => Some(format!("> {l}")),
            (None, Some(l)) => Some(format!("≥ {l}")),
            _ => None,
        };
        let high = self.high_from.map(|h| format!("< {h}"));
        match (low, high) {
            (Some(l), Some(h)) => Some(format!("{l}, {h}")),
            (l, h) => l.or(h),
        }
    }
}

#[derive(Deserialize)]
struct ObservationFile {
    code: Vec<ObservationCode>,
}

/// All observation codes, in file order.
pub fn observation_codes() -> &'static [ObservationCode] {
    static CODES: OnceLock<Vec<ObservationCode>> = OnceLock::new();
    CODES.get_or_init(|| {
        let file: ObservationFile =
            toml::from_str(include_str!("../../../data/observation-codes.toml"))
                .expect("data/observation-codes.toml is valid");
        file.code
    })
}

/// Look an observation code up by its key (`sbp`) or its code (`8480-6`).
pub fn observation(key_or_code: &str) -> Option<&'static ObservationCode> {
    // The programme rules look codes up for every reading of every follow-up.
    static INDEX: OnceLock<std::collections::HashMap<&'static str, &'static ObservationCode>> =
        OnceLock::new();
    INDEX
        .get_or_init(|| {
            let mut m = std::collections::HashMap::new();
            for c in observation_codes() {
                m.insert(c.code.as_str(), c);
            }
            for c in observation_codes() {
                m.insert(c.key.as_str(), c);
            }
            m
        })
        .get(key_or_code)
        .copied()
}

/// An age or interval written `Nd`, `Nm` or `Ny` in the rule tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Span {
    Days(u32),
    Months(u32),
    Years(u32),
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Span::Days(n) => write!(f, "{n}d"),
            Span::Months(n) => write!(f, "{n}m"),
            Span::Years(n) => write!(f, "{n}y"),
        }
    }
}

impl Span {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (num, unit) = s.split_at(s.len().saturating_sub(1));
        let n: u32 = num
            .parse()
            .map_err(|_| format!("span {s:?} must be a number followed by d, m or y"))?;
        match unit {
            "d" => Ok(Span::Days(n)),
            "m" => Ok(Span::Months(n)),
            "y" => Ok(Span::Years(n)),
            _ => Err(format!("span {s:?} must end in d, m or y")),
        }
    }

    /// `date` plus this span (month ends clamp: 31 Jan + 1m = 28/29 Feb).
    pub fn after(self, date: NaiveDate) -> NaiveDate {
        match self {
            Span::Days(n) => date + Days::new(n.into()),
            Span::Months(n) => date + Months::new(n),
            Span::Years(n) => date + Months::new(n * 12),
        }
    }
}

impl TryFrom<String> for Span {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Span::parse(&value)
    }
}

/// One dose of a vaccine series.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DoseRule {
    pub number: i32,
    /// Minimum age for the dose.
    pub age: Span,
    /// Age by which the dose should be complete.
    pub by: Option<Span>,
    /// Minimum interval after the previous dose of the series (or of `interval_from`).
    pub min_interval: Option<Span>,
    /// Measure `min_interval` from the last dose of this other vaccine (DT after DTaP).
    #[serde(default)]
    pub interval_from: Option<String>,
    /// The dose is not needed once enough doses of another vaccine were given.
    #[serde(default)]
    pub skip_if: Option<SkipIf>,
}

/// A dose made unnecessary by doses of another vaccine (bOPV at 4 y after 4 IPV doses).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SkipIf {
    pub vaccine: String,
    pub at_least: usize,
}

/// A vaccine of the national schedule.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct VaccineRule {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    pub live: bool,
    pub injectable: bool,
    /// Not given at or after this age (e.g. BCG at ≥ 4 y).
    pub not_at_or_after: Option<Span>,
    /// Shown with the vaccine's due doses (a condition of the catch-up).
    #[serde(default)]
    pub note: Option<String>,
    pub doses: Vec<DoseRule>,
}

/// The immunization schedule table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ImmunizationSchedule {
    pub edition: String,
    #[serde(rename = "vaccine")]
    pub vaccines: Vec<VaccineRule>,
}

impl ImmunizationSchedule {
    pub fn vaccine(&self, code: &str) -> Option<&VaccineRule> {
        self.vaccines.iter().find(|v| v.code == code)
    }
}

/// The national schedule in force (`data/immunization-schedule.toml`).
pub fn immunization_schedule() -> &'static ImmunizationSchedule {
    static SCHEDULE: OnceLock<ImmunizationSchedule> = OnceLock::new();
    SCHEDULE.get_or_init(|| {
        toml::from_str(include_str!("../../../data/immunization-schedule.toml"))
            .expect("data/immunization-schedule.toml is valid")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_out_in_words_never_as_ucum_annotations() {
        let code = |c: &str| observation(c).unwrap();
        assert_eq!(code("DHP-SELFCARE").shown_value(85.0, true), "85 分");
        assert_eq!(code("DHP-SELFCARE").shown_value(85.0, false), "85 points");
        assert_eq!(code("DHP-DANGER-SIGNS").shown_value(1.0, true), "有");
        assert_eq!(code("DHP-ADHERENCE").shown_value(2.0, true), "间断");
        assert_eq!(code("DHP-ADHERENCE").shown_value(3.0, false), "not taking");
        assert_eq!(code("DHP-NEEDS-LEVEL").shown_value(0.0, true), "评估正常");
        assert_eq!(code("8480-6").shown_value(134.0, true), "134 mmHg");
        // Every coded answer list covers its whole range, and no unit shown is an
        // annotation.
        for c in observation_codes() {
            if !c.answers_zh.is_empty() {
                let n = (c.max - c.min) as usize + 1;
                assert_eq!(c.answers_zh.len(), n, "{}", c.code);
                assert_eq!(c.answers_en.len(), n, "{}", c.code);
            }
            for v in [c.min, c.max] {
                for zh in [true, false] {
                    assert!(!c.shown_value(v, zh).contains('{'), "{} {v}", c.code);
                }
            }
        }
    }

    #[test]
    fn observation_table_has_the_programme_codes_with_units() {
        for (key, unit) in [
            ("sbp", "mmHg"),
            ("dbp", "mmHg"),
            ("fasting_glucose", "mmol/L"),
            ("hba1c", "%"),
            ("bmi", "kg/m2"),
            ("weight", "kg"),
            ("height", "cm"),
            ("haemoglobin", "g/L"),
        ] {
            assert_eq!(
                observation(key).map(|c| c.unit.as_str()),
                Some(unit),
                "{key}"
            );
        }
        assert_eq!(observation("8480-6").unwrap().key, "sbp");
        let mut codes: Vec<_> = observation_codes().iter().map(|c| &c.code).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), observation_codes().len(), "codes are unique");
    }

    #[test]
    fn schedule_matches_domain_rules_table() {
        let s = immunization_schedule();
        let ages = |code: &str| -> Vec<Span> {
            s.vaccine(code)
                .unwrap()
                .doses
                .iter()
                .map(|d| d.age)
                .collect()
        };
        use Span::*;
        assert_eq!(ages("HepB"), [Days(0), Months(1), Months(6)]);
        assert_eq!(ages("BCG"), [Days(0)]);
        assert_eq!(ages("IPV"), [Months(2), Months(3)]);
        assert_eq!(ages("bOPV"), [Months(4), Years(4)]);
        assert_eq!(ages("DTaP"), [Months(3), Months(4), Months(5), Months(18)]);
        assert_eq!(ages("DT"), [Years(6)]);
        assert_eq!(ages("MMR"), [Months(8), Months(18)]);
        assert_eq!(ages("JE-L"), [Months(8), Years(2)]);
        assert_eq!(ages("MPSV-A"), [Months(6), Months(9)]);
        assert_eq!(ages("MPSV-AC"), [Years(3), Years(6)]);
        assert_eq!(ages("HepA-L"), [Months(18)]);
        assert_eq!(s.vaccine("BCG").unwrap().not_at_or_after, Some(Years(4)));
    }

    #[test]
    fn spans_add_calendar_units() {
        let d = NaiveDate::from_ymd_opt(2024, 1, 31).unwrap();
        assert_eq!(
            Span::parse("1m").unwrap().after(d).to_string(),
            "2024-02-29"
        );
        assert_eq!(
            Span::parse("28d").unwrap().after(d).to_string(),
            "2024-02-28"
        );
        assert_eq!(
            Span::parse("4y").unwrap().after(d).to_string(),
            "2028-01-31"
        );
        assert!(Span::parse("4w").is_err());
        assert!(Span::parse("m").is_err());
    }
}

/// A condition's name in the page's language (`zh`: Chinese) from `data/icd10-names.toml`:
/// the code's own title, else its three-character category's, else the code itself.
pub fn condition_name(icd10: &str, zh: bool) -> String {
    #[derive(serde::Deserialize)]
    struct Names {
        names: std::collections::HashMap<String, [String; 2]>,
    }
    static NAMES: OnceLock<Names> = OnceLock::new();
    let names = &NAMES
        .get_or_init(|| {
            toml::from_str(include_str!("../../../data/icd10-names.toml"))
                .expect("data/icd10-names.toml is valid")
        })
        .names;
    names
        .get(icd10)
        .or_else(|| icd10.get(..3).and_then(|c| names.get(c)))
        .map(|n| n[usize::from(!zh)].clone())
        .unwrap_or_else(|| icd10.to_string())
}

#[cfg(test)]
mod condition_name_tests {
    use super::condition_name;

    #[test]
    fn conditions_have_names_in_both_languages() {
        assert_eq!(condition_name("I10", true), "原发性高血压");
        assert_eq!(
            condition_name("E11.9", false),
            "Type 2 diabetes mellitus without complications"
        );
        // A subcode not listed takes its category's name; an unknown code shows as itself.
        assert_eq!(condition_name("E11.2", true), "2型糖尿病");
        assert_eq!(condition_name("Q99.9", true), "Q99.9");
    }
}

#[cfg(test)]
mod reference_ranges {
    use super::*;

    #[test]
    fn results_are_flagged_as_their_source_words_the_range() {
        let sbp = observation("sbp").unwrap();
        assert_eq!(sbp.flag(139.0), None);
        assert_eq!(sbp.flag(140.0), Some(Flag::High));
        let glucose = observation("fasting_glucose").unwrap();
        assert_eq!(glucose.flag(3.9), Some(Flag::Low));
        assert_eq!(glucose.flag(4.0), None);
        assert_eq!(glucose.flag(7.0), Some(Flag::High));
        let bmi = observation("bmi").unwrap();
        assert_eq!(bmi.flag(18.5), None);
        assert_eq!(bmi.flag(18.4), Some(Flag::Low));
        assert_eq!(bmi.flag(24.0), Some(Flag::High));
        assert_eq!(bmi.range_text().as_deref(), Some("≥ 18.5, < 24"));
        // Every range names its public source, in both languages.
        for c in observation_codes() {
            if c.high_from.is_some() || c.low_at.is_some() || c.low_below.is_some() {
                assert!(
                    c.ref_source_zh.is_some() && c.ref_source_en.is_some(),
                    "{}",
                    c.key
                );
            }
        }
        assert_eq!(observation("weight").unwrap().flag(500.0), None);
    }
}
