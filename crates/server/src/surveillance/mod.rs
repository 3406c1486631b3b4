//! Surveillance and early warning over HTTP (SPEC capability 5): case reports from
//! clinical systems (`POST /api/surveillance/cases`), sentinel daily counts with zero
//! reports (`POST /api/surveillance/sentinel`), signals and their verification
//! (`GET /api/surveillance/signals`, `POST /api/surveillance/signals/{id}`), and the
//! CDC pages: today's signals, a grid of streets coloured by signal, per-disease charts
//! with the threshold drawn, a signal's detail with its verification history.

mod api;
mod cdc;
mod report;
mod signal;

use api::*;
use axum::routing::{get, post};
use axum::Router;
use cdc::*;

pub(crate) use report::report_condition;

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use dhp_core::access::{Principal, Role};
use dhp_core::surveillance::{self as sv};
use dhp_core::{Id, Organisation};

use crate::audit::{self, Actor};
use crate::context::Refusal;
use crate::{AppError, AppState};

/// `/api/surveillance/…` and the `/surveillance` pages.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/surveillance/cases", post(api::api_case))
        .route("/api/surveillance/sentinel", post(api::api_sentinel))
        .route("/api/surveillance/signals", get(api::api_signals))
        .route("/api/surveillance/signals/{id}", post(api::api_verify))
        .route("/surveillance", get(cdc::page))
        .route("/surveillance/run", post(cdc::run_now))
        .route(
            "/surveillance/signal/{id}",
            get(signal::signal).post(signal::signal_step),
        )
        .route("/surveillance/disease/{code}", get(signal::disease))
}

/// A refusal naming the field at fault.
fn refuse(status: StatusCode, field: &str, why: impl std::fmt::Display) -> Response {
    Refusal::new(status, field, why.to_string()).api()
}

/// Who may send reports: clinical systems and the clinicians and doctors who diagnose.
fn may_report(who: &Principal) -> bool {
    matches!(
        who.role,
        Role::System | Role::HospitalClinician | Role::FamilyDoctor | Role::PublicHealthDoctor
    )
}

/// Who may see signals: the CDC and the commission.
fn may_watch(who: &Principal) -> bool {
    matches!(who.role, Role::PublicHealthDoctor | Role::Manager)
}

/// Who verifies signals: the CDC.
fn may_verify(who: &Principal) -> bool {
    who.role == Role::PublicHealthDoctor
}

async fn unauthenticated(state: &AppState, resource: &str) -> Result<Response, AppError> {
    audit::record(
        &*state.store,
        &Actor::unverified(""),
        "create",
        resource,
        None,
        "unauthenticated",
        "no session or bearer token",
    )
    .await?;
    Ok(refuse(
        StatusCode::UNAUTHORIZED,
        "authorization",
        "sign in or send a bearer token from POST /auth/token",
    ))
}

// ---------------------------------------------------------------------------------
// Pages

/// Display name of a series key (disease or `syndrome:<code>`).
fn disease_name(key: &str, zh: bool) -> String {
    if let Some(code) = key.strip_prefix("syndrome:") {
        return sv::syndrome(code)
            .map(|s| {
                format!(
                    "{}（{}）",
                    if zh { &s.name_zh } else { &s.name_en },
                    if zh { "症候群" } else { "syndrome" }
                )
            })
            .unwrap_or_else(|| key.to_string());
    }
    sv::disease(key)
        .map(|d| {
            if zh {
                d.name_zh.clone()
            } else {
                d.name_en.clone()
            }
        })
        .unwrap_or_else(|| key.to_string())
}

fn org_name(orgs: &HashMap<Id, Organisation>, code: &str, zh: bool) -> String {
    orgs.values()
        .find(|o| o.code == code)
        .map(|o| {
            if zh {
                o.name_zh.clone()
            } else {
                o.name_en.clone()
            }
        })
        .unwrap_or_else(|| code.to_string())
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
