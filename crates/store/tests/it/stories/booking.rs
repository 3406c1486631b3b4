//! Stories of the slot pool: no slot is booked beyond its capacity under concurrency,
//! reserved places wait for referrals until their release, a cancellation gives its
//! place back, and a resident's conflicting or late bookings are refused.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use chrono::NaiveTime;
use dhp_core::booking::{Channel, Schedule, Status, Step};
use dhp_store::Booking;

use super::*;

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Run every future at once (interleaved on this task; each holds its own database
/// connection and transaction, so the database sees them concurrently).
async fn join_all<T>(futures: Vec<Boxed<'_, T>>) -> Vec<T> {
    let mut futures: Vec<Option<Boxed<'_, T>>> = futures.into_iter().map(Some).collect();
    let mut out: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, slot) in futures.iter_mut().enumerate() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        out[i] = Some(v);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|v| v.expect("every future ran"))
        .collect()
}

pub(crate) fn cardiology() -> Schedule {
    Schedule {
        id: 1,
        org_id: 6,
        service: "cardiology".into(),
        practitioner_id: None,
        weekdays: [true; 7],
        first_start: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
        slot_minutes: 30,
        slots_per_day: 4,
        capacity: 7,
        referral_share: 50,
        release_hours: 48,
        horizon_days: 7,
    }
}

pub async fn no_slot_is_booked_beyond_its_capacity(s: &dyn Store) {
    let mut b = fixture::district();
    for k in 0..240u16 {
        b.residents.push(fixture::resident(
            1000 + i64::from(k),
            "1970-05-05",
            10 + k,
            100,
        ));
    }
    s.insert_batch(&b).await.unwrap();
    let schedule = cardiology();
    let slots = schedule.slots(fixture::date("2030-01-07"), 1).unwrap();
    assert_eq!(slots.len(), 28);
    s.publish_schedule(&schedule, &slots).await.unwrap();
    let now = fixture::at("2029-12-01 09:00");
    let book = |appointment: i64, slot: i64, resident: i64, channel: Channel| {
        Box::pin(async move {
            s.book(&Booking {
                appointment_id: appointment,
                slot_id: slot,
                resident_id: resident,
                channel,
                at: now,
            })
            .await
        }) as Boxed<'_, Result<(), StoreError>>
    };

    // 240 referrals at once at one slot of 7 places: exactly 7 are booked.
    let tries = (0..240).map(|k| book(10_000 + k, 1, 1000 + k, Channel::Referral));
    let results = join_all(tries.collect()).await;
    let booked: Vec<i64> = (0..240).filter(|k| results[*k as usize].is_ok()).collect();
    assert_eq!(
        booked.len(),
        7,
        "{:?}",
        results
            .iter()
            .filter(|r| r.is_err())
            .take(3)
            .collect::<Vec<_>>()
    );
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(matches!(r, StoreError::Conflict(_)), "{r}");
    }
    assert_eq!(s.slot_state(1).await.unwrap().booked, 7);
    let mut holders = 0;
    for k in 0..240 {
        holders += s.appointments_of(1000 + k).await.unwrap().len();
    }
    assert_eq!(holders, 7, "one appointment per place, none beyond");

    // Before their release, the 4 reserved places (half of 7, rounded up) wait for
    // referrals: 60 public bookings at the next slot get the other 3.
    let tries = (0..60).map(|k| book(20_000 + k, 2, 1100 + k, Channel::Public));
    let results = join_all(tries.collect()).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 3);
    assert_eq!(s.slot_state(2).await.unwrap().booked, 3);

    // A cancellation gives its place back, once; a cancelled appointment stays so.
    let first = booked[0];
    let mine = s.appointments_of(1000 + first).await.unwrap();
    let later = fixture::at("2029-12-02 10:00");
    assert_eq!(
        s.appointment_step(mine[0].id, Step::Cancel, Some("pat"), later)
            .await
            .unwrap(),
        Status::Cancelled
    );
    assert_eq!(s.slot_state(1).await.unwrap().booked, 6);
    assert!(matches!(
        s.appointment_step(mine[0].id, Step::CheckIn, None, later)
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.slot_state(1).await.unwrap().booked, 6);
    let again = s.appointments_of(1000 + first).await.unwrap();
    assert_eq!(again[0].cancel_reason.as_deref(), Some("pat"));
    let outsider = (0..240).find(|k| !booked.contains(k)).unwrap();
    s.book(&Booking {
        appointment_id: 30_000,
        slot_id: 1,
        resident_id: 1000 + outsider,
        channel: Channel::Referral,
        at: later,
    })
    .await
    .unwrap();
    assert_eq!(s.slot_state(1).await.unwrap().booked, 7);

    // The same resident cannot hold a second cardiology booking that day, nor book a
    // slot that has begun; nothing is written either way.
    let second = s
        .book(&Booking {
            appointment_id: 30_001,
            slot_id: 3,
            resident_id: 1000 + outsider,
            channel: Channel::Referral,
            at: later,
        })
        .await;
    assert!(matches!(second, Err(StoreError::Conflict(_))), "{second:?}");
    let late = s
        .book(&Booking {
            appointment_id: 30_002,
            slot_id: 4,
            resident_id: 1239,
            channel: Channel::Referral,
            at: fixture::at("2030-01-07 09:45"),
        })
        .await;
    assert!(matches!(late, Err(StoreError::Invalid(_))), "{late:?}");
    assert_eq!(s.slot_state(3).await.unwrap().booked, 0);
    assert_eq!(s.slot_state(4).await.unwrap().booked, 0);
    assert!(matches!(
        s.slot_state(999).await,
        Err(StoreError::NotFound(_))
    ));
    // A reschedule is one step: the old booking cancelled with its reason, the new one
    // made; into a full slot, neither.
    let moved = Booking {
        appointment_id: 30_003,
        slot_id: 5,
        resident_id: 1000 + outsider,
        channel: Channel::Referral,
        at: later,
    };
    s.reschedule(30_000, "pat", &moved).await.unwrap();
    assert_eq!(s.slot_state(1).await.unwrap().booked, 6);
    assert_eq!(s.slot_state(5).await.unwrap().booked, 1);
    let full = Booking {
        appointment_id: 30_004,
        slot_id: 2,
        channel: Channel::Public,
        ..moved.clone()
    };
    assert!(matches!(
        s.reschedule(30_003, "pat", &full).await,
        Err(StoreError::Conflict(_))
    ));
    let mine = s.appointments_of(1000 + outsider).await.unwrap();
    let status: Vec<(i64, Status)> = mine.iter().map(|a| (a.id, a.status)).collect();
    assert_eq!(
        status,
        vec![(30_000, Status::Cancelled), (30_003, Status::Booked)]
    );
    assert_eq!(s.slot_state(5).await.unwrap().booked, 1);
    assert!(matches!(
        s.reschedule(
            30_003,
            "pat",
            &Booking {
                resident_id: 1239,
                ..full
            }
        )
        .await,
        Err(StoreError::Invalid(_))
    ));

    // At the end of the day, what was booked and not attended is a no-show, once.
    let night = fixture::at("2030-01-07 23:59");
    assert_eq!(s.mark_no_shows(night).await.unwrap(), 9);
    assert_eq!(s.slot_state(1).await.unwrap().booked, 0);
    assert_eq!(s.slot_state(2).await.unwrap().booked, 0);
    assert_eq!(s.slot_state(5).await.unwrap().booked, 1, "tomorrow's stays");
    assert_eq!(s.mark_no_shows(night).await.unwrap(), 0);

    // Counted again from the appointments themselves: nothing beyond capacity, every
    // counter true.
    assert_eq!(s.pool_faults().await.unwrap(), (0, 0));
}

/// A FHIR write set books and steps through the pool's guard in its own transaction:
/// two bookings for one place fail together, one is written with the set, a step moves
/// the appointment on and counts its version; the pool's searches page and scope.
pub async fn write_sets_book_through_the_pools_guard(s: &dyn Store) {
    use dhp_core::access::Scope;
    use dhp_core::query::DateCond;
    use dhp_store::{AppointmentFilter, AppointmentStep, ScheduleFilter, SlotFilter, WriteSet};

    let mut b = fixture::district();
    for k in 0..3u16 {
        b.residents.push(fixture::resident(
            2000 + i64::from(k),
            "1970-05-05",
            10 + k,
            100,
        ));
    }
    s.insert_batch(&b).await.unwrap();
    let schedule = Schedule {
        capacity: 1,
        referral_share: 0,
        ..cardiology()
    };
    let slots = schedule.slots(fixture::date("2030-01-07"), 1).unwrap();
    s.publish_schedule(&schedule, &slots).await.unwrap();
    let now = fixture::at("2029-12-01 09:00");
    let booking = |appointment: i64, resident: i64| Booking {
        appointment_id: appointment,
        slot_id: 1,
        resident_id: resident,
        channel: Channel::Public,
        at: now,
    };
    let two = WriteSet {
        bookings: vec![booking(50, 2000), booking(51, 2001)],
        ..WriteSet::default()
    };
    assert!(matches!(
        s.write_resources(&two).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.slot_state(1).await.unwrap().booked, 0);
    assert!(
        s.appointment(50).await.unwrap().is_none(),
        "nothing of the set"
    );
    let one = WriteSet {
        bookings: vec![booking(50, 2000)],
        ..WriteSet::default()
    };
    s.write_resources(&one).await.unwrap();
    let a = s.appointment(50).await.unwrap().unwrap();
    assert_eq!(
        (a.row.status, a.version, a.slot.booked),
        (Status::Booked, 1, 1)
    );
    assert_eq!(a.slot.service, "cardiology");
    // A step decided on a status that has moved meanwhile writes nothing.
    let stale = WriteSet {
        appointment_steps: vec![AppointmentStep {
            appointment_id: 50,
            step: Step::Cancel,
            reason: Some("pat".into()),
            at: now,
            from: Status::CheckedIn,
        }],
        ..WriteSet::default()
    };
    assert!(matches!(
        s.write_resources(&stale).await,
        Err(StoreError::Conflict(_))
    ));
    let cancel = WriteSet {
        appointment_steps: vec![AppointmentStep {
            from: Status::Booked,
            ..stale.appointment_steps[0].clone()
        }],
        ..WriteSet::default()
    };
    s.write_resources(&cancel).await.unwrap();
    let a = s.appointment(50).await.unwrap().unwrap();
    assert_eq!(
        (a.row.status, a.version, a.slot.booked),
        (Status::Cancelled, 2, 0)
    );
    assert_eq!(a.row.cancel_reason.as_deref(), Some("pat"));
    s.write_resources(&WriteSet {
        bookings: vec![booking(52, 2001)],
        ..WriteSet::default()
    })
    .await
    .unwrap();

    // Searches: slots by status and start, paged with the total; appointments by slot
    // and status, within a scope.
    let (found, total) = s
        .search_slots(&SlotFilter {
            statuses: vec!["free".into()],
            start: vec![DateCond::Lt(fixture::at("2030-01-08 00:00"))],
            limit: 2,
            offset: 0,
            ..SlotFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(total, 3, "slot 1 is full: the other three of the first day");
    assert_eq!(found.iter().map(|x| x.slot.id).collect::<Vec<_>>(), [2, 3]);
    let (busy, _) = s
        .search_slots(&SlotFilter {
            statuses: vec!["busy".into()],
            limit: 10,
            ..SlotFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(busy.iter().map(|x| x.slot.id).collect::<Vec<_>>(), [1]);
    let filter = |scope: Scope, statuses: Vec<String>| AppointmentFilter {
        ids: Vec::new(),
        residents: Vec::new(),
        slots: vec![1],
        orgs: Vec::new(),
        practitioners: Vec::new(),
        statuses,
        services: vec!["cardiology".into()],
        date: Vec::new(),
        scope,
        today: fixture::date("2029-12-01"),
        limit: 10,
        offset: 0,
    };
    let (all, n) = s
        .search_appointments(&filter(Scope::All, Vec::new()))
        .await
        .unwrap();
    assert_eq!((n, all.len()), (2, 2));
    let (booked, _) = s
        .search_appointments(&filter(Scope::All, vec!["booked".into()]))
        .await
        .unwrap();
    assert_eq!(booked.iter().map(|a| a.row.id).collect::<Vec<_>>(), [52]);
    let (mine, n) = s
        .search_appointments(&filter(Scope::Resident(2000), Vec::new()))
        .await
        .unwrap();
    assert_eq!((n, mine[0].row.id), (1, 50));
    let (sc, n) = s
        .search_schedules(&ScheduleFilter {
            orgs: vec![schedule.org_id],
            limit: 10,
            ..ScheduleFilter::default()
        })
        .await
        .unwrap();
    assert_eq!((n, sc[0].clone()), (1, schedule.clone()));
    assert_eq!(s.pool_faults().await.unwrap(), (0, 0));

    // The reminder outbox, written with each booking: the day before and two hours
    // before; a cancelled one's are voided in the cancelling transaction; a failure is tried again until the last attempt, then recorded failed.
    use dhp_store::Delivery;
    let queued = s.reminders_of(52).await.unwrap();
    assert_eq!(
        queued
            .iter()
            .map(|r| (r.kind.as_str(), r.due, r.status.as_str()))
            .collect::<Vec<_>>(),
        [
            ("day-before", fixture::at("2030-01-06 08:00"), "pending"),
            ("two-hours", fixture::at("2030-01-07 06:00"), "pending"),
        ]
    );
    assert!(s
        .due_reminders(fixture::at("2030-01-06 07:59"), 10)
        .await
        .unwrap()
        .is_empty());
    let due = s
        .due_reminders(fixture::at("2030-01-06 09:00"), 10)
        .await
        .unwrap();
    let kinds: Vec<(i64, &str, Status)> = due
        .iter()
        .map(|d| (d.appointment_id, d.kind.as_str(), d.status))
        .collect();
    assert_eq!(kinds, [(52, "day-before", Status::Booked)]);
    let cancelled = s.reminders_of(50).await.unwrap();
    assert_eq!(cancelled.len(), 2);
    assert!(
        cancelled
            .iter()
            .all(|r| r.status == "void"
                && r.detail.as_deref() == Some("the appointment is cancelled"))
    );
    let at = fixture::at("2030-01-06 09:00");
    for k in 0..3 {
        s.record_reminder(
            52,
            "day-before",
            &Delivery::Failed(format!("no answer {k}")),
            at,
        )
        .await
        .unwrap();
    }
    s.record_reminder(52, "two-hours", &Delivery::Sent("sms 1".into()), at)
        .await
        .unwrap();
    let after = s.reminders_of(52).await.unwrap();
    assert_eq!(
        after
            .iter()
            .map(|r| (r.status.as_str(), r.attempts))
            .collect::<Vec<_>>(),
        [("failed", 3), ("sent", 1)]
    );
    assert!(s
        .due_reminders(fixture::at("2030-01-07 12:00"), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        s.void_stale_reminders(fixture::at("2030-01-07 12:00"))
            .await
            .unwrap(),
        0,
        "nothing pending is left to void"
    );

    // Holds: a pending appointment keeps the place under the same guard, books with
    // its reminders while it stands, and is let go once its time is up.
    // Held by the slot's own organisation (one the fixture has).
    let holder = s.slot_state(2).await.unwrap().org_id;
    let hold = |appointment: i64, resident: i64, slot: i64| WriteSet {
        holds: vec![(
            Booking {
                slot_id: slot,
                ..booking(appointment, resident)
            },
            Some(holder),
        )],
        ..WriteSet::default()
    };
    s.write_resources(&hold(60, 2002, 2)).await.unwrap();
    assert_eq!(s.slot_state(2).await.unwrap().booked, 1);
    let held = s.appointment(60).await.unwrap().unwrap();
    assert_eq!(
        (held.row.status, held.held_by),
        (Status::Pending, Some(holder))
    );
    assert!(s.reminders_of(60).await.unwrap().is_empty());
    assert!(matches!(
        s.write_resources(&hold(61, 2000, 2)).await,
        Err(StoreError::Conflict(_))
    ));
    let minutes = dhp_core::booking::limits().hold_minutes;
    let inside = now + chrono::Duration::minutes(minutes - 1);
    assert_eq!(s.release_holds(inside).await.unwrap(), 0);
    assert_eq!(
        s.appointment_step(60, Step::Accept, None, inside)
            .await
            .unwrap(),
        Status::Booked
    );
    assert_eq!(s.reminders_of(60).await.unwrap().len(), 2);
    s.write_resources(&hold(61, 202, 3)).await.unwrap();
    s.write_resources(&hold(62, 204, 4)).await.unwrap();
    let after = now + chrono::Duration::minutes(minutes + 1);
    // Past its time and not yet let go, a hold is not booked.
    assert!(matches!(
        s.appointment_step(62, Step::Accept, None, after).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.release_holds(after).await.unwrap(), 2);
    assert_eq!(s.release_holds(after).await.unwrap(), 0);
    for slot in [3, 4] {
        assert_eq!(s.slot_state(slot).await.unwrap().booked, 0);
    }
    assert_eq!(
        s.appointment(60).await.unwrap().unwrap().row.status,
        Status::Booked,
        "the booked hold stays"
    );
    assert_eq!(s.pool_faults().await.unwrap(), (0, 0));

    // A history loaded from elsewhere: the reminders that fell due before the slot
    // were delivered there; one before a cancellation only those due before it.
    s.write_resources(&WriteSet {
        bookings: vec![Booking {
            slot_id: 5,
            ..booking(63, 200)
        }],
        ..WriteSet::default()
    })
    .await
    .unwrap();
    let start = s.slot_state(5).await.unwrap().slot.start;
    let day_before = start - chrono::Duration::hours(23);
    assert_eq!(
        s.settle_reminders(&[(63, day_before)], "sent elsewhere")
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.settle_reminders(&[(63, start)], "sent elsewhere")
            .await
            .unwrap(),
        1
    );
    let settled = s.reminders_of(63).await.unwrap();
    assert!(settled
        .iter()
        .all(|r| r.status == "sent" && r.detail.as_deref() == Some("sent elsewhere")));
}

/// The waitlist: a freed place goes to the first in line whose days cover it, as a
/// pending appointment holding the place; accepting books it (with its reminders), an
/// offer not accepted in time passes to the next, declining passes it on at once, and
/// one who already holds a clashing booking is passed over.
pub async fn a_freed_place_is_offered_down_the_waitlist(s: &dyn Store) {
    use dhp_core::booking::Wait;

    let mut b = fixture::district();
    for k in 0..6u16 {
        b.residents.push(fixture::resident(
            3000 + i64::from(k),
            "1970-05-05",
            10 + k,
            100,
        ));
    }
    s.insert_batch(&b).await.unwrap();
    let schedule = Schedule {
        capacity: 1,
        referral_share: 0,
        ..cardiology()
    };
    let slots = schedule.slots(fixture::date("2030-01-07"), 1).unwrap();
    s.publish_schedule(&schedule, &slots).await.unwrap();
    let now = fixture::at("2030-01-01 09:00");
    let book = |appointment: i64, slot: i64, resident: i64| Booking {
        appointment_id: appointment,
        slot_id: slot,
        resident_id: resident,
        channel: Channel::Public,
        at: now,
    };
    // Slot 1 (7 January 08:00) is full; four wait for the 7th, one for other days.
    s.book(&book(60, 1, 3000)).await.unwrap();
    let wait = |resident: i64, from: &str, to: &str| Wait {
        schedule_id: 1,
        resident_id: resident,
        from: fixture::date(from),
        to: fixture::date(to),
        channel: Channel::Public,
    };
    let mut line = Vec::new();
    for (k, r) in [3005, 3001, 3002, 3003, 3004].into_iter().enumerate() {
        let w = if r == 3005 {
            wait(r, "2030-01-08", "2030-01-10")
        } else {
            wait(r, "2030-01-06", "2030-01-07")
        };
        let at = now + chrono::Duration::minutes(k as i64);
        line.push(s.join_waitlist(&w, at).await.unwrap());
    }
    // Twice in one line, a past first day, an unknown schedule: refused.
    assert!(matches!(
        s.join_waitlist(&wait(3001, "2030-01-06", "2030-01-07"), now)
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.join_waitlist(&wait(3001, "2029-12-31", "2030-01-07"), now).await,
        Err(StoreError::Invalid(m)) if m.starts_with("from")
    ));
    assert!(matches!(
        s.join_waitlist(
            &Wait {
                schedule_id: 99,
                ..wait(3001, "2030-01-06", "2030-01-07")
            },
            now
        )
        .await,
        Err(StoreError::NotFound(_))
    ));
    let entry = s.waitlist_entry(line[3]).await.unwrap().unwrap();
    assert_eq!((entry.status.as_str(), entry.ahead), ("waiting", 3));
    // 3002 meanwhile books another cardiology slot that day: passed over later.
    s.book(&book(61, 3, 3002)).await.unwrap();

    // The holder cancels: the place goes to 3001 (3005 waits for other days).
    let at = fixture::at("2030-01-02 10:00");
    s.appointment_step(60, Step::Cancel, Some("pat"), at)
        .await
        .unwrap();
    let offered = s.waitlist_entry(line[1]).await.unwrap().unwrap();
    assert_eq!(offered.status, "offered");
    assert_eq!(offered.offer_until, Some(fixture::at("2030-01-02 12:00")));
    let offer = offered.appointment_id.unwrap();
    let held = s.appointment(offer).await.unwrap().unwrap();
    assert_eq!(
        (held.row.status, held.row.resident_id),
        (Status::Pending, 3001)
    );
    assert_eq!(
        s.slot_state(1).await.unwrap().booked,
        1,
        "the offer holds it"
    );
    assert!(
        s.reminders_of(offer).await.unwrap().is_empty(),
        "no reminder before it is accepted"
    );
    assert!(matches!(
        s.book(&book(62, 1, 3004)).await,
        Err(StoreError::Conflict(_))
    ));

    // Not accepted in time: expired, and the place passes over 3002 (who holds a
    // clashing booking) to 3003.
    assert_eq!(
        s.expire_offers(fixture::at("2030-01-02 11:59"))
            .await
            .unwrap(),
        (0, 0)
    );
    assert_eq!(
        s.expire_offers(fixture::at("2030-01-02 12:00"))
            .await
            .unwrap(),
        (1, 0)
    );
    assert_eq!(
        s.waitlist_entry(line[1]).await.unwrap().unwrap().status,
        "expired"
    );
    assert_eq!(
        s.appointment(offer).await.unwrap().unwrap().row.status,
        Status::Cancelled
    );
    assert_eq!(
        s.waitlist_entry(line[2]).await.unwrap().unwrap().status,
        "waiting"
    );
    let next = s.waitlist_entry(line[3]).await.unwrap().unwrap();
    assert_eq!(next.status, "offered");
    assert_eq!(s.slot_state(1).await.unwrap().booked, 1);
    // Too late to accept the first offer; 3003 declines theirs: on to 3004.
    assert!(matches!(
        s.appointment_step(offer, Step::Accept, None, fixture::at("2030-01-02 12:01"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    s.withdraw_waitlist(line[3], fixture::at("2030-01-02 12:30"))
        .await
        .unwrap();
    assert_eq!(
        s.waitlist_entry(line[3]).await.unwrap().unwrap().status,
        "withdrawn"
    );
    let last = s.waitlist_entry(line[4]).await.unwrap().unwrap();
    assert_eq!(last.status, "offered");
    let taken = last.appointment_id.unwrap();
    // Accepted in time: booked, reminded, and the entry is done.
    let to = s
        .appointment_step(taken, Step::Accept, None, fixture::at("2030-01-02 13:00"))
        .await
        .unwrap();
    assert_eq!(to, Status::Booked);
    assert_eq!(
        s.waitlist_entry(line[4]).await.unwrap().unwrap().status,
        "booked"
    );
    assert_eq!(s.reminders_of(taken).await.unwrap().len(), 2);
    assert!(s
        .withdraw_waitlist(line[4], fixture::at("2030-01-02 13:05"))
        .await
        .is_err());
    assert_eq!(s.slot_state(1).await.unwrap().booked, 1);
    assert_eq!(s.pool_faults().await.unwrap(), (0, 0));
    // 3005's days pass without a place: the entry lapses.
    assert_eq!(
        s.expire_offers(fixture::at("2030-01-11 00:10"))
            .await
            .unwrap(),
        (0, 2),
        "3002's and 3005's entries lapse"
    );
    assert_eq!(
        s.waitlist_entry(line[0]).await.unwrap().unwrap().status,
        "lapsed"
    );
    assert_eq!(s.waitlist_of(3001).await.unwrap().len(), 1);
}
