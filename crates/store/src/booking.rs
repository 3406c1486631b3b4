//! The unified slot pool (统一号源): schedules and their slots, and appointments booked
//! into them. A booking's capacity check and its write are one transaction: the slot's
//! `booked` count moves by a guarded `UPDATE … WHERE booked < limit`, so no slot is
//! ever booked beyond its capacity, whoever books at the same moment (SQLite: the write
//! lock taken at `BEGIN IMMEDIATE`; PostgreSQL: the row lock the update takes, its
//! condition checked again once the lock is held). The rules (limits, the release of
//! reserved places, conflicts, the life cycle) are `dhp_core::booking`'s.

use async_trait::async_trait;
use chrono::NaiveDateTime;
use dhp_core::booking::{
    conflict, hold_until, next, Channel, Held, Schedule, Slot, Status, Step, Wait,
};
use dhp_core::Id;

use crate::rows::Col;
use crate::shared::{Backend, Commit, Exec, Param};
use crate::{Result, StoreError};

mod pool;
mod reminders;
mod waitlist;
pub(crate) use pool::apply as apply_in_set;
pub use pool::{AppointmentFilter, AppointmentStep, AppointmentView, ScheduleFilter, SlotFilter};
pub use reminders::{Delivery, DueReminder, Reminder};
pub use waitlist::WaitEntry;

/// A booking to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booking {
    pub appointment_id: Id,
    pub slot_id: Id,
    pub resident_id: Id,
    pub channel: Channel,
    pub at: NaiveDateTime,
}

/// A slot as the pool holds it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotState {
    pub slot: Slot,
    pub service: String,
    pub org_id: Id,
    /// Appointments holding a place.
    pub booked: u32,
    /// `free`, or `cancelled` when the slot was withdrawn.
    pub status: String,
}

/// Which slots to find: the district's pool, narrowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotQuery {
    pub org_id: Option<Id>,
    pub service: Option<String>,
    pub practitioner_id: Option<Id>,
    /// Slots starting at or after (and not before `now`).
    pub from: NaiveDateTime,
    /// Slots starting before.
    pub to: NaiveDateTime,
    /// Whose places count: a referral may take reserved places, the public only open ones.
    pub channel: Channel,
    /// The moment the limits are read at.
    pub now: NaiveDateTime,
    pub limit: usize,
}

/// An appointment with its slot, for a clinic's day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClinicAppointment {
    pub appointment: AppointmentRow,
    pub start: NaiveDateTime,
    pub service: String,
    /// The practitioner of the schedule, when it names one.
    pub practitioner_id: Option<Id>,
}

/// One appointment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppointmentRow {
    pub id: Id,
    pub slot_id: Id,
    pub resident_id: Id,
    pub status: Status,
    pub cancel_reason: Option<String>,
}

fn channel_name(c: Channel) -> &'static str {
    match c {
        Channel::Public => "public",
        Channel::Referral => "referral",
    }
}

fn weekdays_text(days: &[bool; 7]) -> String {
    days.iter().map(|d| if *d { '1' } else { '0' }).collect()
}

const SLOT_SQL: &str = "SELECT s.id, s.schedule_id, s.start, s.\"end\", s.capacity, s.reserved, \
    s.release, s.booked, s.status, sc.service, sc.org_id \
    FROM slots s JOIN schedules sc ON sc.id = s.schedule_id WHERE s.id = $1";

pub(crate) fn slot_state<R: Col>(r: &R) -> Result<SlotState> {
    let n = |i| -> Result<u32> {
        u32::try_from(r.i64(i)?).map_err(|_| StoreError::Corrupt(format!("slot column {i}")))
    };
    Ok(SlotState {
        slot: Slot {
            id: r.i64(0)?,
            schedule_id: r.i64(1)?,
            start: r.datetime(2)?,
            end: r.datetime(3)?,
            capacity: n(4)?,
            reserved: n(5)?,
            release: r.datetime(6)?,
        },
        booked: n(7)?,
        status: r.text(8)?,
        service: r.text(9)?,
        org_id: r.i64(10)?,
    })
}

async fn read_slot<E: Exec>(e: &E, id: Id) -> Result<SlotState> {
    let rows = e.rows(SLOT_SQL, vec![Param::I64(id)]).await?;
    rows.first()
        .map(slot_state)
        .transpose()?
        .ok_or_else(|| StoreError::NotFound(format!("slot {id}")))
}

/// The bookings `resident` holds a place with.
async fn held<E: Exec>(e: &E, resident: Id) -> Result<Vec<Held>> {
    let rows = e
        .rows(
            "SELECT sc.service, s.start, s.\"end\", a.status FROM appointments a \
             JOIN slots s ON s.id = a.slot_id JOIN schedules sc ON sc.id = s.schedule_id \
             WHERE a.resident_id = $1",
            vec![Param::I64(resident)],
        )
        .await?;
    let mut out = Vec::new();
    for r in &rows {
        if Status::parse(&r.text(3)?).is_some_and(Status::holds_place) {
            out.push(Held {
                service: r.text(0)?,
                start: r.datetime(1)?,
                end: r.datetime(2)?,
            });
        }
    }
    Ok(out)
}

/// Book `b` inside the open transaction `tx`.
pub(crate) async fn book_in<E: Exec>(tx: &E, postgres: bool, b: &Booking) -> Result<()> {
    let s = open_slot(tx, postgres, b).await?;
    claim(tx, &s, b, Status::Booked).await?;
    reminders::queue(tx, b.appointment_id, s.slot.start, b.at).await
}

/// Hold a place of `b`'s slot inside `tx` for organisation `by`: a pending appointment
/// that keeps it until [`hold_until`]; no reminders until it is booked.
pub(crate) async fn hold_in<E: Exec>(
    tx: &E,
    postgres: bool,
    b: &Booking,
    by: Option<Id>,
) -> Result<()> {
    let s = open_slot(tx, postgres, b).await?;
    let most = dhp_core::booking::limits().holds_per_resident;
    let held = tx
        .rows(
            "SELECT COUNT(*) FROM appointments WHERE resident_id = $1 AND status = 'pending' \
             AND hold_until > $2",
            vec![Param::I64(b.resident_id), Param::DateTime(b.at)],
        )
        .await?;
    if held.first().map(|r| r.i64(0)).transpose()?.unwrap_or(0) >= most {
        return Err(StoreError::Conflict(format!(
            "the resident already holds {most} places: book or let one go first"
        )));
    }
    claim(tx, &s, b, Status::Pending).await?;
    tx.execute(
        "UPDATE appointments SET hold_until = $1, held_by = $2 WHERE id = $3",
        vec![
            Param::DateTime(hold_until(b.at, s.slot.start)),
            Param::OptI64(by),
            Param::I64(b.appointment_id),
        ],
    )
    .await
}

/// The slot `b` asks for, if it is open and has not begun (on PostgreSQL with the
/// resident's row locked, so one resident's bookings are checked one at a time).
async fn open_slot<E: Exec>(tx: &E, postgres: bool, b: &Booking) -> Result<SlotState> {
    if postgres {
        // One resident's bookings one at a time: the conflict check below reads
        // what the others wrote.
        tx.execute(
            "SELECT id FROM residents WHERE id = $1 FOR UPDATE",
            vec![Param::I64(b.resident_id)],
        )
        .await?;
    }
    let s = read_slot(tx, b.slot_id).await?;
    if s.status != "free" {
        return Err(StoreError::Conflict(format!(
            "slot {} is {}",
            b.slot_id, s.status
        )));
    }
    if s.slot.past(b.at) {
        return Err(StoreError::Invalid(format!(
            "slot {} began at {}",
            b.slot_id, s.slot.start
        )));
    }
    Ok(s)
}

/// Take a place of slot `s` for `b` as an appointment in `status` (booked, or pending
/// when offered from the waitlist): the resident's other bookings, the guarded count
/// and the appointment's row. `Conflict` names why not, before anything is written.
pub(crate) async fn claim<E: Exec>(
    tx: &E,
    s: &SlotState,
    b: &Booking,
    status: Status,
) -> Result<()> {
    let limit = s.slot.limit(b.channel, b.at);
    let full = || StoreError::Conflict(format!("slot {} has no place left", b.slot_id));
    // Full as read: refused without reading the resident's bookings (a popular slot
    // meets many more askers than places). The guarded update below still decides.
    if s.booked >= limit {
        return Err(full());
    }
    let new = Held {
        service: s.service.clone(),
        start: s.slot.start,
        end: s.slot.end,
    };
    if let Some(why) = conflict(&held(tx, b.resident_id).await?, &new) {
        return Err(StoreError::Conflict(why));
    }
    let taken = tx
        .rows(
            "UPDATE slots SET booked = booked + 1 \
             WHERE id = $1 AND status = 'free' AND booked < $2 RETURNING id",
            vec![Param::I64(b.slot_id), Param::I64(limit.into())],
        )
        .await?;
    if taken.is_empty() {
        return Err(full());
    }
    tx.execute(
        "INSERT INTO appointments (id, slot_id, resident_id, status, channel, created, updated) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        vec![
            Param::I64(b.appointment_id),
            Param::I64(b.slot_id),
            Param::I64(b.resident_id),
            Param::Text(status.as_str().into()),
            Param::Text(channel_name(b.channel).into()),
            Param::DateTime(b.at),
            Param::DateTime(b.at),
        ],
    )
    .await
}

/// Take `step` on appointment `id` inside the open transaction `tx`.
pub(crate) async fn step_in<E: Exec>(
    tx: &E,
    postgres: bool,
    id: Id,
    step: Step,
    reason: Option<&str>,
    at: NaiveDateTime,
) -> Result<Status> {
    let rows = tx
        .rows(
            "SELECT slot_id, status, hold_until FROM appointments WHERE id = $1",
            vec![Param::I64(id)],
        )
        .await?;
    let r = rows
        .first()
        .ok_or_else(|| StoreError::NotFound(format!("appointment {id}")))?;
    let (slot, text, hold) = (r.i64(0)?, r.text(1)?, r.odatetime(2)?);
    if let Some(until) = hold.filter(|u| step == Step::Accept && *u <= at) {
        return Err(StoreError::Conflict(format!(
            "the hold of appointment {id} lapsed at {}",
            until.format("%Y-%m-%d %H:%M")
        )));
    }
    let from = Status::parse(&text)
        .ok_or_else(|| StoreError::Corrupt(format!("appointment {id} status {text:?}")))?;
    let to = next(from, step).map_err(StoreError::Conflict)?;
    // The status as read, or someone else moved it first.
    let moved = tx
        .rows(
            "UPDATE appointments SET status = $1, cancel_reason = $2, updated = $3, \
             version = version + 1 WHERE id = $4 AND status = $5 RETURNING id",
            vec![
                Param::Text(to.as_str().into()),
                Param::OptText(reason.map(str::to_string)),
                Param::DateTime(at),
                Param::I64(id),
                Param::Text(from.as_str().into()),
            ],
        )
        .await?;
    if moved.is_empty() {
        return Err(StoreError::Conflict(format!(
            "appointment {id} changed meanwhile"
        )));
    }
    if step == Step::Accept {
        // A hold still standing (checked above), or a waitlist offer that must still
        // stand; the booking is reminded like any other.
        let start = match hold {
            Some(_) => read_slot(tx, slot).await?.slot.start,
            None => waitlist::accept_in(tx, id, at).await?,
        };
        reminders::queue(tx, id, start, at).await?;
    }
    if from.holds_place() && !to.holds_place() {
        tx.execute(
            "UPDATE slots SET booked = booked - 1 WHERE id = $1",
            vec![Param::I64(slot)],
        )
        .await?;
        if from == Status::Pending {
            waitlist::offer_ended_in(tx, id, at).await?;
        }
        // The freed place goes to the first in the schedule's line.
        waitlist::promote_in(tx, postgres, slot, at).await?;
    }
    if to != Status::Booked {
        reminders::void_of(tx, id, to, at).await?;
    }
    Ok(to)
}

/// The slot pool.
#[async_trait]
pub trait BookingStore: Send + Sync {
    /// Publish a schedule with the slots it generated, in one transaction.
    async fn publish_schedule(&self, schedule: &Schedule, slots: &[Slot]) -> Result<()>;
    /// A slot and how many places it holds.
    async fn slot_state(&self, id: Id) -> Result<SlotState>;
    /// Book: the slot's limit for the booking's channel at its time, the resident's
    /// other bookings and the write, in one transaction. `Conflict` names why not.
    async fn book(&self, booking: &Booking) -> Result<()>;
    /// Take `step` on an appointment (cancel with `reason`); a cancelled one gives its
    /// place back in the same transaction.
    async fn appointment_step(
        &self,
        id: Id,
        step: Step,
        reason: Option<&str>,
        at: NaiveDateTime,
    ) -> Result<Status>;
    /// Cancel appointment `old` (with `reason`) and book `b` for the same resident, as
    /// one step: both or neither.
    async fn reschedule(&self, old: Id, reason: &str, b: &Booking) -> Result<()>;
    /// Mark every booked appointment whose slot ended by `ended_by` as a no-show,
    /// giving their places back; how many.
    async fn mark_no_shows(&self, ended_by: NaiveDateTime) -> Result<u64>;
    /// The appointments of one resident, in id order.
    async fn appointments_of(&self, resident: Id) -> Result<Vec<AppointmentRow>>;
    /// Slots with a place left for the query's channel, earliest first.
    async fn find_slots(&self, query: &SlotQuery) -> Result<Vec<SlotState>>;
    /// The appointments in slots of organisation `org` starting on `day`, by time.
    async fn appointments_at(
        &self,
        org: Id,
        day: chrono::NaiveDate,
    ) -> Result<Vec<ClinicAppointment>>;
    /// A check that does not trust the counters: (slots whose appointments holding a
    /// place outnumber its capacity, slots whose `booked` count differs from them).
    async fn pool_faults(&self) -> Result<(i64, i64)>;
    /// Schedules by the FHIR search's filter, with the total.
    async fn search_schedules(&self, f: &ScheduleFilter) -> Result<(Vec<Schedule>, i64)>;
    /// Slots by the FHIR search's filter, earliest first, with the total.
    async fn search_slots(&self, f: &SlotFilter) -> Result<(Vec<SlotState>, i64)>;
    /// Appointments by the FHIR search's filter within its scope, with the total.
    async fn search_appointments(
        &self,
        f: &AppointmentFilter,
    ) -> Result<(Vec<AppointmentView>, i64)>;
    /// One appointment with its slot (`None`: no such appointment).
    async fn appointment(&self, id: Id) -> Result<Option<AppointmentView>>;
    /// Void the pending reminders due by `now` whose appointment is no longer booked or
    /// has begun; how many.
    async fn void_stale_reminders(&self, now: NaiveDateTime) -> Result<u64>;
    /// Record as delivered (sent at their due time, with `detail`) the pending
    /// reminders of each appointment that fell due before its time: a history loaded
    /// from elsewhere, whose deliveries happened there. How many, in one transaction.
    async fn settle_reminders(&self, settled: &[(Id, NaiveDateTime)], detail: &str) -> Result<u64>;
    /// Reminders due by `now` and not yet sent, oldest first.
    async fn due_reminders(&self, now: NaiveDateTime, limit: i64) -> Result<Vec<DueReminder>>;
    /// What became of one reminder's delivery at `at`.
    async fn record_reminder(
        &self,
        appointment: Id,
        kind: &str,
        delivery: &Delivery,
        at: NaiveDateTime,
    ) -> Result<()>;
    /// The reminders of one appointment, earliest first.
    async fn reminders_of(&self, appointment: Id) -> Result<Vec<Reminder>>;
    /// Put a resident in a schedule's line at `at`; the entry's id.
    async fn join_waitlist(&self, w: &Wait, at: NaiveDateTime) -> Result<Id>;
    /// Leave the line (an offer held is declined and passed on), in one transaction.
    async fn withdraw_waitlist(&self, id: Id, at: NaiveDateTime) -> Result<()>;
    /// Expire the offers not accepted by `now` (each place passed to the next in line in
    /// its own transaction), and let entries whose days have passed leave the line:
    /// (offers expired, entries lapsed).
    async fn expire_offers(&self, now: NaiveDateTime) -> Result<(u64, u64)>;
    /// Let go the places of holds not booked by `now` (cancelled, the place offered
    /// down the waitlist); how many.
    async fn release_holds(&self, now: NaiveDateTime) -> Result<u64>;
    /// A resident's waitlist entries, newest first.
    async fn waitlist_of(&self, resident: Id) -> Result<Vec<WaitEntry>>;
    /// One waitlist entry.
    async fn waitlist_entry(&self, id: Id) -> Result<Option<WaitEntry>>;
}

#[async_trait]
impl<B: Backend> BookingStore for B {
    async fn publish_schedule(&self, s: &Schedule, slots: &[Slot]) -> Result<()> {
        let tx = self.begin_write().await?;
        tx.execute(
            "INSERT INTO schedules (id, org_id, service, practitioner_id, weekdays, first_start, \
             slot_minutes, slots_per_day, capacity, referral_share, release_hours, horizon_days) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            vec![
                Param::I64(s.id),
                Param::I64(s.org_id),
                Param::Text(s.service.clone()),
                Param::OptI64(s.practitioner_id),
                Param::Text(weekdays_text(&s.weekdays)),
                Param::Text(s.first_start.format("%H:%M").to_string()),
                Param::I64(s.slot_minutes.into()),
                Param::I64(s.slots_per_day.into()),
                Param::I64(s.capacity.into()),
                Param::I64(s.referral_share.into()),
                Param::I64(s.release_hours.into()),
                Param::I64(s.horizon_days.into()),
            ],
        )
        .await?;
        for slot in slots {
            tx.execute(
                "INSERT INTO slots (id, schedule_id, start, \"end\", capacity, reserved, release) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                vec![
                    Param::I64(slot.id),
                    Param::I64(slot.schedule_id),
                    Param::DateTime(slot.start),
                    Param::DateTime(slot.end),
                    Param::I64(slot.capacity.into()),
                    Param::I64(slot.reserved.into()),
                    Param::DateTime(slot.release),
                ],
            )
            .await?;
        }
        tx.commit().await
    }

    async fn slot_state(&self, id: Id) -> Result<SlotState> {
        read_slot(self.pool(), id).await
    }

    async fn book(&self, b: &Booking) -> Result<()> {
        let tx = self.begin_write().await?;
        book_in(&tx, self.name() == "postgres", b).await?;
        tx.commit().await
    }

    async fn reschedule(&self, old: Id, reason: &str, b: &Booking) -> Result<()> {
        let tx = self.begin_write().await?;
        let rows = tx
            .rows(
                "SELECT resident_id FROM appointments WHERE id = $1",
                vec![Param::I64(old)],
            )
            .await?;
        let resident = rows
            .first()
            .map(|r| r.i64(0))
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("appointment {old}")))?;
        if resident != b.resident_id {
            return Err(StoreError::Invalid(format!(
                "appointment {old} is another resident's"
            )));
        }
        step_in(
            &tx,
            self.name() == "postgres",
            old,
            Step::Cancel,
            Some(reason),
            b.at,
        )
        .await?;
        book_in(&tx, self.name() == "postgres", b).await?;
        tx.commit().await
    }

    async fn appointment_step(
        &self,
        id: Id,
        step: Step,
        reason: Option<&str>,
        at: NaiveDateTime,
    ) -> Result<Status> {
        let tx = self.begin_write().await?;
        let to = step_in(&tx, self.name() == "postgres", id, step, reason, at).await?;
        tx.commit().await?;
        Ok(to)
    }

    async fn mark_no_shows(&self, ended_by: NaiveDateTime) -> Result<u64> {
        let tx = self.begin_write().await?;
        // The places first (counted from the appointments about to change), then them.
        // The life cycle says which status becomes a no-show (`next`).
        let (from, to) = (
            Status::Booked,
            next(Status::Booked, Step::NoShow).map_err(StoreError::Conflict)?,
        );
        tx.execute(
            "UPDATE slots SET booked = booked - (SELECT COUNT(*) FROM appointments a \
             WHERE a.slot_id = slots.id AND a.status = $2) \
             WHERE \"end\" <= $1 AND EXISTS (SELECT 1 FROM appointments a \
             WHERE a.slot_id = slots.id AND a.status = $2)",
            vec![Param::DateTime(ended_by), Param::Text(from.as_str().into())],
        )
        .await?;
        let marked = tx
            .rows(
                "UPDATE appointments SET status = $1, updated = $2, version = version + 1 \
                 WHERE status = $3 AND slot_id IN \
                 (SELECT id FROM slots WHERE \"end\" <= $2) RETURNING id",
                vec![
                    Param::Text(to.as_str().into()),
                    Param::DateTime(ended_by),
                    Param::Text(from.as_str().into()),
                ],
            )
            .await?;
        tx.commit().await?;
        Ok(marked.len() as u64)
    }

    async fn appointments_of(&self, resident: Id) -> Result<Vec<AppointmentRow>> {
        let rows = self
            .pool()
            .rows(
                "SELECT id, slot_id, resident_id, status, cancel_reason FROM appointments \
                 WHERE resident_id = $1 ORDER BY id",
                vec![Param::I64(resident)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let text = r.text(3)?;
                Ok(AppointmentRow {
                    id: r.i64(0)?,
                    slot_id: r.i64(1)?,
                    resident_id: r.i64(2)?,
                    status: Status::parse(&text)
                        .ok_or_else(|| StoreError::Corrupt(format!("status {text:?}")))?,
                    cancel_reason: r.otext(4)?,
                })
            })
            .collect()
    }

    async fn find_slots(&self, q: &SlotQuery) -> Result<Vec<SlotState>> {
        let from = q.from.max(q.now);
        let mut params = vec![Param::DateTime(from), Param::DateTime(q.to)];
        let mut cond = vec![
            "s.start >= $1".to_string(),
            "s.start < $2".to_string(),
            "s.status = 'free'".to_string(),
            "s.booked < s.capacity".to_string(),
        ];
        if let Some(o) = q.org_id {
            params.push(Param::I64(o));
            cond.push(format!("sc.org_id = ${}", params.len()));
        }
        if let Some(svc) = &q.service {
            params.push(Param::Text(svc.clone()));
            cond.push(format!("sc.service = ${}", params.len()));
        }
        if let Some(p) = q.practitioner_id {
            params.push(Param::I64(p));
            cond.push(format!("sc.practitioner_id = ${}", params.len()));
        }
        // A public booking sees only slots with an open place (reserved ones not yet
        // released are counted in Rust, from the same rule the booking applies).
        let mut out = Vec::new();
        let page = (q.limit.max(1) * 4) as i64;
        let mut offset = 0i64;
        loop {
            let n = params.len();
            let mut p = params.clone();
            p.push(Param::I64(page));
            p.push(Param::I64(offset));
            let rows = self
                .pool()
                .rows(
                    &format!(
                        "SELECT s.id, s.schedule_id, s.start, s.\"end\", s.capacity, s.reserved, \
                         s.release, s.booked, s.status, sc.service, sc.org_id \
                         FROM slots s JOIN schedules sc ON sc.id = s.schedule_id WHERE {} \
                         ORDER BY s.start, s.id LIMIT ${} OFFSET ${}",
                        cond.join(" AND "),
                        n + 1,
                        n + 2
                    ),
                    p,
                )
                .await?;
            let got = rows.len() as i64;
            for r in &rows {
                let st = slot_state(r)?;
                if st.booked < st.slot.limit(q.channel, q.now) {
                    out.push(st);
                    if out.len() >= q.limit {
                        return Ok(out);
                    }
                }
            }
            if got < page {
                return Ok(out);
            }
            offset += page;
        }
    }

    async fn appointments_at(
        &self,
        org: Id,
        day: chrono::NaiveDate,
    ) -> Result<Vec<ClinicAppointment>> {
        let start = day.and_hms_opt(0, 0, 0).unwrap_or_default();
        let rows = self
            .pool()
            .rows(
                "SELECT a.id, a.slot_id, a.resident_id, a.status, a.cancel_reason, s.start, sc.service, sc.practitioner_id \
                 FROM appointments a JOIN slots s ON s.id = a.slot_id \
                 JOIN schedules sc ON sc.id = s.schedule_id \
                 WHERE sc.org_id = $1 AND s.start >= $2 AND s.start < $3 ORDER BY s.start, a.id",
                vec![
                    Param::I64(org),
                    Param::DateTime(start),
                    Param::DateTime(start + chrono::Duration::days(1)),
                ],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let text = r.text(3)?;
                Ok(ClinicAppointment {
                    appointment: AppointmentRow {
                        id: r.i64(0)?,
                        slot_id: r.i64(1)?,
                        resident_id: r.i64(2)?,
                        status: Status::parse(&text)
                            .ok_or_else(|| StoreError::Corrupt(format!("status {text:?}")))?,
                        cancel_reason: r.otext(4)?,
                    },
                    start: r.datetime(5)?,
                    service: r.text(6)?,
                    practitioner_id: r.oi64(7)?,
                })
            })
            .collect()
    }

    async fn search_schedules(&self, f: &ScheduleFilter) -> Result<(Vec<Schedule>, i64)> {
        pool::schedules(self.pool(), f).await
    }

    async fn search_slots(&self, f: &SlotFilter) -> Result<(Vec<SlotState>, i64)> {
        pool::slots(self.pool(), f).await
    }

    async fn search_appointments(
        &self,
        f: &AppointmentFilter,
    ) -> Result<(Vec<AppointmentView>, i64)> {
        pool::appointments(self.pool(), f).await
    }

    async fn appointment(&self, id: Id) -> Result<Option<AppointmentView>> {
        pool::appointment(self.pool(), id).await
    }

    async fn void_stale_reminders(&self, now: NaiveDateTime) -> Result<u64> {
        reminders::void_stale(self.pool(), now).await
    }

    async fn settle_reminders(&self, settled: &[(Id, NaiveDateTime)], detail: &str) -> Result<u64> {
        let tx = self.begin_write().await?;
        let mut n = 0;
        for (appointment, before) in settled {
            n += tx
                .rows(
                    "UPDATE reminders SET status = 'sent', attempts = 1, done_at = due, \
                     detail = $3 WHERE appointment_id = $1 AND status = 'pending' \
                     AND due < $2 RETURNING appointment_id",
                    vec![
                        Param::I64(*appointment),
                        Param::DateTime(*before),
                        Param::from(detail),
                    ],
                )
                .await?
                .len() as u64;
        }
        tx.commit().await?;
        Ok(n)
    }

    async fn due_reminders(&self, now: NaiveDateTime, limit: i64) -> Result<Vec<DueReminder>> {
        reminders::due(self.pool(), now, limit).await
    }

    async fn record_reminder(
        &self,
        appointment: Id,
        kind: &str,
        delivery: &Delivery,
        at: NaiveDateTime,
    ) -> Result<()> {
        reminders::record(self.pool(), appointment, kind, delivery, at).await
    }

    async fn reminders_of(&self, appointment: Id) -> Result<Vec<Reminder>> {
        reminders::of(self.pool(), appointment).await
    }

    async fn join_waitlist(&self, w: &Wait, at: NaiveDateTime) -> Result<Id> {
        let tx = self.begin_write().await?;
        let id = waitlist::join_in(&tx, w, at).await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn withdraw_waitlist(&self, id: Id, at: NaiveDateTime) -> Result<()> {
        let tx = self.begin_write().await?;
        waitlist::withdraw_in(&tx, self.name() == "postgres", id, at).await?;
        tx.commit().await
    }

    async fn expire_offers(&self, now: NaiveDateTime) -> Result<(u64, u64)> {
        let mut expired = 0;
        for appointment in waitlist::lapsed_offers(self.pool(), now).await? {
            let tx = self.begin_write().await?;
            if waitlist::expire_in(&tx, self.name() == "postgres", appointment, now).await? {
                expired += 1;
            }
            tx.commit().await?;
        }
        let lapsed = waitlist::lapse(self.pool(), now.date(), now).await?;
        Ok((expired, lapsed))
    }

    async fn release_holds(&self, now: NaiveDateTime) -> Result<u64> {
        let lapsed: Vec<Id> = self
            .pool()
            .rows(
                "SELECT id FROM appointments WHERE hold_until <= $1 \
                 AND status = 'pending' ORDER BY hold_until, id",
                vec![Param::DateTime(now)],
            )
            .await?
            .iter()
            .map(|r| r.i64(0))
            .collect::<Result<_>>()?;
        let mut released = 0;
        for id in lapsed {
            let tx = self.begin_write().await?;
            // Still held (not booked meanwhile), now inside the transaction.
            let still = tx
                .rows(
                    "SELECT id FROM appointments WHERE id = $1 AND hold_until <= $2 \
                     AND status = 'pending'",
                    vec![Param::I64(id), Param::DateTime(now)],
                )
                .await?;
            if !still.is_empty() {
                step_in(
                    &tx,
                    self.name() == "postgres",
                    id,
                    Step::Cancel,
                    Some("other"),
                    now,
                )
                .await?;
                released += 1;
            }
            tx.commit().await?;
        }
        Ok(released)
    }

    async fn waitlist_of(&self, resident: Id) -> Result<Vec<WaitEntry>> {
        waitlist::of(self.pool(), resident).await
    }

    async fn waitlist_entry(&self, id: Id) -> Result<Option<WaitEntry>> {
        waitlist::one(self.pool(), id).await
    }

    async fn pool_faults(&self) -> Result<(i64, i64)> {
        // The statuses that hold a place, from the life cycle (`Status::holds_place`).
        let holding: Vec<Param> = Status::ALL
            .into_iter()
            .filter(|s| s.holds_place())
            .map(|s| Param::Text(s.as_str().into()))
            .collect();
        let marks = crate::shared::placeholders(0, holding.len(), true);
        let rows = self
            .pool()
            .rows(
                &format!(
                    "SELECT \
                       COALESCE(SUM(CASE WHEN COALESCE(h.n, 0) > s.capacity THEN 1 ELSE 0 END), 0), \
                       COALESCE(SUM(CASE WHEN COALESCE(h.n, 0) <> s.booked THEN 1 ELSE 0 END), 0) \
                     FROM slots s LEFT JOIN (SELECT slot_id, COUNT(*) AS n FROM appointments \
                       WHERE status IN {marks} GROUP BY slot_id) h ON h.slot_id = s.id"
                ),
                holding,
            )
            .await?;
        let r = rows
            .first()
            .ok_or_else(|| StoreError::Corrupt("no pool figures".into()))?;
        Ok((r.i64(0)?, r.i64(1)?))
    }
}
