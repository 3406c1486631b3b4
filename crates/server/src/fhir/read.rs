//! Read and vread (`GET /fhir/{type}/{id}[/_history/{vid}]`): the stored version or the
//! mapped core row, decided and audited.

use super::*;
use crate::audit::{self, Actor};
use crate::{AppError, AppState};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use dhp_fhir::{capability, Issue, IssueCode, OperationOutcome};
use dhp_store::{core_table, Batch, StoreError, StoredResource, Table};
use serde_json::Value;
use std::sync::Arc;

/// What a read finds under `type/id`.
pub(crate) enum Found {
    Stored(StoredResource),
    Core(Batch),
    /// A row of the slot pool, as FHIR, with its resident.
    Pool(Value, Option<dhp_core::Id>),
    Nothing,
}

pub(crate) async fn find(
    state: &AppState,
    kind: &str,
    table: Option<Table>,
    id: &str,
) -> Result<Found, StoreError> {
    let Ok(n) = id.parse::<i64>() else {
        return Ok(Found::Nothing);
    };
    if dhp_fhir::types::care_tables(kind) {
        let found = if kind == "Task" {
            super::referral::find(state, n, false).await?
        } else {
            super::scheduling::find(state, kind, n).await?
        };
        return Ok(match found {
            Some((v, resident)) => Found::Pool(v, resident),
            None => Found::Nothing,
        });
    }
    if let Some(s) = state.store.resource(kind, n).await? {
        return Ok(Found::Stored(s));
    }
    // A referral's request, at the id its Task focuses on.
    if kind == "ServiceRequest" {
        if let Some((v, resident)) = super::referral::find(state, n, true).await? {
            return Ok(Found::Pool(v, resident));
        }
    }
    let Some(table) = table else {
        return Ok(Found::Nothing);
    };
    match state.store.get(table, n).await {
        Ok(row) => Ok(Found::Core(row)),
        Err(StoreError::NotFound(_)) => Ok(Found::Nothing),
        Err(e) => Err(e),
    }
}

/// `GET /fhir/{type}/{id}`: registry resources for any signed-in account; a resident's
/// data only within the account's scope, every attempt audited.
pub(crate) async fn read(
    State(state): State<Arc<AppState>>,
    Path((resource_type, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    read_version(&state, &headers, &resource_type, &id, None).await
}

/// `GET /fhir/Task/{id}` (its own route, beside the update that moves it on).
pub(crate) async fn read_task(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    read_version(&state, &headers, "Task", &id, None).await
}

/// `GET /fhir/{type}/{id}/_history/{vid}`.
pub(crate) async fn vread(
    State(state): State<Arc<AppState>>,
    Path((resource_type, id, vid)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    read_version(&state, &headers, &resource_type, &id, Some(&vid)).await
}

/// The read and vread interactions; `version` is the asked version for vread.
pub(crate) async fn read_version(
    state: &AppState,
    headers: &HeaderMap,
    resource_type: &str,
    id: &str,
    version: Option<&str>,
) -> Result<Response, AppError> {
    if !capability::supports(resource_type, "read") {
        return Ok(issue(
            IssueCode::NotSupported,
            format!("reading {resource_type} is not supported by this server; GET /fhir/metadata lists what is"),
        ));
    }
    let table = core_table(resource_type);
    let store = &*state.store;
    let resource = match version {
        Some(v) => format!("{resource_type}/{id}/_history/{v}"),
        None => format!("{resource_type}/{id}"),
    };
    let resident_data = resident_data(resource_type);
    let action = if version.is_some() { "vread" } else { "read" };
    // Registry reads are not resident data: a refused one is not audited.
    let who = if resident_data {
        match signed_in(state, headers, action, &resource).await? {
            Ok(p) => p,
            Err(res) => return Ok(res),
        }
    } else {
        match authenticate(state, headers).await {
            Ok(p) => p,
            Err(refusal) => return Ok(outcome(refusal)),
        }
    };
    let actor = Actor::from(&who);
    let not_found = || issue(IssueCode::NotFound, format!("{resource} does not exist"));
    let found = find(state, resource_type, table, id).await?;
    let resident_id = match &found {
        Found::Stored(s) => s.resident_id,
        Found::Core(row) => owner(row),
        Found::Pool(_, resident) => *resident,
        Found::Nothing => None,
    };
    if matches!(found, Found::Nothing) {
        if resident_data {
            audit::record(
                store,
                &actor,
                action,
                &resource,
                None,
                "not-found",
                "no such record",
            )
            .await?;
        }
        return Ok(not_found());
    }
    let mut reason = "registry record";
    if let Some(resident_id) = resident_id {
        let decision = read_decision(state, &who, resident_id).await?;
        if !decision.allowed() {
            audit::record(
                store,
                &actor,
                action,
                &resource,
                Some(resident_id),
                "denied",
                decision.reason(),
            )
            .await?;
            // A resident is told no more about another's record than that it is not
            // theirs to find: the same answer as for no record at all (audited as
            // the refusal it is).
            if who.role == dhp_core::access::Role::Resident {
                return Ok(not_found());
            }
            return Ok(issue(
                IssueCode::Forbidden,
                format!("{resource}: {}", decision.reason()),
            ));
        }
        reason = decision.reason();
    }
    let masked = !who.role.sees_full_identity();
    // The version asked for (or the current one), as (number, time, body or gone).
    let wanted: Option<i64> = match version {
        Some(v) => v.parse::<i64>().ok(),
        None => None,
    };
    if version.is_some() && wanted.is_none() {
        return Ok(not_found());
    }
    let chosen: Option<(i64, String, Option<Value>)> = match (&found, wanted) {
        (Found::Core(row), None | Some(1)) => {
            let body = core_json(state, resource_type, row, masked).await?;
            Some((1, state.place().await?.generated.clone(), Some(body)))
        }
        (Found::Core(_), Some(_)) => None,
        (Found::Pool(body, _), wanted) => {
            let number = body
                .pointer("/meta/versionId")
                .and_then(Value::as_str)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(1);
            let at = body
                .pointer("/meta/lastUpdated")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            // Only the current version is kept.
            (wanted.is_none() || wanted == Some(number)).then(|| (number, at, Some(body.clone())))
        }
        (Found::Stored(s), None) => {
            Some((s.version_id, s.last_updated.clone(), stored_json(s, masked)))
        }
        (Found::Stored(s), Some(n)) => store
            .resource_versions(resource_type, s.id)
            .await?
            .into_iter()
            .find(|v| v.version_id == n)
            .map(|v| {
                (
                    v.version_id,
                    v.last_updated.clone(),
                    stored_json(&v, masked),
                )
            }),
        (Found::Nothing, _) => None,
    };
    let Some((number, last_updated, body)) = chosen else {
        if resident_data {
            audit::record(
                store,
                &actor,
                action,
                &resource,
                resident_id,
                "not-found",
                "no such version",
            )
            .await?;
        }
        return Ok(not_found());
    };
    let Some(body) = body else {
        if resident_data {
            audit::record(
                store,
                &actor,
                action,
                &resource,
                resident_id,
                "not-found",
                "deleted",
            )
            .await?;
        }
        let mut res = outcome(
            OperationOutcome::one(Issue::new(
                IssueCode::NotFound,
                format!("{resource} was deleted (version {number})"),
            ))
            .with_status(410),
        );
        version_headers(&mut res, number, &last_updated);
        return Ok(res);
    };
    if resident_data {
        // Fail closed: the record leaves only once its reading is in the audit log.
        audit::record(
            store,
            &actor,
            action,
            &resource,
            resident_id,
            "success",
            reason,
        )
        .await?;
    }
    let mut res = fhir_json(StatusCode::OK, &body);
    version_headers(&mut res, number, &last_updated);
    Ok(res)
}
