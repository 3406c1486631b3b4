//! A resident asks to sign or renew a family-doctor contract (SPEC capability 9, "my
//! family doctor"): the request reaches the centre's workbench as a task, and a
//! doctor of the centre confirms it by signing (the contract service closes it). One
//! open request at a time; the renewal window and the note's length are
//! `RENEW_WITHIN_DAYS` and `NOTE_CHARS`.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::NaiveDate;
use dhp_core::programmes::ResidentRecord;
use dhp_core::{Id, OrgKind, Organisation};
use dhp_store::{ContractAsk, StoreError};
use serde::Deserialize;

use super::PortalQuery;
use crate::audit::{self, Actor};
use crate::context::{as_of, district_now, Refusal};
use crate::i18n::Messages;
use crate::{AppError, AppState};

/// A contract in force may be renewed from this many days before it ends (local
/// choice: the last month of the year's contract).
pub(crate) const RENEW_WITHIN_DAYS: i64 = 30;
/// The longest note kept with a request (local choice).
pub(crate) const NOTE_CHARS: usize = 200;

/// What the resident's family-doctor card offers.
pub(crate) enum Offer {
    /// A request is waiting: since when.
    Waiting(String),
    /// The resident may ask: to renew (else to sign).
    Ask { renew: bool },
    /// Nothing to ask now.
    Nothing,
}

/// The centre a request goes to: the contract in force (or the latest) decides; a
/// resident never contracted asks the centre serving their street.
fn centre_for(
    rec: &ResidentRecord,
    orgs: &std::collections::HashMap<Id, Organisation>,
) -> Option<Id> {
    if let Some(c) = rec.contracts.iter().max_by_key(|c| (c.start, c.id)) {
        return Some(c.centre_org_id);
    }
    let mut serving: Vec<&Organisation> = orgs
        .values()
        .filter(|o| {
            o.kind == OrgKind::CommunityHealthCentre
                && o.parent_id == Some(rec.resident.street_org_id)
        })
        .collect();
    serving.sort_by_key(|o| o.id);
    serving.first().map(|o| o.id)
}

/// What the card offers the resident on `on`.
pub(crate) async fn offer(
    state: &AppState,
    rec: &ResidentRecord,
    on: NaiveDate,
) -> Result<Offer, StoreError> {
    if let Some(a) = state.store.contract_ask_of(rec.resident.id).await? {
        if a.done_at.is_none() {
            return Ok(Offer::Waiting(a.asked_at.format("%Y-%m-%d").to_string()));
        }
    }
    Ok(match rec.contract_on(on) {
        None => Offer::Ask { renew: false },
        Some(c) if (c.end - on).num_days() <= RENEW_WITHIN_DAYS => Offer::Ask { renew: true },
        Some(_) => Offer::Nothing,
    })
}

#[derive(Debug, Deserialize)]
pub struct AskForm {
    #[serde(default)]
    pub note: String,
}

/// `POST /me/contract/ask`: ask to sign or renew.
pub async fn ask(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<PortalQuery>,
    Form(form): Form<AskForm>,
) -> Result<Response, AppError> {
    let t: &'static Messages = q.t();
    let (user, who, me) = match super::resident(&state, &headers, t, "/me") {
        Ok(x) => x,
        Err(r) => return Ok(*r),
    };
    let back = ("/me", "me_title");
    let note = form.note.trim().to_string();
    if note.chars().count() > NOTE_CHARS {
        return Ok(Refusal::bad(
            t.get("ca_f_note"),
            t.get("ca_long").replace("{n}", &NOTE_CHARS.to_string()),
        )
        .page(t, Some(user), back));
    }
    let on = as_of(&state).await?;
    let rec = state
        .store
        .programme_records(
            &dhp_store::Cohort::Resident(me),
            dhp_store::Reading::Full,
            on,
            me - 1,
            1,
        )
        .await?
        .pop();
    let Some(rec) = rec else {
        return Ok(
            Refusal::bare(StatusCode::NOT_FOUND, t.get("me_no_record")).page(t, Some(user), back),
        );
    };
    let renew = match offer(&state, &rec, on).await? {
        Offer::Ask { renew } => renew,
        Offer::Waiting(_) => {
            return Ok(Refusal::new(
                StatusCode::CONFLICT,
                t.get("ca_f_ask"),
                t.get("ca_waiting_already"),
            )
            .page(t, Some(user), back))
        }
        Offer::Nothing => {
            return Ok(
                Refusal::new(StatusCode::CONFLICT, t.get("ca_f_ask"), t.get("ca_not_yet")).page(
                    t,
                    Some(user),
                    back,
                ),
            )
        }
    };
    let Some(centre) = centre_for(&rec, state.orgs().await?) else {
        return Ok(Refusal::new(
            StatusCode::CONFLICT,
            t.get("ca_f_ask"),
            t.get("ca_no_centre"),
        )
        .page(t, Some(user), back));
    };
    let asked = ContractAsk {
        id: 0,
        resident_id: me,
        centre_org_id: centre,
        renew,
        note,
        asked_at: district_now(&state).await?,
        done_at: None,
        done_by: None,
    };
    let id = match state.store.ask_for_contract(&asked).await {
        Ok(id) => id,
        // Asked meanwhile (another tab): that request stands.
        Err(StoreError::Exists(_)) => {
            return Ok(Refusal::new(
                StatusCode::CONFLICT,
                t.get("ca_f_ask"),
                t.get("ca_waiting_already"),
            )
            .page(t, Some(user), back))
        }
        Err(e) => return Err(e.into()),
    };
    audit::record(
        &*state.store,
        &Actor::from(&who),
        "contract-ask",
        &format!("Patient/{me}/contract"),
        Some(me),
        "success",
        &format!(
            "asked to {} (request {id})",
            if renew { "renew" } else { "sign" }
        ),
    )
    .await?;
    let lang = q.lang.as_deref().unwrap_or("zh");
    Ok(Redirect::to(&format!("/me?lang={lang}&saved=asked#doctor")).into_response())
}
