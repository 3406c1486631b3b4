//! An incoming Appointment: what the slot pool needs of it (the status, the slot, the
//! patient, a cancellation's reason). Everything else about an appointment (its start,
//! its service, who runs it) is the slot's; an Appointment saying otherwise is refused
//! rather than silently overruled.

use dhp_core::booking::Status;
use dhp_core::Id;
use serde_json::Value;

use super::Reader;
use crate::outcome::{Issue, IssueCode};

/// Code system of appointment cancellation reasons (HL7 terminology, FHIR R4
/// `appointment-cancellation-reason`).
pub const CANCEL_REASON_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason";

/// The codes of [`CANCEL_REASON_SYSTEM`] (HL7 terminology, as published with R4).
pub const CANCEL_REASONS: &[&str] = &[
    "pat",
    "pat-crs",
    "pat-cpp",
    "pat-dec",
    "pat-fb",
    "pat-lt",
    "pat-mt",
    "pat-mv",
    "pat-preg",
    "pat-swl",
    "pat-ucp",
    "prov",
    "prov-pers",
    "prov-dch",
    "prov-edu",
    "prov-hosp",
    "prov-labs",
    "prov-mri",
    "prov-onc",
    "maint",
    "meds-inc",
    "other",
    "oth-cms",
    "oth-err",
    "oth-fin",
    "oth-iv",
    "oth-int",
    "oth-mu",
    "oth-room",
    "oth-oerr",
    "oth-swie",
    "oth-weath",
];

/// What the pool keeps of an Appointment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppointmentInput {
    pub status: Status,
    pub slot_id: Id,
    pub resident_id: Id,
    /// The cancellation reason's code, when the appointment is cancelled.
    pub cancel_reason: Option<String>,
}

/// Read an Appointment. One slot, one Patient participant; a cancelled one says why
/// (a code of [`CANCEL_REASON_SYSTEM`]).
pub fn appointment(v: &Value) -> Result<AppointmentInput, Vec<Issue>> {
    let mut r = Reader::new("Appointment", v);
    let all: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
    let status = r.code("status", &all).and_then(Status::parse);
    let slots = v.get("slot").and_then(Value::as_array);
    let slot_id = match slots.map(Vec::len) {
        Some(1) => r.reference("slot[0]", &["Slot"], true).map(|(_, id)| id),
        Some(0) | None => {
            r.fail(
                IssueCode::Required,
                "slot",
                "an appointment in the slot pool names its slot (Slot/…)",
            );
            None
        }
        Some(n) => {
            r.fail(
                IssueCode::NotSupported,
                "slot",
                format!("{n} slots: one appointment takes one slot"),
            );
            None
        }
    };
    let participants = v
        .get("participant")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let patients: Vec<usize> = participants
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            p.pointer("/actor/reference")
                .and_then(Value::as_str)
                .is_some_and(|t| t.starts_with("Patient/"))
        })
        .map(|(i, _)| i)
        .collect();
    let resident_id = match patients.as_slice() {
        [i] => r
            .reference(&format!("participant[{i}].actor"), &["Patient"], true)
            .map(|(_, id)| id),
        [] => {
            r.fail(
                IssueCode::Required,
                "participant",
                "a participant whose actor is the Patient is required",
            );
            None
        }
        _ => {
            r.fail(
                IssueCode::NotSupported,
                "participant",
                "one appointment is for one patient",
            );
            None
        }
    };
    let cancel_reason = match (status, v.get("cancelationReason")) {
        (Some(Status::Cancelled), Some(_)) => r
            .coding("cancelationReason", Some(CANCEL_REASON_SYSTEM))
            .and_then(|(i, code)| {
                if CANCEL_REASONS.contains(&code) {
                    Some(code.to_string())
                } else {
                    r.fail(
                        IssueCode::Value,
                        &format!("cancelationReason.coding[{i}].code"),
                        format!("{code:?} is not a code of {CANCEL_REASON_SYSTEM}"),
                    );
                    None
                }
            }),
        (Some(Status::Cancelled), None) => {
            r.fail(
                IssueCode::Required,
                "cancelationReason",
                "a cancelled appointment says why (a code of appointment-cancellation-reason)",
            );
            None
        }
        _ => None,
    };
    let out = match (status, slot_id, resident_id) {
        (Some(status), Some(slot_id), Some(resident_id)) => Some(AppointmentInput {
            status,
            slot_id,
            resident_id,
            cancel_reason,
        }),
        _ => None,
    };
    r.finish(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(v: Value) -> Vec<String> {
        appointment(&v)
            .unwrap_err()
            .iter()
            .filter_map(|i| i.expression.clone())
            .collect()
    }

    #[test]
    fn an_appointment_names_its_slot_its_patient_and_why_it_was_cancelled() {
        let ok = appointment(&json!({
            "resourceType": "Appointment", "status": "booked",
            "slot": [{ "reference": "Slot/7" }],
            "participant": [
                { "actor": { "reference": "Organization/2" }, "status": "accepted" },
                { "actor": { "reference": "Patient/9" }, "status": "accepted" }
            ]
        }))
        .unwrap();
        assert_eq!(
            (ok.status, ok.slot_id, ok.resident_id),
            (Status::Booked, 7, 9)
        );
        assert!(
            paths(json!({ "resourceType": "Appointment", "status": "booked",
            "participant": [{ "actor": { "reference": "Patient/9" } }] }))
            .contains(&"Appointment.slot".to_string())
        );
        assert!(paths(
            json!({ "resourceType": "Appointment", "status": "cancelled",
            "slot": [{ "reference": "Slot/7" }],
            "participant": [{ "actor": { "reference": "Patient/9" } }] })
        )
        .contains(&"Appointment.cancelationReason".to_string()));
        assert!(paths(json!({ "resourceType": "Appointment", "status": "cancelled",
            "slot": [{ "reference": "Slot/7" }],
            "cancelationReason": { "coding": [{ "system": CANCEL_REASON_SYSTEM, "code": "bored" }] },
            "participant": [{ "actor": { "reference": "Patient/9" } }] }))
        .contains(&"Appointment.cancelationReason.coding[0].code".to_string()));
        assert!(
            paths(json!({ "resourceType": "Appointment", "status": "booked",
            "slot": [{ "reference": "Slot/7" }, { "reference": "Slot/8" }],
            "participant": [{ "actor": { "reference": "Patient/9" } }] }))
            .contains(&"Appointment.slot".to_string())
        );
        assert!(
            paths(json!({ "resourceType": "Appointment", "status": "taken",
            "slot": [{ "reference": "Slot/7" }],
            "participant": [{ "actor": { "reference": "Patient/9" } }] }))
            .contains(&"Appointment.status".to_string())
        );
    }
}
