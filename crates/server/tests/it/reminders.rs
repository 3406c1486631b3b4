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
    let (slots, _) = store
        .search_slots(&SlotFilter {
            statuses: vec!["free".into()],
            start: vec![DateCond::Ge(now + Duration::days(3))],
            limit: 2_000,
            ..SlotFilter::default()
        })
        .await
        .unwrap();
    let slot = slots
        .into_iter()
        .find(|s| s.booked == 0 && s.slot.capacity >= 2)
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
