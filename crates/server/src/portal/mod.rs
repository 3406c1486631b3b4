//! The resident portal (SPEC capability 9): a resident signed in sees their own
//! health record — programme statuses in plain words, what is due, the family-doctor
//! contract, appointments and referrals, a timeline of results flagged against their
//! reference ranges — and who looked at it (the audit log of their record, paged).
//! Only ever the signed-in resident's own record: no page takes a resident id.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{Duration, NaiveDate, NaiveDateTime};
use dhp_core::access::{Principal, Role, Scope};
use dhp_core::codes::{condition_name, immunization_schedule, observation, Flag};
use dhp_core::programmes::{assess, DueStatus, ResidentRecord};
use dhp_core::registry::age_years;
use dhp_core::{Id, Sex};
use dhp_store::{AppointmentFilter, AuditQuery, Reading};
use serde::Deserialize;

use crate::context::{as_of, principal_of, readable, Readable, Refusal};
use crate::i18n::{messages, Messages};
use crate::security::session::SignedIn;
use crate::{AppError, AppState};

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/me", get(my_record))
        .route("/me/access", get(my_access))
}

#[derive(Debug, Deserialize)]
pub struct PortalQuery {
    #[serde(default, deserialize_with = "crate::i18n::page_lang")]
    pub(crate) lang: Option<String>,
    /// `/me/access`: the page after this place (the last entry's time and id).
    pub(crate) before: Option<String>,
}

impl PortalQuery {
    fn t(&self) -> &'static Messages {
        messages(self.lang.as_deref().unwrap_or("zh"))
    }
}

/// The signed-in resident, or the answer for anyone else: the login page (coming
/// back here) for no session, a styled refusal for another role.
fn resident(
    state: &AppState,
    headers: &HeaderMap,
    t: &'static Messages,
    path: &str,
) -> Result<(SignedIn, Principal, Id), Box<Response>> {
    let user = crate::context::session_or_login(state, headers, t, path)?;
    match principal_of(&user) {
        Some(p) if p.role == Role::Resident && p.resident_id.is_some() => {
            let id = p.resident_id.expect("checked");
            Ok((user, p, id))
        }
        _ => {
            let home = crate::context::start_page(&user.role);
            Err(Box::new(
                Refusal::bare(StatusCode::FORBIDDEN, t.get("me_residents_only")).page(
                    t,
                    Some(user),
                    (home, "back_home"),
                ),
            ))
        }
    }
}

pub(crate) struct Status {
    programme: String,
    status: String,
    detail: String,
    /// `good`, `warn` or `bad`: the colour of the status.
    tone: &'static str,
}

pub(crate) struct Due {
    status: &'static str,
    status_label: String,
    programme: String,
    what: String,
    due: String,
}

pub(crate) struct Visit {
    when: String,
    place: String,
    service: String,
    status: String,
    upcoming: bool,
}

pub(crate) struct Referral {
    when: String,
    direction: String,
    to: String,
    status: String,
}

pub(crate) struct Entry {
    date: String,
    kind: String,
    what: String,
    value: String,
    /// `high`, `low` or empty.
    flag: &'static str,
    flag_label: String,
    range: String,
}

#[derive(Template)]
#[template(path = "portal/me.html")]
pub(crate) struct MePage {
    t: &'static Messages,
    user: Option<SignedIn>,
    lang: String,
    name: String,
    facts: String,
    date: String,
    statuses: Vec<Status>,
    due: Vec<Due>,
    contract: Option<(String, String, String, String)>,
    visits: Vec<Visit>,
    referrals: Vec<Referral>,
    timeline: Vec<Entry>,
    sources: Vec<String>,
}

/// `GET /me`: my health record.
pub async fn my_record(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<PortalQuery>,
) -> Result<Response, AppError> {
    let t = q.t();
    let (user, who, id) = match resident(&state, &headers, t, "/me") {
        Ok(x) => x,
        Err(r) => return Ok(*r),
    };
    let on = as_of(&state).await?;
    let rec = match readable(&state, &who, id, on, "read", Reading::Full).await? {
        Readable::Record(rec) => *rec,
        Readable::NotFound | Readable::Denied => {
            return Ok(
                Refusal::bare(StatusCode::NOT_FOUND, t.get("me_no_record")).page(
                    t,
                    Some(user),
                    ("/", "back_home"),
                ),
            )
        }
    };
    let page = me_page(&state, t, user, &rec, on).await?;
    Ok(Html(page.render()?).into_response())
}

async fn me_page(
    state: &AppState,
    t: &'static Messages,
    user: SignedIn,
    rec: &ResidentRecord,
    on: NaiveDate,
) -> Result<MePage, AppError> {
    let zh = t.get("lang") == "zh";
    let orgs = state.orgs().await?;
    let org = |id: Id| {
        orgs.get(&id)
            .map(|o| if zh { &o.name_zh } else { &o.name_en }.clone())
            .unwrap_or_default()
    };
    let r = &rec.resident;
    let a = assess(rec, on);
    let statuses = a
        .statuses
        .iter()
        .map(|s| Status {
            programme: t.programme(s.programme),
            status: t.programme_status(&s.status),
            detail: if zh { &s.detail_zh } else { &s.detail_en }.clone(),
            tone: if s.status.contains("uncontrolled") || s.status.contains("emergency") {
                "bad"
            } else if s.status.contains("controlled") || s.status == "complete" {
                "good"
            } else {
                "warn"
            },
        })
        .collect();
    // What is due now and in the next three months, the most pressing first.
    let mut items: Vec<_> = a
        .items
        .iter()
        .filter(|i| i.status != DueStatus::Upcoming || i.earliest <= on + chrono::Days::new(90))
        .collect();
    items.sort_by_key(|i| {
        (
            i.status != DueStatus::Overdue,
            i.status != DueStatus::Due,
            i.due,
        )
    });
    let due = items
        .into_iter()
        .take(50)
        .map(|i| Due {
            status: i.status.as_str(),
            status_label: t.due_status(i.status),
            programme: t.programme(i.programme),
            what: if zh { &i.what_zh } else { &i.what_en }.clone(),
            due: i.due.to_string(),
        })
        .collect();
    let contract = rec.contract_on(on).map(|c| {
        (
            org(c.centre_org_id),
            org(c.district_hospital_id),
            org(c.city_hospital_id),
            c.end.to_string(),
        )
    });
    // Appointments, newest first; those still ahead marked so.
    let now = crate::context::district_now(state).await?;
    let (views, _) = state
        .store
        .search_appointments(&AppointmentFilter {
            ids: Vec::new(),
            residents: vec![r.id],
            slots: Vec::new(),
            orgs: Vec::new(),
            practitioners: Vec::new(),
            statuses: Vec::new(),
            services: Vec::new(),
            date: Vec::new(),
            scope: Scope::All,
            today: on,
            limit: 100,
            offset: 0,
        })
        .await?;
    let mut visits: Vec<(NaiveDateTime, Visit)> = views
        .iter()
        .map(|v| {
            let key = format!("svc_{}", v.slot.service);
            let service = match t.get(&key) {
                k if k == key => v.slot.service.clone(),
                name => name.to_string(),
            };
            (
                v.slot.slot.start,
                Visit {
                    when: v.slot.slot.start.format("%Y-%m-%d %H:%M").to_string(),
                    place: org(v.slot.org_id),
                    service,
                    status: t
                        .get(&format!("appt_{}", v.row.status.as_str().replace('-', "_")))
                        .to_string(),
                    upcoming: v.slot.slot.start >= now,
                },
            )
        })
        .collect();
    visits.sort_by_key(|v| std::cmp::Reverse(v.0));
    let referrals = state
        .store
        .referrals_of(r.id)
        .await?
        .iter()
        .map(|f| Referral {
            when: f.created.format("%Y-%m-%d").to_string(),
            direction: t
                .get(&format!("care_dir_{}", f.direction.as_str()))
                .to_string(),
            to: org(f.to_org),
            status: t
                .get(&format!("care_st_{}", f.status.as_str().replace('-', "_")))
                .to_string(),
        })
        .collect();
    let (timeline, sources) = timeline(t, rec, &org);
    Ok(MePage {
        t,
        user: Some(user),
        lang: t.get("lang").into(),
        name: r.name.clone(),
        facts: format!(
            "{} · {} {} · {}",
            t.get(if r.sex == Sex::Male { "male" } else { "female" }),
            age_years(r.birth_date, on),
            t.get("years_old"),
            r.birth_date,
        ),
        date: on.to_string(),
        statuses,
        due,
        contract,
        visits: visits.into_iter().map(|(_, v)| v).collect(),
        referrals,
        timeline,
        sources,
    })
}

/// The record as a timeline, newest first (at most 300 entries), with the public
/// sources of the reference ranges it flags against.
fn timeline(
    t: &Messages,
    rec: &ResidentRecord,
    org: &dyn Fn(Id) -> String,
) -> (Vec<Entry>, Vec<String>) {
    let zh = t.get("lang") == "zh";
    let mut out: Vec<(NaiveDateTime, Entry)> = Vec::new();
    let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0).expect("midnight");
    let plain = |date: String, kind: &str, what: String| Entry {
        date,
        kind: t.get(kind).to_string(),
        what,
        value: String::new(),
        flag: "",
        flag_label: String::new(),
        range: String::new(),
    };
    for e in &rec.encounters {
        let what = match e.programme {
            Some(p) => format!("{} · {}", t.programme(p), org(e.org_id)),
            None => org(e.org_id),
        };
        let mut entry = plain(
            e.start.format("%Y-%m-%d %H:%M").to_string(),
            &format!("enc_{}", e.kind.as_str()),
            what,
        );
        entry.kind = t.get(&format!("enc_{}", e.kind.as_str())).to_string();
        out.push((e.start, entry));
    }
    for c in &rec.conditions {
        out.push((
            midnight(c.onset),
            plain(
                c.onset.to_string(),
                "condition",
                format!("{} ({})", condition_name(&c.icd10, zh), c.icd10),
            ),
        ));
    }
    let mut sources = Vec::new();
    for o in &rec.observations {
        let code = observation(&o.code);
        let name = code
            .map(|c| if zh { &c.name_zh } else { &c.name_en }.clone())
            .unwrap_or_else(|| o.code.clone());
        let flag = code.and_then(|c| c.flag(o.value));
        if let (Some(c), Some(_)) = (code, flag) {
            let source = if zh {
                &c.ref_source_zh
            } else {
                &c.ref_source_en
            };
            if let Some(s) = source.as_ref().filter(|s| !sources.contains(*s)) {
                sources.push(s.clone());
            }
        }
        out.push((
            o.effective,
            Entry {
                date: o.effective.format("%Y-%m-%d %H:%M").to_string(),
                kind: t.get("me_result").to_string(),
                what: name,
                value: format!("{} {}", o.value, o.unit),
                flag: match flag {
                    Some(Flag::High) => "high",
                    Some(Flag::Low) => "low",
                    None => "",
                },
                flag_label: match flag {
                    Some(Flag::High) => t.get("me_high").to_string(),
                    Some(Flag::Low) => t.get("me_low").to_string(),
                    None => String::new(),
                },
                range: code.and_then(|c| c.range_text()).unwrap_or_default(),
            },
        ));
    }
    let schedule = immunization_schedule();
    for i in &rec.immunizations {
        let vaccine = schedule
            .vaccine(&i.vaccine)
            .map(|v| if zh { &v.name_zh } else { &v.name_en }.clone())
            .unwrap_or_else(|| i.vaccine.clone());
        out.push((
            midnight(i.date),
            plain(
                i.date.to_string(),
                "immunization",
                format!(
                    "{vaccine} · {} {} · {}",
                    t.get("me_dose"),
                    i.dose_number,
                    org(i.org_id)
                ),
            ),
        ));
    }
    out.sort_by_key(|e| std::cmp::Reverse(e.0));
    (out.into_iter().take(300).map(|(_, e)| e).collect(), sources)
}

pub(crate) struct Look {
    when: String,
    who: String,
    role: String,
    place: String,
    what: String,
    allowed: bool,
    outcome: String,
}

#[derive(Template)]
#[template(path = "portal/access.html")]
pub(crate) struct AccessPage {
    t: &'static Messages,
    user: Option<SignedIn>,
    lang: String,
    looks: Vec<Look>,
    /// The `before` value of the next page, if there is one.
    next: String,
    first: bool,
}

/// Entries a page of "who looked at my record" shows.
const ACCESS_PAGE: i64 = 50;

/// `GET /me/access`: who looked at my record — every entry of the audit log about
/// it (reads, searches, writes, refusals), newest first, paged.
pub async fn my_access(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<PortalQuery>,
) -> Result<Response, AppError> {
    let t = q.t();
    let (user, who, id) = match resident(&state, &headers, t, "/me/access") {
        Ok(x) => x,
        Err(r) => return Ok(*r),
    };
    let before = match q.before.as_deref().filter(|b| !b.is_empty()) {
        None => None,
        Some(b) => match AuditQuery::parse_place(b) {
            Some(c) => Some(c),
            None => {
                return Ok(Refusal::bad(t.get("me_f_page"), t.get("me_bad_page")).page(
                    t,
                    Some(user),
                    ("/me/access", "me_access"),
                ))
            }
        },
    };
    let first = before.is_none();
    let mut entries = state
        .store
        .audit_page(&AuditQuery {
            resident: Some(id),
            before,
            limit: ACCESS_PAGE + 1,
            ..Default::default()
        })
        .await?;
    let more = entries.len() as i64 > ACCESS_PAGE;
    entries.truncate(ACCESS_PAGE as usize);
    // Reading the log of one's own record is itself a read of it.
    crate::audit::record(
        &*state.store,
        &crate::audit::Actor::from(&who),
        "read",
        &format!("AuditEvent?patient=Patient/{id}"),
        Some(id),
        "success",
        "own access log",
    )
    .await?;
    let zh = t.get("lang") == "zh";
    let orgs = state.orgs().await?;
    let mut names: std::collections::HashMap<String, String> = Default::default();
    let mut looks = Vec::with_capacity(entries.len());
    for e in &entries {
        let who_name = if e.username == who.username {
            t.get("me_you").to_string()
        } else if e.role == Role::Resident.as_str() {
            // Another resident is never named to this one.
            t.get("me_another_resident").to_string()
        } else if let Some(n) = names.get(&e.username) {
            n.clone()
        } else {
            // A person's name, never a login id or a client id: an account without
            // a name of its own is shown by its role alone.
            let n = match state.store.user_by_username(&e.username).await {
                Ok(u) if !u.display_name.trim().is_empty() && u.display_name != u.username => {
                    u.display_name
                }
                _ => String::new(),
            };
            names.insert(e.username.clone(), n.clone());
            n
        };
        let allowed = e.outcome == "success";
        looks.push(Look {
            // Kept in UTC; shown in the district's time.
            when: (e.recorded + Duration::hours(dhp_core::clock::UTC_OFFSET_HOURS))
                .format("%Y-%m-%d %H:%M")
                .to_string(),
            who: who_name,
            role: t.role(&e.role).to_string(),
            place: e
                .org_id
                .and_then(|o| orgs.get(&o))
                .map(|o| if zh { &o.name_zh } else { &o.name_en }.clone())
                .unwrap_or_default(),
            what: action_label(t, &e.action),
            allowed,
            outcome: t
                .get(if allowed { "me_allowed" } else { "me_refused" })
                .to_string(),
        });
    }
    let next = match (more, entries.last()) {
        (true, Some(last)) => last.place(),
        _ => String::new(),
    };
    let page = AccessPage {
        t,
        user: Some(user),
        lang: t.get("lang").into(),
        looks,
        next,
        first,
    };
    Ok(Html(page.render()?).into_response())
}

/// An audit action as a resident reads it (`read` → 查看).
fn action_label(t: &Messages, action: &str) -> String {
    let key = format!("me_act_{}", action.replace('-', "_"));
    match t.get(&key) {
        k if k == key => t.get("me_act_other").to_string(),
        v => v.to_string(),
    }
}
