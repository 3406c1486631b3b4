//! The resident portal's own rows: guardians of minors (who may see and act for a
//! child, and the consent of a child of 14 to 17) and satisfaction surveys after a
//! completed visit. The rules (ages, the survey's items) are `dhp_core`'s.

use async_trait::async_trait;
use chrono::{NaiveDate, NaiveDateTime};
use dhp_core::survey::SurveyFact;
use dhp_core::Id;

use crate::rows::Col;
use crate::shared::{Backend, Commit, Exec, Param};
use crate::{Result, StoreError};

/// A guardian of a child, as the registry links them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guardianship {
    pub child_id: Id,
    pub guardian_id: Id,
    /// HL7 v3 RoleCode: `MTH`, `FTH` or `GUARD`.
    pub relation: String,
    /// When the child (14 to 17) consented to this guardian seeing their record.
    pub consent_at: Option<NaiveDateTime>,
}

/// A satisfaction survey answered after a completed visit.
#[derive(Debug, Clone, PartialEq)]
pub struct Survey {
    pub appointment_id: Id,
    pub resident_id: Id,
    /// The institution visited.
    pub org_id: Id,
    pub answered_at: NaiveDateTime,
    /// When the visit was.
    pub visit_at: NaiveDateTime,
    /// Each item's key and score (1 to 5).
    pub items: Vec<(String, u8)>,
    pub comment: String,
}

/// A resident's request to sign or renew a family-doctor contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractAsk {
    pub id: Id,
    pub resident_id: Id,
    /// The centre whose doctors see it: the current contract's, or the one serving the
    /// resident's street.
    pub centre_org_id: Id,
    /// A renewal of the contract in force (else a first contract).
    pub renew: bool,
    pub note: String,
    pub asked_at: NaiveDateTime,
    /// When a doctor signed, and who.
    pub done_at: Option<NaiveDateTime>,
    pub done_by: Option<String>,
}

const ROWS_AT_ONCE: usize = 500;

#[async_trait]
pub trait PortalStore {
    /// Link guardians to children (a link already there is kept as it is).
    async fn add_guardians(&self, links: &[Guardianship]) -> Result<()>;
    /// The children `guardian` is linked to, youngest link first by child id.
    async fn children_of(&self, guardian: Id) -> Result<Vec<Guardianship>>;
    /// The guardians linked to `child`.
    async fn guardians_of(&self, child: Id) -> Result<Vec<Guardianship>>;
    /// The child's consent to `guardian` seeing their record, given at `at` (`None`:
    /// withdrawn). [`StoreError::NotFound`] if the two are not linked.
    async fn set_proxy_consent(
        &self,
        child: Id,
        guardian: Id,
        at: Option<NaiveDateTime>,
    ) -> Result<()>;
    /// Record a survey; [`StoreError::Exists`] (the appointment's id) if that visit's
    /// survey was answered already.
    async fn record_survey(&self, s: &Survey) -> Result<()>;
    /// The appointments among `ids` whose survey was answered.
    async fn surveyed(&self, ids: &[Id]) -> Result<Vec<Id>>;
    /// Ask for a contract; [`StoreError::Exists`] (the open request's id) if one of the
    /// resident's is still open. The new request's id.
    async fn ask_for_contract(&self, ask: &ContractAsk) -> Result<Id>;
    /// The open requests of a centre, oldest first.
    async fn open_contract_asks(&self, centre: Id) -> Result<Vec<ContractAsk>>;
    /// The resident's latest request, open or done.
    async fn contract_ask_of(&self, resident: Id) -> Result<Option<ContractAsk>>;
    /// A doctor signed for the resident: their open requests are done. How many.
    async fn close_contract_asks(&self, resident: Id, by: &str, at: NaiveDateTime) -> Result<u64>;
    /// The surveys of visits from `since` on, as the indicators count them.
    async fn survey_facts(&self, since: NaiveDate) -> Result<Vec<SurveyFact>>;
}

const ASK_COLUMNS: &str = "id, resident_id, centre_org_id, renew, note, asked_at, done_at, done_by";

fn ask(r: &impl Col) -> Result<ContractAsk> {
    Ok(ContractAsk {
        id: r.i64(0)?,
        resident_id: r.i64(1)?,
        centre_org_id: r.i64(2)?,
        renew: r.i64(3)? != 0,
        note: r.text(4)?,
        asked_at: r.datetime(5)?,
        done_at: r.odatetime(6)?,
        done_by: r.otext(7)?,
    })
}

fn link(r: &impl Col) -> Result<Guardianship> {
    Ok(Guardianship {
        child_id: r.i64(0)?,
        guardian_id: r.i64(1)?,
        relation: r.text(2)?,
        consent_at: r.odatetime(3)?,
    })
}

const LINK_COLUMNS: &str = "g.child_id, g.guardian_id, g.relation, g.consent_at";

#[async_trait]
impl<B: Backend> PortalStore for B {
    async fn add_guardians(&self, links: &[Guardianship]) -> Result<()> {
        for chunk in links.chunks(ROWS_AT_ONCE) {
            let mut sql = String::from(
                "INSERT INTO guardians (child_id, guardian_id, relation, consent_at) VALUES ",
            );
            let mut params = Vec::with_capacity(chunk.len() * 4);
            for (i, g) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                let n = i * 4;
                sql.push_str(&format!("(${}, ${}, ${}, ${})", n + 1, n + 2, n + 3, n + 4));
                params.extend([
                    Param::I64(g.child_id),
                    Param::I64(g.guardian_id),
                    g.relation.as_str().into(),
                    Param::OptDateTime(g.consent_at),
                ]);
            }
            sql.push_str(" ON CONFLICT (child_id, guardian_id) DO NOTHING");
            let tx = self.begin_write().await?;
            tx.execute(&sql, params).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    async fn children_of(&self, guardian: Id) -> Result<Vec<Guardianship>> {
        self.pool()
            .rows(
                &format!(
                    "SELECT {LINK_COLUMNS} FROM guardians g JOIN residents r ON r.id = g.child_id \
                     WHERE g.guardian_id = $1 ORDER BY r.birth_date DESC, g.child_id"
                ),
                vec![Param::I64(guardian)],
            )
            .await?
            .iter()
            .map(link)
            .collect()
    }

    async fn guardians_of(&self, child: Id) -> Result<Vec<Guardianship>> {
        self.pool()
            .rows(
                &format!(
                    "SELECT {LINK_COLUMNS} FROM guardians g JOIN residents r ON r.id = g.guardian_id \
                     WHERE g.child_id = $1 ORDER BY g.guardian_id"
                ),
                vec![Param::I64(child)],
            )
            .await?
            .iter()
            .map(link)
            .collect()
    }

    async fn set_proxy_consent(
        &self,
        child: Id,
        guardian: Id,
        at: Option<NaiveDateTime>,
    ) -> Result<()> {
        let tx = self.begin_write().await?;
        let linked = tx
            .rows(
                "SELECT 1 FROM guardians WHERE child_id = $1 AND guardian_id = $2",
                vec![Param::I64(child), Param::I64(guardian)],
            )
            .await?;
        if linked.is_empty() {
            return Err(StoreError::NotFound(format!(
                "guardian {guardian} of resident {child}"
            )));
        }
        tx.execute(
            "UPDATE guardians SET consent_at = $3 WHERE child_id = $1 AND guardian_id = $2",
            vec![
                Param::I64(child),
                Param::I64(guardian),
                Param::OptDateTime(at),
            ],
        )
        .await?;
        tx.commit().await
    }

    async fn record_survey(&self, s: &Survey) -> Result<()> {
        let tx = self.begin_write().await?;
        let there = tx
            .rows(
                "SELECT 1 FROM surveys WHERE appointment_id = $1",
                vec![Param::I64(s.appointment_id)],
            )
            .await?;
        if !there.is_empty() {
            return Err(StoreError::Exists(s.appointment_id));
        }
        let items = s
            .items
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";");
        let (satisfied, answers) = dhp_core::survey::survey().satisfied(&s.items);
        tx.execute(
            "INSERT INTO surveys (appointment_id, resident_id, org_id, answered_at, visit_at, items, satisfied, answers, comment) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            vec![
                Param::I64(s.appointment_id),
                Param::I64(s.resident_id),
                Param::I64(s.org_id),
                Param::DateTime(s.answered_at),
                Param::DateTime(s.visit_at),
                items.as_str().into(),
                Param::I64(satisfied),
                Param::I64(answers),
                s.comment.as_str().into(),
            ],
        )
        .await?;
        tx.commit().await
    }

    async fn surveyed(&self, ids: &[Id]) -> Result<Vec<Id>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(ROWS_AT_ONCE) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let rows = self
                .pool()
                .rows(
                    &format!(
                        "SELECT appointment_id FROM surveys WHERE appointment_id IN ({})",
                        marks.join(", ")
                    ),
                    chunk.iter().map(|i| Param::I64(*i)).collect(),
                )
                .await?;
            for r in &rows {
                out.push(r.i64(0)?);
            }
        }
        Ok(out)
    }

    async fn ask_for_contract(&self, a: &ContractAsk) -> Result<Id> {
        let tx = self.begin_write().await?;
        let open = tx
            .rows(
                "SELECT id FROM contract_asks WHERE resident_id = $1 AND done_at IS NULL",
                vec![Param::I64(a.resident_id)],
            )
            .await?;
        if let Some(r) = open.first() {
            return Err(StoreError::Exists(r.i64(0)?));
        }
        let id = tx
            .rows("SELECT COALESCE(MAX(id), 0) + 1 FROM contract_asks", vec![])
            .await?
            .first()
            .map(|r| r.i64(0))
            .transpose()?
            .unwrap_or(1);
        tx.execute(
            "INSERT INTO contract_asks (id, resident_id, centre_org_id, renew, note, asked_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            vec![
                Param::I64(id),
                Param::I64(a.resident_id),
                Param::I64(a.centre_org_id),
                Param::I64(i64::from(a.renew)),
                a.note.as_str().into(),
                Param::DateTime(a.asked_at),
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn open_contract_asks(&self, centre: Id) -> Result<Vec<ContractAsk>> {
        self.pool()
            .rows(
                &format!(
                    "SELECT {ASK_COLUMNS} FROM contract_asks \
                     WHERE centre_org_id = $1 AND done_at IS NULL ORDER BY asked_at, id"
                ),
                vec![Param::I64(centre)],
            )
            .await?
            .iter()
            .map(ask)
            .collect()
    }

    async fn contract_ask_of(&self, resident: Id) -> Result<Option<ContractAsk>> {
        self.pool()
            .rows(
                &format!(
                    "SELECT {ASK_COLUMNS} FROM contract_asks WHERE resident_id = $1 \
                     ORDER BY id DESC LIMIT 1"
                ),
                vec![Param::I64(resident)],
            )
            .await?
            .iter()
            .map(ask)
            .next()
            .transpose()
    }

    async fn close_contract_asks(&self, resident: Id, by: &str, at: NaiveDateTime) -> Result<u64> {
        let tx = self.begin_write().await?;
        let open = tx
            .rows(
                "SELECT COUNT(*) FROM contract_asks WHERE resident_id = $1 AND done_at IS NULL",
                vec![Param::I64(resident)],
            )
            .await?
            .first()
            .map(|r| r.i64(0))
            .transpose()?
            .unwrap_or(0);
        tx.execute(
            "UPDATE contract_asks SET done_at = $2, done_by = $3 \
             WHERE resident_id = $1 AND done_at IS NULL",
            vec![Param::I64(resident), Param::DateTime(at), by.into()],
        )
        .await?;
        tx.commit().await?;
        Ok(open as u64)
    }

    async fn survey_facts(&self, since: NaiveDate) -> Result<Vec<SurveyFact>> {
        self.pool()
            .rows(
                "SELECT org_id, visit_at, satisfied, answers FROM surveys WHERE visit_at >= $1 \
                 ORDER BY visit_at, appointment_id",
                vec![Param::DateTime(
                    since.and_hms_opt(0, 0, 0).expect("midnight"),
                )],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(SurveyFact {
                    org_id: r.i64(0)?,
                    day: r.datetime(1)?.date(),
                    satisfied: r.i64(2)?,
                    answers: r.i64(3)?,
                })
            })
            .collect()
    }
}
