//! Import round trip: a generated district's residents exported as Synthea-layout
//! transaction Bundles, imported into a district with the same registry and no
//! residents, and exported again — the resources come back equal in content (ids and
//! server metadata aside, references compared by what they point at).

use std::collections::HashMap;
use std::sync::Arc;

use dhp_server::{export, import_bundle, AppState};
use dhp_store::{Store, Table};
use serde_json::Value;

use super::{site, temp_dir};

/// Every exported resource of `state`, by type, normalised: no id or meta, references
/// to residents' records replaced by a key of what they point at.
async fn normalised(state: &AppState) -> HashMap<&'static str, Vec<String>> {
    let mut all: Vec<(&'static str, Value)> = Vec::new();
    for (kind, _) in export::EXPORT_TYPES {
        export::export_type(state, kind, |v| {
            all.push((kind, v));
            Ok(())
        })
        .await
        .unwrap();
    }
    // Keys: a Patient by identity number; an Encounter by its patient, start and place.
    let mut keys: HashMap<String, String> = HashMap::new();
    for (kind, v) in &all {
        if *kind == "Patient" {
            keys.insert(
                format!("Patient/{}", v["id"].as_str().unwrap()),
                format!("P:{}", v["identifier"][0]["value"].as_str().unwrap()),
            );
        }
    }
    for (kind, v) in &all {
        if *kind == "Encounter" {
            let patient = &keys[v["subject"]["reference"].as_str().unwrap()];
            keys.insert(
                format!("Encounter/{}", v["id"].as_str().unwrap()),
                format!(
                    "E:{patient}:{}:{}",
                    v["period"]["start"], v["serviceProvider"]
                ),
            );
        }
    }
    fn rewrite(v: &mut Value, keys: &HashMap<String, String>) {
        match v {
            Value::Object(o) => {
                o.remove("id");
                o.remove("meta");
                for (k, x) in o.iter_mut() {
                    if k == "reference" {
                        if let Some(key) = x.as_str().and_then(|r| keys.get(r)) {
                            *x = Value::String(key.clone());
                        }
                    } else {
                        rewrite(x, keys);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| rewrite(x, keys)),
            _ => {}
        }
    }
    let mut out: HashMap<&'static str, Vec<String>> = HashMap::new();
    for (kind, mut v) in all {
        rewrite(&mut v, &keys);
        out.entry(kind).or_default().push(v.to_string());
    }
    for list in out.values_mut() {
        list.sort();
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthea_layout_bundles_round_trip_on_sqlite() {
    let dir = temp_dir("roundtrip");
    let url = format!("sqlite://{}", dir.join("target.db").display());
    round_trip(dhp_store::connect(&url).await.unwrap()).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthea_layout_bundles_round_trip_on_postgres() {
    let Ok(admin_url) = std::env::var("DHP_TEST_POSTGRES_URL") else {
        eprintln!("DHP_TEST_POSTGRES_URL not set: PostgreSQL round trip skipped");
        return;
    };
    let name = format!("dhp_roundtrip_{}", std::process::id());
    let admin = dhp_store::AdminPool::connect(&admin_url).await.unwrap();
    admin
        .execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .await
        .unwrap();
    admin
        .execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    let store = dhp_store::connect(&format!("{base}/{name}")).await.unwrap();
    round_trip(store.clone()).await;
    store.close().await;
    drop(store);
    admin
        .execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .unwrap();
}

/// Export a generated district's residents as Bundles, import them into `target`
/// (empty), export again and compare.
async fn round_trip(target: Arc<dyn Store>) {
    let source = site(120).await;
    // The target: the same registry (organisations, staff, district names), no residents.
    export::copy_registry(&*source.state.store, &*target)
        .await
        .unwrap();
    let target = AppState::open(target).await.unwrap();

    let mut bundles = Vec::new();
    let n = export::export_bundles(&source.state, |_, b| {
        bundles.push(b);
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(n, 120);
    let entries: usize = bundles
        .iter()
        .map(|b| b["entry"].as_array().unwrap().len())
        .sum();
    assert!(entries > 600, "{entries} entries");
    for b in bundles {
        let answer = import_bundle(&target, "import-test", b).await.unwrap();
        let answer = answer.unwrap_or_else(|o| panic!("{:?}", o.to_json()));
        assert_eq!(answer["type"], "transaction-response");
    }
    for t in [
        Table::Residents,
        Table::Encounters,
        Table::Conditions,
        Table::Observations,
        Table::Immunizations,
    ] {
        assert_eq!(
            target.store.count(t).await.unwrap(),
            source.state.store.count(t).await.unwrap(),
            "{t:?}"
        );
    }
    let before = normalised(&source.state).await;
    let after = normalised(&target).await;
    for (kind, _) in export::EXPORT_TYPES {
        let (a, b) = (&before[kind], &after[kind]);
        assert_eq!(a.len(), b.len(), "{kind}");
        for (x, y) in a.iter().zip(b) {
            assert_eq!(x, y, "{kind} differs after the round trip");
        }
    }
    // Every import wrote its audit trail.
    assert!(target
        .store
        .audit_events(None, 5)
        .await
        .unwrap()
        .iter()
        .all(|e| e.action == "create" && e.username == "import-test"));
}
