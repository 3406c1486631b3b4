use chrono::{NaiveDate, NaiveDateTime};
use dhp_store::{ContractAsk, Guardianship, Store, StoreError, Survey};

use crate::fixture;

fn at(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
}

/// The portal's rows: guardians and a teenager's consent, surveys (once per visit,
/// counted as satisfied of all answers), and contract requests (one open at a time,
/// closed when a doctor signs).
pub async fn portal_rows_keep_their_rules(s: &dyn Store) {
    let b = fixture::district();
    s.insert_batch(&b).await.unwrap();
    let (child, parent, other) = (b.residents[0].id, b.residents[1].id, b.residents[2].id);
    let link = |g| Guardianship {
        child_id: child,
        guardian_id: g,
        relation: "MTH".into(),
        consent_at: None,
    };
    s.add_guardians(&[link(parent), link(parent)])
        .await
        .unwrap();
    // Adding again keeps what is there.
    s.add_guardians(&[link(parent)]).await.unwrap();
    assert_eq!(s.children_of(parent).await.unwrap(), [link(parent)]);
    assert_eq!(s.guardians_of(child).await.unwrap(), [link(parent)]);
    assert!(s.children_of(other).await.unwrap().is_empty());
    s.set_proxy_consent(child, parent, Some(at("2025-06-01 10:00")))
        .await
        .unwrap();
    assert_eq!(
        s.guardians_of(child).await.unwrap()[0].consent_at,
        Some(at("2025-06-01 10:00"))
    );
    s.set_proxy_consent(child, parent, None).await.unwrap();
    assert_eq!(s.guardians_of(child).await.unwrap()[0].consent_at, None);
    assert!(matches!(
        s.set_proxy_consent(child, other, None).await,
        Err(StoreError::NotFound(_))
    ));

    let survey = |appointment_id, score: u8| Survey {
        appointment_id,
        resident_id: parent,
        org_id: b.organisations[3].id,
        answered_at: at("2025-06-02 09:00"),
        visit_at: at("2025-06-01 08:30"),
        items: vec![("overall".into(), score), ("waiting".into(), 3)],
        comment: "好".into(),
    };
    s.record_survey(&survey(900, 5)).await.unwrap();
    assert!(matches!(
        s.record_survey(&survey(900, 1)).await,
        Err(StoreError::Exists(900))
    ));
    s.record_survey(&survey(901, 4)).await.unwrap();
    assert_eq!(s.surveyed(&[899, 900, 901]).await.unwrap().len(), 2);
    let facts = s
        .survey_facts(NaiveDate::from_ymd_opt(2025, 1, 1).unwrap())
        .await
        .unwrap();
    assert_eq!(facts.len(), 2);
    assert!(facts
        .iter()
        .all(|f| (f.satisfied, f.answers) == (1, 2) && f.day.to_string() == "2025-06-01"));
    assert!(s
        .survey_facts(NaiveDate::from_ymd_opt(2025, 6, 2).unwrap())
        .await
        .unwrap()
        .is_empty());

    let ask = ContractAsk {
        id: 0,
        resident_id: parent,
        centre_org_id: b.organisations[3].id,
        renew: true,
        note: "想续约".into(),
        asked_at: at("2025-06-03 11:00"),
        done_at: None,
        done_by: None,
    };
    let id = s.ask_for_contract(&ask).await.unwrap();
    assert!(matches!(
        s.ask_for_contract(&ask).await,
        Err(StoreError::Exists(open)) if open == id
    ));
    let open = s.open_contract_asks(ask.centre_org_id).await.unwrap();
    assert_eq!(open, [ContractAsk { id, ..ask.clone() }]);
    assert_eq!(
        s.close_contract_asks(parent, "doctor", at("2025-06-04 09:00"))
            .await
            .unwrap(),
        1
    );
    assert!(s
        .open_contract_asks(ask.centre_org_id)
        .await
        .unwrap()
        .is_empty());
    let done = s.contract_ask_of(parent).await.unwrap().unwrap();
    assert_eq!(done.done_by.as_deref(), Some("doctor"));
    // Once done, the resident may ask again.
    assert!(s.ask_for_contract(&ask).await.unwrap() > id);
    assert_eq!(s.contract_ask_of(other).await.unwrap(), None);

    // Cleared with the rest.
    s.clear().await.unwrap();
    assert!(s.children_of(parent).await.unwrap().is_empty());
    assert!(s.surveyed(&[900]).await.unwrap().is_empty());
    assert_eq!(s.contract_ask_of(parent).await.unwrap(), None);
}
