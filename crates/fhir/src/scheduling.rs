//! The unified slot pool (统一号源) as FHIR: Schedule, Slot and Appointment rendered
//! from the pool's own tables (never kept as received, so a booking made on a page, in
//! a referral or through FHIR is the same row), and the search parameters each takes.
//! A slot's places travel as the SMART Scheduling Links `slot-capacity` extension (the
//! places still open) with the platform's `slot-pool` extension beside it (capacity,
//! places reserved for referrals, when they are released).

use chrono::NaiveDateTime;
use dhp_core::booking::{Schedule, Slot, Status};
use dhp_core::query::DateCond;
use dhp_core::Id;
use serde_json::{json, Value};

use crate::input::CANCEL_REASON_SYSTEM;
use crate::outcome::{Issue, IssueCode};
use crate::search::{DEFAULT_COUNT, MAX_COUNT, MAX_OFFSET};

/// The SMART Scheduling Links extension: how many appointments the slot can still take.
pub const SLOT_CAPACITY_EXT: &str =
    "http://fhir-registry.smarthealthit.org/StructureDefinition/slot-capacity";
/// The platform's extension on Slot: `capacity`, `reserved` (places kept for referrals
/// from community centres) and `release` (when those open to everyone).
pub const SLOT_POOL_EXT: &str = "https://fhir.dhp.example/StructureDefinition/slot-pool";
/// The platform's extension on Appointment: `public`, or `referral` (a place of the
/// share reserved for referrals).
pub const BOOKING_CHANNEL_EXT: &str =
    "https://fhir.dhp.example/StructureDefinition/booking-channel";
/// Code system of the services and departments schedules are published for.
pub const SERVICE_SYSTEM: &str = "https://fhir.dhp.example/CodeSystem/service";

/// The types served by the slot pool.
pub const POOL_TYPES: [&str; 3] = ["Schedule", "Slot", "Appointment"];

/// Is `kind` served by the slot pool?
pub fn is_pool(kind: &str) -> bool {
    POOL_TYPES.contains(&kind)
}

fn reference(kind: &str, id: Id) -> Value {
    json!({ "reference": format!("{kind}/{id}") })
}

pub use crate::resources::instant;
use crate::resources::shanghai;

fn service_type(service: &str) -> Value {
    json!([{ "coding": [{ "system": SERVICE_SYSTEM, "code": service }] }])
}

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A schedule. `last_updated`: when the pool was published.
pub fn schedule(s: &Schedule, last_updated: &str) -> Value {
    let days: Vec<&str> = WEEKDAYS
        .iter()
        .zip(s.weekdays)
        .filter(|(_, on)| *on)
        .map(|(d, _)| *d)
        .collect();
    let mut actor = vec![reference("Organization", s.org_id)];
    if let Some(p) = s.practitioner_id {
        actor.push(reference("Practitioner", p));
    }
    json!({
        "resourceType": "Schedule",
        "id": s.id.to_string(),
        "meta": { "versionId": "1", "lastUpdated": last_updated },
        "active": true,
        "serviceType": service_type(&s.service),
        "actor": actor,
        "comment": format!(
            "{} from {}: {} slots of {} min, {} place(s) each, {}% kept for referrals until {} h before; {} days ahead",
            days.join(","),
            s.first_start.format("%H:%M"),
            s.slots_per_day,
            s.slot_minutes,
            s.capacity,
            s.referral_share,
            s.release_hours,
            s.horizon_days
        ),
    })
}

/// The FHIR status of a slot holding `booked` appointments (`withdrawn`: cancelled by
/// its organisation).
pub fn slot_status(slot: &Slot, booked: u32, withdrawn: bool) -> &'static str {
    if withdrawn {
        "busy-unavailable"
    } else if booked >= slot.capacity {
        "busy"
    } else {
        "free"
    }
}

/// A slot of `service`, holding `booked` appointments.
pub fn slot(slot: &Slot, service: &str, booked: u32, withdrawn: bool, last_updated: &str) -> Value {
    json!({
        "resourceType": "Slot",
        "id": slot.id.to_string(),
        "meta": { "versionId": "1", "lastUpdated": last_updated },
        "extension": [
            { "url": SLOT_CAPACITY_EXT, "valueInteger": slot.capacity.saturating_sub(booked) },
            { "url": SLOT_POOL_EXT, "extension": [
                { "url": "capacity", "valueInteger": slot.capacity },
                { "url": "reserved", "valueInteger": slot.reserved },
                { "url": "release", "valueDateTime": shanghai(slot.release) },
            ] },
        ],
        "serviceType": service_type(service),
        "schedule": reference("Schedule", slot.schedule_id),
        "status": slot_status(slot, booked, withdrawn),
        "start": shanghai(slot.start),
        "end": shanghai(slot.end),
    })
}

/// What an Appointment shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppointmentView<'a> {
    pub id: Id,
    pub version: i64,
    pub resident_id: Id,
    pub status: Status,
    pub cancel_reason: Option<&'a str>,
    pub slot: &'a Slot,
    pub service: &'a str,
    pub org_id: Id,
    pub practitioner_id: Option<Id>,
    pub channel: &'a str,
    pub created: NaiveDateTime,
    pub updated: NaiveDateTime,
}

/// An appointment in the pool.
pub fn appointment(a: &AppointmentView<'_>) -> Value {
    let mut participants = vec![
        json!({ "actor": reference("Patient", a.resident_id), "status": "accepted" }),
        json!({ "actor": reference("Organization", a.org_id), "status": "accepted" }),
    ];
    if let Some(p) = a.practitioner_id {
        participants.push(json!({ "actor": reference("Practitioner", p), "status": "accepted" }));
    }
    let mut v = json!({
        "resourceType": "Appointment",
        "id": a.id.to_string(),
        "meta": { "versionId": a.version.to_string(), "lastUpdated": instant(a.updated) },
        "extension": [{ "url": BOOKING_CHANNEL_EXT, "valueCode": a.channel }],
        "status": a.status.as_str(),
        "serviceType": service_type(a.service),
        "start": shanghai(a.slot.start),
        "end": shanghai(a.slot.end),
        "created": a.created.format("%Y-%m-%d").to_string(),
        "slot": [reference("Slot", a.slot.id)],
        "participant": participants,
    });
    if let Some(r) = a.cancel_reason {
        v["cancelationReason"] =
            json!({ "coding": [{ "system": CANCEL_REASON_SYSTEM, "code": r }] });
    }
    v
}

/// A free slot offered by `$find` as a proposed Appointment (not stored).
pub fn proposed(slot: &Slot, service: &str, org_id: Id, practitioner: Option<Id>) -> Value {
    let mut participants =
        vec![json!({ "actor": reference("Organization", org_id), "status": "accepted" })];
    if let Some(p) = practitioner {
        participants.push(json!({ "actor": reference("Practitioner", p), "status": "accepted" }));
    }
    json!({
        "resourceType": "Appointment",
        "status": "proposed",
        "serviceType": service_type(service),
        "start": shanghai(slot.start),
        "end": shanghai(slot.end),
        "slot": [reference("Slot", slot.id)],
        "participant": participants,
    })
}

/// The search parameters of each pool type (name, FHIR type), for the
/// CapabilityStatement and for the message naming an unknown one.
pub fn params(kind: &str) -> &'static [(&'static str, &'static str)] {
    match kind {
        "Schedule" => &[
            ("_id", "token"),
            ("actor", "reference"),
            ("service-type", "token"),
        ],
        "Slot" => &[
            ("_id", "token"),
            ("schedule", "reference"),
            ("schedule.actor", "reference"),
            ("status", "token"),
            ("service-type", "token"),
            ("start", "date"),
        ],
        "Appointment" => &[
            ("_id", "token"),
            ("patient", "reference"),
            ("actor", "reference"),
            ("practitioner", "reference"),
            ("slot", "reference"),
            ("status", "token"),
            ("service-type", "token"),
            ("date", "date"),
        ],
        _ => &[],
    }
}

/// The parameters every pool search takes besides its own.
pub const COMMON: &[(&str, &str)] = &[
    ("_count", "number"),
    ("_offset", "number"),
    ("_summary", "special"),
];

/// What a search of a pool type asks for (each list: any of its values).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PoolSearch {
    pub ids: Vec<Id>,
    pub patients: Vec<Id>,
    pub orgs: Vec<Id>,
    pub practitioners: Vec<Id>,
    pub schedules: Vec<Id>,
    pub slots: Vec<Id>,
    pub statuses: Vec<String>,
    pub services: Vec<String>,
    /// On the slot's start (Slot `start`, Appointment `date`).
    pub start: Vec<DateCond>,
    /// Some condition can match nothing (an id that cannot exist).
    pub impossible: bool,
    pub count: i64,
    pub offset: i64,
    pub summary_count: bool,
}

impl PoolSearch {
    /// The search as the store's record query: ids, the resident (`patient`), the
    /// organisation and practitioner (`actor`), the main reference (a slot's schedule,
    /// an appointment's slot), status and service tokens, and the slot's start.
    pub fn query(&self) -> dhp_core::query::RecordQuery {
        use dhp_core::query::{Field, Filter, RecordQuery};
        let mut f = Vec::new();
        for (field, ids) in [
            (Field::Id, &self.ids),
            (Field::Resident, &self.patients),
            (Field::Org, &self.orgs),
            (Field::Practitioner, &self.practitioners),
        ] {
            if !ids.is_empty() {
                f.push(Filter::Ids(field, ids.clone()));
            }
        }
        let refs: Vec<Id> = self.schedules.iter().chain(&self.slots).copied().collect();
        if !refs.is_empty() {
            f.push(Filter::Ids(Field::Reference, refs));
        }
        if !self.statuses.is_empty() {
            f.push(Filter::Tokens(Field::Status, self.statuses.clone()));
        }
        if !self.services.is_empty() {
            f.push(Filter::Tokens(Field::Code, self.services.clone()));
        }
        f.extend(self.start.iter().map(|c| Filter::Date(Field::Date, *c)));
        RecordQuery {
            filters: f,
            sort: Vec::new(),
            limit: if self.summary_count { 0 } else { self.count },
            offset: self.offset,
        }
    }
}

/// Reference values `Type/id` or `id` (for `types[0]`), comma-separated; into the list
/// of the type each names.
fn references(value: &str, types: &[&str]) -> Result<Vec<(String, Id)>, String> {
    value
        .split(',')
        .map(|one| {
            let one = one.trim();
            let (t, id) = match one.split_once('/') {
                Some((t, id)) => (t, id),
                None => (types[0], one),
            };
            if !types.contains(&t) {
                return Err(format!("{one:?} does not refer to {}", types.join(" or ")));
            }
            let id = id
                .parse::<Id>()
                .map_err(|_| format!("{one:?} is not {}/<number>", types[0]))?;
            Ok((t.to_string(), id))
        })
        .collect()
}

/// A token's code (the system, when given, must be `system`).
fn codes(value: &str, system: Option<&str>) -> Result<Vec<String>, String> {
    value
        .split(',')
        .map(|one| match (one.split_once('|'), system) {
            (None, _) => Ok(one.trim().to_string()),
            (Some((s, c)), Some(want)) if s == want || s.is_empty() => Ok(c.trim().to_string()),
            (Some((s, _)), _) => Err(format!(
                "code system {s:?} is not searchable here{}",
                system.map(|w| format!("; use {w}")).unwrap_or_default()
            )),
        })
        .collect()
}

/// Parse the query of a search of pool type `kind`.
pub fn parse_search(kind: &str, pairs: &[(String, String)]) -> Result<PoolSearch, Vec<Issue>> {
    let mut q = PoolSearch {
        count: DEFAULT_COUNT,
        ..PoolSearch::default()
    };
    let mut issues = Vec::new();
    let known = params(kind);
    for (key, value) in pairs {
        let at = |what: String| Issue::at(IssueCode::Invalid, format!("{kind}?{key}"), what);
        if value.chars().any(char::is_control) {
            issues.push(at("contains a control character".into()));
            continue;
        }
        let add_refs = |types: &[&str], q: &mut PoolSearch| match references(value, types) {
            Ok(refs) => {
                for (t, id) in refs {
                    match t.as_str() {
                        "Patient" => q.patients.push(id),
                        "Organization" => q.orgs.push(id),
                        "Practitioner" => q.practitioners.push(id),
                        "Schedule" => q.schedules.push(id),
                        _ => q.slots.push(id),
                    }
                }
                Ok(())
            }
            Err(e) => Err(at(e)),
        };
        let r = match (kind, key.as_str()) {
            (_, "_id") => value
                .split(',')
                .try_for_each(|v| match v.trim().parse::<Id>() {
                    Ok(id) => {
                        q.ids.push(id);
                        Ok(())
                    }
                    Err(_) => {
                        // An id this server never gives matches nothing.
                        q.impossible = true;
                        Ok(())
                    }
                }),
            ("Schedule", "actor") | ("Slot", "schedule.actor") => {
                add_refs(&["Organization", "Practitioner"], &mut q)
            }
            ("Slot", "schedule") => add_refs(&["Schedule"], &mut q),
            ("Appointment", "patient") => add_refs(&["Patient"], &mut q),
            ("Appointment", "actor") => {
                add_refs(&["Patient", "Organization", "Practitioner"], &mut q)
            }
            ("Appointment", "practitioner") => add_refs(&["Practitioner"], &mut q),
            ("Appointment", "slot") => add_refs(&["Slot"], &mut q),
            ("Slot" | "Appointment", "status") => {
                let allowed: Vec<&str> = if kind == "Slot" {
                    vec![
                        "free",
                        "busy",
                        "busy-unavailable",
                        "busy-tentative",
                        "entered-in-error",
                    ]
                } else {
                    Status::ALL.iter().map(|s| s.as_str()).collect()
                };
                match codes(value, None) {
                    Ok(cs) => match cs.iter().find(|c| !allowed.contains(&c.as_str())) {
                        Some(c) => Err(at(format!("{c:?} is not one of {}", allowed.join(", ")))),
                        None => {
                            q.statuses.extend(cs);
                            Ok(())
                        }
                    },
                    Err(e) => Err(at(e)),
                }
            }
            (_, "service-type") => match codes(value, Some(SERVICE_SYSTEM)) {
                Ok(cs) => {
                    q.services.extend(cs);
                    Ok(())
                }
                Err(e) => Err(at(e)),
            },
            ("Slot", "start") | ("Appointment", "date") => {
                match crate::search::date_conds(value, false) {
                    Ok(c) => {
                        q.start.extend(c);
                        Ok(())
                    }
                    Err(e) => Err(at(e)),
                }
            }
            (_, "_count") => match value.parse::<i64>() {
                Ok(n) if (0..=MAX_COUNT).contains(&n) => {
                    q.count = n;
                    Ok(())
                }
                _ => Err(at(format!("must be a whole number from 0 to {MAX_COUNT}"))),
            },
            (_, "_offset") => match value.parse::<i64>() {
                Ok(n) if (0..=MAX_OFFSET).contains(&n) => {
                    q.offset = n;
                    Ok(())
                }
                _ => Err(at(format!("must be a whole number from 0 to {MAX_OFFSET}"))),
            },
            (_, "_summary") if value == "count" => {
                q.summary_count = true;
                Ok(())
            }
            (_, "_summary") if value == "false" => Ok(()),
            (_, "_format") if value.contains("json") => Ok(()),
            _ => {
                let names: Vec<&str> = known.iter().chain(COMMON).map(|(n, _)| *n).collect();
                Err(Issue::at(
                    IssueCode::NotSupported,
                    format!("{kind}?{key}"),
                    format!(
                        "unknown or unsupported search parameter {key:?}; {kind} supports {} (sorted by start)",
                        names.join(", ")
                    ),
                ))
            }
        };
        if let Err(i) = r {
            issues.push(i);
        }
    }
    if issues.is_empty() {
        Ok(q)
    } else {
        Err(issues)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn slot_at(h: u32) -> Slot {
        let start = NaiveDate::from_ymd_opt(2026, 12, 3)
            .unwrap()
            .and_hms_opt(h, 0, 0)
            .unwrap();
        Slot {
            id: 5,
            schedule_id: 2,
            start,
            end: start + chrono::Duration::minutes(30),
            capacity: 4,
            reserved: 2,
            release: start - chrono::Duration::hours(24),
        }
    }

    #[test]
    fn a_slot_carries_its_open_places_and_its_reserved_share() {
        let v = slot(
            &slot_at(9),
            "cardiology",
            3,
            false,
            "2026-12-01T00:00:00.000Z",
        );
        assert_eq!(v["status"], "free");
        assert_eq!(v["extension"][0]["url"], SLOT_CAPACITY_EXT);
        assert_eq!(v["extension"][0]["valueInteger"], 1);
        assert_eq!(v["extension"][1]["extension"][1]["valueInteger"], 2);
        assert_eq!(v["start"], "2026-12-03T09:00:00+08:00");
        assert_eq!(
            slot(&slot_at(9), "cardiology", 4, false, "")["status"],
            "busy"
        );
        assert_eq!(
            slot(&slot_at(9), "cardiology", 0, true, "")["status"],
            "busy-unavailable"
        );
    }

    #[test]
    fn searches_read_their_parameters_and_name_the_bad_ones() {
        let q = parse_search(
            "Slot",
            &pairs(&[
                ("status", "free"),
                ("start", "ge2026-12-02T09:30"),
                ("schedule.actor", "Organization/3"),
                ("service-type", &format!("{SERVICE_SYSTEM}|cardiology")),
            ]),
        )
        .unwrap();
        assert_eq!(q.statuses, vec!["free"]);
        assert_eq!(q.orgs, vec![3]);
        assert_eq!(q.services, vec!["cardiology"]);
        assert_eq!(q.start.len(), 1);
        let bad = parse_search(
            "Appointment",
            &pairs(&[
                ("status", "taken"),
                ("patient", "Organization/1"),
                ("_sort", "date"),
            ]),
        )
        .unwrap_err();
        let at: Vec<_> = bad.iter().filter_map(|i| i.expression.clone()).collect();
        assert_eq!(
            at,
            vec![
                "Appointment?status",
                "Appointment?patient",
                "Appointment?_sort"
            ]
        );
        assert!(
            parse_search("Appointment", &pairs(&[("_id", "abc")]))
                .unwrap()
                .impossible
        );
    }
}
