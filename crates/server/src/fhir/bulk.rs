//! Bulk export (FHIR Bulk Data Access, the asynchronous request pattern):
//! `GET /fhir/$export` or `/fhir/Patient/$export` with `Prefer: respond-async` starts a
//! job and answers `202` with `Content-Location`; the status URL answers `202` with
//! `X-Progress` while it runs and the manifest when done; the NDJSON files download with
//! the same bearer token; `DELETE` on the status URL cancels or removes the job.
//!
//! For integrating systems only (a whole district's records with identity numbers).
//! The files are written under the export directory (`DHP_EXPORT_DIR`, else the system
//! temporary directory), one folder per job with its `manifest.json`, so a finished
//! export still answers after a restart; a job running when the server stops is gone
//! (its status answers 404) and is started again.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path as FsPath, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use dhp_core::access::Role;
use dhp_fhir::{Issue, IssueCode, OperationOutcome};
use serde_json::{json, Value};

use super::{fhir_base, outcome, signed_in};
use crate::audit::{self, Actor};
use crate::fhir::export::{export_type, BULK_TYPES, PATIENT_TYPES};
use crate::{AppError, AppState};

/// Where a job stands.
#[derive(Debug, Clone)]
enum Stage {
    Running {
        done: usize,
        of: usize,
        current: String,
    },
    Done(Value),
    Failed(String),
}

#[derive(Debug)]
struct Job {
    /// The client that started it: only it may ask after it.
    owner: String,
    stage: Stage,
    cancel: Arc<AtomicBool>,
}

/// The export jobs of this server process.
#[derive(Debug)]
pub struct Jobs {
    dir: PathBuf,
    jobs: Mutex<HashMap<String, Job>>,
}

impl Default for Jobs {
    fn default() -> Self {
        let dir = std::env::var_os("DHP_EXPORT_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("dhp-bulk-export"));
        Self {
            dir,
            jobs: Mutex::new(HashMap::new()),
        }
    }
}

impl Jobs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Job>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, id: &str, stage: Stage) {
        if let Some(j) = self.lock().get_mut(id) {
            j.stage = stage;
        }
    }

    fn job_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }
}

/// Only an integrating system exports in bulk; anyone else is refused and audited.
async fn exporter(
    state: &AppState,
    headers: &HeaderMap,
    action: &str,
    resource: &str,
) -> Result<Result<(Actor, String), Response>, AppError> {
    let store = &*state.store;
    let who = match signed_in(state, headers, action, resource).await? {
        Ok(p) => p,
        Err(res) => return Ok(Err(res)),
    };
    let actor = Actor::from(&who);
    if who.role != Role::System {
        audit::record(
            store,
            &actor,
            action,
            resource,
            None,
            "denied",
            "bulk export is for integrating systems",
        )
        .await?;
        return Ok(Err(outcome(OperationOutcome::one(Issue::new(
            IssueCode::Forbidden,
            format!("{resource}: bulk export is for integrating systems (client credentials)"),
        )))));
    }
    Ok(Ok((actor, who.username.clone())))
}

fn bad(path: String, what: impl std::fmt::Display) -> Issue {
    Issue::at(IssueCode::Invalid, path, what)
}

/// `GET /fhir/$export` (system level: the registry and every resident's record).
pub(crate) async fn kick_off_system(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    kick_off(state, headers, pairs, "$export", &BULK_TYPES).await
}

/// `GET /fhir/Patient/$export` (every resident's record).
pub(crate) async fn kick_off_patients(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    kick_off(state, headers, pairs, "Patient/$export", &PATIENT_TYPES).await
}

async fn kick_off(
    state: Arc<AppState>,
    headers: HeaderMap,
    pairs: Vec<(String, String)>,
    operation: &str,
    allowed: &[&'static str],
) -> Result<Response, AppError> {
    let (actor, owner) = match exporter(&state, &headers, "export", operation).await? {
        Ok(a) => a,
        Err(res) => return Ok(res),
    };
    let mut issues = Vec::new();
    let async_asked = headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("respond-async"));
    if !async_asked {
        issues.push(bad(
            "Prefer".into(),
            "a bulk export runs asynchronously: send the header Prefer: respond-async",
        ));
    }
    let mut types: Vec<&'static str> = allowed.to_vec();
    let mut since: Option<String> = None;
    for (k, v) in &pairs {
        let at = format!("{operation}?{k}");
        match k.as_str() {
            "_outputFormat" => {
                if !matches!(
                    v.as_str(),
                    "application/fhir+ndjson" | "application/ndjson" | "ndjson"
                ) {
                    issues.push(bad(
                        at,
                        format!("{v:?}: only application/fhir+ndjson is written"),
                    ));
                }
            }
            "_type" => {
                let asked: Vec<&str> = v.split(',').map(str::trim).collect();
                match asked.iter().find(|t| !allowed.contains(t)) {
                    Some(t) => issues.push(bad(
                        at,
                        format!("{t:?} is not exported here ({})", allowed.join(", ")),
                    )),
                    None => types.retain(|t| asked.contains(t)),
                }
            }
            "_since" => match chrono::DateTime::parse_from_rfc3339(v) {
                Ok(t) => {
                    since = Some(
                        t.with_timezone(&chrono::Utc)
                            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                            .to_string(),
                    )
                }
                Err(_) => issues.push(bad(
                    at,
                    format!("{v:?} is not an instant (YYYY-MM-DDThh:mm:ss+zz:zz)"),
                )),
            },
            other => issues.push(Issue::at(
                IssueCode::NotSupported,
                at,
                format!(
                    "unknown parameter {other:?}; $export supports _outputFormat, _type, _since"
                ),
            )),
        }
    }
    if !issues.is_empty() {
        return Ok(outcome(OperationOutcome::new(issues).with_status(400)));
    }
    let id = uuid::Uuid::now_v7().to_string();
    let dir = state.jobs.job_dir(&id);
    std::fs::create_dir_all(&dir)
        .map_err(|e| AppError::Internal(format!("export directory {}: {e}", dir.display())))?;
    let cancel = Arc::new(AtomicBool::new(false));
    state.jobs.lock().insert(
        id.clone(),
        Job {
            owner,
            stage: Stage::Running {
                done: 0,
                of: types.len(),
                current: types.first().copied().unwrap_or_default().to_string(),
            },
            cancel: cancel.clone(),
        },
    );
    let base = fhir_base(&state);
    let request = format!("{base}/{operation}");
    audit::record(
        &*state.store,
        &actor,
        "export",
        operation,
        None,
        "accepted",
        &format!("job {id}: {}", types.join(",")),
    )
    .await?;
    let status_url = format!("{base}/$export-status/{id}");
    let job = id.clone();
    let worker = state.clone();
    tokio::spawn(async move {
        let stage = match run(
            &worker,
            &job,
            &dir,
            &types,
            since.as_deref(),
            &base,
            &request,
            &cancel,
        )
        .await
        {
            Ok(manifest) => Stage::Done(manifest),
            Err(e) => Stage::Failed(e),
        };
        if let Stage::Failed(e) = &stage {
            tracing::warn!(job = %job, error = %e, "bulk export failed");
        }
        let detail = match &stage {
            Stage::Done(m) => format!(
                "job {job}: {} resources",
                m["output"]
                    .as_array()
                    .map(|o| o.iter().filter_map(|f| f["count"].as_u64()).sum::<u64>())
                    .unwrap_or(0)
            ),
            _ => format!("job {job}: failed or cancelled"),
        };
        let outcome = if matches!(stage, Stage::Done(_)) {
            "success"
        } else {
            "failed"
        };
        let _ = audit::record(
            &*worker.store,
            &actor,
            "export",
            "$export",
            None,
            outcome,
            &detail,
        )
        .await;
        worker.jobs.set(&job, stage);
    });
    let mut res = StatusCode::ACCEPTED.into_response();
    if let Ok(v) = header::HeaderValue::from_str(&status_url) {
        res.headers_mut().insert(header::CONTENT_LOCATION, v);
    }
    Ok(res)
}

/// Write each type's NDJSON file, then the manifest.
#[allow(clippy::too_many_arguments)]
async fn run(
    state: &AppState,
    job: &str,
    dir: &FsPath,
    types: &[&str],
    since: Option<&str>,
    base: &str,
    request: &str,
    cancel: &AtomicBool,
) -> Result<Value, String> {
    let started = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    let mut output = Vec::new();
    for (i, kind) in types.iter().enumerate() {
        state.jobs.set(
            job,
            Stage::Running {
                done: i,
                of: types.len(),
                current: kind.to_string(),
            },
        );
        let path = dir.join(format!("{kind}.ndjson"));
        let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut w = std::io::BufWriter::new(file);
        let n = export_type(state, kind, since, |v| {
            if cancel.load(Ordering::Relaxed) {
                return Err(std::io::Error::other("cancelled"));
            }
            serde_json::to_writer(&mut w, &v)?;
            w.write_all(b"\n")
        })
        .await
        .map_err(|e| format!("{kind}: {e}"))?;
        w.flush().map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        output.push(json!({
            "type": kind,
            "url": format!("{base}/$export-file/{job}/{kind}.ndjson"),
            "count": n,
        }));
    }
    let manifest = json!({
        "transactionTime": started,
        "request": request,
        "requiresAccessToken": true,
        "output": output,
        "error": [],
    });
    let path = dir.join("manifest.json");
    std::fs::write(&path, manifest.to_string()).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(manifest)
}

fn not_found(what: String) -> Response {
    outcome(OperationOutcome::one(Issue::new(IssueCode::NotFound, what)))
}

/// A job id is a UUID; anything else names no job (and no path).
fn valid_id(id: &str) -> bool {
    uuid::Uuid::parse_str(id).is_ok()
}

/// `GET /fhir/$export-status/{id}`.
pub(crate) async fn status(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let (_, owner) = match exporter(&state, &headers, "export-status", "$export-status").await? {
        Ok(a) => a,
        Err(res) => return Ok(res),
    };
    if !valid_id(&id) {
        return Ok(not_found(format!("export job {id:?} does not exist")));
    }
    let stage = {
        let jobs = state.jobs.lock();
        jobs.get(&id)
            .filter(|j| j.owner == owner)
            .map(|j| j.stage.clone())
    };
    let stage = match stage {
        Some(s) => s,
        // Finished before a restart: its manifest is on disk.
        None => match std::fs::read(state.jobs.job_dir(&id).join("manifest.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        {
            Some(m) => Stage::Done(m),
            None => {
                return Ok(not_found(format!(
                    "export job {id} does not exist (or was cancelled)"
                )))
            }
        },
    };
    Ok(match stage {
        Stage::Running { done, of, current } => {
            let mut res = StatusCode::ACCEPTED.into_response();
            let h = res.headers_mut();
            if let Ok(v) = header::HeaderValue::from_str(&format!(
                "{done} of {of} types done; writing {current}"
            )) {
                h.insert("x-progress", v);
            }
            h.insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            res
        }
        Stage::Done(manifest) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            manifest.to_string(),
        )
            .into_response(),
        Stage::Failed(e) => outcome(OperationOutcome::one(Issue::new(
            IssueCode::Exception,
            format!("the export failed: {e}"),
        ))),
    })
}

/// `DELETE /fhir/$export-status/{id}`: cancel a running job or remove a finished one's
/// files.
pub(crate) async fn cancel(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let (actor, owner) = match exporter(&state, &headers, "export-cancel", "$export-status").await?
    {
        Ok(a) => a,
        Err(res) => return Ok(res),
    };
    if !valid_id(&id) {
        return Ok(not_found(format!("export job {id:?} does not exist")));
    }
    let removed = {
        let mut jobs = state.jobs.lock();
        match jobs.get(&id) {
            Some(j) if j.owner == owner => {
                j.cancel.store(true, Ordering::Relaxed);
                jobs.remove(&id);
                true
            }
            Some(_) => false,
            None => state.jobs.job_dir(&id).join("manifest.json").exists(),
        }
    };
    if !removed {
        return Ok(not_found(format!("export job {id} does not exist")));
    }
    let _ = std::fs::remove_dir_all(state.jobs.job_dir(&id));
    audit::record(
        &*state.store,
        &actor,
        "export-cancel",
        "$export",
        None,
        "success",
        &format!("job {id}"),
    )
    .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `GET /fhir/$export-file/{id}/{Type}.ndjson`: streamed, never held whole in memory.
pub(crate) async fn file(
    State(state): State<Arc<AppState>>,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let resource = format!("$export-file/{id}/{name}");
    let (actor, owner) = match exporter(&state, &headers, "export-download", &resource).await? {
        Ok(a) => a,
        Err(res) => return Ok(res),
    };
    let kind = name.strip_suffix(".ndjson").unwrap_or_default();
    let owned_by_other = state.jobs.lock().get(&id).is_some_and(|j| j.owner != owner);
    if !valid_id(&id) || !BULK_TYPES.contains(&kind) || owned_by_other {
        return Ok(not_found(format!("{resource} does not exist")));
    }
    let path = state.jobs.job_dir(&id).join(&name);
    let Ok(f) = tokio::fs::File::open(&path).await else {
        return Ok(not_found(format!("{resource} does not exist")));
    };
    audit::record(
        &*state.store,
        &actor,
        "export-download",
        &resource,
        None,
        "success",
        "bulk export file",
    )
    .await?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(f));
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/fhir+ndjson")],
        body,
    )
        .into_response())
}
