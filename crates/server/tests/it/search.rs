//! Searches of the record and registry types end to end. Every expected set is counted
//! here from the rows themselves, independently of the store's search SQL.

use std::collections::{BTreeSet, HashMap};

use axum::http::StatusCode;
use chrono::NaiveDate;
use dhp_store::Table;
use serde_json::{json, Value};

use super::fhir::{doctor_view, read, token, token_request, urlencoding, DoctorView};
use super::write::send;
use super::{site, Site};

mod stored;

async fn system_token(s: &Site) -> String {
    let a = token_request(
        s,
        "grant_type=client_credentials&client_id=system&client_secret=system",
    )
    .await;
    a.json["access_token"].as_str().unwrap().to_string()
}

/// The ids of a Bundle's entries of `kind` with search mode `mode`.
fn ids(bundle: &Value, kind: &str, mode: &str) -> Vec<i64> {
    bundle["entry"]
        .as_array()
        .map(|es| {
            es.iter()
                .filter(|e| e["resource"]["resourceType"] == kind && e["search"]["mode"] == mode)
                .map(|e| e["resource"]["id"].as_str().unwrap().parse().unwrap())
                .collect()
        })
        .unwrap_or_default()
}

/// Follow `next` links from `path`, collecting the matches' ids.
async fn all_pages(s: &Site, t: &str, path: &str, kind: &str) -> Vec<i64> {
    let mut out = Vec::new();
    let mut next = Some(path.to_string());
    while let Some(p) = next {
        let a = read(s, Some(t), &p).await;
        assert_eq!(a.status, StatusCode::OK, "{p}: {}", a.json);
        out.extend(ids(&a.json, kind, "match"));
        next = a.json["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| {
                let url = l["url"].as_str().unwrap();
                url[url.find("/fhir/").unwrap()..].to_string()
            });
    }
    out
}

fn sorted(v: impl IntoIterator<Item = i64>) -> Vec<i64> {
    let mut v: Vec<i64> = v.into_iter().collect();
    v.sort_unstable();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_searches_match_the_rows_with_prefixes_codes_sort_and_paging() {
    let s = site(400).await;
    let store = &*s.state.store;
    let t = system_token(&s).await;
    let all = |table| async move { store.page(table, 0, 10_000_000).await.unwrap() };
    let observations = all(Table::Observations).await.observations;
    let conditions = all(Table::Conditions).await.conditions;
    let immunizations = all(Table::Immunizations).await.immunizations;
    let encounters = all(Table::Encounters).await.encounters;

    // The resident with the most observations.
    let mut per: HashMap<i64, usize> = HashMap::new();
    for o in &observations {
        *per.entry(o.resident_id).or_default() += 1;
    }
    let (&busy, _) = per.iter().max_by_key(|(id, n)| (**n, -**id)).unwrap();
    let theirs: Vec<&dhp_core::Observation> = observations
        .iter()
        .filter(|o| o.resident_id == busy)
        .collect();
    let got = all_pages(
        &s,
        &t,
        &format!("/fhir/Observation?patient=Patient/{busy}&_count=7"),
        "Observation",
    )
    .await;
    assert_eq!(got.len(), theirs.len(), "paging loses or repeats nothing");
    assert_eq!(sorted(got), sorted(theirs.iter().map(|o| o.id)));

    // Sorted newest first.
    let a = read(
        &s,
        Some(&t),
        &format!("/fhir/Observation?subject={busy}&_sort=-date&_count=200"),
    )
    .await;
    let times: Vec<&str> = a.json["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["effectiveDateTime"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    assert_eq!(a.json["total"], theirs.len());

    // A code with its system, and a date window with prefixes.
    let code = &theirs[0].code;
    let from = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    let to = NaiveDate::from_ymd_opt(2025, 7, 1).unwrap();
    let expected = observations
        .iter()
        .filter(|o| &o.code == code && o.effective.date() >= from && o.effective.date() < to)
        .count();
    let system = if code.starts_with("DHP-") {
        dhp_fhir::resources::LOCAL_OBSERVATION_SYSTEM
    } else {
        "http://loinc.org"
    };
    let a = read(
        &s,
        Some(&t),
        &format!(
            "/fhir/Observation?code={}&date=ge2024-01-01&date=lt2025-07&_summary=count",
            urlencoding(&format!("{system}|{code}"))
        ),
    )
    .await;
    assert_eq!(a.json["total"], expected, "{}", a.json);
    assert!(
        a.json.get("entry").is_none(),
        "_summary=count lists nothing"
    );
    // `ne` a day: everything outside it.
    let day = theirs[0].effective.date();
    let outside = theirs.iter().filter(|o| o.effective.date() != day).count();
    let a = read(
        &s,
        Some(&t),
        &format!("/fhir/Observation?patient={busy}&date=ne{day}&_summary=count"),
    )
    .await;
    assert_eq!(a.json["total"], outside);

    // Conditions by ICD-10 code and onset year; immunizations by vaccine; encounters by
    // where they took place.
    let icd = &conditions[0].icd10;
    let expected = conditions
        .iter()
        .filter(|c| &c.icd10 == icd && c.onset >= NaiveDate::from_ymd_opt(2020, 1, 1).unwrap())
        .count();
    let a = read(
        &s,
        Some(&t),
        &format!(
            "/fhir/Condition?code=http://hl7.org/fhir/sid/icd-10|{icd}&onset-date=ge2020&_summary=count"
        ),
    )
    .await;
    assert_eq!(a.json["total"], expected, "{}", a.json);
    let vaccine = &immunizations[0].vaccine;
    let expected = immunizations
        .iter()
        .filter(|i| &i.vaccine == vaccine)
        .count();
    let a = read(
        &s,
        Some(&t),
        &format!("/fhir/Immunization?vaccine-code={vaccine}&status=completed&_summary=count"),
    )
    .await;
    assert_eq!(a.json["total"], expected);
    let org = encounters[0].org_id;
    let expected = encounters
        .iter()
        .filter(|e| e.org_id == org && e.start.format("%Y").to_string() == "2025")
        .count();
    let a = read(
        &s,
        Some(&t),
        &format!("/fhir/Encounter?service-provider=Organization/{org}&date=2025&_summary=count"),
    )
    .await;
    assert_eq!(a.json["total"], expected);
    // A status no generated encounter has.
    let a = read(
        &s,
        Some(&t),
        "/fhir/Encounter?status=planned&_summary=count",
    )
    .await;
    assert_eq!(a.json["total"], 0);

    // Bad input names the parameter; nothing is silently ignored.
    for (path, at) in [
        ("/fhir/Observation?colour=red", "Observation?colour"),
        ("/fhir/Observation?date=sa2020", "Observation?date"),
        ("/fhir/Observation?date=2020-13", "Observation?date"),
        (
            "/fhir/Condition?code=http://snomed.info/sct|38341003",
            "Condition?code",
        ),
        (
            "/fhir/Observation?patient=Encounter/1",
            "Observation?patient",
        ),
        ("/fhir/Observation?_sort=colour", "Observation?_sort"),
        (
            "/fhir/Observation?_include=Observation:colour",
            "Observation?_include",
        ),
        (
            "/fhir/Observation?_include=Encounter:patient",
            "Observation?_include",
        ),
    ] {
        let a = read(&s, Some(&t), path).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{path}: {}", a.json);
        assert_eq!(a.json["issue"][0]["expression"][0], at, "{path}");
    }
    let lenient = super::fhir::call(
        &s,
        axum::http::Request::get("/fhir/Observation?colour=red&_summary=count")
            .header("authorization", format!("Bearer {t}"))
            .header("prefer", "handling=lenient")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(lenient.status, StatusCode::OK);
    assert_eq!(lenient.json["total"], observations.len());
    let a = read(&s, Some(&t), "/fhir/Medication?code=1").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_searches_and_includes() {
    let s = site(300).await;
    let store = &*s.state.store;
    let t = token(&s, "doctor").await;
    let orgs = dhp_store::organisations(store).await.unwrap();
    let centres: Vec<&dhp_core::Organisation> = orgs
        .iter()
        .filter(|o| o.kind == dhp_core::OrgKind::CommunityHealthCentre)
        .collect();
    let a = read(
        &s,
        Some(&t),
        &format!(
            "/fhir/Organization?name:contains={}&_count=200",
            urlencoding("社区卫生服务中心")
        ),
    )
    .await;
    assert_eq!(
        sorted(ids(&a.json, "Organization", "match")),
        sorted(
            orgs.iter()
                .filter(|o| o.name_zh.contains("社区卫生服务中心"))
                .map(|o| o.id)
        )
    );
    let c = centres[0];
    let a = read(
        &s,
        Some(&t),
        &format!(
            "/fhir/Organization?identifier={}",
            urlencoding(&format!(
                "{}|{}",
                dhp_fhir::resources::ORG_CODE_SYSTEM,
                c.code
            ))
        ),
    )
    .await;
    assert_eq!(ids(&a.json, "Organization", "match"), [c.id]);
    let parent = c.parent_id.unwrap();
    let a = read(
        &s,
        Some(&t),
        &format!("/fhir/Organization?partof=Organization/{parent}&_include=Organization:partof"),
    )
    .await;
    assert_eq!(
        sorted(ids(&a.json, "Organization", "match")),
        sorted(
            orgs.iter()
                .filter(|o| o.parent_id == Some(parent))
                .map(|o| o.id)
        )
    );
    assert_eq!(ids(&a.json, "Organization", "include"), [parent]);

    let staff = store
        .page(Table::Practitioners, 0, 100_000)
        .await
        .unwrap()
        .practitioners;
    let at_centre: Vec<i64> = staff
        .iter()
        .filter(|p| p.org_id == c.id)
        .map(|p| p.id)
        .collect();
    let a = read(
        &s,
        Some(&t),
        &format!("/fhir/PractitionerRole?organization={}&_include=PractitionerRole:practitioner&_count=200", c.id),
    )
    .await;
    assert_eq!(
        sorted(ids(&a.json, "PractitionerRole", "match")),
        sorted(at_centre.clone())
    );
    assert_eq!(
        sorted(ids(&a.json, "Practitioner", "include")),
        sorted(at_centre)
    );
    let role = &a.json["entry"][0]["resource"];
    assert_eq!(
        role["organization"]["reference"],
        format!("Organization/{}", c.id)
    );
    // The same post reads on its own.
    let one = read(
        &s,
        Some(&t),
        &format!("/fhir/PractitionerRole/{}", role["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.json["resourceType"], "PractitionerRole");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn includes_stay_in_scope_and_are_audited() {
    let s = site(1_500).await;
    let store = &*s.state.store;
    let today = dhp_core::clock::today();
    let in_scope: BTreeSet<i64> = doctor_view(store)
        .await
        .in_scope(today)
        .into_iter()
        .collect();
    let observations = store
        .page(Table::Observations, 0, 10_000_000)
        .await
        .unwrap()
        .observations;
    let t = token(&s, "doctor").await;
    // Every observation the doctor may see, and none other.
    let expected = observations
        .iter()
        .filter(|o| in_scope.contains(&o.resident_id))
        .count();
    let a = read(&s, Some(&t), "/fhir/Observation?_summary=count").await;
    assert_eq!(a.json["total"], expected);
    let outsider = observations
        .iter()
        .find(|o| !in_scope.contains(&o.resident_id))
        .unwrap();
    let a = read(
        &s,
        Some(&t),
        &format!("/fhir/Observation?patient={}", outsider.resident_id),
    )
    .await;
    assert_eq!(a.json["total"], 0, "out of scope is not there");

    // A patient with their observations, and observations with their patient and
    // encounter.
    let mine = observations
        .iter()
        .find(|o| in_scope.contains(&o.resident_id) && o.encounter_id.is_some())
        .unwrap();
    let before = store
        .audit_events(Some(mine.resident_id), 100_000)
        .await
        .unwrap()
        .len();
    let a = read(
        &s,
        Some(&t),
        &format!(
            "/fhir/Patient?_id={}&_revinclude=Observation:patient&_revinclude=CareTeam:patient",
            mine.resident_id
        ),
    )
    .await;
    assert_eq!(ids(&a.json, "Patient", "match"), [mine.resident_id]);
    let theirs: Vec<i64> = observations
        .iter()
        .filter(|o| o.resident_id == mine.resident_id)
        .map(|o| o.id)
        .collect();
    assert_eq!(
        sorted(ids(&a.json, "Observation", "include")),
        sorted(theirs.clone())
    );
    let after = store
        .audit_events(Some(mine.resident_id), 100_000)
        .await
        .unwrap()
        .len();
    let entries = a.json["entry"].as_array().unwrap().len();
    assert_eq!(
        after - before,
        entries,
        "one audit row per disclosed resource"
    );

    let a = read(
        &s,
        Some(&t),
        &format!(
            "/fhir/Observation?_id={}&_include=Observation:patient&_include=Observation:encounter",
            mine.id
        ),
    )
    .await;
    assert_eq!(ids(&a.json, "Patient", "include"), [mine.resident_id]);
    assert_eq!(
        ids(&a.json, "Encounter", "include"),
        [mine.encounter_id.unwrap()]
    );
    // The included Patient is masked for a role that does not need the number.
    let m = token(&s, "manager").await;
    let a = read(
        &s,
        Some(&m),
        &format!(
            "/fhir/Observation?_id={}&_include=Observation:patient",
            mine.id
        ),
    )
    .await;
    let p = a.json["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["resource"]["resourceType"] == "Patient")
        .unwrap();
    assert!(p["resource"]["identifier"][0]["value"]
        .as_str()
        .unwrap()
        .contains('*'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn written_status_and_last_updated_are_searchable() {
    let s = site(300).await;
    let store = &*s.state.store;
    let t = system_token(&s).await;
    let o = store
        .page(Table::Observations, 0, 1)
        .await
        .unwrap()
        .observations[0]
        .clone();
    let total_final = read(
        &s,
        Some(&t),
        "/fhir/Observation?status=final&_summary=count",
    )
    .await
    .json["total"]
        .as_i64()
        .unwrap();
    let mut body = read(&s, Some(&t), &format!("/fhir/Observation/{}", o.id))
        .await
        .json;
    body["status"] = json!("amended");
    body["valueQuantity"]["value"] = json!(o.value + 1.0);
    let r = send(
        &s,
        "PUT",
        &format!("/fhir/Observation/{}", o.id),
        &t,
        Some(&body),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let amended = read(&s, Some(&t), "/fhir/Observation?status=amended").await;
    assert_eq!(ids(&amended.json, "Observation", "match"), [o.id]);
    let now_final = read(
        &s,
        Some(&t),
        "/fhir/Observation?status=final&_summary=count",
    )
    .await
    .json["total"]
        .as_i64()
        .unwrap();
    assert_eq!(now_final, total_final - 1);
    // Only the written one changed since the district was generated.
    let today = dhp_core::clock::today();
    let a = read(
        &s,
        Some(&t),
        &format!("/fhir/Observation?_lastUpdated=ge{today}"),
    )
    .await;
    assert_eq!(ids(&a.json, "Observation", "match"), [o.id]);
    let a = read(
        &s,
        Some(&t),
        &format!(
            "/fhir/Observation?patient={}&_sort=-_lastUpdated",
            o.resident_id
        ),
    )
    .await;
    assert_eq!(
        ids(&a.json, "Observation", "match")[0],
        o.id,
        "newest write first"
    );
    // Patients too.
    let p = read(
        &s,
        Some(&t),
        &format!("/fhir/Patient?_lastUpdated=lt{today}&_summary=count"),
    )
    .await;
    assert_eq!(p.json["total"], 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_of_a_patient_in_scope_and_nothing_outside() {
    let s = site(1_500).await;
    let store = &*s.state.store;
    let DoctorView {
        area, residents, ..
    } = doctor_view(store).await;
    let batch = |table| async move { store.page(table, 0, 10_000_000).await.unwrap() };
    let encounters = batch(Table::Encounters).await.encounters;
    let observations = batch(Table::Observations).await.observations;
    let conditions = batch(Table::Conditions).await.conditions;
    let immunizations = batch(Table::Immunizations).await.immunizations;
    let contracts = batch(Table::Contracts).await.contracts;
    let mine = residents
        .iter()
        .filter(|r| r.street_org_id == area)
        .max_by_key(|r| encounters.iter().filter(|e| e.resident_id == r.id).count())
        .unwrap();
    let t = token(&s, "doctor").await;
    let a = read(
        &s,
        Some(&t),
        &format!("/fhir/Patient/{}/$everything", mine.id),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    let count = |kind| ids(&a.json, kind, "match").len();
    assert_eq!(ids(&a.json, "Patient", "match"), [mine.id]);
    assert_eq!(
        count("Encounter"),
        encounters
            .iter()
            .filter(|e| e.resident_id == mine.id)
            .count()
    );
    assert_eq!(
        count("Observation"),
        observations
            .iter()
            .filter(|e| e.resident_id == mine.id)
            .count()
    );
    assert_eq!(
        count("Condition"),
        conditions
            .iter()
            .filter(|e| e.resident_id == mine.id)
            .count()
    );
    assert_eq!(
        count("Immunization"),
        immunizations
            .iter()
            .filter(|e| e.resident_id == mine.id)
            .count()
    );
    assert_eq!(
        count("CareTeam"),
        contracts
            .iter()
            .filter(|e| e.resident_id == mine.id)
            .count()
    );
    // Every organisation an encounter names comes along.
    let places: BTreeSet<i64> = encounters
        .iter()
        .filter(|e| e.resident_id == mine.id)
        .map(|e| e.org_id)
        .collect();
    let orgs: BTreeSet<i64> = ids(&a.json, "Organization", "match").into_iter().collect();
    assert!(places.is_subset(&orgs));
    assert_eq!(a.json["total"], a.json["entry"].as_array().unwrap().len());
    // _type narrows it.
    let a = read(
        &s,
        Some(&t),
        &format!(
            "/fhir/Patient/{}/$everything?_type=Patient,Condition",
            mine.id
        ),
    )
    .await;
    assert!(ids(&a.json, "Observation", "match").is_empty());
    // Outside the doctor's scope: refused and audited.
    let outsider = residents
        .iter()
        .find(|r| r.street_org_id != area && !contracts.iter().any(|c| c.resident_id == r.id))
        .unwrap();
    let a = read(
        &s,
        Some(&t),
        &format!("/fhir/Patient/{}/$everything", outsider.id),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let trail = store.audit_events(Some(outsider.id), 10).await.unwrap();
    assert!(trail
        .iter()
        .any(|e| e.outcome == "denied" && e.action == "everything"));
    let a = read(&s, Some(&t), "/fhir/Patient/999999999/$everything").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = read(
        &s,
        Some(&t),
        &format!("/fhir/Patient/{}/$everything?_type=Schedule", mine.id),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        a.json["issue"][0]["expression"][0],
        "Patient/$everything?_type"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_export_is_for_systems_asynchronous_and_cancellable() {
    let s = site(200).await;
    let doctor = token(&s, "doctor").await;
    let a = super::fhir::call(
        &s,
        axum::http::Request::get("/fhir/$export")
            .header("authorization", format!("Bearer {doctor}"))
            .header("prefer", "respond-async")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let t = system_token(&s).await;
    let kick = |path: &str, prefer: bool| {
        let mut r = axum::http::Request::get(path).header("authorization", format!("Bearer {t}"));
        if prefer {
            r = r.header("prefer", "respond-async");
        }
        r.body(axum::body::Body::empty()).unwrap()
    };
    for (path, prefer, at) in [
        ("/fhir/$export", false, "Prefer"),
        ("/fhir/$export?_type=Medication", true, "$export?_type"),
        (
            "/fhir/Patient/$export?_type=Organization",
            true,
            "Patient/$export?_type",
        ),
        ("/fhir/$export?_since=yesterday", true, "$export?_since"),
        (
            "/fhir/$export?_outputFormat=text/csv",
            true,
            "$export?_outputFormat",
        ),
        ("/fhir/$export?_elements=id", true, "$export?_elements"),
    ] {
        let a = super::fhir::call(&s, kick(path, prefer)).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(a.json["issue"][0]["expression"][0], at, "{path}");
    }
    // A whole export: the registry comes too; nothing written since now is empty.
    let res = dhp_server::app(s.state.clone())
        .oneshot_request(kick("/fhir/$export?_type=Organization,Patient", true))
        .await;
    assert_eq!(res.0, StatusCode::ACCEPTED);
    let status = res.1.unwrap();
    let manifest = await_manifest(&s, &t, &status).await;
    let counts: HashMap<String, u64> = manifest["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["type"].as_str().unwrap().to_string(),
                o["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counts["Patient"], 200);
    let orgs = dhp_store::organisations(&*s.state.store).await.unwrap();
    assert_eq!(counts["Organization"], orgs.len() as u64);
    // Another client's token cannot read it; deleting removes it.
    let a = read(&s, Some(&doctor), &status).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let del = send(&s, "DELETE", &status, &t, None, &[]).await;
    assert_eq!(del.status, StatusCode::ACCEPTED);
    assert_eq!(
        read(&s, Some(&t), &status).await.status,
        StatusCode::NOT_FOUND
    );
    let since = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let res = dhp_server::app(s.state.clone())
        .oneshot_request(kick(&format!("/fhir/Patient/$export?_since={since}"), true))
        .await;
    let status = res.1.unwrap();
    let manifest = await_manifest(&s, &t, &status).await;
    assert_eq!(manifest["output"], json!([]), "nothing changed since");
}

/// Poll an export's status URL until its manifest is ready.
async fn await_manifest(s: &Site, t: &str, status: &str) -> Value {
    loop {
        let a = read(s, Some(t), status).await;
        if a.status == StatusCode::OK {
            return a.json;
        }
        assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.json);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Send a request, returning the status and the `Content-Location` path.
trait OneShot {
    async fn oneshot_request(
        self,
        req: axum::http::Request<axum::body::Body>,
    ) -> (StatusCode, Option<String>);
}

impl OneShot for axum::Router {
    async fn oneshot_request(
        self,
        req: axum::http::Request<axum::body::Body>,
    ) -> (StatusCode, Option<String>) {
        use tower::ServiceExt;
        let res = self.oneshot(req).await.unwrap();
        let location = res.headers().get("content-location").map(|v| {
            let u = v.to_str().unwrap();
            u[u.find("/fhir/").unwrap()..].to_string()
        });
        (res.status(), location)
    }
}
