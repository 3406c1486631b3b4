//! A hand-built small district (organisations, staff, residents with records) for the
//! store's conformance stories.

use chrono::{NaiveDate, NaiveDateTime};
use dhp_core::*;
use dhp_store::Batch;

pub fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

pub fn at(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
}

fn org(
    id: Id,
    code: &str,
    kind: OrgKind,
    parent: Option<Id>,
    district: &str,
    beds: i64,
) -> Organisation {
    Organisation {
        id,
        code: code.into(),
        name_zh: format!("机构{id}"),
        name_en: format!("Org {id}"),
        kind,
        level: (kind == OrgKind::Hospital).then_some(if district == "310000" {
            HospitalLevel::Tertiary
        } else {
            HospitalLevel::Secondary
        }),
        parent_id: parent,
        district_code: district.into(),
        beds,
    }
}

pub fn resident(id: Id, born: &str, seq: u16, household: Id) -> Resident {
    let birth = date(born);
    let identity_number = IdentityNumber::compose("310118", birth, seq);
    Resident {
        id,
        district_code: "310118".into(),
        sex: identity_number.sex(),
        identity_number,
        name: format!("居民{id}"),
        birth_date: birth,
        street_org_id: 3,
        household_id: household,
        phone: format!("1390000{id:04}"),
        registered: id % 2 == 0,
    }
}

fn contract(id: Id, resident: Id, start: &str, end: &str, status: ContractStatus) -> Contract {
    Contract {
        id,
        resident_id: resident,
        centre_org_id: 4,
        doctor_id: 10,
        district_hospital_id: 6,
        city_hospital_id: 7,
        start: date(start),
        end: date(end),
        status,
    }
}

pub fn encounter(
    id: Id,
    resident: Id,
    kind: EncounterType,
    programme: Option<Programme>,
    org: Id,
    t: &str,
) -> Encounter {
    Encounter {
        id,
        resident_id: resident,
        kind,
        programme,
        org_id: org,
        practitioner_id: Some(10),
        start: at(t),
    }
}

fn practitioner(id: Id, role: PractitionerRole, org: Id, district: &str) -> Practitioner {
    Practitioner {
        id,
        name: format!("医生{id}"),
        role,
        org_id: org,
        district_code: district.into(),
    }
}

pub fn district() -> Batch {
    use EncounterType::*;
    let d = "310118";
    Batch {
        organisations: vec![
            org(1, "310000", OrgKind::City, None, "310000", 0),
            org(2, "310118", OrgKind::District, Some(1), d, 0),
            org(3, "310118-S01", OrgKind::Street, Some(2), d, 0),
            org(
                4,
                "310118-CHC01",
                OrgKind::CommunityHealthCentre,
                Some(3),
                d,
                20,
            ),
            org(5, "310118-CHC01-ST1", OrgKind::Station, Some(4), d, 0),
            org(6, "310118-H01", OrgKind::Hospital, Some(2), d, 500),
            org(7, "310000-H01", OrgKind::Hospital, Some(1), "310000", 1000),
            org(
                8,
                "310118-CHC02",
                OrgKind::CommunityHealthCentre,
                Some(3),
                d,
                0,
            ),
        ],
        practitioners: vec![
            practitioner(10, PractitionerRole::FamilyDoctor, 4, d),
            practitioner(11, PractitionerRole::Nurse, 4, d),
            practitioner(12, PractitionerRole::Specialist, 6, d),
            practitioner(13, PractitionerRole::PublicHealthDoctor, 2, d),
            practitioner(14, PractitionerRole::Nurse, 6, d),
            practitioner(15, PractitionerRole::Specialist, 7, "310000"),
            practitioner(16, PractitionerRole::Manager, 2, d),
        ],
        households: vec![
            Household {
                id: 100,
                district_code: d.into(),
                street_org_id: 3,
                address: "夏阳路1号".into(),
            },
            Household {
                id: 101,
                district_code: d.into(),
                street_org_id: 3,
                address: "夏阳路2号".into(),
            },
        ],
        residents: vec![
            resident(200, "1950-03-01", 2, 100),
            resident(201, "2022-06-01", 3, 100),
            resident(202, "1980-01-15", 5, 101),
            resident(203, "1995-07-07", 6, 101),
            resident(204, "1960-02-02", 7, 101),
            resident(205, "2026-01-05", 8, 100),
        ],
        contracts: vec![
            contract(
                299,
                200,
                "2024-03-01",
                "2025-02-28",
                ContractStatus::Expired,
            ),
            contract(300, 200, "2025-03-01", "2026-02-28", ContractStatus::Active),
            contract(301, 202, "2025-01-01", "2025-12-31", ContractStatus::Active),
            contract(302, 203, "2025-06-01", "2026-05-31", ContractStatus::Active),
            contract(303, 204, "2025-01-01", "2025-12-31", ContractStatus::Ended),
        ],
        encounters: vec![
            encounter(400, 200, Outpatient, None, 4, "2025-04-01 09:00"),
            encounter(401, 200, Outpatient, None, 5, "2025-05-01 10:30"),
            encounter(402, 200, Outpatient, None, 6, "2025-06-01 08:15"),
            encounter(403, 202, Outpatient, None, 7, "2025-07-01 14:00"),
            encounter(404, 202, Outpatient, None, 8, "2025-08-01 15:00"),
            encounter(405, 203, Outpatient, None, 4, "2024-12-31 23:59"),
            encounter(
                406,
                202,
                FollowUp,
                Some(Programme::Hypertension),
                4,
                "2025-06-01 09:00",
            ),
            encounter(407, 204, Outpatient, None, 4, "2025-02-01 09:00"),
            encounter(
                408,
                204,
                FollowUp,
                Some(Programme::Diabetes),
                4,
                "2025-03-01 09:00",
            ),
            encounter(
                409,
                201,
                HomeVisit,
                Some(Programme::Child),
                4,
                "2025-02-02 09:00",
            ),
        ],
        conditions: vec![
            Condition {
                id: 500,
                resident_id: 202,
                icd10: "I10".into(),
                onset: date("2015-05-05"),
                org_id: 4,
            },
            Condition {
                id: 501,
                resident_id: 204,
                icd10: "E11.9".into(),
                onset: date("2018-08-08"),
                org_id: 4,
            },
            Condition {
                id: 502,
                resident_id: 203,
                icd10: "J45".into(),
                onset: date("2020-01-01"),
                org_id: 4,
            },
        ],
        observations: vec![
            Observation {
                id: 600,
                resident_id: 202,
                encounter_id: Some(406),
                code: "8480-6".into(),
                value: 145.0,
                unit: "mmHg".into(),
                effective: at("2025-06-01 09:05"),
            },
            Observation {
                id: 601,
                resident_id: 202,
                encounter_id: Some(406),
                code: "8462-4".into(),
                value: 92.5,
                unit: "mmHg".into(),
                effective: at("2025-06-01 09:05"),
            },
            Observation {
                id: 602,
                resident_id: 204,
                encounter_id: None,
                code: "14771-0".into(),
                value: 7.4,
                unit: "mmol/L".into(),
                effective: at("2025-03-01 09:10"),
            },
        ],
        immunizations: vec![
            Immunization {
                id: 700,
                resident_id: 201,
                vaccine: "HepB".into(),
                dose_number: 1,
                date: date("2022-06-01"),
                org_id: 4,
            },
            Immunization {
                id: 701,
                resident_id: 201,
                vaccine: "HepB".into(),
                dose_number: 2,
                date: date("2022-07-01"),
                org_id: 4,
            },
        ],
        imaging_studies: vec![dhp_core::ImagingStudy {
            id: 800,
            resident_id: 202,
            encounter_id: 406,
            org_id: 4,
            code: "11524-6".into(),
            modality: "ECG".into(),
            started: at("2025-06-01 09:20"),
            uid: "urn:oid:2.25.800".into(),
            findings: "窦性心律".into(),
        }],
    }
}
