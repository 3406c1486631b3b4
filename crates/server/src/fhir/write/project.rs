//! Projection of one incoming resource: validated with `dhp_fhir::input`, checked
//! against the writer's scope, mapped to its core rows and added to the plan's set.

use crate::audit::{self};
use chrono::NaiveDate;
use dhp_core::access::{may_read_resident, ResidentFacts};
use dhp_core::Id;
use dhp_core::{
    Condition, Encounter, Household, ImagingStudy, Immunization, Observation, OrgKind, Resident,
};
use dhp_fhir::input::{self, DiagnosingOrg};
use dhp_fhir::{patient, IssueCode};
use dhp_store::{Prior, ResourceWrite, StoredResource, Table};
use serde_json::Value;

use super::*;

impl<'a> Plan<'a> {
    /// Validate `body`, project it, check scope, and add it to the set.
    pub(super) async fn put(
        &mut self,
        kind: &str,
        id: Id,
        body: Value,
        prior: Prior,
        version: i64,
        action: &str,
    ) -> Result<Written, Refusal> {
        let resource = format!("{kind}/{id}");
        let mut index = dhp_store::Index::default();
        // When the record says it happened (never before the resident was born), and
        // the hospital an encounter brings the resident to.
        let mut event: Option<(NaiveDate, &str)> = None;
        let mut encounter_org = None;
        let resident = match kind {
            // The slot pool's own rows: booked or moved under its rules, never kept as
            // received.
            "Appointment" => return self.put_appointment(id, &body, action).await,
            "Patient" => self.project_patient(id, &body, action).await?,
            "Encounter" => {
                let e = input::encounter(&body).map_err(invalid)?;
                self.org(e.org_id, "Encounter.serviceProvider.reference").await?;
                if let Some(p) = e.practitioner_id {
                    self.exists("Practitioner", p, "Encounter.participant[0].individual.reference")
                        .await?;
                }
                event = Some((e.start.date(), "Encounter.period.start"));
                encounter_org = Some(e.org_id);
                self.encounters.insert(id, (e.org_id, e.resident_id));
                self.set.core.encounters.push(Encounter {
                    id,
                    resident_id: e.resident_id,
                    kind: e.kind,
                    programme: e.programme,
                    org_id: e.org_id,
                    practitioner_id: e.practitioner_id,
                    start: e.start,
                });
                e.resident_id
            }
            "Condition" => {
                let c = input::condition(&body).map_err(invalid)?;
                let org_id = match c.org {
                    DiagnosingOrg::Organisation(o) => {
                        self.org(o, "Condition.extension.valueReference").await?;
                        o
                    }
                        DiagnosingOrg::OfEncounter(e) => {
                        self.encounter_of(e, c.resident_id, "Condition.encounter.reference")
                            .await?
                    }
                };
                event = Some((c.onset, "Condition.onsetDateTime"));
                self.set.core.conditions.push(Condition {
                    id,
                    resident_id: c.resident_id,
                    icd10: c.icd10,
                    onset: c.onset,
                    org_id,
                });
                c.resident_id
            }
            "Observation" => {
                let o = input::observation(&body).map_err(invalid)?;
                if let Some(e) = o.encounter_id {
                    self.encounter_of(e, o.resident_id, "Observation.encounter.reference")
                        .await?;
                }
                event = Some((o.effective.date(), "Observation.effectiveDateTime"));
                self.set.core.observations.push(Observation {
                    id,
                    resident_id: o.resident_id,
                    encounter_id: o.encounter_id,
                    code: o.code,
                    value: o.value,
                    unit: o.unit,
                    effective: o.effective,
                });
                o.resident_id
            }
            "ImagingStudy" => {
                let m = input::imaging_study(&body).map_err(invalid)?;
                // The issuing institution is the encounter's.
                let org_id = self
                    .encounter_of(
                        m.encounter_id,
                        m.resident_id,
                        "ImagingStudy.encounter.reference",
                    )
                    .await?;
                // A Study Instance UID names one study: not a second one here. The
                // other study is not named: it may be a resident the writer may not
                // see (a search by identifier finds it for one who may).
                let held = self
                    .state
                    .store
                    .study_by_uid(&m.uid)
                    .await?
                    .filter(|o| *o != id);
                let here = self
                    .set
                    .core
                    .imaging_studies
                    .iter()
                    .any(|s| s.uid == m.uid && s.id != id);
                if held.is_some() || here {
                    let why = if here {
                        format!("another entry of this Bundle has the Study Instance UID {}", m.uid)
                    } else {
                        format!("{}: {}", dhp_store::STUDY_UID_TAKEN, m.uid)
                    };
                    return Err(Refusal::Outcome(
                        OperationOutcome::one(Issue::at(
                            IssueCode::Conflict,
                            "ImagingStudy.identifier",
                            why,
                        ))
                        .with_status(409),
                    ));
                }
                event = Some((m.started.date(), "ImagingStudy.started"));
                self.set.core.imaging_studies.push(ImagingStudy {
                    id,
                    resident_id: m.resident_id,
                    encounter_id: m.encounter_id,
                    org_id,
                    code: m.code,
                    modality: m.modality,
                    started: m.started,
                    uid: m.uid,
                    findings: m.findings,
                });
                m.resident_id
            }
            "Immunization" => {
                let i = input::immunization(&body).map_err(invalid)?;
                self.org(i.org_id, "Immunization.performer.actor.reference").await?;
                event = Some((i.date, "Immunization.occurrenceDateTime"));
                self.set.core.immunizations.push(Immunization {
                    id,
                    resident_id: i.resident_id,
                    vaccine: i.vaccine,
                    dose_number: i.dose_number,
                    date: i.date,
                    org_id: i.org_id,
                });
                i.resident_id
            }
            // A referral is made alone, by `POST /fhir/ServiceRequest`, and moved on by
            // its Task: never kept as received.
            "ServiceRequest" if input::claims_referral(&body) => {
                return Err(refuse(
                    IssueCode::NotSupported,
                    Some("ServiceRequest.category"),
                    "a referral is made by POST /fhir/ServiceRequest on its own (not in a Bundle, not by update) and moved on by updating its Task",
                ))
            }
            other => match input::stored_spec(other) {
                Some(spec) => {
                    let s = input::stored(spec, &body).map_err(invalid)?;
                    if let (Some((t, rid)), Some((path, _, _))) = (&s.reference, spec.reference) {
                        self.exists(t, *rid, &format!("{other}.{path}.reference"))
                            .await?;
                    }
                    index = dhp_store::Index {
                        code: s.code,
                        date: s.date,
                        reference: s.reference.map(|(t, rid)| format!("{t}/{rid}")),
                    };
                    match s.resident_id {
                        Some(r) => r,
                        // Not a resident's data (a schedule, a slot).
                        None => return self.keep(kind, id, body, prior, version, action, None, index),
                    }
                }
                None => {
                    return Err(refuse(
                        IssueCode::NotSupported,
                        None,
                        format!("writing {other} is not supported by this server; GET /fhir/metadata lists what is"),
                    ))
                }
            },
        };
        if kind != "Patient" {
            // In scope before this write counts: an encounter does not bring its own
            // resident into the writer's scope (a hospital clinician records only for
            // residents already seen at their hospital).
            self.check_scope(resident, action, &resource).await?;
            if let Some(org) = encounter_org {
                self.facts(resident).await?.encounter_orgs.push(org);
            }
        }
        if let Some((day, path)) = event {
            // A resident written earlier in this unit is not stored yet.
            let pending = self
                .set
                .core
                .residents
                .iter()
                .rev()
                .find(|r| r.id == resident);
            let born = match (pending, self.born.get(&resident)) {
                (Some(r), _) => r.birth_date,
                (None, Some(b)) => *b,
                (None, None) => {
                    let b = self.state.store.resident(resident).await?.birth_date;
                    self.born.insert(resident, b);
                    b
                }
            };
            if day < born {
                return Err(refuse(
                    IssueCode::Value,
                    Some(path),
                    format!("{day} is before the resident was born ({born})"),
                ));
            }
        }
        self.keep(
            kind,
            id,
            body,
            prior,
            version,
            action,
            Some(resident),
            index,
        )
    }

    /// The organisation of an encounter of `resident` written earlier in this unit or
    /// stored; refused at `path` when there is no such encounter or it is another
    /// resident's.
    async fn encounter_of(
        &mut self,
        encounter: Id,
        resident: Id,
        path: &str,
    ) -> Result<Id, Refusal> {
        let (org, whose) = match self.encounters.get(&encounter) {
            Some(found) => *found,
            None => match self.state.store.get(Table::Encounters, encounter).await {
                Ok(row) => (row.encounters[0].org_id, row.encounters[0].resident_id),
                Err(dhp_store::StoreError::NotFound(_)) => {
                    return Err(refuse(
                        IssueCode::Value,
                        Some(path),
                        format!("Encounter/{encounter} does not exist"),
                    ))
                }
                Err(err) => return Err(err.into()),
            },
        };
        if whose != resident {
            return Err(refuse(
                IssueCode::Value,
                Some(path),
                format!("Encounter/{encounter} is another patient's encounter"),
            ));
        }
        Ok(org)
    }

    /// Add the checked resource to the set, with its audit entry.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn keep(
        &mut self,
        kind: &str,
        id: Id,
        mut body: Value,
        prior: Prior,
        version: i64,
        action: &str,
        resident: Option<Id>,
        index: dhp_store::Index,
    ) -> Result<Written, Refusal> {
        let resource = format!("{kind}/{id}");
        body["meta"] = merge_meta(body.get("meta"), version, &self.now);
        self.set.resources.push(ResourceWrite {
            resource: StoredResource {
                kind: kind.into(),
                id,
                version_id: version,
                last_updated: self.now.clone(),
                resident_id: resident,
                status: dhp_fhir::search::status_token(kind, &body),
                json: Some(body.to_string()),
                index,
            },
            prior,
        });
        let detail = if resident.is_some_and(|r| self.emergency.contains(&r)) {
            "written under emergency access (break the glass)"
        } else {
            "written"
        };
        self.set.audits.push(audit::entry(
            &self.actor,
            action,
            &resource,
            resident,
            "success",
            detail,
        ));
        Ok(Written {
            kind: kind.into(),
            id,
            version,
            last_updated: self.now.clone(),
            resource: Some(body),
            status: if action == "create" { 201 } else { 200 },
        })
    }

    /// A Patient: the resident row (and a household for its address); the scope check
    /// uses the street the resident is placed in.
    pub(super) async fn project_patient(
        &mut self,
        id: Id,
        body: &Value,
        action: &str,
    ) -> Result<Id, Refusal> {
        let p = patient::from_fhir(body, self.today).map_err(invalid)?;
        let place = self.state.place().await?.clone();
        let street = self.street_of(&p).await?;
        let existing = match self.state.store.resident(id).await {
            Ok(r) => Some(r),
            Err(dhp_store::StoreError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        if let Ok(other) = self
            .state
            .store
            .resident_by_identity(p.identity_number.as_str())
            .await
        {
            if other.id != id {
                // Name the record only to someone who may read it; to anyone else the
                // clash says no more than that the number is taken. Audited either way.
                let visible = crate::fhir::read_decision(self.state, self.who, other.id)
                    .await?
                    .allowed();
                let why = if visible {
                    format!("identity number already registered as Patient/{}", other.id)
                } else {
                    "identity number already registered in the district, outside your scope: \
                     the record must be shared with you (a referral, a booking or a contract) \
                     before you write it"
                        .to_string()
                };
                self.audit_refusal(action, "Patient", Some(other.id), "identity number clash")
                    .await
                    .map_err(Refusal::Failed)?;
                return Err(refuse(IssueCode::Conflict, Some("Patient.identifier"), why));
            }
        }
        let address = p.address.clone().unwrap_or_default();
        // Keep the household when the address is unchanged; a new address is a new
        // household (the resident moved; the others stay).
        let household_id = match &existing {
            Some(r) => {
                let h = self.state.store.household(r.household_id).await?;
                if (h.address == address || address.is_empty()) && h.street_org_id == street {
                    Some(h.id)
                } else {
                    None
                }
            }
            None => None,
        };
        let household_id = match household_id {
            Some(h) => h,
            None => {
                let h = self.take_ids("Household", 1).await?;
                self.set.core.households.push(Household {
                    id: h,
                    district_code: place.district_code.clone(),
                    street_org_id: street,
                    address: address.clone(),
                });
                h
            }
        };
        let registered = p.registered.unwrap_or_else(|| {
            let region = p.identity_number.region();
            region == place.district_code || place.former_codes.iter().any(|c| c == region)
        });
        let resident = Resident {
            id,
            district_code: place.district_code.clone(),
            sex: p.sex,
            birth_date: p.birth_date,
            identity_number: p.identity_number.clone(),
            name: p.name.clone(),
            street_org_id: street,
            household_id,
            phone: p.phone.clone().unwrap_or_default(),
            registered,
        };
        // The scope of the record as it will be: its street, plus what it had.
        let mut facts = match existing {
            Some(_) => self.facts(id).await?.clone(),
            None => ResidentFacts {
                resident_id: id,
                district_code: place.district_code.clone(),
                street_org_id: street,
                contract_centres: Vec::new(),
                contract_doctors: Vec::new(),
                encounter_orgs: Vec::new(),
                referred_or_booked: Vec::new(),
                emergency_users: Vec::new(),
            },
        };
        facts.street_org_id = street;
        // A hospital registers its own new patients.
        let new_at_hospital = action == "create"
            && self
                .org
                .as_ref()
                .is_some_and(|o| o.kind == OrgKind::Hospital);
        if new_at_hospital {
            facts.encounter_orgs.extend(self.org.as_ref().map(|o| o.id));
        }
        let decision = may_read_resident(self.who, self.org.as_ref(), &facts);
        if !decision.allowed() {
            let resource = format!("Patient/{id}");
            self.audit_refusal(action, &resource, Some(id), decision.reason())
                .await?;
            return Err(refuse(
                IssueCode::Forbidden,
                None,
                format!("{resource}: {}", decision.reason()),
            ));
        }
        self.facts.insert(id, facts);
        self.set.core.residents.push(resident);
        Ok(id)
    }

    /// The street or town of the district a Patient lives in: from its managing
    /// organisation (a centre or the street itself), else from the address naming one.
    pub(super) async fn street_of(&self, p: &patient::PatientInput) -> Result<Id, Refusal> {
        let orgs = self.state.orgs().await?;
        let is_area = |k: OrgKind| matches!(k, OrgKind::Street | OrgKind::Town);
        if let Some(m) = p.managing_org {
            let o = orgs.get(&m).ok_or_else(|| {
                refuse(
                    IssueCode::Value,
                    Some("Patient.managingOrganization.reference"),
                    format!("Organization/{m} does not exist"),
                )
            })?;
            if is_area(o.kind) {
                return Ok(o.id);
            }
            if let Some(parent) = o
                .parent_id
                .and_then(|p| orgs.get(&p))
                .filter(|p| is_area(p.kind))
            {
                return Ok(parent.id);
            }
            return Err(refuse(
                IssueCode::Value,
                Some("Patient.managingOrganization.reference"),
                format!(
                    "Organization/{m} is neither a street or town nor a community health centre"
                ),
            ));
        }
        let address = p.address.as_deref().unwrap_or_default();
        let mut areas: Vec<&dhp_core::Organisation> = orgs
            .values()
            .filter(|o| is_area(o.kind) && address.contains(&o.name_zh))
            .collect();
        areas.sort_by_key(|o| std::cmp::Reverse(o.name_zh.len()));
        areas.first().map(|o| o.id).ok_or_else(|| {
            refuse(
                IssueCode::Required,
                Some("Patient.address"),
                "cannot place the resident in a street or town of the district: name it in address.line (e.g. 夏阳街道…) or give managingOrganization",
            )
        })
    }
}
