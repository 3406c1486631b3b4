//! Booking through the unified slot pool from the resident portal (SPEC capability
//! 9; the Shanghai 2020 plan's "在线挂号、分时段预约"): a resident finds the open
//! places of the district's hospitals and centres (by service, institution and
//! date, earliest first), books one for themself, and cancels an appointment ahead
//! with a reason. Every booking and cancellation goes through the FHIR write path
//! (the pool's capacity check and the write in one transaction, the reminders
//! queued with it, audited), as the resident's own record — never anyone else's.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use chrono::NaiveDate;
use dhp_core::booking::{Channel, Status};
use dhp_core::{Id, OrgKind};
use dhp_fhir::input::CANCEL_REASON_SYSTEM;
use dhp_store::{SlotQuery, StoreError};
use serde::Deserialize;
use serde_json::json;

use crate::context::{district_now, Refusal};
use crate::fhir::write::{Plan, Refusal as WriteRefusal};
use crate::i18n::{messages, Messages};
use crate::security::session::SignedIn;
use crate::{AppError, AppState};

/// The services a resident may book, as the pool names them.
pub(crate) const SERVICES: [&str; 4] = [
    "general_practice",
    "cardiology",
    "endocrinology",
    "respiratory",
];

/// The reasons a resident gives for cancelling (HL7 appointment-cancellation-reason,
/// the patient's own).
pub(crate) const CANCEL_REASONS: [&str; 5] = ["pat-fb", "pat-lt", "pat-ucp", "pat-mv", "pat"];

/// The reason a rescheduled appointment is cancelled with: the patient's own request
/// (HL7 appointment-cancellation-reason `pat`), made in the portal.
const RESCHEDULE_REASON: &str = "pat";

/// Days ahead a search looks.
const HORIZON_DAYS: i64 = 28;

/// Places a search lists.
const LISTED: usize = 30;

#[derive(Debug, Deserialize)]
pub struct BookQuery {
    #[serde(default, deserialize_with = "crate::i18n::page_lang")]
    pub(crate) lang: Option<String>,
    pub(crate) service: Option<String>,
    /// An institution's code.
    pub(crate) org: Option<String>,
    pub(crate) from: Option<String>,
    /// Rescheduling this appointment of the resident's: the place chosen replaces it.
    pub(crate) moving: Option<String>,
    /// A guardian acting for this child of theirs.
    pub(crate) child: Option<String>,
}

impl BookQuery {
    fn t(&self) -> &'static Messages {
        messages(self.lang.as_deref().unwrap_or("zh"))
    }
}

#[derive(Debug, Deserialize)]
pub struct BookForm {
    pub(crate) slot: String,
    /// The appointment the new place replaces (a reschedule), if any.
    #[serde(default)]
    pub(crate) moving: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CancelForm {
    pub(crate) reason: String,
}

pub(crate) struct Choice {
    value: String,
    label: String,
    chosen: bool,
}

pub(crate) struct Place {
    slot: Id,
    when: String,
    place: String,
    service: String,
    left: u32,
}

#[derive(Template)]
#[template(path = "portal/book.html")]
pub(crate) struct BookPage {
    t: &'static Messages,
    user: Option<SignedIn>,
    lang: String,
    services: Vec<Choice>,
    orgs: Vec<Choice>,
    from: String,
    places: Vec<Place>,
    /// Why the last booking was refused, in words (empty when it was not).
    error: String,
    /// Rescheduling: the appointment replaced (its id) and what it was, in words.
    moving: Option<(Id, String)>,
    /// A guardian booking for a child: `&child=ID` for the links and forms, and the
    /// child's name (empty: for oneself).
    child_q: String,
    child_name: String,
}

/// Where a portal act returns to: the resident's own page, or the child's.
fn home_of(child: Option<Id>) -> String {
    match child {
        Some(c) => format!("/me/children/{c}"),
        None => "/me".into(),
    }
}

/// The resident's own appointment `raw`, still ahead and booked (one that may be
/// moved), or the refusal: none of theirs (404, revealing nothing), or no longer
/// movable (409).
async fn movable(
    state: &AppState,
    t: &Messages,
    resident: Id,
    raw: &str,
) -> Result<Result<dhp_store::AppointmentView, Refusal>, StoreError> {
    let view = match raw.trim().parse::<Id>() {
        Ok(n) => state.store.appointment(n).await?,
        Err(_) => None,
    };
    let Some(view) = view.filter(|v| v.row.resident_id == resident) else {
        return Ok(Err(Refusal::new(
            StatusCode::NOT_FOUND,
            t.get("me_f_appointment"),
            t.get("me_no_appointment"),
        )));
    };
    let now = district_now(state).await?;
    if view.row.status != Status::Booked || view.slot.slot.start <= now {
        return Ok(Err(Refusal::new(
            StatusCode::CONFLICT,
            t.get("me_f_appointment"),
            t.get("me_cannot_cancel"),
        )));
    }
    Ok(Ok(view))
}

/// What an appointment is, in words: when, where, which service.
fn appointment_words(
    t: &Messages,
    orgs: &std::collections::HashMap<Id, dhp_core::Organisation>,
    v: &dhp_store::AppointmentView,
) -> String {
    let zh = t.get("lang") == "zh";
    format!(
        "{} · {} · {}",
        v.slot.slot.start.format("%Y-%m-%d %H:%M"),
        orgs.get(&v.slot.org_id)
            .map(|o| if zh { &o.name_zh } else { &o.name_en }.clone())
            .unwrap_or_default(),
        service_name(t, &v.slot.service)
    )
}

/// A service's name in the page's language.
pub(crate) fn service_name(t: &Messages, service: &str) -> String {
    let key = format!("svc_{service}");
    match t.get(&key) {
        k if k == key => service.to_string(),
        name => name.to_string(),
    }
}

/// `GET /me/book`: the open places, earliest first.
pub async fn search(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<BookQuery>,
) -> Result<Response, AppError> {
    let t = q.t();
    let (user, who, me) = match super::resident(&state, &headers, t, "/me/book") {
        Ok(x) => x,
        Err(r) => return Ok(*r),
    };
    let (_, me, _) =
        match super::children::acting_for(&state, t, &user, who, me, q.child.as_deref()).await? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
    Ok(
        match book_page(&state, t, user.clone(), me, &q, String::new()).await? {
            Ok(page) => Html(page.render()?).into_response(),
            Err(r) => r.page(t, Some(user), ("/me/book", "me_book")),
        },
    )
}

async fn book_page(
    state: &AppState,
    t: &'static Messages,
    user: SignedIn,
    me: Id,
    q: &BookQuery,
    error: String,
) -> Result<Result<BookPage, Refusal>, AppError> {
    let zh = t.get("lang") == "zh";
    let now = district_now(state).await?;
    // Rescheduling: the appointment moved must be the resident's own, still ahead.
    let moving = match q.moving.as_deref().filter(|m| !m.is_empty()) {
        None => None,
        Some(raw) => match movable(state, t, me, raw).await? {
            Ok(v) => Some(v),
            Err(r) => return Ok(Err(r)),
        },
    };
    let from = match q.from.as_deref().filter(|s| !s.is_empty()) {
        None => now.date(),
        Some(s) => match s.parse::<NaiveDate>() {
            Ok(d) => d.max(now.date()),
            Err(_) => {
                return Ok(Err(Refusal::bad(
                    t.get("field_date"),
                    t.get("due_bad_date").replace("{value}", s),
                )))
            }
        },
    };
    let service = match q.service.as_deref().filter(|s| !s.is_empty()) {
        // A reschedule looks in the moved appointment's service unless told otherwise.
        None => moving.as_ref().map(|v| v.slot.service.clone()),
        Some(s) if SERVICES.contains(&s) => Some(s.to_string()),
        Some(s) => {
            return Ok(Err(Refusal::bad(
                t.get("me_f_service"),
                t.get("me_bad_service").replace("{value}", s),
            )))
        }
    };
    let all = state.orgs().await?;
    let mut places_to_book: Vec<&dhp_core::Organisation> = all
        .values()
        .filter(|o| matches!(o.kind, OrgKind::Hospital | OrgKind::CommunityHealthCentre))
        .collect();
    places_to_book.sort_by(|a, b| {
        (a.kind != OrgKind::Hospital, &a.code).cmp(&(b.kind != OrgKind::Hospital, &b.code))
    });
    let org = match q.org.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(code) => match places_to_book.iter().find(|o| o.code == code) {
            Some(o) => Some(o.id),
            None => {
                return Ok(Err(Refusal::bad(
                    t.get("field_org"),
                    format!("{code}: {}", t.get("no_such_org")),
                )))
            }
        },
    };
    let start = from.and_hms_opt(0, 0, 0).unwrap_or_default();
    let found = state
        .store
        .find_slots(&SlotQuery {
            org_id: org,
            service: service.clone(),
            practitioner_id: None,
            from: start,
            to: start + chrono::Duration::days(HORIZON_DAYS),
            channel: Channel::Public,
            now,
            limit: LISTED,
        })
        .await?;
    let name = |id: Id| {
        all.get(&id)
            .map(|o| if zh { &o.name_zh } else { &o.name_en }.clone())
            .unwrap_or_default()
    };
    let places = found
        .iter()
        .map(|s| Place {
            slot: s.slot.id,
            when: format!(
                "{}–{}",
                s.slot.start.format("%Y-%m-%d %H:%M"),
                s.slot.end.format("%H:%M")
            ),
            place: name(s.org_id),
            service: service_name(t, &s.service),
            left: s.slot.limit(Channel::Public, now).saturating_sub(s.booked),
        })
        .collect();
    let mut services = vec![Choice {
        value: String::new(),
        label: t.get("me_any_service").to_string(),
        chosen: service.is_none(),
    }];
    services.extend(SERVICES.iter().map(|s| Choice {
        value: (*s).to_string(),
        label: service_name(t, s),
        chosen: service.as_deref() == Some(*s),
    }));
    let mut orgs = vec![Choice {
        value: String::new(),
        label: t.get("me_any_place").to_string(),
        chosen: org.is_none(),
    }];
    orgs.extend(places_to_book.iter().map(|o| Choice {
        value: o.code.clone(),
        label: if zh { &o.name_zh } else { &o.name_en }.clone(),
        chosen: org == Some(o.id),
    }));
    Ok(Ok(BookPage {
        t,
        user: Some(user),
        lang: t.get("lang").into(),
        services,
        orgs,
        from: from.to_string(),
        places,
        error,
        moving: moving
            .as_ref()
            .map(|v| (v.row.id, appointment_words(t, all, v))),
        child_q: q
            .child
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(|_| format!("&child={me}"))
            .unwrap_or_default(),
        child_name: match q.child.as_deref().filter(|c| !c.is_empty()) {
            Some(_) => state.store.resident(me).await?.name,
            None => String::new(),
        },
    }))
}

/// Why the pool refused, in the resident's words: the slot filled, the resident
/// already has that service that day or an overlapping time, the slot began.
fn refusal_words(t: &Messages, why: &str) -> String {
    let key = if why.contains("already booked for") {
        "me_book_same_day"
    } else if why.contains("overlaps") {
        "me_book_overlap"
    } else if why.contains("began") || why.contains("in the past") {
        "me_book_past"
    } else if why.contains("does not exist") || why.contains("withdrawn") || why.contains(" is ") {
        "me_book_gone"
    } else {
        "me_book_full"
    };
    t.get(key).to_string()
}

/// `POST /me/book`: book the place for the signed-in resident.
pub async fn book(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<BookQuery>,
    Form(form): Form<BookForm>,
) -> Result<Response, AppError> {
    let t = q.t();
    let (user, who, id) = match super::resident(&state, &headers, t, "/me/book") {
        Ok(x) => x,
        Err(r) => return Ok(*r),
    };
    let (who, id, child) =
        match super::children::acting_for(&state, t, &user, who, id, q.child.as_deref()).await? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
    // A reschedule: the appointment replaced must be the resident's own, still ahead.
    let moving = match form.moving.as_deref().filter(|m| !m.is_empty()) {
        None => None,
        Some(raw) => match movable(&state, t, id, raw).await? {
            Ok(v) => Some(v),
            Err(r) => return Ok(r.page(t, Some(user), ("/me", "me_title"))),
        },
    };
    let Ok(slot) = form.slot.trim().parse::<Id>() else {
        return Ok(
            Refusal::bad(t.get("me_f_slot"), t.get("me_book_gone")).page(
                t,
                Some(user),
                ("/me/book", "me_book"),
            ),
        );
    };
    let body = json!({
        "resourceType": "Appointment",
        "status": "booked",
        "slot": [{ "reference": format!("Slot/{slot}") }],
        "participant": [{ "actor": { "reference": format!("Patient/{id}") }, "status": "accepted" }],
    });
    let mut plan = Plan::new(&state, &who).await?;
    // Moving: the old one is cancelled in the same write as the new one is booked (the
    // pool applies the cancellation first), both or neither.
    if let Some(old) = &moving {
        let mut cancelled = crate::fhir::scheduling::appointment_json(old);
        cancelled["status"] = json!("cancelled");
        cancelled["cancelationReason"] = json!({
            "coding": [{ "system": CANCEL_REASON_SYSTEM, "code": RESCHEDULE_REASON }]
        });
        match plan
            .update("Appointment", old.row.id, cancelled, None)
            .await
        {
            Ok(_) => {}
            Err(WriteRefusal::Outcome(_)) => {
                return Ok(Refusal::new(
                    StatusCode::CONFLICT,
                    t.get("me_f_appointment"),
                    t.get("me_cannot_cancel"),
                )
                .page(t, Some(user), ("/me", "me_title")))
            }
            Err(WriteRefusal::Failed(e)) => return Err(e),
        }
    }
    let refused = match plan.create("Appointment", body).await {
        Ok(_) => match plan.commit().await {
            Ok(()) => None,
            Err(StoreError::Conflict(why) | StoreError::Invalid(why)) => Some(why),
            Err(e) => return Err(e.into()),
        },
        Err(WriteRefusal::Outcome(o)) => Some(
            o.issues
                .iter()
                .map(|i| i.diagnostics.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Err(WriteRefusal::Failed(e)) => return Err(e),
    };
    match refused {
        None => Ok(Redirect::to(&format!(
            "{}?lang={}&saved={}#visits",
            home_of(child),
            t.get("lang"),
            if moving.is_some() { "moved" } else { "booked" }
        ))
        .into_response()),
        Some(why) => {
            let error = refusal_words(t, &why);
            let q = BookQuery {
                moving: moving.as_ref().map(|v| v.row.id.to_string()),
                ..q
            };
            Ok(
                match book_page(&state, t, user.clone(), id, &q, error).await? {
                    Ok(page) => (StatusCode::CONFLICT, Html(page.render()?)).into_response(),
                    Err(r) => r.page(t, Some(user), ("/me/book", "me_book")),
                },
            )
        }
    }
}

/// `POST /me/appointments/{id}/cancel`: cancel one's own appointment ahead, with a
/// reason; its place goes back to the pool (and to the first in the waitlist).
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(q): Query<BookQuery>,
    Form(form): Form<CancelForm>,
) -> Result<Response, AppError> {
    let t = q.t();
    let (user, who, id) = match super::resident(&state, &headers, t, "/me") {
        Ok(x) => x,
        Err(r) => return Ok(*r),
    };
    let (who, id, child) =
        match super::children::acting_for(&state, t, &user, who, id, q.child.as_deref()).await? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        };
    let back = ("/me", "me_title");
    // Another resident's appointment answers as none at all.
    let view = match raw.parse::<Id>() {
        Ok(n) => state.store.appointment(n).await?,
        Err(_) => None,
    };
    let Some(view) = view.filter(|v| v.row.resident_id == id) else {
        return Ok(
            Refusal::bare(StatusCode::NOT_FOUND, t.get("me_no_appointment")).page(
                t,
                Some(user),
                back,
            ),
        );
    };
    if !CANCEL_REASONS.contains(&form.reason.as_str()) {
        return Ok(
            Refusal::bad(t.get("me_f_reason"), t.get("me_bad_reason")).page(t, Some(user), back),
        );
    }
    let now = district_now(&state).await?;
    if view.row.status != Status::Booked || view.slot.slot.start <= now {
        return Ok(Refusal::new(
            StatusCode::CONFLICT,
            t.get("me_f_appointment"),
            t.get("me_cannot_cancel"),
        )
        .page(t, Some(user), back));
    }
    let mut body = crate::fhir::scheduling::appointment_json(&view);
    body["status"] = json!("cancelled");
    body["cancelationReason"] = json!({
        "coding": [{ "system": CANCEL_REASON_SYSTEM, "code": form.reason }]
    });
    let mut plan = Plan::new(&state, &who).await?;
    let refused = match plan.update("Appointment", view.row.id, body, None).await {
        Ok(_) => match plan.commit().await {
            Ok(()) => false,
            Err(StoreError::Conflict(_) | StoreError::Invalid(_)) => true,
            Err(e) => return Err(e.into()),
        },
        Err(WriteRefusal::Outcome(_)) => true,
        Err(WriteRefusal::Failed(e)) => return Err(e),
    };
    if refused {
        return Ok(Refusal::new(
            StatusCode::CONFLICT,
            t.get("me_f_appointment"),
            t.get("me_cannot_cancel"),
        )
        .page(t, Some(user), back));
    }
    Ok(Redirect::to(&format!(
        "{}?lang={}&saved=cancelled#visits",
        home_of(child),
        t.get("lang")
    ))
    .into_response())
}
