//! The FHIR R4 API under `/fhir`: what the CapabilityStatement lists, with bearer-token
//! access scoped by role and organisation unit, and every access to a resident audited.

use std::sync::Arc;

use axum::extract::{OriginalUri, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use dhp_core::access::{may_read_audit_log, may_read_resident, Principal};
use dhp_core::Id;
use dhp_fhir::{capability, patient, resources, Issue, IssueCode, OperationOutcome, FHIR_JSON};
use dhp_store::{Batch, StoreError, StoredResource};
use serde_json::Value;

use crate::audit::{self, Actor};
use crate::security::token::{self, TokenError};
use crate::{AppError, AppState};

pub(crate) mod bulk;
mod bundle;
pub mod export;
mod read;
mod referral;
pub(crate) mod rest;
pub(crate) mod scheduling;
mod search;

use read::{find, Found};
pub(crate) mod write;

pub(crate) use search::{fetch, render};

/// See [`crate::import_bundles`].
pub(crate) async fn import_bundles(
    state: &AppState,
    client: &str,
    items: Vec<crate::Import>,
) -> Result<Vec<Result<Value, OperationOutcome>>, AppError> {
    let who = system_principal(client);
    let mut results: Vec<Option<Result<Value, OperationOutcome>>> = vec![None; items.len()];
    // Parts of the group still to commit, in order. A part whose commit clashes with
    // the store (an id taken, a record gone meanwhile) is halved until the clash is one
    // Bundle's: the others still land in a few large transactions.
    let mut todo = std::collections::VecDeque::new();
    todo.push_back(0..items.len());
    while let Some(range) = todo.pop_front() {
        let part = &items[range.clone()];
        let mut plan = write::Plan::new(state, &who).await?;
        plan.keep_batches();
        plan.reserve_ahead(&new_ids(part)).await?;
        let mut answers = Vec::with_capacity(part.len());
        for item in part {
            let mark = plan.mark();
            let r =
                bundle::run_bundle(state, &mut plan, item.bundle.clone(), "urn:dhp:import").await?;
            match (&r, &item.mark) {
                (Err(o), _) => {
                    plan.rollback(mark);
                    if !plan.take_refusal_audited() {
                        rest::audit_refused(state, &who, "import", "Bundle", None, o).await?;
                    }
                }
                // The mark lands in the transaction that writes the Bundle's data.
                (Ok(_), Some(key)) => plan.set_meta(key, crate::IMPORTED),
                (Ok(_), None) => {}
            }
            answers.push(r);
        }
        match plan.commit().await {
            Ok(()) => {
                for (i, a) in range.zip(answers) {
                    results[i] = Some(a);
                }
            }
            Err(StoreError::Conflict(why)) if range.len() == 1 => {
                results[range.start] = Some(Err(OperationOutcome::one(Issue::new(
                    IssueCode::Conflict,
                    format!("nothing was written: {why}"),
                ))));
            }
            Err(StoreError::Conflict(_)) => {
                let mid = range.start + range.len() / 2;
                todo.push_front(mid..range.end);
                todo.push_front(range.start..mid);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(OperationOutcome::one(Issue::new(
                    IssueCode::Exception,
                    "the Bundle was not processed",
                )))
            })
        })
        .collect())
}

/// New ids the Bundles of `items` will take, per kind: one reservation each for all.
fn new_ids(items: &[crate::Import]) -> std::collections::HashMap<String, i64> {
    let mut counts: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    for item in items {
        for e in item
            .bundle
            .get("entry")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if e.pointer("/request/method").and_then(Value::as_str) == Some("POST") {
                if let Some(kind) = e.pointer("/resource/resourceType").and_then(Value::as_str) {
                    *counts.entry(kind.to_string()).or_default() += 1;
                    if kind == "Patient" {
                        *counts.entry("Household".to_string()).or_default() += 1;
                    }
                }
            }
        }
    }
    counts.retain(|k, _| write::WRITABLE.contains(&k.as_str()) || k == "Household");
    counts
}

fn system_principal(client: &str) -> Principal {
    Principal {
        username: client.to_string(),
        role: dhp_core::access::Role::System,
        org_id: None,
        practitioner_id: None,
        resident_id: None,
    }
}

/// See [`crate::import_resources`].
pub(crate) async fn import_resources(
    state: &AppState,
    client: &str,
    resources: Vec<Value>,
    mark: Option<(&str, &str)>,
) -> Result<Result<usize, (usize, OperationOutcome)>, AppError> {
    let who = system_principal(client);
    let mut plan = write::Plan::new(state, &who).await?;
    if let Some((key, value)) = mark {
        plan.set_meta(key, value);
    }
    let n = resources.len();
    for (i, r) in resources.into_iter().enumerate() {
        let kind = r
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let id = r
            .get("id")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<Id>().ok());
        let Some(id) = id.filter(|n| *n > 0) else {
            return Ok(Err((
                i,
                OperationOutcome::one(Issue::at(
                    IssueCode::Required,
                    format!("{kind}.id"),
                    "a bulk import keeps the source ids: each resource needs a numeric id",
                )),
            )));
        };
        match plan.create_with_id(&kind, id, r).await {
            Ok(_) => {}
            Err(write::Refusal::Outcome(o)) => return Ok(Err((i, o))),
            Err(write::Refusal::Failed(e)) => return Err(e),
        }
    }
    match plan.commit().await {
        Ok(()) => Ok(Ok(n)),
        Err(StoreError::Conflict(why)) => Ok(Err((
            0,
            OperationOutcome::one(Issue::new(
                IssueCode::Conflict,
                format!("nothing was written: {why}"),
            )),
        ))),
        Err(e) => Err(e.into()),
    }
}

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", post(bundle::bundle))
        .route("/metadata", get(metadata))
        .route("/AuditEvent", get(audit_search))
        .route("/$export", get(bulk::kick_off_system))
        .route("/Patient/$export", get(bulk::kick_off_patients))
        .route("/Condition/$report", post(case_report))
        .route("/Appointment/$find", get(scheduling::find_op))
        .route("/Appointment/$book", post(scheduling::book_op))
        .route("/Appointment/$hold", post(scheduling::hold_op))
        .route("/Task/{id}", get(read::read_task).put(referral::update))
        .route(
            "/$export-status/{id}",
            get(bulk::status).delete(bulk::cancel),
        )
        .route("/$export-file/{id}/{name}", get(bulk::file))
        .route(
            "/{resource_type}",
            get(search::search_get)
                .post(rest::create)
                .put(rest::conditional_update),
        )
        .route("/{resource_type}/_search", post(search::search_post))
        .route(
            "/{resource_type}/{id}",
            get(read::read).put(rest::update).delete(rest::delete),
        )
        .route("/{resource_type}/{id}/_history", get(rest::history))
        .route("/{resource_type}/{id}/$everything", get(search::everything))
        .route("/{resource_type}/{id}/_history/{vid}", get(read::vread))
        .fallback(not_supported)
}

/// The FHIR face of every answer under `/fhir`: a request for a format the server does
/// not speak (XML) is answered `406`, and the plain answers the HTTP layers give on
/// their own (`405` method, `413` body too large, `415`) become `OperationOutcome`s.
/// Layered outside the body limit, so that its `413` is answered in FHIR's terms too.
pub(crate) async fn negotiate(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if req.uri().path().starts_with("/api") {
        // The JSON API's face of the same plain answers: `{"error", "field"}`.
        let method = req.method().clone();
        let res = next.run(req).await;
        let json = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("application/json"));
        let why = match res.status().as_u16() {
            _ if json => return res,
            405 => format!("{method} is not a method this URL takes"),
            413 => format!(
                "the body is larger than this server takes ({} bytes)",
                crate::BODY_LIMIT
            ),
            415 => "send JSON (Content-Type: application/json)".to_string(),
            _ => return res,
        };
        let mut out = crate::context::Refusal::new(res.status(), "body", why).api();
        if let Some(allow) = res.headers().get(header::ALLOW) {
            out.headers_mut().insert(header::ALLOW, allow.clone());
        }
        return out;
    }
    if !req.uri().path().starts_with("/fhir") {
        return next.run(req).await;
    }
    let format = req.uri().query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "_format")
            .map(|(_, v)| v.to_ascii_lowercase())
    });
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    let json_format = |f: &str| f == "json" || f.contains("json");
    let wants_other = match (&format, &accept) {
        (Some(f), _) => !json_format(f),
        (None, Some(a)) => !a
            .split(',')
            .map(|m| m.split(';').next().unwrap_or_default().trim())
            .any(|m| m.contains("json") || m == "*/*" || m == "application/*" || m.is_empty()),
        (None, None) => false,
    };
    if wants_other {
        return outcome(
            OperationOutcome::one(Issue::new(
                IssueCode::NotSupported,
                format!(
                    "this server answers JSON only (application/fhir+json); asked for {}",
                    format.or(accept).unwrap_or_default()
                ),
            ))
            .with_status(406),
        );
    }
    let method = req.method().clone();
    let res = next.run(req).await;
    let status = res.status();
    let is_fhir = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with(FHIR_JSON));
    if is_fhir || !matches!(status.as_u16(), 405 | 413 | 415) {
        return res;
    }
    let text = match status.as_u16() {
        405 => format!("{method} is not an interaction this URL supports"),
        413 => format!(
            "the body is larger than this server takes ({} bytes)",
            crate::BODY_LIMIT
        ),
        _ => "send FHIR JSON (application/fhir+json)".to_string(),
    };
    let mut out = outcome(
        OperationOutcome::one(Issue::new(
            if status.as_u16() == 413 {
                IssueCode::Invalid
            } else {
                IssueCode::NotSupported
            },
            text,
        ))
        .with_status(status.as_u16()),
    );
    if let Some(allow) = res.headers().get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    out
}

fn fhir_json(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, FHIR_JSON)],
        body.to_string(),
    )
        .into_response()
}

fn outcome(o: OperationOutcome) -> Response {
    let status = StatusCode::from_u16(o.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = fhir_json(status, &o.to_json());
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    res
}

fn issue(code: IssueCode, text: impl Into<String>) -> Response {
    outcome(OperationOutcome::one(Issue::new(code, text)))
}

/// The principal of a request, or the `OperationOutcome` that refuses it.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Principal, OperationOutcome> {
    let checked = match token::principal(&state.token_key, headers) {
        Ok((who, issued)) => state
            .revoked
            .check(&*state.store, &who.username, issued)
            .await
            .map(|()| who),
        Err(e) => Err(e),
    };
    checked.map_err(|e| {
        OperationOutcome::one(match e {
            TokenError::Missing => Issue::new(
                IssueCode::Login,
                "a bearer token is required: POST /auth/token",
            ),
            TokenError::Invalid(why) => Issue::new(IssueCode::Login, why),
        })
    })
}

/// The principal, or the response refusing a request without a valid token; the
/// attempt is audited (an unauthenticated attempt is a security event too).
pub(crate) async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
    action: &str,
    resource: &str,
) -> Result<Result<Principal, Response>, AppError> {
    match authenticate(state, headers).await {
        Ok(p) => Ok(Ok(p)),
        Err(refusal) => {
            audit::record(
                &*state.store,
                &Actor::unverified(""),
                action,
                resource,
                None,
                "unauthenticated",
                "no valid bearer token",
            )
            .await?;
            Ok(Err(outcome(refusal)))
        }
    }
}

/// `POST /fhir/Condition/$report`: a notifiable-disease case report from a clinical
/// system (see [`crate::surveillance::report_condition`]).
async fn case_report(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let who = match signed_in(&state, &headers, "create", "/fhir/Condition/$report").await? {
        Ok(p) => p,
        Err(r) => return Ok(r),
    };
    let condition: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return Ok(issue(IssueCode::Structure, format!("not JSON: {e}"))),
    };
    Ok(
        match crate::surveillance::report_condition(&state, &who, &condition).await? {
            Ok(parameters) => fhir_json(StatusCode::CREATED, &parameters),
            Err((path, why)) => outcome(crate::context::Refusal::bad(&path, why).outcome()),
        },
    )
}

async fn metadata(State(state): State<Arc<AppState>>) -> Response {
    let today = dhp_core::clock::today().to_string();
    let statement =
        capability::capability_statement(&fhir_base(&state), env!("CARGO_PKG_VERSION"), &today);
    fhir_json(StatusCode::OK, &statement)
}

async fn not_supported(method: Method, OriginalUri(uri): OriginalUri) -> Response {
    issue(
        IssueCode::NotSupported,
        format!(
            "{method} {} is not supported by this server; GET /fhir/metadata lists what is",
            uri.path()
        ),
    )
}

/// The resident a resident-owned row belongs to (`None` for registry rows).
pub(crate) fn owner(row: &Batch) -> Option<Id> {
    row.residents
        .first()
        .map(|r| r.id)
        .or_else(|| row.encounters.first().map(|r| r.resident_id))
        .or_else(|| row.conditions.first().map(|r| r.resident_id))
        .or_else(|| row.observations.first().map(|r| r.resident_id))
        .or_else(|| row.immunizations.first().map(|r| r.resident_id))
        .or_else(|| row.imaging_studies.first().map(|r| r.resident_id))
        .or_else(|| row.contracts.first().map(|r| r.resident_id))
}

/// A core row as its FHIR resource, version 1 (generated, never written through the
/// API), masked for a reader whose role does not need the identity number.
pub(crate) async fn core_json(
    state: &AppState,
    kind: &str,
    row: &Batch,
    masked: bool,
) -> Result<Value, StoreError> {
    let store = &*state.store;
    let place = state.place().await?;
    let mut body = if let Some(resident) = row.residents.first() {
        let household = store.household(resident.household_id).await?;
        patient::to_fhir(
            resident,
            &patient::PatientContext {
                address_line: Some(&household.address),
                city: &place.city,
                district: &place.district,
                masked,
            },
        )
    } else if kind == "PractitionerRole" {
        row.practitioners
            .first()
            .map(resources::practitioner_role)
            .unwrap_or_default()
    } else {
        row.organisations
            .first()
            .map(resources::organization)
            .or_else(|| row.practitioners.first().map(resources::practitioner))
            .or_else(|| row.encounters.first().map(resources::encounter))
            .or_else(|| row.conditions.first().map(resources::condition))
            .or_else(|| {
                row.observations
                    .first()
                    .map(resources::observation_resource)
            })
            .or_else(|| row.immunizations.first().map(resources::immunization))
            .or_else(|| row.imaging_studies.first().map(resources::imaging_study))
            .or_else(|| row.contracts.first().map(resources::care_team))
            .unwrap_or_default()
    };
    let mut meta = body
        .get("meta")
        .cloned()
        .unwrap_or_else(|| serde_json::json!({}));
    meta["versionId"] = serde_json::json!("1");
    meta["lastUpdated"] = serde_json::json!(place.generated);
    body["meta"] = meta;
    Ok(body)
}

/// A stored version as the reader may see it.
fn stored_json(s: &StoredResource, masked: bool) -> Option<Value> {
    let mut v: Value = serde_json::from_str(s.json.as_deref()?).ok()?;
    if masked && s.kind == "Patient" {
        patient::mask(&mut v);
    }
    Some(v)
}

/// The headers of a version: `ETag` and `Last-Modified`.
fn version_headers(res: &mut Response, version: i64, last_updated: &str) {
    if let Ok(v) = header::HeaderValue::from_str(&format!("W/\"{version}\"")) {
        res.headers_mut().insert(header::ETAG, v);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(last_updated) {
        let http = t
            .with_timezone(&chrono::Utc)
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        if let Ok(v) = header::HeaderValue::from_str(&http) {
            res.headers_mut().insert(header::LAST_MODIFIED, v);
        }
    }
}

/// May `who` read the records of `resident`? A deleted resident's leftovers (versions,
/// tombstones) are for integrating systems only.
async fn read_decision(
    state: &AppState,
    who: &Principal,
    resident: Id,
) -> Result<dhp_core::access::Decision, StoreError> {
    match state
        .store
        .resident_access_facts(resident, dhp_core::clock::today())
        .await
    {
        Ok(facts) => {
            let org = crate::context::org_facts(state, who).await?;
            Ok(may_read_resident(who, org.as_ref(), &facts))
        }
        Err(StoreError::NotFound(_)) if who.role == dhp_core::access::Role::System => {
            Ok(dhp_core::access::Decision::Allow("integrating system"))
        }
        Err(StoreError::NotFound(_)) => Ok(dhp_core::access::Decision::Deny(
            "the resident's record was deleted",
        )),
        Err(e) => Err(e),
    }
}

/// A generated record's version: 1, last updated when the district was generated.
pub(crate) fn generated_meta(v: &mut Value, place: &crate::Place) {
    let mut meta = v
        .get("meta")
        .cloned()
        .unwrap_or_else(|| serde_json::json!({}));
    meta["versionId"] = serde_json::json!("1");
    meta["lastUpdated"] = serde_json::json!(place.generated);
    v["meta"] = meta;
}

/// Is a resource of this type a resident's data (audited, scoped)?
pub(crate) fn resident_data(kind: &str) -> bool {
    dhp_fhir::types::resident_data(kind)
}

/// The base of every link an answer carries: the configured base URL, never the
/// request's `Host`.
fn fhir_base(state: &AppState) -> String {
    format!("{}/fhir", state.config.base())
}

/// `GET /fhir/AuditEvent?patient=…&_count=…`: the audit log, newest first, for managers
/// and integrating systems. Reading it is audited too.
async fn audit_search(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let store = &*state.store;
    // An attempt without a valid token is audited too.
    let who = match signed_in(&state, &headers, "search", "AuditEvent").await? {
        Ok(p) => p,
        Err(res) => return Ok(res),
    };
    let actor = Actor::from(&who);
    if !may_read_audit_log(who.role) {
        audit::record(
            store,
            &actor,
            "search",
            "AuditEvent",
            None,
            "denied",
            "role may not read the audit log",
        )
        .await?;
        return Ok(issue(
            IssueCode::Forbidden,
            "AuditEvent: only managers and integrating systems read the audit log",
        ));
    }
    let mut q = dhp_store::AuditQuery {
        limit: 50,
        ..Default::default()
    };
    let mut issues = Vec::new();
    let mut kept: Vec<(&str, &str)> = Vec::new();
    for (k, v) in &pairs {
        match k.as_str() {
            "patient" if q.resident.is_some() => issues.push(Issue::at(
                IssueCode::Invalid,
                "AuditEvent?patient",
                "give one patient (one record's log at a time)",
            )),
            "patient" => match v.trim_start_matches("Patient/").parse::<i64>() {
                Ok(id) => {
                    q.resident = Some(id);
                    kept.push((k, v));
                }
                Err(_) => issues.push(Issue::at(
                    IssueCode::Invalid,
                    "AuditEvent?patient",
                    format!("{v:?} is not a Patient reference"),
                )),
            },
            "date" => match dhp_fhir::search::instant_conditions(v) {
                Ok(c) => {
                    q.recorded.extend(c);
                    kept.push((k, v));
                }
                Err(why) => issues.push(Issue::at(IssueCode::Invalid, "AuditEvent?date", why)),
            },
            "_count" => match v.parse::<i64>() {
                Ok(n) if (1..=500).contains(&n) => {
                    q.limit = n;
                    kept.push((k, v));
                }
                _ => issues.push(Issue::at(
                    IssueCode::Invalid,
                    "AuditEvent?_count",
                    "must be a whole number from 1 to 500",
                )),
            },
            // The place after which the page starts, as the previous page's `next`
            // link gives it (the newest-first order never skips nor repeats an
            // entry, however many are written meanwhile).
            "_page" if q.before.is_some() => issues.push(Issue::at(
                IssueCode::Invalid,
                "AuditEvent?_page",
                "give one page",
            )),
            "_page" => match dhp_store::AuditQuery::parse_place(v) {
                Some(at) => q.before = Some(at),
                None => issues.push(Issue::at(
                    IssueCode::Invalid,
                    "AuditEvent?_page",
                    "is not a page of this search: follow the link the previous page gives",
                )),
            },
            other => issues.push(Issue::at(
                IssueCode::NotSupported,
                format!("AuditEvent?{other}"),
                format!(
                    "unknown search parameter {other:?}; AuditEvent supports patient, date, _count"
                ),
            )),
        }
    }
    if !issues.is_empty() {
        let o = OperationOutcome::new(issues).with_status(400);
        rest::audit_refused(&state, &who, "search", "AuditEvent", q.resident, &o).await?;
        return Ok(outcome(o));
    }
    let patient = q.resident;
    // One more than the page says whether a next page is there.
    let mut events = store
        .audit_page(&dhp_store::AuditQuery {
            limit: q.limit + 1,
            ..q.clone()
        })
        .await?;
    let more = events.len() as i64 > q.limit;
    events.truncate(q.limit as usize);
    audit::record(
        store,
        &actor,
        "search",
        "AuditEvent",
        patient,
        "success",
        "audit log review",
    )
    .await?;
    let base = fhir_base(&state);
    let entries: Vec<Value> = events
        .iter()
        .map(|e| {
            let resource = dhp_fhir::audit::audit_event(&dhp_fhir::audit::AuditEntry {
                id: &e.id,
                recorded: e.recorded,
                username: &e.username,
                role: &e.role,
                action: &e.action,
                resource: &e.resource,
                outcome: &e.outcome,
                detail: &e.detail,
            });
            serde_json::json!({
                "fullUrl": format!("{base}/AuditEvent/{}", e.id),
                "resource": resource,
                "search": { "mode": "match" },
            })
        })
        .collect();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(kept)
        .finish();
    let at = |page: Option<String>| {
        let mut url = format!("{base}/AuditEvent");
        let mut sep = '?';
        if !query.is_empty() {
            url = format!("{url}?{query}");
            sep = '&';
        }
        match page {
            Some(p) => format!("{url}{sep}_page={p}"),
            None => url,
        }
    };
    let mut links = vec![serde_json::json!({
        "relation": "self",
        "url": at(pairs.iter().find(|(k, _)| k == "_page").map(|(_, v)| v.clone())),
    })];
    if let (true, Some(last)) = (more, events.last()) {
        links.push(serde_json::json!({
            "relation": "next",
            "url": at(Some(last.place())),
        }));
    }
    let mut bundle = serde_json::json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
    });
    if !entries.is_empty() {
        bundle["entry"] = Value::Array(entries);
    }
    Ok(fhir_json(StatusCode::OK, &bundle))
}
