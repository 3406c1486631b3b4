//! Decoding stored rows into core types, shared by both backends. Column lists and
//! paging SQL are the same text on SQLite and PostgreSQL; only the row type differs.

use chrono::{NaiveDate, NaiveDateTime};
use dhp_core::{
    Condition, Contract, ContractStatus, Encounter, EncounterType, HospitalLevel, Household,
    IdentityNumber, Immunization, Observation, OrgKind, Organisation, Practitioner,
    PractitionerRole, Programme, Resident, Sex,
};
use sqlx::Row;

use crate::{Batch, Result, StoreError, Table};

/// Typed column access, implemented for each backend's row type.
pub trait Col {
    fn i64(&self, i: usize) -> Result<i64>;
    fn oi64(&self, i: usize) -> Result<Option<i64>>;
    fn text(&self, i: usize) -> Result<String>;
    fn otext(&self, i: usize) -> Result<Option<String>>;
    fn date(&self, i: usize) -> Result<NaiveDate>;
    fn odate(&self, i: usize) -> Result<Option<NaiveDate>>;
    fn datetime(&self, i: usize) -> Result<NaiveDateTime>;
    fn odatetime(&self, i: usize) -> Result<Option<NaiveDateTime>>;
    fn f64(&self, i: usize) -> Result<f64>;
    fn bool(&self, i: usize) -> Result<bool>;
    /// Column `i` (text or NULL) read through `f` (a code of an enum): `None` for NULL,
    /// `Corrupt` naming `what` when `f` does not know the text. A backend that can lend
    /// the text avoids copying it.
    fn code<T>(
        &self,
        i: usize,
        what: &str,
        f: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>> {
        match self.otext(i)? {
            None => Ok(None),
            Some(s) => f(&s).map(Some).ok_or_else(|| corrupt(what, &s)),
        }
    }
}

/// A code column that must not be NULL.
fn required<T>(v: Option<T>, what: &str) -> Result<T> {
    v.ok_or_else(|| StoreError::Corrupt(format!("{what} is missing")))
}

macro_rules! impl_col {
    ($row:ty) => {
        impl Col for $row {
            fn i64(&self, i: usize) -> Result<i64> {
                Ok(self.try_get(i)?)
            }
            fn oi64(&self, i: usize) -> Result<Option<i64>> {
                Ok(self.try_get(i)?)
            }
            fn text(&self, i: usize) -> Result<String> {
                Ok(self.try_get(i)?)
            }
            fn otext(&self, i: usize) -> Result<Option<String>> {
                Ok(self.try_get(i)?)
            }
            fn date(&self, i: usize) -> Result<NaiveDate> {
                Ok(self.try_get(i)?)
            }
            fn odate(&self, i: usize) -> Result<Option<NaiveDate>> {
                Ok(self.try_get(i)?)
            }
            fn datetime(&self, i: usize) -> Result<NaiveDateTime> {
                Ok(self.try_get(i)?)
            }
            fn odatetime(&self, i: usize) -> Result<Option<NaiveDateTime>> {
                Ok(self.try_get(i)?)
            }
            fn f64(&self, i: usize) -> Result<f64> {
                Ok(self.try_get(i)?)
            }
            fn bool(&self, i: usize) -> Result<bool> {
                Ok(self.try_get(i)?)
            }
        }
    };
}

impl_col!(sqlx::sqlite::SqliteRow);
impl_col!(sqlx::postgres::PgRow);

/// The columns of each table, in the order the decoders read them.
pub(crate) fn columns(table: Table) -> &'static str {
    match table {
        Table::Organisations => "id, code, name_zh, name_en, kind, level, parent_id, district_code, beds",
        Table::Practitioners => "id, name, role, org_id, district_code",
        Table::Households => "id, district_code, street_org_id, address",
        Table::Residents => "id, district_code, identity_number, name, sex, birth_date, street_org_id, household_id, phone, registered",
        Table::Contracts => "id, resident_id, centre_org_id, doctor_id, district_hospital_id, city_hospital_id, start_date, end_date, status",
        Table::Encounters => "id, resident_id, kind, programme, org_id, practitioner_id, start_time",
        Table::Conditions => "id, resident_id, icd10, onset, org_id",
        Table::Observations => "id, resident_id, encounter_id, code, value, unit, effective",
        Table::Immunizations => "id, resident_id, vaccine, dose_number, date, org_id",
        Table::ImagingStudies => "id, resident_id, encounter_id, org_id, code, modality, started, uid, findings",
    }
}

/// `SELECT … WHERE id > $1 ORDER BY id LIMIT $2` for a table.
pub(crate) fn page_sql(table: Table) -> String {
    format!(
        "SELECT {} FROM {} WHERE id > $1 ORDER BY id LIMIT $2",
        columns(table),
        table.name()
    )
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {value:?}"))
}

pub(crate) fn organisation(r: &impl Col) -> Result<Organisation> {
    let kind = r.text(4)?;
    Ok(Organisation {
        id: r.i64(0)?,
        code: r.text(1)?,
        name_zh: r.text(2)?,
        name_en: r.text(3)?,
        kind: OrgKind::parse(&kind).ok_or_else(|| corrupt("organisation kind", &kind))?,
        level: r.oi64(5)?.and_then(HospitalLevel::from_number),
        parent_id: r.oi64(6)?,
        district_code: r.text(7)?,
        beds: r.i64(8)?,
    })
}

pub(crate) fn resident(r: &impl Col) -> Result<Resident> {
    let id_text = r.text(2)?;
    let sex = r.text(4)?;
    Ok(Resident {
        id: r.i64(0)?,
        district_code: r.text(1)?,
        identity_number: IdentityNumber::parse(&id_text, NaiveDate::MAX)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        name: r.text(3)?,
        sex: match sex.as_str() {
            "male" => Sex::Male,
            "female" => Sex::Female,
            _ => return Err(corrupt("sex", &sex)),
        },
        birth_date: r.date(5)?,
        street_org_id: r.i64(6)?,
        household_id: r.i64(7)?,
        phone: r.text(8)?,
        registered: r.bool(9)?,
    })
}

/// Decode one row of `table` into `batch`.
pub(crate) fn push(batch: &mut Batch, table: Table, r: &impl Col) -> Result<()> {
    match table {
        Table::Organisations => batch.organisations.push(organisation(r)?),
        Table::Practitioners => {
            let role = r.text(2)?;
            batch.practitioners.push(Practitioner {
                id: r.i64(0)?,
                name: r.text(1)?,
                role: PractitionerRole::parse(&role)
                    .ok_or_else(|| corrupt("practitioner role", &role))?,
                org_id: r.i64(3)?,
                district_code: r.text(4)?,
            })
        }
        Table::Households => batch.households.push(Household {
            id: r.i64(0)?,
            district_code: r.text(1)?,
            street_org_id: r.i64(2)?,
            address: r.text(3)?,
        }),
        Table::Residents => batch.residents.push(resident(r)?),
        Table::Contracts => {
            let status = required(
                r.code(8, "contract status", ContractStatus::parse)?,
                "contract status",
            )?;
            batch.contracts.push(Contract {
                id: r.i64(0)?,
                resident_id: r.i64(1)?,
                centre_org_id: r.i64(2)?,
                doctor_id: r.i64(3)?,
                district_hospital_id: r.i64(4)?,
                city_hospital_id: r.i64(5)?,
                start: r.date(6)?,
                end: r.date(7)?,
                status,
            })
        }
        Table::Encounters => {
            let kind = required(
                r.code(2, "encounter type", EncounterType::parse)?,
                "encounter type",
            )?;
            batch.encounters.push(Encounter {
                id: r.i64(0)?,
                resident_id: r.i64(1)?,
                kind,
                programme: r.code(3, "programme", Programme::parse)?,
                org_id: r.i64(4)?,
                practitioner_id: r.oi64(5)?,
                start: r.datetime(6)?,
            })
        }
        Table::Conditions => batch.conditions.push(Condition {
            id: r.i64(0)?,
            resident_id: r.i64(1)?,
            icd10: r.text(2)?,
            onset: r.date(3)?,
            org_id: r.i64(4)?,
        }),
        Table::Observations => batch.observations.push(Observation {
            id: r.i64(0)?,
            resident_id: r.i64(1)?,
            encounter_id: r.oi64(2)?,
            code: r.text(3)?,
            value: r.f64(4)?,
            unit: r.text(5)?,
            effective: r.datetime(6)?,
        }),
        Table::Immunizations => batch.immunizations.push(Immunization {
            id: r.i64(0)?,
            resident_id: r.i64(1)?,
            vaccine: r.text(2)?,
            dose_number: r.i64(3)? as i32,
            date: r.date(4)?,
            org_id: r.i64(5)?,
        }),
        Table::ImagingStudies => batch.imaging_studies.push(dhp_core::ImagingStudy {
            id: r.i64(0)?,
            resident_id: r.i64(1)?,
            encounter_id: r.i64(2)?,
            org_id: r.i64(3)?,
            code: r.text(4)?,
            modality: r.text(5)?,
            started: r.datetime(6)?,
            uid: r.text(7)?,
            findings: r.text(8)?,
        }),
    }
    Ok(())
}

/// Decode a user row (`USER_COLUMNS` order).
pub(crate) fn user(r: &impl Col) -> Result<crate::User> {
    Ok(crate::User {
        id: r.i64(0)?,
        username: r.text(1)?,
        password_hash: r.text(2)?,
        role: r.text(3)?,
        display_name: r.text(4)?,
        org_id: r.oi64(5)?,
        practitioner_id: r.oi64(6)?,
        resident_id: r.oi64(7)?,
    })
}

pub(crate) const USER_COLUMNS: &str =
    "id, username, password_hash, role, display_name, org_id, practitioner_id, resident_id";

/// One version of a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResource {
    /// The FHIR resource type, e.g. `Patient`.
    pub kind: String,
    pub id: dhp_core::Id,
    pub version_id: i64,
    /// `YYYY-MM-DDTHH:MM:SS.sssZ` (UTC), so text order is time order on both backends.
    pub last_updated: String,
    pub resident_id: Option<dhp_core::Id>,
    /// The resource's JSON; `None` for a deletion.
    pub json: Option<String>,
    /// Its status token, extracted for search (`status`; `clinicalStatus` for Condition).
    pub status: Option<String>,
    /// Search columns of types kept as received: main code, main date or time (local,
    /// `YYYY-MM-DDTHH:MM:SS`), main reference (`Type/id`).
    pub index: Index,
}

/// The search columns of a resource kept as received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    pub code: Option<String>,
    pub date: Option<String>,
    pub reference: Option<String>,
}

impl StoredResource {
    pub fn deleted(&self) -> bool {
        self.json.is_none()
    }
}

pub(crate) const RESOURCE_COLUMNS: &str =
    "type, id, version_id, last_updated, resident_id, json, status, code, date, ref";

pub(crate) fn stored_resource<R: Col>(r: &R) -> Result<StoredResource> {
    Ok(StoredResource {
        kind: r.text(0)?,
        id: r.i64(1)?,
        version_id: r.i64(2)?,
        last_updated: r.text(3)?,
        resident_id: r.oi64(4)?,
        json: r.otext(5)?,
        status: r.otext(6)?,
        index: Index {
            code: r.otext(7)?,
            date: r.otext(8)?,
            reference: r.otext(9)?,
        },
    })
}
