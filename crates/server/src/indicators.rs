//! The manager's indicator pages (SPEC capability 7): the plan scorecard of a unit and
//! period, one indicator's trend and comparison across the units below, and the
//! residents behind a unit's figure. Every table exports as CSV (`?format=csv`).
//! Figures come from the stored counts, which writes keep current.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use dhp_analytics::indicators::{self as engine, ScoreRow};
use dhp_core::access::{Principal, Role};
use dhp_core::indicators::{self as ind, Basis, Count, Indicator, Period, Units};
use dhp_core::{Id, OrgKind, Organisation};
use dhp_store::{Cohort, Reading};
use serde::Deserialize;

use crate::audit::{self, Actor};
use crate::i18n::{messages, Messages};
use crate::pages::current_user;
use crate::workbench::principal_of;
use crate::{AppError, AppState};

/// Who sees the indicator pages: the commission's managers and the CDC.
fn may_monitor(who: &Principal) -> bool {
    matches!(who.role, Role::Manager | Role::PublicHealthDoctor)
}

#[derive(Debug, Deserialize)]
pub struct IndicatorQuery {
    lang: Option<String>,
    org: Option<String>,
    period: Option<String>,
    format: Option<String>,
}

/// What every indicator page starts from.
struct Frame {
    t: &'static Messages,
    user: crate::security::session::SignedIn,
    who: Principal,
    zh: bool,
    units: Units,
    unit: Organisation,
    period: Period,
    stored: Vec<Period>,
    /// The district's today (the records' last day).
    today: chrono::NaiveDate,
    csv: bool,
}

fn bad_request(t: &Messages, field: &str, why: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Html(format!(
            "<p>{}: <b>{field}</b> — {}</p><p><a href=\"/indicators?lang={}\">{}</a></p>",
            t.get("bad_request"),
            html_escape(&why),
            t.get("lang"),
            t.get("indicators_title")
        )),
    )
        .into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
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
    let today = crate::workbench::as_of(state).await?;
    let period = match q.period.as_deref() {
        Some(p) => match Period::parse(p) {
            Ok(p) if stored.contains(&p) => p,
            Ok(p) => {
                return Ok(Err(bad_request(
                    t,
                    "period",
                    format!("{p} {}", t.get("not_counted")),
                )))
            }
            Err(e) => return Ok(Err(bad_request(t, "period", e.to_string()))),
        },
        None => engine::default_period(&stored, today),
    };
    let unit = match q.org.as_deref() {
        Some(code) => match units.by_code(code) {
            Some(o) => o.clone(),
            None => {
                return Ok(Err(bad_request(
                    t,
                    "org",
                    format!("{code}: {}", t.get("no_such_org")),
                )))
            }
        },
        None => match units.reporting_units().first() {
            Some(o) => (*o).clone(),
            None => return Ok(Err(bad_request(t, "org", t.get("no_units").to_string()))),
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

fn unit_label(i: &Indicator) -> &'static str {
    match i.unit {
        ind::Unit::Percent => "%",
        ind::Unit::PerMille => "‰",
        ind::Unit::Per1000 => "/千人",
        ind::Unit::Per100000 => "/10万",
        ind::Unit::Minutes => "分钟",
        ind::Unit::Years => "岁",
        ind::Unit::Count => "",
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
    id: String,
    name: String,
    num: i64,
    den: i64,
    value: String,
    unit: &'static str,
    baseline: String,
    target: String,
    gap: String,
    status: &'static str,
    status_label: String,
    source: String,
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
        unit: unit_label(i),
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
            i.source.clone()
        } else {
            format!("{} — {}", i.reason.clone().unwrap_or_default(), i.source)
        },
    }
}

#[derive(Template)]
#[template(path = "indicators.html")]
struct ScorecardPage {
    t: &'static Messages,
    user: Option<crate::security::session::SignedIn>,
    lang: String,
    title: String,
    org: String,
    period: String,
    trail: Vec<(String, String)>,
    periods: Vec<(String, bool)>,
    /// Why the figures of a period still running are partial.
    in_progress: Option<String>,
    children: Vec<(String, String)>,
    cards: Vec<(String, String, &'static str)>,
    plan: Vec<Row>,
    others: Vec<Row>,
    unsupported: Vec<Row>,
}

/// `GET /indicators?org=&period=`: the plan scorecard.
pub async fn scorecard(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<IndicatorQuery>,
) -> Result<Response, AppError> {
    let f = match frame(&state, &headers, &q, "/indicators").await? {
        Ok(f) => f,
        Err(r) => return Ok(r),
    };
    let (t, zh) = (f.t, f.zh);
    let counts = state
        .store
        .indicator_counts(None, Some(f.period), Some(f.unit.id))
        .await?;
    let rows = engine::scorecard(&counts, f.unit.id, f.period);
    if f.csv {
        let mut out = String::from("indicator,name,org,period,numerator,denominator,value,unit,baseline_2020,target,gap,on_track,source\n");
        for r in &rows {
            let i = r.indicator;
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{},{}",
                i.id,
                csv_cell(ind_name(i, zh)),
                f.unit.code,
                f.period,
                r.num,
                r.den,
                r.value.map(|v| format!("{v:.4}")).unwrap_or_default(),
                i.unit.symbol(),
                i.baseline
                    .as_ref()
                    .map(|b| b.value.to_string())
                    .unwrap_or_default(),
                csv_cell(
                    &r.target
                        .map(|t| format!("{}{} ({})", t.op.symbol(), t.value, t.year))
                        .unwrap_or_default()
                ),
                r.gap.map(|g| format!("{g:.4}")).unwrap_or_default(),
                r.on_track.map(|b| b.to_string()).unwrap_or_default(),
                csv_cell(if i.supported {
                    &i.source
                } else {
                    i.reason.as_deref().unwrap_or("")
                }),
            );
        }
        return Ok(csv_response(
            &format!("scorecard-{}-{}.csv", f.unit.code, f.period),
            out,
        ));
    }
    let all: Vec<Row> = rows.iter().map(|r| score_row(r, t, zh)).collect();
    let count = |s: &str| all.iter().filter(|r| r.status == s).count().to_string();
    let cards = vec![
        (t.get("target_met").to_string(), count("met"), "upcoming"),
        (t.get("on_track").to_string(), count("track"), "upcoming"),
        (t.get("behind").to_string(), count("behind"), "overdue"),
        (
            t.get("not_supported").to_string(),
            count("unsupported"),
            "due",
        ),
    ];
    let plan_ids: Vec<&str> = rows
        .iter()
        .filter(|r| r.target.is_some() || r.indicator.baseline.is_some())
        .map(|r| r.indicator.id.as_str())
        .collect();
    let (mut plan, mut others, mut unsupported) = (Vec::new(), Vec::new(), Vec::new());
    for r in all {
        if r.status == "unsupported" {
            unsupported.push(r);
        } else if plan_ids.contains(&r.id.as_str()) {
            plan.push(r);
        } else {
            others.push(r);
        }
    }
    let lang = t.get("lang").to_string();
    let page = ScorecardPage {
        t,
        title: format!("{} · {}", name(&f.unit, zh), f.period),
        org: f.unit.code.clone(),
        period: f.period.to_string(),
        trail: trail(&f.units, &f.unit)
            .into_iter()
            .map(|o| (o.code.clone(), name(o, zh).to_string()))
            .collect(),
        // Years and quarters that have begun (later ones have no records yet).
        periods: f
            .stored
            .iter()
            .filter(|p| !matches!(p, Period::Month(..)) && p.start() <= f.today)
            .map(|p| (p.to_string(), *p == f.period))
            .collect(),
        in_progress: engine::in_progress(f.period, f.today).then(|| {
            format!(
                "{} {}{}",
                t.get("period_in_progress"),
                f.today,
                t.get("period_in_progress_as_at")
                    .replace("{end}", &f.period.end().to_string())
            )
        }),
        children: f
            .units
            .children(f.unit.id)
            .into_iter()
            .map(|o| (o.code.clone(), name(o, zh).to_string()))
            .collect(),
        cards,
        plan,
        others,
        unsupported,
        user: Some(f.user),
        lang,
    };
    Ok(Html(page.render()?).into_response())
}

#[derive(Template)]
#[template(path = "indicator.html")]
struct IndicatorPage {
    t: &'static Messages,
    user: Option<crate::security::session::SignedIn>,
    lang: String,
    id: String,
    title: String,
    org: String,
    unit_name: String,
    period: String,
    facts: Vec<(String, String)>,
    trail: Vec<(String, String)>,
    children: Vec<ChildRow>,
    child_kind: String,
    months_title: String,
    trend_json: String,
    months_json: String,
    bars_json: String,
    drill: bool,
}

struct ChildRow {
    code: String,
    name: String,
    num: i64,
    den: i64,
    value: String,
}

/// A round axis end at or above `x`: 1, 2 or 5 times a power of ten, or 100 for a
/// percentage just over 100.
fn nice_ceiling(x: f64) -> f64 {
    let p = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|v| *v >= x)
        .unwrap_or(10.0 * p)
}

/// JSON for a `<script>` block: no `</` can close it early.
fn script_json(v: &serde_json::Value) -> String {
    v.to_string().replace("</", "<\\/")
}

/// `GET /indicators/{id}?org=&period=`: one indicator's trend, the units below compared
/// with the target line, and the way down to the residents.
pub async fn indicator(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<IndicatorQuery>,
) -> Result<Response, AppError> {
    let (f, def) = match indicator_frame(&state, &headers, &q, &id, "").await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let (t, zh) = (f.t, f.zh);
    let children: Vec<&Organisation> = f.units.children(f.unit.id);
    let across = state
        .store
        .indicator_counts(Some(&id), Some(f.period), None)
        .await?;
    let by_org: HashMap<Id, &Count> = across.iter().map(|c| (c.org_id, c)).collect();
    let rows: Vec<ChildRow> = children
        .iter()
        .map(|o| {
            let (num, den) = by_org.get(&o.id).map_or((0, 0), |c| (c.num, c.den));
            ChildRow {
                code: o.code.clone(),
                name: name(o, zh).to_string(),
                num,
                den,
                value: fmt_value(def.value(num, den), def),
            }
        })
        // Units the indicator does not apply to (hospitals for a resident rate).
        .filter(|r| r.den > 0)
        .collect();
    if f.csv {
        let mut out = String::from("indicator,org,name,period,numerator,denominator,value\n");
        let own = by_org.get(&f.unit.id).map_or((0, 0), |c| (c.num, c.den));
        let mut line = |code: &str, n: &str, num: i64, den: i64| {
            let _ = writeln!(
                out,
                "{id},{code},{},{},{num},{den},{}",
                csv_cell(n),
                f.period,
                def.value(num, den)
                    .map(|v| format!("{v:.4}"))
                    .unwrap_or_default()
            );
        };
        line(&f.unit.code, name(&f.unit, zh), own.0, own.1);
        for r in &rows {
            line(&r.code, &r.name, r.num, r.den);
        }
        return Ok(csv_response(
            &format!("{id}-{}-{}.csv", f.unit.code, f.period),
            out,
        ));
    }
    let target = def.plan_target(f.period.year());
    let mark = |v: Option<&ind::Target>| match v {
        Some(t) => serde_json::json!({ "silent": true, "symbol": "none",
            "lineStyle": { "color": "#c0392b", "type": "dashed" },
            "label": { "formatter": format!("{}{}", t.op.symbol(), t.value) },
            "data": [ { "yAxis": t.value } ] }),
        None => serde_json::json!({}),
    };
    // Trend: every year counted, and the months of the tracked years.
    let trend = state
        .store
        .indicator_counts(Some(&id), None, Some(f.unit.id))
        .await?;
    let series = |keep: fn(&Period) -> bool| {
        let mut pts: Vec<(Period, Option<f64>)> = f
            .stored
            .iter()
            .filter(|p| keep(p))
            .map(|p| {
                let c = trend.iter().find(|c| c.period == *p);
                (*p, c.and_then(|c| def.value(c.num, c.den)))
            })
            .collect();
        pts.sort_by_key(|(p, _)| p.start());
        pts
    };
    let today = crate::workbench::as_of(&state).await?;
    // Whole years only: a year still running would be read as at its 31 December,
    // beyond the records (its months show it).
    let mut years = series(|p| matches!(p, Period::Year(_)));
    years.retain(|(p, _)| p.end() <= today);
    let mut months = series(|p| matches!(p, Period::Month(..)));
    // No months after the district's last recorded day.
    months.retain(|(p, _)| p.start() <= today);
    // The value axis runs from 0 and always shows the target line.
    let top = years
        .iter()
        .chain(&months)
        .filter_map(|(_, v)| *v)
        .chain(target.map(|t| t.value))
        .fold(0.0_f64, f64::max);
    let axis_max = if top > 0.0 {
        nice_ceiling(top * 1.1)
    } else {
        1.0
    };
    let line = |pts: &[(Period, Option<f64>)], label: &str| {
        serde_json::json!({
            "tooltip": { "trigger": "axis" },
            "grid": { "left": 50, "right": 30, "top": 30, "bottom": 30 },
            "xAxis": { "type": "category", "data": pts.iter().map(|(p, _)| p.to_string()).collect::<Vec<_>>() },
            "yAxis": { "type": "value", "min": 0, "max": axis_max },
            "series": [{
                "name": label, "type": "line", "connectNulls": false,
                "data": pts.iter().map(|(_, v)| v.map(|x| (x * 100.0).round() / 100.0)).collect::<Vec<_>>(),
                "markLine": mark(target),
            }]
        })
    };
    let bars_max = {
        let top = rows
            .iter()
            .filter_map(|r| def.value(r.num, r.den))
            .chain(target.map(|t| t.value))
            .fold(0.0_f64, f64::max);
        if top > 0.0 {
            nice_ceiling(top * 1.1)
        } else {
            1.0
        }
    };
    let bars = serde_json::json!({
        "tooltip": { "trigger": "axis" },
        "grid": { "left": 50, "right": 30, "top": 30, "bottom": 90 },
        "xAxis": { "type": "category", "axisLabel": { "rotate": 35, "interval": 0 },
                   "data": rows.iter().map(|r| r.name.clone()).collect::<Vec<_>>() },
        "yAxis": { "type": "value", "min": 0, "max": bars_max },
        "series": [{
            "type": "bar", "name": ind_name(def, zh), "itemStyle": { "color": "#2f7d6d" },
            "data": rows.iter().map(|r| serde_json::json!({
                "value": def.value(r.num, r.den).map(|x| (x * 100.0).round() / 100.0),
                "code": r.code })).collect::<Vec<_>>(),
            "markLine": mark(target),
        }]
    });
    let own = by_org.get(&f.unit.id).map_or((0, 0), |c| (c.num, c.den));
    let value = def.value(own.0, own.1);
    let mut facts = vec![
        (
            t.get("value").to_string(),
            format!("{} {}", fmt_value(value, def), unit_label(def)),
        ),
        (
            t.get("numerator").to_string(),
            format!(
                "{} — {}",
                own.0,
                if zh {
                    &def.numerator_zh
                } else {
                    &def.numerator_en
                }
            ),
        ),
        (
            t.get("denominator").to_string(),
            format!(
                "{} — {}",
                own.1,
                if zh {
                    &def.denominator_zh
                } else {
                    &def.denominator_en
                }
            ),
        ),
    ];
    if let Some(b) = &def.baseline {
        facts.push((
            t.get("baseline").to_string(),
            format!("{} ({}) — {}", b.value, b.year, b.source),
        ));
    }
    if let Some(tg) = target {
        facts.push((
            t.get("target").to_string(),
            format!(
                "{}{} ({}) — {}",
                tg.op.symbol(),
                tg.value,
                tg.year,
                tg.source
            ),
        ));
    }
    facts.push((t.get("source").to_string(), def.source.clone()));
    if let Some(n) = &def.note {
        facts.push((t.get("ind_note").to_string(), n.clone()));
    }
    let child_kind = children
        .first()
        .map(|o| {
            if zh {
                o.kind.label_zh()
            } else {
                o.kind.as_str()
            }
        })
        .unwrap_or_default()
        .to_string();
    let page = IndicatorPage {
        t,
        id: id.clone(),
        title: ind_name(def, zh).to_string(),
        org: f.unit.code.clone(),
        unit_name: name(&f.unit, zh).to_string(),
        period: f.period.to_string(),
        facts,
        trail: trail(&f.units, &f.unit)
            .into_iter()
            .map(|o| (o.code.clone(), name(o, zh).to_string()))
            .collect(),
        children: rows,
        child_kind,
        months_title: t
            .get(match def.window {
                Some(ind::Window::YearToDate) => "trend_months_ytd",
                Some(ind::Window::AsAt) => "trend_months_end",
                _ => "trend_months",
            })
            .to_string(),
        trend_json: script_json(&line(&years, ind_name(def, zh))),
        months_json: if months.is_empty() {
            String::new()
        } else {
            script_json(&line(&months, ind_name(def, zh)))
        },
        bars_json: script_json(&bars),
        drill: matches!(def.basis, Some(Basis::Resident | Basis::Resources))
            && def.supported
            && matches!(
                f.unit.kind,
                OrgKind::Street | OrgKind::Town | OrgKind::CommunityHealthCentre
            ),
        user: Some(f.user),
        lang: t.get("lang").to_string(),
    };
    Ok(Html(page.render()?).into_response())
}

#[derive(Template)]
#[template(path = "indicator_residents.html")]
struct ResidentsPage {
    t: &'static Messages,
    user: Option<crate::security::session::SignedIn>,
    lang: String,
    id: String,
    title: String,
    org: String,
    period: String,
    rows: Vec<(String, String, String, i64, i64)>,
    shown: usize,
    total: usize,
    counted: usize,
}

/// Residents listed on one page at most.
const RESIDENT_ROWS: usize = 500;

/// `GET /indicators/{id}/residents?org=&period=`: the residents of a street or centre
/// behind its figure — each with what they add to the numerator and denominator,
/// those not counted in the numerator first (whom to reach). The read is audited.
pub async fn residents(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<IndicatorQuery>,
) -> Result<Response, AppError> {
    let (f, def) = match indicator_frame(&state, &headers, &q, &id, "/residents").await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let (t, zh) = (f.t, f.zh);
    if !matches!(def.basis, Some(Basis::Resident | Basis::Resources)) {
        return Ok(bad_request(
            t,
            "indicator",
            format!("{id}: {}", t.get("not_per_resident")),
        ));
    }
    let cohort = match f.unit.kind {
        OrgKind::Street | OrgKind::Town => Cohort::Area(f.unit.id),
        OrgKind::CommunityHealthCentre => Cohort::Centre {
            centre: f.unit.id,
            area: f.unit.parent_id,
        },
        _ => {
            return Ok(bad_request(
                t,
                "org",
                t.get("drill_street_or_centre").to_string(),
            ))
        }
    };
    let on = f.period.end();
    let mut found: Vec<(dhp_core::Resident, i64, i64)> = Vec::new();
    let mut after = 0;
    loop {
        let page = state
            .store
            .programme_records(&cohort, Reading::Full, on, after, 5_000)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.resident.id;
        for rec in page {
            if let Some((n, d)) = ind::resident_count(def, &rec, &f.units, f.period, f.unit.id) {
                found.push((rec.resident, n, d));
            }
        }
    }
    // Not (fully) in the numerator first: the residents to reach.
    found.sort_by_key(|(r, n, d)| (n >= d, r.id));
    let counted = found.iter().filter(|(_, n, _)| *n > 0).count();
    audit::record(
        &*state.store,
        &Actor::from(&f.who),
        "read",
        &format!("Indicator/{id}/residents"),
        None,
        "ok",
        &format!("{} {}: {} residents", f.unit.code, f.period, found.len()),
    )
    .await?;
    if f.csv {
        let mut out =
            String::from("resident_id,name,identity_number,birth_year,numerator,denominator\n");
        for (r, n, d) in &found {
            let _ = writeln!(
                out,
                "{},{},{},{},{n},{d}",
                r.id,
                csv_cell(&r.name),
                r.identity_number.masked(),
                dhp_core::identity::masked_birth(r.birth_date)
            );
        }
        return Ok(csv_response(
            &format!("{id}-{}-{}-residents.csv", f.unit.code, f.period),
            out,
        ));
    }
    let total = found.len();
    let rows = found
        .into_iter()
        .take(RESIDENT_ROWS)
        .map(|(r, n, d)| {
            (
                r.name.clone(),
                r.identity_number.masked(),
                dhp_core::identity::masked_birth(r.birth_date),
                n,
                d,
            )
        })
        .collect::<Vec<_>>();
    let page = ResidentsPage {
        t,
        id: id.clone(),
        title: format!(
            "{} · {} · {}",
            ind_name(def, zh),
            name(&f.unit, zh),
            f.period
        ),
        org: f.unit.code.clone(),
        period: f.period.to_string(),
        shown: rows.len(),
        rows,
        total,
        counted,
        user: Some(f.user),
        lang: t.get("lang").to_string(),
    };
    Ok(Html(page.render()?).into_response())
}

/// `GET /static/echarts.min.js`: the vendored ECharts (see static/VENDORED.md).
pub async fn echarts() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("../static/echarts-5.6.0.min.js"),
    )
}
