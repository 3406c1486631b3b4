//! Surveillance tables, written once over [`Exec`] for both backends: case reports,
//! sentinel counts, signals with their verification history, injected outbreaks.

use async_trait::async_trait;
use chrono::{NaiveDate, NaiveDateTime};
use dhp_core::surveillance::{
    CaseCount, CaseReport, CaseStatus, DateBasis, InjectedOutbreak, SentinelReport, Signal,
    SignalEvent, SignalStatus,
};
use dhp_core::Id;

use crate::rows::Col;
use crate::shared::Backend;
use crate::shared::{insert_chunked, values_sql, Commit, Exec, Param};
use crate::{Result, StoreError};

pub(crate) async fn insert_case_reports<E: Exec>(
    e: &E,
    reports: &[CaseReport],
    source: &str,
) -> Result<()> {
    insert_chunked(
        e,
        "INSERT INTO case_reports (id, disease, resident_id, reporting_org, street, status, onset_date, diagnosed_at, report_day, reported_at, source)",
        "",
        11,
        reports,
        |r, p| {
            p.extend([
                Param::I64(r.id),
                Param::Text(r.disease.clone()),
                Param::OptI64(r.resident_id),
                Param::Text(r.reporting_org.clone()),
                Param::Text(r.street.clone()),
                Param::from(r.status.code()),
                Param::Date(r.onset_date),
                Param::DateTime(r.diagnosed_at),
                Param::Date(r.reported_at.date()),
                Param::DateTime(r.reported_at),
                Param::from(source),
            ])
        },
    )
    .await
}

const CASE_COLUMNS: &str =
    "id, disease, resident_id, reporting_org, street, status, onset_date, diagnosed_at, reported_at";

fn case_report(r: &impl Col) -> Result<CaseReport> {
    let status = r.text(5)?;
    Ok(CaseReport {
        id: r.i64(0)?,
        disease: r.text(1)?,
        resident_id: r.oi64(2)?,
        reporting_org: r.text(3)?,
        street: r.text(4)?,
        status: CaseStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("case report status {status}")))?,
        onset_date: r.date(6)?,
        diagnosed_at: r.datetime(7)?,
        reported_at: r.datetime(8)?,
    })
}

/// Case reports received on days `from..=to`, newest first, at most `limit`.
pub(crate) async fn case_reports<E: Exec>(
    e: &E,
    from: NaiveDate,
    to: NaiveDate,
    limit: i64,
) -> Result<Vec<CaseReport>> {
    let sql = format!(
        "SELECT {CASE_COLUMNS} FROM case_reports WHERE report_day >= $1 AND report_day <= $2 \
         ORDER BY reported_at DESC, id DESC LIMIT $3"
    );
    e.rows(
        &sql,
        vec![Param::Date(from), Param::Date(to), Param::I64(limit)],
    )
    .await?
    .iter()
    .map(case_report)
    .collect()
}

pub(crate) async fn case_report_by_id<E: Exec>(e: &E, id: Id) -> Result<CaseReport> {
    let sql = format!("SELECT {CASE_COLUMNS} FROM case_reports WHERE id = $1");
    let rows = e.rows(&sql, vec![Param::I64(id)]).await?;
    rows.first()
        .map(case_report)
        .transpose()?
        .ok_or_else(|| StoreError::NotFound(format!("case report {id}")))
}

/// Cases per disease, street and day on `basis` dates in `from..=to`; excluded cases
/// do not count.
pub(crate) async fn case_counts<E: Exec>(
    e: &E,
    basis: DateBasis,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<CaseCount>> {
    let day = match basis {
        DateBasis::Onset => "onset_date",
        DateBasis::Report => "report_day",
    };
    let sql = format!(
        "SELECT disease, street, {day}, COUNT(*) FROM case_reports \
         WHERE status <> 'excluded' AND {day} >= $1 AND {day} <= $2 \
         GROUP BY disease, street, {day}"
    );
    e.rows(&sql, vec![Param::Date(from), Param::Date(to)])
        .await?
        .iter()
        .map(|r| {
            Ok(CaseCount {
                disease: r.text(0)?,
                street: r.text(1)?,
                day: r.date(2)?,
                count: r.i64(3)?,
            })
        })
        .collect()
}

/// Writes syndromic counts; a report for a site, day and syndrome already held
/// replaces it (a corrected count).
pub(crate) async fn put_sentinel_reports<E: Exec>(
    e: &E,
    reports: &[SentinelReport],
    received_at: NaiveDateTime,
) -> Result<()> {
    insert_chunked(
        e,
        "INSERT INTO sentinel_reports (site, day, syndrome, count, received_at)",
        " ON CONFLICT (site, day, syndrome) DO UPDATE SET count = excluded.count, received_at = excluded.received_at",
        5,
        reports,
        |r, p| {
            p.extend([
                Param::Text(r.site.clone()),
                Param::Date(r.date),
                Param::Text(r.syndrome.clone()),
                Param::I64(r.count),
                Param::DateTime(received_at),
            ])
        },
    )
    .await
}

pub(crate) async fn sentinel_reports<E: Exec>(
    e: &E,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<SentinelReport>> {
    e.rows(
        "SELECT site, day, syndrome, count FROM sentinel_reports WHERE day >= $1 AND day <= $2 \
         ORDER BY site, syndrome, day",
        vec![Param::Date(from), Param::Date(to)],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(SentinelReport {
            site: r.text(0)?,
            date: r.date(1)?,
            syndrome: r.text(2)?,
            count: r.i64(3)?,
        })
    })
    .collect()
}

/// Each site's latest reported day on or before `today`.
pub(crate) async fn sentinel_last_reports<E: Exec>(
    e: &E,
    today: NaiveDate,
) -> Result<Vec<(String, NaiveDate)>> {
    e.rows(
        "SELECT site, MAX(day) FROM sentinel_reports WHERE day <= $1 GROUP BY site",
        vec![Param::Date(today)],
    )
    .await?
    .iter()
    .map(|r| Ok((r.text(0)?, r.date(1)?)))
    .collect()
}

const SIGNAL_COLUMNS: &str = "id, disease, area, algorithms, first_day, last_day, alarm_days, observed, expected, statistic, threshold, counts, status, raised_at, verifying_at, closed_at, note";

fn signal(r: &impl Col) -> Result<Signal> {
    let status = r.text(12)?;
    let counts = r.text(11)?;
    Ok(Signal {
        id: r.i64(0)?,
        disease: r.text(1)?,
        area: r.text(2)?,
        algorithms: r.text(3)?,
        first_day: r.date(4)?,
        last_day: r.date(5)?,
        alarm_days: r.i64(6)?,
        observed: r.f64(7)?,
        expected: r.f64(8)?,
        statistic: r.f64(9)?,
        threshold: r.f64(10)?,
        counts: counts
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse()
                    .map_err(|_| StoreError::Corrupt(format!("signal counts {counts}")))
            })
            .collect::<Result<_>>()?,
        status: SignalStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("signal status {status}")))?,
        raised_at: r.datetime(13)?,
        verifying_at: r.odatetime(14)?,
        closed_at: r.odatetime(15)?,
        note: r.text(16)?,
    })
}

/// Signals whose last alarm day is on or after `since`, newest first.
pub(crate) async fn signals<E: Exec>(e: &E, since: NaiveDate) -> Result<Vec<Signal>> {
    let sql = format!(
        "SELECT {SIGNAL_COLUMNS} FROM signals WHERE last_day >= $1 ORDER BY last_day DESC, id DESC"
    );
    e.rows(&sql, vec![Param::Date(since)])
        .await?
        .iter()
        .map(signal)
        .collect()
}

pub(crate) async fn signal_by_id<E: Exec>(e: &E, id: Id) -> Result<Signal> {
    let sql = format!("SELECT {SIGNAL_COLUMNS} FROM signals WHERE id = $1");
    let rows = e.rows(&sql, vec![Param::I64(id)]).await?;
    rows.first()
        .map(signal)
        .transpose()?
        .ok_or_else(|| StoreError::NotFound(format!("signal {id}")))
}

fn signal_params(s: &Signal) -> Vec<Param> {
    let counts: Vec<String> = s.counts.iter().map(|c| c.to_string()).collect();
    vec![
        Param::I64(s.id),
        Param::Text(s.disease.clone()),
        Param::Text(s.area.clone()),
        Param::Text(s.algorithms.clone()),
        Param::Date(s.first_day),
        Param::Date(s.last_day),
        Param::I64(s.alarm_days),
        Param::F64(finite(s.observed)),
        Param::F64(finite(s.expected)),
        Param::F64(finite(s.statistic)),
        Param::F64(finite(s.threshold)),
        Param::Text(counts.join(",")),
        Param::from(s.status.code()),
        Param::DateTime(s.raised_at),
        Param::OptDateTime(s.verifying_at),
        Param::OptDateTime(s.closed_at),
        Param::Text(s.note.clone()),
    ]
}

/// NaN and infinities are stored as the largest finite values (SQLite keeps no NaN).
fn finite(v: f64) -> f64 {
    if v.is_nan() {
        0.0
    } else {
        v.clamp(f64::MIN, f64::MAX)
    }
}

/// Writes new signals (id 0 gets `next_id`, `next_id + 1`, …) and the run's updates to
/// existing ones (their figures and days; status and verification are left alone).
pub(crate) async fn save_signals<E: Exec>(
    e: &E,
    signals: &mut [Signal],
    mut next_id: Id,
) -> Result<()> {
    let insert = format!("INSERT INTO signals ({SIGNAL_COLUMNS})");
    let update =
        "UPDATE signals SET algorithms = $2, first_day = $3, last_day = $4, alarm_days = $5, \
         observed = $6, expected = $7, statistic = $8, threshold = $9, counts = $10 WHERE id = $1";
    for s in signals.iter_mut() {
        if s.id == 0 {
            s.id = next_id;
            next_id += 1;
            e.execute(&values_sql(&insert, 17, 1), signal_params(s))
                .await?;
        } else {
            let p = signal_params(s);
            let pick = |i: usize| p[i].clone();
            e.execute(
                update,
                vec![
                    pick(0),
                    pick(3),
                    pick(4),
                    pick(5),
                    pick(6),
                    pick(7),
                    pick(8),
                    pick(9),
                    pick(10),
                    pick(11),
                ],
            )
            .await?;
        }
    }
    Ok(())
}

/// Moves a signal from `from` to `to` if nobody moved it meanwhile, and records the
/// step. `Conflict` when its status is no longer `from`.
pub(crate) async fn move_signal<E: Exec>(e: &E, s: &Signal, event: &SignalEvent) -> Result<()> {
    let verifying_at = if event.to == SignalStatus::Verifying {
        Some(event.at)
    } else {
        s.verifying_at
    };
    let closed_at = (!event.to.is_open()).then_some(event.at);
    let moved = e
        .rows(
            "UPDATE signals SET status = $1, verifying_at = $2, closed_at = $3, note = $4 \
             WHERE id = $5 AND status = $6 RETURNING id",
            vec![
                Param::from(event.to.code()),
                Param::OptDateTime(verifying_at),
                Param::OptDateTime(closed_at),
                Param::Text(event.note.clone()),
                Param::I64(s.id),
                Param::from(event.from.code()),
            ],
        )
        .await?;
    if moved.is_empty() {
        return Err(StoreError::Conflict(format!(
            "signal {} is no longer {}; reload it",
            s.id,
            event.from.code()
        )));
    }
    e.execute(
        "INSERT INTO signal_events (signal_id, at, username, from_status, to_status, note) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        vec![
            Param::I64(s.id),
            Param::DateTime(event.at),
            Param::Text(event.username.clone()),
            Param::from(event.from.code()),
            Param::from(event.to.code()),
            Param::Text(event.note.clone()),
        ],
    )
    .await
}

pub(crate) async fn signal_events<E: Exec>(e: &E, id: Id) -> Result<Vec<SignalEvent>> {
    e.rows(
        "SELECT signal_id, at, username, from_status, to_status, note FROM signal_events \
         WHERE signal_id = $1 ORDER BY at",
        vec![Param::I64(id)],
    )
    .await?
    .iter()
    .map(|r| {
        let status = |i: usize| -> Result<SignalStatus> {
            let t = r.text(i)?;
            SignalStatus::parse(&t).ok_or_else(|| StoreError::Corrupt(format!("signal status {t}")))
        };
        Ok(SignalEvent {
            signal_id: r.i64(0)?,
            at: r.datetime(1)?,
            username: r.text(2)?,
            from: status(3)?,
            to: status(4)?,
            note: r.text(5)?,
        })
    })
    .collect()
}

pub(crate) async fn insert_outbreaks<E: Exec>(e: &E, o: &[InjectedOutbreak]) -> Result<()> {
    insert_chunked(
        e,
        "INSERT INTO injected_outbreaks (id, disease, street, start_day, days, cases, shape)",
        "",
        7,
        o,
        |o, p| {
            p.extend([
                Param::I64(o.id),
                Param::Text(o.disease.clone()),
                Param::Text(o.street.clone()),
                Param::Date(o.start_day),
                Param::I64(o.days),
                Param::I64(o.cases),
                Param::Text(o.shape.clone()),
            ])
        },
    )
    .await
}

pub(crate) async fn outbreaks<E: Exec>(e: &E) -> Result<Vec<InjectedOutbreak>> {
    e.rows(
        "SELECT id, disease, street, start_day, days, cases, shape FROM injected_outbreaks ORDER BY start_day, id",
        vec![],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(InjectedOutbreak {
            id: r.i64(0)?,
            disease: r.text(1)?,
            street: r.text(2)?,
            start_day: r.date(3)?,
            days: r.i64(4)?,
            cases: r.i64(5)?,
            shape: r.text(6)?,
        })
    })
    .collect()
}

/// Surveillance: case reports and their counts, sentinel reports, signals and their steps, and the outbreaks injected for evaluation.
#[async_trait]
pub trait SurveillanceStore: Send + Sync {
    /// Stores case reports as given (ids reserved by the caller).
    async fn insert_case_reports(
        &self,
        reports: &[dhp_core::surveillance::CaseReport],
        source: &str,
    ) -> Result<()>;
    /// Case reports received on `from..=to`, newest first.
    async fn case_reports(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        limit: i64,
    ) -> Result<Vec<dhp_core::surveillance::CaseReport>>;
    async fn case_report(&self, id: Id) -> Result<dhp_core::surveillance::CaseReport>;
    /// Cases per disease, street and day (excluded cases left out).
    async fn case_counts(
        &self,
        basis: dhp_core::surveillance::DateBasis,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<dhp_core::surveillance::CaseCount>>;
    async fn put_sentinel_reports(
        &self,
        reports: &[dhp_core::surveillance::SentinelReport],
        received_at: chrono::NaiveDateTime,
    ) -> Result<()>;
    async fn sentinel_reports(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<dhp_core::surveillance::SentinelReport>>;
    async fn sentinel_last_reports(&self, today: NaiveDate) -> Result<Vec<(String, NaiveDate)>>;
    /// Signals whose last alarm day is on or after `since`, newest first.
    async fn signals(&self, since: NaiveDate) -> Result<Vec<dhp_core::surveillance::Signal>>;
    async fn signal(&self, id: Id) -> Result<dhp_core::surveillance::Signal>;
    /// Inserts new signals (id 0; ids assigned in place) and updates the others' figures.
    async fn save_signals(&self, signals: &mut [dhp_core::surveillance::Signal]) -> Result<()>;
    /// One verification step, guarded on the signal still being in `event.from`.
    async fn move_signal(
        &self,
        signal: &dhp_core::surveillance::Signal,
        event: &dhp_core::surveillance::SignalEvent,
    ) -> Result<()>;
    async fn signal_events(&self, id: Id) -> Result<Vec<dhp_core::surveillance::SignalEvent>>;
    async fn insert_outbreaks(
        &self,
        outbreaks: &[dhp_core::surveillance::InjectedOutbreak],
    ) -> Result<()>;
    async fn outbreaks(&self) -> Result<Vec<dhp_core::surveillance::InjectedOutbreak>>;
}

#[async_trait]
impl<B: Backend> SurveillanceStore for B {
    async fn insert_case_reports(
        &self,
        reports: &[dhp_core::surveillance::CaseReport],
        source: &str,
    ) -> Result<()> {
        // The reports and what they add to reporting timeliness, in one transaction.
        let tx = self.begin_write().await?;
        crate::surveillance::insert_case_reports(&tx, reports, source).await?;
        crate::indicators::add_events(&tx, |defs, units, periods, out| {
            for r in reports {
                let district = units.district_code_of(&r.street);
                dhp_core::indicators::rules::case_report_tallies(
                    r, &district, defs, units, periods, out,
                );
            }
        })
        .await?;
        tx.commit().await
    }
    async fn case_reports(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        limit: i64,
    ) -> Result<Vec<dhp_core::surveillance::CaseReport>> {
        crate::surveillance::case_reports(self.pool(), from, to, limit).await
    }
    async fn case_report(&self, id: Id) -> Result<dhp_core::surveillance::CaseReport> {
        crate::surveillance::case_report_by_id(self.pool(), id).await
    }
    async fn case_counts(
        &self,
        basis: dhp_core::surveillance::DateBasis,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<dhp_core::surveillance::CaseCount>> {
        crate::surveillance::case_counts(self.pool(), basis, from, to).await
    }
    async fn put_sentinel_reports(
        &self,
        reports: &[dhp_core::surveillance::SentinelReport],
        received_at: NaiveDateTime,
    ) -> Result<()> {
        crate::surveillance::put_sentinel_reports(self.pool(), reports, received_at).await
    }
    async fn sentinel_reports(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<dhp_core::surveillance::SentinelReport>> {
        crate::surveillance::sentinel_reports(self.pool(), from, to).await
    }
    async fn sentinel_last_reports(&self, today: NaiveDate) -> Result<Vec<(String, NaiveDate)>> {
        crate::surveillance::sentinel_last_reports(self.pool(), today).await
    }
    async fn signals(&self, since: NaiveDate) -> Result<Vec<dhp_core::surveillance::Signal>> {
        crate::surveillance::signals(self.pool(), since).await
    }
    async fn signal(&self, id: Id) -> Result<dhp_core::surveillance::Signal> {
        crate::surveillance::signal_by_id(self.pool(), id).await
    }
    async fn save_signals(&self, signals: &mut [dhp_core::surveillance::Signal]) -> Result<()> {
        let new = signals.iter().filter(|s| s.id == 0).count() as i64;
        let next = if new > 0 {
            crate::resources::reserve_ids(self.pool(), "Signal", new).await?
        } else {
            0
        };
        crate::surveillance::save_signals(self.pool(), signals, next).await
    }
    async fn move_signal(
        &self,
        signal: &dhp_core::surveillance::Signal,
        event: &dhp_core::surveillance::SignalEvent,
    ) -> Result<()> {
        // The step and what it changes of the response time, in one transaction.
        let tx = self.begin_write().await?;
        crate::surveillance::move_signal(&tx, signal, event).await?;
        let mut after = signal.clone();
        if event.to == dhp_core::surveillance::SignalStatus::Verifying {
            after.verifying_at = Some(event.at);
        }
        crate::indicators::add_events(&tx, |defs, units, periods, out| {
            use dhp_core::indicators::rules::signal_tallies;
            let district = units.district_code_of(&signal.area);
            signal_tallies(&after, &district, defs, units, periods, out);
            signal_tallies(signal, &district, defs, units, periods, &mut |t| {
                out(dhp_core::indicators::Tally {
                    num: -t.num,
                    den: -t.den,
                    ..t
                })
            });
        })
        .await?;
        tx.commit().await
    }
    async fn signal_events(&self, id: Id) -> Result<Vec<dhp_core::surveillance::SignalEvent>> {
        crate::surveillance::signal_events(self.pool(), id).await
    }
    async fn insert_outbreaks(
        &self,
        outbreaks: &[dhp_core::surveillance::InjectedOutbreak],
    ) -> Result<()> {
        crate::surveillance::insert_outbreaks(self.pool(), outbreaks).await
    }
    async fn outbreaks(&self) -> Result<Vec<dhp_core::surveillance::InjectedOutbreak>> {
        crate::surveillance::outbreaks(self.pool()).await
    }
}
