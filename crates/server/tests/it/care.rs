//! Tiered care end to end over the API and the pages: a family doctor refers a resident
//! up with a reserved slot (booked in the same step), the hospital's clinician sees it
//! in the inbox and accepts it, the referral opens the patient's record to the
//! hospital, an order meets the recognised result from the community centre, and the
//! down-referral lands on the family doctor's due list. Every refusal names its field
//! and writes nothing; the other hospital sees nothing; every attempt is audited.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use chrono::Duration;
use dhp_core::{Encounter, EncounterType, Observation, OrgKind};
use dhp_store::{Batch, ReferralFilter, Table};
use serde_json::{json, Value};

use super::fhir::{call, read, token};
use super::{csrf_of, get, login, site};

async fn send(
    s: &super::Site,
    tok: &str,
    method: &str,
    path: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {tok}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let a = call(s, req).await;
    (a.status, a.json)
}

async fn referral_count(s: &super::Site) -> i64 {
    let mut n = 0;
    for o in s
        .state
        .store
        .page(Table::Organisations, 0, 1_000)
        .await
        .unwrap()
        .organisations
    {
        for received in [true] {
            let f = ReferralFilter {
                org: o.id,
                received,
                direction: None,
                open_only: false,
            };
            n += s.state.store.referrals(&f, 1, 0).await.unwrap().1;
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referral_goes_up_with_a_slot_is_accepted_and_comes_back_down() {
    let s = site(2_000).await;
    let store = &s.state.store;
    let doctor = token(&s, "doctor").await;
    let clinician = token(&s, "clinician").await;
    let resident_tok = token(&s, "resident").await;
    let doctor_user = store.user_by_username("doctor").await.unwrap();
    let clinician_user = store.user_by_username("clinician").await.unwrap();
    let orgs = store
        .page(Table::Organisations, 0, 1_000)
        .await
        .unwrap()
        .organisations;
    let centre = orgs
        .iter()
        .find(|o| Some(o.id) == doctor_user.org_id)
        .unwrap();
    let hospital = orgs
        .iter()
        .find(|o| Some(o.id) == clinician_user.org_id)
        .unwrap();
    assert_eq!(hospital.kind, OrgKind::Hospital);
    let other_hospital = orgs
        .iter()
        .find(|o| {
            o.kind == OrgKind::Hospital
                && o.id != hospital.id
                && o.district_code == hospital.district_code
        })
        .unwrap();
    // A second clinician, at the other hospital.
    let mut other = clinician_user.clone();
    other.username = "clinician2".into();
    other.id = 900_001;
    other.password_hash = dhp_server::auth::hash_password("clinician2");
    other.practitioner_id = None;
    other.org_id = Some(other_hospital.id);
    store.insert_user(&other).await.unwrap();
    let clinician2 = token(&s, "clinician2").await;

    // An adult of the doctor's area with no encounter at the hospital.
    let on: chrono::NaiveDate = "2026-06-30".parse().unwrap();
    let mut resident = None;
    for r in store
        .page(Table::Residents, 0, 5_000)
        .await
        .unwrap()
        .residents
    {
        if Some(r.street_org_id) != centre.parent_id || r.age_on(on) < 30 {
            continue;
        }
        let f = store.resident_access_facts(r.id, on).await.unwrap();
        if !f.encounter_orgs.contains(&hospital.id) && f.referred_or_booked.is_empty() {
            resident = Some(r.id);
            break;
        }
    }
    let resident = resident.expect("an adult of the area new to the hospital");
    assert_eq!(
        read(&s, Some(&clinician), &format!("/fhir/Patient/{resident}"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // A reserved slot at the hospital, found through the pool's search.
    let slots = read(
        &s,
        Some(&doctor),
        &format!("/api/slots?org={}&referral=1&limit=3", hospital.code),
    )
    .await;
    assert_eq!(slots.status, StatusCode::OK, "{}", slots.json);
    let slot = &slots.json["slots"][0];
    let slot_id = slot["id"].as_i64().unwrap();
    let booked_before = store.slot_state(slot_id).await.unwrap().booked;
    // The public may not ask for the reserved places.
    let public = read(&s, Some(&resident_tok), "/api/slots?referral=1").await;
    assert_eq!(public.json["field"], "referral");

    let good = json!({
        "resident_id": resident,
        "direction": "up",
        "performer": hospital.code,
        "reason": "两次随访血压控制不满意",
        "priority": "urgent",
        "diagnosis": "I10",
        "slot": slot_id.to_string(),
    });
    // Bad input: each refusal names its field and writes nothing.
    let before = referral_count(&s).await;
    let with = |k: &str, v: Value| {
        let mut b = good.clone();
        b[k] = v;
        b
    };
    for (body, field) in [
        (with("direction", json!("sideways")), "direction"),
        (with("performer", json!(centre.code)), "performer"),
        (with("performer", json!("NO-SUCH-ORG")), "performer"),
        (with("reason", json!("  ")), "reason"),
        (with("priority", json!("whenever")), "priority"),
        (with("diagnosis", json!("high blood pressure")), "diagnosis"),
        (with("slot", json!("99999999")), "slot"),
        (with("performer", json!(other_hospital.code)), "slot"),
        (with("follow_up", json!("2026-07-10")), "summary"),
        (with("resident_id", json!(99_999_999)), "resident_id"),
    ] {
        let (status, v) = send(&s, &doctor, "POST", "/api/referrals", &body).await;
        assert!(status.is_client_error(), "{body} → {status}");
        assert_eq!(v["field"], field, "{body} → {v}");
    }
    // The clinician cannot refer up, the resident cannot refer at all.
    let (_, v) = send(&s, &clinician, "POST", "/api/referrals", &good).await;
    assert!(
        v["field"] == "resident_id" || v["field"] == "requester",
        "{v}"
    );
    let (status, v) = send(&s, &resident_tok, "POST", "/api/referrals", &good).await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::FORBIDDEN, Some("role"))
    );
    assert_eq!(referral_count(&s).await, before);
    assert_eq!(
        store.slot_state(slot_id).await.unwrap().booked,
        booked_before
    );

    // The referral, with the slot booked in the same step.
    let (status, made) = send(&s, &doctor, "POST", "/api/referrals", &good).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let id = made["id"].as_i64().unwrap();
    assert_eq!(made["status"], "requested");
    assert!(made["appointment_id"].is_i64());
    assert_eq!(
        store.slot_state(slot_id).await.unwrap().booked,
        booked_before + 1
    );
    assert_eq!(referral_count(&s).await, before + 1);

    // The clinician's inbox has it; the other hospital sees nothing of it.
    let inbox = read(&s, Some(&clinician), "/api/referrals?box=inbox&open=1").await;
    assert!(
        inbox.json["referrals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == id),
        "{}",
        inbox.json
    );
    assert_eq!(
        read(&s, Some(&clinician2), &format!("/api/referrals/{id}"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let (status, v) = send(
        &s,
        &clinician2,
        "POST",
        &format!("/api/referrals/{id}/steps"),
        &json!({"act": "accept"}),
    )
    .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::FORBIDDEN, Some("act"))
    );
    // The referring doctor does not accept; a rejection needs a reason.
    let (status, _) = send(
        &s,
        &doctor,
        "POST",
        &format!("/api/referrals/{id}/steps"),
        &json!({"act": "accept"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, v) = send(
        &s,
        &clinician,
        "POST",
        &format!("/api/referrals/{id}/steps"),
        &json!({"act": "reject"}),
    )
    .await;
    assert_eq!(v["field"], "reason");
    let (status, v) = send(
        &s,
        &clinician,
        "POST",
        &format!("/api/referrals/{id}/steps"),
        &json!({"act": "accept"}),
    )
    .await;
    assert_eq!(
        (status, v["status"].as_str()),
        (StatusCode::OK, Some("accepted")),
        "{v}"
    );
    // Backwards is refused.
    let (status, v) = send(
        &s,
        &clinician,
        "POST",
        &format!("/api/referrals/{id}/steps"),
        &json!({"act": "receive"}),
    )
    .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::CONFLICT, Some("status"))
    );

    // The referral opened the record to the hospital (and only to it).
    assert_eq!(
        read(&s, Some(&clinician), &format!("/fhir/Patient/{resident}"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        read(&s, Some(&clinician2), &format!("/fhir/Patient/{resident}"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // The centre's HbA1c of three days ago stands: the order meets it.
    let e = store.reserve_ids("Encounter", 1).await.unwrap();
    let o = store.reserve_ids("Observation", 1).await.unwrap();
    let when = on.and_hms_opt(9, 0, 0).unwrap() - Duration::days(3);
    store
        .insert_batch(&Batch {
            encounters: vec![Encounter {
                id: e,
                resident_id: resident,
                kind: EncounterType::Outpatient,
                programme: None,
                org_id: centre.id,
                practitioner_id: None,
                start: when,
            }],
            observations: vec![Observation {
                id: o,
                resident_id: resident,
                encounter_id: Some(e),
                code: "4548-4".into(),
                value: 8.1,
                unit: "%".into(),
                effective: when,
            }],
            ..Batch::default()
        })
        .await
        .unwrap();
    let order = |extra: Value| {
        let mut b = json!({"resident_id": resident, "code": "4548-4"});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let (status, v) = send(&s, &clinician, "POST", "/api/orders", &order(json!({}))).await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::CONFLICT, Some("exception")),
        "{v}"
    );
    assert_eq!(v["standing"]["id"], o);
    assert_eq!(v["standing"]["value"], 8.1);
    let standing = o.to_string();
    for (extra, field) in [
        (
            json!({"standing": standing, "exception": "bored"}),
            "exception",
        ),
        (
            json!({"standing": standing, "exception": "physician-judgement"}),
            "note",
        ),
        (json!({"code": "8480-6"}), "code"),
        (
            json!({"standing": standing, "exception": "condition-changed", "note": "x".repeat(2_001)}),
            "note",
        ),
    ] {
        let (status, v) = send(&s, &clinician, "POST", "/api/orders", &order(extra.clone())).await;
        assert_eq!(
            (status, v["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{extra} → {v}"
        );
    }
    assert!(store.orders_of(resident).await.unwrap().is_empty());
    let (status, v) = send(
        &s,
        &clinician,
        "POST",
        "/api/orders",
        &order(json!({"standing": standing, "use_standing": "1"})),
    )
    .await;
    assert_eq!(
        (status, v["outcome"].as_str()),
        (StatusCode::CREATED, Some("recognised")),
        "{v}"
    );
    let (status, v) = send(
        &s,
        &clinician,
        "POST",
        "/api/orders",
        &order(json!({"standing": standing, "exception": "condition-changed"})),
    )
    .await;
    assert_eq!(
        (status, v["outcome"].as_str()),
        (StatusCode::CREATED, Some("ordered")),
        "{v}"
    );
    let figures = store.recognition_figures(on, on).await.unwrap();
    assert!(
        figures.recognised >= 1
            && figures
                .exceptions
                .iter()
                .any(|(c, _)| c == "condition-changed")
    );

    // Down to the centre, with the discharge summary and a follow-up day.
    let down = json!({
        "resident_id": resident,
        "direction": "down",
        "performer": centre.code,
        "reason": "出院后社区随访",
        "summary": "住院 5 天，血压已控制，继续用药",
        "follow_up": (on + Duration::days(3)).to_string(),
    });
    let mut bad = down.clone();
    bad["summary"] = json!("");
    assert_eq!(
        send(&s, &clinician, "POST", "/api/referrals", &bad).await.1["field"],
        "summary"
    );
    bad = down.clone();
    bad["follow_up"] = json!("2020-01-01");
    assert_eq!(
        send(&s, &clinician, "POST", "/api/referrals", &bad).await.1["field"],
        "follow_up"
    );
    bad = down.clone();
    bad["follow_up"] = json!("next week");
    assert_eq!(
        send(&s, &clinician, "POST", "/api/referrals", &bad).await.1["field"],
        "follow_up"
    );
    let (status, d) = send(&s, &clinician, "POST", "/api/referrals", &down).await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    let down_id = d["id"].as_i64().unwrap();

    // The family doctor's side: the referral sent and the one back, and the follow-up
    // on the due list of the coming week.
    let (_, cookie, _) = login(&s, "doctor", "doctor").await;
    let cookie = cookie.unwrap();
    let (status, care) = get(&s, "/care?box=sent&all=1", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        care.contains(&format!("/care/referrals/{id}?")),
        "sent list lacks the referral"
    );
    let (_, due) = get(&s, "/workbench?within=7", Some(&cookie)).await;
    assert!(
        due.contains("出院后随访：出院后社区随访"),
        "the due list lacks the follow-up"
    );
    // The doctor takes the down-referral on through its page's form (CSRF checked).
    let csrf = csrf_of(&s, &cookie).await;
    let step = |body: String| {
        Request::post(format!("/care/referrals/{down_id}/step"))
            .header(header::COOKIE, &cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    };
    assert_eq!(
        call(&s, step("act=accept".into())).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(&s, step(format!("csrf={csrf}&act=accept")))
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        call(&s, step(format!("csrf={csrf}&act=complete")))
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let (_, due) = get(&s, "/workbench?within=7", Some(&cookie)).await;
    assert!(
        !due.contains("出院后随访：出院后社区随访"),
        "a completed follow-up stays due"
    );

    // Every attempt is in the audit log, the refused ones too.
    let audit = store.audit_events(None, 100_000).await.unwrap();
    let has = |resource: &str, outcome: &str, user: &str| {
        audit
            .iter()
            .any(|e| e.resource == resource && e.outcome == outcome && e.username == user)
    };
    assert!(has(&format!("ServiceRequest/{id}"), "success", "doctor"));
    assert!(has(&format!("Task/{id}"), "denied", "clinician2"));
    assert!(has(&format!("ServiceRequest/{id}"), "denied", "clinician2"));
    assert!(has(&format!("Task/{id}"), "success", "clinician"));
    assert!(has(&format!("Observation/{o}"), "success", "clinician"));
}

/// `/care/figures` counts what the records hold (checked against the referral lists and
/// each resident's orders, not the figures' own query), in Chinese and English, for
/// managers and carers and no one else; a workbench referral flag opens the referral
/// form with its reason and priority filled in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_figures_count_the_records_and_a_flag_opens_the_referral_form() {
    use dhp_core::referral::Direction;
    use dhp_store::ReferralFilter;

    let s = site(2_000).await;
    let store = &*s.state.store;
    let to = dhp_store::as_of(store).await.unwrap();
    let from = {
        use chrono::Datelike;
        to.checked_sub_months(chrono::Months::new(11))
            .unwrap()
            .with_day(1)
            .unwrap()
    };
    let orgs = store
        .page(dhp_store::Table::Organisations, 0, i64::MAX)
        .await
        .unwrap()
        .organisations;
    let mut up = 0;
    for h in orgs.iter().filter(|o| o.kind == OrgKind::Hospital) {
        let filter = ReferralFilter {
            org: h.id,
            received: true,
            direction: Some(Direction::Up),
            open_only: false,
        };
        let (rows, _) = store.referrals(&filter, 100_000, 0).await.unwrap();
        up += rows
            .iter()
            .filter(|r| r.created.date() >= from && r.created.date() <= to)
            .count();
    }
    assert!(up > 0, "the generator refers residents up");
    let residents = store
        .page(dhp_store::Table::Residents, 0, 100_000)
        .await
        .unwrap()
        .residents;
    let (mut met, mut recognised) = (0, 0);
    for r in &residents {
        for o in store.orders_of(r.id).await.unwrap() {
            if o.standing_result_id.is_some() && o.at.date() >= from && o.at.date() <= to {
                met += 1;
                recognised += usize::from(o.outcome == "recognised");
            }
        }
    }
    assert!(
        met > 0 && recognised > 0 && recognised < met,
        "{recognised}/{met}"
    );

    let (_, cookie, _) = login(&s, "manager", "manager").await;
    let cookie = cookie.unwrap();
    let (status, zh) = get(&s, "/care/figures", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(zh.contains("分级诊疗数据"));
    assert!(
        zh.contains(&format!("上转</div><div class=\"val\">{up}</div>")),
        "{up} up-referrals"
    );
    assert!(zh.contains(&format!("<div class=\"val\">{recognised}</div>")));
    assert!(zh.contains(&format!("{} {met} ·", "遇到可互认结果的开单")));
    // The exception reasons by their Chinese names, no codes.
    assert!(!zh.contains("condition-changed") && !zh.contains("patient-request"));
    let (_, en) = get(&s, "/care/figures?lang=en", Some(&cookie)).await;
    assert!(en.contains("Tiered care in figures") && en.contains("Repeat tests avoided"));
    let (status, _) = get(&s, "/care/figures", None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, resident, _) = login(&s, "resident", "resident").await;
    let (status, _) = get(&s, "/care/figures", Some(&resident.unwrap())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // From a flag on the workbench, the referral form opens filled in.
    let view = super::fhir::doctor_view(store).await;
    let patient = view.in_scope(to)[0];
    let (_, doctor, _) = login(&s, "doctor", "doctor").await;
    let doctor = doctor.unwrap();
    let (status, page) = get(
        &s,
        &format!("/care/patients/{patient}?flag=emergency"),
        Some(&doctor),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("value=\"随访发现危急情况"),
        "reason filled in"
    );
    assert!(page.contains("<option value=\"stat\" selected>"));
    let (_, page) = get(
        &s,
        &format!("/care/patients/{patient}?flag=uncontrolled&lang=en"),
        Some(&doctor),
    )
    .await;
    assert!(page.contains("value=\"two consecutive follow-ups not controlled"));
    assert!(page.contains("<option value=\"routine\" selected>"));
    let (_, plain) = get(&s, &format!("/care/patients/{patient}"), Some(&doctor)).await;
    assert!(plain.contains("<input name=\"reason\" maxlength=\"2000\" value=\"\">"));
}

/// An imaging examination made at the community centre, sent as a FHIR ImagingStudy,
/// is part of the resident's shared record; the hospital that receives the referral
/// sees it and an order for the same examination meets it (the images stand, with the
/// report's findings shown). Bad studies and writers out of scope change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imaging_study_from_the_centre_meets_the_hospitals_order() {
    let s = site(2_000).await;
    let store = &s.state.store;
    let doctor = token(&s, "doctor").await;
    let clinician = token(&s, "clinician").await;
    let doctor_user = store.user_by_username("doctor").await.unwrap();
    let clinician_user = store.user_by_username("clinician").await.unwrap();
    let orgs = store
        .page(Table::Organisations, 0, 1_000)
        .await
        .unwrap()
        .organisations;
    let centre = orgs
        .iter()
        .find(|o| Some(o.id) == doctor_user.org_id)
        .unwrap();
    let hospital = orgs
        .iter()
        .find(|o| Some(o.id) == clinician_user.org_id)
        .unwrap();
    let on: chrono::NaiveDate = "2026-06-30".parse().unwrap();
    let mut resident = None;
    for r in store
        .page(Table::Residents, 0, 5_000)
        .await
        .unwrap()
        .residents
    {
        if Some(r.street_org_id) != centre.parent_id || r.age_on(on) < 40 {
            continue;
        }
        let f = store.resident_access_facts(r.id, on).await.unwrap();
        if !f.encounter_orgs.contains(&hospital.id)
            && f.referred_or_booked.is_empty()
            && store.imaging_of(r.id).await.unwrap().is_empty()
        {
            resident = Some(r);
            break;
        }
    }
    let resident = resident.expect("an adult of the area new to the hospital");
    let rid = resident.id;
    let when = on.and_hms_opt(10, 0, 0).unwrap() - Duration::days(5);
    let stamp = |t: chrono::NaiveDateTime| format!("{}+08:00", t.format("%Y-%m-%dT%H:%M:%S"));
    let (status, enc) = send(
        &s,
        &doctor,
        "POST",
        "/fhir/Encounter",
        &json!({
            "resourceType": "Encounter", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": format!("Patient/{rid}")},
            "serviceProvider": {"reference": format!("Organization/{}", centre.id)},
            "period": {"start": stamp(when)},
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{enc}");
    let enc = enc["id"].as_str().unwrap().to_string();
    let study = |encounter: &str, started: String| {
        json!({
            "resourceType": "ImagingStudy", "status": "available",
            "identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:2.25.31011820261201"}],
            "modality": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT"}],
            "subject": {"reference": format!("Patient/{rid}")},
            "encounter": {"reference": format!("Encounter/{encounter}")},
            "started": started,
            "procedureCode": [{"coding": [{"system": "http://loinc.org", "code": "24627-2"}]}],
            "note": [{"text": "右肺上叶见直径约4毫米磨玻璃结节"}],
        })
    };
    // Bad studies name their element and write nothing; a hospital that has not seen
    // the resident may not write one.
    let born = resident.birth_date.and_hms_opt(0, 0, 0).unwrap() - Duration::days(1);
    let theirs = store
        .page(Table::Encounters, 0, 100)
        .await
        .unwrap()
        .encounters
        .into_iter()
        .find(|e| e.resident_id != rid)
        .unwrap()
        .id
        .to_string();
    for (tok, body, status, path) in [
        (
            &doctor,
            study(&theirs, stamp(when)),
            StatusCode::BAD_REQUEST,
            "ImagingStudy.encounter.reference",
        ),
        (
            &doctor,
            study("99999999", stamp(when)),
            StatusCode::BAD_REQUEST,
            "ImagingStudy.encounter.reference",
        ),
        (
            &doctor,
            study(&enc, stamp(born)),
            StatusCode::BAD_REQUEST,
            "ImagingStudy.started",
        ),
        (
            &clinician,
            study(&enc, stamp(when)),
            StatusCode::FORBIDDEN,
            "",
        ),
    ] {
        let (got, v) = send(&s, tok, "POST", "/fhir/ImagingStudy", &body).await;
        assert_eq!(got, status, "{v}");
        if !path.is_empty() {
            assert_eq!(v["issue"][0]["expression"][0], path, "{v}");
        }
    }
    assert!(store.imaging_of(rid).await.unwrap().is_empty());
    // Each refused attempt is audited against the resident it named, without values.
    let refused: Vec<_> = store
        .audit_events(Some(rid), 1_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.resource == "ImagingStudy" && e.outcome == "invalid")
        .collect();
    assert_eq!(refused.len(), 3, "{refused:?}");
    assert!(refused
        .iter()
        .all(|e| e.detail.starts_with("400: ImagingStudy.")));
    let (status, made) = send(
        &s,
        &doctor,
        "POST",
        "/fhir/ImagingStudy",
        &study(&enc, stamp(when)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let sid = made["id"].as_str().unwrap().to_string();
    let kept = store.imaging_of(rid).await.unwrap();
    assert_eq!(
        (kept.len(), kept[0].org_id, kept[0].modality.as_str()),
        (1, centre.id, "CT")
    );
    // Searched by patient and modality; the hospital sees nothing yet.
    let found = read(
        &s,
        Some(&doctor),
        &format!("/fhir/ImagingStudy?patient={rid}&modality=http://dicom.nema.org/resources/ontology/DCM|CT"),
    )
    .await;
    assert_eq!(found.json["total"], 1, "{}", found.json);
    assert_eq!(
        found.json["entry"][0]["resource"]["note"][0]["text"],
        "右肺上叶见直径约4毫米磨玻璃结节"
    );
    let none = read(
        &s,
        Some(&doctor),
        &format!("/fhir/ImagingStudy?patient={rid}&modality=MR"),
    )
    .await;
    assert_eq!(none.json["total"], 0, "{}", none.json);
    // Found by its Study Instance UID; a second study under the same UID is refused at
    // its identifier and writes nothing.
    let by_uid = read(
        &s,
        Some(&doctor),
        "/fhir/ImagingStudy?identifier=urn:dicom:uid|urn:oid:2.25.31011820261201",
    )
    .await;
    assert_eq!(by_uid.json["total"], 1, "{}", by_uid.json);
    assert_eq!(
        by_uid.json["entry"][0]["resource"]["id"].as_str(),
        Some(sid.as_str())
    );
    let (status, v) = send(
        &s,
        &doctor,
        "POST",
        "/fhir/ImagingStudy",
        &study(&enc, stamp(when)),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(
        v["issue"][0]["expression"][0], "ImagingStudy.identifier",
        "{v}"
    );
    // The study that holds it is not named (the writer may not be allowed to see it).
    assert!(
        !v.to_string().contains(&format!("ImagingStudy/{sid}")),
        "{v}"
    );
    // Two entries of one transaction under one new UID: refused at the second, which
    // names no id the rolled-back transaction never kept.
    let mut twice = study(&enc, stamp(when));
    twice["identifier"][0]["value"] = json!("urn:oid:2.25.31011820261202");
    let entry = json!({"resource": twice, "request": {"method": "POST", "url": "ImagingStudy"}});
    let (status, v) = send(
        &s,
        &doctor,
        "POST",
        "/fhir",
        &json!({"resourceType": "Bundle", "type": "transaction", "entry": [entry, entry]}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    let said = v["issue"][0]["diagnostics"].as_str().unwrap_or_default();
    assert!(said.starts_with("Bundle.entry[1]"), "{v}");
    assert!(said.contains("another entry of this Bundle"), "{v}");
    assert_eq!(store.imaging_of(rid).await.unwrap().len(), 1);
    assert_eq!(
        read(&s, Some(&clinician), &format!("/fhir/ImagingStudy/{sid}"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // Referred up, the hospital reads it and its order for a chest CT meets it.
    let (status, v) = send(
        &s,
        &doctor,
        "POST",
        "/api/referrals",
        &json!({"resident_id": rid, "direction": "up", "performer": hospital.code,
                "reason": "肺结节待专科评估", "priority": "routine"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(
        read(&s, Some(&clinician), &format!("/fhir/ImagingStudy/{sid}"))
            .await
            .status,
        StatusCode::OK
    );
    // A body of the wrong shape is refused naming its field, as JSON.
    let (status, v) = send(
        &s,
        &clinician,
        "POST",
        "/api/orders",
        &json!({"resident_id": rid, "code": "24627-2", "use_standing": 1}),
    )
    .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("use_standing")),
        "{v}"
    );
    let order = json!({"resident_id": rid, "code": "24627-2"});
    let (status, v) = send(&s, &clinician, "POST", "/api/orders", &order).await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::CONFLICT, Some("exception")),
        "{v}"
    );
    assert_eq!(v["standing"]["id"].to_string(), sid);
    assert_eq!(v["standing"]["modality"], "CT");
    assert_eq!(v["standing"]["findings"], "右肺上叶见直径约4毫米磨玻璃结节");
    let (status, v) = send(
        &s,
        &clinician,
        "POST",
        "/api/orders",
        &json!({"resident_id": rid, "code": "24627-2", "standing": sid, "use_standing": "1"}),
    )
    .await;
    assert_eq!(
        (status, v["outcome"].as_str()),
        (StatusCode::CREATED, Some("recognised")),
        "{v}"
    );
    // The shared record shows the study with its findings, marked HR.
    let (_, cookie, _) = login(&s, "clinician", "clinician").await;
    let (status, page) = get(&s, &format!("/care/patients/{rid}"), cookie.as_deref()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("胸部CT"), "the record lacks the study");
    assert!(page.contains("右肺上叶见直径约4毫米磨玻璃结节"));
    assert!(
        page.contains("<optgroup"),
        "imaging is not orderable on the page"
    );
}
