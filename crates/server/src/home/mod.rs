//! The home page (the district at a glance: its registry, the plan's headline figures
//! beside today's), the health check and the static files.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use dhp_analytics::indicators as engine;
use dhp_core::indicators::{Count, Period};
use dhp_core::Id;
use dhp_core::{HospitalLevel, OrgKind};
use dhp_store::Table;

use crate::context::{current_user, LangQuery};
use crate::i18n::thousands;
use crate::i18n::Messages;
use crate::security::session::SignedIn;
use crate::{AppError, AppState};

/// `/`, `/healthz` and the static files.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(home))
        .route("/healthz", get(healthz))
        .route("/static/app.css", get(stylesheet))
        .route("/static/app.js", get(script))
        .route("/static/echarts.min.js", get(echarts))
}

pub(crate) struct AreaRow {
    name: String,
    kind: String,
    residents: String,
    households: String,
    centres: String,
}

pub(crate) struct HospitalRow {
    name: String,
    level: String,
    beds: String,
}

pub(crate) struct FigureRow {
    label: String,
    plan: String,
    current: String,
    bar: String,
}

#[derive(Template)]
#[template(path = "home/home.html")]
struct HomePage {
    t: &'static Messages,
    user: Option<SignedIn>,
    district: String,
    empty: bool,
    year: i32,
    counts: Vec<(String, String)>,
    figures: Vec<FigureRow>,
    areas: Vec<AreaRow>,
    hospitals: Vec<HospitalRow>,
    city_hospitals: Vec<HospitalRow>,
}

fn level_label(t: &Messages, level: Option<HospitalLevel>) -> String {
    match level {
        Some(HospitalLevel::Primary) => t.get("level_1").to_string(),
        Some(HospitalLevel::Secondary) => t.get("level_2").to_string(),
        Some(HospitalLevel::Tertiary) => t.get("level_3").to_string(),
        None => String::new(),
    }
}

/// The plan's headline figures (the calibration targets: Qingpu 2020) beside the
/// district's stored indicator counts of `year`.
fn figure_rows(t: &Messages, counts: &[Count], district: Id, year: i32) -> Vec<FigureRow> {
    let en = t.get("lang") == "en";
    let rows = engine::scorecard(counts, district, Period::Year(year));
    dhp_core::plan::calibration()
        .targets
        .iter()
        .filter_map(|target| {
            let row = rows.iter().find(|r| r.indicator.id == target.indicator)?;
            let current = row.value?;
            let plan = target.value;
            let percent = target.is_percent();
            let i = row.indicator;
            Some(FigureRow {
                label: if en { &i.name_en } else { &i.name_zh }.clone(),
                plan: if percent {
                    format!("{plan:.1}%")
                } else {
                    format!("{plan:.2}")
                },
                current: if percent {
                    format!("{current:.1}%")
                } else {
                    format!("{current:.2}")
                },
                bar: if percent {
                    format!("{:.0}", current.clamp(0.0, 100.0))
                } else {
                    format!("{:.0}", (current / plan * 50.0).clamp(0.0, 100.0))
                },
            })
        })
        .collect()
}

pub async fn home(
    State(state): State<Arc<AppState>>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Result<Html<String>, AppError> {
    let t = q.messages();
    let store = &*state.store;
    let orgs = dhp_store::organisations(store).await?;
    let en = t.get("lang") == "en";
    let name = |o: &dhp_core::Organisation| {
        if en {
            o.name_en.clone()
        } else {
            o.name_zh.clone()
        }
    };
    let district_org = orgs.iter().find(|o| o.kind == OrgKind::District);
    let mut counts = Vec::new();
    for (key, table) in [
        ("residents", Table::Residents),
        ("households", Table::Households),
        ("organisations", Table::Organisations),
        ("practitioners", Table::Practitioners),
        ("contracts", Table::Contracts),
        ("encounters", Table::Encounters),
        ("observations", Table::Observations),
        ("immunizations", Table::Immunizations),
    ] {
        counts.push((t.get(key).to_string(), thousands(store.count(table).await?)));
    }
    let area_counts = store.area_counts().await?;
    let areas = orgs
        .iter()
        .filter(|o| o.kind.is_area())
        .map(|a| {
            let c = area_counts.iter().find(|c| c.org_id == a.id);
            let centres: Vec<String> = orgs
                .iter()
                .filter(|o| o.kind == OrgKind::CommunityHealthCentre && o.parent_id == Some(a.id))
                .map(&name)
                .collect();
            AreaRow {
                name: name(a),
                kind: t
                    .get(if a.kind == OrgKind::Street {
                        "street"
                    } else {
                        "town"
                    })
                    .to_string(),
                residents: thousands(c.map(|c| c.residents).unwrap_or(0)),
                households: thousands(c.map(|c| c.households).unwrap_or(0)),
                centres: centres.join(t.get("list_sep")),
            }
        })
        .collect();
    let district_code = district_org
        .map(|d| d.district_code.clone())
        .unwrap_or_default();
    let hospital_rows = |city: bool| -> Vec<HospitalRow> {
        orgs.iter()
            .filter(|o| o.kind == OrgKind::Hospital && (o.district_code != district_code) == city)
            .map(|h| HospitalRow {
                name: name(h),
                level: level_label(t, h.level),
                beds: thousands(h.beds),
            })
            .collect()
    };
    // The figures of the calibration year, from the stored indicator counts.
    let year = store
        .meta("calibration_year")
        .await?
        .and_then(|y| y.parse::<i32>().ok());
    let figures = match (year, district_org) {
        (Some(y), Some(d)) => {
            let counts = store
                .indicator_counts(None, Some(Period::Year(y)), Some(d.id))
                .await?;
            figure_rows(t, &counts, d.id, y)
        }
        _ => Vec::new(),
    };
    let page = HomePage {
        t,
        user: current_user(&state, &headers),
        district: district_org
            .map(&name)
            .unwrap_or_else(|| t.get("platform").to_string()),
        empty: orgs.is_empty(),
        year: year.unwrap_or_default(),
        counts,
        figures,
        areas,
        hospitals: hospital_rows(false),
        city_hospitals: hospital_rows(true),
    };
    Ok(Html(page.render()?))
}

/// `GET /static/echarts.min.js`: the vendored ECharts (see static/VENDORED.md).
pub async fn echarts() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("../../static/echarts-5.6.0.min.js"),
    )
}

async fn healthz(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
) -> Result<Json<serde_json::Value>, AppError> {
    let residents = state.store.count(Table::Residents).await?;
    Ok(Json(serde_json::json!({
        "status": "ok",
        "backend": state.store.backend(),
        "residents": residents,
    })))
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/app.css"),
    )
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/app.js"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(-1234), "-1,234");
    }
}
