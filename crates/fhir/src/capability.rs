//! The `CapabilityStatement` (`GET /fhir/metadata`): it lists exactly the resources and
//! interactions the server implements, and nothing it does not.

use serde_json::{json, Value};

use crate::FHIR_VERSION;

/// What the server supports, per resource type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Supported {
    pub resource: &'static str,
    pub interactions: &'static [&'static str],
    pub search_params: &'static [(&'static str, &'static str)],
}

/// The resources and interactions implemented today.
pub const SUPPORTED: &[Supported] = &[
    Supported {
        resource: "Patient",
        interactions: &[
            "read",
            "vread",
            "history-instance",
            "create",
            "update",
            "delete",
            "search-type",
        ],
        search_params: crate::search::PATIENT_PARAMS,
    },
    read_only("Organization"),
    read_only("Practitioner"),
    writable("Encounter"),
    writable("Condition"),
    writable("Observation"),
    writable("Immunization"),
    read_only("CareTeam"),
    Supported {
        resource: "AuditEvent",
        interactions: &["search-type"],
        search_params: &[("patient", "reference"), ("_count", "number")],
    },
];

/// Read, version read, history, create, update and delete.
const fn writable(resource: &'static str) -> Supported {
    Supported {
        resource,
        interactions: &[
            "read",
            "vread",
            "history-instance",
            "create",
            "update",
            "delete",
        ],
        search_params: &[],
    }
}

const fn read_only(resource: &'static str) -> Supported {
    Supported {
        resource,
        interactions: &["read"],
        search_params: &[],
    }
}

/// Whether `resource` supports `interaction`.
pub fn supports(resource: &str, interaction: &str) -> bool {
    SUPPORTED
        .iter()
        .any(|s| s.resource == resource && s.interactions.contains(&interaction))
}

/// The statement for a server whose FHIR base is `base_url`.
pub fn capability_statement(base_url: &str, software_version: &str, date: &str) -> Value {
    let resources: Vec<Value> = SUPPORTED
        .iter()
        .map(|s| {
            json!({
                "type": s.resource,
                "interaction": s.interactions.iter().map(|i| json!({ "code": i })).collect::<Vec<_>>(),
                "searchParam": s.search_params.iter().map(|(n, t)| json!({ "name": n, "type": t })).collect::<Vec<_>>(),
            })
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
        assert_eq!(resources[0]["interaction"][6]["code"], "search-type");
        assert_eq!(resources[0]["searchParam"].as_array().unwrap().len(), 7);
        for r in &resources[1..resources.len() - 1] {
            let codes = r["interaction"].as_array().unwrap().len();
            assert!(codes == 1 || codes == 6, "{}", r["type"]);
        }
        assert!(supports("Patient", "read"));
        assert!(supports("Observation", "create"));
        assert!(!supports("Organization", "create"));
        assert!(!supports("Appointment", "read"));
        // Every writable type is declared so, and the other way round.
        for kind in crate::input::WRITABLE {
            assert!(supports(kind, "update"), "{kind}");
        }
    }
}
