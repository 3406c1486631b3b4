//! The `CapabilityStatement` (`GET /fhir/metadata`): it lists exactly the resources and
//! interactions the server implements, and nothing it does not.

use serde_json::{json, Value};

use crate::types::TYPES;
use crate::FHIR_VERSION;

/// What the server supports, per resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Supported {
    pub resource: &'static str,
    pub interactions: &'static [&'static str],
}

/// The resources and interactions implemented today (from [`crate::types::TYPES`]),
/// Patient first.
pub const SUPPORTED: &[Supported] = &supported();

const fn supported() -> [Supported; TYPES.len()] {
    let mut out = [Supported {
        resource: "",
        interactions: &[],
    }; TYPES.len()];
    // Patient first (the type a reader of the statement looks for), then table order.
    let (mut i, mut k) = (0, 1);
    while i < TYPES.len() {
        let t = &TYPES[i];
        let s = Supported {
            resource: t.name,
            interactions: t.interactions,
        };
        if is_patient(t.name) {
            out[0] = s;
        } else {
            out[k] = s;
            k += 1;
        }
        i += 1;
    }
    out
}

const fn is_patient(name: &str) -> bool {
    let (a, b) = (name.as_bytes(), b"Patient");
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether `resource` supports `interaction`.
pub fn supports(resource: &str, interaction: &str) -> bool {
    SUPPORTED
        .iter()
        .any(|s| s.resource == resource && s.interactions.contains(&interaction))
}

/// The search parameters of a type, as (name, FHIR type).
fn search_params(resource: &str) -> Vec<(&'static str, &'static str)> {
    let mut params: Vec<(&str, &str)> = match resource {
        "Patient" => crate::search::PATIENT_PARAMS.to_vec(),
        "AuditEvent" => return vec![("patient", "reference"), ("_count", "number")],
        "Task" => {
            return crate::referral::TASK_PARAMS
                .iter()
                .chain(crate::scheduling::COMMON)
                .copied()
                .collect()
        }
        pooled if crate::scheduling::is_pool(pooled) => {
            return crate::scheduling::params(pooled)
                .iter()
                .chain(crate::scheduling::COMMON)
                .copied()
                .collect()
        }
        other => crate::search::search_params(other)
            .unwrap_or_default()
            .iter()
            .map(|p| (p.name, p.kind.name()))
            .collect(),
    };
    params.extend(crate::search::COMMON_PARAMS);
    params
}

/// The statement for a server whose FHIR base is `base_url`.
/// Operations the server carries out, per resource type: (type, name, definition).
pub const OPERATIONS: &[(&str, &str, &str)] = &[
    (
        "Patient",
        "everything",
        "http://hl7.org/fhir/OperationDefinition/Patient-everything",
    ),
    (
        "Condition",
        "report",
        "https://fhir.dhp.example/OperationDefinition/Condition-report",
    ),
    // The Argonaut scheduling operations: free slots as proposed appointments, holding
    // one (a create with status pending, kept for data/booking.toml's hold_minutes)
    // and booking one (a create with status booked, or an update of a hold to booked).
    (
        "Appointment",
        "find",
        "http://fhir.org/guides/argonaut-scheduling/OperationDefinition/appointment-find",
    ),
    (
        "Appointment",
        "hold",
        "http://fhir.org/guides/argonaut-scheduling/OperationDefinition/appointment-hold",
    ),
    (
        "Appointment",
        "book",
        "http://fhir.org/guides/argonaut-scheduling/OperationDefinition/appointment-book",
    ),
];

pub fn capability_statement(base_url: &str, software_version: &str, date: &str) -> Value {
    let resources: Vec<Value> = SUPPORTED
        .iter()
        .map(|s| {
            let mut r = json!({
                "type": s.resource,
                "interaction": s.interactions.iter().map(|i| json!({ "code": i })).collect::<Vec<_>>(),
                "searchParam": search_params(s.resource).iter().map(|(n, t)| json!({ "name": n, "type": t })).collect::<Vec<_>>(),
            });
            let operations: Vec<Value> = OPERATIONS
                .iter()
                .filter(|(resource, _, _)| *resource == s.resource)
                .map(|(_, name, definition)| json!({ "name": name, "definition": definition }))
                .collect();
            if !operations.is_empty() {
                r["operation"] = Value::Array(operations);
            }
            r
        })
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "kind": "instance",
        "software": { "name": "District Health Platform (dhp)", "version": software_version },
        "implementation": { "description": "District Health Platform FHIR API", "url": base_url },
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [{
            "mode": "server",
            "security": {
                "service": [{
                    "coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "OAuth",
                    }]
                }],
                "description": "Bearer tokens from POST /auth/token (password and client_credentials grants). Access is scoped by role and organisation unit; every read is audited.",
            },
            "resource": resources,
            "interaction": [{ "code": "transaction" }, { "code": "batch" }],
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_claims_exactly_what_is_supported() {
        let c = capability_statement("http://127.0.0.1:8080/fhir", "0.0.0", "2026-11-23");
        assert_eq!(c["fhirVersion"], "4.0.1");
        let resources = c["rest"][0]["resource"].as_array().unwrap();
        assert_eq!(resources.len(), SUPPORTED.len());
        let patient = &resources[0];
        assert_eq!(patient["interaction"][6]["code"], "search-type");
        let names: Vec<&str> = patient["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for n in [
            "identifier",
            "birthdate",
            "address",
            "organization",
            "_lastUpdated",
            "_sort",
        ] {
            assert!(names.contains(&n), "{n}");
        }
        assert!(supports("Patient", "read"));
        assert!(supports("Observation", "create"));
        assert!(supports("PractitionerRole", "search-type"));
        assert!(!supports("Organization", "create"));
        assert!(supports("Appointment", "create"));
        assert!(!supports("Bundle", "read"));
        // Every writable type is declared so, and the other way round; every searchable
        // type has its parameters listed.
        for kind in crate::input::WRITABLE {
            assert!(supports(kind, "update"), "{kind}");
        }
        for s in SUPPORTED {
            assert_eq!(
                s.interactions.contains(&"update"),
                crate::input::WRITABLE.contains(&s.resource),
                "{}",
                s.resource
            );
            if s.interactions.contains(&"search-type")
                && s.resource != "Patient"
                && s.resource != "AuditEvent"
            {
                assert!(
                    crate::search::search_params(s.resource).is_some()
                        || crate::types::care_tables(s.resource),
                    "{}",
                    s.resource
                );
            }
        }
    }
}
