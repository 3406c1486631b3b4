//! Stories of the programme, contract, surveillance, conditional-create and login-failure stores.

use super::*;

/// A cohort's records come back whole: every row of each resident, programme
/// encounters only when asked, residents in id order and paged.
pub async fn programme_records_read_whole_records(s: &dyn Store) {
    use dhp_store::{Cohort, Reading};
    let b = fixture::district();
    s.insert_batch(&b).await.unwrap();
    let today: chrono::NaiveDate = "2025-06-15".parse().unwrap();
    let all = s
        .programme_records(&Cohort::All, Reading::Full, today, 0, 100)
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|r| r.resident.id).collect::<Vec<_>>(),
        b.residents.iter().map(|r| r.id).collect::<Vec<_>>()
    );
    for r in &all {
        let id = r.resident.id;
        assert_eq!(
            r.contracts.len(),
            b.contracts.iter().filter(|c| c.resident_id == id).count()
        );
        assert_eq!(
            r.encounters.len(),
            b.encounters.iter().filter(|c| c.resident_id == id).count()
        );
        assert_eq!(
            r.conditions.len(),
            b.conditions.iter().filter(|c| c.resident_id == id).count()
        );
        assert_eq!(
            r.observations.len(),
            b.observations
                .iter()
                .filter(|c| c.resident_id == id)
                .count()
        );
        assert_eq!(
            r.immunizations.len(),
            b.immunizations
                .iter()
                .filter(|c| c.resident_id == id)
                .count()
        );
    }
    let programmes = s
        .programme_records(&Cohort::All, Reading::Programmes, today, 0, 100)
        .await
        .unwrap();
    let encounters: usize = programmes.iter().map(|r| r.encounters.len()).sum();
    assert_eq!(
        encounters,
        b.encounters
            .iter()
            .filter(|e| e.programme.is_some())
            .count()
    );
    // Paging, and a sparse cohort read by id list.
    let page = s
        .programme_records(&Cohort::All, Reading::Full, today, b.residents[1].id, 2)
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|r| r.resident.id).collect::<Vec<_>>(),
        [b.residents[2].id, b.residents[3].id]
    );
    let one = s
        .programme_records(&Cohort::Resident(202), Reading::Full, today, 0, 10)
        .await
        .unwrap();
    assert_eq!((one.len(), one[0].contracts.len()), (1, 1));
    let area = s
        .programme_records(
            &Cohort::Area(b.residents[0].street_org_id),
            Reading::Full,
            today,
            0,
            100,
        )
        .await
        .unwrap();
    assert!(
        area.iter()
            .all(|r| r.resident.street_org_id == b.residents[0].street_org_id)
            && !area.is_empty()
    );
    // A doctor's panel: contracts in force with them today.
    let panel = s
        .programme_records(
            &Cohort::Panel(b.contracts[1].doctor_id),
            Reading::Programmes,
            today,
            0,
            100,
        )
        .await
        .unwrap();
    let expect: Vec<i64> = b
        .contracts
        .iter()
        .filter(|c| c.doctor_id == b.contracts[1].doctor_id && c.covers(today))
        .map(|c| c.resident_id)
        .collect();
    assert_eq!(
        panel.iter().map(|r| r.resident.id).collect::<Vec<_>>(),
        expect
    );
}

/// A write guarded on a resident's contracts fails, writing nothing, once they change.
pub async fn contract_guards_catch_concurrent_changes(s: &dyn Store) {
    use dhp_store::Guard;
    let b = fixture::district();
    s.insert_batch(&b).await.unwrap();
    let mine: Vec<_> = b
        .contracts
        .iter()
        .filter(|c| c.resident_id == 200)
        .cloned()
        .collect();
    let guard = Guard::contracts(200, &mine);
    let mut renewed = mine[1].clone();
    renewed.id = 900;
    renewed.start = "2026-03-01".parse().unwrap();
    renewed.end = "2027-02-28".parse().unwrap();
    let set = |c: &dhp_core::Contract| WriteSet {
        core: Batch {
            contracts: vec![c.clone()],
            ..Batch::default()
        },
        guards: vec![guard.clone()],
        ..WriteSet::default()
    };
    s.write_resources(&set(&renewed)).await.unwrap();
    assert_eq!(
        s.count(Table::Contracts).await.unwrap(),
        b.contracts.len() as i64 + 1
    );
    // The same guard again: the contracts changed since they were read.
    let mut other = renewed.clone();
    other.id = 901;
    assert!(matches!(
        s.write_resources(&set(&other)).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        s.count(Table::Contracts).await.unwrap(),
        b.contracts.len() as i64 + 1
    );
    // A fresh guard passes.
    let now: Vec<_> = mine.iter().cloned().chain([renewed]).collect();
    let fresh = WriteSet {
        core: Batch {
            contracts: vec![other],
            ..Batch::default()
        },
        guards: vec![Guard::contracts(200, &now)],
        ..WriteSet::default()
    };
    s.write_resources(&fresh).await.unwrap();
}

pub async fn surveillance_reports_counts_and_signals(s: &dyn Store) {
    use chrono::NaiveDate;
    use dhp_core::surveillance::{
        merge_alarms, Alarm, CaseReport, CaseStatus, DateBasis, SentinelReport, SignalEvent,
        SignalStatus,
    };
    let day = |d: u32| NaiveDate::from_ymd_opt(2026, 6, d).unwrap();
    let at = |d: u32, h: u32| day(d).and_hms_opt(h, 0, 0).unwrap();
    let report = |id, disease: &str, street: &str, onset: u32, reported: u32, status| CaseReport {
        id,
        disease: disease.into(),
        resident_id: None,
        reporting_org: "H1".into(),
        street: street.into(),
        status,
        onset_date: day(onset),
        diagnosed_at: at(reported, 8),
        reported_at: at(reported, 9),
    };
    let reports = vec![
        report(1, "hfmd", "S1", 1, 2, CaseStatus::Confirmed),
        report(2, "hfmd", "S1", 1, 3, CaseStatus::Clinical),
        report(3, "hfmd", "S2", 2, 3, CaseStatus::Suspected),
        report(4, "hfmd", "S1", 1, 3, CaseStatus::Excluded),
    ];
    s.insert_case_reports(&reports, "api").await.unwrap();
    assert_eq!(s.case_report(2).await.unwrap(), reports[1]);
    let listed = s.case_reports(day(1), day(30), 10).await.unwrap();
    assert_eq!(listed.len(), 4);
    assert!(listed[0].reported_at >= listed[3].reported_at);
    let mut by_onset = s
        .case_counts(DateBasis::Onset, day(1), day(30))
        .await
        .unwrap();
    by_onset.sort_by(|a, b| (&a.street, a.day).cmp(&(&b.street, b.day)));
    let got: Vec<(&str, u32, i64)> = by_onset
        .iter()
        .map(|c| (c.street.as_str(), chrono::Datelike::day(&c.day), c.count))
        .collect();
    // The excluded case does not count.
    assert_eq!(got, vec![("S1", 1, 2), ("S2", 2, 1)]);
    let by_report = s
        .case_counts(DateBasis::Report, day(3), day(3))
        .await
        .unwrap();
    assert_eq!(by_report.iter().map(|c| c.count).sum::<i64>(), 2);

    // Sentinel: zero reports are rows; a corrected count replaces the first.
    let sentinel = |site: &str, d, count| SentinelReport {
        site: site.into(),
        date: day(d),
        syndrome: "fever".into(),
        count,
    };
    s.put_sentinel_reports(
        &[
            sentinel("A", 1, 0),
            sentinel("A", 2, 3),
            sentinel("B", 1, 5),
        ],
        at(2, 10),
    )
    .await
    .unwrap();
    s.put_sentinel_reports(&[sentinel("A", 2, 4)], at(2, 11))
        .await
        .unwrap();
    let rows = s.sentinel_reports(day(1), day(2)).await.unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows.iter()
            .find(|r| r.site == "A" && r.date == day(2))
            .unwrap()
            .count,
        4
    );
    let mut last = s.sentinel_last_reports(day(30)).await.unwrap();
    last.sort();
    assert_eq!(
        last,
        vec![("A".to_string(), day(2)), ("B".to_string(), day(1))]
    );

    // Signals: merged, saved, extended, verified with a guard.
    let alarm = |d| Alarm {
        disease: "hfmd".into(),
        area: "S1".into(),
        algorithm: "mpm".into(),
        day: day(d),
        observed: 9.0,
        expected: 2.0,
        statistic: 9.0,
        threshold: 4.5,
        counts: vec![1, 2, 9],
    };
    let mut signals = s.signals(day(1)).await.unwrap();
    assert!(signals.is_empty());
    merge_alarms(&mut signals, &[alarm(5)], 7, at(5, 6));
    s.save_signals(&mut signals).await.unwrap();
    let id = signals[0].id;
    assert!(id > 0);
    let mut stored = s.signals(day(1)).await.unwrap();
    assert_eq!(stored, signals);
    merge_alarms(&mut stored, &[alarm(6)], 7, at(6, 6));
    s.save_signals(&mut stored).await.unwrap();
    let one = s.signal(id).await.unwrap();
    assert_eq!(
        (one.first_day, one.last_day, one.alarm_days),
        (day(5), day(6), 2)
    );
    let step = SignalEvent {
        signal_id: id,
        at: at(6, 9),
        username: "cdc".into(),
        from: SignalStatus::New,
        to: SignalStatus::Verifying,
        note: "calling the kindergarten".into(),
    };
    s.move_signal(&one, &step).await.unwrap();
    // The same step again finds the signal already moved.
    assert!(matches!(
        s.move_signal(&one, &step).await,
        Err(StoreError::Conflict(_))
    ));
    let moved = s.signal(id).await.unwrap();
    assert_eq!(moved.status, SignalStatus::Verifying);
    assert_eq!(moved.verifying_at, Some(at(6, 9)));
    assert_eq!(moved.response_hours(), Some(27.0)); // raised 5th 06:00, taken 6th 09:00
    let history = s.signal_events(id).await.unwrap();
    assert_eq!(history, vec![step]);
    assert!(matches!(
        s.signal(id + 1000).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn conditional_creates_are_one_step(s: &dyn Store) {
    use dhp_store::Guard;
    let b = fixture::district();
    s.insert_batch(&b).await.unwrap();
    let today: chrono::NaiveDate = "2026-06-30".parse().unwrap();
    let filter = ResidentFilter {
        name: Some("欧阳并发".into()),
        ..ResidentFilter::default()
    };
    let create = |id: i64| {
        let mut r = b.residents[0].clone();
        r.id = id;
        r.name = "欧阳并发".into();
        r.identity_number = dhp_core::IdentityNumber::parse(
            dhp_core::IdentityNumber::compose("310118", r.birth_date, 900 + id as u16 - 1000)
                .as_str(),
            today,
        )
        .unwrap();
        WriteSet {
            core: Batch {
                residents: vec![r],
                ..Batch::default()
            },
            guards: vec![Guard::NoResident {
                filter: Box::new(filter.clone()),
                scope: dhp_core::access::Scope::All,
                today,
            }],
            ..WriteSet::default()
        }
    };
    let (a, b2, c, d) = (create(1000), create(1001), create(1002), create(1003));
    // Each answer of "exists" names a record that can be read at once: the one found
    // may be another writer's work not yet committed (SQLite's shared transaction),
    // and the answer waits for that commit.
    let write = |w: WriteSet| async move {
        let r = s.write_resources(&w).await;
        if let Err(StoreError::Exists(id)) = &r {
            s.get(Table::Residents, *id)
                .await
                .unwrap_or_else(|e| panic!("resident {id} found but not readable: {e}"));
        }
        r
    };
    let results = tokio::join!(write(a), write(b2), write(c), write(d));
    let results = [results.0, results.1, results.2, results.3];
    let won: Vec<usize> = (0..4).filter(|i| results[*i].is_ok()).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    let winner = 1000 + won[0] as i64;
    for r in &results {
        match r {
            Ok(()) => {}
            Err(StoreError::Exists(id)) => assert_eq!(*id, winner),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(
        s.count(Table::Residents).await.unwrap(),
        b.residents.len() as i64 + 1
    );
}

pub async fn login_failures_are_counted_and_forgotten(s: &dyn Store) {
    let t = |m: u32| {
        chrono::NaiveDate::from_ymd_opt(2026, 12, 1)
            .unwrap()
            .and_hms_opt(9, m, 0)
            .unwrap()
    };
    let old = t(0);
    s.record_login_failure("doctor", "10.0.0.1", t(1), old)
        .await
        .unwrap();
    s.record_login_failure("doctor", "10.0.0.2", t(2), old)
        .await
        .unwrap();
    s.record_login_failure("nobody", "10.0.0.1", t(3), old)
        .await
        .unwrap();
    let f = s.login_failures("doctor", "10.0.0.1", t(0)).await.unwrap();
    assert_eq!(f.account, vec![t(1), t(2)]);
    assert_eq!(f.address, 2, "two names tried from 10.0.0.1");
    let f = s.login_failures("doctor", "10.0.0.1", t(2)).await.unwrap();
    assert_eq!(f.account, vec![t(2)]);
    assert_eq!(f.address, 1);
    // A later failure forgets those before the window.
    s.record_login_failure("doctor", "10.0.0.3", t(30), t(2))
        .await
        .unwrap();
    let f = s.login_failures("doctor", "10.0.0.1", t(0)).await.unwrap();
    assert_eq!(f.account, vec![t(2), t(30)]);
    s.clear_login_failures("doctor").await.unwrap();
    let f = s.login_failures("doctor", "10.0.0.1", t(0)).await.unwrap();
    assert!(f.account.is_empty());
    assert_eq!(f.address, 1, "other names' failures stay");
}
