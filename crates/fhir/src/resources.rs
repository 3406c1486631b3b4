//! Core records as FHIR resources: Organization, Practitioner, Encounter, Condition,
//! Observation, Immunization, and CareTeam for the 1+1+1 family-doctor contract.
//! (Patient has its own module: it also reads input.)

use chrono::NaiveDateTime;
use dhp_core::codes::{immunization_schedule, observation};
use dhp_core::{
    Condition, Contract, ContractStatus, Encounter, EncounterType, ImagingStudy, Immunization,
    Observation, OrgKind, Organisation, Practitioner,
};
use serde_json::{json, Value};

/// Identifier system of organisation codes.
pub const ORG_CODE_SYSTEM: &str = "https://fhir.dhp.example/sid/org-code";
/// Code system of the national immunization programme's vaccine codes
/// (`data/immunization-schedule.toml`).
pub const VACCINE_SYSTEM: &str = "https://fhir.dhp.example/CodeSystem/nip-vaccine";
/// Code system of the platform's local observation codes (`DHP-…`).
pub const LOCAL_OBSERVATION_SYSTEM: &str = "https://fhir.dhp.example/CodeSystem/observation";
/// Code system of practitioner roles (`family_doctor`, `nurse`, …).
pub const PRACTITIONER_ROLE_SYSTEM: &str = "https://fhir.dhp.example/CodeSystem/practitioner-role";
/// Code system of the public-health programmes a follow-up belongs to.
pub const PROGRAMME_SYSTEM: &str = "https://fhir.dhp.example/CodeSystem/programme";

fn reference(kind: &str, id: i64) -> Value {
    json!({ "reference": format!("{kind}/{id}") })
}

/// Local date-time in Shanghai as a FHIR dateTime (records are kept in local time).
/// A district-local time as a FHIR dateTime with its offset (China Standard Time).
pub(crate) fn shanghai(t: NaiveDateTime) -> String {
    format!("{}+08:00", t.format("%Y-%m-%dT%H:%M:%S"))
}

/// A district-local time as a FHIR instant in UTC, as `meta.lastUpdated` is written.
pub fn instant(local: NaiveDateTime) -> String {
    (local - chrono::Duration::hours(dhp_core::clock::UTC_OFFSET_HOURS))
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

pub fn organization(o: &Organisation) -> Value {
    let (code, display) = match o.kind {
        OrgKind::Hospital | OrgKind::CommunityHealthCentre | OrgKind::Station => {
            ("prov", "Healthcare Provider")
        }
        OrgKind::Commission
        | OrgKind::City
        | OrgKind::District
        | OrgKind::Street
        | OrgKind::Town => ("govt", "Government"),
        OrgKind::PublicHealth => ("govt", "Government"),
    };
    let mut v = json!({
        "resourceType": "Organization",
        "id": o.id.to_string(),
        "identifier": [{ "system": ORG_CODE_SYSTEM, "value": o.code }],
        "active": true,
        "type": [{
            "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/organization-type",
                "code": code,
                "display": display,
            }],
            "text": o.kind.label_zh(),
        }],
        "name": o.name_zh,
        "alias": [o.name_en],
    });
    if let Some(parent) = o.parent_id {
        v["partOf"] = reference("Organization", parent);
    }
    v
}

pub fn practitioner(p: &Practitioner) -> Value {
    json!({
        "resourceType": "Practitioner",
        "id": p.id.to_string(),
        "active": true,
        "name": [{ "use": "official", "text": p.name }],
    })
}

/// A practitioner's post at their organisation; it shares the practitioner's id.
pub fn practitioner_role(p: &Practitioner) -> Value {
    json!({
        "resourceType": "PractitionerRole",
        "id": p.id.to_string(),
        "active": true,
        "practitioner": reference("Practitioner", p.id),
        "organization": reference("Organization", p.org_id),
        "code": [{
            "coding": [{ "system": PRACTITIONER_ROLE_SYSTEM, "code": p.role.as_str() }],
            "text": p.role.label_zh(),
        }],
    })
}

pub fn encounter(e: &Encounter) -> Value {
    let (class, class_display) = match e.kind {
        EncounterType::Outpatient | EncounterType::FollowUp => ("AMB", "ambulatory"),
        EncounterType::Inpatient => ("IMP", "inpatient encounter"),
        EncounterType::HomeVisit => ("HH", "home health"),
    };
    let mut v = json!({
        "resourceType": "Encounter",
        "id": e.id.to_string(),
        "status": "finished",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": class,
            "display": class_display,
        },
        "type": [{ "text": e.kind.as_str() }],
        "subject": reference("Patient", e.resident_id),
        "period": { "start": shanghai(e.start) },
        "serviceProvider": reference("Organization", e.org_id),
    });
    if let Some(p) = e.programme {
        v["serviceType"] =
            json!({ "coding": [{ "system": PROGRAMME_SYSTEM, "code": p.as_str() }] });
    }
    if let Some(p) = e.practitioner_id {
        v["participant"] = json!([{ "individual": reference("Practitioner", p) }]);
    }
    v
}

pub fn condition(c: &Condition) -> Value {
    json!({
        "resourceType": "Condition",
        "id": c.id.to_string(),
        "clinicalStatus": {
            "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active" }]
        },
        "verificationStatus": {
            "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed" }]
        },
        "code": { "coding": [{ "system": "http://hl7.org/fhir/sid/icd-10", "code": c.icd10 }] },
        "subject": reference("Patient", c.resident_id),
        "onsetDateTime": c.onset.to_string(),
        "extension": [{
            "url": crate::input::DIAGNOSING_ORG_EXT,
            "valueReference": reference("Organization", c.org_id),
        }],
    })
}

pub fn observation_resource(o: &Observation) -> Value {
    let known = observation(&o.code);
    let system = if o.code.starts_with("DHP-") {
        LOCAL_OBSERVATION_SYSTEM
    } else {
        "http://loinc.org"
    };
    let mut coding = json!({ "system": system, "code": o.code });
    let mut code = json!({});
    let mut quantity = json!({ "value": o.value, "unit": o.unit });
    let mut v = json!({
        "resourceType": "Observation",
        "id": o.id.to_string(),
        "status": "final",
        "subject": reference("Patient", o.resident_id),
        "effectiveDateTime": shanghai(o.effective),
    });
    if let Some(k) = known {
        coding["display"] = json!(k.name_en);
        code["text"] = json!(k.name_zh);
        quantity["system"] = json!("http://unitsofmeasure.org");
        quantity["code"] = json!(k.ucum);
        v["category"] = json!([{
            "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": k.category,
            }]
        }]);
    }
    code["coding"] = json!([coding]);
    v["code"] = code;
    v["valueQuantity"] = quantity;
    if let Some(e) = o.encounter_id {
        v["encounter"] = reference("Encounter", e);
    }
    v
}

pub fn immunization(i: &Immunization) -> Value {
    let rule = immunization_schedule().vaccine(&i.vaccine);
    let mut coding = json!({ "system": VACCINE_SYSTEM, "code": i.vaccine });
    let mut vaccine = json!({});
    if let Some(r) = rule {
        coding["display"] = json!(r.name_en);
        vaccine["text"] = json!(r.name_zh);
    }
    vaccine["coding"] = json!([coding]);
    json!({
        "resourceType": "Immunization",
        "id": i.id.to_string(),
        "status": "completed",
        "vaccineCode": vaccine,
        "patient": reference("Patient", i.resident_id),
        "occurrenceDateTime": i.date.to_string(),
        "performer": [{ "actor": reference("Organization", i.org_id) }],
        "protocolApplied": [{ "doseNumberPositiveInt": i.dose_number }],
    })
}

/// An imaging study with its procedure (named from the recognition table when it is a
/// recognised item) and the report's findings as its note.
pub fn imaging_study(m: &ImagingStudy) -> Value {
    let mut coding = json!({ "system": "http://loinc.org", "code": m.code });
    let mut procedure = json!({});
    if let Some(item) = dhp_core::recognition::table().item(&m.code) {
        coding["display"] = json!(item.name_en);
        procedure["text"] = json!(item.name_zh);
    }
    procedure["coding"] = json!([coding]);
    let mut v = json!({
        "resourceType": "ImagingStudy",
        "id": m.id.to_string(),
        "identifier": [{ "system": crate::input::DICOM_UID_SYSTEM, "value": m.uid }],
        "status": "available",
        "modality": [{ "system": crate::input::DICOM_SYSTEM, "code": m.modality }],
        "subject": reference("Patient", m.resident_id),
        "encounter": reference("Encounter", m.encounter_id),
        "started": shanghai(m.started),
        "procedureCode": [procedure],
    });
    if !m.findings.is_empty() {
        v["note"] = json!([{ "text": m.findings }]);
    }
    v
}

/// The 1+1+1 contract (家庭医生签约) as a CareTeam: the family doctor on behalf of the
/// community health centre, with the district and city hospitals of the combination.
pub fn care_team(c: &Contract) -> Value {
    let status = match c.status {
        ContractStatus::Active => "active",
        ContractStatus::Expired | ContractStatus::Ended => "inactive",
    };
    json!({
        "resourceType": "CareTeam",
        "id": c.id.to_string(),
        "status": status,
        "name": "家庭医生“1+1+1”签约 family-doctor contract",
        "subject": reference("Patient", c.resident_id),
        "period": { "start": c.start.to_string(), "end": c.end.to_string() },
        "participant": [
            {
                "member": reference("Practitioner", c.doctor_id),
                "onBehalfOf": reference("Organization", c.centre_org_id),
            },
            { "member": reference("Organization", c.district_hospital_id) },
            { "member": reference("Organization", c.city_hospital_id) },
        ],
        "managingOrganization": [reference("Organization", c.centre_org_id)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn observations_carry_loinc_ucum_and_category() {
        let o = Observation {
            id: 1,
            resident_id: 2,
            encounter_id: Some(3),
            code: "8480-6".into(),
            value: 145.0,
            unit: "mmHg".into(),
            effective: at("2025-06-01 09:05"),
        };
        let v = observation_resource(&o);
        assert_eq!(v["code"]["coding"][0]["system"], "http://loinc.org");
        assert_eq!(v["valueQuantity"]["code"], "mm[Hg]");
        assert_eq!(v["category"][0]["coding"][0]["code"], "vital-signs");
        assert_eq!(v["effectiveDateTime"], "2025-06-01T09:05:00+08:00");
        assert_eq!(v["encounter"]["reference"], "Encounter/3");
    }

    #[test]
    fn a_contract_is_a_care_team_of_the_combination() {
        let c = Contract {
            id: 9,
            resident_id: 2,
            centre_org_id: 4,
            doctor_id: 10,
            district_hospital_id: 6,
            city_hospital_id: 7,
            start: NaiveDate::from_ymd_opt(2025, 3, 1).unwrap(),
            end: NaiveDate::from_ymd_opt(2026, 2, 28).unwrap(),
            status: ContractStatus::Expired,
        };
        let v = care_team(&c);
        assert_eq!(v["status"], "inactive");
        let members: Vec<&str> = v["participant"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["member"]["reference"].as_str().unwrap())
            .collect();
        assert_eq!(
            members,
            ["Practitioner/10", "Organization/6", "Organization/7"]
        );
    }

    #[test]
    fn vaccines_are_named_from_the_schedule() {
        let i = Immunization {
            id: 5,
            resident_id: 2,
            vaccine: "MMR".into(),
            dose_number: 2,
            date: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
            org_id: 4,
        };
        let v = immunization(&i);
        assert_eq!(v["vaccineCode"]["text"], "麻腮风疫苗");
        assert_eq!(v["protocolApplied"][0]["doseNumberPositiveInt"], 2);
    }
}
