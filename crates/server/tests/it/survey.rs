//! The satisfaction survey after a completed visit: the resident's own, once, each
//! item 1 to 5; a wrong answer is named on the form and nothing is kept; the answers
//! count towards the visited institution's satisfaction rate.

use axum::http::StatusCode;
use chrono::Duration;
use dhp_core::booking::Status;
use dhp_store::AppointmentFilter;

use super::portal::send_form;
use super::{get, site};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resident_rates_a_completed_visit_once_and_it_counts_for_the_institution() {
    let s = site(2_000).await;
    let store = &*s.state.store;
    let on = super::end_date(&s).await;
    let (all, _) = store
        .search_appointments(&AppointmentFilter::all(on, 100_000))
        .await
        .unwrap();
    let ids: Vec<i64> = all.iter().map(|v| v.row.id).collect();
    let answered = store.surveyed(&ids).await.unwrap();
    assert!(
        !answered.is_empty(),
        "the generated district has answered surveys"
    );
    // A recent completed visit not rated yet, of a resident who also has one ahead.
    let visit = all
        .iter()
        .find(|v| {
            v.row.status == Status::Fulfilled
                && v.slot.slot.start.date() > on - Duration::days(20)
                && !answered.contains(&v.row.id)
        })
        .expect("a recent completed visit")
        .clone();
    let rid = visit.row.resident_id;
    let cookie = super::resident_account(&s, "patient", rid).await;
    let path = format!("/me/appointments/{}/survey", visit.row.id);

    let (_, me) = get(&s, "/me", Some(&cookie)).await;
    assert!(me.contains(&path), "the visit offers its survey: {me}");
    let (status, form) = get(&s, &path, Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK, "{form}");
    let survey = dhp_core::survey::survey();
    for i in &survey.items {
        assert!(form.contains(&i.zh), "{}", i.key);
    }
    assert!(form.contains("非常满意"));

    // Wrong answers: named on the form, what was chosen kept, nothing recorded.
    let mut answers: Vec<String> = survey
        .items
        .iter()
        .map(|i| format!("{}=5", i.key))
        .collect();
    let without_first = answers[1..].join("&");
    let (status, _, page) = send_form(&s, &path, &cookie, &without_first).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("请为“预约挂号是否方便”打分"), "{page}");
    assert!(
        page.contains(r#"name="overall" value="5" checked"#),
        "kept: {page}"
    );
    answers[5] = "overall=9".into();
    let (status, _, page) = send_form(&s, &path, &cookie, &answers.join("&")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("“总体满意程度”的打分应为 1 到 5 分"),
        "{page}"
    );
    let long = format!("{}&comment={}", answers[..5].join("&"), "好".repeat(501));
    let (status, _, _) = send_form(&s, &path, &cookie, &format!("{long}&overall=4")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(store.surveyed(&[visit.row.id]).await.unwrap().is_empty());

    // The answer: recorded once, said so; a second is refused.
    answers[5] = "overall=4".into();
    answers[1] = "waiting=2".into();
    let good = format!(
        "{}&comment=%E5%80%99%E8%AF%8A%E5%A4%AA%E4%B9%85",
        answers.join("&")
    );
    let (status, to, _) = send_form(&s, &path, &cookie, &good).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(to.contains("saved=surveyed"), "{to}");
    assert_eq!(
        store.surveyed(&[visit.row.id]).await.unwrap(),
        [visit.row.id]
    );
    let (_, me) = get(&s, "/me?saved=surveyed", Some(&cookie)).await;
    assert!(me.contains("感谢您的评价") && !me.contains(&path));
    let (status, _, page) = send_form(&s, &path, &cookie, &good).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(page.contains("已经评价过了"));

    // Someone else's visit is none of theirs, and their answers stay as they were.
    let other = all.iter().find(|v| v.row.resident_id != rid).unwrap();
    let before = store.surveyed(&[other.row.id]).await.unwrap();
    let (status, _) = get(
        &s,
        &format!("/me/appointments/{}/survey", other.row.id),
        Some(&cookie),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = send_form(
        &s,
        &format!("/me/appointments/{}/survey", other.row.id),
        &cookie,
        &answers.join("&"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(store.surveyed(&[other.row.id]).await.unwrap(), before);

    // It counts: five of six answers satisfied, at the institution visited, in the
    // quarter of the visit.
    let facts = store
        .survey_facts(visit.slot.slot.start.date())
        .await
        .unwrap();
    assert!(facts.iter().any(|f| f.org_id == visit.slot.org_id
        && f.day == visit.slot.slot.start.date()
        && (f.satisfied, f.answers) == (5, 6)));
    let events = store.audit_events(None, 100_000).await.unwrap();
    assert!(events
        .iter()
        .any(|e| e.action == "survey" && e.username == "patient" && e.resident_id == Some(rid)));
}
