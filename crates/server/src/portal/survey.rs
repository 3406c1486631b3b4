//! The satisfaction survey after a completed visit (SPEC capability 9; Qingpu 2020
//! work plan item 10): the resident rates each item 1 to 5, with a comment if they
//! like, once per visit, within the survey's days; the answers count towards the
//! visited institution's satisfaction rate on the scorecard. Only the resident's own
//! completed visits; anyone else's answers as none.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use chrono::Duration;
use dhp_core::booking::Status;
use dhp_core::survey::{survey, Invalid};
use dhp_core::Id;
use dhp_store::{AppointmentView, StoreError};

use super::PortalQuery;
use crate::audit::{self, Actor};
use crate::context::{district_now, Refusal};
use crate::i18n::Messages;
use crate::security::session::SignedIn;
use crate::{AppError, AppState};

/// One item of the form, with the score chosen (0: none yet).
pub(crate) struct Question {
    key: String,
    text: String,
    chosen: u8,
}

#[derive(Template)]
#[template(path = "portal/survey.html")]
pub(crate) struct SurveyPage {
    t: &'static Messages,
    user: Option<SignedIn>,
    lang: String,
    id: Id,
    visit: String,
    questions: Vec<Question>,
    /// The 1–5 scale in words.
    scale: Vec<(u8, String)>,
    comment: String,
    comment_chars: usize,
    /// What was wrong with the last answer (empty: nothing).
    error: String,
}

/// Whether a visit may be rated now: the resident's own, completed, within the days,
/// not rated yet. `None` answers as no such visit.
async fn ratable(
    state: &AppState,
    me: Id,
    raw: &str,
) -> Result<Result<AppointmentView, &'static str>, StoreError> {
    let view = match raw.parse::<Id>() {
        Ok(n) => state.store.appointment(n).await?,
        Err(_) => None,
    };
    let Some(view) = view.filter(|v| v.row.resident_id == me) else {
        return Ok(Err("me_no_appointment"));
    };
    if view.row.status != Status::Fulfilled {
        return Ok(Err("sv_not_done"));
    }
    let now = district_now(state).await?;
    if now - view.slot.slot.start > Duration::days(survey().answer_within_days) {
        return Ok(Err("sv_too_late"));
    }
    if !state.store.surveyed(&[view.row.id]).await?.is_empty() {
        return Ok(Err("sv_answered"));
    }
    Ok(Ok(view))
}

/// Whether each of `ids` (the resident's own fulfilled visits) may be rated now.
pub(crate) async fn open_for_rating(
    state: &AppState,
    views: &[&AppointmentView],
) -> Result<Vec<Id>, StoreError> {
    let now = district_now(state).await?;
    let within = Duration::days(survey().answer_within_days);
    let done: Vec<Id> = views
        .iter()
        .filter(|v| v.row.status == Status::Fulfilled && now - v.slot.slot.start <= within)
        .map(|v| v.row.id)
        .collect();
    let answered = state.store.surveyed(&done).await?;
    Ok(done
        .into_iter()
        .filter(|id| !answered.contains(id))
        .collect())
}

async fn page(
    state: &AppState,
    t: &'static Messages,
    user: SignedIn,
    view: &AppointmentView,
    given: &[(String, String)],
    error: String,
) -> Result<SurveyPage, AppError> {
    let zh = t.get("lang") == "zh";
    let s = survey();
    let place = state
        .orgs()
        .await?
        .get(&view.slot.org_id)
        .map(|o| if zh { &o.name_zh } else { &o.name_en }.clone())
        .unwrap_or_default();
    Ok(SurveyPage {
        t,
        user: Some(user),
        lang: t.get("lang").into(),
        id: view.row.id,
        visit: format!(
            "{} · {} · {}",
            view.slot.slot.start.format("%Y-%m-%d %H:%M"),
            place,
            super::booking::service_name(t, &view.slot.service)
        ),
        questions: s
            .items
            .iter()
            .map(|i| Question {
                key: i.key.clone(),
                text: if zh { &i.zh } else { &i.en }.clone(),
                chosen: given
                    .iter()
                    .find(|(k, _)| *k == i.key)
                    .and_then(|(_, v)| v.parse().ok())
                    .filter(|n| (1..=5).contains(n))
                    .unwrap_or(0),
            })
            .collect(),
        scale: (1..=5)
            .map(|n| (n, t.get(&format!("sv_scale_{n}")).to_string()))
            .collect(),
        comment: given
            .iter()
            .find(|(k, _)| k == "comment")
            .map(|(_, v)| v.clone())
            .unwrap_or_default(),
        comment_chars: s.comment_chars,
        error,
    })
}

fn refused(t: &'static Messages, user: SignedIn, why: &'static str) -> Response {
    let status = if why == "me_no_appointment" {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::CONFLICT
    };
    Refusal::bare(status, t.get(why)).page(t, Some(user), ("/me", "me_title"))
}

/// `GET /me/appointments/{id}/survey`: the survey of a completed visit.
pub async fn form(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(q): Query<PortalQuery>,
) -> Result<Response, AppError> {
    let t = q.t();
    let path = format!("/me/appointments/{raw}/survey");
    let (user, _, me) = match super::resident(&state, &headers, t, &path) {
        Ok(x) => x,
        Err(r) => return Ok(*r),
    };
    let view = match ratable(&state, me, &raw).await? {
        Ok(v) => v,
        Err(why) => return Ok(refused(t, user, why)),
    };
    let p = page(&state, t, user, &view, &[], String::new()).await?;
    Ok(Html(p.render()?).into_response())
}

/// `POST /me/appointments/{id}/survey`: the answers; a wrong one is shown on the form
/// again, naming the item, with what was chosen kept, and nothing is recorded.
pub async fn answer(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(q): Query<PortalQuery>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let t = q.t();
    let (user, who, me) = match super::resident(&state, &headers, t, "/me") {
        Ok(x) => x,
        Err(r) => return Ok(*r),
    };
    let view = match ratable(&state, me, &raw).await? {
        Ok(v) => v,
        Err(why) => return Ok(refused(t, user, why)),
    };
    let zh = t.get("lang") == "zh";
    let s = survey();
    let comment = fields
        .iter()
        .find(|(k, _)| k == "comment")
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let answers: Vec<(String, String)> = fields
        .iter()
        .filter(|(k, _)| k != "comment" && k != "csrf")
        .cloned()
        .collect();
    let item_text = |key: &str| {
        s.items
            .iter()
            .find(|i| i.key == key)
            .map(|i| if zh { &i.zh } else { &i.en }.clone())
            .unwrap_or_else(|| key.to_string())
    };
    let scores = match s.check(&answers, &comment) {
        Ok(scores) => scores,
        Err(e) => {
            let error = match e {
                Invalid::Missing(k) => t.get("sv_missing").replace("{item}", &item_text(&k)),
                Invalid::OutOfRange(k) => t.get("sv_range").replace("{item}", &item_text(&k)),
                Invalid::Unknown(_) => t.get("sv_unknown").to_string(),
                Invalid::CommentTooLong(n) => t.get("sv_long").replace("{n}", &n.to_string()),
            };
            let p = page(&state, t, user, &view, &fields, error).await?;
            return Ok((StatusCode::BAD_REQUEST, Html(p.render()?)).into_response());
        }
    };
    let now = district_now(&state).await?;
    let done = dhp_store::Survey {
        appointment_id: view.row.id,
        resident_id: me,
        org_id: view.slot.org_id,
        answered_at: now.max(view.slot.slot.start),
        visit_at: view.slot.slot.start,
        items: scores,
        comment,
    };
    match state.store.record_survey(&done).await {
        Ok(()) => {}
        // Answered meanwhile (another tab): the first answer stands.
        Err(StoreError::Exists(_)) => return Ok(refused(t, user, "sv_answered")),
        Err(e) => return Err(e.into()),
    }
    audit::record(
        &*state.store,
        &Actor::from(&who),
        "survey",
        &format!("Appointment/{}", view.row.id),
        Some(me),
        "success",
        "satisfaction survey answered",
    )
    .await?;
    let lang = q.lang.as_deref().unwrap_or("zh");
    Ok(Redirect::to(&format!("/me?lang={lang}&saved=surveyed#visits")).into_response())
}
