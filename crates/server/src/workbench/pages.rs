//! Workbench pages for a family doctor: the due list, the panel, a resident's page with
//! timeline, due items and the follow-up form, and the printable vaccination forecast.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use dhp_core::access::Principal;
use dhp_core::programmes::{key_populations, DueStatus};
use dhp_core::registry::age_years;
use dhp_core::{Id, Programme, Sex};
use dhp_store::{Cohort, Reading, StoreError};
use serde::Deserialize;

use crate::audit::{self, Actor};
use crate::context::current_user;
use crate::context::{as_of, principal_of};
use crate::i18n::{messages, Messages};
use crate::workbench::{self, audit_rows, due_list, parse_due_params};
use crate::{AppError, AppState};

/// Rows shown on one due-list page.
pub(crate) const SHOWN: usize = 400;

#[derive(Debug, Deserialize, Default)]
pub struct WorkbenchQuery {
    #[serde(default, deserialize_with = "crate::i18n::page_lang")]
    pub(crate) lang: Option<String>,
    pub(crate) date: Option<String>,
    pub(crate) programme: Option<String>,
    pub(crate) within: Option<String>,
    pub(crate) saved: Option<String>,
}

impl WorkbenchQuery {
    pub(crate) fn t(&self) -> &'static Messages {
        messages(self.lang.as_deref().unwrap_or("zh"))
    }
}

pub(crate) struct Row {
    pub(crate) status: &'static str,
    pub(crate) status_label: String,
    pub(crate) programme: String,
    pub(crate) resident_id: Id,
    pub(crate) resident: String,
    pub(crate) what: String,
    pub(crate) due: String,
    pub(crate) rule: String,
    /// A referral flag (`emergency`, `uncontrolled`): the row offers the referral form.
    pub(crate) refer: &'static str,
}

pub(crate) struct Chip {
    pub(crate) label: String,
    pub(crate) href: String,
    pub(crate) on: bool,
}

#[derive(Template)]
#[template(path = "workbench/workbench.html")]
pub(crate) struct WorkbenchPage {
    pub(crate) t: &'static Messages,
    pub(crate) user: Option<crate::security::session::SignedIn>,
    pub(crate) org: String,
    pub(crate) date: String,
    pub(crate) lang: String,
    pub(crate) chips: Vec<Chip>,
    pub(crate) ranges: Vec<Chip>,
    pub(crate) counts: Vec<(String, String, &'static str)>,
    pub(crate) rows: Vec<Row>,
    pub(crate) more: usize,
}

/// A signed-in family doctor, or the page that says why not.
pub(crate) fn doctor(
    state: &AppState,
    headers: &HeaderMap,
    t: &Messages,
) -> Result<(crate::security::session::SignedIn, Principal), Box<Response>> {
    let Some(user) = current_user(state, headers) else {
        return Err(Box::new(
            Redirect::to(&format!("/login?lang={}", t.get("lang"))).into_response(),
        ));
    };
    match principal_of(&user) {
        Some(p) if p.role == dhp_core::access::Role::FamilyDoctor && p.org_id.is_some() => {
            Ok((user, p))
        }
        _ => Err(Box::new(
            (
                StatusCode::FORBIDDEN,
                Html(format!("<p>{}</p>", t.get("wb_doctors_only"))),
            )
                .into_response(),
        )),
    }
}

pub(crate) fn programme_label(t: &Messages, p: Programme) -> String {
    t.programme(p)
}

pub(crate) fn status_name(t: &Messages, status: &str) -> String {
    t.programme_status(status)
}

pub(crate) fn status_label(t: &Messages, s: DueStatus) -> String {
    t.due_status(s)
}

pub async fn workbench(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<WorkbenchQuery>,
) -> Result<Response, AppError> {
    let t = q.t();
    let (user, who) = match doctor(&state, &headers, t) {
        Ok(x) => x,
        Err(r) => return Ok(*r),
    };
    let today = as_of(&state).await?;
    let (on, query) = match parse_due_params(
        t,
        q.date.as_deref(),
        q.programme.as_deref(),
        q.within.as_deref(),
        today,
    ) {
        Ok(x) => x,
        Err(r) => return Ok(r.page(t, Some(user), ("/workbench", "workbench"))),
    };
    let orgs = state.orgs().await?;
    let centre = who
        .org_id
        .and_then(|id| orgs.get(&id))
        .ok_or_else(|| StoreError::NotFound("centre".into()))?;
    let cohort = workbench::cohort_of(centre, orgs).map_err(AppError::Internal)?;
    let rows = due_list(&*state.store, &cohort, on, &query).await?;
    let shown = &rows[..rows.len().min(SHOWN)];
    audit_rows(
        &state,
        &Actor::from(&who),
        shown,
        &format!("workbench due list on {on}"),
    )
    .await?;
    let lang = t.get("lang").to_string();
    let link = |programme: Option<&str>, within: Option<&str>| {
        let mut s = format!("/workbench?lang={lang}&date={on}");
        if let Some(p) = programme {
            s.push_str(&format!("&programme={p}"));
        }
        if let Some(w) = within {
            s.push_str(&format!("&within={w}"));
        }
        s
    };
    let within = q.within.as_deref().filter(|w| !w.is_empty());
    let mut chips = vec![Chip {
        label: t.get("all_programmes").into(),
        href: link(None, within),
        on: query.programme.is_none(),
    }];
    chips.extend(Programme::ALL.iter().map(|p| Chip {
        label: programme_label(t, *p),
        href: link(Some(p.as_str()), within),
        on: query.programme == Some(*p),
    }));
    let prog = query.programme.map(|p| p.as_str());
    let ranges = vec![
        Chip {
            label: t.get("range_today").into(),
            href: link(prog, None),
            on: within.is_none(),
        },
        Chip {
            label: t.get("range_week").into(),
            href: link(prog, Some("7")),
            on: within == Some("7"),
        },
        Chip {
            label: t.get("range_month").into(),
            href: link(prog, Some("30")),
            on: within == Some("30"),
        },
    ];
    let returned = if query.programme.is_none() {
        let mut rows = contract_asks(&state, &who, t, centre.id, on).await?;
        rows.extend(returned_referrals(&state, &who, t, centre.id, on, within).await?);
        rows
    } else {
        Vec::new()
    };
    let count = |s: DueStatus| {
        rows.iter().filter(|r| r.item.status == s).count()
            + returned.iter().filter(|(st, _)| *st == s).count()
    };
    let counts = [DueStatus::Overdue, DueStatus::Due, DueStatus::Upcoming]
        .into_iter()
        .map(|s| {
            (
                status_label(t, s),
                crate::i18n::thousands(count(s) as i64),
                s.as_str(),
            )
        })
        .collect();
    let zh = lang == "zh";
    let page = WorkbenchPage {
        t,
        user: Some(user),
        org: if zh {
            centre.name_zh.clone()
        } else {
            centre.name_en.clone()
        },
        date: on.to_string(),
        lang: lang.clone(),
        chips,
        ranges,
        counts,
        rows: returned
            .into_iter()
            .map(|(_, row)| row)
            .chain(shown.iter().map(|r| Row {
                status: r.item.status.as_str(),
                status_label: status_label(t, r.item.status),
                programme: programme_label(t, r.item.programme),
                resident_id: r.resident_id,
                resident: r.resident_name.clone(),
                what: if zh {
                    r.item.what_zh.clone()
                } else {
                    r.item.what_en.clone()
                },
                due: r.item.due.to_string(),
                rule: r.item.rule.clone(),
                refer: super::refer_flag(&r.item.key),
            }))
            .collect(),
        more: rows.len().saturating_sub(SHOWN),
    };
    Ok(Html(page.render()?).into_response())
}

/// Down-referrals back to the centre not yet closed, as due-list rows: the follow-up
/// day the hospital set is the due day (overdue after it; upcoming ones shown within
/// the list's range). Only when no programme filter is set: they belong to no programme.
async fn returned_referrals(
    state: &AppState,
    who: &Principal,
    t: &Messages,
    centre: Id,
    on: chrono::NaiveDate,
    within: Option<&str>,
) -> Result<Vec<(DueStatus, Row)>, AppError> {
    use dhp_core::referral::Direction;
    let ahead = within.and_then(|w| w.parse::<i64>().ok()).unwrap_or(0);
    let filter = dhp_store::ReferralFilter {
        org: centre,
        received: true,
        direction: Some(Direction::Down),
        open_only: true,
    };
    let (referrals, _) = state.store.referrals(&filter, 1_000, 0).await?;
    let mut out = Vec::new();
    for r in referrals {
        let Some(day) = r.follow_up else { continue };
        let status = match (day - on).num_days() {
            d if d < 0 => DueStatus::Overdue,
            0 => DueStatus::Due,
            d if d <= ahead => DueStatus::Upcoming,
            _ => continue,
        };
        let resident = state.store.resident(r.resident_id).await?;
        audit::record(
            &*state.store,
            &Actor::from(who),
            "read",
            &format!("ServiceRequest/{}", r.id),
            Some(r.resident_id),
            "success",
            "workbench due list",
        )
        .await?;
        out.push((
            status,
            Row {
                status: status.as_str(),
                status_label: status_label(t, status),
                programme: t.get("care_dir_down").to_string(),
                resident_id: r.resident_id,
                resident: resident.name,
                what: format!("{}：{}", t.get("wb_after_discharge"), r.reason),
                due: day.to_string(),
                rule: format!("{} #{}", t.get("wb_referral_rule"), r.id),
                refer: "",
            },
        ));
    }
    out.sort_by(|a, b| a.1.due.cmp(&b.1.due));
    Ok(out)
}

/// Days a resident's contract request may wait before the worklist calls it overdue
/// (local choice: a week).
const ASK_ANSWERED_WITHIN_DAYS: i64 = 7;

/// The centre's open contract requests from the portal, oldest first: each a task of
/// the worklist until a doctor signs or renews (the contract service closes it). Every
/// row shown names a resident: audited as a read.
async fn contract_asks(
    state: &AppState,
    who: &Principal,
    t: &Messages,
    centre: Id,
    on: chrono::NaiveDate,
) -> Result<Vec<(DueStatus, Row)>, AppError> {
    let mut out = Vec::new();
    for a in state.store.open_contract_asks(centre).await? {
        let by = a.asked_at.date() + chrono::Days::new(ASK_ANSWERED_WITHIN_DAYS as u64);
        let status = if on > by {
            DueStatus::Overdue
        } else {
            DueStatus::Due
        };
        let resident = match state.store.resident(a.resident_id).await {
            Ok(r) => r,
            Err(StoreError::NotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        audit::record(
            &*state.store,
            &Actor::from(who),
            "read",
            &format!("Patient/{}/contract", a.resident_id),
            Some(a.resident_id),
            "success",
            "workbench contract requests",
        )
        .await?;
        let what = t.get(if a.renew {
            "wb_ask_renew"
        } else {
            "wb_ask_sign"
        });
        out.push((
            status,
            Row {
                status: status.as_str(),
                status_label: status_label(t, status),
                programme: t.get("wb_ask_prog").to_string(),
                resident_id: a.resident_id,
                resident: resident.name,
                what: if a.note.is_empty() {
                    what.to_string()
                } else {
                    format!("{what}{}{}", t.get("care_colon"), a.note)
                },
                due: by.to_string(),
                rule: t.get("wb_ask_rule").to_string(),
                refer: "",
            },
        ));
    }
    Ok(out)
}

pub(crate) struct PanelRow {
    pub(crate) id: Id,
    pub(crate) name: String,
    pub(crate) age: u32,
    pub(crate) sex: String,
    pub(crate) groups: String,
    pub(crate) until: String,
    pub(crate) overdue: usize,
    pub(crate) due: usize,
}

#[derive(Template)]
#[template(path = "workbench/panel.html")]
pub(crate) struct PanelPage {
    pub(crate) t: &'static Messages,
    pub(crate) user: Option<crate::security::session::SignedIn>,
    pub(crate) date: String,
    pub(crate) lang: String,
    pub(crate) rows: Vec<PanelRow>,
    pub(crate) key: usize,
}

pub async fn panel(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<WorkbenchQuery>,
) -> Result<Response, AppError> {
    let t = q.t();
    let (user, who) = match doctor(&state, &headers, t) {
        Ok(x) => x,
        Err(r) => return Ok(*r),
    };
    let Some(doctor_id) = who.practitioner_id else {
        return Ok((
            StatusCode::FORBIDDEN,
            Html(t.get("wb_no_panel").to_string()),
        )
            .into_response());
    };
    let on = as_of(&state).await?;
    let mut rows = Vec::new();
    let mut after = 0;
    let zh = t.get("lang") == "zh";
    let mut events = Vec::new();
    let actor = Actor::from(&who);
    loop {
        let records = state
            .store
            .programme_records(
                &Cohort::Panel(doctor_id),
                Reading::Programmes,
                on,
                after,
                2_000,
            )
            .await?;
        let Some(last) = records.last() else { break };
        after = last.resident.id;
        for (rec, a) in records.iter().zip(workbench::assess_all(&records, on)) {
            let r = &rec.resident;
            let groups: Vec<&str> = key_populations(rec, on)
                .into_iter()
                .map(|k| if zh { k.name_zh() } else { k.as_str() })
                .collect();
            events.push(audit::entry(
                &actor,
                "search",
                &format!("Patient/{}/panel", r.id),
                Some(r.id),
                "success",
                "panel",
            ));
            rows.push(PanelRow {
                id: r.id,
                name: r.name.clone(),
                age: age_years(r.birth_date, on),
                sex: t
                    .get(if r.sex == Sex::Male { "male" } else { "female" })
                    .into(),
                groups: groups.join(if zh { "、" } else { ", " }),
                until: rec
                    .contract_on(on)
                    .map(|c| c.end.to_string())
                    .unwrap_or_default(),
                overdue: a
                    .items
                    .iter()
                    .filter(|i| i.status == DueStatus::Overdue)
                    .count(),
                due: a
                    .items
                    .iter()
                    .filter(|i| i.status == DueStatus::Due)
                    .count(),
            });
        }
        if records.len() < 2_000 {
            break;
        }
    }
    state.store.insert_audits(&events).await?;
    let key = rows.iter().filter(|r| !r.groups.is_empty()).count();
    let page = PanelPage {
        t,
        user: Some(user),
        date: on.to_string(),
        lang: t.get("lang").into(),
        rows,
        key,
    };
    Ok(Html(page.render()?).into_response())
}
