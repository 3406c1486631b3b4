//! The pages of tiered care: `/care` (a clinician's referral inbox and today's booked
//! patients; a family doctor's referrals sent and those back from hospital),
//! `/care/referrals/{id}` (one referral with its steps and the steps its reader may
//! take), `/care/patients/{id}` (a patient's shared record — conditions, results from
//! every institution, immunizations, the 1+1+1 contract — with the test order and its
//! recognition check, and the referral form: up with a reserved slot for a family
//! doctor, down with the discharge summary for a clinician).

use super::*;

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use dhp_core::codes::{condition_name, immunization_schedule, observation, observation_codes};
use dhp_core::referral::{next, TaskStatus};
use dhp_core::Organisation;
use dhp_store::{ReferralFilter, SlotQuery};

use crate::context::{principal_of, LangQuery};
use crate::i18n::Messages;
use crate::security::session::SignedIn;

/// A signed-in family doctor or clinician, or the page that says why not.
fn staff(
    state: &AppState,
    headers: &HeaderMap,
    t: &'static Messages,
    path: &str,
) -> Result<(SignedIn, Principal, Id), Box<Response>> {
    let user = crate::context::session_or_login(state, headers, t, path)?;
    match principal_of(&user) {
        Some(p) => match carer(&p) {
            Some(org) => Ok((user, p, org)),
            None => Err(Box::new(
                Refusal::bare(StatusCode::FORBIDDEN, t.get("care_staff_only")).page(
                    t,
                    Some(user),
                    ("/", "back_home"),
                ),
            )),
        },
        None => Err(Box::new(
            Redirect::to(&format!("/login?lang={}", t.get("lang"))).into_response(),
        )),
    }
}

/// A refusal as the page's reader reads it: the field's label and, in Chinese, the
/// field's message (the rule's English wording stays on English pages).
fn said(t: &Messages, r: &Refusal) -> String {
    let field = r.field.as_deref().unwrap_or("");
    let label = t.get(&format!("care_f_{field}")).to_string();
    let zh = t.get("lang") == "zh";
    let message = if zh && r.status == StatusCode::NOT_FOUND {
        t.get("care_not_found").to_string()
    } else if zh {
        let key = format!("care_bad_{field}");
        match t.get(&key) {
            k if k == key => t.get("care_bad").to_string(),
            m => m.to_string(),
        }
    } else {
        r.message.clone()
    };
    if field.is_empty() || label.starts_with("care_f_") {
        message
    } else {
        format!("{label}{}{message}", t.get("care_colon"))
    }
}

/// A refusal shown as a page in the reader's words, with the way back to `/care`.
fn shown_page(t: &'static Messages, user: SignedIn, r: &Refusal) -> Response {
    Refusal::bare(r.status, said(t, r)).page(t, Some(user), ("/care", "care_title"))
}

fn name_of(orgs: &HashMap<Id, Organisation>, id: Id, zh: bool) -> String {
    orgs.get(&id)
        .map(|o| {
            if zh {
                o.name_zh.clone()
            } else {
                o.name_en.clone()
            }
        })
        .unwrap_or_else(|| id.to_string())
}

pub(crate) struct RefRow {
    pub(crate) id: Id,
    pub(crate) created: String,
    pub(crate) resident_id: Id,
    pub(crate) resident: String,
    pub(crate) direction: String,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) reason: String,
    pub(crate) priority: &'static str,
    pub(crate) priority_label: String,
    pub(crate) status: &'static str,
    pub(crate) status_label: String,
    pub(crate) follow_up: String,
}

async fn ref_row(
    state: &AppState,
    t: &Messages,
    orgs: &HashMap<Id, Organisation>,
    r: &ReferralRow,
) -> Result<RefRow, AppError> {
    let zh = t.get("lang") == "zh";
    let resident = match state.store.resident(r.resident_id).await {
        Ok(p) => p.name,
        Err(StoreError::NotFound(_)) => r.resident_id.to_string(),
        Err(e) => return Err(e.into()),
    };
    Ok(RefRow {
        id: r.id,
        created: r.created.format("%Y-%m-%d %H:%M").to_string(),
        resident_id: r.resident_id,
        resident,
        direction: t.get(&format!("care_dir_{}", r.direction.as_str())).into(),
        from: name_of(orgs, r.from_org, zh),
        to: name_of(orgs, r.to_org, zh),
        reason: r.reason.clone(),
        priority: r.priority.as_str(),
        priority_label: t.get(&format!("care_pri_{}", r.priority.as_str())).into(),
        status: r.status.as_str(),
        status_label: status_label(t, r.status),
        follow_up: r.follow_up.map(|d| d.to_string()).unwrap_or_default(),
    })
}

fn status_label(t: &Messages, s: TaskStatus) -> String {
    t.get(&format!("care_st_{}", s.as_str().replace('-', "_")))
        .to_string()
}

pub(crate) struct Tab {
    pub(crate) label: String,
    pub(crate) href: String,
    pub(crate) on: bool,
}

pub(crate) struct TodayRow {
    pub(crate) time: String,
    pub(crate) service: String,
    pub(crate) resident_id: Id,
    pub(crate) resident: String,
    pub(crate) status: String,
}

#[derive(Template)]
#[template(path = "care/care.html")]
pub(crate) struct InboxPage {
    pub(crate) t: &'static Messages,
    pub(crate) user: Option<SignedIn>,
    pub(crate) lang: String,
    pub(crate) org: String,
    pub(crate) date: String,
    pub(crate) tabs: Vec<Tab>,
    pub(crate) received: bool,
    pub(crate) rows: Vec<RefRow>,
    pub(crate) total: i64,
    pub(crate) page: i64,
    pub(crate) pages: i64,
    pub(crate) prev: String,
    pub(crate) next: String,
    pub(crate) today: Vec<TodayRow>,
    pub(crate) clinician: bool,
    /// The day list is the clinician's own clinic (not the whole hospital's).
    pub(crate) mine_only: bool,
}

#[derive(Debug, Deserialize, Default)]
pub struct InboxQuery {
    #[serde(default, deserialize_with = "crate::i18n::page_lang")]
    pub(crate) lang: Option<String>,
    #[serde(rename = "box")]
    pub(crate) box_: Option<String>,
    pub(crate) page: Option<String>,
    pub(crate) all: Option<String>,
}

pub async fn inbox(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<InboxQuery>,
) -> Result<Response, AppError> {
    let t = crate::i18n::messages(q.lang.as_deref().unwrap_or("zh"));
    let (user, who, org) = match staff(&state, &headers, t, "/care") {
        Ok(x) => x,
        Err(r) => return Ok(*r),
    };
    let lang = t.get("lang").to_string();
    let zh = lang == "zh";
    let clinician = who.role == Role::HospitalClinician;
    // A clinician starts on what was sent to the hospital; a family doctor on what the
    // centre sent.
    let received = match q.box_.as_deref() {
        Some("inbox") => true,
        Some("sent") => false,
        _ => clinician,
    };
    let open_only = q.all.as_deref() != Some("1");
    let page = q
        .page
        .as_deref()
        .and_then(|p| p.parse::<i64>().ok())
        .filter(|p| (1..=100_000).contains(p))
        .unwrap_or(1);
    let (rows, total) = state
        .store
        .referrals(
            &ReferralFilter {
                org,
                received,
                direction: None,
                open_only,
            },
            api::PAGE_SIZE,
            (page - 1) * api::PAGE_SIZE,
        )
        .await?;
    let orgs = state.orgs().await?;
    let mut shown = Vec::new();
    for r in &rows {
        note(
            &state,
            &who,
            "read",
            &format!("ServiceRequest/{}", r.id),
            Some(r.resident_id),
            "success",
            "referral list",
        )
        .await?;
        shown.push(ref_row(&state, t, orgs, r).await?);
    }
    let today_day = crate::context::as_of(&state).await?;
    let mut today = Vec::new();
    let mut mine_only = false;
    if clinician {
        let day = state.store.appointments_at(org, today_day).await?;
        // The clinician's own clinic when a schedule names them, else the hospital's.
        let mine = who
            .practitioner_id
            .filter(|p| day.iter().any(|a| a.practitioner_id == Some(*p)));
        mine_only = mine.is_some();
        for a in day
            .into_iter()
            .filter(|a| mine.is_none() || a.practitioner_id == mine)
        {
            note(
                &state,
                &who,
                "read",
                &format!("Appointment/{}", a.appointment.id),
                Some(a.appointment.resident_id),
                "success",
                "clinic day list",
            )
            .await?;
            today.push(TodayRow {
                time: a.start.format("%H:%M").to_string(),
                service: t.get(&format!("svc_{}", a.service)).to_string(),
                resident_id: a.appointment.resident_id,
                resident: state
                    .store
                    .resident(a.appointment.resident_id)
                    .await
                    .map(|r| r.name)
                    .unwrap_or_default(),
                status: t
                    .get(&format!(
                        "appt_{}",
                        a.appointment.status.as_str().replace('-', "_")
                    ))
                    .to_string(),
            });
        }
    }
    let pages = ((total + api::PAGE_SIZE - 1) / api::PAGE_SIZE).max(1);
    let link = |received: bool, page: i64, all: bool| {
        format!(
            "/care?lang={lang}&box={}&page={page}{}",
            if received { "inbox" } else { "sent" },
            if all { "&all=1" } else { "" }
        )
    };
    let tabs = vec![
        Tab {
            label: t.get("care_inbox").into(),
            href: link(true, 1, false),
            on: received && open_only,
        },
        Tab {
            label: t.get("care_sent").into(),
            href: link(false, 1, false),
            on: !received && open_only,
        },
        Tab {
            label: t.get("care_all_inbox").into(),
            href: link(true, 1, true),
            on: received && !open_only,
        },
        Tab {
            label: t.get("care_all_sent").into(),
            href: link(false, 1, true),
            on: !received && !open_only,
        },
    ];
    let page_view = InboxPage {
        t,
        user: Some(user),
        lang: lang.clone(),
        org: name_of(orgs, org, zh),
        date: today_day.to_string(),
        tabs,
        received,
        rows: shown,
        total,
        page,
        pages,
        prev: if page > 1 {
            link(received, page - 1, !open_only)
        } else {
            String::new()
        },
        next: if page < pages {
            link(received, page + 1, !open_only)
        } else {
            String::new()
        },
        today,
        clinician,
        mine_only,
    };
    Ok(Html(page_view.render()?).into_response())
}

pub(crate) struct StepView {
    pub(crate) status: String,
    pub(crate) at: String,
    pub(crate) by: String,
    pub(crate) reason: String,
}

pub(crate) struct ActView {
    pub(crate) act: &'static str,
    pub(crate) label: String,
    pub(crate) needs_reason: bool,
}

#[derive(Template)]
#[template(path = "care/referral.html")]
pub(crate) struct ReferralPage {
    pub(crate) t: &'static Messages,
    pub(crate) user: Option<SignedIn>,
    pub(crate) lang: String,
    pub(crate) r: RefRow,
    pub(crate) diagnosis: String,
    pub(crate) summary: String,
    pub(crate) appointment: String,
    pub(crate) steps: Vec<StepView>,
    pub(crate) acts: Vec<ActView>,
    pub(crate) error: String,
    pub(crate) saved: bool,
}

#[derive(Debug, Deserialize, Default)]
pub struct SavedQuery {
    #[serde(default, deserialize_with = "crate::i18n::page_lang")]
    pub(crate) lang: Option<String>,
    pub(crate) saved: Option<String>,
    pub(crate) code: Option<String>,
    /// The workbench flag a referral is made for (`emergency`, `uncontrolled`): the
    /// form opens with its reason and priority.
    pub(crate) flag: Option<String>,
}

#[allow(clippy::too_many_arguments)]
async fn referral_page(
    state: &AppState,
    user: SignedIn,
    who: &Principal,
    org: Id,
    t: &'static Messages,
    id: Id,
    error: String,
    saved: bool,
) -> Result<Response, AppError> {
    let (row, steps) = match api::visible(state, who, id).await? {
        Ok(x) => x,
        Err(r) => return Ok(shown_page(t, user, &r)),
    };
    let orgs = state.orgs().await?;
    let zh = t.get("lang") == "zh";
    let appointment = match row.appointment_id {
        None => String::new(),
        Some(a) => {
            let held = state
                .store
                .appointments_of(row.resident_id)
                .await?
                .into_iter()
                .find(|x| x.id == a);
            match held {
                Some(x) => {
                    let s = state.store.slot_state(x.slot_id).await?;
                    format!(
                        "{} · {} · {} · {}",
                        name_of(orgs, s.org_id, zh),
                        t.get(&format!("svc_{}", s.service)),
                        s.slot.start.format("%Y-%m-%d %H:%M"),
                        t.get(&format!("appt_{}", x.status.as_str().replace('-', "_")))
                    )
                }
                None => String::new(),
            }
        }
    };
    let side_of = |act: Act| match act.side() {
        Side::Sender => row.from_org,
        Side::Receiver => row.to_org,
    };
    let acts = Act::ALL
        .into_iter()
        .filter(|a| side_of(*a) == org && next(row.status, *a).is_ok())
        .map(|a| ActView {
            act: a.as_str(),
            label: t.get(&format!("care_act_{}", a.as_str())).into(),
            needs_reason: a.needs_reason(),
        })
        .collect();
    let page = ReferralPage {
        t,
        user: Some(user),
        lang: t.get("lang").into(),
        diagnosis: row
            .diagnosis
            .as_deref()
            .map(|d| format!("{} ({d})", condition_name(d, zh)))
            .unwrap_or_default(),
        summary: row.summary.clone().unwrap_or_default(),
        appointment,
        steps: steps
            .iter()
            .map(|s| StepView {
                status: status_label(t, s.status),
                at: s.at.format("%Y-%m-%d %H:%M").to_string(),
                by: s.by_user.clone(),
                reason: s.reason.clone().unwrap_or_default(),
            })
            .collect(),
        acts,
        error,
        saved,
        r: ref_row(state, t, orgs, &row).await?,
    };
    Ok(Html(page.render()?).into_response())
}

fn path_id(raw: &str) -> Result<Id, Refusal> {
    raw.parse::<Id>()
        .map_err(|_| Refusal::bad("id", format!("{raw:?} is not an id")))
}

pub async fn referral(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(q): Query<SavedQuery>,
) -> Result<Response, AppError> {
    let t = crate::i18n::messages(q.lang.as_deref().unwrap_or("zh"));
    let (user, who, org) = match staff(&state, &headers, t, &format!("/care/referrals/{raw}")) {
        Ok(x) => x,
        Err(r) => return Ok(*r),
    };
    let id = match path_id(&raw) {
        Ok(id) => id,
        Err(r) => return Ok(shown_page(t, user, &r)),
    };
    referral_page(
        &state,
        user,
        &who,
        org,
        t,
        id,
        String::new(),
        q.saved.is_some(),
    )
    .await
}

#[derive(Debug, Deserialize, Default)]
pub struct StepForm {
    #[serde(default)]
    pub act: String,
    #[serde(default)]
    pub reason: Option<String>,
}

pub async fn step_form(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(q): Query<LangQuery>,
    Form(form): Form<StepForm>,
) -> Result<Response, AppError> {
    let t = q.messages();
    let (user, who, org) = match staff(&state, &headers, t, "/care") {
        Ok(x) => x,
        Err(r) => return Ok(*r),
    };
    let id = match path_id(&raw) {
        Ok(id) => id,
        Err(r) => return Ok(shown_page(t, user, &r)),
    };
    let reason = form
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    match step(&state, &who, id, &form.act, reason).await? {
        Ok(_) => Ok(Redirect::to(&format!(
            "/care/referrals/{id}?lang={}&saved=1",
            t.get("lang")
        ))
        .into_response()),
        Err(r) => {
            let status = r.status;
            let page = referral_page(&state, user, &who, org, t, id, said(t, &r), false).await?;
            Ok((status, page).into_response())
        }
    }
}

pub(crate) struct ConditionView {
    pub(crate) name: String,
    pub(crate) code: String,
    pub(crate) onset: String,
    pub(crate) org: String,
}

pub(crate) struct ResultView {
    pub(crate) name: String,
    pub(crate) value: String,
    pub(crate) unit: String,
    pub(crate) date: String,
    pub(crate) org: String,
    /// An imaging study: `value` is the modality, `findings` the report's words.
    pub(crate) imaging: bool,
    pub(crate) findings: String,
    /// Recognised (HR): a recognised item standing today.
    pub(crate) recognised: bool,
}

pub(crate) struct StandingView {
    pub(crate) id: Id,
    pub(crate) code: String,
    pub(crate) name: String,
    /// The value and unit, or the modality and the findings.
    pub(crate) finding: String,
    pub(crate) date: String,
    pub(crate) org: String,
    pub(crate) window: u32,
}

pub(crate) struct Choice {
    pub(crate) value: String,
    pub(crate) label: String,
}

#[derive(Template)]
#[template(path = "care/patient.html")]
pub(crate) struct PatientPage {
    pub(crate) t: &'static Messages,
    pub(crate) user: Option<SignedIn>,
    pub(crate) lang: String,
    pub(crate) id: Id,
    pub(crate) name: String,
    pub(crate) facts: String,
    pub(crate) contract: String,
    pub(crate) conditions: Vec<ConditionView>,
    pub(crate) results: Vec<ResultView>,
    pub(crate) immunizations: Vec<(String, i32, String, String)>,
    pub(crate) referrals: Vec<RefRow>,
    pub(crate) orders: Vec<(String, String, String, String)>,
    pub(crate) tests: Vec<Choice>,
    pub(crate) imaging_tests: Vec<Choice>,
    pub(crate) exceptions: Vec<Choice>,
    pub(crate) standing: Option<StandingView>,
    pub(crate) order_code: String,
    pub(crate) error: String,
    pub(crate) message: String,
    pub(crate) clinician: bool,
    pub(crate) targets: Vec<Choice>,
    pub(crate) slots: Vec<Choice>,
    pub(crate) diagnoses: Vec<Choice>,
    pub(crate) follow_up: String,
    pub(crate) refer_reason: String,
    pub(crate) refer_priority: &'static str,
}

/// What the patient page shows beside the record: a message, an error, the standing
/// result an order met.
#[derive(Default)]
struct Shown {
    message: String,
    error: String,
    standing: Option<PriorResult>,
    order_code: String,
    refer_reason: String,
    refer_priority: &'static str,
}

async fn patient_page(
    state: &AppState,
    user: SignedIn,
    who: &Principal,
    t: &'static Messages,
    id: Id,
    shown: Shown,
) -> Result<Response, AppError> {
    let now = district_now(state).await?;
    let on = now.date();
    let rec = match readable(state, who, id, on, "read", Reading::Full).await? {
        Readable::Record(rec) => rec,
        Readable::NotFound => {
            return Ok(
                Refusal::bare(StatusCode::NOT_FOUND, t.get("care_no_patient")).page(
                    t,
                    Some(user),
                    ("/care", "care_title"),
                ),
            )
        }
        Readable::Denied => {
            return Ok(
                Refusal::bare(StatusCode::FORBIDDEN, t.get("care_out_of_scope")).page(
                    t,
                    Some(user),
                    ("/care", "care_title"),
                ),
            )
        }
    };
    let orgs = state.orgs().await?;
    let zh = t.get("lang") == "zh";
    let r = &rec.resident;
    let encounter_org: HashMap<Id, Id> = rec.encounters.iter().map(|e| (e.id, e.org_id)).collect();
    let clinician = who.role == Role::HospitalClinician;
    let contract = rec
        .contracts
        .iter()
        .filter(|c| c.start <= on && c.end >= on && c.status != dhp_core::ContractStatus::Ended)
        .max_by_key(|c| c.start)
        .map(|c| {
            format!(
                "{} · {} · {} · {} {}",
                name_of(orgs, c.centre_org_id, zh),
                name_of(orgs, c.district_hospital_id, zh),
                name_of(orgs, c.city_hospital_id, zh),
                t.get("care_until"),
                c.end
            )
        })
        .unwrap_or_else(|| t.get("care_no_contract").to_string());
    // Results: laboratory observations and imaging studies, newest first, each marked
    // HR where it stands.
    let studies = state.store.imaging_of(id).await?;
    let mut labs: Vec<_> = rec
        .observations
        .iter()
        .filter(|o| observation(&o.code).is_some_and(|c| c.category == "laboratory"))
        .collect();
    labs.sort_by(|a, b| b.effective.cmp(&a.effective).then(b.id.cmp(&a.id)));
    let mut standing_ids = Vec::new();
    for code in labs
        .iter()
        .map(|o| o.code.clone())
        .chain(studies.iter().map(|m| m.code.clone()))
        .collect::<std::collections::BTreeSet<_>>()
    {
        let prior: Vec<_> = state
            .store
            .prior_results(id, &code)
            .await?
            .into_iter()
            .map(|p| p.prior)
            .collect();
        standing_ids.extend(
            table()
                .standing(&code, &prior, on)
                .map(|p| (p.code.clone(), p.result_id)),
        );
    }
    let item_name = |code: &str| {
        table().item(code).map_or(code.to_string(), |i| {
            if zh {
                i.name_zh.clone()
            } else {
                i.name_en.clone()
            }
        })
    };
    let imaging_rows = studies.iter().map(|m| {
        (
            m.started,
            ResultView {
                name: item_name(&m.code),
                value: t.modality(&m.modality).to_string(),
                unit: String::new(),
                date: m.started.format("%Y-%m-%d").to_string(),
                org: name_of(orgs, m.org_id, zh),
                imaging: true,
                findings: m.findings.clone(),
                recognised: standing_ids.contains(&(m.code.clone(), m.id)),
            },
        )
    });
    let lab_rows = labs.iter().map(|o| {
        let c = observation(&o.code);
        (
            o.effective,
            ResultView {
                name: c.map_or(o.code.clone(), |c| {
                    if zh {
                        c.name_zh.clone()
                    } else {
                        c.name_en.clone()
                    }
                }),
                value: format!("{}", (o.value * 100.0).round() / 100.0),
                unit: o.unit.clone(),
                date: o.effective.format("%Y-%m-%d").to_string(),
                org: o
                    .encounter_id
                    .and_then(|e| encounter_org.get(&e))
                    .map(|org| name_of(orgs, *org, zh))
                    .unwrap_or_default(),
                imaging: false,
                findings: String::new(),
                recognised: standing_ids.contains(&(o.code.clone(), o.id)),
            },
        )
    });
    let mut timeline: Vec<_> = lab_rows.chain(imaging_rows).collect();
    timeline.sort_by_key(|r| std::cmp::Reverse(r.0));
    let results = timeline.into_iter().take(60).map(|(_, r)| r).collect();
    let schedule = immunization_schedule();
    let mut immunizations: Vec<_> = rec
        .immunizations
        .iter()
        .map(|i| {
            (
                schedule.vaccine(&i.vaccine).map_or(i.vaccine.clone(), |v| {
                    if zh {
                        v.name_zh.clone()
                    } else {
                        v.name_en.clone()
                    }
                }),
                i.dose_number,
                i.date.to_string(),
                name_of(orgs, i.org_id, zh),
            )
        })
        .collect();
    immunizations.sort_by(|a, b| b.2.cmp(&a.2));
    let mut referrals = Vec::new();
    for row in state.store.referrals_of(id).await? {
        referrals.push(ref_row(state, t, orgs, &row).await?);
    }
    let test_name = |code: &str| match observation(code) {
        Some(c) if zh => c.name_zh.clone(),
        Some(c) => c.name_en.clone(),
        None => item_name(code),
    };
    let exception_name = |code: &str| {
        table().exception(code).map_or(code.to_string(), |e| {
            if zh {
                e.name_zh.clone()
            } else {
                e.name_en.clone()
            }
        })
    };
    let orders = state
        .store
        .orders_of(id)
        .await?
        .iter()
        .map(|o| {
            (
                test_name(&o.code),
                o.at.format("%Y-%m-%d %H:%M").to_string(),
                t.get(&format!("care_outcome_{}", o.outcome)).to_string(),
                o.exception
                    .as_deref()
                    .map(exception_name)
                    .unwrap_or_default(),
            )
        })
        .collect();
    let tests = observation_codes()
        .iter()
        .filter(|c| c.category == "laboratory")
        .map(|c| Choice {
            value: c.code.clone(),
            label: if zh {
                c.name_zh.clone()
            } else {
                c.name_en.clone()
            },
        })
        .collect();
    let imaging_tests = table()
        .items
        .iter()
        .filter(|i| i.category == "imaging")
        .map(|i| Choice {
            value: i.code.clone(),
            label: item_name(&i.code),
        })
        .collect();
    let exceptions = table()
        .exceptions
        .iter()
        .map(|e| Choice {
            value: e.code.clone(),
            label: if zh {
                e.name_zh.clone()
            } else {
                e.name_en.clone()
            },
        })
        .collect();
    let standing = shown.standing.as_ref().map(|p| StandingView {
        id: p.prior.result_id,
        code: p.prior.code.clone(),
        name: test_name(&p.prior.code),
        finding: match &p.finding {
            dhp_store::Finding::Study { modality, findings } if !findings.is_empty() => {
                format!("{} · {findings}", t.modality(modality))
            }
            dhp_store::Finding::Study { modality, .. } => t.modality(modality).to_string(),
            value => value.text(),
        },
        date: p.prior.effective.format("%Y-%m-%d").to_string(),
        org: name_of(orgs, p.prior.org_id, zh),
        window: table()
            .item(&p.prior.code)
            .map_or(table().default_window_days, |i| table().window(i)),
    });
    // Where this reader may refer to: a clinician down to the community centres (the
    // patient's contracted centre first), a family doctor up to the hospitals.
    let me = who.org_id.and_then(|o| orgs.get(&o));
    let direction = if clinician {
        Direction::Down
    } else {
        Direction::Up
    };
    let contracted: Vec<Id> = rec
        .contracts
        .iter()
        .filter(|c| c.end >= on)
        .map(|c| c.centre_org_id)
        .collect();
    let mut targets: Vec<&Organisation> = orgs
        .values()
        .filter(|o| receives(o.kind, direction))
        .filter(|o| me.is_none_or(|m| m.district_code == o.district_code))
        .collect();
    targets.sort_by_key(|o| (!contracted.contains(&o.id), o.code.clone()));
    let targets = targets
        .iter()
        .map(|o| Choice {
            value: o.code.clone(),
            label: if zh {
                o.name_zh.clone()
            } else {
                o.name_en.clone()
            },
        })
        .collect();
    let mut slots = Vec::new();
    if !clinician {
        let start = now;
        let found = state
            .store
            .find_slots(&SlotQuery {
                org_id: None,
                service: None,
                practitioner_id: None,
                from: start,
                to: start + chrono::Duration::days(14),
                channel: Channel::Referral,
                now,
                limit: 400,
            })
            .await?;
        // The earliest reserved slot of each hospital service.
        let mut seen = std::collections::HashSet::new();
        for s in found {
            let hospital = orgs
                .get(&s.org_id)
                .is_some_and(|o| o.kind == OrgKind::Hospital);
            if hospital && seen.insert((s.org_id, s.service.clone())) {
                slots.push(Choice {
                    value: s.slot.id.to_string(),
                    label: format!(
                        "{} · {} · {}",
                        name_of(orgs, s.org_id, zh),
                        t.get(&format!("svc_{}", s.service)),
                        s.slot.start.format("%m-%d %H:%M")
                    ),
                });
            }
        }
    }
    let diagnoses = rec
        .conditions
        .iter()
        .map(|c| Choice {
            value: c.icd10.clone(),
            label: format!("{} ({})", condition_name(&c.icd10, zh), c.icd10),
        })
        .collect();
    let mut conditions: Vec<_> = rec
        .conditions
        .iter()
        .map(|c| ConditionView {
            name: condition_name(&c.icd10, zh),
            code: c.icd10.clone(),
            onset: c.onset.to_string(),
            org: name_of(orgs, c.org_id, zh),
        })
        .collect();
    conditions.sort_by(|a, b| b.onset.cmp(&a.onset));
    let sex = t.get(if r.sex == dhp_core::Sex::Female {
        "female"
    } else {
        "male"
    });
    let page = PatientPage {
        t,
        user: Some(user),
        lang: t.get("lang").into(),
        id,
        name: r.name.clone(),
        facts: format!(
            "{sex} · {} {} · {}",
            r.age_on(on),
            t.get("years_old"),
            r.identity_number.masked()
        ),
        contract,
        conditions,
        results,
        immunizations,
        referrals,
        orders,
        tests,
        imaging_tests,
        exceptions,
        standing,
        order_code: shown.order_code,
        refer_reason: shown.refer_reason,
        refer_priority: shown.refer_priority,
        error: shown.error,
        message: shown.message,
        clinician,
        targets,
        slots,
        diagnoses,
        follow_up: (on + chrono::Duration::days(14)).to_string(),
    };
    Ok(Html(page.render()?).into_response())
}

pub async fn patient(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(q): Query<SavedQuery>,
) -> Result<Response, AppError> {
    let t = crate::i18n::messages(q.lang.as_deref().unwrap_or("zh"));
    let (user, who, _) = match staff(&state, &headers, t, &format!("/care/patients/{raw}")) {
        Ok(x) => x,
        Err(r) => return Ok(*r),
    };
    let id = match path_id(&raw) {
        Ok(id) => id,
        Err(r) => return Ok(shown_page(t, user, &r)),
    };
    let message = match q.saved.as_deref() {
        Some(k @ ("ordered" | "recognised" | "referred")) => {
            t.get(&format!("care_done_{k}")).to_string()
        }
        _ => String::new(),
    };
    // From a workbench flag: the referral form opens with its reason and priority
    // (domain-rules §4: an emergency reading refers at once, two uncontrolled
    // follow-ups refer up).
    let (refer_reason, refer_priority) = match q.flag.as_deref() {
        Some("emergency") => (t.get("care_flag_emergency").to_string(), "stat"),
        Some("uncontrolled") => (t.get("care_flag_uncontrolled").to_string(), "routine"),
        _ => (String::new(), "routine"),
    };
    let shown = Shown {
        message,
        order_code: q.code.unwrap_or_default(),
        refer_reason,
        refer_priority,
        ..Shown::default()
    };
    patient_page(&state, user, &who, t, id, shown).await
}

pub async fn order_form(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(q): Query<LangQuery>,
    Form(mut form): Form<OrderRequest>,
) -> Result<Response, AppError> {
    let t = q.messages();
    let (user, who, _) = match staff(&state, &headers, t, "/care") {
        Ok(x) => x,
        Err(r) => return Ok(*r),
    };
    let id = match path_id(&raw) {
        Ok(id) => id,
        Err(r) => return Ok(shown_page(t, user, &r)),
    };
    form.resident_id = Some(id);
    let lang = t.get("lang");
    match order(&state, &who, &form).await? {
        Ok(OrderOutcome::Ordered(_)) => Ok(Redirect::to(&format!(
            "/care/patients/{id}?lang={lang}&saved=ordered"
        ))
        .into_response()),
        Ok(OrderOutcome::Recognised(_)) => Ok(Redirect::to(&format!(
            "/care/patients/{id}?lang={lang}&saved=recognised"
        ))
        .into_response()),
        Ok(OrderOutcome::Standing(p)) => {
            let shown = Shown {
                order_code: form.code.clone(),
                standing: Some(*p),
                ..Shown::default()
            };
            patient_page(&state, user, &who, t, id, shown).await
        }
        Err(r) => {
            let status = r.status;
            // A refused repeat shows the standing result again, with the reason asked.
            let standing = match blank(&form.standing).and_then(|s| s.parse::<Id>().ok()) {
                Some(sid) => state
                    .store
                    .prior_results(id, form.code.trim())
                    .await?
                    .into_iter()
                    .find(|p| p.prior.result_id == sid),
                None => None,
            };
            let shown = Shown {
                error: said(t, &r),
                order_code: form.code.clone(),
                standing,
                ..Shown::default()
            };
            let page = patient_page(&state, user, &who, t, id, shown).await?;
            Ok((status, page).into_response())
        }
    }
}

pub async fn refer_form(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(q): Query<LangQuery>,
    Form(mut form): Form<ReferRequest>,
) -> Result<Response, AppError> {
    let t = q.messages();
    let (user, who, _) = match staff(&state, &headers, t, "/care") {
        Ok(x) => x,
        Err(r) => return Ok(*r),
    };
    let id = match path_id(&raw) {
        Ok(id) => id,
        Err(r) => return Ok(shown_page(t, user, &r)),
    };
    form.resident_id = Some(id);
    // With a slot chosen, the hospital is the slot's.
    if blank(&form.slot).is_some() && form.direction == "up" {
        form.performer = None;
    }
    match refer(&state, &who, &form).await? {
        Ok(rid) => Ok(Redirect::to(&format!(
            "/care/referrals/{rid}?lang={}&saved=1",
            t.get("lang")
        ))
        .into_response()),
        Err(r) => {
            let status = r.status;
            let shown = Shown {
                error: said(t, &r),
                ..Shown::default()
            };
            let page = patient_page(&state, user, &who, t, id, shown).await?;
            Ok((status, page).into_response())
        }
    }
}
