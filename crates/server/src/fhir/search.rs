//! Search: `GET /fhir/{type}?…` and `POST /fhir/{type}/_search`, for Patient and the
//! record and registry types, with `_sort`, paging links, `_include`, `_revinclude` and
//! `_summary=count`. Results stay within the account's scope; every resident's resource
//! that leaves is in the audit log first.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use dhp_core::access::resident_scope;
use dhp_core::query::{Field, Filter, RecordQuery};
use dhp_core::Id;
use dhp_fhir::search::{parse_patient_search, parse_record_search, Link, Prefix};
use dhp_fhir::{patient, resources, OperationOutcome};
use dhp_store::{core_table, Batch, Comparison, ResidentFilter, StoreError, Table};
use serde_json::{json, Value};

use super::{fhir_base, fhir_json, generated_meta, outcome, signed_in, stored_json};
use crate::audit::{self, Actor};
use crate::context::org_facts;
use crate::{AppError, AppState};

/// Resources a `_revinclude` adds per page at most; beyond that the Bundle says so.
pub(crate) const REVINCLUDE_LIMIT: i64 = 1_000;

/// The store's filter for a Patient search.
pub(crate) fn resident_filter(
    q: &dhp_fhir::search::PatientSearch,
    generated: &str,
) -> ResidentFilter {
    ResidentFilter {
        id: q.id,
        identity_number: q.identifier.clone(),
        name: q.name.clone(),
        family: q.family.clone(),
        given: q.given.clone(),
        sex: q.gender,
        birth_date: q
            .birthdate
            .iter()
            .map(|(p, d)| {
                let c = match p {
                    Prefix::Eq => Comparison::Eq,
                    Prefix::Ne => Comparison::Ne,
                    Prefix::Lt => Comparison::Lt,
                    Prefix::Gt => Comparison::Gt,
                    Prefix::Le => Comparison::Le,
                    Prefix::Ge => Comparison::Ge,
                };
                (c, *d)
            })
            .collect(),
        street_org: q.organization.clone(),
        address: q.address.clone(),
        last_updated: q.last_updated.clone(),
        generated: generated.to_string(),
        sort: q.sort.clone(),
    }
}

/// `GET /fhir/{type}?…`.
pub(crate) async fn search_get(
    State(state): State<Arc<AppState>>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    search(&state, &headers, &kind, pairs).await
}

/// `POST /fhir/{type}/_search` with the parameters as a form.
pub(crate) async fn search_post(
    State(state): State<Arc<AppState>>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    search(&state, &headers, &kind, pairs).await
}

/// One resource on its way out: its id, the resident it belongs to, its JSON.
pub(crate) struct Rendered {
    pub id: Id,
    pub resident: Option<Id>,
    pub body: Value,
}

/// The (id, resident) of each row of `table` in `batch`, in order.
fn row_keys(batch: &Batch, table: Table) -> Vec<(Id, Option<Id>)> {
    match table {
        Table::Residents => batch.residents.iter().map(|r| (r.id, Some(r.id))).collect(),
        Table::Encounters => batch
            .encounters
            .iter()
            .map(|r| (r.id, Some(r.resident_id)))
            .collect(),
        Table::Conditions => batch
            .conditions
            .iter()
            .map(|r| (r.id, Some(r.resident_id)))
            .collect(),
        Table::Observations => batch
            .observations
            .iter()
            .map(|r| (r.id, Some(r.resident_id)))
            .collect(),
        Table::Immunizations => batch
            .immunizations
            .iter()
            .map(|r| (r.id, Some(r.resident_id)))
            .collect(),
        Table::ImagingStudies => batch
            .imaging_studies
            .iter()
            .map(|r| (r.id, Some(r.resident_id)))
            .collect(),
        Table::Contracts => batch
            .contracts
            .iter()
            .map(|r| (r.id, Some(r.resident_id)))
            .collect(),
        Table::Organisations => batch.organisations.iter().map(|r| (r.id, None)).collect(),
        Table::Practitioners => batch.practitioners.iter().map(|r| (r.id, None)).collect(),
        Table::Households => batch.households.iter().map(|r| (r.id, None)).collect(),
    }
}

/// The ids a reference field of the rows points at (each once, in order).
fn referenced(batch: &Batch, table: Table, field: Field) -> Vec<Id> {
    let ids: Vec<Option<Id>> = match (table, field) {
        (_, Field::Resident) => row_keys(batch, table).into_iter().map(|(_, r)| r).collect(),
        (_, Field::Id) => row_keys(batch, table)
            .into_iter()
            .map(|(i, _)| Some(i))
            .collect(),
        (Table::Residents, Field::Org) => batch
            .residents
            .iter()
            .map(|r| Some(r.street_org_id))
            .collect(),
        (Table::Encounters, Field::Org) => {
            batch.encounters.iter().map(|r| Some(r.org_id)).collect()
        }
        (Table::Encounters, Field::Practitioner) => {
            batch.encounters.iter().map(|r| r.practitioner_id).collect()
        }
        (Table::Conditions, Field::Org) => {
            batch.conditions.iter().map(|r| Some(r.org_id)).collect()
        }
        (Table::Observations, Field::Encounter) => {
            batch.observations.iter().map(|r| r.encounter_id).collect()
        }
        (Table::Immunizations, Field::Org) => {
            batch.immunizations.iter().map(|r| Some(r.org_id)).collect()
        }
        (Table::ImagingStudies, Field::Encounter) => batch
            .imaging_studies
            .iter()
            .map(|r| Some(r.encounter_id))
            .collect(),
        (Table::Contracts, Field::Org) => batch
            .contracts
            .iter()
            .map(|r| Some(r.centre_org_id))
            .collect(),
        (Table::Contracts, Field::Practitioner) => {
            batch.contracts.iter().map(|r| Some(r.doctor_id)).collect()
        }
        (Table::Organisations, Field::Parent) => {
            batch.organisations.iter().map(|r| r.parent_id).collect()
        }
        (Table::Practitioners, Field::Org) => {
            batch.practitioners.iter().map(|r| Some(r.org_id)).collect()
        }
        _ => Vec::new(),
    };
    let mut seen = HashSet::new();
    ids.into_iter()
        .flatten()
        .filter(|i| seen.insert(*i))
        .collect()
}

/// The rows of `batch` (of FHIR type `kind`) as the reader sees them: the stored JSON
/// when written through the API, else the mapped core row (version 1).
pub(crate) async fn render(
    state: &AppState,
    kind: &str,
    batch: &Batch,
    masked: bool,
) -> Result<Vec<Rendered>, StoreError> {
    let Some(table) = core_table(kind) else {
        return Ok(Vec::new());
    };
    let keys = row_keys(batch, table);
    let ids: Vec<Id> = keys.iter().map(|(i, _)| *i).collect();
    let store = &*state.store;
    let stored: HashMap<Id, Value> = store
        .resources(kind, &ids)
        .await?
        .iter()
        .filter_map(|s| Some((s.id, stored_json(s, masked)?)))
        .collect();
    let place = state.place().await?;
    let households: HashMap<Id, String> = if table == Table::Residents {
        let wanted: Vec<Id> = batch
            .residents
            .iter()
            .filter(|r| !stored.contains_key(&r.id))
            .map(|r| r.household_id)
            .collect();
        store
            .households(&wanted)
            .await?
            .into_iter()
            .map(|h| (h.id, h.address))
            .collect()
    } else {
        HashMap::new()
    };
    let mapped = |i: usize| -> Value {
        match table {
            Table::Residents => {
                let r = &batch.residents[i];
                patient::to_fhir(
                    r,
                    &patient::PatientContext {
                        address_line: households.get(&r.household_id).map(String::as_str),
                        city: &place.city,
                        district: &place.district,
                        masked,
                    },
                )
            }
            Table::Encounters => resources::encounter(&batch.encounters[i]),
            Table::Conditions => resources::condition(&batch.conditions[i]),
            Table::Observations => resources::observation_resource(&batch.observations[i]),
            Table::Immunizations => resources::immunization(&batch.immunizations[i]),
            Table::ImagingStudies => resources::imaging_study(&batch.imaging_studies[i]),
            Table::Contracts => resources::care_team(&batch.contracts[i]),
            Table::Organisations => resources::organization(&batch.organisations[i]),
            Table::Practitioners if kind == "PractitionerRole" => {
                resources::practitioner_role(&batch.practitioners[i])
            }
            Table::Practitioners => resources::practitioner(&batch.practitioners[i]),
            Table::Households => Value::Null,
        }
    };
    Ok(keys
        .iter()
        .enumerate()
        .map(|(i, &(id, resident))| {
            let body = match stored.get(&id) {
                Some(v) => v.clone(),
                None => {
                    let mut v = mapped(i);
                    generated_meta(&mut v, place);
                    v
                }
            };
            Rendered { id, resident, body }
        })
        .collect())
}

/// Resources of `kind` matching `q` in `scope`, as the reader sees them, with the total
/// and (for core types) the rows they came from.
pub(crate) async fn fetch(
    state: &AppState,
    kind: &str,
    q: &RecordQuery,
    scope: &dhp_core::access::Scope,
    masked: bool,
) -> Result<(Vec<Rendered>, i64, Batch), StoreError> {
    let today = dhp_core::clock::today();
    let store = &*state.store;
    if kind == "Task" {
        let (rows, total) = super::referral::fetch(state, q, scope, false).await?;
        return Ok((rows, total, Batch::default()));
    }
    if dhp_fhir::scheduling::is_pool(kind) {
        let (rows, total) = super::scheduling::fetch(state, kind, q, scope).await?;
        return Ok((rows, total, Batch::default()));
    }
    if let Some(table) = core_table(kind) {
        let generated = &state.place().await?.generated;
        let (batch, total) = store
            .search_records(table, kind, q, scope, today, generated)
            .await?;
        let rows = render(state, kind, &batch, masked).await?;
        return Ok((rows, total, batch));
    }
    // Referrals' requests (the referral table's) first, then those kept as received.
    let (mut rows, before) = if kind == "ServiceRequest" {
        super::referral::fetch(state, q, scope, true).await?
    } else {
        (Vec::new(), 0)
    };
    let rest = RecordQuery {
        limit: (q.limit - rows.len() as i64).max(0),
        offset: (q.offset - before).max(0),
        ..q.clone()
    };
    let resident_owned = super::resident_data(kind);
    let (found, total) = store
        .search_stored(kind, resident_owned, &rest, scope, today)
        .await?;
    rows.extend(found.iter().filter_map(|s| {
        Some(Rendered {
            id: s.id,
            resident: s.resident_id,
            body: stored_json(s, masked)?,
        })
    }));
    Ok((rows, before + total, Batch::default()))
}

/// The request's `Prefer: handling=lenient`.
fn lenient(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("handling=lenient"))
}

/// What a parsed search comes to, whatever its type.
struct Plan {
    kind: &'static str,
    /// `None`: a type kept as received.
    table: Option<Table>,
    query: RecordQuery,
    resident_filter: Option<ResidentFilter>,
    impossible: bool,
    include: Vec<Link>,
    revinclude: Vec<Link>,
    summary_count: bool,
    count: i64,
    offset: i64,
}

/// The names of a search's parameters (`identifier,_count`): what an audit entry keeps
/// of a query, without the values (an identity number searched for stays out of it).
fn parameter_names(pairs: &[(String, String)]) -> String {
    let mut names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    names.dedup();
    names.join(",")
}

/// A search refused as bad input: audited (who tried what), then the outcome.
async fn refused_search(
    state: &AppState,
    who: &dhp_core::access::Principal,
    kind: &str,
    pairs: &[(String, String)],
    issues: Vec<dhp_fhir::Issue>,
    status: u16,
) -> Result<Response, AppError> {
    let o = OperationOutcome::new(issues).with_status(status);
    let first = o.to_json()["issue"][0]["expression"][0]
        .as_str()
        .unwrap_or_default()
        .to_string();
    audit::record(
        &*state.store,
        &Actor::from(who),
        "search",
        &format!("{kind}?{}", parameter_names(pairs)),
        None,
        "invalid",
        &format!("refused: {first}"),
    )
    .await?;
    Ok(outcome(o))
}

/// A search of any searchable type.
async fn search(
    state: &AppState,
    headers: &HeaderMap,
    kind: &str,
    pairs: Vec<(String, String)>,
) -> Result<Response, AppError> {
    let store = &*state.store;
    let who = match signed_in(state, headers, "search", kind).await? {
        Ok(p) => p,
        Err(res) => return Ok(res),
    };
    let place = state.place().await?;
    let plan = if kind == "Patient" {
        match parse_patient_search(&pairs, lenient(headers)) {
            Ok(q) => Plan {
                kind: "Patient",
                table: Some(Table::Residents),
                query: RecordQuery::matching(Vec::new(), 0),
                resident_filter: Some(resident_filter(&q, &place.generated)),
                impossible: q.impossible,
                include: q.include,
                revinclude: q.revinclude,
                summary_count: q.summary_count,
                count: q.count,
                offset: q.offset,
            },
            Err(issues) => {
                return refused_search(state, &who, kind, &pairs, issues, 400).await;
            }
        }
    } else if kind == "Task" {
        let q = match dhp_fhir::referral::parse_task_search(&pairs) {
            Ok(q) => q,
            Err(issues) => return refused_search(state, &who, kind, &pairs, issues, 400).await,
        };
        Plan {
            kind: "Task",
            table: None,
            query: q.query(),
            resident_filter: None,
            impossible: q.impossible,
            include: Vec::new(),
            revinclude: Vec::new(),
            summary_count: q.summary_count,
            count: q.count,
            offset: q.offset,
        }
    } else if let Some(kind) = dhp_fhir::scheduling::POOL_TYPES
        .into_iter()
        .find(|t| *t == kind)
    {
        let q = match dhp_fhir::scheduling::parse_search(kind, &pairs) {
            Ok(q) => q,
            Err(issues) => return refused_search(state, &who, kind, &pairs, issues, 400).await,
        };
        Plan {
            kind,
            table: None,
            query: q.query(),
            resident_filter: None,
            impossible: q.impossible,
            include: Vec::new(),
            revinclude: Vec::new(),
            summary_count: q.summary_count,
            count: q.count,
            offset: q.offset,
        }
    } else {
        let q = match parse_record_search(kind, &pairs, lenient(headers)) {
            Ok(q) => q,
            Err(issues) => {
                let status = if issues.iter().all(|i| i.expression.is_none()) {
                    404
                } else {
                    400
                };
                return refused_search(state, &who, kind, &pairs, issues, status).await;
            }
        };
        Plan {
            kind: q.kind,
            table: core_table(q.kind),
            query: RecordQuery {
                filters: q.filters,
                sort: q.sort,
                limit: if q.summary_count { 0 } else { q.count },
                offset: q.offset,
            },
            resident_filter: None,
            impossible: q.impossible,
            include: q.include,
            revinclude: q.revinclude,
            summary_count: q.summary_count,
            count: q.count,
            offset: q.offset,
        }
    };
    let org = org_facts(state, &who).await?;
    let scope = resident_scope(&who, org.as_ref());
    let today = dhp_core::clock::today();
    let masked = !who.role.sees_full_identity();
    let (rows, total, batch) = if plan.impossible {
        (Vec::new(), 0, Batch::default())
    } else if let Some(filter) = &plan.resident_filter {
        let limit = if plan.summary_count { 0 } else { plan.count };
        let (residents, total) = store
            .search_residents(filter, &scope, today, limit, plan.offset)
            .await?;
        let batch = Batch {
            residents,
            ..Batch::default()
        };
        (
            render(state, "Patient", &batch, masked).await?,
            total,
            batch,
        )
    } else {
        fetch(state, plan.kind, &plan.query, &scope, masked).await?
    };
    let base = fhir_base(state);
    let actor = Actor::from(&who);
    let mut entries = Vec::new();
    let mut trail = Vec::new();
    let mut add = |kind: &str, r: Rendered, mode: &str, trail: &mut Vec<_>| {
        if let Some(resident) = r.resident {
            trail.push(audit::entry(
                &actor,
                "search",
                &format!("{kind}/{}", r.id),
                Some(resident),
                "success",
                if mode == "match" {
                    "search match"
                } else {
                    "search include"
                },
            ));
        }
        entries.push(json!({
            "fullUrl": format!("{base}/{kind}/{}", r.id),
            "resource": r.body,
            "search": { "mode": mode },
        }));
    };
    let matched: Vec<Id> = rows.iter().map(|r| r.id).collect();
    let residents: Vec<Id> = rows.iter().filter_map(|r| r.resident).collect();
    for r in rows {
        add(plan.kind, r, "match", &mut trail);
    }
    // _include: what the matches refer to (within scope, each once).
    let mut included: HashSet<(&str, Id)> = HashSet::new();
    for link in &plan.include {
        let refs = match plan.table {
            Some(table) => referenced(&batch, table, link.field),
            // Resources kept as received link to their resident only.
            None if link.field == Field::Resident => residents.clone(),
            None => Vec::new(),
        };
        let ids: Vec<Id> = refs
            .into_iter()
            .filter(|i| included.insert((link.target, *i)))
            .collect();
        if ids.is_empty() {
            continue;
        }
        let n = ids.len() as i64;
        let q = RecordQuery::matching(vec![Filter::Ids(Field::Id, ids)], n);
        for r in fetch(state, link.target, &q, &scope, masked).await?.0 {
            add(link.target, r, "include", &mut trail);
        }
    }
    // _revinclude: what refers to the matches, up to a limit per parameter.
    let mut warnings = Vec::new();
    for link in &plan.revinclude {
        if matched.is_empty() {
            break;
        }
        let q = RecordQuery::matching(
            vec![Filter::Ids(link.field, matched.clone())],
            REVINCLUDE_LIMIT,
        );
        let (rows, found, _) = fetch(state, link.source, &q, &scope, masked).await?;
        if found > REVINCLUDE_LIMIT {
            warnings.push(format!(
                "_revinclude={}:{}: {found} resources refer to this page; the first {REVINCLUDE_LIMIT} are included (ask for fewer matches with _count)",
                link.source, link.param
            ));
        }
        for r in rows {
            if included.insert((link.source, r.id)) {
                add(link.source, r, "include", &mut trail);
            }
        }
    }
    // Every search is on the log, a zero-hit or count-only one too: who looked for
    // what (the parameter names, never their values) and how many matched.
    trail.push(audit::entry(
        &actor,
        "search",
        &format!("{}?{}", plan.kind, parameter_names(&pairs)),
        None,
        "success",
        &format!("{total} matches"),
    ));
    // Fail closed: nothing leaves before all of it is in the audit log.
    store.insert_audits(&trail).await?;
    if !warnings.is_empty() {
        let issues: Vec<Value> = warnings
            .into_iter()
            .map(|w| json!({ "severity": "warning", "code": "too-costly", "diagnostics": w }))
            .collect();
        entries.push(json!({
            "resource": { "resourceType": "OperationOutcome", "issue": issues },
            "search": { "mode": "outcome" },
        }));
    }
    let query = |offset: i64| {
        let mut kept: Vec<(String, String)> = pairs
            .iter()
            .filter(|(k, _)| k != "_offset")
            .cloned()
            .collect();
        if offset > 0 {
            kept.push(("_offset".into(), offset.to_string()));
        }
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(kept)
            .finish();
        format!("{base}/{}?{encoded}", plan.kind)
    };
    let mut links = vec![json!({ "relation": "self", "url": query(plan.offset) })];
    if !plan.summary_count && plan.count > 0 {
        links.push(json!({ "relation": "first", "url": query(0) }));
        if plan.offset.saturating_add(plan.count) < total {
            links.push(json!({ "relation": "next", "url": query(plan.offset + plan.count) }));
        }
        if plan.offset > 0 {
            links.push(
                json!({ "relation": "previous", "url": query((plan.offset - plan.count).max(0)) }),
            );
        }
        let last = if total == 0 {
            0
        } else {
            (total - 1) / plan.count * plan.count
        };
        links.push(json!({ "relation": "last", "url": query(last) }));
    }
    let mut bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
    });
    if !entries.is_empty() {
        bundle["entry"] = Value::Array(entries);
    }
    Ok(fhir_json(StatusCode::OK, &bundle))
}

/// `GET /fhir/Patient/{id}/$everything[?_type=…&_since=…]`: the resident's record —
/// the Patient, their encounters, conditions, observations, immunizations and
/// contracts — with the organisations and practitioners they refer to, as a searchset
/// Bundle. Read access as for the Patient; every resource disclosed is audited.
pub(crate) async fn everything(
    State(state): State<Arc<AppState>>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let state = &*state;
    let store = &*state.store;
    if kind != "Patient" {
        return Ok(outcome(OperationOutcome::one(dhp_fhir::Issue::new(
            dhp_fhir::IssueCode::NotSupported,
            format!("$everything is supported on Patient, not {kind}"),
        ))));
    }
    let resource = format!("Patient/{id}/$everything");
    let who = match signed_in(state, &headers, "everything", &resource).await? {
        Ok(p) => p,
        Err(res) => return Ok(res),
    };
    let actor = Actor::from(&who);
    let mut types: Vec<&str> = crate::fhir::export::PATIENT_TYPES.to_vec();
    let mut since = None;
    let mut issues = Vec::new();
    for (k, v) in &pairs {
        let at = |what: String| {
            dhp_fhir::Issue::at(
                dhp_fhir::IssueCode::Invalid,
                format!("Patient/$everything?{k}"),
                what,
            )
        };
        match k.as_str() {
            "_type" => {
                let asked: Vec<&str> = v.split(',').map(str::trim).collect();
                match asked
                    .iter()
                    .find(|t| !crate::fhir::export::PATIENT_TYPES.contains(t))
                {
                    Some(t) => issues.push(at(format!(
                        "{t:?} is not in a patient's record here ({})",
                        crate::fhir::export::PATIENT_TYPES.join(", ")
                    ))),
                    None => types.retain(|t| asked.contains(t)),
                }
            }
            "_since" => match chrono::DateTime::parse_from_rfc3339(v) {
                Ok(t) => since = Some(t.with_timezone(&chrono::Utc).naive_utc()),
                Err(_) => issues.push(at(format!(
                    "{v:?} is not an instant (YYYY-MM-DDThh:mm:ss+zz:zz)"
                ))),
            },
            "_format" if v.contains("json") => {}
            other => issues.push(dhp_fhir::Issue::at(
                dhp_fhir::IssueCode::NotSupported,
                format!("Patient/$everything?{other}"),
                "unknown parameter; $everything supports _type, _since",
            )),
        }
    }
    if !issues.is_empty() {
        return Ok(outcome(OperationOutcome::new(issues).with_status(400)));
    }
    let Ok(resident) = id.parse::<Id>() else {
        return Ok(outcome(OperationOutcome::one(dhp_fhir::Issue::new(
            dhp_fhir::IssueCode::NotFound,
            format!("Patient/{id} does not exist"),
        ))));
    };
    match store.get(Table::Residents, resident).await {
        Ok(_) => {}
        Err(StoreError::NotFound(_)) => {
            audit::record(
                store,
                &actor,
                "everything",
                &resource,
                None,
                "not-found",
                "no such record",
            )
            .await?;
            return Ok(outcome(OperationOutcome::one(dhp_fhir::Issue::new(
                dhp_fhir::IssueCode::NotFound,
                format!("Patient/{id} does not exist"),
            ))));
        }
        Err(e) => return Err(e.into()),
    }
    let decision = super::read_decision(state, &who, resident).await?;
    if !decision.allowed() {
        audit::record(
            store,
            &actor,
            "everything",
            &resource,
            Some(resident),
            "denied",
            decision.reason(),
        )
        .await?;
        // A resident learns no more of another's record than of none.
        if who.role == dhp_core::access::Role::Resident {
            return Ok(outcome(OperationOutcome::one(dhp_fhir::Issue::new(
                dhp_fhir::IssueCode::NotFound,
                format!("Patient/{id} does not exist"),
            ))));
        }
        return Ok(outcome(OperationOutcome::one(dhp_fhir::Issue::new(
            dhp_fhir::IssueCode::Forbidden,
            format!("{resource}: {}", decision.reason()),
        ))));
    }
    let place = state.place().await?;
    let today = dhp_core::clock::today();
    let masked = !who.role.sees_full_identity();
    let scope = dhp_core::access::Scope::Resident(resident);
    let mut out: Vec<(&str, Rendered)> = Vec::new();
    let mut orgs: Vec<Id> = Vec::new();
    let mut staff: Vec<Id> = Vec::new();
    for kind in types {
        let field = if kind == "Patient" {
            Field::Id
        } else {
            Field::Resident
        };
        let mut filters = vec![Filter::Ids(field, vec![resident])];
        if let Some(t) = since {
            filters.push(Filter::Date(
                Field::LastUpdated,
                dhp_core::query::DateCond::Ge(t),
            ));
        }
        let q = RecordQuery::matching(filters, i64::MAX);
        let (found, _, rows) = fetch(state, kind, &q, &scope, masked).await?;
        if let Some(table) = core_table(kind) {
            orgs.extend(referenced(&rows, table, Field::Org));
            staff.extend(referenced(&rows, table, Field::Practitioner));
        }
        // The contract's hospitals too.
        for c in &rows.contracts {
            orgs.extend([c.district_hospital_id, c.city_hospital_id]);
        }
        out.extend(found.into_iter().map(|r| (kind, r)));
    }
    orgs.sort_unstable();
    orgs.dedup();
    staff.sort_unstable();
    staff.dedup();
    for (kind, table, ids) in [
        ("Organization", Table::Organisations, orgs),
        ("Practitioner", Table::Practitioners, staff),
    ] {
        if ids.is_empty() {
            continue;
        }
        let n = ids.len() as i64;
        let q = RecordQuery::matching(vec![Filter::Ids(Field::Id, ids)], n);
        let (rows, _) = store
            .search_records(table, kind, &q, &scope, today, &place.generated)
            .await?;
        for r in render(state, kind, &rows, masked).await? {
            out.push((kind, r));
        }
    }
    let trail: Vec<_> = out
        .iter()
        .filter(|(_, r)| r.resident.is_some())
        .map(|(kind, r)| {
            audit::entry(
                &actor,
                "everything",
                &format!("{kind}/{}", r.id),
                r.resident,
                "success",
                decision.reason(),
            )
        })
        .collect();
    store.insert_audits(&trail).await?;
    let base = fhir_base(state);
    let entries: Vec<Value> = out
        .into_iter()
        .map(|(kind, r)| {
            json!({
                "fullUrl": format!("{base}/{kind}/{}", r.id),
                "resource": r.body,
                "search": { "mode": "match" },
            })
        })
        .collect();
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": entries.len(),
        "link": [{ "relation": "self", "url": format!("{base}/{resource}") }],
        "entry": entries,
    });
    Ok(fhir_json(StatusCode::OK, &bundle))
}
