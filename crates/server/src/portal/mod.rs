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
use dhp_core::access::{Principal, Role};
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

mod booking;
mod children;
mod contract;
mod survey;
mod waitlist;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/me", get(my_record))
        .route("/me/access", get(my_access))
        .route("/me/book", get(booking::search).post(booking::book))
        .route(
            "/me/appointments/{id}/cancel",
            axum::routing::post(booking::cancel),
        )
        .route(
            "/me/appointments/{id}/survey",
            get(survey::form).post(survey::answer),
        )
        .route("/me/contract/ask", axum::routing::post(contract::ask))
        .route(
            "/me/waitlist/{id}/accept",
            axum::routing::post(waitlist::accept),
        )
        .route(
            "/me/waitlist/{id}/withdraw",
            axum::routing::post(waitlist::withdraw),
        )
        .route("/me/children/{id}", get(children::child_page))
        .route("/me/children/{id}/vaccines", get(children::vaccine_plan))
        .route(
            "/me/guardians/{id}/consent",
            axum::routing::post(children::consent),
        )
}

#[derive(Debug, Deserialize)]
pub struct PortalQuery {
    #[serde(default, deserialize_with = "crate::i18n::page_lang")]
    pub(crate) lang: Option<String>,
    /// `/me/access`: the page after this place (the last entry's time and id).
    pub(crate) before: Option<String>,
    /// `/me`: the page of the health record's timeline (1 = the newest).
    pub(crate) page: Option<String>,
    /// `/me/access`: `1` leaves out the resident's own acts.
    pub(crate) others: Option<String>,
    /// `/me`: what was just done (`booked`, `cancelled`), to say so.
    pub(crate) saved: Option<String>,
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
    /// When, in words: from when it may be done, by when, or how late it is.
    when: String,
}

/// The colour of a programme status: the worst of its parts (`a+b`), each as the
/// programme's own scale reads it — controlled, independent, green, level 0,
/// complete, on time are good; uncontrolled, emergency, dependent, orange / red /
/// purple, danger level 3 and above are bad; the rest (no reading yet, mild or
/// moderate dependence, yellow, level 1–2, in progress, behind) want attention.
fn tone(status: &str) -> &'static str {
    let rank = |part: &str| match part {
        "controlled" | "independent" | "green" | "level-0" | "complete" | "on-track" => 0,
        "uncontrolled" | "emergency" | "dependent" | "orange" | "red" | "purple" | "level-3"
        | "level-4" | "level-5" => 2,
        _ => 1,
    };
    match status.split('+').map(rank).max().unwrap_or(1) {
        0 => "good",
        2 => "bad",
        _ => "warn",
    }
}

/// Timeline entries a page.
const TIMELINE_PAGE: usize = 50;

/// The 1+1+1 contract in force: the doctor, the centre, the two hospitals, its end.
pub(crate) struct Contract {
    doctor: String,
    centre: String,
    hospitals: String,
    until: String,
}

pub(crate) struct Visit {
    id: Id,
    /// Still ahead and booked: the resident may cancel it.
    cancellable: bool,
    /// Completed and not rated yet: the resident may answer its survey.
    rate: bool,
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
    /// The public source of the range shown, if one is.
    source: Option<String>,
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
    contract: Option<Contract>,
    visits: Vec<Visit>,
    referrals: Vec<Referral>,
    timeline: Vec<Entry>,
    sources: Vec<String>,
    /// What was just done, said (empty when nothing was).
    saved: String,
    /// The section that says it: `visits` or `guardians`.
    saved_at: &'static str,
    /// The reasons a cancellation may give: (code, words).
    reasons: Vec<(String, String)>,
    /// The timeline's page (1 = newest), of `pages`; its entries in all.
    page: usize,
    pages: usize,
    entries: usize,
    /// The page's own path: `/me`, or a child's as the guardian sees it.
    base: String,
    /// A guardian looking at a child's record.
    proxy: bool,
    /// The signed-in resident's children (their own page only).
    children: Vec<children::Child>,
    /// The guardians whose sight of the record a 14-to-17-year-old decides.
    guardians: Vec<children::Guardian>,
    /// A contract request waiting since this day (empty: none).
    ask_waiting: String,
    /// What the resident may ask for now: `sign`, `renew` or nothing.
    ask_offer: &'static str,
    ask_note_chars: usize,
    /// The lines the resident waits in, offers first.
    lines: Vec<waitlist::Line>,
    /// On a child's page, `&child=ID`: the booking links act for the child.
    child_q: String,
}

/// The timeline page a query asks for (1 when none), or the styled refusal.
fn timeline_page(
    t: &'static Messages,
    user: &SignedIn,
    raw: Option<&str>,
) -> Result<usize, Box<Response>> {
    match raw.filter(|p| !p.is_empty()) {
        None => Ok(1),
        Some(p) => match p.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(Box::new(
                Refusal::bad(t.get("me_f_page"), t.get("me_bad_page")).page(
                    t,
                    Some(user.clone()),
                    ("/me", "me_title"),
                ),
            )),
        },
    }
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
    let page = match timeline_page(t, &user, q.page.as_deref()) {
        Ok(p) => p,
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
    let mut page = me_page(&state, t, user, &rec, on, page, q.saved.as_deref()).await?;
    page.children = children::children(&state, t, id, on).await?;
    page.guardians = children::guardians(&state, t, &rec.resident, on).await?;
    page.lines = waitlist::lines(&state, t, id).await?;
    match contract::offer(&state, &rec, on).await? {
        contract::Offer::Waiting(since) => page.ask_waiting = since,
        contract::Offer::Ask { renew } => page.ask_offer = if renew { "renew" } else { "sign" },
        contract::Offer::Nothing => {}
    }
    Ok(Html(page.render()?).into_response())
}

async fn me_page(
    state: &AppState,
    t: &'static Messages,
    user: SignedIn,
    rec: &ResidentRecord,
    on: NaiveDate,
    page: usize,
    saved: Option<&str>,
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
            tone: tone(&s.status),
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
            when: match i.status {
                DueStatus::Upcoming => t
                    .get("me_when_upcoming")
                    .replace("{from}", &i.earliest.to_string())
                    .replace("{due}", &i.due.to_string()),
                DueStatus::Due => t
                    .get("me_when_due")
                    .replace("{by}", &i.overdue_after.to_string()),
                DueStatus::Overdue => t
                    .get("me_when_overdue")
                    .replace("{due}", &i.due.to_string())
                    .replace("{days}", &(on - i.overdue_after).num_days().to_string()),
            },
        })
        .collect();
    let contract = match rec.contract_on(on) {
        Some(c) => {
            let doctor = match state
                .store
                .get(dhp_store::Table::Practitioners, c.doctor_id)
                .await
            {
                Ok(b) => b
                    .practitioners
                    .first()
                    .map(|p| p.name.clone())
                    .unwrap_or_default(),
                Err(dhp_store::StoreError::NotFound(_)) => String::new(),
                Err(e) => return Err(e.into()),
            };
            Some(Contract {
                doctor,
                centre: org(c.centre_org_id),
                hospitals: format!(
                    "{} · {}",
                    org(c.district_hospital_id),
                    org(c.city_hospital_id)
                ),
                until: c.end.to_string(),
            })
        }
        None => None,
    };
    // Appointments, newest first; those still ahead marked so.
    let now = crate::context::district_now(state).await?;
    let (views, _) = state
        .store
        .search_appointments(&AppointmentFilter {
            residents: vec![r.id],
            ..AppointmentFilter::all(on, 100)
        })
        .await?;
    let ratable = survey::open_for_rating(state, &views.iter().collect::<Vec<_>>()).await?;
    let mut visits: Vec<(NaiveDateTime, Visit)> = views
        .iter()
        .map(|v| {
            let service = booking::service_name(t, &v.slot.service);
            (
                v.slot.slot.start,
                Visit {
                    id: v.row.id,
                    cancellable: v.slot.slot.start > now
                        && v.row.status == dhp_core::booking::Status::Booked,
                    rate: ratable.contains(&v.row.id),
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
    let all = timeline(t, rec, &org);
    let entries = all.len();
    let pages = entries.div_ceil(TIMELINE_PAGE).max(1);
    // Past the last page: the last.
    let page = page.min(pages);
    let timeline: Vec<Entry> = all
        .into_iter()
        .skip((page - 1) * TIMELINE_PAGE)
        .take(TIMELINE_PAGE)
        .collect();
    let mut sources: Vec<String> = Vec::new();
    for s in timeline.iter().filter_map(|e| e.source.as_ref()) {
        if !sources.contains(s) {
            sources.push(s.clone());
        }
    }
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
        saved_at: match saved {
            Some("consented" | "withdrawn") => "guardians",
            Some("asked") => "doctor",
            _ => "visits",
        },
        saved: match saved {
            Some("booked") => t.get("me_saved_booked").to_string(),
            Some("cancelled") => t.get("me_saved_cancelled").to_string(),
            Some("surveyed") => t.get("sv_saved").to_string(),
            Some("moved") => t.get("me_saved_moved").to_string(),
            Some("taken") => t.get("wl_saved_taken").to_string(),
            Some("left") => t.get("wl_saved_left").to_string(),
            Some("asked") => t.get("ca_saved").to_string(),
            Some("consented") => t.get("kid_saved_consented").to_string(),
            Some("withdrawn") => t.get("kid_saved_withdrawn").to_string(),
            _ => String::new(),
        },
        reasons: booking::CANCEL_REASONS
            .iter()
            .map(|r| {
                (
                    (*r).to_string(),
                    t.get(&format!("me_reason_{}", r.replace('-', "_")))
                        .to_string(),
                )
            })
            .collect(),
        page,
        pages,
        entries,
        base: "/me".into(),
        proxy: false,
        children: Vec::new(),
        guardians: Vec::new(),
        ask_waiting: String::new(),
        ask_offer: "",
        ask_note_chars: contract::NOTE_CHARS,
        lines: Vec::new(),
        child_q: String::new(),
    })
}

/// The record as a timeline, newest first, each result with its reference range and
/// the range's public source.
fn timeline(t: &Messages, rec: &ResidentRecord, org: &dyn Fn(Id) -> String) -> Vec<Entry> {
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
        source: None,
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
    for o in &rec.observations {
        let code = observation(&o.code);
        let name = code
            .map(|c| if zh { &c.name_zh } else { &c.name_en }.clone())
            .unwrap_or_else(|| o.code.clone());
        let flag = code.and_then(|c| c.flag(o.value));
        // The source of every range shown, not only of those a value fell outside.
        let source = code.filter(|c| c.range_text().is_some()).and_then(|c| {
            if zh {
                &c.ref_source_zh
            } else {
                &c.ref_source_en
            }
            .clone()
        });
        out.push((
            o.effective,
            Entry {
                date: o.effective.format("%Y-%m-%d %H:%M").to_string(),
                kind: t.get("me_result").to_string(),
                what: name,
                value: code.map_or_else(
                    || format!("{} {}", o.value, o.unit),
                    |c| c.shown_value(o.value, zh),
                ),
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
                source,
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
    out.into_iter().map(|(_, e)| e).collect()
}

pub(crate) struct Look {
    when: String,
    who: String,
    role: String,
    place: String,
    what: String,
    allowed: bool,
    outcome: String,
    /// Under an emergency grant (break the glass).
    emergency: bool,
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
    /// Only what others did (the resident's own acts left out).
    others: bool,
}

/// Lines a page of "who looked at my record" shows.
const ACCESS_PAGE: usize = 50;

/// Entries read for one page: one request may leave many (an `$everything` one per
/// record it released), shown as one line.
const ACCESS_ROWS: i64 = 2_000;

/// `GET /me/access`: who looked at my record — every entry of the audit log about
/// it (reads, searches, writes, refusals, sign-ins to my account), newest first,
/// paged; the entries one act left together (same account, act, outcome, minute) on
/// one line with their number.
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
    let others = q.others.as_deref() == Some("1");
    let first = before.is_none();
    let entries = state
        .store
        .audit_page(&AuditQuery {
            resident: Some(id),
            not_username: others.then(|| who.username.clone()),
            before,
            limit: ACCESS_ROWS + 1,
            ..Default::default()
        })
        .await?;
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
    // Runs of entries one act left, newest first: (first entry, how many).
    let key = |e: &dhp_store::AuditEvent| {
        (
            e.username.clone(),
            e.action.clone(),
            e.outcome.clone(),
            e.org_id,
            e.detail == dhp_core::access::EMERGENCY_ACCESS,
            e.recorded.format("%Y%m%d%H%M").to_string(),
        )
    };
    let mut runs: Vec<(&dhp_store::AuditEvent, usize)> = Vec::new();
    let mut last_taken: Option<&dhp_store::AuditEvent> = None;
    let complete = entries.len() as i64 <= ACCESS_ROWS;
    let mut more = false;
    for e in entries.iter().take(ACCESS_ROWS as usize) {
        let full = runs.len() == ACCESS_PAGE;
        match runs.last_mut() {
            Some((head, n)) if key(head) == key(e) => *n += 1,
            _ if full => {
                more = true;
                break;
            }
            _ => runs.push((e, 1)),
        }
        last_taken = Some(e);
    }
    if !complete {
        more = true;
    }
    let mut looks = Vec::with_capacity(runs.len());
    for (e, n) in runs {
        let unverified = e.action == "login" && e.outcome != "success";
        let who_name = if unverified {
            // A failed sign-in names the account tried, not who tried it.
            t.get("me_someone").to_string()
        } else if e.username == who.username {
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
        let mut what = entry_label(t, e);
        if n > 1 {
            what.push_str(&t.get("me_entries").replace("{n}", &n.to_string()));
        }
        looks.push(Look {
            // Kept in UTC; shown in the district's time.
            when: (e.recorded + Duration::hours(dhp_core::clock::UTC_OFFSET_HOURS))
                .format("%Y-%m-%d %H:%M")
                .to_string(),
            who: who_name,
            role: if unverified || e.role.is_empty() {
                String::new()
            } else {
                t.role(&e.role).to_string()
            },
            place: e
                .org_id
                .and_then(|o| orgs.get(&o))
                .map(|o| if zh { &o.name_zh } else { &o.name_en }.clone())
                .unwrap_or_default(),
            what,
            allowed,
            outcome: t
                .get(if allowed { "me_allowed" } else { "me_refused" })
                .to_string(),
            emergency: e.detail == dhp_core::access::EMERGENCY_ACCESS,
        });
    }
    let next = match (more, last_taken) {
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
        others,
    };
    Ok(Html(page.render()?).into_response())
}

/// What an audit entry records, as a resident reads it: a sign-in to their account
/// (or a failed one, or the lock after failures), a password change, else the act
/// on their record.
fn entry_label(t: &Messages, e: &dhp_store::AuditEvent) -> String {
    let key = match (e.action.as_str(), e.outcome.as_str()) {
        // The check of the current password before a change.
        ("login", _) if e.detail.starts_with("password change") => "me_act_password_check",
        ("login", "success") => "me_act_login",
        ("login", "locked") => "me_act_login_locked",
        ("login", _) => "me_act_login_failed",
        ("password", _) => "me_act_password",
        (action, _) => return action_label(t, action),
    };
    t.get(key).to_string()
}

/// An audit action as a resident reads it (`read` → 查看).
fn action_label(t: &Messages, action: &str) -> String {
    let key = format!("me_act_{}", action.replace('-', "_"));
    match t.get(&key) {
        k if k == key => t.get("me_act_other").to_string(),
        v => v.to_string(),
    }
}
