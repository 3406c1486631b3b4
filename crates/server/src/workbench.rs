//! The family doctor's workbench (家庭医生工作台): due lists over a cohort, the JSON API
//! `GET /api/workbench/due`, and recording a follow-up through the FHIR write path so
//! it lands versioned, projected and audited like any other write.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{Days, NaiveDate, NaiveDateTime};
use dhp_core::access::{Principal, Role};
use dhp_core::programmes::{assess, DueItem, DueStatus, ResidentRecord};
use dhp_core::{
    Encounter, EncounterType, Id, Observation, OrgKind, Organisation, Programme, Resident,
};
use dhp_store::{Cohort, Reading, Store, StoreError, User};
use serde::{Deserialize, Serialize};

use crate::audit::{self, Actor};
use crate::fhir::write::{Plan, Refusal};
use crate::{AppError, AppState};

/// Residents read and assessed per step.
const PAGE: i64 = 2_000;

/// Which items a due list keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DueQuery {
    /// Only this programme (all when `None`).
    pub programme: Option<Programme>,
    /// Also list upcoming items that may be done within this many days.
    pub within_days: Option<u32>,
}

impl DueQuery {
    fn keeps(&self, item: &DueItem, on: NaiveDate) -> bool {
        self.programme.is_none_or(|p| item.programme == p)
            && (item.status != DueStatus::Upcoming
                || self
                    .within_days
                    .is_some_and(|w| item.earliest <= on + Days::new(w.into())))
    }
}

/// One line of a due list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DueRow {
    pub resident_id: Id,
    pub resident_name: String,
    #[serde(flatten)]
    pub item: DueItem,
}

/// Assess a page of records on every core, in order.
pub fn assess_all(
    records: &[ResidentRecord],
    on: NaiveDate,
) -> Vec<dhp_core::programmes::Assessment> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = records.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = records
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(|r| assess(r, on)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("assessment does not panic"))
            .collect()
    })
}

/// Read `cohort` page by page (`page` residents at a time) and assess every resident
/// on `on`, reading the next page while this one is assessed; `visit` sees each record
/// with its assessment, in resident order.
pub async fn assess_cohort(
    store: &dyn Store,
    cohort: &Cohort,
    on: NaiveDate,
    page: i64,
    mut visit: impl FnMut(&ResidentRecord, dhp_core::programmes::Assessment),
) -> Result<(), StoreError> {
    let mut records = store
        .programme_records(cohort, Reading::Programmes, on, 0, page)
        .await?;
    while let Some(last) = records.last().map(|r| r.resident.id) {
        let more = records.len() as i64 >= page;
        let (next, assessed) = tokio::join!(
            async {
                if more {
                    store
                        .programme_records(cohort, Reading::Programmes, on, last, page)
                        .await
                } else {
                    Ok(Vec::new())
                }
            },
            async { assess_all(&records, on) }
        );
        for (rec, a) in records.iter().zip(assessed) {
            visit(rec, a);
        }
        records = next?;
    }
    Ok(())
}

/// The due list of `cohort` on `on`: overdue first, then by due date.
pub async fn due_list(
    store: &dyn Store,
    cohort: &Cohort,
    on: NaiveDate,
    query: &DueQuery,
) -> Result<Vec<DueRow>, StoreError> {
    let mut out = Vec::new();
    assess_cohort(store, cohort, on, PAGE, |rec, a| {
        out.extend(
            a.items
                .into_iter()
                .filter(|i| query.keeps(i, on))
                .map(|item| DueRow {
                    resident_id: rec.resident.id,
                    resident_name: rec.resident.name.clone(),
                    item,
                }),
        );
    })
    .await?;
    out.sort_by(|a, b| {
        a.item
            .sort_key()
            .cmp(&b.item.sort_key())
            .then(a.resident_id.cmp(&b.resident_id))
    });
    Ok(out)
}

/// The cohort of an organisation unit: a centre's residents, a street's or town's, or
/// the whole district. `Err` names why another kind of unit has no due list.
pub fn cohort_of(
    org: &Organisation,
    orgs: &std::collections::HashMap<Id, Organisation>,
) -> Result<Cohort, String> {
    match org.kind {
        OrgKind::CommunityHealthCentre => Ok(Cohort::Centre {
            centre: org.id,
            area: org
                .parent_id
                .filter(|p| orgs.get(p).is_some_and(|o| o.kind.is_area())),
        }),
        OrgKind::Street | OrgKind::Town => Ok(Cohort::Area(org.id)),
        OrgKind::District | OrgKind::Commission | OrgKind::City | OrgKind::PublicHealth => Ok(Cohort::All),
        other => Err(format!(
            "{} is a {}: due lists are for a community health centre, a street or town, or the district",
            org.code,
            other.as_str()
        )),
    }
}

/// The district's "today": the last day of its records (a generated district ends on a
/// fixed day), else the calendar's today.
pub async fn as_of(state: &AppState) -> Result<NaiveDate, StoreError> {
    dhp_store::as_of(&*state.store).await
}

/// What a read of one resident's record came to.
#[derive(Debug)]
pub(crate) enum Readable {
    Record(Box<ResidentRecord>),
    NotFound,
    Denied,
}

/// Resident `id`'s record (as much as `reading` asks) if `who` may read it on `on`;
/// the attempt is audited either way, as `action` on `Patient/{id}`.
pub(crate) async fn readable(
    state: &AppState,
    who: &Principal,
    id: Id,
    on: NaiveDate,
    action: &str,
    reading: Reading,
) -> Result<Readable, AppError> {
    let actor = Actor::from(who);
    let resource = format!("Patient/{id}");
    let facts = match state.store.resident_access_facts(id, on).await {
        Ok(f) => f,
        Err(StoreError::NotFound(_)) => {
            audit::record(
                &*state.store,
                &actor,
                action,
                &resource,
                None,
                "not-found",
                "workbench",
            )
            .await?;
            return Ok(Readable::NotFound);
        }
        Err(e) => return Err(e.into()),
    };
    let org = crate::fhir::org_facts(state, who).await?;
    if !dhp_core::access::may_read_resident(who, org.as_ref(), &facts).allowed() {
        audit::record(
            &*state.store,
            &actor,
            action,
            &resource,
            Some(id),
            "denied",
            "workbench",
        )
        .await?;
        return Ok(Readable::Denied);
    }
    audit::record(
        &*state.store,
        &actor,
        action,
        &resource,
        Some(id),
        "success",
        "workbench",
    )
    .await?;
    Ok(
        match state
            .store
            .programme_records(&Cohort::Resident(id), reading, on, id - 1, 1)
            .await?
            .pop()
        {
            Some(rec) => Readable::Record(Box::new(rec)),
            None => Readable::NotFound,
        },
    )
}

/// The principal of a portal session.
pub(crate) fn principal_of(user: &User) -> Option<Principal> {
    Some(Principal {
        username: user.username.clone(),
        role: Role::parse(&user.role)?,
        org_id: user.org_id,
        practitioner_id: user.practitioner_id,
        resident_id: user.resident_id,
    })
}

/// A client error of the JSON API: the field at fault and why.
fn bad(field: &str, why: impl std::fmt::Display) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({ "error": why.to_string(), "field": field })),
    )
        .into_response()
}

fn refused(status: StatusCode, why: &str) -> Response {
    (status, Json(serde_json::json!({ "error": why }))).into_response()
}

#[derive(Debug, Deserialize)]
pub struct DueParams {
    org: Option<String>,
    date: Option<String>,
    programme: Option<String>,
    within: Option<String>,
}

/// Parse the query of a due list; `Err` is the answer naming the field at fault.
pub(crate) fn parse_due_params(
    date: Option<&str>,
    programme: Option<&str>,
    within: Option<&str>,
    default_date: NaiveDate,
) -> Result<(NaiveDate, DueQuery), Box<Response>> {
    let on = match date.filter(|d| !d.is_empty()) {
        Some(d) => d
            .parse::<NaiveDate>()
            .map_err(|_| Box::new(bad("date", format!("date {d:?} must be YYYY-MM-DD"))))?,
        None => default_date,
    };
    let programme = match programme.filter(|p| !p.is_empty()) {
        Some(p) => Some(Programme::parse(p).ok_or_else(|| {
            Box::new(bad(
                "programme",
                format!(
                    "programme {p:?} is not one of {}",
                    Programme::ALL.map(|p| p.as_str()).join(", ")
                ),
            ))
        })?),
        None => None,
    };
    let within_days = match within.filter(|w| !w.is_empty()) {
        Some(w) => Some(w.parse::<u32>().ok().filter(|n| *n <= 366).ok_or_else(|| {
            Box::new(bad(
                "within",
                format!("within {w:?} must be a number of days from 0 to 366"),
            ))
        })?),
        None => None,
    };
    Ok((
        on,
        DueQuery {
            programme,
            within_days,
        },
    ))
}

/// Who may see the due list of `org`: integrating systems and district staff any unit
/// of their district; a family doctor only their own centre.
fn may_see(who: &Principal, org: &Organisation, own: Option<&Organisation>) -> bool {
    match who.role {
        Role::System => true,
        Role::Manager | Role::PublicHealthDoctor => {
            own.is_some_and(|o| o.district_code == org.district_code)
        }
        Role::FamilyDoctor => who.org_id == Some(org.id),
        _ => false,
    }
}

/// `GET /api/workbench/due?org=CODE&date=YYYY-MM-DD[&programme=P][&within=DAYS]`.
pub async fn api_due(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<DueParams>,
) -> Result<Response, AppError> {
    let who = match crate::token::principal(&state.token_key, &headers)
        .ok()
        .or_else(|| crate::pages::current_user(&state, &headers).and_then(|u| principal_of(&u)))
    {
        Some(p) => p,
        None => {
            audit::record(
                &*state.store,
                &Actor::unverified(""),
                "search",
                "/api/workbench/due",
                None,
                "unauthenticated",
                "no session or bearer token",
            )
            .await?;
            return Ok(refused(
                StatusCode::UNAUTHORIZED,
                "sign in or send a bearer token from POST /auth/token",
            ));
        }
    };
    let actor = Actor::from(&who);
    let default_date = as_of(&state).await?;
    let (on, query) = match parse_due_params(
        q.date.as_deref(),
        q.programme.as_deref(),
        q.within.as_deref(),
        default_date,
    ) {
        Ok(x) => x,
        Err(answer) => return Ok(*answer),
    };
    let orgs = state.orgs().await?;
    let own = who.org_id.and_then(|id| orgs.get(&id));
    let org = match q.org.as_deref().filter(|c| !c.is_empty()) {
        Some(code) => match orgs.values().find(|o| o.code == code) {
            Some(o) => o,
            None => return Ok(bad("org", format!("no organisation has code {code:?}"))),
        },
        None => match own {
            Some(o) => o,
            None => {
                return Ok(bad(
                    "org",
                    "org is required: the code of a centre, street, town or district",
                ))
            }
        },
    };
    let cohort = match cohort_of(org, orgs) {
        Ok(c) => c,
        Err(why) => return Ok(bad("org", why)),
    };
    if !may_see(&who, org, own) {
        audit::record(
            &*state.store,
            &actor,
            "search",
            "/api/workbench/due",
            None,
            "denied",
            &format!("org {}", org.code),
        )
        .await?;
        return Ok(refused(
            StatusCode::FORBIDDEN,
            &format!("{} may not see the due list of {}", who.username, org.code),
        ));
    }
    let rows = due_list(&*state.store, &cohort, on, &query).await?;
    audit_rows(
        &state,
        &actor,
        &rows,
        &format!("due list of {} on {on}", org.code),
    )
    .await?;
    Ok(Json(serde_json::json!({
        "org": org.code,
        "date": on,
        "count": rows.len(),
        "items": rows,
    }))
    .into_response())
}

/// One audit entry per resident whose items leave the server, before they leave.
pub(crate) async fn audit_rows(
    state: &AppState,
    actor: &Actor,
    rows: &[DueRow],
    detail: &str,
) -> Result<(), StoreError> {
    let mut ids: Vec<Id> = rows.iter().map(|r| r.resident_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let events: Vec<_> = ids
        .iter()
        .map(|id| {
            audit::entry(
                actor,
                "search",
                &format!("Patient/{id}/due"),
                Some(*id),
                "success",
                detail,
            )
        })
        .collect();
    if events.is_empty() {
        return Ok(());
    }
    state.store.insert_audits(&events).await
}

/// What a family doctor records at a follow-up (随访记录).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct FollowUpForm {
    pub programme: String,
    pub date: String,
    #[serde(default)]
    pub sbp: String,
    #[serde(default)]
    pub dbp: String,
    #[serde(default)]
    pub fasting_glucose: String,
    #[serde(default)]
    pub heart_rate: String,
    #[serde(default)]
    pub danger_symptoms: Option<String>,
    #[serde(default)]
    pub medication_adherence: String,
    #[serde(default)]
    pub referral: Option<String>,
    #[serde(default)]
    pub danger_level: String,
    #[serde(default)]
    pub self_care_score: String,
}

/// A checked follow-up: the programme, when, and each reading by observation key.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowUp {
    pub programme: Programme,
    pub start: NaiveDateTime,
    pub readings: Vec<(&'static str, f64)>,
}

impl FollowUpForm {
    /// Check every field; `Err` names the field at fault (nothing is written then).
    pub fn parse(&self, today: NaiveDate) -> Result<FollowUp, (String, String)> {
        let programme = Programme::parse(&self.programme)
            .filter(|p| *p != Programme::Immunization)
            .ok_or_else(|| {
                (
                    "programme".to_string(),
                    format!(
                        "programme {:?} is not a follow-up programme",
                        self.programme
                    ),
                )
            })?;
        let date: NaiveDate = self.date.trim().parse().map_err(|_| {
            (
                "date".to_string(),
                format!("date {:?} must be YYYY-MM-DD", self.date),
            )
        })?;
        if date > today {
            return Err((
                "date".into(),
                format!("date {date} is after today ({today})"),
            ));
        }
        let mut readings = Vec::new();
        let fields: [(&'static str, &str); 6] = [
            ("sbp", &self.sbp),
            ("dbp", &self.dbp),
            ("fasting_glucose", &self.fasting_glucose),
            ("heart_rate", &self.heart_rate),
            ("danger_level", &self.danger_level),
            ("self_care_score", &self.self_care_score),
        ];
        for (key, text) in fields {
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            let code =
                dhp_core::codes::observation(key).expect("code table has the follow-up keys");
            let v: f64 = text
                .parse()
                .map_err(|_| (key.to_string(), format!("{key} {text:?} is not a number")))?;
            if !(code.min..=code.max).contains(&v) {
                return Err((
                    key.to_string(),
                    format!(
                        "{key} {v} {} is outside {}–{}",
                        code.unit, code.min, code.max
                    ),
                ));
            }
            readings.push((key, v));
        }
        if readings.iter().any(|(k, _)| *k == "sbp") != readings.iter().any(|(k, _)| *k == "dbp") {
            return Err((
                "dbp".into(),
                "blood pressure needs both systolic and diastolic".into(),
            ));
        }
        if let Some(adherence) = Some(self.medication_adherence.trim()).filter(|s| !s.is_empty()) {
            let v: f64 = adherence
                .parse()
                .ok()
                .filter(|v| [1.0, 2.0, 3.0].contains(v))
                .ok_or_else(|| {
                    (
                        "medication_adherence".to_string(),
                        "medication_adherence must be 1, 2 or 3".to_string(),
                    )
                })?;
            readings.push(("medication_adherence", v));
        }
        let flag = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty() && s != "0");
        readings.push((
            "danger_symptoms",
            if flag(&self.danger_symptoms) {
                1.0
            } else {
                0.0
            },
        ));
        readings.push(("referral", if flag(&self.referral) { 1.0 } else { 0.0 }));
        Ok(FollowUp {
            programme,
            start: date.and_hms_opt(9, 0, 0).expect("valid time"),
            readings,
        })
    }
}

/// Write a follow-up of `resident` by `who` at their organisation: one Encounter and
/// its Observations, through the FHIR write path in one transaction.
pub(crate) async fn record_followup(
    state: &AppState,
    who: &Principal,
    resident: &Resident,
    f: &FollowUp,
) -> Result<Result<Id, String>, AppError> {
    let Some(org) = who.org_id else {
        return Ok(Err("the account works at no organisation".into()));
    };
    let mut plan = Plan::new(state, who).await?;
    let encounter_id = plan.take_ids("Encounter", 1).await?;
    let encounter = Encounter {
        id: encounter_id,
        resident_id: resident.id,
        kind: EncounterType::FollowUp,
        programme: Some(f.programme),
        org_id: org,
        practitioner_id: who.practitioner_id,
        start: f.start,
    };
    let refusal = |r: Refusal| match r {
        Refusal::Outcome(o) => Ok(Err(o
            .issues
            .iter()
            .map(|i| i.diagnostics.as_str())
            .collect::<Vec<_>>()
            .join("; "))),
        Refusal::Failed(e) => Err(e),
    };
    if let Err(r) = plan
        .create_with_id(
            "Encounter",
            encounter_id,
            dhp_fhir::resources::encounter(&encounter),
        )
        .await
    {
        return refusal(r);
    }
    for (key, value) in &f.readings {
        let code = dhp_core::codes::observation(key).expect("code table has the follow-up keys");
        let o = Observation {
            id: 0,
            resident_id: resident.id,
            encounter_id: Some(encounter_id),
            code: code.code.clone(),
            value: *value,
            unit: code.unit.clone(),
            effective: f.start,
        };
        let mut body = dhp_fhir::resources::observation_resource(&o);
        if let Some(m) = body.as_object_mut() {
            m.remove("id");
        }
        if let Err(r) = plan.create("Observation", body).await {
            return refusal(r);
        }
    }
    plan.commit().await?;
    Ok(Ok(encounter_id))
}
