//! Tiered care's unified slot pool (统一号源) and the appointment life cycle
//! (domain-rules §8): schedules published by hospitals and community centres, the slots
//! they generate for a rolling horizon, the share of a specialist slot reserved for
//! referrals from community centres and when it is released to the public, and the
//! steps an appointment may take. Pure: the store checks capacity inside its
//! transaction; these rules say what to check.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

use crate::Id;

/// A schedule (号源计划): one service of one organisation, optionally one practitioner,
/// on some weekdays, with a run of equal slots a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub id: Id,
    pub org_id: Id,
    /// The service or department, e.g. `cardiology`.
    pub service: String,
    pub practitioner_id: Option<Id>,
    /// Monday first.
    pub weekdays: [bool; 7],
    /// The start of the first slot of a day (local time).
    pub first_start: NaiveTime,
    pub slot_minutes: u32,
    pub slots_per_day: u32,
    /// Patients one slot takes (≥ 1).
    pub capacity: u32,
    /// Per cent of each slot's capacity reserved for referrals from community centres
    /// (Shanghai reserves about half of specialist slots: domain-rules §8, kept as data
    /// per schedule).
    pub referral_share: u32,
    /// Hours before a slot's start when its reserved places open to everyone.
    pub release_hours: u32,
    /// Days ahead slots are generated for (the rolling horizon).
    pub horizon_days: u32,
}

/// A bad tiered-care input (a schedule, a referral, an order): the field at fault and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: &'static str,
    pub why: String,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.why)
    }
}

impl std::error::Error for Invalid {}

pub(crate) fn invalid(field: &'static str, why: impl Into<String>) -> Invalid {
    Invalid {
        field,
        why: why.into(),
    }
}

impl Schedule {
    /// Whether the schedule can generate slots at all.
    pub fn check(&self) -> Result<(), Invalid> {
        if self.service.trim().is_empty() {
            return Err(invalid("service", "a schedule names its service"));
        }
        if self.capacity == 0 {
            return Err(invalid("capacity", "a slot takes at least one patient"));
        }
        if self.slot_minutes == 0 || self.slots_per_day == 0 {
            return Err(invalid(
                "slot_minutes",
                "a day has at least one slot of at least one minute",
            ));
        }
        if self.referral_share > 100 {
            return Err(invalid(
                "referral_share",
                format!(
                    "{} per cent is more than the whole slot",
                    self.referral_share
                ),
            ));
        }
        if !self.weekdays.iter().any(|d| *d) {
            return Err(invalid("weekdays", "a schedule runs on at least one day"));
        }
        if self.horizon_days == 0 || self.horizon_days > 366 {
            return Err(invalid("horizon_days", "the horizon is 1 to 366 days"));
        }
        let day_end = i64::from(self.slot_minutes) * i64::from(self.slots_per_day)
            + i64::from(self.first_start.num_seconds_from_midnight() / 60);
        if day_end > 24 * 60 {
            return Err(invalid(
                "slots_per_day",
                "the day's slots run past midnight",
            ));
        }
        Ok(())
    }

    /// Places of each slot reserved for referrals (rounded half up: half of 3 is 2).
    pub fn reserved(&self) -> u32 {
        (self.capacity * self.referral_share + 50) / 100
    }

    /// The slots of the days `from ..= from + horizon - 1`, ids from `first_id` on.
    pub fn slots(&self, from: NaiveDate, first_id: Id) -> Result<Vec<Slot>, Invalid> {
        self.check()?;
        let mut out = Vec::new();
        let mut id = first_id;
        for d in 0..self.horizon_days {
            let day = from + Duration::days(i64::from(d));
            if !self.weekdays[day.weekday().num_days_from_monday() as usize] {
                continue;
            }
            for k in 0..self.slots_per_day {
                let start = day.and_time(self.first_start)
                    + Duration::minutes(i64::from(k * self.slot_minutes));
                out.push(Slot {
                    id,
                    schedule_id: self.id,
                    start,
                    end: start + Duration::minutes(i64::from(self.slot_minutes)),
                    capacity: self.capacity,
                    reserved: self.reserved(),
                    release: start - Duration::hours(i64::from(self.release_hours)),
                });
                id += 1;
            }
        }
        Ok(out)
    }
}

/// One slot of a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub id: Id,
    pub schedule_id: Id,
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
    pub capacity: u32,
    /// Places kept for referrals until `release`.
    pub reserved: u32,
    pub release: NaiveDateTime,
}

/// Who is booking: a referral from a community centre may take a reserved place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Public,
    Referral,
}

impl Slot {
    /// How many bookings the slot may hold for `channel` at `now`: everything for a
    /// referral or once the reserved places are released, else the public share.
    pub fn limit(&self, channel: Channel, now: NaiveDateTime) -> u32 {
        match channel {
            Channel::Referral => self.capacity,
            Channel::Public if now >= self.release => self.capacity,
            Channel::Public => self.capacity - self.reserved.min(self.capacity),
        }
    }

    /// Whether a booking at `now` comes too late (the slot has begun).
    pub fn past(&self, now: NaiveDateTime) -> bool {
        now >= self.start
    }
}

/// The FHIR R4 Appointment statuses (domain-rules §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Proposed,
    Pending,
    Booked,
    Arrived,
    Fulfilled,
    Cancelled,
    Noshow,
    EnteredInError,
    CheckedIn,
    Waitlist,
}

impl Status {
    pub const ALL: [Status; 10] = [
        Status::Proposed,
        Status::Pending,
        Status::Booked,
        Status::Arrived,
        Status::Fulfilled,
        Status::Cancelled,
        Status::Noshow,
        Status::EnteredInError,
        Status::CheckedIn,
        Status::Waitlist,
    ];

    /// The code of `http://hl7.org/fhir/appointmentstatus`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Proposed => "proposed",
            Status::Pending => "pending",
            Status::Booked => "booked",
            Status::Arrived => "arrived",
            Status::Fulfilled => "fulfilled",
            Status::Cancelled => "cancelled",
            Status::Noshow => "noshow",
            Status::EnteredInError => "entered-in-error",
            Status::CheckedIn => "checked-in",
            Status::Waitlist => "waitlist",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether an appointment in this status holds its place in the slot: a `pending`
    /// one is a place offered from the waitlist, held until accepted or expired.
    pub fn holds_place(self) -> bool {
        matches!(
            self,
            Status::Pending
                | Status::Booked
                | Status::Arrived
                | Status::CheckedIn
                | Status::Fulfilled
        )
    }
}

/// A step of an appointment's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The resident takes a place offered from the waitlist.
    Accept,
    CheckIn,
    Complete,
    Cancel,
    NoShow,
}

/// The status after `step` from `from`, or why it cannot be taken. A step never goes
/// back: a fulfilled, cancelled or missed appointment is final.
pub fn next(from: Status, step: Step) -> Result<Status, String> {
    use Status::*;
    let to = match (from, step) {
        (Booked | Pending, Step::Cancel) => Cancelled,
        (Pending, Step::Accept) => Booked,
        (Booked, Step::CheckIn) => CheckedIn,
        (Booked | CheckedIn | Arrived, Step::Complete) => Fulfilled,
        (Booked, Step::NoShow) => Noshow,
        (Waitlist, Step::Cancel) => Cancelled,
        _ => {
            return Err(format!(
                "an appointment that is {} cannot be {}",
                from.as_str(),
                match step {
                    Step::Accept => "accepted",
                    Step::CheckIn => "checked in",
                    Step::Complete => "completed",
                    Step::Cancel => "cancelled",
                    Step::NoShow => "marked as a no-show",
                }
            ))
        }
    };
    Ok(to)
}

/// The slot pool's time limits (`data/booking.toml`; every figure is the platform's
/// choice, domain-rules §8 names none).
#[derive(Debug, serde::Deserialize)]
pub struct Limits {
    /// Minutes a place offered from the waitlist is held for the resident to accept.
    pub offer_minutes: i64,
    /// An offer closes at the latest this many minutes before the slot begins.
    pub offer_closes_before_start_minutes: i64,
    /// Minutes a hold (`Appointment/$hold`) keeps its place.
    pub hold_minutes: i64,
    /// Places one resident may hold at once.
    pub holds_per_resident: i64,
    /// Longest stretch of days one waitlist entry may wait for.
    pub wait_days: i64,
    /// Delivery attempts before a reminder is given up as failed.
    pub delivery_attempts: i64,
    #[serde(rename = "reminder")]
    pub reminders: Vec<ReminderRule>,
}

/// A reminder queued with every booking.
#[derive(Debug, serde::Deserialize)]
pub struct ReminderRule {
    /// `day-before`, `two-hours`: the message's kind.
    pub kind: String,
    /// Due this many minutes before the slot's start.
    pub minutes_before: i64,
}

/// The limits compiled from `data/booking.toml`.
pub fn limits() -> &'static Limits {
    static LIMITS: std::sync::OnceLock<Limits> = std::sync::OnceLock::new();
    LIMITS.get_or_init(|| {
        toml::from_str(include_str!("../../../data/booking.toml"))
            .expect("data/booking.toml is valid")
    })
}

/// Until when an offer made at `at` of a slot starting at `start` may be accepted.
pub fn offer_until(at: NaiveDateTime, start: NaiveDateTime) -> NaiveDateTime {
    let l = limits();
    (at + Duration::minutes(l.offer_minutes))
        .min(start - Duration::minutes(l.offer_closes_before_start_minutes))
}

/// Until when a hold made at `at` of a slot starting at `start` keeps its place.
pub fn hold_until(at: NaiveDateTime, start: NaiveDateTime) -> NaiveDateTime {
    (at + Duration::minutes(limits().hold_minutes)).min(start)
}

/// A resident asking to wait for a place in a schedule on a day from `from` to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    pub schedule_id: Id,
    pub resident_id: Id,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub channel: Channel,
}

impl Wait {
    /// The entry's days are today or later, in order, within the horizon.
    pub fn check(&self, today: NaiveDate) -> Result<(), Invalid> {
        if self.to < self.from {
            return Err(invalid("to", "the last day is before the first day"));
        }
        if self.from < today {
            return Err(invalid("from", "the first day has passed"));
        }
        let most = limits().wait_days;
        if (self.to - self.from).num_days() >= most {
            return Err(invalid(
                "to",
                format!("a waitlist entry covers at most {most} days (the slots' horizon)"),
            ));
        }
        Ok(())
    }
}

/// A booking a resident already holds, as the conflict rule reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub service: String,
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
}

/// Why a resident may not take a new booking: one booking per service a day, and no
/// two at overlapping times (the booking rule).
pub fn conflict(held: &[Held], new: &Held) -> Option<String> {
    for h in held {
        if h.service == new.service && h.start.date() == new.start.date() {
            return Some(format!(
                "already booked for {} on {}",
                new.service,
                new.start.date()
            ));
        }
        if h.start < new.end && new.start < h.end {
            return Some(format!(
                "already booked at {} ({}), which overlaps",
                h.start.format("%Y-%m-%d %H:%M"),
                h.service
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> Schedule {
        Schedule {
            id: 1,
            org_id: 10,
            service: "cardiology".into(),
            practitioner_id: None,
            weekdays: [true, false, true, false, true, false, false],
            first_start: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
            slot_minutes: 30,
            slots_per_day: 6,
            capacity: 3,
            referral_share: 50,
            release_hours: 48,
            horizon_days: 28,
        }
    }

    fn t(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn a_schedule_makes_its_weekday_slots_for_the_horizon() {
        // 2026-12-07 is a Monday: four weeks of Mon, Wed, Fri are 12 days × 6 slots.
        let slots = schedule()
            .slots(NaiveDate::from_ymd_opt(2026, 12, 7).unwrap(), 100)
            .unwrap();
        assert_eq!(slots.len(), 72);
        assert_eq!(slots[0].start, t("2026-12-07 08:00"));
        assert_eq!(slots[5].end, t("2026-12-07 11:00"));
        assert_eq!(slots[6].start, t("2026-12-09 08:00"));
        assert_eq!(slots.last().unwrap().id, 171);
        assert_eq!(slots[0].reserved, 2, "half of 3, rounded up");
        assert_eq!(slots[0].release, t("2026-12-05 08:00"));
    }

    #[test]
    fn reserved_places_open_to_everyone_at_release() {
        let s = &schedule()
            .slots(NaiveDate::from_ymd_opt(2026, 12, 7).unwrap(), 1)
            .unwrap()[0];
        assert_eq!(s.limit(Channel::Public, t("2026-12-01 09:00")), 1);
        assert_eq!(s.limit(Channel::Referral, t("2026-12-01 09:00")), 3);
        assert_eq!(s.limit(Channel::Public, t("2026-12-05 08:00")), 3);
        assert!(!s.past(t("2026-12-07 07:59")) && s.past(t("2026-12-07 08:00")));
    }

    #[test]
    fn bad_schedules_name_their_field() {
        let field = |f: fn(&mut Schedule)| {
            let mut s = schedule();
            f(&mut s);
            s.check().unwrap_err().field
        };
        assert_eq!(field(|s| s.capacity = 0), "capacity");
        assert_eq!(field(|s| s.referral_share = 101), "referral_share");
        assert_eq!(field(|s| s.weekdays = [false; 7]), "weekdays");
        assert_eq!(field(|s| s.slots_per_day = 40), "slots_per_day");
        assert_eq!(field(|s| s.service = " ".into()), "service");
        assert!(schedule().check().is_ok());
    }

    #[test]
    fn appointments_move_forward_only() {
        assert_eq!(next(Status::Booked, Step::CheckIn), Ok(Status::CheckedIn));
        assert_eq!(
            next(Status::CheckedIn, Step::Complete),
            Ok(Status::Fulfilled)
        );
        assert_eq!(next(Status::Booked, Step::NoShow), Ok(Status::Noshow));
        assert!(next(Status::Fulfilled, Step::Cancel).is_err());
        assert!(next(Status::Cancelled, Step::CheckIn).is_err());
        assert!(next(Status::Noshow, Step::Complete).is_err());
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert!(!Status::Cancelled.holds_place() && Status::Booked.holds_place());
    }

    #[test]
    fn one_booking_per_service_a_day_and_none_overlapping() {
        let held = [Held {
            service: "cardiology".into(),
            start: t("2026-12-07 08:00"),
            end: t("2026-12-07 08:30"),
        }];
        let at = |service: &str, s: &str, e: &str| Held {
            service: service.into(),
            start: t(s),
            end: t(e),
        };
        assert!(conflict(
            &held,
            &at("cardiology", "2026-12-07 15:00", "2026-12-07 15:30")
        )
        .is_some());
        assert!(conflict(
            &held,
            &at("ophthalmology", "2026-12-07 08:15", "2026-12-07 08:45")
        )
        .is_some());
        assert!(conflict(
            &held,
            &at("ophthalmology", "2026-12-07 08:30", "2026-12-07 09:00")
        )
        .is_none());
        assert!(conflict(
            &held,
            &at("cardiology", "2026-12-08 08:00", "2026-12-08 08:30")
        )
        .is_none());
    }

    #[test]
    fn a_waitlist_offer_is_accepted_or_lapses_and_holds_its_place_meanwhile() {
        assert!(Status::Pending.holds_place());
        assert_eq!(next(Status::Pending, Step::Accept), Ok(Status::Booked));
        assert_eq!(next(Status::Pending, Step::Cancel), Ok(Status::Cancelled));
        assert!(next(Status::Booked, Step::Accept).is_err());
        assert!(next(Status::Cancelled, Step::Accept).is_err());
        let t = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        // Two hours to accept, unless the slot is nearer.
        assert_eq!(
            offer_until(t("2026-12-08 08:00"), t("2026-12-09 09:00")),
            t("2026-12-08 10:00")
        );
        assert_eq!(
            offer_until(t("2026-12-08 08:00"), t("2026-12-08 09:30")),
            t("2026-12-08 08:30")
        );
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let w = |from: &str, to: &str| Wait {
            schedule_id: 1,
            resident_id: 2,
            from: d(from),
            to: d(to),
            channel: Channel::Public,
        };
        let today = d("2026-12-08");
        assert!(w("2026-12-08", "2026-12-20").check(today).is_ok());
        assert_eq!(
            w("2026-12-07", "2026-12-20")
                .check(today)
                .unwrap_err()
                .field,
            "from"
        );
        assert_eq!(
            w("2026-12-10", "2026-12-09")
                .check(today)
                .unwrap_err()
                .field,
            "to"
        );
        assert_eq!(
            w("2026-12-08", "2027-01-05")
                .check(today)
                .unwrap_err()
                .field,
            "to"
        );
        assert!(w("2026-12-08", "2027-01-04").check(today).is_ok());
    }
}
