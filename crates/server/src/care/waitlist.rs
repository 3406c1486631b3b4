//! The waitlist through the JSON API, for the family doctors and hospital clinicians
//! who book for residents: `POST /api/waitlist` (put a resident in a schedule's line
//! for some days), `GET /api/waitlist?resident_id=` (their entries and offers), `POST
//! /api/waitlist/{id}/accept` (take the place offered) and `POST
//! /api/waitlist/{id}/withdraw` (leave the line; an offer held passes to the next).
//! Every attempt is checked against the caller's scope and audited; refusals answer
//! `{"error", "field"}` and change nothing.

use super::*;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use dhp_core::booking::{Step, Wait};
use dhp_store::WaitEntry;
use serde_json::{json, Value};

use crate::context::caller;

/// A waitlist entry as the JSON API asks for it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WaitRequest {
    #[serde(default)]
    pub resident_id: Option<Id>,
    #[serde(default)]
    pub schedule_id: Option<Id>,
    /// First and last day the resident can come (`YYYY-MM-DD`); the last defaults to
    /// the first.
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
}

fn entry_json(e: &WaitEntry) -> Value {
    json!({
        "id": e.id,
        "schedule_id": e.schedule_id,
        "resident_id": e.resident_id,
        "from": e.from.to_string(),
        "to": e.to.to_string(),
        "channel": e.channel,
        "status": e.status,
        "joined": e.joined.to_string(),
        "ahead": e.ahead,
        "appointment_id": e.appointment_id,
        "offer_until": e.offer_until.map(|t| t.to_string()),
    })
}

/// The caller, a carer at an organisation, or the refusal (audited).
async fn booker(
    state: &AppState,
    headers: &HeaderMap,
    resident: Option<Id>,
) -> Result<Result<Principal, Refusal>, AppError> {
    let Some(who) = caller(state, headers).await else {
        return Ok(Err(Refusal::bare(
            StatusCode::UNAUTHORIZED,
            "sign in or send a bearer token",
        )));
    };
    if carer(&who).is_none() {
        note(
            state,
            &who,
            "update",
            "Appointment",
            resident,
            "denied",
            "waitlist",
        )
        .await?;
        return Ok(Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "role",
            "the waitlist is kept by family doctors and hospital clinicians at their organisation",
        )));
    }
    Ok(Ok(who))
}

fn day(field: &'static str, v: Option<&str>) -> Result<Option<NaiveDate>, Refusal> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(d) => d
            .parse::<NaiveDate>()
            .map(Some)
            .map_err(|_| Refusal::bad(field, format!("{d:?} is not a date (YYYY-MM-DD)"))),
    }
}

fn refused(e: StoreError, field: &'static str) -> Result<Refusal, AppError> {
    Ok(match e {
        StoreError::Invalid(m) => {
            // The rule's message starts with the field it concerns (`from: …`).
            let (f, why) = m.split_once(": ").unwrap_or((field, m.as_str()));
            let f = if f == "from" || f == "to" { f } else { field };
            Refusal::bad(f, why.to_string())
        }
        StoreError::Conflict(m) => Refusal::new(StatusCode::CONFLICT, field, m),
        StoreError::NotFound(m) => {
            Refusal::new(StatusCode::NOT_FOUND, field, format!("{m} does not exist"))
        }
        other => return Err(other.into()),
    })
}

pub async fn join(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    // Who asks is known before the body is read.
    let req: WaitRequest = match crate::context::api_body(&body) {
        Ok(r) => r,
        Err(r) => {
            if let Err(no) = booker(&state, &headers, None).await? {
                return Ok(no.api());
            }
            return Ok(r.api());
        }
    };
    let who = match booker(&state, &headers, req.resident_id).await? {
        Ok(w) => w,
        Err(r) => return Ok(r.api()),
    };
    let now = district_now(&state).await?;
    let resident = match in_scope(&state, &who, req.resident_id, "create", now.date()).await? {
        Ok(id) => id,
        Err(r) => return Ok(r.api()),
    };
    let Some(schedule_id) = req.schedule_id else {
        return Ok(Refusal::bad("schedule_id", "schedule_id is required").api());
    };
    let (from, to) = match (
        day("from", req.from.as_deref()),
        day("to", req.to.as_deref()),
    ) {
        (Ok(Some(f)), Ok(t)) => (f, t.unwrap_or(f)),
        (Ok(None), _) => return Ok(Refusal::bad("from", "from (the first day) is required").api()),
        (Err(r), _) | (_, Err(r)) => return Ok(r.api()),
    };
    let wait = Wait {
        schedule_id,
        resident_id: resident,
        from,
        to,
        channel: Channel::Referral,
    };
    let resource = format!("Schedule/{schedule_id}");
    let done = state.store.join_waitlist(&wait, now).await;
    let detail = match &done {
        Ok(id) => format!("waitlist {id}"),
        Err(_) => "waitlist".to_string(),
    };
    let audit = Audit {
        action: "create",
        resource: &resource,
        resident,
        detail: &detail,
    };
    answer(
        &state,
        &who,
        audit,
        done,
        "schedule_id",
        StatusCode::CREATED,
    )
    .await
}

/// What an attempt on the line touched, as the audit log records it.
struct Audit<'a> {
    action: &'a str,
    resource: &'a str,
    resident: Id,
    detail: &'a str,
}

/// The answer to an attempt on entry `done` (its id, or why not): audited either way;
/// the entry as it now stands with `status`, or the refusal naming `field`.
async fn answer(
    state: &AppState,
    who: &Principal,
    a: Audit<'_>,
    done: Result<Id, StoreError>,
    field: &'static str,
    status: StatusCode,
) -> Result<Response, AppError> {
    let outcome = if done.is_ok() { "success" } else { "invalid" };
    note(
        state,
        who,
        a.action,
        a.resource,
        Some(a.resident),
        outcome,
        a.detail,
    )
    .await?;
    match done {
        Ok(id) => {
            let e = state
                .store
                .waitlist_entry(id)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("waitlist entry {id}")))?;
            Ok((status, Json(entry_json(&e))).into_response())
        }
        Err(e) => Ok(refused(e, field)?.api()),
    }
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub resident_id: Option<String>,
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Response, AppError> {
    let resident = match q.resident_id.as_deref().map(str::parse::<Id>) {
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => return Ok(Refusal::bad("resident_id", "resident_id is a number").api()),
        None => None,
    };
    let who = match booker(&state, &headers, resident).await? {
        Ok(w) => w,
        Err(r) => return Ok(r.api()),
    };
    let today = district_now(&state).await?.date();
    let resident = match in_scope(&state, &who, resident, "read", today).await? {
        Ok(id) => id,
        Err(r) => return Ok(r.api()),
    };
    let entries = state.store.waitlist_of(resident).await?;
    Ok(Json(json!({
        "resident_id": resident,
        "entries": entries.iter().map(entry_json).collect::<Vec<_>>(),
    }))
    .into_response())
}

/// Accept an offer or leave the line: the entry's resident must be in the caller's
/// scope.
async fn act(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    accept: bool,
) -> Result<Response, AppError> {
    let Ok(id) = id.parse::<Id>() else {
        return Ok(Refusal::bad("id", format!("{id:?} is not a waitlist entry id")).api());
    };
    let entry = state.store.waitlist_entry(id).await?;
    let who = match booker(state, headers, entry.as_ref().map(|e| e.resident_id)).await? {
        Ok(w) => w,
        Err(r) => return Ok(r.api()),
    };
    let Some(entry) = entry else {
        return Ok(Refusal::new(
            StatusCode::NOT_FOUND,
            "id",
            format!("waitlist entry {id} does not exist"),
        )
        .api());
    };
    let now = district_now(state).await?;
    if let Err(r) = in_scope(state, &who, Some(entry.resident_id), "update", now.date()).await? {
        return Ok(r.api());
    }
    let resource = format!("Schedule/{}", entry.schedule_id);
    let done = if accept {
        match entry.appointment_id.filter(|_| entry.status == "offered") {
            None => Err(StoreError::Conflict(format!(
                "waitlist entry {id} is {}, with no place offered",
                entry.status
            ))),
            Some(a) => state
                .store
                .appointment_step(a, Step::Accept, None, now)
                .await
                .map(|_| ()),
        }
    } else {
        state.store.withdraw_waitlist(id, now).await
    };
    let what = if accept { "accept" } else { "withdraw" };
    let detail = format!("waitlist {id} {what}");
    let audit = Audit {
        action: "update",
        resource: &resource,
        resident: entry.resident_id,
        detail: &detail,
    };
    answer(state, &who, audit, done.map(|()| id), "id", StatusCode::OK).await
}

pub async fn accept(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    act(&state, &headers, &id, true).await
}

pub async fn withdraw(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    act(&state, &headers, &id, false).await
}
