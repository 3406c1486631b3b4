//! One resident's page on the workbench (record, due items, contract form, follow-up
//! form) and the printable vaccination plan.

use super::*;
use crate::context::current_user;
use crate::context::{as_of, principal_of, Readable};
use crate::contracts::ContractRequest;
use crate::i18n::{messages, Messages};
use crate::workbench::FollowUpForm;
use crate::{AppError, AppState};
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
use dhp_store::Reading;
use serde::Deserialize;
use std::sync::Arc;

/// The language of the page a contract form was posted from.
#[derive(Debug, Deserialize)]
pub struct ContractPageQuery {
    #[serde(default, deserialize_with = "crate::i18n::page_lang")]
    pub(crate) lang: Option<String>,
}

pub(crate) struct Event {
    pub(crate) date: String,
    pub(crate) kind: String,
    pub(crate) what: String,
}

pub(crate) struct ItemRow {
    pub(crate) status: &'static str,
    pub(crate) status_label: String,
    pub(crate) programme: String,
    pub(crate) what: String,
    pub(crate) earliest: String,
    pub(crate) due: String,
    pub(crate) overdue_after: String,
    pub(crate) rule: String,
    /// A referral flag (`emergency`, `uncontrolled`): the row offers the referral form.
    pub(crate) refer: &'static str,
}

#[derive(Template)]
#[template(path = "workbench/resident.html")]
pub(crate) struct ResidentPage {
    pub(crate) t: &'static Messages,
    pub(crate) user: Option<crate::security::session::SignedIn>,
    pub(crate) lang: String,
    pub(crate) id: Id,
    pub(crate) name: String,
    pub(crate) facts: String,
    pub(crate) groups: String,
    pub(crate) contract: String,
    pub(crate) date: String,
    /// Programme, machine status, detail, status as shown.
    pub(crate) statuses: Vec<(String, String, String, String)>,
    pub(crate) items: Vec<ItemRow>,
    pub(crate) events: Vec<Event>,
    pub(crate) programmes: Vec<(String, String)>,
    pub(crate) error: String,
    pub(crate) saved: bool,
    pub(crate) child: bool,
    pub(crate) form: FollowUpForm,
    pub(crate) signed: bool,
    pub(crate) district_hospitals: Vec<(String, String)>,
    pub(crate) city_hospitals: Vec<(String, String)>,
}

/// The record of resident `id` if `who` may read it (audited either way).
pub(crate) async fn readable_record(
    state: &AppState,
    who: &Principal,
    id: Id,
    on: NaiveDate,
    action: &str,
) -> Result<Option<ResidentRecord>, AppError> {
    Ok(
        match crate::context::readable(state, who, id, on, action, Reading::Full).await? {
            Readable::Record(rec) => Some(*rec),
            Readable::NotFound | Readable::Denied => None,
        },
    )
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn resident_page(
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
    let mut a = assess(&rec, on);
    // A referral flag a referral made since has answered is no longer due.
    a.items = super::drop_answered_flags(&*state.store, a.items, |i| (id, i)).await?;
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
        let code = dhp_core::codes::observation(&o.code);
        let what = match code {
            Some(c) => format!(
                "{} {}",
                if zh { &c.name_zh } else { &c.name_en },
                c.shown_value(o.value, zh)
            ),
            None => format!("{} {} {}", o.code, o.value, o.unit),
        };
        events.push((
            o.effective,
            Event {
                date: o.effective.format("%Y-%m-%d %H:%M").to_string(),
                kind: t.get("observation").into(),
                what,
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
                refer: super::refer_flag(&i.key),
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
pub(crate) fn hospitals(
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
    match followup::record_followup(&state, &who, &rec.resident, &followup).await? {
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
    pub(crate) name: String,
    pub(crate) given: String,
    pub(crate) state: String,
    pub(crate) next: String,
    pub(crate) earliest: String,
    pub(crate) recommended: String,
    pub(crate) overdue_after: String,
    pub(crate) status: &'static str,
}

#[derive(Template)]
#[template(path = "workbench/vaccines.html")]
pub(crate) struct VaccinesPage {
    pub(crate) t: &'static Messages,
    pub(crate) user: Option<crate::security::session::SignedIn>,
    pub(crate) lang: String,
    pub(crate) id: Id,
    pub(crate) name: String,
    pub(crate) birth: String,
    pub(crate) date: String,
    pub(crate) rows: Vec<VaccineRow>,
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

/// `POST /workbench/resident/{id}/contract` from the resident page's contract form.
pub async fn contract_change(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<Id>,
    Query(q): Query<ContractPageQuery>,
    Form(req): Form<ContractRequest>,
) -> Result<Response, AppError> {
    let lang = q.lang.unwrap_or_else(|| "zh".into());
    let Some(who) = current_user(&state, &headers).and_then(|u| principal_of(&u)) else {
        return Ok(Redirect::to(&format!("/login?lang={lang}")).into_response());
    };
    let today = as_of(&state).await?;
    Ok(
        match crate::contracts::change(&state, &who, id, &req, today).await? {
            Ok(_) => Redirect::to(&format!("/workbench/resident/{id}?lang={lang}&saved=1"))
                .into_response(),
            Err(r) => {
                let page = resident_with_error(
                    &state,
                    &headers,
                    &lang,
                    id,
                    format!("{}: {}", r.field.as_deref().unwrap_or_default(), r.message),
                )
                .await?;
                (r.status, page).into_response()
            }
        },
    )
}
