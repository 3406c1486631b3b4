//! The registry: organisations, residents and households by key or code, and the counts of each street and town.

use async_trait::async_trait;
use dhp_core::{Household, Id, Organisation, Resident};

use crate::rows::{self, Col};
use crate::shared::{first, one, Backend, Exec, Param};
use crate::tables::by_id;
use crate::{AreaCount, Batch, Result, Table};

pub(crate) async fn organisation_by_code<E: Exec>(e: &E, code: &str) -> Result<Organisation> {
    let sql = format!(
        "SELECT {} FROM organisations WHERE code = $1",
        rows::columns(Table::Organisations)
    );
    rows::organisation(
        &one(e, &sql, vec![code.into()], || {
            format!("organisation {code}")
        })
        .await?,
    )
}

pub(crate) async fn resident_by_identity<E: Exec>(
    e: &E,
    identity_number: &str,
) -> Result<Resident> {
    let sql = format!(
        "SELECT {} FROM residents WHERE identity_number = $1",
        rows::columns(Table::Residents)
    );
    rows::resident(&one(e, &sql, vec![identity_number.into()], || "resident".into()).await?)
}

pub(crate) async fn area_counts<E: Exec>(e: &E) -> Result<Vec<AreaCount>> {
    let rows = e
        .rows(
            "SELECT o.id, \
             (SELECT COUNT(*) FROM residents r WHERE r.street_org_id = o.id), \
             (SELECT COUNT(*) FROM households h WHERE h.street_org_id = o.id) \
             FROM organisations o WHERE o.kind IN ('street', 'town') ORDER BY o.id",
            vec![],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(AreaCount {
                org_id: r.i64(0)?,
                residents: r.i64(1)?,
                households: r.i64(2)?,
            })
        })
        .collect()
}

pub(crate) async fn resident<E: Exec>(e: &E, id: Id) -> Result<Resident> {
    first(by_id(e, Table::Residents, id).await?.residents, "resident")
}

pub(crate) async fn household<E: Exec>(e: &E, id: Id) -> Result<Household> {
    first(
        by_id(e, Table::Households, id).await?.households,
        "household",
    )
}

pub(crate) async fn organisation<E: Exec>(e: &E, id: Id) -> Result<Organisation> {
    first(
        by_id(e, Table::Organisations, id).await?.organisations,
        "organisation",
    )
}

pub(crate) async fn households<E: Exec>(e: &E, ids: &[Id]) -> Result<Vec<Household>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(1_000) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT {} FROM households WHERE id IN ({})",
            rows::columns(Table::Households),
            marks.join(", ")
        );
        let found = e
            .rows(&sql, chunk.iter().map(|id| Param::I64(*id)).collect())
            .await?;
        let mut batch = Batch::default();
        for r in &found {
            rows::push(&mut batch, Table::Households, r)?;
        }
        out.extend(batch.households);
    }
    Ok(out)
}

/// The registry: organisations, residents and households by key or code, and the counts of each street and town.
#[async_trait]
pub trait RegistryStore: Send + Sync {
    /// Look an organisation up by its code.
    async fn organisation_by_code(&self, code: &str) -> Result<Organisation>;
    /// Look a resident up by identity number.
    async fn resident_by_identity(&self, identity_number: &str) -> Result<Resident>;
    /// Residents and households per street or town.
    async fn area_counts(&self) -> Result<Vec<AreaCount>>;
    async fn resident(&self, id: Id) -> Result<Resident>;
    async fn household(&self, id: Id) -> Result<Household>;
    async fn organisation(&self, id: Id) -> Result<Organisation>;
    /// The households with these ids (any order; unknown ids are skipped).
    async fn households(&self, ids: &[Id]) -> Result<Vec<Household>>;
}

#[async_trait]
impl<B: Backend> RegistryStore for B {
    async fn organisation_by_code(&self, code: &str) -> Result<Organisation> {
        organisation_by_code(self.pool(), code).await
    }
    async fn resident_by_identity(&self, identity_number: &str) -> Result<Resident> {
        resident_by_identity(self.pool(), identity_number).await
    }
    async fn area_counts(&self) -> Result<Vec<AreaCount>> {
        area_counts(self.pool()).await
    }
    async fn resident(&self, id: Id) -> Result<Resident> {
        resident(self.pool(), id).await
    }
    async fn household(&self, id: Id) -> Result<Household> {
        household(self.pool(), id).await
    }
    async fn organisation(&self, id: Id) -> Result<Organisation> {
        organisation(self.pool(), id).await
    }
    async fn households(&self, ids: &[Id]) -> Result<Vec<Household>> {
        households(self.pool(), ids).await
    }
}
