//! One indicator (`/indicators/{id}`): its trend, its children units and its
//! definition.

use super::*;
use crate::i18n::Messages;
use crate::{AppError, AppState};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use dhp_core::indicators::{self as ind, Basis, Count, Period};
use dhp_core::{Id, OrgKind, Organisation};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

#[derive(Template)]
#[template(path = "indicators/indicator.html")]
pub(crate) struct IndicatorPage {
    pub(crate) t: &'static Messages,
    pub(crate) user: Option<crate::security::session::SignedIn>,
    pub(crate) lang: String,
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) org: String,
    pub(crate) unit_name: String,
    pub(crate) period: String,
    pub(crate) facts: Vec<(String, String)>,
    pub(crate) trail: Vec<(String, String)>,
    pub(crate) children: Vec<ChildRow>,
    pub(crate) child_kind: String,
    pub(crate) months_title: String,
    pub(crate) trend_json: String,
    pub(crate) months_json: String,
    pub(crate) bars_json: String,
    pub(crate) drill: bool,
}

pub(crate) struct ChildRow {
    pub(crate) code: String,
    pub(crate) name: String,
    pub(crate) num: i64,
    pub(crate) den: i64,
    pub(crate) value: String,
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
    let shown: Vec<&&Organisation> = children
        .iter()
        .filter(|o| by_org.get(&o.id).is_some_and(|c| c.den > 0))
        .collect();
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
    let today = crate::context::as_of(&state).await?;
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
        crate::charts::nice_ceiling(top * 1.1)
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
            crate::charts::nice_ceiling(top * 1.1)
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
            format!("{} {}", fmt_value(value, def), unit_label(t, def)),
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
            format!("{} ({}) — {}", b.value, b.year, b.source(zh)),
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
                tg.source(zh)
            ),
        ));
    }
    facts.push((t.get("source").to_string(), def.source(zh).to_string()));
    if let Some(n) = def.note(zh) {
        facts.push((t.get("ind_note").to_string(), n.to_string()));
    }
    // The units compared, by their kind when they share one (hospitals, streets).
    let child_kind = match shown.first() {
        Some(first) if shown.iter().all(|o| o.kind == first.kind) => {
            if zh {
                first.kind.label_zh().to_string()
            } else {
                first.kind.label_en().to_string()
            }
        }
        _ => t.get("units_below").to_string(),
    };
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
        trend_json: crate::charts::script_json(&line(&years, ind_name(def, zh))),
        months_json: if months.is_empty() {
            String::new()
        } else {
            crate::charts::script_json(&line(&months, ind_name(def, zh)))
        },
        bars_json: crate::charts::script_json(&bars),
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
