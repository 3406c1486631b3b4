//! Tiered care (分级诊疗) for the people who give it: two-way referral between family
//! doctors and hospital clinicians, the reserved specialist slot booked with an
//! up-referral, and ordering a test with the result-recognition check. The services
//! here (`refer`, `step`, `order`) are what the JSON API (`api`) and the pages (`pages`:
//! the referral inbox and sent list, a referral, a patient's shared record) both call,
//! so every path checks the writer's scope first, audits every attempt and refuses bad
//! input naming its field before anything is written.

mod api;
mod figures;
pub mod outbox;
mod pages;
mod waitlist;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use chrono::NaiveDate;
use dhp_core::access::{Principal, Role};
use dhp_core::booking::Channel;
use dhp_core::recognition::table;
use dhp_core::referral::{check_reason, Act, Direction, NewReferral, Priority, Side};
use dhp_core::{Id, OrgKind};
use dhp_store::{Booking, NewOrder, PriorResult, Reading, ReferralRow, StoreError};
use serde::Deserialize;

use crate::audit::{self, Actor};
use crate::context::district_now;
use crate::context::{readable, Readable, Refusal};
use crate::{AppError, AppState};

/// `/api/referrals…`, `/api/orders`, `/api/slots`, `/api/waitlist…` and the `/care`
/// pages.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/referrals", post(api::create).get(api::list))
        .route("/api/referrals/{id}", get(api::one))
        .route("/api/referrals/{id}/steps", post(api::take_step))
        .route("/api/orders", post(api::order_test))
        .route("/api/slots", get(api::slots))
        .route("/api/waitlist", post(waitlist::join).get(waitlist::list))
        .route("/api/waitlist/{id}/accept", post(waitlist::accept))
        .route("/api/waitlist/{id}/withdraw", post(waitlist::withdraw))
        .route("/care", get(pages::inbox))
        .route("/care/figures", get(figures::figures))
        .route("/care/referrals/{id}", get(pages::referral))
        .route("/care/referrals/{id}/step", post(pages::step_form))
        .route("/care/patients/{id}", get(pages::patient))
        .route("/care/patients/{id}/order", post(pages::order_form))
        .route("/care/patients/{id}/refer", post(pages::refer_form))
}

/// Those who refer and receive: family doctors and hospital clinicians, each at an
/// organisation (the side of a referral is the organisation's).
fn carer(who: &Principal) -> Option<Id> {
    matches!(who.role, Role::FamilyDoctor | Role::HospitalClinician)
        .then_some(who.org_id)
        .flatten()
}

/// A referral as a form or JSON asks for it. Organisations by code.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReferRequest {
    #[serde(default)]
    pub resident_id: Option<Id>,
    pub direction: String,
    /// The organisation referred to (its code). With a slot, the slot's organisation.
    #[serde(default)]
    pub performer: Option<String>,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub priority: Option<String>,
    #[serde(default)]
    pub diagnosis: Option<String>,
    /// A reserved slot to book with an up-referral (its id, as a number or text).
    #[serde(default, deserialize_with = "crate::context::number_or_text")]
    pub slot: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
    /// Down-referral: the follow-up day (`YYYY-MM-DD`).
    #[serde(default)]
    pub follow_up: Option<String>,
}

fn blank(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Audit `action` on `resource` for `who`, outcome and detail as given.
async fn note(
    state: &AppState,
    who: &Principal,
    action: &str,
    resource: &str,
    resident: Option<Id>,
    outcome: &str,
    detail: &str,
) -> Result<(), AppError> {
    audit::record(
        &*state.store,
        &Actor::from(who),
        action,
        resource,
        resident,
        outcome,
        detail,
    )
    .await?;
    Ok(())
}

/// Resident `id` if `who` may act on their record (the attempt audited as `action`).
async fn in_scope(
    state: &AppState,
    who: &Principal,
    id: Option<Id>,
    action: &str,
    today: NaiveDate,
) -> Result<Result<Id, Refusal>, AppError> {
    let Some(id) = id else {
        return Ok(Err(Refusal::bad("resident_id", "resident_id is required")));
    };
    Ok(
        match readable(state, who, id, today, action, Reading::Programmes).await? {
            Readable::Record(_) => Ok(id),
            Readable::NotFound => Err(Refusal::new(
                StatusCode::NOT_FOUND,
                "resident_id",
                format!("resident {id} does not exist"),
            )),
            Readable::Denied => Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "resident_id",
                format!("resident {id} is outside {}'s scope", who.username),
            )),
        },
    )
}

/// The organisation `who` gives care at, or — for any other role — a refusal naming
/// the role, the attempt (`what`, a ServiceRequest for `resident`) audited as denied.
async fn carer_org(
    state: &AppState,
    who: &Principal,
    resident: Option<Id>,
    what: &str,
    why: &str,
) -> Result<Result<Id, Refusal>, AppError> {
    if let Some(org) = carer(who) {
        return Ok(Ok(org));
    }
    note(
        state,
        who,
        "create",
        "ServiceRequest",
        resident,
        "denied",
        what,
    )
    .await?;
    Ok(Err(Refusal::new(StatusCode::FORBIDDEN, "role", why)))
}

/// Make the referral `req` for `who`: the new referral's id.
pub(crate) async fn refer(
    state: &AppState,
    who: &Principal,
    req: &ReferRequest,
) -> Result<Result<Id, Refusal>, AppError> {
    let from_org = match carer_org(
        state,
        who,
        req.resident_id,
        "referral",
        "referrals are made by family doctors and hospital clinicians at their organisation",
    )
    .await?
    {
        Ok(org) => org,
        Err(r) => return Ok(Err(r)),
    };
    let now = district_now(state).await?;
    let today = now.date();
    let resident = match in_scope(state, who, req.resident_id, "create", today).await? {
        Ok(id) => id,
        Err(r) => return Ok(Err(r)),
    };
    let Some(direction) = Direction::parse(req.direction.trim()) else {
        return Ok(Err(Refusal::bad("direction", "direction is up or down")));
    };
    let priority = match blank(&req.priority) {
        None => Priority::Routine,
        Some(p) => match Priority::parse(p) {
            Some(p) => p,
            None => {
                return Ok(Err(Refusal::bad(
                    "priority",
                    "priority is routine, urgent, asap or stat",
                )))
            }
        },
    };
    let orgs = state.orgs().await?;
    let from = orgs
        .get(&from_org)
        .ok_or_else(|| StoreError::NotFound(format!("organisation {from_org}")))?;
    // The slot first: with one, the organisation referred to is the slot's.
    let slot = match blank(&req.slot) {
        None => None,
        Some(s) => {
            let Ok(id) = s.parse::<Id>() else {
                return Ok(Err(Refusal::bad("slot", format!("{s:?} is not a slot id"))));
            };
            match state.store.slot_state(id).await {
                Ok(st) => Some(st),
                Err(StoreError::NotFound(_)) => {
                    return Ok(Err(Refusal::bad(
                        "slot",
                        format!("slot {id} does not exist"),
                    )))
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    let to = match (blank(&req.performer), &slot) {
        (Some(code), _) => match orgs.values().find(|o| o.code == code) {
            Some(o) => o,
            None => {
                return Ok(Err(Refusal::bad(
                    "performer",
                    format!("no organisation has code {code:?}"),
                )))
            }
        },
        (None, Some(s)) => match orgs.get(&s.org_id) {
            Some(o) => o,
            None => return Err(StoreError::NotFound(format!("organisation {}", s.org_id)).into()),
        },
        (None, None) => {
            return Ok(Err(Refusal::bad(
                "performer",
                "performer is required (the organisation referred to)",
            )))
        }
    };
    let follow_up = match blank(&req.follow_up) {
        None => None,
        Some(d) => match d.parse::<NaiveDate>() {
            Ok(d) => Some(d),
            Err(_) => {
                return Ok(Err(Refusal::bad(
                    "follow_up",
                    format!("{d:?} is not a date (YYYY-MM-DD)"),
                )))
            }
        },
    };
    let referral = NewReferral {
        resident_id: resident,
        direction,
        from_org,
        to_org: to.id,
        reason: req.reason.trim().to_string(),
        priority,
        diagnosis: blank(&req.diagnosis).map(str::to_string),
        appointment_id: None,
        summary: blank(&req.summary).map(str::to_string),
        follow_up,
    };
    if let Err(e) = referral.check(from.kind, to.kind, today) {
        return Ok(Err(Refusal::bad(e.field, e.why)));
    }
    if let Some(s) = &slot {
        if s.org_id != to.id {
            return Ok(Err(Refusal::bad(
                "slot",
                format!("slot {} is not at {}", s.slot.id, to.code),
            )));
        }
        if orgs.get(&s.org_id).map(|o| &o.district_code) != Some(&from.district_code) {
            return Ok(Err(Refusal::bad(
                "slot",
                format!("slot {} is in another district's pool", s.slot.id),
            )));
        }
    }
    if slot.is_some() && direction == Direction::Down {
        return Ok(Err(Refusal::bad(
            "slot",
            "a down-referral does not book a hospital slot",
        )));
    }
    let booking = match &slot {
        Some(s) => Some(Booking {
            appointment_id: state.store.reserve_ids("Appointment", 1).await?,
            slot_id: s.slot.id,
            resident_id: resident,
            channel: Channel::Referral,
            at: now,
        }),
        None => None,
    };
    match state
        .store
        .refer(&referral, &who.username, now, booking.as_ref())
        .await
    {
        Ok(id) => {
            note(
                state,
                who,
                "create",
                &format!("ServiceRequest/{id}"),
                Some(resident),
                "success",
                &format!("referral {} to {}", direction.as_str(), to.code),
            )
            .await?;
            Ok(Ok(id))
        }
        Err(StoreError::Conflict(why)) => Ok(Err(Refusal::new(StatusCode::CONFLICT, "slot", why))),
        Err(StoreError::Invalid(why)) => Ok(Err(Refusal::bad("slot", why))),
        Err(e) => Err(e.into()),
    }
}

/// Take step `act` (its name) on referral `id` for `who`: the referral as it is now.
pub(crate) async fn step(
    state: &AppState,
    who: &Principal,
    id: Id,
    act: &str,
    reason: Option<&str>,
) -> Result<Result<ReferralRow, Refusal>, AppError> {
    let resource = format!("Task/{id}");
    let row = match state.store.referral(id).await {
        Ok((row, _)) => row,
        Err(StoreError::NotFound(_)) => {
            note(state, who, "update", &resource, None, "not-found", act).await?;
            return Ok(Err(Refusal::new(
                StatusCode::NOT_FOUND,
                "id",
                format!("referral {id} does not exist"),
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let Some(act) = Act::parse(act.trim()) else {
        return Ok(Err(Refusal::bad(
            "act",
            "act is receive, accept, reject, start, complete, cancel or fail",
        )));
    };
    let side_org = match act.side() {
        Side::Sender => row.from_org,
        Side::Receiver => row.to_org,
    };
    if carer(who) != Some(side_org) {
        note(
            state,
            who,
            "update",
            &resource,
            Some(row.resident_id),
            "denied",
            act.as_str(),
        )
        .await?;
        return Ok(Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "act",
            match act.side() {
                Side::Sender => "only the referring organisation withdraws a referral",
                Side::Receiver => "only the organisation referred to takes this step",
            },
        )));
    }
    if let Err(e) = check_reason(act, reason) {
        return Ok(Err(Refusal::bad(e.field, e.why)));
    }
    let now = district_now(state).await?;
    match state
        .store
        .referral_step(id, row.status, act, &who.username, reason, now)
        .await
    {
        Ok(status) => {
            note(
                state,
                who,
                "update",
                &resource,
                Some(row.resident_id),
                "success",
                &format!("{} → {}", row.status.as_str(), status.as_str()),
            )
            .await?;
            Ok(Ok(ReferralRow {
                status,
                updated: now,
                ..row
            }))
        }
        Err(StoreError::Conflict(why)) => {
            Ok(Err(Refusal::new(StatusCode::CONFLICT, "status", why)))
        }
        Err(e) => Err(e.into()),
    }
}

/// A test order as a form or JSON asks for it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OrderRequest {
    #[serde(default)]
    pub resident_id: Option<Id>,
    /// LOINC code of the test.
    #[serde(default)]
    pub code: String,
    /// The recognised result the orderer was shown (its observation id), if any.
    #[serde(default)]
    pub standing: Option<String>,
    /// `1`: use the standing result instead of testing again.
    #[serde(default)]
    pub use_standing: Option<String>,
    /// An exception reason code (to repeat a test a recognised result covers).
    #[serde(default)]
    pub exception: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

/// May `code` be ordered: a laboratory test of the observation code table, or an
/// imaging examination of the recognition table?
pub(crate) fn orderable(code: &str) -> bool {
    dhp_core::codes::observation(code).is_some_and(|c| c.category == "laboratory" && c.code == code)
        || table().item(code).is_some_and(|i| i.category == "imaging")
}

/// What an order came to.
#[derive(Debug)]
pub(crate) enum OrderOutcome {
    /// The test is ordered (its order id).
    Ordered(Id),
    /// The earlier result is used instead; no test done (a repeat avoided).
    Recognised(Id),
    /// A recognised result stands: shown to the orderer, nothing written yet.
    Standing(Box<PriorResult>),
}

/// Order `req` for `who`, checked against the recognised results that stand.
pub(crate) async fn order(
    state: &AppState,
    who: &Principal,
    req: &OrderRequest,
) -> Result<Result<OrderOutcome, Refusal>, AppError> {
    let org = match carer_org(
        state,
        who,
        req.resident_id,
        "test order",
        "tests are ordered by family doctors and hospital clinicians",
    )
    .await?
    {
        Ok(org) => org,
        Err(r) => return Ok(Err(r)),
    };
    let now = district_now(state).await?;
    let resident = match in_scope(state, who, req.resident_id, "create", now.date()).await? {
        Ok(id) => id,
        Err(r) => return Ok(Err(r)),
    };
    let code = req.code.trim();
    if !orderable(code) {
        return Ok(Err(Refusal::bad(
            "code",
            format!(
                "{code:?} is not a laboratory test or imaging examination code of the platform"
            ),
        )));
    }
    let prior = state.store.prior_results(resident, code).await?;
    let plain: Vec<_> = prior.iter().map(|p| p.prior.clone()).collect();
    let standing = table()
        .standing(code, &plain, now.date())
        .map(|p| p.result_id);
    let shown = match blank(&req.standing) {
        None => None,
        Some(s) => match s.parse::<Id>() {
            Ok(id) => Some(id),
            Err(_) => {
                return Ok(Err(Refusal::bad(
                    "standing",
                    format!("{s:?} is not a result id"),
                )))
            }
        },
    };
    if blank(&req.note).is_some_and(|n| n.chars().count() > dhp_core::referral::TEXT_MAX) {
        return Ok(Err(Refusal::bad(
            "note",
            format!(
                "note is longer than {} characters",
                dhp_core::referral::TEXT_MAX
            ),
        )));
    }
    let use_standing = blank(&req.use_standing).is_some_and(|v| v == "1" || v == "true");
    let exception = blank(&req.exception).map(str::to_string);
    // First sight of a standing result: show it, write nothing.
    if let Some(s) = standing {
        if shown != Some(s) && !use_standing && exception.is_none() {
            let p = prior
                .into_iter()
                .find(|p| p.prior.result_id == s)
                .ok_or_else(|| StoreError::Corrupt("standing result vanished".into()))?;
            note(
                state,
                who,
                "read",
                &format!("Observation/{s}"),
                Some(resident),
                "success",
                "recognised result shown on order",
            )
            .await?;
            return Ok(Ok(OrderOutcome::Standing(Box::new(p))));
        }
    }
    if !use_standing {
        if let Err(e) = table().check_order(
            prior
                .iter()
                .map(|p| &p.prior)
                .find(|p| Some(p.result_id) == standing),
            exception.as_deref(),
            blank(&req.note),
        ) {
            return Ok(Err(Refusal::bad(e.field, e.why)));
        }
    }
    let new = NewOrder {
        resident_id: resident,
        code: code.to_string(),
        org_id: org,
        ordered_by: who.username.clone(),
        at: now,
        use_standing,
        exception,
        note: blank(&req.note).map(str::to_string),
    };
    match state.store.order_test(&new, standing).await {
        Ok(id) => {
            note(
                state,
                who,
                "create",
                &format!("ServiceRequest/{id}"),
                Some(resident),
                "success",
                if use_standing {
                    "earlier result recognised"
                } else {
                    "test ordered"
                },
            )
            .await?;
            Ok(Ok(if use_standing {
                OrderOutcome::Recognised(id)
            } else {
                OrderOutcome::Ordered(id)
            }))
        }
        Err(StoreError::Conflict(why)) => {
            Ok(Err(Refusal::new(StatusCode::CONFLICT, "standing", why)))
        }
        Err(StoreError::Invalid(why)) => Ok(Err(Refusal::bad("use_standing", why))),
        Err(e) => Err(e.into()),
    }
}

/// Whether `kind` is where referrals of `direction` go.
pub(crate) fn receives(kind: OrgKind, direction: Direction) -> bool {
    match direction {
        Direction::Up => kind == OrgKind::Hospital,
        Direction::Down => kind == OrgKind::CommunityHealthCentre,
    }
}
