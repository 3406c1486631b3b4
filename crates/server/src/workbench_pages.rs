//! Workbench pages for a family doctor: the due list, the panel, a resident's page with
//! timeline, due items and the follow-up form, and the printable vaccination forecast.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use chrono::NaiveDate;
use dhp_core::access::Principal;
use dhp_core::programmes::immunization::{forecast, SeriesState};
use dhp_core::programmes::{assess, key_populations, DueStatus, ResidentRecord};
use dhp_core::registry::age_years;
use dhp_core::{Id, Programme, Sex};
use dhp_store::{Cohort, Reading, StoreError};
use serde::Deserialize;

use crate::audit::{self, Actor};
use crate::i18n::{messages, Messages};
use crate::pages::current_user;
use crate::workbench::{
    self, as_of, audit_rows, due_list, parse_due_params, principal_of, FollowUpForm, Readable,
};
use crate::{AppError, AppState};

/// Rows shown on one due-list page.
const SHOWN: usize = 400;

#[derive(Debug, Deserialize, Default)]
pub struct WorkbenchQuery {
    lang: Option<String>,
    date: Option<String>,
    programme: Option<String>,
    within: Option<String>,
    saved: Option<String>,
}

impl WorkbenchQuery {
    fn t(&self) -> &'static Messages {
        messages(self.lang.as_deref().unwrap_or("zh"))
    }
}

pub(crate) struct Row {
    status: &'static str,
    status_label: String,
    programme: String,
    resident_id: Id,
    resident: String,
    what: String,
    due: String,
    rule: String,
}

pub(crate) struct Chip {
    label: String,
    href: String,
    on: bool,
}

#[derive(Template)]
#[template(path = "workbench.html")]
struct WorkbenchPage {
    t: &'static Messages,
    user: Option<crate::security::session::SignedIn>,
    org: String,
    date: String,
    lang: String,
    chips: Vec<Chip>,
    ranges: Vec<Chip>,
    counts: Vec<(String, String, &'static str)>,
    rows: Vec<Row>,
    more: usize,
}

/// A signed-in family doctor, or the page that says why not.
fn doctor(
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

fn programme_label(t: &Messages, p: Programme) -> String {
    t.get(&format!("prog_{}", p.as_str())).to_string()
}

/// A programme status as a person reads it (`controlled` → 已控制); unknown values as
/// they are.
fn status_name(t: &Messages, status: &str) -> String {
    let parts: Vec<String> = status
        .split('+')
        .map(|p| {
            let key = format!("st_{}", p.replace('-', "_"));
            match t.get(&key) {
                k if k == key => p.to_string(),
                v => v.to_string(),
            }
        })
        .collect();
    parts.join(" + ")
}

fn status_label(t: &Messages, s: DueStatus) -> String {
    t.get(&format!("status_{}", s.as_str())).to_string()
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
        q.date.as_deref(),
        q.programme.as_deref(),
        q.within.as_deref(),
        today,
    ) {
        Ok(x) => x,
        Err(r) => return Ok(*r),
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
    let count = |s: DueStatus| rows.iter().filter(|r| r.item.status == s).count();
    let counts = [DueStatus::Overdue, DueStatus::Due, DueStatus::Upcoming]
        .into_iter()
        .map(|s| {
            (
                status_label(t, s),
                crate::pages::thousands(count(s) as i64),
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
        rows: shown
            .iter()
            .map(|r| Row {
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
            })
            .collect(),
        more: rows.len().saturating_sub(SHOWN),
    };
    Ok(Html(page.render()?).into_response())
}

pub(crate) struct PanelRow {
    id: Id,
    name: String,
    age: u32,
    sex: String,
    groups: String,
    until: String,
    overdue: usize,
    due: usize,
}

#[derive(Template)]
#[template(path = "panel.html")]
struct PanelPage {
    t: &'static Messages,
    user: Option<crate::security::session::SignedIn>,
    date: String,
    lang: String,
    rows: Vec<PanelRow>,
    key: usize,
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

pub(crate) struct Event {
    date: String,
    kind: String,
    what: String,
}

pub(crate) struct ItemRow {
    status: &'static str,
    status_label: String,
    programme: String,
    what: String,
    earliest: String,
    due: String,
    overdue_after: String,
    rule: String,
}

#[derive(Template)]
#[template(path = "resident.html")]
struct ResidentPage {
    t: &'static Messages,
    user: Option<crate::security::session::SignedIn>,
    lang: String,
    id: Id,
    name: String,
    facts: String,
    groups: String,
    contract: String,
    date: String,
    /// Programme, machine status, detail, status as shown.
    statuses: Vec<(String, String, String, String)>,
    items: Vec<ItemRow>,
    events: Vec<Event>,
    programmes: Vec<(String, String)>,
    error: String,
    saved: bool,
    child: bool,
    form: FollowUpForm,
    signed: bool,
    district_hospitals: Vec<(String, String)>,
    city_hospitals: Vec<(String, String)>,
}

/// The record of resident `id` if `who` may read it (audited either way).
async fn readable_record(
    state: &AppState,
    who: &Principal,
    id: Id,
    on: NaiveDate,
    action: &str,
) -> Result<Option<ResidentRecord>, AppError> {
    Ok(
        match workbench::readable(state, who, id, on, action, Reading::Full).await? {
            Readable::Record(rec) => Some(*rec),
            Readable::NotFound | Readable::Denied => None,
        },
    )
}

#[allow(clippy::too_many_arguments)]
async fn resident_page(
    state: &AppState,
    user: crate::security::session::SignedIn,
    who: &Principal,
    t: &'static Messages,
    id: Id,
    form: FollowUpForm,
    error: String,
    saved: bool,
) -> Result<Response, AppError> {
    let on = as_of(state).await?;
    let Some(rec) = readable_record(state, who, id, on, "read").await? else {
        return Ok((
            StatusCode::NOT_FOUND,
            Html(t.get("wb_not_found").to_string()),
        )
            .into_response());
    };
    let zh = t.get("lang") == "zh";
    let a = assess(&rec, on);
    let r = &rec.resident;
    let orgs = state.orgs().await?;
    let org_name = |id: Id| {
        orgs.get(&id)
            .map(|o| {
                if zh {
                    o.name_zh.clone()
                } else {
                    o.name_en.clone()
                }
            })
            .unwrap_or_else(|| id.to_string())
    };
    let mut events: Vec<(chrono::NaiveDateTime, Event)> = Vec::new();
    for e in &rec.encounters {
        let what = match e.programme {
            Some(p) => format!("{} · {}", programme_label(t, p), org_name(e.org_id)),
            None => org_name(e.org_id),
        };
        events.push((
            e.start,
            Event {
                date: e.start.format("%Y-%m-%d %H:%M").to_string(),
                kind: t.get(&format!("enc_{}", e.kind.as_str())).into(),
                what,
            },
        ));
    }
    for o in &rec.observations {
        let name = dhp_core::codes::observation(&o.code)
            .map(|c| {
                if zh {
                    c.name_zh.clone()
                } else {
                    c.name_en.clone()
                }
            })
            .unwrap_or_else(|| o.code.clone());
        events.push((
            o.effective,
            Event {
                date: o.effective.format("%Y-%m-%d %H:%M").to_string(),
                kind: t.get("observation").into(),
                what: format!("{name} {} {}", o.value, o.unit),
            },
        ));
    }
    for i in &rec.immunizations {
        events.push((
            i.date.and_hms_opt(0, 0, 0).expect("midnight"),
            Event {
                date: i.date.to_string(),
                kind: t.get("immunization").into(),
                what: format!("{} #{}", i.vaccine, i.dose_number),
            },
        ));
    }
    for c in &rec.conditions {
        events.push((
            c.onset.and_hms_opt(0, 0, 0).expect("midnight"),
            Event {
                date: c.onset.to_string(),
                kind: t.get("condition").into(),
                what: c.icd10.clone(),
            },
        ));
    }
    events.sort_by_key(|e| std::cmp::Reverse(e.0));
    let groups: Vec<&str> = key_populations(&rec, on)
        .into_iter()
        .map(|k| if zh { k.name_zh() } else { k.as_str() })
        .collect();
    let contract = rec
        .contract_on(on)
        .map(|c| format!("{} · {} – {}", org_name(c.centre_org_id), c.start, c.end))
        .unwrap_or_else(|| t.get("no_contract").into());
    let form = if form.date.is_empty() {
        FollowUpForm {
            date: on.to_string(),
            programme: form.programme,
            ..form
        }
    } else {
        form
    };
    let page = ResidentPage {
        t,
        user: Some(user),
        lang: t.get("lang").into(),
        id,
        name: r.name.clone(),
        facts: format!(
            "{} · {} {} · {} · {}",
            t.get(if r.sex == Sex::Male { "male" } else { "female" }),
            age_years(r.birth_date, on),
            t.get("years_old"),
            r.birth_date,
            r.identity_number.as_str()
        ),
        groups: groups.join(if zh { "、" } else { ", " }),
        contract,
        date: on.to_string(),
        statuses: a
            .statuses
            .iter()
            .map(|s| {
                (
                    programme_label(t, s.programme),
                    s.status.clone(),
                    if zh {
                        s.detail_zh.clone()
                    } else {
                        s.detail_en.clone()
                    },
                    status_name(t, &s.status),
                )
            })
            .collect(),
        items: a
            .items
            .iter()
            .filter(|i| i.status != DueStatus::Upcoming || i.earliest <= on + chrono::Days::new(90))
            .map(|i| ItemRow {
                status: i.status.as_str(),
                status_label: status_label(t, i.status),
                programme: programme_label(t, i.programme),
                what: if zh {
                    i.what_zh.clone()
                } else {
                    i.what_en.clone()
                },
                earliest: i.earliest.to_string(),
                due: i.due.to_string(),
                overdue_after: i.overdue_after.to_string(),
                rule: i.rule.clone(),
            })
            .collect(),
        events: events.into_iter().take(200).map(|(_, e)| e).collect(),
        programmes: Programme::ALL
            .iter()
            .filter(|p| **p != Programme::Immunization)
            .map(|p| (p.as_str().to_string(), programme_label(t, *p)))
            .collect(),
        error,
        saved,
        child: age_years(r.birth_date, on) < 18,
        form,
        signed: rec
            .contracts
            .iter()
            .any(|c| c.status != dhp_core::ContractStatus::Ended && c.end >= on),
        district_hospitals: hospitals(orgs, dhp_core::OrgKind::District, zh),
        city_hospitals: hospitals(orgs, dhp_core::OrgKind::City, zh),
    };
    Ok(Html(page.render()?).into_response())
}

/// Hospitals under a unit of `parent_kind` (the district's, or the city's), by name.
fn hospitals(
    orgs: &std::collections::HashMap<Id, dhp_core::Organisation>,
    parent_kind: dhp_core::OrgKind,
    zh: bool,
) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = orgs
        .values()
        .filter(|o| {
            o.kind == dhp_core::OrgKind::Hospital
                && o.parent_id
                    .and_then(|p| orgs.get(&p))
                    .is_some_and(|p| p.kind == parent_kind)
        })
        .map(|o| {
            (
                o.code.clone(),
                if zh {
                    o.name_zh.clone()
                } else {
                    o.name_en.clone()
                },
            )
        })
        .collect();
    v.sort();
    v
}

/// The resident page again with `error` shown (a refused form of another module).
pub(crate) async fn resident_with_error(
    state: &AppState,
    headers: &HeaderMap,
    lang: &str,
    id: Id,
    error: String,
) -> Result<Response, AppError> {
    let t = messages(lang);
    let (user, who) = match doctor(state, headers, t) {
        Ok(x) => x,
        Err(r) => return Ok(*r),
    };
    resident_page(
        state,
        user,
        &who,
        t,
        id,
        FollowUpForm::default(),
        error,
        false,
    )
    .await
}

pub async fn resident(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<Id>,
    Query(q): Query<WorkbenchQuery>,
) -> Result<Response, AppError> {
    let t = q.t();
    let (user, who) = match doctor(&state, &headers, t) {
        Ok(x) => x,
        Err(r) => return Ok(*r),
    };
    resident_page(
        &state,
        user,
        &who,
        t,
        id,
        FollowUpForm::default(),
        String::new(),
        q.saved.is_some(),
    )
    .await
}

pub async fn record_followup(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<Id>,
    Query(q): Query<WorkbenchQuery>,
    Form(form): Form<FollowUpForm>,
) -> Result<Response, AppError> {
    let t = q.t();
    let (user, who) = match doctor(&state, &headers, t) {
        Ok(x) => x,
        Err(r) => return Ok(*r),
    };
    let on = as_of(&state).await?;
    let followup = match form.parse(on) {
        Ok(f) => f,
        Err((field, why)) => {
            let page = resident_page(
                &state,
                user,
                &who,
                t,
                id,
                form,
                format!("{field}: {why}"),
                false,
            )
            .await?;
            return Ok((StatusCode::BAD_REQUEST, page).into_response());
        }
    };
    let Some(rec) = readable_record(&state, &who, id, on, "create").await? else {
        return Ok((
            StatusCode::NOT_FOUND,
            Html(t.get("wb_not_found").to_string()),
        )
            .into_response());
    };
    match workbench::record_followup(&state, &who, &rec.resident, &followup).await? {
        Ok(_) => Ok(Redirect::to(&format!(
            "/workbench/resident/{id}?lang={}&saved=1",
            t.get("lang")
        ))
        .into_response()),
        Err(why) => {
            let page = resident_page(&state, user, &who, t, id, form, why, false).await?;
            Ok((StatusCode::BAD_REQUEST, page).into_response())
        }
    }
}

pub(crate) struct VaccineRow {
    name: String,
    given: String,
    state: String,
    next: String,
    earliest: String,
    recommended: String,
    overdue_after: String,
    status: &'static str,
}

#[derive(Template)]
#[template(path = "vaccines.html")]
struct VaccinesPage {
    t: &'static Messages,
    user: Option<crate::security::session::SignedIn>,
    lang: String,
    id: Id,
    name: String,
    birth: String,
    date: String,
    rows: Vec<VaccineRow>,
}

pub async fn vaccines(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<Id>,
    Query(q): Query<WorkbenchQuery>,
) -> Result<Response, AppError> {
    let t = q.t();
    let (user, who) = match doctor(&state, &headers, t) {
        Ok(x) => x,
        Err(r) => return Ok(*r),
    };
    let on = as_of(&state).await?;
    let Some(rec) = readable_record(&state, &who, id, on, "read").await? else {
        return Ok((
            StatusCode::NOT_FOUND,
            Html(t.get("wb_not_found").to_string()),
        )
            .into_response());
    };
    let zh = t.get("lang") == "zh";
    let rows = forecast(&rec, on)
        .into_iter()
        .map(|s| {
            let n = s.next.as_ref();
            VaccineRow {
                name: if zh {
                    format!("{}（{}）", s.name_zh, s.vaccine)
                } else {
                    format!("{} ({})", s.name_en, s.vaccine)
                },
                given: s
                    .given
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(" · "),
                state: t
                    .get(match s.state {
                        SeriesState::Complete => "series_complete",
                        SeriesState::InProgress => "series_open",
                        SeriesState::Closed => "series_closed",
                    })
                    .into(),
                next: n.map(|n| n.number.to_string()).unwrap_or_default(),
                earliest: n.map(|n| n.earliest.to_string()).unwrap_or_default(),
                recommended: n.map(|n| n.recommended.to_string()).unwrap_or_default(),
                overdue_after: n.map(|n| n.overdue_after.to_string()).unwrap_or_default(),
                status: n.map(|n| n.status.as_str()).unwrap_or(""),
            }
        })
        .collect();
    let page = VaccinesPage {
        t,
        user: Some(user),
        lang: t.get("lang").into(),
        id,
        name: rec.resident.name.clone(),
        birth: rec.resident.birth_date.to_string(),
        date: on.to_string(),
        rows,
    };
    Ok(Html(page.render()?).into_response())
}
