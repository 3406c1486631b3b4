//! HTML pages: home (the district at a glance) and login.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use dhp_analytics::indicators as engine;
use dhp_core::indicators::{Count, Period};
use dhp_core::Id;
use dhp_core::{HospitalLevel, OrgKind};
use dhp_store::Table;
use serde::Deserialize;

use crate::i18n::{messages, Messages};
use crate::security::login::{Attempt, LoginOutcome};
use crate::security::session::SignedIn;
use crate::security::web::{same_site_path, session_cookie, session_token, ClientAddress};
use crate::{AppError, AppState};

#[derive(Debug, Deserialize)]
pub struct LangQuery {
    lang: Option<String>,
    /// Where to go after logging in (a path on this server).
    next: Option<String>,
}

impl LangQuery {
    fn messages(&self) -> &'static Messages {
        messages(self.lang.as_deref().unwrap_or("zh"))
    }
}

/// The live session of a request's cookie, if it may act (a session whose password
/// must be changed first opens only the password page).
pub(crate) fn current_user(state: &AppState, headers: &HeaderMap) -> Option<SignedIn> {
    session_token(headers)
        .and_then(|t| state.sessions.get(&t))
        .filter(|s| s.change.is_none())
}

/// `12345` → `12,345`.
pub(crate) fn thousands(n: i64) -> String {
    let s = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
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
#[template(path = "home.html")]
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

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    t: &'static Messages,
    user: Option<SignedIn>,
    /// Why the last attempt was refused (a message key), if it was.
    refused: Option<&'static str>,
    /// Minutes until a locked account may try again.
    minutes: i64,
    username: String,
    /// Where to go after logging in (a same-site path, or empty).
    next: String,
}

impl LoginPage {
    fn new(q: &LangQuery) -> Self {
        Self {
            t: q.messages(),
            user: None,
            refused: None,
            minutes: 0,
            username: String::new(),
            next: q
                .next
                .as_deref()
                .and_then(same_site_path)
                .unwrap_or_default()
                .to_string(),
        }
    }
}

pub async fn login_form(Query(q): Query<LangQuery>) -> Result<Html<String>, AppError> {
    Ok(Html(LoginPage::new(&q).render()?))
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
}

pub async fn login(
    State(state): State<Arc<AppState>>,
    Query(q): Query<LangQuery>,
    ClientAddress(address): ClientAddress,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    let username = form.username.trim();
    let outcome = state
        .login
        .attempt(
            &*state.store,
            Attempt {
                username,
                secret: &form.password,
                systems_only: false,
                address: &address,
                resource: "/login",
                method: "password",
            },
        )
        .await?;
    let mut page = LoginPage::new(&q);
    page.username = username.to_string();
    let (status, refused) = match outcome {
        LoginOutcome::Verified(user) => {
            tracing::info!(username = %user.username, role = %user.role, "login");
            let lang = q.lang.as_deref().unwrap_or("zh");
            let next = q.next.as_deref().and_then(same_site_path);
            let (token, to) = match crate::security::password::change_needed(&state, &user).await? {
                None => (
                    state.sessions.open(user),
                    next.map_or_else(|| format!("/?lang={lang}"), str::to_string),
                ),
                // The password first: the session opens only the password page.
                Some(reason) => {
                    let then: String =
                        url::form_urlencoded::byte_serialize(next.unwrap_or("/").as_bytes())
                            .collect();
                    (
                        state.sessions.open_for_change(user, reason),
                        format!("/password?lang={lang}&next={then}"),
                    )
                }
            };
            return Ok((
                [(
                    header::SET_COOKIE,
                    session_cookie(Some(&token), state.config.tls),
                )],
                Redirect::to(&to),
            )
                .into_response());
        }
        LoginOutcome::Wrong => (StatusCode::UNAUTHORIZED, "login_failed"),
        LoginOutcome::Locked(until) => {
            page.minutes = ((until - chrono::Utc::now().naive_utc()).num_seconds() + 59) / 60;
            (StatusCode::FORBIDDEN, "login_locked")
        }
        LoginOutcome::Throttled(_) => (StatusCode::TOO_MANY_REQUESTS, "login_throttled"),
        LoginOutcome::Busy => (StatusCode::SERVICE_UNAVAILABLE, "login_busy"),
    };
    tracing::warn!(username = %username, refused, "login refused");
    page.refused = Some(refused);
    Ok((status, Html(page.render()?)).into_response())
}

pub async fn logout(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(token) = session_token(&headers) {
        state.sessions.close(&token);
    }
    (
        [(header::SET_COOKIE, session_cookie(None, state.config.tls))],
        Redirect::to("/"),
    )
        .into_response()
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
