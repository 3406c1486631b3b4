//! What a search over stored records asks for, independent of FHIR's wire syntax and of
//! the database: the FHIR layer parses search parameters into a [`RecordQuery`], and the
//! store turns it into SQL over the core tables.

use chrono::NaiveDateTime;

use crate::Id;

/// A searchable property of a record. Which fields a record type has is the store's
/// business (an encounter's `Date` is its start, an immunization's is the day given).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Id,
    /// The resident the record belongs to.
    Resident,
    /// The record's code (ICD-10, observation code, vaccine, organisation code, role).
    Code,
    /// The record's clinical date or time.
    Date,
    /// The organisation responsible (where seen, diagnosed, vaccinated; contracted centre).
    Org,
    Encounter,
    Practitioner,
    /// The parent organisation.
    Parent,
    /// The status token.
    Status,
    /// A name (organisation, practitioner).
    Name,
    /// When the record was last written (UTC).
    LastUpdated,
    /// An identifier's value (an imaging study's Study Instance UID).
    Identifier,
    /// The main reference of a resource kept as received (a Slot's schedule, an
    /// appointment's slot, a referral's performer), as `Type/id` text.
    Reference,
}

/// A condition on a point in time: `Ge(t)` is "at or after t", `Lt(t)` "before t", and
/// `Outside(a, b)` "before a or at or after b". For date-only columns the store compares
/// the day's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateCond {
    Ge(NaiveDateTime),
    Lt(NaiveDateTime),
    Outside(NaiveDateTime, NaiveDateTime),
}

/// One condition of a search; all of a query's filters must hold. Within a filter, any
/// of the values may match.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Ids(Field, Vec<Id>),
    Tokens(Field, Vec<String>),
    /// Text that starts with (or, `contains: true`, contains) any of the values.
    Text {
        field: Field,
        values: Vec<String>,
        contains: bool,
    },
    Date(Field, DateCond),
}

/// A search: filters, order (`true` = descending; ties go by id), and the page.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordQuery {
    pub filters: Vec<Filter>,
    pub sort: Vec<(Field, bool)>,
    pub limit: i64,
    pub offset: i64,
}

impl RecordQuery {
    /// Every record matching `filters`, in id order, up to `limit`.
    pub fn matching(filters: Vec<Filter>, limit: i64) -> Self {
        Self {
            filters,
            sort: Vec::new(),
            limit,
            offset: 0,
        }
    }
}
