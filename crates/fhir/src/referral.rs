//! Two-way referral (双向转诊) as FHIR: a referral is a `ServiceRequest` (what is
//! asked: reason, urgency, diagnosis, the slot booked with it) and a `Task` with
//! `focus` on it (its fulfilment: requested → received → accepted / rejected →
//! in-progress → completed; cancelled, failed), both rendered from the referral's own
//! row, the Task's version counting its steps. A Task is moved on by updating its
//! status (a rejection, cancellation or failure says why in `statusReason`).

use chrono::{NaiveDate, NaiveDateTime};
use dhp_core::query::DateCond;
use dhp_core::referral::{Act, Direction, Priority, TaskStatus};
use dhp_core::Id;
use serde_json::{json, Value};

use crate::input::ICD10_SYSTEM;
use crate::outcome::{Issue, IssueCode};
use crate::search::{DEFAULT_COUNT, MAX_COUNT, MAX_OFFSET};

/// The platform's extension on a referral's ServiceRequest: `up` (to a hospital) or
/// `down` (back to the community).
pub const DIRECTION_EXT: &str = "https://fhir.dhp.example/StructureDefinition/referral-direction";
/// The platform's extensions on a down-referral: the discharge summary and the day the
/// family doctor follows the patient up.
pub const SUMMARY_EXT: &str = "https://fhir.dhp.example/StructureDefinition/discharge-summary";
pub const FOLLOW_UP_EXT: &str = "https://fhir.dhp.example/StructureDefinition/follow-up-date";

/// A referral as FHIR shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralView<'a> {
    pub id: Id,
    pub version: i64,
    pub resident_id: Id,
    pub direction: Direction,
    pub from_org: Id,
    pub to_org: Id,
    pub reason: &'a str,
    pub priority: Priority,
    pub diagnosis: Option<&'a str>,
    pub appointment_id: Option<Id>,
    pub summary: Option<&'a str>,
    pub follow_up: Option<NaiveDate>,
    pub status: TaskStatus,
    /// The reason given with the latest step.
    pub last_reason: Option<&'a str>,
    pub created: NaiveDateTime,
    pub updated: NaiveDateTime,
}

fn reference(kind: &str, id: Id) -> Value {
    json!({ "reference": format!("{kind}/{id}") })
}

use crate::resources::{instant, shanghai};

/// The ServiceRequest's status for the Task's.
pub fn request_status(s: TaskStatus) -> &'static str {
    match s {
        TaskStatus::Completed => "completed",
        TaskStatus::Rejected | TaskStatus::Cancelled | TaskStatus::Failed => "revoked",
        _ => "active",
    }
}

/// What is asked.
pub fn service_request(r: &ReferralView<'_>) -> Value {
    let mut v = json!({
        "resourceType": "ServiceRequest",
        "id": r.id.to_string(),
        "meta": { "versionId": r.version.to_string(), "lastUpdated": instant(r.updated) },
        "extension": [{ "url": DIRECTION_EXT, "valueCode": r.direction.as_str() }],
        "status": request_status(r.status),
        "intent": "order",
        "category": [{ "coding": [{ "system": "http://snomed.info/sct", "code": "3457005", "display": "Patient referral" }] }],
        "priority": r.priority.as_str(),
        "subject": reference("Patient", r.resident_id),
        "authoredOn": shanghai(r.created),
        "requester": reference("Organization", r.from_org),
        "performer": [reference("Organization", r.to_org)],
        "note": [{ "text": r.reason }],
    });
    if let Some(d) = r.diagnosis {
        v["reasonCode"] = json!([{ "coding": [{ "system": ICD10_SYSTEM, "code": d }] }]);
    }
    if let Some(a) = r.appointment_id {
        v["supportingInfo"] = json!([reference("Appointment", a)]);
    }
    let ext = v["extension"].as_array_mut().expect("an array");
    if let Some(s) = r.summary {
        ext.push(json!({ "url": SUMMARY_EXT, "valueString": s }));
    }
    if let Some(d) = r.follow_up {
        ext.push(json!({ "url": FOLLOW_UP_EXT, "valueDate": d.to_string() }));
    }
    v
}

/// Its fulfilment.
pub fn task(r: &ReferralView<'_>) -> Value {
    let mut v = json!({
        "resourceType": "Task",
        "id": r.id.to_string(),
        "meta": { "versionId": r.version.to_string(), "lastUpdated": instant(r.updated) },
        "status": r.status.as_str(),
        "intent": "order",
        "priority": r.priority.as_str(),
        "code": { "coding": [{ "system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill" }] },
        "focus": reference("ServiceRequest", r.id),
        "for": reference("Patient", r.resident_id),
        "authoredOn": shanghai(r.created),
        "lastModified": shanghai(r.updated),
        "requester": reference("Organization", r.from_org),
        "owner": reference("Organization", r.to_org),
    });
    if let Some(why) = r.last_reason.filter(|_| {
        matches!(
            r.status,
            TaskStatus::Rejected | TaskStatus::Cancelled | TaskStatus::Failed
        )
    }) {
        v["statusReason"] = json!({ "text": why });
    }
    v
}

/// The step an update of a Task from `from` to the status it carries asks for, and
/// the reason it gives.
pub fn task_update(from: TaskStatus, v: &Value) -> Result<(Act, Option<String>), Issue> {
    let at = |code, path: &str, text: String| Issue::at(code, format!("Task.{path}"), text);
    if v.get("resourceType").and_then(Value::as_str) != Some("Task") {
        return Err(at(
            IssueCode::Invalid,
            "resourceType",
            "must be \"Task\"".into(),
        ));
    }
    let text = v
        .get("status")
        .and_then(Value::as_str)
        .ok_or_else(|| at(IssueCode::Required, "status", "is required".into()))?;
    let to = TaskStatus::parse(text).ok_or_else(|| {
        let all: Vec<&str> = TaskStatus::ALL.iter().map(|s| s.as_str()).collect();
        at(
            IssueCode::Value,
            "status",
            format!("{text:?} is not one of {}", all.join(", ")),
        )
    })?;
    let act = Act::ALL
        .into_iter()
        .find(|a| a.target() == to)
        .filter(|_| to != from)
        .ok_or_else(|| {
            at(
                IssueCode::Invalid,
                "status",
                format!("a referral that is {} cannot move to {text}", from.as_str()),
            )
        })?;
    let reason = v
        .pointer("/statusReason/text")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok((act, reason))
}

/// The search parameters of Task here (name, FHIR type).
pub const TASK_PARAMS: &[(&str, &str)] = &[
    ("_id", "token"),
    ("patient", "reference"),
    ("subject", "reference"),
    ("owner", "reference"),
    ("requester", "reference"),
    ("focus", "reference"),
    ("status", "token"),
    ("authored-on", "date"),
];

/// What a Task search asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskSearch {
    pub ids: Vec<Id>,
    pub patients: Vec<Id>,
    pub owners: Vec<Id>,
    pub requesters: Vec<Id>,
    pub statuses: Vec<String>,
    pub authored: Vec<DateCond>,
    pub impossible: bool,
    pub count: i64,
    pub offset: i64,
    pub summary_count: bool,
}

fn numbers(value: &str, kind: &str) -> Result<Vec<Id>, String> {
    value
        .split(',')
        .map(|one| {
            let one = one.trim();
            let id = match one.split_once('/') {
                Some((t, id)) if t == kind => id,
                Some(_) => return Err(format!("{one:?} does not refer to {kind}")),
                None => one,
            };
            id.parse::<Id>()
                .map_err(|_| format!("{one:?} is not {kind}/<number>"))
        })
        .collect()
}

/// Parse the query of a Task search.
pub fn parse_task_search(pairs: &[(String, String)]) -> Result<TaskSearch, Vec<Issue>> {
    let mut q = TaskSearch {
        count: DEFAULT_COUNT,
        ..TaskSearch::default()
    };
    let mut issues = Vec::new();
    for (key, value) in pairs {
        let at = |what: String| Issue::at(IssueCode::Invalid, format!("Task?{key}"), what);
        let r: Result<(), Issue> = match key.as_str() {
            _ if value.chars().any(char::is_control) => {
                Err(at("contains a control character".into()))
            }
            "_id" | "focus" => {
                let kind = if key == "focus" {
                    "ServiceRequest"
                } else {
                    "Task"
                };
                match numbers(value, kind) {
                    Ok(ids) => {
                        q.ids.extend(ids);
                        Ok(())
                    }
                    Err(_) if key == "_id" => {
                        q.impossible = true;
                        Ok(())
                    }
                    Err(e) => Err(at(e)),
                }
            }
            "patient" | "subject" => numbers(value, "Patient")
                .map(|ids| q.patients.extend(ids))
                .map_err(at),
            "owner" => numbers(value, "Organization")
                .map(|ids| q.owners.extend(ids))
                .map_err(at),
            "requester" => numbers(value, "Organization")
                .map(|ids| q.requesters.extend(ids))
                .map_err(at),
            "status" => {
                let mut bad = None;
                for s in value.split(',').map(str::trim) {
                    match TaskStatus::parse(s) {
                        Some(t) => q.statuses.push(t.as_str().to_string()),
                        None => bad = Some(s.to_string()),
                    }
                }
                match bad {
                    Some(s) => {
                        let all: Vec<&str> = TaskStatus::ALL.iter().map(|s| s.as_str()).collect();
                        Err(at(format!("{s:?} is not one of {}", all.join(", "))))
                    }
                    None => Ok(()),
                }
            }
            "authored-on" => crate::search::date_conds(value, false)
                .map(|c| q.authored.extend(c))
                .map_err(at),
            "_count" => match value.parse::<i64>() {
                Ok(n) if (0..=MAX_COUNT).contains(&n) => {
                    q.count = n;
                    Ok(())
                }
                _ => Err(at(format!("must be a whole number from 0 to {MAX_COUNT}"))),
            },
            "_offset" => match value.parse::<i64>() {
                Ok(n) if (0..=MAX_OFFSET).contains(&n) => {
                    q.offset = n;
                    Ok(())
                }
                _ => Err(at(format!("must be a whole number from 0 to {MAX_OFFSET}"))),
            },
            "_summary" if value == "count" => {
                q.summary_count = true;
                Ok(())
            }
            "_summary" if value == "false" => Ok(()),
            "_format" if value.contains("json") => Ok(()),
            _ => {
                let names: Vec<&str> = TASK_PARAMS
                    .iter()
                    .chain(crate::scheduling::COMMON)
                    .map(|(n, _)| *n)
                    .collect();
                Err(Issue::at(
                    IssueCode::NotSupported,
                    format!("Task?{key}"),
                    format!(
                        "unknown or unsupported search parameter {key:?}; Task supports {} (newest first)",
                        names.join(", ")
                    ),
                ))
            }
        };
        if let Err(i) = r {
            issues.push(i);
        }
    }
    if issues.is_empty() {
        Ok(q)
    } else {
        Err(issues)
    }
}

impl TaskSearch {
    /// The search as the store's record query.
    pub fn query(&self) -> dhp_core::query::RecordQuery {
        use dhp_core::query::{Field, Filter, RecordQuery};
        let mut f = Vec::new();
        for (field, ids) in [
            (Field::Id, &self.ids),
            (Field::Resident, &self.patients),
            (Field::Org, &self.owners),
            (Field::Reference, &self.requesters),
        ] {
            if !ids.is_empty() {
                f.push(Filter::Ids(field, ids.clone()));
            }
        }
        if !self.statuses.is_empty() {
            f.push(Filter::Tokens(Field::Status, self.statuses.clone()));
        }
        f.extend(self.authored.iter().map(|c| Filter::Date(Field::Date, *c)));
        RecordQuery {
            filters: f,
            sort: Vec::new(),
            limit: if self.summary_count { 0 } else { self.count },
            offset: self.offset,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(status: TaskStatus) -> ReferralView<'static> {
        let t = NaiveDate::from_ymd_opt(2026, 11, 20)
            .unwrap()
            .and_hms_opt(9, 30, 0)
            .unwrap();
        ReferralView {
            id: 41,
            version: 2,
            resident_id: 7,
            direction: Direction::Up,
            from_org: 3,
            to_org: 5,
            reason: "uncontrolled hypertension",
            priority: Priority::Urgent,
            diagnosis: Some("I10"),
            appointment_id: Some(90),
            summary: None,
            follow_up: None,
            status,
            last_reason: Some("no cardiologist this week"),
            created: t,
            updated: t + chrono::Duration::hours(2),
        }
    }

    #[test]
    fn a_referral_is_a_request_and_a_task_that_follows_it() {
        let r = view(TaskStatus::Rejected);
        let sr = service_request(&r);
        assert_eq!(sr["status"], "revoked");
        assert_eq!(sr["reasonCode"][0]["coding"][0]["code"], "I10");
        assert_eq!(sr["supportingInfo"][0]["reference"], "Appointment/90");
        let t = task(&r);
        assert_eq!(t["focus"]["reference"], "ServiceRequest/41");
        assert_eq!(t["owner"]["reference"], "Organization/5");
        assert_eq!(t["statusReason"]["text"], "no cardiologist this week");
        assert_eq!(t["meta"]["versionId"], "2");
        assert!(task(&view(TaskStatus::Accepted))
            .get("statusReason")
            .is_none());
    }

    #[test]
    fn an_update_names_its_step() {
        let body = json!({ "resourceType": "Task", "status": "rejected", "statusReason": { "text": "full" } });
        assert_eq!(
            task_update(TaskStatus::Requested, &body).unwrap(),
            (Act::Reject, Some("full".into()))
        );
        let same = json!({ "resourceType": "Task", "status": "requested" });
        assert_eq!(
            task_update(TaskStatus::Requested, &same)
                .unwrap_err()
                .expression
                .as_deref(),
            Some("Task.status")
        );
        let q = parse_task_search(&[
            ("owner".into(), "Organization/5".into()),
            ("status".into(), "requested,received".into()),
        ])
        .unwrap();
        assert_eq!((q.owners, q.statuses.len()), (vec![5], 2));
        assert!(parse_task_search(&[("status".into(), "done".into())]).is_err());
    }
}
