//! Search parameters of `GET /fhir/Patient?…`: parsed, checked, and reported when
//! unknown (unless the client asked for lenient handling).

use chrono::{Datelike, Months, NaiveDate};
use dhp_core::Sex;

use crate::outcome::{Issue, IssueCode};
use crate::RESIDENT_ID_SYSTEM;

pub const DEFAULT_COUNT: i64 = 20;
pub const MAX_COUNT: i64 = 200;

/// The parameters `GET /fhir/Patient` understands (also listed in the
/// CapabilityStatement).
pub const PATIENT_PARAMS: &[(&str, &str)] = &[
    ("_id", "token"),
    ("identifier", "token"),
    ("name", "string"),
    ("family", "string"),
    ("given", "string"),
    ("gender", "token"),
    ("birthdate", "date"),
];

/// A date comparison (FHIR prefixes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

/// What a Patient search asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientSearch {
    pub id: Option<i64>,
    /// An `_id` that cannot be a resident id: the search matches nothing.
    pub impossible: bool,
    pub identifier: Option<String>,
    pub name: Option<String>,
    pub family: Option<String>,
    pub given: Option<String>,
    pub gender: Option<Sex>,
    /// Conditions on the birth date, all of which must hold.
    pub birthdate: Vec<(Prefix, NaiveDate)>,
    pub count: i64,
    pub offset: i64,
    /// `_summary=count`: the total only.
    pub summary_count: bool,
}

impl Default for PatientSearch {
    fn default() -> Self {
        Self {
            id: None,
            impossible: false,
            identifier: None,
            name: None,
            family: None,
            given: None,
            gender: None,
            birthdate: Vec::new(),
            count: DEFAULT_COUNT,
            offset: 0,
            summary_count: false,
        }
    }
}

/// A `birthdate` value: a prefix, then `YYYY`, `YYYY-MM` or `YYYY-MM-DD`. A partial date
/// stands for its whole span, so `eq1950` means any day of 1950.
fn date_conditions(raw: &str) -> Result<Vec<(Prefix, NaiveDate)>, String> {
    let (prefix, text) = match raw.get(..2) {
        Some("eq") => (Prefix::Eq, &raw[2..]),
        Some("ne") => (Prefix::Ne, &raw[2..]),
        Some("lt") => (Prefix::Lt, &raw[2..]),
        Some("gt") => (Prefix::Gt, &raw[2..]),
        Some("le") => (Prefix::Le, &raw[2..]),
        Some("ge") => (Prefix::Ge, &raw[2..]),
        Some(p) if p.chars().all(|c| c.is_ascii_alphabetic()) => {
            return Err(format!("prefix {p:?} is not one of eq, ne, lt, gt, le, ge"))
        }
        _ => (Prefix::Eq, raw),
    };
    let bad = || format!("{text:?} is not a date (YYYY, YYYY-MM or YYYY-MM-DD)");
    let parts: Vec<&str> = text.split('-').collect();
    let num = |s: &str, len: usize| (s.len() == len).then(|| s.parse::<u32>().ok()).flatten();
    let (start, months) = match parts.as_slice() {
        [y] => (
            NaiveDate::from_ymd_opt(num(y, 4).ok_or_else(bad)? as i32, 1, 1),
            Some(12),
        ),
        [y, m] => (
            NaiveDate::from_ymd_opt(
                num(y, 4).ok_or_else(bad)? as i32,
                num(m, 2).ok_or_else(bad)?,
                1,
            ),
            Some(1),
        ),
        [y, m, d] => (
            NaiveDate::from_ymd_opt(
                num(y, 4).ok_or_else(bad)? as i32,
                num(m, 2).ok_or_else(bad)?,
                num(d, 2).ok_or_else(bad)?,
            ),
            None,
        ),
        _ => return Err(bad()),
    };
    let start = start.ok_or_else(bad)?;
    let Some(months) = months else {
        return Ok(vec![(prefix, start)]);
    };
    // The span [start, end) of a partial date.
    let end = start + Months::new(months);
    Ok(match prefix {
        Prefix::Eq => vec![(Prefix::Ge, start), (Prefix::Lt, end)],
        Prefix::Lt => vec![(Prefix::Lt, start)],
        Prefix::Ge => vec![(Prefix::Ge, start)],
        Prefix::Gt | Prefix::Le => vec![(
            if prefix == Prefix::Gt {
                Prefix::Ge
            } else {
                Prefix::Lt
            },
            end,
        )],
        Prefix::Ne => {
            return Err(format!(
                "ne with a partial date ({}) is not supported; give a full date",
                start.year()
            ))
        }
    })
}

/// Parse the query of a Patient search. `lenient`: unknown parameters are ignored
/// instead of reported (`Prefer: handling=lenient`).
pub fn parse_patient_search(
    pairs: &[(String, String)],
    lenient: bool,
) -> Result<PatientSearch, Vec<Issue>> {
    let mut q = PatientSearch::default();
    let mut issues = Vec::new();
    for (key, value) in pairs {
        let at = |what: String| Issue::at(IssueCode::Invalid, format!("Patient?{key}"), what);
        let text = || (!value.trim().is_empty()).then(|| value.trim().to_string());
        match key.as_str() {
            "_id" => match value.parse::<i64>() {
                Ok(id) => q.id = Some(id),
                Err(_) => q.impossible = true,
            },
            "identifier" => {
                let (system, v) = match value.split_once('|') {
                    Some((s, v)) => (Some(s), v),
                    None => (None, value.as_str()),
                };
                match system {
                    Some(s) if !s.is_empty() && s != RESIDENT_ID_SYSTEM => {
                        issues.push(at(format!(
                            "identifier system {s:?} is not searchable; use {RESIDENT_ID_SYSTEM}"
                        )))
                    }
                    _ => q.identifier = Some(v.trim().to_uppercase()),
                }
            }
            "name" => q.name = text(),
            "family" => q.family = text(),
            "given" => q.given = text(),
            "gender" => match value.as_str() {
                "male" => q.gender = Some(Sex::Male),
                "female" => q.gender = Some(Sex::Female),
                other => issues.push(at(format!(
                    "{other:?} is not a gender of this registry (male or female)"
                ))),
            },
            "birthdate" => match date_conditions(value) {
                Ok(c) => q.birthdate.extend(c),
                Err(e) => issues.push(at(e)),
            },
            "_count" => match value.parse::<i64>() {
                Ok(n) if (0..=MAX_COUNT).contains(&n) => q.count = n,
                _ => issues.push(at(format!("must be a whole number from 0 to {MAX_COUNT}"))),
            },
            "_offset" => match value.parse::<i64>() {
                Ok(n) if n >= 0 => q.offset = n,
                _ => issues.push(at("must be a whole number from 0".into())),
            },
            "_summary" => match value.as_str() {
                "count" => q.summary_count = true,
                "false" => {}
                other => issues.push(Issue::at(
                    IssueCode::NotSupported,
                    format!("Patient?{key}"),
                    format!("_summary={other} is not supported (count, false)"),
                )),
            },
            "_format" if value.contains("json") => {}
            _ if lenient => {}
            _ => issues.push(Issue::at(
                IssueCode::NotSupported,
                format!("Patient?{key}"),
                format!(
                    "unknown search parameter {key:?}; Patient supports {}",
                    param_names()
                ),
            )),
        }
    }
    if issues.is_empty() {
        Ok(q)
    } else {
        Err(issues)
    }
}

fn param_names() -> String {
    let mut names: Vec<&str> = PATIENT_PARAMS.iter().map(|(n, _)| *n).collect();
    names.extend(["_count", "_offset", "_summary"]);
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Result<PatientSearch, Vec<Issue>> {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse_patient_search(&owned, false)
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn date_prefixes_and_partial_dates() {
        use Prefix::*;
        let b = |v: &str| q(&[("birthdate", v)]).unwrap().birthdate;
        assert_eq!(b("1950-03-01"), vec![(Eq, d("1950-03-01"))]);
        assert_eq!(b("ge1950-03-01"), vec![(Ge, d("1950-03-01"))]);
        assert_eq!(b("ne1950-03-01"), vec![(Ne, d("1950-03-01"))]);
        assert_eq!(
            b("1950"),
            vec![(Ge, d("1950-01-01")), (Lt, d("1951-01-01"))]
        );
        assert_eq!(
            b("eq1950-02"),
            vec![(Ge, d("1950-02-01")), (Lt, d("1950-03-01"))]
        );
        assert_eq!(b("lt1950"), vec![(Lt, d("1950-01-01"))]);
        assert_eq!(b("gt1950"), vec![(Ge, d("1951-01-01"))]);
        assert_eq!(b("le1950-12"), vec![(Lt, d("1951-01-01"))]);
        assert!(q(&[("birthdate", "sa1950")]).is_err());
        assert!(q(&[("birthdate", "1950-13-01")]).is_err());
        assert!(q(&[("birthdate", "ne1950")]).is_err());
    }

    #[test]
    fn tokens_strings_and_paging() {
        let s = q(&[
            (
                "identifier",
                &format!("{RESIDENT_ID_SYSTEM}|11010519491231002x"),
            ),
            ("name", "王"),
            ("gender", "female"),
            ("_count", "5"),
            ("_offset", "10"),
        ])
        .unwrap();
        assert_eq!(s.identifier.as_deref(), Some("11010519491231002X"));
        assert_eq!(s.name.as_deref(), Some("王"));
        assert_eq!(s.gender, Some(Sex::Female));
        assert_eq!((s.count, s.offset), (5, 10));
        assert!(q(&[("_id", "abc")]).unwrap().impossible);
        assert!(q(&[("_summary", "count")]).unwrap().summary_count);
    }

    #[test]
    fn unknown_and_bad_parameters_are_reported_with_their_name() {
        let issues = q(&[("colour", "red"), ("gender", "x"), ("_count", "5000")]).unwrap_err();
        let paths: Vec<_> = issues
            .iter()
            .map(|i| i.expression.clone().unwrap())
            .collect();
        assert_eq!(
            paths,
            ["Patient?colour", "Patient?gender", "Patient?_count"]
        );
        assert_eq!(issues[0].code, IssueCode::NotSupported);
        assert!(issues[0].diagnostics.contains("unknown search parameter"));
        let owned = vec![("colour".to_string(), "red".to_string())];
        assert!(
            parse_patient_search(&owned, true).is_ok(),
            "lenient ignores unknown parameters"
        );
        assert!(q(&[("identifier", "http://other|1")]).is_err());
    }
}
