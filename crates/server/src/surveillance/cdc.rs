//! The CDC page (`/surveillance`): the day's tiles, signals and charts per disease, and
//! running detection now (`POST /surveillance/run`).

use super::*;
use crate::context::current_user;
use crate::context::{as_of, principal_of};
use crate::i18n::{messages, Messages};
use crate::{AppError, AppState};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{Days, NaiveDate};
use dhp_analytics::surveillance as runs;
use dhp_core::access::Principal;
use dhp_core::surveillance::{self as sv, timeliness, Cadence, DateBasis, Signal, SignalStatus};
use dhp_core::Id;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

/// Daily counts of one disease in one area (district when `area` is the district)
/// and its first detector's scores, for the last `days` days up to `today`.
pub(crate) async fn disease_chart(
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
        crate::charts::chart_svg(&dates, &shown, &threshold, &alarms, label),
        weekly,
    ))
}

pub(crate) struct Tile {
    pub(crate) name: String,
    pub(crate) class: &'static str,
    pub(crate) count: usize,
    pub(crate) diseases: String,
}

pub(crate) struct SignalRow {
    pub(crate) id: Id,
    pub(crate) days: String,
    pub(crate) disease: String,
    pub(crate) area: String,
    pub(crate) algorithms: String,
    pub(crate) figures: String,
    pub(crate) status: &'static str,
    pub(crate) status_label: String,
}

pub(crate) struct ChartBox {
    pub(crate) title: String,
    pub(crate) href: String,
    pub(crate) svg: String,
}

#[derive(Template)]
#[template(path = "surveillance/surveillance.html")]
pub(crate) struct CdcPage {
    pub(crate) t: &'static Messages,
    pub(crate) user: Option<crate::security::session::SignedIn>,
    pub(crate) lang: String,
    pub(crate) date: String,
    pub(crate) cards: Vec<(String, String, &'static str)>,
    pub(crate) tiles: Vec<Tile>,
    pub(crate) rows: Vec<SignalRow>,
    pub(crate) charts: Vec<ChartBox>,
    pub(crate) missing: Vec<String>,
    pub(crate) can_run: bool,
    pub(crate) ran: String,
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    #[serde(default, deserialize_with = "crate::i18n::page_lang")]
    pub(crate) lang: Option<String>,
    pub(crate) area: Option<String>,
    pub(crate) ran: Option<String>,
}

pub(crate) fn status_label(t: &Messages, s: SignalStatus) -> String {
    t.get(&format!("sig_{}", s.code())).to_string()
}

/// The signed-in CDC or commission user, or the page to show instead.
pub(crate) fn watcher(
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
    let r = runs::run(&*state.store, today, today, dhp_core::clock::now()).await?;
    let summary = format!("{}: {} / {}", today, r.new_signals, r.updated_signals);
    Ok(Redirect::to(&format!(
        "/surveillance?lang={}&ran={}",
        t.get("lang"),
        urlencode(&summary)
    ))
    .into_response())
}
