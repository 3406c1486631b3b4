//! One signal's page (`/surveillance/signal/{id}`: its evidence, steps and the
//! verification form) and one disease's page (`/surveillance/disease/{code}`).

use super::*;
use crate::context::as_of;
use crate::i18n::{messages, Messages};
use crate::{AppError, AppState};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{Days, NaiveDate, NaiveDateTime};
use dhp_analytics::surveillance as runs;
use dhp_core::access::Principal;
use dhp_core::surveillance::{self as sv, SignalStatus};
use dhp_core::Id;
use dhp_store::StoreError;
use std::sync::Arc;

#[derive(Template)]
#[template(path = "surveillance/signal.html")]
pub(crate) struct SignalPage {
    pub(crate) t: &'static Messages,
    pub(crate) user: Option<crate::security::session::SignedIn>,
    pub(crate) lang: String,
    pub(crate) id: Id,
    pub(crate) title: String,
    pub(crate) status: &'static str,
    pub(crate) status_label: String,
    pub(crate) facts: Vec<(String, String)>,
    pub(crate) svg: String,
    pub(crate) history: Vec<(String, String, String, String)>,
    pub(crate) actions: Vec<(&'static str, String)>,
    pub(crate) error: String,
    pub(crate) area_chart: String,
    pub(crate) area_caption: String,
}

pub(crate) async fn signal_page(
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
    let svg = crate::charts::chart_svg(&days, &counts, &threshold, &alarms, t.get("threshold"));
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
#[template(path = "surveillance/disease.html")]
pub(crate) struct DiseasePage {
    pub(crate) t: &'static Messages,
    pub(crate) user: Option<crate::security::session::SignedIn>,
    pub(crate) lang: String,
    pub(crate) title: String,
    pub(crate) note: String,
    pub(crate) svg: String,
    pub(crate) caption: String,
    pub(crate) areas: Vec<(String, String, bool)>,
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
