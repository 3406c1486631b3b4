//! Export of residents' records as FHIR: every current resource of a type (NDJSON, the
//! bulk-data layout), or one transaction Bundle per resident in the Synthea layout
//! (`urn:uuid` full URLs, `POST` requests, organisations by conditional reference), which
//! `dhp import` and `POST /fhir` load back. Resources written through the API are
//! exported as stored; generated ones as mapped.

use std::collections::{BTreeMap, HashMap};

use dhp_core::Id;
use dhp_fhir::resources::ORG_CODE_SYSTEM;
use dhp_store::{Batch, StoreError, Table};
use serde_json::{json, Value};

use crate::AppState;

/// The exported types, parents first, with their core tables.
pub const EXPORT_TYPES: [(&str, Table); 6] = [
    ("Patient", Table::Residents),
    ("Encounter", Table::Encounters),
    ("Condition", Table::Conditions),
    ("Observation", Table::Observations),
    ("Immunization", Table::Immunizations),
    ("ImagingStudy", Table::ImagingStudies),
];

/// What a bulk export (`$export`) can hold: the registry, then the residents' records,
/// then the resources kept as received.
pub const BULK_TYPES: [&str; dhp_fhir::types::BULK.len()] = dhp_fhir::types::BULK;

/// The types of the Patient compartment (`Patient/$export`, `$everything`).
pub const PATIENT_TYPES: [&str; dhp_fhir::types::PATIENT_COMPARTMENT.len()] =
    dhp_fhir::types::PATIENT_COMPARTMENT;

/// Rows read per page.
const PAGE: i64 = 5_000;

/// Every current resource of `kind` (one of [`BULK_TYPES`]), in id order, handed to
/// `each`: the stored form where there is one, else the mapped core row. `since`
/// (`YYYY-MM-DDTHH:MM:SS.sssZ`): only those last updated at or after it.
pub async fn export_type(
    state: &AppState,
    kind: &str,
    since: Option<&str>,
    mut each: impl FnMut(Value) -> std::io::Result<()>,
) -> Result<u64, ExportError> {
    if !BULK_TYPES.contains(&kind) {
        return Err(ExportError::Unsupported(kind.to_string()));
    }
    let mut n = 0;
    // Core tables page by id (no OFFSET over a district); resources kept as received
    // are few enough to page by offset.
    let table = dhp_store::core_table(kind);
    let (mut after, mut offset) = (0, 0);
    loop {
        let rows = match table {
            Some(table) => {
                let page = state.store.page(table, after, PAGE).await?;
                let Some(last) = page.last_id() else { break };
                after = last;
                crate::fhir::render(state, kind, &page, false).await?
            }
            None => {
                let q = dhp_core::query::RecordQuery {
                    filters: Vec::new(),
                    sort: Vec::new(),
                    limit: PAGE,
                    offset,
                };
                offset += PAGE;
                let scope = dhp_core::access::Scope::All;
                let (rows, _, _) = crate::fhir::fetch(state, kind, &q, &scope, false).await?;
                if rows.is_empty() {
                    break;
                }
                rows
            }
        };
        for r in rows {
            let updated = r.body.pointer("/meta/lastUpdated").and_then(Value::as_str);
            if since.is_some_and(|s| updated.is_some_and(|u| u < s)) {
                continue;
            }
            each(r.body)?;
            n += 1;
        }
    }
    Ok(n)
}

/// A failure of an export.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0} is not exported (these are: {types})", types = BULK_TYPES.join(", "))]
    Unsupported(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the export failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A stable `urn:uuid` for `kind/id` (the Synthea layout names entries by UUID).
fn urn(kind: &str, id: &str) -> String {
    let k = EXPORT_TYPES
        .iter()
        .position(|(t, _)| *t == kind)
        .unwrap_or(9);
    let n: u64 = id.parse().unwrap_or(0);
    format!("urn:uuid:00000000-0000-4000-8{k:03x}-{n:012x}")
}

/// Rewrite the references of `v` for a Bundle: residents' records by `urn:uuid`,
/// organisations by conditional reference on their code.
fn bundle_references(v: &mut Value, org_codes: &HashMap<String, String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                if k == "reference" {
                    let Some(r) = x.as_str() else { continue };
                    let Some((kind, id)) = r.split_once('/') else {
                        continue;
                    };
                    if EXPORT_TYPES.iter().any(|(t, _)| *t == kind) {
                        *x = json!(urn(kind, id));
                    } else if kind == "Organization" {
                        if let Some(code) = org_codes.get(id) {
                            *x = json!(format!("Organization?identifier={ORG_CODE_SYSTEM}|{code}"));
                        }
                    }
                } else {
                    bundle_references(x, org_codes);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| bundle_references(x, org_codes)),
        _ => {}
    }
}

/// One transaction Bundle per resident (Synthea layout), in resident id order, handed
/// to `each` with the resident's id. Holds every record in memory: meant for samples
/// and test sets, not a whole district (use NDJSON for that).
pub async fn export_bundles(
    state: &AppState,
    mut each: impl FnMut(Id, Value) -> std::io::Result<()>,
) -> Result<u64, ExportError> {
    let org_codes: HashMap<String, String> = state
        .orgs()
        .await?
        .values()
        .map(|o| (o.id.to_string(), o.code.clone()))
        .collect();
    let mut per_resident: BTreeMap<Id, Vec<Value>> = BTreeMap::new();
    for (kind, _) in EXPORT_TYPES {
        export_type(state, kind, None, |v| {
            let owner = dhp_fhir::types::resident_named(kind, &v);
            if let Some(o) = owner {
                per_resident.entry(o).or_default().push(v);
            }
            Ok(())
        })
        .await?;
    }
    let mut n = 0;
    for (resident, resources) in per_resident {
        let entries: Vec<Value> = resources
            .into_iter()
            .map(|mut r| {
                let kind = r["resourceType"].as_str().unwrap_or_default().to_string();
                let id = r["id"].as_str().unwrap_or_default().to_string();
                if let Some(o) = r.as_object_mut() {
                    o.remove("id");
                    o.remove("meta");
                }
                bundle_references(&mut r, &org_codes);
                json!({
                    "fullUrl": urn(&kind, &id),
                    "resource": r,
                    "request": { "method": "POST", "url": kind },
                })
            })
            .collect();
        each(
            resident,
            json!({ "resourceType": "Bundle", "type": "transaction", "entry": entries }),
        )?;
        n += 1;
    }
    Ok(n)
}

/// Copy the registry (organisations, staff) and the district's names of `from` into an
/// empty `to`: a district to import residents into.
pub async fn copy_registry(
    from: &dyn dhp_store::Store,
    to: &dyn dhp_store::Store,
) -> Result<(), StoreError> {
    let registry = Batch {
        organisations: from
            .page(Table::Organisations, 0, i64::MAX)
            .await?
            .organisations,
        practitioners: from
            .page(Table::Practitioners, 0, i64::MAX)
            .await?
            .practitioners,
        ..Batch::default()
    };
    to.insert_batch(&registry).await?;
    for key in [
        "city_name_zh",
        "city_name_en",
        "district_name_zh",
        "district_name_en",
        "district_code",
        "district_former_codes",
        "end_date",
    ] {
        if let Some(v) = from.meta(key).await? {
            to.set_meta(key, &v).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_type_table_names_the_store_tables_the_store_uses() {
        for t in dhp_fhir::types::TYPES {
            assert_eq!(
                dhp_store::core_table(t.name).map(dhp_store::Table::name),
                t.core,
                "{}",
                t.name
            );
        }
    }
}
