//! The resident's places in waitlists on the portal (SPEC capability 9, "waitlist
//! offers to accept"): each line the resident waits in, how many are ahead, and a place
//! offered when one freed — to take before the offer runs out, or to let pass to the
//! next in line. Only the resident's own lines; another's answers as none.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use dhp_core::booking::Step;
use dhp_core::Id;
use dhp_store::{ScheduleFilter, StoreError};

use super::PortalQuery;
use crate::audit::{self, Actor};
use crate::context::{district_now, Refusal};
use crate::i18n::Messages;
use crate::{AppError, AppState};

/// One line the resident waits in.
pub(crate) struct Line {
    pub(crate) id: Id,
    /// The service and institution, and the days waited for.
    pub(crate) what: String,
    /// `waiting` or `offered`.
    pub(crate) status: &'static str,
    /// Waiting: those ahead, in words; offered: the place and until when, in words.
    pub(crate) detail: String,
}

/// The resident's open lines (waiting, or with a place offered), offers first.
pub(crate) async fn lines(state: &AppState, t: &Messages, me: Id) -> Result<Vec<Line>, StoreError> {
    let zh = t.get("lang") == "zh";
    let orgs = state.orgs().await?;
    let org = |id: Id| {
        orgs.get(&id)
            .map(|o| if zh { &o.name_zh } else { &o.name_en }.clone())
            .unwrap_or_default()
    };
    let entries: Vec<_> = state
        .store
        .waitlist_of(me)
        .await?
        .into_iter()
        .filter(|e| matches!(e.status.as_str(), "waiting" | "offered"))
        .collect();
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let (schedules, _) = state
        .store
        .search_schedules(&ScheduleFilter {
            ids: entries.iter().map(|e| e.schedule_id).collect(),
            orgs: Vec::new(),
            practitioners: Vec::new(),
            services: Vec::new(),
            limit: entries.len().max(1) as i64,
            offset: 0,
        })
        .await?;
    let mut out = Vec::new();
    for e in &entries {
        let Some(s) = schedules.iter().find(|s| s.id == e.schedule_id) else {
            continue;
        };
        let what = t
            .get("wl_line")
            .replace("{service}", &super::booking::service_name(t, &s.service))
            .replace("{place}", &org(s.org_id))
            .replace("{from}", &e.from.to_string())
            .replace("{to}", &e.to.to_string());
        let offered = e.status == "offered";
        let detail = match (offered, e.appointment_id) {
            (true, Some(a)) => match state.store.appointment(a).await? {
                Some(v) => t
                    .get("wl_offered")
                    .replace(
                        "{when}",
                        &v.slot.slot.start.format("%Y-%m-%d %H:%M").to_string(),
                    )
                    .replace(
                        "{until}",
                        &e.offer_until
                            .map(|u| u.format("%Y-%m-%d %H:%M").to_string())
                            .unwrap_or_default(),
                    ),
                None => continue,
            },
            _ => t.get("wl_ahead").replace("{n}", &e.ahead.to_string()),
        };
        out.push(Line {
            id: e.id,
            what,
            status: if offered { "offered" } else { "waiting" },
            detail,
        });
    }
    out.sort_by_key(|l| (l.status != "offered", l.id));
    Ok(out)
}

async fn act(
    state: &AppState,
    headers: &HeaderMap,
    q: &PortalQuery,
    raw: &str,
    accept: bool,
) -> Result<Response, AppError> {
    let t = q.t();
    let (user, who, me) = match super::resident(state, headers, t, "/me") {
        Ok(x) => x,
        Err(r) => return Ok(*r),
    };
    let back = ("/me", "me_title");
    let entry = match raw.parse::<Id>() {
        Ok(n) => state.store.waitlist_entry(n).await?,
        Err(_) => None,
    };
    let Some(entry) = entry.filter(|e| e.resident_id == me) else {
        return Ok(Refusal::bare(StatusCode::NOT_FOUND, t.get("wl_none")).page(
            t,
            Some(user),
            back,
        ));
    };
    let now = district_now(state).await?;
    let done = if accept {
        match entry.appointment_id.filter(|_| entry.status == "offered") {
            None => Err(StoreError::Conflict("no place offered".into())),
            Some(a) => state
                .store
                .appointment_step(a, Step::Accept, None, now)
                .await
                .map(|_| ()),
        }
    } else if matches!(entry.status.as_str(), "waiting" | "offered") {
        state.store.withdraw_waitlist(entry.id, now).await
    } else {
        Err(StoreError::Conflict("not in the line".into()))
    };
    let what = if accept { "accept" } else { "withdraw" };
    let outcome = match &done {
        Ok(()) => "success",
        Err(StoreError::Conflict(_) | StoreError::Invalid(_)) => "refused",
        Err(_) => "error",
    };
    audit::record(
        &*state.store,
        &Actor::from(&who),
        "update",
        &format!("Schedule/{}", entry.schedule_id),
        Some(me),
        outcome,
        &format!("waitlist {} {what} (portal)", entry.id),
    )
    .await?;
    match done {
        Ok(()) => {
            let lang = q.lang.as_deref().unwrap_or("zh");
            let saved = if accept { "taken" } else { "left" };
            Ok(Redirect::to(&format!("/me?lang={lang}&saved={saved}#visits")).into_response())
        }
        // The offer ran out or passed on meanwhile.
        Err(StoreError::Conflict(_) | StoreError::Invalid(_)) => Ok(Refusal::new(
            StatusCode::CONFLICT,
            t.get("wl_f_line"),
            t.get(if accept {
                "wl_offer_gone"
            } else {
                "wl_not_waiting"
            }),
        )
        .page(t, Some(user), back)),
        Err(e) => Err(e.into()),
    }
}

/// `POST /me/waitlist/{id}/accept`: take the place offered.
pub async fn accept(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(q): Query<PortalQuery>,
) -> Result<Response, AppError> {
    act(&state, &headers, &q, &raw, true).await
}

/// `POST /me/waitlist/{id}/withdraw`: leave the line (an offer held passes on).
pub async fn withdraw(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(q): Query<PortalQuery>,
) -> Result<Response, AppError> {
    act(&state, &headers, &q, &raw, false).await
}
