//! The slot pool through FHIR: Slot and Schedule searched from the pool's tables with
//! the slot-capacity extension; an Appointment created `booked` takes a place under the
//! same guard as every other path (concurrent creates at one slot fill exactly its
//! capacity; the public share stops at the reserved places); updates move it along its
//! life cycle with versions and If-Match; `$find` and `$book`; a transaction that would
//! overbook writes nothing; refusals name the element; reads and refusals are audited.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use chrono::Duration;
use dhp_core::query::DateCond;
use dhp_server::{app, AppState};
use dhp_store::{SlotFilter, SlotState};
use serde_json::{json, Value};
use tower::ServiceExt;

use super::fhir::{doctor_view, read, token, token_request};
use super::site;
use super::write::send;

async fn post(state: Arc<AppState>, tok: String, path: String, body: Value) -> (StatusCode, Value) {
    let req = Request::builder()
        .method("POST")
        .uri(&path)
        .header(header::AUTHORIZATION, format!("Bearer {tok}"))
        .header(
            header::CONTENT_TYPE,
            if path.starts_with("/api/") {
                "application/json"
            } else {
                "application/fhir+json"
            },
        )
        .body(Body::from(body.to_string()))
        .unwrap();
    let res = app(state).oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 24)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn booking(slot: i64, resident: i64) -> Value {
    json!({
        "resourceType": "Appointment",
        "status": "booked",
        "slot": [{ "reference": format!("Slot/{slot}") }],
        "participant": [{ "actor": { "reference": format!("Patient/{resident}") }, "status": "accepted" }],
    })
}

/// Future slots of the pool with no booking yet, earliest first.
async fn empty_slots(state: &AppState, from: chrono::NaiveDateTime) -> Vec<SlotState> {
    let (slots, _) = state
        .store
        .search_slots(&SlotFilter {
            statuses: vec!["free".into()],
            start: vec![DateCond::Ge(from)],
            limit: 5_000,
            ..SlotFilter::default()
        })
        .await
        .unwrap();
    slots.into_iter().filter(|s| s.booked == 0).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appointments_through_fhir_book_under_the_pools_guard() {
    let s = site(2_000).await;
    let store = &*s.state.store;
    let view = doctor_view(store).await;
    let today = dhp_store::as_of(store).await.unwrap();
    let doctor = token(&s, "doctor").await;
    let system = token_request(
        &s,
        "grant_type=client_credentials&client_id=system&client_secret=system",
    )
    .await
    .json["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    // Residents the doctor may book for, and one they may not.
    let mine: Vec<i64> = view.in_scope(today);
    let outsider = view
        .residents
        .iter()
        .find(|r| !mine.contains(&r.id))
        .unwrap()
        .id;
    // Two days ahead: past every release of reserved places the generator sets.
    let from = (today + Duration::days(2)).and_hms_opt(0, 0, 0).unwrap();
    let empty = empty_slots(&s.state, from).await;
    let big = empty
        .iter()
        .find(|s| s.slot.capacity >= 2 && s.slot.reserved >= 1 && s.slot.release > from)
        .expect("a slot of a specialist schedule with reserved places")
        .clone();

    // The Slot as FHIR: found by the standard parameters, capacity as the extension.
    let found = read(
        &s,
        Some(&doctor),
        &format!(
            "/fhir/Slot?schedule.actor=Organization/{}&status=free&start=ge{}&_count=200",
            big.org_id,
            big.slot.start.format("%Y-%m-%dT%H:%M")
        ),
    )
    .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.json);
    let entries = found.json["entry"].as_array().unwrap();
    let first = &entries[0]["resource"];
    assert_eq!(first["id"], big.slot.id.to_string(), "earliest first");
    assert_eq!(first["status"], "free");
    assert_eq!(
        first["extension"][0]["url"],
        "http://fhir-registry.smarthealthit.org/StructureDefinition/slot-capacity"
    );
    assert_eq!(first["extension"][0]["valueInteger"], big.slot.capacity);
    let schedule = read(
        &s,
        Some(&doctor),
        &format!("/fhir/Schedule/{}", big.slot.schedule_id),
    )
    .await;
    assert_eq!(schedule.status, StatusCode::OK);
    assert_eq!(
        schedule.json["actor"][0]["reference"],
        format!("Organization/{}", big.org_id)
    );

    // The public share: an integrating system books the open places, then is told the
    // rest are kept for referrals.
    let open = (big.slot.capacity - big.slot.reserved) as usize;
    let mut booked = Vec::new();
    for r in mine.iter().take(open + 1) {
        let (status, body) = post(
            s.state.clone(),
            system.clone(),
            "/fhir/Appointment".into(),
            booking(big.slot.id, *r),
        )
        .await;
        if status == StatusCode::CREATED {
            assert_eq!(body["status"], "booked");
            assert_eq!(body["extension"][0]["valueCode"], "public");
            booked.push(body);
        } else {
            assert_eq!(status, StatusCode::CONFLICT, "{body}");
            assert!(
                body["issue"][0]["diagnostics"]
                    .as_str()
                    .unwrap()
                    .contains("kept for referrals"),
                "{body}"
            );
        }
    }
    assert_eq!(booked.len(), open);
    // Stamped by the district's clock (China Standard Time), given in UTC: on a host
    // set to UTC too, the instant is the district's day at the present UTC time.
    let stamped: chrono::DateTime<chrono::Utc> = booked[0]["meta"]["lastUpdated"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let expected = (today.and_time(dhp_core::clock::now().time()) - Duration::hours(8)).and_utc();
    assert!(
        (stamped - expected).num_seconds().abs() < 120,
        "{stamped} is not {expected}"
    );

    // Concurrent bookings of the same slot by the family doctor (who may take the
    // reserved places): exactly the capacity is booked, never more.
    let rest: Vec<i64> = mine.iter().skip(open + 1).take(40).copied().collect();
    let mut set = tokio::task::JoinSet::new();
    for r in &rest {
        set.spawn(post(
            s.state.clone(),
            doctor.clone(),
            "/fhir/Appointment".into(),
            booking(big.slot.id, *r),
        ));
    }
    let mut created = 0;
    while let Some(done) = set.join_next().await {
        let (status, body) = done.unwrap();
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {}
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(created, big.slot.reserved as usize);
    let after = store.slot_state(big.slot.id).await.unwrap();
    assert_eq!(after.booked, big.slot.capacity);
    assert_eq!(store.pool_faults().await.unwrap(), (0, 0));
    let busy = read(&s, Some(&doctor), &format!("/fhir/Slot/{}", big.slot.id)).await;
    assert_eq!(busy.json["status"], "busy");
    assert_eq!(busy.json["extension"][0]["valueInteger"], 0);

    // The appointment read back, searched by its slot, in the patient's $everything.
    let a = &booked[0];
    let id = a["id"].as_str().unwrap().to_string();
    let patient = a["participant"][0]["actor"]["reference"]
        .as_str()
        .unwrap()
        .trim_start_matches("Patient/")
        .to_string();
    let got = read(&s, Some(&doctor), &format!("/fhir/Appointment/{id}")).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.json);
    assert_eq!(
        got.json["slot"][0]["reference"],
        format!("Slot/{}", big.slot.id)
    );
    let by_slot = read(
        &s,
        Some(&doctor),
        &format!("/fhir/Appointment?slot=Slot/{}&status=booked", big.slot.id),
    )
    .await;
    assert_eq!(by_slot.json["total"], big.slot.capacity, "{}", by_slot.json);
    let everything = read(
        &s,
        Some(&doctor),
        &format!("/fhir/Patient/{patient}/$everything?_type=Appointment"),
    )
    .await;
    assert!(everything.json["entry"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["resource"]["id"] == id.as_str()));

    // The life cycle: a cancellation says why, gives its place back, and is version 2;
    // an update from a stale version is refused; a cancelled one cannot be booked again.
    let mut cancel = got.json.clone();
    cancel["status"] = json!("cancelled");
    let r = send(
        &s,
        "PUT",
        &format!("/fhir/Appointment/{id}"),
        &doctor,
        Some(&cancel),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert_eq!(
        r.json["issue"][0]["expression"][0],
        "Appointment.cancelationReason"
    );
    cancel["cancelationReason"] = json!({ "coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason",
        "code": "pat" }] });
    let r = send(
        &s,
        "PUT",
        &format!("/fhir/Appointment/{id}"),
        &doctor,
        Some(&cancel),
        &[("if-match", "W/\"1\"")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["meta"]["versionId"], "2");
    assert_eq!(
        store.slot_state(big.slot.id).await.unwrap().booked,
        big.slot.capacity - 1
    );
    let r = send(
        &s,
        "PUT",
        &format!("/fhir/Appointment/{id}"),
        &doctor,
        Some(&cancel),
        &[("if-match", "W/\"1\"")],
    )
    .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{}", r.json);
    let mut again = cancel.clone();
    again["status"] = json!("booked");
    let r = send(
        &s,
        "PUT",
        &format!("/fhir/Appointment/{id}"),
        &doctor,
        Some(&again),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert_eq!(r.json["issue"][0]["expression"][0], "Appointment.status");
    let r = send(
        &s,
        "DELETE",
        &format!("/fhir/Appointment/{id}"),
        &doctor,
        None,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{}", r.json);
    assert_eq!(r.allow.as_deref(), Some("GET, HEAD, PUT"));

    // Bad input names the element and books nothing.
    let spare = empty
        .iter()
        .find(|x| x.slot.id != big.slot.id)
        .unwrap()
        .clone();
    // A schedule published yesterday for one day: its slots have begun.
    let yesterday = dhp_core::booking::Schedule {
        id: store.reserve_ids("Schedule", 1).await.unwrap(),
        org_id: big.org_id,
        service: big.service.clone(),
        practitioner_id: None,
        weekdays: [true; 7],
        first_start: chrono::NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
        slot_minutes: 30,
        slots_per_day: 2,
        capacity: 1,
        referral_share: 0,
        release_hours: 0,
        horizon_days: 1,
    };
    let first = store.reserve_ids("Slot", 2).await.unwrap();
    let old = yesterday.slots(today - Duration::days(1), first).unwrap();
    store.publish_schedule(&yesterday, &old).await.unwrap();
    let past = &old[0];
    let mut waitlist = booking(spare.slot.id, mine[0]);
    waitlist["status"] = json!("waitlist");
    for (body, at, status) in [
        (
            booking(999_999_999, mine[0]),
            "Appointment.slot[0].reference",
            StatusCode::BAD_REQUEST,
        ),
        (
            booking(past.id, mine[0]),
            "Appointment.slot[0].reference",
            StatusCode::BAD_REQUEST,
        ),
        (waitlist, "Appointment.status", StatusCode::BAD_REQUEST),
        (
            json!({ "resourceType": "Appointment", "status": "booked",
                "participant": [{ "actor": { "reference": format!("Patient/{}", mine[0]) } }] }),
            "Appointment.slot",
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (st, out) = post(
            s.state.clone(),
            doctor.clone(),
            "/fhir/Appointment".into(),
            body,
        )
        .await;
        assert_eq!(st, status, "{out}");
        assert_eq!(out["issue"][0]["expression"][0], at, "{out}");
    }
    // Outside the doctor's scope: refused, audited, nothing booked.
    let (st, _) = post(
        s.state.clone(),
        doctor.clone(),
        "/fhir/Appointment".into(),
        booking(spare.slot.id, outsider),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let trail = store.audit_events(Some(outsider), 100).await.unwrap();
    assert!(trail
        .iter()
        .any(|e| e.outcome == "denied" && e.action == "create"));
    assert_eq!(store.slot_state(spare.slot.id).await.unwrap().booked, 0);

    // A transaction that would overbook the one place left writes nothing at all.
    let one_left = big.slot.id;
    let entries: Vec<Value> = [mine[open + 1 + rest.len()], mine[open + 2 + rest.len()]]
        .iter()
        .map(|r| {
            json!({
                "resource": booking(one_left, *r),
                "request": { "method": "POST", "url": "Appointment" },
            })
        })
        .collect();
    let bundle = json!({ "resourceType": "Bundle", "type": "transaction", "entry": entries });
    let (st, out) = post(s.state.clone(), doctor.clone(), "/fhir".into(), bundle).await;
    assert_eq!(st, StatusCode::CONFLICT, "{out}");
    assert_eq!(
        store.slot_state(one_left).await.unwrap().booked,
        big.slot.capacity - 1
    );
    assert_eq!(store.pool_faults().await.unwrap(), (0, 0));

    // $find offers free slots as proposed appointments; $book books one.
    let offer = read(
        &s,
        Some(&doctor),
        &format!(
            "/fhir/Appointment/$find?service-type={}&_count=3",
            spare.service
        ),
    )
    .await;
    assert_eq!(offer.status, StatusCode::OK, "{}", offer.json);
    let proposed = offer.json["entry"][0]["resource"].clone();
    assert_eq!(proposed["status"], "proposed");
    let slot_ref = proposed["slot"][0]["reference"]
        .as_str()
        .unwrap()
        .to_string();
    let mut appt = proposed.clone();
    appt["participant"].as_array_mut().unwrap().push(
        json!({ "actor": { "reference": format!("Patient/{}", mine[1]) }, "status": "accepted" }),
    );
    let params = json!({ "resourceType": "Parameters",
        "parameter": [{ "name": "appt-resource", "resource": appt }] });
    let (st, out) = post(
        s.state.clone(),
        doctor.clone(),
        "/fhir/Appointment/$book".into(),
        params,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{out}");
    assert_eq!(out["status"], "booked");
    assert_eq!(out["slot"][0]["reference"], slot_ref);
    let bad = read(&s, Some(&doctor), "/fhir/Appointment/$find?start=tomorrow").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad.json["issue"][0]["expression"][0],
        "Appointment/$find?start"
    );

    // The CapabilityStatement says what exists, and nothing more.
    let meta = read(&s, None, "/fhir/metadata").await;
    let appointment = meta.json["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Appointment")
        .unwrap()
        .clone();
    let codes: Vec<&str> = appointment["interaction"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"create") && codes.contains(&"update"));
    assert!(!codes.contains(&"delete"));
    let ops: Vec<&str> = appointment["operation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["find", "hold", "book"]);
}

/// `$hold` keeps a place as a pending appointment under the same guard as a booking;
/// `$book` of the held appointment (by its id) books it with its reminders; a hold not
/// booked in time is let go by the minute round and its place is free again; a hold
/// that lapsed cannot be booked. Each answer is audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_keeps_a_place_until_it_is_booked_or_lapses() {
    let s = site(2_000).await;
    let store = &*s.state.store;
    let view = doctor_view(store).await;
    let today = dhp_store::as_of(store).await.unwrap();
    let doctor = token(&s, "doctor").await;
    let mine: Vec<i64> = view.in_scope(today);
    let from = (today + Duration::days(2)).and_hms_opt(0, 0, 0).unwrap();
    let slot = empty_slots(&s.state, from)
        .await
        .into_iter()
        .find(|s| s.slot.capacity == 1 || (s.slot.capacity <= 4 && s.slot.reserved == 0))
        .expect("a small open slot")
        .clone();
    let cap = slot.slot.capacity as usize;
    let hold = |resident: i64| {
        let mut a = booking(slot.slot.id, resident);
        a["status"] = json!("proposed");
        a
    };
    // Holds take every place; one more is refused, naming the slot.
    let mut held = Vec::new();
    for r in &mine[..cap] {
        let (st, out) = post(
            s.state.clone(),
            doctor.clone(),
            "/fhir/Appointment/$hold".into(),
            hold(*r),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{out}");
        assert_eq!(out["status"], "pending");
        held.push(out);
    }
    assert_eq!(
        store.slot_state(slot.slot.id).await.unwrap().booked as usize,
        cap
    );
    let (st, out) = post(
        s.state.clone(),
        doctor.clone(),
        "/fhir/Appointment/$hold".into(),
        hold(mine[cap]),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "{out}");
    assert_eq!(
        out["issue"][0]["expression"][0],
        "Appointment.slot[0].reference"
    );
    // A held place sends no reminders until it is booked.
    let first: i64 = held[0]["id"].as_str().unwrap().parse().unwrap();
    assert!(store.reminders_of(first).await.unwrap().is_empty());
    let mut book = held[0].clone();
    book["status"] = json!("booked");
    // Another institution that may see the resident (referred there) does not book
    // or let go of the centre's hold.
    let clinician = token(&s, "clinician").await;
    let hospital = store
        .user_by_username("clinician")
        .await
        .unwrap()
        .org_id
        .unwrap();
    let code = store.organisation(hospital).await.unwrap().code;
    let (st, out) = post(
        s.state.clone(),
        doctor.clone(),
        "/api/referrals".into(),
        json!({ "resident_id": mine[0], "direction": "up", "performer": code,
                "reason": "血压控制不满意", "priority": "routine" }),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{out}");
    let mut letgo = held[0].clone();
    letgo["status"] = json!("cancelled");
    letgo["cancelationReason"] = json!({ "coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason",
        "code": "prov" }] });
    // Not even written back unchanged.
    let r = send(
        &s,
        "PUT",
        &format!("/fhir/Appointment/{first}"),
        &clinician,
        Some(&held[0]),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json);
    assert_eq!(
        r.json["issue"][0]["expression"][0], "Appointment.id",
        "{}",
        r.json
    );
    for body in [book.clone(), letgo] {
        let (st, out) = post(
            s.state.clone(),
            clinician.clone(),
            "/fhir/Appointment/$book".into(),
            body,
        )
        .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{out}");
        assert_eq!(out["issue"][0]["expression"][0], "Appointment.id", "{out}");
    }
    assert_eq!(
        store
            .appointment(first)
            .await
            .unwrap()
            .unwrap()
            .row
            .status
            .as_str(),
        "pending"
    );
    let (st, out) = post(
        s.state.clone(),
        doctor.clone(),
        "/fhir/Appointment/$book".into(),
        book,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{out}");
    assert_eq!(out["status"], "booked");
    assert_eq!(out["id"], held[0]["id"]);
    assert_eq!(store.reminders_of(first).await.unwrap().len(), 2);
    // The round lets the other holds go once their time is up; the booked one stays.
    let now = today.and_time(dhp_core::clock::now().time());
    let minutes = dhp_core::booking::limits().hold_minutes;
    assert_eq!(store.release_holds(now).await.unwrap(), 0);
    let later = now + Duration::minutes(minutes + 1);
    assert_eq!(store.release_holds(later).await.unwrap() as usize, cap - 1);
    assert_eq!(store.slot_state(slot.slot.id).await.unwrap().booked, 1);
    assert_eq!(store.pool_faults().await.unwrap(), (0, 0));
    if cap > 1 {
        let gone: i64 = held[1]["id"].as_str().unwrap().parse().unwrap();
        let view = store.appointment(gone).await.unwrap().unwrap();
        assert_eq!(view.row.status.as_str(), "cancelled");
        // A lapsed hold is not booked.
        let mut late = held[1].clone();
        late["status"] = json!("booked");
        let (st, out) = post(
            s.state.clone(),
            doctor.clone(),
            "/fhir/Appointment/$book".into(),
            late,
        )
        .await;
        assert!(st.is_client_error(), "{st} {out}");
        assert_eq!(store.slot_state(slot.slot.id).await.unwrap().booked, 1);
    }
    let audit = store.audit_events(None, 100_000).await.unwrap();
    assert!(audit
        .iter()
        .any(|e| e.resource == format!("Appointment/{first}") && e.outcome == "success"));

    // A body that is not an Appointment is refused, not a crash; an id the pool does
    // not hold is not booked afresh; $hold holds whatever status it is sent.
    let (st, _) = post(
        s.state.clone(),
        doctor.clone(),
        "/fhir/Appointment/$hold".into(),
        json!([]),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let mut ghost = booking(slot.slot.id, mine[0]);
    ghost["id"] = json!("99999999");
    let (st, out) = post(
        s.state.clone(),
        doctor.clone(),
        "/fhir/Appointment/$book".into(),
        ghost,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{out}");
    assert_eq!(out["issue"][0]["expression"][0], "Appointment.id");
    // One resident holds at most data/booking.toml's holds_per_resident places, and a
    // hold opens no hospital's access to the resident.
    let clinician = token(&s, "clinician").await;
    let hospital = store
        .user_by_username("clinician")
        .await
        .unwrap()
        .org_id
        .unwrap();
    let mut who = None;
    for r in &mine[cap + 1..] {
        let seen = read(&s, Some(&clinician), &format!("/fhir/Patient/{r}")).await;
        if seen.status == StatusCode::FORBIDDEN {
            who = Some(*r);
            break;
        }
    }
    let who = who.expect("a resident of the panel the hospital has not seen");
    let most = dhp_core::booking::limits().holds_per_resident as usize;
    let mut days = std::collections::HashSet::new();
    let spots: Vec<_> = empty_slots(&s.state, from)
        .await
        .into_iter()
        .filter(|x| x.slot.capacity > x.slot.reserved && x.slot.id != slot.slot.id)
        .filter(|x| days.insert(x.slot.start.date()))
        .take(most + 1)
        .collect();
    let at_hospital = empty_slots(&s.state, from)
        .await
        .into_iter()
        .find(|x| {
            x.org_id == hospital
                && x.slot.capacity > x.slot.reserved
                && !days.contains(&x.slot.start.date())
        })
        .expect("an open slot at the clinician's hospital");
    let mut holding = vec![at_hospital];
    holding.extend(spots.into_iter().take(most - 1));
    for x in &holding {
        let mut a = booking(x.slot.id, who);
        a["status"] = json!("booked");
        let (st, out) = post(
            s.state.clone(),
            doctor.clone(),
            "/fhir/Appointment/$hold".into(),
            a,
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{out}");
        assert_eq!(out["status"], "pending", "$hold holds");
    }
    assert_eq!(
        read(&s, Some(&clinician), &format!("/fhir/Patient/{who}"))
            .await
            .status,
        StatusCode::FORBIDDEN,
        "a hold opened the hospital's access"
    );
    let extra = empty_slots(&s.state, from)
        .await
        .into_iter()
        .find(|x| {
            x.slot.capacity > x.slot.reserved
                && !holding
                    .iter()
                    .any(|h| h.slot.start.date() == x.slot.start.date())
        })
        .unwrap();
    let (st, out) = post(
        s.state.clone(),
        doctor.clone(),
        "/fhir/Appointment/$hold".into(),
        hold_for(extra.slot.id, who),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "{out}");
}

fn hold_for(slot: i64, resident: i64) -> Value {
    let mut a = booking(slot, resident);
    a["status"] = json!("proposed");
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referrals_through_fhir_are_tasks_moved_on_by_their_status() {
    let s = site(2_000).await;
    let store = &*s.state.store;
    let view = doctor_view(store).await;
    let today = dhp_store::as_of(store).await.unwrap();
    let doctor = token(&s, "doctor").await;
    let clinician = token(&s, "clinician").await;
    let hospital = store
        .user_by_username("clinician")
        .await
        .unwrap()
        .org_id
        .unwrap();
    let code = store.organisation(hospital).await.unwrap().code;
    let resident = view.in_scope(today)[3];
    let (status, made) = post(
        s.state.clone(),
        doctor.clone(),
        "/api/referrals".into(),
        json!({ "resident_id": resident, "direction": "up", "performer": code,
                "reason": "两次随访血压控制不满意", "priority": "urgent", "diagnosis": "I10" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let id = made["id"].as_i64().unwrap();

    // The hospital's inbox as a FHIR search; the Task focuses on the request.
    let inbox = read(
        &s,
        Some(&clinician),
        &format!("/fhir/Task?owner=Organization/{hospital}&status=requested&_count=200"),
    )
    .await;
    assert_eq!(inbox.status, StatusCode::OK, "{}", inbox.json);
    let task = inbox.json["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"].clone())
        .find(|t| t["id"].as_str() == Some(id.to_string().as_str()))
        .expect("the new referral in the inbox");
    assert_eq!(task["for"]["reference"], format!("Patient/{resident}"));
    assert_eq!(task["priority"], "urgent");
    let focus = task["focus"]["reference"].as_str().unwrap().to_string();
    let request = read(&s, Some(&clinician), &format!("/fhir/{focus}")).await;
    assert_eq!(request.status, StatusCode::OK, "{}", request.json);
    assert_eq!(request.json["reasonCode"][0]["coding"][0]["code"], "I10");
    assert_eq!(
        request.json["performer"][0]["reference"],
        format!("Organization/{hospital}")
    );

    // The same request, sent as a FHIR ServiceRequest for another resident, makes a
    // referral with its Task; a faulty one names its element and makes nothing; a
    // referral is not kept as received inside a Bundle.
    let other = view.in_scope(today)[4];
    let mut sent = request.json.clone();
    sent.as_object_mut().unwrap().remove("id");
    sent.as_object_mut().unwrap().remove("meta");
    sent["subject"] = json!({ "reference": format!("Patient/{other}") });
    let before = store.referrals_of(other).await.unwrap().len();
    for (change, path) in [
        (
            json!({ "performer": [{ "reference": "Organization/987654321" }] }),
            "ServiceRequest.performer[0].reference",
        ),
        (json!({ "note": [] }), "ServiceRequest.note[0].text"),
        (json!({ "priority": "whenever" }), "ServiceRequest.priority"),
        (json!({ "extension": [] }), "ServiceRequest.extension"),
    ] {
        let mut bad = sent.clone();
        for (k, v) in change.as_object().unwrap() {
            bad[k] = v.clone();
        }
        let (st, out) = post(
            s.state.clone(),
            doctor.clone(),
            "/fhir/ServiceRequest".into(),
            bad,
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{out}");
        assert_eq!(out["issue"][0]["expression"][0], path, "{out}");
    }
    let bundle = json!({ "resourceType": "Bundle", "type": "transaction", "entry": [
        { "resource": sent.clone(), "request": { "method": "POST", "url": "ServiceRequest" } } ] });
    let (st, out) = post(s.state.clone(), doctor.clone(), "/fhir".into(), bundle).await;
    assert!(st.is_client_error(), "{st} {out}");
    assert!(out.to_string().contains("ServiceRequest.category"), "{out}");
    assert_eq!(store.referrals_of(other).await.unwrap().len(), before);
    let (st, made) = post(
        s.state.clone(),
        doctor.clone(),
        "/fhir/ServiceRequest".into(),
        sent,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{made}");
    assert_eq!(made["subject"]["reference"], format!("Patient/{other}"));
    let new_id = made["id"].as_str().unwrap();
    let new_task = read(&s, Some(&clinician), &format!("/fhir/Task/{new_id}")).await;
    assert_eq!(new_task.status, StatusCode::OK, "{}", new_task.json);
    assert_eq!(new_task.json["status"], "requested");
    assert_eq!(store.referrals_of(other).await.unwrap().len(), before + 1);

    // A referral's request is a ServiceRequest like any other: found by search (its
    // status read as the request's), in the patient's $everything and with its
    // history; it is moved on through its Task, not replaced or deleted.
    let ids_of = |b: &serde_json::Value| -> Vec<String> {
        b["entry"]
            .as_array()
            .map(|es| {
                es.iter()
                    .filter(|e| e["resource"]["resourceType"] == "ServiceRequest")
                    .filter_map(|e| e["resource"]["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    for (query, found) in [
        (format!("patient={other}"), true),
        (format!("patient={other}&status=active"), true),
        (format!("patient={other}&status=completed"), false),
        (
            format!("patient={other}&performer=Organization/{hospital}"),
            true,
        ),
        (format!("patient={other}&code=4548-4"), false),
    ] {
        let r = read(&s, Some(&doctor), &format!("/fhir/ServiceRequest?{query}")).await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.json);
        assert_eq!(
            ids_of(&r.json).contains(&new_id.to_string()),
            found,
            "{query}: {}",
            r.json
        );
    }
    let all = read(
        &s,
        Some(&doctor),
        &format!("/fhir/Patient/{other}/$everything"),
    )
    .await;
    assert!(
        ids_of(&all.json).contains(&new_id.to_string()),
        "{}",
        all.json
    );
    let h = read(
        &s,
        Some(&doctor),
        &format!("/fhir/ServiceRequest/{new_id}/_history"),
    )
    .await;
    assert_eq!(h.status, StatusCode::OK, "{}", h.json);
    assert_eq!(h.json["total"], 1, "{}", h.json);
    let mut replaced = made.clone();
    replaced["priority"] = json!("routine");
    let sr = format!("/fhir/ServiceRequest/{new_id}");
    let r = send(&s, "PUT", &sr, &doctor, Some(&replaced), &[]).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{}", r.json);
    assert!(r.json.to_string().contains("/fhir/Task/"), "{}", r.json);
    assert_eq!(r.allow.as_deref(), Some("GET, HEAD"));
    let r = send(&s, "DELETE", &sr, &doctor, None, &[]).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{}", r.json);
    // An account that may not see the resident is not told it is a referral.
    let mut other = store.user_by_username("clinician").await.unwrap();
    let hospital = other.org_id.unwrap();
    let facts = store
        .resident_access_facts(resident, dhp_store::as_of(store).await.unwrap())
        .await
        .unwrap();
    let elsewhere = dhp_store::organisations(store)
        .await
        .unwrap()
        .into_iter()
        .find(|o| {
            o.kind == dhp_core::OrgKind::Hospital
                && o.id != hospital
                && !facts.encounter_orgs.contains(&o.id)
                && !facts.referred_or_booked.contains(&o.id)
        })
        .unwrap();
    other.username = "clinician3".into();
    other.id = 900_003;
    other.password_hash = dhp_server::auth::hash_password("clinician3");
    other.practitioner_id = None;
    other.org_id = Some(elsewhere.id);
    store.insert_user(&other).await.unwrap();
    let stranger = token(&s, "clinician3").await;
    for method in ["PUT", "DELETE"] {
        let body = (method == "PUT").then_some(&replaced);
        let r = send(&s, method, &sr, &stranger, body, &[]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method}: {}", r.json);
        assert!(!r.json.to_string().contains("Task"), "{}", r.json);
    }
    let still = read(&s, Some(&doctor), &sr).await;
    assert_eq!(still.json["priority"], made["priority"], "{}", still.json);

    // Only the organisation referred to accepts; a rejection says why; the workflow
    // never goes back; a stale version is refused.
    let path = format!("/fhir/Task/{id}");
    let with = |status: &str, reason: Option<&str>| {
        let mut t = task.clone();
        t["status"] = json!(status);
        if let Some(r) = reason {
            t["statusReason"] = json!({ "text": r });
        }
        t
    };
    let r = send(
        &s,
        "PUT",
        &path,
        &doctor,
        Some(&with("accepted", None)),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json);
    let r = send(
        &s,
        "PUT",
        &path,
        &clinician,
        Some(&with("rejected", None)),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert_eq!(
        r.json["issue"][0]["expression"][0],
        "Task.statusReason.text"
    );
    let r = send(
        &s,
        "PUT",
        &path,
        &clinician,
        Some(&with("accepted", None)),
        &[("if-match", "W/\"1\"")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["status"], "accepted");
    assert_eq!(r.json["meta"]["versionId"], "2");
    let r = send(
        &s,
        "PUT",
        &path,
        &clinician,
        Some(&with("completed", None)),
        &[("if-match", "W/\"1\"")],
    )
    .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{}", r.json);
    let r = send(
        &s,
        "PUT",
        &path,
        &clinician,
        Some(&with("requested", None)),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert_eq!(r.json["issue"][0]["expression"][0], "Task.status");
    let (row, steps) = store.referral(id).await.unwrap();
    assert_eq!((row.status.as_str(), steps.len()), ("accepted", 2));

    // Not deleted, not written in a Bundle; the audit log has the step and the refusal.
    let r = send(&s, "DELETE", &path, &clinician, None, &[]).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{}", r.json);
    let bundle = json!({ "resourceType": "Bundle", "type": "transaction", "entry": [{
        "resource": with("completed", None), "request": { "method": "PUT", "url": format!("Task/{id}") } }] });
    let (st, out) = post(s.state.clone(), clinician.clone(), "/fhir".into(), bundle).await;
    assert!(st.is_client_error(), "{st}: {out}");
    assert_eq!(
        store.referral(id).await.unwrap().0.status.as_str(),
        "accepted"
    );
    let trail = store.audit_events(Some(resident), 200).await.unwrap();
    let on_task: Vec<(&str, &str)> = trail
        .iter()
        .filter(|e| e.resource == format!("Task/{id}") && e.action == "update")
        .map(|e| (e.outcome.as_str(), e.username.as_str()))
        .collect();
    assert!(on_task.contains(&("success", "clinician")), "{on_task:?}");
    assert!(on_task.contains(&("denied", "doctor")), "{on_task:?}");

    // The Task is in the patient's record; an unknown parameter is named.
    let everything = read(
        &s,
        Some(&doctor),
        &format!("/fhir/Patient/{resident}/$everything?_type=Task"),
    )
    .await;
    assert_eq!(everything.json["total"], 1, "{}", everything.json);
    let bad = read(&s, Some(&clinician), "/fhir/Task?business-status=x").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad.json["issue"][0]["expression"][0],
        "Task?business-status"
    );
}
