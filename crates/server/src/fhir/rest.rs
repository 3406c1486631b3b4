//! The write interactions and the history: create (with `If-None-Exist`), update (with
//! `If-Match`), conditional update, delete, `_history`, and batch / transaction Bundles.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use dhp_core::access::Scope;
use dhp_core::Id;
use dhp_fhir::search::parse_patient_search;
use dhp_fhir::{Issue, IssueCode, OperationOutcome};
use dhp_store::{core_table, Guard, ResidentFilter, StoreError};
use serde_json::{json, Value};
use std::sync::Arc;

use super::search::resident_filter;
use super::write::{parse_etag, Plan, Refusal, Written};
use super::{fhir_base, fhir_json, find, outcome, owner, signed_in, Found};
use crate::audit::{self, Actor};
use crate::{AppError, AppState};

/// The resource type a type-level request addresses (`/Patient` → `Patient`); the
/// same handler serves routes with and without a path parameter.
pub(crate) fn type_of(uri: &Uri) -> String {
    uri.path()
        .trim_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Read a request body as JSON, or the outcome that refuses it.
pub(crate) fn body_json(body: &Bytes) -> Result<Value, OperationOutcome> {
    serde_json::from_slice::<Value>(body).map_err(|e| {
        OperationOutcome::one(Issue::new(
            IssueCode::Structure,
            format!("the body is not JSON: {e}"),
        ))
        .with_status(400)
    })
}

pub(crate) fn prefers_minimal(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("return=minimal"))
}

/// The response to one write.
pub(crate) fn written(base: &str, w: &Written, headers: &HeaderMap) -> Response {
    let status = StatusCode::from_u16(w.status).unwrap_or(StatusCode::OK);
    let mut res = match (&w.resource, prefers_minimal(headers) || w.status == 204) {
        (Some(body), false) => fhir_json(status, body),
        _ => status.into_response(),
    };
    let location = format!("{base}/{}/{}/_history/{}", w.kind, w.id, w.version);
    if let Ok(v) = header::HeaderValue::from_str(&location) {
        if w.status == 201 {
            res.headers_mut().insert(header::LOCATION, v.clone());
        }
        res.headers_mut().insert(header::CONTENT_LOCATION, v);
    }
    super::version_headers(&mut res, w.version, &w.last_updated);
    res
}

/// Who tries which write, for the audit row of its refusal: every refused write is
/// one (a refusal of scope is logged where it is decided, with the resident).
pub(crate) struct Attempt<'a> {
    pub(crate) state: &'a AppState,
    pub(crate) who: dhp_core::access::Principal,
    pub(crate) action: &'static str,
    pub(crate) resource: String,
    /// The resident the write names, once its body is read: a refused attempt on a
    /// resident's record is logged against them.
    pub(crate) resident: Option<Id>,
}

impl Attempt<'_> {
    /// Audit the refusal and answer it.
    pub(crate) async fn refuse(&self, o: OperationOutcome) -> Result<Response, AppError> {
        audit_refused(
            self.state,
            &self.who,
            self.action,
            &self.resource,
            self.resident,
            &o,
        )
        .await?;
        Ok(outcome(o))
    }

    /// Answer a refusal met while planning or committing (audited unless `plan`
    /// logged it already).
    pub(crate) async fn refused(
        &self,
        plan: Option<&Plan<'_>>,
        r: Refusal,
    ) -> Result<Response, AppError> {
        match r {
            Refusal::Outcome(o) if plan.is_some_and(Plan::take_refusal_audited) => Ok(outcome(o)),
            Refusal::Outcome(o) => self.refuse(o).await,
            Refusal::Failed(e) => Err(e),
        }
    }
}

/// The audit row of a refused write: the answer's status and the elements at fault,
/// never the values sent (a wrong identity number is still a person's).
pub(crate) async fn audit_refused(
    state: &AppState,
    who: &dhp_core::access::Principal,
    action: &str,
    resource: &str,
    resident: Option<Id>,
    o: &OperationOutcome,
) -> Result<(), AppError> {
    let status = o.http_status();
    let word = match status {
        400 | 422 => "invalid",
        401 => "unauthenticated",
        403 => "denied",
        404 => "not-found",
        409 | 412 => "conflict",
        _ => "refused",
    };
    let mut at: Vec<&str> = o
        .issues
        .iter()
        .map(|i| i.expression.as_deref().unwrap_or(i.code.as_str()))
        .collect();
    at.dedup();
    let detail = format!("{status}: {}", at.join(", "));
    audit::record(
        &*state.store,
        &Actor::from(who),
        action,
        resource,
        resident,
        word,
        &detail,
    )
    .await?;
    Ok(())
}

/// The resident the stored record `kind/id` belongs to, if there is one.
async fn stored_owner(
    state: &AppState,
    who: &dhp_core::access::Principal,
    kind: &str,
    id: &str,
) -> Result<Option<Id>, AppError> {
    let Ok(n) = id.parse::<Id>() else {
        return Ok(None);
    };
    match Plan::new(state, who).await?.owner(kind, n).await {
        Ok(owner) => Ok(owner),
        Err(Refusal::Failed(e)) => Err(e),
        Err(Refusal::Outcome(_)) => Ok(None),
    }
}

/// The resident a written resource names (its subject, patient, `for` or a
/// participant; a Patient its own id), for the audit row of a refused write.
pub(crate) fn named_resident(kind: &str, body: &Value) -> Option<Id> {
    dhp_fhir::types::resident_named(kind, body)
}

/// A store conflict at commit (a version moved, an id taken, a record still referred
/// to) answers 409 and changes nothing.
pub(crate) fn commit_refusal(e: StoreError) -> Refusal {
    match e {
        // The one conflict at commit that names a field: two writers of one UID.
        StoreError::Conflict(why) if why == dhp_store::STUDY_UID_TAKEN => {
            Refusal::Outcome(OperationOutcome::one(Issue::at(
                IssueCode::Conflict,
                "ImagingStudy.identifier",
                format!("nothing was written: {why}"),
            )))
        }
        StoreError::Conflict(why) => Refusal::Outcome(OperationOutcome::one(Issue::new(
            IssueCode::Conflict,
            format!("nothing was written: {why}"),
        ))),
        other => Refusal::Failed(other.into()),
    }
}

/// A conditional query as a resident filter (`None`: it can match nobody).
pub(crate) async fn condition(
    state: &AppState,
    kind: &str,
    query: &str,
) -> Result<Result<Option<ResidentFilter>, Refusal>, AppError> {
    if kind != "Patient" {
        return Ok(Err(Refusal::Outcome(
            OperationOutcome::one(Issue::new(
                IssueCode::NotSupported,
                format!("conditional interactions are supported for Patient (its search parameters), not {kind}"),
            ))
            .with_status(400),
        )));
    }
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.trim_start_matches('?').as_bytes())
            .into_owned()
            .collect();
    if pairs.is_empty() {
        return Ok(Err(Refusal::Outcome(
            OperationOutcome::one(Issue::new(IssueCode::Invalid, "the condition is empty"))
                .with_status(400),
        )));
    }
    let q = match parse_patient_search(&pairs, false) {
        Ok(q) => q,
        Err(issues) => {
            return Ok(Err(Refusal::Outcome(
                OperationOutcome::new(issues).with_status(400),
            )))
        }
    };
    if q.impossible {
        return Ok(Ok(None));
    }
    Ok(Ok(Some(resident_filter(
        &q,
        &state.place().await?.generated,
    ))))
}

/// Patients matching a conditional query within `scope` (at most two: the count
/// decides).
pub(crate) async fn matches(
    state: &AppState,
    kind: &str,
    query: &str,
    scope: &Scope,
) -> Result<Result<Vec<Id>, Refusal>, AppError> {
    let filter = match condition(state, kind, query).await? {
        Ok(Some(f)) => f,
        Ok(None) => return Ok(Ok(Vec::new())),
        Err(r) => return Ok(Err(r)),
    };
    let (found, _) = state
        .store
        .search_residents(&filter, scope, dhp_core::clock::today(), 2, 0)
        .await?;
    Ok(Ok(found.into_iter().map(|r| r.id).collect()))
}

/// `POST /fhir/{type}`: create; with `If-None-Exist`, only when nothing matches.
pub async fn create(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let kind = type_of(&uri);
    let who = match signed_in(&state, &headers, "create", &kind).await? {
        Ok(p) => p,
        Err(res) => return Ok(res),
    };
    let mut at = Attempt {
        state: &state,
        who: who.clone(),
        action: "create",
        resource: kind.clone(),
        resident: None,
    };
    let body = match body_json(&body) {
        Ok(v) => v,
        Err(o) => return at.refuse(o).await,
    };
    at.resident = named_resident(&kind, &body);
    // A referral is made by the referral service, not kept as received.
    if kind == "ServiceRequest" && dhp_fhir::input::claims_referral(&body) {
        return super::referral::create(&at, &body).await;
    }
    let base = fhir_base(&state);
    // The condition as sent (UTF-8 too: a name in Chinese need not be percent-encoded);
    // a condition that cannot be read is refused, never ignored.
    let cond = match headers
        .get("if-none-exist")
        .map(|v| std::str::from_utf8(v.as_bytes()))
    {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(_)) => {
            return at
                .refuse(
                    OperationOutcome::one(Issue::new(
                        IssueCode::Invalid,
                        "If-None-Exist is not UTF-8 text",
                    ))
                    .with_status(400),
                )
                .await
        }
    };
    let Some(cond) = cond else {
        let mut plan = Plan::new(&state, &who).await?;
        let w = match plan.create(&kind, body).await {
            Ok(w) => w,
            Err(r) => return at.refused(Some(&plan), r).await,
        };
        if let Err(e) = plan.commit().await {
            return at.refused(None, commit_refusal(e)).await;
        }
        return Ok(written(&base, &w, &headers));
    };
    // Conditional create: who may not write learns nothing of any match; the match is
    // looked for in the caller's own read scope only; and the search and the create
    // are one transaction (the store's guard), so concurrent creates make one record.
    let mut plan = Plan::new(&state, &who).await?;
    let scope = plan.read_scope();
    let filter = match condition(&state, &kind, cond).await? {
        Err(r) => return at.refused(Some(&plan), r).await,
        Ok(f) => f,
    };
    if let Some(filter) = &filter {
        let (found, _) = state
            .store
            .search_residents(filter, &scope, dhp_core::clock::today(), 2, 0)
            .await?;
        if found.len() > 1 {
            return at
                .refuse(
                    OperationOutcome::one(Issue::new(
                        IssueCode::Conflict,
                        format!("If-None-Exist {cond:?} matches more than one {kind}"),
                    ))
                    .with_status(412),
                )
                .await;
        }
        if let Some(r) = found.first() {
            return exists(&state, &headers, &kind, r.id).await;
        }
    }
    let w = match plan.create(&kind, body).await {
        Ok(w) => w,
        Err(r) => return at.refused(Some(&plan), r).await,
    };
    if let Some(filter) = filter {
        plan.guard(Guard::NoResident {
            filter: Box::new(filter),
            scope,
            today: dhp_core::clock::today(),
        });
    }
    match plan.commit().await {
        Ok(()) => {}
        // Another create of the same person committed first: theirs is the one.
        Err(StoreError::Exists(id)) => return exists(&state, &headers, &kind, id).await,
        Err(e) => return at.refused(None, commit_refusal(e)).await,
    }
    Ok(written(&base, &w, &headers))
}

/// The answer to a conditional create that found its resource (in the caller's
/// scope): `200` with the resource and its location, as the specification says; the
/// read is audited.
pub(crate) async fn exists(
    state: &AppState,
    headers: &HeaderMap,
    kind: &str,
    id: Id,
) -> Result<Response, AppError> {
    let mut res = super::read::read_version(state, headers, kind, &id.to_string(), None).await?;
    if res.status() == StatusCode::OK {
        if let Ok(v) = header::HeaderValue::from_str(&format!("{}/{kind}/{id}", fhir_base(state))) {
            res.headers_mut().insert(header::LOCATION, v);
        }
    }
    Ok(res)
}

/// `PUT /fhir/{type}/{id}`: update (version-checked with `If-Match`).
pub async fn update(
    State(state): State<Arc<AppState>>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let resource = format!("{kind}/{id}");
    let who = match signed_in(&state, &headers, "update", &resource).await? {
        Ok(p) => p,
        Err(res) => return Ok(res),
    };
    let mut at = Attempt {
        state: &state,
        who: who.clone(),
        action: "update",
        resource: resource.clone(),
        resident: None,
    };
    // A refused update is logged against the resident whose record it aims at, or
    // else the one its body names.
    let owner = stored_owner(&state, &who, &kind, &id).await?;
    at.resident = owner;
    let body = match body_json(&body) {
        Ok(v) => v,
        Err(o) => return at.refuse(o).await,
    };
    at.resident = owner.or_else(|| named_resident(&kind, &body));
    let Ok(n) = id.parse::<Id>() else {
        return at
            .refuse(OperationOutcome::one(Issue::new(
                IssueCode::NotFound,
                format!("{resource} does not exist (ids are numbers)"),
            )))
            .await;
    };
    let if_match = headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(|v| parse_etag(v).ok_or(v));
    let if_match = match if_match {
        Some(Err(v)) => {
            return at
                .refuse(
                    OperationOutcome::one(Issue::new(
                        IssueCode::Invalid,
                        format!("If-Match {v:?} is not a version ETag like W/\"3\""),
                    ))
                    .with_status(400),
                )
                .await
        }
        Some(Ok(v)) => Some(v),
        None => None,
    };
    let mut plan = Plan::new(&state, &who).await?;
    let w = match plan.update(&kind, n, body, if_match).await {
        Ok(w) => w,
        Err(r) => return at.refused(Some(&plan), r).await,
    };
    if let Err(e) = plan.commit().await {
        return at.refused(None, commit_refusal(e)).await;
    }
    Ok(written(&fhir_base(&state), &w, &headers))
}

/// `PUT /fhir/{type}?search`: conditional update — create when nothing matches,
/// update the one match, refuse several.
pub async fn conditional_update(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Result<Response, AppError> {
    let kind = type_of(&uri);
    let who = match signed_in(&state, &headers, "update", &kind).await? {
        Ok(p) => p,
        Err(res) => return Ok(res),
    };
    let mut at = Attempt {
        state: &state,
        who: who.clone(),
        action: "update",
        resource: kind.clone(),
        resident: None,
    };
    let mut body = match body_json(&body) {
        Ok(v) => v,
        Err(o) => return at.refuse(o).await,
    };
    at.resident = named_resident(&kind, &body);
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    let scope = Plan::new(&state, &who).await?.read_scope();
    let ids = match matches(&state, &kind, &query, &scope).await? {
        Ok(ids) => ids,
        Err(r) => return at.refused(None, r).await,
    };
    let mut plan = Plan::new(&state, &who).await?;
    let result = match ids.as_slice() {
        [] => {
            if let Some(o) = body.as_object_mut() {
                o.remove("id");
            }
            plan.create(&kind, body).await
        }
        [one] => {
            body["id"] = json!(one.to_string());
            plan.update(&kind, *one, body, None).await
        }
        _ => {
            return at
                .refuse(
                    OperationOutcome::one(Issue::new(
                        IssueCode::Conflict,
                        format!("the condition {query:?} matches more than one {kind}"),
                    ))
                    .with_status(412),
                )
                .await
        }
    };
    let w = match result {
        Ok(w) => w,
        Err(r) => return at.refused(Some(&plan), r).await,
    };
    if let Err(e) = plan.commit().await {
        return at.refused(None, commit_refusal(e)).await;
    }
    Ok(written(&fhir_base(&state), &w, &headers))
}

/// `DELETE /fhir/{type}/{id}`.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let resource = format!("{kind}/{id}");
    let who = match signed_in(&state, &headers, "delete", &resource).await? {
        Ok(p) => p,
        Err(res) => return Ok(res),
    };
    let at = Attempt {
        state: &state,
        who: who.clone(),
        action: "delete",
        resource: resource.clone(),
        resident: stored_owner(&state, &who, &kind, &id).await?,
    };
    let Ok(n) = id.parse::<Id>() else {
        return at
            .refuse(OperationOutcome::one(Issue::new(
                IssueCode::NotFound,
                format!("{resource} does not exist"),
            )))
            .await;
    };
    let mut plan = Plan::new(&state, &who).await?;
    let w = match plan.delete(&kind, n).await {
        Ok(w) => w,
        Err(r) => return at.refused(Some(&plan), r).await,
    };
    if let Err(e) = plan.commit().await {
        return at.refused(None, commit_refusal(e)).await;
    }
    Ok(written(&fhir_base(&state), &w, &headers))
}

/// `GET /fhir/{type}/{id}/_history`: every version, newest first.
pub async fn history(
    State(state): State<Arc<AppState>>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let resource = format!("{kind}/{id}/_history");
    if !dhp_fhir::capability::supports(&kind, "history-instance") {
        return Ok(outcome(OperationOutcome::one(Issue::new(
            IssueCode::NotSupported,
            format!("the history of {kind} is not supported by this server; GET /fhir/metadata lists what is"),
        ))));
    }
    let table = core_table(&kind);
    let who = match signed_in(&state, &headers, "history", &resource).await? {
        Ok(p) => p,
        Err(res) => return Ok(res),
    };
    let store = &*state.store;
    let actor = Actor::from(&who);
    let found = find(&state, &kind, table, &id).await?;
    let resident = match &found {
        Found::Stored(s) => s.resident_id,
        Found::Core(row) => owner(row),
        // A referral's request (the pool's own types keep no history: the statement
        // says so).
        Found::Pool(_, r) => *r,
        Found::Nothing => {
            audit::record(
                store,
                &actor,
                "history",
                &resource,
                None,
                "not-found",
                "no such record",
            )
            .await?;
            return Ok(outcome(OperationOutcome::one(Issue::new(
                IssueCode::NotFound,
                format!("{kind}/{id} does not exist"),
            ))));
        }
    };
    if let Some(r) = resident {
        let decision = super::read_decision(&state, &who, r).await?;
        if !decision.allowed() {
            audit::record(
                store,
                &actor,
                "history",
                &resource,
                Some(r),
                "denied",
                decision.reason(),
            )
            .await?;
            // A resident learns no more of another's record than of none.
            if who.role == dhp_core::access::Role::Resident {
                return Ok(outcome(OperationOutcome::one(Issue::new(
                    IssueCode::NotFound,
                    format!("{kind}/{id} does not exist"),
                ))));
            }
            return Ok(outcome(OperationOutcome::one(Issue::new(
                IssueCode::Forbidden,
                format!("{resource}: {}", decision.reason()),
            ))));
        }
    }
    let masked = !who.role.sees_full_identity();
    let base = fhir_base(&state);
    let mut entries = Vec::new();
    match &found {
        Found::Core(row) => {
            let body = super::core_json(&state, &kind, row, masked).await?;
            entries.push(history_entry(
                &base,
                &kind,
                &id,
                1,
                &state.place().await?.generated,
                Some(body),
                true,
            ));
        }
        Found::Stored(s) => {
            let versions = store.resource_versions(&kind, s.id).await?;
            let oldest = versions.last().map_or(1, |v| v.version_id);
            for v in &versions {
                let body = super::stored_json(v, masked);
                entries.push(history_entry(
                    &base,
                    &kind,
                    &id,
                    v.version_id,
                    &v.last_updated,
                    body,
                    v.version_id == oldest,
                ));
            }
        }
        // A referral's request: its current version (the referral keeps its steps,
        // not earlier renderings).
        Found::Pool(body, _) => {
            let version = body["meta"]["versionId"]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            let updated = body["meta"]["lastUpdated"].as_str().unwrap_or_default();
            entries.push(history_entry(
                &base,
                &kind,
                &id,
                version,
                updated,
                Some(body.clone()),
                version == 1,
            ));
        }
        Found::Nothing => {}
    }
    if resident.is_some() {
        audit::record(
            store,
            &actor,
            "history",
            &resource,
            resident,
            "success",
            "version history",
        )
        .await?;
    }
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "history",
        "total": entries.len(),
        "link": [{ "relation": "self", "url": format!("{base}/{resource}") }],
        "entry": entries,
    });
    Ok(fhir_json(StatusCode::OK, &bundle))
}

pub(crate) fn history_entry(
    base: &str,
    kind: &str,
    id: &str,
    version: i64,
    last_updated: &str,
    body: Option<Value>,
    first: bool,
) -> Value {
    let (method, url, status) = match (&body, first) {
        (None, _) => ("DELETE", format!("{kind}/{id}"), "204 No Content"),
        (Some(_), true) => ("POST", kind.to_string(), "201 Created"),
        (Some(_), false) => ("PUT", format!("{kind}/{id}"), "200 OK"),
    };
    let mut e = json!({
        "fullUrl": format!("{base}/{kind}/{id}"),
        "request": { "method": method, "url": url },
        "response": {
            "status": status,
            "etag": format!("W/\"{version}\""),
            "lastModified": last_updated,
        },
    });
    if let Some(b) = body {
        e["resource"] = b;
    }
    e
}
