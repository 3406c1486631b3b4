//! dhp-fhir: HL7 FHIR R4 (4.0.1) for the District Health Platform — resources mapped to
//! and from the core types, `OperationOutcome` errors that name the element at fault, and
//! a `CapabilityStatement` that claims only what the server does. Pure: no I/O.

pub mod audit;
pub mod capability;
pub mod input;
pub mod outcome;
pub mod patient;
pub mod referral;
pub mod resources;
pub mod scheduling;
pub mod search;
pub mod types;

pub use outcome::{Issue, IssueCode, OperationOutcome};

/// FHIR version served.
pub const FHIR_VERSION: &str = "4.0.1";

/// Media type of FHIR JSON.
pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

/// Identifier system of the 18-digit resident identity number (居民身份证号码,
/// GB 11643-1999). This URI is the platform's own statement of the namespace; a
/// deployment that is given an official one changes it here.
pub const RESIDENT_ID_SYSTEM: &str = "https://fhir.dhp.example/sid/cn-resident-id";
