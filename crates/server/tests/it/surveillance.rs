//! Surveillance end to end: case reports and sentinel counts through the API (bad
//! input names its field and writes nothing), a fixed-threshold case signals at once,
//! verification moves forward only, the daily run raises the injected outbreaks, and
//! the CDC pages render.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use chrono::{Days, NaiveDate};
use serde_json::{json, Value};

use super::fhir::{call, token};
use super::{get, login, site, Site};

async fn post(s: &Site, path: &str, tok: &str, body: &Value) -> (StatusCode, Value) {
    let req = Request::post(path)
        .header(header::AUTHORIZATION, format!("Bearer {tok}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let a = call(s, req).await;
    (a.status, a.json)
}

async fn bearer_get(s: &Site, path: &str, tok: &str) -> (StatusCode, Value) {
    let req = Request::get(path)
        .header(header::AUTHORIZATION, format!("Bearer {tok}"))
        .body(Body::empty())
        .unwrap();
    let a = call(s, req).await;
    (a.status, a.json)
}

async fn report_count(s: &Site) -> usize {
    let from = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
    let to = NaiveDate::from_ymd_opt(2100, 1, 1).unwrap();
    s.state
        .store
        .case_reports(from, to, 10_000_000)
        .await
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_reports_signals_and_verification() {
    let s = site(2_000).await;
    let clinician = token(&s, "clinician").await;
    let street = "310118001";
    let good = json!({
        "disease": "hfmd",
        "street": street,
        "status": "clinical",
        "onset_date": "2026-06-28",
        "diagnosed_at": "2026-06-29T09:00",
        "reported_at": "2026-06-29T12:00",
    });
    let before = report_count(&s).await;
    // Each bad field is named, and nothing is written.
    let cases: Vec<(&str, Value)> = vec![
        ("disease", json!(null)),
        ("disease", json!("flu-x")),
        ("status", json!("probable")),
        ("onset_date", json!("2026-06-30")),
        ("street", json!("310118999")),
        ("reported_at", json!("2026-06-29T08:00")),
        ("diagnosed_at", json!("yesterday")),
    ];
    for (field, value) in cases {
        let mut body = good.clone();
        body[field] = value;
        let (status, answer) = post(&s, "/api/surveillance/cases", &clinician, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {answer}");
        assert_eq!(answer["field"], field, "{answer}");
    }
    assert_eq!(report_count(&s).await, before);
    let (status, _) = post(&s, "/api/surveillance/cases", "not-a-token", &good).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, answer) = post(&s, "/api/surveillance/cases", &clinician, &good).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["timeliness"]["on_time"], true);
    assert_eq!(answer["timeliness"]["limit_hours"], 24);
    assert!(answer["signal"].is_null());
    assert_eq!(report_count(&s).await, before + 1);
    let stored = s
        .state
        .store
        .case_report(answer["id"].as_i64().unwrap())
        .await
        .unwrap();
    assert_eq!(stored.street, street);
    // The sender's organisation is the reporting organisation.
    let user = s.state.store.user_by_username("clinician").await.unwrap();
    let org = s
        .state
        .store
        .organisation(user.org_id.unwrap())
        .await
        .unwrap();
    assert_eq!(stored.reporting_org, org.code);

    // Cholera: class A, 2-hour limit; one case signals at once.
    let mut cholera = good.clone();
    cholera["disease"] = json!("A00");
    cholera["status"] = json!("suspected");
    let (status, answer) = post(&s, "/api/surveillance/cases", &clinician, &cholera).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["class"], "a");
    assert_eq!(answer["timeliness"]["on_time"], false);
    let id = answer["signal"].as_i64().expect("a fixed-threshold signal");
    let signal = s.state.store.signal(id).await.unwrap();
    assert_eq!(
        (signal.disease.as_str(), signal.area.as_str()),
        ("cholera", street)
    );

    // Verification: CDC only, forward only, a note to close.
    let path = format!("/api/surveillance/signals/{id}");
    let doctor = token(&s, "doctor").await;
    let (status, _) = post(&s, &path, &doctor, &json!({"status": "verifying"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let cdc = token(&s, "phdoctor").await;
    let (status, answer) = post(&s, &path, &cdc, &json!({"status": "confirmed"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["field"], "status");
    let (status, answer) = post(
        &s,
        &path,
        &cdc,
        &json!({"status": "verifying", "note": "calling the hospital"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "verifying");
    let (status, answer) = post(&s, &path, &cdc, &json!({"status": "excluded", "note": " "})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["field"], "note");
    let (status, answer) = post(
        &s,
        &path,
        &cdc,
        &json!({"status": "excluded", "note": "culture negative"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let history = s.state.store.signal_events(id).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].note, "culture negative");
    assert!(s
        .state
        .store
        .signal(id)
        .await
        .unwrap()
        .response_hours()
        .is_some());

    let manager = token(&s, "manager").await;
    let (status, list) =
        bearer_get(&s, "/api/surveillance/signals?since=2026-06-01", &manager).await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.as_array().unwrap().iter().any(|v| v["id"] == id));
    let (status, _) = bearer_get(&s, "/api/surveillance/signals", &doctor).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The refused read is on the audit log.
    let refused = s.state.store.audit_events(None, 1).await.unwrap().remove(0);
    assert_eq!(
        (refused.username.as_str(), refused.outcome.as_str()),
        ("doctor", "denied")
    );
    let (status, answer) = bearer_get(&s, "/api/surveillance/signals?since=June", &manager).await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("since"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_zero_reports_and_refusals() {
    let s = site(500).await;
    let system = token(&s, "clinician").await;
    let user = s.state.store.user_by_username("clinician").await.unwrap();
    let site_code = s
        .state
        .store
        .organisation(user.org_id.unwrap())
        .await
        .unwrap()
        .code;
    let day = NaiveDate::from_ymd_opt(2026, 7, 1).unwrap();
    let zero = json!({"site": site_code, "date": "2026-07-01",
        "counts": {"fever": 0, "respiratory": 0, "diarrhoea": 0, "rash": 0}});
    let refusals = [
        (
            "counts.rash",
            json!({"site": site_code, "date": "2026-07-01", "counts": {"fever": 0, "respiratory": 0, "diarrhoea": 0}}),
        ),
        (
            "counts.fever",
            json!({"site": site_code, "date": "2026-07-01", "counts": {"fever": -1, "respiratory": 0, "diarrhoea": 0, "rash": 0}}),
        ),
        (
            "counts.cough",
            json!({"site": site_code, "date": "2026-07-01", "counts": {"fever": 0, "respiratory": 0, "diarrhoea": 0, "rash": 0, "cough": 2}}),
        ),
        (
            "site",
            json!({"site": "NOPE", "date": "2026-07-01", "counts": {}}),
        ),
        (
            "date",
            json!({"site": site_code, "date": "01/07/2026", "counts": {}}),
        ),
    ];
    for (field, body) in refusals {
        let (status, answer) = post(&s, "/api/surveillance/sentinel", &system, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {answer}");
        assert_eq!(answer["field"], field);
    }
    assert!(s
        .state
        .store
        .sentinel_reports(day, day)
        .await
        .unwrap()
        .is_empty());
    let (status, answer) = post(&s, "/api/surveillance/sentinel", &system, &zero).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let rows = s.state.store.sentinel_reports(day, day).await.unwrap();
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r.count == 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_run_raises_the_injected_outbreaks_and_the_pages_show_them() {
    let s = site(1_000).await;
    let store = &*s.state.store;
    let end: NaiveDate = store
        .meta("end_date")
        .await
        .unwrap()
        .unwrap()
        .parse()
        .unwrap();
    let from = end - Days::new(45);
    let now = end.and_hms_opt(23, 0, 0).unwrap();
    let first = dhp_analytics::surveillance::run(store, from, end, now)
        .await
        .unwrap();
    assert!(first.new_signals > 0);
    // The last site has been silent for two days: a missing-report finding.
    assert!(
        first.missing.iter().any(|m| m.days == 2),
        "{:?}",
        first.missing
    );
    let signals = store.signals(from).await.unwrap();
    let recent: Vec<_> = store
        .outbreaks()
        .await
        .unwrap()
        .into_iter()
        .filter(|o| o.start_day >= from)
        .collect();
    assert!(!recent.is_empty());
    for o in &recent {
        let found = signals.iter().any(|sg| {
            sg.disease == o.disease
                && (sg.area == o.street || sg.area == "310118")
                && sg.last_day >= o.start_day
                && sg.first_day <= o.start_day + Days::new(o.days as u64 + 7)
        });
        assert!(found, "outbreak {o:?} raised no signal");
    }
    // Running the same days again raises nothing new.
    let again = dhp_analytics::surveillance::run(store, from, end, now)
        .await
        .unwrap();
    assert_eq!(again.new_signals, 0);
    assert_eq!(store.signals(from).await.unwrap().len(), signals.len());

    let (_, cookie, _) = login(&s, "phdoctor", "phdoctor").await;
    let cookie = cookie.unwrap();
    let (status, page) = get(&s, "/surveillance", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    for text in [
        "传染病监测预警",
        "街镇预警态势",
        "<svg",
        "哨点缺报",
        "预警阈值",
    ] {
        assert!(page.contains(text), "CDC page lacks {text}");
    }
    let id = signals[0].id;
    let (status, page) = get(
        &s,
        &format!("/surveillance/signal/{id}?lang=en"),
        Some(&cookie),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Start verifying") && page.contains("<svg"),
        "{page}"
    );
    let (status, page) = get(&s, "/surveillance/disease/hfmd?lang=en", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Hand, foot and mouth disease"));
    // Family doctors do not see the CDC view.
    let (_, doctor, _) = login(&s, "doctor", "doctor").await;
    let (status, _) = get(&s, "/surveillance", doctor.as_deref()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_condition_with_a_notifiable_code_becomes_a_case_report_through_fhir() {
    let s = site(500).await;
    let clinician = token(&s, "clinician").await;
    let resident = s
        .state
        .store
        .page(dhp_store::Table::Residents, 0, 1)
        .await
        .unwrap()
        .residents[0]
        .clone();
    let household = s
        .state
        .store
        .household(resident.household_id)
        .await
        .unwrap();
    let street = s
        .state
        .store
        .organisation(household.street_org_id)
        .await
        .unwrap()
        .code;
    let condition = json!({
        "resourceType": "Condition",
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "B08.4"}]},
        "subject": {"reference": format!("Patient/{}", resident.id)},
        "verificationStatus": {"coding": [{"code": "differential"}]},
        "onsetDateTime": "2026-06-27",
        "recordedDate": "2026-06-28T10:30:00+08:00",
    });
    let before = report_count(&s).await;
    // Each missing or wrong element is named by its FHIR path; nothing is written.
    for (path, change) in [
        (
            "Condition.code",
            json!({"code": {"coding": [{"code": "J45"}]}}),
        ),
        (
            "Condition.subject",
            json!({"subject": {"reference": "Patient/999999999"}}),
        ),
        (
            "Condition.verificationStatus",
            json!({"verificationStatus": {}}),
        ),
        (
            "Condition.onsetDateTime",
            json!({"onsetDateTime": "2026-06-29"}),
        ),
    ] {
        let mut body = condition.clone();
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, answer) = post(&s, "/fhir/Condition/$report", &clinician, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        assert_eq!(answer["resourceType"], "OperationOutcome");
        assert!(answer.to_string().contains(path), "{path}: {answer}");
    }
    assert_eq!(report_count(&s).await, before);
    let (status, answer) = post(&s, "/fhir/Condition/$report", &clinician, &condition).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["resourceType"], "Parameters");
    let id: i64 = answer["parameter"][0]["valueString"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let stored = s.state.store.case_report(id).await.unwrap();
    assert_eq!(stored.disease, "hfmd");
    assert_eq!(stored.resident_id, Some(resident.id));
    assert_eq!(stored.street, street);
    assert_eq!(stored.status, dhp_core::surveillance::CaseStatus::Clinical);
    assert_eq!(
        stored.onset_date,
        NaiveDate::from_ymd_opt(2026, 6, 27).unwrap()
    );
}
