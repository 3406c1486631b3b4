//! Infectious-disease surveillance and early warning (传染病监测预警), SPEC capability 5:
//! the notifiable-disease table, case reports and their timeliness, sentinel syndromic
//! counts with missing-report findings, detection runs (domain-rules §6) and signals
//! with their verification workflow.

pub mod detect;
mod glm;
pub mod signal;

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

pub use detect::{Algorithm, Cadence, DetectError, Score, ALGORITHMS};
pub use signal::{merge_alarms, Alarm, Signal, SignalEvent, SignalStatus};

use crate::Id;

/// Reads `date,count` rows (a header line and `#` comments allowed), daily or weekly,
/// evenly spaced: the dates, the counts and the cadence, or what is wrong, naming the
/// line and the field (the series an epidemiologist scores with `dhp surveillance
/// detect`).
pub fn read_series(text: &str) -> Result<(Vec<NaiveDate>, Vec<f64>, Cadence), String> {
    let mut dates = Vec::new();
    let mut counts = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (d, c) = line
            .split_once(',')
            .ok_or_else(|| format!("line {}: expected `date,count`, got `{line}`", n + 1))?;
        let (d, c) = (d.trim(), c.trim());
        let date = match NaiveDate::parse_from_str(d, "%Y-%m-%d") {
            Ok(date) => date,
            Err(_) if dates.is_empty() && n == 0 => continue, // header
            Err(_) => return Err(format!("line {}: date: `{d}` is not YYYY-MM-DD", n + 1)),
        };
        let count: f64 = c
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| format!("line {}: count: `{c}` is not a count (0 or more)", n + 1))?;
        dates.push(date);
        counts.push(count);
    }
    if dates.len() < 2 {
        return Err("the series needs at least two rows of `date,count`".into());
    }
    let step = (dates[1] - dates[0]).num_days();
    let cadence = match step {
        1 => Cadence::Daily,
        7 => Cadence::Weekly,
        _ => {
            return Err(format!(
                "line 2: date: rows must be 1 day (daily) or 7 days (weekly) apart, got {step} days"
            ))
        }
    };
    for i in 1..dates.len() {
        if (dates[i] - dates[i - 1]).num_days() != step {
            return Err(format!(
                "date: {} follows {}: a {} series must have every {} in order, none missing",
                dates[i],
                dates[i - 1],
                if step == 1 { "daily" } else { "weekly" },
                if step == 1 { "day" } else { "week" }
            ));
        }
    }
    Ok((dates, counts, cadence))
}

/// Statutory class of a disease (传染病分类).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiseaseClass {
    /// 甲类
    A,
    /// 乙类甲管 — class B managed as class A.
    BAsA,
    /// 乙类
    B,
    /// 丙类
    C,
    /// 其他 — locally monitored or newly listed.
    Other,
}

impl DiseaseClass {
    pub fn code(self) -> &'static str {
        match self {
            DiseaseClass::A => "a",
            DiseaseClass::BAsA => "b-as-a",
            DiseaseClass::B => "b",
            DiseaseClass::C => "c",
            DiseaseClass::Other => "other",
        }
    }
    pub fn name_zh(self) -> &'static str {
        match self {
            DiseaseClass::A => "甲类",
            DiseaseClass::BAsA => "乙类甲管",
            DiseaseClass::B => "乙类",
            DiseaseClass::C => "丙类",
            DiseaseClass::Other => "其他",
        }
    }
}

/// Which date a case counts on in the detection series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DateBasis {
    Onset,
    Report,
}

/// A detector as configured in the table: name and parameters as text.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct DetectorSpec {
    pub algorithm: String,
    #[serde(flatten)]
    pub params: BTreeMap<String, String>,
}

impl DetectorSpec {
    /// The configured detector (parameters checked by [`Algorithm::configure`]).
    pub fn build(&self) -> Result<Algorithm, DetectError> {
        let alpha = self.params.get("alpha").and_then(|a| a.parse().ok());
        let params: Vec<(String, String)> = self
            .params
            .iter()
            .filter(|(k, _)| k.as_str() != "alpha")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Algorithm::configure(&self.algorithm, alpha, &params)
    }
}

/// A notifiable disease (法定传染病) from `data/notifiable-diseases.toml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Disease {
    pub code: String,
    #[serde(default)]
    pub icd10: Option<String>,
    pub name_zh: String,
    pub name_en: String,
    pub class: DiseaseClass,
    /// One case signals at once (CIDARS fixed threshold).
    #[serde(default)]
    pub fixed: bool,
    #[serde(default)]
    limit_hours: Option<i64>,
    #[serde(default)]
    detection: Option<Vec<DetectorSpec>>,
    #[serde(default)]
    aggregate_by: Option<DateBasis>,
}

impl Disease {
    /// Reporting time limit in hours: class A and A-managed 2 h, others 24 h.
    pub fn limit_hours(&self) -> i64 {
        self.limit_hours.unwrap_or(match self.class {
            DiseaseClass::A | DiseaseClass::BAsA => 2,
            _ => 24,
        })
    }

    /// The detectors this disease runs: the fixed threshold for single-case diseases,
    /// else its own list or the table's default.
    pub fn detectors(&self) -> Vec<Algorithm> {
        if self.fixed {
            return vec![Algorithm::configure("fixed", None, &[]).expect("fixed is valid")];
        }
        self.detection
            .as_ref()
            .unwrap_or(&table().defaults.detection)
            .iter()
            .map(|s| {
                s.build()
                    .expect("detectors in the table are checked at load")
            })
            .collect()
    }

    pub fn aggregate_by(&self) -> DateBasis {
        self.aggregate_by.unwrap_or(table().defaults.aggregate_by)
    }
}

/// A sentinel syndrome (症候群).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Syndrome {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
}

#[derive(Debug, Deserialize)]
struct Defaults {
    aggregate_by: DateBasis,
    detection: Vec<DetectorSpec>,
    merge_days: i64,
}

/// Sentinel reporting settings.
#[derive(Debug, Clone, Deserialize)]
pub struct SentinelRules {
    pub detection: Vec<DetectorSpec>,
    pub missing_after_days: i64,
}

#[derive(Debug, Deserialize)]
struct Table {
    defaults: Defaults,
    syndrome: Vec<Syndrome>,
    sentinel: SentinelRules,
    disease: Vec<Disease>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let t: Table = toml::from_str(include_str!("../../../../data/notifiable-diseases.toml"))
            .expect("data/notifiable-diseases.toml is valid");
        for d in &t.disease {
            for s in d.detection.iter().flatten() {
                s.build()
                    .unwrap_or_else(|e| panic!("notifiable-diseases.toml, {}: {e}", d.code));
            }
        }
        t
    })
}

/// Every disease of the table, in file order.
pub fn diseases() -> &'static [Disease] {
    &table().disease
}

/// A disease by its code (`hfmd`) or ICD-10 code (`B08.4`).
pub fn disease(code: &str) -> Option<&'static Disease> {
    static INDEX: OnceLock<HashMap<String, &'static Disease>> = OnceLock::new();
    INDEX
        .get_or_init(|| {
            let mut m = HashMap::new();
            for d in diseases() {
                m.insert(d.code.clone(), d);
                if let Some(icd) = &d.icd10 {
                    m.insert(icd.clone(), d);
                }
            }
            m
        })
        .get(code)
        .copied()
}

pub fn syndromes() -> &'static [Syndrome] {
    &table().syndrome
}

pub fn syndrome(code: &str) -> Option<&'static Syndrome> {
    syndromes().iter().find(|s| s.code == code)
}

pub fn sentinel_rules() -> &'static SentinelRules {
    &table().sentinel
}

/// Signals of one disease and area closer than this many days are one signal.
pub fn merge_days() -> i64 {
    table().defaults.merge_days
}

/// Diagnostic status of a case report (诊断类型).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseStatus {
    /// 疑似病例
    Suspected,
    /// 临床诊断病例
    Clinical,
    /// 确诊病例
    Confirmed,
    /// 排除病例 — no longer counted.
    Excluded,
}

impl CaseStatus {
    pub fn code(self) -> &'static str {
        match self {
            CaseStatus::Suspected => "suspected",
            CaseStatus::Clinical => "clinical",
            CaseStatus::Confirmed => "confirmed",
            CaseStatus::Excluded => "excluded",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "suspected" => CaseStatus::Suspected,
            "clinical" => CaseStatus::Clinical,
            "confirmed" => CaseStatus::Confirmed,
            "excluded" => CaseStatus::Excluded,
            _ => return None,
        })
    }
}

/// A notifiable-disease case report (传染病报告卡).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseReport {
    pub id: Id,
    pub disease: String,
    pub resident_id: Option<Id>,
    /// Code of the reporting organisation.
    pub reporting_org: String,
    /// Code of the street or town of the patient's current address.
    pub street: String,
    pub status: CaseStatus,
    pub onset_date: NaiveDate,
    pub diagnosed_at: NaiveDateTime,
    pub reported_at: NaiveDateTime,
}

/// How quickly a report followed the diagnosis (报告及时性).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Timeliness {
    pub hours: f64,
    pub limit_hours: i64,
    pub on_time: bool,
}

/// Timeliness of a report: class A and A-managed within 2 h, others within 24 h.
pub fn timeliness(
    d: &Disease,
    diagnosed_at: NaiveDateTime,
    reported_at: NaiveDateTime,
) -> Timeliness {
    let minutes = (reported_at - diagnosed_at).num_minutes();
    let limit = d.limit_hours();
    Timeliness {
        hours: minutes as f64 / 60.0,
        limit_hours: limit,
        on_time: minutes <= limit * 60,
    }
}

/// A case report failed a check; `field` names the part at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct CaseReportError {
    pub field: &'static str,
    pub message: String,
}

fn bad(field: &'static str, message: impl Into<String>) -> CaseReportError {
    CaseReportError {
        field,
        message: message.into(),
    }
}

/// Checks a case report's own fields (the edge checks that codes exist).
pub fn check_case_report(r: &CaseReport) -> Result<&'static Disease, CaseReportError> {
    let d = disease(&r.disease).ok_or_else(|| {
        bad(
            "disease",
            format!("`{}` is not a notifiable disease code", r.disease),
        )
    })?;
    if r.onset_date > r.diagnosed_at.date() {
        return Err(bad("onset_date", "onset is after the diagnosis"));
    }
    if r.reported_at < r.diagnosed_at {
        return Err(bad(
            "reported_at",
            "the report is earlier than the diagnosis",
        ));
    }
    if r.street.trim().is_empty() {
        return Err(bad(
            "street",
            "the street or town of the address is required",
        ));
    }
    if r.reporting_org.trim().is_empty() {
        return Err(bad(
            "reporting_org",
            "the reporting organisation is required",
        ));
    }
    Ok(d)
}

/// An outbreak the synthetic district injected (ground truth for evaluation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InjectedOutbreak {
    pub id: Id,
    pub disease: String,
    pub street: String,
    pub start_day: NaiveDate,
    pub days: i64,
    pub cases: i64,
    /// `point` (common source: cases bunched after the start) or `propagated`
    /// (person to person: cases rising over the days).
    pub shape: String,
}

/// Cases of one disease in one street on one day (by onset or report date).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseCount {
    pub disease: String,
    pub street: String,
    pub day: NaiveDate,
    pub count: i64,
}

/// A site's day of syndromic counts; a zero is a report, a missing row is not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentinelReport {
    pub site: String,
    pub date: NaiveDate,
    pub syndrome: String,
    pub count: i64,
}

/// "Site X has not reported for N days."
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MissingReport {
    pub site: String,
    pub days: i64,
    pub last_report: Option<NaiveDate>,
}

/// Sites whose last report (zero reports count) is `missing_after_days` or more days
/// before `today`'s expected report, oldest silence first.
pub fn missing_reports(
    sites: &[String],
    last_report: &HashMap<String, NaiveDate>,
    today: NaiveDate,
    since: NaiveDate,
) -> Vec<MissingReport> {
    let after = sentinel_rules().missing_after_days;
    let mut out: Vec<MissingReport> = sites
        .iter()
        .filter_map(|s| {
            let last = last_report.get(s).copied();
            // Days of today and before with no report, counted from the later of the
            // last report and the start of reporting.
            let from = last.map(|d| d + chrono::Days::new(1)).unwrap_or(since);
            let days = (today - from).num_days() + 1;
            (days >= after).then(|| MissingReport {
                site: s.clone(),
                days,
                last_report: last,
            })
        })
        .collect();
    out.sort_by(|a, b| b.days.cmp(&a.days).then(a.site.cmp(&b.site)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn table_loads_with_classes_and_limits() {
        assert!(diseases().len() >= 40);
        let cholera = disease("cholera").unwrap();
        assert_eq!(cholera.class, DiseaseClass::A);
        assert_eq!(cholera.limit_hours(), 2);
        assert_eq!(disease("U04").unwrap().limit_hours(), 2); // SARS, B managed as A
        assert_eq!(disease("hfmd").unwrap().limit_hours(), 24);
        assert_eq!(disease("B08.4").unwrap().code, "hfmd");
        // domain-rules §6 fixed-threshold list.
        for code in [
            "plague",
            "cholera",
            "sars",
            "polio",
            "hpai",
            "anthrax-pulmonary",
            "diphtheria",
            "filariasis",
            "unexplained-pneumonia",
            "h7n9",
            "ebola",
            "mers",
        ] {
            let d = disease(code).unwrap();
            assert!(d.fixed, "{code}");
            assert_eq!(d.detectors()[0].name(), "fixed");
        }
        // Published local percentiles.
        for (code, p) in [
            ("chickenpox", 75.0),
            ("mumps", 80.0),
            ("hfmd", 75.0),
            ("rubella", 45.0),
            ("tb", 80.0),
        ] {
            match &disease(code).unwrap().detectors()[0] {
                Algorithm::Mpm(m) => assert_eq!(m.percentile, p, "{code}"),
                other => panic!("{code}: {other}"),
            }
        }
        assert!(sentinel_rules().detection[0].build().is_ok());
    }

    #[test]
    fn timeliness_edges() {
        let a = disease("cholera").unwrap();
        let c = disease("hfmd").unwrap();
        let d = at("2026-06-01 08:00");
        assert!(timeliness(a, d, at("2026-06-01 10:00")).on_time);
        assert!(!timeliness(a, d, at("2026-06-01 10:01")).on_time);
        assert!(timeliness(c, d, at("2026-06-02 08:00")).on_time);
        assert!(!timeliness(c, d, at("2026-06-02 08:01")).on_time);
        assert_eq!(timeliness(c, d, at("2026-06-01 09:30")).hours, 1.5);
    }

    #[test]
    fn case_report_checks_name_the_field() {
        let ok = CaseReport {
            id: 1,
            disease: "hfmd".into(),
            resident_id: None,
            reporting_org: "H1".into(),
            street: "S1".into(),
            status: CaseStatus::Clinical,
            onset_date: NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(),
            diagnosed_at: at("2026-06-02 09:00"),
            reported_at: at("2026-06-02 12:00"),
        };
        assert!(check_case_report(&ok).is_ok());
        let mut r = ok.clone();
        r.disease = "flu-x".into();
        assert_eq!(check_case_report(&r).unwrap_err().field, "disease");
        let mut r = ok.clone();
        r.onset_date = NaiveDate::from_ymd_opt(2026, 6, 3).unwrap();
        assert_eq!(check_case_report(&r).unwrap_err().field, "onset_date");
        let mut r = ok.clone();
        r.reported_at = at("2026-06-02 08:00");
        assert_eq!(check_case_report(&r).unwrap_err().field, "reported_at");
    }

    #[test]
    fn silent_sites_are_findings() {
        let day = |d| NaiveDate::from_ymd_opt(2026, 6, d).unwrap();
        let sites = vec!["A".to_string(), "B".to_string(), "C".to_string()];
        let mut last = HashMap::new();
        last.insert("A".to_string(), day(10)); // reported today (a zero report counts)
        last.insert("B".to_string(), day(8)); // silent on the 9th and 10th
        let missing = missing_reports(&sites, &last, day(10), day(1));
        assert_eq!(missing.len(), 2);
        assert_eq!(missing[0].site, "C"); // never reported since the 1st: 10 days
        assert_eq!(missing[0].days, 10);
        assert_eq!(missing[1].site, "B");
        assert_eq!(missing[1].days, 2);
    }
}
