//! The resident portal: my record, and who looked at it — only ever one's own.

use axum::http::StatusCode;

use super::{get, login, site};

/// The items of a portal list (`<li class="card…">` of `ul.me-items`).
fn items(page: &str) -> usize {
    page.matches("<li class=\"card").count()
}

/// The audit entries the lines of a "who looked" page stand for: one a line, or the
/// number a line says it groups (`（共 85 条）`).
fn entries(page: &str) -> usize {
    page.split("<li class=\"card")
        .skip(1)
        .map(|line| {
            let line = &line[..line.find("</li>").unwrap_or(line.len())];
            match line.find("（共 ") {
                Some(at) => {
                    let rest = &line[at + "（共 ".len()..];
                    rest[..rest.find(' ').unwrap()].parse().unwrap()
                }
                None => 1,
            }
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resident_sees_their_own_record_and_who_looked_at_it() {
    let s = site(2_000).await;
    let store = &*s.state.store;
    let me = store.user_by_username("resident").await.unwrap();
    let rid = me.resident_id.expect("the demo resident has a record");
    let resident = store.resident(rid).await.unwrap();

    // Without a session: to the login, coming back here.
    let (status, _) = get(&s, "/me", None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    let (status, cookie, _) = login(&s, "resident", "resident").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = cookie.unwrap();
    let (status, zh) = get(&s, "/me", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK, "{zh}");
    assert!(zh.contains(&resident.name), "their own name");
    assert!(zh.contains("我的家庭医生") && zh.contains("健康记录"));
    // No catalogue key or English heading left on the Chinese page.
    for raw in ["me_", "My health", "Reference range", "svc_", "appt_"] {
        assert!(!zh.contains(raw), "{raw} on the Chinese page");
    }
    let (_, en) = get(&s, "/me?lang=en", Some(&cookie)).await;
    assert!(en.contains("My health record") && en.contains("Health timeline"));
    assert!(!en.contains("我的家庭医生"));

    // The timeline pages, fifty entries a page; a page past the end shows the last,
    // a page that is not a number is refused in words.
    let (status, bad) = get(&s, "/me?page=0", Some(&cookie)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(bad.contains("<b>页码</b>"), "{bad}");
    let (status, far) = get(&s, "/me?page=9999", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    let in_timeline = |page: &str| {
        page.split("ul class=\"me-items timeline\"")
            .nth(1)
            .map_or(0, |rest| items(&rest[..rest.find("</ul>").unwrap()]))
    };
    let total = {
        let mut n = 0;
        let mut p = 1;
        loop {
            let (_, page) = get(&s, &format!("/me?page={p}"), Some(&cookie)).await;
            n += in_timeline(&page);
            if !page.contains(&format!("page={}#timeline\">更早", p + 1)) {
                assert_eq!(in_timeline(&page), in_timeline(&far), "the last page");
                break n;
            }
            assert_eq!(in_timeline(&page), 50);
            p += 1;
        }
    };
    assert!(total > 0);
    if total > 50 {
        assert!(zh.contains(&format!("共 {total} 条")), "{zh}");
    }

    // Another role is refused with a styled page; it reaches no one's record.
    let (_, doctor, _) = login(&s, "doctor", "doctor").await;
    let doctor = doctor.unwrap();
    let (status, page) = get(&s, "/me", Some(&doctor)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        page.contains("<html") && page.contains("/workbench"),
        "{page}"
    );
    // A resident id in the query is no way into another's record: there is none.
    let (_, same) = get(&s, &format!("/me?id={}", rid + 1), Some(&cookie)).await;
    assert!(same.contains(&resident.name));

    // Reads by others, allowed or refused, are in the resident's access log, paged
    // newest first, none skipped or repeated; the entries one act left together are
    // one line with their number.
    let token = super::fhir::token(&s, "doctor").await;
    let manager = super::fhir::token(&s, "manager").await;
    for i in 0..60 {
        let t = if i % 2 == 0 { &token } else { &manager };
        super::fhir::read(&s, Some(t), &format!("/fhir/Patient/{rid}")).await;
    }
    // Neither a login id (an account without a name of its own) nor another
    // resident's name is shown to the resident.
    let mut nameless = store.user_by_username("doctor").await.unwrap();
    nameless.id = 900_101;
    nameless.username = "zhang.wei.xy".into();
    nameless.display_name = "zhang.wei.xy".into();
    nameless.password_hash = dhp_server::auth::hash_password("zhang.wei.xy");
    store.insert_user(&nameless).await.unwrap();
    let mut neighbour = me.clone();
    neighbour.id = 900_102;
    neighbour.username = "neighbour".into();
    neighbour.resident_id = Some(rid + 1);
    neighbour.password_hash = dhp_server::auth::hash_password("neighbour");
    store.insert_user(&neighbour).await.unwrap();
    let neighbour_name = store.resident(rid + 1).await.unwrap().name;
    for user in ["zhang.wei.xy", "neighbour"] {
        let t = super::fhir::token(&s, user).await;
        super::fhir::read(&s, Some(&t), &format!("/fhir/Patient/{rid}")).await;
    }
    let (_, shown) = get(&s, "/me/access", Some(&cookie)).await;
    assert!(!shown.contains("zhang.wei.xy"), "a login id is shown");
    assert!(
        !shown.contains(&neighbour_name),
        "another resident is named"
    );
    assert!(shown.contains("另一位居民"), "{shown}");
    // Reads of someone else are not in this resident's log.
    for _ in 0..5 {
        super::fhir::read(&s, Some(&token), &format!("/fhir/Patient/{}", rid + 1)).await;
    }
    let logged = store.audit_events(Some(rid), 10_000).await.unwrap();
    let (status, first) = get(&s, "/me/access", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let doctor_name = store.user_by_username("doctor").await.unwrap().display_name;
    assert!(first.contains(&doctor_name), "the doctor is named");
    let mut seen = entries(&first);
    let mut saw_self = first.contains("您本人");
    assert_eq!(items(&first), 50);
    let mut page = first;
    // The "older" link of the pager (the language switch carries the place too).
    let older = |page: &str| -> Option<usize> {
        let pager = page.find("class=\"pager\"")?;
        page[pager..].find("before=").map(|at| pager + at)
    };
    while let Some(at) = older(&page) {
        let rest = &page[at + "before=".len()..];
        let next = &rest[..rest.find('"').unwrap()];
        let (status, more) = get(&s, &format!("/me/access?before={next}"), Some(&cookie)).await;
        assert_eq!(status, StatusCode::OK);
        seen += entries(&more);
        saw_self |= more.contains("您本人");
        page = more;
        assert!(seen <= logged.len(), "paging does not end");
    }
    assert_eq!(seen, logged.len());
    assert!(saw_self, "the resident's own reads are shown as theirs");
    // Past the end: said so, not "nobody looked".
    let (_, end) = get(
        &s,
        &format!("/me/access?before={}", logged.last().unwrap().place()),
        Some(&cookie),
    )
    .await;
    assert!(
        end.contains("没有更早的记录了") && !end.contains("还没有人查看过"),
        "{end}"
    );

    // The whole record released at once is one line with its number of records.
    super::fhir::read(
        &s,
        Some(&manager),
        &format!("/fhir/Patient/{rid}/$everything"),
    )
    .await;
    let (_, shown) = get(&s, "/me/access", Some(&cookie)).await;
    let line = shown
        .split("<li class=\"card")
        .find(|l| l.contains("查看完整档案"))
        .expect("the $everything read is shown");
    assert!(line.contains("（共 "), "{line}");
    // A failed sign-in to the resident's account is shown, naming no one; the lock
    // after failures too.
    let (status, _, _) = login(&s, "resident", "not-the-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, shown) = get(&s, "/me/access", Some(&cookie)).await;
    assert!(
        shown.contains("尝试登录您的账号，密码错误") && shown.contains("有人"),
        "{shown}"
    );
    // "Others only" leaves out the resident's own acts.
    let (_, others) = get(&s, "/me/access?others=1", Some(&cookie)).await;
    assert!(
        !others.contains("您本人") && others.contains(&doctor_name),
        "{others}"
    );
    // A read under an emergency grant is marked as one.
    let clinician = store.user_by_username("clinician").await.unwrap();
    store
        .grant_emergency_access(&dhp_store::EmergencyGrant {
            id: "g-portal".into(),
            username: "clinician".into(),
            role: "hospital_clinician".into(),
            org_id: clinician.org_id,
            resident_id: rid,
            reason: "车祸昏迷，急诊抢救".into(),
            granted: chrono::Utc::now().naive_utc(),
            expires: chrono::Utc::now().naive_utc() + chrono::Duration::hours(4),
        })
        .await
        .unwrap();
    let ct = super::fhir::token(&s, "clinician").await;
    let read = super::fhir::read(&s, Some(&ct), &format!("/fhir/Patient/{rid}")).await;
    assert_eq!(read.status, StatusCode::OK);
    // Whether the grant was what let the clinician in (the resident may have been
    // seen at that hospital anyway), the line says which.
    let under_grant = store.audit_events(Some(rid), 1).await.unwrap()[0].detail
        == dhp_core::access::EMERGENCY_ACCESS;
    let (_, shown) = get(&s, "/me/access", Some(&cookie)).await;
    let line = shown.split("<li class=\"card").nth(1).unwrap();
    assert_eq!(line.contains("紧急授权"), under_grant, "{line}");

    // A forged place is a styled refusal, not a parse message.
    let (status, bad) = get(&s, "/me/access?before=abc", Some(&cookie)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        bad.contains("<html") && !bad.contains("Cannot parse"),
        "{bad}"
    );
}

/// A bad address, a missing record, a page of another role: each a styled page in
/// the page's language, never the framework's plain text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_on_pages_are_styled_pages_in_the_pages_language() {
    let s = site(300).await;
    let (_, doctor, _) = login(&s, "doctor", "doctor").await;
    let doctor = doctor.unwrap();
    let (status, page) = get(&s, "/workbench/resident/abc", Some(&doctor)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("<html") && page.contains("地址中的参数无效"),
        "{page}"
    );
    assert!(!page.contains("Cannot parse"), "{page}");
    let (status, page) = get(&s, "/workbench/resident/abc?lang=en", Some(&doctor)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("A value in the address is not valid"),
        "{page}"
    );
    let (status, page) = get(&s, "/workbench/resident/999999999", Some(&doctor)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(page.contains("<html") && page.contains("未找到"), "{page}");
    let (status, page) = get(&s, "/no-such-page", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        page.contains("<html") && page.contains("没有这个页面"),
        "{page}"
    );
    let (_, resident, _) = login(&s, "resident", "resident").await;
    let (status, page) = get(&s, "/workbench", Some(&resident.unwrap())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        page.contains("<html") && page.contains("无权访问"),
        "{page}"
    );
}

/// A form post from a signed-in page (its CSRF token), answered with its status,
/// where it sends one and the page.
pub(crate) async fn send_form(
    s: &super::Site,
    path: &str,
    cookie: &str,
    form: &str,
) -> (StatusCode, String, String) {
    use axum::body::Body;
    use axum::http::{header, Request};
    use tower::ServiceExt;
    let csrf = super::csrf_of(s, cookie).await;
    let req = Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, cookie)
        .body(Body::from(format!("{form}&csrf={csrf}")))
        .unwrap();
    let res = dhp_server::app(s.state.clone()).oneshot(req).await.unwrap();
    let status = res.status();
    let to = res
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = axum::body::to_bytes(res.into_body(), 1 << 24)
        .await
        .unwrap();
    (status, to, String::from_utf8_lossy(&body).into_owned())
}

/// The slot ids a booking page offers, in its order.
pub(crate) fn offered(page: &str) -> Vec<i64> {
    page.split("name=\"slot\" value=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].parse().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resident_books_and_cancels_their_own_appointments_through_the_pool() {
    use dhp_core::booking::Status;
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

    // The open places of one service, earliest first, in words — a week ahead, where
    // the generated district booked nobody (so no booking of the resident's own is in
    // the way, whatever the time of day).
    let end: chrono::NaiveDate = store
        .meta("end_date")
        .await
        .unwrap()
        .unwrap()
        .parse()
        .unwrap();
    let week_ahead = end + chrono::Duration::days(7);
    let (status, page) = get(
        &s,
        &format!("/me/book?service=cardiology&from={week_ahead}"),
        Some(&cookie),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("预约挂号") && page.contains("心内科"),
        "{page}"
    );
    let slots = offered(&page);
    assert!(slots.len() >= 2, "open cardiology places: {page}");
    let (status, bad) = get(&s, "/me/book?service=surgery", Some(&cookie)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        bad.contains("<b>科室</b>") && bad.contains("“surgery”"),
        "{bad}"
    );

    // Book the first: through the pool's guard, with its reminders, audited.
    let before = store.appointments_of(rid).await.unwrap().len();
    let held = store.slot_state(slots[0]).await.unwrap().booked;
    // The district's clock: its last day at the time of day now.
    let district_now = || end.and_time(dhp_core::clock::now().time());
    let before_booking = district_now();
    let (status, to, _) = send_form(&s, "/me/book", &cookie, &format!("slot={}", slots[0])).await;
    let after_booking = district_now();
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(to, "/me?lang=zh&saved=booked#visits");
    let mine = store.appointments_of(rid).await.unwrap();
    assert_eq!(mine.len(), before + 1);
    let booked = mine.iter().find(|a| a.slot_id == slots[0]).unwrap().clone();
    assert_eq!(booked.status, Status::Booked);
    assert_eq!(store.slot_state(slots[0]).await.unwrap().booked, held + 1);
    // Its reminders: those not yet past when it was booked (the day before, two hours
    // before), whatever the time of day the test runs at.
    let start = store.slot_state(slots[0]).await.unwrap().slot.start;
    let ahead = |at: chrono::NaiveDateTime| {
        dhp_core::booking::limits()
            .reminders
            .iter()
            .filter(|r| start - chrono::Duration::minutes(r.minutes_before) > at)
            .count()
    };
    let queued = store.reminders_of(booked.id).await.unwrap().len();
    assert!(
        (ahead(after_booking)..=ahead(before_booking)).contains(&queued),
        "{queued} reminders for a slot at {start}, booked at {before_booking}"
    );
    let trail = store.audit_events(Some(rid), 50).await.unwrap();
    assert!(trail.iter().any(|e| e.username == "resident"
        && e.action == "create"
        && e.resource == format!("Appointment/{}", booked.id)
        && e.outcome == "success"));

    // The same slot again (the same service the same day): refused in words, nothing
    // written.
    let (status, _, page) = send_form(&s, "/me/book", &cookie, &format!("slot={}", slots[0])).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(page.contains("同一天同一科室只能预约一次"), "{page}");
    assert_eq!(store.appointments_of(rid).await.unwrap().len(), before + 1);
    assert_eq!(store.slot_state(slots[0]).await.unwrap().booked, held + 1);

    // Listed on the record with a way to cancel it.
    let (_, me) = get(&s, "/me?saved=booked", Some(&cookie)).await;
    assert!(me.contains("预约成功"), "{me}");
    let cancel = format!("/me/appointments/{}/cancel", booked.id);
    assert!(me.contains(&cancel), "{me}");
    // A reason not on the list is refused; a good one cancels and gives the place back.
    let (status, _, page) = send_form(&s, &cancel, &cookie, "reason=because").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("<b>取消原因</b>"), "{page}");
    let (status, to, _) = send_form(&s, &cancel, &cookie, "reason=pat-fb").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{to}");
    let after = store.appointment(booked.id).await.unwrap().unwrap();
    assert_eq!(after.row.status, Status::Cancelled);
    assert_eq!(after.row.cancel_reason.as_deref(), Some("pat-fb"));
    assert_eq!(store.slot_state(slots[0]).await.unwrap().booked, held);
    let (status, _, page) = send_form(&s, &cancel, &cookie, "reason=pat-fb").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(page.contains("不能再取消"), "{page}");

    // Another resident's appointment answers as none at all.
    let doctor = super::fhir::token(&s, "doctor").await;
    let view = super::fhir::doctor_view(store).await;
    let today = dhp_store::as_of(store).await.unwrap();
    let other = *view.in_scope(today).iter().find(|r| **r != rid).unwrap();
    let made = super::write::send(
        &s,
        "POST",
        "/fhir/Appointment",
        &doctor,
        Some(&serde_json::json!({
            "resourceType": "Appointment",
            "status": "booked",
            "slot": [{ "reference": format!("Slot/{}", slots[1]) }],
            "participant": [{ "actor": { "reference": format!("Patient/{other}") }, "status": "accepted" }],
        })),
        &[],
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.json);
    let theirs = made.json["id"].as_str().unwrap().to_string();
    let (s1, _, p1) = send_form(
        &s,
        &format!("/me/appointments/{theirs}/cancel"),
        &cookie,
        "reason=pat",
    )
    .await;
    let (s2, _, p2) = send_form(
        &s,
        "/me/appointments/987654321/cancel",
        &cookie,
        "reason=pat",
    )
    .await;
    assert_eq!((s1, s2), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
    assert!(p1.contains("没有找到这个预约") && p2.contains("没有找到这个预约"));
    let theirs_now = store
        .appointment(theirs.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(theirs_now.row.status, Status::Booked, "untouched");

    // Through FHIR too a resident books only for themself, and of the life cycle only
    // cancels (or takes an offered place): checking in is the clinic's.
    let me_tok = super::fhir::token(&s, "resident").await;
    let for_other = super::write::send(
        &s,
        "POST",
        "/fhir/Appointment",
        &me_tok,
        Some(&serde_json::json!({
            "resourceType": "Appointment",
            "status": "booked",
            "slot": [{ "reference": format!("Slot/{}", slots[1]) }],
            "participant": [{ "actor": { "reference": format!("Patient/{other}") }, "status": "accepted" }],
        })),
        &[],
    )
    .await;
    assert_eq!(
        for_other.status,
        StatusCode::FORBIDDEN,
        "{}",
        for_other.json
    );
    let (status, _, _) = send_form(&s, "/me/book", &cookie, &format!("slot={}", slots[1])).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let mine = store
        .appointments_of(rid)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.slot_id == slots[1] && a.status == Status::Booked)
        .unwrap();
    let body = serde_json::json!({
        "resourceType": "Appointment",
        "id": mine.id.to_string(),
        "status": "checked-in",
        "slot": [{ "reference": format!("Slot/{}", slots[1]) }],
        "participant": [{ "actor": { "reference": format!("Patient/{rid}") }, "status": "accepted" }],
    });
    let checked = super::write::send(
        &s,
        "PUT",
        &format!("/fhir/Appointment/{}", mine.id),
        &me_tok,
        Some(&body),
        &[],
    )
    .await;
    assert_eq!(checked.status, StatusCode::FORBIDDEN, "{}", checked.json);
    // Deleting is nobody's, a resident's least of all.
    let gone = super::write::send(
        &s,
        "DELETE",
        &format!("/fhir/Appointment/{}", mine.id),
        &me_tok,
        None,
        &[],
    )
    .await;
    assert_eq!(gone.status, StatusCode::FORBIDDEN, "{}", gone.json);
    assert_eq!(store.pool_faults().await.unwrap(), (0, 0));
}
