//! Stories of two-way referral and result recognition: a referral made with a reserved
//! slot books it in the same transaction, brings the patient into the receiving
//! hospital's scope, moves forward only (a stale step is refused), and a test order
//! meets the recognised result that stands unless an exception reason is given — an
//! imaging examination meets the resident's imaging studies, assessed as imaging.

use dhp_core::booking::{Channel, Status};
use dhp_core::referral::{Act, Direction, NewReferral, Priority, TaskStatus};
use dhp_core::{EncounterType, ImagingStudy, Observation};
use dhp_store::{Booking, NewOrder, ReferralFilter, SlotQuery};

use super::*;

pub async fn referrals_and_recognition_keep_their_rules(s: &dyn Store) {
    let mut b = fixture::district();
    // Resident 204: an HbA1c from the community centre (org 4) ten days ago, and one
    // from hospital 7 (not assessed) two days ago.
    b.encounters.push(fixture::encounter(
        420,
        204,
        EncounterType::Outpatient,
        None,
        4,
        "2029-11-21 09:00",
    ));
    b.encounters.push(fixture::encounter(
        421,
        204,
        EncounterType::Outpatient,
        None,
        7,
        "2029-11-29 09:00",
    ));
    // And a chest CT at the centre in the same encounter, under the same number as the
    // HbA1c (studies and results keep their own numbers).
    b.imaging_studies.push(ImagingStudy {
        id: 620,
        resident_id: 204,
        encounter_id: 420,
        org_id: 4,
        code: "24627-2".into(),
        modality: "CT".into(),
        started: fixture::at("2029-11-21 09:30"),
        uid: "urn:oid:2.25.620".into(),
        findings: "右肺上叶磨玻璃结节".into(),
    });
    for (id, enc, when) in [
        (620, 420, "2029-11-21 09:10"),
        (621, 421, "2029-11-29 09:10"),
    ] {
        b.observations.push(Observation {
            id,
            resident_id: 204,
            encounter_id: Some(enc),
            code: "4548-4".into(),
            value: 7.9,
            unit: "%".into(),
            effective: fixture::at(when),
        });
    }
    s.insert_batch(&b).await.unwrap();
    let today = fixture::date("2029-12-01");
    let now = fixture::at("2029-12-01 10:00");

    // Up-referral with a reserved slot at hospital 6: both written together.
    let schedule = cardiology();
    s.publish_schedule(
        &schedule,
        &schedule.slots(fixture::date("2030-01-07"), 1).unwrap(),
    )
    .await
    .unwrap();
    let before = s.resident_access_facts(204, today).await.unwrap();
    assert!(!before.referred_or_booked.contains(&6));
    let up = NewReferral {
        resident_id: 204,
        direction: Direction::Up,
        from_org: 4,
        to_org: 6,
        reason: "两次随访血糖控制不满意".into(),
        priority: Priority::Urgent,
        diagnosis: Some("E11.9".into()),
        appointment_id: None,
        summary: None,
        follow_up: None,
    };
    let booking = Booking {
        appointment_id: 9001,
        slot_id: 1,
        resident_id: 204,
        channel: Channel::Referral,
        at: now,
    };
    let id = s.refer(&up, "doctor", now, Some(&booking)).await.unwrap();
    let (row, steps) = s.referral(id).await.unwrap();
    assert_eq!(
        (row.status, row.appointment_id),
        (TaskStatus::Requested, Some(9001))
    );
    assert_eq!(steps.len(), 1);
    assert_eq!(s.slot_state(1).await.unwrap().booked, 1);
    assert!(s
        .resident_access_facts(204, today)
        .await
        .unwrap()
        .referred_or_booked
        .contains(&6));
    // The same slot again in another referral: the booking conflicts, nothing is written.
    let again = Booking {
        appointment_id: 9002,
        ..booking.clone()
    };
    assert!(matches!(
        s.refer(&up, "doctor", now, Some(&again)).await,
        Err(StoreError::Conflict(_))
    ));
    // A plain booking brings its patient into the hospital's care too.
    assert!(!s
        .resident_access_facts(202, today)
        .await
        .unwrap()
        .referred_or_booked
        .contains(&6));
    s.book(&Booking {
        appointment_id: 9003,
        slot_id: 2,
        resident_id: 202,
        channel: Channel::Public,
        at: now,
    })
    .await
    .unwrap();
    assert!(s
        .resident_access_facts(202, today)
        .await
        .unwrap()
        .referred_or_booked
        .contains(&6));
    let inbox = ReferralFilter {
        org: 6,
        received: true,
        direction: None,
        open_only: true,
    };
    // The pool's search: earliest first, narrowed by organisation and service.
    let query = SlotQuery {
        org_id: Some(6),
        service: Some("cardiology".into()),
        practitioner_id: None,
        from: fixture::at("2030-01-07 00:00"),
        to: fixture::at("2030-01-08 00:00"),
        channel: Channel::Referral,
        now,
        limit: 2,
    };
    let found = s.find_slots(&query).await.unwrap();
    assert_eq!(found.iter().map(|f| f.slot.id).collect::<Vec<_>>(), [1, 2]);
    assert!(s
        .find_slots(&SlotQuery {
            service: Some("dermatology".into()),
            ..query.clone()
        })
        .await
        .unwrap()
        .is_empty());
    let day = s
        .appointments_at(6, fixture::date("2030-01-07"))
        .await
        .unwrap();
    // The referral's booking at 08:00, the plain one at 08:30.
    assert_eq!(day.len(), 2);
    assert_eq!(
        (day[0].appointment.resident_id, day[0].service.as_str()),
        (204, "cardiology")
    );
    let (rows, total) = s.referrals(&inbox, 10, 0).await.unwrap();
    assert_eq!((rows.len(), total), (1, 1));
    assert_eq!(s.appointments_of(204).await.unwrap().len(), 1);
    assert_eq!(
        s.appointments_of(204).await.unwrap()[0].status,
        Status::Booked
    );

    // The task moves forward; a step taken from a status read before is refused.
    let later = fixture::at("2029-12-01 11:00");
    assert_eq!(
        s.referral_step(
            id,
            TaskStatus::Requested,
            Act::Accept,
            "clinician",
            None,
            later
        )
        .await
        .unwrap(),
        TaskStatus::Accepted
    );
    assert!(matches!(
        s.referral_step(
            id,
            TaskStatus::Requested,
            Act::Reject,
            "other",
            Some("满员"),
            later
        )
        .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.referral_step(
            id,
            TaskStatus::Accepted,
            Act::Receive,
            "clinician",
            None,
            later
        )
        .await,
        Err(StoreError::Conflict(_))
    ));
    let (row, steps) = s.referral(id).await.unwrap();
    assert_eq!(row.status, TaskStatus::Accepted);
    assert_eq!(
        steps
            .iter()
            .map(|s| (s.status, s.by_user.as_str()))
            .collect::<Vec<_>>(),
        [
            (TaskStatus::Requested, "doctor"),
            (TaskStatus::Accepted, "clinician")
        ]
    );
    // A rejected referral no longer opens the record to the hospital.
    let other = s
        .refer(
            &NewReferral {
                to_org: 7,
                ..up.clone()
            },
            "doctor",
            now,
            None,
        )
        .await
        .unwrap();
    assert!(s
        .resident_access_facts(204, today)
        .await
        .unwrap()
        .referred_or_booked
        .contains(&7));
    s.referral_step(
        other,
        TaskStatus::Requested,
        Act::Reject,
        "h7",
        Some("无床位"),
        later,
    )
    .await
    .unwrap();
    assert!(!s
        .resident_access_facts(204, today)
        .await
        .unwrap()
        .referred_or_booked
        .contains(&7));

    // Recognition: only the assessed centre's result stands.
    s.record_assessment(
        4,
        "laboratory",
        fixture::date("2029-01-01"),
        fixture::date("2029-12-31"),
        true,
    )
    .await
    .unwrap();
    let prior = s.prior_results(204, "4548-4").await.unwrap();
    assert_eq!(prior.len(), 2);
    assert_eq!(
        (prior[0].prior.result_id, prior[0].prior.org_assessed),
        (621, false)
    );
    assert!(prior[1].prior.org_assessed);
    let order = NewOrder {
        resident_id: 204,
        code: "4548-4".into(),
        org_id: 6,
        ordered_by: "clinician".into(),
        at: later,
        use_standing: false,
        exception: None,
        note: None,
    };
    // Told no result stands while one does: the check is made again and refuses.
    assert!(matches!(
        s.order_test(&order, None).await,
        Err(StoreError::Conflict(_))
    ));
    // Without a reason the repeat is refused; with one it is ordered.
    assert!(matches!(
        s.order_test(&order, Some(620)).await,
        Err(StoreError::Invalid(_))
    ));
    let with_reason = NewOrder {
        exception: Some("condition-changed".into()),
        ..order.clone()
    };
    s.order_test(&with_reason, Some(620)).await.unwrap();
    let reuse = NewOrder {
        use_standing: true,
        ..order.clone()
    };
    s.order_test(&reuse, Some(620)).await.unwrap();
    let orders = s.orders_of(204).await.unwrap();
    assert_eq!(orders.len(), 2);
    let f = s.recognition_figures(today, today).await.unwrap();
    assert_eq!((f.met_standing, f.recognised), (2, 1));
    assert_eq!(f.exceptions, [("condition-changed".to_string(), 1)]);
    assert_eq!(f.by_month, [("2029-12".to_string(), 1)]);

    // Imaging: the centre's laboratory assessment does not make its images recognised.
    let ct = |p: &[dhp_store::PriorResult]| {
        p.iter()
            .map(|r| (r.prior.result_id, r.prior.org_assessed, r.finding.clone()))
            .collect::<Vec<_>>()
    };
    let study = dhp_store::Finding::Study {
        modality: "CT".into(),
        findings: "右肺上叶磨玻璃结节".into(),
    };
    assert_eq!(
        ct(&s.prior_results(204, "24627-2").await.unwrap()),
        [(620, false, study.clone())]
    );
    s.record_assessment(
        4,
        "imaging",
        fixture::date("2029-01-01"),
        fixture::date("2029-12-31"),
        true,
    )
    .await
    .unwrap();
    assert_eq!(
        ct(&s.prior_results(204, "24627-2").await.unwrap()),
        [(620, true, study)]
    );
    let scan = NewOrder {
        code: "24627-2".into(),
        ..order.clone()
    };
    assert!(matches!(
        s.order_test(&scan, None).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.order_test(&scan, Some(620)).await,
        Err(StoreError::Invalid(_))
    ));
    s.order_test(
        &NewOrder {
            use_standing: true,
            ..scan.clone()
        },
        Some(620),
    )
    .await
    .unwrap();
    let f = s.recognition_figures(today, today).await.unwrap();
    assert_eq!((f.met_standing, f.recognised), (3, 2));
    let studies = s.imaging_of(204).await.unwrap();
    assert_eq!(studies.len(), 1);
    assert_eq!(studies[0].uid, "urn:oid:2.25.620");
    assert!(s.imaging_of(205).await.unwrap().is_empty());
}
