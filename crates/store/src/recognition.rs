//! Result recognition (互联互通互认): the external quality assessments institutions hold,
//! a resident's earlier results as the recognition check reads them (the issuing
//! institution is the result's encounter's; an imaging study's is its own), its imaging
//! studies, and test orders with what they were checked
//! against. An order is written only if the result that stood when the clinician was
//! warned still stands inside the order's transaction. The rules (items, windows,
//! exception reasons) are `dhp_core::recognition`'s.

use async_trait::async_trait;
use chrono::{NaiveDate, NaiveDateTime};
use dhp_core::recognition::{table, OrderFact, Prior};
use dhp_core::Id;

use crate::rows::Col;
use crate::shared::{Backend, Commit, Exec, Param};
use crate::{Result, StoreError};

/// An earlier result with what the page shows of it.
#[derive(Debug, Clone, PartialEq)]
pub struct PriorResult {
    pub prior: Prior,
    pub finding: Finding,
}

/// What an earlier result says.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    /// A laboratory value in its unit.
    Value { value: f64, unit: String },
    /// An imaging study: its DICOM modality and the report's findings (the images are
    /// what is recognised; the findings are shown for the clinician to read).
    Study { modality: String, findings: String },
}

impl Finding {
    /// The value and its unit, or the modality and the findings, as one line.
    pub fn text(&self) -> String {
        match self {
            Finding::Value { value, unit } => format!("{} {unit}", (value * 100.0).round() / 100.0),
            Finding::Study { modality, findings } if findings.is_empty() => modality.clone(),
            Finding::Study { modality, findings } => format!("{modality} · {findings}"),
        }
    }
}

/// A test order to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub resident_id: Id,
    /// LOINC code of the test.
    pub code: String,
    pub org_id: Id,
    pub ordered_by: String,
    pub at: NaiveDateTime,
    /// `true`: the standing result is used and no test is done (a repeat avoided).
    pub use_standing: bool,
    pub exception: Option<String>,
    pub note: Option<String>,
}

/// What an order recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    pub id: Id,
    pub resident_id: Id,
    pub code: String,
    pub org_id: Id,
    pub ordered_by: String,
    pub at: NaiveDateTime,
    /// The result that stood: an observation, or an imaging study for an imaging item.
    pub standing_result_id: Option<Id>,
    /// `ordered` or `recognised`.
    pub outcome: String,
    pub exception: Option<String>,
    pub note: Option<String>,
}

/// Recognition figures over a span of days.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecognitionFigures {
    /// Orders that met a standing result.
    pub met_standing: i64,
    /// Of them, repeats avoided (the earlier result used).
    pub recognised: i64,
    /// Repeats ordered anyway, by exception reason.
    pub exceptions: Vec<(String, i64)>,
    /// Recognitions by month (`YYYY-MM`).
    pub by_month: Vec<(String, i64)>,
}

/// Is `code` a recognised imaging item (its results are imaging studies)?
fn imaging(code: &str) -> bool {
    table().item(code).is_some_and(|i| i.category == "imaging")
}

/// The earlier result a row of either query below reads: id, code, when, issuer in
/// columns 0–3, the issuer's assessment in column 6.
fn prior_of(r: &impl Col) -> Result<Prior> {
    Ok(Prior {
        result_id: r.i64(0)?,
        code: r.text(1)?,
        effective: r.datetime(2)?,
        org_id: r.i64(3)?,
        org_assessed: r.bool(6)?,
    })
}

async fn prior_in<E: Exec>(e: &E, resident: Id, code: &str) -> Result<Vec<PriorResult>> {
    if imaging(code) {
        return studies_in(e, resident, code).await;
    }
    let rows = e
        .rows(
            "SELECT o.id, o.code, o.effective, en.org_id, o.value, o.unit, \
               EXISTS (SELECT 1 FROM quality_assessments q \
                 WHERE q.org_id = en.org_id AND q.passed = 1 \
                 AND q.category = $3 AND q.valid_from <= o.effective AND q.valid_until > o.effective) \
             FROM observations o JOIN encounters en ON en.id = o.encounter_id \
             WHERE o.resident_id = $1 AND o.code = $2 ORDER BY o.effective DESC, o.id DESC",
            vec![
                Param::I64(resident),
                Param::from(code),
                Param::Text(
                    table()
                        .item(code)
                        .map_or("laboratory", |i| i.category.as_str())
                        .into(),
                ),
            ],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(PriorResult {
                prior: prior_of(r)?,
                finding: Finding::Value {
                    value: r.f64(4)?,
                    unit: r.text(5)?,
                },
            })
        })
        .collect()
}

/// A resident's imaging studies of one procedure, newest first, as earlier results.
async fn studies_in<E: Exec>(e: &E, resident: Id, code: &str) -> Result<Vec<PriorResult>> {
    let rows = e
        .rows(
            "SELECT m.id, m.code, m.started, m.org_id, m.modality, m.findings, \
               EXISTS (SELECT 1 FROM quality_assessments q \
                 WHERE q.org_id = m.org_id AND q.passed = 1 \
                 AND q.category = 'imaging' AND q.valid_from <= m.started AND q.valid_until > m.started) \
             FROM imaging_studies m \
             WHERE m.resident_id = $1 AND m.code = $2 ORDER BY m.started DESC, m.id DESC",
            vec![Param::I64(resident), Param::from(code)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(PriorResult {
                prior: prior_of(r)?,
                finding: Finding::Study {
                    modality: r.text(4)?,
                    findings: r.text(5)?,
                },
            })
        })
        .collect()
}

/// Result recognition's records.
#[async_trait]
pub trait RecognitionStore: Send + Sync {
    /// Record an institution's external quality assessment of a category of results.
    async fn record_assessment(
        &self,
        org: Id,
        category: &str,
        valid_from: NaiveDate,
        valid_to: NaiveDate,
        passed: bool,
    ) -> Result<()>;
    /// A resident's results of one test, newest first, with whether each issuer held a
    /// passing assessment on the result's day.
    async fn prior_results(&self, resident: Id, code: &str) -> Result<Vec<PriorResult>>;
    /// A resident's imaging studies from every institution, newest first.
    async fn imaging_of(&self, resident: Id) -> Result<Vec<dhp_core::ImagingStudy>>;
    /// The imaging study held under a Study Instance UID, if any.
    async fn study_by_uid(&self, uid: &str) -> Result<Option<Id>>;
    /// Record an order: the check against the standing result is made again in the
    /// transaction; `standing` is the result the clinician was shown (`None`: none).
    /// `Conflict` when what stands changed meanwhile, `Invalid` when the order is not
    /// allowed (the recognition rule's field and why in the message).
    async fn order_test(&self, order: &NewOrder, standing: Option<Id>) -> Result<Id>;
    /// A resident's orders, newest first.
    async fn orders_of(&self, resident: Id) -> Result<Vec<OrderRow>>;
    /// Orders from `since` on that met a recognised result.
    async fn order_facts(&self, since: NaiveDate) -> Result<Vec<OrderFact>>;
    /// Orders from `from` to `to` (days inclusive), counted.
    async fn recognition_figures(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<RecognitionFigures>;
}

#[async_trait]
impl<B: Backend> RecognitionStore for B {
    async fn record_assessment(
        &self,
        org: Id,
        category: &str,
        valid_from: NaiveDate,
        valid_to: NaiveDate,
        passed: bool,
    ) -> Result<()> {
        self.pool()
            .execute(
                "INSERT INTO quality_assessments (org_id, category, valid_from, valid_until, passed) \
                 VALUES ($1, $2, $3, $4, $5)",
                vec![
                    Param::I64(org),
                    Param::from(category),
                    Param::Date(valid_from),
                    Param::Date(valid_to + chrono::Duration::days(1)),
                    Param::I64(i64::from(passed)),
                ],
            )
            .await
    }

    async fn prior_results(&self, resident: Id, code: &str) -> Result<Vec<PriorResult>> {
        prior_in(self.pool(), resident, code).await
    }

    async fn imaging_of(&self, resident: Id) -> Result<Vec<dhp_core::ImagingStudy>> {
        let sql = format!(
            "SELECT {} FROM imaging_studies WHERE resident_id = $1 ORDER BY started DESC, id DESC",
            crate::rows::columns(crate::Table::ImagingStudies)
        );
        let mut batch = crate::Batch::default();
        for r in self.pool().rows(&sql, vec![Param::I64(resident)]).await? {
            crate::rows::push(&mut batch, crate::Table::ImagingStudies, &r)?;
        }
        Ok(batch.imaging_studies)
    }

    async fn study_by_uid(&self, uid: &str) -> Result<Option<Id>> {
        let rows = self
            .pool()
            .rows(
                "SELECT id FROM imaging_studies WHERE uid = $1",
                vec![Param::from(uid)],
            )
            .await?;
        rows.first().map(|r| r.i64(0)).transpose()
    }

    async fn order_test(&self, o: &NewOrder, shown: Option<Id>) -> Result<Id> {
        let t = table();
        let tx = self.begin_write().await?;
        let prior: Vec<Prior> = prior_in(&tx, o.resident_id, &o.code)
            .await?
            .into_iter()
            .map(|p| p.prior)
            .collect();
        let standing = t.standing(&o.code, &prior, o.at.date());
        if standing.map(|p| p.result_id) != shown {
            return Err(StoreError::Conflict(
                "the results on record changed since the check; check again".into(),
            ));
        }
        let outcome = if o.use_standing {
            if standing.is_none() {
                return Err(StoreError::Invalid(
                    "use_standing: no recognised result stands for this test".into(),
                ));
            }
            "recognised"
        } else {
            t.check_order(standing, o.exception.as_deref(), o.note.as_deref())
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
            "ordered"
        };
        let id = crate::resources::reserve_ids(&tx, "ServiceRequest", 1).await?;
        tx.execute(
            "INSERT INTO test_orders (id, resident_id, code, org_id, ordered_by, at, \
             standing_result_id, standing_study_id, outcome, exception, note) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            vec![
                Param::I64(id),
                Param::I64(o.resident_id),
                Param::Text(o.code.clone()),
                Param::I64(o.org_id),
                Param::Text(o.ordered_by.clone()),
                Param::DateTime(o.at),
                // The standing result is a laboratory result or an imaging study.
                Param::OptI64(standing.filter(|_| !imaging(&o.code)).map(|p| p.result_id)),
                Param::OptI64(standing.filter(|_| imaging(&o.code)).map(|p| p.result_id)),
                Param::from(outcome),
                Param::OptText(if o.use_standing {
                    None
                } else {
                    o.exception.clone()
                }),
                Param::OptText(
                    o.note
                        .as_deref()
                        .map(str::trim)
                        .filter(|n| !n.is_empty())
                        .map(str::to_string),
                ),
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn order_facts(&self, since: NaiveDate) -> Result<Vec<OrderFact>> {
        self.pool()
            .rows(
                "SELECT org_id, at, outcome FROM test_orders \
                 WHERE at >= $1 AND (standing_result_id IS NOT NULL OR standing_study_id IS NOT NULL)",
                vec![Param::DateTime(
                    since.and_hms_opt(0, 0, 0).unwrap_or_default(),
                )],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(OrderFact {
                    org_id: r.i64(0)?,
                    day: r.datetime(1)?.date(),
                    recognised: r.text(2)? == "recognised",
                })
            })
            .collect()
    }

    async fn orders_of(&self, resident: Id) -> Result<Vec<OrderRow>> {
        self.pool()
            .rows(
                "SELECT id, resident_id, code, org_id, ordered_by, at, \
                 COALESCE(standing_result_id, standing_study_id), \
                 outcome, exception, note FROM test_orders WHERE resident_id = $1 \
                 ORDER BY at DESC, id DESC",
                vec![Param::I64(resident)],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(OrderRow {
                    id: r.i64(0)?,
                    resident_id: r.i64(1)?,
                    code: r.text(2)?,
                    org_id: r.i64(3)?,
                    ordered_by: r.text(4)?,
                    at: r.datetime(5)?,
                    standing_result_id: r.oi64(6)?,
                    outcome: r.text(7)?,
                    exception: r.otext(8)?,
                    note: r.otext(9)?,
                })
            })
            .collect()
    }

    async fn recognition_figures(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<RecognitionFigures> {
        let start = from.and_hms_opt(0, 0, 0).unwrap_or_default();
        let end = (to + chrono::Duration::days(1))
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default();
        let span = || vec![Param::DateTime(start), Param::DateTime(end)];
        let rows = self
            .pool()
            .rows(
                "SELECT outcome, exception, at FROM test_orders \
                 WHERE at >= $1 AND at < $2 AND (standing_result_id IS NOT NULL OR standing_study_id IS NOT NULL)",
                span(),
            )
            .await?;
        let mut f = RecognitionFigures::default();
        let mut exceptions = std::collections::BTreeMap::<String, i64>::new();
        let mut months = std::collections::BTreeMap::<String, i64>::new();
        for r in &rows {
            f.met_standing += 1;
            if r.text(0)? == "recognised" {
                f.recognised += 1;
                *months
                    .entry(r.datetime(2)?.format("%Y-%m").to_string())
                    .or_default() += 1;
            } else if let Some(e) = r.otext(1)? {
                *exceptions.entry(e).or_default() += 1;
            }
        }
        f.exceptions = exceptions.into_iter().collect();
        f.by_month = months.into_iter().collect();
        Ok(f)
    }
}
