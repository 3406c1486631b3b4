//! The slot pool as the FHIR API reads it: schedules, slots and appointments found by
//! their search parameters, paged, appointments only within the reader's scope; and
//! the bookings and steps a FHIR write set carries, taken inside its transaction by the
//! same guarded statements as every other path ([`super::book_in`], [`super::step_in`]).

use chrono::{NaiveDate, NaiveDateTime};
use dhp_core::access::Scope;
use dhp_core::booking::{Schedule, Status, Step};
use dhp_core::query::DateCond;
use dhp_core::Id;

use super::{slot_state, AppointmentRow, Booking, SlotState};
use crate::rows::Col;
use crate::shared::{scope_clause, Exec, Param};
use crate::{Result, StoreError};

/// Which schedules to find.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleFilter {
    pub ids: Vec<Id>,
    /// The organisation or practitioner the schedule is for (`Schedule.actor`).
    pub orgs: Vec<Id>,
    pub practitioners: Vec<Id>,
    pub services: Vec<String>,
    pub limit: i64,
    pub offset: i64,
}

/// Which slots to find (the FHIR `Slot` search).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotFilter {
    pub ids: Vec<Id>,
    pub schedules: Vec<Id>,
    /// `schedule.actor`: the schedule's organisation or practitioner.
    pub orgs: Vec<Id>,
    pub practitioners: Vec<Id>,
    pub services: Vec<String>,
    /// FHIR slot statuses: `free`, `busy`, `busy-unavailable`.
    pub statuses: Vec<String>,
    pub start: Vec<DateCond>,
    pub limit: i64,
    pub offset: i64,
}

/// Which appointments to find (the FHIR `Appointment` search), within `scope`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppointmentFilter {
    pub ids: Vec<Id>,
    pub residents: Vec<Id>,
    pub slots: Vec<Id>,
    pub orgs: Vec<Id>,
    pub practitioners: Vec<Id>,
    pub statuses: Vec<String>,
    pub services: Vec<String>,
    /// On the slot's start.
    pub date: Vec<DateCond>,
    pub scope: Scope,
    pub today: NaiveDate,
    pub limit: i64,
    pub offset: i64,
}

impl AppointmentFilter {
    /// Every appointment (the first `limit`), unscoped, as of `today`; narrowed by
    /// setting fields.
    pub fn all(today: NaiveDate, limit: i64) -> Self {
        Self {
            ids: Vec::new(),
            residents: Vec::new(),
            slots: Vec::new(),
            orgs: Vec::new(),
            practitioners: Vec::new(),
            statuses: Vec::new(),
            services: Vec::new(),
            date: Vec::new(),
            scope: Scope::All,
            today,
            limit,
            offset: 0,
        }
    }
}

/// An appointment with everything its FHIR form shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppointmentView {
    pub row: AppointmentRow,
    pub slot: SlotState,
    pub practitioner_id: Option<Id>,
    /// `public` or `referral`.
    pub channel: String,
    pub created: NaiveDateTime,
    pub updated: NaiveDateTime,
    /// 1 when booked, one more for every step since.
    pub version: i64,
    /// The institution that held the place (`$hold`), if it was held: only it books
    /// the hold.
    pub held_by: Option<Id>,
}

/// A step a write set takes on an appointment (cancel, check in, complete, no-show).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppointmentStep {
    pub appointment_id: Id,
    pub step: Step,
    pub reason: Option<String>,
    pub at: NaiveDateTime,
    /// The status the step was decided from: moved meanwhile, nothing is written.
    pub from: Status,
}

/// Collects a statement's parameters and hands out their placeholders.
struct Binds(Vec<Param>);

impl Binds {
    fn bind(&mut self, p: Param) -> String {
        self.0.push(p);
        format!("${}", self.0.len())
    }

    fn any_i64(&mut self, col: &str, ids: &[Id], cond: &mut Vec<String>) {
        if !ids.is_empty() {
            let marks: Vec<String> = ids.iter().map(|i| self.bind(Param::I64(*i))).collect();
            cond.push(format!("{col} IN ({})", marks.join(", ")));
        }
    }

    fn any_text(&mut self, col: &str, values: &[String], cond: &mut Vec<String>) {
        if !values.is_empty() {
            let marks: Vec<String> = values
                .iter()
                .map(|v| self.bind(Param::Text(v.clone())))
                .collect();
            cond.push(format!("{col} IN ({})", marks.join(", ")));
        }
    }

    fn dates(&mut self, col: &str, conds: &[DateCond], cond: &mut Vec<String>) {
        for c in conds {
            cond.push(match c {
                DateCond::Ge(t) => format!("{col} >= {}", self.bind(Param::DateTime(*t))),
                DateCond::Lt(t) => format!("{col} < {}", self.bind(Param::DateTime(*t))),
                DateCond::Outside(a, b) => format!(
                    "({col} < {} OR {col} >= {})",
                    self.bind(Param::DateTime(*a)),
                    self.bind(Param::DateTime(*b))
                ),
            });
        }
    }
}

fn where_sql(cond: &[String]) -> String {
    if cond.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", cond.join(" AND "))
    }
}

fn schedule_of<R: Col>(r: &R) -> Result<Schedule> {
    let n = |i| -> Result<u32> {
        u32::try_from(r.i64(i)?).map_err(|_| StoreError::Corrupt(format!("schedule column {i}")))
    };
    let days = r.text(4)?;
    let mut weekdays = [false; 7];
    for (i, c) in days.chars().take(7).enumerate() {
        weekdays[i] = c == '1';
    }
    let first = r.text(5)?;
    Ok(Schedule {
        id: r.i64(0)?,
        org_id: r.i64(1)?,
        service: r.text(2)?,
        practitioner_id: r.oi64(3)?,
        weekdays,
        first_start: chrono::NaiveTime::parse_from_str(&first, "%H:%M")
            .map_err(|_| StoreError::Corrupt(format!("schedule first start {first:?}")))?,
        slot_minutes: n(6)?,
        slots_per_day: n(7)?,
        capacity: n(8)?,
        referral_share: n(9)?,
        release_hours: n(10)?,
        horizon_days: n(11)?,
    })
}

async fn total<E: Exec>(e: &E, sql: &str, params: Vec<Param>) -> Result<i64> {
    let rows = e.rows(sql, params).await?;
    rows.first()
        .map(|r| r.i64(0))
        .transpose()
        .map(|n| n.unwrap_or(0))
}

pub(crate) async fn schedules<E: Exec>(e: &E, f: &ScheduleFilter) -> Result<(Vec<Schedule>, i64)> {
    let mut b = Binds(Vec::new());
    let mut cond = Vec::new();
    b.any_i64("id", &f.ids, &mut cond);
    b.any_i64("org_id", &f.orgs, &mut cond);
    b.any_i64("practitioner_id", &f.practitioners, &mut cond);
    b.any_text("service", &f.services, &mut cond);
    let w = where_sql(&cond);
    let n = total(
        e,
        &format!("SELECT COUNT(*) FROM schedules {w}"),
        b.0.clone(),
    )
    .await?;
    let (l, o) = (b.bind(Param::I64(f.limit)), b.bind(Param::I64(f.offset)));
    let rows = e
        .rows(
            &format!(
                "SELECT id, org_id, service, practitioner_id, weekdays, first_start, slot_minutes, \
                 slots_per_day, capacity, referral_share, release_hours, horizon_days \
                 FROM schedules {w} ORDER BY id LIMIT {l} OFFSET {o}"
            ),
            b.0,
        )
        .await?;
    Ok((rows.iter().map(schedule_of).collect::<Result<_>>()?, n))
}

/// The condition a FHIR slot status puts on a slot (alias `s`).
fn slot_status_sql(status: &str) -> Option<&'static str> {
    Some(match status {
        "free" => "(s.status = 'free' AND s.booked < s.capacity)",
        "busy" => "(s.status = 'free' AND s.booked >= s.capacity)",
        "busy-unavailable" => "s.status <> 'free'",
        _ => return None,
    })
}

pub(crate) async fn slots<E: Exec>(e: &E, f: &SlotFilter) -> Result<(Vec<SlotState>, i64)> {
    let mut b = Binds(Vec::new());
    let mut cond = Vec::new();
    b.any_i64("s.id", &f.ids, &mut cond);
    b.any_i64("s.schedule_id", &f.schedules, &mut cond);
    b.any_i64("sc.org_id", &f.orgs, &mut cond);
    b.any_i64("sc.practitioner_id", &f.practitioners, &mut cond);
    b.any_text("sc.service", &f.services, &mut cond);
    if !f.statuses.is_empty() {
        let any: Vec<&str> = f
            .statuses
            .iter()
            .map(|s| slot_status_sql(s).unwrap_or("1 = 0"))
            .collect();
        cond.push(format!("({})", any.join(" OR ")));
    }
    b.dates("s.start", &f.start, &mut cond);
    let w = where_sql(&cond);
    let from = "FROM slots s JOIN schedules sc ON sc.id = s.schedule_id";
    let n = total(e, &format!("SELECT COUNT(*) {from} {w}"), b.0.clone()).await?;
    let (l, o) = (b.bind(Param::I64(f.limit)), b.bind(Param::I64(f.offset)));
    let rows = e
        .rows(
            &format!(
                "SELECT s.id, s.schedule_id, s.start, s.\"end\", s.capacity, s.reserved, \
                 s.release, s.booked, s.status, sc.service, sc.org_id {from} {w} \
                 ORDER BY s.start, s.id LIMIT {l} OFFSET {o}"
            ),
            b.0,
        )
        .await?;
    Ok((rows.iter().map(slot_state).collect::<Result<_>>()?, n))
}

const APPOINTMENT_COLUMNS: &str = "a.id, a.slot_id, a.resident_id, a.status, a.cancel_reason, \
    s.id, s.schedule_id, s.start, s.\"end\", s.capacity, s.reserved, s.release, s.booked, \
    s.status, sc.service, sc.org_id, sc.practitioner_id, a.channel, a.created, a.updated, \
    a.version, a.held_by";

const APPOINTMENT_FROM: &str = "FROM appointments a JOIN slots s ON s.id = a.slot_id \
    JOIN schedules sc ON sc.id = s.schedule_id JOIN residents r ON r.id = a.resident_id";

/// A row read with [`APPOINTMENT_COLUMNS`]: the slot's columns start at 5.
struct Shifted<'a, R>(&'a R);

impl<R: Col> Col for Shifted<'_, R> {
    fn i64(&self, i: usize) -> Result<i64> {
        self.0.i64(i + 5)
    }
    fn oi64(&self, i: usize) -> Result<Option<i64>> {
        self.0.oi64(i + 5)
    }
    fn text(&self, i: usize) -> Result<String> {
        self.0.text(i + 5)
    }
    fn otext(&self, i: usize) -> Result<Option<String>> {
        self.0.otext(i + 5)
    }
    fn date(&self, i: usize) -> Result<NaiveDate> {
        self.0.date(i + 5)
    }
    fn odate(&self, i: usize) -> Result<Option<NaiveDate>> {
        self.0.odate(i + 5)
    }
    fn datetime(&self, i: usize) -> Result<NaiveDateTime> {
        self.0.datetime(i + 5)
    }
    fn odatetime(&self, i: usize) -> Result<Option<NaiveDateTime>> {
        self.0.odatetime(i + 5)
    }
    fn f64(&self, i: usize) -> Result<f64> {
        self.0.f64(i + 5)
    }
    fn bool(&self, i: usize) -> Result<bool> {
        self.0.bool(i + 5)
    }
}

fn appointment_view<R: Col>(r: &R) -> Result<AppointmentView> {
    let text = r.text(3)?;
    Ok(AppointmentView {
        row: AppointmentRow {
            id: r.i64(0)?,
            slot_id: r.i64(1)?,
            resident_id: r.i64(2)?,
            status: Status::parse(&text)
                .ok_or_else(|| StoreError::Corrupt(format!("status {text:?}")))?,
            cancel_reason: r.otext(4)?,
        },
        slot: slot_state(&Shifted(r))?,
        practitioner_id: r.oi64(16)?,
        channel: r.text(17)?,
        created: r.datetime(18)?,
        updated: r.datetime(19)?,
        version: r.i64(20)?,
        held_by: r.oi64(21)?,
    })
}

pub(crate) async fn appointments<E: Exec>(
    e: &E,
    f: &AppointmentFilter,
) -> Result<(Vec<AppointmentView>, i64)> {
    let mut b = Binds(Vec::new());
    let mut cond = Vec::new();
    b.any_i64("a.id", &f.ids, &mut cond);
    b.any_i64("a.resident_id", &f.residents, &mut cond);
    b.any_i64("a.slot_id", &f.slots, &mut cond);
    b.any_i64("sc.org_id", &f.orgs, &mut cond);
    b.any_i64("sc.practitioner_id", &f.practitioners, &mut cond);
    b.any_text("a.status", &f.statuses, &mut cond);
    b.any_text("sc.service", &f.services, &mut cond);
    b.dates("s.start", &f.date, &mut cond);
    if let Some(c) = scope_clause(&f.scope, f.today, &mut |p| b.bind(p)) {
        cond.push(c);
    }
    let w = where_sql(&cond);
    let n = total(
        e,
        &format!("SELECT COUNT(*) {APPOINTMENT_FROM} {w}"),
        b.0.clone(),
    )
    .await?;
    let (l, o) = (b.bind(Param::I64(f.limit)), b.bind(Param::I64(f.offset)));
    let rows = e
        .rows(
            &format!(
                "SELECT {APPOINTMENT_COLUMNS} {APPOINTMENT_FROM} {w} \
                 ORDER BY s.start, a.id LIMIT {l} OFFSET {o}"
            ),
            b.0,
        )
        .await?;
    Ok((rows.iter().map(appointment_view).collect::<Result<_>>()?, n))
}

/// One appointment, whoever's it is (the caller decides who may see it).
pub(crate) async fn appointment<E: Exec>(e: &E, id: Id) -> Result<Option<AppointmentView>> {
    let rows = e
        .rows(
            &format!("SELECT {APPOINTMENT_COLUMNS} {APPOINTMENT_FROM} WHERE a.id = $1"),
            vec![Param::I64(id)],
        )
        .await?;
    rows.first().map(appointment_view).transpose()
}

/// The bookings, holds and steps of a FHIR write set, inside its open transaction. A
/// booking or hold refused (no place left, a conflict, a slot begun) fails the whole set with
/// `Conflict`, so nothing of it is written.
pub(crate) async fn apply<E: Exec>(
    tx: &E,
    postgres: bool,
    bookings: &[Booking],
    holds: &[(Booking, Option<Id>)],
    steps: &[AppointmentStep],
) -> Result<()> {
    for s in steps {
        let rows = tx
            .rows(
                "SELECT status FROM appointments WHERE id = $1",
                vec![Param::I64(s.appointment_id)],
            )
            .await?;
        let now = rows.first().map(|r| r.text(0)).transpose()?;
        if now.as_deref() != Some(s.from.as_str()) {
            return Err(StoreError::Conflict(format!(
                "appointment {} changed meanwhile",
                s.appointment_id
            )));
        }
        super::step_in(
            tx,
            postgres,
            s.appointment_id,
            s.step,
            s.reason.as_deref(),
            s.at,
        )
        .await?;
    }
    let as_conflict = |e| match e {
        StoreError::Invalid(why) => StoreError::Conflict(why),
        other => other,
    };
    for b in bookings {
        super::book_in(tx, postgres, b).await.map_err(as_conflict)?;
    }
    for (b, by) in holds {
        super::hold_in(tx, postgres, b, *by)
            .await
            .map_err(as_conflict)?;
    }
    Ok(())
}
