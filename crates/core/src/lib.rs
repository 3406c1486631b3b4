//! dhp-core: the pure domain of the District Health Platform — types and rules.
//!
//! No I/O lives here: no database, no network, no async runtime. Rule tables from
//! `data/` are compiled in and parsed once.

pub mod access;
pub mod booking;
pub mod clock;
pub mod codes;
pub mod contract;
pub mod csv;
pub mod identity;
pub mod indicators;
pub mod password;
pub mod plan;
pub mod programmes;
pub mod query;
pub mod recognition;
pub mod record;
pub mod referral;
pub mod registry;
pub mod surveillance;
pub mod survey;

pub use identity::{IdentityError, IdentityNumber};
pub use record::{
    Condition, Contract, ContractStatus, Encounter, EncounterType, ImagingStudy, Immunization,
    Observation, Programme,
};
pub use registry::{
    HospitalLevel, Household, Id, OrgKind, Organisation, Practitioner, PractitionerRole, Resident,
    Sex,
};
