//! Writes through FHIR: create, update and delete, alone or as the entries of a Bundle.
//! A [`Plan`] gathers the writes of one unit (an interaction, or a whole transaction)
//! into one [`WriteSet`]: the resources as received, the core rows they project to,
//! and their audit entries, committed together or not at all.

use std::collections::HashMap;

use chrono::{NaiveDate, Utc};
use dhp_core::access::{may_read_resident, may_write_records, OrgFacts, Principal, ResidentFacts};
use dhp_core::Id;
use dhp_fhir::input::{self};
use dhp_fhir::{Issue, IssueCode, OperationOutcome};
use dhp_store::{core_table, Prior, ResourceWrite, StoredResource, WriteSet};
use serde_json::{json, Value};

use crate::audit::{self, Actor};
use crate::{AppError, AppState};

mod project;

/// The types written through the API (each projected to a core table).
pub const WRITABLE: [&str; input::WRITABLE.len()] = input::WRITABLE;

/// The answer to one write.
#[derive(Debug, Clone)]
pub struct Written {
    pub kind: String,
    pub id: Id,
    pub version: i64,
    pub last_updated: String,
    /// The resource as stored (`None` after a delete).
    pub resource: Option<Value>,
    /// 201 created, 200 updated or found, 204 deleted.
    pub status: u16,
}

/// A refusal: the outcome to answer, and what the audit log should say of it.
#[derive(Debug)]
pub enum Refusal {
    Outcome(OperationOutcome),
    Failed(AppError),
}

impl From<AppError> for Refusal {
    fn from(e: AppError) -> Self {
        Refusal::Failed(e)
    }
}

impl From<dhp_store::StoreError> for Refusal {
    fn from(e: dhp_store::StoreError) -> Self {
        Refusal::Failed(e.into())
    }
}

fn refuse(code: IssueCode, path: Option<&str>, text: impl std::fmt::Display) -> Refusal {
    Refusal::Outcome(OperationOutcome::one(match path {
        Some(p) => Issue::at(code, p, text),
        None => Issue::new(code, text.to_string()),
    }))
}

fn invalid(issues: Vec<Issue>) -> Refusal {
    Refusal::Outcome(OperationOutcome::new(issues).with_status(400))
}

/// `YYYY-MM-DDTHH:MM:SS.sssZ`, now.
pub fn now_instant() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The writes of one unit, gathered before they are committed together.
pub struct Plan<'a> {
    pub(crate) state: &'a AppState,
    pub(crate) who: &'a Principal,
    pub(crate) actor: Actor,
    pub(crate) org: Option<OrgFacts>,
    pub(crate) today: NaiveDate,
    pub(crate) now: String,
    pub(crate) set: WriteSet,
    /// Residents' access facts, read once per unit and grown by its own writes.
    pub(crate) facts: HashMap<Id, ResidentFacts>,
    /// Encounters written in this unit: id → (organisation, resident), for the records
    /// that name their encounter.
    pub(crate) encounters: HashMap<Id, (Id, Id)>,
    /// Ids reserved ahead, per kind: (next, end exclusive).
    pub(crate) ids: HashMap<String, (Id, Id)>,
    /// Residents' birth dates, read once per unit.
    pub(crate) born: HashMap<Id, NaiveDate>,
    /// Batch Bundles' entries stay in the plan (import), rather than each committed
    /// on its own.
    pub(crate) batches_in_plan: bool,
    /// A refusal was written to the audit log where it was decided (with the resident
    /// it concerned): the caller need not log it again.
    pub(crate) refusal_audited: std::sync::atomic::AtomicBool,
    /// Residents written under emergency access (their audit entries say so).
    pub(crate) emergency: std::collections::HashSet<Id>,
    /// Practitioners found to exist in this unit.
    pub(crate) practitioners: std::sync::Mutex<std::collections::HashSet<Id>>,
}

/// How far a plan had got: [`Plan::rollback`] returns to it.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    pub(crate) resources: usize,
    pub(crate) core: [usize; 10],
    pub(crate) core_deletes: usize,
    pub(crate) audits: usize,
    pub(crate) meta: usize,
}

fn core_lens(b: &dhp_store::Batch) -> [usize; 10] {
    [
        b.organisations.len(),
        b.practitioners.len(),
        b.households.len(),
        b.residents.len(),
        b.contracts.len(),
        b.encounters.len(),
        b.conditions.len(),
        b.observations.len(),
        b.immunizations.len(),
        b.imaging_studies.len(),
    ]
}

impl<'a> Plan<'a> {
    pub async fn new(state: &'a AppState, who: &'a Principal) -> Result<Plan<'a>, AppError> {
        let org = crate::context::org_facts(state, who).await?;
        Ok(Plan {
            state,
            who,
            actor: Actor::from(who),
            org,
            today: dhp_core::clock::today(),
            now: now_instant(),
            set: WriteSet::default(),
            facts: HashMap::new(),
            encounters: HashMap::new(),
            ids: HashMap::new(),
            born: HashMap::new(),
            batches_in_plan: false,
            refusal_audited: std::sync::atomic::AtomicBool::new(false),
            emergency: std::collections::HashSet::new(),
            practitioners: std::sync::Mutex::new(std::collections::HashSet::new()),
        })
    }

    /// `n` new ids of `kind`: from those reserved ahead, else reserved now.
    pub async fn take_ids(&mut self, kind: &str, n: i64) -> Result<Id, dhp_store::StoreError> {
        if let Some((next, end)) = self.ids.get_mut(kind) {
            if *end - *next >= n {
                let first = *next;
                *next += n;
                return Ok(first);
            }
        }
        self.state.store.reserve_ids(kind, n).await
    }

    /// Reserve ids ahead: one reservation per kind for many writes to come.
    pub async fn reserve_ahead(
        &mut self,
        counts: &HashMap<String, i64>,
    ) -> Result<(), dhp_store::StoreError> {
        for (kind, &n) in counts {
            if n > 0 {
                let first = self.state.store.reserve_ids(kind, n).await?;
                self.ids.insert(kind.clone(), (first, first + n));
            }
        }
        Ok(())
    }

    pub fn mark(&self) -> Mark {
        Mark {
            resources: self.set.resources.len(),
            core: core_lens(&self.set.core),
            core_deletes: self.set.core_deletes.len(),
            audits: self.set.audits.len(),
            meta: self.set.meta.len(),
        }
    }

    /// A setting to write with the plan's data, in its transaction (an import's mark
    /// that a file is in).
    pub fn set_meta(&mut self, key: &str, value: &str) {
        self.set.meta.push((key.to_string(), value.to_string()));
    }

    /// Drop what was gathered since `m` (a refused Bundle among several).
    pub fn rollback(&mut self, m: Mark) {
        let c = &mut self.set.core;
        self.set.resources.truncate(m.resources);
        c.organisations.truncate(m.core[0]);
        c.practitioners.truncate(m.core[1]);
        c.households.truncate(m.core[2]);
        c.residents.truncate(m.core[3]);
        c.contracts.truncate(m.core[4]);
        c.encounters.truncate(m.core[5]);
        c.conditions.truncate(m.core[6]);
        c.observations.truncate(m.core[7]);
        c.immunizations.truncate(m.core[8]);
        c.imaging_studies.truncate(m.core[9]);
        self.set.core_deletes.truncate(m.core_deletes);
        self.set.audits.truncate(m.audits);
        self.set.meta.truncate(m.meta);
    }

    /// Keep batch Bundles' accepted entries in this plan, committed with the rest (an
    /// import, whose mark must land in the same transaction as the data).
    pub fn keep_batches(&mut self) {
        self.batches_in_plan = true;
    }

    pub fn batches_in_plan(&self) -> bool {
        self.batches_in_plan
    }

    pub fn who(&self) -> &'a Principal {
        self.who
    }

    /// Commit everything gathered, in one transaction.
    /// The residents the writer may read (and so may find by a conditional query).
    pub fn read_scope(&self) -> dhp_core::access::Scope {
        dhp_core::access::resident_scope(self.who, self.org.as_ref())
    }

    /// A condition the store checks inside the write's transaction.
    pub fn guard(&mut self, guard: dhp_store::Guard) {
        self.set.guards.push(guard);
    }

    pub async fn commit(self) -> Result<(), dhp_store::StoreError> {
        if self.set.is_empty() {
            return Ok(());
        }
        self.state.store.write_resources(&self.set).await
    }

    /// Log a refused write on its own (the unit's writes are not committed).
    pub async fn audit_refusal(
        &self,
        action: &str,
        resource: &str,
        resident: Option<Id>,
        why: &str,
    ) -> Result<(), AppError> {
        audit::record(
            &*self.state.store,
            &self.actor,
            action,
            resource,
            resident,
            "denied",
            why,
        )
        .await?;
        self.refusal_audited
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Whether the last refusal was audited where it was decided (and forget it).
    pub fn take_refusal_audited(&self) -> bool {
        self.refusal_audited
            .swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the caller's role writes `kind` at all (its scope is checked per
    /// record): clinical records by those who record them; appointments also by a
    /// resident, for themself.
    pub(crate) fn check_role(&self, kind: &str) -> Result<(), Refusal> {
        let allowed = if kind == "Appointment" {
            dhp_core::access::may_book(self.who.role)
        } else {
            may_write_records(self.who.role)
        };
        if allowed {
            Ok(())
        } else {
            Err(refuse(
                IssueCode::Forbidden,
                None,
                format!(
                    "the {} role does not record clinical data",
                    self.who.role.as_str()
                ),
            ))
        }
    }

    pub(crate) async fn facts(&mut self, resident: Id) -> Result<&mut ResidentFacts, Refusal> {
        if !self.facts.contains_key(&resident) {
            let f = match self
                .state
                .store
                .resident_access_facts(resident, self.today)
                .await
            {
                Ok(f) => f,
                Err(dhp_store::StoreError::NotFound(_)) => {
                    return Err(refuse(
                        IssueCode::NotFound,
                        None,
                        format!("Patient/{resident} does not exist"),
                    ))
                }
                Err(e) => return Err(e.into()),
            };
            self.facts.insert(resident, f);
        }
        Ok(self.facts.get_mut(&resident).expect("inserted above"))
    }

    /// May the account write this resident's record? Refusals are audited.
    pub(crate) async fn check_scope(
        &mut self,
        resident: Id,
        action: &str,
        resource: &str,
    ) -> Result<(), Refusal> {
        let facts = self.facts(resident).await?.clone();
        let decision = may_read_resident(self.who, self.org.as_ref(), &facts);
        if decision.allowed() {
            if decision.reason() == dhp_core::access::EMERGENCY_ACCESS {
                self.emergency.insert(resident);
            }
            return Ok(());
        }
        self.audit_refusal(action, resource, Some(resident), decision.reason())
            .await?;
        Err(refuse(
            IssueCode::Forbidden,
            None,
            format!("{resource}: {}", decision.reason()),
        ))
    }

    /// Does `kind/id` exist (stored, in the registry, or written earlier in this plan)?
    pub(crate) async fn exists(&self, kind: &str, id: Id, path: &str) -> Result<(), Refusal> {
        if kind == "Organization" {
            return self.org(id, path).await.map(|_| ());
        }
        // Staff named again and again (each encounter's practitioner): read once a unit.
        if kind == "Practitioner" && self.practitioners.lock().is_ok_and(|p| p.contains(&id)) {
            return Ok(());
        }
        let pending = self
            .set
            .resources
            .iter()
            .rev()
            .any(|w| w.resource.kind == kind && w.resource.id == id && !w.resource.deleted());
        let found = pending
            || match self.state.store.resource(kind, id).await? {
                Some(s) => !s.deleted(),
                None => match core_table(kind) {
                    Some(t) => match self.state.store.get(t, id).await {
                        Ok(_) => true,
                        Err(dhp_store::StoreError::NotFound(_)) => false,
                        Err(e) => return Err(e.into()),
                    },
                    None => false,
                },
            };
        if found {
            if kind == "Practitioner" {
                if let Ok(mut p) = self.practitioners.lock() {
                    p.insert(id);
                }
            }
            Ok(())
        } else {
            Err(refuse(
                IssueCode::Value,
                Some(path),
                format!("{kind}/{id} does not exist"),
            ))
        }
    }

    pub(crate) async fn org(&self, id: Id, path: &str) -> Result<dhp_core::Organisation, Refusal> {
        self.state.orgs().await?.get(&id).cloned().ok_or_else(|| {
            refuse(
                IssueCode::Value,
                Some(path),
                format!("Organization/{id} does not exist"),
            )
        })
    }

    /// Create `body` as a new resource of `kind`.
    pub async fn create(&mut self, kind: &str, body: Value) -> Result<Written, Refusal> {
        self.check_role(kind)?;
        check_kind(kind, &body)?;
        let id = self.take_ids(kind, 1).await?;
        self.create_with_id(kind, id, body).await
    }

    /// Create `body` under an id reserved beforehand (a Bundle's new resources get
    /// their ids before any is read, so references among them resolve).
    pub async fn create_with_id(
        &mut self,
        kind: &str,
        id: Id,
        mut body: Value,
    ) -> Result<Written, Refusal> {
        self.check_role(kind)?;
        check_kind(kind, &body)?;
        body["id"] = json!(id.to_string());
        self.put(kind, id, body, Prior::Nothing, 1, "create").await
    }

    /// Replace resource `kind/id` with `body`. `if_match` is the version the client
    /// last saw (`If-Match: W/"n"`), when it gave one.
    pub async fn update(
        &mut self,
        kind: &str,
        id: Id,
        mut body: Value,
        if_match: Option<i64>,
    ) -> Result<Written, Refusal> {
        self.check_role(kind)?;
        check_kind(kind, &body)?;
        match body.get("id").and_then(Value::as_str) {
            Some(given) if given == id.to_string() => {}
            Some(given) => {
                return Err(refuse(
                    IssueCode::Invalid,
                    Some(&format!("{kind}.id")),
                    format!("{given:?} differs from the id in the URL ({id})"),
                ))
            }
            None => {
                return Err(refuse(
                    IssueCode::Required,
                    Some(&format!("{kind}.id")),
                    "an update must carry the resource's id",
                ))
            }
        }
        self.not_a_referral(kind, id, "update").await?;
        let (prior, current) = self.current(kind, id).await?;
        let Some(current) = current else {
            return Err(Refusal::Outcome(
                OperationOutcome::one(Issue::new(
                    IssueCode::NotSupported,
                    format!("{kind}/{id} does not exist, and this server assigns ids itself: create it with POST /fhir/{kind}"),
                ))
                .with_status(405),
            ));
        };
        if let Some(v) = if_match {
            if v != current {
                return Err(Refusal::Outcome(
                    OperationOutcome::one(Issue::new(
                        IssueCode::Conflict,
                        format!("{kind}/{id} is at version {current}, not {v} (If-Match)"),
                    ))
                    .with_status(412),
                ));
            }
        }
        // The record as it stands must be in the account's scope too (not only the
        // record as it will be).
        if let Some(owner) = self.owner(kind, id).await? {
            self.check_scope(owner, "update", &format!("{kind}/{id}"))
                .await?;
        }
        body["id"] = json!(id.to_string());
        self.put(kind, id, body, prior, current + 1, "update").await
    }

    /// A referral's request (a ServiceRequest read from the referral at its Task's id)
    /// is not replaced or deleted as a resource: the referral moves on through its Task.
    /// Only an account that may see the referral learns that it is one.
    async fn not_a_referral(&mut self, kind: &str, id: Id, action: &str) -> Result<(), Refusal> {
        if kind != "ServiceRequest" {
            return Ok(());
        }
        let Some((_, resident)) = super::referral::find(self.state, id, true).await? else {
            return Ok(());
        };
        if let Some(r) = resident {
            self.check_scope(r, action, &format!("ServiceRequest/{id}"))
                .await?;
        }
        Err(Refusal::Outcome(
            OperationOutcome::one(Issue::at(
                IssueCode::NotSupported,
                "ServiceRequest.status",
                format!("ServiceRequest/{id} is a referral's request: it moves on through its Task (PUT /fhir/Task/{id} with the new status; cancelled withdraws the referral)"),
            ))
            .with_status(405),
        ))
    }

    /// Delete resource `kind/id`. Deleting what is already deleted succeeds.
    pub async fn delete(&mut self, kind: &str, id: Id) -> Result<Written, Refusal> {
        // As for a clinical record whatever the kind: a resident deletes nothing.
        self.check_role("")?;
        self.not_a_referral(kind, id, "delete").await?;
        if dhp_fhir::types::care_tables(kind) {
            return Err(Refusal::Outcome(
                OperationOutcome::one(Issue::new(
                    IssueCode::NotSupported,
                    format!("{kind}/{id}: tiered care's records are not deleted: an appointment is cancelled (status cancelled with a cancelationReason), a referral withdrawn (its Task cancelled); schedules and slots are withdrawn by their organisation"),
                ))
                .with_status(405),
            ));
        }
        let (prior, current) = self.current(kind, id).await?;
        let resource = format!("{kind}/{id}");
        let Some(current) = current else {
            return Err(refuse(
                IssueCode::NotFound,
                None,
                format!("{resource} does not exist"),
            ));
        };
        let stored = self.state.store.resource(kind, id).await?;
        if stored.as_ref().is_some_and(StoredResource::deleted) {
            return Ok(Written {
                kind: kind.into(),
                id,
                version: current,
                last_updated: stored.map(|s| s.last_updated).unwrap_or_default(),
                resource: None,
                status: 204,
            });
        }
        let owner = self.owner(kind, id).await?;
        if let Some(o) = owner {
            self.check_scope(o, "delete", &resource).await?;
        }
        if let Some(t) = core_table(kind) {
            self.set.core_deletes.push((t, id));
        }
        let version = current + 1;
        self.set.resources.push(ResourceWrite {
            resource: StoredResource {
                kind: kind.into(),
                id,
                version_id: version,
                last_updated: self.now.clone(),
                resident_id: owner,
                json: None,
                status: None,
                index: dhp_store::Index::default(),
            },
            prior,
        });
        self.set.audits.push(audit::entry(
            &self.actor,
            "delete",
            &resource,
            owner,
            "success",
            "deleted",
        ));
        Ok(Written {
            kind: kind.into(),
            id,
            version,
            last_updated: self.now.clone(),
            resource: None,
            status: 204,
        })
    }

    /// What stands under `kind/id` now: the prior to write over, and its version
    /// (`None` when there is nothing, generated or stored).
    pub(crate) async fn current(
        &self,
        kind: &str,
        id: Id,
    ) -> Result<(Prior, Option<i64>), Refusal> {
        if !WRITABLE.contains(&kind) {
            return Err(refuse(
                IssueCode::NotSupported,
                None,
                format!("writing {kind} is not supported by this server; GET /fhir/metadata lists what is"),
            ));
        }
        if kind == "Appointment" {
            // The pool's row is the record; its version counts its steps.
            let found = self.state.store.appointment(id).await?;
            return Ok((Prior::Nothing, found.map(|a| a.version)));
        }
        if let Some(s) = self.state.store.resource(kind, id).await? {
            return Ok((Prior::Version(s.version_id), Some(s.version_id)));
        }
        let Some(table) = core_table(kind) else {
            return Ok((Prior::Nothing, None));
        };
        match self.state.store.get(table, id).await {
            Ok(row) => {
                let json = super::core_json(self.state, kind, &row, false).await?;
                Ok((
                    Prior::Core {
                        json: json.to_string(),
                        last_updated: self.state.place().await?.generated.clone(),
                    },
                    Some(1),
                ))
            }
            Err(dhp_store::StoreError::NotFound(_)) => Ok((Prior::Nothing, None)),
            Err(e) => Err(e.into()),
        }
    }

    /// The resident a stored record belongs to.
    pub(crate) async fn owner(&self, kind: &str, id: Id) -> Result<Option<Id>, Refusal> {
        if kind == "Appointment" {
            let found = self.state.store.appointment(id).await?;
            return Ok(found.map(|a| a.row.resident_id));
        }
        if let Some(s) = self.state.store.resource(kind, id).await? {
            if s.resident_id.is_some() {
                return Ok(s.resident_id);
            }
        }
        let Some(table) = core_table(kind) else {
            return Ok(None);
        };
        match self.state.store.get(table, id).await {
            Ok(row) => Ok(super::owner(&row)),
            Err(dhp_store::StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// The body's `resourceType` must be the one addressed.
fn check_kind(kind: &str, body: &Value) -> Result<(), Refusal> {
    // A referral's Task moves on by itself (`PUT /fhir/Task/{id}`), never inside a
    // Bundle; referrals are made with `POST /api/referrals`.
    if kind == "Task" {
        return Err(Refusal::Outcome(
            OperationOutcome::one(Issue::new(
                IssueCode::NotSupported,
                "a referral's Task is moved on by PUT /fhir/Task/{id} on its own (not in a Bundle); referrals are made with POST /api/referrals",
            ))
            .with_status(400),
        ));
    }
    match body.get("resourceType").and_then(Value::as_str) {
        Some(k) if k == kind => Ok(()),
        Some(k) => Err(refuse(
            IssueCode::Invalid,
            Some(&format!("{kind}.resourceType")),
            format!("{k:?} was sent to the {kind} endpoint"),
        )),
        None => Err(refuse(
            IssueCode::Structure,
            Some(&format!("{kind}.resourceType")),
            "the body is not a FHIR resource (resourceType is missing)",
        )),
    }
}

/// `meta` of a stored version: what the client sent (profiles, tags), with the
/// server's version and time.
fn merge_meta(sent: Option<&Value>, version: i64, now: &str) -> Value {
    let mut meta = sent
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    meta["versionId"] = json!(version.to_string());
    meta["lastUpdated"] = json!(now);
    meta
}

/// A version number from an `If-Match` ETag (`W/"3"` or `"3"`).
pub fn parse_etag(text: &str) -> Option<i64> {
    text.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .ok()
}
