//! The waitlist of a schedule. A place that frees in a future slot (a cancellation, an
//! offer declined or lapsed) is offered, in the freeing transaction, to the first in
//! the schedule's line whose days cover the slot and who may take it (the channel's
//! share, no clashing booking): the offer is a `pending` appointment holding the place
//! until it is accepted (`Step::Accept`, then booked and reminded like any booking) or
//! until `offer_until`, when the round expires it and the place goes to the next.

use chrono::{NaiveDate, NaiveDateTime};
use dhp_core::booking::{offer_until, Channel, Status, Step, Wait};
use dhp_core::Id;

use super::{channel_name, claim, read_slot, Booking};
use crate::rows::Col;
use crate::shared::{Exec, Param};
use crate::{Result, StoreError};

/// Entries looked at for one freed place (the first who can take it is offered it).
const LOOK_AHEAD: i64 = 50;

/// One resident's place in a schedule's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitEntry {
    pub id: Id,
    pub schedule_id: Id,
    pub resident_id: Id,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// `public` or `referral`.
    pub channel: String,
    /// `waiting`, `offered`, `booked`, `expired`, `withdrawn` or `lapsed`.
    pub status: String,
    pub joined: NaiveDateTime,
    /// The pending appointment offered (then booked).
    pub appointment_id: Option<Id>,
    pub offer_until: Option<NaiveDateTime>,
    /// Those ahead in the line while waiting.
    pub ahead: i64,
}

const ENTRY: &str = "SELECT w.id, w.schedule_id, w.resident_id, w.from_day, w.to_day, w.channel, \
     w.status, w.joined, w.appointment_id, w.offer_until, \
     (SELECT COUNT(*) FROM waitlist o WHERE o.schedule_id = w.schedule_id \
      AND o.status = 'waiting' AND w.status = 'waiting' \
      AND (o.joined < w.joined OR (o.joined = w.joined AND o.id < w.id))) \
     FROM waitlist w";

fn entry<R: Col>(r: &R) -> Result<WaitEntry> {
    Ok(WaitEntry {
        id: r.i64(0)?,
        schedule_id: r.i64(1)?,
        resident_id: r.i64(2)?,
        from: r.date(3)?,
        to: r.date(4)?,
        channel: r.text(5)?,
        status: r.text(6)?,
        joined: r.datetime(7)?,
        appointment_id: r.oi64(8)?,
        offer_until: r.odatetime(9)?,
        ahead: r.i64(10)?,
    })
}

/// Put a resident in a schedule's line; refused if they are already in it. The
/// schedule must exist and be bookable by the entry's channel.
pub(crate) async fn join_in<E: Exec>(tx: &E, w: &Wait, at: NaiveDateTime) -> Result<Id> {
    w.check(at.date())
        .map_err(|e| StoreError::Invalid(format!("{}: {}", e.field, e.why)))?;
    let known = tx
        .rows(
            "SELECT 1 FROM schedules WHERE id = $1",
            vec![Param::I64(w.schedule_id)],
        )
        .await?;
    if known.is_empty() {
        return Err(StoreError::NotFound(format!("schedule {}", w.schedule_id)));
    }
    let already = tx
        .rows(
            "SELECT id FROM waitlist WHERE schedule_id = $1 AND resident_id = $2 \
             AND status IN ('waiting', 'offered')",
            vec![Param::I64(w.schedule_id), Param::I64(w.resident_id)],
        )
        .await?;
    if !already.is_empty() {
        return Err(StoreError::Conflict(format!(
            "resident {} is already on the waitlist of schedule {}",
            w.resident_id, w.schedule_id
        )));
    }
    let rows = tx
        .rows(
            "INSERT INTO waitlist (schedule_id, resident_id, from_day, to_day, channel, joined, updated) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
            vec![
                Param::I64(w.schedule_id),
                Param::I64(w.resident_id),
                Param::Date(w.from),
                Param::Date(w.to),
                Param::Text(channel_name(w.channel).into()),
                Param::DateTime(at),
            ],
        )
        .await?;
    rows.first()
        .ok_or_else(|| StoreError::Corrupt("waitlist insert returned no id".into()))?
        .i64(0)
}

/// Offer the place that freed in `slot` at `at` to the first in line who can take it;
/// whether one was offered. Nothing happens for a slot that has begun or is withdrawn.
pub(crate) async fn promote_in<E: Exec>(
    tx: &E,
    postgres: bool,
    slot: Id,
    at: NaiveDateTime,
) -> Result<bool> {
    let s = read_slot(tx, slot).await?;
    if s.status != "free" || s.slot.past(at) || s.booked >= s.slot.capacity {
        return Ok(false);
    }
    let line = tx
        .rows(
            "SELECT id, resident_id, channel FROM waitlist WHERE schedule_id = $1 \
             AND status = 'waiting' AND from_day <= $2 AND to_day >= $2 \
             ORDER BY joined, id LIMIT $3",
            vec![
                Param::I64(s.slot.schedule_id),
                Param::Date(s.slot.start.date()),
                Param::I64(LOOK_AHEAD),
            ],
        )
        .await?;
    let line: Vec<(Id, Id, Channel)> = line
        .iter()
        .map(|r| {
            let channel = if r.text(2)? == "referral" {
                Channel::Referral
            } else {
                Channel::Public
            };
            Ok((r.i64(0)?, r.i64(1)?, channel))
        })
        .collect::<Result<_>>()?;
    let mut reserved = None;
    for (entry, resident, channel) in line {
        if postgres {
            // A resident booking at this moment is passed over, never waited for: the
            // freeing transaction holds the slot's lock, a booking takes the
            // resident's first, and waiting here could deadlock.
            let locked = tx
                .rows(
                    "SELECT id FROM residents WHERE id = $1 FOR UPDATE SKIP LOCKED",
                    vec![Param::I64(resident)],
                )
                .await?;
            if locked.is_empty() {
                continue;
            }
        }
        // One id for the offer, whoever takes it (a refused claim writes nothing).
        let appointment_id = match reserved {
            Some(id) => id,
            None => *reserved.insert(crate::resources::reserve_ids(tx, "Appointment", 1).await?),
        };
        let b = Booking {
            appointment_id,
            slot_id: slot,
            resident_id: resident,
            channel,
            at,
        };
        match claim(tx, &s, &b, Status::Pending).await {
            Ok(()) => {}
            // This one cannot take it (a clashing booking, the reserved share): next.
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
        tx.execute(
            "UPDATE waitlist SET status = 'offered', appointment_id = $1, offer_until = $2, \
             updated = $3 WHERE id = $4",
            vec![
                Param::I64(appointment_id),
                Param::DateTime(offer_until(at, s.slot.start)),
                Param::DateTime(at),
                Param::I64(entry),
            ],
        )
        .await?;
        return Ok(true);
    }
    Ok(false)
}

/// In the transaction accepting offer `appointment`: the offer must stand at `at`.
/// The slot's start (for the reminders).
pub(crate) async fn accept_in<E: Exec>(
    tx: &E,
    appointment: Id,
    at: NaiveDateTime,
) -> Result<NaiveDateTime> {
    let rows = tx
        .rows(
            "UPDATE waitlist SET status = 'booked', updated = $1 WHERE appointment_id = $2 \
             AND status = 'offered' AND offer_until > $1 RETURNING id",
            vec![Param::DateTime(at), Param::I64(appointment)],
        )
        .await?;
    if rows.is_empty() {
        return Err(StoreError::Conflict(format!(
            "the offer of appointment {appointment} has lapsed"
        )));
    }
    let start = tx
        .rows(
            "SELECT s.start FROM appointments a JOIN slots s ON s.id = a.slot_id WHERE a.id = $1",
            vec![Param::I64(appointment)],
        )
        .await?;
    start
        .first()
        .ok_or_else(|| StoreError::NotFound(format!("appointment {appointment}")))?
        .datetime(0)
}

/// In the transaction that cancelled pending appointment `appointment`: its entry is
/// out of the line (declined, or expired by the round before it called this).
pub(crate) async fn offer_ended_in<E: Exec>(
    tx: &E,
    appointment: Id,
    at: NaiveDateTime,
) -> Result<()> {
    tx.execute(
        "UPDATE waitlist SET status = 'withdrawn', updated = $1 \
         WHERE appointment_id = $2 AND status = 'offered'",
        vec![Param::DateTime(at), Param::I64(appointment)],
    )
    .await
}

/// Offers not accepted by `now`, to expire.
pub(crate) async fn lapsed_offers<E: Exec>(e: &E, now: NaiveDateTime) -> Result<Vec<Id>> {
    let rows = e
        .rows(
            "SELECT appointment_id FROM waitlist WHERE status = 'offered' AND offer_until <= $1 \
             ORDER BY offer_until, id",
            vec![Param::DateTime(now)],
        )
        .await?;
    rows.iter().map(|r| r.i64(0)).collect()
}

/// In one transaction: the offer of `appointment` has expired; the place it held goes
/// back and on to the next in line (by `step_in`'s cancel).
pub(crate) async fn expire_in<E: Exec>(
    tx: &E,
    postgres: bool,
    appointment: Id,
    now: NaiveDateTime,
) -> Result<bool> {
    let rows = tx
        .rows(
            "UPDATE waitlist SET status = 'expired', updated = $1 WHERE appointment_id = $2 \
             AND status = 'offered' AND offer_until <= $1 RETURNING id",
            vec![Param::DateTime(now), Param::I64(appointment)],
        )
        .await?;
    if rows.is_empty() {
        // Accepted or declined meanwhile.
        return Ok(false);
    }
    super::step_in(tx, postgres, appointment, Step::Cancel, Some("other"), now).await?;
    Ok(true)
}

/// Entries still waiting whose last day has passed by `today` leave the line; how many.
pub(crate) async fn lapse<E: Exec>(e: &E, today: NaiveDate, at: NaiveDateTime) -> Result<u64> {
    let rows = e
        .rows(
            "UPDATE waitlist SET status = 'lapsed', updated = $1 \
             WHERE status = 'waiting' AND to_day < $2 RETURNING id",
            vec![Param::DateTime(at), Param::Date(today)],
        )
        .await?;
    Ok(rows.len() as u64)
}

/// In one transaction: a resident leaves the line (declining an offer gives its place
/// on). Refused for an entry that is no longer waiting or offered.
pub(crate) async fn withdraw_in<E: Exec>(
    tx: &E,
    postgres: bool,
    id: Id,
    at: NaiveDateTime,
) -> Result<()> {
    let rows = tx
        .rows(
            "SELECT status, appointment_id FROM waitlist WHERE id = $1",
            vec![Param::I64(id)],
        )
        .await?;
    let r = rows
        .first()
        .ok_or_else(|| StoreError::NotFound(format!("waitlist entry {id}")))?;
    let (status, appointment) = (r.text(0)?, r.oi64(1)?);
    match (status.as_str(), appointment) {
        ("waiting", _) => {
            tx.execute(
                "UPDATE waitlist SET status = 'withdrawn', updated = $1 WHERE id = $2",
                vec![Param::DateTime(at), Param::I64(id)],
            )
            .await
        }
        ("offered", Some(a)) => super::step_in(tx, postgres, a, Step::Cancel, Some("pat"), at)
            .await
            .map(|_| ()),
        (other, _) => Err(StoreError::Conflict(format!(
            "waitlist entry {id} is {other}, no longer in the line"
        ))),
    }
}

/// A resident's entries, newest first.
pub(crate) async fn of<E: Exec>(e: &E, resident: Id) -> Result<Vec<WaitEntry>> {
    let rows = e
        .rows(
            &format!("{ENTRY} WHERE w.resident_id = $1 ORDER BY w.joined DESC, w.id DESC"),
            vec![Param::I64(resident)],
        )
        .await?;
    rows.iter().map(entry).collect()
}

/// One entry.
pub(crate) async fn one<E: Exec>(e: &E, id: Id) -> Result<Option<WaitEntry>> {
    let rows = e
        .rows(&format!("{ENTRY} WHERE w.id = $1"), vec![Param::I64(id)])
        .await?;
    rows.first().map(entry).transpose()
}
