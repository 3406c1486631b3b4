//! The one table of the FHIR resource types the server knows. For each type: where its
//! current data lives (a core table it is projected to, or stored as received), whether
//! it is a resident's data (audited and scoped), whether clients may write it, whether
//! it is searched as a record type, exported in bulk (`$export`), part of the Patient
//! compartment (`Patient/$export`, `$everything`), and the interactions the
//! CapabilityStatement lists. Every list of types elsewhere derives from this table:
//! [`crate::input::WRITABLE`], [`crate::search::RECORD_TYPES`],
//! [`crate::capability::SUPPORTED`], [`BULK`], [`PATIENT_COMPARTMENT`].
//!
//! The order is the bulk export's: the registry, then the residents' records, then the
//! types kept as received (parents before the resources that refer to them).

/// One resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceType {
    pub name: &'static str,
    /// The core table it is projected to (its name in `dhp-store`'s `Table::name`), or
    /// `None`: kept as received, read and indexed by its [`crate::input::StoredSpec`].
    pub core: Option<&'static str>,
    /// A resident's data: every read is decided by the access rules and audited.
    pub resident: bool,
    /// Clients may create, update and delete it.
    pub writable: bool,
    /// Searched with [`crate::search::search_params`] (Patient has its own parameters).
    pub searched: bool,
    /// Exported by `$export`.
    pub bulk: bool,
    /// In the Patient compartment: `Patient/$export` and `$everything`.
    pub compartment: bool,
    /// The interactions the CapabilityStatement lists for it.
    pub interactions: &'static [&'static str],
    /// Served by tiered care's own tables (the slot pool, `crate::scheduling`; the
    /// referrals, `crate::referral`): read, searched and written through their rules.
    pub care: bool,
}

/// A read-only type: read and search.
pub const READ: &[&str] = &["read", "search-type"];
/// A type clients write.
pub const WRITE: &[&str] = &[
    "read",
    "vread",
    "history-instance",
    "create",
    "update",
    "delete",
    "search-type",
];

const fn registry(name: &'static str, core: &'static str) -> ResourceType {
    ResourceType {
        name,
        core: Some(core),
        resident: false,
        writable: false,
        searched: true,
        bulk: true,
        compartment: false,
        interactions: READ,
        care: false,
    }
}

const fn record(name: &'static str, core: &'static str) -> ResourceType {
    ResourceType {
        name,
        core: Some(core),
        resident: true,
        writable: true,
        searched: true,
        bulk: true,
        compartment: true,
        interactions: WRITE,
        care: false,
    }
}

const fn received(name: &'static str, resident: bool) -> ResourceType {
    ResourceType {
        name,
        core: None,
        resident,
        writable: true,
        searched: true,
        bulk: true,
        compartment: resident,
        interactions: WRITE,
        care: false,
    }
}

/// A referral's Task is read, searched and moved on.
pub const STEP: &[&str] = &["read", "update", "search-type"];

/// An appointment is booked (create, with the pool's capacity guard) and moves on its
/// life cycle (update); it is never deleted, only cancelled.
pub const BOOK: &[&str] = &["read", "create", "update", "search-type"];

const fn care(
    name: &'static str,
    resident: bool,
    interactions: &'static [&'static str],
) -> ResourceType {
    ResourceType {
        name,
        core: None,
        resident,
        writable: resident,
        searched: false,
        bulk: true,
        compartment: resident,
        interactions,
        care: true,
    }
}

/// Every type the server knows, in bulk export order.
pub const TYPES: &[ResourceType] = &[
    registry("Organization", "organisations"),
    registry("Practitioner", "practitioners"),
    registry("PractitionerRole", "practitioners"),
    ResourceType {
        searched: false,
        ..record("Patient", "residents")
    },
    record("Encounter", "encounters"),
    record("Condition", "conditions"),
    record("Observation", "observations"),
    record("Immunization", "immunizations"),
    record("ImagingStudy", "imaging_studies"),
    // 1+1+1 contracts: written through `/api/contracts`, read as CareTeam.
    ResourceType {
        writable: false,
        interactions: READ,
        ..record("CareTeam", "contracts")
    },
    received("MedicationRequest", true),
    received("DiagnosticReport", true),
    received("ServiceRequest", true),
    // The unified slot pool: schedules and slots are published by their organisations.
    care("Schedule", false, READ),
    care("Slot", false, READ),
    care("Appointment", true, BOOK),
    // A referral's fulfilment (its ServiceRequest is read at the same id): moved on by
    // an update of its status; referrals are made with `POST /api/referrals`.
    care("Task", true, STEP),
    // The audit log, searched by patient (`/fhir/AuditEvent?patient=`).
    ResourceType {
        name: "AuditEvent",
        core: None,
        resident: false,
        writable: false,
        searched: false,
        bulk: false,
        compartment: false,
        interactions: &["search-type"],
        care: false,
    },
];

/// The row of `name`, if the server knows the type.
pub fn get(name: &str) -> Option<&'static ResourceType> {
    TYPES.iter().find(|t| t.name == name)
}

/// Is `name` served by tiered care's own tables (slot pool, referrals)?
pub fn care_tables(name: &str) -> bool {
    get(name).is_some_and(|t| t.care)
}

/// Is a resource of this type a resident's data (audited, scoped)?
pub fn resident_data(name: &str) -> bool {
    get(name).is_some_and(|t| t.resident)
}

/// A column of the table, for the lists derived from it at compile time.
#[derive(Clone, Copy)]
pub(crate) enum Column {
    Writable,
    Searched,
    Bulk,
    Compartment,
}

const fn has(t: &ResourceType, c: Column) -> bool {
    match c {
        Column::Writable => t.writable,
        Column::Searched => t.searched,
        Column::Bulk => t.bulk,
        Column::Compartment => t.compartment,
    }
}

/// How many types have `c`.
pub(crate) const fn count(c: Column) -> usize {
    let mut i = 0;
    let mut n = 0;
    while i < TYPES.len() {
        if has(&TYPES[i], c) {
            n += 1;
        }
        i += 1;
    }
    n
}

/// The names of the types that have `c`, in table order.
pub(crate) const fn names<const N: usize>(c: Column) -> [&'static str; N] {
    let mut out = [""; N];
    let (mut i, mut k) = (0, 0);
    while i < TYPES.len() {
        if has(&TYPES[i], c) {
            out[k] = TYPES[i].name;
            k += 1;
        }
        i += 1;
    }
    assert!(k == N, "the list's length is the count of its column");
    out
}

/// What a bulk export (`$export`) can hold: the registry, then the residents' records,
/// then the resources kept as received.
pub const BULK: [&str; count(Column::Bulk)] = names(Column::Bulk);

/// The types of the Patient compartment (`Patient/$export`, `$everything`).
pub const PATIENT_COMPARTMENT: [&str; count(Column::Compartment)] = names(Column::Compartment);

/// The resident id a relative reference `Patient/{id}` names.
pub fn patient_reference(reference: &str) -> Option<dhp_core::Id> {
    reference.strip_prefix("Patient/")?.parse().ok()
}

/// The resident a resource is about: a Patient itself, else the Patient its `subject`,
/// `patient` or `for` names, or one of its participants' actors (an Appointment).
pub fn resident_named(kind: &str, body: &serde_json::Value) -> Option<dhp_core::Id> {
    let patient = |r: &serde_json::Value| patient_reference(r.get("reference")?.as_str()?);
    if kind == "Patient" {
        return body.get("id")?.as_str()?.parse().ok();
    }
    ["subject", "patient", "for"]
        .iter()
        .find_map(|k| patient(body.get(*k)?))
        .or_else(|| {
            body.get("participant")?
                .as_array()?
                .iter()
                .find_map(|p| patient(p.get("actor")?))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_agrees_with_how_types_are_read() {
        for t in TYPES {
            // A type kept as received is a resident's data exactly when its spec names
            // the element that refers to the resident.
            if t.core.is_none() && t.writable && !t.care {
                let spec = crate::input::stored_spec(t.name).expect("a spec for each stored type");
                assert_eq!(spec.patient.is_some(), t.resident, "{}", t.name);
            }
            assert!(!t.compartment || t.resident || t.name == "Patient");
            assert!(
                !t.writable || t.interactions.contains(&"create") || t.name == "Task",
                "{}",
                t.name
            );
        }
        assert_eq!(BULK.len(), 17);
        assert_eq!(PATIENT_COMPARTMENT[0], "Patient");
        assert!(!PATIENT_COMPARTMENT.contains(&"Slot"));
    }

    #[test]
    fn the_resident_a_resource_names() {
        let v = serde_json::json!({ "subject": { "reference": "Patient/7" } });
        assert_eq!(super::resident_named("Observation", &v), Some(7));
        let v = serde_json::json!({ "participant": [
            { "actor": { "reference": "Practitioner/2" } },
            { "actor": { "reference": "Patient/9" } } ] });
        assert_eq!(super::resident_named("Appointment", &v), Some(9));
        let v = serde_json::json!({ "id": "12" });
        assert_eq!(super::resident_named("Patient", &v), Some(12));
        assert_eq!(super::patient_reference("Patient/x"), None);
        assert_eq!(super::patient_reference("Group/3"), None);
    }
}
