//! Recording a follow-up through the FHIR write path, so it lands versioned, projected
//! and audited like any other write.

use super::*;
use crate::audit::{self, Actor};
use crate::fhir::write::{Plan, Refusal};
use crate::{AppError, AppState};
use chrono::{NaiveDate, NaiveDateTime};
use dhp_core::access::Principal;
use dhp_core::{Encounter, EncounterType, Id, Observation, Programme, Resident};
use dhp_store::StoreError;
use serde::Deserialize;

/// One audit entry per resident whose items leave the server, before they leave.
pub(crate) async fn audit_rows(
    state: &AppState,
    actor: &Actor,
    rows: &[DueRow],
    detail: &str,
) -> Result<(), StoreError> {
    let mut ids: Vec<Id> = rows.iter().map(|r| r.resident_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let events: Vec<_> = ids
        .iter()
        .map(|id| {
            audit::entry(
                actor,
                "search",
                &format!("Patient/{id}/due"),
                Some(*id),
                "success",
                detail,
            )
        })
        .collect();
    if events.is_empty() {
        return Ok(());
    }
    state.store.insert_audits(&events).await
}

/// What a family doctor records at a follow-up (随访记录).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct FollowUpForm {
    pub programme: String,
    pub date: String,
    #[serde(default)]
    pub sbp: String,
    #[serde(default)]
    pub dbp: String,
    #[serde(default)]
    pub fasting_glucose: String,
    #[serde(default)]
    pub heart_rate: String,
    #[serde(default)]
    pub danger_symptoms: Option<String>,
    #[serde(default)]
    pub medication_adherence: String,
    #[serde(default)]
    pub referral: Option<String>,
    #[serde(default)]
    pub danger_level: String,
    #[serde(default)]
    pub self_care_score: String,
}

/// A checked follow-up: the programme, when, and each reading by observation key.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowUp {
    pub programme: Programme,
    pub start: NaiveDateTime,
    pub readings: Vec<(&'static str, f64)>,
}

impl FollowUpForm {
    /// Check every field; `Err` names the field at fault (nothing is written then).
    pub fn parse(&self, today: NaiveDate) -> Result<FollowUp, (String, String)> {
        let programme = Programme::parse(&self.programme)
            .filter(|p| *p != Programme::Immunization)
            .ok_or_else(|| {
                (
                    "programme".to_string(),
                    format!(
                        "programme {:?} is not a follow-up programme",
                        self.programme
                    ),
                )
            })?;
        let date: NaiveDate = self.date.trim().parse().map_err(|_| {
            (
                "date".to_string(),
                format!("date {:?} must be YYYY-MM-DD", self.date),
            )
        })?;
        if date > today {
            return Err((
                "date".into(),
                format!("date {date} is after today ({today})"),
            ));
        }
        let mut readings = Vec::new();
        let fields: [(&'static str, &str); 6] = [
            ("sbp", &self.sbp),
            ("dbp", &self.dbp),
            ("fasting_glucose", &self.fasting_glucose),
            ("heart_rate", &self.heart_rate),
            ("danger_level", &self.danger_level),
            ("self_care_score", &self.self_care_score),
        ];
        for (key, text) in fields {
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            let code =
                dhp_core::codes::observation(key).expect("code table has the follow-up keys");
            let v: f64 = text
                .parse()
                .map_err(|_| (key.to_string(), format!("{key} {text:?} is not a number")))?;
            if !(code.min..=code.max).contains(&v) {
                return Err((
                    key.to_string(),
                    format!(
                        "{key} {v} {} is outside {}–{}",
                        code.unit, code.min, code.max
                    ),
                ));
            }
            readings.push((key, v));
        }
        if readings.iter().any(|(k, _)| *k == "sbp") != readings.iter().any(|(k, _)| *k == "dbp") {
            return Err((
                "dbp".into(),
                "blood pressure needs both systolic and diastolic".into(),
            ));
        }
        if let Some(adherence) = Some(self.medication_adherence.trim()).filter(|s| !s.is_empty()) {
            let v: f64 = adherence
                .parse()
                .ok()
                .filter(|v| [1.0, 2.0, 3.0].contains(v))
                .ok_or_else(|| {
                    (
                        "medication_adherence".to_string(),
                        "medication_adherence must be 1, 2 or 3".to_string(),
                    )
                })?;
            readings.push(("medication_adherence", v));
        }
        let flag = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty() && s != "0");
        readings.push((
            "danger_symptoms",
            if flag(&self.danger_symptoms) {
                1.0
            } else {
                0.0
            },
        ));
        readings.push(("referral", if flag(&self.referral) { 1.0 } else { 0.0 }));
        Ok(FollowUp {
            programme,
            start: date.and_hms_opt(9, 0, 0).expect("valid time"),
            readings,
        })
    }
}

/// Write a follow-up of `resident` by `who` at their organisation: one Encounter and
/// its Observations, through the FHIR write path in one transaction.
pub(crate) async fn record_followup(
    state: &AppState,
    who: &Principal,
    resident: &Resident,
    f: &FollowUp,
) -> Result<Result<Id, String>, AppError> {
    let Some(org) = who.org_id else {
        return Ok(Err("the account works at no organisation".into()));
    };
    let mut plan = Plan::new(state, who).await?;
    let encounter_id = plan.take_ids("Encounter", 1).await?;
    let encounter = Encounter {
        id: encounter_id,
        resident_id: resident.id,
        kind: EncounterType::FollowUp,
        programme: Some(f.programme),
        org_id: org,
        practitioner_id: who.practitioner_id,
        start: f.start,
    };
    let refusal = |r: Refusal| match r {
        Refusal::Outcome(o) => Ok(Err(o
            .issues
            .iter()
            .map(|i| i.diagnostics.as_str())
            .collect::<Vec<_>>()
            .join("; "))),
        Refusal::Failed(e) => Err(e),
    };
    if let Err(r) = plan
        .create_with_id(
            "Encounter",
            encounter_id,
            dhp_fhir::resources::encounter(&encounter),
        )
        .await
    {
        return refusal(r);
    }
    for (key, value) in &f.readings {
        let code = dhp_core::codes::observation(key).expect("code table has the follow-up keys");
        let o = Observation {
            id: 0,
            resident_id: resident.id,
            encounter_id: Some(encounter_id),
            code: code.code.clone(),
            value: *value,
            unit: code.unit.clone(),
            effective: f.start,
        };
        let mut body = dhp_fhir::resources::observation_resource(&o);
        if let Some(m) = body.as_object_mut() {
            m.remove("id");
        }
        if let Err(r) = plan.create("Observation", body).await {
            return refusal(r);
        }
    }
    plan.commit().await?;
    Ok(Ok(encounter_id))
}
