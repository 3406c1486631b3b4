//! Health record core types (电子健康档案): encounters, conditions, observations,
//! immunizations and the family-doctor contract — SPEC capabilities 2 and 3.

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

use crate::registry::Id;

/// Type of an encounter (就诊类型).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncounterType {
    /// 门诊.
    Outpatient,
    /// 住院.
    Inpatient,
    /// 上门 / 家访.
    HomeVisit,
    /// 随访 — a public-health programme follow-up.
    FollowUp,
}

impl EncounterType {
    pub const ALL: [EncounterType; 4] = [
        EncounterType::Outpatient,
        EncounterType::Inpatient,
        EncounterType::HomeVisit,
        EncounterType::FollowUp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EncounterType::Outpatient => "outpatient",
            EncounterType::Inpatient => "inpatient",
            EncounterType::HomeVisit => "home_visit",
            EncounterType::FollowUp => "follow_up",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Programme a follow-up encounter belongs to, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Programme {
    Hypertension,
    Diabetes,
    Elderly,
    Maternal,
    Child,
    Mental,
    Immunization,
}

impl Programme {
    pub const ALL: [Programme; 7] = [
        Programme::Hypertension,
        Programme::Diabetes,
        Programme::Elderly,
        Programme::Maternal,
        Programme::Child,
        Programme::Mental,
        Programme::Immunization,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Programme::Hypertension => "hypertension",
            Programme::Diabetes => "diabetes",
            Programme::Elderly => "elderly",
            Programme::Maternal => "maternal",
            Programme::Child => "child",
            Programme::Mental => "mental",
            Programme::Immunization => "immunization",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// An encounter (就诊记录) of a resident with an organisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Encounter {
    pub id: Id,
    pub resident_id: Id,
    pub kind: EncounterType,
    /// For follow-ups: the programme followed up.
    pub programme: Option<Programme>,
    pub org_id: Id,
    pub practitioner_id: Option<Id>,
    pub start: NaiveDateTime,
}

/// A diagnosed condition (诊断), coded in ICD-10.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub id: Id,
    pub resident_id: Id,
    /// ICD-10 code, e.g. `I10`, `E11.9`.
    pub icd10: String,
    pub onset: NaiveDate,
    pub org_id: Id,
}

impl Condition {
    /// Hypertensive diseases I10–I15.
    pub fn is_hypertension(code: &str) -> bool {
        ["I10", "I11", "I12", "I13", "I15"]
            .iter()
            .any(|p| code.starts_with(p))
    }

    /// Type 2 diabetes mellitus E11.
    pub fn is_type2_diabetes(code: &str) -> bool {
        code.starts_with("E11")
    }

    /// The chronic-disease group a code belongs to, stored beside the code so the
    /// store can count programme populations without re-implementing these rules.
    pub fn category(code: &str) -> Option<&'static str> {
        if Self::is_hypertension(code) {
            Some("hypertension")
        } else if Self::is_type2_diabetes(code) {
            Some("diabetes")
        } else if Self::is_severe_mental_disorder(code) {
            Some("mental")
        } else {
            None
        }
    }

    /// Severe mental disorders managed by the programme (F20 schizophrenia, F25
    /// schizoaffective, F22 delusional, F31 bipolar, F06 organic, F70-F79 with psychosis).
    pub fn is_severe_mental_disorder(code: &str) -> bool {
        ["F20", "F22", "F25", "F31", "F06"]
            .iter()
            .any(|p| code.starts_with(p))
    }
}

/// An observation (检查 / 检验结果) with a code from `data/observation-codes.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub id: Id,
    pub resident_id: Id,
    pub encounter_id: Option<Id>,
    /// A code of the observation code table (LOINC where one exists).
    pub code: String,
    pub value: f64,
    pub unit: String,
    pub effective: NaiveDateTime,
}

/// An imaging examination (影像检查): the study made at an institution and its report's
/// findings. Mutual recognition recognises the images, not the diagnostic conclusion
/// (domain-rules §8); the findings are shown with the study for the clinician to read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImagingStudy {
    pub id: Id,
    pub resident_id: Id,
    /// The encounter it was made in; its organisation is the issuing institution.
    pub encounter_id: Id,
    pub org_id: Id,
    /// LOINC code of the procedure (`data/recognition.toml` names the recognised ones).
    pub code: String,
    /// DICOM modality code (CT, DX, US, MR, ECG …).
    pub modality: String,
    pub started: NaiveDateTime,
    /// DICOM Study Instance UID (`urn:oid:` form).
    pub uid: String,
    /// The report's findings, as written by the reporting physician (may be empty).
    pub findings: String,
}

/// A vaccine dose given (预防接种记录).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Immunization {
    pub id: Id,
    pub resident_id: Id,
    /// Vaccine code of the national schedule (`data/immunization-schedule.toml`).
    pub vaccine: String,
    pub dose_number: i32,
    pub date: NaiveDate,
    pub org_id: Id,
}

/// Status of a family-doctor contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContractStatus {
    Active,
    /// Ran its year and was not renewed.
    Expired,
    /// Ended early (moved away, changed doctor, died).
    Ended,
}

impl ContractStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ContractStatus::Active => "active",
            ContractStatus::Expired => "expired",
            ContractStatus::Ended => "ended",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Active, Self::Expired, Self::Ended]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// Family-doctor contract (家庭医生签约), Shanghai "1+1+1": a community health centre
/// and a family doctor there, plus one district-level and one city-level hospital
/// (domain-rules §2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contract {
    pub id: Id,
    pub resident_id: Id,
    pub centre_org_id: Id,
    pub doctor_id: Id,
    pub district_hospital_id: Id,
    pub city_hospital_id: Id,
    pub start: NaiveDate,
    /// Contracts run one year (domain-rules §2).
    pub end: NaiveDate,
    pub status: ContractStatus,
}

impl Contract {
    /// The three organisations of the combination (组合).
    pub fn combination(&self) -> [Id; 3] {
        [
            self.centre_org_id,
            self.district_hospital_id,
            self.city_hospital_id,
        ]
    }

    /// Whether the contract covers `on` (start ≤ on ≤ end, not ended).
    pub fn covers(&self, on: NaiveDate) -> bool {
        self.status != ContractStatus::Ended && self.start <= on && on <= self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condition_groups_follow_icd10_blocks() {
        assert!(Condition::is_hypertension("I10"));
        assert!(Condition::is_hypertension("I11.9"));
        assert!(!Condition::is_hypertension("I20"));
        assert!(Condition::is_type2_diabetes("E11.9"));
        assert!(!Condition::is_type2_diabetes("E10"));
        assert!(Condition::is_severe_mental_disorder("F20.0"));
    }

    #[test]
    fn names_round_trip() {
        for k in EncounterType::ALL {
            assert_eq!(EncounterType::parse(k.as_str()), Some(k));
        }
        for p in Programme::ALL {
            assert_eq!(Programme::parse(p.as_str()), Some(p));
        }
    }
}
