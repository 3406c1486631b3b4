//! `/care/figures`: tiered care in figures over the twelve months to the district's
//! today — referrals per month by direction, how many the receiver accepted and how
//! soon, each hospital's referrals up received and down sent; orders that met a
//! recognised earlier result, the repeats avoided, recognitions per month and the
//! exception reasons given for repeating. Aggregates only: no resident is named. For
//! the commission's managers, the CDC and the people who refer and receive.

use super::*;

use std::collections::BTreeMap;

use chrono::Datelike;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use dhp_core::referral::Direction;

use crate::context::{current_user, principal_of, LangQuery};
use crate::i18n::Messages;
use crate::security::session::SignedIn;

pub(crate) struct MonthRow {
    pub(crate) month: String,
    pub(crate) up: i64,
    pub(crate) down: i64,
    pub(crate) accepted: i64,
    pub(crate) decided: i64,
    pub(crate) rate: String,
    pub(crate) hours: String,
    pub(crate) recognised: i64,
    /// Bar widths (per cent of the busiest month).
    pub(crate) up_w: i64,
    pub(crate) down_w: i64,
}

pub(crate) struct HospitalRow {
    pub(crate) name: String,
    pub(crate) up: i64,
    pub(crate) down: i64,
    pub(crate) ratio: String,
}

#[derive(Template)]
#[template(path = "care/figures.html")]
pub(crate) struct FiguresPage {
    pub(crate) t: &'static Messages,
    pub(crate) user: Option<SignedIn>,
    pub(crate) lang: String,
    /// A family doctor or clinician (their way back is `/care`; others' the scorecard).
    pub(crate) carer: bool,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) months: Vec<MonthRow>,
    pub(crate) hospitals: Vec<HospitalRow>,
    pub(crate) total_up: i64,
    pub(crate) total_down: i64,
    pub(crate) acceptance: String,
    pub(crate) met: i64,
    pub(crate) recognised: i64,
    pub(crate) recognition_rate: String,
    pub(crate) exceptions: Vec<(String, i64)>,
}

fn percent(n: i64, d: i64) -> String {
    if d == 0 {
        "—".into()
    } else {
        format!("{:.1}%", n as f64 * 100.0 / d as f64)
    }
}

pub async fn figures(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Result<Response, AppError> {
    let lang = q.lang.as_deref().unwrap_or("zh");
    let t = crate::i18n::messages(lang);
    let Some(user) = current_user(&state, &headers) else {
        return Ok(Redirect::to(&format!(
            "/login?lang={}&next=%2Fcare%2Ffigures",
            t.get("lang")
        ))
        .into_response());
    };
    let carer = principal_of(&user).is_some_and(|p| super::carer(&p).is_some());
    let allowed = principal_of(&user).is_some_and(|p| {
        matches!(
            p.role,
            Role::Manager | Role::PublicHealthDoctor | Role::FamilyDoctor | Role::HospitalClinician
        )
    });
    if !allowed {
        return Ok(
            Refusal::bare(StatusCode::FORBIDDEN, t.get("care_figures_staff_only")).page(
                t,
                Some(user),
                ("/", "back_home"),
            ),
        );
    }
    let zh = t.get("lang") == "zh";
    let to = district_now(&state).await?.date();
    // Twelve whole months: from the first of the month eleven months back.
    let first = to
        .checked_sub_months(chrono::Months::new(11))
        .and_then(|d| d.with_day(1))
        .unwrap_or(to);
    let month = |d: chrono::NaiveDateTime| d.format("%Y-%m").to_string();
    let mut by_month: BTreeMap<String, MonthRow> = BTreeMap::new();
    let mut m = first;
    while m <= to {
        let key = m.format("%Y-%m").to_string();
        by_month.insert(
            key.clone(),
            MonthRow {
                month: key,
                up: 0,
                down: 0,
                accepted: 0,
                decided: 0,
                rate: String::new(),
                hours: String::new(),
                recognised: 0,
                up_w: 0,
                down_w: 0,
            },
        );
        m = m
            .checked_add_months(chrono::Months::new(1))
            .unwrap_or(to + chrono::Days::new(1));
    }
    let facts = state.store.referral_facts(first).await?;
    let orgs = state.orgs().await?;
    let mut minutes: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut per_hospital: BTreeMap<Id, (i64, i64)> = BTreeMap::new();
    let (mut accepted_all, mut decided_all) = (0, 0);
    for f in facts.iter().filter(|f| f.created.date() <= to) {
        let Some(row) = by_month.get_mut(&month(f.created)) else {
            continue;
        };
        match f.direction {
            Direction::Up => {
                row.up += 1;
                per_hospital.entry(f.to_org).or_default().0 += 1;
            }
            Direction::Down => {
                row.down += 1;
                per_hospital.entry(f.from_org).or_default().1 += 1;
            }
        }
        if let Some(at) = f.accepted_at {
            row.accepted += 1;
            row.decided += 1;
            accepted_all += 1;
            decided_all += 1;
            let e = minutes.entry(row.month.clone()).or_default();
            e.0 += (at - f.created).num_minutes();
            e.1 += 1;
        } else if f.rejected {
            row.decided += 1;
            decided_all += 1;
        }
    }
    let figures = state.store.recognition_figures(first, to).await?;
    for (m, n) in &figures.by_month {
        if let Some(row) = by_month.get_mut(m) {
            row.recognised = *n;
        }
    }
    let busiest = by_month
        .values()
        .map(|r| r.up.max(r.down))
        .max()
        .unwrap_or(0)
        .max(1);
    let months: Vec<MonthRow> = by_month
        .into_values()
        .map(|mut r| {
            r.rate = percent(r.accepted, r.decided);
            r.hours = match minutes.get(&r.month) {
                Some((sum, n)) if *n > 0 => format!("{:.1}", *sum as f64 / *n as f64 / 60.0),
                _ => "—".into(),
            };
            r.up_w = r.up * 100 / busiest;
            r.down_w = r.down * 100 / busiest;
            r
        })
        .collect();
    let mut hospitals: Vec<HospitalRow> = per_hospital
        .into_iter()
        .filter_map(|(id, (up, down))| {
            let o = orgs.get(&id)?;
            (o.kind == OrgKind::Hospital).then(|| HospitalRow {
                name: if zh {
                    o.name_zh.clone()
                } else {
                    o.name_en.clone()
                },
                up,
                down,
                ratio: if down == 0 {
                    "—".into()
                } else {
                    format!("{:.2}", up as f64 / down as f64)
                },
            })
        })
        .collect();
    hospitals.sort_by(|a, b| b.up.cmp(&a.up).then_with(|| a.name.cmp(&b.name)));
    let reasons = table();
    let exceptions = figures
        .exceptions
        .iter()
        .map(|(code, n)| {
            let name = reasons.exception(code).map_or(code.clone(), |e| {
                if zh {
                    e.name_zh.clone()
                } else {
                    e.name_en.clone()
                }
            });
            (name, *n)
        })
        .collect();
    let page = FiguresPage {
        t,
        user: Some(user),
        lang: t.get("lang").to_string(),
        carer,
        from: first.to_string(),
        to: to.to_string(),
        total_up: months.iter().map(|r| r.up).sum(),
        total_down: months.iter().map(|r| r.down).sum(),
        acceptance: percent(accepted_all, decided_all),
        months,
        hospitals,
        met: figures.met_standing,
        recognised: figures.recognised,
        recognition_rate: percent(figures.recognised, figures.met_standing),
        exceptions,
    };
    Ok(Html(page.render()?).into_response())
}
