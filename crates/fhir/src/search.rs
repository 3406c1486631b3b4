//! Search parameters of `GET /fhir/Patient?…`: parsed, checked, and reported when
//! unknown (unless the client asked for lenient handling).

use chrono::{Datelike, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta};
use dhp_core::query::{DateCond, Field, Filter};
use dhp_core::Sex;

use crate::outcome::{Issue, IssueCode};
use crate::RESIDENT_ID_SYSTEM;

mod params;
pub use params::*;

pub const DEFAULT_COUNT: i64 = 20;
pub const MAX_COUNT: i64 = 200;
/// The largest `_offset` (a page beyond every record a district holds; larger ones are
/// refused rather than left to overflow the next link).
pub const MAX_OFFSET: i64 = 1_000_000_000;

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
    ("address", "string"),
    ("organization", "reference"),
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
    /// The household address contains this.
    pub address: Option<String>,
    /// `organization`: the street or town (managing organisation) is one of these.
    pub organization: Option<Vec<i64>>,
    /// `_lastUpdated`, in UTC.
    pub last_updated: Vec<DateCond>,
    pub sort: Vec<(Field, bool)>,
    pub include: Vec<Link>,
    pub revinclude: Vec<Link>,
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
            address: None,
            organization: None,
            last_updated: Vec::new(),
            sort: Vec::new(),
            include: Vec::new(),
            revinclude: Vec::new(),
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

/// A search value with a control character (a NUL byte ends a pattern early in some
/// databases, so it would match every row): refused, naming the parameter.
fn control_character(kind: &str, key: &str, value: &str) -> Option<Issue> {
    (key.chars().chain(value.chars()).any(char::is_control)).then(|| {
        Issue::at(
            IssueCode::Invalid,
            format!("{kind}?{key}"),
            "contains a control character",
        )
    })
}

/// Parse the query of a Patient search. `lenient`: unknown parameters are ignored
/// instead of reported (`Prefer: handling=lenient`).
pub fn parse_patient_search(
    pairs: &[(String, String)],
    lenient: bool,
) -> Result<PatientSearch, Vec<Issue>> {
    let mut q = PatientSearch::default();
    let mut common = Common::default();
    let mut issues = Vec::new();
    for (key, value) in pairs {
        let at = |what: String| Issue::at(IssueCode::Invalid, format!("Patient?{key}"), what);
        if let Some(issue) = control_character("Patient", key, value) {
            issues.push(issue);
            continue;
        }
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
            "address" => q.address = text(),
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
            "organization" => match references(value, "Organization") {
                Ok(ids) => q.organization = Some(intersect(q.organization.take(), ids)),
                Err(e) => issues.push(at(e)),
            },
            _ => {
                if let Err(issue) = common.take("Patient", key, value, lenient) {
                    issues.push(issue);
                }
            }
        }
    }
    q.count = common.count;
    q.offset = common.offset;
    q.summary_count = common.summary_count;
    q.last_updated = common.last_updated;
    q.sort = common.sort;
    q.include = common.include;
    q.revinclude = common.revinclude;
    if issues.is_empty() {
        Ok(q)
    } else {
        Err(issues)
    }
}

/// `Type:param` of an `_include` (source must be `kind`) or `_revinclude` (target
/// must be `kind`).
fn link(kind: &str, value: &str, reverse: bool) -> Result<Link, String> {
    let (source, param) = value
        .split_once(':')
        .ok_or_else(|| format!("{value:?} is not Type:parameter"))?;
    if param.contains(':') {
        return Err(format!(
            "{value:?}: a target type or :iterate is not supported; give Type:parameter"
        ));
    }
    let source = std::iter::once("Patient")
        .chain(RECORD_TYPES)
        .find(|t| *t == source)
        .ok_or_else(|| format!("{source:?} is not a resource type this server searches"))?;
    let found = links_from(source)
        .into_iter()
        .find(|l| l.param == param)
        .ok_or_else(|| format!("{source} has no reference parameter {param:?}"))?;
    if !reverse && found.source != kind {
        return Err(format!(
            "_include of a {kind} search must start with {kind}:"
        ));
    }
    if reverse && found.target != kind {
        return Err(format!("{value} does not refer to {kind}"));
    }
    Ok(found)
}

/// The ids in a reference value, comma-separated: `Patient/12`, `12`, or an absolute
/// URL ending in `Patient/12`. Ids that cannot exist here (not numbers) are left out,
/// so they match nothing.
fn references(value: &str, target: &str) -> Result<Vec<i64>, String> {
    Ok(typed_references(value, target)?
        .into_iter()
        .map(|(_, id)| id)
        .collect())
}

/// The same with the type of each: `target` may list several (`Organization|Practitioner`);
/// a bare id is of the first.
fn typed_references(value: &str, target: &str) -> Result<Vec<(String, i64)>, String> {
    let mut ids = Vec::new();
    for one in value.split(',') {
        let one = one.trim();
        let mut parts = one.rsplit('/');
        let id = parts.next().unwrap_or_default();
        let kind = match parts.next() {
            Some(t) if target.split('|').any(|x| x == t) => t,
            Some(_) => {
                return Err(format!(
                    "{one:?} is not a reference to {}",
                    target.replace('|', " or ")
                ))
            }
            None => target.split('|').next().unwrap_or(target),
        };
        if let Ok(n) = id.parse::<i64>() {
            ids.push((kind.to_string(), n));
        }
    }
    Ok(ids)
}

/// Repeated parameters must all hold: their id sets intersect.
fn intersect(before: Option<Vec<i64>>, now: Vec<i64>) -> Vec<i64> {
    match before {
        None => now,
        Some(b) => b.into_iter().filter(|i| now.contains(i)).collect(),
    }
}

/// A date or date-time search value as the span `[start, end)` it stands for, in
/// Shanghai local time: `2025`, `2025-03`, `2025-03-01`, `2025-03-01T08:30`,
/// `2025-03-01T08:30:00`, with `Z` or `±hh:mm` converted.
fn date_span(text: &str) -> Result<(NaiveDateTime, NaiveDateTime), String> {
    let bad = || {
        format!("{text:?} is not a date (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss][zone])")
    };
    if let Some((day, time)) = text.split_once('T') {
        let date = NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| bad())?;
        let (clock, offset) = match time.find(['Z', '+', '-']) {
            Some(i) => (&time[..i], Some(&time[i..])),
            None => (time, None),
        };
        let (t, step) = match clock.len() {
            5 => (
                chrono::NaiveTime::parse_from_str(clock, "%H:%M").map_err(|_| bad())?,
                TimeDelta::minutes(1),
            ),
            _ => (
                chrono::NaiveTime::parse_from_str(clock, "%H:%M:%S%.f").map_err(|_| bad())?,
                TimeDelta::seconds(1),
            ),
        };
        let mut start = date.and_time(t);
        if let Some(o) = offset {
            let minutes = if o == "Z" {
                0
            } else {
                let sign = if o.starts_with('-') { -1 } else { 1 };
                let (h, m) = o[1..].split_once(':').ok_or_else(bad)?;
                if h.len() != 2 || m.len() != 2 {
                    return Err(bad());
                }
                let h: i64 = h.parse().map_err(|_| bad())?;
                let m: i64 = m.parse().map_err(|_| bad())?;
                let minutes = sign * (h * 60 + m);
                // Offsets in use run from −12:00 to +14:00.
                if m >= 60 || !(-12 * 60..=14 * 60).contains(&minutes) {
                    return Err(format!(
                        "{text:?}: the time-zone offset {o} is outside −12:00 … +14:00"
                    ));
                }
                minutes
            };
            // To UTC, then to Shanghai (UTC+8, no summer time).
            start = start - TimeDelta::minutes(minutes) + TimeDelta::hours(8);
        }
        return Ok((start, start + step));
    }
    let conds = date_conditions(text)?;
    let start = conds
        .iter()
        .find(|(p, _)| matches!(p, Prefix::Eq | Prefix::Ge))
        .map(|(_, d)| *d)
        .ok_or_else(bad)?;
    let end = conds
        .iter()
        .find(|(p, _)| *p == Prefix::Lt)
        .map(|(_, d)| *d)
        .unwrap_or(start + TimeDelta::days(1));
    Ok((start.and_time(NaiveTime::MIN), end.and_time(NaiveTime::MIN)))
}

/// A date search value with its prefix as conditions on a point in time. `utc`: the
/// field is kept in UTC (last-updated times), so the span is moved from Shanghai time.
pub(crate) fn date_conds(raw: &str, utc: bool) -> Result<Vec<DateCond>, String> {
    let (prefix, text) = match raw.get(..2) {
        Some(p) if p.chars().all(|c| c.is_ascii_alphabetic()) => (p, &raw[2..]),
        _ => ("eq", raw),
    };
    let (mut a, mut b) = date_span(text)?;
    if utc {
        a -= TimeDelta::hours(8);
        b -= TimeDelta::hours(8);
    }
    Ok(match prefix {
        "eq" => vec![DateCond::Ge(a), DateCond::Lt(b)],
        "ne" => vec![DateCond::Outside(a, b)],
        "lt" => vec![DateCond::Lt(a)],
        "le" => vec![DateCond::Lt(b)],
        "gt" => vec![DateCond::Ge(b)],
        "ge" => vec![DateCond::Ge(a)],
        p => return Err(format!("prefix {p:?} is not one of eq, ne, lt, gt, le, ge")),
    })
}

/// A date search value with its prefix as conditions on an instant kept in UTC (an
/// audit entry's `recorded`), the value read in Shanghai time unless it names a zone.
pub fn instant_conditions(raw: &str) -> Result<Vec<DateCond>, String> {
    date_conds(raw, true)
}

/// The parameters every search takes.
#[derive(Debug, Clone, PartialEq)]
struct Common {
    count: i64,
    offset: i64,
    summary_count: bool,
    last_updated: Vec<DateCond>,
    sort: Vec<(Field, bool)>,
    include: Vec<Link>,
    revinclude: Vec<Link>,
}

impl Default for Common {
    fn default() -> Self {
        Self {
            count: DEFAULT_COUNT,
            offset: 0,
            summary_count: false,
            last_updated: Vec::new(),
            sort: Vec::new(),
            include: Vec::new(),
            revinclude: Vec::new(),
        }
    }
}

impl Common {
    /// Read one of the common parameters; anything else is unknown.
    fn take(
        &mut self,
        kind: &'static str,
        key: &str,
        value: &str,
        lenient: bool,
    ) -> Result<(), Issue> {
        let at = |what: String| Issue::at(IssueCode::Invalid, format!("{kind}?{key}"), what);
        match key {
            "_count" => match value.parse::<i64>() {
                Ok(n) if (0..=MAX_COUNT).contains(&n) => self.count = n,
                _ => return Err(at(format!("must be a whole number from 0 to {MAX_COUNT}"))),
            },
            "_offset" => match value.parse::<i64>() {
                Ok(n) if (0..=MAX_OFFSET).contains(&n) => self.offset = n,
                _ => return Err(at(format!("must be a whole number from 0 to {MAX_OFFSET}"))),
            },
            "_summary" => match value {
                "count" => self.summary_count = true,
                "false" => {}
                other => {
                    return Err(Issue::at(
                        IssueCode::NotSupported,
                        format!("{kind}?{key}"),
                        format!("_summary={other} is not supported (count, false)"),
                    ))
                }
            },
            "_lastUpdated" => self
                .last_updated
                .extend(date_conds(value, true).map_err(at)?),
            "_sort" => {
                let keys = sort_keys(kind);
                for one in value.split(',') {
                    let (name, descending) = match one.strip_prefix('-') {
                        Some(n) => (n, true),
                        None => (one, false),
                    };
                    let field = keys
                        .iter()
                        .find(|(k, _)| *k == name)
                        .map(|(_, f)| *f)
                        .ok_or_else(|| {
                            let names: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
                            at(format!(
                                "{kind} cannot be sorted by {name:?}; use {}",
                                names.join(", ")
                            ))
                        })?;
                    self.sort.push((field, descending));
                }
            }
            "_include" => self.include.push(link(kind, value, false).map_err(at)?),
            "_revinclude" => self.revinclude.push(link(kind, value, true).map_err(at)?),
            "_format" if value.contains("json") => {}
            _ if lenient => {}
            _ => {
                let known: Vec<&str> = match search_params(kind) {
                    Some(ps) => ps.iter().map(|p| p.name).collect(),
                    None => PATIENT_PARAMS.iter().map(|(n, _)| *n).collect(),
                };
                return Err(Issue::at(
                    IssueCode::NotSupported,
                    format!("{kind}?{key}"),
                    format!(
                        "unknown search parameter {key:?}; {kind} supports {}, {}",
                        known.join(", "),
                        COMMON_PARAMS
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// What a search of a type other than Patient asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordSearch {
    pub kind: &'static str,
    pub filters: Vec<Filter>,
    /// Some condition can match nothing (an id that cannot exist, a code of another
    /// system, repeated references with nothing in common).
    pub impossible: bool,
    pub sort: Vec<(Field, bool)>,
    pub include: Vec<Link>,
    pub revinclude: Vec<Link>,
    pub count: i64,
    pub offset: i64,
    pub summary_count: bool,
}

/// A token value's code, when its system (if given) is one of `systems`; `None` when the
/// system rules it out.
fn token_code(
    value: &str,
    systems: &[&str],
    code_system: impl Fn(&str) -> Option<&'static str>,
) -> Result<Option<String>, String> {
    match value.split_once('|') {
        None => Ok(Some(value.trim().to_string())),
        Some(("", _)) => Ok(None),
        Some((system, code)) => {
            if !systems.is_empty() && !systems.contains(&system) {
                return Err(format!(
                    "code system {system:?} is not searchable here; use {}",
                    systems.join(" or ")
                ));
            }
            if systems.len() > 1 && code_system(code) != Some(system) {
                return Ok(None);
            }
            Ok(Some(code.trim().to_string()))
        }
    }
}

/// Parse the query of a search of `kind` (one of [`RECORD_TYPES`]).
pub fn parse_record_search(
    kind: &str,
    pairs: &[(String, String)],
    lenient: bool,
) -> Result<RecordSearch, Vec<Issue>> {
    let kind: &'static str = RECORD_TYPES
        .into_iter()
        .find(|t| *t == kind)
        .ok_or_else(|| {
            vec![Issue::new(
                IssueCode::NotSupported,
                format!("searching {kind} is not supported by this server"),
            )]
        })?;
    let params = search_params(kind).unwrap_or_default();
    let mut common = Common::default();
    let mut q = RecordSearch {
        kind,
        filters: Vec::new(),
        impossible: false,
        sort: Vec::new(),
        include: Vec::new(),
        revinclude: Vec::new(),
        count: DEFAULT_COUNT,
        offset: 0,
        summary_count: false,
    };
    let mut issues = Vec::new();
    for (key, value) in pairs {
        if let Some(issue) = control_character(kind, key, value) {
            issues.push(issue);
            continue;
        }
        let (name, modifier) = match key.split_once(':') {
            Some((n, m)) => (n, Some(m)),
            None => (key.as_str(), None),
        };
        let Some(p) = params.iter().find(|p| p.name == name) else {
            if let Err(issue) = common.take(kind, key, value, lenient) {
                issues.push(issue);
            }
            continue;
        };
        let at = |what: String| Issue::at(IssueCode::Invalid, format!("{kind}?{key}"), what);
        let contains = match (p.kind, modifier) {
            (_, None) => false,
            (ParamType::String, Some("contains")) => true,
            (ParamType::String, Some("exact")) => false,
            (_, Some(m)) => {
                issues.push(Issue::at(
                    IssueCode::NotSupported,
                    format!("{kind}?{key}"),
                    format!("modifier :{m} is not supported on {name}"),
                ));
                continue;
            }
        };
        match p.kind {
            ParamType::Reference(target) if p.field == Field::Reference => {
                match typed_references(value, target) {
                    Ok(refs) => q.filters.push(Filter::Tokens(
                        Field::Reference,
                        refs.into_iter()
                            .map(|(t, id)| format!("{t}/{id}"))
                            .collect(),
                    )),
                    Err(e) => issues.push(at(e)),
                }
            }
            ParamType::Reference(target) => match references(value, target) {
                Ok(ids) => q.filters.push(Filter::Ids(p.field, ids)),
                Err(e) => issues.push(at(e)),
            },
            ParamType::Token if p.field == Field::Id => {
                let ids: Vec<i64> = value
                    .split(',')
                    .filter_map(|v| v.trim().parse().ok())
                    .collect();
                q.filters.push(Filter::Ids(Field::Id, ids));
            }
            ParamType::Token => {
                let mut codes = Vec::new();
                for one in value.split(',') {
                    match token_code(one, p.systems, observation_code_system) {
                        Ok(Some(c)) => codes.push(c),
                        Ok(None) => {}
                        Err(e) => issues.push(at(e)),
                    }
                }
                q.filters.push(Filter::Tokens(p.field, codes));
            }
            ParamType::Date => match date_conds(value, false) {
                Ok(conds) => q
                    .filters
                    .extend(conds.into_iter().map(|c| Filter::Date(p.field, c))),
                Err(e) => issues.push(at(e)),
            },
            ParamType::String => {
                let values: Vec<String> = value
                    .split(',')
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .collect();
                if !values.is_empty() {
                    q.filters.push(Filter::Text {
                        field: p.field,
                        values,
                        contains,
                    });
                }
            }
        }
    }
    q.impossible = q.filters.iter().any(|f| match f {
        Filter::Ids(_, v) => v.is_empty(),
        Filter::Tokens(_, v) => v.is_empty(),
        _ => false,
    });
    q.filters.extend(
        common
            .last_updated
            .iter()
            .map(|c| Filter::Date(Field::LastUpdated, *c)),
    );
    q.count = common.count;
    q.offset = common.offset;
    q.summary_count = common.summary_count;
    q.sort = common.sort;
    q.include = common.include;
    q.revinclude = common.revinclude;
    if issues.is_empty() {
        Ok(q)
    } else {
        Err(issues)
    }
}

/// The code system of an observation code: local `DHP-…` codes, else LOINC.
fn observation_code_system(code: &str) -> Option<&'static str> {
    Some(if code.starts_with("DHP-") {
        crate::resources::LOCAL_OBSERVATION_SYSTEM
    } else {
        "http://loinc.org"
    })
}

/// The status token of a resource, as the `status` search parameters see it
/// (`clinicalStatus` for a Condition).
pub fn status_token(kind: &str, v: &serde_json::Value) -> Option<String> {
    let s = if kind == "Condition" {
        v.pointer("/clinicalStatus/coding/0/code")
    } else {
        v.get("status")
    };
    s.and_then(serde_json::Value::as_str).map(str::to_string)
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
    fn hostile_values_are_refused_naming_the_parameter() {
        let owned = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let record =
            |pairs: &[(&str, &str)]| parse_record_search("Observation", &owned(pairs), false);
        let expr = |issues: Vec<Issue>| issues[0].expression.clone().unwrap();
        // A NUL byte would end the LIKE pattern early and match every row.
        assert_eq!(expr(q(&[("name", "王\0")]).unwrap_err()), "Patient?name");
        assert_eq!(
            expr(q(&[("family", "\u{1}")]).unwrap_err()),
            "Patient?family"
        );
        assert_eq!(
            expr(record(&[("code", "8480-6\0")]).unwrap_err()),
            "Observation?code"
        );
        // An offset near 2^63 would wrap the next link back to the first page.
        assert_eq!(
            expr(q(&[("_offset", "9223372036854775800")]).unwrap_err()),
            "Patient?_offset"
        );
        assert!(q(&[("_offset", &MAX_OFFSET.to_string())]).is_ok());
        // Time-zone offsets outside −12:00 … +14:00.
        assert!(record(&[("date", "ge2025-06-01T09:00:00+99:00")]).is_err());
        assert!(record(&[("date", "ge2025-06-01T09:00:00+14:60")]).is_err());
        assert!(record(&[("date", "ge2025-06-01T09:00:00-13:00")]).is_err());
        assert!(record(&[("date", "ge2025-06-01T09:00:00+14:00")]).is_ok());
        assert!(record(&[("date", "ge2025-06-01T09:00:00-12:00")]).is_ok());
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
