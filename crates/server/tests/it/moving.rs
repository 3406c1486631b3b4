//! Rescheduling and waitlist offers on the portal: a move is one step (the old place
//! freed only if the new one is taken), a place offered from the waitlist is taken or
//! let pass — only ever the resident's own.

use axum::http::StatusCode;
use dhp_core::booking::{Status, Step};
use dhp_store::AppointmentFilter;

use super::portal::{offered, send_form};
use super::{get, login, site};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_is_one_step_and_only_of_ones_own() {
    let s = site(2_000).await;
    let store = &*s.state.store;
    let rid = store
        .user_by_username("resident")
        .await
        .unwrap()
        .resident_id
        .unwrap();
    let (_, cookie, _) = login(&s, "resident", "resident").await;
    let cookie = cookie.unwrap();
    let end = super::end_date(&s).await;
    let ahead = end + chrono::Duration::days(8);
    let (_, page) = get(
        &s,
        &format!("/me/book?service=general_practice&from={ahead}"),
        Some(&cookie),
    )
    .await;
    let slots = offered(&page);
    assert!(slots.len() >= 3, "{page}");
    let (status, _, _) = send_form(&s, "/me/book", &cookie, &format!("slot={}", slots[0])).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let old = store
        .appointments_of(rid)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.slot_id == slots[0])
        .unwrap();
    let (_, me) = get(&s, "/me", Some(&cookie)).await;
    assert!(
        me.contains(&format!("/me/book?lang=zh&amp;moving={}", old.id)),
        "{me}"
    );

    // The booking page in moving mode: the old one named, the same service offered.
    let (status, page) = get(&s, &format!("/me/book?moving={}", old.id), Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("改约：") && page.contains("改到这个时段"),
        "{page}"
    );
    assert!(page.contains(&format!("name=\"moving\" value=\"{}\"", old.id)));

    // A move to a place that is gone changes nothing: the old one stays booked.
    let (status, _, page) = send_form(
        &s,
        "/me/book",
        &cookie,
        &format!("slot=99999999&moving={}", old.id),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    let now_old = store.appointment(old.id).await.unwrap().unwrap();
    assert_eq!(now_old.row.status, Status::Booked, "nothing moved");

    // The move: the old place freed and the new one taken, in one step.
    let before = (
        store.slot_state(slots[0]).await.unwrap().booked,
        store.slot_state(slots[2]).await.unwrap().booked,
    );
    let (status, to, page) = send_form(
        &s,
        "/me/book",
        &cookie,
        &format!("slot={}&moving={}", slots[2], old.id),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    assert!(to.contains("saved=moved"), "{to}");
    let moved = store.appointment(old.id).await.unwrap().unwrap();
    assert_eq!(moved.row.status, Status::Cancelled);
    assert_eq!(moved.row.cancel_reason.as_deref(), Some("pat"));
    let mine = store.appointments_of(rid).await.unwrap();
    assert!(mine
        .iter()
        .any(|a| a.slot_id == slots[2] && a.status == Status::Booked));
    assert_eq!(
        store.slot_state(slots[0]).await.unwrap().booked,
        before.0 - 1
    );
    assert_eq!(
        store.slot_state(slots[2]).await.unwrap().booked,
        before.1 + 1
    );
    let (_, me) = get(&s, "/me?saved=moved", Some(&cookie)).await;
    assert!(me.contains("已改约"));

    // A cancelled one cannot be moved again; someone else's is none of theirs.
    let (status, _, _) = send_form(
        &s,
        "/me/book",
        &cookie,
        &format!("slot={}&moving={}", slots[1], old.id),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (all, _) = store
        .search_appointments(&AppointmentFilter {
            statuses: vec!["booked".into()],
            ..AppointmentFilter::all(end, 1_000)
        })
        .await
        .unwrap();
    let theirs = all.iter().find(|v| v.row.resident_id != rid).unwrap();
    for path in [
        format!("/me/book?moving={}", theirs.row.id),
        "/me/book?moving=abc".to_string(),
    ] {
        let (status, _) = get(&s, &path, Some(&cookie)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, _, _) = send_form(
        &s,
        "/me/book",
        &cookie,
        &format!("slot={}&moving={}", slots[1], theirs.row.id),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let theirs_now = store.appointment(theirs.row.id).await.unwrap().unwrap();
    assert_eq!(theirs_now.row.status, Status::Booked, "theirs untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_place_freed_is_offered_on_the_portal_and_taken_or_let_pass() {
    let s = site(2_000).await;
    let store = &*s.state.store;
    let end = super::end_date(&s).await;
    // The generated district's waitlists: two or three in the line of a full clinic.
    let (all, _) = store
        .search_appointments(&AppointmentFilter {
            statuses: vec!["booked".into()],
            ..AppointmentFilter::all(end, 100_000)
        })
        .await
        .unwrap();
    let mut waiting = Vec::new();
    for r in 1..=2_000 {
        waiting.extend(
            store
                .waitlist_of(r)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.status == "waiting" && e.ahead == 0),
        );
    }
    let found = all
        .iter()
        .filter(|v| v.slot.slot.start.date() > end)
        .find_map(|v| {
            let day = v.slot.slot.start.date();
            waiting
                .iter()
                .find(|e| e.schedule_id == v.slot.slot.schedule_id && e.from <= day && day <= e.to)
                .map(|e| (v.clone(), e.clone()))
        });
    let (booked, first) = found.expect("a generated line for a booked clinic");
    let cookie = super::resident_account(&s, "waiter", first.resident_id).await;
    let (_, me) = get(&s, "/me", Some(&cookie)).await;
    assert!(
        me.contains("候补中") && me.contains("前面还有 0 人"),
        "{me}"
    );

    // A place frees: the first in line is offered it, on the portal.
    // At the district's time now, as the server reads its clock.
    let now = end.and_time(dhp_core::clock::now().time());
    store
        .appointment_step(booked.row.id, Step::Cancel, Some("pat"), now)
        .await
        .unwrap();
    let entry = store.waitlist_entry(first.id).await.unwrap().unwrap();
    assert_eq!(entry.status, "offered");
    let (_, me) = get(&s, "/me", Some(&cookie)).await;
    assert!(me.contains("待确认") && me.contains("为您保留了"), "{me}");
    let accept = format!("/me/waitlist/{}/accept", first.id);
    assert!(me.contains(&accept));

    // Someone else's line is none of theirs.
    let other = super::resident_account(&s, "other", booked.row.resident_id).await;
    let (status, _, _) = send_form(&s, &accept, &other, "x=1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        store
            .waitlist_entry(first.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        "offered"
    );

    // Taken: booked, said so; a second take is refused in words.
    let (status, to, page) = send_form(&s, &accept, &cookie, "x=1").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    assert!(to.contains("saved=taken"));
    let offered_id = entry.appointment_id.unwrap();
    assert_eq!(
        store
            .appointment(offered_id)
            .await
            .unwrap()
            .unwrap()
            .row
            .status,
        Status::Booked
    );
    let (status, _, page) = send_form(&s, &accept, &cookie, "x=1").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(page.contains("已过期或已顺延"), "{page}");
    let events = store
        .audit_events(Some(first.resident_id), 1_000)
        .await
        .unwrap();
    assert!(events
        .iter()
        .any(|e| e.username == "waiter" && e.detail.contains("accept (portal)")));
}
