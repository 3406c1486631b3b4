//! Surveillance and early warning over HTTP (SPEC capability 5): case reports from
//! clinical systems (`POST /api/surveillance/cases`), sentinel daily counts with zero
//! reports (`POST /api/surveillance/sentinel`), signals and their verification
//! (`GET /api/surveillance/signals`, `POST /api/surveillance/signals/{id}`), and the
//! CDC pages: today's signals, a grid of streets coloured by signal, per-disease charts
//! with the threshold drawn, a signal's detail with its verification history.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Json};
use chrono::{Days, Local, NaiveDate, NaiveDateTime};
use dhp_analytics::surveillance as runs;
use dhp_core::access::{Principal, Role};
use dhp_core::surveillance::{
    self as sv, check_case_report, merge_alarms, timeliness, Alarm, Cadence, CaseReport,
    CaseStatus, DateBasis, SentinelReport, Signal, SignalEvent, SignalStatus,
};
use dhp_core::{Id, Organisation};
use dhp_store::StoreError;
use serde::Deserialize;

use crate::audit::{self, Actor};
use crate::contracts::caller;
use crate::i18n::{messages, Messages};
use crate::pages::current_user;
use crate::workbench::{as_of, principal_of};
use crate::{AppError, AppState};

/// A refusal naming the field at fault.
fn refuse(status: StatusCode, field: &str, why: impl std::fmt::Display) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": why.to_string(), "field": field })),
    )
        .into_response()
}

/// Who may send reports: clinical systems and the clinicians and doctors who diagnose.
fn may_report(who: &Principal) -> bool {
    matches!(
        who.role,
        Role::System | Role::HospitalClinician | Role::FamilyDoctor | Role::PublicHealthDoctor
    )
}

/// Who may see signals: the CDC and the commission.
fn may_watch(who: &Principal) -> bool {
    matches!(who.role, Role::PublicHealthDoctor | Role::Manager)
}

/// Who verifies signals: the CDC.
fn may_verify(who: &Principal) -> bool {
    who.role == Role::PublicHealthDoctor
}

async fn unauthenticated(state: &AppState, resource: &str) -> Result<Response, AppError> {
    audit::record(
        &*state.store,
        &Actor::unverified(""),
        "create",
        resource,
        None,
        "unauthenticated",
        "no session or bearer token",
    )
    .await?;
    Ok(refuse(
        StatusCode::UNAUTHORIZED,
        "authorization",
        "sign in or send a bearer token from POST /auth/token",
    ))
}

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

fn parse_time(field: &'static str, v: &str) -> Result<NaiveDateTime, (&'static str, String)> {
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

fn required<'a>(
    field: &'static str,
    v: &'a Option<String>,
) -> Result<&'a str, (&'static str, String)> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or((field, format!("{field} is required")))
}

/// Checks a request against the registry and the disease table; builds the report.
async fn case_from_request(
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
        None => Local::now().naive_local(),
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
async fn receive(
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
async fn report_sender<T: serde::de::DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    resource: &str,
    what: &str,
) -> Result<Result<(Principal, T), Response>, AppError> {
    let Some(who) = caller(state, headers) else {
        return Ok(Err(unauthenticated(state, resource).await?));
    };
    if !may_report(&who) {
        return Ok(Err(refuse(
            StatusCode::FORBIDDEN,
            "authorization",
            format!("this role does not send {what}s"),
        )));
    }
    Ok(match serde_json::from_slice(body) {
        Ok(r) => Ok((who, r)),
        Err(e) => Err(refuse(
            StatusCode::BAD_REQUEST,
            "body",
            format!("not a {what}: {e}"),
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
        .put_sentinel_reports(&rows, Local::now().naive_local())
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
    since: Option<String>,
}

/// `GET /api/surveillance/signals?since=YYYY-MM-DD` (default: the last 30 days).
pub async fn api_signals(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<SinceQuery>,
) -> Result<Response, AppError> {
    let Some(who) = caller(&state, &headers) else {
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
async fn verify(
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
        at: Local::now().naive_local(),
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
    let Some(who) = caller(&state, &headers) else {
        return unauthenticated(&state, "/api/surveillance/signals").await;
    };
    let r: VerifyRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return Ok(refuse(
                StatusCode::BAD_REQUEST,
                "body",
                format!("not a verification step: {e}"),
            ))
        }
    };
    Ok(match verify(&state, &who, id, &r).await? {
        Ok(s) => Json(s).into_response(),
        Err((status, field, why)) => refuse(status, field, why),
    })
}

// ---------------------------------------------------------------------------------
// Pages

/// Display name of a series key (disease or `syndrome:<code>`).
fn disease_name(key: &str, zh: bool) -> String {
    if let Some(code) = key.strip_prefix("syndrome:") {
        return sv::syndrome(code)
            .map(|s| {
                format!(
                    "{}（{}）",
                    if zh { &s.name_zh } else { &s.name_en },
                    if zh { "症候群" } else { "syndrome" }
                )
            })
            .unwrap_or_else(|| key.to_string());
    }
    sv::disease(key)
        .map(|d| {
            if zh {
                d.name_zh.clone()
            } else {
                d.name_en.clone()
            }
        })
        .unwrap_or_else(|| key.to_string())
}

fn org_name(orgs: &HashMap<Id, Organisation>, code: &str, zh: bool) -> String {
    orgs.values()
        .find(|o| o.code == code)
        .map(|o| {
            if zh {
                o.name_zh.clone()
            } else {
                o.name_en.clone()
            }
        })
        .unwrap_or_else(|| code.to_string())
}

/// An inline SVG line chart: counts as bars, the threshold as a dashed line, alarm
/// days marked.
pub(crate) fn chart_svg(
    days: &[NaiveDate],
    counts: &[f64],
    threshold: &[Option<f64>],
    alarms: &[bool],
    label_threshold: &str,
) -> String {
    let (w, h, left, bottom, top) = (760.0, 220.0, 36.0, 24.0, 10.0);
    let n = counts.len().max(1);
    let max = counts
        .iter()
        .copied()
        .chain(
            threshold
                .iter()
                .flatten()
                .copied()
                .filter(|v| v.is_finite()),
        )
        .fold(1.0f64, f64::max)
        * 1.1;
    let x = |i: usize| left + (w - left - 8.0) * (i as f64 + 0.5) / n as f64;
    let y = |v: f64| top + (h - top - bottom) * (1.0 - v / max);
    let bar = ((w - left - 8.0) / n as f64 * 0.8).max(1.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" xmlns="http://www.w3.org/2000/svg">"#
    );
    for k in 0..=4 {
        let v = max * k as f64 / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e3e7ee"/><text x="{}" y="{:.1}" class="ax">{}</text>"##,
            w - 8.0,
            left - 4.0,
            y(v) + 4.0,
            if max < 8.0 {
                format!("{v:.1}")
            } else {
                format!("{v:.0}")
            },
            y = y(v)
        );
    }
    for (i, c) in counts.iter().enumerate() {
        let cls = if alarms.get(i).copied().unwrap_or(false) {
            "al"
        } else {
            "ct"
        };
        let _ = write!(
            s,
            r#"<rect class="{cls}" x="{:.1}" y="{:.1}" width="{bar:.1}" height="{:.1}"/>"#,
            x(i) - bar / 2.0,
            y(*c),
            (y(0.0) - y(*c)).max(0.0)
        );
    }
    let mut path = String::new();
    let mut pen = false;
    for (i, t) in threshold.iter().enumerate() {
        match t.filter(|v| v.is_finite()) {
            Some(v) => {
                let _ = write!(
                    path,
                    "{}{:.1},{:.1} ",
                    if pen { "L" } else { "M" },
                    x(i),
                    y(v.min(max))
                );
                pen = true;
            }
            None => pen = false,
        }
    }
    if !path.is_empty() {
        let _ = write!(s, r#"<path class="th" d="{path}"/>"#);
    }
    let ticks = [0, n / 2, n - 1];
    for i in ticks {
        if let Some(d) = days.get(i) {
            let _ = write!(
                s,
                r#"<text x="{:.1}" y="{}" class="ax mid">{d}</text>"#,
                x(i),
                h - 6.0
            );
        }
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" class="ax th-label">— — {label_threshold}</text></svg>"#,
        w - 170.0,
        top + 12.0
    );
    s
}

/// Daily counts of one disease in one area (district when `area` is the district)
/// and its first detector's scores, for the last `days` days up to `today`.
async fn disease_chart(
    state: &AppState,
    areas: &runs::Areas,
    disease: &str,
    area: &str,
    today: NaiveDate,
    days: usize,
    label: &str,
) -> Result<(String, bool), AppError> {
    let d = sv::disease(disease);
    let basis = d.map(|d| d.aggregate_by()).unwrap_or(DateBasis::Onset);
    let start = today - Days::new(runs::HISTORY_DAYS);
    let counts = state.store.case_counts(basis, start, today).await?;
    let series = runs::case_series(&counts, &[disease], areas, start, today);
    let Some(k) = series.keys.iter().position(|(_, a)| a == area) else {
        return Ok((String::new(), false));
    };
    let x = &series.values[k];
    let detector = runs::detectors_for(disease).into_iter().next();
    let scores = detector
        .map(|a| a.score(x, Cadence::Daily))
        .unwrap_or_else(|| vec![None; x.len()]);
    let from = x.len().saturating_sub(days);
    let dates: Vec<NaiveDate> = (from..x.len()).map(|i| series.day(i)).collect();
    // The threshold is drawn on the scale of the counts shown: for detectors on 7-day
    // totals the bars show 7-day totals too.
    let weekly = matches!(scores.get(x.len() - 1).copied().flatten(), Some(s) if s.observed != x[x.len() - 1]);
    let shown: Vec<f64> = (from..x.len())
        .map(|i| match scores[i] {
            Some(s) if weekly => s.observed,
            _ => x[i],
        })
        .collect();
    let threshold: Vec<Option<f64>> = (from..x.len())
        .map(|i| scores[i].map(|s| s.threshold))
        .collect();
    let alarms: Vec<bool> = (from..x.len())
        .map(|i| scores[i].is_some_and(|s| s.alarm))
        .collect();
    Ok((
        chart_svg(&dates, &shown, &threshold, &alarms, label),
        weekly,
    ))
}

struct Tile {
    name: String,
    class: &'static str,
    count: usize,
    diseases: String,
}

struct SignalRow {
    id: Id,
    days: String,
    disease: String,
    area: String,
    algorithms: String,
    figures: String,
    status: &'static str,
    status_label: String,
}

struct ChartBox {
    title: String,
    href: String,
    svg: String,
}

#[derive(Template)]
#[template(path = "surveillance.html")]
struct CdcPage {
    t: &'static Messages,
    user: Option<crate::security::session::SignedIn>,
    lang: String,
    date: String,
    cards: Vec<(String, String, &'static str)>,
    tiles: Vec<Tile>,
    rows: Vec<SignalRow>,
    charts: Vec<ChartBox>,
    missing: Vec<String>,
    can_run: bool,
    ran: String,
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    lang: Option<String>,
    area: Option<String>,
    ran: Option<String>,
}

fn status_label(t: &Messages, s: SignalStatus) -> String {
    t.get(&format!("sig_{}", s.code())).to_string()
}

/// The signed-in CDC or commission user, or the page to show instead.
fn watcher(
    state: &AppState,
    headers: &HeaderMap,
    t: &'static Messages,
    next: &str,
) -> Result<(crate::security::session::SignedIn, Principal), Box<Response>> {
    let Some(user) = current_user(state, headers) else {
        return Err(Box::new(
            Redirect::to(&format!("/login?lang={}&next={next}", t.get("lang"))).into_response(),
        ));
    };
    match principal_of(&user).filter(may_watch) {
        Some(p) => Ok((user, p)),
        None => Err(Box::new(
            (StatusCode::FORBIDDEN, Html(t.get("cdc_only").to_string())).into_response(),
        )),
    }
}

/// `GET /surveillance`: the CDC view.
pub async fn page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Result<Response, AppError> {
    let t = messages(q.lang.as_deref().unwrap_or("zh"));
    let (user, who) = match watcher(&state, &headers, t, "/surveillance") {
        Ok(x) => x,
        Err(r) => return Ok(*r),
    };
    let zh = t.get("lang") == "zh";
    let today = as_of(&state).await?;
    let orgs = state.orgs().await?;
    let areas = runs::Areas::of(&*state.store).await?;
    let signals = state.store.signals(today - Days::new(60)).await?;
    let open: Vec<&Signal> = signals.iter().filter(|s| s.status.is_open()).collect();
    let recent = |s: &&Signal| (today - s.last_day).num_days() <= 30;
    let mut responses: Vec<f64> = signals.iter().filter_map(|s| s.response_hours()).collect();
    responses.sort_by(f64::total_cmp);
    let median_response = responses
        .get(responses.len() / 2)
        .map(|h| format!("{h:.1} h"))
        .unwrap_or_else(|| "—".into());
    let reports = state
        .store
        .case_reports(today - Days::new(30), today, 100_000)
        .await?;
    let on_time = reports
        .iter()
        .filter(|r| {
            sv::disease(&r.disease)
                .is_some_and(|d| timeliness(d, r.diagnosed_at, r.reported_at).on_time)
        })
        .count();
    let timely = if reports.is_empty() {
        "—".to_string()
    } else {
        format!("{:.1}%", on_time as f64 / reports.len() as f64 * 100.0)
    };
    let last: HashMap<String, NaiveDate> = state
        .store
        .sentinel_last_reports(today)
        .await?
        .into_iter()
        .collect();
    let since = last.values().min().copied().unwrap_or(today);
    let missing: Vec<String> = sv::missing_reports(&areas.sites, &last, today, since)
        .iter()
        .map(|m| {
            format!(
                "{} — {} {} {}",
                org_name(orgs, &m.site, zh),
                m.days,
                t.get("days_no_report"),
                m.last_report
                    .map(|d| format!("({} {d})", t.get("last_report")))
                    .unwrap_or_default()
            )
        })
        .collect();
    let cards = vec![
        (
            t.get("sig_new").to_string(),
            open.iter()
                .filter(|s| s.status == SignalStatus::New)
                .count()
                .to_string(),
            "overdue",
        ),
        (
            t.get("sig_verifying").to_string(),
            open.iter()
                .filter(|s| s.status == SignalStatus::Verifying)
                .count()
                .to_string(),
            "due",
        ),
        (
            t.get("sig_confirmed_30").to_string(),
            signals
                .iter()
                .filter(recent)
                .filter(|s| s.status == SignalStatus::Confirmed)
                .count()
                .to_string(),
            "upcoming",
        ),
        (
            t.get("response_median").to_string(),
            median_response,
            "upcoming",
        ),
        (
            t.get("reports_30").to_string(),
            reports.len().to_string(),
            "upcoming",
        ),
        (t.get("timely_30").to_string(), timely, "upcoming"),
    ];
    // Street grid, coloured by the area's open signals (a confirmed outbreak above all).
    let tiles = areas
        .streets
        .iter()
        .chain(std::iter::once(&areas.district))
        .map(|code| {
            let here: Vec<&Signal> = signals
                .iter()
                .filter(|s| &s.area == code && recent(s) && s.status != SignalStatus::Excluded)
                .collect();
            let confirmed = here.iter().any(|s| s.status == SignalStatus::Confirmed);
            let open_here = here.iter().filter(|s| s.status.is_open()).count();
            let mut names: Vec<String> =
                here.iter().map(|s| disease_name(&s.disease, zh)).collect();
            names.sort();
            names.dedup();
            Tile {
                name: org_name(orgs, code, zh),
                // Confirmed outbreaks first, then by how many signals are open.
                class: match (confirmed, open_here) {
                    (true, _) => "confirmed",
                    (_, 0) => "quiet",
                    (_, 1..=2) => "low",
                    (_, 3..=5) => "mid",
                    _ => "high",
                },
                count: open_here,
                diseases: if names.is_empty() {
                    t.get("no_signals").to_string()
                } else {
                    names.join("、")
                },
            }
        })
        .collect();
    let rows: Vec<SignalRow> = signals
        .iter()
        .filter(|s| s.status.is_open() || recent(s))
        .take(100)
        .map(|s| SignalRow {
            id: s.id,
            days: if s.first_day == s.last_day {
                s.first_day.to_string()
            } else {
                format!("{} – {}", s.first_day, s.last_day)
            },
            disease: disease_name(&s.disease, zh),
            area: org_name(orgs, &s.area, zh),
            algorithms: s.algorithms.clone(),
            figures: format!("{:.0} / {:.1}", s.observed, s.threshold),
            status: s.status.code(),
            status_label: status_label(t, s.status),
        })
        .collect();
    // Charts: the diseases with open signals (district counts), up to four.
    let mut chart_diseases: Vec<(String, String)> = Vec::new();
    for s in &open {
        if s.disease.starts_with("syndrome:") {
            continue;
        }
        if !chart_diseases.iter().any(|(d, _)| d == &s.disease) {
            chart_diseases.push((s.disease.clone(), s.area.clone()));
        }
        if chart_diseases.len() == 4 {
            break;
        }
    }
    let mut charts = Vec::new();
    for (d, area) in chart_diseases {
        charts.push(ChartBox {
            title: format!("{} · {}", disease_name(&d, zh), org_name(orgs, &area, zh)),
            href: format!(
                "/surveillance/disease/{d}?area={area}&lang={}",
                t.get("lang")
            ),
            svg: disease_chart(&state, &areas, &d, &area, today, 120, t.get("threshold"))
                .await?
                .0,
        });
    }
    let page = CdcPage {
        t,
        user: Some(user),
        lang: t.get("lang").to_string(),
        date: today.to_string(),
        cards,
        tiles,
        rows,
        charts,
        missing,
        can_run: may_verify(&who),
        ran: q.ran.unwrap_or_default(),
    };
    Ok(Html(page.render()?).into_response())
}

/// `POST /surveillance/run`: the daily run for the district's current day.
pub async fn run_now(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Result<Response, AppError> {
    let t = messages(q.lang.as_deref().unwrap_or("zh"));
    let (_, who) = match watcher(&state, &headers, t, "/surveillance") {
        Ok(x) => x,
        Err(r) => return Ok(*r),
    };
    if !may_verify(&who) {
        return Ok((StatusCode::FORBIDDEN, Html(t.get("cdc_only").to_string())).into_response());
    }
    let today = as_of(&state).await?;
    let r = runs::run(&*state.store, today, today, Local::now().naive_local()).await?;
    let summary = format!("{}: {} / {}", today, r.new_signals, r.updated_signals);
    Ok(Redirect::to(&format!(
        "/surveillance?lang={}&ran={}",
        t.get("lang"),
        urlencode(&summary)
    ))
    .into_response())
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "signal.html")]
struct SignalPage {
    t: &'static Messages,
    user: Option<crate::security::session::SignedIn>,
    lang: String,
    id: Id,
    title: String,
    status: &'static str,
    status_label: String,
    facts: Vec<(String, String)>,
    svg: String,
    history: Vec<(String, String, String, String)>,
    actions: Vec<(&'static str, String)>,
    error: String,
    area_chart: String,
    area_caption: String,
}

async fn signal_page(
    state: &AppState,
    user: crate::security::session::SignedIn,
    who: &Principal,
    t: &'static Messages,
    id: Id,
    error: String,
) -> Result<Response, AppError> {
    let zh = t.get("lang") == "zh";
    let s = match state.store.signal(id).await {
        Ok(s) => s,
        Err(StoreError::NotFound(_)) => {
            return Ok((
                StatusCode::NOT_FOUND,
                Html(t.get("no_such_signal").to_string()),
            )
                .into_response())
        }
        Err(e) => return Err(e.into()),
    };
    let orgs = state.orgs().await?;
    let n = s.counts.len();
    let days: Vec<NaiveDate> = (0..n)
        .map(|i| s.last_day - Days::new((n - 1 - i) as u64))
        .collect();
    let counts: Vec<f64> = s.counts.iter().map(|c| *c as f64).collect();
    let mut threshold = vec![None; n];
    let mut alarms = vec![false; n];
    if n > 0 {
        threshold[n - 1] = Some(s.threshold);
        alarms[n - 1] = true;
    }
    let svg = chart_svg(&days, &counts, &threshold, &alarms, t.get("threshold"));
    let fmt_time = |v: Option<NaiveDateTime>| {
        v.map(|v| v.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_else(|| "—".into())
    };
    let facts = vec![
        (t.get("area").to_string(), org_name(orgs, &s.area, zh)),
        (
            t.get("alarm_days").to_string(),
            format!("{} – {} ({})", s.first_day, s.last_day, s.alarm_days),
        ),
        (t.get("algorithms").to_string(), s.algorithms.clone()),
        (t.get("observed").to_string(), format!("{:.0}", s.observed)),
        (t.get("expected").to_string(), format!("{:.2}", s.expected)),
        (
            t.get("threshold").to_string(),
            format!("{:.2}", s.threshold),
        ),
        (
            t.get("statistic").to_string(),
            format!("{:.3}", s.statistic),
        ),
        (t.get("raised_at").to_string(), fmt_time(Some(s.raised_at))),
        (t.get("verifying_at").to_string(), fmt_time(s.verifying_at)),
        (
            t.get("response_time").to_string(),
            s.response_hours()
                .map(|h| format!("{h:.1} h"))
                .unwrap_or_else(|| "—".into()),
        ),
        (t.get("closed_at").to_string(), fmt_time(s.closed_at)),
    ];
    let history = state
        .store
        .signal_events(id)
        .await?
        .into_iter()
        .map(|e| {
            (
                e.at.format("%Y-%m-%d %H:%M").to_string(),
                e.username,
                format!("{} → {}", status_label(t, e.from), status_label(t, e.to)),
                e.note,
            )
        })
        .collect();
    let actions = if may_verify(who) {
        [
            SignalStatus::Verifying,
            SignalStatus::Confirmed,
            SignalStatus::Excluded,
        ]
        .into_iter()
        .filter(|to| s.status.can_move_to(*to))
        .map(|to| (to.code(), t.get(&format!("to_{}", to.code())).to_string()))
        .collect()
    } else {
        Vec::new()
    };
    let mut area_caption = String::new();
    let area_chart = if s.disease.starts_with("syndrome:") {
        String::new()
    } else {
        let areas = runs::Areas::of(&*state.store).await?;
        let (svg, weekly) = disease_chart(
            state,
            &areas,
            &s.disease,
            &s.area,
            s.last_day,
            90,
            t.get("threshold"),
        )
        .await?;
        area_caption = t
            .get(if weekly {
                "series_90_weekly"
            } else {
                "series_90"
            })
            .to_string();
        svg
    };
    let page = SignalPage {
        t,
        user: Some(user),
        lang: t.get("lang").to_string(),
        id,
        title: format!(
            "{} · {}",
            disease_name(&s.disease, zh),
            org_name(orgs, &s.area, zh)
        ),
        status: s.status.code(),
        status_label: status_label(t, s.status),
        facts,
        svg,
        history,
        actions,
        error,
        area_chart,
        area_caption,
    };
    let status = if page.error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    Ok((status, Html(page.render()?)).into_response())
}

/// `GET /surveillance/signal/{id}`.
pub async fn signal(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<Id>,
    Query(q): Query<PageQuery>,
) -> Result<Response, AppError> {
    let t = messages(q.lang.as_deref().unwrap_or("zh"));
    let (user, who) = match watcher(&state, &headers, t, &format!("/surveillance/signal/{id}")) {
        Ok(x) => x,
        Err(r) => return Ok(*r),
    };
    signal_page(&state, user, &who, t, id, String::new()).await
}

/// `POST /surveillance/signal/{id}`: a verification step from the page.
pub async fn signal_step(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<Id>,
    Query(q): Query<PageQuery>,
    Form(form): Form<VerifyRequest>,
) -> Result<Response, AppError> {
    let t = messages(q.lang.as_deref().unwrap_or("zh"));
    let (user, who) = match watcher(&state, &headers, t, &format!("/surveillance/signal/{id}")) {
        Ok(x) => x,
        Err(r) => return Ok(*r),
    };
    match verify(&state, &who, id, &form).await? {
        Ok(_) => Ok(
            Redirect::to(&format!("/surveillance/signal/{id}?lang={}", t.get("lang")))
                .into_response(),
        ),
        Err((_, field, why)) => {
            signal_page(&state, user, &who, t, id, format!("{field}: {why}")).await
        }
    }
}

#[derive(Template)]
#[template(path = "disease.html")]
struct DiseasePage {
    t: &'static Messages,
    user: Option<crate::security::session::SignedIn>,
    lang: String,
    title: String,
    note: String,
    svg: String,
    caption: String,
    areas: Vec<(String, String, bool)>,
}

/// `GET /surveillance/disease/{code}?area=CODE`: a year of daily counts with the
/// detector's threshold.
pub async fn disease(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(code): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, AppError> {
    let t = messages(q.lang.as_deref().unwrap_or("zh"));
    let (user, _) = match watcher(
        &state,
        &headers,
        t,
        &format!("/surveillance/disease/{code}"),
    ) {
        Ok(x) => x,
        Err(r) => return Ok(*r),
    };
    let Some(d) = sv::disease(&code) else {
        return Ok((
            StatusCode::NOT_FOUND,
            Html(t.get("no_such_disease").to_string()),
        )
            .into_response());
    };
    let zh = t.get("lang") == "zh";
    let today = as_of(&state).await?;
    let areas = runs::Areas::of(&*state.store).await?;
    let area = q
        .area
        .clone()
        .filter(|a| areas.streets.contains(a) || *a == areas.district)
        .unwrap_or(areas.district.clone());
    let orgs = state.orgs().await?;
    let detectors: Vec<String> = d.detectors().iter().map(|a| a.name().to_string()).collect();
    let (svg, weekly) = disease_chart(
        &state,
        &areas,
        &d.code,
        &area,
        today,
        365,
        t.get("threshold"),
    )
    .await?;
    let page = DiseasePage {
        t,
        user: Some(user),
        lang: t.get("lang").to_string(),
        title: format!(
            "{} · {}",
            if zh { &d.name_zh } else { &d.name_en },
            org_name(orgs, &area, zh)
        ),
        note: format!(
            "{} {} · {} {} · {} {} h",
            t.get("class"),
            if zh {
                d.class.name_zh().to_string()
            } else {
                d.class.code().to_uppercase()
            },
            t.get("algorithms"),
            detectors.join(", "),
            t.get("time_limit"),
            d.limit_hours()
        ),
        svg,
        caption: t
            .get(if weekly {
                "series_365_weekly"
            } else {
                "series_365"
            })
            .to_string(),
        areas: areas
            .streets
            .iter()
            .chain(std::iter::once(&areas.district))
            .map(|a| {
                (
                    format!(
                        "/surveillance/disease/{}?area={a}&lang={}",
                        d.code,
                        t.get("lang")
                    ),
                    org_name(orgs, a, zh),
                    *a == area,
                )
            })
            .collect(),
    };
    Ok(Html(page.render()?).into_response())
}

/// `POST /fhir/Condition/$report`: a Condition with a notifiable code, sent by a
/// clinical system, becomes a case report. Mapping: `code.coding` (our code or
/// ICD-10) → disease; `subject` Patient → resident (and the street of their
/// household); `onsetDateTime` → onset; `recordedDate` → diagnosis time;
/// `verificationStatus` confirmed → confirmed, differential → clinical, provisional or
/// unconfirmed → suspected, refuted → excluded; the sender's organisation reports (an
/// integrating system names it in the `reporting-organization` extension, a code).
/// Answers a Parameters resource, or the FHIR path at fault.
pub(crate) async fn report_condition(
    state: &AppState,
    who: &Principal,
    condition: &serde_json::Value,
) -> Result<Result<serde_json::Value, (String, String)>, AppError> {
    let bad = |path: &str, why: &str| Ok(Err((path.to_string(), why.to_string())));
    if condition["resourceType"] != "Condition" {
        return bad("resourceType", "the body must be a Condition");
    }
    if !may_report(who) {
        return bad("Condition", "this account does not send case reports");
    }
    let disease = condition["code"]["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["code"].as_str())
        .find(|c| sv::disease(c).is_some());
    let Some(disease) = disease else {
        return bad(
            "Condition.code",
            "no coding is a notifiable disease (our code or ICD-10)",
        );
    };
    let Some(patient) = condition["subject"]["reference"]
        .as_str()
        .and_then(|r| r.strip_prefix("Patient/"))
        .and_then(|id| id.parse::<Id>().ok())
    else {
        return bad(
            "Condition.subject",
            "a Patient reference (Patient/{id}) is required",
        );
    };
    let resident = match state.store.resident(patient).await {
        Ok(r) => r,
        Err(StoreError::NotFound(_)) => return bad("Condition.subject", "no such Patient"),
        Err(e) => return Err(e.into()),
    };
    let status = match condition["verificationStatus"]["coding"][0]["code"].as_str() {
        Some("confirmed") => "confirmed",
        Some("differential") => "clinical",
        Some("provisional" | "unconfirmed") => "suspected",
        Some("refuted") => "excluded",
        _ => {
            return bad(
                "Condition.verificationStatus",
                "confirmed, differential, provisional, unconfirmed or refuted is required",
            )
        }
    };
    let reporting_org = condition["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| {
            e["url"]
                .as_str()
                .is_some_and(|u| u.ends_with("/reporting-organization"))
        })
        .and_then(|e| e["valueString"].as_str())
        .map(str::to_string);
    let request = CaseRequest {
        disease: Some(disease.to_string()),
        resident_identity: Some(resident.identity_number.as_str().to_string()),
        reporting_org,
        street: None,
        status: Some(status.to_string()),
        onset_date: condition["onsetDateTime"]
            .as_str()
            .map(|d| d.chars().take(10).collect()),
        diagnosed_at: condition["recordedDate"].as_str().map(|d| {
            // FHIR dateTime: drop seconds' fraction and zone; a bare date is midnight.
            if d.len() == 10 {
                format!("{d}T00:00")
            } else {
                d.chars().take(19).collect()
            }
        }),
        reported_at: None,
    };
    let path = |field: &str| {
        match field {
            "disease" => "Condition.code",
            "resident_identity" | "street" => "Condition.subject",
            "status" => "Condition.verificationStatus",
            "onset_date" => "Condition.onsetDateTime",
            "diagnosed_at" | "reported_at" => "Condition.recordedDate",
            "reporting_org" => "Condition.extension",
            _ => "Condition",
        }
        .to_string()
    };
    let report = match case_from_request(state, who, &request).await? {
        Ok(r) => r,
        Err((field, why)) => return Ok(Err((path(field), why))),
    };
    let answer = receive(state, who, report, "/fhir/Condition/$report").await?;
    let mut parameters = vec![
        serde_json::json!({"name": "caseReport", "valueString": answer["id"].to_string()}),
        serde_json::json!({"name": "disease", "valueString": answer["disease"]}),
        serde_json::json!({"name": "onTime", "valueBoolean": answer["timeliness"]["on_time"]}),
        serde_json::json!({"name": "hoursToReport", "valueDecimal": answer["timeliness"]["hours"]}),
        serde_json::json!({"name": "limitHours", "valueInteger": answer["timeliness"]["limit_hours"]}),
    ];
    if let Some(signal) = answer["signal"].as_i64() {
        parameters.push(serde_json::json!({"name": "signal", "valueString": signal.to_string()}));
    }
    Ok(Ok(
        serde_json::json!({"resourceType": "Parameters", "parameter": parameters}),
    ))
}
