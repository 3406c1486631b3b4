//! Emergency access ("break the glass", 等保三级 access control with accountability): a
//! hospital clinician or family doctor who must treat a resident outside their scope
//! opens the record with a reason. The grant lasts `EMERGENCY_HOURS`, every access under
//! it is an audit row saying so, and the commission's managers see every grant with the
//! accesses made under it.
//!
//! - `POST /api/emergency-access` `{"identity_number": "…", "reason": "…"}` → `201`
//!   `{"patient": "Patient/123", "expires": "…"}` (bearer token, or the session with
//!   `X-CSRF-Token`).
//! - `GET /api/emergency-access?days=30` → the grants (managers; audited), and the
//!   same as a page at `/emergency-access`.

use axum::routing::get;
use axum::Router;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Json;
use chrono::{Duration, Utc};
use dhp_core::access::{
    may_break_glass, may_read_audit_log, may_read_resident, Principal, EMERGENCY_HOURS,
    EMERGENCY_REASON_MIN,
};
use dhp_core::IdentityNumber;
use dhp_store::{EmergencyGrant, StoreError};
use serde::Deserialize;
use serde_json::json;

use crate::audit::{self, Actor};
use crate::context::current_user;
use crate::context::principal_of;
use crate::context::Refusal;
use crate::i18n::{messages, Messages};
use crate::{AppError, AppState};

/// `/api/emergency-access` and `/emergency-access`.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/emergency-access", get(report).post(open))
        .route("/emergency-access", get(page))
}

/// The longest reason kept.
const REASON_MAX: usize = 500;

/// Grants one account may take in 24 hours (a clinician breaking the glass on many
/// residents is stopped, and it shows in the report).
const DAILY_GRANTS: usize = 20;

fn answer(status: StatusCode, field: &str, why: impl std::fmt::Display) -> Response {
    Refusal::new(status, field, why.to_string()).api()
}

#[derive(Debug, Deserialize)]
pub struct EmergencyRequest {
    identity_number: Option<String>,
    reason: Option<String>,
}

/// Audit a request without a session or token, and answer `401`.
async fn unauthenticated(
    state: &AppState,
    action: &str,
    resource: &str,
) -> Result<Response, AppError> {
    audit::record(
        &*state.store,
        &Actor::unverified(""),
        action,
        resource,
        None,
        "unauthenticated",
        "no session or bearer token",
    )
    .await?;
    Ok(answer(
        StatusCode::UNAUTHORIZED,
        "authorization",
        "sign in or send a bearer token",
    ))
}

/// Audit a refused request and answer it.
async fn refuse(
    state: &AppState,
    who: &Principal,
    status: StatusCode,
    field: &str,
    why: &str,
) -> Result<Response, AppError> {
    let outcome = match status {
        StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS => "denied",
        StatusCode::NOT_FOUND => "not-found",
        _ => "invalid",
    };
    audit::record(
        &*state.store,
        &Actor::from(who),
        "break-glass",
        "Patient",
        None,
        outcome,
        &format!("{}: {field}", status.as_u16()),
    )
    .await?;
    Ok(answer(status, field, why))
}

/// `POST /api/emergency-access`.
pub async fn open(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let Some(who) = crate::context::caller(&state, &headers).await else {
        return unauthenticated(&state, "break-glass", "Patient").await;
    };
    if !may_break_glass(who.role) {
        return refuse(
            &state,
            &who,
            StatusCode::FORBIDDEN,
            "role",
            &format!(
                "the {} role has no emergency access; it is for clinicians treating a patient",
                who.role.as_str()
            ),
        )
        .await;
    }
    let req: EmergencyRequest = match crate::context::api_body(&body) {
        Ok(r) => r,
        Err(r) => {
            return refuse(
                &state,
                &who,
                StatusCode::BAD_REQUEST,
                r.field.as_deref().unwrap_or("body"),
                &r.message,
            )
            .await
        }
    };
    let reason = req.reason.as_deref().map(str::trim).unwrap_or_default();
    let length = reason.chars().count();
    if !(EMERGENCY_REASON_MIN..=REASON_MAX).contains(&length) {
        return refuse(
            &state,
            &who,
            StatusCode::BAD_REQUEST,
            "reason",
            &format!("give the reason for emergency access ({EMERGENCY_REASON_MIN} to {REASON_MAX} characters)"),
        )
        .await;
    }
    let today = dhp_core::clock::today();
    let number = match IdentityNumber::parse(
        req.identity_number.as_deref().unwrap_or_default().trim(),
        today,
    ) {
        Ok(n) => n,
        Err(e) => {
            return refuse(
                &state,
                &who,
                StatusCode::BAD_REQUEST,
                "identity_number",
                &e.to_string(),
            )
            .await
        }
    };
    let resident = match state.store.resident_by_identity(number.as_str()).await {
        Ok(r) => r,
        Err(StoreError::NotFound(_)) => {
            return refuse(
                &state,
                &who,
                StatusCode::NOT_FOUND,
                "identity_number",
                "no resident of the district has this identity number",
            )
            .await
        }
        Err(e) => return Err(e.into()),
    };
    let org = crate::context::org_facts(&state, &who).await?;
    let facts = state
        .store
        .resident_access_facts(resident.id, today)
        .await?;
    let decision = may_read_resident(&who, org.as_ref(), &facts);
    if decision.allowed() && decision.reason() != dhp_core::access::EMERGENCY_ACCESS {
        return Ok((
            StatusCode::OK,
            Json(json!({
                "patient": format!("Patient/{}", resident.id),
                "granted": false,
                "why": format!("already in your scope ({}): no emergency access needed", decision.reason()),
            })),
        )
            .into_response());
    }
    let granted = Utc::now().naive_utc();
    let today_grants = state
        .store
        .emergency_grants(granted - Duration::hours(24))
        .await?
        .iter()
        .filter(|(g, _)| g.username == who.username)
        .count();
    if today_grants >= DAILY_GRANTS {
        return refuse(
            &state,
            &who,
            StatusCode::TOO_MANY_REQUESTS,
            "identity_number",
            &format!("at most {DAILY_GRANTS} emergency accesses a day per account; ask the commission's managers"),
        )
        .await;
    }
    let grant = EmergencyGrant {
        id: uuid::Uuid::now_v7().to_string(),
        username: who.username.clone(),
        role: who.role.as_str().to_string(),
        org_id: who.org_id,
        resident_id: resident.id,
        reason: reason.to_string(),
        granted,
        expires: granted + Duration::hours(EMERGENCY_HOURS),
    };
    // Audited first: no access without its record (fail closed).
    audit::record(
        &*state.store,
        &Actor::from(&who),
        "break-glass",
        &format!("Patient/{}", resident.id),
        Some(resident.id),
        "success",
        &format!(
            "until {} UTC: {reason}",
            grant.expires.format("%Y-%m-%d %H:%M")
        ),
    )
    .await?;
    state.store.grant_emergency_access(&grant).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "patient": format!("Patient/{}", resident.id),
            "granted": true,
            "expires": format!("{}Z", grant.expires.format("%Y-%m-%dT%H:%M:%S")),
            "hours": EMERGENCY_HOURS,
        })),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
pub struct ReportParams {
    days: Option<String>,
}

/// `GET /api/emergency-access?days=N` (default 30, at most 366): every grant with the
/// accesses made under it, for the managers who supervise access.
pub async fn report(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(p): Query<ReportParams>,
) -> Result<Response, AppError> {
    let Some(who) = crate::context::caller(&state, &headers).await else {
        return unauthenticated(&state, "read", "emergency-access").await;
    };
    let actor = Actor::from(&who);
    if !may_read_audit_log(who.role) {
        audit::record(
            &*state.store,
            &actor,
            "read",
            "emergency-access",
            None,
            "denied",
            "role",
        )
        .await?;
        return Ok(answer(
            StatusCode::FORBIDDEN,
            "role",
            "the emergency access report is for the commission's managers",
        ));
    }
    let days = match p.days.as_deref().map(str::parse::<i64>) {
        None => 30,
        Some(Ok(d)) if (1..=366).contains(&d) => d,
        Some(_) => {
            return Ok(answer(
                StatusCode::BAD_REQUEST,
                "days",
                "days must be a whole number from 1 to 366",
            ))
        }
    };
    let since = Utc::now().naive_utc() - Duration::days(days);
    let grants = state.store.emergency_grants(since).await?;
    audit::record(
        &*state.store,
        &actor,
        "read",
        "emergency-access",
        None,
        "success",
        &format!("{} grants in {days} days", grants.len()),
    )
    .await?;
    let now = Utc::now().naive_utc();
    let rows: Vec<_> = grants
        .iter()
        .map(|(g, accesses)| {
            json!({
                "username": g.username, "role": g.role, "org_id": g.org_id,
                "patient": format!("Patient/{}", g.resident_id),
                "reason": g.reason,
                "granted": format!("{}Z", g.granted.format("%Y-%m-%dT%H:%M:%S")),
                "expires": format!("{}Z", g.expires.format("%Y-%m-%dT%H:%M:%S")),
                "active": g.expires > now,
                "accesses": accesses,
            })
        })
        .collect();
    Ok(Json(json!({ "days": days, "grants": rows })).into_response())
}

/// One grant as the report page shows it.
struct GrantRow {
    granted: String,
    who: String,
    role: String,
    org: String,
    resident: String,
    reason: String,
    expires: String,
    active: bool,
    accesses: i64,
}

#[derive(Template)]
#[template(path = "emergency/emergency_access.html")]
struct ReportPage {
    t: &'static Messages,
    user: Option<crate::security::session::SignedIn>,
    lang: String,
    days: i64,
    rows: Vec<GrantRow>,
    total: usize,
    page: usize,
    pages: usize,
}

#[derive(Debug, Deserialize)]
pub struct PageParams {
    days: Option<String>,
    #[serde(default, deserialize_with = "crate::i18n::page_lang")]
    lang: Option<String>,
    page: Option<String>,
}

/// Grants on one page of the report.
const PAGE_ROWS: usize = 50;

/// `GET /emergency-access`: the managers' page of every grant — who opened whose
/// record, why, until when, and how many accesses were made under it.
pub async fn page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(p): Query<PageParams>,
) -> Result<Response, AppError> {
    let t = messages(p.lang.as_deref().unwrap_or("zh"));
    let Some(user) = current_user(&state, &headers) else {
        return Ok(Redirect::to(&format!(
            "/login?lang={}&next=/emergency-access",
            t.get("lang")
        ))
        .into_response());
    };
    let Some(who) = principal_of(&user) else {
        return Ok((
            StatusCode::FORBIDDEN,
            Html(t.get("ea_managers_only").to_string()),
        )
            .into_response());
    };
    let actor = Actor::from(&who);
    if !may_read_audit_log(who.role) {
        audit::record(
            &*state.store,
            &actor,
            "read",
            "emergency-access",
            None,
            "denied",
            "role",
        )
        .await?;
        return Ok((
            StatusCode::FORBIDDEN,
            Html(t.get("ea_managers_only").to_string()),
        )
            .into_response());
    }
    // A period the page offers; anything else is the default month.
    let days = p
        .days
        .as_deref()
        .and_then(|d| d.parse::<i64>().ok())
        .filter(|d| [7, 30, 90, 366].contains(d))
        .unwrap_or(30);
    let now = Utc::now().naive_utc();
    let grants = state
        .store
        .emergency_grants(now - Duration::days(days))
        .await?;
    audit::record(
        &*state.store,
        &actor,
        "read",
        "emergency-access",
        None,
        "success",
        &format!("{} grants in {days} days", grants.len()),
    )
    .await?;
    let orgs = state.orgs().await?;
    let names: std::collections::HashMap<String, String> = state
        .store
        .users()
        .await?
        .into_iter()
        .map(|u| (u.username, u.display_name))
        .collect();
    let zh = t.get("lang") == "zh";
    let local = |at: chrono::NaiveDateTime| {
        (at + Duration::hours(8))
            .format("%Y-%m-%d %H:%M")
            .to_string()
    };
    let total = grants.len();
    let pages = total.div_ceil(PAGE_ROWS).max(1);
    let page = p
        .page
        .as_deref()
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, pages);
    let mut rows = Vec::with_capacity(PAGE_ROWS);
    for (g, accesses) in grants
        .into_iter()
        .skip((page - 1) * PAGE_ROWS)
        .take(PAGE_ROWS)
    {
        // An administrator reviews accesses, not residents: the record's number only.
        let resident = match state.store.resident(g.resident_id).await {
            Ok(r) if !who.role.is_administrator() => {
                format!("{} · {}", r.name, r.identity_number.masked())
            }
            _ => t
                .get("ea_record")
                .replace("{id}", &g.resident_id.to_string()),
        };
        let org = g
            .org_id
            .and_then(|o| orgs.get(&o))
            .map(|o| {
                if zh {
                    o.name_zh.clone()
                } else {
                    o.name_en.clone()
                }
            })
            .unwrap_or_default();
        rows.push(GrantRow {
            granted: local(g.granted),
            who: match names.get(&g.username) {
                Some(name) if *name != g.username && zh => format!("{name}（{}）", g.username),
                Some(name) if *name != g.username => format!("{name} ({})", g.username),
                _ => g.username,
            },
            role: t.role(&g.role).to_string(),
            org,
            resident,
            reason: g.reason,
            expires: local(g.expires),
            active: g.expires > now,
            accesses,
        });
    }
    let view = ReportPage {
        t,
        user: Some(user),
        lang: t.get("lang").into(),
        days,
        rows,
        total,
        page,
        pages,
    };
    Ok(Html(view.render()?).into_response())
}
