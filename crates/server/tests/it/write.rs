//! Writes through FHIR end to end: create, update, delete, versions and history,
//! transactions and batches — each checked in the core tables, the stored versions and
//! the audit log, and every refusal checked to change nothing.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use dhp_core::IdentityNumber;
use dhp_server::app;
use dhp_store::{content_digest, Table};
use serde_json::{json, Value};
use tower::ServiceExt;

use super::{site, Site};

mod hostile;

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    location: Option<String>,
    etag: Option<String>,
    pub(crate) allow: Option<String>,
    pub(crate) json: Value,
}

pub(crate) async fn send(
    s: &Site,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
    extra: &[(&str, &str)],
) -> Reply {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/fhir+json");
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let req = req
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let res = app(s.state.clone()).oneshot(req).await.unwrap();
    let h = |n: header::HeaderName| {
        res.headers()
            .get(n)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let (status, location, etag, allow) = (
        res.status(),
        h(header::LOCATION),
        h(header::ETAG),
        h(header::ALLOW),
    );
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 24)
        .await
        .unwrap();
    Reply {
        status,
        location,
        etag,
        allow,
        json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

async fn token(s: &Site, form: &str) -> String {
    let req = Request::post("/auth/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_string()))
        .unwrap();
    let res = app(s.state.clone()).oneshot(req).await.unwrap();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    v["access_token"].as_str().unwrap().to_string()
}

async fn system(s: &Site) -> String {
    token(
        s,
        "grant_type=client_credentials&client_id=system&client_secret=system",
    )
    .await
}

async fn person(s: &Site, user: &str) -> String {
    token(
        s,
        &format!("grant_type=password&username={user}&password={user}"),
    )
    .await
}

/// A new resident of the street or town named `area` (Chinese name), with an identity
/// number no generated resident has.
fn new_patient(area: &str, seq: u16) -> Value {
    let today = dhp_core::clock::today();
    let born = chrono::NaiveDate::from_ymd_opt(1961, 5, 17).unwrap();
    let id = IdentityNumber::compose("310118", born, 900 + seq);
    let id = IdentityNumber::parse(id.as_str(), today).unwrap();
    json!({
        "resourceType": "Patient",
        "identifier": [{ "system": dhp_fhir::RESIDENT_ID_SYSTEM, "value": id.as_str() }],
        "name": [{ "text": "林晓燕" }],
        "gender": if id.sex() == dhp_core::Sex::Male { "male" } else { "female" },
        "birthDate": "1961-05-17",
        "telecom": [{ "system": "phone", "value": "13800000001" }],
        "address": [{ "line": [format!("{area}新胜路8号")] }],
    })
}

async fn area_name(s: &Site) -> (i64, String) {
    let orgs = s
        .state
        .store
        .page(Table::Organisations, 0, 10_000)
        .await
        .unwrap()
        .organisations;
    let street = orgs
        .iter()
        .find(|o| matches!(o.kind, dhp_core::OrgKind::Street))
        .unwrap();
    (street.id, street.name_zh.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_is_created_versioned_read_and_deleted() {
    let s = site(300).await;
    let store = &*s.state.store;
    let t = system(&s).await;
    let (street, area) = area_name(&s).await;
    let before = store.count(Table::Residents).await.unwrap();

    let body = new_patient(&area, 1);
    let created = send(&s, "POST", "/fhir/Patient", &t, Some(&body), &[]).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    let id = created.json["id"].as_str().unwrap().to_string();
    assert!(created
        .location
        .unwrap()
        .ends_with(&format!("/fhir/Patient/{id}/_history/1")));
    assert_eq!(created.etag.as_deref(), Some("W/\"1\""));
    assert_eq!(created.json["meta"]["versionId"], "1");
    // The core row: placed in the street its address names, with its own household.
    let identity = body["identifier"][0]["value"].as_str().unwrap();
    let resident = store.resident_by_identity(identity).await.unwrap();
    assert_eq!(resident.id.to_string(), id);
    assert_eq!(resident.street_org_id, street);
    assert_eq!(resident.name, "林晓燕");
    assert_eq!(store.count(Table::Residents).await.unwrap(), before + 1);

    // Read and search answer the resource as stored.
    let read = send(&s, "GET", &format!("/fhir/Patient/{id}"), &t, None, &[]).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.json["address"], body["address"]);
    assert_eq!(read.etag.as_deref(), Some("W/\"1\""));
    let found = send(
        &s,
        "GET",
        &format!("/fhir/Patient?identifier={identity}"),
        &t,
        None,
        &[],
    )
    .await;
    assert_eq!(found.json["total"], 1);
    assert_eq!(
        found.json["entry"][0]["resource"]["telecom"],
        body["telecom"]
    );

    // If-None-Exist finds it and creates nothing.
    let again = send(
        &s,
        "POST",
        "/fhir/Patient",
        &t,
        Some(&body),
        &[("if-none-exist", &format!("identifier={identity}"))],
    )
    .await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.location.unwrap().ends_with(&format!("/Patient/{id}")));
    // Without it, the same identity number is a conflict.
    let twice = send(&s, "POST", "/fhir/Patient", &t, Some(&body), &[]).await;
    assert_eq!(twice.status, StatusCode::CONFLICT, "{}", twice.json);
    assert_eq!(store.count(Table::Residents).await.unwrap(), before + 1);

    // Update: a stale If-Match is refused; the current one writes version 2.
    let mut changed = read.json.clone();
    changed["name"] = json!([{ "text": "林晓红" }]);
    let stale = send(
        &s,
        "PUT",
        &format!("/fhir/Patient/{id}"),
        &t,
        Some(&changed),
        &[("if-match", "W/\"7\"")],
    )
    .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    let updated = send(
        &s,
        "PUT",
        &format!("/fhir/Patient/{id}"),
        &t,
        Some(&changed),
        &[("if-match", "W/\"1\"")],
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.json);
    assert_eq!(updated.json["meta"]["versionId"], "2");
    assert_eq!(
        store.resident_by_identity(identity).await.unwrap().name,
        "林晓红"
    );
    let v1 = send(
        &s,
        "GET",
        &format!("/fhir/Patient/{id}/_history/1"),
        &t,
        None,
        &[],
    )
    .await;
    assert_eq!(v1.json["name"][0]["text"], "林晓燕");
    let history = send(
        &s,
        "GET",
        &format!("/fhir/Patient/{id}/_history"),
        &t,
        None,
        &[],
    )
    .await;
    assert_eq!(history.json["type"], "history");
    assert_eq!(history.json["total"], 2);
    assert_eq!(history.json["entry"][0]["request"]["method"], "PUT");
    assert_eq!(history.json["entry"][1]["request"]["method"], "POST");

    // Delete: gone (410), its version kept; deleting again is fine.
    let deleted = send(&s, "DELETE", &format!("/fhir/Patient/{id}"), &t, None, &[]).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        send(&s, "GET", &format!("/fhir/Patient/{id}"), &t, None, &[])
            .await
            .status,
        StatusCode::GONE
    );
    assert_eq!(
        send(&s, "DELETE", &format!("/fhir/Patient/{id}"), &t, None, &[])
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(
            &s,
            "GET",
            &format!("/fhir/Patient/{id}/_history/2"),
            &t,
            None,
            &[]
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(store.count(Table::Residents).await.unwrap(), before);

    // Every write is in the audit log.
    let rid: i64 = id.parse().unwrap();
    let actions: Vec<String> = store
        .audit_events(Some(rid), 50)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    for a in ["create", "update", "delete", "read", "vread", "history"] {
        assert!(
            actions.iter().any(|x| x == a),
            "{a} missing from {actions:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_writes_get_an_outcome_and_change_nothing() {
    let s = site(300).await;
    let store = &*s.state.store;
    let t = system(&s).await;
    let (_, area) = area_name(&s).await;
    let before = content_digest(store).await.unwrap();

    let mut bad = new_patient(&area, 2);
    bad["identifier"][0]["value"] = json!(format!(
        "{}0",
        &bad["identifier"][0]["value"].as_str().unwrap()[..17]
    ));
    let r = send(&s, "POST", "/fhir/Patient", &t, Some(&bad), &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json["resourceType"], "OperationOutcome");
    assert_eq!(
        r.json["issue"][0]["expression"][0],
        "Patient.identifier[0].value"
    );

    let nowhere = json!({ "resourceType": "Patient", "identifier": new_patient(&area, 3)["identifier"], "name": [{ "text": "王五" }], "address": [{ "line": ["火星路1号"] }] });
    let r = send(&s, "POST", "/fhir/Patient", &t, Some(&nowhere), &[]).await;
    assert_eq!(
        r.json["issue"][0]["expression"][0], "Patient.address",
        "{}",
        r.json
    );

    let wrong_type = send(
        &s,
        "POST",
        "/fhir/Encounter",
        &t,
        Some(&new_patient(&area, 4)),
        &[],
    )
    .await;
    assert_eq!(
        wrong_type.json["issue"][0]["expression"][0],
        "Encounter.resourceType"
    );
    let not_json = Request::post("/fhir/Patient")
        .header(header::AUTHORIZATION, format!("Bearer {t}"))
        .body(Body::from("{ not json"))
        .unwrap();
    assert_eq!(
        app(s.state.clone())
            .oneshot(not_json)
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST
    );

    let obs = json!({
        "resourceType": "Observation", "status": "final",
        "code": { "coding": [{ "system": "http://loinc.org", "code": "8480-6" }] },
        "subject": { "reference": "Patient/99999999" },
        "effectiveDateTime": "2026-11-01T09:00:00+08:00",
        "valueQuantity": { "value": 150, "unit": "mmHg" },
    });
    let r = send(&s, "POST", "/fhir/Observation", &t, Some(&obs), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.json);
    let r = send(
        &s,
        "POST",
        "/fhir/Organization",
        &t,
        Some(&json!({ "resourceType": "Organization" })),
        &[],
    )
    .await;
    assert_eq!(r.json["issue"][0]["code"], "not-supported");
    let r = send(
        &s,
        "PUT",
        "/fhir/Observation/123456789012",
        &t,
        Some(&json!({ "resourceType": "Observation", "id": "123456789012" })),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);

    // A referred-to resident cannot be deleted.
    let patient = store
        .page(Table::Encounters, 0, 1)
        .await
        .unwrap()
        .encounters[0]
        .resident_id;
    let r = send(
        &s,
        "DELETE",
        &format!("/fhir/Patient/{patient}"),
        &t,
        None,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.json);

    // A manager reviews and does not write; a family doctor writes only in scope.
    let manager = person(&s, "manager").await;
    let mut own = obs.clone();
    own["subject"]["reference"] = json!(format!("Patient/{patient}"));
    let r = send(&s, "POST", "/fhir/Observation", &manager, Some(&own), &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(content_digest(store).await.unwrap(), before);
    assert!(store.resource("Patient", patient).await.unwrap().is_none());

    // Every refused write is an audit row: who, what, the answer and the elements at
    // fault — never the values sent.
    let log = store.audit_events(None, 100).await.unwrap();
    let row = |user: &str, action: &str, resource: &str| {
        log.iter()
            .find(|e| e.username == user && e.action == action && e.resource == resource)
            .map(|e| (e.outcome.clone(), e.detail.clone()))
            .unwrap_or_else(|| panic!("no audit row for {user} {action} {resource}"))
    };
    assert_eq!(
        row("system", "create", "Patient").0,
        "invalid",
        "the refused Patients"
    );
    assert!(log.iter().any(|e| e.resource == "Patient"
        && e.outcome == "invalid"
        && e.detail == "400: Patient.identifier[0].value"));
    assert!(log.iter().any(|e| e.resource == "Patient"
        && e.outcome == "invalid"
        && e.detail == "400: structure"));
    assert_eq!(
        row("system", "create", "Observation"),
        ("not-found".to_string(), "404: not-found".to_string())
    );
    assert_eq!(
        row("system", "delete", &format!("Patient/{patient}")).0,
        "conflict"
    );
    assert_eq!(row("manager", "create", "Observation").0, "denied");
    let bad_number = bad["identifier"][0]["value"].as_str().unwrap();
    assert!(log.iter().all(|e| !e.detail.contains(bad_number)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_family_doctor_writes_only_within_scope() {
    let s = site(1_500).await;
    let store = &*s.state.store;
    let super::fhir::DoctorView {
        doctor,
        centre,
        area,
        residents,
        contracts,
        coming,
    } = super::fhir::doctor_view(store).await;
    let outside = residents
        .iter()
        .find(|r| {
            r.street_org_id != area
                && !coming.contains(&r.id)
                && !contracts.iter().any(|c| {
                    c.resident_id == r.id
                        && (c.centre_org_id == centre.id
                            || Some(c.doctor_id) == doctor.practitioner_id)
                })
        })
        .unwrap();
    let inside = residents.iter().find(|r| r.street_org_id == area).unwrap();
    let t = person(&s, "doctor").await;
    let obs = |rid: i64| {
        json!({
            "resourceType": "Observation", "status": "final",
            "code": { "coding": [{ "system": "http://loinc.org", "code": "8480-6" }] },
            "subject": { "reference": format!("Patient/{rid}") },
            "effectiveDateTime": "2026-11-01T09:00:00+08:00",
            "valueQuantity": { "value": 152, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]" },
        })
    };
    let before = store.count(Table::Observations).await.unwrap();
    let no = send(
        &s,
        "POST",
        "/fhir/Observation",
        &t,
        Some(&obs(outside.id)),
        &[],
    )
    .await;
    assert_eq!(no.status, StatusCode::FORBIDDEN, "{}", no.json);
    assert!(store
        .audit_events(Some(outside.id), 10)
        .await
        .unwrap()
        .iter()
        .any(|e| e.action == "create" && e.outcome == "denied"));
    assert_eq!(store.count(Table::Observations).await.unwrap(), before);
    let yes = send(
        &s,
        "POST",
        "/fhir/Observation",
        &t,
        Some(&obs(inside.id)),
        &[],
    )
    .await;
    assert_eq!(yes.status, StatusCode::CREATED, "{}", yes.json);
    let id: i64 = yes.json["id"].as_str().unwrap().parse().unwrap();
    let row = store
        .get(Table::Observations, id)
        .await
        .unwrap()
        .observations
        .remove(0);
    assert_eq!(
        (row.resident_id, row.code.as_str(), row.value),
        (inside.id, "8480-6", 152.0)
    );
    assert_eq!(store.count(Table::Observations).await.unwrap(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_records_update_from_version_one() {
    let s = site(300).await;
    let store = &*s.state.store;
    let t = system(&s).await;
    let e = store
        .page(Table::Encounters, 0, 1)
        .await
        .unwrap()
        .encounters
        .remove(0);
    let path = format!("/fhir/Encounter/{}", e.id);
    let read = send(&s, "GET", &path, &t, None, &[]).await;
    assert_eq!(read.json["meta"]["versionId"], "1");
    let mut changed = read.json.clone();
    changed["period"]["start"] = json!("2026-10-01T08:30:00+08:00");
    let r = send(&s, "PUT", &path, &t, Some(&changed), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["meta"]["versionId"], "2");
    let row = store
        .get(Table::Encounters, e.id)
        .await
        .unwrap()
        .encounters
        .remove(0);
    assert_eq!(row.start.to_string(), "2026-10-01 08:30:00");
    let v1 = send(&s, "GET", &format!("{path}/_history/1"), &t, None, &[]).await;
    assert_eq!(v1.json["period"]["start"], read.json["period"]["start"]);
}

fn transaction(area: &str, seq: u16, bad_last: bool) -> Value {
    let mut obs = json!({
        "resourceType": "Observation", "status": "final",
        "code": { "coding": [{ "system": "http://loinc.org", "code": "8480-6" }] },
        "subject": { "reference": "urn:uuid:p-1" },
        "encounter": { "reference": "urn:uuid:e-1" },
        "effectiveDateTime": "2026-11-01T09:00:00+08:00",
        "valueQuantity": { "value": 148, "unit": "mmHg" },
    });
    if bad_last {
        obs["valueQuantity"]["value"] = json!("high");
    }
    json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            { "fullUrl": "urn:uuid:p-1", "resource": new_patient(area, seq), "request": { "method": "POST", "url": "Patient" } },
            { "fullUrl": "urn:uuid:e-1", "resource": {
                "resourceType": "Encounter", "status": "finished",
                "class": { "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB" },
                "subject": { "reference": "urn:uuid:p-1" },
                "serviceProvider": { "reference": format!("Organization?identifier={}|310118-CHC-XY", dhp_fhir::resources::ORG_CODE_SYSTEM) },
                "period": { "start": "2026-11-01T09:00:00+08:00" },
              }, "request": { "method": "POST", "url": "Encounter" } },
            { "fullUrl": "urn:uuid:c-1", "resource": {
                "resourceType": "Condition",
                "code": { "coding": [{ "system": "http://hl7.org/fhir/sid/icd-10", "code": "I10" }] },
                "subject": { "reference": "urn:uuid:p-1" },
                "encounter": { "reference": "urn:uuid:e-1" },
                "onsetDateTime": "2026-11-01",
              }, "request": { "method": "POST", "url": "Condition" } },
            { "fullUrl": "urn:uuid:o-1", "resource": obs, "request": { "method": "POST", "url": "Observation" } },
        ]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_are_all_or_nothing_and_batches_entry_by_entry() {
    let s = site(300).await;
    let store = &*s.state.store;
    let t = system(&s).await;
    let (_, area) = area_name(&s).await;
    let centre = store.organisation_by_code("310118-CHC-XY").await.unwrap();

    let before = content_digest(store).await.unwrap();
    let failed = send(
        &s,
        "POST",
        "/fhir",
        &t,
        Some(&transaction(&area, 5, true)),
        &[],
    )
    .await;
    assert_eq!(failed.status, StatusCode::BAD_REQUEST, "{}", failed.json);
    assert!(failed.json["issue"][0]["diagnostics"]
        .as_str()
        .unwrap()
        .contains("Bundle.entry[3]"));
    assert_eq!(content_digest(store).await.unwrap(), before);

    let ok = send(
        &s,
        "POST",
        "/fhir",
        &t,
        Some(&transaction(&area, 5, false)),
        &[],
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.json);
    assert_eq!(ok.json["type"], "transaction-response");
    let entries = ok.json["entry"].as_array().unwrap();
    assert!(entries
        .iter()
        .all(|e| e["response"]["status"] == "201 Created"));
    let patient = entries[0]["resource"]["id"].as_str().unwrap().to_string();
    let encounter = entries[1]["resource"]["id"].as_str().unwrap().to_string();
    // urn:uuid and conditional references were resolved in what was stored.
    assert_eq!(
        entries[1]["resource"]["subject"]["reference"],
        format!("Patient/{patient}")
    );
    assert_eq!(
        entries[1]["resource"]["serviceProvider"]["reference"],
        format!("Organization/{}", centre.id)
    );
    assert_eq!(
        entries[3]["resource"]["encounter"]["reference"],
        format!("Encounter/{encounter}")
    );
    let condition: i64 = entries[2]["resource"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let row = store
        .get(Table::Conditions, condition)
        .await
        .unwrap()
        .conditions
        .remove(0);
    assert_eq!((row.icd10.as_str(), row.org_id), ("I10", centre.id));

    // A batch: each entry alone; the bad one fails, the good one lands.
    let mut batch = transaction(&area, 6, true);
    batch["type"] = json!("batch");
    let entries = batch["entry"].as_array_mut().unwrap();
    entries.truncate(1);
    entries.push(json!({ "resource": { "resourceType": "Observation", "status": "final" }, "request": { "method": "POST", "url": "Observation" } }));
    let r = send(&s, "POST", "/fhir", &t, Some(&batch), &[]).await;
    assert_eq!(r.json["type"], "batch-response", "{}", r.json);
    assert_eq!(r.json["entry"][0]["response"]["status"], "201 Created");
    assert_eq!(r.json["entry"][1]["response"]["status"], "400");
    assert_eq!(
        r.json["entry"][1]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );

    let not_bundle = send(
        &s,
        "POST",
        "/fhir",
        &t,
        Some(&json!({ "resourceType": "Bundle", "type": "collection" })),
        &[],
    )
    .await;
    assert_eq!(not_bundle.json["issue"][0]["expression"][0], "Bundle.type");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_conditional_creates_make_one_patient() {
    let s = site(300).await;
    let t = system(&s).await;
    let (_, area) = area_name(&s).await;
    let before = s.state.store.count(Table::Residents).await.unwrap();
    // 50 clients create the same person at once, each only if none exists yet. The
    // identity numbers differ, so only the condition (name and birth date) can stop
    // the duplicates.
    let mut tasks = Vec::new();
    for i in 0..50u16 {
        let state = s.state.clone();
        let t = t.clone();
        let mut body = new_patient(&area, 10 + i);
        body["name"] = json!([{ "text": "欧阳并发" }]);
        tasks.push(tokio::spawn(async move {
            let req = Request::post("/fhir/Patient")
                .header(header::AUTHORIZATION, format!("Bearer {t}"))
                .header(header::CONTENT_TYPE, "application/fhir+json")
                .header("if-none-exist", "name=欧阳并发&birthdate=1961-05-17")
                .body(Body::from(body.to_string()))
                .unwrap();
            let res = app(state).oneshot(req).await.unwrap();
            let status = res.status();
            let location = res
                .headers()
                .get(header::LOCATION)
                .map(|v| v.to_str().unwrap().to_string());
            let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
                .await
                .unwrap();
            let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            (status, location, json)
        }));
    }
    let mut created = 0;
    let mut locations = std::collections::HashSet::new();
    for task in tasks {
        let (status, location, json) = task.await.unwrap();
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::OK => {}
            _ => panic!("unexpected answer {status} {json}"),
        }
        // The existing one is answered as a Patient (200), not a conflict.
        assert_eq!(json["resourceType"], "Patient", "{json}");
        let path = location.unwrap();
        locations.insert(path[..path.find("/_history").unwrap_or(path.len())].to_string());
    }
    assert_eq!(created, 1, "one create wins");
    assert_eq!(locations.len(), 1, "every answer names the same Patient");
    assert_eq!(
        s.state.store.count(Table::Residents).await.unwrap(),
        before + 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_creates_and_clashes_reveal_nothing_outside_scope() {
    let s = site(2_000).await;
    let store = &*s.state.store;
    let residents = store
        .page(Table::Residents, 0, 10_000)
        .await
        .unwrap()
        .residents;
    let resident_user = store.user_by_username("resident").await.unwrap();
    let someone_else = residents
        .iter()
        .find(|r| Some(r.id) != resident_user.resident_id)
        .unwrap();
    let (_, area) = area_name(&s).await;
    // A resident asks whether someone else is registered: refused, no location.
    let me = person(&s, "resident").await;
    let probe = send(
        &s,
        "POST",
        "/fhir/Patient",
        &me,
        Some(&new_patient(&area, 1)),
        &[(
            "if-none-exist",
            &format!("identifier={}", someone_else.identity_number.as_str()),
        )],
    )
    .await;
    assert_eq!(probe.status, StatusCode::FORBIDDEN, "{}", probe.json);
    assert!(probe.location.is_none());
    // A family doctor registers a number that belongs to a resident outside their
    // scope: a conflict that does not name the record; the attempt is audited.
    let doctor = person(&s, "doctor").await;
    let view = super::fhir::doctor_view(store).await;
    let today = dhp_store::as_of(store).await.unwrap();
    let in_scope = view.in_scope(today);
    let outsider = residents
        .iter()
        .find(|r| !in_scope.contains(&r.id))
        .expect("a resident outside the doctor's scope");
    let (_, doctor_area) = {
        let orgs = store
            .page(Table::Organisations, 0, 10_000)
            .await
            .unwrap()
            .organisations;
        let a = orgs.iter().find(|o| o.id == view.area).unwrap();
        (a.id, a.name_zh.clone())
    };
    let mut body = new_patient(&doctor_area, 2);
    body["identifier"][0]["value"] = json!(outsider.identity_number.as_str());
    body["birthDate"] = json!(outsider.birth_date.to_string());
    body["gender"] = json!(if outsider.sex == dhp_core::Sex::Male {
        "male"
    } else {
        "female"
    });
    let before = store
        .audit_events(Some(outsider.id), 100)
        .await
        .unwrap()
        .len();
    let clash = send(&s, "POST", "/fhir/Patient", &doctor, Some(&body), &[]).await;
    assert_eq!(clash.status, StatusCode::CONFLICT, "{}", clash.json);
    let text = clash.json.to_string();
    assert!(
        !text.contains(&format!("Patient/{}", outsider.id)),
        "{text}"
    );
    assert!(text.contains("outside your scope"), "{text}");
    let after = store.audit_events(Some(outsider.id), 100).await.unwrap();
    assert_eq!(
        after.len(),
        before + 1,
        "the attempt is on the resident's audit trail"
    );
    assert_eq!(after[0].outcome, "denied");
    // The same doctor's conditional create on that number finds nothing it may see,
    // so it creates — and the clash answers as above, without a location.
    let conditional = send(
        &s,
        "POST",
        "/fhir/Patient",
        &doctor,
        Some(&body),
        &[(
            "if-none-exist",
            &format!("identifier={}", outsider.identity_number.as_str()),
        )],
    )
    .await;
    assert_eq!(conditional.status, StatusCode::CONFLICT);
    assert!(conditional.location.is_none());
    assert!(!conditional
        .json
        .to_string()
        .contains(&format!("Patient/{}", outsider.id)));
}
