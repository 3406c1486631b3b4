//! Referrals through FHIR: `Task` read and searched from the referrals table (the
//! inbox is `Task?owner=Organization/…&status=requested`), the `ServiceRequest` a Task
//! focuses on read from the same row, and `PUT /fhir/Task/{id}` moving a referral on
//! through the same service as the pages and `/api/referrals/{id}/steps` (who may take
//! which step, the reason a rejection needs, the audit entry).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use dhp_core::query::{DateCond, Field, Filter, RecordQuery};
use dhp_core::referral::TaskStatus;
use dhp_core::Id;
use dhp_fhir::referral::{self as fhir, ReferralView};
use dhp_fhir::{Issue, IssueCode, OperationOutcome};
use dhp_store::{FoundReferral, ReferralSearch, StoreError};
use serde_json::Value;

use super::search::Rendered;
use super::{fhir_json, outcome, signed_in};
use crate::{AppError, AppState};

fn view(f: &FoundReferral) -> ReferralView<'_> {
    let r = &f.referral;
    ReferralView {
        id: r.id,
        version: f.version,
        resident_id: r.resident_id,
        direction: r.direction,
        from_org: r.from_org,
        to_org: r.to_org,
        reason: &r.reason,
        priority: r.priority,
        diagnosis: r.diagnosis.as_deref(),
        appointment_id: r.appointment_id,
        summary: r.summary.as_deref(),
        follow_up: r.follow_up,
        status: r.status,
        last_reason: f.last_reason.as_deref(),
        created: r.created,
        updated: r.updated,
    }
}

fn ids(q: &RecordQuery, field: Field) -> Vec<Id> {
    q.filters
        .iter()
        .filter_map(|f| match f {
            Filter::Ids(g, ids) if *g == field => Some(ids.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// The Task statuses a ServiceRequest status stands for: the inverse of
/// [`dhp_fhir::referral::request_status`].
fn task_statuses(request_status: &str) -> Vec<TaskStatus> {
    TaskStatus::ALL
        .into_iter()
        .filter(|t| dhp_fhir::referral::request_status(*t) == request_status)
        .collect()
}

/// Referrals matching `q` within `scope`, as Tasks (or, `requests`, as the
/// ServiceRequests they focus on), with the total. As requests, `status` is the
/// ServiceRequest's and the organisation reference is the `performer` (the Task's
/// owner); a filter a referral's request cannot meet (a `code`: a referral carries no
/// test code, or a status it never has) finds none.
pub(crate) async fn fetch(
    state: &AppState,
    q: &RecordQuery,
    scope: &dhp_core::access::Scope,
    requests: bool,
) -> Result<(Vec<Rendered>, i64), StoreError> {
    let (mut statuses, mut performers) = (Vec::new(), Vec::new());
    for f in &q.filters {
        match f {
            Filter::Tokens(Field::Status, v) => {
                let wanted: Vec<TaskStatus> = if requests {
                    v.iter().flat_map(|s| task_statuses(s)).collect()
                } else {
                    v.iter().filter_map(|s| TaskStatus::parse(s)).collect()
                };
                // Only statuses a referral never has: nothing matches (an empty list
                // would mean any status).
                if wanted.is_empty() {
                    return Ok((Vec::new(), 0));
                }
                statuses.extend(wanted);
            }
            // A request's performer as stored requests keep it (`Organization/id`).
            Filter::Tokens(Field::Reference, v) if requests => {
                let orgs: Vec<Id> = v
                    .iter()
                    .filter_map(|r| r.strip_prefix("Organization/")?.parse().ok())
                    .collect();
                if orgs.is_empty() {
                    return Ok((Vec::new(), 0));
                }
                performers.extend(orgs);
            }
            Filter::Ids(Field::Id | Field::Resident | Field::Org | Field::Reference, _)
            | Filter::Date(Field::Date | Field::LastUpdated, _) => {}
            _ if requests => return Ok((Vec::new(), 0)),
            _ => {}
        }
    }
    let authored: Vec<DateCond> = q
        .filters
        .iter()
        .filter_map(|f| match f {
            Filter::Date(Field::Date, c) => Some(*c),
            _ => None,
        })
        .collect();
    // `_lastUpdated` (and `$everything`'s `_since`) are instants in UTC; a referral's
    // last step is kept in district time.
    let local =
        |t: chrono::NaiveDateTime| t + chrono::Duration::hours(dhp_core::clock::UTC_OFFSET_HOURS);
    let updated: Vec<DateCond> = q
        .filters
        .iter()
        .filter_map(|f| match f {
            Filter::Date(Field::LastUpdated, c) => Some(match *c {
                DateCond::Ge(t) => DateCond::Ge(local(t)),
                DateCond::Lt(t) => DateCond::Lt(local(t)),
                DateCond::Outside(a, b) => DateCond::Outside(local(a), local(b)),
            }),
            _ => None,
        })
        .collect();
    // A request's organisation reference is its performer, the Task's owner.
    let (owners, requesters) = if requests {
        let mut o = ids(q, Field::Org);
        o.extend(ids(q, Field::Reference));
        o.extend(performers);
        (o, Vec::new())
    } else {
        (ids(q, Field::Org), ids(q, Field::Reference))
    };
    let (found, total) = state
        .store
        .search_referrals(&ReferralSearch {
            ids: ids(q, Field::Id),
            residents: ids(q, Field::Resident),
            owners,
            requesters,
            statuses,
            authored,
            updated,
            scope: scope.clone(),
            today: crate::context::as_of(state).await?,
            limit: q.limit,
            offset: q.offset,
        })
        .await?;
    let rows = found
        .iter()
        .map(|f| Rendered {
            id: f.referral.id,
            resident: Some(f.referral.resident_id),
            body: if requests {
                fhir::service_request(&view(f))
            } else {
                fhir::task(&view(f))
            },
        })
        .collect();
    Ok((rows, total))
}

/// One referral as a Task (or its ServiceRequest), with its resident.
pub(crate) async fn find(
    state: &AppState,
    id: Id,
    requests: bool,
) -> Result<Option<(Value, Option<Id>)>, StoreError> {
    let q = RecordQuery::matching(vec![Filter::Ids(Field::Id, vec![id])], 1);
    let (mut rows, _) = fetch(state, &q, &dhp_core::access::Scope::All, requests).await?;
    Ok(rows.pop().map(|r| (r.body, r.resident)))
}

/// `PUT /fhir/Task/{id}`: the referral takes the step its new status names.
pub(crate) async fn update(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let resource = format!("Task/{id}");
    let who = match signed_in(&state, &headers, "update", &resource).await? {
        Ok(p) => p,
        Err(res) => return Ok(res),
    };
    let bad = |code: IssueCode, path: &str, text: String| {
        outcome(OperationOutcome::one(Issue::at(code, path, text)).with_status(400))
    };
    let sent: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return Ok(bad(
                IssueCode::Structure,
                "Task",
                format!("the body is not JSON: {e}"),
            ))
        }
    };
    let Ok(n) = id.parse::<Id>() else {
        return Ok(outcome(OperationOutcome::one(Issue::new(
            IssueCode::NotFound,
            format!("{resource} does not exist"),
        ))));
    };
    if sent.get("id").and_then(Value::as_str) != Some(id.as_str()) {
        return Ok(bad(
            IssueCode::Invalid,
            "Task.id",
            format!("an update carries the Task's id ({id})"),
        ));
    }
    let current = match find(&state, n, false).await? {
        Some((v, _)) => v,
        None => {
            // Audited as a step of a referral that does not exist.
            if let Err(r) = crate::care::step(&state, &who, n, "receive", None).await? {
                return Ok(outcome(r.outcome()));
            }
            return Ok(outcome(OperationOutcome::one(Issue::new(
                IssueCode::NotFound,
                format!("{resource} does not exist"),
            ))));
        }
    };
    let from = current["status"]
        .as_str()
        .and_then(TaskStatus::parse)
        .unwrap_or(TaskStatus::Requested);
    if let Some(want) = headers
        .get("if-match")
        .and_then(|v| v.to_str().ok())
        .and_then(super::write::parse_etag)
    {
        let version = current["meta"]["versionId"]
            .as_str()
            .and_then(|v| v.parse::<i64>().ok());
        if version != Some(want) {
            return Ok(outcome(
                OperationOutcome::one(Issue::new(
                    IssueCode::Conflict,
                    format!(
                        "{resource} is at version {}, not {want} (If-Match)",
                        version.unwrap_or(0)
                    ),
                ))
                .with_status(412),
            ));
        }
    }
    let (act, reason) = match fhir::task_update(from, &sent) {
        Ok(x) => x,
        Err(issue) => return Ok(outcome(OperationOutcome::one(issue).with_status(400))),
    };
    match crate::care::step(&state, &who, n, act.as_str(), reason.as_deref()).await? {
        Err(r) => {
            let mut o = r.outcome();
            // The step's own field is the Task's status or its reason.
            if r.field.as_deref() == Some("reason") {
                o = OperationOutcome::one(Issue::at(
                    IssueCode::Required,
                    "Task.statusReason.text",
                    r.message.clone(),
                ))
                .with_status(400);
            }
            Ok(outcome(o))
        }
        Ok(_) => {
            let Some((body, _)) = find(&state, n, false).await? else {
                return Err(AppError::Internal(format!("{resource} vanished")));
            };
            let mut res = fhir_json(StatusCode::OK, &body);
            let version = body["meta"]["versionId"]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            let at = body["meta"]["lastUpdated"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            super::version_headers(&mut res, version, &at);
            Ok(res)
        }
    }
}

/// The element of a referral's ServiceRequest that a field of the referral service
/// reads.
fn element(field: &str) -> &'static str {
    match field {
        "resident_id" => "ServiceRequest.subject.reference",
        "performer" => "ServiceRequest.performer[0].reference",
        "reason" => "ServiceRequest.note[0].text",
        "priority" => "ServiceRequest.priority",
        "diagnosis" => "ServiceRequest.reasonCode[0].coding[0].code",
        "slot" => "ServiceRequest.supportingInfo",
        "direction" | "summary" | "follow_up" => "ServiceRequest.extension",
        _ => "ServiceRequest",
    }
}

/// `POST /fhir/ServiceRequest` with the referral category: a referral made through the
/// same service as the pages and `/api/referrals` (who may refer, the resident in
/// scope, the organisation taking referrals, a reserved slot booked with it, the
/// audit entry); answered `201` with the ServiceRequest read back from the referral
/// (its Task at the same id).
pub(crate) async fn create(
    at: &super::rest::Attempt<'_>,
    body: &Value,
) -> Result<Response, AppError> {
    let state = at.state;
    let input = match dhp_fhir::input::referral(body) {
        Ok(i) => i,
        Err(issues) => {
            return at
                .refuse(OperationOutcome::new(issues).with_status(400))
                .await
        }
    };
    let orgs = state.orgs().await?;
    let Some(performer) = orgs.get(&input.performer) else {
        return at
            .refuse(
                OperationOutcome::one(Issue::at(
                    IssueCode::Value,
                    "ServiceRequest.performer[0].reference",
                    format!("Organization/{} does not exist", input.performer),
                ))
                .with_status(400),
            )
            .await;
    };
    let req = crate::care::ReferRequest {
        resident_id: Some(input.resident_id),
        direction: input.direction,
        performer: Some(performer.code.clone()),
        reason: input.reason,
        priority: input.priority,
        diagnosis: input.diagnosis,
        slot: input.slot.map(|s| s.to_string()),
        summary: input.summary,
        follow_up: input.follow_up,
    };
    let id = match crate::care::refer(state, &at.who, &req).await? {
        Ok(id) => id,
        Err(r) => {
            // Refused by the service (and audited there where it decides scope).
            let o = crate::context::Refusal {
                field: r.field.as_deref().map(|f| element(f).to_string()),
                ..r
            }
            .outcome();
            return Ok(outcome(o));
        }
    };
    let Some((made, _)) = find(state, id, true).await? else {
        return Err(AppError::Internal(format!(
            "referral {id} was made but not found"
        )));
    };
    let mut res = fhir_json(StatusCode::CREATED, &made);
    let location = format!(
        "{}/ServiceRequest/{id}/_history/{}",
        super::fhir_base(state),
        made["meta"]["versionId"].as_str().unwrap_or("1")
    );
    if let Ok(v) = axum::http::HeaderValue::from_str(&location) {
        res.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    Ok(res)
}
