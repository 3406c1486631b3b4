//! Contracting end to end: sign, renew, change and end through the API and the
//! resident page; one contract in force; refusals name their field and write nothing;
//! the figures per unit add up to the district's and match the home page's.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use dhp_core::OrgKind;
use dhp_store::Table;
use serde_json::{json, Value};

use super::fhir::{read, token};
use super::{site, Site};

async fn post_json(s: &Site, tok: &str, body: &Value) -> (StatusCode, Value) {
    let req = Request::post("/api/contracts")
        .header(header::AUTHORIZATION, format!("Bearer {tok}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let a = super::fhir::call(s, req).await;
    (a.status, a.json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_renew_change_and_end_keep_one_contract_in_force() {
    let s = site(2_000).await;
    let doctor = token(&s, "doctor").await;
    let user = s.state.store.user_by_username("doctor").await.unwrap();
    let orgs = s
        .state
        .store
        .page(Table::Organisations, 0, 1_000)
        .await
        .unwrap()
        .organisations;
    let parent_kind = |o: &dhp_core::Organisation| {
        o.parent_id
            .and_then(|p| orgs.iter().find(|x| x.id == p))
            .map(|p| p.kind)
    };
    let district_h: Vec<_> = orgs
        .iter()
        .filter(|o| o.kind == OrgKind::Hospital && parent_kind(o) == Some(OrgKind::District))
        .collect();
    let city_h = orgs
        .iter()
        .find(|o| o.kind == OrgKind::Hospital && parent_kind(o) == Some(OrgKind::City))
        .unwrap();
    // An unsigned resident of the doctor's area.
    let centre = orgs.iter().find(|o| Some(o.id) == user.org_id).unwrap();
    let residents = s
        .state
        .store
        .page(Table::Residents, 0, 5_000)
        .await
        .unwrap()
        .residents;
    let on: chrono::NaiveDate = "2026-06-30".parse().unwrap();
    let mut resident = None;
    for r in residents
        .iter()
        .filter(|r| Some(r.street_org_id) == centre.parent_id)
    {
        let rec = s
            .state
            .store
            .programme_records(
                &dhp_store::Cohort::Resident(r.id),
                dhp_store::Reading::Full,
                on,
                r.id - 1,
                1,
            )
            .await
            .unwrap()
            .pop()
            .unwrap();
        if rec.contracts.is_empty() {
            resident = Some(r.id);
            break;
        }
    }
    let resident = resident.expect("a never-signed resident in the centre's area");
    let before = s.state.store.count(Table::Contracts).await.unwrap();

    // Refusals name the field and write nothing.
    for (body, field) in [
        (
            json!({"resident_id": resident, "action": "sign", "district_hospital": city_h.code, "city_hospital": city_h.code}),
            "district_hospital",
        ),
        (
            json!({"resident_id": resident, "action": "sign", "district_hospital": district_h[0].code, "city_hospital": district_h[0].code}),
            "city_hospital",
        ),
        (
            json!({"resident_id": resident, "action": "sign", "district_hospital": "NOPE", "city_hospital": city_h.code}),
            "district_hospital",
        ),
        (
            json!({"resident_id": resident, "action": "elope"}),
            "action",
        ),
        (
            json!({"resident_id": resident, "action": "renew"}),
            "contract",
        ),
        (
            json!({"resident_id": resident, "action": "end"}),
            "contract",
        ),
        (json!({"action": "end"}), "resident_id"),
    ] {
        let (status, answer) = post_json(&s, &doctor, &body).await;
        assert!(status.is_client_error(), "{body}: {status}");
        assert_eq!(answer["field"], field, "{body}: {answer}");
    }
    assert_eq!(s.state.store.count(Table::Contracts).await.unwrap(), before);

    let sign = json!({"resident_id": resident, "action": "sign", "district_hospital": district_h[0].code, "city_hospital": city_h.code});
    let (status, answer) = post_json(&s, &doctor, &sign).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let c = &answer["contracts"][0];
    assert_eq!(
        (
            c["start_date"].as_str().or(c["start"].as_str()),
            c["doctor_id"].as_i64()
        ),
        (Some("2026-06-30"), user.practitioner_id)
    );
    // A second signing is refused: one contract in force.
    let (status, answer) = post_json(&s, &doctor, &sign).await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (StatusCode::CONFLICT, Some("resident"))
    );
    // Renew, change, end.
    let (status, answer) = post_json(
        &s,
        &doctor,
        &json!({"resident_id": resident, "action": "renew"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["contracts"][0]["start"], "2027-06-30");
    let change = json!({"resident_id": resident, "action": "change", "district_hospital": district_h[1].code, "city_hospital": city_h.code});
    let (status, answer) = post_json(&s, &doctor, &change).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["contracts"].as_array().unwrap().len(),
        3,
        "the contract, its renewal, the new one"
    );
    let (status, _) = post_json(
        &s,
        &doctor,
        &json!({"resident_id": resident, "action": "end"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let rec = s
        .state
        .store
        .programme_records(
            &dhp_store::Cohort::Resident(resident),
            dhp_store::Reading::Full,
            on,
            resident - 1,
            1,
        )
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert!(rec.contract_on(on).is_none());
    assert_eq!(
        rec.contracts.len(),
        3,
        "signed, renewed, changed (the first two ended)"
    );
    assert!(rec
        .contracts
        .iter()
        .all(|c| c.status == dhp_core::ContractStatus::Ended));
    // Every change is in the audit log.
    let audit = s
        .state
        .store
        .audit_events(Some(resident), 50)
        .await
        .unwrap();
    assert!(
        audit
            .iter()
            .filter(|e| e.resource.starts_with("CareTeam/"))
            .count()
            >= 6,
        "{audit:?}"
    );
    // A resident outside the doctor's scope is refused.
    let other = residents
        .iter()
        .find(|r| Some(r.street_org_id) != centre.parent_id)
        .unwrap();
    let (status, _) = post_json(
        &s,
        &doctor,
        &json!({"resident_id": other.id, "action": "end"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contracting_figures_add_up_and_match_the_district() {
    let s = site(3_000).await;
    let manager = token(&s, "manager").await;
    let a = read(&s, Some(&manager), "/api/contracts/rates?date=2025-12-31").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    let units = a.json["units"].as_array().unwrap();
    let district = &units[0];
    assert_eq!(district["kind"], "district");
    let sum = |kind: &[&str], field: &str| -> u64 {
        units
            .iter()
            .filter(|u| kind.contains(&u["kind"].as_str().unwrap()))
            .map(|u| u[field].as_u64().unwrap())
            .sum()
    };
    for field in [
        "key_population",
        "key_population_signed",
        "signed_visits",
        "in_combination",
        "community",
    ] {
        assert_eq!(
            sum(&["street", "town"], field),
            district[field].as_u64().unwrap(),
            "streets add up: {field}"
        );
    }
    // Signed residents count for their centre; unsigned ones only where a street has
    // one centre (a centre sharing its street shows no key-population rate).
    for field in [
        "key_population_signed",
        "signed_visits",
        "in_combination",
        "community",
    ] {
        assert_eq!(
            sum(&["community_health_centre"], field),
            district[field].as_u64().unwrap(),
            "centres add up: {field}"
        );
    }
    assert!(
        sum(&["community_health_centre"], "key_population")
            < district["key_population"].as_u64().unwrap()
    );
    let shared: Vec<_> = units
        .iter()
        .filter(|u| {
            u["kind"] == "community_health_centre" && u["key_population_signing_rate"].is_null()
        })
        .collect();
    assert_eq!(
        shared.len(),
        2,
        "the one street with two centres: {shared:?}"
    );
    // The indicator engine's 2025 figures (signed on the year's last day rather than on
    // the visit day; key populations without disability) agree closely.
    let year = dhp_core::indicators::Period::Year(2025);
    let counts = dhp_analytics::indicators::compute(&*s.state.store, &[year], &mut |_| {})
        .await
        .unwrap()
        .counts;
    let district_id = dhp_store::organisations(&*s.state.store)
        .await
        .unwrap()
        .into_iter()
        .find(|o| o.kind == dhp_core::OrgKind::District)
        .unwrap()
        .id;
    let rows = dhp_analytics::indicators::scorecard(&counts, district_id, year);
    let engine = |id: &str| {
        rows.iter()
            .find(|r| r.indicator.id == id)
            .and_then(|r| r.value)
            .unwrap()
    };
    let close = |ours: f64, theirs: f64, what: &str| {
        assert!((ours - theirs).abs() < 3.0, "{what}: {ours} vs {theirs}")
    };
    close(
        district["in_combination_visit_rate"].as_f64().unwrap(),
        engine("combination_visit_rate"),
        "in-combination",
    );
    close(
        district["community_visit_rate"].as_f64().unwrap(),
        engine("community_visit_rate"),
        "community",
    );
    close(
        district["key_population_signing_rate"].as_f64().unwrap(),
        engine("key_population_signing"),
        "key signing",
    );
    let bad = read(&s, Some(&manager), "/api/contracts/rates?date=2025-02-30").await;
    assert_eq!(
        (bad.status, bad.json["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("date"))
    );
    let nobody = read(&s, None, "/api/contracts/rates").await;
    assert_eq!(nobody.status, StatusCode::UNAUTHORIZED);
}
