//! The scorecard (`/indicators`): every indicator of a unit and period against its
//! target, as a page or CSV.

use super::*;
use crate::i18n::Messages;
use crate::{AppError, AppState};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use dhp_analytics::indicators::{self as engine};
use dhp_core::indicators::Period;
use std::fmt::Write as _;
use std::sync::Arc;

#[derive(Template)]
#[template(path = "indicators/indicators.html")]
pub(crate) struct ScorecardPage {
    pub(crate) t: &'static Messages,
    pub(crate) user: Option<crate::security::session::SignedIn>,
    pub(crate) lang: String,
    pub(crate) title: String,
    pub(crate) org: String,
    pub(crate) period: String,
    pub(crate) trail: Vec<(String, String)>,
    pub(crate) periods: Vec<(String, bool)>,
    /// Why the figures of a period still running are partial.
    pub(crate) in_progress: Option<String>,
    pub(crate) children: Vec<(String, String)>,
    pub(crate) cards: Vec<(String, String, &'static str)>,
    pub(crate) plan: Vec<Row>,
    pub(crate) others: Vec<Row>,
    pub(crate) unsupported: Vec<Row>,
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
                    i.source(zh)
                } else {
                    i.reason(zh).unwrap_or("")
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
