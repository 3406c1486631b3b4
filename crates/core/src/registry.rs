//! Registry (登记): organisations, practitioners, residents and households — SPEC capability 1.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::identity::IdentityNumber;

/// Surrogate key of a stored row. Assigned by the writer, never by the database, so a
/// generated district is byte-identical for the same seed.
pub type Id = i64;

/// Sex as recorded on the identity card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sex {
    Male,
    Female,
}

/// Kind of organisation unit, from the top of the hierarchy down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgKind {
    /// 市 — the city (Shanghai).
    City,
    /// 区 — the district.
    District,
    /// 街道 — an urban sub-district.
    Street,
    /// 镇 — a town.
    Town,
    /// 社区卫生服务中心 — community health centre.
    CommunityHealthCentre,
    /// 社区卫生服务站 / 村卫生室 — station or village clinic under a centre.
    Station,
    /// 医院 — a hospital, with a level.
    Hospital,
    /// 疾病预防控制中心 and other public-health institutions.
    PublicHealth,
    /// 卫生健康委员会 — the commission itself.
    Commission,
}

impl OrgKind {
    pub const ALL: [OrgKind; 9] = [
        OrgKind::City,
        OrgKind::District,
        OrgKind::Street,
        OrgKind::Town,
        OrgKind::CommunityHealthCentre,
        OrgKind::Station,
        OrgKind::Hospital,
        OrgKind::PublicHealth,
        OrgKind::Commission,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrgKind::City => "city",
            OrgKind::District => "district",
            OrgKind::Street => "street",
            OrgKind::Town => "town",
            OrgKind::CommunityHealthCentre => "community_health_centre",
            OrgKind::Station => "station",
            OrgKind::Hospital => "hospital",
            OrgKind::PublicHealth => "public_health",
            OrgKind::Commission => "commission",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Chinese label for pages.
    pub fn label_zh(self) -> &'static str {
        match self {
            OrgKind::City => "市",
            OrgKind::District => "区",
            OrgKind::Street => "街道",
            OrgKind::Town => "镇",
            OrgKind::CommunityHealthCentre => "社区卫生服务中心",
            OrgKind::Station => "社区卫生服务站",
            OrgKind::Hospital => "医院",
            OrgKind::PublicHealth => "公共卫生机构",
            OrgKind::Commission => "卫生健康委员会",
        }
    }

    /// The kind in English words.
    pub fn label_en(self) -> &'static str {
        match self {
            OrgKind::City => "City",
            OrgKind::District => "District",
            OrgKind::Street => "Street",
            OrgKind::Town => "Town",
            OrgKind::CommunityHealthCentre => "Community health centre",
            OrgKind::Station => "Health station",
            OrgKind::Hospital => "Hospital",
            OrgKind::PublicHealth => "Public-health institution",
            OrgKind::Commission => "Health commission",
        }
    }

    /// Whether this kind is an address area (a street or a town) residents live in.
    pub fn is_area(self) -> bool {
        matches!(self, OrgKind::Street | OrgKind::Town)
    }
}

/// Hospital level (医院等级): 一级 / 二级 / 三级.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum HospitalLevel {
    Primary = 1,
    Secondary = 2,
    Tertiary = 3,
}

impl HospitalLevel {
    pub fn from_number(n: i64) -> Option<Self> {
        match n {
            1 => Some(Self::Primary),
            2 => Some(Self::Secondary),
            3 => Some(Self::Tertiary),
            _ => None,
        }
    }
}

/// An organisation unit (机构). Every unit but the city has a parent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Organisation {
    pub id: Id,
    /// Stable code, unique in the store (e.g. `310118-CHC-ZJJ`).
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    pub kind: OrgKind,
    pub level: Option<HospitalLevel>,
    pub parent_id: Option<Id>,
    /// GB/T 2260 code of the district the unit belongs to (distribution key).
    pub district_code: String,
    /// Staffed beds (床位), for hospitals and centres with wards.
    pub beds: i64,
}

/// Practitioner role (执业角色).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PractitionerRole {
    /// 家庭医生 — a general practitioner at a community health centre.
    FamilyDoctor,
    /// 护士.
    Nurse,
    /// 专科医生 — hospital specialist.
    Specialist,
    /// 公共卫生医师.
    PublicHealthDoctor,
    /// 管理人员.
    Manager,
}

impl PractitionerRole {
    pub const ALL: [PractitionerRole; 5] = [
        PractitionerRole::FamilyDoctor,
        PractitionerRole::Nurse,
        PractitionerRole::Specialist,
        PractitionerRole::PublicHealthDoctor,
        PractitionerRole::Manager,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PractitionerRole::FamilyDoctor => "family_doctor",
            PractitionerRole::Nurse => "nurse",
            PractitionerRole::Specialist => "specialist",
            PractitionerRole::PublicHealthDoctor => "public_health_doctor",
            PractitionerRole::Manager => "manager",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Chinese name of the role.
    pub fn label_zh(self) -> &'static str {
        match self {
            PractitionerRole::FamilyDoctor => "家庭医生",
            PractitionerRole::Nurse => "护士",
            PractitionerRole::Specialist => "专科医生",
            PractitionerRole::PublicHealthDoctor => "公共卫生医师",
            PractitionerRole::Manager => "管理人员",
        }
    }

    /// Counted among licensed (assistant) physicians (执业（助理）医师).
    pub fn is_physician(self) -> bool {
        matches!(
            self,
            PractitionerRole::FamilyDoctor
                | PractitionerRole::Specialist
                | PractitionerRole::PublicHealthDoctor
        )
    }
}

/// A practitioner (医务人员) working at one organisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Practitioner {
    pub id: Id,
    pub name: String,
    pub role: PractitionerRole,
    pub org_id: Id,
    pub district_code: String,
}

/// A household (户).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Household {
    pub id: Id,
    pub district_code: String,
    /// The street or town the household lives in.
    pub street_org_id: Id,
    pub address: String,
}

/// A resident (居民) of the district.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resident {
    pub id: Id,
    pub district_code: String,
    pub identity_number: IdentityNumber,
    pub name: String,
    pub sex: Sex,
    pub birth_date: NaiveDate,
    /// The street or town of the address.
    pub street_org_id: Id,
    pub household_id: Id,
    pub phone: String,
    /// Registered (户籍) rather than a migrant resident (常住非户籍).
    pub registered: bool,
}

impl Resident {
    /// Age in whole years on `on`.
    pub fn age_on(&self, on: NaiveDate) -> u32 {
        age_years(self.birth_date, on)
    }
}

/// Whole years between `birth` and `on` (0 if `on` is before `birth`).
pub fn age_years(birth: NaiveDate, on: NaiveDate) -> u32 {
    on.years_since(birth).unwrap_or(0)
}

/// Whole months between `birth` and `on` (0 if `on` is before `birth`).
pub fn age_months(birth: NaiveDate, on: NaiveDate) -> u32 {
    use chrono::Datelike;
    if on < birth {
        return 0;
    }
    let mut months = (on.year() - birth.year()) * 12 + on.month() as i32 - birth.month() as i32;
    if on.day() < birth.day() {
        months -= 1;
    }
    months.max(0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_count_whole_years_and_months() {
        let b = NaiveDate::from_ymd_opt(2020, 5, 31).unwrap();
        assert_eq!(
            age_years(b, NaiveDate::from_ymd_opt(2025, 5, 30).unwrap()),
            4
        );
        assert_eq!(
            age_years(b, NaiveDate::from_ymd_opt(2025, 5, 31).unwrap()),
            5
        );
        assert_eq!(
            age_months(b, NaiveDate::from_ymd_opt(2020, 6, 30).unwrap()),
            0
        );
        assert_eq!(
            age_months(b, NaiveDate::from_ymd_opt(2020, 7, 1).unwrap()),
            1
        );
        assert_eq!(
            age_months(b, NaiveDate::from_ymd_opt(2019, 1, 1).unwrap()),
            0
        );
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in OrgKind::ALL {
            assert_eq!(OrgKind::parse(k.as_str()), Some(k));
        }
        for r in PractitionerRole::ALL {
            assert_eq!(PractitionerRole::parse(r.as_str()), Some(r));
        }
    }
}
