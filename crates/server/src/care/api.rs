//! The JSON API of tiered care: `POST /api/referrals` (refer, optionally with a
//! reserved slot), `GET /api/referrals?box=inbox|sent` (an organisation's referrals,
//! paged), `GET /api/referrals/{id}` (one, with its steps), `POST
//! /api/referrals/{id}/steps` (move its task), `POST /api/orders` (order a test with the
//! recognition check) and `GET /api/slots` (the pool's free slots, earliest first).
//! Refusals answer `{"error", "field"}`.

use super::*;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use dhp_store::{Finding, ReferralFilter, ReferralStep, SlotQuery};
use serde_json::{json, Value};

use crate::context::caller;

async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<Principal, Box<Response>> {
    caller(state, headers).await.ok_or_else(|| {
        Box::new(Refusal::bare(StatusCode::UNAUTHORIZED, "sign in or send a bearer token").api())
    })
}

pub(crate) fn referral_json(r: &ReferralRow, steps: Option<&[ReferralStep]>) -> Value {
    let mut v = json!({
        "id": r.id,
        "resident_id": r.resident_id,
        "direction": r.direction.as_str(),
        "requester_org": r.from_org,
        "performer_org": r.to_org,
        "requester": r.requester,
        "reason": r.reason,
        "priority": r.priority.as_str(),
        "diagnosis": r.diagnosis,
        "appointment_id": r.appointment_id,
        "summary": r.summary,
        "follow_up": r.follow_up.map(|d| d.to_string()),
        "status": r.status.as_str(),
        "created": r.created.to_string(),
        "updated": r.updated.to_string(),
    });
    if let Some(steps) = steps {
        v["steps"] = steps
            .iter()
            .map(|s| {
                json!({
                    "status": s.status.as_str(),
                    "at": s.at.to_string(),
                    "by": s.by_user,
                    "reason": s.reason,
                })
            })
            .collect();
    }
    v
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let who = match signed_in(&state, &headers).await {
        Ok(w) => w,
        Err(r) => return Ok(*r),
    };
    let req: ReferRequest = match crate::context::api_body(&body) {
        Ok(r) => r,
        Err(r) => return Ok(r.api()),
    };
    Ok(match refer(&state, &who, &req).await? {
        Ok(id) => {
            let (row, steps) = state.store.referral(id).await?;
            (StatusCode::CREATED, Json(referral_json(&row, Some(&steps)))).into_response()
        }
        Err(r) => r.api(),
    })
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// `inbox` (referred to the caller's organisation, the default) or `sent`.
    #[serde(rename = "box")]
    pub box_: Option<String>,
    pub direction: Option<String>,
    /// `1`: only referrals not yet final.
    pub open: Option<String>,
    pub page: Option<String>,
}

/// Referrals listed per page.
pub(crate) const PAGE_SIZE: i64 = 25;

pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Response, AppError> {
    let who = match signed_in(&state, &headers).await {
        Ok(w) => w,
        Err(r) => return Ok(*r),
    };
    let Some(org) = carer(&who) else {
        return Ok(Refusal::new(
            StatusCode::FORBIDDEN,
            "role",
            "referral lists are for family doctors and hospital clinicians",
        )
        .api());
    };
    let received = match q.box_.as_deref().unwrap_or("inbox") {
        "inbox" => true,
        "sent" => false,
        _ => return Ok(Refusal::bad("box", "box is inbox or sent").api()),
    };
    let direction = match q.direction.as_deref().filter(|d| !d.is_empty()) {
        None => None,
        Some(d) => match Direction::parse(d) {
            Some(d) => Some(d),
            None => return Ok(Refusal::bad("direction", "direction is up or down").api()),
        },
    };
    let page = match q.page.as_deref().filter(|p| !p.is_empty()) {
        None => 1,
        Some(p) => match p.parse::<i64>() {
            Ok(n) if (1..=100_000).contains(&n) => n,
            _ => return Ok(Refusal::bad("page", "page is a number from 1").api()),
        },
    };
    let filter = ReferralFilter {
        org,
        received,
        direction,
        open_only: q.open.as_deref() == Some("1"),
    };
    let (rows, total) = state
        .store
        .referrals(&filter, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        .await?;
    for r in &rows {
        note(
            &state,
            &who,
            "read",
            &format!("ServiceRequest/{}", r.id),
            Some(r.resident_id),
            "success",
            "referral list",
        )
        .await?;
    }
    Ok(Json(json!({
        "total": total,
        "page": page,
        "page_size": PAGE_SIZE,
        "referrals": rows.iter().map(|r| referral_json(r, None)).collect::<Vec<_>>(),
    }))
    .into_response())
}

/// Referral `id` if `who` is on one of its sides (the read audited either way).
pub(crate) async fn visible(
    state: &AppState,
    who: &Principal,
    id: Id,
) -> Result<Result<(ReferralRow, Vec<ReferralStep>), Refusal>, AppError> {
    let resource = format!("ServiceRequest/{id}");
    let (row, steps) = match state.store.referral(id).await {
        Ok(x) => x,
        Err(StoreError::NotFound(_)) => {
            note(state, who, "read", &resource, None, "not-found", "referral").await?;
            return Ok(Err(Refusal::new(
                StatusCode::NOT_FOUND,
                "id",
                format!("referral {id} does not exist"),
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let org = carer(who);
    if org.is_none() || (org != Some(row.from_org) && org != Some(row.to_org)) {
        note(
            state,
            who,
            "read",
            &resource,
            Some(row.resident_id),
            "denied",
            "referral",
        )
        .await?;
        return Ok(Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "organisation",
            "a referral is seen by the organisations that sent and received it",
        )));
    }
    note(
        state,
        who,
        "read",
        &resource,
        Some(row.resident_id),
        "success",
        "referral",
    )
    .await?;
    Ok(Ok((row, steps)))
}

pub async fn one(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let who = match signed_in(&state, &headers).await {
        Ok(w) => w,
        Err(r) => return Ok(*r),
    };
    let Ok(id) = id.parse::<Id>() else {
        return Ok(Refusal::bad("id", format!("{id:?} is not a referral id")).api());
    };
    Ok(match visible(&state, &who, id).await? {
        Ok((row, steps)) => Json(referral_json(&row, Some(&steps))).into_response(),
        Err(r) => r.api(),
    })
}

#[derive(Debug, Deserialize)]
pub struct StepRequest {
    pub act: String,
    #[serde(default)]
    pub reason: Option<String>,
}

pub async fn take_step(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let who = match signed_in(&state, &headers).await {
        Ok(w) => w,
        Err(r) => return Ok(*r),
    };
    let req: StepRequest = match crate::context::api_body(&body) {
        Ok(r) => r,
        Err(r) => return Ok(r.api()),
    };
    let Ok(id) = id.parse::<Id>() else {
        return Ok(Refusal::bad("id", format!("{id:?} is not a referral id")).api());
    };
    Ok(
        match step(&state, &who, id, &req.act, req.reason.as_deref()).await? {
            Ok(row) => Json(referral_json(&row, None)).into_response(),
            Err(r) => r.api(),
        },
    )
}

pub async fn order_test(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let who = match signed_in(&state, &headers).await {
        Ok(w) => w,
        Err(r) => return Ok(*r),
    };
    let req: OrderRequest = match crate::context::api_body(&body) {
        Ok(r) => r,
        Err(r) => return Ok(r.api()),
    };
    Ok(match order(&state, &who, &req).await? {
        Ok(OrderOutcome::Ordered(id)) => (
            StatusCode::CREATED,
            Json(json!({ "id": id, "outcome": "ordered" })),
        )
            .into_response(),
        Ok(OrderOutcome::Recognised(id)) => (
            StatusCode::CREATED,
            Json(json!({ "id": id, "outcome": "recognised" })),
        )
            .into_response(),
        Ok(OrderOutcome::Standing(p)) => {
            let mut standing = json!({
                "id": p.prior.result_id,
                "code": p.prior.code,
                "effective": p.prior.effective.to_string(),
                "organisation": p.prior.org_id,
            });
            match &p.finding {
                Finding::Value { value, unit } => {
                    standing["value"] = json!(value);
                    standing["unit"] = json!(unit);
                }
                Finding::Study { modality, findings } => {
                    standing["modality"] = json!(modality);
                    standing["findings"] = json!(findings);
                }
            }
            (
            StatusCode::CONFLICT,
            Json(json!({
                "error": "a recognised result stands: send use_standing=1 to use it, or an exception reason to repeat the test",
                "field": "exception",
                "standing": standing,
                "exceptions": table().exceptions.iter().map(|e| e.code.as_str()).collect::<Vec<_>>(),
            })),
        )
            .into_response()
        }
        Err(r) => r.api(),
    })
}

#[derive(Debug, Deserialize)]
pub struct SlotsQuery {
    /// Organisation code.
    pub org: Option<String>,
    pub service: Option<String>,
    /// First day (`YYYY-MM-DD`, default the district's today) and days ahead (default 14).
    pub from: Option<String>,
    pub days: Option<String>,
    /// `1`: the places a referral may take (reserved ones too).
    pub referral: Option<String>,
    pub limit: Option<String>,
}

pub async fn slots(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<SlotsQuery>,
) -> Result<Response, AppError> {
    let who = match signed_in(&state, &headers).await {
        Ok(w) => w,
        Err(r) => return Ok(*r),
    };
    let referral = q.referral.as_deref() == Some("1");
    if referral && carer(&who).is_none() {
        return Ok(Refusal::new(
            StatusCode::FORBIDDEN,
            "referral",
            "reserved places are booked by family doctors and clinicians with a referral",
        )
        .api());
    }
    let now = district_now(&state).await?;
    let from = match q.from.as_deref().filter(|s| !s.is_empty()) {
        None => now.date(),
        Some(s) => match s.parse::<NaiveDate>() {
            Ok(d) => d,
            Err(_) => return Ok(Refusal::bad("from", "from is a date (YYYY-MM-DD)").api()),
        },
    };
    let days = match q.days.as_deref().filter(|s| !s.is_empty()) {
        None => 14,
        Some(s) => match s.parse::<i64>() {
            Ok(n) if (1..=90).contains(&n) => n,
            _ => return Ok(Refusal::bad("days", "days is a number from 1 to 90").api()),
        },
    };
    let limit = match q.limit.as_deref().filter(|s| !s.is_empty()) {
        None => 20,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=200).contains(&n) => n,
            _ => return Ok(Refusal::bad("limit", "limit is a number from 1 to 200").api()),
        },
    };
    let orgs = state.orgs().await?;
    let org_id = match q.org.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(code) => match orgs.values().find(|o| o.code == code) {
            Some(o) => Some(o.id),
            None => {
                return Ok(Refusal::bad("org", format!("no organisation has code {code:?}")).api())
            }
        },
    };
    let start = from.and_hms_opt(0, 0, 0).unwrap_or_default();
    let found = state
        .store
        .find_slots(&SlotQuery {
            org_id,
            service: q.service.clone().filter(|s| !s.is_empty()),
            practitioner_id: None,
            from: start,
            to: start + chrono::Duration::days(days),
            channel: if referral {
                Channel::Referral
            } else {
                Channel::Public
            },
            now,
            limit,
        })
        .await?;
    let channel = if referral {
        Channel::Referral
    } else {
        Channel::Public
    };
    Ok(Json(json!({
        "slots": found.iter().map(|s| json!({
            "id": s.slot.id,
            "organisation": orgs.get(&s.org_id).map(|o| o.code.as_str()),
            "service": s.service,
            "start": s.slot.start.to_string(),
            "end": s.slot.end.to_string(),
            "capacity": s.slot.capacity,
            "booked": s.booked,
            "available": s.slot.limit(channel, now).saturating_sub(s.booked),
        })).collect::<Vec<_>>(),
    }))
    .into_response())
}
