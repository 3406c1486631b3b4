//! The workbench end to end: the due-list API (sign-in, scope, bad input naming its
//! field), a follow-up recorded on the resident page and one posted through FHIR, each
//! changing the due list at once; refused input writes nothing.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use chrono::{Days, NaiveDate};
use dhp_core::{Encounter, EncounterType, Observation, Programme};
use dhp_server::app;
use dhp_store::Table;
use serde_json::Value;
use tower::ServiceExt;

use super::fhir::{read, token};
use super::write::send;
use super::{login, site, Site};

async fn due(s: &Site, tok: &str, query: &str) -> (StatusCode, Value) {
    let a = read(s, Some(tok), &format!("/api/workbench/due?{query}")).await;
    (a.status, a.json)
}

async fn post_form(s: &Site, path: &str, cookie: &str, form: &str) -> (StatusCode, String) {
    let csrf = super::csrf_of(s, cookie).await;
    let req = Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, cookie)
        .body(Body::from(format!("{form}&csrf={csrf}")))
        .unwrap();
    let res = app(s.state.clone()).oneshot(req).await.unwrap();
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 1 << 24)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The resident's hypertension follow-up item in a due list, if any.
fn followup_of(list: &Value, resident: i64) -> Option<Value> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| {
            i["resident_id"] == resident
                && i["programme"] == "hypertension"
                && i["key"] == "followup"
        })
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_api_checks_sign_in_scope_and_fields() {
    let s = site(3_000).await;
    let a = read(&s, None, "/api/workbench/due").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let doctor = token(&s, "doctor").await;
    for (query, field) in [
        ("date=2026-13-01", "date"),
        ("programme=dental", "programme"),
        ("within=-3", "within"),
        ("org=NO-SUCH-ORG", "org"),
    ] {
        let (status, body) = due(&s, &doctor, query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(body["field"], field, "{query}: {body}");
    }
    let orgs = s
        .state
        .store
        .page(Table::Organisations, 0, 1_000)
        .await
        .unwrap()
        .organisations;
    let hospital = orgs
        .iter()
        .find(|o| o.kind == dhp_core::OrgKind::Hospital)
        .unwrap();
    let (status, body) = due(&s, &doctor, &format!("org={}", hospital.code)).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("org"))
    );
    // Another centre's list is not the family doctor's to see.
    let doctor_user = s.state.store.user_by_username("doctor").await.unwrap();
    let other = orgs
        .iter()
        .find(|o| {
            o.kind == dhp_core::OrgKind::CommunityHealthCentre && Some(o.id) != doctor_user.org_id
        })
        .unwrap();
    let (status, _) = due(&s, &doctor, &format!("org={}", other.code)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The own centre's list: overdue first, then due, each item with its rule.
    let (status, list) = due(&s, &doctor, "date=2026-06-30").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let items = list["items"].as_array().unwrap();
    assert!(
        items.len() > 20,
        "a centre of a 3,000-resident district has work due"
    );
    let rank = |i: &Value| match i["status"].as_str().unwrap() {
        "overdue" => 0,
        "due" => 1,
        _ => 2,
    };
    assert!(items.windows(2).all(|w| rank(&w[0]) <= rank(&w[1])));
    assert!(items
        .iter()
        .all(|i| rank(i) < 2 && i["rule"].as_str().unwrap().contains("§")));
    let programmes: std::collections::BTreeSet<&str> = items
        .iter()
        .map(|i| i["programme"].as_str().unwrap())
        .collect();
    assert!(
        programmes.contains("hypertension") && programmes.contains("immunization"),
        "{programmes:?}"
    );
    // Upcoming items appear when asked for a window; a programme filter keeps only it.
    let (_, week) = due(
        &s,
        &doctor,
        "date=2026-06-30&within=30&programme=hypertension",
    )
    .await;
    let week = week["items"].as_array().unwrap();
    assert!(week.iter().all(|i| i["programme"] == "hypertension"));
    assert!(week.iter().any(|i| i["status"] == "upcoming"));
    // The manager sees the district's list (every centre's items).
    let manager = token(&s, "manager").await;
    let (status, all) = due(&s, &manager, "date=2026-06-30&programme=maternal").await;
    assert_eq!(status, StatusCode::OK);
    assert!(all["count"].as_u64().unwrap() > 0, "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_follow_up_changes_the_due_list_at_once() {
    let s = site(3_000).await;
    let doctor = token(&s, "doctor").await;
    let (_, cookie, _) = login(&s, "doctor", "doctor").await;
    let cookie = cookie.unwrap();
    let on: NaiveDate = "2026-06-30".parse().unwrap();
    let (_, list) = due(
        &s,
        &doctor,
        "date=2026-06-30&within=90&programme=hypertension",
    )
    .await;
    let item = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["key"] == "followup")
        .cloned()
        .expect("a hypertension follow-up is due");
    let resident = item["resident_id"].as_i64().unwrap();
    let page = format!("/workbench/resident/{resident}?lang=en");
    let (status, html) = super::get(&s, &page, Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Record a follow-up"));

    // Bad input is refused with the field named, and writes nothing.
    let before = s.state.store.count(Table::Encounters).await.unwrap();
    let path = format!("/workbench/resident/{resident}/followup?lang=en");
    for (form, field) in [
        (
            "programme=hypertension&date=2026-06-30&sbp=abc&dbp=90",
            "sbp",
        ),
        ("programme=hypertension&date=2026-06-30&sbp=150", "dbp"),
        (
            "programme=hypertension&date=2026-07-30&sbp=150&dbp=90",
            "date",
        ),
        (
            "programme=hypertension&date=2026-06-30&sbp=999&dbp=90",
            "sbp",
        ),
        ("programme=dental&date=2026-06-30", "programme"),
    ] {
        let (status, html) = post_form(&s, &path, &cookie, form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form}");
        assert!(html.contains(&format!("{field}:")), "{form}");
    }
    assert_eq!(
        s.state.store.count(Table::Encounters).await.unwrap(),
        before
    );

    // An uncontrolled reading today: revisit within 2 weeks.
    let (status, _) = post_form(
        &s,
        &path,
        &cookie,
        "programme=hypertension&date=2026-06-30&sbp=152&dbp=94&medication_adherence=2",
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        s.state.store.count(Table::Encounters).await.unwrap(),
        before + 1
    );
    let (_, after) = due(
        &s,
        &doctor,
        "date=2026-06-30&within=90&programme=hypertension",
    )
    .await;
    let now = followup_of(&after, resident).expect("the follow-up is still listed");
    assert_eq!(now["due"], (on + Days::new(14)).to_string(), "{now}");
    assert!(
        now["rule"].as_str().unwrap().contains("uncontrolled"),
        "{now}"
    );
    // The resident page shows the reading in the timeline.
    let (_, html) = super::get(&s, &page, Some(&cookie)).await;
    assert!(html.contains("152 mmHg"), "timeline shows the reading");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_ups_posted_through_fhir_update_the_same_due_list() {
    let s = site(3_000).await;
    let doctor = token(&s, "doctor").await;
    let system = super::fhir::token_request(
        &s,
        "grant_type=client_credentials&client_id=system&client_secret=system",
    )
    .await;
    let system = system.json["access_token"].as_str().unwrap().to_string();
    let (_, list) = due(
        &s,
        &doctor,
        "date=2026-06-30&within=90&programme=hypertension",
    )
    .await;
    let item = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["key"] == "followup")
        .cloned()
        .unwrap();
    let resident = item["resident_id"].as_i64().unwrap();
    let doctor_user = s.state.store.user_by_username("doctor").await.unwrap();
    let start = "2026-06-29T09:00:00".parse().unwrap();
    let encounter = Encounter {
        id: 0,
        resident_id: resident,
        kind: EncounterType::FollowUp,
        programme: Some(Programme::Hypertension),
        org_id: doctor_user.org_id.unwrap(),
        practitioner_id: None,
        start,
    };
    let mut body = dhp_fhir::resources::encounter(&encounter);
    body.as_object_mut().unwrap().remove("id");
    let r = send(&s, "POST", "/fhir/Encounter", &system, Some(&body), &[]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let encounter_id: i64 = r.json["id"].as_str().unwrap().parse().unwrap();
    for (key, value) in [("sbp", 128.0), ("dbp", 82.0)] {
        let code = dhp_core::codes::observation(key).unwrap();
        let o = Observation {
            id: 0,
            resident_id: resident,
            encounter_id: Some(encounter_id),
            code: code.code.clone(),
            value,
            unit: code.unit.clone(),
            effective: start,
        };
        let mut body = dhp_fhir::resources::observation_resource(&o);
        body.as_object_mut().unwrap().remove("id");
        let r = send(&s, "POST", "/fhir/Observation", &system, Some(&body), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    }
    // Controlled: the next follow-up is a quarter later.
    let (_, after) = due(
        &s,
        &doctor,
        "date=2026-06-30&within=120&programme=hypertension",
    )
    .await;
    let now = followup_of(&after, resident).unwrap();
    assert_eq!(now["due"], "2026-09-29", "{now}");
    assert_eq!(now["status"], "upcoming");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_immunization_posted_through_fhir_moves_the_series_on() {
    let s = site(3_000).await;
    let system = super::fhir::token_request(
        &s,
        "grant_type=client_credentials&client_id=system&client_secret=system",
    )
    .await;
    let system = system.json["access_token"].as_str().unwrap().to_string();
    let manager = token(&s, "manager").await;
    let (_, list) = due(&s, &manager, "date=2026-06-30&programme=immunization").await;
    // A young child's dose due or overdue now, of a series with a dose after it that
    // no age limit closes.
    let mut item = None;
    for i in list["items"].as_array().unwrap() {
        let (vaccine, n) = i["key"].as_str().unwrap().rsplit_once('-').unwrap();
        let n: usize = n.parse().unwrap();
        let resident = s
            .state
            .store
            .resident(i["resident_id"].as_i64().unwrap())
            .await
            .unwrap();
        if ["HepB", "DTaP", "IPV", "MMR"].contains(&vaccine)
            && n < 2
            && resident.birth_date >= "2025-06-01".parse().unwrap()
        {
            item = Some(i.clone());
            break;
        }
    }
    let item = item.expect("an infant with a dose due");
    let resident = item["resident_id"].as_i64().unwrap();
    let (vaccine, n) = item["key"].as_str().unwrap().rsplit_once('-').unwrap();
    let n: i32 = n.parse().unwrap();
    let centre = s
        .state
        .store
        .user_by_username("doctor")
        .await
        .unwrap()
        .org_id
        .unwrap();
    let given = dhp_core::Immunization {
        id: 0,
        resident_id: resident,
        vaccine: vaccine.to_string(),
        dose_number: n,
        date: "2026-06-30".parse().unwrap(),
        org_id: centre,
    };
    let mut body = dhp_fhir::resources::immunization(&given);
    body.as_object_mut().unwrap().remove("id");
    let r = send(&s, "POST", "/fhir/Immunization", &system, Some(&body), &[]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let (_, after) = due(
        &s,
        &manager,
        "date=2026-06-30&programme=immunization&within=366",
    )
    .await;
    let keys: Vec<&str> = after["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["resident_id"] == resident)
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert!(
        !keys.contains(&format!("{vaccine}-{n}").as_str()),
        "{keys:?}"
    );
    assert!(
        keys.contains(&format!("{vaccine}-{}", n + 1).as_str()),
        "{keys:?}"
    );
}

/// A referral flag on the due list (an emergency reading, or two uncontrolled
/// follow-ups) offers the referral form, and is answered once an up-referral is made:
/// it leaves the due list and the resident's page; a rejected referral would not
/// answer it (`dhp_core::referral::answers_flag`'s test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referral_flag_links_to_the_form_and_a_referral_answers_it() {
    let s = site(3_000).await;
    let tok = token(&s, "doctor").await;
    let due = read(&s, Some(&tok), "/api/workbench/due").await;
    assert_eq!(due.status, StatusCode::OK);
    let flagged: Vec<&Value> = due.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["key"] == "referral" || i["key"] == "emergency-referral")
        .collect();
    assert!(
        !flagged.is_empty(),
        "the generated district has referral flags"
    );
    let item = flagged[0];
    let resident = item["resident_id"].as_i64().unwrap();
    let flag = if item["key"] == "referral" {
        "uncontrolled"
    } else {
        "emergency"
    };
    let (_, cookie, _) = login(&s, "doctor", "doctor").await;
    let cookie = cookie.unwrap();
    let page = |path: String| {
        let s = &s;
        let cookie = cookie.clone();
        async move {
            let req = Request::get(path)
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap();
            let res = app(s.state.clone()).oneshot(req).await.unwrap();
            let bytes = axum::body::to_bytes(res.into_body(), 1 << 24)
                .await
                .unwrap();
            String::from_utf8(bytes.to_vec()).unwrap()
        }
    };
    let link = format!("/care/patients/{resident}?lang=zh&amp;flag={flag}#refer");
    let own = page(format!("/workbench/resident/{resident}")).await;
    assert!(
        own.contains(&link),
        "the resident page offers the referral form"
    );

    // Referred up (through the API, as the form does).
    let hospital = s
        .state
        .store
        .page(Table::Organisations, 0, 1_000)
        .await
        .unwrap()
        .organisations
        .into_iter()
        .find(|o| o.kind == dhp_core::OrgKind::Hospital)
        .unwrap();
    let body = serde_json::json!({
        "resident_id": resident,
        "direction": "up",
        "performer": hospital.code,
        "reason": "连续两次随访控制不满意，请专科调整治疗方案",
    });
    let req = Request::post("/api/referrals")
        .header(header::AUTHORIZATION, format!("Bearer {tok}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let made = super::fhir::call(&s, req).await;
    let (status, body) = (made.status, made.json);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let after = read(&s, Some(&tok), "/api/workbench/due").await;
    assert!(
        !after.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["resident_id"] == resident && i["key"] == item["key"]),
        "the referral answers the flag"
    );
    let own = page(format!("/workbench/resident/{resident}")).await;
    assert!(!own.contains(&link));
}
