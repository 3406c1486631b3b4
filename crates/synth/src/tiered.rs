//! Tiered care for the synthetic district: the external quality assessments of its
//! institutions, the schedules of its hospitals and centres with a past year of slots
//! and four weeks from the last day, a year of past bookings (cancelled, missed,
//! attended), the last day's bookings, residents on the waitlists of full specialist
//! clinics in the coming weeks, a year of up- and down-referrals with their
//! task histories (accepted, rejected, withdrawn, completed, and a few still open in
//! the inboxes), and laboratory results and imaging studies repeated across
//! institutions (some inside their recognition window, some outside). Everything goes through the store's own
//! paths (`publish_schedule`, `book` and the pool's write sets, `join_waitlist`,
//! `refer`, `referral_step`), so the rules hold.

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use dhp_core::booking::{Channel, Schedule};
use dhp_core::referral::{Act, Direction, NewReferral, Priority, TaskStatus};
use dhp_core::{Encounter, EncounterType, Id, ImagingStudy, Observation};
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

/// The imaging examination a centre makes before referring to each service (of
/// `data/recognition.toml`), with findings a report might give.
const STUDIES: [(&str, &str, [&str; 2]); 3] = [
    (
        "cardiology",
        "11524-6",
        [
            "窦性心律，左心室高电压，ST-T未见明显改变。",
            "窦性心律，偶发房性早搏。",
        ],
    ),
    (
        "endocrinology",
        "24558-9",
        [
            "轻度脂肪肝；胆囊、胰腺、脾脏未见明显异常。",
            "肝胆胰脾未见明显异常。",
        ],
    ),
    (
        "respiratory",
        "36643-5",
        [
            "双肺纹理增多、紊乱，未见明确实变影；心影大小正常。",
            "两肺透亮度增高，符合慢性支气管炎、肺气肿表现。",
        ],
    ),
];

/// A chest CT some respiratory patients had at a hospital months before.
const CHEST_CT: (&str, &str) = (
    "24627-2",
    "右肺上叶见直径约4毫米磨玻璃结节，建议年度复查；余肺野清晰。",
);

/// Horizons of slots before the last day: a year of past clinics.
const HISTORY_HORIZONS: i64 = 13;

/// Cancellation reasons of past cancellations (HL7 appointment-cancellation-reason):
/// mostly the patient's.
const CANCEL_REASONS: [&str; 6] = ["pat", "pat-crs", "pat-cpp", "pat-swl", "prov", "other"];

/// Bookings written per transaction while making the history.
const HISTORY_CHUNK: usize = 2_000;

/// A year of past clinics: bookings made one to fourteen days ahead (about one a year
/// for every four residents), of which about 10 % were cancelled before the day, about
/// 6.5 % nobody came to (marked no-shows as the server's round does) and the rest were
/// attended. Written through the pool's write sets, so the capacity guard and the
/// life cycle hold. The rows written.
async fn history(
    store: &dyn Store,
    adults: &[Id],
    slots: &[(Id, NaiveDateTime, Id, u32)],
    end: NaiveDate,
    rng: &mut ChaCha8Rng,
) -> Result<u64, GenerateError> {
    use dhp_core::booking::{Status, Step};
    use dhp_store::{AppointmentStep, WriteSet};
    use std::collections::{HashMap, HashSet};

    if slots.is_empty() || adults.is_empty() {
        return Ok(0);
    }
    let wanted = adults.len() / 3;
    let mut taken: HashMap<Id, u32> = HashMap::new();
    let mut days: HashSet<(Id, NaiveDate)> = HashSet::new();
    let mut bookings = Vec::new();
    let mut tries = 0;
    while bookings.len() < wanted && tries < wanted * 4 {
        tries += 1;
        let (slot, start, org, public) = slots[rng.random_range(0..slots.len())];
        let resident = adults[rng.random_range(0..adults.len())];
        // Within the public share, one booking a resident a day: nothing is refused.
        let n = taken.entry(slot).or_default();
        if *n >= public || !days.insert((resident, start.date())) {
            continue;
        }
        *n += 1;
        let ahead =
            Duration::days(rng.random_range(1..=14)) + Duration::minutes(rng.random_range(0..600));
        bookings.push((slot, resident, start - ahead, start, org));
    }
    let first = store
        .reserve_ids("Appointment", bookings.len().max(1) as i64)
        .await?;
    let mut rows = 0u64;
    for (c, chunk) in bookings.chunks(HISTORY_CHUNK).enumerate() {
        let base = first + (c * HISTORY_CHUNK) as i64;
        let set = WriteSet {
            bookings: chunk
                .iter()
                .enumerate()
                .map(|(k, (slot, resident, at, _, _))| Booking {
                    appointment_id: base + k as i64,
                    slot_id: *slot,
                    resident_id: *resident,
                    channel: Channel::Public,
                    at: *at,
                })
                .collect(),
            ..WriteSet::default()
        };
        store.write_resources(&set).await?;
        let mut steps = Vec::new();
        let mut surveys = Vec::new();
        // The reminders that fell due before a cancellation, or before the slot, went
        // out then.
        let mut delivered = Vec::new();
        for (k, (_, resident, at, start, org)) in chunk.iter().enumerate() {
            let appointment_id = base + k as i64;
            let roll = rng.random_range(0..1000);
            if roll < 100 {
                let lead = (*start - *at).num_minutes().max(2);
                let cancelled = *at + Duration::minutes(rng.random_range(1..lead));
                steps.push(AppointmentStep {
                    appointment_id,
                    step: Step::Cancel,
                    reason: Some(CANCEL_REASONS[rng.random_range(0..CANCEL_REASONS.len())].into()),
                    at: cancelled,
                    from: Status::Booked,
                });
                delivered.push((appointment_id, cancelled));
                continue;
            }
            delivered.push((appointment_id, *start));
            if roll >= 165 {
                let done = *start + Duration::minutes(rng.random_range(5..40));
                steps.push(AppointmentStep {
                    appointment_id,
                    step: Step::Complete,
                    reason: None,
                    at: done,
                    from: Status::Booked,
                });
                // About one visit in four answers the survey after it.
                if rng.random_range(0..4) == 0 {
                    surveys.push(survey(
                        appointment_id,
                        *resident,
                        *org,
                        *start,
                        done,
                        end,
                        rng,
                    ));
                }
            }
        }
        store
            .settle_reminders(&delivered, "sent (generated history)")
            .await?;
        for s in surveys.drain(..) {
            store.record_survey(&s).await?;
            rows += 1;
        }
        store
            .write_resources(&WriteSet {
                appointment_steps: steps,
                ..WriteSet::default()
            })
            .await?;
        rows += chunk.len() as u64;
    }
    // Those nobody came to: what the server's first round would mark.
    store.mark_no_shows(end.and_time(NaiveTime::MIN)).await?;
    Ok(rows)
}

/// A satisfaction survey of a completed visit: each institution has its own standing
/// (its id's spread), and every institution does a little better as the year goes on
/// (the plan asks for a rise of one to two points a year).
fn survey(
    appointment_id: Id,
    resident_id: Id,
    org_id: Id,
    start: NaiveDateTime,
    done: NaiveDateTime,
    end: NaiveDate,
    rng: &mut ChaCha8Rng,
) -> dhp_store::Survey {
    let standing = 0.78 + (org_id % 7) as f64 * 0.025;
    let months_left = (end - start.date()).num_days() as f64 / 30.0;
    let p = (standing - months_left * 0.0015).clamp(0.5, 0.97);
    let items = dhp_core::survey::survey()
        .items
        .iter()
        .map(|i| {
            let score = if rng.random_bool(p) {
                rng.random_range(4..=5)
            } else {
                rng.random_range(1..=3)
            };
            (i.key.clone(), score)
        })
        .collect();
    dhp_store::Survey {
        appointment_id,
        resident_id,
        org_id,
        // Answered within two days, and not after the district's last day.
        answered_at: (done + Duration::hours(rng.random_range(1..48)))
            .min(end.and_hms_opt(23, 0, 0).unwrap_or(done))
            .max(done),
        visit_at: start,
        items,
        comment: String::new(),
    }
}

/// Residents waiting for places in full specialist clinics of the coming weeks: a few
/// slots filled on referral, and two or three residents in each schedule's line for
/// that day. The rows written.
async fn waitlists(
    store: &dyn Store,
    adults: &[Id],
    slots: &[(Id, Id, NaiveDateTime, u32)],
    end: NaiveDate,
    rng: &mut ChaCha8Rng,
) -> Result<u64, GenerateError> {
    use dhp_core::booking::Wait;

    let mut rows = 0u64;
    let mut lines = std::collections::HashSet::new();
    let at = (end - Duration::days(1))
        .and_hms_opt(18, 0, 0)
        .unwrap_or_default();
    for _ in 0..(adults.len() / 2_000).clamp(3, 12) {
        if slots.is_empty() {
            break;
        }
        let (slot, schedule, start, capacity) = slots[rng.random_range(0..slots.len())];
        if !lines.insert(schedule) {
            continue;
        }
        let mut filled = 0;
        for _ in 0..capacity * 3 {
            if filled == capacity {
                break;
            }
            let b = Booking {
                appointment_id: store.reserve_ids("Appointment", 1).await?,
                slot_id: slot,
                resident_id: adults[rng.random_range(0..adults.len())],
                channel: Channel::Referral,
                at,
            };
            if store.book(&b).await.is_ok() {
                filled += 1;
                rows += 1;
            }
        }
        for k in 0..rng.random_range(2..=3) {
            let w = Wait {
                schedule_id: schedule,
                resident_id: adults[rng.random_range(0..adults.len())],
                from: start.date() - Duration::days(k),
                to: start.date(),
                channel: Channel::Referral,
            };
            if store
                .join_waitlist(&w, at + Duration::minutes(k))
                .await
                .is_ok()
            {
                rows += 1;
            }
        }
    }
    Ok(rows)
}

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
    for category in ["laboratory", "imaging"] {
        for (i, h) in hospitals.iter().enumerate() {
            let passed = i + 1 < hospitals.len();
            store
                .record_assessment(h.org_id, category, assessed_from, assessed_to, passed)
                .await?;
            rows += 1;
        }
        for c in &shared.reg.centres {
            store
                .record_assessment(c.org_id, category, assessed_from, assessed_to, true)
                .await?;
            rows += 1;
        }
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
    let mut past_slots = Vec::new();
    let mut future_specialist = Vec::new();
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
        // The past year's slots (thirteen horizons back from the last day), then the
        // horizon from the last day.
        let starts: Vec<NaiveDate> = (0..=HISTORY_HORIZONS)
            .map(|k| end - Duration::days(i64::from(s.horizon_days) * (HISTORY_HORIZONS - k)))
            .collect();
        let mut slots = Vec::new();
        for from in starts {
            let n = s.slots(from, 1).map_err(bad)?.len() as i64;
            let first = store.reserve_ids("Slot", n.max(1)).await?;
            slots.extend(s.slots(from, first).map_err(bad)?);
        }
        rows += 1 + slots.len() as u64;
        today_slots.extend(
            slots
                .iter()
                .filter(|x| x.start.date() == end)
                .map(|x| (x.id, x.capacity)),
        );
        past_slots.extend(
            slots
                .iter()
                .filter(|x| x.start.date() < end)
                .map(|x| (x.id, x.start, s.org_id, x.capacity - x.reserved)),
        );
        if s.referral_share > 0 {
            future_specialist.extend(
                slots
                    .iter()
                    .filter(|x| x.start.date() > end + Duration::days(2))
                    .map(|x| (x.id, s.id, x.start, x.capacity)),
            );
        }
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
    rows += history(store, &adults, &past_slots, end, rng).await?;
    rows += waitlists(store, &adults, &future_specialist, end, rng).await?;

    // A year of referrals from the centres to the district hospitals.
    let wanted = (persons.len() / 400).clamp(40, 3_000);
    let mut made = 0;
    let mut tries = 0;
    let mut extra = Batch::default();
    let mut orders = Vec::new();
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
        let Some((service, diagnosis)) = rec.conditions.iter().find_map(|c| {
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
        // The imaging examination the centre made for about four in ten, and for some
        // respiratory patients a chest CT at a hospital months before (outside its
        // window).
        let mut studies = Vec::new();
        let (study_service, study_code, findings) = STUDIES
            .iter()
            .find(|(s, _, _)| *s == HOSPITAL_SERVICES[service].0)
            .copied()
            .unwrap_or(STUDIES[0]);
        if rng.random_bool(0.4) {
            studies.push((
                centre.org_id,
                created - Duration::days(rng.random_range(1..6)),
                study_code,
                findings[rng.random_range(0..findings.len())],
            ));
        }
        if study_service == "respiratory" && rng.random_bool(0.3) {
            studies.push((
                hospital.org_id,
                created - Duration::days(rng.random_range(60..200)),
                CHEST_CT.0,
                CHEST_CT.1,
            ));
        }
        let studied = !studies.is_empty();
        for (org, when, code, words) in studies {
            let e = outpatient(store, &mut extra, id, org, when).await?;
            let m = store.reserve_ids("ImagingStudy", 1).await?;
            let modality = dhp_core::recognition::table()
                .item(code)
                .and_then(|i| i.modality.clone())
                .unwrap_or_default();
            extra.imaging_studies.push(ImagingStudy {
                id: m,
                resident_id: id,
                encounter_id: e,
                org_id: org,
                code: code.into(),
                modality,
                started: when + Duration::minutes(20),
                uid: format!("urn:oid:2.25.{}", rng.random::<u64>()),
                findings: words.into(),
            });
        }
        for (org, when, value) in labs {
            let e = outpatient(store, &mut extra, id, org, when).await?;
            let o = store.reserve_ids("Observation", 1).await?;
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
            if act == Act::Accept {
                // The clinician orders the test the centre did, a few hours later.
                orders.push((
                    id,
                    code.0,
                    hospital.org_id,
                    by.clone(),
                    t + Duration::hours(2),
                ));
                // And the imaging examination, where the centre made one.
                if studied {
                    orders.push((
                        id,
                        study_code,
                        hospital.org_id,
                        by.clone(),
                        t + Duration::hours(2),
                    ));
                }
            }
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
    rows += orders_at_hospital(store, &orders, rng).await?;
    Ok(rows)
}

/// An outpatient visit of `resident` at `org` added to `extra`; its id.
async fn outpatient(
    store: &dyn Store,
    extra: &mut Batch,
    resident: Id,
    org: Id,
    when: NaiveDateTime,
) -> Result<Id, GenerateError> {
    let id = store.reserve_ids("Encounter", 1).await?;
    extra.encounters.push(Encounter {
        id,
        resident_id: resident,
        kind: EncounterType::Outpatient,
        programme: None,
        org_id: org,
        practitioner_id: None,
        start: when,
    });
    Ok(id)
}

/// Exception reasons a clinician gives for repeating a test whose recognised result
/// stands (of `data/recognition.toml`, those that need no words).
const REPEAT_REASONS: [&str; 4] = [
    "condition-changed",
    "rapid-change",
    "pre-procedure",
    "patient-request",
];

/// The hospital clinicians' orders after accepting a referral, through the recognition
/// check as the order form makes it: where the centre's result stands, about seven in
/// ten use it (a repeat avoided) and the rest repeat with an exception reason; with no
/// standing result the test is ordered. The rows written.
async fn orders_at_hospital(
    store: &dyn Store,
    orders: &[(Id, &str, Id, String, NaiveDateTime)],
    rng: &mut ChaCha8Rng,
) -> Result<u64, GenerateError> {
    use dhp_core::recognition::table;
    use dhp_store::NewOrder;

    let mut rows = 0;
    for (resident, code, org, by, at) in orders {
        let prior: Vec<_> = store
            .prior_results(*resident, code)
            .await?
            .into_iter()
            .map(|p| p.prior)
            .collect();
        let standing = table()
            .standing(code, &prior, at.date())
            .map(|p| p.result_id);
        let use_standing = standing.is_some() && rng.random_bool(0.7);
        let exception = (standing.is_some() && !use_standing)
            .then(|| REPEAT_REASONS[rng.random_range(0..REPEAT_REASONS.len())].to_string());
        let order = NewOrder {
            resident_id: *resident,
            code: code.to_string(),
            org_id: *org,
            ordered_by: by.clone(),
            at: *at,
            use_standing,
            exception,
            note: None,
        };
        store.order_test(&order, standing).await?;
        rows += 1;
    }
    Ok(rows)
}
