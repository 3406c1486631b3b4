//! A resident asks for a family doctor from the portal; the request is a task on the
//! centre's workbench until a doctor signs, which closes it.

use axum::http::StatusCode;
use dhp_core::OrgKind;
use dhp_store::Table;

use super::portal::send_form;
use super::{get, login, site};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_residents_request_reaches_the_workbench_and_a_signature_answers_it() {
    let s = site(2_000).await;
    let store = &*s.state.store;
    let doctor = store.user_by_username("doctor").await.unwrap();
    let orgs = store
        .page(Table::Organisations, 0, 1_000)
        .await
        .unwrap()
        .organisations;
    let parent_kind = |o: &dhp_core::Organisation| {
        o.parent_id
            .and_then(|p| orgs.iter().find(|x| x.id == p))
            .map(|p| p.kind)
    };
    let district_h = orgs
        .iter()
        .find(|o| o.kind == OrgKind::Hospital && parent_kind(o) == Some(OrgKind::District))
        .unwrap();
    let city_h = orgs
        .iter()
        .find(|o| o.kind == OrgKind::Hospital && parent_kind(o) == Some(OrgKind::City))
        .unwrap();
    let centre = orgs.iter().find(|o| Some(o.id) == doctor.org_id).unwrap();
    let on = super::end_date(&s).await;
    // An adult of the doctor's street who never had a contract.
    let residents = store
        .page(Table::Residents, 0, 5_000)
        .await
        .unwrap()
        .residents;
    let mut resident = None;
    for r in residents
        .iter()
        .filter(|r| Some(r.street_org_id) == centre.parent_id && r.age_on(on) >= 18)
    {
        let rec = store
            .programme_records(
                &dhp_store::Cohort::Resident(r.id),
                dhp_store::Reading::Full,
                on,
                r.id - 1,
                1,
            )
            .await
            .unwrap()
            .pop()
            .unwrap();
        if rec.contracts.is_empty() {
            resident = Some(r.clone());
            break;
        }
    }
    let resident = resident.expect("an unsigned adult of the doctor's street");
    let me = super::resident_account(&s, "asker", resident.id).await;
    let (_, page) = get(&s, "/me", Some(&me)).await;
    assert!(
        page.contains("/me/contract/ask") && page.contains("申请签约"),
        "{page}"
    );

    // A note too long changes nothing; a good request is said and waits.
    let long = format!("note={}", "长".repeat(201));
    let (status, _, page) = send_form(&s, "/me/contract/ask", &me, &long).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("留言不能超过 200 个字"));
    assert_eq!(store.contract_ask_of(resident.id).await.unwrap(), None);
    let note = "note=%E6%99%9A%E4%B8%8A%E6%96%B9%E4%BE%BF%E6%8E%A5%E7%94%B5%E8%AF%9D";
    let (status, to, _) = send_form(&s, "/me/contract/ask", &me, note).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(to.contains("saved=asked"), "{to}");
    let (_, page) = get(&s, "/me?saved=asked", Some(&me)).await;
    assert!(page.contains("签约申请已提交") && page.contains("正在等待家庭医生确认"));
    assert!(
        !page.contains("/me/contract/ask\""),
        "no second form while one waits"
    );
    let (status, _, _) = send_form(&s, "/me/contract/ask", &me, "note=").await;
    assert_eq!(status, StatusCode::CONFLICT, "one open request at a time");
    let ask = store.contract_ask_of(resident.id).await.unwrap().unwrap();
    assert_eq!(ask.centre_org_id, centre.id);
    assert!(!ask.renew && ask.note == "晚上方便接电话");

    // The doctor's worklist carries it, with the note.
    let (_, doc, _) = login(&s, "doctor", "doctor").await;
    let doc = doc.unwrap();
    let (status, work) = get(&s, "/workbench", Some(&doc)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(work.contains("居民申请签约：晚上方便接电话"), "{work}");
    assert!(work.contains(&resident.name));
    // Another centre's doctor does not see it.
    assert_eq!(store.open_contract_asks(centre.id).await.unwrap().len(), 1);

    // Signing answers it: gone from the worklist, the resident sees the contract.
    let form = format!(
        "action=sign&district_hospital={}&city_hospital={}",
        district_h.code, city_h.code
    );
    let (status, to, page) = send_form(
        &s,
        &format!("/workbench/resident/{}/contract", resident.id),
        &doc,
        &form,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{to} {page}");
    let done = store.contract_ask_of(resident.id).await.unwrap().unwrap();
    assert_eq!(done.done_by.as_deref(), Some("doctor"));
    let (_, work) = get(&s, "/workbench", Some(&doc)).await;
    assert!(!work.contains("居民申请签约：晚上方便接电话"));
    let (_, page) = get(&s, "/me", Some(&me)).await;
    assert!(page.contains("签约有效期至") && !page.contains("正在等待家庭医生确认"));
    assert!(
        !page.contains("/me/contract/ask"),
        "a fresh contract is not for renewal yet"
    );
    let events = store.audit_events(None, 100_000).await.unwrap();
    assert!(events.iter().any(|e| e.action == "contract-ask"
        && e.username == "asker"
        && e.resident_id == Some(resident.id)));
}
