//! Reading the core record types (Encounter, Condition, Observation, Immunization):
//! each element checked and mapped, every problem with its element path.

use super::*;

/// An Encounter as the core keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncounterInput {
    pub resident_id: Id,
    pub kind: EncounterType,
    pub programme: Option<Programme>,
    pub org_id: Id,
    pub practitioner_id: Option<Id>,
    pub start: NaiveDateTime,
}

pub fn encounter(v: &Value) -> Result<EncounterInput, Vec<Issue>> {
    let mut r = Reader::new("Encounter", v);
    r.code(
        "status",
        &[
            "planned",
            "arrived",
            "triaged",
            "in-progress",
            "onleave",
            "finished",
            "cancelled",
            "entered-in-error",
            "unknown",
        ],
    );
    let subject = r.reference("subject", &["Patient"], true);
    let org = r.reference("serviceProvider", &["Organization"], true);
    let practitioner = match r.get("participant[0].individual") {
        Some(_) => r.reference("participant[0].individual", &["Practitioner"], false),
        None => None,
    };
    let start = r.datetime("period.start", true);
    let programme = match r
        .get("serviceType.coding")
        .and_then(Value::as_array)
        .and_then(|c| {
            c.iter()
                .position(|c| c.get("system").and_then(Value::as_str) == Some(PROGRAMME_SYSTEM))
        }) {
        Some(i) => {
            let rel = format!("serviceType.coding[{i}].code");
            let code = r.text(&rel, true);
            match code.map(|c| (c, Programme::parse(c))) {
                Some((_, Some(p))) => Some(p),
                Some((c, None)) => {
                    r.fail(
                        IssueCode::Value,
                        &rel,
                        format!("{c:?} is not a programme of {PROGRAMME_SYSTEM}"),
                    );
                    None
                }
                None => None,
            }
        }
        None => None,
    };
    // The platform's own kind, when the resource came from it; else from the class.
    let own_kind = r.get("type").and_then(Value::as_array).and_then(|t| {
        t.iter().find_map(|t| {
            t.get("text")
                .and_then(Value::as_str)
                .and_then(EncounterType::parse)
        })
    });
    let kind = match own_kind {
        Some(k) => Some(k),
        None => match r.text("class.code", true) {
            Some("AMB" | "EMER" | "VR" | "OBSENC") if programme.is_some() => {
                Some(EncounterType::FollowUp)
            }
            Some("AMB" | "EMER" | "VR" | "OBSENC") => Some(EncounterType::Outpatient),
            Some("IMP" | "ACUTE" | "NONAC" | "SS" | "PRENC") => Some(EncounterType::Inpatient),
            Some("HH") => Some(EncounterType::HomeVisit),
            Some(other) => {
                r.fail(
                    IssueCode::Value,
                    "class.code",
                    format!("{other:?} is not an encounter class this platform records (AMB, EMER, VR, IMP, ACUTE, NONAC, SS, HH)"),
                );
                None
            }
            None => None,
        },
    };
    let value = (|| {
        Some(EncounterInput {
            resident_id: subject?.1,
            kind: kind?,
            programme,
            org_id: org?.1,
            practitioner_id: practitioner.map(|p| p.1),
            start: start?,
        })
    })();
    r.finish(value)
}

/// Where a diagnosis was made: named, or to be taken from its encounter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiagnosingOrg {
    Organisation(Id),
    OfEncounter(Id),
}

/// A Condition as the core keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionInput {
    pub resident_id: Id,
    pub icd10: String,
    pub onset: NaiveDate,
    pub org: DiagnosingOrg,
}

pub fn condition(v: &Value) -> Result<ConditionInput, Vec<Issue>> {
    let mut r = Reader::new("Condition", v);
    let subject = r.reference("subject", &["Patient"], true);
    let code = r
        .coding("code", Some(ICD10_SYSTEM))
        .map(|(_, c)| c.to_string());
    let onset = if r.get("onsetDateTime").is_some() {
        r.datetime("onsetDateTime", true)
    } else if r.get("recordedDate").is_some() {
        r.datetime("recordedDate", true)
    } else {
        r.fail(
            IssueCode::Required,
            "onsetDateTime",
            "an onsetDateTime (or recordedDate) is required",
        );
        None
    };
    let ext = r.get("extension").and_then(Value::as_array).and_then(|e| {
        e.iter()
            .position(|x| x.get("url").and_then(Value::as_str) == Some(DIAGNOSING_ORG_EXT))
    });
    let org = if let Some(i) = ext {
        r.reference(
            &format!("extension[{i}].valueReference"),
            &["Organization"],
            true,
        )
        .map(|(_, id)| DiagnosingOrg::Organisation(id))
    } else if r.get("encounter").is_some() {
        r.reference("encounter", &["Encounter"], true)
            .map(|(_, id)| DiagnosingOrg::OfEncounter(id))
    } else {
        r.fail(
            IssueCode::Required,
            "encounter",
            format!("the diagnosing organisation is required: an encounter, or the extension {DIAGNOSING_ORG_EXT}"),
        );
        None
    };
    let value = (|| {
        Some(ConditionInput {
            resident_id: subject?.1,
            icd10: code?,
            onset: onset?.date(),
            org: org?,
        })
    })();
    r.finish(value)
}

/// An Observation as the core keeps it: a coded quantity.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservationInput {
    pub resident_id: Id,
    pub encounter_id: Option<Id>,
    pub code: String,
    pub value: f64,
    pub unit: String,
    pub effective: NaiveDateTime,
}

pub fn observation(v: &Value) -> Result<ObservationInput, Vec<Issue>> {
    let mut r = Reader::new("Observation", v);
    r.code(
        "status",
        &[
            "registered",
            "preliminary",
            "final",
            "amended",
            "corrected",
            "cancelled",
            "entered-in-error",
            "unknown",
        ],
    );
    let subject = r.reference("subject", &["Patient"], true);
    let encounter = match r.get("encounter") {
        Some(_) => r.reference("encounter", &["Encounter"], true).map(|e| e.1),
        None => None,
    };
    let code = r.coding("code", None).map(|(_, c)| c.to_string());
    let effective = r.datetime("effectiveDateTime", true);
    let value = match r.get("valueQuantity.value") {
        Some(Value::Number(n)) => n.as_f64(),
        Some(_) => {
            r.fail(
                IssueCode::Structure,
                "valueQuantity.value",
                "must be a number",
            );
            None
        }
        None => {
            r.fail(
                IssueCode::Required,
                "valueQuantity.value",
                "a numeric value is required (this server keeps observations as quantities)",
            );
            None
        }
    };
    let mut unit = r
        .get("valueQuantity.unit")
        .or_else(|| r.get("valueQuantity.code"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    // The code table's unit and plausible range apply to every write (the same table
    // the workbench form checks against).
    if let (Some(code), Some(v)) = (code.as_deref(), value) {
        if let Some(known) = dhp_core::codes::observation(code) {
            if !unit.is_empty() && unit != known.unit && unit != known.ucum {
                r.fail(
                    IssueCode::Value,
                    "valueQuantity.unit",
                    format!(
                        "{} is measured in {} ({}), not {unit:?}",
                        known.name_en, known.unit, known.ucum
                    ),
                );
            } else if !(known.min..=known.max).contains(&v) {
                r.fail(
                    IssueCode::Value,
                    "valueQuantity.value",
                    format!(
                        "{} {v} {} is outside the plausible range {}–{} {}",
                        known.name_en, known.unit, known.min, known.max, known.unit
                    ),
                );
            }
            // Kept in the table's unit (a UCUM code sent is the same unit).
            unit = known.unit.clone();
        }
    }
    let value = (|| {
        Some(ObservationInput {
            resident_id: subject?.1,
            encounter_id: encounter,
            code: code?,
            value: value?,
            unit,
            effective: effective?,
        })
    })();
    r.finish(value)
}

/// An Immunization as the core keeps it: a dose given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImmunizationInput {
    pub resident_id: Id,
    pub vaccine: String,
    pub dose_number: i32,
    pub date: NaiveDate,
    pub org_id: Id,
}

pub fn immunization(v: &Value) -> Result<ImmunizationInput, Vec<Issue>> {
    let mut r = Reader::new("Immunization", v);
    if let Some(status) = r.code("status", &["completed", "entered-in-error", "not-done"]) {
        if status != "completed" {
            r.fail(
                IssueCode::Value,
                "status",
                format!("{status:?}: only doses given (completed) are recorded"),
            );
        }
    }
    let patient = r.reference("patient", &["Patient"], true);
    let vaccine = r
        .coding("vaccineCode", Some(VACCINE_SYSTEM))
        .map(|(_, c)| c.to_string());
    let date = r.datetime("occurrenceDateTime", true);
    let performer = r.get("performer").and_then(Value::as_array).and_then(|p| {
        p.iter().position(|p| {
            p.pointer("/actor/reference")
                .and_then(Value::as_str)
                .is_some_and(|s| s.starts_with("Organization/"))
        })
    });
    let org = match performer {
        Some(i) => r.reference(&format!("performer[{i}].actor"), &["Organization"], true),
        None => {
            r.fail(
                IssueCode::Required,
                "performer",
                "an Organization performer (the vaccination clinic) is required",
            );
            None
        }
    };
    let dose = match r.get("protocolApplied[0].doseNumberPositiveInt") {
        Some(Value::Number(n)) => match n.as_i64().filter(|d| (1..=20).contains(d)) {
            Some(d) => Some(d as i32),
            None => {
                r.fail(
                    IssueCode::Value,
                    "protocolApplied[0].doseNumberPositiveInt",
                    "must be a whole number from 1 to 20",
                );
                None
            }
        },
        Some(_) => {
            r.fail(
                IssueCode::Structure,
                "protocolApplied[0].doseNumberPositiveInt",
                "must be a number",
            );
            None
        }
        None => {
            r.fail(
                IssueCode::Required,
                "protocolApplied[0].doseNumberPositiveInt",
                "the dose number in the series is required",
            );
            None
        }
    };
    let value = (|| {
        Some(ImmunizationInput {
            resident_id: patient?.1,
            vaccine: vaccine?,
            dose_number: dose?,
            date: date?.date(),
            org_id: org?.1,
        })
    })();
    r.finish(value)
}

/// Code system of DICOM modalities (`ImagingStudy.modality`).
pub const DICOM_SYSTEM: &str = "http://dicom.nema.org/resources/ontology/DCM";
/// Identifier system of DICOM UIDs (`ImagingStudy.identifier`).
pub const DICOM_UID_SYSTEM: &str = "urn:dicom:uid";

/// DICOM modality codes an imaging study may carry (DICOM PS3.16 CID 29 "Acquisition
/// Modality", with ECG for electrocardiography).
const MODALITIES: &[&str] = &[
    "AR", "BMD", "CR", "CT", "DX", "ECG", "EPS", "ES", "GM", "IO", "IVOCT", "IVUS", "MG", "MR",
    "NM", "OCT", "OP", "PT", "PX", "RF", "RG", "SM", "US", "XA", "XC",
];

/// An ImagingStudy as the core keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagingStudyInput {
    pub resident_id: Id,
    pub encounter_id: Id,
    /// LOINC code of the procedure.
    pub code: String,
    pub modality: String,
    pub started: NaiveDateTime,
    pub uid: String,
    /// `note[0].text`: the report's findings.
    pub findings: String,
}

/// Is `uid` a DICOM UID in its `urn:oid:` form? DICOM PS3.5 §9.1: digits and dots, at
/// most 64 characters, no empty component, and no component with a leading zero
/// (a component that is zero is the single digit "0").
fn dicom_uid(uid: &str) -> bool {
    uid.strip_prefix("urn:oid:").is_some_and(|oid| {
        !oid.is_empty()
            && oid.len() <= 64
            && oid.split('.').all(|part| {
                !part.is_empty()
                    && part.bytes().all(|b| b.is_ascii_digit())
                    && (part == "0" || !part.starts_with('0'))
            })
    })
}

pub fn imaging_study(v: &Value) -> Result<ImagingStudyInput, Vec<Issue>> {
    let mut r = Reader::new("ImagingStudy", v);
    if let Some(status) = r.code(
        "status",
        &[
            "registered",
            "available",
            "cancelled",
            "entered-in-error",
            "unknown",
        ],
    ) {
        if status != "available" {
            r.fail(
                IssueCode::Value,
                "status",
                format!("{status:?}: only studies made and available are recorded"),
            );
        }
    }
    let subject = r.reference("subject", &["Patient"], true);
    let encounter = r.reference("encounter", &["Encounter"], true);
    let started = r.datetime("started", true);
    let modality = match r.text("modality[0].code", true) {
        Some(code) if !MODALITIES.contains(&code) => {
            r.fail(
                IssueCode::Value,
                "modality[0].code",
                format!("{code:?} is not a DICOM acquisition modality code"),
            );
            None
        }
        code => code,
    };
    if modality.is_some()
        && r.get("modality[0].system").and_then(Value::as_str) != Some(DICOM_SYSTEM)
    {
        r.fail(
            IssueCode::Value,
            "modality[0].system",
            format!("must be {DICOM_SYSTEM}"),
        );
    }
    let code = r
        .coding("procedureCode[0]", Some("http://loinc.org"))
        .map(|(_, c)| c.to_string());
    // A study has one Study Instance UID: a second one would be kept nowhere and
    // never checked against the others, so it is refused, not dropped.
    let uids: Vec<usize> = r
        .get("identifier")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .enumerate()
                // A URN's scheme and namespace are case-insensitive (RFC 8141):
                // `urn:DICOM:uid` is the same system, and is checked as one.
                .filter(|(_, i)| {
                    i.get("system")
                        .and_then(Value::as_str)
                        .is_some_and(|s| s.eq_ignore_ascii_case(DICOM_UID_SYSTEM))
                })
                .map(|(n, _)| n)
                .collect()
        })
        .unwrap_or_default();
    for n in &uids {
        let path = format!("identifier[{n}].system");
        if r.get(&path).and_then(Value::as_str) != Some(DICOM_UID_SYSTEM) {
            r.fail(
                IssueCode::Value,
                &path,
                format!("write the system as {DICOM_UID_SYSTEM}"),
            );
        }
    }
    if let Some(second) = uids.get(1) {
        r.fail(
            IssueCode::Value,
            &format!("identifier[{second}]"),
            "a study has one Study Instance UID: this is a second one",
        );
    }
    let uid = match uids.first() {
        Some(i) => match r.text(&format!("identifier[{i}].value"), true) {
            Some(u) if !dicom_uid(u) => {
                r.fail(
                    IssueCode::Value,
                    &format!("identifier[{i}].value"),
                    "a DICOM Study Instance UID is urn:oid: and up to 64 digits and dots, each part without a leading zero",
                );
                None
            }
            u => u,
        },
        None => {
            r.fail(
                IssueCode::Required,
                "identifier",
                format!("the Study Instance UID (system {DICOM_UID_SYSTEM}) is required"),
            );
            None
        }
    };
    let findings = r
        .get("note[0].text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_string();
    if findings.chars().count() > 4000 {
        r.fail(
            IssueCode::Value,
            "note[0].text",
            "the findings are longer than 4,000 characters",
        );
    }
    let value = (|| {
        Some(ImagingStudyInput {
            resident_id: subject?.1,
            encounter_id: encounter?.1,
            code: code?,
            modality: modality?.to_string(),
            started: started?,
            uid: uid?.to_string(),
            findings,
        })
    })();
    r.finish(value)
}
