//! Two-way referral (双向转诊, domain-rules §8 "Referral"): what is asked (a FHIR
//! `ServiceRequest`) and its fulfilment (a `Task` whose `focus` is the request), moving
//! requested → received → accepted / rejected → in-progress → completed, or cancelled,
//! or failed. Up-referral goes from a community health centre to a hospital; down-referral
//! brings a discharged patient back to the community with a summary and a follow-up day,
//! which the family doctor's due list then shows. Pure: the store keeps the steps.

use chrono::NaiveDate;

use crate::booking::{invalid, Invalid};
use crate::{Id, OrgKind};

/// Which way a referral goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From a community health centre to a hospital (上转).
    Up,
    /// From a hospital back to a community health centre after discharge (下转).
    Down,
}

impl Direction {
    pub const ALL: [Direction; 2] = [Direction::Up, Direction::Down];

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }

    pub fn parse(s: &str) -> Option<Direction> {
        Direction::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

/// How soon the request is to be acted on: the codes of FHIR `request-priority`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Priority {
    Routine,
    Urgent,
    Asap,
    Stat,
}

impl Priority {
    pub const ALL: [Priority; 4] = [
        Priority::Routine,
        Priority::Urgent,
        Priority::Asap,
        Priority::Stat,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Routine => "routine",
            Priority::Urgent => "urgent",
            Priority::Asap => "asap",
            Priority::Stat => "stat",
        }
    }

    pub fn parse(s: &str) -> Option<Priority> {
        Priority::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// A referral task's status: the codes of FHIR `task-status` the workflow uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskStatus {
    Requested,
    Received,
    Accepted,
    Rejected,
    InProgress,
    Completed,
    Cancelled,
    Failed,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 8] = [
        TaskStatus::Requested,
        TaskStatus::Received,
        TaskStatus::Accepted,
        TaskStatus::Rejected,
        TaskStatus::InProgress,
        TaskStatus::Completed,
        TaskStatus::Cancelled,
        TaskStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Requested => "requested",
            TaskStatus::Received => "received",
            TaskStatus::Accepted => "accepted",
            TaskStatus::Rejected => "rejected",
            TaskStatus::InProgress => "in-progress",
            TaskStatus::Completed => "completed",
            TaskStatus::Cancelled => "cancelled",
            TaskStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<TaskStatus> {
        TaskStatus::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Whether the referral is over (nothing more happens to it).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TaskStatus::Rejected
                | TaskStatus::Completed
                | TaskStatus::Cancelled
                | TaskStatus::Failed
        )
    }

    /// Whether the request is still asked of the receiving organisation (it brings the
    /// resident into the receiver's scope while it is open or was taken on).
    pub fn engages_receiver(self) -> bool {
        !matches!(self, TaskStatus::Rejected | TaskStatus::Cancelled)
    }
}

/// Which side of a referral takes a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The organisation that referred (the requester).
    Sender,
    /// The organisation referred to (the performer).
    Receiver,
}

/// A step of a referral's task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Act {
    Receive,
    Accept,
    Reject,
    Start,
    Complete,
    Cancel,
    Fail,
}

impl Act {
    pub const ALL: [Act; 7] = [
        Act::Receive,
        Act::Accept,
        Act::Reject,
        Act::Start,
        Act::Complete,
        Act::Cancel,
        Act::Fail,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Act::Receive => "receive",
            Act::Accept => "accept",
            Act::Reject => "reject",
            Act::Start => "start",
            Act::Complete => "complete",
            Act::Cancel => "cancel",
            Act::Fail => "fail",
        }
    }

    pub fn parse(s: &str) -> Option<Act> {
        Act::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Who takes the step: the requester withdraws its request; the rest is the
    /// receiver's.
    pub fn side(self) -> Side {
        match self {
            Act::Cancel => Side::Sender,
            _ => Side::Receiver,
        }
    }

    /// Whether the step must say why (a rejection, a withdrawal, a failure).
    pub fn needs_reason(self) -> bool {
        matches!(self, Act::Reject | Act::Cancel | Act::Fail)
    }

    /// The status the step leads to.
    pub fn target(self) -> TaskStatus {
        match self {
            Act::Receive => TaskStatus::Received,
            Act::Accept => TaskStatus::Accepted,
            Act::Reject => TaskStatus::Rejected,
            Act::Start => TaskStatus::InProgress,
            Act::Complete => TaskStatus::Completed,
            Act::Cancel => TaskStatus::Cancelled,
            Act::Fail => TaskStatus::Failed,
        }
    }
}

/// The status after `act` from `from`, or why the step cannot be taken. A task never
/// moves backwards, and a final status stays final.
pub fn next(from: TaskStatus, act: Act) -> Result<TaskStatus, Invalid> {
    use TaskStatus::*;
    let allowed = match act {
        Act::Receive => matches!(from, Requested),
        Act::Accept | Act::Reject => matches!(from, Requested | Received),
        Act::Start => matches!(from, Accepted),
        Act::Complete => matches!(from, Accepted | InProgress),
        Act::Cancel => matches!(from, Requested | Received | Accepted),
        Act::Fail => matches!(from, Accepted | InProgress),
    };
    if allowed {
        Ok(act.target())
    } else {
        Err(invalid(
            "status",
            format!(
                "a referral that is {} cannot move to {}",
                from.as_str(),
                act.target().as_str()
            ),
        ))
    }
}

/// The longest free text a referral field takes (characters).
pub const TEXT_MAX: usize = 2000;

/// How far ahead a down-referral's follow-up day may lie.
pub const FOLLOW_UP_MAX_DAYS: i64 = 366;

/// A new referral as the referring side writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReferral {
    pub resident_id: Id,
    pub direction: Direction,
    pub from_org: Id,
    pub to_org: Id,
    /// Why the patient is referred (up) or what the community is to continue (down).
    pub reason: String,
    pub priority: Priority,
    /// ICD-10 code of the diagnosis, e.g. `I10`.
    pub diagnosis: Option<String>,
    /// A booking made for the patient with the referral (a reserved specialist slot).
    pub appointment_id: Option<Id>,
    /// Down-referral: the discharge summary.
    pub summary: Option<String>,
    /// Down-referral: the day the family doctor is to follow the patient up.
    pub follow_up: Option<NaiveDate>,
}

/// Whether `code` has the shape of an ICD-10 code (`I10`, `E11.9`, `J45.901`).
pub fn icd10_shaped(code: &str) -> bool {
    let b = code.as_bytes();
    let head =
        b.len() >= 3 && b[0].is_ascii_uppercase() && b[1].is_ascii_digit() && b[2].is_ascii_digit();
    let tail = match code.get(3..) {
        Some("") => true,
        Some(rest) => {
            rest.len() >= 2
                && rest.len() <= 5
                && rest.starts_with('.')
                && rest[1..].bytes().all(|c| c.is_ascii_alphanumeric())
        }
        None => false,
    };
    head && tail
}

fn text(field: &'static str, value: &str, required: bool) -> Result<(), Invalid> {
    let n = value.trim().chars().count();
    if required && n == 0 {
        return Err(invalid(field, format!("{field} is required")));
    }
    if n > TEXT_MAX {
        return Err(invalid(
            field,
            format!("{field} is longer than {TEXT_MAX} characters"),
        ));
    }
    Ok(())
}

impl NewReferral {
    /// Whether the referral may be made between organisations of these kinds, today:
    /// up from a community health centre to a hospital, down the other way; a reason;
    /// a down-referral carries its discharge summary and a follow-up day ahead.
    pub fn check(&self, from: OrgKind, to: OrgKind, today: NaiveDate) -> Result<(), Invalid> {
        let (sender, receiver) = match self.direction {
            Direction::Up => (OrgKind::CommunityHealthCentre, OrgKind::Hospital),
            Direction::Down => (OrgKind::Hospital, OrgKind::CommunityHealthCentre),
        };
        if from != sender {
            return Err(invalid(
                "requester",
                format!(
                    "a {} referral is made by a {}, not a {}",
                    self.direction.as_str(),
                    sender.as_str(),
                    from.as_str()
                ),
            ));
        }
        if to != receiver {
            return Err(invalid(
                "performer",
                format!(
                    "a {} does not take {} referrals (they go to a {})",
                    to.as_str(),
                    self.direction.as_str(),
                    receiver.as_str()
                ),
            ));
        }
        text("reason", &self.reason, true)?;
        if let Some(d) = &self.diagnosis {
            if !icd10_shaped(d) {
                return Err(invalid("diagnosis", format!("{d:?} is not an ICD-10 code")));
            }
        }
        match self.direction {
            Direction::Up => {
                if self.summary.is_some() || self.follow_up.is_some() {
                    return Err(invalid(
                        "summary",
                        "a discharge summary and follow-up day belong to a down-referral",
                    ));
                }
            }
            Direction::Down => {
                text("summary", self.summary.as_deref().unwrap_or(""), true)?;
                let Some(day) = self.follow_up else {
                    return Err(invalid(
                        "follow_up",
                        "follow_up is required for a down-referral",
                    ));
                };
                if day < today {
                    return Err(invalid("follow_up", format!("{day} is in the past")));
                }
                if (day - today).num_days() > FOLLOW_UP_MAX_DAYS {
                    return Err(invalid(
                        "follow_up",
                        format!("{day} is more than {FOLLOW_UP_MAX_DAYS} days ahead"),
                    ));
                }
                if self.appointment_id.is_some() {
                    return Err(invalid(
                        "appointment",
                        "a down-referral does not book a hospital slot",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A referral as the indicators count it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralFact {
    pub direction: Direction,
    pub from_org: Id,
    pub to_org: Id,
    pub created: chrono::NaiveDateTime,
    /// When it was accepted, if it was.
    pub accepted_at: Option<chrono::NaiveDateTime>,
    pub rejected: bool,
}

/// Whether a step's reason is acceptable (present where the step needs one).
pub fn check_reason(act: Act, reason: Option<&str>) -> Result<(), Invalid> {
    text("reason", reason.unwrap_or(""), act.needs_reason())
}

/// Whether a referral answers a workbench flag raised by the follow-up of `flagged_on`
/// (an emergency reading, or two uncontrolled follow-ups: domain-rules §4 asks for a
/// referral up): an up-referral made that day or later that the hospital has not
/// rejected and the doctor has not withdrawn. A rejected or withdrawn one leaves the
/// flag up, since the resident still needs referring.
pub fn answers_flag(
    direction: Direction,
    status: TaskStatus,
    created: chrono::NaiveDate,
    flagged_on: chrono::NaiveDate,
) -> bool {
    direction == Direction::Up && status.engages_receiver() && created >= flagged_on
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up() -> NewReferral {
        NewReferral {
            resident_id: 1,
            direction: Direction::Up,
            from_org: 10,
            to_org: 20,
            reason: "两次随访血压控制不满意".into(),
            priority: Priority::Routine,
            diagnosis: Some("I10".into()),
            appointment_id: None,
            summary: None,
            follow_up: None,
        }
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_task_moves_forward_through_the_fhir_workflow() {
        use TaskStatus::*;
        let mut s = Requested;
        for act in [Act::Receive, Act::Accept, Act::Start, Act::Complete] {
            s = next(s, act).unwrap();
        }
        assert_eq!(s, Completed);
        assert!(s.is_final());
        // Accepting straight from requested is fine; going back is not.
        assert_eq!(next(Requested, Act::Accept).unwrap(), Accepted);
        assert_eq!(next(Accepted, Act::Receive).unwrap_err().field, "status");
        assert!(next(Completed, Act::Cancel).is_err());
        assert!(next(Rejected, Act::Accept).is_err());
        assert!(next(InProgress, Act::Cancel).is_err());
        assert_eq!(next(InProgress, Act::Fail).unwrap(), Failed);
        // Only the requester withdraws; rejection and withdrawal say why.
        assert_eq!(Act::Cancel.side(), Side::Sender);
        assert_eq!(Act::Accept.side(), Side::Receiver);
        assert_eq!(
            check_reason(Act::Reject, Some("  ")).unwrap_err().field,
            "reason"
        );
        assert!(check_reason(Act::Accept, None).is_ok());
    }

    #[test]
    fn referrals_go_up_to_hospitals_and_down_to_centres() {
        let today = d("2026-12-01");
        let chc = OrgKind::CommunityHealthCentre;
        let h = OrgKind::Hospital;
        assert!(up().check(chc, h, today).is_ok());
        assert_eq!(up().check(h, h, today).unwrap_err().field, "requester");
        assert_eq!(
            up().check(chc, OrgKind::PublicHealth, today)
                .unwrap_err()
                .field,
            "performer"
        );
        let mut r = up();
        r.reason = " ".into();
        assert_eq!(r.check(chc, h, today).unwrap_err().field, "reason");
        r = up();
        r.diagnosis = Some("hypertension".into());
        assert_eq!(r.check(chc, h, today).unwrap_err().field, "diagnosis");

        let mut down = up();
        down.direction = Direction::Down;
        assert_eq!(down.check(h, chc, today).unwrap_err().field, "summary");
        down.summary = Some("住院 5 天，血压已控制".into());
        assert_eq!(down.check(h, chc, today).unwrap_err().field, "follow_up");
        down.follow_up = Some(d("2026-11-30"));
        assert_eq!(down.check(h, chc, today).unwrap_err().field, "follow_up");
        down.follow_up = Some(d("2026-12-15"));
        assert!(down.check(h, chc, today).is_ok());
        down.appointment_id = Some(5);
        assert_eq!(down.check(h, chc, today).unwrap_err().field, "appointment");
    }

    #[test]
    fn icd10_codes_are_recognised_by_shape() {
        for ok in ["I10", "E11.9", "J45.901", "U07.1"] {
            assert!(icd10_shaped(ok), "{ok}");
        }
        for bad in [
            "",
            "i10",
            "I1",
            "I10.",
            "I10x",
            "hypertension",
            "I10.1234567",
        ] {
            assert!(!icd10_shaped(bad), "{bad}");
        }
    }

    #[test]
    fn an_up_referral_taken_on_answers_the_flag_of_its_follow_up() {
        let d = |s: &str| s.parse::<chrono::NaiveDate>().unwrap();
        let on = d("2026-06-01");
        assert!(answers_flag(
            Direction::Up,
            TaskStatus::Requested,
            d("2026-06-01"),
            on
        ));
        assert!(answers_flag(
            Direction::Up,
            TaskStatus::Completed,
            d("2026-06-20"),
            on
        ));
        assert!(!answers_flag(
            Direction::Up,
            TaskStatus::Requested,
            d("2026-05-31"),
            on
        ));
        assert!(!answers_flag(
            Direction::Up,
            TaskStatus::Rejected,
            d("2026-06-02"),
            on
        ));
        assert!(!answers_flag(
            Direction::Up,
            TaskStatus::Cancelled,
            d("2026-06-02"),
            on
        ));
        assert!(!answers_flag(
            Direction::Down,
            TaskStatus::Accepted,
            d("2026-06-02"),
            on
        ));
    }
}
