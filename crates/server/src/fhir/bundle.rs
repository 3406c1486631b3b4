//! Batch and transaction Bundles (`POST /fhir`): entries read, conditional references
//! resolved, writes run into one plan.

use super::rest::*;
use super::write::{parse_etag, Plan, Refusal, Written, WRITABLE};
use super::{fhir_base, fhir_json, outcome, signed_in};
use crate::{AppError, AppState};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use dhp_core::Id;
use dhp_fhir::{Issue, IssueCode, OperationOutcome};
use dhp_store::StoreError;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Every `reference` in `v`, rewritten through `map`.
pub(crate) fn rewrite_references(v: &mut Value, map: &HashMap<String, String>) {
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
pub(crate) async fn resolve_conditional(
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
pub(crate) fn conditional_references(v: &Value, out: &mut Vec<String>) {
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
pub(crate) struct Entry {
    pub(crate) method: String,
    pub(crate) kind: String,
    pub(crate) id: Option<Id>,
    pub(crate) full_url: Option<String>,
    pub(crate) resource: Option<Value>,
    pub(crate) if_match: Option<i64>,
}

pub(crate) fn entry_issue(i: usize, rel: &str, text: impl std::fmt::Display) -> Issue {
    Issue::at(IssueCode::Invalid, format!("Bundle.entry[{i}].{rel}"), text)
}

/// Read the entries of a batch or transaction Bundle.
pub(crate) fn entries(bundle: &Value) -> Result<(bool, Vec<Entry>), Vec<Issue>> {
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

pub(crate) fn response_entry(base: &str, w: &Written) -> Value {
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

pub(crate) fn failed_entry(o: &OperationOutcome) -> Value {
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
        resident: None,
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
                audit_refused(state, who, "transaction", "Bundle", None, &o).await?;
            }
            return Ok(Err(o));
        }
    };
    if let Err(e) = plan.commit().await {
        return match commit_refusal(e) {
            Refusal::Outcome(o) => {
                audit_refused(state, who, "transaction", "Bundle", None, &o).await?;
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
    // A batch's refused entries count toward the bound on refused writes; once past
    // it, the rest are held back unread (one audit row for them, without a resident).
    let mut held_back = 0;
    for i in order {
        if !transaction && state.refusals.held(&who.username).is_some() {
            let o = OperationOutcome::one(Issue::new(
                IssueCode::Throttled,
                "held back: this account met too many refused writes in the last minute",
            ))
            .with_status(429);
            results[i] = Some(failed_entry(&o));
            held_back += 1;
            continue;
        }
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
                    let resident = e
                        .resource
                        .as_ref()
                        .and_then(|r| super::rest::named_resident(&e.kind, r));
                    audit_refused(state, who, action, &e.kind, resident, &o).await?;
                }
                if crate::security::refusals::counts(o.http_status()) {
                    state.refusals.refused(&who.username);
                }
                results[i] = Some(failed_entry(&o));
            }
        }
    }
    if held_back > 0 {
        crate::audit::record(
            &*state.store,
            &crate::audit::Actor::from(who),
            "batch",
            "Bundle",
            None,
            "denied",
            &format!("429: {held_back} entries held back (too many refused writes)"),
        )
        .await?;
    }
    let response = json!({
        "resourceType": "Bundle",
        "type": if transaction { "transaction-response" } else { "batch-response" },
        "entry": results.into_iter().map(Option::unwrap_or_default).collect::<Vec<_>>(),
    });
    Ok(Ok(response))
}
