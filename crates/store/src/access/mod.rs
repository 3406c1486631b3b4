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
    let mut referred_to = Vec::new();
    for r in &referrals {
        let status = r.text(1)?;
        let engages = dhp_core::referral::TaskStatus::parse(&status)
            .ok_or_else(|| crate::StoreError::Corrupt(format!("referral status {status:?}")))?
            .engages_receiver();
        if engages && !referred_to.contains(&r.i64(0)?) {
            referred_to.push(r.i64(0)?);
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
        referred_to,
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
