//! The write interactions and the history: create (with `If-None-Exist`), update (with
//! `If-Match`), conditional update, delete, `_history`, and batch / transaction Bundles.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::Local;
use dhp_core::access::Scope;
use dhp_core::Id;
use dhp_fhir::search::parse_patient_search;
use dhp_fhir::{Issue, IssueCode, OperationOutcome};
use dhp_store::{core_table, Guard, ResidentFilter, StoreError};
use serde_json::{json, Value};
use std::sync::Arc;

use super::search::resident_filter;
use super::write::{parse_etag, Plan, Refusal, Written, WRITABLE};
use super::{fhir_base, fhir_json, find, outcome, owner, signed_in, Found};
use crate::audit::{self, Actor};
use crate::{AppError, AppState};

/// The resource type a type-level request addresses (`/Patient` → `Patient`); the
/// same handler serves routes with and without a path parameter.
fn type_of(uri: &Uri) -> String {
    uri.path()
        .trim_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Read a request body as JSON, or the outcome that refuses it.
fn body_json(body: &Bytes) -> Result<Value, OperationOutcome> {
    serde_json::from_slice::<Value>(body).map_err(|e| {
        OperationOutcome::one(Issue::new(
            IssueCode::Structure,
            format!("the body is not JSON: {e}"),
        ))
        .with_status(400)
    })
}

fn prefers_minimal(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("return=minimal"))
}

/// The response to one write.
fn written(base: &str, w: &Written, headers: &HeaderMap) -> Response {
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
struct Attempt<'a> {
    state: &'a AppState,
    who: dhp_core::access::Principal,
    action: &'static str,
    resource: String,
}

impl Attempt<'_> {
    /// Audit the refusal and answer it.
    async fn refuse(&self, o: OperationOutcome) -> Result<Response, AppError> {
        audit_refused(self.state, &self.who, self.action, &self.resource, &o).await?;
        Ok(outcome(o))
    }

    /// Answer a refusal met while planning or committing (audited unless `plan`
    /// logged it already).
    async fn refused(&self, plan: Option<&Plan<'_>>, r: Refusal) -> Result<Response, AppError> {
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
        None,
        word,
        &detail,
    )
    .await?;
    Ok(())
}

/// A store conflict at commit (a version moved, an id taken, a record still referred
/// to) answers 409 and changes nothing.
fn commit_refusal(e: StoreError) -> Refusal {
    match e {
        StoreError::Conflict(why) => Refusal::Outcome(OperationOutcome::one(Issue::new(
            IssueCode::Conflict,
            format!("nothing was written: {why}"),
        ))),
        other => Refusal::Failed(other.into()),
    }
}

/// A conditional query as a resident filter (`None`: it can match nobody).
async fn condition(
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
async fn matches(
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
        .search_residents(&filter, scope, Local::now().date_naive(), 2, 0)
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
    let at = Attempt {
        state: &state,
        who: who.clone(),
        action: "create",
        resource: kind.clone(),
    };
    let body = match body_json(&body) {
        Ok(v) => v,
        Err(o) => return at.refuse(o).await,
    };
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
            .search_residents(filter, &scope, Local::now().date_naive(), 2, 0)
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
            today: Local::now().date_naive(),
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
async fn exists(
    state: &AppState,
    headers: &HeaderMap,
    kind: &str,
    id: Id,
) -> Result<Response, AppError> {
    let mut res = super::read_version(state, headers, kind, &id.to_string(), None).await?;
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
    let at = Attempt {
        state: &state,
        who: who.clone(),
        action: "update",
        resource: resource.clone(),
    };
    let body = match body_json(&body) {
        Ok(v) => v,
        Err(o) => return at.refuse(o).await,
    };
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
    let at = Attempt {
        state: &state,
        who: who.clone(),
        action: "update",
        resource: kind.clone(),
    };
    let mut body = match body_json(&body) {
        Ok(v) => v,
        Err(o) => return at.refuse(o).await,
    };
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

fn history_entry(
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

/// Every `reference` in `v`, rewritten through `map`.
fn rewrite_references(v: &mut Value, map: &HashMap<String, String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                if k == "reference" {
                    if let Some(to) = x.as_str().and_then(|s| map.get(s)) {
                        *x = json!(to);
                    }
                } else {
                    rewrite_references(x, map);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rewrite_references(x, map)),
        _ => {}
    }
}

/// Conditional references of a Bundle (`Organization?identifier=system|code`,
/// `Patient?identifier=system|value`), resolved to local ones.
async fn resolve_conditional(
    state: &AppState,
    reference: &str,
) -> Result<Option<String>, AppError> {
    let Some((kind, query)) = reference.split_once('?') else {
        return Ok(None);
    };
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let Some((_, ident)) = pairs.iter().find(|(k, _)| k == "identifier") else {
        return Ok(None);
    };
    let (system, value) = ident.split_once('|').unwrap_or(("", ident.as_str()));
    match kind {
        "Organization" if system.is_empty() || system == dhp_fhir::resources::ORG_CODE_SYSTEM => {
            let orgs = state.orgs().await?;
            Ok(orgs
                .values()
                .find(|o| o.code == value)
                .map(|o| format!("Organization/{}", o.id)))
        }
        "Patient" if system.is_empty() || system == dhp_fhir::RESIDENT_ID_SYSTEM => {
            match state.store.resident_by_identity(value).await {
                Ok(r) => Ok(Some(format!("Patient/{}", r.id))),
                Err(StoreError::NotFound(_)) => Ok(None),
                Err(e) => Err(e.into()),
            }
        }
        _ => Ok(None),
    }
}

/// Every conditional reference in `v`.
fn conditional_references(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                match (k.as_str(), x.as_str()) {
                    ("reference", Some(s)) if s.contains('?') => out.push(s.to_string()),
                    _ => conditional_references(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| conditional_references(x, out)),
        _ => {}
    }
}

/// One entry of a Bundle, as understood.
struct Entry {
    method: String,
    kind: String,
    id: Option<Id>,
    full_url: Option<String>,
    resource: Option<Value>,
    if_match: Option<i64>,
}

fn entry_issue(i: usize, rel: &str, text: impl std::fmt::Display) -> Issue {
    Issue::at(IssueCode::Invalid, format!("Bundle.entry[{i}].{rel}"), text)
}

/// Read the entries of a batch or transaction Bundle.
fn entries(bundle: &Value) -> Result<(bool, Vec<Entry>), Vec<Issue>> {
    let mut issues = Vec::new();
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(vec![Issue::at(
            IssueCode::Invalid,
            "Bundle.resourceType",
            "POST /fhir takes a Bundle",
        )]);
    }
    let transaction = match bundle.get("type").and_then(Value::as_str) {
        Some("transaction") => true,
        Some("batch") => false,
        other => {
            return Err(vec![Issue::at(
                IssueCode::Value,
                "Bundle.type",
                format!("{other:?}: POST /fhir takes a transaction or a batch"),
            )])
        }
    };
    let raw = bundle
        .get("entry")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::with_capacity(raw.len());
    for (i, e) in raw.into_iter().enumerate() {
        let method = e
            .pointer("/request/method")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let url = e
            .pointer("/request/url")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if !["POST", "PUT", "DELETE", "GET"].contains(&method.as_str()) {
            issues.push(entry_issue(
                i,
                "request.method",
                format!("{method:?} is not one of POST, PUT, DELETE, GET"),
            ));
            continue;
        }
        let path = url
            .split('?')
            .next()
            .unwrap_or_default()
            .trim_start_matches('/');
        let mut parts = path.split('/');
        let kind = parts.next().unwrap_or_default().to_string();
        let id = parts.next().map(|s| s.parse::<Id>());
        let id = match id {
            None => None,
            Some(Ok(n)) => Some(n),
            Some(Err(_)) => {
                issues.push(entry_issue(
                    i,
                    "request.url",
                    format!("{url:?}: ids are numbers"),
                ));
                continue;
            }
        };
        if kind.is_empty() {
            issues.push(entry_issue(i, "request.url", "is required"));
            continue;
        }
        if method != "POST" && id.is_none() {
            issues.push(entry_issue(
                i,
                "request.url",
                format!(
                    "{method} needs Type/id (conditional {method} in a Bundle is not supported)"
                ),
            ));
            continue;
        }
        let resource = e.get("resource").cloned();
        if matches!(method.as_str(), "POST" | "PUT") && resource.is_none() {
            issues.push(entry_issue(
                i,
                "resource",
                format!("{method} needs a resource"),
            ));
            continue;
        }
        let if_match = e
            .pointer("/request/ifMatch")
            .and_then(Value::as_str)
            .and_then(parse_etag);
        out.push(Entry {
            method,
            kind,
            id,
            full_url: e.get("fullUrl").and_then(Value::as_str).map(str::to_string),
            resource,
            if_match,
        });
    }
    if issues.is_empty() {
        Ok((transaction, out))
    } else {
        Err(issues)
    }
}

fn response_entry(base: &str, w: &Written) -> Value {
    let status = match w.status {
        201 => "201 Created",
        204 => "204 No Content",
        _ => "200 OK",
    };
    let mut r = json!({
        "response": {
            "status": status,
            "location": format!("{}/{}/_history/{}", w.kind, w.id, w.version),
            "etag": format!("W/\"{}\"", w.version),
            "lastModified": w.last_updated,
        }
    });
    if let Some(body) = &w.resource {
        r["fullUrl"] = json!(format!("{base}/{}/{}", w.kind, w.id));
        r["resource"] = body.clone();
    }
    r
}

fn failed_entry(o: &OperationOutcome) -> Value {
    json!({
        "response": {
            "status": format!("{}", o.http_status()),
            "outcome": o.to_json(),
        }
    })
}

/// `POST /fhir` with a transaction (all or nothing) or batch (each entry alone) Bundle.
pub async fn bundle(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let who = match signed_in(&state, &headers, "transaction", "Bundle").await? {
        Ok(p) => p,
        Err(res) => return Ok(res),
    };
    let at = Attempt {
        state: &state,
        who: who.clone(),
        action: "transaction",
        resource: "Bundle".to_string(),
    };
    let body = match body_json(&body) {
        Ok(v) => v,
        Err(o) => return at.refuse(o).await,
    };
    match process_bundle(&state, &who, body, &fhir_base(&state)).await? {
        Ok(answer) => Ok(fhir_json(StatusCode::OK, &answer)),
        Err(o) => Ok(outcome(o)),
    }
}

/// Carry out a transaction or batch Bundle for `who`: the response Bundle, or the
/// outcome refusing the whole of it (a transaction writes nothing then).
pub async fn process_bundle(
    state: &AppState,
    who: &dhp_core::access::Principal,
    body: Value,
    base: &str,
) -> Result<Result<Value, OperationOutcome>, AppError> {
    let mut plan = Plan::new(state, who).await?;
    let answer = match run_bundle(state, &mut plan, body, base).await? {
        Ok(a) => a,
        Err(o) => {
            if !plan.take_refusal_audited() {
                audit_refused(state, who, "transaction", "Bundle", &o).await?;
            }
            return Ok(Err(o));
        }
    };
    if let Err(e) = plan.commit().await {
        return match commit_refusal(e) {
            Refusal::Outcome(o) => {
                audit_refused(state, who, "transaction", "Bundle", &o).await?;
                Ok(Err(o))
            }
            Refusal::Failed(e) => Err(e),
        };
    }
    Ok(Ok(answer))
}

/// Run a Bundle's entries into `plan`: a transaction's writes stay in the plan for the
/// caller to commit (with others, on import); a batch's entries commit one by one here
/// (on import, see [`Plan::batches_in_plan`], they stay in the plan too).
pub async fn run_bundle<'a>(
    state: &'a AppState,
    plan: &mut Plan<'a>,
    body: Value,
    base: &str,
) -> Result<Result<Value, OperationOutcome>, AppError> {
    let who = plan.who();
    let (transaction, mut list) = match entries(&body) {
        Ok(x) => x,
        Err(issues) => return Ok(Err(OperationOutcome::new(issues).with_status(400))),
    };
    // References inside the Bundle: urn:uuid full URLs of new resources get their ids
    // now (one reservation per type), conditional references are looked up.
    let mut map: HashMap<String, String> = HashMap::new();
    let mut assigned: Vec<Option<Id>> = vec![None; list.len()];
    let mut per_kind: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, e) in list.iter().enumerate() {
        if e.method == "POST" && WRITABLE.contains(&e.kind.as_str()) {
            per_kind.entry(e.kind.clone()).or_default().push(i);
        }
    }
    for (kind, idx) in &per_kind {
        let first = plan.take_ids(kind, idx.len() as i64).await?;
        for (k, &i) in idx.iter().enumerate() {
            let id = first + k as i64;
            assigned[i] = Some(id);
            if let Some(u) = &list[i].full_url {
                map.insert(u.clone(), format!("{kind}/{id}"));
            }
        }
    }
    let mut conditional = Vec::new();
    for e in &list {
        if let Some(r) = &e.resource {
            conditional_references(r, &mut conditional);
        }
    }
    conditional.sort();
    conditional.dedup();
    for c in conditional {
        match resolve_conditional(state, &c).await? {
            Some(local) => {
                map.insert(c, local);
            }
            None if transaction => {
                return Ok(Err(OperationOutcome::one(Issue::new(
                    IssueCode::NotFound,
                    format!("the conditional reference {c:?} matches nothing; nothing was written"),
                ))
                .with_status(404)))
            }
            None => {}
        }
    }
    for e in list.iter_mut() {
        if let Some(r) = e.resource.as_mut() {
            rewrite_references(r, &map);
        }
    }
    // FHIR's order of processing: deletes, creates, updates, reads.
    let rank = |m: &str| match m {
        "DELETE" => 0,
        "POST" => 1,
        "PUT" => 2,
        _ => 3,
    };
    let mut order: Vec<usize> = (0..list.len()).collect();
    order.sort_by_key(|&i| rank(&list[i].method));
    let mut results: Vec<Option<Value>> = vec![None; list.len()];
    let mut single = Plan::new(state, who).await?;
    // On import a batch's entries go into the caller's plan too, each left out alone
    // when refused: committed with the import's mark, nothing is written twice.
    let in_plan = transaction || plan.batches_in_plan();
    for i in order {
        let mark = plan.mark();
        let to: &mut Plan<'a> = if in_plan {
            &mut *plan
        } else {
            single = Plan::new(state, who).await?;
            &mut single
        };
        let e = &list[i];
        let step = match e.method.as_str() {
            "POST" => match assigned[i] {
                Some(id) => {
                    to.create_with_id(&e.kind, id, e.resource.clone().unwrap_or_default())
                        .await
                }
                None => {
                    to.create(&e.kind, e.resource.clone().unwrap_or_default())
                        .await
                }
            },
            "PUT" => {
                to.update(
                    &e.kind,
                    e.id.unwrap_or_default(),
                    e.resource.clone().unwrap_or_default(),
                    e.if_match,
                )
                .await
            }
            "DELETE" => to.delete(&e.kind, e.id.unwrap_or_default()).await,
            _ => Err(Refusal::Outcome(OperationOutcome::one(Issue::new(
                IssueCode::NotSupported,
                "GET entries are not supported in a Bundle here; read with GET /fhir/Type/id",
            )))),
        };
        let step = match step {
            Ok(w) if !in_plan => {
                match std::mem::replace(&mut single, Plan::new(state, who).await?)
                    .commit()
                    .await
                {
                    Ok(()) => Ok(w),
                    Err(e) => Err(commit_refusal(e)),
                }
            }
            other => other,
        };
        match step {
            Ok(w) => results[i] = Some(response_entry(base, &w)),
            Err(Refusal::Failed(e)) => return Err(e),
            Err(Refusal::Outcome(o)) if transaction => {
                // All or nothing: the first failure ends the transaction unwritten.
                let mut issues = o.issues.clone();
                for issue in &mut issues {
                    issue.diagnostics = format!(
                        "Bundle.entry[{i}] ({} {}): {}",
                        e.method, e.kind, issue.diagnostics
                    );
                }
                let status = o.http_status();
                return Ok(Err(OperationOutcome::new(issues).with_status(status)));
            }
            Err(Refusal::Outcome(o)) => {
                let audited = if in_plan {
                    plan.rollback(mark);
                    plan.take_refusal_audited()
                } else {
                    single.take_refusal_audited()
                };
                if !audited {
                    let action = match e.method.as_str() {
                        "POST" => "create",
                        "PUT" => "update",
                        "DELETE" => "delete",
                        _ => "read",
                    };
                    audit_refused(state, who, action, &e.kind, &o).await?;
                }
                results[i] = Some(failed_entry(&o));
            }
        }
    }
    let response = json!({
        "resourceType": "Bundle",
        "type": if transaction { "transaction-response" } else { "batch-response" },
        "entry": results.into_iter().map(Option::unwrap_or_default).collect::<Vec<_>>(),
    });
    Ok(Ok(response))
}
