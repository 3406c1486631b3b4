//! A guardian's pages: the children the registry links to them, under 14 at once,
//! 14 to 17 only with the child's own consent (which the child gives and withdraws),
//! never an adult, never a child not theirs; every attempt on the child's record.

use axum::http::StatusCode;
use chrono::NaiveDate;
use dhp_store::{Guardianship, Table};

use super::{get, login, site, Site};

async fn signed_in(s: &Site, username: &str) -> String {
    let (status, cookie, _) = login(s, username, username).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{username} signs in");
    cookie.unwrap()
}

fn age(birth: NaiveDate, on: NaiveDate) -> u32 {
    dhp_core::registry::age_years(birth, on)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guardian_sees_a_child_under_14_a_teenager_only_with_consent_and_no_one_else() {
    let s = site(2_000).await;
    let store = &*s.state.store;
    let on = super::end_date(&s).await;
    let residents = store
        .page(Table::Residents, 0, 10_000)
        .await
        .unwrap()
        .residents;
    let me = store.user_by_username("resident").await.unwrap();
    let me = me.resident_id.unwrap();
    let kids = store.children_of(me).await.unwrap();
    let child = residents
        .iter()
        .find(|r| kids.iter().any(|k| k.child_id == r.id) && age(r.birth_date, on) < 14)
        .expect("the demo resident is the parent of a child under 14")
        .clone();
    let parent = signed_in(&s, "resident").await;

    // Listed on the parent's own page, with the record and the plan a tap away.
    let (status, page) = get(&s, "/me", Some(&parent)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("我的子女") && page.contains(&child.name),
        "{page}"
    );
    assert!(page.contains(&format!("/me/children/{}/vaccines", child.id)));
    let (status, record) = get(&s, &format!("/me/children/{}", child.id), Some(&parent)).await;
    assert_eq!(status, StatusCode::OK, "{record}");
    assert!(record.contains(&child.name) && record.contains("以监护人身份"));
    assert!(
        record
            .split("href=\"/me/book?")
            .skip(1)
            .any(|h| h[..h.find('"').unwrap()].ends_with(&format!("child={}", child.id))),
        "booking from the child's page acts for the child: {record}"
    );
    let (status, plan) = get(
        &s,
        &format!("/me/children/{}/vaccines", child.id),
        Some(&parent),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert!(plan.contains("国家免疫规划儿童免疫程序（2021年版）"));
    assert!(plan.contains("乙肝疫苗") && plan.contains("window.print()"));
    // Every vaccine of the schedule has its row, each given dose its date.
    let schedule = dhp_core::codes::immunization_schedule();
    assert_eq!(
        plan.matches("<tr class=\"plan-").count(),
        schedule.vaccines.len()
    );
    let rec = store
        .programme_records(
            &dhp_store::Cohort::Resident(child.id),
            dhp_store::Reading::Full,
            on,
            child.id - 1,
            1,
        )
        .await
        .unwrap()
        .pop()
        .unwrap();
    for i in &rec.immunizations {
        assert!(plan.contains(&i.date.to_string()), "dose of {}", i.date);
    }
    let (_, en) = get(
        &s,
        &format!("/me/children/{}/vaccines?lang=en", child.id),
        Some(&parent),
    )
    .await;
    assert!(en.contains("Hepatitis B vaccine") && !en.contains("乙肝疫苗"));
    assert!(
        !en.contains("kid_") && !plan.contains("kid_"),
        "no raw keys"
    );

    // The guardian books for the child: the child's appointment, the guardian's name
    // on the child's trail; then cancels it from the child's page.
    let end = super::end_date(&s).await;
    let ahead = end + chrono::Duration::days(9);
    let (status, page) = get(
        &s,
        &format!(
            "/me/book?child={}&service=general_practice&from={ahead}",
            child.id
        ),
        Some(&parent),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains(&format!("您正在为 {} 预约", child.name)),
        "{page}"
    );
    let slot: i64 = {
        let at = page
            .find("name=\"slot\" value=\"")
            .expect("a place offered");
        let rest = &page[at + "name=\"slot\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].parse().unwrap()
    };
    let (status, to, page) = super::portal::send_form(
        &s,
        &format!("/me/book?child={}", child.id),
        &parent,
        &format!("slot={slot}"),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    assert!(
        to.starts_with(&format!("/me/children/{}?", child.id)),
        "{to}"
    );
    let theirs = store.appointments_of(child.id).await.unwrap();
    let booked = theirs
        .iter()
        .find(|a| a.slot_id == slot)
        .expect("the child's booking");
    let me_now = store.appointments_of(me).await.unwrap();
    assert!(
        me_now.iter().all(|a| a.slot_id != slot),
        "not the guardian's"
    );
    let trail = store.audit_events(Some(child.id), 200).await.unwrap();
    assert!(trail
        .iter()
        .any(|e| e.username == "resident" && e.action == "create" && e.outcome == "success"));
    let (status, _, _) = super::portal::send_form(
        &s,
        &format!("/me/appointments/{}/cancel?child={}", booked.id, child.id),
        &parent,
        "reason=pat",
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        store
            .appointment(booked.id)
            .await
            .unwrap()
            .unwrap()
            .row
            .status,
        dhp_core::booking::Status::Cancelled
    );

    // Anyone else's child — or an id that is no one — is no child of theirs.
    let stranger = residents
        .iter()
        .find(|r| r.id != me && !kids.iter().any(|k| k.child_id == r.id))
        .unwrap();
    for path in [
        format!("/me/children/{}", stranger.id),
        format!("/me/children/{}/vaccines", stranger.id),
        "/me/children/999999".to_string(),
        "/me/children/abc".to_string(),
        format!("/me/children/{me}"),
    ] {
        let (status, page) = get(&s, &path, Some(&parent)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            page.contains("没有找到与您关联的这个孩子"),
            "{path}: {page}"
        );
        assert!(!page.contains(&stranger.name));
    }

    // A teenager: not without their consent; the teenager decides on their own page.
    let mut teen = None;
    for r in residents
        .iter()
        .filter(|r| (14..18).contains(&age(r.birth_date, on)))
    {
        if let Some(g) = store.guardians_of(r.id).await.unwrap().first() {
            teen = Some((r.clone(), g.guardian_id));
            break;
        }
    }
    let (teen, guardian) = teen.expect("a generated teenager with a parent");
    let t = super::resident_account(&s, "teen", teen.id).await;
    let g = super::resident_account(&s, "guardian", guardian).await;
    let (_, page) = get(&s, "/me", Some(&g)).await;
    assert!(
        page.contains(&teen.name) && page.contains("需孩子本人"),
        "{page}"
    );
    let teen_page = format!("/me/children/{}", teen.id);
    let (status, page) = get(&s, &teen_page, Some(&g)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("个人信息保护法"), "{page}");
    // Nor book for them, nor for a stranger's child.
    let (status, _) = get(&s, &format!("/me/book?child={}", teen.id), Some(&g)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) =
        super::portal::send_form(&s, &format!("/me/book?child={}", stranger.id), &g, "slot=1")
            .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, own) = get(&s, "/me", Some(&t)).await;
    assert!(
        own.contains("监护人查看") && own.contains("不能查看"),
        "{own}"
    );
    let consent = format!("/me/guardians/{guardian}/consent");
    let (status, to, _) = super::portal::send_form(&s, &consent, &t, "give=maybe").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{to}");
    for other in [stranger.id, me] {
        let (status, _, page) = super::portal::send_form(
            &s,
            &format!("/me/guardians/{other}/consent"),
            &t,
            "give=yes",
        )
        .await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "only one's own guardians: {page}"
        );
    }
    let (status, to, _) = super::portal::send_form(&s, &consent, &t, "give=yes").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(to.starts_with("/me?lang=zh&saved=consented"), "{to}");
    let (status, page) = get(&s, &teen_page, Some(&g)).await;
    assert_eq!(status, StatusCode::OK, "with consent: {page}");
    // The teenager sees who looked: the guardian's refused and allowed reads.
    let (_, looked) = get(&s, "/me/access?others=1", Some(&t)).await;
    assert!(
        looked.contains("已允许") && looked.contains("已拒绝"),
        "{looked}"
    );
    let (status, _, _) = super::portal::send_form(&s, &consent, &t, "give=no").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _) = get(&s, &teen_page, Some(&g)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "consent withdrawn");
    // The guardian cannot give the consent themself: it is not their page's to give.
    let (status, _, _) = super::portal::send_form(
        &s,
        &format!("/me/guardians/{guardian}/consent"),
        &g,
        "give=yes",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // An adult is nobody's ward, whatever the link says.
    let adult = residents
        .iter()
        .find(|r| age(r.birth_date, on) >= 18 && r.id != me && r.id != guardian)
        .unwrap();
    store
        .add_guardians(&[Guardianship {
            child_id: adult.id,
            guardian_id: me,
            relation: "GUARD".into(),
            consent_at: Some(chrono::Utc::now().naive_utc()),
        }])
        .await
        .unwrap();
    let (status, page) = get(&s, &format!("/me/children/{}", adult.id), Some(&parent)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("已满 18 周岁"));
    let (_, page) = get(&s, "/me", Some(&parent)).await;
    assert!(!page.contains(&adult.name), "not listed");

    // Every attempt is on the child's record.
    let events = store.audit_events(None, 100_000).await.unwrap();
    let on_teen: Vec<_> = events
        .iter()
        .filter(|e| e.resident_id == Some(teen.id) && e.username == "guardian")
        .map(|e| e.outcome.as_str())
        .collect();
    assert_eq!(on_teen.iter().filter(|o| **o == "denied").count(), 3);
    assert_eq!(on_teen.iter().filter(|o| **o == "success").count(), 1);
    assert!(events
        .iter()
        .any(|e| e.resident_id == Some(teen.id) && e.action == "consent" && e.username == "teen"));
}
