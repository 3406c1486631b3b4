//! The surveillance JSON API: case reports (`POST /api/surveillance/cases`), sentinel
//! reports (`POST /api/surveillance/sentinel`), the signals (`GET
//! /api/surveillance/signals`) and their verification (`POST
//! /api/surveillance/signals/{id}`).

use super::*;
use crate::audit::{self, Actor};
use crate::context::as_of;
use crate::context::caller;
use crate::{AppError, AppState};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{Days, NaiveDate, NaiveDateTime};
use dhp_core::access::Principal;
use dhp_core::surveillance::{
    self as sv, check_case_report, merge_alarms, timeliness, Alarm, CaseReport, CaseStatus,
    SentinelReport, Signal, SignalEvent, SignalStatus,
};
use dhp_core::Id;
use dhp_store::StoreError;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

/// A case report as sent by a clinical system. Dates `YYYY-MM-DD`, times
/// `YYYY-MM-DDTHH:MM[:SS]`; organisations and streets by code.
#[derive(Debug, Default, Deserialize)]
pub struct CaseRequest {
    pub disease: Option<String>,
    /// Identity number of the patient, when a resident of the district.
    pub resident_identity: Option<String>,
    /// Code of the reporting organisation (default: the sender's).
    pub reporting_org: Option<String>,
    /// Street or town of the current address (default: the resident's household's).
    pub street: Option<String>,
    pub status: Option<String>,
    pub onset_date: Option<String>,
    pub diagnosed_at: Option<String>,
    /// Default: now.
    pub reported_at: Option<String>,
}

pub(crate) fn parse_time(
    field: &'static str,
    v: &str,
) -> Result<NaiveDateTime, (&'static str, String)> {
    [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(v.trim(), f).ok())
    .ok_or((
        field,
        format!("`{v}` is not a date and time (YYYY-MM-DDTHH:MM)"),
    ))
}

pub(crate) fn required<'a>(
    field: &'static str,
    v: &'a Option<String>,
) -> Result<&'a str, (&'static str, String)> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or((field, format!("{field} is required")))
}

/// Checks a request against the registry and the disease table; builds the report.
pub(crate) async fn case_from_request(
    state: &AppState,
    who: &Principal,
    r: &CaseRequest,
) -> Result<Result<CaseReport, (&'static str, String)>, AppError> {
    let orgs = state.orgs().await?;
    let by_code = |code: &str| orgs.values().find(|o| o.code == code);
    let disease = match required("disease", &r.disease) {
        Ok(d) => d,
        Err(e) => return Ok(Err(e)),
    };
    if sv::disease(disease).is_none() {
        return Ok(Err((
            "disease",
            format!("`{disease}` is not a notifiable disease code (e.g. hfmd or B08.4)"),
        )));
    }
    let resident = match r
        .resident_identity
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(number) => match state.store.resident_by_identity(number).await {
            Ok(res) => Some(res),
            Err(StoreError::NotFound(_)) => {
                return Ok(Err((
                    "resident_identity",
                    format!("no resident with identity number {number}"),
                )))
            }
            Err(e) => return Err(e.into()),
        },
    };
    let street = match r.street.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(code) => match by_code(code) {
            Some(o) if matches!(o.kind, dhp_core::OrgKind::Street | dhp_core::OrgKind::Town) => {
                o.code.clone()
            }
            _ => {
                return Ok(Err((
                    "street",
                    format!("`{code}` is not a street or town code"),
                )))
            }
        },
        None => match &resident {
            Some(res) => {
                let h = state.store.household(res.household_id).await?;
                match orgs.get(&h.street_org_id) {
                    Some(o) => o.code.clone(),
                    None => return Ok(Err(("street", "the resident's street is unknown".into()))),
                }
            }
            None => {
                return Ok(Err((
                    "street",
                    "street is required when no resident_identity is given".into(),
                )))
            }
        },
    };
    let reporting_org = match r
        .reporting_org
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(code) => match by_code(code) {
            Some(o) => o.code.clone(),
            None => {
                return Ok(Err((
                    "reporting_org",
                    format!("no organisation with code {code}"),
                )))
            }
        },
        None => match who.org_id.and_then(|id| orgs.get(&id)) {
            Some(o) => o.code.clone(),
            None => {
                return Ok(Err((
                    "reporting_org",
                    "reporting_org is required (the sender has no organisation)".into(),
                )))
            }
        },
    };
    let status = match required("status", &r.status) {
        Ok(s) => match CaseStatus::parse(s) {
            Some(s) => s,
            None => {
                return Ok(Err((
                    "status",
                    format!("`{s}` is not one of suspected, clinical, confirmed, excluded"),
                )))
            }
        },
        Err(e) => return Ok(Err(e)),
    };
    let onset_date = match required("onset_date", &r.onset_date) {
        Ok(d) => match NaiveDate::parse_from_str(d, "%Y-%m-%d") {
            Ok(d) => d,
            Err(_) => return Ok(Err(("onset_date", format!("`{d}` is not YYYY-MM-DD")))),
        },
        Err(e) => return Ok(Err(e)),
    };
    let diagnosed_at = match required("diagnosed_at", &r.diagnosed_at)
        .and_then(|v| parse_time("diagnosed_at", v))
    {
        Ok(t) => t,
        Err(e) => return Ok(Err(e)),
    };
    let reported_at = match r.reported_at.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(v) => match parse_time("reported_at", v) {
            Ok(t) => t,
            Err(e) => return Ok(Err(e)),
        },
        None => dhp_core::clock::now(),
    };
    let report = CaseReport {
        id: 0,
        disease: sv::disease(disease)
            .map(|d| d.code.clone())
            .unwrap_or_default(),
        resident_id: resident.map(|r| r.id),
        reporting_org,
        street,
        status,
        onset_date,
        diagnosed_at,
        reported_at,
    };
    Ok(match check_case_report(&report) {
        Ok(_) => Ok(report),
        Err(e) => Err((e.field, e.message)),
    })
}

/// Stores a checked report; a fixed-threshold disease raises its signal at once.
pub(crate) async fn receive(
    state: &AppState,
    who: &Principal,
    mut report: CaseReport,
    resource: &str,
) -> Result<serde_json::Value, AppError> {
    report.id = state.store.reserve_ids("CaseReport", 1).await?;
    state
        .store
        .insert_case_reports(std::slice::from_ref(&report), "api")
        .await?;
    audit::record(
        &*state.store,
        &Actor::from(who),
        "create",
        resource,
        report.resident_id,
        "ok",
        &format!("case report {} {}", report.id, report.disease),
    )
    .await?;
    let d = sv::disease(&report.disease).expect("checked");
    let on_time = timeliness(d, report.diagnosed_at, report.reported_at);
    let mut signal = None;
    if d.fixed && report.status != CaseStatus::Excluded {
        // domain-rules §6: one case of a fixed-threshold disease signals at once.
        let day = report.onset_date;
        let window = sv::merge_days();
        let mut signals = state.store.signals(day - Days::new(window as u64)).await?;
        let alarm = Alarm {
            disease: d.code.clone(),
            area: report.street.clone(),
            algorithm: "fixed".into(),
            day,
            observed: 1.0,
            expected: 0.0,
            statistic: 1.0,
            threshold: 1.0,
            counts: vec![1],
        };
        let touched = merge_alarms(&mut signals, &[alarm], window, report.reported_at);
        let mut changed: Vec<Signal> = touched.iter().map(|i| signals[*i].clone()).collect();
        state.store.save_signals(&mut changed).await?;
        signal = changed.first().map(|s| s.id).or_else(|| {
            signals
                .iter()
                .find(|s| s.disease == d.code && s.area == report.street && s.status.is_open())
                .map(|s| s.id)
        });
    }
    Ok(serde_json::json!({
        "id": report.id,
        "disease": d.code,
        "class": d.class.code(),
        "timeliness": on_time,
        "signal": signal,
    }))
}

/// The sender of a report and its JSON body, or the answer refusing them (no
/// credentials, a role that does not report, a body that is not `what`).
pub(crate) async fn report_sender<T: serde::de::DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    resource: &str,
    what: &str,
) -> Result<Result<(Principal, T), Response>, AppError> {
    let Some(who) = caller(state, headers).await else {
        return Ok(Err(unauthenticated(state, resource).await?));
    };
    if !may_report(&who) {
        return Ok(Err(refuse(
            StatusCode::FORBIDDEN,
            "authorization",
            format!("this role does not send {what}s"),
        )));
    }
    Ok(match crate::context::api_body(body) {
        Ok(r) => Ok((who, r)),
        Err(r) => Err(refuse(
            StatusCode::BAD_REQUEST,
            r.field.as_deref().unwrap_or("body"),
            format!("not a {what}: {}", r.message),
        )),
    })
}

/// `POST /api/surveillance/cases` with a JSON [`CaseRequest`].
pub async fn api_case(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    const RESOURCE: &str = "/api/surveillance/cases";
    let (who, request): (Principal, CaseRequest) =
        match report_sender(&state, &headers, &body, RESOURCE, "case report").await? {
            Ok(x) => x,
            Err(refusal) => return Ok(refusal),
        };
    match case_from_request(&state, &who, &request).await? {
        Err((field, why)) => Ok(refuse(StatusCode::BAD_REQUEST, field, why)),
        Ok(report) => {
            let answer = receive(&state, &who, report, RESOURCE).await?;
            Ok((StatusCode::CREATED, Json(answer)).into_response())
        }
    }
}

/// A site's day of syndromic counts; every syndrome of the table is expected, zeros
/// included (a zero report).
#[derive(Debug, Deserialize)]
pub struct SentinelRequest {
    pub site: Option<String>,
    pub date: Option<String>,
    #[serde(default)]
    pub counts: HashMap<String, serde_json::Value>,
}

/// `POST /api/surveillance/sentinel`.
pub async fn api_sentinel(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    const RESOURCE: &str = "/api/surveillance/sentinel";
    let (who, r): (Principal, SentinelRequest) =
        match report_sender(&state, &headers, &body, RESOURCE, "sentinel report").await? {
            Ok(x) => x,
            Err(refusal) => return Ok(refusal),
        };
    let orgs = state.orgs().await?;
    let site = match required("site", &r.site) {
        Ok(code) => match orgs.values().find(|o| o.code == code) {
            Some(o) => o.code.clone(),
            None => {
                return Ok(refuse(
                    StatusCode::BAD_REQUEST,
                    "site",
                    format!("no organisation with code {code}"),
                ))
            }
        },
        Err((f, why)) => return Ok(refuse(StatusCode::BAD_REQUEST, f, why)),
    };
    let date = match required("date", &r.date).map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d")) {
        Ok(Ok(d)) => d,
        Ok(Err(_)) => return Ok(refuse(StatusCode::BAD_REQUEST, "date", "not YYYY-MM-DD")),
        Err((f, why)) => return Ok(refuse(StatusCode::BAD_REQUEST, f, why)),
    };
    let mut rows = Vec::new();
    for s in sv::syndromes() {
        let field = format!("counts.{}", s.code);
        let count = match r.counts.get(&s.code) {
            None => {
                return Ok(refuse(
                    StatusCode::BAD_REQUEST,
                    &field,
                    "every syndrome needs a count; send 0 for none (a zero report)",
                ))
            }
            Some(v) => match v.as_i64().filter(|n| *n >= 0) {
                Some(n) => n,
                None => {
                    return Ok(refuse(
                        StatusCode::BAD_REQUEST,
                        &field,
                        format!("`{v}` is not a count (0 or more)"),
                    ))
                }
            },
        };
        rows.push(SentinelReport {
            site: site.clone(),
            date,
            syndrome: s.code.clone(),
            count,
        });
    }
    if let Some(unknown) = r.counts.keys().find(|k| sv::syndrome(k).is_none()) {
        return Ok(refuse(
            StatusCode::BAD_REQUEST,
            &format!("counts.{unknown}"),
            "not a sentinel syndrome (fever, respiratory, diarrhoea, rash)",
        ));
    }
    state
        .store
        .put_sentinel_reports(&rows, dhp_core::clock::now())
        .await?;
    audit::record(
        &*state.store,
        &Actor::from(&who),
        "create",
        RESOURCE,
        None,
        "ok",
        &format!("{site} {date}"),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "site": site, "date": date, "syndromes": rows.len() })),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
pub struct SinceQuery {
    pub(crate) since: Option<String>,
}

/// `GET /api/surveillance/signals?since=YYYY-MM-DD` (default: the last 30 days).
pub async fn api_signals(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<SinceQuery>,
) -> Result<Response, AppError> {
    let Some(who) = caller(&state, &headers).await else {
        return unauthenticated(&state, "/api/surveillance/signals").await;
    };
    if !may_watch(&who) {
        audit::record(
            &*state.store,
            &Actor::from(&who),
            "search",
            "/api/surveillance/signals",
            None,
            "denied",
            "signals are for the CDC and the commission",
        )
        .await?;
        return Ok(refuse(
            StatusCode::FORBIDDEN,
            "authorization",
            "signals are for the CDC and the commission",
        ));
    }
    let today = as_of(&state).await?;
    let since = match q.since.as_deref() {
        None => today - Days::new(30),
        Some(s) => match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            Ok(d) => d,
            Err(_) => return Ok(refuse(StatusCode::BAD_REQUEST, "since", "not YYYY-MM-DD")),
        },
    };
    let signals = state.store.signals(since).await?;
    let out: Vec<serde_json::Value> = signals
        .iter()
        .map(|s| {
            let mut v = serde_json::to_value(s).unwrap_or_default();
            v["response_hours"] = serde_json::json!(s.response_hours());
            v
        })
        .collect();
    Ok(Json(out).into_response())
}

#[derive(Debug, Deserialize)]
pub struct VerifyRequest {
    pub status: Option<String>,
    #[serde(default)]
    pub note: String,
}

/// Moves a signal on; the error names the field.
pub(crate) async fn verify(
    state: &AppState,
    who: &Principal,
    id: Id,
    r: &VerifyRequest,
) -> Result<Result<Signal, (StatusCode, &'static str, String)>, AppError> {
    if !may_verify(who) {
        return Ok(Err((
            StatusCode::FORBIDDEN,
            "authorization",
            "signals are verified by the CDC".into(),
        )));
    }
    let signal = match state.store.signal(id).await {
        Ok(s) => s,
        Err(StoreError::NotFound(_)) => {
            return Ok(Err((
                StatusCode::NOT_FOUND,
                "id",
                format!("no signal {id}"),
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let Some(to) = r.status.as_deref().and_then(SignalStatus::parse) else {
        return Ok(Err((
            StatusCode::BAD_REQUEST,
            "status",
            "status must be verifying, confirmed or excluded".into(),
        )));
    };
    if !signal.status.can_move_to(to) {
        return Ok(Err((
            StatusCode::CONFLICT,
            "status",
            format!(
                "a {} signal cannot become {}",
                signal.status.code(),
                to.code()
            ),
        )));
    }
    if !to.is_open() && r.note.trim().is_empty() {
        return Ok(Err((
            StatusCode::BAD_REQUEST,
            "note",
            "say what the verification found (a note is required to close a signal)".into(),
        )));
    }
    let event = SignalEvent {
        signal_id: id,
        at: dhp_core::clock::now(),
        username: who.username.clone(),
        from: signal.status,
        to,
        note: r.note.trim().to_string(),
    };
    match state.store.move_signal(&signal, &event).await {
        Ok(()) => {}
        Err(StoreError::Conflict(why)) => return Ok(Err((StatusCode::CONFLICT, "status", why))),
        Err(e) => return Err(e.into()),
    }
    audit::record(
        &*state.store,
        &Actor::from(who),
        "update",
        &format!("/api/surveillance/signals/{id}"),
        None,
        "ok",
        &format!("{} → {}", event.from.code(), event.to.code()),
    )
    .await?;
    Ok(Ok(state.store.signal(id).await?))
}

/// `POST /api/surveillance/signals/{id}` with `{"status": "...", "note": "..."}`.
pub async fn api_verify(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<Id>,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let Some(who) = caller(&state, &headers).await else {
        return unauthenticated(&state, "/api/surveillance/signals").await;
    };
    let r: VerifyRequest = match crate::context::api_body(&body) {
        Ok(r) => r,
        Err(r) => {
            return Ok(refuse(
                StatusCode::BAD_REQUEST,
                r.field.as_deref().unwrap_or("body"),
                format!("not a verification step: {}", r.message),
            ))
        }
    };
    Ok(match verify(&state, &who, id, &r).await? {
        Ok(s) => Json(s).into_response(),
        Err((status, field, why)) => refuse(status, field, why),
    })
}
