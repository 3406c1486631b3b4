//! Family-doctor contracting over HTTP: `POST /api/contracts` (sign, renew, change, end;
//! `change` is the service the workbench's contract form calls too), and the
//! contracting figures per street and per centre (`GET /api/contracts/rates`, the
//! `/contracts` page).

use axum::routing::{get, post};
use axum::Router;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Json;
use chrono::{Datelike, NaiveDate};
use dhp_core::access::{Principal, Role};
use dhp_core::contract::{apply, check_combination, tally, Combination, ContractAction, Tally};
use dhp_core::{Contract, Id, OrgKind, Organisation};
use dhp_store::{Batch, Cohort, Guard, Reading, StoreError, Table, WriteSet};
use serde::{Deserialize, Serialize};

use crate::audit::{self, Actor};
use crate::context::caller;
use crate::context::current_user;
use crate::context::Refusal as Refused;
use crate::context::{as_of, principal_of, Readable};
use crate::i18n::{messages, Messages};
use crate::{AppError, AppState};

/// `/api/contracts`, `/api/contracts/rates` and `/contracts`.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/contracts", post(api_change))
        .route("/api/contracts/rates", get(api_rates))
        .route("/contracts", get(page))
}

/// A contract request, from JSON or a form. Hospitals by organisation code.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContractRequest {
    #[serde(default)]
    pub resident_id: Option<Id>,
    pub action: String,
    /// Practitioner id of the family doctor (default: the caller, for a family doctor).
    #[serde(default)]
    pub doctor: Option<Id>,
    #[serde(default)]
    pub district_hospital: Option<String>,
    #[serde(default)]
    pub city_hospital: Option<String>,
}

fn org_by_code<'a>(
    orgs: &'a HashMap<Id, Organisation>,
    field: &'static str,
    code: Option<&str>,
) -> Result<&'a Organisation, Refused> {
    let code = code.filter(|c| !c.is_empty()).ok_or_else(|| {
        Refused::new(
            StatusCode::BAD_REQUEST,
            field,
            format!("{field} is required (an organisation code)"),
        )
    })?;
    orgs.values().find(|o| o.code == code).ok_or_else(|| {
        Refused::new(
            StatusCode::BAD_REQUEST,
            field,
            format!("no organisation has code {code:?}"),
        )
    })
}

/// Carry out `req` on resident `resident_id` for `who`, on `today`: the rows written.
pub(crate) async fn change(
    state: &AppState,
    who: &Principal,
    resident_id: Id,
    req: &ContractRequest,
    today: NaiveDate,
) -> Result<Result<Vec<Contract>, Refused>, AppError> {
    let actor = Actor::from(who);
    let resource = format!("Patient/{resident_id}/contract");
    if !matches!(who.role, Role::FamilyDoctor | Role::System) {
        audit::record(
            &*state.store,
            &actor,
            "update",
            &resource,
            Some(resident_id),
            "denied",
            &req.action,
        )
        .await?;
        return Ok(Err(Refused::new(
            StatusCode::FORBIDDEN,
            "role",
            "contracts are signed by family doctors and integrating systems",
        )));
    }
    let existing = match crate::context::readable(
        state,
        who,
        resident_id,
        today,
        "update",
        Reading::Programmes,
    )
    .await?
    {
        Readable::Record(rec) => rec.contracts,
        Readable::NotFound => {
            return Ok(Err(Refused::new(
                StatusCode::NOT_FOUND,
                "resident_id",
                format!("resident {resident_id} does not exist"),
            )))
        }
        Readable::Denied => {
            return Ok(Err(Refused::new(
                StatusCode::FORBIDDEN,
                "resident_id",
                format!("resident {resident_id} is outside {}'s scope", who.username),
            )))
        }
    };
    let orgs = state.orgs().await?;
    let combination = || -> Result<Combination, Refused> {
        let doctor = req.doctor.or(who.practitioner_id).ok_or_else(|| {
            Refused::new(
                StatusCode::BAD_REQUEST,
                "doctor",
                "doctor is required (a practitioner id)",
            )
        })?;
        let centre = match who.role {
            Role::FamilyDoctor => who.org_id.ok_or_else(|| {
                Refused::new(
                    StatusCode::BAD_REQUEST,
                    "centre",
                    "the account works at no centre",
                )
            })?,
            _ => 0,
        };
        Ok(Combination {
            centre,
            doctor,
            district_hospital: org_by_code(
                orgs,
                "district_hospital",
                req.district_hospital.as_deref(),
            )?
            .id,
            city_hospital: org_by_code(orgs, "city_hospital", req.city_hospital.as_deref())?.id,
        })
    };
    let action = match req.action.as_str() {
        "sign" | "change" => {
            let mut c = match combination() {
                Ok(c) => c,
                Err(r) => return Ok(Err(r)),
            };
            let doctor = state
                .store
                .get(Table::Practitioners, c.doctor)
                .await
                .ok()
                .and_then(|b| b.practitioners.into_iter().next());
            if c.centre == 0 {
                // An integrating system signs at the doctor's own centre.
                c.centre = doctor.as_ref().map_or(0, |d| d.org_id);
            }
            if let Err(e) = check_combination(&c, orgs, doctor.as_ref()) {
                return Ok(Err(Refused::new(
                    StatusCode::BAD_REQUEST,
                    e.field,
                    e.message,
                )));
            }
            if req.action == "sign" {
                ContractAction::Sign(c)
            } else {
                ContractAction::Change(c)
            }
        }
        "renew" => ContractAction::Renew,
        "end" => ContractAction::End,
        other => {
            return Ok(Err(Refused::new(
                StatusCode::BAD_REQUEST,
                "action",
                format!("action {other:?} is not one of sign, renew, change, end"),
            )))
        }
    };
    let new_id = state.store.reserve_ids("CareTeam", 1).await?;
    let rows = match apply(resident_id, &existing, action, today, new_id) {
        Ok(rows) => rows,
        Err(e) => {
            audit::record(
                &*state.store,
                &actor,
                "update",
                &resource,
                Some(resident_id),
                "invalid",
                &e.to_string(),
            )
            .await?;
            return Ok(Err(Refused::new(StatusCode::CONFLICT, e.field, e.message)));
        }
    };
    let audits = rows
        .iter()
        .map(|c| {
            let verb = if existing.iter().any(|e| e.id == c.id) {
                "update"
            } else {
                "create"
            };
            audit::entry(
                &actor,
                verb,
                &format!("CareTeam/{}", c.id),
                Some(resident_id),
                "success",
                &req.action,
            )
        })
        .collect();
    let set = WriteSet {
        core: Batch {
            contracts: rows.clone(),
            ..Batch::default()
        },
        audits,
        guards: vec![Guard::contracts(resident_id, &existing)],
        ..WriteSet::default()
    };
    match state.store.write_resources(&set).await {
        Ok(()) => {
            // A signature or renewal answers the resident's request from the portal.
            if matches!(req.action.as_str(), "sign" | "renew") {
                let at = crate::context::district_now(state).await?;
                state
                    .store
                    .close_contract_asks(resident_id, &who.username, at)
                    .await?;
            }
            Ok(Ok(rows))
        }
        Err(StoreError::Conflict(why)) => {
            Ok(Err(Refused::new(StatusCode::CONFLICT, "contract", why)))
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /api/contracts` with a JSON [`ContractRequest`].
pub async fn api_change(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let Some(who) = caller(&state, &headers).await else {
        audit::record(
            &*state.store,
            &Actor::unverified(""),
            "update",
            "/api/contracts",
            None,
            "unauthenticated",
            "no session or bearer token",
        )
        .await?;
        return Ok(Refused::new(
            StatusCode::UNAUTHORIZED,
            "authorization",
            "sign in or send a bearer token",
        )
        .api());
    };
    let req: ContractRequest = match crate::context::api_body(&body) {
        Ok(r) => r,
        Err(r) => {
            return Ok(Refused::new(
                StatusCode::BAD_REQUEST,
                r.field.as_deref().unwrap_or("body"),
                r.message,
            )
            .api())
        }
    };
    let Some(resident_id) = req.resident_id else {
        return Ok(Refused::new(
            StatusCode::BAD_REQUEST,
            "resident_id",
            "resident_id is required",
        )
        .api());
    };
    let today = as_of(&state).await?;
    Ok(
        match change(&state, &who, resident_id, &req, today).await? {
            Ok(rows) => Json(serde_json::json!({ "contracts": rows })).into_response(),
            Err(r) => r.api(),
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct LangQuery {
    #[serde(default, deserialize_with = "crate::i18n::page_lang")]
    lang: Option<String>,
    date: Option<String>,
}

/// Contracting figures of one organisation unit.
#[derive(Debug, Clone, Serialize)]
pub struct UnitFigures {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    pub kind: &'static str,
    #[serde(flatten)]
    pub tally: Tally,
    pub key_population_signing_rate: Option<f64>,
    pub in_combination_visit_rate: Option<f64>,
    pub community_visit_rate: Option<f64>,
}

fn pct(n: u32, d: u32) -> Option<f64> {
    (d > 0).then(|| (1000.0 * f64::from(n) / f64::from(d)).round() / 10.0)
}

/// Figures per street or town and per centre, and for the district, on `on` (visits
/// from 1 January of that year). A resident counts for their street, and for the
/// centre they are contracted with — or, unsigned, the centre of their street when it
/// has only one.
pub async fn rates(state: &AppState, on: NaiveDate) -> Result<Vec<UnitFigures>, StoreError> {
    let orgs = state.orgs().await?;
    let centre_of = |id: Id| match orgs.get(&id) {
        Some(o) if o.kind == OrgKind::Station => o.parent_id.unwrap_or(id),
        _ => id,
    };
    // Unsigned residents count for their street's centre when the street has one
    // centre; where it has several, no rule says which, so they count for the street only
    // and those centres show no key-population rate.
    let mut centres_in: HashMap<Id, Vec<Id>> = HashMap::new();
    for c in orgs
        .values()
        .filter(|o| o.kind == OrgKind::CommunityHealthCentre)
    {
        if let Some(p) = c.parent_id {
            centres_in.entry(p).or_default().push(c.id);
        }
    }
    let sole_centre = |street: Id| match centres_in.get(&street).map(Vec::as_slice) {
        Some([only]) => Some(*only),
        _ => None,
    };
    let from = NaiveDate::from_ymd_opt(on.year(), 1, 1).expect("valid year");
    let mut by: BTreeMap<Id, Tally> = BTreeMap::new();
    let mut district = Tally::default();
    let mut after = 0;
    loop {
        let records = state
            .store
            .programme_records(&Cohort::All, Reading::Full, on, after, 5_000)
            .await?;
        let Some(last) = records.last() else { break };
        after = last.resident.id;
        for r in &records {
            let t = tally(r, from, on, &centre_of);
            district += t;
            *by.entry(r.resident.street_org_id).or_default() += t;
            let centre = r
                .contract_on(on)
                .map(|c| c.centre_org_id)
                .or_else(|| sole_centre(r.resident.street_org_id));
            if let Some(c) = centre {
                *by.entry(c).or_default() += t;
            }
        }
        if records.len() < 5_000 {
            break;
        }
    }
    let shared_catchment = |o: &Organisation| {
        o.kind == OrgKind::CommunityHealthCentre && o.parent_id.and_then(sole_centre).is_none()
    };
    let unit = |o: &Organisation, t: Tally| UnitFigures {
        code: o.code.clone(),
        name_zh: o.name_zh.clone(),
        name_en: o.name_en.clone(),
        kind: o.kind.as_str(),
        tally: t,
        key_population_signing_rate: if shared_catchment(o) {
            None
        } else {
            pct(t.key_population_signed, t.key_population)
        },
        in_combination_visit_rate: pct(t.in_combination, t.signed_visits),
        community_visit_rate: pct(t.community, t.signed_visits),
    };
    let mut out = Vec::new();
    if let Some(d) = orgs.values().find(|o| o.kind == OrgKind::District) {
        out.push(unit(d, district));
    }
    let mut units: Vec<(&Organisation, Tally)> = by
        .into_iter()
        .filter_map(|(id, t)| orgs.get(&id).map(|o| (o, t)))
        .collect();
    units.sort_by_key(|(o, _)| {
        (
            o.kind != OrgKind::Street && o.kind != OrgKind::Town,
            o.code.clone(),
        )
    });
    out.extend(units.into_iter().map(|(o, t)| unit(o, t)));
    Ok(out)
}

fn staff(who: &Principal) -> bool {
    matches!(
        who.role,
        Role::Manager | Role::PublicHealthDoctor | Role::FamilyDoctor | Role::System
    )
}

/// `GET /api/contracts/rates?date=D`.
pub async fn api_rates(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Result<Response, AppError> {
    let who = match caller(&state, &headers).await {
        Some(who) if staff(&who) => who,
        // Signed in, but not as staff: known, and refused.
        Some(_) => {
            return Ok(Refused::new(
                StatusCode::FORBIDDEN,
                "role",
                "the contracting figures are for staff",
            )
            .api())
        }
        None => {
            return Ok(Refused::new(
                StatusCode::UNAUTHORIZED,
                "authorization",
                "staff sign-in or a bearer token is required",
            )
            .api())
        }
    };
    let on = match q.date.as_deref().filter(|d| !d.is_empty()) {
        Some(d) => match d.parse::<NaiveDate>() {
            Ok(d) => d,
            Err(_) => {
                return Ok(Refused::new(
                    StatusCode::BAD_REQUEST,
                    "date",
                    format!("date {d:?} must be YYYY-MM-DD"),
                )
                .api())
            }
        },
        None => as_of(&state).await?,
    };
    let _ = who;
    Ok(Json(serde_json::json!({ "date": on, "units": rates(&state, on).await? })).into_response())
}

pub(crate) struct RateRow {
    name: String,
    kind: String,
    key: String,
    key_rate: String,
    visits: String,
    combination: String,
    community: String,
    bar: String,
}

#[derive(Template)]
#[template(path = "contracts/contracts.html")]
struct RatesPage {
    t: &'static Messages,
    user: Option<crate::security::session::SignedIn>,
    date: String,
    rows: Vec<RateRow>,
}

/// The `/contracts` page: the figures per street, town and centre.
pub async fn page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Result<Response, AppError> {
    let t = messages(q.lang.as_deref().unwrap_or("zh"));
    let Some(user) = current_user(&state, &headers) else {
        return Ok(
            Redirect::to(&format!("/login?lang={}&next=/contracts", t.get("lang"))).into_response(),
        );
    };
    if !principal_of(&user).is_some_and(|p| staff(&p)) {
        return Ok((StatusCode::FORBIDDEN, Html(t.get("staff_only").to_string())).into_response());
    }
    let on = as_of(&state).await?;
    let zh = t.get("lang") == "zh";
    let fmt = |v: Option<f64>| v.map(|x| format!("{x:.1}%")).unwrap_or_else(|| "—".into());
    let rows = rates(&state, on)
        .await?
        .into_iter()
        .map(|u| RateRow {
            name: if zh { u.name_zh } else { u.name_en },
            kind: OrgKind::parse(u.kind)
                .map(|k| {
                    if zh {
                        k.label_zh().to_string()
                    } else {
                        k.label_en().to_string()
                    }
                })
                .unwrap_or_default(),
            key: crate::i18n::thousands(i64::from(u.tally.key_population)),
            key_rate: fmt(u.key_population_signing_rate),
            visits: crate::i18n::thousands(i64::from(u.tally.signed_visits)),
            combination: fmt(u.in_combination_visit_rate),
            community: fmt(u.community_visit_rate),
            bar: format!("{:.0}", u.key_population_signing_rate.unwrap_or(0.0)),
        })
        .collect();
    let page = RatesPage {
        t,
        user: Some(user),
        date: on.to_string(),
        rows,
    };
    Ok(Html(page.render()?).into_response())
}
