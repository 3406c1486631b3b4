//! What access decisions read and grant: a resident's facts (home, contracts, care) and emergency access grants.

pub(crate) mod emergency;

use async_trait::async_trait;
use chrono::{NaiveDate, NaiveDateTime};
use dhp_core::access::ResidentFacts;
use dhp_core::Id;

use crate::rows::Col;
use crate::shared::{one, Backend, Exec, Param};
use crate::{EmergencyGrant, Result};

pub(crate) async fn resident_access_facts<E: Exec>(
    e: &E,
    id: Id,
    today: NaiveDate,
) -> Result<ResidentFacts> {
    let r = one(
        e,
        "SELECT district_code, street_org_id FROM residents WHERE id = $1",
        vec![Param::I64(id)],
        || format!("resident {id}"),
    )
    .await?;
    let contracts = e
        .rows(
            "SELECT centre_org_id, doctor_id FROM contracts WHERE resident_id = $1 \
             AND status <> 'ended' AND start_date <= $2 AND end_date >= $2",
            vec![Param::I64(id), Param::Date(today)],
        )
        .await?;
    let encounters = e
        .rows(
            "SELECT DISTINCT org_id FROM encounters WHERE resident_id = $1",
            vec![Param::I64(id)],
        )
        .await?;
    let referrals = e
        .rows(
            "SELECT DISTINCT to_org, status FROM referrals WHERE resident_id = $1",
            vec![Param::I64(id)],
        )
        .await?;
    let mut referred_or_booked = Vec::new();
    for r in &referrals {
        let status = r.text(1)?;
        let engages = dhp_core::referral::TaskStatus::parse(&status)
            .ok_or_else(|| crate::StoreError::Corrupt(format!("referral status {status:?}")))?
            .engages_receiver();
        if engages && !referred_or_booked.contains(&r.i64(0)?) {
            referred_or_booked.push(r.i64(0)?);
        }
    }
    // A booking holding its place at an organisation (the life cycle says which; a
    // `$hold` not yet booked opens nothing).
    let holding: Vec<Param> = dhp_core::booking::Status::ALL
        .into_iter()
        .filter(|s| s.holds_place())
        .map(|s| Param::Text(s.as_str().into()))
        .collect();
    let marks = crate::shared::placeholders(1, holding.len(), true);
    let mut params = vec![Param::I64(id)];
    params.extend(holding);
    for r in e
        .rows(
            &format!(
                "SELECT DISTINCT sc.org_id FROM appointments ap JOIN slots s ON s.id = ap.slot_id \
                 JOIN schedules sc ON sc.id = s.schedule_id \
                 WHERE ap.resident_id = $1 AND ap.status IN {marks} AND {}",
                crate::shared::NOT_A_HOLD
            ),
            params,
        )
        .await?
    {
        let org = r.i64(0)?;
        if !referred_or_booked.contains(&org) {
            referred_or_booked.push(org);
        }
    }
    let emergency =
        crate::access::emergency::holders(e, id, chrono::Utc::now().naive_utc()).await?;
    Ok(ResidentFacts {
        resident_id: id,
        district_code: r.text(0)?,
        street_org_id: r.i64(1)?,
        contract_centres: contracts.iter().map(|c| c.i64(0)).collect::<Result<_>>()?,
        contract_doctors: contracts.iter().map(|c| c.i64(1)).collect::<Result<_>>()?,
        encounter_orgs: encounters.iter().map(|c| c.i64(0)).collect::<Result<_>>()?,
        referred_or_booked,
        emergency_users: emergency,
    })
}

/// What access decisions read and grant: a resident's facts (home, contracts, care) and emergency access grants.
#[async_trait]
pub trait AccessStore: Send + Sync {
    /// What decides who may see resident `id` on `today` (contracts in force,
    /// organisations of their encounters).
    async fn resident_access_facts(&self, id: Id, today: NaiveDate) -> Result<ResidentFacts>;
    /// Record an emergency access grant (break the glass).
    async fn grant_emergency_access(&self, grant: &EmergencyGrant) -> Result<()>;
    /// Emergency access grants made since `since`, newest first, each with the number
    /// of audit entries its holder wrote on the resident while it lasted.
    async fn emergency_grants(&self, since: NaiveDateTime) -> Result<Vec<(EmergencyGrant, i64)>>;
}

#[async_trait]
impl<B: Backend> AccessStore for B {
    async fn resident_access_facts(&self, id: Id, today: NaiveDate) -> Result<ResidentFacts> {
        resident_access_facts(self.pool(), id, today).await
    }
    async fn grant_emergency_access(&self, grant: &crate::EmergencyGrant) -> Result<()> {
        crate::access::emergency::insert(self.pool(), grant).await
    }
    async fn emergency_grants(
        &self,
        since: NaiveDateTime,
    ) -> Result<Vec<(crate::EmergencyGrant, i64)>> {
        crate::access::emergency::since(self.pool(), since).await
    }
}
