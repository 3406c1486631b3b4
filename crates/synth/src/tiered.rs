//! Tiered care for the synthetic district: the external quality assessments of its
//! institutions, the schedules of its hospitals and centres with four weeks of slots
//! from the last day, that day's bookings, a year of up- and down-referrals with their
//! task histories (accepted, rejected, withdrawn, completed, and a few still open in
//! the inboxes), and laboratory results repeated across institutions (some inside
//! their recognition window, some outside). Everything goes through the store's own
//! paths (`publish_schedule`, `book`, `refer`, `referral_step`), so the rules hold.

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use dhp_core::booking::{Channel, Schedule};
use dhp_core::referral::{Act, Direction, NewReferral, Priority, TaskStatus};
use dhp_core::{Encounter, EncounterType, Id, Observation};
use dhp_store::{Batch, Booking, Cohort, Reading, Store};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::{GenerateError, Shared};

/// Services the district hospitals publish, and the ICD-10 families each takes.
const HOSPITAL_SERVICES: [(&str, &[&str]); 3] = [
    ("cardiology", &["I10", "I25"]),
    ("endocrinology", &["E11"]),
    ("respiratory", &["J44", "J45"]),
];

const UP_REASONS: [&str; 4] = [
    "连续两次随访控制不满意，请专科调整治疗方案",
    "出现并发症迹象，请专科评估",
    "需进一步检查明确诊断",
    "病情加重，社区处理困难",
];

const DOWN_SUMMARIES: [&str; 3] = [
    "住院治疗后病情稳定，已调整用药，请社区继续随访管理",
    "专科评估完成，方案已定，回社区规范管理",
    "检查已完成，诊断明确，建议社区每两周随访一次",
];

fn at(day: NaiveDate, rng: &mut ChaCha8Rng) -> NaiveDateTime {
    day.and_time(
        NaiveTime::from_hms_opt(rng.random_range(8..17), rng.random_range(0..60), 0)
            .unwrap_or_default(),
    )
}

/// Write the district's tiered care; the rows written.
pub(crate) async fn write(
    store: &dyn Store,
    shared: &Shared,
    end: NaiveDate,
    rng: &mut ChaCha8Rng,
) -> Result<u64, GenerateError> {
    let mut rows = 0u64;
    let hospitals: Vec<_> = shared.reg.district_hospitals.iter().collect();
    // External quality assessment of laboratory results: a year either side of the
    // last day; the last district hospital has not passed (its results are not
    // recognised elsewhere).
    let assessed_from = end - Duration::days(365);
    let assessed_to = end + Duration::days(365);
    for (i, h) in hospitals.iter().enumerate() {
        let passed = i + 1 < hospitals.len();
        store
            .record_assessment(h.org_id, "laboratory", assessed_from, assessed_to, passed)
            .await?;
        rows += 1;
    }
    for c in &shared.reg.centres {
        store
            .record_assessment(c.org_id, "laboratory", assessed_from, assessed_to, true)
            .await?;
        rows += 1;
    }

    // Schedules from the last day over a four-week horizon.
    let mut today_slots = Vec::new();
    let eight = NaiveTime::from_hms_opt(8, 0, 0).unwrap_or_default();
    // Ids come from the store when each is published.
    let publish =
        |org_id: Id, service: &str, practitioner: Option<Id>, capacity: u32, share: u32| Schedule {
            id: 0,
            org_id,
            service: service.into(),
            practitioner_id: practitioner,
            weekdays: [true, true, true, true, true, false, false],
            first_start: eight,
            slot_minutes: 30,
            slots_per_day: 8,
            capacity,
            referral_share: share,
            release_hours: 48,
            horizon_days: 28,
        };
    let mut schedules = Vec::new();
    for h in &hospitals {
        for (k, (service, _)) in HOSPITAL_SERVICES.iter().enumerate() {
            // About half of specialist places are kept for community referrals
            // (domain-rules §8).
            schedules.push(publish(
                h.org_id,
                service,
                h.specialists.get(k).copied(),
                6,
                50,
            ));
        }
    }
    for c in &shared.reg.centres {
        schedules.push(publish(
            c.org_id,
            "general_practice",
            c.doctors.first().copied(),
            4,
            0,
        ));
    }
    for s in &mut schedules {
        // Ids from the store's sequences, so later schedules and slots never meet them.
        s.id = store.reserve_ids("Schedule", 1).await?;
        let bad = |e: dhp_core::booking::Invalid| {
            GenerateError::Internal(format!("schedule {}: {e}", s.id))
        };
        let n = s.slots(end, 1).map_err(bad)?.len() as i64;
        let first = store.reserve_ids("Slot", n.max(1)).await?;
        let slots = s.slots(end, first).map_err(bad)?;
        rows += 1 + slots.len() as u64;
        today_slots.extend(
            slots
                .iter()
                .filter(|x| x.start.date() == end)
                .map(|x| (x.id, x.capacity)),
        );
        store.publish_schedule(s, &slots).await?;
    }

    // The last day's clinics: about a third of the places booked, made the day before.
    let persons = &shared.people.persons;
    let adults: Vec<Id> = persons
        .iter()
        .filter(|p| p.resident.age_on(end) >= 18)
        .map(|p| p.resident.id)
        .collect();
    if adults.is_empty() {
        return Ok(rows);
    }
    let booked_at = (end - Duration::days(1)).and_time(eight);
    for (slot, capacity) in &today_slots {
        for _ in 0..(capacity / 3).max(1) {
            let resident = adults[rng.random_range(0..adults.len())];
            let appointment_id = store.reserve_ids("Appointment", 1).await?;
            let b = Booking {
                appointment_id,
                slot_id: *slot,
                resident_id: resident,
                channel: Channel::Public,
                at: booked_at,
            };
            // A resident already booked that day keeps the first booking.
            if store.book(&b).await.is_ok() {
                rows += 1;
            }
        }
    }

    // A year of referrals from the centres to the district hospitals.
    let wanted = (persons.len() / 400).clamp(40, 3_000);
    let mut made = 0;
    let mut tries = 0;
    let mut extra = Batch::default();
    while made < wanted && tries < wanted * 30 {
        tries += 1;
        let p = &persons[rng.random_range(0..persons.len())];
        if p.resident.age_on(end) < 40 {
            continue;
        }
        let id = p.resident.id;
        let Some(rec) = store
            .programme_records(&Cohort::Resident(id), Reading::Programmes, end, id - 1, 1)
            .await?
            .pop()
        else {
            continue;
        };
        let Some((_, diagnosis)) = rec.conditions.iter().find_map(|c| {
            HOSPITAL_SERVICES
                .iter()
                .position(|(_, families)| families.iter().any(|f| c.icd10.starts_with(f)))
                .map(|k| (k, c.icd10.clone()))
        }) else {
            continue;
        };
        let centre = &shared.reg.centres[p.centre];
        let hospital = hospitals[rng.random_range(0..hospitals.len())];
        let doctor = format!("doctor-{}", centre.doctors.first().copied().unwrap_or(0));
        let clinician = format!(
            "clinician-{}",
            hospital.specialists.first().copied().unwrap_or(0)
        );
        // Recent referrals are the open ones: the last week's wait in the inbox.
        let age = match made % 10 {
            0 => rng.random_range(0..7),
            1 => rng.random_range(28..50),
            _ => rng.random_range(0..365),
        };
        let created = at(end - Duration::days(age), rng);
        let up = NewReferral {
            resident_id: id,
            direction: Direction::Up,
            from_org: centre.org_id,
            to_org: hospital.org_id,
            reason: UP_REASONS[rng.random_range(0..UP_REASONS.len())].into(),
            priority: if rng.random_bool(0.2) {
                Priority::Urgent
            } else {
                Priority::Routine
            },
            diagnosis: Some(diagnosis),
            appointment_id: None,
            summary: None,
            follow_up: None,
        };
        let rid = store.refer(&up, &doctor, created, None).await?;
        made += 1;
        rows += 2;
        // The result the centre took before referring (HbA1c or cholesterol), and for
        // some an older one from the hospital, outside its window.
        let code = if up.diagnosis.as_deref().is_some_and(|d| d.starts_with('E')) {
            ("4548-4", 7.0 + rng.random_range(0.0f64..2.5), "%")
        } else {
            ("14647-2", 4.5 + rng.random_range(0.0f64..2.5), "mmol/L")
        };
        let mut labs = vec![(
            centre.org_id,
            created - Duration::days(rng.random_range(2..10)),
            code.1,
        )];
        if rng.random_bool(0.3) {
            labs.push((
                hospital.org_id,
                created - Duration::days(rng.random_range(40..120)),
                code.1 + 0.4,
            ));
        }
        for (org, when, value) in labs {
            let e = store.reserve_ids("Encounter", 1).await?;
            let o = store.reserve_ids("Observation", 1).await?;
            extra.encounters.push(Encounter {
                id: e,
                resident_id: id,
                kind: EncounterType::Outpatient,
                programme: None,
                org_id: org,
                practitioner_id: None,
                start: when,
            });
            extra.observations.push(Observation {
                id: o,
                resident_id: id,
                encounter_id: Some(e),
                code: code.0.into(),
                value: (value * 10.0).round() / 10.0,
                unit: code.2.into(),
                effective: when + Duration::minutes(10),
            });
        }
        // The task's history so far.
        let mut status = TaskStatus::Requested;
        let mut when = created;
        let mut step = |act: Act, by: &str, reason: Option<&str>, hours: i64| {
            when += Duration::hours(hours);
            (act, by.to_string(), reason.map(str::to_string), when)
        };
        let mut steps = Vec::new();
        if age >= 2 {
            steps.push(step(Act::Receive, &clinician, None, 3));
            let roll: f64 = rng.random();
            if roll < 0.07 {
                steps.push(step(
                    Act::Reject,
                    &clinician,
                    Some("专科号源已满，建议转其他医院"),
                    20,
                ));
            } else if roll < 0.10 {
                steps.push(step(Act::Cancel, &doctor, Some("居民已自行就诊"), 26));
            } else {
                steps.push(step(Act::Accept, &clinician, None, 20));
                if age >= 7 {
                    steps.push(step(Act::Start, &clinician, None, 24 * 3));
                }
                if age >= 30 {
                    steps.push(step(Act::Complete, &clinician, None, 24 * 10));
                }
            }
        }
        let mut completed_at = None;
        for (act, by, reason, t) in steps {
            status = store
                .referral_step(rid, status, act, &by, reason.as_deref(), t)
                .await?;
            rows += 1;
            if status == TaskStatus::Completed {
                completed_at = Some(t);
            }
        }
        // Most completed referrals come back down with a follow-up day.
        if let Some(done) = completed_at.filter(|_| rng.random_bool(0.6)) {
            let follow_up = done.date() + Duration::days(14);
            let down = NewReferral {
                resident_id: id,
                direction: Direction::Down,
                from_org: hospital.org_id,
                to_org: centre.org_id,
                reason: "出院后社区随访，监测血压血糖并复查".into(),
                priority: Priority::Routine,
                diagnosis: up.diagnosis.clone(),
                appointment_id: None,
                summary: Some(DOWN_SUMMARIES[rng.random_range(0..DOWN_SUMMARIES.len())].into()),
                follow_up: Some(follow_up),
            };
            let did = store.refer(&down, &clinician, done, None).await?;
            rows += 2;
            // Followed up when the day has come and gone; the last days' and those
            // ahead wait on the due list.
            if follow_up + Duration::days(5) < end {
                let mut s = TaskStatus::Requested;
                let mut t = done;
                for act in [Act::Accept, Act::Complete] {
                    t = if act == Act::Complete {
                        follow_up.and_time(eight)
                    } else {
                        t + Duration::hours(20)
                    };
                    s = store.referral_step(did, s, act, &doctor, None, t).await?;
                    rows += 1;
                }
            }
        }
    }
    rows += extra.len() as u64;
    store.insert_batch(&extra).await?;
    Ok(rows)
}
