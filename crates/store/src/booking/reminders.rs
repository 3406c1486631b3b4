//! The reminder outbox: a booking queues its reminders (the day before, and two hours
//! before the slot) in its own transaction, so no booking is without them and none is
//! sent for a booking that did not commit; delivery reads what is due and records each
//! outcome.

use chrono::{Duration, NaiveDateTime};
use dhp_core::booking::Status;
use dhp_core::Id;

use crate::rows::Col;
use crate::shared::{Exec, Param};
use crate::{Result, StoreError};

/// A reminder that is due, with what its message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueReminder {
    pub appointment_id: Id,
    /// `day-before` or `two-hours`.
    pub kind: String,
    pub due: NaiveDateTime,
    /// The appointment's status now (a cancelled one is not reminded of).
    pub status: Status,
    pub resident_id: Id,
    pub phone: String,
    pub start: NaiveDateTime,
    pub service: String,
    pub org_id: Id,
}

/// A reminder as the outbox keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reminder {
    pub kind: String,
    pub due: NaiveDateTime,
    /// `pending`, `sent`, `failed` or `void`.
    pub status: String,
    pub attempts: i64,
    pub detail: Option<String>,
}

/// What became of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent(String),
    /// Tried and failed; tried again until the third attempt.
    Failed(String),
    /// The appointment is no longer booked.
    Void,
}

/// Queue the reminders of a booking made at `at` for a slot starting at `start`, inside
/// the booking's transaction; those already past are left out.
pub(crate) async fn queue<E: Exec>(
    tx: &E,
    appointment: Id,
    start: NaiveDateTime,
    at: NaiveDateTime,
) -> Result<()> {
    // One statement for all of the booking's reminders.
    let (mut values, mut params) = (Vec::new(), Vec::new());
    for rule in &dhp_core::booking::limits().reminders {
        let due = start - Duration::minutes(rule.minutes_before);
        if due > at {
            let n = params.len();
            values.push(format!("(${}, ${}, ${})", n + 1, n + 2, n + 3));
            params.extend([
                Param::I64(appointment),
                Param::from(rule.kind.as_str()),
                Param::DateTime(due),
            ]);
        }
    }
    if !values.is_empty() {
        tx.execute(
            &format!(
                "INSERT INTO reminders (appointment_id, kind, due) VALUES {}",
                values.join(", ")
            ),
            params,
        )
        .await?;
    }
    Ok(())
}

pub(crate) async fn due<E: Exec>(
    e: &E,
    now: NaiveDateTime,
    limit: i64,
) -> Result<Vec<DueReminder>> {
    let rows = e
        .rows(
            "SELECT m.appointment_id, m.kind, m.due, a.status, a.resident_id, r.phone, s.start, \
             sc.service, sc.org_id FROM reminders m \
             JOIN appointments a ON a.id = m.appointment_id JOIN slots s ON s.id = a.slot_id \
             JOIN schedules sc ON sc.id = s.schedule_id JOIN residents r ON r.id = a.resident_id \
             WHERE m.status = 'pending' AND m.due <= $1 ORDER BY m.due, m.appointment_id LIMIT $2",
            vec![Param::DateTime(now), Param::I64(limit)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let status = r.text(3)?;
            Ok(DueReminder {
                appointment_id: r.i64(0)?,
                kind: r.text(1)?,
                due: r.datetime(2)?,
                status: Status::parse(&status)
                    .ok_or_else(|| StoreError::Corrupt(format!("status {status:?}")))?,
                resident_id: r.i64(4)?,
                phone: r.text(5)?,
                start: r.datetime(6)?,
                service: r.text(7)?,
                org_id: r.i64(8)?,
            })
        })
        .collect()
}

pub(crate) async fn record<E: Exec>(
    e: &E,
    appointment: Id,
    kind: &str,
    delivery: &Delivery,
    at: NaiveDateTime,
) -> Result<()> {
    let (status, detail) = match delivery {
        Delivery::Sent(d) => ("sent", Some(d.clone())),
        Delivery::Failed(d) => ("failed", Some(d.clone())),
        Delivery::Void => ("void", None),
    };
    // A failure stays pending until its last attempt.
    e.execute(
        "UPDATE reminders SET attempts = attempts + 1, done_at = $1, detail = $2, \
         status = CASE WHEN $3 = 'failed' AND attempts + 1 < $4 THEN 'pending' ELSE $3 END \
         WHERE appointment_id = $5 AND kind = $6 AND status = 'pending'",
        vec![
            Param::DateTime(at),
            Param::OptText(detail),
            Param::from(status),
            Param::I64(dhp_core::booking::limits().delivery_attempts),
            Param::I64(appointment),
            Param::from(kind),
        ],
    )
    .await
}

pub(crate) async fn of<E: Exec>(e: &E, appointment: Id) -> Result<Vec<Reminder>> {
    let rows = e
        .rows(
            "SELECT kind, due, status, attempts, detail FROM reminders \
             WHERE appointment_id = $1 ORDER BY due",
            vec![Param::I64(appointment)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Reminder {
                kind: r.text(0)?,
                due: r.datetime(1)?,
                status: r.text(2)?,
                attempts: r.i64(3)?,
                detail: r.otext(4)?,
            })
        })
        .collect()
}

/// Void, in bulk, the pending reminders due by `now` that no longer have a purpose:
/// their appointment is no longer booked, or its slot has begun. How many.
pub(crate) async fn void_stale<E: Exec>(e: &E, now: NaiveDateTime) -> Result<u64> {
    let mut voided = 0;
    for (why, cond) in [
        (
            "the appointment is no longer booked",
            "a.status <> 'booked'",
        ),
        ("the appointment had begun", "s.start <= $1"),
    ] {
        let rows = e
            .rows(
                &format!(
                    "UPDATE reminders SET status = 'void', done_at = $1, detail = $2 \
                     WHERE status = 'pending' AND due <= $1 AND appointment_id IN \
                     (SELECT a.id FROM appointments a JOIN slots s ON s.id = a.slot_id \
                     WHERE {cond}) RETURNING appointment_id"
                ),
                vec![Param::DateTime(now), Param::from(why)],
            )
            .await?;
        voided += rows.len() as u64;
    }
    Ok(voided)
}

/// In the transaction of a step that left `booked`: the appointment's pending
/// reminders will not be sent.
pub(crate) async fn void_of<E: Exec>(
    tx: &E,
    appointment: Id,
    now: Status,
    at: NaiveDateTime,
) -> Result<()> {
    tx.execute(
        "UPDATE reminders SET status = 'void', done_at = $1, detail = $2 \
         WHERE appointment_id = $3 AND status = 'pending'",
        vec![
            Param::DateTime(at),
            Param::Text(format!("the appointment is {}", now.as_str())),
            Param::I64(appointment),
        ],
    )
    .await
}
