//! The unified slot pool through FHIR: Schedule, Slot and Appointment read, searched
//! and exported from the pool's tables; an Appointment created `booked` books under the
//! pool's capacity guard, inside the write's transaction, and an update moves it along
//! its life cycle ([`Plan::put_appointment`]); `Appointment/$find` offers free slots as
//! proposed appointments and `Appointment/$book` books one (Argonaut scheduling).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::NaiveDateTime;
use dhp_core::booking::{next, Channel, Status, Step};
use dhp_core::query::{DateCond, Field, Filter, RecordQuery};
use dhp_core::Id;
use dhp_fhir::scheduling::{self as pool, SERVICE_SYSTEM};
use dhp_fhir::{input, Issue, IssueCode, OperationOutcome};
use dhp_store::{
    AppointmentFilter, AppointmentStep, AppointmentView, Booking, ScheduleFilter, SlotFilter,
    SlotQuery, SlotState, StoreError,
};
use serde_json::{json, Value};

use super::search::Rendered;
use super::write::{Plan, Refusal, Written};
use super::{fhir_base, fhir_json, outcome, signed_in};
use crate::audit::{self, Actor};
use crate::context::district_now;
use crate::{AppError, AppState};

/// An appointment as FHIR shows it.
pub(crate) fn appointment_json(a: &AppointmentView) -> Value {
    pool::appointment(&pool::AppointmentView {
        id: a.row.id,
        version: a.version,
        resident_id: a.row.resident_id,
        status: a.row.status,
        cancel_reason: a.row.cancel_reason.as_deref(),
        slot: &a.slot.slot,
        service: &a.slot.service,
        org_id: a.slot.org_id,
        practitioner_id: a.practitioner_id,
        channel: &a.channel,
        created: a.created,
        updated: a.updated,
    })
}

fn slot_json(s: &SlotState, published: &str) -> Value {
    pool::slot(&s.slot, &s.service, s.booked, s.status != "free", published)
}

/// The ids of `field` among a query's filters (`None`: not filtered on it).
fn ids(q: &RecordQuery, field: Field) -> Vec<Id> {
    q.filters
        .iter()
        .filter_map(|f| match f {
            Filter::Ids(g, ids) if *g == field => Some(ids.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn tokens(q: &RecordQuery, field: Field) -> Vec<String> {
    q.filters
        .iter()
        .filter_map(|f| match f {
            Filter::Tokens(g, v) if *g == field => Some(v.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn dates(q: &RecordQuery, field: Field) -> Vec<DateCond> {
    q.filters
        .iter()
        .filter_map(|f| match f {
            Filter::Date(g, c) if *g == field => Some(*c),
            _ => None,
        })
        .collect()
}

/// Resources of pool type `kind` matching `q` (appointments within `scope`), with the
/// total.
pub(crate) async fn fetch(
    state: &AppState,
    kind: &str,
    q: &RecordQuery,
    scope: &dhp_core::access::Scope,
) -> Result<(Vec<Rendered>, i64), StoreError> {
    let published = state.place().await?.generated.clone();
    let store = &*state.store;
    // `_since` of `$everything` and `$export`: on the time the row last changed.
    let since: Option<String> = dates(q, Field::LastUpdated).iter().find_map(|c| match c {
        DateCond::Ge(t) => Some(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
        _ => None,
    });
    let (rows, total): (Vec<Rendered>, i64) = match kind {
        "Schedule" => {
            let (found, total) = store
                .search_schedules(&ScheduleFilter {
                    ids: ids(q, Field::Id),
                    orgs: ids(q, Field::Org),
                    practitioners: ids(q, Field::Practitioner),
                    services: tokens(q, Field::Code),
                    limit: q.limit,
                    offset: q.offset,
                })
                .await?;
            let rows = found
                .iter()
                .map(|s| Rendered {
                    id: s.id,
                    resident: None,
                    body: pool::schedule(s, &published),
                })
                .collect();
            (rows, total)
        }
        "Slot" => {
            let (found, total) = store
                .search_slots(&SlotFilter {
                    ids: ids(q, Field::Id),
                    schedules: ids(q, Field::Reference),
                    orgs: ids(q, Field::Org),
                    practitioners: ids(q, Field::Practitioner),
                    services: tokens(q, Field::Code),
                    statuses: tokens(q, Field::Status),
                    start: dates(q, Field::Date),
                    limit: q.limit,
                    offset: q.offset,
                })
                .await?;
            let rows = found
                .iter()
                .map(|s| Rendered {
                    id: s.slot.id,
                    resident: None,
                    body: slot_json(s, &published),
                })
                .collect();
            (rows, total)
        }
        _ => {
            let (found, total) = store
                .search_appointments(&AppointmentFilter {
                    ids: ids(q, Field::Id),
                    residents: ids(q, Field::Resident),
                    slots: ids(q, Field::Reference),
                    orgs: ids(q, Field::Org),
                    practitioners: ids(q, Field::Practitioner),
                    statuses: tokens(q, Field::Status),
                    services: tokens(q, Field::Code),
                    date: dates(q, Field::Date),
                    scope: scope.clone(),
                    today: crate::context::as_of(state).await?,
                    limit: q.limit,
                    offset: q.offset,
                })
                .await?;
            let rows = found
                .iter()
                .map(|a| Rendered {
                    id: a.row.id,
                    resident: Some(a.row.resident_id),
                    body: appointment_json(a),
                })
                .collect();
            (rows, total)
        }
    };
    let rows = match since {
        None => rows,
        Some(s) => rows
            .into_iter()
            .filter(|r| {
                r.body
                    .pointer("/meta/lastUpdated")
                    .and_then(Value::as_str)
                    .is_some_and(|u| u >= s.as_str())
            })
            .collect(),
    };
    Ok((rows, total))
}

/// One resource of pool type `kind`, with the resident it belongs to.
pub(crate) async fn find(
    state: &AppState,
    kind: &str,
    id: Id,
) -> Result<Option<(Value, Option<Id>)>, StoreError> {
    let q = RecordQuery::matching(vec![Filter::Ids(Field::Id, vec![id])], 1);
    let (mut rows, _) = fetch(state, kind, &q, &dhp_core::access::Scope::All).await?;
    Ok(rows.pop().map(|r| (r.body, r.resident)))
}

/// The place a booking by `who` may take: community centres' doctors and hospital
/// clinicians book on referral (the reserved share too); everyone else the open share.
fn channel_of(p: &Plan<'_>) -> Channel {
    use dhp_core::access::Role;
    if matches!(p.who().role, Role::FamilyDoctor | Role::HospitalClinician) {
        Channel::Referral
    } else {
        Channel::Public
    }
}

fn refuse(code: IssueCode, path: &str, text: impl std::fmt::Display) -> Refusal {
    Refusal::Outcome(OperationOutcome::one(Issue::at(code, path, text)))
}

fn step_for(to: Status) -> Option<Step> {
    Some(match to {
        // A place offered from the waitlist (pending) is taken.
        Status::Booked => Step::Accept,
        Status::Cancelled => Step::Cancel,
        Status::CheckedIn | Status::Arrived => Step::CheckIn,
        Status::Fulfilled => Step::Complete,
        Status::Noshow => Step::NoShow,
        _ => return None,
    })
}

impl<'a> Plan<'a> {
    /// An Appointment written through FHIR: a create books (status `booked`), an update
    /// takes one step of the life cycle. The slot, the patient and the capacity are the
    /// pool's; the booking itself happens in the write's transaction.
    pub(crate) async fn put_appointment(
        &mut self,
        id: Id,
        body: &Value,
        action: &str,
    ) -> Result<Written, Refusal> {
        let a = input::appointment(body)
            .map_err(|issues| Refusal::Outcome(OperationOutcome::new(issues).with_status(400)))?;
        let resource = format!("Appointment/{id}");
        self.check_scope(a.resident_id, action, &resource).await?;
        let resident = self.who().role == dhp_core::access::Role::Resident;
        let now: NaiveDateTime = district_now(self.state).await?;
        let slot = match self.state.store.slot_state(a.slot_id).await {
            Ok(s) => s,
            Err(StoreError::NotFound(_)) => {
                return Err(refuse(
                    IssueCode::Value,
                    "Appointment.slot[0].reference",
                    format!("Slot/{} does not exist", a.slot_id),
                ))
            }
            Err(e) => return Err(e.into()),
        };
        let existing = if action == "create" {
            None
        } else {
            self.state.store.appointment(id).await?
        };
        let view = match existing {
            None => {
                // A new appointment books its place, or holds it (pending) for a
                // booking to follow.
                if !matches!(a.status, Status::Booked | Status::Pending) {
                    return Err(Refusal::Outcome(
                        OperationOutcome::one(Issue::at(
                            IssueCode::NotSupported,
                            "Appointment.status",
                            format!(
                                "a new appointment is booked (status booked) or held (status pending, as Appointment/$hold does), not {}; free slots are offered by Appointment/$find",
                                a.status.as_str()
                            ),
                        ))
                        .with_status(400),
                    ));
                }
                // A resident books; holding a place for a booking to follow is the
                // institutions' (a hold is booked by the one that holds it).
                if resident && a.status == Status::Pending {
                    return Err(Refusal::Outcome(
                        OperationOutcome::one(Issue::at(
                            IssueCode::Forbidden,
                            "Appointment.status",
                            "a resident books a place (status booked); holds are the institutions'",
                        ))
                        .with_status(403),
                    ));
                }
                if slot.status != "free" {
                    return Err(refuse(
                        IssueCode::Conflict,
                        "Appointment.slot[0].reference",
                        format!("Slot/{} was withdrawn by its organisation", a.slot_id),
                    ));
                }
                if slot.slot.past(now) {
                    return Err(refuse(
                        IssueCode::Value,
                        "Appointment.slot[0].reference",
                        format!(
                            "Slot/{} began at {}: a slot in the past cannot be booked",
                            a.slot_id,
                            slot.slot.start.format("%Y-%m-%d %H:%M")
                        ),
                    ));
                }
                let channel = channel_of(self);
                let limit = slot.slot.limit(channel, now);
                if slot.booked >= limit {
                    let why = if limit < slot.slot.capacity {
                        format!(
                            "Slot/{}: the open places are taken; {} are kept for referrals from community centres until {}",
                            a.slot_id,
                            slot.slot.reserved,
                            slot.slot.release.format("%Y-%m-%d %H:%M")
                        )
                    } else {
                        format!("Slot/{} has no place left", a.slot_id)
                    };
                    return Err(refuse(
                        IssueCode::Conflict,
                        "Appointment.slot[0].reference",
                        why,
                    ));
                }
                let booking = Booking {
                    appointment_id: id,
                    slot_id: a.slot_id,
                    resident_id: a.resident_id,
                    channel,
                    at: now,
                };
                if a.status == Status::Pending {
                    self.set.holds.push((booking, self.who().org_id));
                } else {
                    self.set.bookings.push(booking);
                }
                AppointmentView {
                    row: dhp_store::AppointmentRow {
                        id,
                        slot_id: a.slot_id,
                        resident_id: a.resident_id,
                        status: a.status,
                        cancel_reason: None,
                    },
                    practitioner_id: None,
                    channel: match channel {
                        Channel::Referral => "referral".into(),
                        Channel::Public => "public".into(),
                    },
                    slot: SlotState {
                        booked: slot.booked + 1,
                        ..slot
                    },
                    created: now,
                    updated: now,
                    version: 1,
                    held_by: self.who().org_id.filter(|_| a.status == Status::Pending),
                }
            }
            Some(old) => {
                if old.row.slot_id != a.slot_id {
                    return Err(refuse(
                        IssueCode::Invalid,
                        "Appointment.slot[0].reference",
                        "an appointment keeps its slot: to move it, cancel it and book the new slot",
                    ));
                }
                if old.row.resident_id != a.resident_id {
                    return Err(refuse(
                        IssueCode::Invalid,
                        "Appointment.participant",
                        "an appointment keeps its patient",
                    ));
                }
                // A hold is booked by the institution that holds it (nor is it written
                // unchanged by another).
                if let Some(holder) = old.held_by.filter(|_| {
                    old.row.status == Status::Pending && self.who().org_id != old.held_by
                }) {
                    return Err(Refusal::Outcome(
                        OperationOutcome::one(Issue::at(
                            IssueCode::Forbidden,
                            "Appointment.id",
                            format!("Appointment/{id} is held by Organization/{holder}: only it books or lets go of its hold"),
                        ))
                        .with_status(403),
                    ));
                }
                if old.row.status == a.status {
                    // Nothing moves: the appointment as it stands.
                    let v = appointment_json(&old);
                    self.set.audits.push(audit::entry(
                        &self.actor,
                        action,
                        &resource,
                        Some(a.resident_id),
                        "success",
                        "unchanged",
                    ));
                    return Ok(Written {
                        kind: "Appointment".into(),
                        id,
                        version: old.version,
                        last_updated: pool::instant(old.updated),
                        resource: Some(v),
                        status: 200,
                    });
                }
                let step = step_for(a.status).ok_or_else(|| {
                    refuse(
                        IssueCode::Invalid,
                        "Appointment.status",
                        format!(
                            "an appointment that is {} cannot become {}",
                            old.row.status.as_str(),
                            a.status.as_str()
                        ),
                    )
                })?;
                // A resident cancels their appointment or takes a place offered from
                // the waitlist; checking in, completing and no-shows are the clinic's.
                if resident && !matches!(step, Step::Cancel | Step::Accept) {
                    return Err(Refusal::Outcome(
                        OperationOutcome::one(Issue::at(
                            IssueCode::Forbidden,
                            "Appointment.status",
                            "a resident cancels an appointment or accepts an offered place; the clinic records the rest",
                        ))
                        .with_status(403),
                    ));
                }
                let to = next(old.row.status, step)
                    .map_err(|why| refuse(IssueCode::Invalid, "Appointment.status", why))?;
                self.set.appointment_steps.push(AppointmentStep {
                    appointment_id: id,
                    step,
                    reason: a.cancel_reason.clone(),
                    at: now,
                    from: old.row.status,
                });
                let gives_back = old.row.status.holds_place() && !to.holds_place();
                AppointmentView {
                    row: dhp_store::AppointmentRow {
                        status: to,
                        cancel_reason: a.cancel_reason.clone(),
                        ..old.row.clone()
                    },
                    slot: SlotState {
                        booked: old.slot.booked - u32::from(gives_back),
                        ..old.slot.clone()
                    },
                    updated: now,
                    version: old.version + 1,
                    ..old
                }
            }
        };
        let detail = if self.emergency.contains(&a.resident_id) {
            "written under emergency access (break the glass)"
        } else {
            "written"
        };
        self.set.audits.push(audit::entry(
            &self.actor,
            action,
            &resource,
            Some(a.resident_id),
            "success",
            detail,
        ));
        Ok(Written {
            kind: "Appointment".into(),
            id,
            version: view.version,
            last_updated: pool::instant(view.updated),
            resource: Some(appointment_json(&view)),
            status: if action == "create" { 201 } else { 200 },
        })
    }
}

/// `GET /fhir/Appointment/$find`: free slots as proposed appointments, earliest first
/// (`start`, `end`, `service-type`, `organization`, `practitioner`, `_count`). The
/// places counted are those the caller may book: a family doctor or clinician the
/// referral share too.
pub(crate) async fn find_op(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let who = match signed_in(&state, &headers, "find", "Appointment/$find").await? {
        Ok(p) => p,
        Err(res) => return Ok(res),
    };
    let now = district_now(&state).await?;
    let mut q = SlotQuery {
        org_id: None,
        service: None,
        practitioner_id: None,
        from: now,
        to: now + chrono::Duration::days(14),
        channel: if matches!(
            who.role,
            dhp_core::access::Role::FamilyDoctor | dhp_core::access::Role::HospitalClinician
        ) {
            Channel::Referral
        } else {
            Channel::Public
        },
        now,
        limit: 20,
    };
    let mut issues = Vec::new();
    for (k, v) in &pairs {
        let at =
            |what: String| Issue::at(IssueCode::Invalid, format!("Appointment/$find?{k}"), what);
        let reference = |kind: &str| -> Result<Id, Issue> {
            v.trim()
                .trim_start_matches(&format!("{kind}/"))
                .parse::<Id>()
                .map_err(|_| at(format!("{v:?} is not {kind}/<number>")))
        };
        let when =
            |v: &str| -> Result<NaiveDateTime, Issue> { input::parse_datetime(v).map_err(at) };
        let r = match k.as_str() {
            "start" => when(v).map(|t| q.from = t),
            "end" => when(v).map(|t| q.to = t),
            "service-type" | "specialty" => {
                q.service = Some(
                    v.strip_prefix(&format!("{SERVICE_SYSTEM}|"))
                        .unwrap_or(v)
                        .to_string(),
                );
                Ok(())
            }
            "organization" => reference("Organization").map(|id| q.org_id = Some(id)),
            "practitioner" => reference("Practitioner").map(|id| q.practitioner_id = Some(id)),
            "_count" => match v.parse::<usize>() {
                Ok(n) if (1..=100).contains(&n) => {
                    q.limit = n;
                    Ok(())
                }
                _ => Err(at("must be a whole number from 1 to 100".into())),
            },
            "_format" if v.contains("json") => Ok(()),
            other => Err(Issue::at(
                IssueCode::NotSupported,
                format!("Appointment/$find?{other}"),
                "unknown parameter; $find takes start, end, service-type, organization, practitioner, _count",
            )),
        };
        if let Err(i) = r {
            issues.push(i);
        }
    }
    if q.to <= q.from {
        issues.push(Issue::at(
            IssueCode::Invalid,
            "Appointment/$find?end",
            "end must be after start",
        ));
    } else if q.to - q.from > chrono::Duration::days(92) {
        issues.push(Issue::at(
            IssueCode::Invalid,
            "Appointment/$find?end",
            "a search spans at most 92 days",
        ));
    }
    if !issues.is_empty() {
        return Ok(outcome(OperationOutcome::new(issues).with_status(400)));
    }
    let found = state.store.find_slots(&q).await?;
    let mut practitioners = std::collections::HashMap::new();
    for s in &found {
        if let std::collections::hash_map::Entry::Vacant(e) =
            practitioners.entry(s.slot.schedule_id)
        {
            let (sc, _) = state
                .store
                .search_schedules(&ScheduleFilter {
                    ids: vec![s.slot.schedule_id],
                    limit: 1,
                    ..ScheduleFilter::default()
                })
                .await?;
            e.insert(sc.first().and_then(|s| s.practitioner_id));
        }
    }
    let entries: Vec<Value> = found
        .iter()
        .map(|s| {
            json!({
                "fullUrl": format!("urn:uuid:{}", uuid::Uuid::now_v7()),
                "resource": pool::proposed(
                    &s.slot,
                    &s.service,
                    s.org_id,
                    practitioners.get(&s.slot.schedule_id).copied().flatten(),
                ),
                "search": { "mode": "match" },
            })
        })
        .collect();
    audit::record(
        &*state.store,
        &Actor::from(&who),
        "find",
        "Appointment/$find",
        None,
        "success",
        &format!("{} free slots offered", entries.len()),
    )
    .await?;
    Ok(fhir_json(
        StatusCode::OK,
        &json!({
            "resourceType": "Bundle",
            "type": "searchset",
            "total": entries.len(),
            "link": [{ "relation": "self", "url": format!("{}/Appointment/$find", fhir_base(&state)) }],
            "entry": entries,
        }),
    ))
}

/// `POST /fhir/Appointment/$book`: a proposed appointment (from `$find`) booked, sent
/// as the Appointment itself or as `Parameters` with an `appt-resource` part — the
/// same as a create with status `booked`; or a held one (from `$hold`, with its id)
/// booked — the same as an update of it to `booked`.
pub(crate) async fn book_op(
    state: State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    scheduling_op(state, headers, body, "booked").await
}

/// `POST /fhir/Appointment/$hold`: a proposed appointment (from `$find`) held — a
/// pending appointment keeping its place for `data/booking.toml`'s `hold_minutes`
/// (never past the slot's start) for `$book` to follow; the minute round lets an
/// unbooked hold go. The same as a create with status `pending`.
pub(crate) async fn hold_op(
    state: State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    scheduling_op(state, headers, body, "pending").await
}

/// `$book` and `$hold`: the Appointment sent (itself or as the `appt-resource` part of
/// `Parameters`) written with status `to` — created, or, when it names a stored
/// appointment by id, updated.
async fn scheduling_op(
    state: State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
    to: &str,
) -> Result<Response, AppError> {
    // Who asks, before anything of the body is looked at or looked up.
    let op = if to == "pending" {
        "Appointment/$hold"
    } else {
        "Appointment/$book"
    };
    if let Err(res) = signed_in(&state, &headers, "create", op).await? {
        return Ok(res);
    }
    let sent: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return Ok(outcome(
                OperationOutcome::one(Issue::new(
                    IssueCode::Structure,
                    format!("the body is not JSON: {e}"),
                ))
                .with_status(400),
            ))
        }
    };
    let mut appointment = if sent.get("resourceType").and_then(Value::as_str) == Some("Parameters")
    {
        match sent
            .get("parameter")
            .and_then(Value::as_array)
            .and_then(|ps| {
                ps.iter()
                    .find(|p| p.get("name").and_then(Value::as_str) == Some("appt-resource"))
            })
            .and_then(|p| p.get("resource"))
        {
            Some(a) => a.clone(),
            None => {
                return Ok(outcome(
                    OperationOutcome::one(Issue::at(
                        IssueCode::Required,
                        "Parameters.parameter",
                        "a parameter appt-resource carrying the Appointment is required",
                    ))
                    .with_status(400),
                ))
            }
        }
    } else {
        sent
    };
    if !appointment.is_object() {
        return Ok(outcome(
            OperationOutcome::one(Issue::at(
                IssueCode::Structure,
                "Appointment",
                "the body is an Appointment (or Parameters carrying one)",
            ))
            .with_status(400),
        ));
    }
    // $hold holds whatever the status sent; $book books a proposed or held one.
    if to == "pending"
        || matches!(
            appointment.get("status").and_then(Value::as_str),
            None | Some("proposed") | Some("pending")
        )
    {
        appointment["status"] = json!(to);
    }
    // A held appointment named by its id is booked by updating it; an id the pool
    // does not hold is refused rather than booked afresh.
    if let Some(id) = appointment.get("id") {
        let held = match id.as_str().and_then(|t| t.parse::<i64>().ok()) {
            Some(n) if to == "booked" => state.store.appointment(n).await?.map(|_| n),
            _ => None,
        };
        let Some(n) = held else {
            return Ok(outcome(
                OperationOutcome::one(Issue::at(
                    IssueCode::NotFound,
                    "Appointment.id",
                    format!(
                        "{id} is not an appointment held here: $hold and $book take a proposed appointment (from $find) without an id, $book also a held one by its id"
                    ),
                ))
                .with_status(404),
            ));
        };
        let body = Bytes::from(appointment.to_string());
        return super::rest::update(
            state,
            axum::extract::Path(("Appointment".to_string(), n.to_string())),
            headers,
            body,
        )
        .await;
    }
    let body = Bytes::from(appointment.to_string());
    let uri: axum::http::Uri = "/fhir/Appointment"
        .parse()
        .map_err(|e| AppError::Internal(format!("uri: {e}")))?;
    super::rest::create(state, uri, headers, body).await
}
