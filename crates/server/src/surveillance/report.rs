//! A FHIR Condition of a notifiable disease reported as a case (`Condition/$report`):
//! the service the FHIR API calls.

use super::*;
use crate::{AppError, AppState};
use dhp_core::access::Principal;
use dhp_core::surveillance::{self as sv};
use dhp_store::StoreError;

/// `POST /fhir/Condition/$report`: a Condition with a notifiable code, sent by a
/// clinical system, becomes a case report. Mapping: `code.coding` (our code or
/// ICD-10) → disease; `subject` Patient → resident (and the street of their
/// household); `onsetDateTime` → onset; `recordedDate` → diagnosis time;
/// `verificationStatus` confirmed → confirmed, differential → clinical, provisional or
/// unconfirmed → suspected, refuted → excluded; the sender's organisation reports (an
/// integrating system names it in the `reporting-organization` extension, a code).
/// Answers a Parameters resource, or the FHIR path at fault.
pub(crate) async fn report_condition(
    state: &AppState,
    who: &Principal,
    condition: &serde_json::Value,
) -> Result<Result<serde_json::Value, (String, String)>, AppError> {
    let bad = |path: &str, why: &str| Ok(Err((path.to_string(), why.to_string())));
    if condition["resourceType"] != "Condition" {
        return bad("resourceType", "the body must be a Condition");
    }
    if !may_report(who) {
        return bad("Condition", "this account does not send case reports");
    }
    let disease = condition["code"]["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["code"].as_str())
        .find(|c| sv::disease(c).is_some());
    let Some(disease) = disease else {
        return bad(
            "Condition.code",
            "no coding is a notifiable disease (our code or ICD-10)",
        );
    };
    let Some(patient) = condition["subject"]["reference"]
        .as_str()
        .and_then(dhp_fhir::types::patient_reference)
    else {
        return bad(
            "Condition.subject",
            "a Patient reference (Patient/{id}) is required",
        );
    };
    let resident = match state.store.resident(patient).await {
        Ok(r) => r,
        Err(StoreError::NotFound(_)) => return bad("Condition.subject", "no such Patient"),
        Err(e) => return Err(e.into()),
    };
    let status = match condition["verificationStatus"]["coding"][0]["code"].as_str() {
        Some("confirmed") => "confirmed",
        Some("differential") => "clinical",
        Some("provisional" | "unconfirmed") => "suspected",
        Some("refuted") => "excluded",
        _ => {
            return bad(
                "Condition.verificationStatus",
                "confirmed, differential, provisional, unconfirmed or refuted is required",
            )
        }
    };
    let reporting_org = condition["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| {
            e["url"]
                .as_str()
                .is_some_and(|u| u.ends_with("/reporting-organization"))
        })
        .and_then(|e| e["valueString"].as_str())
        .map(str::to_string);
    let request = CaseRequest {
        disease: Some(disease.to_string()),
        resident_identity: Some(resident.identity_number.as_str().to_string()),
        reporting_org,
        street: None,
        status: Some(status.to_string()),
        onset_date: condition["onsetDateTime"]
            .as_str()
            .map(|d| d.chars().take(10).collect()),
        diagnosed_at: condition["recordedDate"].as_str().map(|d| {
            // FHIR dateTime: drop seconds' fraction and zone; a bare date is midnight.
            if d.len() == 10 {
                format!("{d}T00:00")
            } else {
                d.chars().take(19).collect()
            }
        }),
        reported_at: None,
    };
    let path = |field: &str| {
        match field {
            "disease" => "Condition.code",
            "resident_identity" | "street" => "Condition.subject",
            "status" => "Condition.verificationStatus",
            "onset_date" => "Condition.onsetDateTime",
            "diagnosed_at" | "reported_at" => "Condition.recordedDate",
            "reporting_org" => "Condition.extension",
            _ => "Condition",
        }
        .to_string()
    };
    let report = match case_from_request(state, who, &request).await? {
        Ok(r) => r,
        Err((field, why)) => return Ok(Err((path(field), why))),
    };
    let answer = receive(state, who, report, "/fhir/Condition/$report").await?;
    let mut parameters = vec![
        serde_json::json!({"name": "caseReport", "valueString": answer["id"].to_string()}),
        serde_json::json!({"name": "disease", "valueString": answer["disease"]}),
        serde_json::json!({"name": "onTime", "valueBoolean": answer["timeliness"]["on_time"]}),
        serde_json::json!({"name": "hoursToReport", "valueDecimal": answer["timeliness"]["hours"]}),
        serde_json::json!({"name": "limitHours", "valueInteger": answer["timeliness"]["limit_hours"]}),
    ];
    if let Some(signal) = answer["signal"].as_i64() {
        parameters.push(serde_json::json!({"name": "signal", "valueString": signal.to_string()}));
    }
    Ok(Ok(
        serde_json::json!({"resourceType": "Parameters", "parameter": parameters}),
    ))
}
