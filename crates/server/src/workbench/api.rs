//! `GET /api/workbench/due`: a unit's due list as JSON.

use super::*;
use crate::audit::{self, Actor};
use crate::context::{as_of, Refusal};
use crate::i18n::Messages;
use crate::{AppError, AppState};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::NaiveDate;
use dhp_core::access::{Principal, Role};
use dhp_core::{Organisation, Programme};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Deserialize)]
pub struct DueParams {
    pub(crate) org: Option<String>,
    pub(crate) date: Option<String>,
    pub(crate) programme: Option<String>,
    pub(crate) within: Option<String>,
}

/// Parse the query of a due list; `Err` is the answer naming the field at fault.
pub(crate) fn parse_due_params(
    t: &Messages,
    date: Option<&str>,
    programme: Option<&str>,
    within: Option<&str>,
    default_date: NaiveDate,
) -> Result<(NaiveDate, DueQuery), Refusal> {
    let wrong = |field: &str, key: &str, value: &str| {
        Refusal::bad(
            t.get(field),
            t.get(key).replace("{value}", value).replace(
                "{programmes}",
                &Programme::ALL.map(|p| p.as_str()).join(", "),
            ),
        )
    };
    let on = match date.filter(|d| !d.is_empty()) {
        Some(d) => d
            .parse::<NaiveDate>()
            .map_err(|_| wrong("field_date", "due_bad_date", d))?,
        None => default_date,
    };
    let programme = match programme.filter(|p| !p.is_empty()) {
        Some(p) => Some(
            Programme::parse(p).ok_or_else(|| wrong("field_programme", "due_bad_programme", p))?,
        ),
        None => None,
    };
    let within_days = match within.filter(|w| !w.is_empty()) {
        Some(w) => Some(
            w.parse::<u32>()
                .ok()
                .filter(|n| *n <= 366)
                .ok_or_else(|| wrong("field_within", "due_bad_within", w))?,
        ),
        None => None,
    };
    Ok((
        on,
        DueQuery {
            programme,
            within_days,
        },
    ))
}

/// Who may see the due list of `org`: integrating systems and district staff any unit
/// of their district; a family doctor only their own centre.
pub(crate) fn may_see(who: &Principal, org: &Organisation, own: Option<&Organisation>) -> bool {
    match who.role {
        Role::System => true,
        Role::Manager | Role::PublicHealthDoctor => {
            own.is_some_and(|o| o.district_code == org.district_code)
        }
        Role::FamilyDoctor => who.org_id == Some(org.id),
        _ => false,
    }
}

/// `GET /api/workbench/due?org=CODE&date=YYYY-MM-DD[&programme=P][&within=DAYS]`.
pub async fn api_due(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<DueParams>,
) -> Result<Response, AppError> {
    let who = match crate::context::caller(&state, &headers).await {
        Some(p) => p,
        None => {
            audit::record(
                &*state.store,
                &Actor::unverified(""),
                "search",
                "/api/workbench/due",
                None,
                "unauthenticated",
                "no session or bearer token",
            )
            .await?;
            return Ok(refused(
                StatusCode::UNAUTHORIZED,
                "sign in or send a bearer token from POST /auth/token",
            ));
        }
    };
    let actor = Actor::from(&who);
    let default_date = as_of(&state).await?;
    let (on, query) = match parse_due_params(
        crate::i18n::messages("en"),
        q.date.as_deref(),
        q.programme.as_deref(),
        q.within.as_deref(),
        default_date,
    ) {
        Ok(x) => x,
        Err(r) => return Ok(r.api()),
    };
    let orgs = state.orgs().await?;
    let own = who.org_id.and_then(|id| orgs.get(&id));
    let org = match q.org.as_deref().filter(|c| !c.is_empty()) {
        Some(code) => match orgs.values().find(|o| o.code == code) {
            Some(o) => o,
            None => return Ok(bad("org", format!("no organisation has code {code:?}"))),
        },
        None => match own {
            Some(o) => o,
            None => {
                return Ok(bad(
                    "org",
                    "org is required: the code of a centre, street, town or district",
                ))
            }
        },
    };
    let cohort = match cohort_of(org, orgs) {
        Ok(c) => c,
        Err(why) => return Ok(bad("org", why)),
    };
    if !may_see(&who, org, own) {
        audit::record(
            &*state.store,
            &actor,
            "search",
            "/api/workbench/due",
            None,
            "denied",
            &format!("org {}", org.code),
        )
        .await?;
        return Ok(refused(
            StatusCode::FORBIDDEN,
            &format!("{} may not see the due list of {}", who.username, org.code),
        ));
    }
    let rows = due_list(&*state.store, &cohort, on, &query).await?;
    audit_rows(
        &state,
        &actor,
        &rows,
        &format!("due list of {} on {on}", org.code),
    )
    .await?;
    Ok(Json(serde_json::json!({
        "org": org.code,
        "date": on,
        "count": rows.len(),
        "items": rows,
    }))
    .into_response())
}
