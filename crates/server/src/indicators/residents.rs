//! The residents behind an indicator's numerator or denominator
//! (`/indicators/{id}/residents`), for those allowed to see them.

use super::*;
use crate::audit::{self, Actor};
use crate::i18n::Messages;
use crate::{AppError, AppState};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use dhp_core::indicators::{self as ind, Basis};
use dhp_core::OrgKind;
use dhp_store::{Cohort, Reading};
use std::fmt::Write as _;
use std::sync::Arc;

#[derive(Template)]
#[template(path = "indicators/indicator_residents.html")]
pub(crate) struct ResidentsPage {
    pub(crate) t: &'static Messages,
    pub(crate) user: Option<crate::security::session::SignedIn>,
    pub(crate) lang: String,
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) org: String,
    pub(crate) period: String,
    pub(crate) rows: Vec<(String, String, String, i64, i64)>,
    pub(crate) shown: usize,
    pub(crate) total: usize,
    pub(crate) counted: usize,
}

/// Residents listed on one page at most.
pub(crate) const RESIDENT_ROWS: usize = 500;

/// `GET /indicators/{id}/residents?org=&period=`: the residents of a street or centre
/// behind its figure — each with what they add to the numerator and denominator,
/// those not counted in the numerator first (whom to reach). The read is audited.
pub async fn residents(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<IndicatorQuery>,
) -> Result<Response, AppError> {
    let (f, def) = match indicator_frame(&state, &headers, &q, &id, "/residents").await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let (t, zh) = (f.t, f.zh);
    if !matches!(def.basis, Some(Basis::Resident | Basis::Resources)) {
        return Ok(bad_request(
            t,
            Some(f.user.clone()),
            "indicator",
            format!("{id}: {}", t.get("not_per_resident")),
        ));
    }
    let cohort = match f.unit.kind {
        OrgKind::Street | OrgKind::Town => Cohort::Area(f.unit.id),
        OrgKind::CommunityHealthCentre => Cohort::Centre {
            centre: f.unit.id,
            area: f.unit.parent_id,
        },
        _ => {
            return Ok(bad_request(
                t,
                Some(f.user.clone()),
                "org",
                t.get("drill_street_or_centre").to_string(),
            ))
        }
    };
    let on = f.period.end();
    let mut found: Vec<(dhp_core::Resident, i64, i64)> = Vec::new();
    let mut after = 0;
    loop {
        let page = state
            .store
            .programme_records(&cohort, Reading::Full, on, after, 5_000)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.resident.id;
        for rec in page {
            if let Some((n, d)) = ind::resident_count(def, &rec, &f.units, f.period, f.unit.id) {
                found.push((rec.resident, n, d));
            }
        }
    }
    // Not (fully) in the numerator first: the residents to reach.
    found.sort_by_key(|(r, n, d)| (n >= d, r.id));
    let counted = found.iter().filter(|(_, n, _)| *n > 0).count();
    audit::record(
        &*state.store,
        &Actor::from(&f.who),
        "read",
        &format!("Indicator/{id}/residents"),
        None,
        "ok",
        &format!("{} {}: {} residents", f.unit.code, f.period, found.len()),
    )
    .await?;
    if f.csv {
        let mut out =
            String::from("resident_id,name,identity_number,birth_year,numerator,denominator\n");
        for (r, n, d) in &found {
            let _ = writeln!(
                out,
                "{},{},{},{},{n},{d}",
                r.id,
                csv_cell(&r.name),
                r.identity_number.masked(),
                dhp_core::identity::masked_birth(r.birth_date)
            );
        }
        return Ok(csv_response(
            &format!("{id}-{}-{}-residents.csv", f.unit.code, f.period),
            out,
        ));
    }
    let total = found.len();
    let rows = found
        .into_iter()
        .take(RESIDENT_ROWS)
        .map(|(r, n, d)| {
            (
                r.name.clone(),
                r.identity_number.masked(),
                dhp_core::identity::masked_birth(r.birth_date),
                n,
                d,
            )
        })
        .collect::<Vec<_>>();
    let page = ResidentsPage {
        t,
        id: id.clone(),
        title: format!(
            "{} · {} · {}",
            ind_name(def, zh),
            name(&f.unit, zh),
            f.period
        ),
        org: f.unit.code.clone(),
        period: f.period.to_string(),
        shown: rows.len(),
        rows,
        total,
        counted,
        user: Some(f.user),
        lang: t.get("lang").to_string(),
    };
    Ok(Html(page.render()?).into_response())
}
