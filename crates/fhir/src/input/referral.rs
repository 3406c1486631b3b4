//! An incoming referral: a `ServiceRequest` with the referral category (SNOMED CT
//! 3457005 "Patient referral"), read into what the referral service needs — the
//! patient, the direction, the organisation referred to, the reason, the urgency, the
//! diagnosis, a reserved slot to book with it, and for a down-referral the discharge
//! summary and the follow-up day. The Task that follows it is the platform's, made
//! with the referral.

use dhp_core::Id;
use serde_json::Value;

use super::Reader;
use crate::input::ICD10_SYSTEM;
use crate::outcome::{Issue, IssueCode};
use crate::referral::{DIRECTION_EXT, FOLLOW_UP_EXT, SUMMARY_EXT};

/// The category that makes a ServiceRequest a referral (SNOMED CT).
pub const REFERRAL_CATEGORY: (&str, &str) = ("http://snomed.info/sct", "3457005");

/// Does `v` carry the referral category?
pub fn is_referral(v: &Value) -> bool {
    v.get("category")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("coding").and_then(Value::as_array))
        .flatten()
        .any(|c| {
            c.get("system").and_then(Value::as_str) == Some(REFERRAL_CATEGORY.0)
                && c.get("code").and_then(Value::as_str) == Some(REFERRAL_CATEGORY.1)
        })
}

/// Does `v` say it is a referral some other way (the referral-direction extension)?
/// Such a ServiceRequest is read as a referral, so a wrong category is refused rather
/// than kept as an ordinary request nobody receives.
pub fn claims_referral(v: &Value) -> bool {
    is_referral(v) || extension(v, DIRECTION_EXT).is_some()
}

/// A referral as the referral service takes it (its own checks — direction, reason,
/// priority, diagnosis, slot, summary, follow-up day — come after).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralInput {
    pub resident_id: Id,
    /// `up` or `down` (the referral-direction extension).
    pub direction: String,
    pub performer: Id,
    pub reason: String,
    pub priority: Option<String>,
    pub diagnosis: Option<String>,
    /// A reserved slot to book with an up-referral (`supportingInfo` Slot).
    pub slot: Option<Id>,
    pub summary: Option<String>,
    pub follow_up: Option<String>,
}

/// The extension at `url`, if present: its index.
fn extension(v: &Value, url: &str) -> Option<usize> {
    v.get("extension")
        .and_then(Value::as_array)?
        .iter()
        .position(|e| e.get("url").and_then(Value::as_str) == Some(url))
}

pub fn referral(v: &Value) -> Result<ReferralInput, Vec<Issue>> {
    let mut r = Reader::new("ServiceRequest", v);
    if !is_referral(v) {
        r.fail(
            IssueCode::Value,
            "category",
            format!(
                "a referral has the category {}|{} (Patient referral)",
                REFERRAL_CATEGORY.0, REFERRAL_CATEGORY.1
            ),
        );
    }
    if let Some(status) = r.code(
        "status",
        &[
            "draft",
            "active",
            "on-hold",
            "revoked",
            "completed",
            "entered-in-error",
            "unknown",
        ],
    ) {
        if status != "active" {
            r.fail(
                IssueCode::Value,
                "status",
                format!("{status:?}: a referral is made active; it moves on through its Task"),
            );
        }
    }
    if let Some(intent) = r.code("intent", super::REQUEST_INTENTS) {
        if intent != "order" {
            r.fail(
                IssueCode::Value,
                "intent",
                format!("{intent:?}: a referral is an order"),
            );
        }
    }
    let subject = r.reference("subject", &["Patient"], true);
    let performer = r.reference("performer[0]", &["Organization"], true);
    let direction = match extension(v, DIRECTION_EXT) {
        Some(i) => r.text(&format!("extension[{i}].valueCode"), true),
        None => {
            r.fail(
                IssueCode::Required,
                "extension",
                format!(
                    "the referral's direction (extension {DIRECTION_EXT}, up or down) is required"
                ),
            );
            None
        }
    };
    let reason = r.text("note[0].text", true);
    let priority = r.get("priority").map(|_| r.text("priority", true));
    let diagnosis = r.get("reasonCode").map(|_| {
        r.coding("reasonCode[0]", Some(ICD10_SYSTEM))
            .map(|(_, c)| c.to_string())
    });
    let slot = r
        .get("supportingInfo")
        .and_then(Value::as_array)
        .and_then(|s| {
            s.iter().position(|x| {
                x.get("reference")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.starts_with("Slot/"))
            })
        })
        .map(|i| r.reference(&format!("supportingInfo[{i}]"), &["Slot"], true));
    let summary =
        extension(v, SUMMARY_EXT).map(|i| r.text(&format!("extension[{i}].valueString"), true));
    let follow_up =
        extension(v, FOLLOW_UP_EXT).map(|i| r.text(&format!("extension[{i}].valueDate"), true));
    let value = (|| {
        Some(ReferralInput {
            resident_id: subject?.1,
            direction: direction?.to_string(),
            performer: performer?.1,
            reason: reason?.to_string(),
            // An element present but unreadable is an issue already: `finish` refuses.
            priority: priority.flatten().map(str::to_string),
            diagnosis: diagnosis.flatten(),
            slot: slot.flatten().map(|(_, id)| id),
            summary: summary.flatten().map(str::to_string),
            follow_up: follow_up.flatten().map(str::to_string),
        })
    })();
    r.finish(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::referral::{service_request, ReferralView};
    use chrono::NaiveDate;
    use dhp_core::referral::{Direction, Priority, TaskStatus};

    #[test]
    fn a_referral_read_back_is_the_referral_sent() {
        let at = NaiveDate::from_ymd_opt(2026, 11, 30)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap();
        let follow = NaiveDate::from_ymd_opt(2026, 12, 14).unwrap();
        let view = ReferralView {
            id: 5,
            resident_id: 7,
            direction: Direction::Down,
            from_org: 3,
            to_org: 4,
            reason: "出院后社区随访",
            priority: Priority::Urgent,
            diagnosis: Some("I10"),
            appointment_id: None,
            summary: Some("血压已控制"),
            follow_up: Some(follow),
            status: TaskStatus::Requested,
            last_reason: None,
            created: at,
            updated: at,
            version: 1,
        };
        let v = service_request(&view);
        assert!(is_referral(&v));
        assert_eq!(
            referral(&v).unwrap(),
            ReferralInput {
                resident_id: 7,
                direction: "down".into(),
                performer: 4,
                reason: "出院后社区随访".into(),
                priority: Some("urgent".into()),
                diagnosis: Some("I10".into()),
                slot: None,
                summary: Some("血压已控制".into()),
                follow_up: Some("2026-12-14".into()),
            }
        );
    }

    #[test]
    fn a_bad_referral_names_every_element_at_fault() {
        let v = serde_json::json!({
            "resourceType": "ServiceRequest", "status": "completed", "intent": "plan",
            "category": [{ "coding": [{ "system": REFERRAL_CATEGORY.0, "code": REFERRAL_CATEGORY.1 }] }],
            "subject": { "reference": "Patient/abc" },
            "supportingInfo": [{ "reference": "Slot/x" }],
        });
        let issues = referral(&v).unwrap_err();
        let paths: Vec<String> = issues
            .iter()
            .map(|i| i.expression.clone().unwrap_or_default())
            .collect();
        assert_eq!(
            paths,
            [
                "ServiceRequest.status",
                "ServiceRequest.intent",
                "ServiceRequest.subject.reference",
                "ServiceRequest.performer[0].reference",
                "ServiceRequest.extension",
                "ServiceRequest.note[0].text",
                "ServiceRequest.supportingInfo[0].reference",
            ]
        );
        assert!(!is_referral(
            &serde_json::json!({ "resourceType": "ServiceRequest" })
        ));
        // The direction without the category: read as a referral, refused at category.
        let lookalike = serde_json::json!({ "resourceType": "ServiceRequest",
            "extension": [{ "url": DIRECTION_EXT, "valueCode": "up" }],
            "category": [{ "coding": [{ "system": REFERRAL_CATEGORY.0, "code": "3457005 " }] }] });
        assert!(claims_referral(&lookalike) && !is_referral(&lookalike));
        let issues = referral(&lookalike).unwrap_err();
        assert_eq!(
            issues[0].expression.as_deref(),
            Some("ServiceRequest.category")
        );
    }
}
