//! The audit log as FHIR `AuditEvent`s (R4), for managers.

use chrono::NaiveDateTime;
use serde_json::{json, Value};

/// One audit entry as the store keeps it (the FHIR crate does not depend on the store).
#[derive(Debug, Clone, Copy)]
pub struct AuditEntry<'a> {
    pub id: &'a str,
    /// UTC.
    pub recorded: NaiveDateTime,
    pub username: &'a str,
    pub role: &'a str,
    pub action: &'a str,
    pub resource: &'a str,
    pub outcome: &'a str,
    pub detail: &'a str,
}

/// The AuditEventAction code (C create, R read or search, U update, D delete, E
/// execute) of an entry's action.
fn action_code(action: &str) -> &'static str {
    match action {
        "create" | "import" => "C",
        "update" => "U",
        "delete" => "D",
        "read" | "vread" | "search" | "history" | "export" | "everything" => "R",
        _ => "E",
    }
}

/// The FHIR AuditEvent for an entry.
pub fn audit_event(e: &AuditEntry<'_>) -> Value {
    let login = e.action == "login";
    let kind = if login {
        json!({ "system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110114", "display": "User Authentication" })
    } else {
        json!({ "system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation" })
    };
    // AuditEventOutcome: 0 success, 4 minor failure, 8 serious failure.
    let outcome = match e.outcome {
        "success" => "0",
        "not-found" | "invalid" => "4",
        _ => "8",
    };
    let who = if e.username.is_empty() {
        json!({ "display": "anonymous (no valid token)" })
    } else {
        json!({ "identifier": { "value": e.username }, "display": format!("{} ({})", e.username, e.role) })
    };
    let mut v = json!({
        "resourceType": "AuditEvent",
        "id": e.id,
        "type": kind,
        "action": action_code(e.action),
        "recorded": format!("{}Z", e.recorded.format("%Y-%m-%dT%H:%M:%S%.3f")),
        "outcome": outcome,
        "outcomeDesc": format!("{}: {}", e.outcome, e.detail),
        "agent": [{ "who": who, "requestor": true }],
        "source": { "observer": { "display": "District Health Platform (dhp)" } },
    });
    if !login {
        let interaction = if e.action == "search" {
            "search-type"
        } else {
            e.action
        };
        v["subtype"] =
            json!([{ "system": "http://hl7.org/fhir/restful-interaction", "code": interaction }]);
    }
    let what =
        if e.resource.contains('/') && !e.resource.starts_with('/') && !e.resource.contains('?') {
            json!({ "reference": e.resource })
        } else {
            json!({ "display": e.resource })
        };
    v["entity"] = json!([{ "what": what }]);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denied_read_is_a_serious_failure_naming_who_and_what() {
        let t = NaiveDateTime::parse_from_str("2026-11-23 02:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
        let e = AuditEntry {
            id: "0192",
            recorded: t,
            username: "doctor",
            role: "family_doctor",
            action: "read",
            resource: "Patient/7",
            outcome: "denied",
            detail: "not in scope",
        };
        let v = audit_event(&e);
        assert_eq!(v["outcome"], "8");
        assert_eq!(v["action"], "R");
        assert_eq!(v["recorded"], "2026-11-23T02:00:00.000Z");
        assert_eq!(v["entity"][0]["what"]["reference"], "Patient/7");
        assert_eq!(v["agent"][0]["who"]["identifier"]["value"], "doctor");
        let login = audit_event(&AuditEntry {
            action: "login",
            resource: "/auth/token",
            outcome: "failed",
            username: "",
            ..e
        });
        assert_eq!(login["type"]["code"], "110114");
        assert_eq!(login["entity"][0]["what"]["display"], "/auth/token");
        assert!(login.get("subtype").is_none());
        assert_eq!(login["action"], "E");
        for (action, code) in [
            ("create", "C"),
            ("update", "U"),
            ("delete", "D"),
            ("search", "R"),
        ] {
            assert_eq!(
                audit_event(&AuditEntry { action, ..e })["action"],
                code,
                "{action}"
            );
        }
    }
}
