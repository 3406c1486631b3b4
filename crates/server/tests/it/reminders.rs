//! The booking day's round against a real webhook on loopback: a booking's two
//! reminders are delivered when due (the resident's phone, the time, the hospital and
//! the service in Chinese), a cancelled appointment's are voided, a gateway that fails
//! is tried again until the third attempt and the failure recorded, and an appointment
//! nobody attended is marked a no-show the next day with its place given back.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chrono::Duration;
use dhp_core::booking::{Channel, Status, Step};
use dhp_core::query::DateCond;
use dhp_server::outbox::{self, Reminders};
use dhp_store::{Booking, SlotFilter};
use serde_json::Value;

use super::fhir::doctor_view;
use super::site;

#[derive(Clone, Default)]
struct Gateway {
    got: Arc<Mutex<Vec<Value>>>,
    answer: Arc<AtomicU16>,
}

async fn receive(State(g): State<Gateway>, Json(v): Json<Value>) -> StatusCode {
    g.got.lock().unwrap().push(v);
    StatusCode::from_u16(g.answer.load(Ordering::SeqCst)).unwrap()
}

/// The earliest free slot from `from` with no booking yet that `fits`.
async fn empty_slot(
    store: &dyn dhp_store::Store,
    from: chrono::NaiveDateTime,
    fits: impl Fn(&dhp_store::SlotState) -> bool,
) -> Option<dhp_store::SlotState> {
    let (slots, _) = store
        .search_slots(&SlotFilter {
            statuses: vec!["free".into()],
            start: vec![DateCond::Ge(from)],
            limit: 2_000,
            ..SlotFilter::default()
        })
        .await
        .unwrap();
    slots.into_iter().find(|s| s.booked == 0 && fits(s))
}

async fn gateway() -> (Gateway, String) {
    let g = Gateway::default();
    g.answer.store(200, Ordering::SeqCst);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/sms", post(receive))
        .with_state(g.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (g, format!("http://{addr}/sms"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_go_out_through_the_webhook_and_the_unattended_become_no_shows() {
    let s = site(2_000).await;
    let store = &*s.state.store;
    let today = dhp_store::as_of(store).await.unwrap();
    let view = doctor_view(store).await;
    let mine = view.in_scope(today);
    let now = today.and_hms_opt(9, 0, 0).unwrap();

    // An empty slot three days ahead, with room for two.
    let slot = empty_slot(store, now + Duration::days(3), |s| s.slot.capacity >= 2)
        .await
        .expect("an empty slot with two places");
    let start = slot.slot.start;
    let (a, b) = (9_000_001, 9_000_002);
    for (id, resident) in [(a, mine[0]), (b, mine[1])] {
        store
            .book(&Booking {
                appointment_id: id,
                slot_id: slot.slot.id,
                resident_id: resident,
                channel: Channel::Referral,
                at: now,
            })
            .await
            .unwrap();
    }
    let queued = store.reminders_of(a).await.unwrap();
    assert_eq!(
        queued.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(),
        ["day-before", "two-hours"]
    );
    assert!(queued.iter().all(|r| r.status == "pending"));
    store
        .appointment_step(b, Step::Cancel, Some("pat"), now)
        .await
        .unwrap();

    let (g, url) = gateway().await;
    let webhook = outbox::sender(&Reminders::webhook(&url).unwrap());

    // The day before: the booked one is reminded, the cancelled one voided.
    let round = outbox::round(&s.state, &*webhook, start - Duration::hours(23))
        .await
        .unwrap();
    assert!(round.sent >= 1 && round.void >= 1, "{round:?}");
    let got: Vec<Value> = g.got.lock().unwrap().clone();
    let mine_got: Vec<&Value> = got.iter().filter(|v| v["appointment"] == a).collect();
    assert_eq!(mine_got.len(), 1, "{got:?}");
    let m = mine_got[0];
    let resident = store.resident(mine[0]).await.unwrap();
    assert_eq!(m["to"], resident.phone);
    assert_eq!(m["kind"], "day-before");
    let text = m["text"].as_str().unwrap();
    let orgs = store
        .page(dhp_store::Table::Organisations, 0, i64::MAX)
        .await
        .unwrap()
        .organisations;
    let org = orgs.iter().find(|o| o.id == slot.org_id).unwrap();
    assert!(text.contains(&org.name_zh), "{text}");
    assert!(
        text.contains(&start.format("%Y-%m-%d %H:%M").to_string()),
        "{text}"
    );
    assert!(!text.is_ascii(), "the resident's text is Chinese: {text}");
    assert!(
        got.iter().all(|v| v["appointment"] != b),
        "no reminder of a cancelled appointment"
    );
    let kept = store.reminders_of(a).await.unwrap();
    assert_eq!(kept[0].status, "sent");
    assert_eq!(kept[0].detail.as_deref(), Some("webhook 200"));
    assert_eq!(kept[1].status, "pending");
    assert!(store
        .reminders_of(b)
        .await
        .unwrap()
        .iter()
        .all(|r| r.status == "void"));

    // Two hours before, the gateway fails: tried again each round until the third.
    g.answer.store(500, Ordering::SeqCst);
    let at = start - Duration::minutes(90);
    for attempt in 1..=3 {
        outbox::round(&s.state, &*webhook, at).await.unwrap();
        let r = &store.reminders_of(a).await.unwrap()[1];
        assert_eq!(r.attempts, attempt);
        assert_eq!(
            r.status,
            if attempt < 3 { "pending" } else { "failed" },
            "attempt {attempt}"
        );
        assert_eq!(r.detail.as_deref(), Some("webhook answered 500"));
    }
    let before = g.got.lock().unwrap().len();
    outbox::round(&s.state, &*webhook, at).await.unwrap();
    assert!(
        g.got.lock().unwrap()[before..]
            .iter()
            .all(|v| v["appointment"] != a),
        "a failed reminder is not sent a fourth time"
    );

    // A gateway that cannot be reached is a failure with its reason, not a crash.
    let gone = outbox::sender(&Reminders::webhook("http://127.0.0.1:1/sms").unwrap());
    let c = 9_000_003;
    store
        .book(&Booking {
            appointment_id: c,
            slot_id: slot.slot.id,
            resident_id: mine[2],
            channel: Channel::Referral,
            at: now,
        })
        .await
        .unwrap();
    outbox::round(&s.state, &*gone, start - Duration::hours(23))
        .await
        .unwrap();
    let r = &store.reminders_of(c).await.unwrap()[0];
    assert_eq!((r.status.as_str(), r.attempts), ("pending", 1));
    assert!(
        r.detail.as_deref().unwrap().contains("unreachable"),
        "{r:?}"
    );

    // The log sender delivers without leaving the machine.
    let log = outbox::sender(&Reminders::Log);
    outbox::round(&s.state, &*log, start - Duration::hours(23))
        .await
        .unwrap();
    let r = &store.reminders_of(c).await.unwrap()[0];
    assert_eq!(
        (r.status.as_str(), r.detail.as_deref()),
        ("sent", Some("log"))
    );

    // Nobody came: the next morning's round marks them no-shows and frees the places.
    let held = store.slot_state(slot.slot.id).await.unwrap().booked;
    assert_eq!(held, 2);
    let next_day = (start.date() + Duration::days(1))
        .and_hms_opt(0, 5, 0)
        .unwrap();
    let round = outbox::round(&s.state, &*log, next_day).await.unwrap();
    assert!(round.no_shows >= 2, "{round:?}");
    for id in [a, c] {
        let v = store.appointment(id).await.unwrap().unwrap();
        assert_eq!(v.row.status, Status::Noshow);
    }
    assert_eq!(store.slot_state(slot.slot.id).await.unwrap().booked, 0);
    assert_eq!(store.pool_faults().await.unwrap(), (0, 0));
}

async fn api_post(s: &super::Site, tok: &str, path: &str, body: Value) -> super::fhir::Answer {
    let req = axum::http::Request::builder()
        .method("POST")
        .uri(path)
        .header("authorization", format!("Bearer {tok}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    super::fhir::call(s, req).await
}

/// The waitlist through the JSON API: a family doctor puts residents of their panel in
/// a full schedule's line; a cancellation offers the place to the first, who accepts
/// it (the Appointment, read through FHIR, is then booked); refusals name the field;
/// residents outside the doctor's scope and other roles are refused, and audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freed_place_is_offered_to_the_waitlist_and_accepted() {
    use super::fhir::{read, token};
    use serde_json::json;

    let s = site(2_000).await;
    let store = &*s.state.store;
    let today = dhp_store::as_of(store).await.unwrap();
    let view = doctor_view(store).await;
    let mine = view.in_scope(today);
    let outsider = view
        .residents
        .iter()
        .find(|r| !mine.contains(&r.id))
        .unwrap()
        .id;
    let doctor = token(&s, "doctor").await;
    // The server's present moment (the district's day at the clock's time): the offer
    // made at it is still open when the API accepts it a moment later.
    let now = today.and_time(dhp_core::clock::now().time());
    // A community clinic: the generator's waitlists are the hospitals'.
    let slot = empty_slot(store, now + Duration::days(3), |s| {
        s.slot.capacity <= 12 && s.service == "general_practice"
    })
    .await
    .expect("an empty community clinic slot");
    // Fill it with residents of the panel.
    let cap = slot.slot.capacity as usize;
    for (k, r) in mine.iter().take(cap).enumerate() {
        store
            .book(&Booking {
                appointment_id: 9_100_000 + k as i64,
                slot_id: slot.slot.id,
                resident_id: *r,
                channel: Channel::Referral,
                at: now,
            })
            .await
            .unwrap();
    }
    let day = slot.slot.start.date().to_string();
    let wait = |resident: i64| json!({ "resident_id": resident, "schedule_id": slot.slot.schedule_id, "from": day });
    let first = api_post(&s, &doctor, "/api/waitlist", wait(mine[cap])).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.json);
    assert_eq!(first.json["status"], "waiting");
    assert_eq!(first.json["ahead"], 0);
    let second = api_post(&s, &doctor, "/api/waitlist", wait(mine[cap + 1])).await;
    assert_eq!(second.json["ahead"], 1);

    // Refusals name the field and write nothing.
    let again = api_post(&s, &doctor, "/api/waitlist", wait(mine[cap])).await;
    assert_eq!(
        (again.status, again.json["field"].as_str()),
        (StatusCode::CONFLICT, Some("schedule_id"))
    );
    let past = api_post(
        &s,
        &doctor,
        "/api/waitlist",
        json!({ "resident_id": mine[cap + 2], "schedule_id": slot.slot.schedule_id, "from": (today - Duration::days(1)).to_string() }),
    )
    .await;
    assert_eq!(
        (past.status, past.json["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("from"))
    );
    let backwards = api_post(
        &s,
        &doctor,
        "/api/waitlist",
        json!({ "resident_id": mine[cap + 2], "schedule_id": slot.slot.schedule_id, "from": day, "to": today.to_string() }),
    )
    .await;
    assert_eq!(backwards.json["field"], "to", "{}", backwards.json);
    let nowhere = api_post(
        &s,
        &doctor,
        "/api/waitlist",
        json!({ "resident_id": mine[cap + 2], "schedule_id": 987_654_321, "from": day }),
    )
    .await;
    assert_eq!(
        (nowhere.status, nowhere.json["field"].as_str()),
        (StatusCode::NOT_FOUND, Some("schedule_id"))
    );
    let theirs = api_post(&s, &doctor, "/api/waitlist", wait(outsider)).await;
    assert_eq!(theirs.status, StatusCode::FORBIDDEN);
    assert!(store.waitlist_of(outsider).await.unwrap().is_empty());
    assert!(store.waitlist_of(mine[cap + 2]).await.unwrap().is_empty());
    let manager = token(&s, "manager").await;
    let role = api_post(&s, &manager, "/api/waitlist", wait(mine[cap + 2])).await;
    assert_eq!(
        (role.status, role.json["field"].as_str()),
        (StatusCode::FORBIDDEN, Some("role"))
    );

    // A place frees: the first in line is offered it, holding it.
    store
        .appointment_step(9_100_000, Step::Cancel, Some("pat"), now)
        .await
        .unwrap();
    let entry = first.json["id"].as_i64().unwrap();
    let listed = read(
        &s,
        Some(&doctor),
        &format!("/api/waitlist?resident_id={}", mine[cap]),
    )
    .await;
    let e = &listed.json["entries"][0];
    assert_eq!(e["status"], "offered", "{}", listed.json);
    let offered = e["appointment_id"].as_i64().unwrap();
    let pending = read(&s, Some(&doctor), &format!("/fhir/Appointment/{offered}")).await;
    assert_eq!(pending.json["status"], "pending");
    assert_eq!(
        store.slot_state(slot.slot.id).await.unwrap().booked as usize,
        cap
    );
    // The second cannot accept what was not offered to them.
    let not_theirs = api_post(
        &s,
        &doctor,
        &format!("/api/waitlist/{}/accept", second.json["id"]),
        json!({}),
    )
    .await;
    assert_eq!(
        not_theirs.status,
        StatusCode::CONFLICT,
        "{}",
        not_theirs.json
    );
    let took = api_post(
        &s,
        &doctor,
        &format!("/api/waitlist/{entry}/accept"),
        json!({}),
    )
    .await;
    assert_eq!(took.status, StatusCode::OK, "{}", took.json);
    assert_eq!(took.json["status"], "booked");
    let booked = read(&s, Some(&doctor), &format!("/fhir/Appointment/{offered}")).await;
    assert_eq!(booked.json["status"], "booked");
    assert_eq!(store.reminders_of(offered).await.unwrap().len(), 2);
    // The second leaves the line.
    let left = api_post(
        &s,
        &doctor,
        &format!("/api/waitlist/{}/withdraw", second.json["id"]),
        json!({}),
    )
    .await;
    assert_eq!(left.json["status"], "withdrawn");
    assert_eq!(store.pool_faults().await.unwrap(), (0, 0));
    // Every attempt on a resident is in the audit log, the refused one too.
    let audit = store.audit_events(None, 100_000).await.unwrap();
    assert!(audit
        .iter()
        .any(|a| a.resident_id == Some(outsider) && a.outcome == "denied"));
    assert!(audit
        .iter()
        .any(|a| a.resident_id == Some(mine[cap]) && a.detail.contains("accept")));
}
