//! The manager's indicator pages (SPEC capability 7): the plan scorecard of a unit and
//! period, one indicator's trend and comparison across the units below, and the
//! residents behind a unit's figure. Every table exports as CSV (`?format=csv`).
//! Figures come from the stored counts, which writes keep current.

mod indicator;
mod residents;
mod scorecard;

use axum::routing::get;
use axum::Router;

use std::sync::Arc;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use dhp_analytics::indicators::{self as engine, ScoreRow};
use dhp_core::access::{Principal, Role};
use dhp_core::indicators::{self as ind, Indicator, Period, Units};
use dhp_core::{OrgKind, Organisation};
use serde::Deserialize;

use crate::context::current_user;
use crate::context::principal_of;
use crate::context::Refusal;
use crate::i18n::{messages, Messages};
use crate::security::session::SignedIn;
use crate::{AppError, AppState};

/// `/indicators`, `/indicators/{id}` and `/indicators/{id}/residents`.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/indicators", get(scorecard::scorecard))
        .route("/indicators/{id}", get(indicator::indicator))
        .route("/indicators/{id}/residents", get(residents::residents))
}

/// Who sees the indicator pages: the commission's managers and the CDC.
fn may_monitor(who: &Principal) -> bool {
    matches!(who.role, Role::Manager | Role::PublicHealthDoctor)
}

#[derive(Debug, Deserialize)]
pub struct IndicatorQuery {
    #[serde(default, deserialize_with = "crate::i18n::page_lang")]
    pub(crate) lang: Option<String>,
    pub(crate) org: Option<String>,
    pub(crate) period: Option<String>,
    pub(crate) format: Option<String>,
}

/// What every indicator page starts from.
struct Frame {
    pub(crate) t: &'static Messages,
    pub(crate) user: crate::security::session::SignedIn,
    pub(crate) who: Principal,
    pub(crate) zh: bool,
    pub(crate) units: Units,
    pub(crate) unit: Organisation,
    pub(crate) period: Period,
    pub(crate) stored: Vec<Period>,
    /// The district's today (the records' last day).
    pub(crate) today: chrono::NaiveDate,
    pub(crate) csv: bool,
}

/// A refused query, the field named in the page's words.
fn bad_request(t: &'static Messages, user: Option<SignedIn>, field: &str, why: String) -> Response {
    let field = match field {
        "period" => t.get("field_period"),
        "org" => t.get("field_org"),
        _ => t.get("field_indicator"),
    };
    Refusal::bad(field, why).page(t, user, ("/indicators", "indicators_title"))
}

async fn frame(
    state: &AppState,
    headers: &HeaderMap,
    q: &IndicatorQuery,
    next: &str,
) -> Result<Result<Frame, Response>, AppError> {
    let t = messages(q.lang.as_deref().unwrap_or("zh"));
    let Some(user) = current_user(state, headers) else {
        return Ok(Err(Redirect::to(&format!(
            "/login?lang={}&next={next}",
            t.get("lang")
        ))
        .into_response()));
    };
    let Some(who) = principal_of(&user).filter(may_monitor) else {
        return Ok(Err((
            StatusCode::FORBIDDEN,
            Html(t.get("managers_only").to_string()),
        )
            .into_response()));
    };
    let orgs: Vec<Organisation> = state.orgs().await?.values().cloned().collect();
    let units = Units::new(&orgs);
    let stored = engine::stored_periods(&*state.store).await?;
    let today = crate::context::as_of(state).await?;
    let period = match q.period.as_deref() {
        Some(p) => match Period::parse(p) {
            Ok(p) if stored.contains(&p) => p,
            Ok(p) => {
                return Ok(Err(bad_request(
                    t,
                    Some(user.clone()),
                    "period",
                    format!("{p} {}", t.get("not_counted")),
                )))
            }
            Err(_) => {
                return Ok(Err(bad_request(
                    t,
                    Some(user.clone()),
                    "period",
                    t.get("period_bad").replace("{value}", p),
                )))
            }
        },
        None => engine::default_period(&stored, today),
    };
    let unit = match q.org.as_deref() {
        Some(code) => match units.by_code(code) {
            Some(o) => o.clone(),
            None => {
                return Ok(Err(bad_request(
                    t,
                    Some(user.clone()),
                    "org",
                    format!("{code}: {}", t.get("no_such_org")),
                )))
            }
        },
        None => match units.reporting_units().first() {
            Some(o) => (*o).clone(),
            None => {
                return Ok(Err(bad_request(
                    t,
                    Some(user.clone()),
                    "org",
                    t.get("no_units").to_string(),
                )))
            }
        },
    };
    Ok(Ok(Frame {
        t,
        zh: t.get("lang") == "zh",
        user,
        who,
        units,
        unit,
        period,
        stored,
        today,
        csv: q.format.as_deref() == Some("csv"),
    }))
}

/// The frame of a page about one supported indicator (`/indicators/{id}{rest}`).
async fn indicator_frame(
    state: &AppState,
    headers: &HeaderMap,
    q: &IndicatorQuery,
    id: &str,
    rest: &str,
) -> Result<Result<(Frame, &'static Indicator), Response>, AppError> {
    let f = match frame(state, headers, q, &format!("/indicators/{id}{rest}")).await? {
        Ok(f) => f,
        Err(r) => return Ok(Err(r)),
    };
    match ind::indicator(id).filter(|d| d.supported) {
        Some(def) => Ok(Ok((f, def))),
        None => Ok(Err(bad_request(
            f.t,
            Some(f.user.clone()),
            "indicator",
            format!("{id}: {}", f.t.get("no_such_indicator")),
        ))),
    }
}

fn name(o: &Organisation, zh: bool) -> &str {
    if zh {
        &o.name_zh
    } else {
        &o.name_en
    }
}

fn ind_name(i: &Indicator, zh: bool) -> &str {
    if zh {
        &i.name_zh
    } else {
        &i.name_en
    }
}

fn fmt_value(v: Option<f64>, i: &Indicator) -> String {
    match v {
        None => "—".into(),
        Some(v) => match i.unit {
            ind::Unit::Per1000 | ind::Unit::PerMille => format!("{v:.2}"),
            ind::Unit::Minutes => format!("{v:.0}"),
            _ => format!("{v:.1}"),
        },
    }
}

/// The unit after a value, in the page's language.
fn unit_label(t: &Messages, i: &Indicator) -> String {
    match i.unit {
        ind::Unit::Percent => "%".into(),
        ind::Unit::PerMille => "‰".into(),
        ind::Unit::Count => String::new(),
        u => t
            .get(match u {
                ind::Unit::Per1000 => "unit_per_1000",
                ind::Unit::Per100000 => "unit_per_100000",
                ind::Unit::Minutes => "unit_minutes",
                _ => "unit_years",
            })
            .to_string(),
    }
}

/// Ancestors of `unit` among the reporting units, top first, then the unit.
fn trail<'a>(units: &'a Units, unit: &'a Organisation) -> Vec<&'a Organisation> {
    let mut v = vec![unit];
    let mut at = unit;
    while let Some(p) = at.parent_id.and_then(|p| units.get(p)) {
        if matches!(p.kind, OrgKind::City) {
            break;
        }
        v.push(p);
        at = p;
    }
    v.reverse();
    v
}

fn csv_response(filename: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        // A byte-order mark so spreadsheet programs read the Chinese names as UTF-8.
        format!("\u{feff}{body}"),
    )
        .into_response()
}

fn csv_cell(s: &str) -> String {
    dhp_core::csv::cell(s)
}

struct Row {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) num: i64,
    pub(crate) den: i64,
    pub(crate) value: String,
    pub(crate) unit: String,
    pub(crate) baseline: String,
    pub(crate) target: String,
    pub(crate) gap: String,
    pub(crate) status: &'static str,
    pub(crate) status_label: String,
    pub(crate) source: String,
}

fn score_row(r: &ScoreRow, t: &Messages, zh: bool) -> Row {
    let i = r.indicator;
    let (status, label) = match (i.supported, r.value, r.on_track) {
        (false, ..) => ("unsupported", t.get("not_supported")),
        (_, None, _) => ("none", t.get("no_data")),
        (_, Some(_), Some(true)) if r.gap.is_some_and(|g| g <= 0.0) => ("met", t.get("target_met")),
        (_, Some(_), Some(true)) => ("track", t.get("on_track")),
        (_, Some(_), Some(false)) => ("behind", t.get("behind")),
        (_, Some(_), None) => ("none", t.get("no_target")),
    };
    Row {
        id: i.id.clone(),
        name: ind_name(i, zh).to_string(),
        num: r.num,
        den: r.den,
        value: if i.supported {
            fmt_value(r.value, i)
        } else {
            "—".into()
        },
        unit: unit_label(t, i),
        baseline: i
            .baseline
            .as_ref()
            .map(|b| format!("{}", b.value))
            .unwrap_or_default(),
        target: r
            .target
            .map(|t| format!("{}{} ({})", t.op.symbol(), t.value, t.year))
            .unwrap_or_default(),
        gap: r
            .gap
            .map(|g| {
                if g <= 0.0 {
                    t.get("met_short").to_string()
                } else {
                    fmt_value(Some(g), i)
                }
            })
            .unwrap_or_default(),
        status,
        status_label: label.to_string(),
        source: if i.supported {
            i.source(zh).to_string()
        } else {
            format!("{} — {}", i.reason(zh).unwrap_or_default(), i.source(zh))
        },
    }
}
