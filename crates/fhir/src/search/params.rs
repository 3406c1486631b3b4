//! The search parameters of every record type (name, FHIR type, the field it searches),
//! the sort keys, and the references `_include` / `_revinclude` follow.

use super::*;

/// A reference search parameter's field on the resource that holds it, e.g.
/// `Observation:encounter`: an `_include` or `_revinclude`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// The resource type holding the reference.
    pub source: &'static str,
    pub param: &'static str,
    pub field: Field,
    /// The type referred to.
    pub target: &'static str,
}

/// How a search parameter's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    Token,
    /// A reference to this resource type.
    Reference(&'static str),
    Date,
    String,
}

impl ParamType {
    /// The FHIR search parameter type, for the CapabilityStatement.
    pub fn name(self) -> &'static str {
        match self {
            ParamType::Token => "token",
            ParamType::Reference(_) => "reference",
            ParamType::Date => "date",
            ParamType::String => "string",
        }
    }
}

/// One search parameter of a resource type and the field it searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchParam {
    pub name: &'static str,
    pub kind: ParamType,
    pub field: Field,
    /// For tokens: the code systems the values come from (empty: a bare code).
    pub systems: &'static [&'static str],
}

pub(super) const fn param(name: &'static str, kind: ParamType, field: Field) -> SearchParam {
    SearchParam {
        name,
        kind,
        field,
        systems: &[],
    }
}

pub(super) const fn coded(
    name: &'static str,
    field: Field,
    systems: &'static [&'static str],
) -> SearchParam {
    SearchParam {
        name,
        kind: ParamType::Token,
        field,
        systems,
    }
}

use ParamType::{Date as D, Reference as R, String as S, Token as T};

pub(super) const ID: SearchParam = param("_id", T, Field::Id);
pub(super) const PATIENT: SearchParam = param("patient", R("Patient"), Field::Resident);
pub(super) const SUBJECT: SearchParam = param("subject", R("Patient"), Field::Resident);
pub(super) const STATUS: SearchParam = param("status", T, Field::Status);

pub(super) const ENCOUNTER_PARAMS: &[SearchParam] = &[
    ID,
    PATIENT,
    SUBJECT,
    param("date", D, Field::Date),
    param("service-provider", R("Organization"), Field::Org),
    param("practitioner", R("Practitioner"), Field::Practitioner),
    STATUS,
];
pub(super) const CONDITION_PARAMS: &[SearchParam] = &[
    ID,
    PATIENT,
    SUBJECT,
    coded("code", Field::Code, &[crate::input::ICD10_SYSTEM]),
    param("onset-date", D, Field::Date),
    param("clinical-status", T, Field::Status),
];
pub(super) const OBSERVATION_PARAMS: &[SearchParam] = &[
    ID,
    PATIENT,
    SUBJECT,
    coded(
        "code",
        Field::Code,
        &[
            "http://loinc.org",
            crate::resources::LOCAL_OBSERVATION_SYSTEM,
        ],
    ),
    param("date", D, Field::Date),
    param("encounter", R("Encounter"), Field::Encounter),
    STATUS,
];
pub(super) const IMMUNIZATION_PARAMS: &[SearchParam] = &[
    ID,
    PATIENT,
    coded(
        "vaccine-code",
        Field::Code,
        &[crate::resources::VACCINE_SYSTEM],
    ),
    param("date", D, Field::Date),
    param("performer", R("Organization"), Field::Org),
    STATUS,
];
pub(super) const IMAGING_STUDY_PARAMS: &[SearchParam] = &[
    ID,
    PATIENT,
    SUBJECT,
    coded("modality", Field::Code, &[crate::input::DICOM_SYSTEM]),
    coded(
        "identifier",
        Field::Identifier,
        &[crate::input::DICOM_UID_SYSTEM],
    ),
    param("started", D, Field::Date),
    param("encounter", R("Encounter"), Field::Encounter),
    STATUS,
];
pub(super) const CARE_TEAM_PARAMS: &[SearchParam] = &[
    ID,
    PATIENT,
    SUBJECT,
    param("date", D, Field::Date),
    param("participant", R("Practitioner"), Field::Practitioner),
    STATUS,
];
pub(super) const ORGANIZATION_PARAMS: &[SearchParam] = &[
    ID,
    coded(
        "identifier",
        Field::Code,
        &[crate::resources::ORG_CODE_SYSTEM],
    ),
    param("name", S, Field::Name),
    param("partof", R("Organization"), Field::Parent),
];
pub(super) const PRACTITIONER_PARAMS: &[SearchParam] = &[ID, param("name", S, Field::Name)];
pub(super) const PRACTITIONER_ROLE_PARAMS: &[SearchParam] = &[
    ID,
    param("practitioner", R("Practitioner"), Field::Id),
    param("organization", R("Organization"), Field::Org),
    coded(
        "role",
        Field::Code,
        &[crate::resources::PRACTITIONER_ROLE_SYSTEM],
    ),
];

pub(super) const MEDICATION_REQUEST_PARAMS: &[SearchParam] = &[
    ID,
    PATIENT,
    SUBJECT,
    STATUS,
    param("code", T, Field::Code),
    param("authoredon", D, Field::Date),
];
pub(super) const DIAGNOSTIC_REPORT_PARAMS: &[SearchParam] = &[
    ID,
    PATIENT,
    SUBJECT,
    STATUS,
    param("code", T, Field::Code),
    param("date", D, Field::Date),
];
pub(super) const SERVICE_REQUEST_PARAMS: &[SearchParam] = &[
    ID,
    PATIENT,
    SUBJECT,
    STATUS,
    param("code", T, Field::Code),
    param("authored", D, Field::Date),
    param(
        "performer",
        R("Organization|Practitioner"),
        Field::Reference,
    ),
];

/// The search parameters of a resource type other than Patient (which has its own
/// reader), if it can be searched.
pub fn search_params(kind: &str) -> Option<&'static [SearchParam]> {
    Some(match kind {
        "MedicationRequest" => MEDICATION_REQUEST_PARAMS,
        "DiagnosticReport" => DIAGNOSTIC_REPORT_PARAMS,
        "ServiceRequest" => SERVICE_REQUEST_PARAMS,
        "Encounter" => ENCOUNTER_PARAMS,
        "Condition" => CONDITION_PARAMS,
        "Observation" => OBSERVATION_PARAMS,
        "Immunization" => IMMUNIZATION_PARAMS,
        "ImagingStudy" => IMAGING_STUDY_PARAMS,
        "CareTeam" => CARE_TEAM_PARAMS,
        "Organization" => ORGANIZATION_PARAMS,
        "Practitioner" => PRACTITIONER_PARAMS,
        "PractitionerRole" => PRACTITIONER_ROLE_PARAMS,
        _ => return None,
    })
}

/// The types searchable with [`search_params`] (from [`crate::types::TYPES`]).
pub const RECORD_TYPES: [&str; crate::types::count(crate::types::Column::Searched)] =
    crate::types::names(crate::types::Column::Searched);

/// The parameters every search takes, for the CapabilityStatement.
pub const COMMON_PARAMS: &[(&str, &str)] = &[
    ("_lastUpdated", "date"),
    ("_count", "number"),
    ("_sort", "special"),
    ("_include", "special"),
    ("_revinclude", "special"),
    ("_summary", "special"),
];

/// The keys `_sort` takes for `kind`, with the field each orders by.
pub(super) fn sort_keys(kind: &str) -> Vec<(&'static str, Field)> {
    let mut keys = vec![("_id", Field::Id), ("_lastUpdated", Field::LastUpdated)];
    match kind {
        "Patient" => keys.extend([
            ("birthdate", Field::Date),
            ("name", Field::Name),
            ("family", Field::Name),
        ]),
        "Organization" | "Practitioner" => keys.push(("name", Field::Name)),
        _ => {
            if let Some(p) = search_params(kind)
                .unwrap_or_default()
                .iter()
                .find(|p| p.kind == ParamType::Date)
            {
                keys.push((p.name, Field::Date));
            }
        }
    }
    keys
}

/// The reference parameters of `kind` (Patient's own: `organization`).
pub(super) fn links_from(kind: &'static str) -> Vec<Link> {
    if kind == "Patient" {
        return vec![Link {
            source: "Patient",
            param: "organization",
            field: Field::Org,
            target: "Organization",
        }];
    }
    search_params(kind)
        .unwrap_or_default()
        .iter()
        .filter(|p| p.field != Field::Reference)
        .filter_map(|p| match p.kind {
            ParamType::Reference(target) => Some(Link {
                source: kind,
                param: p.name,
                field: p.field,
                target,
            }),
            _ => None,
        })
        .collect()
}
