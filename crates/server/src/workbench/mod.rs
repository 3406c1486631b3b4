//! The family doctor's workbench (家庭医生工作台): due lists over a cohort (here), the
//! JSON API `GET /api/workbench/due` (`api`), the pages (`pages`: the worklist and the
//! panel; `resident`: one resident, the contract and follow-up forms, the vaccination
//! plan), and recording a follow-up through the FHIR write path (`followup`) so it
//! lands versioned, projected and audited like any other write.

mod api;
mod followup;
mod pages;
mod resident;

use api::*;
use axum::routing::{get, post};
use axum::Router;
use followup::*;
use pages::*;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{Days, NaiveDate};
use dhp_core::programmes::{assess, DueItem, DueStatus, ResidentRecord};
use dhp_core::{Id, OrgKind, Organisation, Programme};
use dhp_store::{Cohort, Reading, Store, StoreError};
use serde::Serialize;

use crate::AppState;

/// `/api/workbench/due` and the `/workbench` pages.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/workbench/due", get(api::api_due))
        .route("/workbench", get(pages::workbench))
        .route("/workbench/panel", get(pages::panel))
        .route("/workbench/resident/{id}", get(resident::resident))
        .route(
            "/workbench/resident/{id}/followup",
            post(resident::record_followup),
        )
        .route(
            "/workbench/resident/{id}/contract",
            post(resident::contract_change),
        )
        .route("/workbench/resident/{id}/vaccines", get(resident::vaccines))
}

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
    pub(crate) fn keeps(&self, item: &DueItem, on: NaiveDate) -> bool {
        self.programme.is_none_or(|p| item.programme == p)
            && (item.status != DueStatus::Upcoming
                || self
                    .within_days
                    .is_some_and(|w| item.earliest <= on + Days::new(w.into())))
    }
}

/// The referral a due item calls for (the chronic programmes' `emergency-referral` and
/// `referral` after consecutive uncontrolled follow-ups), as the referral form's `flag`.
pub(crate) fn refer_flag(key: &str) -> &'static str {
    match key {
        "emergency-referral" => "emergency",
        "referral" => "uncontrolled",
        _ => "",
    }
}

/// `rows` without the referral flags a referral made since has answered
/// (`dhp_core::referral::answers_flag`); each flagged resident's referrals read once.
pub(crate) async fn drop_answered_flags<T>(
    store: &dyn Store,
    rows: Vec<T>,
    of: impl Fn(&T) -> (Id, &DueItem),
) -> Result<Vec<T>, StoreError> {
    let mut referrals: std::collections::HashMap<Id, Vec<dhp_store::ReferralRow>> =
        std::collections::HashMap::new();
    let mut kept = Vec::with_capacity(rows.len());
    for row in rows {
        let (resident, item) = of(&row);
        if !refer_flag(&item.key).is_empty() {
            if let std::collections::hash_map::Entry::Vacant(e) = referrals.entry(resident) {
                e.insert(store.referrals_of(resident).await?);
            }
            let answered = referrals[&resident].iter().any(|r| {
                dhp_core::referral::answers_flag(r.direction, r.status, r.created.date(), item.due)
            });
            if answered {
                continue;
            }
        }
        kept.push(row);
    }
    Ok(kept)
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
    let mut out = drop_answered_flags(store, out, |r| (r.resident_id, &r.item)).await?;
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

/// A client error of the JSON API: the field at fault and why.
fn bad(field: &str, why: impl std::fmt::Display) -> Response {
    crate::context::Refusal::bad(field, why.to_string()).api()
}

fn refused(status: StatusCode, why: &str) -> Response {
    crate::context::Refusal::bare(status, why).api()
}
