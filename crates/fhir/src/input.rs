//! Incoming resources read into what the core keeps of them. Every problem is reported
//! with the path of its element; nothing is guessed. References must be local
//! (`Type/id`): the server rewrites a Bundle's `urn:uuid` references before reading.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
use dhp_core::{EncounterType, Id, Programme};
use serde_json::Value;

use crate::outcome::{Issue, IssueCode};
use crate::resources::{PROGRAMME_SYSTEM, VACCINE_SYSTEM};

mod records;
mod referral;
mod scheduling;
pub use records::*;
pub use referral::*;
pub use scheduling::*;

/// Extension naming the organisation that made a diagnosis (Condition has no element
/// for it in R4; the platform needs it for reporting and scope).
pub const DIAGNOSING_ORG_EXT: &str =
    "https://fhir.dhp.example/StructureDefinition/diagnosing-organization";
/// ICD-10 code system.
pub const ICD10_SYSTEM: &str = "http://hl7.org/fhir/sid/icd-10";

/// The resource types clients write (from [`crate::types::TYPES`]). The first five are
/// projected to core tables; the rest ([`STORED`]) are kept as received, with their
/// search columns.
pub const WRITABLE: [&str; crate::types::count(crate::types::Column::Writable)] =
    crate::types::names(crate::types::Column::Writable);

/// How a type kept as received is read and indexed: where its resident, status, main
/// code, main date and main reference are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredSpec {
    pub kind: &'static str,
    /// The element referring to the resident (`None`: not a resident's data).
    pub patient: Option<&'static str>,
    /// The status codes (empty: the type has no status).
    pub statuses: &'static [&'static str],
    /// The `intent` codes, for types that require one.
    pub intents: &'static [&'static str],
    /// The main CodeableConcept, and whether it is required.
    pub code: Option<(&'static str, bool)>,
    /// The main date or time, and whether it is required.
    pub date: Option<(&'static str, bool)>,
    /// The main reference, the types it may name, and whether it is required.
    pub reference: Option<(&'static str, &'static [&'static str], bool)>,
}

pub(crate) const REQUEST_INTENTS: &[&str] = &[
    "proposal",
    "plan",
    "directive",
    "order",
    "original-order",
    "reflex-order",
    "filler-order",
    "instance-order",
    "option",
];

/// The types kept as received.
pub const STORED: [StoredSpec; 3] = [
    StoredSpec {
        kind: "MedicationRequest",
        patient: Some("subject"),
        statuses: &[
            "active",
            "on-hold",
            "cancelled",
            "completed",
            "entered-in-error",
            "stopped",
            "draft",
            "unknown",
        ],
        intents: REQUEST_INTENTS,
        code: Some(("medicationCodeableConcept", true)),
        date: Some(("authoredOn", false)),
        reference: None,
    },
    StoredSpec {
        kind: "DiagnosticReport",
        patient: Some("subject"),
        statuses: &[
            "registered",
            "partial",
            "preliminary",
            "final",
            "amended",
            "corrected",
            "appended",
            "cancelled",
            "entered-in-error",
            "unknown",
        ],
        intents: &[],
        code: Some(("code", true)),
        date: Some(("effectiveDateTime", false)),
        reference: None,
    },
    StoredSpec {
        kind: "ServiceRequest",
        patient: Some("subject"),
        statuses: &[
            "draft",
            "active",
            "on-hold",
            "revoked",
            "completed",
            "entered-in-error",
            "unknown",
        ],
        intents: REQUEST_INTENTS,
        code: Some(("code", false)),
        date: Some(("authoredOn", false)),
        reference: Some(("performer[0]", &["Organization", "Practitioner"], false)),
    },
];

/// The spec of a type kept as received.
pub fn stored_spec(kind: &str) -> Option<&'static StoredSpec> {
    STORED.iter().find(|s| s.kind == kind)
}

/// What is indexed of a resource kept as received.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredInput {
    pub resident_id: Option<Id>,
    pub status: Option<String>,
    pub code: Option<String>,
    /// Local (Shanghai) time, `YYYY-MM-DDTHH:MM:SS`.
    pub date: Option<String>,
    /// The main reference, `Type/id`.
    pub reference: Option<(String, Id)>,
}

/// Read a resource of a type kept as received: the elements the platform relies on
/// are checked (each problem with its path), the rest is kept as sent.
pub fn stored(spec: &StoredSpec, v: &Value) -> Result<StoredInput, Vec<Issue>> {
    let mut r = Reader::new(spec.kind, v);
    let mut out = StoredInput::default();
    if !spec.statuses.is_empty() {
        out.status = r.code("status", spec.statuses).map(str::to_string);
    }
    if !spec.intents.is_empty() {
        r.code("intent", spec.intents);
    }
    if let Some(path) = spec.patient {
        out.resident_id = r.reference(path, &["Patient"], true).map(|(_, id)| id);
    }
    if let Some((path, required)) = spec.code {
        if required || r.get(path).is_some() {
            out.code = r.coding(path, None).map(|(_, c)| c.to_string());
        }
    }
    if let Some((path, required)) = spec.date {
        out.date = r
            .datetime(path, required)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string());
    }
    if let Some((path, types, required)) = spec.reference {
        out.reference = r
            .reference(path, types, required)
            .map(|(t, id)| (t.to_string(), id));
    }
    r.finish(Some(out))
}

/// Shanghai's offset: records are kept in local time.
fn shanghai() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("valid offset")
}

/// A FHIR `dateTime` or `date` to local (Shanghai) time. Partial dates (`2025`,
/// `2025-06`) are refused: a record needs its day.
/// Time-zone offsets in use on Earth run from −12:00 to +14:00.
const OFFSET_RANGE: std::ops::RangeInclusive<i32> = -12 * 3600..=14 * 3600;

pub fn parse_datetime(text: &str) -> Result<NaiveDateTime, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        if !OFFSET_RANGE.contains(&t.offset().local_minus_utc()) {
            return Err(format!(
                "{text:?}: the time-zone offset {} is outside −12:00 … +14:00",
                t.offset()
            ));
        }
        return Ok(t.with_timezone(&shanghai()).naive_local());
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S") {
        return Ok(t);
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        if text.len() == 10 {
            return Ok(d.and_hms_opt(0, 0, 0).expect("midnight"));
        }
    }
    Err(format!(
        "{text:?} is not a FHIR dateTime with a day (YYYY-MM-DD or YYYY-MM-DDThh:mm:ss+zz:zz)"
    ))
}

/// The earliest day a record may carry.
const EARLIEST: NaiveDate = NaiveDate::from_ymd_opt(1900, 1, 1).expect("a valid date");

/// Collects issues while reading one resource.
struct Reader<'a> {
    kind: &'static str,
    v: &'a Value,
    issues: Vec<Issue>,
}

impl<'a> Reader<'a> {
    fn new(kind: &'static str, v: &'a Value) -> Self {
        let mut r = Reader {
            kind,
            v,
            issues: Vec::new(),
        };
        if v.get("resourceType").and_then(Value::as_str) != Some(kind) {
            r.fail(
                IssueCode::Invalid,
                "resourceType",
                format!("must be {kind:?}"),
            );
        }
        r
    }

    fn path(&self, rel: &str) -> String {
        format!("{}.{rel}", self.kind)
    }

    fn fail(&mut self, code: IssueCode, rel: &str, text: impl std::fmt::Display) {
        let path = self.path(rel);
        self.issues.push(Issue::at(code, path, text));
    }

    /// The element at a dotted path (array steps as `name[0]`).
    fn get(&self, rel: &str) -> Option<&'a Value> {
        let mut at = self.v;
        for step in rel.split('.') {
            let (name, index) = match step.split_once('[') {
                Some((n, i)) => (n, i.trim_end_matches(']').parse::<usize>().ok()),
                None => (step, None),
            };
            at = at.get(name)?;
            if let Some(i) = index {
                at = at.get(i)?;
            }
        }
        Some(at)
    }

    fn text(&mut self, rel: &str, required: bool) -> Option<&'a str> {
        match self.get(rel) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.as_str()),
            Some(Value::String(_)) | None => {
                if required {
                    self.fail(IssueCode::Required, rel, "is required");
                }
                None
            }
            Some(_) => {
                self.fail(IssueCode::Structure, rel, "must be a string");
                None
            }
        }
    }

    /// One of `allowed`, required.
    fn code(&mut self, rel: &str, allowed: &[&str]) -> Option<&'a str> {
        let c = self.text(rel, true)?;
        if allowed.contains(&c) {
            Some(c)
        } else {
            self.fail(
                IssueCode::Value,
                rel,
                format!("{c:?} is not one of {}", allowed.join(", ")),
            );
            None
        }
    }

    /// A reference `Type/id` to one of `types`; returns the type and numeric id.
    fn reference(&mut self, rel: &str, types: &[&str], required: bool) -> Option<(&'a str, Id)> {
        let path = format!("{rel}.reference");
        let text = self.text(&path, required)?;
        let parsed = text
            .split_once('/')
            .filter(|(t, _)| types.contains(t))
            .and_then(|(t, id)| id.parse::<Id>().ok().filter(|n| *n > 0).map(|n| (t, n)));
        if parsed.is_none() {
            self.fail(
                IssueCode::Value,
                &path,
                format!(
                    "{text:?} is not a local reference to {} (e.g. {}/123)",
                    types.join(" or "),
                    types[0]
                ),
            );
        }
        parsed
    }

    /// When something happened: a FHIR dateTime with a day, not before 1900 and not in
    /// the future (a day's grace for clocks).
    fn datetime(&mut self, rel: &str, required: bool) -> Option<NaiveDateTime> {
        let text = self.text(rel, required)?;
        match parse_datetime(text) {
            Ok(t) if t.date() < EARLIEST => {
                self.fail(IssueCode::Value, rel, format!("{text:?} is before 1900"));
                None
            }
            Ok(t) if t > dhp_core::clock::now() + chrono::Duration::days(1) => {
                self.fail(IssueCode::Value, rel, format!("{text:?} is in the future"));
                None
            }
            Ok(t) => Some(t),
            Err(why) => {
                self.fail(IssueCode::Value, rel, why);
                None
            }
        }
    }

    /// The coding of a CodeableConcept with `system`, or its first coding when
    /// `system` is `None`; returns (index, code).
    fn coding(&mut self, rel: &str, system: Option<&str>) -> Option<(usize, &'a str)> {
        let codings = self.get(&format!("{rel}.coding")).and_then(Value::as_array);
        let Some(codings) = codings.filter(|c| !c.is_empty()) else {
            self.fail(
                IssueCode::Required,
                &format!("{rel}.coding"),
                "at least one coding is required",
            );
            return None;
        };
        let found = codings.iter().position(|c| match system {
            Some(s) => c.get("system").and_then(Value::as_str) == Some(s),
            None => true,
        });
        let Some(i) = found else {
            self.fail(
                IssueCode::Value,
                &format!("{rel}.coding"),
                format!("a coding with system {} is required", system.unwrap_or("")),
            );
            return None;
        };
        let code = self.text(&format!("{rel}.coding[{i}].code"), true)?;
        Some((i, code))
    }

    fn finish<T>(self, value: Option<T>) -> Result<T, Vec<Issue>> {
        match value {
            Some(v) if self.issues.is_empty() => Ok(v),
            _ => Err(self.issues),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources;
    use dhp_core::{Condition, Encounter, ImagingStudy, Immunization, Observation};

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn the_platform_s_own_resources_read_back_unchanged() {
        let e = Encounter {
            id: 7,
            resident_id: 2,
            kind: EncounterType::FollowUp,
            programme: Some(Programme::Diabetes),
            org_id: 4,
            practitioner_id: Some(10),
            start: at("2025-06-01 09:05"),
        };
        let back = encounter(&resources::encounter(&e)).unwrap();
        assert_eq!(
            (
                back.resident_id,
                back.kind,
                back.programme,
                back.org_id,
                back.practitioner_id,
                back.start
            ),
            (2, e.kind, e.programme, 4, Some(10), e.start)
        );
        for kind in EncounterType::ALL {
            let e = Encounter {
                kind,
                programme: None,
                ..e.clone()
            };
            assert_eq!(encounter(&resources::encounter(&e)).unwrap().kind, kind);
        }
        let c = Condition {
            id: 8,
            resident_id: 2,
            icd10: "I10".into(),
            onset: NaiveDate::from_ymd_opt(2019, 3, 4).unwrap(),
            org_id: 4,
        };
        let back = condition(&resources::condition(&c)).unwrap();
        assert_eq!(back.icd10, "I10");
        assert_eq!(back.onset, c.onset);
        assert_eq!(back.org, DiagnosingOrg::Organisation(4));
        let o = Observation {
            id: 9,
            resident_id: 2,
            encounter_id: Some(7),
            code: "8480-6".into(),
            value: 141.5,
            unit: "mmHg".into(),
            effective: at("2025-06-01 09:05"),
        };
        let back = observation(&resources::observation_resource(&o)).unwrap();
        assert_eq!(
            (
                back.code.as_str(),
                back.value,
                back.unit.as_str(),
                back.effective,
                back.encounter_id
            ),
            ("8480-6", 141.5, "mmHg", o.effective, Some(7))
        );
        let i = Immunization {
            id: 10,
            resident_id: 2,
            vaccine: "MMR".into(),
            dose_number: 2,
            date: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
            org_id: 4,
        };
        let back = immunization(&resources::immunization(&i)).unwrap();
        assert_eq!(
            (
                back.vaccine.as_str(),
                back.dose_number,
                back.date,
                back.org_id
            ),
            ("MMR", 2, i.date, 4)
        );
        let m = ImagingStudy {
            id: 11,
            resident_id: 2,
            encounter_id: 7,
            org_id: 4,
            code: "24627-2".into(),
            modality: "CT".into(),
            started: at("2026-11-20 10:30"),
            uid: "urn:oid:2.25.1234567890".into(),
            findings: "右肺上叶磨玻璃结节".into(),
        };
        let back = imaging_study(&resources::imaging_study(&m)).unwrap();
        assert_eq!(
            back,
            ImagingStudyInput {
                resident_id: 2,
                encounter_id: 7,
                code: "24627-2".into(),
                modality: "CT".into(),
                started: m.started,
                uid: m.uid.clone(),
                findings: m.findings.clone(),
            }
        );
    }

    #[test]
    fn times_are_kept_in_shanghai_time() {
        assert_eq!(
            parse_datetime("2025-06-01T01:05:00Z").unwrap(),
            at("2025-06-01 09:05")
        );
        assert_eq!(
            parse_datetime("2025-06-01T09:05:00+08:00").unwrap(),
            at("2025-06-01 09:05")
        );
        assert_eq!(
            parse_datetime("2025-06-01").unwrap(),
            at("2025-06-01 00:00")
        );
        assert!(parse_datetime("2025-06").is_err());
        assert!(parse_datetime("June 1st").is_err());
    }

    /// An Observation of `code` with `value` `unit` at `when`.
    fn reading(code: &str, value: f64, unit: &str, when: &str) -> Value {
        serde_json::json!({
            "resourceType": "Observation",
            "status": "final",
            "subject": { "reference": "Patient/1" },
            "code": { "coding": [{ "system": "http://loinc.org", "code": code }] },
            "effectiveDateTime": when,
            "valueQuantity": { "value": value, "unit": unit },
        })
    }

    #[test]
    fn implausible_readings_are_refused_naming_the_element() {
        let check = |v: Value, path: Option<&str>| match (observation(&v), path) {
            (Ok(_), None) => {}
            (Err(issues), Some(p)) => assert_eq!(paths(&issues), [p], "{v}"),
            (got, want) => panic!("{v}: {got:?}, wanted an issue at {want:?}"),
        };
        let day = "2025-06-01T09:00:00+08:00";
        // What the review sent: systolic −1 and 99,999 mmHg, heart rate −50, glucose
        // 10⁶, blood pressure in kg, dates in 1800 and 2099, an offset of +99:00.
        check(
            reading("8480-6", -1.0, "mmHg", day),
            Some("Observation.valueQuantity.value"),
        );
        check(
            reading("8480-6", 99_999.0, "mmHg", day),
            Some("Observation.valueQuantity.value"),
        );
        check(
            reading("8867-4", -50.0, "/min", day),
            Some("Observation.valueQuantity.value"),
        );
        check(
            reading("14771-0", 1e6, "mmol/L", day),
            Some("Observation.valueQuantity.value"),
        );
        check(
            reading("8480-6", 120.0, "kg", day),
            Some("Observation.valueQuantity.unit"),
        );
        check(
            reading("8480-6", 120.0, "mmHg", "1800-01-01"),
            Some("Observation.effectiveDateTime"),
        );
        check(
            reading("8480-6", 120.0, "mmHg", "2099-01-01"),
            Some("Observation.effectiveDateTime"),
        );
        check(
            reading("8480-6", 120.0, "mmHg", "2025-06-01T09:00:00+99:00"),
            Some("Observation.effectiveDateTime"),
        );
        // The edges of the table's range and its UCUM code are accepted.
        check(reading("8480-6", 40.0, "mmHg", day), None);
        check(reading("8480-6", 300.0, "mm[Hg]", day), None);
        check(
            reading("8480-6", 300.1, "mmHg", day),
            Some("Observation.valueQuantity.value"),
        );
        check(
            reading("8480-6", 120.0, "mmHg", "2025-06-01T09:00:00+14:00"),
            None,
        );
        // A UCUM code is kept as the table's unit.
        let o = observation(&reading("8480-6", 120.0, "mm[Hg]", day)).unwrap();
        assert_eq!(o.unit, "mmHg");
    }

    fn paths(issues: &[Issue]) -> Vec<String> {
        issues
            .iter()
            .map(|i| i.expression.clone().unwrap_or_default())
            .collect()
    }

    #[test]
    fn bad_input_names_every_element_at_fault() {
        let v = serde_json::json!({
            "resourceType": "Observation",
            "status": "done",
            "subject": { "reference": "Person/1" },
            "code": { "coding": [] },
            "effectiveDateTime": "2025-13-01",
            "valueQuantity": { "value": "high" },
        });
        let issues = observation(&v).unwrap_err();
        assert_eq!(
            paths(&issues),
            [
                "Observation.status",
                "Observation.subject.reference",
                "Observation.code.coding",
                "Observation.effectiveDateTime",
                "Observation.valueQuantity.value",
            ]
        );
        let v = serde_json::json!({ "resourceType": "Immunization", "status": "not-done" });
        let issues = immunization(&v).unwrap_err();
        assert_eq!(
            paths(&issues),
            [
                "Immunization.status",
                "Immunization.patient.reference",
                "Immunization.vaccineCode.coding",
                "Immunization.occurrenceDateTime",
                "Immunization.performer",
                "Immunization.protocolApplied[0].doseNumberPositiveInt",
            ]
        );
        let v = serde_json::json!({ "resourceType": "Condition", "subject": { "reference": "Patient/1" },
            "code": { "coding": [{ "system": "http://snomed.info/sct", "code": "38341003" }] } });
        let issues = condition(&v).unwrap_err();
        assert_eq!(
            paths(&issues),
            [
                "Condition.code.coding",
                "Condition.onsetDateTime",
                "Condition.encounter"
            ]
        );
        let v = serde_json::json!({ "resourceType": "Encounter", "status": "finished",
            "class": { "code": "FLD" }, "subject": { "reference": "Patient/x" } });
        let issues = encounter(&v).unwrap_err();
        assert_eq!(
            paths(&issues),
            [
                "Encounter.subject.reference",
                "Encounter.serviceProvider.reference",
                "Encounter.period.start",
                "Encounter.class.code",
            ]
        );
        let v = serde_json::json!({ "resourceType": "ImagingStudy", "status": "registered",
            "subject": { "reference": "Patient/1" },
            "modality": [{ "system": "http://snomed.info/sct", "code": "CAT" }],
            "procedureCode": [{ "coding": [{ "system": "http://snomed.info/sct", "code": "169069000" }] }],
            "identifier": [{ "system": "urn:dicom:uid", "value": "1.2.3" }],
            "note": [{ "text": "x".repeat(4001) }] });
        let issues = imaging_study(&v).unwrap_err();
        assert_eq!(
            paths(&issues),
            [
                "ImagingStudy.status",
                "ImagingStudy.encounter.reference",
                "ImagingStudy.started",
                "ImagingStudy.modality[0].code",
                "ImagingStudy.procedureCode[0].coding",
                "ImagingStudy.identifier[0].value",
                "ImagingStudy.note[0].text",
            ]
        );
        // DICOM PS3.5 §9.1: no component with a leading zero; one UID per study.
        let study = |ids: serde_json::Value| {
            serde_json::json!({ "resourceType": "ImagingStudy", "status": "available",
                "subject": { "reference": "Patient/1" }, "encounter": { "reference": "Encounter/2" },
                "started": "2026-11-02T09:00:00+08:00",
                "modality": [{ "system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT" }],
                "procedureCode": [{ "coding": [{ "system": "http://loinc.org", "code": "24627-2" }] }],
                "identifier": ids })
        };
        let uid = |v: &str| serde_json::json!({ "system": "urn:dicom:uid", "value": v });
        assert_eq!(
            imaging_study(&study(serde_json::json!([uid("urn:oid:1.2.0.40")])))
                .unwrap()
                .uid,
            "urn:oid:1.2.0.40"
        );
        assert_eq!(
            paths(&imaging_study(&study(serde_json::json!([uid("urn:oid:1.02.3")]))).unwrap_err()),
            ["ImagingStudy.identifier[0].value"]
        );
        let upper = serde_json::json!([
            uid("urn:oid:1.2.3"),
            { "system": "urn:DICOM:uid", "value": "urn:oid:1.2.4" }
        ]);
        assert_eq!(
            paths(&imaging_study(&study(upper)).unwrap_err()),
            [
                "ImagingStudy.identifier[1].system",
                "ImagingStudy.identifier[1]"
            ]
        );
        let two = serde_json::json!([
            { "system": "urn:other", "value": "x" },
            uid("urn:oid:1.2.3"),
            uid("urn:oid:1.2.4")
        ]);
        assert_eq!(
            paths(&imaging_study(&study(two)).unwrap_err()),
            ["ImagingStudy.identifier[2]"]
        );
        let wrong = serde_json::json!({ "resourceType": "Patient" });
        assert_eq!(
            paths(&encounter(&wrong).unwrap_err())[0],
            "Encounter.resourceType"
        );
    }
}
