//! Family-doctor contracting (家庭医生签约, domain-rules §2): signing, renewing, changing
//! and ending a 1+1+1 contract, with one contract in force per resident at any day; and
//! the contracting figures of a resident for a period (key population signed, visits
//! inside the combination, visits at the community health centre).

use std::collections::HashMap;

use chrono::{Days, Months, NaiveDate};
use serde::Serialize;

use crate::programmes::{key_populations, ResidentRecord};
use crate::record::{Contract, ContractStatus};
use crate::registry::{Id, OrgKind, Organisation, Practitioner, PractitionerRole};

/// The four members of a 1+1+1 combination (组合).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Combination {
    pub centre: Id,
    pub doctor: Id,
    pub district_hospital: Id,
    pub city_hospital: Id,
}

/// What is asked of a resident's contracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContractAction {
    /// A first contract, or a new one after the last ended or lapsed.
    Sign(Combination),
    /// Another year with the same combination, from the day after the last one ends
    /// (or from today if it has lapsed).
    Renew,
    /// End the contract in force today and sign a new one with another combination.
    Change(Combination),
    /// End the contract in force (and any renewal waiting to start).
    End,
}

/// Why a contract change is refused; `field` names the input at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ContractError {
    pub field: &'static str,
    pub message: String,
}

fn refuse(field: &'static str, message: impl Into<String>) -> ContractError {
    ContractError {
        field,
        message: message.into(),
    }
}

/// Check a combination against the registry: a community health centre, a family
/// doctor working there, a district-level hospital (under the district) and a
/// city-level hospital (under the city).
pub fn check_combination(
    c: &Combination,
    orgs: &HashMap<Id, Organisation>,
    doctor: Option<&Practitioner>,
) -> Result<(), ContractError> {
    let kind_of = |id: Id| orgs.get(&id).map(|o| o.kind);
    let parent_kind = |id: Id| orgs.get(&id).and_then(|o| o.parent_id).and_then(kind_of);
    if kind_of(c.centre) != Some(OrgKind::CommunityHealthCentre) {
        return Err(refuse(
            "centre",
            format!("organisation {} is not a community health centre", c.centre),
        ));
    }
    match doctor {
        Some(d)
            if d.id == c.doctor
                && d.role == PractitionerRole::FamilyDoctor
                && d.org_id == c.centre => {}
        Some(d) if d.id == c.doctor => {
            return Err(refuse(
                "doctor",
                format!(
                    "practitioner {} is not a family doctor of centre {}",
                    d.id, c.centre
                ),
            ))
        }
        _ => {
            return Err(refuse(
                "doctor",
                format!("practitioner {} does not exist", c.doctor),
            ))
        }
    }
    if kind_of(c.district_hospital) != Some(OrgKind::Hospital)
        || parent_kind(c.district_hospital) != Some(OrgKind::District)
    {
        return Err(refuse(
            "district_hospital",
            format!(
                "organisation {} is not a district-level hospital",
                c.district_hospital
            ),
        ));
    }
    if kind_of(c.city_hospital) != Some(OrgKind::Hospital)
        || parent_kind(c.city_hospital) != Some(OrgKind::City)
    {
        return Err(refuse(
            "city_hospital",
            format!(
                "organisation {} is not a city-level hospital",
                c.city_hospital
            ),
        ));
    }
    Ok(())
}

/// Contracts not ended that run on or after `today`, earliest first.
fn open_from(existing: &[Contract], today: NaiveDate) -> Vec<&Contract> {
    let mut v: Vec<&Contract> = existing
        .iter()
        .filter(|c| c.status != ContractStatus::Ended && c.end >= today)
        .collect();
    v.sort_by_key(|c| (c.start, c.id));
    v
}

/// A one-year contract from `start` (contracts run one year, domain-rules §2).
fn year_from(id: Id, resident_id: Id, c: Combination, start: NaiveDate) -> Contract {
    Contract {
        id,
        resident_id,
        centre_org_id: c.centre,
        doctor_id: c.doctor,
        district_hospital_id: c.district_hospital,
        city_hospital_id: c.city_hospital,
        start,
        end: start + Months::new(12) - Days::new(1),
        status: ContractStatus::Active,
    }
}

fn ended(c: &Contract, today: NaiveDate) -> Contract {
    Contract {
        end: today.max(c.start).min(c.end),
        status: ContractStatus::Ended,
        ..c.clone()
    }
}

/// The rows to write (new or replaced, by id) for `action` on a resident's contracts,
/// on `today`; `new_id` is the id a new contract takes.
pub fn apply(
    resident_id: Id,
    existing: &[Contract],
    action: ContractAction,
    today: NaiveDate,
    new_id: Id,
) -> Result<Vec<Contract>, ContractError> {
    let open = open_from(existing, today);
    let in_force = open.iter().find(|c| c.start <= today).copied();
    match action {
        ContractAction::Sign(comb) => {
            if let Some(c) = open.first() {
                return Err(refuse(
                    "resident",
                    format!("resident already has contract {} in force from {} to {}: renew or change it", c.id, c.start, c.end),
                ));
            }
            Ok(vec![year_from(new_id, resident_id, comb, today)])
        }
        ContractAction::Renew => {
            let last = existing
                .iter()
                .filter(|c| c.status != ContractStatus::Ended)
                .max_by_key(|c| (c.start, c.id))
                .ok_or_else(|| {
                    refuse(
                        "contract",
                        "the resident has no contract to renew: sign one",
                    )
                })?;
            if open.iter().any(|c| c.start > today) {
                return Err(refuse(
                    "contract",
                    format!(
                        "contract {} is already renewed from {}",
                        last.id, last.start
                    ),
                ));
            }
            let comb = Combination {
                centre: last.centre_org_id,
                doctor: last.doctor_id,
                district_hospital: last.district_hospital_id,
                city_hospital: last.city_hospital_id,
            };
            let start = if last.end >= today {
                last.end + Days::new(1)
            } else {
                today
            };
            Ok(vec![year_from(new_id, resident_id, comb, start)])
        }
        ContractAction::Change(comb) => {
            let current = in_force.ok_or_else(|| {
                refuse(
                    "contract",
                    "the resident has no contract in force to change: sign one",
                )
            })?;
            let same = current.centre_org_id == comb.centre
                && current.doctor_id == comb.doctor
                && current.district_hospital_id == comb.district_hospital
                && current.city_hospital_id == comb.city_hospital;
            if same {
                return Err(refuse(
                    "doctor",
                    "the new combination is the same as the one in force",
                ));
            }
            let mut rows: Vec<Contract> = open.iter().map(|c| ended(c, today)).collect();
            rows.push(year_from(new_id, resident_id, comb, today));
            Ok(rows)
        }
        ContractAction::End => {
            if open.is_empty() {
                return Err(refuse(
                    "contract",
                    "the resident has no contract in force to end",
                ));
            }
            Ok(open.iter().map(|c| ended(c, today)).collect())
        }
    }
}

/// One resident's contracting figures for a period (domain-rules §2, §7).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// In a key population on the day.
    pub key_population: u32,
    /// In a key population and signed on the day.
    pub key_population_signed: u32,
    /// Signed on the day.
    pub signed: u32,
    /// Outpatient visits of the period made while signed (the contract of the visit day).
    pub signed_visits: u32,
    /// … at one of the three organisations of the combination (or a station of its centre).
    pub in_combination: u32,
    /// … at the contracted community health centre or one of its stations.
    pub community: u32,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Self) {
        self.key_population += o.key_population;
        self.key_population_signed += o.key_population_signed;
        self.signed += o.signed;
        self.signed_visits += o.signed_visits;
        self.in_combination += o.in_combination;
        self.community += o.community;
    }
}

/// The figures of `rec` for visits in `[from, on]` and signing on `on`. `centre_of`
/// gives the centre a station belongs to (a centre is its own).
pub fn tally(
    rec: &ResidentRecord,
    from: NaiveDate,
    on: NaiveDate,
    centre_of: &dyn Fn(Id) -> Id,
) -> Tally {
    let key = !key_populations(rec, on).is_empty();
    let signed = rec.contract_on(on).is_some();
    let mut t = Tally {
        key_population: u32::from(key),
        key_population_signed: u32::from(key && signed),
        signed: u32::from(signed),
        ..Tally::default()
    };
    for e in &rec.encounters {
        let day = e.start.date();
        // Visits (就诊) are outpatient encounters; programme follow-ups are not visits.
        if day < from || day > on || e.kind != crate::record::EncounterType::Outpatient {
            continue;
        }
        let Some(c) = rec.contract_on(day) else {
            continue;
        };
        t.signed_visits += 1;
        let at_centre = centre_of(e.org_id) == c.centre_org_id;
        if at_centre {
            t.community += 1;
        }
        if at_centre || e.org_id == c.district_hospital_id || e.org_id == c.city_hospital_id {
            t.in_combination += 1;
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    const A: Combination = Combination {
        centre: 10,
        doctor: 100,
        district_hospital: 20,
        city_hospital: 30,
    };
    const B: Combination = Combination {
        centre: 10,
        doctor: 101,
        district_hospital: 21,
        city_hospital: 30,
    };

    #[test]
    fn sign_renew_change_end() {
        let today = d("2025-03-01");
        let signed = apply(1, &[], ContractAction::Sign(A), today, 7).unwrap();
        assert_eq!(signed.len(), 1);
        assert_eq!((signed[0].start, signed[0].end), (today, d("2026-02-28")));
        // One contract in force: a second signing is refused, naming the resident.
        let again = apply(1, &signed, ContractAction::Sign(B), today, 8).unwrap_err();
        assert_eq!(again.field, "resident");
        // Renewal starts the day after the end; a second renewal is refused.
        let renewed = apply(1, &signed, ContractAction::Renew, d("2026-02-01"), 8).unwrap();
        assert_eq!(
            (renewed[0].start, renewed[0].end, renewed[0].doctor_id),
            (d("2026-03-01"), d("2027-02-28"), 100)
        );
        let both: Vec<Contract> = signed.iter().chain(&renewed).cloned().collect();
        assert_eq!(
            apply(1, &both, ContractAction::Renew, d("2026-02-02"), 9)
                .unwrap_err()
                .field,
            "contract"
        );
        // A lapsed contract renews from today.
        let lapsed = apply(1, &signed, ContractAction::Renew, d("2026-05-10"), 8).unwrap();
        assert_eq!(lapsed[0].start, d("2026-05-10"));
        // Change: the contract in force and the waiting renewal end, a new year starts.
        let changed = apply(1, &both, ContractAction::Change(B), d("2025-09-01"), 9).unwrap();
        assert_eq!(changed.len(), 3);
        assert!(changed[..2]
            .iter()
            .all(|c| c.status == ContractStatus::Ended));
        assert_eq!(changed[0].end, d("2025-09-01"));
        assert_eq!(
            (changed[2].doctor_id, changed[2].start),
            (101, d("2025-09-01"))
        );
        assert_eq!(
            apply(1, &signed, ContractAction::Change(A), today, 9)
                .unwrap_err()
                .field,
            "doctor"
        );
        // End.
        let ended = apply(1, &signed, ContractAction::End, d("2025-06-01"), 9).unwrap();
        assert_eq!(
            (ended[0].status, ended[0].end),
            (ContractStatus::Ended, d("2025-06-01"))
        );
        assert!(apply(1, &[], ContractAction::End, today, 9).is_err());
        assert!(apply(1, &[], ContractAction::Renew, today, 9).is_err());
        assert!(apply(1, &[], ContractAction::Change(A), today, 9).is_err());
    }

    fn merge(mut all: Vec<Contract>, rows: Vec<Contract>) -> Vec<Contract> {
        for r in rows {
            match all.iter_mut().find(|c| c.id == r.id) {
                Some(c) => *c = r,
                None => all.push(r),
            }
        }
        all
    }

    proptest! {
        /// Whatever sequence of actions is accepted, no day is covered by two contracts.
        #[test]
        fn never_two_contracts_in_force(steps in prop::collection::vec((0u8..4, 0u32..200, any::<bool>()), 1..30)) {
            let mut all: Vec<Contract> = Vec::new();
            let mut today = d("2024-01-01");
            for (i, (what, gap, which)) in steps.into_iter().enumerate() {
                today = today + Days::new(gap.into());
                let comb = if which { A } else { B };
                let action = match what {
                    0 => ContractAction::Sign(comb),
                    1 => ContractAction::Renew,
                    2 => ContractAction::Change(comb),
                    _ => ContractAction::End,
                };
                if let Ok(rows) = apply(1, &all, action, today, 1_000 + i as i64) {
                    prop_assert!(rows.iter().all(|c| c.end >= c.start));
                    all = merge(all, rows);
                }
                let mut day = d("2024-01-01");
                while day <= today + Days::new(800) {
                    prop_assert!(all.iter().filter(|c| c.covers(day)).count() <= 1, "two contracts on {}", day);
                    day = day + Days::new(7);
                }
            }
        }
    }
}
