//! Two-way referral (双向转诊): the request with its task's status, and every step the
//! task took (who, when, why). A referral made with a reserved slot books it in the
//! same transaction (both or neither); a step moves the status only from the one the
//! caller read (`UPDATE … WHERE status = from`), so two clinicians acting at once
//! cannot both move it. The workflow's rules are `dhp_core::referral`'s.

use async_trait::async_trait;
use chrono::{NaiveDate, NaiveDateTime};
use dhp_core::referral::{next, Act, Direction, NewReferral, Priority, ReferralFact, TaskStatus};
use dhp_core::Id;

use crate::booking::{book_in, Booking};
use crate::rows::Col;
use crate::shared::{Backend, Commit, Exec, Param};
use crate::{Result, StoreError};

/// A referral as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralRow {
    pub id: Id,
    pub resident_id: Id,
    pub direction: Direction,
    pub from_org: Id,
    pub to_org: Id,
    /// The account that referred.
    pub requester: String,
    pub reason: String,
    pub priority: Priority,
    pub diagnosis: Option<String>,
    pub appointment_id: Option<Id>,
    pub summary: Option<String>,
    pub follow_up: Option<NaiveDate>,
    pub status: TaskStatus,
    pub created: NaiveDateTime,
    pub updated: NaiveDateTime,
}

/// One step of a referral's task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralStep {
    pub status: TaskStatus,
    pub at: NaiveDateTime,
    pub by_user: String,
    pub reason: Option<String>,
}

/// Which referrals of an organisation to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralFilter {
    pub org: Id,
    /// `true`: those sent to the organisation (its inbox); `false`: those it sent.
    pub received: bool,
    pub direction: Option<Direction>,
    /// Only those not yet final.
    pub open_only: bool,
}

const COLUMNS: &str = "id, resident_id, direction, from_org, to_org, requester, reason, \
    priority, diagnosis, appointment_id, summary, follow_up, status, created, updated";

fn row<R: Col>(r: &R) -> Result<ReferralRow> {
    let bad = |what: &str, v: String| StoreError::Corrupt(format!("referral {what} {v:?}"));
    let direction = r.text(2)?;
    let priority = r.text(7)?;
    let status = r.text(12)?;
    Ok(ReferralRow {
        id: r.i64(0)?,
        resident_id: r.i64(1)?,
        direction: Direction::parse(&direction)
            .ok_or_else(|| bad("direction", direction.clone()))?,
        from_org: r.i64(3)?,
        to_org: r.i64(4)?,
        requester: r.text(5)?,
        reason: r.text(6)?,
        priority: Priority::parse(&priority).ok_or_else(|| bad("priority", priority.clone()))?,
        diagnosis: r.otext(8)?,
        appointment_id: r.oi64(9)?,
        summary: r.otext(10)?,
        follow_up: r.odate(11)?,
        status: TaskStatus::parse(&status).ok_or_else(|| bad("status", status.clone()))?,
        created: r.datetime(13)?,
        updated: r.datetime(14)?,
    })
}

/// The statuses that are final, as SQL parameters (from the workflow's rules).
fn final_statuses() -> Vec<Param> {
    TaskStatus::ALL
        .into_iter()
        .filter(|s| s.is_final())
        .map(|s| Param::Text(s.as_str().into()))
        .collect()
}

async fn add_step<E: Exec>(
    tx: &E,
    id: Id,
    status: TaskStatus,
    at: NaiveDateTime,
    by: &str,
    reason: Option<&str>,
) -> Result<()> {
    tx.execute(
        "INSERT INTO referral_steps (referral_id, seq, status, at, by_user, reason) \
         SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5 FROM referral_steps WHERE referral_id = $1",
        vec![
            Param::I64(id),
            Param::Text(status.as_str().into()),
            Param::DateTime(at),
            Param::from(by),
            Param::OptText(reason.map(str::to_string)),
        ],
    )
    .await
}

/// Referrals and their tasks.
/// Which referrals to find (the FHIR `Task` search), within `scope`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralSearch {
    pub ids: Vec<Id>,
    pub residents: Vec<Id>,
    /// The organisation referred to (`Task.owner`).
    pub owners: Vec<Id>,
    /// The referring organisation (`Task.requester`).
    pub requesters: Vec<Id>,
    pub statuses: Vec<TaskStatus>,
    /// On the referral's creation.
    pub authored: Vec<dhp_core::query::DateCond>,
    /// On the referral's last step (district-local, as `updated` is kept).
    pub updated: Vec<dhp_core::query::DateCond>,
    pub scope: dhp_core::access::Scope,
    pub today: NaiveDate,
    pub limit: i64,
    pub offset: i64,
}

/// A referral found by [`ReferralStore::search_referrals`], with its version (the
/// number of steps it has taken, its creation the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundReferral {
    pub referral: ReferralRow,
    pub version: i64,
    /// The reason given with its latest step (a rejection's, a cancellation's).
    pub last_reason: Option<String>,
}

#[async_trait]
pub trait ReferralStore: Send + Sync {
    /// Referrals by the FHIR search's filter within its scope, newest first, with the
    /// total.
    async fn search_referrals(&self, f: &ReferralSearch) -> Result<(Vec<FoundReferral>, i64)>;
    /// Record a referral (status `requested`) by account `by`, booking `booking` for the
    /// resident in the same transaction when given; the new referral's id.
    async fn refer(
        &self,
        referral: &NewReferral,
        by: &str,
        at: NaiveDateTime,
        booking: Option<&Booking>,
    ) -> Result<Id>;
    /// One referral and its steps, oldest first.
    async fn referral(&self, id: Id) -> Result<(ReferralRow, Vec<ReferralStep>)>;
    /// Take `act` on referral `id` whose status the caller read as `from`; `Conflict`
    /// when it moved meanwhile or the workflow forbids the step.
    async fn referral_step(
        &self,
        id: Id,
        from: TaskStatus,
        act: Act,
        by: &str,
        reason: Option<&str>,
        at: NaiveDateTime,
    ) -> Result<TaskStatus>;
    /// An organisation's referrals, newest first: one page and the total.
    async fn referrals(
        &self,
        filter: &ReferralFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<ReferralRow>, i64)>;
    /// One resident's referrals, newest first.
    async fn referrals_of(&self, resident: Id) -> Result<Vec<ReferralRow>>;
    /// Referrals made from `since` on, as the indicators count them.
    async fn referral_facts(&self, since: NaiveDate) -> Result<Vec<ReferralFact>>;
}

#[async_trait]
impl<B: Backend> ReferralStore for B {
    async fn search_referrals(&self, f: &ReferralSearch) -> Result<(Vec<FoundReferral>, i64)> {
        use dhp_core::query::DateCond;
        let mut params: Vec<Param> = Vec::new();
        let bind = |p: Param, params: &mut Vec<Param>| {
            params.push(p);
            format!("${}", params.len())
        };
        let mut cond = Vec::new();
        for (col, ids) in [
            ("f.id", &f.ids),
            ("f.resident_id", &f.residents),
            ("f.to_org", &f.owners),
            ("f.from_org", &f.requesters),
        ] {
            if !ids.is_empty() {
                let marks: Vec<String> = ids
                    .iter()
                    .map(|i| bind(Param::I64(*i), &mut params))
                    .collect();
                cond.push(format!("{col} IN ({})", marks.join(", ")));
            }
        }
        if !f.statuses.is_empty() {
            let marks: Vec<String> = f
                .statuses
                .iter()
                .map(|s| bind(Param::Text(s.as_str().into()), &mut params))
                .collect();
            cond.push(format!("f.status IN ({})", marks.join(", ")));
        }
        for (col, conds) in [("f.created", &f.authored), ("f.updated", &f.updated)] {
            for c in conds {
                cond.push(match c {
                    DateCond::Ge(t) => {
                        format!("{col} >= {}", bind(Param::DateTime(*t), &mut params))
                    }
                    DateCond::Lt(t) => {
                        format!("{col} < {}", bind(Param::DateTime(*t), &mut params))
                    }
                    DateCond::Outside(a, b) => format!(
                        "({col} < {} OR {col} >= {})",
                        bind(Param::DateTime(*a), &mut params),
                        bind(Param::DateTime(*b), &mut params)
                    ),
                });
            }
        }
        if let Some(c) =
            crate::shared::scope_clause(&f.scope, f.today, &mut |p| bind(p, &mut params))
        {
            cond.push(c);
        }
        let w = if cond.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", cond.join(" AND "))
        };
        let from = "FROM referrals f JOIN residents r ON r.id = f.resident_id";
        let total = self
            .pool()
            .rows(&format!("SELECT COUNT(*) {from} {w}"), params.clone())
            .await?
            .first()
            .map(|r| r.i64(0))
            .transpose()?
            .unwrap_or(0);
        let columns: Vec<String> = COLUMNS.split(", ").map(|c| format!("f.{c}")).collect();
        let l = bind(Param::I64(f.limit), &mut params);
        let o = bind(Param::I64(f.offset), &mut params);
        let rows = self
            .pool()
            .rows(
                &format!(
                    "SELECT {}, \
                       (SELECT COUNT(*) FROM referral_steps s WHERE s.referral_id = f.id), \
                       (SELECT s.reason FROM referral_steps s WHERE s.referral_id = f.id \
                        ORDER BY s.seq DESC LIMIT 1) \
                     {from} {w} ORDER BY f.created DESC, f.id DESC LIMIT {l} OFFSET {o}",
                    columns.join(", ")
                ),
                params,
            )
            .await?;
        let found = rows
            .iter()
            .map(|r| {
                Ok(FoundReferral {
                    referral: row(r)?,
                    version: r.i64(15)?,
                    last_reason: r.otext(16)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok((found, total))
    }

    async fn refer(
        &self,
        r: &NewReferral,
        by: &str,
        at: NaiveDateTime,
        booking: Option<&Booking>,
    ) -> Result<Id> {
        let tx = self.begin_write().await?;
        if let Some(b) = booking {
            if b.resident_id != r.resident_id {
                return Err(StoreError::Invalid(
                    "the booking is another resident's".into(),
                ));
            }
            book_in(&tx, self.name() == "postgres", b).await?;
        }
        let id = crate::resources::reserve_ids(&tx, "ServiceRequest", 1).await?;
        let status = TaskStatus::Requested;
        tx.execute(
            &format!(
                "INSERT INTO referrals ({COLUMNS}) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)"
            ),
            vec![
                Param::I64(id),
                Param::I64(r.resident_id),
                Param::Text(r.direction.as_str().into()),
                Param::I64(r.from_org),
                Param::I64(r.to_org),
                Param::from(by),
                Param::Text(r.reason.trim().into()),
                Param::Text(r.priority.as_str().into()),
                Param::OptText(r.diagnosis.clone()),
                Param::OptI64(booking.map(|b| b.appointment_id).or(r.appointment_id)),
                Param::OptText(r.summary.as_deref().map(|s| s.trim().to_string())),
                Param::OptDate(r.follow_up),
                Param::Text(status.as_str().into()),
                Param::DateTime(at),
            ],
        )
        .await?;
        add_step(&tx, id, status, at, by, None).await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn referral(&self, id: Id) -> Result<(ReferralRow, Vec<ReferralStep>)> {
        let rows = self
            .pool()
            .rows(
                &format!("SELECT {COLUMNS} FROM referrals WHERE id = $1"),
                vec![Param::I64(id)],
            )
            .await?;
        let referral = rows
            .first()
            .map(row)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("referral {id}")))?;
        let steps = self
            .pool()
            .rows(
                "SELECT status, at, by_user, reason FROM referral_steps \
                 WHERE referral_id = $1 ORDER BY seq",
                vec![Param::I64(id)],
            )
            .await?
            .iter()
            .map(|r| {
                let s = r.text(0)?;
                Ok(ReferralStep {
                    status: TaskStatus::parse(&s)
                        .ok_or_else(|| StoreError::Corrupt(format!("referral step {s:?}")))?,
                    at: r.datetime(1)?,
                    by_user: r.text(2)?,
                    reason: r.otext(3)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok((referral, steps))
    }

    async fn referral_step(
        &self,
        id: Id,
        from: TaskStatus,
        act: Act,
        by: &str,
        reason: Option<&str>,
        at: NaiveDateTime,
    ) -> Result<TaskStatus> {
        let to = next(from, act).map_err(|e| StoreError::Conflict(e.why))?;
        let tx = self.begin_write().await?;
        let moved = tx
            .rows(
                "UPDATE referrals SET status = $1, updated = $2 \
                 WHERE id = $3 AND status = $4 RETURNING id",
                vec![
                    Param::Text(to.as_str().into()),
                    Param::DateTime(at),
                    Param::I64(id),
                    Param::Text(from.as_str().into()),
                ],
            )
            .await?;
        if moved.is_empty() {
            return Err(StoreError::Conflict(format!(
                "referral {id} is no longer {}",
                from.as_str()
            )));
        }
        add_step(&tx, id, to, at, by, reason.map(str::trim)).await?;
        tx.commit().await?;
        Ok(to)
    }

    async fn referrals(
        &self,
        f: &ReferralFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<ReferralRow>, i64)> {
        let mut params = vec![Param::I64(f.org)];
        let mut cond = vec![format!(
            "{} = $1",
            if f.received { "to_org" } else { "from_org" }
        )];
        if let Some(d) = f.direction {
            params.push(Param::Text(d.as_str().into()));
            cond.push(format!("direction = ${}", params.len()));
        }
        if f.open_only {
            let finals = final_statuses();
            let marks = crate::shared::placeholders(params.len(), finals.len(), true);
            params.extend(finals);
            cond.push(format!("status NOT IN {marks}"));
        }
        let filter = cond.join(" AND ");
        let total = self
            .pool()
            .rows(
                &format!("SELECT COUNT(*) FROM referrals WHERE {filter}"),
                params.clone(),
            )
            .await?
            .first()
            .map(|r| r.i64(0))
            .transpose()?
            .unwrap_or(0);
        let n = params.len();
        params.push(Param::I64(limit));
        params.push(Param::I64(offset));
        let rows = self
            .pool()
            .rows(
                &format!(
                    "SELECT {COLUMNS} FROM referrals WHERE {filter} \
                     ORDER BY created DESC, id DESC LIMIT ${} OFFSET ${}",
                    n + 1,
                    n + 2
                ),
                params,
            )
            .await?;
        Ok((rows.iter().map(row).collect::<Result<_>>()?, total))
    }

    async fn referrals_of(&self, resident: Id) -> Result<Vec<ReferralRow>> {
        self.pool()
            .rows(
                &format!(
                    "SELECT {COLUMNS} FROM referrals WHERE resident_id = $1 \
                     ORDER BY created DESC, id DESC"
                ),
                vec![Param::I64(resident)],
            )
            .await?
            .iter()
            .map(row)
            .collect()
    }

    async fn referral_facts(&self, since: NaiveDate) -> Result<Vec<ReferralFact>> {
        let rows = self
            .pool()
            .rows(
                "SELECT r.direction, r.from_org, r.to_org, r.created, \
                   (SELECT MIN(s.at) FROM referral_steps s WHERE s.referral_id = r.id AND s.status = $2), \
                   (SELECT COUNT(*) FROM referral_steps s WHERE s.referral_id = r.id AND s.status = $3) \
                 FROM referrals r WHERE r.created >= $1",
                vec![
                    Param::DateTime(since.and_hms_opt(0, 0, 0).unwrap_or_default()),
                    Param::Text(TaskStatus::Accepted.as_str().into()),
                    Param::Text(TaskStatus::Rejected.as_str().into()),
                ],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let d = r.text(0)?;
                Ok(ReferralFact {
                    direction: Direction::parse(&d)
                        .ok_or_else(|| StoreError::Corrupt(format!("referral direction {d:?}")))?,
                    from_org: r.i64(1)?,
                    to_org: r.i64(2)?,
                    created: r.datetime(3)?,
                    accepted_at: r.odatetime(4)?,
                    rejected: r.i64(5)? > 0,
                })
            })
            .collect()
    }
}
