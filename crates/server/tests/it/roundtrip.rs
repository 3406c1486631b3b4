//! Import round trip: a generated district's residents exported as Synthea-layout
//! transaction Bundles, imported into a district with the same registry and no
//! residents, and exported again through the bulk `$export` operation over HTTP — the
//! resources come back equal in content (ids and server metadata aside, references
//! compared by what they point at).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use dhp_server::{app, create_demo_accounts, export, import_bundle, AppState};
use dhp_store::{Store, Table};
use serde_json::Value;
use tower::ServiceExt;

use super::{site, temp_dir};

/// Every resource of the exported types in `state`, read directly.
async fn exported(state: &AppState) -> Vec<(&'static str, Value)> {
    let mut all: Vec<(&'static str, Value)> = Vec::new();
    for (kind, _) in export::EXPORT_TYPES {
        export::export_type(state, kind, None, |v| {
            all.push((kind, v));
            Ok(())
        })
        .await
        .unwrap();
    }
    all
}

async fn call(
    state: &Arc<AppState>,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let res = app(state.clone()).oneshot(req).await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let body = axum::body::to_bytes(res.into_body(), 1 << 28)
        .await
        .unwrap();
    (status, headers, body.to_vec())
}

/// The same, through `GET /fhir/Patient/$export` as an integrating system would: kick
/// off, poll the status URL, download every file of the manifest.
async fn bulk_exported(state: &Arc<AppState>) -> Vec<(&'static str, Value)> {
    create_demo_accounts(&*state.store).await.unwrap();
    let (_, _, body) = call(
        state,
        Request::post("/auth/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(
                "grant_type=client_credentials&client_id=system&client_secret=system",
            ))
            .unwrap(),
    )
    .await;
    let token: Value = serde_json::from_slice(&body).unwrap();
    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
    let get = |uri: &str| {
        Request::get(uri)
            .header(header::AUTHORIZATION, &bearer)
            .body(Body::empty())
            .unwrap()
    };
    let types: Vec<&str> = export::EXPORT_TYPES.iter().map(|(k, _)| *k).collect();
    let (status, headers, body) = call(
        state,
        Request::get(format!("/fhir/Patient/$export?_type={}", types.join(",")))
            .header(header::AUTHORIZATION, &bearer)
            .header("prefer", "respond-async")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let location = headers[header::CONTENT_LOCATION].to_str().unwrap();
    let status_path = &location[location.find("/fhir/").unwrap()..];
    let manifest: Value = loop {
        let (status, headers, body) = call(state, get(status_path)).await;
        match status {
            StatusCode::ACCEPTED => {
                assert!(headers.contains_key("x-progress"));
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            StatusCode::OK => break serde_json::from_slice(&body).unwrap(),
            other => panic!("{other}: {}", String::from_utf8_lossy(&body)),
        }
    };
    assert_eq!(manifest["requiresAccessToken"], true);
    let mut all = Vec::new();
    for file in manifest["output"].as_array().unwrap() {
        let kind = export::EXPORT_TYPES
            .iter()
            .map(|(k, _)| *k)
            .find(|k| *k == file["type"])
            .unwrap();
        let url = file["url"].as_str().unwrap();
        let (status, headers, body) = call(state, get(&url[url.find("/fhir/").unwrap()..])).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "application/fhir+ndjson");
        let lines: Vec<Value> = body
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(
            lines.len() as u64,
            file["count"].as_u64().unwrap(),
            "{kind}"
        );
        all.extend(lines.into_iter().map(|v| (kind, v)));
    }
    // Without the token, nothing.
    let (status, _, _) = call(
        state,
        Request::get(status_path).body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    all
}

/// Resources by type, normalised: no id or meta, references to residents' records
/// replaced by a key of what they point at.
fn normalised(all: Vec<(&'static str, Value)>) -> HashMap<&'static str, Vec<String>> {
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
    let url = admin.fresh_database(&admin_url, &name).await.unwrap();
    let store = dhp_store::connect(&url).await.unwrap();
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
    // Every import wrote its audit trail.
    assert!(target
        .store
        .audit_events(None, 5)
        .await
        .unwrap()
        .iter()
        .all(|e| e.action == "create" && e.username == "import-test"));
    let before = normalised(exported(&source.state).await);
    let after = normalised(bulk_exported(&target).await);
    for (kind, _) in export::EXPORT_TYPES {
        let (a, b) = (&before[kind], &after[kind]);
        assert_eq!(a.len(), b.len(), "{kind}");
        for (x, y) in a.iter().zip(b) {
            assert_eq!(x, y, "{kind} differs after the round trip");
        }
    }
}

/// A group of Bundles imported together in which one clashes only at commit (its
/// Patient's identity number is another Bundle's of the same group): that one alone
/// is refused, in words naming no table, and the other 63 land; a Bundle whose record
/// refers to a record that does not exist is refused naming the reference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_with_one_clashing_bundle_lands_all_the_others() {
    let source = site(64).await;
    let dir = temp_dir("import-group");
    let url = format!("sqlite://{}", dir.join("target.db").display());
    let target = dhp_store::connect(&url).await.unwrap();
    export::copy_registry(&*source.state.store, &*target)
        .await
        .unwrap();
    let target = AppState::open(target).await.unwrap();
    let mut bundles = Vec::new();
    export::export_bundles(&source.state, |_, b| {
        bundles.push(b);
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(bundles.len(), 64);
    for field in ["identifier", "birthDate", "gender"] {
        let same = bundles[10]["entry"][0]["resource"][field].clone();
        bundles[40]["entry"][0]["resource"][field] = same;
    }
    // Bundle 41 registers its resident twice: a clash inside one Bundle, found only
    // by the database at commit.
    let mut twice = bundles[41]["entry"][0].clone();
    twice["fullUrl"] = Value::from("urn:uuid:5d1c6a2e-0000-4000-8000-000000000041");
    bundles[41]["entry"].as_array_mut().unwrap().push(twice);
    let answers = dhp_server::import_bundles(
        &target,
        "import-test",
        bundles.into_iter().map(dhp_server::Import::new).collect(),
    )
    .await
    .unwrap();
    let refused: Vec<usize> = (0..answers.len())
        .filter(|&i| answers[i].is_err())
        .collect();
    assert_eq!(refused, vec![40, 41]);
    let why = answers[40].as_ref().unwrap_err().to_json().to_string();
    assert!(why.contains("identity number already registered"), "{why}");
    let why = answers[41].as_ref().unwrap_err().to_json().to_string();
    assert!(
        why.contains("another record already has the same id or identity number"),
        "{why}"
    );
    for raw in ["UNIQUE", "constraint", "residents.", "duplicate key"] {
        assert!(!why.contains(raw), "{why}");
    }
    assert_eq!(target.store.count(Table::Residents).await.unwrap(), 62);

    // An Observation naming an Encounter that is not there: refused at the reference.
    let patient = target
        .store
        .page(Table::Residents, 0, 1)
        .await
        .unwrap()
        .residents[0]
        .id;
    let bundle = serde_json::json!({
        "resourceType": "Bundle", "type": "transaction",
        "entry": [{ "request": { "method": "POST", "url": "Observation" }, "resource": {
            "resourceType": "Observation", "status": "final",
            "code": { "coding": [{ "system": "http://loinc.org", "code": "8867-4" }] },
            "subject": { "reference": format!("Patient/{patient}") },
            "encounter": { "reference": "Encounter/987654" },
            "effectiveDateTime": "2024-05-01T09:00:00+08:00",
            "valueQuantity": { "value": 72, "unit": "/min" },
        }}],
    });
    let answer = import_bundle(&target, "import-test", bundle).await.unwrap();
    let why = answer.unwrap_err().to_json().to_string();
    assert!(
        why.contains("Observation.encounter.reference")
            && why.contains("Encounter/987654 does not exist"),
        "{why}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
